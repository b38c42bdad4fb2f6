/* Discord adapter, end to end: the real pipeline (ob_bundle_load,
 * ob_bot_new, ob_bot_start) on one loop with the local Discord
 * (tests/standins/discord_standin.c), plus unit tests of the pure parsing,
 * routing and signature functions. Each end-to-end test has its own loop,
 * state directory and stand-in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "discord_standin.h"
#include "e2e_fixture.h"
#include "opsbot/bot.h"
#include "opsbot/discord.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/platform.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define BOT "500000000000000001"
#define APP "600000000000000001"
#define GUILD "300000000000000001"
#define CHAN "200000000000000001"
#define DMCHAN "200000000000000009"
#define DEV "100000000000000001"
#define ONCALL "100000000000000002"
#define STRANGER "100000000000000003"
#define TOKEN "standin.bot-token"
#define ID_LEN 32 /* a snowflake */

struct fx {
    struct e2e e; /* first: the hooks get &fx->e */
    struct discord_standin *sd;
    int64_t ready_ms;
};

static struct fx fxg;

/* ---- fixture ---------------------------------------------------------------- */

static void free_standin(struct e2e *e)
{
    discord_standin_free(((struct fx *)e)->sd);
}

static const char *const test_env[] = {
    "DISCORD_LISTEN",       "DISCORD_IX_PORT",           "DISCORD_PUBLIC_KEY",
    "DISCORD_INVALID_WAIT", "DISCORD_IDENTIFY_INTERVAL", NULL};
static const struct e2e_hooks hooks = {
    .name = "discord", .free_standin = free_standin, .env = test_env};

/* Connected to the Gateway: READY seen. */
static void wait_ready(struct fx *f)
{
    assert_true(e2e_wait_log(&f->e, "connected to the Gateway as", 5000));
}

static void fx_start_opts(struct fx *f, const char *config, const char *token,
                          const struct discord_standin_opts *o)
{
    memset(f, 0, sizeof(*f));
    e2e_begin(&f->e, &hooks);
    assert_int_equal(discord_standin_new(&f->sd, &f->e.loop, o), 0);
    setenv("DISCORD_API_BASE", discord_standin_api_base(f->sd), 1);
    setenv("DISCORD_TOKEN", token ? token : TOKEN, 1);
    e2e_start_bot(&f->e, config);
}

static void fx_start(struct fx *f)
{
    fx_start_opts(f, "opsbot.yaml", NULL, NULL);
    wait_ready(f);
    f->ready_ms = ob_now_ms();
}

static const struct ds_call *post(struct fx *f, long idx)
{
    assert_true(idx >= 0);
    return discord_standin_call(f->sd, (size_t)idx);
}

/* DEV writes text in channel (of GUILD, or DMCHAN: the DM), a new message;
 * id (ID_LEN bytes) gets its id. Returns its s. */
static long say(struct fx *f, const char *channel, const char *text, char *id)
{
    const char *guild = strcmp(channel, DMCHAN) ? GUILD : NULL;
    long s = discord_standin_message(f->sd, channel, guild, DEV, text, id, ID_LEN);

    assert_true(s > 0);
    return s;
}

/* The request ran to its end: the "finished: exit 0" post. */
static const struct ds_call *finished_ok(struct fx *f)
{
    return post(f, discord_standin_wait_post(f->sd, "finished: exit 0", 8000));
}

/* Waits until n "finished:" posts exist: no action may still run when a
 * test stops. */
static void wait_finished(struct fx *f, size_t n)
{
    assert_true(discord_standin_wait_posts(f->sd, "finished:", n, 8000));
}

/* Every message opsbot created went into channel (a thread), and every call
 * carried the bot token and a DiscordBot User-Agent. */
static void assert_all_in(struct fx *f, const char *channel)
{
    for (size_t i = 0; i < discord_standin_ncalls(f->sd); i++) {
        const struct ds_call *c = discord_standin_call(f->sd, i);

        assert_true(c->auth_ok);
        assert_true(c->ua_ok);
        if (strcmp(c->kind, DS_CREATE_MESSAGE) || c->status != 200)
            continue;
        if (strcmp(c->channel, channel))
            fail_msg("post %zu (\"%.60s\") went to %s, not %s", i, c->content, c->channel, channel);
        assert_true(c->pings_suppressed);
    }
}

/* Starts a prod restart by mention in CHAN; returns the approval post. */
static const struct ds_call *ask_prod_restart(struct fx *f, char *mid, size_t len)
{
    const struct ds_call *c;

    assert_true(discord_standin_message(f->sd, CHAN, GUILD, DEV,
                                        "<@" BOT "> restart checkout in prod", mid, len) > 0);
    c = post(f, discord_standin_wait_post(f->sd, "APPROVAL NEEDED", 5000));
    /* A thread was started from the request: its id is the message's. */
    assert_string_equal(c->channel, mid);
    assert_true(discord_standin_is_thread(f->sd, mid));
    assert_true(c->has_buttons);
    assert_int_equal(discord_standin_count(f->sd, DS_START_THREAD), 1);
    assert_true(
        discord_standin_find_post(f->sd, "understood: restart service=checkout env=prod", 0) >= 0);
    /* The stand-in records a post before opsbot has read the answer (and
     * learnt the message id): no vote can come before that. */
    discord_standin_wait(f->sd, NULL, NULL, 100);
    return c;
}

static const struct ds_call *find_edit(struct fx *f, const char *message)
{
    const struct ds_call *found = NULL;

    for (size_t i = 0; i < discord_standin_ncalls(f->sd); i++) {
        const struct ds_call *c = discord_standin_call(f->sd, i);

        if (!strcmp(c->kind, DS_EDIT_MESSAGE) && !strcmp(c->message, message))
            found = c;
    }
    return found;
}

/* ---- end to end ----------------------------------------------------------------- */

static void test_mention_reaction_flow(void **state)
{
    struct fx *F = &fxg;
    char mid[ID_LEN], approval[ID_LEN];
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    /* Identify: exactly the intents needed, v10 JSON. */
    assert_int_equal(discord_standin_last_intents(F->sd), 46593);
    assert_non_null(strstr(discord_standin_last_query(F->sd), "v=10"));
    assert_non_null(strstr(discord_standin_last_query(F->sd), "encoding=json"));
    assert_string_equal(discord_standin_last_path(F->sd), "/gateway");
    c = ask_prod_restart(F, mid, sizeof(mid));
    ob_strlcpy(approval, c->message, sizeof(approval));
    assert_int_equal(discord_standin_count_posts(F->sd, "understood:"), 1);
    /* ✅ by the on-call engineer, on the approval message in the thread. */
    assert_true(
        discord_standin_reaction(F->sd, ONCALL, mid, GUILD, approval, "\xe2\x9c\x85", true) > 0);
    c = finished_ok(F);
    assert_string_equal(c->channel, mid);
    assert_true(discord_standin_find_post(F->sd, "approved by discord:" ONCALL, 0) >= 0);
    assert_int_equal(discord_standin_count_posts(F->sd, "running:"), 1);
    assert_all_in(F, mid);
    /* The approval message was edited in place, buttons gone. */
    c = find_edit(F, approval);
    assert_non_null(c);
    assert_string_equal(c->channel, mid);
    assert_non_null(strstr(c->content, "APPROVED by discord:" ONCALL));
    assert_true(c->components_empty);
    assert_int_equal(c->status, 200);
    /* One thread for the whole conversation. */
    assert_int_equal(discord_standin_count(F->sd, DS_START_THREAD), 1);
    assert_int_equal(discord_standin_violations(F->sd), 0);
    e2e_end(&F->e);
}

