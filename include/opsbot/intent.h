/* The action catalog and the deterministic intent parser.
 *
 * The catalog is the allow-list: every action the bot can ever run, its
 * parameters with their validation, its risk, examples, rule patterns and the
 * executor binding. The parser turns text into proposals against it:
 *   1. the explicit grammar:  "!restart checkout env=prod"  (also "!restart
 *      service=checkout env=prod"; bare words fill required parameters in
 *      declaration order),
 *   2. the rule patterns: PCRE2 (JIT), named groups fill parameters.
 * A later LLM source plugs in behind the same struct ob_parse_result.
 */
#ifndef OPSBOT_INTENT_H
#define OPSBOT_INTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opsbot/config.h"

#define OB_MAX_PARAMS 16
#define OB_MAX_PROPOSALS 8

enum ob_param_type { OB_PARAM_STRING, OB_PARAM_INT, OB_PARAM_DURATION, OB_PARAM_ENUM };
enum ob_risk { OB_RISK_READ, OB_RISK_CHANGE };

struct ob_param_def {
    char *name;
    char *description;
    enum ob_param_type type;
    void *pattern; /* pcre2_code *, anchored full match; NULL = none */
    char *pattern_src;
    char **values; /* enum values */
    size_t nvalues;
    char **alias_from; /* enum aliases: alias_from[i] -> alias_to[i] */
    char **alias_to;
    size_t naliases;
    int64_t min, max; /* int: value range; duration: milliseconds */
    bool has_min, has_max;
    char *def; /* default value (already valid) or NULL */
    bool required;
};

struct ob_action {
    char *name;
    char *description;
    enum ob_risk risk;
    struct ob_param_def *params;
    size_t nparams;
    char **examples;
    size_t nexamples;
    void **rules; /* pcre2_code *, JIT-compiled, caseless */
    char **rule_src;
    size_t nrules;
    const cJSON *executor; /* the `executor:` mapping; borrowed from the config */
    char *where;           /* "file:line" of the action's definition */
};

struct ob_catalog {
    struct ob_action *actions;
    size_t n;
    uint32_t rule_pairs; /* capture pairs of the rule with most groups, + 1 */
};

/* Loads every action from the documents included under `actions:` and adds
 * the built-in `help` action. Every problem goes into d (file:line: key:
 * message): unknown keys, wrong types, bad patterns (with PCRE2's message
 * and offset), duplicate names, rule groups that name no parameter, defaults
 * that fail their own validation. Returns 0 or OB_ECONFIG. */
int ob_catalog_load(struct ob_catalog **out, const struct ob_config *cfg, struct ob_diag *d);
/* Loads from one cJSON array of action mappings (tests, fuzzing). */
int ob_catalog_load_json(struct ob_catalog **out, const struct ob_config *cfg, const cJSON *actions,
                         struct ob_diag *d);
void ob_catalog_free(struct ob_catalog *cat);
const struct ob_action *ob_catalog_find(const struct ob_catalog *cat, const char *name);
const struct ob_param_def *ob_action_param(const struct ob_action *a, const char *name);

/* Validates and normalises one value for parameter p: trims, applies enum
 * aliases (case-insensitive, "production" -> "prod"), checks pattern / enum /
 * integer range / duration syntax and range. On success writes the canonical
 * value into out (NUL-terminated) and returns 0; otherwise writes a short
 * human reason ("'checkout; rm -rf /' does not match ^[a-z][a-z0-9-]*$")
 * into why and returns OB_EINVAL. */
int ob_param_validate(const struct ob_param_def *p, const char *value, char *out, size_t outlen,
                      char *why, size_t whylen);

struct ob_kv {
    char name[64];
    char value[256];
};

struct ob_proposal {
    const struct ob_action *action; /* borrowed from the catalog */
    struct ob_kv params[OB_MAX_PARAMS];
    size_t nparams;
    double confidence;  /* 1.0 grammar, 0.9 rules */
    const char *source; /* "grammar" | "rules" | "llm" (static string) */
    /* When status is OB_PARSE_ASK: the first missing required parameter. */
    const struct ob_param_def *missing;
};

enum ob_parse_status {
    OB_PARSE_NONE,     /* nothing matched: no action, no noise */
    OB_PARSE_OK,       /* n proposals, each complete and valid */
    OB_PARSE_ASK,      /* one proposal with a missing required parameter */
    OB_PARSE_INVALID,  /* matched an action but a value failed validation: why */
    OB_PARSE_AMBIGUOUS /* several different actions matched: question */
};

struct ob_parse_result {
    enum ob_parse_status status;
    struct ob_proposal proposals[OB_MAX_PROPOSALS];
    size_t n;
    /* For ASK / INVALID / AMBIGUOUS: one line for the user. */
    char message[512];
};

/* Parses text. Several services named at once ("restart checkout and
 * payments in prod") give several proposals, one per service, which the
 * pipeline takes one at a time. Defaults are filled in. Never runs anything. */
void ob_intent_parse(const struct ob_catalog *cat, const char *text, struct ob_parse_result *out);

/* Fills parameter `p->name` of prop from answer text (the user's reply to
 * the question); re-checks for further missing parameters. Returns
 * OB_PARSE_OK, OB_PARSE_ASK (another one missing) or OB_PARSE_INVALID
 * (message says why). */
enum ob_parse_status ob_intent_answer(struct ob_proposal *prop, const char *answer, char *message,
                                      size_t len);

/* The question to ask for prop->missing, e.g. "Which env for restart
 * checkout? One of: prod, staging, dev". */
void ob_intent_question(const struct ob_proposal *prop, char *buf, size_t len);

/* Value of a parameter in a proposal, or NULL. */
const char *ob_proposal_get(const struct ob_proposal *prop, const char *name);
/* "restart service=checkout env=prod" into buf. */
const char *ob_proposal_format(const struct ob_proposal *prop, char *buf, size_t len);

#endif
