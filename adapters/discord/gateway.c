/* The Discord Gateway (v10, JSON, no compression) on a libwebsockets
 * client:
 *   - GET /gateway/bot first: the URL (unless gateway_url is configured) and
 *     session_start_limit (remaining 0: wait reset_after);
 *   - Hello -> heartbeats every heartbeat_interval, the first one after
 *     interval * random[0,1); no ACK since the previous beat when the next
 *     is due: the connection is zombied, closed with a non-1000 code and the
 *     session resumed at resume_gateway_url;
 *   - Identify (intents from named flags; at most one per identify_interval)
 *     or Resume (token, session_id, seq); READY / RESUMED make us ready;
 *   - op 1: beat now; op 7: resume; op 9: resume (d true) or wait 1-5 s and
 *     identify afresh (d false);
 *   - close codes: 4004 and 4010-4014 are fatal (one clear line, the core's
 *     fatal callback); 4003/4005/4007/4008/4009 and 1000/1001 start a new
 *     session; anything else resumes. Reconnects back off with jitter.
 * Dispatches are handed over in order; redelivered ones (a resume replays
 * what was missed) are deduplicated by the core's claim on the event id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discord_int.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define FRAME_MAX (8 * 1024 * 1024)
#define HELLO_TIMEOUT_MS 15000
#define CLOSE_RESUME 4900 /* ours: any code but 1000/1001 keeps the session */
#define SESSION_WAIT_MAX_MS (24LL * 3600 * 1000)

enum gw_next { NEXT_FETCH, NEXT_RESUME, NEXT_IDENTIFY };

static void conn_on_open(void *data, struct ob_ws *ws);
static void conn_on_text(void *data, struct ob_ws *ws, const char *text, size_t len);
static void conn_on_close(void *data, struct ob_ws *ws, int code, const char *reason);

static const struct ob_ws_cbs conn_cbs = {
    .on_open = conn_on_open,
    .on_text = conn_on_text,
    .on_close = conn_on_close,
};

static void gw_fetch(struct discord *dc);
static void gw_connect(struct discord *dc, bool resume);

/* ---- timers and backoff ---------------------------------------------------------- */

static int64_t backoff(struct discord *dc)
{
    int64_t d = dc->cfg.reconnect_min_ms;

    for (int i = 1; i < dc->failures && d < dc->cfg.reconnect_max_ms; i++)
        d *= 2;
    if (d > dc->cfg.reconnect_max_ms)
        d = dc->cfg.reconnect_max_ms;
    if (dc->failures == 0)
        return (int64_t)randombytes_uniform((uint32_t)(d + 1)); /* after a good connection */
    return d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1));
}

static void retry_cb(uv_timer_t *t)
{
    struct discord *dc = t->data;

    if (dc->life.stopping || dc->dead)
        return;
    switch (dc->gw_next) {
    case NEXT_FETCH:
        gw_fetch(dc);
        break;
    case NEXT_RESUME:
        gw_connect(dc, dc->session_id[0] != '\0');
        break;
    default:
        gw_connect(dc, false);
        break;
    }
}

static void schedule(struct discord *dc, enum gw_next next, int64_t ms)
{
    if (dc->life.stopping || dc->dead || dc->life.closed)
        return;
    dc->gw_next = next;
    dc->gw = DC_GW_IDLE;
    uv_timer_start(&dc->retry, retry_cb, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void clear_session(struct discord *dc)
{
    dc->session_id[0] = '\0';
    dc->resume_url[0] = '\0';
    dc->seq = 0;
    dc->resume_failures = 0;
}

/* Detaches the live connection and closes it (its close is never heard
 * of); code 4900 keeps the session resumable. */
static void drop_conn(struct discord *dc, int code, const char *reason)
{
    struct dc_conn *c = dc->conn;

    if (!dc->life.closed) {
        uv_timer_stop(&dc->hb);
        uv_timer_stop(&dc->identify);
    }
    dc->ready = false;
    if (!c)
        return;
    dc->conn = NULL;
    ob_ws_set_data(c->ws, NULL);
    ob_ws_close(c->ws, code, reason);
    free(c);
}

/* ---- sending ------------------------------------------------------------------------ */

static int send_json(struct discord *dc, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    int rc;

    cJSON_Delete(o);
    if (!text)
        return OB_ENOMEM;
    rc = dc->conn ? ob_ws_send_text(dc->conn->ws, text, strlen(text)) : OB_EWS;
    sodium_memzero(text, strlen(text));
    free(text);
    return rc;
}

static void send_heartbeat(struct discord *dc)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "op", OB_DISCORD_OP_HEARTBEAT);
    if (dc->seq > 0)
        cJSON_AddNumberToObject(o, "d", (double)dc->seq);
    else
        cJSON_AddNullToObject(o, "d");
    send_json(dc, o);
}

