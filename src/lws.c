/* libwebsockets on the caller's libuv loop ("foreign loop"): the context,
 * websocket clients, and the websocket machinery shared with server-side
 * connections (src/lws_server.c has the HTTP server and the upgrades).
 *
 * Teardown rule of lws 4.1 with a foreign loop: the first
 * lws_context_destroy() only starts closing lws's own uv handles; once they
 * are closed (the loop must run for that) a second call frees the context.
 * ob_lws_free does the first call and a small timer of ours waits for lws's
 * handles to leave the loop before doing the second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "http_dns.h"
#include "http_proxy.h"
#include "lws_int.h"
#include "tls_trust.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define LWS_FD_LIMIT 1024 /* sockets of one context at once */

#define DEFAULT_MAX_MESSAGE (1024u * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define MAX_SEND (16u * 1024 * 1024)
#define FRAGMENT (32u * 1024) /* large messages are sent in fragments of this size */
#define WRITE_BURST 64        /* frames written in one writeable callback at most */
#define REAP_MAX_TICKS 5000u  /* ~5 s waiting for lws's handles, then finish anyway */
#define MAX_URL 2048

static struct lws_context *destroyed_sink; /* lws writes NULL here when done */

/* ---- logging ----------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        ob_error("lws", "%.*s", (int)n, line);
    else
        ob_warn("lws", "%.*s", (int)n, line);
}

/* ---- header lookup (server side requests and upgrades) ------------------ */

void ob__scratch_free(struct ob__scratch **list)
{
    while (*list) {
        struct ob__scratch *s = *list;

        *list = s->next;
        free(s);
    }
}

static struct ob__scratch *scratch_new(struct ob__scratch **list, size_t len)
{
    struct ob__scratch *s = malloc(sizeof(*s) + len + 1);

    if (!s)
        return NULL;
    s->next = *list;
    *list = s;
    s->val[0] = '\0';
    return s;
}

const char *ob__lws_header(struct lws *wsi, const char *name, struct ob__scratch **list)
{
    char key[80];
    size_t n = 0;
    struct ob__scratch *s;
    int len;

    if (!wsi || !name || !*name)
        return NULL;
    for (; name[n]; n++) {
        if (n + 2 >= sizeof(key))
            return NULL;
        key[n] = (char)((name[n] >= 'A' && name[n] <= 'Z') ? name[n] + 32 : name[n]);
    }
    key[n++] = ':';
    key[n] = '\0';
    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const unsigned char *tn = lws_token_to_string((enum lws_token_indexes)t);

        if (!tn || strcmp((const char *)tn, key) != 0)
            continue;
        len = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (len <= 0)
            return NULL;
        s = scratch_new(list, (size_t)len);
        if (!s || lws_hdr_copy(wsi, s->val, len + 1, (enum lws_token_indexes)t) < 0)
            return NULL;
        return s->val;
    }
    len = lws_hdr_custom_length(wsi, key, (int)n);
    if (len < 0)
        return NULL;
    s = scratch_new(list, (size_t)len);
    if (!s || lws_hdr_custom_copy(wsi, s->val, len + 1, key, (int)n) < 0)
        return NULL;
    return s->val;
}

/* ---- ob_ws lifecycle ------------------------------------------------------ */

static void ws_timer_cb(uv_timer_t *t);

static void ws_unlink(struct ob_ws *ws)
{
    struct ob_lws *l = ws->l;

    if (!l)
        return;
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        l->conns = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->prev = ws->next = NULL;
    ws->l = NULL;
}

static void queue_free(struct ob_ws *ws)
{
    while (ws->q_head) {
        struct ob__ws_msg *m = ws->q_head;

        ws->q_head = m->next;
        free(m);
    }
    ws->q_tail = NULL;
}

static void ws_free_cb(uv_handle_t *h)
{
    struct ob_ws *ws = h->data;

    queue_free(ws);
    if (ws->headers)
        for (char **p = ws->headers; *p; p++)
            free(*p);
    free(ws->headers);
    free(ws->query);
    free(ws->rx);
    ob__scratch_free(&ws->scratch);
    free(ws);
}

