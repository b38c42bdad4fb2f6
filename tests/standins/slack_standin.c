/* The local Slack: see slack_standin.h. Response shapes follow Slack's Web
 * API and Socket Mode documentation (../shared/protocols.md part A). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_standin.h"
#include "standin_wait.h"

#define MAX_CONNS 16
#define MAX_TICKETS 256
#define MAX_FAULTS 8
#define RELAY_BUF 65536

struct sconn {
    struct slack_standin *s;
    struct ob_ws *ws;
    unsigned id;
};

struct senv {
    char id[64];
    int64_t sent_ms;
    bool acked;
    bool failed;
    bool retried; /* slack_standin_redeliver_unacked sent it again */
    char *json;   /* the frame as sent */
};

struct fault {
    char method[40];
    int n;
    int retry_after;
    char error[64];
};

struct pair {
    struct pair *next;
    struct slack_standin *s;
    uv_tcp_t down; /* opsbot's side */
    uv_tcp_t up;   /* towards the websocket endpoint */
    uv_connect_t creq;
    bool silent;
    bool closing;
    int closed;
};

struct slack_standin {
    uv_loop_t *loop;
    struct ob_lws *lws;
    struct ob_http_server *srv;
    int port;
    char api_base[64];
    char bot_token[256], app_token[256], bot_user[64];
    int64_t ping_ms, ack_deadline_ms, last_ping_ms;
    uv_timer_t tick;
    struct standin_waiter waiter;
    uv_tcp_t relay;
    int relay_port;
    struct pair *pairs;
    int handles; /* open uv handles embedded in the struct */
    bool freeing;

    struct standin_call *calls;
    size_t ncalls, capcalls;
    struct fault rl[MAX_FAULTS], fails[MAX_FAULTS], http_errs[MAX_FAULTS];

    struct sconn *conns[MAX_CONNS];
    unsigned next_conn, target;
    size_t opens, hellos, bad_tickets, pongs;
    char tickets[MAX_TICKETS][40];
    bool ticket_used[MAX_TICKETS];
    size_t ntickets;
    struct senv *envs;
    size_t nenvs, capenvs, acked, ack_failures;
    cJSON *last_env;
    unsigned seq;
    char **posted; /* "channel ts" of messages given out */
    size_t nposted;
    char **reacted; /* "channel ts name" */
    size_t nreacted;
    struct slack_standin_hooks hooks; /* the load source's (tests/bench/) */
};

/* ---- small helpers ----------------------------------------------------------- */

static void new_ts(struct slack_standin *s, char *out, size_t len)
{
    unsigned n = ++s->seq;

    snprintf(out, len, "%u.%06u", 1700000000u + n / 1000000u, n % 1000000u);
}

static void strlist_add(char ***list, size_t *n, const char *a, const char *b, const char *c)
{
    char *e = NULL;

    if (asprintf(&e, "%s %s %s", a, b, c ? c : "") < 0)
        return;
    *list = realloc(*list, (*n + 1) * sizeof(char *));
    (*list)[(*n)++] = e;
}

static bool strlist_has(char **list, size_t n, const char *a, const char *b, const char *c)
{
    char *e = NULL;
    bool found = false;

    if (asprintf(&e, "%s %s %s", a, b, c ? c : "") < 0)
        return false;
    for (size_t i = 0; i < n && !found; i++)
        found = !strcmp(list[i], e);
    free(e);
    return found;
}

static char *urldecode(const char *p, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '+') {
            out[o++] = ' ';
        } else if (p[i] == '%' && i + 2 < len && ob_hexval(p[i + 1]) >= 0 &&
                   ob_hexval(p[i + 2]) >= 0) {
            out[o++] = (char)(ob_hexval(p[i + 1]) * 16 + ob_hexval(p[i + 2]));
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    out[o] = '\0';
    return out;
}

static cJSON *form_parse(const char *body, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    size_t i = 0;

    while (i < len) {
        size_t end = i, eq;
        char *k, *v;

        while (end < len && body[end] != '&')
            end++;
        for (eq = i; eq < end && body[eq] != '='; eq++)
            ;
        k = urldecode(body + i, eq - i);
        v = eq < end ? urldecode(body + eq + 1, end - eq - 1) : strdup("");
        if (*k)
            cJSON_AddStringToObject(o, k, v);
        free(k);
        free(v);
        i = end + 1;
    }
    return o;
}

static const char *pstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static struct fault *fault_take(struct fault *list, const char *method)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        if (list[i].n > 0 && (!strcmp(list[i].method, method) || !strcmp(list[i].method, "*"))) {
            list[i].n--;
            return &list[i];
        }
    }
    return NULL;
}

static void fault_set(struct fault *list, const char *method, int n, int retry_after,
                      const char *error)
{
    int slot = 0;

    for (int i = 0; i < MAX_FAULTS; i++) {
        if (!strcmp(list[i].method, method) || list[i].n <= 0) {
            slot = i;
            break;
        }
    }
    ob_strlcpy(list[slot].method, method, sizeof(list[slot].method));
    list[slot].n = n;
    list[slot].retry_after = retry_after;
    ob_strlcpy(list[slot].error, error ? error : "", sizeof(list[slot].error));
}

/* ---- the Web API ---------------------------------------------------------------- */

static struct standin_call *call_new(struct slack_standin *s, const char *method)
{
    struct standin_call *c;

    if (s->ncalls == s->capcalls) {
        s->capcalls = s->capcalls ? s->capcalls * 2 : 64;
        s->calls = realloc(s->calls, s->capcalls * sizeof(*s->calls));
    }
    c = &s->calls[s->ncalls++];
    memset(c, 0, sizeof(*c));
    ob_strlcpy(c->method, method, sizeof(c->method));
    c->text = strdup("");
    c->at_ms = ob_now_ms();
    c->status = 200;
    return c;
}