static bool callback_cond(struct discord_standin *s, void *arg)
{
    return discord_standin_count(s, DS_CALLBACK) >= (size_t)(intptr_t)arg;
}

static const struct ds_call *last_of(struct fx *f, const char *kind)
{
    const struct ds_call *found = NULL;

    for (size_t i = 0; i < discord_standin_ncalls(f->sd); i++)
        if (!strcmp(discord_standin_call(f->sd, i)->kind, kind))
            found = discord_standin_call(f->sd, i);
    return found;
}

static void test_button_flow(void **state)
{
    struct fx *F = &fxg;
    char mid[ID_LEN], approval[ID_LEN], ix[ID_LEN];
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    c = ask_prod_restart(F, mid, sizeof(mid));
    ob_strlcpy(approval, c->message, sizeof(approval));
    assert_true(discord_standin_button(F->sd, ONCALL, mid, GUILD, approval, "opsbot:approve", ix,
                                       sizeof(ix)) > 0);
    assert_true(discord_standin_wait(F->sd, callback_cond, (void *)1, 3000));
    c = last_of(F, DS_CALLBACK);
    assert_string_equal(c->interaction, ix);
    assert_int_equal(c->cb_type, 6); /* DEFERRED_UPDATE_MESSAGE */
    assert_int_equal(c->status, 204);
    assert_true(c->cb_latency_ms < 3000);
    c = finished_ok(F);
    assert_string_equal(c->channel, mid);
    assert_true(discord_standin_find_post(F->sd, "approved by discord:" ONCALL, 0) >= 0);
    c = find_edit(F, approval);
    assert_non_null(c);
    assert_non_null(strstr(c->content, "APPROVED by discord:" ONCALL));
    assert_true(c->components_empty);
    assert_false(c->has_buttons);
    assert_all_in(F, mid);
    e2e_end(&F->e);
}

static void test_stranger_refused(void **state)
{
    struct fx *F = &fxg;
    char mid[ID_LEN], approval[ID_LEN], ix[ID_LEN];
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    c = ask_prod_restart(F, mid, sizeof(mid));
    ob_strlcpy(approval, c->message, sizeof(approval));
    assert_true(
        discord_standin_reaction(F->sd, STRANGER, mid, GUILD, approval, "\xe2\x9c\x85", true) > 0);
    c = post(F, discord_standin_wait_post(F->sd, "vote not counted", 5000));
    assert_non_null(strstr(c->content, "discord:" STRANGER));
    assert_string_equal(c->channel, mid);
    /* A stranger's button press: answered (no error shown), not counted. */
    assert_true(discord_standin_button(F->sd, STRANGER, mid, GUILD, approval, "opsbot:approve", ix,
                                       sizeof(ix)) > 0);
    assert_true(discord_standin_wait(F->sd, callback_cond, (void *)1, 3000));
    assert_int_equal(last_of(F, DS_CALLBACK)->cb_type, 6);
    /* The requester's own Deny button withdraws it. */
    assert_true(discord_standin_button(F->sd, DEV, mid, GUILD, approval, "opsbot:deny", ix,
                                       sizeof(ix)) > 0);
    post(F, discord_standin_wait_post(F->sd, "not run", 5000));
    assert_int_equal(discord_standin_count_posts(F->sd, "running:"), 0);
    assert_int_equal(discord_standin_count_posts(F->sd, "vote not counted"), 2);
    assert_all_in(F, mid);
    e2e_end(&F->e);
}

static bool resumed_cond(struct discord_standin *s, void *arg)
{
    return discord_standin_resumes(s) >= (size_t)(intptr_t)arg && discord_standin_live(s) > 0;
}

static void test_zombie_resumes(void **state)
{
    struct fx *F = &fxg;
    char m1[ID_LEN], m2[ID_LEN];
    long s2;
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    say(F, CHAN, "<@" BOT "> status of checkout in staging", m1);
    finished_ok(F);
    /* The connection goes zombie: no ACKs, nothing delivered. */
    discord_standin_stop_acks(F->sd, true);
    /* A resume replays the two events before its seq too: duplicates. */
    discord_standin_replay_overlap(F->sd, 2);
    s2 = say(F, CHAN, "<@" BOT "> status of checkout in dev", m2);
    assert_true(discord_standin_wait(F->sd, resumed_cond, (void *)1, 5000));
    /* Closed with a code that keeps the session, resumed at the resume URL. */
    assert_int_not_equal(discord_standin_client_close_code(F->sd), 1000);
    assert_int_not_equal(discord_standin_client_close_code(F->sd), 1001);
    assert_int_not_equal(discord_standin_client_close_code(F->sd), 0);
    assert_string_equal(discord_standin_last_path(F->sd), "/resume");
    assert_int_equal(discord_standin_last_resume_seq(F->sd), s2 - 1);
    assert_int_equal(discord_standin_identifies(F->sd), 1);
    c = post(F, discord_standin_wait_post(F->sd, "status service=checkout env=dev", 8000));
    assert_string_equal(c->channel, m2);
    wait_finished(F, 2);
    discord_standin_wait(F->sd, NULL, NULL, 300);
    /* Nothing lost, nothing run twice. */
    assert_int_equal(
        discord_standin_count_posts(F->sd, "understood: status service=checkout env=staging"), 1);
    assert_int_equal(
        discord_standin_count_posts(F->sd, "understood: status service=checkout env=dev"), 1);
    assert_true(e2e_log_has(&F->e, "zombied"));
    assert_true(e2e_log_has(&F->e, "resumed the Gateway session"));
    e2e_end(&F->e);
}

static bool identifies_cond(struct discord_standin *s, void *arg)
{
    return discord_standin_identifies(s) >= (size_t)(intptr_t)arg && discord_standin_live(s) > 0;
}