struct ob_ws *ob__ws_alloc(struct ob_lws *l, const struct ob_ws_cbs *cbs, void *data,
                           size_t max_message)
{
    struct ob_ws *ws = calloc(1, sizeof(*ws));

    if (!ws)
        return NULL;
    if (uv_timer_init(l->loop, &ws->timer) != 0) {
        free(ws);
        return NULL;
    }
    ws->kind = OB__KIND_WS;
    ws->timer.data = ws;
    ws->l = l;
    ws->cbs = *cbs;
    ws->data = data;
    ws->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
    ws->next = l->conns;
    if (l->conns)
        l->conns->prev = ws;
    l->conns = ws;
    return ws;
}

/* Where a client connection goes, kept while its host name resolves. */
struct ws_target {
    char name[256]; /* as in the URL */
    int port;
    bool tls, insecure;
    char path[MAX_URL + 1];
    char host[300];       /* Host: name[:port]; also SNI and the certificate check */
    struct lws_vhost *vh; /* the client vhost: direct, or the proxy's */
    bool proxied;         /* the proxy resolves the name */
    const char *proxy;    /* then: the proxy string (its vhost's) */
    char phost[256];      /* and its host, which we resolve */
};

/* A name lookup in flight ends without this connection. */
static void ws_forget_lookup(struct ob_ws *ws)
{
    ob__dns_drop(ws->resolving);
    ws->resolving = NULL;
    free(ws->target);
    ws->target = NULL;
}

void ob__ws_detach(struct ob_ws *ws)
{
    ws_unlink(ws);
    ws_forget_lookup(ws);
    ws->silent = true;
    ws->gone = true;
    if (ws->wsi) {
        lws_set_opaque_user_data(ws->wsi, NULL);
        ws->wsi = NULL;
    }
    uv_timer_stop(&ws->timer);
    uv_close((uv_handle_t *)&ws->timer, ws_free_cb);
}

/* The connection is over on the lws side: on_close follows from the loop,
 * never from inside the current call. */
static void ws_gone(struct ob_ws *ws, const char *why)
{
    if (ws->gone)
        return;
    ws->gone = true;
    ws_forget_lookup(ws);
    if (ws->wsi) {
        lws_set_opaque_user_data(ws->wsi, NULL);
        ws->wsi = NULL;
    }
    if (!ws->code) {
        ws->code = 1006;
        ob_strlcpy(ws->reason, why ? why : "", sizeof(ws->reason));
    }
    queue_free(ws);
    free(ws->rx);
    ws->rx = NULL;
    ws->rx_len = ws->rx_cap = 0;
    uv_timer_start(&ws->timer, ws_timer_cb, 0, 0);
}

/* Kills the connection without a close frame, from the loop (never from
 * inside an lws callback). LWS_TO_KILL_ASYNC is no good here: lws 4.1 on a
 * foreign libuv loop only notices it at its next service, which may be
 * seconds away. */
static void ws_kill(struct ob_ws *ws)
{
    if (ws->wsi)
        lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    if (!ws->gone)
        ws_gone(ws, ws->reason); /* lws said nothing (no callback in its state) */
}

/* The per-connection timer: the connect timeout, then every deferred
 * action (abort, the close frame, the on_close delivery). */
static void ws_timer_cb(uv_timer_t *t)
{
    struct ob_ws *ws = t->data;

    if (ws->gone) {
        ws_unlink(ws);
        if (!ws->silent && ws->cbs.on_close)
            ws->cbs.on_close(ws->data, ws, ws->code, ws->reason);
        uv_close((uv_handle_t *)&ws->timer, ws_free_cb);
        return;
    }
    if (ws->aborting) {
        ws_kill(ws);
        return;
    }
    if (ws->opened) {
        if (ws->close_req && !ws->close_sent && !ws->q_head && ws->wsi) {
            /* Returning -1 from a WRITEABLE callback makes lws 4.1 drop
             * the socket without the close frame; a close started from
             * outside its callbacks sends it and waits for the echo. */
            ws->close_sent = true;
            lws_close_reason(ws->wsi, (enum lws_close_status)ws->close_code,
                             (unsigned char *)ws->close_reason, strlen(ws->close_reason));
            lws_close_free_wsi(ws->wsi, (enum lws_close_status)ws->close_code, "ob_ws_close");
        }
        return;
    }
    /* connect timeout */
    ws->code = 1006;
    ob_strlcpy(ws->reason, "connect timeout", sizeof(ws->reason));
    ws_kill(ws);
}

