/* Slack adapter, end to end: the real pipeline (ob_bundle_load, ob_bot_new,
 * ob_bot_start) on one loop with the local Slack (tests/standins/), plus
 * unit tests of the pure parsing entry points. Each end-to-end test has
 * its own loop, state directory and stand-in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "e2e_fixture.h"
#include "opsbot/bot.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/platform.h"
#include "opsbot/slack.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_standin.h"

#define SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define TS_LEN 32 /* a message ts */

struct fx {
    struct e2e e; /* first: the hooks get &fx->e */
    struct slack_standin *sd;
};

static struct fx fxg;

/* ---- fixture ---------------------------------------------------------------- */

static void free_standin(struct e2e *e)
{
    slack_standin_free(((struct fx *)e)->sd);
}

static const char *const test_env[] = {"SLACK_LISTEN", "SLACK_LINK_RETRY", "SLACK_POST_INTERVAL",
                                       "SLACK_EVENTS_PORT", NULL};
static const struct e2e_hooks hooks = {
    .name = "slack", .free_standin = free_standin, .env = test_env};

static bool live_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_live(s) >= (size_t)(intptr_t)arg;
}

static bool live_eq_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_live(s) == (size_t)(intptr_t)arg;
}

static bool hellos_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_hellos(s) >= (size_t)(intptr_t)arg;
}

static void fx_start(struct fx *f, const char *config, const char *bot_token, const char *app_token)
{
    struct slack_standin_opts o = {.ping_ms = 100};

    memset(f, 0, sizeof(*f));
    e2e_begin(&f->e, &hooks);
    assert_int_equal(slack_standin_new(&f->sd, &f->e.loop, &o), 0);
    setenv("SLACK_API_BASE", slack_standin_api_base(f->sd), 1);
    setenv("SLACK_BOT_TOKEN", bot_token ? bot_token : "xoxb-standin-bot", 1);
    setenv("SLACK_APP_TOKEN", app_token ? app_token : "xapp-standin-app", 1);
    setenv("SLACK_SIGNING_SECRET", SECRET, 1);
    e2e_start_bot(&f->e, config);
}

/* Socket Mode up: one connection with its hello. */
static void fx_start_socket(struct fx *f)
{
    fx_start(f, "opsbot.yaml", NULL, NULL);
    assert_true(slack_standin_wait(f->sd, live_cond, (void *)1, 5000));
    /* ... and opsbot has seen its hello. */
    assert_true(e2e_wait_log(&f->e, "connected (Socket Mode", 5000));
}

static const struct standin_call *post(struct fx *f, long idx)
{
    assert_true(idx >= 0);
    return slack_standin_call(f->sd, (size_t)idx);
}

/* UDEV writes text in channel, a new message; ts (TS_LEN bytes, or NULL)
 * gets its ts. */
static void say(struct fx *f, const char *channel, const char *text, char *ts)
{
    assert_int_equal(slack_standin_message(f->sd, channel, "UDEV", text, NULL, ts, ts ? TS_LEN : 0),
                     0);
}

/* The request ran to its end: the "finished: exit 0" post. */
static const struct standin_call *wait_finished(struct fx *f)
{
    return post(f, slack_standin_wait_post(f->sd, "finished: exit 0", 8000));
}

/* Every successful chat.postMessage went into thread ts of channel. */
static void assert_all_in_thread(struct fx *f, const char *channel, const char *ts)
{
    for (size_t i = 0; i < slack_standin_ncalls(f->sd); i++) {
        const struct standin_call *c = slack_standin_call(f->sd, i);

        if (strcmp(c->method, "chat.postMessage") || c->error[0])
            continue;
        if (strcmp(c->thread_ts, ts) || strcmp(c->channel, channel))
            fail_msg("post %zu (\"%.60s\") went to %s/%s, not %s/%s", i, c->text, c->channel,
                     c->thread_ts, channel, ts);
    }
}

static bool acked_cond(struct slack_standin *s, void *arg)
{
    (void)arg;
    return slack_standin_acked(s) + slack_standin_ack_failures(s) >= slack_standin_envelopes(s);
}

/* Every envelope acked within the stand-in's 3 s deadline. */
static void assert_acks_ok(struct fx *f)
{
    slack_standin_wait(f->sd, acked_cond, NULL, 3500);
    assert_int_equal(slack_standin_ack_failures(f->sd), 0);
    assert_int_equal(slack_standin_acked(f->sd), slack_standin_envelopes(f->sd));
}

/* Starts a prod restart by mention in C0OPS; returns the approval post. */
static const struct standin_call *ask_prod_restart(struct fx *f, char *ts, size_t len)
{
    const struct standin_call *c;

    assert_int_equal(slack_standin_message(f->sd, "C0OPS", "UDEV",
                                           "<@UBOT> restart checkout in prod", NULL, ts, len),
                     0);
    c = post(f, slack_standin_wait_post(f->sd, "APPROVAL NEEDED", 5000));
    assert_string_equal(c->channel, "C0OPS");
    assert_string_equal(c->thread_ts, ts);
    assert_true(c->has_buttons);
    assert_true(
        slack_standin_find_post(f->sd, "understood: restart service=checkout env=prod", 0) >= 0);
    return c;
}

/* ---- end to end ----------------------------------------------------------------- */