static void test_invalid_session_reidentifies(void **state)
{
    struct fx *F = &fxg;
    char m[ID_LEN];
    int64_t t0;

    (void)state;
    setenv("DISCORD_INVALID_WAIT", "1s", 1);
    setenv("DISCORD_IDENTIFY_INTERVAL", "2s", 1);
    fx_start(F);
    t0 = ob_now_ms();
    assert_int_equal(discord_standin_invalid_session(F->sd, false), 0);
    assert_true(discord_standin_wait(F->sd, identifies_cond, (void *)2, 8000));
    /* At the original URL, identified afresh, not before the identify
     * interval since the first one (and the 1/5..1 s wait). */
    assert_string_equal(discord_standin_last_path(F->sd), "/gateway");
    assert_int_equal(discord_standin_resumes(F->sd), 0);
    assert_true(ob_now_ms() - t0 >= 200);
    assert_true(ob_now_ms() - F->ready_ms >= 1900);
    assert_true(e2e_log_has(&F->e, "invalid session (op 9): identifying afresh"));
    say(F, CHAN, "<@" BOT "> status of checkout in staging", m);
    finished_ok(F);
    e2e_end(&F->e);
}

static bool heartbeats_cond(struct discord_standin *s, void *arg)
{
    return discord_standin_heartbeats(s) >= (size_t)(intptr_t)arg;
}

static void test_reconnect_ops(void **state)
{
    struct fx *F = &fxg;
    struct discord_standin_opts o = {0};
    size_t hb;
    int64_t t0;
    char m[ID_LEN];

    (void)state;
    o.heartbeat_ms = 5000; /* slow beats: op 1 must be answered at once */
    fx_start_opts(F, "opsbot.yaml", NULL, &o);
    wait_ready(F);
    hb = discord_standin_heartbeats(F->sd);
    t0 = ob_now_ms();
    assert_int_equal(discord_standin_heartbeat_request(F->sd), 0);
    assert_true(discord_standin_wait(F->sd, heartbeats_cond, (void *)(intptr_t)(hb + 1), 2000));
    assert_true(ob_now_ms() - t0 < 1000);
    /* op 7: resume at the resume URL. */
    assert_int_equal(discord_standin_reconnect(F->sd), 0);
    assert_true(discord_standin_wait(F->sd, resumed_cond, (void *)1, 5000));
    assert_string_equal(discord_standin_last_path(F->sd), "/resume");
    /* op 9 true: resume again. */
    assert_int_equal(discord_standin_invalid_session(F->sd, true), 0);
    assert_true(discord_standin_wait(F->sd, resumed_cond, (void *)2, 5000));
    /* A resumable close code: resume. */
    assert_int_equal(discord_standin_close(F->sd, 4000, "Unknown error."), 0);
    assert_true(discord_standin_wait(F->sd, resumed_cond, (void *)3, 5000));
    assert_int_equal(discord_standin_identifies(F->sd), 1);
    say(F, CHAN, "<@" BOT "> status of checkout in staging", m);
    finished_ok(F);
    e2e_end(&F->e);
}

static void test_fatal_4004(void **state)
{
    struct fx *F = &fxg;
    int64_t t0 = ob_now_ms();

    (void)state;
    fx_start_opts(F, "opsbot.yaml", NULL, NULL);
    discord_standin_fail_identify(F->sd, 4004);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_true(ob_now_ms() - t0 < 3000);
    assert_int_equal(ob_bot_exit_status(F->e.bot), 1);
    assert_int_equal(e2e_log_count(&F->e, "the Gateway rejected the bot token (close 4004"), 1);
    assert_true(e2e_log_has(&F->e, "check platforms.discord.token"));
    assert_false(e2e_log_has(&F->e, TOKEN));
    discord_standin_wait(F->sd, NULL, NULL, 300);
    assert_int_equal(discord_standin_identifies(F->sd), 1);
    assert_int_equal(discord_standin_connections(F->sd), 1);
    e2e_end(&F->e);
}

static void test_fatal_4014(void **state)
{
    struct fx *F = &fxg;
    struct discord_standin_opts o = {0};

    (void)state;
    o.message_content_off = true;
    fx_start_opts(F, "opsbot.yaml", NULL, &o);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_int_equal(ob_bot_exit_status(F->e.bot), 1);
    assert_int_equal(e2e_log_count(&F->e, "close 4014"), 1);
    assert_true(e2e_log_has(&F->e, "enable the Message Content Intent in the developer portal"));
    discord_standin_wait(F->sd, NULL, NULL, 300);
    assert_int_equal(discord_standin_identifies(F->sd), 1);
    e2e_end(&F->e);
}

static void test_bad_token_rest_401(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    fx_start_opts(F, "opsbot.yaml", "wrong.token-secret-42", NULL);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_true(e2e_log_has(&F->e, "the bot token was rejected (HTTP 401)"));
    assert_false(e2e_log_has(&F->e, "secret-42"));
    assert_int_equal(discord_standin_connections(F->sd), 0);
    assert_int_equal(discord_standin_count(F->sd, DS_GATEWAY_BOT), 1);
    e2e_end(&F->e);
}

/* The posts of one request (replies to root) in arrival order must be
 * understood < running <= finished. */
static void assert_order(struct fx *f, const char *root)
{
    long u = -1, r = -1, fin = -1;

    for (size_t i = 0; i < discord_standin_ncalls(f->sd); i++) {
        const struct ds_call *c = discord_standin_call(f->sd, i);

        if (strcmp(c->kind, DS_CREATE_MESSAGE) || c->status != 200 || strcmp(c->reply_to, root))
            continue;
        if (strstr(c->content, "understood:"))
            u = (long)i;
        if (strstr(c->content, "running:"))
            r = (long)i;
        if (strstr(c->content, "finished:"))
            fin = (long)i;
    }
    if (!(u >= 0 && u < r && r <= fin)) /* a quick result shares "running:" */
        fail_msg("request %s: understood %ld, running %ld, finished %ld", root, u, r, fin);
}

static void test_burst_under_429(void **state)
{
    struct fx *F = &fxg;
    struct discord_standin_opts o = {0};
    char ids[5][ID_LEN];
    size_t forced = 0, retried_global = 0;
    const char *envs[] = {"staging", "dev", "staging", "dev", "staging"};

    (void)state;
    o.message_limit = 3;
    o.message_window_ms = 400;
    fx_start_opts(F, "opsbot.yaml", NULL, &o);
    wait_ready(F);
    discord_standin_ratelimit(F->sd, DS_CREATE_MESSAGE, 1, 300, false);
    for (int i = 0; i < 5; i++) {
        char text[64];

        snprintf(text, sizeof(text), "restart checkout in %s", envs[i]);
        say(F, DMCHAN, text, ids[i]);
    }
    /* Half way through, a global 429. */
    assert_true(discord_standin_wait_post(F->sd, "running:", 8000) >= 0);
    discord_standin_ratelimit(F->sd, DS_CREATE_MESSAGE, 1, 200, true);
    assert_true(discord_standin_wait_posts(F->sd, "finished: exit 0", 5, 15000));
    for (int i = 0; i < 5; i++)
        assert_order(F, ids[i]);
    for (size_t i = 0; i < discord_standin_ncalls(F->sd); i++) {
        const struct ds_call *c = discord_standin_call(F->sd, i);

        forced += c->forced;
        retried_global += c->forced && c->status == 429;
        /* DMs: replies, never threads. */
        assert_string_not_equal(c->kind, DS_START_THREAD);
        if (!strcmp(c->kind, DS_CREATE_MESSAGE))
            assert_string_equal(c->channel, DMCHAN);
    }
    assert_int_equal(forced, 2);
    assert_int_equal(retried_global, 2);
    /* The client respected X-RateLimit-Remaining / Reset-After. */
    assert_int_equal(discord_standin_violations(F->sd), 0);
    assert_int_equal(discord_standin_count_posts(F->sd, "understood:"), 5);
    assert_int_equal(discord_standin_count_posts(F->sd, "running:"), 5);
    assert_true(e2e_log_has(&F->e, "rate limited (429, global)"));
    e2e_end(&F->e);
}

