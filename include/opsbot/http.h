/* HTTP client on the libuv loop: direct requests on kept-alive connections
 * of its own (OpenSSL), proxied ones on libwebsockets' client HTTP. Nothing
 * blocks: every request completes through its callback, exactly once, from
 * the loop. Honours https_proxy, http_proxy
 * and no_proxy (CONNECT tunnels). Used by the platform REST APIs, the LLM
 * connections and the executors. See docs/TRANSPORT.md.
 */
#ifndef OPSBOT_HTTP_H
#define OPSBOT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct ob_http;      /* the client: one per process is enough */
struct ob_lws;       /* include/opsbot/ws.h */
struct ob_http_call; /* one request in flight */

struct ob_http_req {
    const char *method; /* "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" strings */
    const char *body;           /* may be NULL */
    size_t body_len;
    int64_t timeout_ms;  /* whole request; 0 = 30 s */
    size_t max_response; /* body cap; 0 = 4 MiB; beyond it: truncated + OB_E2BIG */
    /* TLS (all optional): */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    bool insecure; /* skip verification (tests only; logged once) */
};

struct ob_http_resp {
    int err;     /* 0, OB_ETIMEOUT, OB_E2BIG (body cut at the cap), OB_EHTTP (transport) */
    long status; /* HTTP status, 0 when no response arrived */
    char *body;  /* NUL-terminated; owned by the client, valid during the callback */
    size_t body_len;
    int64_t duration_ms;
    char errmsg[256]; /* what failed, for transport errors (never contains headers) */
    void *priv_;      /* response headers; use ob_http_resp_header() */
};

typedef void (*ob_http_cb)(void *data, const struct ob_http_resp *resp);

/* A client with a libwebsockets context of its own on loop. */
int ob_http_new(struct ob_http **out, uv_loop_t *loop);
/* A client on lws, a context the caller owns (one context per process).
 * Ordering rule: ob_http_free(h) before ob_lws_free(lws). A response
 * callback may run from inside lws: do not call ob_lws_free(lws) from it
 * (a zero timer is fine). */
int ob_http_new_on(struct ob_http **out, struct ob_lws *lws);
/* Cancels everything in flight (their callbacks are not called), drops the
 * client's connections (and its own lws context, if any); the loop must run
 * afterwards for the close callbacks. Fine from inside a request callback
 * or any plain loop callback; not from inside an lws callback of another
 * kind when the client owns its context. */
void ob_http_free(struct ob_http *h);

/* Starts a request; all strings are copied. cb runs exactly once, never
 * from inside this call (a complete response is delivered as soon as it is
 * read, from inside lws; failures and timeouts from a timer). call_out (optional) allows
 * cancelling. Returns 0 or a negative error (cb not called). */
int ob_http_request(struct ob_http *h, const struct ob_http_req *req, ob_http_cb cb, void *data,
                    struct ob_http_call **call_out);
/* Cancels a call that has not completed; its callback is not called. */
void ob_http_cancel(struct ob_http_call *call);
size_t ob_http_active(const struct ob_http *h);

/* Value of a response header (case-insensitive name, last occurrence), or
 * NULL. Valid during the callback only. Direct requests keep every header;
 * through a proxy (lws) only the headers libwebsockets knows by name
 * (Content-Type, Retry-After, Location, ...) and a fixed list of others
 * (X-RateLimit-*, Retry-After-Ms, X-Should-Retry, request ids:
 * custom_names in src/http.c). */
const char *ob_http_resp_header(const struct ob_http_resp *resp, const char *name);

/* Percent-encodes s for a URL path segment or query value into a malloc'd
 * string (NULL on OOM). */
char *ob_http_escape(const char *s);

#endif
