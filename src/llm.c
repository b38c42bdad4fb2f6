/* The LLM client: one chat-completions call per parse over the HTTP client on
 * the loop, with the OpenAI SDKs' retry rules (408/409/429/5xx and lost
 * connections; retry-after-ms / retry-after / x-should-retry honoured; capped
 * jittered backoff), all of it inside the connection's timeout so that the
 * pipeline never waits longer than that. Configuration errors (401, 403,
 * 404) are logged once per connection and status, never with the key. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define MAX_REPORTED 32
#define MAX_CALLS 1024
#define RESPONSE_CAP (1024 * 1024)

struct ob_llm {
    uv_loop_t *loop;
    struct ob_http *http;
    struct ob_llm_call *calls;
    size_t ncalls;
    int64_t budget_minute; /* start of the current one-minute window */
    int budget_used;
    char reported[MAX_REPORTED][96];
    size_t nreported;
};

struct ob_llm_call {
    struct ob_llm_call *next;
    struct ob_llm *l;
    ob_llm_cb cb;
    void *data;
    const struct ob_catalog *cat;
    char *url;
    char *body;
    char *hdr_auth;
    int retries;
    int64_t timeout_ms;
    uint64_t start, deadline; /* uv_now */
    struct ob_http_call *http_call;
    uv_timer_t timer;
    bool done;        /* finish() ran or cancelled */
    bool timer_final; /* the timer delivers res (no more attempts) */
    double in_price, out_price;
    struct ob_llm_result res;
};

int ob_llm_new(struct ob_llm **out, uv_loop_t *loop, struct ob_http *http)
{
    struct ob_llm *l;

    *out = NULL;
    if (!loop || !http)
        return OB_EINVAL;
    l = ob_xcalloc(1, sizeof(*l));
    l->loop = loop;
    l->http = http;
    *out = l;
    return 0;
}

size_t ob_llm_active(const struct ob_llm *l)
{
    return l ? l->ncalls : 0;
}

static void call_closed(uv_handle_t *h)
{
    struct ob_llm_call *c = h->data;

    free(c->url);
    free(c->body);
    if (c->hdr_auth)
        sodium_memzero(c->hdr_auth, strlen(c->hdr_auth));
    free(c->hdr_auth);
    free(c);
}

static void unlink_call(struct ob_llm_call *c)
{
    struct ob_llm *l = c->l;

    for (struct ob_llm_call **pp = &l->calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            l->ncalls--;
            break;
        }
    }
}

/* Ends a call without its callback and releases it. */
static void drop(struct ob_llm_call *c)
{
    c->done = true;
    if (c->http_call) {
        ob_http_cancel(c->http_call);
        c->http_call = NULL;
    }
    unlink_call(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, call_closed);
}

void ob_llm_cancel(struct ob_llm_call *c)
{
    if (c && !c->done)
        drop(c);
}

void ob_llm_free(struct ob_llm *l)
{
    if (!l)
        return;
    while (l->calls)
        drop(l->calls);
    free(l);
}

static void finish(struct ob_llm_call *c)
{
    struct ob_llm_result *r = &c->res;

    c->done = true;
    r->latency_ms = (int64_t)(uv_now(c->l->loop) - c->start);
    r->cost_usd = ((double)r->tokens_in * c->in_price + (double)r->tokens_out * c->out_price) / 1e6;
    unlink_call(c);
    uv_timer_stop(&c->timer);
    c->cb(c->data, r);
    uv_close((uv_handle_t *)&c->timer, call_closed);
}

static void __attribute__((format(printf, 4, 5)))
fail(struct ob_llm_call *c, enum ob_llm_outcome o, const char *result, const char *fmt, ...)
{
    va_list ap;

    c->res.outcome = o;
    ob_strlcpy(c->res.result, result, sizeof(c->res.result));
    va_start(ap, fmt);
    vsnprintf(c->res.why, sizeof(c->res.why), fmt, ap);
    va_end(ap);
    finish(c);
}

