/* The pipeline: adapter event -> intent -> policy -> approval -> executor,
 * with every step appended to the audit trail and echoed into the request's
 * thread. Runs entirely on one libuv loop; the only blocking calls are the
 * brief SQLite writes of the state store.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core.h"
#include "opsbot/approval.h"
#include "opsbot/audit.h"
#include "opsbot/err.h"
#include "opsbot/store.h"
#include "opsbot/util.h"

static const char *const req_state_names[] = {"new", "asking", "deciding", "running", "done"};

static void finish_shutdown(struct ob_bot *bot);

/* ---- small helpers ------------------------------------------------------ */

void ob__qualify(char *out, size_t len, const char *platform, const char *user)
{
    snprintf(out, len, "%s:%s", platform, user ? user : "?");
}

struct ob_adapter *ob__adapter_by_name(struct ob_bot *bot, const char *name)
{
    for (size_t i = 0; i < bot->nadapters; i++)
        if (!strcmp(bot->adapters[i]->ops->name, name))
            return bot->adapters[i];
    return NULL;
}

const char *ob__short_hash(const char *hash, char *buf, size_t len)
{
    snprintf(buf, len, "%.16s", hash);
    return buf;
}

/* ---- the one place a request changes state ------------------------------ */

static void set_state(struct ob_request *req, enum req_state s)
{
    ob_debug("pipeline", "%s: %s -> %s", req->id, req_state_names[req->state], req_state_names[s]);
    if (req->state == RQ_RUNNING && s != RQ_RUNNING)
        req->bot->running--;
    if (s == RQ_RUNNING && req->state != RQ_RUNNING)
        req->bot->running++;
    req->state = s;
}

/* ---- audit -------------------------------------------------------------- */

/* Appends one record; detail (owned, may be NULL) is redacted first. */
int64_t ob__audit(struct ob_bot *bot, struct ob_request *req, const char *request_id,
                  const char *step, const char *actor, const char *platform, const char *channel,
                  const char *action, cJSON *detail)
{
    struct ob_audit_entry e = {0};
    char *text = NULL, *clean = NULL;
    int64_t id = 0;
    char hash[OB_HASH_HEX] = "";
    int rc;

    if (detail) {
        text = cJSON_PrintUnformatted(detail);
        cJSON_Delete(detail);
        if (text)
            clean = ob_redact_apply(bot->bundle->red, text, strlen(text));
        free(text);
    }
    e.request_id = request_id;
    e.step = step;
    e.actor = actor;
    e.platform = platform;
    e.channel = channel;
    e.action = action;
    e.detail = clean;
    rc = ob_audit_append(bot->store, &e, ob_now_ms(), &id, hash);
    free(clean);
    if (rc) {
        ob_error("audit", "cannot append '%s' of %s: %s", step, request_id, ob_strerror(rc));
        return 0;
    }
    if (req) {
        req->last_audit_id = id;
        ob_strlcpy(req->last_hash, hash, sizeof(req->last_hash));
    }
    return id;
}

int64_t ob__req_audit(struct ob_request *req, const char *step, const char *actor, cJSON *detail)
{
    return ob__audit(req->bot, req, req->id, step, actor ? actor : req->user, req->platform,
                     req->channel, req->prop.action ? req->prop.action->name : NULL, detail);
}

/* ---- posting ------------------------------------------------------------ */

struct post_ctx {
    struct ob_bot *bot;
    ob_post_cb cb;
    void *data;
};

static void post_done(void *data, int status, const struct ob_msgref *ref)
{
    struct post_ctx *pc = data;
    struct ob_bot *bot = pc->bot;

    if (status)
        ob_warn("pipeline", "post failed: %s", ob_strerror(status));
    if (pc->cb)
        pc->cb(pc->data, status, ref);
    free(pc);
    bot->posts_in_flight--;
    ob__maybe_idle(bot);
}

