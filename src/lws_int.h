/* Private to src/lws.c, src/lws_server.c and src/http.c: the shared state
 * of the libwebsockets transport. */
#ifndef OPSBOT_LWS_INT_H
#define OPSBOT_LWS_INT_H

#include <libwebsockets.h>

#include "opsbot/ws.h"

#define OB__LWS_MAX_STATICS 8
#define OB__WS_MAX_ENDPOINTS 8

/* The user pointer of client vhosts that trust the system's certificates:
 * src/tls_trust.c (ob__tls_trust_os, called by src/lws.c) sets their trust store up. */
extern const char ob__os_trust_mark;
#define OB__VHOST_OS_TRUST ((void *)&ob__os_trust_mark)

/* What a wsi's opaque user data points at. */
enum ob__lws_kind { OB__KIND_WS = 1, OB__KIND_EXCHANGE, OB__KIND_HTTPC };

struct ob__ws_msg {
    struct ob__ws_msg *next;
    size_t len, off; /* off: bytes already written (large messages go in fragments) */
    bool ping;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct ob_lws {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *client_vh;
    struct ob_ws *conns;                       /* every ob_ws until its on_close ran */
    struct ob_http_server *servers;            /* until their vhost is finalized */
    struct ob_http_exchange *orphans;          /* awaiting a reply whose client left */
    uv_timer_t reap;                           /* teardown: waits for lws's own handles */
    uv_handle_t *statics[OB__LWS_MAX_STATICS]; /* lws's loop handles (idle, timer) */
    size_t nstatics;
    unsigned reap_ticks;
    bool freeing;
    /* websocket clients behind a proxy (the environment's as the HTTP
     * client reads it, read at the first connection): a vhost per proxy */
    struct ob__proxy_env *proxy;
    struct ob__ws_proxy_vh *proxy_vhs;
};

struct ob__ws_proxy_vh {
    struct ob__ws_proxy_vh *next;
    char *proxy; /* "[user:pass@]host:port" */
    struct lws_vhost *vh;
    char name[40]; /* lws keeps the pointer */
};

struct ob__dns_req;
struct ws_target;

struct ob_ws {
    enum ob__lws_kind kind; /* first member: OB__KIND_WS */
    struct ob_lws *l;
    struct lws *wsi;
    struct ob_http_server *srv; /* server side: the server of the endpoint */
    struct ob_ws_cbs cbs;
    void *data;
    struct ob_ws *prev, *next;
    char **headers; /* client handshake headers, NULL-terminated */
    char *query;    /* server side: the upgrade request's query */
    size_t max_message;
    char *rx;
    size_t rx_len, rx_cap;
    struct ob__ws_msg *q_head, *q_tail;
    uv_timer_t timer;              /* connect timeout, then the deferred on_close */
    struct ob__dns_req *resolving; /* client: the host name lookup in flight */
    struct ws_target *target;      /* ... and where the connection then goes */
    struct ob__scratch *scratch;
    int code;
    char reason[124];
    int close_code; /* ob_ws_close's code and reason, sent in the close frame */
    char close_reason[124];
    bool opened, close_req, close_sent, aborting, gone, in_open, silent;
};

/* Values handed out by ob_http_srv_header / ob_ws_header, freed together. */
struct ob__scratch {
    struct ob__scratch *next;
    char val[];
};

/* Header value (case-insensitive name) of the request on wsi, copied into
 * *list; NULL when absent. */
const char *ob__lws_header(struct lws *wsi, const char *name, struct ob__scratch **list);
void ob__scratch_free(struct ob__scratch **list);

/* ws.c side: allocates and links an ob_ws (timer initialised). */
struct ob_ws *ob__ws_alloc(struct ob_lws *l, const struct ob_ws_cbs *cbs, void *data,
                           size_t max_message);
/* Forgets ws without any callback (its owner is going away). */
void ob__ws_detach(struct ob_ws *ws);
/* Websocket callback reasons (client and server side). */
int ob__ws_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason, void *in,
                    size_t len);

/* Server side. */
int ob__srv_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len);
/* ob_lws_free: drops every server, exchange and orphan without callbacks. */
void ob__srv_release_all(struct ob_lws *l);
/* After the context is gone: frees server structs lws never finalized. */
void ob__srv_free_leftovers(struct ob_lws *l);

/* HTTP client (src/http.c): every event of a wsi whose opaque data is an
 * ob_http_call (OB__KIND_HTTPC), and the client-HTTP events of any wsi. */
int ob__httpc_callback(struct ob_lws *l, struct lws *wsi, enum lws_callback_reasons reason,
                       void *in, size_t len);

extern const struct lws_protocols ob__lws_protocols[];

#endif
