/* Tests of the exec executor, the argv templates and the demo fleet script.
 * Helper scripts live in tests/data/exec/; the tests run from there so that
 * "./args.sh" exercises the cfg == NULL path (relative to the cwd). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "opsbot/err.h"
#include "opsbot/executor.h"
#include "opsbot/util.h"

static char datadir[PATH_MAX];
static char fleet[PATH_MAX];

/* ---- fixtures ----------------------------------------------------------- */

struct fixture {
    uv_loop_t loop;
    struct ob_exec *ex;
    struct ob_param_def params[3];
    struct ob_action action;
    cJSON *binding;
    struct ob_proposal prop;
};

static void fx_init(struct fixture *f, const struct ob_exec_opts *opts)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(ob_exec_new(&f->ex, &f->loop, NULL, opts), 0);
    f->params[0].name = (char *)"service";
    f->params[0].required = true;
    f->params[1].name = (char *)"env";
    f->params[1].required = true;
    f->params[2].name = (char *)"revision";
    f->params[2].required = false;
    f->action.name = (char *)"deploy";
    f->action.params = f->params;
    f->action.nparams = 3;
    f->prop.action = &f->action;
}

static void fx_bind(struct fixture *f, const char *json)
{
    cJSON_Delete(f->binding);
    f->binding = cJSON_Parse(json);
    if (!f->binding)
        fail_msg("bad test JSON: %s", json);
    f->action.executor = f->binding;
}

static void fx_param(struct fixture *f, const char *name, const char *value)
{
    struct ob_kv *kv = &f->prop.params[f->prop.nparams++];

    ob_strlcpy(kv->name, name, sizeof(kv->name));
    ob_strlcpy(kv->value, value, sizeof(kv->value));
}

static void fx_done(struct fixture *f)
{
    ob_exec_free(f->ex);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
    cJSON_Delete(f->binding);
}

struct outcome {
    int calls;
    int order; /* global completion order */
    struct ob_exec_result res;
    char *output;
    size_t active_in_cb;
    struct ob_exec *ex;
};

static int completions;
static bool in_callback;

static void on_done(void *data, const struct ob_exec_result *res)
{
    struct outcome *o = data;

    assert_false(in_callback); /* never re-entrant */
    o->calls++;
    o->order = completions++;
    o->res = *res;
    o->res.output = NULL;
    free(o->output);
    o->output = malloc(res->output_len + 1);
    assert_non_null(o->output);
    memcpy(o->output, res->output, res->output_len + 1);
    if (o->ex)
        o->active_in_cb = ob_exec_active(o->ex);
}

/* Starts the fixture's proposal and runs the loop until it is done. */
static void run_one(struct fixture *f, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(ob_exec_start(f->ex, &f->prop, on_done, o), 0);
    assert_int_equal(o->calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(o->calls, 1);
    assert_int_equal(ob_exec_active(f->ex), 0);
}

static bool process_gone(pid_t pid)
{
    char path[64], buf[256];
    FILE *fp;
    bool gone = true;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (!fp)
        return true;
    if (fgets(buf, sizeof(buf), fp)) {
        const char *p = strrchr(buf, ')');

        gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'); /* zombie: dead */
    }
    fclose(fp);
    return gone;
}

/* A process that closed its pipes may still be in the middle of exiting:
 * wait (on the loop, through a pidfd, at most 3 s) until it is dead. */
struct gone_wait {
    uv_poll_t poll;
    uv_timer_t timer;
    bool gone;
};

static void on_pidfd(uv_poll_t *p, int status, int events)
{
    struct gone_wait *w = p->data;

    (void)status;
    (void)events;
    w->gone = true;
    uv_poll_stop(&w->poll);
    uv_timer_stop(&w->timer);
}

static void on_gone_timeout(uv_timer_t *t)
{
    struct gone_wait *w = t->data;

    uv_poll_stop(&w->poll);
}

static bool wait_gone(uv_loop_t *loop, pid_t pid)
{
    struct gone_wait w = {.gone = false};
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);

    if (fd < 0)
        return errno == ESRCH; /* already reaped */
    w.poll.data = w.timer.data = &w;
    assert_int_equal(uv_poll_init(loop, &w.poll, fd), 0);
    assert_int_equal(uv_timer_init(loop, &w.timer), 0);
    uv_poll_start(&w.poll, UV_READABLE, on_pidfd);
    uv_timer_start(&w.timer, on_gone_timeout, 3000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.poll, NULL);
    uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    close(fd);
    return w.gone || process_gone(pid);
}

