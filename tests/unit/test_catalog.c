/* Action catalog: loading and its errors, bindings, caps, value validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/intent.h"

static const char *source_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

/* Loads a JSON array; returns the rc and leaves the diag for the caller. */
static int load_json(const char *json, struct ob_catalog **cat, struct ob_diag *d)
{
    cJSON *arr = cJSON_Parse(json);
    int rc;

    if (!arr)
        fail_msg("bad test JSON: %s", json);
    rc = ob_catalog_load_json(cat, NULL, arr, d);
    /* executor nodes are borrowed: keep arr alive as long as cat (tests
     * that look at them use their own tree) */
    if (rc == 0 && *cat) {
        for (size_t i = 0; i < (*cat)->n; i++)
            (*cat)->actions[i].executor = NULL;
    }
    cJSON_Delete(arr);
    return rc;
}

static bool diag_has(const struct ob_diag *d, const char *a, const char *b)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->lines[i] && strstr(d->lines[i], a) && (!b || strstr(d->lines[i], b)))
            return true;
    return false;
}

static void print_diag(const struct ob_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        printf("    diag: %s\n", d->lines[i] ? d->lines[i] : "(null)");
}

/* ---- value validation --------------------------------------------------- */

static const char *const params_json =
    "[{\"name\":\"t\",\"description\":\"test\",\"risk\":\"read\",\"params\":["
    "{\"name\":\"service\",\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]{0,62}$\"},"
    "{\"name\":\"free\"},"
    "{\"name\":\"n\",\"type\":\"int\",\"min\":0,\"max\":50},"
    "{\"name\":\"any\",\"type\":\"int\"},"
    "{\"name\":\"since\",\"type\":\"duration\",\"default\":\"15 minutes\",\"max\":\"24h\"},"
    "{\"name\":\"long\",\"type\":\"duration\",\"min\":\"1m\"},"
    "{\"name\":\"env\",\"type\":\"enum\",\"values\":[\"prod\",\"staging\",\"dev\"],"
    " \"aliases\":{\"production\":\"prod\",\"Stage\":\"staging\"}},"
    "{\"name\":\"metric\",\"type\":\"enum\",\"values\":[\"latency\",\"error_rate\"],"
    " \"aliases\":{\"error rate\":\"error_rate\",\"p99\":\"latency\"}}]}]";

static int setup_params(void **state)
{
    struct ob_catalog *cat = NULL;
    struct ob_diag d;

    ob_diag_init(&d);
    if (load_json(params_json, &cat, &d) != 0)
        print_diag(&d);
    assert_non_null(cat);
    ob_diag_release(&d);
    *state = cat;
    return 0;
}

static int teardown_params(void **state)
{
    ob_catalog_free(*state);
    return 0;
}

static const struct ob_param_def *param(void **state, const char *name)
{
    const struct ob_param_def *p = ob_action_param(ob_catalog_find(*state, "t"), name);

    assert_non_null(p);
    return p;
}

static void ok(const struct ob_param_def *p, const char *in, const char *want)
{
    char out[256], why[256];
    int rc = ob_param_validate(p, in, out, sizeof(out), why, sizeof(why));

    if (rc != 0)
        fail_msg("%s '%s': rejected: %s", p->name, in, why);
    if (strcmp(out, want))
        fail_msg("%s '%s': got '%s', want '%s'", p->name, in, out, want);
}

static void bad(const struct ob_param_def *p, const char *in, const char *why_part)
{
    char out[256], why[256];
    int rc = ob_param_validate(p, in, out, sizeof(out), why, sizeof(why));

    if (rc != OB_EINVAL)
        fail_msg("%s '%s': accepted as '%s'", p->name, in, out);
    if (why_part && !strstr(why, why_part))
        fail_msg("%s '%s': reason '%s' lacks '%s'", p->name, in, why, why_part);
}

