/* Private to adapters/slack/: the adapter's state shared by slack.c (config,
 * ops, dispatch), webapi.c (Web API, send queue), socket.c (Socket Mode),
 * events_http.c (HTTP Events mode) and blocks.c (Block Kit). */
#ifndef OPSBOT_SLACK_INT_H
#define OPSBOT_SLACK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/adapter_life.h"
#include "opsbot/event.h"
#include "opsbot/slack.h"

struct ob_http;
struct ob_http_call;
struct ob_lws;
struct ob_ws;
struct ob_http_server;

/* Text per chat.postMessage; longer texts are split into several messages
 * (Slack's own limit is 40,000 characters, but long walls of text are
 * collapsed by clients; a code fence open at a split is closed and
 * reopened). */
#define SLACK_CHUNK_BYTES 12000
#define SLACK_USER_CACHE 1024
#define SLACK_MAX_CHANNELS 512
#define SLACK_MAX_ASKS 256
#define SLACK_MAX_CONNS 4
#define SLACK_RL_METHODS 16
#define SLACK_DRAIN_MS 10000

enum slack_token { SLACK_BOT_TOKEN, SLACK_APP_TOKEN };

struct slack_cfg {
    char *app_token;      /* sodium_malloc'd, NULL when absent */
    char *bot_token;      /* sodium_malloc'd */
    char *signing_secret; /* sodium_malloc'd, NULL when absent */
    size_t signing_secret_len;
    char api_base[512]; /* ends with '/' */
    bool listen_all;
    char **channels;
    size_t nchannels;
    int64_t min_post_interval_ms;
    int64_t ping_interval_ms;
    int64_t ping_timeout_ms;
    int64_t server_ping_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t link_disabled_retry_ms;
    bool socket_mode;
    bool http_events;
    char events_listen[128];
    char events_path[256];
};

/* ---- Web API ---- */

struct slack_api_result {
    int err;                /* 0, OB_EHTTP (transport/ok:false), OB_EBUSY (429), OB_EJSON */
    long status;            /* HTTP status */
    const char *error;      /* Slack's error code for ok:false, else NULL */
    const cJSON *json;      /* the parsed response (NULL when not JSON) */
    int64_t retry_after_ms; /* with OB_EBUSY */
};

struct slack;
typedef void (*slack_api_cb)(struct slack *sl, void *data, const struct slack_api_result *res);

struct slack_api_req {
    struct slack_api_req *next, *prev;
    struct slack *sl;
    struct ob_http_call *call;
    char method[40];
    enum slack_token tok;
    slack_api_cb cb;
    void *data;
};

/* One queued outgoing operation for a channel. */
enum slack_op_kind { SLACK_OP_POST, SLACK_OP_UPDATE, SLACK_OP_REACT };

struct slack_op {
    struct slack_op *next;
    enum slack_op_kind kind;
    char channel[128];
    char thread[128];
    char ts[128]; /* update / react: the target */
    char *text;   /* post / update: mrkdwn-escaped text; react: emoji name */
    size_t off;   /* post: bytes already posted (split messages) */
    unsigned flags;
    char first_ts[64]; /* post: ts of the first chunk */
    int attempts;      /* transient failures so far */
    int status;        /* first error (post) */
    ob_post_cb cb;
    void *cb_data;
};

struct slack_chan {
    struct slack_chan *next;
    char id[128];
    struct slack_op *head, *tail;
    bool busy;           /* a request of this queue is in flight */
    int64_t next_ok_ms;  /* pacing: no post before this */
    int64_t retry_at_ms; /* transient failure backoff */
};

struct slack_user {
    char id[64];
    char name[128];
    bool pending;
};

struct slack_ask {
    char channel[128];
    char thread[128];
    char user[64];
    int64_t at_ms;
};

/* ---- Socket Mode ---- */

struct slack_conn {
    struct slack *sl;
    struct ob_ws *ws;
    unsigned id;
    bool open;            /* handshake done */
    bool hello;           /* hello received */
    bool retiring;        /* replaced: closing after the successor's hello */
    bool refreshing;      /* asked to refresh: a successor is on its way */
    bool pinged;          /* the server has pinged at least once */
    int64_t last_rx_ms;   /* last ping or text frame from Slack */
    int64_t ping_sent_ms; /* 0 = no ping of ours outstanding */
    int64_t next_ping_ms;
};

