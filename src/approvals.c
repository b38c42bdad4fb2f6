/* The approval flow of the pipeline: posting approval requests, counting
 * votes, expiry, restoring pending approvals after a restart, and running
 * what was granted. The state machine itself is in approval.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

/* ---- approvals ---------------------------------------------------------- */

static void persist_approval(struct ob_bot *bot, const struct ob_approval *ap)
{
    struct ob_stored_approval sa;
    char *json = ob_approval_to_json(ap);

    if (!json)
        return;
    sa.id = (char *)ap->id;
    sa.request_id = (char *)ap->request_id;
    sa.json = json;
    sa.deadline_ms = ap->deadline_ms;
    if (ob_store_approval_save(bot->store, &sa))
        ob_error("approval", "cannot persist approval %s", ap->id);
    free(json);
}

static void approval_posted(void *data, int status, const struct ob_msgref *ref)
{
    struct pending *pa = data;

    if (status || !ref)
        return;
    if (pa->ap.nmsgs < OB_APPROVAL_MAX_MSGS)
        pa->ap.msgs[pa->ap.nmsgs++] = *ref;
    else
        pa->ap.msgs[OB_APPROVAL_MAX_MSGS - 1] = *ref;
}

static void format_params(const struct ob_approval *ap, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%s", ap->action);

    for (size_t i = 0; i < ap->nparams && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, " %s=%s", ap->params[i].name,
                                ap->params[i].value);
}

static void post_approval_request(struct ob_bot *bot, struct pending *pa, const char *cmd,
                                  const char *prefix)
{
    struct ob_approval *ap = &pa->ap;
    char what[512], members[512], when[40], left[32], *text = NULL;
    int64_t now = ob_now_ms();

    format_params(ap, what, sizeof(what));
    ob_policy_group_members(bot->bundle->pol, ap->group, members, sizeof(members));
    ob_time_format(ap->deadline_ms, when, sizeof(when));
    when[16] = '\0';
    when[10] = ' ';
    ob_duration_format(ap->deadline_ms > now ? ap->deadline_ms - now : 0, left, sizeof(left));
    if (asprintf(&text,
                 "%sAPPROVAL NEEDED (%s): %s\n"
                 "asked by %s · rule %s\n"
                 "will run: %s\n"
                 "approvers: %d of group %s (%s)%s\n"
                 "react ✅ (white_check_mark) to approve or ❌ (x) to refuse · expires %s UTC "
                 "(in %s)",
                 prefix, ap->id, what, ap->requester, ap->rule, cmd, ap->needed, ap->group, members,
                 ap->allow_self ? "" : "; the requester may not approve", when, left) < 0)
        return;
    ob__post_raw(bot, pa->ad, ap->origin.channel, ap->origin.thread, OB_POST_APPROVAL, NULL, text,
                 approval_posted, pa);
    free(text);
}

void ob__request_approval(struct ob_request *req, const struct ob_decision *dec)
{
    struct ob_bot *bot = req->bot;
    struct pending *pa = ob_xcalloc(1, sizeof(*pa));
    struct ob_approval *ap = &pa->ap;
    char cmd[1024] = "built-in";
    cJSON *d;

    pa->ad = req->ad;
    ob_random_id("a-", ap->id, sizeof(ap->id));
    ob_strlcpy(ap->request_id, req->id, sizeof(ap->request_id));
    ob_strlcpy(ap->requester, req->user, sizeof(ap->requester));
    ob_strlcpy(ap->platform, req->platform, sizeof(ap->platform));
    ob_strlcpy(ap->origin.channel, req->channel, sizeof(ap->origin.channel));
    ob_strlcpy(ap->origin.thread, req->thread, sizeof(ap->origin.thread));
    ob_strlcpy(ap->action, req->prop.action->name, sizeof(ap->action));
    for (size_t i = 0; i < req->prop.nparams; i++)
        ap->params[i] = req->prop.params[i];
    ap->nparams = req->prop.nparams;
    ob_strlcpy(ap->group, dec->approvers, sizeof(ap->group));
    ap->needed = dec->count < 1 ? 1 : dec->count;
    ap->allow_self = dec->allow_self;
    ob_strlcpy(ap->rule, dec->rule, sizeof(ap->rule));
    ap->created_ms = ob_now_ms();
    ap->deadline_ms = ap->created_ms + (dec->ttl_ms > 0 ? dec->ttl_ms : 3600000);
    ap->state = OB_APPROVAL_PENDING;
    if (req->prop.action->executor &&
        ob_exec_describe(req->bundle->cfg, &req->prop, cmd, sizeof(cmd)))
        ob_strlcpy(cmd, "(cannot be rendered: it will fail)", sizeof(cmd));
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "approval", ap->id);
    cJSON_AddStringToObject(d, "approvers", ap->group);
    cJSON_AddNumberToObject(d, "count", ap->needed);
    cJSON_AddBoolToObject(d, "allow_self", ap->allow_self);
    cJSON_AddNumberToObject(d, "deadline_ms", (double)ap->deadline_ms);
    cJSON_AddStringToObject(d, "command", cmd);
    ob__req_audit(req, "approval_requested", "opsbot", d);
    pa->next = bot->approvals;
    bot->approvals = pa;
    {
        char prefix[48];

        snprintf(prefix, sizeof(prefix), "[#%lld] ", (long long)req->last_audit_id);
        post_approval_request(bot, pa, cmd, prefix);
    }
    persist_approval(bot, ap);
    ob__arm_expiry(bot);
    ob__request_free(req); /* the approval carries everything from here on */
}

