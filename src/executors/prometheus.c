/* The prometheus executor: one PromQL query (instant, or a range with a
 * step of about 60 points) against /api/v1/query or /api/v1/query_range.
 *
 *   executor:
 *     type: prometheus
 *     url: ${PROM_URL:-http://127.0.0.1:9090}
 *     auth: {bearer: "${PROM_TOKEN:-}"}        # or bearer_file, basic: {user, password}
 *     tls: {ca_file: ca.pem, insecure: false}
 *     query: 'sum(rate(x{service="{service}"}[5m]))'   # or, per value of `select`:
 *     queries: {latency: {query: '…', unit: s}, error_rate: '…'}
 *     select: metric                          # the parameter picking from queries
 *     unit: s                                 # s, ms, bytes, ratio, percent, or any word
 *     range: "{since}"                        # query_range over this window
 *     step: 1m                                # default: chosen from the range
 *     max_series: 10
 *     timeout: 30s
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/util.h"

#define MAX_POINTS 11000
#define DEF_MAX_SERIES 10
#define SPARK_WIDTH 60

static const char *const prom_keys[] = {"query", "queries", "select",     "unit",
                                        "range", "step",    "max_series", NULL};

struct prom {
    char *query;
    const char *unit; /* in the job's binding copy */
    int64_t range_ms, step_ms;
    int max_series;
    char what[512]; /* "service=checkout env=prod metric=latency since=1h" */
};

static void prom_free(void *ctx)
{
    struct prom *p = ctx;

    if (!p)
        return;
    free(p->query);
    free(p);
}

static const char *select_name(const cJSON *b)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(b, "select");

    return cJSON_IsString(s) ? s->valuestring : "metric";
}

/* The template and unit for prop (queries picked by the select parameter). */
static int pick_query(const cJSON *b, const struct ob_proposal *prop, const char **tmpl,
                      const char **unit, char *why, size_t whylen)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, "query");
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(b, "queries");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "unit");

    *unit = cJSON_IsString(u) ? u->valuestring : NULL;
    if (cJSON_IsString(q)) {
        *tmpl = q->valuestring;
        return 0;
    }
    if (cJSON_IsObject(qs)) {
        const char *sel = select_name(b);
        const char *v = ob__param_value(prop, sel, strlen(sel));
        const cJSON *e = v ? cJSON_GetObjectItemCaseSensitive(qs, v) : NULL;

        if (cJSON_IsObject(e)) {
            const cJSON *eq = cJSON_GetObjectItemCaseSensitive(e, "query");
            const cJSON *eu = cJSON_GetObjectItemCaseSensitive(e, "unit");

            if (cJSON_IsString(eu))
                *unit = eu->valuestring;
            e = eq;
        }
        if (cJSON_IsString(e)) {
            *tmpl = e->valuestring;
            return 0;
        }
        snprintf(why, whylen, "no query for %s '%s'", sel, v ? v : "");
        return OB_EINVAL;
    }
    snprintf(why, whylen, "no query");
    return OB_EINVAL;
}

/* ---- load-time check ---------------------------------------------------- */

static void check_template(struct ob__check *c, const cJSON *node, const char *key)
{
    char why[512];

    if (!cJSON_IsString(node) || !*node->valuestring) {
        ob__check_err(c, node, key, "must be a PromQL template string");
        return;
    }
    if (ob__query_check(OB__PROMQL, node->valuestring, c->a, why, sizeof(why)))
        ob__check_err(c, node, key, "%s", why);
}