/* ---- argv rendering ----------------------------------------------------- */

static char **render(struct fixture *f, const char *argv_json, int want_rc)
{
    cJSON *t = cJSON_Parse(argv_json);
    char **argv = NULL;

    assert_non_null(t);
    assert_int_equal(ob_argv_render(NULL, t, &f->prop, &argv), want_rc);
    cJSON_Delete(t);
    if (want_rc)
        assert_null(argv);
    return argv;
}

static void test_render(void **state)
{
    struct fixture f;
    char **argv;
    char buf[PATH_MAX + 64];

    (void)state;
    fx_init(&f, NULL);
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod; rm -rf / $(id)");

    argv = render(&f,
                  "[\"/bin/echo\", \"--svc={service}\", \"{env}\", \"{{lit}}\", "
                  "\"a{{b}}c\", \"--revision={revision}\", \"{revision}\", "
                  "\"{service}-{revision}\", \"x}}{{y\"]",
                  0);
    assert_string_equal(argv[0], "/bin/echo");
    assert_string_equal(argv[1], "--svc=checkout");
    assert_string_equal(argv[2], "prod; rm -rf / $(id)"); /* one element */
    assert_string_equal(argv[3], "{lit}");
    assert_string_equal(argv[4], "a{b}c");
    /* both "--revision={revision}" and "{revision}" are dropped */
    assert_string_equal(argv[5], "checkout-");
    assert_string_equal(argv[6], "x}{y");
    assert_null(argv[7]);
    assert_string_equal(ob_argv_format(argv, buf, sizeof(buf)),
                        "echo --svc=checkout 'prod; rm -rf / $(id)' '{lit}' 'a{b}c' checkout- "
                        "'x}{y'");
    ob_argv_free(argv);

    /* with a value the optional elements stay */
    fx_param(&f, "revision", "41");
    argv = render(&f, "[\"/bin/echo\", \"--revision={revision}\", \"{revision}\"]", 0);
    assert_string_equal(argv[1], "--revision=41");
    assert_string_equal(argv[2], "41");
    assert_null(argv[3]);
    ob_argv_free(argv);

    /* program looked up in PATH */
    argv = render(&f, "[\"sh\", \"-n\"]", 0);
    assert_true(argv[0][0] == '/');
    assert_non_null(strstr(argv[0], "/sh"));
    ob_argv_free(argv);
    /* relative program made absolute against the cwd */
    argv = render(&f, "[\"./args.sh\"]", 0);
    snprintf(buf, sizeof(buf), "%s/args.sh", datadir);
    assert_string_equal(argv[0], buf);
    ob_argv_free(argv);

    render(&f, "[\"/bin/echo\", \"{nope}\"]", OB_EINVAL); /* unknown */
    render(&f, "[\"/bin/echo\", \"{\"]", OB_EINVAL);      /* lone brace */
    render(&f, "[\"/bin/echo\", \"a}b\"]", OB_EINVAL);    /* lone brace */
    render(&f, "[\"/bin/echo\", \"{}\"]", OB_EINVAL);     /* empty name */
    render(&f, "[\"/bin/{service}\"]", OB_EINVAL);        /* program */
    render(&f, "[]", OB_EINVAL);                          /* empty */
    render(&f, "[\"/bin/echo\", 3]", OB_EINVAL);          /* not a string */
    render(&f, "[\"\"]", OB_EINVAL);                      /* empty program */
    /* a required parameter without a value */
    f.prop.nparams = 0;
    fx_param(&f, "service", "checkout");
    render(&f, "[\"/bin/echo\", \"{env}\"]", OB_EINVAL);
    fx_done(&f);
}

