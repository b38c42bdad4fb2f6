/* HTTP servers on libwebsockets: one vhost per ob_http_server, requests
 * collected into ob_http_exchange objects answered (now or later) with
 * ob_http_reply, and websocket upgrades on registered paths.
 *
 * An exchange belongs to its connection until the handler runs; from then
 * on it also waits for ob_http_reply. It is freed when both are done: the
 * reply was written (or dropped), and the connection moved on or closed.
 * Exchanges whose client left before the reply are kept as orphans, so a
 * late ob_http_reply is still safe; ob_lws_free frees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lws_int.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEFAULT_MAX_BODY (1024u * 1024)
#define WRITE_CHUNK (16u * 1024)
#define REPLY_WAIT_SECS 120 /* how long a connection waits for an async reply */
#define MAX_REPLY_HEADERS 32

struct endpoint {
    char *path;
    struct ob_ws_cbs cbs;
    void *data;
};

struct ob_http_server {
    struct ob_lws *l;
    struct lws_vhost *vh;
    ob_http_handler handler;
    void *data;
    size_t max_body;
    int port;
    struct endpoint eps[OB__WS_MAX_ENDPOINTS];
    size_t neps;
    struct ob_http_exchange *exchanges;
    struct ob_http_server *prev, *next;
    char name[32];
    char iface[64];
    char *cert, *key;
    bool dead;
    bool *gone; /* during lws_create_vhost: set when lws finalized s already */
};

struct ob_http_exchange {
    enum ob__lws_kind kind; /* first member: OB__KIND_EXCHANGE */
    struct ob_http_server *srv;
    struct lws *wsi;
    struct ob_http_exchange *prev, *next; /* in srv->exchanges or l->orphans */
    struct ob_http_exchange **list;       /* the list it is in, or NULL */
    char method[12];
    char *path, *query;
    char *body;
    size_t body_len, body_cap;
    char remote[64];
    struct ob__scratch *scratch;
    bool want_body, too_big;
    bool handler_called, in_handler;
    bool replied;     /* ob_http_reply was called */
    bool dead;        /* the connection is gone */
    bool close_after; /* close instead of keep-alive (413) */
    /* the reply */
    int status;
    char *ctype;
    char **rheaders;
    unsigned char *rbody; /* LWS_PRE + rlen */
    size_t rlen, rsent;
    bool hdrs_sent;
};

static unsigned server_seq;

/* ---- exchanges ---------------------------------------------------------- */

static void ex_link(struct ob_http_exchange *ex, struct ob_http_exchange **list)
{
    ex->list = list;
    ex->prev = NULL;
    ex->next = *list;
    if (*list)
        (*list)->prev = ex;
    *list = ex;
}

static void ex_unlink(struct ob_http_exchange *ex)
{
    if (!ex->list)
        return;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        *ex->list = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    ex->prev = ex->next = NULL;
    ex->list = NULL;
}

static void ex_free(struct ob_http_exchange *ex)
{
    if (!ex)
        return;
    ex_unlink(ex);
    free(ex->path);
    free(ex->query);
    free(ex->body);
    ob__scratch_free(&ex->scratch);
    free(ex->ctype);
    if (ex->rheaders)
        for (char **p = ex->rheaders; *p; p++)
            free(*p);
    free(ex->rheaders);
    free(ex->rbody);
    free(ex);
}

/* The connection no longer carries ex. */
static void ex_detach_wsi(struct ob_http_exchange *ex, struct ob_lws *l)
{
    if (ex->wsi) {
        lws_set_opaque_user_data(ex->wsi, NULL);
        ex->wsi = NULL;
    }
    ex->dead = true;
    ex_unlink(ex);
    if (ex->in_handler)
        return; /* freed when the handler returns */
    if (ex->handler_called && !ex->replied && l)
        ex_link(ex, &l->orphans); /* ob_http_reply will free it */
    else
        ex_free(ex);
}

static void call_handler(struct ob_http_exchange *ex)
{
    struct ob_http_server *s = ex->srv;
    struct ob_http_srv_req req = {
        .method = ex->method,
        .path = ex->path,
        .query = ex->query ? ex->query : "",
        .body = ex->body ? ex->body : "",
        .body_len = ex->body_len,
        .remote = ex->remote,
        .priv_ = ex,
    };

    ex->handler_called = true;
    ex->in_handler = true;
    if (!ex->replied && ex->wsi)
        lws_set_timeout(ex->wsi, PENDING_TIMEOUT_HTTP_CONTENT, REPLY_WAIT_SECS);
    s->handler(s->data, ex, &req);
    ex->in_handler = false;
    ob__scratch_free(&ex->scratch);
    free(ex->body);
    ex->body = NULL;
    ex->body_len = ex->body_cap = 0;
    if (ex->dead) {
        /* the connection or the server went away during the handler */
        ex->dead = false;
        ex_detach_wsi(ex, s->l && !s->l->freeing ? s->l : NULL);
    }
}

