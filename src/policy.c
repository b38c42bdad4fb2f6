/* Policy engine: groups, ordered rules, freeze windows and rate limits.
 *
 * Loading happens in two passes. Each document is parsed on its own (names,
 * types, local checks, catalog checks); then a link pass resolves the names
 * that may live in other documents (rule groups, approvers, nested groups),
 * rejects group cycles and flattens every group into its list of user ids.
 * ob_policy_load parses every included document before linking once, so a
 * group may be declared in any file; ob_policy_add_json links after each
 * document and rolls the document back when it has errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/log.h"
#include "opsbot/policy.h"
#include "opsbot/util.h"

#define NAME_MAX_LEN 48   /* rule, group, freeze and limit names */
#define VALUE_MAX_LEN 255 /* ids, actions, parameter values */
#define REASON_MAX_LEN 200
#define MAX_LIST 1024 /* entries in one list */
#define MAX_GROUPS 1024
#define MAX_RULES 4096
#define MAX_FREEZES 256
#define MAX_LIMITS 256
#define MAX_FLAT 10000 /* users in one flattened group */
#define MAX_COUNT 100  /* approvals one rule may require */
#define MAX_NESTING 32
#define WHERE_LEN 256
#define DAY_S 86400

struct strv {
    char **v;
    size_t n;
    bool set; /* the key was present */
    bool any; /* the list holds "*" */
};

struct pgroup {
    char *name;
    char where[WHERE_LEN];
    struct strv members; /* as written: "slack:U1", "group:NAME" */
    struct strv flat;    /* user ids only, nested groups resolved */
    int mark;            /* cycle detection */
};

struct pparam {
    char *name;
    bool any;
    struct strv forms; /* values as written plus their normalised forms */
};

struct prule {
    char *name;
    char where[WHERE_LEN];
    struct strv users, groups, platforms, channels, actions;
    struct pparam *params;
    size_t nparams;
    enum ob_effect effect;
    char *reason;
    char *approvers;
    int count;
    bool allow_self;
    int64_t ttl_ms;
};

struct pfreeze {
    char *name;
    char where[WHERE_LEN];
    unsigned days; /* bit 0 = monday */
    int from_s, to_s;
    struct strv except;
    struct strv env;
    char *reason;
};

struct plimit {
    char *name;
    char where[WHERE_LEN];
    struct strv actions;
    int64_t max;
    int64_t per_ms;
};

struct ob_policy {
    struct pgroup *groups;
    size_t ngroups, cgroups;
    struct prule *rules;
    size_t nrules, crules;
    struct pfreeze *freezes;
    size_t nfreezes, cfreezes;
    struct plimit *limits;
    size_t nlimits, climits;
};

struct ctx {
    struct ob_policy *p;
    const struct ob_config *cfg;
    const struct ob_catalog *cat;
    struct ob_diag *d;
    int errors;
    bool oom;
};

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- small helpers ---------------------------------------------------- */

static void perr(struct ctx *c, const cJSON *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(struct ctx *c, const cJSON *node, const char *key, const char *fmt, ...)
{
    char where[WHERE_LEN], msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_config_where(c->cfg, node, where, sizeof(where));
    ob_diag_addf(c->d, "%s: %s: %s", where, key, msg);
    c->errors++;
}

/* Same, at a location remembered from the parse pass. */
static void perr_at(struct ctx *c, const char *where, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr_at(struct ctx *c, const char *where, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_diag_addf(c->d, "%s: %s: %s", where, key, msg);
    c->errors++;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    size_t ncap;
    void *a;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 8;
    a = realloc(*arr, ncap * elem);
    if (!a)
        return OB_ENOMEM;
    memset((char *)a + *cap * elem, 0, (ncap - *cap) * elem);
    *arr = a;
    *cap = ncap;
    return 0;
}

static void strv_release(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static bool strv_has(const struct strv *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], v))
            return true;
    return false;
}

/* Appends v unless already present. Returns 0, OB_E2BIG or OB_ENOMEM. */
static int strv_add(struct strv *s, const char *v, size_t limit)
{
    char **nv;

    if (strv_has(s, v))
        return 0;
    if (s->n >= limit)
        return OB_E2BIG;
    nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
    if (!nv)
        return OB_ENOMEM;
    s->v = nv;
    s->v[s->n++] = ob_xstrdup(v);
    if (!strcmp(v, "*"))
        s->any = true;
    return 0;
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= NAME_MAX_LEN && !has_ctl(s);
}

