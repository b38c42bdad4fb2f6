/* The deterministic intent parser: the `!command` grammar and the catalog's
 * rule patterns. It only ever proposes; nothing here runs anything, and
 * values are validated against the catalog before they leave this file.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "opsbot/err.h"
#include "opsbot/intent.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define MAX_TEXT 4000
#define MAX_ANSWER 1000
#define MAX_TOKENS 32
#define VALUE_LEN 256 /* sizeof(struct ob_kv.value) */
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000

/* A rule-captured string value that is only a placeholder for "some
 * service": the parameter counts as missing and the bot asks. */
static const char *const vague_words[] = {
    "the",         "a",           "an",         "it",        "its",      "this",   "that",
    "these",       "those",       "them",       "thing",     "things",   "stuff",  "service",
    "services",    "svc",         "app",        "apps",      "pod",      "pods",   "deployment",
    "deployments", "everything",  "all",        "something", "anything", "my",     "our",
    "your",        "their",       "me",         "us",        "please",   "now",    "here",
    "there",       "prod",        "production", "prd",       "staging",  "stage",  "stg",
    "dev",         "development", "logs",       "log",       "in",       "on",     "to",
    "for",         "of",          "again",      "then",      "and",      "or",     "one",
    "some",        "which",       "what",       "whatever",  "cluster",  "server", "servers",
    NULL,
};

/* A rule-captured value that shows the message is not a request at all
 * ("restart my laptop", "the rollback meeting"): the rule match is dropped. */
static const char *const non_target_words[] = {
    "laptop",  "computer", "machine",  "pc",         "mac",          "vpn",          "browser",
    "phone",   "meeting",  "meetings", "call",       "calls",        "standup",      "team",
    "teams",   "pr",       "prs",      "commit",     "commits",      "branch",       "change",
    "changes", "plan",     "plans",    "discussion", "conversation", "game",         "lunch",
    "coffee",  "music",    "week",     "weekend",    "day",          "conversation", "idea",
    "ideas",   "talk",     "slides",   "doc",        "docs",         NULL,
};

struct cand {
    const struct ob_action *a;
    char val[OB_MAX_PARAMS][VALUE_LEN];
    bool set[OB_MAX_PARAMS];
    bool toolong[OB_MAX_PARAMS];
    size_t score;
};

struct token {
    char key[64];
    char val[VALUE_LEN];
    bool has_key;
};

static void __attribute__((format(printf, 3, 4)))
result(struct ob_parse_result *out, enum ob_parse_status st, const char *fmt, ...)
{
    va_list ap;

    out->status = st;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

static bool in_list(const char *const *list, const char *w)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcasecmp(list[i], w))
            return true;
    return false;
}

static int param_index(const struct ob_action *a, const char *name)
{
    for (size_t i = 0; i < a->nparams; i++)
        if (!strcasecmp(a->params[i].name, name))
            return (int)i;
    return -1;
}

/* At most 60 bytes of a value for a message, cut on a UTF-8 boundary. */
static const char *shown(const char *v, char *buf, size_t len)
{
    size_t n = strlen(v), cut = 60;

    if (n <= cut || len < cut + 4)
        return ob_strlcpy(buf, v, len) < len ? buf : v;
    while (cut && ((unsigned char)v[cut] & 0xc0) == 0x80)
        cut--;
    memcpy(buf, v, cut);
    memcpy(buf + cut, "\xe2\x80\xa6", 4); /* … */
    return buf;
}

static void trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, n - i + 1);
}

/* Splits "checkout, payments and cart" into pieces. Returns the number of
 * pieces (1 when there is no separator), 0 when a piece is empty, or
 * OB_MAX_PROPOSALS + 1 when there are too many. */
