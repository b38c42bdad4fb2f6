/* Diagnose and suggest, the pure part: BM25 over runbook sections, the
 * playbook's expressions, loading (file:line errors), the analysis of the
 * shipped playbook on the fixtures of tests/data/diagnose, evidence lines,
 * the LLM's answer against the rule-made set, pick emoji. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "diagnose_int.h"
#include "opsbot/config.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/intent.h"
#include "opsbot/log.h"

static const char *root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

/* ---- BM25 ----------------------------------------------------------------------- */

static const char checkout_md[] =
    "# Checkout\n"
    "Checkout takes the basket to an order.\n"
    "## Bad deploy\n"
    "If errors rise right after a rollout, roll back to the previous revision first.\n"
    "## Saturation\n"
    "When every pod is near its CPU limit, scale up: double the replicas.\n"
    "```\n"
    "# not a heading inside a fence: crash crash crash\n"
    "```\n"
    "## Crash loop\n"
    "A pod in CrashLoopBackOff: a rolling restart clears a stuck pool.\n";

static const char general_md[] = "# General\n"
                                 "## First minutes\n"
                                 "Say you are looking. Check the rollout, errors and pods.\n"
                                 "## Nothing looks wrong\n"
                                 "The problem is upstream: DNS, the load balancer.\n";

static void test_bm25_ranking(void **state)
{
    struct ob_runbooks *rb = ob_runbooks_new();
    struct ob_runbook_hit h[8];
    size_t n;

    (void)state;
    assert_int_equal(ob_runbooks_add(rb, "checkout.md", checkout_md, strlen(checkout_md)), 0);
    assert_int_equal(ob_runbooks_add(rb, "general.md", general_md, strlen(general_md)), 0);
    assert_int_equal(ob_runbooks_sections(rb), 7);

    n = ob_runbooks_search(rb, "crash loop restart pod", h, 8);
    assert_true(n >= 1);
    assert_string_equal(h[0].file, "checkout.md");
    assert_string_equal(h[0].heading, "Crash loop");
    /* scores are ordered */
    for (size_t i = 1; i < n; i++)
        assert_true(h[i - 1].score >= h[i].score);

    n = ob_runbooks_search(rb, "rollback: errors after a bad deploy", h, 8);
    assert_true(n >= 1);
    assert_string_equal(h[0].heading, "Bad deploy");

    /* stems meet: "scaling" and "replica" find "scale up … replicas" */
    n = ob_runbooks_search(rb, "scaling replica", h, 1);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].heading, "Saturation");

    /* a term in a heading weighs more than the same term in a body */
    n = ob_runbooks_search(rb, "upstream dns", h, 8);
    assert_string_equal(h[0].heading, "Nothing looks wrong");

    /* nothing shared: no hits; stop words alone: no hits */
    assert_int_equal(ob_runbooks_search(rb, "kafka zookeeper", h, 8), 0);
    assert_int_equal(ob_runbooks_search(rb, "the and of", h, 8), 0);
    assert_int_equal(ob_runbooks_search(rb, "", h, 8), 0);
    assert_int_equal(ob_runbooks_search(NULL, "crash", h, 8), 0);
    /* max caps the hits */
    assert_int_equal(ob_runbooks_search(rb, "pod rollout errors", h, 2), 2);
    ob_runbooks_free(rb);
}

static void test_bm25_idf(void **state)
{
    struct ob_runbooks *rb = ob_runbooks_new();
    struct ob_runbook_hit h[4];
    static const char doc[] = "## A\nservice service service timeout\n"
                              "## B\nservice service service\n"
                              "## C\nservice oom\n";

    (void)state;
    assert_int_equal(ob_runbooks_add(rb, "x.md", doc, strlen(doc)), 0);
    /* the rare term decides, not the frequent one */
    assert_int_equal(ob_runbooks_search(rb, "service oom", h, 4) >= 1, 1);
    assert_string_equal(h[0].heading, "C");
    assert_int_equal(ob_runbooks_search(rb, "service timeout", h, 4) >= 1, 1);
    assert_string_equal(h[0].heading, "A");
    ob_runbooks_free(rb);
}

