/* The Slack adapter: configuration, the adapter operations, inbound event
 * dispatch and the lifecycle (start with auth.test, stop with a short
 * drain of the send queue, fatal credential errors).
 *
 * Tokens live in sodium_malloc'd memory, are only ever written into the
 * Authorization header of a request, and never into a log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_int.h"

#define TOKEN_MAX 512
#define ASK_WINDOW_MS (24LL * 3600 * 1000)

/* ---- configuration ----------------------------------------------------------- */

static const char *const slack_keys[] = {
    "app_token",
    "bot_token",
    "api_base",
    "listen",
    "channels",
    "min_post_interval",
    "ping_interval",
    "ping_timeout",
    "server_ping_timeout",
    "reconnect_min",
    "reconnect_max",
    "link_disabled_retry",
    "http_events",
    NULL,
};
static const char *const events_keys[] = {"listen", "signing_secret", "path", NULL};

static char *secret_dup(const char *s, size_t *len_out)
{
    size_t len = strlen(s);
    char *p = sodium_malloc(len + 1);

    if (!p)
        return NULL;
    memcpy(p, s, len + 1);
    if (len_out)
        *len_out = len;
    return p;
}

static void secret_free(char *s)
{
    if (!s)
        return;
    sodium_memzero(s, strlen(s));
    sodium_free(s);
}

/* Reports a bad token without ever printing its value. */
static const char *check_token(const struct ob_config *cfg, const cJSON *sec, const char *key,
                               const char *prefix, const char *what, bool required,
                               struct ob_diag *d)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(sec, key);
    const char *s = NULL;
    char where[512];

    if (ob_cfg_string(cfg, sec, key, required, NULL, &s, d) || !s)
        return NULL;
    ob_config_where(cfg, node, where, sizeof(where));
    if (!*s) {
        ob_diag_addf(d, "%s: platforms.slack.%s: is empty (is its environment variable set?)",
                     where, key);
        return NULL;
    }
    if (strncmp(s, prefix, strlen(prefix))) {
        ob_diag_addf(d,
                     "%s: platforms.slack.%s: must be %s starting with \"%s\" (the value is not "
                     "shown)",
                     where, key, what, prefix);
        return NULL;
    }
    if (strlen(s) > TOKEN_MAX) {
        ob_diag_addf(d, "%s: platforms.slack.%s: longer than %d characters", where, key, TOKEN_MAX);
        return NULL;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            ob_diag_addf(d,
                         "%s: platforms.slack.%s: contains a character a token cannot have "
                         "(blank or non-ASCII; the value is not shown)",
                         where, key);
            return NULL;
        }
    }
    return s;
}

static void duration(const struct ob_config *cfg, const cJSON *sec, const char *key, int64_t def,
                     int64_t min, int64_t max, int64_t *out, struct ob_diag *d)
{
    char where[512];

    if (ob_cfg_duration(cfg, sec, key, false, def, out, d))
        return;
    if (*out < min || *out > max) {
        char a[32], b[32];

        ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(sec, key), where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.slack.%s: must be between %s and %s", where, key,
                     ob_duration_format(min, a, sizeof(a)), ob_duration_format(max, b, sizeof(b)));
        *out = def;
    }
}

/* Checks sec; with out, also fills it (secrets copied into sodium memory). */
static int parse_cfg(const struct ob_config *cfg, const cJSON *sec, struct ob_diag *d,
                     struct slack_cfg *out)
{
    size_t before = d->n;
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(sec, "http_events"), *chans = NULL;
    const char *app, *bot, *base = NULL, *listen = NULL, *secret = NULL, *elisten = NULL,
                           *path = NULL;
    struct slack_cfg c = {0};
    char where[512];

