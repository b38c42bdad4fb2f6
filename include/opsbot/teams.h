/* The Microsoft Teams adapter: the Bot Framework messaging endpoint in
 * (HTTP, JWT-verified), the Connector API out.
 *
 * Registered in src/platforms.c as ob_teams_platform; configured under
 * `platforms: teams:` (see docs/TEAMS.md). The parsing and verification
 * entry points below are pure functions (no loop, no network, no logging)
 * so that unit tests and fuzz targets can call them directly.
 */
#ifndef OPSBOT_TEAMS_H
#define OPSBOT_TEAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "opsbot/config.h"
#include "opsbot/event.h"
#include "opsbot/platform.h"

extern const struct ob_platform ob_teams_platform;

/* Validates `platforms.teams` (ids, URLs, sizes); never prints the secret.
 * Returns 0 or OB_ECONFIG. */
int ob_teams_check(const struct ob_config *cfg, const cJSON *section, struct ob_diag *d);
/* Creates the adapter from a checked section. */
int ob_teams_new(struct ob_adapter **out, const struct ob_platform_env *env, const cJSON *section);

/* ---- base64url and JWT ----------------------------------------------------- */

/* Decodes unpadded base64url (RFC 4648 §5; trailing '=' tolerated) into out.
 * Returns 0 and *outlen, OB_EPARSE (bad character or length) or OB_E2BIG
 * (out too small). */
int ob_teams_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                           size_t *outlen);

#define OB_TEAMS_TOKEN_MAX 16384 /* bytes of a bearer token we look at */
#define OB_TEAMS_KID_MAX 128

/* A JWT split and decoded (nothing verified yet). */
struct ob_teams_jwt {
    char alg[16];
    char kid[OB_TEAMS_KID_MAX];
    cJSON *header; /* owned */
    cJSON *claims; /* owned */
    unsigned char sig[1024];
    size_t sig_len;
    size_t signed_len; /* bytes of "header.payload" at the token's start */
};

/* Parses "header.payload.signature". Returns 0, or OB_EPARSE / OB_EJSON /
 * OB_E2BIG with a one-line reason in err (never containing the token).
 * Call ob_teams_jwt_release() in every case. */
int ob_teams_jwt_parse(const char *token, size_t len, struct ob_teams_jwt *out, char *err,
                       size_t errlen);
void ob_teams_jwt_release(struct ob_teams_jwt *t);

/* What the claims must say. */
struct ob_teams_expect {
    const char *issuer;      /* exact iss */
    const char *audience;    /* the app id: aud (string, or array containing it) */
    const char *service_url; /* the activity's serviceUrl; NULL = not checked */
    int64_t skew_s;          /* allowed clock skew (300) */
};

/* Checks alg (RS256/RS384/RS512), iss, aud, exp/nbf (with skew), and the
 * serviceurl claim. Returns 0 or OB_EDENIED with the failed check in why
 * ("wrong issuer", "token expired", ...). */
int ob_teams_jwt_check_claims(const struct ob_teams_jwt *t, const struct ob_teams_expect *x,
                              int64_t now_s, char *why, size_t whylen);

/* ---- signing keys (OpenID metadata -> JWKS) --------------------------------- */

#define OB_TEAMS_MAX_KEYS 32
#define OB_TEAMS_MAX_ENDORSE 16

struct ob_teams_key {
    char kid[OB_TEAMS_KID_MAX];
    void *pkey; /* EVP_PKEY * (RSA public key), owned */
    char endorsements[OB_TEAMS_MAX_ENDORSE][32];
    size_t nendorse;
    bool has_endorsements; /* the member was present (even if empty) */
};

struct ob_teams_keys {
    struct ob_teams_key keys[OB_TEAMS_MAX_KEYS];
    size_t n;
    int64_t fetched_ms; /* last successful fetch, 0 = never */
    int64_t attempt_ms; /* last fetch started, 0 = never */
};

/* Refresh policy (botbuilder's): keys are used for 24 h; an unknown kid
 * refetches at most once an hour; with no keys at all a failed fetch is
 * retried after 10 s. */
#define OB_TEAMS_KEYS_TTL_MS (24LL * 3600 * 1000)
#define OB_TEAMS_KID_REFETCH_MS (3600LL * 1000)
#define OB_TEAMS_EMPTY_RETRY_MS (10LL * 1000)

enum ob_teams_keys_step {
    OB_TEAMS_KEYS_USE,         /* the key is known and fresh enough: verify now */
    OB_TEAMS_KEYS_FETCH,       /* fetch the keys first, then decide again */
    OB_TEAMS_KEYS_UNKNOWN_KID, /* unknown kid, refetch not allowed yet: reject */
    OB_TEAMS_KEYS_UNAVAILABLE, /* no keys and a recent fetch failed: 503 */
};

/* What to do for a token signed with kid at now_ms. */
enum ob_teams_keys_step ob_teams_keys_decide(const struct ob_teams_keys *k, const char *kid,
                                             int64_t now_ms);
