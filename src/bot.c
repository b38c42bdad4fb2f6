/* The pipeline: adapter event -> intent -> policy -> approval -> executor,
 * with every step appended to the audit trail and echoed into the request's
 * thread. Runs entirely on one libuv loop; the only blocking calls are the
 * brief SQLite writes of the state store.
 */
#include <errno.h>
#include <stdarg.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core.h"
#include "opsbot/http.h"
#include "opsbot/platform.h"
#include "opsbot/ws.h"
#include "opsbot/approval.h"
#include "opsbot/audit.h"
#include "opsbot/err.h"
#include "opsbot/llm.h"
#include "opsbot/metrics.h"
#include "opsbot/store.h"
#include "opsbot/util.h"

static const char *const req_state_names[] = {"new", "asking", "deciding", "running", "done"};

static void finish_shutdown(struct ob_bot *bot);
static void forget_syncing(struct ob_bot *bot);
static void release_cb(uv_timer_t *t);
static void start_kick_cb(uv_idle_t *h);
static void hold_unlink(struct ob_request *req);
static void hold_cb(uv_timer_t *t);
static void running_post(struct ob_request *req);
static int post_now(struct ob_bot *bot, struct ob_adapter *ad, const char *channel,
                    const char *thread, unsigned flags, const char *ask_user, const char *text,
                    ob_post_cb cb, void *data);

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

/* Approvals reaching a decision are counted where they are audited. */
static void count_approval(struct ob_bot *bot, const char *request_id, const char *step)
{
    static const char *const steps[] = {"approval_granted", "approval_refused", "approval_expired",
                                        NULL};

    for (size_t i = 0; steps[i]; i++) {
        if (strcmp(step, steps[i]))
            continue;
        for (struct pending *pa = bot->approvals; pa; pa = pa->next) {
            if (request_id && !strcmp(pa->ap.request_id, request_id)) {
                ob_metrics_approval(step + 9, (double)(ob_now_ms() - pa->ap.created_ms) / 1000.0);
                return;
            }
        }
        ob_metrics_approval(step + 9, 0);
        return;
    }
}

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
        ob__store_failed(bot, rc, "audit append");
        return 0;
    }
    count_approval(bot, request_id, step);
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
    struct post_ctx *next; /* bot->post_list: posts in flight */
    struct ob_bot *bot;
    ob_post_cb cb;
    void *data;
};

static void post_unlink(struct post_ctx *pc)
{
    for (struct post_ctx **pp = &pc->bot->post_list; *pp; pp = &(*pp)->next) {
        if (*pp == pc) {
            *pp = pc->next;
            return;
        }
    }
}

static void post_done(void *data, int status, const struct ob_msgref *ref)
{
    struct post_ctx *pc = data;
    struct ob_bot *bot = pc->bot;

    post_unlink(pc);
    if (status)
        ob_warn("pipeline", "post failed: %s", ob_strerror(status));
    if (pc->cb)
        pc->cb(pc->data, status, ref);
    free(pc);
    bot->posts_in_flight--;
    ob__maybe_idle(bot);
    if (bot->closed && !bot->posts_in_flight && !uv_is_closing((uv_handle_t *)&bot->release_timer))
        uv_timer_start(&bot->release_timer, release_cb, 0, 0);
}

/* Redacts and posts text; cb (optional) gets the message reference. */
static int post_now(struct ob_bot *bot, struct ob_adapter *ad, const char *channel,
                    const char *thread, unsigned flags, const char *ask_user, const char *text,
                    ob_post_cb cb, void *data)
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
    pc->next = bot->post_list;
    bot->post_list = pc;
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
        post_unlink(pc);
        free(pc);
    }
    return rc;
}

/* ---- what a request says ------------------------------------------------
 *
 * The plain steps of a request (understood, policy, running, result) are
 * gathered and posted as one message at the end of the loop turn, or when
 * the request ends, so a read action that completes at once makes two
 * messages instead of four: fewer notifications in the channel and fewer
 * calls against the platforms' per-channel rate limits. Questions and
 * approval requests stay messages of their own; anything else posted into
 * the same thread first sends what is gathered there, so the order in the
 * channel is the order of the steps. */

static void say_unlink(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;

    for (struct ob_request **pp = &bot->saying; *pp; pp = &(*pp)->next_say) {
        if (*pp == req) {
            *pp = req->next_say;
            if (bot->saying_tail == &req->next_say)
                bot->saying_tail = pp;
            break;
        }
    }
    req->next_say = NULL;
}

/* Takes the gathered text (caller frees), NULL when there is none. */
static char *say_take(struct ob_request *req)
{
    char *t = req->say;

    if (t)
        say_unlink(req);
    req->say = NULL;
    return t;
}

/* A held "running:" line leads what follows it (the result, usually). */
static void say_flush(struct ob_request *req)
{
    char *t = say_take(req), *m;

    if (req->running_held) {
        hold_unlink(req);
        if (t && asprintf(&m, "%s\n%s", req->running_text, t) >= 0) {
            free(t);
            t = m;
        } else if (!t) {
            t = ob_xstrdup(req->running_text);
        }
    }
    if (t)
        post_now(req->bot, req->ad, req->channel, req->thread, 0, NULL, t, NULL, NULL);
    free(t);
}

/* End of the loop turn: everything gathered goes out (what an action
 * says while its "running:" line is held goes out with it). */
static void say_flush_all(struct ob_bot *bot)
{
    struct ob_request **pp = &bot->saying;

    bot->say_dirty = false;
    while (*pp) {
        struct ob_request *req = *pp;

        if (req->running_held) { /* its text follows "running:" */
            pp = &req->next_say;
            continue;
        }
        say_flush(req); /* unlinks req: *pp is the next one */
    }
}

/* Before something else is posted into a thread. */
static void say_flush_thread(struct ob_bot *bot, struct ob_adapter *ad, const char *channel,
                             const char *thread)
{
    struct ob_request **pp = &bot->saying;

    while (*pp) {
        struct ob_request *req = *pp;

        if (req->ad == ad && !strcmp(req->channel, channel) &&
            !strcmp(req->thread, thread ? thread : "")) {
            say_flush(req);
            continue;
        }
        pp = &req->next_say;
    }
}