static void test_format(void **state)
{
    char a0[] = "/srv/ops/fleet.sh", a1[] = "restart", a2[] = "check out", a3[] = "it's", a4[] = "",
         a5[] = "a\nb";
    char *argv[] = {a0, a1, a2, a3, a4, a5, NULL};
    char buf[128], small[12];

    (void)state;
    assert_string_equal(ob_argv_format(argv, buf, sizeof(buf)),
                        "fleet.sh restart 'check out' 'it'\\''s' '' 'a?b'");
    ob_argv_format(argv, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
    assert_string_equal(small + strlen(small) - 3, "...");
    assert_string_equal(ob_argv_format(NULL, buf, sizeof(buf)), "");
}

/* ---- running ------------------------------------------------------------ */

static void test_argv_stays_one_element(void **state)
{
    struct fixture f;
    struct outcome o;

    (void)state;
    fx_init(&f, NULL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./args.sh\", \"--svc={service}\", \"{env}\", "
                "\"{revision}\"], \"timeout\": \"10s\"}");
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod; rm -rf / `id` $(id) 'q' \"d\" *");
    run_one(&f, &o);
    assert_int_equal(o.res.err, 0);
    assert_int_equal(o.res.exit_status, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_false(o.res.timed_out);
    assert_false(o.res.truncated);
    assert_string_equal(o.output, "argc=2\n[--svc=checkout]\n"
                                  "[prod; rm -rf / `id` $(id) 'q' \"d\" *]\n");
    assert_int_equal(o.res.output_len, strlen(o.output));
    assert_non_null(strstr(o.res.command, "args.sh --svc=checkout 'prod; rm -rf /"));
    assert_true(o.res.duration_ms >= 0);
    free(o.output);
    fx_done(&f);
}

static void test_env_is_clean(void **state)
{
    struct fixture f;
    struct outcome o;
    const char *allow[] = {"OB_TEST_ALLOWED", NULL};
    struct ob_exec_opts opts = {.env_allow = allow};

    (void)state;
    setenv("OB_TEST_SECRET", "leak-me", 1);
    setenv("OB_TEST_ALLOWED", "yes", 1);
    fx_init(&f, NULL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/usr/bin/env\"], "
                "\"env\": {\"FLEET_STATE\": \"/tmp/state\", \"N\": 3, \"B\": true}}");
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod");
    run_one(&f, &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, "OPSBOT_ACTION=deploy\n"));
    assert_non_null(strstr(o.output, "OPSBOT_PARAM_SERVICE=checkout\n"));
    assert_non_null(strstr(o.output, "OPSBOT_PARAM_ENV=prod\n"));
    assert_non_null(strstr(o.output, "FLEET_STATE=/tmp/state\n"));
    assert_non_null(strstr(o.output, "N=3\n"));
    assert_non_null(strstr(o.output, "B=true\n"));
    assert_non_null(strstr(o.output, "PATH="));
    assert_null(strstr(o.output, "OB_TEST_SECRET"));
    assert_null(strstr(o.output, "OB_TEST_ALLOWED"));
    assert_null(strstr(o.output, "OPSBOT_PARAM_REVISION"));
    free(o.output);
    fx_done(&f);

    /* an explicit allow-list replaces the default one */
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/usr/bin/env\"]}");
    fx_param(&f, "service", "checkout");
    run_one(&f, &o);
    assert_non_null(strstr(o.output, "OB_TEST_ALLOWED=yes\n"));
    assert_null(strstr(o.output, "PATH="));
    assert_null(strstr(o.output, "OB_TEST_SECRET"));
    free(o.output);
    fx_done(&f);
    unsetenv("OB_TEST_SECRET");
    unsetenv("OB_TEST_ALLOWED");
}

static void test_exit_status_and_stderr(void **state)
{
    struct fixture f;
    struct outcome o;

    (void)state;
    fx_init(&f, NULL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./fail.sh\", \"{service}\"], \"cwd\": \"/\"}");
    fx_param(&f, "service", "7");
    run_one(&f, &o);
    assert_int_equal(o.res.err, 0);
    assert_int_equal(o.res.exit_status, 7);
    assert_int_equal(o.res.term_signal, 0);
    assert_false(o.res.timed_out);
    assert_non_null(strstr(o.output, "about to fail\n"));
    assert_non_null(strstr(o.output, "failing with 7\n")); /* stderr captured too */
    free(o.output);
    fx_done(&f);
}

static void test_timeout_sigterm(void **state)
{
    struct fixture f;
    struct outcome o;
    struct ob_exec_opts opts = {.kill_grace_ms = 5000};

    (void)state;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./grandchild.sh\"], \"timeout\": \"300ms\"}");
    run_one(&f, &o);
    assert_true(o.res.timed_out);
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_true(o.res.duration_ms >= 300);
    assert_true(o.res.duration_ms < 5000); /* SIGTERM was enough */
    /* the grandchild (same process group) is dead too */
    {
        long pid = strtol(o.output, NULL, 10);

        assert_true(pid > 1);
        assert_true(wait_gone(&f.loop, (pid_t)pid));
    }
    free(o.output);
    fx_done(&f);
}

static void test_timeout_sigkill(void **state)
{
    struct fixture f;
    struct outcome o;
    struct ob_exec_opts opts = {.kill_grace_ms = 200};

    (void)state;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./trap.sh\"], \"timeout\": \"400ms\"}");
    run_one(&f, &o);
    assert_true(o.res.timed_out);
    assert_int_equal(o.res.term_signal, SIGKILL);
    assert_true(o.res.duration_ms >= 600);
    assert_string_equal(o.output, "ready\n");
    free(o.output);
    fx_done(&f);
}

