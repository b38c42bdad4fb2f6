/* HTTP client on the libuv loop of the process.
 *
 * Direct requests (no proxy, the usual case) go on connections of our own
 * (src/http_conn.c: libuv TCP, OpenSSL over memory BIOs for https, verified
 * unless the request is insecure) from a keep-alive pool keyed by (TLS
 * context, insecure, host, port): a request takes an idle connection to its
 * host when there is one, else opens a new one; concurrent requests get
 * separate connections (no pipelining). Responses are read by
 * src/http_parse.c; a complete one whose connection may carry another goes
 * back to the pool before its callback runs. A request that finds its kept
 * connection dead before any byte of a response arrived is sent once more
 * on a new connection only when its method only reads (GET, HEAD,
 * OPTIONS); POST, PUT, DELETE and PATCH never are. Cancelled, timed-out,
 * truncated (max_response) and failed calls close their connection.
 *
 * Proxied requests (https_proxy, http_proxy; src/http_proxy.c) still use
 * libwebsockets' client HTTP through a CONNECT tunnel, one lws client vhost
 * per (proxy, CA, client certificate), and no reuse: lws 4.1's h1 client
 * pipelining (LCCSCF_PIPELINE) only finds an idle connection when Host
 * carries no port, queues concurrent requests behind each other, and on the
 * libuv event lib leaves one orphaned uv_poll_t per handed-over connection;
 * see docs/TRANSPORT.md. Such a request is one client wsi whose opaque user
 * data is its ob_http_call (kind OB__KIND_HTTPC); src/lws.c routes those
 * wsis' events here.
 *
 * Either way a complete response is delivered as soon as it is read (as
 * libcurl did); everything else from the call's own uv timer, which also
 * enforces the whole-request timeout. Never from inside ob_http_request.
 * Host names are resolved off the loop (http_dns.h).
 *
 * Request headers and bodies carry tokens: they are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_conn.h"
#include "http_dns.h"
#include "http_parse.h"
#include "http_url.h"
#include "http_proxy.h"
#include "lws_int.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (4u * 1024 * 1024)
#define MAX_HEADER_BYTES (64u * 1024)
#define MAX_METHOD_LEN 16
#define MAX_HOST OB__URL_MAX_HOST
#define MAX_PATH 8192
#define BODY_CHUNK 4096
#define RX_CHUNK 4096
#define TICK_MS 10000u   /* keeps lws's own response timeout away from ours */
#define LWS_WAIT_SECS 30 /* what each tick sets it to */

/* Response headers lws does not know by name: looked up explicitly. */
static const char *const custom_names[] = {
    "retry-after-ms",
    "x-should-retry",
    "x-request-id",
    "request-id",
    "x-slack-req-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-bucket",
    "x-ratelimit-global",
    "x-ratelimit-scope",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "ms-cv",
    "x-ms-request-id",
    NULL,
};

/* A client vhost: one per TLS configuration and proxy. */
struct httpc_vh {
    struct httpc_vh *next;
    struct lws_vhost *vh;
    char *proxy, *ca, *cert, *key; /* NULL: none */
    char name[32];                 /* lws keeps the pointer */
};

struct ob_http {
    uv_loop_t *loop;
    struct ob_lws *lws;
    bool own_lws;
    bool freeing;
    struct ob__proxy_env proxy;
    struct httpc_vh *vhosts;
    struct ob__dns_cache dns;
    struct ob__pool *pool;      /* direct requests' connections */
    struct ob_http_call *calls; /* started, callback not yet run */
    size_t active;
    size_t nalloc;    /* open uv handles (calls' timers, later): h goes with the last */
    int depth;        /* > 0 while a callback runs from inside lws */
    bool in_request;  /* inside ob_http_request: results wait for the loop */
    bool release_due; /* ob_http_free was called at depth > 0 */
    uv_timer_t later; /* finishes such an ob_http_free */
};

enum call_state { ST_RUNNING, ST_DONE, ST_CANCELLED };

struct ob_http_call {
    enum ob__lws_kind kind; /* first member: OB__KIND_HTTPC */
    struct ob_http *h;
    struct lws *wsi;
    struct ob__dns_req *res; /* while the host name is being resolved */
    struct lws_vhost *vh;
    char method[MAX_METHOD_LEN + 1];
    char *path; /* "/..." with the query */
    bool tls, insecure;
    char host[MAX_HOST]; /* the URL's host, without brackets */
    char hosthdr[MAX_HOST + 8];
    int port;
    ob_http_cb cb;
    void *data;
    struct ob_http_call *prev, *next;
    /* proxied: the proxy string (h's) and its host, resolved here */
    const char *proxy;
    char phost[MAX_HOST];
    /* direct requests (no proxy): our own connection */
    bool direct, reused, retried;
    SSL_CTX *tlsctx; /* https: the context of its TLS files */
    struct ob__conn *conn;
    char addr[64]; /* numeric */
    struct ob__hp hp;
    char *reqbuf; /* the whole request, kept for one retry */
    size_t reqbuf_len;
    uv_timer_t timer;  /* deadline + ticks, then the delivery */
    uint64_t deadline; /* uv_now() ms */
    enum call_state state;
    bool head, established, sent, delivering, linked;
    /* request */
    char *hdrs; /* "Name: value\r\n"..., ready to append */
    size_t hdrs_len;
    char *req_body;
    size_t req_len, req_off;
    bool has_body;
    /* response */
    long status;
    int err;
    char errmsg[256];
    char *body;
    size_t body_len, body_cap, max;
    bool truncated;
    char *hdr; /* "name\0value\0" pairs */
    size_t hdr_len, hdr_cap;
    uint64_t start_ns;
};

