/* Private to adapters/discord/: the adapter's state shared by discord.c
 * (config, ops, dispatch, lifecycle), rest.c (REST calls, rate-limit
 * buckets, the per-conversation send queue), gateway.c (the Gateway
 * websocket), interactions_http.c (the Ed25519-signed HTTP endpoint) and
 * components.c (message bodies and buttons). */
#ifndef OPSBOT_DISCORD_INT_H
#define OPSBOT_DISCORD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/adapter_life.h"
#include "opsbot/discord.h"
#include "opsbot/event.h"

struct ob_http;
struct ob_http_call;
struct ob_lws;
struct ob_ws;
struct ob_http_server;

#define DC_ID OB_DISCORD_ID_MAX
/* Bytes per message; Discord's limit is 2000 characters (a byte count
 * under it is always under it in characters). */
#define DC_CHUNK_BYTES 1950
#define DC_MAX_THREADS 4096
#define DC_MAX_DMS 1024
#define DC_MAX_NOTHREAD 1024
#define DC_MAX_ASKS 256
#define DC_MAX_QUEUES 512
#define DC_MAX_QUEUED 10000
#define DC_MAX_ROUTES 64
#define DC_MAX_BUCKETS 512
#define DC_DRAIN_MS 10000
/* Discord wants this shape: "DiscordBot ($url, $version)". */
#define DC_USER_AGENT "User-Agent: DiscordBot (https://github.com/opsbot/opsbot, " OB_VERSION ")"

struct dc_cfg {
    char *token; /* sodium_malloc'd, without "Bot " */
    char application_id[DC_ID];
    char api_base[512];    /* without a trailing '/' */
    char gateway_url[512]; /* "" = from GET /gateway/bot */
    bool listen_all;
    char **channels;
    size_t nchannels;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t invalid_session_min_ms; /* op 9 false: wait between these two */
    int64_t invalid_session_max_ms;
    int64_t identify_interval_ms;
    bool interactions;
    char ix_listen[128];
    char ix_path[256];
    unsigned char public_key[32];
};

/* ---- REST ---- */

struct dc_rest_result {
    int err; /* 0, OB_EHTTP (transport, 5xx), OB_EBUSY (429), OB_EDENIED (401/403),
                OB_ENOTFOUND (404), OB_EINVAL (other 4xx), OB_EJSON */
    long status;
    int code;          /* Discord's JSON error code, 0 when none */
    const cJSON *json; /* the parsed answer (NULL when none) */
    int64_t retry_after_ms;
    bool global;
};

struct discord;
typedef void (*dc_rest_cb)(struct discord *dc, void *data, const struct dc_rest_result *res);

struct dc_call {
    struct dc_call *next, *prev;
    struct discord *dc;
    struct ob_http_call *call;
    char method[8];
    char route[160]; /* for logs: never contains a token */
    char key[224];   /* the bucket it was sent in */
    char *path;      /* may contain an interaction token: never logged */
    dc_rest_cb cb;
    void *data;
    bool queued; /* a delivery of the send queue */
};

/* One queued outgoing operation. */
enum dc_op_kind { DC_OP_POST, DC_OP_UPDATE, DC_OP_REACT, DC_OP_CALLBACK, DC_OP_ORIGINAL };

struct dc_op;
typedef void (*dc_op_done)(struct discord *dc, struct dc_op *op, int status,
                           const struct dc_rest_result *res);

struct dc_op {
    struct dc_op *next;
    enum dc_op_kind kind;
    char channel[DC_ID];  /* post: where asked; update / react: the message's channel */
    char thread[DC_ID];   /* post: the thread root (message or thread channel), "" = none */
    char message[DC_ID];  /* update / react: the target */
    char target[DC_ID];   /* post: resolved channel ("" = not yet) */
    char reply_to[DC_ID]; /* post: message_reference when threads are not possible */
    char ask_user[DC_ID];
    char *text; /* post / update: the text; react: the emoji (URL-encoded) */
    size_t off; /* post: bytes already posted */
    unsigned flags;
    char first_id[DC_ID], last_id[DC_ID];
    char *path; /* callback / original: the path (has the interaction token) */
    char *body; /* callback: the JSON body */
    int attempts;
    int status;
    ob_post_cb cb;
    void *cb_data;
    dc_op_done done;             /* callback / original ops: completion */
    struct ob_discord_event *ev; /* owned: the interaction behind them */
};

struct dc_queue {
    struct dc_queue *next;
    char key[2 * DC_ID + 8];
    struct dc_op *head, *tail;
    bool busy;
    int64_t retry_at_ms;
};

struct dc_route_hash {
    char route[160];
    char hash[64];
};

struct dc_bucket {
    char key[224];
    int remaining;
    int64_t reset_ms; /* when remaining refills */
    int64_t used_ms;  /* last use (eviction) */
    bool inflight;    /* one request per bucket at a time: Remaining stays true */
};

/* ---- thread / DM knowledge ---- */

struct dc_thread {
    char id[DC_ID];
    char parent[DC_ID];
};

struct dc_ask {
    char channel[DC_ID];
    char thread[DC_ID];
    char user[DC_ID];
    int64_t at_ms;
};