static void test_lingering_child(void **state)
{
    struct fixture f;
    struct outcome o;
    struct ob_exec_opts opts = {.kill_grace_ms = 150};

    (void)state;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./linger.sh\"], \"timeout\": \"30s\"}");
    run_one(&f, &o);
    /* the command itself succeeded; its leftover child was killed */
    assert_false(o.res.timed_out);
    assert_int_equal(o.res.exit_status, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_true(o.res.duration_ms < 5000);
    assert_true(wait_gone(&f.loop, (pid_t)strtol(o.output, NULL, 10)));
    free(o.output);
    fx_done(&f);
}

static void test_output_cap(void **state)
{
    struct fixture f;
    struct outcome o;
    struct ob_exec_opts opts = {.output_cap = 1000};

    (void)state;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/usr/bin/seq\", \"1\", \"200000\"]}");
    run_one(&f, &o);
    assert_true(o.res.truncated);
    assert_int_equal(o.res.output_len, 1000);
    assert_int_equal(strlen(o.output), 1000);
    assert_memory_equal(o.output, "1\n2\n3\n", 6);
    /* the child was drained, not choked: it exited normally */
    assert_int_equal(o.res.exit_status, 0);
    assert_int_equal(o.res.term_signal, 0);
    free(o.output);
    fx_done(&f);

    /* exactly at the cap is not truncated */
    opts.output_cap = 4;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/usr/bin/seq\", \"1\", \"2\"]}");
    run_one(&f, &o);
    assert_false(o.res.truncated);
    assert_string_equal(o.output, "1\n2\n");
    free(o.output);
    fx_done(&f);
}

struct nested {
    struct fixture *f;
    struct outcome inner;
    int outer_calls;
};

static void on_outer(void *data, const struct ob_exec_result *res)
{
    struct nested *n = data;

    n->outer_calls++;
    assert_int_equal(res->err, -ENOENT);
    /* starting from inside a callback: the failure must not call back now */
    in_callback = true;
    assert_int_equal(ob_exec_start(n->f->ex, &n->f->prop, on_done, &n->inner), 0);
    assert_int_equal(n->inner.calls, 0);
    in_callback = false;
}

static void test_spawn_failure(void **state)
{
    struct fixture f;
    struct outcome o;
    struct nested n;

    (void)state;
    fx_init(&f, NULL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./does-not-exist.sh\"]}");
    run_one(&f, &o);
    assert_int_equal(o.res.err, -ENOENT);
    assert_string_equal(o.output, "");
    assert_string_equal(o.res.command, "does-not-exist.sh");
    free(o.output);

    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"not-a-command-anywhere-xyz\"]}");
    run_one(&f, &o);
    assert_int_equal(o.res.err, -ENOENT);
    free(o.output);

    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./noexec.txt\"]}");
    run_one(&f, &o);
    assert_int_equal(o.res.err, -EACCES);
    free(o.output);

    /* failure reported asynchronously even when started from a callback */
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./does-not-exist.sh\"]}");
    memset(&n, 0, sizeof(n));
    n.f = &f;
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_outer, &n), 0);
    assert_int_equal(n.outer_calls, 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(n.outer_calls, 1);
    assert_int_equal(n.inner.calls, 1);
    assert_int_equal(n.inner.res.err, -ENOENT);
    free(n.inner.output);

    /* synchronous refusals: nothing queued, no callback */
    memset(&o, 0, sizeof(o));
    fx_bind(&f, "{\"type\": \"http\", \"argv\": [\"/bin/true\"]}");
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &o), OB_EINVAL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/bin/echo\", \"{bogus}\"]}");
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &o), OB_EINVAL);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/bin/true\"], \"timeout\": \"soon\"}");
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &o), OB_EINVAL);
    f.action.executor = NULL;
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &o), OB_EINVAL);
    assert_int_equal(ob_exec_active(f.ex), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 0);
    fx_done(&f);
}