/* Rebuilds a runnable request from a granted approval; parameters are
 * validated again against the current catalog. */
static void run_approved(struct ob_bot *bot, struct pending *pa)
{
    struct ob_approval *ap = &pa->ap;
    struct ob_event ev = {0};
    struct ob_request *req;
    const struct ob_action *a = ob_catalog_find(bot->bundle->cat, ap->action);
    char why[256];

    ev.platform = ap->platform;
    ev.user = strchr(ap->requester, ':') ? strchr(ap->requester, ':') + 1 : ap->requester;
    ev.channel = ap->origin.channel;
    req = ob__request_new(bot, pa->ad, &ev, ap->origin.thread);
    ob_strlcpy(req->id, ap->request_id, sizeof(req->id));
    ob_strlcpy(req->user, ap->requester, sizeof(req->user));
    if (!a) {
        int64_t id = ob__req_audit(req, "failed", "opsbot", NULL);

        ob__say_final(req, "[#%lld] not run: action '%s' is no longer in the catalog",
                      (long long)id, ap->action);
        ob__request_end(req);
        return;
    }
    req->prop.action = a;
    req->prop.source = "approval";
    req->prop.confidence = 1.0;
    for (size_t i = 0; i < ap->nparams; i++) {
        const struct ob_param_def *p = ob_action_param(a, ap->params[i].name);
        struct ob_kv *kv = &req->prop.params[req->prop.nparams];

        if (!p || ob_param_validate(p, ap->params[i].value, kv->value, sizeof(kv->value), why,
                                    sizeof(why))) {
            int64_t id = ob__req_audit(req, "failed", "opsbot", NULL);

            ob__say_final(req, "[#%lld] not run: parameter %s no longer valid (%s)", (long long)id,
                          ap->params[i].name, p ? why : "unknown parameter");
            ob__request_end(req);
            return;
        }
        ob_strlcpy(kv->name, ap->params[i].name, sizeof(kv->name));
        req->prop.nparams++;
    }
    ob__start_action(req);
}

static void resolve_message(struct ob_bot *bot, struct pending *pa, const char *outcome)
{
    struct ob_approval *ap = &pa->ap;
    char what[512], *text = NULL;

    format_params(ap, what, sizeof(what));
    if (asprintf(&text, "%s (%s): %s", outcome, ap->id, what) < 0)
        return;
    for (size_t i = 0; i < ap->nmsgs; i++) {
        struct ob_post p = {0};
        char *clean = ob_redact_apply(bot->bundle->red, text, strlen(text));

        if (!clean)
            break;
        p.channel = ap->msgs[i].channel;
        p.thread = ap->msgs[i].thread;
        p.text = clean;
        p.flags = OB_POST_APPROVAL | OB_POST_RESOLVED;
        if (pa->ad)
            ob_adapter_update(pa->ad, &ap->msgs[i], &p);
        free(clean);
    }
    free(text);
}