static void test_mention_reaction_flow(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN], approval_ts[64];
    const struct standin_call *c;
    long fin;

    (void)state;
    fx_start_socket(F);
    c = ask_prod_restart(F, ts, sizeof(ts));
    ob_strlcpy(approval_ts, c->ts, sizeof(approval_ts));
    /* The mention arrived twice (message + app_mention): understood once. */
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(
        slack_standin_reaction(F->sd, "UONCALL", "white_check_mark", "C0OPS", approval_ts, true),
        0);
    fin = slack_standin_wait_post(F->sd, "finished: exit 0", 8000);
    c = post(F, fin);
    assert_string_equal(c->thread_ts, ts);
    assert_true(slack_standin_find_post(F->sd, "approved by slack:UONCALL", 0) >= 0);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_all_in_thread(F, "C0OPS", ts);
    /* The approval message was updated in place, buttons gone. */
    {
        bool updated = false;

        for (size_t i = 0; i < slack_standin_ncalls(F->sd); i++) {
            c = slack_standin_call(F->sd, i);
            if (!strcmp(c->method, "chat.update") && !strcmp(c->ts, approval_ts)) {
                updated = true;
                assert_non_null(strstr(c->text, "APPROVED by slack:UONCALL"));
                assert_false(c->has_buttons);
                assert_string_equal(c->error, "");
            }
        }
        assert_true(updated);
    }
    assert_true(slack_standin_count(F->sd, "users.info") >= 1);
    assert_acks_ok(F);
    e2e_end(&F->e);
}

static void test_button_flow(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN], approval_ts[64];
    const struct standin_call *c;
    size_t updates = 0;

    (void)state;
    fx_start_socket(F);
    c = ask_prod_restart(F, ts, sizeof(ts));
    ob_strlcpy(approval_ts, c->ts, sizeof(approval_ts));
    assert_int_equal(slack_standin_button(F->sd, "UONCALL", "C0OPS", approval_ts, ts, "approve"),
                     0);
    c = wait_finished(F);
    assert_string_equal(c->thread_ts, ts);
    /* A second click on the stale button changes nothing. */
    assert_int_equal(slack_standin_button(F->sd, "UONCALL", "C0OPS", approval_ts, ts, "approve"),
                     0);
    slack_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    for (size_t i = 0; i < slack_standin_ncalls(F->sd); i++) {
        c = slack_standin_call(F->sd, i);
        if (!strcmp(c->method, "chat.update") && !strcmp(c->ts, approval_ts)) {
            updates++;
            assert_true(c->has_blocks);
            assert_false(c->has_buttons);
            assert_non_null(strstr(c->text, "APPROVED"));
        }
    }
    assert_int_equal(updates, 1);
    assert_all_in_thread(F, "C0OPS", ts);
    assert_acks_ok(F);
    e2e_end(&F->e);
}

static void test_stranger_refused(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN], approval_ts[64];
    const struct standin_call *c;

    (void)state;
    fx_start_socket(F);
    c = ask_prod_restart(F, ts, sizeof(ts));
    ob_strlcpy(approval_ts, c->ts, sizeof(approval_ts));
    assert_int_equal(
        slack_standin_reaction(F->sd, "USTRANGER", "white_check_mark", "C0OPS", approval_ts, true),
        0);
    c = post(F, slack_standin_wait_post(F->sd, "vote not counted", 5000));
    assert_non_null(strstr(c->text, "slack:USTRANGER"));
    assert_string_equal(c->thread_ts, ts);
    /* The requester's own Deny button refuses it (withdraws). */
    assert_int_equal(slack_standin_button(F->sd, "UDEV", "C0OPS", approval_ts, ts, "deny"), 0);
    post(F, slack_standin_wait_post(F->sd, "not run", 5000));
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 0);
    assert_all_in_thread(F, "C0OPS", ts);
    e2e_end(&F->e);
}

static void test_redelivery_once(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];

    (void)state;
    fx_start_socket(F);
    say(F, "D0DEV", "restart checkout in staging", ts);
    /* Slack redelivers (same event_id, retry_attempt 1) before and after
     * opsbot processed it. */
    assert_int_equal(slack_standin_redeliver(F->sd), 0);
    wait_finished(F);
    assert_int_equal(slack_standin_redeliver(F->sd), 0);
    slack_standin_wait(F->sd, NULL, NULL, 300);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_all_in_thread(F, "D0DEV", ts);
    assert_true(e2e_log_has(&F->e, "already handled"));
    assert_acks_ok(F);
    e2e_end(&F->e);
}

/* A "finished" post in thread arg. */
static bool finished_in_cond(struct slack_standin *s, void *arg)
{
    for (long i = slack_standin_find_post(s, "finished: exit 0", 0); i >= 0;
         i = slack_standin_find_post(s, "finished: exit 0", (size_t)i + 1))
        if (!strcmp(slack_standin_call(s, (size_t)i)->thread_ts, arg))
            return true;
    return false;
}

static void test_refresh_loses_nothing(void **state)
{
    struct fx *F = &fxg;
    unsigned old;
    char ts_a[TS_LEN], ts_b[TS_LEN];

    (void)state;
    fx_start_socket(F);
    old = slack_standin_newest(F->sd);
    slack_standin_target(F->sd, old);
    assert_int_equal(slack_standin_disconnect(F->sd, "refresh_requested"), 0);
    /* Still on the old socket while the new one is being opened. */
    say(F, "D0DEV", "status of checkout in prod", ts_a);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    slack_standin_target(F->sd, 0);
    assert_true(slack_standin_newest(F->sd) != old);
    /* Right after the switch, on the new socket. */
    say(F, "D0DEV", "status of payments in prod", ts_b);
    assert_true(slack_standin_wait(F->sd, finished_in_cond, ts_a, 8000));
    assert_true(slack_standin_wait(F->sd, finished_in_cond, ts_b, 8000));
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 2);
    /* The old socket was closed by opsbot once the new one was live. */
    assert_true(slack_standin_wait(F->sd, live_eq_cond, (void *)1, 2000));
    assert_int_equal(slack_standin_opens(F->sd), 2);
    assert_int_equal(slack_standin_bad_tickets(F->sd), 0);
    assert_acks_ok(F);
    e2e_end(&F->e);
}