static void test_slash_command(void **state)
{
    struct fx *F = &fxg;
    char ix[ID_LEN];
    const struct ds_call *c, *ack;

    (void)state;
    fx_start(F);
    assert_true(discord_standin_slash(F->sd, DEV, CHAN, GUILD, "status of checkout in staging", ix,
                                      sizeof(ix)) > 0);
    assert_true(discord_standin_wait(F->sd, callback_cond, (void *)1, 3000));
    ack = last_of(F, DS_CALLBACK);
    assert_int_equal(ack->cb_type, 4);
    assert_int_equal(ack->status, 200);
    assert_true(ack->cb_latency_ms < 3000);
    assert_non_null(strstr(ack->content, "status of checkout in staging"));
    assert_true(ack->pings_suppressed);
    c = finished_ok(F);
    /* Answered in a thread started from the acknowledgement message. */
    assert_string_equal(c->channel, ack->message);
    assert_true(discord_standin_is_thread(F->sd, ack->message));
    e2e_end(&F->e);
}

static void test_dm_and_thread_messages(void **state)
{
    struct fx *F = &fxg;
    char m[ID_LEN], m2[ID_LEN];
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    /* A DM needs no mention; the answers are replies (no threads in DMs). */
    say(F, DMCHAN, "status of checkout in staging", m);
    c = finished_ok(F);
    assert_string_equal(c->channel, DMCHAN);
    assert_string_equal(c->reply_to, m);
    assert_int_equal(discord_standin_count(F->sd, DS_START_THREAD), 0);
    /* A channel message without a mention is not for the bot. */
    say(F, CHAN, "restart checkout in staging", m2);
    /* ... but a mention inside a known thread answers in that thread. */
    assert_true(discord_standin_dispatch(F->sd, "THREAD_CREATE",
                                         "{\"id\":\"210000000000000001\",\"type\":11,"
                                         "\"parent_id\":\"" CHAN "\",\"guild_id\":\"" GUILD
                                         "\",\"name\":\"ops talk\"}") > 0);
    say(F, "210000000000000001", "<@!" BOT "> status of checkout in dev", m2);
    c = post(F, discord_standin_wait_post(F->sd, "status service=checkout env=dev", 8000));
    assert_string_equal(c->channel, "210000000000000001");
    wait_finished(F, 2);
    assert_int_equal(discord_standin_count(F->sd, DS_START_THREAD), 0);
    assert_int_equal(discord_standin_count_posts(F->sd, "understood:"), 2);
    e2e_end(&F->e);
}

/* A missing parameter: opsbot asks the person (pinging only them); a plain
 * answer in the thread (no mention needed) or, in a DM, the next message,
 * continues the request. */
static void test_questions(void **state)
{
    struct fx *F = &fxg;
    char m[ID_LEN], a[ID_LEN];
    const struct ds_call *c;

    (void)state;
    fx_start(F);
    say(F, CHAN, "<@" BOT "> restart checkout", m);
    c = post(F, discord_standin_wait_post(F->sd, "Which env", 5000));
    assert_string_equal(c->channel, m);
    assert_string_equal(c->allowed_user, DEV);
    assert_non_null(strstr(c->content, "<@" DEV ">"));
    say(F, m, "staging", a);
    c = finished_ok(F);
    assert_string_equal(c->channel, m);
    /* In a DM. */
    say(F, DMCHAN, "restart checkout", m);
    assert_true(discord_standin_wait_post(F->sd, "Which env", 5000) >= 0);
    discord_standin_wait(F->sd, NULL, NULL, 100);
    say(F, DMCHAN, "dev", a);
    assert_true(discord_standin_wait_post(F->sd, "fleet.sh restart checkout dev", 8000) >= 0);
    wait_finished(F, 2);
    for (size_t i = 0; i < discord_standin_ncalls(F->sd); i++) {
        c = discord_standin_call(F->sd, i);
        if (!strcmp(c->channel, DMCHAN) && !strcmp(c->kind, DS_CREATE_MESSAGE))
            assert_string_equal(c->reply_to, m);
    }
    e2e_end(&F->e);
}

