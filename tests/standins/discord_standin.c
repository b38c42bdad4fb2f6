/* The local Discord: see discord_standin.h. Shapes follow Discord's API
 * documentation (../shared/protocols.md part B): gateway payloads, message
 * and channel objects, interaction objects, rate-limit headers and 429
 * bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "discord_standin.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "standin_wait.h"

#define MAX_CONNS 16
#define MAX_FAULTS 8
#define INTENT_MESSAGE_CONTENT (1u << 15)
#define VALID_INTENTS 0x3ffffffu
#define CALLBACK_DEADLINE_MS 3000

struct dconn {
    struct discord_standin *s;
    struct ob_ws *ws;
    unsigned id;
    bool authed;    /* identified or resumed */
    bool we_closed; /* the stand-in closed it */
    bool silent;    /* zombied: no ACKs, dispatches held back */
};

/* What a websocket path's callbacks get as data before the connection
 * is known. */
struct dpath {
    struct discord_standin *s;
    const char *path;
};

struct fault {
    char kind[20];
    int n;
    int64_t retry_after_ms;
    bool global;
};

struct bucket {
    char key[96];
    int used;
    int64_t window_start;
};

struct dmsg {
    char id[32];
    char channel[32];
    char *content;
    bool components;
};

struct dix {
    char id[32];
    char token[80];
    char channel[32];
    char guild[32];
    int64_t sent_ms;
    bool answered;
    char response[32]; /* message created by the answer */
};

struct discord_standin {
    uv_loop_t *loop;
    struct ob_lws *lws;
    struct ob_http_server *srv;
    int port;
    char api_base[64];
    char token[256], bot[32], app[32];
    int64_t heartbeat_ms;
    bool mc_off;
    int session_remaining;
    int64_t session_reset_ms;
    int msg_limit;
    int64_t msg_window_ms;
    struct dpath paths[2];
    struct standin_waiter waiter;
    bool freeing;
    int handles;

    /* gateway */
    struct dconn *conns[MAX_CONNS];
    unsigned next_conn;
    size_t connections, identifies, resumes, heartbeats;
    char last_path[32], last_query[128];
    uint32_t last_intents, session_intents;
    int64_t last_resume_seq;
    int client_close;
    int fail_identify;
    bool refuse_resume;
    int overlap;
    char session[48];
    unsigned session_no;
    long seq;
    char **history; /* stored dispatch frames, index = s - 1 (NULL when not stored) */
    size_t nhistory;

    /* rest */
    struct ds_call *calls;
    size_t ncalls, capcalls;
    struct fault faults[MAX_FAULTS];
    struct bucket buckets[256];
    size_t violations;
    struct dmsg *msgs;
    size_t nmsgs;
    struct dix *ixs;
    size_t nixs;
    char **dm_channels;
    size_t ndm;
    char **threads; /* "id parent" */
    size_t nthreads;
    unsigned next_id;
};

/* ---- small helpers --------------------------------------------------------------- */

static const char *pstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void new_id(struct discord_standin *s, char prefix, char *out, size_t len)
{
    snprintf(out, len, "%c%017u", prefix, ++s->next_id);
}

static void list_add(char ***list, size_t *n, const char *v)
{
    *list = realloc(*list, (*n + 1) * sizeof(char *));
    (*list)[(*n)++] = strdup(v);
}

static bool list_has(char **list, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], v))
            return true;
    return false;
}

static void list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static bool is_dm(const struct discord_standin *s, const char *channel)
{
    return list_has(s->dm_channels, s->ndm, channel);
}

static const char *thread_parent(const struct discord_standin *s, const char *id)
{
    size_t n = strlen(id);

    for (size_t i = 0; i < s->nthreads; i++)
        if (!strncmp(s->threads[i], id, n) && s->threads[i][n] == ' ')
            return s->threads[i] + n + 1;
    return NULL;
}

bool discord_standin_is_thread(const struct discord_standin *s, const char *id)
{
    return thread_parent(s, id) != NULL;
}

static struct dmsg *msg_find(struct discord_standin *s, const char *id)
{
    for (size_t i = 0; i < s->nmsgs; i++)
        if (!strcmp(s->msgs[i].id, id))
            return &s->msgs[i];
    return NULL;
}

static struct dmsg *msg_add(struct discord_standin *s, const char *channel, const char *content,
                            bool components)
{
    struct dmsg *m;

    s->msgs = realloc(s->msgs, (s->nmsgs + 1) * sizeof(*s->msgs));
    m = &s->msgs[s->nmsgs++];
    memset(m, 0, sizeof(*m));
    new_id(s, '7', m->id, sizeof(m->id));
    ob_strlcpy(m->channel, channel, sizeof(m->channel));
    m->content = strdup(content ? content : "");
    m->components = components;
    return m;
}

static struct dix *ix_find(struct discord_standin *s, const char *id)
{
    for (size_t i = 0; i < s->nixs; i++)
        if (!strcmp(s->ixs[i].id, id))
            return &s->ixs[i];
    return NULL;
}

static struct dix *ix_new(struct discord_standin *s, const char *channel, const char *guild)
{
    struct dix *x;
    unsigned char r[12];
    char hex[25];

    s->ixs = realloc(s->ixs, (s->nixs + 1) * sizeof(*s->ixs));
    x = &s->ixs[s->nixs++];
    memset(x, 0, sizeof(*x));
    new_id(s, '8', x->id, sizeof(x->id));
    randombytes_buf(r, sizeof(r));
    sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
    snprintf(x->token, sizeof(x->token), "aW50ZXJhY3Rpb24_%s-%s", x->id + 10, hex);
    ob_strlcpy(x->channel, channel ? channel : "", sizeof(x->channel));
    ob_strlcpy(x->guild, guild ? guild : "", sizeof(x->guild));
    x->sent_ms = ob_now_ms();
    return x;
}

static cJSON *user_obj(const char *id, bool bot)
{
    cJSON *u = cJSON_CreateObject();
    char name[48];

    snprintf(name, sizeof(name), "%s-%s", bot ? "opsbot" : "user", id + strlen(id) - 3);
    cJSON_AddStringToObject(u, "id", id);
    cJSON_AddStringToObject(u, "username", name);
    cJSON_AddStringToObject(u, "discriminator", "0");
    if (bot)
        cJSON_AddNullToObject(u, "global_name");
    else
        cJSON_AddStringToObject(u, "global_name", name);
    cJSON_AddBoolToObject(u, "bot", bot);
    return u;
}