static void test_dead_socket_reconnects(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];

    (void)state;
    fx_start_socket(F);
    slack_standin_silence(F->sd);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    assert_true(e2e_log_has(&F->e, "looks dead"));
    say(F, "D0DEV", "status of checkout in prod", ts);
    wait_finished(F);
    assert_all_in_thread(F, "D0DEV", ts);
    e2e_end(&F->e);
}

static void test_abrupt_close_reconnects(void **state)
{
    struct fx *F = &fxg;
    int64_t t0;

    (void)state;
    fx_start_socket(F);
    /* The reconnect's apps.connections.open is rate limited once. */
    slack_standin_ratelimit(F->sd, "apps.connections.open", 1, 1);
    t0 = ob_now_ms();
    assert_int_equal(slack_standin_close(F->sd, true), 0);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    assert_true(ob_now_ms() - t0 >= 950); /* Retry-After: 1 honoured */
    assert_true(slack_standin_wait(F->sd, live_cond, (void *)1, 2000));
    assert_int_equal(slack_standin_opens(F->sd), 2);
    assert_int_equal(slack_standin_count(F->sd, "apps.connections.open"), 3);
    e2e_end(&F->e);
}

static void test_ratelimit_keeps_order(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];
    long u, p, r, fin, first_429 = -1;
    const struct standin_call *c;

    (void)state;
    setenv("SLACK_POST_INTERVAL", "10ms", 1);
    fx_start_socket(F);
    slack_standin_ratelimit(F->sd, "chat.postMessage", 2, 1);
    say(F, "D0DEV", "restart checkout in staging", ts);
    fin = slack_standin_wait_post(F->sd, "finished: exit 0", 8000);
    assert_true(fin >= 0);
    u = slack_standin_find_post(F->sd, "understood:", 0);
    p = slack_standin_find_post(F->sd, "policy: allowed", 0);
    r = slack_standin_find_post(F->sd, "running:", 0);
    /* understood + policy: one message; running (+ a quick result): the
     * next ones (bot.c gathers the steps of a loop turn) */
    assert_true(u >= 0 && u == p && p < r && r <= fin);
    for (size_t i = 0; i < slack_standin_ncalls(F->sd); i++) {
        c = slack_standin_call(F->sd, i);
        if (c->status == 429 && first_429 < 0)
            first_429 = (long)i;
    }
    assert_true(first_429 >= 0);
    assert_true(first_429 < u);
    /* Retry-After: 1 was honoured. */
    assert_true(post(F, u)->at_ms - slack_standin_call(F->sd, (size_t)first_429)->at_ms >= 900);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_all_in_thread(F, "D0DEV", ts);
    assert_true(e2e_log_has(&F->e, "chat.postMessage rate limited"));
    e2e_end(&F->e);
}

static void test_bad_bot_token_fatal(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    fx_start(F, "opsbot.yaml", "xoxb-wrong-token-123", NULL);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_int_equal(ob_bot_exit_status(F->e.bot), 1);
    assert_true(e2e_log_has(
        &F->e,
        "slack: the bot token was rejected (invalid_auth): check platforms.slack.bot_token"));
    assert_false(e2e_log_has(&F->e, "wrong-token-123"));
    assert_int_equal(slack_standin_opens(F->sd), 0);
    assert_int_equal(slack_standin_count(F->sd, "auth.test"), 1);
    e2e_end(&F->e);
}

static void test_bad_app_token_fatal(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    fx_start(F, "opsbot.yaml", NULL, "xapp-revoked-456");
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_true(e2e_log_has(&F->e, "the app-level token was rejected (invalid_auth): check "
                                   "platforms.slack.app_token"));
    assert_false(e2e_log_has(&F->e, "revoked-456"));
    assert_int_equal(slack_standin_count(F->sd, "apps.connections.open"), 1);
    e2e_end(&F->e);
}

static void test_token_revoked_midway(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    fx_start_socket(F);
    slack_standin_fail(F->sd, "chat.postMessage", "token_revoked", 1);
    say(F, "D0DEV", "status of checkout in prod", NULL);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_true(e2e_log_has(&F->e, "the bot token was rejected (token_revoked)"));
    e2e_end(&F->e);
}

static bool opens_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_opens(s) >= (size_t)(intptr_t)arg && slack_standin_live(s) >= 1;
}

static void test_link_disabled(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    setenv("SLACK_LINK_RETRY", "500ms", 1);
    fx_start_socket(F);
    assert_int_equal(slack_standin_disconnect(F->sd, "link_disabled"), 0);
    slack_standin_wait(F->sd, NULL, NULL, 250);
    assert_int_equal(slack_standin_opens(F->sd), 1); /* no fast reconnect loop */
    assert_int_equal(slack_standin_live(F->sd), 0);
    assert_true(e2e_log_has(&F->e, "\"level\":\"error\"") || e2e_log_has(&F->e, "error slack"));
    assert_true(e2e_log_has(&F->e, "link_disabled"));
    /* Slow retry: back after link_disabled_retry. */
    assert_true(slack_standin_wait(F->sd, opens_cond, (void *)2, 3000));
    assert_int_equal(slack_standin_opens(F->sd), 2);
    e2e_end(&F->e);
}

