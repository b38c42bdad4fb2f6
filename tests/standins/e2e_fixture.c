/* The end-to-end fixture of the chat adapter tests: see e2e_fixture.h. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_fixture.h"
#include "ports.h"
#include "opsbot/bot.h"
#include "opsbot/config.h"
#include "opsbot/http.h"

#define LOG_CHUNK (1 << 20) /* a file is read in steps of 1 MiB */
#define LOG_TAIL (64 << 10) /* what log_on_failure shows */

/* The test in progress: the teardown cleans up after a failed assertion. */
static struct e2e *current;

const char *e2e_src_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r ? r : "..";
}

/* ---- the captured log -------------------------------------------------------- */

char *e2e_slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!fp)
        return strdup("");
    do {
        if (cap - len < LOG_CHUNK) {
            cap += LOG_CHUNK;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
    } while (n > 0);
    buf[len] = '\0';
    fclose(fp);
    return buf;
}

size_t e2e_count_in(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void capture_start(struct e2e *e)
{
    int fd;

    snprintf(e->log, sizeof(e->log), "%s/log", e->dir);
    fflush(stderr);
    e->saved_err = dup(2);
    fd = open(e->log, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
    e->capturing = true;
}

/* failed: the test ended by the teardown. */
static void capture_stop(struct e2e *e, bool failed)
{
    char *text;
    size_t len;

    if (!e->capturing)
        return;
    e->capturing = false;
    fflush(stderr);
    dup2(e->saved_err, 2);
    close(e->saved_err);
    if (e->hooks->log_on_failure && !failed)
        return;
    text = e2e_slurp(e->log);
    len = strlen(text);
    fprintf(stderr, "---- opsbot log ----\n%s--------------------\n",
            e->hooks->log_on_failure && len > LOG_TAIL ? text + len - LOG_TAIL : text);
    free(text);
}

size_t e2e_log_count(struct e2e *e, const char *needle)
{
    char *text;
    size_t n;

    fflush(stderr);
    text = e2e_slurp(e->log);
    n = e2e_count_in(text, needle);
    free(text);
    return n;
}

bool e2e_log_has(struct e2e *e, const char *needle)
{
    return e2e_log_count(e, needle) > 0;
}

/* ---- start and end ----------------------------------------------------------- */

void e2e_begin(struct e2e *e, const struct e2e_hooks *hooks)
{
    memset(e, 0, sizeof(*e));
    e->hooks = hooks;
    current = e;
    snprintf(e->dir, sizeof(e->dir), "/tmp/ob-%s-XXXXXX", hooks->name);
    assert_non_null(mkdtemp(e->dir));
    setenv("OPSBOT_STATE_DIR", e->dir, 1);
    setenv("FLEET_DELAY", "0", 1);
    capture_start(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    standin_waiter_init(&e->waiter, &e->loop, e);
    e->running = true;
}

void e2e_start_bot(struct e2e *e, const char *config)
{
    struct ob_bundle *b = NULL;
    struct ob_diag d;
    char path[512];
    int rc;

    snprintf(path, sizeof(path), "%s/tests/data/%s/%s", e2e_src_root(), e->hooks->name, config);
    ob_diag_init(&d);
    rc = ob_bundle_load(&b, path, &d);
    if (rc)
        ob_diag_print(&d, stderr);
    ob_diag_release(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(ob_bot_new(&e->bot, &e->loop, b, path), 0);
    assert_int_equal(ob_bot_start(e->bot), 0);
}

/* Stops and frees the bot and the stand-in, then closes the loop: 0 when
 * every handle was closed. */
static int stop_loop(struct e2e *e)
{
    if (e->http)
        ob_http_free(e->http);
    e->http = NULL;
    if (e->bot) {
        ob_bot_shutdown(e->bot);
        if (e->hooks->drain_inflight)
            e2e_wait_idle(e, 5000);
        e2e_wait(e, NULL, NULL, 50);
        ob_bot_free(e->bot);
        e->bot = NULL;
    }
    e->hooks->free_standin(e);
    uv_close((uv_handle_t *)&e->waiter.timer, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&e->loop);
}

void e2e_remove_dir(const char *dir)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd))
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void end(struct e2e *e, bool failed)
{
    int rc = 0;

    if (e->running) {
        e->running = false;
        rc = stop_loop(e);
    }
    current = NULL;
    capture_stop(e, failed);
    e2e_remove_dir(e->dir);
    for (const char *const *v = e->hooks->env; v && *v; v++)
        unsetenv(*v);
    assert_int_equal(rc, 0); /* every handle was closed */
}

void e2e_end(struct e2e *e)
{
    end(e, false);
}

int e2e_teardown(void **state)
{
    (void)state;
    if (current)
        end(current, true);
    return 0;
}

/* ---- waiting ------------------------------------------------------------------- */

struct done_call {
    struct e2e *e;
    bool (*done)(struct e2e *, void *);
    void *arg;
};

static bool done_call(void *ctx)
{
    struct done_call *c = ctx;

    return c->done(c->e, c->arg);
}

bool e2e_wait(struct e2e *e, bool (*done)(struct e2e *, void *), void *arg, int64_t timeout_ms)
{
    struct done_call c = {e, done, arg};

    return standin_waiter_run(&e->waiter, done ? done_call : NULL, &c, timeout_ms);
}

static bool log_done(struct e2e *e, void *needle)
{
    return e2e_log_has(e, needle);
}

bool e2e_wait_log(struct e2e *e, const char *needle, int64_t timeout_ms)
{
    return e2e_wait(e, log_done, (void *)needle, timeout_ms);
}

static bool exited_done(struct e2e *e, void *arg)
{
    (void)arg;
    return ob_bot_exit_status(e->bot) != 0;
}

bool e2e_wait_exit(struct e2e *e, int64_t timeout_ms)
{
    return e2e_wait(e, exited_done, NULL, timeout_ms);
}

static bool idle_done(struct e2e *e, void *arg)
{
    (void)arg;
    return ob_bot_inflight(e->bot) == 0;
}

bool e2e_wait_idle(struct e2e *e, int64_t timeout_ms)
{
    return e2e_wait(e, idle_done, NULL, timeout_ms);
}

/* ---- the test's own requests ------------------------------------------------------- */

static void http_done(void *data, const struct ob_http_resp *resp)
{
    struct e2e_http_res *r = data;

    r->done = true;
    r->status = resp->status;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)resp->body_len, resp->body ? resp->body : "");
}

static bool answered(struct e2e *e, void *arg)
{
    (void)e;
    return ((struct e2e_http_res *)arg)->done;
}

long e2e_http_post(struct e2e *e, const char *url, const char *const *headers, const char *body,
                   int64_t timeout_ms, struct e2e_http_res *r)
{
    struct ob_http_req req = {0};

    memset(r, 0, sizeof(*r));
    if (!e->http)
        assert_int_equal(ob_http_new(&e->http, &e->loop), 0);
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = timeout_ms;
    assert_int_equal(ob_http_request(e->http, &req, http_done, r, NULL), 0);
    assert_true(e2e_wait(e, answered, r, timeout_ms + 1000));
    return r->status;
}

/* ---- small things ------------------------------------------------------------------ */

int e2e_free_port(void)
{
    int port = standin_free_port();

    assert_true(port > 0);
    return port;
}

bool e2e_diag_has(const struct ob_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->lines[i] && strstr(d->lines[i], needle))
            return true;
    return false;
}
