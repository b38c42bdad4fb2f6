/* Pure parsing of what Discord sends: gateway payloads and the dispatches
 * opsbot uses (messages, reactions, interactions; the same interaction
 * objects arrive over HTTP on the interactions endpoint). No loop, no
 * network, no logging: the callers decide what to say. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/json.h"
#include "opsbot/discord.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

#define FRAME_MAX (8 * 1024 * 1024)
#define TEXT_MAX (64 * 1024)
#define HEARTBEAT_MAX_MS (10 * 60 * 1000)

/* Snowflakes: 1..25 ASCII digits. */
static bool snowflake_ok(const char *s)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++)
        if (n >= 25 || !isdigit((unsigned char)s[n]))
            return false;
    return true;
}

static bool copy_id(char *dst, size_t len, const char *s)
{
    if (!snowflake_ok(s) || strlen(s) >= len)
        return false;
    ob_strlcpy(dst, s, len);
    return true;
}

/* Printable ASCII without quotes or backslashes (interaction tokens). */
static bool token_ok(const char *s, size_t cap)
{
    size_t n = 0;

    if (!s || !*s)
        return false;
    for (; s[n]; n++)
        if (n + 1 >= cap || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f ||
            s[n] == '"' || s[n] == '\\' || s[n] == '/' || s[n] == '?' || s[n] == '%')
            return false;
    return true;
}

/* ---- intents, permissions, invite URL -------------------------------------------- */

uint32_t ob_discord_intents(void)
{
    return OB_DISCORD_INTENT_GUILDS | OB_DISCORD_INTENT_GUILD_MESSAGES |
           OB_DISCORD_INTENT_GUILD_MESSAGE_REACTIONS | OB_DISCORD_INTENT_DIRECT_MESSAGES |
           OB_DISCORD_INTENT_DIRECT_MESSAGE_REACTIONS | OB_DISCORD_INTENT_MESSAGE_CONTENT;
}

uint64_t ob_discord_permissions(void)
{
    return OB_DISCORD_PERM_VIEW_CHANNEL | OB_DISCORD_PERM_SEND_MESSAGES |
           OB_DISCORD_PERM_SEND_MESSAGES_IN_THREADS | OB_DISCORD_PERM_CREATE_PUBLIC_THREADS |
           OB_DISCORD_PERM_READ_MESSAGE_HISTORY | OB_DISCORD_PERM_ADD_REACTIONS;
}

int ob_discord_invite_url(const char *application_id, char *buf, size_t len)
{
    int n;

    if (!snowflake_ok(application_id) || !buf)
        return OB_EINVAL;
    n = snprintf(buf, len,
                 "https://discord.com/oauth2/authorize?client_id=%s&permissions=%llu"
                 "&scope=bot%%20applications.commands",
                 application_id, (unsigned long long)ob_discord_permissions());
    return n < 0 || (size_t)n >= len ? OB_E2BIG : 0;
}

/* ---- payloads ------------------------------------------------------------------------- */

static bool int_ok(const cJSON *it, double max)
{
    return cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= max &&
           it->valuedouble == (double)(int64_t)it->valuedouble;
}

