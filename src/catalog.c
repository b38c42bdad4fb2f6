/* The action catalog: loading, validation and parameter value checks.
 *
 * Actions come from the YAML documents included under `actions:` (each with
 * a top-level `actions:` list) or, for tests, from one cJSON array. Every
 * problem is reported into the diag with file:line and the key; loading goes
 * on after an error so that one run shows all of them.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "opsbot/err.h"
#include "opsbot/intent.h"
#include "opsbot/json.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define MAX_ACTIONS 64
#define MAX_RULES 32
#define MAX_EXAMPLES 64
#define MAX_VALUES 64
#define MAX_ALIASES 128
#define MAX_VALUE_LEN 255
#define MAX_PATTERN_LEN 1024
#define MAX_RULE_LEN 4096
#define MAX_DESC_LEN 2048

static const char *const action_keys[] = {"name",     "description", "risk",     "params",
                                          "examples", "rules",       "executor", NULL};
static const char *const param_keys[] = {"name",    "type",     "description", "pattern",
                                         "values",  "aliases",  "min",         "max",
                                         "default", "required", NULL};
static const char *const section_keys[] = {"include", "bind", NULL};
static const char *const doc_keys[] = {"actions", "playbook", NULL}; /* playbook: diagnose.c */

/* The built-in `help`: strict, the whole message must be the request. */
static const char *const help_rules[] = {
    "^\\s*(?:@?opsbot\\b[\\s,:]*)?(?:help|usage|commands|(?:list|show)\\s+(?:the\\s+|your\\s+)?"
    "commands|what\\s+(?:can|do)\\s+you\\s+do|what\\s+are\\s+your\\s+commands|how\\s+do\\s+i\\s+"
    "use\\s+(?:you|opsbot))(?:\\s+(?:me|please))?[\\s?!.]*$",
};

static const char *where(const struct ob_config *cfg, const cJSON *node, char *buf, size_t len)
{
    if (!cfg || !node) {
        ob_strlcpy(buf, "<input>", len);
        return buf;
    }
    return ob_config_where(cfg, node, buf, len);
}

/* A member, or NULL when absent or null (YAML `key: ~` means "not set"). */
static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNull(it) ? NULL : it;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 32 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* A scalar (string, number, boolean) as text; false for other node types or
 * values longer than MAX_VALUE_LEN. */
static bool scalar_text(const cJSON *n, char *buf, size_t len)
{
    int w;

    if (cJSON_IsString(n)) {
        if (strlen(n->valuestring) > MAX_VALUE_LEN)
            return false;
        ob_strlcpy(buf, n->valuestring, len);
        return true;
    }
    if (cJSON_IsNumber(n)) {
        char num[32];

        ob_json_num_text(n->valuedouble, num, sizeof(num));
        w = snprintf(buf, len, "%s", num);
        return w > 0 && (size_t)w < len;
    }
    if (cJSON_IsBool(n)) {
        ob_strlcpy(buf, cJSON_IsTrue(n) ? "true" : "false", len);
        return true;
    }
    return false;
}

static void compile_error(int code, size_t offset, char *err, size_t errlen)
{
    PCRE2_UCHAR msg[256];

    if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
        ob_strlcpy((char *)msg, "unknown error", sizeof(msg));
    snprintf(err, errlen, "%s at offset %zu", (const char *)msg, offset);
}

static pcre2_code *compile(const char *src, uint32_t opts, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re;

    re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                       opts | PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &code, &offset, NULL);
    if (!re) {
        compile_error(code, offset, err, errlen);
        return NULL;
    }
    /* JIT is an optimisation only: on failure the interpreter runs. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void param_release(struct ob_param_def *p)
{
    free(p->name);
    free(p->description);
    pcre2_code_free(p->pattern);
    free(p->pattern_src);
    free_strv(p->values, p->nvalues);
    free_strv(p->alias_from, p->naliases);
    free_strv(p->alias_to, p->naliases);
    free(p->def);
    memset(p, 0, sizeof(*p));
}

static void action_release(struct ob_action *a)
{
    free(a->name);
    free(a->description);
    for (size_t i = 0; i < a->nparams; i++)
        param_release(&a->params[i]);
    free(a->params);
    free_strv(a->examples, a->nexamples);
    for (size_t i = 0; i < a->nrules; i++)
        pcre2_code_free(a->rules[i]);
    free(a->rules);
    free_strv(a->rule_src, a->nrules);
    free(a->where);
    memset(a, 0, sizeof(*a));
}

void ob_catalog_free(struct ob_catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n; i++)
        action_release(&cat->actions[i]);
    free(cat->actions);
    free(cat);
}

const struct ob_action *ob_catalog_find(const struct ob_catalog *cat, const char *name)
{
    if (!cat || !name)
        return NULL;
    for (size_t i = 0; i < cat->n; i++)
        if (!strcmp(cat->actions[i].name, name))
            return &cat->actions[i];
    return NULL;
}

const struct ob_param_def *ob_action_param(const struct ob_action *a, const char *name)
{
    if (!a || !name)
        return NULL;
    for (size_t i = 0; i < a->nparams; i++)
        if (!strcmp(a->params[i].name, name))
            return &a->params[i];
    return NULL;
}

/* ---- value validation --------------------------------------------------- */

