/* The Teams adapter: configuration, the adapter operations, activity
 * dispatch (messages, reactions, Adaptive Card invokes answered in the
 * HTTP response, installs) and the lifecycle (listen, fetch the signing
 * keys and a Connector token at start, drain the send queue at stop,
 * fatal credential errors).
 *
 * The app secret lives in sodium_malloc'd memory and is never logged. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "teams_int.h"

#define SECRET_MAX 512
#define ASK_WINDOW_MS (24LL * 3600 * 1000)
#define BODY_DEFAULT (256 * 1024)
#define BODY_MAX_CAP (16 * 1024 * 1024)

static const char hello_text[] =
    "Hello, I am opsbot. Mention me with a request, for example \"@opsbot status of checkout in "
    "prod\"; \"@opsbot help\" lists what you may ask. I answer every step in the thread; "
    "approvals come as a card with Approve / Deny.";

/* ---- configuration ------------------------------------------------------------ */

static const char *const teams_keys[] = {
    "app_id",   "app_secret",      "tenant_id",      "listen",          "path",   "tls",
    "max_body", "allowed_tenants", "token_endpoint", "openid_metadata", "issuer", "service_url",
    NULL,
};
static const char *const tls_keys[] = {"cert", "key", NULL};

static void where_of(const struct ob_config *cfg, const cJSON *sec, const char *key, char *buf,
                     size_t len)
{
    ob_config_where(cfg, cJSON_GetObjectItemCaseSensitive(sec, key), buf, len);
}

static bool chars_ok(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

static void check_url(const struct ob_config *cfg, const cJSON *sec, const char *key, const char *v,
                      size_t cap, struct ob_diag *d)
{
    char where[512];

    if (!v)
        return;
    where_of(cfg, sec, key, where, sizeof(where));
    if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7))
        ob_diag_addf(d, "%s: platforms.teams.%s: must be an http:// or https:// URL", where, key);
    else if (strlen(v) >= cap - 64)
        ob_diag_addf(d, "%s: platforms.teams.%s: too long", where, key);
}

/* "256KiB", "1MiB", "512KB", "65536" (or a YAML number) into bytes. */
static int parse_size(const cJSON *node, size_t *out)
{
    char *end = NULL;
    double v;

    if (cJSON_IsNumber(node)) {
        v = node->valuedouble;
        end = (char *)"";
    } else if (cJSON_IsString(node)) {
        v = strtod(node->valuestring, &end);
        if (end == node->valuestring)
            return OB_EINVAL;
        while (*end == ' ')
            end++;
    } else {
        return OB_EINVAL;
    }
    if (!*end || !strcasecmp(end, "B"))
        ;
    else if (!strcasecmp(end, "KiB") || !strcasecmp(end, "K"))
        v *= 1024;
    else if (!strcasecmp(end, "KB"))
        v *= 1000;
    else if (!strcasecmp(end, "MiB") || !strcasecmp(end, "M"))
        v *= 1024 * 1024;
    else if (!strcasecmp(end, "MB"))
        v *= 1000 * 1000;
    else
        return OB_EINVAL;
    if (v < 1024 || v > BODY_MAX_CAP)
        return OB_E2BIG;
    *out = (size_t)v;
    return 0;
}

/* Checks sec; with out, also fills it (the secret copied into sodium
 * memory). */
static int parse_cfg(const struct ob_config *cfg, const cJSON *sec, struct ob_diag *d,
                     struct teams_cfg *out)
{
    size_t before = d->n;
    const char *app_id = NULL, *secret = NULL, *tenant = NULL, *listen = NULL, *path = NULL;
    const char *token_url = NULL, *openid = NULL, *issuer = NULL, *surl = NULL;
    const char *cert = NULL, *key = NULL;
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(sec, "tls"), *tenants = NULL, *it;
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(sec, "max_body");
    struct teams_cfg c = {0};
    char where[512];

