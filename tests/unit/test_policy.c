/* Policy engine: loading, checks, decisions, freezes, rate limits, groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/policy.h"
#include "opsbot/util.h"

/* 2026-11-27 00:00:00 UTC, a Friday. */
#define FRI_MIDNIGHT_S 1795737600LL

static int64_t at(int day_offset, int hh, int mm)
{
    return (FRI_MIDNIGHT_S + (int64_t)day_offset * 86400 + hh * 3600 + mm * 60) * 1000;
}

/* ---- a small catalog built by hand -------------------------------------- */

static char *sdup(const char *s)
{
    return ob_xstrdup(s);
}

static void env_param(struct ob_param_def *p)
{
    memset(p, 0, sizeof(*p));
    p->name = sdup("env");
    p->type = OB_PARAM_ENUM;
    p->values = calloc(3, sizeof(char *));
    p->values[0] = sdup("prod");
    p->values[1] = sdup("staging");
    p->values[2] = sdup("dev");
    p->nvalues = 3;
    p->alias_from = calloc(1, sizeof(char *));
    p->alias_to = calloc(1, sizeof(char *));
    p->alias_from[0] = sdup("production");
    p->alias_to[0] = sdup("prod");
    p->naliases = 1;
    p->required = true;
}

static void add_action(struct ob_catalog *cat, const char *name, enum ob_risk risk, bool with_env,
                       bool with_replicas)
{
    struct ob_action *a = &cat->actions[cat->n++];

    memset(a, 0, sizeof(*a));
    a->name = sdup(name);
    a->description = sdup(name);
    a->risk = risk;
    a->params = calloc(2, sizeof(*a->params));
    if (with_env)
        env_param(&a->params[a->nparams++]);
    if (with_replicas) {
        struct ob_param_def *p = &a->params[a->nparams++];

        p->name = sdup("replicas");
        p->type = OB_PARAM_INT;
        p->min = 1;
        p->max = 50;
        p->has_min = p->has_max = true;
    }
    a->where = sdup("<test>");
}

static struct ob_catalog *make_catalog(void)
{
    struct ob_catalog *cat = calloc(1, sizeof(*cat));

    cat->actions = calloc(8, sizeof(*cat->actions));
    add_action(cat, "logs", OB_RISK_READ, true, false);
    add_action(cat, "metrics", OB_RISK_READ, true, false);
    add_action(cat, "status", OB_RISK_READ, false, false);
    add_action(cat, "help", OB_RISK_READ, false, false);
    add_action(cat, "restart", OB_RISK_CHANGE, true, false);
    add_action(cat, "rollback", OB_RISK_CHANGE, true, false);
    add_action(cat, "scale", OB_RISK_CHANGE, true, true);
    return cat;
}

static void free_catalog(struct ob_catalog *cat)
{
    for (size_t i = 0; i < cat->n; i++) {
        struct ob_action *a = &cat->actions[i];

        for (size_t j = 0; j < a->nparams; j++) {
            struct ob_param_def *p = &a->params[j];

            free(p->name);
            for (size_t k = 0; k < p->nvalues; k++)
                free(p->values[k]);
            free(p->values);
            for (size_t k = 0; k < p->naliases; k++) {
                free(p->alias_from[k]);
                free(p->alias_to[k]);
            }
            free(p->alias_from);
            free(p->alias_to);
        }
        free(a->params);
        free(a->name);
        free(a->description);
        free(a->where);
    }
    free(cat->actions);
    free(cat);
}

/* ---- helpers -------------------------------------------------------------- */

static const char base_policy[] =
    "{"
    " \"groups\": {"
    "  \"engineers\": [\"console:dev\", \"console:oncall\", \"slack:U024BE7LH\"],"
    "  \"oncall\": [\"console:oncall\", \"group:sre-leads\"],"
    "  \"sre-leads\": [\"slack:ULEAD1\", \"slack:ULEAD2\"],"
    "  \"viewers\": [\"console:viewer\"]"
    " },"
    " \"rules\": ["
    "  {\"name\": \"reads\", \"action\": [\"logs\", \"metrics\", \"status\", \"help\"],"
    "   \"effect\": \"allow\"},"
    "  {\"name\": \"no-viewers-writes\", \"group\": \"viewers\", \"effect\": \"deny\","
    "   \"reason\": \"viewers may only read\"},"
    "  {\"name\": \"prod-changes-need-oncall\", \"group\": [\"engineers\"],"
    "   \"action\": [\"restart\", \"rollback\", \"scale\"], \"params\": {\"env\": \"prod\"},"
    "   \"effect\": \"approve\", \"approvers\": \"oncall\", \"count\": 2, \"ttl\": \"30m\"},"
    "  {\"name\": \"staging-direct\", \"group\": \"engineers\","
    "   \"params\": {\"env\": [\"staging\", \"dev\"]}, \"effect\": \"allow\"}"
    " ]"
    "}";

static struct ob_policy *load(const char *json, const struct ob_catalog *cat)
{
    struct ob_policy *p = NULL;
    struct ob_diag d;
    cJSON *doc = cJSON_Parse(json);
    int rc;