static size_t split_values(const char *raw, char pieces[][VALUE_LEN], size_t max)
{
    char buf[VALUE_LEN];
    size_t n = 0, j = 0;

    for (size_t i = 0; raw[i] && j + 1 < sizeof(buf);) {
        if (raw[i] == ',') {
            buf[j++] = '\x1f';
            i++;
        } else if ((raw[i] == ' ') && !strncasecmp(raw + i, " and ", 5)) {
            buf[j++] = '\x1f';
            i += 5;
        } else if (raw[i] == ' ' && !strncmp(raw + i, " & ", 3)) {
            buf[j++] = '\x1f';
            i += 3;
        } else {
            buf[j++] = raw[i++];
        }
    }
    buf[j] = '\0';
    for (char *s = buf, *next; s; s = next) {
        next = strchr(s, '\x1f');
        if (next)
            *next++ = '\0';
        trim(s);
        if (!strncasecmp(s, "and ", 4)) /* "a, b, and c" */
            memmove(s, s + 4, strlen(s + 4) + 1);
        trim(s);
        if (!*s)
            return 0;
        bool dup = false;

        for (size_t k = 0; k < n && k < max; k++)
            dup = dup || !strcasecmp(pieces[k], s);
        if (dup)
            continue;
        if (n < max)
            ob_strlcpy(pieces[n], s, VALUE_LEN);
        n++;
    }
    return n > max ? max + 1 : n;
}

/* ob_param_validate, retried in lower case for string parameters so that
 * "Checkout" from a chat message still names the service checkout. */
static int validate(const struct ob_param_def *p, const char *raw, char *canon, char *why,
                    size_t whylen)
{
    char low[VALUE_LEN];
    size_t i;
    int rc = ob_param_validate(p, raw, canon, VALUE_LEN, why, whylen);

    if (rc == 0 || p->type != OB_PARAM_STRING)
        return rc;
    for (i = 0; raw[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)raw[i]);
    low[i] = '\0';
    if (!strcmp(low, raw))
        return rc;
    char why2[8];

    if (ob_param_validate(p, low, canon, VALUE_LEN, why2, sizeof(why2)) == 0)
        return 0;
    return rc;
}

/* ---- proposals ------------------------------------------------------------ */

static void prop_set(struct ob_proposal *prop, const struct ob_param_def *p, const char *value)
{
    struct ob_kv kv[OB_MAX_PARAMS];
    size_t n = 0;
    const struct ob_action *a = prop->action;

    for (size_t i = 0; i < a->nparams && n < OB_MAX_PARAMS; i++) {
        const struct ob_param_def *d = &a->params[i];
        const char *v = d == p ? value : ob_proposal_get(prop, d->name);

        if (!v)
            continue;
        ob_strlcpy(kv[n].name, d->name, sizeof(kv[n].name));
        ob_strlcpy(kv[n].value, v, sizeof(kv[n].value));
        n++;
    }
    memcpy(prop->params, kv, n * sizeof(kv[0]));
    prop->nparams = n;
}

static const struct ob_param_def *first_missing(const struct ob_proposal *prop)
{
    for (size_t i = 0; i < prop->action->nparams; i++) {
        const struct ob_param_def *p = &prop->action->params[i];

        if (p->required && !ob_proposal_get(prop, p->name))
            return p;
    }
    return NULL;
}

static void enum_values(const struct ob_param_def *p, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->nvalues && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", p->values[i]);
}

/* Validates a candidate's values, fills defaults and produces the result. */
static void finalize(const struct cand *c, const char *source, double confidence,
                     struct ob_parse_result *out)
{
    const struct ob_action *a = c->a;
    char canon[OB_MAX_PARAMS][VALUE_LEN];
    bool have[OB_MAX_PARAMS] = {false};
    char multi[OB_MAX_PROPOSALS][VALUE_LEN];
    int mi = -1;
    size_t nm = 0;
    char why[300], sh[80];

