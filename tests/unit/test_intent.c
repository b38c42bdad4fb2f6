/* Intent parser: the shipped catalog against the labelled dev set, the
 * grammar, rules, ambiguity, questions and answers, caps and injection. */
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
#include "opsbot/intent.h"

struct fixture {
    struct ob_config *cfg;
    struct ob_catalog *cat;
};

static const char *source_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

/* The shipped intents (*.yaml) through the real config loader: a fictitious
 * main file in the source root includes them. */
static int setup_shipped(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ob_diag d;
    char path[4096];
    int rc;

    assert_non_null(f);
    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot-test.yaml", source_root());
    rc = ob_config_load_string(&f->cfg, "actions: {include: intents/*.yaml}\n", path, &d);
    if (rc != 0)
        ob_diag_print(&d, NULL);
    assert_int_equal(rc, 0);
    rc = ob_catalog_load(&f->cat, f->cfg, &d);
    if (rc != 0)
        ob_diag_print(&d, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    ob_diag_release(&d);
    *state = f;
    return 0;
}

static int teardown_shipped(void **state)
{
    struct fixture *f = *state;

    ob_catalog_free(f->cat);
    ob_config_free(f->cfg);
    free(f);
    return 0;
}

static const struct ob_catalog *cat_of(void **state)
{
    return ((struct fixture *)*state)->cat;
}

static void parse(void **state, const char *text, struct ob_parse_result *r)
{
    ob_intent_parse(cat_of(state), text, r);
}

static void expect_param(const struct ob_proposal *p, const char *name, const char *value)
{
    const char *v = ob_proposal_get(p, name);

    if (!v || strcmp(v, value))
        fail_msg("%s: expected %s, got %s", name, value, v ? v : "(unset)");
}

/* ---- the labelled dev set ------------------------------------------------ */

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void value_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v))
        snprintf(buf, len, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, len, "%lld", (long long)v->valuedouble);
    else
        snprintf(buf, len, "?");
}

/* Every parameter of the proposal either is expected with that value or
 * holds its default; every expected parameter is present. *wrong is set
 * when a value contradicts the label. */
static bool proposal_matches(const struct ob_proposal *p, const cJSON *params, const char *varies,
                             bool *wrong)
{
    const cJSON *e;
    char want[256];
    bool complete = true;

    cJSON_ArrayForEach(e, params)
    {
        const char *got = ob_proposal_get(p, e->string);

        value_text(e, want, sizeof(want));
        if (!got)
            complete = false;
        else if (strcmp(got, want))
            *wrong = true;
    }
    for (size_t i = 0; i < p->nparams; i++) {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(params, p->params[i].name);
        const struct ob_param_def *d = ob_action_param(p->action, p->params[i].name);

        if (exp || (varies && !strcmp(varies, p->params[i].name)))
            continue;
        if (!d || !d->def || strcmp(d->def, p->params[i].value))
            *wrong = true;
    }
    return complete && !*wrong;
}

