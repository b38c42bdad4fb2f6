/* The safe query builders (PromQL, LogQL), the string escapes, durations,
 * steps, sparklines and units, and the load-time checks of the network
 * bindings. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/executor.h"

static char *values_metric[] = {(char *)"latency", (char *)"error_rate"};

static struct ob_param_def params[] = {
    {.name = (char *)"service", .type = OB_PARAM_STRING, .required = true},
    {.name = (char *)"env", .type = OB_PARAM_STRING, .required = true},
    {.name = (char *)"since", .type = OB_PARAM_DURATION},
    {.name = (char *)"filter", .type = OB_PARAM_STRING},
    {.name = (char *)"metric", .type = OB_PARAM_ENUM, .values = values_metric, .nvalues = 2},
    {.name = (char *)"replicas", .type = OB_PARAM_INT},
};

static struct ob_action action = {
    .name = (char *)"t",
    .params = params,
    .nparams = sizeof(params) / sizeof(params[0]),
};

static void prop_init(struct ob_proposal *p)
{
    memset(p, 0, sizeof(*p));
    p->action = &action;
}

static void prop_set(struct ob_proposal *p, const char *name, const char *value)
{
    snprintf(p->params[p->nparams].name, sizeof(p->params[0].name), "%s", name);
    snprintf(p->params[p->nparams].value, sizeof(p->params[0].value), "%s", value);
    p->nparams++;
}

static char *render(enum ob__qdialect dl, const char *tmpl, const struct ob_proposal *p)
{
    char why[512];
    char *out = ob__query_render(dl, tmpl, p, why, sizeof(why));

    if (!out)
        print_message("render failed: %s\n", why);
    return out;
}

static void check_ok(enum ob__qdialect dl, const char *tmpl)
{
    char why[512];
    int rc = ob__query_check(dl, tmpl, &action, why, sizeof(why));

    if (rc)
        print_message("unexpected: %s -> %s\n", tmpl, why);
    assert_int_equal(rc, 0);
}

static void check_refused(enum ob__qdialect dl, const char *tmpl, const char *why_part)
{
    char why[512] = "";

    if (ob__query_check(dl, tmpl, &action, why, sizeof(why)) != OB_EINVAL) {
        print_message("not refused: %s\n", tmpl);
        fail();
    }
    if (!strstr(why, why_part)) {
        print_message("'%s' not in '%s'\n", why_part, why);
        fail();
    }
}

/* ---- placement ---------------------------------------------------------------- */

static void test_promql_placement(void **state)
{
    (void)state;
    check_ok(OB__PROMQL,
             "sum(rate(http_requests_total{service=\"{service}\", env=\"{env}\"}[5m]))");
    check_ok(OB__PROMQL, "max_over_time(up{job=~\"{service}-.*\"}[{since}])");
    check_ok(OB__PROMQL, "rate(x{a!=\"{service}\"}[{since}:1m]) offset {since}");
    check_ok(OB__PROMQL, "rate(x[1h:{since}])");
    check_ok(OB__PROMQL, "x{a=\"{{literal}}\"}");
    /* bare placeholders are never query text */
    check_refused(OB__PROMQL, "sum(rate({service}[5m]))", "not inside a double-quoted label value");
    check_refused(OB__PROMQL, "x{service=\"a\"} + {service}", "not inside");
    /* strings that are not label values */
    check_refused(OB__PROMQL, "label_replace(x, \"dst\", \"{service}\", \"src\", \"(.*)\")",
                  "not a label value");
    check_refused(OB__PROMQL, "x{a='{service}'}", "double-quoted");
    check_refused(OB__PROMQL, "x{a=`{service}`}", "double-quoted");
    /* durations: only whole tokens, only duration parameters */
    check_refused(OB__PROMQL, "rate(x[{service}])", "not of type duration");
    check_refused(OB__PROMQL, "rate(x[{since}m])", "not inside");
    check_refused(OB__PROMQL, "rate(x[5m]) offset {env}", "not of type duration");
    check_refused(OB__PROMQL, "x{a=\"{servce}\"}", "unknown placeholder {servce}");
    check_refused(OB__PROMQL, "x{a=\"{service}}", "unterminated string");
}

