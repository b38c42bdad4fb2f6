/* Incremental HTTP/1.x response parser: see http_parse.h.
 *
 * Lines (status line, headers, chunk sizes, trailers) end in LF, with an
 * optional CR before it; any other control character in them (NUL, a lone
 * CR, ...) except HTAB is an error. A line is collected whole before it is
 * looked at, so a split between two feeds changes nothing. Body bytes are
 * handed to the callback in place, never copied.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"
#include "opsbot/util.h"

#define MAX_CHUNK_LINE 4096u           /* a chunk size with its extensions */
#define MAX_LENGTH (UINT64_C(1) << 62) /* beyond: an invalid Content-Length */

enum state {
    S_STATUS,
    S_HEADER,
    S_BODY_LEN,
    S_BODY_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_CR, /* the CRLF after a chunk's data */
    S_CHUNK_LF,
    S_TRAILER,
    S_DONE,
    S_ERROR,
    S_STOP,
};

void ob__hp_init(struct ob__hp *p, bool head, size_t max_head, ob__hp_body_cb on_body, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->state = S_STATUS;
    p->head_req = head;
    p->max_head = max_head;
    p->on_body = on_body;
    p->ctx = ctx;
}

void ob__hp_free(struct ob__hp *p)
{
    free(p->line);
    free(p->hdr);
    p->line = p->hdr = NULL;
    p->line_len = p->line_cap = p->hdr_len = p->hdr_cap = 0;
}

static int fail(struct ob__hp *p, const char *why)
{
    p->state = S_ERROR;
    p->err = why;
    return OB__HP_ERROR;
}

static int result(const struct ob__hp *p)
{
    switch (p->state) {
    case S_DONE:
        return OB__HP_DONE;
    case S_ERROR:
        return OB__HP_ERROR;
    case S_STOP:
        return OB__HP_STOP;
    default:
        return OB__HP_MORE;
    }
}

/* ---- small helpers ------------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* No control character but HTAB (obs-text, >= 0x80, is fine). */
static bool clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* Calls fn on each element of a comma list (OWS trimmed; empty elements
 * too); stops at the first nonzero return. */
static int each_element(const char *v, size_t n, int (*fn)(struct ob__hp *, const char *, size_t),
                        struct ob__hp *p)
{
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || v[i] == ',') {
            const char *e = v + start;
            size_t el = i - start;
            int rc;

            trim(&e, &el);
            rc = fn(p, e, el);
            if (rc)
                return rc;
            start = i + 1;
        }
    }
    return 0;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* ---- header store ------------------------------------------------------- */

static int hdr_add(struct ob__hp *p, const char *name, size_t nlen, const char *val, size_t vlen)
{
    size_t need = p->hdr_len + nlen + vlen + 2;

    if (need > p->hdr_cap) {
        size_t cap = p->hdr_cap ? p->hdr_cap : 512;
        char *nb;

        while (cap < need)
            cap *= 2;
        nb = realloc(p->hdr, cap);
        if (!nb)
            return fail(p, "out of memory");
        p->hdr = nb;
        p->hdr_cap = cap;
    }
    memcpy(p->hdr + p->hdr_len, name, nlen);
    p->hdr_len += nlen;
    p->hdr[p->hdr_len++] = '\0';
    memcpy(p->hdr + p->hdr_len, val, vlen);
    p->hdr_len += vlen;
    p->hdr[p->hdr_len++] = '\0';
    return 0;
}

const char *ob__hp_header(const struct ob__hp *p, const char *name)
{
    const char *found = NULL;
    size_t off = 0;

    if (!p || !name || !p->headers)
        return NULL;
    while (off < p->hdr_len) {
        const char *n = p->hdr + off;
        const char *v = n + strlen(n) + 1;

        if (strcasecmp(n, name) == 0)
            found = v;
        off = (size_t)(v - p->hdr) + strlen(v) + 1;
    }
    return found;
}

/* ---- framing headers ------------------------------------------------------ */

static int cl_element(struct ob__hp *p, const char *s, size_t n)
{
    uint64_t v = 0;

    if (!n)
        return fail(p, "invalid Content-Length");
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail(p, "invalid Content-Length");
        if (v > (MAX_LENGTH - (uint64_t)(s[i] - '0')) / 10)
            return fail(p, "invalid Content-Length");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (p->has_cl && v != p->cl)
        return fail(p, "conflicting Content-Length values");
    p->has_cl = true;
    p->cl = v;
    return 0;
}

