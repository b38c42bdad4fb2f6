/* Pure parsing of what Slack sends: Socket Mode frames and the Events API /
 * interactivity / slash-command payloads inside them (the same payloads
 * arrive over HTTP in Events mode). No loop, no network, no logging: the
 * callers decide what to say. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/json.h"
#include "opsbot/err.h"
#include "opsbot/slack.h"
#include "opsbot/util.h"

#define FRAME_MAX (1024 * 1024)

int ob_slack_parse_envelope(const char *json, size_t len, struct ob_slack_envelope *out, char *err,
                            size_t errlen)
{
    const cJSON *t, *it;
    int rc;

    memset(out, 0, sizeof(*out));
    out->type = OB_SLACK_OTHER;
    if (errlen)
        err[0] = '\0';
    rc = ob_json_parse_object(json, len, FRAME_MAX, "frame", &out->root, err, errlen);
    if (rc)
        return rc;
    t = ob_json_member(out->root, "type");
    if (!cJSON_IsString(t)) {
        snprintf(err, errlen, "frame without a type");
        return OB_EPARSE;
    }
    if (!strcmp(t->valuestring, "hello")) {
        out->type = OB_SLACK_HELLO;
        it = ob_json_member(out->root, "num_connections");
        if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1e6)
            out->num_connections = (int)it->valuedouble;
        it = ob_json_member(ob_json_member(out->root, "debug_info"), "approximate_connection_time");
        if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1e9)
            out->approximate_connection_time = (int64_t)it->valuedouble;
        return 0;
    }
    if (!strcmp(t->valuestring, "disconnect")) {
        out->type = OB_SLACK_DISCONNECT;
        if (!ob_id_copy(out->reason, sizeof(out->reason), ob_json_str(out->root, "reason")))
            ob_strlcpy(out->reason, "unknown", sizeof(out->reason));
        return 0;
    }
    if (!strcmp(t->valuestring, "events_api"))
        out->type = OB_SLACK_EVENTS_API;
    else if (!strcmp(t->valuestring, "interactive"))
        out->type = OB_SLACK_INTERACTIVE;
    else if (!strcmp(t->valuestring, "slash_commands"))
        out->type = OB_SLACK_SLASH_COMMANDS;
    /* Anything else with an envelope id is acked and ignored. */
    if (!ob_id_copy(out->envelope_id, sizeof(out->envelope_id),
                    ob_json_str(out->root, "envelope_id"))) {
        out->envelope_id[0] = '\0';
        if (out->type == OB_SLACK_OTHER)
            return 0; /* e.g. a future informational frame */
        snprintf(err, errlen, "%s envelope without a usable envelope_id", t->valuestring);
        return OB_EPARSE;
    }
    it = ob_json_member(out->root, "retry_attempt");
    if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1000)
        out->retry_attempt = (int)it->valuedouble;
    if (out->type == OB_SLACK_OTHER)
        return 0;
    it = ob_json_member(out->root, "payload");
    if (!cJSON_IsObject(it)) {
        snprintf(err, errlen, "%s envelope without a payload object", t->valuestring);
        return OB_EPARSE; /* envelope_id is set: the caller still acks */
    }
    out->payload = it;
    return 0;
}

void ob_slack_envelope_release(struct ob_slack_envelope *e)
{
    if (!e)
        return;
    cJSON_Delete(e->root);
    e->root = NULL;
    e->payload = NULL;
}

/* ---- events ------------------------------------------------------------- */

static bool is_dm(const char *channel, const char *channel_type)
{
    if (channel_type)
        return !strcmp(channel_type, "im");
    return channel && channel[0] == 'D';
}

static bool channel_allowed(const struct ob_slack_self *self, const char *channel, bool dm)
{
    if (dm || !self->channels)
        return true;
    for (size_t i = 0; i < self->nchannels; i++)
        if (self->channels[i] && !strcmp(self->channels[i], channel))
            return true;
    return false;
}