static void test_validate_string(void **state)
{
    const struct ob_param_def *s = param(state, "service"), *f = param(state, "free");
    char big[400];

    ok(s, "checkout", "checkout");
    ok(s, "  api-gateway ", "api-gateway");
    bad(s, "checkout; rm -rf /", "must match ^[a-z][a-z0-9-]{0,62}$");
    bad(s, "$(reboot)", "must match");
    bad(s, "`id`", "must match");
    bad(s, "check\nout", "control");
    bad(s, "Checkout", "must match"); /* patterns are case-sensitive */
    bad(s, "checkout\n", NULL);       /* $ does not match before a newline */
    bad(s, "", "empty");
    bad(s, "   ", "empty");
    memset(big, 'a', 63);
    big[63] = '\0';
    ok(s, big, big);
    big[63] = 'a';
    big[64] = '\0';
    bad(s, big, "must match"); /* 64 > {0,62}+1 */
    memset(big, 'a', 300);
    big[300] = '\0';
    bad(s, big, "too long");
    bad(f, big, "too long");
    memset(big, 'a', 255);
    big[255] = '\0';
    ok(f, big, big);
    ok(f, "connection refused", "connection refused");
    bad(f, "a\x01", "control");
    bad(f, "\xff\xfe", "UTF-8");
    bad(NULL, "x", NULL);
}

static void test_validate_int(void **state)
{
    const struct ob_param_def *n = param(state, "n"), *a = param(state, "any");

    ok(n, "0", "0");
    ok(n, "50", "50");
    ok(n, " 7 ", "7");
    ok(n, "+3", "3");
    ok(n, "zero", "0");
    ok(n, "Six", "6");
    bad(n, "-1", "at least 0");
    bad(n, "51", "at most 50");
    bad(n, "5x", "whole number");
    bad(n, "3.5", "whole number");
    bad(n, "", "empty");
    bad(n, "3; reboot", "whole number");
    ok(a, "-42", "-42");
    ok(a, "123456789012345678", "123456789012345678");
    bad(a, "1234567890123456789", "whole number"); /* 19 digits */
}

static void test_validate_duration(void **state)
{
    const struct ob_param_def *s = param(state, "since"), *l = param(state, "long");

    assert_string_equal(s->def, "15m"); /* the default is stored canonical */
    ok(s, "15m", "15m");
    ok(s, "15 minutes", "15m");
    ok(s, "15 Minutes", "15m");
    ok(s, "an hour", "1h");
    ok(s, "hour", "1h");
    ok(s, "the last hour", "1h");
    ok(s, "2h", "2h");
    ok(s, "2 hrs", "2h");
    ok(s, "90s", "1m30s");
    ok(s, "1h30m", "1h30m");
    ok(s, "half an hour", "30m");
    ok(s, "five minutes", "5m");
    ok(s, "24h", "1d");
    ok(s, "a day", "1d");
    bad(s, "25h", "at most 1d");
    bad(s, "2 days", "at most");
    bad(s, "0m", "longer than zero");
    bad(s, "banana", "duration");
    bad(s, "m", "duration");
    bad(s, "15 parsecs", "duration");
    bad(s, "1h; reboot", "duration");
    ok(l, "1 week", "7d");
    bad(l, "30s", "at least 1m");
}

static void test_validate_enum(void **state)
{
    const struct ob_param_def *e = param(state, "env"), *m = param(state, "metric");

    ok(e, "prod", "prod");
    ok(e, "PROD", "prod");
    ok(e, "Production", "prod");
    ok(e, "stage", "staging"); /* alias keys are case-insensitive too */
    bad(e, "moon", "must be one of: prod, staging, dev");
    bad(e, "prod;", "one of");
    ok(m, "error rate", "error_rate");
    ok(m, "Error   Rate", "error_rate");
    ok(m, "P99", "latency");
    ok(m, "error_rate", "error_rate");
}

/* ---- load errors ------------------------------------------------------------ */

#define ACT(extra) "{\"name\":\"a\",\"description\":\"d\",\"risk\":\"read\"" extra "}"
#define P(extra) ACT(",\"params\":[{\"name\":\"p\"" extra "}]")