static void test_malformed_payloads(void **state)
{
    struct fx *F = &fxg;
    char m[ID_LEN];
    static const char *const bad[] = {
        "{",
        "[1,2]",
        "{\"op\":\"zero\"}",
        "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":\"x\",\"d\":{}}",
        "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":1,\"d\":{\"id\":\"not-a-snowflake\"}}",
        "{\"op\":0,\"t\":\"message create\",\"s\":1,\"d\":{}}",
    };

    (void)state;
    fx_start(F);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(discord_standin_raw(F->sd, bad[i]), 0);
    say(F, CHAN, "<@" BOT "> status of checkout in staging", m);
    finished_ok(F);
    /* One line each, the connection kept, the next event handled. */
    assert_int_equal(e2e_log_count(&F->e, "unreadable Gateway payload") +
                         e2e_log_count(&F->e, "malformed MESSAGE_CREATE dispatch"),
                     sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(discord_standin_connections(F->sd), 1);
    e2e_end(&F->e);
}

static bool connected_cond(struct discord_standin *s, void *arg)
{
    (void)arg;
    return discord_standin_connections(s) > 0;
}

static void test_session_start_limit(void **state)
{
    struct fx *F = &fxg;
    struct discord_standin_opts o = {0};
    int64_t t0 = ob_now_ms();

    (void)state;
    o.session_remaining = -1;
    o.session_reset_ms = 600;
    fx_start_opts(F, "opsbot.yaml", NULL, &o);
    assert_true(discord_standin_wait(F->sd, connected_cond, NULL, 5000));
    assert_true(ob_now_ms() - t0 >= 550);
    assert_true(e2e_log_has(&F->e, "session start limit is used up"));
    wait_ready(F);
    e2e_end(&F->e);
}

/* ---- the interactions endpoint ------------------------------------------------------- */

/* POSTs body to the endpoint, signed with sk (NULL = no signature headers,
 * bad = a signature over something else). */
static void ix_post(struct fx *f, int port, const char *path, const unsigned char *sk, bool bad,
                    const char *body, struct e2e_http_res *r)
{
    char url[128], sig[129], sigh[160], tsh[64];
    const char *ts = "1767225600";
    const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    if (sk) {
        discord_standin_sign(sk, ts, bad ? "{\"type\":2}" : body,
                             strlen(bad ? "{\"type\":2}" : body), sig);
        snprintf(sigh, sizeof(sigh), "X-Signature-Ed25519: %s", sig);
        snprintf(tsh, sizeof(tsh), "X-Signature-Timestamp: %s", ts);
        headers[1] = sigh;
        headers[2] = tsh;
    }
    e2e_http_post(&f->e, url, headers, body, 4000, r);
}

static void test_interactions_endpoint(void **state)
{
    struct fx *F = &fxg;
    unsigned char pk[32], sk[64];
    char pkhex[65], port_s[16], mid[ID_LEN], approval[ID_LEN];
    int port = e2e_free_port();
    struct e2e_http_res r;
    const struct ds_call *c;
    char *json;

    (void)state;
    discord_standin_keypair(pk, sk);
    sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
    snprintf(port_s, sizeof(port_s), "%d", port);
    setenv("DISCORD_IX_PORT", port_s, 1);
    setenv("DISCORD_PUBLIC_KEY", pkhex, 1);
    fx_start_opts(F, "http.yaml", NULL, NULL);
    wait_ready(F);

    /* PING -> PONG, when signed. */
    json = discord_standin_interaction_json(F->sd, 1, NULL, NULL, NULL, NULL, NULL);
    ix_post(F, port, "/discord/interactions", sk, false, json, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"type\":1}");
    /* A bad signature and no signature: 401, nothing else. */
    ix_post(F, port, "/discord/interactions", sk, true, json, &r);
    assert_int_equal(r.status, 401);
    ix_post(F, port, "/discord/interactions", NULL, false, json, &r);
    assert_int_equal(r.status, 401);
    ix_post(F, port, "/elsewhere", sk, false, json, &r);
    assert_int_equal(r.status, 404);
    free(json);

    /* The approve button over HTTP: answered inline, vote counted. */
    c = ask_prod_restart(F, mid, sizeof(mid));
    ob_strlcpy(approval, c->message, sizeof(approval));
    json =
        discord_standin_interaction_json(F->sd, 3, ONCALL, mid, GUILD, approval, "opsbot:approve");
    ix_post(F, port, "/discord/interactions", sk, false, json, &r);
    free(json);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"type\":6}");
    c = finished_ok(F);
    assert_string_equal(c->channel, mid);
    assert_int_equal(discord_standin_count(F->sd, DS_CALLBACK), 0);

    /* /ops over HTTP: acknowledged inline; the thread hangs off the answer. */
    json = discord_standin_interaction_json(F->sd, 2, DEV, CHAN, GUILD, NULL,
                                            "status of checkout in dev");
    ix_post(F, port, "/discord/interactions", sk, false, json, &r);
    free(json);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"type\":4"));
    c = post(F,
             discord_standin_wait_post(F->sd, "understood: status service=checkout env=dev", 8000));
    assert_int_equal(discord_standin_count(F->sd, DS_ORIGINAL), 1);
    assert_string_equal(c->channel, last_of(F, DS_ORIGINAL)->message);
    wait_finished(F, 2);
    assert_true(e2e_log_count(&F->e, "interactions endpoint: request from") >= 2);
    e2e_end(&F->e);
}

static void test_register_commands(void **state)
{
    struct fx *F = &fxg;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    char yaml[512], msg[256];
    cJSON *cmds;
    const struct ds_call *c;

    (void)state;
    /* Connected first: tearing the stand-in down while the Gateway
     * connection is being accepted trips libwebsockets 4.1 (see report). */
    fx_start(F);
    snprintf(yaml, sizeof(yaml),
             "platforms:\n  discord:\n    token: %s\n    application_id: \"%s\"\n"
             "    api_base: %s\n",
             TOKEN, APP, discord_standin_api_base(F->sd));
    ob_diag_init(&d);
    assert_int_equal(ob_config_load_string(&cfg, yaml, "test.yaml", &d), 0);
    ob_diag_release(&d);
    assert_int_equal(
        ob_discord_register_commands(
            &F->e.loop, cfg,
            cJSON_GetObjectItem(cJSON_GetObjectItem(ob_config_root(cfg), "platforms"), "discord"),
            msg, sizeof(msg)),
        0);
    assert_non_null(strstr(msg, "registered /ops"));
    c = last_of(F, DS_COMMANDS);
    assert_non_null(c);
    assert_true(c->auth_ok);
    cmds = cJSON_Parse(c->content);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cmds, 0), "name")->valuestring,
                        "ops");
    cJSON_Delete(cmds);
    ob_config_free(cfg);
    e2e_end(&F->e);
}

/* ---- pure functions ------------------------------------------------------------------- */

