/* The fault matrix (tests/FAULTS.md): each fault is one test.
 *
 * Slack faults run the real pipeline in-process against the local Slack
 * (tests/standins/slack_standin.c) with tests/data/faults/opsbot.yaml;
 * the LLM timeout adds the local OpenAI-compatible stand-in. Disk full and
 * SIGKILL drive the built binary (`opsbot console`, env OPSBOT) as a child
 * process, read through pipes. Nothing sleeps: every wait is for an event
 * (a condition on the loop, or poll() on the child's output) with a
 * deadline.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "e2e_fixture.h"
#include "llm_standin.h"
#include "opsbot/bot.h"
#include "opsbot/err.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_standin.h"

#define LLM_KEY "sk-faults-test-key-0001"

/* ==== the in-process fixture: opsbot + the local Slack ===================== */

struct fx {
    struct e2e e; /* first: the hooks get &fx->e */
    struct slack_standin *sd;
    struct ob_lws *llm_lws; /* the LLM stand-in's transport, when used */
    struct ob_llm_standin *llm;
};

static struct fx fxg;

static void free_standin(struct e2e *e)
{
    struct fx *f = (struct fx *)e;

    slack_standin_free(f->sd);
    if (f->llm)
        ob_llm_standin_free(f->llm);
    if (f->llm_lws)
        ob_lws_free(f->llm_lws);
}

/* The log of the redelivery storm is large: shown only when a test fails. */
static const struct e2e_hooks hooks = {
    .name = "faults", .free_standin = free_standin, .log_on_failure = true};

static bool live_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_live(s) >= (size_t)(intptr_t)arg;
}

static bool hellos_cond(struct slack_standin *s, void *arg)
{
    return slack_standin_hellos(s) >= (size_t)(intptr_t)arg;
}

/* llm: start the LLM stand-in too (mode llm-first). */
static void fx_start(struct fx *f, bool llm)
{
    struct slack_standin_opts o = {.ping_ms = 100};
    char port[16];

    memset(f, 0, sizeof(*f));
    e2e_begin(&f->e, &hooks);
    assert_int_equal(slack_standin_new(&f->sd, &f->e.loop, &o), 0);
    setenv("SLACK_API_BASE", slack_standin_api_base(f->sd), 1);
    setenv("SLACK_BOT_TOKEN", "xoxb-standin-bot", 1);
    setenv("SLACK_APP_TOKEN", "xapp-standin-app", 1);
    unsetenv("LLM_PORT");
    unsetenv("LLM_MODE");
    if (llm) {
        assert_int_equal(ob_lws_new(&f->llm_lws, &f->e.loop), 0);
        assert_int_equal(ob_llm_standin_new(&f->llm, f->llm_lws, &f->e.loop, LLM_KEY, "x"), 0);
        snprintf(port, sizeof(port), "%d", ob_llm_standin_port(f->llm));
        setenv("LLM_PORT", port, 1);
        setenv("LLM_MODE", "llm-first", 1);
    }
    e2e_start_bot(&f->e, "opsbot.yaml");
    assert_true(slack_standin_wait(f->sd, live_cond, (void *)1, 5000));
    assert_true(e2e_wait_log(&f->e, "connected (Socket Mode", 5000));
}

/* Posts containing needle in thread ts. */
static size_t count_in_thread(struct fx *f, const char *needle, const char *ts)
{
    size_t n = 0;

    for (long i = slack_standin_find_post(f->sd, needle, 0); i >= 0;
         i = slack_standin_find_post(f->sd, needle, (size_t)i + 1))
        n += !strcmp(slack_standin_call(f->sd, (size_t)i)->thread_ts, ts);
    return n;
}

static size_t count_status(struct fx *f, int status)
{
    size_t n = 0;

    for (size_t i = 0; i < slack_standin_ncalls(f->sd); i++)
        n += slack_standin_call(f->sd, i)->status == status;
    return n;
}

static bool acked_cond(struct slack_standin *s, void *arg)
{
    (void)arg;
    return slack_standin_acked(s) + slack_standin_ack_failures(s) >= slack_standin_envelopes(s);
}