int ob_discord_parse_payload(const char *json, size_t len, struct ob_discord_payload *out,
                             char *err, size_t errlen)
{
    const cJSON *op, *s, *t;
    int rc;

    memset(out, 0, sizeof(*out));
    out->s = -1;
    out->op = -1;
    if (errlen)
        err[0] = '\0';
    rc = ob_json_parse_object(json, len, FRAME_MAX, "payload", &out->root, err, errlen);
    if (rc)
        return rc;
    op = ob_json_member(out->root, "op");
    if (!int_ok(op, 255)) {
        snprintf(err, errlen, "payload without a valid op");
        return OB_EPARSE;
    }
    out->op = (int)op->valuedouble;
    out->d = ob_json_member(out->root, "d");
    s = ob_json_member(out->root, "s");
    if (s && !cJSON_IsNull(s)) {
        if (!int_ok(s, 9007199254740991.0)) {
            snprintf(err, errlen, "op %d: s is not a sequence number", out->op);
            return OB_EPARSE;
        }
        out->s = (int64_t)s->valuedouble;
    }
    t = ob_json_member(out->root, "t");
    if (t && !cJSON_IsNull(t)) {
        const char *v = cJSON_IsString(t) ? t->valuestring : NULL;
        size_t n = v ? strlen(v) : 0;

        if (!v || n == 0 || n >= sizeof(out->t)) {
            snprintf(err, errlen, "op %d: t is not an event name", out->op);
            return OB_EPARSE;
        }
        for (size_t i = 0; i < n; i++) {
            if (!isupper((unsigned char)v[i]) && v[i] != '_' && !isdigit((unsigned char)v[i])) {
                snprintf(err, errlen, "op %d: t is not an event name", out->op);
                return OB_EPARSE;
            }
        }
        memcpy(out->t, v, n + 1);
    }
    switch (out->op) {
    case OB_DISCORD_OP_DISPATCH:
        if (!out->t[0] || out->s < 0) {
            snprintf(err, errlen, "dispatch without t or s");
            return OB_EPARSE;
        }
        break;
    case OB_DISCORD_OP_HELLO: {
        const cJSON *hb = ob_json_member(out->d, "heartbeat_interval");

        if (!int_ok(hb, HEARTBEAT_MAX_MS) || hb->valuedouble < 1) {
            snprintf(err, errlen, "hello without a usable heartbeat_interval");
            return OB_EPARSE;
        }
        out->heartbeat_interval = (int64_t)hb->valuedouble;
        break;
    }
    case OB_DISCORD_OP_INVALID_SESSION:
        out->resumable = cJSON_IsTrue(out->d);
        break;
    default:
        break;
    }
    return 0;
}

void ob_discord_payload_release(struct ob_discord_payload *p)
{
    if (!p)
        return;
    cJSON_Delete(p->root);
    p->root = NULL;
    p->d = NULL;
}

/* ---- events ----------------------------------------------------------------------------- */

static int ignore(struct ob_discord_event *out, const char *why)
{
    ob_strlcpy(out->ignored, why, sizeof(out->ignored));
    return 0;
}

static bool channel_allowed(const struct ob_discord_self *self, const char *channel, bool dm)
{
    if (dm || !self->channels)
        return true;
    for (size_t i = 0; i < self->nchannels; i++)
        if (self->channels[i] && !strcmp(self->channels[i], channel))
            return true;
    return false;
}

/* Where a message / reaction / interaction happened: a known thread gets
 * its parent as channel (messages) and itself as thread. */
static const char *parent_of(const struct ob_discord_self *self, const char *channel)
{
    const char *p = self->thread_parent ? self->thread_parent(self->data, channel) : NULL;

    return p && snowflake_ok(p) ? p : NULL;
}

static void copy_name(char *dst, size_t len, const cJSON *user, const cJSON *mem)
{
    const char *n = ob_json_str(mem, "nick");

    if (!n)
        n = ob_json_str(user, "global_name");
    if (!n)
        n = ob_json_str(user, "username");
    if (n && ob_utf8_valid(n, strlen(n)) && strlen(n) < len)
        ob_strlcpy(dst, n, len);
}

/* Removes every "<@ID>" / "<@!ID>" of the bot from text (in place) and
 * trims blanks; returns whether there was one. */
