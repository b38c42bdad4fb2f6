/* The real Prometheus for tests (see prom_helper.h). */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "opsbot/http.h"
#include "ports.h"
#include "prom_helper.h"

static pid_t g_pid;
static bool g_hooks;

static void kill_atexit(void)
{
    if (g_pid > 0)
        kill(g_pid, SIGKILL);
}

static void on_signal(int sig)
{
    if (g_pid > 0)
        kill(g_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

bool ob_prom_available(void)
{
    return access("/usr/bin/prometheus", X_OK) == 0 && access("/usr/bin/promtool", X_OK) == 0;
}

static int free_port(void)
{
    int port = standin_free_port();

    return port > 0 ? port : 0;
}

struct once {
    bool got, ok;
    char *body;
};

static void on_resp(void *data, const struct ob_http_resp *resp)
{
    struct once *o = data;

    o->got = true;
    o->ok = resp->err == 0 && resp->status == 200;
    o->body = resp->body ? strdup(resp->body) : NULL;
}

static bool get_once(uv_loop_t *loop, struct ob_http *http, const char *url, char **body)
{
    struct once o = {0};
    struct ob_http_req r = {.method = "GET", .url = url, .timeout_ms = 2000};

    if (ob_http_request(http, &r, on_resp, &o, NULL))
        return false;
    while (!o.got)
        uv_run(loop, UV_RUN_ONCE);
    if (body)
        *body = o.body;
    else
        free(o.body);
    return o.ok;
}

static void tick(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void nap(uv_loop_t *loop, int64_t ms)
{
    bool done = false;
    uv_timer_t t;

    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, tick, (uint64_t)ms, 0);
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    struct ob_prom *p = proc->data;

    (void)status;
    (void)sig;
    p->exited = true;
    g_pid = 0;
    uv_close((uv_handle_t *)proc, NULL);
}

/* Runs argv to completion (stdout+stderr to logfd); its exit status or -1. */
static int run_sync(uv_loop_t *loop, char **argv, int logfd)
{
    struct ob_prom tmp = {0};
    uv_process_options_t po = {0};
    uv_stdio_container_t stdio[3];

    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = logfd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = logfd;
    po.file = argv[0];
    po.args = argv;
    po.exit_cb = on_exit_cb;
    po.stdio_count = 3;
    po.stdio = stdio;
    tmp.proc.data = &tmp;
    if (uv_spawn(loop, &tmp.proc, &po)) {
        uv_close((uv_handle_t *)&tmp.proc, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        return -1;
    }
    while (!tmp.exited)
        uv_run(loop, UV_RUN_ONCE);
    uv_run(loop, UV_RUN_NOWAIT);
    return 0;
}

const char *ob_prom_start(struct ob_prom *p, uv_loop_t *loop, struct ob_http *http, const char *dir,
                          const char *openmetrics, const char *ready_query)
{
    uv_process_options_t po = {0};
    uv_stdio_container_t stdio[3];
    char om[512], data[512], cfg[512], logp[512], cfgarg[540], dataarg[540], web[64], url[1024];
    char *args[8], *q;
    FILE *f;
    int logfd;
    uint64_t deadline;

    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    mkdir(dir, 0700);
    snprintf(om, sizeof(om), "%s/data.om", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    snprintf(logp, sizeof(logp), "%s/prometheus.log", dir);
    f = fopen(om, "w");
    if (!f)
        return "cannot write the OpenMetrics file";
    fputs(openmetrics, f);
    fclose(f);
    f = fopen(cfg, "w");
    if (!f)
        return "cannot write prometheus.yml";
    fputs("global: {scrape_interval: 15s, evaluation_interval: 15s}\n", f);
    fclose(f);
    logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logfd < 0)
        return "cannot write prometheus.log";
    args[0] = (char *)"/usr/bin/promtool";
    args[1] = (char *)"tsdb";
    args[2] = (char *)"create-blocks-from";
    args[3] = (char *)"--quiet";
    args[4] = (char *)"openmetrics";
    args[5] = om;
    args[6] = data;
    args[7] = NULL;
    if (run_sync(loop, args, logfd)) {
        close(logfd);
        return "cannot run promtool";
    }
    if (!g_hooks) {
        g_hooks = true;
        atexit(kill_atexit);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGABRT, on_signal);
        signal(SIGSEGV, on_signal);
    }
    p->port = free_port();
    snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", cfg);
    snprintf(dataarg, sizeof(dataarg), "--storage.tsdb.path=%s", data);
    snprintf(web, sizeof(web), "--web.listen-address=127.0.0.1:%d", p->port);
    args[0] = (char *)"/usr/bin/prometheus";
    args[1] = cfgarg;
    args[2] = dataarg;
    args[3] = web;
    args[4] = (char *)"--log.level=warn";
    args[5] = (char *)"--storage.tsdb.retention.time=30d";
    args[6] = NULL;
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = logfd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = logfd;
    po.file = args[0];
    po.args = args;
    po.exit_cb = on_exit_cb;
    po.stdio_count = 3;
    po.stdio = stdio;
    p->proc.data = p;
    if (uv_spawn(loop, &p->proc, &po)) {
        close(logfd);
        uv_close((uv_handle_t *)&p->proc, NULL);
        return "cannot start /usr/bin/prometheus";
    }
    close(logfd);
    p->running = true;
    g_pid = p->proc.pid;
    deadline = uv_hrtime() + 20ULL * 1000000000ULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", p->port);
    while (!get_once(loop, http, url, NULL)) {
        if (p->exited || uv_hrtime() > deadline)
            return "prometheus did not become ready (see prometheus.log)";
        nap(loop, 100);
    }
    q = ob_http_escape(ready_query);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s", p->port, q ? q : "");
    free(q);
    for (;;) {
        char *body = NULL;
        cJSON *j;
        bool some;

        get_once(loop, http, url, &body);
        j = cJSON_Parse(body ? body : "");
        some =
            cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "result")) > 0;
        cJSON_Delete(j);
        free(body);
        if (some)
            return NULL;
        if (p->exited || uv_hrtime() > deadline)
            return "prometheus has no data for the ready query";
        nap(loop, 200);
    }
}

void ob_prom_stop(struct ob_prom *p, uv_loop_t *loop)
{
    uint64_t deadline;

    if (!p->running || p->exited)
        return;
    deadline = uv_hrtime() + 5ULL * 1000000000ULL;
    uv_process_kill(&p->proc, SIGTERM);
    while (!p->exited && uv_hrtime() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    if (!p->exited) {
        uv_process_kill(&p->proc, SIGKILL);
        while (!p->exited)
            uv_run(loop, UV_RUN_ONCE);
    }
}
