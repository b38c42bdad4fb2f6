/* The Discord adapter: configuration, the adapter operations, inbound
 * event dispatch (threads, DMs, the people asked a question, interactions
 * answered before they reach the core), the lifecycle (start, stop with a
 * short drain of the send queue, fatal errors) and `register-commands`.
 *
 * The token lives in sodium_malloc'd memory, is only ever written into the
 * Authorization header of a request or the Identify / Resume payload, and
 * never into a log line.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discord_int.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define TOKEN_MAX 256
#define ASK_WINDOW_MS (24LL * 3600 * 1000)

/* Interaction callback type of a button press. */
enum { CB_DEFERRED_UPDATE = 6 };

/* ---- configuration ---------------------------------------------------------------- */

static const char *const discord_keys[] = {
    "token",
    "application_id",
    "api_base",
    "gateway_url",
    "listen",
    "channels",
    "interactions",
    "reconnect_min",
    "reconnect_max",
    "identify_interval",
    "invalid_session_wait",
    NULL,
};
static const char *const ix_keys[] = {"listen", "public_key", "path", NULL};

static char *secret_dup(const char *s)
{
    size_t len = strlen(s);
    char *p = sodium_malloc(len + 1);

    if (p)
        memcpy(p, s, len + 1);
    return p;
}

static void secret_free(char *s)
{
    if (!s)
        return;
    sodium_memzero(s, strlen(s));
    sodium_free(s);
}

static void where_of(const struct ob_config *cfg, const cJSON *obj, const char *key, char *buf,
                     size_t len)
{
    ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(obj, key), buf, len);
}

static bool digits(const char *s, size_t max)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++)
        if (n >= max || !isdigit((unsigned char)s[n]))
            return false;
    return true;
}

/* The token without a "Bot " prefix, or NULL (reported; never printed). */
static const char *check_token(const struct ob_config *cfg, const cJSON *sec, bool required,
                               struct ob_diag *d)
{
    const char *s = NULL;
    char where[512];

    if (ob_cfg_string(cfg, sec, "token", required, NULL, &s, d) || !s)
        return NULL;
    where_of(cfg, sec, "token", where, sizeof(where));
    if (!strncmp(s, "Bot ", 4))
        s += 4;
    if (!*s) {
        ob_diag_addf(d, "%s: platforms.discord.token: is empty (is DISCORD_TOKEN set?)", where);
        return NULL;
    }
    if (strlen(s) > TOKEN_MAX) {
        ob_diag_addf(d, "%s: platforms.discord.token: longer than %d characters", where, TOKEN_MAX);
        return NULL;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
            ob_diag_addf(d,
                         "%s: platforms.discord.token: contains a character a bot token cannot "
                         "have (the value is not shown)",
                         where);
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

        where_of(cfg, sec, key, where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.discord.%s: must be between %s and %s", where, key,
                     ob_duration_format(min, a, sizeof(a)), ob_duration_format(max, b, sizeof(b)));
        *out = def;
    }
}

static void check_url(const struct ob_config *cfg, const cJSON *sec, const char *key, const char *a,
                      const char *b, const char *s, size_t cap, struct ob_diag *d)
{
    char where[512];

    if (!s || !*s)
        return;
    where_of(cfg, sec, key, where, sizeof(where));
    if (strncmp(s, a, strlen(a)) && strncmp(s, b, strlen(b)))
        ob_diag_addf(d, "%s: platforms.discord.%s: must be a %s or %s URL", where, key, a, b);
    else if (strlen(s) >= cap)
        ob_diag_addf(d, "%s: platforms.discord.%s: too long", where, key);
}

/* Checks sec; with out, also fills it (the token copied into sodium
 * memory). need_token: `run` and register-commands need it, invite-url not. */
static int parse_cfg(const struct ob_config *cfg, const cJSON *sec, struct ob_diag *d,
                     struct dc_cfg *out, bool need_token)
{
    size_t before = d->n;
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(sec, "interactions"), *chans = NULL;
    const cJSON *appn = cJSON_GetObjectItemCaseSensitive(sec, "application_id");
    const char *token, *app = NULL, *base = NULL, *gw = NULL, *listen = NULL, *ixl = NULL,
                       *pk = NULL, *path = NULL;
    struct dc_cfg c = {0};
    char where[512];