static void say_add(struct ob_request *req, const char *text)
{
    struct ob_bot *bot = req->bot;
    char *t;

    if (!req->say) {
        /* another request's steps in this thread go first, whole */
        say_flush_thread(bot, req->ad, req->channel, req->thread);
        req->say = ob_xstrdup(text);
        req->next_say = NULL;
        *bot->saying_tail = req;
        bot->saying_tail = &req->next_say;
        bot->say_dirty = true;
        uv_idle_start(&bot->start_kick, start_kick_cb); /* flushed in this turn */
        return;
    }
    if (asprintf(&t, "%s\n%s", req->say, text) < 0)
        return;
    free(req->say);
    req->say = t;
}

int ob__post_raw(struct ob_bot *bot, struct ob_adapter *ad, const char *channel, const char *thread,
                 unsigned flags, const char *ask_user, const char *text, ob_post_cb cb, void *data)
{
    if (!ad)
        return OB_ENOTFOUND;
    say_flush_thread(bot, ad, channel ? channel : "", thread);
    return post_now(bot, ad, channel, thread, flags, ask_user, text, cb, data);
}

/* A step of req: plain ones (flags 0) are gathered, others posted now. */
static void vsayf(struct ob_request *req, unsigned flags, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vsayf(struct ob_request *req, unsigned flags, const char *fmt, va_list ap)
{
    char *text = NULL;

    if (vasprintf(&text, fmt, ap) < 0)
        return;
    if (flags == 0 && !req->dead)
        say_add(req, text);
    else
        ob__post_raw(req->bot, req->ad, req->channel, req->thread, flags,
                     (flags & OB_POST_QUESTION) ? req->raw_user : NULL, text, NULL, NULL);
    free(text);
}

static void sayf(struct ob_request *req, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sayf(struct ob_request *req, unsigned flags, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsayf(req, flags, fmt, ap);
    va_end(ap);
}

/* A plain step of req, gathered with its others (for the other core files). */
void ob__sayf(struct ob_request *req, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsayf(req, 0, fmt, ap);
    va_end(ap);
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

static void request_mem_free(struct ob_request *req)
{
    free(req->say);
    free(req->running_text);
    free(req);
}

void ob__request_free(struct ob_request *req)
{
    if (!req || req->dead)
        return;
    say_flush(req); /* what it still had to say goes out first */
    request_unlink(req);
    set_state(req, RQ_DONE);
    ob_bundle_unref(req->bundle);
    req->bundle = NULL;
    if (req->post_refs > 0) {
        req->dead = true; /* running_posted() frees it */
        return;
    }
    request_mem_free(req);
}

/* The "running:" message landed: progress lines now edit it in place. */
static void running_posted(void *data, int status, const struct ob_msgref *ref)
{
    struct ob_request *req = data;

    if (--req->post_refs == 0 && req->dead) {
        request_mem_free(req);
        return;
    }
    if (!status && ref && !req->dead) {
        req->running_ref = *ref;
        req->has_running_ref = true;
    }
}

static void exec_progress(void *data, const char *line)
{
    struct ob_request *req = data;
    struct ob_post p = {0};
    char *text = NULL, *clean;

    if (req->running_held && !req->dead)
        running_post(req); /* a long one: its message now, edited from here on */
    if (!req->has_running_ref || req->dead)
        return;
    if (asprintf(&text, "%s\n⏳ %s", req->running_text, line) < 0)
        return;
    clean = ob_redact_apply(req->bundle->red, text, strlen(text));
    free(text);
    if (!clean)
        return;
    p.channel = req->running_ref.channel;
    p.thread = req->running_ref.thread;
    p.text = clean;
    ob_adapter_update(req->ad, &req->running_ref, &p);
    free(clean);
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
    char status[200];
    int64_t id;
    char *out_clean;

    ob_duration_format(res->duration_ms, dur, sizeof(dur));
    if (res->status[0] && res->timed_out) /* network executors say it themselves */
        snprintf(status, sizeof(status), "%s", res->status);
    else if (res->status[0])
        snprintf(status, sizeof(status), "%s%s in %s", res->dry_run ? "dry run, " : "",
                 strcmp(res->status, "dry run") ? res->status : "nothing sent", dur);
    else if (res->err)
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
    if (res->status[0])
        cJSON_AddStringToObject(d, "status", res->status);
    if (res->dry_run)
        cJSON_AddTrueToObject(d, "dry_run");
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
    ob_metrics_execution(req->prop.action->name,
                         res->err         ? "error"
                         : res->timed_out ? "timeout"
                         : ok             ? "ok"
                                          : "failed",
                         (double)res->duration_ms / 1000.0);
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
    struct ob_exec_start_opts eo = {.cfg = req->bundle->cfg, .red = req->bundle->red};
    char cmd[1024] = "built-in";
    cJSON *d;
    int64_t id;
    int rc;

    if (a->executor) {
        rc = ob_exec_describe(req->bundle->cfg, &req->prop, cmd, sizeof(cmd));
        if (rc) {
            id = ob__req_audit(req, "failed", "opsbot", NULL);
            ob__say_final(req, "[#%lld] failed: cannot build the command (%s)", (long long)id,
                          ob_strerror(rc));
            ob__request_end(req);
            return;
        }
    }
    if (!a->executor && !strcmp(a->name, "diagnose")) {
        ob__diagnose_start(req); /* src/diagnose_run.c */
        return;
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
    /* Durable before anything runs: after a crash the trail says what
     * began. The commit is grouped: every action started in this loop turn
     * is committed by one fsync in flush_cb, then spawned. */
    if (!id) {
        sayf(req, 0, "not run: the audit trail cannot be written (%s)", bot->store_why);
        ob__request_end(req);
        return;
    }
    set_state(req, RQ_RUNNING);
    free(req->running_text);
    if (asprintf(&req->running_text, "[#%lld] running: %s", (long long)id, cmd) < 0)
        req->running_text = NULL;
    eo.on_progress = exec_progress;
    req->start_opts = eo;
    req->next_start = NULL;
    *bot->start_tail = req;
    bot->start_tail = &req->next_start;
    uv_idle_start(&bot->start_kick, start_kick_cb);
}

/* Queued actions make poll return at once: flush_cb (a check handle, after
 * poll) then commits and starts them in this loop turn. */
static void start_kick_cb(uv_idle_t *h)
{
    struct ob_bot *bot = h->data;

    /* Work queued by an idle callback that ran before this one in the
     * same pass has not been flushed yet: keep poll from blocking. */
    if (!bot->start_queue && !bot->say_dirty)
        uv_idle_stop(h);
}

/* Posts the "running:" message (the text progress lines edit in place). */
static void running_post(struct ob_request *req)
{
    if (req->running_held)
        hold_unlink(req);
    if (!req->running_text)
        return;
    req->post_refs++;
    if (ob__post_raw(req->bot, req->ad, req->channel, req->thread, 0, NULL, req->running_text,
                     running_posted, req))
        req->post_refs--;
}

/* An action that ends within RUNNING_HOLD_MS (a read, usually) says
 * "running:" and its result in one message; a longer one gets its
 * "running:" message when the hold ends, or at its first progress line. */
static void running_hold(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;

    if (!req->running_text)
        return;
    req->running_held = true;
    req->hold_until_ms = ob_now_ms() + RUNNING_HOLD_MS;
    req->next_hold = NULL;
    *bot->hold_tail = req;
    bot->hold_tail = &req->next_hold;
    if (!uv_is_active((uv_handle_t *)&bot->hold_timer))
        uv_timer_start(&bot->hold_timer, hold_cb, RUNNING_HOLD_MS, 0);
}

static void hold_unlink(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;

    for (struct ob_request **pp = &bot->held; *pp; pp = &(*pp)->next_hold) {
        if (*pp == req) {
            *pp = req->next_hold;
            if (bot->hold_tail == &req->next_hold)
                bot->hold_tail = pp;
            break;
        }
    }
    req->next_hold = NULL;
    req->running_held = false;
}

/* The list is in deadline order (one hold time for all). */
static void hold_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;
    int64_t now = ob_now_ms();

    while (bot->held && bot->held->hold_until_ms <= now)
        running_post(bot->held); /* unlinks it */
    if (bot->held)
        uv_timer_start(t, hold_cb, (uint64_t)(bot->held->hold_until_ms - now), 0);
}

/* Runs a batch of queued actions once their "started" records are durable
 * (rc 0), or refuses them all when the commit or its fsync failed. */
static void start_queued(struct ob_bot *bot, struct ob_request *req, int rc)
{
    while (req) {
        struct ob_request *next = req->next_start;
        int64_t id;

        req->next_start = NULL;
        if (rc) {
            sayf(req, 0, "not run: the audit trail cannot be written (%s)", bot->store_why);
            ob__request_end(req);
            req = next;
            continue;
        }
        running_hold(req);
        rc = ob_exec_start_ex(bot->exec, &req->prop, &req->start_opts, exec_done, req);
        if (rc) {
            id = ob__req_audit(req, "failed", "opsbot", NULL);
            ob__say_final(req, "[#%lld] failed: %s", (long long)id, ob_strerror(rc));
            ob__request_end(req);
            rc = 0;
        }
        req = next;
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
    ob_metrics_decision(ob_effect_name(dec.effect), dec.rule);
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

void ob__decide(struct ob_request *req)
{
    decide(req);
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

/* "LLM unavailable (timeout after 20s): used the rules", or "". */
static const char *fallback_note(const struct ob_llm_result *lr, char *buf, size_t len)
{
    buf[0] = '\0';
    if (lr && ob_llm_falls_back(lr))
        snprintf(buf, len, "LLM %s (%s): used the rules",
                 lr->outcome == OB_LLM_UNAVAILABLE ? "unavailable" : "answer unusable", lr->why);
    return buf;
}

/* "llm llama3.1@3f9c2a1b7d0e · 812→41 tokens · $0.000146 · 930 ms" */
static const char *llm_how(const struct ob_llm_result *lr, char *buf, size_t len)
{
    snprintf(buf, len, "llm %s@%s · %lld→%lld tokens · $%.6f · %lld ms", lr->model,
             lr->prompt_version, (long long)lr->tokens_in, (long long)lr->tokens_out, lr->cost_usd,
             (long long)lr->latency_ms);
    return buf;
}

/* The LLM's part of an audit record. */
static void llm_detail(cJSON *d, const struct ob_llm_result *lr)
{
    if (!lr)
        return;
    if (ob_llm_falls_back(lr)) {
        cJSON_AddStringToObject(d, "llm_fallback", lr->why);
        cJSON_AddStringToObject(d, "llm_result", lr->result);
    }
    cJSON_AddStringToObject(d, "model", lr->model);
    cJSON_AddStringToObject(d, "prompt_version", lr->prompt_version);
    cJSON_AddNumberToObject(d, "tokens_in", (double)lr->tokens_in);
    cJSON_AddNumberToObject(d, "tokens_out", (double)lr->tokens_out);
    cJSON_AddNumberToObject(d, "cost_usd", lr->cost_usd);
    cJSON_AddNumberToObject(d, "latency_ms", (double)lr->latency_ms);
    cJSON_AddStringToObject(d, "connection", lr->connection);
}

static bool from_llm(const struct ob_proposal *p)
{
    return p->source && !strcmp(p->source, "llm");
}

static void understood(struct ob_request *req, const char *text, const struct ob_llm_result *lr)
{
    cJSON *d = cJSON_CreateObject();
    char prop[512], how[300], note[300];
    int64_t id;

    cJSON_AddStringToObject(d, "text", text);
    cJSON_AddStringToObject(d, "thread", req->thread);
    ob__req_audit(req, "received", NULL, d);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "proposal", ob_proposal_format(&req->prop, prop, sizeof(prop)));
    cJSON_AddItemToObject(d, "params", proposal_json(&req->prop));
    cJSON_AddStringToObject(d, "source", req->prop.source ? req->prop.source : "?");
    if (!from_llm(&req->prop))
        cJSON_AddNumberToObject(d, "confidence", req->prop.confidence);
    llm_detail(d, lr);
    id = ob__req_audit(req, "understood", "opsbot", d);
    if (from_llm(&req->prop) && lr) {
        sayf(req, 0, "[#%lld] understood: %s (%s)", (long long)id, prop,
             llm_how(lr, how, sizeof(how)));
        return;
    }
    fallback_note(lr, note, sizeof(note));
    sayf(req, 0, "[#%lld] understood: %s (%s, confidence %.2f%s%s)", (long long)id, prop,
         req->prop.source ? req->prop.source : "?", req->prop.confidence, note[0] ? "; " : "",
         note);
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

/* ---- the parse seam: the rules, then maybe the LLM ----------------------- */

/* A message waiting for the LLM (counted in ob_bot_inflight). */
struct parse_job {
    struct parse_job *next;
    struct ob_bot *bot;
    struct ob_bundle *bundle; /* reference: the catalog the answer points into */
    struct ob_adapter *ad;
    struct ob_llm_call *call;
    char id[160], platform[32], user[128], channel[128], thread[128], message[128];
    bool has_thread, addressed;
    char *text;
    struct ob_parse_result rules;
};

static void handle_parse(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev,
                         const char *text, const struct ob_parse_result *res,
                         const struct ob_llm_result *lr);

static void thread_key(const struct ob_event *ev, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", ev->platform, ev->channel ? ev->channel : "",
             ev->thread && *ev->thread ? ev->thread : (ev->message ? ev->message : ""));
}

/* Remembers a thread message (redacted, capped) for llm.context_messages. */
static void context_note(struct ob_bot *bot, const struct ob_event *ev, const char *who,
                         const char *text)
{
    const struct ob_llm_config *lc = bot->bundle->llm;
    struct ctx_msg *m;
    char *clean;

    if (!lc || !lc->set.enabled || lc->set.context_messages <= 0)
        return;
    m = &bot->ctx[bot->ctx_next++ % CTX_RING];
    thread_key(ev, m->thread, sizeof(m->thread));
    clean = ob_redact_apply(bot->bundle->red, text, strnlen(text, CTX_TEXT * 2));
    snprintf(m->text, sizeof(m->text), "%s: %s", who, clean ? clean : "");
    free(clean);
}

/* The last n messages of ev's thread, oldest first (pointers into the ring,
 * valid until the next context_note). */
static size_t context_of(struct ob_bot *bot, const struct ob_event *ev, size_t n, const char **out)
{
    char key[300];
    size_t got = 0;

    thread_key(ev, key, sizeof(key));
    for (size_t k = 1; k <= CTX_RING && got < n && k <= bot->ctx_next; k++) {
        const struct ctx_msg *m = &bot->ctx[(bot->ctx_next - k) % CTX_RING];

        if (!strcmp(m->thread, key))
            out[got++] = m->text;
    }
    for (size_t i = 0; i < got / 2; i++) {
        const char *t = out[i];

        out[i] = out[got - 1 - i];
        out[got - 1 - i] = t;
    }
    return got;
}

/* The model asked a question: it goes into the thread (capped and tamed
 * already, redacted on posting); the user's reply is a new message there. */
static void clarify(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev,
                    const char *text, const struct ob_llm_result *lr)
{
    const char *thread = ev->thread && *ev->thread ? ev->thread : ev->message;
    struct ob_request *req = ob__request_new(bot, ad, ev, thread);
    cJSON *d = cJSON_CreateObject();
    int64_t id;

    cJSON_AddStringToObject(d, "text", text);
    cJSON_AddStringToObject(d, "thread", req->thread);
    ob__req_audit(req, "received", NULL, d);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "question", lr->text);
    cJSON_AddStringToObject(d, "source", "llm");
    llm_detail(d, lr);
    id = ob__req_audit(req, "asked", "opsbot", d);
    sayf(req, OB_POST_QUESTION, "[#%lld] %s", (long long)id, lr->text);
    context_note(bot, ev, "opsbot asked", lr->text);
    ob__request_end(req);
}

static void job_event(const struct parse_job *j, struct ob_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = OB_EV_MESSAGE;
    ev->id = j->id;
    ev->platform = j->platform;
    ev->user = j->user;
    ev->channel = j->channel;
    ev->thread = j->has_thread ? j->thread : NULL;
    ev->message = j->message;
    ev->text = j->text;
    ev->text_len = strlen(j->text);
    ev->addressed = j->addressed;
}

/* After a reload the answer's actions point into the old catalog: look
 * them up again in the current one (gone = nothing to do). */
static void rebind(struct ob_parse_result *res, const struct ob_catalog *cat)
{
    for (size_t i = 0; i < res->n; i++) {
        struct ob_proposal *p = &res->proposals[i];
        const char *missing = p->missing ? p->missing->name : NULL;

        if (!p->action)
            continue;
        p->action = ob_catalog_find(cat, p->action->name);
        if (!p->action) {
            memset(res, 0, sizeof(*res));
            res->status = OB_PARSE_NONE;
            return;
        }
        p->missing = missing ? ob_action_param(p->action, missing) : NULL;
    }
}

static void count_llm_call(struct ob_bot *bot, const struct parse_job *j,
                           const struct ob_llm_result *lr)
{
    struct ob_metrics_llm m = {0};
    char user[160];

    ob__qualify(user, sizeof(user), j->platform, j->user);
    m.connection = lr->connection;
    m.model = lr->model;
    if (lr->outcome == OB_LLM_PROPOSAL && lr->parse.n && lr->parse.proposals[0].action)
        m.action = lr->parse.proposals[0].action->name;
    else if (lr->outcome == OB_LLM_PROPOSAL && !strcmp(lr->result, "unknown_action"))
        m.action = "unknown";
    else if (lr->outcome == OB_LLM_CLARIFY)
        m.action = "clarify";
    else if (lr->outcome == OB_LLM_NO_ACTION)
        m.action = "no_action";
    else
        m.action = "none";
    m.channel = j->channel;
    m.team = ob_policy_first_group(bot->bundle->pol, user);
    m.result = lr->result[0] ? lr->result : "error";
    m.tokens_in = lr->tokens_in;
    m.tokens_out = lr->tokens_out;
    m.cost_usd = lr->cost_usd;
    m.seconds = (double)lr->latency_ms / 1000.0;
    ob_metrics_llm_call(&m);
}

static void job_free(struct parse_job *j)
{
    ob_bundle_unref(j->bundle);
    free(j->text);
    free(j);
}

static void job_unlink(struct parse_job *j)
{
    struct ob_bot *bot = j->bot;

    for (struct parse_job **pp = &bot->parses; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            bot->parsing--;
            break;
        }
    }
}

/* The LLM answered (or the fallback took over): the pipeline goes on. */
static void parse_done(void *data, const struct ob_llm_result *lr)
{
    struct parse_job *j = data;
    struct ob_bot *bot = j->bot;
    struct ob_llm_result *r = ob_xmalloc(sizeof(*r));
    struct ob_parse_result *res = &j->rules;
    struct ob_event ev;

    j->call = NULL;
    job_unlink(j);
    *r = *lr;
    count_llm_call(bot, j, r);
    if (ob_llm_falls_back(r))
        ob_warn("llm", "%s: %s: used the rules", r->connection, r->why);
    if (!ob_llm_falls_back(r)) {
        res = &r->parse;
        if (r->outcome != OB_LLM_PROPOSAL) {
            memset(res, 0, sizeof(*res));
            res->status = OB_PARSE_NONE;
        }
    }
    if (j->bundle != bot->bundle)
        rebind(res, bot->bundle->cat);
    if (!bot->stopping) {
        job_event(j, &ev);
        handle_parse(bot, j->ad, &ev, j->text, res, r);
    }
    free(r);
    job_free(j);
    ob__maybe_idle(bot);
}

/* The core's HTTP client (LLM, executors, diagnose), on the bot's lws
 * context (made here when no platform made it yet): one context per
 * process. It is freed before the context (finish_shutdown, ob_bot_free). */
int ob__bot_http(struct ob_bot *bot)
{
    int rc;

    if (bot->http)
        return 0;
    if (!bot->lws) {
        rc = ob_lws_new(&bot->lws, bot->loop);
        if (rc)
            return rc;
    }
    return ob_http_new_on(&bot->http, bot->lws);
}

static int ensure_llm(struct ob_bot *bot)
{
    int rc = 0;

    if (!bot->http)
        rc = ob__bot_http(bot);
    if (!rc && !bot->llm)
        rc = ob_llm_new(&bot->llm, bot->loop, bot->http);
    if (rc)
        ob_error("llm", "cannot start the LLM client: %s; the rules parse", ob_strerror(rc));
    return rc;
}

/* Rules first; the LLM when the mode wants it. Rules-only and the explicit
 * grammar complete right here, as before. */
static void begin_parse(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev,
                        const char *text)
{
    const struct ob_llm_settings *ls = bot->bundle->llm ? &bot->bundle->llm->set : NULL;
    struct ob_parse_result *res = ob_xmalloc(sizeof(*res));
    struct ob_llm_parse_req rq = {0};
    const char *ctx[OB_LLM_CONTEXT_MAX];
    struct parse_job *j;
    int rc;

    ob_intent_parse(bot->bundle->cat, text, res);
    if (!ob_llm_wanted(ls, text, res) || ensure_llm(bot)) {
        handle_parse(bot, ad, ev, text, res, NULL);
        context_note(bot, ev, ev->user, text);
        free(res);
        return;
    }
    j = ob_xcalloc(1, sizeof(*j));
    j->bot = bot;
    j->bundle = ob_bundle_ref(bot->bundle);
    j->ad = ad;
    ob_strlcpy(j->id, ev->id ? ev->id : "", sizeof(j->id));
    ob_strlcpy(j->platform, ev->platform, sizeof(j->platform));
    ob_strlcpy(j->user, ev->user, sizeof(j->user));
    ob_strlcpy(j->channel, ev->channel ? ev->channel : "", sizeof(j->channel));
    j->has_thread = ev->thread && *ev->thread;
    ob_strlcpy(j->thread, j->has_thread ? ev->thread : "", sizeof(j->thread));
    ob_strlcpy(j->message, ev->message ? ev->message : "", sizeof(j->message));
    j->addressed = ev->addressed;
    j->text = ob_xstrdup(text);
    j->rules = *res;
    free(res);
    rq.set = ls;
    rq.cat = j->bundle->cat;
    rq.red = j->bundle->red;
    rq.text = text;
    rq.context = ctx;
    rq.ncontext = context_of(bot, ev, (size_t)ls->context_messages, ctx);
    j->next = bot->parses;
    bot->parses = j;
    bot->parsing++;
    rc = ob_llm_parse(bot->llm, &rq, parse_done, j, &j->call);
    context_note(bot, ev, ev->user, text);
    if (rc) {
        struct ob_llm_result lr = {0};

        lr.outcome = OB_LLM_UNAVAILABLE;
        ob_strlcpy(lr.result, "error", sizeof(lr.result));
        snprintf(lr.why, sizeof(lr.why), "cannot start the call: %s", ob_strerror(rc));
        ob_strlcpy(lr.connection, ls->conn->name, sizeof(lr.connection));
        ob_strlcpy(lr.model, ls->conn->model, sizeof(lr.model));
        ob_strlcpy(lr.prompt_version, ls->prompt_version, sizeof(lr.prompt_version));
        parse_done(j, &lr);
    }
}

static void on_message(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev)
{
    char user[160], *text;
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

    begin_parse(bot, ad, ev, text);
    free(text);
}

/* What the parse produced (rules, or the LLM's validated proposal) goes on
 * through the pipeline: understood -> policy -> ... */
static void handle_parse(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev,
                         const char *text, const struct ob_parse_result *res,
                         const struct ob_llm_result *lr)
{
    const char *thread = ev->thread && *ev->thread ? ev->thread : ev->message;
    struct ob_request *req;
    char note[300], how[300], *msg = NULL;

    fallback_note(lr, note, sizeof(note));
    if (lr && lr->outcome == OB_LLM_CLARIFY) {
        clarify(bot, ad, ev, text, lr);
        return;
    }
    if (lr && lr->outcome == OB_LLM_NO_ACTION) {
        if (ev->addressed &&
            asprintf(&msg, "Nothing for me to do%s%s%s. Say \"help\" to see what I can do.",
                     lr->text[0] ? " (" : "", lr->text, lr->text[0] ? ")" : "") >= 0) {
            reply_plain(bot, ad, ev, msg);
            free(msg);
        }
        return;
    }
    switch (res->status) {
    case OB_PARSE_NONE:
        if (ev->addressed &&
            asprintf(&msg,
                     "I did not understand that as a request. Say \"help\" to see what I can "
                     "do.%s%s%s",
                     note[0] ? " (" : "", note, note[0] ? ")" : "") >= 0) {
            reply_plain(bot, ad, ev, msg);
            free(msg);
        }
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
        if (lr && !ob_llm_falls_back(lr))
            cJSON_AddStringToObject(d, "source", "llm");
        llm_detail(d, lr);
        id = ob__req_audit(req, res->status == OB_PARSE_INVALID ? "invalid" : "ambiguous", "opsbot",
                           d);
        if (lr && !ob_llm_falls_back(lr))
            ob__say_final(req, "[#%lld] not run: %s (%s)", (long long)id, res->message,
                          llm_how(lr, how, sizeof(how)));
        else
            ob__say_final(req, "[#%lld] not run: %s%s%s%s", (long long)id, res->message,
                          note[0] ? " (" : "", note, note[0] ? ")" : "");
        ob__request_end(req);
        break;
    }
    case OB_PARSE_ASK:
        req = ob__request_new(bot, ad, ev, thread);
        req->prop = res->proposals[0];
        understood(req, text, lr);
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
            understood(req, text, lr);
            decide(req);
        }
        break;
    }
}

static void on_event(void *data, struct ob_adapter *ad, const struct ob_event *ev)
{
    struct ob_bot *bot = data;
    char claim[400];
    int rc;

    if (bot->stopping || !ev->platform || !ev->user)
        return;
    if (ob__store_refuses(bot, ad, ev))
        return;
    ob_metrics_event(ev->platform,
                     (const char *[]){"message", "reaction_add", "reaction_remove",
                                      "button"}[ev->kind <= OB_EV_BUTTON ? ev->kind : 0]);
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
        if (!ob__diagnose_on_pick(bot, ad, ev))
            ob__on_vote(bot, ad, ev);
        break;
    }
    ob__maybe_idle(bot);
}

