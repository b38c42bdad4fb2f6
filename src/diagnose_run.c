/* Diagnose and suggest in the pipeline: a `diagnose` request the policy
 * allowed gathers its evidence (each query a read action decided by the
 * policy for the requester and audited under the diagnosis id, in
 * parallel, within the budget), posts the evidence, the reading (and,
 * with an LLM, a narrative and a re-ranking among the rule-made
 * proposals only) and up to three proposals. A pick (reaction 1️⃣ 2️⃣ 3️⃣ or a
 * button) becomes a new request of the picker through the normal policy
 * and approval flow, linked to the diagnosis in the audit.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/metrics.h"
#include "opsbot/util.h"

#define KEEP_RUNS 32         /* answered diagnoses kept for picks */
#define EV_LINE 1200         /* one evidence line in the thread */
#define EV_AUDIT_OUTPUT 1024 /* bytes of an evidence answer in its audit record */
#define MAX_PICKS 32
#define LLM_RESPONSE_CAP (256 * 1024)

static const char *const keycaps[] = {"1\xef\xb8\x8f\xe2\x83\xa3", "2\xef\xb8\x8f\xe2\x83\xa3",
                                      "3\xef\xb8\x8f\xe2\x83\xa3"};
static const char *const keynames[] = {"one", "two", "three"};

enum ev_state { EVS_PENDING, EVS_OK, EVS_FAILED, EVS_DENIED, EVS_MISSING };

struct dx_run;

struct dx_ev {
    struct dx_run *run;
    const struct ob_dx_evidence_def *def;
    struct ob_proposal prop;
    enum ev_state state;
    bool started;
    char line[EV_LINE];
    cJSON *data;
};

struct dx_run {
    struct dx_run *next;
    struct ob_bot *bot;
    struct ob_bundle *bundle; /* reference: the playbook and catalog used */
    struct ob_adapter *ad;
    struct ob_request *req; /* the diagnose request; NULL once it ended */
    char id[32];            /* the diagnosis id: the request's id */
    char platform[32], user[160], channel[128], thread[128];
    char service[256], env[256], symptom[256], text[512];
    struct dx_ev ev[OB_DX_MAX_EVIDENCE];
    size_t nev;
    size_t pending; /* executor callbacks still due */
    size_t waiting; /* evidence without an answer yet */
    bool answered;  /* the evidence phase is over */
    bool finished;  /* the proposals are posted (picks taken) */
    bool counted;   /* in bot->diagnosing */
    uv_timer_t timer;
    bool timer_open;
    bool dead;     /* free when the timer has closed and no post points here */
    int post_refs; /* posts whose callback still points here */
    uint64_t t0;
    int64_t answered_at_ms;
    int64_t last_ev_audit;
    struct ob_dx_result res;
    char evidence_text[8192];
    /* the LLM call */
    struct ob_http_call *llm_call;
    char *llm_url, *llm_body, *llm_auth;
    uint64_t llm_t0;
    /* picks */
    struct ob_msgref pick_msg;
    bool has_pick_msg;
    int64_t picks_until_ms;
    char picked[MAX_PICKS][170];
    size_t npicked;
};

/* ---- bookkeeping ------------------------------------------------------------- */

static void run_release(struct dx_run *r)
{
    for (size_t i = 0; i < r->nev; i++)
        cJSON_Delete(r->ev[i].data);
    ob_dx_result_release(&r->res);
    free(r->llm_url);
    free(r->llm_body);
    free(r->llm_auth);
    ob_bundle_unref(r->bundle);
    free(r);
}

static void maybe_release(struct dx_run *r)
{
    if (r->dead && !r->timer_open && r->post_refs == 0)
        run_release(r);
}

static void timer_closed(uv_handle_t *h)
{
    struct dx_run *r = h->data;

    r->timer_open = false;
    maybe_release(r);
}

static void close_timer(struct dx_run *r)
{
    if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, timer_closed);
}

/* Answered diagnoses beyond KEEP_RUNS (oldest first) are forgotten. */
static void prune(struct ob_bot *bot)
{
    size_t n = 0;

    for (struct dx_run **pp = &bot->diagnoses; *pp;) {
        struct dx_run *r = *pp;

        if (r->finished && !r->pending && !r->timer_open && !r->post_refs && ++n > KEEP_RUNS) {
            *pp = r->next;
            run_release(r);
            continue;
        }
        pp = &r->next;
    }
}

static void uncount(struct dx_run *r)
{
    if (r->counted) {
        r->counted = false;
        r->bot->diagnosing--;
    }
}

/* ---- audit and posting ------------------------------------------------------------ */

static int64_t run_audit(struct dx_run *r, const char *step, const char *action, cJSON *detail)
{
    struct ob_request tmp = {0};

    if (!detail)
        detail = cJSON_CreateObject();
    if (!cJSON_GetObjectItemCaseSensitive(detail, "diagnosis"))
        cJSON_AddStringToObject(detail, "diagnosis", r->id);
    tmp.bot = r->bot;
    return ob__audit(r->bot, r->req ? r->req : &tmp, r->id, step, "opsbot", r->platform, r->channel,
                     action, detail);
}

