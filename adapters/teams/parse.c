/* Pure parsing of Bot Framework activities (../shared/protocols.md C.1):
 * message, messageReaction, invoke adaptiveCard/action, conversationUpdate.
 * No loop, no network, no logging: the callers decide what to say. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/json.h"
#include "opsbot/err.h"
#include "opsbot/teams.h"
#include "opsbot/util.h"

#define TEXT_MAX (256 * 1024)

static int ignore(struct ob_teams_activity *out, const char *why)
{
    ob_strlcpy(out->ignored, why, sizeof(out->ignored));
    out->kind = OB_TEAMS_IGNORED;
    return 0;
}

/* ---- text ---------------------------------------------------------------------- */

static const struct {
    const char *ent;
    const char *rep;
} entities[] = {
    {"&lt;", "<"},  {"&gt;", ">"},   {"&amp;", "&"},  {"&quot;", "\""},
    {"&#39;", "'"}, {"&apos;", "'"}, {"&nbsp;", " "},
};

/* Copies text without the bot's mention (every "<at>…</at>" whose inner
 * text is one of the bot's mention texts), other <at> tags reduced to
 * their name, entities decoded, blanks trimmed. */
static char *clean_text(const char *text, const char *const *bot, size_t nbot, size_t *out_len)
{
    size_t len = strlen(text), o = 0, start = 0;
    char *out = malloc(len + 1);

    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (!strncmp(text + i, "<at>", 4)) {
            const char *close = strstr(text + i + 4, "</at>");

            if (close) {
                size_t inner = (size_t)(close - (text + i + 4));
                bool ours = false;

                for (size_t b = 0; b < nbot && !ours; b++)
                    ours =
                        bot[b] && strlen(bot[b]) == inner && !strncmp(bot[b], text + i + 4, inner);
                if (!ours) {
                    memcpy(out + o, text + i + 4, inner);
                    o += inner;
                }
                i = (size_t)(close - text) + 5;
                continue;
            }
        }
        if (text[i] == '&') {
            bool done = false;

            for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++) {
                size_t el = strlen(entities[e].ent);

                if (!strncmp(text + i, entities[e].ent, el)) {
                    out[o++] = entities[e].rep[0];
                    i += el;
                    done = true;
                    break;
                }
            }
            if (done)
                continue;
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

/* The bot's mention texts from entities ("<at>Name</at>" -> "Name"), plus
 * recipient.name. Returns whether the bot is mentioned at all. */
static bool bot_mentions(const cJSON *act, const char *bot_id, const char *bot_name,
                         const char **names, size_t *n, size_t cap)
{
    const cJSON *ents = ob_json_member(act, "entities"), *e;
    bool mentioned = false;

    *n = 0;
    cJSON_ArrayForEach(e, (cJSON_IsArray(ents) ? ents : NULL))
    {
        const char *type = ob_json_str(e, "type"),
                   *id = ob_json_str(ob_json_member(e, "mentioned"), "id");
        const char *t = ob_json_str(e, "text");

        if (!type || strcmp(type, "mention") || !id || strcmp(id, bot_id))
            continue;
        mentioned = true;
        if (t && !strncmp(t, "<at>", 4) && *n < cap)
            names[(*n)++] = t;
    }
    if (bot_name && *n < cap)
        names[(*n)++] = bot_name;
    return mentioned;
}

/* ---- kinds ----------------------------------------------------------------------- */

/* "approve" | "deny", or "pick:N" (N 1..15) for a choice card. */
static bool is_verb(const char *v)
{
    if (v && !strncmp(v, "pick:", 5))
        return v[5] >= '1' && v[5] <= '9' &&
               (!v[6] || (v[5] == '1' && v[6] >= '0' && v[6] <= '5' && !v[7]));
    return v && (!strcmp(v, "approve") || !strcmp(v, "deny"));
}

/* Our card's data: {"opsbot":"approval"|"pick","verb":…,"ref":…}. */
static bool card_data(const cJSON *data, struct ob_teams_activity *out)
{
    const char *tag = ob_json_str(data, "opsbot"), *verb = ob_json_str(data, "verb"),
               *ref = ob_json_str(data, "ref");

    if (!tag || (strcmp(tag, "approval") && strcmp(tag, "pick")) || !is_verb(verb) ||
        (!strcmp(tag, "pick") != !strncmp(verb, "pick:", 5)))
        return false;
    ob_strlcpy(out->verb, verb, sizeof(out->verb));
    if (ref)
        ob_id_copy(out->card_ref, sizeof(out->card_ref), ref);
    return true;
}

static int message(const cJSON *act, const char *bot_id, const char *bot_name,
                   struct ob_teams_activity *out)
{
    const cJSON *value = ob_json_member(act, "value");
    const char *text = ob_json_str(act, "text");
    const char *names[10];
    char inner[8][130];
    size_t n = 0;
    bool mentioned;

    if (cJSON_IsObject(value) && card_data(value, out)) {
        /* Action.Submit (the fallback of our Action.Execute buttons). */
        if (!out->reply_to[0] && !out->card_ref[0])
            return OB_EPARSE;
        out->kind = OB_TEAMS_MESSAGE;
        out->ev_kind = OB_EV_BUTTON;
        out->addressed = true;
        return 1;
    }
    if (!text)
        return ignore(out, "message without text");
    if (strlen(text) > TEXT_MAX)
        return OB_E2BIG;
    mentioned = bot_mentions(act, bot_id, bot_name, names, &n, 8);
    /* Entity texts are "<at>Name</at>": compare inner names. */
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];

        if (!strncmp(s, "<at>", 4)) {
            const char *c = strstr(s + 4, "</at>");
            size_t l = c ? (size_t)(c - s - 4) : 0;

            if (l >= sizeof(inner[0]))
                l = 0;
            memcpy(inner[i], s + 4, l);
            inner[i][l] = '\0';
        } else {
            ob_strlcpy(inner[i], s, sizeof(inner[i]));
        }
        names[i] = inner[i];
    }
    out->text = clean_text(text, names, n, &out->text_len);
    if (!out->text)
        return OB_ENOMEM;
    out->addressed = mentioned || !strcmp(out->conv_type, "personal");
    out->kind = OB_TEAMS_MESSAGE;
    out->ev_kind = OB_EV_MESSAGE;
    return 1;
}