/* Redacts and posts text; cb (optional) gets the message reference. */
int ob__post_raw(struct ob_bot *bot, struct ob_adapter *ad, const char *channel, const char *thread,
                 unsigned flags, const char *ask_user, const char *text, ob_post_cb cb, void *data)
{
    struct post_ctx *pc;
    struct ob_post p = {0};
    char *clean;
    int rc;

    if (!ad)
        return OB_ENOTFOUND;
    clean = ob_redact_apply(bot->bundle->red, text, strlen(text));
    if (!clean)
        return OB_ENOMEM;
    pc = ob_xmalloc(sizeof(*pc));
    pc->bot = bot;
    pc->cb = cb;
    pc->data = data;
    p.channel = channel;
    p.thread = thread;
    p.text = clean;
    p.flags = flags;
    p.ask_user = ask_user;
    bot->posts_in_flight++;
    rc = ob_adapter_post(ad, &p, post_done, pc);
    free(clean);
    if (rc) {
        ob_warn("pipeline", "post failed: %s", ob_strerror(rc));
        bot->posts_in_flight--;
        free(pc);
    }
    return rc;
}

static void sayf(struct ob_request *req, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sayf(struct ob_request *req, unsigned flags, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        return;
    ob__post_raw(req->bot, req->ad, req->channel, req->thread, flags,
                 (flags & OB_POST_QUESTION) ? req->raw_user : NULL, text, NULL, NULL);
    free(text);
}

/* The last message of a request carries the chain hash at that point. */
void ob__say_final(struct ob_request *req, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    char h[20];

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        return;
    sayf(req, 0, "%s\naudit #%lld · chain %s", text, (long long)req->last_audit_id,
         ob__short_hash(req->last_hash, h, sizeof(h)));
    free(text);
}

/* ---- requests ----------------------------------------------------------- */

struct ob_request *ob__request_new(struct ob_bot *bot, struct ob_adapter *ad,
                                   const struct ob_event *ev, const char *thread)
{
    struct ob_request *req = ob_xcalloc(1, sizeof(*req));

    req->bot = bot;
    req->bundle = ob_bundle_ref(bot->bundle);
    req->ad = ad;
    ob_random_id("r-", req->id, sizeof(req->id));
    ob_strlcpy(req->platform, ev->platform, sizeof(req->platform));
    ob__qualify(req->user, sizeof(req->user), ev->platform, ev->user);
    ob_strlcpy(req->raw_user, ev->user ? ev->user : "", sizeof(req->raw_user));
    ob_strlcpy(req->channel, ev->channel ? ev->channel : "", sizeof(req->channel));
    ob_strlcpy(req->thread, thread ? thread : "", sizeof(req->thread));
    req->next = bot->requests;
    bot->requests = req;
    return req;
}

static void request_unlink(struct ob_request *req)
{
    struct ob_request **pp = &req->bot->requests;

    for (; *pp; pp = &(*pp)->next) {
        if (*pp == req) {
            *pp = req->next;
            break;
        }
    }
}

void ob__request_free(struct ob_request *req)
{
    if (!req)
        return;
    request_unlink(req);
    set_state(req, RQ_DONE);
    ob_bundle_unref(req->bundle);
    free(req);
}

void ob__request_end(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;

    ob__request_free(req);
    ob__maybe_idle(bot);
    if (bot->stopping && bot->running == 0)
        finish_shutdown(bot);
}

static cJSON *proposal_json(const struct ob_proposal *p)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < p->nparams; i++)
        cJSON_AddStringToObject(o, p->params[i].name, p->params[i].value);
    return o;
}

/* ---- execution ---------------------------------------------------------- */