/* Does text mention the bot (<@UBOT> or <@UBOT|name>)? */
static bool mentions(const char *text, const char *user_id)
{
    size_t ul = user_id ? strlen(user_id) : 0;

    if (!text || !ul)
        return false;
    for (const char *p = strstr(text, "<@"); p; p = strstr(p + 2, "<@"))
        if (!strncmp(p + 2, user_id, ul) && (p[2 + ul] == '>' || p[2 + ul] == '|'))
            return true;
    return false;
}

/* Copies text without the bot's mentions, with Slack's three HTML entities
 * decoded and surrounding blanks trimmed. */
static char *clean_text(const char *text, const char *user_id, size_t *out_len)
{
    size_t len = strlen(text), ul = user_id ? strlen(user_id) : 0, o = 0;
    char *out = malloc(len + 1);
    size_t start = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (ul && text[i] == '<' && text[i + 1] == '@' && !strncmp(text + i + 2, user_id, ul) &&
            (text[i + 2 + ul] == '>' || text[i + 2 + ul] == '|')) {
            const char *close = strchr(text + i, '>');

            if (close) {
                i = (size_t)(close - text) + 1;
                continue;
            }
        }
        if (text[i] == '&') {
            if (!strncmp(text + i, "&lt;", 4)) {
                out[o++] = '<';
                i += 4;
                continue;
            }
            if (!strncmp(text + i, "&gt;", 4)) {
                out[o++] = '>';
                i += 4;
                continue;
            }
            if (!strncmp(text + i, "&amp;", 5)) {
                out[o++] = '&';
                i += 5;
                continue;
            }
        }
        out[o++] = text[i++];
    }
    while (o &&
           (out[o - 1] == ' ' || out[o - 1] == '\t' || out[o - 1] == '\n' || out[o - 1] == '\r'))
        o--;
    while (start < o && (out[start] == ' ' || out[start] == '\t' || out[start] == '\n' ||
                         out[start] == '\r' || out[start] == ','))
        start++;
    memmove(out, out + start, o - start);
    o -= start;
    out[o] = '\0';
    *out_len = o;
    return out;
}

static int ignore(struct ob_slack_event *out, const char *why)
{
    ob_strlcpy(out->ignored, why, sizeof(out->ignored));
    return 0;
}

static int set_text(struct ob_slack_event *out, const char *text, const char *user_id)
{
    out->text = clean_text(text ? text : "", user_id, &out->text_len);
    return out->text ? 1 : OB_ENOMEM;
}

static int message_event(const struct ob_slack_self *self, const cJSON *p, const cJSON *ev,
                         bool mention_event, struct ob_slack_event *out)
{
    const char *subtype = ob_json_str(ev, "subtype"), *user = ob_json_str(ev, "user"),
               *text = ob_json_str(ev, "text");
    const char *channel = ob_json_str(ev, "channel"), *ts = ob_json_str(ev, "ts"),
               *thread = ob_json_str(ev, "thread_ts");
    const char *event_id = ob_json_str(p, "event_id");
    bool dm;

    if (subtype && strcmp(subtype, "thread_broadcast") && strcmp(subtype, "file_share"))
        return ignore(out, "message subtype that is not a person speaking");
    if (ob_json_member(ev, "bot_id") && !cJSON_IsNull(ob_json_member(ev, "bot_id")))
        return ignore(out, "a bot's message");
    if (!user)
        return ignore(out, "message without a user");
    if (self->user_id && !strcmp(user, self->user_id))
        return ignore(out, "our own message");
    if (!ob_id_copy(out->user, sizeof(out->user), user) ||
        !ob_id_copy(out->channel, sizeof(out->channel), channel) ||
        !ob_id_copy(out->message, sizeof(out->message), ts))
        return OB_EPARSE;
    if (thread && strcmp(thread, ts) && !ob_id_copy(out->thread, sizeof(out->thread), thread))
        return OB_EPARSE;
    out->thread_reply = out->thread[0] != '\0';
    dm = !mention_event && is_dm(channel, ob_json_str(ev, "channel_type"));
    out->dm = dm;
    if (!channel_allowed(self, channel, dm))
        return ignore(out, "channel not in platforms.slack.channels");
    if (mention_event) {
        out->addressed = true;
    } else if (dm) {
        out->addressed = true;
    } else if (mentions(text, self->user_id)) {
        /* The same post also arrives as app_mention: that one is used. */
        return ignore(out, "mention: handled through its app_mention event");
    } else {
        out->addressed = false;
    }
    if (!ob_id_copy(out->id, sizeof(out->id), event_id))
        snprintf(out->id, sizeof(out->id), "msg:%s:%s", out->channel, out->message);
    out->kind = OB_EV_MESSAGE;
    return set_text(out, text, self->user_id);
}