static void test_passage(void **state)
{
    struct ob_runbook_hit h = {.file = "f.md",
                               .heading = "H",
                               .text = "- First line of the\n  section.\n\n- Second `item` here "
                                       "with more words than fit"};
    char buf[40];

    (void)state;
    ob_runbook_passage(&h, buf, sizeof(buf));
    assert_true(strlen(buf) < sizeof(buf));
    assert_non_null(strstr(buf, "First line of the section."));
    assert_null(strstr(buf, "`"));
    assert_non_null(strstr(buf, "\xe2\x80\xa6")); /* cut and marked */
    ob_runbook_passage(&h, buf, 1);
    assert_string_equal(buf, "");
}

static void test_runbooks_dir(void **state)
{
    struct ob_runbooks *rb = NULL;
    struct ob_diag d;
    char dir[512];
    struct ob_runbook_hit h;

    (void)state;
    ob_diag_init(&d);
    snprintf(dir, sizeof(dir), "%s/runbooks", root());
    assert_int_equal(ob_runbooks_load(&rb, dir, &d), 0);
    assert_int_equal(d.n, 0);
    assert_true(ob_runbooks_sections(rb) >= 10);
    assert_int_equal(ob_runbooks_search(rb, "payments crash loop OOMKilled restart", &h, 1), 1);
    assert_string_equal(h.file, "payments.md");
    ob_runbooks_free(rb);
    assert_int_equal(ob_runbooks_load(&rb, "/nonexistent/runbooks", &d), OB_ECONFIG);
    assert_null(rb);
    assert_true(d.n >= 1);
    assert_non_null(strstr(d.lines[0], "diagnose.runbooks"));
    ob_diag_release(&d);
}

/* ---- expressions ------------------------------------------------------------------ */

static double vars(void *data, const char *name)
{
    (void)data;
    if (!strcmp(name, "a"))
        return 3;
    if (!strcmp(name, "b"))
        return 0.5;
    return 0.0 / 0.0; /* unknown */
}

static double ev(const char *src)
{
    char why[200];
    struct dx_expr *e = dx_expr_parse(src, why, sizeof(why));
    double v;

    if (!e)
        fail_msg("%s: %s", src, why);
    v = dx_expr_eval(e, vars, NULL);
    dx_expr_free(e);
    return v;
}

static void bad(const char *src, const char *why_part)
{
    char why[200];
    struct dx_expr *e = dx_expr_parse(src, why, sizeof(why));

    if (e)
        fail_msg("'%s' parsed", src);
    if (!strstr(why, why_part))
        fail_msg("'%s': '%s' lacks '%s'", src, why, why_part);
}

static void test_expr(void **state)
{
    (void)state;
    assert_true(ev("1 + 2 * 3") == 7);
    assert_true(ev("(1 + 2) * 3") == 9);
    assert_true(ev("-a + 10") == 7);
    assert_true(ev("a / b") == 6);
    assert_true(ev("5%") == 0.05);
    assert_true(ev("15m") == 900);
    assert_true(ev("250ms") == 0.25);
    assert_true(ev("2d") == 172800);
    assert_true(ev("max(a, 10, b)") == 10);
    assert_true(ev("min(a * 2, 20)") == 6);
    assert_true(ev("ceil(b)") == 1);
    assert_true(ev("a >= 3") == 1);
    assert_true(ev("a < 3") == 0);
    assert_true(ev("a != 3") == 0);
    /* unknown propagates; has() knows */
    assert_true(ev("zz + 1") != ev("zz + 1")); /* NaN */
    assert_true(ev("zz >= 1") != ev("zz >= 1"));
    assert_true(ev("has(zz)") == 0);
    assert_true(ev("has(a)") == 1);
    assert_true(ev("a / 0") != ev("a / 0")); /* division by zero: unknown */
    bad("", "empty");
    bad("1 +", "ends too early");
    bad("(1", "expected ')'");
    bad("foo(1)", "unknown function");
    bad("has(1)", "has() takes one name");
    bad("a < b < 1", "do not chain");
    bad("3x", "unknown unit");
    bad("a $ b", "unexpected");
    bad("ceil(1, 2)", "one argument");
    {
        char deep[200];

        memset(deep, '(', 60);
        strcpy(deep + 60, "1");
        bad(deep, "nested too deeply");
    }
}