    if (!cJSON_IsObject(sec)) {
        ob_config_where(cfg, sec, where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.discord: expected a mapping", where);
        return OB_ECONFIG;
    }
    if (ob_cfg_check_keys(cfg, sec, discord_keys, "platforms.discord", d))
        return OB_ECONFIG;
    if (ix && cJSON_IsNull(ix))
        ix = NULL;
    token = check_token(cfg, sec, need_token, d);
    if (appn && cJSON_IsNumber(appn)) {
        ob_config_where(cfg, appn, where, sizeof(where));
        ob_diag_addf(d,
                     "%s: platforms.discord.application_id: expected the application's id as a "
                     "quoted string of digits (\"123456789012345678\"), "
                     "not a number",
                     where);
    } else if (!ob_cfg_string(cfg, sec, "application_id", false, NULL, &app, d) && app &&
               !digits(app, 25)) {
        where_of(cfg, sec, "application_id", where, sizeof(where));
        ob_diag_addf(d,
                     "%s: platforms.discord.application_id: expected the application's id "
                     "(digits, from the developer portal)",
                     where);
    }
    ob_cfg_string(cfg, sec, "api_base", false, "https://discord.com/api/v10", &base, d);
    check_url(cfg, sec, "api_base", "https://", "http://", base, sizeof(c.api_base), d);
    ob_cfg_string(cfg, sec, "gateway_url", false, "", &gw, d);
    check_url(cfg, sec, "gateway_url", "wss://", "ws://", gw, sizeof(c.gateway_url) - 64, d);
    ob_cfg_string(cfg, sec, "listen", false, "mentions", &listen, d);
    if (listen && strcmp(listen, "mentions") && strcmp(listen, "all")) {
        where_of(cfg, sec, "listen", where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.discord.listen: must be \"mentions\" or \"all\"", where);
    }
    if (!ob_cfg_strlist(cfg, sec, "channels", false, &chans, d) && chans) {
        const cJSON *it;

        if (cJSON_IsString(chans) && !digits(chans->valuestring, 25)) {
            ob_config_where(cfg, chans, where, sizeof(where));
            ob_diag_addf(d, "%s: platforms.discord.channels: expected channel ids (digits)", where);
        }
        cJSON_ArrayForEach(it, (cJSON_IsArray(chans) ? chans : NULL))
        {
            if (!cJSON_IsString(it) || !digits(it->valuestring, 25)) {
                ob_config_where(cfg, it, where, sizeof(where));
                ob_diag_addf(d,
                             "%s: platforms.discord.channels: expected channel ids (digits; "
                             "quote them)",
                             where);
            }
        }
    }
    if (ix && !cJSON_IsObject(ix)) {
        ob_config_where(cfg, ix, where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.discord.interactions: expected a mapping", where);
    } else if (ix && !ob_cfg_check_keys(cfg, ix, ix_keys, "platforms.discord.interactions", d)) {
        ob_cfg_string(cfg, ix, "listen", true, NULL, &ixl, d);
        ob_cfg_string(cfg, ix, "path", false, "/discord/interactions", &path, d);
        if (!ob_cfg_string(cfg, ix, "public_key", true, NULL, &pk, d) && pk) {
            size_t got = 0;

            if (strlen(pk) != 64 ||
                sodium_hex2bin(c.public_key, sizeof(c.public_key), pk, 64, NULL, &got, NULL) ||
                got != 32) {
                where_of(cfg, ix, "public_key", where, sizeof(where));
                ob_diag_addf(d,
                             "%s: platforms.discord.interactions.public_key: expected the "
                             "application's public key (64 hex digits, General Information "
                             "in the developer portal)",
                             where);
            }
        }
        if (path && (path[0] != '/' || strlen(path) >= sizeof(c.ix_path))) {
            where_of(cfg, ix, "path", where, sizeof(where));
            ob_diag_addf(d,
                         "%s: platforms.discord.interactions.path: must start with / (and "
                         "be short)",
                         where);
        }
        if (ixl && (!*ixl || strlen(ixl) >= sizeof(c.ix_listen))) {
            where_of(cfg, ix, "listen", where, sizeof(where));
            ob_diag_addf(d, "%s: platforms.discord.interactions.listen: expected host:port", where);
        }
    }
    duration(cfg, sec, "reconnect_min", 1000, 10, 600000, &c.reconnect_min_ms, d);
    duration(cfg, sec, "reconnect_max", 60000, 10, 3600000, &c.reconnect_max_ms, d);
    duration(cfg, sec, "identify_interval", 5000, 0, 600000, &c.identify_interval_ms, d);
    duration(cfg, sec, "invalid_session_wait", 5000, 1000, 60000, &c.invalid_session_max_ms, d);
    if (c.reconnect_max_ms < c.reconnect_min_ms)
        c.reconnect_max_ms = c.reconnect_min_ms;
    if (d->n != before)
        return OB_ECONFIG;
    if (!out)
        return 0;

    c.token = token ? secret_dup(token) : NULL;
    if (token && !c.token)
        return OB_ENOMEM;
    ob_strlcpy(c.application_id, app ? app : "", sizeof(c.application_id));
    ob_strlcpy(c.api_base, base, sizeof(c.api_base));
    while (c.api_base[0] && c.api_base[strlen(c.api_base) - 1] == '/')
        c.api_base[strlen(c.api_base) - 1] = '\0';
    ob_strlcpy(c.gateway_url, gw ? gw : "", sizeof(c.gateway_url));
    c.listen_all = !strcmp(listen, "all");
    /* Discord: wait 1-5 s after an invalid session; the upper end can be
     * configured (invalid_session_wait), the lower is a fifth of it. */
    c.invalid_session_min_ms = c.invalid_session_max_ms / 5;
    if (chans) {
        const cJSON *it;
        size_t n = cJSON_IsArray(chans) ? (size_t)cJSON_GetArraySize(chans) : 1;

        c.channels = ob_xcalloc(n ? n : 1, sizeof(char *));
        if (cJSON_IsString(chans))
            c.channels[c.nchannels++] = ob_xstrdup(chans->valuestring);
        cJSON_ArrayForEach(it, (cJSON_IsArray(chans) ? chans : NULL)) c.channels[c.nchannels++] =
            ob_xstrdup(it->valuestring);
    }
    if (ix) {
        c.interactions = true;
        ob_strlcpy(c.ix_listen, ixl, sizeof(c.ix_listen));
        ob_strlcpy(c.ix_path, path, sizeof(c.ix_path));
    }
    *out = c;
    return 0;
}

static void cfg_release(struct dc_cfg *c)
{
    secret_free(c->token);
    for (size_t i = 0; i < c->nchannels; i++)
        free(c->channels[i]);
    free(c->channels);
    sodium_memzero(c, sizeof(*c));
}

int ob_discord_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d)
{
    if (sodium_init() < 0) {
        ob_diag_addf(d, "platforms.discord: libsodium cannot be initialised");
        return OB_ECONFIG;
    }
    return parse_cfg(cfg, section, d, NULL, true);
}

/* ---- what is known about channels ----------------------------------------------------- */

const char *discord__thread_parent(void *data, const char *channel)
{
    struct discord *dc = data;

    if (!channel || !*channel)
        return NULL;
    for (size_t i = 0; i < dc->nthreads; i++)
        if (!strcmp(dc->threads[i].id, channel))
            return dc->threads[i].parent;
    return NULL;
}

void discord__thread_add(struct discord *dc, const char *id, const char *parent)
{
    struct dc_thread *t = NULL;

    if (!id || !parent || !*id || !*parent || strlen(id) >= DC_ID || strlen(parent) >= DC_ID)
        return;
    for (size_t i = 0; i < dc->nthreads && !t; i++)
        if (!strcmp(dc->threads[i].id, id))
            t = &dc->threads[i];
    if (!t) {
        if (dc->nthreads < DC_MAX_THREADS)
            t = &dc->threads[dc->nthreads++];
        else
            t = &dc->threads[dc->threads_next++ % DC_MAX_THREADS];
    }
    ob_strlcpy(t->id, id, sizeof(t->id));
    ob_strlcpy(t->parent, parent, sizeof(t->parent));
}

void discord__thread_forget(struct discord *dc, const char *id)
{
    for (size_t i = 0; i < dc->nthreads; i++)
        if (!strcmp(dc->threads[i].id, id))
            dc->threads[i].id[0] = '\0';
}

static bool ring_has(const char (*ring)[DC_ID], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (ring[i][0] && !strcmp(ring[i], id))
            return true;
    return false;
}

void discord__dm_add(struct discord *dc, const char *channel)
{
    if (!channel || strlen(channel) >= DC_ID || discord__is_dm(dc, channel))
        return;
    ob_strlcpy(dc->dms[dc->dms_next++ % DC_MAX_DMS], channel, DC_ID);
}

bool discord__is_dm(const struct discord *dc, const char *channel)
{
    return channel && ring_has(dc->dms, DC_MAX_DMS, channel);
}

void discord__nothread_add(struct discord *dc, const char *message)
{
    if (!message || strlen(message) >= DC_ID || discord__is_nothread(dc, message))
        return;
    ob_strlcpy(dc->nothread[dc->nothread_next++ % DC_MAX_NOTHREAD], message, DC_ID);
}

bool discord__is_nothread(const struct discord *dc, const char *message)
{
    return message && ring_has(dc->nothread, DC_MAX_NOTHREAD, message);
}

void discord__self(struct discord *dc, struct ob_discord_self *self)
{
    memset(self, 0, sizeof(*self));
    self->user_id = dc->bot_user_id[0] ? dc->bot_user_id : NULL;
    self->listen_all = dc->cfg.listen_all;
    self->channels = dc->cfg.nchannels ? (const char *const *)dc->cfg.channels : NULL;
    self->nchannels = dc->cfg.nchannels;
    self->thread_parent = discord__thread_parent;
    self->data = dc;
}

/* ---- errors -------------------------------------------------------------------------- */

void discord__fatal(struct discord *dc, const char *why)
{
    if (dc->dead)
        return;
    dc->dead = true;
    discord__gw_stop(dc);
    discord__ix_stop(dc);
    discord__pump(dc); /* fails what is queued */
    if (dc->ad.fatal)
        dc->ad.fatal(dc->ad.on_event_data, why);
    else
        ob_error("discord", "%s", why);
}

/* ---- inbound ---------------------------------------------------------------------------- */

/* Under listen: mentions, a plain reply in a thread still reaches the core
 * when the bot asked that very user a question there. */
static bool answers_ask(struct discord *dc, const struct ob_discord_event *e)
{
    int64_t now = ob_now_ms();
    const char *where = e->thread[0] ? e->thread : e->channel;

    for (size_t i = 0; i < DC_MAX_ASKS; i++) {
        struct dc_ask *a = &dc->asks[i];

        if (a->user[0] && !strcmp(a->user, e->user) && !strcmp(a->thread, where) &&
            now - a->at_ms < ASK_WINDOW_MS) {
            a->user[0] = '\0';
            return true;
        }
    }
    return false;
}

static void emit(struct discord *dc, const struct ob_discord_event *e)
{
    struct ob_event ev;

    ob_debug("discord", "event %s (kind %d) from %s in %s%s%s", e->id, (int)e->kind, e->user,
             e->channel, e->thread[0] ? "/" : "", e->thread);
    ob_discord_event_view(e, &ev);
    if (dc->ad.on_event)
        dc->ad.on_event(dc->ad.on_event_data, &dc->ad, &ev);
}

/* DMs have no threads: the next message of a person opsbot asked something
 * in a DM belongs to the conversation of that question. */
static void dm_answer_thread(struct discord *dc, struct ob_discord_event *e)
{
    int64_t now = ob_now_ms();

    for (size_t i = 0; i < DC_MAX_ASKS; i++) {
        struct dc_ask *a = &dc->asks[i];

        if (a->user[0] && !strcmp(a->user, e->user) && !strcmp(a->channel, e->channel) &&
            strcmp(a->thread, e->channel) && now - a->at_ms < ASK_WINDOW_MS) {
            ob_strlcpy(e->thread, a->thread, sizeof(e->thread));
            a->user[0] = '\0';
            return;
        }
    }
}

void discord__handle_event(struct discord *dc, struct ob_discord_event *e)
{
    if (dc->life.stopping || dc->dead)
        return;
    if (e->dm)
        discord__dm_add(dc, e->channel);
    if (e->kind == OB_EV_MESSAGE && e->dm && !e->thread[0])
        dm_answer_thread(dc, e);
    if (e->kind == OB_EV_MESSAGE && !e->addressed && !dc->cfg.listen_all && !answers_ask(dc, e)) {
        ob_debug("discord", "message ignored: not addressed to the bot (listen: mentions)");
        return;
    }
    emit(dc, e);
}

/* The message id an interaction response created (with_response=true or
 * GET @original). */
static const char *response_message(const cJSON *json)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(json, "resource");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(res, "message");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(json, "interaction");