static void run_help(struct ob_request *req)
{
    const struct ob_catalog *cat = req->bundle->cat;
    char *text = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return;
    fprintf(f, "What you (%s) can ask me:", req->user);
    for (size_t i = 0; i < cat->n; i++) {
        const struct ob_action *a = &cat->actions[i];

        if (!strcmp(a->name, "help") ||
            !ob_policy_may_use(req->bundle->pol, req->user, req->platform, a->name))
            continue;
        fprintf(f, "\n• %s — %s%s%s", a->name, a->description, a->nexamples ? " e.g. \"" : "",
                a->nexamples ? a->examples[0] : "");
        if (a->nexamples)
            fputc('"', f);
        n++;
    }
    if (!n)
        fprintf(f, "\n(nothing: the policy allows you no actions)");
    fprintf(f, "\nExplicit form: !ACTION value key=value (e.g. !status checkout env=prod).");
    fclose(f);
    ob__req_audit(req, "finished", "opsbot", NULL);
    ob__say_final(req, "%s", text);
    free(text);
}

static void exec_done(void *data, const struct ob_exec_result *res)
{
    struct ob_request *req = data;
    cJSON *d = cJSON_CreateObject();
    char dur[32], *shown = NULL;
    size_t cap = (size_t)req->bundle->chat_output_cap;
    bool ok = !res->err && !res->term_signal && !res->timed_out && res->exit_status == 0;
    const char *what;
    char status[128];
    int64_t id;
    char *out_clean;

    ob_duration_format(res->duration_ms, dur, sizeof(dur));
    if (res->err)
        snprintf(status, sizeof(status), "could not start: %s", ob_strerror(res->err));
    else if (res->timed_out)
        snprintf(status, sizeof(status), "timed out after %s, killed (signal %d)", dur,
                 res->term_signal);
    else if (res->term_signal)
        snprintf(status, sizeof(status), "killed by signal %d after %s", res->term_signal, dur);
    else
        snprintf(status, sizeof(status), "exit %lld in %s", (long long)res->exit_status, dur);
    out_clean = ob_redact_apply(req->bundle->red, res->output ? res->output : "",
                                res->output ? res->output_len : 0);
    cJSON_AddNumberToObject(d, "exit", (double)res->exit_status);
    if (res->term_signal)
        cJSON_AddNumberToObject(d, "signal", res->term_signal);
    if (res->timed_out)
        cJSON_AddTrueToObject(d, "timed_out");
    if (res->err)
        cJSON_AddStringToObject(d, "error", ob_strerror(res->err));
    cJSON_AddNumberToObject(d, "duration_ms", (double)res->duration_ms);
    if (out_clean) {
        char save = 0;
        size_t olen = strlen(out_clean);

        if (olen > AUDIT_OUTPUT_CAP) {
            save = out_clean[AUDIT_OUTPUT_CAP];
            out_clean[AUDIT_OUTPUT_CAP] = '\0';
        }
        cJSON_AddStringToObject(d, "output", out_clean);
        if (save)
            out_clean[AUDIT_OUTPUT_CAP] = save;
    }
    what = ok ? "finished" : "failed";
    id = ob__req_audit(req, what, "opsbot", d);
    if (out_clean && *out_clean) {
        size_t olen = strlen(out_clean);
        bool cut = olen > cap;

        if (asprintf(&shown, "\n```\n%.*s%s```%s", (int)(cut ? cap : olen), out_clean,
                     (olen && out_clean[(cut ? cap : olen) - 1] == '\n') ? "" : "\n",
                     cut || res->truncated ? "\n(output truncated; the audit keeps the first 4 KiB)"
                                           : "") < 0)
            shown = NULL;
    }
    {
        char prop[512];

        ob__say_final(req, "[#%lld] %s: %s — %s%s", (long long)id, what, status,
                      ob_proposal_format(&req->prop, prop, sizeof(prop)), shown ? shown : "");
    }
    free(shown);
    free(out_clean);
    ob__request_end(req);
}

