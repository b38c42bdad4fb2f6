/* The LLM parser end to end: the real pipeline (bundle, bot, policy,
 * executor, audit) with a small in-test chat adapter that records what the
 * bot posts, talking the real chat-completions protocol over loopback to
 * the local stand-in (tests/standins/llm_standin.c). Covers the OpenAI and
 * Azure forms, redaction before sending, the echo (model@prompt-version,
 * tokens, cost, latency), fallback to the rules on timeout / 5xx /
 * configuration errors / cut-off answers, retries honouring the headers,
 * clarify and no_action, /metrics and /readyz over HTTP, and `opsbot eval`
 * (exact numbers in process, then the built binary's gate exit status). */
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
#include <uv.h>

#include "core.h"
#include "llm_standin.h"
#include "opsbot/audit.h"
#include "opsbot/bot.h"
#include "opsbot/err.h"
#include "opsbot/eval.h"
#include "opsbot/http.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/metrics.h"
#include "opsbot/ws.h"

#define MAX_POSTS 256
#define KEY "sk-local-test-0123456789"

/* ---- the in-test chat adapter -------------------------------------------------- */

struct post_rec {
    char text[4096];
    char thread[128];
    unsigned flags;
};

struct tad {
    struct post_rec posts[MAX_POSTS];
    size_t nposts;
    int seq;
    bool ready;
};

static int tad_start(struct ob_adapter *ad)
{
    (void)ad;
    return 0;
}

static int tad_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct tad *t = ad->ctx;
    struct ob_msgref ref = {0};

    if (t->nposts < MAX_POSTS) {
        struct post_rec *r = &t->posts[t->nposts++];

        snprintf(r->text, sizeof(r->text), "%s", p->text);
        snprintf(r->thread, sizeof(r->thread), "%s", p->thread ? p->thread : "");
        r->flags = p->flags;
    }
    snprintf(ref.channel, sizeof(ref.channel), "%s", p->channel);
    snprintf(ref.thread, sizeof(ref.thread), "%s", p->thread ? p->thread : "");
    snprintf(ref.message, sizeof(ref.message), "b%d", ++t->seq);
    if (cb)
        cb(data, 0, &ref);
    return 0;
}

static int tad_update(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p)
{
    (void)ad;
    (void)ref;
    (void)p;
    return 0;
}

static int tad_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    (void)ad;
    (void)ref;
    (void)emoji;
    return 0;
}

static void tad_stop(struct ob_adapter *ad)
{
    (void)ad;
}

static void tad_free(struct ob_adapter *ad)
{
    free(ad->ctx);
    free(ad);
}

static bool tad_ready(struct ob_adapter *ad)
{
    return ((struct tad *)ad->ctx)->ready;
}

static const struct ob_adapter_ops tad_ops = {
    .name = "test",
    .start = tad_start,
    .post = tad_post,
    .update = tad_update,
    .react = tad_react,
    .stop = tad_stop,
    .free = tad_free,
    .ready = tad_ready,
};

/* ---- a session: loop, stand-in, config, bot ------------------------------------ */

struct session {
    uv_loop_t loop;
    struct ob_lws *lws;
    struct ob_llm_standin *si;
    struct ob_bot *bot;
    struct ob_adapter *ad;
    struct tad *t;
    char dir[256];
    char config[300];
    int ev;
};

static const char *root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Writes the configuration for connection conn and mode (extra: more YAML). */
static void write_config(struct session *s, const char *conn, const char *mode, const char *extra)
{
    char *y = NULL, pol[300];
    int port = ob_llm_standin_port(s->si);

    snprintf(pol, sizeof(pol), "%s/policies", s->dir);
    mkdir(pol, 0700);
    snprintf(pol, sizeof(pol), "%s/policies/p.yaml", s->dir);
    write_file(pol, "groups:\n"
                    "  engineers: [test:dev, test:alice]\n"
                    "  oncall: [test:oncall]\n"
                    "rules:\n"
                    "  - {name: reads, group: engineers, action: [logs, metrics, status, help],"
                    " effect: allow}\n"
                    "  - {name: staging-direct, group: engineers, action: [restart, rollback, "
                    "scale], params: {env: [staging, dev]}, effect: allow}\n"
                    "  - {name: prod-needs-oncall, group: engineers, action: [restart, rollback, "
                    "scale], params: {env: prod}, effect: approve, approvers: oncall, count: 1}\n");
    assert_true(
        asprintf(
            &y,
            "bot: {name: opsbot, state: \":memory:\"}\n"
            "log: {level: error}\n"
            "actions:\n"
            "  include: %s/intents/*.yaml\n"
            "  bind:\n"
            "    restart: {type: exec, argv: [/bin/echo, restart, \"{service}\", \"{env}\"]}\n"
            "    rollback: {type: exec, argv: [/bin/echo, rollback, \"{service}\", \"{env}\", "
            "\"{revision}\"]}\n"
            "    scale: {type: exec, argv: [/bin/echo, scale, \"{service}\", \"{env}\", "
            "\"{replicas}\"]}\n"
            "    logs: {type: exec, argv: [/bin/echo, logs, \"{service}\", \"{env}\"]}\n"
            "    metrics: {type: exec, argv: [/bin/echo, metrics, \"{service}\", \"{env}\", "
            "\"{metric}\"]}\n"
            "    status: {type: exec, argv: [/bin/echo, status, \"{service}\", \"{env}\"]}\n"
            "    pods: {type: exec, argv: [/bin/echo, pods, \"{service}\", \"{env}\"]}\n"
            "policies: {include: policies/*.yaml}\n"
            "connections:\n"
            "  local: {api_base: \"http://127.0.0.1:%d/v1\", api_key: " KEY ", model: gpt-test, "
            "timeout: 1s, retries: 2}\n"
            "  patient: {api_base: \"http://127.0.0.1:%d/v1\", api_key: " KEY ", model: "
            "gpt-test, timeout: 5s, retries: 2, price: {input_per_1m: 0.15, output_per_1m: "
            "0.60}}\n"
            "  badkey: {api_base: \"http://127.0.0.1:%d/v1\", api_key: sk-WRONG-KEY-42, model: "
            "gpt-test, timeout: 2s}\n"
            "  aoai: {api_type: azure, api_base: \"http://127.0.0.1:%d\", api_key: " KEY ", "
            "api_version: 2024-10-21, deployment: gpt-4o-mini, timeout: 2s}\n"
            "  aoai1: {api_type: azure, api_base: \"http://127.0.0.1:%d\", api_key: " KEY ", "
            "api_version: v1, deployment: gpt-4o-mini, timeout: 2s}\n"
            "  refused: {api_base: \"http://127.0.0.1:1/v1\", model: gpt-test, timeout: 2s, "
            "retries: 1}\n"
            "llm: {connection: %s, mode: %s, prompt: %s/tests/data/llm/prompt.md}\n"
            "%s",
            root(), port, port, port, port, port, conn, mode, root(), extra ? extra : "") > 0);
    write_file(s->config, y);
    free(y);
}