static const struct {
    const char *word;
    int64_t v;
} number_words[] = {
    {"zero", 0},        {"no", 0},       {"one", 1},     {"a", 1},       {"an", 1},
    {"two", 2},         {"three", 3},    {"four", 4},    {"five", 5},    {"six", 6},
    {"seven", 7},       {"eight", 8},    {"nine", 9},    {"ten", 10},    {"eleven", 11},
    {"twelve", 12},     {"fifteen", 15}, {"twenty", 20}, {"thirty", 30}, {"forty", 40},
    {"forty-five", 45}, {"fifty", 50},   {"sixty", 60},
};

static bool word_number(const char *s, size_t n, int64_t *out)
{
    for (size_t i = 0; i < sizeof(number_words) / sizeof(number_words[0]); i++) {
        if (strlen(number_words[i].word) == n && !strncasecmp(s, number_words[i].word, n)) {
            *out = number_words[i].v;
            return true;
        }
    }
    return false;
}

/* Whole decimal integer, optional sign, at most 18 digits. */
static bool parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    int64_t v = 0;
    size_t digits = 0;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || ++digits > 18)
            return false;
        v = v * 10 + (*s - '0');
    }
    if (!digits)
        return false;
    *out = neg ? -v : v;
    return true;
}

static int64_t unit_ms(const char *u, size_t n)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {
        {"ms", 1},          {"millisecond", 1}, {"milliseconds", 1}, {"s", 1000},
        {"sec", 1000},      {"secs", 1000},     {"second", 1000},    {"seconds", 1000},
        {"m", 60000},       {"min", 60000},     {"mins", 60000},     {"minute", 60000},
        {"minutes", 60000}, {"h", 3600000},     {"hr", 3600000},     {"hrs", 3600000},
        {"hour", 3600000},  {"hours", 3600000}, {"d", 86400000},     {"day", 86400000},
        {"days", 86400000}, {"w", 604800000},   {"week", 604800000}, {"weeks", 604800000},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && !strncmp(u, units[i].name, n))
            return units[i].ms;
    return 0;
}

/* Compact ("15m", "1h30m") and natural ("15 minutes", "an hour", "hour",
 * "the last 2 hours", "half an hour") durations. s is lower-case, trimmed,
 * single-spaced. */
static bool parse_duration(const char *s, int64_t *out)
{
    static const char *const lead[] = {"the ", "last ", "past ", "over ", "for ", "in ", NULL};
    bool again = true;

    while (again) {
        again = false;
        for (size_t i = 0; lead[i]; i++) {
            size_t n = strlen(lead[i]);

            if (!strncmp(s, lead[i], n)) {
                s += n;
                again = true;
            }
        }
    }
    if (!strcmp(s, "half an hour") || !strcmp(s, "half hour")) {
        *out = 30 * 60000;
        return true;
    }
    /* "N unit", "Nunit", "a unit", "unit" */
    const char *p = s;
    int64_t v = 1;
    size_t nlen = 0;

    while (isdigit((unsigned char)p[nlen]))
        nlen++;
    if (nlen) {
        if (nlen > 9)
            return false;
        v = strtoll(p, NULL, 10);
        p += nlen;
        if (*p == ' ')
            p++;
    } else {
        const char *sp = strchr(p, ' ');

        if (sp && word_number(p, (size_t)(sp - p), &v))
            p = sp + 1;
        else
            v = 1;
    }
    int64_t u = unit_ms(p, strlen(p));

    if (u && (nlen || p != s || strlen(p) > 2)) {
        /* Bare single-letter units ("m") are not durations; "hour" is. */
        *out = v * u;
        return true;
    }
    return ob_duration_parse(s, out) == 0;
}