    if (ob_cfg_check_keys(cfg, sec, teams_keys, "platforms.teams", d))
        return OB_ECONFIG;
    if (!ob_cfg_string(cfg, sec, "app_id", true, NULL, &app_id, d) && app_id) {
        where_of(cfg, sec, "app_id", where, sizeof(where));
        if (!*app_id)
            ob_diag_addf(d, "%s: platforms.teams.app_id: is empty (is TEAMS_APP_ID set?)", where);
        else if (strlen(app_id) > 100 || !chars_ok(app_id, "-"))
            ob_diag_addf(d,
                         "%s: platforms.teams.app_id: expected the bot's Microsoft App ID (a "
                         "GUID like 00000000-0000-0000-0000-000000000000)",
                         where);
    }
    if (!ob_cfg_string(cfg, sec, "app_secret", true, NULL, &secret, d) && secret) {
        where_of(cfg, sec, "app_secret", where, sizeof(where));
        if (!*secret)
            ob_diag_addf(d, "%s: platforms.teams.app_secret: is empty (is TEAMS_APP_SECRET set?)",
                         where);
        else if (strlen(secret) > SECRET_MAX)
            ob_diag_addf(d, "%s: platforms.teams.app_secret: longer than %d characters", where,
                         SECRET_MAX);
        else
            for (const char *p = secret; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) {
                    ob_diag_addf(d,
                                 "%s: platforms.teams.app_secret: contains a control character "
                                 "(the value is not shown)",
                                 where);
                    break;
                }
    }
    if (!ob_cfg_string(cfg, sec, "tenant_id", false, "", &tenant, d) && tenant &&
        (strlen(tenant) > 100 || !chars_ok(tenant, "-."))) {
        where_of(cfg, sec, "tenant_id", where, sizeof(where));
        ob_diag_addf(d,
                     "%s: platforms.teams.tenant_id: expected a tenant GUID or domain (empty = "
                     "multi-tenant)",
                     where);
    }
    if (!ob_cfg_string(cfg, sec, "listen", false, "0.0.0.0:3978", &listen, d) && listen &&
        (!*listen || strlen(listen) >= sizeof(c.listen) || !strchr(listen, ':'))) {
        where_of(cfg, sec, "listen", where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.teams.listen: expected HOST:PORT (e.g. 0.0.0.0:3978)",
                     where);
    }
    if (!ob_cfg_string(cfg, sec, "path", false, "/api/messages", &path, d) && path &&
        (path[0] != '/' || strlen(path) >= sizeof(c.path))) {
        where_of(cfg, sec, "path", where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.teams.path: must start with / (default /api/messages)",
                     where);
    }
    if (tls && !cJSON_IsNull(tls)) {
        if (!cJSON_IsObject(tls)) {
            where_of(cfg, sec, "tls", where, sizeof(where));
            ob_diag_addf(d, "%s: platforms.teams.tls: expected {cert: FILE, key: FILE}", where);
        } else if (!ob_cfg_check_keys(cfg, tls, tls_keys, "platforms.teams.tls", d)) {
            ob_cfg_string(cfg, tls, "cert", true, NULL, &cert, d);
            ob_cfg_string(cfg, tls, "key", true, NULL, &key, d);
        }
    }
    if (mb && !cJSON_IsNull(mb)) {
        size_t v = 0;
        int rc = parse_size(mb, &v);

        if (rc) {
            where_of(cfg, sec, "max_body", where, sizeof(where));
            ob_diag_addf(d, "%s: platforms.teams.max_body: %s", where,
                         rc == OB_E2BIG ? "must be between 1KiB and 16MiB"
                                        : "expected a size like 256KiB or 1MiB");
        }
        c.max_body = v;
    } else {
        c.max_body = BODY_DEFAULT;
    }
    if (!ob_cfg_strlist(cfg, sec, "allowed_tenants", false, &tenants, d) && tenants) {
        cJSON_ArrayForEach(it, (cJSON_IsArray(tenants) ? tenants : NULL))
        {
            if (!cJSON_IsString(it) || !*it->valuestring || strlen(it->valuestring) > 100) {
                ob_config_where(cfg, it, where, sizeof(where));
                ob_diag_addf(d, "%s: platforms.teams.allowed_tenants: expected tenant ids", where);
            }
        }
    }
    ob_cfg_string(cfg, sec, "token_endpoint", false,
                  "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token", &token_url, d);
    ob_cfg_string(cfg, sec, "openid_metadata", false,
                  "https://login.botframework.com/v1/.well-known/openidconfiguration", &openid, d);
    ob_cfg_string(cfg, sec, "issuer", false, "https://api.botframework.com", &issuer, d);
    ob_cfg_string(cfg, sec, "service_url", false, "https://smba.trafficmanager.net/teams/", &surl,
                  d);
    check_url(cfg, sec, "token_endpoint", token_url, sizeof(c.token_url), d);
    check_url(cfg, sec, "openid_metadata", openid, sizeof(c.openid_url), d);
    check_url(cfg, sec, "service_url", surl, sizeof(c.service_url), d);
    if (issuer && (!*issuer || strlen(issuer) >= sizeof(c.issuer))) {
        where_of(cfg, sec, "issuer", where, sizeof(where));
        ob_diag_addf(d, "%s: platforms.teams.issuer: empty or too long", where);
    }
    if (d->n != before)
        return OB_ECONFIG;
    if (!out)
        return 0;