static void prom_check(struct ob__check *c)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c->b, "query");
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(c->b, "queries");
    const cJSON *it;
    char why[256];

    if (!q == !qs)
        ob__check_err(c, NULL, NULL, "give exactly one of query or queries");
    if (q)
        check_template(c, q, "query");
    if (qs && !cJSON_IsObject(qs)) {
        ob__check_err(c, qs, "queries", "must be a mapping of %s value to a query",
                      select_name(c->b));
    } else if (qs) {
        const char *sel = select_name(c->b);
        const struct ob_param_def *p = ob__param_def(c->a, sel, strlen(sel));

        if (!p) {
            ob__check_err(c, cJSON_GetObjectItemCaseSensitive(c->b, "select"), "select",
                          "the action has no parameter '%s' to pick a query with", sel);
        }
        cJSON_ArrayForEach(it, qs)
        {
            char key[160];
            bool known = !p || p->type != OB_PARAM_ENUM;

            snprintf(key, sizeof(key), "queries.%s", it->string);
            for (size_t i = 0; p && i < p->nvalues; i++)
                known = known || !strcmp(p->values[i], it->string);
            if (!known)
                ob__check_err(c, it, key, "'%s' is not a value of %s", it->string, sel);
            if (cJSON_IsObject(it)) {
                const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "unit");
                const cJSON *k;

                cJSON_ArrayForEach(k, it)
                {
                    if (strcmp(k->string, "query") && strcmp(k->string, "unit"))
                        ob__check_err(c, k, key, "unknown key '%s' (query, unit)", k->string);
                }
                if (u && !cJSON_IsString(u))
                    ob__check_err(c, u, key, "unit: must be a string");
                check_template(c, cJSON_GetObjectItemCaseSensitive(it, "query"), key);
            } else {
                check_template(c, it, key);
            }
        }
        for (size_t i = 0; p && p->type == OB_PARAM_ENUM && i < p->nvalues; i++) {
            if (!cJSON_GetObjectItemCaseSensitive(qs, p->values[i]))
                ob__check_err(c, qs, "queries", "no query for %s '%s'", sel, p->values[i]);
        }
    } else if (cJSON_GetObjectItemCaseSensitive(c->b, "select")) {
        ob__check_err(c, cJSON_GetObjectItemCaseSensitive(c->b, "select"), "select",
                      "only used with queries");
    }
    it = cJSON_GetObjectItemCaseSensitive(c->b, "select");
    if (it && !cJSON_IsString(it))
        ob__check_err(c, it, "select", "must be a parameter name");
    it = cJSON_GetObjectItemCaseSensitive(c->b, "unit");
    if (it && !cJSON_IsString(it))
        ob__check_err(c, it, "unit", "must be a string (s, ms, bytes, ratio, percent, …)");
    it = cJSON_GetObjectItemCaseSensitive(c->b, "range");
    if (it && ob__duration_key_check(c->a, it, why, sizeof(why)))
        ob__check_err(c, it, "range", "%s", why);
    it = cJSON_GetObjectItemCaseSensitive(c->b, "step");
    if (it && ob__duration_key_check(c->a, it, why, sizeof(why)))
        ob__check_err(c, it, "step", "%s", why);
    it = cJSON_GetObjectItemCaseSensitive(c->b, "max_series");
    if (it && (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 100))
        ob__check_err(c, it, "max_series", "must be a number from 1 to 100");
}

/* ---- rendering ---------------------------------------------------------- */

static int render(const cJSON *b, const struct ob_proposal *prop, struct prom *p, char *why,
                  size_t whylen)
{
    const char *tmpl = NULL;
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(b, "range");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(b, "step");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(b, "max_series");
    int rc;

    rc = pick_query(b, prop, &tmpl, &p->unit, why, whylen);
    if (rc)
        return rc;
    p->query = ob__query_render(OB__PROMQL, tmpl, prop, why, whylen);
    if (!p->query)
        return OB_EINVAL;
    if (range && ob__duration_key_value(prop, range, &p->range_ms)) {
        snprintf(why, whylen, "range: no duration");
        return OB_EINVAL;
    }
    if (step && ob__duration_key_value(prop, step, &p->step_ms)) {
        snprintf(why, whylen, "step: no duration");
        return OB_EINVAL;
    }
    if (p->range_ms && !p->step_ms)
        p->step_ms = ob__step_for_range(p->range_ms);
    if (p->range_ms && p->step_ms < 1000)
        p->step_ms = 1000;
    if (p->range_ms && p->range_ms / p->step_ms > MAX_POINTS)
        p->step_ms = p->range_ms / MAX_POINTS + 1;
    p->max_series = (int)ob_json_int_or(ms, DEF_MAX_SERIES);
    return 0;
}