static int reaction_event(const struct ob_slack_self *self, const cJSON *p, const cJSON *ev,
                          bool add, struct ob_slack_event *out)
{
    const cJSON *item = ob_json_member(ev, "item");
    const char *user = ob_json_str(ev, "user"), *channel = ob_json_str(item, "channel");
    const char *item_type = ob_json_str(item, "type");

    if (!item_type || strcmp(item_type, "message"))
        return ignore(out, "reaction on something that is not a message");
    if (!user)
        return ignore(out, "reaction without a user");
    if (self->user_id && !strcmp(user, self->user_id))
        return ignore(out, "our own reaction");
    if (!ob_id_copy(out->user, sizeof(out->user), user) ||
        !ob_id_copy(out->channel, sizeof(out->channel), channel) ||
        !ob_id_copy(out->message, sizeof(out->message), ob_json_str(item, "ts")) ||
        !ob_id_copy(out->emoji, sizeof(out->emoji), ob_json_str(ev, "reaction")))
        return OB_EPARSE;
    out->dm = is_dm(channel, NULL);
    if (!channel_allowed(self, channel, out->dm))
        return ignore(out, "channel not in platforms.slack.channels");
    if (!ob_id_copy(out->id, sizeof(out->id), ob_json_str(p, "event_id")))
        snprintf(out->id, sizeof(out->id), "reaction:%s:%.30s:%.30s:%.30s:%.40s",
                 add ? "add" : "remove", out->channel, out->message, out->user, out->emoji);
    out->kind = add ? OB_EV_REACTION_ADD : OB_EV_REACTION_REMOVE;
    out->addressed = true;
    return 1;
}

static int events_api(const struct ob_slack_self *self, const cJSON *p, struct ob_slack_event *out)
{
    const cJSON *ev = ob_json_member(p, "event");
    const char *type = ob_json_str(p, "type"), *etype = ob_json_str(ev, "type");

    if (type && !strcmp(type, "url_verification"))
        return ignore(out, "url_verification");
    if (!cJSON_IsObject(ev) || !etype)
        return OB_EPARSE;
    if (!strcmp(etype, "message"))
        return message_event(self, p, ev, false, out);
    if (!strcmp(etype, "app_mention")) {
        /* Our own posts mentioning ourselves must not loop. */
        if (ob_json_member(ev, "bot_id") && !cJSON_IsNull(ob_json_member(ev, "bot_id")))
            return ignore(out, "a bot's mention");
        return message_event(self, p, ev, true, out);
    }
    if (!strcmp(etype, "reaction_added"))
        return reaction_event(self, p, ev, true, out);
    if (!strcmp(etype, "reaction_removed"))
        return reaction_event(self, p, ev, false, out);
    return ignore(out, "event type not used");
}