static void test_logql_placement(void **state)
{
    (void)state;
    check_ok(OB__LOGQL, "{app=\"{service}\", env=\"{env}\"} |= \"{filter}\"");
    check_ok(OB__LOGQL, "{app=\"{service}\"} != \"{filter}\" |~ \"(?i){filter}\"");
    check_ok(OB__LOGQL, "{app=\"{service}\"} | json | level=\"{filter}\"");
    check_ok(OB__LOGQL, "sum(count_over_time({app=\"{service}\"}[{since}]))");
    check_refused(OB__LOGQL, "{app={service}}", "not inside");
    check_refused(OB__LOGQL, "{app=\"x\"} | line_format \"{filter}\"", "not a label value");
    check_refused(OB__LOGQL, "{app=\"x\"} |= `{filter}`", "double-quoted");
    check_refused(OB__LOGQL, "{app=\"x\"} {filter}", "not inside");
}

/* ---- rendering hostile values ------------------------------------------------------ */

static void test_promql_hostile_values(void **state)
{
    struct ob_proposal p;
    char *q;

    (void)state;
    prop_init(&p);
    prop_set(&p, "service", "a\"} or vector(1) or x{b=\"");
    prop_set(&p, "env", "back\\slash\nnew|line{}");
    prop_set(&p, "since", "1h30m");
    q = render(OB__PROMQL, "rate(x{service=\"{service}\", env=\"{env}\"}[{since}])", &p);
    assert_non_null(q);
    assert_string_equal(q, "rate(x{service=\"a\\\"} or vector(1) or x{b=\\\"\", "
                           "env=\"back\\\\slash\\nnew|line{}\"}[90m])");
    free(q);

    /* behind a regex operator the value is regex-escaped first */
    q = render(OB__PROMQL, "up{job=~\"{service}-.*\", x!~\"{env}\"}", &p);
    assert_non_null(q);
    assert_string_equal(q, "up{job=~\"a\\\"\\\\} or vector\\\\(1\\\\) or x\\\\{b=\\\"-.*\", "
                           "x!~\"back\\\\\\\\slash\\nnew\\\\|line\\\\{\\\\}\"}");
    free(q);
}

static void test_control_chars_refused(void **state)
{
    struct ob_proposal p;
    char why[256];

    (void)state;
    prop_init(&p);
    prop_set(&p, "service", "bell\a");
    prop_set(&p, "env", "prod");
    assert_null(ob__query_render(OB__PROMQL, "x{a=\"{service}\"}", &p, why, sizeof(why)));
    assert_non_null(strstr(why, "control character"));
    assert_null(ob__qstring_escape("esc\x1b[31m", false));
    assert_null(ob__qstring_escape("del\x7f", true));
}

static void test_duration_rendering(void **state)
{
    struct ob_proposal p;
    char why[256], buf[32];
    char *q;

    (void)state;
    prop_init(&p);
    prop_set(&p, "service", "s");
    prop_set(&p, "env", "e");
    /* the unset optional duration cannot make a range */
    assert_null(ob__query_render(OB__PROMQL, "rate(x[{since}])", &p, why, sizeof(why)));
    assert_non_null(strstr(why, "needs a duration"));
    prop_set(&p, "since", "2d");
    q = render(OB__PROMQL, "rate(x[{since}]) offset {since}", &p);
    assert_string_equal(q, "rate(x[2d]) offset 2d");
    free(q);
    snprintf(p.params[2].value, sizeof(p.params[2].value), "1500ms");
    q = render(OB__PROMQL, "rate(x[{since}])", &p);
    assert_string_equal(q, "rate(x[1500ms])");
    free(q);
    snprintf(p.params[2].value, sizeof(p.params[2].value), "5m; drop");
    assert_null(ob__query_render(OB__PROMQL, "rate(x[{since}])", &p, why, sizeof(why)));
    assert_string_equal(ob__qduration(7 * 86400000LL, buf, sizeof(buf)), "1w");
    assert_string_equal(ob__qduration(3600000, buf, sizeof(buf)), "1h");
    assert_string_equal(ob__qduration(90000, buf, sizeof(buf)), "90s");
}