    if (ob_cfg_check_keys(cfg, sec, slack_keys, "platforms.slack", d))
        return OB_ECONFIG;
    if (events && cJSON_IsNull(events))
        events = NULL;
    if (events && !ob_cfg_check_keys(cfg, events, events_keys, "platforms.slack.http_events", d)) {
        ob_cfg_string(cfg, events, "listen", true, NULL, &elisten, d);
        ob_cfg_string(cfg, events, "path", false, "/slack/events", &path, d);
        if (!ob_cfg_string(cfg, events, "signing_secret", true, NULL, &secret, d) && secret &&
            strlen(secret) < 8) {
            ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(events, "signing_secret"), where,
                            sizeof(where));
            ob_diag_addf(d,
                         "%s: platforms.slack.http_events.signing_secret: too short to be a "
                         "signing secret (is its environment variable set?)",
                         where);
        }
        if (path && path[0] != '/') {
            ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(events, "path"), where,
                            sizeof(where));
            ob_diag_addf(d, "%s: platforms.slack.http_events.path: must start with /", where);
        }
        if (elisten && strlen(elisten) >= sizeof(c.events_listen)) {
            ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(events, "listen"), where,
                            sizeof(where));
            ob_diag_addf(d, "%s: platforms.slack.http_events.listen: too long", where);
        }
        if (path && strlen(path) >= sizeof(c.events_path))
            ob_diag_addf(d, "platforms.slack.http_events.path: too long");
    }
    bot = check_token(cfg, sec, "bot_token", "xoxb-", "a bot token", true, d);
    app = check_token(cfg, sec, "app_token", "xapp-", "an app-level token", events == NULL, d);
    ob_cfg_string(cfg, sec, "api_base", false, "https://slack.com/api/", &base, d);
    if (base && strncmp(base, "https://", 8) && strncmp(base, "http://", 7)) {
        ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(sec, "api_base"), where,
                        sizeof(where));
        ob_diag_addf(d, "%s: platforms.slack.api_base: must be an http:// or https:// URL", where);
    } else if (base && strlen(base) >= sizeof(c.api_base) - 2) {
        ob_diag_addf(d, "platforms.slack.api_base: too long");
    }
    ob_cfg_string(cfg, sec, "listen", false, "mentions", &listen, d);
    if (listen && strcmp(listen, "mentions") && strcmp(listen, "all")) {
        ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(sec, "listen"), where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.slack.listen: must be \"mentions\" or \"all\"", where);
    }
    if (!ob_cfg_strlist(cfg, sec, "channels", false, &chans, d) && chans) {
        const cJSON *it;

        cJSON_ArrayForEach(it, (cJSON_IsArray(chans) ? chans : NULL))
        {
            if (!cJSON_IsString(it) || !*it->valuestring || strlen(it->valuestring) > 60) {
                ob_config_where(cfg, it, where, sizeof(where));
                ob_diag_addf(d, "%s: platforms.slack.channels: expected channel ids like C0123",
                             where);
            }
        }
    }
    duration(cfg, sec, "min_post_interval", 1000, 0, 60000, &c.min_post_interval_ms, d);
    duration(cfg, sec, "ping_interval", 5000, 10, 600000, &c.ping_interval_ms, d);
    duration(cfg, sec, "ping_timeout", 5000, 10, 600000, &c.ping_timeout_ms, d);
    duration(cfg, sec, "server_ping_timeout", 30000, 10, 3600000, &c.server_ping_timeout_ms, d);
    duration(cfg, sec, "reconnect_min", 1000, 10, 600000, &c.reconnect_min_ms, d);
    duration(cfg, sec, "reconnect_max", 60000, 10, 3600000, &c.reconnect_max_ms, d);
    duration(cfg, sec, "link_disabled_retry", 300000, 10, 86400000, &c.link_disabled_retry_ms, d);
    if (c.reconnect_max_ms < c.reconnect_min_ms)
        c.reconnect_max_ms = c.reconnect_min_ms;
    if (d->n != before)
        return OB_ECONFIG;
    if (!out)
        return 0;

    c.bot_token = secret_dup(bot, NULL);
    c.app_token = app ? secret_dup(app, NULL) : NULL;
    c.signing_secret = secret ? secret_dup(secret, &c.signing_secret_len) : NULL;
    if (!c.bot_token || (app && !c.app_token) || (secret && !c.signing_secret)) {
        secret_free(c.bot_token);
        secret_free(c.app_token);
        secret_free(c.signing_secret);
        return OB_ENOMEM;
    }
    snprintf(c.api_base, sizeof(c.api_base), "%s%s", base,
             base[strlen(base) - 1] == '/' ? "" : "/");
    c.listen_all = !strcmp(listen, "all");
    if (chans) {
        const cJSON *it;
        size_t n = cJSON_IsArray(chans) ? (size_t)cJSON_GetArraySize(chans) : 1;

        c.channels = ob_xcalloc(n, sizeof(char *));
        if (cJSON_IsString(chans))
            c.channels[c.nchannels++] = ob_xstrdup(chans->valuestring);
        cJSON_ArrayForEach(it, (cJSON_IsArray(chans) ? chans : NULL)) c.channels[c.nchannels++] =
            ob_xstrdup(it->valuestring);
    }
    c.socket_mode = app != NULL;
    if (events) {
        c.http_events = true;
        ob_strlcpy(c.events_listen, elisten, sizeof(c.events_listen));
        ob_strlcpy(c.events_path, path, sizeof(c.events_path));
    }
    *out = c;
    return 0;
}

