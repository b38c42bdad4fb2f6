/* Diagnose and suggest, the pure part: the `diagnose:` settings, the
 * playbook (evidence, facts, thresholds, readings, rules) and the analysis
 * that turns evidence into a reading and proposals. See docs/DIAGNOSE.md. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose_int.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define MAX_FACTS 64
#define MAX_THRESHOLDS 32
#define MAX_READINGS 32
#define MAX_RULES 32
#define MAX_CLAUSES 8
#define MAX_ANY 8
#define NAME_LEN 64
#define TMPL_MAX 400

struct clause {
    struct dx_expr *any[MAX_ANY];
    size_t n;
};

struct when {
    struct clause c[MAX_CLAUSES];
    size_t n;
};

struct fact {
    char name[NAME_LEN];
    char ev[NAME_LEN]; /* from: EVIDENCE.KEY */
    char key[128];
    struct dx_expr *expr; /* or expr: */
    char unit[16];
};

struct threshold {
    char name[NAME_LEN];
    double v;
    char unit[16];
};

struct reading {
    struct when when;
    char say[TMPL_MAX];
    char otherwise[TMPL_MAX]; /* `else:` said when the condition is known false */
};

struct rule {
    char name[NAME_LEN];
    struct when when;
    const struct ob_action *action;
    struct ob_kv params[OB_MAX_PARAMS]; /* templates */
    size_t nparams;
    char reason[TMPL_MAX];
    char runbook[TMPL_MAX];
};

struct ob_diagnose {
    struct ob_dx_settings set;
    struct ob_dx_evidence_def ev[OB_DX_MAX_EVIDENCE];
    size_t nev;
    struct fact facts[MAX_FACTS];
    size_t nfacts;
    struct threshold thr[MAX_THRESHOLDS];
    size_t nthr;
    struct reading readings[MAX_READINGS];
    size_t nreadings;
    struct rule rules[MAX_RULES];
    size_t nrules;
    struct ob_runbooks *rb;
};

/* ---- loading ------------------------------------------------------------------ */

struct loader {
    const struct ob_config *cfg;
    const struct ob_catalog *cat;
    struct ob_diagnose *dg;
    struct ob_diag *d;
    int nerr;
};