static void test_concurrency_fifo(void **state)
{
    struct fixture f[4];
    struct fixture base;
    struct outcome o[4];
    struct ob_exec_opts opts = {.max_concurrency = 2};
    const char *secs[4] = {"0.1", "1.0", "0.2", "0.1"};
    char logpath[] = "/tmp/ob-exec-stamp-XXXXXX";
    char json[512], line[64];
    int fd, running = 0, max_running = 0;
    FILE *fp;

    (void)state;
    fd = mkstemp(logpath);
    assert_true(fd >= 0);
    close(fd);
    fx_init(&base, &opts);
    snprintf(json, sizeof(json),
             "{\"type\": \"exec\", \"argv\": [\"./stamp.sh\", \"%s\", \"{service}\", \"{env}\"]}",
             logpath);
    /* four proposals on one executor */
    for (int i = 0; i < 4; i++) {
        f[i] = base;
        f[i].binding = NULL;
        f[i].action.params = f[i].params;
        f[i].prop.action = &f[i].action;
        fx_bind(&f[i], json);
        snprintf(line, sizeof(line), "%d", i);
        fx_param(&f[i], "service", line);
        fx_param(&f[i], "env", secs[i]);
    }
    completions = 0;
    for (int i = 0; i < 4; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        o[i].ex = base.ex;
        assert_int_equal(ob_exec_start(base.ex, &f[i].prop, on_done, &o[i]), 0);
    }
    assert_int_equal(ob_exec_active(base.ex), 4);
    uv_run(&base.loop, UV_RUN_DEFAULT);
    assert_int_equal(ob_exec_active(base.ex), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].res.exit_status, 0);
        free(o[i].output);
    }
    /* FIFO: job 2 got the first free slot, job 3 the next one */
    assert_int_equal(o[0].order, 0);
    assert_int_equal(o[2].order, 1);
    assert_int_equal(o[3].order, 2);
    assert_int_equal(o[1].order, 3);
    assert_int_equal(o[0].active_in_cb, 3);
    assert_int_equal(o[2].active_in_cb, 2);
    assert_int_equal(o[3].active_in_cb, 1);
    assert_int_equal(o[1].active_in_cb, 0);
    /* never more than two at once, as seen by the jobs themselves */
    fp = fopen(logpath, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
        running += !strncmp(line, "start", 5) ? 1 : -1;
        if (running > max_running)
            max_running = running;
    }
    fclose(fp);
    unlink(logpath);
    assert_int_equal(max_running, 2);
    for (int i = 0; i < 4; i++)
        cJSON_Delete(f[i].binding);
    fx_done(&base);
}

static void on_done_free(void *data, const struct ob_exec_result *res)
{
    struct outcome *o = data;

    (void)res;
    o->calls++;
    ob_exec_free(o->ex); /* freeing the executor from its own callback */
}

static void test_free_kills_and_silences(void **state)
{
    struct fixture f;
    struct outcome quick, slow, queued;
    struct ob_exec_opts opts = {.max_concurrency = 2};
    uint64_t t0;

    (void)state;
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"/bin/sleep\", \"{service}\"]}");
    memset(&quick, 0, sizeof(quick));
    memset(&slow, 0, sizeof(slow));
    memset(&queued, 0, sizeof(queued));
    quick.ex = f.ex;
    fx_param(&f, "service", "0");
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done_free, &quick), 0);
    f.prop.nparams = 0;
    fx_param(&f, "service", "30");
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &slow), 0);
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &queued), 0);
    t0 = uv_hrtime();
    uv_run(&f.loop, UV_RUN_DEFAULT); /* ends once the killed child is reaped */
    assert_true((uv_hrtime() - t0) / 1000000 < 10000);
    assert_int_equal(quick.calls, 1);
    assert_int_equal(slow.calls, 0);
    assert_int_equal(queued.calls, 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    cJSON_Delete(f.binding);

    /* free from outside, with a running and a queued job */
    fx_init(&f, &opts);
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"./grandchild.sh\"]}");
    memset(&slow, 0, sizeof(slow));
    assert_int_equal(ob_exec_start(f.ex, &f.prop, on_done, &slow), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    t0 = uv_hrtime();
    fx_done(&f);
    assert_true((uv_hrtime() - t0) / 1000000 < 10000);
    assert_int_equal(slow.calls, 0);
    ob_exec_free(NULL);
}

/* ---- binding checks ----------------------------------------------------- */

static int check(struct fixture *f, const char *json, struct ob_diag *d)
{
    ob_diag_release(d);
    fx_bind(f, json);
    return ob_exec_check_binding(NULL, &f->action, d);
}

static void expect_line(const struct ob_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->lines[i] && strstr(d->lines[i], needle)) {
            assert_non_null(strstr(d->lines[i], "<input>: action 'deploy': executor: "));
            return;
        }
    }
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "  diag: %s\n", d->lines[i]);
    fail_msg("no diagnostic contains \"%s\"", needle);
}

