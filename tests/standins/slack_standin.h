/* A local Slack for tests and benchmarks: the Web API methods opsbot uses
 * (auth.test, apps.connections.open, chat.postMessage, chat.update,
 * reactions.add, users.info) with Slack's response shapes, ok:false errors
 * and 429 + Retry-After on demand; the Socket Mode websocket (hello,
 * envelopes, ack tracking with a deadline, server pings, disconnect
 * warning / refresh_requested / link_disabled, abrupt close, and a
 * half-open "silent" mode); and a record of every call opsbot made.
 *
 * Everything runs on the caller's libuv loop. Socket Mode URLs point at a
 * small TCP relay in front of the websocket endpoint, so that silence can
 * be total (no frames, no pongs): a real half-open connection.
 */
#ifndef OPSBOT_SLACK_STANDIN_H
#define OPSBOT_SLACK_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct slack_standin;

struct slack_standin_opts {
    const char *bot_token;   /* accepted bot token (default "xoxb-standin-bot") */
    const char *app_token;   /* accepted app token (default "xapp-standin-app") */
    const char *bot_user_id; /* default "UBOT" */
    int64_t ping_ms;         /* server ping interval, 0 = no pings */
    int64_t ack_deadline_ms; /* 0 = 3000 */
};

/* One Web API call opsbot made (strings "" when absent). */
struct standin_call {
    char method[40];
    char channel[64];
    char ts[64]; /* chat.update: target; chat.postMessage: the ts given out */
    char thread_ts[64];
    char name[64];      /* reactions.add */
    char timestamp[64]; /* reactions.add */
    char user[64];      /* users.info */
    char *text;         /* chat.*: the text (malloc'd, never NULL) */
    bool has_blocks;
    bool has_buttons;  /* an actions block with approve / deny buttons */
    bool blocks_empty; /* "blocks": [] */
    int status;        /* HTTP status answered */
    char error[64];    /* ok:false error answered, "" for ok */
    int64_t at_ms;
};

int slack_standin_new(struct slack_standin **out, uv_loop_t *loop,
                      const struct slack_standin_opts *opts);
/* Closes everything; run the loop afterwards until it is empty. */
void slack_standin_free(struct slack_standin *s);
/* "http://127.0.0.1:PORT/api/" */
const char *slack_standin_api_base(const struct slack_standin *s);

/* Runs the loop until cond(s, arg) is true or timeout_ms passed; returns
 * whether cond became true. Event-driven (UV_RUN_ONCE plus a deadline
 * timer), no sleeps. cond NULL = just run for timeout_ms. */
bool slack_standin_wait(struct slack_standin *s, bool (*cond)(struct slack_standin *, void *),
                        void *arg, int64_t timeout_ms);

/* ---- Web API record and faults ---- */

size_t slack_standin_ncalls(const struct slack_standin *s);
const struct standin_call *slack_standin_call(const struct slack_standin *s, size_t i);
/* Number of calls of method (NULL = all). */
size_t slack_standin_count(const struct slack_standin *s, const char *method);
/* Index of the first chat.postMessage at or after `from` whose text contains
 * needle, or -1. */
long slack_standin_find_post(const struct slack_standin *s, const char *needle, size_t from);
/* Waits for such a post; returns its index or -1 after timeout_ms. */
long slack_standin_wait_post(struct slack_standin *s, const char *needle, int64_t timeout_ms);
/* How many such posts there are. */
size_t slack_standin_count_posts(const struct slack_standin *s, const char *needle);
/* Waits until at least n such posts exist; whether they did within timeout_ms. */
bool slack_standin_wait_posts(struct slack_standin *s, const char *needle, size_t n,
                              int64_t timeout_ms);
/* The next n calls of method get HTTP 429 with Retry-After: retry_after_s. */
void slack_standin_ratelimit(struct slack_standin *s, const char *method, int n, int retry_after_s);
/* The next n calls of method get {"ok":false,"error":error}. */
void slack_standin_fail(struct slack_standin *s, const char *method, const char *error, int n);
/* The next n calls of method (NULL: of any method, counted together) get
 * HTTP status (e.g. 503) with an HTML body, as from a proxy in front of
 * Slack. Method "*" in ratelimit / fail means any method too. */
void slack_standin_http_error(struct slack_standin *s, const char *method, int status, int n);

/* ---- Socket Mode ---- */