static cJSON *message_obj(struct discord_standin *s, const struct dmsg *m)
{
    cJSON *o = cJSON_CreateObject();
    const char *parent = thread_parent(s, m->channel);

    (void)parent;
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "channel_id", m->channel);
    cJSON_AddItemToObject(o, "author", user_obj(s->bot, true));
    cJSON_AddStringToObject(o, "content", m->content);
    cJSON_AddStringToObject(o, "timestamp", "2026-01-01T00:00:00.000000+00:00");
    cJSON_AddNullToObject(o, "edited_timestamp");
    cJSON_AddFalseToObject(o, "tts");
    cJSON_AddFalseToObject(o, "mention_everyone");
    cJSON_AddItemToObject(o, "mentions", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "mention_roles", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "attachments", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "embeds", cJSON_CreateArray());
    cJSON_AddFalseToObject(o, "pinned");
    cJSON_AddNumberToObject(o, "type", 0);
    cJSON_AddNumberToObject(o, "flags", 0);
    cJSON_AddItemToObject(o, "components", cJSON_CreateArray());
    return o;
}

/* ---- gateway ------------------------------------------------------------------------ */

static struct dconn *live_conn(struct discord_standin *s)
{
    struct dconn *best = NULL;

    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && s->conns[i]->authed && !s->conns[i]->silent &&
            (!best || s->conns[i]->id > best->id))
            best = s->conns[i];
    return best;
}

static struct dconn *newest_conn(struct discord_standin *s)
{
    struct dconn *best = NULL;

    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && (!best || s->conns[i]->id > best->id))
            best = s->conns[i];
    return best;
}

static void send_text(struct dconn *c, const char *text)
{
    ob_ws_send_text(c->ws, text, strlen(text));
}

/* A dispatch frame with the next s; stored for replay when store. */
static char *dispatch_frame(struct discord_standin *s, const char *t, cJSON *d, bool store)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddNumberToObject(o, "op", 0);
    cJSON_AddStringToObject(o, "t", t);
    cJSON_AddNumberToObject(o, "s", (double)++s->seq);
    cJSON_AddItemToObject(o, "d", d);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    s->history = realloc(s->history, (size_t)s->seq * sizeof(char *));
    while (s->nhistory < (size_t)s->seq)
        s->history[s->nhistory++] = NULL;
    if (store)
        s->history[s->seq - 1] = strdup(text);
    return text;
}

static void close_conn(struct dconn *c, int code, const char *reason)
{
    c->authed = false;
    c->we_closed = true;
    ob_ws_close(c->ws, code, reason);
}

static void on_identify(struct discord_standin *s, struct dconn *c, const cJSON *d)
{
    const char *token = pstr(d, "token");
    const cJSON *intents = cJSON_GetObjectItemCaseSensitive(d, "intents");
    uint32_t bits = cJSON_IsNumber(intents) ? (uint32_t)intents->valuedouble : 0;
    cJSON *ready, *user, *app;
    char url[96], *frame;

    s->identifies++;
    s->last_intents = bits;
    if (c->authed) {
        close_conn(c, 4005, "Already authenticated.");
        return;
    }
    if (!token || strcmp(token, s->token)) {
        close_conn(c, 4004, "Authentication failed.");
        return;
    }
    if (s->fail_identify) {
        int code = s->fail_identify;

        s->fail_identify = 0;
        close_conn(c, code, "Closed by the test.");
        return;
    }
    if (!cJSON_IsNumber(intents) || (bits & ~VALID_INTENTS)) {
        close_conn(c, 4013, "Invalid intent(s).");
        return;
    }
    if ((bits & INTENT_MESSAGE_CONTENT) && s->mc_off) {
        close_conn(c, 4014, "Disallowed intent(s).");
        return;
    }
    /* A new session: the old one is gone. */
    snprintf(s->session, sizeof(s->session), "standin-session-%u", ++s->session_no);
    s->session_intents = bits;
    for (size_t i = 0; i < s->nhistory; i++)
        free(s->history[i]);
    free(s->history);
    s->history = NULL;
    s->nhistory = 0;
    s->seq = 0;
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && s->conns[i] != c)
            s->conns[i]->authed = false;
    c->authed = true;
    ready = cJSON_CreateObject();
    cJSON_AddNumberToObject(ready, "v", 10);
    user = user_obj(s->bot, true);
    cJSON_AddItemToObject(ready, "user", user);
    cJSON_AddItemToObject(ready, "guilds", cJSON_CreateArray());
    cJSON_AddStringToObject(ready, "session_id", s->session);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/resume", s->port);
    cJSON_AddStringToObject(ready, "resume_gateway_url", url);
    app = cJSON_AddObjectToObject(ready, "application");
    cJSON_AddStringToObject(app, "id", s->app);
    cJSON_AddNumberToObject(app, "flags", 0);
    frame = dispatch_frame(s, "READY", ready, false);
    send_text(c, frame);
    free(frame);
}

static void invalid_session(struct dconn *c, bool d)
{
    char frame[40];

    snprintf(frame, sizeof(frame), "{\"op\":9,\"d\":%s}", d ? "true" : "false");
    send_text(c, frame);
}

static void on_resume(struct discord_standin *s, struct dconn *c, const cJSON *d)
{
    const char *token = pstr(d, "token"), *sid = pstr(d, "session_id");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(d, "seq");
    long from;
    char *frame;

    if (!token || strcmp(token, s->token)) {
        close_conn(c, 4004, "Authentication failed.");
        return;
    }
    s->last_resume_seq = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : -1;
    if (s->refuse_resume || !sid || strcmp(sid, s->session) || !cJSON_IsNumber(seq) ||
        seq->valuedouble > (double)s->seq) {
        s->refuse_resume = false;
        invalid_session(c, false);
        return;
    }
    s->resumes++;
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && s->conns[i] != c)
            s->conns[i]->authed = false;
    c->authed = true;
    from = (long)seq->valuedouble - s->overlap;
    if (from < 0)
        from = 0;
    for (long i = from; i < (long)s->nhistory; i++)
        if (s->history[i])
            send_text(c, s->history[i]);
    frame = dispatch_frame(s, "RESUMED", cJSON_CreateObject(), false);
    send_text(c, frame);
    free(frame);
}