static void test_bucket_keys(void **state)
{
    char a[256], b[256], route[256], major[96];

    (void)state;
    assert_int_equal(ob_discord_route("post", "/channels/123/messages", route, sizeof(route), major,
                                      sizeof(major)),
                     0);
    assert_string_equal(route, "POST /channels/{channel_id}/messages");
    assert_string_equal(major, "123");
    /* Minor ids collapse; the major parameter stays. */
    assert_int_equal(ob_discord_route("PATCH", "/channels/123/messages/456", route, sizeof(route),
                                      major, sizeof(major)),
                     0);
    assert_string_equal(route, "PATCH /channels/{channel_id}/messages/:id");
    assert_int_equal(
        ob_discord_bucket_key("PATCH", "/channels/123/messages/456", NULL, a, sizeof(a)), 0);
    assert_int_equal(
        ob_discord_bucket_key("PATCH", "/channels/123/messages/789?x=1", NULL, b, sizeof(b)), 0);
    assert_string_equal(a, b);
    assert_string_equal(a, "PATCH /channels/{channel_id}/messages/:id:123");
    /* Another channel: another bucket. */
    assert_int_equal(
        ob_discord_bucket_key("PATCH", "/channels/124/messages/456", NULL, b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    /* Methods differ: POST vs PATCH on the same path. */
    assert_int_equal(ob_discord_bucket_key("POST", "/channels/123/messages", NULL, a, sizeof(a)),
                     0);
    assert_int_equal(ob_discord_bucket_key("GET", "/channels/123/messages", NULL, b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
    /* Reactions: every emoji in one bucket per channel. */
    assert_int_equal(ob_discord_bucket_key("PUT", "/channels/1/messages/2/reactions/%E2%9C%85/@me",
                                           NULL, a, sizeof(a)),
                     0);
    assert_int_equal(ob_discord_bucket_key("PUT", "/channels/1/messages/3/reactions/x:99/@me", NULL,
                                           b, sizeof(b)),
                     0);
    assert_string_equal(a, b);
    assert_string_equal(a, "PUT /channels/{channel_id}/messages/:id/reactions/:reaction:1");
    /* Once Discord named the bucket: "<hash>:<major>"; routes sharing a hash
     * share the bucket of a channel. */
    assert_int_equal(
        ob_discord_bucket_key("POST", "/channels/123/messages", "abcd1234", a, sizeof(a)), 0);
    assert_string_equal(a, "abcd1234:123");
    assert_int_equal(
        ob_discord_bucket_key("PATCH", "/channels/123/messages/9", "abcd1234", b, sizeof(b)), 0);
    assert_string_equal(a, b);
    assert_int_equal(
        ob_discord_bucket_key("POST", "/channels/555/messages", "abcd1234", b, sizeof(b)), 0);
    assert_string_equal(b, "abcd1234:555");
    /* Guilds are major too; "//" and a trailing "/" change nothing. */
    assert_int_equal(ob_discord_bucket_key("GET", "/guilds/77/members/5", NULL, a, sizeof(a)), 0);
    assert_string_equal(a, "GET /guilds/{guild_id}/members/:id:77");
    assert_int_equal(ob_discord_bucket_key("GET", "//guilds/77/members/6/", NULL, b, sizeof(b)), 0);
    assert_string_equal(a, b);
    /* Webhooks: id + token (hashed, never in the key); interactions: id. */
    assert_int_equal(ob_discord_bucket_key("GET", "/webhooks/11/secrettoken/messages/@original",
                                           NULL, a, sizeof(a)),
                     0);
    assert_null(strstr(a, "secrettoken"));
    assert_non_null(strstr(a, "/webhooks/{webhook_id}/{webhook_token}/messages/@original:11/"));
    assert_int_equal(ob_discord_bucket_key("GET", "/webhooks/11/othertoken/messages/@original",
                                           NULL, b, sizeof(b)),
                     0);
    assert_string_not_equal(a, b);
    assert_int_equal(
        ob_discord_bucket_key("POST", "/interactions/42/tok/callback", NULL, a, sizeof(a)), 0);
    assert_string_equal(a, "POST /interactions/{interaction_id}/{interaction_token}/callback:42");
    /* No major parameter. */
    assert_int_equal(ob_discord_bucket_key("GET", "/gateway/bot", NULL, a, sizeof(a)), 0);
    assert_string_equal(a, "GET /gateway/bot:-");
    assert_int_equal(ob_discord_bucket_key("PUT", "/applications/6/commands", NULL, a, sizeof(a)),
                     0);
    assert_string_equal(a, "PUT /applications/:id/commands:-");
    /* Bad input. */
    assert_int_equal(ob_discord_bucket_key("GET", "channels/1", NULL, a, sizeof(a)), OB_EINVAL);
    assert_int_equal(ob_discord_bucket_key(NULL, "/x", NULL, a, sizeof(a)), OB_EINVAL);
    assert_int_equal(ob_discord_bucket_key("G3T", "/x", NULL, a, sizeof(a)), OB_EINVAL);
    assert_int_equal(ob_discord_bucket_key("POST", "/channels/123/messages", NULL, a, 8), OB_E2BIG);
}

static int parse_str(const char *json, struct ob_discord_payload *p)
{
    char err[160];

    return ob_discord_parse_payload(json, strlen(json), p, err, sizeof(err));
}

static void test_parse_payload(void **state)
{
    /* Malformed payloads and the error each gives. */
    static const struct {
        const char *json;
        int rc;
    } bad[] = {
        {"{", OB_EJSON},
        {"[]", OB_EPARSE},
        {"{\"op\":-1}", OB_EPARSE},
        {"{\"op\":1.5}", OB_EPARSE},
        {"{\"op\":0,\"t\":\"READY\",\"d\":{}}", OB_EPARSE},
        {"{\"op\":0,\"t\":\"ready\",\"s\":1,\"d\":{}}", OB_EPARSE},
        {"{\"op\":10,\"d\":{\"heartbeat_interval\":0}}", OB_EPARSE},
        {"{\"op\":10,\"d\":{}}", OB_EPARSE},
        {"", OB_EPARSE},
        {"{\"op\":\"secret-payload\"}", OB_EPARSE},
    };
    struct ob_discord_payload p;
    char err[160];

    (void)state;
    assert_int_equal(parse_str("{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", &p), 0);
    assert_int_equal(p.op, OB_DISCORD_OP_HELLO);
    assert_int_equal(p.heartbeat_interval, 41250);
    assert_int_equal(p.s, -1);
    ob_discord_payload_release(&p);
    assert_int_equal(
        parse_str("{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":42,\"d\":{\"id\":\"1\"}}", &p), 0);
    assert_int_equal(p.s, 42);
    assert_string_equal(p.t, "MESSAGE_CREATE");
    assert_non_null(p.d);
    ob_discord_payload_release(&p);
    assert_int_equal(parse_str("{\"op\":9,\"d\":true}", &p), 0);
    assert_true(p.resumable);
    ob_discord_payload_release(&p);
    assert_int_equal(parse_str("{\"op\":9,\"d\":false}", &p), 0);
    assert_false(p.resumable);
    ob_discord_payload_release(&p);
    assert_int_equal(parse_str("{\"op\":11}", &p), 0);
    ob_discord_payload_release(&p);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_str(bad[i].json, &p);

        ob_discord_payload_release(&p);
        if (rc != bad[i].rc)
            fail_msg("%s: %d, not %d", bad[i].json, rc, bad[i].rc);
    }
    assert_int_equal(ob_discord_parse_payload(NULL, 0, &p, err, sizeof(err)), OB_EPARSE);
    ob_discord_payload_release(&p);
    /* The reason never quotes the payload. */
    assert_int_equal(ob_discord_parse_payload("{\"op\":\"secret\"", 15, &p, err, sizeof(err)),
                     OB_EJSON);
    assert_null(strstr(err, "secret"));
    ob_discord_payload_release(&p);
}

static const char *self_thread(void *data, const char *channel)
{
    (void)data;
    return !strcmp(channel, "210000000000000001") ? CHAN : NULL;
}

static int event_of(const char *t, const char *json, bool all, struct ob_discord_event *e)
{
    struct ob_discord_self self = {0};
    cJSON *d = cJSON_Parse(json);
    int rc;

    self.user_id = BOT;
    self.listen_all = all;
    self.thread_parent = self_thread;
    rc = ob_discord_dispatch_event(&self, t, d, e);
    cJSON_Delete(d);
    return rc;
}

static void test_dispatch_events(void **state)
{
    struct ob_discord_event e;
    struct ob_event ev;

    (void)state;
    /* A mention: stripped, addressed; both mention forms. */
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"41\",\"channel_id\":\"" CHAN "\",\"guild_id\":\"" GUILD
                              "\",\"author\":{\"id\":\"" DEV "\",\"username\":\"dev\"},"
                              "\"content\":\"<@" BOT "> restart <@!" BOT "> checkout \","
                              "\"type\":0}",
                              false, &e),
                     1);
    assert_string_equal(e.text, "restart  checkout");
    assert_true(e.addressed);
    assert_false(e.dm);
    assert_string_equal(e.id, "41");
    ob_discord_event_view(&e, &ev);
    assert_string_equal(ev.platform, "discord");
    assert_string_equal(ev.channel, CHAN);
    assert_null(ev.thread);
    assert_string_equal(ev.message, "41");
    assert_string_equal(ev.user_name, "dev");
    ob_discord_event_release(&e);
    /* In a known thread: the parent is the channel, the thread is set. */
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"42\",\"channel_id\":\"210000000000000001\",\"guild_id\":"
                              "\"" GUILD "\",\"author\":{\"id\":\"" DEV "\"},\"content\":\"hi\","
                              "\"mentions\":[{\"id\":\"" BOT "\"}]}",
                              false, &e),
                     1);
    assert_string_equal(e.channel, CHAN);
    assert_string_equal(e.thread, "210000000000000001");
    assert_true(e.addressed);
    ob_discord_event_release(&e);
    /* A DM is addressed without a mention. */
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"43\",\"channel_id\":\"9\",\"author\":{\"id\":\"" DEV
                              "\"},\"content\":\"status\"}",
                              false, &e),
                     1);
    assert_true(e.dm && e.addressed);
    ob_discord_event_release(&e);
    /* Bots, ourselves, webhooks, system messages: ignored. */
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"44\",\"channel_id\":\"9\",\"author\":{\"id\":\"7\","
                              "\"bot\":true},\"content\":\"x\"}",
                              false, &e),
                     0);
    ob_discord_event_release(&e);
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"45\",\"channel_id\":\"9\",\"author\":{\"id\":\"" BOT
                              "\"},\"content\":\"x\"}",
                              false, &e),
                     0);
    assert_string_equal(e.ignored, "own message");
    ob_discord_event_release(&e);
    assert_int_equal(event_of("MESSAGE_CREATE",
                              "{\"id\":\"46\",\"channel_id\":\"9\",\"author\":{\"id\":\"" DEV
                              "\"},\"content\":\"x\",\"type\":7}",
                              false, &e),
                     0);
    ob_discord_event_release(&e);
    /* Malformed. */
    assert_true(event_of("MESSAGE_CREATE", "{\"id\":\"x1\",\"channel_id\":\"9\"}", false, &e) < 0);
    ob_discord_event_release(&e);
    assert_true(event_of("MESSAGE_CREATE", "[]", false, &e) < 0);
    ob_discord_event_release(&e);
    /* Reactions: the emoji name, the message, a stable id per direction. */
    assert_int_equal(event_of("MESSAGE_REACTION_ADD",
                              "{\"user_id\":\"" ONCALL "\",\"channel_id\":\"210000000000000001\","
                              "\"message_id\":\"77\",\"guild_id\":\"" GUILD "\",\"emoji\":{"
                              "\"id\":null,\"name\":\"\xe2\x9c\x85\"}}",
                              false, &e),
                     1);
    assert_int_equal(e.kind, OB_EV_REACTION_ADD);
    assert_string_equal(e.emoji, "\xe2\x9c\x85");
    assert_string_equal(e.message, "77");
    assert_string_equal(e.channel, "210000000000000001");
    assert_string_equal(e.thread, "210000000000000001");
    assert_string_equal(e.id, "react+:77:" ONCALL ":\xe2\x9c\x85");
    ob_discord_event_release(&e);
    assert_int_equal(event_of("MESSAGE_REACTION_REMOVE",
                              "{\"user_id\":\"" ONCALL "\",\"channel_id\":\"5\",\"message_id\":"
                              "\"77\",\"emoji\":{\"id\":null,\"name\":\"x\"}}",
                              false, &e),
                     1);
    assert_int_equal(e.kind, OB_EV_REACTION_REMOVE);
    assert_string_equal(e.id, "react-:77:" ONCALL ":x");
    ob_discord_event_release(&e);
    assert_int_equal(event_of("MESSAGE_REACTION_ADD",
                              "{\"user_id\":\"" BOT "\",\"channel_id\":\"5\",\"message_id\":\"77\","
                              "\"emoji\":{\"name\":\"x\"}}",
                              false, &e),
                     0);
    ob_discord_event_release(&e);
    /* A button press. */
    assert_int_equal(event_of("INTERACTION_CREATE",
                              "{\"id\":\"88\",\"type\":3,\"token\":\"tok_1\",\"application_id\":"
                              "\"" APP "\",\"channel_id\":\"5\",\"guild_id\":\"" GUILD "\","
                              "\"member\":{\"user\":{\"id\":\"" ONCALL "\"}},\"data\":{"
                              "\"custom_id\":\"opsbot:deny\",\"component_type\":2},\"message\":{"
                              "\"id\":\"77\"}}",
                              false, &e),
                     1);
    assert_int_equal(e.kind, OB_EV_BUTTON);
    assert_string_equal(e.emoji, "deny");
    assert_string_equal(e.user, ONCALL);
    assert_string_equal(e.message, "77");
    assert_string_equal(e.id, "88");
    assert_string_equal(e.interaction_token, "tok_1");
    ob_discord_event_release(&e);
    /* Someone else's component. */
    assert_int_equal(event_of("INTERACTION_CREATE",
                              "{\"id\":\"89\",\"type\":3,\"token\":\"t\",\"channel_id\":\"5\","
                              "\"user\":{\"id\":\"" DEV "\"},\"data\":{\"custom_id\":\"vote:1\"},"
                              "\"message\":{\"id\":\"77\"}}",
                              false, &e),
                     0);
    ob_discord_event_release(&e);
    /* /ops in a DM. */
    assert_int_equal(event_of("INTERACTION_CREATE",
                              "{\"id\":\"90\",\"type\":2,\"token\":\"t\",\"channel_id\":\"9\","
                              "\"user\":{\"id\":\"" DEV "\"},\"data\":{\"name\":\"ops\","
                              "\"options\":[{\"name\":\"request\",\"type\":3,\"value\":\"status "
                              "x\"}]}}",
                              false, &e),
                     1);
    assert_int_equal(e.source, OB_DISCORD_SRC_COMMAND);
    assert_string_equal(e.text, "status x");
    assert_true(e.dm && e.addressed);
    ob_discord_event_release(&e);
    /* A token that could escape the path. */
    assert_true(event_of("INTERACTION_CREATE",
                         "{\"id\":\"91\",\"type\":3,\"token\":\"a/../b\",\"channel_id\":\"5\"}",
                         false, &e) < 0);
    ob_discord_event_release(&e);
    assert_int_equal(event_of("GUILD_CREATE", "{}", false, &e), 0);
    ob_discord_event_release(&e);
}