static void test_load_errors(void **state)
{
    static const struct {
        const char *json, *key, *text;
    } cases[] = {
        {"[" ACT(",\"colour\":1") "]", "colour", "unknown key"},
        {"[{\"description\":\"d\",\"risk\":\"read\"}]", "name", "missing"},
        {"[{\"name\":\"a\",\"risk\":\"read\"}]", "description", "missing"},
        {"[{\"name\":\"a\",\"description\":\"d\"}]", "risk", "missing"},
        {"[{\"name\":\"a\",\"description\":\"d\",\"risk\":\"maybe\"}]", "risk", "read or change"},
        {"[{\"name\":7,\"description\":\"d\",\"risk\":\"read\"}]", "name", "string"},
        {"[{\"name\":\"Bad-Name\",\"description\":\"d\",\"risk\":\"read\"}]", "name", "invalid"},
        {"[{\"name\":\"help\",\"description\":\"d\",\"risk\":\"read\"}]", "name", "built in"},
        {"[" ACT("") "," ACT("") "]", "name", "duplicate action 'a' (first defined at <input>)"},
        {"[" ACT(",\"params\":{}") "]", "params", "list"},
        {"[" ACT(",\"params\":[7]") "]", "params", "mapping"},
        {"[" P(",\"type\":\"float\"") "]", "type", "unknown type 'float'"},
        {"[" P(",\"bogus\":true") "]", "a.p.bogus", "unknown key"},
        {"[" ACT(",\"params\":[{\"name\":\"p\"},{\"name\":\"p\"}]") "]", "name", "duplicate"},
        {"[" ACT(",\"params\":[{\"name\":\"P q\"}]") "]", "name", "invalid parameter name"},
        {"[" P(",\"pattern\":\"^[a-z\"") "]", "pattern", "offset"},
        {"[" P(",\"type\":\"int\",\"pattern\":\"^1$\"") "]", "pattern", "only string"},
        {"[" ACT(",\"rules\":[\"(unclosed\"]") "]", "rules", "offset"},
        {"[" ACT(",\"rules\":\"\\\\bx\"") "]", "rules", "list"},
        {"[" ACT(",\"rules\":[7]") "]", "rules", "string"},
        {"[" ACT(",\"params\":[{\"name\":\"p\"}],\"rules\":[\"(?<q>x)\"]") "]", "rules",
         "rule group 'q' is not a parameter"},
        {"[" P(",\"type\":\"int\",\"min\":1,\"default\":0") "]", "default", "at least 1"},
        {"[" P(",\"pattern\":\"^[a-z]+$\",\"default\":\"X1\"") "]", "default", "must match"},
        {"[" P(",\"type\":\"enum\"") "]", "values", "non-empty list"},
        {"[" P(",\"type\":\"enum\",\"values\":[]") "]", "values", "non-empty list"},
        {"[" P(",\"type\":\"enum\",\"values\":[\"x\",\"X\"]") "]", "values", "duplicate"},
        {"[" P(",\"type\":\"enum\",\"values\":[\"x\"],\"aliases\":{\"y\":\"z\"}") "]", "aliases",
         "not one of the values"},
        {"[" P(",\"type\":\"enum\",\"values\":[\"x\"],\"aliases\":[\"y\"]") "]", "aliases",
         "mapping"},
        {"[" P(",\"values\":[\"x\"]") "]", "values", "only enum"},
        {"[" P(",\"type\":\"int\",\"min\":5,\"max\":1") "]", "min", "greater than max"},
        {"[" P(",\"type\":\"duration\",\"min\":\"2h\",\"max\":\"1h\"") "]", "min",
         "greater than max"},
        {"[" P(",\"type\":\"int\",\"min\":\"one\"") "]", "min", "integer"},
        {"[" P(",\"min\":1") "]", "min", "only int and duration"},
        {"[" P(",\"required\":\"yes\"") "]", "required", "true or false"},
        {"[" ACT(",\"executor\":[1]") "]", "executor", "mapping"},
        {"[" ACT(",\"executor\":{\"argv\":[\"x\"]}") "]", "type", "string type"},
        {"[" ACT(",\"examples\":[1]") "]", "examples", "string"},
        {"{}", "actions", "list"},
        {"[7]", "actions", "mapping"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ob_catalog *cat = (struct ob_catalog *)1;
        struct ob_diag d;
        int rc;

        if (!cases[i].key)
            continue;
        ob_diag_init(&d);
        rc = load_json(cases[i].json, &cat, &d);
        if (rc != OB_ECONFIG || cat != NULL || !diag_has(&d, cases[i].key, cases[i].text) ||
            !diag_has(&d, "<input>", NULL)) {
            print_diag(&d);
            fail_msg("case %zu (%s): rc %d, want '%s' ... '%s'", i, cases[i].json, rc, cases[i].key,
                     cases[i].text);
        }
        ob_diag_release(&d);
    }
}

static void test_load_ok_and_help(void **state)
{
    struct ob_catalog *cat = NULL;
    struct ob_diag d;
    const struct ob_action *h, *a;

    (void)state;
    ob_diag_init(&d);
    /* a null key counts as absent; a number is accepted as an enum value
     * and as a default; no diag lines on success */
    assert_int_equal(load_json("[{\"name\":\"a_1\",\"description\":\"d\",\"risk\":\"change\","
                               "\"examples\":\"just one\",\"executor\":null,"
                               "\"params\":[{\"name\":\"v\",\"type\":\"enum\",\"values\":[1,2],"
                               "\"default\":2,\"pattern\":null}]}]",
                               &cat, &d),
                     0);
    assert_int_equal(d.n, 0);
    assert_int_equal(cat->n, 2);
    a = ob_catalog_find(cat, "a_1");
    assert_non_null(a);
    assert_int_equal(a->risk, OB_RISK_CHANGE);
    assert_string_equal(a->where, "<input>");
    assert_int_equal(a->nexamples, 1);
    assert_string_equal(a->params[0].def, "2");
    assert_string_equal(ob_action_param(a, "v")->values[0], "1");
    assert_null(ob_action_param(a, "w"));
    h = ob_catalog_find(cat, "help");
    assert_non_null(h);
    assert_int_equal(h->risk, OB_RISK_READ);
    assert_int_equal(h->nparams, 0);
    assert_null(h->executor);
    assert_true(h->nrules >= 1);
    assert_null(ob_catalog_find(cat, "nope"));
    assert_null(ob_catalog_find(NULL, "a_1"));
    ob_catalog_free(cat);
    ob_catalog_free(NULL);
    /* an empty list is a catalog of just help */
    assert_int_equal(load_json("[]", &cat, &d), 0);
    assert_int_equal(cat->n, 1);
    ob_catalog_free(cat);
    /* d may be NULL */
    cJSON *arr = cJSON_Parse("[{\"name\":\"a\"}]");
    assert_int_equal(ob_catalog_load_json(&cat, NULL, arr, NULL), OB_ECONFIG);
    assert_null(cat);
    cJSON_Delete(arr);
    ob_diag_release(&d);
}

static void test_caps(void **state)
{
    static char json[200000];
    struct ob_catalog *cat = NULL;
    struct ob_diag d;
    size_t off;

    (void)state;
    ob_diag_init(&d);
    /* 64 actions load, 65 do not */
    for (int total = 64; total <= 65; total++) {
        off = (size_t)sprintf(json, "[");
        for (int i = 0; i < total; i++)
            off += (size_t)sprintf(json + off,
                                   "%s{\"name\":\"a%d\",\"description\":\"d\","
                                   "\"risk\":\"read\"}",
                                   i ? "," : "", i);
        sprintf(json + off, "]");
        int rc = load_json(json, &cat, &d);

        if (total == 64) {
            assert_int_equal(rc, 0);
            assert_int_equal(cat->n, 65); /* + help */
            ob_catalog_free(cat);
        } else {
            assert_int_equal(rc, OB_ECONFIG);
            assert_true(diag_has(&d, "more than 64 actions", NULL));
        }
    }
    /* OB_MAX_PARAMS parameters load, one more does not */
    for (int total = OB_MAX_PARAMS; total <= OB_MAX_PARAMS + 1; total++) {
        ob_diag_release(&d);
        off = (size_t)sprintf(json, "[{\"name\":\"a\",\"description\":\"d\",\"risk\":\"read\","
                                    "\"params\":[");
        for (int i = 0; i < total; i++)
            off += (size_t)sprintf(json + off, "%s{\"name\":\"p%d\"}", i ? "," : "", i);
        sprintf(json + off, "]}]");
        int rc = load_json(json, &cat, &d);

        if (total == OB_MAX_PARAMS) {
            assert_int_equal(rc, 0);
            ob_catalog_free(cat);
        } else {
            assert_int_equal(rc, OB_ECONFIG);
            assert_true(diag_has(&d, "params", "more than"));
        }
    }
    /* 32 rules load, 33 do not */
    for (int total = 32; total <= 33; total++) {
        ob_diag_release(&d);
        off = (size_t)sprintf(json, "[{\"name\":\"a\",\"description\":\"d\",\"risk\":\"read\","
                                    "\"rules\":[");
        for (int i = 0; i < total; i++)
            off += (size_t)sprintf(json + off, "%s\"x%d\"", i ? "," : "", i);
        sprintf(json + off, "]}]");
        int rc = load_json(json, &cat, &d);

        if (total == 32) {
            assert_int_equal(rc, 0);
            assert_int_equal(ob_catalog_find(cat, "a")->nrules, 32);
            ob_catalog_free(cat);
        } else {
            assert_int_equal(rc, OB_ECONFIG);
            assert_true(diag_has(&d, "rules", "more than 32"));
        }
    }
    /* enum values of 255 bytes load, 256 do not */
    for (int len = 255; len <= 256; len++) {
        ob_diag_release(&d);
        off = (size_t)sprintf(json, "[{\"name\":\"a\",\"description\":\"d\",\"risk\":\"read\","
                                    "\"params\":[{\"name\":\"e\",\"type\":\"enum\",\"values\":[\"");
        memset(json + off, 'v', (size_t)len);
        sprintf(json + off + len, "\"]}]}]");
        int rc = load_json(json, &cat, &d);

        if (len == 255) {
            assert_int_equal(rc, 0);
            ob_catalog_free(cat);
        } else {
            assert_int_equal(rc, OB_ECONFIG);
            assert_true(diag_has(&d, "values", "255"));
        }
    }
    ob_diag_release(&d);
}

/* ---- through the config loader: file:line, bind ------------------------ */

struct tmpdir {
    char path[256];
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_files(const char *dir, const char *const names[])
{
    char p[512];

    for (size_t i = 0; names[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static const char *const good_yaml = "actions:\n"
                                     "  - name: restart\n"
                                     "    description: Restart.\n"
                                     "    risk: change\n"
                                     "    params:\n"
                                     "      - {name: service, required: true}\n"
                                     "    executor: {type: exec, argv: [kubectl, restart]}\n"
                                     "  - name: status\n"
                                     "    description: Status.\n"
                                     "    risk: read\n"
                                     "    executor: {type: exec, argv: [kubectl, status]}\n";

static int load_cfg(const char *dir, const char *main_yaml, struct ob_config **cfg,
                    struct ob_catalog **cat, struct ob_diag *d)
{
    char path[512];
    int rc;

    snprintf(path, sizeof(path), "%s/main.yaml", dir);
    rc = ob_config_load_string(cfg, main_yaml, path, d);
    if (rc != 0) {
        print_diag(d);
        fail_msg("config did not load");
    }
    return ob_catalog_load(cat, *cfg, d);
}

static void test_yaml_locations_and_bind(void **state)
{
    static const char *const names[] = {"a.yaml", "b.yaml", "main.yaml", NULL};
    char dir[] = "/tmp/ob-catalog-XXXXXX";
    struct ob_config *cfg = NULL;
    struct ob_catalog *cat = NULL;
    struct ob_diag d;
    const cJSON *ex;

    (void)state;
    assert_non_null(mkdtemp(dir));
    ob_diag_init(&d);
    write_file(dir, "a.yaml", good_yaml);

    /* bind replaces the executor of the named action */
    assert_int_equal(
        load_cfg(dir,
                 "actions:\n"
                 "  include: a.yaml\n"
                 "  bind:\n"
                 "    restart: {type: exec, argv: [./fleet.sh, restart, '{service}']}\n",
                 &cfg, &cat, &d),
        0);
    ex = ob_catalog_find(cat, "restart")->executor;
    assert_non_null(ex);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "argv"), 0)->valuestring,
                        "./fleet.sh");
    ex = ob_catalog_find(cat, "status")->executor;
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(ex, "argv"), 0)->valuestring,
                        "kubectl");
    assert_non_null(strstr(ob_catalog_find(cat, "restart")->where, "a.yaml:2"));
    ob_catalog_free(cat);
    ob_config_free(cfg);

    /* unknown action in bind; bad binding; unknown key in the section */
    assert_int_equal(load_cfg(dir,
                              "actions:\n"
                              "  include: a.yaml\n"
                              "  colour: red\n"
                              "  bind:\n"
                              "    nosuch: {type: exec}\n"
                              "    status: {argv: [x]}\n",
                              &cfg, &cat, &d),
                     OB_ECONFIG);
    assert_null(cat);
    assert_true(diag_has(&d, "main.yaml:5: bind: unknown action 'nosuch'", NULL));
    assert_true(diag_has(&d, "main.yaml:6", "string type"));
    assert_true(diag_has(&d, "main.yaml:3", "colour"));
    ob_config_free(cfg);
    ob_diag_release(&d);

    /* errors in an included file name it and the line; duplicates name
     * both places */
    write_file(dir, "b.yaml",
               "actions:\n"
               "  - name: restart\n"
               "    description: Again.\n"
               "    risk: change\n"
               "    params:\n"
               "      - name: env\n"
               "        type: enum\n"
               "        values: [prod]\n"
               "        aliases: {production: prod, live: moon}\n"
               "      - name: s\n"
               "        pattern: '(['\n"
               "    rules: ['\\b(?<nope>x)']\n"
               "extra: 1\n");
    assert_int_equal(load_cfg(dir, "actions: {include: '*.yaml'}\n", &cfg, &cat, &d), OB_ECONFIG);
    if (!diag_has(&d, "b.yaml:2: name: duplicate action 'restart' (first defined at ",
                  "a.yaml:2)") ||
        !diag_has(&d, "b.yaml:9: aliases:", "'live'") ||
        !diag_has(&d, "b.yaml:11: pattern:", "offset") ||
        !diag_has(&d, "b.yaml:12: rules:", "'nope'") || !diag_has(&d, "b.yaml:13", "extra")) {
        print_diag(&d);
        fail_msg("locations missing");
    }
    ob_config_free(cfg);
    ob_diag_release(&d);
    remove_files(dir, names);
}

