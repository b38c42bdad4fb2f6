/* Tests of the HTTP client (src/http.c) against the lws HTTP server
 * (src/lws_server.c) on 127.0.0.1: real sockets, one loop per test, and
 * every test ends with the loop closing cleanly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../../src/http_proxy.h"
#include "../../src/http_url.h"
#include "connect_proxy.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define MAXRES 32

struct result {
    int calls;
    int err;
    long status;
    char body[2048];
    size_t body_len;
    char retry_after[32];
    char reset_after[32];
    bool has_missing;
    char errmsg[256];
    int64_t duration_ms;
};

struct fx {
    uv_loop_t loop;
    struct ob_lws *lws;
    struct ob_http_server *srv;
    struct ob_http *http;
    uv_timer_t watchdog, later, stopper;
    char base[64];
    bool torn_down;
    /* server side */
    int nreq;
    char method[16], path[128], query[128], body[512], auth[128], ctype[64], custom[64];
    char ua[128];
    size_t body_len;
    struct ob_http_exchange *held[8];
    int nheld;
    struct ob_http_exchange *delayed;
    /* client side */
    struct result res[MAXRES];
    int done, expect;
    int stop_at_requests; /* teardown once the server saw this many */
};

static void teardown_now(struct fx *f)
{
    if (f->torn_down)
        return;
    f->torn_down = true;
    ob_http_free(f->http);
    ob_lws_free(f->lws);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->later, NULL);
    uv_close((uv_handle_t *)&f->stopper, NULL);
}

static void watchdog_cb(uv_timer_t *t)
{
    struct fx *f = t->data;

    fprintf(stderr, "watchdog: test did not finish\n");
    teardown_now(f);
    fail();
}

static void stopper_cb(uv_timer_t *t)
{
    teardown_now(t->data);
}

/* Teardown from a plain loop callback (never from inside an lws one). */
static void teardown_soon(struct fx *f)
{
    uv_timer_start(&f->stopper, stopper_cb, 0, 0);
}

static void delayed_cb(uv_timer_t *t)
{
    struct fx *f = t->data;

    assert_non_null(f->delayed);
    assert_int_equal(ob_http_reply(f->delayed, 200, "text/plain", "late", 4, NULL), 0);
    f->delayed = NULL;
}

static void copy_hdr(char *dst, size_t len, const struct ob_http_srv_req *req, const char *name)
{
    const char *v = ob_http_srv_header(req, name);

    ob_strlcpy(dst, v ? v : "(none)", len);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct fx *f = data;
    static const char *const rate_headers[] = {"Retry-After: 7", "X-RateLimit-Reset-After: 1.5",
                                               NULL};
    char buf[1024];

    f->nreq++;
    if (strcmp(req->path, "/echo") == 0) {
        ob_strlcpy(f->method, req->method, sizeof(f->method));
        ob_strlcpy(f->path, req->path, sizeof(f->path));
        ob_strlcpy(f->query, req->query, sizeof(f->query));
        ob_strlcpy(f->body, req->body, sizeof(f->body));
        f->body_len = req->body_len;
        copy_hdr(f->auth, sizeof(f->auth), req, "authorization");
        copy_hdr(f->ctype, sizeof(f->ctype), req, "Content-Type");
        copy_hdr(f->custom, sizeof(f->custom), req, "X-Slack-Signature");
        copy_hdr(f->ua, sizeof(f->ua), req, "user-agent");
        snprintf(buf, sizeof(buf), "%s %s?%s [%.*s]", req->method, req->path, req->query,
                 (int)req->body_len, req->body);
        assert_int_equal(ob_http_reply(ex, 200, "text/plain", buf, strlen(buf), rate_headers), 0);
    } else if (strncmp(req->path, "/status/", 8) == 0) {
        int st = atoi(req->path + 8);

        snprintf(buf, sizeof(buf), "status %d", st);
        assert_int_equal(ob_http_reply(ex, st, "text/plain", buf, strlen(buf), NULL), 0);
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = strtoul(req->query + 2, NULL, 10); /* "n=..." */
        char *big = malloc(n);

        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
            big[i] = (char)('a' + i % 26);
        assert_int_equal(ob_http_reply(ex, 200, "application/octet-stream", big, n, NULL), 0);
        free(big);
    } else if (strcmp(req->path, "/hang") == 0) {
        assert_true(f->nheld < 8);
        f->held[f->nheld++] = ex; /* never answered */
        if (f->stop_at_requests && f->nreq == f->stop_at_requests)
            teardown_soon(f);
    } else if (strcmp(req->path, "/delay") == 0) {
        f->delayed = ex;
        uv_timer_start(&f->later, delayed_cb, (uint64_t)atoi(req->query + 3), 0); /* ms=.. */
    } else if (strcmp(req->path, "/count") == 0) {
        snprintf(buf, sizeof(buf), "%s", req->query);
        assert_int_equal(ob_http_reply(ex, 200, NULL, buf, strlen(buf), NULL), 0);
    } else {
        assert_int_equal(ob_http_reply(ex, 404, "text/plain", "nope", 4, NULL), 0);
    }
}