static void start(struct session *s, const char *conn, const char *mode, const char *extra)
{
    struct ob_bundle *b = NULL;
    struct ob_diag d;
    char tmpl[] = "/tmp/opsbot-llm-XXXXXX";

    memset(s, 0, sizeof(*s));
    ob_metrics_reset();
    assert_non_null(mkdtemp(tmpl));
    snprintf(s->dir, sizeof(s->dir), "%s", tmpl);
    snprintf(s->config, sizeof(s->config), "%s/opsbot.yaml", s->dir);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    assert_int_equal(ob_lws_new(&s->lws, &s->loop), 0);
    assert_int_equal(ob_llm_standin_new(&s->si, s->lws, &s->loop, KEY, "gpt-4o-mini"), 0);
    write_config(s, conn, mode, extra);
    ob_diag_init(&d);
    if (ob_bundle_load(&b, s->config, &d)) {
        ob_diag_print(&d, NULL);
        fail_msg("config rejected");
    }
    ob_diag_release(&d);
    assert_int_equal(ob_bot_new(&s->bot, &s->loop, b, s->config), 0);
    s->ad = calloc(1, sizeof(*s->ad));
    s->t = calloc(1, sizeof(*s->t));
    s->t->ready = true;
    s->ad->ops = &tad_ops;
    s->ad->ctx = s->t;
    assert_int_equal(ob_bot_add_adapter(s->bot, s->ad), 0);
    /* The bot has a context of its own (its HTTP client and the metrics
     * endpoint live there); the stand-in's is the test's. */
    assert_int_equal(ob_bot_start(s->bot), 0);
}

static void stop(struct session *s)
{
    char cmd[400];

    ob_bot_shutdown(s->bot);
    /* The bot's handles finish closing before its memory goes. */
    for (int i = 0; i < 3; i++)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    ob_bot_free(s->bot);
    ob_llm_standin_free(s->si);
    ob_lws_free(s->lws);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    assert_int_equal(system(cmd), 0);
}

static void wait_idle(struct session *s)
{
    while (ob_bot_inflight(s->bot))
        uv_run(&s->loop, UV_RUN_ONCE);
}

/* Says text as user in channel ops (a new thread), and waits until the
 * pipeline has nothing in flight. */
static void say_as(struct session *s, const char *user, const char *text, bool addressed)
{
    struct ob_event ev = {0};
    char id[32], msg[32];

    snprintf(id, sizeof(id), "e%d", ++s->ev);
    snprintf(msg, sizeof(msg), "u%d", s->ev);
    ev.kind = OB_EV_MESSAGE;
    ev.id = id;
    ev.platform = "test";
    ev.user = user;
    ev.channel = "ops";
    ev.message = msg;
    ev.text = text;
    ev.text_len = strlen(text);
    ev.addressed = addressed;
    s->ad->on_event(s->ad->on_event_data, s->ad, &ev);
    wait_idle(s);
}

static void say(struct session *s, const char *text)
{
    say_as(s, "dev", text, true);
}

static const struct post_rec *posted(struct session *s, const char *sub)
{
    for (size_t i = 0; i < s->t->nposts; i++)
        if (strstr(s->t->posts[i].text, sub))
            return &s->t->posts[i];
    return NULL;
}

static void expect_post(struct session *s, const char *sub)
{
    if (posted(s, sub))
        return;
    for (size_t i = 0; i < s->t->nposts; i++)
        print_message("  posted: %s\n", s->t->posts[i].text);
    fail_msg("nothing posted contains: %s", sub);
}