static void ws_open(void *data, struct ob_ws *ws)
{
    struct dpath *dp = data;
    struct discord_standin *s = dp->s;
    const char *q = ob_ws_query(ws);
    struct dconn *c;
    int slot = -1;
    char hello[96];

    s->connections++;
    ob_strlcpy(s->last_path, dp->path, sizeof(s->last_path));
    ob_strlcpy(s->last_query, q ? q : "", sizeof(s->last_query));
    for (int i = 0; i < MAX_CONNS; i++)
        if (!s->conns[i]) {
            slot = i;
            break;
        }
    if (slot < 0) {
        ob_ws_set_data(ws, NULL);
        ob_ws_close(ws, 4008, "too many connections");
        return;
    }
    c = calloc(1, sizeof(*c));
    c->s = s;
    c->ws = ws;
    c->id = ++s->next_conn;
    s->conns[slot] = c;
    ob_ws_set_data(ws, c);
    if (!q || !strstr(q, "v=10") || !strstr(q, "encoding=json")) {
        close_conn(c, 4012, "Invalid API version.");
        return;
    }
    snprintf(hello, sizeof(hello),
             "{\"op\":10,\"d\":{\"heartbeat_interval\":%lld},\"s\":null,"
             "\"t\":null}",
             (long long)s->heartbeat_ms);
    send_text(c, hello);
}

static void ws_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct dconn *c = data;
    struct discord_standin *s;
    cJSON *o;
    const cJSON *op;

    (void)ws;
    if (!c)
        return;
    s = c->s;
    o = cJSON_ParseWithLength(text, len);
    op = cJSON_GetObjectItemCaseSensitive(o, "op");
    if (getenv("STANDIN_DEBUG") && (!cJSON_IsNumber(op) || op->valueint != 1))
        fprintf(stderr, "STANDIN rx conn %u: %.*s\n", c->id, (int)(len > 200 ? 200 : len), text);
    if (!cJSON_IsNumber(op)) {
        close_conn(c, 4002, "Error while decoding payload.");
        cJSON_Delete(o);
        return;
    }
    switch (op->valueint) {
    case 1:
        s->heartbeats++;
        if (!c->silent)
            send_text(c, "{\"op\":11}");
        break;
    case 2:
        on_identify(s, c, cJSON_GetObjectItemCaseSensitive(o, "d"));
        break;
    case 6:
        on_resume(s, c, cJSON_GetObjectItemCaseSensitive(o, "d"));
        break;
    default:
        close_conn(c, 4001, "Unknown opcode.");
        break;
    }
    cJSON_Delete(o);
}

static void ws_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct dconn *c = data;

    (void)ws;
    (void)reason;
    if (!c)
        return;
    if (!c->we_closed && code != 1006 && code != 1005)
        c->s->client_close = code;
    for (int i = 0; i < MAX_CONNS; i++)
        if (c->s->conns[i] == c)
            c->s->conns[i] = NULL;
    free(c);
}

static const struct ob_ws_cbs ws_cbs = {
    .on_open = ws_open,
    .on_text = ws_text,
    .on_close = ws_close,
};

long discord_standin_dispatch(struct discord_standin *s, const char *t, const char *d_json)
{
    cJSON *d = cJSON_Parse(d_json);
    struct dconn *c;
    char *frame;
    long seq;

    if (!d || !s->session[0]) {
        cJSON_Delete(d);
        return -1;
    }
    frame = dispatch_frame(s, t, d, true);
    seq = s->seq;
    c = live_conn(s);
    if (getenv("STANDIN_DEBUG"))
        fprintf(stderr, "STANDIN dispatch %s s=%ld %s\n", t, seq, c ? "sent" : "held");
    if (c)
        send_text(c, frame);
    free(frame);
    return seq;
}

static long dispatch_obj(struct discord_standin *s, const char *t, cJSON *d)
{
    char *text = cJSON_PrintUnformatted(d);
    long rc = discord_standin_dispatch(s, t, text);

    free(text);
    cJSON_Delete(d);
    return rc;
}

long discord_standin_message(struct discord_standin *s, const char *channel, const char *guild,
                             const char *user, const char *text, char *id_out, size_t id_len)
{
    cJSON *d = cJSON_CreateObject(), *mentions = cJSON_CreateArray();
    char id[32], m1[48], m2[48];
    bool mentioned;

    new_id(s, '4', id, sizeof(id));
    snprintf(m1, sizeof(m1), "<@%s>", s->bot);
    snprintf(m2, sizeof(m2), "<@!%s>", s->bot);
    mentioned = strstr(text, m1) || strstr(text, m2);
    if (!guild && !is_dm(s, channel))
        list_add(&s->dm_channels, &s->ndm, channel);
    cJSON_AddStringToObject(d, "id", id);
    cJSON_AddStringToObject(d, "channel_id", channel);
    if (guild) {
        cJSON *member = cJSON_AddObjectToObject(d, "member");

        cJSON_AddStringToObject(d, "guild_id", guild);
        cJSON_AddNullToObject(member, "nick");
        cJSON_AddItemToObject(member, "roles", cJSON_CreateArray());
    }
    cJSON_AddItemToObject(d, "author", user_obj(user, false));
    /* Without the Message Content intent, guild messages arrive without
     * text unless they mention the bot. */
    cJSON_AddStringToObject(
        d, "content",
        !guild || mentioned || (s->session_intents & INTENT_MESSAGE_CONTENT) ? text : "");
    cJSON_AddStringToObject(d, "timestamp", "2026-01-01T00:00:00.000000+00:00");
    cJSON_AddNullToObject(d, "edited_timestamp");
    cJSON_AddFalseToObject(d, "tts");
    cJSON_AddFalseToObject(d, "mention_everyone");
    if (mentioned)
        cJSON_AddItemToArray(mentions, user_obj(s->bot, true));
    cJSON_AddItemToObject(d, "mentions", mentions);
    cJSON_AddItemToObject(d, "mention_roles", cJSON_CreateArray());
    cJSON_AddItemToObject(d, "attachments", cJSON_CreateArray());
    cJSON_AddItemToObject(d, "embeds", cJSON_CreateArray());
    cJSON_AddItemToObject(d, "components", cJSON_CreateArray());
    cJSON_AddFalseToObject(d, "pinned");
    cJSON_AddNumberToObject(d, "type", 0);
    cJSON_AddNumberToObject(d, "flags", 0);
    if (id_out)
        ob_strlcpy(id_out, id, id_len);
    return dispatch_obj(s, "MESSAGE_CREATE", d);
}

