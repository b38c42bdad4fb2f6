/* Tests of the websocket transport (src/lws.c, src/lws_server.c): an
 * ob_http_server websocket endpoint and ob_ws_connect clients on
 * 127.0.0.1, one loop per test, every loop closing cleanly at the end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "connect_proxy.h"
#include "opsbot/err.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define NMSG 100
#define BIG (200u * 1024)

enum scenario {
    SC_ECHO,         /* server echoes "e<n>" for "m<n>"; client closes after NMSG */
    SC_BIG,          /* client sends BIG bytes, server echoes it */
    SC_TOO_BIG_CLI,  /* server sends 5000 bytes to a client capped at 1000 */
    SC_TOO_BIG_SRV,  /* client sends 2 MiB to a server capped at 1 MiB */
    SC_CLIENT_CLOSE, /* client closes 4001 */
    SC_SERVER_CLOSE, /* server closes 4004 */
    SC_SERVER_ABORT, /* server drops the connection */
    SC_PING,         /* both sides ping */
    SC_MANY,         /* ob_lws_free closes everything */
};

struct side {
    int opens, texts, pongs, closes;
    int code;
    char reason[128];
    size_t last_len;
    bool order_ok;
};

struct fx {
    struct connect_proxy *px; /* test_proxy: freed at teardown */
    uv_loop_t loop;
    struct ob_lws *lws;
    struct ob_http_server *srv;
    uv_timer_t watchdog, stopper;
    enum scenario sc;
    bool torn_down;
    char url[128];
    struct side cli, srv_side;
    struct ob_ws *client, *server_ws;
    char auth[64], query[64], missing[16];
    bool in_connect;
    bool close_in_connect;
    int nclients;
    char *big;
};

static void teardown_now(struct fx *f)
{
    if (f->torn_down)
        return;
    f->torn_down = true;
    connect_proxy_free(f->px); /* NULL-safe */
    f->px = NULL;
    ob_lws_free(f->lws);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->stopper, NULL);
}

static void watchdog_cb(uv_timer_t *t)
{
    fprintf(stderr, "watchdog: test did not finish\n");
    teardown_now(t->data);
    fail();
}

static void stopper_cb(uv_timer_t *t)
{
    teardown_now(t->data);
}

static void teardown_soon(struct fx *f)
{
    uv_timer_start(&f->stopper, stopper_cb, 0, 0);
}

static void maybe_done(struct fx *f)
{
    /* a client that never opened has no server side to wait for */
    if (f->cli.closes && (f->srv_side.closes || !f->cli.opens))
        teardown_soon(f);
}

/* SC_MANY: every client connected on both sides, ob_lws_free may close them. */
static void many_opened(struct fx *f)
{
    if (f->srv_side.opens == f->nclients && f->cli.opens == f->nclients)
        teardown_soon(f);
}

/* SC_PING: both pings answered, the client closes. */
static void pinged(struct fx *f)
{
    if (f->sc == SC_PING && f->cli.pongs && f->srv_side.pongs)
        ob_ws_close(f->client, 1000, "done");
}

/* What either side does when its end opens. */
static void either_open(struct fx *f, struct ob_ws *ws)
{
    if (f->sc == SC_PING)
        assert_int_equal(ob_ws_ping(ws), 0);
    else if (f->sc == SC_MANY)
        many_opened(f);
}

/* Sends n bytes c (a message too big for the other side). */
static void send_filled(struct ob_ws *ws, size_t n, char c)
{
    char *m = malloc(n);

    memset(m, c, n);
    assert_int_equal(ob_ws_send_text(ws, m, n), 0);
    free(m);
}

/* Closes with code and reason; a send after that is refused. */
static void close_then_send(struct ob_ws *ws, int code, const char *reason)
{
    ob_ws_close(ws, code, reason);
    assert_int_equal(ob_ws_send_text(ws, "late", 4), OB_EWS);
}

/* SC_ECHO: side s must receive "<prefix><n>" as its n-th text. */
static void check_order(struct side *s, char prefix, const char *text, size_t len)
{
    char want[16];

    snprintf(want, sizeof(want), "%c%d", prefix, s->texts);
    if (len != strlen(want) || memcmp(text, want, len) != 0)
        s->order_ok = false;
}

/* SC_BIG: the big message arrived whole. */
static void check_big(const struct fx *f, const char *text, size_t len)
{
    assert_int_equal(len, BIG);
    assert_memory_equal(text, f->big, BIG);
}

/* ---- server side -------------------------------------------------------- */

