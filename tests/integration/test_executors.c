/* The network executors end to end, over loopback:
 *   kubernetes  against the API stand-in (tests/standins/kube_standin.c):
 *               restart, scale, rollback, status, 403, 404, 409 retries, a
 *               rollout that fails, one that never ends (timeout), dry run;
 *   loki        against the Loki stand-in: order, caps, redaction, hostile
 *               filters, Loki's 400, range cap;
 *   http        against a recorder: URL, header and JSON body escaping,
 *               expected status, excerpt, dry run;
 *   prometheus  the real Debian Prometheus scraping a target served here,
 *               driven through the whole chat pipeline (skipped when
 *               /usr/bin/prometheus is missing).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "kube_standin.h"
#include "loki_standin.h"
#include "opsbot/bot.h"
#include "opsbot/err.h"
#include "opsbot/event.h"
#include "opsbot/executor.h"
#include "opsbot/http.h"
#include "opsbot/intent.h"
#include "opsbot/log.h"
#include "opsbot/redact.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "ports.h"

#define KUBE_TOKEN "kube-t0ken-for-tests-0123456789"
#define HOOK_TOKEN "s3cret-hook-token-abcdef"

static const char *src_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    if (dir && *dir)
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *dir, const char *name, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

struct prom {
    uv_process_t proc;
    bool running, exited;
    int port, target_port;
    uint64_t t0;
    struct ob_http_server *target;
    char dir[320];
};

static struct prom *g_prom;
static pid_t g_prom_pid;

/* ---- fixture ------------------------------------------------------------------- */

struct fx {
    uv_loop_t loop;
    struct ob_lws *lws;
    struct ob_http *http;
    struct ob_exec *ex;
    struct ob_config *cfg;
    struct ob_catalog *cat;
    struct ob_redact *red;
    struct ob_kube_standin *kube;
    struct ob_loki_standin *loki;
    struct ob_http_server *rec;
    char dir[256];
    /* the job's result */
    bool done;
    int calls;
    char *output;
    char status[128];
    int64_t exit_status;
    bool timed_out, dry_run;
    int64_t duration_ms;
    char progress[32][300];
    size_t nprogress;
    /* the recorder */
    size_t nrec;
    char rec_method[16], rec_path[512], rec_query[512], rec_auth[256], rec_ctype[128];
    char *rec_body;
    int rec_reply_status;
    const char *rec_reply_body;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    ob_log_set_level(OB_LOG_ERROR);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(ob_lws_new(&f->lws, &f->loop), 0);
    assert_int_equal(ob_http_new(&f->http, &f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ob-execs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    setenv("OB_TEST_KUBE_TOKEN", KUBE_TOKEN, 1);
    setenv("OB_TEST_HOOK_TOKEN", HOOK_TOKEN, 1);
    f->rec_reply_status = 200;
    f->rec_reply_body = "{\"ok\":true}";
    *state = f;
    return 0;
}

static void prom_stop(struct fx *f, struct prom *pr);

static int teardown(void **state)
{
    struct fx *f = *state;

    if (g_prom) { /* a failed Prometheus test: the server must not outlive it */
        struct prom *pr = g_prom;

        prom_stop(f, pr);
        free(pr);
    }

    ob_exec_free(f->ex);
    ob_http_free(f->http);
    ob_kube_standin_free(f->kube);
    ob_loki_standin_free(f->loki);
    if (f->rec)
        ob_http_server_free(f->rec);
    ob_lws_free(f->lws);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ob_catalog_free(f->cat);
    ob_config_free(f->cfg);
    ob_redact_free(f->red);
    rm_rf(f->dir);
    free(f->output);
    free(f->rec_body);
    free(f);
    return 0;
}

/* Loads dir/main.yaml, checks every binding and the targets, makes the
 * executor. */
static void load(struct fx *f)
{
    struct ob_diag d;
    char path[512];
    int rc = 0;

    ob_diag_init(&d);
    snprintf(path, sizeof(path), "%s/main.yaml", f->dir);
    rc = ob_config_load(&f->cfg, path, &d);
    if (!rc)
        rc = ob_catalog_load(&f->cat, f->cfg, &d);
    for (size_t i = 0; !rc && i < f->cat->n; i++)
        rc = ob_exec_check_binding(f->cfg, &f->cat->actions[i], &d) ? OB_ECONFIG : 0;
    if (!rc)
        rc = ob_targets_check(f->cfg, &d);
    if (!rc)
        rc = ob_redact_new(&f->red, f->cfg, NULL, &d);
    if (rc) {
        ob_diag_print(&d, stderr);
        fail();
    }
    ob_diag_release(&d);
    assert_int_equal(ob_exec_new(&f->ex, &f->loop, f->cfg, NULL), 0);
    ob_exec_set_http(f->ex, f->http);
}

static void on_done(void *data, const struct ob_exec_result *res)
{
    struct fx *f = data;

    f->calls++;
    f->done = true;
    free(f->output);
    f->output = strdup(res->output ? res->output : "");
    ob_strlcpy(f->status, res->status, sizeof(f->status));
    f->exit_status = res->exit_status;
    f->timed_out = res->timed_out;
    f->dry_run = res->dry_run;
    f->duration_ms = res->duration_ms;
}

static void on_progress(void *data, const char *line)
{
    struct fx *f = data;

    assert_false(f->done); /* never after the result */
    if (f->nprogress < 32)
        ob_strlcpy(f->progress[f->nprogress++], line, sizeof(f->progress[0]));
}

static void guard_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag or ms passed. */
static void run_until(uv_loop_t *loop, bool *flag, int64_t ms)
{
    uv_timer_t guard;
    bool expired = false;

    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, guard_cb, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(expired);
}

static void start_prop(struct fx *f, const struct ob_proposal *p)
{
    struct ob_exec_start_opts o = {.cfg = f->cfg, .red = f->red, .on_progress = on_progress};

    f->done = false;
    f->nprogress = 0;
    assert_int_equal(ob_exec_start_ex(f->ex, p, &o, on_done, f), 0);
    assert_false(f->done); /* never from inside ob_exec_start */
    run_until(&f->loop, &f->done, 20000);
    assert_int_equal(f->calls, 1);
    f->calls = 0;
}

/* Parses "!action …" with the catalog and runs it. */
static void run_text(struct fx *f, const char *text)
{
    struct ob_parse_result res;

    ob_intent_parse(f->cat, text, &res);
    if (res.status != OB_PARSE_OK)
        print_message("parse of '%s': %s\n", text, res.message);
    assert_int_equal(res.status, OB_PARSE_OK);
    start_prop(f, &res.proposals[0]);
}

/* A proposal built by hand (values the parser would refuse, on purpose). */
static void prop_make(struct fx *f, struct ob_proposal *p, const char *action, ...)
{
    va_list ap;
    const char *k;

    memset(p, 0, sizeof(*p));
    p->action = ob_catalog_find(f->cat, action);
    assert_non_null(p->action);
    va_start(ap, action);
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);

        ob_strlcpy(p->params[p->nparams].name, k, sizeof(p->params[0].name));
        ob_strlcpy(p->params[p->nparams].value, v, sizeof(p->params[0].value));
        p->nparams++;
    }
    va_end(ap);
}