static bool valid_group_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* "platform:id": a lowercase platform name, a colon, an id without spaces. */
static bool valid_user_id(const char *s)
{
    size_t plen = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");

    if (plen == 0 || s[plen] != ':' || !s[plen + 1])
        return false;
    if (plen == 5 && !strncmp(s, "group", 5))
        return false;
    for (const char *q = s + plen + 1; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return false;
    return strlen(s) <= VALUE_MAX_LEN;
}

static bool known_action(const struct ctx *c, const char *name)
{
    if (!c->cat || !strcmp(name, "*") || !strcmp(name, "help"))
        return true;
    return ob_catalog_find(c->cat, name) != NULL;
}

/* Scalar config value as text: strings as they are, numbers and booleans as
 * YAML would print them. Returns false for anything else. */
static bool scalar_text(const cJSON *n, char *buf, size_t len)
{
    if (cJSON_IsString(n) && n->valuestring) {
        if (strlen(n->valuestring) >= len)
            return false;
        ob_strlcpy(buf, n->valuestring, len);
        return true;
    }
    if (cJSON_IsBool(n)) {
        ob_strlcpy(buf, cJSON_IsTrue(n) ? "true" : "false", len);
        return true;
    }
    if (cJSON_IsNumber(n)) {
        ob_json_num_text(n->valuedouble, buf, len);
        return true;
    }
    return false;
}

enum list_kind { LIST_PLAIN, LIST_USERS, LIST_GROUPS, LIST_ACTIONS };

/* Reads obj[key] (a string or a list of strings) into out. Missing keys leave
 * out unset. Reports every bad entry. */
static void read_list(struct ctx *c, const cJSON *obj, const char *key, const char *what,
                      enum list_kind kind, struct strv *out)
{
    const cJSON *node = NULL, *it;
    int rc;

    if (ob_cfg_strlist(c->cfg, obj, key, false, &node, c->d) < 0) {
        c->errors++;
        return;
    }
    if (!node)
        return;
    out->set = true;
    if (cJSON_IsArray(node) && cJSON_GetArraySize(node) == 0) {
        perr(c, node, key, "empty list in %s (leave the key out to match anything)", what);
        return;
    }
    it = cJSON_IsArray(node) ? node->child : node;
    for (; it; it = cJSON_IsArray(node) ? it->next : NULL) {
        const char *v = cJSON_IsString(it) ? it->valuestring : NULL;

        if (!v) {
            perr(c, it, key, "entries of %s must be strings", what);
            continue;
        }
        if (!*v || strlen(v) > VALUE_MAX_LEN || has_ctl(v)) {
            perr(c, it, key, "bad entry '%.64s' in %s", v, what);
            continue;
        }
        if (kind == LIST_USERS && !valid_user_id(v)) {
            perr(c, it, key, "'%.64s' in %s is not a user id of the form platform:id", v, what);
            continue;
        }
        if (kind == LIST_GROUPS && !valid_group_name(v)) {
            perr(c, it, key, "'%.64s' in %s is not a group name", v, what);
            continue;
        }
        if (kind == LIST_ACTIONS && !known_action(c, v)) {
            perr(c, it, key, "unknown action '%.64s' in %s", v, what);
            continue;
        }
        rc = strv_add(out, v, MAX_LIST);
        if (rc == OB_E2BIG) {
            perr(c, it, key, "more than %d entries in %s", MAX_LIST, what);
            return;
        }
        if (rc < 0) {
            c->oom = true;
            return;
        }
    }
}

/* Adds value and its normalised forms (one per catalog action in scope that
 * has parameter pname) to forms. scope NULL or "*" = every action. Returns
 * false when the catalog knows the parameter but rejects the value. */
static bool add_param_value(struct ctx *c, const struct strv *scope, const char *pname,
                            const char *value, struct strv *forms, bool *param_known, char *why,
                            size_t whylen)
{
    bool valid = false, seen = false;

    *param_known = false;
    if (strv_add(forms, value, MAX_LIST) < 0)
        c->oom = true;
    if (!c->cat)
        return true;
    for (size_t i = 0; i < c->cat->n; i++) {
        const struct ob_action *a = &c->cat->actions[i];
        char norm[256], w[200];

        if (scope && scope->set && !scope->any && !strv_has(scope, a->name))
            continue;
        for (size_t j = 0; j < a->nparams; j++) {
            if (strcmp(a->params[j].name, pname))
                continue;
            seen = true;
            if (ob_param_validate(&a->params[j], value, norm, sizeof(norm), w, sizeof(w)) == 0) {
                valid = true;
                if (strv_add(forms, norm, MAX_LIST) < 0)
                    c->oom = true;
            } else if (why[0] == '\0') {
                ob_strlcpy(why, w, whylen);
            }
        }
    }
    *param_known = seen;
    return valid || !seen;
}

/* ---- parse pass --------------------------------------------------------- */

static void parse_group(struct ctx *c, const cJSON *node)
{
    struct ob_policy *p = c->p;
    const char *name = node->string ? node->string : "";
    struct pgroup *g;
    const cJSON *it;
    char key[80];

    snprintf(key, sizeof(key), "groups.%.48s", name);
    if (!valid_group_name(name)) {
        perr(c, node, "groups", "bad group name '%.64s' (letters, digits, _ . -, up to %d)", name,
             NAME_MAX_LEN);
        return;
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        if (!strcmp(p->groups[i].name, name)) {
            perr(c, node, key, "duplicate group '%s' (first defined at %s)", name,
                 p->groups[i].where);
            return;
        }
    }
    if (!cJSON_IsArray(node) && !cJSON_IsString(node)) {
        perr(c, node, key, "a group is a list of user ids and group:NAME entries");
        return;
    }
    if (p->ngroups >= MAX_GROUPS) {
        perr(c, node, key, "more than %d groups", MAX_GROUPS);
        return;
    }
    if (grow((void **)&p->groups, &p->cgroups, p->ngroups, sizeof(*g)) < 0) {
        c->oom = true;
        return;
    }
    g = &p->groups[p->ngroups++];
    memset(g, 0, sizeof(*g));
    g->name = ob_xstrdup(name);
    ob_config_where(c->cfg, node, g->where, sizeof(g->where));
    g->members.set = true;
    it = cJSON_IsArray(node) ? node->child : node;
    for (; it; it = cJSON_IsArray(node) ? it->next : NULL) {
        const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
        int rc;

        if (!v) {
            perr(c, it, key, "members must be strings");
            continue;
        }
        if (!strncmp(v, "group:", 6)) {
            if (!valid_group_name(v + 6)) {
                perr(c, it, key, "'%.64s' does not name a group", v);
                continue;
            }
            if (!strcmp(v + 6, name)) {
                perr(c, it, key, "group '%s' includes itself", name);
                continue;
            }
        } else if (!valid_user_id(v)) {
            perr(c, it, key, "'%.64s' is not a user id of the form platform:id (or group:NAME)", v);
            continue;
        }
        rc = strv_add(&g->members, v, MAX_LIST);
        if (rc == OB_E2BIG) {
            perr(c, it, key, "more than %d members", MAX_LIST);
            break;
        }
        if (rc < 0) {
            c->oom = true;
            break;
        }
    }
}

static int parse_days(struct ctx *c, const cJSON *obj, unsigned *mask)
{
    const cJSON *node = NULL, *it;

    *mask = 0x7f;
    if (ob_cfg_strlist(c->cfg, obj, "days", false, &node, c->d) < 0) {
        c->errors++;
        return -1;
    }
    if (!node)
        return 0;
    *mask = 0;
    it = cJSON_IsArray(node) ? node->child : node;
    for (; it; it = cJSON_IsArray(node) ? it->next : NULL) {
        const char *v = cJSON_IsString(it) ? it->valuestring : "";
        int a = -1, b = -1;

        for (int i = 0; i < 7; i++) {
            if (!strncasecmp(v, day_names[i], 3))
                a = i;
            if (strlen(v) == 7 && v[3] == '-' && !strcasecmp(v + 4, day_names[i]))
                b = i;
        }
        if (!strcmp(v, "*")) {
            *mask = 0x7f;
            continue;
        }
        if (a < 0 || (strlen(v) != 3 && (strlen(v) != 7 || b < 0))) {
            perr(c, it, "days", "'%.32s' is not a day (mon..sun, or a range like mon-fri)", v);
            return -1;
        }
        if (b < 0)
            b = a;
        for (int i = a;; i = (i + 1) % 7) {
            *mask |= 1u << i;
            if (i == b)
                break;
        }
    }
    if (!*mask) {
        perr(c, node, "days", "no days given");
        return -1;
    }
    return 0;
}

/* "HH:MM" (UTC) into seconds since midnight. "24:00" is the end of the day. */
static int parse_hhmm(struct ctx *c, const cJSON *obj, const char *key, int *out_s)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s;
    int h, m;

    if (!n) {
        perr(c, obj, key, "missing (a time of day, \"HH:MM\" UTC)");
        return -1;
    }
    s = cJSON_IsString(n) ? n->valuestring : NULL;
    if (!s || strlen(s) != 5 || s[2] != ':' || strspn(s, "0123456789:") != 5) {
        perr(c, n, key, "must be a quoted time of day \"HH:MM\" (UTC)");
        return -1;
    }
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0)) {
        perr(c, n, key, "'%s' is not a time of day (00:00 to 23:59, or 24:00)", s);
        return -1;
    }
    *out_s = (h * 60 + m) * 60;
    return 0;
}

