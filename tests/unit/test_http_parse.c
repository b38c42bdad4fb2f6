/* Tests of the HTTP/1.x response parser (src/http_parse.c): every response
 * is fed whole, byte by byte and split at every position, and all three
 * must agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/http_parse.h"

#define CAP 1024

struct out {
    int rc;
    long status;
    bool reusable, started;
    char body[CAP];
    size_t body_len;
    size_t used;       /* bytes consumed in all */
    const char *err;   /* after OB__HP_ERROR */
    char hdr[CAP];     /* the value of the header asked for, or "(none)" */
    size_t stop_after; /* the body callback stops past this many bytes (0: never) */
};

static int on_body(void *ctx, const char *p, size_t n)
{
    struct out *o = ctx;

    assert_true(o->body_len + n < CAP);
    memcpy(o->body + o->body_len, p, n);
    o->body_len += n;
    return o->stop_after && o->body_len > o->stop_after;
}

/* Feeds in at the given split points (sorted, within len), then EOF when
 * eof is set and the response is not finished. */
static void feed(struct out *o, const char *in, size_t len, bool head, size_t max_head,
                 const size_t *splits, size_t nsplits, bool eof, const char *hname)
{
    struct ob__hp p;
    size_t at = 0, stop = o->stop_after;
    const char *v;

    memset(o, 0, sizeof(*o));
    o->stop_after = stop;
    ob__hp_init(&p, head, max_head, on_body, o);
    o->rc = OB__HP_MORE;
    for (size_t i = 0; i <= nsplits && o->rc == OB__HP_MORE; i++) {
        size_t end = i < nsplits ? splits[i] : len, used;

        o->rc = ob__hp_feed(&p, in + at, end - at, &used);
        o->used += used;
        if (o->rc == OB__HP_MORE)
            assert_int_equal(used, end - at);
        at = end;
    }
    if (eof && o->rc == OB__HP_MORE)
        o->rc = ob__hp_eof(&p);
    o->status = p.status;
    o->reusable = ob__hp_reusable(&p);
    o->started = ob__hp_started(&p);
    o->err = o->rc == OB__HP_ERROR ? p.err : NULL;
    v = hname ? ob__hp_header(&p, hname) : NULL;
    snprintf(o->hdr, sizeof(o->hdr), "%s", v ? v : "(none)");
    o->body[o->body_len] = '\0';
    ob__hp_free(&p);
}

static void same(const struct out *a, const struct out *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->reusable, b->reusable);
    assert_int_equal(a->body_len, b->body_len);
    assert_memory_equal(a->body, b->body, a->body_len);
    if (a->rc != OB__HP_ERROR) /* where an error stops depends on the pieces */
        assert_int_equal(a->used, b->used);
    assert_string_equal(a->hdr, b->hdr);
    if (a->err || b->err)
        assert_string_equal(a->err, b->err);
}

/* The result of in (whole), checked against byte-by-byte and every
 * two-piece split. */
static struct out parse_opts(const char *in, bool head, size_t max_head, bool eof,
                             const char *hname, size_t stop_after)
{
    size_t len = strlen(in);
    struct out whole = {.stop_after = stop_after}, other = {.stop_after = stop_after};
    size_t *all = calloc(len + 1, sizeof(size_t));

    assert_non_null(all);
    feed(&whole, in, len, head, max_head, NULL, 0, eof, hname);
    for (size_t i = 0; i < len; i++)
        all[i] = i + 1;
    feed(&other, in, len, head, max_head, all, len ? len - 1 : 0, eof, hname);
    if (!stop_after) /* where a stop lands depends on the pieces */
        same(&whole, &other);
    for (size_t i = 0; i <= len && !stop_after; i++) {
        feed(&other, in, len, head, max_head, &i, 1, eof, hname);
        same(&whole, &other);
    }
    free(all);
    return whole;
}

static struct out parse(const char *in, const char *hname)
{
    return parse_opts(in, false, 64 * 1024, false, hname, 0);
}

static struct out parse_eof(const char *in)
{
    return parse_opts(in, false, 64 * 1024, true, NULL, 0);
}

static void expect_error(const char *in, const char *why)
{
    struct out o = parse_eof(in);

    assert_int_equal(o.rc, OB__HP_ERROR);
    assert_non_null(o.err);
    if (why && !strstr(o.err, why)) {
        fprintf(stderr, "error \"%s\", expected \"%s\" for: %s\n", o.err, why, in);
        fail();
    }
}

