/* Discord REST over the loop's HTTP client: routes and rate-limit buckets
 * (ob_discord_route / ob_discord_bucket_key: the one place a bucket key is
 * made), one call helper (the token only ever in the Authorization header;
 * interaction tokens only in paths, never logged), and the send queue:
 * one FIFO per conversation (channel + thread), so that messages are never
 * dropped or reordered; a request leaves only when its bucket has room
 * (X-RateLimit-Remaining / Reset-After), a 429 keeps it at the head of its
 * queue for retry_after (all queues for a global one). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discord_int.h"
#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define CALL_TIMEOUT_MS 15000
#define RETRY_AFTER_DEFAULT_MS 1000
#define RETRY_AFTER_MAX_MS 600000
#define TRANSIENT_TRIES 5
#define PATH_MAX_LEN 2048

/* ---- routes and bucket keys ------------------------------------------------------ */

static bool all_digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool literal_ok(const char *s, size_t n)
{
    if (!n || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("@._-", s[i]))
            return false;
    return true;
}

/* A short, stable stand-in for a webhook / interaction token in a key. */
static void token_hash(const char *s, size_t n, char out[17])
{
    unsigned char h[8];

    crypto_generichash(h, sizeof(h), (const unsigned char *)s, n, NULL, 0);
    sodium_bin2hex(out, 17, h, sizeof(h));
}

struct seg {
    const char *p;
    size_t n;
};

int ob_discord_route(const char *method, const char *path, char *route, size_t rlen, char *major,
                     size_t mlen)
{
    struct seg segs[32];
    size_t nsegs = 0, plen, o;
    char tmpl[512] = "", maj[96] = "-", m[8];
    bool have_major = false;
    int n;

    if (!method || !path || !route || !major || path[0] != '/')
        return OB_EINVAL;
    n = 0;
    for (const char *p = method; *p; p++) {
        if (n >= 7 || !isalpha((unsigned char)*p))
            return OB_EINVAL;
        m[n++] = (char)toupper((unsigned char)*p);
    }
    if (!n)
        return OB_EINVAL;
    m[n] = '\0';
    plen = strcspn(path, "?#");
    if (plen > PATH_MAX_LEN)
        return OB_E2BIG;
    for (size_t i = 0; i < plen;) {
        size_t j = i;

        while (j < plen && path[j] != '/')
            j++;
        if (j > i) {
            if (nsegs == sizeof(segs) / sizeof(segs[0]))
                return OB_E2BIG;
            segs[nsegs].p = path + i;
            segs[nsegs].n = j - i;
            nsegs++;
        }
        i = j + 1;
    }
    o = 0;
#define APPEND(s)                                                                                  \
    do {                                                                                           \
        int w_ = snprintf(tmpl + o, sizeof(tmpl) - o, "%s", s);                                    \
        if (w_ < 0 || (size_t)w_ >= sizeof(tmpl) - o)                                              \
            return OB_E2BIG;                                                                       \
        o += (size_t)w_;                                                                           \
    } while (0)
    for (size_t i = 0; i < nsegs; i++) {
        const struct seg *s = &segs[i];
        char lit[48];

        if (s->n == 9 && !strncmp(s->p, "reactions", 9)) {
            APPEND("/reactions/:reaction");
            break;
        }
        if (!have_major && i + 1 < nsegs && all_digits(segs[i + 1].p, segs[i + 1].n) &&
            segs[i + 1].n < 32 &&
            ((s->n == 8 && !strncmp(s->p, "channels", 8)) ||
             (s->n == 6 && !strncmp(s->p, "guilds", 6)))) {
            bool ch = s->n == 8;

            APPEND(ch ? "/channels/{channel_id}" : "/guilds/{guild_id}");
            snprintf(maj, sizeof(maj), "%.*s", (int)segs[i + 1].n, segs[i + 1].p);
            have_major = true;
            i++;
            continue;
        }
        if (!have_major && i + 1 < nsegs && all_digits(segs[i + 1].p, segs[i + 1].n) &&
            segs[i + 1].n < 32 &&
            ((s->n == 8 && !strncmp(s->p, "webhooks", 8)) ||
             (s->n == 12 && !strncmp(s->p, "interactions", 12)))) {
            bool wh = s->n == 8;
            char h[17] = "";

            if (i + 2 < nsegs && !all_digits(segs[i + 2].p, segs[i + 2].n))
                token_hash(segs[i + 2].p, segs[i + 2].n, h);
            if (wh && h[0])
                snprintf(maj, sizeof(maj), "%.*s/%s", (int)segs[i + 1].n, segs[i + 1].p, h);
            else
                snprintf(maj, sizeof(maj), "%.*s", (int)segs[i + 1].n, segs[i + 1].p);
            APPEND(wh ? "/webhooks/{webhook_id}" : "/interactions/{interaction_id}");
            if (h[0]) {
                APPEND(wh ? "/{webhook_token}" : "/{interaction_token}");
                i++;
            }
            have_major = true;
            i++;
            continue;
        }
        if (all_digits(s->p, s->n)) {
            APPEND("/:id");
            continue;
        }
        if (!literal_ok(s->p, s->n)) {
            APPEND("/:param");
            continue;
        }
        snprintf(lit, sizeof(lit), "/%.*s", (int)s->n, s->p);
        APPEND(lit);
    }
#undef APPEND
    if (!o)
        snprintf(tmpl, sizeof(tmpl), "/");
    n = snprintf(route, rlen, "%s %s", m, tmpl);
    if (n < 0 || (size_t)n >= rlen)
        return OB_E2BIG;
    n = snprintf(major, mlen, "%s", maj);
    if (n < 0 || (size_t)n >= mlen)
        return OB_E2BIG;
    return 0;
}