static bool strip_mentions(char *text, const char *bot)
{
    char a[OB_DISCORD_ID_MAX + 4], b[OB_DISCORD_ID_MAX + 5];
    bool found = false;
    size_t n;
    char *p;

    if (!bot)
        return false;
    snprintf(a, sizeof(a), "<@%s>", bot);
    snprintf(b, sizeof(b), "<@!%s>", bot);
    for (const char *pat = a; pat; pat = pat == a ? b : NULL) {
        size_t pl = strlen(pat);

        while ((p = strstr(text, pat))) {
            memmove(p, p + pl, strlen(p + pl) + 1);
            found = true;
        }
    }
    /* Collapse the blanks left behind at the start and the end. */
    p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    memmove(text, p, strlen(p) + 1);
    n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' ||
                 text[n - 1] == '\r'))
        text[--n] = '\0';
    return found;
}

static bool mentions_bot(const cJSON *mentions, const char *bot)
{
    const cJSON *m;

    if (!bot)
        return false;
    cJSON_ArrayForEach(m, (cJSON_IsArray(mentions) ? mentions : NULL))
    {
        const char *id = ob_json_str(m, "id");

        if (id && !strcmp(id, bot))
            return true;
    }
    return false;
}

static int message_event(const struct ob_discord_self *self, const cJSON *d,
                         struct ob_discord_event *out)
{
    const cJSON *author = ob_json_member(d, "author"), *type = ob_json_member(d, "type");
    const char *content = ob_json_str(d, "content"), *parent, *guild = ob_json_str(d, "guild_id");
    bool mentioned;
    size_t len;

    out->kind = OB_EV_MESSAGE;
    out->source = OB_DISCORD_SRC_MESSAGE;
    if (!copy_id(out->message, sizeof(out->message), ob_json_str(d, "id")) ||
        !copy_id(out->channel, sizeof(out->channel), ob_json_str(d, "channel_id")) ||
        !copy_id(out->user, sizeof(out->user), ob_json_str(author, "id")))
        return OB_EPARSE;
    if (guild && !copy_id(out->guild, sizeof(out->guild), guild))
        return OB_EPARSE;
    if (content && strlen(content) > TEXT_MAX)
        return OB_E2BIG;
    if (cJSON_IsTrue(ob_json_member(author, "bot")) ||
        cJSON_IsTrue(ob_json_member(author, "system")))
        return ignore(out, "a bot's message");
    if (self->user_id && !strcmp(out->user, self->user_id))
        return ignore(out, "own message");
    if (ob_json_str(d, "webhook_id"))
        return ignore(out, "a webhook's message");
    if (type && !(cJSON_IsNumber(type) && (type->valueint == 0 || type->valueint == 19)))
        return ignore(out, "a system message");
    out->dm = !guild;
    parent = out->dm ? NULL : parent_of(self, out->channel);
    if (parent) {
        ob_strlcpy(out->thread, out->channel, sizeof(out->thread));
        ob_strlcpy(out->channel, parent, sizeof(out->channel));
    }
    if (!channel_allowed(self, out->channel, out->dm))
        return ignore(out, "channel not in platforms.discord.channels");
    if (!content || !*content)
        return ignore(out, "no text (is the Message Content intent enabled?)");
    if (!ob_utf8_valid(content, strlen(content)))
        return OB_EUTF8;
    copy_name(out->user_name, sizeof(out->user_name), author, ob_json_member(d, "member"));
    out->text = ob_xstrdup(content);
    mentioned = strip_mentions(out->text, self->user_id) ||
                mentions_bot(ob_json_member(d, "mentions"), self->user_id);
    len = strlen(out->text);
    out->text_len = len;
    out->addressed = out->dm || mentioned;
    snprintf(out->id, sizeof(out->id), "%s", out->message);
    return 1;
}

static int reaction_event(const struct ob_discord_self *self, bool add, const cJSON *d,
                          struct ob_discord_event *out)
{
    const cJSON *emoji = ob_json_member(d, "emoji"), *mem = ob_json_member(d, "member");
    const char *name = ob_json_str(emoji, "name"), *guild = ob_json_str(d, "guild_id");