void ob__start_action(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;
    const struct ob_action *a = req->prop.action;
    char **argv = NULL;
    char cmd[1024] = "built-in";
    cJSON *d;
    int64_t id;
    int rc;

    if (a->executor) {
        rc = ob_argv_render(req->bundle->cfg, cJSON_GetObjectItemCaseSensitive(a->executor, "argv"),
                            &req->prop, &argv);
        if (rc) {
            id = ob__req_audit(req, "failed", "opsbot", NULL);
            ob__say_final(req, "[#%lld] failed: cannot build the command (%s)", (long long)id,
                          ob_strerror(rc));
            ob__request_end(req);
            return;
        }
        ob_argv_format(argv, cmd, sizeof(cmd));
        ob_argv_free(argv);
    }
    if (!a->executor) {
        ob__req_audit(req, "started", "opsbot", NULL);
        run_help(req);
        ob__request_end(req);
        return;
    }
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command", cmd);
    id = ob__req_audit(req, "started", "opsbot", d);
    /* Durable before anything runs: after a crash the trail says what began. */
    rc = ob_store_flush(bot->store);
    if (rc) {
        ob__say_final(req, "[#%lld] not run: the audit trail cannot be written (%s)", (long long)id,
                      ob_strerror(rc));
        ob__request_end(req);
        return;
    }
    set_state(req, RQ_RUNNING);
    sayf(req, 0, "[#%lld] running: %s", (long long)id, cmd);
    rc = ob_exec_start(bot->exec, &req->prop, exec_done, req);
    if (rc) {
        id = ob__req_audit(req, "failed", "opsbot", NULL);
        ob__say_final(req, "[#%lld] failed: %s", (long long)id, ob_strerror(rc));
        ob__request_end(req);
    }
}

/* ---- decisions ---------------------------------------------------------- */

static int count_cb(void *data, const char *user, const char *action, int64_t since_ms)
{
    return ob_store_count(data, user, action, since_ms);
}

static void decide(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;
    struct ob_policy_request pr = {0};
    struct ob_decision dec;
    cJSON *d;
    int64_t id;

    set_state(req, RQ_DECIDING);
    pr.user = req->user;
    pr.platform = req->platform;
    pr.channel = req->channel;
    pr.action = req->prop.action->name;
    pr.params = req->prop.params;
    pr.nparams = req->prop.nparams;
    pr.is_read = req->prop.action->risk == OB_RISK_READ;
    pr.now_ms = ob_now_ms();
    ob_policy_decide(req->bundle->pol, &pr, count_cb, bot->store, &dec);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "effect", ob_effect_name(dec.effect));
    cJSON_AddStringToObject(d, "rule", dec.rule);
    cJSON_AddStringToObject(d, "where", dec.where);
    cJSON_AddStringToObject(d, "reason", dec.reason);
    id = ob__req_audit(req, "decided", "opsbot", d);
    if (dec.effect == OB_EFFECT_DENY) {
        ob__say_final(req, "[#%lld] denied: %s — rule %s%s%s%s", (long long)id, dec.reason,
                      dec.rule, dec.where[0] ? " (" : "", dec.where, dec.where[0] ? ")" : "");
        ob__request_end(req);
        return;
    }
    ob_store_count_note(bot->store, req->user, req->prop.action->name, pr.now_ms);
    if (dec.effect == OB_EFFECT_ALLOW) {
        sayf(req, 0, "[#%lld] policy: allowed — rule %s (%s)", (long long)id, dec.rule, dec.where);
        ob__start_action(req);
        return;
    }
    sayf(req, 0, "[#%lld] policy: needs %d approval(s) from %s — rule %s (%s)", (long long)id,
         dec.count, dec.approvers, dec.rule, dec.where);
    ob__request_approval(req, &dec);
}

/* ---- inbound messages --------------------------------------------------- */

static void ask(struct ob_request *req)
{
    char q[512];
    cJSON *d = cJSON_CreateObject();
    int64_t id;

    ob_intent_question(&req->prop, q, sizeof(q));
    cJSON_AddStringToObject(d, "question", q);
    id = ob__req_audit(req, "asked", "opsbot", d);
    req->ask_deadline_ms = ob_now_ms() + req->bundle->ask_ttl_ms;
    req->asks++;
    set_state(req, RQ_ASKING);
    sayf(req, OB_POST_QUESTION, "[#%lld] %s", (long long)id, q);
}

