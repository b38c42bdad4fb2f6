/* Teams adapter, end to end: the real pipeline (ob_bundle_load, ob_bot_new,
 * ob_bot_start) on one loop with the local Bot Framework
 * (tests/standins/teams_standin.c), plus unit tests of the pure JWT,
 * key-cache, activity and card functions. Each end-to-end test has its own
 * loop, state directory and stand-in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "e2e_fixture.h"
#include "opsbot/bot.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/platform.h"
#include "opsbot/teams.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "teams_standin.h"

#define CHAN "19:ops@thread.tacv2"
#define DM "a:1dev-personal-chat"
#define ID_LEN 32 /* an activity id */

struct fx {
    struct e2e e; /* first: the hooks get &fx->e */
    struct teams_standin *sd;
    char url[128]; /* opsbot's messaging endpoint */
};

static struct fx fxg;

/* ---- fixture ---------------------------------------------------------------- */

static void free_standin(struct e2e *e)
{
    teams_standin_free(((struct fx *)e)->sd);
}

/* Posts still on their way are delivered before the bot goes. */
static const struct e2e_hooks hooks = {
    .name = "teams", .free_standin = free_standin, .drain_inflight = true};

static bool ready_cond(struct e2e *e, void *arg)
{
    (void)arg;
    return e2e_log_has(e, "loaded 2 Bot Framework signing key(s)") &&
           e2e_log_has(e, "got a Connector token");
}

static void fx_start_opts(struct fx *f, const struct teams_standin_opts *o, const char *secret,
                          bool wait_ready)
{
    char port_s[16];
    int port = e2e_free_port();

    memset(f, 0, sizeof(*f));
    e2e_begin(&f->e, &hooks);
    assert_int_equal(teams_standin_new(&f->sd, &f->e.loop, o), 0);
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/api/messages", port);
    setenv("TEAMS_PORT", port_s, 1);
    setenv("TEAMS_APP_ID", TEAMS_STANDIN_APP_ID, 1);
    setenv("TEAMS_APP_SECRET", secret ? secret : TEAMS_STANDIN_SECRET, 1);
    setenv("TEAMS_TOKEN_URL", teams_standin_token_url(f->sd), 1);
    setenv("TEAMS_OPENID_URL", teams_standin_openid_url(f->sd), 1);
    setenv("TEAMS_SERVICE_URL", teams_standin_service_url(f->sd), 1);
    e2e_start_bot(&f->e, "opsbot.yaml");
    if (wait_ready)
        assert_true(e2e_wait(&f->e, ready_cond, NULL, 5000));
}

static void fx_start(struct fx *f)
{
    fx_start_opts(f, NULL, NULL, true);
}

static const struct teams_call *call_at(struct fx *f, long idx)
{
    assert_true(idx >= 0);
    return teams_standin_call(f->sd, (size_t)idx);
}

/* Sends json signed per mode and frees it; returns the HTTP status. */
static long send_act(struct fx *f, char *json, enum teams_sign mode, struct teams_answer *ans)
{
    long st = teams_standin_post(f->sd, f->url, json, mode, ans);

    free(json);
    return st;
}

/* dev writes text in the personal chat as activity id, signed per mode;
 * returns the HTTP status. */
static long send_dm(struct fx *f, const char *id, const char *text, enum teams_sign mode)
{
    return send_act(f, teams_standin_message(f->sd, id, DM, "personal", "dev", text, false), mode,
                    NULL);
}

/* The same, signed properly, as a fresh activity id (written to id). */
static long new_dm(struct fx *f, char id[ID_LEN], const char *text)
{
    teams_standin_new_id(f->sd, id, ID_LEN);
    return send_dm(f, id, text, TEAMS_SIGN_OK);
}

/* A request in a channel thread and its approval card. */
struct approval {
    char root[ID_LEN]; /* the request, the thread's root */
    char conv[300];    /* the thread's conversation id */
    char card[64];     /* the card's activity id */
    char card_ref[40]; /* the ref in its buttons' data */
    char id[ID_LEN];   /* the last activity sent about it */
};

/* Every successful POST went into the thread of a. */
static void assert_all_in_thread(struct fx *f, const struct approval *a)
{
    for (size_t i = 0; i < teams_standin_ncalls(f->sd); i++) {
        const struct teams_call *c = teams_standin_call(f->sd, i);

        if (strcmp(c->method, "POST") || c->status != 201)
            continue;
        if (strcmp(c->conversation, a->conv) || strcmp(c->target, a->root) ||
            strcmp(c->reply_to, a->root))
            fail_msg("post %zu (\"%.60s\") went to %s/%s, not %s/%s", i, c->text, c->conversation,
                     c->target, a->conv, a->root);
    }
}

/* @opsbot restart checkout in prod, as a new channel post: a gets the
 * thread and the approval card. */
static void ask_prod_restart(struct fx *f, struct approval *a)
{
    const struct teams_call *c;
    long idx;

    memset(a, 0, sizeof(*a));
    teams_standin_new_id(f->sd, a->root, sizeof(a->root));
    snprintf(a->conv, sizeof(a->conv), "%s;messageid=%s", CHAN, a->root);
    assert_int_equal(send_act(f,
                              teams_standin_message(f->sd, a->root, a->conv, "channel", "dev",
                                                    "restart checkout in prod", true),
                              TEAMS_SIGN_OK, NULL),
                     200);
    idx = teams_standin_wait_post(f->sd, "APPROVAL NEEDED", 5000);
    c = call_at(f, idx);
    assert_true(c->has_card);
    assert_true(c->has_buttons);
    assert_string_equal(c->target, a->root);
    assert_true(
        teams_standin_find_post(f->sd, "understood: restart service=checkout env=prod", 0) >= 0);
    /* opsbot has read the Connector's answer: it knows the card's id. */
    assert_true(e2e_wait_idle(&f->e, 3000));
    c = call_at(f, idx);
    ob_strlcpy(a->card, c->id, sizeof(a->card));
    ob_strlcpy(a->card_ref, c->card_ref, sizeof(a->card_ref));
}

/* user presses verb on the card as a fresh activity (a->id): an
 * Action.Execute invoke, or the Action.Submit fallback; returns the HTTP
 * status (the invoke's answer in ans). */