static void send_identify(struct discord *dc)
{
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "d"), *props;

    cJSON_AddNumberToObject(o, "op", OB_DISCORD_OP_IDENTIFY);
    cJSON_AddStringToObject(d, "token", dc->cfg.token);
    cJSON_AddNumberToObject(d, "intents", (double)ob_discord_intents());
    props = cJSON_AddObjectToObject(d, "properties");
    cJSON_AddStringToObject(props, "os", "linux");
    cJSON_AddStringToObject(props, "browser", "opsbot");
    cJSON_AddStringToObject(props, "device", "opsbot");
    clear_session(dc);
    dc->last_identify_ms = ob_now_ms();
    dc->gw = DC_GW_AUTH;
    if (send_json(dc, o))
        ob_warn("discord", "cannot send Identify (connection closing)");
    else
        ob_debug("discord", "identify sent (intents %u)", (unsigned)ob_discord_intents());
}

static void send_resume(struct discord *dc)
{
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "d");

    cJSON_AddNumberToObject(o, "op", OB_DISCORD_OP_RESUME);
    cJSON_AddStringToObject(d, "token", dc->cfg.token);
    cJSON_AddStringToObject(d, "session_id", dc->session_id);
    cJSON_AddNumberToObject(d, "seq", (double)dc->seq);
    dc->gw = DC_GW_AUTH;
    dc->replayed = 0;
    if (send_json(dc, o))
        ob_warn("discord", "cannot send Resume (connection closing)");
}

static void identify_cb(uv_timer_t *t)
{
    struct discord *dc = t->data;

    if (dc->conn && dc->conn->hello && dc->gw == DC_GW_CONNECTING)
        send_identify(dc);
}

/* Identify now, or when identify_interval has passed since the last one. */
static void identify_paced(struct discord *dc)
{
    int64_t wait = dc->last_identify_ms
                       ? dc->last_identify_ms + dc->cfg.identify_interval_ms - ob_now_ms()
                       : 0;

    if (wait <= 0) {
        send_identify(dc);
        return;
    }
    ob_debug("discord", "identify in %lld ms (one per %lld ms)", (long long)wait,
             (long long)dc->cfg.identify_interval_ms);
    uv_timer_start(&dc->identify, identify_cb, (uint64_t)wait, 0);
}

/* ---- heartbeats --------------------------------------------------------------------- */

static void reconnect_after_drop(struct discord *dc, const char *why)
{
    int64_t d;

    dc->failures++;
    d = backoff(dc);
    ob_warn("discord", "%s: resuming in %lld ms", why, (long long)d);
    schedule(dc, NEXT_RESUME, d);
}

static void hb_cb(uv_timer_t *t)
{
    struct discord *dc = t->data;

    if (!dc->conn || dc->life.stopping || dc->dead)
        return;
    if (!dc->conn->hello) {
        drop_conn(dc, CLOSE_RESUME, "no hello");
        reconnect_after_drop(dc, "no Hello from the Gateway");
        return;
    }
    if (dc->hb_sent && !dc->hb_acked) {
        drop_conn(dc, CLOSE_RESUME, "zombied");
        reconnect_after_drop(dc, "no heartbeat ACK since the last beat (zombied connection)");
        return;
    }
    send_heartbeat(dc);
    dc->hb_sent = true;
    dc->hb_acked = false;
    uv_timer_start(&dc->hb, hb_cb, (uint64_t)dc->hb_interval_ms, 0);
}