static void test_eval_dev_set(void **state)
{
    char path[4096], fmt[512];
    char *data, *line, *save = NULL;
    size_t total = 0, correct = 0, wrong_n = 0;

    snprintf(path, sizeof(path), "%s/tests/data/intents-dev.jsonl", source_root());
    data = slurp(path);
    assert_non_null(data);
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *text, *action, *params;
        struct ob_parse_result r;
        bool wrong = false, ok = false;

        assert_non_null(j);
        text = cJSON_GetObjectItemCaseSensitive(j, "text");
        action = cJSON_GetObjectItemCaseSensitive(j, "action");
        params = cJSON_GetObjectItemCaseSensitive(j, "params");
        assert_true(cJSON_IsString(text));
        parse(state, text->valuestring, &r);
        total++;
        if (!cJSON_IsString(action)) {
            /* Chatter: never anything but NONE. */
            ok = r.status == OB_PARSE_NONE;
            wrong = !ok;
        } else if (r.status == OB_PARSE_OK || r.status == OB_PARSE_ASK) {
            const char *varies = NULL;

            /* Several proposals differ in exactly one parameter: the label
             * does not name its values. */
            for (size_t k = 0; r.n > 1 && k < r.proposals[0].nparams; k++)
                if (strcmp(r.proposals[0].params[k].value, r.proposals[1].params[k].value) == 0)
                    continue;
                else
                    varies = r.proposals[0].params[k].name;
            ok = r.n >= 1;
            for (size_t i = 0; i < r.n; i++) {
                if (strcmp(r.proposals[i].action->name, action->valuestring)) {
                    wrong = true;
                    continue;
                }
                ok = proposal_matches(&r.proposals[i], params, varies, &wrong) && ok;
            }
            if (r.status == OB_PARSE_ASK && r.proposals[0].missing &&
                cJSON_GetObjectItemCaseSensitive(params, r.proposals[0].missing->name))
                wrong = true; /* asked for a value the text gave */
        }
        if (ok && !wrong)
            correct++;
        if (wrong)
            wrong_n++;
        if (!ok || wrong || getenv("OB_TEST_VERBOSE")) {
            fmt[0] = '\0';
            if (r.n)
                ob_proposal_format(&r.proposals[0], fmt, sizeof(fmt));
            printf("  %s: \"%s\" -> status %d n=%zu [%s] %s\n",
                   wrong ? "WRONG"
                   : ok  ? "ok"
                         : "miss",
                   text->valuestring, r.status, r.n, fmt, r.message);
        }
        cJSON_Delete(j);
    }
    free(data);
    printf("intents-dev: %zu/%zu correct (recall %.1f%%), %zu wrong\n", correct, total,
           100.0 * (double)correct / (double)total, wrong_n);
    assert_int_equal(wrong_n, 0);
    assert_true(correct * 100 >= total * 80);
}

/* ---- the notes of the dev set ------------------------------------------- */