/* Queues an answer produced by us (413, 404 without a handler). */
static void auto_reply(struct ob_http_exchange *ex, int status, const char *text)
{
    ex->handler_called = true;
    ob_http_reply(ex, status, "text/plain", text, strlen(text), NULL);
}

static bool method_of(struct lws *wsi, char *out, size_t len)
{
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
        {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            ob_strlcpy(out, methods[i].name, len);
            return true;
        }
    return false;
}

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    char *v;

    if (n <= 0)
        return NULL;
    v = malloc((size_t)n + 1);
    if (v && lws_hdr_copy(wsi, v, n + 1, tok) < 0) {
        free(v);
        v = NULL;
    }
    return v;
}

/* Appends s[0..n) percent-encoded (all but the unreserved characters). */
static size_t encode_into(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}

/* The query string. lws splits it at '&' into fragments and URL-decodes
 * them, so "v=a%26b" would read as "v=a&b": each fragment is encoded again
 * (name and value apart) and the fragments joined with '&'. A query built
 * with ob_http_escape comes back exactly as sent. */
static char *query_dup(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    char *frag, *q;
    size_t len = 0;

    if (total <= 0)
        return NULL;
    frag = malloc((size_t)total + 1);
    q = malloc((size_t)total * 4 + 2);
    if (!frag || !q) {
        free(frag);
        free(q);
        return NULL;
    }
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        const char *eq;

        if (n <= 0)
            break;
        if (len)
            q[len++] = '&';
        eq = memchr(frag, '=', (size_t)n);
        if (eq) {
            len += encode_into(q + len, frag, (size_t)(eq - frag));
            q[len++] = '=';
            len += encode_into(q + len, eq + 1, (size_t)(n - (eq - frag) - 1));
        } else {
            len += encode_into(q + len, frag, (size_t)n);
        }
    }
    q[len] = '\0';
    free(frag);
    return q;
}

static int on_http(struct ob_http_server *s, struct lws *wsi, const char *in, size_t len)
{
    struct ob_http_exchange *ex = calloc(1, sizeof(*ex));
    char *cl, *te;
    unsigned long long clen = 0;

    if (!ex)
        return -1;
    ex->kind = OB__KIND_EXCHANGE;
    ex->srv = s;
    ex->wsi = wsi;
    ex_link(ex, &s->exchanges);
    lws_set_opaque_user_data(wsi, ex);
    if (!method_of(wsi, ex->method, sizeof(ex->method)))
        ob_strlcpy(ex->method, "GET", sizeof(ex->method));
    ex->path = strndup(in ? in : "/", in ? len : 1);
    ex->query = query_dup(wsi);
    if (!ex->path)
        return -1;
    if (lws_get_peer_simple(wsi, ex->remote, sizeof(ex->remote)) == NULL)
        ex->remote[0] = '\0';
    cl = hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    te = hdr_dup(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    if (cl)
        clen = strtoull(cl, NULL, 10);
    ex->want_body = clen > 0 || (te && strstr(te, "chunked"));
    free(cl);
    free(te);
    if (clen > s->max_body) {
        ex->too_big = true;
        if (clen > s->max_body * 4 + DEFAULT_MAX_BODY) {
            /* not worth draining: answer and close right away */
            ex->want_body = false;
            ex->close_after = true;
            auto_reply(ex, 413, "request body too large\n");
        }
        return 0;
    }
    if (!ex->want_body)
        call_handler(ex);
    return 0;
}

static int on_body(struct ob_http_exchange *ex, const char *in, size_t len)
{
    size_t max = ex->srv->max_body;

    if (ex->too_big)
        return 0; /* drained and dropped */
    if (ex->body_len + len > max) {
        ex->too_big = true;
        free(ex->body);
        ex->body = NULL;
        ex->body_len = ex->body_cap = 0;
        return 0;
    }
    if (ex->body_len + len + 1 > ex->body_cap) {
        size_t cap = ex->body_cap ? ex->body_cap : 1024;
        char *nb;

        while (cap < ex->body_len + len + 1)
            cap *= 2;
        nb = realloc(ex->body, cap);
        if (!nb)
            return -1;
        ex->body = nb;
        ex->body_cap = cap;
    }
    if (len)
        memcpy(ex->body + ex->body_len, in, len);
    ex->body_len += len;
    ex->body[ex->body_len] = '\0';
    return 0;
}

static int write_headers(struct ob_http_exchange *ex, struct lws *wsi)
{
    size_t cap = LWS_PRE + 1024 + (ex->ctype ? strlen(ex->ctype) : 0);
    unsigned char *buf, *start, *p, *end;
    int rc = -1;

    if (ex->rheaders)
        for (char **h = ex->rheaders; *h; h++)
            cap += strlen(*h) + 8;
    buf = malloc(cap);
    if (!buf)
        return -1;
    start = p = buf + LWS_PRE;
    end = buf + cap - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)ex->status, ex->ctype,
                                    (lws_filepos_t)ex->rlen, &p, end))
        goto out;
    for (char **h = ex->rheaders; h && *h; h++) {
        char name[128];
        const char *colon = strchr(*h, ':'), *v;
        size_t nl = (size_t)(colon - *h);

        if (nl + 2 > sizeof(name))
            goto out;
        for (size_t i = 0; i < nl; i++)
            name[i] = (char)((*h)[i] >= 'A' && (*h)[i] <= 'Z' ? (*h)[i] + 32 : (*h)[i]);
        name[nl] = ':';
        name[nl + 1] = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (lws_add_http_header_by_name(wsi, (unsigned char *)name, (const unsigned char *)v,
                                        (int)strlen(v), &p, end))
            goto out;
    }
    if (ex->close_after && lws_add_http_header_by_name(wsi, (unsigned char *)"connection:",
                                                       (const unsigned char *)"close", 5, &p, end))
        goto out;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    rc = 0;
