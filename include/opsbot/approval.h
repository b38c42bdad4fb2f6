/* Approvals: a request the policy sent for approval waits here for votes
 * (reactions or buttons) from eligible approvers on *its* message. N of M
 * approvals grant it; one eligible refusal ends it; the deadline expires
 * it ("expired — not run"). Every transition goes through one function that
 * logs old -> new state. Pending approvals are serialised to the state store
 * (ob_approval_to_json / _from_json) and survive a restart.
 */
#ifndef OPSBOT_APPROVAL_H
#define OPSBOT_APPROVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opsbot/event.h"
#include "opsbot/intent.h"

#define OB_APPROVAL_MAX_VOTES 16
#define OB_APPROVAL_MAX_MSGS 2

enum ob_approval_state {
    OB_APPROVAL_PENDING,
    OB_APPROVAL_GRANTED,
    OB_APPROVAL_REFUSED,
    OB_APPROVAL_EXPIRED,
};

struct ob_approval {
    char id[32];
    char request_id[32];
    char requester[160]; /* platform-qualified */
    char platform[32];
    struct ob_msgref origin; /* channel and thread of the request */
    /* The approval request message(s): the original and, after a restart on
     * a platform whose message ids do not survive, the re-announcement. */
    struct ob_msgref msgs[OB_APPROVAL_MAX_MSGS];
    size_t nmsgs;
    char action[64];
    struct ob_kv params[OB_MAX_PARAMS];
    size_t nparams;
    char group[64];
    int needed;
    bool allow_self;
    char rule[64];
    int64_t created_ms;
    int64_t deadline_ms;
    char votes[OB_APPROVAL_MAX_VOTES][160]; /* who approved */
    size_t nvotes;
    char decided_by[160]; /* who refused, or the vote that granted */
    enum ob_approval_state state;
};

enum ob_vote {
    OB_VOTE_NONE,     /* not an approve/refuse emoji: ignore quietly */
    OB_VOTE_COUNTED,  /* approval counted, more needed */
    OB_VOTE_GRANTED,  /* enough approvals: run */
    OB_VOTE_REFUSED,  /* an eligible approver refused: do not run */
    OB_VOTE_REJECTED, /* the voter may not vote (why says so) */
    OB_VOTE_WITHDRAWN /* an approval was taken back (reaction removed) */
};

/* +1 for approve (white_check_mark, heavy_check_mark, +1, thumbsup,
 * approve), -1 for refuse (x, -1, thumbsdown, no_entry, no_entry_sign,
 * deny), 0 otherwise. Also accepts the Unicode emoji themselves. */
int ob_approval_emoji(const char *emoji);

/* Applies one vote. `eligible` says whether user is in the approver group.
 * Rejects: not pending ("already approved"), ineligible ("not in oncall"),
 * the requester unless allow_self, a second approval by the same person,
 * a vote after the deadline. */
enum ob_vote ob_approval_vote(struct ob_approval *ap, const char *user, bool eligible,
                              const char *emoji, int64_t now_ms, char *why, size_t whylen);
/* A removed approve reaction takes that approval back while still pending. */
enum ob_vote ob_approval_unvote(struct ob_approval *ap, const char *user, const char *emoji);
/* Expires a pending approval whose deadline passed; true when it did. */
bool ob_approval_expire(struct ob_approval *ap, int64_t now_ms);
bool ob_approval_has_msg(const struct ob_approval *ap, const char *channel, const char *message);
const char *ob_approval_state_name(enum ob_approval_state s);

/* Serialisation for the state store; from_json validates every field. */
char *ob_approval_to_json(const struct ob_approval *ap);
int ob_approval_from_json(struct ob_approval *ap, const char *json);

#endif