static void test_logql_hostile_filter(void **state)
{
    struct ob_proposal p;
    char *q;

    (void)state;
    prop_init(&p);
    prop_set(&p, "service", "checkout");
    prop_set(&p, "env", "prod");
    prop_set(&p, "filter", "\"} |= \"x\" | drop `a` \\ .*");
    q = render(OB__LOGQL, "{app=\"{service}\"} |= \"{filter}\" |~ \"{filter}\"", &p);
    assert_non_null(q);
    assert_string_equal(q, "{app=\"checkout\"} |= \"\\\"} |= \\\"x\\\" | drop `a` \\\\ .*\" |~ "
                           "\"\\\"\\\\} \\\\|= \\\"x\\\" \\\\| drop `a` \\\\\\\\ \\\\.\\\\*\"");
    free(q);
    /* an unset optional filter is the empty string: |= "" matches every line */
    prop_init(&p);
    prop_set(&p, "service", "checkout");
    prop_set(&p, "env", "prod");
    q = render(OB__LOGQL, "{app=\"{service}\"} |= \"{filter}\"", &p);
    assert_string_equal(q, "{app=\"checkout\"} |= \"\"");
    free(q);
}

static void test_json_escape(void **state)
{
    char *e;

    (void)state;
    e = ob__json_escape("a\"b\\c\nd\x01");
    assert_string_equal(e, "a\\\"b\\\\c\\nd\\u0001");
    free(e);
}

/* ---- steps, sparklines, units -------------------------------------------------------- */

static void test_steps(void **state)
{
    (void)state;
    assert_int_equal(ob__step_for_range(3600000), 60000);
    assert_int_equal(ob__step_for_range(15 * 60000), 15000);
    assert_int_equal(ob__step_for_range(10000), 1000);
    assert_int_equal(ob__step_for_range(7 * 86400000LL), 3 * 3600000);
    assert_int_equal(ob__step_for_range(400 * 86400000LL), 86400000);
}

static void test_sparkline(void **state)
{
    double up[8] = {0, 1, 2, 3, 4, 5, 6, 7}, flat[4] = {5, 5, 5, 5};
    double gap[3] = {1, NAN, 3}, many[120];
    char buf[512];

    (void)state;
    assert_string_equal(ob__sparkline(up, 8, 60, buf, sizeof(buf)), "▁▂▃▄▅▆▇█");
    assert_string_equal(ob__sparkline(flat, 4, 60, buf, sizeof(buf)), "▁▁▁▁");
    assert_string_equal(ob__sparkline(gap, 3, 60, buf, sizeof(buf)), "▁ █");
    for (int i = 0; i < 120; i++)
        many[i] = i < 60 ? 0 : 10;
    ob__sparkline(many, 120, 60, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 60 * 3); /* averaged down to the width */
    assert_int_equal(memcmp(buf, "▁", 3), 0);
    assert_int_equal(memcmp(buf + 59 * 3, "█", 3), 0);
    /* a short buffer is cut on a glyph boundary and terminated */
    ob__sparkline(up, 8, 60, buf, 10);
    assert_string_equal(buf, "▁▂▃");
    assert_string_equal(ob__sparkline(NULL, 0, 60, buf, sizeof(buf)), "");
}