static void __attribute__((format(printf, 4, 5)))
report(struct loader *ld, const cJSON *node, const char *key, const char *fmt, ...)
{
    char where[300], msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_diag_addf(ld->d, "%s: %s: %s", ob_config_where(ld->cfg, node, where, sizeof(where)), key,
                 msg);
    ld->nerr++;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static bool ident_ok(const char *s)
{
    size_t n = strlen(s);

    if (!n || n >= NAME_LEN || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

static bool known_name(const struct ob_diagnose *dg, const char *name, size_t nfacts)
{
    for (size_t i = 0; i < nfacts; i++)
        if (!strcmp(dg->facts[i].name, name))
            return true;
    for (size_t i = 0; i < dg->nthr; i++)
        if (!strcmp(dg->thr[i].name, name))
            return true;
    return false;
}

struct name_check {
    struct loader *ld;
    const cJSON *node;
    const char *key;
    size_t nfacts;
};

static void check_name(void *data, const char *name)
{
    struct name_check *nc = data;

    if (!known_name(nc->ld->dg, name, nc->nfacts))
        report(nc->ld, nc->node, nc->key, "'%s' is not a fact or threshold (defined before)", name);
}

static struct dx_expr *load_expr(struct loader *ld, const cJSON *node, const char *key,
                                 size_t nfacts)
{
    char why[256];
    struct dx_expr *e;
    struct name_check nc = {ld, node, key, nfacts};

    if (!cJSON_IsString(node)) {
        report(ld, node, key, "must be an expression string");
        return NULL;
    }
    e = dx_expr_parse(node->valuestring, why, sizeof(why));
    if (!e) {
        report(ld, node, key, "%s", why);
        return NULL;
    }
    dx_expr_names(e, check_name, &nc);
    return e;
}

/* when: "expr" | [ "expr" | {any: ["expr", …]}, … ] */
static void load_when(struct loader *ld, const cJSON *node, const char *key, struct when *w)
{
    const cJSON *it;

    if (!node) {
        report(ld, NULL, key, "when: is required");
        return;
    }
    if (cJSON_IsString(node)) {
        w->c[0].any[0] = load_expr(ld, node, key, ld->dg->nfacts);
        w->c[0].n = w->c[0].any[0] ? 1 : 0;
        w->n = 1;
        return;
    }
    if (!cJSON_IsArray(node) || cJSON_GetArraySize(node) == 0) {
        report(ld, node, key, "when: must be an expression or a non-empty list");
        return;
    }
    cJSON_ArrayForEach(it, node)
    {
        struct clause *c;
        const cJSON *any = get(it, "any"), *x;

        if (w->n == MAX_CLAUSES) {
            report(ld, it, key, "at most %d conditions", MAX_CLAUSES);
            return;
        }
        c = &w->c[w->n++];
        if (cJSON_IsString(it)) {
            c->any[0] = load_expr(ld, it, key, ld->dg->nfacts);
            c->n = c->any[0] ? 1 : 0;
            continue;
        }
        if (!cJSON_IsObject(it) || !cJSON_IsArray(any) || cJSON_GetArraySize(it) != 1) {
            report(ld, it, key, "a condition is an expression or {any: [expressions]}");
            continue;
        }
        cJSON_ArrayForEach(x, any)
        {
            struct dx_expr *e;

            if (c->n == MAX_ANY) {
                report(ld, x, key, "at most %d alternatives", MAX_ANY);
                break;
            }
            e = load_expr(ld, x, key, ld->dg->nfacts);
            if (e)
                c->any[c->n++] = e;
        }
    }
}

static void free_when(struct when *w)
{
    for (size_t i = 0; i < w->n; i++)
        for (size_t k = 0; k < w->c[i].n; k++)
            dx_expr_free(w->c[i].any[k]);
}

/* A template: {name} of a fact, a threshold, service, env or symptom. */
static void load_tmpl(struct loader *ld, const cJSON *node, const char *key, char *out, size_t len,
                      bool required)
{
    const char *s;

    out[0] = '\0';
    if (!node) {
        if (required)
            report(ld, NULL, key, "required");
        return;
    }
    if (!cJSON_IsString(node) && !cJSON_IsNumber(node)) {
        report(ld, node, key, "must be a string");
        return;
    }
    if (cJSON_IsNumber(node)) {
        snprintf(out, len, "%.15g", node->valuedouble);
        return;
    }
    if (strlen(node->valuestring) >= len) {
        report(ld, node, key, "longer than %zu bytes", len - 1);
        return;
    }
    ob_strlcpy(out, node->valuestring, len);
    for (s = out; (s = strchr(s, '{')) != NULL;) {
        const char *e = strchr(s, '}');
        char name[NAME_LEN];
        size_t n;

        if (!e) {
            report(ld, node, key, "unclosed '{'");
            return;
        }
        n = (size_t)(e - s - 1);
        if (n == 0 || n >= sizeof(name)) {
            report(ld, node, key, "bad placeholder");
            return;
        }
        memcpy(name, s + 1, n);
        name[n] = '\0';
        if (strcmp(name, "service") && strcmp(name, "env") && strcmp(name, "symptom") &&
            !known_name(ld->dg, name, ld->dg->nfacts))
            report(ld, node, key, "{%s} is not a fact, threshold, service, env or symptom", name);
        s = e + 1;
    }
}

static void load_settings(struct loader *ld, const struct ob_llm_config *llm)
{
    static const char *const keys[] = {"runbooks", "budget", "max_proposals",
                                       "pick_ttl", "llm",    NULL};
    static const char *const llm_keys[] = {"narrative",    "connection", "prompt", "max_tokens",
                                           "token_budget", "timeout",    NULL};
    struct ob_dx_settings *set = &ld->dg->set;
    const cJSON *s = get(ob_config_root(ld->cfg), "diagnose"), *l;
    const char *rb = NULL, *conn = NULL, *prompt = NULL;
    int64_t v;
    bool narrative = true;

    set->budget_ms = 10000;
    set->max_proposals = 3;
    set->pick_ttl_ms = 30 * 60000;
    set->max_tokens = 300;
    set->token_budget = 3000;
    set->llm_timeout_ms = 8000;
    if (s && !cJSON_IsNull(s) && !cJSON_IsObject(s)) {
        report(ld, s, "diagnose", "expected a mapping");
        return;
    }
    if (s && cJSON_IsObject(s)) {
        ld->nerr += ob_cfg_check_keys(ld->cfg, s, keys, "diagnose", ld->d);
        if (ob_cfg_string(ld->cfg, s, "runbooks", false, NULL, &rb, ld->d))
            ld->nerr++;
        if (ob_cfg_duration(ld->cfg, s, "budget", false, 10000, &set->budget_ms, ld->d))
            ld->nerr++;
        else if (set->budget_ms < 1000 || set->budget_ms > 300000)
            report(ld, get(s, "budget"), "diagnose.budget", "must be between 1s and 5m");
        if (ob_cfg_int(ld->cfg, s, "max_proposals", false, 3, 1, OB_DX_MAX_PROPOSALS, &v, ld->d))
            ld->nerr++;
        else
            set->max_proposals = (int)v;
        if (ob_cfg_duration(ld->cfg, s, "pick_ttl", false, 30 * 60000, &set->pick_ttl_ms, ld->d))
            ld->nerr++;
        else if (set->pick_ttl_ms < 1000 || set->pick_ttl_ms > 7 * 86400000LL)
            report(ld, get(s, "pick_ttl"), "diagnose.pick_ttl", "must be between 1s and 7d");
        l = get(s, "llm");
        if (l && !cJSON_IsObject(l)) {
            report(ld, l, "diagnose.llm", "expected a mapping");
        } else if (l) {
            ld->nerr += ob_cfg_check_keys(ld->cfg, l, llm_keys, "diagnose.llm", ld->d);
            if (ob_cfg_bool(ld->cfg, l, "narrative", true, &narrative, ld->d))
                ld->nerr++;
            if (ob_cfg_string(ld->cfg, l, "connection", false, NULL, &conn, ld->d) ||
                ob_cfg_string(ld->cfg, l, "prompt", false, NULL, &prompt, ld->d))
                ld->nerr++;
            if (!ob_cfg_int(ld->cfg, l, "max_tokens", false, 300, 16, 4096, &v, ld->d))
                set->max_tokens = (int)v;
            else
                ld->nerr++;
            if (!ob_cfg_int(ld->cfg, l, "token_budget", false, 3000, 256, 200000, &v, ld->d))
                set->token_budget = (int)v;
            else
                ld->nerr++;
            if (ob_cfg_duration(ld->cfg, l, "timeout", false, 8000, &set->llm_timeout_ms, ld->d))
                ld->nerr++;
            else if (set->llm_timeout_ms < 100 || set->llm_timeout_ms > 120000)
                report(ld, get(l, "timeout"), "diagnose.llm.timeout",
                       "must be between 100ms and 2m");
            if (set->max_tokens >= set->token_budget)
                report(ld, get(l, "max_tokens"), "diagnose.llm.max_tokens",
                       "must be smaller than token_budget (%d)", set->token_budget);
        }
    }
    if (rb)
        set->runbooks_dir = ob_config_path(ld->cfg, rb);
    if (conn) {
        set->conn = ob_llm_conn_find(llm, conn);
        if (!set->conn)
            report(ld, get(get(s, "llm"), "connection"), "diagnose.llm.connection",
                   "unknown connection '%s'", conn);
    } else if (llm && llm->set.enabled) {
        set->conn = llm->set.conn;
    }
    set->narrative = narrative && set->conn;
    if (set->narrative) {
        char *path = ob_config_path(ld->cfg, prompt ? prompt : "../../intents/prompts/diagnose.md");

        if (!path || ob_llm_prompt_load(path, &set->prompt, set->prompt_version)) {
            if (prompt)
                report(ld, get(get(s, "llm"), "prompt"), "diagnose.llm.prompt", "cannot read %s",
                       path ? path : prompt);
            else
                set->prompt = ob_xstrdup(
                    "You explain an incident diagnosis to on-call engineers. Use only the "
                    "evidence given. Answer with the diagnosis tool: a narrative of at most three "
                    "short sentences and a ranking of the numbered proposals, best first. Never "
                    "name an action that is not among the proposals.");
            if (!set->prompt_version[0])
                ob_llm_prompt_version(set->prompt ? set->prompt : "",
                                      set->prompt ? strlen(set->prompt) : 0, set->prompt_version);
        }
        free(path);
    }
}

static const struct ob_config_doc *find_playbook(struct loader *ld, const cJSON **pb)
{
    size_t n = 0;
    const struct ob_config_doc *docs = ob_config_includes(ld->cfg, "actions", &n), *hit = NULL;

    *pb = NULL;
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = get(docs[i].root, "playbook");

        if (!p)
            continue;
        if (hit) {
            char w[300];

            report(ld, p, "playbook", "a second playbook (the first is at %s)",
                   ob_config_where(ld->cfg, *pb, w, sizeof(w)));
            continue;
        }
        hit = &docs[i];
        *pb = p;
    }
    return hit;
}

static void load_evidence(struct loader *ld, const cJSON *list)
{
    struct ob_diagnose *dg = ld->dg;
    const cJSON *it;

    if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list)) {
        report(ld, list, "playbook.evidence", "must be a non-empty list");
        return;
    }
    cJSON_ArrayForEach(it, list)
    {
        static const char *const keys[] = {"name", "label", "action", "params", NULL};
        struct ob_dx_evidence_def *e;
        const cJSON *nm = get(it, "name"), *lb = get(it, "label"), *ac = get(it, "action"),
                    *ps = get(it, "params"), *p;

        if (dg->nev == OB_DX_MAX_EVIDENCE) {
            report(ld, it, "playbook.evidence", "at most %d entries", OB_DX_MAX_EVIDENCE);
            return;
        }
        if (!cJSON_IsObject(it)) {
            report(ld, it, "playbook.evidence", "each entry is a mapping");
            continue;
        }
        ld->nerr += ob_cfg_check_keys(ld->cfg, it, keys, "playbook.evidence", ld->d);
        e = &dg->ev[dg->nev];
        if (!cJSON_IsString(nm) || !ident_ok(nm->valuestring)) {
            report(ld, nm ? nm : it, "playbook.evidence.name", "a name like p99_now is required");
            continue;
        }
        for (size_t k = 0; k < dg->nev; k++)
            if (!strcmp(dg->ev[k].name, nm->valuestring))
                report(ld, nm, "playbook.evidence.name", "'%s' twice", nm->valuestring);
        ob_strlcpy(e->name, nm->valuestring, sizeof(e->name));
        ob_strlcpy(e->label, cJSON_IsString(lb) ? lb->valuestring : e->name, sizeof(e->label));
        e->action = cJSON_IsString(ac) ? ob_catalog_find(ld->cat, ac->valuestring) : NULL;
        if (!e->action) {
            report(ld, ac ? ac : it, "playbook.evidence.action", "%s%s%s",
                   cJSON_IsString(ac) ? "no action '" : "an action is required",
                   cJSON_IsString(ac) ? ac->valuestring : "",
                   cJSON_IsString(ac) ? "' in the catalog" : "");
            continue;
        }
        if (e->action->risk != OB_RISK_READ)
            report(ld, ac, "playbook.evidence.action",
                   "'%s' is a change action: evidence may only read", e->action->name);
        if (!e->action->executor)
            report(ld, ac, "playbook.evidence.action", "'%s' has no executor", e->action->name);
        if (!ob_action_param(e->action, "service") || !ob_action_param(e->action, "env"))
            report(ld, ac, "playbook.evidence.action", "'%s' needs parameters service and env",
                   e->action->name);
        if (ps && !cJSON_IsObject(ps)) {
            report(ld, ps, "playbook.evidence.params", "must be a mapping");
            ps = NULL;
        }
        cJSON_ArrayForEach(p, ps)
        {
            const struct ob_param_def *pd = ob_action_param(e->action, p->string);
            char val[256], why[256], raw[256];

            if (!pd || !strcmp(p->string, "service") || !strcmp(p->string, "env")) {
                report(ld, p, "playbook.evidence.params", "'%s' %s", p->string,
                       pd ? "comes from the diagnosis" : "is not a parameter of the action");
                continue;
            }
            if (cJSON_IsNumber(p))
                snprintf(raw, sizeof(raw), "%.15g", p->valuedouble);
            else if (cJSON_IsString(p))
                ob_strlcpy(raw, p->valuestring, sizeof(raw));
            else {
                report(ld, p, "playbook.evidence.params", "'%s' must be a scalar", p->string);
                continue;
            }
            if (ob_param_validate(pd, raw, val, sizeof(val), why, sizeof(why))) {
                report(ld, p, "playbook.evidence.params", "%s: %s", p->string, why);
                continue;
            }
            if (e->nparams < OB_MAX_PARAMS - 2) {
                ob_strlcpy(e->params[e->nparams].name, p->string, sizeof(e->params[0].name));
                ob_strlcpy(e->params[e->nparams].value, val, sizeof(e->params[0].value));
                e->nparams++;
            }
        }
        dg->nev++;
    }
}