out:
    free(buf);
    return rc;
}

/* The reply is written: the connection goes on to its next request. */
static int finish(struct ob_http_exchange *ex, struct lws *wsi)
{
    bool close_after = ex->close_after;

    lws_set_opaque_user_data(wsi, NULL);
    ex->wsi = NULL;
    if (ex->in_handler) {
        ex->dead = true; /* freed when the handler returns */
        ex_unlink(ex);
    } else {
        ex_free(ex);
    }
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writable(struct ob_http_exchange *ex, struct lws *wsi)
{
    size_t chunk;
    int n;

    if (!ex->replied)
        return 0;
    if (!ex->hdrs_sent) {
        if (write_headers(ex, wsi))
            return -1;
        ex->hdrs_sent = true;
        if (ex->rlen == 0 || strcmp(ex->method, "HEAD") == 0)
            return finish(ex, wsi);
        lws_callback_on_writable(wsi);
        return 0;
    }
    chunk = ex->rlen - ex->rsent;
    if (chunk > WRITE_CHUNK)
        chunk = WRITE_CHUNK;
    /* the LWS_PRE bytes before a later chunk were already sent */
    n = lws_write(wsi, ex->rbody + LWS_PRE + ex->rsent, chunk,
                  ex->rsent + chunk == ex->rlen ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (n < 0)
        return -1;
    ex->rsent += chunk;
    if (ex->rsent < ex->rlen) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return finish(ex, wsi);
}

/* ---- websocket upgrades ------------------------------------------------- */

static int on_upgrade(struct ob_http_server *s, struct lws *wsi)
{
    char path[512];
    const struct endpoint *ep = NULL;
    struct ob_ws *ws;
    char *q;
    int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

    if (n <= 0)
        return 1;
    q = strchr(path, '?');
    if (q)
        *q = '\0';
    for (size_t i = 0; i < s->neps && !ep; i++)
        if (strcmp(s->eps[i].path, path) == 0)
            ep = &s->eps[i];
    if (!ep)
        return 1; /* refused */
    ws = ob__ws_alloc(s->l, &ep->cbs, ep->data, 0);
    if (!ws)
        return 1;
    ws->srv = s;
    ws->wsi = wsi;
    ws->query = query_dup(wsi);
    lws_set_opaque_user_data(wsi, ws);
    return 0;
}

int ob__srv_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct ob_http_server *s = vh ? lws_vhost_user(vh) : NULL;
    struct ob_http_exchange *ex = lws_get_opaque_user_data(wsi);

    (void)user;
    if (ex && ex->kind != OB__KIND_EXCHANGE)
        ex = NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!s || s->dead)
            return -1;
        return on_http(s, wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        return ex ? on_body(ex, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!ex || ex->handler_called)
            return 0;
        if (ex->too_big) {
            ex->close_after = true;
            auto_reply(ex, 413, "request body too large\n");
        } else {
            call_handler(ex);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return ex ? on_writable(ex, wsi) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (ex)
            ex_detach_wsi(ex, l);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!s || s->dead)
            return 1;
        return on_upgrade(s, wsi);
    default:
        return 0;
    }
}