static void reply_json(struct ob_http_exchange *ex, int status, cJSON *o, const char *const *hdrs)
{
    char *body = cJSON_PrintUnformatted(o);

    ob_http_reply(ex, status, "application/json; charset=utf-8", body, strlen(body), hdrs);
    free(body);
    cJSON_Delete(o);
}

static void reply_error(struct ob_http_exchange *ex, struct standin_call *c, const char *error)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddFalseToObject(o, "ok");
    cJSON_AddStringToObject(o, "error", error);
    ob_strlcpy(c->error, error, sizeof(c->error));
    reply_json(ex, 200, o, NULL);
}

static void note_blocks(struct standin_call *c, const cJSON *blocks)
{
    const cJSON *b;

    if (!blocks)
        return;
    c->has_blocks = true;
    c->blocks_empty = cJSON_IsArray(blocks) && cJSON_GetArraySize(blocks) == 0;
    cJSON_ArrayForEach(b, (cJSON_IsArray(blocks) ? blocks : NULL))
    {
        const char *t = pstr(b, "type");
        const cJSON *el, *e;
        bool approve = false, deny = false;

        if (!t || strcmp(t, "actions"))
            continue;
        el = cJSON_GetObjectItemCaseSensitive(b, "elements");
        cJSON_ArrayForEach(e, el)
        {
            const char *id = pstr(e, "action_id"), *v = pstr(e, "value");

            approve |= id && v && !strcmp(id, "approve") && !strcmp(v, "approve");
            deny |= id && v && !strcmp(id, "deny") && !strcmp(v, "deny");
        }
        if (approve && deny)
            c->has_buttons = true;
    }
}

static cJSON *message_obj(struct slack_standin *s, const char *ts, const char *text,
                          const char *thread_ts)
{
    cJSON *m = cJSON_CreateObject();

    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "text", text);
    cJSON_AddStringToObject(m, "user", s->bot_user);
    cJSON_AddStringToObject(m, "bot_id", "B0STANDIN");
    cJSON_AddStringToObject(m, "team", "T0STANDIN");
    cJSON_AddStringToObject(m, "ts", ts);
    if (thread_ts)
        cJSON_AddStringToObject(m, "thread_ts", thread_ts);
    return m;
}