static void __attribute__((format(printf, 3, 4)))
run_say(struct dx_run *r, unsigned flags, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        return;
    ob__post_raw(r->bot, r->ad, r->channel, r->thread, flags, NULL, text, NULL, NULL);
    free(text);
}

/* ---- evidence ------------------------------------------------------------------- */

static int count_cb(void *data, const char *user, const char *action, int64_t since_ms)
{
    return ob_store_count(data, user, action, since_ms);
}

static cJSON *params_json(const struct ob_proposal *p)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < p->nparams; i++)
        cJSON_AddStringToObject(o, p->params[i].name, p->params[i].value);
    return o;
}

static void evidence_complete(struct dx_run *r);

/* exec jobs (the demo's fleet.sh --json) answer with a JSON object. */
static cJSON *exec_data(const struct ob_exec_result *res)
{
    const char *s = res->output;
    cJSON *o;

    if (!s || res->truncated)
        return NULL;
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    if (*s != '{')
        return NULL;
    o = cJSON_Parse(s);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void ev_done(void *data, const struct ob_exec_result *res)
{
    struct dx_ev *e = data;
    struct dx_run *r = e->run;
    struct ob_bundle *b = r->bundle;
    bool ok = !res->err && !res->term_signal && !res->timed_out && res->exit_status == 0;
    cJSON *d = cJSON_CreateObject();
    char *clean =
        ob_redact_apply(b->red, res->output ? res->output : "", res->output ? res->output_len : 0);
    char dur[32];

    r->pending--;
    ob_duration_format(res->duration_ms, dur, sizeof(dur));
    cJSON_AddStringToObject(d, "evidence", e->def->name);
    cJSON_AddItemToObject(d, "params", params_json(&e->prop));
    cJSON_AddStringToObject(d, "command", res->command);
    if (res->status[0])
        cJSON_AddStringToObject(d, "status", res->status);
    cJSON_AddNumberToObject(d, "exit", (double)res->exit_status);
    if (res->timed_out)
        cJSON_AddTrueToObject(d, "timed_out");
    if (res->err)
        cJSON_AddStringToObject(d, "error", ob_strerror(res->err));
    cJSON_AddNumberToObject(d, "duration_ms", (double)res->duration_ms);
    if (clean) {
        if (strlen(clean) > EV_AUDIT_OUTPUT)
            clean[EV_AUDIT_OUTPUT] = '\0';
        cJSON_AddStringToObject(d, "output", clean);
    }
    free(clean);
    if (r->answered) {
        /* arrived after the budget: recorded, not shown */
        cJSON_AddTrueToObject(d, "late");
        run_audit(r, "evidence_late", e->prop.action->name, d);
        prune(r->bot);
        return;
    }
    e->data = res->data ? cJSON_Duplicate(res->data, true) : exec_data(res);
    if (ok) {
        char sum[EV_LINE];

        e->state = EVS_OK;
        if (ob_dx_evidence_summary(e->data, sum, sizeof(sum)))
            ob_strlcpy(e->line, sum, sizeof(e->line));
        else
            snprintf(e->line, sizeof(e->line), "%s", res->status[0] ? res->status : "done");
    } else {
        e->state = EVS_FAILED;
        cJSON_Delete(e->data);
        e->data = NULL;
        if (res->err)
            snprintf(e->line, sizeof(e->line), "failed: %s", ob_strerror(res->err));
        else if (res->timed_out)
            snprintf(e->line, sizeof(e->line), "timed out after %s", dur);
        else if (res->status[0])
            snprintf(e->line, sizeof(e->line), "failed: %s", res->status);
        else
            snprintf(e->line, sizeof(e->line), "failed: exit %lld", (long long)res->exit_status);
    }
    if (e->data)
        cJSON_AddItemToObject(d, "data", cJSON_Duplicate(e->data, true));
    r->last_ev_audit = run_audit(r, ok ? "evidence" : "evidence_failed", e->prop.action->name, d);
    if (--r->waiting == 0)
        evidence_complete(r);
}

static void budget_cb(uv_timer_t *t)
{
    struct dx_run *r = t->data;

    if (!r->answered)
        evidence_complete(r);
}

/* Decides one evidence query for the requester and starts it. */
static void ev_start(struct dx_run *r, struct dx_ev *e)
{
    struct ob_bot *bot = r->bot;
    struct ob_policy_request pr = {0};
    struct ob_decision dec;
    struct ob_exec_start_opts eo = {.cfg = r->bundle->cfg, .red = r->bundle->red};
    cJSON *d;
    int rc;

    pr.user = r->user;
    pr.platform = r->platform;
    pr.channel = r->channel;
    pr.action = e->prop.action->name;
    pr.params = e->prop.params;
    pr.nparams = e->prop.nparams;
    pr.is_read = true;
    pr.now_ms = ob_now_ms();
    ob_policy_decide(r->bundle->pol, &pr, count_cb, bot->store, &dec);
    ob_metrics_decision(ob_effect_name(dec.effect), dec.rule);
    if (dec.effect != OB_EFFECT_ALLOW) {
        d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "evidence", e->def->name);
        cJSON_AddItemToObject(d, "params", params_json(&e->prop));
        cJSON_AddStringToObject(d, "effect", ob_effect_name(dec.effect));
        cJSON_AddStringToObject(d, "rule", dec.rule);
        cJSON_AddStringToObject(d, "where", dec.where);
        cJSON_AddStringToObject(d, "reason", dec.reason);
        r->last_ev_audit = run_audit(r, "evidence_denied", e->prop.action->name, d);
        e->state = EVS_DENIED;
        snprintf(e->line, sizeof(e->line), "not allowed for you (%s — rule %s)",
                 dec.effect == OB_EFFECT_APPROVE ? "it would need an approval; evidence never asks"
                                                 : dec.reason,
                 dec.rule);
        return;
    }
    ob_store_count_note(bot->store, r->user, e->prop.action->name, pr.now_ms);
    r->pending++;
    r->waiting++;
    e->started = true;
    rc = ob_exec_start_ex(bot->exec, &e->prop, &eo, ev_done, e);
    if (rc) {
        r->pending--;
        r->waiting--;
        e->started = false;
        e->state = EVS_FAILED;
        snprintf(e->line, sizeof(e->line), "could not start: %s", ob_strerror(rc));
        d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "evidence", e->def->name);
        cJSON_AddStringToObject(d, "error", ob_strerror(rc));
        r->last_ev_audit = run_audit(r, "evidence_failed", e->prop.action->name, d);
    }
}