/* ---- the shipped playbook ---------------------------------------------------------- */

struct shipped {
    struct ob_config *cfg;
    struct ob_catalog *cat;
    struct ob_diagnose *dg;
};

static const char shipped_yaml[] =
    "actions:\n"
    "  include: intents/*.yaml\n"
    "targets:\n"
    "  clusters: {c: {server: \"http://127.0.0.1:1\"}}\n"
    "  envs: {prod: {cluster: c, namespace: prod}, staging: {cluster: c, namespace: staging},\n"
    "         dev: {cluster: c, namespace: dev}}\n"
    "diagnose: {runbooks: runbooks, max_proposals: 3}\n";

static void load_shipped(struct shipped *s, const char *yaml)
{
    struct ob_diag d;
    char path[4096];

    memset(s, 0, sizeof(*s));
    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot-test.yaml", root());
    if (ob_config_load_string(&s->cfg, yaml, path, &d) || ob_catalog_load(&s->cat, s->cfg, &d) ||
        ob_diagnose_load(&s->dg, s->cfg, s->cat, NULL, &d)) {
        ob_diag_print(&d, NULL);
        fail();
    }
    ob_diag_release(&d);
}

static void free_shipped(struct shipped *s)
{
    ob_diagnose_free(s->dg);
    ob_catalog_free(s->cat);
    ob_config_free(s->cfg);
}

static cJSON *fixture(const char *name)
{
    char path[4096], *buf;
    FILE *f;
    size_t n;
    cJSON *j;

    snprintf(path, sizeof(path), "%s/tests/data/diagnose/%s.json", root(), name);
    f = fopen(path, "r");
    assert_non_null(f);
    buf = calloc(1, 1 << 16);
    n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    j = cJSON_Parse(buf);
    free(buf);
    assert_non_null(j);
    return j;
}

static void analyse(struct shipped *s, const char *name, const char *service, const char *env,
                    struct ob_dx_result *r)
{
    cJSON *fx = fixture(name);
    struct ob_dx_input in = {.service = service, .env = env, .symptom = "slow", .text = NULL};

    in.evidence = cJSON_GetObjectItem(fx, "evidence");
    assert_int_equal(ob_diagnose_analyse(s->dg, s->cat, &in, r), 0);
    cJSON_Delete(fx);
}

