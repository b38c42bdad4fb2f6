/* Outbound: the client-credentials token from Entra (cached, refreshed in
 * the background before it expires; sends wait only when there is no valid
 * token at all) and the Connector API (POST / PUT activities at the
 * conversation's latest serviceUrl) behind one FIFO queue per conversation
 * that keeps Teams' per-conversation limits and retries 429 / 412 / 5xx
 * with jittered backoff (Retry-After honoured), never dropping a message.
 *
 * The secret and the access token are only ever written into a request
 * body or an Authorization header, never into a log line. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "teams_int.h"

#define CALL_TIMEOUT_MS 20000
#define TOKEN_MAX 8192
#define TOKEN_MARGIN_MS (5LL * 60 * 1000)
#define BACKOFF_MAX_MS 60000
#define RETRY_AFTER_MAX_MS 300000
#define TRANSIENT_TRIES 10
#define SCOPE "https%3A%2F%2Fapi.botframework.com%2F.default"

/* Teams' limits per bot per conversation: 7 / 1 s, 8 / 2 s, 60 / 30 s. */
static const struct {
    int64_t window_ms;
    size_t limit;
} rate_windows[] = {{1000, 7}, {2000, 8}, {30000, 60}};

/* ---- conversations ----------------------------------------------------------------- */

struct teams_conv *teams__conv(struct teams *tm, const char *id, bool create)
{
    struct teams_conv *c, *oldest = NULL;

    for (c = tm->convs; c; c = c->next)
        if (!strcmp(c->id, id))
            return c;
    if (!create || strlen(id) >= sizeof(c->id))
        return NULL;
    if (tm->nconvs >= TEAMS_MAX_CONVS) {
        /* Forget the least recently seen idle conversation. */
        for (c = tm->convs; c; c = c->next)
            if (!c->head && !c->busy && (!oldest || c->seen_ms < oldest->seen_ms))
                oldest = c;
        if (!oldest)
            return NULL;
        for (struct teams_conv **pp = &tm->convs; *pp; pp = &(*pp)->next) {
            if (*pp == oldest) {
                *pp = oldest->next;
                break;
            }
        }
        free(oldest);
        tm->nconvs--;
    }
    c = ob_xcalloc(1, sizeof(*c));
    c->tm = tm;
    ob_strlcpy(c->id, id, sizeof(c->id));
    c->seen_ms = ob_now_ms();
    c->next = tm->convs;
    tm->convs = c;
    tm->nconvs++;
    return c;
}

void teams__conv_seen(struct teams *tm, const char *id, const char *service_url, const char *type)
{
    struct teams_conv *c = teams__conv(tm, id, true);

    if (!c)
        return;
    c->seen_ms = ob_now_ms();
    /* serviceUrl can change: the latest one wins. */
    if (service_url && *service_url && strcmp(c->service_url, service_url)) {
        if (c->service_url[0])
            ob_info("teams", "conversation %.60s moved to another serviceUrl", id);
        ob_strlcpy(c->service_url, service_url, sizeof(c->service_url));
    }
    if (type && *type)
        ob_strlcpy(c->type, type, sizeof(c->type));
}

bool teams__conv_is_channel(struct teams *tm, const char *id)
{
    struct teams_conv *c = teams__conv(tm, id, false);

    if (c && c->type[0])
        return !strcmp(c->type, "channel");
    /* Channel conversations are team threads ("19:…@thread.tacv2" or the
     * older "@thread.skype"); group chats are "@thread.v2". */
    return strstr(id, "@thread.tacv2") || strstr(id, "@thread.skype");
}

/* ---- token ---------------------------------------------------------------------------- */

static void token_free(struct teams *tm)
{
    if (!tm->token)
        return;
    sodium_memzero(tm->token, strlen(tm->token));
    sodium_free(tm->token);
    tm->token = NULL;
}

static bool token_valid(const struct teams *tm, int64_t now)
{
    return tm->token && now < tm->token_exp;
}

static void token_retry_cb(uv_timer_t *t)
{
    teams__token_fetch(t->data);
}