int ob_discord_bucket_key(const char *method, const char *path, const char *hash, char *out,
                          size_t len)
{
    char route[560], major[96];
    int rc = ob_discord_route(method, path, route, sizeof(route), major, sizeof(major)), n;

    if (rc)
        return rc;
    if (!out || !len)
        return OB_EINVAL;
    if (hash && *hash)
        n = snprintf(out, len, "%s:%s", hash, major);
    else
        n = snprintf(out, len, "%s:%s", route, major);
    return n < 0 || (size_t)n >= len ? OB_E2BIG : 0;
}

/* ---- rate-limit state -------------------------------------------------------------- */

static const char *route_hash(struct discord *dc, const char *route)
{
    for (size_t i = 0; i < DC_MAX_ROUTES; i++)
        if (dc->routes[i].route[0] && !strcmp(dc->routes[i].route, route))
            return dc->routes[i].hash;
    return NULL;
}

static void route_hash_set(struct discord *dc, const char *route, const char *hash)
{
    struct dc_route_hash *r = NULL;

    for (size_t i = 0; i < DC_MAX_ROUTES && !r; i++)
        if (!strcmp(dc->routes[i].route, route))
            r = &dc->routes[i];
    if (!r)
        r = &dc->routes[dc->routes_next++ % DC_MAX_ROUTES];
    ob_strlcpy(r->route, route, sizeof(r->route));
    ob_strlcpy(r->hash, hash, sizeof(r->hash));
}

/* The key of a request with what is known about its route. */
static int key_of(struct discord *dc, const char *method, const char *path, char *key, size_t len)
{
    char route[560], major[96];
    int rc = ob_discord_route(method, path, route, sizeof(route), major, sizeof(major));

    if (rc)
        return rc;
    return ob_discord_bucket_key(method, path, route_hash(dc, route), key, len);
}

static struct dc_bucket *bucket_find(struct discord *dc, const char *key, bool create)
{
    struct dc_bucket *old = &dc->buckets[0];

    for (size_t i = 0; i < DC_MAX_BUCKETS; i++) {
        struct dc_bucket *b = &dc->buckets[i];

        if (b->key[0] && !strcmp(b->key, key))
            return b;
        if (b->used_ms < old->used_ms)
            old = b;
    }
    if (!create)
        return NULL;
    memset(old, 0, sizeof(*old));
    ob_strlcpy(old->key, key, sizeof(old->key));
    old->remaining = -1; /* unknown */
    old->used_ms = ob_now_ms();
    return old;
}

static bool is_interaction(const char *path)
{
    return !strncmp(path, "/interactions/", 14) || !strncmp(path, "/webhooks/", 10);
}