/* Logs a configuration error once per connection and status. */
static void report_once(struct ob_llm *l, const struct ob_llm_result *r, long status,
                        const char *code)
{
    char key[96];

    snprintf(key, sizeof(key), "%s/%ld", r->connection, status);
    for (size_t i = 0; i < l->nreported; i++)
        if (!strcmp(l->reported[i], key))
            return;
    if (l->nreported < MAX_REPORTED)
        ob_strlcpy(l->reported[l->nreported++], key, sizeof(key));
    ob_error("llm",
             "connection %s: HTTP %ld%s%s%s — a configuration error (%s); the rules parse "
             "until it is fixed",
             r->connection, status, code[0] ? " (" : "", code, code[0] ? ")" : "",
             status == 401   ? "check api_key"
             : status == 403 ? "the key may not use this model or resource"
                             : "check api_base, model / deployment and api_version");
}

/* error.code of an error body, tamed for logs ("" when absent). */
static void error_code(const char *body, size_t len, char *out, size_t cap)
{
    cJSON *root = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    const cJSON *code =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "error"), "code");
    size_t o = 0;

    out[0] = '\0';
    if (cJSON_IsString(code)) {
        for (const char *p = code->valuestring; *p && o + 1 < cap && o < 48; p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '_' || *p == '-' || *p == '.')
                out[o++] = *p;
        out[o] = '\0';
    }
    cJSON_Delete(root);
}

static void attempt(struct ob_llm_call *c);

static void timer_cb(uv_timer_t *t)
{
    struct ob_llm_call *c = t->data;

    if (c->timer_final) {
        finish(c);
        return;
    }
    attempt(c);
}

static void http_done(void *data, const struct ob_http_resp *resp)
{
    struct ob_llm_call *c = data;
    struct ob_llm_result *r = &c->res;
    uint64_t now = uv_now(c->l->loop);
    char code[64], tbuf[32];
    const char *xsr;
    int64_t delay;

    c->http_call = NULL;
    r->http_status = resp->status;
    ob_duration_format(c->timeout_ms, tbuf, sizeof(tbuf));
    if (resp->err == OB_ETIMEOUT) {
        fail(c, OB_LLM_UNAVAILABLE, "timeout", "timeout after %s", tbuf);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        if (resp->err) {
            fail(c, OB_LLM_UNAVAILABLE, "error", "the answer is too large");
            return;
        }
        ob_llm_answer_parse(c->cat, resp->body, resp->body_len, r);
        finish(c);
        return;
    }
    error_code(resp->body, resp->body_len, code, sizeof(code));
    if (resp->status == 400 && !strcmp(code, "content_filter")) {
        fail(c, OB_LLM_UNAVAILABLE, "content_filter",
             "the message was refused by the content filter");
        return;
    }
    if (resp->status == 401 || resp->status == 403 || resp->status == 404) {
        report_once(c->l, r, resp->status, code);
        fail(c, OB_LLM_UNAVAILABLE, "config_error", "configuration error: HTTP %ld from %s",
             resp->status, r->connection);
        return;
    }
    xsr = resp->status ? ob_http_resp_header(resp, "x-should-retry") : NULL;
    if (c->retries > 0 && ob_llm_should_retry(resp->status, xsr) &&
        !(resp->status == 429 && !strcmp(code, "insufficient_quota"))) {
        delay =
            ob_llm_retry_delay_ms(resp->status ? ob_http_resp_header(resp, "retry-after-ms") : NULL,
                                  resp->status ? ob_http_resp_header(resp, "retry-after") : NULL,
                                  r->attempts - 1, randombytes_uniform(1001) / 1000.0, ob_now_ms());
        if (now + (uint64_t)delay < c->deadline) {
            c->retries--;
            ob_debug("llm", "%s: HTTP %ld, retry in %lld ms", r->connection, resp->status,
                     (long long)delay);
            uv_timer_start(&c->timer, timer_cb, (uint64_t)delay, 0);
            return;
        }
    }
    if (resp->status == 0)
        fail(c, OB_LLM_UNAVAILABLE, "error", "cannot reach %s%s%.80s", r->connection,
             resp->errmsg[0] ? ": " : "", resp->errmsg);
    else
        fail(c, OB_LLM_UNAVAILABLE, "error", "HTTP %ld from %s%s%s%s after %d attempt(s)",
             resp->status, r->connection, code[0] ? " (" : "", code, code[0] ? ")" : "",
             r->attempts);
}

