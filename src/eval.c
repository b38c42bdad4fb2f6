/* `opsbot eval`: batch-run labelled requests through the parser, per
 * variant, and report (see include/opsbot/eval.h and docs/LLM.md). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bundle.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/eval.h"
#include "opsbot/http.h"
#include "opsbot/llm.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define MAX_LINES 100000
#define MAX_LINE_LEN (64 * 1024)
#define MAX_VARIANTS 16

struct line {
    char *text;
    char *gold; /* NULL: no action */
    cJSON *params;
    const char *dataset;
    int lineno;
    bool missing_required; /* the gold action lacks a required parameter */
};

/* A diagnosis line: symptom text + evidence fixture -> first proposal. */
struct dxline {
    char *text;
    char *expect; /* NULL: no proposal */
    cJSON *params;
    cJSON *fixture; /* {"evidence": {...}} */
    char *fixture_name;
    const char *dataset;
    int lineno;
    char got[600];
    bool correct;
};

struct row {
    char pred[64];
    char pred_params[512];
    const char *outcome;
    char source[16];
    char detail[300];
    bool done, correct, exact, asked, answered, schema_valid, llm_called, fallback;
    int64_t tokens_in, tokens_out, latency_ms;
    double cost;
};

struct variant {
    char name[64];
    struct ob_llm_settings set;
    struct ob_llm_conn conn;
    char *own_prompt, *own_prompt_path, *own_model;
    struct row *rows;
    struct ob_eval_summary sum;
};

struct ob_eval {
    const struct ob_bundle *b;
    uv_loop_t *loop;
    struct ob_http *http;
    bool own_http;
    struct ob_llm *llm;
    char **datasets;
    size_t ndatasets;
    struct line *lines;
    size_t nlines;
    struct dxline *dx;
    size_t ndx, dx_correct;
    struct variant *vars;
    size_t nvars;
    size_t next, inflight, completed, total, concurrency;
    bool progress;
};

struct job {
    struct ob_eval *e;
    size_t v, i;
    struct ob_parse_result rules;
};

/* ---- datasets ---------------------------------------------------------------- */

static bool missing_required(const struct ob_catalog *cat, const char *gold, const cJSON *params)
{
    const struct ob_action *a = gold ? ob_catalog_find(cat, gold) : NULL;

    for (size_t i = 0; a && i < a->nparams; i++)
        if (a->params[i].required && !a->params[i].def &&
            !cJSON_GetObjectItemCaseSensitive(params, a->params[i].name))
            return true;
    return false;
}

/* {"text": "...", "fixture": "PATH" (relative to the dataset), "expect": ACTION|null,
 * "params": {...}}: the fixture holds {"evidence": {NAME: data, ...}}. */
static int load_dx_line(struct ob_eval *e, const char *path, int lineno, const cJSON *o,
                        const char *ds, char *err, size_t errlen)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *fx = cJSON_GetObjectItemCaseSensitive(o, "fixture");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "expect");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
    char fpath[4096], *dir = ob_xstrdup(path), *slash = strrchr(dir, '/');
    struct dxline *l;
    FILE *f;
    char *buf;
    size_t got;
    cJSON *fixture;

    if (!cJSON_IsString(text) || !cJSON_IsString(fx) || !(cJSON_IsString(ex) || cJSON_IsNull(ex)) ||
        (params && !cJSON_IsObject(params))) {
        snprintf(err, errlen,
                 "%s:%d: expected {\"text\": \"...\", \"fixture\": FILE, \"expect\": ACTION or "
                 "null, \"params\": {...}}",
                 path, lineno);
        free(dir);
        return OB_EPARSE;
    }
    if (cJSON_IsString(ex) && !ob_catalog_find(e->b->cat, ex->valuestring)) {
        snprintf(err, errlen, "%s:%d: action '%s' is not in the catalog", path, lineno,
                 ex->valuestring);
        free(dir);
        return OB_EPARSE;
    }
    if (slash)
        *slash = '\0';
    snprintf(fpath, sizeof(fpath), "%s/%s", fx->valuestring[0] == '/' ? "" : (slash ? dir : "."),
             fx->valuestring);
    free(dir);
    f = fopen(fx->valuestring[0] == '/' ? fx->valuestring : fpath, "r");
    if (!f) {
        snprintf(err, errlen, "%s:%d: fixture %s: %s", path, lineno, fpath, strerror(errno));
        return OB_EPARSE;
    }
    buf = ob_xmalloc(MAX_LINE_LEN * 4 + 1);
    got = fread(buf, 1, MAX_LINE_LEN * 4, f);
    fclose(f);
    buf[got] = '\0';
    fixture = cJSON_Parse(buf);
    free(buf);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(fixture, "evidence"))) {
        snprintf(err, errlen, "%s:%d: fixture %s: expected {\"evidence\": {...}}", path, lineno,
                 fpath);
        cJSON_Delete(fixture);
        return OB_EPARSE;
    }
    e->dx = realloc(e->dx, (e->ndx + 1) * sizeof(*e->dx));
    l = &e->dx[e->ndx++];
    memset(l, 0, sizeof(*l));
    l->text = ob_xstrdup(text->valuestring);
    l->expect = cJSON_IsString(ex) ? ob_xstrdup(ex->valuestring) : NULL;
    l->params = params ? cJSON_Duplicate(params, 1) : NULL;
    l->fixture = fixture;
    l->fixture_name = ob_xstrdup(fx->valuestring);
    l->dataset = ds;
    l->lineno = lineno;
    return 0;
}

/* Parses the text (it must be understood as a diagnose request), runs the
 * playbook's analysis on the fixture and compares the first proposal. */