static void call_timer_cb(uv_timer_t *t);

/* ---- vhosts and endpoints -------------------------------------------- */

static void vh_free(struct httpc_vh *v)
{
    free(v->proxy);
    free(v->ca);
    free(v->cert);
    free(v->key);
    free(v);
}

static char *dup_opt(const char *s, bool *oom)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static int vh_create(struct ob_http *h, struct httpc_vh *v)
{
    static unsigned serial;
    struct lws_context_creation_info info;

    memset(&info, 0, sizeof(info));
    /* Without a CA file the system's trust store is set up by src/lws.c
     * (the hashed directory, not the bundle); with one, only that CA is
     * trusted, as CURLOPT_CAINFO did. */
    snprintf(v->name, sizeof(v->name), "opsbot-httpc-%u", ++serial);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ob__lws_protocols;
    info.vhost_name = v->name;
    info.user = v->ca ? NULL : OB__VHOST_OS_TRUST;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.client_ssl_ca_filepath = v->ca;
    info.client_ssl_cert_filepath = v->cert;
    info.client_ssl_private_key_filepath = v->key;
    /* not $http_proxy, which lws would read itself (for every scheme,
     * without no_proxy) */
    info.http_proxy_address = v->proxy ? v->proxy : ":0";
    v->vh = lws_create_vhost(h->lws->ctx, &info);
    if (!v->vh) {
        ob_error("http", "cannot create a client vhost (TLS files?)");
        return OB_EHTTP;
    }
    /* the proxy we chose, or none (port 0 turns lws's proxying off); set
     * again to hear whether lws took it */
    if (lws_set_proxy(v->vh, v->proxy ? v->proxy : ":0") != 0) {
        char shown[128];

        ob__proxy_display(v->proxy ? v->proxy : "", shown, sizeof(shown));
        ob_error("http", "cannot use the proxy %s", shown);
        return OB_EHTTP;
    }
    return 0;
}

static struct lws_vhost *vh_get(struct ob_http *h, const struct ob_http_req *tls_req,
                                const char *proxy, int *rc)
{
    static const struct ob_http_req plain = {0};
    const struct ob_http_req *req = tls_req ? tls_req : &plain;
    struct httpc_vh *v;
    bool oom = false;

    /* The plain case shares the context's direct client vhost (one client
     * SSL_CTX per context; src/lws.c keeps lws's own $http_proxy off it). */
    if (!proxy && !req->ca_file && !req->cert_file && !req->key_file)
        return h->lws->client_vh;
    for (v = h->vhosts; v; v = v->next)
        if (ob_str_same(v->proxy, proxy) && ob_str_same(v->ca, req->ca_file) &&
            ob_str_same(v->cert, req->cert_file) && ob_str_same(v->key, req->key_file))
            return v->vh;
    v = calloc(1, sizeof(*v));
    if (!v) {
        *rc = OB_ENOMEM;
        return NULL;
    }
    v->proxy = dup_opt(proxy, &oom);
    v->ca = dup_opt(req->ca_file, &oom);
    v->cert = dup_opt(req->cert_file, &oom);
    v->key = dup_opt(req->key_file, &oom);
    *rc = oom ? OB_ENOMEM : vh_create(h, v);
    if (*rc) {
        if (v->vh)
            lws_vhost_destroy(v->vh);
        vh_free(v);
        return NULL;
    }
    if (proxy) {
        char shown[128];

        ob__proxy_display(proxy, shown, sizeof(shown));
        ob_info("http", "using the proxy %s from the environment", shown);
    }
    v->next = h->vhosts;
    h->vhosts = v;
    return v->vh;
}

/* ---- call lifecycle --------------------------------------------------- */

static void call_free_cb(uv_handle_t *handle)
{
    struct ob_http_call *c = handle->data;
    struct ob_http *h = c->h;

    free(c->hdrs);
    free(c->req_body);
    free(c->path);
    free(c->body);
    free(c->hdr);
    free(c->reqbuf);
    ob__hp_free(&c->hp);
    free(c);
    if (--h->nalloc == 0 && h->freeing)
        free(h);
}

static void later_closed(uv_handle_t *handle)
{
    struct ob_http *h = handle->data;

    if (--h->nalloc == 0 && h->freeing)
        free(h);
}

static void call_unlink(struct ob_http_call *c)
{
    struct ob_http *h = c->h;

    if (!c->linked)
        return;
    c->linked = false;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->active--;
}

