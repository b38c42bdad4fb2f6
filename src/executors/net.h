/* Private to src/executors: the network executors (prometheus, loki,
 * kubernetes, http) and what they share.
 *
 * A network job lives in struct ob__net (embedded in struct ob_exec). It
 * is a small state machine: each step issues one request through ob_http
 * (or arms the job's timer) and continues in a callback; ob__job_finish
 * ends it, calls the ob_exec_cb exactly once and closes the timer, whose
 * close callback frees the job. One deadline (the binding's timeout) bounds
 * the whole job: every request gets the time left, and a step that finds
 * none left finishes the job as timed out.
 */
#ifndef OPSBOT_EXECUTORS_NET_H
#define OPSBOT_EXECUTORS_NET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/executor.h"
#include "opsbot/http.h"
#include "opsbot/intent.h"
#include "opsbot/redact.h"

#define OB__MAX_HEADERS 24

struct ob__job;

struct ob__net {
    uv_loop_t *loop;
    struct ob_http *http;
    const struct ob_config *cfg;
    bool dry_run;
    size_t output_cap;
    struct ob__job *jobs; /* started, not finished */
    size_t njobs;
    size_t alive; /* jobs whose timer is not closed yet */
    bool freeing;
    char *tmpdir;                /* private 0700 directory for kubeconfig *-data files */
    void (*on_idle)(void *data); /* freeing and the last job is gone */
    void *on_idle_data;
};

void ob__net_init(struct ob__net *n, uv_loop_t *loop, const struct ob_config *cfg,
                  size_t output_cap, bool dry_run);
/* Cancels every job (callbacks not called); on_idle runs once the last
 * timer is closed (maybe later, from the loop). Returns true when nothing
 * is left to wait for (on_idle is then NOT called). */
bool ob__net_shutdown(struct ob__net *n);
/* Removes the temporary directory. */
void ob__net_release(struct ob__net *n);

/* ---- the types --------------------------------------------------------- */

/* What a type's check gets. */
struct ob__check {
    const struct ob_config *cfg;
    const struct ob_action *a;
    const cJSON *b; /* the binding */
    struct ob_diag *d;
    int nerr;
};

struct ob__exec_type {
    const char *name;
    const char *const *keys; /* type-specific binding keys, NULL-terminated */
    bool needs_url;
    bool raw_url; /* keep a trailing '/' of the rendered url */
    /* Load-time check of the type's keys (unknown keys and the common ones
     * are checked before); adds to c->nerr. */
    void (*check)(struct ob__check *c);
    /* Prepares the job (render everything) and starts its first step.
     * Non-zero: the job is dropped and ob_exec_start returns the error. */
    int (*start)(struct ob__job *j);
    /* One line for ob_exec_describe. */
    int (*describe)(const struct ob_config *cfg, const struct ob_proposal *prop, const cJSON *b,
                    char *buf, size_t len);
    void (*free_ctx)(void *ctx);
};

extern const struct ob__exec_type ob__type_prometheus;
extern const struct ob__exec_type ob__type_loki;
extern const struct ob__exec_type ob__type_kubernetes;
extern const struct ob__exec_type ob__type_http;

/* The table of network types; NULL for "exec" and unknown names. */
const struct ob__exec_type *ob__exec_type_find(const char *name);
/* "exec, prometheus, loki, kubernetes, http" */
const char *ob__exec_type_names(void);
/* Load-time check of a network binding (common keys, then the type's). */
int ob__net_check_binding(const struct ob_config *cfg, const struct ob_action *a, const cJSON *b,
                          const struct ob__exec_type *t, struct ob_diag *d);
int ob__net_start(struct ob__net *n, const struct ob__exec_type *t, const struct ob_proposal *prop,
                  const struct ob_exec_start_opts *o, ob_exec_cb cb, void *data);

/* ---- one job ------------------------------------------------------------ */

typedef void (*ob__resp_fn)(struct ob__job *j, const struct ob_http_resp *resp);
typedef void (*ob__step_fn)(struct ob__job *j);

struct ob__job {
    struct ob__net *net;
    struct ob__job *prev, *next;
    const struct ob__exec_type *type;
    const struct ob_config *cfg; /* during start() only */
    cJSON *b;                    /* copy of the binding */
    struct ob_proposal prop;     /* copy; prop.action valid during start() only */
    const struct ob_redact *red;
    ob_exec_cb cb;
    ob_exec_progress_cb progress;
    void *data;
    bool dry_run;
    bool done;
    bool timer_open;
    bool starting;  /* inside type->start(): a finish is deferred */
    bool finish_ok; /* the deferred finish */
    bool finish_due;