static void has(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle)) {
        print_message("expected \"%s\" in:\n%s\n", needle, hay ? hay : "(null)");
        fail();
    }
}

static void hasnt(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle)) {
        print_message("did not expect \"%s\" in:\n%s\n", needle, hay);
        fail();
    }
}

/* ---- Kubernetes ----------------------------------------------------------------- */

static void kube_setup(struct fx *f, const char *token)
{
    assert_int_equal(ob_kube_standin_new(&f->kube, f->lws, &f->loop, KUBE_TOKEN), 0);
    ob_kube_standin_add(f->kube, "prod", "checkout", 3, 3);
    ob_kube_standin_add(f->kube, "prod", "payments", 2, 1);
    ob_kube_standin_mode(f->kube, OB_KUBE_ROLLOUT_OK, 10);
    write_file(f->dir, "extra.yaml",
               "actions:\n"
               "  - name: restart_quick\n"
               "    description: restart with a short timeout\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: enum, values: [prod, staging, dev], required: true}\n"
               "    executor: {type: kubernetes, operation: restart, poll: 20ms, timeout: 400ms}\n"
               "  - name: restart_dry\n"
               "    description: restart, dry run\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: enum, values: [prod, staging, dev], required: true}\n"
               "    executor: {type: kubernetes, operation: restart, dry_run: true}\n");
    write_file(f->dir, "main.yaml",
               "actions:\n"
               "  include: [%s/intents/*.yaml, extra.yaml]\n"
               "  bind:\n"
               "    restart: {type: kubernetes, operation: restart, poll: 20ms, timeout: 5s}\n"
               "    scale: {type: kubernetes, operation: scale, replicas: \"{replicas}\", poll: "
               "20ms, timeout: 5s}\n"
               "    rollback: {type: kubernetes, operation: rollback, revision: \"{revision}\", "
               "poll: 20ms, timeout: 5s}\n"
               "targets:\n"
               "  clusters:\n"
               "    test: {server: \"http://127.0.0.1:%d/\", token: \"%s\"}\n"
               "  envs:\n"
               "    prod: {cluster: test, namespace: prod}\n"
               "    staging: {cluster: test, namespace: staging}\n"
               "    dev: {cluster: test, namespace: dev}\n"
               "  services:\n"
               "    pay: {deployment: payments}\n",
               src_root(), ob_kube_standin_port(f->kube), token);
    load(f);
}

static const char *dep_str(const struct fx *f, const char *name, const char *a, const char *b,
                           const char *c, const char *d)
{
    const cJSON *o = ob_kube_standin_deployment(f->kube, "prod", name);
    const char *path[] = {a, b, c, d};

    for (int i = 0; i < 4 && path[i] && o; i++)
        o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
    return cJSON_IsString(o) ? o->valuestring : NULL;
}

static const char *dep_image(const struct fx *f, const char *name)
{
    const cJSON *o = ob_kube_standin_deployment(f->kube, "prod", name);

    o = cJSON_GetObjectItemCaseSensitive(o, "spec");
    o = cJSON_GetObjectItemCaseSensitive(o, "template");
    o = cJSON_GetObjectItemCaseSensitive(o, "spec");
    o = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "containers"), 0);
    o = cJSON_GetObjectItemCaseSensitive(o, "image");
    return cJSON_IsString(o) ? o->valuestring : "";
}

static void test_kube_status(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    run_text(f, "!status checkout env=prod");
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(f->status, "healthy");
    has(f->output, "deployment checkout in namespace prod (cluster test)");
    has(f->output, "replicas: 3 desired, 3 updated, 3 ready, 3 available");
    has(f->output, "image: registry.example/checkout:1.3");
    has(f->output, "revision: 3");
    has(f->output, "conditions: Available=True (MinimumReplicasAvailable), Progressing=True "
                   "(NewReplicaSetAvailable)");
    has(f->output, "rollout: complete");

    /* 404: a service that is not there */
    run_text(f, "!status nope env=prod");
    assert_int_equal(f->exit_status, 1);
    has(f->output, "no deployment nope in namespace prod");
}

static void test_kube_restart(void **state)
{
    struct fx *f = *state;
    bool conflict_seen = false;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    ob_kube_standin_conflicts(f->kube, 2); /* two stale writes before it goes through */
    run_text(f, "restart checkout in prod");
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(f->status, "rollout complete");
    has(f->output, "restarted deployment checkout in namespace prod (cluster test) at 20");
    has(f->output, "rollout complete: 3 of 3 updated, 3 available (revision 4)");
    assert_int_equal(ob_kube_standin_patches(f->kube), 3);
    assert_string_equal(ob_kube_standin_last_patch_type(f->kube),
                        "application/strategic-merge-patch+json");
    {
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(
                        ob_kube_standin_deployment(f->kube, "prod", "checkout"), "spec"),
                    "template"),
                "metadata"),
            "annotations");
        const cJSON *at =
            cJSON_GetObjectItemCaseSensitive(ann, "kubectl.kubernetes.io/restartedAt");

        assert_true(cJSON_IsString(at));
        assert_int_equal(strlen(at->valuestring), 20); /* 2026-11-27T17:04:07Z */
        assert_int_equal(at->valuestring[19], 'Z');
    }
    assert_string_equal(dep_str(f, "checkout", "metadata", "annotations",
                                "deployment.kubernetes.io/revision", NULL),
                        "4");
    /* progress: the conflicts and the rollout steps, one message per change */
    assert_true(f->nprogress >= 3);
    for (size_t i = 0; i < f->nprogress; i++) {
        conflict_seen = conflict_seen || strstr(f->progress[i], "conflict");
        if (i)
            assert_string_not_equal(f->progress[i], f->progress[i - 1]);
    }
    assert_true(conflict_seen);
    has(f->progress[f->nprogress - 1], "restart checkout: 3 of 3 updated, 3 available");

    /* three conflicts in a row: it gives up, clearly */
    ob_kube_standin_conflicts(f->kube, 3);
    run_text(f, "restart checkout in prod");
    assert_int_equal(f->exit_status, 1);
    assert_string_equal(f->status, "conflict");
    has(f->output, "gave up after 3 conflicting updates of deployment checkout (Operation cannot "
                   "be fulfilled on deployments.apps \"checkout\"");
}