/* ---- connect -------------------------------------------------------------------------- */

/* url + "?v=10&encoding=json" (with "/" before it when the URL has no path). */
static char *connect_url(const char *url)
{
    const char *host = strstr(url, "://");
    char *out = NULL;
    bool has_path = host && strchr(host + 3, '/');

    if (asprintf(&out, "%s%s?v=10&encoding=json", url, has_path ? "" : "/") < 0)
        return NULL;
    return out;
}

static void gw_connect(struct discord *dc, bool resume)
{
    struct ob_ws_opts opts = {0};
    struct dc_conn *c;
    char *url;
    int rc;

    if (dc->life.stopping || dc->dead || dc->conn)
        return;
    if (resume && (!dc->session_id[0] || !dc->resume_url[0]))
        resume = false;
    if (!dc->gw_url[0]) {
        gw_fetch(dc);
        return;
    }
    url = connect_url(resume ? dc->resume_url : dc->gw_url);
    if (!url) {
        schedule(dc, resume ? NEXT_RESUME : NEXT_IDENTIFY, 1000);
        return;
    }
    c = ob_xcalloc(1, sizeof(*c));
    c->dc = dc;
    c->id = ++dc->next_conn_id;
    c->resume = resume;
    opts.max_message = FRAME_MAX;
    opts.connect_timeout_ms = 10000;
    rc = ob_ws_connect(dc->lws, url, &opts, &conn_cbs, c, &c->ws);
    free(url);
    if (rc) {
        free(c);
        dc->failures++;
        ob_warn("discord", "cannot open the Gateway websocket: %s", ob_strerror(rc));
        schedule(dc, resume ? NEXT_RESUME : NEXT_IDENTIFY, backoff(dc));
        return;
    }
    dc->conn = c;
    dc->gw = DC_GW_CONNECTING;
    /* The Hello deadline. */
    uv_timer_start(&dc->hb, hb_cb, HELLO_TIMEOUT_MS, 0);
    ob_debug("discord", "connection %u: connecting (%s)", c->id, resume ? "resume" : "identify");
}

static void fetch_done(struct discord *dc, void *data, const struct dc_rest_result *res)
{
    const cJSON *url, *limit, *remaining, *reset;

    (void)data;
    if (dc->life.stopping || dc->dead)
        return;
    if (res->err) {
        int64_t d;

        if (res->status == 401)
            return; /* fatal already */
        dc->failures++;
        d = res->err == OB_EBUSY ? res->retry_after_ms : backoff(dc);
        ob_warn("discord", "GET /gateway/bot did not succeed: retrying in %lld ms", (long long)d);
        schedule(dc, NEXT_FETCH, d);
        return;
    }
    url = res->json ? cJSON_GetObjectItemCaseSensitive(res->json, "url") : NULL;
    if (dc->cfg.gateway_url[0]) {
        ob_strlcpy(dc->gw_url, dc->cfg.gateway_url, sizeof(dc->gw_url));
    } else if (cJSON_IsString(url) && strlen(url->valuestring) < sizeof(dc->gw_url) - 32 &&
               (!strncmp(url->valuestring, "wss://", 6) ||
                !strncmp(url->valuestring, "ws://", 5))) {
        ob_strlcpy(dc->gw_url, url->valuestring, sizeof(dc->gw_url));
    } else {
        dc->failures++;
        ob_warn("discord", "GET /gateway/bot answered without a websocket URL");
        schedule(dc, NEXT_FETCH, backoff(dc));
        return;
    }
    limit = cJSON_GetObjectItemCaseSensitive(res->json, "session_start_limit");
    remaining = cJSON_GetObjectItemCaseSensitive(limit, "remaining");
    reset = cJSON_GetObjectItemCaseSensitive(limit, "reset_after");
    if (cJSON_IsNumber(remaining) && remaining->valuedouble < 1) {
        int64_t wait =
            cJSON_IsNumber(reset) && reset->valuedouble > 0 ? (int64_t)reset->valuedouble : 60000;
        char b[32];

        if (wait > SESSION_WAIT_MAX_MS)
            wait = SESSION_WAIT_MAX_MS;
        ob_warn("discord",
                "the bot's session start limit is used up (too many identifies in 24 h): "
                "waiting %s before connecting",
                ob_duration_format(wait, b, sizeof(b)));
        schedule(dc, NEXT_IDENTIFY, wait);
        return;
    }
    gw_connect(dc, false);
}