static void test_several_services(void **state)
{
    struct ob_parse_result r;

    parse(state, "restart checkout, payments and cart in prod", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_int_equal(r.n, 3);
    expect_param(&r.proposals[0], "service", "checkout");
    expect_param(&r.proposals[1], "service", "payments");
    expect_param(&r.proposals[2], "service", "cart");
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(r.proposals[i].action->name, "restart");
        expect_param(&r.proposals[i], "env", "prod");
        assert_null(r.proposals[i].missing);
    }
    /* Several at once with the env missing: never one silently. */
    parse(state, "restart checkout and payments", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_int_equal(r.n, 0);
    assert_non_null(strstr(r.message, "env"));
    /* Grammar too, and the cap. */
    parse(state, "!restart checkout,payments env=prod", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_int_equal(r.n, 2);
    parse(state, "!restart a,b,c,d,e,f,g,h,i env=prod", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "too many"));
    parse(state, "!restart a,b,c,d,e,f,g,h env=prod", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_int_equal(r.n, OB_MAX_PROPOSALS);
    parse(state, "!restart checkout,payments env=prod,staging", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "only one parameter"));
}

static void test_vague_service_asks(void **state)
{
    static const char *const texts[] = {"restart the thing", "restart it", "restart the service",
                                        "please restart the pods", "restart prod"};
    struct ob_parse_result r;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        parse(state, texts[i], &r);
        assert_int_equal(r.status, OB_PARSE_ASK);
        assert_int_equal(r.n, 1);
        assert_null(ob_proposal_get(&r.proposals[0], "service"));
        assert_non_null(r.proposals[0].missing);
        assert_string_equal(r.proposals[0].missing->name, "service");
        assert_string_equal(r.message,
                            r.proposals[0].action->risk == OB_RISK_CHANGE && !r.proposals[0].nparams
                                ? "Which service should I restart? Reply in this thread."
                                : r.message);
    }
    parse(state, "restart the thing", &r);
    assert_string_equal(r.message, "Which service should I restart? Reply in this thread.");
    /* Not requests at all. */
    parse(state, "i need to restart my laptop", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    parse(state, "revert my commit", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    parse(state, "is everyone ready for the demo?", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
}

static void test_two_envs_named_asks(void **state)
{
    struct ob_parse_result r;

    parse(state, "copy staging config to prod and restart checkout", &r);
    assert_int_equal(r.status, OB_PARSE_ASK);
    expect_param(&r.proposals[0], "service", "checkout");
    assert_string_equal(r.proposals[0].missing->name, "env");
    assert_string_equal(r.message, "Which env for restart checkout? One of: prod, staging, dev.");
}

/* ---- grammar ------------------------------------------------------------- */

static void test_grammar(void **state)
{
    struct ob_parse_result r;

    parse(state, "!restart checkout env=prod", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.proposals[0].source, "grammar");
    assert_true(r.proposals[0].confidence == 1.0);
    expect_param(&r.proposals[0], "service", "checkout");
    expect_param(&r.proposals[0], "env", "prod");

    /* key=value anywhere, aliases, case of the command name */
    parse(state, "  !Restart env=Production service=checkout", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "env", "prod");
    expect_param(&r.proposals[0], "service", "checkout");

    /* bare words fill required parameters in declaration order, then
     * optional ones */
    parse(state, "!scale checkout prod 3", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "replicas", "3");
    parse(state, "!logs cart prod 2h", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "since", "2h");
    parse(state, "!restart checkout prod extra", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "'extra'"));

    /* quoting */
    parse(state, "!logs cart env=prod filter=\"connection refused\"", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "filter", "connection refused");
    parse(state, "!logs cart env=prod filter='a b'", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "filter", "a b");
    parse(state, "!logs cart env=prod filter=\"unterminated", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "unterminated"));

    /* unknown key, repeated key, '=' without a name */
    parse(state, "!restart checkout env=prod colour=blue", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "colour"));
    parse(state, "!restart checkout env=prod env=dev", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "twice"));
    parse(state, "!restart checkout =prod", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);

    /* missing parameter from the grammar asks too */
    parse(state, "!restart checkout", &r);
    assert_int_equal(r.status, OB_PARSE_ASK);
    assert_string_equal(r.proposals[0].missing->name, "env");

    /* help ignores extra words; "!!!" is not a command */
    parse(state, "!help restart", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_string_equal(r.proposals[0].action->name, "help");
    parse(state, "!!!", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    parse(state, "! wow", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);

    /* too many words */
    char text[600] = "!restart";
    for (int i = 0; i < 40; i++)
        strcat(text, " x");
    parse(state, text, &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
}

static void test_unknown_command(void **state)
{
    struct ob_parse_result r;

    parse(state, "!restat checkout env=prod", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "unknown command 'restat'"));
    assert_non_null(strstr(r.message, "!restart"));
    assert_null(strstr(r.message, "!metrics"));
    assert_non_null(strstr(r.message, "!help"));
    parse(state, "!frobnicate", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "!rollback"));
    assert_non_null(strstr(r.message, "!status"));
}

/* ---- injection, caps ------------------------------------------------------ */