static void add_tool(struct session *s, const char *match, const char *tool, const char *args,
                     int pt, int ct)
{
    struct ob_si_rule r = {0};

    r.match = match;
    r.kind = OB_SI_TOOL;
    r.tool = tool;
    r.args = args;
    r.prompt_tokens = pt;
    r.completion_tokens = ct;
    ob_llm_standin_add(s->si, &r);
}

static void add_kind(struct session *s, const char *match, enum ob_si_kind k, int status,
                     const char *header, int times)
{
    struct ob_si_rule r = {0};

    r.match = match;
    r.kind = k;
    r.status = status;
    r.headers[0] = header;
    r.times = times;
    ob_llm_standin_add(s->si, &r);
}

static char *trail(struct session *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    ob_store_flush(s->bot->store);
    assert_int_equal(ob_audit_export(s->bot->store, f, OB_AUDIT_JSONL, 0, 0), 0);
    fclose(f);
    return buf;
}

static void prompt_version(char v[13])
{
    char path[400], *text = NULL;

    snprintf(path, sizeof(path), "%s/tests/data/llm/prompt.md", root());
    assert_int_equal(ob_llm_prompt_load(path, &text, v), 0);
    free(text);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_openai_echo_and_audit(void **state)
{
    struct session s;
    const struct ob_si_request *rq;
    char v[13], want[200], *t;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_tool(&s, "payments on staging", "rollback",
             "{\"service\":\"payments\",\"env\":\"staging\",\"revision\":null}", 812, 41);
    say(&s, "payments on staging keeps throwing 500s, roll it back");
    prompt_version(v);
    /* cost = (812 * 0.15 + 41 * 0.60) / 1e6 = 0.0001464 */
    snprintf(want, sizeof(want),
             "understood: rollback service=payments env=staging revision=0 (llm gpt-test@%s · "
             "812→41 tokens · $0.000146 · ",
             v);
    expect_post(&s, want);
    expect_post(&s, "policy: allowed — rule staging-direct");
    expect_post(&s, "finished: exit 0");
    expect_post(&s, "rollback payments staging 0");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    rq = ob_llm_standin_request(s.si, 0);
    assert_string_equal(rq->path, "/v1/chat/completions");
    assert_string_equal(rq->authorization, "Bearer " KEY);
    assert_null(rq->api_key);
    assert_non_null(strstr(rq->body, "\"tool_choice\":\"required\""));
    assert_non_null(strstr(rq->body, "\"parallel_tool_calls\":false"));
    assert_non_null(strstr(rq->body, "\"model\":\"gpt-test\""));
    assert_non_null(strstr(rq->body, "\"name\":\"rollback\""));
    assert_non_null(strstr(rq->body, "\"name\":\"no_action\""));
    assert_non_null(strstr(rq->body, "You are a test parser."));
    /* The audit's understood step names the source and the numbers. */
    t = trail(&s);
    assert_non_null(strstr(t, "\"source\":\"llm\""));
    snprintf(want, sizeof(want), "\"prompt_version\":\"%s\"", v);
    assert_non_null(strstr(t, want));
    assert_non_null(strstr(t, "\"tokens_in\":812"));
    assert_non_null(strstr(t, "\"tokens_out\":41"));
    assert_non_null(strstr(t, "\"connection\":\"patient\""));
    assert_non_null(strstr(t, "\"model\":\"gpt-test\""));
    assert_non_null(strstr(t, "\"latency_ms\":"));
    assert_non_null(strstr(t, "\"cost_usd\":"));
    free(t);
    stop(&s);
}

static void test_redaction_and_no_secrets(void **state)
{
    struct session s;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_tool(&s, "restart checkout", "restart", "{\"service\":\"checkout\",\"env\":\"staging\"}", 0,
             0);
    say(&s, "restart checkout in staging, the bot token is xoxb-123456789012-abcdefABCDEF1234 "
            "and password=hunter2hunter2");
    expect_post(&s, "understood: restart service=checkout env=staging (llm gpt-test@");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    for (size_t i = 0; i < ob_llm_standin_count(s.si); i++) {
        const struct ob_si_request *rq = ob_llm_standin_request(s.si, i);

        assert_null(strstr(rq->body, "xoxb-123456789012"));
        assert_null(strstr(rq->body, "hunter2hunter2"));
        assert_non_null(strstr(rq->user_text, "[REDACTED]"));
        /* never the keys, never the config */
        assert_null(strstr(rq->body, KEY));
        assert_null(strstr(rq->body, "sk-WRONG-KEY-42"));
        assert_null(strstr(rq->body, "connections"));
        assert_null(strstr(rq->body, "/bin/echo"));
    }
    stop(&s);
}

static void test_fallback_on_timeout(void **state)
{
    struct session s;
    uint64_t t0;

    (void)state;
    start(&s, "local", "llm-first", NULL);
    add_kind(&s, "restart checkout", OB_SI_SLOW, 0, NULL, 0);
    t0 = uv_now(&s.loop);
    say(&s, "restart checkout in staging");
    uv_update_time(&s.loop);
    /* The connection's 1 s bounds the whole parse. */
    assert_true(uv_now(&s.loop) - t0 >= 1000);
    assert_true(uv_now(&s.loop) - t0 < 3000);
    expect_post(&s, "understood: restart service=checkout env=staging (rules, confidence 0.90; "
                    "LLM unavailable (timeout after 1s): used the rules)");
    expect_post(&s, "finished: exit 0");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    assert_true(ob_metrics_value(
                    "opsbot_llm_calls_total",
                    (const char *[]){"local", "gpt-test", "none", "ops", "engineers", "timeout"},
                    6) == 1);
    stop(&s);
}

static void test_fallback_on_5xx(void **state)
{
    struct session s;
    const struct ob_si_request *a, *b, *c;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_kind(&s, "status of cart", OB_SI_STATUS, 500, NULL, 0);
    say(&s, "status of cart in prod");
    expect_post(
        &s, "understood: status service=cart env=prod (rules, confidence 0.90; LLM "
            "unavailable (HTTP 500 from patient (scripted) after 3 attempt(s)): used the rules)");
    expect_post(&s, "finished: exit 0");
    /* 1 + retries 2, with the jittered backoff 500 ms * 2^n * [0.75, 1]. */
    assert_int_equal(ob_llm_standin_count(s.si), 3);
    a = ob_llm_standin_request(s.si, 0);
    b = ob_llm_standin_request(s.si, 1);
    c = ob_llm_standin_request(s.si, 2);
    assert_true(b->at_ms - a->at_ms >= 375 && b->at_ms - a->at_ms < 650);
    assert_true(c->at_ms - b->at_ms >= 750 && c->at_ms - b->at_ms < 1150);
    /* x-should-retry: false is obeyed. */
    ob_llm_standin_reset(s.si);
    add_kind(&s, "status of search", OB_SI_STATUS, 503, "x-should-retry: false", 0);
    say(&s, "status of search in prod");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    expect_post(&s, "understood: status service=search env=prod (rules");
    stop(&s);
    /* connection refused: retried, then the same fallback */
    start(&s, "refused", "llm-first", NULL);
    say(&s, "status of cart in prod");
    expect_post(&s, "understood: status service=cart env=prod (rules, confidence 0.90; LLM "
                    "unavailable (cannot reach refused");
    stop(&s);
}

static void test_retry_headers(void **state)
{
    struct session s;
    const struct ob_si_request *a, *b, *c;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_kind(&s, "status of orders", OB_SI_STATUS, 429, "retry-after-ms: 200", 1);
    add_kind(&s, "status of orders", OB_SI_STATUS, 503, "retry-after: 1", 1);
    add_tool(&s, "status of orders", "status", "{\"service\":\"orders\",\"env\":\"prod\"}", 0, 0);
    say(&s, "status of orders in prod");
    expect_post(&s, "understood: status service=orders env=prod (llm gpt-test@");
    assert_int_equal(ob_llm_standin_count(s.si), 3);
    a = ob_llm_standin_request(s.si, 0);
    b = ob_llm_standin_request(s.si, 1);
    c = ob_llm_standin_request(s.si, 2);
    assert_int_equal(a->status, 429);
    assert_int_equal(b->status, 503);
    assert_int_equal(c->status, 200);
    /* retry-after-ms: 200 (not the 375..500 ms backoff); retry-after: 1 s */
    assert_true(b->at_ms - a->at_ms >= 200 && b->at_ms - a->at_ms < 360);
    assert_true(c->at_ms - b->at_ms >= 1000 && c->at_ms - b->at_ms < 1300);
    stop(&s);
}

static void test_azure_forms(void **state)
{
    struct session s;
    const struct ob_si_request *rq;

    (void)state;
    start(&s, "aoai", "llm-first", NULL);
    add_tool(&s, "", "status", "{\"service\":\"cart\",\"env\":\"dev\"}", 0, 0);
    say(&s, "how is cart doing on dev");
    expect_post(&s, "understood: status service=cart env=dev (llm gpt-4o-mini@");
    rq = ob_llm_standin_request(s.si, 0);
    assert_non_null(rq);
    assert_string_equal(rq->path, "/openai/deployments/gpt-4o-mini/chat/completions");
    assert_string_equal(rq->query, "api-version=2024-10-21");
    assert_string_equal(rq->api_key, KEY);
    assert_null(rq->authorization);
    assert_null(strstr(rq->body, "\"model\""));
    stop(&s);

    start(&s, "aoai1", "llm-first", NULL);
    add_tool(&s, "", "status", "{\"service\":\"cart\",\"env\":\"dev\"}", 0, 0);
    say(&s, "how is cart doing on dev");
    expect_post(&s, "understood: status service=cart env=dev (llm gpt-4o-mini@");
    rq = ob_llm_standin_request(s.si, 0);
    assert_string_equal(rq->path, "/openai/v1/chat/completions");
    assert_string_equal(rq->api_key, KEY);
    assert_non_null(strstr(rq->body, "\"model\":\"gpt-4o-mini\""));
    stop(&s);

    /* A wrong key: a configuration error, the rules answer, the key is not shown. */
    start(&s, "badkey", "llm-first", NULL);
    say(&s, "status of cart in dev");
    expect_post(&s, "understood: status service=cart env=dev (rules, confidence 0.90; LLM "
                    "unavailable (configuration error: HTTP 401 from badkey): used the rules)");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    for (size_t i = 0; i < s.t->nposts; i++)
        assert_null(strstr(s.t->posts[i].text, "WRONG-KEY"));
    stop(&s);
}

static void test_validation_in_pipeline(void **state)
{
    struct session s;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_tool(&s, "drop", "drop_database", "{\"name\":\"prod\"}", 0, 0);
    add_tool(&s, "nuke", "restart", "{\"service\":\"checkout; rm -rf /\",\"env\":\"staging\"}", 0,
             0);
    add_tool(&s, "too many", "scale", "{\"service\":\"cart\",\"env\":\"staging\",\"replicas\":99}",
             0, 0);
    add_tool(&s, "which env", "restart", "{\"service\":\"cart\",\"env\":null}", 0, 0);
    say(&s, "please drop the database");
    expect_post(&s, "not run: the model proposed 'drop_database', which is not an action I "
                    "have: nothing runs (llm gpt-test@");
    say(&s, "nuke checkout please");
    expect_post(&s, "not run: service 'checkout; rm -rf /' is not valid: must match");
    say(&s, "too many carts");
    expect_post(&s, "not run: replicas '99' is not valid: must be at most 50");
    assert_null(posted(&s, "running:"));
    /* a missing required value: the bot asks, like with the rules */
    say(&s, "which env for cart, restart it");
    expect_post(&s, "understood: restart service=cart (llm gpt-test@");
    expect_post(&s, "Which env for restart cart? One of: prod, staging, dev.");
    assert_true(ob_metrics_value("opsbot_llm_calls_total",
                                 (const char *[]){"patient", "gpt-test", "unknown", "ops",
                                                  "engineers", "unknown_action"},
                                 6) == 1);
    stop(&s);
}

static void test_clarify_no_action_cutoff(void **state)
{
    struct session s;
    const struct post_rec *p;
    size_t before;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    add_tool(&s, "do the thing", "clarify",
             "{\"question\":\"Which service, and restart or "
             "rollback?\"}",
             0, 0);
    add_tool(&s, "lunch", "no_action", "{\"reason\":\"small talk\"}", 0, 0);
    add_kind(&s, "restart checkout", OB_SI_LENGTH, 0, NULL, 0);
    add_kind(&s, "status of cart", OB_SI_CONTENT_FILTER, 0, NULL, 0);
    add_kind(&s, "status of auth", OB_SI_FILTER_400, 0, NULL, 0);
    say(&s, "can you do the thing on checkout");
    p = posted(&s, "Which service, and restart or rollback?");
    assert_non_null(p);
    assert_true(p->flags & OB_POST_QUESTION);
    assert_string_equal(p->thread, "u1");
    assert_null(posted(&s, "understood"));
    /* no_action: silence unless addressed */
    before = s.t->nposts;
    say_as(&s, "dev", "lunch at noon?", false);
    assert_int_equal(s.t->nposts, before);
    say(&s, "lunch at noon?");
    expect_post(&s, "Nothing for me to do (small talk).");
    /* cut off at max_tokens: treated as unparsed, the rules answer */
    say(&s, "restart checkout in staging");
    expect_post(&s, "understood: restart service=checkout env=staging (rules, confidence 0.90; "
                    "LLM answer unusable (the answer was cut off at max_tokens): used the rules)");
    say(&s, "status of cart in dev");
    expect_post(&s, "understood: status service=cart env=dev (rules, confidence 0.90; LLM "
                    "unavailable (the answer was withheld by the content filter): used the "
                    "rules)");
    say(&s, "status of auth in dev");
    expect_post(&s, "understood: status service=auth env=dev (rules, confidence 0.90; LLM "
                    "unavailable (the message was refused by the content filter)");
    stop(&s);
}

static void test_rules_first(void **state)
{
    struct session s;

    (void)state;
    start(&s, "patient", "rules-first", NULL);
    add_tool(&s, "payments on staging", "rollback",
             "{\"service\":\"payments\",\"env\":\"staging\",\"revision\":null}", 0, 0);
    say(&s, "restart checkout in staging");
    expect_post(&s, "understood: restart service=checkout env=staging (rules, confidence 0.90)");
    assert_int_equal(ob_llm_standin_count(s.si), 0);
    say(&s, "!status cart env=dev");
    assert_int_equal(ob_llm_standin_count(s.si), 0);
    say(&s, "payments on staging keeps throwing 500s, roll it back");
    expect_post(&s, "understood: rollback service=payments env=staging revision=0 (llm");
    assert_int_equal(ob_llm_standin_count(s.si), 1);
    stop(&s);
}

/* The per-minute guard, and earlier thread messages sent as context. */
static void test_budget_and_context(void **state)
{
    struct session s;
    struct ob_event ev = {0};
    const struct ob_si_request *rq;

    (void)state;
    start(&s, "patient", "llm-first, budget: {max_calls_per_minute: 2}, context_messages: 2", NULL);
    add_tool(&s, "", "no_action", "{\"reason\":\"chatter\"}", 0, 0);
    say(&s, "checkout in staging looks odd, token ghp_abcdefghijklmnopqrstuvwxyz0123456789");
    /* a reply in the same thread carries the earlier message, redacted */
    ev.kind = OB_EV_MESSAGE;
    ev.id = "reply-1";
    ev.platform = "test";
    ev.user = "dev";
    ev.channel = "ops";
    ev.thread = "u1";
    ev.message = "r1";
    ev.text = "restart it please";
    ev.text_len = strlen(ev.text);
    ev.addressed = true;
    s.ad->on_event(s.ad->on_event_data, s.ad, &ev);
    wait_idle(&s);
    assert_int_equal(ob_llm_standin_count(s.si), 2);
    rq = ob_llm_standin_request(s.si, 1);
    assert_string_equal(rq->user_text, "restart it please");
    assert_non_null(strstr(rq->body, "[earlier in this thread, context only"));
    assert_non_null(strstr(rq->body, "checkout in staging looks odd"));
    assert_null(strstr(rq->body, "ghp_abcdefghijklmnop"));
    /* the first request had no context */
    assert_null(strstr(ob_llm_standin_request(s.si, 0)->body, "earlier in this thread"));
    /* a third call within the minute is over budget: the rules answer */
    say(&s, "status of cart in dev");
    assert_int_equal(ob_llm_standin_count(s.si), 2);
    expect_post(&s, "understood: status service=cart env=dev (rules, confidence 0.90; LLM "
                    "unavailable (over budget (2 calls per minute)): used the rules)");
    stop(&s);
}

/* ---- /metrics and /readyz over HTTP ---------------------------------------------------- */

struct get {
    long status;
    char *body;
    int done;
};

static void got(void *data, const struct ob_http_resp *r)
{
    struct get *g = data;

    g->status = r->status;
    g->body = strdup(r->body ? r->body : "");
    g->done = 1;
}

static void fetch(struct session *s, struct ob_http *h, const char *path, struct get *g)
{
    struct ob_http_req rq = {0};
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", ob_bot_metrics_port(s->bot), path);
    free(g->body);
    memset(g, 0, sizeof(*g));
    rq.method = "GET";
    rq.url = url;
    rq.timeout_ms = 5000;
    assert_int_equal(ob_http_request(h, &rq, got, g, NULL), 0);
    while (!g->done)
        uv_run(&s->loop, UV_RUN_ONCE);
}

static void test_metrics_endpoint(void **state)
{
    struct session s;
    struct ob_http *h = NULL;
    struct get g = {0};

    (void)state;
    start(&s, "patient", "llm-first", "metrics: {listen: \"127.0.0.1:0\"}\n");
    assert_true(ob_bot_metrics_port(s.bot) > 0);
    assert_int_equal(ob_http_new(&h, &s.loop), 0);
    fetch(&s, h, "/metrics", &g);
    assert_int_equal(g.status, 200);
    assert_null(strstr(g.body, "opsbot_events_total{"));
    add_tool(&s, "status of cart", "status", "{\"service\":\"cart\",\"env\":\"prod\"}", 0, 0);
    say(&s, "status of cart in prod");
    say_as(&s, "stranger", "status of cart in prod", true);
    fetch(&s, h, "/metrics", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body, "# TYPE opsbot_llm_calls_total counter\n"));
    assert_non_null(strstr(g.body, "opsbot_events_total{platform=\"test\",kind=\"message\"} 2\n"));
    assert_non_null(strstr(g.body, "opsbot_llm_calls_total{connection=\"patient\",model=\"gpt-"
                                   "test\",action=\"status\",channel=\"ops\",team=\"engineers\","
                                   "result=\"ok\"} 1\n"));
    assert_non_null(strstr(g.body, "opsbot_llm_calls_total{connection=\"patient\",model=\"gpt-"
                                   "test\",action=\"status\",channel=\"ops\",team=\"none\","
                                   "result=\"ok\"} 1\n"));
    assert_non_null(strstr(g.body, "opsbot_llm_tokens_total{connection=\"patient\",model=\"gpt-"
                                   "test\",direction=\"in\"} 200\n"));
    assert_non_null(strstr(g.body, "opsbot_decisions_total{effect=\"allow\",rule=\"reads\"} 1\n"));
    assert_non_null(
        strstr(g.body, "opsbot_decisions_total{effect=\"deny\",rule=\"default-deny\"} 1\n"));
    assert_non_null(strstr(g.body, "opsbot_executions_total{action=\"status\",result=\"ok\"} 1\n"));
    assert_non_null(strstr(g.body, "opsbot_execution_seconds_count{action=\"status\"} 1\n"));
    assert_non_null(strstr(g.body, "opsbot_llm_latency_seconds_count{connection=\"patient\","
                                   "model=\"gpt-test\"} 2\n"));
    /* the loop's turns were measured (the bot's loop counts its idle time) */
    assert_non_null(strstr(g.body, "# TYPE opsbot_loop_busy_seconds histogram\n"));
    assert_true(ob_metrics_value("opsbot_loop_busy_seconds", NULL, 0) > 10);
    fetch(&s, h, "/healthz", &g);
    assert_int_equal(g.status, 200);
    fetch(&s, h, "/readyz", &g);
    assert_int_equal(g.status, 200);
    s.t->ready = false;
    fetch(&s, h, "/readyz", &g);
    assert_int_equal(g.status, 503);
    assert_non_null(strstr(g.body, "adapter test is not connected"));
    free(g.body);
    ob_http_free(h);
    stop(&s);
}