static void test_noise_ignored(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];
    static const char *const noise[] = {
        "{\"type\":\"message\",\"channel\":\"C0OPS\",\"user\":\"UBOT\",\"text\":\"restart "
        "checkout in staging\",\"ts\":\"1.1\",\"channel_type\":\"channel\"}",
        "{\"type\":\"message\",\"subtype\":\"bot_message\",\"bot_id\":\"B9\",\"channel\":"
        "\"D0DEV\",\"text\":\"restart checkout in staging\",\"ts\":\"1.2\",\"channel_type\":"
        "\"im\"}",
        "{\"type\":\"message\",\"subtype\":\"message_changed\",\"hidden\":true,\"channel\":"
        "\"D0DEV\",\"ts\":\"1.3\",\"message\":{\"type\":\"message\",\"user\":\"UDEV\",\"text\":"
        "\"restart checkout in staging\",\"ts\":\"1.0\"},\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"subtype\":\"message_deleted\",\"hidden\":true,\"channel\":"
        "\"D0DEV\",\"ts\":\"1.4\",\"deleted_ts\":\"1.0\",\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"subtype\":\"channel_join\",\"user\":\"UDEV\",\"channel\":"
        "\"C0OPS\",\"text\":\"<@UDEV> has joined\",\"ts\":\"1.5\",\"channel_type\":\"channel\"}",
        "{\"type\":\"message\",\"user\":\"UDEV\",\"bot_id\":\"B0STANDIN\",\"channel\":\"D0DEV\","
        "\"text\":\"restart checkout in staging\",\"ts\":\"1.6\",\"channel_type\":\"im\"}",
        "{\"type\":\"reaction_added\",\"user\":\"UBOT\",\"reaction\":\"white_check_mark\","
        "\"item\":{\"type\":\"message\",\"channel\":\"C0OPS\",\"ts\":\"1.1\"}}",
    };

    (void)state;
    fx_start_socket(F);
    for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
        assert_int_equal(slack_standin_event(F->sd, noise[i]), 0);
    /* listen: mentions: channel chatter that does not address the bot. */
    say(F, "C0OPS", "restart checkout in staging", NULL);
    assert_int_equal(slack_standin_message(F->sd, "C0OPS", "UDEV", "hello all", "1.1", NULL, 0), 0);
    /* Malformed frames: one line each, nothing lost. */
    assert_int_equal(slack_standin_raw(F->sd, "{\"type\":\"events_api\",\"envelope_id\":"), 0);
    assert_int_equal(slack_standin_raw(F->sd, "[1,2,3]"), 0);
    /* The sentinel: a DM that must be answered. */
    say(F, "D0DEV", "status of checkout in prod", ts);
    wait_finished(F);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_all_in_thread(F, "D0DEV", ts);
    assert_true(e2e_log_has(&F->e, "unreadable frame"));
    assert_acks_ok(F);
    e2e_end(&F->e);
}

static void test_listen_all(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];

    (void)state;
    setenv("SLACK_LISTEN", "all", 1);
    fx_start_socket(F);
    say(F, "C0OPS", "restart checkout in staging", ts);
    wait_finished(F);
    /* Unaddressed chatter that is no request: no reply at all. */
    say(F, "C0OPS", "lunch anyone?", NULL);
    slack_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(slack_standin_count_posts(F->sd, "did not understand"), 0);
    assert_all_in_thread(F, "C0OPS", ts);
    e2e_end(&F->e);
}

static void test_slash_command(void **state)
{
    struct fx *F = &fxg;
    const struct standin_call *c;

    (void)state;
    fx_start_socket(F);
    assert_int_equal(slack_standin_slash(F->sd, "UDEV", "C0OPS", "status of checkout in prod"), 0);
    c = wait_finished(F);
    assert_string_equal(c->channel, "C0OPS");
    assert_string_equal(c->thread_ts, "");
    assert_acks_ok(F);
    e2e_end(&F->e);
}

static void test_channel_not_found_logged(void **state)
{
    struct fx *F = &fxg;
    char ts[TS_LEN];

    (void)state;
    fx_start_socket(F);
    say(F, "CBAD0", "<@UBOT> status of checkout in prod", ts);
    slack_standin_wait(F->sd, NULL, NULL, 500);
    assert_true(e2e_log_has(&F->e, "chat.postMessage failed: channel_not_found"));
    assert_false(e2e_log_has(&F->e, "xoxb-standin-bot"));
    e2e_end(&F->e);
}

/* ---- the adapter alone (no core): splitting, pacing, update, react ------------- */

struct post_res {
    int calls;
    int status;
    struct ob_msgref ref;
};

static void post_cb(void *data, int status, const struct ob_msgref *ref)
{
    struct post_res *r = data;

    r->calls++;
    r->status = status;
    if (ref)
        r->ref = *ref;
}

static bool post_cb_cond(struct slack_standin *s, void *arg)
{
    (void)s;
    return ((struct post_res *)arg)->calls > 0;
}

static bool calls_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_ncalls(s) >= (size_t)(intptr_t)arg;
}