    ob_strlcpy(c.app_id, app_id, sizeof(c.app_id));
    c.app_secret = sodium_malloc(strlen(secret) + 1);
    if (!c.app_secret)
        return OB_ENOMEM;
    memcpy(c.app_secret, secret, strlen(secret) + 1);
    ob_strlcpy(c.tenant, tenant, sizeof(c.tenant));
    ob_strlcpy(c.listen, listen, sizeof(c.listen));
    ob_strlcpy(c.path, path, sizeof(c.path));
    if (cert && key) {
        c.tls_cert = ob_config_path(cfg, cert);
        c.tls_key = ob_config_path(cfg, key);
    }
    {
        const char *t = strstr(token_url, "{tenant}");

        if (t)
            snprintf(c.token_url, sizeof(c.token_url), "%.*s%s%s", (int)(t - token_url), token_url,
                     *tenant ? tenant : "botframework.com", t + 8);
        else
            ob_strlcpy(c.token_url, token_url, sizeof(c.token_url));
    }
    ob_strlcpy(c.openid_url, openid, sizeof(c.openid_url));
    ob_strlcpy(c.issuer, issuer, sizeof(c.issuer));
    snprintf(c.service_url, sizeof(c.service_url), "%s%s", surl,
             surl[strlen(surl) - 1] == '/' ? "" : "/");
    if (tenants) {
        size_t n = cJSON_IsArray(tenants) ? (size_t)cJSON_GetArraySize(tenants) : 1;

        c.tenants = ob_xcalloc(n ? n : 1, sizeof(char *));
        if (cJSON_IsString(tenants))
            c.tenants[c.ntenants++] = ob_xstrdup(tenants->valuestring);
        cJSON_ArrayForEach(it, (cJSON_IsArray(tenants) ? tenants : NULL))
        {
            c.tenants[c.ntenants++] = ob_xstrdup(it->valuestring);
        }
    }
    *out = c;
    return 0;
}

static void cfg_release(struct teams_cfg *c)
{
    if (c->app_secret) {
        sodium_memzero(c->app_secret, strlen(c->app_secret));
        sodium_free(c->app_secret);
    }
    free(c->tls_cert);
    free(c->tls_key);
    for (size_t i = 0; i < c->ntenants; i++)
        free(c->tenants[i]);
    free(c->tenants);
    memset(c, 0, sizeof(*c));
}

int ob_teams_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d)
{
    if (sodium_init() < 0) {
        ob_diag_addf(d, "platforms.teams: libsodium cannot be initialised");
        return OB_ECONFIG;
    }
    return parse_cfg(cfg, section, d, NULL);
}

/* ---- errors ------------------------------------------------------------------- */

void teams__fatal(struct teams *tm, const char *why)
{
    if (tm->dead)
        return;
    tm->dead = true;
    teams__endpoint_stop(tm);
    uv_timer_stop(&tm->token_timer);
    teams__pump(tm); /* fails what is queued */
    if (tm->ad.fatal)
        tm->ad.fatal(tm->ad.on_event_data, why);
    else
        ob_error("teams", "%s", why);
}

/* ---- people and asks ------------------------------------------------------------ */

static void user_note(struct teams *tm, const struct ob_teams_activity *a)
{
    struct teams_user *u = NULL;

    for (size_t i = 0; i < tm->nusers; i++)
        if (!strcmp(tm->users[i].id, a->user)) {
            u = &tm->users[i];
            break;
        }
    if (!u)
        u = tm->nusers < TEAMS_MAX_USERS ? &tm->users[tm->nusers++]
                                         : &tm->users[tm->users_next++ % TEAMS_MAX_USERS];
    ob_strlcpy(u->id, a->user, sizeof(u->id));
    ob_strlcpy(u->from_id, a->from_id, sizeof(u->from_id));
    ob_strlcpy(u->name, a->user_name, sizeof(u->name));
}