    assert_non_null(doc);
    ob_diag_init(&d);
    rc = ob_policy_add_json(&p, NULL, cat, doc, &d);
    if (rc != 0)
        ob_diag_print(&d, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    ob_diag_release(&d);
    cJSON_Delete(doc);
    return p;
}

/* Loads json expecting OB_ECONFIG; returns all diagnostic lines joined. */
static char *load_fail(const char *json, const struct ob_catalog *cat)
{
    struct ob_policy *p = NULL;
    struct ob_diag d;
    cJSON *doc = cJSON_Parse(json);
    char *all = calloc(1, 8192);
    int rc;

    assert_non_null(doc);
    ob_diag_init(&d);
    rc = ob_policy_add_json(&p, NULL, cat, doc, &d);
    assert_int_equal(rc, OB_ECONFIG);
    assert_true(d.n > 0);
    for (size_t i = 0; i < d.n; i++) {
        strncat(all, d.lines[i] ? d.lines[i] : "(null)", 8192 - strlen(all) - 2);
        strcat(all, "\n");
    }
    ob_diag_release(&d);
    ob_policy_free(p);
    cJSON_Delete(doc);
    return all;
}

static void expect_error(const char *json, const struct ob_catalog *cat, const char *needle1,
                         const char *needle2)
{
    char *all = load_fail(json, cat);

    if (!strstr(all, needle1) || (needle2 && !strstr(all, needle2)))
        fail_msg("expected '%s' / '%s' in:\n%s", needle1, needle2 ? needle2 : "", all);
    free(all);
}

static void decide(const struct ob_policy *p, const char *user, const char *action, const char *env,
                   bool is_read, int64_t now, struct ob_decision *out)
{
    struct ob_kv kv[2];
    struct ob_policy_request req = {.user = user,
                                    .action = action,
                                    .params = kv,
                                    .nparams = 0,
                                    .is_read = is_read,
                                    .now_ms = now};

    memset(kv, 0, sizeof(kv));
    ob_strlcpy(kv[0].name, "service", sizeof(kv[0].name));
    ob_strlcpy(kv[0].value, "checkout", sizeof(kv[0].value));
    req.nparams = 1;
    if (env) {
        ob_strlcpy(kv[1].name, "env", sizeof(kv[1].name));
        ob_strlcpy(kv[1].value, env, sizeof(kv[1].value));
        req.nparams = 2;
    }
    ob_policy_decide(p, &req, NULL, NULL, out);
}

/* ---- decisions ---------------------------------------------------------- */

static void test_first_match_and_default_deny(void **state)
{
    struct ob_policy *p = load(base_policy, NULL);
    struct ob_decision dec;
    int64_t now = at(1, 10, 0);

    (void)state;
    /* Reads: first rule, for anyone, even viewers and strangers. */
    decide(p, "console:viewer", "logs", "prod", true, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    assert_string_equal(dec.rule, "reads");
    assert_string_equal(dec.where, "<input>");
    assert_string_equal(dec.reason, "allowed by rule reads");
    /* Viewers: the deny rule comes before staging-direct would ever match. */
    decide(p, "console:viewer", "restart", "staging", false, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "no-viewers-writes");
    assert_string_equal(dec.reason, "viewers may only read");
    /* Engineers in prod: approve with its settings. */
    decide(p, "console:dev", "restart", "prod", false, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_APPROVE);
    assert_string_equal(dec.rule, "prod-changes-need-oncall");
    assert_string_equal(dec.approvers, "oncall");
    assert_int_equal(dec.count, 2);
    assert_false(dec.allow_self);
    assert_int_equal(dec.ttl_ms, 30 * 60 * 1000);
    assert_non_null(strstr(dec.reason, "oncall"));
    /* Engineers in staging: the later allow. */
    decide(p, "slack:U024BE7LH", "scale", "staging", false, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    assert_string_equal(dec.rule, "staging-direct");
    /* Nothing matches: default deny with the action and user named. */
    decide(p, "console:stranger", "restart", "staging", false, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "default-deny");
    assert_string_equal(dec.where, "");
    assert_string_equal(dec.reason, "no rule allows restart for console:stranger");
    /* Engineer without env: neither param rule matches. */
    decide(p, "console:dev", "restart", NULL, false, now, &dec);
    assert_string_equal(dec.rule, "default-deny");
    /* No policy at all. */
    decide(NULL, "console:dev", "logs", NULL, true, now, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "default-deny");
    ob_policy_free(p);
}

static void test_effect_defaults(void **state)
{
    struct ob_policy *p = load("{\"groups\": {\"a\": [\"console:a\", \"console:b\"]}, \"rules\": ["
                               " {\"name\": \"d\", \"action\": \"restart\", \"effect\": \"deny\"},"
                               " {\"name\": \"ap\", \"effect\": \"approve\", \"approvers\": \"a\","
                               "  \"allow_self\": true}]}",
                               NULL);
    struct ob_decision dec;

    (void)state;
    decide(p, "console:a", "restart", NULL, false, 0, &dec);
    assert_string_equal(dec.rule, "d");
    assert_string_equal(dec.reason, "denied by rule d");
    decide(p, "console:a", "scale", NULL, false, 0, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_APPROVE);
    assert_int_equal(dec.count, 1);
    assert_true(dec.allow_self);
    assert_int_equal(dec.ttl_ms, 60 * 60 * 1000);
    assert_string_equal(ob_effect_name(OB_EFFECT_ALLOW), "allow");
    assert_string_equal(ob_effect_name(OB_EFFECT_DENY), "deny");
    assert_string_equal(ob_effect_name(OB_EFFECT_APPROVE), "approve");
    ob_policy_free(p);
}

static void test_match_keys(void **state)
{
    struct ob_policy *p =
        load("{\"groups\": {\"g\": [\"slack:U1\"]}, \"rules\": ["
             " {\"name\": \"by-user\", \"user\": [\"console:alice\"], \"effect\": \"allow\"},"
             " {\"name\": \"by-group\", \"group\": \"g\", \"effect\": \"allow\"},"
             " {\"name\": \"by-platform\", \"platform\": \"discord\", \"effect\": \"allow\"},"
             " {\"name\": \"by-channel\", \"channel\": [\"C-OPS\", \"teams:T-OPS\"],"
             "  \"effect\": \"allow\"},"
             " {\"name\": \"by-action\", \"action\": \"status\", \"effect\": \"allow\"}"
             "]}",
             NULL);
    struct ob_decision dec;
    struct ob_policy_request req = {
        .user = "console:alice", .platform = "console", .action = "restart"};

    (void)state;
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-user");
    req.user = "console:bob";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "default-deny");
    req.user = "slack:U1";
    req.platform = "slack";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-group");
    req.user = "discord:42";
    req.platform = "discord";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-platform");
    /* Platform derived from the user id when not given. */
    req.platform = NULL;
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-platform");
    req.user = "slack:U2";
    req.platform = "slack";
    req.channel = "C-OPS";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-channel");
    req.channel = "C-OTHER";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "default-deny");
    req.channel = NULL;
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "default-deny");
    /* Qualified channel ids match only on their platform. */
    req.channel = "T-OPS";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "default-deny");
    req.user = "teams:x";
    req.platform = "teams";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-channel");
    req.channel = NULL;
    req.action = "status";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "by-action");
    ob_policy_free(p);
}