/* ---- the answer -------------------------------------------------------------------- */

static void finish_answer(struct dx_run *r, const char *llm_line, const struct ob_dx_llm_answer *la,
                          cJSON *llm_detail);

static void evidence_lines(struct dx_run *r, char *buf, size_t len, size_t *answered)
{
    size_t o = 0;

    buf[0] = '\0';
    *answered = 0;
    for (size_t i = 0; i < r->nev && o + 1 < len; i++) {
        struct dx_ev *e = &r->ev[i];
        char indented[EV_LINE * 2];
        size_t k = 0;

        *answered += e->state == EVS_OK;
        /* continuation lines (top log lines) are indented */
        for (const char *s = e->line; *s && k + 6 < sizeof(indented); s++) {
            indented[k++] = *s;
            if (*s == '\n') {
                memcpy(indented + k, "    ", 4);
                k += 4;
            }
        }
        indented[k] = '\0';
        o += (size_t)snprintf(buf + o, len - o, "%s• %s: %s", o ? "\n" : "", e->def->label,
                              indented);
        if (o >= len)
            o = len - 1;
    }
}

static void llm_done(void *data, const struct ob_http_resp *resp);

/* Starts the narrative / re-ranking call; false when there is none. */
static bool llm_start(struct dx_run *r)
{
    const struct ob_dx_settings *set = ob_diagnose_settings(r->bundle->diag);
    const struct ob_llm_conn *c = set->conn;
    struct ob_bot *bot = r->bot;
    struct ob_http_req req = {0};
    const char *headers[3];
    cJSON *body, *msgs, *m, *tools, *fn, *params, *props, *x;
    char *user, *clean;
    size_t budget;
    int rc;

    if (!set->narrative || !c)
        return false;
    if (ob__bot_http(bot)) {
        ob_warn("diagnose", "cannot start the HTTP client: no narrative");
        return false;
    }
    /* bytes for the evidence: the token budget less the answer and the
     * prompt, at about 4 bytes per token */
    budget = (size_t)(set->token_budget - set->max_tokens) * 4;
    budget = budget > strlen(set->prompt) + 600 ? budget - strlen(set->prompt) - 600 : 256;
    user = ob_dx_llm_prompt(r->service, r->env, r->symptom[0] ? r->symptom : NULL, r->evidence_text,
                            &r->res, budget);
    clean = user ? ob_redact_apply(r->bundle->red, user, strlen(user)) : NULL;
    free(user);
    if (!clean)
        return false;
    body = cJSON_CreateObject();
    if (c->api == OB_LLM_API_OPENAI || (c->api_version && !strcmp(c->api_version, "v1")))
        cJSON_AddStringToObject(body, "model", c->model);
    msgs = cJSON_AddArrayToObject(body, "messages");
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", set->prompt);
    cJSON_AddItemToArray(msgs, m);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", clean);
    cJSON_AddItemToArray(msgs, m);
    free(clean);
    tools = cJSON_AddArrayToObject(body, "tools");
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", "function");
    fn = cJSON_AddObjectToObject(m, "function");
    cJSON_AddStringToObject(fn, "name", "diagnosis");
    cJSON_AddStringToObject(fn, "description",
                            "Explain the evidence in at most three sentences and rank the "
                            "numbered proposals, best first. Only the given proposals exist.");
    params = cJSON_AddObjectToObject(fn, "parameters");
    cJSON_AddStringToObject(params, "type", "object");
    props = cJSON_AddObjectToObject(params, "properties");
    x = cJSON_AddObjectToObject(props, "narrative");
    cJSON_AddStringToObject(x, "type", "string");
    cJSON_AddStringToObject(x, "description", "What the evidence says, from the evidence alone.");
    x = cJSON_AddObjectToObject(props, "ranking");
    cJSON_AddStringToObject(x, "type", "array");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "items"), "type", "integer");
    cJSON_AddStringToObject(x, "description", "Proposal numbers, best first.");
    x = cJSON_AddArrayToObject(params, "required");
    cJSON_AddItemToArray(x, cJSON_CreateString("narrative"));
    cJSON_AddItemToArray(x, cJSON_CreateString("ranking"));
    cJSON_AddFalseToObject(params, "additionalProperties");
    cJSON_AddItemToArray(tools, m);
    cJSON_AddStringToObject(body, "tool_choice", "required");
    cJSON_AddNumberToObject(body, "max_tokens", set->max_tokens);
    cJSON_AddNumberToObject(body, "temperature", 0);
    r->llm_body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    r->llm_url = ob_llm_url(c);
    if (c->api_key && *c->api_key &&
        asprintf(&r->llm_auth,
                 c->api == OB_LLM_API_AZURE ? "api-key: %s" : "Authorization: Bearer %s",
                 c->api_key) < 0)
        r->llm_auth = NULL;
    if (!r->llm_body || !r->llm_url)
        return false;
    headers[0] = "Content-Type: application/json";
    headers[1] = r->llm_auth;
    headers[2] = NULL;
    req.method = "POST";
    req.url = r->llm_url;
    req.headers = headers;
    req.body = r->llm_body;
    req.body_len = strlen(r->llm_body);
    req.timeout_ms = set->llm_timeout_ms;
    req.max_response = LLM_RESPONSE_CAP;
    r->llm_t0 = uv_now(bot->loop);
    rc = ob_http_request(bot->http, &req, llm_done, r, &r->llm_call);
    if (rc) {
        r->llm_call = NULL;
        ob_warn("diagnose", "cannot call the LLM: %s", ob_strerror(rc));
        return false;
    }
    return true;
}