static void test_adapter_direct(void **state)
{
    uv_loop_t loop;
    struct slack_standin *sd = NULL;
    struct slack_standin_opts o = {0};
    struct ob_lws *lws = NULL;
    struct ob_platform_env env = {0};
    struct ob_adapter *ad = NULL;
    struct ob_post p = {0};
    struct ob_msgref ref = {0};
    struct post_res r1 = {0}, r2 = {0};
    char *sec_json = NULL, *text;
    cJSON *sec;
    size_t len = 30000, first;
    long i1, i2, i3;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(slack_standin_new(&sd, &loop, &o), 0);
    assert_int_equal(ob_lws_new(&lws, &loop), 0);
    assert_true(asprintf(&sec_json,
                         "{\"bot_token\":\"xoxb-standin-bot\",\"app_token\":\"xapp-standin-app\","
                         "\"api_base\":\"%s\",\"min_post_interval\":\"50ms\"}",
                         slack_standin_api_base(sd)) > 0);
    sec = cJSON_Parse(sec_json);
    free(sec_json);
    env.loop = &loop;
    env.lws = lws;
    assert_int_equal(ob_slack_new(&ad, &env, sec), 0);
    cJSON_Delete(sec);
    assert_int_equal(ad->ops->start(ad), 0);
    assert_true(slack_standin_wait(sd, live_cond, (void *)1, 5000));
    first = slack_standin_ncalls(sd);

    /* 30,000 bytes with a code fence open across the splits. */
    text = malloc(len + 1);
    memcpy(text, "```\n", 4);
    for (size_t i = 4; i < len; i++)
        text[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
    text[len] = '\0';
    p.channel = "C0OPS";
    p.thread = "1700000000.000001";
    p.text = text;
    assert_int_equal(ad->ops->post(ad, &p, post_cb, &r1), 0);
    /* A question right behind it keeps its place in the channel's queue. */
    p.text = "which env? <prod|staging>";
    p.flags = OB_POST_QUESTION;
    p.ask_user = "UDEV";
    assert_int_equal(ad->ops->post(ad, &p, post_cb, &r2), 0);
    free(text);
    assert_true(slack_standin_wait(sd, post_cb_cond, &r2, 5000));
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.status, 0);
    i1 = slack_standin_find_post(sd, "```", first);
    i2 = slack_standin_find_post(sd, "```", (size_t)i1 + 1);
    i3 = slack_standin_find_post(sd, "```", (size_t)i2 + 1);
    assert_true(i1 >= 0 && i2 > i1 && i3 > i2);
    assert_string_equal(r1.ref.message, slack_standin_call(sd, (size_t)i1)->ts);
    assert_string_equal(r1.ref.thread, "1700000000.000001");
    for (long i = i1; i <= i3; i++) {
        const struct standin_call *c = slack_standin_call(sd, (size_t)i);
        const char *t = c->text;
        size_t fences = 0;

        assert_true(strlen(t) <= 12000 + 8);
        for (const char *q = strstr(t, "```"); q; q = strstr(q + 3, "```"))
            fences++;
        assert_int_equal(fences % 2, 0); /* every chunk reads on its own */
        assert_string_equal(c->thread_ts, "1700000000.000001");
        if (i > i1) /* paced */
            assert_true(c->at_ms - slack_standin_call(sd, (size_t)i - 1)->at_ms >= 45);
    }
    /* The question: after the long text, mentions the user, escaped. */
    {
        long q = slack_standin_find_post(sd, "which env?", first);

        assert_true(q > i3);
        assert_string_equal(slack_standin_call(sd, (size_t)q)->text,
                            "<@UDEV> which env? &lt;prod|staging&gt;");
    }

    /* Update and react through the same queue; already_reacted is fine. */
    ob_strlcpy(ref.channel, "C0OPS", sizeof(ref.channel));
    ob_strlcpy(ref.message, r1.ref.message, sizeof(ref.message));
    p.text = "resolved";
    p.flags = OB_POST_APPROVAL | OB_POST_RESOLVED;
    assert_int_equal(ad->ops->update(ad, &ref, &p), 0);
    assert_int_equal(ad->ops->react(ad, &ref, ":white_check_mark:"), 0);
    assert_int_equal(ad->ops->react(ad, &ref, "white_check_mark"), 0);
    assert_true(slack_standin_wait(sd, calls_cond, (void *)(intptr_t)(i3 + 5), 3000));
    {
        const struct standin_call *u = slack_standin_call(sd, slack_standin_ncalls(sd) - 3);
        const struct standin_call *a = slack_standin_call(sd, slack_standin_ncalls(sd) - 2);
        const struct standin_call *b = slack_standin_call(sd, slack_standin_ncalls(sd) - 1);

        assert_string_equal(u->method, "chat.update");
        assert_true(u->has_blocks && !u->has_buttons);
        assert_string_equal(a->method, "reactions.add");
        assert_string_equal(a->name, "white_check_mark");
        assert_string_equal(a->timestamp, r1.ref.message);
        assert_string_equal(b->error, "already_reacted");
    }

    /* A post right before stop is still delivered; then everything closes. */
    memset(&r1, 0, sizeof(r1));
    p.text = "last words";
    p.flags = 0;
    assert_int_equal(ad->ops->post(ad, &p, post_cb, &r1), 0);
    ad->ops->stop(ad);
    assert_true(slack_standin_wait(sd, post_cb_cond, &r1, 3000));
    assert_int_equal(r1.status, 0);
    assert_true(slack_standin_find_post(sd, "last words", 0) >= 0);
    slack_standin_wait(sd, NULL, NULL, 50);
    ad->ops->free(ad);
    ob_lws_free(lws);
    slack_standin_free(sd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- HTTP Events mode ------------------------------------------------------------- */

/* POSTs body to the events endpoint, signed (with the wrong secret when
 * bad_sig) at now + ts_offset_s; returns the HTTP status. */
static long http_post(struct fx *f, int port, const char *ctype, const char *body,
                      int64_t ts_offset_s, bool bad_sig, struct e2e_http_res *r)
{
    char url[128], ts[32], sig[72], hts[64], hsig[100], hct[100];
    const char *headers[] = {hts, hsig, hct, NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slack/events", port);
    snprintf(ts, sizeof(ts), "%lld", (long long)(ob_now_ms() / 1000 + ts_offset_s));
    slack_standin_sign(bad_sig ? "not-the-secret" : SECRET, ts, body, strlen(body), sig);
    snprintf(hts, sizeof(hts), "X-Slack-Request-Timestamp: %s", ts);
    snprintf(hsig, sizeof(hsig), "X-Slack-Signature: %s", sig);
    snprintf(hct, sizeof(hct), "Content-Type: %s", ctype);
    return e2e_http_post(&f->e, url, headers, body, 3000, r);
}

static bool authed_cond(struct slack_standin *s, void *arg)
{
    (void)arg;
    return slack_standin_count(s, "auth.test") >= 1;
}

static void test_http_events(void **state)
{
    struct fx *F = &fxg;
    struct e2e_http_res r;
    char port_s[16], *ev = NULL;
    int port = e2e_free_port();
    const struct standin_call *c;

    (void)state;
    snprintf(port_s, sizeof(port_s), "%d", port);
    setenv("SLACK_EVENTS_PORT", port_s, 1);
    fx_start(F, "http.yaml", NULL, NULL);
    assert_true(slack_standin_wait(F->sd, authed_cond, NULL, 5000));
    slack_standin_wait(F->sd, NULL, NULL, 50);

    http_post(
        F, port, "application/json",
        "{\"token\":\"t\",\"challenge\":\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\","
        "\"type\":\"url_verification\"}",
        0, false, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");

    assert_true(asprintf(&ev,
                         "{\"token\":\"t\",\"team_id\":\"T0STANDIN\",\"api_app_id\":\"A0\","
                         "\"event\":{\"type\":\"message\",\"channel\":\"D0DEV\",\"user\":\"UDEV\","
                         "\"text\":\"status of checkout in prod\",\"ts\":\"1700000500.000100\","
                         "\"channel_type\":\"im\"},\"type\":\"event_callback\",\"event_id\":"
                         "\"Ev0HTTP1\",\"event_time\":1700000500}") > 0);
    assert_int_equal(http_post(F, port, "application/json", ev, 0, true, &r), 401);
    assert_int_equal(http_post(F, port, "application/json", ev, -400, false, &r), 401);
    assert_int_equal(http_post(F, port, "application/json", ev, 400, false, &r), 401);
    slack_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 0);
    assert_true(e2e_log_has(&F->e, "bad signature"));
    assert_true(e2e_log_has(&F->e, "stale timestamp"));

    assert_int_equal(http_post(F, port, "application/json", ev, -100, false, &r), 200);
    c = wait_finished(F);
    assert_string_equal(c->thread_ts, "1700000500.000100");
    /* Slack's retry of the same event (X-Slack-Retry-Num) runs nothing twice. */
    assert_int_equal(http_post(F, port, "application/json", ev, 0, false, &r), 200);
    slack_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    free(ev);

    /* Interactivity arrives form-encoded; a bad signature is refused too. */
    assert_int_equal(http_post(F, port, "application/x-www-form-urlencoded",
                               "payload=%7B%22type%22%3A%22block_actions%22%7D", 0, true, &r),
                     401);
    assert_int_equal(http_post(F, port, "application/x-www-form-urlencoded",
                               "payload=%7B%22type%22%3A%22block_actions%22%7D", 0, false, &r),
                     200);
    e2e_end(&F->e);
}

/* ---- pure parsing ------------------------------------------------------------------- */

static int parse_str(const char *json, struct ob_slack_envelope *e)
{
    char err[160];

    return ob_slack_parse_envelope(json, strlen(json), e, err, sizeof(err));
}

static void test_parse_envelope(void **state)
{
    struct ob_slack_envelope e;
    char err[160];
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "null",
        "{\"type\":1}",
        "{\"type\":\"events_api\"}",
        "{\"type\":\"events_api\",\"envelope_id\":\"a\\\"b\",\"payload\":{}}",
        "{\"type\":\"interactive\",\"envelope_id\":\"\",\"payload\":{}}",
        "\xff\xfe{}",
    };
    const char *ok = "{\"envelope_id\":\"dbdd0ef3-1543\",\"type\":\"events_api\",\"payload\":"
                     "{\"event\":{}},\"accepts_response_payload\":false,\"retry_attempt\":2,"
                     "\"retry_reason\":\"timeout\"}";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ob_slack_parse_envelope(bad[i], strlen(bad[i]), &e, err, sizeof(err));

        assert_true(rc == OB_EJSON || rc == OB_EPARSE);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
        ob_slack_envelope_release(&e);
    }
    /* Payload missing: an error, but the envelope can still be acked. */
    assert_int_equal(parse_str("{\"type\":\"slash_commands\",\"envelope_id\":\"x1\"}", &e),
                     OB_EPARSE);
    assert_string_equal(e.envelope_id, "x1");
    ob_slack_envelope_release(&e);
    assert_int_equal(ob_slack_parse_envelope(ok, strlen(ok), &e, err, sizeof(err)), 0);
    assert_int_equal(e.type, OB_SLACK_EVENTS_API);
    assert_string_equal(e.envelope_id, "dbdd0ef3-1543");
    assert_int_equal(e.retry_attempt, 2);
    assert_non_null(e.payload);
    ob_slack_envelope_release(&e);
    assert_int_equal(parse_str("{\"type\":\"hello\",\"num_connections\":3,\"debug_info\":"
                               "{\"approximate_connection_time\":18060}}",
                               &e),
                     0);
    assert_int_equal(e.type, OB_SLACK_HELLO);
    assert_int_equal(e.num_connections, 3);
    assert_int_equal(e.approximate_connection_time, 18060);
    ob_slack_envelope_release(&e);
    assert_int_equal(parse_str("{\"type\":\"disconnect\",\"reason\":\"link_disabled\"}", &e), 0);
    assert_int_equal(e.type, OB_SLACK_DISCONNECT);
    assert_string_equal(e.reason, "link_disabled");
    ob_slack_envelope_release(&e);

    /* Every truncation and a deterministic set of byte flips: no crash. */
    {
        size_t len = strlen(ok);
        char *buf = malloc(len + 1);
        uint32_t x = 12345;

        for (size_t cut = 0; cut < len; cut++) {
            ob_slack_parse_envelope(ok, cut, &e, err, sizeof(err));
            ob_slack_envelope_release(&e);
        }
        for (int i = 0; i < 5000; i++) {
            memcpy(buf, ok, len + 1);
            for (int k = 0; k < 3; k++) {
                x = x * 1103515245u + 12345u;
                buf[(x >> 8) % len] = (char)(x >> 16);
            }
            if (!ob_slack_parse_envelope(buf, len, &e, err, sizeof(err)) && e.payload) {
                struct ob_slack_event ev;
                const struct ob_slack_self self = {.user_id = "UBOT"};

                ob_slack_payload_event(&self, e.type, e.payload, &ev);
                ob_slack_event_release(&ev);
            }
            ob_slack_envelope_release(&e);
        }
        free(buf);
    }
}

static int payload(const char *json, enum ob_slack_frame type, bool listen_all,
                   struct ob_slack_event *out)
{
    const struct ob_slack_self self = {
        .user_id = "UBOT", .bot_id = "BBOT", .listen_all = listen_all};
    cJSON *p = cJSON_Parse(json);
    int rc;

    assert_non_null(p);
    rc = ob_slack_payload_event(&self, type, p, out);
    cJSON_Delete(p);
    return rc;
}

static void test_payload_events(void **state)
{
    struct ob_slack_event e;
    static const char *const allowed[] = {"C2"};
    const struct ob_slack_self only_c2 = {.user_id = "UBOT", .channels = allowed, .nchannels = 1};
    cJSON *p;

    (void)state;
    p = cJSON_Parse("{\"event\":{\"type\":\"app_mention\",\"user\":\"U1\",\"text\":\"x\","
                    "\"ts\":\"1.1\",\"channel\":\"C1\"}}");
    assert_int_equal(ob_slack_payload_event(&only_c2, OB_SLACK_EVENTS_API, p, &e), 0);
    assert_non_null(strstr(e.ignored, "channels"));
    ob_slack_event_release(&e);
    cJSON_Delete(p);
    assert_int_equal(
        payload("{\"event_id\":\"Ev1\",\"event\":{\"type\":\"app_mention\",\"user\":"
                "\"U1\",\"text\":\"<@UBOT> restart a &amp; b &lt;x&gt;\",\"ts\":\"5.1\","
                "\"channel\":\"C1\",\"thread_ts\":\"4.0\"}}",
                OB_SLACK_EVENTS_API, false, &e),
        1);
    assert_int_equal(e.kind, OB_EV_MESSAGE);
    assert_string_equal(e.text, "restart a & b <x>");
    assert_string_equal(e.thread, "4.0");
    assert_string_equal(e.message, "5.1");
    assert_string_equal(e.id, "Ev1");
    assert_true(e.addressed);
    ob_slack_event_release(&e);
    /* The same post as `message` in a channel: left to app_mention. */
    assert_int_equal(
        payload("{\"event_id\":\"Ev2\",\"event\":{\"type\":\"message\",\"user\":\"U1\","
                "\"text\":\"<@UBOT|opsbot> hi\",\"ts\":\"5.1\",\"channel\":\"C1\","
                "\"channel_type\":\"channel\"}}",
                OB_SLACK_EVENTS_API, true, &e),
        0);
    ob_slack_event_release(&e);
    /* A DM is addressed; a thread root (thread_ts == ts) is not a reply. */
    assert_int_equal(
        payload("{\"event_id\":\"Ev3\",\"event\":{\"type\":\"message\",\"user\":\"U1\","
                "\"text\":\"  status  \",\"ts\":\"6.1\",\"thread_ts\":\"6.1\","
                "\"channel\":\"D1\",\"channel_type\":\"im\"}}",
                OB_SLACK_EVENTS_API, false, &e),
        1);
    assert_true(e.addressed);
    assert_string_equal(e.thread, "");
    assert_string_equal(e.text, "status");
    ob_slack_event_release(&e);
    /* thread_broadcast counts, me_message does not. */
    assert_int_equal(payload("{\"event\":{\"type\":\"message\",\"subtype\":\"thread_broadcast\","
                             "\"user\":\"U1\",\"text\":\"x\",\"ts\":\"7.2\",\"thread_ts\":\"7.1\","
                             "\"channel\":\"C1\",\"channel_type\":\"channel\"}}",
                             OB_SLACK_EVENTS_API, true, &e),
                     1);
    assert_false(e.addressed);
    assert_string_equal(e.id, "msg:C1:7.2");
    ob_slack_event_release(&e);
    assert_int_equal(payload("{\"event\":{\"type\":\"message\",\"subtype\":\"me_message\","
                             "\"user\":\"U1\",\"text\":\"x\",\"ts\":\"7.2\",\"channel\":\"C1\"}}",
                             OB_SLACK_EVENTS_API, true, &e),
                     0);
    ob_slack_event_release(&e);
    /* Reactions and buttons. */
    assert_int_equal(payload("{\"event_id\":\"Ev4\",\"event\":{\"type\":\"reaction_removed\","
                             "\"user\":\"U2\",\"reaction\":\"+1::skin-tone-2\",\"item\":{\"type\":"
                             "\"message\",\"channel\":\"C1\",\"ts\":\"8.1\"}}}",
                             OB_SLACK_EVENTS_API, false, &e),
                     1);
    assert_int_equal(e.kind, OB_EV_REACTION_REMOVE);
    assert_string_equal(e.message, "8.1");
    assert_string_equal(e.emoji, "+1::skin-tone-2");
    ob_slack_event_release(&e);
    assert_int_equal(payload("{\"type\":\"block_actions\",\"user\":{\"id\":\"U3\"},\"container\":"
                             "{\"type\":\"message\",\"message_ts\":\"9.1\",\"channel_id\":\"C1\"},"
                             "\"actions\":[{\"action_id\":\"deny\",\"value\":\"deny\","
                             "\"action_ts\":\"9.5\"}]}",
                             OB_SLACK_INTERACTIVE, false, &e),
                     1);
    assert_int_equal(e.kind, OB_EV_BUTTON);
    assert_string_equal(e.emoji, "deny");
    assert_string_equal(e.message, "9.1");
    assert_string_equal(e.id, "interactive:9.5:U3");
    ob_slack_event_release(&e);
    assert_int_equal(payload("{\"type\":\"block_actions\",\"user\":{\"id\":\"U3\"},\"actions\":"
                             "[{\"action_id\":\"other\",\"value\":\"x\"}]}",
                             OB_SLACK_INTERACTIVE, false, &e),
                     0);
    ob_slack_event_release(&e);
    /* Malformed: ids that are not strings. */
    assert_true(payload("{\"event\":{\"type\":\"message\",\"user\":\"U1\",\"text\":\"x\",\"ts\":5,"
                        "\"channel\":\"C1\"}}",
                        OB_SLACK_EVENTS_API, true, &e) < 0);
    ob_slack_event_release(&e);
    assert_int_equal(payload("{\"command\":\"/opsbot\",\"text\":\"\",\"user_id\":\"U1\","
                             "\"channel_id\":\"C1\",\"trigger_id\":\"1.2.3\"}",
                             OB_SLACK_SLASH_COMMANDS, false, &e),
                     1);
    assert_string_equal(e.text, "help");
    assert_string_equal(e.id, "slash:1.2.3");
    ob_slack_event_release(&e);
}

static void test_signature(void **state)
{
    const char *body = "token=x&command=%2Fopsbot";
    char sig[72], ts[32];
    int64_t now = 1531420618;

    (void)state;
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    slack_standin_sign(SECRET, ts, body, strlen(body), sig);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), ts, sig, body, strlen(body), now + 10),
        0);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), ts, sig, body, strlen(body) - 1, now),
        OB_EDENIED);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), ts, sig, body, strlen(body), now + 301),
        OB_ETIMEOUT);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), ts, "v1=00", body, strlen(body), now),
        OB_EPARSE);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), NULL, sig, body, strlen(body), now),
        OB_EPARSE);
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), "12a", sig, body, strlen(body), now),
        OB_EPARSE);
    sig[10] ^= 1;
    assert_int_equal(
        ob_slack_verify_signature(SECRET, strlen(SECRET), ts, sig, body, strlen(body), now),
        sig[10] == 'g' ? OB_EPARSE : OB_EDENIED);
}