    for (size_t i = 0; i < a->nparams; i++) {
        const struct ob_param_def *p = &a->params[i];

        if (!c->set[i]) {
            if (p->def) {
                ob_strlcpy(canon[i], p->def, VALUE_LEN);
                have[i] = true;
            }
            continue;
        }
        if (c->toolong[i]) {
            result(out, OB_PARSE_INVALID, "%s is too long (at most %d bytes)", p->name,
                   VALUE_LEN - 1);
            return;
        }
        if (validate(p, c->val[i], canon[i], why, sizeof(why)) == 0) {
            have[i] = true;
            continue;
        }
        char pieces[OB_MAX_PROPOSALS][VALUE_LEN];
        size_t np = split_values(c->val[i], pieces, OB_MAX_PROPOSALS);

        if (np < 2) {
            result(out, OB_PARSE_INVALID, "%s '%s' is not valid: %s", p->name,
                   shown(c->val[i], sh, sizeof(sh)), why);
            return;
        }
        if (np > OB_MAX_PROPOSALS) {
            result(out, OB_PARSE_INVALID,
                   "too many at once: at most %d values of %s in one request", OB_MAX_PROPOSALS,
                   p->name);
            return;
        }
        for (size_t k = 0; k < np; k++) {
            if (validate(p, pieces[k], multi[k], why, sizeof(why)) < 0) {
                result(out, OB_PARSE_INVALID, "%s '%s' is not valid: %s", p->name,
                       shown(pieces[k], sh, sizeof(sh)), why);
                return;
            }
        }
        if (mi >= 0) {
            result(out, OB_PARSE_INVALID,
                   "only one parameter can have several values at once (%s and %s both do)",
                   a->params[mi].name, p->name);
            return;
        }
        mi = (int)i;
        nm = np;
        have[i] = true;
    }

    struct ob_proposal *prop = &out->proposals[0];

    prop->action = a;
    prop->confidence = confidence;
    prop->source = source;
    for (size_t i = 0; i < a->nparams; i++) {
        if (!have[i])
            continue;
        ob_strlcpy(prop->params[prop->nparams].name, a->params[i].name, 64);
        ob_strlcpy(prop->params[prop->nparams].value, (int)i == mi ? multi[0] : canon[i],
                   VALUE_LEN);
        prop->nparams++;
    }
    prop->missing = first_missing(prop);
    if (prop->missing && mi >= 0) {
        char list[VALUE_LEN];

        enum_values(prop->missing, list, sizeof(list));
        result(out, OB_PARSE_INVALID,
               "Several %s values at once: please repeat the request with the %s too%s%s%s.",
               a->params[mi].name, prop->missing->name, list[0] ? " (one of: " : "",
               list[0] ? list : "", list[0] ? ")" : "");
        memset(prop, 0, sizeof(*prop));
        return;
    }
    if (prop->missing) {
        out->n = 1;
        out->status = OB_PARSE_ASK;
        ob_intent_question(prop, out->message, sizeof(out->message));
        return;
    }
    out->n = mi >= 0 ? nm : 1;
    for (size_t k = 1; k < out->n; k++) {
        out->proposals[k] = *prop;
        for (size_t j = 0; j < prop->nparams; j++)
            if (!strcmp(prop->params[j].name, a->params[mi].name))
                ob_strlcpy(out->proposals[k].params[j].value, multi[k], VALUE_LEN);
    }
    out->status = OB_PARSE_OK;
    out->message[0] = '\0';
}

/* ---- grammar --------------------------------------------------------------- */

static size_t edit_distance(const char *s, const char *t)
{
    size_t ls = strlen(s), lt = strlen(t), row[65];

    if (ls > 64 || lt > 64)
        return 99;
    for (size_t j = 0; j <= lt; j++)
        row[j] = j;
    for (size_t i = 1; i <= ls; i++) {
        size_t prev = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lt; j++) {
            size_t cur = row[j];
            size_t best = prev + (s[i - 1] != t[j - 1]);

            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lt];
}

static void unknown_command(const struct ob_catalog *cat, const char *name,
                            struct ob_parse_result *out)
{
    char close[256] = "", all[512] = "", sh[80];
    size_t oc = 0, oa = 0;