static void gw_fetch(struct discord *dc)
{
    int rc;

    if (dc->life.stopping || dc->dead)
        return;
    dc->gw = DC_GW_FETCHING;
    rc = discord__rest(dc, "GET", "/gateway/bot", NULL, fetch_done, NULL);
    if (rc) {
        dc->failures++;
        schedule(dc, NEXT_FETCH, backoff(dc));
    }
}

void discord__gw_start(struct discord *dc)
{
    gw_fetch(dc);
}

void discord__gw_stop(struct discord *dc)
{
    if (!dc->life.closed) {
        uv_timer_stop(&dc->retry);
        uv_timer_stop(&dc->hb);
        uv_timer_stop(&dc->identify);
    }
    /* 1000: the session ends with us. */
    drop_conn(dc, 1000, "bye");
    dc->gw = DC_GW_IDLE;
}

/* ---- dispatches ------------------------------------------------------------------------ */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void learn_thread(struct discord *dc, const cJSON *ch)
{
    const char *id = jstr(ch, "id"), *parent = jstr(ch, "parent_id");

    if (id && parent)
        discord__thread_add(dc, id, parent);
}

static void learn_threads(struct discord *dc, const cJSON *list)
{
    const cJSON *it;
    int n = 0;

    cJSON_ArrayForEach(it, (cJSON_IsArray(list) ? list : NULL))
    {
        if (++n > DC_MAX_THREADS)
            break;
        learn_thread(dc, it);
    }
}

static void on_ready(struct discord *dc, const cJSON *d)
{
    const char *sid = jstr(d, "session_id"), *rurl = jstr(d, "resume_gateway_url");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(d, "user");
    const char *uid = jstr(user, "id"), *name = jstr(user, "username");

    if (!sid || strlen(sid) >= sizeof(dc->session_id) || !uid || strlen(uid) >= DC_ID) {
        ob_error("discord", "READY without a usable session_id or user: identifying again");
        drop_conn(dc, 1000, "bad ready");
        dc->failures++;
        schedule(dc, NEXT_IDENTIFY, backoff(dc));
        return;
    }
    ob_strlcpy(dc->session_id, sid, sizeof(dc->session_id));
    if (rurl && (!strncmp(rurl, "wss://", 6) || !strncmp(rurl, "ws://", 5)) &&
        strlen(rurl) < sizeof(dc->resume_url) - 32)
        ob_strlcpy(dc->resume_url, rurl, sizeof(dc->resume_url));
    else
        ob_strlcpy(dc->resume_url, dc->gw_url, sizeof(dc->resume_url));
    ob_strlcpy(dc->bot_user_id, uid, sizeof(dc->bot_user_id));
    if (name && ob_utf8_valid(name, strlen(name)))
        ob_strlcpy(dc->bot_name, name, sizeof(dc->bot_name));
    dc->gw = DC_GW_READY;
    dc->ready = true;
    dc->ever_ready = true;
    dc->failures = 0;
    dc->connect_failures = 0;
    dc->resume_failures = 0;
    ob_info("discord", "connected to the Gateway as %s (user %s)",
            dc->bot_name[0] ? dc->bot_name : "?", dc->bot_user_id);
    learn_threads(dc, cJSON_GetObjectItemCaseSensitive(d, "threads"));
}