static void run_dx(struct ob_eval *e)
{
    const struct ob_diagnose *dg = e->b->diag;

    for (size_t i = 0; i < e->ndx; i++) {
        struct dxline *l = &e->dx[i];
        struct ob_parse_result *res = ob_xcalloc(1, sizeof(*res));
        struct ob_dx_result *r = ob_xcalloc(1, sizeof(*r));
        struct ob_dx_input in = {0};
        const struct ob_proposal *p;

        ob_intent_parse(e->b->cat, l->text, res);
        p = res->n ? &res->proposals[0] : NULL;
        if (res->status != OB_PARSE_OK || !p || strcmp(p->action->name, "diagnose")) {
            snprintf(l->got, sizeof(l->got), "not understood as diagnose (%s)",
                     p && p->action ? p->action->name : "nothing");
        } else if (!dg || !ob_diagnose_settings(dg)->enabled) {
            snprintf(l->got, sizeof(l->got), "diagnose is not configured");
        } else {
            in.service = ob_proposal_get(p, "service");
            in.env = ob_proposal_get(p, "env");
            in.symptom = ob_proposal_get(p, "symptom");
            in.text = l->text;
            in.evidence = cJSON_GetObjectItemCaseSensitive(l->fixture, "evidence");
            if (ob_diagnose_analyse(dg, e->b->cat, &in, r)) {
                snprintf(l->got, sizeof(l->got), "analysis failed");
            } else if (!r->n) {
                snprintf(l->got, sizeof(l->got), "none");
                l->correct = !l->expect;
            } else {
                const cJSON *it;

                ob_proposal_format(&r->proposals[0].prop, l->got, sizeof(l->got));
                l->correct = l->expect && !strcmp(r->proposals[0].prop.action->name, l->expect);
                cJSON_ArrayForEach(it, l->params)
                {
                    const char *v = ob_proposal_get(&r->proposals[0].prop, it->string);
                    char num[64];

                    if (cJSON_IsNumber(it))
                        snprintf(num, sizeof(num), "%g", it->valuedouble);
                    if (!v || strcmp(v, cJSON_IsNumber(it)   ? num
                                        : cJSON_IsString(it) ? it->valuestring
                                                             : ""))
                        l->correct = false;
                }
            }
        }
        e->dx_correct += l->correct;
        ob_dx_result_release(r);
        free(r);
        free(res);
    }
}

static void print_dx(struct ob_eval *e, FILE *f)
{
    if (!e->ndx)
        return;
    fprintf(f, "diagnosis (first proposal): %zu lines, %zu right, accuracy %.3f\n", e->ndx,
            e->dx_correct, (double)e->dx_correct / (double)e->ndx);
    for (size_t i = 0; i < e->ndx; i++) {
        const struct dxline *l = &e->dx[i];

        if (!l->correct)
            fprintf(f, "  miss %s:%d: \"%s\" with %s: expected %s, got %s\n", l->dataset, l->lineno,
                    l->text, l->fixture_name, l->expect ? l->expect : "none", l->got);
    }
}

bool ob_eval_diagnosis(const struct ob_eval *e, size_t *lines, size_t *correct, double *accuracy)
{
    if (!e || !e->ndx)
        return false;
    if (lines)
        *lines = e->ndx;
    if (correct)
        *correct = e->dx_correct;
    if (accuracy)
        *accuracy = (double)e->dx_correct / (double)e->ndx;
    return true;
}

static int load_dataset(struct ob_eval *e, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    const char *ds;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return OB_EPARSE;
    }
    e->datasets = realloc(e->datasets, (e->ndatasets + 1) * sizeof(*e->datasets));
    ds = e->datasets[e->ndatasets++] = ob_xstrdup(path);
    while ((n = getline(&buf, &cap, f)) >= 0) {
        cJSON *o, *text, *action, *params;
        struct line *l;
        char *p = buf;

        lineno++;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            continue;
        if (n > MAX_LINE_LEN || e->nlines >= MAX_LINES) {
            snprintf(err, errlen, "%s:%d: line too long or too many lines", path, lineno);
            rc = OB_EPARSE;
            break;
        }
        o = cJSON_Parse(p);
        if (cJSON_GetObjectItemCaseSensitive(o, "fixture")) {
            rc = load_dx_line(e, path, lineno, o, ds, err, errlen);
            cJSON_Delete(o);
            if (rc)
                break;
            continue;
        }
        text = cJSON_GetObjectItemCaseSensitive(o, "text");
        action = cJSON_GetObjectItemCaseSensitive(o, "action");
        params = cJSON_GetObjectItemCaseSensitive(o, "params");
        if (!cJSON_IsObject(o) || !cJSON_IsString(text) ||
            !(cJSON_IsString(action) || cJSON_IsNull(action)) ||
            (params && !cJSON_IsObject(params) && !cJSON_IsNull(params))) {
            snprintf(err, errlen,
                     "%s:%d: expected {\"text\": \"...\", \"action\": NAME or null, \"params\": "
                     "{...}}",
                     path, lineno);
            cJSON_Delete(o);
            rc = OB_EPARSE;
            break;
        }
        if (cJSON_IsString(action) && !ob_catalog_find(e->b->cat, action->valuestring)) {
            snprintf(err, errlen, "%s:%d: action '%s' is not in the catalog", path, lineno,
                     action->valuestring);
            cJSON_Delete(o);
            rc = OB_EPARSE;
            break;
        }
        e->lines = realloc(e->lines, (e->nlines + 1) * sizeof(*e->lines));
        l = &e->lines[e->nlines++];
        memset(l, 0, sizeof(*l));
        l->text = ob_xstrdup(text->valuestring);
        l->gold = cJSON_IsString(action) ? ob_xstrdup(action->valuestring) : NULL;
        l->params = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
        l->dataset = ds;
        l->lineno = lineno;
        /* "ask": true/false overrides what the params say. */
        if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "ask")))
            l->missing_required =
                l->gold && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ask"));
        else
            l->missing_required = missing_required(e->b->cat, l->gold, l->params);
        cJSON_Delete(o);
    }
    free(buf);
    fclose(f);
    return rc;
}

/* ---- variants ---------------------------------------------------------------- */

static int set_variant_key(struct ob_eval *e, struct variant *v, const char *key, const char *val,
                           char *err, size_t errlen)
{
    if (!strcmp(key, "mode")) {
        if (ob_llm_mode_parse(val, &v->set.mode)) {
            snprintf(err, errlen,
                     "variant %s: unknown mode '%s' (rules-only, rules-first, "
                     "llm-first)",
                     v->name, val);
            return OB_EUSAGE;
        }
    } else if (!strcmp(key, "connection")) {
        const struct ob_llm_conn *c = ob_llm_conn_find(e->b->llm, val);

        if (!c) {
            snprintf(err, errlen, "variant %s: no connection named '%s' in the config", v->name,
                     val);
            return OB_EUSAGE;
        }
        v->conn = *c;
        if (v->own_model)
            v->conn.model = v->own_model;
    } else if (!strcmp(key, "model")) {
        if (!*val || strpbrk(val, "/?#% ")) {
            snprintf(err, errlen, "variant %s: '%s' is not a model name", v->name, val);
            return OB_EUSAGE;
        }
        free(v->own_model);
        v->own_model = ob_xstrdup(val);
        v->conn.model = v->own_model;
    } else if (!strcmp(key, "prompt")) {
        int rc;

        free(v->own_prompt);
        free(v->own_prompt_path);
        v->own_prompt = NULL;
        v->own_prompt_path = ob_xstrdup(val);
        rc = ob_llm_prompt_load(val, &v->own_prompt, v->set.prompt_version);
        if (rc) {
            snprintf(err, errlen, "variant %s: cannot read prompt %s: %s", v->name, val,
                     ob_strerror(rc));
            return OB_EUSAGE;
        }
        v->set.prompt = v->own_prompt;
        v->set.prompt_path = v->own_prompt_path;
    } else if (!strcmp(key, "temperature")) {
        char *end = NULL;
        double t = strtod(val, &end);

        if (end == val || *end || !(t >= 0 && t <= 2)) {
            snprintf(err, errlen, "variant %s: temperature must be a number from 0 to 2", v->name);
            return OB_EUSAGE;
        }
        v->set.temperature = t;
    } else {
        snprintf(err, errlen,
                 "variant %s: unknown key '%s' (prompt, connection, model, mode, temperature)",
                 v->name, key);
        return OB_EUSAGE;
    }
    return 0;
}