static int te_element(struct ob__hp *p, const char *s, size_t n)
{
    if (!n)
        return 0; /* "a, , b": empty list elements are ignored */
    if (p->chunked)
        return fail(p, "chunked is not the last transfer coding");
    if (token_is(s, n, "chunked"))
        p->chunked = true;
    else
        p->te_other = true;
    return 0;
}

static int conn_element(struct ob__hp *p, const char *s, size_t n)
{
    if (token_is(s, n, "close"))
        p->conn_close = true;
    else if (token_is(s, n, "keep-alive"))
        p->conn_keep = true;
    return 0;
}

/* ---- lines ----------------------------------------------------------------- */

static int status_line(struct ob__hp *p, const char *s, size_t n)
{
    long st;

    /* "HTTP/1.x ddd[ reason]" */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return fail(p, "bad status line");
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return fail(p, "bad status line");
    if (n > 12 && s[12] != ' ')
        return fail(p, "bad status line");
    st = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (st < 100)
        return fail(p, "bad status code");
    if (st == 101)
        return fail(p, "unexpected 101 Switching Protocols");
    p->minor = s[7] - '0';
    p->status = st;
    p->state = S_HEADER;
    return 0;
}

/* "name: value" (also for trailers: checked the same way, not kept). */
static int header_line(struct ob__hp *p, const char *s, size_t n, bool keep)
{
    const char *colon = memchr(s, ':', n), *v;
    size_t nl, vl;

    if (is_ows(s[0]))
        return fail(p, "obsolete header line folding");
    if (!colon)
        return fail(p, "header line without a colon");
    nl = (size_t)(colon - s);
    if (!nl)
        return fail(p, "empty header name");
    for (size_t i = 0; i < nl; i++)
        if (!is_tchar((unsigned char)s[i]))
            return fail(p, "bad header name");
    v = colon + 1;
    vl = n - nl - 1;
    trim(&v, &vl);
    if (!keep)
        return 0;
    if (p->status >= 200) {
        int rc = 0;

        if (token_is(s, nl, "content-length"))
            rc = each_element(v, vl, cl_element, p);
        else if (token_is(s, nl, "transfer-encoding"))
            rc = each_element(v, vl, te_element, p);
        else if (token_is(s, nl, "connection"))
            rc = each_element(v, vl, conn_element, p);
        if (rc)
            return rc;
    }
    return hdr_add(p, s, nl, v, vl);
}

static void reset_response(struct ob__hp *p)
{
    p->hdr_len = 0;
    p->status = 0;
    p->minor = 0;
    p->conn_close = p->conn_keep = p->chunked = p->te_other = p->has_cl = false;
    p->cl = 0;
    p->state = S_STATUS;
}

static int finish(struct ob__hp *p)
{
    p->state = S_DONE;
    p->done = true;
    return 0;
}

/* The empty line after the headers: the framing of what follows. */
static int headers_end(struct ob__hp *p)
{
    if (p->status < 200) {
        reset_response(p); /* an interim response: the real one follows */
        return 0;
    }
    p->headers = true;
    p->keep_alive = p->minor == 1 ? !p->conn_close : p->conn_keep && !p->conn_close;
    if (p->head_req || p->status == 204 || p->status == 304)
        return finish(p);
    if (p->te_other)
        return fail(p, "unsupported Transfer-Encoding");
    if (p->chunked) {
        if (p->has_cl)
            p->keep_alive = false; /* both: chunked wins, the connection goes */
        p->state = S_CHUNK_SIZE;
        return 0;
    }
    if (p->has_cl) {
        p->remaining = p->cl;
        p->state = S_BODY_LEN;
        return p->cl ? 0 : finish(p);
    }
    p->keep_alive = false;
    p->state = S_BODY_CLOSE;
    return 0;
}

/* "hex[ ;ext...]" */
static int chunk_size_line(struct ob__hp *p, const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;

    for (; i < n && ob_hexval(s[i]) >= 0; i++) {
        if (v > (MAX_LENGTH >> 4))
            return fail(p, "chunk size too large");
        v = (v << 4) | (uint64_t)ob_hexval(s[i]);
    }
    if (i == 0)
        return fail(p, "bad chunk size");
    while (i < n && is_ows(s[i]))
        i++;
    if (i < n && s[i] != ';')
        return fail(p, "bad chunk size");
    if (v == 0) {
        p->state = S_TRAILER;
        return 0;
    }
    p->remaining = v;
    p->state = S_CHUNK_DATA;
    return 0;
}