/* Audits, echoes and cleans up an approval that reached an end state. */
static void approval_closed(struct ob_bot *bot, struct pending *pa)
{
    struct ob_approval *ap = &pa->ap;
    cJSON *d = cJSON_CreateObject();
    const char *step, *actor = ap->decided_by[0] ? ap->decided_by : "opsbot";
    char outcome[300], h[20];
    int64_t id;

    cJSON_AddStringToObject(d, "approval", ap->id);
    if (ap->decided_by[0])
        cJSON_AddStringToObject(d, "by", ap->decided_by);
    if (ap->state == OB_APPROVAL_GRANTED) {
        cJSON *v = cJSON_AddArrayToObject(d, "approvers");

        for (size_t i = 0; i < ap->nvotes; i++)
            cJSON_AddItemToArray(v, cJSON_CreateString(ap->votes[i]));
        step = "approval_granted";
        snprintf(outcome, sizeof(outcome), "APPROVED by %s", ap->decided_by);
    } else if (ap->state == OB_APPROVAL_REFUSED) {
        step = "approval_refused";
        snprintf(outcome, sizeof(outcome), "%s by %s — not run",
                 !strcmp(ap->decided_by, ap->requester) ? "WITHDRAWN" : "REFUSED", ap->decided_by);
    } else {
        step = "approval_expired";
        snprintf(outcome, sizeof(outcome), "EXPIRED — not run");
    }
    ob_store_approval_delete(bot->store, ap->id);
    {
        char *actors;
        /* Record into the request's trail; the request id continues. */
        struct ob_request tmp = {0};

        tmp.bot = bot;
        ob_strlcpy(tmp.id, ap->request_id, sizeof(tmp.id));
        id = ob__audit(bot, &tmp, ap->request_id, step, actor, ap->platform, ap->origin.channel,
                       ap->action, d);
        resolve_message(bot, pa, outcome);
        if (ap->state == OB_APPROVAL_GRANTED) {
            if (asprintf(&actors, "[#%lld] approved by %s (%zu of %d)", (long long)id,
                         ap->decided_by, ap->nvotes, ap->needed) >= 0) {
                ob__post_raw(bot, pa->ad, ap->origin.channel, ap->origin.thread, 0, NULL, actors,
                             NULL, NULL);
                free(actors);
            }
        } else if (asprintf(&actors, "[#%lld] %s\naudit #%lld · chain %s", (long long)id, outcome,
                            (long long)id, ob__short_hash(tmp.last_hash, h, sizeof(h))) >= 0) {
            ob__post_raw(bot, pa->ad, ap->origin.channel, ap->origin.thread, 0, NULL, actors, NULL,
                         NULL);
            free(actors);
        }
    }
    if (ap->state == OB_APPROVAL_GRANTED && !bot->stopping)
        run_approved(bot, pa);
    ob__arm_expiry(bot);
    ob__maybe_idle(bot);
}

static void prune_approvals(struct ob_bot *bot)
{
    size_t n = 0;

    for (struct pending **pp = &bot->approvals; *pp;) {
        struct pending *pa = *pp;

        if (pa->ap.state != OB_APPROVAL_PENDING && ++n > RECENT_APPROVALS) {
            *pp = pa->next;
            free(pa);
            continue;
        }
        pp = &pa->next;
    }
}

static void expiry_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;
    int64_t now = ob_now_ms();

    for (struct pending *pa = bot->approvals; pa; pa = pa->next)
        if (ob_approval_expire(&pa->ap, now))
            approval_closed(bot, pa);
    prune_approvals(bot);
    ob__arm_expiry(bot);
}

void ob__arm_expiry(struct ob_bot *bot)
{
    int64_t next = 0, now = ob_now_ms();

    if (bot->closed)
        return;
    for (struct pending *pa = bot->approvals; pa; pa = pa->next)
        if (pa->ap.state == OB_APPROVAL_PENDING && (!next || pa->ap.deadline_ms < next))
            next = pa->ap.deadline_ms;
    if (!next) {
        uv_timer_stop(&bot->expiry_timer);
        return;
    }
    uv_timer_start(&bot->expiry_timer, expiry_cb, next > now ? (uint64_t)(next - now) : 0, 0);
}