static void test_check_binding(void **state)
{
    struct fixture f;
    struct ob_diag d;
    char buf[PATH_MAX + 128], json[2600];

    (void)state;
    fx_init(&f, NULL);
    ob_diag_init(&d);

    assert_int_equal(check(&f,
                           "{\"type\": \"exec\", \"argv\": [\"./args.sh\", \"{service}\", "
                           "\"--env={env}\", \"{{x}}\"], \"timeout\": \"30s\", \"cwd\": \".\", "
                           "\"env\": {\"A\": \"b\", \"N\": 1}}",
                           &d),
                     0);
    assert_int_equal(d.n, 0);
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\"], \"timeout\": 90}", &d), 0);

    assert_int_equal(check(&f,
                           "{\"type\": \"exec\", \"argv\": [\"./args.sh\", \"restart\", "
                           "\"{env}\", \"{servce}\"]}",
                           &d),
                     OB_ECONFIG);
    assert_int_equal(d.n, 1);
    expect_line(&d, "argv[3]: unknown placeholder {servce} (parameters: service, env, revision)");

    assert_int_equal(check(&f, "{\"type\": \"ssh\", \"argv\": [\"x\"]}", &d), OB_ECONFIG);
    expect_line(&d,
                "unknown executor type 'ssh' (known: exec, prometheus, loki, kubernetes, http)");
    assert_int_equal(check(&f, "{\"argv\": [\"x\"]}", &d), OB_ECONFIG);
    expect_line(&d, "type: missing");
    assert_int_equal(check(&f, "[1]", &d), OB_ECONFIG);
    expect_line(&d, "must be a mapping");

    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"./noexec.txt\"]}", &d),
                     OB_ECONFIG);
    snprintf(buf, sizeof(buf),
             "argv[0]: ./noexec.txt not found or not executable (resolved to %s/noexec.txt)",
             datadir);
    expect_line(&d, buf);
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"./nope.sh\"]}", &d), OB_ECONFIG);
    expect_line(&d, "argv[0]: ./nope.sh not found or not executable");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"no-such-cmd-xyz\"]}", &d),
                     OB_ECONFIG);
    expect_line(&d, "argv[0]: no-such-cmd-xyz not found in PATH");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"./{service}.sh\"]}", &d),
                     OB_ECONFIG);
    expect_line(&d, "argv[0]: placeholders are not allowed");

    assert_int_equal(check(&f,
                           "{\"type\": \"exec\", \"argv\": [\"sh\"], \"shell\": true, "
                           "\"retries\": 2}",
                           &d),
                     OB_ECONFIG);
    assert_int_equal(d.n, 2);
    expect_line(&d, "unknown key 'shell' (allowed: type, argv, timeout, cwd, env)");
    expect_line(&d, "unknown key 'retries'");

    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": []}", &d), OB_ECONFIG);
    expect_line(&d, "argv: must be a non-empty list of strings");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": \"sh -c x\"}", &d), OB_ECONFIG);
    expect_line(&d, "argv: must be a non-empty list of strings");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\", 5]}", &d), OB_ECONFIG);
    expect_line(&d, "argv[1]: must be a string");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\", \"a{b\", \"}\"]}", &d),
                     OB_ECONFIG);
    assert_int_equal(d.n, 2);
    expect_line(&d, "argv[1]: bad placeholder");
    expect_line(&d, "argv[2]: single '}'");

    /* 65 elements; and one element of 1025 bytes */
    {
        size_t pos = (size_t)snprintf(json, sizeof(json), "{\"type\": \"exec\", \"argv\": [\"sh\"");

        for (int i = 0; i < 64; i++)
            pos += (size_t)snprintf(json + pos, sizeof(json) - pos, ", \"x\"");
        snprintf(json + pos, sizeof(json) - pos, "]}");
        assert_int_equal(check(&f, json, &d), OB_ECONFIG);
        expect_line(&d, "argv: too many elements (65, at most 64)");

        pos = (size_t)snprintf(json, sizeof(json), "{\"type\": \"exec\", \"argv\": [\"sh\", \"");
        memset(json + pos, 'a', 1025);
        pos += 1025;
        snprintf(json + pos, sizeof(json) - pos, "\"]}");
        assert_int_equal(check(&f, json, &d), OB_ECONFIG);
        expect_line(&d, "argv[1]: too long (1025 bytes, at most 1024)");
    }

    assert_int_equal(
        check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\"], \"timeout\": \"soon\"}", &d),
        OB_ECONFIG);
    expect_line(&d, "timeout: not a duration");
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\"], \"timeout\": \"0s\"}", &d),
                     OB_ECONFIG);
    expect_line(&d, "timeout:");
    assert_int_equal(
        check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\"], \"cwd\": \"./args.sh\"}", &d),
        OB_ECONFIG);
    expect_line(&d, "cwd: ./args.sh is not a directory");
    assert_int_equal(check(&f,
                           "{\"type\": \"exec\", \"argv\": [\"sh\"], \"env\": {\"OPSBOT_X\": "
                           "\"1\", \"1BAD\": \"x\", \"OK\": {\"a\": 1}}}",
                           &d),
                     OB_ECONFIG);
    assert_int_equal(d.n, 3);
    expect_line(&d, "env.OPSBOT_X: the OPSBOT_ prefix is reserved");
    expect_line(&d, "env: invalid variable name '1BAD'");
    expect_line(&d, "env.OK: must be a string");

    /* no executor (help): fine */
    ob_diag_release(&d);
    f.action.executor = NULL;
    assert_int_equal(ob_exec_check_binding(NULL, &f.action, &d), 0);
    assert_int_equal(d.n, 0);
    /* an action without parameters says so */
    f.action.nparams = 0;
    assert_int_equal(check(&f, "{\"type\": \"exec\", \"argv\": [\"sh\", \"{x}\"]}", &d),
                     OB_ECONFIG);
    expect_line(&d, "unknown placeholder {x} (the action has no parameters)");
    ob_diag_release(&d);
    fx_done(&f);
}