static void test_shipped_catalog(void **state)
{
    static const char *const names[] = {"restart", "rollback", "scale", "logs",
                                        "metrics", "status",   "help"};
    struct ob_config *cfg = NULL;
    struct ob_catalog *cat = NULL;
    struct ob_diag d;
    char path[4096];

    (void)state;
    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot-test.yaml", source_root());
    assert_int_equal(ob_config_load_string(&cfg, "actions: {include: intents/*.yaml}\n", path, &d),
                     0);
    if (ob_catalog_load(&cat, cfg, &d) != 0) {
        print_diag(&d);
        fail();
    }
    /* + diagnose and its evidence actions probe, pods, error_lines
     * (intents/diagnose.yaml, tested in test_diagnose) */
    assert_int_equal(cat->n, 11);
    for (size_t i = 0; i < 7; i++) {
        const struct ob_action *a = ob_catalog_find(cat, names[i]);

        assert_non_null(a);
        assert_non_null(a->description);
        if (!strcmp(a->name, "help"))
            continue;
        assert_true(a->nrules >= 1);
        assert_true(a->nexamples >= 3);
        assert_non_null(a->executor);
        /* the shipped bindings: Kubernetes, Prometheus and Loki */
        assert_string_equal(cJSON_GetObjectItem(a->executor, "type")->valuestring,
                            !strcmp(a->name, "logs")      ? "loki"
                            : !strcmp(a->name, "metrics") ? "prometheus"
                                                          : "kubernetes");
        assert_int_equal(a->risk, !strcmp(a->name, "restart") || !strcmp(a->name, "rollback") ||
                                          !strcmp(a->name, "scale")
                                      ? OB_RISK_CHANGE
                                      : OB_RISK_READ);
        /* service and env everywhere, both required */
        assert_true(ob_action_param(a, "service")->required);
        assert_true(ob_action_param(a, "env")->required);
        assert_int_equal(ob_action_param(a, "env")->nvalues, 3);
        assert_non_null(strstr(a->where, ".yaml:"));
    }
    assert_string_equal(ob_action_param(ob_catalog_find(cat, "logs"), "since")->def, "15m");
    assert_string_equal(ob_action_param(ob_catalog_find(cat, "metrics"), "since")->def, "1h");
    assert_int_equal(ob_action_param(ob_catalog_find(cat, "scale"), "replicas")->max, 50);
    ob_catalog_free(cat);
    ob_config_free(cfg);
    ob_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validate_string, setup_params, teardown_params),
        cmocka_unit_test_setup_teardown(test_validate_int, setup_params, teardown_params),
        cmocka_unit_test_setup_teardown(test_validate_duration, setup_params, teardown_params),
        cmocka_unit_test_setup_teardown(test_validate_enum, setup_params, teardown_params),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_ok_and_help),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_yaml_locations_and_bind),
        cmocka_unit_test(test_shipped_catalog),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