static void s_open(void *data, struct ob_ws *ws)
{
    struct fx *f = data;
    const char *v;

    f->srv_side.opens++;
    f->server_ws = ws;
    v = ob_ws_header(ws, "Authorization");
    ob_strlcpy(f->auth, v ? v : "(none)", sizeof(f->auth));
    ob_strlcpy(f->query, ob_ws_query(ws), sizeof(f->query));
    v = ob_ws_header(ws, "x-not-sent");
    ob_strlcpy(f->missing, v ? v : "(none)", sizeof(f->missing));
    if (f->sc == SC_TOO_BIG_CLI)
        send_filled(ws, 5000, 'x');
    else if (f->sc == SC_SERVER_CLOSE)
        close_then_send(ws, 4004, "go away");
    else if (f->sc == SC_SERVER_ABORT)
        ob_ws_abort(ws);
    either_open(f, ws);
}

static void s_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct fx *f = data;
    char reply[16];

    f->srv_side.last_len = len;
    assert_int_equal(text[len], '\0');
    if (f->sc == SC_ECHO) {
        check_order(&f->srv_side, 'm', text, len);
        snprintf(reply, sizeof(reply), "e%d", f->srv_side.texts);
        assert_int_equal(ob_ws_send_text(ws, reply, strlen(reply)), 0);
    } else if (f->sc == SC_BIG) {
        check_big(f, text, len);
        assert_int_equal(ob_ws_send_text(ws, text, len), 0);
    }
    f->srv_side.texts++;
}

static void s_pong(void *data, struct ob_ws *ws)
{
    struct fx *f = data;

    (void)ws;
    f->srv_side.pongs++;
    pinged(f);
}

static void s_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct fx *f = data;

    assert_ptr_equal(ws, f->server_ws);
    f->srv_side.closes++;
    f->srv_side.code = code;
    ob_strlcpy(f->srv_side.reason, reason, sizeof(f->srv_side.reason));
    maybe_done(f);
}

static const struct ob_ws_cbs server_cbs = {
    .on_open = s_open,
    .on_text = s_text,
    .on_pong = s_pong,
    .on_close = s_close,
};

/* ---- client side ---------------------------------------------------------- */

static void c_open(void *data, struct ob_ws *ws)
{
    struct fx *f = data;

    f->cli.opens++;
    if (f->sc == SC_ECHO) {
        for (int i = 0; i < NMSG; i++) {
            char m[16];

            snprintf(m, sizeof(m), "m%d", i);
            assert_int_equal(ob_ws_send_text(ws, m, strlen(m)), 0);
        }
    } else if (f->sc == SC_BIG) {
        assert_int_equal(ob_ws_send_text(ws, f->big, BIG), 0);
    } else if (f->sc == SC_TOO_BIG_SRV) {
        send_filled(ws, 2u * 1024 * 1024, 'y');
    } else if (f->sc == SC_CLIENT_CLOSE) {
        close_then_send(ws, 4001, "client says bye");
    }
    either_open(f, ws);
}

static void c_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct fx *f = data;

    f->cli.last_len = len;
    if (f->sc == SC_ECHO) {
        check_order(&f->cli, 'e', text, len);
        if (f->cli.texts + 1 == NMSG)
            ob_ws_close(ws, 1000, "bye");
    } else if (f->sc == SC_BIG) {
        check_big(f, text, len);
        ob_ws_close(ws, 1000, "bye");
    }
    f->cli.texts++;
}

static void c_pong(void *data, struct ob_ws *ws)
{
    struct fx *f = data;

    (void)ws;
    f->cli.pongs++;
    pinged(f);
}

static void c_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct fx *f = data;

    (void)ws;
    if (f->in_connect)
        f->close_in_connect = true;
    f->cli.closes++;
    f->cli.code = code;
    ob_strlcpy(f->cli.reason, reason, sizeof(f->cli.reason));
    if (f->sc == SC_MANY)
        return;
    if (f->srv)
        maybe_done(f);
    else
        teardown_soon(f);
}

static const struct ob_ws_cbs client_cbs = {
    .on_open = c_open,
    .on_text = c_text,
    .on_pong = c_pong,
    .on_close = c_close,
};

static void noop_handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    (void)data;
    (void)req;
    ob_http_reply(ex, 404, "text/plain", "", 0, NULL);
}

