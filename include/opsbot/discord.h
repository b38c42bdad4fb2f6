/* The Discord adapter: Gateway v10 in, REST out, optional interactions
 * endpoint over HTTP (Ed25519-signed).
 *
 * Registered in src/platforms.c as ob_discord_platform; configured under
 * `platforms: discord:` (see docs/DISCORD.md). The parsing, routing and
 * signature entry points below are pure functions (no loop, no network, no
 * logging) so that unit tests and fuzz targets can call them directly.
 */
#ifndef OPSBOT_DISCORD_H
#define OPSBOT_DISCORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/event.h"
#include "opsbot/platform.h"

extern const struct ob_platform ob_discord_platform;

/* Validates `platforms.discord` (token, ids, URLs, interactions); never
 * prints the token. Returns 0 or OB_ECONFIG. */
int ob_discord_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d);
/* Creates the adapter from a checked section. */
int ob_discord_new(struct ob_adapter **out, const struct ob_platform_env *env,
                   const cJSON *section);

/* ---- intents and permissions ----------------------------------------------- */

enum ob_discord_intent {
    OB_DISCORD_INTENT_GUILDS = 1u << 0, /* thread create / list sync */
    OB_DISCORD_INTENT_GUILD_MESSAGES = 1u << 9,
    OB_DISCORD_INTENT_GUILD_MESSAGE_REACTIONS = 1u << 10,
    OB_DISCORD_INTENT_DIRECT_MESSAGES = 1u << 12,
    OB_DISCORD_INTENT_DIRECT_MESSAGE_REACTIONS = 1u << 13,
    OB_DISCORD_INTENT_MESSAGE_CONTENT = 1u << 15, /* privileged */
};

/* The intents opsbot identifies with (46593). */
uint32_t ob_discord_intents(void);

enum ob_discord_permission {
    OB_DISCORD_PERM_ADD_REACTIONS = 1ull << 6,
    OB_DISCORD_PERM_VIEW_CHANNEL = 1ull << 10,
    OB_DISCORD_PERM_SEND_MESSAGES = 1ull << 11,
    OB_DISCORD_PERM_READ_MESSAGE_HISTORY = 1ull << 16,
    OB_DISCORD_PERM_CREATE_PUBLIC_THREADS = 1ull << 35,
    OB_DISCORD_PERM_SEND_MESSAGES_IN_THREADS = 1ull << 38,
};

/* The minimal permission bits opsbot needs in a guild (named above). */
uint64_t ob_discord_permissions(void);
/* The OAuth2 invite URL (scopes bot + applications.commands) for an
 * application id (digits). Returns 0, OB_EINVAL or OB_E2BIG. */
int ob_discord_invite_url(const char *application_id, char *buf, size_t len);

/* ---- gateway payloads -------------------------------------------------------- */

enum ob_discord_opcode {
    OB_DISCORD_OP_DISPATCH = 0,
    OB_DISCORD_OP_HEARTBEAT = 1,
    OB_DISCORD_OP_IDENTIFY = 2,
    OB_DISCORD_OP_RESUME = 6,
    OB_DISCORD_OP_RECONNECT = 7,
    OB_DISCORD_OP_INVALID_SESSION = 9,
    OB_DISCORD_OP_HELLO = 10,
    OB_DISCORD_OP_HEARTBEAT_ACK = 11,
};

#define OB_DISCORD_ID_MAX 32 /* snowflakes: up to 20 digits */

struct ob_discord_payload {
    int op;
    int64_t s;      /* sequence of a dispatch, -1 when null */
    char t[64];     /* dispatch event name, "" when null */
    const cJSON *d; /* points into root; NULL when absent */
    /* Decoded for convenience: */
    int64_t heartbeat_interval; /* Hello, ms (0 otherwise) */
    bool resumable;             /* Invalid Session: d == true */
    cJSON *root;                /* owned */
};

/* Parses one gateway text frame. Returns 0, or OB_EJSON / OB_EPARSE /
 * OB_E2BIG with a one-line reason in err (never containing the frame).
 * Release with ob_discord_payload_release() in every case. */
int ob_discord_parse_payload(const char *json, size_t len, struct ob_discord_payload *out,
                             char *err, size_t errlen);
void ob_discord_payload_release(struct ob_discord_payload *p);

/* ---- dispatch -> normalised event --------------------------------------------- */

struct ob_discord_self {
    const char *user_id;         /* the bot user (READY), NULL before */
    bool listen_all;             /* listen: all */
    const char *const *channels; /* allow-list of channel ids, NULL = any */
    size_t nchannels;
    /* Parent channel of a known thread channel, or NULL (optional). */
    const char *(*thread_parent)(void *data, const char *channel_id);
    void *data;
};

