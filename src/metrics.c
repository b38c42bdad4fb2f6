/* The metrics registry, its text exposition and the HTTP endpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/err.h"
#include "opsbot/metrics.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define MAX_LABELS 6
#define MAX_BUCKETS 16

enum mtype { M_COUNTER, M_HISTOGRAM };

struct series {
    char *labels[MAX_LABELS];
    double value; /* counter */
    uint64_t buckets[MAX_BUCKETS];
    double sum;
    uint64_t count;
};

struct family {
    const char *name;
    const char *help;
    enum mtype type;
    const char *labels[MAX_LABELS];
    size_t nlabels;
    const double *bounds;
    size_t nbounds;
    struct series *s;
    size_t n, cap;
    struct series *other; /* the overflow series */
};

static const double approval_bounds[] = {10, 30, 60, 300, 600, 1800, 3600, 14400, 86400};
static const double exec_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
static const double llm_bounds[] = {0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60};
static const double loop_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

enum {
    F_EVENTS,
    F_DECISIONS,
    F_APPROVALS,
    F_APPROVAL_SECONDS,
    F_EXECUTIONS,
    F_EXECUTION_SECONDS,
    F_LLM_CALLS,
    F_LLM_TOKENS,
    F_LLM_COST,
    F_LLM_LATENCY,
    F_RECONNECTS,
    F_RATELIMIT,
    F_LOOP_BUSY,
    F_FSYNC,
    F_N
};

#define NB(a) (sizeof(a) / sizeof((a)[0]))

static struct family fams[F_N] = {
    [F_EVENTS] = {"opsbot_events_total",
                  "Inbound chat events by platform and kind.",
                  M_COUNTER,
                  {"platform", "kind"},
                  2,
                  NULL,
                  0,
                  NULL,
                  0,
                  0,
                  NULL},
    [F_DECISIONS] = {"opsbot_decisions_total",
                     "Policy decisions by effect and deciding rule.",
                     M_COUNTER,
                     {"effect", "rule"},
                     2,
                     NULL,
                     0,
                     NULL,
                     0,
                     0,
                     NULL},
    [F_APPROVALS] = {"opsbot_approvals_total",
                     "Approval requests that reached a decision, by "
                     "outcome.",
                     M_COUNTER,
                     {"outcome"},
                     1,
                     NULL,
                     0,
                     NULL,
                     0,
                     0,
                     NULL},
    [F_APPROVAL_SECONDS] = {"opsbot_approval_seconds",
                            "Time from an approval request to its decision.",
                            M_HISTOGRAM,
                            {NULL},
                            0,
                            approval_bounds,
                            NB(approval_bounds),
                            NULL,
                            0,
                            0,
                            NULL},
    [F_EXECUTIONS] = {"opsbot_executions_total",
                      "Executed actions by action and result.",
                      M_COUNTER,
                      {"action", "result"},
                      2,
                      NULL,
                      0,
                      NULL,
                      0,
                      0,
                      NULL},
    [F_EXECUTION_SECONDS] = {"opsbot_execution_seconds",
                             "Duration of executed actions.",
                             M_HISTOGRAM,
                             {"action"},
                             1,
                             exec_bounds,
                             NB(exec_bounds),
                             NULL,
                             0,
                             0,
                             NULL},
    [F_LLM_CALLS] = {"opsbot_llm_calls_total",
                     "LLM parse calls by connection, model, proposed action, channel, the "
                     "requester's team (first policy group) and result.",
                     M_COUNTER,
                     {"connection", "model", "action", "channel", "team", "result"},
                     6,
                     NULL,
                     0,
                     NULL,
                     0,
                     0,
                     NULL},
    [F_LLM_TOKENS] = {"opsbot_llm_tokens_total",
                      "LLM tokens by direction (in = prompt, out = "
                      "completion).",
                      M_COUNTER,
                      {"connection", "model", "direction"},
                      3,
                      NULL,
                      0,
                      NULL,
                      0,
                      0,
                      NULL},
    [F_LLM_COST] = {"opsbot_llm_cost_usd_total",
                    "LLM cost in US dollars from the connection's configured prices.",
                    M_COUNTER,
                    {"connection", "model"},
                    2,
                    NULL,
                    0,
                    NULL,
                    0,
                    0,
                    NULL},
    [F_LLM_LATENCY] = {"opsbot_llm_latency_seconds",
                       "LLM call latency including retries, until the answer or the fallback.",
                       M_HISTOGRAM,
                       {"connection", "model"},
                       2,
                       llm_bounds,
                       NB(llm_bounds),
                       NULL,
                       0,
                       0,
                       NULL},
    [F_RECONNECTS] = {"opsbot_adapter_reconnects_total",
                      "Chat adapter reconnects by platform.",
                      M_COUNTER,
                      {"platform"},
                      1,
                      NULL,
                      0,
                      NULL,
                      0,
                      0,
                      NULL},
    [F_LOOP_BUSY] = {"opsbot_loop_busy_seconds",
                     "Time each turn of the event loop spent working (not waiting for I/O): "
                     "long turns delay every chat event behind them.",
                     M_HISTOGRAM,
                     {NULL},
                     0,
                     loop_bounds,
                     NB(loop_bounds),
                     NULL,
                     0,
                     0,
                     NULL},
    [F_FSYNC] = {"opsbot_store_fsync_seconds",
                 "Time from queuing each fsync of the state store's write-ahead log to "
                 "its answer (thread-pool wait + fsync): an action starts only when the "
                 "one after its start record has answered.",
                 M_HISTOGRAM,
                 {NULL},
                 0,
                 loop_bounds,
                 NB(loop_bounds),
                 NULL,
                 0,
                 0,
                 NULL},
    [F_RATELIMIT] = {"opsbot_ratelimit_waits_total",
                     "Times a chat platform's rate limit made the adapter wait.",
                     M_COUNTER,
                     {"platform"},
                     1,
                     NULL,
                     0,
                     NULL,
                     0,
                     0,
                     NULL},
};