static void test_content_length(void **state)
{
    struct out o;

    (void)state;
    o = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Custom-Thing:  v a l \r\n\r\nhello",
              "x-custom-thing");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "hello");
    assert_true(o.reusable);
    assert_string_equal(o.hdr, "v a l"); /* any name, OWS trimmed */
    /* bytes after the response are left alone */
    o = parse("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokEXTRA", "content-length");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_string_equal(o.body, "ok");
    assert_int_equal(o.used, strlen("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"));
    assert_string_equal(o.hdr, "2");
    /* a zero length, a reason-less status line, bare LF line ends */
    o = parse("HTTP/1.1 404\nContent-Length: 0\n\n", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.status, 404);
    assert_int_equal(o.body_len, 0);
    /* the last occurrence, duplicates that agree */
    o = parse("HTTP/1.1 200 OK\r\nRetry-After: 1\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n"
              "retry-after: 2\r\n\r\nabc",
              "Retry-After");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_string_equal(o.hdr, "2");
    assert_string_equal(o.body, "abc");
    /* incomplete: more is needed, or the close cuts it short */
    o = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", NULL);
    assert_int_equal(o.rc, OB__HP_MORE);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "before the response was");
}

static void test_bad_content_length(void **state)
{
    (void)state;
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                 "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551617\r\n\r\n",
                 "invalid Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                 "conflicting");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "conflicting");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\nhello", "invalid Content-Length");
}

static void test_chunked(void **state)
{
    struct out o;

    (void)state;
    o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n6;name=value;x\r\n world\r\nA \r\n0123456789\r\n0\r\n"
              "Trailer-One: x\r\n\r\n",
              "transfer-encoding");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_string_equal(o.body, "hello world0123456789");
    assert_true(o.reusable);
    assert_string_equal(o.hdr, "chunked");
    o = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\nNEXT", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.body_len, 0);
    assert_int_equal(o.used,
                     strlen("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n"));
    /* chunked and Content-Length: chunked wins, the connection goes */
    o = parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
              "2\r\nab\r\n0\r\n\r\n",
              NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_string_equal(o.body, "ab");
    assert_false(o.reusable);
    /* not finished */
    o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", NULL);
    assert_int_equal(o.rc, OB__HP_MORE);
    o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_MORE);
}

static void test_bad_chunked(void **state)
{
    static const char h[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char in[512];

    (void)state;
    snprintf(in, sizeof(in), "%s%s", h, "5\r\nhelloXY0\r\n\r\n");
    expect_error(in, "bad CRLF after chunk data");
    snprintf(in, sizeof(in), "%s%s", h, "5\r\nhello\rX");
    expect_error(in, "bad CRLF after chunk data");
    snprintf(in, sizeof(in), "%s%s", h, "fffffffffffffffffffff\r\n");
    expect_error(in, "chunk size too large");
    snprintf(in, sizeof(in), "%s%s", h, "\r\nhello\r\n");
    expect_error(in, "bad chunk size");
    snprintf(in, sizeof(in), "%s%s", h, "-5\r\nhello\r\n");
    expect_error(in, "bad chunk size");
    snprintf(in, sizeof(in), "%s%s", h, "5x\r\nhello\r\n");
    expect_error(in, "bad chunk size");
    snprintf(in, sizeof(in), "%s%s", h, "5;a\x01\r\nhello\r\n");
    expect_error(in, "control character");
    snprintf(in, sizeof(in), "%s%s", h, "0\r\nBad Trailer: x\r\n\r\n");
    expect_error(in, "bad header name");
    snprintf(in, sizeof(in), "%s%s", h, "5\r\nhello\r\n"); /* closed before the last chunk */
    expect_error(in, "before the response was complete");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", "unsupported");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                 "unsupported");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                 "not the last");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n0\r\n\r\n",
                 "not the last");
    {
        char big[6000];

        memset(big, ';', sizeof(big));
        memcpy(big, h, sizeof(h) - 1);
        big[sizeof(h) - 1] = '1';
        big[sizeof(big) - 1] = '\0';
        expect_error(big, "chunk size line too long");
    }
}