long discord_standin_reaction(struct discord_standin *s, const char *user, const char *channel,
                              const char *guild, const char *message, const char *emoji, bool add)
{
    cJSON *d = cJSON_CreateObject(), *e;

    cJSON_AddStringToObject(d, "user_id", user);
    cJSON_AddStringToObject(d, "channel_id", channel);
    cJSON_AddStringToObject(d, "message_id", message);
    if (guild) {
        cJSON_AddStringToObject(d, "guild_id", guild);
        if (add) {
            cJSON *member = cJSON_AddObjectToObject(d, "member");

            cJSON_AddItemToObject(member, "user", user_obj(user, false));
            cJSON_AddItemToObject(member, "roles", cJSON_CreateArray());
        }
    }
    e = cJSON_AddObjectToObject(d, "emoji");
    cJSON_AddNullToObject(e, "id");
    cJSON_AddStringToObject(e, "name", emoji);
    cJSON_AddFalseToObject(d, "burst");
    cJSON_AddNumberToObject(d, "type", 0);
    if (add)
        cJSON_AddStringToObject(d, "message_author_id", s->bot);
    return dispatch_obj(s, add ? "MESSAGE_REACTION_ADD" : "MESSAGE_REACTION_REMOVE", d);
}

static cJSON *interaction_obj(struct discord_standin *s, struct dix *x, int type, const char *user,
                              const char *message, const char *arg)
{
    cJSON *d = cJSON_CreateObject(), *data;

    cJSON_AddStringToObject(d, "id", x->id);
    cJSON_AddStringToObject(d, "application_id", s->app);
    cJSON_AddNumberToObject(d, "type", type);
    cJSON_AddStringToObject(d, "token", x->token);
    cJSON_AddNumberToObject(d, "version", 1);
    if (type == 1)
        return d;
    if (x->guild[0]) {
        cJSON *member = cJSON_AddObjectToObject(d, "member");

        cJSON_AddStringToObject(d, "guild_id", x->guild);
        cJSON_AddItemToObject(member, "user", user_obj(user, false));
        cJSON_AddNullToObject(member, "nick");
        cJSON_AddItemToObject(member, "roles", cJSON_CreateArray());
    } else {
        cJSON_AddItemToObject(d, "user", user_obj(user, false));
    }
    cJSON_AddStringToObject(d, "channel_id", x->channel);
    cJSON_AddStringToObject(d, "app_permissions", "2248473465835073");
    cJSON_AddStringToObject(d, "locale", "en-US");
    cJSON_AddItemToObject(d, "entitlements", cJSON_CreateArray());
    cJSON_AddNumberToObject(d, "context", x->guild[0] ? 0 : 1);
    data = cJSON_AddObjectToObject(d, "data");
    if (type == 3) {
        struct dmsg *m = msg_find(s, message);
        cJSON *mo;

        cJSON_AddStringToObject(data, "custom_id", arg);
        cJSON_AddNumberToObject(data, "component_type", 2);
        if (m) {
            mo = message_obj(s, m);
        } else {
            mo = cJSON_CreateObject();
            cJSON_AddStringToObject(mo, "id", message);
            cJSON_AddStringToObject(mo, "channel_id", x->channel);
        }
        cJSON_AddItemToObject(d, "message", mo);
    } else {
        cJSON *opts = cJSON_AddArrayToObject(data, "options"), *o = cJSON_CreateObject();

        cJSON_AddStringToObject(data, "id", "610000000000000001");
        cJSON_AddStringToObject(data, "name", "ops");
        cJSON_AddNumberToObject(data, "type", 1);
        cJSON_AddStringToObject(o, "name", "request");
        cJSON_AddNumberToObject(o, "type", 3);
        cJSON_AddStringToObject(o, "value", arg);
        cJSON_AddItemToArray(opts, o);
    }
    return d;
}

long discord_standin_button(struct discord_standin *s, const char *user, const char *channel,
                            const char *guild, const char *message, const char *custom_id,
                            char *id_out, size_t id_len)
{
    struct dix *x = ix_new(s, channel, guild);

    if (id_out)
        ob_strlcpy(id_out, x->id, id_len);
    return dispatch_obj(s, "INTERACTION_CREATE",
                        interaction_obj(s, x, 3, user, message, custom_id));
}

long discord_standin_slash(struct discord_standin *s, const char *user, const char *channel,
                           const char *guild, const char *text, char *id_out, size_t id_len)
{
    struct dix *x = ix_new(s, channel, guild);

    if (id_out)
        ob_strlcpy(id_out, x->id, id_len);
    return dispatch_obj(s, "INTERACTION_CREATE", interaction_obj(s, x, 2, user, NULL, text));
}

char *discord_standin_interaction_json(struct discord_standin *s, int type, const char *user,
                                       const char *channel, const char *guild, const char *message,
                                       const char *arg)
{
    struct dix *x = ix_new(s, channel, guild);
    cJSON *d = interaction_obj(s, x, type, user, message, arg);
    char *text = cJSON_PrintUnformatted(d);

    /* Answered inline by the endpoint: Discord made the message then. */
    x->answered = true;
    cJSON_Delete(d);
    return text;
}

int discord_standin_reconnect(struct discord_standin *s)
{
    struct dconn *c = newest_conn(s);

    if (!c)
        return -1;
    send_text(c, "{\"op\":7,\"d\":null,\"s\":null,\"t\":null}");
    return 0;
}

int discord_standin_invalid_session(struct discord_standin *s, bool d)
{
    struct dconn *c = newest_conn(s);

    if (!c)
        return -1;
    if (!d)
        s->session[0] = '\0';
    invalid_session(c, d);
    return 0;
}

int discord_standin_heartbeat_request(struct discord_standin *s)
{
    struct dconn *c = newest_conn(s);

    if (!c)
        return -1;
    send_text(c, "{\"op\":1,\"d\":null}");
    return 0;
}

int discord_standin_close(struct discord_standin *s, int code, const char *reason)
{
    struct dconn *c = newest_conn(s);

    if (!c)
        return -1;
    close_conn(c, code, reason ? reason : "");
    return 0;
}

int discord_standin_raw(struct discord_standin *s, const char *frame)
{
    struct dconn *c = newest_conn(s);

    if (!c)
        return -1;
    send_text(c, frame);
    return 0;
}

/* ---- REST ------------------------------------------------------------------------------ */

static struct ds_call *call_new(struct discord_standin *s, const char *kind, const char *method)
{
    struct ds_call *c;

    if (s->ncalls == s->capcalls) {
        s->capcalls = s->capcalls ? s->capcalls * 2 : 64;
        s->calls = realloc(s->calls, s->capcalls * sizeof(*s->calls));
    }
    c = &s->calls[s->ncalls++];
    memset(c, 0, sizeof(*c));
    ob_strlcpy(c->kind, kind, sizeof(c->kind));
    ob_strlcpy(c->method, method, sizeof(c->method));
    c->content = strdup("");
    c->at_ms = ob_now_ms();
    c->status = 200;
    return c;
}

static struct fault *fault_take(struct discord_standin *s, const char *kind)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        if (s->faults[i].n > 0 && !strcmp(s->faults[i].kind, kind)) {
            s->faults[i].n--;
            return &s->faults[i];
        }
    }
    return NULL;
}