static void test_params_lists_and_any(void **state)
{
    struct ob_catalog *cat = make_catalog();
    struct ob_policy *p =
        load("{\"rules\": ["
             " {\"name\": \"prod\", \"action\": \"restart\", \"params\": {\"env\": \"production\"},"
             "  \"effect\": \"deny\"},"
             " {\"name\": \"big\", \"action\": \"scale\", \"params\": {\"replicas\": [20, 30]},"
             "  \"effect\": \"deny\"},"
             " {\"name\": \"some-env\", \"action\": [\"restart\", \"scale\"],"
             "  \"params\": {\"env\": \"*\"}, \"effect\": \"allow\"}"
             "]}",
             cat);
    struct ob_kv kv[2] = {{"env", "prod"}, {"replicas", "20"}};
    struct ob_policy_request req = {
        .user = "console:a", .action = "restart", .params = kv, .nparams = 1};
    struct ob_decision dec;

    (void)state;
    /* "production" in the policy was normalised to "prod". */
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "prod");
    ob_strlcpy(kv[0].value, "staging", sizeof(kv[0].value));
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "some-env");
    /* Number values in lists. */
    req.action = "scale";
    req.nparams = 2;
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "big");
    ob_strlcpy(kv[1].value, "21", sizeof(kv[1].value));
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "some-env");
    /* "*" needs the parameter to be present. */
    req.params = &kv[1];
    req.nparams = 1;
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "default-deny");
    ob_policy_free(p);

    /* Values the catalog rejects, parameters no action has, unknown actions. */
    expect_error("{\"rules\": [{\"name\": \"x\", \"action\": \"restart\","
                 " \"params\": {\"env\": \"prodd\"}, \"effect\": \"allow\"}]}",
                 cat, "params.env", "prodd");
    expect_error("{\"rules\": [{\"name\": \"x\", \"action\": \"restart\","
                 " \"params\": {\"replicas\": 3}, \"effect\": \"allow\"}]}",
                 cat, "params.replicas", "no action of this rule has a parameter 'replicas'");
    expect_error("{\"rules\": [{\"name\": \"x\", \"params\": {\"colour\": \"red\"},"
                 " \"effect\": \"allow\"}]}",
                 cat, "params.colour", "in the catalog");
    expect_error("{\"rules\": [{\"name\": \"x\", \"action\": [\"restart\", \"reboot\"],"
                 " \"effect\": \"allow\"}]}",
                 cat, "action", "unknown action 'reboot'");
    expect_error("{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"11:00\","
                 " \"except\": [\"nap\"]}]}",
                 cat, "except", "unknown action 'nap'");
    expect_error("{\"rate_limits\": [{\"name\": \"l\", \"action\": \"nap\", \"max\": 1,"
                 " \"per\": \"1h\"}]}",
                 cat, "action", "unknown action 'nap'");
    expect_error("{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"11:00\","
                 " \"env\": \"moon\"}]}",
                 cat, "env", "moon");
    free_catalog(cat);
}

/* ---- freeze windows ------------------------------------------------------ */