static void llm_done(void *data, const struct ob_http_resp *resp)
{
    struct dx_run *r = data;
    const struct ob_dx_settings *set = ob_diagnose_settings(r->bundle->diag);
    const struct ob_llm_conn *c = set->conn;
    struct ob_dx_llm_answer la;
    struct ob_metrics_llm m = {0};
    cJSON *root = NULL, *d = cJSON_CreateObject();
    const cJSON *msg, *call, *usage;
    const char *tool = NULL;
    char *args = NULL, line[600], why[300] = "";
    int64_t tin = 0, tout = 0, ms = (int64_t)(uv_now(r->bot->loop) - r->llm_t0);
    double cost;
    bool have = false;

    r->llm_call = NULL;
    memset(&la, 0, sizeof(la));
    if (resp->err || resp->status != 200) {
        snprintf(why, sizeof(why), "%s",
                 resp->err == OB_ETIMEOUT ? "timeout"
                 : resp->status           ? "an HTTP error"
                                          : "no answer");
        if (resp->status && resp->status != 200)
            snprintf(why, sizeof(why), "HTTP %ld", resp->status);
    } else {
        root = cJSON_ParseWithLength(resp->body, resp->body_len);
        msg = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0), "message");
        call = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), 0), "function");
        usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
        {
            double a =
                cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens"));
            double b =
                cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens"));

            tin = isfinite(a) && a > 0 && a < 1e12 ? (int64_t)a : 0;
            tout = isfinite(b) && b > 0 && b < 1e12 ? (int64_t)b : 0;
        }
        if (call) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(call, "name");
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(call, "arguments");

            tool = cJSON_IsString(n) ? n->valuestring : "";
            args = cJSON_IsString(a)   ? ob_xstrdup(a->valuestring)
                   : cJSON_IsObject(a) ? cJSON_PrintUnformatted(a)
                                       : NULL;
        } else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "content"))) {
            /* servers that ignore tool_choice: one JSON object in the content */
            cJSON *j = cJSON_Parse(cJSON_GetObjectItemCaseSensitive(msg, "content")->valuestring);
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "arguments");

            if (cJSON_IsString(n) && cJSON_IsObject(a)) {
                tool = "diagnosis";
                if (strcmp(n->valuestring, "diagnosis"))
                    tool = "(other)";
                args = cJSON_PrintUnformatted(a);
            } else if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "narrative")) {
                tool = "diagnosis";
                args = cJSON_PrintUnformatted(j);
            }
            cJSON_Delete(j);
        }
        if (!tool)
            snprintf(why, sizeof(why), "no tool call in the answer");
        else if (ob_dx_llm_read(tool, args, &r->res, &la))
            snprintf(why, sizeof(why), "%s", la.ignored);
        else
            have = true;
    }
    cost = ob_llm_cost(c, tin, tout);
    m.connection = c->name;
    m.model = c->model;
    m.action = "diagnose";
    m.channel = r->channel;
    m.team = ob_policy_first_group(r->bundle->pol, r->user);
    m.result = have ? "ok" : resp->err == OB_ETIMEOUT ? "timeout" : "error";
    m.tokens_in = tin;
    m.tokens_out = tout;
    m.cost_usd = cost;
    m.seconds = (double)ms / 1000.0;
    ob_metrics_llm_call(&m);
    cJSON_AddStringToObject(d, "connection", c->name);
    cJSON_AddStringToObject(d, "model", c->model);
    cJSON_AddStringToObject(d, "prompt_version", set->prompt_version);
    cJSON_AddNumberToObject(d, "tokens_in", (double)tin);
    cJSON_AddNumberToObject(d, "tokens_out", (double)tout);
    cJSON_AddNumberToObject(d, "cost_usd", cost);
    cJSON_AddNumberToObject(d, "latency_ms", (double)ms);
    cJSON_AddNumberToObject(d, "token_budget", set->token_budget);
    if (why[0]) {
        cJSON_AddStringToObject(d, "llm_unusable", why);
        ob_warn("diagnose", "%s: LLM answer not used: %s", r->id, why);
    }
    if (la.ignored[0]) {
        cJSON_AddStringToObject(d, "llm_ignored", la.ignored);
        ob_warn("diagnose", "%s: %s", r->id, la.ignored);
    }
    if (have)
        snprintf(line, sizeof(line), "llm %s@%s · %lld→%lld tokens%s · $%.6f · %lld ms", c->model,
                 set->prompt_version, (long long)tin, (long long)tout,
                 tin + tout > set->token_budget ? " (over the budget)" : "", cost, (long long)ms);
    else
        snprintf(line, sizeof(line), "LLM %s: %s; the rules' reading and order stand", c->model,
                 why);
    free(args);
    cJSON_Delete(root);
    finish_answer(r, line, have ? &la : NULL, d);
}