static void api(struct slack_standin *s, struct ob_http_exchange *ex,
                const struct ob_http_srv_req *req, const char *method)
{
    const char *auth = ob_http_srv_header(req, "Authorization");
    const char *ctype = ob_http_srv_header(req, "Content-Type");
    const char *token = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
    bool app = !strcmp(method, "apps.connections.open");
    const char *want = app ? s->app_token : s->bot_token;
    struct standin_call *c = call_new(s, method);
    cJSON *params, *o;
    struct fault *f;

    if (!strcmp(req->method, "GET"))
        params = form_parse(req->query, strlen(req->query));
    else if (ctype && strstr(ctype, "json"))
        params = cJSON_ParseWithLength(req->body, req->body_len);
    else
        params = form_parse(req->body ? req->body : "", req->body_len);
    if (!params)
        params = cJSON_CreateObject();
    ob_strlcpy(c->channel, pstr(params, "channel") ? pstr(params, "channel") : "",
               sizeof(c->channel));
    ob_strlcpy(c->thread_ts, pstr(params, "thread_ts") ? pstr(params, "thread_ts") : "",
               sizeof(c->thread_ts));
    if (pstr(params, "text")) {
        free(c->text);
        c->text = strdup(pstr(params, "text"));
    }
    note_blocks(c, cJSON_GetObjectItemCaseSensitive(params, "blocks"));

    f = fault_take(s->http_errs, method);
    if (f) {
        /* What a load balancer in front of Slack answers: no JSON. */
        static const char body[] = "<html><body><h1>503 Service Unavailable</h1>"
                                   "upstream connect error</body></html>";

        c->status = f->retry_after;
        snprintf(c->error, sizeof(c->error), "http_%d", f->retry_after);
        ob_http_reply(ex, f->retry_after, "text/html", body, sizeof(body) - 1, NULL);
        goto out;
    }
    f = fault_take(s->rl, method);
    if (f) {
        char ra[40];
        const char *hdrs[] = {ra, NULL};

        snprintf(ra, sizeof(ra), "Retry-After: %d", f->retry_after);
        o = cJSON_CreateObject();
        cJSON_AddFalseToObject(o, "ok");
        cJSON_AddStringToObject(o, "error", "ratelimited");
        c->status = 429;
        ob_strlcpy(c->error, "ratelimited", sizeof(c->error));
        reply_json(ex, 429, o, hdrs);
        goto out;
    }
    if (!token) {
        reply_error(ex, c, "not_authed");
        goto out;
    }
    if (strcmp(token, want)) {
        reply_error(ex, c,
                    (app && !strncmp(token, "xoxb-", 5)) || (!app && !strncmp(token, "xapp-", 5))
                        ? "not_allowed_token_type"
                        : "invalid_auth");
        goto out;
    }
    f = fault_take(s->fails, method);
    if (f) {
        reply_error(ex, c, f->error);
        goto out;
    }
    o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "ok");
    if (!strcmp(method, "auth.test")) {
        cJSON_AddStringToObject(o, "url", "https://standin.slack.com/");
        cJSON_AddStringToObject(o, "team", "Standin");
        cJSON_AddStringToObject(o, "user", "opsbot");
        cJSON_AddStringToObject(o, "team_id", "T0STANDIN");
        cJSON_AddStringToObject(o, "user_id", s->bot_user);
        cJSON_AddStringToObject(o, "bot_id", "B0STANDIN");
        cJSON_AddFalseToObject(o, "is_enterprise_install");
    } else if (app) {
        char url[160];
        size_t t = s->ntickets % MAX_TICKETS;

        if (strcmp(req->method, "POST")) {
            cJSON_Delete(o);
            reply_error(ex, c, "insecure_request");
            goto out;
        }
        snprintf(s->tickets[t], sizeof(s->tickets[t]), "tk-%u-%u", ++s->seq,
                 randombytes_random() % 100000);
        s->ticket_used[t] = false;
        s->ntickets++;
        snprintf(url, sizeof(url), "ws://127.0.0.1:%d/link/?ticket=%s&app_id=A0STANDIN",
                 s->relay_port, s->tickets[t]);
        cJSON_AddStringToObject(o, "url", url);
        s->opens++;
    } else if (!strcmp(method, "chat.postMessage")) {
        char ts[32];

        if (!*c->channel || !strncmp(c->channel, "CBAD", 4)) {
            cJSON_Delete(o);
            reply_error(ex, c, "channel_not_found");
            goto out;
        }
        if (!*c->text && !c->has_blocks) {
            cJSON_Delete(o);
            reply_error(ex, c, "no_text");
            goto out;
        }
        new_ts(s, ts, sizeof(ts));
        ob_strlcpy(c->ts, ts, sizeof(c->ts));
        if (s->hooks.on_post)
            s->hooks.on_post(s->hooks.arg, c->channel, c->thread_ts, c->text);
        if (!s->hooks.lean)
            strlist_add(&s->posted, &s->nposted, c->channel, ts, NULL);
        cJSON_AddStringToObject(o, "channel", c->channel);
        cJSON_AddStringToObject(o, "ts", ts);
        cJSON_AddItemToObject(o, "message",
                              message_obj(s, ts, c->text, *c->thread_ts ? c->thread_ts : NULL));
    } else if (!strcmp(method, "chat.update")) {
        ob_strlcpy(c->ts, pstr(params, "ts") ? pstr(params, "ts") : "", sizeof(c->ts));
        if (!strlist_has(s->posted, s->nposted, c->channel, c->ts, NULL)) {
            cJSON_Delete(o);
            reply_error(ex, c, "message_not_found");
            goto out;
        }
        cJSON_AddStringToObject(o, "channel", c->channel);
        cJSON_AddStringToObject(o, "ts", c->ts);
        cJSON_AddStringToObject(o, "text", c->text);
        cJSON_AddItemToObject(o, "message", message_obj(s, c->ts, c->text, NULL));
    } else if (!strcmp(method, "reactions.add")) {
        ob_strlcpy(c->timestamp, pstr(params, "timestamp") ? pstr(params, "timestamp") : "",
                   sizeof(c->timestamp));
        ob_strlcpy(c->name, pstr(params, "name") ? pstr(params, "name") : "", sizeof(c->name));
        if (!*c->channel || !*c->timestamp || !*c->name) {
            cJSON_Delete(o);
            reply_error(ex, c, "no_item_specified");
            goto out;
        }
        if (strlist_has(s->reacted, s->nreacted, c->channel, c->timestamp, c->name)) {
            cJSON_Delete(o);
            reply_error(ex, c, "already_reacted");
            goto out;
        }
        strlist_add(&s->reacted, &s->nreacted, c->channel, c->timestamp, c->name);
    } else if (!strcmp(method, "users.info")) {
        const char *u = pstr(params, "user");
        cJSON *user, *profile;
        char name[80];

        ob_strlcpy(c->user, u ? u : "", sizeof(c->user));
        if (!u || (u[0] != 'U' && u[0] != 'W')) {
            cJSON_Delete(o);
            reply_error(ex, c, "user_not_found");
            goto out;
        }
        snprintf(name, sizeof(name), "user-%s", u);
        user = cJSON_AddObjectToObject(o, "user");
        cJSON_AddStringToObject(user, "id", u);
        cJSON_AddStringToObject(user, "team_id", "T0STANDIN");
        cJSON_AddStringToObject(user, "name", name);
        cJSON_AddStringToObject(user, "real_name", name);
        cJSON_AddFalseToObject(user, "deleted");
        cJSON_AddFalseToObject(user, "is_bot");
        cJSON_AddStringToObject(user, "tz", "Europe/Berlin");
        profile = cJSON_AddObjectToObject(user, "profile");
        cJSON_AddStringToObject(profile, "display_name", name);
        cJSON_AddStringToObject(profile, "real_name", name);
    } else {
        cJSON_Delete(o);
        reply_error(ex, c, "unknown_method");
        goto out;
    }
    reply_json(ex, 200, o, NULL);
out:
    cJSON_Delete(params);
    if (s->hooks.lean && s->ncalls && &s->calls[s->ncalls - 1] == c) {
        free(c->text);
        s->ncalls--;
    }
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct slack_standin *s = data;

    if (!strncmp(req->path, "/api/", 5) && req->path[5]) {
        api(s, ex, req, req->path + 5);
        return;
    }
    if (!strncmp(req->path, "/bench/", 7)) {
        ob_http_reply(ex, 200, "application/json", "{\"ok\":true}", 11, NULL);
        return;
    }
    ob_http_reply(ex, 404, "text/plain", "not found\n", 10, NULL);
}

/* ---- Socket Mode --------------------------------------------------------------- */

static struct sconn *target_conn(struct slack_standin *s)
{
    struct sconn *best = NULL;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct sconn *c = s->conns[i];

        if (!c)
            continue;
        if (s->target && c->id == s->target)
            return c;
        if (!best || c->id > best->id)
            best = c;
    }
    return s->target ? NULL : best;
}

static size_t live_count(const struct slack_standin *s)
{
    size_t n = 0;

    for (int i = 0; i < MAX_CONNS; i++)
        n += s->conns[i] != NULL;
    return n;
}