static void test_intents_permissions(void **state)
{
    char url[512];

    (void)state;
    assert_int_equal(ob_discord_intents(), 46593);
    assert_int_equal(ob_discord_permissions(), (1ull << 6) | (1ull << 10) | (1ull << 11) |
                                                   (1ull << 16) | (1ull << 35) | (1ull << 38));
    assert_int_equal(ob_discord_invite_url(APP, url, sizeof(url)), 0);
    assert_string_equal(url, "https://discord.com/oauth2/authorize?client_id=" APP
                             "&permissions=309237713984&scope=bot%20applications.commands");
    assert_int_equal(ob_discord_invite_url("12ab", url, sizeof(url)), OB_EINVAL);
    assert_int_equal(ob_discord_invite_url(APP, url, 20), OB_E2BIG);
}

static void test_signature(void **state)
{
    unsigned char pk[32], sk[64], pk2[32], sk2[64];
    char sig[129];
    const char *body = "{\"type\":1}";

    (void)state;
    discord_standin_keypair(pk, sk);
    discord_standin_keypair(pk2, sk2);
    discord_standin_sign(sk, "1700000000", body, strlen(body), sig);
    assert_int_equal(ob_discord_verify_signature(pk, sig, "1700000000", body, strlen(body)), 0);
    /* Another key, another timestamp, another body. */
    assert_int_equal(ob_discord_verify_signature(pk2, sig, "1700000000", body, strlen(body)),
                     OB_EDENIED);
    assert_int_equal(ob_discord_verify_signature(pk, sig, "1700000001", body, strlen(body)),
                     OB_EDENIED);
    assert_int_equal(ob_discord_verify_signature(pk, sig, "1700000000", "{\"type\":2}", 10),
                     OB_EDENIED);
    /* Malformed headers. */
    assert_int_equal(ob_discord_verify_signature(pk, NULL, "1", body, strlen(body)), OB_EPARSE);
    assert_int_equal(ob_discord_verify_signature(pk, sig, NULL, body, strlen(body)), OB_EPARSE);
    assert_int_equal(ob_discord_verify_signature(pk, "abcd", "1", body, strlen(body)), OB_EPARSE);
    sig[0] = 'z';
    assert_int_equal(ob_discord_verify_signature(pk, sig, "1700000000", body, strlen(body)),
                     OB_EPARSE);
}

