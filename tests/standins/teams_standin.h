/* A local Bot Framework for tests: three faces on one HTTP server
 *   - an Entra-like token endpoint (client credentials; AADSTS errors on
 *     demand; short token lifetimes; revocation),
 *   - OpenID metadata + JWKS serving test RSA keys generated at start with
 *     OpenSSL (endorsements ["msteams"]; a second key endorsed only for
 *     "webchat"; a key rotation on demand),
 *   - a Connector service at serviceUrl recording replies, sends and
 *     updates with Bot Framework's shapes, with 429 / 412 / 5xx modes,
 * and a client that POSTs activities to opsbot's messaging endpoint signed
 * as the Bot Framework would (RS256 JWT), or wrongly on demand.
 *
 * Everything runs on the caller's libuv loop.
 */
#ifndef OPSBOT_TEAMS_STANDIN_H
#define OPSBOT_TEAMS_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct teams_standin;

struct teams_standin_opts {
    const char *app_id;     /* default TEAMS_STANDIN_APP_ID */
    const char *app_secret; /* the accepted secret, default TEAMS_STANDIN_SECRET */
    int64_t expires_in;     /* token lifetime in seconds, 0 = 3599 */
};

#define TEAMS_STANDIN_APP_ID "00000000-0000-4000-8000-0000000000b0"
#define TEAMS_STANDIN_SECRET "standin~secret.value"
#define TEAMS_STANDIN_TENANT "tenant-standin"

/* How the client signs an activity. */
enum teams_sign {
    TEAMS_SIGN_OK,
    TEAMS_SIGN_BAD_SIGNATURE,
    TEAMS_SIGN_WRONG_AUDIENCE,
    TEAMS_SIGN_EXPIRED,
    TEAMS_SIGN_WRONG_ISSUER,
    TEAMS_SIGN_NO_ENDORSEMENT, /* the key endorsed for "webchat" only */
    TEAMS_SIGN_WRONG_SERVICEURL,
    TEAMS_SIGN_UNKNOWN_KID, /* a key that is not in the JWKS */
    TEAMS_SIGN_NO_HEADER,
    TEAMS_SIGN_BASIC,
    TEAMS_SIGN_HS256,
    TEAMS_SIGN_NOT_YET_VALID,
    TEAMS_SIGN_COUNT,
};
const char *teams_sign_name(enum teams_sign m);

/* One Connector request opsbot made (strings "" when absent). */
struct teams_call {
    char method[8];         /* POST | PUT */
    char conversation[400]; /* the conversation id in the URL */
    char target[128];       /* POST: the activity replied to ("" = send); PUT: the one updated */
    char id[64];            /* POST: the id given out */
    char reply_to[128];     /* replyToId of the body */
    char *text;             /* text (<br> -> newline, entities decoded) or the card's TextBlocks */
    bool has_card;
    bool has_buttons;  /* Action.Execute approve + deny with an Action.Submit fallback */
    char card_ref[40]; /* the ref in the buttons' data */
    char mention_id[128];
    char mention_text[128];
    char token[64]; /* the bearer token used */
    int status;     /* HTTP status answered */
    int64_t at_ms;
};

int teams_standin_new(struct teams_standin **out, uv_loop_t *loop,
                      const struct teams_standin_opts *opts);
/* Closes everything; run the loop afterwards until it is empty. */
void teams_standin_free(struct teams_standin *s);
/* "http://127.0.0.1:P/amer/" */
const char *teams_standin_service_url(const struct teams_standin *s);
/* "http://127.0.0.1:P/{tenant}/oauth2/v2.0/token" (the {tenant} is left to opsbot) */
const char *teams_standin_token_url(const struct teams_standin *s);
const char *teams_standin_openid_url(const struct teams_standin *s);

/* Runs the loop until cond(s, arg) is true or timeout_ms passed (no sleeps);
 * cond NULL = just run for timeout_ms. */
bool teams_standin_wait(struct teams_standin *s, bool (*cond)(struct teams_standin *, void *),
                        void *arg, int64_t timeout_ms);

/* ---- the record ---- */