static void fx_init_opts(struct fx *f, const struct ob_http_server_opts *so, const char *scheme)
{

    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(ob_lws_new(&f->lws, &f->loop), 0);
    assert_int_equal(ob_http_server_new(f->lws, so, handler, f, &f->srv), 0);
    assert_true(ob_http_server_port(f->srv) > 0);
    snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d", scheme, ob_http_server_port(f->srv));
    assert_int_equal(ob_http_new(&f->http, &f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    uv_timer_init(&f->loop, &f->later);
    uv_timer_init(&f->loop, &f->stopper);
    f->watchdog.data = f->later.data = f->stopper.data = f;
    uv_timer_start(&f->watchdog, watchdog_cb, 8000, 0);
}

static void fx_init(struct fx *f, size_t max_body)
{
    struct ob_http_server_opts so = {.listen = "127.0.0.1:0", .max_body = max_body};

    fx_init_opts(f, &so, "http");
}

static void fx_run(struct fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->torn_down);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

struct ctx {
    struct fx *f;
    int slot;
};

static void on_resp(void *data, const struct ob_http_resp *resp)
{
    struct ctx *c = data;
    struct fx *f = c->f;
    struct result *r = &f->res[c->slot];
    const char *v;

    r->calls++;
    r->err = resp->err;
    r->status = resp->status;
    r->body_len = resp->body_len;
    r->duration_ms = resp->duration_ms;
    assert_non_null(resp->body);
    assert_int_equal(resp->body[resp->body_len], '\0');
    ob_strlcpy(r->body, resp->body, sizeof(r->body));
    ob_strlcpy(r->errmsg, resp->errmsg, sizeof(r->errmsg));
    v = ob_http_resp_header(resp, "retry-after");
    ob_strlcpy(r->retry_after, v ? v : "", sizeof(r->retry_after));
    v = ob_http_resp_header(resp, "X-RATELIMIT-RESET-AFTER");
    ob_strlcpy(r->reset_after, v ? v : "", sizeof(r->reset_after));
    r->has_missing = ob_http_resp_header(resp, "x-not-there") != NULL;
    if (++f->done == f->expect)
        teardown_now(f); /* ob_http_free from inside a callback */
}

static struct ctx ctxs[MAXRES];

static int request(struct fx *f, int slot, const char *method, const char *path, const char *body,
                   const char *const *headers, const struct ob_http_req *tmpl,
                   struct ob_http_call **call)
{
    char url[256];
    struct ob_http_req req = {0};

    if (tmpl)
        req = *tmpl;
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    ctxs[slot].f = f;
    ctxs[slot].slot = slot;
    return ob_http_request(f->http, &req, on_resp, &ctxs[slot], call);
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_and_post_echo(void **state)
{
    struct fx f;
    static const char *const hdrs[] = {"Authorization: Bearer s3cr3t", "X-Slack-Signature: v0=abc",
                                       NULL};
    static const char *const phdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

    (void)state;
    fx_init(&f, 0);
    f.expect = 1;
    assert_int_equal(request(&f, 0, "GET", "/echo?a=1&b=two%20w&c", NULL, hdrs, NULL, NULL), 0);
    assert_int_equal(ob_http_active(f.http), 1);
    assert_int_equal(f.res[0].calls, 0); /* never from inside ob_http_request */
    fx_run(&f);
    assert_int_equal(f.res[0].calls, 1);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 200);
    assert_string_equal(f.res[0].body, "GET /echo?a=1&b=two%20w&c []");
    assert_string_equal(f.method, "GET");
    assert_string_equal(f.query, "a=1&b=two%20w&c"); /* as sent */
    assert_string_equal(f.auth, "Bearer s3cr3t");
    assert_string_equal(f.custom, "v0=abc");
    assert_string_equal(f.ua, "opsbot/" OB_VERSION);
    assert_string_equal(f.res[0].retry_after, "7");
    assert_string_equal(f.res[0].reset_after, "1.5");
    assert_false(f.res[0].has_missing);
    assert_true(f.res[0].duration_ms >= 0);

    fx_init(&f, 0);
    f.expect = 1;
    assert_int_equal(
        request(&f, 0, "POST", "/echo", "text=restart+checkout&x=1", phdrs, NULL, NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 200);
    assert_string_equal(f.method, "POST");
    assert_string_equal(f.body, "text=restart+checkout&x=1");
    assert_int_equal(f.body_len, strlen("text=restart+checkout&x=1"));
    assert_string_equal(f.ctype, "application/x-www-form-urlencoded");
    assert_string_equal(f.auth, "(none)");
    assert_string_equal(f.query, "");
    assert_string_equal(f.res[0].body, "POST /echo? [text=restart+checkout&x=1]");
}

static void test_other_methods(void **state)
{
    struct fx f;
    static const char *const methods[] = {"PUT", "PATCH", "DELETE"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char want[64];

        fx_init(&f, 0);
        f.expect = 1;
        assert_int_equal(
            request(&f, 0, methods[i], "/echo", i == 2 ? NULL : "{\"a\":1}", NULL, NULL, NULL), 0);
        fx_run(&f);
        assert_int_equal(f.res[0].status, 200);
        assert_string_equal(f.method, methods[i]);
        snprintf(want, sizeof(want), "%s /echo? [%s]", methods[i], i == 2 ? "" : "{\"a\":1}");
        assert_string_equal(f.res[0].body, want);
    }
}

static void test_error_statuses(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, 0);
    f.expect = 4;
    assert_int_equal(request(&f, 0, "GET", "/status/404", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(request(&f, 1, "GET", "/status/429", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(request(&f, 2, "POST", "/status/500", "x", NULL, NULL, NULL), 0);
    assert_int_equal(request(&f, 3, "GET", "/nowhere", NULL, NULL, NULL, NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 404);
    assert_string_equal(f.res[0].body, "status 404");
    assert_int_equal(f.res[1].err, 0);
    assert_int_equal(f.res[1].status, 429);
    assert_int_equal(f.res[2].err, 0);
    assert_int_equal(f.res[2].status, 500);
    assert_string_equal(f.res[2].body, "status 500");
    assert_int_equal(f.res[3].status, 404);
    assert_string_equal(f.res[3].body, "nope");
}

static void test_max_response(void **state)
{
    struct fx f;
    struct ob_http_req cap = {.max_response = 1000};
    struct ob_http_req exact = {.max_response = 100000};

    (void)state;
    fx_init(&f, 0);
    f.expect = 2;
    assert_int_equal(request(&f, 0, "GET", "/big?n=100000", NULL, NULL, &cap, NULL), 0);
    assert_int_equal(request(&f, 1, "GET", "/big?n=100000", NULL, NULL, &exact, NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, OB_E2BIG);
    assert_int_equal(f.res[0].status, 200);
    assert_int_equal(f.res[0].body_len, 1000);
    assert_memory_equal(f.res[0].body, "abcdefghijklmnopqrstuvwxyzabcd", 30);
    assert_int_equal(f.res[1].err, 0);
    assert_int_equal(f.res[1].body_len, 100000);
}

static void test_timeout(void **state)
{
    struct fx f;
    struct ob_http_req t = {.timeout_ms = 200};

    (void)state;
    fx_init(&f, 0);
    f.expect = 1;
    assert_int_equal(request(&f, 0, "GET", "/hang", NULL, NULL, &t, NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].calls, 1);
    assert_int_equal(f.res[0].err, OB_ETIMEOUT);
    assert_int_equal(f.res[0].status, 0);
    assert_true(f.res[0].duration_ms >= 150);
    assert_true(f.res[0].duration_ms < 3000);
    assert_true(strlen(f.res[0].errmsg) > 0);
    assert_int_equal(f.nheld, 1);
}

static void test_refused(void **state)
{
    struct fx f;
    uv_tcp_t tcp;
    struct sockaddr_in sa;
    int len = sizeof(sa), port;
    char url[64];
    struct ob_http_req req = {.method = "GET"};

    (void)state;
    fx_init(&f, 0);
    /* a port that was just free: bind, read it back, close */
    uv_tcp_init(&f.loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&tcp, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    uv_close((uv_handle_t *)&tcp, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    req.url = url;
    f.expect = 1;
    ctxs[0].f = &f;
    ctxs[0].slot = 0;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].calls, 1);
    assert_int_equal(f.res[0].err, OB_EHTTP);
    assert_int_equal(f.res[0].status, 0);
    assert_true(strlen(f.res[0].errmsg) > 0);
}

static void test_cancel(void **state)
{
    struct fx f;
    struct ob_http_call *call = NULL;

    (void)state;
    fx_init(&f, 0);
    f.expect = 1;
    /* slot 1 would complete first; it is cancelled */
    assert_int_equal(request(&f, 1, "GET", "/count?first", NULL, NULL, NULL, &call), 0);
    assert_non_null(call);
    assert_int_equal(request(&f, 0, "GET", "/delay?ms=150", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(ob_http_active(f.http), 2);
    ob_http_cancel(call);
    assert_int_equal(ob_http_active(f.http), 1);
    fx_run(&f);
    assert_int_equal(f.res[0].calls, 1);
    assert_int_equal(f.res[0].status, 200);
    assert_string_equal(f.res[0].body, "late"); /* the delayed (async) reply */
    assert_int_equal(f.res[1].calls, 0);
}

static void test_concurrent(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, 0);
    f.expect = 20;
    for (int i = 0; i < 20; i++) {
        char path[32];

        snprintf(path, sizeof(path), "/count?i=%d", i);
        assert_int_equal(request(&f, i, "GET", path, NULL, NULL, NULL, NULL), 0);
    }
    assert_int_equal(ob_http_active(f.http), 20);
    fx_run(&f);
    for (int i = 0; i < 20; i++) {
        char want[32];

        snprintf(want, sizeof(want), "i=%d", i);
        assert_int_equal(f.res[i].calls, 1);
        assert_int_equal(f.res[i].status, 200);
        assert_string_equal(f.res[i].body, want);
    }
    assert_int_equal(f.nreq, 20);
}

static void test_free_in_flight(void **state)
{
    struct fx f;

    (void)state;
    fx_init(&f, 0);
    f.expect = 100; /* never reached */
    f.stop_at_requests = 5;
    for (int i = 0; i < 5; i++)
        assert_int_equal(request(&f, i, "GET", "/hang", NULL, NULL, NULL, NULL), 0);
    fx_run(&f); /* ob_http_free with 5 in flight, then the loop drains */
    assert_int_equal(f.nheld, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(f.res[i].calls, 0);
}

static void test_server_max_body(void **state)
{
    struct fx f;
    char big[4097], small[513];

    (void)state;
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(small, 's', sizeof(small) - 1);
    small[sizeof(small) - 1] = '\0';
    fx_init(&f, 1024);
    f.expect = 2;
    assert_int_equal(request(&f, 0, "POST", "/echo", big, NULL, NULL, NULL), 0);
    assert_int_equal(request(&f, 1, "POST", "/echo", small, NULL, NULL, NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 413);
    assert_int_equal(f.res[1].status, 200);
    assert_int_equal(f.nreq, 1); /* the handler never saw the big one */
    assert_int_equal(f.body_len, 512);
}

static void late_reply_cb(uv_timer_t *t)
{
    struct fx *f = t->data;

    /* the client is gone: the reply is dropped quietly */
    assert_int_equal(ob_http_reply(f->held[0], 200, "text/plain", "too late", 8, NULL), 0);
    teardown_now(f);
}

static void test_late_reply_to_gone_client(void **state)
{
    struct fx f;
    struct ob_http_req t = {.timeout_ms = 200};

    (void)state;
    fx_init(&f, 0);
    f.expect = 1;
    assert_int_equal(request(&f, 0, "GET", "/hang", NULL, NULL, &t, NULL), 0);
    f.expect = 100;
    /* run until the client gave up, then answer: dropped quietly */
    while (f.res[0].calls == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(f.res[0].err, OB_ETIMEOUT);
    assert_int_equal(f.nheld, 1);
    /* answer a little later, when the server saw the disconnect */
    uv_timer_start(&f.later, late_reply_cb, 100, 0);
    fx_run(&f);
}

static void test_bad_requests(void **state)
{
    struct fx f;
    static const char *const crlf[] = {"X-Evil: a\r\nHost: b", NULL};
    static const char *const nocolon[] = {"NoColon", NULL};
    struct ob_http_req req = {.method = "get", .url = "http://127.0.0.1:1/"};

    (void)state;
    fx_init(&f, 0);
    ctxs[0].f = &f;
    ctxs[0].slot = 0;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    req.method = "GET";
    req.headers = crlf;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    req.headers = nocolon;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    req.headers = NULL;
    req.url = NULL;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    /* only http and https; nothing that could split the request line */
    req.url = "ftp://127.0.0.1/x";
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    req.url = "http://127.0.0.1:1/a b";
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    req.url = "http://user:pw@127.0.0.1:1/";
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EINVAL);
    assert_int_equal(ob_http_active(f.http), 0);
    assert_null(ob_http_resp_header(NULL, "x"));
    teardown_soon(&f);
    fx_run(&f);
    assert_int_equal(f.res[0].calls, 0);
}

static void test_escape(void **state)
{
    char *s;

    (void)state;
    s = ob_http_escape("a b&c=d/\xc3\xa9?");
    assert_string_equal(s, "a%20b%26c%3Dd%2F%C3%A9%3F");
    free(s);
    s = ob_http_escape("AZaz09-._~");
    assert_string_equal(s, "AZaz09-._~");
    free(s);
    s = ob_http_escape("");
    assert_string_equal(s, "");
    free(s);
    assert_null(ob_http_escape(NULL));
}

static void test_listen_parse(void **state)
{
    uv_loop_t loop;
    struct ob_lws *l;
    struct ob_http_server *s = NULL;
    struct ob_http_server_opts o = {0};

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ob_lws_new(&l, &loop), 0);
    o.listen = "no-port";
    assert_int_equal(ob_http_server_new(l, &o, handler, NULL, &s), OB_EINVAL);
    o.listen = "127.0.0.1:99999";
    assert_int_equal(ob_http_server_new(l, &o, handler, NULL, &s), OB_EINVAL);
    o.listen = "[::1:80";
    assert_int_equal(ob_http_server_new(l, &o, handler, NULL, &s), OB_EINVAL);
    o.listen = "127.0.0.1:0";
    assert_int_equal(ob_http_server_new(l, &o, handler, NULL, &s), 0);
    assert_true(ob_http_server_port(s) > 0);
    ob_http_server_free(s);
    ob_lws_free(l);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A throwaway self-signed certificate (skipped without the openssl tool). */
static bool make_cert(char *dir, size_t len, char *cert, char *key, size_t plen)
{
    char cmd[1024];

    ob_strlcpy(dir, "/tmp/ob-tls-XXXXXX", len);
    if (!mkdtemp(dir))
        return false;
    snprintf(cert, plen, "%s/cert.pem", dir);
    snprintf(key, plen, "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    return system(cmd) == 0;
}

static void remove_cert(const char *dir, const char *cert, const char *key)
{
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_tls(void **state)
{
    struct fx f;
    char dir[64], cert[128], key[128];
    struct ob_http_server_opts so = {.listen = "127.0.0.1:0"};
    struct ob_http_req insecure = {.insecure = true};
    struct ob_http_req verify = {0};
    struct ob_http_req trusted = {0};

    (void)state;
    if (!make_cert(dir, sizeof(dir), cert, key, sizeof(cert))) {
        remove_cert(dir, cert, key);
        skip();
    }
    so.tls_cert = cert;
    so.tls_key = key;
    fx_init_opts(&f, &so, "https");
    f.expect = 3;
    assert_int_equal(request(&f, 0, "POST", "/echo", "over tls", NULL, &insecure, NULL), 0);
    /* verification on (the default): a self-signed certificate fails */
    assert_int_equal(request(&f, 1, "GET", "/echo", NULL, NULL, &verify, NULL), 0);
    /* ... and passes with it as the CA, by its name (CN=localhost) */
    trusted.ca_file = cert;
    snprintf(f.base, sizeof(f.base), "https://localhost:%d", ob_http_server_port(f.srv));
    assert_int_equal(request(&f, 2, "GET", "/count?ca", NULL, NULL, &trusted, NULL), 0);
    fx_run(&f);
    remove_cert(dir, cert, key);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 200);
    assert_string_equal(f.res[0].body, "POST /echo? [over tls]");
    assert_int_equal(f.res[1].err, OB_EHTTP);
    assert_int_equal(f.res[1].status, 0);
    assert_int_equal(f.res[2].err, 0);
    assert_int_equal(f.res[2].status, 200);
    assert_string_equal(f.res[2].body, "ca");
}

static void test_query_as_sent(void **state)
{
    struct fx f;
    char *v = ob_http_escape("prod&x=1 +/~");
    char path[128];

    (void)state;
    assert_non_null(v);
    snprintf(path, sizeof(path), "/count?env=%s&flag&n=2", v);
    free(v);
    fx_init(&f, 0);
    f.expect = 1;
    assert_int_equal(request(&f, 0, "GET", path, NULL, NULL, NULL, NULL), 0);
    fx_run(&f);
    assert_string_equal(f.res[0].body, "env=prod%26x%3D1%20%2B%2F~&flag&n=2");
}

/* ---- connection reuse, raw responses, proxies ----------------------------- */

struct seq {
    struct fx *f;
    struct ob_http *http;
    const char *base;
    struct connect_proxy *relay; /* freed with the fixture */
    const char *ca_file;
    unsigned accepted;
    int n, done, ok;
};

static void seq_next(struct seq *s);

static void seq_cb(void *data, const struct ob_http_resp *resp)
{
    struct seq *s = data;
    char want[32];

    snprintf(want, sizeof(want), "i=%d", s->done);
    if (resp->err == 0 && resp->status == 200 && strcmp(resp->body, want) == 0)
        s->ok++;
    else
        fprintf(stderr, "seq %d: err %d status %ld body %s (%s)\n", s->done, resp->err,
                resp->status, resp->body, resp->errmsg);
    s->done++;
    if (s->done == s->n) {
        if (s->relay) {
            s->accepted = connect_proxy_accepted(s->relay);
            connect_proxy_free(s->relay);
        }
        teardown_now(s->f);
    } else
        seq_next(s);
}

static void seq_next(struct seq *s)
{
    char url[128];
    struct ob_http_req req = {.method = "GET", .ca_file = s->ca_file};

    snprintf(url, sizeof(url), "%s/count?i=%d", s->base, s->done);
    req.url = url;
    assert_int_equal(ob_http_request(s->http, &req, seq_cb, s, NULL), 0);
}

/* n requests to base, one after the other, until the fixture is done. */
static void seq_run(struct seq *s, struct fx *f, const char *base, int n)
{
    s->f = f;
    s->http = f->http;
    s->base = base;
    s->n = n;
    seq_next(s);
    fx_run(f);
}

/* N sequential requests to one host:port: a relay in front of the server
 * counts the TCP connections the client opens. */
static void test_sequential_reuse(void **state)
{
    struct fx f;
    struct connect_proxy *relay;
    struct seq s = {0};
    char base[64];

    (void)state;
    fx_init(&f, 0);
    assert_int_equal(connect_proxy_new(&relay, &f.loop, ob_http_server_port(f.srv)), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", connect_proxy_port(relay));
    s.relay = relay;
    seq_run(&s, &f, base, 6);
    assert_int_equal(s.ok, 6);
    assert_int_equal(f.nreq, 6);
    /* kept alive: one connection for all of them (docs/TRANSPORT.md) */
    assert_int_equal(s.accepted, 1);
}

/* A host name is resolved off the loop (and cached): two requests to
 * localhost, the second from the first one's callback. */
static void test_host_name(void **state)
{
    struct fx f;
    struct seq s = {0};
    char base[64];

    (void)state;
    fx_init(&f, 0);
    snprintf(base, sizeof(base), "http://localhost:%d", ob_http_server_port(f.srv));
    seq_run(&s, &f, base, 2);
    assert_int_equal(s.ok, 2);
    assert_int_equal(f.nreq, 2);
}

/* A raw HTTP/1.1 server: one canned response per connection, chosen by the
 * request path, then the connection is closed. */
struct raw_srv {
    uv_tcp_t listener;
    int port;
};

struct raw_conn {
    uv_tcp_t tcp;
    char buf[4096];
    size_t len;
    uv_write_t w;
    bool answered;
};

static const char *raw_answer(const char *req)
{
    if (!strncmp(req, "GET /close ", 11))
        return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
               "delimited by the close";
    if (!strncmp(req, "GET /chunked ", 13))
        return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-RateLimit-Remaining: 5\r\n"
               "Retry-After: 1\r\nRetry-After: 2\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    if (!strncmp(req, "GET /redirect ", 14))
        return "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n";
    if (!strncmp(req, "GET /short ", 11))
        return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this";
    return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
}

static void raw_closed(uv_handle_t *h)
{
    free(h->data);
}

static void raw_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, raw_closed);
}

static void raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    struct raw_conn *c = h->data;

    (void)sz;
    buf->base = c->buf + c->len;
    buf->len = sizeof(c->buf) - 1 - c->len;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct raw_conn *c = s->data;
    uv_buf_t out;

    (void)buf;
    if (n < 0 && !c->answered) {
        uv_close((uv_handle_t *)s, raw_closed);
        return;
    }
    if (n <= 0 || c->answered)
        return;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (!strstr(c->buf, "\r\n\r\n"))
        return;
    c->answered = true;
    uv_read_stop(s);
    out.base = (char *)raw_answer(c->buf);
    out.len = strlen(out.base);
    uv_write(&c->w, s, &out, 1, raw_written);
}

static void raw_accept(uv_stream_t *srv, int status)
{
    struct raw_conn *c = calloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
}

static void raw_start(struct raw_srv *r, uv_loop_t *loop)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    uv_tcp_init(loop, &r->listener);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&r->listener, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 16, raw_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&r->listener, (struct sockaddr *)&sa, &len), 0);
    r->port = ntohs(sa.sin_port);
}

static struct raw_srv *raw_for_teardown;

static void raw_teardown(void *data, const struct ob_http_resp *resp)
{
    struct ctx *c = data;

    if (c->f->done + 1 == c->f->expect)
        uv_close((uv_handle_t *)&raw_for_teardown->listener, NULL);
    on_resp(data, resp);
}

static void raw_request(struct fx *f, int slot, const char *method, const char *path, int port)
{
    char url[128];
    struct ob_http_req req = {.method = method};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    req.url = url;
    ctxs[slot].f = f;
    ctxs[slot].slot = slot;
    assert_int_equal(ob_http_request(f->http, &req, raw_teardown, &ctxs[slot], NULL), 0);
}

/* Bodies delimited by the close, chunked bodies, a redirect that is not
 * followed, a body cut short, and HEAD. */
static void test_raw_bodies(void **state)
{
    struct fx f;
    struct raw_srv r;
    struct ob_http_req head = {.method = "HEAD"};
    char url[128];

    (void)state;
    fx_init(&f, 0);
    raw_start(&r, &f.loop);
    raw_for_teardown = &r;
    f.expect = 5;
    raw_request(&f, 0, "GET", "/close", r.port);
    raw_request(&f, 1, "GET", "/chunked", r.port);
    raw_request(&f, 2, "GET", "/redirect", r.port);
    raw_request(&f, 3, "GET", "/short", r.port);
    snprintf(url, sizeof(url), "%s/echo", f.base);
    head.url = url;
    ctxs[4].f = &f;
    ctxs[4].slot = 4;
    assert_int_equal(ob_http_request(f.http, &head, raw_teardown, &ctxs[4], NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, 0);
    assert_int_equal(f.res[0].status, 200);
    assert_string_equal(f.res[0].body, "delimited by the close");
    assert_int_equal(f.res[1].err, 0);
    assert_string_equal(f.res[1].body, "hello world");
    assert_string_equal(f.res[1].retry_after, "2"); /* the last occurrence */
    assert_int_equal(f.res[2].err, 0);
    assert_int_equal(f.res[2].status, 302);
    assert_int_equal(f.res[3].err, OB_EHTTP);
    assert_true(strlen(f.res[3].errmsg) > 0);
    assert_int_equal(f.res[4].err, 0);
    assert_int_equal(f.res[4].status, 200);
    assert_int_equal(f.res[4].body_len, 0);
    assert_string_equal(f.method, "HEAD");
}

struct px_fx {
    struct fx f;
    struct connect_proxy *px;
    struct ob_http *via, *direct; /* on the fixture's lws context */
    unsigned tunnels_after_first, tunnels_total;
    char auth[300], target[64];
    int results[2];
    long status[2];
};

static struct px_fx P;

static void px_stop_cb(uv_timer_t *t)
{
    (void)t;
    P.tunnels_total = connect_proxy_tunnels(P.px);
    ob_http_free(P.via);
    ob_http_free(P.direct); /* both before the context */
    connect_proxy_free(P.px);
    teardown_now(&P.f);
}

static void px_second(void *data, const struct ob_http_resp *resp)
{
    (void)data;
    P.results[1] = resp->err;
    P.status[1] = resp->status;
    uv_timer_start(&P.f.stopper, px_stop_cb, 0, 0);
}

static void px_first(void *data, const struct ob_http_resp *resp)
{
    char url[128];
    struct ob_http_req req = {.method = "GET"};

    (void)data;
    P.results[0] = resp->err;
    P.status[0] = resp->status;
    P.tunnels_after_first = connect_proxy_tunnels(P.px);
    ob_strlcpy(P.auth, connect_proxy_last_auth(P.px), sizeof(P.auth));
    ob_strlcpy(P.target, connect_proxy_last_target(P.px), sizeof(P.target));
    snprintf(url, sizeof(url), "%s/echo", P.f.base);
    req.url = url;
    assert_int_equal(ob_http_request(P.direct, &req, px_second, NULL, NULL), 0);
}

/* http_proxy from the environment: requests go through the CONNECT proxy
 * (with its credentials), unless no_proxy matches the host, even though
 * lws itself reads http_proxy when a vhost is created. */
static void test_proxy_env(void **state)
{
    char env[128], url[128], want[64];
    struct ob_http_req req = {.method = "GET"};

    (void)state;
    memset(&P, 0, sizeof(P));
    fx_init(&P.f, 0);
    assert_int_equal(connect_proxy_new(&P.px, &P.f.loop, 0), 0);
    snprintf(env, sizeof(env), "http://bot:p%%40ss@127.0.0.1:%d/", connect_proxy_port(P.px));
    setenv("http_proxy", env, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    assert_int_equal(ob_http_new_on(&P.via, P.f.lws), 0);
    setenv("no_proxy", "example.com, 127.0.0.1", 1);
    assert_int_equal(ob_http_new_on(&P.direct, P.f.lws), 0);
    unsetenv("http_proxy");
    unsetenv("no_proxy");
    snprintf(url, sizeof(url), "%s/count?via=proxy", P.f.base);
    req.url = url;
    assert_int_equal(ob_http_request(P.via, &req, px_first, NULL, NULL), 0);
    snprintf(want, sizeof(want), "127.0.0.1:%d", ob_http_server_port(P.f.srv));
    fx_run(&P.f);
    assert_int_equal(P.results[0], 0);
    assert_int_equal(P.status[0], 200);
    assert_int_equal(P.tunnels_after_first, 1);
    assert_string_equal(P.target, want);
    assert_non_null(strstr(P.auth, "Ym90OnBAc3M=")); /* base64("bot:p@ss") */
    assert_int_equal(P.results[1], 0);
    assert_int_equal(P.status[1], 200);
    assert_int_equal(P.f.nreq, 2);
    assert_int_equal(P.tunnels_total, 1); /* no_proxy: the second went direct */
}

/* A proxy given by name is looked up by the client (off the loop: lws would
 * call getaddrinfo() on it at every connection), so a name that does not
 * resolve fails the request with what went wrong with the proxy. */
static void test_proxy_by_name_unresolvable(void **state)
{
    struct fx f;
    struct ob_http *bad;
    char url[128];
    struct ob_http_req req = {.method = "GET", .url = url};

    (void)state;
    fx_init(&f, 0);
    setenv("http_proxy", "http://u:secret@no-such-proxy.invalid:3128", 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    assert_int_equal(ob_http_new_on(&bad, f.lws), 0);
    unsetenv("http_proxy");
    ob_http_free(f.http); /* the fixture frees the one it knows */
    f.http = bad;
    snprintf(url, sizeof(url), "%s/count", f.base);
    ctxs[0].f = &f;
    ctxs[0].slot = 0;
    f.expect = 1;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), 0);
    fx_run(&f);
    assert_int_equal(f.res[0].err, OB_EHTTP);
    if (!strstr(f.res[0].errmsg, "the proxy") || strstr(f.res[0].errmsg, "secret"))
        fail_msg("errmsg: %s", f.res[0].errmsg);
    assert_int_equal(f.nreq, 0);
}

/* ---- keep-alive: a scriptable HTTP/1.1 server ------------------------------ */

/* Keeps its connections open and answers by path: "/chunked" (chunked),
 * "/connclose" (Connection: close, the connection left open), "/bye"
 * (answered, then the server closes the connection), "/drop" (closed
 * without an answer while drops are left), "/hold" (held until `hold`
 * requests wait, then all answered), anything else: its path as the body.
 * Counts connections and requests. */
struct ka_conn {
    uv_tcp_t tcp;
    struct ka_srv *srv;
    struct ka_conn *next;
    char buf[16384];
    size_t len;
    bool closing;
};

struct ka_srv {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t watchdog;
    struct ob_http *http;
    int port;
    unsigned accepted, requests, posts, closed_by_server;
    int drops;
    int hold;
    struct ka_conn *held[8];
    char held_path[8][64];
    int nheld;
    struct ka_conn *conns;
    /* the client side: a script of sequential requests */
    const char *const *script; /* "METHOD /path", NULL-terminated */
    int at, done;
    bool wait_close; /* the next step waits for the server to close one */
    struct result res[MAXRES];
    bool torn_down;
};

static void ka_closed(uv_handle_t *h)
{
    struct ka_conn *c = h->data;
    struct ka_srv *s = c->srv;

    for (struct ka_conn **p = &s->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    free(c);
}

static void ka_close(struct ka_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, ka_closed);
    }
}

static void ka_teardown(struct ka_srv *s)
{
    if (s->torn_down)
        return;
    s->torn_down = true;
    ob_http_free(s->http);
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->watchdog, NULL);
    for (struct ka_conn *c = s->conns; c; c = c->next)
        ka_close(c);
}

struct ka_write {
    uv_write_t w;
    struct ka_conn *c;
    bool close_after;
    char data[];
};

static void ka_step(struct ka_srv *s);

static void ka_written(uv_write_t *w, int status)
{
    struct ka_write *kw = (struct ka_write *)w;
    struct ka_conn *c = kw->c;
    struct ka_srv *s = c->srv;

    (void)status;
    if (kw->close_after && !c->closing) {
        ka_close(c);
        s->closed_by_server++;
        if (s->wait_close) {
            s->wait_close = false;
            ka_step(s);
        }
    }
    free(kw);
}

static void ka_send(struct ka_conn *c, const char *text, bool close_after)
{
    size_t n = strlen(text);
    struct ka_write *kw = malloc(sizeof(*kw) + n);
    uv_buf_t b;

    assert_non_null(kw);
    kw->c = c;
    kw->close_after = close_after;
    memcpy(kw->data, text, n);
    b = uv_buf_init(kw->data, (unsigned)n);
    assert_int_equal(uv_write(&kw->w, (uv_stream_t *)&c->tcp, &b, 1, ka_written), 0);
}

static void ka_answer(struct ka_conn *c, const char *path, bool head)
{
    char out[512];

    snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(path),
             head ? "" : path);
    ka_send(c, out, false);
}

/* One complete request: returns false when the connection was closed. */
static bool ka_request(struct ka_conn *c, const char *req)
{
    struct ka_srv *s = c->srv;
    char path[64] = "";

    s->requests++;
    if (strncmp(req, "GET ", 4) && strncmp(req, "HEAD ", 5) && strncmp(req, "OPTIONS ", 8))
        s->posts++; /* a method with effects */
    sscanf(strchr(req, ' ') + 1, "%63s", path);
    if (!strcmp(path, "/drop") && s->drops > 0) {
        s->drops--;
        ka_close(c); /* no answer at all */
        return false;
    }
    if (!strcmp(path, "/chunked")) {
        ka_send(c,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Odd-Header: kept\r\n\r\n"
                "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-X: y\r\n\r\n",
                false);
    } else if (!strcmp(path, "/connclose")) {
        ka_send(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 7\r\n\r\nclosing",
                false);
    } else if (!strcmp(path, "/bye")) {
        ka_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye", true);
    } else if (!strcmp(path, "/hold")) {
        assert_true(s->nheld < 8);
        ob_strlcpy(s->held_path[s->nheld], path, sizeof(s->held_path[0]));
        s->held[s->nheld++] = c;
        if (s->nheld == s->hold)
            for (int i = 0; i < s->nheld; i++)
                ka_answer(s->held[i], "/held", false);
    } else {
        ka_answer(c, path, !strncmp(req, "HEAD ", 5));
    }
    return true;
}

static void ka_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    struct ka_conn *c = h->data;

    (void)sz;
    buf->base = c->buf + c->len;
    buf->len = sizeof(c->buf) - 1 - c->len;
}

static void ka_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct ka_conn *c = st->data;
    char *end;

    (void)buf;
    if (n < 0) {
        ka_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    while (!c->closing && (end = strstr(c->buf, "\r\n\r\n"))) {
        const char *cl = strstr(c->buf, "Content-Length: ");
        size_t head = (size_t)(end - c->buf) + 4, body = 0, total;

        if (cl && cl < end)
            body = strtoul(cl + 16, NULL, 10);
        total = head + body;
        if (c->len < total)
            return;
        end[2] = '\0';
        if (!ka_request(c, c->buf))
            return;
        memmove(c->buf, c->buf + total, c->len - total + 1);
        c->len -= total;
    }
}

static void ka_accept(uv_stream_t *l, int status)
{
    struct ka_srv *s = l->data;
    struct ka_conn *c = calloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    c->srv = s;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    c->next = s->conns;
    s->conns = c;
    s->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, ka_alloc, ka_read);
}

static void ka_watchdog(uv_timer_t *t)
{
    fprintf(stderr, "watchdog: keep-alive test did not finish\n");
    ka_teardown(t->data);
    fail();
}

static void ka_init(struct ka_srv *s)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, ka_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(ob_http_new(&s->http, &s->loop), 0);
    uv_timer_init(&s->loop, &s->watchdog);
    s->watchdog.data = s;
    uv_timer_start(&s->watchdog, ka_watchdog, 8000, 0);
}

static void ka_run(struct ka_srv *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_true(s->torn_down);
    assert_int_equal(uv_loop_close(&s->loop), 0); /* no connection left behind */
}

static void ka_record(struct result *r, const struct ob_http_resp *resp)
{
    const char *v = ob_http_resp_header(resp, "x-odd-header");

    r->calls++;
    r->err = resp->err;
    r->status = resp->status;
    r->body_len = resp->body_len;
    ob_strlcpy(r->body, resp->body, sizeof(r->body));
    ob_strlcpy(r->errmsg, resp->errmsg, sizeof(r->errmsg));
    ob_strlcpy(r->retry_after, v ? v : "", sizeof(r->retry_after));
}

static void ka_cb(void *data, const struct ob_http_resp *resp)
{
    struct ka_srv *s = data;

    ka_record(&s->res[s->done++], resp);
    if (!s->script[s->at]) {
        ka_teardown(s);
        return;
    }
    /* "~": wait until the server has closed a connection */
    if (s->script[s->at][0] == '~' && s->closed_by_server == 0) {
        s->wait_close = true;
        return;
    }
    ka_step(s);
}

static void ka_step(struct ka_srv *s)
{
    char method[16], path[64], url[128];
    const char *step = s->script[s->at++];
    struct ob_http_req req = {.method = method};

    assert_int_equal(sscanf(step + (step[0] == '~'), "%15s %63s", method, path), 2);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    req.url = url;
    if (!strcmp(method, "POST")) {
        req.body = "{\"action\":1}";
        req.body_len = strlen(req.body);
    }
    assert_int_equal(ob_http_request(s->http, &req, ka_cb, s, NULL), 0);
}

static void ka_script(struct ka_srv *s, const char *const *script)
{
    s->script = script;
    ka_step(s);
    ka_run(s);
}

/* Sequential requests share one connection; chunked bodies and every
 * response header (any name) come through. */
static void test_keepalive_chunked(void **state)
{
    static const char *const script[] = {"GET /a",  "GET /chunked", "POST /b", "GET /chunked",
                                         "HEAD /c", "GET /d",       NULL};
    struct ka_srv s;

    (void)state;
    ka_init(&s);
    ka_script(&s, script);
    assert_int_equal(s.done, 6);
    assert_string_equal(s.res[0].body, "/a");
    assert_string_equal(s.res[1].body, "hello world");
    assert_string_equal(s.res[1].retry_after, "kept"); /* X-Odd-Header */
    assert_string_equal(s.res[2].body, "/b");
    assert_string_equal(s.res[3].body, "hello world");
    assert_int_equal(s.res[4].status, 200);
    assert_int_equal(s.res[4].body_len, 0); /* HEAD: the length announced, no body */
    assert_string_equal(s.res[5].body, "/d");
    for (int i = 0; i < 6; i++)
        assert_int_equal(s.res[i].err, 0);
    assert_int_equal(s.requests, 6);
    assert_int_equal(s.accepted, 1);
}

/* "Connection: close" is honoured (the server leaves it open: we do not
 * reuse it anyway); a connection the server closes while idle is dropped
 * and the next request opens a new one without a failed attempt. */
static void test_keepalive_closes(void **state)
{
    static const char *const script[] = {"GET /connclose", "GET /a", "GET /bye", "~GET /b", NULL};
    struct ka_srv s;

    (void)state;
    ka_init(&s);
    ka_script(&s, script);
    assert_int_equal(s.done, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.res[i].err, 0);
        assert_int_equal(s.res[i].status, 200);
    }
    assert_string_equal(s.res[0].body, "closing");
    assert_string_equal(s.res[2].body, "bye");
    assert_string_equal(s.res[3].body, "/b");
    assert_int_equal(s.requests, 4); /* nothing sent twice */
    assert_int_equal(s.accepted, 3); /* connclose | a, bye | b */
}

/* A kept connection the server drops without answering: a GET is sent
 * once more on a new connection. */
static void test_keepalive_retry_get(void **state)
{
    static const char *const script[] = {"GET /a", "GET /drop", NULL};
    struct ka_srv s;

    (void)state;
    ka_init(&s);
    s.drops = 1;
    ka_script(&s, script);
    assert_int_equal(s.done, 2);
    assert_int_equal(s.res[1].err, 0);
    assert_int_equal(s.res[1].status, 200);
    assert_string_equal(s.res[1].body, "/drop");
    assert_int_equal(s.requests, 3); /* a, the dropped one, its retry */
    assert_int_equal(s.accepted, 2);
}

/* ... but a method with effects never is, idempotent or not (a PUT or a
 * DELETE may be an operator's action, and an API may not keep RFC 9110's
 * promise): it fails, and the server saw it once. */
static void test_keepalive_no_retry_post(void **state)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH"};

    (void)state;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char second[32];
        const char *const script[] = {"GET /a", second, NULL};
        struct ka_srv s;

        snprintf(second, sizeof(second), "%s /drop", methods[i]);
        ka_init(&s);
        s.drops = 5;
        ka_script(&s, script);
        assert_int_equal(s.done, 2);
        assert_int_equal(s.res[0].err, 0);
        assert_int_equal(s.res[1].err, OB_EHTTP);
        assert_int_equal(s.res[1].status, 0);
        assert_string_equal(s.res[1].errmsg, "connection closed before a response arrived");
        assert_int_equal(s.posts, 1);
        assert_int_equal(s.requests, 2);
        assert_int_equal(s.accepted, 1); /* it went on the kept connection */
        assert_int_equal(s.drops, 4);
    }
}