/* With a loaded config: locations are file:line and relative paths (argv[0],
 * cwd) are resolved against the config directory, not the cwd. */
static void test_with_config(void **state)
{
    struct fixture f;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    struct outcome o;
    struct ob_exec *ex = NULL;
    char path[PATH_MAX + 32], want[2 * PATH_MAX + 128];
    const cJSON *acts;
    const char *yaml = "actions:\n"
                       "  - executor:\n"
                       "      type: exec\n"
                       "      argv: [./args.sh, \"{servce}\"]\n"
                       "  - executor:\n"
                       "      type: exec\n"
                       "      argv: [./args.sh, \"{service}\"]\n"
                       "      cwd: .\n"
                       "      timeout: 10\n";

    (void)state;
    fx_init(&f, NULL);
    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/opsbot.yaml", datadir);
    assert_int_equal(ob_config_load_string(&cfg, yaml, path, &d), 0);
    acts = cJSON_GetObjectItemCaseSensitive(ob_config_root(cfg), "actions");
    assert_non_null(acts);

    f.action.executor = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(acts, 0), "executor");
    assert_int_equal(ob_exec_check_binding(cfg, &f.action, &d), OB_ECONFIG);
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want), "%s:4: action 'deploy': executor: argv[1]: unknown placeholder",
             path);
    assert_non_null(strstr(d.lines[0], want));
    ob_diag_release(&d);

    f.action.executor = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(acts, 1), "executor");
    assert_int_equal(ob_exec_check_binding(cfg, &f.action, &d), 0);
    assert_int_equal(d.n, 0);

    /* run it from another cwd: ./args.sh still means the config's one */
    assert_int_equal(chdir("/"), 0);
    assert_int_equal(ob_exec_new(&ex, &f.loop, cfg, NULL), 0);
    fx_param(&f, "service", "checkout");
    memset(&o, 0, sizeof(o));
    assert_int_equal(ob_exec_start(ex, &f.prop, on_done, &o), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(chdir(datadir), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.res.err, 0);
    assert_string_equal(o.output, "argc=1\n[checkout]\n");
    free(o.output);
    ob_exec_free(ex);
    fx_done(&f);
    ob_config_free(cfg);
}

/* ---- the demo fleet ----------------------------------------------------- */

static void fleet_run(struct fixture *f, const char *state_dir, const char *argv_json,
                      struct outcome *o)
{
    char json[PATH_MAX + 1024];

    snprintf(json, sizeof(json),
             "{\"type\": \"exec\", \"argv\": [\"%s\", %s], \"timeout\": \"20s\", "
             "\"env\": {\"FLEET_STATE\": \"%s\", \"FLEET_DELAY\": \"0\"}}",
             fleet, argv_json, state_dir);
    fx_bind(f, json);
    run_one(f, o);
    assert_int_equal(o->res.err, 0);
}