size_t teams_standin_ncalls(const struct teams_standin *s);
const struct teams_call *teams_standin_call(const struct teams_standin *s, size_t i);
/* Index of the first successful POST at or after from whose text contains
 * needle, or -1; the waiting variant gives up after timeout_ms. */
long teams_standin_find_post(const struct teams_standin *s, const char *needle, size_t from);
long teams_standin_wait_post(struct teams_standin *s, const char *needle, int64_t timeout_ms);
/* How many such posts there are; waiting until at least n exist (whether
 * they did within timeout_ms). */
size_t teams_standin_count_posts(const struct teams_standin *s, const char *needle);
bool teams_standin_wait_posts(struct teams_standin *s, const char *needle, size_t n,
                              int64_t timeout_ms);
/* Successful PUTs of activity id. */
size_t teams_standin_updates(const struct teams_standin *s, const char *id, long *last);
size_t teams_standin_token_requests(const struct teams_standin *s);
size_t teams_standin_tokens_issued(const struct teams_standin *s);
size_t teams_standin_openid_requests(const struct teams_standin *s);
size_t teams_standin_jwks_requests(const struct teams_standin *s);
/* Connector requests refused for an unknown or expired bearer token. */
size_t teams_standin_bad_bearers(const struct teams_standin *s);
/* The tenant path segment of the last token request ("botframework.com"). */
const char *teams_standin_token_tenant(const struct teams_standin *s);

/* ---- faults ---- */

/* The next n Connector requests get status (429: Retry-After when
 * retry_after_s >= 0). */
void teams_standin_fail(struct teams_standin *s, int status, int n, int retry_after_s);
/* The next n token requests fail with an Entra error (e.g. 401,
 * "invalid_client", 7000215). */
void teams_standin_token_fail(struct teams_standin *s, int status, const char *error, long aadsts,
                              int n);
/* Every token issued so far stops being accepted by the Connector. */
void teams_standin_revoke_tokens(struct teams_standin *s);
/* A new signing key appears in the JWKS and signs from now on. */
void teams_standin_rotate(struct teams_standin *s);

/* ---- the client side (Bot Framework -> opsbot) ---- */

struct teams_answer {
    long status;
    char body[4096];
};

/* POSTs json to url signed per mode; waits for the answer (<= 5 s).
 * Returns the HTTP status (0 when none arrived). */
long teams_standin_post(struct teams_standin *s, const char *url, const char *json,
                        enum teams_sign mode, struct teams_answer *ans);

/* Activity builders: a malloc'd JSON string. user is the stand-in's short
 * name ("dev" -> aadObjectId "aad-dev", from.id "29:dev", name "Dev").
 * conv is the full conversation id (with ";messageid=" in channel threads);
 * conv_type "channel" | "personal" | "groupChat". id is the activity id. */
char *teams_standin_message(struct teams_standin *s, const char *id, const char *conv,
                            const char *conv_type, const char *user, const char *text,
                            bool mention_bot);
char *teams_standin_invoke(struct teams_standin *s, const char *id, const char *conv,
                           const char *user, const char *reply_to, const char *verb,
                           const char *card_ref);
/* The Action.Submit fallback: a message with value = the button's data. */
char *teams_standin_submit(struct teams_standin *s, const char *id, const char *conv,
                           const char *user, const char *reply_to, const char *verb,
                           const char *card_ref);
char *teams_standin_reaction(struct teams_standin *s, const char *id, const char *conv,
                             const char *user, const char *reply_to, const char *type, bool added);
char *teams_standin_install(struct teams_standin *s, const char *id, const char *conv,
                            const char *conv_type);
/* A fresh activity id ("1700000000123"). */
void teams_standin_new_id(struct teams_standin *s, char *out, size_t len);

/* Signs an arbitrary JWT with the stand-in's main key (for unit tests of
 * the verifier): header {"alg":"RS256","kid":kid}, the claims as given. */
char *teams_standin_sign_jwt(struct teams_standin *s, const char *kid, const char *claims_json);
/* The JWKS document served now (malloc'd). */
char *teams_standin_jwks(struct teams_standin *s);

#endif