/* Forgets the wsi (and any name lookup): lws's later events for it find
 * nothing. A connection of our own is closed (never back to the pool). */
static void call_detach(struct ob_http_call *c)
{
    ob__dns_drop(c->res);
    c->res = NULL;
    ob__conn_close(c->conn);
    c->conn = NULL;
    if (c->wsi) {
        lws_set_opaque_user_data(c->wsi, NULL);
        c->wsi = NULL;
    }
}

/* Closes the connection at once; from the loop only (never inside lws). */
static void call_kill(struct ob_http_call *c)
{
    struct lws *wsi = c->wsi;

    call_detach(c);
    if (wsi)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static void call_deliver(struct ob_http_call *c);

/* The result is known: delivered from the loop. */
static void call_finish(struct ob_http_call *c, int err, const char *msg)
{
    if (c->state != ST_RUNNING)
        return;
    c->state = ST_DONE;
    c->err = err;
    if (msg)
        ob_strlcpy(c->errmsg, msg, sizeof(c->errmsg));
    call_detach(c);
    uv_timer_start(&c->timer, call_timer_cb, 0, 0);
}

/* A response is complete: delivered right away (as soon as libcurl did, so
 * before other events read in the same loop turn), unless inside
 * ob_http_request. */
static void call_done_now(struct ob_http_call *c)
{
    struct ob_http *h = c->h;

    if (c->state != ST_RUNNING)
        return;
    if (h->in_request) {
        call_finish(c, 0, NULL);
        return;
    }
    c->state = ST_DONE;
    call_detach(c);
    uv_timer_stop(&c->timer);
    h->depth++;
    call_deliver(c);
    h->depth--;
}

static void call_deliver(struct ob_http_call *c)
{
    struct ob_http_resp resp = {0};

    call_unlink(c);
    resp.status = c->status;
    resp.duration_ms = (int64_t)((uv_hrtime() - c->start_ns) / 1000000u);
    resp.err = c->err;
    if (!resp.err && c->truncated)
        resp.err = OB_E2BIG;
    if (resp.err == OB_ETIMEOUT || resp.err == OB_EHTTP)
        ob_strlcpy(resp.errmsg, c->errmsg[0] ? c->errmsg : "request failed", sizeof(resp.errmsg));
    resp.body = c->body ? c->body : (char *)"";
    resp.body_len = c->body_len;
    resp.priv_ = c;
    c->delivering = true;
    c->cb(c->data, &resp);
    uv_close((uv_handle_t *)&c->timer, call_free_cb);
}

static void arm_tick(struct ob_http_call *c)
{
    uint64_t now = uv_now(c->h->loop), wait;

    wait = c->deadline > now ? c->deadline - now : 0;
    if (wait > TICK_MS)
        wait = TICK_MS;
    uv_timer_start(&c->timer, call_timer_cb, wait, 0);
}

static void call_timer_cb(uv_timer_t *t)
{
    struct ob_http_call *c = t->data;

    if (c->state == ST_RUNNING) {
        if (uv_now(c->h->loop) < c->deadline) {
            /* lws has its own (shorter) wait for the response */
            if (c->wsi && c->sent && !c->established)
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_WAIT_SECS);
            arm_tick(c);
            return;
        }
        call_kill(c);
        c->state = ST_DONE;
        c->err = OB_ETIMEOUT;
        snprintf(c->errmsg, sizeof(c->errmsg), "request timed out after %llu ms",
                 (unsigned long long)((uv_hrtime() - c->start_ns) / 1000000u));
    }
    if (c->state == ST_CANCELLED) {
        call_kill(c);
        uv_close((uv_handle_t *)&c->timer, call_free_cb);
        return;
    }
    call_deliver(c);
}

/* ---- lws events -------------------------------------------------------- */

static int append_headers(struct ob_http_call *c, struct lws *wsi, char **p, size_t room)
{
    if (room < c->hdrs_len + 1) {
        call_finish(c, OB_EHTTP, "request headers too large");
        return -1;
    }
    memcpy(*p, c->hdrs, c->hdrs_len);
    *p += c->hdrs_len;
    if (c->req_len) {
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
    } else {
        c->sent = true;
    }
    return 0;
}

static int write_body(struct ob_http_call *c, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + BODY_CHUNK];
    size_t n = c->req_len - c->req_off;

    if (n > BODY_CHUNK)
        n = BODY_CHUNK;
    memcpy(buf + LWS_PRE, c->req_body + c->req_off, n);
    if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP) < 0) {
        call_finish(c, OB_EHTTP, "cannot send the request body");
        return -1;
    }
    c->req_off += n;
    if (c->req_off < c->req_len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    lws_client_http_body_pending(wsi, 0);
    c->sent = true;
    return 0;
}