static const struct teams_user *user_find(const struct teams *tm, const char *id)
{
    for (size_t i = 0; id && i < tm->nusers; i++)
        if (!strcmp(tm->users[i].id, id))
            return &tm->users[i];
    return NULL;
}

/* The thread of a question the bot asked this user here, consumed. With
 * thread set, only an ask in that thread matches. */
static const char *take_ask(struct teams *tm, const char *conv, const char *user,
                            const char *thread)
{
    int64_t now = ob_now_ms();

    for (size_t k = 1; k <= TEAMS_MAX_ASKS; k++) {
        struct teams_ask *a = &tm->asks[(tm->asks_next - k) % TEAMS_MAX_ASKS];

        if (a->user[0] && !strcmp(a->user, user) && !strcmp(a->conv, conv) &&
            (!thread || !strcmp(a->thread, thread)) && now - a->at_ms < ASK_WINDOW_MS) {
            a->user[0] = '\0';
            return a->thread;
        }
    }
    return NULL;
}

static const char *card_message(const struct teams *tm, const char *ref)
{
    for (size_t i = 0; ref && *ref && i < TEAMS_MAX_CARDS; i++)
        if (!strcmp(tm->cards[i].ref, ref))
            return tm->cards[i].message;
    return NULL;
}

/* ---- inbound ------------------------------------------------------------------ */

static void reply_json(struct ob_http_exchange *ex, int status, const char *body)
{
    ob_http_reply(ex, status, "application/json; charset=utf-8", body, strlen(body), NULL);
}

static void deliver(struct teams *tm, struct ob_event *ev)
{
    if (tm->ad.on_event && !tm->life.stopping && !tm->dead)
        tm->ad.on_event(tm->ad.on_event_data, &tm->ad, ev);
}

static void base_event(const struct ob_teams_activity *a, struct ob_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->id = a->id;
    ev->platform = "teams";
    ev->user = a->user;
    ev->user_name = a->user_name[0] ? a->user_name : NULL;
    ev->channel = a->conversation;
    ev->addressed = a->addressed;
    ev->thread = a->root[0] && strcmp(a->root, a->id) ? a->root : NULL;
}

static void on_message(struct teams *tm, const struct ob_teams_activity *a)
{
    struct ob_event ev;
    const char *ask = NULL;

    base_event(a, &ev);
    ev.kind = OB_EV_MESSAGE;
    ev.message = a->id;
    ev.text = a->text;
    ev.text_len = a->text_len;
    if (!ev.thread && !teams__conv_is_channel(tm, a->conversation)) {
        /* Chats have no threads: the answer to a question goes to the
         * question's thread. */
        ask = take_ask(tm, a->conversation, a->user, NULL);
        if (ask)
            ev.thread = ask;
    } else if (ev.thread) {
        ask = take_ask(tm, a->conversation, a->user, ev.thread);
    }
    if (!a->addressed && !ask) {
        ob_debug("teams", "message ignored: not addressed to the bot");
        return;
    }
    deliver(tm, &ev);
}

static const char *button_target(const struct teams *tm, const struct ob_teams_activity *a)
{
    const char *m = a->reply_to[0] ? a->reply_to : card_message(tm, a->card_ref);

    return m && *m ? m : NULL;
}

static void on_button(struct teams *tm, const struct ob_teams_activity *a)
{
    struct ob_event ev;

    base_event(a, &ev);
    ev.kind = OB_EV_BUTTON;
    ev.message = button_target(tm, a);
    ev.emoji = a->verb;
    if (!ev.message) {
        ob_warn("teams", "button press on an unknown card: ignored");
        return;
    }
    deliver(tm, &ev);
}