static void ka_conc_cb(void *data, const struct ob_http_resp *resp)
{
    struct ka_srv *s = data;

    ka_record(&s->res[s->done++], resp);
    if (s->done == 3) {
        /* one more, after all three: one of theirs is reused */
        static const char *const last[] = {"GET /after", NULL};

        s->script = last;
        s->at = 0;
        ka_step(s);
    }
}

/* Concurrent requests to one host each get a connection of their own: the
 * server answers only once all three wait. */
static void test_keepalive_concurrent(void **state)
{
    struct ka_srv s;
    char url[128];
    struct ob_http_req req = {.method = "GET"};

    (void)state;
    ka_init(&s);
    s.hold = 3;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hold", s.port);
    req.url = url;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ob_http_request(s.http, &req, ka_conc_cb, &s, NULL), 0);
    assert_int_equal(ob_http_active(s.http), 3);
    ka_run(&s);
    assert_int_equal(s.done, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.res[i].err, 0);
        assert_string_equal(s.res[i].body, "/held");
    }
    assert_string_equal(s.res[3].body, "/after");
    assert_int_equal(s.accepted, 3);
    assert_int_equal(s.requests, 4);
}

/* ---- TLS verification: certificates made here ------------------------------- */

struct pki {
    char dir[64];
    char ca[128], ca2[128];          /* two CAs; the servers' certificates are from ca */
    char good[128], good_key[128];   /* DNS:localhost, IP:127.0.0.1 */
    char other[128], other_key[128]; /* DNS:other.example only */
    char old[128], old_key[128];     /* localhost, expired yesterday */
};

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *val)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, val);

    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static X509 *make_x509(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey,
                       long from_s, long to_s)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *n;
    X509V3_CTX v;

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v, NID_basic_constraints, san ? "CA:FALSE" : "critical,CA:TRUE");
    if (san)
        add_ext(x, &v, NID_subject_alt_name, san);
    else
        add_ext(x, &v, NID_key_usage, "critical,keyCertSign,cRLSign");
    assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    if (x)
        assert_int_equal(PEM_write_X509(f, x), 1);
    if (k)
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void leaf(struct pki *p, char *cert, char *key, const char *name, const char *san, X509 *ca,
                 EVP_PKEY *cakey, long from_s, long to_s)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x;

    assert_non_null(k);
    x = make_x509(k, "localhost", san, ca, cakey, from_s, to_s);
    snprintf(cert, 128, "%s/%s.pem", p->dir, name);
    snprintf(key, 128, "%s/%s.key", p->dir, name);
    write_pem(cert, x, NULL);
    write_pem(key, NULL, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void pki_make(struct pki *p)
{
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
    X509 *ca, *ca2;

    assert_non_null(cak);
    assert_non_null(ca2k);
    ob_strlcpy(p->dir, "/tmp/ob-pki-XXXXXX", sizeof(p->dir));
    assert_non_null(mkdtemp(p->dir));
    ca = make_x509(cak, "opsbot test CA", NULL, NULL, NULL, -3600, 86400);
    ca2 = make_x509(ca2k, "opsbot other CA", NULL, NULL, NULL, -3600, 86400);
    snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
    snprintf(p->ca2, sizeof(p->ca2), "%s/ca2.pem", p->dir);
    write_pem(p->ca, ca, NULL);
    write_pem(p->ca2, ca2, NULL);
    leaf(p, p->good, p->good_key, "good", "DNS:localhost,IP:127.0.0.1", ca, cak, -3600, 86400);
    leaf(p, p->other, p->other_key, "other", "DNS:other.example", ca, cak, -3600, 86400);
    leaf(p, p->old, p->old_key, "old", "DNS:localhost,IP:127.0.0.1", ca, cak, -3 * 86400, -86400);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
}

static void pki_remove(struct pki *p)
{
    const char *files[] = {p->ca,    p->ca2,       p->good, p->good_key,
                           p->other, p->other_key, p->old,  p->old_key};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(p->dir);
}

static struct ob_http_server *tls_server(struct fx *f, const char *cert, const char *key)
{
    struct ob_http_server_opts so = {.listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key};
    struct ob_http_server *srv;

    assert_int_equal(ob_http_server_new(f->lws, &so, handler, f, &srv), 0);
    return srv;
}

static void tls_req(struct fx *f, int slot, const char *host, struct ob_http_server *srv,
                    const char *ca, bool insecure)
{
    char url[128];
    struct ob_http_req req = {.method = "GET", .ca_file = ca, .insecure = insecure};

    snprintf(url, sizeof(url), "https://%s:%d/count?slot=%d", host, ob_http_server_port(srv), slot);
    req.url = url;
    ctxs[slot].f = f;
    ctxs[slot].slot = slot;
    assert_int_equal(ob_http_request(f->http, &req, on_resp, &ctxs[slot], NULL), 0);
}

static void expect_refused(const struct result *r, const char *why)
{
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err, OB_EHTTP);
    assert_int_equal(r->status, 0);
    if (!strstr(r->errmsg, "TLS: certificate verify failed") || !strstr(r->errmsg, why)) {
        fprintf(stderr, "errmsg: %s (wanted %s)\n", r->errmsg, why);
        fail();
    }
}