static bool enum_lookup(const struct ob_param_def *p, const char *v, const char **canon)
{
    for (size_t i = 0; i < p->nvalues; i++) {
        if (!strcasecmp(p->values[i], v)) {
            *canon = p->values[i];
            return true;
        }
    }
    for (size_t i = 0; i < p->naliases; i++) {
        if (!strcasecmp(p->alias_from[i], v)) {
            *canon = p->alias_to[i];
            return true;
        }
    }
    return false;
}

static void enum_list(const struct ob_param_def *p, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->nvalues && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", p->values[i]);
}

int ob_param_validate(const struct ob_param_def *p, const char *value, char *out, size_t outlen,
                      char *why, size_t whylen)
{
    char v[MAX_VALUE_LEN + 1], norm[MAX_VALUE_LEN + 1], tmp[64];
    size_t n, i, j;
    int64_t num;
    int w = 0;

    if (why && whylen)
        why[0] = '\0';
    if (!p || !value || !out || !outlen) {
        snprintf(why, whylen, "is missing");
        return OB_EINVAL;
    }
    while (*value == ' ' || *value == '\t')
        value++;
    n = strnlen(value, MAX_VALUE_LEN + 1);
    while (n && n <= MAX_VALUE_LEN && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n > MAX_VALUE_LEN) {
        snprintf(why, whylen, "is too long (at most %d bytes)", MAX_VALUE_LEN);
        return OB_EINVAL;
    }
    if (!n) {
        snprintf(why, whylen, "is empty");
        return OB_EINVAL;
    }
    memcpy(v, value, n);
    v[n] = '\0';
    if (!ob_utf8_valid(v, n)) {
        snprintf(why, whylen, "is not valid UTF-8");
        return OB_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(why, whylen, "contains control characters");
            return OB_EINVAL;
        }
    }
    /* Lower-case, single-spaced form for the word-based types. */
    for (i = 0, j = 0; i < n; i++) {
        if (v[i] == ' ' && j && norm[j - 1] == ' ')
            continue;
        norm[j++] = (char)tolower((unsigned char)v[i]);
    }
    norm[j] = '\0';

    switch (p->type) {
    case OB_PARAM_STRING:
        if (p->pattern) {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->pattern, NULL);
            int rc;

            if (!md) {
                snprintf(why, whylen, "cannot be checked (out of memory)");
                return OB_EINVAL;
            }
            rc = pcre2_match(p->pattern, (PCRE2_SPTR)v, n, 0, 0, md, NULL);
            pcre2_match_data_free(md);
            if (rc < 0) {
                snprintf(why, whylen, "must match %s", p->pattern_src);
                return OB_EINVAL;
            }
        }
        w = snprintf(out, outlen, "%s", v);
        break;
    case OB_PARAM_INT:
        if (!parse_int(norm, &num) && !word_number(norm, strlen(norm), &num)) {
            snprintf(why, whylen, "must be a whole number");
            return OB_EINVAL;
        }
        if (p->has_min && num < p->min) {
            snprintf(why, whylen, "must be at least %" PRId64, p->min);
            return OB_EINVAL;
        }
        if (p->has_max && num > p->max) {
            snprintf(why, whylen, "must be at most %" PRId64, p->max);
            return OB_EINVAL;
        }
        w = snprintf(out, outlen, "%" PRId64, num);
        break;
    case OB_PARAM_DURATION:
        if (!parse_duration(norm, &num)) {
            snprintf(why, whylen, "must be a duration such as 15m, 2h or 1d");
            return OB_EINVAL;
        }
        if (num <= 0) {
            snprintf(why, whylen, "must be longer than zero");
            return OB_EINVAL;
        }
        if (p->has_min && num < p->min) {
            snprintf(why, whylen, "must be at least %s",
                     ob_duration_format(p->min, tmp, sizeof(tmp)));
            return OB_EINVAL;
        }
        if (p->has_max && num > p->max) {
            snprintf(why, whylen, "must be at most %s",
                     ob_duration_format(p->max, tmp, sizeof(tmp)));
            return OB_EINVAL;
        }
        ob_duration_format(num, tmp, sizeof(tmp));
        w = snprintf(out, outlen, "%s", tmp);
        break;
    case OB_PARAM_ENUM: {
        const char *canon = NULL;

        if (!enum_lookup(p, norm, &canon)) {
            char list[MAX_VALUE_LEN + 1];

            enum_list(p, list, sizeof(list));
            snprintf(why, whylen, "must be one of: %s", list);
            return OB_EINVAL;
        }
        w = snprintf(out, outlen, "%s", canon);
        break;
    }
    }
    if (w < 0 || (size_t)w >= outlen) {
        snprintf(why, whylen, "is too long");
        return OB_EINVAL;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

struct loader {
    const struct ob_config *cfg;
    struct ob_diag *d;
    size_t errors;
};

static void __attribute__((format(printf, 4, 5)))
report(struct loader *ld, const cJSON *node, const char *key, const char *fmt, ...)
{
    char loc[512], msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_diag_addf(ld->d, "%s: %s: %s", where(ld->cfg, node, loc, sizeof(loc)), key, msg);
    ld->errors++;
}

static void add_unknown(struct loader *ld, int n)
{
    if (n != 0)
        ld->errors += n > 0 ? (size_t)n : 1;
}

/* Runs an ob_cfg_* helper and counts its failure. */
static bool cfg_ok(struct loader *ld, int rc)
{
    if (rc < 0) {
        ld->errors++;
        return false;
    }
    return true;
}

static int load_param_values(struct loader *ld, const char *aname, struct ob_param_def *p,
                             const cJSON *pn)
{
    const cJSON *values = get(pn, "values");
    const cJSON *aliases = get(pn, "aliases");
    const cJSON *it;
    char buf[MAX_VALUE_LEN + 1];

    if (p->type != OB_PARAM_ENUM) {
        if (values)
            report(ld, values, "values",
                   "action '%s' parameter '%s': only enum parameters take values", aname, p->name);
        if (aliases)
            report(ld, aliases, "aliases",
                   "action '%s' parameter '%s': only enum parameters take aliases", aname, p->name);
        return 0;
    }
    if (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0) {
        report(ld, values ? values : pn, "values",
               "action '%s' parameter '%s': an enum needs a non-empty list of values", aname,
               p->name);
        return 0;
    }
    if (cJSON_GetArraySize(values) > MAX_VALUES) {
        report(ld, values, "values", "action '%s' parameter '%s': more than %d values", aname,
               p->name, MAX_VALUES);
        return 0;
    }
    p->values = ob_xcalloc((size_t)cJSON_GetArraySize(values), sizeof(char *));
    cJSON_ArrayForEach(it, values)
    {
        if (!scalar_text(it, buf, sizeof(buf)) || !buf[0]) {
            report(ld, it, "values",
                   "action '%s' parameter '%s': each value must be a non-empty scalar of at "
                   "most %d bytes",
                   aname, p->name, MAX_VALUE_LEN);
            continue;
        }
        bool dup = false;

        for (size_t i = 0; i < p->nvalues; i++)
            dup = dup || !strcasecmp(p->values[i], buf);
        if (dup) {
            report(ld, it, "values", "action '%s' parameter '%s': duplicate value '%s'", aname,
                   p->name, buf);
            continue;
        }
        p->values[p->nvalues++] = ob_xstrdup(buf);
    }
    if (!aliases)
        return 0;
    if (!cJSON_IsObject(aliases)) {
        report(ld, aliases, "aliases", "action '%s' parameter '%s': must be a mapping", aname,
               p->name);
        return 0;
    }
    if (cJSON_GetArraySize(aliases) > MAX_ALIASES) {
        report(ld, aliases, "aliases", "action '%s' parameter '%s': more than %d aliases", aname,
               p->name, MAX_ALIASES);
        return 0;
    }
    p->alias_from = ob_xcalloc((size_t)cJSON_GetArraySize(aliases), sizeof(char *));
    p->alias_to = ob_xcalloc((size_t)cJSON_GetArraySize(aliases), sizeof(char *));
    cJSON_ArrayForEach(it, aliases)
    {
        const char *target = NULL;

        if (!scalar_text(it, buf, sizeof(buf)) || strlen(it->string) > MAX_VALUE_LEN ||
            !it->string[0]) {
            report(ld, it, "aliases", "action '%s' parameter '%s': alias '%s' must map to a value",
                   aname, p->name, it->string);
            continue;
        }
        for (size_t i = 0; i < p->nvalues; i++)
            if (!strcasecmp(p->values[i], buf))
                target = p->values[i];
        if (!target) {
            report(ld, it, "aliases",
                   "action '%s' parameter '%s': alias '%s' maps to '%s', which is not one of "
                   "the values",
                   aname, p->name, it->string, buf);
            continue;
        }
        p->alias_from[p->naliases] = ob_xstrdup(it->string);
        p->alias_to[p->naliases] = ob_xstrdup(target);
        p->naliases++;
    }
    return 0;
}

static void load_param_range(struct loader *ld, const char *aname, struct ob_param_def *p,
                             const cJSON *pn)
{
    const cJSON *mn = get(pn, "min");
    const cJSON *mx = get(pn, "max");

    if (p->type != OB_PARAM_INT && p->type != OB_PARAM_DURATION) {
        if (mn)
            report(ld, mn, "min",
                   "action '%s' parameter '%s': only int and duration parameters take min", aname,
                   p->name);
        if (mx)
            report(ld, mx, "max",
                   "action '%s' parameter '%s': only int and duration parameters take max", aname,
                   p->name);
        return;
    }
    if (p->type == OB_PARAM_INT) {
        if (mn && cfg_ok(ld, ob_cfg_int(ld->cfg, pn, "min", false, 0, INT64_MIN / 2, INT64_MAX / 2,
                                        &p->min, ld->d)))
            p->has_min = true;
        if (mx && cfg_ok(ld, ob_cfg_int(ld->cfg, pn, "max", false, 0, INT64_MIN / 2, INT64_MAX / 2,
                                        &p->max, ld->d)))
            p->has_max = true;
    } else {
        if (mn && cfg_ok(ld, ob_cfg_duration(ld->cfg, pn, "min", false, 0, &p->min, ld->d)))
            p->has_min = true;
        if (mx && cfg_ok(ld, ob_cfg_duration(ld->cfg, pn, "max", false, 0, &p->max, ld->d)))
            p->has_max = true;
    }
    if (p->has_min && p->has_max && p->min > p->max)
        report(ld, mn, "min", "action '%s' parameter '%s': min is greater than max", aname,
               p->name);
}

static void load_param(struct loader *ld, struct ob_action *a, const cJSON *pn, size_t idx)
{
    struct ob_param_def *p = &a->params[a->nparams];
    const char *s = NULL;
    const cJSON *item;
    char what[128], buf[MAX_VALUE_LEN + 1], why[512], err[300];
    size_t before = ld->errors;

    if (!cJSON_IsObject(pn)) {
        report(ld, pn, "params", "action '%s': parameter #%zu must be a mapping", a->name, idx + 1);
        return;
    }
    item = get(pn, "name");
    snprintf(what, sizeof(what), "%s.%s", a->name,
             cJSON_IsString(item) ? item->valuestring : "params");
    add_unknown(ld, ob_cfg_check_keys(ld->cfg, pn, param_keys, what, ld->d));
    snprintf(what, sizeof(what), "action '%s' parameter '%s'", a->name,
             cJSON_IsString(item) ? item->valuestring : "?");
    if (!cfg_ok(ld, ob_cfg_string(ld->cfg, pn, "name", true, NULL, &s, ld->d)))
        return;
    if (!valid_name(s)) {
        report(ld, item, "name",
               "action '%s': invalid parameter name '%s' (must match ^[a-z][a-z0-9_]{0,31}$)",
               a->name, s);
        return;
    }
    for (size_t i = 0; i < a->nparams; i++) {
        if (!strcmp(a->params[i].name, s)) {
            report(ld, item, "name", "action '%s': duplicate parameter '%s'", a->name, s);
            return;
        }
    }
    p->name = ob_xstrdup(s);
    a->nparams++; /* owned by the action from here on, released with it */

    s = "string";
    if (cfg_ok(ld, ob_cfg_string(ld->cfg, pn, "type", false, "string", &s, ld->d))) {
        if (!strcmp(s, "string"))
            p->type = OB_PARAM_STRING;
        else if (!strcmp(s, "int"))
            p->type = OB_PARAM_INT;
        else if (!strcmp(s, "duration"))
            p->type = OB_PARAM_DURATION;
        else if (!strcmp(s, "enum"))
            p->type = OB_PARAM_ENUM;
        else
            report(ld, get(pn, "type"), "type",
                   "%s: unknown type '%s' (string, int, duration or enum)", what, s);
    }
    s = "";
    if (cfg_ok(ld, ob_cfg_string(ld->cfg, pn, "description", false, "", &s, ld->d))) {
        if (strlen(s) > MAX_DESC_LEN)
            report(ld, get(pn, "description"), "description", "%s: longer than %d bytes", what,
                   MAX_DESC_LEN);
        else
            p->description = ob_xstrdup(s);
    }
    cfg_ok(ld, ob_cfg_bool(ld->cfg, pn, "required", false, &p->required, ld->d));

    item = get(pn, "pattern");
    if (item) {
        if (p->type != OB_PARAM_STRING) {
            report(ld, item, "pattern", "%s: only string parameters take a pattern", what);
        } else if (cfg_ok(ld, ob_cfg_string(ld->cfg, pn, "pattern", false, NULL, &s, ld->d))) {
            if (strlen(s) > MAX_PATTERN_LEN) {
                report(ld, item, "pattern", "%s: longer than %d bytes", what, MAX_PATTERN_LEN);
            } else {
                p->pattern = compile(s, PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY,
                                     err, sizeof(err));
                if (!p->pattern)
                    report(ld, item, "pattern", "%s: cannot compile '%s': %s", what, s, err);
                else
                    p->pattern_src = ob_xstrdup(s);
            }
        }
    }
    load_param_values(ld, a->name, p, pn);
    load_param_range(ld, a->name, p, pn);

    item = get(pn, "default");
    if (item && ld->errors == before) {
        char canon[MAX_VALUE_LEN + 1];

        if (!scalar_text(item, buf, sizeof(buf))) {
            report(ld, item, "default", "%s: must be a scalar of at most %d bytes", what,
                   MAX_VALUE_LEN);
        } else if (ob_param_validate(p, buf, canon, sizeof(canon), why, sizeof(why)) < 0) {
            report(ld, item, "default", "%s: default '%s' %s", what, buf, why);
        } else {
            p->def = ob_xstrdup(canon);
        }
    }
}

static void check_rule_groups(struct loader *ld, struct ob_action *a, const pcre2_code *re,
                              const cJSON *node)
{
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;

    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; i++) {
        const char *gname = (const char *)(table + (size_t)i * size + 2);

        if (!ob_action_param(a, gname))
            report(ld, node, "rules",
                   "action '%s': rule group '%s' is not a parameter of the action", a->name, gname);
    }
}