static void test_config_check(void **state)
{
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    cJSON *sec;

    (void)state;
    ob_diag_init(&d);
    sec = cJSON_Parse("{\"token\":\"abc\",\"bogus\":1}");
    assert_int_equal(ob_discord_check(NULL, sec, &d), OB_ECONFIG);
    cJSON_Delete(sec);
    assert_true(e2e_diag_has(&d, "bogus"));
    ob_diag_release(&d);

    /* file:line, each problem named, the token never shown. */
    ob_diag_init(&d);
    assert_int_equal(ob_config_load_string(&cfg,
                                           "platforms:\n"
                                           "  discord:\n"
                                           "    token: \"bad token secret-77\"\n"
                                           "    application_id: 12345\n"
                                           "    api_base: ftp://x\n"
                                           "    listen: sometimes\n"
                                           "    channels: [C01]\n"
                                           "    interactions: {listen: \":3001\", public_key: "
                                           "\"nothex\"}\n",
                                           "test.yaml", &d),
                     0);
    sec = cJSON_GetObjectItem(cJSON_GetObjectItem(ob_config_root(cfg), "platforms"), "discord");
    assert_int_equal(ob_discord_check(cfg, sec, &d), OB_ECONFIG);
    assert_true(e2e_diag_has(&d, "test.yaml:3: platforms.discord.token: contains a character"));
    assert_true(e2e_diag_has(&d, "test.yaml:4: platforms.discord.application_id: expected the "
                                 "application's id as a quoted"));
    assert_true(e2e_diag_has(&d, "test.yaml:5: platforms.discord.api_base"));
    assert_true(e2e_diag_has(&d, "test.yaml:6: platforms.discord.listen"));
    assert_true(e2e_diag_has(&d, "platforms.discord.channels: expected channel ids"));
    assert_true(e2e_diag_has(&d, "platforms.discord.interactions.public_key"));
    assert_false(e2e_diag_has(&d, "secret-77"));
    ob_diag_release(&d);
    ob_config_free(cfg);

    ob_diag_init(&d);
    sec = cJSON_Parse("{\"token\":\"\"}");
    assert_int_equal(ob_discord_check(NULL, sec, &d), OB_ECONFIG);
    assert_true(e2e_diag_has(&d, "is DISCORD_TOKEN set?"));
    cJSON_Delete(sec);
    ob_diag_release(&d);

    ob_diag_init(&d);
    sec = cJSON_Parse("{\"token\":\"Bot MTIz.abc-def_ghi\",\"application_id\":\"" APP "\","
                      "\"channels\":[\"" CHAN "\"],\"gateway_url\":\"wss://gateway.discord.gg\","
                      "\"interactions\":{\"listen\":\":3001\",\"public_key\":"
                      "\"0000000000000000000000000000000000000000000000000000000000000000\"}}");
    assert_int_equal(ob_discord_check(NULL, sec, &d), 0);
    cJSON_Delete(sec);
    ob_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_keys),
        cmocka_unit_test(test_parse_payload),
        cmocka_unit_test(test_dispatch_events),
        cmocka_unit_test(test_intents_permissions),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test_teardown(test_mention_reaction_flow, e2e_teardown),
        cmocka_unit_test_teardown(test_button_flow, e2e_teardown),
        cmocka_unit_test_teardown(test_stranger_refused, e2e_teardown),
        cmocka_unit_test_teardown(test_zombie_resumes, e2e_teardown),
        cmocka_unit_test_teardown(test_invalid_session_reidentifies, e2e_teardown),
        cmocka_unit_test_teardown(test_reconnect_ops, e2e_teardown),
        cmocka_unit_test_teardown(test_fatal_4004, e2e_teardown),
        cmocka_unit_test_teardown(test_fatal_4014, e2e_teardown),
        cmocka_unit_test_teardown(test_bad_token_rest_401, e2e_teardown),
        cmocka_unit_test_teardown(test_burst_under_429, e2e_teardown),
        cmocka_unit_test_teardown(test_slash_command, e2e_teardown),
        cmocka_unit_test_teardown(test_dm_and_thread_messages, e2e_teardown),
        cmocka_unit_test_teardown(test_questions, e2e_teardown),
        cmocka_unit_test_teardown(test_malformed_payloads, e2e_teardown),
        cmocka_unit_test_teardown(test_session_start_limit, e2e_teardown),
        cmocka_unit_test_teardown(test_interactions_endpoint, e2e_teardown),
        cmocka_unit_test_teardown(test_register_commands, e2e_teardown),
    };

    if (getenv("DISCORD_TEST_DEBUG"))
        ob_log_set_level(OB_LOG_DEBUG);
    if (getenv("DISCORD_TEST_FILTER"))
        cmocka_set_test_filter(getenv("DISCORD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
