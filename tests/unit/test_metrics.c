/* The metrics registry: the exposition parses under a strict reader of the
 * Prometheus text format 0.0.4 (written here, independent of metrics.c);
 * counters and histograms move with events; label values are escaped; the
 * number of series per metric is capped; the endpoint answers /metrics,
 * /healthz and /readyz over real HTTP. */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/metrics.h"
#include "opsbot/ws.h"

/* ---- a strict reader of the text format ------------------------------------------- */

#define MAXS 4096
#define MAXL 8

struct sample {
    char name[128];
    char lname[MAXL][64];
    char lval[MAXL][256];
    size_t nl;
    double value;
};

struct family {
    char name[128];
    char type[16];
    bool help;
};

struct expo {
    struct sample s[MAXS];
    size_t n;
    struct family f[64];
    size_t nf;
};

static bool name_ok(const char *s, size_t n, bool colon)
{
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (colon && s[i] == ':')))
            return false;
    return true;
}

static struct family *fam(struct expo *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (!strcmp(e->f[i].name, name))
            return &e->f[i];
    return NULL;
}

/* The family a sample belongs to (histogram suffixes stripped). */
static struct family *owner(struct expo *e, const char *name)
{
    static const char *const suf[] = {"_bucket", "_sum", "_count", NULL};
    char base[128];

    if (fam(e, name))
        return fam(e, name);
    for (size_t i = 0; suf[i]; i++) {
        size_t n = strlen(name), k = strlen(suf[i]);

        if (n > k && !strcmp(name + n - k, suf[i])) {
            snprintf(base, sizeof(base), "%.*s", (int)(n - k), name);
            if (fam(e, base) && !strcmp(fam(e, base)->type, "histogram"))
                return fam(e, base);
        }
    }
    return NULL;
}

