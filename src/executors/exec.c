/* The exec executor: uv_spawn with a rendered argv, no shell.
 *
 * Life of a job: ob_exec_start renders everything synchronously (argv,
 * environment, cwd, timeout) and queues the job; launch() spawns it when a
 * slot is free. The child leads its own process group (UV_PROCESS_DETACHED),
 * so signals go to -pid and reach its children too. stdout and stderr are
 * two pipes read into one capped buffer in arrival order. The job finishes
 * once the process exited and both pipes are closed; then the next queued
 * job is launched and the callback runs. The job's memory is released when
 * its last handle's close callback has run.
 *
 * One timer per job drives every deadline:
 *   running:           timeout   -> SIGTERM to the group, timed_out
 *   after SIGTERM:     grace     -> SIGKILL to the group
 *   after SIGKILL:     grace     -> close the pipes whatever holds them
 *   leader exited, pipes still open (a background child keeps them):
 *                      grace     -> SIGKILL to the group, then as above
 * A spawn failure uses the same timer with 0 ms to report asynchronously.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/executor.h"
#include "opsbot/json.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEF_CONCURRENCY 4
#define DEF_OUTPUT_CAP (64 * 1024)
#define DEF_GRACE_MS 5000
#define DEF_TIMEOUT_MS (5 * 60 * 1000)
#define MAX_OUTPUT_CAP (256u * 1024 * 1024)
#define MAX_ALLOW 64
#define MAX_ENV 256

extern char **environ;

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
    struct ob_exec *ex;
    struct job *prev, *next; /* in ex->queue or ex->running */
    enum job_state state;
    ob_exec_cb cb;
    void *data;

    char **argv;
    char **env;
    char *cwd;
    int64_t timeout_ms;

    uv_process_t proc;
    uv_pipe_t pipes[2];
    uv_timer_t timer;
    int open_handles;
    bool proc_open, pipe_open[2], timer_open;
    bool spawned, exited, term_sent, kill_sent, pipes_forced;
    uint64_t start_ns;

    struct ob_exec_result res;
    size_t out_cap_alloc;
    char rbuf[16384];
};

struct job_list {
    struct job *head, *tail;
    size_t n;
};

struct ob_exec {
    uv_loop_t *loop;
    const struct ob_config *cfg;
    size_t max_concurrency;
    size_t output_cap;
    int64_t kill_grace_ms;
    char *allow[MAX_ALLOW + 1];
    struct job_list queue, running;
    size_t alive; /* jobs whose handles are not all closed yet */
    bool freeing;
    struct ob__net net; /* the network executors' jobs (net.c) */
};

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

static void list_remove(struct job_list *l, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
    l->n--;
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    ob_argv_free(j->argv);
    free_strv(j->env);
    free(j->cwd);
    free(j->res.output);
    free(j);
}

static void exec_release(struct ob_exec *ex)
{
    ob__net_release(&ex->net);
    for (size_t i = 0; ex->allow[i]; i++)
        free(ex->allow[i]);
    free(ex);
}

/* Freed once both the spawned jobs and the network jobs are gone. */
static void maybe_release(struct ob_exec *ex)
{
    if (ex->freeing && ex->alive == 0 && ex->net.alive == 0)
        exec_release(ex);
}

static void net_idle(void *data)
{
    maybe_release(data);
}

/* ---- handle bookkeeping ------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct ob_exec *ex = j->ex;

    if (--j->open_handles > 0)
        return;
    job_free(j);
    ex->alive--;
    maybe_release(ex);
}

static void close_handle(uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, on_handle_closed);
}

static void kill_group(struct job *j, int sig)
{
    if (j->spawned && j->proc.pid > 0)
        (void)kill(-j->proc.pid, sig);
}

/* ---- completion --------------------------------------------------------- */

static void launch(struct job *j);