/* Verification: the name or the address must match, the chain must lead
 * to the trusted CA (the given one only, or the system's), the
 * certificate must be valid now; insecure skips all that. */
static void test_tls_verify(void **state)
{
    struct fx f;
    struct pki p;
    struct ob_http_server *good, *other, *old;
    char want[32];

    (void)state;
    pki_make(&p);
    fx_init(&f, 0);
    good = tls_server(&f, p.good, p.good_key);
    other = tls_server(&f, p.other, p.other_key);
    old = tls_server(&f, p.old, p.old_key);
    f.expect = 9;
    tls_req(&f, 0, "localhost", good, p.ca, false);  /* the name */
    tls_req(&f, 1, "127.0.0.1", good, p.ca, false);  /* the address */
    tls_req(&f, 2, "localhost", other, p.ca, false); /* another name */
    tls_req(&f, 3, "127.0.0.1", other, p.ca, false); /* no address in it */
    tls_req(&f, 4, "localhost", good, NULL, false);  /* the system's CAs: not ours */
    tls_req(&f, 5, "localhost", good, p.ca2, false); /* only that other CA */
    tls_req(&f, 6, "localhost", old, p.ca, false);   /* expired */
    tls_req(&f, 7, "127.0.0.1", old, p.ca2, true);   /* insecure: expired, untrusted */
    tls_req(&f, 8, "127.0.0.1", other, NULL, true);  /* insecure: wrong name */
    fx_run(&f);
    pki_remove(&p);
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof(want), "slot=%d", i);
        assert_int_equal(f.res[i].err, 0);
        assert_int_equal(f.res[i].status, 200);
        assert_string_equal(f.res[i].body, want);
    }
    expect_refused(&f.res[2], "hostname mismatch (host localhost)");
    expect_refused(&f.res[3], "IP address mismatch (host 127.0.0.1)");
    expect_refused(&f.res[4], "unable to get local issuer certificate");
    expect_refused(&f.res[5], "unable to get local issuer certificate");
    expect_refused(&f.res[6], "certificate has expired");
    for (int i = 7; i < 9; i++) {
        assert_int_equal(f.res[i].err, 0);
        assert_int_equal(f.res[i].status, 200);
    }
    assert_int_equal(f.nreq, 4); /* the refused ones never sent a request */
}

