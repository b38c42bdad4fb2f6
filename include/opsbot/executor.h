/* Executors run the action the catalog binds. Types: `exec` (below),
 * `prometheus`, `loki`, `kubernetes` and `http` (network executors, on the
 * ob_http client; see docs/EXECUTORS.md for their bindings). One dispatch
 * point: ob_exec_check_binding and ob_exec_start look the type up in one
 * table.
 *
 * `exec`:
 * uv_spawn with an argv template, never a shell. Parameters are substituted
 * only after validation and only inside argv elements ("{service}" in
 * "--svc={service}"); a placeholder that is not a parameter of the action is
 * a configuration error. The child gets a clean environment built from an
 * allow-list plus the `env:` of the binding; stdout and stderr are captured
 * together up to a cap; on timeout SIGTERM, then after a grace SIGKILL.
 * Concurrency is bounded: jobs beyond the limit wait in a FIFO queue.
 *
 * Binding in an action:
 *   executor:
 *     type: exec
 *     argv: ["./fleet.sh", "restart", "{service}", "{env}"]
 *     timeout: 60s          # default 5m
 *     cwd: .                # relative to the config directory
 *     env: {FLEET_STATE: ./state/fleet}   # extra variables (values may use ${VAR})
 * argv[0] containing a '/' is resolved against the config directory;
 * otherwise it is looked up in PATH at load time.
 */
#ifndef OPSBOT_EXECUTOR_H
#define OPSBOT_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/intent.h"

struct ob_exec;
struct ob_http;
struct ob_redact;

struct ob_exec_opts {
    size_t max_concurrency;       /* default 4 */
    size_t output_cap;            /* bytes kept of stdout+stderr, default 64 KiB */
    int64_t kill_grace_ms;        /* SIGTERM -> SIGKILL, default 5 s */
    const char *const *env_allow; /* NULL-terminated names passed through from
                                     our environment; NULL = PATH, HOME, LANG,
                                     LC_ALL, TZ */
    bool dry_run;                 /* exec.dry_run: network executors show what they would
                                     send and send nothing (exec jobs are not affected) */
};

struct ob_exec_result {
    int err;             /* 0, or why it could not start (OB_EEXEC, -ENOENT…) */
    int64_t exit_status; /* when exited normally */
    int term_signal;     /* non-zero when killed by a signal */
    bool timed_out;
    char *output; /* NUL-terminated, owned by the result; NOT yet redacted */
    size_t output_len;
    bool truncated; /* output exceeded the cap */
    int64_t duration_ms;
    char command[1024]; /* the argv as a readable line: restart checkout prod
                           (network executors: what they do, see
                           ob_exec_describe) */
    /* Network executors: the outcome in a few words ("HTTP 200", "rollout
     * complete", "Forbidden"); "" for exec jobs. exit_status is 0 on
     * success and 1 on failure; err stays 0 (failures are in output). */
    char status[128];
    bool dry_run; /* nothing was sent: output shows what would have been */
    /* Machine-readable facts of the answer, owned by the result (valid during
     * the callback only; NULL when none). prometheus: {"type", "unit",
     * "count", "value", "min", "max", "series": [{"labels", "value"}]} (range
     * queries: each series' last value); kubernetes status: {"replicas",
     * "updated", "ready", "available", "revision", "rollout",
     * "conditions"} and, with `detail: true`, "previous_revision",
     * "last_rollout", "last_rollout_age_s", "pods": [{"name", "ready",
     * "restarts", "reason"}], "pods_not_ready", "restarts_max",
     * "crashloop", "crashloop_pod", "oom"; loki: {"lines", "sample": [line…]}
     * (redacted). exec jobs: NULL (callers may parse a JSON output). */
    cJSON *data;
};

typedef void (*ob_exec_cb)(void *data, const struct ob_exec_result *res);
/* One progress line of a long job (a Kubernetes rollout step: "2 of 4
 * updated, 1 available"), not redacted; called zero or more times before
 * the ob_exec_cb, never after it and never from inside ob_exec_start. */
typedef void (*ob_exec_progress_cb)(void *data, const char *line);

/* Per-job options of ob_exec_start_ex (all optional). */
struct ob_exec_start_opts {
    /* The configuration prop->action comes from (relative paths, the
     * top-level `targets:`); NULL = the one given to ob_exec_new. Must stay
     * valid until the callback ran. */
    const struct ob_config *cfg;
    /* Masks results line by line before they are capped (Loki lines); NULL =
     * none. Borrowed until the callback ran. exec output is never redacted
     * here: callers still redact everything they show. */
    const struct ob_redact *red;
    ob_exec_progress_cb on_progress;
};

int ob_exec_new(struct ob_exec **out, uv_loop_t *loop, const struct ob_config *cfg,
                const struct ob_exec_opts *opts);