static void load_rules(struct loader *ld, struct ob_action *a, const cJSON *an)
{
    const cJSON *rules = NULL, *it;
    char err[300];

    if (!cfg_ok(ld, ob_cfg_strlist(ld->cfg, an, "rules", false, &rules, ld->d)) || !rules)
        return;
    if (cJSON_IsString(rules)) {
        report(ld, rules, "rules", "action '%s': must be a list of patterns", a->name);
        return;
    }
    if (cJSON_GetArraySize(rules) > MAX_RULES) {
        report(ld, rules, "rules", "action '%s': more than %d rules", a->name, MAX_RULES);
        return;
    }
    a->rules = ob_xcalloc((size_t)cJSON_GetArraySize(rules) + 1, sizeof(void *));
    a->rule_src = ob_xcalloc((size_t)cJSON_GetArraySize(rules) + 1, sizeof(char *));
    cJSON_ArrayForEach(it, rules)
    {
        pcre2_code *re;

        if (!cJSON_IsString(it)) {
            report(ld, it, "rules", "action '%s': every rule must be a string", a->name);
            continue;
        }
        if (strlen(it->valuestring) > MAX_RULE_LEN) {
            report(ld, it, "rules", "action '%s': rule longer than %d bytes", a->name,
                   MAX_RULE_LEN);
            continue;
        }
        re = compile(it->valuestring, PCRE2_CASELESS | PCRE2_DUPNAMES, err, sizeof(err));
        if (!re) {
            report(ld, it, "rules", "action '%s': cannot compile rule: %s", a->name, err);
            continue;
        }
        check_rule_groups(ld, a, re, it);
        a->rules[a->nrules] = re;
        a->rule_src[a->nrules] = ob_xstrdup(it->valuestring);
        a->nrules++;
    }
}

