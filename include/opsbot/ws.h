/* libwebsockets on the libuv loop: one lws context (foreign loop) per
 * process, hosting
 *   - websocket clients (Slack Socket Mode, the Discord Gateway),
 *   - HTTP servers with optional websocket endpoints (the Teams messaging
 *     endpoint, Slack HTTP Events mode, /metrics, and the test stand-ins).
 * Everything runs on the caller's loop; callbacks are never re-entrant from
 * the call that caused them.
 */
#ifndef OPSBOT_WS_H
#define OPSBOT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct ob_lws;           /* the context */
struct ob_ws;            /* one websocket connection (client or server side) */
struct ob_http_server;   /* one listening vhost */
struct ob_http_exchange; /* one HTTP request being answered */

int ob_lws_new(struct ob_lws **out, uv_loop_t *loop);
/* Closes every connection and server; async: run the loop afterwards until
 * it is empty. No callback of any connection or server runs after this
 * call, and pending exchanges die with it. Not from inside a transport
 * callback (a plain loop callback, on_close or an HTTP client callback is
 * fine). */
void ob_lws_free(struct ob_lws *l);

/* ---- websockets -------------------------------------------------------- */

struct ob_ws_cbs {
    /* The handshake completed. */
    void (*on_open)(void *data, struct ob_ws *ws);
    /* One complete text message (fragments reassembled; capped). */
    void (*on_text)(void *data, struct ob_ws *ws, const char *text, size_t len);
    /* A pong arrived (answer to ob_ws_ping). Optional. */
    void (*on_pong)(void *data, struct ob_ws *ws);
    /* A ping arrived from the peer (the pong is sent automatically). Optional.
     * libwebsockets 4.1 has no hook for received pings: never called there. */
    void (*on_ping)(void *data, struct ob_ws *ws);
    /* The connection is gone: code is the peer's close code (1000, 4004, ...),
     * or 1006 for an abrupt loss / failed connect; reason may be "". After
     * this callback the ob_ws is freed: never touch it again. Called exactly
     * once per connection that was started. */
    void (*on_close)(void *data, struct ob_ws *ws, int code, const char *reason);
};

struct ob_ws_opts {
    const char *const *headers; /* NULL-terminated "Name: value" for the handshake */
    size_t max_message;         /* reassembly cap, 0 = 1 MiB; beyond: close 1009 */
    int64_t connect_timeout_ms; /* 0 = 10 s */
    bool insecure;              /* wss:// without verification (tests only) */
};

/* Connects to ws://host:port/path?query or wss://…. Returns 0 and *out (valid
 * until on_close), or a negative error (no callback). */
int ob_ws_connect(struct ob_lws *l, const char *url, const struct ob_ws_opts *opts,
                  const struct ob_ws_cbs *cbs, void *data, struct ob_ws **out);
/* Queues a text message (copied); written when the socket is writable, in
 * order. Returns 0, or OB_EWS when the connection is closing. */
int ob_ws_send_text(struct ob_ws *ws, const char *text, size_t len);
/* Sends a ping control frame (payload "opsbot": lws 4.1 answers empty pings
 * with nothing). Queued behind the text messages. */
int ob_ws_ping(struct ob_ws *ws);
/* Starts a clean close with code and reason; on_close follows. */
void ob_ws_close(struct ob_ws *ws, int code, const char *reason);
/* Drops the connection without a close frame (tests: abrupt loss); on_close
 * follows with 1006. */
void ob_ws_abort(struct ob_ws *ws);
void ob_ws_set_data(struct ob_ws *ws, void *data);
/* Server-side connections, during on_open only: a header of the upgrade
 * request (case-insensitive name) or NULL, and the request's query string
 * ("" if none; the query stays readable until on_close). */
const char *ob_ws_header(struct ob_ws *ws, const char *name);
const char *ob_ws_query(struct ob_ws *ws);

/* ---- HTTP server --------------------------------------------------------- */

struct ob_http_srv_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query */
    const char *query;  /* after '?', "" if none; canonical percent-encoding */
    const char *body;   /* NUL-terminated, body_len bytes */
    size_t body_len;
    const char *remote; /* peer address */
    void *priv_;
};

/* A request arrived (whole body read, within max_body). Answer with
 * ob_http_reply exactly once, now or later from any callback on the loop. */
typedef void (*ob_http_handler)(void *data, struct ob_http_exchange *ex,
                                const struct ob_http_srv_req *req);

struct ob_http_server_opts {
    const char *listen;   /* "127.0.0.1:0" (port 0 = ephemeral), ":8080", "[::1]:9000" */
    size_t max_body;      /* 0 = 1 MiB; larger bodies get 413 without calling the handler */
    const char *tls_cert; /* PEM paths: TLS when both set */
    const char *tls_key;
};

int ob_http_server_new(struct ob_lws *l, const struct ob_http_server_opts *opts,
                       ob_http_handler handler, void *data, struct ob_http_server **out);
/* The bound port (useful with port 0). */
int ob_http_server_port(const struct ob_http_server *s);
/* Accept websocket upgrades on path (exact match); each connection gets the
 * callbacks with data. */
int ob_http_server_ws(struct ob_http_server *s, const char *path, const struct ob_ws_cbs *cbs,
                      void *data);
/* Stops listening and drops its connections without callbacks. Exchanges
 * still waiting for ob_http_reply stay valid (the reply is dropped). */
void ob_http_server_free(struct ob_http_server *s);

/* Request header value (case-insensitive name) or NULL; valid during the
 * handler call only. */
const char *ob_http_srv_header(const struct ob_http_srv_req *req, const char *name);
/* Answers; headers NULL-terminated "Name: value". If the client went away
 * the reply is dropped quietly. Returns 0 or a negative error. */
int ob_http_reply(struct ob_http_exchange *ex, int status, const char *content_type,
                  const char *body, size_t len, const char *const *headers);

#endif