/* ---- websocket events ----------------------------------------------------- */

static int ws_receive(struct ob_ws *ws, struct lws *wsi, const char *in, size_t len)
{
    if (ws->close_req || ws->aborting)
        return 0; /* closing: the rest is dropped */
    if (lws_is_first_fragment(wsi))
        ws->rx_len = 0;
    if (lws_frame_is_binary(wsi))
        return 0; /* text only: binary messages are dropped */
    if (ws->rx_len + len > ws->max_message) {
        /* Not "return -1": lws 4.1 keeps parsing the buffer it is in and
         * overruns its rx buffer on the client side. The close goes out
         * from the loop instead, like ob_ws_close. */
        queue_free(ws);
        ws->close_req = true;
        ws->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        ob_strlcpy(ws->close_reason, "message too big", sizeof(ws->close_reason));
        ws->code = ws->close_code;
        ob_strlcpy(ws->reason, ws->close_reason, sizeof(ws->reason));
        uv_timer_start(&ws->timer, ws_timer_cb, 0, 0);
        return 0;
    }
    if (ws->rx_len + len + 1 > ws->rx_cap) {
        size_t cap = ws->rx_cap ? ws->rx_cap : 4096;
        char *nb;

        while (cap < ws->rx_len + len + 1)
            cap *= 2;
        nb = realloc(ws->rx, cap);
        if (!nb)
            return -1;
        ws->rx = nb;
        ws->rx_cap = cap;
    }
    if (len)
        memcpy(ws->rx + ws->rx_len, in, len);
    ws->rx_len += len;
    ws->rx[ws->rx_len] = '\0';
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        size_t n = ws->rx_len;

        ws->rx_len = 0;
        if (ws->cbs.on_text && !ws->aborting)
            ws->cbs.on_text(ws->data, ws, ws->rx, n);
    }
    return 0;
}

/* Writes one queued frame (or fragment); 1 when the queue has more. */
static int ws_write_one(struct ob_ws *ws, struct lws *wsi)
{
    struct ob__ws_msg *m = ws->q_head;
    int n;

    if (m->ping) {
        n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_PING);
        m->off = m->len;
    } else {
        size_t chunk = m->len - m->off;
        bool first = m->off == 0;

        if (chunk > FRAGMENT)
            chunk = FRAGMENT;
        /* the LWS_PRE bytes before a later fragment are already sent */
        n = lws_write(wsi, m->buf + LWS_PRE + m->off, chunk,
                      (enum lws_write_protocol)lws_write_ws_flags(LWS_WRITE_TEXT, first,
                                                                  m->off + chunk == m->len));
        m->off += chunk;
    }
    if (n < 0)
        return -1;
    if (m->off == m->len) {
        ws->q_head = m->next;
        if (!ws->q_head)
            ws->q_tail = NULL;
        free(m);
    }
    return ws->q_head != NULL;
}

/* Small frames (acks, heartbeats) are written back to back while the
 * socket takes them: one frame per writeable callback would cost a loop
 * turn each and make acks queue behind other work under load. */
static int ws_writable(struct ob_ws *ws, struct lws *wsi)
{
    int more = 0;

    if (ws->aborting)
        return 0;
    if (ws->q_head) {
        for (int i = 0; i < WRITE_BURST; i++) {
            more = ws_write_one(ws, wsi);
            if (more <= 0 || lws_send_pipe_choked(wsi))
                break;
        }
        if (more < 0)
            return -1;
        if (ws->q_head || ws->close_req)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws->close_req && !ws->close_sent)
        uv_timer_start(&ws->timer, ws_timer_cb, 0, 0); /* the close frame, from the loop */
    return 0;
}