static void on_dispatch(struct discord *dc, const struct ob_discord_payload *p)
{
    const char *t = p->t;

    if (p->s > dc->seq)
        dc->seq = p->s;
    if (dc->gw == DC_GW_AUTH && strcmp(t, "READY") && strcmp(t, "RESUMED"))
        dc->replayed++;
    if (!strcmp(t, "READY")) {
        on_ready(dc, p->d);
        return;
    }
    if (!strcmp(t, "RESUMED")) {
        dc->gw = DC_GW_READY;
        dc->ready = true;
        dc->failures = 0;
        dc->connect_failures = 0;
        dc->resume_failures = 0;
        ob_info("discord", "resumed the Gateway session (%zu missed event(s) replayed)",
                dc->replayed);
        return;
    }
    if (!strcmp(t, "GUILD_CREATE")) {
        learn_threads(dc, cJSON_GetObjectItemCaseSensitive(p->d, "threads"));
        return;
    }
    if (!strcmp(t, "THREAD_LIST_SYNC")) {
        learn_threads(dc, cJSON_GetObjectItemCaseSensitive(p->d, "threads"));
        return;
    }
    if (!strcmp(t, "THREAD_CREATE") || !strcmp(t, "THREAD_UPDATE")) {
        learn_thread(dc, p->d);
        return;
    }
    if (!strcmp(t, "THREAD_DELETE")) {
        const char *id = jstr(p->d, "id");

        if (id)
            discord__thread_forget(dc, id);
        return;
    }
    if (!strcmp(t, "MESSAGE_CREATE") || !strcmp(t, "MESSAGE_REACTION_ADD") ||
        !strcmp(t, "MESSAGE_REACTION_REMOVE") || !strcmp(t, "INTERACTION_CREATE")) {
        struct ob_discord_self self;
        struct ob_discord_event e;
        int rc;

        discord__self(dc, &self);
        rc = ob_discord_dispatch_event(&self, t, p->d, &e);
        if (rc < 0) {
            ob_error("discord", "malformed %s dispatch (s=%lld): ignored (%s)", t, (long long)p->s,
                     ob_strerror(rc));
        } else if (rc == 0) {
            ob_debug("discord", "%s ignored: %s", t, e.ignored);
        } else if (!strcmp(t, "INTERACTION_CREATE")) {
            discord__interaction(dc, &e, false);
        } else {
            discord__handle_event(dc, &e);
        }
        ob_discord_event_release(&e);
    }
}

/* ---- websocket callbacks ------------------------------------------------------------------ */

static void conn_on_open(void *data, struct ob_ws *ws)
{
    struct dc_conn *c = data;

    (void)ws;
    if (c)
        ob_debug("discord", "connection %u: open, waiting for Hello", c->id);
}

static void on_hello(struct discord *dc, struct dc_conn *c, int64_t interval)
{
    uint32_t jitter = randombytes_uniform(1000000);

    c->hello = true;
    dc->connect_failures = 0;
    dc->hb_interval_ms = interval;
    dc->hb_sent = false;
    dc->hb_acked = true;
    uv_timer_start(&dc->hb, hb_cb, (uint64_t)((double)interval * jitter / 1000000.0), 0);
    if (c->resume && dc->session_id[0]) {
        send_resume(dc);
        return;
    }
    identify_paced(dc);
}

static void conn_on_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct dc_conn *c = data;
    struct discord *dc;
    struct ob_discord_payload p;
    char err[160];
    int rc;

    (void)ws;
    if (!c)
        return;
    dc = c->dc;
    if (dc->life.stopping || dc->dead || dc->conn != c)
        return;
    rc = ob_discord_parse_payload(text, len, &p, err, sizeof(err));
    if (rc) {
        ob_error("discord", "unreadable Gateway payload on connection %u: %s (ignored)", c->id,
                 err);
        goto out;
    }
    switch (p.op) {
    case OB_DISCORD_OP_HELLO:
        if (!c->hello)
            on_hello(dc, c, p.heartbeat_interval);
        break;
    case OB_DISCORD_OP_HEARTBEAT:
        send_heartbeat(dc);
        break;
    case OB_DISCORD_OP_HEARTBEAT_ACK:
        dc->hb_acked = true;
        break;
    case OB_DISCORD_OP_RECONNECT:
        ob_info("discord", "the Gateway asks for a reconnect (op 7): resuming");
        drop_conn(dc, CLOSE_RESUME, "reconnect");
        schedule(dc, NEXT_RESUME, 0);
        break;
    case OB_DISCORD_OP_INVALID_SESSION:
        if (p.resumable && dc->session_id[0]) {
            ob_info("discord", "invalid session (op 9, resumable): resuming");
            drop_conn(dc, CLOSE_RESUME, "invalid session");
            schedule(dc, NEXT_RESUME, backoff(dc));
        } else {
            int64_t wait =
                dc->cfg.invalid_session_min_ms +
                (int64_t)randombytes_uniform((uint32_t)(dc->cfg.invalid_session_max_ms -
                                                        dc->cfg.invalid_session_min_ms + 1));

            ob_warn("discord", "invalid session (op 9): identifying afresh in %lld ms",
                    (long long)wait);
            clear_session(dc);
            drop_conn(dc, CLOSE_RESUME, "invalid session");
            schedule(dc, NEXT_IDENTIFY, wait);
        }
        break;
    case OB_DISCORD_OP_DISPATCH:
        on_dispatch(dc, &p);
        break;
    default:
        ob_debug("discord", "gateway op %d ignored", p.op);
        break;
    }