static void test_kube_scale(void **state)
{
    struct fx *f = *state;
    const cJSON *spec;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    run_text(f, "!scale pay env=prod replicas=4"); /* pay -> deployment payments */
    assert_int_equal(f->exit_status, 0);
    has(f->output, "scaled deployment payments in namespace prod (cluster test) to 4 replicas");
    has(f->output, "rollout complete: 4 of 4 updated, 4 available");
    assert_string_equal(ob_kube_standin_last_patch_type(f->kube), "application/merge-patch+json");
    spec = cJSON_GetObjectItemCaseSensitive(ob_kube_standin_deployment(f->kube, "prod", "payments"),
                                            "spec");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(spec, "replicas")->valueint, 4);
}

static void test_kube_rollback(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    assert_string_equal(dep_image(f, "checkout"), "registry.example/checkout:1.3");
    run_text(f, "roll back checkout in prod");
    assert_int_equal(f->exit_status, 0);
    has(f->output, "back to the template of revision 2");
    has(f->output, "rollout complete");
    assert_string_equal(dep_image(f, "checkout"), "registry.example/checkout:1.2");
    /* like kubectl: the old ReplicaSet becomes the newest revision */
    assert_string_equal(dep_str(f, "checkout", "metadata", "annotations",
                                "deployment.kubernetes.io/revision", NULL),
                        "4");
    assert_string_equal(ob_kube_standin_last_patch_type(f->kube), "application/json-patch+json");
    {
        /* no pod-template-hash leaked into the Deployment's template */
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(
                        ob_kube_standin_deployment(f->kube, "prod", "checkout"), "spec"),
                    "template"),
                "metadata"),
            "labels");

        assert_null(cJSON_GetObjectItemCaseSensitive(labels, "pod-template-hash"));
    }
    /* a named revision */
    run_text(f, "!rollback checkout env=prod revision=1");
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(dep_image(f, "checkout"), "registry.example/checkout:1.1");
    /* one that does not exist */
    run_text(f, "!rollback checkout env=prod revision=9");
    assert_int_equal(f->exit_status, 1);
    has(f->output, "deployment checkout has no revision 9 (revisions: ");
    /* nothing before the only revision */
    run_text(f, "!rollback pay env=prod");
    assert_int_equal(f->exit_status, 1);
    has(f->output, "deployment payments has no revision before 1 to roll back to");
}

static void test_kube_forbidden(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    ob_kube_standin_forbid(f->kube, "patch", "prod");
    run_text(f, "restart checkout in prod");
    assert_int_equal(f->exit_status, 1);
    assert_string_equal(f->status, "Forbidden");
    has(f->output,
        "the service account may not patch deployments in prod (Forbidden: deployments.apps "
        "\"checkout\" is forbidden: User \"system:serviceaccount:ops:opsbot\" cannot patch "
        "resource \"deployments\" in API group \"apps\" in the namespace \"prod\")");
    ob_kube_standin_forbid(f->kube, "list", "prod");
    run_text(f, "roll back checkout in prod");
    has(f->output, "the service account may not list replicasets in prod (Forbidden:");
}

static void test_kube_bad_token(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "not-the-token");
    run_text(f, "!status checkout env=prod");
    assert_int_equal(f->exit_status, 1);
    has(f->output, "the API server of cluster test rejected the credentials (Unauthorized");
}

static void test_kube_rollout_fails(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    ob_kube_standin_mode(f->kube, OB_KUBE_ROLLOUT_STUCK, 10);
    run_text(f, "restart checkout in prod");
    assert_int_equal(f->exit_status, 1);
    assert_false(f->timed_out);
    assert_string_equal(f->status, "rollout failed");
    has(f->output, "rollout failed: ProgressDeadlineExceeded (ReplicaSet has timed out "
                   "progressing.); 1 of 3 updated, 2 available");
}

static void test_kube_rollout_timeout(void **state)
{
    struct fx *f = *state;

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    ob_kube_standin_mode(f->kube, OB_KUBE_ROLLOUT_SLOW, 10);
    run_text(f, "!restart_quick checkout env=prod");
    assert_int_equal(f->exit_status, 1);
    assert_true(f->timed_out);
    assert_string_equal(f->status, "timed out after 400ms");
    /* where it stood, when a status read came back before the deadline */
    has(f->output, "the rollout of checkout is not complete");
    has(f->output, "It goes on in the cluster");
    assert_true(f->duration_ms >= 350 && f->duration_ms < 2000);
}

static void test_kube_dry_run(void **state)
{
    struct fx *f = *state;
    char want[256];

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    run_text(f, "!restart_dry checkout env=prod");
    assert_int_equal(ob_kube_standin_requests(f->kube), 0);
    assert_int_equal(f->exit_status, 0);
    assert_true(f->dry_run);
    snprintf(want, sizeof(want),
             "PATCH http://127.0.0.1:%d/apis/apps/v1/namespaces/prod/deployments/checkout",
             ob_kube_standin_port(f->kube));
    has(f->output, want);
    has(f->output, "Authorization: Bearer ****");
    has(f->output, "Content-Type: application/strategic-merge-patch+json");
    has(f->output, "kubectl.kubernetes.io/restartedAt");
    hasnt(f->output, KUBE_TOKEN);

    /* exec.dry_run: every network binding shows and sends nothing */
    {
        struct ob_exec_opts eo = {.dry_run = true};

        ob_exec_free(f->ex);
        assert_int_equal(ob_exec_new(&f->ex, &f->loop, f->cfg, &eo), 0);
        ob_exec_set_http(f->ex, f->http);
    }
    run_text(f, "!scale checkout env=prod replicas=7");
    assert_true(f->dry_run);
    has(f->output, "/deployments/checkout/scale");
    has(f->output, "\"replicas\":7");
    run_text(f, "roll back checkout in prod");
    has(f->output, "the template of the previous revision");
    assert_int_equal(ob_kube_standin_requests(f->kube), 0);
}

/* The executor goes away in the middle of a rollout: no callback, nothing
 * left behind once the loop drained. */
static void test_kube_free_midway(void **state)
{
    struct fx *f = *state;
    struct ob_parse_result res;
    struct ob_exec_start_opts o = {0};

    kube_setup(f, "${OB_TEST_KUBE_TOKEN}");
    ob_kube_standin_mode(f->kube, OB_KUBE_ROLLOUT_SLOW, 10);
    o.cfg = f->cfg;
    ob_intent_parse(f->cat, "restart checkout in prod", &res);
    assert_int_equal(res.status, OB_PARSE_OK);
    assert_int_equal(ob_exec_start_ex(f->ex, &res.proposals[0], &o, on_done, f), 0);
    assert_int_equal(ob_exec_active(f->ex), 1);
    {
        uv_timer_t t;
        bool fired = false;

        uv_timer_init(&f->loop, &t);
        t.data = &fired;
        uv_timer_start(&t, guard_cb, 150, 0);
        while (!fired)
            uv_run(&f->loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&t, NULL);
    }
    assert_true(ob_kube_standin_patches(f->kube) >= 1); /* it was following the rollout */
    ob_exec_free(f->ex);
    f->ex = NULL;
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0); /* the teardown checks that every handle closed */
}