static void parse_freeze(struct ctx *c, const cJSON *obj)
{
    static const char *const keys[] = {"name",   "days",   "from", "to",
                                       "except", "reason", "env",  NULL};
    struct ob_policy *p = c->p;
    struct pfreeze f;
    const char *name = NULL, *reason = NULL;
    int before = c->errors;

    memset(&f, 0, sizeof(f));
    if (!cJSON_IsObject(obj)) {
        perr(c, obj, "freeze", "each freeze window is a mapping");
        return;
    }
    if (ob_cfg_check_keys(c->cfg, obj, keys, "freeze window", c->d) > 0)
        c->errors++;
    if (ob_cfg_string(c->cfg, obj, "name", true, NULL, &name, c->d) < 0) {
        c->errors++;
        name = NULL;
    } else if (!valid_name(name)) {
        perr(c, obj, "name", "bad freeze name (1 to %d printable characters)", NAME_MAX_LEN);
    } else {
        for (size_t i = 0; i < p->nfreezes; i++)
            if (!strcmp(p->freezes[i].name, name))
                perr(c, obj, "name", "duplicate freeze window '%s' (first at %s)", name,
                     p->freezes[i].where);
    }
    parse_days(c, obj, &f.days);
    if (parse_hhmm(c, obj, "from", &f.from_s) == 0 && parse_hhmm(c, obj, "to", &f.to_s) == 0) {
        if (f.to_s == 23 * 3600 + 59 * 60)
            f.to_s = DAY_S; /* "23:59" means until midnight */
        if (f.from_s == DAY_S)
            perr(c, obj, "from", "24:00 cannot start a window; use 00:00");
        else if (f.from_s == f.to_s)
            perr(c, obj, "to", "from and to are equal (use 00:00 to 24:00 for a whole day)");
    }
    if (ob_cfg_string(c->cfg, obj, "reason", false, NULL, &reason, c->d) < 0)
        c->errors++;
    else if (reason && (strlen(reason) > REASON_MAX_LEN || has_ctl(reason)))
        perr(c, obj, "reason", "reason must be one line of at most %d bytes", REASON_MAX_LEN);
    read_list(c, obj, "except", "freeze except", LIST_ACTIONS, &f.except);
    read_list(c, obj, "env", "freeze env", LIST_PLAIN, &f.env);
    if (f.env.set && !c->oom) {
        /* Normalise like request values ("production" -> "prod"). */
        struct strv forms = {0};

        for (size_t i = 0; i < f.env.n; i++) {
            char why[200] = "";
            bool known;

            if (!add_param_value(c, NULL, "env", f.env.v[i], &forms, &known, why, sizeof(why)))
                perr(c, obj, "env", "'%.64s' is not a valid env: %s", f.env.v[i], why);
        }
        forms.set = true;
        strv_release(&f.env);
        f.env = forms;
    }
    if (c->errors != before || c->oom || !name)
        goto fail;
    if (p->nfreezes >= MAX_FREEZES) {
        perr(c, obj, "freeze", "more than %d freeze windows", MAX_FREEZES);
        goto fail;
    }
    if (grow((void **)&p->freezes, &p->cfreezes, p->nfreezes, sizeof(f)) < 0) {
        c->oom = true;
        goto fail;
    }
    f.name = ob_xstrdup(name);
    f.reason = reason ? ob_xstrdup(reason) : NULL;
    ob_config_where(c->cfg, obj, f.where, sizeof(f.where));
    p->freezes[p->nfreezes++] = f;
    return;
fail:
    strv_release(&f.except);
    strv_release(&f.env);
}