static void load_facts(struct loader *ld, const cJSON *facts)
{
    struct ob_diagnose *dg = ld->dg;
    const cJSON *it;

    if (facts && !cJSON_IsObject(facts)) {
        report(ld, facts, "playbook.facts", "must be a mapping of name to {from|expr, unit}");
        return;
    }
    cJSON_ArrayForEach(it, facts)
    {
        static const char *const keys[] = {"from", "expr", "unit", NULL};
        struct fact *f;
        const cJSON *from = get(it, "from"), *ex = get(it, "expr"), *un = get(it, "unit");

        if (dg->nfacts == MAX_FACTS) {
            report(ld, it, "playbook.facts", "at most %d facts", MAX_FACTS);
            return;
        }
        if (!ident_ok(it->string) || known_name(dg, it->string, dg->nfacts)) {
            report(ld, it, "playbook.facts", "'%s': a new name like err_ratio", it->string);
            continue;
        }
        if (!cJSON_IsObject(it) || !from == !ex) {
            report(ld, it, "playbook.facts", "'%s': give exactly one of from or expr", it->string);
            continue;
        }
        ld->nerr += ob_cfg_check_keys(ld->cfg, it, keys, "playbook.facts", ld->d);
        f = &dg->facts[dg->nfacts];
        memset(f, 0, sizeof(*f));
        ob_strlcpy(f->name, it->string, sizeof(f->name));
        if (cJSON_IsString(un))
            ob_strlcpy(f->unit, un->valuestring, sizeof(f->unit));
        if (from) {
            const char *dot = cJSON_IsString(from) ? strchr(from->valuestring, '.') : NULL;
            bool found = false;

            if (!dot || dot == from->valuestring || !dot[1] ||
                (size_t)(dot - from->valuestring) >= sizeof(f->ev)) {
                report(ld, from, "playbook.facts", "'%s': from: is EVIDENCE.KEY", it->string);
                continue;
            }
            memcpy(f->ev, from->valuestring, (size_t)(dot - from->valuestring));
            ob_strlcpy(f->key, dot + 1, sizeof(f->key));
            for (size_t k = 0; k < dg->nev; k++)
                found = found || !strcmp(dg->ev[k].name, f->ev);
            if (!found)
                report(ld, from, "playbook.facts", "'%s': no evidence named '%s'", it->string,
                       f->ev);
        } else {
            f->expr = load_expr(ld, ex, "playbook.facts", dg->nfacts);
            if (!f->expr)
                continue;
        }
        dg->nfacts++;
    }
}

static double no_names(void *data, const char *name)
{
    (void)data;
    (void)name;
    return NAN;
}

static void load_thresholds(struct loader *ld, const cJSON *thr)
{
    struct ob_diagnose *dg = ld->dg;
    const cJSON *it;

    if (thr && !cJSON_IsObject(thr)) {
        report(ld, thr, "playbook.thresholds", "must be a mapping of name to value");
        return;
    }
    cJSON_ArrayForEach(it, thr)
    {
        struct threshold *t;
        char why[200];

        if (dg->nthr == MAX_THRESHOLDS) {
            report(ld, it, "playbook.thresholds", "at most %d", MAX_THRESHOLDS);
            return;
        }
        if (!ident_ok(it->string) || known_name(dg, it->string, 0)) {
            report(ld, it, "playbook.thresholds", "'%s': a new name like cpu_high", it->string);
            continue;
        }
        t = &dg->thr[dg->nthr];
        ob_strlcpy(t->name, it->string, sizeof(t->name));
        if (cJSON_IsNumber(it)) {
            t->v = it->valuedouble;
        } else if (cJSON_IsString(it)) {
            struct dx_expr *e = dx_expr_parse(it->valuestring, why, sizeof(why));

            t->v = e ? dx_expr_eval(e, no_names, NULL) : NAN;
            dx_expr_free(e);
            if (isnan(t->v)) {
                report(ld, it, "playbook.thresholds", "'%s': a number, 5%%, 30m or 2s", it->string);
                continue;
            }
            /* remember how to show it */
            if (strchr(it->valuestring, '%'))
                ob_strlcpy(t->unit, "ratio", sizeof(t->unit));
            else if (strpbrk(it->valuestring, "smhd"))
                ob_strlcpy(t->unit, "duration", sizeof(t->unit));
        } else {
            report(ld, it, "playbook.thresholds", "'%s': must be a number or a duration",
                   it->string);
            continue;
        }
        dg->nthr++;
    }
}