/* "AADSTS7000215" from a description or error_codes. */
static void aadsts_code(const cJSON *o, char *code, size_t len)
{
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(o, "error_description");
    const cJSON *codes = cJSON_GetObjectItemCaseSensitive(o, "error_codes");
    const char *p;

    code[0] = '\0';
    if (cJSON_IsString(desc)) {
        p = strstr(desc->valuestring, "AADSTS");
        if (p) {
            size_t n = 6;

            while (isdigit((unsigned char)p[n]) && n < 20)
                n++;
            if (n > 6)
                snprintf(code, len, "%.*s", (int)n, p);
        }
    }
    if (!code[0] && cJSON_IsArray(codes) && cJSON_IsNumber(cJSON_GetArrayItem(codes, 0)))
        snprintf(code, len, "AADSTS%.0f", cJSON_GetArrayItem(codes, 0)->valuedouble);
}

bool ob_teams_token_error(long status, const char *body, size_t len, char *code, size_t codelen,
                          char *line, size_t linelen)
{
    cJSON *o = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *e = cJSON_IsString(err) && strlen(err->valuestring) < 64 ? err->valuestring : NULL;
    bool fatal = false;

    if (codelen)
        code[0] = '\0';
    if (cJSON_IsObject(o))
        aadsts_code(o, code, codelen);
    if (codelen && code[0] && !strcmp(code, "AADSTS7000215")) {
        snprintf(line, linelen,
                 "teams: the token endpoint refused the app secret (AADSTS7000215: invalid client "
                 "secret): check platforms.teams.app_secret (the secret's Value, not its ID)");
        fatal = true;
    } else if (codelen && code[0] && !strcmp(code, "AADSTS7000222")) {
        snprintf(line, linelen,
                 "teams: the app secret has expired (AADSTS7000222): create a new client secret "
                 "and update platforms.teams.app_secret");
        fatal = true;
    } else if (codelen && code[0] && !strcmp(code, "AADSTS700016")) {
        snprintf(line, linelen,
                 "teams: the app id is not known in that tenant (AADSTS700016): check "
                 "platforms.teams.app_id and tenant_id (single-tenant bots need their tenant_id, "
                 "multi-tenant ones leave it empty)");
        fatal = true;
    } else if (codelen && code[0] && !strcmp(code, "AADSTS90002")) {
        snprintf(line, linelen,
                 "teams: the tenant does not exist (AADSTS90002): check platforms.teams.tenant_id");
        fatal = true;
    } else if (status == 400 || status == 401 || status == 403 ||
               (e && (!strcmp(e, "invalid_client") || !strcmp(e, "unauthorized_client") ||
                      !strcmp(e, "invalid_request") || !strcmp(e, "invalid_scope")))) {
        snprintf(line, linelen,
                 "teams: the token endpoint refused opsbot's credentials (%s%s%s, HTTP %ld): check "
                 "platforms.teams.app_id, app_secret and tenant_id",
                 code && code[0] ? code : "no AADSTS code", e ? ": " : "", e ? e : "", status);
        fatal = true;
    } else {
        snprintf(line, linelen, "teams: the token endpoint failed (HTTP %ld%s%s%s%s): retrying",
                 status, e ? ", " : "", e ? e : "", code && code[0] ? ", " : "",
                 code && code[0] ? code : "");
    }
    cJSON_Delete(o);
    return fatal;
}