    for (size_t i = 0; i < cat->n; i++) {
        const char *an = cat->actions[i].name;
        size_t n = strlen(name);

        if (oa < sizeof(all))
            oa += (size_t)snprintf(all + oa, sizeof(all) - oa, "%s!%s", oa ? ", " : "", an);
        if ((edit_distance(name, an) <= 2 || (n >= 3 && !strncmp(an, name, n))) &&
            oc < sizeof(close))
            oc += (size_t)snprintf(close + oc, sizeof(close) - oc, "%s!%s", oc ? " or " : "", an);
    }
    if (close[0])
        result(out, OB_PARSE_INVALID,
               "unknown command '%s' (did you mean %s?) \xe2\x80\x94 try !help",
               shown(name, sh, sizeof(sh)), close);
    else
        result(out, OB_PARSE_INVALID, "unknown command '%s' \xe2\x80\x94 known: %s; try !help",
               shown(name, sh, sizeof(sh)), all);
}

static void param_names(const struct ob_action *a, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < a->nparams && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", a->params[i].name);
    if (!a->nparams)
        ob_strlcpy(buf, "no parameters", len);
}

/* Reads one word: bare, key=value, key="quoted value", 'single quoted'.
 * Returns 1 with a token, 0 at the end, -1 with the message set. */