/* The client certificate and key are loaded per TLS context: a key that
 * does not match the certificate refuses the request at once; a matching
 * pair is accepted (the test server does not ask for it). */
static void test_tls_client_files(void **state)
{
    struct fx f;
    struct pki p;
    struct ob_http_server *good;
    char url[128];
    struct ob_http_req req = {.method = "GET", .url = url};

    (void)state;
    pki_make(&p);
    fx_init(&f, 0);
    good = tls_server(&f, p.good, p.good_key);
    snprintf(url, sizeof(url), "https://localhost:%d/count?mtls", ob_http_server_port(good));
    req.ca_file = p.ca;
    req.cert_file = p.good;
    req.key_file = p.other_key;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), OB_EHTTP);
    req.key_file = p.good_key;
    ctxs[0].f = &f;
    ctxs[0].slot = 0;
    f.expect = 1;
    assert_int_equal(ob_http_request(f.http, &req, on_resp, &ctxs[0], NULL), 0);
    fx_run(&f);
    pki_remove(&p);
    assert_int_equal(f.res[0].calls, 1);
    assert_int_equal(f.res[0].err, 0);
    assert_string_equal(f.res[0].body, "mtls");
}

/* HTTPS requests in sequence share one TLS connection. */
static void test_tls_reuse(void **state)
{
    struct fx f;
    struct pki p;
    struct ob_http_server *good;
    struct connect_proxy *relay;
    struct seq s = {0};
    char base[64];

    (void)state;
    pki_make(&p);
    fx_init(&f, 0);
    good = tls_server(&f, p.good, p.good_key);
    assert_int_equal(connect_proxy_new(&relay, &f.loop, ob_http_server_port(good)), 0);
    snprintf(base, sizeof(base), "https://localhost:%d", connect_proxy_port(relay));
    s.relay = relay;
    s.ca_file = p.ca;
    seq_run(&s, &f, base, 5);
    pki_remove(&p);
    assert_int_equal(s.ok, 5);
    assert_int_equal(f.nreq, 5);
    assert_int_equal(s.accepted, 1);
}

