/* Private to adapters/teams/: the adapter's state shared by teams.c
 * (config, ops, dispatch, lifecycle), endpoint.c (the messaging endpoint
 * and JWT verification with the key cache), connector.c (token, send
 * queue) and cards.c. */
#ifndef OPSBOT_TEAMS_INT_H
#define OPSBOT_TEAMS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/adapter_life.h"
#include "opsbot/event.h"
#include "opsbot/teams.h"

struct ob_http;
struct ob_http_call;
struct ob_lws;
struct ob_http_server;
struct ob_http_exchange;

#define TEAMS_CHUNK_BYTES 12000 /* Teams refuses messages over ~40 KB (UTF-16) */
#define TEAMS_MAX_CONVS 4096
#define TEAMS_MAX_ASKS 256
#define TEAMS_MAX_USERS 1024
#define TEAMS_MAX_CARDS 256
#define TEAMS_MAX_WAITERS 256
#define TEAMS_DRAIN_MS 10000
#define TEAMS_SEND_RING 60

struct teams_cfg {
    char app_id[128];
    char *app_secret; /* sodium_malloc'd */
    char tenant[128]; /* "" = multi-tenant */
    char listen[128];
    char path[256];
    char *tls_cert; /* resolved paths, NULL = plain HTTP */
    char *tls_key;
    size_t max_body;
    char **tenants; /* allow-list, NULL = any */
    size_t ntenants;
    char token_url[512]; /* {tenant} substituted */
    char openid_url[512];
    char issuer[256];
    char service_url[512]; /* fallback before any activity of a conversation */
};

/* ---- outbound ---- */

enum teams_op_kind { TEAMS_OP_POST, TEAMS_OP_UPDATE };

struct teams_op {
    struct teams_op *next;
    enum teams_op_kind kind;
    char channel[256];  /* base conversation id */
    char thread[128];   /* "" = conversation level */
    char url_conv[400]; /* conversation id in the URL (with ;messageid= in channel threads) */
    char target[128];   /* POST: replyToId ("" = new); PUT: the activity */
    char card_ref[40];  /* approval card: its data ref */
    char *body;         /* the activity JSON */
    int attempts;
    bool auth_retried;
    ob_post_cb cb;
    void *cb_data;
};

struct teams;

struct teams_conv {
    struct teams_conv *next;
    struct teams *tm;
    char id[256];
    char service_url[512]; /* "" = not seen yet */
    char type[16];
    int64_t seen_ms;
    struct teams_op *head, *tail;
    bool busy;
    struct ob_http_call *call; /* the head op's request */
    unsigned gen;              /* token generation it was sent with */
    int64_t retry_at_ms;
    int64_t sent[TEAMS_SEND_RING]; /* send times, ring */
    size_t nsent;
};

struct teams_ask {
    char conv[256];
    char thread[128];
    char user[256];
    int64_t at_ms;
};

struct teams_user {
    char id[256];      /* aadObjectId (the id the core sees) */
    char from_id[256]; /* "29:…" for mentions */
    char name[128];
};

struct teams_card {
    char ref[40];
    char message[128];
};

/* An invoke being answered: what the core did during its dispatch. */
struct teams_invoke {
    const char *conv;
    const char *card; /* the card's activity id */
    cJSON *card_out;  /* updated card, owned */
    char *msg;        /* last text posted in the conversation, owned */
};

/* A request waiting for the signing keys. */
struct teams_waiter {
    struct teams_waiter *next;
    struct ob_http_exchange *ex;
    char *token;
    char *body;
    size_t body_len;
    char remote[64];
};

struct teams {
    struct ob_adapter ad;
    uv_loop_t *loop;
    struct teams_cfg cfg;
    struct ob_lws *lws;
    struct ob_http *http; /* owned: its lifetime covers the drain after stop */

    /* endpoint */
    struct ob_http_server *srv;
    struct ob_teams_keys keys;
    struct ob_http_call *keys_call;
    int keys_stage; /* 0 idle, 1 metadata, 2 jwks */
    struct teams_waiter *waiters;
    size_t nwaiters;
    struct teams_invoke *inv;

    /* token */
    char *token;       /* sodium_malloc'd access token */
    int64_t token_exp; /* ms: expiry */
    int64_t token_refresh_at;
    unsigned token_gen;
    struct ob_http_call *token_call;
    int token_failures;
    bool token_ok_once;
    uv_timer_t token_timer;

    /* sending */
    struct teams_conv *convs;
    size_t nconvs;
    size_t inflight; /* connector requests in flight */
    uv_timer_t pump;
    bool pumping, pump_again;
    struct teams_ask asks[TEAMS_MAX_ASKS];
    size_t asks_next;
    struct teams_user users[TEAMS_MAX_USERS];
    size_t nusers, users_next;
    struct teams_card cards[TEAMS_MAX_CARDS];
    size_t cards_next;

    /* lifecycle */
    bool started, dead;
    struct ob_life life; /* stop, drain, close, free (src/adapter_life.c) */
};

/* teams.c */
void teams__fatal(struct teams *tm, const char *why);
void teams__dispatch(struct teams *tm, struct ob_http_exchange *ex, const cJSON *act);
void teams__close_handles(struct teams *tm);

/* endpoint.c */
int teams__endpoint_start(struct teams *tm);
void teams__endpoint_stop(struct teams *tm);
void teams__keys_fetch(struct teams *tm);

/* connector.c */
struct teams_conv *teams__conv(struct teams *tm, const char *id, bool create);
void teams__conv_seen(struct teams *tm, const char *id, const char *service_url, const char *type);
bool teams__conv_is_channel(struct teams *tm, const char *id);
int teams__enqueue(struct teams *tm, struct teams_op *op);
void teams__pump(struct teams *tm);
size_t teams__queued(const struct teams *tm);
void teams__queue_drop(struct teams *tm, int status, bool call);
void teams__token_fetch(struct teams *tm);
void teams__connector_cancel(struct teams *tm);

/* cards.c */
char *teams__xml_text(const char *text, size_t len);

#endif