static void on_reaction(struct teams *tm, const struct ob_teams_activity *a)
{
    char id[OB_TEAMS_ID_MAX + 8];

    for (size_t i = 0; i < a->nreactions && !tm->life.stopping; i++) {
        struct ob_event ev;

        base_event(a, &ev);
        if (a->nreactions > 1) {
            snprintf(id, sizeof(id), "%.240s#%u", a->id, (unsigned)i);
            ev.id = id;
        }
        ev.kind = a->reactions[i].added ? OB_EV_REACTION_ADD : OB_EV_REACTION_REMOVE;
        ev.message = a->reply_to;
        ev.emoji = a->reactions[i].emoji;
        deliver(tm, &ev);
    }
}

static char *invoke_answer(struct teams_invoke *inv)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddNumberToObject(o, "statusCode", 200);
    if (inv->card_out) {
        cJSON_AddStringToObject(o, "type", "application/vnd.microsoft.card.adaptive");
        cJSON_AddItemToObject(o, "value", inv->card_out);
        inv->card_out = NULL;
    } else {
        /* Shown to the clicker only. */
        cJSON_AddStringToObject(o, "type", "application/vnd.microsoft.activity.message");
        cJSON_AddStringToObject(o, "value",
                                inv->msg ? inv->msg
                                         : "Nothing changed: this request is not open any more "
                                           "(or the click was already handled).");
    }
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void on_invoke(struct teams *tm, struct ob_http_exchange *ex,
                      const struct ob_teams_activity *a)
{
    struct teams_invoke inv = {0};
    char *body;

    inv.conv = a->conversation;
    inv.card = button_target(tm, a);
    if (!inv.card) {
        reply_json(ex, 200,
                   "{\"statusCode\":400,\"type\":\"application/vnd.microsoft.error\",\"value\":"
                   "{\"code\":\"BadRequest\",\"message\":\"unknown card\"}}");
        return;
    }
    tm->inv = &inv;
    on_button(tm, a);
    tm->inv = NULL;
    body = invoke_answer(&inv);
    if (body)
        reply_json(ex, 200, body);
    else
        reply_json(ex, 500, "{}");
    free(body);
    cJSON_Delete(inv.card_out);
    free(inv.msg);
}

static int post_text(struct teams *tm, const char *channel, const char *thread, unsigned flags,
                     const char *ask_user, const char *text, ob_post_cb cb, void *data);

void teams__dispatch(struct teams *tm, struct ob_http_exchange *ex, const cJSON *act)
{
    const struct ob_teams_self self = {.app_id = tm->cfg.app_id};
    struct ob_teams_activity a;
    int rc = ob_teams_activity_parse(&self, act, &a);

    if (rc < 0) {
        ob_warn("teams", "malformed activity (400): %s", ob_strerror(rc));
        reply_json(ex, 400, "{}");
        goto out;
    }
    if (rc == 0) {
        ob_debug("teams", "activity ignored: %s", a.ignored);
        reply_json(ex, 200, "{}");
        goto out;
    }
    teams__conv_seen(tm, a.conversation, a.service_url, a.conv_type);
    if (a.user[0])
        user_note(tm, &a);
    switch (a.kind) {
    case OB_TEAMS_INVOKE:
        on_invoke(tm, ex, &a);
        break;
    case OB_TEAMS_INVOKE_OTHER:
        reply_json(ex, 200, "{}");
        break;
    case OB_TEAMS_MESSAGE:
        /* Answer first, then work. */
        reply_json(ex, 200, "{}");
        if (a.ev_kind == OB_EV_BUTTON)
            on_button(tm, &a);
        else
            on_message(tm, &a);
        break;
    case OB_TEAMS_REACTION:
        reply_json(ex, 200, "{}");
        on_reaction(tm, &a);
        break;
    case OB_TEAMS_INSTALLED:
        reply_json(ex, 200, "{}");
        ob_info("teams", "added to conversation %.60s (%s)", a.conversation,
                a.conv_type[0] ? a.conv_type : "?");
        post_text(tm, a.conversation, NULL, 0, NULL, hello_text, NULL, NULL);
        break;
    case OB_TEAMS_IGNORED:
        reply_json(ex, 200, "{}");
        break;
    }
out:
    ob_teams_activity_release(&a);
}

/* ---- outbound ----------------------------------------------------------------- */