static void test_freeze(void **state)
{
    struct ob_policy *p =
        load("{\"freeze\": ["
             "  {\"name\": \"friday-evening\", \"days\": [\"fri\"], \"from\": \"16:00\","
             "   \"to\": \"23:59\", \"except\": [\"rollback\"], \"reason\": \"no changes\"},"
             "  {\"name\": \"weekend-night\", \"days\": \"sat-sun\", \"from\": \"22:00\","
             "   \"to\": \"06:00\", \"env\": [\"prod\"]}"
             " ],"
             " \"rules\": [{\"name\": \"all\", \"effect\": \"allow\"}]}",
             NULL);
    struct ob_decision dec;

    (void)state;
    /* Friday 17:00: inside; the reason says until when. */
    decide(p, "console:dev", "restart", "staging", false, at(0, 17, 0), &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "freeze:friday-evening");
    assert_string_equal(dec.where, "<input>");
    assert_string_equal(
        dec.reason, "change freeze 'friday-evening' until sat 2026-11-28 00:00 UTC: no changes");
    /* Boundaries: 16:00 is in, 15:59 and Saturday 00:00 are out. */
    decide(p, "console:dev", "restart", "staging", false, at(0, 16, 0), &dec);
    assert_string_equal(dec.rule, "freeze:friday-evening");
    decide(p, "console:dev", "restart", "staging", false, at(0, 15, 59), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", "staging", false, at(0, 23, 59) + 59000, &dec);
    assert_string_equal(dec.rule, "freeze:friday-evening");
    decide(p, "console:dev", "restart", "staging", false, at(1, 0, 0), &dec);
    assert_string_equal(dec.rule, "all");
    /* Thursday and the next Friday. */
    decide(p, "console:dev", "restart", "staging", false, at(-1, 17, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", "staging", false, at(7, 17, 0), &dec);
    assert_string_equal(dec.rule, "freeze:friday-evening");
    /* Exempted action, and reads are always exempt. */
    decide(p, "console:dev", "rollback", "staging", false, at(0, 17, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "logs", "staging", true, at(0, 17, 0), &dec);
    assert_string_equal(dec.rule, "all");

    /* Wrap past midnight, with an env filter. Saturday 23:00 (started Sat). */
    decide(p, "console:dev", "restart", "prod", false, at(1, 23, 0), &dec);
    assert_string_equal(dec.rule, "freeze:weekend-night");
    assert_non_null(strstr(dec.reason, "until sun 2026-11-29 06:00 UTC"));
    /* Sunday 03:00 (started Saturday), Monday 05:59 (started Sunday). */
    decide(p, "console:dev", "restart", "prod", false, at(2, 3, 0), &dec);
    assert_string_equal(dec.rule, "freeze:weekend-night");
    decide(p, "console:dev", "restart", "prod", false, at(3, 5, 59), &dec);
    assert_string_equal(dec.rule, "freeze:weekend-night");
    assert_non_null(strstr(dec.reason, "until mon 2026-11-30 06:00 UTC"));
    /* Monday 06:00, Monday 23:00 and Saturday 03:00 (Friday night) are out. */
    decide(p, "console:dev", "restart", "prod", false, at(3, 6, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", "prod", false, at(3, 23, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", "prod", false, at(1, 3, 0), &dec);
    assert_string_equal(dec.rule, "all");
    /* Env filter: staging and no env at all are not frozen. */
    decide(p, "console:dev", "restart", "staging", false, at(1, 23, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", NULL, false, at(1, 23, 0), &dec);
    assert_string_equal(dec.rule, "all");
    ob_policy_free(p);

    /* Days default to every day; 24:00 ends the day. */
    p = load("{\"freeze\": [{\"name\": \"mornings\", \"from\": \"00:00\", \"to\": \"09:00\"},"
             " {\"name\": \"late\", \"from\": \"22:00\", \"to\": \"24:00\"}],"
             " \"rules\": [{\"name\": \"all\", \"effect\": \"allow\"}]}",
             NULL);
    decide(p, "console:dev", "restart", NULL, false, at(4, 8, 59), &dec);
    assert_string_equal(dec.rule, "freeze:mornings");
    assert_string_equal(dec.reason, "change freeze 'mornings' until tue 2026-12-01 09:00 UTC");
    decide(p, "console:dev", "restart", NULL, false, at(4, 9, 0), &dec);
    assert_string_equal(dec.rule, "all");
    decide(p, "console:dev", "restart", NULL, false, at(4, 23, 59), &dec);
    assert_string_equal(dec.rule, "freeze:late");
    ob_policy_free(p);
}

/* ---- rate limits ---------------------------------------------------------- */

struct counter {
    int value;
    int calls;
    char user[64], action[64];
    int64_t since;
};

static int count_cb(void *data, const char *user, const char *action, int64_t since_ms)
{
    struct counter *c = data;

    c->calls++;
    ob_strlcpy(c->user, user, sizeof(c->user));
    ob_strlcpy(c->action, action, sizeof(c->action));
    c->since = since_ms;
    return c->value;
}

static void test_rate_limit(void **state)
{
    struct ob_policy *p =
        load("{\"groups\": {\"ops\": [\"console:a\"]},"
             " \"rate_limits\": [{\"name\": \"restarts-per-user\", \"action\": [\"restart\","
             "  \"rollback\"], \"max\": 5, \"per\": \"1h\"}],"
             " \"rules\": [{\"name\": \"no-scale\", \"action\": \"scale\", \"effect\": \"deny\"},"
             "  {\"name\": \"ap\", \"action\": \"rollback\", \"effect\": \"approve\","
             "   \"approvers\": \"ops\"},"
             "  {\"name\": \"all\", \"effect\": \"allow\"}]}",
             NULL);
    struct ob_policy_request req = {
        .user = "console:a", .action = "restart", .now_ms = at(0, 12, 0)};
    struct counter c = {.value = 4};
    struct ob_decision dec;

    (void)state;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    assert_int_equal(c.calls, 1);
    assert_string_equal(c.user, "console:a");
    assert_string_equal(c.action, "restart");
    assert_int_equal(c.since, at(0, 11, 0));
    c.value = 5;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "rate-limit:restarts-per-user");
    assert_string_equal(dec.where, "<input>");
    assert_string_equal(dec.reason, "5 restart requests in the last 1h (limit 5)");
    /* Approve decisions are limited too, and lose their approval fields. */
    req.action = "rollback";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "rate-limit:restarts-per-user");
    assert_string_equal(dec.approvers, "");
    c.value = 0;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_APPROVE);
    assert_string_equal(dec.approvers, "ops");
    /* Callback failure denies. */
    c.value = OB_ESTORE;
    req.action = "restart";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "rate-limit:restarts-per-user");
    assert_non_null(strstr(dec.reason, "rate-limit check failed"));
    /* Actions not covered, deny rules and a NULL callback never count. */
    c.calls = 0;
    req.action = "status";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    req.action = "scale";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "no-scale");
    assert_int_equal(c.calls, 0);
    req.action = "restart";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    ob_policy_free(p);

    /* "*" covers every action. */
    p = load("{\"rate_limits\": [{\"name\": \"any\", \"action\": \"*\", \"max\": 20,"
             " \"per\": \"24h\"}], \"rules\": [{\"name\": \"all\", \"effect\": \"allow\"}]}",
             NULL);
    c.value = 20;
    req.action = "status";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "rate-limit:any");
    assert_string_equal(dec.reason, "20 status requests in the last 1d (limit 20)");
    ob_policy_free(p);
}

/* ---- groups ------------------------------------------------------------ */

static void test_groups(void **state)
{
    struct ob_policy *p = load("{\"groups\": {"
                               "  \"all\": [\"group:eng\", \"group:oncall\", \"console:boss\"],"
                               "  \"eng\": [\"console:dev\", \"group:oncall\"],"
                               "  \"oncall\": [\"console:oncall\", \"console:dev\"]"
                               " }}",
                               NULL);
    char buf[256], tiny[20];
    size_t g, r, f, l;

    (void)state;
    assert_true(ob_policy_in_group(p, "all", "console:oncall"));
    assert_true(ob_policy_in_group(p, "group:all", "console:oncall"));
    assert_true(ob_policy_in_group(p, "eng", "console:oncall"));
    assert_true(ob_policy_in_group(p, "all", "console:boss"));
    assert_false(ob_policy_in_group(p, "eng", "console:boss"));
    assert_false(ob_policy_in_group(p, "nope", "console:dev"));
    assert_false(ob_policy_in_group(p, "all", NULL));
    assert_false(ob_policy_in_group(NULL, "all", "console:dev"));
    /* Flattened, each member once. */
    assert_string_equal(ob_policy_group_members(p, "all", buf, sizeof(buf)),
                        "console:dev, console:oncall, console:boss");
    assert_string_equal(ob_policy_group_members(p, "oncall", buf, sizeof(buf)),
                        "console:oncall, console:dev");
    assert_string_equal(ob_policy_group_members(p, "nope", buf, sizeof(buf)), "");
    ob_policy_group_members(p, "all", tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
    assert_non_null(strstr(tiny, "..."));
    ob_policy_stats(p, &g, &r, &f, &l);
    assert_int_equal(g, 3);
    assert_int_equal(r, 0);
    assert_int_equal(f, 0);
    assert_int_equal(l, 0);
    ob_policy_free(p);

    expect_error("{\"groups\": {\"a\": [\"group:b\"], \"b\": [\"group:c\"],"
                 " \"c\": [\"group:a\"]}}",
                 NULL, "groups", "cycle");
    expect_error("{\"groups\": {\"a\": [\"group:a\"]}}", NULL, "groups", "includes itself");
    expect_error("{\"groups\": {\"a\": [\"group:zz\"]}}", NULL, "groups", "unknown group 'zz'");
    expect_error("{\"groups\": {\"a\": [\"dev\"]}}", NULL, "groups.a", "platform:id");
}

/* ---- load errors --------------------------------------------------------- */

static void test_load_errors(void **state)
{
    static const struct {
        const char *json, *n1, *n2;
    } cases[] = {
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"allow\", \"colour\": 1}]}", "colour", NULL},
        {"{\"rulez\": []}", "rulez", NULL},
        {"[1, 2]", "policy", "mapping"},
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"permit\"}]}", "effect", "permit"},
        {"{\"rules\": [{\"name\": \"x\"}]}", "effect", NULL},
        {"{\"rules\": [{\"effect\": \"allow\"}]}", "name", NULL},
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"approve\"}]}", "approvers", NULL},
        {"{\"rules\": [{\"name\": \"x\", \"group\": \"ghosts\", \"effect\": \"allow\"}]}", "group",
         "unknown group 'ghosts'"},
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"approve\", \"approvers\": \"ghosts\"}]}",
         "approvers", "unknown group 'ghosts'"},
        {"{\"groups\": {\"a\": [\"console:a\"]}, \"rules\": [{\"name\": \"x\","
         " \"effect\": \"approve\", \"approvers\": \"a\", \"count\": 2}]}",
         "count", "has 1 member"},
        {"{\"groups\": {\"a\": [\"console:a\"]}, \"rules\": [{\"name\": \"x\","
         " \"effect\": \"approve\", \"approvers\": \"a\", \"count\": 0}]}",
         "count", NULL},
        {"{\"groups\": {\"a\": [\"console:a\"]}, \"rules\": [{\"name\": \"x\","
         " \"effect\": \"approve\", \"approvers\": \"a\", \"ttl\": \"soon\"}]}",
         "ttl", NULL},
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"allow\", \"count\": 2}]}", "count",
         "only used with effect: approve"},
        {"{\"rules\": [{\"name\": \"x\", \"effect\": \"allow\"},"
         " {\"name\": \"x\", \"effect\": \"deny\"}]}",
         "name", "duplicate rule name 'x'"},
        {"{\"rules\": [{\"name\": \"x\", \"user\": \"dev\", \"effect\": \"allow\"}]}", "user",
         "platform:id"},
        {"{\"rules\": [{\"name\": \"x\", \"user\": [], \"effect\": \"allow\"}]}", "user",
         "empty list"},
        {"{\"rules\": [{\"name\": \"x\", \"action\": [1], \"effect\": \"allow\"}]}", "action",
         "string"},
        {"{\"rules\": [{\"name\": \"x\", \"params\": [\"env\"], \"effect\": \"allow\"}]}", "params",
         "mapping"},
        {"{\"rules\": [{\"name\": \"x\", \"params\": {\"env\": {}}, \"effect\": \"allow\"}]}",
         "params.env", "scalars"},
        {"{\"rules\": {\"name\": \"x\"}}", "rules", "list"},
        {"{\"groups\": [\"a\"]}", "groups", "mapping"},
        {"{\"groups\": {\"bad name\": [\"console:a\"]}}", "groups", "bad group name"},
        {"{\"freeze\": [{\"name\": \"f\", \"days\": [\"fry\"], \"from\": \"10:00\","
         " \"to\": \"11:00\"}]}",
         "days", "fry"},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": \"25:00\", \"to\": \"11:00\"}]}", "from",
         "25:00"},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"1100\"}]}", "to", "HH:MM"},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": 600, \"to\": \"11:00\"}]}", "from", NULL},
        {"{\"freeze\": [{\"name\": \"f\", \"to\": \"11:00\"}]}", "from", "missing"},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"10:00\"}]}", "to",
         "equal"},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"11:00\","
         " \"when\": 1}]}",
         "when", NULL},
        {"{\"freeze\": [{\"name\": \"f\", \"from\": \"10:00\", \"to\": \"11:00\"},"
         " {\"name\": \"f\", \"from\": \"12:00\", \"to\": \"13:00\"}]}",
         "name", "duplicate freeze"},
        {"{\"rate_limits\": [{\"name\": \"l\", \"max\": 0, \"per\": \"1h\"}]}", "max", NULL},
        {"{\"rate_limits\": [{\"name\": \"l\", \"max\": 3}]}", "per", NULL},
        {"{\"rate_limits\": [{\"name\": \"l\", \"max\": 3, \"per\": \"1h\", \"burst\": 2}]}",
         "burst", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *all = load_fail(cases[i].json, NULL);

        if (!strstr(all, cases[i].n1) || (cases[i].n2 && !strstr(all, cases[i].n2)))
            fail_msg("case %zu: expected '%s' / '%s' in:\n%s", i, cases[i].n1,
                     cases[i].n2 ? cases[i].n2 : "", all);
        /* Every line names its location. */
        assert_non_null(strstr(all, "<input>: "));
        free(all);
    }
}