static long press(struct fx *f, struct approval *a, const char *user, const char *verb,
                  bool fallback, struct teams_answer *ans)
{
    char *json;

    teams_standin_new_id(f->sd, a->id, sizeof(a->id));
    if (fallback)
        json = teams_standin_submit(f->sd, a->id, a->conv, user, a->card, verb, NULL);
    else
        json = teams_standin_invoke(f->sd, a->id, a->conv, user, a->card, verb, a->card_ref);
    return send_act(f, json, TEAMS_SIGN_OK, ans);
}

/* user reacts with type to the card as a fresh activity; returns the HTTP
 * status. */
static long react(struct fx *f, struct approval *a, const char *user, const char *type)
{
    teams_standin_new_id(f->sd, a->id, sizeof(a->id));
    return send_act(f, teams_standin_reaction(f->sd, a->id, a->conv, user, a->card, type, true),
                    TEAMS_SIGN_OK, NULL);
}

/* ---- end to end ----------------------------------------------------------------- */

static void test_execute_approve(void **state)
{
    struct fx *F = &fxg;
    struct approval a;
    struct teams_answer ans;
    const struct teams_call *c;
    cJSON *o;
    long last = -1;

    (void)state;
    fx_start(F);
    ask_prod_restart(F, &a);
    /* The mention was stripped: the core understood the plain request. */
    assert_int_equal(teams_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(press(F, &a, "oncall", "approve", false, &ans), 200);
    /* The invoke is answered in the body with the updated card. */
    o = cJSON_Parse(ans.body);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "statusCode")->valueint, 200);
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring,
                        "application/vnd.microsoft.card.adaptive");
    {
        const cJSON *v = cJSON_GetObjectItem(o, "value");
        char *s = cJSON_PrintUnformatted(v);

        assert_string_equal(cJSON_GetObjectItem(v, "type")->valuestring, "AdaptiveCard");
        assert_null(cJSON_GetObjectItem(v, "actions"));
        assert_non_null(strstr(s, "APPROVED by teams:aad-oncall"));
        free(s);
    }
    cJSON_Delete(o);
    c = call_at(F, teams_standin_wait_post(F->sd, "finished: exit 0", 8000));
    assert_string_equal(c->target, a.root);
    assert_true(teams_standin_find_post(F->sd, "approved by teams:aad-oncall", 0) >= 0);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 1);
    /* The card was updated for everyone: PUT, outcome, no buttons. */
    assert_int_equal(teams_standin_updates(F->sd, a.card, &last), 1);
    c = call_at(F, last);
    assert_true(c->has_card);
    assert_false(c->has_buttons);
    assert_non_null(strstr(c->text, "APPROVED by teams:aad-oncall"));
    assert_string_equal(c->conversation, a.conv);
    assert_all_in_thread(F, &a);
    /* The same invoke delivered again runs nothing twice. */
    assert_int_equal(
        send_act(F, teams_standin_invoke(F->sd, a.id, a.conv, "oncall", a.card, "approve", NULL),
                 TEAMS_SIGN_OK, &ans),
        200);
    teams_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 1);
    assert_true(e2e_log_has(&F->e, "already handled"));
    /* Every Connector call carried a token the stand-in issued. */
    assert_int_equal(teams_standin_bad_bearers(F->sd), 0);
    assert_string_equal(teams_standin_token_tenant(F->sd), "botframework.com");
    e2e_end(&F->e);
}

static void test_execute_deny(void **state)
{
    struct fx *F = &fxg;
    struct approval a;
    struct teams_answer ans;
    long last = -1;

    (void)state;
    fx_start(F);
    ask_prod_restart(F, &a);
    assert_int_equal(press(F, &a, "oncall", "deny", false, &ans), 200);
    assert_non_null(strstr(ans.body, "REFUSED by teams:aad-oncall"));
    assert_non_null(strstr(ans.body, "application/vnd.microsoft.card.adaptive"));
    teams_standin_wait_post(F->sd, "not run", 5000);
    assert_true(teams_standin_updates(F->sd, a.card, &last) == 1);
    assert_non_null(strstr(call_at(F, last)->text, "REFUSED"));
    assert_false(call_at(F, last)->has_buttons);
    teams_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 0);
    assert_all_in_thread(F, &a);
    e2e_end(&F->e);
}

static void test_stranger_refused(void **state)
{
    struct fx *F = &fxg;
    struct approval a;
    struct teams_answer ans;
    const struct teams_call *c;
    cJSON *o;

    (void)state;
    fx_start(F);
    ask_prod_restart(F, &a);
    assert_int_equal(press(F, &a, "stranger", "approve", false, &ans), 200);
    /* Only the clicker sees why (the invoke answer) ... */
    o = cJSON_Parse(ans.body);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring,
                        "application/vnd.microsoft.activity.message");
    assert_non_null(strstr(cJSON_GetObjectItem(o, "value")->valuestring, "vote not counted"));
    assert_non_null(strstr(cJSON_GetObjectItem(o, "value")->valuestring, "teams:aad-stranger"));
    cJSON_Delete(o);
    /* ... and the thread gets the reply too; the card is unchanged. */
    c = call_at(F, teams_standin_wait_post(F->sd, "vote not counted", 5000));
    assert_string_equal(c->target, a.root);
    assert_int_equal(teams_standin_updates(F->sd, a.card, NULL), 0);
    /* The requester withdraws through the Action.Submit fallback. */
    assert_int_equal(press(F, &a, "dev", "deny", true, NULL), 200);
    teams_standin_wait_post(F->sd, "not run", 5000);
    assert_true(teams_standin_find_post(F->sd, "WITHDRAWN", 0) >= 0);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 0);
    assert_all_in_thread(F, &a);
    e2e_end(&F->e);
}

static void test_reaction_approval(void **state)
{
    struct fx *F = &fxg;
    struct approval a;
    const struct teams_call *c;
    long last = -1;

    (void)state;
    fx_start(F);
    ask_prod_restart(F, &a);
    /* A heart is everyday chat; the like (👍) approves. */
    assert_int_equal(react(F, &a, "oncall", "heart"), 200);
    assert_int_equal(react(F, &a, "oncall", "like"), 200);
    c = call_at(F, teams_standin_wait_post(F->sd, "finished: exit 0", 8000));
    assert_string_equal(c->target, a.root);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 1);
    assert_int_equal(teams_standin_updates(F->sd, a.card, &last), 1);
    assert_non_null(strstr(call_at(F, last)->text, "APPROVED by teams:aad-oncall"));
    assert_all_in_thread(F, &a);
    e2e_end(&F->e);
}

