/* Tests of the HTTP client (src/http.c) against the lws HTTP server
 * (src/lws_server.c) on 127.0.0.1: real sockets, one loop per test, and
 * every test ends with the loop closing cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

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
    struct ob_http_req req = {.method = "GET"};

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
    /* libwebsockets 4.1 gives no reuse (docs/TRANSPORT.md): one connection
     * per request, each closed when its response is complete. */
    assert_int_equal(s.accepted, 6);
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
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_query_as_sent),
        cmocka_unit_test(test_sequential_reuse),
        cmocka_unit_test(test_raw_bodies),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_proxy_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