static void test_units(void **state)
{
    char b[64];

    (void)state;
    assert_string_equal(ob__fmt_value(0.231, "s", b, sizeof(b)), "231 ms");
    assert_string_equal(ob__fmt_value(2.5, "s", b, sizeof(b)), "2.5 s");
    assert_string_equal(ob__fmt_value(1.0 / 11.0, "ratio", b, sizeof(b)), "9.09%");
    assert_string_equal(ob__fmt_value(1536, "bytes", b, sizeof(b)), "1.5 KiB");
    assert_string_equal(ob__fmt_value(3.0 * 1024 * 1024 * 1024, "bytes", b, sizeof(b)), "3 GiB");
    assert_string_equal(ob__fmt_value(12.5, "req/s", b, sizeof(b)), "12.5 req/s");
    assert_string_equal(ob__fmt_value(NAN, "s", b, sizeof(b)), "NaN");
    assert_string_equal(ob__fmt_value(INFINITY, NULL, b, sizeof(b)), "+Inf");
    assert_string_equal(ob__fmt_value(42, NULL, b, sizeof(b)), "42");
}

/* ---- load-time checks of network bindings --------------------------------------------- */

static int check_binding(const char *json, struct ob_diag *d)
{
    cJSON *b = cJSON_Parse(json);
    int rc;

    assert_non_null(b);
    action.executor = b;
    rc = ob_exec_check_binding(NULL, &action, d);
    action.executor = NULL;
    cJSON_Delete(b);
    return rc;
}

static void expect_diag(const struct ob_diag *d, const char *part)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->lines[i] && strstr(d->lines[i], part))
            return;
    }
    for (size_t i = 0; i < d->n; i++)
        print_message("  diag: %s\n", d->lines[i]);
    print_message("no diagnostic contains \"%s\"\n", part);
    fail();
}