static struct teams_op *op_new(struct teams *tm, enum teams_op_kind kind, const char *channel,
                               const char *thread)
{
    struct teams_op *op = ob_xcalloc(1, sizeof(*op));

    op->kind = kind;
    ob_strlcpy(op->channel, channel, sizeof(op->channel));
    ob_strlcpy(op->thread, thread ? thread : "", sizeof(op->thread));
    if (op->thread[0] && teams__conv_is_channel(tm, channel))
        snprintf(op->url_conv, sizeof(op->url_conv), "%s;messageid=%s", channel, op->thread);
    else
        ob_strlcpy(op->url_conv, channel, sizeof(op->url_conv));
    return op;
}

/* Length of the next chunk of text from off: all of it when it fits, else
 * cut at a newline in the last quarter of the window or at a UTF-8
 * boundary. */
static size_t chunk_len(const char *text, size_t off)
{
    size_t rest = strlen(text + off), n = TEAMS_CHUNK_BYTES;

    if (rest <= TEAMS_CHUNK_BYTES)
        return rest;
    for (size_t i = n; i > n - n / 4; i--)
        if (text[off + i - 1] == '\n')
            return i;
    while (n > 1 && ((unsigned char)text[off + n] & 0xc0) == 0x80)
        n--;
    return n;
}

static char *activity_body(const char *xml, const cJSON *mention, const char *reply_to,
                           const char *id)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "type", "message");
    if (id)
        cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "textFormat", "xml");
    cJSON_AddStringToObject(o, "text", xml);
    if (reply_to && *reply_to)
        cJSON_AddStringToObject(o, "replyToId", reply_to);
    if (mention)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "entities"), cJSON_Duplicate(mention, true));
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *card_body(const char *text, unsigned flags, const char *ref, const char *reply_to,
                       const char *id)
{
    cJSON *o = cJSON_CreateObject(), *att = cJSON_CreateObject();
    char summary[200];
    size_t n = strcspn(text, "\n");
    char *s;

    if (n >= sizeof(summary))
        n = sizeof(summary) - 1;
    while (n && ((unsigned char)text[n] & 0xc0) == 0x80)
        n--;
    memcpy(summary, text, n);
    summary[n] = '\0';
    cJSON_AddStringToObject(o, "type", "message");
    if (id)
        cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "summary", summary);
    if (reply_to && *reply_to)
        cJSON_AddStringToObject(o, "replyToId", reply_to);
    cJSON_AddStringToObject(att, "contentType", "application/vnd.microsoft.card.adaptive");
    cJSON_AddItemToObject(att, "content", ob_teams_card(text, flags, ref));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "attachments"), att);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The mention entity of user (raw id as the core knows it) and the text
 * "<at>Name</at> " in front, or NULL when the user is unknown. */
static cJSON *mention_of(const struct teams *tm, const char *user, char *prefix, size_t len)
{
    const struct teams_user *u = user_find(tm, user);
    cJSON *e, *m;
    char *name, *at;

    prefix[0] = '\0';
    if (!u || !u->from_id[0])
        return NULL;
    name = teams__xml_text(u->name[0] ? u->name : "you", strlen(u->name[0] ? u->name : "you"));
    if (!name)
        return NULL;
    if (asprintf(&at, "<at>%s</at>", name) < 0) {
        free(name);
        return NULL;
    }
    snprintf(prefix, len, "%s ", at);
    e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "mention");
    cJSON_AddStringToObject(e, "text", at);
    m = cJSON_AddObjectToObject(e, "mentioned");
    cJSON_AddStringToObject(m, "id", u->from_id);
    cJSON_AddStringToObject(m, "name", u->name[0] ? u->name : "you");
    free(at);
    free(name);
    return e;
}