static void token_done(void *data, const struct ob_http_resp *resp)
{
    struct teams *tm = data;
    cJSON *o = NULL;
    const cJSON *at, *ei;
    char code[32], line[400];
    int64_t now = ob_now_ms(), exp_ms, margin;

    tm->token_call = NULL;
    if (tm->life.closed || tm->dead)
        return;
    if (resp->err && resp->err != OB_E2BIG) {
        ob_warn("teams", "token request failed: %s",
                resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err));
        goto retry;
    }
    if (resp->status != 200) {
        if (ob_teams_token_error(resp->status, resp->body, resp->body_len, code, sizeof(code), line,
                                 sizeof(line))) {
            teams__fatal(tm, line);
            return;
        }
        ob_warn("teams", "%s", line);
        goto retry;
    }
    o = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->body_len);
    at = cJSON_GetObjectItemCaseSensitive(o, "access_token");
    ei = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
    if (!cJSON_IsString(at) || !*at->valuestring || strlen(at->valuestring) > TOKEN_MAX) {
        ob_warn("teams", "token endpoint answered without a usable access_token: retrying");
        goto retry;
    }
    exp_ms = cJSON_IsNumber(ei)   ? (int64_t)ei->valuedouble * 1000
             : cJSON_IsString(ei) ? strtoll(ei->valuestring, NULL, 10) * 1000
                                  : 3600 * 1000;
    if (exp_ms <= 0 || exp_ms > 48LL * 3600 * 1000)
        exp_ms = 3600 * 1000;
    token_free(tm);
    tm->token = sodium_malloc(strlen(at->valuestring) + 1);
    if (!tm->token)
        goto retry;
    memcpy(tm->token, at->valuestring, strlen(at->valuestring) + 1);
    tm->token_gen++;
    /* Used until shortly before it expires (5 s, or a quarter of a short
     * lifetime); refreshed in the background 5 minutes before (or halfway
     * for short tokens). */
    tm->token_exp = now + exp_ms - (exp_ms / 4 < 5000 ? exp_ms / 4 : 5000);
    margin = exp_ms / 2 < TOKEN_MARGIN_MS ? exp_ms / 2 : TOKEN_MARGIN_MS;
    tm->token_refresh_at = now + exp_ms - margin;
    tm->token_failures = 0;
    if (!tm->token_ok_once)
        ob_info("teams", "got a Connector token for app %s (valid %lld s)", tm->cfg.app_id,
                (long long)(exp_ms / 1000));
    tm->token_ok_once = true;
    cJSON_Delete(o);
    uv_timer_start(&tm->token_timer, token_retry_cb, (uint64_t)(tm->token_refresh_at - now), 0);
    teams__pump(tm);
    return;
retry:
    cJSON_Delete(o);
    {
        int64_t delay = 1000;

        for (int i = 0; i < tm->token_failures && delay < BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
        tm->token_failures++;
        uv_timer_start(&tm->token_timer, token_retry_cb, (uint64_t)delay, 0);
    }
}

void teams__token_fetch(struct teams *tm)
{
    char *id = NULL, *secret = NULL, *body = NULL;
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct ob_http_req req = {0};
    int rc;

    if (tm->token_call || tm->life.closed || tm->dead || !tm->http)
        return;
    uv_timer_stop(&tm->token_timer);
    id = ob_http_escape(tm->cfg.app_id);
    secret = ob_http_escape(tm->cfg.app_secret);
    if (!id || !secret ||
        asprintf(&body, "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", id,
                 secret, SCOPE) < 0)
        body = NULL;
    if (secret) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    free(id);
    if (!body) {
        uv_timer_start(&tm->token_timer, token_retry_cb, 1000, 0);
        return;
    }
    req.method = "POST";
    req.url = tm->cfg.token_url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = CALL_TIMEOUT_MS;
    req.max_response = 64 * 1024;
    rc = ob_http_request(tm->http, &req, token_done, tm, &tm->token_call);
    sodium_memzero(body, strlen(body));
    free(body);
    if (rc) {
        tm->token_call = NULL;
        ob_warn("teams", "cannot start the token request: %s", ob_strerror(rc));
        uv_timer_start(&tm->token_timer, token_retry_cb, 1000, 0);
    }
}

/* ---- the queue ----------------------------------------------------------------------- */

static void op_free(struct teams_op *op)
{
    if (!op)
        return;
    free(op->body);
    free(op);
}

static void remember_card(struct teams *tm, const char *ref, const char *message)
{
    struct teams_card *c = &tm->cards[tm->cards_next++ % TEAMS_MAX_CARDS];

    ob_strlcpy(c->ref, ref, sizeof(c->ref));
    ob_strlcpy(c->message, message, sizeof(c->message));
}