static void load_readings(struct loader *ld, const cJSON *list)
{
    struct ob_diagnose *dg = ld->dg;
    const cJSON *it;

    if (list && !cJSON_IsArray(list)) {
        report(ld, list, "playbook.readings", "must be a list of {when, say, else}");
        return;
    }
    cJSON_ArrayForEach(it, list)
    {
        static const char *const keys[] = {"when", "say", "else", NULL};
        struct reading *r;

        if (dg->nreadings == MAX_READINGS) {
            report(ld, it, "playbook.readings", "at most %d", MAX_READINGS);
            return;
        }
        if (!cJSON_IsObject(it)) {
            report(ld, it, "playbook.readings", "each entry is a mapping");
            continue;
        }
        ld->nerr += ob_cfg_check_keys(ld->cfg, it, keys, "playbook.readings", ld->d);
        r = &dg->readings[dg->nreadings++];
        load_when(ld, get(it, "when"), "playbook.readings.when", &r->when);
        load_tmpl(ld, get(it, "say"), "playbook.readings.say", r->say, sizeof(r->say), true);
        load_tmpl(ld, get(it, "else"), "playbook.readings.else", r->otherwise, sizeof(r->otherwise),
                  false);
    }
}

static void load_rules(struct loader *ld, const cJSON *list)
{
    struct ob_diagnose *dg = ld->dg;
    const cJSON *it;

    if (!cJSON_IsArray(list)) {
        report(ld, list, "playbook.rules", "must be a list of rules");
        return;
    }
    cJSON_ArrayForEach(it, list)
    {
        static const char *const keys[] = {"name", "when", "propose", "reason", "runbook", NULL};
        static const char *const pkeys[] = {"action", "params", NULL};
        struct rule *r;
        const cJSON *nm = get(it, "name"), *pr = get(it, "propose"), *ac, *ps, *p;

        if (dg->nrules == MAX_RULES) {
            report(ld, it, "playbook.rules", "at most %d rules", MAX_RULES);
            return;
        }
        if (!cJSON_IsObject(it)) {
            report(ld, it, "playbook.rules", "each rule is a mapping");
            continue;
        }
        ld->nerr += ob_cfg_check_keys(ld->cfg, it, keys, "playbook.rules", ld->d);
        r = &dg->rules[dg->nrules++];
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= sizeof(r->name) || !*nm->valuestring)
            report(ld, nm ? nm : it, "playbook.rules.name", "a name is required");
        else
            ob_strlcpy(r->name, nm->valuestring, sizeof(r->name));
        load_when(ld, get(it, "when"), "playbook.rules.when", &r->when);
        load_tmpl(ld, get(it, "reason"), "playbook.rules.reason", r->reason, sizeof(r->reason),
                  true);
        load_tmpl(ld, get(it, "runbook"), "playbook.rules.runbook", r->runbook, sizeof(r->runbook),
                  false);
        if (!cJSON_IsObject(pr)) {
            report(ld, pr ? pr : it, "playbook.rules.propose", "{action, params} is required");
            continue;
        }
        ld->nerr += ob_cfg_check_keys(ld->cfg, pr, pkeys, "playbook.rules.propose", ld->d);
        ac = get(pr, "action");
        ps = get(pr, "params");
        r->action = cJSON_IsString(ac) ? ob_catalog_find(ld->cat, ac->valuestring) : NULL;
        if (!r->action) {
            report(ld, ac ? ac : pr, "playbook.rules.propose.action", "%s%s%s",
                   cJSON_IsString(ac) ? "no action '" : "an action is required",
                   cJSON_IsString(ac) ? ac->valuestring : "",
                   cJSON_IsString(ac) ? "' in the catalog" : "");
            continue;
        }
        if (!strcmp(r->action->name, "diagnose") || !r->action->executor)
            report(ld, ac, "playbook.rules.propose.action", "'%s' cannot be proposed",
                   r->action->name);
        if (ps && !cJSON_IsObject(ps)) {
            report(ld, ps, "playbook.rules.propose.params", "must be a mapping");
            continue;
        }
        cJSON_ArrayForEach(p, ps)
        {
            struct ob_kv *kv;

            if (!ob_action_param(r->action, p->string)) {
                report(ld, p, "playbook.rules.propose.params", "'%s' is not a parameter of %s",
                       p->string, r->action->name);
                continue;
            }
            if (r->nparams == OB_MAX_PARAMS)
                break;
            kv = &r->params[r->nparams++];
            ob_strlcpy(kv->name, p->string, sizeof(kv->name));
            load_tmpl(ld, p, "playbook.rules.propose.params", kv->value, sizeof(kv->value), true);
        }
    }
}

static void check_diagnose_action(struct loader *ld, const struct ob_action *a)
{
    char where[300];

    if (a->executor) {
        ob_diag_addf(ld->d, "%s: action 'diagnose': is built in; it takes no executor",
                     ob_config_where(ld->cfg, a->executor, where, sizeof(where)));
        ld->nerr++;
    }
    if (a->risk != OB_RISK_READ || !ob_action_param(a, "service") || !ob_action_param(a, "env")) {
        ob_diag_addf(ld->d,
                     "%s: action 'diagnose': must be a read action with parameters service and "
                     "env",
                     a->where ? a->where : "<input>");
        ld->nerr++;
    }
}

int ob_diagnose_load(struct ob_diagnose **out, const struct ob_config *cfg,
                     const struct ob_catalog *cat, const struct ob_llm_config *llm,
                     struct ob_diag *d)
{
    struct ob_diagnose *dg = ob_xcalloc(1, sizeof(*dg));
    struct loader ld = {.cfg = cfg, .cat = cat, .dg = dg, .d = d};
    const struct ob_action *da = cat ? ob_catalog_find(cat, "diagnose") : NULL;
    const cJSON *pb = NULL;

    *out = NULL;
    load_settings(&ld, llm);
    if (cfg)
        find_playbook(&ld, &pb);
    if (da)
        check_diagnose_action(&ld, da);
    if (da && !pb) {
        ob_diag_addf(d, "%s: action 'diagnose': no playbook: in any catalog document",
                     da->where ? da->where : "<input>");
        ld.nerr++;
    }
    if (pb) {
        static const char *const keys[] = {"evidence", "facts", "thresholds",
                                           "readings", "rules", NULL};

        if (!cJSON_IsObject(pb)) {
            report(&ld, pb, "playbook", "must be a mapping");
        } else {
            ld.nerr += ob_cfg_check_keys(cfg, pb, keys, "playbook", d);
            load_evidence(&ld, get(pb, "evidence"));
            load_thresholds(&ld, get(pb, "thresholds"));
            load_facts(&ld, get(pb, "facts"));
            load_readings(&ld, get(pb, "readings"));
            load_rules(&ld, get(pb, "rules"));
        }
    }
    dg->set.enabled = da != NULL && pb != NULL;
    if (dg->set.runbooks_dir && ob_runbooks_load(&dg->rb, dg->set.runbooks_dir, d))
        ld.nerr++;
    if (!dg->rb)
        dg->rb = ob_runbooks_new();
    if (ld.nerr) {
        ob_diagnose_free(dg);
        return OB_ECONFIG;
    }
    *out = dg;
    return 0;
}

