/* Socket Mode: apps.connections.open for every (re)connect, a websocket to
 * the URL it returns, `hello` before anything counts, every envelope acked
 * before it is processed, and connection health:
 *   - our ping every ping_interval; no pong (nor any frame) within
 *     ping_timeout: dead;
 *   - once Slack has pinged, no ping or frame from it within
 *     server_ping_timeout: dead (catches half-open sockets);
 *   - disconnect warning / refresh_requested: the successor is opened first
 *     and the old socket closed when the successor's hello arrives (events
 *     on the old one are still acked and processed until then);
 *   - link_disabled: stop, log an error, retry every link_disabled_retry;
 *   - anything else lost: reconnect with exponential backoff (reconnect_min
 *     doubling up to reconnect_max, each delay drawn between half and all of
 *     the step), reset by a successful hello.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_int.h"

#define FRAME_MAX (1024 * 1024)

static void conn_on_open(void *data, struct ob_ws *ws);
static void conn_on_text(void *data, struct ob_ws *ws, const char *text, size_t len);
static void conn_on_pong(void *data, struct ob_ws *ws);
static void conn_on_ping(void *data, struct ob_ws *ws);
static void conn_on_close(void *data, struct ob_ws *ws, int code, const char *reason);

static const struct ob_ws_cbs conn_cbs = {
    .on_open = conn_on_open,
    .on_text = conn_on_text,
    .on_pong = conn_on_pong,
    .on_ping = conn_on_ping,
    .on_close = conn_on_close,
};

static void retry_cb(uv_timer_t *t);

static size_t live_conns(const struct slack *sl)
{
    size_t n = 0;

    for (size_t i = 0; i < SLACK_MAX_CONNS; i++)
        n += sl->conns[i] && sl->conns[i]->hello && !sl->conns[i]->retiring;
    return n;
}

static void conn_remove(struct slack *sl, struct slack_conn *c)
{
    for (size_t i = 0; i < SLACK_MAX_CONNS; i++)
        if (sl->conns[i] == c)
            sl->conns[i] = NULL;
}

/* Next delay of the backoff (failures already counted). */
static int64_t backoff(struct slack *sl)
{
    int64_t d = sl->cfg.reconnect_min_ms;

    for (int i = 1; i < sl->failures && d < sl->cfg.reconnect_max_ms; i++)
        d *= 2;
    if (d > sl->cfg.reconnect_max_ms)
        d = sl->cfg.reconnect_max_ms;
    return d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1));
}

static void schedule_retry(struct slack *sl, int64_t at_least_ms, const char *why)
{
    int64_t d;

    if (sl->life.stopping || sl->dead)
        return;
    if (sl->link_disabled) {
        d = sl->cfg.link_disabled_retry_ms;
    } else {
        sl->failures++;
        d = backoff(sl);
    }
    if (d < at_least_ms)
        d = at_least_ms;
    ob_warn("slack", "%s: reconnecting in %lld ms", why, (long long)d);
    uv_timer_start(&sl->retry, retry_cb, (uint64_t)d, 0);
}

static void retry_cb(uv_timer_t *t)
{
    struct slack *sl = t->data;

    slack__socket_connect(sl);
}

/* ---- connect ----------------------------------------------------------------- */

static void open_done(struct slack *sl, void *data, const struct slack_api_result *res)
{
    const cJSON *url;
    struct slack_conn *c;
    struct ob_ws_opts opts = {0};
    size_t slot;
    int rc;

    (void)data;
    if (sl->life.stopping || sl->dead) {
        sl->opening = false;
        return;
    }
    if (res->err) {
        sl->opening = false;
        if (res->error && slack__is_fatal_error(res->error)) {
            slack__fatal(sl, SLACK_APP_TOKEN, res->error);
            return;
        }
        schedule_retry(sl, res->err == OB_EBUSY ? res->retry_after_ms : 0,
                       "apps.connections.open did not succeed");
        return;
    }
    url = cJSON_GetObjectItemCaseSensitive(res->json, "url");
    if (!cJSON_IsString(url) ||
        (strncmp(url->valuestring, "wss://", 6) && strncmp(url->valuestring, "ws://", 5))) {
        sl->opening = false;
        ob_warn("slack", "apps.connections.open answered without a websocket URL");
        schedule_retry(sl, 0, "no websocket URL");
        return;
    }
    for (slot = 0; slot < SLACK_MAX_CONNS; slot++)
        if (!sl->conns[slot])
            break;
    if (slot == SLACK_MAX_CONNS) {
        /* Only possible if old sockets never close: drop the oldest. */
        struct slack_conn *old = sl->conns[0];

        for (size_t i = 1; i < SLACK_MAX_CONNS; i++)
            if (sl->conns[i]->id < old->id)
                old = sl->conns[i];
        conn_remove(sl, old);
        ob_ws_set_data(old->ws, NULL);
        ob_ws_abort(old->ws);
        free(old);
        for (slot = 0; sl->conns[slot]; slot++)
            ;
    }
    c = ob_xcalloc(1, sizeof(*c));
    c->sl = sl;
    c->id = ++sl->next_conn_id;
    opts.max_message = FRAME_MAX;
    opts.connect_timeout_ms = 10000;
    rc = ob_ws_connect(sl->lws, url->valuestring, &opts, &conn_cbs, c, &c->ws);
    if (rc) {
        free(c);
        sl->opening = false;
        schedule_retry(sl, 0, "cannot open the websocket");
        return;
    }
    c->last_rx_ms = ob_now_ms();
    sl->conns[slot] = c;
    ob_debug("slack", "connection %u: connecting", c->id);
}