    if (cJSON_IsString(id))
        return id->valuestring;
    id = cJSON_GetObjectItemCaseSensitive(ix, "response_message_id");
    if (cJSON_IsString(id))
        return id->valuestring;
    id = cJSON_GetObjectItemCaseSensitive(json, "id"); /* a message object */
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

static void ix_done(struct discord *dc, struct dc_op *op, int status,
                    const struct dc_rest_result *res)
{
    struct ob_discord_event *e = op->ev;

    if (!e || dc->life.stopping || dc->dead || dc->life.closed)
        return;
    if (status)
        ob_warn("discord", "interaction %s: the answer to Discord failed (%s)", e->interaction_id,
                ob_strerror(status));
    if (e->source == OB_DISCORD_SRC_COMMAND) {
        const char *mid = !status && res && res->json ? response_message(res->json) : NULL;

        if (mid && strlen(mid) < sizeof(e->message) && strspn(mid, "0123456789") == strlen(mid))
            ob_strlcpy(e->message, mid, sizeof(e->message));
    }
    if (e->dm)
        discord__dm_add(dc, e->channel);
    emit(dc, e);
}

static struct dc_op *ix_op(enum dc_op_kind kind, const struct ob_discord_event *e)
{
    struct dc_op *op = ob_xcalloc(1, sizeof(*op));