/* Rate-limit state of (bucket, major): headers into hdrs; returns the ms
 * to wait when exhausted (a violation), else 0. */
struct rl_hdrs {
    char limit[48], remaining[48], reset[64], after[64], bucket[64];
    const char *list[6];
};

static int64_t bucket_use(struct discord_standin *s, const char *hash, const char *major, int limit,
                          int64_t window, struct rl_hdrs *h)
{
    char key[96];
    struct bucket *b = NULL, *free_slot = NULL;
    int64_t now = ob_now_ms(), left;
    int remaining;

    snprintf(key, sizeof(key), "%s:%s", hash, major);
    for (size_t i = 0; i < sizeof(s->buckets) / sizeof(s->buckets[0]); i++) {
        if (!strcmp(s->buckets[i].key, key)) {
            b = &s->buckets[i];
            break;
        }
        if (!s->buckets[i].key[0] && !free_slot)
            free_slot = &s->buckets[i];
    }
    if (!b) {
        b = free_slot ? free_slot : &s->buckets[0];
        memset(b, 0, sizeof(*b));
        ob_strlcpy(b->key, key, sizeof(b->key));
    }
    if (!b->window_start || now - b->window_start >= window) {
        b->window_start = now;
        b->used = 0;
    }
    left = b->window_start + window - now;
    if (b->used >= limit)
        return left > 0 ? left : 1;
    b->used++;
    remaining = limit - b->used;
    snprintf(h->limit, sizeof(h->limit), "X-RateLimit-Limit: %d", limit);
    snprintf(h->remaining, sizeof(h->remaining), "X-RateLimit-Remaining: %d", remaining);
    snprintf(h->reset, sizeof(h->reset), "X-RateLimit-Reset: %.3f",
             (double)(b->window_start + window) / 1000.0);
    snprintf(h->after, sizeof(h->after), "X-RateLimit-Reset-After: %.3f", (double)left / 1000.0);
    snprintf(h->bucket, sizeof(h->bucket), "X-RateLimit-Bucket: %s", hash);
    h->list[0] = h->limit;
    h->list[1] = h->remaining;
    h->list[2] = h->reset;
    h->list[3] = h->after;
    h->list[4] = h->bucket;
    h->list[5] = NULL;
    return 0;
}

static void reply_json(struct ob_http_exchange *ex, int status, cJSON *o, const char *const *hdrs)
{
    char *body = o ? cJSON_PrintUnformatted(o) : NULL;

    ob_http_reply(ex, status, "application/json", body ? body : "", body ? strlen(body) : 0, hdrs);
    free(body);
    cJSON_Delete(o);
}

static void reply_error(struct ob_http_exchange *ex, struct ds_call *c, int status, int code,
                        const char *message)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddNumberToObject(o, "code", code);
    c->status = status;
    c->code = code;
    reply_json(ex, status, o, NULL);
}

static void reply_429(struct ob_http_exchange *ex, struct ds_call *c, int64_t ms, bool global)
{
    cJSON *o = cJSON_CreateObject();
    char ra[48], scope[48];
    const char *hdrs[4] = {ra, scope, NULL, NULL};

    cJSON_AddStringToObject(o, "message", "You are being rate limited.");
    cJSON_AddNumberToObject(o, "retry_after", (double)ms / 1000.0);
    cJSON_AddBoolToObject(o, "global", global);
    snprintf(ra, sizeof(ra), "Retry-After: %lld", (long long)((ms + 999) / 1000));
    snprintf(scope, sizeof(scope), "X-RateLimit-Scope: %s", global ? "global" : "user");
    if (global)
        hdrs[2] = "X-RateLimit-Global: true";
    c->status = 429;
    reply_json(ex, 429, o, hdrs);
}

static void note_components(struct ds_call *c, const cJSON *comps)
{
    const cJSON *row;

    if (!comps)
        return;
    c->has_components = true;
    c->components_empty = cJSON_IsArray(comps) && cJSON_GetArraySize(comps) == 0;
    cJSON_ArrayForEach(row, (cJSON_IsArray(comps) ? comps : NULL))
    {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(row, "components"), *b;
        bool approve = false, deny = false;

        cJSON_ArrayForEach(b, list)
        {
            const char *id = pstr(b, "custom_id");
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type");

            if (!id || !cJSON_IsNumber(type) || type->valueint != 2)
                continue;
            approve |= !strcmp(id, "opsbot:approve");
            deny |= !strcmp(id, "opsbot:deny");
        }
        if (approve && deny)
            c->has_buttons = true;
    }
}

static void note_mentions(struct ds_call *c, const cJSON *body)
{
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(body, "allowed_mentions");
    const cJSON *parse = cJSON_GetObjectItemCaseSensitive(am, "parse");
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(am, "users");

    c->pings_suppressed = cJSON_IsArray(parse) && cJSON_GetArraySize(parse) == 0;
    if (cJSON_IsArray(users) && cJSON_GetArraySize(users) > 0 &&
        cJSON_IsString(cJSON_GetArrayItem(users, 0)))
        ob_strlcpy(c->allowed_user, cJSON_GetArrayItem(users, 0)->valuestring,
                   sizeof(c->allowed_user));
}

/* Path segments after /api/v10. */
static size_t split(char *path, char **seg, size_t max)
{
    size_t n = 0;

    for (char *p = strtok(path, "/"); p && n < max; p = strtok(NULL, "/"))
        seg[n++] = p;
    return n;
}

static void set_content(struct ds_call *c, const char *content)
{
    free(c->content);
    c->content = strdup(content ? content : "");
}

static void thread_started(struct discord_standin *s, const char *id, const char *parent,
                           const char *name)
{
    char entry[80];
    cJSON *d = cJSON_CreateObject();

    snprintf(entry, sizeof(entry), "%s %s", id, parent);
    list_add(&s->threads, &s->nthreads, entry);
    cJSON_AddStringToObject(d, "id", id);
    cJSON_AddNumberToObject(d, "type", 11);
    cJSON_AddStringToObject(d, "parent_id", parent);
    cJSON_AddStringToObject(d, "guild_id", "300000000000000001");
    cJSON_AddStringToObject(d, "name", name ? name : "thread");
    cJSON_AddStringToObject(d, "owner_id", s->bot);
    cJSON_AddBoolToObject(d, "newly_created", true);
    /* Discord tells the Gateway too (GUILDS intent). */
    dispatch_obj(s, "THREAD_CREATE", d);
}