struct slack {
    struct ob_adapter ad;
    uv_loop_t *loop;
    struct slack_cfg cfg;
    struct ob_lws *lws;
    struct ob_http *http; /* owned: its lifetime must cover the drain after stop */

    /* identity from auth.test */
    char bot_user_id[64];
    char bot_id[64];
    char team_id[64];
    char team[128];
    bool authed;

    /* web api */
    struct slack_api_req *reqs;
    struct {
        char method[40];
        int64_t until_ms;
    } rl[SLACK_RL_METHODS];
    struct slack_chan *chans;
    size_t nchans;
    uv_timer_t pump;
    bool pumping, pump_again;
    struct slack_user users[SLACK_USER_CACHE];
    size_t nusers, users_next;
    struct slack_ask asks[SLACK_MAX_ASKS];
    size_t asks_next;

    /* socket mode */
    struct slack_conn *conns[SLACK_MAX_CONNS];
    unsigned next_conn_id;
    bool opening; /* apps.connections.open in flight or a connect pending hello */
    int failures; /* consecutive failed attempts (backoff) */
    bool link_disabled;
    uv_timer_t retry; /* auth.test / reconnect backoff */
    uv_timer_t tick;  /* pings and liveness */

    /* HTTP events */
    struct ob_http_server *events;

    /* lifecycle */
    bool started;
    bool dead;           /* fatal: nothing more is attempted */
    struct ob_life life; /* stop, drain, close, free (src/adapter_life.c) */
};

/* slack.c */
void slack__dispatch(struct slack *sl, enum ob_slack_frame type, const cJSON *payload);
void slack__fatal(struct slack *sl, enum slack_token which, const char *error);
bool slack__is_fatal_error(const char *error);
void slack__ready(struct slack *sl);
void slack__close_handles(struct slack *sl);

/* webapi.c */
int slack__api(struct slack *sl, const char *method, enum slack_token tok, const char *http_method,
               const char *content_type, const char *body, size_t len, slack_api_cb cb, void *data);
void slack__api_cancel_all(struct slack *sl);
void slack__api_cancel_others(struct slack *sl);
int slack__enqueue(struct slack *sl, struct slack_op *op);
void slack__pump(struct slack *sl);
size_t slack__queued(const struct slack *sl);
void slack__queue_drop(struct slack *sl, int status, bool call);
const char *slack__user_name(struct slack *sl, const char *user);
char *slack__escape(const char *text);

/* socket.c */
int slack__socket_start(struct slack *sl);
void slack__socket_stop(struct slack *sl);
void slack__socket_connect(struct slack *sl);

/* events_http.c */
int slack__events_start(struct slack *sl);
void slack__events_stop(struct slack *sl);
/* The pure parsing of HTTP Events mode request bodies (the signature check
 * is ob_slack_verify_signature in opsbot/slack.h); no state, no logging, so
 * tests/fuzz/fuzz_slack_form.c drives them directly. */
/* Decodes s[0..len) (application/x-www-form-urlencoded: '+' is a space,
 * %XX a byte) into a malloc'd NUL-terminated string; NULL on bad escapes or
 * embedded NUL. */
char *slack__form_decode(const char *s, size_t len);
/* The form's fields as a JSON object of strings (the first of repeated
 * keys wins, empty keys are dropped); NULL when a field does not decode or
 * there are more than 64. */
cJSON *slack__form_fields(const char *body, size_t len);
/* A form body to what is dispatched: the JSON object in the "payload" field
 * (interactivity, *type = OB_SLACK_INTERACTIVE) or else the fields
 * themselves when there is a "command" (*type = OB_SLACK_SLASH_COMMANDS).
 * *root is the caller's. Returns 0, OB_EPARSE (not a form) or OB_EINVAL (no
 * usable payload), *root NULL then. */
int slack__form_payload(const char *body, size_t len, enum ob_slack_frame *type, cJSON **root);

/* blocks.c */
cJSON *slack__blocks(const char *escaped_text, unsigned flags);

#endif