/* Fails the test on any deviation from the format. */
static void parse_expo(const char *text, struct expo *e)
{
    const char *p = text;
    const char *last_family = NULL;
    int lineno = 0;

    memset(e, 0, sizeof(*e));
    assert_true(*text);
    assert_int_equal(text[strlen(text) - 1], '\n');
    while (*p) {
        const char *eol = strchr(p, '\n');
        char line[2048];
        size_t len = (size_t)(eol - p);

        lineno++;
        assert_non_null(eol);
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            char *name = line + 7, *sp = strchr(name, ' ');
            struct family *f;

            if (!sp)
                fail_msg("line %d: no text after the name: %s", lineno, line);
            *sp = '\0';
            assert_true(name_ok(name, strlen(name), true));
            f = fam(e, name);
            if (!f) {
                assert_true(e->nf < 64);
                f = &e->f[e->nf++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            }
            if (line[2] == 'H') {
                if (f->help)
                    fail_msg("line %d: second HELP for %s", lineno, name);
                f->help = true;
                for (const char *h = sp + 1; *h; h++)
                    if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                        fail_msg("line %d: bad escape in HELP", lineno);
            } else {
                const char *t = sp + 1;

                if (f->type[0])
                    fail_msg("line %d: second TYPE for %s", lineno, name);
                for (size_t i = 0; i < e->n; i++)
                    if (owner(e, e->s[i].name) == f)
                        fail_msg("line %d: TYPE after samples of %s", lineno, name);
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                    strcmp(t, "summary") && strcmp(t, "untyped"))
                    fail_msg("line %d: unknown type %s", lineno, t);
                snprintf(f->type, sizeof(f->type), "%s", t);
            }
            continue;
        }
        if (line[0] == '#')
            continue;
        if (!line[0])
            fail_msg("line %d: empty line", lineno);
        /* a sample */
        {
            struct sample *s = &e->s[e->n];
            const char *q = line, *start = line;
            char *end;
            struct family *f;

            assert_true(e->n < MAXS);
            memset(s, 0, sizeof(*s));
            while (*q && *q != '{' && *q != ' ')
                q++;
            if (!name_ok(start, (size_t)(q - start), true))
                fail_msg("line %d: bad metric name: %s", lineno, line);
            snprintf(s->name, sizeof(s->name), "%.*s", (int)(q - start), start);
            if (*q == '{') {
                q++;
                while (*q != '}') {
                    const char *ln = q;
                    size_t vi = 0;

                    while (*q && *q != '=')
                        q++;
                    if (!name_ok(ln, (size_t)(q - ln), false) || q[1] != '"')
                        fail_msg("line %d: bad label: %s", lineno, line);
                    assert_true(s->nl < MAXL);
                    snprintf(s->lname[s->nl], 64, "%.*s", (int)(q - ln), ln);
                    for (size_t k = 0; k < s->nl; k++)
                        if (!strcmp(s->lname[k], s->lname[s->nl]))
                            fail_msg("line %d: repeated label", lineno);
                    q += 2;
                    while (*q != '"') {
                        char ch = *q;

                        if (!ch)
                            fail_msg("line %d: unterminated label value", lineno);
                        if (ch == '\\') {
                            q++;
                            if (*q == 'n')
                                ch = '\n';
                            else if (*q == '\\' || *q == '"')
                                ch = *q;
                            else
                                fail_msg("line %d: bad escape \\%c", lineno, *q);
                        }
                        assert_true(vi + 1 < sizeof(s->lval[0]));
                        s->lval[s->nl][vi++] = ch;
                        q++;
                    }
                    s->lval[s->nl][vi] = '\0';
                    s->nl++;
                    q++;
                    if (*q == ',')
                        q++;
                    else if (*q != '}')
                        fail_msg("line %d: expected , or }", lineno);
                }
                q++;
            }
            if (*q != ' ')
                fail_msg("line %d: expected a space before the value", lineno);
            q++;
            if (!strcmp(q, "+Inf"))
                s->value = INFINITY;
            else if (!strcmp(q, "-Inf"))
                s->value = -INFINITY;
            else if (!strcmp(q, "NaN"))
                s->value = NAN;
            else {
                s->value = strtod(q, &end);
                if (end == q || (*end && *end != ' '))
                    fail_msg("line %d: bad value '%s'", lineno, q);
            }
            f = owner(e, s->name);
            if (!f || !f->type[0])
                fail_msg("line %d: sample %s without a TYPE", lineno, s->name);
            if (!strcmp(f->type, "counter")) {
                assert_string_equal(s->name, f->name);
                assert_true(s->value >= 0);
            }
            if (!strcmp(f->type, "histogram")) {
                bool has_le = false;

                for (size_t k = 0; k < s->nl; k++)
                    has_le |= !strcmp(s->lname[k], "le");
                assert_true(has_le == (strstr(s->name, "_bucket") != NULL));
            }
            /* Samples of a family are contiguous. */
            if (last_family && strcmp(last_family, f->name))
                for (size_t i = 0; i < e->n; i++)
                    if (owner(e, e->s[i].name) == f)
                        fail_msg("line %d: %s is not contiguous", lineno, f->name);
            last_family = f->name;
            /* No duplicate series. */
            for (size_t i = 0; i < e->n; i++) {
                const struct sample *o = &e->s[i];
                bool same = !strcmp(o->name, s->name) && o->nl == s->nl;

                for (size_t k = 0; same && k < s->nl; k++)
                    same = !strcmp(o->lname[k], s->lname[k]) && !strcmp(o->lval[k], s->lval[k]);
                if (same)
                    fail_msg("line %d: duplicate series %s", lineno, s->name);
            }
            e->n++;
        }
    }
    for (size_t i = 0; i < e->nf; i++)
        if (!e->f[i].help || !e->f[i].type[0])
            fail_msg("family %s lacks HELP or TYPE", e->f[i].name);
}

/* Value of the sample name{k1="v1",...} (labels given as "k=v" pairs, all
 * of them); -1 when absent. */
static double value(const struct expo *e, const char *name, ...)
{
    const char *kv[MAXL];
    size_t n = 0;
    va_list ap;

    va_start(ap, name);
    for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
        kv[n++] = a;
    va_end(ap);
    for (size_t i = 0; i < e->n; i++) {
        const struct sample *s = &e->s[i];
        bool ok = !strcmp(s->name, name) && s->nl == n;

        for (size_t k = 0; ok && k < n; k++) {
            char want[400];

            snprintf(want, sizeof(want), "%s=%s", s->lname[k], s->lval[k]);
            ok = !strcmp(want, kv[k]);
        }
        if (ok)
            return s->value;
    }
    return -1;
}