/* A TLS server on a thread of its own (blocking OpenSSL, test only) that
 * answers one request with a body the close delimits, then closes with or
 * without close_notify. */
struct cut_srv {
    int lfd, port;
    bool notify;
    const char *cert, *key;
    const char *client_ca; /* set: a client certificate from it is required */
    char client_cn[64];    /* what the client presented */
};

static void *cut_serve(void *arg)
{
    struct cut_srv *s = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int fd = accept(s->lfd, NULL, NULL);
    SSL *ssl;
    char buf[4096];
    static const char resp[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe first half";

    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, s->cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM), 1);
    if (s->client_ca) {
        assert_int_equal(SSL_CTX_load_verify_locations(ctx, s->client_ca, NULL), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1 && SSL_read(ssl, buf, sizeof(buf)) > 0) {
        X509 *peer = SSL_get1_peer_certificate(ssl);

        if (peer) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, s->client_cn,
                                      sizeof(s->client_cn));
            X509_free(peer);
        }
        SSL_write(ssl, resp, (int)strlen(resp));
        if (s->notify)
            SSL_shutdown(ssl);
    }
    shutdown(fd, SHUT_WR); /* a FIN, whatever TLS said */
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return NULL;
}

/* One GET https://localhost:PORT/ of req's TLS settings against s, served
 * on its thread; the result in f->res[0]. */