static void reaction_list(const cJSON *list, bool added, struct ob_teams_activity *out)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, (cJSON_IsArray(list) ? list : NULL))
    {
        const char *type = ob_json_str(r, "type");
        struct ob_teams_reaction *x;

        if (!type || !*type || strlen(type) >= sizeof(x->emoji) ||
            out->nreactions == sizeof(out->reactions) / sizeof(out->reactions[0]))
            continue;
        x = &out->reactions[out->nreactions++];
        /* Teams' 👍 is "like": the core approves on "+1". */
        ob_strlcpy(x->emoji, !strcmp(type, "like") ? "+1" : type, sizeof(x->emoji));
        x->added = added;
    }
}

static int reaction(const cJSON *act, struct ob_teams_activity *out)
{
    reaction_list(ob_json_member(act, "reactionsAdded"), true, out);
    reaction_list(ob_json_member(act, "reactionsRemoved"), false, out);
    if (!out->reply_to[0])
        return OB_EPARSE;
    if (!out->nreactions)
        return ignore(out, "reaction activity without reactions");
    out->kind = OB_TEAMS_REACTION;
    out->addressed = true;
    return 1;
}

static int invoke(const cJSON *act, struct ob_teams_activity *out)
{
    const char *name = ob_json_str(act, "name");
    const cJSON *action = ob_json_member(ob_json_member(act, "value"), "action");
    const char *atype = ob_json_str(action, "type"), *verb = ob_json_str(action, "verb");
    const cJSON *data = ob_json_member(action, "data");

    out->kind = OB_TEAMS_INVOKE_OTHER;
    if (!name || strcmp(name, "adaptiveCard/action"))
        return 1;
    if (!atype || strcmp(atype, "Action.Execute") || !cJSON_IsObject(data) || !card_data(data, out))
        return 1;
    /* The verb of the action wins over the one in data. */
    if (is_verb(verb))
        ob_strlcpy(out->verb, verb, sizeof(out->verb));
    if (!out->reply_to[0] && !out->card_ref[0])
        return OB_EPARSE;
    out->kind = OB_TEAMS_INVOKE;
    out->ev_kind = OB_EV_BUTTON;
    out->addressed = true;
    return 1;
}

static int conversation_update(const cJSON *act, const char *bot_id, struct ob_teams_activity *out)
{
    const cJSON *added = ob_json_member(act, "membersAdded"), *m;

    cJSON_ArrayForEach(m, (cJSON_IsArray(added) ? added : NULL))
    {
        const char *id = ob_json_str(m, "id");

        if (id && !strcmp(id, bot_id)) {
            out->kind = OB_TEAMS_INSTALLED;
            return 1;
        }
    }
    return ignore(out, "conversation update that does not add the bot");
}