void slack__socket_connect(struct slack *sl)
{
    int rc;

    if (sl->opening || sl->life.stopping || sl->dead || !sl->authed)
        return;
    sl->opening = true;
    rc = slack__api(sl, "apps.connections.open", SLACK_APP_TOKEN, "POST",
                    "application/x-www-form-urlencoded", "", 0, open_done, NULL);
    if (rc) {
        sl->opening = false;
        schedule_retry(sl, 0, "cannot call apps.connections.open");
    }
}

/* ---- frames --------------------------------------------------------------------- */

static void on_hello(struct slack *sl, struct slack_conn *c, const struct ob_slack_envelope *e)
{
    bool first = sl->next_conn_id == 1 || sl->link_disabled || sl->failures;

    c->hello = true;
    c->next_ping_ms = ob_now_ms() + sl->cfg.ping_interval_ms;
    sl->opening = false;
    sl->failures = 0;
    if (sl->link_disabled)
        ob_info("slack", "Socket Mode is enabled again");
    sl->link_disabled = false;
    uv_timer_stop(&sl->retry);
    /* The successor is live: retire the others. */
    for (size_t i = 0; i < SLACK_MAX_CONNS; i++) {
        struct slack_conn *o = sl->conns[i];

        if (o && o != c && !o->retiring) {
            o->retiring = true;
            ob_ws_close(o->ws, 1000, "replaced");
        }
    }
    if (first)
        ob_info("slack", "connected (Socket Mode, %d connection(s) open for this app)",
                e->num_connections);
    else
        ob_debug("slack", "connection %u is live (refresh)", c->id);
}

static void on_disconnect(struct slack *sl, struct slack_conn *c, const char *reason)
{
    if (!strcmp(reason, "link_disabled")) {
        char d[32];

        ob_error("slack",
                 "Slack disabled Socket Mode for this app (link_disabled): no events will arrive; "
                 "retrying every %s — turn Socket Mode on in the app settings",
                 ob_duration_format(sl->cfg.link_disabled_retry_ms, d, sizeof(d)));
        sl->link_disabled = true;
        for (size_t i = 0; i < SLACK_MAX_CONNS; i++)
            if (sl->conns[i] && !sl->conns[i]->retiring) {
                sl->conns[i]->retiring = true;
                ob_ws_close(sl->conns[i]->ws, 1000, "link disabled");
            }
        uv_timer_start(&sl->retry, retry_cb, (uint64_t)sl->cfg.link_disabled_retry_ms, 0);
        return;
    }
    ob_info("slack", "Slack asks for a new connection (%s): opening it before closing this one",
            reason);
    c->refreshing = true;
    slack__socket_connect(sl);
}

static void ack(struct slack_conn *c, const char *envelope_id)
{
    char buf[OB_SLACK_ID_MAX + 32];
    int n = snprintf(buf, sizeof(buf), "{\"envelope_id\":\"%s\"}", envelope_id);

    if (ob_ws_send_text(c->ws, buf, (size_t)n))
        ob_warn("slack", "cannot ack envelope on connection %u (closing)", c->id);
}

static void conn_on_text(void *data, struct ob_ws *ws, const char *text, size_t len)
{
    struct slack_conn *c = data;
    struct slack *sl;
    struct ob_slack_envelope e;
    char err[160];
    int rc;

    (void)ws;
    if (!c)
        return;
    sl = c->sl;
    c->last_rx_ms = ob_now_ms();
    /* Frames arriving prove the connection alive as well as a pong would:
     * under a burst the pong waits behind them (in Slack's queue and in
     * ours), and reading the burst must not count as silence. */
    c->ping_sent_ms = 0;
    rc = ob_slack_parse_envelope(text, len, &e, err, sizeof(err));
    if (rc) {
        ob_warn("slack", "unreadable frame from Slack on connection %u: %s", c->id, err);
        if (e.envelope_id[0])
            ack(c, e.envelope_id);
        goto out;
    }
    switch (e.type) {
    case OB_SLACK_HELLO:
        on_hello(sl, c, &e);
        break;
    case OB_SLACK_DISCONNECT:
        on_disconnect(sl, c, e.reason);
        break;
    default:
        /* Ack first, at once: processing may take a while. */
        if (e.envelope_id[0])
            ack(c, e.envelope_id);
        if (e.retry_attempt)
            ob_info("slack", "envelope redelivered (attempt %d)", e.retry_attempt);
        if (e.payload && e.type != OB_SLACK_OTHER)
            slack__dispatch(sl, e.type, e.payload);
        break;
    }
out:
    ob_slack_envelope_release(&e);
}