out:
    ob_discord_payload_release(&p);
}

static const char *fatal_line(int code)
{
    switch (code) {
    case 4004:
        return "discord: the Gateway rejected the bot token (close 4004, authentication "
               "failed): check platforms.discord.token (was it reset in the developer portal?)";
    case 4010:
        return "discord: the Gateway refused the shard (close 4010, invalid shard)";
    case 4011:
        return "discord: the Gateway requires sharding (close 4011): the bot is in too many "
               "guilds for one connection";
    case 4012:
        return "discord: the Gateway refused the API version (close 4012)";
    case 4013:
        return "discord: the Gateway refused the intents (close 4013, invalid intents)";
    case 4014:
        return "discord: the Gateway refused a privileged intent (close 4014, disallowed "
               "intents): enable the Message Content Intent in the developer portal (your "
               "application -> Bot -> Privileged Gateway Intents -> Message Content Intent), "
               "then restart opsbot";
    default:
        return NULL;
    }
}

static bool new_session_code(int code)
{
    return code == 4003 || code == 4005 || code == 4007 || code == 4008 || code == 4009 ||
           code == 1000 || code == 1001;
}

static void conn_on_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct dc_conn *c = data;
    struct discord *dc;
    const char *fatal = fatal_line(code);
    bool had_hello, was_resume, was_ready;
    char why[200];

    (void)ws;
    if (!c)
        return;
    dc = c->dc;
    had_hello = c->hello;
    was_resume = c->resume;
    was_ready = dc->ready;
    if (dc->conn == c) {
        dc->conn = NULL;
        dc->ready = false;
        if (!dc->life.closed) {
            uv_timer_stop(&dc->hb);
            uv_timer_stop(&dc->identify);
        }
    }
    free(c);
    if (dc->life.stopping || dc->dead)
        return;
    if (fatal) {
        discord__fatal(dc, fatal);
        return;
    }
    if (!was_ready)
        dc->failures++;
    if (!had_hello && ++dc->connect_failures >= 3 && !dc->cfg.gateway_url[0]) {
        /* The cached URL may be stale: ask again. */
        dc->connect_failures = 0;
        dc->gw_url[0] = '\0';
    }
    if (was_resume && !was_ready && ++dc->resume_failures >= 2) {
        ob_warn("discord", "resuming failed twice: starting a new session");
        clear_session(dc);
    }
    if (new_session_code(code))
        clear_session(dc);
    snprintf(why, sizeof(why), "Gateway connection closed (%d%s%.60s)", code,
             reason && *reason ? " " : "", reason ? reason : "");
    {
        int64_t d = backoff(dc);
        bool resume = dc->session_id[0] != '\0';

        ob_warn("discord", "%s: %s in %lld ms", why,
                !dc->gw_url[0] ? "asking for the Gateway URL"
                : resume       ? "resuming"
                               : "identifying",
                (long long)d);
        schedule(dc, !dc->gw_url[0] ? NEXT_FETCH : resume ? NEXT_RESUME : NEXT_IDENTIFY, d);
    }
}