/* Every bad token: 401, nothing posted, nothing claimed. */
static void test_bad_tokens(void **state)
{
    static const enum teams_sign bad[] = {
        TEAMS_SIGN_BAD_SIGNATURE, TEAMS_SIGN_WRONG_AUDIENCE, TEAMS_SIGN_EXPIRED,
        TEAMS_SIGN_WRONG_ISSUER,  TEAMS_SIGN_NO_ENDORSEMENT, TEAMS_SIGN_WRONG_SERVICEURL,
        TEAMS_SIGN_UNKNOWN_KID,   TEAMS_SIGN_NO_HEADER,      TEAMS_SIGN_BASIC,
        TEAMS_SIGN_HS256,         TEAMS_SIGN_NOT_YET_VALID,
    };
    static const char *const lines[] = {
        "bad signature",
        "wrong audience",
        "token expired",
        "wrong issuer",
        "is not endorsed for channel msteams",
        "serviceurl claim does not match",
        "unknown signing key (kid standin-k3",
        "no Authorization header",
        "Authorization is not a Bearer token",
        "signing algorithm HS256 is not allowed",
        "token not valid yet",
    };
    struct fx *F = &fxg;
    char id[ID_LEN];
    size_t calls, jwks;

    (void)state;
    fx_start(F);
    calls = teams_standin_ncalls(F->sd);
    jwks = teams_standin_jwks_requests(F->sd);
    teams_standin_new_id(F->sd, id, sizeof(id));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long st = send_dm(F, id, "status of checkout in prod", bad[i]);

        if (st != 401)
            fail_msg("%s: got HTTP %ld, not 401", teams_sign_name(bad[i]), st);
        if (!e2e_log_has(&F->e, lines[i]))
            fail_msg("%s: no log line \"%s\"", teams_sign_name(bad[i]), lines[i]);
    }
    teams_standin_wait(F->sd, NULL, NULL, 200);
    assert_int_equal(teams_standin_ncalls(F->sd), calls); /* nothing posted */
    /* The unknown kid did not refetch the keys (keys are an hour old at most). */
    assert_int_equal(teams_standin_jwks_requests(F->sd), jwks);
    /* The same activity id, signed properly, is processed: nothing claimed it. */
    assert_int_equal(send_dm(F, id, "status of checkout in prod", TEAMS_SIGN_OK), 200);
    assert_true(teams_standin_wait_post(F->sd, "finished: exit 0", 8000) >= 0);
    e2e_end(&F->e);
}

static void test_key_rotation(void **state)
{
    struct fx *F = &fxg;
    char id[ID_LEN];

    (void)state;
    fx_start(F);
    /* A new key: its first token is refused (keys refreshed < 1 h ago) ... */
    teams_standin_rotate(F->sd);
    assert_int_equal(new_dm(F, id, "status of checkout in prod"), 401);
    assert_int_equal(teams_standin_jwks_requests(F->sd), 1);
    assert_true(e2e_log_has(&F->e, "unknown signing key (kid standin-k4"));
    e2e_end(&F->e);
}

static void test_malformed_and_oversized(void **state)
{
    struct fx *F = &fxg;
    char *big;
    size_t n = 70 * 1024, calls;
    struct teams_answer ans;

    (void)state;
    fx_start(F);
    calls = teams_standin_ncalls(F->sd);
    assert_int_equal(
        teams_standin_post(F->sd, F->url, "{\"type\":\"message\", nope", TEAMS_SIGN_OK, &ans), 400);
    assert_true(e2e_log_has(&F->e, "malformed JSON body (400)"));
    /* Not authenticated and malformed: 401 wins (auth first). */
    assert_int_equal(
        teams_standin_post(F->sd, F->url, "{\"type\":", TEAMS_SIGN_BAD_SIGNATURE, &ans), 401);
    big = malloc(n + 1);
    memset(big, 'x', n);
    memcpy(big, "{\"type\":\"message\",\"text\":\"", 26);
    memcpy(big + n - 2, "\"}", 2);
    big[n] = '\0';
    assert_int_equal(teams_standin_post(F->sd, F->url, big, TEAMS_SIGN_OK, &ans), 413);
    free(big);
    /* Authentic, valid JSON, but no activity fields. */
    assert_int_equal(
        teams_standin_post(F->sd, F->url, "{\"type\":\"message\"}", TEAMS_SIGN_OK, &ans), 400);
    teams_standin_wait(F->sd, NULL, NULL, 100);
    assert_int_equal(teams_standin_ncalls(F->sd), calls);
    e2e_end(&F->e);
}

static bool tokens_cond(struct teams_standin *s, void *arg)
{
    return teams_standin_tokens_issued(s) >= (size_t)(intptr_t)arg;
}

static void test_token_refresh(void **state)
{
    struct fx *F = &fxg;
    struct teams_standin_opts o = {0};
    char id[ID_LEN];
    long a, b;

    (void)state;
    o.expires_in = 2; /* refreshed after 1 s (halfway) */
    fx_start_opts(F, &o, NULL, true);
    assert_int_equal(new_dm(F, id, "status of checkout in prod"), 200);
    a = teams_standin_wait_post(F->sd, "finished: exit 0", 8000);
    assert_true(a >= 0);
    /* The token was renewed in the background before it expired. */
    assert_true(teams_standin_wait(F->sd, tokens_cond, (void *)3, 5000));
    assert_int_equal(new_dm(F, id, "status of payments in prod"), 200);
    b = teams_standin_wait_post(F->sd, "payments", 8000);
    assert_true(b > a);
    assert_int_equal(teams_standin_bad_bearers(F->sd), 0);
    /* Revoked tokens: the Connector says 401, opsbot gets a new one and
     * retries once. */
    teams_standin_revoke_tokens(F->sd);
    assert_int_equal(new_dm(F, id, "status of search in prod"), 200);
    assert_true(teams_standin_wait_post(F->sd, "service=search", 8000) >= 0);
    assert_true(teams_standin_bad_bearers(F->sd) >= 1);
    assert_false(e2e_log_has(&F->e, "standin-token"));
    e2e_end(&F->e);
}