static void peer_close(struct ob_ws *ws, const unsigned char *in, size_t len)
{
    if (ws->code)
        return;
    if (len >= 2) {
        size_t rl = len - 2;

        ws->code = (in[0] << 8) | in[1];
        if (rl >= sizeof(ws->reason))
            rl = sizeof(ws->reason) - 1;
        memcpy(ws->reason, in + 2, rl);
        ws->reason[rl] = '\0';
    } else {
        ws->code = 1005; /* no status in the close frame */
        ws->reason[0] = '\0';
    }
}

int ob__ws_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason, void *in,
                    size_t len)
{
    struct ob_ws *ws = lws_get_opaque_user_data(wsi);

    (void)l;
    if (ws && ws->kind != OB__KIND_WS)
        return 0;
    if (ws && !ws->wsi && !ws->gone)
        ws->wsi = wsi; /* an event during lws_client_connect_via_info */
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        char **p = in, *end;

        if (!ws || !ws->headers)
            return 0;
        end = *p + len;
        for (char **h = ws->headers; *h; h++) {
            size_t n = strlen(*h);

            if ((size_t)(end - *p) < n + 3)
                return -1;
            memcpy(*p, *h, n);
            (*p)[n] = '\r';
            (*p)[n + 1] = '\n';
            *p += n + 2;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
    case LWS_CALLBACK_ESTABLISHED:
        if (!ws)
            return -1;
        ws->opened = true;
        uv_timer_stop(&ws->timer);
        ws->in_open = true;
        if (ws->cbs.on_open)
            ws->cbs.on_open(ws->data, ws);
        ws->in_open = false;
        ob__scratch_free(&ws->scratch);
        if (ws->q_head || ws->close_req)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
    case LWS_CALLBACK_RECEIVE:
        return ws ? ws_receive(ws, wsi, in, len) : -1;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws ? ws_writable(ws, wsi) : 0;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    case LWS_CALLBACK_RECEIVE_PONG:
        if (ws && ws->cbs.on_pong && !ws->aborting)
            ws->cbs.on_pong(ws->data, ws);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (ws)
            peer_close(ws, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (ws)
            ws_gone(ws, in ? (const char *)in : "connection failed");
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (ws)
            ws_gone(ws, "connection lost");
        return 0;
    default:
        return 0;
    }
}

/* ---- the system's trust store ----------------------------------------------- */

#define CLIENT_VHOST "opsbot-client"

const char ob__os_trust_mark;

/* ---- the protocol ----------------------------------------------------------- */

static int proto_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    struct ob_lws *l = ctx ? lws_context_user(ctx) : NULL;

    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
        /* lws passes a stand-in wsi bound to the vhost being created */
        struct lws_vhost *vh = wsi ? lws_get_vhost(wsi) : NULL;

        if (vh && lws_get_vhost_user(vh) == OB__VHOST_OS_TRUST)
            ob__tls_trust_os(user);
        return 0;
    }
    if (!l || l->freeing)
        return 0;
    if (wsi) {
        enum ob__lws_kind *k = lws_get_opaque_user_data(wsi);

        if (k && *k == OB__KIND_HTTPC)
            return ob__httpc_callback(l, wsi, reason, in, len);
    }
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        return ob__httpc_callback(l, wsi, reason, in, len);
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_RECEIVE:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED:
        return ob__ws_callback(l, wsi, reason, in, len);
    case LWS_CALLBACK_WSI_DESTROY: {
        enum ob__lws_kind *k = lws_get_opaque_user_data(wsi);

        if (k && *k == OB__KIND_WS)
            return ob__ws_callback(l, wsi, reason, in, len);
        return ob__srv_callback(l, wsi, reason, user, in, len);
    }
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ob__srv_callback(l, wsi, reason, user, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols ob__lws_protocols[] = {
    {"opsbot", proto_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- context -------------------------------------------------------------- */

struct walk_set {
    uv_handle_t **h;
    size_t n, cap;
    bool found;
    const uv_handle_t *look;
    size_t closing;
    const uv_handle_t *ignore;
};

static void walk_collect(uv_handle_t *h, void *arg)
{
    struct walk_set *w = arg;

    if (w->n < w->cap)
        w->h[w->n] = h;
    w->n++;
}

static void walk_find(uv_handle_t *h, void *arg)
{
    struct walk_set *w = arg;

    if (h == w->look)
        w->found = true;
    if (h != w->ignore && uv_is_closing(h))
        w->closing++;
}

static void walk_count(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(size_t *)arg)++;
}

/* All handles of the loop, malloc'd (NULL when empty or on OOM). */
static uv_handle_t **loop_handles(uv_loop_t *loop, size_t *n)
{
    struct walk_set w = {0};

    *n = 0;
    uv_walk(loop, walk_count, &w.cap);
    if (!w.cap)
        return NULL;
    w.h = calloc(w.cap, sizeof(*w.h));
    if (!w.h)
        return NULL;
    uv_walk(loop, walk_collect, &w);
    *n = w.n < w.cap ? w.n : w.cap;
    return w.h;
}

/* Remembers the non-poll handles lws_create_context added to the loop: the
 * teardown waits for them to be closed. */
static void find_statics(struct ob_lws *l, uv_handle_t **before, size_t nbefore)
{
    size_t nafter;
    uv_handle_t **after = loop_handles(l->loop, &nafter);

    for (size_t i = 0; i < nafter; i++) {
        bool old = false;

        for (size_t j = 0; j < nbefore && !old; j++)
            old = before[j] == after[i];
        if (!old && after[i]->type != UV_POLL && l->nstatics < OB__LWS_MAX_STATICS)
            l->statics[l->nstatics++] = after[i];
    }
    free(after);
}

int ob_lws_new(struct ob_lws **out, uv_loop_t *loop)
{
    struct lws_context_creation_info info;
    void *loops[1] = {loop};
    uv_handle_t **before;
    size_t nbefore;
    struct ob_lws *l;
    int rc;

    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (!l)
        return OB_ENOMEM;
    l->loop = loop;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    before = loop_handles(loop, &nbefore);
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.user = l;
    info.pcontext = &destroyed_sink;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ob__lws_protocols;
    info.max_http_header_data = 16384;
    /* lws sizes its fd table by `ulimit -n` (often 1048576 in containers)
     * and, in Debian's build, scans all of it each time a connection is
     * added (a debug check): 8 MB of pointers touched per connection. A
     * table of its own size keeps both small; lws then finds a connection
     * by a scan that stops at it (entries sit at the front). */
    info.fd_limit_per_thread = LWS_FD_LIMIT;
    l->ctx = lws_create_context(&info);
    if (!l->ctx) {
        ob_error("lws", "cannot create the libwebsockets context");
        free(before);
        free(l);
        return OB_EWS;
    }
    find_statics(l, before, nbefore);
    free(before);
    rc = uv_timer_init(loop, &l->reap);
    if (rc) {
        lws_context_destroy(l->ctx);
        free(l); /* the context's handles close on the next loop run */
        return rc;
    }
    l->reap.data = l;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ob__lws_protocols;
    info.vhost_name = CLIENT_VHOST;
    info.user = OB__VHOST_OS_TRUST;
    /* the trust store comes from trust_os_store() */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    /* direct: lws would take $http_proxy itself (for every scheme, without
     * no_proxy, and log a malformed value whole); proxies are chosen per
     * connection (ws_vhost) */
    info.http_proxy_address = ":0";
    l->client_vh = lws_create_vhost(l->ctx, &info);
    if (!l->client_vh) {
        ob_error("lws", "cannot create the client vhost");
        ob_lws_free(l);
        return OB_EWS;
    }
    *out = l;
    return 0;
}

static void reap_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void reap_cb(uv_timer_t *t)
{
    struct ob_lws *l = t->data;
    struct walk_set w = {.ignore = (uv_handle_t *)&l->reap};
    bool busy = false;

    for (size_t i = 0; i < l->nstatics && !busy; i++) {
        w.look = l->statics[i];
        w.found = false;
        w.closing = 0;
        uv_walk(l->loop, walk_find, &w);
        busy = w.found;
    }
    if (!busy) {
        w.look = NULL;
        w.closing = 0;
        uv_walk(l->loop, walk_find, &w);
        busy = w.closing > 0;
    }
    if (busy && ++l->reap_ticks < REAP_MAX_TICKS)
        return;
    lws_context_destroy(l->ctx); /* second call: frees the context */
    l->ctx = NULL;
    ob__srv_free_leftovers(l);
    uv_timer_stop(&l->reap);
    uv_close((uv_handle_t *)&l->reap, reap_close_cb);
}

void ob_lws_free(struct ob_lws *l)
{
    if (!l || l->freeing)
        return;
    l->freeing = true;
    while (l->conns)
        ob__ws_detach(l->conns);
    ob__srv_release_all(l);
    lws_context_destroy(l->ctx); /* first call: closes every wsi and lws's handles */
    while (l->proxy_vhs) {       /* the vhosts go with the context */
        struct ob__ws_proxy_vh *v = l->proxy_vhs;

        l->proxy_vhs = v->next;
        free(v->proxy);
        free(v);
    }
    if (l->proxy) {
        ob__proxy_env_free(l->proxy);
        free(l->proxy);
        l->proxy = NULL;
    }
    uv_timer_start(&l->reap, reap_cb, 1, 1);
}

/* ---- websocket API -------------------------------------------------------- */

static int copy_headers(struct ob_ws *ws, const char *const *headers)
{
    size_t n = 0;

    if (!headers || !headers[0])
        return 0;
    while (headers[n])
        n++;
    if (n > 64)
        return OB_E2BIG;
    ws->headers = calloc(n + 1, sizeof(char *));
    if (!ws->headers)
        return OB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *h = headers[i];

        if (strpbrk(h, "\r\n") || !strchr(h, ':') || h[0] == ':')
            return OB_EINVAL;
        ws->headers[i] = strdup(h);
        if (!ws->headers[i])
            return OB_ENOMEM;
    }
    return 0;
}

/* The client vhost for a connection to t: the direct one, or one per proxy
 * (made on first use; an HTTP CONNECT tunnel, lws_set_proxy). */
static struct lws_vhost *ws_vhost(struct ob_lws *l, struct ws_target *t, bool *proxied)
{
    static unsigned serial;
    struct lws_context_creation_info info;
    struct ob__ws_proxy_vh *v;
    const char *proxy;
    char shown[128];

    if (!l->proxy) { /* the environment, read at the first connection */
        l->proxy = calloc(1, sizeof(*l->proxy));
        if (!l->proxy || ob__proxy_env_load(l->proxy)) {
            free(l->proxy);
            l->proxy = NULL;
            return NULL;
        }
    }
    proxy = ob__proxy_for(l->proxy, t->tls, t->name, t->port);
    *proxied = proxy != NULL;
    t->proxy = proxy; /* the environment's copy lives as long as l */
    if (!proxy)
        return l->client_vh;
    for (v = l->proxy_vhs; v; v = v->next)
        if (!strcmp(v->proxy, proxy))
            return v->vh;
    v = calloc(1, sizeof(*v));
    if (!v || !(v->proxy = strdup(proxy))) {
        free(v);
        return NULL;
    }
    snprintf(v->name, sizeof(v->name), "opsbot-ws-proxy-%u", ++serial);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ob__lws_protocols;
    info.vhost_name = v->name;
    info.user = OB__VHOST_OS_TRUST;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.http_proxy_address = v->proxy;
    v->vh = lws_create_vhost(l->ctx, &info);
    ob__proxy_display(proxy, shown, sizeof(shown));
    if (!v->vh) {
        ob_error("ws", "cannot use the proxy %s", shown);
        free(v->proxy);
        free(v);
        return NULL;
    }
    ob_info("ws", "using the proxy %s from the environment", shown);
    v->next = l->proxy_vhs;
    l->proxy_vhs = v;
    return v->vh;
}

/* The connection starts to address (numeric). */
static void ws_dial(struct ob_ws *ws, const struct ws_target *t, const char *address)
{
    struct lws_client_connect_info ci;
    struct lws *wsi;

    memset(&ci, 0, sizeof(ci));
    ci.context = ws->l->ctx;
    ci.vhost = t->vh;
    ci.address = address;
    ci.port = t->port;
    ci.path = t->path;
    ci.host = t->host;
    ci.origin = t->host;
    ci.local_protocol_name = ob__lws_protocols[0].name;
    ci.opaque_user_data = ws;
    if (t->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (t->insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED;
    }
    wsi = lws_client_connect_via_info(&ci);
    if (!wsi) {
        ws->wsi = NULL;
        ws_gone(ws, "connect failed"); /* on_close(1006) from the loop */
    } else if (!ws->gone) {
        ws->wsi = wsi;
    }
}

/* Through the proxy at addr (numeric): lws would look the proxy's name up
 * with a blocking getaddrinfo() at every connection. The proxy's vhost is
 * told the address right before the connection, which reads it at once. */
static void ws_dial_proxy(struct ob_ws *ws, const struct ws_target *t, const char *addr)
{
    if (!ob__proxy_point(t->vh, t->proxy, addr)) {
        ws_gone(ws, "cannot use the proxy");
        return;
    }
    ws_dial(ws, t, t->name); /* the proxy resolves the target's name */
}

static void ws_resolved(void *owner, const char *addr, const char *why)
{
    struct ob_ws *ws = owner;
    struct ws_target *t = ws->target;

    ws->resolving = NULL;
    ws->target = NULL;
    if (!addr)
        ws_gone(ws, why);
    else if (!ws->gone && !ws->aborting && t->proxied)
        ws_dial_proxy(ws, t, addr);
    else if (!ws->gone && !ws->aborting)
        ws_dial(ws, t, addr);
    free(t);
}

/* lws 4.1 (built without LWS_WITH_SYS_ASYNC_DNS) would resolve the name
 * with a blocking getaddrinfo() on the loop: the name is resolved on
 * libuv's thread pool and lws gets the address (Host, SNI and the
 * certificate check keep the name). */
static int ws_resolve(struct ob_ws *ws, struct ws_target *t)
{
    const char *name = t->name;
    int rc;

    if (t->proxied) { /* the proxy's name is ours to resolve, the target's its */
        if (!ob__proxy_host(t->proxy, t->phost, sizeof(t->phost)))
            return OB_EINVAL;
        name = t->phost;
    }
    if (ob__dns_numeric(name)) {
        if (t->proxied)
            ws_dial_proxy(ws, t, name);
        else
            ws_dial(ws, t, name);
        return 0;
    }
    ws->target = malloc(sizeof(*ws->target));
    if (!ws->target)
        return OB_ENOMEM;
    *ws->target = *t;
    rc = ob__dns_start(ws->l->loop, name, ws_resolved, ws, &ws->resolving);
    if (rc) {
        free(ws->target);
        ws->target = NULL;
    }
    return rc;
}

int ob_ws_connect(struct ob_lws *l, const char *url, const struct ob_ws_opts *opts,
                  const struct ob_ws_cbs *cbs, void *data, struct ob_ws **out)
{
    static const struct ob_ws_opts defaults = {0};
    char buf[MAX_URL];
    const char *prot = NULL, *ads = NULL, *p = NULL;
    struct ws_target t;
    struct ob_ws *ws;
    int64_t tmo;
    int rc;

    if (out)
        *out = NULL;
    if (!l || !url || !cbs || !out || l->freeing)
        return OB_EINVAL;
    if (!opts)
        opts = &defaults;
    if (ob_strlcpy(buf, url, sizeof(buf)) >= sizeof(buf))
        return OB_E2BIG;
    if (lws_parse_uri(buf, &prot, &ads, &t.port, &p) || !ads || !*ads)
        return OB_EINVAL;
    if (strcmp(prot, "ws") != 0 && strcmp(prot, "wss") != 0)
        return OB_EINVAL;
    if (ob_strlcpy(t.name, ads, sizeof(t.name)) >= sizeof(t.name))
        return OB_E2BIG;
    t.tls = strcmp(prot, "wss") == 0;
    t.insecure = opts->insecure;
    snprintf(t.path, sizeof(t.path), "/%s", p ? p : "");
    if (t.port == (t.tls ? 443 : 80))
        ob_strlcpy(t.host, ads, sizeof(t.host));
    else
        snprintf(t.host, sizeof(t.host), "%s:%d", ads, t.port);
    ws = ob__ws_alloc(l, cbs, data, opts->max_message);
    if (!ws)
        return OB_ENOMEM;
    rc = copy_headers(ws, opts->headers);
    if (rc) {
        ob__ws_detach(ws);
        return rc;
    }
    t.vh = ws_vhost(l, &t, &t.proxied);
    if (!t.vh) {
        ob__ws_detach(ws);
        return OB_EWS;
    }
    if (t.tls && t.insecure)
        ob_warn("ws", "TLS verification is disabled for %s (insecure)", t.host);
    /* the connect timeout covers the name lookup too */
    tmo = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    uv_update_time(l->loop);
    uv_timer_start(&ws->timer, ws_timer_cb, (uint64_t)tmo, 0);
    rc = ws_resolve(ws, &t);
    if (rc) {
        ob__ws_detach(ws);
        return rc;
    }
    *out = ws;
    return 0;
}

static int enqueue(struct ob_ws *ws, const char *text, size_t len, bool ping)
{
    struct ob__ws_msg *m;

    if (!ws || ws->gone || ws->close_req || ws->aborting)
        return OB_EWS;
    if (len > MAX_SEND)
        return OB_E2BIG;
    m = malloc(sizeof(*m) + LWS_PRE + len);
    if (!m)
        return OB_ENOMEM;
    m->next = NULL;
    m->len = len;
    m->off = 0;
    m->ping = ping;
    if (len)
        memcpy(m->buf + LWS_PRE, text, len);
    if (ws->q_tail)
        ws->q_tail->next = m;
    else
        ws->q_head = m;
    ws->q_tail = m;
    if (ws->opened && ws->wsi)
        lws_callback_on_writable(ws->wsi);
    return 0;
}

int ob_ws_send_text(struct ob_ws *ws, const char *text, size_t len)
{
    if (len && !text)
        return OB_EINVAL;
    return enqueue(ws, text, len, false);
}

int ob_ws_ping(struct ob_ws *ws)
{
    return enqueue(ws, "opsbot", 6, true);
}

void ob_ws_abort(struct ob_ws *ws)
{
    if (!ws || ws->gone || ws->aborting)
        return;
    ws->aborting = true;
    if (!ws->code) {
        ws->code = 1006;
        ob_strlcpy(ws->reason, "aborted", sizeof(ws->reason));
    }
    if (ws->wsi)
        uv_timer_start(&ws->timer, ws_timer_cb, 0, 0);
    else
        ws_gone(ws, "aborted");
}

void ob_ws_close(struct ob_ws *ws, int code, const char *reason)
{
    if (!ws || ws->gone || ws->close_req || ws->aborting)
        return;
    if (!ws->opened) {
        ob_ws_abort(ws); /* nothing to send a close frame on yet */
        return;
    }
    if (code < 1000 || code > 4999)
        code = 1000;
    ws->close_req = true;
    ws->close_code = code;
    ob_strlcpy(ws->close_reason, reason ? reason : "", sizeof(ws->close_reason));
    if (!ws->code) {
        ws->code = code;
        ob_strlcpy(ws->reason, ws->close_reason, sizeof(ws->reason));
    }
    if (ws->q_head && ws->wsi)
        lws_callback_on_writable(ws->wsi); /* flush first */
    else
        uv_timer_start(&ws->timer, ws_timer_cb, 0, 0);
}

void ob_ws_set_data(struct ob_ws *ws, void *data)
{
    if (ws)
        ws->data = data;
}

const char *ob_ws_header(struct ob_ws *ws, const char *name)
{
    if (!ws || !ws->in_open || !ws->srv || !ws->wsi)
        return NULL;
    return ob__lws_header(ws->wsi, name, &ws->scratch);
}

const char *ob_ws_query(struct ob_ws *ws)
{
    return ws && ws->query ? ws->query : "";
}