static bool check_executor(struct loader *ld, const char *aname, const cJSON *ex)
{
    const cJSON *type = get(ex, "type");

    if (!cJSON_IsObject(ex)) {
        report(ld, ex, "executor", "action '%s': must be a mapping", aname);
        return false;
    }
    if (!cJSON_IsString(type) || !type->valuestring[0]) {
        report(ld, type ? type : ex, "type", "action '%s': the executor needs a string type",
               aname);
        return false;
    }
    return true;
}

static void load_action(struct loader *ld, struct ob_catalog *cat, const cJSON *an, size_t idx)
{
    struct ob_action *a;
    const cJSON *item, *examples = NULL, *params;
    const char *s = NULL;
    char what[96], loc[512];

    if (!cJSON_IsObject(an)) {
        report(ld, an, "actions", "entry #%zu must be a mapping", idx + 1);
        return;
    }
    item = get(an, "name");
    snprintf(what, sizeof(what), "%s", cJSON_IsString(item) ? item->valuestring : "action");
    add_unknown(ld, ob_cfg_check_keys(ld->cfg, an, action_keys, what, ld->d));
    if (!cfg_ok(ld, ob_cfg_string(ld->cfg, an, "name", true, NULL, &s, ld->d)))
        return;
    if (!valid_name(s)) {
        report(ld, item, "name", "invalid action name '%s' (must match ^[a-z][a-z0-9_]{0,31}$)", s);
        return;
    }
    /* Reported, and the action is still checked so that one run shows
     * every problem (the catalog is dropped anyway). */
    if (!strcmp(s, "help"))
        report(ld, item, "name", "'help' is built in and cannot be redefined");
    for (size_t i = 0; i < cat->n; i++) {
        if (!strcmp(cat->actions[i].name, s)) {
            report(ld, item, "name", "duplicate action '%s' (first defined at %s)", s,
                   cat->actions[i].where);
            break;
        }
    }
    if (cat->n >= MAX_ACTIONS) {
        report(ld, an, "actions", "more than %d actions", MAX_ACTIONS);
        return;
    }
    a = &cat->actions[cat->n++];
    a->name = ob_xstrdup(s);
    a->where = ob_xstrdup(where(ld->cfg, an, loc, sizeof(loc)));

    if (cfg_ok(ld, ob_cfg_string(ld->cfg, an, "description", true, NULL, &s, ld->d))) {
        if (!s[0] || strlen(s) > MAX_DESC_LEN)
            report(ld, get(an, "description"), "description", "action '%s': must be 1 to %d bytes",
                   a->name, MAX_DESC_LEN);
        else
            a->description = ob_xstrdup(s);
    }
    if (cfg_ok(ld, ob_cfg_string(ld->cfg, an, "risk", true, NULL, &s, ld->d))) {
        if (!strcmp(s, "read"))
            a->risk = OB_RISK_READ;
        else if (!strcmp(s, "change"))
            a->risk = OB_RISK_CHANGE;
        else
            report(ld, get(an, "risk"), "risk", "action '%s': must be read or change, not '%s'",
                   a->name, s);
    }

    params = get(an, "params");
    if (params && !cJSON_IsArray(params)) {
        report(ld, params, "params", "action '%s': must be a list", a->name);
    } else if (params && cJSON_GetArraySize(params) > OB_MAX_PARAMS) {
        report(ld, params, "params", "action '%s': more than %d parameters", a->name,
               OB_MAX_PARAMS);
    } else if (params) {
        size_t i = 0;

        a->params = ob_xcalloc(OB_MAX_PARAMS, sizeof(*a->params));
        cJSON_ArrayForEach(item, params) load_param(ld, a, item, i++);
    }

    if (cfg_ok(ld, ob_cfg_strlist(ld->cfg, an, "examples", false, &examples, ld->d)) && examples) {
        if (cJSON_IsString(examples)) {
            a->examples = ob_xcalloc(1, sizeof(char *));
            a->examples[a->nexamples++] = ob_xstrdup(examples->valuestring);
        } else if (cJSON_GetArraySize(examples) > MAX_EXAMPLES) {
            report(ld, examples, "examples", "action '%s': more than %d examples", a->name,
                   MAX_EXAMPLES);
        } else {
            a->examples = ob_xcalloc((size_t)cJSON_GetArraySize(examples) + 1, sizeof(char *));
            cJSON_ArrayForEach(item, examples)
            {
                if (cJSON_IsString(item) && strlen(item->valuestring) <= MAX_DESC_LEN)
                    a->examples[a->nexamples++] = ob_xstrdup(item->valuestring);
                else
                    report(ld, item, "examples", "action '%s': every example must be a string",
                           a->name);
            }
        }
    }
    load_rules(ld, a, an);

    item = get(an, "executor");
    if (item && check_executor(ld, a->name, item))
        a->executor = item;
}

