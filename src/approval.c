#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "opsbot/approval.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

static const char *const approve_emoji[] = {
    "white_check_mark",
    "heavy_check_mark",
    "+1",
    "thumbsup",
    "approve",
    "\xe2\x9c\x85",             /* ✅ */
    "\xe2\x9c\x94\xef\xb8\x8f", /* ✔️ */
    "\xe2\x9c\x94",             /* ✔ */
    "\xf0\x9f\x91\x8d",         /* 👍 */
    NULL,
};
static const char *const refuse_emoji[] = {
    "x",
    "-1",
    "thumbsdown",
    "no_entry",
    "no_entry_sign",
    "deny",
    "\xe2\x9d\x8c",     /* ❌ */
    "\xf0\x9f\x91\x8e", /* 👎 */
    "\xe2\x9b\x94",     /* ⛔ */
    "\xf0\x9f\x9a\xab", /* 🚫 */
    NULL,
};

static const char *const state_names[] = {"pending", "granted", "refused", "expired"};

const char *ob_approval_state_name(enum ob_approval_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "?";
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return true;
    return false;
}

int ob_approval_emoji(const char *emoji)
{
    const char *e = emoji;
    char buf[64];
    size_t n;

    if (!e)
        return 0;
    /* Accept ":name:" and skin-tone suffixes ("+1::skin-tone-3"). */
    if (*e == ':')
        e++;
    ob_strlcpy(buf, e, sizeof(buf));
    n = strcspn(buf, ":");
    buf[n] = '\0';
    if (in_list(approve_emoji, buf))
        return 1;
    if (in_list(refuse_emoji, buf))
        return -1;
    return 0;
}

/* The one place an approval changes state. */
static void set_state(struct ob_approval *ap, enum ob_approval_state s, const char *by)
{
    ob_debug("approval", "%s: %s -> %s%s%s", ap->id, ob_approval_state_name(ap->state),
             ob_approval_state_name(s), by ? " by " : "", by ? by : "");
    ap->state = s;
    if (by)
        ob_strlcpy(ap->decided_by, by, sizeof(ap->decided_by));
}

enum ob_vote ob_approval_vote(struct ob_approval *ap, const char *user, bool eligible,
                              const char *emoji, int64_t now_ms, char *why, size_t whylen)
{
    int v = ob_approval_emoji(emoji);

    why[0] = '\0';
    if (v == 0)
        return OB_VOTE_NONE;
    if (ap->state != OB_APPROVAL_PENDING) {
        snprintf(why, whylen, "this request is already %s", ob_approval_state_name(ap->state));
        return OB_VOTE_REJECTED;
    }
    if (now_ms >= ap->deadline_ms) {
        snprintf(why, whylen, "this approval request has expired");
        return OB_VOTE_REJECTED;
    }
    if (!strcmp(user, ap->requester)) {
        /* The requester may always withdraw their own request. */
        if (v < 0) {
            set_state(ap, OB_APPROVAL_REFUSED, user);
            return OB_VOTE_REFUSED;
        }
        if (!ap->allow_self) {
            snprintf(why, whylen,
                     "%s asked for this and may not approve it: self-approval is off (rule %s)",
                     user, ap->rule);
            return OB_VOTE_REJECTED;
        }
    }
    if (!eligible) {
        snprintf(why, whylen, "%s is not in the approver group '%s'", user, ap->group);
        return OB_VOTE_REJECTED;
    }
    if (v < 0) {
        set_state(ap, OB_APPROVAL_REFUSED, user);
        return OB_VOTE_REFUSED;
    }
    for (size_t i = 0; i < ap->nvotes; i++) {
        if (!strcmp(ap->votes[i], user)) {
            snprintf(why, whylen, "%s has already approved (%zu of %d)", user, ap->nvotes,
                     ap->needed);
            return OB_VOTE_REJECTED;
        }
    }
    if (ap->nvotes >= OB_APPROVAL_MAX_VOTES) {
        snprintf(why, whylen, "too many votes");
        return OB_VOTE_REJECTED;
    }
    ob_strlcpy(ap->votes[ap->nvotes++], user, sizeof(ap->votes[0]));
    if ((int)ap->nvotes >= ap->needed) {
        set_state(ap, OB_APPROVAL_GRANTED, user);
        return OB_VOTE_GRANTED;
    }
    return OB_VOTE_COUNTED;
}