/* apps.connections.open calls answered with a URL. */
size_t slack_standin_opens(const struct slack_standin *s);
/* Websocket connections that got their hello, ever / open now. */
size_t slack_standin_hellos(const struct slack_standin *s);
size_t slack_standin_live(const struct slack_standin *s);
/* Handshakes refused for a missing, unknown or reused ticket. */
size_t slack_standin_bad_tickets(const struct slack_standin *s);
/* Id of the newest open connection (0 = none); envelopes go to the target
 * connection, by default the newest. */
unsigned slack_standin_newest(const struct slack_standin *s);
void slack_standin_target(struct slack_standin *s, unsigned conn_id);

/* Envelopes. Each returns 0 or a negative error (no connection). The
 * message helper sends a `message` event (channel_type from the channel id:
 * D… = im) and, when the text mentions the bot outside a DM, an
 * `app_mention` too, as Slack does; ts_out (optional) gets the new ts. */
int slack_standin_message(struct slack_standin *s, const char *channel, const char *user,
                          const char *text, const char *thread_ts, char *ts_out, size_t ts_len);
/* An events_api envelope around any inner event JSON. */
int slack_standin_event(struct slack_standin *s, const char *event_json);
int slack_standin_reaction(struct slack_standin *s, const char *user, const char *reaction,
                           const char *channel, const char *ts, bool added);
/* A block_actions click on our approve / deny button. */
int slack_standin_button(struct slack_standin *s, const char *user, const char *channel,
                         const char *message_ts, const char *thread_ts, const char *action);
int slack_standin_slash(struct slack_standin *s, const char *user, const char *channel,
                        const char *text);
/* Sends the last envelope again: same envelope_id and event_id,
 * retry_attempt + 1, retry_reason "timeout". */
int slack_standin_redeliver(struct slack_standin *s);
/* What Slack does with envelopes that were not acked in time (ack
 * failures): sends each again, once, to the target connection with
 * retry_attempt + 1 and retry_reason "timeout". Returns how many. */
size_t slack_standin_redeliver_unacked(struct slack_standin *s);
int slack_standin_raw(struct slack_standin *s, const char *frame);
int slack_standin_disconnect(struct slack_standin *s, const char *reason);
/* Closes the target connection: cleanly (1000) or abruptly (no frame). */
int slack_standin_close(struct slack_standin *s, bool abrupt);
/* Every connection open now goes silent: nothing is forwarded in either
 * direction, the sockets stay open (half-open). New connections are not
 * affected. */
void slack_standin_silence(struct slack_standin *s);
/* Every connection open now receives the start of a text frame (its header
 * announces 200 bytes, fewer follow) and is then closed: the websocket dies
 * mid-frame. Returns the number of connections cut. */
size_t slack_standin_cut_midframe(struct slack_standin *s);

/* Envelopes sent, acked in time, and failed (not acked within the deadline,
 * or acked late). */
size_t slack_standin_envelopes(const struct slack_standin *s);
size_t slack_standin_acked(const struct slack_standin *s);
size_t slack_standin_ack_failures(const struct slack_standin *s);
/* Pongs received (answers to the stand-in's pings). */
size_t slack_standin_pongs(const struct slack_standin *s);

/* ---- Load source (tests/bench/) ---- */

/* Hooks for a benchmark, called on the loop as things arrive: on_frame for
 * every text frame opsbot sends on a Socket Mode connection (acks), on_post
 * for every chat.postMessage (after parsing, before the answer). lean: no
 * record of Web API calls or posted messages is kept (the record grows
 * without bound under load); slack_standin_call() and friends then see
 * nothing. Envelopes sent with slack_standin_raw() are not tracked either.
 * GET/POST /bench/... on the API port (slack_standin_api_base() with
 * "bench/" for "api/") answers 200 {"ok":true}: a target for an `http`
 * executor. */
struct slack_standin_hooks {
    void (*on_frame)(void *arg, const char *text, size_t len);
    void (*on_post)(void *arg, const char *channel, const char *thread_ts, const char *text);
    void *arg;
    bool lean;
};
void slack_standin_set_hooks(struct slack_standin *s, const struct slack_standin_hooks *h);

/* ---- HTTP Events mode helper ---- */

/* out = "v0=" + hex HMAC-SHA256(secret, "v0:" + ts + ":" + body). */
void slack_standin_sign(const char *secret, const char *ts, const char *body, size_t len,
                        char out[72]);

#endif