/* Documents added one after the other: groups are shared, rules keep their
 * order, and a failing document leaves the policy as it was. */
static void test_multi_document(void **state)
{
    struct ob_policy *p = NULL;
    struct ob_diag d;
    cJSON *a = cJSON_Parse("{\"groups\": {\"eng\": [\"console:dev\"]},"
                           " \"rules\": [{\"name\": \"first\", \"group\": \"eng\","
                           "  \"action\": \"restart\", \"effect\": \"deny\"}]}");
    cJSON *b = cJSON_Parse("{\"rules\": [{\"name\": \"second\", \"group\": \"eng\","
                           "  \"effect\": \"allow\"}]}");
    cJSON *bad = cJSON_Parse("{\"groups\": {\"ops\": [\"console:op\"]},"
                             " \"rules\": [{\"name\": \"third\", \"group\": \"nobody\","
                             "  \"effect\": \"allow\"}, {\"name\": \"first\","
                             "  \"effect\": \"allow\"}]}");
    struct ob_decision dec;
    size_t g, r, f, l;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(ob_policy_add_json(&p, NULL, NULL, a, &d), 0);
    assert_int_equal(ob_policy_add_json(&p, NULL, NULL, b, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(ob_policy_add_json(&p, NULL, NULL, bad, &d), OB_ECONFIG);
    assert_int_equal(d.n, 2); /* unknown group, duplicate name */
    ob_policy_stats(p, &g, &r, &f, &l);
    assert_int_equal(g, 1);
    assert_int_equal(r, 2);
    assert_false(ob_policy_in_group(p, "ops", "console:op"));
    decide(p, "console:dev", "restart", NULL, false, 0, &dec);
    assert_string_equal(dec.rule, "first");
    decide(p, "console:dev", "scale", NULL, false, 0, &dec);
    assert_string_equal(dec.rule, "second");
    /* An empty document is fine. */
    assert_int_equal(ob_policy_add_json(&p, NULL, NULL, NULL, &d), 0);
    assert_int_equal(ob_policy_add_json(NULL, NULL, NULL, a, &d), OB_EINVAL);
    ob_diag_release(&d);
    ob_policy_free(p);
    ob_policy_free(NULL);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(bad);
}

static void test_may_use(void **state)
{
    struct ob_policy *p = load(
        "{\"groups\": {\"eng\": [\"console:dev\", \"slack:U1\"], \"viewers\": [\"console:v\"]},"
        " \"rules\": ["
        "  {\"name\": \"reads\", \"action\": [\"logs\", \"help\"], \"effect\": \"allow\"},"
        "  {\"name\": \"no-viewers\", \"group\": \"viewers\", \"effect\": \"deny\"},"
        "  {\"name\": \"no-prod-scale\", \"action\": \"scale\", \"params\": {\"env\": \"prod\"},"
        "   \"effect\": \"deny\"},"
        "  {\"name\": \"no-slack-rollback\", \"platform\": \"slack\", \"action\": \"rollback\","
        "   \"effect\": \"deny\"},"
        "  {\"name\": \"eng\", \"group\": \"eng\", \"params\": {\"env\": \"staging\"},"
        "   \"effect\": \"approve\", \"approvers\": \"eng\"}"
        " ]}",
        NULL);

    (void)state;
    assert_true(ob_policy_may_use(p, "console:v", "console", "logs"));
    assert_false(ob_policy_may_use(p, "console:v", "console", "restart"));
    assert_true(ob_policy_may_use(p, "console:dev", "console", "restart"));
    /* A deny that depends on params does not hide the action. */
    assert_true(ob_policy_may_use(p, "console:dev", "console", "scale"));
    /* An unconditional deny for the platform does. */
    assert_false(ob_policy_may_use(p, "slack:U1", "slack", "rollback"));
    assert_false(ob_policy_may_use(p, "slack:U1", NULL, "rollback"));
    assert_true(ob_policy_may_use(p, "console:dev", "console", "rollback"));
    assert_false(ob_policy_may_use(p, "console:stranger", "console", "restart"));
    assert_false(ob_policy_may_use(NULL, "console:dev", "console", "logs"));
    ob_policy_free(p);
}

/* ---- YAML: the demo policy through the real loaders ----------------------- */

static void test_demo_yaml(void **state)
{
    const char *root = getenv("OB_SOURCE_ROOT");
    char path[1024], buf[256];
    struct ob_config *cfg = NULL;
    struct ob_catalog *cat = NULL;
    struct ob_policy *p = NULL;
    struct ob_decision dec;
    struct ob_diag d;
    struct ob_kv kv[2] = {{"service", "checkout"}, {"env", "production"}};
    struct ob_policy_request req = {.user = "console:dev",
                                    .platform = "console",
                                    .channel = "console",
                                    .action = "restart",
                                    .params = kv,
                                    .nparams = 2,
                                    .now_ms = at(0, 17, 30)};
    struct counter c = {.value = 0};
    size_t g, r, f, l;
    int rc;

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/data/policy/main.yaml", root ? root : ".");
    ob_diag_init(&d);
    rc = ob_config_load(&cfg, path, &d);
    if (rc == 0)
        rc = ob_catalog_load(&cat, cfg, &d);
    if (rc == 0)
        rc = ob_policy_load(&p, cfg, cat, &d);
    if (rc != 0)
        ob_diag_print(&d, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    ob_policy_stats(p, &g, &r, &f, &l);
    assert_int_equal(g, 4);
    assert_int_equal(r, 5);
    assert_int_equal(f, 0);
    assert_int_equal(l, 1);

    /* An engineer in prod: one approval from oncall, not self, 30 minutes.
     * The request value is normalised as the parser would ("prod"). */
    ob_strlcpy(kv[1].value, "prod", sizeof(kv[1].value));
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_APPROVE);
    assert_string_equal(dec.rule, "prod-changes-need-oncall");
    assert_non_null(strstr(dec.where, "deploy/demo/policies/demo.yaml:"));
    assert_string_equal(dec.approvers, "oncall");
    assert_int_equal(dec.count, 1);
    assert_false(dec.allow_self);
    assert_int_equal(dec.ttl_ms, 30 * 60 * 1000);
    assert_string_equal(ob_policy_group_members(p, dec.approvers, buf, sizeof(buf)),
                        "console:oncall");
    /* Staging runs directly, for every engineer. */
    ob_strlcpy(kv[1].value, "staging", sizeof(kv[1].value));
    req.user = "console:bob";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    assert_string_equal(dec.rule, "staging-and-dev-direct");
    /* ... until the rate limit. */
    c.value = 20;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "rate-limit:changes-per-user");
    assert_string_equal(dec.reason, "20 restart requests in the last 1h (limit 20)");
    c.value = 0;
    /* Viewers read, but changes are denied with the rule's reason. */
    req.user = "console:viewer";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_DENY);
    assert_string_equal(dec.rule, "viewers-read-only");
    assert_string_equal(dec.reason, "viewers may only read");
    req.action = "logs";
    req.is_read = true;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_int_equal(dec.effect, OB_EFFECT_ALLOW);
    assert_string_equal(dec.rule, "reads");
    /* Strangers: default deny, even for reads. */
    req.user = "console:mallory";
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "default-deny");
    /* Rules of the second file come after the first file's, and use its
     * groups: oncall may run an action no demo rule names. */
    req.user = "console:oncall";
    req.action = "scale";
    req.is_read = false;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "staging-and-dev-direct");
    req.params = NULL;
    req.nparams = 0;
    ob_policy_decide(p, &req, count_cb, &c, &dec);
    assert_string_equal(dec.rule, "oncall-anything");
    assert_non_null(strstr(dec.where, "tests/data/policy/extra.yaml:4"));
    /* Help filtering. */
    assert_true(ob_policy_may_use(p, "console:viewer", "console", "help"));
    assert_false(ob_policy_may_use(p, "console:viewer", "console", "restart"));
    assert_true(ob_policy_may_use(p, "console:alice", "console", "rollback"));
    assert_false(ob_policy_may_use(p, "console:mallory", "console", "logs"));
    assert_true(ob_policy_in_group(p, "engineers", "console:oncall"));

    ob_diag_release(&d);
    ob_policy_free(p);
    ob_catalog_free(cat);
    ob_config_free(cfg);
}