/* Ends the head op of c: callback with the new message's id, free. */
static void op_finish(struct teams *tm, struct teams_conv *c, int status, const char *id)
{
    struct teams_op *op = c->head;
    struct ob_msgref ref;

    c->head = op->next;
    if (!c->head)
        c->tail = NULL;
    if (!status && op->card_ref[0] && id && *id)
        remember_card(tm, op->card_ref, id);
    if (op->cb) {
        memset(&ref, 0, sizeof(ref));
        ob_strlcpy(ref.channel, op->channel, sizeof(ref.channel));
        ob_strlcpy(ref.thread, op->thread, sizeof(ref.thread));
        ob_strlcpy(ref.message, id ? id : "", sizeof(ref.message));
        if (!status && !ref.message[0])
            status = OB_EHTTP;
        op->cb(op->cb_data, status, status ? NULL : &ref);
    }
    op_free(op);
}

static int64_t retry_after_ms(const char *v)
{
    char *end = NULL;
    long long s;

    if (!v)
        return -1;
    s = strtoll(v, &end, 10);
    if (end == v || s < 0)
        return -1;
    if (s > RETRY_AFTER_MAX_MS / 1000)
        return RETRY_AFTER_MAX_MS;
    return s * 1000;
}

/* Exponential backoff with jitter: between half and all of 1 s * 2^n. */
static int64_t backoff_ms(int attempts)
{
    int64_t d = 1000;

    for (int i = 1; i < attempts && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2) + 1);
}

static void conv_sent(struct teams_conv *c, int64_t now)
{
    c->sent[c->nsent % TEAMS_SEND_RING] = now;
    c->nsent++;
}

/* The earliest time the next send keeps every per-conversation limit. */
static int64_t rate_ok_at(const struct teams_conv *c)
{
    int64_t at = 0;

    for (size_t i = 0; i < sizeof(rate_windows) / sizeof(rate_windows[0]); i++) {
        size_t k = rate_windows[i].limit;
        int64_t t;

        if (c->nsent < k)
            continue;
        t = c->sent[(c->nsent - k) % TEAMS_SEND_RING] + rate_windows[i].window_ms;
        if (t > at)
            at = t;
    }
    return at;
}

static const char *op_what(const struct teams_op *op)
{
    return op->kind == TEAMS_OP_UPDATE ? "update" : op->target[0] ? "reply" : "send";
}