/* Appends "name\0value\0"; past the cap further headers are dropped. */
static void hdr_add(struct ob_http_call *c, const char *name, size_t nlen, const char *val,
                    size_t vlen)
{
    size_t need;

    while (vlen && (*val == ' ' || *val == '\t')) {
        val++;
        vlen--;
    }
    while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
        vlen--;
    need = c->hdr_len + nlen + vlen + 2;
    if (need > MAX_HEADER_BYTES)
        return;
    if (need > c->hdr_cap) {
        size_t cap = c->hdr_cap ? c->hdr_cap : 1024;
        char *nb;

        while (cap < need)
            cap *= 2;
        nb = realloc(c->hdr, cap);
        if (!nb)
            return;
        c->hdr = nb;
        c->hdr_cap = cap;
    }
    memcpy(c->hdr + c->hdr_len, name, nlen);
    c->hdr_len += nlen;
    c->hdr[c->hdr_len++] = '\0';
    memcpy(c->hdr + c->hdr_len, val, vlen);
    c->hdr_len += vlen;
    c->hdr[c->hdr_len++] = '\0';
}

/* The last occurrence of a header lws knows by index. */
static void capture_token(struct ob_http_call *c, struct lws *wsi, enum lws_token_indexes t,
                          const char *name, char *buf, int cap)
{
    int frag = 0, last = -1, n;

    while (lws_hdr_fragment_length(wsi, t, frag) > 0 && frag < 64)
        last = frag++;
    if (last < 0)
        return;
    n = lws_hdr_copy_fragment(wsi, buf, cap, t, last);
    if (n >= 0)
        hdr_add(c, name, strlen(name) - 1, buf, (size_t)n);
}

static void capture_headers(struct ob_http_call *c, struct lws *wsi)
{
    char buf[4096];

    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        size_t nl = name ? strlen(name) : 0;

        /* header tokens end in ':' ("get " and pseudo-headers do not) */
        if (nl < 2 || name[nl - 1] != ':' || name[0] == ':')
            continue;
        capture_token(c, wsi, (enum lws_token_indexes)t, name, buf, sizeof(buf));
    }
    for (const char *const *p = custom_names; *p; p++) {
        char key[64];
        int kl = snprintf(key, sizeof(key), "%s:", *p), n;

        if (lws_hdr_custom_length(wsi, key, kl) < 0)
            continue;
        n = lws_hdr_custom_copy(wsi, buf, sizeof(buf), key, kl);
        if (n >= 0)
            hdr_add(c, *p, strlen(*p), buf, (size_t)n);
    }
}

static int established(struct ob_http_call *c, struct lws *wsi)
{
    c->established = true;
    c->status = (long)lws_http_client_http_response(wsi);
    capture_headers(c, wsi);
    if (c->head) {
        call_finish(c, 0, NULL);
        return -1; /* no body follows; the connection is not reused */
    }
    return 0;
}

/* 0, 1 when the cap was reached (what fits is kept), -1 out of memory. */
static int body_store(struct ob_http_call *c, const char *in, size_t n)
{
    size_t take = n;

    if (c->body_len + take > c->max) {
        take = c->max - c->body_len;
        c->truncated = true;
    }
    if (c->body_len + take + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        char *nb;

        while (cap < c->body_len + take + 1)
            cap *= 2;
        if (cap > c->max + 1)
            cap = c->max + 1;
        nb = realloc(c->body, cap);
        if (!nb)
            return -1;
        c->body = nb;
        c->body_cap = cap;
    }
    if (take)
        memcpy(c->body + c->body_len, in, take);
    c->body_len += take;
    c->body[c->body_len] = '\0';
    return c->truncated ? 1 : 0;
}

static int body_append(struct ob_http_call *c, const char *in, size_t n)
{
    int r = body_store(c, in, n);

    if (r < 0) {
        call_finish(c, OB_ENOMEM, NULL);
        return -1;
    }
    if (r > 0) {
        call_done_now(c); /* OB_E2BIG; the rest is not read */
        return -1;
    }
    return 0;
}

static int receive(struct lws *wsi)
{
    char buf[LWS_PRE + RX_CHUNK];
    char *p = buf + LWS_PRE;
    int n = RX_CHUNK;

    return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
}

static const char *resp_header(const struct ob_http_call *c, const char *name);

/* The connection closed under a running call. */
static void closed(struct ob_http_call *c)
{
    const char *cl, *te;

    if (c->established) {
        cl = resp_header(c, "content-length");
        te = resp_header(c, "transfer-encoding");
        /* a body delimited by the close, or one that was all there */
        if ((!cl && !te) || (cl && strtoull(cl, NULL, 10) == c->body_len)) {
            call_finish(c, 0, NULL);
            return;
        }
    }
    call_finish(c, OB_EHTTP,
                c->established ? "connection closed before the response was complete"
                               : "connection closed before a response arrived");
}

static void conn_error(struct ob_http_call *c, const char *in, size_t len)
{
    char msg[200];

    if (in && len && len < 150)
        snprintf(msg, sizeof(msg), "cannot connect: %.*s", (int)len, in);
    else
        snprintf(msg, sizeof(msg), "cannot connect: %s", in && *in ? in : "connection failed");
    call_finish(c, OB_EHTTP, msg);
}