static void test_429_keeps_order(void **state)
{
    struct fx *F = &fxg;
    char id[ID_LEN];
    long u, p, r, fin, first_429 = -1;

    (void)state;
    fx_start(F);
    teams_standin_fail(F->sd, 429, 2, 1);
    assert_int_equal(new_dm(F, id, "restart checkout in staging"), 200);
    fin = teams_standin_wait_post(F->sd, "finished: exit 0", 10000);
    assert_true(fin >= 0);
    u = teams_standin_find_post(F->sd, "understood:", 0);
    p = teams_standin_find_post(F->sd, "policy: allowed", 0);
    r = teams_standin_find_post(F->sd, "running:", 0);
    /* understood + policy: one message; running (+ a quick result): the
     * next ones (bot.c gathers the steps of a loop turn) */
    assert_true(u >= 0 && u == p && p < r && r <= fin);
    for (size_t i = 0; i < teams_standin_ncalls(F->sd); i++)
        if (teams_standin_call(F->sd, i)->status == 429 && first_429 < 0)
            first_429 = (long)i;
    assert_true(first_429 >= 0 && first_429 < u);
    /* Retry-After: 1 honoured (twice). */
    assert_true(call_at(F, u)->at_ms - call_at(F, first_429)->at_ms >= 1900);
    assert_int_equal(teams_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(teams_standin_count_posts(F->sd, "running:"), 1);
    /* DMs reply to the message (no channel thread). */
    assert_string_equal(call_at(F, fin)->conversation, DM);
    assert_string_equal(call_at(F, fin)->target, id);
    assert_true(e2e_log_has(&F->e, "rate limited (429)"));
    e2e_end(&F->e);
}

static void test_ask_in_chat(void **state)
{
    struct fx *F = &fxg;
    char id[ID_LEN], first[ID_LEN];
    const struct teams_call *c;

    (void)state;
    fx_start(F);
    assert_int_equal(new_dm(F, first, "restart checkout"), 200);
    /* The question mentions the asker with a proper entity. */
    c = call_at(F, teams_standin_wait_post(F->sd, "Which", 5000));
    assert_string_equal(c->mention_id, "29:dev");
    assert_string_equal(c->mention_text, "<at>Dev</at>");
    assert_non_null(strstr(c->text, "<at>Dev</at>"));
    /* The answer, a plain new message in the chat, goes to the request. */
    assert_int_equal(new_dm(F, id, "staging"), 200);
    c = call_at(F, teams_standin_wait_post(F->sd, "finished: exit 0", 8000));
    assert_string_equal(c->target, first);
    e2e_end(&F->e);
}

static void test_install_and_tenants(void **state)
{
    struct fx *F = &fxg;
    char id[ID_LEN];
    long h;
    char *json;
    cJSON *o;

    (void)state;
    fx_start(F);
    teams_standin_new_id(F->sd, id, sizeof(id));
    assert_int_equal(
        send_act(F, teams_standin_install(F->sd, id, CHAN, "channel"), TEAMS_SIGN_OK, NULL), 200);
    h = teams_standin_wait_post(F->sd, "Hello, I am opsbot", 5000);
    assert_true(h >= 0);
    assert_string_equal(call_at(F, h)->conversation, CHAN);
    assert_string_equal(call_at(F, h)->target, "");
    /* A tenant outside allowed_tenants is refused. */
    teams_standin_new_id(F->sd, id, sizeof(id));
    json = teams_standin_message(F->sd, id, DM, "personal", "dev", "status of checkout in prod",
                                 false);
    o = cJSON_Parse(json);
    free(json);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "channelData"), "tenant"),
                              "id", cJSON_CreateString("tenant-evil"));
    json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_int_equal(send_act(F, json, TEAMS_SIGN_OK, NULL), 403);
    assert_true(e2e_log_has(&F->e, "tenant-evil refused (403)"));
    e2e_end(&F->e);
}

static void test_bad_secret_fatal(void **state)
{
    struct fx *F = &fxg;

    (void)state;
    fx_start_opts(F, NULL, "wrong~secret-123", false);
    assert_true(e2e_wait_exit(&F->e, 5000));
    assert_int_equal(ob_bot_exit_status(F->e.bot), 1);
    assert_true(e2e_log_has(&F->e, "AADSTS7000215: invalid client secret"));
    assert_true(e2e_log_has(&F->e, "check platforms.teams.app_secret"));
    assert_false(e2e_log_has(&F->e, "wrong~secret-123"));
    assert_int_equal(teams_standin_token_requests(F->sd), 1);
    e2e_end(&F->e);
}

/* ---- pure functions ---------------------------------------------------------------- */