static int prom_describe(const struct ob_config *cfg, const struct ob_proposal *prop,
                         const cJSON *b, char *buf, size_t len)
{
    struct prom p = {0};
    char why[256], r[32];
    int rc;

    (void)cfg;
    rc = render(b, prop, &p, why, sizeof(why));
    if (rc)
        snprintf(buf, len, "prometheus: cannot build the query (%s)", why);
    else if (p.range_ms)
        snprintf(buf, len, "prometheus query_range over %s: %s",
                 ob__qduration(p.range_ms, r, sizeof(r)), p.query);
    else
        snprintf(buf, len, "prometheus query: %s", p.query);
    free(p.query);
    return rc;
}

/* ---- the answer --------------------------------------------------------- */

static double num(const cJSON *pair)
{
    const cJSON *v = cJSON_GetArrayItem(pair, 1);

    if (cJSON_IsString(v) && v->valuestring)
        return strtod(v->valuestring, NULL); /* also "NaN", "+Inf" */
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    return NAN;
}

static const char *labels(const cJSON *metric, char *buf, size_t len)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(metric, "__name__");
    const cJSON *it;
    size_t off = 0;
    bool any = false;

    buf[0] = '\0';
    if (cJSON_IsString(name))
        off += (size_t)snprintf(buf, len, "%s", name->valuestring);
    cJSON_ArrayForEach(it, metric)
    {
        if (!strcmp(it->string, "__name__") || !cJSON_IsString(it) || off >= len)
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s=\"%s\"", any ? ", " : "{", it->string,
                                it->valuestring);
        any = true;
    }
    if (any && off < len)
        snprintf(buf + off, len - off, "}");
    if (off >= len && len > 4)
        memcpy(buf + len - 4, "...", 4);
    return buf;
}

static void footer(struct ob__job *j, const struct prom *p, size_t points)
{
    char r[32], s[32];

    ob__job_printf(j, "PromQL: %s\n", p->query);
    if (p->range_ms)
        ob__job_printf(j, "range %s, step %s, %zu point%s\n",
                       ob__qduration(p->range_ms, r, sizeof(r)),
                       ob__qduration(p->step_ms, s, sizeof(s)), points, points == 1 ? "" : "s");
}

static void show_vector(struct ob__job *j, struct prom *p, const cJSON *result)
{
    int n = cJSON_GetArraySize(result), shown = 0;
    const cJSON *it;
    char v[64], lb[512];

    cJSON_ArrayForEach(it, result)
    {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(it, "metric");
        double x = num(cJSON_GetObjectItemCaseSensitive(it, "value"));

        if (shown == p->max_series)
            break;
        ob__fmt_value(x, p->unit, v, sizeof(v));
        labels(metric, lb, sizeof(lb));
        if (n == 1) {
            ob__job_printf(j, "%s%s%s\n", v, lb[0] ? "  " : "", lb);
            ob__job_status(j, "%s", v);
        } else {
            ob__job_printf(j, "%s  %s\n", lb[0] ? lb : "{}", v);
        }
        shown++;
    }
    if (n > shown)
        ob__job_printf(j, "… and %d more series\n", n - shown);
    if (n > 1)
        ob__job_status(j, "%d series", n);
    footer(j, p, 0);
}