static void understood(struct ob_request *req, const char *text)
{
    cJSON *d = cJSON_CreateObject();
    char prop[512];
    int64_t id;

    cJSON_AddStringToObject(d, "text", text);
    cJSON_AddStringToObject(d, "thread", req->thread);
    ob__req_audit(req, "received", NULL, d);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "proposal", ob_proposal_format(&req->prop, prop, sizeof(prop)));
    cJSON_AddItemToObject(d, "params", proposal_json(&req->prop));
    cJSON_AddStringToObject(d, "source", req->prop.source ? req->prop.source : "?");
    cJSON_AddNumberToObject(d, "confidence", req->prop.confidence);
    id = ob__req_audit(req, "understood", "opsbot", d);
    sayf(req, 0, "[#%lld] understood: %s (%s, confidence %.2f)", (long long)id, prop,
         req->prop.source ? req->prop.source : "?", req->prop.confidence);
}

static struct ob_request *find_ask(struct ob_bot *bot, const struct ob_event *ev, const char *user)
{
    int64_t now = ob_now_ms();

    for (struct ob_request *r = bot->requests; r; r = r->next) {
        if (r->state != RQ_ASKING || strcmp(r->platform, ev->platform) || strcmp(r->user, user) ||
            strcmp(r->channel, ev->channel ? ev->channel : "") || !ev->thread ||
            strcmp(r->thread, ev->thread))
            continue;
        if (now > r->ask_deadline_ms)
            continue;
        return r;
    }
    return NULL;
}

static void drop_stale_asks(struct ob_bot *bot)
{
    int64_t now = ob_now_ms();

    for (struct ob_request *r = bot->requests, *next; r; r = next) {
        next = r->next;
        if (r->state == RQ_ASKING && now > r->ask_deadline_ms) {
            ob__req_audit(r, "abandoned", "opsbot", NULL);
            ob__request_free(r);
        }
    }
}

static void on_answer(struct ob_request *req, const char *text)
{
    char msg[512];
    enum ob_parse_status st;
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "answer", text);
    ob__req_audit(req, "answered", NULL, d);
    st = ob_intent_answer(&req->prop, text, msg, sizeof(msg));
    if (st == OB_PARSE_INVALID) {
        if (req->asks >= 3) {
            int64_t id = ob__req_audit(req, "abandoned", "opsbot", NULL);

            ob__say_final(req, "[#%lld] %s — giving up after 3 tries; nothing was run",
                          (long long)id, msg);
            ob__request_end(req);
            return;
        }
        sayf(req, 0, "%s", msg);
        ask(req);
        return;
    }
    if (st == OB_PARSE_ASK) {
        ask(req);
        return;
    }
    {
        char prop[512];
        cJSON *u = cJSON_CreateObject();
        int64_t id;

        cJSON_AddStringToObject(u, "proposal", ob_proposal_format(&req->prop, prop, sizeof(prop)));
        cJSON_AddItemToObject(u, "params", proposal_json(&req->prop));
        cJSON_AddStringToObject(u, "source", req->prop.source ? req->prop.source : "?");
        id = ob__req_audit(req, "understood", "opsbot", u);
        sayf(req, 0, "[#%lld] understood: %s", (long long)id, prop);
    }
    decide(req);
}

static void reply_plain(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev,
                        const char *text)
{
    ob__post_raw(bot, ad, ev->channel, ev->thread ? ev->thread : ev->message, 0, NULL, text, NULL,
                 NULL);
}