static void test_config_check(void **state)
{
    struct ob_diag d;
    cJSON *sec;

    (void)state;
    ob_diag_init(&d);
    sec =
        cJSON_Parse("{\"app_token\":\"xoxb-secret-value-1\",\"bot_token\":\"xapp-secret-value-2\","
                    "\"listen\":\"sometimes\",\"ping_interval\":\"0s\",\"bogus\":1}");
    assert_int_equal(ob_slack_check(NULL, sec, &d), OB_ECONFIG);
    cJSON_Delete(sec);
    /* Unknown keys are reported first, alone. */
    assert_true(e2e_diag_has(&d, "bogus"));
    ob_diag_release(&d);

    ob_diag_init(&d);
    sec =
        cJSON_Parse("{\"app_token\":\"xoxb-secret-value-1\",\"bot_token\":\"xapp-secret-value-2\","
                    "\"listen\":\"sometimes\",\"ping_interval\":\"0s\",\"api_base\":\"ftp://x\"}");
    assert_int_equal(ob_slack_check(NULL, sec, &d), OB_ECONFIG);
    cJSON_Delete(sec);
    assert_true(
        e2e_diag_has(&d, "platforms.slack.bot_token: must be a bot token starting with \"xoxb-\""));
    assert_true(e2e_diag_has(&d, "platforms.slack.app_token: must be an app-level token"));
    assert_true(e2e_diag_has(&d, "platforms.slack.listen"));
    assert_true(e2e_diag_has(&d, "platforms.slack.ping_interval"));
    assert_true(e2e_diag_has(&d, "platforms.slack.api_base"));
    assert_false(e2e_diag_has(&d, "secret-value"));
    ob_diag_release(&d);

    /* HTTP Events only: no app token needed, the signing secret is. */
    ob_diag_init(&d);
    sec = cJSON_Parse("{\"bot_token\":\"xoxb-1\",\"http_events\":{\"listen\":\":3000\"}}");
    assert_int_equal(ob_slack_check(NULL, sec, &d), OB_ECONFIG);
    cJSON_Delete(sec);
    assert_true(e2e_diag_has(&d, "signing_secret"));
    assert_false(e2e_diag_has(&d, "app_token"));
    ob_diag_release(&d);

    ob_diag_init(&d);
    sec = cJSON_Parse("{\"bot_token\":\"xoxb-1\",\"app_token\":\"xapp-1\",\"channels\":[\"C1\"],"
                      "\"min_post_interval\":\"10ms\"}");
    assert_int_equal(ob_slack_check(NULL, sec, &d), 0);
    cJSON_Delete(sec);
    ob_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_envelope),
        cmocka_unit_test(test_payload_events),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_adapter_direct),
        cmocka_unit_test_teardown(test_mention_reaction_flow, e2e_teardown),
        cmocka_unit_test_teardown(test_button_flow, e2e_teardown),
        cmocka_unit_test_teardown(test_stranger_refused, e2e_teardown),
        cmocka_unit_test_teardown(test_redelivery_once, e2e_teardown),
        cmocka_unit_test_teardown(test_refresh_loses_nothing, e2e_teardown),
        cmocka_unit_test_teardown(test_dead_socket_reconnects, e2e_teardown),
        cmocka_unit_test_teardown(test_abrupt_close_reconnects, e2e_teardown),
        cmocka_unit_test_teardown(test_ratelimit_keeps_order, e2e_teardown),
        cmocka_unit_test_teardown(test_bad_bot_token_fatal, e2e_teardown),
        cmocka_unit_test_teardown(test_bad_app_token_fatal, e2e_teardown),
        cmocka_unit_test_teardown(test_token_revoked_midway, e2e_teardown),
        cmocka_unit_test_teardown(test_link_disabled, e2e_teardown),
        cmocka_unit_test_teardown(test_noise_ignored, e2e_teardown),
        cmocka_unit_test_teardown(test_listen_all, e2e_teardown),
        cmocka_unit_test_teardown(test_slash_command, e2e_teardown),
        cmocka_unit_test_teardown(test_channel_not_found_logged, e2e_teardown),
        cmocka_unit_test_teardown(test_http_events, e2e_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