int64_t discord__rl_wait(struct discord *dc, const char *method, const char *path)
{
    int64_t now = ob_now_ms(), wait = 0;
    char key[224];
    struct dc_bucket *b;

    if (!is_interaction(path) && dc->global_until_ms > now)
        wait = dc->global_until_ms - now;
    if (key_of(dc, method, path, key, sizeof(key)))
        return wait;
    b = bucket_find(dc, key, false);
    if (b && b->inflight)
        return -1;
    if (b && b->remaining == 0 && b->reset_ms > now && b->reset_ms - now > wait)
        wait = b->reset_ms - now;
    return wait;
}

/* A request leaves: its bucket has it in flight (answers come back in
 * order, so X-RateLimit-Remaining is never stale), and it counts against
 * what is known of the bucket. */
static void rl_take(struct discord *dc, struct dc_call *c)
{
    struct dc_bucket *b;
    int64_t now = ob_now_ms();

    if (key_of(dc, c->method, c->path, c->key, sizeof(c->key))) {
        c->key[0] = '\0';
        return;
    }
    b = bucket_find(dc, c->key, true);
    b->inflight = true;
    b->used_ms = now;
    if (b->reset_ms && b->reset_ms <= now)
        b->remaining = -1; /* refilled; the answer tells */
    else if (b->remaining > 0)
        b->remaining--;
}

/* The request of c is answered (or gone): its bucket is free again. */
static void rl_done(struct discord *dc, struct dc_call *c)
{
    struct dc_bucket *b = c->key[0] ? bucket_find(dc, c->key, false) : NULL;

    if (b)
        b->inflight = false;
    c->key[0] = '\0';
}

static int64_t seconds_ms(const char *v, int64_t def)
{
    char *end = NULL;
    double s;

    if (!v)
        return def;
    s = strtod(v, &end);
    if (end == v || !isfinite(s) || s < 0)
        return def;
    if (s * 1000 > RETRY_AFTER_MAX_MS)
        return RETRY_AFTER_MAX_MS;
    return (int64_t)ceil(s * 1000);
}

static void rl_learn(struct discord *dc, const char *method, const char *path,
                     const struct ob_http_resp *resp)
{
    const char *hash = ob_http_resp_header(resp, "X-RateLimit-Bucket");
    const char *rem = ob_http_resp_header(resp, "X-RateLimit-Remaining");
    const char *after = ob_http_resp_header(resp, "X-RateLimit-Reset-After");
    char route[560], major[96], key[224];
    struct dc_bucket *b;

    if (ob_discord_route(method, path, route, sizeof(route), major, sizeof(major)))
        return;
    if (hash && *hash && strlen(hash) < 64 && literal_ok(hash, strlen(hash)))
        route_hash_set(dc, route, hash);
    if (!rem || !after)
        return;
    if (key_of(dc, method, path, key, sizeof(key)))
        return;
    b = bucket_find(dc, key, true);
    b->remaining = (int)strtol(rem, NULL, 10);
    if (b->remaining < 0)
        b->remaining = 0;
    b->reset_ms = ob_now_ms() + seconds_ms(after, RETRY_AFTER_DEFAULT_MS);
    b->used_ms = ob_now_ms();
}

/* ---- one call ----------------------------------------------------------------------- */