    op->kind = kind;
    op->ev = ob_xmalloc(sizeof(*op->ev));
    *op->ev = *e;
    op->ev->text = e->text ? ob_xstrdup(e->text) : NULL;
    op->done = ix_done;
    return op;
}

/* Answers an interaction in time (unless the HTTP endpoint did already),
 * then hands it to the core. */
void discord__interaction(struct discord *dc, struct ob_discord_event *e, bool answered)
{
    struct dc_op *op;
    char key[2 * DC_ID + 8];
    cJSON *body;

    if (dc->life.stopping || dc->dead || e->source == OB_DISCORD_SRC_PING)
        return;
    snprintf(key, sizeof(key), "ix/%s", e->interaction_id);
    if (answered) {
        const char *app = e->application_id[0] ? e->application_id : dc->cfg.application_id;

        if (e->source != OB_DISCORD_SRC_COMMAND || !*app) {
            if (e->dm)
                discord__dm_add(dc, e->channel);
            emit(dc, e);
            return;
        }
        /* Which message did the answer create? It roots the thread. */
        op = ix_op(DC_OP_ORIGINAL, e);
        if (asprintf(&op->path, "/webhooks/%s/%s/messages/@original", app, e->interaction_token) <
            0) {
            op->path = NULL;
            discord__op_free(op);
            return;
        }
        discord__enqueue(dc, key, op);
        return;
    }
    op = ix_op(DC_OP_CALLBACK, e);
    if (e->source == OB_DISCORD_SRC_COMPONENT) {
        body = cJSON_CreateObject();
        cJSON_AddNumberToObject(body, "type", CB_DEFERRED_UPDATE);
    } else {
        body = discord__command_ack(e);
    }
    op->body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (asprintf(&op->path, "/interactions/%s/%s/callback%s", e->interaction_id,
                 e->interaction_token,
                 e->source == OB_DISCORD_SRC_COMMAND ? "?with_response=true" : "") < 0)
        op->path = NULL;
    if (!op->body || !op->path) {
        discord__op_free(op);
        return;
    }
    discord__enqueue(dc, key, op);
}

/* ---- start ------------------------------------------------------------------------------- */

static int discord_start(struct ob_adapter *ad)
{
    struct discord *dc = ad->ctx;

    if (dc->started)
        return 0;
    dc->started = true;
    if (dc->cfg.interactions && discord__ix_start(dc)) {
        ob_error("discord", "cannot listen for interactions on %s", dc->cfg.ix_listen);
        return OB_EINVAL;
    }
    discord__gw_start(dc);
    return 0;
}

static bool discord_ready(struct ob_adapter *ad)
{
    struct discord *dc = ad->ctx;

    return dc->ready && !dc->dead;
}

/* ---- outbound ------------------------------------------------------------------------------- */

static bool id_ok(const char *s)
{
    return digits(s, DC_ID - 1);
}

static int discord_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct discord *dc = ad->ctx;
    struct dc_op *op;
    char key[2 * DC_ID + 8];