/* ---- gateway ---- */

struct dc_conn {
    struct discord *dc;
    struct ob_ws *ws;
    unsigned id;
    bool hello;
    bool resume; /* this connection resumes the session */
};

enum dc_gw_state {
    DC_GW_IDLE,       /* nothing in progress (a timer may be pending) */
    DC_GW_FETCHING,   /* GET /gateway/bot in flight */
    DC_GW_CONNECTING, /* websocket opening, or open before Hello */
    DC_GW_AUTH,       /* Identify / Resume sent (or pending) */
    DC_GW_READY,      /* READY or RESUMED seen */
};

struct discord {
    struct ob_adapter ad;
    uv_loop_t *loop;
    struct dc_cfg cfg;
    struct ob_lws *lws;
    struct ob_http *http; /* owned: its lifetime must cover the drain after stop */

    /* identity from READY */
    char bot_user_id[DC_ID];
    char bot_name[128];

    /* rest */
    struct dc_call *calls;
    struct dc_route_hash routes[DC_MAX_ROUTES];
    size_t routes_next;
    struct dc_bucket buckets[DC_MAX_BUCKETS];
    int64_t global_until_ms;
    struct dc_queue *queues;
    size_t nqueues, nqueued;
    uv_timer_t pump;
    bool pumping, pump_again;
    bool warned_perm;

    /* what is known about channels */
    struct dc_thread threads[DC_MAX_THREADS];
    size_t nthreads, threads_next;
    char dms[DC_MAX_DMS][DC_ID];
    size_t dms_next;
    char nothread[DC_MAX_NOTHREAD][DC_ID]; /* roots that cannot have a thread */
    size_t nothread_next;
    struct dc_ask asks[DC_MAX_ASKS];
    size_t asks_next;

    /* gateway */
    enum dc_gw_state gw;
    struct dc_conn *conn;
    unsigned next_conn_id;
    char gw_url[512];
    char resume_url[512];
    char session_id[128];
    int64_t seq;
    int64_t hb_interval_ms;
    bool hb_sent, hb_acked;
    int64_t last_identify_ms;
    int failures;        /* consecutive failed connections (backoff) */
    int resume_failures; /* resume attempts that did not get back in */
    size_t replayed;     /* dispatches since Resume, before RESUMED */
    bool ready;          /* READY / RESUMED on the live connection */
    bool ever_ready;
    int gw_next;          /* what the retry timer does (gateway.c) */
    int connect_failures; /* connects to gw_url that never got a Hello */
    uv_timer_t hb;        /* heartbeats */
    uv_timer_t retry;     /* GET /gateway/bot, reconnects */
    uv_timer_t identify;  /* identify pacing */

    /* interactions over HTTP */
    struct ob_http_server *ix;

    /* lifecycle */
    bool started;
    bool dead;           /* fatal: nothing more is attempted */
    struct ob_life life; /* stop, drain, close, free (src/adapter_life.c) */
};

/* discord.c */
void discord__fatal(struct discord *dc, const char *why);
void discord__handle_event(struct discord *dc, struct ob_discord_event *e);
void discord__interaction(struct discord *dc, struct ob_discord_event *e, bool answered);
void discord__close_handles(struct discord *dc);
const char *discord__thread_parent(void *data, const char *channel);
void discord__thread_add(struct discord *dc, const char *id, const char *parent);
void discord__thread_forget(struct discord *dc, const char *id);
void discord__dm_add(struct discord *dc, const char *channel);
bool discord__is_dm(const struct discord *dc, const char *channel);
void discord__nothread_add(struct discord *dc, const char *message);
bool discord__is_nothread(const struct discord *dc, const char *message);
void discord__self(struct discord *dc, struct ob_discord_self *self);

/* rest.c */
int discord__rest(struct discord *dc, const char *method, const char *path, const char *body,
                  dc_rest_cb cb, void *data);
void discord__rest_cancel_all(struct discord *dc);
void discord__rest_cancel_others(struct discord *dc);
int discord__enqueue(struct discord *dc, const char *key, struct dc_op *op);
void discord__pump(struct discord *dc);
size_t discord__queued(const struct discord *dc);
void discord__queue_drop(struct discord *dc, int status, bool call);
void discord__op_free(struct dc_op *op);
/* ms to wait before a request may go (0 = now, -1 = until the request in
 * flight in its bucket is answered). */
int64_t discord__rl_wait(struct discord *dc, const char *method, const char *path);

/* gateway.c */
void discord__gw_start(struct discord *dc);
void discord__gw_stop(struct discord *dc);

/* interactions_http.c */
int discord__ix_start(struct discord *dc);
void discord__ix_stop(struct discord *dc);

/* components.c */
cJSON *discord__message_body(const char *content, unsigned flags, const char *ask_user,
                             const char *reply_to);
cJSON *discord__edit_body(const char *content, unsigned flags);
cJSON *discord__approval_components(void);
cJSON *discord__command_ack(const struct ob_discord_event *e);
size_t discord__chunk_len(const char *text, size_t off);
char *discord__chunk(const char *text, size_t off, size_t n);
char *discord__emoji_path(const char *emoji);

#endif