void ob__on_vote(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev)
{
    char user[160], why[300];
    struct pending *pa;
    enum ob_vote v;
    bool eligible;

    ob__qualify(user, sizeof(user), ev->platform, ev->user);
    for (pa = bot->approvals; pa; pa = pa->next)
        if (!strcmp(pa->ap.platform, ev->platform) &&
            ob_approval_has_msg(&pa->ap, ev->channel, ev->message))
            break;
    if (!pa) {
        /* Reactions elsewhere are everyday chat, except a vote on another
         * message of a thread whose approval is open: say where to vote. */
        if (ev->kind != OB_EV_REACTION_REMOVE && ob_approval_emoji(ev->emoji) && ev->thread) {
            for (pa = bot->approvals; pa; pa = pa->next) {
                if (pa->ap.state == OB_APPROVAL_PENDING && pa->ap.nmsgs &&
                    !strcmp(pa->ap.platform, ev->platform) &&
                    !strcmp(pa->ap.origin.thread, ev->thread)) {
                    char *text;

                    if (asprintf(&text,
                                 "vote not counted: %s reacted on another message; react on the "
                                 "approval request (%s) itself",
                                 user, pa->ap.msgs[pa->ap.nmsgs - 1].message) >= 0) {
                        ob__post_raw(bot, ad, pa->ap.origin.channel, pa->ap.origin.thread, 0, NULL,
                                     text, NULL, NULL);
                        free(text);
                    }
                    break;
                }
            }
        }
        return;
    }
    if (ev->kind == OB_EV_REACTION_REMOVE) {
        if (ob_approval_unvote(&pa->ap, user, ev->emoji) == OB_VOTE_WITHDRAWN) {
            cJSON *d = cJSON_CreateObject();
            struct ob_request tmp = {0};

            cJSON_AddStringToObject(d, "approval", pa->ap.id);
            cJSON_AddStringToObject(d, "by", user);
            tmp.bot = bot;
            ob__audit(bot, &tmp, pa->ap.request_id, "approval_withdrawn", user, ev->platform,
                      pa->ap.origin.channel, pa->ap.action, d);
            persist_approval(bot, &pa->ap);
            ob__post_raw(bot, ad, pa->ap.origin.channel, pa->ap.origin.thread, 0, NULL,
                         "an approval was taken back (reaction removed)", NULL, NULL);
        }
        return;
    }
    eligible = ob_policy_in_group(bot->bundle->pol, pa->ap.group, user);
    v = ob_approval_vote(&pa->ap, user, eligible, ev->emoji, ob_now_ms(), why, sizeof(why));
    switch (v) {
    case OB_VOTE_NONE:
    case OB_VOTE_WITHDRAWN:
        return;
    case OB_VOTE_REJECTED: {
        cJSON *d = cJSON_CreateObject();
        struct ob_request tmp = {0};
        char *text;
        int64_t id;

        cJSON_AddStringToObject(d, "approval", pa->ap.id);
        cJSON_AddStringToObject(d, "by", user);
        cJSON_AddStringToObject(d, "why", why);
        tmp.bot = bot;
        id = ob__audit(bot, &tmp, pa->ap.request_id, "vote_rejected", user, ev->platform,
                       pa->ap.origin.channel, pa->ap.action, d);
        if (asprintf(&text, "[#%lld] vote not counted: %s", (long long)id, why) >= 0) {
            ob__post_raw(bot, ad, pa->ap.origin.channel, pa->ap.origin.thread, 0, NULL, text, NULL,
                         NULL);
            free(text);
        }
        return;
    }
    case OB_VOTE_COUNTED: {
        cJSON *d = cJSON_CreateObject();
        struct ob_request tmp = {0};
        char *text;
        int64_t id;

        cJSON_AddStringToObject(d, "approval", pa->ap.id);
        cJSON_AddStringToObject(d, "by", user);
        tmp.bot = bot;
        id = ob__audit(bot, &tmp, pa->ap.request_id, "approval_vote", user, ev->platform,
                       pa->ap.origin.channel, pa->ap.action, d);
        persist_approval(bot, &pa->ap);
        if (asprintf(&text, "[#%lld] approval %zu of %d from %s — waiting for more", (long long)id,
                     pa->ap.nvotes, pa->ap.needed, user) >= 0) {
            ob__post_raw(bot, ad, pa->ap.origin.channel, pa->ap.origin.thread, 0, NULL, text, NULL,
                         NULL);
            free(text);
        }
        return;
    }
    case OB_VOTE_GRANTED:
    case OB_VOTE_REFUSED:
        approval_closed(bot, pa);
        return;
    }
}

void ob__restore_approvals(struct ob_bot *bot)
{
    struct ob_stored_approval *sa = NULL;
    size_t n = 0;
    int64_t now = ob_now_ms();

    if (ob_store_approvals_load(bot->store, &sa, &n)) {
        ob_error("approval", "cannot load pending approvals from the store");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct pending *pa = ob_xcalloc(1, sizeof(*pa));

        if (ob_approval_from_json(&pa->ap, sa[i].json)) {
            ob_error("approval", "stored approval %s is unreadable: dropped", sa[i].id);
            ob_store_approval_delete(bot->store, sa[i].id);
            free(pa);
            continue;
        }
        pa->ad = ob__adapter_by_name(bot, pa->ap.platform);
        pa->next = bot->approvals;
        bot->approvals = pa;
        if (ob_approval_expire(&pa->ap, now)) {
            ob_info("approval", "%s expired while opsbot was down", pa->ap.id);
            approval_closed(bot, pa);
            continue;
        }
        ob_info("approval", "%s restored (%zu of %d approvals so far)", pa->ap.id, pa->ap.nvotes,
                pa->ap.needed);
        if (pa->ad && (pa->ad->ops->flags & OB_ADAPTER_EPHEMERAL_IDS)) {
            pa->ap.nmsgs = 0; /* old ids would collide with new messages */
            post_approval_request(bot, pa, "(as approved earlier — see the request's trail)",
                                  "still pending from before a restart — ");
            persist_approval(bot, &pa->ap);
        }
    }
    ob_store_approvals_free(sa, n);
    ob__arm_expiry(bot);
}

size_t ob__pending_cb(void *core)
{
    struct ob_bot *bot = core;
    size_t n = 0;

    for (struct pending *pa = bot->approvals; pa; pa = pa->next)
        n += pa->ap.state == OB_APPROVAL_PENDING;
    return n;
}