static int interactive(const struct ob_slack_self *self, const cJSON *p, struct ob_slack_event *out)
{
    const char *type = ob_json_str(p, "type");
    const cJSON *container = ob_json_member(p, "container"),
                *actions = ob_json_member(p, "actions"), *a;
    const char *channel, *ts, *value = NULL, *action_ts = NULL;

    if (!type || strcmp(type, "block_actions"))
        return ignore(out, "interaction type not used");
    cJSON_ArrayForEach(a, (cJSON_IsArray(actions) ? actions : NULL))
    {
        const char *v = ob_json_str(a, "value"), *aid = ob_json_str(a, "action_id");

        if (v && (!strcmp(v, "approve") || !strcmp(v, "deny")) && aid &&
            (!strcmp(aid, "approve") || !strcmp(aid, "deny"))) {
            value = v;
            action_ts = ob_json_str(a, "action_ts");
            break;
        }
    }
    if (!value)
        return ignore(out, "not one of our buttons");
    channel = ob_json_str(container, "channel_id");
    if (!channel)
        channel = ob_json_str(ob_json_member(p, "channel"), "id");
    ts = ob_json_str(container, "message_ts");
    if (!ts)
        ts = ob_json_str(ob_json_member(p, "message"), "ts");
    if (!ob_id_copy(out->user, sizeof(out->user), ob_json_str(ob_json_member(p, "user"), "id")) ||
        !ob_id_copy(out->channel, sizeof(out->channel), channel) ||
        !ob_id_copy(out->message, sizeof(out->message), ts))
        return OB_EPARSE;
    if (self->user_id && !strcmp(out->user, self->user_id))
        return ignore(out, "our own button press");
    {
        const char *thread = ob_json_str(ob_json_member(p, "message"), "thread_ts");

        if (thread && strcmp(thread, ts))
            ob_id_copy(out->thread, sizeof(out->thread), thread);
    }
    ob_strlcpy(out->emoji, value, sizeof(out->emoji));
    out->dm = is_dm(channel, NULL);
    if (!channel_allowed(self, channel, out->dm))
        return ignore(out, "channel not in platforms.slack.channels");
    if (ob_id_ok(action_ts, 40))
        snprintf(out->id, sizeof(out->id), "interactive:%s:%s", action_ts, out->user);
    else
        snprintf(out->id, sizeof(out->id), "interactive:%s:%s:%s", out->message, out->user, value);
    out->kind = OB_EV_BUTTON;
    out->addressed = true;
    return 1;
}

static int slash(const struct ob_slack_self *self, const cJSON *p, struct ob_slack_event *out)
{
    const char *text = ob_json_str(p, "text"), *trigger = ob_json_str(p, "trigger_id");
    const char *channel = ob_json_str(p, "channel_id");

    if (!ob_id_copy(out->user, sizeof(out->user), ob_json_str(p, "user_id")) ||
        !ob_id_copy(out->channel, sizeof(out->channel), channel))
        return OB_EPARSE;
    out->dm = is_dm(channel, NULL);
    if (!channel_allowed(self, channel, out->dm))
        return ignore(out, "channel not in platforms.slack.channels");
    if (ob_id_ok(trigger, 80))
        snprintf(out->id, sizeof(out->id), "slash:%s", trigger);
    out->kind = OB_EV_MESSAGE;
    out->addressed = true;
    /* A bare "/opsbot" asks for help. */
    if (!text || !*text)
        text = "help";
    return set_text(out, text, self->user_id);
}

int ob_slack_payload_event(const struct ob_slack_self *self, enum ob_slack_frame type,
                           const cJSON *payload, struct ob_slack_event *out)
{
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(payload))
        return OB_EPARSE;
    switch (type) {
    case OB_SLACK_EVENTS_API:
        return events_api(self, payload, out);
    case OB_SLACK_INTERACTIVE:
        return interactive(self, payload, out);
    case OB_SLACK_SLASH_COMMANDS:
        return slash(self, payload, out);
    default:
        return ignore(out, "not an event envelope");
    }
}

void ob_slack_event_release(struct ob_slack_event *ev)
{
    if (!ev)
        return;
    free(ev->text);
    ev->text = NULL;
}

void ob_slack_event_view(const struct ob_slack_event *e, struct ob_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = e->kind;
    ev->id = e->id[0] ? e->id : NULL;
    ev->platform = "slack";
    ev->user = e->user;
    ev->channel = e->channel;
    ev->thread = e->thread[0] ? e->thread : NULL;
    ev->message = e->message[0] ? e->message : NULL;
    ev->text = e->text;
    ev->text_len = e->text_len;
    ev->emoji = e->emoji[0] ? e->emoji : NULL;
    ev->addressed = e->addressed;
}