static void fx_init_tls(struct fx *f, enum scenario sc, bool with_server, const char *cert,
                        const char *key)
{
    struct ob_http_server_opts so = {.listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key};

    memset(f, 0, sizeof(*f));
    f->sc = sc;
    f->cli.order_ok = f->srv_side.order_ok = true;
    if (sc == SC_BIG) {
        f->big = malloc(BIG);
        for (size_t i = 0; i < BIG; i++)
            f->big[i] = (char)('A' + (i * 7) % 26);
    }
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(ob_lws_new(&f->lws, &f->loop), 0);
    if (with_server) {
        assert_int_equal(ob_http_server_new(f->lws, &so, noop_handler, f, &f->srv), 0);
        assert_int_equal(ob_http_server_ws(f->srv, "/ws", &server_cbs, f), 0);
        snprintf(f->url, sizeof(f->url), "%s://127.0.0.1:%d/ws?token=xyz&v=10", cert ? "wss" : "ws",
                 ob_http_server_port(f->srv));
    }
    uv_timer_init(&f->loop, &f->watchdog);
    uv_timer_init(&f->loop, &f->stopper);
    f->watchdog.data = f->stopper.data = f;
    uv_timer_start(&f->watchdog, watchdog_cb, 8000, 0);
}

static void fx_init(struct fx *f, enum scenario sc, bool with_server)
{
    fx_init_tls(f, sc, with_server, NULL, NULL);
}

static void fx_connect(struct fx *f, const struct ob_ws_opts *opts)
{
    f->in_connect = true;
    assert_int_equal(ob_ws_connect(f->lws, f->url, opts, &client_cbs, f, &f->client), 0);
    f->in_connect = false;
    assert_non_null(f->client);
}

static void fx_run(struct fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->torn_down);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f->big);
}

/* One client connects with opts; the scenario runs to its end. */
static void connect_and_run(struct fx *f, const struct ob_ws_opts *opts)
{
    fx_connect(f, opts);
    fx_run(f);
}

/* Scenario sc between the server and one client (opts), to its end. */
static void run_scenario(struct fx *f, enum scenario sc, const struct ob_ws_opts *opts)
{
    fx_init(f, sc, true);
    connect_and_run(f, opts);
}

/* Binds tcp to a free port on 127.0.0.1 (listening when on_conn is given);
 * the client's URL points at it. */
static void bind_local(struct fx *f, uv_tcp_t *tcp, uv_connection_cb on_conn)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    uv_tcp_init(&f->loop, tcp);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(tcp, (const struct sockaddr *)&sa, 0), 0);
    if (on_conn)
        assert_int_equal(uv_listen((uv_stream_t *)tcp, 4, on_conn), 0);
    assert_int_equal(uv_tcp_getsockname(tcp, (struct sockaddr *)&sa, &len), 0);
    snprintf(f->url, sizeof(f->url), "ws://127.0.0.1:%d/ws", ntohs(sa.sin_port));
}

/* Both sides saw the connection close, once, with code; the reason each
 * side was given (NULL = not checked). */
static void assert_closed(const struct fx *f, int code, const char *cli_reason,
                          const char *srv_reason)
{
    assert_int_equal(f->cli.closes, 1);
    assert_int_equal(f->cli.code, code);
    assert_int_equal(f->srv_side.closes, 1);
    assert_int_equal(f->srv_side.code, code);
    if (cli_reason)
        assert_string_equal(f->cli.reason, cli_reason);
    if (srv_reason)
        assert_string_equal(f->srv_side.reason, srv_reason);
}

/* ---- tests -------------------------------------------------------------- */

static void test_text_both_ways_in_order(void **state)
{
    struct fx f;
    static const char *const hdrs[] = {"Authorization: Bearer xapp-1", "X-Extra: 1", NULL};
    struct ob_ws_opts o = {.headers = hdrs};

    (void)state;
    run_scenario(&f, SC_ECHO, &o);
    assert_int_equal(f.cli.opens, 1);
    assert_int_equal(f.srv_side.opens, 1);
    assert_string_equal(f.auth, "Bearer xapp-1");
    assert_string_equal(f.query, "token=xyz&v=10");
    assert_string_equal(f.missing, "(none)");
    assert_int_equal(f.srv_side.texts, NMSG);
    assert_int_equal(f.cli.texts, NMSG);
    assert_true(f.srv_side.order_ok);
    assert_true(f.cli.order_ok);
    assert_closed(&f, 1000, NULL, "bye");
}

static void test_large_fragmented(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_BIG, NULL);
    assert_int_equal(f.srv_side.texts, 1);
    assert_int_equal(f.srv_side.last_len, BIG);
    assert_int_equal(f.cli.texts, 1);
    assert_int_equal(f.cli.last_len, BIG);
    assert_closed(&f, 1000, NULL, NULL);
}