/* The simulated fleet's restart counter of service in env. */
static int fleet_restarts(const char *state_dir, const char *service, const char *env)
{
    char cmd[1024], *out, path[300];
    int n = -1;
    const char *p;

    snprintf(path, sizeof(path), "%s/fleet-status.txt", state_dir);
    snprintf(cmd, sizeof(cmd),
             "FLEET_STATE='%s/fleet' '%s/deploy/demo/fleet.sh' status %s %s >'%s' 2>&1", state_dir,
             e2e_src_root(), service, env, path);
    if (system(cmd) != 0)
        return -1;
    out = e2e_slurp(path);
    p = strstr(out, "restarts:");
    if (p)
        n = atoi(p + strlen("restarts:"));
    free(out);
    return n;
}

/* ---- websocket closed mid-frame ------------------------------------------- */

static void test_ws_closed_mid_frame(void **state)
{
    struct fx *F = &fxg;
    char ts1[32], ts2[32];

    (void)state;
    fx_start(F, false);
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "status of checkout in prod",
                                           NULL, ts1, sizeof(ts1)),
                     0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 8000));
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3000));
    /* The frame header promises 200 bytes; 64 come, then the TCP close. */
    assert_int_equal(slack_standin_cut_midframe(F->sd), 1);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    assert_true(slack_standin_wait(F->sd, live_cond, (void *)1, 2000));
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "status of payments in prod",
                                           NULL, ts2, sizeof(ts2)),
                     0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 2, 8000));
    /* The torn frame was never taken for an event; each request once. */
    assert_int_equal(count_in_thread(F, "understood:", ts1), 1);
    assert_int_equal(count_in_thread(F, "understood:", ts2), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 2);
    assert_false(e2e_log_has(&F->e, "cut-1"));
    assert_int_equal(slack_standin_opens(F->sd), 2);
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3000));
    assert_int_equal(slack_standin_ack_failures(F->sd), 0);
    e2e_end(&F->e);
}

/* ---- server silence: nothing in either direction -------------------------- */

static void test_server_silence(void **state)
{
    struct fx *F = &fxg;
    char ts[32];

    (void)state;
    fx_start(F, false);
    slack_standin_silence(F->sd);
    /* Sent into the silent socket: it never arrives, it is never acked. */
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart cart in staging", NULL,
                                           ts, sizeof(ts)),
                     0);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    assert_true(e2e_log_has(&F->e, "looks dead"));
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 0);
    /* Slack redelivers what was not acked, on the new connection. */
    slack_standin_target(F->sd, 0);
    assert_int_equal(slack_standin_redeliver(F->sd), 0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 8000));
    /* ... and once more, as Slack may: still one run. */
    assert_int_equal(slack_standin_redeliver(F->sd), 0);
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3500));
    assert_int_equal(count_in_thread(F, "understood:", ts), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_int_equal(fleet_restarts(F->e.dir, "cart", "staging"), 1);
    assert_int_equal(slack_standin_ack_failures(F->sd), 1); /* the silent one */
    e2e_end(&F->e);
}

/* ---- refresh (disconnect warning) in the middle of a burst ---------------- */

#define BURST 40