static void cut_request(struct cut_srv *s, struct ob_http_req *req, struct fx *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    pthread_t th;
    char url[64];

    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&th, NULL, cut_serve, s), 0);
    fx_init(f, 0);
    snprintf(url, sizeof(url), "https://localhost:%d/", s->port);
    req->method = "GET";
    req->url = url;
    ctxs[0].f = f;
    ctxs[0].slot = 0;
    f->expect = 1;
    assert_int_equal(ob_http_request(f->http, req, on_resp, &ctxs[0], NULL), 0);
    fx_run(f);
    pthread_join(th, NULL);
    close(s->lfd);
}

/* A body only the close ends is whole over TLS only when close_notify came
 * first: a bare FIN (anyone on the path can send one) fails the request
 * rather than hand over what may be half of it. */
static void test_tls_close_delimited(void **state)
{
    struct pki p;

    (void)state;
    pki_make(&p);
    for (int notify = 1; notify >= 0; notify--) {
        struct cut_srv s = {.notify = notify, .cert = p.good, .key = p.good_key};
        struct ob_http_req req = {.ca_file = p.ca};
        struct fx f;

        cut_request(&s, &req, &f);
        if (notify) {
            assert_int_equal(f.res[0].err, 0);
            assert_int_equal(f.res[0].status, 200);
            assert_string_equal(f.res[0].body, "the first half");
        } else {
            assert_int_equal(f.res[0].err, OB_EHTTP);
            if (!strstr(f.res[0].errmsg, "without close_notify"))
                fail_msg("errmsg: %s", f.res[0].errmsg);
        }
    }
    pki_remove(&p);
}