static void rest(struct discord_standin *s, struct ob_http_exchange *ex,
                 const struct ob_http_srv_req *req, char **seg, size_t n)
{
    const char *auth = ob_http_srv_header(req, "Authorization");
    const char *ua = ob_http_srv_header(req, "User-Agent");
    const char *m = req->method;
    cJSON *body = req->body_len ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    char want[300], kind[20] = "", major[40] = "-", hash[32] = "";
    struct rl_hdrs h = {0};
    struct ds_call *c;
    struct fault *f;
    bool interaction = n >= 1 && (!strcmp(seg[0], "interactions") || !strcmp(seg[0], "webhooks"));
    int limit = 50;
    int64_t window = 1000, wait;

    if (n == 2 && !strcmp(seg[0], "gateway") && !strcmp(seg[1], "bot") && !strcmp(m, "GET"))
        ob_strlcpy(kind, DS_GATEWAY_BOT, sizeof(kind)), ob_strlcpy(hash, "b-gateway", sizeof(hash));
    else if (n == 3 && !strcmp(seg[0], "channels") && !strcmp(seg[2], "messages") &&
             !strcmp(m, "POST"))
        ob_strlcpy(kind, DS_CREATE_MESSAGE, sizeof(kind)), ob_strlcpy(hash, "b-msg", sizeof(hash)),
            limit = s->msg_limit, window = s->msg_window_ms;
    else if (n == 5 && !strcmp(seg[0], "channels") && !strcmp(seg[4], "threads") &&
             !strcmp(m, "POST"))
        ob_strlcpy(kind, DS_START_THREAD, sizeof(kind)), ob_strlcpy(hash, "b-thread", sizeof(hash)),
            limit = 10;
    else if (n == 4 && !strcmp(seg[0], "channels") && !strcmp(seg[2], "messages") &&
             !strcmp(m, "PATCH"))
        ob_strlcpy(kind, DS_EDIT_MESSAGE, sizeof(kind)), ob_strlcpy(hash, "b-edit", sizeof(hash)),
            limit = 5;
    else if (n == 7 && !strcmp(seg[0], "channels") && !strcmp(seg[4], "reactions") &&
             !strcmp(seg[6], "@me") && !strcmp(m, "PUT"))
        ob_strlcpy(kind, DS_ADD_REACTION, sizeof(kind)), ob_strlcpy(hash, "b-react", sizeof(hash)),
            limit = 1, window = 250;
    else if (n == 4 && !strcmp(seg[0], "interactions") && !strcmp(seg[3], "callback") &&
             !strcmp(m, "POST"))
        ob_strlcpy(kind, DS_CALLBACK, sizeof(kind)), ob_strlcpy(hash, "b-ix", sizeof(hash));
    else if (n == 5 && !strcmp(seg[0], "webhooks") && !strcmp(seg[4], "@original") &&
             !strcmp(m, "GET"))
        ob_strlcpy(kind, DS_ORIGINAL, sizeof(kind)), ob_strlcpy(hash, "b-wh", sizeof(hash));
    else if (n == 3 && !strcmp(seg[0], "applications") && !strcmp(seg[2], "commands") &&
             !strcmp(m, "PUT"))
        ob_strlcpy(kind, DS_COMMANDS, sizeof(kind)), ob_strlcpy(hash, "b-cmd", sizeof(hash));
    if (!kind[0]) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "message", "404: Not Found");
        cJSON_AddNumberToObject(o, "code", 0);
        reply_json(ex, 404, o, NULL);
        cJSON_Delete(body);
        return;
    }
    c = call_new(s, kind, m);
    if (n >= 2 && (!strcmp(seg[0], "channels") || interaction))
        ob_strlcpy(major, seg[1], sizeof(major));
    if (n >= 2 && !strcmp(seg[0], "channels"))
        ob_strlcpy(c->channel, seg[1], sizeof(c->channel));
    snprintf(want, sizeof(want), "Bot %s", s->token);
    c->auth_ok = interaction || (auth && !strcmp(auth, want));
    c->ua_ok = ua && !strncmp(ua, "DiscordBot (", 12);
    if (!c->auth_ok) {
        reply_error(ex, c, 401, 0, "401: Unauthorized");
        goto out;
    }
    f = fault_take(s, kind);
    if (f) {
        c->forced = true;
        reply_429(ex, c, f->retry_after_ms, f->global);
        goto out;
    }
    wait = bucket_use(s, hash, major, limit, window, &h);
    if (wait) {
        s->violations++;
        reply_429(ex, c, wait, false);
        goto out;
    }
    if (!strcmp(kind, DS_GATEWAY_BOT)) {
        cJSON *o = cJSON_CreateObject(), *lim;
        char url[64];

        snprintf(url, sizeof(url), "ws://127.0.0.1:%d/gateway", s->port);
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddNumberToObject(o, "shards", 1);
        lim = cJSON_AddObjectToObject(o, "session_start_limit");
        cJSON_AddNumberToObject(lim, "total", 1000);
        cJSON_AddNumberToObject(lim, "remaining", s->session_remaining);
        cJSON_AddNumberToObject(lim, "reset_after", (double)s->session_reset_ms);
        cJSON_AddNumberToObject(lim, "max_concurrency", 1);
        if (s->session_remaining == 0)
            s->session_remaining = 999; /* refilled after the wait */
        reply_json(ex, 200, o, h.list);
    } else if (!strcmp(kind, DS_CREATE_MESSAGE)) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(body, "message_reference");
        const char *content = pstr(body, "content");
        struct dmsg *msg;

        set_content(c, content);
        note_components(c, cJSON_GetObjectItemCaseSensitive(body, "components"));
        note_mentions(c, body);
        if (pstr(ref, "message_id"))
            ob_strlcpy(c->reply_to, pstr(ref, "message_id"), sizeof(c->reply_to));
        if (!content || strlen(content) > 2000) {
            reply_error(ex, c, 400, 50035, "Invalid Form Body");
            goto out;
        }
        msg = msg_add(s, c->channel, content, c->has_buttons);
        ob_strlcpy(c->message, msg->id, sizeof(c->message));
        reply_json(ex, 200, message_obj(s, msg), h.list);
    } else if (!strcmp(kind, DS_START_THREAD)) {
        const char *name = pstr(body, "name");
        cJSON *o;

        ob_strlcpy(c->message, seg[3], sizeof(c->message));
        if (is_dm(s, c->channel)) {
            reply_error(ex, c, 400, 50024, "Cannot execute action on this channel type");
            goto out;
        }
        if (thread_parent(s, seg[3])) {
            reply_error(ex, c, 400, 160004, "A thread has already been created for this message");
            goto out;
        }
        if (!name || !*name || strlen(name) > 100) {
            reply_error(ex, c, 400, 50035, "Invalid Form Body");
            goto out;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", seg[3]);
        cJSON_AddNumberToObject(o, "type", 11);
        cJSON_AddStringToObject(o, "parent_id", c->channel);
        cJSON_AddStringToObject(o, "name", name);
        c->status = 201;
        reply_json(ex, 201, o, h.list);
        thread_started(s, seg[3], c->channel, name);
    } else if (!strcmp(kind, DS_EDIT_MESSAGE)) {
        struct dmsg *msg = msg_find(s, seg[3]);
        const char *content = pstr(body, "content");

        ob_strlcpy(c->message, seg[3], sizeof(c->message));
        set_content(c, content);
        note_components(c, cJSON_GetObjectItemCaseSensitive(body, "components"));
        note_mentions(c, body);
        if (!msg || strcmp(msg->channel, c->channel)) {
            reply_error(ex, c, 404, 10008, "Unknown Message");
            goto out;
        }
        if (content) {
            free(msg->content);
            msg->content = strdup(content);
        }
        msg->components = c->has_buttons;
        reply_json(ex, 200, message_obj(s, msg), h.list);
    } else if (!strcmp(kind, DS_ADD_REACTION)) {
        ob_strlcpy(c->message, seg[3], sizeof(c->message));
        ob_strlcpy(c->emoji, seg[5], sizeof(c->emoji));
        c->status = 204;
        ob_http_reply(ex, 204, NULL, "", 0, h.list);
    } else if (!strcmp(kind, DS_CALLBACK)) {
        struct dix *x = ix_find(s, seg[1]);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "type");
        bool with = strstr(req->query, "with_response=true") != NULL;

        ob_strlcpy(c->interaction, seg[1], sizeof(c->interaction));
        c->cb_type = cJSON_IsNumber(type) ? type->valueint : -1;
        if (!x || strcmp(x->token, seg[2])) {
            reply_error(ex, c, 404, 10062, "Unknown interaction");
            goto out;
        }
        c->cb_latency_ms = ob_now_ms() - x->sent_ms;
        if (x->answered) {
            reply_error(ex, c, 400, 40060, "Interaction has already been acknowledged.");
            goto out;
        }
        if (c->cb_latency_ms > CALLBACK_DEADLINE_MS) {
            reply_error(ex, c, 404, 10062, "Unknown interaction");
            goto out;
        }
        x->answered = true;
        if (c->cb_type == 4) {
            const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
            struct dmsg *msg = msg_add(s, x->channel, pstr(data, "content"), false);

            set_content(c, pstr(data, "content"));
            note_mentions(c, data);
            ob_strlcpy(x->response, msg->id, sizeof(x->response));
            ob_strlcpy(c->message, msg->id, sizeof(c->message));
        }
        if (with) {
            cJSON *o = cJSON_CreateObject(), *ix = cJSON_AddObjectToObject(o, "interaction");

            cJSON_AddStringToObject(ix, "id", x->id);
            cJSON_AddNumberToObject(ix, "type", x->guild[0] || x->channel[0] ? 2 : 3);
            if (x->response[0]) {
                cJSON *res = cJSON_AddObjectToObject(o, "resource");

                cJSON_AddStringToObject(ix, "response_message_id", x->response);
                cJSON_AddNumberToObject(res, "type", c->cb_type);
                cJSON_AddItemToObject(res, "message", message_obj(s, msg_find(s, x->response)));
            }
            reply_json(ex, 200, o, h.list);
        } else {
            c->status = 204;
            ob_http_reply(ex, 204, NULL, "", 0, h.list);
        }
    } else if (!strcmp(kind, DS_ORIGINAL)) {
        struct dix *x = NULL;
        struct dmsg *msg;

        for (size_t i = 0; i < s->nixs && !x; i++)
            if (!strcmp(s->ixs[i].token, seg[2]))
                x = &s->ixs[i];
        if (!x) {
            reply_error(ex, c, 404, 10015, "Unknown Webhook");
            goto out;
        }
        if (!x->response[0]) {
            msg = msg_add(s, x->channel, "/ops", false);
            ob_strlcpy(x->response, msg->id, sizeof(x->response));
        }
        ob_strlcpy(c->interaction, x->id, sizeof(c->interaction));
        ob_strlcpy(c->message, x->response, sizeof(c->message));
        reply_json(ex, 200, message_obj(s, msg_find(s, x->response)), h.list);
    } else if (!strcmp(kind, DS_COMMANDS)) {
        set_content(c, req->body);
        if (!cJSON_IsArray(body)) {
            reply_error(ex, c, 400, 50035, "Invalid Form Body");
            goto out;
        }
        reply_json(ex, 200, cJSON_Duplicate(body, true), h.list);
    }