static int next_token(const char **pp, struct token *t, struct ob_parse_result *out)
{
    const char *p = *pp;
    char buf[VALUE_LEN + 64];
    size_t n = 0;
    long key_end = -1;
    bool quoted = false;

    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0;
    while (*p && !isspace((unsigned char)*p)) {
        char c = *p;

        if (c == '"' || c == '\'') {
            char q = *p++;

            while (*p && *p != q) {
                if (*p == '\\' && (p[1] == q || p[1] == '\\'))
                    p++;
                if (n + 1 >= sizeof(buf)) {
                    result(out, OB_PARSE_INVALID, "a value is too long (at most %d bytes)",
                           VALUE_LEN - 1);
                    return -1;
                }
                buf[n++] = *p++;
            }
            if (!*p) {
                result(out, OB_PARSE_INVALID, "unterminated quote %c in the command", q);
                return -1;
            }
            p++;
            quoted = true;
            continue;
        }
        if (c == '=' && key_end < 0 && !quoted) {
            key_end = (long)n;
            p++;
            continue;
        }
        if (n + 1 >= sizeof(buf)) {
            result(out, OB_PARSE_INVALID, "a value is too long (at most %d bytes)", VALUE_LEN - 1);
            return -1;
        }
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    *pp = p;
    memset(t, 0, sizeof(*t));
    if (key_end >= 0) {
        if (key_end == 0 || key_end >= (long)sizeof(t->key)) {
            result(out, OB_PARSE_INVALID, "'=' without a parameter name before it");
            return -1;
        }
        memcpy(t->key, buf, (size_t)key_end);
        t->key[key_end] = '\0';
        t->has_key = true;
    }
    if (strlen(buf + (key_end >= 0 ? key_end : 0)) >= VALUE_LEN) {
        result(out, OB_PARSE_INVALID, "a value is too long (at most %d bytes)", VALUE_LEN - 1);
        return -1;
    }
    ob_strlcpy(t->val, buf + (key_end >= 0 ? key_end : 0), sizeof(t->val));
    return 1;
}

static void parse_grammar(const struct ob_catalog *cat, const char *p, struct ob_parse_result *out)
{
    char name[65], sh[80], names[256];
    size_t n = 0;
    struct token toks[MAX_TOKENS];
    size_t nt = 0;
    int rc;

    while (*p && !isspace((unsigned char)*p)) {
        if (n < sizeof(name) - 1)
            name[n++] = (char)tolower((unsigned char)*p);
        p++;
    }
    name[n] = '\0';

    const struct ob_action *a = ob_catalog_find(cat, name);

    if (!a) {
        unknown_command(cat, name, out);
        return;
    }
    for (;;) {
        if (nt == MAX_TOKENS) {
            result(out, OB_PARSE_INVALID, "too many words in the command (at most %d)", MAX_TOKENS);
            return;
        }
        rc = next_token(&p, &toks[nt], out);
        if (rc < 0)
            return;
        if (rc == 0)
            break;
        nt++;
    }

    struct cand *c = ob_xcalloc(1, sizeof(*c));

    c->a = a;
    param_names(a, names, sizeof(names));
    for (size_t i = 0; i < nt; i++) {
        if (!toks[i].has_key)
            continue;
        int idx = param_index(a, toks[i].key);

        if (idx < 0) {
            result(out, OB_PARSE_INVALID, "unknown parameter '%s' for !%s (it takes: %s)",
                   shown(toks[i].key, sh, sizeof(sh)), a->name, names);
            goto out;
        }
        if (c->set[idx]) {
            result(out, OB_PARSE_INVALID, "parameter '%s' is given twice", a->params[idx].name);
            goto out;
        }
        ob_strlcpy(c->val[idx], toks[i].val, VALUE_LEN);
        c->set[idx] = true;
    }
    /* Bare words: required parameters first, then optional ones, in
     * declaration order. `help` ignores them ("!help restart"). */
    for (size_t i = 0; i < nt && a->nparams; i++) {
        int idx = -1;

        if (toks[i].has_key)
            continue;
        for (size_t pass = 0; pass < 2 && idx < 0; pass++)
            for (size_t k = 0; k < a->nparams && idx < 0; k++)
                if (!c->set[k] && a->params[k].required == (pass == 0))
                    idx = (int)k;
        if (idx < 0) {
            result(out, OB_PARSE_INVALID, "unexpected '%s': !%s takes %s",
                   shown(toks[i].val, sh, sizeof(sh)), a->name, names);
            goto out;
        }
        ob_strlcpy(c->val[idx], toks[i].val, VALUE_LEN);
        c->set[idx] = true;
    }
    finalize(c, "grammar", 1.0, out);
out:
    free(c);
}

/* ---- rules ---------------------------------------------------------------- */

/* Drops vague captures ("the thing"); false when the capture shows the
 * text is not a request for this action at all. */
static bool filter_captures(struct cand *c)
{
    char pieces[OB_MAX_PROPOSALS][VALUE_LEN];

    for (size_t i = 0; i < c->a->nparams; i++) {
        if (!c->set[i] || c->a->params[i].type != OB_PARAM_STRING)
            continue;
        size_t np = split_values(c->val[i], pieces, OB_MAX_PROPOSALS);

        if (np > OB_MAX_PROPOSALS)
            np = OB_MAX_PROPOSALS;
        if (np == 0) {
            c->set[i] = false;
            continue;
        }
        for (size_t k = 0; k < np; k++) {
            if (in_list(non_target_words, pieces[k]))
                return false;
            if (in_list(vague_words, pieces[k]))
                c->set[i] = false;
        }
    }
    return true;
}

/* Finds w in text as a whole word (case-insensitive). */
static bool has_word(const char *text, const char *w)
{
    size_t n = strlen(w);

    if (!n)
        return false;
    for (const char *p = strcasestr(text, w); p; p = strcasestr(p + 1, w)) {
        bool lb = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-');
        bool rb = !(isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '-');

        if (lb && rb)
            return true;
    }
    return false;
}

/* A rule captured one value of an enum, but the text also names another
 * ("copy staging config to prod and restart checkout"): the parameter is
 * dropped so that the bot asks instead of guessing. */
static void drop_conflicting_enums(struct cand *c, const char *text)
{
    char canon[VALUE_LEN], why[8];

    for (size_t i = 0; i < c->a->nparams; i++) {
        const struct ob_param_def *p = &c->a->params[i];
        bool conflict = false;

        if (!c->set[i] || p->type != OB_PARAM_ENUM ||
            ob_param_validate(p, c->val[i], canon, sizeof(canon), why, sizeof(why)) < 0)
            continue;
        for (size_t k = 0; k < p->nvalues && !conflict; k++)
            conflict = strcmp(p->values[k], canon) && has_word(text, p->values[k]);
        for (size_t k = 0; k < p->naliases && !conflict; k++)
            conflict = strcmp(p->alias_to[k], canon) && has_word(text, p->alias_from[k]);
        if (conflict)
            c->set[i] = false;
    }
}

static void capture(struct cand *c, const pcre2_code *re, pcre2_match_data *md, const char *text)
{
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t novec = pcre2_get_ovector_count(md);

    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * size;
        uint32_t g = ((uint32_t)e[0] << 8) | e[1];
        int idx = param_index(c->a, (const char *)(e + 2));

        if (idx < 0 || g >= novec || c->set[idx] || ov[2 * g] == PCRE2_UNSET ||
            ov[2 * g + 1] <= ov[2 * g])
            continue;
        size_t len = ov[2 * g + 1] - ov[2 * g];

        if (len >= VALUE_LEN) {
            len = VALUE_LEN - 1;
            c->toolong[idx] = true;
        }
        memcpy(c->val[idx], text + ov[2 * g], len);
        c->val[idx][len] = '\0';
        trim(c->val[idx]);
        c->set[idx] = c->val[idx][0] != '\0';
    }
}