static void load_list(struct loader *ld, struct ob_catalog *cat, const cJSON *list)
{
    const cJSON *it;
    size_t i = 0;

    if (!cJSON_IsArray(list)) {
        report(ld, list, "actions", "must be a list of actions");
        return;
    }
    cJSON_ArrayForEach(it, list) load_action(ld, cat, it, i++);
}

static void add_help(struct ob_catalog *cat)
{
    struct ob_action *a = &cat->actions[cat->n++];
    size_t nrules = sizeof(help_rules) / sizeof(help_rules[0]);
    char err[300];

    a->name = ob_xstrdup("help");
    a->description = ob_xstrdup("List the commands I understand and how to use them.");
    a->risk = OB_RISK_READ;
    a->where = ob_xstrdup("<built-in>");
    a->examples = ob_xcalloc(2, sizeof(char *));
    a->examples[a->nexamples++] = ob_xstrdup("help");
    a->examples[a->nexamples++] = ob_xstrdup("what can you do?");
    a->rules = ob_xcalloc(nrules, sizeof(void *));
    a->rule_src = ob_xcalloc(nrules, sizeof(char *));
    for (size_t i = 0; i < nrules; i++) {
        pcre2_code *re = compile(help_rules[i], PCRE2_CASELESS, err, sizeof(err));

        if (!re) { /* a bug in the built-in pattern, not in the input */
            ob_error("catalog", "built-in help rule: %s", err);
            continue;
        }
        a->rules[a->nrules] = re;
        a->rule_src[a->nrules] = ob_xstrdup(help_rules[i]);
        a->nrules++;
    }
}