void ob_diagnose_free(struct ob_diagnose *dg)
{
    if (!dg)
        return;
    for (size_t i = 0; i < dg->nfacts; i++)
        dx_expr_free(dg->facts[i].expr);
    for (size_t i = 0; i < dg->nreadings; i++)
        free_when(&dg->readings[i].when);
    for (size_t i = 0; i < dg->nrules; i++)
        free_when(&dg->rules[i].when);
    ob_runbooks_free(dg->rb);
    free(dg->set.runbooks_dir);
    free(dg->set.prompt);
    free(dg);
}

const struct ob_dx_settings *ob_diagnose_settings(const struct ob_diagnose *dg)
{
    return &dg->set;
}

size_t ob_diagnose_evidence_count(const struct ob_diagnose *dg)
{
    return dg ? dg->nev : 0;
}

const struct ob_dx_evidence_def *ob_diagnose_evidence(const struct ob_diagnose *dg, size_t i)
{
    return dg && i < dg->nev ? &dg->ev[i] : NULL;
}

const struct ob_runbooks *ob_diagnose_runbooks(const struct ob_diagnose *dg)
{
    return dg ? dg->rb : NULL;
}

/* Fills the action's defaults, validates every value; NULL-terminated
 * extra values first. */
static int complete(struct ob_proposal *p, const struct ob_action *a, const struct ob_kv *kv,
                    size_t n, char *why, size_t whylen)
{
    memset(p, 0, sizeof(*p));
    p->action = a;
    p->source = "diagnosis";
    p->confidence = 1.0;
    for (size_t i = 0; i < a->nparams; i++) {
        const struct ob_param_def *pd = &a->params[i];
        const char *raw = NULL;
        char w[256];
        struct ob_kv *dst;

        for (size_t k = 0; k < n && !raw; k++)
            if (!strcmp(kv[k].name, pd->name) && kv[k].value[0])
                raw = kv[k].value;
        if (!raw)
            raw = pd->def;
        if (!raw) {
            if (pd->required) {
                snprintf(why, whylen, "%s: no value", pd->name);
                return OB_EINVAL;
            }
            continue;
        }
        dst = &p->params[p->nparams];
        if (ob_param_validate(pd, raw, dst->value, sizeof(dst->value), w, sizeof(w))) {
            snprintf(why, whylen, "%s: %s", pd->name, w);
            return OB_EINVAL;
        }
        ob_strlcpy(dst->name, pd->name, sizeof(dst->name));
        p->nparams++;
    }
    return 0;
}

int ob_diagnose_evidence_proposal(const struct ob_diagnose *dg, size_t i, const char *service,
                                  const char *env, struct ob_proposal *out, char *why,
                                  size_t whylen)
{
    struct ob_kv kv[OB_MAX_PARAMS];
    const struct ob_dx_evidence_def *e = ob_diagnose_evidence(dg, i);
    size_t n = 0;

    if (!e || !service || !env) {
        snprintf(why, whylen, "no such evidence");
        return OB_EINVAL;
    }
    memset(kv, 0, sizeof(kv));
    ob_strlcpy(kv[n].name, "service", sizeof(kv[n].name));
    ob_strlcpy(kv[n++].value, service, sizeof(kv[0].value));
    ob_strlcpy(kv[n].name, "env", sizeof(kv[n].name));
    ob_strlcpy(kv[n++].value, env, sizeof(kv[0].value));
    for (size_t k = 0; k < e->nparams && n < OB_MAX_PARAMS; k++)
        kv[n++] = e->params[k];
    return complete(out, e->action, kv, n, why, whylen);
}

/* ---- analysis -------------------------------------------------------------------- */

struct ctx {
    const struct ob_diagnose *dg;
    const struct ob_dx_input *in;
    cJSON *facts;
};

static double lookup(void *data, const char *name)
{
    struct ctx *c = data;
    const cJSON *f = get(c->facts, name);

    if (cJSON_IsNumber(f))
        return f->valuedouble;
    if (cJSON_IsString(f))
        return 1; /* known */
    for (size_t i = 0; i < c->dg->nthr; i++)
        if (!strcmp(c->dg->thr[i].name, name))
            return c->dg->thr[i].v;
    return NAN;
}

/* A dotted path into data: "max", "pods.0.name". */
static const cJSON *dig(const cJSON *data, const char *key)
{
    char buf[128], *save = NULL;
    const cJSON *cur = data;

    ob_strlcpy(buf, key, sizeof(buf));
    for (char *seg = strtok_r(buf, ".", &save); seg && cur; seg = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(cur) && isdigit((unsigned char)seg[0]))
            cur = cJSON_GetArrayItem(cur, atoi(seg));
        else
            cur = get(cur, seg);
    }
    return cur;
}

static const char *fact_unit(const struct ob_diagnose *dg, const char *name)
{
    for (size_t i = 0; i < dg->nfacts; i++)
        if (!strcmp(dg->facts[i].name, name))
            return dg->facts[i].unit;
    for (size_t i = 0; i < dg->nthr; i++)
        if (!strcmp(dg->thr[i].name, name))
            return dg->thr[i].unit;
    return "";
}