static void ws_open(void *data, struct ob_ws *ws)
{
    struct slack_standin *s = data;
    const char *q = ob_ws_query(ws), *t;
    char ticket[40] = "", hello[512];
    bool ok = false, debug;
    struct sconn *c;
    int slot = -1;

    t = q ? strstr(q, "ticket=") : NULL;
    if (t) {
        size_t n = strcspn(t + 7, "&");

        snprintf(ticket, sizeof(ticket), "%.*s", (int)(n < 39 ? n : 39), t + 7);
    }
    for (size_t i = 0; i < MAX_TICKETS && *ticket; i++) {
        if (!strcmp(s->tickets[i], ticket) && !s->ticket_used[i]) {
            s->ticket_used[i] = true;
            ok = true;
            break;
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (!s->conns[i]) {
            slot = i;
            break;
        }
    if (!ok || slot < 0) {
        s->bad_tickets += !ok;
        ob_ws_set_data(ws, NULL);
        ob_ws_close(ws, 1008, ok ? "too many connections" : "invalid ticket");
        return;
    }
    debug = q && strstr(q, "debug_reconnects=true");
    c = calloc(1, sizeof(*c));
    c->s = s;
    c->ws = ws;
    c->id = ++s->next_conn;
    s->conns[slot] = c;
    ob_ws_set_data(ws, c);
    snprintf(hello, sizeof(hello),
             "{\"type\":\"hello\",\"num_connections\":%zu,\"connection_info\":{\"app_id\":"
             "\"A0STANDIN\"},\"debug_info\":{\"host\":\"applink-standin-%u\",\"started\":"
             "\"2026-01-01 00:00:00.000\",\"build_number\":1,\"approximate_connection_time\":%d}}",
             live_count(s), c->id, debug ? 360 : 3600);
    ob_ws_send_text(ws, hello, strlen(hello));
    s->hellos++;
}

static void ws_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct sconn *c = data;
    struct slack_standin *s;
    cJSON *o;
    const char *id;
    int64_t now = ob_now_ms();

    (void)ws;
    if (!c)
        return;
    s = c->s;
    if (s->hooks.on_frame)
        s->hooks.on_frame(s->hooks.arg, text, len);
    if (s->hooks.lean && !s->nenvs)
        return;
    o = cJSON_ParseWithLength(text, len);
    id = pstr(o, "envelope_id");
    if (getenv("STANDIN_DEBUG"))
        fprintf(stderr, "STANDIN rx %lld conn %u: %.*s acked=%zu n=%zu\n", (long long)now, c->id,
                (int)len, text, s->acked, s->nenvs);
    /* A redelivered envelope has its original's id: the ack belongs to the
     * copy that is still waiting, if there is one. */
    for (size_t i = 0; id && i < s->nenvs; i++) {
        struct senv *e = &s->envs[i];

        if (e->acked || e->failed || strcmp(e->id, id))
            continue;
        if (now - e->sent_ms <= s->ack_deadline_ms) {
            e->acked = true;
            s->acked++;
            id = NULL;
        }
        break;
    }
    for (size_t i = 0; id && i < s->nenvs; i++) {
        struct senv *e = &s->envs[i];

        if (e->acked || strcmp(e->id, id))
            continue;
        e->acked = true;
        if (e->failed)
            break; /* counted as a failure already */
        if (now - e->sent_ms > s->ack_deadline_ms) {
            e->failed = true;
            s->ack_failures++;
        } else {
            s->acked++;
        }
        break;
    }
    cJSON_Delete(o);
}

static void ws_pong(void *data, struct ob_ws *ws)
{
    struct sconn *c = data;

    (void)ws;
    if (c)
        c->s->pongs++;
}

static void ws_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct sconn *c = data;

    (void)ws;
    (void)code;
    (void)reason;
    if (!c)
        return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (c->s->conns[i] == c)
            c->s->conns[i] = NULL;
    free(c);
}

static const struct ob_ws_cbs ws_cbs = {
    .on_open = ws_open,
    .on_text = ws_text,
    .on_pong = ws_pong,
    .on_close = ws_close,
};

static int send_envelope(struct slack_standin *s, cJSON *env)
{
    struct sconn *c = target_conn(s);
    char *text;
    struct senv *e;
    int rc;

    if (!c) {
        cJSON_Delete(env);
        return -1;
    }
    text = cJSON_PrintUnformatted(env);
    if (getenv("STANDIN_DEBUG"))
        fprintf(stderr, "STANDIN tx conn %u: %.80s\n", c->id, text);
    rc = ob_ws_send_text(c->ws, text, strlen(text));
    if (rc) {
        free(text);
        cJSON_Delete(env);
        return rc;
    }
    if (s->nenvs == s->capenvs) {
        s->capenvs = s->capenvs ? s->capenvs * 2 : 64;
        s->envs = realloc(s->envs, s->capenvs * sizeof(*s->envs));
    }
    e = &s->envs[s->nenvs++];
    memset(e, 0, sizeof(*e));
    ob_strlcpy(e->id, pstr(env, "envelope_id"), sizeof(e->id));
    e->sent_ms = ob_now_ms();
    e->json = text;
    cJSON_Delete(s->last_env);
    s->last_env = env;
    return 0;
}

static cJSON *envelope(struct slack_standin *s, const char *type, cJSON *payload)
{
    cJSON *env = cJSON_CreateObject();
    char id[64];

    snprintf(id, sizeof(id), "%08x-standin-%06u", randombytes_random(), ++s->seq);
    cJSON_AddStringToObject(env, "envelope_id", id);
    cJSON_AddStringToObject(env, "type", type);
    cJSON_AddItemToObject(env, "payload", payload);
    cJSON_AddBoolToObject(env, "accepts_response_payload", !strcmp(type, "slash_commands"));
    if (!strcmp(type, "events_api")) {
        cJSON_AddNumberToObject(env, "retry_attempt", 0);
        cJSON_AddStringToObject(env, "retry_reason", "");
    }
    return env;
}