int ob__httpc_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason,
                       void *in, size_t len)
{
    struct ob_http_call *c = lws_get_opaque_user_data(wsi);

    (void)l;
    if (c && c->kind != OB__KIND_HTTPC)
        c = NULL;
    if (c && !c->wsi && c->state == ST_RUNNING)
        c->wsi = wsi; /* an event during lws_client_connect_via_info */
    if (c && c->state != ST_RUNNING) {
        call_detach(c); /* cancelled: the connection goes */
        c = NULL;
        if (reason == LWS_CALLBACK_RECEIVE_CLIENT_HTTP ||
            reason == LWS_CALLBACK_CLIENT_HTTP_WRITEABLE ||
            reason == LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP)
            return -1;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return c ? append_headers(c, wsi, in, len) : 0;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        return c ? write_body(c, wsi) : -1;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        return c ? established(c, wsi) : 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
        return c ? receive(wsi) : -1;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return c ? body_append(c, in, len) : 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (c)
            call_done_now(c);
        return -1; /* not kept idle: it would never be reused */
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            conn_error(c, in, in ? strnlen(in, len ? len : 200) : 0);
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            closed(c);
        return 0;
    default:
        return 0;
    }
}

/* ---- requests ----------------------------------------------------------- */

static bool token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s; s++, n++)
        if (n >= max || *s < 'A' || *s > 'Z')
            return false;
    return n > 0;
}

static bool header_ok(const char *s)
{
    return !strpbrk(s, "\r\n") && strchr(s, ':') && s[0] != ':';
}

/* The extra request headers, CRLF-terminated, in one buffer. */
static int build_headers(struct ob_http_call *c, const struct ob_http_req *req)
{
    static const char ua[] = "User-Agent: opsbot/" OB_VERSION "\r\n";
    bool own_ua = false;
    size_t n = sizeof(ua) + 40;
    char *p;

    for (const char *const *h = req->headers; h && *h; h++) {
        if (!header_ok(*h))
            return OB_EINVAL;
        if (strncasecmp(*h, "user-agent:", 11) == 0)
            own_ua = true;
        n += strlen(*h) + 2;
    }
    c->hdrs = malloc(n);
    if (!c->hdrs)
        return OB_ENOMEM;
    p = c->hdrs;
    if (!own_ua)
        p += snprintf(p, n, "%s", ua);
    for (const char *const *h = req->headers; h && *h; h++)
        p += snprintf(p, n - (size_t)(p - c->hdrs), "%s\r\n", *h);
    if (c->has_body)
        p += snprintf(p, n - (size_t)(p - c->hdrs), "Content-Length: %zu\r\n", c->req_len);
    c->hdrs_len = (size_t)(p - c->hdrs);
    return 0;
}

static int call_setup(struct ob_http_call *c, const struct ob_http_req *req,
                      const struct ob__url *u)
{
    if (u->path_len > MAX_PATH)
        return OB_E2BIG;
    c->path = malloc(u->path_len + 2);
    if (!c->path)
        return OB_ENOMEM;
    snprintf(c->path, u->path_len + 2, "%s%.*s", u->path[0] == '/' ? "" : "/", (int)u->path_len,
             u->path);
    ob_strlcpy(c->method, req->method, sizeof(c->method));
    ob_strlcpy(c->host, u->host, sizeof(c->host));
    ob_strlcpy(c->hosthdr, u->hosthdr, sizeof(c->hosthdr));
    c->port = u->port;
    c->tls = u->tls;
    c->insecure = req->insecure;
    c->head = strcmp(req->method, "HEAD") == 0;
    c->has_body = req->body || strcmp(req->method, "POST") == 0;
    c->req_len = req->body ? req->body_len : 0;
    if (c->req_len) {
        c->req_body = malloc(c->req_len);
        if (!c->req_body)
            return OB_ENOMEM;
        memcpy(c->req_body, req->body, c->req_len);
    }
    return build_headers(c, req);
}

static void warn_insecure(void)
{
    static bool warned;

    if (!warned) {
        warned = true;
        ob_warn("http", "TLS verification is disabled for some requests (insecure)");
    }
}

/* Hands the call to lws (address: numeric, or the proxy's business);
 * failures come back through the callbacks. */
static void lws_connect(struct ob_http_call *c, const char *address)
{
    struct lws_client_connect_info ci;
    struct lws *wsi;

    memset(&ci, 0, sizeof(ci));
    ci.context = c->h->lws->ctx;
    ci.vhost = c->vh;
    ci.address = address;
    ci.port = c->port;
    ci.path = c->path;
    ci.host = c->hosthdr; /* also the name for SNI and the certificate check */
    ci.method = c->method;
    ci.alpn = "http/1.1";
    ci.protocol = ob__lws_protocols[0].name;
    ci.local_protocol_name = ob__lws_protocols[0].name;
    ci.opaque_user_data = c;
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    /* No LCCSCF_PIPELINE: see the top of this file. */
    if (c->tls) {
        ci.ssl_connection |= LCCSCF_USE_SSL;
        if (c->insecure) {
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED;
            warn_insecure();
        }
    }
    wsi = lws_client_connect_via_info(&ci);
    if (!wsi)
        call_finish(c, OB_EHTTP, "cannot connect");
    else if (c->state == ST_RUNNING)
        c->wsi = wsi;
}

