/* Executors run the action the catalog binds. This issue ships `exec`:
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

struct ob_exec_opts {
    size_t max_concurrency;       /* default 4 */
    size_t output_cap;            /* bytes kept of stdout+stderr, default 64 KiB */
    int64_t kill_grace_ms;        /* SIGTERM -> SIGKILL, default 5 s */
    const char *const *env_allow; /* NULL-terminated names passed through from
                                     our environment; NULL = PATH, HOME, LANG,
                                     LC_ALL, TZ */
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
    char command[1024]; /* the argv as a readable line: restart checkout prod */
};

typedef void (*ob_exec_cb)(void *data, const struct ob_exec_result *res);

int ob_exec_new(struct ob_exec **out, uv_loop_t *loop, const struct ob_config *cfg,
                const struct ob_exec_opts *opts);
/* Closes handles; running children are killed (SIGKILL to their process
 * groups) and queued jobs dropped. Callbacks of those jobs are NOT called,
 * neither now nor later. Async: the caller must run the loop afterwards
 * until it is empty (uv_run DEFAULT): memory is freed in close callbacks,
 * after the killed children are reaped. May be called from inside an
 * ob_exec_cb. NULL-safe. */
void ob_exec_free(struct ob_exec *ex);

/* Checks an action's binding at load time: type known, argv a non-empty list
 * of strings, every {placeholder} a parameter of the action, argv[0]
 * resolvable and executable, timeout a duration. Problems go into d with
 * file:line. Returns 0 or OB_ECONFIG. `help` (no executor) is fine. */
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

/* Starts (or queues) the job for prop; cb runs exactly once, on the loop,
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

/* Jobs running or queued. */
size_t ob_exec_active(const struct ob_exec *ex);

#endif