static int post_text(struct teams *tm, const char *channel, const char *thread, unsigned flags,
                     const char *ask_user, const char *text, ob_post_cb cb, void *data)
{
    size_t off = 0, total = strlen(text);
    char prefix[400] = "";
    cJSON *mention = NULL;
    int rc = 0;

    if ((flags & OB_POST_QUESTION) && ask_user && *ask_user) {
        mention = mention_of(tm, ask_user, prefix, sizeof(prefix));
        {
            struct teams_ask *a = &tm->asks[tm->asks_next++ % TEAMS_MAX_ASKS];

            ob_strlcpy(a->conv, channel, sizeof(a->conv));
            ob_strlcpy(a->thread, thread ? thread : "", sizeof(a->thread));
            ob_strlcpy(a->user, ask_user, sizeof(a->user));
            a->at_ms = ob_now_ms();
        }
    }
    do {
        size_t n = chunk_len(text, off);
        char *xml = teams__xml_text(text + off, n), *full = NULL;
        struct teams_op *op;

        if (!xml || asprintf(&full, "%s%s", off == 0 ? prefix : "", *xml ? xml : " ") < 0)
            full = NULL;
        free(xml);
        if (!full) {
            rc = OB_ENOMEM;
            break;
        }
        op = op_new(tm, TEAMS_OP_POST, channel, thread);
        ob_strlcpy(op->target, op->thread, sizeof(op->target));
        op->body = activity_body(full, off == 0 ? mention : NULL, op->thread, NULL);
        free(full);
        if (!op->body) {
            free(op);
            rc = OB_ENOMEM;
            break;
        }
        if (off == 0) {
            op->cb = cb;
            op->cb_data = data;
        }
        rc = teams__enqueue(tm, op);
        if (rc)
            break;
        off += n;
    } while (off < total);
    cJSON_Delete(mention);
    return rc;
}

static bool id_usable(const char *s, size_t cap)
{
    return s && *s && strlen(s) < cap;
}

static int teams_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct teams *tm = ad->ctx;
    struct teams_op *op;

    if (tm->dead)
        return OB_EHTTP;
    if (!id_usable(p->channel, 256) || !p->text || (p->thread && strlen(p->thread) >= 128))
        return OB_EINVAL;
    if (tm->inv && !strcmp(p->channel, tm->inv->conv)) {
        free(tm->inv->msg);
        tm->inv->msg = ob_xstrdup(p->text);
    }
    if (!(p->flags & OB_POST_APPROVAL) &&
        !((p->flags & OB_POST_CHOICES) && OB_POST_NCHOICES(p->flags)))
        return post_text(tm, p->channel, p->thread, p->flags, p->ask_user, p->text, cb, data);
    op = op_new(tm, TEAMS_OP_POST, p->channel, p->thread);
    ob_strlcpy(op->target, op->thread, sizeof(op->target));
    ob_random_id("c-", op->card_ref, sizeof(op->card_ref));
    op->body = card_body(p->text, p->flags, op->card_ref, op->thread, NULL);
    if (!op->body) {
        free(op);
        return OB_ENOMEM;
    }
    op->cb = cb;
    op->cb_data = data;
    return teams__enqueue(tm, op);
}

static int teams_update(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p)
{
    struct teams *tm = ad->ctx;
    struct teams_op *op;
    char *xml;

    if (tm->dead)
        return OB_EHTTP;
    if (!ref || !id_usable(ref->channel, 256) || !ref->message[0] || !p->text)
        return OB_EINVAL;
    if (tm->inv && !strcmp(ref->message, tm->inv->card) && !strcmp(ref->channel, tm->inv->conv) &&
        (p->flags & (OB_POST_APPROVAL | OB_POST_CHOICES))) {
        cJSON_Delete(tm->inv->card_out);
        tm->inv->card_out = ob_teams_card(p->text, p->flags, NULL);
    }
    op = op_new(tm, TEAMS_OP_UPDATE, ref->channel, ref->thread);
    ob_strlcpy(op->target, ref->message, sizeof(op->target));
    if (p->flags & (OB_POST_APPROVAL | OB_POST_CHOICES)) {
        op->body = card_body(p->text, p->flags, NULL, NULL, ref->message);
    } else {
        xml = teams__xml_text(p->text, strnlen(p->text, TEAMS_CHUNK_BYTES));
        op->body = xml ? activity_body(xml, NULL, NULL, ref->message) : NULL;
        free(xml);
    }
    if (!op->body) {
        free(op);
        return OB_ENOMEM;
    }
    return teams__enqueue(tm, op);
}

static int teams_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    /* The Bot Framework has no API for a bot to add a reaction. */
    (void)ad;
    (void)ref;
    (void)emoji;
    return 0;
}

static bool teams_ready(struct ob_adapter *ad)
{
    struct teams *tm = ad->ctx;

    return !tm->dead && tm->srv && tm->keys.n > 0 && tm->token_ok_once;
}

/* ---- lifecycle ---------------------------------------------------------------- */