/* An age for people: "45s", "12m", "3h20m", "4d". */
static const char *fmt_age(double secs, char *buf, size_t len)
{
    long s = secs < 0 ? 0 : (long)(secs + 0.5);

    if (s < 60)
        snprintf(buf, len, "%lds", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm", s / 60);
    else if (s < 86400 && (s % 3600) / 60)
        snprintf(buf, len, "%ldh%ldm", s / 3600, (s % 3600) / 60);
    else if (s < 86400)
        snprintf(buf, len, "%ldh", s / 3600);
    else if ((s % 86400) / 3600 && s < 7 * 86400)
        snprintf(buf, len, "%ldd%ldh", s / 86400, (s % 86400) / 3600);
    else
        snprintf(buf, len, "%ldd", s / 86400);
    return buf;
}

/* A number for people: by unit. */
static const char *fmt_num(double v, const char *unit, char *buf, size_t len)
{
    if (!strcmp(unit, "s")) {
        if (fabs(v) < 1)
            snprintf(buf, len, "%.0f ms", v * 1000);
        else
            snprintf(buf, len, "%.2f s", v);
    } else if (!strcmp(unit, "ratio")) {
        snprintf(buf, len, fabs(v) < 0.1 ? "%.2f%%" : "%.0f%%", v * 100);
    } else if (!strcmp(unit, "x")) {
        snprintf(buf, len, v < 10 ? "%.1f×" : "%.0f×", v);
    } else if (!strcmp(unit, "duration")) {
        fmt_age(v, buf, len);
    } else if (!strcmp(unit, "bytes")) {
        if (v >= 1073741824.0)
            snprintf(buf, len, "%.1f GiB", v / 1073741824.0);
        else
            snprintf(buf, len, "%.0f MiB", v / 1048576.0);
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f%s%s", v, unit[0] ? " " : "", unit);
    } else {
        snprintf(buf, len, "%.3g%s%s", v, unit[0] ? " " : "", unit);
    }
    return buf;
}

/* Renders a template; for_param renders numbers plainly (integers as
 * integers). Returns false when a placeholder is unknown (then "?"). */
static bool render(struct ctx *c, const char *tmpl, bool for_param, char *out, size_t len)
{
    size_t o = 0;
    bool ok = true;

    out[0] = '\0';
    for (const char *s = tmpl; *s && o + 1 < len;) {
        const char *e = s[0] == '{' ? strchr(s, '}') : NULL;
        char name[NAME_LEN], val[160];
        const cJSON *f;
        size_t n;

        if (!e) {
            out[o++] = *s++;
            continue;
        }
        n = (size_t)(e - s - 1);
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, s + 1, n);
        name[n] = '\0';
        s = e + 1;
        val[0] = '\0';
        if (!strcmp(name, "service"))
            ob_strlcpy(val, c->in->service ? c->in->service : "?", sizeof(val));
        else if (!strcmp(name, "env"))
            ob_strlcpy(val, c->in->env ? c->in->env : "?", sizeof(val));
        else if (!strcmp(name, "symptom"))
            ob_strlcpy(val, c->in->symptom ? c->in->symptom : "a problem", sizeof(val));
        else if (cJSON_IsString(f = get(c->facts, name)))
            ob_strlcpy(val, f->valuestring, sizeof(val));
        else {
            double v = lookup(c, name);

            if (isnan(v)) {
                ok = false;
                ob_strlcpy(val, "?", sizeof(val));
            } else if (for_param) {
                if (v == floor(v) && fabs(v) < 1e15)
                    snprintf(val, sizeof(val), "%.0f", v);
                else
                    snprintf(val, sizeof(val), "%g", v);
            } else {
                fmt_num(v, fact_unit(c->dg, name), val, sizeof(val));
            }
        }
        o += ob_strlcpy(out + o, val, len - o);
        if (o >= len)
            o = len - 1;
    }
    out[o] = '\0';
    return ok;
}

enum tri { T_FALSE, T_TRUE, T_UNKNOWN };

static enum tri eval_when(struct ctx *c, const struct when *w)
{
    enum tri all = T_TRUE;

    for (size_t i = 0; i < w->n; i++) {
        enum tri any = T_FALSE;

        for (size_t k = 0; k < w->c[i].n; k++) {
            double v = dx_expr_eval(w->c[i].any[k], lookup, c);

            if (isnan(v)) {
                if (any == T_FALSE)
                    any = T_UNKNOWN;
            } else if (v != 0) {
                any = T_TRUE;
                break;
            }
        }
        if (any == T_FALSE)
            return T_FALSE;
        if (any == T_UNKNOWN)
            all = T_UNKNOWN;
    }
    return w->n ? all : T_UNKNOWN;
}

static void compute_facts(struct ctx *c)
{
    const struct ob_diagnose *dg = c->dg;

    for (size_t i = 0; i < dg->nfacts; i++) {
        const struct fact *f = &dg->facts[i];

        if (f->expr) {
            double v = dx_expr_eval(f->expr, lookup, c);

            if (!isnan(v) && isfinite(v))
                cJSON_AddNumberToObject(c->facts, f->name, v);
            continue;
        }
        {
            const cJSON *data = get(c->in->evidence, f->ev);
            const cJSON *x = data ? dig(data, f->key) : NULL;

            if (cJSON_IsNumber(x) && isfinite(x->valuedouble))
                cJSON_AddNumberToObject(c->facts, f->name, x->valuedouble);
            else if (cJSON_IsBool(x))
                cJSON_AddNumberToObject(c->facts, f->name, cJSON_IsTrue(x) ? 1 : 0);
            else if (cJSON_IsString(x) && x->valuestring[0])
                cJSON_AddStringToObject(c->facts, f->name, x->valuestring);
        }
    }
}

static void add_sentence(char *buf, size_t len, const char *s)
{
    size_t o = strlen(buf);

    if (!s[0] || o + 3 >= len)
        return;
    snprintf(buf + o, len - o, "%s%s", o ? "; " : "", s);
}

static bool same_proposal(const struct ob_proposal *a, const struct ob_proposal *b)
{
    if (a->action != b->action || a->nparams != b->nparams)
        return false;
    for (size_t i = 0; i < a->nparams; i++)
        if (strcmp(a->params[i].name, b->params[i].name) ||
            strcmp(a->params[i].value, b->params[i].value))
            return false;
    return true;
}

static void attach_runbook(const struct ob_diagnose *dg, struct ctx *c, const struct rule *r,
                           struct ob_dx_proposal *dp)
{
    char q[1200], words[TMPL_MAX];
    struct ob_runbook_hit hit;

    render(c, r->runbook, false, words, sizeof(words));
    snprintf(q, sizeof(q), "%s %s %s %s %s", words, dp->prop.action->name,
             c->in->symptom ? c->in->symptom : "", c->in->service ? c->in->service : "",
             c->in->text ? c->in->text : "");
    if (ob_runbooks_search(dg->rb, q, &hit, 1) != 1)
        return;
    ob_strlcpy(dp->runbook_file, hit.file, sizeof(dp->runbook_file));
    ob_strlcpy(dp->runbook_heading, hit.heading, sizeof(dp->runbook_heading));
    ob_runbook_passage(&hit, dp->runbook_passage, sizeof(dp->runbook_passage));
}