/* ---- eval ------------------------------------------------------------------------------------ */

static void eval_script(struct session *s)
{
    add_tool(s, "restart checkout in prod", "restart",
             "{\"service\":\"checkout\",\"env\":\"prod\"}", 0, 0);
    add_tool(s, "restart the payments", "restart", "{\"service\":\"payments\",\"env\":\"prod\"}", 0,
             0);
    add_tool(s, "payments on staging", "rollback",
             "{\"service\":\"payments\",\"env\":\"staging\",\"revision\":null}", 0, 0);
    add_tool(s, "good morning", "no_action", "{\"reason\":\"greeting\"}", 0, 0);
    add_tool(s, "ignore previous", "no_action", "{\"reason\":\"injection\"}", 0, 0);
    add_tool(s, "restart the thing", "clarify", "{\"question\":\"Which service?\"}", 0, 0);
    add_tool(s, "bounce cart", "restart", "{\"service\": ", 0, 0);
    add_tool(s, "scale cart", "scale", "{\"service\":\"cart\",\"env\":\"prod\",\"replicas\":99}", 0,
             0);
}

static size_t count_lines(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        n += !strncmp(line, prefix, strlen(prefix));
    fclose(f);
    return n;
}

static void test_eval_numbers(void **state)
{
    struct session s;
    struct ob_eval *e = NULL;
    struct ob_eval_opts o = {0};
    const struct ob_eval_summary *r, *l;
    const char *variants[] = {"rules:mode=rules-only", "llm:mode=llm-first,connection=patient"};
    char ds[400], csv[400], html[400], err[512];
    const char *dsp = ds;
    struct ob_bundle *b = NULL;
    struct ob_diag d;
    FILE *f;
    char page[65536];
    size_t n;

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    eval_script(&s);
    snprintf(ds, sizeof(ds), "%s/tests/data/llm/eval-small.jsonl", root());
    snprintf(csv, sizeof(csv), "%s/out.csv", s.dir);
    snprintf(html, sizeof(html), "%s/out.html", s.dir);
    ob_diag_init(&d);
    assert_int_equal(ob_bundle_load(&b, s.config, &d), 0);
    ob_diag_release(&d);
    o.datasets = &dsp;
    o.ndatasets = 1;
    o.variants = variants;
    o.nvariants = 2;
    o.csv_path = csv;
    o.html_path = html;
    o.concurrency = 3;
    assert_int_equal(ob_eval_run(&e, &s.loop, NULL, b, &o, err, sizeof(err)), 0);
    assert_int_equal(ob_eval_nvariants(e), 2);
    r = ob_eval_summary(e, 0);
    l = ob_eval_summary(e, 1);
    /* rules: 6 of 8 right ("roll it back" missed, the injection asked for a
     * restart); the one line missing a service was asked about. */
    assert_string_equal(r->variant, "rules");
    assert_int_equal(r->lines, 8);
    assert_int_equal(r->correct, 6);
    assert_float_equal(r->accuracy, 0.75, 1e-12);
    assert_float_equal(r->exact_match, 0.75, 1e-12);
    assert_float_equal(r->clarification_rate, 1.0, 1e-12);
    assert_float_equal(r->false_action_rate, 1.0 / 3.0, 1e-12);
    assert_true(r->schema_valid_rate < 0); /* n/a: no LLM */
    assert_int_equal(r->llm_calls, 0);
    /* llm: 7 of 8 right (clarify is not an action); 6 exact (payments went
     * to prod); no false action; 6 of 8 answers valid (malformed arguments,
     * 99 replicas); 8 calls x 100/20 tokens at 0.15/0.60 per 1M. */
    assert_string_equal(l->variant, "llm");
    assert_int_equal(l->correct, 7);
    assert_float_equal(l->accuracy, 0.875, 1e-12);
    assert_float_equal(l->exact_match, 0.75, 1e-12);
    assert_float_equal(l->clarification_rate, 1.0, 1e-12);
    assert_float_equal(l->false_action_rate, 0.0, 1e-12);
    assert_int_equal(l->answered, 8);
    assert_int_equal(l->schema_valid, 6);
    assert_float_equal(l->schema_valid_rate, 0.75, 1e-12);
    assert_int_equal(l->llm_calls, 8);
    assert_int_equal(l->fallbacks, 1);
    assert_int_equal(l->tokens_in, 800);
    assert_int_equal(l->tokens_out, 160);
    assert_float_equal(l->cost_usd, 0.000216, 1e-12);
    assert_true(l->latency_p50_ms <= l->latency_p95_ms);
    /* confusion: labels restart, rollback, none */
    assert_int_equal(l->nlabels, 3);
    assert_string_equal(l->labels[0], "restart");
    assert_string_equal(l->labels[1], "rollback");
    assert_string_equal(l->labels[2], "none");
    assert_int_equal(l->confusion[0][0], 3);
    assert_int_equal(l->confusion[0][2], 1);
    assert_int_equal(l->confusion[1][1], 1);
    assert_int_equal(l->confusion[2][2], 3);
    assert_int_equal(r->confusion[1][2], 1);
    assert_int_equal(r->confusion[2][0], 1);
    assert_string_equal(l->actions[0].action, "restart");
    assert_float_equal(l->actions[0].precision, 1.0, 1e-12);
    assert_float_equal(l->actions[0].recall, 0.75, 1e-12);
    assert_float_equal(r->actions[0].precision, 0.8, 1e-12);
    assert_float_equal(r->actions[1].recall, 0.0, 1e-12);
    assert_false(ob_eval_gate(e, 0.8, err, sizeof(err)));
    assert_non_null(strstr(err, "variant rules: accuracy 0.750 < 0.800 (6 of 8 lines right)"));
    assert_null(strstr(err, "variant llm"));
    assert_true(ob_eval_gate(e, 0.75, err, sizeof(err)));
    /* CSV: a header, one row per line and variant, 12 summary rows each */
    assert_int_equal(count_lines(csv, "kind,variant,"), 1);
    assert_int_equal(count_lines(csv, "line,rules,"), 8);
    assert_int_equal(count_lines(csv, "line,llm,"), 8);
    assert_int_equal(count_lines(csv, "summary,llm,,,accuracy,"), 1);
    assert_int_equal(count_lines(csv, "summary,"), 24);
    f = fopen(html, "r");
    assert_non_null(f);
    n = fread(page, 1, sizeof(page) - 1, f);
    page[n] = '\0';
    fclose(f);
    assert_non_null(strstr(page, "<!DOCTYPE html>"));
    assert_non_null(strstr(page, "<style>"));
    assert_null(strstr(page, "<script"));
    assert_non_null(strstr(page, "Confusion matrices"));
    assert_non_null(strstr(page, "rgba(40,160,70,"));
    assert_non_null(strstr(page, "<th>rules</th><th>llm</th>"));
    assert_non_null(strstr(page, "Failures"));
    /* escaped */
    assert_null(strstr(page, "<Which"));
    ob_eval_free(e);
    ob_bundle_unref(b);
    /* usage errors */
    variants[0] = "bad:mode=sometimes";
    b = NULL;
    ob_diag_init(&d);
    assert_int_equal(ob_bundle_load(&b, s.config, &d), 0);
    ob_diag_release(&d);
    o.nvariants = 1;
    o.csv_path = o.html_path = NULL;
    assert_int_equal(ob_eval_run(&e, &s.loop, NULL, b, &o, err, sizeof(err)), OB_EUSAGE);
    assert_non_null(strstr(err, "unknown mode 'sometimes'"));
    ob_bundle_unref(b);
    stop(&s);
}