static void test_refresh_during_burst(void **state)
{
    static const char *const svc[] = {"checkout", "payments", "cart", "search"};
    struct fx *F = &fxg;
    char ts[BURST][32], text[80];
    unsigned old;
    size_t retried;

    (void)state;
    fx_start(F, false);
    old = slack_standin_newest(F->sd);
    slack_standin_target(F->sd, old);
    for (int i = 0; i < BURST; i++) {
        if (i == BURST / 2)
            assert_int_equal(slack_standin_disconnect(F->sd, "refresh_requested"), 0);
        /* Slack keeps using the old socket until the new one is up. */
        if (i > BURST / 2 && slack_standin_newest(F->sd) != old && slack_standin_hellos(F->sd) >= 2)
            slack_standin_target(F->sd, 0);
        /* Help (built in) and, every fourth, a read (an exec job). */
        if (i % 4 == 1)
            snprintf(text, sizeof(text), "status of %s in %s", svc[i % 4],
                     i % 2 ? "prod" : "staging");
        else
            snprintf(text, sizeof(text), "help");
        assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", text, NULL, ts[i], 32), 0);
        /* Interleave with the loop: frames go out, acks come in. */
        for (int k = 0; k < 4; k++)
            uv_run(&F->e.loop, UV_RUN_NOWAIT);
    }
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 5000));
    slack_standin_target(F->sd, 0);
    /* Envelopes that were on their way through the old socket when opsbot
     * closed it are never acked; past the ack deadline Slack sends them
     * again on the live connection (at-least-once), and opsbot must take
     * each exactly once. */
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 5000));
    retried = slack_standin_redeliver_unacked(F->sd);
    assert_int_equal(retried, slack_standin_ack_failures(F->sd));
    if (!slack_standin_wait_posts(F->sd, "audit #", BURST, 30000)) {
        for (size_t i = 0; i < slack_standin_ncalls(F->sd); i++)
            fprintf(stderr, "call %zu: %s %d %s [%.60s]\n", i, slack_standin_call(F->sd, i)->method,
                    slack_standin_call(F->sd, i)->status, slack_standin_call(F->sd, i)->thread_ts,
                    slack_standin_call(F->sd, i)->text);
        fail_msg("%zu of %d requests answered; envelopes %zu, acked %zu, ack failures %zu",
                 slack_standin_count_posts(F->sd, "audit #"), BURST, slack_standin_envelopes(F->sd),
                 slack_standin_acked(F->sd), slack_standin_ack_failures(F->sd));
    }
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3500));
    /* Every envelope acked in time, or (cut off by the refresh) again. */
    assert_int_equal(slack_standin_acked(F->sd), BURST);
    assert_int_equal(slack_standin_envelopes(F->sd), BURST + retried);
    /* Every request of the burst answered exactly once, in its thread. */
    for (int i = 0; i < BURST; i++) {
        if (count_in_thread(F, "understood:", ts[i]) != 1 ||
            count_in_thread(F, "audit #", ts[i]) != 1)
            fail_msg("message %d (%s) answered %zu/%zu times", i, ts[i],
                     count_in_thread(F, "understood:", ts[i]),
                     count_in_thread(F, "audit #", ts[i]));
    }
    assert_int_equal(slack_standin_opens(F->sd), 2);
    e2e_end(&F->e);
}

/* ---- a storm of 429s on every Web API method ------------------------------ */

static void test_429_storm(void **state)
{
    struct fx *F = &fxg;
    char ts[32];
    long u, p, r, fin;

    (void)state;
    fx_start(F, false);
    /* The next 20 calls of any method: 429, Retry-After: 0 (opsbot waits
     * 100 ms then). */
    slack_standin_ratelimit(F->sd, "*", 20, 0);
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart checkout in staging",
                                           NULL, ts, sizeof(ts)),
                     0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 15000));
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3000));
    assert_int_equal(count_status(F, 429), 20);
    /* Nothing lost, nothing doubled, order kept. */
    u = slack_standin_find_post(F->sd, "understood:", 0);
    p = slack_standin_find_post(F->sd, "policy: allowed", 0);
    r = slack_standin_find_post(F->sd, "running:", 0);
    fin = slack_standin_find_post(F->sd, "finished: exit 0", 0);
    /* understood and policy share the first message (the steps of a loop
     * turn are gathered); running and its quick result share the next */
    assert_true(u >= 0 && u == p && p < r && r <= fin);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_int_equal(fleet_restarts(F->e.dir, "checkout", "staging"), 1);
    assert_int_equal(slack_standin_ack_failures(F->sd), 0);
    assert_true(e2e_log_has(&F->e, "rate limited"));
    e2e_end(&F->e);
}

/* ---- 5xx on every platform call ------------------------------------------- */

static void test_5xx_every_call(void **state)
{
    struct fx *F = &fxg;
    char ts[32];

    (void)state;
    fx_start(F, false);
    /* Slack's front end fails: the next 6 Web API calls, whatever the
     * method, get 503 with an HTML body; the socket drops too, so the
     * reconnect's apps.connections.open meets them as well. */
    slack_standin_http_error(F->sd, NULL, 503, 6);
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart search in staging",
                                           NULL, ts, sizeof(ts)),
                     0);
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 3000));
    assert_int_equal(slack_standin_close(F->sd, true), 0);
    assert_true(slack_standin_wait(F->sd, hellos_cond, (void *)2, 10000));
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 15000));
    assert_int_equal(count_status(F, 503), 6);
    assert_true(e2e_log_has(&F->e, "HTTP 503 without a JSON answer"));
    /* The action ran once, every message arrived once, in order. */
    assert_int_equal(fleet_restarts(F->e.dir, "search", "staging"), 1);
    assert_int_equal(count_in_thread(F, "understood:", ts), 1);
    assert_int_equal(count_in_thread(F, "running:", ts), 1);
    assert_true(slack_standin_find_post(F->sd, "understood:", 0) <
                slack_standin_find_post(F->sd, "finished:", 0));
    e2e_end(&F->e);
}