static void cfg_release(struct slack_cfg *c)
{
    secret_free(c->bot_token);
    secret_free(c->app_token);
    secret_free(c->signing_secret);
    for (size_t i = 0; i < c->nchannels; i++)
        free(c->channels[i]);
    free(c->channels);
    memset(c, 0, sizeof(*c));
}

int ob_slack_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d)
{
    if (sodium_init() < 0) {
        ob_diag_addf(d, "platforms.slack: libsodium cannot be initialised");
        return OB_ECONFIG;
    }
    return parse_cfg(cfg, section, d, NULL);
}

/* ---- errors ------------------------------------------------------------------- */

bool slack__is_fatal_error(const char *error)
{
    static const char *const list[] = {"invalid_auth",
                                       "token_revoked",
                                       "not_allowed_token_type",
                                       "account_inactive",
                                       "not_authed",
                                       "token_expired",
                                       NULL};

    for (size_t i = 0; error && list[i]; i++)
        if (!strcmp(error, list[i]))
            return true;
    return false;
}

void slack__fatal(struct slack *sl, enum slack_token which, const char *error)
{
    char why[300];

    if (sl->dead)
        return;
    sl->dead = true;
    snprintf(why, sizeof(why), "slack: the %s token was rejected (%.60s): check platforms.slack.%s",
             which == SLACK_APP_TOKEN ? "app-level" : "bot", error,
             which == SLACK_APP_TOKEN ? "app_token" : "bot_token");
    slack__socket_stop(sl);
    slack__events_stop(sl);
    uv_timer_stop(&sl->retry);
    slack__pump(sl); /* fails what is queued */
    if (sl->ad.fatal)
        sl->ad.fatal(sl->ad.on_event_data, why);
    else
        ob_error("slack", "%s", why);
}

/* ---- inbound ------------------------------------------------------------------ */

/* Under listen: mentions, a plain thread reply still reaches the core when
 * the bot asked that very user a question in that thread. */
static bool answers_ask(struct slack *sl, const struct ob_slack_event *e)
{
    int64_t now = ob_now_ms();

    if (!e->thread_reply)
        return false;
    for (size_t i = 0; i < SLACK_MAX_ASKS; i++) {
        struct slack_ask *a = &sl->asks[i];

        if (a->user[0] && !strcmp(a->user, e->user) && !strcmp(a->channel, e->channel) &&
            !strcmp(a->thread, e->thread) && now - a->at_ms < ASK_WINDOW_MS) {
            a->user[0] = '\0';
            return true;
        }
    }
    return false;
}

