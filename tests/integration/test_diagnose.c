/* Diagnose and suggest end to end, over loopback:
 *   - the real Prometheus (Debian's), with series this test writes as
 *     OpenMetrics and backfills with promtool: a day earlier and now, with
 *     spikes (checkout: errors 100× yesterday's and a slow p99; cart and
 *     checkout: CPU near the limit);
 *   - the Kubernetes stand-in (checkout: a rollout ten minutes old; payments:
 *     a crash-looping pod), the Loki stand-in (error lines, one leaking a
 *     token) and the LLM stand-in;
 *   - the whole pipeline: symptom -> policy -> evidence (each a read action
 *     decided for the requester and audited) -> reading -> proposals ->
 *     a pick by reaction -> policy -> approval -> the Kubernetes executor.
 * Skipped when /usr/bin/prometheus or /usr/bin/promtool is missing.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core.h"
#include "kube_standin.h"
#include "llm_standin.h"
#include "loki_standin.h"
#include "opsbot/audit.h"
#include "opsbot/bot.h"
#include "opsbot/diagnose.h"
#include "opsbot/err.h"
#include "opsbot/event.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/store.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "prom_helper.h"

#define KUBE_TOKEN "kube-t0ken-for-tests-0123456789"
#define LLM_KEY "sk-test-diagnose-0123456789abcdef"
#define LEAK "xoxb-1234567890-abcdefghijklmnop"

static const char *src_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

/* ---- the world: started once ------------------------------------------------------ */

struct world {
    uv_loop_t loop;
    struct ob_lws *lws;
    struct ob_http *http;
    struct ob_prom prom;
    struct ob_kube_standin *kube;
    struct ob_loki_standin *loki;
    struct ob_llm_standin *llm;
    char dir[256];
    bool have_prom;
};