enum ob_vote ob_approval_unvote(struct ob_approval *ap, const char *user, const char *emoji)
{
    if (ap->state != OB_APPROVAL_PENDING || ob_approval_emoji(emoji) <= 0)
        return OB_VOTE_NONE;
    for (size_t i = 0; i < ap->nvotes; i++) {
        if (!strcmp(ap->votes[i], user)) {
            memmove(ap->votes[i], ap->votes[i + 1], (ap->nvotes - i - 1) * sizeof(ap->votes[0]));
            ap->nvotes--;
            return OB_VOTE_WITHDRAWN;
        }
    }
    return OB_VOTE_NONE;
}

bool ob_approval_expire(struct ob_approval *ap, int64_t now_ms)
{
    if (ap->state != OB_APPROVAL_PENDING || now_ms < ap->deadline_ms)
        return false;
    set_state(ap, OB_APPROVAL_EXPIRED, NULL);
    return true;
}

bool ob_approval_has_msg(const struct ob_approval *ap, const char *channel, const char *message)
{
    if (!message || !*message)
        return false;
    for (size_t i = 0; i < ap->nmsgs; i++) {
        if (!strcmp(ap->msgs[i].message, message) &&
            (!channel || !*channel || !strcmp(ap->msgs[i].channel, channel)))
            return true;
    }
    return false;
}

/* ---- serialisation ---------------------------------------------------- */

static void add_ref(cJSON *o, const char *key, const struct ob_msgref *r)
{
    cJSON *m = cJSON_AddObjectToObject(o, key);

    cJSON_AddStringToObject(m, "channel", r->channel);
    cJSON_AddStringToObject(m, "thread", r->thread);
    cJSON_AddStringToObject(m, "message", r->message);
}