    if (dc->dead)
        return OB_EHTTP;
    if (!id_ok(p->channel) || !p->text || (p->thread && *p->thread && !id_ok(p->thread)))
        return OB_EINVAL;
    op = ob_xcalloc(1, sizeof(*op));
    op->kind = DC_OP_POST;
    ob_strlcpy(op->channel, p->channel, sizeof(op->channel));
    if (p->thread && *p->thread)
        ob_strlcpy(op->thread, p->thread, sizeof(op->thread));
    else
        ob_strlcpy(op->target, p->channel, sizeof(op->target));
    op->flags = p->flags;
    op->cb = cb;
    op->cb_data = data;
    op->text = ob_xstrdup(p->text);
    if ((p->flags & OB_POST_QUESTION) && id_ok(p->ask_user)) {
        struct dc_ask *a = &dc->asks[dc->asks_next++ % DC_MAX_ASKS];

        ob_strlcpy(op->ask_user, p->ask_user, sizeof(op->ask_user));
        ob_strlcpy(a->channel, op->channel, sizeof(a->channel));
        ob_strlcpy(a->thread, op->thread[0] ? op->thread : op->channel, sizeof(a->thread));
        ob_strlcpy(a->user, p->ask_user, sizeof(a->user));
        a->at_ms = ob_now_ms();
    }
    snprintf(key, sizeof(key), "%s/%s", op->channel, op->thread);
    return discord__enqueue(dc, key, op);
}