static int parse_variant(struct ob_eval *e, struct variant *v, const char *spec, char *err,
                         size_t errlen)
{
    const char *colon = spec ? strchr(spec, ':') : NULL;
    char *list, *save = NULL, *item;
    int rc = 0;

    if (spec && !colon)
        colon = spec + strlen(spec);
    if (spec) {
        size_t n = (size_t)(colon - spec);

        if (!n || n >= sizeof(v->name)) {
            snprintf(err, errlen, "--variant wants NAME:key=value,... (got '%s')", spec);
            return OB_EUSAGE;
        }
        memcpy(v->name, spec, n);
        v->name[n] = '\0';
        for (const char *p = v->name; *p; p++) {
            if (!isalnum((unsigned char)*p) && !strchr("_.-", *p)) {
                snprintf(err, errlen, "variant name '%s': letters, digits, _ . - only", v->name);
                return OB_EUSAGE;
            }
        }
    } else {
        ob_strlcpy(v->name, "default", sizeof(v->name));
    }
    if (!spec || !*colon)
        goto check;
    list = ob_xstrdup(colon + 1);
    for (item = strtok_r(list, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');

        if (!eq || eq == item) {
            snprintf(err, errlen, "variant %s: '%s' is not key=value", v->name, item);
            rc = OB_EUSAGE;
            break;
        }
        *eq = '\0';
        rc = set_variant_key(e, v, item, eq + 1, err, errlen);
    }
    free(list);
    if (rc)
        return rc;
check:
    v->set.enabled = v->set.mode != OB_LLM_RULES_ONLY;
    v->set.conn = v->conn.name ? &v->conn : NULL;
    if (v->set.enabled && !v->set.conn) {
        snprintf(err, errlen,
                 "variant %s: mode %s needs a connection (connections: in the "
                 "config, connection=NAME)",
                 v->name, ob_llm_mode_name(v->set.mode));
        return OB_EUSAGE;
    }
    if (v->set.enabled && !v->set.prompt) {
        snprintf(err, errlen, "variant %s: mode %s needs a prompt (llm.prompt, or prompt=FILE)",
                 v->name, ob_llm_mode_name(v->set.mode));
        return OB_EUSAGE;
    }
    return 0;
}

static int setup_variants(struct ob_eval *e, const struct ob_eval_opts *o, char *err, size_t errlen)
{
    size_t n = o->nvariants ? o->nvariants : 1;

    if (n > MAX_VARIANTS) {
        snprintf(err, errlen, "at most %d variants", MAX_VARIANTS);
        return OB_EUSAGE;
    }
    e->vars = ob_xcalloc(n, sizeof(*e->vars));
    e->nvars = n;
    for (size_t i = 0; i < n; i++) {
        struct variant *v = &e->vars[i];
        int rc;

        v->set = e->b->llm->set;
        if (v->set.conn)
            v->conn = *v->set.conn;
        rc = parse_variant(e, v, o->nvariants ? o->variants[i] : NULL, err, errlen);
        if (rc)
            return rc;
        for (size_t k = 0; k < i; k++) {
            if (!strcmp(e->vars[k].name, v->name)) {
                snprintf(err, errlen, "two variants are named %s", v->name);
                return OB_EUSAGE;
            }
        }
    }
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

static const char *param_value(const struct ob_proposal *p, const char *name)
{
    return ob_proposal_get(p, name);
}

static bool params_match(const cJSON *gold, const struct ob_proposal *p)
{
    const cJSON *it;
    char num[64];

    cJSON_ArrayForEach(it, gold)
    {
        const char *want, *got = param_value(p, it->string);

        if (cJSON_IsString(it)) {
            want = it->valuestring;
        } else if (cJSON_IsNumber(it)) {
            snprintf(num, sizeof(num), "%lld", (long long)it->valuedouble);
            want = num;
        } else if (cJSON_IsNull(it)) {
            if (got)
                return false;
            continue;
        } else {
            return false;
        }
        if (!got || strcmp(got, want))
            return false;
    }
    return true;
}

static void progress(struct ob_eval *e)
{
    if (!e->progress)
        return;
    fprintf(stderr, "\reval: %zu/%zu", e->completed, e->total);
    if (e->completed == e->total)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* Scores one line of one variant from the final parse. */
static void score(struct ob_eval *e, size_t vi, size_t li, const struct ob_parse_result *res,
                  const struct ob_llm_result *lr, int64_t latency_ms)
{
    struct row *r = &e->vars[vi].rows[li];
    const struct line *l = &e->lines[li];
    bool acted = res->status == OB_PARSE_OK || res->status == OB_PARSE_ASK;
    static const char *const names[] = {"none", "ok", "ask", "invalid", "ambiguous"};

    r->done = true;
    r->outcome = names[res->status];
    if (acted && res->n && res->proposals[0].action) {
        ob_strlcpy(r->pred, res->proposals[0].action->name, sizeof(r->pred));
        ob_proposal_format(&res->proposals[0], r->pred_params, sizeof(r->pred_params));
        ob_strlcpy(r->source, res->proposals[0].source ? res->proposals[0].source : "?",
                   sizeof(r->source));
    } else {
        ob_strlcpy(r->pred, "none", sizeof(r->pred));
        ob_strlcpy(r->source, lr && !ob_llm_falls_back(lr) ? "llm" : "rules", sizeof(r->source));
    }
    if (res->status == OB_PARSE_INVALID || res->status == OB_PARSE_AMBIGUOUS ||
        res->status == OB_PARSE_ASK)
        ob_strlcpy(r->detail, res->message, sizeof(r->detail));
    r->asked = res->status == OB_PARSE_ASK;
    if (lr) {
        r->llm_called = true;
        r->answered = lr->answered;
        r->schema_valid = lr->schema_valid;
        r->fallback = ob_llm_falls_back(lr);
        r->tokens_in = lr->tokens_in;
        r->tokens_out = lr->tokens_out;
        r->cost = lr->cost_usd;
        if (lr->outcome == OB_LLM_CLARIFY) {
            r->outcome = "clarify";
            r->asked = true;
            ob_strlcpy(r->detail, lr->text, sizeof(r->detail));
        } else if (lr->outcome == OB_LLM_NO_ACTION) {
            r->outcome = "no_action";
            ob_strlcpy(r->detail, lr->text, sizeof(r->detail));
        } else if (r->fallback) {
            snprintf(r->detail, sizeof(r->detail), "LLM %s: %s", lr->result, lr->why);
        }
    }
    r->latency_ms = latency_ms;
    r->correct = !strcmp(r->pred, l->gold ? l->gold : "none");
    r->exact = r->correct && (!l->gold || params_match(l->params, &res->proposals[0]));
    e->completed++;
    progress(e);
}

static void llm_done(void *data, const struct ob_llm_result *lr)
{
    struct job *j = data;
    struct ob_eval *e = j->e;
    struct ob_parse_result *res = &j->rules, none;

    if (!ob_llm_falls_back(lr)) {
        if (lr->outcome == OB_LLM_PROPOSAL) {
            res = (struct ob_parse_result *)&lr->parse;
        } else {
            memset(&none, 0, sizeof(none));
            res = &none;
        }
    }
    score(e, j->v, j->i, res, lr, lr->latency_ms);
    e->inflight--;
    free(j);
}

static int ensure_llm(struct ob_eval *e)
{
    int rc = 0;

    if (!e->http) {
        rc = ob_http_new(&e->http, e->loop);
        e->own_http = rc == 0;
    }
    if (!rc && !e->llm)
        rc = ob_llm_new(&e->llm, e->loop, e->http);
    return rc;
}

/* Starts lines while fewer than `concurrency` LLM calls are in flight. */
static void pump(struct ob_eval *e)
{
    while (e->next < e->total && e->inflight < e->concurrency) {
        size_t vi = e->next / e->nlines, li = e->next % e->nlines;
        struct variant *v = &e->vars[vi];
        struct job *j = ob_xcalloc(1, sizeof(*j));
        struct ob_llm_parse_req rq = {0};
        int64_t t0 = ob_now_ms();
        int rc;

        e->next++;
        j->e = e;
        j->v = vi;
        j->i = li;
        ob_intent_parse(e->b->cat, e->lines[li].text, &j->rules);
        if (!ob_llm_wanted(&v->set, e->lines[li].text, &j->rules)) {
            score(e, vi, li, &j->rules, NULL, ob_now_ms() - t0);
            free(j);
            continue;
        }
        rq.set = &v->set;
        rq.cat = e->b->cat;
        rq.red = e->b->red;
        rq.text = e->lines[li].text;
        rq.no_budget = true;
        rc = ensure_llm(e);
        if (!rc)
            rc = ob_llm_parse(e->llm, &rq, llm_done, j, NULL);
        if (rc) {
            struct ob_llm_result lr = {0};

            lr.outcome = OB_LLM_UNAVAILABLE;
            ob_strlcpy(lr.result, "error", sizeof(lr.result));
            snprintf(lr.why, sizeof(lr.why), "cannot start: %s", ob_strerror(rc));
            score(e, vi, li, &j->rules, &lr, 0);
            free(j);
            continue;
        }
        e->inflight++;
    }
}

/* ---- metrics -------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile. */
static int64_t percentile(const int64_t *sorted, size_t n, double p)
{
    size_t k;

    if (!n)
        return 0;
    k = (size_t)ceil(p * (double)n);
    return sorted[k ? k - 1 : 0];
}

static double rate(size_t num, size_t den)
{
    return den ? (double)num / (double)den : -1;
}

static int label_index(struct ob_eval_summary *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i], name))
            return (int)i;
    return -1;
}

