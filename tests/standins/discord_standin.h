/* A local Discord for tests: the Gateway (Hello, heartbeats and ACKs with a
 * mode that stops ACKing, Identify -> READY with a session and a
 * resume_gateway_url on a second path, dispatches with increasing s,
 * Resume -> replay of what was missed + RESUMED, op 7, op 9 both ways,
 * close codes: 4004 for a wrong token, 4014 when the Message Content intent
 * is "not enabled in the portal"), and the REST routes opsbot uses with
 * Discord's shapes, X-RateLimit-* headers per bucket + major parameter, 429
 * bodies ({"message","retry_after","global"} + Retry-After) and interaction
 * callbacks checked against the 3-second deadline. It records what opsbot
 * sent. Everything runs on the caller's libuv loop.
 */
#ifndef OPSBOT_DISCORD_STANDIN_H
#define OPSBOT_DISCORD_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct discord_standin;

struct discord_standin_opts {
    const char *token;          /* accepted bot token (default "standin.bot-token") */
    const char *bot_user_id;    /* default "500000000000000001" */
    const char *application_id; /* default "600000000000000001" */
    int64_t heartbeat_ms;       /* Hello's heartbeat_interval (default 300) */
    bool message_content_off;   /* Identify with MESSAGE_CONTENT -> close 4014 */
    int session_remaining;      /* session_start_limit.remaining (default 999; -1 = 0) */
    int64_t session_reset_ms;   /* session_start_limit.reset_after */
    int message_limit;          /* create-message bucket size per channel (default 5) */
    int64_t message_window_ms;  /* its window (default 1000) */
};

/* Kinds of REST calls (the `kind` of a record). */
#define DS_GATEWAY_BOT "gateway_bot"
#define DS_CREATE_MESSAGE "create_message"
#define DS_START_THREAD "start_thread"
#define DS_EDIT_MESSAGE "edit_message"
#define DS_ADD_REACTION "add_reaction"
#define DS_CALLBACK "callback"
#define DS_ORIGINAL "original"
#define DS_COMMANDS "commands"

/* One REST call opsbot made (strings "" when absent). */
struct ds_call {
    char kind[20];
    char method[8];
    char channel[32];  /* the channel in the path */
    char message[32];  /* edit / reaction / thread: the target; create: the id given out */
    char reply_to[32]; /* create: message_reference.message_id */
    char *content;     /* create / edit: the content (malloc'd, never NULL) */
    bool has_components;
    bool has_buttons;      /* an action row with opsbot:approve + opsbot:deny */
    bool components_empty; /* "components": [] */
    bool pings_suppressed; /* allowed_mentions.parse == [] */
    char allowed_user[32]; /* allowed_mentions.users[0] */
    char emoji[64];        /* reaction: decoded */
    char interaction[32];  /* callback: the interaction id */
    int cb_type;           /* callback: the response type */
    int64_t cb_latency_ms; /* callback: since the interaction was dispatched */
    bool auth_ok;          /* Authorization: Bot <token> (when required) */
    bool ua_ok;            /* User-Agent: DiscordBot (...) */
    int status;            /* HTTP status answered */
    int code;              /* Discord error code answered, 0 for none */
    bool forced;           /* a 429 or failure injected by the test */
    int64_t at_ms;
};

int discord_standin_new(struct discord_standin **out, uv_loop_t *loop,
                        const struct discord_standin_opts *opts);
/* Closes everything; run the loop afterwards until it is empty. */
void discord_standin_free(struct discord_standin *s);
/* "http://127.0.0.1:PORT/api/v10" */
const char *discord_standin_api_base(const struct discord_standin *s);
const char *discord_standin_bot_id(const struct discord_standin *s);

/* Runs the loop until cond(s, arg) is true or timeout_ms passed; returns
 * whether cond became true. Event-driven (UV_RUN_ONCE plus a deadline
 * timer), no sleeps. cond NULL = just run for timeout_ms. */
bool discord_standin_wait(struct discord_standin *s, bool (*cond)(struct discord_standin *, void *),
                          void *arg, int64_t timeout_ms);

/* ---- Gateway ---- */