static int send_event(struct slack_standin *s, cJSON *ev)
{
    cJSON *p = cJSON_CreateObject(), *auths = cJSON_CreateArray(), *a = cJSON_CreateObject();
    char id[32];

    snprintf(id, sizeof(id), "Ev%08uSTANDIN", ++s->seq);
    cJSON_AddStringToObject(p, "token", "verification-token");
    cJSON_AddStringToObject(p, "team_id", "T0STANDIN");
    cJSON_AddStringToObject(p, "api_app_id", "A0STANDIN");
    cJSON_AddItemToObject(p, "event", ev);
    cJSON_AddStringToObject(p, "type", "event_callback");
    cJSON_AddStringToObject(p, "event_id", id);
    cJSON_AddNumberToObject(p, "event_time", (double)(ob_now_ms() / 1000));
    cJSON_AddNullToObject(a, "enterprise_id");
    cJSON_AddStringToObject(a, "team_id", "T0STANDIN");
    cJSON_AddStringToObject(a, "user_id", s->bot_user);
    cJSON_AddTrueToObject(a, "is_bot");
    cJSON_AddFalseToObject(a, "is_enterprise_install");
    cJSON_AddItemToArray(auths, a);
    cJSON_AddItemToObject(p, "authorizations", auths);
    cJSON_AddFalseToObject(p, "is_ext_shared_channel");
    cJSON_AddStringToObject(p, "event_context", "4-standin");
    return send_envelope(s, envelope(s, "events_api", p));
}

static cJSON *msg_event(struct slack_standin *s, const char *type, const char *channel,
                        const char *user, const char *text, const char *ts, const char *thread_ts)
{
    cJSON *ev = cJSON_CreateObject();
    char cm[40];

    snprintf(cm, sizeof(cm), "cm-%u", ++s->seq);
    cJSON_AddStringToObject(ev, "client_msg_id", cm);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "text", text);
    cJSON_AddStringToObject(ev, "user", user);
    cJSON_AddStringToObject(ev, "ts", ts);
    cJSON_AddStringToObject(ev, "team", "T0STANDIN");
    cJSON_AddStringToObject(ev, "channel", channel);
    cJSON_AddStringToObject(ev, "event_ts", ts);
    if (!strcmp(type, "message"))
        cJSON_AddStringToObject(ev, "channel_type", channel[0] == 'D' ? "im" : "channel");
    if (thread_ts && *thread_ts) {
        cJSON_AddStringToObject(ev, "thread_ts", thread_ts);
        cJSON_AddStringToObject(ev, "parent_user_id", s->bot_user);
    }
    return ev;
}

int slack_standin_message(struct slack_standin *s, const char *channel, const char *user,
                          const char *text, const char *thread_ts, char *ts_out, size_t ts_len)
{
    char ts[32], mention[80];
    int rc;

    new_ts(s, ts, sizeof(ts));
    if (ts_out)
        ob_strlcpy(ts_out, ts, ts_len);
    rc = send_event(s, msg_event(s, "message", channel, user, text, ts, thread_ts));
    snprintf(mention, sizeof(mention), "<@%s>", s->bot_user);
    if (!rc && channel[0] != 'D' && strstr(text, mention))
        rc = send_event(s, msg_event(s, "app_mention", channel, user, text, ts, thread_ts));
    return rc;
}

int slack_standin_event(struct slack_standin *s, const char *event_json)
{
    cJSON *ev = cJSON_Parse(event_json);

    if (!ev)
        return -1;
    return send_event(s, ev);
}

int slack_standin_reaction(struct slack_standin *s, const char *user, const char *reaction,
                           const char *channel, const char *ts, bool added)
{
    cJSON *ev = cJSON_CreateObject(), *item = cJSON_CreateObject();
    char ets[32];

    new_ts(s, ets, sizeof(ets));
    cJSON_AddStringToObject(ev, "type", added ? "reaction_added" : "reaction_removed");
    cJSON_AddStringToObject(ev, "user", user);
    cJSON_AddStringToObject(ev, "reaction", reaction);
    cJSON_AddStringToObject(ev, "item_user", s->bot_user);
    cJSON_AddStringToObject(item, "type", "message");
    cJSON_AddStringToObject(item, "channel", channel);
    cJSON_AddStringToObject(item, "ts", ts);
    cJSON_AddItemToObject(ev, "item", item);
    cJSON_AddStringToObject(ev, "event_ts", ets);
    return send_event(s, ev);
}