    out->kind = add ? OB_EV_REACTION_ADD : OB_EV_REACTION_REMOVE;
    out->source = OB_DISCORD_SRC_REACTION;
    if (!copy_id(out->user, sizeof(out->user), ob_json_str(d, "user_id")) ||
        !copy_id(out->channel, sizeof(out->channel), ob_json_str(d, "channel_id")) ||
        !copy_id(out->message, sizeof(out->message), ob_json_str(d, "message_id")))
        return OB_EPARSE;
    if (guild && !copy_id(out->guild, sizeof(out->guild), guild))
        return OB_EPARSE;
    if (!cJSON_IsObject(emoji))
        return OB_EPARSE;
    if (self->user_id && !strcmp(out->user, self->user_id))
        return ignore(out, "own reaction");
    if (cJSON_IsTrue(ob_json_member(ob_json_member(mem, "user"), "bot")))
        return ignore(out, "a bot's reaction");
    if (!name || !*name)
        return ignore(out, "reaction without an emoji name");
    if (strlen(name) >= sizeof(out->emoji) || !ob_utf8_valid(name, strlen(name)) ||
        strchr(name, ':'))
        return OB_EPARSE;
    ob_strlcpy(out->emoji, name, sizeof(out->emoji));
    out->dm = !guild;
    if (!out->dm && parent_of(self, out->channel))
        ob_strlcpy(out->thread, out->channel, sizeof(out->thread));
    if (!channel_allowed(self, out->thread[0] ? parent_of(self, out->channel) : out->channel,
                         out->dm))
        return ignore(out, "channel not in platforms.discord.channels");
    copy_name(out->user_name, sizeof(out->user_name), ob_json_member(mem, "user"), mem);
    snprintf(out->id, sizeof(out->id), "react%c:%s:%s:%s", add ? '+' : '-', out->message, out->user,
             out->emoji);
    return 1;
}

/* The text of /ops: the "request" option (or the first string option). */
static const char *command_text(const cJSON *data)
{
    const cJSON *opts = ob_json_member(data, "options"), *o;
    const char *first = NULL;

    cJSON_ArrayForEach(o, (cJSON_IsArray(opts) ? opts : NULL))
    {
        const char *v = ob_json_str(o, "value");

        if (!v)
            continue;
        if (!first)
            first = v;
        if (ob_json_str(o, "name") && !strcmp(ob_json_str(o, "name"), "request"))
            return v;
    }
    return first;
}

static int interaction_event(const struct ob_discord_self *self, const cJSON *d,
                             struct ob_discord_event *out)
{
    const cJSON *type = ob_json_member(d, "type"), *data = ob_json_member(d, "data"),
                *mem = ob_json_member(d, "member");
    const cJSON *user = mem ? ob_json_member(mem, "user") : ob_json_member(d, "user");
    const char *guild = ob_json_str(d, "guild_id"), *channel = ob_json_str(d, "channel_id");