/* ---- servers ---------------------------------------------------------------- */

static void server_free(struct ob_http_server *s)
{
    for (size_t i = 0; i < s->neps; i++)
        free(s->eps[i].path);
    free(s->cert);
    free(s->key);
    free(s);
}

static void server_unlink(struct ob_http_server *s)
{
    struct ob_lws *l = s->l;

    if (s->prev)
        s->prev->next = s->next;
    else
        l->servers = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* lws is about to free the vhost: nothing refers to s any more. */
static void vhost_finalize(struct lws_vhost *vh, void *arg)
{
    struct ob_http_server *s = arg;

    (void)vh;
    if (s->gone)
        *s->gone = true;
    server_unlink(s);
    server_free(s);
}

/* Drops every exchange and connection of s without callbacks. */
static void server_release(struct ob_http_server *s, struct ob_lws *keep_orphans)
{
    struct ob_lws *l = s->l;

    s->dead = true;
    while (s->exchanges)
        ex_detach_wsi(s->exchanges, keep_orphans);
    for (struct ob_ws *ws = l->conns, *next; ws; ws = next) {
        next = ws->next;
        if (ws->srv == s)
            ob__ws_detach(ws);
    }
}

/* "127.0.0.1:0", ":8080", "[::1]:9000" */
static int parse_listen(const char *listen, char *iface, size_t ilen, int *port)
{
    const char *colon;
    char *end;
    long p;

    iface[0] = '\0';
    if (!listen)
        return OB_EINVAL;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');

        if (!rb || rb[1] != ':' || (size_t)(rb - listen - 1) >= ilen)
            return OB_EINVAL;
        memcpy(iface, listen + 1, (size_t)(rb - listen - 1));
        iface[rb - listen - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= ilen)
            return OB_EINVAL;
        memcpy(iface, listen, (size_t)(colon - listen));
        iface[colon - listen] = '\0';
    }
    p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 0 || p > 65535)
        return OB_EINVAL;
    *port = (int)p;
    return 0;
}

int ob_http_server_new(struct ob_lws *l, const struct ob_http_server_opts *opts,
                       ob_http_handler handler, void *data, struct ob_http_server **out)
{
    struct lws_context_creation_info info;
    struct ob_http_server *s;
    struct lws_vhost *vh;
    bool gone = false;
    int port = 0, rc;

    if (out)
        *out = NULL;
    if (!l || !opts || !handler || !out || l->freeing)
        return OB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return OB_ENOMEM;
    rc = parse_listen(opts->listen, s->iface, sizeof(s->iface), &port);
    if (rc) {
        server_free(s);
        return rc;
    }
    s->l = l;
    s->handler = handler;
    s->data = data;
    s->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    snprintf(s->name, sizeof(s->name), "opsbot-http-%u", ++server_seq);
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = s->iface[0] ? s->iface : NULL;
    info.protocols = ob__lws_protocols;
    info.vhost_name = s->name;
    info.user = s;
    info.finalize = vhost_finalize;
    info.finalize_arg = s;
    if (opts->tls_cert && opts->tls_key) {
        s->cert = strdup(opts->tls_cert);
        s->key = strdup(opts->tls_key);
        if (!s->cert || !s->key) {
            server_free(s);
            return OB_ENOMEM;
        }
        /* a server: no client trust store (src/lws.c, trust_os_store) */
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
        info.ssl_cert_filepath = s->cert;
        info.ssl_private_key_filepath = s->key;
    }
    s->next = l->servers;
    if (l->servers)
        l->servers->prev = s;
    l->servers = s;
    /* When the port cannot be bound, lws destroys the half-made vhost and
     * calls vhost_finalize (which frees s) before it returns: ASan caught
     * the write below landing in freed memory. */
    s->gone = &gone;
    vh = lws_create_vhost(l->ctx, &info);
    if (gone) {
        ob_error("http", "cannot listen on %s", opts->listen);
        return OB_EWS;
    }
    s->gone = NULL;
    s->vh = vh;
    if (!s->vh) {
        ob_error("http", "cannot listen on %s", opts->listen);
        server_unlink(s);
        server_free(s);
        return OB_EWS;
    }
    s->port = lws_get_vhost_listen_port(s->vh);
    *out = s;
    return 0;
}