static void parse_rules(const struct ob_catalog *cat, const char *text, struct ob_parse_result *out)
{
    char norm[MAX_TEXT + 1];
    size_t len = 0;
    struct cand *cands = ob_xcalloc(3, sizeof(*cands)); /* too large for the stack */
    struct cand *best = &cands[0], *cur = &cands[1], *abest = &cands[2];
    const struct ob_action *tied[OB_MAX_PROPOSALS];
    size_t ntied = 0;
    bool any = false;
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    /* one match data for every rule (ob_catalog's rule_pairs) */
    pcre2_match_data *md = pcre2_match_data_create(cat->rule_pairs, NULL);

    if (!mc || !md)
        goto out;
    pcre2_set_match_limit(mc, MATCH_LIMIT);
    pcre2_set_depth_limit(mc, DEPTH_LIMIT);
    for (; text[len] && len < MAX_TEXT; len++) {
        unsigned char ch = (unsigned char)text[len];

        norm[len] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    norm[len] = '\0';

    for (size_t i = 0; i < cat->n; i++) {
        const struct ob_action *a = &cat->actions[i];
        bool afound = false;

        for (size_t r = 0; r < a->nrules; r++) {
            pcre2_code *re = a->rules[r];
            int rc = pcre2_match(re, (PCRE2_SPTR)norm, len, 0, 0, md, mc);

            if (rc < 0) {
                if (rc != PCRE2_ERROR_NOMATCH)
                    ob_warn("intent", "rule %zu of %s failed to run (PCRE2 error %d)", r, a->name,
                            rc);
                continue;
            }
            memset(cur, 0, sizeof(*cur));
            cur->a = a;
            capture(cur, re, md, norm);
            if (!filter_captures(cur))
                continue;
            drop_conflicting_enums(cur, norm);
            for (size_t k = 0; k < a->nparams; k++)
                cur->score += cur->set[k];
            if (!afound || cur->score > abest->score) {
                *abest = *cur;
                afound = true;
            }
        }
        if (!afound)
            continue;
        if (!any || abest->score > best->score) {
            *best = *abest;
            tied[0] = a;
            ntied = 1;
            any = true;
        } else if (abest->score == best->score && ntied < OB_MAX_PROPOSALS) {
            tied[ntied++] = a;
        }
    }
    if (!any)
        goto out;
    if (ntied > 1) {
        char names[200] = "", cmds[300] = "";
        size_t on = 0, oc = 0;

        for (size_t k = 0; k < ntied; k++) {
            const char *sep = k == 0 ? "" : k + 1 == ntied ? " or " : ", ";

            if (on < sizeof(names))
                on += (size_t)snprintf(names + on, sizeof(names) - on, "%s%s", sep, tied[k]->name);
            if (oc < sizeof(cmds))
                oc += (size_t)snprintf(cmds + oc, sizeof(cmds) - oc, "%s!%s \xe2\x80\xa6", sep,
                                       tied[k]->name);
        }
        result(out, OB_PARSE_AMBIGUOUS, "Did you mean %s? Say it with %s", names, cmds);
        goto out;
    }
    finalize(best, "rules", 0.9, out);
out:
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    free(cands);
}

/* ---- public ---------------------------------------------------------------- */

void ob_intent_parse(const struct ob_catalog *cat, const char *text, struct ob_parse_result *out)
{
    size_t len;

    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    out->status = OB_PARSE_NONE;
    if (!cat || !text)
        return;
    len = strnlen(text, MAX_TEXT + 1);
    if (len > MAX_TEXT) {
        result(out, OB_PARSE_INVALID, "message too long (at most %d bytes)", MAX_TEXT);
        return;
    }
    if (!ob_utf8_valid(text, len)) {
        result(out, OB_PARSE_INVALID, "message is not valid UTF-8");
        return;
    }
    while (isspace((unsigned char)*text))
        text++;
    if (text[0] == '!') {
        /* "!!!" or "! wow" is punctuation, not a command. */
        if (isalpha((unsigned char)text[1]))
            parse_grammar(cat, text + 1, out);
        return;
    }
    parse_rules(cat, text, out);
}

/* The values given so far, for the question: required parameters only
 * (defaults would be noise); numbers and durations as name=value. */
static void context_line(const struct ob_proposal *prop, bool with_names, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < prop->nparams && off < len; i++) {
        const struct ob_param_def *d = ob_action_param(prop->action, prop->params[i].name);
        bool named = with_names || (d && (d->type == OB_PARAM_INT || d->type == OB_PARAM_DURATION));

        if (!d || !d->required)
            continue;
        if (named)
            off += (size_t)snprintf(buf + off, len - off, "%s%s=%s",
                                    with_names && off ? " " : (with_names ? "" : " "),
                                    prop->params[i].name, prop->params[i].value);
        else
            off += (size_t)snprintf(buf + off, len - off, " %s", prop->params[i].value);
    }
}

