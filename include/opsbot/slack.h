/* The Slack adapter: Socket Mode (or HTTP Events mode) in, Web API out.
 *
 * Registered in src/platforms.c as ob_slack_platform; configured under
 * `platforms: slack:` (see docs/SLACK.md). The parsing entry points below
 * are pure functions (no loop, no network) so that unit tests and fuzz
 * targets can call them directly.
 */
#ifndef OPSBOT_SLACK_H
#define OPSBOT_SLACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "opsbot/config.h"
#include "opsbot/event.h"
#include "opsbot/platform.h"

extern const struct ob_platform ob_slack_platform;

/* Validates `platforms.slack` (tokens, URLs, durations); never prints a
 * token value. Returns 0 or OB_ECONFIG. */
int ob_slack_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d);
/* Creates the adapter from a checked section. */
int ob_slack_new(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section);

/* ---- Socket Mode frames -------------------------------------------------- */

enum ob_slack_frame {
    OB_SLACK_HELLO,
    OB_SLACK_DISCONNECT,
    OB_SLACK_EVENTS_API,
    OB_SLACK_INTERACTIVE,
    OB_SLACK_SLASH_COMMANDS,
    OB_SLACK_OTHER, /* well-formed but of a type opsbot does not use */
};

#define OB_SLACK_ID_MAX 128

struct ob_slack_envelope {
    enum ob_slack_frame type;
    char envelope_id[OB_SLACK_ID_MAX]; /* "" for hello / disconnect */
    char reason[64];                   /* disconnect: warning | refresh_requested | link_disabled */
    int retry_attempt;
    int num_connections;                 /* hello */
    int64_t approximate_connection_time; /* hello, seconds (0 when absent) */
    const cJSON *payload;                /* points into root; NULL for hello / disconnect */
    cJSON *root;                         /* owned */
};

/* Parses one Socket Mode text frame. Returns 0, or OB_EJSON / OB_EPARSE /
 * OB_E2BIG with a one-line reason in err (never containing the frame). An
 * envelope whose envelope_id is unusable is an error: it cannot be acked.
 * Release with ob_slack_envelope_release() in every case. */
int ob_slack_parse_envelope(const char *json, size_t len, struct ob_slack_envelope *out, char *err,
                            size_t errlen);
void ob_slack_envelope_release(struct ob_slack_envelope *e);

/* ---- payload -> normalised event ----------------------------------------- */

/* Who the bot is (auth.test) and what it listens to. */
struct ob_slack_self {
    const char *user_id;         /* "U…" of the bot user */
    const char *bot_id;          /* "B…" */
    bool listen_all;             /* listen: all */
    const char *const *channels; /* allow-list of channel ids, NULL = any */
    size_t nchannels;
};

/* One inbound event, strings owned by the struct (fixed buffers). */
struct ob_slack_event {
    enum ob_event_kind kind;
    char id[OB_SLACK_ID_MAX + 48];
    char user[64];
    char channel[64];
    char thread[48];  /* "" = none */
    char message[48]; /* "" = none */
    char emoji[128];
    char *text; /* malloc'd, mentions of the bot stripped; NULL when none */
    size_t text_len;
    bool addressed;
    bool dm;
    bool thread_reply; /* a reply inside a thread (not the root) */
    char ignored[96];  /* why nothing came out (when the result is 0) */
};

/* Turns an Events API / interactivity / slash-command payload into an
 * event. Returns 1 (an event in out), 0 (ignored: out->ignored says why) or
 * a negative error for malformed payloads. Call ob_slack_event_release()
 * afterwards in every case. */
int ob_slack_payload_event(const struct ob_slack_self *self, enum ob_slack_frame type,
                           const cJSON *payload, struct ob_slack_event *out);
void ob_slack_event_release(struct ob_slack_event *ev);
/* Fills ev (borrowing its strings) from e for the core. */
void ob_slack_event_view(const struct ob_slack_event *e, struct ob_event *ev);

/* ---- HTTP Events mode ---------------------------------------------------- */

/* Checks X-Slack-Signature ("v0=<hex>") over "v0:" + timestamp + ":" + body
 * with the signing secret, in constant time, and the 5-minute window around
 * now_s. Returns 0, OB_EPARSE (headers missing or malformed), OB_ETIMEOUT
 * (stale or future timestamp) or OB_EDENIED (wrong signature). */
int ob_slack_verify_signature(const char *secret, size_t secret_len, const char *timestamp,
                              const char *signature, const char *body, size_t body_len,
                              int64_t now_s);

#endif