static struct world W;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void write_file(const char *path, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static void tick(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void nap(int64_t ms)
{
    bool done = false;
    uv_timer_t t;

    uv_timer_init(&W.loop, &t);
    t.data = &done;
    uv_timer_start(&t, tick, (uint64_t)ms, 0);
    while (!done)
        uv_run(&W.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&W.loop, UV_RUN_NOWAIT);
}

/* The series, a day earlier and now (OpenMetrics, one family after the
 * other, samples in time order). */
static const char *const services[] = {"checkout", "cart", "payments", "search"};

struct family {
    const char *type, *name;
};

static void om_family(FILE *f, int which, int64_t now)
{
    /* windows: [now-1d-20m, now-1d+5m] and [now-20m, now+5m], every 15 s.
     * Both run past the time the queries are made (the backfill and the
     * server's start take seconds, more on a loaded machine): a window
     * ending before then makes rate() see only part of its range and
     * read low (89% instead of 93%). */
    static double acc[4][16];
    int64_t starts[2] = {now - 86400 - 1200, now - 1200}, ends[2] = {now - 86400 + 300, now + 300};

    memset(acc, 0, sizeof(acc));
    for (int w = 0; w < 2; w++) {
        for (int64_t t = starts[w]; t <= ends[w]; t += 15) {
            for (int s = 0; s < 4; s++) {
                const char *sv = services[s];
                bool today = w == 1;
                bool checkout = s == 0, cart = s == 1;

                switch (which) {
                case 0: { /* requests: 100/s ok; errors */
                    double err = today && checkout ? 10.0 : 0.1;

                    acc[s][0] += 100 * 15;
                    acc[s][1] += err * 15;
                    fprintf(f,
                            "http_requests_total{service=\"%s\",env=\"prod\",code=\"200\"} %.1f "
                            "%lld\n"
                            "http_requests_total{service=\"%s\",env=\"prod\",code=\"500\"} %.1f "
                            "%lld\n",
                            sv, acc[s][0], (long long)t, sv, acc[s][1], (long long)t);
                    break;
                }
                case 1: { /* latency buckets per second: le 0.1 .. +Inf */
                    static const char *const le[] = {"0.1", "0.25", "0.5", "1", "+Inf"};
                    double slow[] = {60, 80, 90, 110, 110}, fast[] = {100, 109, 110, 110, 110};
                    double *r = today && checkout ? slow : fast;

                    for (int k = 0; k < 5; k++) {
                        acc[s][2 + k] += r[k] * 15;
                        fprintf(f,
                                "http_request_duration_seconds_bucket{service=\"%s\",env=\"prod\","
                                "le=\"%s\"} %.1f %lld\n",
                                sv, le[k], acc[s][2 + k], (long long)t);
                    }
                    acc[s][7] += 110 * 15;
                    acc[s][8] += 110 * 15 * 0.1;
                    fprintf(f,
                            "http_request_duration_seconds_count{service=\"%s\",env=\"prod\"} %.1f "
                            "%lld\n"
                            "http_request_duration_seconds_sum{service=\"%s\",env=\"prod\"} %.1f "
                            "%lld\n",
                            sv, acc[s][7], (long long)t, sv, acc[s][8], (long long)t);
                    break;
                }
                case 2: /* CPU seconds per pod */
                    for (int p = 0; p < 3; p++) {
                        double rate = today && cart       ? 0.95 + 0.01 * p
                                      : today && checkout ? 0.93
                                                          : 0.3;

                        acc[s][9 + p] += rate * 15;
                        fprintf(f,
                                "container_cpu_usage_seconds_total{namespace=\"prod\",pod=\"%s-"
                                "7d9f8c-%d\",container=\"%s\"} %.2f %lld\n",
                                sv, p, sv, acc[s][9 + p], (long long)t);
                    }
                    break;
                case 3: /* limits */
                    for (int p = 0; p < 3; p++)
                        fprintf(f,
                                "kube_pod_container_resource_limits{namespace=\"prod\",pod=\"%s-"
                                "7d9f8c-%d\",resource=\"cpu\"} 1 %lld\n"
                                "kube_pod_container_resource_limits{namespace=\"prod\",pod=\"%s-"
                                "7d9f8c-%d\",resource=\"memory\"} 1073741824 %lld\n",
                                sv, p, (long long)t, sv, p, (long long)t);
                    break;
                default: /* memory */
                    for (int p = 0; p < 3; p++)
                        fprintf(f,
                                "container_memory_working_set_bytes{namespace=\"prod\",pod=\"%s-"
                                "7d9f8c-%d\",container=\"%s\"} 419430400 %lld\n",
                                sv, p, sv, (long long)t);
                    break;
                }
            }
        }
    }
}

static char *openmetrics(int64_t now)
{
    static const char *const heads[] = {"# TYPE http_requests counter\n",
                                        "# TYPE http_request_duration_seconds histogram\n",
                                        "# TYPE container_cpu_usage_seconds counter\n",
                                        "# TYPE kube_pod_container_resource_limits gauge\n",
                                        "# TYPE container_memory_working_set_bytes gauge\n"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    for (int i = 0; i < 5; i++) {
        fputs(heads[i], f);
        om_family(f, i, now);
    }
    fputs("# EOF\n", f);
    fclose(f);
    return text;
}

static int group_setup(void **state)
{
    char tmpl[] = "/tmp/opsbot-dx-XXXXXX", pdir[300];
    int64_t now_s = ob_now_ms() / 1000, now_ns = ob_now_ms() * 1000000LL;

    (void)state;
    ob_log_set_level(OB_LOG_ERROR);
    memset(&W, 0, sizeof(W));
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(W.dir, sizeof(W.dir), "%s", tmpl);
    uv_loop_init(&W.loop);
    if (ob_lws_new(&W.lws, &W.loop) || ob_http_new(&W.http, &W.loop))
        return -1;
    if (ob_kube_standin_new(&W.kube, W.lws, &W.loop, KUBE_TOKEN) ||
        ob_loki_standin_new(&W.loki, W.lws, NULL) ||
        ob_llm_standin_new(&W.llm, W.lws, &W.loop, LLM_KEY, "gpt-4o-mini"))
        return -1;
    ob_kube_standin_add(W.kube, "prod", "checkout", 3, 42);
    ob_kube_standin_rollout_age(W.kube, "prod", "checkout", 600);
    ob_kube_standin_add(W.kube, "prod", "cart", 3, 17);
    ob_kube_standin_rollout_age(W.kube, "prod", "cart", 4 * 86400);
    ob_kube_standin_add(W.kube, "prod", "payments", 3, 9);
    ob_kube_standin_rollout_age(W.kube, "prod", "payments", 3 * 86400);
    ob_kube_standin_crashloop(W.kube, "prod", "payments", 14, false);
    ob_kube_standin_add(W.kube, "prod", "search", 3, 5);
    ob_kube_standin_rollout_age(W.kube, "prod", "search", 7 * 86400);
    for (int i = 0; i < 30; i++) {
        char line[200];

        snprintf(line, sizeof(line),
                 i % 3 ? "ERROR payment declined: upstream 500 from payments (request %d)"
                       : "ERROR upstream timeout calling payments after 5000ms (request %d)",
                 1000 + i);
        ob_loki_standin_push(W.loki, "namespace=prod,app=checkout,pod=checkout-7d9f8c-0",
                             now_ns - (int64_t)(i + 1) * 10 * 1000000000LL, line);
    }
    ob_loki_standin_push(W.loki, "namespace=prod,app=checkout,pod=checkout-7d9f8c-1",
                         now_ns - 5 * 1000000000LL, "ERROR auth failed with token " LEAK);
    ob_loki_standin_push(W.loki, "namespace=prod,app=checkout,pod=checkout-7d9f8c-1",
                         now_ns - 6 * 1000000000LL, "INFO all good");
    ob_loki_standin_push(W.loki, "namespace=prod,app=payments,pod=payments-7d9f8c-0",
                         now_ns - 20 * 1000000000LL, "FATAL cannot connect to payments_db:5432");
    W.have_prom = ob_prom_available();
    if (W.have_prom) {
        char *om = openmetrics(now_s);
        const char *why;

        snprintf(pdir, sizeof(pdir), "%s/prom", W.dir);
        why = ob_prom_start(&W.prom, &W.loop, W.http, pdir, om,
                            "sum(rate(http_requests_total{service=\"checkout\"}[5m]))");
        free(om);
        if (why) {
            char cmd[400];

            fprintf(stderr, "prometheus: %s\n", why);
            snprintf(cmd, sizeof(cmd), "cat %s/prometheus.log >&2", pdir);
            (void)!system(cmd);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (W.have_prom)
        ob_prom_stop(&W.prom, &W.loop);
    ob_llm_standin_free(W.llm);
    ob_loki_standin_free(W.loki);
    ob_kube_standin_free(W.kube);
    ob_http_free(W.http);
    ob_lws_free(W.lws);
    for (int i = 0; i < 50; i++)
        uv_run(&W.loop, UV_RUN_NOWAIT);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    uv_loop_close(&W.loop);
    nftw(W.dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- a bot with a recording adapter -------------------------------------------------- */

#define MAX_POSTS 256

struct rec {
    char *text[MAX_POSTS];
    unsigned flags[MAX_POSTS];
    char id[MAX_POSTS][128];
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
    struct rec *r = ad->ctx;
    struct ob_msgref ref = {0};

    snprintf(ref.channel, sizeof(ref.channel), "%s", p->channel ? p->channel : "");
    snprintf(ref.thread, sizeof(ref.thread), "%s", p->thread ? p->thread : "");
    snprintf(ref.message, sizeof(ref.message), "m%lu", ++r->next);
    if (r->n < MAX_POSTS) {
        r->text[r->n] = strdup(p->text);
        r->flags[r->n] = p->flags;
        snprintf(r->id[r->n], sizeof(r->id[0]), "%s", ref.message);
        r->n++;
    }
    if (cb)
        cb(data, 0, &ref);
    return 0;
}

static int ad_update(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p)
{
    (void)ad;
    (void)ref;
    (void)p;
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
    struct rec *r = ad->ctx;

    for (size_t i = 0; i < r->n; i++)
        free(r->text[i]);
    free(r);
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

struct fx {
    struct ob_bot *bot;
    struct ob_adapter *ad;
    struct rec *r;
    char dir[300];
    int seq;
};

/* bind: executor bindings ("name: {…}, …") or NULL; extra: the diagnose:
 * section (RUNBOOKS stands for the shipped runbooks) or NULL */
static void bot_start(struct fx *f, const char *bind, const char *extra)
{
    struct ob_bundle *b = NULL;
    struct ob_diag d;
    char path[512], env[64];

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s/bot-XXXXXX", W.dir);
    assert_non_null(mkdtemp(f->dir));
    snprintf(env, sizeof(env), "http://127.0.0.1:%d", W.have_prom ? W.prom.port : 1);
    setenv("PROM_URL", env, 1);
    snprintf(env, sizeof(env), "http://127.0.0.1:%d", ob_loki_standin_port(W.loki));
    setenv("LOKI_URL", env, 1);
    snprintf(path, sizeof(path), "%s/policy.yaml", f->dir);
    write_file(path,
               "groups:\n"
               "  devs: [\"test:dev\"]\n"
               "  oncall: [\"test:oncall\"]\n"
               "  viewers: [\"test:viewer\"]\n"
               "  all: [\"group:devs\", \"group:oncall\", \"group:viewers\"]\n"
               "rules:\n"
               "  - {name: viewers-no-logs, group: viewers, action: [error_lines], effect: deny,\n"
               "     reason: viewers may not read logs}\n"
               "  - {name: reads, group: all, action: [diagnose, probe, pods, error_lines, "
               "status, help], effect: allow}\n"
               "  - {name: prod-changes, group: devs, action: [restart, rollback, scale], params: "
               "{env: prod}, effect: approve, approvers: oncall, count: 1}\n");
    snprintf(path, sizeof(path), "%s/opsbot.yaml", f->dir);
    write_file(path,
               "bot: {state: %s/state.db, shutdown_grace: 2s}\n"
               "log: {level: error}\n"
               "actions: {include: %s/intents/*.yaml%s%s%s}\n"
               "policies: {include: policy.yaml}\n"
               "targets:\n"
               "  clusters: {test: {server: \"http://127.0.0.1:%d\", token: %s}}\n"
               "  envs:\n"
               "    prod: {cluster: test, namespace: prod}\n"
               "    staging: {cluster: test, namespace: staging}\n"
               "    dev: {cluster: test, namespace: dev}\n"
               "connections:\n"
               "  si: {api_base: \"http://127.0.0.1:%d/v1\", api_key: %s, model: gpt-test, "
               "timeout: 3s, price: {input_per_1m: 1.0, output_per_1m: 2.0}}\n"
               "%s",
               f->dir, src_root(), bind ? ", bind: {" : "", bind ? bind : "", bind ? "}" : "",
               ob_kube_standin_port(W.kube), KUBE_TOKEN, ob_llm_standin_port(W.llm), LLM_KEY,
               extra ? extra : "diagnose: {runbooks: RUNBOOKS}\n");
    /* RUNBOOKS -> the shipped runbooks */
    {
        char *y = NULL, *at;
        FILE *in = fopen(path, "r");
        size_t n;

        y = calloc(1, 1 << 16);
        n = fread(y, 1, (1 << 16) - 1, in);
        fclose(in);
        y[n] = '\0';
        at = strstr(y, "RUNBOOKS");
        if (at) {
            char *out = NULL;

            *at = '\0';
            assert_true(asprintf(&out, "%s%s/runbooks%s", y, src_root(), at + 8) > 0);
            write_file(path, "%s", out);
            free(out);
        }
        free(y);
    }
    ob_diag_init(&d);
    if (ob_bundle_load(&b, path, &d)) {
        ob_diag_print(&d, NULL);
        fail_msg("config rejected");
    }
    ob_diag_release(&d);
    assert_int_equal(ob_bot_new(&f->bot, &W.loop, b, path), 0);
    f->ad = calloc(1, sizeof(*f->ad));
    f->r = calloc(1, sizeof(*f->r));
    f->ad->ops = &rec_ops;
    f->ad->ctx = f->r;
    assert_int_equal(ob_bot_add_adapter(f->bot, f->ad), 0);
    assert_int_equal(ob_bot_start(f->bot), 0);
}

static void bot_stop(struct fx *f)
{
    uint64_t deadline = uv_hrtime() + 10ULL * 1000000000ULL;

    while (ob_bot_inflight(f->bot) && uv_hrtime() < deadline)
        uv_run(&W.loop, UV_RUN_ONCE);
    ob_bot_shutdown(f->bot);
    nap(50);
    ob_bot_free(f->bot);
    unsetenv("PROM_URL");
    unsetenv("LOKI_URL");
}

/* The index of the first post from `from` containing needle, waiting up to
 * ms; -1 when none came. */
static int wait_post(struct fx *f, size_t from, const char *needle, int64_t ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000ULL;

    for (;;) {
        for (size_t i = from; i < f->r->n; i++)
            if (strstr(f->r->text[i], needle))
                return (int)i;
        if (uv_hrtime() > deadline)
            return -1;
        uv_run(&W.loop, UV_RUN_NOWAIT);
        nap(5);
    }
}

static int must_post(struct fx *f, size_t from, const char *needle, int64_t ms)
{
    int i = wait_post(f, from, needle, ms);

    if (i < 0) {
        for (size_t k = from; k < f->r->n; k++)
            print_message("post %zu: %s\n", k, f->r->text[k]);
        fail_msg("no post with '%s'", needle);
    }
    return i;
}

static void say(struct fx *f, const char *user, const char *text)
{
    struct ob_event ev = {0};
    char id[32], msg[32];

    snprintf(id, sizeof(id), "ev-%d", ++f->seq);
    snprintf(msg, sizeof(msg), "u%d", f->seq);
    ev.kind = OB_EV_MESSAGE;
    ev.id = id;
    ev.platform = "test";
    ev.user = user;
    ev.channel = "ops";
    ev.message = msg;
    ev.text = text;
    ev.text_len = strlen(text);
    ev.addressed = true;
    f->ad->on_event(f->ad->on_event_data, f->ad, &ev);
}

static void react(struct fx *f, const char *user, const char *message, const char *emoji)
{
    struct ob_event ev = {0};
    char id[32];

    snprintf(id, sizeof(id), "ev-%d", ++f->seq);
    ev.kind = OB_EV_REACTION_ADD;
    ev.id = id;
    ev.platform = "test";
    ev.user = user;
    ev.channel = "ops";
    ev.thread = "u1";
    ev.message = message;
    ev.emoji = emoji;
    f->ad->on_event(f->ad->on_event_data, f->ad, &ev);
}

/* Asks and returns the index of the proposals (or no-proposal) post. */
static int diagnose(struct fx *f, const char *user, const char *text)
{
    size_t from = f->r->n;
    int i;

    say(f, user, text);
    for (uint64_t deadline = uv_hrtime() + 15ULL * 1000000000ULL; uv_hrtime() < deadline;) {
        i = wait_post(f, from, "Proposals for ", 0);
        if (i < 0)
            i = wait_post(f, from, "No proposal", 0);
        if (i >= 0)
            return i;
        nap(5);
    }
    return must_post(f, from, "Proposals for ", 1);
}

static void has(const char *hay, const char *needle)
{
    if (!hay)
        fail_msg("'%s' not in nothing", needle);
    else if (!strstr(hay, needle))
        fail_msg("'%s' not in:\n%s", needle, hay);
}

static void hasnt(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle))
        fail_msg("'%s' unexpectedly in:\n%s", needle, hay);
}

static const char *post_with(struct fx *f, size_t from, const char *needle)
{
    return f->r->text[must_post(f, from, needle, 1)];
}

/* ---- audit --------------------------------------------------------------------------- */

struct steps {
    char *all;
    size_t n;
};

static int step_cb(void *data, const struct ob_audit_record *r)
{
    struct steps *s = data;
    char *n = NULL;

    if (asprintf(&n, "%s%s %s %s\n", s->all ? s->all : "", r->step, r->action ? r->action : "-",
                 r->detail ? r->detail : "{}") < 0)
        return -1;
    free(s->all);
    s->all = n;
    s->n++;
    return 0;
}

static struct steps trail(struct fx *f, const char *request_id)
{
    struct steps s = {0};

    ob_store_flush(f->bot->store);
    assert_int_equal(ob_audit_each(f->bot->store, request_id, step_cb, &s), 0);
    if (!s.all)
        s.all = strdup("");
    return s;
}

/* Every record as JSONL. */
static char *export_all(struct fx *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);

    ob_store_flush(f->bot->store);
    assert_int_equal(ob_audit_export(f->bot->store, m, OB_AUDIT_JSONL, 0, 0), 0);
    fclose(m);
    return text;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* "r-…" after "diagnosis " in a post */
static void diagnosis_id(const char *post, char *out, size_t len)
{
    const char *p = strstr(post, "diagnosis r-");

    assert_non_null(p);
    snprintf(out, len, "%.*s", (int)strspn(p + 10, "r-0123456789abcdef"), p + 10);
}

#define NEED_PROM()                                                                                \
    do {                                                                                           \
        if (!W.have_prom) {                                                                        \
            print_message("skipped: /usr/bin/prometheus or promtool missing (apt-get install "     \
                          "prometheus)\n");                                                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the scenarios --------------------------------------------------------------------- */

static void test_scenarios(void **state)
{
    struct fx f;
    const char *p;
    size_t from;
    int i;

    (void)state;
    NEED_PROM();
    bot_start(&f, NULL, NULL);

    /* bad rollout: rollback to the previous revision first, scale second */
    from = f.r->n;
    i = diagnose(&f, "dev", "checkout in prod is slow");
    p = f.r->text[i];
    has(p, "1️⃣ rollback service=checkout env=prod revision=41 — the trouble began with "
           "revision "
           "42, rolled out 10m ago: back to revision 41 (rule bad-rollout)");
    has(p, "2️⃣ scale service=checkout env=prod replicas=6");
    has(p, "runbook: checkout.md § Bad deploy");
    has(p, "audit #");
    assert_true(f.r->flags[i] & OB_POST_CHOICES);
    assert_int_equal(OB_POST_NCHOICES(f.r->flags[i]), 2);
    p = post_with(&f, from, "Evidence (");
    has(p, "Evidence (8 of 8 answered in ");
    has(p, "• error rate (15m): ");
    has(p, "• error rate a day earlier: 0.10%");
    has(p,
        "• pods and last rollout: 3/3 ready · revision 42 · rolled out 10m ago · restarts max 0");
    has(p, "• CPU per pod (share of limit): max 9");
    has(p, " over 3 series");
    has(p, "• error lines (15m): 31 lines");
    has(p, "× ERROR payment declined: upstream 500 from payments");
    hasnt(p, LEAK); /* the leaked token is masked before it reaches the channel */
    p = post_with(&f, from, "What it means:");
    has(p, "× yesterday's");
    has(p, "a rollout 10m ago (revision 42)");
    has(p, "CPU at 9");
    hasnt(p, "Narrative"); /* no LLM configured for diagnose */
    /* nothing ran */
    assert_int_equal(ob_kube_standin_patches(W.kube), 0);

    /* saturation: scale to twice the replicas */
    i = diagnose(&f, "dev", "cart in prod is really slow");
    has(f.r->text[i], "1️⃣ scale service=cart env=prod replicas=6 — CPU at 9");
    has(f.r->text[i], "on 3 pods: scale to 6 (rule saturation)");
    hasnt(f.r->text[i], "rollback");

    /* crash loop: restart */
    from = f.r->n;
    i = diagnose(&f, "dev", "payments in prod keeps crash-looping");
    has(f.r->text[i], "1️⃣ restart service=payments env=prod — payments-7d9f8c-0 is in "
                      "CrashLoopBackOff after 14 restarts (rule crash-loop)");
    has(f.r->text[i], "runbook: payments.md § Crash loop and OOM");
    has(post_with(&f, from, "Evidence ("), "2/3 ready · revision 9 · rolled out 3d ago · restarts "
                                           "max 14 · 1 in CrashLoopBackOff");

    /* nothing wrong: no proposal, and it says so */
    from = f.r->n;
    i = diagnose(&f, "dev", "search in prod seems slow");
    has(f.r->text[i], "No proposal: nothing in the evidence calls for an action");
    assert_false(f.r->flags[i] & OB_POST_CHOICES);
    has(post_with(&f, from, "What it means:"),
        "no rollout in the last 1h; no CPU pressure (30% of the limit at most)");
    assert_int_equal(ob_kube_standin_patches(W.kube), 0);
    bot_stop(&f);
}

/* ---- a pick flows into approval and runs; every step is in the audit ------------------- */

static void test_pick_approval_run(void **state)
{
    struct fx f;
    struct steps s;
    char diag[40], msg[16], appr[16];
    const char *p;
    size_t from;
    int i, k;

    (void)state;
    NEED_PROM();
    bot_start(&f, NULL, NULL);
    i = diagnose(&f, "dev", "checkout in prod is slow");
    snprintf(msg, sizeof(msg), "%s", f.r->id[i]);
    assert_int_equal(ob_kube_standin_patches(W.kube), 0);

    /* a pick on another message, or a number without a proposal: nothing */
    from = f.r->n;
    react(&f, "dev", msg, "three");
    must_post(&f, from, "pick not taken: diagnosis r-", 2000);
    react(&f, "dev", "m1", "one");
    nap(50);
    assert_null(strstr(f.r->text[f.r->n - 1], "understood: rollback"));

    /* dev picks 1 (the keycap emoji): dev's own request, needing oncall */
    from = f.r->n;
    react(&f, "dev", msg, "1\xef\xb8\x8f\xe2\x83\xa3");
    p = f.r->text[must_post(&f, from, "understood: rollback service=checkout env=prod revision=41",
                            2000)];
    has(p, "(pick 1 of diagnosis r-");
    has(p, "by test:dev)");
    diagnosis_id(p, diag, sizeof(diag));
    must_post(&f, from, "policy: needs 1 approval(s) from oncall — rule prod-changes", 2000);
    k = must_post(&f, from, "APPROVAL NEEDED", 2000);
    has(f.r->text[k], "will run: kubernetes rollback");
    snprintf(appr, sizeof(appr), "%s", f.r->id[k]);
    assert_int_equal(ob_kube_standin_patches(W.kube), 0);

    /* the same pick again by the same person is refused */
    react(&f, "dev", msg, "one");
    must_post(&f, from, "pick not taken: test:dev already picked 1", 2000);

    /* oncall approves: the rollback runs against the Kubernetes stand-in */
    react(&f, "oncall", appr, "white_check_mark");
    p = f.r->text[must_post(&f, from, "] finished: ", 15000)];
    has(p, "rollback service=checkout env=prod revision=41");
    assert_true(ob_kube_standin_patches(W.kube) >= 1);
    {
        const cJSON *dep = ob_kube_standin_deployment(W.kube, "prod", "checkout");
        char *t = cJSON_PrintUnformatted(dep);

        has(t, "registry.example/checkout:1.41");
        free(t);
    }

    /* the diagnosis' trail: started, every evidence query as its own step
     * (linked to the diagnosis), the reading and the proposals */
    s = trail(&f, diag);
    has(s.all, "diagnosis_started diagnose");
    assert_int_equal(count(s.all, "\nevidence probe {"), 6);
    assert_int_equal(count(s.all, "\nevidence pods {"), 1);
    assert_int_equal(count(s.all, "\nevidence error_lines {"), 1);
    assert_int_equal(count(s.all, "\"diagnosis\":\""), 11);
    has(s.all,
        "\"command\":\"prometheus query: sum(rate(http_requests_total{service=\\\"checkout\\\"");
    has(s.all, "offset 1d");
    has(s.all, "diagnosis_reading diagnose");
    has(s.all, "diagnosis_proposed diagnose");
    has(s.all, "\"proposal\":\"rollback service=checkout env=prod revision=41\"");
    hasnt(s.all, LEAK);
    hasnt(s.all, "approval_requested"); /* evidence never asks */
    free(s.all);

    /* the pick's own trail: received and understood name the diagnosis
     * and the pick; then the decision, the approval and the run */
    {
        char *all = export_all(&f), *st = all, *end = NULL;

        /* the line of the pick's "received" record */
        while ((st = strstr(st, "\"step\":\"received\"")) != NULL) {
            end = strchr(st, '\n');
            *end = '\0';
            if (strstr(st, "\"text\":\"rollback service=checkout"))
                break;
            *end = '\n';
            st = end;
        }
        if (!st)
            fail_msg("no received record of the pick in:\n%s", all);
        *end = '\n';
        end = strchr(st, '\n');
        *end = '\0';
        has(st, "\"pick\":1");
        has(st, diag);
        *end = '\n';
        has(end, "\"step\":\"understood\"");
        has(end, "\"source\":\"diagnosis\"");
        has(end, "\"step\":\"approval_granted\"");
        has(end, "\"step\":\"started\"");
        has(end, "\"step\":\"finished\"");
        free(all);
    }
    bot_stop(&f);
}

/* ---- the LLM: narrative, re-ranking only among the rules' proposals ----------------- */

static void test_llm_narrative_and_rerank(void **state)
{
    static const char cfg[] =
        "diagnose: {runbooks: RUNBOOKS, llm: {connection: si, max_tokens: 200, token_budget: 1200, "
        "timeout: 2s}}\n";
    struct ob_si_rule rule = {0};
    struct fx f;
    const struct ob_si_request *rq;
    const char *p;
    size_t from;
    int i;

    (void)state;
    NEED_PROM();
    ob_llm_standin_reset(W.llm);
    rule.match = "Service: checkout";
    rule.kind = OB_SI_TOOL;
    rule.tool = "diagnosis";
    rule.args = "{\"narrative\": \"Errors jumped right after revision 42 went out; CPU is hot "
                "too.\", \"ranking\": [2, 1]}";
    rule.prompt_tokens = 700;
    rule.completion_tokens = 40;
    ob_llm_standin_add(W.llm, &rule);
    bot_start(&f, NULL, cfg);

    from = f.r->n;
    i = diagnose(&f, "dev", "checkout in prod is slow");
    p = f.r->text[i];
    /* the model's order, among the rules' proposals */
    has(p, "1️⃣ scale service=checkout env=prod replicas=6");
    has(p, "2️⃣ rollback service=checkout env=prod revision=");
    has(p, "Order: the model's, among the rules' proposals.");
    p = post_with(&f, from, "What it means:");
    has(p, "Narrative: Errors jumped right after revision 42 went out; CPU is hot too.");
    has(p, "(llm gpt-test@");
    has(p, "700→40 tokens · $0.000780 · ");
    /* what the model was sent: redacted, within the token budget, the
     * proposals numbered, the diagnosis tool only */
    assert_int_equal(ob_llm_standin_count(W.llm), 1);
    rq = ob_llm_standin_request(W.llm, 0);
    hasnt(rq->body, LEAK);
    has(rq->user_text, "1. rollback service=checkout env=prod revision=");
    has(rq->user_text, "2. scale service=checkout env=prod replicas=6");
    assert_true(strlen(rq->user_text) <= (1200 - 200) * 4);
    has(rq->body, "\"name\":\"diagnosis\"");
    hasnt(rq->body, "\"name\":\"restart\"");

    /* the model ranks an action the rules did not propose: ignored, logged */
    ob_llm_standin_reset(W.llm);
    rule.args = "{\"narrative\": \"Scale it to 40.\", \"ranking\": [{\"action\": \"scale\", "
                "\"params\": {\"replicas\": 40}}]}";
    ob_llm_standin_add(W.llm, &rule);
    from = f.r->n;
    i = diagnose(&f, "dev", "checkout in prod is slow");
    p = f.r->text[i];
    has(p, "1️⃣ rollback service=checkout env=prod revision=");
    has(p, "2️⃣ scale service=checkout env=prod replicas=6");
    hasnt(p, "replicas=40");
    hasnt(p, "Order: the model's");
    has(post_with(&f, from, "What it means:"),
        "Not used: the model named scale replicas=40, which the rules did not propose");

    /* the model calls a catalog action instead of the diagnosis tool */
    ob_llm_standin_reset(W.llm);
    rule.tool = "restart";
    rule.args = "{\"service\": \"checkout\", \"env\": \"prod\"}";
    ob_llm_standin_add(W.llm, &rule);
    from = f.r->n;
    i = diagnose(&f, "dev", "checkout in prod is slow");
    has(f.r->text[i], "1️⃣ rollback service=checkout env=prod revision=");
    p = post_with(&f, from, "What it means:");
    has(p, "LLM gpt-test: the model called 'restart' instead of the diagnosis tool; the rules' "
           "reading and order stand");
    hasnt(p, "Narrative");

    /* a model that does not answer in time: the rules' answer, on time */
    ob_llm_standin_reset(W.llm);
    memset(&rule, 0, sizeof(rule));
    rule.match = "";
    rule.kind = OB_SI_SLOW;
    rule.delay_ms = 0;
    ob_llm_standin_add(W.llm, &rule);
    from = f.r->n;
    {
        uint64_t t0 = uv_hrtime();

        i = diagnose(&f, "dev", "checkout in prod is slow");
        assert_true(uv_hrtime() - t0 < 6ULL * 1000000000ULL);
    }
    has(f.r->text[i], "1️⃣ rollback");
    has(post_with(&f, from, "What it means:"), "LLM gpt-test: timeout; the rules' reading");
    /* nothing ran from any of it */
    bot_stop(&f);
    ob_llm_standin_reset(W.llm);
}

/* ---- budgets and caps; a denied read -------------------------------------------------- */

static void test_budget_caps_denied(void **state)
{
    struct fx f;
    const char *p;
    size_t from;
    uint64_t t0;
    int i;

    (void)state;
    NEED_PROM();
    /* error_lines is slow here: a program that takes 5 s */
    bot_start(&f, "error_lines: {type: exec, argv: [/bin/sleep, \"5\"]}",
              "diagnose: {runbooks: RUNBOOKS, budget: 1s, max_proposals: 1}\n");
    from = f.r->n;
    t0 = uv_hrtime();
    i = diagnose(&f, "dev", "checkout in prod is slow");
    /* on time: the budget plus a little, not the slow source's 5 s */
    assert_true(uv_hrtime() - t0 < 4000ULL * 1000000ULL);
    p = post_with(&f, from, "Evidence (");
    has(p, "Evidence (7 of 8 answered in ");
    has(p, "what is missing is said");
    has(p, "• error lines (15m): no answer within the budget (1s)");
    /* max_proposals: 1 although two rules hold */
    has(f.r->text[i], "1️⃣ rollback");
    hasnt(f.r->text[i], "2️⃣");
    assert_int_equal(OB_POST_NCHOICES(f.r->flags[i]), 1);
    /* the late answer is still recorded, after the fact */
    for (int k = 0; k < 100; k++) {
        char *all = export_all(&f);
        bool late = strstr(all, "\"step\":\"evidence_late\"") != NULL;

        free(all);
        if (late)
            break;
        nap(100);
    }
    {
        char *all = export_all(&f);

        has(all, "\"step\":\"evidence_missing\",\"actor\":\"opsbot\",\"platform\":\"test\","
                 "\"channel\":\"ops\",\"action\":\"error_lines\"");
        has(all, "\"step\":\"evidence_late\",\"actor\":\"opsbot\",\"platform\":\"test\","
                 "\"channel\":\"ops\",\"action\":\"error_lines\"");
        free(all);
    }

    /* a viewer may diagnose, but reading logs is not allowed for them */
    from = f.r->n;
    i = diagnose(&f, "viewer", "checkout in prod is slow");
    p = post_with(&f, from, "Evidence (");
    has(p, "• error lines (15m): not allowed for you (viewers may not read logs — rule "
           "viewers-no-logs)");
    has(p, "7 of 8 answered");
    {
        char *all = export_all(&f);

        has(all, "\"step\":\"evidence_denied\",\"actor\":\"opsbot\",\"platform\":\"test\","
                 "\"channel\":\"ops\",\"action\":\"error_lines\"");
        has(all, "\"rule\":\"viewers-no-logs\"");
        free(all);
    }
    /* the viewer's pick is the viewer's own request: denied by the policy */
    from = f.r->n;
    react(&f, "viewer", f.r->id[i], "one");
    must_post(&f, from, "(pick 1 of diagnosis r-", 2000);
    must_post(&f, from, "denied: ", 2000);
    bot_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_pick_approval_run),
        cmocka_unit_test(test_llm_narrative_and_rerank),
        cmocka_unit_test(test_budget_caps_denied),
    };

    if (getenv("OB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