static void test_shipped_playbook(void **state)
{
    struct shipped s;
    struct ob_dx_result r;
    struct ob_proposal p;
    char buf[512], why[200];

    (void)state;
    load_shipped(&s, shipped_yaml);
    assert_true(ob_diagnose_settings(s.dg)->enabled);
    assert_int_equal(ob_diagnose_evidence_count(s.dg), 8);
    assert_int_equal(ob_diagnose_settings(s.dg)->budget_ms, 10000);
    assert_false(ob_diagnose_settings(s.dg)->narrative); /* no connection */

    /* evidence proposals: validated, with the fixed params and defaults */
    assert_int_equal(
        ob_diagnose_evidence_proposal(s.dg, 1, "checkout", "production", &p, why, sizeof(why)), 0);
    assert_string_equal(ob_proposal_format(&p, buf, sizeof(buf)),
                        "probe service=checkout env=prod signal=latency_1d window=15m");
    assert_int_equal(
        ob_diagnose_evidence_proposal(s.dg, 0, "checkout; rm -rf /", "prod", &p, why, sizeof(why)),
        OB_EINVAL);
    assert_non_null(strstr(why, "service"));

    /* bad rollout: rollback to the previous revision, with its reason and runbook */
    analyse(&s, "bad_rollout", "checkout", "prod", &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(ob_proposal_format(&r.proposals[0].prop, buf, sizeof(buf)),
                        "rollback service=checkout env=prod revision=41");
    assert_string_equal(r.proposals[0].rule, "bad-rollout");
    assert_string_equal(r.proposals[0].reason, "the trouble began with revision 42, rolled out "
                                               "10m ago: back to revision 41");
    assert_string_equal(r.proposals[0].runbook_file, "checkout.md");
    assert_string_equal(r.proposals[0].runbook_heading, "Bad deploy");
    if (!strstr(r.reading, "error rate 90× yesterday's (9.00% now, 0.10% a day earlier)"))
        fail_msg("reading: %s", r.reading);
    assert_non_null(strstr(r.reading, "a rollout 10m ago (revision 42)"));
    assert_non_null(strstr(r.reading, "no CPU pressure (44% of the limit at most)"));
    ob_dx_result_release(&r);

    /* saturation: scale to twice the replicas */
    analyse(&s, "saturation", "cart", "prod", &r);
    assert_true(r.n >= 1);
    assert_string_equal(ob_proposal_format(&r.proposals[0].prop, buf, sizeof(buf)),
                        "scale service=cart env=prod replicas=6");
    assert_non_null(strstr(r.reading, "no rollout in the last 1h"));
    assert_non_null(strstr(r.reading, "CPU at 97% of the limit"));
    ob_dx_result_release(&r);

    /* crash loop: restart */
    analyse(&s, "crash_loop", "payments", "prod", &r);
    assert_true(r.n >= 1);
    assert_string_equal(ob_proposal_format(&r.proposals[0].prop, buf, sizeof(buf)),
                        "restart service=payments env=prod");
    assert_non_null(strstr(r.proposals[0].reason, "payments-7d9f8c-0 is in CrashLoopBackOff after "
                                                  "14 restarts"));
    assert_string_equal(r.proposals[0].runbook_file, "payments.md");
    ob_dx_result_release(&r);

    /* nothing wrong: no proposal, and the reading says why */
    analyse(&s, "nothing_wrong", "search", "prod", &r);
    assert_int_equal(r.n, 0);
    assert_non_null(strstr(r.reading, "no rollout in the last 1h; no CPU pressure"));
    ob_dx_result_release(&r);

    /* missing evidence: unknown facts make no claims and no proposals */
    analyse(&s, "partial", "checkout", "prod", &r);
    assert_int_equal(r.n, 0);
    assert_null(strstr(r.reading, "rollout"));
    ob_dx_result_release(&r);
    free_shipped(&s);
}

static void test_max_proposals(void **state)
{
    struct shipped s;
    struct ob_dx_result r;
    cJSON *fx = fixture("bad_rollout"), *cpu;
    struct ob_dx_input in = {.service = "checkout", .env = "prod"};
    char y[1024];

    (void)state;
    /* hot CPU on top of the bad rollout: two rules hold */
    cpu = cJSON_GetObjectItem(cJSON_GetObjectItem(fx, "evidence"), "cpu");
    cJSON_ReplaceItemInObject(cpu, "max", cJSON_CreateNumber(0.96));
    in.evidence = cJSON_GetObjectItem(fx, "evidence");
    load_shipped(&s, shipped_yaml);
    assert_int_equal(ob_diagnose_analyse(s.dg, s.cat, &in, &r), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.proposals[0].prop.action->name, "rollback");
    assert_string_equal(r.proposals[1].prop.action->name, "scale");
    ob_dx_result_release(&r);
    free_shipped(&s);
    snprintf(y, sizeof(y), "%.*sdiagnose: {max_proposals: 1}\n",
             (int)(strstr(shipped_yaml, "diagnose:") - shipped_yaml), shipped_yaml);
    load_shipped(&s, y);
    assert_int_equal(ob_diagnose_analyse(s.dg, s.cat, &in, &r), 0);
    assert_int_equal(r.n, 1);
    ob_dx_result_release(&r);
    free_shipped(&s);
    cJSON_Delete(fx);
}

/* ---- loading errors -------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool diag_has(const struct ob_diag *d, const char *a, const char *b)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->lines[i] && strstr(d->lines[i], a) && (!b || strstr(d->lines[i], b)))
            return true;
    return false;
}

static void test_load_errors(void **state)
{
    char dir[] = "/tmp/opsbot-dx-XXXXXX", path[512], main_yaml[2048];
    struct ob_config *cfg = NULL;
    struct ob_catalog *cat = NULL;
    struct ob_diagnose *dg = NULL;
    struct ob_diag d;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    write_file(path,
               "actions:\n"
               "  - name: diagnose\n"
               "    description: d\n"
               "    risk: read\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: enum, values: [prod], required: true}\n"
               "  - name: look\n"
               "    description: l\n"
               "    risk: read\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: enum, values: [prod], required: true}\n"
               "    executor: {type: exec, argv: [/bin/echo, \"{service}\"]}\n"
               "  - name: fix\n"
               "    description: f\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: enum, values: [prod], required: true}\n"
               "    executor: {type: exec, argv: [/bin/echo, \"{service}\"]}\n"
               "playbook:\n"
               "  evidence:\n"
               "    - {name: e1, action: look}\n"
               "    - {name: e2, action: fix}\n"
               "    - {name: e3, action: nope}\n"
               "    - {name: e4, action: look, params: {colour: red}}\n"
               "  thresholds: {high: 5%, weird: 3q}\n"
               "  facts:\n"
               "    x: {from: e1.value}\n"
               "    y: {expr: \"x * zz\"}\n"
               "    z: {from: nowhere.value}\n"
               "  readings:\n"
               "    - {when: \"x >= (\", say: \"{x} is high\"}\n"
               "    - {when: \"x >= high\", say: \"{nofact} is high\"}\n"
               "  rules:\n"
               "    - {name: r1, when: \"x >= high\", propose: {action: fix, params: {colour: "
               "red}}, reason: ok}\n"
               "    - {name: r2, when: \"x >= high\", propose: {action: gone}, reason: ok}\n"
               "    - {name: r3, when: \"x >= high\", propose: {action: diagnose}, reason: ok}\n");
    snprintf(main_yaml, sizeof(main_yaml),
             "actions: {include: a.yaml}\n"
             "diagnose:\n"
             "  budget: 1h\n"
             "  max_proposals: 5\n"
             "  colour: red\n"
             "  llm: {connection: nope}\n");
    snprintf(path, sizeof(path), "%s/main.yaml", dir);
    write_file(path, main_yaml);
    ob_diag_init(&d);
    assert_int_equal(ob_config_load(&cfg, path, &d), 0);
    assert_int_equal(ob_catalog_load(&cat, cfg, &d), 0);
    assert_int_equal(ob_diagnose_load(&dg, cfg, cat, NULL, &d), OB_ECONFIG);
    assert_null(dg);
    if (!diag_has(&d, "main.yaml:3: diagnose.budget", "between 1s and 5m") ||
        !diag_has(&d, "main.yaml:4:", "max_proposals") || !diag_has(&d, "main.yaml:5", "colour") ||
        !diag_has(&d, "main.yaml:6", "unknown connection 'nope'") ||
        !diag_has(&d, "a.yaml:25: playbook.evidence.action", "'fix' is a change action") ||
        !diag_has(&d, "a.yaml:26: playbook.evidence.action", "no action 'nope'") ||
        !diag_has(&d, "a.yaml:27: playbook.evidence.params", "'colour' is not a parameter") ||
        !diag_has(&d, "a.yaml:28: playbook.thresholds", "'weird'") ||
        !diag_has(&d, "a.yaml:31: playbook.facts", "'zz' is not a fact or threshold") ||
        !diag_has(&d, "a.yaml:32: playbook.facts", "no evidence named 'nowhere'") ||
        !diag_has(&d, "a.yaml:34: playbook.readings.when", "expression ends too early") ||
        !diag_has(&d, "a.yaml:35: playbook.readings.say", "{nofact}") ||
        !diag_has(&d, "a.yaml:37: playbook.rules.propose.params", "'colour'") ||
        !diag_has(&d, "a.yaml:38: playbook.rules.propose.action", "no action 'gone'") ||
        !diag_has(&d, "a.yaml:39: playbook.rules.propose.action", "cannot be proposed")) {
        ob_diag_print(&d, NULL);
        fail_msg("an expected error is missing");
    }
    ob_diag_release(&d);
    ob_catalog_free(cat);
    ob_config_free(cfg);
    cfg = NULL;
    cat = NULL;

    /* a diagnose action without a playbook */
    write_file(path, "actions: {include: b.yaml}\n");
    snprintf(main_yaml, sizeof(main_yaml), "%s/b.yaml", dir);
    write_file(main_yaml, "actions:\n"
                          "  - name: diagnose\n"
                          "    description: d\n"
                          "    risk: read\n"
                          "    params:\n"
                          "      - {name: service, type: string, required: true}\n"
                          "      - {name: env, type: enum, values: [prod], required: true}\n");
    ob_diag_init(&d);
    assert_int_equal(ob_config_load(&cfg, path, &d), 0);
    assert_int_equal(ob_catalog_load(&cat, cfg, &d), 0);
    assert_int_equal(ob_diagnose_load(&dg, cfg, cat, NULL, &d), OB_ECONFIG);
    assert_true(diag_has(&d, "b.yaml:2", "no playbook"));
    ob_diag_release(&d);
    ob_catalog_free(cat);
    ob_config_free(cfg);
    unlink(main_yaml);
    snprintf(main_yaml, sizeof(main_yaml), "%s/a.yaml", dir);
    unlink(main_yaml);
    unlink(path);
    rmdir(dir);
}