/* ---- direct requests: our own connections ----------------------------- */

/* Methods that may be sent again when a reused connection was found dead
 * before any of the response arrived: the safe ones (RFC 9110 9.2.1), which
 * only read. Not PUT or DELETE, though RFC 9110 calls them idempotent: an
 * http action may be one, an API may not keep that promise, and nothing
 * ever runs an action twice. */
static bool safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

/* Request line, Host (from the parsed URL), the checked headers, the body. */
static int build_request(struct ob_http_call *c)
{
    size_t n =
        strlen(c->method) + strlen(c->path) + strlen(c->hosthdr) + c->hdrs_len + c->req_len + 40;
    int k;

    c->reqbuf = malloc(n);
    if (!c->reqbuf)
        return OB_ENOMEM;
    k = snprintf(c->reqbuf, n, "%s %s HTTP/1.1\r\nHost: %s\r\n%.*s\r\n", c->method, c->path,
                 c->hosthdr, (int)c->hdrs_len, c->hdrs);
    if (k < 0 || (size_t)k + c->req_len >= n)
        return OB_EHTTP;
    if (c->req_len)
        memcpy(c->reqbuf + k, c->req_body, c->req_len);
    c->reqbuf_len = (size_t)k + c->req_len;
    return 0;
}

static void direct_open(struct ob_http_call *c, bool fresh);

static void conn_end(void *owner, const char *msg, bool whole);

static void direct_send(struct ob_http_call *c)
{
    if (ob__conn_write(c->conn, c->reqbuf, c->reqbuf_len) != 0) {
        ob__conn_close(c->conn);
        conn_end(c, "cannot send the request", true); /* may be sent once more */
        return;
    }
    c->sent = true;
}

static void conn_ready(void *owner)
{
    struct ob_http_call *c = owner;

    if (c->state == ST_RUNNING)
        direct_send(c);
}

static int direct_body(void *ctx, const char *p, size_t n)
{
    struct ob_http_call *c = ctx;

    return body_store(c, p, n) != 0;
}

/* The response is complete (or cut at the cap): its headers go with it. */
static void direct_deliver(struct ob_http_call *c)
{
    free(c->hdr);
    c->hdr = c->hp.hdr;
    c->hdr_len = c->hp.hdr_len;
    c->hp.hdr = NULL;
    c->hp.hdr_len = c->hp.hdr_cap = 0;
    c->status = c->hp.status;
    call_done_now(c);
}

static void conn_data(void *owner, const char *p, size_t n)
{
    struct ob_http_call *c = owner;
    struct ob__conn *conn = c->conn;
    char msg[200];
    size_t used;
    int rc;

    if (c->state != ST_RUNNING) {
        call_detach(c);
        return;
    }
    rc = ob__hp_feed(&c->hp, p, n, &used);
    switch (rc) {
    case OB__HP_MORE:
        return;
    case OB__HP_DONE:
        /* to the pool first: the callback may start the next request */
        c->conn = NULL;
        ob__conn_release(conn, ob__hp_reusable(&c->hp) && used == n && !c->h->freeing);
        direct_deliver(c);
        return;
    case OB__HP_STOP:
        if (!c->truncated) {
            call_finish(c, OB_ENOMEM, NULL);
            return;
        }
        call_detach(c); /* OB_E2BIG: the rest is not read, the connection goes */
        direct_deliver(c);
        return;
    default:
        snprintf(msg, sizeof(msg), "invalid response: %s", c->hp.err);
        call_finish(c, OB_EHTTP, msg);
        return;
    }
}

/* The connection ended (it is closed already). */
static void conn_end(void *owner, const char *msg, bool whole)
{
    struct ob_http_call *c = owner;

    c->conn = NULL;
    if (c->state != ST_RUNNING)
        return;
    /* A kept connection the server had dropped: once more on a new one,
     * when nothing of a response came and sending again is harmless. */
    if (c->reused && !c->retried && !ob__hp_started(&c->hp) && safe_method(c->method)) {
        c->retried = true;
        direct_open(c, true);
        return;
    }
    /* Over TLS only close_notify proves that a body the close delimits is
     * whole (a FIN can come from anyone on the path), as with curl; other
     * responses carry their length and only need the plain EOF. */
    if (!msg && !whole && ob__hp_until_close(&c->hp))
        msg = "TLS: the connection ended without close_notify: the response may be cut short";
    if (msg) {
        call_finish(c, OB_EHTTP, msg);
        return;
    }
    if (ob__hp_eof(&c->hp) == OB__HP_DONE) {
        direct_deliver(c); /* a body delimited by the close */
        return;
    }
    call_finish(c, OB_EHTTP, c->hp.err);
}

static const struct ob__conn_ops conn_ops = {conn_ready, conn_data, conn_end};