static void test_close_delimited(void **state)
{
    struct out o;

    (void)state;
    o = parse_eof("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_string_equal(o.body, "until the close");
    assert_false(o.reusable);
    o = parse("HTTP/1.1 200 OK\r\n\r\nmore to come", NULL);
    assert_int_equal(o.rc, OB__HP_MORE);
    /* nothing at all, or a head cut short */
    o = parse_eof("");
    assert_int_equal(o.rc, OB__HP_ERROR);
    assert_false(o.started);
    assert_string_equal(o.err, "connection closed before a response arrived");
    o = parse_eof("HTTP/1.1 200 OK\r\nContent-");
    assert_int_equal(o.rc, OB__HP_ERROR);
    assert_true(o.started);
    assert_string_equal(o.err, "connection closed before the response was complete");
}

static void test_reuse_rules(void **state)
{
    struct out o;

    (void)state;
    o = parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_false(o.reusable);
    o = parse("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", NULL);
    assert_false(o.reusable);
    o = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_false(o.reusable);
    o = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_true(o.reusable);
    o = parse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", NULL);
    assert_true(o.reusable);
    o = parse_eof("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nx");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_false(o.reusable); /* delimited by the close */
}

static void test_no_body(void **state)
{
    struct out o;

    (void)state;
    o = parse_opts("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nNEXT", true, 65536, false, NULL,
                   0);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.body_len, 0);
    assert_true(o.reusable);
    assert_int_equal(o.used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
    o = parse("HTTP/1.1 204 No Content\r\n\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_true(o.reusable);
    o = parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.status, 304);
}

static void test_interim(void **state)
{
    struct out o;

    (void)state;
    o = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
              "link");
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "ok");
    assert_string_equal(o.hdr, "(none)"); /* the interim response's headers are not kept */
    o = parse("HTTP/1.1 100 Continue\r\n\r\n", NULL);
    assert_int_equal(o.rc, OB__HP_MORE);
    assert_int_equal(o.status, 0);
    expect_error("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "101");
}

static void test_bad_heads(void **state)
{
    (void)state;
    expect_error("HTTP/2 200 OK\r\n\r\n", "bad status line");
    expect_error("HTTP/1.2 200 OK\r\n\r\n", "bad status line");
    expect_error("http/1.1 200 OK\r\n\r\n", "bad status line");
    expect_error("HTTP/1.1 20 OK\r\n\r\n", "bad status line");
    expect_error("HTTP/1.1 2000 OK\r\n\r\n", "bad status line");
    expect_error("HTTP/1.1 099 Low\r\n\r\n", "bad status code");
    expect_error("HTTP/1.1 200 O\x01K\r\n\r\n", "control character");
    expect_error("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "folding");
    expect_error("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", NULL); /* cut at the NUL by strlen */
    expect_error("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", "control character");
    expect_error("HTTP/1.1 200 OK\r\nX-A: a\x7f\r\n\r\n", "control character");
    expect_error("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header name");
    expect_error("HTTP/1.1 200 OK\r\nName : x\r\n\r\n", "bad header name");
    expect_error("HTTP/1.1 200 OK\r\nX(y): x\r\n\r\n", "bad header name");
    expect_error("HTTP/1.1 200 OK\r\n: x\r\n\r\n", "empty header name");
    expect_error("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "without a colon");
    expect_error("\r\nHTTP/1.1 200 OK\r\n\r\n", "bad status line");
}

/* A NUL byte (strlen cannot carry it): fed by hand. */
static void test_nul(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";
    struct ob__hp p;

    (void)state;
    ob__hp_init(&p, false, 65536, NULL, NULL);
    assert_int_equal(ob__hp_feed(&p, in, sizeof(in) - 1, NULL), OB__HP_ERROR);
    assert_non_null(strstr(p.err, "control character"));
    /* and it stays failed */
    assert_int_equal(ob__hp_feed(&p, "x", 1, NULL), OB__HP_ERROR);
    assert_int_equal(ob__hp_eof(&p), OB__HP_ERROR);
    ob__hp_free(&p);
}

static void test_header_cap(void **state)
{
    char in[2048];
    struct out o;
    int n;

    (void)state;
    n = snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Big: ");
    memset(in + n, 'a', 300);
    strcpy(in + n + 300, "\r\n\r\n");
    o = parse_opts(in, false, 256, true, NULL, 0);
    assert_int_equal(o.rc, OB__HP_ERROR);
    assert_string_equal(o.err, "response headers too large");
    o = parse_opts(in, false, 1024, true, "x-big", 0);
    assert_int_equal(o.rc, OB__HP_DONE);
    assert_int_equal(strlen(o.hdr), 300);
    /* interim responses count too */
    o = parse_opts("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                   false, 60, true, NULL, 0);
    assert_int_equal(o.rc, OB__HP_ERROR);
    assert_string_equal(o.err, "response headers too large");
}

static void test_stop(void **state)
{
    struct out o;

    (void)state;
    o = parse_opts("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false, 65536, false,
                   NULL, 4);
    assert_int_equal(o.rc, OB__HP_STOP);
    assert_true(o.body_len > 4);
    assert_false(o.reusable);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),  cmocka_unit_test(test_bad_content_length),
        cmocka_unit_test(test_chunked),         cmocka_unit_test(test_bad_chunked),
        cmocka_unit_test(test_close_delimited), cmocka_unit_test(test_reuse_rules),
        cmocka_unit_test(test_no_body),         cmocka_unit_test(test_interim),
        cmocka_unit_test(test_bad_heads),       cmocka_unit_test(test_nul),
        cmocka_unit_test(test_header_cap),      cmocka_unit_test(test_stop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