enum ob_discord_source {
    OB_DISCORD_SRC_MESSAGE,   /* MESSAGE_CREATE */
    OB_DISCORD_SRC_REACTION,  /* MESSAGE_REACTION_ADD / _REMOVE */
    OB_DISCORD_SRC_COMPONENT, /* INTERACTION_CREATE, a button press */
    OB_DISCORD_SRC_COMMAND,   /* INTERACTION_CREATE, the /ops slash command */
    OB_DISCORD_SRC_PING,      /* interaction type 1 (HTTP endpoint only) */
};

/* One inbound event, strings owned by the struct (fixed buffers). */
struct ob_discord_event {
    enum ob_event_kind kind;
    enum ob_discord_source source;
    char id[OB_DISCORD_ID_MAX * 3 + 140];
    char user[OB_DISCORD_ID_MAX];
    char user_name[128];
    char guild[OB_DISCORD_ID_MAX];
    char channel[OB_DISCORD_ID_MAX]; /* messages in a known thread: its parent */
    char thread[OB_DISCORD_ID_MAX];  /* the thread channel, "" = none */
    char message[OB_DISCORD_ID_MAX];
    char emoji[128];
    char *text; /* malloc'd, mentions of the bot stripped; NULL when none */
    size_t text_len;
    bool addressed;
    bool dm;
    /* interactions */
    char interaction_id[OB_DISCORD_ID_MAX];
    char interaction_token[512]; /* a credential for 15 minutes: never log */
    char application_id[OB_DISCORD_ID_MAX];
    char ignored[96]; /* why nothing came out (when the result is 0) */
};

/* Turns a dispatch (t = "MESSAGE_CREATE", "MESSAGE_REACTION_ADD",
 * "MESSAGE_REACTION_REMOVE", "INTERACTION_CREATE") into an event. Returns 1
 * (an event in out), 0 (ignored: out->ignored says why) or a negative error
 * for malformed payloads. Call ob_discord_event_release() afterwards in
 * every case. Messages that are not addressed are still returned (with
 * addressed false): listen: mentions is the caller's business. */
int ob_discord_dispatch_event(const struct ob_discord_self *self, const char *t, const cJSON *d,
                              struct ob_discord_event *out);
void ob_discord_event_release(struct ob_discord_event *ev);
/* Fills ev (borrowing its strings) from e for the core. */
void ob_discord_event_view(const struct ob_discord_event *e, struct ob_event *ev);

/* ---- REST rate limits ------------------------------------------------------------- */

/* The route of a request: path (relative to the API base, query ignored)
 * with its major parameter taken out, e.g.
 *   PATCH /channels/1/messages/2 -> "PATCH /channels/{channel_id}/messages/:id", major "1".
 * Major parameters: channel_id, guild_id, webhook_id + webhook token (as a
 * short hash), interaction id; routes without one get major "-". Reaction
 * paths collapse to ".../reactions/:reaction". Returns 0, OB_EINVAL or
 * OB_E2BIG. */
int ob_discord_route(const char *method, const char *path, char *route, size_t rlen, char *major,
                     size_t mlen);
/* THE bucket key of a request: "<hash>:<major>" once Discord named the
 * route's bucket (X-RateLimit-Bucket, pass it as hash), else
 * "<route>:<major>". Returns 0, OB_EINVAL or OB_E2BIG. */
int ob_discord_bucket_key(const char *method, const char *path, const char *hash, char *out,
                          size_t len);

/* ---- interactions over HTTP ------------------------------------------------------ */

/* Checks X-Signature-Ed25519 (hex) over timestamp + body with the
 * application's public key (32 bytes). Returns 0, OB_EPARSE (headers
 * missing or malformed) or OB_EDENIED (wrong signature). */
int ob_discord_verify_signature(const unsigned char public_key[32], const char *signature_hex,
                                const char *timestamp, const char *body, size_t body_len);

/* ---- commands ---------------------------------------------------------------------- */

/* Registers the /ops slash command (PUT /applications/{id}/commands) with
 * the section's token, application_id and api_base. Runs loop until the
 * call is done (UV_RUN_ONCE: the loop may hold other handles); afterwards
 * the caller runs the loop to let the HTTP client's handles close. A one-
 * line outcome goes into msg. Returns 0 or a negative error. */
int ob_discord_register_commands(uv_loop_t *loop, const struct ob_config *cfg, const cJSON *section,
                                 char *msg, size_t msglen);

#endif