/* A connection from the pool (a kept one unless fresh), then the request. */
static void direct_open(struct ob_http_call *c, bool fresh)
{
    struct ob__conn_key k = {c->tlsctx, c->tls && c->insecure, c->host, c->port};
    const char *why = NULL;
    char msg[200];

    ob__hp_free(&c->hp);
    ob__hp_init(&c->hp, c->head, MAX_HEADER_BYTES, direct_body, c);
    c->sent = false;
    if (ob__pool_get(c->h->pool, &k, c->addr, fresh, &conn_ops, c, &c->conn, &c->reused, &why)) {
        snprintf(msg, sizeof(msg), "cannot connect: %s", why ? why : "failed");
        call_finish(c, OB_EHTTP, msg);
        return;
    }
    if (c->reused)
        direct_send(c);
}

static void call_connect(struct ob_http_call *c, const char *address)
{
    if (!c->direct) {
        lws_connect(c, address);
        return;
    }
    ob_strlcpy(c->addr, address, sizeof(c->addr));
    if (c->tls && c->insecure)
        warn_insecure();
    direct_open(c, false);
}

/* Through the proxy at addr (numeric): lws gets the address, so it does
 * not look the proxy's name up itself (a blocking getaddrinfo() on the loop
 * at every connection). The vhost is the proxy's own; its address is set
 * right before each connection, which reads it at once. */
static void proxy_dial(struct ob_http_call *c, const char *addr)
{
    if (!ob__proxy_point(c->vh, c->proxy, addr)) {
        call_finish(c, OB_EHTTP, "cannot use the proxy");
        return;
    }
    lws_connect(c, c->host); /* the proxy resolves the target's name */
}

static void resolved(void *owner, const char *addr, const char *why)
{
    struct ob_http_call *c = owner;
    const char *name = c->proxy ? c->phost : c->host;
    char msg[OB__URL_MAX_HOST + 64];

    c->res = NULL;
    if (c->state != ST_RUNNING)
        return;
    if (!addr && c->proxy) {
        snprintf(msg, sizeof(msg), "the proxy: %s", why);
        call_finish(c, OB_EHTTP, msg);
        return;
    }
    if (!addr) {
        call_finish(c, OB_EHTTP, why);
        return;
    }
    ob__dns_store(&c->h->dns, name, addr, uv_now(c->h->loop));
    if (c->proxy)
        proxy_dial(c, addr);
    else
        call_connect(c, addr);
}

/* Connects by name: from the cache, or after an asynchronous lookup. */
static void call_start(struct ob_http_call *c)
{
    const char *name = c->host, *addr;

    if (c->proxy) { /* the proxy's name is ours to resolve, the target's its */
        if (!ob__proxy_host(c->proxy, c->phost, sizeof(c->phost))) {
            call_finish(c, OB_EHTTP, "cannot use the proxy");
            return;
        }
        name = c->phost;
    }
    if (ob__dns_numeric(name)) {
        if (c->proxy)
            proxy_dial(c, name);
        else
            call_connect(c, name);
        return;
    }
    addr = ob__dns_lookup(&c->h->dns, name, uv_now(c->h->loop));
    if (addr && c->proxy)
        proxy_dial(c, addr);
    else if (addr)
        call_connect(c, addr);
    else if (ob__dns_start(c->h->loop, name, resolved, c, &c->res) != 0)
        call_finish(c, OB_EHTTP, "cannot resolve the host name");
}

int ob_http_request(struct ob_http *h, const struct ob_http_req *req, ob_http_cb cb, void *data,
                    struct ob_http_call **call_out)
{
    struct ob_http_call *c;
    struct lws_vhost *vh = NULL;
    SSL_CTX *tlsctx = NULL;
    const char *proxy, *why;
    struct ob__url u;
    int rc;