static struct series *lookup(struct family *f, const char *const *labels)
{
    struct series *s;
    char cut[MAX_LABELS][OB_METRICS_LABEL_MAX + 1];

    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = labels[i] ? labels[i] : "";
        size_t n = strlen(v);

        if (n > OB_METRICS_LABEL_MAX) {
            n = OB_METRICS_LABEL_MAX;
            while (n && ((unsigned char)v[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(cut[i], v, n);
        cut[i][n] = '\0';
    }
    for (size_t k = 0; k < f->n; k++) {
        size_t i = 0;

        for (; i < f->nlabels; i++)
            if (strcmp(f->s[k].labels[i], cut[i]))
                break;
        if (i == f->nlabels)
            return &f->s[k];
    }
    if (f->n >= OB_METRICS_MAX_SERIES) {
        if (!f->other) {
            f->other = ob_xcalloc(1, sizeof(*f->other));
            for (size_t i = 0; i < f->nlabels; i++)
                f->other->labels[i] = ob_xstrdup("other");
        }
        return f->other;
    }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        struct series *ns = realloc(f->s, nc * sizeof(*ns));

        if (!ns)
            return NULL;
        f->s = ns;
        f->cap = nc;
    }
    s = &f->s[f->n++];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < f->nlabels; i++)
        s->labels[i] = ob_xstrdup(cut[i]);
    return s;
}

static void add(int fi, const char *const *labels, double v)
{
    struct series *s = lookup(&fams[fi], labels);

    if (s && isfinite(v) && v >= 0)
        s->value += v;
}

static void observe(int fi, const char *const *labels, double v)
{
    struct family *f = &fams[fi];
    struct series *s = lookup(f, labels);

    if (!s || !isfinite(v))
        return;
    if (v < 0)
        v = 0;
    for (size_t i = 0; i < f->nbounds; i++)
        if (v <= f->bounds[i])
            s->buckets[i]++;
    s->sum += v;
    s->count++;
}

void ob_metrics_event(const char *platform, const char *kind)
{
    add(F_EVENTS, (const char *[]){platform, kind}, 1);
}

void ob_metrics_decision(const char *effect, const char *rule)
{
    add(F_DECISIONS, (const char *[]){effect, rule}, 1);
}

void ob_metrics_approval(const char *outcome, double seconds)
{
    add(F_APPROVALS, (const char *[]){outcome}, 1);
    observe(F_APPROVAL_SECONDS, NULL, seconds);
}

void ob_metrics_execution(const char *action, const char *result, double seconds)
{
    add(F_EXECUTIONS, (const char *[]){action, result}, 1);
    observe(F_EXECUTION_SECONDS, (const char *[]){action}, seconds);
}

void ob_metrics_llm_call(const struct ob_metrics_llm *m)
{
    const char *cm[2] = {m->connection, m->model};

    add(F_LLM_CALLS,
        (const char *[]){m->connection, m->model, m->action ? m->action : "none",
                         m->channel ? m->channel : "", m->team ? m->team : "none", m->result},
        1);
    add(F_LLM_TOKENS, (const char *[]){m->connection, m->model, "in"}, (double)m->tokens_in);
    add(F_LLM_TOKENS, (const char *[]){m->connection, m->model, "out"}, (double)m->tokens_out);
    add(F_LLM_COST, cm, m->cost_usd);
    observe(F_LLM_LATENCY, cm, m->seconds);
}

void ob_metrics_inc_reconnect(const char *platform)
{
    add(F_RECONNECTS, (const char *[]){platform}, 1);
}

void ob_metrics_loop_busy(double seconds)
{
    observe(F_LOOP_BUSY, NULL, seconds);
}

void ob_metrics_store_fsync(double seconds)
{
    observe(F_FSYNC, NULL, seconds);
}

void ob_metrics_inc_ratelimit_wait(const char *platform)
{
    add(F_RATELIMIT, (const char *[]){platform}, 1);
}

static void series_free(struct series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->labels[i]);
}