static int line_done(struct ob__hp *p)
{
    const char *s = p->line;
    size_t n = p->line_len;

    if (n && s[n - 1] == '\r')
        n--;
    p->line_len = 0;
    if (!clean(s, n))
        return fail(p, p->state == S_CHUNK_SIZE ? "control character in a chunk size line"
                                                : "control character in the response head");
    switch (p->state) {
    case S_STATUS:
        return status_line(p, s, n);
    case S_HEADER:
        return n ? header_line(p, s, n, true) : headers_end(p);
    case S_TRAILER:
        return n ? header_line(p, s, n, false) : finish(p);
    case S_CHUNK_SIZE:
        return chunk_size_line(p, s, n);
    default:
        return fail(p, "internal parser state");
    }
}

/* Collects a line; returns the bytes taken from in (up to and with LF). */
static size_t line_take(struct ob__hp *p, const char *in, size_t len)
{
    const char *lf = memchr(in, '\n', len);
    size_t take = lf ? (size_t)(lf - in) + 1 : len;
    size_t body = lf ? take - 1 : take;

    if (p->state == S_CHUNK_SIZE) {
        if (p->line_len + body > MAX_CHUNK_LINE) {
            fail(p, "chunk size line too long");
            return take;
        }
    } else {
        p->head_bytes += take;
        if (p->head_bytes > p->max_head) {
            fail(p, "response headers too large");
            return take;
        }
    }
    if (p->line_len + body > p->line_cap || !p->line) {
        size_t c = p->line_cap ? p->line_cap : 256;
        char *nb;

        while (c < p->line_len + body)
            c *= 2;
        nb = realloc(p->line, c);
        if (!nb) {
            fail(p, "out of memory");
            return take;
        }
        p->line = nb;
        p->line_cap = c;
    }
    if (body) {
        memcpy(p->line + p->line_len, in, body);
        p->line_len += body;
    }
    if (lf)
        line_done(p);
    return take;
}

/* The CRLF (or LF) after a chunk's data. */
static size_t chunk_end(struct ob__hp *p, char c)
{
    if (c == '\n')
        p->state = S_CHUNK_SIZE;
    else if (c == '\r' && p->state == S_CHUNK_CR)
        p->state = S_CHUNK_LF;
    else
        fail(p, "bad CRLF after chunk data");
    return 1;
}

static size_t body_take(struct ob__hp *p, const char *in, size_t len)
{
    size_t n = len;

    if (p->state != S_BODY_CLOSE && n > p->remaining)
        n = (size_t)p->remaining;
    if (p->state != S_BODY_CLOSE)
        p->remaining -= n;
    if (n && p->on_body && p->on_body(p->ctx, in, n) != 0) {
        p->state = S_STOP;
        return n;
    }
    if (p->state == S_BODY_LEN && !p->remaining)
        finish(p);
    else if (p->state == S_CHUNK_DATA && !p->remaining)
        p->state = S_CHUNK_CR;
    return n;
}

int ob__hp_feed(struct ob__hp *p, const char *in, size_t len, size_t *used)
{
    size_t off = 0;

    if (used)
        *used = 0;
    if (len && p->state < S_DONE)
        p->started = true;
    while (off < len && p->state < S_DONE) {
        if (p->state == S_BODY_LEN || p->state == S_BODY_CLOSE || p->state == S_CHUNK_DATA)
            off += body_take(p, in + off, len - off);
        else if (p->state == S_CHUNK_CR || p->state == S_CHUNK_LF)
            off += chunk_end(p, in[off]);
        else
            off += line_take(p, in + off, len - off);
    }
    if (used)
        *used = off;
    return result(p);
}

int ob__hp_eof(struct ob__hp *p)
{
    if (p->state == S_BODY_CLOSE)
        finish(p);
    else if (p->state < S_DONE)
        fail(p, p->started ? "connection closed before the response was complete"
                           : "connection closed before a response arrived");
    return result(p);
}

bool ob__hp_until_close(const struct ob__hp *p)
{
    return p->state == S_BODY_CLOSE;
}

bool ob__hp_started(const struct ob__hp *p)
{
    return p->started;
}

bool ob__hp_reusable(const struct ob__hp *p)
{
    return p->state == S_DONE && p->keep_alive;
}