/* ---- LLM timeout ------------------------------------------------------------ */

static void test_llm_timeout(void **state)
{
    struct fx *F = &fxg;
    struct ob_si_rule rule = {0};
    char ts[32], ts2[32];
    int64_t t0;

    (void)state;
    fx_start(F, true);
    rule.match = "";
    rule.kind = OB_SI_SLOW; /* never answers */
    ob_llm_standin_add(F->llm, &rule);
    t0 = ob_now_ms();
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart cart in staging", NULL,
                                           ts, sizeof(ts)),
                     0);
    /* Acked at once, not after the model: Slack would redeliver. */
    assert_true(slack_standin_wait(F->sd, acked_cond, NULL, 900));
    assert_int_equal(slack_standin_ack_failures(F->sd), 0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 8000));
    assert_true(ob_now_ms() - t0 >= 1000); /* the connection's 1 s timeout */
    assert_int_equal(count_in_thread(F, "LLM unavailable (timeout after 1s): used the rules", ts),
                     1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    /* The LLM client is not wedged: the next message times out the same way. */
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "status of cart in staging",
                                           NULL, ts2, sizeof(ts2)),
                     0);
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 2, 8000));
    assert_int_equal(count_in_thread(F, "LLM unavailable", ts2), 1);
    assert_int_equal(ob_llm_standin_count(F->llm), 2); /* retries: 0 */
    assert_int_equal(fleet_restarts(F->e.dir, "cart", "staging"), 1);
    e2e_end(&F->e);
}

/* ---- an executor that ignores SIGTERM ------------------------------------- */

static void test_exec_ignores_sigterm(void **state)
{
    struct fx *F = &fxg;
    char ts[32];
    long fin;
    int64_t t0;

    (void)state;
    fx_start(F, false);
    t0 = ob_now_ms();
    /* scale runs tests/data/exec/trap.sh: trap '' TERM; timeout 500ms,
     * kill_grace 300ms. */
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "scale cart in staging to 3",
                                           NULL, ts, sizeof(ts)),
                     0);
    fin = slack_standin_wait_post(F->sd, "failed: timed out after", 8000);
    assert_true(fin >= 0);
    assert_true(ob_now_ms() - t0 >= 800); /* 500 ms, then 300 ms of grace */
    assert_non_null(strstr(slack_standin_call(F->sd, (size_t)fin)->text, "killed (signal 9)"));
    assert_string_equal(slack_standin_call(F->sd, (size_t)fin)->thread_ts, ts);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    /* Nothing left running: the bot gets idle again. */
    assert_true(e2e_wait_idle(&F->e, 3000));
    e2e_end(&F->e);
}

/* ---- a redelivery storm: 10,000 copies of one event ----------------------- */

#define STORM 10000

static bool storm_acked_cond(struct slack_standin *s, void *arg)
{
    (void)arg;
    return slack_standin_acked(s) + slack_standin_ack_failures(s) >= STORM + 1;
}

static void test_redelivery_storm(void **state)
{
    struct fx *F = &fxg;
    char ts[32];

    (void)state;
    fx_start(F, false);
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart payments in staging",
                                           NULL, ts, sizeof(ts)),
                     0);
    for (int i = 0; i < STORM; i++) {
        assert_int_equal(slack_standin_redeliver(F->sd), 0);
        if (i % 100 == 99) /* let the loop turn: frames go out, acks come in */
            for (int k = 0; k < 4; k++)
                uv_run(&F->e.loop, UV_RUN_NOWAIT);
    }
    assert_true(slack_standin_wait(F->sd, storm_acked_cond, NULL, 30000));
    assert_true(slack_standin_wait_posts(F->sd, "finished: exit 0", 1, 8000));
    assert_int_equal(slack_standin_envelopes(F->sd), STORM + 1);
    assert_int_equal(slack_standin_ack_failures(F->sd), 0);
    assert_int_equal(slack_standin_count_posts(F->sd, "understood:"), 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "running:"), 1);
    assert_int_equal(fleet_restarts(F->e.dir, "payments", "staging"), 1);
    /* The core saw the copies and dropped each one. */
    assert_int_equal(e2e_log_count(&F->e, "already handled"), STORM);
    e2e_end(&F->e);
}