const struct ob_teams_key *ob_teams_keys_find(const struct ob_teams_keys *k, const char *kid);
/* The metadata's jwks_uri into out (http or https only). Returns 0 or
 * OB_EPARSE / OB_EJSON / OB_E2BIG. */
int ob_teams_openid_jwks_uri(const char *json, size_t len, char *out, size_t outlen);
/* Parses a JWKS document into out (replacing its keys; fetched_ms and
 * attempt_ms are left to the caller). RSA signing keys with n/e only;
 * others are skipped. Returns the number of usable keys (>= 1) or
 * OB_EPARSE / OB_EJSON. */
int ob_teams_jwks_parse(const char *json, size_t len, struct ob_teams_keys *out);
void ob_teams_keys_release(struct ob_teams_keys *k);

/* Verifies the signature of t (as parsed from token) with key. Returns 0
 * or OB_EDENIED. */
int ob_teams_jwt_verify_sig(const struct ob_teams_jwt *t, const char *token,
                            const struct ob_teams_key *key);
/* Whether key may sign activities of channel_id (its endorsements, when
 * present, must contain it). */
bool ob_teams_key_endorses(const struct ob_teams_key *key, const char *channel_id);

/* ---- activities -> events ------------------------------------------------------ */

#define OB_TEAMS_ID_MAX 256

enum ob_teams_kind {
    OB_TEAMS_IGNORED,
    OB_TEAMS_MESSAGE,  /* a message (or an Action.Submit button press: ev.kind) */
    OB_TEAMS_REACTION, /* messageReaction: reactions[] */
    OB_TEAMS_INVOKE,   /* invoke adaptiveCard/action on our card */
    OB_TEAMS_INVOKE_OTHER,
    OB_TEAMS_INSTALLED, /* conversationUpdate: the bot was added */
};

struct ob_teams_reaction {
    char emoji[64]; /* "like" is given as "+1" */
    bool added;
};

/* One activity, strings owned by the struct. */
struct ob_teams_activity {
    enum ob_teams_kind kind;
    enum ob_event_kind ev_kind; /* for MESSAGE / INVOKE: OB_EV_MESSAGE or OB_EV_BUTTON */
    char id[OB_TEAMS_ID_MAX];   /* activity id */
    char channel_id[32];        /* "msteams" */
    char service_url[512];
    char conversation[OB_TEAMS_ID_MAX]; /* without ";messageid=" */
    char root[64];                      /* the ";messageid=" part, "" if none */
    char conv_type[16];                 /* personal | groupChat | channel | "" */
    char tenant[64];
    char user[OB_TEAMS_ID_MAX];    /* aadObjectId, else from.id */
    char from_id[OB_TEAMS_ID_MAX]; /* "29:…" */
    char user_name[128];
    char reply_to[64];
    char verb[16]; /* button: "approve" | "deny" | "pick:N" */
    char card_ref[40];
    char *text; /* malloc'd, the bot's mention stripped, entities decoded */
    size_t text_len;
    bool addressed;
    struct ob_teams_reaction reactions[8];
    size_t nreactions;
    char ignored[96]; /* why nothing came out */
};

/* Who the bot is: recipient.id of activities is "28:" + app_id. */
struct ob_teams_self {
    const char *app_id;
};

/* Parses an activity. Returns 1 (something to do), 0 (ignored: why in
 * out->ignored) or a negative error for malformed activities. Call
 * ob_teams_activity_release() in every case. */
int ob_teams_activity_parse(const struct ob_teams_self *self, const cJSON *act,
                            struct ob_teams_activity *out);
void ob_teams_activity_release(struct ob_teams_activity *a);

/* ---- cards ------------------------------------------------------------------- */

/* The Adaptive Card (1.5) for an approval request (flags OB_POST_APPROVAL:
 * Approve / Deny as Action.Execute with an Action.Submit fallback, data
 * {"opsbot":"approval","verb":…,"ref":ref}), for numbered choices
 * (OB_POST_CHOICES: buttons "1".."N", verb "pick:N", data
 * {"opsbot":"pick",…}) or, with OB_POST_RESOLVED, the text without
 * buttons. */
cJSON *ob_teams_card(const char *text, unsigned flags, const char *ref);

/* ---- Entra token errors ------------------------------------------------------- */

/* From a token endpoint error body: the AADSTS code ("AADSTS7000215") into
 * code (or "" if none) and one line for the log into line (what it means
 * and what to check). Returns true when retrying cannot help (fatal). */
bool ob_teams_token_error(long status, const char *body, size_t len, char *code, size_t codelen,
                          char *line, size_t linelen);

/* ---- packaging --------------------------------------------------------------- */

/* Writes the Teams app package (a ZIP: manifest.json, color.png,
 * outline.png) to out_path: the manifest template from assets_dir with
 * {{APP_ID}} and {{VERSION}} substituted, the icons checked (192x192 and
 * 32x32 PNGs). Returns 0, or a negative error with one line in err. */
int ob_teams_package(const char *app_id, const char *version, const char *assets_dir,
                     const char *out_path, char *err, size_t errlen);

#endif
