/* Slack Web API over the loop's HTTP client: one call helper (tokens in the
 * Authorization header only, 429 + Retry-After remembered per method,
 * ok:false logged as "METHOD failed: error"), the per-channel FIFO send
 * queue (pacing, order kept, nothing dropped on rate limits, long texts
 * split) and the users.info cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "slack_int.h"

#define CALL_TIMEOUT_MS 15000
#define RETRY_AFTER_DEFAULT_MS 1000
#define RETRY_AFTER_MAX_MS 300000
#define TRANSIENT_TRIES 4

/* ---- rate limits per method ------------------------------------------------ */

static int64_t rl_until(const struct slack *sl, const char *method)
{
    for (size_t i = 0; i < SLACK_RL_METHODS; i++)
        if (sl->rl[i].method[0] && !strcmp(sl->rl[i].method, method))
            return sl->rl[i].until_ms;
    return 0;
}

static void rl_set(struct slack *sl, const char *method, int64_t until)
{
    size_t slot = SLACK_RL_METHODS, oldest = 0;

    for (size_t i = 0; i < SLACK_RL_METHODS; i++) {
        if (!strcmp(sl->rl[i].method, method) || !sl->rl[i].method[0]) {
            slot = i;
            break;
        }
        if (sl->rl[i].until_ms < sl->rl[oldest].until_ms)
            oldest = i;
    }
    if (slot == SLACK_RL_METHODS)
        slot = oldest;
    ob_strlcpy(sl->rl[slot].method, method, sizeof(sl->rl[slot].method));
    sl->rl[slot].until_ms = until;
}

/* ---- one call -------------------------------------------------------------- */

static bool transient(const char *error)
{
    static const char *const list[] = {"internal_error", "fatal_error", "service_unavailable",
                                       "request_timeout", NULL};

    for (size_t i = 0; error && list[i]; i++)
        if (!strcmp(error, list[i]))
            return true;
    return false;
}

static int64_t parse_retry_after(const char *v)
{
    char *end = NULL;
    long long s;

    if (!v)
        return RETRY_AFTER_DEFAULT_MS;
    s = strtoll(v, &end, 10);
    if (end == v || s < 0)
        return RETRY_AFTER_DEFAULT_MS;
    if (s > RETRY_AFTER_MAX_MS / 1000)
        return RETRY_AFTER_MAX_MS;
    return s ? s * 1000 : 100;
}

static void req_unlink(struct slack *sl, struct slack_api_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        sl->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void api_done(void *data, const struct ob_http_resp *resp)
{
    struct slack_api_req *r = data;
    struct slack *sl = r->sl;
    struct slack_api_result res = {0};
    cJSON *json = NULL;

    req_unlink(sl, r);
    res.status = resp->status;
    if (resp->err && resp->err != OB_E2BIG) {
        res.err = OB_EHTTP;
        ob_warn("slack", "%s failed: %s", r->method,
                resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err));
        goto out;
    }
    json = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->body_len);
    res.json = json;
    if (resp->status == 429) {
        res.err = OB_EBUSY;
        res.error = "ratelimited";
        res.retry_after_ms = parse_retry_after(ob_http_resp_header(resp, "Retry-After"));
        rl_set(sl, r->method, ob_now_ms() + res.retry_after_ms);
        ob_info("slack", "%s rate limited (429): waiting %lld ms", r->method,
                (long long)res.retry_after_ms);
        goto out;
    }
    if (!json || !cJSON_IsObject(json)) {
        res.err = resp->status >= 500 ? OB_EHTTP : OB_EJSON;
        ob_warn("slack", "%s failed: HTTP %ld without a JSON answer", r->method, resp->status);
        goto out;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "ok"))) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(json, "error");

        res.error = cJSON_IsString(e) ? e->valuestring : "unknown_error";
        if (!strcmp(res.error, "ratelimited") || !strcmp(res.error, "rate_limited")) {
            res.err = OB_EBUSY;
            res.retry_after_ms = parse_retry_after(ob_http_resp_header(resp, "Retry-After"));
            rl_set(sl, r->method, ob_now_ms() + res.retry_after_ms);
            ob_info("slack", "%s rate limited: waiting %lld ms", r->method,
                    (long long)res.retry_after_ms);
            goto out;
        }
        res.err = OB_EHTTP;
        if (strcmp(res.error, "already_reacted"))
            ob_warn("slack", "%s failed: %.80s", r->method, res.error);
        goto out;
    }