/* The shipped example policy loads and behaves as its comments say. */
/* Loads yaml as pol.yaml into a policy that must fail (OB_ECONFIG): every
 * diagnostic line into all. cfg stays for the caller to free. */
static void load_failing(const char *yaml, const struct ob_catalog *cat, struct ob_config **cfg,
                         char *all, size_t len)
{
    struct ob_policy *p = NULL;
    struct ob_diag d;

    all[0] = '\0';
    ob_diag_init(&d);
    assert_int_equal(ob_config_load_string(cfg, yaml, "pol.yaml", &d), 0);
    assert_int_equal(ob_policy_add_json(&p, *cfg, cat, ob_config_root(*cfg), &d), OB_ECONFIG);
    for (size_t i = 0; i < d.n; i++) {
        strncat(all, d.lines[i], len - strlen(all) - 2);
        strcat(all, "\n");
    }
    ob_diag_release(&d);
    ob_policy_free(p);
}

/* Numbers YAML can write but no parameter can hold (.nan, .inf, 1e300) are
 * reported as the values they are; the fuzzer found .nan converted to an
 * integer (undefined behaviour) on the way. */
static void test_odd_numbers(void **state)
{
    static const char yaml[] = "rules:\n"
                               "  - name: odd\n"
                               "    action: scale\n"
                               "    params: {replicas: [.nan, .inf, -.inf, 1e300, 2.5]}\n"
                               "    effect: allow\n";
    struct ob_catalog *cat = make_catalog();
    struct ob_config *cfg = NULL;
    char all[4096];

    (void)state;
    load_failing(yaml, cat, &cfg, all, sizeof(all));
    if (!strstr(all, "pol.yaml:4:") || !strstr(all, "nan") || !strstr(all, "inf") ||
        !strstr(all, "1e+300") || !strstr(all, "2.5"))
        fail_msg("unexpected diagnostics:\n%s", all);
    ob_config_free(cfg);
    free_catalog(cat);
}