void ob_intent_question(const struct ob_proposal *prop, char *buf, size_t len)
{
    const struct ob_param_def *m;
    const char *an;
    char ctx[300], list[300], num[64];

    if (!buf || !len)
        return;
    buf[0] = '\0';
    if (!prop || !prop->action || !prop->missing)
        return;
    m = prop->missing;
    an = prop->action->name;
    switch (m->type) {
    case OB_PARAM_ENUM:
        context_line(prop, false, ctx, sizeof(ctx));
        enum_values(m, list, sizeof(list));
        snprintf(buf, len, "Which %s for %s%s? One of: %s.", m->name, an, ctx, list);
        break;
    case OB_PARAM_INT:
        context_line(prop, false, ctx, sizeof(ctx));
        num[0] = '\0';
        if (m->has_min && m->has_max)
            snprintf(num, sizeof(num), " from %lld to %lld", (long long)m->min, (long long)m->max);
        else if (m->has_min)
            snprintf(num, sizeof(num), " of at least %lld", (long long)m->min);
        snprintf(buf, len, "%s %s for %s%s? A whole number%s.",
                 m->name[strlen(m->name) - 1] == 's' ? "How many" : "Which", m->name, an, ctx, num);
        break;
    case OB_PARAM_DURATION:
        context_line(prop, false, ctx, sizeof(ctx));
        snprintf(buf, len, "Which %s for %s%s? A duration such as 15m, 2h or 1d.", m->name, an,
                 ctx);
        break;
    case OB_PARAM_STRING:
        if (prop->action->risk == OB_RISK_CHANGE) {
            context_line(prop, true, ctx, sizeof(ctx));
            snprintf(buf, len, "Which %s should I %s%s%s%s? Reply in this thread.", m->name, an,
                     ctx[0] ? " (" : "", ctx, ctx[0] ? ")" : "");
        } else {
            context_line(prop, false, ctx, sizeof(ctx));
            snprintf(buf, len, "Which %s for %s%s? Reply in this thread.", m->name, an, ctx);
        }
        break;
    }
}

static bool strip_word(char *s, const char *w)
{
    size_t n = strlen(w);

    if (strncasecmp(s, w, n) || !isspace((unsigned char)s[n]))
        return false;
    memmove(s, s + n, strlen(s + n) + 1);
    trim(s);
    return true;
}