static void pump(struct ob_exec *ex)
{
    while (!ex->freeing && ex->queue.head && ex->running.n < ex->max_concurrency) {
        struct job *j = ex->queue.head;

        list_remove(&ex->queue, j);
        list_push(&ex->running, j);
        j->state = JOB_RUNNING;
        launch(j);
    }
}

static void maybe_finish(struct job *j)
{
    struct ob_exec *ex = j->ex;

    if (j->state != JOB_RUNNING)
        return;
    if (!j->res.err && (!j->exited || j->pipe_open[0] || j->pipe_open[1]))
        return;
    j->state = JOB_DONE;
    list_remove(&ex->running, j);
    j->res.duration_ms = j->spawned ? (int64_t)((uv_hrtime() - j->start_ns) / 1000000) : 0;
    if (!j->res.output) {
        j->res.output = calloc(1, 1);
        j->res.output_len = 0;
    }
    if (j->timer_open)
        uv_timer_stop(&j->timer);
    /* Start the next queued job before the callback, so that a job the
     * callback submits queues behind the ones already waiting. */
    pump(ex);
    if (!ex->freeing && j->cb)
        j->cb(j->data, &j->res);
    /* The callback may have freed ex: it stays allocated until this job's
     * handles are closed, so touching j and ex here is still fine. */
    close_handle((uv_handle_t *)&j->timer, &j->timer_open);
}

static void on_timer(uv_timer_t *t);