static int teams_start(struct ob_adapter *ad)
{
    struct teams *tm = ad->ctx;
    char why[300];
    int rc;

    if (tm->started)
        return 0;
    tm->started = true;
    rc = teams__endpoint_start(tm);
    if (rc) {
        snprintf(why, sizeof(why), "teams: cannot listen on %s: %s (platforms.teams.listen%s)",
                 tm->cfg.listen, ob_strerror(rc), tm->cfg.tls_cert ? ", tls" : "");
        teams__fatal(tm, why);
        return 0;
    }
    teams__keys_fetch(tm);
    teams__token_fetch(tm);
    return 0;
}

static size_t life_queued(void *ctx)
{
    return teams__queued(ctx);
}

static void life_fail_queued(void *ctx)
{
    teams__queue_drop(ctx, OB_ETIMEOUT, true);
}

static void life_release(void *ctx)
{
    struct teams *tm = ctx;

    teams__endpoint_stop(tm);
    teams__queue_drop(tm, OB_EHTTP, false);
    teams__connector_cancel(tm);
    ob_http_free(tm->http);
    tm->http = NULL;
}

static void life_destroy(void *ctx)
{
    struct teams *tm = ctx;

    ob_teams_keys_release(&tm->keys);
    cfg_release(&tm->cfg);
    free(tm);
}

static const struct ob_life_ops teams_life = {
    .name = "teams",
    .queued = life_queued,
    .fail_queued = life_fail_queued,
    .release = life_release,
    .destroy = life_destroy,
};

void teams__close_handles(struct teams *tm)
{
    if (!tm->inflight)
        ob_life_close_handles(&tm->life, 0);
}

static void teams_stop(struct ob_adapter *ad)
{
    struct teams *tm = ad->ctx;

    if (!ob_life_stop(&tm->life))
        return;
    teams__endpoint_stop(tm);
    ob_life_close_handles(&tm->life, teams__queued(tm) || tm->inflight ? TEAMS_DRAIN_MS : 0);
}

static void teams_free(struct ob_adapter *ad)
{
    struct teams *tm = ad->ctx;

    if (!tm)
        return;
    tm->ad.on_event = NULL;
    ob_life_free(&tm->life);
}

static const struct ob_adapter_ops teams_ops = {
    .name = "teams",
    .flags = 0,
    .start = teams_start,
    .post = teams_post,
    .update = teams_update,
    .react = teams_react,
    .stop = teams_stop,
    .free = teams_free,
    .ready = teams_ready,
};

int ob_teams_new(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section)
{
    struct teams *tm;
    struct ob_diag d;
    int rc;

    *out = NULL;
    if (sodium_init() < 0)
        return OB_ENOMEM;
    if (!env->lws) {
        ob_error("teams", "no libwebsockets context");
        return OB_EINVAL;
    }
    tm = calloc(1, sizeof(*tm));
    if (!tm)
        return OB_ENOMEM;
    ob_diag_init(&d);
    rc = parse_cfg(env->cfg, section, &d, &tm->cfg);
    for (size_t i = 0; i < d.n; i++)
        ob_error("teams", "%s", d.lines[i] ? d.lines[i] : "?");
    ob_diag_release(&d);
    if (rc) {
        free(tm);
        return rc;
    }
    rc = ob_http_new_on(&tm->http, env->lws); /* freed in release, before the context */
    if (!rc)
        rc = ob_life_init(&tm->life, env->loop, &teams_life, tm,
                          (uv_timer_t *const[]){&tm->pump, &tm->token_timer, NULL});
    if (rc) {
        ob_http_free(tm->http);
        cfg_release(&tm->cfg);
        free(tm);
        return rc;
    }
    tm->loop = env->loop;
    tm->lws = env->lws;
    tm->ad.ops = &teams_ops;
    tm->ad.loop = env->loop;
    tm->ad.ctx = tm;
    *out = &tm->ad;
    return 0;
}

static int teams_create(struct ob_adapter **out, const struct ob_platform_env *env,
                        const cJSON *section)
{
    return ob_teams_new(out, env, section);
}

const struct ob_platform ob_teams_platform = {
    .name = "teams",
    .check = ob_teams_check,
    .create = teams_create,
    .needs_lws = true,
    .needs_http = false, /* the adapter owns its client: it must outlive the core's */
};