void slack__dispatch(struct slack *sl, enum ob_slack_frame type, const cJSON *payload)
{
    const struct ob_slack_self self = {
        .user_id = sl->bot_user_id[0] ? sl->bot_user_id : NULL,
        .bot_id = sl->bot_id[0] ? sl->bot_id : NULL,
        .listen_all = sl->cfg.listen_all,
        .channels = sl->cfg.nchannels ? (const char *const *)sl->cfg.channels : NULL,
        .nchannels = sl->cfg.nchannels,
    };
    struct ob_slack_event e;
    struct ob_event ev;
    int rc;

    if (sl->life.stopping || sl->dead)
        return;
    rc = ob_slack_payload_event(&self, type, payload, &e);
    if (rc < 0) {
        ob_warn("slack", "malformed %s payload: ignored",
                type == OB_SLACK_EVENTS_API    ? "events_api"
                : type == OB_SLACK_INTERACTIVE ? "interactive"
                                               : "slash_commands");
        goto out;
    }
    if (rc == 0) {
        ob_debug("slack", "event ignored: %s", e.ignored);
        goto out;
    }
    if (e.kind == OB_EV_MESSAGE && !e.addressed && !sl->cfg.listen_all && !answers_ask(sl, &e)) {
        ob_debug("slack", "event ignored: not addressed to the bot (listen: mentions)");
        goto out;
    }
    ob_slack_event_view(&e, &ev);
    ev.user_name = slack__user_name(sl, e.user);
    if (sl->ad.on_event)
        sl->ad.on_event(sl->ad.on_event_data, &sl->ad, &ev);
out:
    ob_slack_event_release(&e);
}

/* ---- start -------------------------------------------------------------------- */

static void start_auth(struct slack *sl);

static void retry_cb(uv_timer_t *t)
{
    struct slack *sl = t->data;

    if (sl->life.stopping || sl->dead)
        return;
    if (!sl->authed)
        start_auth(sl);
    else
        slack__socket_connect(sl);
}

static void copy_field(char *dst, size_t len, const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

    if (cJSON_IsString(it))
        ob_strlcpy(dst, it->valuestring, len);
}

static void auth_done(struct slack *sl, void *data, const struct slack_api_result *res)
{
    int64_t delay;

    (void)data;
    if (sl->life.stopping || sl->dead)
        return;
    if (res->err) {
        if (res->error && slack__is_fatal_error(res->error)) {
            slack__fatal(sl, SLACK_BOT_TOKEN, res->error);
            return;
        }
        sl->failures++;
        delay = res->err == OB_EBUSY ? res->retry_after_ms : sl->cfg.reconnect_min_ms;
        for (int i = 1; i < sl->failures && delay < sl->cfg.reconnect_max_ms; i++)
            delay *= 2;
        if (delay > sl->cfg.reconnect_max_ms && res->err != OB_EBUSY)
            delay = sl->cfg.reconnect_max_ms;
        ob_warn("slack", "auth.test did not succeed: retrying in %lld ms", (long long)delay);
        uv_timer_start(&sl->retry, retry_cb, (uint64_t)delay, 0);
        return;
    }
    copy_field(sl->bot_user_id, sizeof(sl->bot_user_id), res->json, "user_id");
    copy_field(sl->bot_id, sizeof(sl->bot_id), res->json, "bot_id");
    copy_field(sl->team_id, sizeof(sl->team_id), res->json, "team_id");
    copy_field(sl->team, sizeof(sl->team), res->json, "team");
    if (!sl->bot_user_id[0]) {
        ob_error("slack", "auth.test answered without a user_id: is platforms.slack.bot_token a "
                          "bot token?");
        slack__fatal(sl, SLACK_BOT_TOKEN, "no_bot_user");
        return;
    }
    sl->authed = true;
    sl->failures = 0;
    ob_info("slack", "authenticated as bot user %s in team %s", sl->bot_user_id,
            sl->team[0] ? sl->team : sl->team_id);
    slack__ready(sl);
}

static void start_auth(struct slack *sl)
{
    int rc = slack__api(sl, "auth.test", SLACK_BOT_TOKEN, "POST",
                        "application/x-www-form-urlencoded", "", 0, auth_done, NULL);

    if (rc)
        uv_timer_start(&sl->retry, retry_cb, (uint64_t)sl->cfg.reconnect_min_ms, 0);
}