int ob_http_server_port(const struct ob_http_server *s)
{
    return s ? s->port : -1;
}

int ob_http_server_ws(struct ob_http_server *s, const char *path, const struct ob_ws_cbs *cbs,
                      void *data)
{
    struct endpoint *ep;

    if (!s || !path || path[0] != '/' || !cbs || s->dead)
        return OB_EINVAL;
    if (strlen(path) >= 512)
        return OB_E2BIG;
    if (s->neps >= OB__WS_MAX_ENDPOINTS)
        return OB_E2BIG;
    ep = &s->eps[s->neps];
    ep->path = strdup(path);
    if (!ep->path)
        return OB_ENOMEM;
    ep->cbs = *cbs;
    ep->data = data;
    s->neps++;
    return 0;
}

void ob_http_server_free(struct ob_http_server *s)
{
    if (!s || s->dead)
        return;
    server_release(s, s->l);
    lws_vhost_destroy(s->vh); /* s is freed by vhost_finalize */
}

void ob__srv_release_all(struct ob_lws *l)
{
    for (struct ob_http_server *s = l->servers; s; s = s->next)
        if (!s->dead)
            server_release(s, NULL);
    while (l->orphans) {
        struct ob_http_exchange *ex = l->orphans;

        ex_unlink(ex);
        ex_free(ex);
    }
}

void ob__srv_free_leftovers(struct ob_lws *l)
{
    while (l->servers) {
        struct ob_http_server *s = l->servers;

        server_unlink(s);
        server_free(s);
    }
}

/* ---- requests and replies ------------------------------------------------ */

const char *ob_http_srv_header(const struct ob_http_srv_req *req, const char *name)
{
    struct ob_http_exchange *ex;

    if (!req || !req->priv_)
        return NULL;
    ex = req->priv_;
    if (!ex->in_handler || !ex->wsi)
        return NULL;
    return ob__lws_header(ex->wsi, name, &ex->scratch);
}

static int copy_reply(struct ob_http_exchange *ex, const char *content_type, const char *body,
                      size_t len, const char *const *headers)
{
    size_t n = 0;

    if (content_type) {
        ex->ctype = strdup(content_type);
        if (!ex->ctype)
            return OB_ENOMEM;
    }
    ex->rbody = malloc(LWS_PRE + len + 1);
    if (!ex->rbody)
        return OB_ENOMEM;
    if (len)
        memcpy(ex->rbody + LWS_PRE, body, len);
    ex->rlen = len;
    while (headers && headers[n])
        n++;
    if (n > MAX_REPLY_HEADERS)
        return OB_E2BIG;
    if (!n)
        return 0;
    ex->rheaders = calloc(n + 1, sizeof(char *));
    if (!ex->rheaders)
        return OB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *h = headers[i], *colon = strchr(h, ':');

        if (!colon || colon == h || strpbrk(h, "\r\n") || (size_t)(colon - h) > 100)
            return OB_EINVAL;
        ex->rheaders[i] = strdup(h);
        if (!ex->rheaders[i])
            return OB_ENOMEM;
    }
    return 0;
}

int ob_http_reply(struct ob_http_exchange *ex, int status, const char *content_type,
                  const char *body, size_t len, const char *const *headers)
{
    int rc;

    if (!ex || ex->replied)
        return OB_EINVAL;
    if (status < 100 || status > 999 || (len && !body))
        return OB_EINVAL;
    if (content_type && strpbrk(content_type, "\r\n"))
        return OB_EINVAL;
    ex->replied = true;
    if (!ex->wsi) {
        /* the client went away: drop the reply quietly */
        if (!ex->in_handler)
            ex_free(ex);
        return 0;
    }
    ex->status = status;
    rc = copy_reply(ex, content_type, body, len, headers);
    if (rc) {
        /* cannot answer as asked: tell the client something went wrong */
        free(ex->ctype);
        ex->ctype = NULL;
        if (ex->rheaders)
            for (char **p = ex->rheaders; *p; p++)
                free(*p);
        free(ex->rheaders);
        ex->rheaders = NULL;
        ex->rlen = 0;
        ex->status = 500;
    }
    lws_callback_on_writable(ex->wsi);
    return rc;
}