static void evidence_complete(struct dx_run *r)
{
    const struct ob_diagnose *dg = r->bundle->diag;
    cJSON *ev = cJSON_CreateObject();
    struct ob_dx_input in = {0};
    char dur[32];
    size_t answered = 0;

    r->answered = true;
    r->answered_at_ms = ob_now_ms();
    if (r->timer_open)
        uv_timer_stop(&r->timer);
    for (size_t i = 0; i < r->nev; i++) {
        struct dx_ev *e = &r->ev[i];

        if (e->state == EVS_PENDING && e->started) {
            cJSON *d = cJSON_CreateObject();
            char b[32];

            e->state = EVS_MISSING;
            snprintf(e->line, sizeof(e->line), "no answer within the budget (%s)",
                     ob_duration_format(ob_diagnose_settings(dg)->budget_ms, b, sizeof(b)));
            cJSON_AddStringToObject(d, "evidence", e->def->name);
            cJSON_AddNumberToObject(d, "budget_ms", (double)ob_diagnose_settings(dg)->budget_ms);
            r->last_ev_audit = run_audit(r, "evidence_missing", e->prop.action->name, d);
        }
        if (e->data)
            cJSON_AddItemReferenceToObject(ev, e->def->name, e->data);
    }
    in.service = r->service;
    in.env = r->env;
    in.symptom = r->symptom[0] ? r->symptom : NULL;
    in.text = r->text;
    in.evidence = ev;
    if (ob_diagnose_analyse(dg, r->bundle->cat, &in, &r->res))
        ob_strlcpy(r->res.reading, "(the analysis failed: out of memory)", sizeof(r->res.reading));
    cJSON_Delete(ev);
    evidence_lines(r, r->evidence_text, sizeof(r->evidence_text), &answered);
    ob_duration_format((int64_t)((uv_hrtime() - r->t0) / 1000000), dur, sizeof(dur));
    run_say(r, 0, "[#%lld] Evidence (%zu of %zu answered in %s%s):\n%s",
            (long long)r->last_ev_audit, answered, r->nev, dur,
            answered < r->nev ? "; what is missing is said" : "", r->evidence_text);
    if (!llm_start(r))
        finish_answer(r, NULL, NULL, NULL);
}

