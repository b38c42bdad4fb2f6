/* Private to src/http.c (and its tests and fuzz target): an incremental
 * HTTP/1.x response parser. Pure: no I/O, no allocation beyond its header
 * store. Bytes may be fed in any split; the result is the same.
 *
 * It reads one response: interim 1xx responses are skipped (101 is an
 * error: nothing here upgrades), then the status line and headers of the
 * final one (kept, all of them, as "name\0value\0" pairs), then its body
 * as Content-Length, chunked or "until the connection closes" says, with
 * no body for HEAD, 204 and 304. The header block (interim responses and
 * trailers included) is capped; what breaks the framing rules (obs-fold,
 * control characters, bad names, invalid or conflicting Content-Length,
 * bad chunk sizes or CRLFs) is an error, never guessed around. */
#ifndef OPSBOT_HTTP_PARSE_H
#define OPSBOT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ob__hp_feed's and ob__hp_eof's results */
#define OB__HP_MORE 0     /* the response is not complete yet */
#define OB__HP_DONE 1     /* complete; bytes after it were not consumed */
#define OB__HP_ERROR (-1) /* invalid response: p->err says why */
#define OB__HP_STOP (-2)  /* the body callback asked to stop */

/* Body bytes as they arrive (chunked framing removed); nonzero stops. */
typedef int (*ob__hp_body_cb)(void *ctx, const char *p, size_t n);

struct ob__hp {
    /* the final response, once its headers are in */
    int minor;    /* HTTP/1.minor */
    long status;  /* 0 until the final status line */
    bool headers; /* its headers are complete */
    bool done;
    const char *err; /* what was wrong (a constant string), after OB__HP_ERROR */
    /* internals */
    int state;
    bool head_req, started, keep_alive, conn_close, conn_keep, chunked, te_other;
    bool has_cl, cl_conflict, cl_bad;
    int framing;
    uint64_t cl, remaining;
    size_t head_bytes, max_head;
    size_t ext_bytes;
    char *line; /* the line being read */
    size_t line_len, line_cap;
    char *hdr; /* "name\0value\0" pairs of the final response */
    size_t hdr_len, hdr_cap;
    ob__hp_body_cb on_body;
    void *ctx;
};

/* head: the request was HEAD (no body follows). max_head: cap on the
 * header bytes (status lines, headers, trailers). */
void ob__hp_init(struct ob__hp *p, bool head, size_t max_head, ob__hp_body_cb on_body, void *ctx);
void ob__hp_free(struct ob__hp *p);

/* Feeds len bytes; *used (optional) gets how many were consumed (all of
 * them unless DONE, ERROR or STOP came first). After DONE, ERROR or STOP
 * further calls return the same result and consume nothing. */
int ob__hp_feed(struct ob__hp *p, const char *in, size_t len, size_t *used);
/* The connection closed: DONE when that ends a body delimited by the close
 * (or the response was already complete), else ERROR. */
int ob__hp_eof(struct ob__hp *p);

/* Reading a body that only the connection's close ends. */
bool ob__hp_until_close(const struct ob__hp *p);
/* Any byte of a response arrived. */
bool ob__hp_started(const struct ob__hp *p);
/* Complete, and the connection may carry another request: HTTP/1.1 without
 * "Connection: close", or HTTP/1.0 with "Connection: keep-alive"; a body
 * delimited by the close never is. */
bool ob__hp_reusable(const struct ob__hp *p);
/* Last value of a header of the final response (case-insensitive), or NULL. */
const char *ob__hp_header(const struct ob__hp *p, const char *name);

#endif