size_t discord_standin_connections(const struct discord_standin *s); /* handshakes, ever */
size_t discord_standin_live(const struct discord_standin *s);        /* authenticated now */
size_t discord_standin_identifies(const struct discord_standin *s);
size_t discord_standin_resumes(const struct discord_standin *s); /* successful ones */
size_t discord_standin_heartbeats(const struct discord_standin *s);
/* What the newest handshake asked for: path ("/gateway", "/resume") and query. */
const char *discord_standin_last_path(const struct discord_standin *s);
const char *discord_standin_last_query(const struct discord_standin *s);
uint32_t discord_standin_last_intents(const struct discord_standin *s);
int64_t discord_standin_last_resume_seq(const struct discord_standin *s);
/* Close code of the last connection the client closed (0 = none yet). */
int discord_standin_client_close_code(const struct discord_standin *s);
/* The connections open now go zombie (stop): heartbeats are no longer
 * ACKed and dispatches are held back (kept for a Resume's replay); new
 * connections behave normally. */
void discord_standin_stop_acks(struct discord_standin *s, bool stop);
/* The next Identify is answered by closing with code. */
void discord_standin_fail_identify(struct discord_standin *s, int code);
/* The next Resume is answered with op 9 d=false. */
void discord_standin_refuse_resume(struct discord_standin *s);
/* A Resume also replays the n events before the given seq (duplicates the
 * client must not act on twice). */
void discord_standin_replay_overlap(struct discord_standin *s, int n);

/* To the live connection; each returns 0 or -1 (no connection). */
int discord_standin_reconnect(struct discord_standin *s);               /* op 7 */
int discord_standin_invalid_session(struct discord_standin *s, bool d); /* op 9 */
int discord_standin_heartbeat_request(struct discord_standin *s);       /* op 1 */
int discord_standin_close(struct discord_standin *s, int code, const char *reason);
int discord_standin_raw(struct discord_standin *s, const char *frame);

/* Dispatches: each is stored in the session (for replay) and sent to the
 * live connection if there is one. Returns its s, or -1 without a session. */
long discord_standin_dispatch(struct discord_standin *s, const char *t, const char *d_json);
/* MESSAGE_CREATE from user in channel (guild NULL = a DM channel); a
 * "<@bot>" in text puts the bot in `mentions`, as Discord does. id_out
 * (optional) gets the message id. */
long discord_standin_message(struct discord_standin *s, const char *channel, const char *guild,
                             const char *user, const char *text, char *id_out, size_t id_len);
long discord_standin_reaction(struct discord_standin *s, const char *user, const char *channel,
                              const char *guild, const char *message, const char *emoji, bool add);
/* A press of a button (custom_id) on message; id_out gets the interaction id. */
long discord_standin_button(struct discord_standin *s, const char *user, const char *channel,
                            const char *guild, const char *message, const char *custom_id,
                            char *id_out, size_t id_len);
long discord_standin_slash(struct discord_standin *s, const char *user, const char *channel,
                           const char *guild, const char *text, char *id_out, size_t id_len);

/* ---- REST record and faults ---- */

size_t discord_standin_ncalls(const struct discord_standin *s);
const struct ds_call *discord_standin_call(const struct discord_standin *s, size_t i);
size_t discord_standin_count(const struct discord_standin *s, const char *kind);
/* Index of the first successful create_message at or after from whose
 * content contains needle, or -1. */
long discord_standin_find_post(const struct discord_standin *s, const char *needle, size_t from);
long discord_standin_wait_post(struct discord_standin *s, const char *needle, int64_t timeout_ms);
/* How many such posts there are; waiting until at least n exist (whether
 * they did within timeout_ms). */
size_t discord_standin_count_posts(const struct discord_standin *s, const char *needle);
bool discord_standin_wait_posts(struct discord_standin *s, const char *needle, size_t n,
                                int64_t timeout_ms);
/* The next n calls of kind get 429 with retry_after (ms) and the global flag. */
void discord_standin_ratelimit(struct discord_standin *s, const char *kind, int n,
                               int64_t retry_after_ms, bool global);
/* 429s the stand-in had to give because a bucket was exhausted (the client
 * did not respect X-RateLimit-Remaining / Reset-After). */
size_t discord_standin_violations(const struct discord_standin *s);
/* Channel of a thread started by opsbot, "" if none (thread id = message id). */
bool discord_standin_is_thread(const struct discord_standin *s, const char *id);

/* ---- interactions endpoint helpers ---- */

void discord_standin_keypair(unsigned char pk[32], unsigned char sk[64]);
/* out = hex Ed25519 signature of ts + body. */
void discord_standin_sign(const unsigned char sk[64], const char *ts, const char *body, size_t len,
                          char out[129]);
/* An interaction object (JSON, malloc'd) as Discord POSTs it to an
 * interactions endpoint: type 1 (PING), 2 (/ops text) or 3 (button
 * custom_id on message). Registered so that GET @original works. */
char *discord_standin_interaction_json(struct discord_standin *s, int type, const char *user,
                                       const char *channel, const char *guild, const char *message,
                                       const char *arg);

#endif