static void test_max_message_client(void **state)
{
    struct fx f;
    struct ob_ws_opts o = {.max_message = 1000};

    (void)state;
    run_scenario(&f, SC_TOO_BIG_CLI, &o);
    assert_int_equal(f.cli.texts, 0);
    assert_closed(&f, 1009, NULL, "message too big");
}

static void test_max_message_server(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_TOO_BIG_SRV, NULL);
    assert_int_equal(f.srv_side.texts, 0);
    assert_closed(&f, 1009, NULL, NULL);
}

static void test_client_close_code(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_CLIENT_CLOSE, NULL);
    assert_closed(&f, 4001, NULL, "client says bye");
}

static void test_server_close_code(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_SERVER_CLOSE, NULL);
    assert_closed(&f, 4004, "go away", NULL);
}

static void test_server_abort(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_SERVER_ABORT, NULL);
    assert_closed(&f, 1006, NULL, NULL);
}

/* A host name is resolved off the loop (lws 4.1 would block in
 * getaddrinfo); the handshake then carries the name. */
static void test_connect_by_name(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, SC_CLIENT_CLOSE, true);
    snprintf(f.url, sizeof(f.url), "ws://localhost:%d/ws?token=xyz&v=10",
             ob_http_server_port(f.srv));
    connect_and_run(&f, NULL);
    assert_int_equal(f.cli.opens, 1);
    assert_string_equal(f.query, "token=xyz&v=10");
    assert_closed(&f, 4001, NULL, NULL);
}

/* Closed while its name is being looked up: one on_close, nothing after. */
static void test_close_while_resolving(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, SC_ECHO, false);
    snprintf(f.url, sizeof(f.url), "ws://localhost:1/ws");
    fx_connect(&f, NULL);
    ob_ws_close(f.client, 1000, "changed my mind");
    assert_int_equal(f.cli.closes, 0);
    fx_run(&f);
    assert_int_equal(f.cli.opens, 0);
    assert_int_equal(f.cli.closes, 1);
    assert_int_equal(f.cli.code, 1006);
}

static void test_connect_refused(void **state)
{
    struct fx f;
    uv_tcp_t tcp;

    (void)state;
    fx_init(&f, SC_ECHO, false);
    bind_local(&f, &tcp, NULL); /* bound, not listening, closed: refused */
    uv_close((uv_handle_t *)&tcp, NULL);
    fx_connect(&f, NULL);
    assert_int_equal(f.cli.closes, 0);
    fx_run(&f);
    assert_false(f.close_in_connect);
    assert_int_equal(f.cli.opens, 0);
    assert_int_equal(f.cli.closes, 1);
    assert_int_equal(f.cli.code, 1006);
}

static void test_unknown_path(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, SC_ECHO, true);
    snprintf(f.url, sizeof(f.url), "ws://127.0.0.1:%d/other", ob_http_server_port(f.srv));
    fx_connect(&f, NULL);
    f.srv_side.closes = 1; /* no server-side connection to wait for */
    fx_run(&f);
    assert_int_equal(f.cli.opens, 0);
    assert_int_equal(f.srv_side.opens, 0);
    assert_int_equal(f.cli.code, 1006);
}

/* A TCP listener that accepts and never answers the handshake. */
struct mute {
    uv_tcp_t server, conn;
    bool accepted;
};

static void mute_accept(uv_stream_t *s, int status)
{
    struct mute *m = s->data;

    assert_int_equal(status, 0);
    uv_tcp_init(s->loop, &m->conn);
    assert_int_equal(uv_accept(s, (uv_stream_t *)&m->conn), 0);
    m->accepted = true;
}

static void test_connect_timeout(void **state)
{
    struct fx f;
    struct mute m = {0};
    struct ob_ws_opts o = {.connect_timeout_ms = 200};
    uint64_t t0;

    (void)state;
    fx_init(&f, SC_ECHO, false);
    bind_local(&f, &m.server, mute_accept);
    m.server.data = &m;
    t0 = uv_hrtime();
    fx_connect(&f, &o);
    while (!f.torn_down)
        uv_run(&f.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&m.server, NULL);
    if (m.accepted)
        uv_close((uv_handle_t *)&m.conn, NULL);
    fx_run(&f);
    assert_true(m.accepted);
    assert_int_equal(f.cli.closes, 1);
    assert_int_equal(f.cli.code, 1006);
    assert_string_equal(f.cli.reason, "connect timeout");
    assert_true((uv_hrtime() - t0) / 1000000u >= 150);
}