int slack_standin_button(struct slack_standin *s, const char *user, const char *channel,
                         const char *message_ts, const char *thread_ts, const char *action)
{
    cJSON *p = cJSON_CreateObject(), *o, *actions, *a;
    char ats[32], trig[40];

    new_ts(s, ats, sizeof(ats));
    snprintf(trig, sizeof(trig), "%u.%u.standin", s->seq, randombytes_random() % 100000);
    cJSON_AddStringToObject(p, "type", "block_actions");
    o = cJSON_AddObjectToObject(p, "user");
    cJSON_AddStringToObject(o, "id", user);
    cJSON_AddStringToObject(o, "username", user);
    cJSON_AddStringToObject(o, "name", user);
    cJSON_AddStringToObject(o, "team_id", "T0STANDIN");
    cJSON_AddStringToObject(p, "api_app_id", "A0STANDIN");
    cJSON_AddStringToObject(p, "token", "verification-token");
    o = cJSON_AddObjectToObject(p, "container");
    cJSON_AddStringToObject(o, "type", "message");
    cJSON_AddStringToObject(o, "message_ts", message_ts);
    cJSON_AddStringToObject(o, "channel_id", channel);
    cJSON_AddFalseToObject(o, "is_ephemeral");
    cJSON_AddStringToObject(p, "trigger_id", trig);
    o = cJSON_AddObjectToObject(p, "team");
    cJSON_AddStringToObject(o, "id", "T0STANDIN");
    cJSON_AddStringToObject(o, "domain", "standin");
    o = cJSON_AddObjectToObject(p, "channel");
    cJSON_AddStringToObject(o, "id", channel);
    cJSON_AddStringToObject(o, "name", "ops");
    o = message_obj(s, message_ts, "approval", thread_ts);
    cJSON_AddItemToObject(p, "message", o);
    o = cJSON_AddObjectToObject(p, "state");
    cJSON_AddObjectToObject(o, "values");
    cJSON_AddStringToObject(p, "response_url", "https://hooks.standin.slack.com/actions/x");
    actions = cJSON_AddArrayToObject(p, "actions");
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "type", "button");
    cJSON_AddStringToObject(a, "action_id", action);
    cJSON_AddStringToObject(a, "block_id", "opsbot_approval");
    cJSON_AddStringToObject(a, "value", action);
    cJSON_AddStringToObject(a, "style", !strcmp(action, "approve") ? "primary" : "danger");
    o = cJSON_AddObjectToObject(a, "text");
    cJSON_AddStringToObject(o, "type", "plain_text");
    cJSON_AddStringToObject(o, "text", !strcmp(action, "approve") ? "Approve" : "Deny");
    cJSON_AddTrueToObject(o, "emoji");
    cJSON_AddStringToObject(a, "action_ts", ats);
    cJSON_AddItemToArray(actions, a);
    return send_envelope(s, envelope(s, "interactive", p));
}

int slack_standin_slash(struct slack_standin *s, const char *user, const char *channel,
                        const char *text)
{
    cJSON *p = cJSON_CreateObject();
    char trig[40];

    snprintf(trig, sizeof(trig), "%u.%u.standin", ++s->seq, randombytes_random() % 100000);
    cJSON_AddStringToObject(p, "token", "verification-token");
    cJSON_AddStringToObject(p, "team_id", "T0STANDIN");
    cJSON_AddStringToObject(p, "team_domain", "standin");
    cJSON_AddStringToObject(p, "channel_id", channel);
    cJSON_AddStringToObject(p, "channel_name", "ops");
    cJSON_AddStringToObject(p, "user_id", user);
    cJSON_AddStringToObject(p, "user_name", user);
    cJSON_AddStringToObject(p, "command", "/opsbot");
    cJSON_AddStringToObject(p, "text", text);
    cJSON_AddStringToObject(p, "api_app_id", "A0STANDIN");
    cJSON_AddStringToObject(p, "is_enterprise_install", "false");
    cJSON_AddStringToObject(p, "response_url", "https://hooks.standin.slack.com/commands/x");
    cJSON_AddStringToObject(p, "trigger_id", trig);
    return send_envelope(s, envelope(s, "slash_commands", p));
}

int slack_standin_redeliver(struct slack_standin *s)
{
    cJSON *env, *ra;

    if (!s->last_env)
        return -1;
    env = cJSON_Duplicate(s->last_env, true);
    ra = cJSON_GetObjectItemCaseSensitive(env, "retry_attempt");
    cJSON_DeleteItemFromObjectCaseSensitive(env, "retry_reason");
    if (cJSON_IsNumber(ra))
        cJSON_SetNumberValue(ra, ra->valuedouble + 1);
    else
        cJSON_AddNumberToObject(env, "retry_attempt", 1);
    cJSON_AddStringToObject(env, "retry_reason", "timeout");
    return send_envelope(s, env);
}

size_t slack_standin_redeliver_unacked(struct slack_standin *s)
{
    size_t n = s->nenvs, sent = 0;

    for (size_t i = 0; i < n; i++) {
        cJSON *env, *ra;

        if (!s->envs[i].failed || s->envs[i].acked || s->envs[i].retried)
            continue;
        s->envs[i].retried = true;
        env = cJSON_Parse(s->envs[i].json);
        if (!env)
            continue;
        ra = cJSON_GetObjectItemCaseSensitive(env, "retry_attempt");
        if (cJSON_IsNumber(ra))
            cJSON_SetNumberValue(ra, ra->valuedouble + 1);
        else
            cJSON_AddNumberToObject(env, "retry_attempt", 1);
        cJSON_DeleteItemFromObjectCaseSensitive(env, "retry_reason");
        cJSON_AddStringToObject(env, "retry_reason", "timeout");
        if (send_envelope(s, env) == 0) /* takes env */
            sent++;
    }
    return sent;
}

int slack_standin_raw(struct slack_standin *s, const char *frame)
{
    struct sconn *c = target_conn(s);

    return c ? ob_ws_send_text(c->ws, frame, strlen(frame)) : -1;
}

int slack_standin_disconnect(struct slack_standin *s, const char *reason)
{
    char buf[200];

    snprintf(buf, sizeof(buf),
             "{\"type\":\"disconnect\",\"reason\":\"%s\",\"debug_info\":{\"host\":"
             "\"wss-standin.slack.com\"}}",
             reason);
    return slack_standin_raw(s, buf);
}

int slack_standin_close(struct slack_standin *s, bool abrupt)
{
    struct sconn *c = target_conn(s);

    if (!c)
        return -1;
    if (abrupt)
        ob_ws_abort(c->ws);
    else
        ob_ws_close(c->ws, 1000, "bye");
    return 0;
}

/* ---- the relay ------------------------------------------------------------------- */