char *ob_approval_to_json(const struct ob_approval *ap)
{
    cJSON *o = cJSON_CreateObject(), *a;
    char *s;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", ap->id);
    cJSON_AddStringToObject(o, "request_id", ap->request_id);
    cJSON_AddStringToObject(o, "requester", ap->requester);
    cJSON_AddStringToObject(o, "platform", ap->platform);
    add_ref(o, "origin", &ap->origin);
    a = cJSON_AddArrayToObject(o, "msgs");
    for (size_t i = 0; i < ap->nmsgs; i++) {
        cJSON *m = cJSON_CreateObject();

        cJSON_AddStringToObject(m, "channel", ap->msgs[i].channel);
        cJSON_AddStringToObject(m, "thread", ap->msgs[i].thread);
        cJSON_AddStringToObject(m, "message", ap->msgs[i].message);
        cJSON_AddItemToArray(a, m);
    }
    cJSON_AddStringToObject(o, "action", ap->action);
    a = cJSON_AddObjectToObject(o, "params");
    for (size_t i = 0; i < ap->nparams; i++)
        cJSON_AddStringToObject(a, ap->params[i].name, ap->params[i].value);
    cJSON_AddStringToObject(o, "group", ap->group);
    cJSON_AddNumberToObject(o, "needed", ap->needed);
    cJSON_AddBoolToObject(o, "allow_self", ap->allow_self);
    cJSON_AddStringToObject(o, "rule", ap->rule);
    cJSON_AddNumberToObject(o, "created_ms", (double)ap->created_ms);
    cJSON_AddNumberToObject(o, "deadline_ms", (double)ap->deadline_ms);
    a = cJSON_AddArrayToObject(o, "votes");
    for (size_t i = 0; i < ap->nvotes; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(ap->votes[i]));
    cJSON_AddStringToObject(o, "state", ob_approval_state_name(ap->state));
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int get_str(const cJSON *o, const char *key, char *dst, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsString(v) || strlen(v->valuestring) >= len)
        return OB_EJSON;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int get_ref(const cJSON *o, struct ob_msgref *r)
{
    if (!cJSON_IsObject(o))
        return OB_EJSON;
    if (get_str(o, "channel", r->channel, sizeof(r->channel)) ||
        get_str(o, "thread", r->thread, sizeof(r->thread)) ||
        get_str(o, "message", r->message, sizeof(r->message)))
        return OB_EJSON;
    return 0;
}

static int get_num(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    /* A damaged row may hold anything: inf, 1e308 or NaN would overflow the
     * conversion (undefined behaviour), so the range is checked first. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9.0e15 && v->valuedouble <= 9.0e15))
        return OB_EJSON;
    *out = (int64_t)v->valuedouble;
    return 0;
}

int ob_approval_from_json(struct ob_approval *ap, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    const cJSON *a, *it;
    int64_t needed;
    int rc = OB_EJSON;

    memset(ap, 0, sizeof(*ap));
    if (!o)
        return OB_EJSON;
    if (get_str(o, "id", ap->id, sizeof(ap->id)) ||
        get_str(o, "request_id", ap->request_id, sizeof(ap->request_id)) ||
        get_str(o, "requester", ap->requester, sizeof(ap->requester)) ||
        get_str(o, "platform", ap->platform, sizeof(ap->platform)) ||
        get_ref(cJSON_GetObjectItemCaseSensitive(o, "origin"), &ap->origin) ||
        get_str(o, "action", ap->action, sizeof(ap->action)) ||
        get_str(o, "group", ap->group, sizeof(ap->group)) ||
        get_str(o, "rule", ap->rule, sizeof(ap->rule)) || get_num(o, "needed", &needed) ||
        get_num(o, "created_ms", &ap->created_ms) || get_num(o, "deadline_ms", &ap->deadline_ms))
        goto out;
    if (needed < 1 || needed > OB_APPROVAL_MAX_VOTES)
        goto out;
    ap->needed = (int)needed;
    ap->allow_self = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "allow_self"));
    a = cJSON_GetObjectItemCaseSensitive(o, "msgs");
    if (!cJSON_IsArray(a))
        goto out;
    cJSON_ArrayForEach(it, a)
    {
        if (ap->nmsgs >= OB_APPROVAL_MAX_MSGS || get_ref(it, &ap->msgs[ap->nmsgs]))
            goto out;
        ap->nmsgs++;
    }
    a = cJSON_GetObjectItemCaseSensitive(o, "params");
    if (!cJSON_IsObject(a))
        goto out;
    cJSON_ArrayForEach(it, a)
    {
        struct ob_kv *kv;

        if (ap->nparams >= OB_MAX_PARAMS || !cJSON_IsString(it) ||
            strlen(it->string) >= sizeof(kv->name) || strlen(it->valuestring) >= sizeof(kv->value))
            goto out;
        kv = &ap->params[ap->nparams++];
        ob_strlcpy(kv->name, it->string, sizeof(kv->name));
        ob_strlcpy(kv->value, it->valuestring, sizeof(kv->value));
    }
    a = cJSON_GetObjectItemCaseSensitive(o, "votes");
    if (!cJSON_IsArray(a))
        goto out;
    cJSON_ArrayForEach(it, a)
    {
        if (ap->nvotes >= OB_APPROVAL_MAX_VOTES || !cJSON_IsString(it) ||
            strlen(it->valuestring) >= sizeof(ap->votes[0]))
            goto out;
        ob_strlcpy(ap->votes[ap->nvotes++], it->valuestring, sizeof(ap->votes[0]));
    }
    ap->state = OB_APPROVAL_PENDING;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}