static void test_ping_pong(void **state)
{
    struct fx f;

    (void)state;
    run_scenario(&f, SC_PING, NULL);
    assert_true(f.cli.pongs >= 1);      /* the server answered the client's ping */
    assert_true(f.srv_side.pongs >= 1); /* the client answered automatically */
    assert_int_equal(f.cli.code, 1000);
}

static void test_many_closed_by_free(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, SC_MANY, true);
    f.nclients = 10;
    for (int i = 0; i < f.nclients; i++)
        fx_connect(&f, NULL);
    fx_run(&f);
    assert_int_equal(f.cli.opens, 10);
    assert_int_equal(f.srv_side.opens, 10);
    /* ob_lws_free closes everything without callbacks */
    assert_int_equal(f.cli.closes, 0);
    assert_int_equal(f.srv_side.closes, 0);
}

static void test_bad_args(void **state)
{
    struct fx f;
    struct ob_ws *ws = NULL;
    static const char *const crlf[] = {"X-A: 1\r\nX-B: 2", NULL};
    struct ob_ws_opts o = {.headers = crlf};

    (void)state;
    fx_init(&f, SC_ECHO, true);
    assert_int_equal(ob_ws_connect(f.lws, "http://127.0.0.1:1/", NULL, &client_cbs, &f, &ws),
                     OB_EINVAL);
    assert_null(ws);
    assert_int_equal(ob_ws_connect(f.lws, "ws://", NULL, &client_cbs, &f, &ws), OB_EINVAL);
    assert_int_equal(ob_ws_connect(f.lws, f.url, &o, &client_cbs, &f, &ws), OB_EINVAL);
    assert_null(ws);
    assert_int_equal(ob_http_server_ws(f.srv, "no-slash", &server_cbs, &f), OB_EINVAL);
    /* ASan finding (tests/FAULTS.md): on a port already taken, lws freed the
     * server inside lws_create_vhost and the code then wrote to it (and
     * freed it again). Now: a clean OB_EWS. */
    {
        struct ob_http_server *again = NULL;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t salen = sizeof(sa);
        char addr[32];
        struct ob_http_server_opts so = {.listen = addr};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 1), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
        assert_int_equal(ob_http_server_new(f.lws, &so, noop_handler, &f, &again), OB_EWS);
        assert_null(again);
        close(fd);
    }
    teardown_soon(&f);
    fx_run(&f);
    assert_int_equal(f.cli.closes, 0);
}

static void remove_dir(const char *dir);

/* A self-signed certificate and key in a new directory (dir: a mkdtemp
 * template); openssl_args say what it is for. false when openssl failed
 * (the directory is then gone). */
static bool make_cert(char *dir, char *cert, char *key, size_t len, const char *openssl_args)
{
    char cmd[1024];

    assert_non_null(mkdtemp(dir));
    snprintf(cert, len, "%s/cert.pem", dir);
    snprintf(key, len, "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 %s -keyout %s -out %s "
             ">/dev/null 2>&1",
             openssl_args, key, cert);
    if (system(cmd) == 0)
        return true;
    remove_dir(dir);
    return false;
}

static void remove_dir(const char *dir)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_wss(void **state)
{
    struct fx f;
    char dir[64] = "/tmp/ob-wss-XXXXXX", cert[128], key[128];
    struct ob_ws_opts o = {.insecure = true};

    (void)state;
    if (!make_cert(dir, cert, key, sizeof(cert), "-subj /CN=localhost"))
        skip();
    fx_init_tls(&f, SC_CLIENT_CLOSE, true, cert, key);
    connect_and_run(&f, &o);
    remove_dir(dir);
    assert_int_equal(f.cli.opens, 1);
    assert_string_equal(f.query, "token=xyz&v=10");
    assert_closed(&f, 4001, NULL, NULL);
}

/* Without a CA file and with verification on, a server is trusted through
 * the system's hashed certificate directory (here SSL_CERT_DIR pointing at
 * one holding the server's self-signed certificate), and only then; or
 * through the bundle SSL_CERT_FILE names. */