static void pair_closed(uv_handle_t *h)
{
    struct pair *p = h->data;
    struct slack_standin *s = p->s;

    if (++p->closed == 2) {
        for (struct pair **pp = &s->pairs; *pp; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
        free(p);
    }
    if (--s->handles == 0 && s->freeing)
        free(s);
}

static void pair_close(struct pair *p)
{
    if (p->closing)
        return;
    p->closing = true;
    uv_close((uv_handle_t *)&p->down, pair_closed);
    uv_close((uv_handle_t *)&p->up, pair_closed);
}

static void relay_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(RELAY_BUF);
    buf->len = RELAY_BUF;
}

static void relay_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void relay_read(uv_stream_t *from, ssize_t n, const uv_buf_t *buf)
{
    struct pair *p = from->data;
    uv_stream_t *to =
        from == (uv_stream_t *)&p->down ? (uv_stream_t *)&p->up : (uv_stream_t *)&p->down;

    if (n < 0) {
        free(buf->base);
        pair_close(p);
        return;
    }
    if (n == 0 || p->silent || p->closing) {
        free(buf->base);
        return;
    }
    {
        uv_write_t *w = malloc(sizeof(*w));
        uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);

        w->data = buf->base;
        if (uv_write(w, to, &b, 1, relay_written)) {
            free(buf->base);
            free(w);
            pair_close(p);
        }
    }
}

static void relay_connected(uv_connect_t *req, int status)
{
    struct pair *p = req->data;

    if (status || p->closing) {
        pair_close(p);
        return;
    }
    /* like Slack's edge (and lws, curl): no Nagle, or small frames wait
     * for the peer's delayed ACK (40 ms) */
    uv_tcp_nodelay(&p->down, 1);
    uv_tcp_nodelay(&p->up, 1);
    uv_read_start((uv_stream_t *)&p->down, relay_alloc, relay_read);
    uv_read_start((uv_stream_t *)&p->up, relay_alloc, relay_read);
}

static void relay_accept(uv_stream_t *server, int status)
{
    struct slack_standin *s = server->data;
    struct pair *p;
    struct sockaddr_in addr;

    if (status)
        return;
    p = calloc(1, sizeof(*p));
    p->s = s;
    uv_tcp_init(s->loop, &p->down);
    uv_tcp_init(s->loop, &p->up);
    p->down.data = p->up.data = p->creq.data = p;
    p->next = s->pairs;
    s->pairs = p;
    s->handles += 2;
    if (uv_accept(server, (uv_stream_t *)&p->down)) {
        pair_close(p);
        return;
    }
    uv_ip4_addr("127.0.0.1", s->port, &addr);
    if (uv_tcp_connect(&p->creq, &p->up, (const struct sockaddr *)&addr, relay_connected))
        pair_close(p);
}

/* A text frame announcing 200 payload bytes, then only part of them. */
static const char cut_frame[] = "\x81\x7e\x00\xc8"
                                "{\"envelope_id\":\"cut-1\",\"type\":\"events_api\","
                                "\"payload\":{\"event\":{";

static void cut_written(uv_write_t *w, int status)
{
    struct pair *p = w->data;

    (void)status;
    free(w);
    pair_close(p);
}

size_t slack_standin_cut_midframe(struct slack_standin *s)
{
    size_t n = 0;

    for (struct pair *p = s->pairs; p; p = p->next) {
        uv_write_t *w;
        uv_buf_t b = uv_buf_init((char *)cut_frame, sizeof(cut_frame) - 1);

        if (p->closing || p->silent)
            continue;
        /* Nothing more from the server goes through this pair. */
        p->silent = true;
        w = malloc(sizeof(*w));
        w->data = p;
        if (uv_write(w, (uv_stream_t *)&p->down, &b, 1, cut_written)) {
            free(w);
            pair_close(p);
        }
        n++;
    }
    return n;
}

void slack_standin_silence(struct slack_standin *s)
{
    for (struct pair *p = s->pairs; p; p = p->next)
        p->silent = true;
}

/* ---- ticking: pings and ack deadlines ------------------------------------------------- */