static struct ob_catalog *catalog_new(void)
{
    struct ob_catalog *cat = ob_xcalloc(1, sizeof(*cat));

    cat->actions = ob_xcalloc(MAX_ACTIONS + 1, sizeof(*cat->actions));
    return cat;
}

static int finish(struct loader *ld, struct ob_catalog *cat, struct ob_catalog **out)
{
    if (ld->errors) {
        ob_catalog_free(cat);
        return OB_ECONFIG;
    }
    add_help(cat);
    /* the parser's one match data serves every rule: sized for the largest */
    cat->rule_pairs = 1;
    for (size_t i = 0; i < cat->n; i++)
        for (size_t r = 0; r < cat->actions[i].nrules; r++) {
            uint32_t groups = 0;

            if (pcre2_pattern_info(cat->actions[i].rules[r], PCRE2_INFO_CAPTURECOUNT, &groups) ==
                    0 &&
                groups + 1 > cat->rule_pairs)
                cat->rule_pairs = groups + 1;
        }
    *out = cat;
    return 0;
}

int ob_catalog_load_json(struct ob_catalog **out, const struct ob_config *cfg, const cJSON *actions,
                         struct ob_diag *d)
{
    struct ob_diag own;
    struct loader ld = {cfg, d, 0};
    int rc;