void slack__ready(struct slack *sl)
{
    if (sl->cfg.http_events && !sl->events && slack__events_start(sl)) {
        ob_error("slack", "cannot listen for HTTP events on %s", sl->cfg.events_listen);
        if (sl->ad.fatal) {
            sl->dead = true;
            slack__socket_stop(sl);
            sl->ad.fatal(sl->ad.on_event_data, "slack: cannot start the HTTP Events listener");
            return;
        }
    }
    if (sl->cfg.socket_mode)
        slack__socket_start(sl);
}

static int slack_start(struct ob_adapter *ad)
{
    struct slack *sl = ad->ctx;

    if (sl->started)
        return 0;
    sl->started = true;
    start_auth(sl);
    return 0;
}

/* ---- outbound ----------------------------------------------------------------- */

static struct slack_op *op_new(enum slack_op_kind kind, const char *channel)
{
    struct slack_op *op = ob_xcalloc(1, sizeof(*op));

    op->kind = kind;
    ob_strlcpy(op->channel, channel, sizeof(op->channel));
    return op;
}

static bool id_usable(const char *s, size_t cap)
{
    return s && *s && strlen(s) < cap;
}

static int slack_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct slack *sl = ad->ctx;
    struct slack_op *op;
    char *esc;

    if (sl->dead)
        return OB_EHTTP;
    if (!id_usable(p->channel, sizeof(op->channel)) || !p->text)
        return OB_EINVAL;
    esc = slack__escape(p->text);
    if (!esc)
        return OB_ENOMEM;
    op = op_new(SLACK_OP_POST, p->channel);
    if (p->thread && *p->thread)
        ob_strlcpy(op->thread, p->thread, sizeof(op->thread));
    op->flags = p->flags;
    op->cb = cb;
    op->cb_data = data;
    if ((p->flags & OB_POST_QUESTION) && p->ask_user && *p->ask_user && strlen(p->ask_user) < 64) {
        struct slack_ask *a = &sl->asks[sl->asks_next++ % SLACK_MAX_ASKS];

        if (asprintf(&op->text, "<@%s> %s", p->ask_user, esc) < 0)
            op->text = NULL;
        free(esc);
        if (op->thread[0]) {
            ob_strlcpy(a->channel, op->channel, sizeof(a->channel));
            ob_strlcpy(a->thread, op->thread, sizeof(a->thread));
            ob_strlcpy(a->user, p->ask_user, sizeof(a->user));
            a->at_ms = ob_now_ms();
        }
    } else {
        op->text = esc;
    }
    if (!op->text) {
        free(op);
        return OB_ENOMEM;
    }
    if (!*op->text) {
        free(op->text);
        op->text = ob_xstrdup(" ");
    }
    return slack__enqueue(sl, op);
}

static int slack_update(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p)
{
    struct slack *sl = ad->ctx;
    struct slack_op *op;

    if (sl->dead)
        return OB_EHTTP;
    if (!ref || !id_usable(ref->channel, sizeof(op->channel)) || !ref->message[0] || !p->text)
        return OB_EINVAL;
    op = op_new(SLACK_OP_UPDATE, ref->channel);
    ob_strlcpy(op->ts, ref->message, sizeof(op->ts));
    op->flags = p->flags;
    op->text = slack__escape(p->text);
    if (!op->text) {
        free(op);
        return OB_ENOMEM;
    }
    return slack__enqueue(sl, op);
}

static int slack_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    struct slack *sl = ad->ctx;
    struct slack_op *op;
    size_t n;

    if (sl->dead)
        return OB_EHTTP;
    if (!ref || !id_usable(ref->channel, sizeof(op->channel)) || !ref->message[0] || !emoji)
        return OB_EINVAL;
    if (*emoji == ':')
        emoji++;
    n = strcspn(emoji, ":");
    if (!n || n > 100)
        return OB_EINVAL;
    op = op_new(SLACK_OP_REACT, ref->channel);
    ob_strlcpy(op->ts, ref->message, sizeof(op->ts));
    op->text = strndup(emoji, n);
    if (!op->text) {
        free(op);
        return OB_ENOMEM;
    }
    return slack__enqueue(sl, op);
}