static void test_b64url(void **state)
{
    unsigned char out[16];
    size_t n = 0;

    (void)state;
    assert_int_equal(ob_teams_b64url_decode("", 0, out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ob_teams_b64url_decode("Zm9vYg", 6, out, sizeof(out), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(ob_teams_b64url_decode("Zm9vYg==", 8, out, sizeof(out), &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(ob_teams_b64url_decode("-_-_", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xbf);
    /* '+' and '/' are plain base64, not base64url. */
    assert_int_equal(ob_teams_b64url_decode("+/+/", 4, out, sizeof(out), &n), OB_EPARSE);
    assert_int_equal(ob_teams_b64url_decode("Zm9vY", 5, out, sizeof(out), &n), OB_EPARSE);
    assert_int_equal(ob_teams_b64url_decode("Zm9vYh", 6, out, sizeof(out), &n), OB_EPARSE);
    assert_int_equal(ob_teams_b64url_decode("Zm9v YQ", 7, out, sizeof(out), &n), OB_EPARSE);
    assert_int_equal(ob_teams_b64url_decode("Zm9vYmFyYmF6", 12, out, 4, &n), OB_E2BIG);
}

static char *claims(const char *iss, const char *aud, int64_t exp, int64_t nbf, const char *surl)
{
    char *s = NULL;

    assert_true(asprintf(&s,
                         "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lld,\"nbf\":%lld,"
                         "\"serviceurl\":\"%s\"}",
                         iss, aud, (long long)exp, (long long)nbf, surl) > 0);
    return s;
}

static int check(const char *token, const char *surl, int64_t now, char *why)
{
    struct ob_teams_jwt t;
    struct ob_teams_expect x = {"https://api.botframework.com", "app-1", surl, 300};
    char err[160];
    int rc = ob_teams_jwt_parse(token, strlen(token), &t, err, sizeof(err));

    if (!rc)
        rc = ob_teams_jwt_check_claims(&t, &x, now, why, 200);
    else
        snprintf(why, 200, "%s", err);
    ob_teams_jwt_release(&t);
    return rc;
}

static void test_jwt(void **state)
{
    uv_loop_t loop;
    struct teams_standin *sd = NULL;
    struct ob_teams_keys keys = {0};
    struct ob_teams_jwt t;
    char *jwks, *c, *tok, why[200], err[160], flipped;
    int64_t now = 1800000000;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(teams_standin_new(&sd, &loop, NULL), 0);
    jwks = teams_standin_jwks(sd);
    assert_int_equal(ob_teams_jwks_parse(jwks, strlen(jwks), &keys), 2);
    free(jwks);
    assert_true(ob_teams_key_endorses(ob_teams_keys_find(&keys, "standin-k1"), "msteams"));
    assert_false(ob_teams_key_endorses(ob_teams_keys_find(&keys, "standin-k2"), "msteams"));
    assert_true(ob_teams_key_endorses(ob_teams_keys_find(&keys, "standin-k2"), "webchat"));
    assert_null(ob_teams_keys_find(&keys, "standin-k9"));

    /* Good token: parses, claims pass, signature verifies. */
    c = claims("https://api.botframework.com", "\"app-1\"", now + 3600, now - 60,
               "https://smba.example/");
    tok = teams_standin_sign_jwt(sd, "standin-k1", c);
    free(c);
    assert_int_equal(check(tok, "https://smba.example/", now, why), 0);
    assert_int_equal(ob_teams_jwt_parse(tok, strlen(tok), &t, err, sizeof(err)), 0);
    assert_string_equal(t.alg, "RS256");
    assert_string_equal(t.kid, "standin-k1");
    assert_int_equal(ob_teams_jwt_verify_sig(&t, tok, ob_teams_keys_find(&keys, "standin-k1")), 0);
    /* Another key does not verify it; a flipped byte does not either. */
    assert_int_equal(ob_teams_jwt_verify_sig(&t, tok, ob_teams_keys_find(&keys, "standin-k2")),
                     OB_EDENIED);
    ob_teams_jwt_release(&t);
    /* another base64url digit (flipping a bit could make '-' a ',', which
     * no longer parses) */
    flipped = tok[strlen(tok) - 5];
    tok[strlen(tok) - 5] = flipped == 'A' ? 'B' : 'A';
    assert_int_equal(ob_teams_jwt_parse(tok, strlen(tok), &t, err, sizeof(err)), 0);
    assert_int_equal(ob_teams_jwt_verify_sig(&t, tok, ob_teams_keys_find(&keys, "standin-k1")),
                     OB_EDENIED);
    ob_teams_jwt_release(&t);
    tok[strlen(tok) - 5] = flipped;
    /* Skew: 5 minutes either way. */
    assert_int_equal(check(tok, NULL, now + 3600 + 299, why), 0);
    assert_int_equal(check(tok, NULL, now + 3600 + 301, why), OB_EDENIED);
    assert_non_null(strstr(why, "expired"));
    assert_int_equal(check(tok, NULL, now - 60 - 299, why), 0);
    assert_int_equal(check(tok, NULL, now - 60 - 301, why), OB_EDENIED);
    assert_non_null(strstr(why, "not valid yet"));
    assert_int_equal(check(tok, "https://other/", now, why), OB_EDENIED);
    assert_non_null(strstr(why, "serviceurl"));
    free(tok);

    /* Audience as an array; wrong issuer; wrong audience. */
    c = claims("https://api.botframework.com", "[\"x\",\"app-1\"]", now + 60, now, "s");
    tok = teams_standin_sign_jwt(sd, "standin-k1", c);
    assert_int_equal(check(tok, "s", now, why), 0);
    free(c);
    free(tok);
    c = claims("https://sts.windows.net/x/", "\"app-1\"", now + 60, now, "s");
    tok = teams_standin_sign_jwt(sd, "standin-k1", c);
    assert_int_equal(check(tok, "s", now, why), OB_EDENIED);
    assert_non_null(strstr(why, "wrong issuer"));
    free(c);
    free(tok);
    c = claims("https://api.botframework.com", "\"app-2\"", now + 60, now, "s");
    tok = teams_standin_sign_jwt(sd, "standin-k1", c);
    assert_int_equal(check(tok, "s", now, why), OB_EDENIED);
    assert_non_null(strstr(why, "wrong audience"));
    free(c);
    free(tok);

    /* Malformed tokens. */
    assert_int_equal(check("abc", NULL, now, why), OB_EPARSE);
    assert_int_equal(check("a.b", NULL, now, why), OB_EPARSE);
    assert_int_equal(check("a.b.c.d", NULL, now, why), OB_EPARSE);
    assert_int_equal(check("e30.e30.", NULL, now, why), OB_EPARSE);
    assert_int_equal(check("bm9wZQ.e30.YWJj", NULL, now, why), OB_EJSON);
    /* {"alg":"none"} */
    assert_int_equal(check("eyJhbGciOiJub25lIn0.e30.YWJj", NULL, now, why), OB_EDENIED);
    assert_non_null(strstr(why, "none"));

    ob_teams_keys_release(&keys);
    teams_standin_free(sd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_keys_policy(void **state)
{
    struct ob_teams_keys k;
    int64_t t0 = 1000000000000LL;

    (void)state;
    memset(&k, 0, sizeof(k));
    /* Nothing yet: fetch; a failed fetch is retried after 10 s. */
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0), OB_TEAMS_KEYS_FETCH);
    k.attempt_ms = t0;
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0 + 5000), OB_TEAMS_KEYS_UNAVAILABLE);
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0 + 10000), OB_TEAMS_KEYS_FETCH);
    /* Keys loaded at t0. */
    k.n = 1;
    ob_strlcpy(k.keys[0].kid, "a", sizeof(k.keys[0].kid));
    k.fetched_ms = t0;
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0 + 1000), OB_TEAMS_KEYS_USE);
    /* Unknown kid: refetch at most once an hour. */
    assert_int_equal(ob_teams_keys_decide(&k, "b", t0 + 1000), OB_TEAMS_KEYS_UNKNOWN_KID);
    assert_int_equal(ob_teams_keys_decide(&k, "b", t0 + 3599999), OB_TEAMS_KEYS_UNKNOWN_KID);
    assert_int_equal(ob_teams_keys_decide(&k, "b", t0 + 3600000), OB_TEAMS_KEYS_FETCH);
    k.attempt_ms = t0 + 3600000;
    assert_int_equal(ob_teams_keys_decide(&k, "b", t0 + 3600001), OB_TEAMS_KEYS_UNKNOWN_KID);
    /* After 24 h the keys are refreshed even for a known kid ... */
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0 + 24 * 3600000LL), OB_TEAMS_KEYS_FETCH);
    /* ... and while that refresh is failing, the known key still works. */
    k.attempt_ms = t0 + 24 * 3600000LL;
    assert_int_equal(ob_teams_keys_decide(&k, "a", t0 + 24 * 3600000LL + 1), OB_TEAMS_KEYS_USE);
    assert_int_equal(ob_teams_keys_decide(&k, "z", t0 + 24 * 3600000LL + 1),
                     OB_TEAMS_KEYS_UNKNOWN_KID);
    assert_null(ob_teams_keys_find(&k, ""));
    /* Documents. */
    {
        char uri[128];

        assert_int_equal(
            ob_teams_openid_jwks_uri("{\"jwks_uri\":\"https://x/keys\"}", 29, uri, sizeof(uri)), 0);
        assert_string_equal(uri, "https://x/keys");
        assert_int_equal(
            ob_teams_openid_jwks_uri("{\"jwks_uri\":\"ftp://x\"}", 22, uri, sizeof(uri)),
            OB_EPARSE);
        assert_int_equal(ob_teams_openid_jwks_uri("nope", 4, uri, sizeof(uri)), OB_EJSON);
        assert_int_equal(ob_teams_jwks_parse("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\"}]}", 34, &k),
                         OB_EPARSE);
        assert_int_equal(k.n, 1); /* a failed parse keeps the old keys */
    }
}