static void summarize(struct ob_eval *e, struct variant *v)
{
    struct ob_eval_summary *s = &v->sum;
    int64_t *lat = ob_xcalloc(e->nlines ? e->nlines : 1, sizeof(*lat));
    size_t nlat = 0, ncalled = 0;
    const struct ob_catalog *cat = e->b->cat;
    size_t nf1 = 0;
    double f1sum = 0;

    memset(s, 0, sizeof(*s));
    ob_strlcpy(s->variant, v->name, sizeof(s->variant));
    ob_strlcpy(s->mode, ob_llm_mode_name(v->set.mode), sizeof(s->mode));
    if (v->set.enabled && v->set.conn) {
        ob_strlcpy(s->connection, v->set.conn->name, sizeof(s->connection));
        ob_strlcpy(s->model, v->set.conn->model, sizeof(s->model));
        ob_strlcpy(s->prompt_version, v->set.prompt_version, sizeof(s->prompt_version));
    }
    /* Labels: the catalog's actions that occur, in catalog order, then none. */
    for (size_t a = 0; a < cat->n && s->nlabels + 1 < OB_EVAL_MAX_LABELS; a++) {
        const char *name = cat->actions[a].name;
        bool seen = false;

        for (size_t i = 0; i < e->nlines && !seen; i++)
            seen = (e->lines[i].gold && !strcmp(e->lines[i].gold, name)) ||
                   !strcmp(v->rows[i].pred, name);
        if (seen)
            ob_strlcpy(s->labels[s->nlabels++], name, sizeof(s->labels[0]));
    }
    ob_strlcpy(s->labels[s->nlabels++], "none", sizeof(s->labels[0]));
    for (size_t i = 0; i < e->nlines; i++) {
        const struct row *r = &v->rows[i];
        const struct line *l = &e->lines[i];
        int g = label_index(s, l->gold ? l->gold : "none"), p = label_index(s, r->pred);

        s->lines++;
        s->correct += r->correct;
        s->exact += r->exact;
        if (g >= 0 && p >= 0)
            s->confusion[g][p]++;
        if (l->gold && l->missing_required) {
            s->clarify_total++;
            s->clarify_asked += r->asked;
        }
        if (!l->gold) {
            s->noaction_total++;
            s->noaction_acted += strcmp(r->pred, "none") != 0;
        }
        s->answered += r->answered;
        s->schema_valid += r->answered && r->schema_valid;
        s->llm_calls += r->llm_called;
        s->fallbacks += r->fallback;
        s->tokens_in += r->tokens_in;
        s->tokens_out += r->tokens_out;
        s->cost_usd += r->cost;
        ncalled += r->llm_called;
    }
    /* Latency: of the lines that called the LLM; without any, of all lines. */
    for (size_t i = 0; i < e->nlines; i++)
        if (!ncalled || v->rows[i].llm_called)
            lat[nlat++] = v->rows[i].latency_ms;
    for (size_t k = 0; k + 1 < s->nlabels; k++) {
        struct ob_eval_action_stats *as = &s->actions[s->nactions++];
        size_t col = 0, row = 0;

        ob_strlcpy(as->action, s->labels[k], sizeof(as->action));
        for (size_t j = 0; j < s->nlabels; j++) {
            col += s->confusion[j][k];
            row += s->confusion[k][j];
        }
        as->tp = s->confusion[k][k];
        as->fp = col - as->tp;
        as->fn = row - as->tp;
        as->support = row;
        as->precision = as->tp + as->fp ? (double)as->tp / (double)(as->tp + as->fp) : 0;
        as->recall = as->tp + as->fn ? (double)as->tp / (double)(as->tp + as->fn) : 0;
        as->f1 = as->precision + as->recall > 0
                     ? 2 * as->precision * as->recall / (as->precision + as->recall)
                     : 0;
        f1sum += as->f1;
        nf1++;
    }
    s->accuracy = rate(s->correct, s->lines);
    s->exact_match = rate(s->exact, s->lines);
    s->clarification_rate = rate(s->clarify_asked, s->clarify_total);
    s->false_action_rate = rate(s->noaction_acted, s->noaction_total);
    s->schema_valid_rate = rate(s->schema_valid, s->answered);
    s->macro_f1 = nf1 ? f1sum / (double)nf1 : -1;
    qsort(lat, nlat, sizeof(*lat), cmp_i64);
    s->latency_p50_ms = percentile(lat, nlat, 0.50);
    s->latency_p95_ms = percentile(lat, nlat, 0.95);
    free(lat);
}