static void arm_timer(struct job *j, int64_t ms)
{
    if (!j->timer_open)
        return;
    uv_timer_stop(&j->timer);
    /* The loop's cached time may be well behind after a slow spawn. */
    uv_update_time(j->ex->loop);
    uv_timer_start(&j->timer, on_timer, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void force_close_pipes(struct job *j)
{
    j->pipes_forced = true;
    for (int i = 0; i < 2; i++) {
        if (j->pipe_open[i])
            uv_read_stop((uv_stream_t *)&j->pipes[i]);
        close_handle((uv_handle_t *)&j->pipes[i], &j->pipe_open[i]);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    int64_t grace = j->ex->kill_grace_ms;

    if (j->res.err) { /* deferred spawn failure */
        maybe_finish(j);
        return;
    }
    if (!j->exited && !j->term_sent) {
        j->res.timed_out = true;
        j->term_sent = true;
        kill_group(j, SIGTERM);
        arm_timer(j, grace);
    } else if (!j->kill_sent) {
        /* Still running after SIGTERM, or the leader is gone but something
         * of its group holds the pipes open. */
        j->kill_sent = true;
        kill_group(j, SIGKILL);
        arm_timer(j, grace);
    } else {
        force_close_pipes(j);
        maybe_finish(j);
    }
}

/* ---- process and pipes -------------------------------------------------- */

static void on_proc_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct job *j = p->data;

    j->exited = true;
    j->res.exit_status = status;
    j->res.term_signal = term_signal;
    close_handle((uv_handle_t *)&j->proc, &j->proc_open);
    if (j->state != JOB_RUNNING)
        return; /* ob_exec_free killed it */
    if ((j->pipe_open[0] || j->pipe_open[1]) && !j->kill_sent && !j->term_sent)
        arm_timer(j, j->ex->kill_grace_ms); /* linger for the pipes */
    maybe_finish(j);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct job *j = h->data;

    (void)suggested;
    *buf = uv_buf_init(j->rbuf, sizeof(j->rbuf));
}

static void capture(struct job *j, const char *p, size_t n)
{
    size_t cap = j->ex->output_cap;
    size_t room = cap > j->res.output_len ? cap - j->res.output_len : 0;

    if (n > room) {
        j->res.truncated = true;
        n = room;
    }
    if (n == 0)
        return;
    if (j->res.output_len + n + 1 > j->out_cap_alloc) {
        size_t want = j->out_cap_alloc ? j->out_cap_alloc : 4096;
        char *np;

        while (want < j->res.output_len + n + 1)
            want *= 2;
        if (want > cap + 1)
            want = cap + 1;
        np = realloc(j->res.output, want);
        if (!np) {
            j->res.truncated = true;
            return;
        }
        j->res.output = np;
        j->out_cap_alloc = want;
    }
    memcpy(j->res.output + j->res.output_len, p, n);
    j->res.output_len += n;
    j->res.output[j->res.output_len] = '\0';
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct job *j = s->data;
    int i = (s == (uv_stream_t *)&j->pipes[0]) ? 0 : 1;

    if (nread > 0) {
        capture(j, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* UV_EOF or a read error: this stream is done. */
    uv_read_stop(s);
    close_handle((uv_handle_t *)s, &j->pipe_open[i]);
    maybe_finish(j);
}

static void launch(struct job *j)
{
    struct ob_exec *ex = j->ex;
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    int rc;

    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    ex->alive++;
    j->proc.data = j->timer.data = j->pipes[0].data = j->pipes[1].data = j;

    uv_timer_init(ex->loop, &j->timer);
    j->timer_open = true;
    j->open_handles++;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(ex->loop, &j->pipes[i], 0);
        j->pipe_open[i] = true;
        j->open_handles++;
    }

    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&j->pipes[0];
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&j->pipes[1];
    o.file = j->argv[0];
    o.args = j->argv;
    o.env = j->env;
    o.cwd = j->cwd;
    o.flags = UV_PROCESS_DETACHED;
    o.stdio_count = 3;
    o.stdio = stdio;
    o.exit_cb = on_proc_exit;

    j->start_ns = uv_hrtime();
    rc = uv_spawn(ex->loop, &j->proc, &o);
    /* On unix the process handle is initialised even when spawn fails and
     * must be closed like any other. */
    j->proc_open = true;
    j->open_handles++;
    if (rc) {
        ob_warn("exec", "cannot start %s: %s", j->res.command, uv_strerror(rc));
        j->res.err = rc;
        close_handle((uv_handle_t *)&j->proc, &j->proc_open);
        for (int i = 0; i < 2; i++)
            close_handle((uv_handle_t *)&j->pipes[i], &j->pipe_open[i]);
        arm_timer(j, 0); /* report on a later loop turn, never re-entrantly */
        return;
    }
    j->spawned = true;
    for (int i = 0; i < 2; i++) {
        rc = uv_read_start((uv_stream_t *)&j->pipes[i], on_alloc, on_read);
        if (rc)
            close_handle((uv_handle_t *)&j->pipes[i], &j->pipe_open[i]);
    }
    arm_timer(j, j->timeout_ms);
}

/* ---- building a job ----------------------------------------------------- */

static int env_set(char **env, size_t *n, const char *name, const char *value)
{
    size_t nl = strlen(name);
    char *kv = NULL;

    if (asprintf(&kv, "%s=%s", name, value) < 0)
        return OB_ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp(env[i], name, nl) && env[i][nl] == '=') {
            free(env[i]);
            env[i] = kv;
            return 0;
        }
    }
    if (*n >= MAX_ENV) {
        free(kv);
        return OB_EINVAL;
    }
    env[(*n)++] = kv;
    return 0;
}

static int build_env(const struct ob_exec *ex, const struct ob_proposal *prop, const cJSON *envmap,
                     char ***out)
{
    char **env = calloc(MAX_ENV + 1, sizeof(*env));
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (!env)
        return OB_ENOMEM;
    for (size_t i = 0; ex->allow[i] && !rc; i++) {
        const char *v = getenv(ex->allow[i]);

        if (v)
            rc = env_set(env, &n, ex->allow[i], v);
    }
    if (envmap && !rc) {
        const cJSON *kv;

        if (!cJSON_IsObject(envmap)) {
            rc = OB_EINVAL;
            goto out;
        }
        cJSON_ArrayForEach(kv, envmap)
        {
            char num[64];
            const char *v;

            if (!kv->string || !*kv->string || strchr(kv->string, '=') ||
                !strncmp(kv->string, "OPSBOT_", 7)) {
                rc = OB_EINVAL;
                goto out;
            }
            if (cJSON_IsString(kv) && kv->valuestring) {
                v = kv->valuestring;
            } else if (cJSON_IsNumber(kv)) {
                ob_json_num_text(kv->valuedouble, num, sizeof(num));
                v = num;
            } else if (cJSON_IsBool(kv)) {
                v = cJSON_IsTrue(kv) ? "true" : "false";
            } else {
                rc = OB_EINVAL;
                goto out;
            }
            rc = env_set(env, &n, kv->string, v);
            if (rc)
                goto out;
        }
    }
    if (!rc)
        rc = env_set(env, &n, "OPSBOT_ACTION", prop->action->name ? prop->action->name : "");
    for (size_t i = 0; i < prop->nparams && i < OB_MAX_PARAMS && !rc; i++) {
        char name[7 + 6 + sizeof(prop->params[i].name)];
        size_t k = ob_strlcpy(name, "OPSBOT_PARAM_", sizeof(name));

        for (const char *p = prop->params[i].name; *p && k + 1 < sizeof(name); p++) {
            char c = *p;

            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                c = '_';
            name[k++] = c;
        }
        name[k] = '\0';
        rc = env_set(env, &n, name, prop->params[i].value);
    }
out:
    if (rc) {
        free_strv(env);
        return rc;
    }
    *out = env;
    return 0;
}

static int parse_timeout(const cJSON *t, int64_t *ms)
{
    *ms = DEF_TIMEOUT_MS;
    if (!t)
        return 0;
    if (cJSON_IsString(t) && t->valuestring) {
        if (ob_duration_parse(t->valuestring, ms))
            return OB_EINVAL;
    } else if (cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble <= 86400) {
        *ms = (int64_t)(t->valuedouble * 1000);
    } else {
        return OB_EINVAL;
    }
    return (*ms > 0 && *ms <= 86400000) ? 0 : OB_EINVAL;
}

static char *make_abs(char *p)
{
    char cwd[PATH_MAX];
    char *abs = NULL;

    if (!p || p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
        return p;
    if (asprintf(&abs, "%s/%s", cwd, p) < 0)
        abs = NULL;
    free(p);
    return abs;
}

int ob_exec_start(struct ob_exec *ex, const struct ob_proposal *prop, ob_exec_cb cb, void *data)
{
    return ob_exec_start_ex(ex, prop, NULL, cb, data);
}

int ob_exec_start_ex(struct ob_exec *ex, const struct ob_proposal *prop,
                     const struct ob_exec_start_opts *o, ob_exec_cb cb, void *data)
{
    const cJSON *b, *type, *cwd;
    const struct ob_config *cfg;
    struct job *j = NULL;
    int rc;

    if (!ex || ex->freeing || !prop || !prop->action || !cb)
        return OB_EINVAL;
    b = prop->action->executor;
    if (!cJSON_IsObject(b))
        return OB_EINVAL;
    type = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!cJSON_IsString(type))
        return OB_EINVAL;
    if (strcmp(type->valuestring, "exec")) {
        /* The one dispatch point for the other types (net.c). */
        const struct ob__exec_type *t = ob__exec_type_find(type->valuestring);

        return t ? ob__net_start(&ex->net, t, prop, o, cb, data) : OB_EINVAL;
    }
    cfg = o && o->cfg ? o->cfg : ex->cfg;

    j = calloc(1, sizeof(*j));
    if (!j)
        return OB_ENOMEM;
    j->ex = ex;
    j->cb = cb;
    j->data = data;
    rc = ob_argv_render(cfg, cJSON_GetObjectItemCaseSensitive(b, "argv"), prop, &j->argv);
    if (rc)
        goto out;
    ob_argv_format(j->argv, j->res.command, sizeof(j->res.command));
    rc = parse_timeout(cJSON_GetObjectItemCaseSensitive(b, "timeout"), &j->timeout_ms);
    if (rc)
        goto out;
    rc = build_env(ex, prop, cJSON_GetObjectItemCaseSensitive(b, "env"), &j->env);
    if (rc)
        goto out;
    cwd = cJSON_GetObjectItemCaseSensitive(b, "cwd");
    if (cwd) {
        if (!cJSON_IsString(cwd) || !cwd->valuestring || !*cwd->valuestring) {
            rc = OB_EINVAL;
            goto out;
        }
        j->cwd = make_abs(cfg ? ob_config_path(cfg, cwd->valuestring) : strdup(cwd->valuestring));
        if (!j->cwd) {
            rc = OB_ENOMEM;
            goto out;
        }
    }
    j->state = JOB_QUEUED;
    list_push(&ex->queue, j);
    j = NULL;
    pump(ex);
out:
    job_free(j);
    return rc;
}

size_t ob_exec_active(const struct ob_exec *ex)
{
    return ex ? ex->queue.n + ex->running.n + ex->net.njobs : 0;
}

void ob_exec_set_http(struct ob_exec *ex, struct ob_http *http)
{
    if (ex)
        ex->net.http = http;
}

/* ---- lifecycle ---------------------------------------------------------- */

int ob_exec_new(struct ob_exec **out, uv_loop_t *loop, const struct ob_config *cfg,
                const struct ob_exec_opts *opts)
{
    static const char *const def_allow[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", NULL};
    const char *const *allow = def_allow;
    struct ob_exec *ex;

    *out = NULL;
    if (!loop)
        return OB_EINVAL;
    ex = calloc(1, sizeof(*ex));
    if (!ex)
        return OB_ENOMEM;
    ex->loop = loop;
    ex->cfg = cfg;
    ex->max_concurrency = opts && opts->max_concurrency ? opts->max_concurrency : DEF_CONCURRENCY;
    ex->output_cap = opts && opts->output_cap ? opts->output_cap : DEF_OUTPUT_CAP;
    if (ex->output_cap > MAX_OUTPUT_CAP)
        ex->output_cap = MAX_OUTPUT_CAP;
    ex->kill_grace_ms = opts && opts->kill_grace_ms > 0 ? opts->kill_grace_ms : DEF_GRACE_MS;
    if (opts && opts->env_allow)
        allow = opts->env_allow;
    ob__net_init(&ex->net, loop, cfg, ex->output_cap, opts && opts->dry_run);
    ex->net.on_idle = net_idle;
    ex->net.on_idle_data = ex;
    for (size_t i = 0, k = 0; allow[i] && k < MAX_ALLOW; i++) {
        if (!*allow[i] || strchr(allow[i], '='))
            continue;
        ex->allow[k] = strdup(allow[i]);
        if (!ex->allow[k]) {
            exec_release(ex);
            return OB_ENOMEM;
        }
        k++;
    }
    *out = ex;
    return 0;
}

void ob_exec_free(struct ob_exec *ex)
{
    struct job *j;

    if (!ex || ex->freeing)
        return;
    ex->freeing = true;
    while ((j = ex->queue.head)) {
        list_remove(&ex->queue, j);
        job_free(j);
    }
    while ((j = ex->running.head)) {
        list_remove(&ex->running, j);
        j->state = JOB_DONE;
        /* The whole group, also when only background children are left. A
         * live leader's handle closes in on_proc_exit, once it is reaped. */
        if (j->spawned)
            kill_group(j, SIGKILL);
        if (!j->spawned || j->exited)
            close_handle((uv_handle_t *)&j->proc, &j->proc_open);
        for (int i = 0; i < 2; i++) {
            if (j->pipe_open[i])
                uv_read_stop((uv_stream_t *)&j->pipes[i]);
            close_handle((uv_handle_t *)&j->pipes[i], &j->pipe_open[i]);
        }
        close_handle((uv_handle_t *)&j->timer, &j->timer_open);
    }
    /* Network jobs: cancelled, their timers closed; net_idle follows. */
    ob__net_shutdown(&ex->net);
    maybe_release(ex);
}