/* Credentials from a kubeconfig (context, token, *-data written to a private
 * 0600 file) and from an in-cluster service account directory. */
static void test_kube_credentials(void **state)
{
    struct fx *f = *state;
    char want[512], sa[300];
    const char *p, *e;
    struct stat st;
    char blob[400];

    assert_int_equal(ob_kube_standin_new(&f->kube, f->lws, &f->loop, KUBE_TOKEN), 0);
    ob_kube_standin_add(f->kube, "team", "checkout", 2, 2);
    snprintf(sa, sizeof(sa), "%s/sa", f->dir);
    mkdir(sa, 0700);
    write_file(sa, "token", "%s\n", KUBE_TOKEN);
    write_file(sa, "ca.crt", "not really a certificate\n");
    write_file(sa, "namespace", "team\n");
    /* "-----BEGIN CERTIFICATE-----\n" in base64 */
    write_file(f->dir, "kube.yaml",
               "apiVersion: v1\n"
               "kind: Config\n"
               "current-context: other\n"
               "clusters:\n"
               "  - name: standin\n"
               "    cluster: {server: \"http://127.0.0.1:%d\"}\n"
               "contexts:\n"
               "  - name: test\n"
               "    context: {cluster: standin, user: bot, namespace: team}\n"
               "users:\n"
               "  - name: bot\n"
               "    user: {token: \"%s\", client-certificate-data: "
               "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==, client-key-data: "
               "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==}\n",
               ob_kube_standin_port(f->kube), KUBE_TOKEN);
    write_file(f->dir, "main.yaml",
               "actions:\n"
               "  include: [%s/intents/status.yaml, %s/intents/restart.yaml]\n"
               "  bind:\n"
               "    restart: {type: kubernetes, operation: restart, dry_run: true}\n"
               "targets:\n"
               "  clusters:\n"
               "    kc: {kubeconfig: kube.yaml, context: test}\n"
               "    pod: {in_cluster: true, sa_dir: sa}\n"
               "  envs:\n"
               "    prod: {cluster: kc}\n"
               "    staging: {cluster: pod}\n"
               "    dev: {cluster: kc, namespace: team}\n",
               src_root(), src_root());
    load(f);
    /* the kubeconfig's context: namespace, server and token */
    run_text(f, "!status checkout env=prod");
    assert_int_equal(f->exit_status, 0);
    has(f->output, "deployment checkout in namespace team (cluster kc)");
    /* the client certificate went to a private file */
    run_text(f, "!restart checkout env=dev");
    p = strstr(f->output, "(TLS client certificate ");
    assert_non_null(p);
    p += strlen("(TLS client certificate ");
    e = strchr(p, ')');
    assert_non_null(e);
    snprintf(blob, sizeof(blob), "%.*s", (int)(e - p), p);
    assert_int_equal(stat(blob, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    *strrchr(blob, '/') = '\0';
    assert_int_equal(stat(blob, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* in-cluster: https to KUBERNETES_SERVICE_HOST, the pod's token, CA and namespace */
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    run_text(f, "!restart checkout env=staging");
    assert_int_equal(ob_kube_standin_requests(f->kube), 1); /* only the status above */
    has(f->output, "PATCH https://10.96.0.1:443/apis/apps/v1/namespaces/team/deployments/checkout");
    snprintf(want, sizeof(want), "(TLS CA %s/sa/ca.crt)", f->dir);
    has(f->output, want);
    has(f->output, "Authorization: Bearer ****");
    unsetenv("KUBERNETES_SERVICE_HOST");
    run_text(f, "!restart checkout env=staging");
    assert_int_equal(f->exit_status, 1);
    has(f->output, "KUBERNETES_SERVICE_HOST is not set");
    /* the private directory goes with the executor */
    ob_exec_free(f->ex);
    f->ex = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_not_equal(stat(blob, &st), 0);
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* ---- Loki ------------------------------------------------------------------------ */

static void loki_setup(struct fx *f)
{
    int64_t now = ob_now_ms() * 1000000LL, s = 1000000000LL;
    int port;

    assert_int_equal(ob_loki_standin_new(&f->loki, f->lws, "team-a"), 0);
    port = ob_loki_standin_port(f->loki);
    for (int i = 1; i <= 12; i++) {
        char line[128];

        snprintf(line, sizeof(line), "request %02d handled", i);
        ob_loki_standin_push(f->loki, "namespace=prod,app=checkout,pod=checkout-1",
                             now - (int64_t)(40 - i) * s, line);
    }
    ob_loki_standin_push(f->loki, "namespace=prod,app=checkout,pod=checkout-2", now - 5 * s,
                         "ERROR db password=hunter2 rejected");
    ob_loki_standin_push(f->loki, "namespace=prod,app=checkout,pod=checkout-2", now - 4 * s,
                         "say \"hi\" | x{} \\ now");
    ob_loki_standin_push(f->loki, "namespace=prod,app=checkout,pod=checkout-2", now - 3 * s,
                         "say hi | x{} \\ now");
    ob_loki_standin_push(f->loki, "namespace=prod,app=payments,pod=payments-1", now - 2 * s,
                         "other service");
    ob_loki_standin_push(f->loki, "namespace=prod,app=checkout,pod=checkout-1", now - 3 * 3600 * s,
                         "three hours ago");
    write_file(f->dir, "extra.yaml",
               "actions:\n"
               "  - name: grep\n"
               "    description: grep logs\n"
               "    risk: read\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: env, type: string, required: true}\n"
               "      - {name: since, type: duration, default: 15m}\n"
               "      - {name: filter, type: string}\n"
               "    executor:\n"
               "      type: loki\n"
               "      url: http://127.0.0.1:%d\n"
               "      tenant: team-a\n"
               "      query: '{namespace=\"{env}\", app=\"{service}\"} |= \"{filter}\"'\n"
               "      since: \"{since}\"\n"
               "      max_range: 1h\n"
               "      limit: 100\n"
               "      max_bytes: 300\n"
               "  - name: grepre\n"
               "    description: grep logs by regex\n"
               "    risk: read\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "      - {name: filter, type: string}\n"
               "    executor: {type: loki, url: \"http://127.0.0.1:%d\", tenant: team-a,\n"
               "               query: '{app=~\"{service}\"} |~ \"{filter}\"'}\n"
               "  - name: badlogs\n"
               "    description: a query the stand-in cannot parse\n"
               "    risk: read\n"
               "    params:\n"
               "      - {name: service, type: string, required: true}\n"
               "    executor: {type: loki, url: \"http://127.0.0.1:%d\", tenant: team-a,\n"
               "               query: '{app=\"{service}\"} | json'}\n",
               port, port, port);
    write_file(f->dir, "main.yaml",
               "actions:\n"
               "  include: [%s/intents/logs.yaml, extra.yaml]\n"
               "  bind:\n"
               "    logs:\n"
               "      type: loki\n"
               "      url: http://127.0.0.1:%d/\n"
               "      tenant: team-a\n"
               "      query: '{namespace=\"{env}\", app=\"{service}\"} |= \"{filter}\"'\n"
               "      since: \"{since}\"\n"
               "      limit: 5\n",
               src_root(), port);
    load(f);
}

static void test_loki_order_caps_redaction(void **state)
{
    struct fx *f = *state;
    const char *l1, *l2;

    loki_setup(f);
    run_text(f, "!logs checkout env=prod since=15m");
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(f->status, "5 lines");
    assert_int_equal(ob_loki_standin_last_limit(f->loki), 5);
    assert_string_equal(ob_loki_standin_last_query(f->loki),
                        "{namespace=\"prod\", app=\"checkout\"} |= \"\"");
    /* newest first, across both pods, with the pod shown */
    l1 = strstr(f->output, "[checkout-2] say hi | x{} \\ now");
    l2 = strstr(f->output, "[checkout-2] ERROR db password=[REDACTED]");
    assert_non_null(l1);
    assert_non_null(l2);
    assert_true(l1 < l2);
    has(f->output, "[checkout-1] request 12 handled");
    has(f->output, "[checkout-1] request 11 handled");
    hasnt(f->output, "request 10 handled"); /* the limit */
    hasnt(f->output, "hunter2");
    hasnt(f->output, "other service");
    has(f->output, "(5 lines, newest first, last 15m; limit 5)");
    has(f->output, "LogQL: {namespace=\"prod\", app=\"checkout\"} |= \"\"");

    /* an old line outside the window stays out; nothing matches: said plainly */
    run_text(f, "!logs checkout env=prod since=15m filter=three");
    assert_string_equal(f->status, "no lines");
    has(f->output, "no log lines for service=checkout env=prod filter=three in the last 15m");
}

static void test_loki_hostile_filter_and_bytes(void **state)
{
    struct fx *f = *state;
    struct ob_proposal p;

    loki_setup(f);
    /* quotes, a pipe, braces and a backslash: one literal filter string */
    prop_make(f, &p, "grep", "service", "checkout", "env", "prod", "since", "15m", "filter",
              "say \"hi\" | x{} \\", (const char *)NULL);
    start_prop(f, &p);
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(ob_loki_standin_last_query(f->loki),
                        "{namespace=\"prod\", app=\"checkout\"} |= \"say \\\"hi\\\" | x{} \\\\\"");
    assert_string_equal(f->status, "1 line");
    has(f->output, "say \"hi\" | x{} \\ now");
    hasnt(f->output, "say hi |");

    /* the same value as a regex matches itself literally, nothing more */
    prop_make(f, &p, "grepre", "service", "check.*", "filter", "say hi | x{} \\", NULL);
    start_prop(f, &p);
    assert_string_equal(f->status, "no lines"); /* app=~"check\.\*" is not checkout */
    prop_make(f, &p, "grepre", "service", "checkout", "filter", "say hi | x{} \\", NULL);
    start_prop(f, &p);
    assert_string_equal(f->status, "1 line");
    has(f->output, "say hi | x{} \\ now");

    /* a newline in a value stays inside the string */
    prop_make(f, &p, "grep", "service", "checkout", "env", "prod", "since", "15m", "filter",
              "a\"}\n{app=~\".*", NULL);
    start_prop(f, &p);
    assert_string_equal(f->status, "no lines");

    /* the byte cap (300 bytes of lines) */
    prop_make(f, &p, "grep", "service", "checkout", "env", "prod", "since", "15m", "filter", "",
              NULL);
    start_prop(f, &p);
    has(f->output, "more not shown: over 300 bytes");
    assert_true(strlen(f->output) < 600);

    /* the range is capped by max_range (1h) */
    prop_make(f, &p, "grep", "service", "checkout", "env", "prod", "since", "3h", "filter", "",
              NULL);
    start_prop(f, &p);
    assert_true(ob_loki_standin_last_range_ns(f->loki) == 3600LL * 1000000000LL);
    has(f->output, "last 1h (capped)");
    hasnt(f->output, "three hours ago");
}

static void test_loki_error(void **state)
{
    struct fx *f = *state;
    struct ob_proposal p;

    loki_setup(f);
    prop_make(f, &p, "badlogs", "service", "checkout", NULL);
    start_prop(f, &p);
    assert_int_equal(f->exit_status, 1);
    assert_string_equal(f->status, "Loki error");
    has(f->output, "Loki error (HTTP 400): parse error at line 1, col ");
    has(f->output, "LogQL: {app=\"checkout\"} | json");
}

/* ---- http ------------------------------------------------------------------------- */

static void rec_handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct fx *f = data;
    const char *a = ob_http_srv_header(req, "authorization");
    const char *ct = ob_http_srv_header(req, "content-type");

    f->nrec++;
    ob_strlcpy(f->rec_method, req->method, sizeof(f->rec_method));
    ob_strlcpy(f->rec_path, req->path, sizeof(f->rec_path));
    ob_strlcpy(f->rec_query, req->query, sizeof(f->rec_query));
    ob_strlcpy(f->rec_auth, a ? a : "", sizeof(f->rec_auth));
    ob_strlcpy(f->rec_ctype, ct ? ct : "", sizeof(f->rec_ctype));
    free(f->rec_body);
    f->rec_body = strndup(req->body ? req->body : "", req->body_len);
    ob_http_reply(ex, f->rec_reply_status, "text/plain", f->rec_reply_body,
                  strlen(f->rec_reply_body), NULL);
}

static void http_setup(struct fx *f)
{
    struct ob_http_server_opts o = {.listen = "127.0.0.1:0"};
    int port;

    assert_int_equal(ob_http_server_new(f->lws, &o, rec_handler, f, &f->rec), 0);
    port = ob_http_server_port(f->rec);
    write_file(f->dir, "hooks.yaml",
               "actions:\n"
               "  - name: hook\n"
               "    description: call a webhook\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: name, type: string, required: true}\n"
               "      - {name: env, type: string, required: true}\n"
               "      - {name: count, type: int, default: 3}\n"
               "    executor:\n"
               "      type: http\n"
               "      method: POST\n"
               "      url: \"http://127.0.0.1:%d/hooks/{name}?env={env}\"\n"
               "      headers: {Authorization: \"Bearer ${OB_TEST_HOOK_TOKEN}\", X-Custom: yes}\n"
               "      body:\n"
               "        text: \"deploy {name} to {env}\"\n"
               "        count: \"{count}\"\n"
               "        nested: {list: [\"{name}\", \"lit {{braces}}\"]}\n"
               "      expect: [200, 202]\n"
               "      excerpt: 40\n"
               "  - name: hook_text\n"
               "    description: a JSON text body\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: name, type: string, required: true}\n"
               "    executor:\n"
               "      type: http\n"
               "      method: PUT\n"
               "      url: \"http://127.0.0.1:%d/t\"\n"
               "      body: '{\"msg\": \"hi {name}\", \"n\": {\"x\": 1}}'\n"
               "  - name: hook_dry\n"
               "    description: dry run\n"
               "    risk: change\n"
               "    params:\n"
               "      - {name: name, type: string, required: true}\n"
               "    executor:\n"
               "      type: http\n"
               "      url: \"http://127.0.0.1:%d/dry/{name}\"\n"
               "      auth: {basic: {user: bot, password: \"${OB_TEST_HOOK_TOKEN}\"}}\n"
               "      body: {who: \"{name}\"}\n"
               "      dry_run: true\n",
               port, port, port);
    write_file(f->dir, "main.yaml", "actions: {include: hooks.yaml}\n");
    load(f);
}

static char *url_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    size_t o = 0;

    for (; *s; s++) {
        if (s[0] == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};

            out[o++] = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

static void test_http_templates(void **state)
{
    struct fx *f = *state;
    struct ob_proposal p;
    const char *hostile = "a/b?c=d&e \"quote\" \\ {x} é";
    char want[256], *path;
    cJSON *body;

    http_setup(f);
    f->rec_reply_status = 202;
    f->rec_reply_body = "accepted; token=abcdef0123456789 and a long tail that is cut off";
    prop_make(f, &p, "hook", "name", hostile, "env", "prod&x=1", "count", "7", NULL);
    start_prop(f, &p);
    assert_int_equal(f->nrec, 1);
    assert_int_equal(f->exit_status, 0);
    assert_string_equal(f->status, "HTTP 202");
    assert_string_equal(f->rec_method, "POST");
    /* one path segment and one query value, whatever they contain (the
     * server decodes the path; the query arrives as sent) */
    path = url_decode(f->rec_path);
    snprintf(want, sizeof(want), "/hooks/%s", hostile);
    assert_string_equal(path, want);
    free(path);
    path = url_decode(f->rec_query);
    assert_string_equal(path, "env=prod&x=1"); /* one value */
    free(path);
    has(f->output,
        "/hooks/a%2Fb%3Fc%3Dd%26e%20%22quote%22%20%5C%20%7Bx%7D%20%C3%A9?env=prod%26x%3D1");
    assert_string_equal(f->rec_auth, "Bearer " HOOK_TOKEN);
    assert_string_equal(f->rec_ctype, "application/json");
    body = cJSON_Parse(f->rec_body);
    assert_non_null(body);
    snprintf(want, sizeof(want), "deploy %s to prod&x=1", hostile);
    assert_string_equal(cJSON_GetObjectItem(body, "text")->valuestring, want);
    if (!cJSON_IsNumber(cJSON_GetObjectItem(body, "count")))
        print_message("body: %s\n", f->rec_body);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(body, "count")));
    assert_int_equal(cJSON_GetObjectItem(body, "count")->valueint, 7);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "nested"), "list"), 0)
            ->valuestring,
        hostile);
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "nested"), "list"), 1)
            ->valuestring,
        "lit {braces}");
    cJSON_Delete(body);
    /* the excerpt: 40 bytes, redacted */
    has(f->output, "HTTP 202 from POST http://127.0.0.1:");
    has(f->output, "accepted; token=[REDACTED]");
    hasnt(f->output, "abcdef0123456789");
    hasnt(f->output, "cut off");

    /* an unexpected status fails the job */
    f->rec_reply_status = 500;
    f->rec_reply_body = "boom";
    start_prop(f, &p);
    assert_int_equal(f->exit_status, 1);
    assert_string_equal(f->status, "HTTP 500 (unexpected)");
    has(f->output, "boom");

    /* a JSON text body: values JSON-escaped inside its strings */
    f->rec_reply_status = 200;
    prop_make(f, &p, "hook_text", "name", "x\", \"evil\": \"1\n", NULL);
    start_prop(f, &p);
    assert_string_equal(f->rec_method, "PUT");
    body = cJSON_Parse(f->rec_body);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "msg")->valuestring, "hi x\", \"evil\": \"1\n");
    assert_null(cJSON_GetObjectItem(body, "evil"));
    cJSON_Delete(body);
}