static void test_injection(void **state)
{
    static const char *const texts[] = {
        "!restart 'checkout; rm -rf /' env=prod",
        "!restart checkout env='prod; reboot'",
        "!restart \"$(reboot)\" env=prod",
        "!restart `id` env=prod",
        "!restart checkout|nc env=prod",
        "!restart ../../etc/passwd env=prod",
        "!logs cart env=prod filter=\"x;rm -rf /\"",
        "!logs cart env=prod filter='$(id)'",
        "!scale checkout env=prod replicas='3; reboot'",
        "!logs cart env=prod since='1h; reboot'",
    };
    static const char *const free_text[] = {
        "restart checkout; rm -rf / in prod",
        "restart $(reboot) in prod",
        "restart `id` in prod",
        "restart checkout&&reboot in prod",
        "restart checkout|sh in prod",
        "scale checkout to 3;reboot in prod",
    };
    struct ob_parse_result r;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        parse(state, texts[i], &r);
        if (r.status != OB_PARSE_INVALID)
            fail_msg("%s: status %d", texts[i], r.status);
        assert_non_null(strstr(r.message, "is not valid"));
        assert_int_equal(r.n, 0);
    }
    parse(state, texts[0], &r);
    assert_string_equal(
        r.message, "service 'checkout; rm -rf /' is not valid: must match ^[a-z][a-z0-9-]{0,62}$");
    /* Free text: whatever comes out holds no metacharacter at all. */
    for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++) {
        parse(state, free_text[i], &r);
        for (size_t k = 0; k < r.n; k++)
            for (size_t j = 0; j < r.proposals[k].nparams; j++)
                if (strpbrk(r.proposals[k].params[j].value, ";|&$`()<>\\'\""))
                    fail_msg("%s: smuggled %s", free_text[i], r.proposals[k].params[j].value);
    }
}

static void test_text_caps(void **state)
{
    struct ob_parse_result r;
    char *big = malloc(4002);

    assert_non_null(big);
    memset(big, 'a', 4001);
    big[4001] = '\0';
    parse(state, big, &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "too long"));
    big[4000] = '\0'; /* exactly at the cap: parsed (and nothing matches) */
    parse(state, big, &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    /* a long rule input with a request at the end still parses */
    memset(big, ' ', 3000);
    strcpy(big + 3000, "restart checkout in prod");
    parse(state, big, &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    free(big);

    parse(state, "restart check\xc3\x28out in prod", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "UTF-8"));
    parse(state, "", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    ob_intent_parse(cat_of(state), NULL, &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    ob_intent_parse(NULL, "restart checkout in prod", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);

    /* an over-long value in the grammar */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "!restart %0300d env=prod", 7);
    parse(state, cmd, &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "too long"));
}

/* ---- questions and answers --------------------------------------------- */

static void test_ask_answer(void **state)
{
    struct ob_parse_result r;
    struct ob_proposal p;
    char msg[512];

    parse(state, "restart checkout", &r);
    assert_int_equal(r.status, OB_PARSE_ASK);
    assert_string_equal(r.message, "Which env for restart checkout? One of: prod, staging, dev.");
    p = r.proposals[0];
    /* a bad answer: INVALID, nothing changes, the question stands */
    assert_int_equal(ob_intent_answer(&p, "the moon", msg, sizeof(msg)), OB_PARSE_INVALID);
    assert_string_equal(msg, "env 'moon' is not valid: must be one of: prod, staging, dev");
    assert_non_null(p.missing);
    assert_null(ob_proposal_get(&p, "env"));
    assert_int_equal(ob_intent_answer(&p, "  in Production. ", msg, sizeof(msg)), OB_PARSE_OK);
    assert_null(p.missing);
    expect_param(&p, "env", "prod");
    assert_string_equal(ob_proposal_format(&p, msg, sizeof(msg)),
                        "restart service=checkout env=prod");

    /* env=staging form; then a second question for the service */
    parse(state, "restart the thing", &r);
    p = r.proposals[0];
    assert_int_equal(ob_intent_answer(&p, "the checkout", msg, sizeof(msg)), OB_PARSE_ASK);
    assert_string_equal(msg, "Which env for restart checkout? One of: prod, staging, dev.");
    assert_string_equal(p.missing->name, "env");
    assert_int_equal(ob_intent_answer(&p, "env=staging", msg, sizeof(msg)), OB_PARSE_OK);
    assert_string_equal(ob_proposal_format(&p, msg, sizeof(msg)),
                        "restart service=checkout env=staging");
    /* parameters stay in declaration order whatever the answer order */
    assert_string_equal(p.params[0].name, "service");
    assert_string_equal(p.params[1].name, "env");

    /* numbers: range checked, question lists it */
    parse(state, "scale checkout in prod", &r);
    assert_int_equal(r.status, OB_PARSE_ASK);
    assert_string_equal(r.message,
                        "How many replicas for scale checkout prod? A whole number from 0 to 50.");
    p = r.proposals[0];
    assert_int_equal(ob_intent_answer(&p, "51", msg, sizeof(msg)), OB_PARSE_INVALID);
    assert_non_null(strstr(msg, "at most 50"));
    assert_int_equal(ob_intent_answer(&p, "checkout; reboot", msg, sizeof(msg)), OB_PARSE_INVALID);
    assert_int_equal(ob_intent_answer(&p, "six", msg, sizeof(msg)), OB_PARSE_OK);
    expect_param(&p, "replicas", "6");

    /* injection in an answer */
    parse(state, "restart the thing", &r);
    p = r.proposals[0];
    assert_int_equal(ob_intent_answer(&p, "checkout; rm -rf /", msg, sizeof(msg)),
                     OB_PARSE_INVALID);
    assert_non_null(strstr(msg, "must match"));
    assert_int_equal(ob_intent_answer(&p, NULL, msg, sizeof(msg)), OB_PARSE_INVALID);
    assert_int_equal(ob_intent_answer(NULL, "x", msg, sizeof(msg)), OB_PARSE_INVALID);
}