/* ---- a bot freed while an action runs (shutdown grace) ---------------------- */

/* Found by a helper under ASan: ob_bot_free during the shutdown grace left
 * the executor alive, and the child's exit then called back into the freed
 * bot. Now the child is killed without its callback; e2e_end's uv_run and
 * ASan show nothing touches freed memory, and every handle closes. */
static void test_freed_during_grace(void **state)
{
    struct fx *F = &fxg;
    char ts[32];

    (void)state;
    fx_start(F, false);
    setenv("FLEET_DELAY", "1", 1); /* each pod of the restart takes 1 s */
    assert_int_equal(slack_standin_message(F->sd, "D0DEV", "UDEV", "restart payments in staging",
                                           NULL, ts, sizeof(ts)),
                     0);
    /* the "running:" message comes once the action outlives the hold */
    assert_true(slack_standin_wait_posts(F->sd, "running:", 1, 8000));
    setenv("FLEET_DELAY", "0", 1);
    assert_int_equal(slack_standin_count_posts(F->sd, "finished:"), 0);
    e2e_end(&F->e); /* shutdown, then free 50 ms into the 30 s grace */
}

/* ---- a bot freed before its loop drained ----------------------------------- */

static void walk_read(uv_handle_t *h, void *arg)
{
    /* Instrumented read: ASan reports a handle living in freed memory. */
    *(size_t *)arg += h->type == UV_UNKNOWN_HANDLE;
}

/* Found by this matrix (SIGSEGV in uv_walk under MALLOC_PERTURB_, after
 * test_5xx_every_call): ob_bot_free freed the bot while its timers, check
 * and signal handles were still closing. Now the last close frees it. */
