/* The local LLM stand-in (see llm_standin.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "llm_standin.h"
#include "opsbot/err.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define MAX_RULES 64
#define MAX_REQUESTS 512

struct rule {
    struct ob_si_rule r;
    char *match, *tool, *args, *body, *headers[4];
    int used;
};

struct held {
    struct held *next;
    struct ob_llm_standin *s;
    struct ob_http_exchange *ex;
    size_t req;
    uv_timer_t timer;
};

struct ob_llm_standin {
    uv_loop_t *loop;
    struct ob_http_server *srv;
    char *key, *deployment;
    struct rule rules[MAX_RULES];
    size_t nrules;
    struct ob_si_request reqs[MAX_REQUESTS];
    size_t nreqs;
    struct held *held;
    int seq;
};

static char *dup_or_null(const char *s)
{
    return s ? ob_xstrdup(s) : NULL;
}

static void reply_json(struct ob_llm_standin *s, struct ob_http_exchange *ex, size_t ri, int status,
                       cJSON *body, const char *const *headers)
{
    char *text = cJSON_PrintUnformatted(body);

    if (ri < s->nreqs)
        s->reqs[ri].status = status;
    ob_http_reply(ex, status, "application/json", text, strlen(text), headers);
    free(text);
    cJSON_Delete(body);
}

static cJSON *error_body(const char *message, const char *code)
{
    cJSON *b = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(b, "error");

    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", "invalid_request_error");
    cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", code);
    return b;
}

static cJSON *completion(struct ob_llm_standin *s, const char *model, const char *finish,
                         const char *tool, const char *args, const char *content, int pt, int ct)
{
    cJSON *b = cJSON_CreateObject(), *choices, *c, *m, *u;
    char id[48];

    snprintf(id, sizeof(id), "chatcmpl-standin-%d", ++s->seq);
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddStringToObject(b, "object", "chat.completion");
    cJSON_AddNumberToObject(b, "created", 1764262800);
    cJSON_AddStringToObject(b, "model", model ? model : "standin");
    choices = cJSON_AddArrayToObject(b, "choices");
    c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddStringToObject(c, "finish_reason", finish);
    m = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    if (content)
        cJSON_AddStringToObject(m, "content", content);
    else
        cJSON_AddNullToObject(m, "content");
    if (tool) {
        cJSON *calls = cJSON_AddArrayToObject(m, "tool_calls"), *call = cJSON_CreateObject(), *fn;
        char cid[48];

        snprintf(cid, sizeof(cid), "call_%d", s->seq);
        cJSON_AddStringToObject(call, "id", cid);
        cJSON_AddStringToObject(call, "type", "function");
        fn = cJSON_AddObjectToObject(call, "function");
        cJSON_AddStringToObject(fn, "name", tool);
        cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
        cJSON_AddItemToArray(calls, call);
    }
    cJSON_AddItemToArray(choices, c);
    u = cJSON_AddObjectToObject(b, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", pt ? pt : 100);
    cJSON_AddNumberToObject(u, "completion_tokens", ct ? ct : 20);
    cJSON_AddNumberToObject(u, "total_tokens", (pt ? pt : 100) + (ct ? ct : 20));
    return b;
}

static void held_closed(uv_handle_t *h)
{
    free(h->data);
}

static void held_drop(struct held *h)
{
    struct ob_llm_standin *s = h->s;

    for (struct held **pp = &s->held; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, held_closed);
}

static void held_fire(uv_timer_t *t)
{
    struct held *h = t->data;

    reply_json(
        h->s, h->ex, h->req, 200,
        completion(h->s, NULL, "tool_calls", "no_action", "{\"reason\":\"late\"}", NULL, 0, 0),
        NULL);
    held_drop(h);
}

static void answer(struct ob_llm_standin *s, struct ob_http_exchange *ex, size_t ri,
                   const char *model, const char *text)
{
    struct rule *ru = NULL;

    for (size_t i = 0; i < s->nrules; i++) {
        struct rule *r = &s->rules[i];

        if (r->r.times && r->used >= r->r.times)
            continue;
        if (r->match && *r->match && (!text || !strstr(text, r->match)))
            continue;
        ru = r;
        r->used++;
        break;
    }
    if (!ru) {
        reply_json(
            s, ex, ri, 200,
            completion(s, model, "tool_calls", "no_action", "{\"reason\":\"no rule\"}", NULL, 0, 0),
            NULL);
        return;
    }
    switch (ru->r.kind) {
    case OB_SI_TOOL:
        reply_json(s, ex, ri, 200,
                   completion(s, model, "tool_calls", ru->tool, ru->args, NULL, ru->r.prompt_tokens,
                              ru->r.completion_tokens),
                   NULL);
        break;
    case OB_SI_TEXT:
        reply_json(s, ex, ri, 200,
                   completion(s, model, "stop", NULL, NULL, ru->body ? ru->body : "hello",
                              ru->r.prompt_tokens, ru->r.completion_tokens),
                   NULL);
        break;
    case OB_SI_LENGTH:
        reply_json(s, ex, ri, 200,
                   completion(s, model, "length", ru->tool ? ru->tool : "restart",
                              "{\"service\":\"chec", NULL, ru->r.prompt_tokens,
                              ru->r.completion_tokens ? ru->r.completion_tokens : 400),
                   NULL);
        break;
    case OB_SI_CONTENT_FILTER:
        reply_json(s, ex, ri, 200,
                   completion(s, model, "content_filter", NULL, NULL, NULL, ru->r.prompt_tokens, 1),
                   NULL);
        break;
    case OB_SI_FILTER_400:
        reply_json(s, ex, ri, 400,
                   error_body("The response was filtered due to the prompt triggering Azure "
                              "OpenAI's content management policy.",
                              "content_filter"),
                   NULL);
        break;
    case OB_SI_STATUS: {
        const char *hdrs[5] = {NULL};
        size_t n = 0;

        for (size_t i = 0; i < 4 && ru->headers[i]; i++)
            hdrs[n++] = ru->headers[i];
        if (ri < s->nreqs)
            s->reqs[ri].status = ru->r.status;
        if (ru->body)
            ob_http_reply(ex, ru->r.status, "application/json", ru->body, strlen(ru->body), hdrs);
        else
            reply_json(s, ex, ri, ru->r.status, error_body("scripted failure", "scripted"), hdrs);
        break;
    }
    case OB_SI_SLOW: {
        struct held *h = ob_xcalloc(1, sizeof(*h));

        h->s = s;
        h->ex = ex;
        h->req = ri;
        uv_timer_init(s->loop, &h->timer);
        h->timer.data = h;
        h->next = s->held;
        s->held = h;
        if (ru->r.delay_ms > 0)
            uv_timer_start(&h->timer, held_fire, (uint64_t)ru->r.delay_ms, 0);
        break;
    }
    }
}

/* Content of the last user message of a chat-completions body. */
static char *last_user(const cJSON *body, const char **model)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages"), *m;
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(body, "model");
    const char *text = NULL;

    *model = cJSON_IsString(mo) ? mo->valuestring : NULL;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");

        if (cJSON_IsString(role) && !strcmp(role->valuestring, "user") && cJSON_IsString(content))
            text = content->valuestring;
    }
    return dup_or_null(text);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct ob_llm_standin *s = data;
    const char *auth = ob_http_srv_header(req, "authorization");
    const char *apikey = ob_http_srv_header(req, "api-key");
    const char *model = NULL, *p = req->path;
    struct ob_si_request *rec = NULL;
    size_t ri = MAX_REQUESTS;
    cJSON *body;
    char bearer[300];
    bool azure;

    if (s->nreqs < MAX_REQUESTS) {
        ri = s->nreqs++;
        rec = &s->reqs[ri];
        memset(rec, 0, sizeof(*rec));
        rec->method = ob_xstrdup(req->method);
        rec->path = ob_xstrdup(req->path);
        rec->query = ob_xstrdup(req->query ? req->query : "");
        rec->body = ob_xstrdup(req->body ? req->body : "");
        rec->authorization = dup_or_null(auth);
        rec->api_key = dup_or_null(apikey);
        rec->at_ms = uv_now(s->loop);
    }
    if (strcmp(req->method, "POST")) {
        reply_json(s, ex, ri, 405, error_body("method not allowed", "method"), NULL);
        return;
    }
    azure = !strncmp(p, "/openai/", 8);
    if (azure && !strncmp(p, "/openai/deployments/", 20)) {
        const char *dep = p + 20, *slash = strchr(dep, '/');

        if (!slash || strcmp(slash, "/chat/completions")) {
            reply_json(s, ex, ri, 404, error_body("Resource not found", "404"), NULL);
            return;
        }
        if (!strstr(req->query ? req->query : "", "api-version=")) {
            reply_json(s, ex, ri, 404,
                       error_body("Resource not found (api-version missing)", "404"), NULL);
            return;
        }
        if (!s->deployment || strlen(s->deployment) != (size_t)(slash - dep) ||
            strncmp(dep, s->deployment, (size_t)(slash - dep))) {
            reply_json(s, ex, ri, 404,
                       error_body("The API deployment for this resource does not exist.",
                                  "DeploymentNotFound"),
                       NULL);
            return;
        }
    } else if (azure && strcmp(p, "/openai/v1/chat/completions")) {
        reply_json(s, ex, ri, 404, error_body("Resource not found", "404"), NULL);
        return;
    } else if (!azure) {
        size_t n = strlen(p);

        if (n < 17 || strcmp(p + n - 17, "/chat/completions")) {
            reply_json(s, ex, ri, 404, error_body("Unknown path", "unknown_url"), NULL);
            return;
        }
    }
    snprintf(bearer, sizeof(bearer), "Bearer %s", s->key ? s->key : "");
    if (s->key && (azure ? !apikey || strcmp(apikey, s->key) : !auth || strcmp(auth, bearer))) {
        reply_json(s, ex, ri, 401, error_body("Incorrect API key provided.", "invalid_api_key"),
                   NULL);
        return;
    }
    body = cJSON_ParseWithLength(req->body ? req->body : "", req->body_len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        reply_json(s, ex, ri, 400, error_body("We could not parse the JSON body", "invalid_json"),
                   NULL);
        return;
    }
    if (rec)
        rec->user_text = last_user(body, &model);
    else
        (void)last_user(body, &model);
    {
        char *text = rec ? rec->user_text : NULL;
        char *m = dup_or_null(model);

        answer(s, ex, ri, m, text);
        free(m);
    }
    cJSON_Delete(body);
}