static void test_fleet(void **state)
{
    struct fixture f;
    struct outcome o;
    char dir[] = "/tmp/ob-fleet-XXXXXX";
    char cmd[PATH_MAX + 64];

    (void)state;
    assert_non_null(mkdtemp(dir));
    fx_init(&f, NULL);
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod");

    /* syntax check with sh -n, through the executor as well */
    fx_bind(&f, "{\"type\": \"exec\", \"argv\": [\"sh\", \"-n\", \"{revision}\"]}");
    f.prop.nparams = 0;
    fx_param(&f, "revision", fleet);
    run_one(&f, &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_string_equal(o.output, "");
    free(o.output);
    f.prop.nparams = 0;
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod");

    fleet_run(&f, dir, "\"status\", \"{service}\", \"{env}\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, "replicas:    3\n"));
    assert_non_null(strstr(o.output, "image:       checkout:v1."));
    assert_non_null(strstr(o.output, "restarts:    0\n"));
    assert_non_null(strstr(o.output, "last change: never\n"));
    free(o.output);

    fleet_run(&f, dir, "\"restart\", \"{service}\", \"{env}\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, "restarting checkout in prod: pod 1/3 ... done\n"));
    assert_non_null(strstr(o.output, "restarting checkout in prod: pod 3/3 ... done\n"));
    free(o.output);

    fleet_run(&f, dir, "\"status\", \"{service}\", \"{env}\"", &o);
    assert_non_null(strstr(o.output, "restarts:    1\n"));
    assert_null(strstr(o.output, "last change: never"));
    free(o.output);

    /* rollback to revision 1, then once more is refused with exit 2 */
    fleet_run(&f, dir, "\"rollback\", \"{service}\", \"{env}\", \"1\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    free(o.output);
    fleet_run(&f, dir, "\"rollback\", \"{service}\", \"{env}\"", &o);
    assert_int_equal(o.res.exit_status, 2);
    assert_non_null(strstr(o.output, "below revision 1"));
    free(o.output);

    /* a hostile service name is data: exit 3, nothing created */
    f.prop.nparams = 0;
    fx_param(&f, "service", "../x; touch pwned");
    fx_param(&f, "env", "prod");
    fleet_run(&f, dir, "\"status\", \"{service}\", \"{env}\"", &o);
    assert_int_equal(o.res.exit_status, 3);
    assert_non_null(strstr(o.output, "unknown service '../x; touch pwned' in prod (known: "
                                     "checkout, payments"));
    free(o.output);
    assert_int_equal(access("pwned", F_OK), -1);

    /* logs with a filter that looks like a grep option */
    f.prop.nparams = 0;
    fx_param(&f, "service", "checkout");
    fx_param(&f, "env", "prod");
    fleet_run(&f, dir, "\"logs\", \"{service}\", \"{env}\", \"1h\", \"-v\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, "no log lines of checkout in prod match"));
    free(o.output);
    fleet_run(&f, dir, "\"logs\", \"{service}\", \"{env}\", \"1h\", \"ERROR\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, " ERROR "));
    assert_null(strstr(o.output, " INFO "));
    free(o.output);
    fleet_run(&f, dir, "\"metrics\", \"{service}\", \"{env}\", \"latency_p99_ms\", \"1h\"", &o);
    assert_int_equal(o.res.exit_status, 0);
    assert_non_null(strstr(o.output, "latency_p99_ms of checkout in prod"));
    free(o.output);

    fx_done(&f);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const char *d = getenv("OB_TEST_DATA");
    const char *root = getenv("OB_SOURCE_ROOT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_argv_stays_one_element),
        cmocka_unit_test(test_env_is_clean),
        cmocka_unit_test(test_exit_status_and_stderr),
        cmocka_unit_test(test_timeout_sigterm),
        cmocka_unit_test(test_timeout_sigkill),
        cmocka_unit_test(test_lingering_child),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_spawn_failure),
        cmocka_unit_test(test_concurrency_fifo),
        cmocka_unit_test(test_free_kills_and_silences),
        cmocka_unit_test(test_check_binding),
        cmocka_unit_test(test_with_config),
        cmocka_unit_test(test_fleet),
    };

    if (!root)
        root = "/work/main";
    if (d)
        snprintf(datadir, sizeof(datadir), "%s/exec", d);
    else
        snprintf(datadir, sizeof(datadir), "%s/tests/data/exec", root);
    snprintf(fleet, sizeof(fleet), "%s/deploy/demo/fleet.sh", root);
    if (chdir(datadir) != 0 || !getcwd(datadir, sizeof(datadir))) {
        fprintf(stderr, "cannot enter %s\n", datadir);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