static void test_wss_system_trust(void **state)
{
    struct fx f;
    char dir[64] = "/tmp/ob-trust-XXXXXX", cert[128], key[128], cmd[512];
    struct ob_ws_opts o = {0};
    char *env_file, *env_dir;

    (void)state;
    if (!make_cert(dir, cert, key, sizeof(cert),
                   "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost"))
        skip();
    env_file = getenv("SSL_CERT_FILE") ? strdup(getenv("SSL_CERT_FILE")) : NULL;
    env_dir = getenv("SSL_CERT_DIR") ? strdup(getenv("SSL_CERT_DIR")) : NULL;
    snprintf(cmd, sizeof(cmd),
             "mkdir %s/certs && cp %s %s/certs/$(openssl x509 -hash -noout -in %s).0", dir, cert,
             dir, cert);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/certs", dir);
    setenv("SSL_CERT_DIR", cmd, 1);

    fx_init_tls(&f, SC_CLIENT_CLOSE, true, cert, key);
    connect_and_run(&f, &o);
    assert_int_equal(f.cli.opens, 1);
    assert_closed(&f, 4001, NULL, NULL);

    /* an empty directory: the same server is refused */
    snprintf(cmd, sizeof(cmd), "rm -f %s/certs/*.0", dir);
    assert_int_equal(system(cmd), 0);
    fx_init_tls(&f, SC_ECHO, true, cert, key);
    connect_and_run(&f, &o);
    assert_int_equal(f.cli.opens, 0);
    assert_int_equal(f.cli.closes, 1);
    assert_int_equal(f.cli.code, 1006);

    /* SSL_CERT_FILE names a bundle to trust, as for OpenSSL itself */
    setenv("SSL_CERT_FILE", cert, 1);
    fx_init_tls(&f, SC_CLIENT_CLOSE, true, cert, key);
    connect_and_run(&f, &o);
    assert_int_equal(f.cli.opens, 1);
    env_file ? setenv("SSL_CERT_FILE", env_file, 1) : unsetenv("SSL_CERT_FILE");
    env_dir ? setenv("SSL_CERT_DIR", env_dir, 1) : unsetenv("SSL_CERT_DIR");
    free(env_file);
    free(env_dir);
    remove_dir(dir);
}

/* The proxy environment holds for websockets as for HTTP: a connection
 * goes through the CONNECT proxy that http_proxy names (read at the first
 * connection), with its credentials, and no_proxy sends one direct. */
static void test_proxy(void **state)
{
    static const char *const names[] = {"http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"};
    char *saved[4], env[96], target[32];
    struct fx f;

    (void)state;
    for (int i = 0; i < 4; i++) {
        saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
        unsetenv(names[i]);
    }
    for (int direct = 0; direct < 2; direct++) {
        unsigned tunnels;

        fx_init(&f, SC_CLIENT_CLOSE, true);
        assert_int_equal(connect_proxy_new(&f.px, &f.loop, 0), 0);
        /* the proxy by name: resolved off the loop, lws gets the address */
        snprintf(env, sizeof(env), "http://u:p%%40ss@localhost:%d", connect_proxy_port(f.px));
        setenv("http_proxy", env, 1);
        if (direct)
            setenv("no_proxy", "localhost,127.0.0.1", 1);
        snprintf(target, sizeof(target), "127.0.0.1:%d", ob_http_server_port(f.srv));
        fx_connect(&f, NULL);
        uv_run(&f.loop, UV_RUN_NOWAIT);
        /* counted before the teardown frees the proxy */
        while (!f.cli.opens && !f.cli.closes)
            uv_run(&f.loop, UV_RUN_ONCE);
        tunnels = connect_proxy_tunnels(f.px);
        if (!direct) {
            assert_string_equal(connect_proxy_last_target(f.px), target);
            /* u:p@ss (lws writes the scheme in lower case) */
            assert_int_equal(strcasecmp(connect_proxy_last_auth(f.px), "Basic dTpwQHNz"), 0);
        }
        fx_run(&f);
        assert_int_equal(f.cli.opens, 1);
        assert_closed(&f, 4001, NULL, NULL);
        assert_int_equal(tunnels, direct ? 0 : 1);
    }
    for (int i = 0; i < 4; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_both_ways_in_order),
        cmocka_unit_test(test_large_fragmented),
        cmocka_unit_test(test_max_message_client),
        cmocka_unit_test(test_max_message_server),
        cmocka_unit_test(test_client_close_code),
        cmocka_unit_test(test_server_close_code),
        cmocka_unit_test(test_server_abort),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_by_name),
        cmocka_unit_test(test_close_while_resolving),
        cmocka_unit_test(test_proxy),
        cmocka_unit_test(test_unknown_path),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_many_closed_by_free),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_wss),
        cmocka_unit_test(test_wss_system_trust),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