    uv_timer_t timer;
    ob__step_fn timer_fn;
    struct ob_http_call *call;
    ob__resp_fn resp_fn;
    uint64_t start_ns;
    int64_t deadline_ms; /* uv_now based */
    int64_t timeout_ms;

    /* Connection: base URL, auth and config headers, TLS files. */
    char *base_url; /* rendered, without a trailing '/' */
    char *headers[OB__MAX_HEADERS + 1];
    size_t nheaders;
    char *ca_file, *cert_file, *key_file;
    bool insecure;

    struct ob_exec_result res;
    size_t out_alloc;
    void *ctx; /* the type's state, freed with type->free_ctx */
};

/* Appends to the job's output (capped at output_cap; sets truncated). */
void ob__job_printf(struct ob__job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ob__job_append(struct ob__job *j, const char *s, size_t n);
/* Sets res.status (printf style). */
void ob__job_status(struct ob__job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the job: ok selects exit_status 0 or 1. Calls the callback (unless
 * the executor is being freed) and releases the job. */
void ob__job_finish(struct ob__job *j, bool ok);
/* Ends the job as timed out, with a status line. */
void ob__job_timeout(struct ob__job *j, const char *what);
/* Runs fn on a later loop turn after ms (clamped to the time left; a step
 * that runs past the deadline must call ob__job_timeout itself). */
void ob__job_after(struct ob__job *j, int64_t ms, ob__step_fn fn);
/* Milliseconds left before the deadline (<= 0: overdue). */
int64_t ob__job_left(const struct ob__job *j);
void ob__job_progress(struct ob__job *j, const char *line);
/* Sends one request with the job's auth headers plus extra (NULL-terminated,
 * may be NULL); fn gets the response. Failure to start finishes the job. */
void ob__job_request(struct ob__job *j, const char *method, const char *url,
                     const char *const *extra, const char *body, ob__resp_fn fn);
/* Dry run: appends "METHOD URL", the headers (secrets masked) and the body. */
void ob__job_show_request(struct ob__job *j, const char *method, const char *url,
                          const char *const *extra, const char *body);
/* Common failure text for a transport error or an unexpected status:
 * "cannot reach http://…: Connection refused" / "timed out". Returns true
 * when resp is a transport failure (and the job was finished). */
bool ob__job_transport_failed(struct ob__job *j, const struct ob_http_resp *resp, const char *what);
/* Adds "Name: value" to the job's headers (refuses line breaks). */
int ob__job_add_header(struct ob__job *j, const char *name, const char *value);
/* Adds "Authorization: <scheme> <cred>" (cred base64-encoded when encode). */
int ob__job_add_auth(struct ob__job *j, const char *scheme, const char *cred, bool encode);
/* Reads the connection keys (url template, auth, tls, headers) of j->b into
 * j; url placeholders are percent-encoded. Returns 0 or OB_EINVAL. */
int ob__job_connect(struct ob__job *j);

/* ---- helpers shared by the types --------------------------------------- */

/* Template placeholders: "{name}" with name [A-Za-z_][A-Za-z0-9_-]*, "{{" and
 * "}}" literal braces. */
bool ob__ph_at(const char *s, size_t *name_len);
/* Value of a parameter of prop ("" for an unset optional parameter, NULL
 * when the action has no such parameter or a required one is missing). */
const char *ob__param_value(const struct ob_proposal *prop, const char *name, size_t n);
const struct ob_param_def *ob__param_def(const struct ob_action *a, const char *name, size_t n);
/* Renders a plain template, each value passed through esc (NULL: verbatim;
 * esc returns malloc'd or NULL on OOM). Returns malloc'd or NULL with why. */
char *ob__tmpl_render(const char *tmpl, const struct ob_proposal *prop,
                      char *(*esc)(const char *value), char *why, size_t whylen);
/* Load-time check of a plain template: every placeholder a parameter of a. */
int ob__tmpl_check(const char *tmpl, const struct ob_action *a, char *why, size_t whylen);
/* JSON string body (without quotes) into a malloc'd string. */
char *ob__json_escape(const char *s);
/* A binding key that is a duration: a literal ("15m") or one placeholder of a
 * duration parameter ("{since}"). Load-time check and run-time value. */
int ob__duration_key_check(const struct ob_action *a, const cJSON *v, char *why, size_t whylen);
int ob__duration_key_value(const struct ob_proposal *prop, const cJSON *v, int64_t *ms);
/* Reports "file:line: action 'x': executor: key: message". */
void ob__check_err(struct ob__check *c, const cJSON *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- query languages (promql.c, logql.c) -------------------------------- */

enum ob__qdialect { OB__PROMQL, OB__LOGQL };

/* Checks a PromQL/LogQL template at load: a placeholder only inside a
 * double-quoted label-matcher value (PromQL and LogQL selectors), a LogQL
 * line filter or label filter string, or (PromQL) as a whole range /
 * subquery / offset duration, then naming a duration parameter. Returns 0
 * or OB_EINVAL with why. a may be NULL (placement only). */
int ob__query_check(enum ob__qdialect dl, const char *tmpl, const struct ob_action *a, char *why,
                    size_t whylen);
/* Renders it: values in strings escaped as PromQL/LogQL strings (and
 * regex-escaped first behind =~ !~ |~); durations re-formatted from their
 * parsed value. Returns malloc'd or NULL with why (bad placement, a value
 * with control characters, a missing duration). */
char *ob__query_render(enum ob__qdialect dl, const char *tmpl, const struct ob_proposal *prop,
                       char *why, size_t whylen);
/* The string escapes used above (exposed for the tests): malloc'd or NULL
 * when the value holds a control character other than \n \r \t. */
char *ob__qstring_escape(const char *v, bool regex);
/* Milliseconds as one PromQL/LogQL duration unit ("90m", "2d", "250ms"). */
const char *ob__qduration(int64_t ms, char *buf, size_t len);
/* A query_range step for a range: about 60 points, rounded up to 1s, 5s,
 * 10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h or 1d. */
int64_t ob__step_for_range(int64_t range_ms);

/* ---- Kubernetes targets and credentials (kube_auth.c) -------------------- */

/* Where a service of an env lives and how to reach that API server. */
struct ob__kube_target {
    char cluster[64]; /* the name under targets.clusters */
    char ns[64];      /* namespace */
    char deployment[254];
    /* Filled by ob__kube_target_auth: */
    char *server; /* "https://10.0.0.1:443", no trailing '/' */
    char *token;  /* bearer token or NULL (wiped on release) */
    char *basic;  /* "user:password" or NULL (wiped on release) */
    char *ca_file, *cert_file, *key_file;
    bool insecure;
    bool service_account; /* in-cluster: the pod's service account */
};

/* Looks service and env up in the top-level `targets:` of cfg: the env's
 * cluster and namespace, the service's deployment name (default: the
 * service), with per-service and per-service-per-env overrides. Returns 0
 * or OB_EINVAL / OB_ENOTFOUND with why. */
int ob__kube_target_find(const struct ob_config *cfg, const char *service, const char *env,
                         struct ob__kube_target *t, char *why, size_t whylen);
/* Loads the cluster's credentials (in-cluster service account files, a
 * kubeconfig context, or server/token/files from the config). Small local
 * files are read synchronously; kubeconfig *-data values are written to
 * 0600 files in n's private directory. Returns 0 or an error with why. */
int ob__kube_target_auth(struct ob__net *n, const struct ob_config *cfg, struct ob__kube_target *t,
                         char *why, size_t whylen);
void ob__kube_target_release(struct ob__kube_target *t);
/* DNS-1123 label (namespaces) and subdomain (deployment names). */
bool ob__dns_label(const char *s);
bool ob__dns_subdomain(const char *s);

/* ---- rendering (sparkline.c) -------------------------------------------- */

/* ▁▂▃▄▅▆▇█ for v[0..n) scaled between min and max (NaN: a space), averaged
 * down to at most width characters. Returns buf (always terminated). */
const char *ob__sparkline(const double *v, size_t n, size_t width, char *buf, size_t len);
/* A value with its unit: "s" (shown as ms below 1 s), "ms", "bytes" (KiB,
 * MiB, GiB), "ratio" (as %), "percent", anything else appended as is. */
const char *ob__fmt_value(double v, const char *unit, char *buf, size_t len);

#endif