out:
    /* Dead credentials on any call stop the adapter (auth.test and
     * apps.connections.open say the same through their callbacks). */
    if (res.error && slack__is_fatal_error(res.error))
        slack__fatal(sl, r->tok, res.error);
    r->cb(sl, r->data, &res);
    cJSON_Delete(json);
    free(r);
    if (sl->life.stopping && !sl->chans && !sl->reqs)
        slack__close_handles(sl);
}

int slack__api(struct slack *sl, const char *method, enum slack_token tok, const char *http_method,
               const char *content_type, const char *body, size_t len, slack_api_cb cb, void *data)
{
    const char *token = tok == SLACK_APP_TOKEN ? sl->cfg.app_token : sl->cfg.bot_token;
    char auth[600], ctype[128], *url = NULL;
    const char *headers[3] = {auth, ctype, NULL};
    struct ob_http_req hr = {0};
    struct slack_api_req *r;
    bool get = !strcmp(http_method, "GET");
    int rc;

    if (!sl->http || !token)
        return OB_EINVAL;
    if (asprintf(&url, "%s%s%s%.*s", sl->cfg.api_base, method, get && len ? "?" : "",
                 get ? (int)len : 0, get ? body : "") < 0)
        return OB_ENOMEM;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
    if (get)
        headers[1] = NULL;
    r = ob_xcalloc(1, sizeof(*r));
    r->sl = sl;
    r->cb = cb;
    r->data = data;
    r->tok = tok;
    ob_strlcpy(r->method, method, sizeof(r->method));
    hr.method = http_method;
    hr.url = url;
    hr.headers = headers;
    hr.body = get ? NULL : body;
    hr.body_len = get ? 0 : len;
    hr.timeout_ms = CALL_TIMEOUT_MS;
    hr.max_response = 1024 * 1024;
    rc = ob_http_request(sl->http, &hr, api_done, r, &r->call);
    sodium_memzero(auth, sizeof(auth));
    free(url);
    if (rc) {
        ob_warn("slack", "%s: cannot start the request: %s", method, ob_strerror(rc));
        free(r);
        return rc;
    }
    r->next = sl->reqs;
    if (sl->reqs)
        sl->reqs->prev = r;
    sl->reqs = r;
    return 0;
}

static void chan_free(struct slack *sl, struct slack_chan *ch);

/* Cancels every call in flight; their callbacks are not called. */
void slack__api_cancel_all(struct slack *sl)
{
    while (sl->reqs) {
        struct slack_api_req *r = sl->reqs;

        sl->reqs = r->next;
        if (r->call && sl->http)
            ob_http_cancel(r->call);
        if (!strcmp(r->method, "users.info"))
            free(r->data); /* the user id it carried */
        free(r);
    }
    /* A delivery among them never reaches op_done now: its channel (the op
     * at its head, kept by slack__queue_drop) goes too. LeakSanitizer found
     * the op leaked when the adapter stopped with a post in flight. */
    while (sl->chans)
        chan_free(sl, sl->chans);
}

static void op_done(struct slack *sl, void *data, const struct slack_api_result *res);

/* Cancels the calls that are not deliveries of the send queue (auth.test,
 * apps.connections.open, users.info): at stop nobody waits for them. */
void slack__api_cancel_others(struct slack *sl)
{
    for (struct slack_api_req *r = sl->reqs, *next; r; r = next) {
        next = r->next;
        if (r->cb == op_done)
            continue;
        req_unlink(sl, r);
        if (r->call && sl->http)
            ob_http_cancel(r->call);
        if (!strcmp(r->method, "users.info"))
            free(r->data); /* the user id it carried */
        free(r);
    }
}

/* ---- text -------------------------------------------------------------------- */