static void call_unlink(struct discord *dc, struct dc_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        dc->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void call_free(struct dc_call *c)
{
    if (!c)
        return;
    if (c->path)
        sodium_memzero(c->path, strlen(c->path));
    free(c->path);
    free(c);
}

static void rest_done(void *data, const struct ob_http_resp *resp)
{
    struct dc_call *c = data;
    struct discord *dc = c->dc;
    struct dc_rest_result res = {0};
    cJSON *json = NULL;
    const cJSON *code;

    call_unlink(dc, c);
    rl_done(dc, c);
    res.status = resp->status;
    if (resp->err && resp->err != OB_E2BIG) {
        res.err = OB_EHTTP;
        ob_warn("discord", "%s failed: %s", c->route,
                resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err));
        goto out;
    }
    rl_learn(dc, c->method, c->path, resp);
    if (resp->body_len)
        json = cJSON_ParseWithLength(resp->body, resp->body_len);
    res.json = json;
    code = json ? cJSON_GetObjectItemCaseSensitive(json, "code") : NULL;
    if (cJSON_IsNumber(code))
        res.code = code->valueint;
    if (resp->status == 429) {
        const cJSON *ra = json ? cJSON_GetObjectItemCaseSensitive(json, "retry_after") : NULL;
        const char *gh = ob_http_resp_header(resp, "X-RateLimit-Global");
        char key[224];

        res.err = OB_EBUSY;
        if (cJSON_IsNumber(ra) && isfinite(ra->valuedouble) && ra->valuedouble >= 0)
            res.retry_after_ms = (int64_t)ceil(ra->valuedouble * 1000);
        else
            res.retry_after_ms =
                seconds_ms(ob_http_resp_header(resp, "Retry-After"), RETRY_AFTER_DEFAULT_MS);
        if (res.retry_after_ms > RETRY_AFTER_MAX_MS)
            res.retry_after_ms = RETRY_AFTER_MAX_MS;
        if (res.retry_after_ms < 1)
            res.retry_after_ms = 1;
        res.global = cJSON_IsTrue(json ? cJSON_GetObjectItemCaseSensitive(json, "global") : NULL) ||
                     (gh && !strcasecmp(gh, "true"));
        if (res.global) {
            dc->global_until_ms = ob_now_ms() + res.retry_after_ms;
        } else if (!key_of(dc, c->method, c->path, key, sizeof(key))) {
            struct dc_bucket *b = bucket_find(dc, key, true);

            b->remaining = 0;
            b->reset_ms = ob_now_ms() + res.retry_after_ms;
            b->used_ms = ob_now_ms();
        }
        ob_info("discord", "%s rate limited (429%s): waiting %lld ms", c->route,
                res.global ? ", global" : "", (long long)res.retry_after_ms);
        goto out;
    }
    if (resp->status >= 200 && resp->status < 300)
        goto out;
    if (resp->status == 401)
        res.err = OB_EDENIED;
    else if (resp->status == 403)
        res.err = OB_EDENIED;
    else if (resp->status == 404)
        res.err = OB_ENOTFOUND;
    else if (resp->status >= 400 && resp->status < 500)
        res.err = OB_EINVAL;
    else
        res.err = OB_EHTTP;
    {
        const cJSON *msg = json ? cJSON_GetObjectItemCaseSensitive(json, "message") : NULL;

        ob_warn("discord", "%s failed: HTTP %ld (code %d%s%.80s)", c->route, resp->status, res.code,
                cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
    }
out:
    /* A rejected token stops everything (an interaction callback answers
     * 401 only for a bad interaction token: not ours to judge). */
    if (res.status == 401 && !is_interaction(c->path))
        discord__fatal(dc, "discord: the bot token was rejected (HTTP 401): check "
                           "platforms.discord.token (was it reset in the developer portal?)");
    c->cb(dc, c->data, &res);
    cJSON_Delete(json);
    call_free(c);
    /* Queues held back by this request's bucket may go now. */
    if (dc->queues && !dc->life.closed)
        discord__pump(dc);
    if (dc->life.stopping && !dc->queues && !dc->calls)
        discord__close_handles(dc);
}

int discord__rest(struct discord *dc, const char *method, const char *path, const char *body,
                  dc_rest_cb cb, void *data)
{
    char auth[600], major[96], *url = NULL;
    const char *headers[5];
    struct ob_http_req hr = {0};
    struct dc_call *c;
    size_t nh = 0;
    int rc;

    if (!dc->http || !dc->cfg.token)
        return OB_EINVAL;
    c = ob_xcalloc(1, sizeof(*c));
    if (ob_discord_route(method, path, c->route, sizeof(c->route), major, sizeof(major))) {
        free(c);
        return OB_EINVAL;
    }
    if (asprintf(&url, "%s%s", dc->cfg.api_base, path) < 0) {
        free(c);
        return OB_ENOMEM;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bot %s", dc->cfg.token);
    if (!is_interaction(path))
        headers[nh++] = auth;
    headers[nh++] = DC_USER_AGENT;
    if (body)
        headers[nh++] = "Content-Type: application/json";
    headers[nh] = NULL;
    c->dc = dc;
    c->cb = cb;
    c->data = data;
    c->path = ob_xstrdup(path);
    ob_strlcpy(c->method, method, sizeof(c->method));
    hr.method = method;
    hr.url = url;
    hr.headers = headers;
    hr.body = body;
    hr.body_len = body ? strlen(body) : 0;
    hr.timeout_ms = CALL_TIMEOUT_MS;
    hr.max_response = 1024 * 1024;
    rl_take(dc, c);
    rc = ob_http_request(dc->http, &hr, rest_done, c, &c->call);
    sodium_memzero(auth, sizeof(auth));
    sodium_memzero(url, strlen(url));
    free(url);
    if (rc) {
        ob_warn("discord", "%s: cannot start the request: %s", c->route, ob_strerror(rc));
        rl_done(dc, c);
        call_free(c);
        return rc;
    }
    c->next = dc->calls;
    if (dc->calls)
        dc->calls->prev = c;
    dc->calls = c;
    return 0;
}

void discord__rest_cancel_all(struct discord *dc)
{
    while (dc->calls) {
        struct dc_call *c = dc->calls;

        dc->calls = c->next;
        if (c->call && dc->http)
            ob_http_cancel(c->call);
        rl_done(dc, c);
        call_free(c);
    }
}

static void op_result(struct discord *dc, void *data, const struct dc_rest_result *res);

/* Cancels the calls that are not deliveries of the send queue (GET
 * /gateway/bot): at stop nobody waits for them. Their data is never owned. */
void discord__rest_cancel_others(struct discord *dc)
{
    for (struct dc_call *c = dc->calls, *next; c; c = next) {
        next = c->next;
        if (c->cb == op_result)
            continue;
        call_unlink(dc, c);
        if (c->call && dc->http)
            ob_http_cancel(c->call);
        rl_done(dc, c);
        call_free(c);
    }
}

/* ---- the send queue ------------------------------------------------------------------ */

void discord__op_free(struct dc_op *op)
{
    if (!op)
        return;
    free(op->text);
    if (op->path)
        sodium_memzero(op->path, strlen(op->path));
    free(op->path);
    free(op->body);
    if (op->ev) {
        ob_discord_event_release(op->ev);
        free(op->ev);
    }
    free(op);
}

/* Ends the head op of q: callbacks, free. */
static void op_finish(struct discord *dc, struct dc_queue *q, int status,
                      const struct dc_rest_result *res)
{
    struct dc_op *op = q->head;
    struct ob_msgref ref;
    int st = status ? status : op->status;

    q->head = op->next;
    if (!q->head)
        q->tail = NULL;
    dc->nqueued--;
    if (op->kind == DC_OP_POST && op->cb) {
        const char *mid = (op->flags & OB_POST_APPROVAL) ? op->last_id : op->first_id;

        memset(&ref, 0, sizeof(ref));
        ob_strlcpy(ref.channel, op->target[0] ? op->target : op->channel, sizeof(ref.channel));
        ob_strlcpy(ref.thread, op->thread, sizeof(ref.thread));
        ob_strlcpy(ref.message, mid, sizeof(ref.message));
        if (!st && !mid[0])
            st = OB_EHTTP;
        op->cb(op->cb_data, st, st ? NULL : &ref);
    }
    if (op->done)
        op->done(dc, op, st, res);
    discord__op_free(op);
}

static void queue_free(struct discord *dc, struct dc_queue *q)
{
    for (struct dc_queue **pp = &dc->queues; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    while (q->head) {
        struct dc_op *op = q->head;

        q->head = op->next;
        dc->nqueued--;
        discord__op_free(op);
    }
    dc->nqueues--;
    free(q);
}

/* The thread's name: the first line of the first post, capped. */
static char *thread_name(const char *text)
{
    size_t n = strcspn(text, "\n");
    char *name;

    if (n > 90) {
        n = 90;
        while (n > 1 && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--;
    }
    if (asprintf(&name, "opsbot: %.*s", (int)n, text) < 0)
        return NULL;
    return name;
}

/* The next request of the head op: method, path, body (malloc'd). */
static int op_request(struct dc_op *op, char *method, size_t mlen, char **path, char **body)
{
    cJSON *o = NULL;
    int rc;

    *path = NULL;
    *body = NULL;
    switch (op->kind) {
    case DC_OP_POST:
        if (!op->target[0]) {
            /* Start a thread from the root message. */
            char *name = thread_name(op->text);

            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", name ? name : "opsbot");
            cJSON_AddNumberToObject(o, "auto_archive_duration", 1440);
            free(name);
            ob_strlcpy(method, "POST", mlen);
            rc = asprintf(path, "/channels/%s/messages/%s/threads", op->channel, op->thread);
            break;
        }
        {
            size_t n = discord__chunk_len(op->text, op->off);
            char *chunk = discord__chunk(op->text, op->off, n), *content = NULL;
            bool last = op->off + n >= strlen(op->text);

            if (!chunk)
                return OB_ENOMEM;
            if (op->off == 0 && op->ask_user[0]) {
                if (asprintf(&content, "<@%s> %s", op->ask_user, chunk) < 0)
                    content = NULL;
                free(chunk);
            } else {
                content = chunk;
            }
            if (!content)
                return OB_ENOMEM;
            o = discord__message_body(*content ? content : "\xe2\x80\x8b",
                                      last ? op->flags : (op->flags & ~(unsigned)OB_POST_APPROVAL),
                                      op->off == 0 ? op->ask_user : NULL,
                                      op->off == 0 ? op->reply_to : NULL);
            free(content);
            ob_strlcpy(method, "POST", mlen);
            rc = asprintf(path, "/channels/%s/messages", op->target);
        }
        break;
    case DC_OP_UPDATE: {
        size_t n = discord__chunk_len(op->text, 0);
        char *chunk = discord__chunk(op->text, 0, n);

        if (!chunk)
            return OB_ENOMEM;
        o = discord__edit_body(*chunk ? chunk : "\xe2\x80\x8b", op->flags);
        free(chunk);
        ob_strlcpy(method, "PATCH", mlen);
        rc = asprintf(path, "/channels/%s/messages/%s", op->channel, op->message);
        break;
    }
    case DC_OP_REACT:
        ob_strlcpy(method, "PUT", mlen);
        rc = asprintf(path, "/channels/%s/messages/%s/reactions/%s/@me", op->channel, op->message,
                      op->text);
        break;
    case DC_OP_CALLBACK:
        ob_strlcpy(method, "POST", mlen);
        *path = ob_xstrdup(op->path);
        *body = ob_xstrdup(op->body);
        return 0;
    case DC_OP_ORIGINAL:
        ob_strlcpy(method, "GET", mlen);
        *path = ob_xstrdup(op->path);
        return 0;
    default:
        return OB_EINVAL;
    }
    if (rc < 0) {
        *path = NULL;
        cJSON_Delete(o);
        return OB_ENOMEM;
    }
    if (o) {
        *body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!*body) {
            free(*path);
            *path = NULL;
            return OB_ENOMEM;
        }
    }
    return 0;
}

/* Where a post with a thread goes, when that is known: a known thread
 * channel (one we started has the root message's id), or the channel
 * itself with a reply where threads are not possible (DMs). Otherwise the
 * target stays "" and the thread is started first. */
static void resolve_target(struct discord *dc, struct dc_op *op)
{
    if (op->kind != DC_OP_POST || op->target[0])
        return;
    if (!strcmp(op->thread, op->channel) || discord__thread_parent(dc, op->thread)) {
        ob_strlcpy(op->target, op->thread, sizeof(op->target));
    } else if (discord__is_dm(dc, op->channel) || discord__is_nothread(dc, op->thread)) {
        ob_strlcpy(op->target, op->channel, sizeof(op->target));
        ob_strlcpy(op->reply_to, op->thread, sizeof(op->reply_to));
    }
}

static void start_op(struct discord *dc, struct dc_queue *q)
{
    struct dc_op *op = q->head;
    char method[8], *path = NULL, *body = NULL;
    int rc;

    resolve_target(dc, op);
    rc = op_request(op, method, sizeof(method), &path, &body);

    if (rc) {
        op_finish(dc, q, rc, NULL);
        return;
    }
    q->busy = true;
    rc = discord__rest(dc, method, path, body, op_result, q);
    if (path)
        sodium_memzero(path, strlen(path));
    free(path);
    free(body);
    if (rc) {
        q->busy = false;
        op->attempts++;
        q->retry_at_ms = ob_now_ms() + 1000;
        if (op->attempts >= TRANSIENT_TRIES)
            op_finish(dc, q, rc, NULL);
    }
}

static bool transient(const struct dc_rest_result *res)
{
    return res->err == OB_EHTTP || res->err == OB_EJSON;
}

static void permission_note(struct discord *dc, const struct dc_op *op,
                            const struct dc_rest_result *res)
{
    if (res->status != 403 || dc->warned_perm)
        return;
    dc->warned_perm = true;
    ob_error("discord",
             "missing permission in channel %s (code %d): the bot needs View Channel, Send "
             "Messages, Send Messages in Threads, Create Public Threads, Read Message History "
             "and Add Reactions there (see docs/DISCORD.md)",
             op->target[0] ? op->target : op->channel, res->code);
}

/* The thread start answered: where the posts of this op go. */
static void thread_started(struct discord *dc, struct dc_queue *q, const struct dc_rest_result *res)
{
    struct dc_op *op = q->head;
    const cJSON *id = res->json ? cJSON_GetObjectItemCaseSensitive(res->json, "id") : NULL;

    if (!res->err) {
        const char *tid =
            cJSON_IsString(id) && strlen(id->valuestring) < DC_ID ? id->valuestring : op->thread;

        discord__thread_add(dc, tid, op->channel);
        if (strcmp(tid, op->thread))
            discord__thread_add(dc, op->thread, op->channel);
        ob_strlcpy(op->target, tid, sizeof(op->target));
        return;
    }
    if (res->code == 160004) {
        /* A thread exists already: it has the root message's id. */
        discord__thread_add(dc, op->thread, op->channel);
        ob_strlcpy(op->target, op->thread, sizeof(op->target));
        return;
    }
    /* No thread here (DM, forum, missing permission, ...): reply instead. */
    ob_info("discord",
            "no thread for message %s in channel %s (HTTP %ld, code %d): replying in "
            "the channel",
            op->thread, op->channel, res->status, res->code);
    permission_note(dc, op, res);
    discord__nothread_add(dc, op->thread);
    ob_strlcpy(op->target, op->channel, sizeof(op->target));
    ob_strlcpy(op->reply_to, op->thread, sizeof(op->reply_to));
}

static void op_result(struct discord *dc, void *data, const struct dc_rest_result *res)
{
    struct dc_queue *q = data;
    struct dc_op *op = q->head;
    int64_t now = ob_now_ms();
    bool starting;

    q->busy = false;
    if (!op) {
        discord__pump(dc);
        return;
    }
    if (dc->dead || dc->life.closed) {
        while (q->head)
            op_finish(dc, q, OB_EHTTP, NULL);
        queue_free(dc, q);
        discord__pump(dc);
        return;
    }
    if (res->err == OB_EBUSY) {
        /* Rate limited: the op stays at the head; its bucket holds it back. */
        discord__pump(dc);
        return;
    }
    starting = op->kind == DC_OP_POST && !op->target[0];
    if (res->err && transient(res)) {
        if (++op->attempts < TRANSIENT_TRIES) {
            q->retry_at_ms = now + ((int64_t)500 << (op->attempts - 1));
            discord__pump(dc);
            return;
        }
        if (!starting) {
            op_finish(dc, q, res->err, res);
            discord__pump(dc);
            return;
        }
    }
    op->attempts = 0;
    q->retry_at_ms = 0;
    if (starting) {
        thread_started(dc, q, res);
        discord__pump(dc);
        return;
    }
    if (res->err) {
        if (op->kind == DC_OP_POST)
            permission_note(dc, op, res);
        op_finish(dc, q, res->err, res);
        discord__pump(dc);
        return;
    }
    if (op->kind == DC_OP_POST) {
        const cJSON *id = res->json ? cJSON_GetObjectItemCaseSensitive(res->json, "id") : NULL;
        size_t n = discord__chunk_len(op->text, op->off);

        if (cJSON_IsString(id) && strlen(id->valuestring) < DC_ID) {
            if (!op->first_id[0])
                ob_strlcpy(op->first_id, id->valuestring, sizeof(op->first_id));
            ob_strlcpy(op->last_id, id->valuestring, sizeof(op->last_id));
        }
        op->off += n;
        if (op->text[op->off]) {
            discord__pump(dc);
            return;
        }
    }
    op_finish(dc, q, 0, res);
    discord__pump(dc);
}

static void pump_cb(uv_timer_t *t)
{
    discord__pump(t->data);
}

/* Method and path of the head op's next request, for the bucket check. */
static int64_t head_wait(struct discord *dc, struct dc_queue *q)
{
    struct dc_op *op = q->head;
    char path[400];

    resolve_target(dc, op);
    switch (op->kind) {
    case DC_OP_POST:
        if (!op->target[0])
            snprintf(path, sizeof(path), "/channels/%s/messages/%s/threads", op->channel,
                     op->thread);
        else
            snprintf(path, sizeof(path), "/channels/%s/messages", op->target);
        return discord__rl_wait(dc, "POST", path);
    case DC_OP_UPDATE:
        snprintf(path, sizeof(path), "/channels/%s/messages/%s", op->channel, op->message);
        return discord__rl_wait(dc, "PATCH", path);
    case DC_OP_REACT:
        snprintf(path, sizeof(path), "/channels/%s/messages/%s/reactions/x/@me", op->channel,
                 op->message);
        return discord__rl_wait(dc, "PUT", path);
    case DC_OP_CALLBACK:
        return discord__rl_wait(dc, "POST", op->path);
    case DC_OP_ORIGINAL:
        return discord__rl_wait(dc, "GET", op->path);
    }
    return 0;
}

void discord__pump(struct discord *dc)
{
    int64_t now, next;

    if (dc->life.closed)
        return;
    if (dc->pumping) {
        dc->pump_again = true;
        return;
    }
    dc->pumping = true;
again:
    dc->pump_again = false;
    now = ob_now_ms();
    next = -1;
    for (struct dc_queue *q = dc->queues, *nx; q; q = nx) {
        int64_t at;

        nx = q->next;
        if (q->busy)
            continue;
        if (!q->head) {
            queue_free(dc, q);
            continue;
        }
        if (dc->dead) {
            while (q->head)
                op_finish(dc, q, OB_EHTTP, NULL);
            queue_free(dc, q);
            continue;
        }
        at = head_wait(dc, q);
        if (at < 0)
            continue; /* its bucket's answer pumps again */
        at += now;
        if (q->retry_at_ms > at)
            at = q->retry_at_ms;
        if (at > now) {
            if (next < 0 || at < next)
                next = at;
            continue;
        }
        start_op(dc, q);
        if (!q->busy && q->head && (next < 0 || q->retry_at_ms < next))
            next = q->retry_at_ms;
    }
    if (dc->pump_again)
        goto again;
    dc->pumping = false;
    if (dc->life.closed)
        return;
    if (next >= 0)
        uv_timer_start(&dc->pump, pump_cb, (uint64_t)(next > now ? next - now : 0), 0);
    else
        uv_timer_stop(&dc->pump);
    if (dc->life.stopping && !dc->queues && !dc->calls)
        discord__close_handles(dc);
}

int discord__enqueue(struct discord *dc, const char *key, struct dc_op *op)
{
    struct dc_queue *q, **tail;

    if (dc->dead || dc->life.closed) {
        discord__op_free(op);
        return OB_EHTTP;
    }
    if (dc->nqueued >= DC_MAX_QUEUED) {
        ob_warn("discord", "more than %d messages queued: refusing more", DC_MAX_QUEUED);
        discord__op_free(op);
        return OB_EBUSY;
    }
    for (q = dc->queues; q; q = q->next)
        if (!strcmp(q->key, key))
            break;
    if (!q) {
        if (dc->nqueues >= DC_MAX_QUEUES) {
            ob_warn("discord", "more than %d conversations with queued messages: refusing more",
                    DC_MAX_QUEUES);
            discord__op_free(op);
            return OB_EBUSY;
        }
        q = ob_xcalloc(1, sizeof(*q));
        ob_strlcpy(q->key, key, sizeof(q->key));
        /* Appended: older conversations are served first in a pump pass. */
        for (tail = &dc->queues; *tail; tail = &(*tail)->next)
            ;
        *tail = q;
        dc->nqueues++;
    }
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    dc->nqueued++;
    discord__pump(dc);
    return 0;
}

size_t discord__queued(const struct discord *dc)
{
    return dc->nqueued;
}

/* Drops everything not in flight (in-flight heads end in op_result). */
void discord__queue_drop(struct discord *dc, int status, bool call)
{
    for (struct dc_queue *q = dc->queues, *nx; q; q = nx) {
        nx = q->next;
        if (q->busy && q->head) {
            struct dc_op *keep = q->head;

            while (keep->next) {
                struct dc_op *op = keep->next;

                keep->next = op->next;
                dc->nqueued--;
                if (call && op->kind == DC_OP_POST && op->cb)
                    op->cb(op->cb_data, status, NULL);
                discord__op_free(op);
            }
            q->tail = keep;
            continue;
        }
        while (q->head) {
            if (call) {
                op_finish(dc, q, status, NULL);
            } else {
                struct dc_op *op = q->head;

                q->head = op->next;
                dc->nqueued--;
                discord__op_free(op);
            }
        }
        queue_free(dc, q);
    }
}