/* ---- reports ------------------------------------------------------------------------ */

static const char *pct(double r, char *buf, size_t len)
{
    if (r < 0)
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.3f", r);
    return buf;
}

static void print_summary(struct ob_eval *e, FILE *f)
{
    char a[16], b[16], c[16], d[16], g[16];

    fprintf(f, "%-14s %-11s %6s %8s %6s %8s %12s %12s %14s %10s %8s %8s\n", "variant", "mode",
            "lines", "accuracy", "exact", "clarify", "false-action", "schema-valid",
            "tokens in/out", "cost USD", "p50 ms", "p95 ms");
    for (size_t i = 0; i < e->nvars; i++) {
        const struct ob_eval_summary *s = &e->vars[i].sum;
        char tok[40];

        snprintf(tok, sizeof(tok), "%lld/%lld", (long long)s->tokens_in, (long long)s->tokens_out);
        fprintf(f, "%-14s %-11s %6zu %8s %6s %8s %12s %12s %14s %10.6f %8lld %8lld\n", s->variant,
                s->mode, s->lines, pct(s->accuracy, a, sizeof(a)),
                pct(s->exact_match, b, sizeof(b)), pct(s->clarification_rate, c, sizeof(c)),
                pct(s->false_action_rate, d, sizeof(d)), pct(s->schema_valid_rate, g, sizeof(g)),
                tok, s->cost_usd, (long long)s->latency_p50_ms, (long long)s->latency_p95_ms);
    }
}

/* Dataset texts and LLM answers are user text: ob_csv_field quotes them
 * (RFC 4180) and defuses spreadsheet formulas. */
static void csv_row(FILE *f, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        ob_csv_field(f, cells[i]);
    }
    fputs("\r\n", f);
}

static void gold_text(const struct line *l, char *buf, size_t len)
{
    char *p = cJSON_PrintUnformatted(l->params);

    snprintf(buf, len, "%s", p ? p : "{}");
    free(p);
}

static int write_csv(struct ob_eval *e, const char *path)
{
    static const char *const head[] = {"kind",        "variant",      "dataset",     "line",
                                       "text",        "gold_action",  "gold_params", "pred_action",
                                       "pred_params", "outcome",      "source",      "correct",
                                       "exact",       "schema_valid", "tokens_in",   "tokens_out",
                                       "cost_usd",    "latency_ms",   "detail"};
    FILE *f = fopen(path, "w");

    if (!f)
        return -errno;
    csv_row(f, head, 19);
    for (size_t vi = 0; vi < e->nvars; vi++) {
        const struct variant *v = &e->vars[vi];

        for (size_t i = 0; i < e->nlines; i++) {
            const struct row *r = &v->rows[i];
            const struct line *l = &e->lines[i];
            char ln[16], gp[600], ti[24], to[24], cost[32], lat[24];
            const char *cells[19];

            snprintf(ln, sizeof(ln), "%d", l->lineno);
            gold_text(l, gp, sizeof(gp));
            snprintf(ti, sizeof(ti), "%lld", (long long)r->tokens_in);
            snprintf(to, sizeof(to), "%lld", (long long)r->tokens_out);
            snprintf(cost, sizeof(cost), "%.8f", r->cost);
            snprintf(lat, sizeof(lat), "%lld", (long long)r->latency_ms);
            cells[0] = "line";
            cells[1] = v->name;
            cells[2] = l->dataset;
            cells[3] = ln;
            cells[4] = l->text;
            cells[5] = l->gold ? l->gold : "none";
            cells[6] = gp;
            cells[7] = r->pred;
            cells[8] = r->pred_params;
            cells[9] = r->outcome;
            cells[10] = r->source;
            cells[11] = r->correct ? "1" : "0";
            cells[12] = r->exact ? "1" : "0";
            cells[13] = !r->answered ? "" : r->schema_valid ? "1" : "0";
            cells[14] = ti;
            cells[15] = to;
            cells[16] = cost;
            cells[17] = lat;
            cells[18] = r->detail;
            csv_row(f, cells, 19);
        }
    }
    for (size_t vi = 0; vi < e->nvars; vi++) {
        const struct ob_eval_summary *s = &e->vars[vi].sum;
        char val[12][48];
        const char *names[12] = {"accuracy",          "exact_match",       "clarification_rate",
                                 "false_action_rate", "schema_valid_rate", "macro_f1",
                                 "tokens_in",         "tokens_out",        "cost_usd",
                                 "latency_p50_ms",    "latency_p95_ms",    "lines"};
        double rates[6] = {s->accuracy,          s->exact_match,       s->clarification_rate,
                           s->false_action_rate, s->schema_valid_rate, s->macro_f1};

        for (int k = 0; k < 6; k++)
            pct(rates[k], val[k], sizeof(val[k]));
        snprintf(val[6], sizeof(val[6]), "%lld", (long long)s->tokens_in);
        snprintf(val[7], sizeof(val[7]), "%lld", (long long)s->tokens_out);
        snprintf(val[8], sizeof(val[8]), "%.8f", s->cost_usd);
        snprintf(val[9], sizeof(val[9]), "%lld", (long long)s->latency_p50_ms);
        snprintf(val[10], sizeof(val[10]), "%lld", (long long)s->latency_p95_ms);
        snprintf(val[11], sizeof(val[11]), "%zu", s->lines);
        for (int k = 0; k < 12; k++) {
            const char *cells[19] = {"summary", s->variant};

            cells[4] = names[k];
            cells[18] = val[k];
            csv_row(f, cells, 19);
        }
    }
    if (fclose(f))
        return -errno;
    return 0;
}