static void conn_on_open(void *data, struct ob_ws *ws)
{
    struct slack_conn *c = data;

    (void)ws;
    if (!c)
        return;
    c->open = true;
    c->last_rx_ms = ob_now_ms();
    ob_debug("slack", "connection %u: open, waiting for hello", c->id);
}

static void conn_on_pong(void *data, struct ob_ws *ws)
{
    struct slack_conn *c = data;

    (void)ws;
    if (c)
        c->ping_sent_ms = 0;
}

static void conn_on_ping(void *data, struct ob_ws *ws)
{
    struct slack_conn *c = data;

    (void)ws;
    if (!c)
        return;
    c->pinged = true;
    c->last_rx_ms = ob_now_ms();
}

static void conn_on_close(void *data, struct ob_ws *ws, int code, const char *reason)
{
    struct slack_conn *c = data;
    struct slack *sl;
    bool was_live, successor = false;
    char why[160];

    (void)ws;
    if (!c)
        return;
    sl = c->sl;
    conn_remove(sl, c);
    was_live = c->hello && !c->retiring;
    if (!c->hello && !c->retiring)
        sl->opening = false; /* this was the attempt in progress */
    for (size_t i = 0; i < SLACK_MAX_CONNS; i++)
        if (sl->conns[i] && !sl->conns[i]->retiring)
            successor = true;
    ob_debug("slack", "connection %u closed (%d%s%s)", c->id, code, reason && *reason ? " " : "",
             reason ? reason : "");
    if (sl->life.stopping || sl->dead || sl->link_disabled || c->retiring) {
        free(c);
        return;
    }
    if (was_live && c->refreshing && (sl->opening || successor)) {
        free(c); /* the successor is on its way */
        return;
    }
    if (successor && live_conns(sl)) {
        free(c);
        return;
    }
    snprintf(why, sizeof(why), "connection %u %s (%d)", c->id,
             was_live ? "lost" : "could not be established", code);
    free(c);
    if (!sl->opening)
        schedule_retry(sl, 0, why);
}

/* ---- health ------------------------------------------------------------------------ */

/* Drops a connection that failed a health check and moves on at once: its
 * close may take long to be reported on a half-open socket, so it is
 * detached first and never heard of again. */
static void kill_conn(struct slack *sl, struct slack_conn *c, const char *why)
{
    char line[160];

    ob_warn("slack", "connection %u looks dead (%s): dropping it", c->id, why);
    conn_remove(sl, c);
    ob_ws_set_data(c->ws, NULL);
    ob_ws_abort(c->ws);
    if (!c->hello)
        sl->opening = false; /* it was the attempt in progress */
    snprintf(line, sizeof(line), "connection %u dropped", c->id);
    free(c);
    if (!sl->opening && !live_conns(sl))
        schedule_retry(sl, 0, line);
}

static void tick_cb(uv_timer_t *t)
{
    struct slack *sl = t->data;
    int64_t now = ob_now_ms();

    for (size_t i = 0; i < SLACK_MAX_CONNS; i++) {
        struct slack_conn *c = sl->conns[i];

        if (!c || c->retiring)
            continue;
        if (!c->hello) {
            /* Connecting or open, but no hello in time. */
            if (now - c->last_rx_ms > sl->cfg.server_ping_timeout_ms)
                kill_conn(sl, c, "no hello");
            continue;
        }
        if (c->ping_sent_ms && now - c->ping_sent_ms > sl->cfg.ping_timeout_ms) {
            kill_conn(sl, c, "no pong to our ping");
            continue;
        }
        if (c->pinged && now - c->last_rx_ms > sl->cfg.server_ping_timeout_ms) {
            kill_conn(sl, c, "no ping from Slack");
            continue;
        }
        if (!c->ping_sent_ms && now >= c->next_ping_ms) {
            if (!ob_ws_ping(c->ws))
                c->ping_sent_ms = now;
            c->next_ping_ms = now + sl->cfg.ping_interval_ms;
        }
    }
}

int slack__socket_start(struct slack *sl)
{
    int64_t g = sl->cfg.ping_interval_ms;

    if (sl->cfg.ping_timeout_ms < g)
        g = sl->cfg.ping_timeout_ms;
    if (sl->cfg.server_ping_timeout_ms < g)
        g = sl->cfg.server_ping_timeout_ms;
    g /= 4;
    if (g < 5)
        g = 5;
    if (g > 1000)
        g = 1000;
    uv_timer_start(&sl->tick, tick_cb, (uint64_t)g, (uint64_t)g);
    slack__socket_connect(sl);
    return 0;
}

void slack__socket_stop(struct slack *sl)
{
    if (!sl->life.closed)
        uv_timer_stop(&sl->tick);
    for (size_t i = 0; i < SLACK_MAX_CONNS; i++) {
        struct slack_conn *c = sl->conns[i];

        if (!c)
            continue;
        sl->conns[i] = NULL;
        /* The connection may report its close later: it must not find us. */
        ob_ws_set_data(c->ws, NULL);
        ob_ws_close(c->ws, 1000, "bye");
        free(c);
    }
    sl->opening = false;
}