static int discord_update(struct ob_adapter *ad, const struct ob_msgref *ref,
                          const struct ob_post *p)
{
    struct discord *dc = ad->ctx;
    struct dc_op *op;
    char key[2 * DC_ID + 8];

    if (dc->dead)
        return OB_EHTTP;
    if (!ref || !id_ok(ref->channel) || !id_ok(ref->message) || !p->text)
        return OB_EINVAL;
    op = ob_xcalloc(1, sizeof(*op));
    op->kind = DC_OP_UPDATE;
    ob_strlcpy(op->channel, ref->channel, sizeof(op->channel));
    ob_strlcpy(op->message, ref->message, sizeof(op->message));
    op->flags = p->flags;
    op->text = ob_xstrdup(p->text);
    snprintf(key, sizeof(key), "u/%s", op->channel);
    return discord__enqueue(dc, key, op);
}

static int discord_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    struct discord *dc = ad->ctx;
    struct dc_op *op;
    char key[2 * DC_ID + 8], *enc;

    if (dc->dead)
        return OB_EHTTP;
    if (!ref || !id_ok(ref->channel) || !id_ok(ref->message))
        return OB_EINVAL;
    enc = discord__emoji_path(emoji);
    if (!enc)
        return OB_EINVAL;
    op = ob_xcalloc(1, sizeof(*op));
    op->kind = DC_OP_REACT;
    ob_strlcpy(op->channel, ref->channel, sizeof(op->channel));
    ob_strlcpy(op->message, ref->message, sizeof(op->message));
    op->text = enc;
    snprintf(key, sizeof(key), "r/%s", op->channel);
    return discord__enqueue(dc, key, op);
}

/* ---- stop / free ------------------------------------------------------------------------------
 */

static size_t life_queued(void *ctx)
{
    return discord__queued(ctx);
}

static void life_fail_queued(void *ctx)
{
    discord__queue_drop(ctx, OB_ETIMEOUT, true);
}

static void life_release(void *ctx)
{
    struct discord *dc = ctx;

    discord__gw_stop(dc);
    discord__ix_stop(dc);
    discord__queue_drop(dc, OB_EHTTP, false);
    discord__rest_cancel_all(dc);
    /* Ops whose request was in flight lost their callback with it. */
    while (dc->queues) {
        struct dc_queue *q = dc->queues;

        dc->queues = q->next;
        while (q->head) {
            struct dc_op *op = q->head;

            q->head = op->next;
            discord__op_free(op);
        }
        free(q);
    }
    dc->nqueues = dc->nqueued = 0;
    ob_http_free(dc->http);
    dc->http = NULL;
}