    if (!cJSON_IsNumber(type))
        return OB_EPARSE;
    if (!copy_id(out->interaction_id, sizeof(out->interaction_id), ob_json_str(d, "id")) ||
        !token_ok(ob_json_str(d, "token"), sizeof(out->interaction_token)))
        return OB_EPARSE;
    ob_strlcpy(out->interaction_token, ob_json_str(d, "token"), sizeof(out->interaction_token));
    if (ob_json_str(d, "application_id") &&
        !copy_id(out->application_id, sizeof(out->application_id),
                 ob_json_str(d, "application_id")))
        return OB_EPARSE;
    snprintf(out->id, sizeof(out->id), "%s", out->interaction_id);
    if (type->valueint == 1) {
        out->source = OB_DISCORD_SRC_PING;
        return 1;
    }
    if (type->valueint != 2 && type->valueint != 3)
        return ignore(out, "an interaction type opsbot does not use");
    if (!copy_id(out->user, sizeof(out->user), ob_json_str(user, "id")) ||
        !copy_id(out->channel, sizeof(out->channel), channel))
        return OB_EPARSE;
    if (guild && !copy_id(out->guild, sizeof(out->guild), guild))
        return OB_EPARSE;
    if (!cJSON_IsObject(data))
        return OB_EPARSE;
    out->dm = !guild;
    copy_name(out->user_name, sizeof(out->user_name), user, mem);
    if (cJSON_IsTrue(ob_json_member(user, "bot")))
        return ignore(out, "a bot's interaction");
    if (type->valueint == 3) {
        const char *cid = ob_json_str(data, "custom_id");
        const char *mid = ob_json_str(ob_json_member(d, "message"), "id");

        out->kind = OB_EV_BUTTON;
        out->source = OB_DISCORD_SRC_COMPONENT;
        if (!cid || !copy_id(out->message, sizeof(out->message), mid))
            return OB_EPARSE;
        if (!strncmp(cid, "opsbot:", 7))
            cid += 7;
        if (strcmp(cid, "approve") && strcmp(cid, "deny"))
            return ignore(out, "a component that is not opsbot's");
        ob_strlcpy(out->emoji, cid, sizeof(out->emoji));
        if (!out->dm && parent_of(self, out->channel))
            ob_strlcpy(out->thread, out->channel, sizeof(out->thread));
        return 1;
    }
    {
        const char *name = ob_json_str(data, "name"), *text = command_text(data), *parent;

        out->kind = OB_EV_MESSAGE;
        out->source = OB_DISCORD_SRC_COMMAND;
        if (!name || strcmp(name, "ops"))
            return ignore(out, "a command that is not /ops");
        parent = out->dm ? NULL : parent_of(self, out->channel);
        if (parent) {
            ob_strlcpy(out->thread, out->channel, sizeof(out->thread));
            ob_strlcpy(out->channel, parent, sizeof(out->channel));
        }
        if (!channel_allowed(self, out->channel, out->dm))
            return ignore(out, "channel not in platforms.discord.channels");
        if (!text)
            text = "";
        if (strlen(text) > TEXT_MAX)
            return OB_E2BIG;
        if (!ob_utf8_valid(text, strlen(text)))
            return OB_EUTF8;
        out->text = ob_xstrdup(text);
        out->text_len = strlen(text);
        out->addressed = true;
        return 1;
    }
}

int ob_discord_dispatch_event(const struct ob_discord_self *self, const char *t, const cJSON *d,
                              struct ob_discord_event *out)
{
    memset(out, 0, sizeof(*out));
    if (!self || !t)
        return OB_EINVAL;
    if (!cJSON_IsObject(d))
        return OB_EPARSE;
    if (!strcmp(t, "MESSAGE_CREATE"))
        return message_event(self, d, out);
    if (!strcmp(t, "MESSAGE_REACTION_ADD"))
        return reaction_event(self, true, d, out);
    if (!strcmp(t, "MESSAGE_REACTION_REMOVE"))
        return reaction_event(self, false, d, out);
    if (!strcmp(t, "INTERACTION_CREATE"))
        return interaction_event(self, d, out);
    return ignore(out, "an event opsbot does not use");
}

void ob_discord_event_release(struct ob_discord_event *ev)
{
    if (!ev)
        return;
    free(ev->text);
    ev->text = NULL;
    memset(ev->interaction_token, 0, sizeof(ev->interaction_token));
}

void ob_discord_event_view(const struct ob_discord_event *e, struct ob_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = e->kind;
    ev->id = e->id;
    ev->platform = "discord";
    ev->user = e->user;
    ev->user_name = e->user_name[0] ? e->user_name : NULL;
    ev->channel = e->channel;
    ev->thread = e->thread[0] ? e->thread : NULL;
    ev->message = e->message[0] ? e->message : NULL;
    ev->text = e->text;
    ev->text_len = e->text_len;
    ev->emoji = e->emoji[0] ? e->emoji : NULL;
    ev->addressed = e->addressed;
}