static void pick_posted(void *data, int status, const struct ob_msgref *ref)
{
    struct dx_run *r = data;

    r->post_refs--;
    if (r->dead) {
        maybe_release(r);
        return;
    }
    if (!status && ref) {
        r->pick_msg = *ref;
        r->has_pick_msg = true;
    }
}

static void finish_answer(struct dx_run *r, const char *llm_line, const struct ob_dx_llm_answer *la,
                          cJSON *llm_detail)
{
    struct ob_bot *bot = r->bot;
    struct ob_dx_proposal ordered[OB_DX_MAX_PROPOSALS];
    cJSON *d = llm_detail ? llm_detail : cJSON_CreateObject(), *arr;
    char *text = NULL, h[20];
    size_t len = 0;
    FILE *f;
    int64_t id;
    bool reranked = false;

    /* the order: the model's, when it named only rule-made proposals */
    for (size_t i = 0; i < r->res.n; i++)
        ordered[i] = r->res.proposals[i];
    if (la && la->norder == r->res.n && r->res.n > 1) {
        for (size_t i = 0; i < la->norder; i++)
            ordered[i] = r->res.proposals[la->order[i]];
        for (size_t i = 0; i < r->res.n; i++)
            reranked = reranked || la->order[i] != i;
    }
    for (size_t i = 0; i < r->res.n; i++)
        r->res.proposals[i] = ordered[i];
    cJSON_AddStringToObject(d, "reading", r->res.reading);
    if (la && la->narrative[0])
        cJSON_AddStringToObject(d, "narrative", la->narrative);
    if (r->res.facts)
        cJSON_AddItemToObject(d, "facts", cJSON_Duplicate(r->res.facts, true));
    id = run_audit(r, "diagnosis_reading", "diagnose", d);
    run_say(r, 0, "[#%lld] What it means: %s.%s%s%s%s%s%s%s", (long long)id, r->res.reading,
            la && la->narrative[0] ? "\nNarrative: " : "",
            la && la->narrative[0] ? la->narrative : "", llm_line ? "\n(" : "",
            llm_line ? llm_line : "", llm_line ? ")" : "",
            la && la->ignored[0] ? "\nNot used: " : "", la && la->ignored[0] ? la->ignored : "");

    d = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(d, "proposals");
    for (size_t i = 0; i < r->res.n; i++) {
        cJSON *p = cJSON_CreateObject();
        char s[512];

        cJSON_AddNumberToObject(p, "pick", (double)(i + 1));
        cJSON_AddStringToObject(p, "proposal",
                                ob_proposal_format(&r->res.proposals[i].prop, s, sizeof(s)));
        cJSON_AddStringToObject(p, "rule", r->res.proposals[i].rule);
        cJSON_AddStringToObject(p, "reason", r->res.proposals[i].reason);
        if (r->res.proposals[i].runbook_file[0]) {
            cJSON_AddStringToObject(p, "runbook", r->res.proposals[i].runbook_file);
            cJSON_AddStringToObject(p, "heading", r->res.proposals[i].runbook_heading);
        }
        cJSON_AddItemToArray(arr, p);
    }
    cJSON_AddStringToObject(d, "order", reranked ? "llm" : "rules");
    id = run_audit(r, "diagnosis_proposed", "diagnose", d);
    f = open_memstream(&text, &len);
    if (!f)
        return;
    if (!r->res.n) {
        fprintf(f,
                "[#%lld] No proposal: nothing in the evidence calls for an action, so none is "
                "suggested and nothing was run.",
                (long long)id);
    } else {
        fprintf(f, "[#%lld] Proposals for %s in %s — pick one with a reaction on this message (",
                (long long)id, r->service, r->env);
        for (size_t i = 0; i < r->res.n; i++)
            fprintf(f, "%s%s %s", i ? ", " : "", keycaps[i], keynames[i]);
        fprintf(f,
                "). Nothing runs without a pick; a pick is your own request, decided by the "
                "policy (approvals apply).%s",
                reranked ? " Order: the model's, among the rules' proposals." : "");
        for (size_t i = 0; i < r->res.n; i++) {
            const struct ob_dx_proposal *p = &r->res.proposals[i];
            char s[512];

            fprintf(f, "\n%s %s — %s (rule %s)", keycaps[i],
                    ob_proposal_format(&p->prop, s, sizeof(s)), p->reason, p->rule);
            if (p->runbook_file[0])
                fprintf(f, "\n    runbook: %s § %s — \"%s\"", p->runbook_file,
                        p->runbook_heading[0] ? p->runbook_heading : "(top)", p->runbook_passage);
        }
    }
    fprintf(f, "\naudit #%lld · chain %s", (long long)id,
            ob__short_hash(r->req ? r->req->last_hash : "", h, sizeof(h)));
    fclose(f);
    r->finished = true;
    r->picks_until_ms = ob_now_ms() + ob_diagnose_settings(r->bundle->diag)->pick_ttl_ms;
    if (r->res.n) {
        r->post_refs++;
        if (ob__post_raw(bot, r->ad, r->channel, r->thread, OB_POST_WITH_CHOICES(r->res.n), NULL,
                         text, pick_posted, r))
            r->post_refs--;
    } else {
        ob__post_raw(bot, r->ad, r->channel, r->thread, 0, NULL, text, NULL, NULL);
    }
    free(text);
    close_timer(r);
    uncount(r);
    if (r->req) {
        struct ob_request *req = r->req;

        r->req = NULL;
        ob__request_end(req);
    } else {
        ob__maybe_idle(bot);
    }
    prune(bot);
}