static void test_bot_freed_before_drain(void **state)
{
    struct ob_bundle *b = NULL;
    struct ob_bot *bot = NULL;
    struct ob_diag d;
    uv_loop_t loop;
    char dir[] = "/tmp/ob-faults-XXXXXX", path[512];
    size_t odd = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    setenv("OPSBOT_STATE_DIR", dir, 1);
    snprintf(path, sizeof(path), "%s/deploy/demo/opsbot.yaml", e2e_src_root());
    assert_int_equal(uv_loop_init(&loop), 0);
    ob_diag_init(&d);
    assert_int_equal(ob_bundle_load(&b, path, &d), 0);
    ob_diag_release(&d);
    assert_int_equal(ob_bot_new(&bot, &loop, b, path), 0);
    assert_int_equal(ob_bot_start(bot), 0);
    assert_int_equal(ob_bot_handle_signals(bot, false), 0);
    ob_bot_shutdown(bot);
    ob_bot_free(bot); /* the loop has not run: every close is pending */
    uv_walk(&loop, walk_read, &odd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(odd, 0);
    e2e_remove_dir(dir);
}

/* ==== the binary as a child process ========================================= */

struct proc {
    pid_t pid;
    int in, out, err; /* our ends of the pipes; -1 when closed */
    char *obuf, *ebuf;
    size_t olen, elen;
};

static void buf_add(char **b, size_t *len, const char *data, size_t n)
{
    *b = realloc(*b, *len + n + 1);
    memcpy(*b + *len, data, n);
    *len += n;
    (*b)[*len] = '\0';
}

/* Starts `OPSBOT console -c CONFIG [extra...]`; fsize > 0 sets RLIMIT_FSIZE
 * (bytes) with SIGXFSZ ignored, so writes beyond it fail with EFBIG as on a
 * full disk. */
static void proc_start(struct proc *p, const char *config, long fsize, const char *extra)
{
    const char *bin = getenv("OPSBOT");
    int pin[2], pout[2], perr[2];

    assert_non_null(bin);
    memset(p, 0, sizeof(*p));
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    assert_int_equal(pipe(perr), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};

            signal(SIGXFSZ, SIG_IGN);
            if (setrlimit(RLIMIT_FSIZE, &rl))
                _exit(126);
        }
        if (extra)
            execl(bin, bin, "console", "-c", config, extra, (char *)NULL);
        else
            execl(bin, bin, "console", "-c", config, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    p->in = pin[1];
    p->out = pout[0];
    p->err = perr[0];
    p->obuf = strdup("");
    p->ebuf = strdup("");
}

static void proc_say(struct proc *p, const char *line)
{
    size_t n = strlen(line);

    assert_true(p->in >= 0);
    assert_int_equal(write(p->in, line, n), (ssize_t)n);
    assert_int_equal(write(p->in, "\n", 1), 1);
}

/* Reads whatever the child writes for up to timeout_ms; returns false when
 * both pipes reached EOF. */
static bool proc_pump(struct proc *p, int timeout_ms)
{
    struct pollfd fds[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
    char buf[65536];

    if (p->out < 0 && p->err < 0)
        return false;
    if (poll(fds, 2, timeout_ms) <= 0)
        return true;
    for (int i = 0; i < 2; i++) {
        ssize_t n;

        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
            if (i == 0)
                buf_add(&p->obuf, &p->olen, buf, (size_t)n);
            else
                buf_add(&p->ebuf, &p->elen, buf, (size_t)n);
        } else if (n == 0 || errno != EINTR) {
            close(fds[i].fd);
            if (i == 0)
                p->out = -1;
            else
                p->err = -1;
        }
    }
    return true;
}

/* Waits until the child's stdout holds needle (count times). */
static bool proc_wait_out(struct proc *p, const char *needle, size_t count, int64_t timeout_ms)
{
    int64_t end = ob_now_ms() + timeout_ms;

    while (e2e_count_in(p->obuf, needle) < count) {
        int64_t left = end - ob_now_ms();

        if (left <= 0 || !proc_pump(p, (int)left))
            return e2e_count_in(p->obuf, needle) >= count;
    }
    return true;
}

/* End of input, then the exit status (or -signal). Kills after timeout. */
static int proc_finish(struct proc *p, int64_t timeout_ms)
{
    int64_t end = ob_now_ms() + timeout_ms;
    int st = 0;

    if (p->in >= 0)
        close(p->in);
    p->in = -1;
    while (ob_now_ms() < end && proc_pump(p, (int)(end - ob_now_ms())))
        ;
    if (p->out >= 0 || p->err >= 0)
        kill(p->pid, SIGKILL);
    while (proc_pump(p, 1000))
        ;
    waitpid(p->pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void proc_kill9(struct proc *p)
{
    int st;

    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    if (p->in >= 0)
        close(p->in);
    p->in = -1;
    while (proc_pump(p, 1000))
        ;
}

static void proc_release(struct proc *p)
{
    free(p->obuf);
    free(p->ebuf);
}

static void proc_dump(const struct proc *p, const char *what)
{
    fprintf(stderr, "---- %s: stdout ----\n%s\n---- stderr (last 3 KiB) ----\n%s\n", what, p->obuf,
            p->elen > 3072 ? p->ebuf + p->elen - 3072 : p->ebuf);
}

/* `opsbot audit verify` on the state; its output into out (malloc'd). */
static int audit_verify(const char *config, char **out)
{
    char cmd[1200], path[300];
    int rc;

    snprintf(path, sizeof(path), "%s/verify.txt", getenv("OPSBOT_STATE_DIR"));
    snprintf(cmd, sizeof(cmd), "'%s' audit verify -c '%s' >'%s' 2>&1", getenv("OPSBOT"), config,
             path);
    rc = system(cmd);
    *out = e2e_slurp(path);
    return rc;
}

static int audit_export(const char *config, char **out)
{
    char cmd[1200], path[300];
    int rc;

    snprintf(path, sizeof(path), "%s/export.jsonl", getenv("OPSBOT_STATE_DIR"));
    snprintf(cmd, sizeof(cmd), "'%s' audit export --format jsonl -c '%s' >'%s' 2>/dev/null",
             getenv("OPSBOT"), config, path);
    rc = system(cmd);
    *out = e2e_slurp(path);
    return rc;
}

struct child_fx {
    char dir[256];
    char state[300];
    char config[512];
};

static void child_fx_start(struct child_fx *c)
{
    snprintf(c->dir, sizeof(c->dir), "/tmp/ob-faults-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->state, sizeof(c->state), "%s/state", c->dir);
    snprintf(c->config, sizeof(c->config), "%s/deploy/demo/opsbot.yaml", e2e_src_root());
    setenv("OPSBOT_STATE_DIR", c->state, 1);
    setenv("FLEET_DELAY", "0", 1);
}

/* ---- disk full on the state file ------------------------------------------ */

static void test_disk_full(void **state)
{
    struct child_fx c;
    struct proc p;
    char *verify = NULL, *trail = NULL, db[400];
    struct stat st;
    int rc;

    (void)state;
    child_fx_start(&c);
    /* The state file of a deployment made before new files got 1 KiB pages
     * (a file keeps the page size it has): the sizes below count 4 KiB. */
    {
        sqlite3 *sq;

        assert_int_equal(mkdir(c.state, 0750), 0);
        snprintf(db, sizeof(db), "%s/opsbot.db", c.state);
        assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
        assert_int_equal(sqlite3_exec(sq, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(sq);
    }
    /* A first run writes a trail: one restart and one status. */
    proc_start(&p, c.config, 0, NULL);
    proc_say(&p, "restart cart in staging");
    proc_say(&p, "/wait");
    proc_say(&p, "status of cart in staging");
    proc_say(&p, "/wait");
    rc = proc_finish(&p, 20000);
    if (rc != 0 || e2e_count_in(p.obuf, "finished: exit 0") != 2)
        proc_dump(&p, "first run");
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_count_in(p.obuf, "finished: exit 0"), 2);
    proc_release(&p);
    snprintf(db, sizeof(db), "%s/opsbot.db", c.state);
    assert_int_equal(stat(db, &st), 0);

    /* The second run may not grow any file past 32 KiB: SQLite's 32 KiB
     * shared-memory file fits; the write-ahead log (it starts empty: the
     * first run checkpointed it away) holds 7 frames of a 4 KiB page, and
     * the first commit of a request writes 9 pages (the claim's 2 b-trees,
     * the audit record's 3, its head, the rate counter's 3). */
    proc_start(&p, c.config, 32 * 1024, NULL);
    proc_say(&p, "restart cart in staging");
    proc_say(&p, "/wait");
    proc_say(&p, "restart search in staging");
    proc_say(&p, "/wait");
    proc_say(&p, "status of cart in staging");
    proc_say(&p, "/wait");
    rc = proc_finish(&p, 20000);
    if (rc != 0 || e2e_count_in(p.obuf, "not run: the audit trail cannot be written (") != 1 ||
        e2e_count_in(p.obuf, "not taking requests: the audit trail cannot be written") != 2)
        proc_dump(&p, "run with a full disk");
    assert_int_equal(rc, 0);
    /* The action was not run, and the thread says why ... */
    assert_int_equal(e2e_count_in(p.obuf, "not run: the audit trail cannot be written (state store "
                                          "failure: "),
                     1);
    assert_int_equal(e2e_count_in(p.obuf, "running:"), 0);
    /* ... and new requests are refused with one line each. */
    assert_int_equal(e2e_count_in(p.obuf, "not taking requests: the audit trail cannot be written"),
                     2);
    assert_int_equal(e2e_count_in(p.obuf, "understood: restart service=search"), 0);
    proc_release(&p);
    assert_int_equal(fleet_restarts(c.state, "cart", "staging"), 1);
    assert_int_equal(fleet_restarts(c.state, "search", "staging"), 0);

    /* Nothing written before was lost: the chain verifies, both requests of
     * the first run are in it, nothing of the second. */
    rc = audit_verify(c.config, &verify);
    if (rc != 0)
        fprintf(stderr, "audit verify: %s\n", verify);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(verify, "audit chain intact"));
    assert_int_equal(audit_export(c.config, &trail), 0);
    assert_int_equal(e2e_count_in(trail, "\"step\":\"finished\""), 2);
    assert_int_equal(e2e_count_in(trail, "\"step\":\"started\""), 2);
    free(verify);
    free(trail);

    /* With room again, the same state takes requests again. */
    proc_start(&p, c.config, 0, NULL);
    proc_say(&p, "restart search in staging");
    proc_say(&p, "/wait");
    rc = proc_finish(&p, 20000);
    assert_int_equal(rc, 0);
    assert_int_equal(e2e_count_in(p.obuf, "finished: exit 0"), 1);
    proc_release(&p);
    assert_int_equal(fleet_restarts(c.state, "search", "staging"), 1);
    assert_int_equal(audit_verify(c.config, &verify), 0);
    free(verify);
    e2e_remove_dir(c.dir);
}

/* ---- SIGKILL with an approval pending and an action running --------------- */

static void test_sigkill_restart(void **state)
{
    struct child_fx c;
    struct proc p;
    char *verify = NULL, *trail = NULL;
    int rc;

    (void)state;
    child_fx_start(&c);
    /* Each pod step of the fleet's rolling restart takes 1 s: the restart
     * is surely still running when the kill comes. */
    setenv("FLEET_DELAY", "1", 1);
    proc_start(&p, c.config, 0, NULL);
    proc_say(&p, "restart search in prod");
    assert_true(proc_wait_out(&p, "APPROVAL NEEDED", 1, 10000));
    proc_say(&p, "restart cart in staging");
    if (!proc_wait_out(&p, "running: fleet.sh restart cart staging", 1, 10000))
        proc_dump(&p, "first run");
    assert_non_null(strstr(p.obuf, "running: fleet.sh restart cart staging"));
    proc_kill9(&p);
    assert_int_equal(e2e_count_in(p.obuf, "finished"), 0);
    proc_release(&p);

    /* The restart after the kill. */
    setenv("FLEET_DELAY", "0", 1);
    proc_start(&p, c.config, 0, "--user=oncall");
    assert_true(proc_wait_out(&p, "outcome unknown", 1, 10000));
    proc_say(&p, "/approve");
    proc_say(&p, "/wait");
    rc = proc_finish(&p, 20000);
    if (rc != 0 || !strstr(p.obuf, "approved by console:oncall"))
        proc_dump(&p, "run after the kill");
    assert_int_equal(rc, 0);
    /* The pending approval is intact: re-announced, approved, run once. */
    assert_non_null(strstr(p.obuf, "still pending from before a restart — APPROVAL NEEDED"));
    assert_non_null(strstr(p.obuf, "approved by console:oncall"));
    assert_int_equal(e2e_count_in(p.obuf, "running: fleet.sh restart search prod"), 1);
    /* The cut-off action: reported, named, NOT run again. */
    assert_non_null(strstr(p.obuf, "outcome unknown: restart (fleet.sh restart cart staging) had "
                                   "started"));
    assert_non_null(strstr(p.obuf, "it was NOT re-run"));
    assert_int_equal(e2e_count_in(p.obuf, "running: fleet.sh restart cart"), 0);
    assert_int_equal(e2e_count_in(p.obuf, "outcome unknown"), 1);
    proc_release(&p);

    assert_int_equal(audit_verify(c.config, &verify), 0);
    assert_int_equal(audit_export(c.config, &trail), 0);
    assert_int_equal(e2e_count_in(trail, "\"step\":\"outcome_unknown\""), 1);
    free(verify);
    free(trail);

    /* A third start has nothing more to report. */
    proc_start(&p, c.config, 0, NULL);
    proc_say(&p, "/wait");
    assert_int_equal(proc_finish(&p, 20000), 0);
    assert_int_equal(e2e_count_in(p.obuf, "outcome unknown"), 0);
    proc_release(&p);
    e2e_remove_dir(c.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ws_closed_mid_frame, e2e_teardown),
        cmocka_unit_test_teardown(test_server_silence, e2e_teardown),
        cmocka_unit_test_teardown(test_refresh_during_burst, e2e_teardown),
        cmocka_unit_test_teardown(test_429_storm, e2e_teardown),
        cmocka_unit_test_teardown(test_5xx_every_call, e2e_teardown),
        cmocka_unit_test_teardown(test_llm_timeout, e2e_teardown),
        cmocka_unit_test_teardown(test_exec_ignores_sigterm, e2e_teardown),
        cmocka_unit_test_teardown(test_redelivery_storm, e2e_teardown),
        cmocka_unit_test(test_bot_freed_before_drain),
        cmocka_unit_test_teardown(test_freed_during_grace, e2e_teardown),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_sigkill_restart),
    };

    signal(SIGPIPE, SIG_IGN);
    if (getenv("OB_TEST_ONLY"))
        cmocka_set_test_filter(getenv("OB_TEST_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