static void test_default_example(void **state)
{
    const char *root = getenv("OB_SOURCE_ROOT");
    char path[1024];
    struct ob_config *cfg = NULL;
    struct ob_catalog *cat = NULL;
    struct ob_policy *p = NULL;
    struct ob_decision dec;
    struct ob_diag d;
    struct ob_kv kv[2] = {{"service", "checkout"}, {"env", "prod"}};
    struct ob_policy_request req = {.user = "slack:U06DEV0001",
                                    .platform = "slack",
                                    .channel = "C0OPS0001",
                                    .action = "restart",
                                    .params = kv,
                                    .nparams = 2,
                                    .now_ms = at(-1, 10, 0)};
    int rc;

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/data/policy/default-main.yaml", root ? root : ".");
    ob_diag_init(&d);
    rc = ob_config_load(&cfg, path, &d);
    if (rc == 0)
        rc = ob_catalog_load(&cat, cfg, &d);
    if (rc == 0)
        rc = ob_policy_load(&p, cfg, cat, &d);
    if (rc != 0)
        ob_diag_print(&d, NULL);
    assert_int_equal(rc, 0);
    /* Thursday 10:00 in #ops-prod: approval by oncall. */
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "prod-changes-need-oncall");
    assert_int_equal(dec.effect, OB_EFFECT_APPROVE);
    /* Elsewhere: refused with the pointer. */
    req.channel = "C0RANDOM1";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "prod-only-in-ops-channel");
    /* Friday evening and the weekend are frozen for prod, not for rollback. */
    req.channel = "C0OPS0001";
    req.now_ms = at(0, 18, 0);
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "freeze:friday-evening");
    req.now_ms = at(2, 11, 0);
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "freeze:weekend");
    req.action = "rollback";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "prod-changes-need-oncall");
    /* Staging is direct; auditors read only. */
    ob_strlcpy(kv[1].value, "staging", sizeof(kv[1].value));
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "non-prod-direct");
    req.user = "slack:U07AUDIT01";
    ob_policy_decide(p, &req, NULL, NULL, &dec);
    assert_string_equal(dec.rule, "auditors-read-only");
    assert_true(ob_policy_in_group(p, "developers", "slack:U05LEAD002"));
    ob_diag_release(&d);
    ob_policy_free(p);
    ob_catalog_free(cat);
    ob_config_free(cfg);
}