static void test_format_roundtrip(void **state)
{
    static const char *const texts[] = {
        "!logs cart env=prod since=90m filter=\"connection refused\"",
        "grep the auth logs for timeout in prod over the last hour",
        "rollback payments on staging to revision 41",
        "!metrics cart env=prod metric=\"error rate\"",
    };
    struct ob_parse_result r, r2;
    char buf[512], cmd[600];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        parse(state, texts[i], &r);
        assert_int_equal(r.status, OB_PARSE_OK);
        snprintf(cmd, sizeof(cmd), "!%s", ob_proposal_format(&r.proposals[0], buf, sizeof(buf)));
        parse(state, cmd, &r2);
        if (r2.status != OB_PARSE_OK)
            fail_msg("%s -> %s: %s", texts[i], cmd, r2.message);
        assert_int_equal(r2.proposals[0].nparams, r.proposals[0].nparams);
        for (size_t k = 0; k < r.proposals[0].nparams; k++)
            assert_string_equal(r2.proposals[0].params[k].value, r.proposals[0].params[k].value);
    }
    parse(state, texts[0], &r);
    expect_param(&r.proposals[0], "since", "1h30m");
    expect_param(&r.proposals[0], "filter", "connection refused");
    assert_string_equal(ob_proposal_format(&r.proposals[0], buf, sizeof(buf)),
                        "logs service=cart env=prod since=1h30m filter=\"connection refused\"");
    /* truncation is safe */
    assert_string_equal(ob_proposal_format(&r.proposals[0], buf, 8), "logs se");
}