static void life_destroy(void *ctx)
{
    struct discord *dc = ctx;

    cfg_release(&dc->cfg);
    free(dc);
}

static const struct ob_life_ops discord_life = {
    .name = "discord",
    .queued = life_queued,
    .fail_queued = life_fail_queued,
    .release = life_release,
    .destroy = life_destroy,
};

/* Closes once the queue has drained (never from inside an HTTP callback:
 * the timer runs it on the next loop turn). */
void discord__close_handles(struct discord *dc)
{
    if (!dc->calls)
        ob_life_close_handles(&dc->life, 0);
}

static void discord_stop(struct ob_adapter *ad)
{
    struct discord *dc = ad->ctx;

    if (!ob_life_stop(&dc->life))
        return;
    discord__gw_stop(dc);
    discord__ix_stop(dc);
    discord__rest_cancel_others(dc);
    /* What the core still posts (results of running actions) is delivered
     * for a while; then the handles close. */
    ob_life_close_handles(&dc->life, dc->queues || dc->calls ? DC_DRAIN_MS : 0);
}

static void discord_free(struct ob_adapter *ad)
{
    struct discord *dc = ad->ctx;

    if (!dc)
        return;
    dc->ad.on_event = NULL;
    ob_life_free(&dc->life);
}

static const struct ob_adapter_ops discord_ops = {
    .name = "discord",
    .flags = 0,
    .start = discord_start,
    .post = discord_post,
    .update = discord_update,
    .react = discord_react,
    .stop = discord_stop,
    .free = discord_free,
    .ready = discord_ready,
};

int ob_discord_new(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section)
{
    struct discord *dc;
    struct ob_diag d;
    int rc;

    *out = NULL;
    if (sodium_init() < 0)
        return OB_ENOMEM;
    if (!env->lws) {
        ob_error("discord", "no libwebsockets context");
        return OB_EINVAL;
    }
    dc = calloc(1, sizeof(*dc));
    if (!dc)
        return OB_ENOMEM;
    ob_diag_init(&d);
    rc = parse_cfg(env->cfg, section, &d, &dc->cfg, true);
    for (size_t i = 0; i < d.n; i++)
        ob_error("discord", "%s", d.lines[i] ? d.lines[i] : "?");
    ob_diag_release(&d);
    if (rc) {
        free(dc);
        return rc;
    }
    rc = ob_http_new_on(&dc->http, env->lws); /* freed in release, before the context */
    if (!rc)
        rc = ob_life_init(
            &dc->life, env->loop, &discord_life, dc,
            (uv_timer_t *const[]){&dc->pump, &dc->retry, &dc->hb, &dc->identify, NULL});
    if (rc) {
        ob_http_free(dc->http);
        cfg_release(&dc->cfg);
        free(dc);
        return rc;
    }
    dc->loop = env->loop;
    dc->lws = env->lws;
    dc->ad.ops = &discord_ops;
    dc->ad.loop = env->loop;
    dc->ad.ctx = dc;
    *out = &dc->ad;
    return 0;
}

static int discord_create(struct ob_adapter **out, const struct ob_platform_env *env,
                          const cJSON *section)
{
    return ob_discord_new(out, env, section);
}

const struct ob_platform ob_discord_platform = {
    .name = "discord",
    .check = ob_discord_check,
    .create = discord_create,
    .needs_lws = true,
    .needs_http = false, /* the adapter owns its client: it must outlive the core's */
};

/* ---- register-commands ------------------------------------------------------------------------
 */

struct reg_wait {
    bool done;
    long status;
    char message[160];
    int err;
};

static void reg_done(void *data, const struct ob_http_resp *resp)
{
    struct reg_wait *w = data;
    cJSON *json = resp->body_len ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(json, "message");

    w->done = true;
    w->status = resp->status;
    w->err = resp->err;
    if (resp->err)
        ob_strlcpy(w->message, resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err),
                   sizeof(w->message));
    else if (cJSON_IsString(msg))
        ob_strlcpy(w->message, msg->valuestring, sizeof(w->message));
    cJSON_Delete(json);
}