/* Errors in YAML name file:line and the key. */
static void test_yaml_error_locations(void **state)
{
    static const char yaml[] = "groups:\n"
                               "  eng: [console:dev]\n"
                               "rules:\n"
                               "  - name: a\n"
                               "    group: ghosts\n"
                               "    effect: allow\n"
                               "  - name: b\n"
                               "    effect: maybe\n"
                               "freeze:\n"
                               "  - name: f\n"
                               "    from: \"10:00\"\n"
                               "    to: \"10:60\"\n";
    struct ob_config *cfg = NULL;
    struct ob_policy *p = NULL;
    struct ob_diag d;
    char all[4096];

    (void)state;
    load_failing(yaml, NULL, &cfg, all, sizeof(all));
    if (!strstr(all, "pol.yaml:4: group: unknown group 'ghosts'") ||
        !strstr(all, "pol.yaml:8: effect:") || !strstr(all, "pol.yaml:12: to:"))
        fail_msg("unexpected diagnostics:\n%s", all);

    /* A good document: decisions carry file:line of the rule. */
    ob_config_free(cfg);
    cfg = NULL;
    ob_diag_init(&d);
    assert_int_equal(ob_config_load_string(&cfg,
                                           "groups: {eng: [console:dev]}\n"
                                           "rules:\n"
                                           "  - {name: r1, group: eng, effect: allow}\n",
                                           "ok.yaml", &d),
                     0);
    p = NULL;
    assert_int_equal(ob_policy_add_json(&p, cfg, NULL, ob_config_root(cfg), &d), 0);
    {
        struct ob_decision dec;

        decide(p, "console:dev", "restart", NULL, false, 0, &dec);
        assert_string_equal(dec.rule, "r1");
        assert_non_null(strstr(dec.where, "ok.yaml:3"));
    }
    ob_diag_release(&d);
    ob_policy_free(p);
    ob_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_and_default_deny),
        cmocka_unit_test(test_effect_defaults),
        cmocka_unit_test(test_match_keys),
        cmocka_unit_test(test_params_lists_and_any),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_multi_document),
        cmocka_unit_test(test_may_use),
        cmocka_unit_test(test_demo_yaml),
        cmocka_unit_test(test_yaml_error_locations),
        cmocka_unit_test(test_odd_numbers),
        cmocka_unit_test(test_default_example),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
