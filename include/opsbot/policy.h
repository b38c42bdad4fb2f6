/* Policy: who may run what, where and when.
 *
 * Policy files (included under `policies:`) declare groups of
 * platform-qualified user ids ("console:dev", "slack:U024BE7LH"), ordered
 * rules, freeze windows and rate limits. The first matching rule wins; no
 * match is deny. Every decision names the rule and its file:line.
 */
#ifndef OPSBOT_POLICY_H
#define OPSBOT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opsbot/config.h"
#include "opsbot/intent.h"

struct ob_policy;

enum ob_effect { OB_EFFECT_DENY, OB_EFFECT_ALLOW, OB_EFFECT_APPROVE };

/* What is being asked for. */
struct ob_policy_request {
    const char *user;     /* platform-qualified: "console:dev" */
    const char *platform; /* "console", "slack", ... */
    const char *channel;  /* platform channel id, may be NULL */
    const char *action;
    const struct ob_kv *params;
    size_t nparams;
    bool is_read;   /* the action's risk is read */
    int64_t now_ms; /* wall clock, UTC, ms since the epoch */
};

struct ob_decision {
    enum ob_effect effect;
    char rule[64];    /* rule name, or "freeze:NAME", "rate-limit", "default-deny" */
    char where[256];  /* file:line of the rule, or "" for default deny */
    char reason[256]; /* one human line */
    /* approve only: */
    char approvers[64]; /* group name */
    int count;          /* approvals needed, >= 1 */
    bool allow_self;    /* requester may approve their own request */
    int64_t ttl_ms;     /* default 60 minutes */
};

/* How many times user ran (was allowed / asked approval for) action since
 * since_ms; supplied by the caller (the state store) so the policy itself
 * stays pure. Returns a count >= 0 or a negative error. */
typedef int (*ob_policy_count_cb)(void *data, const char *user, const char *action,
                                  int64_t since_ms);

int ob_policy_load(struct ob_policy **out, const struct ob_config *cfg,
                   const struct ob_catalog *cat, struct ob_diag *d);
/* From one cJSON mapping (a policy document: groups, rules, freeze,
 * rate_limits); for tests and fuzzing. May be called several times on one
 * policy to add documents in order; *out is created on first use. */
int ob_policy_add_json(struct ob_policy **out, const struct ob_config *cfg,
                       const struct ob_catalog *cat, const cJSON *doc, struct ob_diag *d);
void ob_policy_free(struct ob_policy *p);

/* Order of checks: freeze windows (change actions not exempted), then rules
 * in order (first match), then rate limit of the matched allow/approve
 * (count_cb may be NULL: no rate limits applied). */
void ob_policy_decide(const struct ob_policy *p, const struct ob_policy_request *req,
                      ob_policy_count_cb count_cb, void *count_data, struct ob_decision *out);

/* True when user belongs to group (a group may list other groups as
 * "group:NAME"). */
bool ob_policy_in_group(const struct ob_policy *p, const char *group, const char *user);
/* Members of a group, for "who may approve" lines ("console:oncall, ..."). */
const char *ob_policy_group_members(const struct ob_policy *p, const char *group, char *buf,
                                    size_t len);
/* The first group (in declaration order) user belongs to, or NULL: the
 * "team" label of the LLM metrics. */
const char *ob_policy_first_group(const struct ob_policy *p, const char *user);
/* Whether user may run action at all somewhere (some rule could allow or
 * approve it for this user and platform, ignoring params, freezes and
 * limits) — used to filter `help`. */
bool ob_policy_may_use(const struct ob_policy *p, const char *user, const char *platform,
                       const char *action);

/* Counts for check-config's summary. */
void ob_policy_stats(const struct ob_policy *p, size_t *groups, size_t *rules, size_t *freezes,
                     size_t *limits);

const char *ob_effect_name(enum ob_effect e);

#endif