/* ---- evidence lines, LLM answers, picks ---------------------------------------------- */

static void test_evidence_summary(void **state)
{
    char buf[600];
    cJSON *j;

    (void)state;
    j = cJSON_Parse("{\"unit\": \"s\", \"count\": 1, \"value\": 0.85}");
    assert_string_equal(ob_dx_evidence_summary(j, buf, sizeof(buf)), "850 ms");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"unit\": \"ratio\", \"count\": 3, \"value\": 0.9, \"min\": 0.5, \"max\": "
                    "0.95}");
    assert_string_equal(ob_dx_evidence_summary(j, buf, sizeof(buf)),
                        "max 95%, min 50% over 3 series");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"unit\": \"ratio\", \"count\": 0}");
    assert_string_equal(ob_dx_evidence_summary(j, buf, sizeof(buf)), "no data");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"replicas\": 3, \"ready\": 2, \"revision\": 42, \"last_rollout_age_s\": "
                    "600, \"restarts_max\": 7, \"crashloop\": 1}");
    assert_string_equal(ob_dx_evidence_summary(j, buf, sizeof(buf)),
                        "2/3 ready · revision 42 · rolled out 10m ago · restarts max 7 · 1 in "
                        "CrashLoopBackOff");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"lines\": 4, \"sample\": [\"ERROR timeout after 5000ms (id 1)\", \"ERROR "
                    "timeout after 5000ms (id 22)\", \"ERROR db down\", \"ERROR timeout after "
                    "5000ms (id 3)\"]}");
    ob_dx_evidence_summary(j, buf, sizeof(buf));
    assert_string_equal(buf, "4 lines\n3× ERROR timeout after 5000ms (id 1)\n1× ERROR db down");
    cJSON_Delete(j);
    assert_null(ob_dx_evidence_summary(NULL, buf, sizeof(buf)));
}