/* ---- lifecycle ---------------------------------------------------------- */

size_t ob_bot_inflight(const struct ob_bot *bot)
{
    return bot->running + bot->posts_in_flight + bot->parsing + bot->diagnosing +
           (bot->exec ? ob_exec_active(bot->exec) : 0);
}

static size_t inflight_cb(void *core)
{
    return ob_bot_inflight(core);
}

/* A second of quiet after work: the last commits go to disk, and the heap
 * a burst grew goes back to the system (glibc keeps freed memory otherwise; opsbot idles most of
 * its life, and its resident size is what a cluster's requests are set by). */
static void tidy_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;

    /* the state file's upkeep, a small step per tick while still quiet
     * (new work restarts this timer with trim_cb, a second away) */
    if (!ob_bot_inflight(bot) && ob_store_tidy(bot->store))
        uv_timer_start(&bot->trim_timer, tidy_cb, TIDY_TICK_MS, 0);
}

static void trim_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;

    /* and what was committed since the last action started goes to disk */
    ob_store_sync(bot->store, NULL, NULL);
    ob_store_release_memory(bot->store);
#ifdef __GLIBC__
    malloc_trim(64 * 1024);
#endif
    tidy_cb(t);
}

void ob__maybe_idle(struct ob_bot *bot)
{
    if (ob_bot_inflight(bot))
        return;
    if (!bot->closed)
        uv_timer_start(&bot->trim_timer, trim_cb, TRIM_AFTER_MS, 0);
    for (size_t i = 0; i < bot->nadapters; i++)
        if (bot->adapters[i]->ops->idle)
            bot->adapters[i]->ops->idle(bot->adapters[i]);
}