static void test_http_dry_run(void **state)
{
    struct fx *f = *state;
    struct ob_proposal p;

    http_setup(f);
    prop_make(f, &p, "hook_dry", "name", "web", NULL);
    start_prop(f, &p);
    assert_int_equal(f->nrec, 0); /* nothing sent */
    assert_true(f->dry_run);
    assert_int_equal(f->exit_status, 0);
    has(f->output, "dry run: would send");
    has(f->output, "POST http://127.0.0.1:");
    has(f->output, "/dry/web");
    has(f->output, "Authorization: Basic ****");
    has(f->output, "{\"who\":\"web\"}");
    hasnt(f->output, HOOK_TOKEN);
}

/* ---- Prometheus, the real one, through the pipeline -------------------------------- */

static void kill_prometheus_atexit(void)
{
    if (g_prom_pid > 0)
        kill(g_prom_pid, SIGKILL);
}

/* meson's timeout sends SIGTERM: Prometheus must not outlive the test. */
static void on_fatal_signal(int sig)
{
    if (g_prom_pid > 0)
        kill(g_prom_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int free_port(void)
{
    int port = standin_free_port();

    return port > 0 ? port : 0;
}

/* The scrape target: counters that grow linearly with time, so rates and
 * their ratio are exact: 100 ok/s and 10 errors/s (9.09 %). */
static void target_handler(void *data, struct ob_http_exchange *ex,
                           const struct ob_http_srv_req *req)
{
    struct prom *pr = data;
    double t = (double)(uv_hrtime() - pr->t0) / 1e9;
    char body[2048];

    (void)req;
    snprintf(body, sizeof(body),
             "# TYPE http_requests_total counter\n"
             "http_requests_total{service=\"checkout\",env=\"prod\",code=\"200\"} %.3f\n"
             "http_requests_total{service=\"checkout\",env=\"prod\",code=\"500\"} %.3f\n"
             "# TYPE http_request_duration_seconds histogram\n"
             "http_request_duration_seconds_bucket{service=\"checkout\",env=\"prod\",le=\"0.1\"} "
             "0\n"
             "http_request_duration_seconds_bucket{service=\"checkout\",env=\"prod\",le=\"0.25\"} "
             "%.3f\n"
             "http_request_duration_seconds_bucket{service=\"checkout\",env=\"prod\",le=\"+Inf\"} "
             "%.3f\n"
             "http_request_duration_seconds_sum{service=\"checkout\",env=\"prod\"} %.3f\n"
             "http_request_duration_seconds_count{service=\"checkout\",env=\"prod\"} %.3f\n",
             100 * t, 10 * t, 110 * t, 110 * t, 20 * t, 110 * t);
    ob_http_reply(ex, 200, "text/plain; version=0.0.4", body, strlen(body), NULL);
}

static void on_prom_exit(uv_process_t *p, int64_t status, int sig)
{
    struct prom *pr = p->data;

    (void)status;
    (void)sig;
    pr->exited = true;
    g_prom_pid = 0;
    uv_close((uv_handle_t *)p, NULL);
}

struct poll_ctx {
    struct ob_http *http;
    bool got;
    bool ok;
    char *body;
};

static void on_poll_resp(void *data, const struct ob_http_resp *resp)
{
    struct poll_ctx *c = data;

    c->got = true;
    c->ok = resp->err == 0 && resp->status == 200;
    free(c->body);
    c->body = resp->body ? strdup(resp->body) : NULL;
}

/* One GET, waited for on the loop. */
static bool get_once(uv_loop_t *loop, struct ob_http *http, const char *url, char **body)
{
    struct poll_ctx c = {.http = http};
    struct ob_http_req r = {.method = "GET", .url = url, .timeout_ms = 2000};

    if (ob_http_request(http, &r, on_poll_resp, &c, NULL))
        return false;
    while (!c.got)
        uv_run(loop, UV_RUN_ONCE);
    if (body)
        *body = c.body;
    else
        free(c.body);
    return c.ok;
}

static void sleep_loop(uv_loop_t *loop, int64_t ms)
{
    bool done = false;
    uv_timer_t t;

    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, guard_cb, (uint64_t)ms, 0);
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Starts /usr/bin/prometheus and waits (at most ~20 s) until the error
 * counter has at least four samples. Returns a reason on failure. */
static const char *prom_start(struct fx *f, struct prom *pr)
{
    struct ob_http_server_opts o = {.listen = "127.0.0.1:0"};
    uv_process_options_t po = {0};
    uv_stdio_container_t stdio[3];
    char cfgp[400], data[400], web[64], cfgarg[420], dataarg[420], logp[400], url[300];
    char *args[8];
    int logfd, rc;
    uint64_t deadline;

    g_prom = pr;
    pr->t0 = uv_hrtime();
    if (ob_http_server_new(f->lws, &o, target_handler, pr, &pr->target))
        return "cannot serve the scrape target";
    pr->target_port = ob_http_server_port(pr->target);
    pr->port = free_port();
    snprintf(pr->dir, sizeof(pr->dir), "%s/prom", f->dir);
    mkdir(pr->dir, 0700);
    write_file(pr->dir, "prometheus.yml",
               "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
               "scrape_configs:\n"
               "  - job_name: app\n"
               "    scrape_interval: 1s\n"
               "    static_configs: [{targets: ['127.0.0.1:%d']}]\n",
               pr->target_port);
    snprintf(cfgp, sizeof(cfgp), "%s/prometheus.yml", pr->dir);
    snprintf(data, sizeof(data), "%s/data", pr->dir);
    snprintf(logp, sizeof(logp), "%s/prometheus.log", pr->dir);
    snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", cfgp);
    snprintf(dataarg, sizeof(dataarg), "--storage.tsdb.path=%s", data);
    snprintf(web, sizeof(web), "--web.listen-address=127.0.0.1:%d", pr->port);
    args[0] = (char *)"/usr/bin/prometheus";
    args[1] = cfgarg;
    args[2] = dataarg;
    args[3] = web;
    args[4] = (char *)"--log.level=warn";
    args[5] = NULL;
    logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = logfd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = logfd;
    po.file = args[0];
    po.args = args;
    po.exit_cb = on_prom_exit;
    po.stdio_count = 3;
    po.stdio = stdio;
    pr->proc.data = pr;
    rc = uv_spawn(&f->loop, &pr->proc, &po);
    close(logfd);
    if (rc) {
        uv_close((uv_handle_t *)&pr->proc, NULL);
        return "cannot start /usr/bin/prometheus";
    }
    pr->running = true;
    g_prom = pr;
    g_prom_pid = pr->proc.pid;
    deadline = uv_hrtime() + 20ULL * 1000000000ULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", pr->port);
    while (!get_once(&f->loop, f->http, url, NULL)) {
        if (pr->exited || uv_hrtime() > deadline)
            return "prometheus did not become ready (see prom/prometheus.log)";
        sleep_loop(&f->loop, 100);
    }
    snprintf(
        url, sizeof(url),
        "http://127.0.0.1:%d/api/v1/"
        "query?query=count_over_time(http_requests_total%%7Bcode%%3D%%22500%%22%%7D%%5B1m%%5D)",
        pr->port);
    for (;;) {
        char *body = NULL;
        cJSON *j;
        const cJSON *v;
        bool enough = false;

        if (get_once(&f->loop, f->http, url, &body)) {
            j = cJSON_Parse(body ? body : "");
            v = cJSON_GetArrayItem(
                cJSON_GetObjectItem(
                    cJSON_GetArrayItem(
                        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "result"), 0),
                    "value"),
                1);
            enough = cJSON_IsString(v) && atoi(v->valuestring) >= 4;
            cJSON_Delete(j);
        }
        free(body);
        if (enough)
            return NULL;
        if (pr->exited || uv_hrtime() > deadline)
            return "prometheus never scraped the target";
        sleep_loop(&f->loop, 250);
    }
}

static void prom_stop(struct fx *f, struct prom *pr)
{
    if (pr->running && !pr->exited) {
        uint64_t deadline = uv_hrtime() + 5ULL * 1000000000ULL;

        uv_process_kill(&pr->proc, SIGTERM);
        while (!pr->exited && uv_hrtime() < deadline)
            uv_run(&f->loop, UV_RUN_ONCE);
        if (!pr->exited) {
            uv_process_kill(&pr->proc, SIGKILL);
            while (!pr->exited)
                uv_run(&f->loop, UV_RUN_ONCE);
        }
    }
    if (pr->target)
        ob_http_server_free(pr->target);
    pr->target = NULL;
    g_prom = NULL;
}

/* A minimal adapter that records what the bot posts. */
struct rec_ad {
    char posts[64][4096];
    size_t n;
    unsigned long next;
};

static int ad_start(struct ob_adapter *ad)
{
    (void)ad;
    return 0;
}

static int ad_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct rec_ad *r = ad->ctx;
    struct ob_msgref ref = {0};

    if (r->n < 64)
        ob_strlcpy(r->posts[r->n++], p->text, sizeof(r->posts[0]));
    ob_strlcpy(ref.channel, p->channel ? p->channel : "ops", sizeof(ref.channel));
    ob_strlcpy(ref.thread, p->thread ? p->thread : "", sizeof(ref.thread));
    snprintf(ref.message, sizeof(ref.message), "m%lu", ++r->next);
    if (cb)
        cb(data, 0, &ref);
    return 0;
}