    *out = NULL;
    if (!d) {
        ob_diag_init(&own);
        ld.d = &own;
    }
    struct ob_catalog *cat = catalog_new();

    if (actions)
        load_list(&ld, cat, actions);
    rc = finish(&ld, cat, out);
    if (!d)
        ob_diag_release(&own);
    return rc;
}

static void apply_bind(struct loader *ld, struct ob_catalog *cat, const cJSON *bind)
{
    const cJSON *it;

    if (!cJSON_IsObject(bind)) {
        report(ld, bind, "bind", "must be a mapping of action name to executor");
        return;
    }
    cJSON_ArrayForEach(it, bind)
    {
        struct ob_action *a = (struct ob_action *)ob_catalog_find(cat, it->string);

        if (!a) {
            report(ld, it, "bind", "unknown action '%s'", it->string);
            continue;
        }
        if (check_executor(ld, a->name, it))
            a->executor = it;
    }
}

int ob_catalog_load(struct ob_catalog **out, const struct ob_config *cfg, struct ob_diag *d)
{
    struct ob_diag own;
    struct loader ld = {cfg, d, 0};
    const struct ob_config_doc *docs;
    int rc;
    const cJSON *section;
    size_t ndocs = 0;

    *out = NULL;
    if (!cfg)
        return OB_EINVAL;
    if (!d) {
        ob_diag_init(&own);
        ld.d = &own;
    }
    struct ob_catalog *cat = catalog_new();

    docs = ob_config_includes(cfg, "actions", &ndocs);
    for (size_t i = 0; docs && i < ndocs; i++) {
        const cJSON *root = docs[i].root;

        if (!cJSON_IsObject(root)) {
            report(&ld, root, "actions", "%s: the document must be a mapping with an actions list",
                   docs[i].path);
            continue;
        }
        add_unknown(&ld, ob_cfg_check_keys(cfg, root, doc_keys, NULL, ld.d));
        load_list(&ld, cat, get(root, "actions"));
    }
    section = get(ob_config_root(cfg), "actions");
    if (section && !cJSON_IsObject(section)) {
        report(&ld, section, "actions", "must be a mapping with include and bind");
    } else if (section) {
        add_unknown(&ld, ob_cfg_check_keys(cfg, section, section_keys, "actions", ld.d));
        if (get(section, "bind"))
            apply_bind(&ld, cat, get(section, "bind"));
    }
    rc = finish(&ld, cat, out);
    if (!d)
        ob_diag_release(&own);
    return rc;
}