char *slack__escape(const char *text)
{
    size_t len = 0;
    char *out, *o;

    for (const char *p = text; *p; p++)
        len += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
    out = malloc(len + 1);
    if (!out)
        return NULL;
    o = out;
    for (const char *p = text; *p; p++) {
        if (*p == '&') {
            memcpy(o, "&amp;", 5);
            o += 5;
        } else if (*p == '<') {
            memcpy(o, "&lt;", 4);
            o += 4;
        } else if (*p == '>') {
            memcpy(o, "&gt;", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Length of the next chunk of text starting at off: the whole rest when it
 * fits, else cut at a newline in the last quarter of the window, else at a
 * UTF-8 boundary that does not split an &entity;. */
static size_t chunk_len(const char *text, size_t off)
{
    size_t rest = strlen(text + off), n = SLACK_CHUNK_BYTES;

    if (rest <= SLACK_CHUNK_BYTES)
        return rest;
    for (size_t i = n; i > n - n / 4; i--) {
        if (text[off + i - 1] == '\n')
            return i;
    }
    while (n > 1 && ((unsigned char)text[off + n] & 0xc0) == 0x80)
        n--;
    for (size_t i = 1; i < 6 && i < n; i++) {
        if (text[off + n - i] == ';')
            break;
        if (text[off + n - i] == '&') {
            n -= i;
            break;
        }
    }
    return n;
}

/* Number of ``` fences in text[0..len). */
static size_t fences(const char *text, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i + 3 <= len; i++) {
        if (!strncmp(text + i, "```", 3)) {
            n++;
            i += 2;
        }
    }
    return n;
}

/* ---- the send queue -------------------------------------------------------- */

static const char *op_method(const struct slack_op *op)
{
    switch (op->kind) {
    case SLACK_OP_POST:
        return "chat.postMessage";
    case SLACK_OP_UPDATE:
        return "chat.update";
    case SLACK_OP_REACT:
        return "reactions.add";
    }
    return "?";
}

static void op_free(struct slack_op *op)
{
    if (!op)
        return;
    free(op->text);
    free(op);
}

/* Ends the head op of ch: callback, free. */
static void op_finish(struct slack *sl, struct slack_chan *ch, int status)
{
    struct slack_op *op = ch->head;
    struct ob_msgref ref;

    ch->head = op->next;
    if (!ch->head)
        ch->tail = NULL;
    if (op->kind == SLACK_OP_POST && op->cb) {
        memset(&ref, 0, sizeof(ref));
        ob_strlcpy(ref.channel, op->channel, sizeof(ref.channel));
        ob_strlcpy(ref.thread, op->thread, sizeof(ref.thread));
        ob_strlcpy(ref.message, op->first_ts, sizeof(ref.message));
        op->cb(op->cb_data, status ? status : op->status, status || op->status ? NULL : &ref);
    }
    op_free(op);
    (void)sl;
}

static void chan_free(struct slack *sl, struct slack_chan *ch)
{
    for (struct slack_chan **pp = &sl->chans; *pp; pp = &(*pp)->next) {
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    }
    while (ch->head) {
        struct slack_op *op = ch->head;

        ch->head = op->next;
        op_free(op);
    }
    sl->nchans--;
    free(ch);
}

static void op_done(struct slack *sl, void *data, const struct slack_api_result *res);

static cJSON *op_body(struct slack_op *op, size_t *chunk)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "channel", op->channel);
    if (op->kind == SLACK_OP_REACT) {
        cJSON_AddStringToObject(o, "timestamp", op->ts);
        cJSON_AddStringToObject(o, "name", op->text);
        return o;
    }
    if (op->kind == SLACK_OP_UPDATE) {
        size_t n = chunk_len(op->text, 0);
        char *t = strndup(op->text, n);
        cJSON *blocks = slack__blocks(t ? t : "", op->flags);

        cJSON_AddStringToObject(o, "ts", op->ts);
        cJSON_AddStringToObject(o, "text", t ? t : "");
        if (blocks)
            cJSON_AddItemToObject(o, "blocks", blocks);
        else
            cJSON_AddItemToObject(o, "blocks", cJSON_CreateArray());
        free(t);
        return o;
    }
    {
        size_t n = chunk_len(op->text, op->off);
        bool first = op->off == 0, last = op->off + n >= strlen(op->text);
        bool open_before = fences(op->text, op->off) % 2 == 1;
        bool open_after = fences(op->text, op->off + n) % 2 == 1;
        char *t = NULL;

        if (asprintf(&t, "%s%.*s%s", open_before ? "```\n" : "", (int)n, op->text + op->off,
                     open_after ? "\n```" : "") < 0)
            t = NULL;
        *chunk = n;
        cJSON_AddStringToObject(o, "text", t ? t : "");
        if (op->thread[0])
            cJSON_AddStringToObject(o, "thread_ts", op->thread);
        cJSON_AddFalseToObject(o, "unfurl_links");
        cJSON_AddFalseToObject(o, "unfurl_media");
        if (first && last) {
            cJSON *blocks = slack__blocks(t ? t : "", op->flags);

            if (blocks)
                cJSON_AddItemToObject(o, "blocks", blocks);
        }
        free(t);
    }
    return o;
}

static void start_op(struct slack *sl, struct slack_chan *ch)
{
    struct slack_op *op = ch->head;
    size_t chunk = 0;
    cJSON *o = op_body(op, &chunk);
    char *body = cJSON_PrintUnformatted(o);
    int rc;

    cJSON_Delete(o);
    if (!body) {
        op_finish(sl, ch, OB_ENOMEM);
        return;
    }
    ch->busy = true;
    rc = slack__api(sl, op_method(op), SLACK_BOT_TOKEN, "POST", "application/json; charset=utf-8",
                    body, strlen(body), op_done, ch);
    free(body);
    if (rc) {
        ch->busy = false;
        op->attempts++;
        ch->retry_at_ms = ob_now_ms() + 1000;
        if (op->attempts >= TRANSIENT_TRIES)
            op_finish(sl, ch, rc);
    }
}

static void op_done(struct slack *sl, void *data, const struct slack_api_result *res)
{
    struct slack_chan *ch = data;
    struct slack_op *op = ch->head;
    int64_t now = ob_now_ms();

    ch->busy = false;
    if (!op) {
        slack__pump(sl);
        return;
    }
    if (sl->dead || sl->life.closed) {
        /* Credentials are dead: nothing queued here can be delivered. */
        while (ch->head)
            op_finish(sl, ch, OB_EHTTP);
        chan_free(sl, ch);
        slack__pump(sl);
        return;
    }
    if (res->err == OB_EBUSY) {
        /* Rate limited: the op stays at the head; rl_until holds it back. */
        slack__pump(sl);
        return;
    }
    if (res->err &&
        !(op->kind == SLACK_OP_REACT && res->error && !strcmp(res->error, "already_reacted"))) {
        bool again = !res->error || transient(res->error);

        if (again && ++op->attempts < TRANSIENT_TRIES) {
            ch->retry_at_ms = now + ((int64_t)1000 << (op->attempts - 1));
            slack__pump(sl);
            return;
        }
        op_finish(sl, ch, res->err);
        slack__pump(sl);
        return;
    }
    op->attempts = 0;
    ch->retry_at_ms = 0;
    if (op->kind == SLACK_OP_POST) {
        const cJSON *ts = res->json ? cJSON_GetObjectItemCaseSensitive(res->json, "ts") : NULL;
        size_t n = chunk_len(op->text, op->off);

        if (!op->first_ts[0] && cJSON_IsString(ts))
            ob_strlcpy(op->first_ts, ts->valuestring, sizeof(op->first_ts));
        op->off += n;
        ch->next_ok_ms = now + sl->cfg.min_post_interval_ms;
        if (op->text[op->off]) {
            slack__pump(sl);
            return;
        }
        if (!op->first_ts[0])
            op->status = OB_EHTTP;
    }
    op_finish(sl, ch, 0);
    slack__pump(sl);
}

static void pump_cb(uv_timer_t *t)
{
    slack__pump(t->data);
}

void slack__pump(struct slack *sl)
{
    int64_t now, next;

    if (sl->life.closed)
        return;
    if (sl->pumping) {
        /* Called back from inside a pass (a callback posted again). */
        sl->pump_again = true;
        return;
    }
    sl->pumping = true;
again:
    sl->pump_again = false;
    now = ob_now_ms();
    next = -1;
    for (struct slack_chan *ch = sl->chans, *nx; ch; ch = nx) {
        int64_t at;

        nx = ch->next;
        if (ch->busy)
            continue;
        if (!ch->head) {
            if (now >= ch->next_ok_ms)
                chan_free(sl, ch);
            else if (next < 0 || ch->next_ok_ms < next)
                next = ch->next_ok_ms;
            continue;
        }
        if (sl->dead) {
            while (ch->head)
                op_finish(sl, ch, OB_EHTTP);
            chan_free(sl, ch);
            continue;
        }
        at = rl_until(sl, op_method(ch->head));
        if (ch->retry_at_ms > at)
            at = ch->retry_at_ms;
        if (ch->head->kind == SLACK_OP_POST && ch->next_ok_ms > at)
            at = ch->next_ok_ms;
        if (at > now) {
            if (next < 0 || at < next)
                next = at;
            continue;
        }
        start_op(sl, ch);
        if (!ch->busy && ch->head && (next < 0 || ch->retry_at_ms < next))
            next = ch->retry_at_ms;
    }
    if (sl->pump_again)
        goto again;
    sl->pumping = false;
    if (sl->life.closed)
        return;
    if (next >= 0)
        uv_timer_start(&sl->pump, pump_cb, (uint64_t)(next > now ? next - now : 0), 0);
    else
        uv_timer_stop(&sl->pump);
    if (sl->life.stopping && !sl->chans)
        slack__close_handles(sl);
}

int slack__enqueue(struct slack *sl, struct slack_op *op)
{
    struct slack_chan *ch;

    if (sl->dead || sl->life.closed) {
        op_free(op);
        return OB_EHTTP;
    }
    for (ch = sl->chans; ch; ch = ch->next)
        if (!strcmp(ch->id, op->channel))
            break;
    if (!ch) {
        if (sl->nchans >= SLACK_MAX_CHANNELS) {
            ob_warn("slack", "more than %d channels with queued messages: message dropped",
                    SLACK_MAX_CHANNELS);
            op_free(op);
            return OB_EBUSY;
        }
        ch = ob_xcalloc(1, sizeof(*ch));
        ob_strlcpy(ch->id, op->channel, sizeof(ch->id));
        ch->next = sl->chans;
        sl->chans = ch;
        sl->nchans++;
    }
    if (ch->tail)
        ch->tail->next = op;
    else
        ch->head = op;
    ch->tail = op;
    slack__pump(sl);
    return 0;
}

size_t slack__queued(const struct slack *sl)
{
    size_t n = 0;

    for (const struct slack_chan *ch = sl->chans; ch; ch = ch->next)
        for (const struct slack_op *op = ch->head; op; op = op->next)
            n++;
    return n;
}

/* Drops everything not in flight (in-flight heads end in op_done). */
void slack__queue_drop(struct slack *sl, int status, bool call)
{
    for (struct slack_chan *ch = sl->chans, *nx; ch; ch = nx) {
        nx = ch->next;
        if (ch->busy && ch->head) {
            struct slack_op *keep = ch->head;

            while (keep->next) {
                struct slack_op *op = keep->next;

                keep->next = op->next;
                if (call && op->kind == SLACK_OP_POST && op->cb)
                    op->cb(op->cb_data, status, NULL);
                op_free(op);
            }
            ch->tail = keep;
            continue;
        }
        while (ch->head) {
            if (call)
                op_finish(sl, ch, status);
            else {
                struct slack_op *op = ch->head;

                ch->head = op->next;
                op_free(op);
            }
        }
        chan_free(sl, ch);
    }
}

/* ---- users.info ------------------------------------------------------------ */

static struct slack_user *user_find(struct slack *sl, const char *id)
{
    for (size_t i = 0; i < sl->nusers; i++)
        if (!strcmp(sl->users[i].id, id))
            return &sl->users[i];
    return NULL;
}

static void user_done(struct slack *sl, void *data, const struct slack_api_result *res)
{
    char *id = data;
    struct slack_user *u = user_find(sl, id);
    const cJSON *user, *profile;
    const char *name = NULL;

    free(id);
    if (!u)
        return;
    u->pending = false;
    if (res->err || !res->json)
        return;
    user = cJSON_GetObjectItemCaseSensitive(res->json, "user");
    profile = cJSON_GetObjectItemCaseSensitive(user, "profile");
    {
        const cJSON *dn = cJSON_GetObjectItemCaseSensitive(profile, "display_name");
        const cJSON *rn = cJSON_GetObjectItemCaseSensitive(user, "real_name");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(user, "name");

        if (cJSON_IsString(dn) && *dn->valuestring)
            name = dn->valuestring;
        else if (cJSON_IsString(rn) && *rn->valuestring)
            name = rn->valuestring;
        else if (cJSON_IsString(nm))
            name = nm->valuestring;
    }
    if (name && ob_utf8_valid(name, strlen(name)))
        ob_strlcpy(u->name, name, sizeof(u->name));
}

const char *slack__user_name(struct slack *sl, const char *user)
{
    struct slack_user *u;
    char *q, *esc, *id;

    if (!user || !*user || strlen(user) >= sizeof(u->id))
        return NULL;
    u = user_find(sl, user);
    if (u)
        return u->name[0] ? u->name : NULL;
    if (sl->life.stopping || sl->dead)
        return NULL;
    if (sl->nusers < SLACK_USER_CACHE)
        u = &sl->users[sl->nusers++];
    else
        u = &sl->users[sl->users_next++ % SLACK_USER_CACHE];
    if (u->pending)
        return NULL; /* a lookup still owns this slot's id */
    memset(u, 0, sizeof(*u));
    ob_strlcpy(u->id, user, sizeof(u->id));
    esc = ob_http_escape(user);
    if (!esc)
        return NULL;
    if (asprintf(&q, "user=%s", esc) < 0)
        q = NULL;
    free(esc);
    if (!q)
        return NULL;
    id = ob_xstrdup(user);
    u->pending = true;
    if (slack__api(sl, "users.info", SLACK_BOT_TOKEN, "GET", "", q, strlen(q), user_done, id)) {
        u->pending = false;
        free(id);
    }
    free(q);
    return NULL;
}