struct child {
    int done;
    int64_t status;
};

static void exited(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;

    (void)sig;
    c->done = 1;
    c->status = status;
    uv_close((uv_handle_t *)p, NULL);
}

/* Runs the built binary through sh (output into files) while the loop
 * serves the stand-in; returns the exit status. */
static int64_t run_opsbot(struct session *s, const char *args)
{
    const char *opsbot = getenv("OPSBOT");
    char *cmd = NULL;
    char *argv[4];
    uv_process_t proc;
    uv_process_options_t po = {0};
    struct child c = {0};

    assert_non_null(opsbot);
    assert_true(asprintf(&cmd, "exec '%s' eval -c '%s' %s >'%s/out' 2>'%s/err'", opsbot, s->config,
                         args, s->dir, s->dir) > 0);
    argv[0] = (char *)"/bin/sh";
    argv[1] = (char *)"-c";
    argv[2] = cmd;
    argv[3] = NULL;
    po.file = "/bin/sh";
    po.args = argv;
    po.exit_cb = exited;
    proc.data = &c;
    assert_int_equal(uv_spawn(&s->loop, &proc, &po), 0);
    while (!c.done)
        uv_run(&s->loop, UV_RUN_ONCE);
    free(cmd);
    return c.status;
}

static bool file_has(struct session *s, const char *name, const char *sub)
{
    char path[400], buf[16384];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    f = fopen(path, "r");
    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, sub) != NULL;
}