/* Closes handles; running children are killed (SIGKILL to their process
 * groups) and queued jobs dropped. Callbacks of those jobs are NOT called,
 * neither now nor later. Async: the caller must run the loop afterwards
 * until it is empty (uv_run DEFAULT): memory is freed in close callbacks,
 * after the killed children are reaped. May be called from inside an
 * ob_exec_cb. NULL-safe. */
void ob_exec_free(struct ob_exec *ex);

/* Gives the executor its HTTP client (borrowed; must outlive ex). Without
 * one, jobs of network executors fail with "no HTTP client". */
void ob_exec_set_http(struct ob_exec *ex, struct ob_http *http);

/* True when the binding's type talks to the network (everything but exec),
 * i.e. the core must create an ob_http client for it. */
bool ob_exec_binding_is_network(const cJSON *binding);

/* Checks an action's binding at load time: type known, argv a non-empty list
 * of strings, every {placeholder} a parameter of the action, argv[0]
 * resolvable and executable, timeout a duration. Problems go into d with
 * file:line. Returns 0 or OB_ECONFIG. `help` (no executor) is fine.
 * Network types: every key known, url/auth/tls/headers well formed, every
 * PromQL/LogQL placeholder in an allowed place (a quoted label value, a
 * line filter, a whole duration of a duration parameter), JSON bodies with
 * placeholders only inside strings; kubernetes: operation, the service and
 * env parameters, and (with cfg) a targets: entry for every env value. */
int ob_exec_check_binding(const struct ob_config *cfg, const struct ob_action *a,
                          struct ob_diag *d);

/* Renders the argv for a complete, validated proposal. *argv_out is a
 * NULL-terminated malloc'd array of malloc'd strings (free with
 * ob_argv_free). Returns 0, OB_EINVAL (unknown placeholder / missing value)
 * or OB_ENOMEM. Used by ob_exec_start and by the approval echo to show
 * exactly what will run.
 * Rules: "{name}" is replaced inside its element only (an element is never
 * split or joined); "{{" and "}}" are literal braces; a lone brace and any
 * placeholder in argv[0] are errors. A placeholder of an optional parameter
 * without a value renders as ""; an element whose placeholders are ALL
 * such unset parameters is dropped ("--revision={revision}" disappears).
 * argv[0] comes back resolved: with a '/' against the config directory
 * (cfg NULL: the cwd) and made absolute, without one looked up in PATH
 * (kept as given when not found; the spawn then fails with -ENOENT). */
int ob_argv_render(const struct ob_config *cfg, const cJSON *argv_tmpl,
                   const struct ob_proposal *prop, char ***argv_out);
void ob_argv_free(char **argv);
/* "fleet.sh restart checkout prod" (argv[0] as basename, elements with
 * spaces or quotes shown quoted). */
const char *ob_argv_format(char *const *argv, char *buf, size_t len);

/* Network executors (all but exec) start at once (no queue) and count in
 * ob_exec_active; ob_exec_free cancels them (no callbacks).
 *
 * Starts (or queues) the job for prop; cb runs exactly once, on the loop,
 * also on failure to start (res->err = -ENOENT, -EACCES…), and never from
 * inside ob_exec_start. Everything is copied from prop at this call. The
 * child's environment is env_allow from ours, then the binding's env:, then
 * OPSBOT_ACTION and OPSBOT_PARAM_<NAME> (upper-cased) per parameter. cb
 * runs after the process exited AND its stdout/stderr reached EOF; when the
 * process exits but a background child keeps the pipes open, that group is
 * SIGKILLed after kill_grace_ms (not counted as a timeout). Returns 0 or a
 * negative error (OB_EINVAL: no exec binding, bad template/timeout/env;
 * nothing queued, cb not called). */
int ob_exec_start(struct ob_exec *ex, const struct ob_proposal *prop, ob_exec_cb cb, void *data);
/* Same with per-job options (o may be NULL). */
int ob_exec_start_ex(struct ob_exec *ex, const struct ob_proposal *prop,
                     const struct ob_exec_start_opts *o, ob_exec_cb cb, void *data);

/* One line saying what the job for prop will do, for the approval echo and
 * the audit trail: the argv for exec ("fleet.sh restart checkout prod"),
 * "prometheus query_range over 1h: <PromQL>", "loki: <LogQL> (last 15m)",
 * "kubernetes restart: deployment checkout in namespace prod (cluster
 * prod)", "http POST https://…". Secrets are not included (headers never
 * are). Returns 0 or OB_EINVAL (cannot render; buf holds a reason). */
int ob_exec_describe(const struct ob_config *cfg, const struct ob_proposal *prop, char *buf,
                     size_t len);

/* Checks the top-level `targets:` section (clusters, envs, services: where
 * the kubernetes executor finds a service in an env). Returns 0 or
 * OB_ECONFIG with file:line reasons in d. No section: 0. */
int ob_targets_check(const struct ob_config *cfg, struct ob_diag *d);

/* Jobs running or queued. */
size_t ob_exec_active(const struct ob_exec *ex);

#endif