int ob_llm_standin_new(struct ob_llm_standin **out, struct ob_lws *lws, uv_loop_t *loop,
                       const char *key, const char *deployment)
{
    struct ob_llm_standin *s = ob_xcalloc(1, sizeof(*s));
    struct ob_http_server_opts o = {0};
    int rc;

    s->loop = loop;
    s->key = dup_or_null(key);
    s->deployment = dup_or_null(deployment);
    o.listen = "127.0.0.1:0";
    o.max_body = 4 << 20;
    rc = ob_http_server_new(lws, &o, handler, s, &s->srv);
    if (rc) {
        free(s->key);
        free(s->deployment);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ob_llm_standin_port(const struct ob_llm_standin *s)
{
    return ob_http_server_port(s->srv);
}

void ob_llm_standin_add(struct ob_llm_standin *s, const struct ob_si_rule *r)
{
    struct rule *ru;

    if (s->nrules == MAX_RULES)
        return;
    ru = &s->rules[s->nrules++];
    memset(ru, 0, sizeof(*ru));
    ru->r = *r;
    ru->match = dup_or_null(r->match);
    ru->tool = dup_or_null(r->tool);
    ru->args = dup_or_null(r->args);
    ru->body = dup_or_null(r->body);
    for (size_t i = 0; i < 4 && r->headers[i]; i++)
        ru->headers[i] = ob_xstrdup(r->headers[i]);
}

void ob_llm_standin_reset(struct ob_llm_standin *s)
{
    for (size_t i = 0; i < s->nrules; i++) {
        struct rule *ru = &s->rules[i];

        free(ru->match);
        free(ru->tool);
        free(ru->args);
        free(ru->body);
        for (size_t k = 0; k < 4; k++)
            free(ru->headers[k]);
    }
    s->nrules = 0;
    for (size_t i = 0; i < s->nreqs; i++) {
        struct ob_si_request *q = &s->reqs[i];

        free(q->method);
        free(q->path);
        free(q->query);
        free(q->body);
        free(q->authorization);
        free(q->api_key);
        free(q->user_text);
    }
    s->nreqs = 0;
}

void ob_llm_standin_free(struct ob_llm_standin *s)
{
    if (!s)
        return;
    while (s->held)
        held_drop(s->held);
    ob_http_server_free(s->srv);
    ob_llm_standin_reset(s);
    free(s->key);
    free(s->deployment);
    free(s);
}

size_t ob_llm_standin_count(const struct ob_llm_standin *s)
{
    return s->nreqs;
}

const struct ob_si_request *ob_llm_standin_request(const struct ob_llm_standin *s, size_t i)
{
    return i < s->nreqs ? &s->reqs[i] : NULL;
}