static void test_check_prometheus(void **state)
{
    struct ob_diag d;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(
        check_binding("{\"type\":\"prometheus\",\"url\":\"http://p:9090\",\"select\":\"metric\","
                      "\"queries\":{\"latency\":{\"query\":\"x{s=\\\"{service}\\\"}\",\"unit\":"
                      "\"s\"},\"error_rate\":\"y{s=\\\"{service}\\\"}[{since}]\"},"
                      "\"range\":\"{since}\",\"auth\":{\"bearer\":\"t\"},\"tls\":{\"insecure\":"
                      "true}}",
                      &d),
        0);
    assert_int_equal(d.n, 0);
    assert_int_equal(check_binding("{\"type\":\"prometheus\",\"url\":\"ftp://p\",\"query\":"
                                   "\"sum({service})\",\"range\":\"{service}\",\"colour\":1,"
                                   "\"auth\":{\"bearer\":\"a\",\"basic\":{\"user\":\"u\"}},"
                                   "\"tls\":{\"cert_file\":\"c.pem\"},\"timeout\":\"soon\"}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "<input>: action 't': executor: url: 'ftp://p' is not an http:// or https://");
    expect_diag(&d, "executor: query: placeholder {service} at byte 4 is not inside");
    expect_diag(&d, "executor: range: {service} is not a duration parameter");
    expect_diag(&d, "unknown key 'colour' for type prometheus");
    expect_diag(&d, "auth.basic: needs user and password strings");
    expect_diag(&d, "auth: give one of bearer, bearer_file or basic");
    expect_diag(&d, "tls: cert_file and key_file go together");
    expect_diag(&d, "timeout: not a duration");
    ob_diag_release(&d);

    /* a password in the URL is refused, and not repeated in the message */
    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"prometheus\",\"url\":\"https://u:s3cret@p:9090\","
                                   "\"query\":\"up\"}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "executor: url: credentials in the URL are not sent; use auth: {basic:");
    for (size_t i = 0; i < d.n; i++)
        assert_null(strstr(d.lines[i], "s3cret"));
    ob_diag_release(&d);

    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"prometheus\",\"url\":\"http://p\",\"queries\":"
                                   "{\"latency\":\"x\",\"p50\":\"y\"}}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "queries.p50: 'p50' is not a value of metric");
    expect_diag(&d, "queries: no query for metric 'error_rate'");
    ob_diag_release(&d);
}

static void test_check_loki_http_kube(void **state)
{
    struct ob_diag d;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"loki\",\"url\":\"http://l:3100\",\"query\":"
                                   "\"{app=\\\"{service}\\\"} |= \\\"{filter}\\\"\",\"since\":"
                                   "\"{since}\",\"limit\":20,\"tenant\":\"team\"}",
                                   &d),
                     0);
    assert_int_equal(check_binding("{\"type\":\"loki\",\"url\":\"http://l\",\"query\":\"app\","
                                   "\"limit\":0}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "query: a log query starts with a stream selector");
    expect_diag(&d, "limit: must be a number from 1 to 5000");
    ob_diag_release(&d);

    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"http\",\"url\":\"https://h/x/{service}\","
                                   "\"method\":\"POST\",\"body\":{\"a\":\"{service}\",\"n\":"
                                   "\"{replicas}\"},\"expect\":[200,201],\"headers\":"
                                   "{\"X-Token\":\"abc\"}}",
                                   &d),
                     0);
    assert_int_equal(check_binding("{\"type\":\"http\",\"url\":\"https://h/{nope}\",\"method\":"
                                   "\"BREW\",\"body\":\"{\\\"a\\\": {service}}\",\"headers\":"
                                   "{\"Bad Name\":\"x\"},\"expect\":99}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "url: unknown placeholder {nope}");
    expect_diag(&d, "method: one of GET, POST");
    expect_diag(&d, "body: placeholder {service} at byte 6 is outside a JSON string");
    expect_diag(&d, "headers: invalid header name 'Bad Name'");
    expect_diag(&d, "expect: an HTTP status");
    ob_diag_release(&d);

    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"http\",\"url\":\"https://h\",\"body\":{\"{service}"
                                   "\":1}}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "placeholders are not allowed in keys");
    ob_diag_release(&d);

    ob_diag_init(&d);
    assert_int_equal(check_binding("{\"type\":\"kubernetes\",\"operation\":\"scale\"}", &d),
                     OB_ECONFIG);
    expect_diag(&d, "replicas: required for scale");
    assert_int_equal(check_binding("{\"type\":\"kubernetes\",\"operation\":\"scale\",\"replicas\":"
                                   "\"{service}\",\"url\":\"http://x\"}",
                                   &d),
                     OB_ECONFIG);
    expect_diag(&d, "replicas: {service} is not an int parameter");
    expect_diag(&d, "unknown key 'url' for type kubernetes");
    assert_int_equal(check_binding("{\"type\":\"kubernetes\",\"operation\":\"delete\"}", &d),
                     OB_ECONFIG);
    expect_diag(&d, "operation: required: one of restart, scale, rollback, status");
    ob_diag_release(&d);
}

static void test_describe(void **state)
{
    struct ob_proposal p;
    cJSON *b;
    char buf[1024];

    (void)state;
    prop_init(&p);
    prop_set(&p, "service", "check out");
    prop_set(&p, "env", "prod");
    prop_set(&p, "since", "1h");
    b = cJSON_Parse("{\"type\":\"prometheus\",\"url\":\"http://p\",\"query\":\"x{s=\\\"{service}"
                    "\\\"}\",\"range\":\"{since}\"}");
    action.executor = b;
    assert_int_equal(ob_exec_describe(NULL, &p, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "prometheus query_range over 1h: x{s=\"check out\"}");
    cJSON_Delete(b);
    b = cJSON_Parse("{\"type\":\"http\",\"url\":\"https://h/a/{service}?e={env}\",\"body\":{}}");
    action.executor = b;
    assert_int_equal(ob_exec_describe(NULL, &p, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "http POST https://h/a/check%20out?e=prod");
    cJSON_Delete(b);
    action.executor = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promql_placement),
        cmocka_unit_test(test_logql_placement),
        cmocka_unit_test(test_promql_hostile_values),
        cmocka_unit_test(test_control_chars_refused),
        cmocka_unit_test(test_duration_rendering),
        cmocka_unit_test(test_logql_hostile_filter),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_sparkline),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_check_prometheus),
        cmocka_unit_test(test_check_loki_http_kube),
        cmocka_unit_test(test_describe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