static void test_rules_details(void **state)
{
    struct ob_parse_result r;

    parse(state, "Restart Checkout in PROD", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_string_equal(r.proposals[0].source, "rules");
    assert_true(r.proposals[0].confidence == 0.9);
    expect_param(&r.proposals[0], "service", "checkout");
    /* natural durations are normalised, ranges checked */
    parse(state, "logs of checkout in staging for the last 2 hours", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "since", "2h");
    parse(state, "logs for checkout in prod for the last 3 days", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_non_null(strstr(r.message, "since"));
    parse(state, "latency of checkout in prod over the last week", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "since", "7d");
    parse(state, "scale checkout to 100 replicas in prod", &r);
    assert_int_equal(r.status, OB_PARSE_INVALID);
    assert_string_equal(r.message, "replicas '100' is not valid: must be at most 50");
    parse(state, "rollback api-gateway to v12 in prod", &r);
    expect_param(&r.proposals[0], "revision", "12");
    /* "help" is strict */
    parse(state, "can someone help me with my PR", &r);
    assert_int_equal(r.status, OB_PARSE_NONE);
    parse(state, "@opsbot help", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_string_equal(r.proposals[0].action->name, "help");
}

/* ---- ambiguity, on a catalog of its own ------------------------------- */

static void test_ambiguous(void **state)
{
    static const char *const json =
        "[{\"name\":\"restart\",\"description\":\"r\",\"risk\":\"change\","
        "  \"params\":[{\"name\":\"service\",\"pattern\":\"^[a-z]+$\",\"required\":true}],"
        "  \"rules\":[\"\\\\bfix\\\\s+(?<service>[a-z]+)\", "
        "\"\\\\bkick\\\\s+(?<service>[a-z]+)\"]},"
        " {\"name\":\"rollback\",\"description\":\"b\",\"risk\":\"change\","
        "  \"params\":[{\"name\":\"service\",\"pattern\":\"^[a-z]+$\",\"required\":true},"
        "              {\"name\":\"revision\",\"type\":\"int\"}],"
        "  \"rules\":[\"\\\\bfix\\\\s+(?<service>[a-z]+)(?:\\\\s+at\\\\s+(?<revision>\\\\d+))?\"]},"
        " {\"name\":\"status\",\"description\":\"s\",\"risk\":\"read\","
        "  \"params\":[{\"name\":\"service\",\"required\":true}],"
        "  \"rules\":[\"\\\\bfix\\\\b\"]}]";
    cJSON *arr = cJSON_Parse(json);
    struct ob_catalog *cat = NULL;
    struct ob_diag d;
    struct ob_parse_result r;

    (void)state;
    assert_non_null(arr);
    ob_diag_init(&d);
    assert_int_equal(ob_catalog_load_json(&cat, NULL, arr, &d), 0);
    ob_intent_parse(cat, "please fix checkout", &r);
    assert_int_equal(r.status, OB_PARSE_AMBIGUOUS);
    assert_string_equal(r.message,
                        "Did you mean restart or rollback? Say it with !restart \xe2\x80\xa6 "
                        "or !rollback \xe2\x80\xa6");
    assert_int_equal(r.n, 0);
    /* more parameters captured wins */
    ob_intent_parse(cat, "please fix checkout at 7", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_string_equal(r.proposals[0].action->name, "rollback");
    expect_param(&r.proposals[0], "revision", "7");
    /* quotes and backslashes survive format -> grammar */
    char buf[256], cmd[300];

    ob_intent_parse(cat, "!status service=\"a \\\"b\\\" c\\\\\"", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "service", "a \"b\" c\\");
    snprintf(cmd, sizeof(cmd), "!%s", ob_proposal_format(&r.proposals[0], buf, sizeof(buf)));
    assert_string_equal(cmd, "!status service=\"a \\\"b\\\" c\\\\\"");
    ob_intent_parse(cat, cmd, &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    expect_param(&r.proposals[0], "service", "a \"b\" c\\");
    /* only one action matches */
    ob_intent_parse(cat, "kick checkout", &r);
    assert_int_equal(r.status, OB_PARSE_OK);
    assert_string_equal(r.proposals[0].action->name, "restart");
    ob_catalog_free(cat);
    cJSON_Delete(arr);
    ob_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_dev_set),
        cmocka_unit_test(test_several_services),
        cmocka_unit_test(test_vague_service_asks),
        cmocka_unit_test(test_two_envs_named_asks),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_text_caps),
        cmocka_unit_test(test_ask_answer),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_rules_details),
        cmocka_unit_test(test_ambiguous),
    };

    return cmocka_run_group_tests(tests, setup_shipped, teardown_shipped);
}