static struct expo *scrape(void)
{
    struct expo *e = malloc(sizeof(*e));
    size_t len = 0;
    char *text = ob_metrics_render(&len);

    assert_non_null(e);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    parse_expo(text, e);
    free(text);
    return e;
}

static int reset(void **state)
{
    (void)state;
    ob_metrics_reset();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_empty_parses(void **state)
{
    static const char *const families[][2] = {
        {"opsbot_events_total", "counter"},
        {"opsbot_decisions_total", "counter"},
        {"opsbot_approvals_total", "counter"},
        {"opsbot_approval_seconds", "histogram"},
        {"opsbot_executions_total", "counter"},
        {"opsbot_execution_seconds", "histogram"},
        {"opsbot_llm_calls_total", "counter"},
        {"opsbot_llm_tokens_total", "counter"},
        {"opsbot_llm_cost_usd_total", "counter"},
        {"opsbot_llm_latency_seconds", "histogram"},
        {"opsbot_adapter_reconnects_total", "counter"},
        {"opsbot_ratelimit_waits_total", "counter"},
        {"opsbot_loop_busy_seconds", "histogram"},
        {"opsbot_store_fsync_seconds", "histogram"},
    };
    struct expo *e = scrape();

    (void)state;
    assert_int_equal(e->nf, 14);
    for (size_t i = 0; i < 14; i++) {
        struct family *f = fam(e, families[i][0]);

        if (!f)
            fail_msg("missing family %s", families[i][0]);
        assert_string_equal(f->type, families[i][1]);
    }
    /* The label-less histogram shows zeros from the start. */
    assert_true(value(e, "opsbot_approval_seconds_count", NULL) == 0);
    assert_true(value(e, "opsbot_approval_seconds_bucket", "le=+Inf", NULL) == 0);
    assert_true(value(e, "opsbot_events_total", "platform=console", "kind=message", NULL) == -1);
    free(e);
}

static void test_counters_move(void **state)
{
    struct ob_metrics_llm m = {"local", "llama3.1", "restart", "ops",    "engineers",
                               "ok",    812,        41,        0.000146, 0.93};
    struct expo *e;

    (void)state;
    ob_metrics_event("console", "message");
    ob_metrics_event("console", "message");
    ob_metrics_event("slack", "reaction_add");
    ob_metrics_decision("approve", "prod-changes-need-oncall");
    ob_metrics_decision("allow", "reads");
    ob_metrics_decision("allow", "reads");
    ob_metrics_approval("granted", 42);
    ob_metrics_approval("expired", 1800);
    ob_metrics_execution("restart", "ok", 1.2);
    ob_metrics_execution("restart", "failed", 0.05);
    ob_metrics_llm_call(&m);
    ob_metrics_llm_call(&m);
    ob_metrics_inc_reconnect("slack");
    ob_metrics_inc_ratelimit_wait("slack");
    ob_metrics_inc_ratelimit_wait("slack");
    ob_metrics_loop_busy(0.0003);
    ob_metrics_loop_busy(0.02);
    e = scrape();
    assert_true(value(e, "opsbot_events_total", "platform=console", "kind=message", NULL) == 2);
    assert_true(value(e, "opsbot_events_total", "platform=slack", "kind=reaction_add", NULL) == 1);
    assert_true(value(e, "opsbot_decisions_total", "effect=allow", "rule=reads", NULL) == 2);
    assert_true(value(e, "opsbot_decisions_total", "effect=approve",
                      "rule=prod-changes-need-oncall", NULL) == 1);
    assert_true(value(e, "opsbot_approvals_total", "outcome=granted", NULL) == 1);
    assert_true(value(e, "opsbot_approvals_total", "outcome=expired", NULL) == 1);
    /* histogram: cumulative buckets, sum and count */
    assert_true(value(e, "opsbot_approval_seconds_bucket", "le=30", NULL) == 0);
    assert_true(value(e, "opsbot_approval_seconds_bucket", "le=60", NULL) == 1);
    assert_true(value(e, "opsbot_approval_seconds_bucket", "le=1800", NULL) == 2);
    assert_true(value(e, "opsbot_approval_seconds_bucket", "le=+Inf", NULL) == 2);
    assert_true(value(e, "opsbot_approval_seconds_count", NULL) == 2);
    assert_true(value(e, "opsbot_loop_busy_seconds_bucket", "le=0.0005", NULL) == 1);
    assert_true(value(e, "opsbot_loop_busy_seconds_bucket", "le=0.01", NULL) == 1);
    assert_true(value(e, "opsbot_loop_busy_seconds_bucket", "le=0.025", NULL) == 2);
    assert_true(value(e, "opsbot_loop_busy_seconds_count", NULL) == 2);
    assert_float_equal(value(e, "opsbot_approval_seconds_sum", NULL), 1842, 1e-9);
    assert_true(value(e, "opsbot_executions_total", "action=restart", "result=ok", NULL) == 1);
    assert_true(value(e, "opsbot_executions_total", "action=restart", "result=failed", NULL) == 1);
    assert_true(value(e, "opsbot_execution_seconds_bucket", "action=restart", "le=0.1", NULL) == 1);
    assert_true(value(e, "opsbot_execution_seconds_bucket", "action=restart", "le=2.5", NULL) == 2);
    assert_true(value(e, "opsbot_llm_calls_total", "connection=local", "model=llama3.1",
                      "action=restart", "channel=ops", "team=engineers", "result=ok", NULL) == 2);
    assert_true(value(e, "opsbot_llm_tokens_total", "connection=local", "model=llama3.1",
                      "direction=in", NULL) == 1624);
    assert_true(value(e, "opsbot_llm_tokens_total", "connection=local", "model=llama3.1",
                      "direction=out", NULL) == 82);
    assert_float_equal(
        value(e, "opsbot_llm_cost_usd_total", "connection=local", "model=llama3.1", NULL), 0.000292,
        1e-12);
    assert_true(value(e, "opsbot_llm_latency_seconds_bucket", "connection=local", "model=llama3.1",
                      "le=0.5", NULL) == 0);
    assert_true(value(e, "opsbot_llm_latency_seconds_bucket", "connection=local", "model=llama3.1",
                      "le=1", NULL) == 2);
    assert_true(value(e, "opsbot_adapter_reconnects_total", "platform=slack", NULL) == 1);
    assert_true(value(e, "opsbot_ratelimit_waits_total", "platform=slack", NULL) == 2);
    /* the programmatic view agrees */
    assert_true(ob_metrics_value("opsbot_ratelimit_waits_total", (const char *[]){"slack"}, 1) ==
                2);
    assert_true(ob_metrics_value("opsbot_ratelimit_waits_total", (const char *[]){"teams"}, 1) ==
                -1);
    free(e);
    /* reset forgets */
    ob_metrics_reset();
    e = scrape();
    assert_true(value(e, "opsbot_ratelimit_waits_total", "platform=slack", NULL) == -1);
    free(e);
}

static void test_label_escaping(void **state)
{
    const char *nasty = "a\"b\\c\nd}e,f=g";
    char *text;
    struct expo *e;

    (void)state;
    ob_metrics_event(nasty, "message");
    text = ob_metrics_render(NULL);
    assert_non_null(strstr(text, "platform=\"a\\\"b\\\\c\\nd}e,f=g\""));
    free(text);
    e = scrape();
    assert_true(
        value(e, "opsbot_events_total", "platform=a\"b\\c\nd}e,f=g", "kind=message", NULL) == 1);
    free(e);
}

static void test_cardinality_cap(void **state)
{
    char ch[32], longv[400];
    struct expo *e;
    size_t n = 0;

    (void)state;
    for (int i = 0; i < OB_METRICS_MAX_SERIES + 5; i++) {
        struct ob_metrics_llm m = {"c", "m", "status", ch, "none", "ok", 1, 1, 0, 0.1};

        snprintf(ch, sizeof(ch), "C%04d", i);
        ob_metrics_llm_call(&m);
    }
    e = scrape();
    for (size_t i = 0; i < e->n; i++)
        n += !strcmp(e->s[i].name, "opsbot_llm_calls_total");
    assert_int_equal(n, OB_METRICS_MAX_SERIES + 1);
    assert_true(value(e, "opsbot_llm_calls_total", "connection=c", "model=m", "action=status",
                      "channel=C0999", "team=none", "result=ok", NULL) == 1);
    assert_true(value(e, "opsbot_llm_calls_total", "connection=c", "model=m", "action=status",
                      "channel=C1000", "team=none", "result=ok", NULL) == -1);
    assert_true(value(e, "opsbot_llm_calls_total", "connection=other", "model=other",
                      "action=other", "channel=other", "team=other", "result=other", NULL) == 5);
    free(e);
    /* Long values are cut. */
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    ob_metrics_inc_reconnect(longv);
    e = scrape();
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].name, "opsbot_adapter_reconnects_total"))
            assert_int_equal(strlen(e->s[i].lval[0]), OB_METRICS_LABEL_MAX);
    free(e);
}