enum ob_parse_status ob_intent_answer(struct ob_proposal *prop, const char *answer, char *message,
                                      size_t len)
{
    static const char *const lead[] = {"in",  "on",   "for", "to", "the",
                                       "use", "it's", "its", "is", NULL};
    char buf[MAX_ANSWER + 1], canon[VALUE_LEN], why[300], sh[80];
    const struct ob_param_def *m;
    size_t n, nl;

    if (message && len)
        message[0] = '\0';
    if (!prop || !prop->action) {
        snprintf(message, len, "nothing is waiting for an answer");
        return OB_PARSE_INVALID;
    }
    m = prop->missing ? prop->missing : first_missing(prop);
    if (!m)
        goto complete;
    n = answer ? strnlen(answer, MAX_ANSWER + 1) : 0;
    if (!answer || n > MAX_ANSWER) {
        snprintf(message, len, "that answer is too long for a %s", m->name);
        return OB_PARSE_INVALID;
    }
    if (!ob_utf8_valid(answer, n)) {
        snprintf(message, len, "that answer is not valid UTF-8");
        return OB_PARSE_INVALID;
    }
    memcpy(buf, answer, n);
    buf[n] = '\0';
    trim(buf);
    while ((nl = strlen(buf)) && strchr(".!?", buf[nl - 1]))
        buf[nl - 1] = '\0';
    trim(buf);
    /* "env=prod", "env: prod" */
    nl = strlen(m->name);
    if (!strncasecmp(buf, m->name, nl) && (buf[nl] == '=' || buf[nl] == ':')) {
        memmove(buf, buf + nl + 1, strlen(buf + nl + 1) + 1);
        trim(buf);
    }
    for (int round = 0; round < 3; round++) {
        bool stripped = false;

        for (size_t i = 0; lead[i] && !stripped; i++)
            stripped = strip_word(buf, lead[i]);
        if (!stripped)
            break;
    }
    nl = strlen(buf);
    if (nl >= 2 && (buf[0] == '"' || buf[0] == '\'') && buf[nl - 1] == buf[0]) {
        buf[nl - 1] = '\0';
        memmove(buf, buf + 1, nl - 1);
    }
    if (validate(m, buf, canon, why, sizeof(why)) < 0) {
        snprintf(message, len, "%s '%s' is not valid: %s", m->name, shown(buf, sh, sizeof(sh)),
                 why);
        return OB_PARSE_INVALID;
    }
    prop_set(prop, m, canon);
    m = first_missing(prop);
    prop->missing = m;
    if (m) {
        ob_intent_question(prop, message, len);
        return OB_PARSE_ASK;
    }
complete:
    prop->missing = NULL;
    if (message && len)
        ob_proposal_format(prop, message, len);
    return OB_PARSE_OK;
}

const char *ob_proposal_get(const struct ob_proposal *prop, const char *name)
{
    if (!prop || !name)
        return NULL;
    for (size_t i = 0; i < prop->nparams && i < OB_MAX_PARAMS; i++)
        if (!strcmp(prop->params[i].name, name))
            return prop->params[i].value;
    return NULL;
}

const char *ob_proposal_format(const struct ob_proposal *prop, char *buf, size_t len)
{
    size_t off;

    if (!buf || !len)
        return buf;
    buf[0] = '\0';
    if (!prop || !prop->action)
        return buf;
    off = ob_strlcpy(buf, prop->action->name, len);
    for (size_t i = 0; i < prop->nparams && i < OB_MAX_PARAMS && off < len; i++) {
        const char *v = prop->params[i].value;
        bool quote = !*v || strpbrk(v, " \t\"'=\\") != NULL;

        off += (size_t)snprintf(buf + off, len - off, " %s=%s", prop->params[i].name,
                                quote ? "\"" : "");
        for (; quote && *v && off + 1 < len; v++) {
            if (*v == '"' || *v == '\\')
                buf[off++] = '\\';
            if (off + 1 < len)
                buf[off++] = *v;
        }
        if (quote && off < len) {
            buf[off] = '\0';
            off += (size_t)snprintf(buf + off, len - off, "\"");
        } else if (!quote && off < len) {
            off += (size_t)snprintf(buf + off, len - off, "%s", v);
        }
    }
    return buf;
}