out:
    if (getenv("STANDIN_DEBUG"))
        fprintf(stderr, "STANDIN rest %s %s -> %d (%.80s)\n", m, req->path, c->status, c->content);
    cJSON_Delete(body);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct discord_standin *s = data;
    char *path = strdup(req->path), *seg[16];
    size_t n;

    if (strncmp(path, "/api/v10/", 9)) {
        ob_http_reply(ex, 404, "text/plain", "not found", 9, NULL);
        free(path);
        return;
    }
    n = split(path + 8, seg, 16);
    rest(s, ex, req, seg, n);
    free(path);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int discord_standin_new(struct discord_standin **out, uv_loop_t *loop,
                        const struct discord_standin_opts *opts)
{
    struct discord_standin *s = calloc(1, sizeof(*s));
    struct ob_http_server_opts so = {0};
    int rc;

    *out = NULL;
    if (sodium_init() < 0) {
        free(s);
        return -1;
    }
    s->loop = loop;
    ob_strlcpy(s->token, opts && opts->token ? opts->token : "standin.bot-token", sizeof(s->token));
    ob_strlcpy(s->bot, opts && opts->bot_user_id ? opts->bot_user_id : "500000000000000001",
               sizeof(s->bot));
    ob_strlcpy(s->app, opts && opts->application_id ? opts->application_id : "600000000000000001",
               sizeof(s->app));
    s->heartbeat_ms = opts && opts->heartbeat_ms ? opts->heartbeat_ms : 300;
    s->mc_off = opts && opts->message_content_off;
    s->session_remaining = opts && opts->session_remaining
                               ? (opts->session_remaining < 0 ? 0 : opts->session_remaining)
                               : 999;
    s->session_reset_ms = opts && opts->session_reset_ms ? opts->session_reset_ms : 86400000;
    s->msg_limit = opts && opts->message_limit ? opts->message_limit : 5;
    s->msg_window_ms = opts && opts->message_window_ms ? opts->message_window_ms : 1000;
    rc = ob_lws_new(&s->lws, loop);
    if (rc)
        goto fail;
    so.listen = "127.0.0.1:0";
    rc = ob_http_server_new(s->lws, &so, handler, s, &s->srv);
    if (rc)
        goto fail;
    s->paths[0].s = s->paths[1].s = s;
    s->paths[0].path = "/gateway";
    s->paths[1].path = "/resume";
    rc = ob_http_server_ws(s->srv, "/gateway", &ws_cbs, &s->paths[0]);
    if (!rc)
        rc = ob_http_server_ws(s->srv, "/resume", &ws_cbs, &s->paths[1]);
    if (rc)
        goto fail;
    s->port = ob_http_server_port(s->srv);
    snprintf(s->api_base, sizeof(s->api_base), "http://127.0.0.1:%d/api/v10", s->port);
    standin_waiter_init(&s->waiter, loop, s);
    s->handles++;
    *out = s;
    return 0;
fail:
    discord_standin_free(s);
    return rc ? rc : -1;
}