static void html_rate_row(FILE *f, struct ob_eval *e, const char *name, size_t off)
{
    char b[16];

    fprintf(f, "<tr><th>%s</th>", name);
    for (size_t i = 0; i < e->nvars; i++) {
        double r = *(const double *)((const char *)&e->vars[i].sum + off);

        fprintf(f, "<td>%s</td>", pct(r, b, sizeof(b)));
    }
    fputs("</tr>\n", f);
}

static int write_html(struct ob_eval *e, const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -errno;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>opsbot eval</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
          "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
          "th{background:#f4f4f4}td.t{text-align:left}\n"
          ".cm td{min-width:3em;text-align:center}\n"
          "h2{margin-top:1.5em}.v{display:inline-block;vertical-align:top;margin-right:2em}\n"
          "</style></head><body>\n<h1>opsbot eval</h1>\n<p>Datasets: ",
          f);
    for (size_t i = 0; i < e->ndatasets; i++) {
        fputs(i ? ", " : "", f);
        ob_html_escape(f, e->datasets[i]);
    }
    fprintf(f, " &middot; %zu line(s) &middot; %zu variant(s)</p>\n", e->nlines, e->nvars);

    fputs("<h2>Summary</h2>\n<table><tr><th></th>", f);
    for (size_t i = 0; i < e->nvars; i++) {
        fputs("<th>", f);
        ob_html_escape(f, e->vars[i].name);
        fputs("</th>", f);
    }
    fputs("</tr>\n<tr><th>mode</th>", f);
    for (size_t i = 0; i < e->nvars; i++) {
        const struct ob_eval_summary *s = &e->vars[i].sum;

        fputs("<td>", f);
        ob_html_escape(f, s->mode);
        if (s->model[0]) {
            fputs(" &middot; ", f);
            ob_html_escape(f, s->connection);
            fputs(" ", f);
            ob_html_escape(f, s->model);
            fputs("@", f);
            ob_html_escape(f, s->prompt_version);
        }
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
    html_rate_row(f, e, "action accuracy", offsetof(struct ob_eval_summary, accuracy));
    html_rate_row(f, e, "full-frame exact match", offsetof(struct ob_eval_summary, exact_match));
    html_rate_row(f, e, "macro F1", offsetof(struct ob_eval_summary, macro_f1));
    html_rate_row(f, e, "clarification rate", offsetof(struct ob_eval_summary, clarification_rate));
    html_rate_row(f, e, "false-action rate", offsetof(struct ob_eval_summary, false_action_rate));
    html_rate_row(f, e, "schema-valid rate", offsetof(struct ob_eval_summary, schema_valid_rate));
    fputs("<tr><th>tokens in / out</th>", f);
    for (size_t i = 0; i < e->nvars; i++)
        fprintf(f, "<td>%lld / %lld</td>", (long long)e->vars[i].sum.tokens_in,
                (long long)e->vars[i].sum.tokens_out);
    fputs("</tr>\n<tr><th>cost (USD)</th>", f);
    for (size_t i = 0; i < e->nvars; i++)
        fprintf(f, "<td>%.6f</td>", e->vars[i].sum.cost_usd);
    fputs("</tr>\n<tr><th>latency p50 / p95 (ms)</th>", f);
    for (size_t i = 0; i < e->nvars; i++)
        fprintf(f, "<td>%lld / %lld</td>", (long long)e->vars[i].sum.latency_p50_ms,
                (long long)e->vars[i].sum.latency_p95_ms);
    fputs("</tr>\n<tr><th>LLM calls / fallbacks</th>", f);
    for (size_t i = 0; i < e->nvars; i++)
        fprintf(f, "<td>%zu / %zu</td>", e->vars[i].sum.llm_calls, e->vars[i].sum.fallbacks);
    fputs("</tr></table>\n", f);

    fputs("<h2>Per action</h2>\n<table><tr><th>action</th>", f);
    for (size_t i = 0; i < e->nvars; i++) {
        fputs("<th colspan=\"4\">", f);
        ob_html_escape(f, e->vars[i].name);
        fputs("</th>", f);
    }
    fputs("</tr>\n<tr><th></th>", f);
    for (size_t i = 0; i < e->nvars; i++)
        fputs("<th>precision</th><th>recall</th><th>F1</th><th>support</th>", f);
    fputs("</tr>\n", f);
    for (size_t a = 0; a < e->b->cat->n; a++) {
        const char *name = e->b->cat->actions[a].name;
        bool any = false;

        for (size_t i = 0; i < e->nvars && !any; i++)
            for (size_t k = 0; k < e->vars[i].sum.nactions && !any; k++)
                any = !strcmp(e->vars[i].sum.actions[k].action, name);
        if (!any)
            continue;
        fputs("<tr><th>", f);
        ob_html_escape(f, name);
        fputs("</th>", f);
        for (size_t i = 0; i < e->nvars; i++) {
            const struct ob_eval_action_stats *as = NULL;

            for (size_t k = 0; k < e->vars[i].sum.nactions; k++)
                if (!strcmp(e->vars[i].sum.actions[k].action, name))
                    as = &e->vars[i].sum.actions[k];
            if (as)
                fprintf(f, "<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%zu</td>", as->precision,
                        as->recall, as->f1, as->support);
            else
                fputs("<td></td><td></td><td></td><td></td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<h2>Confusion matrices</h2>\n<p>Rows: expected; columns: predicted. "
          "Green: right, red: wrong; the darker, the more lines.</p>\n",
          f);
    for (size_t i = 0; i < e->nvars; i++) {
        const struct ob_eval_summary *s = &e->vars[i].sum;
        size_t max = 1;

        for (size_t g = 0; g < s->nlabels; g++)
            for (size_t p = 0; p < s->nlabels; p++)
                if (s->confusion[g][p] > max)
                    max = s->confusion[g][p];
        fputs("<div class=\"v\"><h3>", f);
        ob_html_escape(f, s->variant);
        fputs("</h3><table class=\"cm\"><tr><th>expected \\ predicted</th>", f);
        for (size_t p = 0; p < s->nlabels; p++) {
            fputs("<th>", f);
            ob_html_escape(f, s->labels[p]);
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        for (size_t g = 0; g < s->nlabels; g++) {
            fputs("<tr><th>", f);
            ob_html_escape(f, s->labels[g]);
            fputs("</th>", f);
            for (size_t p = 0; p < s->nlabels; p++) {
                size_t c = s->confusion[g][p];
                double a = c ? 0.15 + 0.85 * (double)c / (double)max : 0;

                if (c)
                    fprintf(f, "<td style=\"background:rgba(%s,%.2f)\">%zu</td>",
                            g == p ? "40,160,70" : "210,50,40", a, c);
                else
                    fputs("<td></td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table></div>\n", f);
    }
    fputs("<h2>Failures</h2>\n", f);
    for (size_t i = 0; i < e->nvars; i++) {
        const struct variant *v = &e->vars[i];
        size_t n = 0;

        fputs("<h3>", f);
        ob_html_escape(f, v->name);
        fputs("</h3>\n<table><tr><th>line</th><th>text</th><th>expected</th><th>predicted</th>"
              "<th>outcome</th><th>detail</th></tr>\n",
              f);
        for (size_t k = 0; k < e->nlines; k++) {
            const struct row *r = &v->rows[k];
            const struct line *l = &e->lines[k];
            char gp[600];

            if (r->exact)
                continue;
            n++;
            gold_text(l, gp, sizeof(gp));
            fprintf(f, "<tr><td>%d</td><td class=\"t\">", l->lineno);
            ob_html_escape(f, l->text);
            fputs("</td><td class=\"t\">", f);
            ob_html_escape(f, l->gold ? l->gold : "none");
            fputs(" ", f);
            ob_html_escape(f, gp);
            fputs("</td><td class=\"t\">", f);
            ob_html_escape(f, r->pred_params[0] ? r->pred_params : r->pred);
            fputs("</td><td class=\"t\">", f);
            ob_html_escape(f, r->outcome);
            fputs("</td><td class=\"t\">", f);
            ob_html_escape(f, r->detail);
            fputs("</td></tr>\n", f);
        }
        if (!n)
            fputs("<tr><td colspan=\"6\" class=\"t\">none</td></tr>\n", f);
        fputs("</table>\n", f);
    }
    fputs("</body></html>\n", f);
    if (fclose(f))
        return -errno;
    return 0;
}

/* ---- the run ------------------------------------------------------------------------ */

int ob_eval_run(struct ob_eval **out, uv_loop_t *loop, struct ob_http *http,
                const struct ob_bundle *b, const struct ob_eval_opts *o, char *err, size_t errlen)
{
    struct ob_eval *e = ob_xcalloc(1, sizeof(*e));
    int rc = 0;

    *out = NULL;
    err[0] = '\0';
    e->b = b;
    e->loop = loop;
    e->http = http;
    e->concurrency = o->concurrency ? o->concurrency : 4;
    e->progress = o->progress;
    if (!o->ndatasets) {
        snprintf(err, errlen, "no dataset given");
        rc = OB_EUSAGE;
        goto out;
    }
    rc = setup_variants(e, o, err, errlen);
    if (rc)
        goto out;
    for (size_t i = 0; i < o->ndatasets && !rc; i++)
        rc = load_dataset(e, o->datasets[i], err, errlen);
    if (rc)
        goto out;
    if (!e->nlines && !e->ndx) {
        snprintf(err, errlen, "the dataset(s) hold no lines");
        rc = OB_EPARSE;
        goto out;
    }
    for (size_t i = 0; i < e->nvars; i++)
        e->vars[i].rows = ob_xcalloc(e->nlines ? e->nlines : 1, sizeof(*e->vars[i].rows));
    e->total = e->nlines * e->nvars;
    for (;;) {
        pump(e);
        if (e->completed == e->total)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < e->nvars && e->nlines; i++)
        summarize(e, &e->vars[i]);
    run_dx(e);
    if (o->out && e->nlines)
        print_summary(e, o->out);
    if (o->out)
        print_dx(e, o->out);
    if (o->csv_path) {
        rc = write_csv(e, o->csv_path);
        if (rc) {
            snprintf(err, errlen, "cannot write %s: %s", o->csv_path, ob_strerror(rc));
            goto out;
        }
    }
    if (o->html_path) {
        rc = write_html(e, o->html_path);
        if (rc) {
            snprintf(err, errlen, "cannot write %s: %s", o->html_path, ob_strerror(rc));
            goto out;
        }
    }
out:
    ob_llm_free(e->llm);
    e->llm = NULL;
    if (e->own_http) {
        ob_http_free(e->http);
        e->own_http = false;
        uv_run(loop, UV_RUN_NOWAIT);
    }
    e->http = NULL;
    if (rc) {
        ob_eval_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

size_t ob_eval_nvariants(const struct ob_eval *e)
{
    return e ? e->nvars : 0;
}

const struct ob_eval_summary *ob_eval_summary(const struct ob_eval *e, size_t variant)
{
    return e && variant < e->nvars ? &e->vars[variant].sum : NULL;
}

bool ob_eval_gate(const struct ob_eval *e, double min_accuracy, char *msg, size_t len)
{
    size_t off = 0;
    bool ok = true;

    if (len)
        msg[0] = '\0';
    if (e && e->ndx && (double)e->dx_correct / (double)e->ndx < min_accuracy - 1e-12) {
        ok = false;
        off = (size_t)snprintf(msg, len, "diagnosis: accuracy %.3f < %.3f (%zu of %zu lines right)",
                               (double)e->dx_correct / (double)e->ndx, min_accuracy, e->dx_correct,
                               e->ndx);
        if (off >= len)
            off = len;
    }
    for (size_t i = 0; e && e->nlines && i < e->nvars; i++) {
        const struct ob_eval_summary *s = &e->vars[i].sum;

        if (s->accuracy >= min_accuracy - 1e-12)
            continue;
        ok = false;
        if (off < len)
            off += (size_t)snprintf(
                msg + off, len - off, "%svariant %s: accuracy %.3f < %.3f (%zu of %zu lines right)",
                off ? "; " : "", s->variant, s->accuracy, min_accuracy, s->correct, s->lines);
    }
    return ok;
}

void ob_eval_free(struct ob_eval *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nlines; i++) {
        free(e->lines[i].text);
        free(e->lines[i].gold);
        cJSON_Delete(e->lines[i].params);
    }
    free(e->lines);
    for (size_t i = 0; i < e->ndx; i++) {
        free(e->dx[i].text);
        free(e->dx[i].expect);
        free(e->dx[i].fixture_name);
        cJSON_Delete(e->dx[i].params);
        cJSON_Delete(e->dx[i].fixture);
    }
    free(e->dx);
    for (size_t i = 0; i < e->ndatasets; i++)
        free(e->datasets[i]);
    free(e->datasets);
    for (size_t i = 0; e->vars && i < e->nvars; i++) {
        free(e->vars[i].own_prompt);
        free(e->vars[i].own_prompt_path);
        free(e->vars[i].own_model);
        free(e->vars[i].rows);
    }
    free(e->vars);
    free(e);
}

/* ---- the command ---------------------------------------------------------------------- */

static const char usage_eval[] =
    "usage: opsbot eval -c FILE DATASET.jsonl... [--variant NAME:key=value,...]...\n"
    "                   [--csv OUT] [--html OUT] [--min-accuracy X] [--concurrency N]\n"
    "Runs every line of the datasets through the parser once per variant and\n"
    "prints accuracy, full-frame exact match, clarification rate, false-action\n"
    "rate, schema-valid rate, tokens, cost and latency p50/p95 (docs/LLM.md).\n"
    "Dataset lines: {\"text\": \"...\", \"action\": NAME|null, \"params\": {...}}.\n"
    "Diagnosis lines: {\"text\": \"...\", \"fixture\": FILE, \"expect\": ACTION|null} (the\n"
    "fixture's evidence through the playbook; the first proposal is scored).\n"
    "  --variant NAME:k=v,...  override the llm settings: prompt=FILE, connection=NAME,\n"
    "                          model=NAME, mode=rules-only|rules-first|llm-first,\n"
    "                          temperature=X (repeatable: variants side by side)\n"
    "  --csv OUT       one row per line and variant, then summary rows\n"
    "  --html OUT      a self-contained report page (A/B, confusion matrices, failures)\n"
    "  --min-accuracy X  exit 1 when a variant's action accuracy is below X (0..1)\n"
    "  --concurrency N   LLM requests in flight (default 4)\n"
    "Without an llm: section (or with mode rules-only) the rules parser is evaluated.\n"
    "Exit status: 0; 1 when the accuracy gate is not met or on errors; 2 on usage errors.\n";

int ob_eval_main(int argc, char **argv)
{
    const char *path = NULL, *csv = NULL, *html = NULL;
    const char *variants[MAX_VARIANTS];
    size_t nvariants = 0;
    double min_acc = -1;
    long conc = 4;
    char *end = NULL, err[512], msg[1024];
    struct ob_bundle *b = NULL;
    struct ob_diag d;
    struct ob_eval *e = NULL;
    struct ob_eval_opts o = {0};
    uv_loop_t loop;
    int c, rc, status = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"variant", required_argument, NULL, 'V'},
                                         {"csv", required_argument, NULL, 'C'},
                                         {"html", required_argument, NULL, 'H'},
                                         {"min-accuracy", required_argument, NULL, 'm'},
                                         {"concurrency", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'V':
            if (nvariants == MAX_VARIANTS) {
                fprintf(stderr, "opsbot: at most %d variants\n", MAX_VARIANTS);
                return 2;
            }
            variants[nvariants++] = optarg;
            break;
        case 'C':
            csv = optarg;
            break;
        case 'H':
            html = optarg;
            break;
        case 'm':
            errno = 0;
            min_acc = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(min_acc >= 0 && min_acc <= 1)) {
                fprintf(stderr, "opsbot: --min-accuracy wants a number from 0 to 1, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'n':
            conc = strtol(optarg, &end, 10);
            if (end == optarg || *end || conc < 1 || conc > 64) {
                fprintf(stderr, "opsbot: --concurrency wants 1..64, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(usage_eval, stdout);
            return 0;
        default:
            fputs(usage_eval, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "opsbot: eval needs at least one dataset\n%s", usage_eval);
        return 2;
    }
    if (!path) {
        path = getenv("OPSBOT_CONFIG");
        if (!path || !*path)
            path = "opsbot.yaml";
    }
    ob_log_set_human(1);
    ob_log_set_level(OB_LOG_WARN);
    ob_diag_init(&d);
    if (ob_bundle_load(&b, path, &d)) {
        ob_diag_print(&d, stderr);
        fprintf(stderr, "opsbot: %s: %zu error(s)\n", path, d.n ? d.n : 1);
        ob_diag_release(&d);
        return 1;
    }
    ob_diag_release(&d);
    ob_log_set_redactor(b->red);
    o.datasets = (const char *const *)(argv + optind);
    o.ndatasets = (size_t)(argc - optind);
    o.variants = variants;
    o.nvariants = nvariants;
    o.csv_path = csv;
    o.html_path = html;
    o.concurrency = (size_t)conc;
    o.progress = isatty(STDERR_FILENO);
    o.out = stdout;
    uv_loop_init(&loop);
    rc = ob_eval_run(&e, &loop, NULL, b, &o, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "opsbot: %s\n", err[0] ? err : ob_strerror(rc));
        status = rc == OB_EUSAGE ? 2 : 1;
    } else if (min_acc >= 0 && !ob_eval_gate(e, min_acc, msg, sizeof(msg))) {
        fprintf(stderr, "opsbot: accuracy gate failed: %s\n", msg);
        status = 1;
    } else if (min_acc >= 0) {
        printf("accuracy gate passed (every variant >= %.3f)\n", min_acc);
    }
    ob_eval_free(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop))
        ob_warn("eval", "loop closed with handles still open");
    ob_log_set_redactor(NULL);
    ob_bundle_unref(b);
    return status;
}