    if (call_out)
        *call_out = NULL;
    if (!h || !req || !req->url || !cb || h->freeing)
        return OB_EINVAL;
    if (!req->method || !token_ok(req->method, MAX_METHOD_LEN))
        return OB_EINVAL;
    if (req->body_len && !req->body)
        return OB_EINVAL;
    if (ob__url_parse(req->url, &u))
        return OB_EINVAL;
    /* the TLS files only matter (and are only loaded) for https */
    proxy = ob__proxy_for(&h->proxy, u.tls, u.host, u.port);
    if (proxy) {
        vh = vh_get(h, u.tls ? req : NULL, proxy, &rc); /* lws, through the tunnel */
        if (!vh)
            return rc;
    } else if (u.tls) {
        tlsctx = ob__pool_tls(h->pool, req->ca_file, req->cert_file, req->key_file, &why);
        if (!tlsctx) {
            ob_error("http", "%s", why);
            return OB_EHTTP;
        }
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return OB_ENOMEM;
    c->kind = OB__KIND_HTTPC;
    c->h = h;
    c->cb = cb;
    c->data = data;
    c->max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    c->vh = vh;
    c->proxy = proxy;
    c->direct = !proxy;
    c->tlsctx = tlsctx;
    rc = call_setup(c, req, &u);
    if (!rc && c->direct)
        rc = build_request(c);
    if (!rc)
        rc = uv_timer_init(h->loop, &c->timer);
    if (rc) {
        free(c->hdrs);
        free(c->req_body);
        free(c->path);
        free(c->reqbuf);
        free(c);
        return rc;
    }
    c->timer.data = c;
    h->nalloc++;
    c->linked = true;
    c->next = h->calls;
    if (h->calls)
        h->calls->prev = c;
    h->calls = c;
    h->active++;
    c->start_ns = uv_hrtime();
    uv_update_time(h->loop);
    c->deadline =
        uv_now(h->loop) + (uint64_t)(req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    arm_tick(c);
    h->in_request = true;
    call_start(c);
    h->in_request = false;
    if (call_out)
        *call_out = c;
    return 0;
}

void ob_http_cancel(struct ob_http_call *call)
{
    if (!call || call->delivering || call->state == ST_CANCELLED)
        return;
    call_unlink(call);
    call->state = ST_CANCELLED;
    ob__conn_close(call->conn); /* never back to the pool */
    call->conn = NULL;
    uv_timer_start(&call->timer, call_timer_cb, 0, 0); /* closes the connection */
}

size_t ob_http_active(const struct ob_http *h)
{
    return h ? h->active : 0;
}

/* ---- the client ---------------------------------------------------------- */

static int http_alloc(struct ob_http **out, uv_loop_t *loop)
{
    struct ob_http *h = calloc(1, sizeof(*h));
    int rc;

    *out = NULL;
    if (!h)
        return OB_ENOMEM;
    h->loop = loop;
    rc = ob__proxy_env_load(&h->proxy);
    if (!rc)
        rc = ob__pool_new(&h->pool, loop);
    if (!rc)
        rc = uv_timer_init(loop, &h->later);
    if (rc) {
        ob__pool_free(h->pool);
        ob__proxy_env_free(&h->proxy);
        free(h);
        return rc;
    }
    h->later.data = h;
    h->nalloc = 1;
    *out = h;
    return 0;
}

/* Drops the vhosts (and their connections) or the context of our own. */
static void http_release(struct ob_http *h)
{
    while (h->vhosts) {
        struct httpc_vh *v = h->vhosts;

        h->vhosts = v->next;
        if (!h->own_lws && !h->lws->freeing)
            lws_vhost_destroy(v->vh); /* with its connections */
        vh_free(v);
    }
    ob__proxy_env_free(&h->proxy);
    ob__pool_free(h->pool); /* closes the kept connections */
    h->pool = NULL;
    if (h->own_lws)
        ob_lws_free(h->lws);
    h->lws = NULL;
    uv_close((uv_handle_t *)&h->later, later_closed);
}

static void later_cb(uv_timer_t *t)
{
    http_release(t->data);
}

int ob_http_new_on(struct ob_http **out, struct ob_lws *lws)
{
    int rc;

    if (!out)
        return OB_EINVAL;
    *out = NULL;
    if (!lws)
        return OB_EINVAL;
    rc = http_alloc(out, lws->loop);
    if (!rc)
        (*out)->lws = lws;
    return rc;
}

int ob_http_new(struct ob_http **out, uv_loop_t *loop)
{
    struct ob_http *h;
    int rc;

    if (!out)
        return OB_EINVAL;
    rc = http_alloc(&h, loop);
    if (rc)
        return rc;
    rc = ob_lws_new(&h->lws, loop);
    if (rc) {
        h->freeing = true;
        http_release(h); /* h goes when its timer is closed */
        return rc;
    }
    h->own_lws = true;
    *out = h;
    return 0;
}

void ob_http_free(struct ob_http *h)
{
    if (!h || h->freeing)
        return;
    h->freeing = true;
    /* every wsi forgets its call first: lws may close them right below */
    for (struct ob_http_call *c = h->calls; c; c = c->next)
        call_detach(c);
    while (h->calls) {
        struct ob_http_call *c = h->calls;

        call_unlink(c);
        c->state = ST_CANCELLED;
        uv_timer_start(&c->timer, call_timer_cb, 0, 0);
    }
    if (h->depth > 0)
        uv_timer_start(&h->later, later_cb, 0, 0); /* not from inside lws */
    else
        http_release(h);
}

/* ---- responses ------------------------------------------------------------ */

static const char *resp_header(const struct ob_http_call *c, const char *name)
{
    const char *found = NULL;
    size_t off = 0;

    while (off < c->hdr_len) {
        const char *n = c->hdr + off;
        const char *v = n + strlen(n) + 1;

        if ((size_t)(v - c->hdr) >= c->hdr_len)
            break;
        if (strcasecmp(n, name) == 0)
            found = v;
        off = (size_t)(v - c->hdr) + strlen(v) + 1;
    }
    return found;
}

const char *ob_http_resp_header(const struct ob_http_resp *resp, const char *name)
{
    if (!resp || !name || !resp->priv_)
        return NULL;
    return resp_header(resp->priv_, name);
}

char *ob_http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n;
    char *out, *p;

    if (!s)
        return NULL;
    n = strlen(s);
    if (n > (size_t)(1 << 30))
        return NULL;
    out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    p = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}