static void handle_closed(uv_handle_t *h)
{
    struct discord_standin *s = h->data;

    if (--s->handles == 0 && s->freeing)
        free(s);
}

void discord_standin_free(struct discord_standin *s)
{
    if (!s)
        return;
    s->freeing = true;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->conns[i]) {
            ob_ws_set_data(s->conns[i]->ws, NULL);
            free(s->conns[i]);
            s->conns[i] = NULL;
        }
    }
    if (s->srv)
        ob_http_server_free(s->srv);
    if (s->lws)
        ob_lws_free(s->lws);
    for (size_t i = 0; i < s->ncalls; i++)
        free(s->calls[i].content);
    free(s->calls);
    for (size_t i = 0; i < s->nmsgs; i++)
        free(s->msgs[i].content);
    free(s->msgs);
    free(s->ixs);
    for (size_t i = 0; i < s->nhistory; i++)
        free(s->history[i]);
    free(s->history);
    list_free(s->dm_channels, s->ndm);
    list_free(s->threads, s->nthreads);
    s->calls = NULL;
    s->msgs = NULL;
    s->ixs = NULL;
    s->history = NULL;
    s->dm_channels = s->threads = NULL;
    s->ncalls = s->nmsgs = s->nixs = s->nhistory = s->ndm = s->nthreads = 0;
    if (s->handles == 0) {
        free(s);
        return;
    }
    uv_close((uv_handle_t *)&s->waiter.timer, handle_closed);
}

const char *discord_standin_api_base(const struct discord_standin *s)
{
    return s->api_base;
}

const char *discord_standin_bot_id(const struct discord_standin *s)
{
    return s->bot;
}

/* ---- queries and knobs ----------------------------------------------------------------------- */

size_t discord_standin_connections(const struct discord_standin *s)
{
    return s->connections;
}

size_t discord_standin_live(const struct discord_standin *s)
{
    size_t n = 0;

    for (int i = 0; i < MAX_CONNS; i++)
        n += s->conns[i] && s->conns[i]->authed;
    return n;
}

size_t discord_standin_identifies(const struct discord_standin *s)
{
    return s->identifies;
}

size_t discord_standin_resumes(const struct discord_standin *s)
{
    return s->resumes;
}

size_t discord_standin_heartbeats(const struct discord_standin *s)
{
    return s->heartbeats;
}

const char *discord_standin_last_path(const struct discord_standin *s)
{
    return s->last_path;
}

const char *discord_standin_last_query(const struct discord_standin *s)
{
    return s->last_query;
}

uint32_t discord_standin_last_intents(const struct discord_standin *s)
{
    return s->last_intents;
}

int64_t discord_standin_last_resume_seq(const struct discord_standin *s)
{
    return s->last_resume_seq;
}

int discord_standin_client_close_code(const struct discord_standin *s)
{
    return s->client_close;
}

void discord_standin_stop_acks(struct discord_standin *s, bool stop)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i])
            s->conns[i]->silent = stop;
}

void discord_standin_fail_identify(struct discord_standin *s, int code)
{
    s->fail_identify = code;
}

void discord_standin_refuse_resume(struct discord_standin *s)
{
    s->refuse_resume = true;
}

void discord_standin_replay_overlap(struct discord_standin *s, int n)
{
    s->overlap = n;
}

size_t discord_standin_ncalls(const struct discord_standin *s)
{
    return s->ncalls;
}

const struct ds_call *discord_standin_call(const struct discord_standin *s, size_t i)
{
    return i < s->ncalls ? &s->calls[i] : NULL;
}

size_t discord_standin_count(const struct discord_standin *s, const char *kind)
{
    size_t n = 0;

    for (size_t i = 0; i < s->ncalls; i++)
        n += !kind || !strcmp(s->calls[i].kind, kind);
    return n;
}

long discord_standin_find_post(const struct discord_standin *s, const char *needle, size_t from)
{
    for (size_t i = from; i < s->ncalls; i++) {
        const struct ds_call *c = &s->calls[i];

        if (!strcmp(c->kind, DS_CREATE_MESSAGE) && c->status == 200 && strstr(c->content, needle))
            return (long)i;
    }
    return -1;
}

/* discord_standin_wait(), _wait_post(), _count_posts(), _wait_posts() */
STANDIN_DEFINE_WAITS(discord_standin)

void discord_standin_ratelimit(struct discord_standin *s, const char *kind, int n,
                               int64_t retry_after_ms, bool global)
{
    int slot = 0;

    for (int i = 0; i < MAX_FAULTS; i++) {
        if (!strcmp(s->faults[i].kind, kind) || s->faults[i].n <= 0) {
            slot = i;
            break;
        }
    }
    ob_strlcpy(s->faults[slot].kind, kind, sizeof(s->faults[slot].kind));
    s->faults[slot].n = n;
    s->faults[slot].retry_after_ms = retry_after_ms;
    s->faults[slot].global = global;
}

size_t discord_standin_violations(const struct discord_standin *s)
{
    return s->violations;
}

/* ---- Ed25519 ------------------------------------------------------------------------------ */

void discord_standin_keypair(unsigned char pk[32], unsigned char sk[64])
{
    if (sodium_init() < 0)
        return;
    crypto_sign_keypair(pk, sk);
}

void discord_standin_sign(const unsigned char sk[64], const char *ts, const char *body, size_t len,
                          char out[129])
{
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + len + 1), sig[64];

    memcpy(msg, ts, tl);
    memcpy(msg + tl, body, len);
    crypto_sign_detached(sig, NULL, msg, tl + len, sk);
    sodium_bin2hex(out, 129, sig, sizeof(sig));
    free(msg);
}