static void show_matrix(struct ob__job *j, struct prom *p, const cJSON *result)
{
    int n = cJSON_GetArraySize(result), shown = 0;
    size_t maxpts = 0;
    const cJSON *it;
    double *vals = malloc(MAX_POINTS * sizeof(*vals));

    if (!vals) {
        ob__job_printf(j, "out of memory\n");
        ob__job_finish(j, false);
        return;
    }
    cJSON_ArrayForEach(it, result)
    {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(it, "metric");
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(it, "values"), *pt;
        double lo = INFINITY, hi = -INFINITY, last = NAN;
        size_t k = 0;
        char spark[SPARK_WIDTH * 3 + 1], lb[512], a[64], b[64], c[64];

        if (shown == p->max_series)
            break;
        cJSON_ArrayForEach(pt, values)
        {
            double x = num(pt);

            if (k == MAX_POINTS)
                break;
            vals[k++] = x;
            if (isfinite(x)) {
                lo = x < lo ? x : lo;
                hi = x > hi ? x : hi;
                last = x;
            }
        }
        if (k > maxpts)
            maxpts = k;
        ob__sparkline(vals, k, SPARK_WIDTH, spark, sizeof(spark));
        labels(metric, lb, sizeof(lb));
        if (lb[0] && (n > 1 || shown == 0))
            ob__job_printf(j, "%s\n", lb);
        if (isfinite(lo))
            ob__job_printf(j, "%s  min %s  max %s  last %s\n", spark,
                           ob__fmt_value(lo, p->unit, a, sizeof(a)),
                           ob__fmt_value(hi, p->unit, b, sizeof(b)),
                           ob__fmt_value(last, p->unit, c, sizeof(c)));
        else
            ob__job_printf(j, "%s  (no finite values)\n", spark);
        if (n == 1 && isfinite(last))
            ob__job_status(j, "last %s", ob__fmt_value(last, p->unit, c, sizeof(c)));
        shown++;
    }
    free(vals);
    if (n > shown)
        ob__job_printf(j, "… and %d more series\n", n - shown);
    if (n > 1)
        ob__job_status(j, "%d series", n);
    footer(j, p, maxpts);
}

/* The answer as numbers for callers (res.data): each series' value (range
 * queries: its last finite value), their count, min, max and the first
 * series' value as "value". */
static cJSON *prom_data(const struct prom *p, const cJSON *type, const cJSON *result)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    const cJSON *it;
    bool matrix = cJSON_IsString(type) && !strcmp(type->valuestring, "matrix");
    double lo = INFINITY, hi = -INFINITY, first = NAN;
    int n = 0;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "type", cJSON_IsString(type) ? type->valuestring : "none");
    if (p->unit)
        cJSON_AddStringToObject(o, "unit", p->unit);
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "scalar")) {
        double x = num(result);

        if (isfinite(x))
            cJSON_AddNumberToObject(o, "value", x);
        cJSON_AddNumberToObject(o, "count", isfinite(x) ? 1 : 0);
        return o;
    }
    arr = cJSON_AddArrayToObject(o, "series");
    if (!cJSON_IsArray(result))
        result = NULL;
    cJSON_ArrayForEach(it, result)
    {
        double x = NAN;
        cJSON *s;

        if (matrix) {
            const cJSON *pt;

            cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(it, "values"))
            {
                double v = num(pt);

                if (isfinite(v))
                    x = v;
            }
        } else {
            x = num(cJSON_GetObjectItemCaseSensitive(it, "value"));
        }
        if (!isfinite(x) || n >= 100)
            continue;
        s = cJSON_CreateObject();
        cJSON_AddItemToObject(s, "labels",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(it, "metric"), 1));
        cJSON_AddNumberToObject(s, "value", x);
        cJSON_AddItemToArray(arr, s);
        if (!n)
            first = x;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        n++;
    }
    cJSON_AddNumberToObject(o, "count", n);
    if (n) {
        cJSON_AddNumberToObject(o, "value", first);
        cJSON_AddNumberToObject(o, "min", lo);
        cJSON_AddNumberToObject(o, "max", hi);
    }
    return o;
}