/* ---- start ------------------------------------------------------------------------ */

void ob__diagnose_start(struct ob_request *req)
{
    struct ob_bot *bot = req->bot;
    const struct ob_diagnose *dg = req->bundle->diag;
    struct dx_run *r;
    cJSON *d, *names;
    const char *v;
    char b[32];
    int64_t id;

    if (!dg || !ob_diagnose_settings(dg)->enabled) {
        id = ob__req_audit(req, "failed", "opsbot", NULL);
        ob__say_final(req, "[#%lld] not run: diagnosis is not configured (no playbook)",
                      (long long)id);
        ob__request_end(req);
        return;
    }
    r = ob_xcalloc(1, sizeof(*r));
    r->bot = bot;
    r->bundle = ob_bundle_ref(req->bundle);
    r->ad = req->ad;
    r->req = req;
    ob_strlcpy(r->id, req->id, sizeof(r->id));
    ob_strlcpy(r->platform, req->platform, sizeof(r->platform));
    ob_strlcpy(r->user, req->user, sizeof(r->user));
    ob_strlcpy(r->channel, req->channel, sizeof(r->channel));
    ob_strlcpy(r->thread, req->thread, sizeof(r->thread));
    v = ob_proposal_get(&req->prop, "service");
    ob_strlcpy(r->service, v ? v : "", sizeof(r->service));
    v = ob_proposal_get(&req->prop, "env");
    ob_strlcpy(r->env, v ? v : "", sizeof(r->env));
    v = ob_proposal_get(&req->prop, "symptom");
    ob_strlcpy(r->symptom, v && strcmp(v, "unknown") ? v : "", sizeof(r->symptom));
    ob_strlcpy(r->text, r->symptom, sizeof(r->text));
    r->t0 = uv_hrtime();
    uv_timer_init(bot->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    r->next = bot->diagnoses;
    bot->diagnoses = r;
    r->counted = true;
    bot->diagnosing++;

    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "service", r->service);
    cJSON_AddStringToObject(d, "env", r->env);
    if (r->symptom[0])
        cJSON_AddStringToObject(d, "symptom", r->symptom);
    names = cJSON_AddArrayToObject(d, "evidence");
    r->nev = ob_diagnose_evidence_count(dg);
    for (size_t i = 0; i < r->nev; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(ob_diagnose_evidence(dg, i)->name));
    cJSON_AddNumberToObject(d, "budget_ms", (double)ob_diagnose_settings(dg)->budget_ms);
    id = run_audit(r, "diagnosis_started", "diagnose", d);
    run_say(r, 0, "[#%lld] diagnosing %s in %s%s%s%s: %zu read-only checks, answer within %s",
            (long long)id, r->service, r->env, r->symptom[0] ? " (" : "", r->symptom,
            r->symptom[0] ? ")" : "", r->nev,
            ob_duration_format(ob_diagnose_settings(dg)->budget_ms, b, sizeof(b)));
    for (size_t i = 0; i < r->nev; i++) {
        struct dx_ev *e = &r->ev[i];
        char why[300];

        e->run = r;
        e->def = ob_diagnose_evidence(dg, i);
        if (ob_diagnose_evidence_proposal(dg, i, r->service, r->env, &e->prop, why, sizeof(why))) {
            e->state = EVS_FAILED;
            snprintf(e->line, sizeof(e->line), "cannot ask: %s", why);
            continue;
        }
        ev_start(r, e);
    }
    if (r->waiting == 0) {
        evidence_complete(r);
        return;
    }
    uv_timer_start(&r->timer, budget_cb, (uint64_t)ob_diagnose_settings(dg)->budget_ms, 0);
}

/* ---- picks ------------------------------------------------------------------------- */