static void attempt(struct ob_llm_call *c)
{
    struct ob_http_req req = {0};
    const char *headers[3];
    uint64_t now = uv_now(c->l->loop);
    char tbuf[32];
    int rc;

    if (now >= c->deadline) {
        fail(c, OB_LLM_UNAVAILABLE, "timeout", "timeout after %s",
             ob_duration_format(c->timeout_ms, tbuf, sizeof(tbuf)));
        return;
    }
    headers[0] = "Content-Type: application/json";
    headers[1] = c->hdr_auth;
    headers[2] = NULL;
    req.method = "POST";
    req.url = c->url;
    req.headers = headers;
    req.body = c->body;
    req.body_len = strlen(c->body);
    req.timeout_ms = (int64_t)(c->deadline - now);
    req.max_response = RESPONSE_CAP;
    c->res.attempts++;
    rc = ob_http_request(c->l->http, &req, http_done, c, &c->http_call);
    if (rc) {
        c->http_call = NULL;
        fail(c, OB_LLM_UNAVAILABLE, "error", "cannot send the request: %s", ob_strerror(rc));
    }
}

static bool budget_take(struct ob_llm *l, int per_minute)
{
    int64_t now = (int64_t)uv_now(l->loop);

    if (per_minute <= 0)
        return true;
    if (now - l->budget_minute >= 60000) {
        l->budget_minute = now;
        l->budget_used = 0;
    }
    if (l->budget_used >= per_minute)
        return false;
    l->budget_used++;
    return true;
}

int ob_llm_parse(struct ob_llm *l, const struct ob_llm_parse_req *rq, ob_llm_cb cb, void *data,
                 struct ob_llm_call **call_out)
{
    const struct ob_llm_settings *s = rq ? rq->set : NULL;
    const struct ob_llm_conn *conn = s ? s->conn : NULL;
    struct ob_llm_call *c;
    int n;

    if (call_out)
        *call_out = NULL;
    if (!l || !conn || !cb || !rq->cat)
        return OB_EINVAL;
    if (l->ncalls >= MAX_CALLS)
        return OB_EBUSY;
    c = ob_xcalloc(1, sizeof(*c));
    c->l = l;
    c->cb = cb;
    c->data = data;
    c->cat = rq->cat;
    c->retries = conn->retries;
    c->timeout_ms = conn->timeout_ms > 0 ? conn->timeout_ms : 20000;
    c->in_price = conn->input_per_1m;
    c->out_price = conn->output_per_1m;
    ob_strlcpy(c->res.connection, conn->name, sizeof(c->res.connection));
    ob_strlcpy(c->res.model, conn->model, sizeof(c->res.model));
    ob_strlcpy(c->res.prompt_version, s->prompt_version, sizeof(c->res.prompt_version));
    c->url = ob_llm_url(conn);
    c->body = ob_llm_request_body(rq);
    if (conn->api_key && *conn->api_key)
        n = conn->api == OB_LLM_API_AZURE
                ? asprintf(&c->hdr_auth, "api-key: %s", conn->api_key)
                : asprintf(&c->hdr_auth, "Authorization: Bearer %s", conn->api_key);
    else
        n = 0;
    if (n < 0)
        c->hdr_auth = NULL;
    if (!c->url || !c->body || n < 0) {
        free(c->url);
        free(c->body);
        free(c->hdr_auth);
        free(c);
        return OB_ENOMEM;
    }
    uv_timer_init(l->loop, &c->timer);
    c->timer.data = c;
    c->start = uv_now(l->loop);
    c->deadline = c->start + (uint64_t)c->timeout_ms;
    c->next = l->calls;
    l->calls = c;
    l->ncalls++;
    if (call_out)
        *call_out = c;
    if (!rq->no_budget && !budget_take(l, s->max_calls_per_minute)) {
        c->res.outcome = OB_LLM_UNAVAILABLE;
        ob_strlcpy(c->res.result, "budget", sizeof(c->res.result));
        snprintf(c->res.why, sizeof(c->res.why), "over budget (%d calls per minute)",
                 s->max_calls_per_minute);
        c->timer_final = true;
        uv_timer_start(&c->timer, timer_cb, 0, 0);
        return 0;
    }
    /* The first attempt also starts from the loop: cb never runs inside. */
    uv_timer_start(&c->timer, timer_cb, 0, 0);
    return 0;
}