static void on_message(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev)
{
    struct ob_parse_result *res;
    char user[160], *text;
    const char *thread = ev->thread && *ev->thread ? ev->thread : ev->message;
    struct ob_request *req;

    ob__qualify(user, sizeof(user), ev->platform, ev->user);
    if (ev->text_len > (size_t)bot->bundle->max_message_bytes) {
        char line[160];

        ob_warn("pipeline", "message of %zu bytes from %s refused (limit %lld)", ev->text_len, user,
                (long long)bot->bundle->max_message_bytes);
        if (ev->addressed) {
            snprintf(line, sizeof(line),
                     "message too long (%zu bytes; the limit is %lld): not processed", ev->text_len,
                     (long long)bot->bundle->max_message_bytes);
            reply_plain(bot, ad, ev, line);
        }
        return;
    }
    if (!ob_utf8_valid(ev->text, ev->text_len)) {
        ob_warn("pipeline", "message from %s is not valid UTF-8", user);
        if (ev->addressed)
            reply_plain(bot, ad, ev, "message is not valid UTF-8: not processed");
        return;
    }
    text = ob_xmalloc(ev->text_len + 1);
    memcpy(text, ev->text, ev->text_len);
    text[ev->text_len] = '\0';

    drop_stale_asks(bot);
    req = find_ask(bot, ev, user);
    if (req) {
        on_answer(req, text);
        free(text);
        return;
    }

    res = ob_xmalloc(sizeof(*res));
    ob_intent_parse(bot->bundle->cat, text, res);
    switch (res->status) {
    case OB_PARSE_NONE:
        if (ev->addressed)
            reply_plain(bot, ad, ev,
                        "I did not understand that as a request. Say \"help\" to see what I can "
                        "do.");
        break;
    case OB_PARSE_INVALID:
    case OB_PARSE_AMBIGUOUS: {
        cJSON *d = cJSON_CreateObject();
        int64_t id;

        req = ob__request_new(bot, ad, ev, thread);
        if (res->n)
            req->prop = res->proposals[0];
        cJSON_AddStringToObject(d, "text", text);
        ob__req_audit(req, "received", NULL, d);
        d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "why", res->message);
        id = ob__req_audit(req, res->status == OB_PARSE_INVALID ? "invalid" : "ambiguous", "opsbot",
                           d);
        ob__say_final(req, "[#%lld] not run: %s", (long long)id, res->message);
        ob__request_end(req);
        break;
    }
    case OB_PARSE_ASK:
        req = ob__request_new(bot, ad, ev, thread);
        req->prop = res->proposals[0];
        understood(req, text);
        ask(req);
        break;
    case OB_PARSE_OK:
        if (res->n > 1) {
            char line[200];

            snprintf(line, sizeof(line),
                     "That is %zu actions; each is decided on its own, one request each:", res->n);
            reply_plain(bot, ad, ev, line);
        }
        for (size_t i = 0; i < res->n && !bot->stopping; i++) {
            req = ob__request_new(bot, ad, ev, thread);
            req->prop = res->proposals[i];
            understood(req, text);
            decide(req);
        }
        break;
    }
    free(res);
    free(text);
}

static void on_event(void *data, struct ob_adapter *ad, const struct ob_event *ev)
{
    struct ob_bot *bot = data;
    char claim[400];
    int rc;

    if (bot->stopping || !ev->platform || !ev->user)
        return;
    if (ev->id && *ev->id) {
        snprintf(claim, sizeof(claim), "%s:%s", ev->platform, ev->id);
        rc = ob_store_claim(bot->store, claim, ob_now_ms());
        if (rc == OB_EDUP) {
            ob_warn("pipeline", "event %s already handled: ignored (a redelivery)", claim);
            return;
        }
        if (rc) {
            ob_error("pipeline", "cannot claim event %s: %s — not processed", claim,
                     ob_strerror(rc));
            return;
        }
    }
    switch (ev->kind) {
    case OB_EV_MESSAGE:
        if (ev->text)
            on_message(bot, ad, ev);
        break;
    case OB_EV_REACTION_ADD:
    case OB_EV_REACTION_REMOVE:
    case OB_EV_BUTTON:
        ob__on_vote(bot, ad, ev);
        break;
    }
    ob__maybe_idle(bot);
}

/* ---- lifecycle ---------------------------------------------------------- */

size_t ob_bot_inflight(const struct ob_bot *bot)
{
    return bot->running + bot->posts_in_flight + (bot->exec ? ob_exec_active(bot->exec) : 0);
}

static size_t inflight_cb(void *core)
{
    return ob_bot_inflight(core);
}