static cJSON *ops_command(void)
{
    cJSON *list = cJSON_CreateArray(), *cmd = cJSON_CreateObject(), *opts, *opt, *ctx;

    cJSON_AddStringToObject(cmd, "name", "ops");
    cJSON_AddNumberToObject(cmd, "type", 1); /* CHAT_INPUT */
    cJSON_AddStringToObject(cmd, "description",
                            "Ask opsbot for an operation, e.g. restart checkout in staging");
    ctx = cJSON_AddArrayToObject(cmd, "contexts");
    cJSON_AddItemToArray(ctx, cJSON_CreateNumber(0)); /* guild */
    cJSON_AddItemToArray(ctx, cJSON_CreateNumber(1)); /* bot DM */
    opts = cJSON_AddArrayToObject(cmd, "options");
    opt = cJSON_CreateObject();
    cJSON_AddNumberToObject(opt, "type", 3); /* STRING */
    cJSON_AddStringToObject(opt, "name", "request");
    cJSON_AddStringToObject(opt, "description", "What to do, in plain words");
    cJSON_AddTrueToObject(opt, "required");
    cJSON_AddNumberToObject(opt, "max_length", 1000);
    cJSON_AddItemToArray(opts, opt);
    cJSON_AddItemToArray(list, cmd);
    return list;
}

int ob_discord_register_commands(uv_loop_t *loop, const struct ob_config *cfg, const cJSON *section,
                                 char *msg, size_t msglen)
{
    struct dc_cfg c;
    struct ob_diag d;
    struct ob_http *http = NULL;
    struct ob_http_req hr = {0};
    struct reg_wait w = {0};
    char auth[300], *url = NULL, *body = NULL;
    const char *headers[] = {auth, DC_USER_AGENT, "Content-Type: application/json", NULL};
    cJSON *cmds;
    int rc;

    if (sodium_init() < 0)
        return OB_ENOMEM;
    ob_diag_init(&d);
    rc = parse_cfg(cfg, section, &d, &c, true);
    if (!rc && !c.application_id[0]) {
        ob_diag_addf(&d, "platforms.discord.application_id: needed to register commands");
        cfg_release(&c);
        rc = OB_ECONFIG;
    }
    if (rc) {
        snprintf(msg, msglen, "%s", d.n && d.lines[0] ? d.lines[0] : "invalid configuration");
        ob_diag_release(&d);
        return rc;
    }
    ob_diag_release(&d);
    rc = ob_http_new(&http, loop);
    if (rc) {
        cfg_release(&c);
        snprintf(msg, msglen, "cannot start the HTTP client: %s", ob_strerror(rc));
        return rc;
    }
    cmds = ops_command();
    body = cJSON_PrintUnformatted(cmds);
    cJSON_Delete(cmds);
    snprintf(auth, sizeof(auth), "Authorization: Bot %s", c.token);
    if (asprintf(&url, "%s/applications/%s/commands", c.api_base, c.application_id) < 0)
        url = NULL;
    hr.method = "PUT";
    hr.url = url;
    hr.headers = headers;
    hr.body = body;
    hr.body_len = body ? strlen(body) : 0;
    hr.timeout_ms = 30000;
    rc = url && body ? ob_http_request(http, &hr, reg_done, &w, NULL) : OB_ENOMEM;
    sodium_memzero(auth, sizeof(auth));
    while (!rc && !w.done)
        uv_run(loop, UV_RUN_ONCE);
    if (rc) {
        snprintf(msg, msglen, "cannot send the request: %s", ob_strerror(rc));
    } else if (w.err) {
        rc = w.err;
        snprintf(msg, msglen, "PUT /applications/%s/commands failed: %s", c.application_id,
                 w.message);
    } else if (w.status == 401) {
        rc = OB_EDENIED;
        snprintf(msg, msglen,
                 "the bot token was rejected (HTTP 401): check "
                 "platforms.discord.token");
    } else if (w.status < 200 || w.status >= 300) {
        rc = OB_EHTTP;
        snprintf(msg, msglen, "PUT /applications/%s/commands: HTTP %ld%s%s", c.application_id,
                 w.status, w.message[0] ? ": " : "", w.message);
    } else {
        snprintf(msg, msglen,
                 "registered /ops for application %s (it may take a minute to appear in "
                 "Discord)",
                 c.application_id);
    }
    free(url);
    free(body);
    ob_http_free(http);
    cfg_release(&c);
    return rc;
}