static void on_answer(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct prom *p = j->ctx;
    cJSON *root;
    const cJSON *status, *data, *type, *result;

    if (ob__job_transport_failed(j, resp, j->base_url))
        return;
    root = cJSON_ParseWithLength(resp->body, resp->body_len);
    status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsString(status)) {
        ob__job_status(j, "HTTP %ld", resp->status);
        ob__job_printf(j, "Prometheus answered HTTP %ld without a JSON status: %.200s\n",
                       resp->status, resp->body ? resp->body : "");
        footer(j, p, 0);
        cJSON_Delete(root);
        ob__job_finish(j, false);
        return;
    }
    if (strcmp(status->valuestring, "success")) {
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(root, "errorType");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error");
        char line[600];
        size_t k;

        snprintf(line, sizeof(line), "%s", cJSON_IsString(er) ? er->valuestring : "unknown error");
        for (k = 0; line[k]; k++) {
            if (line[k] == '\n' || line[k] == '\r')
                line[k] = ' ';
        }
        ob__job_status(j, "Prometheus error");
        ob__job_printf(j, "Prometheus error (%s, HTTP %ld): %s\n",
                       cJSON_IsString(et) ? et->valuestring : "error", resp->status, line);
        footer(j, p, 0);
        cJSON_Delete(root);
        ob__job_finish(j, false);
        return;
    }
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (cJSON_IsString(type) &&
        (!strcmp(type->valuestring, "scalar") || !strcmp(type->valuestring, "string"))) {
        char v[64];

        if (!strcmp(type->valuestring, "scalar"))
            ob__fmt_value(num(result), p->unit, v, sizeof(v));
        else
            snprintf(v, sizeof(v), "%s",
                     cJSON_IsString(cJSON_GetArrayItem(result, 1))
                         ? cJSON_GetArrayItem(result, 1)->valuestring
                         : "");
        ob__job_printf(j, "%s\n", v);
        ob__job_status(j, "%s", v);
        footer(j, p, 0);
    } else if (!cJSON_IsArray(result) || cJSON_GetArraySize(result) == 0) {
        char r[32];

        ob__job_status(j, "no data");
        if (p->range_ms)
            ob__job_printf(j, "no data for %s over the last %s\n", p->what,
                           ob__qduration(p->range_ms, r, sizeof(r)));
        else
            ob__job_printf(j, "no data for %s\n", p->what);
        footer(j, p, 0);
    } else if (cJSON_IsString(type) && !strcmp(type->valuestring, "matrix")) {
        show_matrix(j, p, result);
    } else {
        show_vector(j, p, result);
    }
    cJSON_Delete(j->res.data);
    j->res.data = prom_data(p, type, result);
    cJSON_Delete(root);
    ob__job_finish(j, true);
}

static void dry_done(struct ob__job *j)
{
    ob__job_finish(j, true);
}

static char *query_url(const struct ob__job *j, const struct prom *p)
{
    char *q = ob_http_escape(p->query), *url = NULL;
    double now = (double)ob_now_ms() / 1000.0;
    int rc;

    if (!q)
        return NULL;
    if (p->range_ms)
        rc = asprintf(&url, "%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f",
                      j->base_url, q, now - (double)p->range_ms / 1000.0, now,
                      (double)p->step_ms / 1000.0);
    else
        rc = asprintf(&url, "%s/api/v1/query?query=%s&time=%.3f", j->base_url, q, now);
    free(q);
    return rc < 0 ? NULL : url;
}

static int prom_start(struct ob__job *j)
{
    static const char *const accept[] = {"Accept: application/json", NULL};
    struct prom *p = calloc(1, sizeof(*p));
    char why[256];
    char *url;
    size_t off = 0;
    int rc;

    if (!p)
        return OB_ENOMEM;
    j->ctx = p;
    rc = render(j->b, &j->prop, p, why, sizeof(why));
    if (rc)
        return rc;
    for (size_t i = 0; i < j->prop.nparams && off < sizeof(p->what); i++)
        off += (size_t)snprintf(p->what + off, sizeof(p->what) - off, "%s%s=%s", i ? " " : "",
                                j->prop.params[i].name, j->prop.params[i].value);
    url = query_url(j, p);
    if (!url)
        return OB_ENOMEM;
    if (j->dry_run) {
        ob__job_status(j, "dry run");
        ob__job_printf(j, "dry run: would send\n");
        ob__job_show_request(j, "GET", url, accept, NULL);
        ob__job_printf(j, "PromQL: %s\n", p->query);
        ob__job_after(j, 0, dry_done);
    } else {
        ob__job_request(j, "GET", url, accept, NULL, on_answer);
    }
    free(url);
    return 0;
}

const struct ob__exec_type ob__type_prometheus = {
    .name = "prometheus",
    .keys = prom_keys,
    .needs_url = true,
    .check = prom_check,
    .start = prom_start,
    .describe = prom_describe,
    .free_ctx = prom_free,
};