/* Mutual TLS: a server that requires a client certificate from our CA gets
 * the one cert_file/key_file name (as a Kubernetes API server would), and
 * refuses a request without one. */
static void test_tls_client_cert(void **state)
{
    struct pki p;

    (void)state;
    pki_make(&p);
    for (int with = 1; with >= 0; with--) {
        struct cut_srv s = {.notify = true, .cert = p.good, .key = p.good_key, .client_ca = p.ca};
        struct ob_http_req req = {.ca_file = p.ca};
        struct fx f;

        if (with) {
            req.cert_file = p.other;
            req.key_file = p.other_key;
        }
        cut_request(&s, &req, &f);
        if (with) {
            assert_int_equal(f.res[0].err, 0);
            assert_int_equal(f.res[0].status, 200);
            assert_string_equal(s.client_cn, "localhost"); /* every leaf here */
        } else {
            assert_int_equal(f.res[0].err, OB_EHTTP);
            assert_string_equal(s.client_cn, "");
            if (!strstr(f.res[0].errmsg, "TLS") && !strstr(f.res[0].errmsg, "closed"))
                fail_msg("errmsg: %s", f.res[0].errmsg);
        }
    }
    pki_remove(&p);
}

/* A proxy string's host, and the same string pointing at an address. */
static void test_proxy_strings(void **state)
{
    char host[64], out[128];

    (void)state;
    assert_true(ob__proxy_host("u:p@proxy.corp:3128", host, sizeof(host)));
    assert_string_equal(host, "proxy.corp");
    assert_true(ob__proxy_at("u:p@proxy.corp:3128", "10.1.2.3", out, sizeof(out)));
    assert_string_equal(out, "u:p@10.1.2.3:3128");
    assert_true(ob__proxy_at("u:p@proxy.corp:3128", "fd00::1", out, sizeof(out)));
    assert_string_equal(out, "u:p@[fd00::1]:3128");
    assert_true(ob__proxy_host("[::1]:8080", host, sizeof(host)));
    assert_string_equal(host, "::1");
    assert_true(ob__proxy_at("[::1]:8080", "::1", out, sizeof(out)));
    assert_string_equal(out, "[::1]:8080");
    assert_true(ob__proxy_host("a:b@c@px:1", host, sizeof(host))); /* the last '@' */
    assert_string_equal(host, "px");
    assert_true(ob__proxy_at("px:1", "127.0.0.1", out, sizeof(out)));
    assert_string_equal(out, "127.0.0.1:1");
    assert_false(ob__proxy_host("u:p@:3128", host, sizeof(host)));
    assert_false(ob__proxy_host("[::1:8080", host, sizeof(host)));
    assert_false(ob__proxy_at("px:1", "127.0.0.1", out, 8)); /* does not fit */
}

/* The URL parser (fuzz_http_url's findings are the first two cases). */
static void test_url_parse(void **state)
{
    struct ob__url u;
    char big[400];

    (void)state;
    /* a zero-padded port: Host says the port as a number, never cut */
    snprintf(big, sizeof(big), "http://h:%0300d/x", 8080);
    assert_int_equal(ob__url_parse(big, &u), 0);
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.hosthdr, "h:8080");
    /* a bracket inside a name is not a host */
    assert_int_equal(ob__url_parse("https://E[x:443/", &u), OB_EINVAL);

    assert_int_equal(ob__url_parse("HTTPS://Example.com:443/a?b=1#frag", &u), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "Example.com");
    assert_string_equal(u.hosthdr, "Example.com");
    assert_int_equal((int)u.path_len, 6);
    assert_memory_equal(u.path, "/a?b=1", 6);
    assert_int_equal(ob__url_parse("http://[fe80::1%25eth0]:81", &u), 0);
    assert_string_equal(u.host, "fe80::1%25eth0");
    assert_string_equal(u.hosthdr, "[fe80::1%25eth0]:81");
    assert_int_equal((int)u.path_len, 0);
    static const char *const bad[] = {
        "http://h:+80/",
        "http://h: 80/",
        "http://h:0/",
        "http://h:65536/",
        "http://h\r\n/",
        "http://u:p@h/",
        "http://b\xc3\xbc"
        "cher.example/",
        "ftp://h/",
        "http://[::1/",
        "http://[::1]x/",
        "http:///x",
        "http://[g::1]/",
        "http://h/a b",
        "http://h:80:81/",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        if (ob__url_parse(bad[i], &u) != OB_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post_echo),
        cmocka_unit_test(test_other_methods),
        cmocka_unit_test(test_error_statuses),
        cmocka_unit_test(test_max_response),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_server_max_body),
        cmocka_unit_test(test_late_reply_to_gone_client),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_proxy_strings),
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_query_as_sent),
        cmocka_unit_test(test_sequential_reuse),
        cmocka_unit_test(test_raw_bodies),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_proxy_env),
        cmocka_unit_test(test_proxy_by_name_unresolvable),
        cmocka_unit_test(test_keepalive_chunked),
        cmocka_unit_test(test_keepalive_closes),
        cmocka_unit_test(test_keepalive_retry_get),
        cmocka_unit_test(test_keepalive_no_retry_post),
        cmocka_unit_test(test_keepalive_concurrent),
        cmocka_unit_test(test_tls_verify),
        cmocka_unit_test(test_tls_reuse),
        cmocka_unit_test(test_tls_client_files),
        cmocka_unit_test(test_tls_close_delimited),
        cmocka_unit_test(test_tls_client_cert),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