static int parse_json(const char *json, struct ob_teams_activity *a)
{
    const struct ob_teams_self self = {"app-1"};
    cJSON *o = cJSON_Parse(json);
    int rc = ob_teams_activity_parse(&self, o, a);

    cJSON_Delete(o);
    return rc;
}

static void test_activities(void **state)
{
    struct ob_teams_activity a;

    (void)state;
    /* A channel message mentioning the bot. */
    assert_int_equal(
        parse_json("{\"type\":\"message\",\"id\":\"m1\",\"channelId\":\"msteams\","
                   "\"serviceUrl\":\"https://smba/\",\"from\":{\"id\":\"29:u\",\"name\":\"Ada\","
                   "\"aadObjectId\":\"aad-u\"},\"conversation\":{\"id\":\"19:c@thread.tacv2;"
                   "messageid=r1\",\"conversationType\":\"channel\"},\"recipient\":{\"id\":"
                   "\"28:app-1\",\"name\":\"Ops Bot\"},\"text\":\"<at>Ops Bot</at> restart "
                   "&lt;x&gt; for <at>Bob</at>\",\"entities\":[{\"type\":\"mention\","
                   "\"text\":\"<at>Ops Bot</at>\",\"mentioned\":{\"id\":\"28:app-1\"}}]}",
                   &a),
        1);
    assert_int_equal(a.kind, OB_TEAMS_MESSAGE);
    assert_int_equal(a.ev_kind, OB_EV_MESSAGE);
    assert_string_equal(a.text, "restart <x> for Bob");
    assert_string_equal(a.conversation, "19:c@thread.tacv2");
    assert_string_equal(a.root, "r1");
    assert_string_equal(a.user, "aad-u");
    assert_string_equal(a.from_id, "29:u");
    assert_true(a.addressed);
    ob_teams_activity_release(&a);
    /* Not mentioned in a channel: not addressed; in a personal chat: yes. */
    assert_int_equal(parse_json("{\"type\":\"message\",\"id\":\"m2\",\"serviceUrl\":\"https://s/"
                                "\",\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id\":\"19:c@"
                                "thread.tacv2\"},\"recipient\":{\"id\":\"28:app-1\"},\"text\":"
                                "\"hi\"}",
                                &a),
                     1);
    assert_false(a.addressed);
    assert_string_equal(a.user, "29:u");
    ob_teams_activity_release(&a);
    assert_int_equal(parse_json("{\"type\":\"message\",\"id\":\"m2\",\"serviceUrl\":\"https://s/"
                                "\",\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id\":\"a:1\"},"
                                "\"recipient\":{\"id\":\"28:app-1\"},\"text\":\"hi\"}",
                                &a),
                     1);
    assert_true(a.addressed);
    ob_teams_activity_release(&a);
    /* Our own message; unknown types; malformed ones. */
    assert_int_equal(parse_json("{\"type\":\"message\",\"id\":\"m3\",\"serviceUrl\":\"https://s/"
                                "\",\"from\":{\"id\":\"28:app-1\"},\"conversation\":{\"id\":\"a:1"
                                "\"},\"recipient\":{\"id\":\"28:app-1\"},\"text\":\"hi\"}",
                                &a),
                     0);
    ob_teams_activity_release(&a);
    assert_int_equal(parse_json("{\"type\":\"typing\"}", &a), 0);
    ob_teams_activity_release(&a);
    assert_true(parse_json("{\"type\":\"message\",\"id\":\"m4\"}", &a) < 0);
    ob_teams_activity_release(&a);
    assert_true(parse_json("{\"type\":\"message\",\"id\":\"m4\",\"serviceUrl\":\"javascript:x\","
                           "\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id\":\"a:1\"}}",
                           &a) < 0);
    ob_teams_activity_release(&a);
    assert_true(parse_json("[1]", &a) < 0);
    ob_teams_activity_release(&a);
    /* Reactions: like -> +1. */
    assert_int_equal(parse_json("{\"type\":\"messageReaction\",\"id\":\"x1\",\"serviceUrl\":"
                                "\"https://s/\",\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id"
                                "\":\"a:1\"},\"replyToId\":\"card1\",\"reactionsAdded\":[{\"type"
                                "\":\"like\"},{\"type\":\"heart\"}],\"reactionsRemoved\":[{\"type"
                                "\":\"laugh\"}]}",
                                &a),
                     1);
    assert_int_equal(a.kind, OB_TEAMS_REACTION);
    assert_int_equal(a.nreactions, 3);
    assert_string_equal(a.reactions[0].emoji, "+1");
    assert_true(a.reactions[0].added);
    assert_string_equal(a.reactions[1].emoji, "heart");
    assert_false(a.reactions[2].added);
    assert_string_equal(a.reply_to, "card1");
    ob_teams_activity_release(&a);
    assert_true(parse_json("{\"type\":\"messageReaction\",\"id\":\"x1\",\"serviceUrl\":\"https://"
                           "s/\",\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id\":\"a:1\"},"
                           "\"reactionsAdded\":[{\"type\":\"like\"}]}",
                           &a) < 0);
    ob_teams_activity_release(&a);
    /* Invoke on our card; on somebody else's card. */
    assert_int_equal(parse_json("{\"type\":\"invoke\",\"name\":\"adaptiveCard/action\",\"id\":"
                                "\"i1\",\"serviceUrl\":\"https://s/\",\"from\":{\"id\":\"29:u\"},"
                                "\"conversation\":{\"id\":\"a:1\"},\"replyToId\":\"card1\","
                                "\"value\":{\"action\":{\"type\":\"Action.Execute\",\"verb\":"
                                "\"deny\",\"data\":{\"opsbot\":\"approval\",\"verb\":\"deny\","
                                "\"ref\":\"c-1\"}}}}",
                                &a),
                     1);
    assert_int_equal(a.kind, OB_TEAMS_INVOKE);
    assert_int_equal(a.ev_kind, OB_EV_BUTTON);
    assert_string_equal(a.verb, "deny");
    assert_string_equal(a.card_ref, "c-1");
    ob_teams_activity_release(&a);
    assert_int_equal(parse_json("{\"type\":\"invoke\",\"name\":\"adaptiveCard/action\",\"id\":"
                                "\"i1\",\"serviceUrl\":\"https://s/\",\"from\":{\"id\":\"29:u\"},"
                                "\"conversation\":{\"id\":\"a:1\"},\"value\":{\"action\":{"
                                "\"type\":\"Action.Execute\",\"verb\":\"other\",\"data\":{}}}}",
                                &a),
                     1);
    assert_int_equal(a.kind, OB_TEAMS_INVOKE_OTHER);
    ob_teams_activity_release(&a);
    /* conversationUpdate adding the bot. */
    assert_int_equal(parse_json("{\"type\":\"conversationUpdate\",\"id\":\"u1\",\"serviceUrl\":"
                                "\"https://s/\",\"from\":{\"id\":\"29:u\"},\"conversation\":{\"id"
                                "\":\"19:c@thread.tacv2\"},\"recipient\":{\"id\":\"28:app-1\"},"
                                "\"membersAdded\":[{\"id\":\"28:app-1\"}]}",
                                &a),
                     1);
    assert_int_equal(a.kind, OB_TEAMS_INSTALLED);
    ob_teams_activity_release(&a);
}