static int ad_update(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p)
{
    struct rec_ad *r = ad->ctx;

    (void)ref;
    if (r->n < 64)
        ob_strlcpy(r->posts[r->n++], p->text, sizeof(r->posts[0]));
    return 0;
}

static int ad_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    (void)ad;
    (void)ref;
    (void)emoji;
    return 0;
}

static void ad_stop(struct ob_adapter *ad)
{
    (void)ad;
}

static void ad_free(struct ob_adapter *ad)
{
    free(ad->ctx);
    free(ad);
}

static const struct ob_adapter_ops rec_ops = {
    .name = "test",
    .start = ad_start,
    .post = ad_post,
    .update = ad_update,
    .react = ad_react,
    .stop = ad_stop,
    .free = ad_free,
};

static const char *final_post(struct rec_ad *r, size_t from)
{
    for (size_t i = from; i < r->n; i++) {
        if (strstr(r->posts[i], "] finished:") || strstr(r->posts[i], "] failed:"))
            return r->posts[i];
    }
    return NULL;
}

static void say(struct ob_adapter *ad, struct rec_ad *r, uv_loop_t *loop, const char *text,
                const char **out)
{
    static int seq;
    struct ob_event ev = {0};
    char id[32], msg[32];
    size_t from = r->n;
    uint64_t deadline = uv_hrtime() + 15ULL * 1000000000ULL;

    snprintf(id, sizeof(id), "ev-%d", ++seq);
    snprintf(msg, sizeof(msg), "u%d", seq);
    ev.kind = OB_EV_MESSAGE;
    ev.id = id;
    ev.platform = "test";
    ev.user = "dev";
    ev.channel = "ops";
    ev.message = msg;
    ev.text = text;
    ev.text_len = strlen(text);
    ev.addressed = true;
    ad->on_event(ad->on_event_data, ad, &ev);
    while (!final_post(r, from) && uv_hrtime() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    *out = final_post(r, from);
    if (!*out) {
        for (size_t i = from; i < r->n; i++)
            print_message("post: %s\n", r->posts[i]);
        fail_msg("no final answer to '%s'", text);
    }
}

static void test_prometheus_pipeline(void **state)
{
    struct fx *f = *state;
    struct prom *prp = calloc(1, sizeof(*prp));
    struct ob_bundle *b = NULL;
    struct ob_bot *bot = NULL;
    struct ob_adapter *ad;
    struct rec_ad *r;
    struct ob_diag d;
    const char *why, *ans;
    char path[512], env[64];

    if (access("/usr/bin/prometheus", X_OK)) {
        print_message("skipped: /usr/bin/prometheus is not installed (apt-get install "
                      "prometheus)\n");
        skip();
    }
    why = prom_start(f, prp);
    if (why) {
        char log[512];

        snprintf(log, sizeof(log), "cat %s/prometheus.log >&2", prp->dir);
        (void)!system(log);
        fail_msg("%s", why); /* teardown stops it */
    }
    snprintf(env, sizeof(env), "http://127.0.0.1:%d", prp->port);
    setenv("PROM_URL", env, 1);
    mkdir(strcat(strcpy(path, f->dir), "/policies"), 0700);
    write_file(f->dir, "policies/all.yaml",
               "groups: {all: [\"test:dev\"]}\n"
               "rules:\n"
               "  - {name: reads, group: all, action: [metrics, status, logs, help], effect: "
               "allow}\n");
    /* The shipped catalog as it is; its kubernetes bindings need targets. */
    write_file(f->dir, "main.yaml",
               "bot: {state: \":memory:\", shutdown_grace: 2s}\n"
               "log: {level: error}\n"
               "actions: {include: %s/intents/*.yaml}\n"
               "policies: {include: policies/*.yaml}\n"
               "targets:\n"
               "  clusters: {none: {server: \"http://127.0.0.1:1\"}}\n"
               "  envs:\n"
               "    prod: {cluster: none, namespace: prod}\n"
               "    staging: {cluster: none, namespace: staging}\n"
               "    dev: {cluster: none, namespace: dev}\n",
               src_root());
    snprintf(path, sizeof(path), "%s/main.yaml", f->dir);
    ob_diag_init(&d);
    if (ob_bundle_load(&b, path, &d)) {
        ob_diag_print(&d, stderr);
        fail();
    }
    ob_diag_release(&d);
    assert_int_equal(ob_bot_new(&bot, &f->loop, b, path), 0);
    ad = calloc(1, sizeof(*ad));
    r = calloc(1, sizeof(*r));
    ad->ops = &rec_ops;
    ad->ctx = r;
    assert_int_equal(ob_bot_add_adapter(bot, ad), 0);
    assert_int_equal(ob_bot_start(bot), 0);

    say(ad, r, &f->loop, "error rate of checkout in prod over the last 5 minutes", &ans);
    print_message("%s\n", ans);
    has(ans, "] finished: last 9.09% in ");
    has(ans, "metrics service=checkout env=prod metric=error_rate since=5m");
    has(ans, "PromQL: sum(rate(http_requests_total{service=\"checkout\", env=\"prod\", "
             "code=~\"5..\"}[5m])) / sum(rate(http_requests_total{service=\"checkout\", "
             "env=\"prod\"}[5m]))");
    has(ans, "max 9.09%  last 9.09%");
    has(ans, "range 5m, step 5s");
    assert_true(strstr(ans, "▁") || strstr(ans, "█"));

    say(ad, r, &f->loop, "what's the p99 latency of checkout in prod?", &ans);
    has(ans, "] finished: last 24");
    has(ans, " ms in ");
    has(ans, "PromQL: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_"
             "bucket{service=\"checkout\", env=\"prod\"}[5m])))");

    say(ad, r, &f->loop, "error rate of ghost in prod over the last hour", &ans);
    has(ans, "] finished: no data in ");
    has(ans, "no data for service=ghost env=prod metric=error_rate since=1h over the last 1h");

    prom_stop(f, prp);
    free(prp);
    /* Nothing is in flight: the bot closes its handles now; their close
     * callbacks run on the next turns (the fixture's lws keeps the loop
     * alive, so run it for a bounded while). */
    ob_bot_shutdown(bot);
    sleep_loop(&f->loop, 100);
    ob_bot_free(bot);
    unsetenv("PROM_URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kube_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_scale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_bad_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_rollout_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_rollout_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_free_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loki_order_caps_redaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loki_hostile_filter_and_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loki_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_pipeline, setup, teardown),
    };

    atexit(kill_prometheus_atexit);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    if (getenv("OB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