static void op_done(void *data, const struct ob_http_resp *resp)
{
    struct teams_conv *c = data;
    struct teams *tm = c->tm;
    struct teams_op *op = c->head;
    long st = resp->status;
    int64_t now = ob_now_ms(), delay;
    cJSON *o = NULL;
    const cJSON *id;

    c->busy = false;
    c->call = NULL;
    tm->inflight--;
    if (!op) {
        teams__pump(tm);
        return;
    }
    if (tm->dead) {
        while (c->head)
            op_finish(tm, c, OB_EHTTP, NULL);
        teams__pump(tm);
        return;
    }
    if (!resp->err && st >= 200 && st < 300) {
        o = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->body_len);
        id = cJSON_GetObjectItemCaseSensitive(o, "id");
        op->attempts = 0;
        c->retry_at_ms = 0;
        if (op->kind == TEAMS_OP_UPDATE)
            op_finish(tm, c, 0, op->target);
        else
            op_finish(tm, c, 0,
                      cJSON_IsString(id) && strlen(id->valuestring) < 128 ? id->valuestring : NULL);
        cJSON_Delete(o);
        teams__pump(tm);
        return;
    }
    if (!resp->err && st == 401 && !op->auth_retried) {
        /* The Connector refused our token: a fresh one, then once more. */
        op->auth_retried = true;
        ob_warn("teams", "Connector refused the token (401): refreshing it and retrying once");
        if (c->gen == tm->token_gen) {
            token_free(tm);
            teams__token_fetch(tm);
        }
        teams__pump(tm);
        return;
    }
    if (resp->err || st == 429 || st == 412 || st == 500 || st == 502 || st == 503 || st == 504) {
        op->attempts++;
        delay =
            st == 429 || st == 503 ? retry_after_ms(ob_http_resp_header(resp, "Retry-After")) : -1;
        if (delay < 0)
            delay = backoff_ms(op->attempts);
        if ((st == 429 || st == 412) || op->attempts < TRANSIENT_TRIES) {
            if (st == 429)
                ob_info("teams", "%s rate limited (429) in %.60s: waiting %lld ms", op_what(op),
                        c->id, (long long)delay);
            else
                ob_warn("teams", "%s in %.60s failed (%s): retry %d in %lld ms", op_what(op), c->id,
                        resp->err   ? (resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err))
                        : st == 412 ? "HTTP 412 precondition failed"
                                    : "server error",
                        op->attempts, (long long)delay);
            c->retry_at_ms = now + delay;
            teams__pump(tm);
            return;
        }
    }
    if (st == 403 || st == 404)
        ob_warn("teams",
                "%s in %.60s refused (HTTP %ld): the bot is not (or no longer) in that "
                "conversation",
                op_what(op), c->id, st);
    else if (st == 401)
        ob_error("teams",
                 "%s in %.60s refused (HTTP 401) even with a fresh token: is the bot "
                 "registered for this app id?",
                 op_what(op), c->id);
    else if (st == 413)
        ob_warn("teams", "%s in %.60s refused: message too big (HTTP 413)", op_what(op), c->id);
    else
        ob_warn("teams", "%s in %.60s failed (HTTP %ld): given up", op_what(op), c->id, st);
    c->retry_at_ms = 0;
    op_finish(tm, c, OB_EHTTP, NULL);
    teams__pump(tm);
}

static void start_op(struct teams *tm, struct teams_conv *c)
{
    struct teams_op *op = c->head;
    const char *base = c->service_url[0] ? c->service_url : tm->cfg.service_url;
    char *conv = ob_http_escape(op->url_conv), *target = NULL, *url = NULL, *auth = NULL;
    const char *headers[3] = {NULL, "Content-Type: application/json; charset=utf-8", NULL};
    struct ob_http_req req = {0};
    int rc = OB_ENOMEM;

    if (op->target[0])
        target = ob_http_escape(op->target);
    if (!conv || (op->target[0] && !target))
        goto out;
    if (asprintf(&url, "%s%sv3/conversations/%s/activities%s%s", base,
                 base[strlen(base) - 1] == '/' ? "" : "/", conv, target ? "/" : "",
                 target ? target : "") < 0) {
        url = NULL;
        goto out;
    }
    if (asprintf(&auth, "Authorization: Bearer %s", tm->token) < 0) {
        auth = NULL;
        goto out;
    }
    headers[0] = auth;
    req.method = op->kind == TEAMS_OP_UPDATE ? "PUT" : "POST";
    req.url = url;
    req.headers = headers;
    req.body = op->body;
    req.body_len = strlen(op->body);
    req.timeout_ms = CALL_TIMEOUT_MS;
    req.max_response = 256 * 1024;
    rc = ob_http_request(tm->http, &req, op_done, c, &c->call);
out:
    if (auth) {
        sodium_memzero(auth, strlen(auth));
        free(auth);
    }
    free(url);
    free(conv);
    free(target);
    if (rc) {
        ob_warn("teams", "cannot start a Connector request: %s", ob_strerror(rc));
        c->call = NULL;
        op->attempts++;
        c->retry_at_ms = ob_now_ms() + backoff_ms(op->attempts);
        if (op->attempts >= TRANSIENT_TRIES)
            op_finish(tm, c, rc, NULL);
        return;
    }
    c->busy = true;
    c->gen = tm->token_gen;
    tm->inflight++;
    conv_sent(c, ob_now_ms());
}

static void pump_cb(uv_timer_t *t)
{
    teams__pump(t->data);
}