static void tick_cb(uv_timer_t *t)
{
    struct slack_standin *s = t->data;
    int64_t now = ob_now_ms();

    if (s->ping_ms && now - s->last_ping_ms >= s->ping_ms) {
        s->last_ping_ms = now;
        for (int i = 0; i < MAX_CONNS; i++)
            if (s->conns[i])
                ob_ws_ping(s->conns[i]->ws);
    }
    for (size_t i = 0; i < s->nenvs; i++) {
        struct senv *e = &s->envs[i];

        if (!e->acked && !e->failed && now - e->sent_ms > s->ack_deadline_ms) {
            e->failed = true;
            s->ack_failures++;
        }
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int slack_standin_new(struct slack_standin **out, uv_loop_t *loop,
                      const struct slack_standin_opts *opts)
{
    struct slack_standin *s = calloc(1, sizeof(*s));
    struct ob_http_server_opts so = {0};
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound), rc;

    *out = NULL;
    if (sodium_init() < 0)
        return -1;
    s->loop = loop;
    ob_strlcpy(s->bot_token, opts && opts->bot_token ? opts->bot_token : "xoxb-standin-bot",
               sizeof(s->bot_token));
    ob_strlcpy(s->app_token, opts && opts->app_token ? opts->app_token : "xapp-standin-app",
               sizeof(s->app_token));
    ob_strlcpy(s->bot_user, opts && opts->bot_user_id ? opts->bot_user_id : "UBOT",
               sizeof(s->bot_user));
    s->ping_ms = opts ? opts->ping_ms : 0;
    s->ack_deadline_ms = opts && opts->ack_deadline_ms ? opts->ack_deadline_ms : 3000;
    rc = ob_lws_new(&s->lws, loop);
    if (rc)
        goto fail;
    so.listen = "127.0.0.1:0";
    rc = ob_http_server_new(s->lws, &so, handler, s, &s->srv);
    if (rc)
        goto fail;
    rc = ob_http_server_ws(s->srv, "/link/", &ws_cbs, s);
    if (rc)
        goto fail;
    s->port = ob_http_server_port(s->srv);
    snprintf(s->api_base, sizeof(s->api_base), "http://127.0.0.1:%d/api/", s->port);

    uv_tcp_init(loop, &s->relay);
    s->relay.data = s;
    s->handles++;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    rc = uv_tcp_bind(&s->relay, (const struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->relay, 64, relay_accept);
    if (!rc)
        rc = uv_tcp_getsockname(&s->relay, (struct sockaddr *)&bound, &len);
    if (rc)
        goto fail;
    s->relay_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    standin_waiter_init(&s->waiter, loop, s);
    s->handles += 2;
    uv_timer_start(&s->tick, tick_cb, 20, 20);
    *out = s;
    return 0;
fail:
    slack_standin_free(s);
    return rc ? rc : -1;
}

static void handle_closed(uv_handle_t *h)
{
    struct slack_standin *s = h->data;

    if (--s->handles == 0 && s->freeing)
        free(s);
}

void slack_standin_free(struct slack_standin *s)
{
    if (!s)
        return;
    s->freeing = true;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->conns[i]) {
            ob_ws_set_data(s->conns[i]->ws, NULL);
            free(s->conns[i]);
            s->conns[i] = NULL;
        }
    }
    for (struct pair *p = s->pairs; p; p = p->next)
        pair_close(p);
    if (s->srv)
        ob_http_server_free(s->srv);
    if (s->lws)
        ob_lws_free(s->lws);
    for (size_t i = 0; i < s->ncalls; i++)
        free(s->calls[i].text);
    free(s->calls);
    for (size_t i = 0; i < s->nenvs; i++)
        free(s->envs[i].json);
    free(s->envs);
    cJSON_Delete(s->last_env);
    for (size_t i = 0; i < s->nposted; i++)
        free(s->posted[i]);
    free(s->posted);
    for (size_t i = 0; i < s->nreacted; i++)
        free(s->reacted[i]);
    free(s->reacted);
    s->calls = NULL;
    s->envs = NULL;
    s->posted = s->reacted = NULL;
    s->last_env = NULL;
    if (s->handles == 0) {
        free(s);
        return;
    }
    if (s->tick.loop)
        uv_close((uv_handle_t *)&s->tick, handle_closed);
    if (s->waiter.timer.loop)
        uv_close((uv_handle_t *)&s->waiter.timer, handle_closed);
    if (s->relay.loop)
        uv_close((uv_handle_t *)&s->relay, handle_closed);
}

const char *slack_standin_api_base(const struct slack_standin *s)
{
    return s->api_base;
}

/* ---- queries and knobs ------------------------------------------------------------------- */

size_t slack_standin_ncalls(const struct slack_standin *s)
{
    return s->ncalls;
}

const struct standin_call *slack_standin_call(const struct slack_standin *s, size_t i)
{
    return i < s->ncalls ? &s->calls[i] : NULL;
}

size_t slack_standin_count(const struct slack_standin *s, const char *method)
{
    size_t n = 0;

    for (size_t i = 0; i < s->ncalls; i++)
        n += !method || !strcmp(s->calls[i].method, method);
    return n;
}

long slack_standin_find_post(const struct slack_standin *s, const char *needle, size_t from)
{
    for (size_t i = from; i < s->ncalls; i++)
        if (!strcmp(s->calls[i].method, "chat.postMessage") && !s->calls[i].error[0] &&
            s->calls[i].status == 200 && strstr(s->calls[i].text, needle))
            return (long)i;
    return -1;
}

/* slack_standin_wait(), _wait_post(), _count_posts(), _wait_posts() */
STANDIN_DEFINE_WAITS(slack_standin)

void slack_standin_ratelimit(struct slack_standin *s, const char *method, int n, int retry_after_s)
{
    fault_set(s->rl, method, n, retry_after_s, NULL);
}

void slack_standin_fail(struct slack_standin *s, const char *method, const char *error, int n)
{
    fault_set(s->fails, method, n, 0, error);
}

void slack_standin_http_error(struct slack_standin *s, const char *method, int status, int n)
{
    fault_set(s->http_errs, method ? method : "*", n, status, NULL);
}

size_t slack_standin_opens(const struct slack_standin *s)
{
    return s->opens;
}

size_t slack_standin_hellos(const struct slack_standin *s)
{
    return s->hellos;
}

size_t slack_standin_live(const struct slack_standin *s)
{
    return live_count(s);
}

size_t slack_standin_bad_tickets(const struct slack_standin *s)
{
    return s->bad_tickets;
}

unsigned slack_standin_newest(const struct slack_standin *s)
{
    unsigned id = 0;

    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i] && s->conns[i]->id > id)
            id = s->conns[i]->id;
    return id;
}

void slack_standin_target(struct slack_standin *s, unsigned conn_id)
{
    s->target = conn_id;
}

size_t slack_standin_envelopes(const struct slack_standin *s)
{
    return s->nenvs;
}

size_t slack_standin_acked(const struct slack_standin *s)
{
    return s->acked;
}

size_t slack_standin_ack_failures(const struct slack_standin *s)
{
    return s->ack_failures;
}

size_t slack_standin_pongs(const struct slack_standin *s)
{
    return s->pongs;
}

void slack_standin_sign(const char *secret, const char *ts, const char *body, size_t len,
                        char out[72])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"v0:", 3);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)":", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "v0=", 3);
    sodium_bin2hex(out + 3, 72 - 3, mac, sizeof(mac));
}

void slack_standin_set_hooks(struct slack_standin *s, const struct slack_standin_hooks *h)
{
    if (h)
        s->hooks = *h;
    else
        memset(&s->hooks, 0, sizeof(s->hooks));
}