void ob__maybe_idle(struct ob_bot *bot)
{
    if (ob_bot_inflight(bot))
        return;
    for (size_t i = 0; i < bot->nadapters; i++)
        if (bot->adapters[i]->ops->idle)
            bot->adapters[i]->ops->idle(bot->adapters[i]);
}

static void flush_cb(uv_check_t *c)
{
    struct ob_bot *bot = c->data;

    ob_store_flush(bot->store);
}

/* The state file's directory is created on first start (mkdir -p). */
static void make_parent_dirs(const char *path)
{
    char dir[4096];
    size_t n = ob_strlcpy(dir, path, sizeof(dir));

    if (n >= sizeof(dir) || !strcmp(path, ":memory:"))
        return;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) && errno != EEXIST)
            ob_warn("store", "cannot create %s: %s", dir, strerror(errno));
        *p = '/';
    }
}

static void shutdown_cb(void *core)
{
    ob_bot_shutdown(core);
}

int ob_bot_new(struct ob_bot **out, uv_loop_t *loop, struct ob_bundle *b, const char *config_path)
{
    struct ob_bot *bot = ob_xcalloc(1, sizeof(*bot));
    int rc;

    *out = NULL;
    bot->loop = loop;
    bot->bundle = b;
    bot->config_path = ob_xstrdup(config_path);
    ob_log_set_redactor(b->red);
    make_parent_dirs(b->state_path);
    rc = ob_store_open(&bot->store, b->state_path);
    if (rc) {
        ob_error("store", "cannot open state store %s: %s", b->state_path, ob_strerror(rc));
        goto fail;
    }
    rc = ob_exec_new(&bot->exec, loop, b->cfg, &b->exec_opts);
    if (rc)
        goto fail;
    uv_check_init(loop, &bot->flush_check);
    bot->flush_check.data = bot;
    uv_check_start(&bot->flush_check, flush_cb);
    uv_unref((uv_handle_t *)&bot->flush_check);
    uv_timer_init(loop, &bot->expiry_timer);
    bot->expiry_timer.data = bot;
    uv_timer_init(loop, &bot->grace_timer);
    bot->grace_timer.data = bot;
    *out = bot;
    return 0;
fail:
    ob_store_close(bot->store);
    ob_log_set_redactor(NULL);
    ob_bundle_unref(b);
    free(bot->config_path);
    free(bot);
    return rc;
}

int ob_bot_add_adapter(struct ob_bot *bot, struct ob_adapter *ad)
{
    if (bot->nadapters == MAX_ADAPTERS) {
        ad->ops->free(ad);
        return OB_E2BIG;
    }
    ad->loop = bot->loop;
    ad->on_event = on_event;
    ad->on_event_data = bot;
    ad->inflight = inflight_cb;
    ad->pending_approvals = ob__pending_cb;
    ad->shutdown = shutdown_cb;
    bot->adapters[bot->nadapters++] = ad;
    return 0;
}

int ob_bot_start(struct ob_bot *bot)
{
    for (size_t i = 0; i < bot->nadapters; i++) {
        int rc = bot->adapters[i]->ops->start(bot->adapters[i]);

        if (rc) {
            ob_error("pipeline", "adapter %s failed to start: %s", bot->adapters[i]->ops->name,
                     ob_strerror(rc));
            return rc;
        }
    }
    ob__restore_approvals(bot);
    ob_store_flush(bot->store);
    return 0;
}