static void test_llm_read(void **state)
{
    struct shipped s;
    struct ob_dx_result r;
    struct ob_dx_llm_answer a;
    cJSON *fx = fixture("bad_rollout");
    struct ob_dx_input in = {.service = "checkout", .env = "prod"};
    char big[2000], args[2200];
    char *prompt;

    (void)state;
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(fx, "evidence"), "cpu"),
                              "max", cJSON_CreateNumber(0.96));
    in.evidence = cJSON_GetObjectItem(fx, "evidence");
    load_shipped(&s, shipped_yaml);
    assert_int_equal(ob_diagnose_analyse(s.dg, s.cat, &in, &r), 0);
    assert_int_equal(r.n, 2);

    assert_int_equal(
        ob_dx_llm_read("diagnosis", "{\"narrative\": \"n\", \"ranking\": [2, 1]}", &r, &a), 0);
    assert_int_equal(a.norder, 2);
    assert_int_equal(a.order[0], 1);
    assert_int_equal(a.order[1], 0);
    assert_string_equal(a.narrative, "n");
    assert_string_equal(a.ignored, "");
    /* by text and by object; the rest keep their order */
    assert_int_equal(
        ob_dx_llm_read("diagnosis",
                       "{\"ranking\": [\"scale service=checkout env=prod replicas=6\"]}", &r, &a),
        0);
    assert_int_equal(a.norder, 2);
    assert_int_equal(a.order[0], 1);
    assert_int_equal(ob_dx_llm_read("diagnosis",
                                    "{\"ranking\": [{\"action\": \"rollback\", \"params\": "
                                    "{\"revision\": 41}}]}",
                                    &r, &a),
                     0);
    assert_int_equal(a.order[0], 0);
    /* outside the rules' set: the whole ranking is ignored, and says which */
    assert_int_equal(ob_dx_llm_read("diagnosis",
                                    "{\"narrative\": \"scale it\", \"ranking\": [{\"action\": "
                                    "\"scale\", \"params\": {\"replicas\": 40}}, 1]}",
                                    &r, &a),
                     0);
    assert_int_equal(a.norder, 0);
    assert_non_null(strstr(a.ignored, "scale replicas=40, which the rules did not propose"));
    assert_int_equal(ob_dx_llm_read("diagnosis", "{\"ranking\": [\"restart\"]}", &r, &a), 0);
    assert_int_equal(a.norder, 0);
    assert_int_equal(ob_dx_llm_read("diagnosis", "{\"ranking\": [3]}", &r, &a), 0);
    assert_int_equal(a.norder, 0);
    /* a catalog tool instead of the diagnosis tool, or junk */
    assert_int_equal(ob_dx_llm_read("restart", "{\"service\": \"checkout\"}", &r, &a), OB_EPARSE);
    assert_non_null(strstr(a.ignored, "'restart'"));
    assert_int_equal(ob_dx_llm_read("diagnosis", "not json", &r, &a), OB_EPARSE);
    /* the narrative is capped and kept on one line */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[10] = '\n';
    snprintf(args, sizeof(args), "{\"narrative\": \"%s\"}", big);
    assert_int_equal(ob_dx_llm_read("diagnosis", args, &r, &a), 0);
    assert_int_equal(strlen(a.narrative), OB_DX_NARRATIVE_MAX);
    assert_null(strchr(a.narrative, '\n'));
    /* the prompt: numbered proposals, evidence cut to the budget */
    memset(big, 'e', sizeof(big) - 1);
    prompt = ob_dx_llm_prompt("checkout", "prod", "slow", big, &r, 900);
    assert_non_null(prompt);
    assert_non_null(strstr(prompt, "1. rollback service=checkout env=prod revision=41"));
    assert_non_null(strstr(prompt, "2. scale service=checkout env=prod replicas=6"));
    assert_true(strlen(prompt) < 900 + 900);
    free(prompt);
    ob_dx_result_release(&r);
    free_shipped(&s);
    cJSON_Delete(fx);
}