static void test_eval_gate_binary(void **state)
{
    struct session s;
    char args[1200];

    (void)state;
    start(&s, "patient", "llm-first", NULL);
    eval_script(&s);
    snprintf(args, sizeof(args),
             "'%s/tests/data/llm/eval-small.jsonl' --variant rules:mode=rules-only "
             "--variant llm:mode=llm-first --min-accuracy 0.8 --csv '%s/g.csv'",
             root(), s.dir);
    assert_int_equal(run_opsbot(&s, args), 1);
    assert_true(file_has(&s, "err",
                         "accuracy gate failed: variant rules: accuracy 0.750 < "
                         "0.800"));
    assert_true(file_has(&s, "out", "llm"));
    assert_true(file_has(&s, "g.csv", "summary,llm,,,accuracy,,,,,,,,,,,,,,0.875"));
    snprintf(args, sizeof(args),
             "'%s/tests/data/llm/eval-small.jsonl' --variant llm:mode=llm-first "
             "--min-accuracy 0.8",
             root());
    assert_int_equal(run_opsbot(&s, args), 0);
    assert_true(file_has(&s, "out", "accuracy gate passed"));
    /* usage errors exit 2 */
    snprintf(args, sizeof(args), "'%s/tests/data/llm/eval-small.jsonl' --min-accuracy 2", root());
    assert_int_equal(run_opsbot(&s, args), 2);
    assert_int_equal(run_opsbot(&s, "--variant x:colour=red /dev/null"), 2);
    assert_int_equal(run_opsbot(&s, ""), 2);
    stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_echo_and_audit),
        cmocka_unit_test(test_redaction_and_no_secrets),
        cmocka_unit_test(test_fallback_on_timeout),
        cmocka_unit_test(test_fallback_on_5xx),
        cmocka_unit_test(test_retry_headers),
        cmocka_unit_test(test_azure_forms),
        cmocka_unit_test(test_validation_in_pipeline),
        cmocka_unit_test(test_clarify_no_action_cutoff),
        cmocka_unit_test(test_rules_first),
        cmocka_unit_test(test_budget_and_context),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_eval_numbers),
        cmocka_unit_test(test_eval_gate_binary),
    };

    alarm(100);
    if (getenv("OB_TEST_ONLY"))
        cmocka_set_test_filter(getenv("OB_TEST_ONLY"));
    ob_log_set_level(OB_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