static void parse_limit(struct ctx *c, const cJSON *obj)
{
    static const char *const keys[] = {"name", "action", "max", "per", NULL};
    struct ob_policy *p = c->p;
    struct plimit l;
    const char *name = NULL;
    int before = c->errors;

    memset(&l, 0, sizeof(l));
    if (!cJSON_IsObject(obj)) {
        perr(c, obj, "rate_limits", "each rate limit is a mapping");
        return;
    }
    if (ob_cfg_check_keys(c->cfg, obj, keys, "rate limit", c->d) > 0)
        c->errors++;
    if (ob_cfg_string(c->cfg, obj, "name", true, NULL, &name, c->d) < 0) {
        c->errors++;
        name = NULL;
    } else if (!valid_name(name)) {
        perr(c, obj, "name", "bad rate limit name (1 to %d printable characters)", NAME_MAX_LEN);
    } else {
        for (size_t i = 0; i < p->nlimits; i++)
            if (!strcmp(p->limits[i].name, name))
                perr(c, obj, "name", "duplicate rate limit '%s' (first at %s)", name,
                     p->limits[i].where);
    }
    read_list(c, obj, "action", "rate limit action", LIST_ACTIONS, &l.actions);
    if (!l.actions.set) {
        l.actions.set = true;
        l.actions.any = true;
    }
    if (ob_cfg_int(c->cfg, obj, "max", true, 0, 1, 1000000, &l.max, c->d) < 0)
        c->errors++;
    if (ob_cfg_duration(c->cfg, obj, "per", true, 0, &l.per_ms, c->d) < 0)
        c->errors++;
    else if (l.per_ms < 1000 || l.per_ms > 31LL * DAY_S * 1000)
        perr(c, obj, "per", "must be between 1s and 31d");
    if (c->errors != before || c->oom || !name)
        goto fail;
    if (p->nlimits >= MAX_LIMITS) {
        perr(c, obj, "rate_limits", "more than %d rate limits", MAX_LIMITS);
        goto fail;
    }
    if (grow((void **)&p->limits, &p->climits, p->nlimits, sizeof(l)) < 0) {
        c->oom = true;
        goto fail;
    }
    l.name = ob_xstrdup(name);
    ob_config_where(c->cfg, obj, l.where, sizeof(l.where));
    p->limits[p->nlimits++] = l;
    return;
fail:
    strv_release(&l.actions);
}

static void rule_release(struct prule *r)
{
    free(r->name);
    strv_release(&r->users);
    strv_release(&r->groups);
    strv_release(&r->platforms);
    strv_release(&r->channels);
    strv_release(&r->actions);
    for (size_t i = 0; i < r->nparams; i++) {
        free(r->params[i].name);
        strv_release(&r->params[i].forms);
    }
    free(r->params);
    free(r->reason);
    free(r->approvers);
    memset(r, 0, sizeof(*r));
}

static void parse_params(struct ctx *c, const cJSON *obj, struct prule *r, const char *what)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(obj, "params"), *kv;
    size_t n = 0;

    if (!node)
        return;
    if (!cJSON_IsObject(node)) {
        perr(c, node, "params", "must be a mapping of parameter names to values in %s", what);
        return;
    }
    for (kv = node->child; kv; kv = kv->next)
        n++;
    if (n == 0 || n > OB_MAX_PARAMS) {
        perr(c, node, "params", "between 1 and %d parameters in %s", OB_MAX_PARAMS, what);
        return;
    }
    r->params = ob_xcalloc(n, sizeof(*r->params));
    for (kv = node->child; kv; kv = kv->next) {
        struct pparam *pp = &r->params[r->nparams];
        const cJSON *it;
        bool is_list = cJSON_IsArray(kv);
        char key[80];

        snprintf(key, sizeof(key), "params.%.48s", kv->string ? kv->string : "");
        if (!kv->string || !*kv->string ||
            strlen(kv->string) >= sizeof(((struct ob_kv *)0)->name)) {
            perr(c, kv, "params", "bad parameter name in %s", what);
            continue;
        }
        if (is_list && cJSON_GetArraySize(kv) == 0) {
            perr(c, kv, key, "empty list of values in %s", what);
            continue;
        }
        pp->name = ob_xstrdup(kv->string);
        pp->forms.set = true;
        r->nparams++;
        it = is_list ? kv->child : kv;
        for (; it; it = is_list ? it->next : NULL) {
            char val[VALUE_MAX_LEN + 1], why[200] = "";
            bool known = false;

            if (!scalar_text(it, val, sizeof(val)) || !*val || has_ctl(val)) {
                perr(c, it, key, "values must be non-empty scalars (or \"*\") in %s", what);
                continue;
            }
            if (!strcmp(val, "*")) {
                pp->any = true;
                continue;
            }
            if (!add_param_value(c, &r->actions, pp->name, val, &pp->forms, &known, why,
                                 sizeof(why)))
                perr(c, it, key, "'%.64s' is not a valid value in %s: %s", val, what, why);
            else if (c->cat && !known)
                perr(c, it, key, "no action %s has a parameter '%s'",
                     r->actions.set && !r->actions.any ? "of this rule" : "in the catalog",
                     pp->name);
        }
    }
}