static void test_cards_and_errors(void **state)
{
    cJSON *card =
        ob_teams_card("[#3] APPROVAL NEEDED (a-1): restart\nasked by x\nreact \xe2\x9c\x85"
                      " (white_check_mark) to approve · expires soon",
                      OB_POST_APPROVAL, "c-9");
    const cJSON *actions = cJSON_GetObjectItem(card, "actions"), *a0;
    char *s = cJSON_PrintUnformatted(card), code[32], line[400];

    (void)state;
    assert_string_equal(cJSON_GetObjectItem(card, "version")->valuestring, "1.5");
    assert_int_equal(cJSON_GetArraySize(actions), 2);
    a0 = cJSON_GetArrayItem(actions, 0);
    assert_string_equal(cJSON_GetObjectItem(a0, "type")->valuestring, "Action.Execute");
    assert_string_equal(cJSON_GetObjectItem(a0, "verb")->valuestring, "approve");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a0, "fallback"), "type")->valuestring,
        "Action.Submit");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a0, "data"), "ref")->valuestring,
                        "c-9");
    assert_null(strstr(s, "white_check_mark"));
    assert_non_null(strstr(s, "expires soon"));
    free(s);
    cJSON_Delete(card);
    card = ob_teams_card("REFUSED by x", OB_POST_APPROVAL | OB_POST_RESOLVED, NULL);
    assert_null(cJSON_GetObjectItem(card, "actions"));
    s = cJSON_PrintUnformatted(card);
    assert_non_null(strstr(s, "\"color\":\"Attention\""));
    free(s);
    cJSON_Delete(card);

    /* Numbered choices: buttons 1..N sending pick:N. */
    card = ob_teams_card("pick one", OB_POST_WITH_CHOICES(3), "c-7");
    actions = cJSON_GetObjectItem(card, "actions");
    assert_int_equal(cJSON_GetArraySize(actions), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(actions, 2), "verb")->valuestring,
                        "pick:3");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(actions, 2), "data"), "opsbot")
            ->valuestring,
        "pick");
    cJSON_Delete(card);
    {
        struct ob_teams_activity a;

        assert_int_equal(parse_json("{\"type\":\"invoke\",\"name\":\"adaptiveCard/action\","
                                    "\"id\":\"i9\",\"serviceUrl\":\"https://s/\",\"from\":{"
                                    "\"id\":\"29:u\"},\"conversation\":{\"id\":\"a:1\"},"
                                    "\"replyToId\":\"m\",\"value\":{\"action\":{\"type\":"
                                    "\"Action.Execute\",\"verb\":\"pick:2\",\"data\":{"
                                    "\"opsbot\":\"pick\",\"verb\":\"pick:2\"}}}}",
                                    &a),
                         1);
        assert_int_equal(a.kind, OB_TEAMS_INVOKE);
        assert_string_equal(a.verb, "pick:2");
        ob_teams_activity_release(&a);
        /* Choices stop at 15. */
        assert_int_equal(parse_json("{\"type\":\"invoke\",\"name\":\"adaptiveCard/action\","
                                    "\"id\":\"i9\",\"serviceUrl\":\"https://s/\",\"from\":{"
                                    "\"id\":\"29:u\"},\"conversation\":{\"id\":\"a:1\"},"
                                    "\"replyToId\":\"m\",\"value\":{\"action\":{\"type\":"
                                    "\"Action.Execute\",\"verb\":\"pick:16\",\"data\":{"
                                    "\"opsbot\":\"pick\",\"verb\":\"pick:16\"}}}}",
                                    &a),
                         1);
        assert_int_equal(a.kind, OB_TEAMS_INVOKE_OTHER);
        ob_teams_activity_release(&a);
    }

    {
        const char *b = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                        "Invalid client secret provided.\",\"error_codes\":[7000215]}";

        assert_true(
            ob_teams_token_error(401, b, strlen(b), code, sizeof(code), line, sizeof(line)));
        assert_string_equal(code, "AADSTS7000215");
        assert_non_null(strstr(line, "app_secret"));
    }
    {
        const char *b = "{\"error\":\"unauthorized_client\",\"error_codes\":[700016]}";

        assert_true(
            ob_teams_token_error(400, b, strlen(b), code, sizeof(code), line, sizeof(line)));
        assert_string_equal(code, "AADSTS700016");
        assert_non_null(strstr(line, "tenant_id"));
    }
    assert_false(ob_teams_token_error(503, "oops", 4, code, sizeof(code), line, sizeof(line)));
    assert_false(ob_teams_token_error(429, NULL, 0, code, sizeof(code), line, sizeof(line)));
}