int ob_bot_reload(struct ob_bot *bot)
{
    struct ob_bundle *nb = NULL;
    struct ob_diag d;
    int rc;

    ob_diag_init(&d);
    rc = ob_bundle_load(&nb, bot->config_path, &d);
    if (rc) {
        for (size_t i = 0; i < d.n; i++)
            ob_error("config", "reload refused: %s", d.lines[i] ? d.lines[i] : "?");
        ob_error("config", "reload refused: %zu error(s); the running configuration stays", d.n);
        ob_diag_release(&d);
        return rc;
    }
    ob_diag_release(&d);
    if (strcmp(nb->state_path, bot->bundle->state_path))
        ob_warn("config", "bot.state changed: takes effect at the next start");
    ob_log_set_redactor(nb->red);
    ob_log_set_level(nb->log_level);
    ob_bundle_unref(bot->bundle);
    bot->bundle = nb;
    ob_info("config", "reloaded %s: %zu actions", bot->config_path, nb->cat->n);
    return 0;
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct ob_bot *bot = s->data;

    if (signum == SIGHUP) {
        ob_info("pipeline", "SIGHUP: reloading configuration");
        ob_bot_reload(bot);
        return;
    }
    ob_info("pipeline", "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ob_bot_shutdown(bot);
}

int ob_bot_handle_signals(struct ob_bot *bot, bool hold)
{
    uv_signal_t *sigs[] = {&bot->sig_hup, &bot->sig_term, &bot->sig_int};
    int nums[] = {SIGHUP, SIGTERM, SIGINT};

    for (int i = 0; i < 3; i++) {
        uv_signal_init(bot->loop, sigs[i]);
        sigs[i]->data = bot;
        uv_signal_start(sigs[i], signal_cb, nums[i]);
        if (!hold)
            uv_unref((uv_handle_t *)sigs[i]);
    }
    bot->signals = true;
    return 0;
}

static void grace_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;

    ob_warn("pipeline", "shutdown grace over: %zu action(s) still running are killed",
            bot->running);
    for (struct ob_request *r = bot->requests, *next; r; r = next) {
        next = r->next;
        if (r->state == RQ_RUNNING) {
            cJSON *d = cJSON_CreateObject();

            cJSON_AddStringToObject(d, "error", "killed at shutdown after the grace period");
            ob__req_audit(r, "failed", "opsbot", d);
            ob__request_free(r);
        }
    }
    finish_shutdown(bot);
}

void ob_bot_shutdown(struct ob_bot *bot)
{
    if (bot->stopping)
        return;
    bot->stopping = true;
    for (size_t i = 0; i < bot->nadapters; i++)
        bot->adapters[i]->ops->stop(bot->adapters[i]);
    if (bot->running == 0) {
        finish_shutdown(bot);
        return;
    }
    ob_info("pipeline", "waiting up to %lld ms for %zu running action(s)",
            (long long)bot->bundle->shutdown_grace_ms, bot->running);
    uv_timer_start(&bot->grace_timer, grace_cb, (uint64_t)bot->bundle->shutdown_grace_ms, 0);
}

static void finish_shutdown(struct ob_bot *bot)
{
    if (bot->closed)
        return;
    bot->closed = true;
    /* Questions nobody answered end with the process. */
    for (struct ob_request *r = bot->requests, *next; r; r = next) {
        next = r->next;
        ob__request_free(r);
    }
    ob_store_flush(bot->store);
    ob_exec_free(bot->exec);
    bot->exec = NULL;
    uv_close((uv_handle_t *)&bot->flush_check, NULL);
    uv_close((uv_handle_t *)&bot->expiry_timer, NULL);
    uv_close((uv_handle_t *)&bot->grace_timer, NULL);
    if (bot->signals) {
        uv_close((uv_handle_t *)&bot->sig_hup, NULL);
        uv_close((uv_handle_t *)&bot->sig_term, NULL);
        uv_close((uv_handle_t *)&bot->sig_int, NULL);
    }
}

void ob_bot_free(struct ob_bot *bot)
{
    if (!bot)
        return;
    for (size_t i = 0; i < bot->nadapters; i++)
        bot->adapters[i]->ops->free(bot->adapters[i]);
    while (bot->approvals) {
        struct pending *pa = bot->approvals;

        bot->approvals = pa->next;
        free(pa);
    }
    ob_store_close(bot->store);
    ob_log_set_redactor(NULL);
    ob_bundle_unref(bot->bundle);
    free(bot->config_path);
    free(bot);
}

int ob_bot_exit_status(const struct ob_bot *bot)
{
    return bot->exit_status;
}