static void test_pick_numbers(void **state)
{
    (void)state;
    assert_int_equal(ob_dx_pick_number("one"), 1);
    assert_int_equal(ob_dx_pick_number(":two:"), 2);
    assert_int_equal(ob_dx_pick_number("three"), 3);
    assert_int_equal(ob_dx_pick_number("1\xef\xb8\x8f\xe2\x83\xa3"), 1);
    assert_int_equal(ob_dx_pick_number("2\xe2\x83\xa3"), 2);
    assert_int_equal(ob_dx_pick_number("keycap_3"), 3);
    assert_int_equal(ob_dx_pick_number("pick:2"), 2);
    assert_int_equal(ob_dx_pick_number("3"), 3);
    assert_int_equal(ob_dx_pick_number("four"), 0);
    assert_int_equal(ob_dx_pick_number("onex"), 0);
    assert_int_equal(ob_dx_pick_number("white_check_mark"), 0);
    assert_int_equal(ob_dx_pick_number(""), 0);
    assert_int_equal(ob_dx_pick_number(NULL), 0);
}

static void test_intent_rules(void **state)
{
    static const struct {
        const char *text, *action, *symptom;
    } cases[] = {
        {"checkout in prod is slow", "diagnose", "slow"},
        {"payments keeps throwing 500s in production", "diagnose", "errors"},
        {"search on staging is timing out", "diagnose", "timeouts"},
        {"why is cart so slow in prod?", "diagnose", "slow"},
        {"what's wrong with cart in prod", "diagnose", "unknown"},
        {"inventory in staging is OOMing", "diagnose", "oom"},
        {"the checkout service in prod keeps crashing", "diagnose", "crash"},
        /* not a diagnosis: the other actions keep their phrasings */
        {"checkout in prod is slow, restart it", "restart", NULL},
        {"roll back payments on staging, it keeps throwing 500s", "rollback", NULL},
        {"is inventory throwing 5xx in prod? show the error rate", "metrics", NULL},
        {"is checkout down in prod?", "status", NULL},
        {"errors from payments in the last 15 minutes on staging", "logs", NULL},
    };
    struct shipped s;

    (void)state;
    load_shipped(&s, shipped_yaml);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ob_parse_result *res = calloc(1, sizeof(*res));

        ob_intent_parse(s.cat, cases[i].text, res);
        if (res->status != OB_PARSE_OK && res->status != OB_PARSE_ASK)
            fail_msg("'%s': status %d (%s)", cases[i].text, res->status, res->message);
        if (strcmp(res->proposals[0].action->name, cases[i].action))
            fail_msg("'%s': %s, not %s", cases[i].text, res->proposals[0].action->name,
                     cases[i].action);
        if (cases[i].symptom)
            assert_string_equal(ob_proposal_get(&res->proposals[0], "symptom"), cases[i].symptom);
        free(res);
    }
    free_shipped(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bm25_ranking),
        cmocka_unit_test(test_bm25_idf),
        cmocka_unit_test(test_passage),
        cmocka_unit_test(test_runbooks_dir),
        cmocka_unit_test(test_expr),
        cmocka_unit_test(test_shipped_playbook),
        cmocka_unit_test(test_max_proposals),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_evidence_summary),
        cmocka_unit_test(test_llm_read),
        cmocka_unit_test(test_pick_numbers),
        cmocka_unit_test(test_intent_rules),
    };

    ob_log_set_level(OB_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