static void reply(struct dx_run *r, struct ob_adapter *ad, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply(struct dx_run *r, struct ob_adapter *ad, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;

    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        return;
    ob__post_raw(r->bot, ad, r->channel, r->thread, 0, NULL, text, NULL, NULL);
    free(text);
}

bool ob__diagnose_on_pick(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev)
{
    struct dx_run *r;
    int n;
    char user[160], key[170], why[256], s[512];
    const struct ob_dx_proposal *dp;
    const struct ob_action *a;
    struct ob_request *req;
    struct ob_event pev;
    cJSON *d;
    int64_t id;

    if (ev->kind != OB_EV_REACTION_ADD && ev->kind != OB_EV_BUTTON)
        return false;
    n = ob_dx_pick_number(ev->emoji);
    if (!n || !ev->message)
        return false;
    for (r = bot->diagnoses; r; r = r->next)
        if (r->has_pick_msg && !strcmp(r->platform, ev->platform) &&
            !strcmp(r->pick_msg.message, ev->message) &&
            !strcmp(r->pick_msg.channel, ev->channel ? ev->channel : ""))
            break;
    if (!r)
        return false;
    ob__qualify(user, sizeof(user), ev->platform, ev->user);
    if (ob_now_ms() > r->picks_until_ms) {
        reply(r, ad,
              "pick not taken: diagnosis %s is older than its pick window; ask again for "
              "fresh evidence",
              r->id);
        return true;
    }
    if ((size_t)n > r->res.n) {
        reply(r, ad, "pick not taken: diagnosis %s has %zu proposal%s", r->id, r->res.n,
              r->res.n == 1 ? "" : "s");
        return true;
    }
    snprintf(key, sizeof(key), "%s#%d", user, n);
    for (size_t i = 0; i < r->npicked; i++) {
        if (!strcmp(r->picked[i], key)) {
            reply(r, ad, "pick not taken: %s already picked %d of diagnosis %s", user, n, r->id);
            return true;
        }
    }
    if (r->npicked < MAX_PICKS)
        ob_strlcpy(r->picked[r->npicked++], key, sizeof(r->picked[0]));
    dp = &r->res.proposals[n - 1];
    /* a new request, as if the picker had asked for the action */
    pev = *ev;
    pev.kind = OB_EV_MESSAGE;
    pev.channel = r->channel;
    req = ob__request_new(bot, ad, &pev, r->thread);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "text", ob_proposal_format(&dp->prop, s, sizeof(s)));
    cJSON_AddStringToObject(d, "thread", req->thread);
    cJSON_AddStringToObject(d, "diagnosis", r->id);
    cJSON_AddNumberToObject(d, "pick", n);
    cJSON_AddStringToObject(d, "emoji", ev->emoji ? ev->emoji : "");
    ob__req_audit(req, "received", NULL, d);
    /* validated again against the current catalog */
    a = ob_catalog_find(bot->bundle->cat, dp->prop.action->name);
    req->prop.action = a;
    req->prop.source = "diagnosis";
    req->prop.confidence = 1.0;
    for (size_t i = 0; a && i < dp->prop.nparams; i++) {
        const struct ob_param_def *p = ob_action_param(a, dp->prop.params[i].name);
        struct ob_kv *kv = &req->prop.params[req->prop.nparams];

        if (!p || ob_param_validate(p, dp->prop.params[i].value, kv->value, sizeof(kv->value), why,
                                    sizeof(why))) {
            a = NULL;
            break;
        }
        ob_strlcpy(kv->name, dp->prop.params[i].name, sizeof(kv->name));
        req->prop.nparams++;
    }
    if (!a) {
        req->prop.action = NULL;
        d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "diagnosis", r->id);
        cJSON_AddNumberToObject(d, "pick", n);
        cJSON_AddStringToObject(d, "why", "no longer valid in the current catalog");
        id = ob__req_audit(req, "invalid", "opsbot", d);
        ob__say_final(req, "[#%lld] not run: pick %d of diagnosis %s is no longer valid (%s)",
                      (long long)id, n, r->id, dp->prop.action->name);
        ob__request_end(req);
        return true;
    }
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "proposal", ob_proposal_format(&req->prop, s, sizeof(s)));
    cJSON_AddItemToObject(d, "params", params_json(&req->prop));
    cJSON_AddStringToObject(d, "source", "diagnosis");
    cJSON_AddStringToObject(d, "diagnosis", r->id);
    cJSON_AddNumberToObject(d, "pick", n);
    cJSON_AddStringToObject(d, "rule", dp->rule);
    cJSON_AddStringToObject(d, "reason", dp->reason);
    id = ob__req_audit(req, "understood", "opsbot", d);
    ob__sayf(req, "[#%lld] understood: %s (pick %d of diagnosis %s by %s)", (long long)id, s, n,
             r->id, user);
    ob__decide(req);
    return true;
}

/* ---- shutdown ----------------------------------------------------------------------- */

void ob__diagnose_shutdown(struct ob_bot *bot)
{
    while (bot->diagnoses) {
        struct dx_run *r = bot->diagnoses;

        bot->diagnoses = r->next;
        if (r->llm_call)
            ob_http_cancel(r->llm_call);
        r->llm_call = NULL;
        r->req = NULL; /* freed with the other requests */
        uncount(r);
        r->dead = true;
        if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
            uv_close((uv_handle_t *)&r->timer, timer_closed);
        maybe_release(r);
    }
}