static void test_config_check(void **state)
{
    static const struct {
        const char *json;
        const char *needle;
    } bad[] = {
        {"{\"app_secret\":\"s3cr3t-value\"}", "app_id"},
        {"{\"app_id\":\"not a guid!\",\"app_secret\":\"s3cr3t-value\"}", "Microsoft App ID"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"\"}", "is empty"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t\\u0001value\"}", "control character"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"path\":\"api\"}", "must start"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"max_body\":\"lots\"}",
         "max_body"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"max_body\":\"64MiB\"}",
         "between"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"token_endpoint\":\"ftp://x\"}",
         "http://"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"tls\":{\"cert\":\"c.pem\"}}",
         "key"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"colour\":\"red\"}", "colour"},
        {"{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\",\"tenant_id\":\"a b\"}",
         "tenant_id"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *sec = cJSON_Parse(bad[i].json);
        struct ob_diag d;
        bool found = false;

        assert_non_null(sec);
        ob_diag_init(&d);
        assert_int_equal(ob_teams_check(NULL, sec, &d), OB_ECONFIG);
        for (size_t k = 0; k < d.n; k++) {
            if (strstr(d.lines[k], bad[i].needle))
                found = true;
            assert_null(strstr(d.lines[k], "s3cr3t"));
        }
        if (!found)
            fail_msg("case %zu: no line with \"%s\"", i, bad[i].needle);
        ob_diag_release(&d);
        cJSON_Delete(sec);
    }
    {
        cJSON *sec = cJSON_Parse("{\"app_id\":\"abc-1\",\"app_secret\":\"s3cr3t-value\","
                                 "\"tenant_id\":\"\",\"max_body\":\"256KiB\","
                                 "\"allowed_tenants\":[\"t1\"]}");
        struct ob_diag d;

        ob_diag_init(&d);
        assert_int_equal(ob_teams_check(NULL, sec, &d), 0);
        assert_int_equal(d.n, 0);
        ob_diag_release(&d);
        cJSON_Delete(sec);
    }
}

static bool has(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle)) != NULL;
}

static void test_package(void **state)
{
    char assets[512], out[300], err[600], *zip;
    size_t len = 0;
    FILE *f;

    (void)state;
    snprintf(assets, sizeof(assets), "%s/deploy/teams", e2e_src_root());
    snprintf(out, sizeof(out), "/tmp/ob-teams-pkg-%d.zip", (int)getpid());
    assert_int_equal(ob_teams_package("0a1b2c3d-1111-4222-8333-444455556666", "1.2.3", assets, out,
                                      err, sizeof(err)),
                     0);
    f = fopen(out, "rb");
    assert_non_null(f);
    zip = malloc(1 << 20);
    len = fread(zip, 1, 1 << 20, f);
    fclose(f);
    unlink(out);
    /* Local header first, end-of-central-directory record last (3 entries). */
    assert_true(len > 200);
    assert_memory_equal(zip, "PK\x03\x04", 4);
    assert_memory_equal(zip + len - 22, "PK\x05\x06", 4);
    assert_int_equal(zip[len - 22 + 10], 3);
    assert_true(has(zip, len, "\"botId\": \"0a1b2c3d-1111-4222-8333-444455556666\""));
    assert_true(has(zip, len, "\"version\": \"1.2.3\""));
    assert_false(has(zip, len, "{{"));
    assert_true(has(zip, len, "outline.png"));
    free(zip);
    /* Missing assets: one clear line. */
    assert_true(ob_teams_package("x", "1", "/nonexistent", out, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent/manifest.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_keys_policy),
        cmocka_unit_test(test_activities),
        cmocka_unit_test(test_cards_and_errors),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_package),
        cmocka_unit_test_teardown(test_execute_approve, e2e_teardown),
        cmocka_unit_test_teardown(test_execute_deny, e2e_teardown),
        cmocka_unit_test_teardown(test_stranger_refused, e2e_teardown),
        cmocka_unit_test_teardown(test_reaction_approval, e2e_teardown),
        cmocka_unit_test_teardown(test_bad_tokens, e2e_teardown),
        cmocka_unit_test_teardown(test_key_rotation, e2e_teardown),
        cmocka_unit_test_teardown(test_malformed_and_oversized, e2e_teardown),
        cmocka_unit_test_teardown(test_token_refresh, e2e_teardown),
        cmocka_unit_test_teardown(test_429_keeps_order, e2e_teardown),
        cmocka_unit_test_teardown(test_ask_in_chat, e2e_teardown),
        cmocka_unit_test_teardown(test_install_and_tenants, e2e_teardown),
        cmocka_unit_test_teardown(test_bad_secret_fatal, e2e_teardown),
    };

    if (getenv("TEAMS_DEBUG"))
        ob_log_set_level(OB_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