void ob_metrics_reset(void)
{
    for (int i = 0; i < F_N; i++) {
        struct family *f = &fams[i];

        for (size_t k = 0; k < f->n; k++)
            series_free(&f->s[k], f->nlabels);
        free(f->s);
        if (f->other) {
            series_free(f->other, f->nlabels);
            free(f->other);
        }
        f->s = NULL;
        f->other = NULL;
        f->n = f->cap = 0;
    }
}

double ob_metrics_value(const char *family, const char *const *labels, size_t nlabels)
{
    for (int i = 0; i < F_N; i++) {
        struct family *f = &fams[i];

        if (strcmp(f->name, family) || nlabels != f->nlabels)
            continue;
        for (size_t k = 0; k <= f->n; k++) {
            struct series *s = k < f->n ? &f->s[k] : f->other;
            size_t j = 0;

            if (!s)
                continue;
            for (; j < nlabels; j++)
                if (strcmp(s->labels[j], labels[j]))
                    break;
            if (j == nlabels)
                return f->type == M_COUNTER ? s->value : (double)s->count;
        }
    }
    return -1;
}

/* ---- exposition ------------------------------------------------------------ */

static void put_escaped(FILE *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", o);
        else if (*v == '"')
            fputs("\\\"", o);
        else if (*v == '\n')
            fputs("\\n", o);
        else
            fputc(*v, o);
    }
}

static void put_number(FILE *o, double v)
{
    if (isnan(v))
        fputs("NaN", o);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", o);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(o, "%.0f", v);
    else
        fprintf(o, "%.17g", v);
}