int ob_diagnose_analyse(const struct ob_diagnose *dg, const struct ob_catalog *cat,
                        const struct ob_dx_input *in, struct ob_dx_result *out)
{
    struct ctx c = {.dg = dg, .in = in};
    size_t cap;

    memset(out, 0, sizeof(*out));
    if (!dg || !in)
        return OB_EINVAL;
    c.facts = cJSON_CreateObject();
    if (!c.facts)
        return OB_ENOMEM;
    out->facts = c.facts;
    compute_facts(&c);
    for (size_t i = 0; i < dg->nreadings; i++) {
        const struct reading *r = &dg->readings[i];
        enum tri t = eval_when(&c, &r->when);
        char line[TMPL_MAX];

        if (t == T_TRUE && render(&c, r->say, false, line, sizeof(line)))
            add_sentence(out->reading, sizeof(out->reading), line);
        else if (t == T_FALSE && r->otherwise[0] &&
                 render(&c, r->otherwise, false, line, sizeof(line)))
            add_sentence(out->reading, sizeof(out->reading), line);
    }
    if (!out->reading[0])
        ob_strlcpy(out->reading, "nothing in the evidence stands out", sizeof(out->reading));
    cap = (size_t)(dg->set.max_proposals > 0 ? dg->set.max_proposals : OB_DX_MAX_PROPOSALS);
    if (cap > OB_DX_MAX_PROPOSALS)
        cap = OB_DX_MAX_PROPOSALS;
    for (size_t i = 0; i < dg->nrules && out->n < cap; i++) {
        const struct rule *r = &dg->rules[i];
        struct ob_dx_proposal *dp = &out->proposals[out->n];
        struct ob_kv kv[OB_MAX_PARAMS];
        const struct ob_action *a;
        size_t n = 0;
        char why[300];
        bool dup = false;

        if (eval_when(&c, &r->when) != T_TRUE)
            continue;
        /* The catalog of this call (after a reload the same names). */
        a = cat ? ob_catalog_find(cat, r->action->name) : r->action;
        if (!a)
            continue;
        memset(kv, 0, sizeof(kv));
        if (ob_action_param(a, "service")) {
            ob_strlcpy(kv[n].name, "service", sizeof(kv[0].name));
            ob_strlcpy(kv[n++].value, in->service ? in->service : "", sizeof(kv[0].value));
        }
        if (ob_action_param(a, "env")) {
            ob_strlcpy(kv[n].name, "env", sizeof(kv[0].name));
            ob_strlcpy(kv[n++].value, in->env ? in->env : "", sizeof(kv[0].value));
        }
        for (size_t k = 0; k < r->nparams && n < OB_MAX_PARAMS; k++) {
            ob_strlcpy(kv[n].name, r->params[k].name, sizeof(kv[0].name));
            if (!render(&c, r->params[k].value, true, kv[n].value, sizeof(kv[0].value)))
                kv[n].value[0] = '\0'; /* unknown: the action's default, if any */
            n++;
        }
        /* later entries of the same name win: move service/env overrides */
        for (size_t k = 0; k < n; k++)
            for (size_t m = k + 1; m < n; m++)
                if (!strcmp(kv[k].name, kv[m].name) && kv[m].value[0]) {
                    kv[k] = kv[m];
                    kv[m].name[0] = '\0';
                }
        memset(dp, 0, sizeof(*dp));
        if (complete(&dp->prop, a, kv, n, why, sizeof(why))) {
            ob_warn("diagnose", "rule %s: proposal %s dropped: %s", r->name, a->name, why);
            out->dropped++;
            continue;
        }
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = same_proposal(&out->proposals[k].prop, &dp->prop);
        if (dup)
            continue;
        ob_strlcpy(dp->rule, r->name, sizeof(dp->rule));
        render(&c, r->reason, false, dp->reason, sizeof(dp->reason));
        attach_runbook(dg, &c, r, dp);
        out->n++;
    }
    return 0;
}

void ob_dx_result_release(struct ob_dx_result *r)
{
    if (!r)
        return;
    cJSON_Delete(r->facts);
    r->facts = NULL;
}

/* ---- evidence lines ------------------------------------------------------------- */

static double numv(const cJSON *o, const char *k, double def)
{
    const cJSON *x = get(o, k);

    return cJSON_IsNumber(x) ? x->valuedouble : def;
}

/* "ERROR upstream timeout after 5000ms (request id 4711)" and the same
 * with other numbers fold together. */
static void fold_key(const char *line, char *out, size_t len)
{
    size_t o = 0;
    const char *s = line;

    /* skip a leading timestamp-like token */
    if (isdigit((unsigned char)s[0]) && strchr(s, ' '))
        s = strchr(s, ' ') + 1;
    for (; *s && o + 1 < len; s++) {
        if (isdigit((unsigned char)*s)) {
            if (!o || out[o - 1] != '#')
                out[o++] = '#';
            continue;
        }
        out[o++] = *s;
    }
    out[o] = '\0';
}

static void top_lines(const cJSON *sample, char *buf, size_t len)
{
    struct {
        char key[200];
        const char *line;
        int n;
    } g[16];
    size_t ng = 0, o = strlen(buf);
    const cJSON *it;

    cJSON_ArrayForEach(it, sample)
    {
        char key[200];
        size_t k;

        if (!cJSON_IsString(it))
            continue;
        fold_key(it->valuestring, key, sizeof(key));
        for (k = 0; k < ng && strcmp(g[k].key, key); k++)
            ;
        if (k < ng) {
            g[k].n++;
        } else if (ng < 16) {
            ob_strlcpy(g[ng].key, key, sizeof(g[0].key));
            g[ng].line = it->valuestring;
            g[ng++].n = 1;
        }
    }
    for (size_t shown = 0; shown < 3 && ng; shown++) {
        size_t best = 0;

        for (size_t k = 1; k < ng; k++)
            if (g[k].n > g[best].n)
                best = k;
        if (o + 16 < len)
            o += (size_t)snprintf(buf + o, len - o, "\n%d× %.160s", g[best].n, g[best].line);
        if (o >= len)
            o = len - 1;
        g[best] = g[--ng];
    }
}

const char *ob_dx_evidence_summary(const cJSON *data, char *buf, size_t len)
{
    const cJSON *unit = get(data, "unit");
    char a[64], b[64];

    buf[0] = '\0';
    if (!cJSON_IsObject(data))
        return NULL;
    if (cJSON_IsNumber(get(data, "replicas"))) {
        size_t o = (size_t)snprintf(buf, len, "%.0f/%.0f ready", numv(data, "ready", 0),
                                    numv(data, "replicas", 0));
        const cJSON *age = get(data, "last_rollout_age_s");

        if (cJSON_IsNumber(get(data, "revision")) && o < len)
            o += (size_t)snprintf(buf + o, len - o, " · revision %.0f", numv(data, "revision", 0));
        if (cJSON_IsNumber(age) && o < len)
            o += (size_t)snprintf(buf + o, len - o, " · rolled out %s ago",
                                  fmt_age(age->valuedouble, a, sizeof(a)));
        if (cJSON_IsNumber(get(data, "restarts_max")) && o < len)
            o += (size_t)snprintf(buf + o, len - o, " · restarts max %.0f",
                                  numv(data, "restarts_max", 0));
        if (numv(data, "crashloop", 0) > 0 && o < len)
            o += (size_t)snprintf(buf + o, len - o, " · %.0f in CrashLoopBackOff",
                                  numv(data, "crashloop", 0));
        if (numv(data, "oom", 0) > 0 && o < len)
            snprintf(buf + o, len - o, " · %.0f OOMKilled", numv(data, "oom", 0));
        return buf;
    }
    if (cJSON_IsNumber(get(data, "lines"))) {
        snprintf(buf, len, "%.0f line%s", numv(data, "lines", 0),
                 numv(data, "lines", 0) == 1 ? "" : "s");
        top_lines(get(data, "sample"), buf, len);
        return buf;
    }
    if (cJSON_IsNumber(get(data, "count")) && numv(data, "count", 0) == 0) {
        snprintf(buf, len, "no data");
        return buf;
    }
    if (cJSON_IsNumber(get(data, "value"))) {
        const char *u = cJSON_IsString(unit) ? unit->valuestring : "";

        if (numv(data, "count", 1) > 1)
            snprintf(buf, len, "max %s, min %s over %.0f series",
                     fmt_num(numv(data, "max", 0), u, a, sizeof(a)),
                     fmt_num(numv(data, "min", 0), u, b, sizeof(b)), numv(data, "count", 0));
        else
            fmt_num(numv(data, "value", 0), u, buf, len);
        return buf;
    }
    return NULL;
}

/* ---- the LLM's part --------------------------------------------------------------- */