void teams__pump(struct teams *tm)
{
    int64_t now, next;
    bool need_token = false;

    if (tm->life.closed)
        return;
    if (tm->pumping) {
        tm->pump_again = true;
        return;
    }
    tm->pumping = true;
again:
    tm->pump_again = false;
    now = ob_now_ms();
    next = -1;
    /* A token close to its end is refreshed in the background. */
    if (tm->token && now >= tm->token_refresh_at && !tm->dead)
        teams__token_fetch(tm);
    for (struct teams_conv *c = tm->convs; c; c = c->next) {
        int64_t at;

        if (c->busy || !c->head)
            continue;
        if (tm->dead) {
            while (c->head)
                op_finish(tm, c, OB_EHTTP, NULL);
            continue;
        }
        if (!token_valid(tm, now)) {
            need_token = true;
            continue;
        }
        at = rate_ok_at(c);
        if (c->retry_at_ms > at)
            at = c->retry_at_ms;
        if (at > now) {
            if (next < 0 || at < next)
                next = at;
            continue;
        }
        start_op(tm, c);
        if (!c->busy && c->head && (next < 0 || c->retry_at_ms < next))
            next = c->retry_at_ms;
    }
    if (need_token && !tm->dead) {
        if (tm->token && !token_valid(tm, now))
            token_free(tm);
        teams__token_fetch(tm); /* sends go on when it arrives */
    }
    if (tm->pump_again)
        goto again;
    tm->pumping = false;
    if (tm->life.closed)
        return;
    if (next >= 0)
        uv_timer_start(&tm->pump, pump_cb, (uint64_t)(next > now ? next - now : 0), 0);
    else
        uv_timer_stop(&tm->pump);
    if (tm->life.stopping && !teams__queued(tm) && !tm->inflight)
        teams__close_handles(tm);
}

int teams__enqueue(struct teams *tm, struct teams_op *op)
{
    struct teams_conv *c;

    if (tm->dead || tm->life.closed) {
        op_free(op);
        return OB_EHTTP;
    }
    c = teams__conv(tm, op->channel, true);
    if (!c) {
        ob_warn("teams", "more than %d conversations with queued messages: message dropped",
                TEAMS_MAX_CONVS);
        op_free(op);
        return OB_EBUSY;
    }
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    teams__pump(tm);
    return 0;
}

size_t teams__queued(const struct teams *tm)
{
    size_t n = 0;

    for (const struct teams_conv *c = tm->convs; c; c = c->next)
        for (const struct teams_op *op = c->head; op; op = op->next)
            n++;
    return n;
}

/* Drops everything not in flight (in-flight heads end in op_done). */
void teams__queue_drop(struct teams *tm, int status, bool call)
{
    for (struct teams_conv *c = tm->convs; c; c = c->next) {
        struct teams_op *keep = c->busy ? c->head : NULL;

        while (keep && keep->next) {
            struct teams_op *op = keep->next;

            keep->next = op->next;
            if (call && op->cb)
                op->cb(op->cb_data, status, NULL);
            op_free(op);
        }
        if (keep) {
            c->tail = keep;
            continue;
        }
        while (c->head) {
            if (call) {
                op_finish(tm, c, status, NULL);
            } else {
                struct teams_op *op = c->head;

                c->head = op->next;
                op_free(op);
            }
        }
        c->tail = NULL;
    }
}

/* Cancels every request in flight (no callbacks) and frees all state of
 * the connector. */
void teams__connector_cancel(struct teams *tm)
{
    if (tm->token_call && tm->http)
        ob_http_cancel(tm->token_call);
    tm->token_call = NULL;
    while (tm->convs) {
        struct teams_conv *c = tm->convs;

        tm->convs = c->next;
        if (c->call && tm->http)
            ob_http_cancel(c->call);
        while (c->head) {
            struct teams_op *op = c->head;

            c->head = op->next;
            op_free(op);
        }
        free(c);
    }
    tm->nconvs = 0;
    tm->inflight = 0;
    token_free(tm);
}