/* {a="x",b="y"[,le="0.5"]} or nothing */
static void put_labels(FILE *o, const struct family *f, const struct series *s, const char *le)
{
    if (!f->nlabels && !le)
        return;
    fputc('{', o);
    for (size_t i = 0; i < f->nlabels; i++) {
        fprintf(o, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_escaped(o, s->labels[i]);
        fputc('"', o);
    }
    if (le)
        fprintf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    fputc('}', o);
}

static void put_series(FILE *o, const struct family *f, const struct series *s)
{
    char le[32];
    uint64_t cum;

    if (f->type == M_COUNTER) {
        fputs(f->name, o);
        put_labels(o, f, s, NULL);
        fputc(' ', o);
        put_number(o, s->value);
        fputc('\n', o);
        return;
    }
    for (size_t i = 0; i < f->nbounds; i++) {
        cum = s->buckets[i];
        snprintf(le, sizeof(le), "%g", f->bounds[i]);
        fprintf(o, "%s_bucket", f->name);
        put_labels(o, f, s, le);
        fprintf(o, " %llu\n", (unsigned long long)cum);
    }
    fprintf(o, "%s_bucket", f->name);
    put_labels(o, f, s, "+Inf");
    fprintf(o, " %llu\n", (unsigned long long)s->count);
    fprintf(o, "%s_sum", f->name);
    put_labels(o, f, s, NULL);
    fputc(' ', o);
    put_number(o, s->sum);
    fprintf(o, "\n%s_count", f->name);
    put_labels(o, f, s, NULL);
    fprintf(o, " %llu\n", (unsigned long long)s->count);
}

char *ob_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *o = open_memstream(&buf, &n);

    if (!o)
        return NULL;
    for (int i = 0; i < F_N; i++) {
        const struct family *f = &fams[i];

        fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                f->type == M_COUNTER ? "counter" : "histogram");
        /* A histogram without labels shows its (empty) series from the start. */
        if (f->type == M_HISTOGRAM && !f->nlabels && !f->n) {
            struct series zero = {0};

            put_series(o, f, &zero);
        }
        for (size_t k = 0; k < f->n; k++)
            put_series(o, f, &f->s[k]);
        if (f->other)
            put_series(o, f, f->other);
    }
    if (fclose(o)) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}

/* ---- the endpoint ------------------------------------------------------------ */

struct ob_metrics_server {
    struct ob_http_server *srv;
    ob_metrics_ready_cb ready;
    void *data;
};

static void text(struct ob_http_exchange *ex, int status, const char *body,
                 const char *const *headers)
{
    ob_http_reply(ex, status, "text/plain; charset=utf-8", body, strlen(body), headers);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct ob_metrics_server *m = data;
    static const char *const allow[] = {"Allow: GET, HEAD", NULL};
    char why[256], *body;
    size_t len = 0;

    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        text(ex, 405, "method not allowed\n", allow);
        return;
    }
    if (!strcmp(req->path, "/metrics")) {
        body = ob_metrics_render(&len);
        if (!body) {
            text(ex, 500, "out of memory\n", NULL);
            return;
        }
        ob_http_reply(ex, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, NULL);
        free(body);
        return;
    }
    if (!strcmp(req->path, "/healthz")) {
        text(ex, 200, "ok\n", NULL);
        return;
    }
    if (!strcmp(req->path, "/readyz")) {
        why[0] = '\0';
        if (!m->ready || m->ready(m->data, why, sizeof(why))) {
            text(ex, 200, "ready\n", NULL);
        } else {
            char line[300];

            snprintf(line, sizeof(line), "not ready: %s\n", why[0] ? why : "starting");
            text(ex, 503, line, NULL);
        }
        return;
    }
    text(ex, 404, "not found (try /metrics, /healthz, /readyz)\n", NULL);
}

int ob_metrics_server_new(struct ob_metrics_server **out, struct ob_lws *lws, const char *listen,
                          ob_metrics_ready_cb ready, void *data)
{
    struct ob_metrics_server *m = ob_xcalloc(1, sizeof(*m));
    struct ob_http_server_opts o = {0};
    int rc;

    *out = NULL;
    m->ready = ready;
    m->data = data;
    o.listen = listen;
    o.max_body = 4096;
    rc = ob_http_server_new(lws, &o, handler, m, &m->srv);
    if (rc) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int ob_metrics_server_port(const struct ob_metrics_server *s)
{
    return s ? ob_http_server_port(s->srv) : -1;
}

void ob_metrics_server_free(struct ob_metrics_server *s)
{
    if (!s)
        return;
    ob_http_server_free(s->srv);
    free(s);
}