/* ---- the endpoint over HTTP ----------------------------------------------------------------- */

struct get {
    long status;
    char body[65536];
    int done;
};

static void got(void *data, const struct ob_http_resp *r)
{
    struct get *g = data;

    g->status = r->status;
    snprintf(g->body, sizeof(g->body), "%s", r->body ? r->body : "");
    g->done = 1;
}

static bool ready_flag;

static bool ready(void *data, char *why, size_t len)
{
    (void)data;
    if (!ready_flag)
        snprintf(why, len, "adapter slack is not connected");
    return ready_flag;
}

static void fetch(uv_loop_t *loop, struct ob_http *h, const char *method, int port,
                  const char *path, struct get *g)
{
    struct ob_http_req rq = {0};
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    memset(g, 0, sizeof(*g));
    rq.method = method;
    rq.url = url;
    rq.timeout_ms = 5000;
    assert_int_equal(ob_http_request(h, &rq, got, g, NULL), 0);
    while (!g->done)
        uv_run(loop, UV_RUN_ONCE);
}

static void test_endpoint(void **state)
{
    uv_loop_t loop;
    struct ob_lws *lws = NULL;
    struct ob_http *h = NULL;
    struct ob_metrics_server *srv = NULL;
    struct get *g = malloc(sizeof(*g));
    struct expo *e = malloc(sizeof(*e));
    int port;

    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(ob_lws_new(&lws, &loop), 0);
    assert_int_equal(ob_http_new(&h, &loop), 0);
    assert_int_equal(ob_metrics_server_new(&srv, lws, "127.0.0.1:0", ready, NULL), 0);
    port = ob_metrics_server_port(srv);
    assert_true(port > 0);
    ob_metrics_event("console", "message");
    fetch(&loop, h, "GET", port, "/metrics", g);
    assert_int_equal(g->status, 200);
    parse_expo(g->body, e);
    assert_true(value(e, "opsbot_events_total", "platform=console", "kind=message", NULL) == 1);
    ob_metrics_event("console", "message");
    fetch(&loop, h, "GET", port, "/metrics", g);
    parse_expo(g->body, e);
    assert_true(value(e, "opsbot_events_total", "platform=console", "kind=message", NULL) == 2);
    fetch(&loop, h, "GET", port, "/healthz", g);
    assert_int_equal(g->status, 200);
    assert_string_equal(g->body, "ok\n");
    ready_flag = false;
    fetch(&loop, h, "GET", port, "/readyz", g);
    assert_int_equal(g->status, 503);
    assert_non_null(strstr(g->body, "adapter slack is not connected"));
    ready_flag = true;
    fetch(&loop, h, "GET", port, "/readyz", g);
    assert_int_equal(g->status, 200);
    fetch(&loop, h, "GET", port, "/nope", g);
    assert_int_equal(g->status, 404);
    fetch(&loop, h, "DELETE", port, "/metrics", g);
    assert_int_equal(g->status, 405);
    ob_metrics_server_free(srv);
    ob_http_free(h);
    ob_lws_free(lws);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(g);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty_parses, reset),
        cmocka_unit_test_setup(test_counters_move, reset),
        cmocka_unit_test_setup(test_label_escaping, reset),
        cmocka_unit_test_setup(test_cardinality_cap, reset),
        cmocka_unit_test_setup(test_endpoint, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    ob_metrics_reset();
    return rc;
}