char *ob_dx_llm_prompt(const char *service, const char *env, const char *symptom,
                       const char *evidence_lines, const struct ob_dx_result *r,
                       size_t budget_bytes)
{
    char *text = NULL, *props = NULL;
    size_t plen = 0, fixed;
    FILE *f = open_memstream(&props, &plen);
    int n;

    if (!f)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        char p[512];

        fprintf(f, "%zu. %s — %s\n", i + 1, ob_proposal_format(&r->proposals[i].prop, p, sizeof(p)),
                r->proposals[i].reason);
    }
    if (!r->n)
        fprintf(f, "(none: the rules found nothing to do)\n");
    fclose(f);
    fixed = strlen(props) + strlen(r->reading) + 300;
    n = asprintf(&text,
                 "Service: %s in %s. Reported symptom: %s.\n"
                 "Evidence:\n%.*s\n"
                 "Deterministic reading: %s\n"
                 "Proposals (the only actions that exist here):\n%s",
                 service ? service : "?", env ? env : "?", symptom ? symptom : "unspecified",
                 (int)(budget_bytes > fixed ? budget_bytes - fixed : 0),
                 evidence_lines ? evidence_lines : "", r->reading, props);
    free(props);
    return n < 0 ? NULL : text;
}

/* One ranking entry to a proposal index, or -1. */
static int match_entry(const cJSON *it, const struct ob_dx_result *r, char *what, size_t wlen)
{
    char p[512];

    if (cJSON_IsNumber(it)) {
        int k = (int)it->valuedouble;

        snprintf(what, wlen, "proposal %g", it->valuedouble);
        return (double)k == it->valuedouble && k >= 1 && (size_t)k <= r->n ? k - 1 : -1;
    }
    if (cJSON_IsString(it)) {
        char want[512];
        const char *s = it->valuestring;
        size_t l;

        while (*s == ' ')
            s++;
        if (isdigit((unsigned char)s[0]) && strlen(s) < 3)
            return atoi(s) >= 1 && (size_t)atoi(s) <= r->n ? atoi(s) - 1 : -1;
        ob_strlcpy(want, s, sizeof(want));
        l = strlen(want);
        while (l && (want[l - 1] == ' ' || want[l - 1] == '.'))
            want[--l] = '\0';
        snprintf(what, wlen, "'%.180s'", want);
        for (size_t i = 0; i < r->n; i++) {
            ob_proposal_format(&r->proposals[i].prop, p, sizeof(p));
            if (!strcmp(p, want))
                return (int)i;
        }
        /* a bare action name is fine when exactly one proposal has it */
        {
            int hit = -1, nhit = 0;

            for (size_t i = 0; i < r->n; i++)
                if (!strcmp(r->proposals[i].prop.action->name, want)) {
                    hit = (int)i;
                    nhit++;
                }
            return nhit == 1 ? hit : -1;
        }
    }
    if (cJSON_IsObject(it)) {
        const cJSON *a = get(it, "action"), *ps = get(it, "params"), *x;
        size_t off;

        if (!cJSON_IsString(a)) {
            snprintf(what, wlen, "an entry without an action");
            return -1;
        }
        off = (size_t)snprintf(what, wlen, "%.60s", a->valuestring);
        cJSON_ArrayForEach(x, ps)
        {
            if (off < wlen)
                off += (size_t)snprintf(what + off, wlen - off, " %.40s=%.40s", x->string,
                                        cJSON_IsString(x) ? x->valuestring
                                        : cJSON_IsNumber(x)
                                            ? (snprintf(p, sizeof(p), "%g", x->valuedouble), p)
                                            : "?");
        }
        for (size_t i = 0; i < r->n; i++) {
            const struct ob_proposal *pr = &r->proposals[i].prop;
            bool ok = !strcmp(pr->action->name, a->valuestring);

            cJSON_ArrayForEach(x, ps)
            {
                const char *v = ob_proposal_get(pr, x->string);
                char num[64];

                if (!ok)
                    break;
                if (cJSON_IsNumber(x))
                    snprintf(num, sizeof(num), "%g", x->valuedouble);
                ok = v && ((cJSON_IsString(x) && !strcmp(v, x->valuestring)) ||
                           (cJSON_IsNumber(x) && !strcmp(v, num)));
            }
            if (ok)
                return (int)i;
        }
        return -1;
    }
    snprintf(what, wlen, "an entry of the wrong type");
    return -1;
}

int ob_dx_llm_read(const char *tool, const char *arguments, const struct ob_dx_result *r,
                   struct ob_dx_llm_answer *out)
{
    cJSON *args;
    const cJSON *nar, *rank, *it;
    bool seen[OB_DX_MAX_PROPOSALS] = {false};

    memset(out, 0, sizeof(*out));
    if (!tool || strcmp(tool, "diagnosis")) {
        snprintf(out->ignored, sizeof(out->ignored),
                 "the model called '%.60s' instead of the diagnosis tool", tool ? tool : "");
        return OB_EPARSE;
    }
    args = arguments ? cJSON_Parse(arguments) : NULL;
    if (!cJSON_IsObject(args)) {
        cJSON_Delete(args);
        snprintf(out->ignored, sizeof(out->ignored), "malformed arguments");
        return OB_EPARSE;
    }
    nar = get(args, "narrative");
    if (cJSON_IsString(nar)) {
        size_t n = ob_strlcpy(out->narrative, nar->valuestring, sizeof(out->narrative));

        if (n >= sizeof(out->narrative)) {
            /* cut on a character boundary */
            size_t k = sizeof(out->narrative) - 1;

            while (k > 0 && ((unsigned char)out->narrative[k] & 0xc0) == 0x80)
                k--;
            out->narrative[k] = '\0';
        }
        for (char *p = out->narrative; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    rank = get(args, "ranking");
    if (!cJSON_IsArray(rank))
        rank = NULL;
    cJSON_ArrayForEach(it, rank)
    {
        char what[200] = "";
        int k = match_entry(it, r, what, sizeof(what));

        if (k < 0) {
            snprintf(out->ignored, sizeof(out->ignored),
                     "the model named %s, which the rules did not propose: its ranking is "
                     "ignored",
                     what);
            out->norder = 0;
            break;
        }
        if (seen[k] || out->norder == OB_DX_MAX_PROPOSALS)
            continue;
        seen[k] = true;
        out->order[out->norder++] = (size_t)k;
    }
    /* proposals the model did not mention keep their order, after */
    if (out->norder)
        for (size_t i = 0; i < r->n && out->norder < OB_DX_MAX_PROPOSALS; i++)
            if (!seen[i])
                out->order[out->norder++] = i;
    cJSON_Delete(args);
    return 0;
}

/* ---- picks ---------------------------------------------------------------------- */

int ob_dx_pick_number(const char *emoji)
{
    static const char *const names[3][6] = {
        {"one", "1", "keycap_1", "pick:1", "1\xef\xb8\x8f\xe2\x83\xa3", "1\xe2\x83\xa3"},
        {"two", "2", "keycap_2", "pick:2", "2\xef\xb8\x8f\xe2\x83\xa3", "2\xe2\x83\xa3"},
        {"three", "3", "keycap_3", "pick:3", "3\xef\xb8\x8f\xe2\x83\xa3", "3\xe2\x83\xa3"},
    };

    if (!emoji)
        return 0;
    if (emoji[0] == ':')
        emoji++;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 6; k++) {
            size_t n = strlen(names[i][k]);

            if (!strncmp(emoji, names[i][k], n) &&
                (!emoji[n] || (emoji[n] == ':' && !emoji[n + 1])))
                return i + 1;
        }
    return 0;
}