int ob_teams_activity_parse(const struct ob_teams_self *self, const cJSON *act,
                            struct ob_teams_activity *out)
{
    const char *type, *conv, *semi, *surl, *tenant, *bot_id, *bot_name, *user;
    const cJSON *from, *convo, *recipient;
    char self_id[OB_TEAMS_ID_MAX];

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(act))
        return OB_EPARSE;
    type = ob_json_str(act, "type");
    if (!type)
        return OB_EPARSE;
    if (strcmp(type, "message") && strcmp(type, "messageReaction") && strcmp(type, "invoke") &&
        strcmp(type, "conversationUpdate"))
        return ignore(out, "activity type not used");
    from = ob_json_member(act, "from");
    convo = ob_json_member(act, "conversation");
    recipient = ob_json_member(act, "recipient");
    conv = ob_json_str(convo, "id");
    surl = ob_json_str(act, "serviceUrl");
    if (!conv || !surl || !cJSON_IsObject(from))
        return OB_EPARSE;
    if (strncmp(surl, "https://", 8) && strncmp(surl, "http://", 7))
        return OB_EPARSE;
    if (strlen(surl) >= sizeof(out->service_url))
        return OB_E2BIG;
    ob_strlcpy(out->service_url, surl, sizeof(out->service_url));
    semi = strstr(conv, ";messageid=");
    {
        char base[OB_TEAMS_ID_MAX];
        size_t bl = semi ? (size_t)(semi - conv) : strlen(conv);

        if (bl >= sizeof(base))
            return OB_E2BIG;
        memcpy(base, conv, bl);
        base[bl] = '\0';
        if (!ob_id_copy(out->conversation, sizeof(out->conversation), base))
            return OB_EPARSE;
        if (semi && !ob_id_copy(out->root, sizeof(out->root), semi + strlen(";messageid=")))
            return OB_EPARSE;
    }
    if (ob_json_str(act, "id") && !ob_id_copy(out->id, sizeof(out->id), ob_json_str(act, "id")))
        return OB_EPARSE;
    if (ob_json_str(act, "channelId"))
        ob_id_copy(out->channel_id, sizeof(out->channel_id), ob_json_str(act, "channelId"));
    if (ob_json_str(convo, "conversationType"))
        ob_id_copy(out->conv_type, sizeof(out->conv_type), ob_json_str(convo, "conversationType"));
    tenant = ob_json_str(ob_json_member(ob_json_member(act, "channelData"), "tenant"), "id");
    if (!tenant)
        tenant = ob_json_str(convo, "tenantId");
    if (tenant)
        ob_id_copy(out->tenant, sizeof(out->tenant), tenant);
    if (ob_json_str(act, "replyToId") &&
        !ob_id_copy(out->reply_to, sizeof(out->reply_to), ob_json_str(act, "replyToId")))
        return OB_EPARSE;

    snprintf(self_id, sizeof(self_id), "28:%s", self && self->app_id ? self->app_id : "");
    bot_id = ob_json_str(recipient, "id");
    if (!bot_id)
        bot_id = self_id;
    bot_name = ob_json_str(recipient, "name");
    if (!strcmp(type, "conversationUpdate")) {
        if (!out->conv_type[0] && !strncmp(out->conversation, "a:", 2))
            ob_strlcpy(out->conv_type, "personal", sizeof(out->conv_type));
        return conversation_update(act, bot_id, out);
    }

    if (!ob_id_copy(out->from_id, sizeof(out->from_id), ob_json_str(from, "id")))
        return OB_EPARSE;
    if (!strcmp(out->from_id, bot_id) || !strcmp(out->from_id, self_id))
        return ignore(out, "our own activity");
    user = ob_json_str(from, "aadObjectId");
    if (!user || !ob_id_copy(out->user, sizeof(out->user), user))
        ob_strlcpy(out->user, out->from_id, sizeof(out->user));
    if (ob_json_str(from, "name") &&
        ob_utf8_valid(ob_json_str(from, "name"), strlen(ob_json_str(from, "name"))))
        ob_strlcpy(out->user_name, ob_json_str(from, "name"), sizeof(out->user_name));
    if (!out->id[0])
        return OB_EPARSE;
    if (!out->conv_type[0])
        ob_strlcpy(out->conv_type, !strncmp(out->conversation, "a:", 2) ? "personal" : "",
                   sizeof(out->conv_type));
    if (!strcmp(type, "message"))
        return message(act, bot_id, bot_name, out);
    if (!strcmp(type, "messageReaction"))
        return reaction(act, out);
    return invoke(act, out);
}

void ob_teams_activity_release(struct ob_teams_activity *a)
{
    if (!a)
        return;
    free(a->text);
    a->text = NULL;
}