/* The requests of batches still waiting for their fsync are being freed
 * (shutdown): the batches stay until their callback, empty. */
static void forget_syncing(struct ob_bot *bot)
{
    for (struct start_batch *b = bot->syncing; b; b = b->next)
        b->reqs = NULL;
}

/* The fsync that covers a batch's "started" records has returned. */
static void batch_synced(void *data, int status)
{
    struct start_batch *b = data;
    struct ob_bot *bot = b->bot;

    for (struct start_batch **pp = &bot->syncing; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    if (status)
        ob__store_failed(bot, status, "the durable flush before an action");
    start_queued(bot, b->reqs, status);
    free(b);
}

/* The work of the loop turn that ends here (the time since the last one,
 * less what the loop spent waiting in poll): opsbot_loop_busy_seconds. */
static void loop_busy(struct ob_bot *bot)
{
    uint64_t now, idle;

    if (!bot->loop_metrics)
        return;
    now = uv_hrtime();
    idle = uv_metrics_idle_time(bot->loop);
    if (bot->turn_ns && now - bot->turn_ns >= idle - bot->turn_idle_ns)
        ob_metrics_loop_busy((double)((now - bot->turn_ns) - (idle - bot->turn_idle_ns)) / 1e9);
    bot->turn_ns = now;
    bot->turn_idle_ns = idle;
}

/* Starts a batch of actions once their "started" records are durable: an
 * fsync on the thread pool in the daemon (the loop goes on meanwhile), at
 * once when the store is synchronous or the commit already failed. */
static void start_batch(struct ob_bot *bot, struct ob_request *reqs, int rc)
{
    struct start_batch *b;

    if (rc || !ob_store_is_async(bot->store)) {
        start_queued(bot, reqs, rc);
        return;
    }
    b = ob_xcalloc(1, sizeof(*b));
    b->bot = bot;
    b->reqs = reqs;
    if (ob_store_sync(bot->store, batch_synced, b)) {
        free(b);
        start_queued(bot, reqs, OB_ESTORE);
        return;
    }
    b->next = bot->syncing;
    bot->syncing = b;
}

/* Once per loop turn: commit what the turn wrote, start what waits for
 * that commit, and post what the turn's requests said. */
static void flush_cb(uv_check_t *c)
{
    struct ob_bot *bot = c->data;
    struct ob_request *reqs = bot->start_queue;
    int rc;

    loop_busy(bot);
    rc = ob_store_flush(bot->store);
    if (rc)
        ob__store_failed(bot, rc, reqs ? "the durable flush before an action" : "commit");
    if (reqs) {
        bot->start_queue = NULL;
        bot->start_tail = &bot->start_queue;
        start_batch(bot, reqs, rc);
    }
    say_flush_all(bot);
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

/* An adapter cannot go on (e.g. its token was rejected): say why, stop,
 * and make the process exit non-zero. */
static void fatal_cb(void *core, const char *why)
{
    struct ob_bot *bot = core;

    ob_error("pipeline", "%s", why);
    bot->exit_status = 1;
    ob_bot_shutdown(bot);
}

/* Network executors (prometheus, loki, kubernetes, http) need the HTTP
 * client: created when an action binds one. */
static void exec_http(struct ob_bot *bot)
{
    const struct ob_catalog *cat = bot->bundle->cat;
    int rc = 0;

    for (size_t i = 0; cat && i < cat->n && !bot->http; i++) {
        if (ob_exec_binding_is_network(cat->actions[i].executor))
            rc = ob__bot_http(bot);
    }
    if (rc)
        ob_error("exec", "cannot start the HTTP client: %s", ob_strerror(rc));
    ob_exec_set_http(bot->exec, bot->http);
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
    /* commits stop waiting for the disk; actions wait for their fsync */
    ob_store_attach_loop(bot->store, loop);
    rc = ob_exec_new(&bot->exec, loop, b->cfg, &b->exec_opts);
    if (rc)
        goto fail;
    exec_http(bot);
    bot->start_tail = &bot->start_queue;
    bot->saying_tail = &bot->saying;
    /* idle time in poll, for opsbot_loop_busy_seconds (libuv >= 1.39) */
    bot->loop_metrics = uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0;
    uv_idle_init(loop, &bot->start_kick);
    bot->start_kick.data = bot;
    uv_check_init(loop, &bot->flush_check);
    bot->flush_check.data = bot;
    bot->open_handles = 7; /* flush_check, start_kick and the five timers */
    bot->hold_tail = &bot->held;
    uv_timer_init(loop, &bot->hold_timer);
    bot->hold_timer.data = bot;
    uv_timer_init(loop, &bot->trim_timer);
    bot->trim_timer.data = bot;
    uv_unref((uv_handle_t *)&bot->trim_timer); /* never what keeps the loop alive */
    uv_check_start(&bot->flush_check, flush_cb);
    uv_unref((uv_handle_t *)&bot->flush_check);
    uv_timer_init(loop, &bot->expiry_timer);
    bot->expiry_timer.data = bot;
    uv_timer_init(loop, &bot->grace_timer);
    bot->grace_timer.data = bot;
    uv_timer_init(loop, &bot->release_timer);
    bot->release_timer.data = bot;
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
    ad->fatal = fatal_cb;
    bot->adapters[bot->nadapters++] = ad;
    return 0;
}

/* Creates the adapters of every platform configured under `platforms:`
 * (the console is started by `opsbot console` itself). */
static int create_platforms(struct ob_bot *bot)
{
    const cJSON *plat =
                    cJSON_GetObjectItemCaseSensitive(ob_config_root(bot->bundle->cfg), "platforms"),
                *p;
    struct ob_platform_env env = {0};
    int rc;

    cJSON_ArrayForEach(p, plat)
    {
        const struct ob_platform *pf = ob_platform_find(p->string);
        struct ob_adapter *ad = NULL;

        if (!pf)
            continue;
        if (pf->needs_lws && !bot->lws) {
            rc = ob_lws_new(&bot->lws, bot->loop);
            if (rc) {
                ob_error("pipeline", "cannot start libwebsockets: %s", ob_strerror(rc));
                return rc;
            }
        }
        if (pf->needs_http && !bot->http) {
            rc = ob__bot_http(bot);
            if (rc) {
                ob_error("pipeline", "cannot start the HTTP client: %s", ob_strerror(rc));
                return rc;
            }
        }
        env.loop = bot->loop;
        env.lws = bot->lws;
        env.http = bot->http;
        env.red = bot->bundle->red;
        env.cfg = bot->bundle->cfg;
        rc = pf->create(&ad, &env, p);
        if (rc) {
            ob_error("pipeline", "cannot create the %s adapter: %s", pf->name, ob_strerror(rc));
            return rc;
        }
        rc = ob_bot_add_adapter(bot, ad);
        if (rc)
            return rc;
    }
    return 0;
}

size_t ob_bot_adapter_count(const struct ob_bot *bot)
{
    return bot->nadapters;
}

/* /readyz: configuration loaded (we exist), store open, every adapter
 * that can tell says it is connected. */
static bool ready_cb(void *data, char *why, size_t len)
{
    struct ob_bot *bot = data;

    if (!bot->store) {
        snprintf(why, len, "the state store is not open");
        return false;
    }
    if (bot->stopping) {
        snprintf(why, len, "shutting down");
        return false;
    }
    for (size_t i = 0; i < bot->nadapters; i++) {
        struct ob_adapter *ad = bot->adapters[i];

        if (ad->ops->ready && !ad->ops->ready(ad)) {
            snprintf(why, len, "adapter %s is not connected", ad->ops->name);
            return false;
        }
    }
    return true;
}

static int start_metrics(struct ob_bot *bot)
{
    const char *listen = bot->bundle->metrics_listen;
    int rc;

    if (!listen || bot->metrics)
        return 0;
    if (!bot->lws) {
        rc = ob_lws_new(&bot->lws, bot->loop);
        if (rc) {
            ob_error("metrics", "cannot start libwebsockets: %s", ob_strerror(rc));
            return rc;
        }
    }
    rc = ob_metrics_server_new(&bot->metrics, bot->lws, listen, ready_cb, bot);
    if (rc) {
        ob_error("metrics", "cannot listen on %s: %s", listen, ob_strerror(rc));
        return rc;
    }
    ob_info("metrics", "serving /metrics, /healthz and /readyz on port %d",
            ob_metrics_server_port(bot->metrics));
    return 0;
}

int ob_bot_metrics_port(const struct ob_bot *bot)
{
    return bot->metrics ? ob_metrics_server_port(bot->metrics) : -1;
}

int ob_bot_start(struct ob_bot *bot)
{
    int prc = create_platforms(bot);

    if (prc)
        return prc;
    prc = start_metrics(bot);
    if (prc)
        return prc;
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
    ob__report_unfinished(bot);
    /* what start-up parsed and dropped (YAML trees, the catalog's and the
     * policy's drafts) goes back to the system after the same quiet second
     * as a burst's: ~0.3 MB of heap a bot that is never asked anything
     * would otherwise keep for its whole life */
    if (!ob_bot_inflight(bot))
        uv_timer_start(&bot->trim_timer, trim_cb, TRIM_AFTER_MS, 0);
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
    if (!nb->metrics_listen != !bot->bundle->metrics_listen ||
        (nb->metrics_listen && strcmp(nb->metrics_listen, bot->bundle->metrics_listen)))
        ob_warn("config", "metrics.listen changed: takes effect at the next start");
    ob_log_set_redactor(nb->red);
    ob_log_set_level(nb->log_level);
    ob_bundle_unref(bot->bundle);
    bot->bundle = nb;
    exec_http(bot);
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
        bot->open_handles++;
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
    bot->start_queue = NULL; /* queued ones are RQ_RUNNING: freed below */
    bot->start_tail = &bot->start_queue;
    forget_syncing(bot);
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

/* The adapters (each frees its HTTP client on the shared context). */
static void release_adapters(struct ob_bot *bot)
{
    for (size_t i = 0; i < bot->nadapters; i++)
        bot->adapters[i]->ops->free(bot->adapters[i]);
    bot->nadapters = 0;
}

/* The lws context, once nothing on it is left (adapters, bot->http). */
static void release_lws(struct ob_bot *bot)
{
    if (bot->lws) {
        ob_lws_free(bot->lws); /* the loop runs on until lws has closed */
        bot->lws = NULL;
    }
}

/* Frees the adapters, then the lws context (bot->http went before, in
 * finish_shutdown). Not from inside a transport callback: release_cb runs
 * it from the bot's own timer. */
static void release_transport(struct ob_bot *bot)
{
    release_adapters(bot);
    release_lws(bot);
}

/* Every uv handle embedded in the bot closes through here: uv_close needs
 * the memory until the callback, so the bot is freed by the last one when
 * ob_bot_free came first (a bot freed before its loop drained). */
static void handle_closed(uv_handle_t *h)
{
    struct ob_bot *bot = h->data;

    if (--bot->open_handles == 0 && bot->free_pending)
        free(bot);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, handle_closed);
}

/* The check, the timers (the release timer only with release) and the
 * signal handles. */
static void close_handles(struct ob_bot *bot, bool release)
{
    close_handle((uv_handle_t *)&bot->flush_check);
    close_handle((uv_handle_t *)&bot->start_kick);
    close_handle((uv_handle_t *)&bot->expiry_timer);
    close_handle((uv_handle_t *)&bot->grace_timer);
    close_handle((uv_handle_t *)&bot->hold_timer);
    close_handle((uv_handle_t *)&bot->trim_timer);
    if (bot->signals) {
        close_handle((uv_handle_t *)&bot->sig_hup);
        close_handle((uv_handle_t *)&bot->sig_term);
        close_handle((uv_handle_t *)&bot->sig_int);
    }
    if (release)
        close_handle((uv_handle_t *)&bot->release_timer);
}

static void release_cb(uv_timer_t *t)
{
    struct ob_bot *bot = t->data;

    if (bot->posts_in_flight)
        return; /* post_done re-arms the timer when the last one lands */
    release_transport(bot);
    close_handle((uv_handle_t *)t);
}

static void finish_shutdown(struct ob_bot *bot)
{
    if (bot->closed)
        return;
    bot->closed = true;
    /* Diagnoses end with the process (before their requests are freed). */
    ob__diagnose_shutdown(bot);
    forget_syncing(bot);
    /* Questions nobody answered end with the process. */
    for (struct ob_request *r = bot->requests, *next; r; r = next) {
        next = r->next;
        ob__request_free(r);
    }
    /* Messages still waiting for the LLM end with the process. */
    while (bot->parses) {
        struct parse_job *j = bot->parses;

        ob_llm_cancel(j->call);
        job_unlink(j);
        job_free(j);
    }
    ob_llm_free(bot->llm);
    bot->llm = NULL;
    ob_metrics_server_free(bot->metrics);
    bot->metrics = NULL;
    /* Adapters and the lws context go once every post is delivered (an lws
     * context keeps the loop alive; adapters may still be draining). */
    uv_timer_start(&bot->release_timer, release_cb, 0, 0);
    ob_store_flush(bot->store);
    ob_exec_free(bot->exec);
    bot->exec = NULL;
    if (bot->http) {
        ob_http_free(bot->http);
        bot->http = NULL;
    }
    close_handles(bot, false);
}

void ob_bot_free(struct ob_bot *bot)
{
    if (!bot)
        return;
    release_adapters(bot); /* when the loop was never run to the end */
    /* Posts the adapters dropped unanswered as they were freed: their
     * callbacks hear so (requests waiting for them are freed there). */
    while (bot->post_list) {
        struct post_ctx *pc = bot->post_list;

        bot->post_list = pc->next;
        if (pc->cb)
            pc->cb(pc->data, -ECANCELED, NULL);
        free(pc);
    }
    bot->posts_in_flight = 0;
    ob__diagnose_shutdown(bot);
    /* Freed before the shutdown finished (during the grace period, or
     * never stopped): running children are killed without their callbacks,
     * which would find the bot gone. Their "started" records stay without
     * an end, so the next start reports them as outcome_unknown. */
    if (bot->exec) {
        ob_exec_free(bot->exec);
        bot->exec = NULL;
    }
    if (bot->http) {
        ob_http_free(bot->http);
        bot->http = NULL;
    }
    release_lws(bot); /* after everything that used it */
    forget_syncing(bot);
    while (bot->requests) {
        struct ob_request *r = bot->requests;

        bot->requests = r->next;
        r->post_refs = 0; /* the posts' callbacks were answered above */
        ob_bundle_unref(r->bundle);
        say_unlink(r);
        if (r->running_held)
            hold_unlink(r);
        request_mem_free(r);
    }
    close_handles(bot, true);
    while (bot->approvals) {
        struct pending *pa = bot->approvals;

        bot->approvals = pa->next;
        free(pa);
    }
    ob_store_close(bot->store); /* drops the fsync callbacks still waiting */
    while (bot->syncing) {
        struct start_batch *b = bot->syncing;

        bot->syncing = b->next;
        free(b);
    }
    ob_log_set_redactor(NULL);
    ob_bundle_unref(bot->bundle);
    free(bot->config_path);
    /* Freed before its loop drained (tests): the handles above close on
     * the caller's next uv_run, and the memory goes with the last one. */
    if (bot->open_handles == 0)
        free(bot);
    else
        bot->free_pending = true;
}

int ob_bot_exit_status(const struct ob_bot *bot)
{
    return bot->exit_status;
}