/* ---- stop / free ---------------------------------------------------------------- */

static size_t life_queued(void *ctx)
{
    return slack__queued(ctx);
}

static void life_fail_queued(void *ctx)
{
    slack__queue_drop(ctx, OB_ETIMEOUT, true);
}

static void life_release(void *ctx)
{
    struct slack *sl = ctx;

    slack__socket_stop(sl);
    slack__events_stop(sl);
    slack__queue_drop(sl, OB_EHTTP, false);
    slack__api_cancel_all(sl);
    ob_http_free(sl->http);
    sl->http = NULL;
}

static void life_destroy(void *ctx)
{
    struct slack *sl = ctx;

    cfg_release(&sl->cfg);
    free(sl);
}

static const struct ob_life_ops slack_life = {
    .name = "slack",
    .queued = life_queued,
    .fail_queued = life_fail_queued,
    .release = life_release,
    .destroy = life_destroy,
};

/* Closes once the queue has drained (never from inside an HTTP callback:
 * the timer runs it on the next loop turn). */
void slack__close_handles(struct slack *sl)
{
    if (!sl->reqs)
        ob_life_close_handles(&sl->life, 0);
}

static void slack_stop(struct ob_adapter *ad)
{
    struct slack *sl = ad->ctx;

    if (!ob_life_stop(&sl->life))
        return;
    slack__socket_stop(sl);
    slack__events_stop(sl);
    uv_timer_stop(&sl->retry);
    slack__api_cancel_others(sl);
    /* What the core still posts (results of running actions) is delivered
     * for a while; then the handles close. */
    ob_life_close_handles(&sl->life, sl->chans || sl->reqs ? SLACK_DRAIN_MS : 0);
}

static void slack_free(struct ob_adapter *ad)
{
    struct slack *sl = ad->ctx;

    if (!sl)
        return;
    sl->ad.on_event = NULL;
    ob_life_free(&sl->life);
}

static const struct ob_adapter_ops slack_ops = {
    .name = "slack",
    .flags = 0,
    .start = slack_start,
    .post = slack_post,
    .update = slack_update,
    .react = slack_react,
    .stop = slack_stop,
    .free = slack_free,
};

int ob_slack_new(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section)
{
    struct slack *sl;
    struct ob_diag d;
    int rc;

    *out = NULL;
    if (sodium_init() < 0)
        return OB_ENOMEM;
    if (!env->lws) {
        ob_error("slack", "no libwebsockets context");
        return OB_EINVAL;
    }
    sl = calloc(1, sizeof(*sl));
    if (!sl)
        return OB_ENOMEM;
    ob_diag_init(&d);
    rc = parse_cfg(env->cfg, section, &d, &sl->cfg);
    for (size_t i = 0; i < d.n; i++)
        ob_error("slack", "%s", d.lines[i] ? d.lines[i] : "?");
    ob_diag_release(&d);
    if (rc) {
        free(sl);
        return rc;
    }
    rc = ob_http_new_on(&sl->http, env->lws); /* freed in release, before the context */
    if (!rc)
        rc = ob_life_init(&sl->life, env->loop, &slack_life, sl,
                          (uv_timer_t *const[]){&sl->pump, &sl->retry, &sl->tick, NULL});
    if (rc) {
        ob_http_free(sl->http);
        cfg_release(&sl->cfg);
        free(sl);
        return rc;
    }
    sl->loop = env->loop;
    sl->lws = env->lws;
    sl->ad.ops = &slack_ops;
    sl->ad.loop = env->loop;
    sl->ad.ctx = sl;
    *out = &sl->ad;
    return 0;
}

static int slack_create(struct ob_adapter **out, const struct ob_platform_env *env,
                        const cJSON *section)
{
    return ob_slack_new(out, env, section);
}

const struct ob_platform ob_slack_platform = {
    .name = "slack",
    .check = ob_slack_check,
    .create = slack_create,
    .needs_lws = true,
    .needs_http = false, /* the adapter owns its client: it must outlive the core's */
};