static void parse_rule(struct ctx *c, const cJSON *obj, size_t index)
{
    static const char *const keys[] = {"name",   "user",   "group",      "platform", "channel",
                                       "action", "params", "effect",     "reason",   "approvers",
                                       "count",  "ttl",    "allow_self", NULL};
    struct ob_policy *p = c->p;
    struct prule r;
    const char *name = NULL, *effect = NULL, *reason = NULL, *approvers = NULL;
    char what[96];
    int64_t count = 1;
    int before = c->errors;

    memset(&r, 0, sizeof(r));
    if (!cJSON_IsObject(obj)) {
        perr(c, obj, "rules", "each rule is a mapping");
        return;
    }
    if (ob_cfg_string(c->cfg, obj, "name", true, NULL, &name, c->d) < 0) {
        c->errors++;
        name = NULL;
        snprintf(what, sizeof(what), "rule #%zu", index + 1);
    } else if (!valid_name(name)) {
        perr(c, obj, "name", "bad rule name (1 to %d printable characters)", NAME_MAX_LEN);
        name = NULL;
        snprintf(what, sizeof(what), "rule #%zu", index + 1);
    } else {
        snprintf(what, sizeof(what), "rule '%s'", name);
        for (size_t i = 0; i < p->nrules; i++)
            if (!strcmp(p->rules[i].name, name))
                perr(c, obj, "name", "duplicate rule name '%s' (first at %s)", name,
                     p->rules[i].where);
    }
    if (ob_cfg_check_keys(c->cfg, obj, keys, what, c->d) > 0)
        c->errors++;
    read_list(c, obj, "user", what, LIST_USERS, &r.users);
    read_list(c, obj, "group", what, LIST_GROUPS, &r.groups);
    read_list(c, obj, "platform", what, LIST_PLAIN, &r.platforms);
    read_list(c, obj, "channel", what, LIST_PLAIN, &r.channels);
    read_list(c, obj, "action", what, LIST_ACTIONS, &r.actions);
    parse_params(c, obj, &r, what);

    if (ob_cfg_string(c->cfg, obj, "effect", true, NULL, &effect, c->d) < 0) {
        c->errors++;
    } else if (!strcmp(effect, "allow")) {
        r.effect = OB_EFFECT_ALLOW;
    } else if (!strcmp(effect, "deny")) {
        r.effect = OB_EFFECT_DENY;
    } else if (!strcmp(effect, "approve")) {
        r.effect = OB_EFFECT_APPROVE;
    } else {
        perr(c, cJSON_GetObjectItemCaseSensitive(obj, "effect"), "effect",
             "'%.32s' is not an effect (allow, deny or approve) in %s", effect, what);
        effect = NULL;
    }
    if (ob_cfg_string(c->cfg, obj, "reason", false, NULL, &reason, c->d) < 0)
        c->errors++;
    else if (reason && (strlen(reason) > REASON_MAX_LEN || has_ctl(reason)))
        perr(c, obj, "reason", "reason must be one line of at most %d bytes", REASON_MAX_LEN);

    if (effect && r.effect == OB_EFFECT_APPROVE) {
        if (ob_cfg_string(c->cfg, obj, "approvers", true, NULL, &approvers, c->d) < 0)
            c->errors++;
        else if (!valid_group_name(approvers))
            perr(c, obj, "approvers", "'%.64s' is not a group name in %s", approvers, what);
        if (ob_cfg_int(c->cfg, obj, "count", false, 1, 1, MAX_COUNT, &count, c->d) < 0)
            c->errors++;
        if (ob_cfg_duration(c->cfg, obj, "ttl", false, 3600000, &r.ttl_ms, c->d) < 0)
            c->errors++;
        else if (r.ttl_ms < 1000 || r.ttl_ms > 7LL * DAY_S * 1000)
            perr(c, obj, "ttl", "must be between 1s and 7d in %s", what);
        if (ob_cfg_bool(c->cfg, obj, "allow_self", false, &r.allow_self, c->d) < 0)
            c->errors++;
        r.count = (int)count;
    } else if (effect) {
        static const char *const approve_only[] = {"approvers", "count", "ttl", "allow_self"};

        for (size_t i = 0; i < 4; i++)
            if (cJSON_GetObjectItemCaseSensitive(obj, approve_only[i]))
                perr(c, cJSON_GetObjectItemCaseSensitive(obj, approve_only[i]), approve_only[i],
                     "only used with effect: approve (%s has effect: %s)", what, effect);
    }
    if (c->errors != before || c->oom || !name)
        goto fail;
    if (p->nrules >= MAX_RULES) {
        perr(c, obj, "rules", "more than %d rules", MAX_RULES);
        goto fail;
    }
    if (grow((void **)&p->rules, &p->crules, p->nrules, sizeof(r)) < 0) {
        c->oom = true;
        goto fail;
    }
    r.name = ob_xstrdup(name);
    r.reason = reason ? ob_xstrdup(reason) : NULL;
    r.approvers = approvers ? ob_xstrdup(approvers) : NULL;
    ob_config_where(c->cfg, obj, r.where, sizeof(r.where));
    p->rules[p->nrules++] = r;
    return;
fail:
    rule_release(&r);
}

static void parse_doc(struct ctx *c, const cJSON *doc)
{
    static const char *const keys[] = {"groups", "freeze", "rate_limits", "rules", NULL};
    const cJSON *n, *it;
    size_t i = 0;

    if (!doc || cJSON_IsNull(doc))
        return; /* an empty file */
    if (!cJSON_IsObject(doc)) {
        perr(c, doc, "policy",
             "a policy document is a mapping (groups, freeze, rate_limits, "
             "rules)");
        return;
    }
    if (ob_cfg_check_keys(c->cfg, doc, keys, "policy", c->d) > 0)
        c->errors++;
    n = cJSON_GetObjectItemCaseSensitive(doc, "groups");
    if (n && !cJSON_IsObject(n))
        perr(c, n, "groups", "must be a mapping of group names to member lists");
    else if (n)
        for (it = n->child; it && !c->oom; it = it->next)
            parse_group(c, it);
    n = cJSON_GetObjectItemCaseSensitive(doc, "freeze");
    if (n && !cJSON_IsArray(n))
        perr(c, n, "freeze", "must be a list of freeze windows");
    else if (n)
        for (it = n->child; it && !c->oom; it = it->next)
            parse_freeze(c, it);
    n = cJSON_GetObjectItemCaseSensitive(doc, "rate_limits");
    if (n && !cJSON_IsArray(n))
        perr(c, n, "rate_limits", "must be a list of rate limits");
    else if (n)
        for (it = n->child; it && !c->oom; it = it->next)
            parse_limit(c, it);
    n = cJSON_GetObjectItemCaseSensitive(doc, "rules");
    if (n && !cJSON_IsArray(n))
        perr(c, n, "rules", "must be a list of rules");
    else if (n)
        for (it = n->child; it && !c->oom; it = it->next)
            parse_rule(c, it, i++);
}

/* ---- link pass ------------------------------------------------------------ */

static struct pgroup *find_group(const struct ob_policy *p, const char *name)
{
    for (size_t i = 0; p && i < p->ngroups; i++)
        if (!strcmp(p->groups[i].name, name))
            return &p->groups[i];
    return NULL;
}

/* Depth-first walk: 0 unvisited, 1 on the stack, 2 done. Returns false on a
 * cycle and writes the path into path. */
static bool group_acyclic(struct ob_policy *p, struct pgroup *g, char *path, size_t len, int depth)
{
    if (g->mark == 2)
        return true;
    if (g->mark == 1 || depth > MAX_NESTING) {
        snprintf(path, len, "%s", g->name);
        return false;
    }
    g->mark = 1;
    for (size_t i = 0; i < g->members.n; i++) {
        struct pgroup *sub;

        if (strncmp(g->members.v[i], "group:", 6))
            continue;
        sub = find_group(p, g->members.v[i] + 6);
        if (sub && !group_acyclic(p, sub, path, len, depth + 1)) {
            size_t used = strlen(path);

            if (used + strlen(g->name) + 5 < len) {
                memmove(path + strlen(g->name) + 4, path, used + 1);
                memcpy(path, g->name, strlen(g->name));
                memcpy(path + strlen(g->name), " -> ", 4);
            }
            g->mark = 2;
            return false;
        }
    }
    g->mark = 2;
    return true;
}

static int flatten(struct ob_policy *p, const struct pgroup *g, struct strv *out, int depth)
{
    if (depth > MAX_NESTING)
        return OB_EINVAL;
    for (size_t i = 0; i < g->members.n; i++) {
        const char *m = g->members.v[i];
        int rc;

        if (!strncmp(m, "group:", 6)) {
            const struct pgroup *sub = find_group(p, m + 6);

            rc = sub ? flatten(p, sub, out, depth + 1) : 0;
        } else {
            rc = strv_add(out, m, MAX_FLAT);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Resolves names for groups from g0 and rules from r0 on (the ones this call
 * added) and re-flattens every group. */
static void link_policy(struct ctx *c, size_t g0, size_t r0)
{
    struct ob_policy *p = c->p;
    bool cycle = false;

    for (size_t i = g0; i < p->ngroups; i++) {
        struct pgroup *g = &p->groups[i];

        for (size_t j = 0; j < g->members.n; j++)
            if (!strncmp(g->members.v[j], "group:", 6) && !find_group(p, g->members.v[j] + 6))
                perr_at(c, g->where, "groups", "group '%s' includes unknown group '%s'", g->name,
                        g->members.v[j] + 6);
    }
    for (size_t i = 0; i < p->ngroups; i++)
        p->groups[i].mark = 0;
    for (size_t i = 0; i < p->ngroups && !cycle; i++) {
        char path[512] = "";

        if (!group_acyclic(p, &p->groups[i], path, sizeof(path), 0)) {
            perr_at(c, p->groups[i].where, "groups", "group cycle: %s", path);
            cycle = true;
        }
    }
    if (!cycle) {
        for (size_t i = 0; i < p->ngroups; i++) {
            struct pgroup *g = &p->groups[i];
            int rc;

            strv_release(&g->flat);
            g->flat.set = true;
            rc = flatten(p, g, &g->flat, 0);
            if (rc == OB_ENOMEM)
                c->oom = true;
            else if (rc < 0)
                perr_at(c, g->where, "groups", "group '%s' has more than %d members", g->name,
                        MAX_FLAT);
        }
    }
    for (size_t i = r0; i < p->nrules; i++) {
        struct prule *r = &p->rules[i];

        for (size_t j = 0; j < r->groups.n; j++)
            if (!find_group(p, r->groups.v[j]))
                perr_at(c, r->where, "group", "unknown group '%s' in rule '%s'", r->groups.v[j],
                        r->name);
        if (r->effect == OB_EFFECT_APPROVE) {
            const struct pgroup *ag = find_group(p, r->approvers);

            if (!ag)
                perr_at(c, r->where, "approvers", "unknown group '%s' in rule '%s'", r->approvers,
                        r->name);
            else if (!cycle && (size_t)r->count > ag->flat.n)
                perr_at(c, r->where, "count",
                        "rule '%s' needs %d approvals but group '%s' has %zu member%s", r->name,
                        r->count, ag->name, ag->flat.n, ag->flat.n == 1 ? "" : "s");
        }
    }
}

/* ---- lifecycle -------------------------------------------------------- */

static void truncate_policy(struct ob_policy *p, size_t ng, size_t nr, size_t nf, size_t nl)
{
    while (p->ngroups > ng) {
        struct pgroup *g = &p->groups[--p->ngroups];

        free(g->name);
        strv_release(&g->members);
        strv_release(&g->flat);
    }
    while (p->nrules > nr)
        rule_release(&p->rules[--p->nrules]);
    while (p->nfreezes > nf) {
        struct pfreeze *f = &p->freezes[--p->nfreezes];

        free(f->name);
        free(f->reason);
        strv_release(&f->except);
        strv_release(&f->env);
    }
    while (p->nlimits > nl) {
        struct plimit *l = &p->limits[--p->nlimits];

        free(l->name);
        strv_release(&l->actions);
    }
}

void ob_policy_free(struct ob_policy *p)
{
    if (!p)
        return;
    truncate_policy(p, 0, 0, 0, 0);
    free(p->groups);
    free(p->rules);
    free(p->freezes);
    free(p->limits);
    free(p);
}

static int finish(struct ctx *c, size_t ng, size_t nr, size_t nf, size_t nl)
{
    if (!c->oom)
        link_policy(c, ng, nr);
    if (c->oom) {
        ob_diag_addf(c->d, "policy: out of memory");
        return OB_ENOMEM;
    }
    if (c->errors) {
        truncate_policy(c->p, ng, nr, nf, nl);
        /* Re-flatten what is left so that the policy stays consistent. */
        for (size_t i = 0; i < c->p->ngroups; i++) {
            strv_release(&c->p->groups[i].flat);
            c->p->groups[i].flat.set = true;
            flatten(c->p, &c->p->groups[i], &c->p->groups[i].flat, 0);
        }
        return OB_ECONFIG;
    }
    return 0;
}

int ob_policy_add_json(struct ob_policy **out, const struct ob_config *cfg,
                       const struct ob_catalog *cat, const cJSON *doc, struct ob_diag *d)
{
    struct ctx c = {.cfg = cfg, .cat = cat, .d = d};
    size_t ng, nr, nf, nl;

    if (!out)
        return OB_EINVAL;
    if (!*out)
        *out = ob_xcalloc(1, sizeof(**out));
    c.p = *out;
    ng = c.p->ngroups;
    nr = c.p->nrules;
    nf = c.p->nfreezes;
    nl = c.p->nlimits;
    parse_doc(&c, doc);
    return finish(&c, ng, nr, nf, nl);
}

int ob_policy_load(struct ob_policy **out, const struct ob_config *cfg,
                   const struct ob_catalog *cat, struct ob_diag *d)
{
    struct ctx c = {.cfg = cfg, .cat = cat, .d = d};
    const struct ob_config_doc *docs;
    size_t n = 0;
    int rc;

    if (!out)
        return OB_EINVAL;
    *out = NULL;
    c.p = ob_xcalloc(1, sizeof(*c.p));
    docs = cfg ? ob_config_includes(cfg, "policies", &n) : NULL;
    for (size_t i = 0; docs && i < n && !c.oom; i++)
        parse_doc(&c, docs[i].root);
    rc = finish(&c, 0, 0, 0, 0);
    if (rc < 0) {
        ob_policy_free(c.p);
        return rc;
    }
    if (c.p->nrules == 0)
        ob_warn("policy", "no policy rules loaded: every request will be denied");
    *out = c.p;
    return 0;
}

/* ---- decisions -------------------------------------------------------- */

static const char *req_platform(const struct ob_policy_request *req, char *buf, size_t len)
{
    const char *colon;

    if (req->platform)
        return req->platform;
    colon = req->user ? strchr(req->user, ':') : NULL;
    if (!colon || (size_t)(colon - req->user) >= len)
        return "";
    memcpy(buf, req->user, (size_t)(colon - req->user));
    buf[colon - req->user] = '\0';
    return buf;
}

static const char *req_param(const struct ob_policy_request *req, const char *name)
{
    for (size_t i = 0; req->params && i < req->nparams; i++)
        if (!strcmp(req->params[i].name, name))
            return req->params[i].value;
    return NULL;
}

static bool list_match(const struct strv *s, const char *v)
{
    if (!s->set || s->any)
        return true;
    return v && strv_has(s, v);
}

static bool in_group(const struct ob_policy *p, const char *group, const char *user)
{
    const struct pgroup *g = find_group(p, group);

    return g && user && strv_has(&g->flat, user);
}

static bool channel_match(const struct strv *s, const char *platform, const char *channel)
{
    char q[512];

    if (!s->set || s->any)
        return true;
    if (!channel)
        return false;
    if (strv_has(s, channel))
        return true;
    snprintf(q, sizeof(q), "%s:%s", platform, channel);
    return strv_has(s, q);
}

/* Who / where-platform / what: the part of a rule may_use also checks. */
static bool rule_matches_who(const struct ob_policy *p, const struct prule *r, const char *user,
                             const char *platform, const char *action)
{
    if (!list_match(&r->users, user) || !list_match(&r->platforms, platform) ||
        !list_match(&r->actions, action))
        return false;
    if (r->groups.set) {
        bool found = false;

        for (size_t i = 0; i < r->groups.n && !found; i++)
            found = in_group(p, r->groups.v[i], user);
        if (!found)
            return false;
    }
    return true;
}

static bool rule_matches(const struct ob_policy *p, const struct prule *r,
                         const struct ob_policy_request *req, const char *platform)
{
    if (!rule_matches_who(p, r, req->user, platform, req->action))
        return false;
    if (!channel_match(&r->channels, platform, req->channel))
        return false;
    for (size_t i = 0; i < r->nparams; i++) {
        const char *v = req_param(req, r->params[i].name);

        if (!v)
            return false;
        if (!r->params[i].any && !strv_has(&r->params[i].forms, v))
            return false;
    }
    return true;
}

static void format_utc(int64_t s, char *buf, size_t len)
{
    time_t t = (time_t)s;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%s %04d-%02d-%02d %02d:%02d UTC", day_names[(tm.tm_wday + 6) % 7],
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/* Whether now_ms falls in f; *end_s is when that window closes. */
static bool freeze_active(const struct pfreeze *f, int64_t now_ms, int64_t *end_s)
{
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    int64_t day = now_s >= 0 ? now_s / DAY_S : -((-now_s + DAY_S - 1) / DAY_S);
    int64_t tod = now_s - day * DAY_S;
    int wday = (int)(((day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int yday = (wday + 6) % 7;

    if (f->from_s < f->to_s) {
        if (!(f->days & (1u << wday)) || tod < f->from_s || tod >= f->to_s)
            return false;
        *end_s = day * DAY_S + f->to_s;
        return true;
    }
    /* Wraps past midnight: started today, or started yesterday. */
    if ((f->days & (1u << wday)) && tod >= f->from_s) {
        *end_s = (day + 1) * DAY_S + f->to_s;
        return true;
    }
    if ((f->days & (1u << yday)) && tod < f->to_s) {
        *end_s = day * DAY_S + f->to_s;
        return true;
    }
    return false;
}

static void set_deny(struct ob_decision *out, const char *rule_fmt, const char *name,
                     const char *where)
{
    out->effect = OB_EFFECT_DENY;
    snprintf(out->rule, sizeof(out->rule), rule_fmt, name);
    ob_strlcpy(out->where, where, sizeof(out->where));
}

void ob_policy_decide(const struct ob_policy *p, const struct ob_policy_request *req,
                      ob_policy_count_cb count_cb, void *count_data, struct ob_decision *out)
{
    const char *user = req->user ? req->user : "";
    const char *action = req->action ? req->action : "";
    char pbuf[64], pw[32];
    const char *platform = req_platform(req, pbuf, sizeof(pbuf));
    const struct prule *r = NULL;

    memset(out, 0, sizeof(*out));
    out->effect = OB_EFFECT_DENY;
    out->count = 1;
    out->ttl_ms = 3600000;
    for (size_t i = 0; p && !req->is_read && i < p->nfreezes; i++) {
        const struct pfreeze *f = &p->freezes[i];
        const char *env;
        int64_t end_s;
        char until[48];

        if (strv_has(&f->except, action))
            continue;
        if (f->env.set) {
            env = req_param(req, "env");
            if (!env || !strv_has(&f->env, env))
                continue;
        }
        if (!freeze_active(f, req->now_ms, &end_s))
            continue;
        format_utc(end_s, until, sizeof(until));
        set_deny(out, "freeze:%s", f->name, f->where);
        snprintf(out->reason, sizeof(out->reason), "change freeze '%s' until %s%s%s", f->name,
                 until, f->reason ? ": " : "", f->reason ? f->reason : "");
        return;
    }
    for (size_t i = 0; p && i < p->nrules && !r; i++)
        if (rule_matches(p, &p->rules[i], req, platform))
            r = &p->rules[i];
    if (!r) {
        set_deny(out, "%s", "default-deny", "");
        snprintf(out->reason, sizeof(out->reason), "no rule allows %.64s for %.64s", action, user);
        return;
    }
    out->effect = r->effect;
    ob_strlcpy(out->rule, r->name, sizeof(out->rule));
    ob_strlcpy(out->where, r->where, sizeof(out->where));
    if (r->effect == OB_EFFECT_DENY) {
        if (r->reason)
            ob_strlcpy(out->reason, r->reason, sizeof(out->reason));
        else
            snprintf(out->reason, sizeof(out->reason), "denied by rule %s", r->name);
        return;
    }
    if (r->effect == OB_EFFECT_APPROVE) {
        ob_strlcpy(out->approvers, r->approvers, sizeof(out->approvers));
        out->count = r->count;
        out->allow_self = r->allow_self;
        out->ttl_ms = r->ttl_ms;
        if (r->reason)
            ob_strlcpy(out->reason, r->reason, sizeof(out->reason));
        else
            snprintf(out->reason, sizeof(out->reason), "needs %d approval%s from %s (rule %s)",
                     r->count, r->count == 1 ? "" : "s", r->approvers, r->name);
    } else if (r->reason) {
        ob_strlcpy(out->reason, r->reason, sizeof(out->reason));
    } else {
        snprintf(out->reason, sizeof(out->reason), "allowed by rule %s", r->name);
    }
    for (size_t i = 0; count_cb && i < p->nlimits; i++) {
        const struct plimit *l = &p->limits[i];
        int n;

        if (!list_match(&l->actions, action))
            continue;
        n = count_cb(count_data, user, action, req->now_ms - l->per_ms);
        if (n >= 0 && n < l->max)
            continue;
        memset(out->approvers, 0, sizeof(out->approvers));
        out->count = 1;
        out->allow_self = false;
        out->ttl_ms = 3600000;
        set_deny(out, "rate-limit:%s", l->name, l->where);
        if (n < 0)
            snprintf(out->reason, sizeof(out->reason), "rate-limit check failed (%s)",
                     ob_strerror(n));
        else
            snprintf(out->reason, sizeof(out->reason),
                     "%d %.64s requests in the last %s (limit %lld)", n, action,
                     ob_duration_format(l->per_ms, pw, sizeof(pw)), (long long)l->max);
        return;
    }
}

bool ob_policy_in_group(const struct ob_policy *p, const char *group, const char *user)
{
    if (!group || !user)
        return false;
    if (!strncmp(group, "group:", 6))
        group += 6;
    return in_group(p, group, user);
}

const char *ob_policy_first_group(const struct ob_policy *p, const char *user)
{
    for (size_t i = 0; p && user && i < p->ngroups; i++)
        if (strv_has(&p->groups[i].flat, user))
            return p->groups[i].name;
    return NULL;
}

const char *ob_policy_group_members(const struct ob_policy *p, const char *group, char *buf,
                                    size_t len)
{
    const struct pgroup *g;
    size_t used = 0;

    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    g = group ? find_group(p, group) : NULL;
    for (size_t i = 0; g && i < g->flat.n; i++) {
        const char *sep = i ? ", " : "";
        size_t need = strlen(sep) + strlen(g->flat.v[i]);

        if (used + need >= len) {
            /* Mark the cut; "..." fits if len allows. */
            if (len > 4) {
                size_t at = used + 4 < len ? used : len - 4;

                memcpy(buf + at, "...", 4);
            }
            break;
        }
        memcpy(buf + used, sep, strlen(sep));
        memcpy(buf + used + strlen(sep), g->flat.v[i], strlen(g->flat.v[i]) + 1);
        used += need;
    }
    return buf;
}

bool ob_policy_may_use(const struct ob_policy *p, const char *user, const char *platform,
                       const char *action)
{
    struct ob_policy_request req = {.user = user, .platform = platform, .action = action};
    char pbuf[64];

    if (!p || !user || !action)
        return false;
    platform = req_platform(&req, pbuf, sizeof(pbuf));
    for (size_t i = 0; i < p->nrules; i++) {
        const struct prule *r = &p->rules[i];

        if (!rule_matches_who(p, r, user, platform, action))
            continue;
        if (r->effect != OB_EFFECT_DENY)
            return true;
        /* A deny that depends on params or channel may not apply. */
        if (r->nparams == 0 && (!r->channels.set || r->channels.any))
            return false;
    }
    return false;
}

void ob_policy_stats(const struct ob_policy *p, size_t *groups, size_t *rules, size_t *freezes,
                     size_t *limits)
{
    if (groups)
        *groups = p ? p->ngroups : 0;
    if (rules)
        *rules = p ? p->nrules : 0;
    if (freezes)
        *freezes = p ? p->nfreezes : 0;
    if (limits)
        *limits = p ? p->nlimits : 0;
}

const char *ob_effect_name(enum ob_effect e)
{
    switch (e) {
    case OB_EFFECT_DENY:
        return "deny";
    case OB_EFFECT_ALLOW:
        return "allow";
    case OB_EFFECT_APPROVE:
        return "approve";
    }
    return "unknown";
}
