/* The load source of `make bench` (issue 8): the local Slack
 * (tests/standins/slack_standin.c) on this process's loop, the real
 * `opsbot run` as a child process configured for Socket Mode + Web API on
 * loopback, and Socket Mode envelopes with DM message events
 * ("status of checkout in prod") pushed at fixed rates and as fast as
 * possible. Per event: ack latency (envelope written -> ack frame read)
 * and echo latency (envelope written -> first chat.postMessage in its
 * thread); an event is done when the last message of its request (the one
 * with "audit #N · chain") arrives. The `status` action is bound to an
 * `http` executor against the stand-in (GET /bench/...): the full pipeline
 * (claim, parse, policy, audit, durable start, executor, result) without
 * a fork/exec per event.
 *
 * usage: opsbot-bench OPSBOT_BINARY SOURCE_ROOT OUT_DIR [quick]
 * writes OUT_DIR/results.json and OUT_DIR/RESULTS.md (the table, then
 * OUT_DIR/notes.md appended), and OUT_DIR/idle-mappings.txt and
 * after-load-mappings.txt: the RSS per mapped file, largest first, idle
 * after start and after the load, and OUT_DIR/latency-PHASE.csv: every
 * event's latencies in the order sent. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "opsbot/http.h"
#include "opsbot/util.h"
#include "ports.h"
#include "slack_standin.h"

#define NCHAN 256
#define MAX_EVENTS 400000
#define PHASE_TIMEOUT_NS (20LL * 1000000000LL)

struct ev {
    int64_t sent, ack, echo, done;
};

struct phase {
    const char *name;
    double rate; /* events/s; 0 = as fast as possible (window) */
    unsigned count;
    unsigned window; /* saturation: at most this many not yet done */
    /* results */
    unsigned first, sent, acked, echoed, done;
    int64_t t0, t_last_sent, t_end;
    double cpu_s, bench_cpu_s, other_cpu_s, steal_s, wall_s, achieved, offered;
    double ack_p50, ack_p99, ack_max, echo_p50, echo_p99, echo_max, done_p50, done_p99;
    long hwm_kb, rss_kb;
    /* opsbot's own loop during the phase (opsbot_loop_busy_seconds):
     * turns, and turns that worked longer than 5 / 10 / 25 / 50 ms */
    long turns, over5, over10, over25, over50;
    double loop_busy_s; /* of the phase's wall time, opsbot's loop worked this long */
    /* the state store's WAL fsyncs (opsbot_store_fsync_seconds): how many,
     * their mean, and how many took longer than 5 / 25 ms */
    long fsyncs, fsync_over5, fsync_over25;
    double fsync_mean_ms;
    char load[64];
    bool timed_out;
};

/* opsbot_loop_busy_seconds and opsbot_store_fsync_seconds as scraped
 * (the same bounds): cumulative counts per bound. */
#define NBUSY 11
static const char *const busy_le[NBUSY] = {"0.0005", "0.001", "0.002", "0.005", "0.01", "0.025",
                                           "0.05",   "0.1",   "0.25",  "1",     "+Inf"};
struct hist {
    long le[NBUSY];
    double sum; /* seconds */
    bool ok;
};
struct busy {
    struct hist loop, fsync;
};

static struct {
    uv_loop_t loop;
    struct slack_standin *sd;
    int metrics_port;
    struct ob_http *http; /* reads opsbot's /metrics between phases */
    uv_process_t proc;
    uv_pipe_t errp;
    uv_timer_t tick;
    bool exited;
    int pid;
    char tail[8192];
    size_t tail_len;
    int64_t t_spawn, t_hello, t_ready;
    struct ev *evs;
    unsigned nsent, ndone;
    struct phase *cur;
    bool phase_over;
    char dir[256];
    const char *out;  /* OUT_DIR */
    double wal_mb[2]; /* the state's WAL file when the load ended, and 2 s later */
} B;

/* The size of opsbot's WAL file now, in MB (-1: none). */
static double wal_mb_now(void)
{
    char path[300];
    struct stat st;

    snprintf(path, sizeof(path), "%s/opsbot.db-wal", B.dir);
    return stat(path, &st) ? -1.0 : (double)st.st_size / (1024.0 * 1024.0);
}

static int64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- /proc ------------------------------------------------------------------ */

static double proc_cpu_s(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* fields after "pid (comm)": state=3 ... utime=14 stime=15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Busy CPU seconds of the whole machine (all cores); with steal, the
 * seconds the hypervisor ran something else while a vCPU of ours wanted to
 * run. */
static double machine_cpu_s(double *steal)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return 0;
    if (steal)
        *steal = (double)v[7] / (double)sysconf(_SC_CLK_TCK);
    /* user nice system [idle iowait] irq softirq [steal: the hypervisor's] */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / (double)sysconf(_SC_CLK_TCK);
}

/* A "Key:   N kB" line of /proc/PID/FILE (status, smaps_rollup). */
static long proc_kb(int pid, const char *file, const char *key)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static long status_kb(int pid, const char *key)
{
    return proc_kb(pid, "status", key);
}

/* Resident memory told apart: RSS counts every page of the shared
 * libraries this process touched (libcrypto, libc, SQLite... one copy per
 * machine); PSS shares them out among the processes mapping them; USS
 * (private pages) is what this process alone costs; anon is its heap,
 * stacks and JIT code. */
struct mem {
    long rss, pss, uss, anon, shared;
};

static struct mem mem_now(int pid)
{
    struct mem m;

    m.rss = proc_kb(pid, "smaps_rollup", "Rss");
    m.pss = proc_kb(pid, "smaps_rollup", "Pss");
    m.uss = proc_kb(pid, "smaps_rollup", "Private_Clean") +
            proc_kb(pid, "smaps_rollup", "Private_Dirty");
    m.anon = status_kb(pid, "RssAnon");
    m.shared =
        proc_kb(pid, "smaps_rollup", "Shared_Clean") + proc_kb(pid, "smaps_rollup", "Shared_Dirty");
    return m;
}

/* Resident kB per mapped file (anonymous mappings as "[anon]"), largest
 * first, written to OUT: where the idle RSS lives. */
static void write_smaps_breakdown(int pid, const char *out)
{
    struct mapping {
        char name[160];
        long kb;
    } m[128];
    size_t n = 0;
    char path[64], line[512], cur[160] = "[anon]";
    FILE *f, *o;

    snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8], name[400];
        long kb;
        int got;

        if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
            size_t i;

            for (i = 0; i < n && strcmp(m[i].name, cur); i++)
                ;
            if (i == n && n < sizeof(m) / sizeof(m[0])) {
                snprintf(m[n].name, sizeof(m[n].name), "%s", cur);
                m[n++].kb = 0;
            }
            if (i < n)
                m[i].kb += kb;
            continue;
        }
        /* "start-end perms offset dev inode [path]" */
        name[0] = '\0';
        got = sscanf(line, "%lx-%lx %7s %*s %*s %*s %399[^\n]", &lo, &hi, perms, name);
        if (got < 3)
            continue;
        if (got == 4 && name[0] == '/')
            snprintf(cur, sizeof(cur), "%s", strrchr(name, '/') + 1);
        else if (got == 4 && name[0] == '[' && strcmp(name, "[heap]"))
            snprintf(cur, sizeof(cur), "%s", name); /* [stack], [vdso]... */
        else
            snprintf(cur, sizeof(cur), "%s", got == 4 ? name : "[anon]");
    }
    fclose(f);
    o = fopen(out, "w");
    if (!o)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t best = i;

        for (size_t j = i + 1; j < n; j++)
            if (m[j].kb > m[best].kb)
                best = j;
        if (best != i) {
            struct mapping t = m[i];

            m[i] = m[best];
            m[best] = t;
        }
        if (m[i].kb)
            fprintf(o, "%7ld kB  %s\n", m[i].kb, m[i].name);
    }
    fclose(o);
}

static void loadavg(char *out, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");

    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

/* ---- the stand-in's hooks ------------------------------------------------------ */

static void on_frame(void *arg, const char *text, size_t len)
{
    const char *p = memmem(text, len, "\"envelope_id\":\"b-", 17);
    unsigned long seq;

    (void)arg;
    if (!p)
        return;
    seq = strtoul(p + 17, NULL, 10);
    if (seq < B.nsent && !B.evs[seq].ack)
        B.evs[seq].ack = now_ns();
}

static void on_post(void *arg, const char *channel, const char *thread_ts, const char *text)
{
    const char *dot = strchr(thread_ts, '.');
    unsigned long seq;
    struct ev *e;

    (void)arg;
    (void)channel;
    if (!dot || strncmp(thread_ts, "18", 2))
        return;
    seq = strtoul(dot + 1, NULL, 10);
    if (seq >= B.nsent)
        return;
    e = &B.evs[seq];
    if (!e->echo)
        e->echo = now_ns();
    if (!e->done && strstr(text, " · chain ")) {
        e->done = now_ns();
        B.ndone++;
    }
}

/* ---- sending --------------------------------------------------------------------- */

static int send_one(void)
{
    char frame[1400], ts[32], ch[16];
    unsigned seq = B.nsent;
    int rc;

    if (seq >= MAX_EVENTS)
        return -1;
    snprintf(ts, sizeof(ts), "18%08u.%06u", seq / 1000000u, seq % 1000000u);
    snprintf(ch, sizeof(ch), "D0B%05u", seq % NCHAN);
    snprintf(frame, sizeof(frame),
             "{\"envelope_id\":\"b-%u\",\"type\":\"events_api\",\"payload\":{\"token\":"
             "\"verification-token\",\"team_id\":\"T0STANDIN\",\"api_app_id\":\"A0STANDIN\","
             "\"event\":{\"client_msg_id\":\"cm-b-%u\",\"type\":\"message\",\"text\":\"status of "
             "checkout in prod\",\"user\":\"UBENCH\",\"ts\":\"%s\",\"team\":\"T0STANDIN\","
             "\"blocks\":[{\"type\":\"rich_text\",\"block_id\":\"b%u\",\"elements\":[{\"type\":"
             "\"rich_text_section\",\"elements\":[{\"type\":\"text\",\"text\":\"status of "
             "checkout in prod\"}]}]}],\"channel\":\"%s\",\"event_ts\":\"%s\",\"channel_type\":"
             "\"im\"},\"type\":\"event_callback\",\"event_id\":\"Ev0BENCH%u\",\"event_time\":%lld,"
             "\"authorizations\":[{\"enterprise_id\":null,\"team_id\":\"T0STANDIN\",\"user_id\":"
             "\"UBOT\",\"is_bot\":true,\"is_enterprise_install\":false}],"
             "\"is_ext_shared_channel\":false,\"event_context\":\"4-bench\"},"
             "\"accepts_response_payload\":false,\"retry_attempt\":0,\"retry_reason\":\"\"}",
             seq, seq, ts, seq, ch, ts, seq, (long long)time(NULL));
    B.evs[seq].sent = now_ns();
    rc = slack_standin_raw(B.sd, frame);
    if (rc)
        return rc;
    B.nsent++;
    return 0;
}

static void pump(void)
{
    struct phase *p = B.cur;
    int64_t t = now_ns();
    unsigned target;

    if (!p || B.phase_over)
        return;
    if (p->rate > 0) {
        double due = p->rate * (double)(t - p->t0) / 1e9;

        target = due >= p->count ? p->count : (unsigned)due + 1;
    } else {
        unsigned inflight = (B.nsent - p->first) - (B.ndone - p->done);

        target = p->sent + (inflight < p->window ? p->window - inflight : 0);
        if (target > p->count)
            target = p->count;
    }
    while (p->sent < target && send_one() == 0) {
        p->sent++;
        p->t_last_sent = now_ns();
    }
    if (p->sent == p->count && B.ndone - p->done >= p->count) {
        B.phase_over = true;
    } else if (p->sent && t - p->t0 > PHASE_TIMEOUT_NS) {
        p->timed_out = true;
        B.phase_over = true;
    }
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    if (!B.t_hello && slack_standin_hellos(B.sd))
        B.t_hello = now_ns();
    pump();
}

/* ---- the child ----------------------------------------------------------------------- */

static void err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[65536];

    (void)h;
    (void)hint;
    buf->base = mem;
    buf->len = sizeof(mem);
}

static void err_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)st;
    if (n <= 0)
        return;
    if (getenv("BENCH_VERBOSE"))
        fwrite(buf->base, 1, (size_t)n, stderr);
    /* keep the last bytes to look for the ready line and to show on failure */
    if ((size_t)n >= sizeof(B.tail) - 1) {
        memcpy(B.tail, buf->base + n - (sizeof(B.tail) - 1), sizeof(B.tail) - 1);
        B.tail_len = sizeof(B.tail) - 1;
    } else {
        if (B.tail_len + (size_t)n >= sizeof(B.tail)) {
            size_t drop = B.tail_len + (size_t)n - (sizeof(B.tail) - 1);

            memmove(B.tail, B.tail + drop, B.tail_len - drop);
            B.tail_len -= drop;
        }
        memcpy(B.tail + B.tail_len, buf->base, (size_t)n);
        B.tail_len += (size_t)n;
    }
    B.tail[B.tail_len] = '\0';
    if (!B.t_ready && strstr(B.tail, "connected (Socket Mode"))
        B.t_ready = now_ns();
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    (void)p;
    B.exited = true;
    if (!B.phase_over && B.cur)
        fprintf(stderr, "bench: opsbot exited (status %lld, signal %d)\n", (long long)status, sig);
}

static void run_until(bool (*cond)(void), int64_t timeout_ns)
{
    int64_t end = now_ns() + timeout_ns;

    while (!cond() && now_ns() < end && !B.exited)
        uv_run(&B.loop, UV_RUN_ONCE);
}

static bool ready_cond(void)
{
    return B.t_ready != 0;
}

static bool phase_cond(void)
{
    return B.phase_over;
}

static bool drained_cond(void)
{
    return B.ndone >= B.nsent;
}

static bool never(void)
{
    return false;
}

/* ---- statistics ------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void pct(int64_t *v, size_t n, double *p50, double *p99, double *max)
{
    *p50 = *p99 = *max = -1;
    if (!n)
        return;
    qsort(v, n, sizeof(*v), cmp_i64);
    *p50 = (double)v[(n - 1) * 50 / 100] / 1e6;
    *p99 = (double)v[(n - 1) * 99 / 100] / 1e6;
    if (max)
        *max = (double)v[n - 1] / 1e6;
}

/* opsbot's /metrics through the project's HTTP client on the bench's loop,
 * between measurements (nothing is timed meanwhile). */
struct scrape {
    struct busy b;
    bool done;
};

/* One histogram family of the exposition text (no labels). A family with
 * no observation yet is not rendered: it reads as all zeros. */
static void parse_hist(const char *body, const char *family, struct hist *h)
{
    char key[96];
    const char *at;

    memset(h, 0, sizeof(*h));
    snprintf(key, sizeof(key), "\n%s_count ", family);
    if (!strstr(body, key)) {
        h->ok = true;
        return;
    }
    for (int i = 0; i < NBUSY; i++) {
        snprintf(key, sizeof(key), "%s_bucket{le=\"%s\"} ", family, busy_le[i]);
        at = strstr(body, key);
        if (!at)
            return;
        h->le[i] = strtol(at + strlen(key), NULL, 10);
    }
    snprintf(key, sizeof(key), "\n%s_sum ", family);
    at = strstr(body, key);
    if (!at)
        return;
    h->sum = strtod(at + strlen(key), NULL);
    h->ok = true;
}

static void scraped(void *data, const struct ob_http_resp *r)
{
    struct scrape *sc = data;
    const char *body = r->body ? r->body : "";

    sc->done = true;
    if (r->err || r->status != 200)
        return;
    parse_hist(body, "opsbot_loop_busy_seconds", &sc->b.loop);
    parse_hist(body, "opsbot_store_fsync_seconds", &sc->b.fsync);
}

static struct scrape *scraping;

static bool scrape_cond(void)
{
    return scraping->done;
}

static struct busy scrape_busy(void)
{
    struct scrape sc = {0};
    struct ob_http_req rq = {0};
    struct ob_http_call *call = NULL;
    char url[80];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", B.metrics_port);
    rq.method = "GET";
    rq.url = url;
    rq.timeout_ms = 5000;
    if (B.metrics_port <= 0 || !B.http || ob_http_request(B.http, &rq, scraped, &sc, &call))
        return sc.b;
    scraping = &sc;
    run_until(scrape_cond, 6000000000LL);
    if (!sc.done)
        ob_http_cancel(call); /* opsbot gone: no callback into this frame later */
    scraping = NULL;
    return sc.b;
}

static void busy_delta(struct phase *p, const struct busy *b0, const struct busy *b1)
{
    long d[NBUSY];

    p->turns = p->fsyncs = -1;
    if (b0->fsync.ok && b1->fsync.ok) {
        for (int i = 0; i < NBUSY; i++)
            d[i] = b1->fsync.le[i] - b0->fsync.le[i];
        p->fsyncs = d[NBUSY - 1];
        p->fsync_mean_ms = p->fsyncs ? (b1->fsync.sum - b0->fsync.sum) * 1000 / p->fsyncs : 0;
        p->fsync_over5 = p->fsyncs - d[3];  /* le 0.005 */
        p->fsync_over25 = p->fsyncs - d[5]; /* le 0.025 */
    }
    if (!b0->loop.ok || !b1->loop.ok)
        return;
    for (int i = 0; i < NBUSY; i++)
        d[i] = b1->loop.le[i] - b0->loop.le[i];
    p->turns = d[NBUSY - 1];
    p->loop_busy_s = b1->loop.sum - b0->loop.sum;
    p->over5 = p->turns - d[3];  /* le 0.005 */
    p->over10 = p->turns - d[4]; /* le 0.01 */
    p->over25 = p->turns - d[5]; /* le 0.025 */
    p->over50 = p->turns - d[6]; /* le 0.05 */
}

/* The share of the phase's wall time opsbot's loop was working. */
static double busy_pct(const struct phase *p)
{
    double wall = (double)(p->t_end - p->t0) / 1e9;

    return p->turns >= 0 && wall > 0 ? 100.0 * p->loop_busy_s / wall : -1;
}

/* OUT_DIR/latency-<phase>.csv: each event's send time in the phase and its
 * latencies (ms; empty when it never came), to see when a tail happened. */
static void write_latencies(const struct phase *p)
{
    char path[600], name[32];
    FILE *f;

    ob_strlcpy(name, p->name, sizeof(name));
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '-';
    snprintf(path, sizeof(path), "%s/latency-%s.csv", B.out, name);
    f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "sent_ms,ack_ms,echo_ms,done_ms\n");
    for (unsigned i = p->first; i < p->first + p->sent; i++) {
        const struct ev *x = &B.evs[i];

        fprintf(f, "%.3f,", (double)(x->sent - p->t0) / 1e6);
        if (x->ack)
            fprintf(f, "%.3f", (double)(x->ack - x->sent) / 1e6);
        fputc(',', f);
        if (x->echo)
            fprintf(f, "%.3f", (double)(x->echo - x->sent) / 1e6);
        fputc(',', f);
        if (x->done)
            fprintf(f, "%.3f", (double)(x->done - x->sent) / 1e6);
        fputc('\n', f);
    }
    fclose(f);
}

static void run_phase(struct phase *p)
{
    struct busy b0 = scrape_busy(), b1;
    double cpu0, self0, mach0, steal0 = 0, steal1 = 0;
    int64_t *a, *e, *d, last_done = 0;
    size_t na = 0, ne = 0, nd = 0;
    double unused;

    memset(&p->first, 0, sizeof(*p) - offsetof(struct phase, first));
    p->first = B.nsent;
    p->done = B.ndone;
    B.cur = p;
    B.phase_over = false;
    cpu0 = proc_cpu_s(B.pid);
    self0 = self_cpu_s();
    mach0 = machine_cpu_s(&steal0);
    p->t0 = now_ns();
    pump();
    run_until(phase_cond, PHASE_TIMEOUT_NS + 5000000000LL);
    p->t_end = now_ns();
    p->cpu_s = proc_cpu_s(B.pid) - cpu0;
    p->bench_cpu_s = self_cpu_s() - self0;
    p->other_cpu_s = machine_cpu_s(&steal1) - mach0 - p->cpu_s - p->bench_cpu_s;
    p->steal_s = steal1 - steal0;
    if (p->other_cpu_s < 0)
        p->other_cpu_s = 0;
    B.cur = NULL;
    loadavg(p->load, sizeof(p->load));
    p->hwm_kb = status_kb(B.pid, "VmHWM");
    p->rss_kb = status_kb(B.pid, "VmRSS");
    b1 = scrape_busy();
    busy_delta(p, &b0, &b1);

    a = calloc(p->sent + 1, sizeof(*a));
    e = calloc(p->sent + 1, sizeof(*e));
    d = calloc(p->sent + 1, sizeof(*d));
    for (unsigned i = p->first; i < p->first + p->sent; i++) {
        struct ev *x = &B.evs[i];

        if (x->ack)
            a[na++] = x->ack - x->sent;
        if (x->echo)
            e[ne++] = x->echo - x->sent;
        if (x->done) {
            d[nd++] = x->done - x->sent;
            if (x->done > last_done)
                last_done = x->done;
        }
    }
    write_latencies(p);
    p->acked = (unsigned)na;
    p->echoed = (unsigned)ne;
    p->done = (unsigned)nd;
    pct(a, na, &p->ack_p50, &p->ack_p99, &p->ack_max);
    pct(e, ne, &p->echo_p50, &p->echo_p99, &p->echo_max);
    pct(d, nd, &p->done_p50, &p->done_p99, &unused);
    p->wall_s = (double)((last_done ? last_done : p->t_end) - p->t0) / 1e9;
    p->achieved = p->wall_s > 0 ? nd / p->wall_s : 0;
    p->offered = p->t_last_sent > p->t0 && p->sent > 1
                     ? (p->sent - 1) / ((double)(p->t_last_sent - p->t0) / 1e9)
                     : 0;
    free(a);
    free(e);
    free(d);
    fprintf(stderr,
            "bench: %-10s sent %6u done %6u in %6.2fs = %8.0f ev/s (offered %8.0f) ack p50 %.3f "
            "p99 %.3f max %.3f ms; echo p50 %.3f p99 %.3f max %.3f ms; opsbot cpu %.2fs "
            "(%.3f s/1000 ev), bench cpu %.2fs, other %.2fs, steal %.2fs; rss %ld kB hwm %ld kB; "
            "loop busy "
            "%.0f%%, turns %ld, > 5/10/25/50 ms: %ld/%ld/%ld/%ld; fsyncs %ld mean %.2f ms, > "
            "5/25 ms: %ld/%ld; load %s%s\n",
            p->name, p->sent, p->done, p->wall_s, p->achieved, p->offered, p->ack_p50, p->ack_p99,
            p->ack_max, p->echo_p50, p->echo_p99, p->echo_max, p->cpu_s,
            p->sent ? p->cpu_s * 1000 / p->sent : 0, p->bench_cpu_s, p->other_cpu_s, p->steal_s,
            p->rss_kb, p->hwm_kb, busy_pct(p), p->turns, p->over5, p->over10, p->over25, p->over50,
            p->fsyncs, p->fsync_mean_ms, p->fsync_over5, p->fsync_over25, p->load,
            p->timed_out ? " TIMED OUT" : "");
}

/* ---- set-up ---------------------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -errno;
    fputs(text, f);
    return fclose(f) ? -errno : 0;
}

static int write_config(const char *root)
{
    char path[512], yaml[4096], url[160];
    const char *api = slack_standin_api_base(B.sd);

    /* http://127.0.0.1:PORT/api/ -> http://127.0.0.1:PORT/bench/ */
    snprintf(url, sizeof(url), "%.*sbench/", (int)(strlen(api) - 4), api);
    snprintf(yaml, sizeof(yaml),
             "# written by tests/bench/bench.c\n"
             "bot:\n  state: %s/opsbot.db\n  shutdown_grace: 1s\n"
             "platforms:\n  slack:\n    app_token: xapp-standin-app\n"
             "    bot_token: xoxb-standin-bot\n    api_base: %s\n    listen: mentions\n"
             "    min_post_interval: 0s\n"
             "actions:\n  include: [%s/intents/status.yaml]\n  bind:\n    status:\n"
             "      type: http\n      url: %sstatus/{service}/{env}\n      timeout: 10s\n"
             "policies:\n  include: policies/*.yaml\n"
             "metrics:\n  listen: \"127.0.0.1:%d\"\n",
             B.dir, api, root, url, B.metrics_port);
    snprintf(path, sizeof(path), "%s/opsbot.yaml", B.dir);
    if (write_file(path, yaml))
        return -1;
    snprintf(path, sizeof(path), "%s/policies", B.dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/policies/bench.yaml", B.dir);
    return write_file(path, "groups:\n  engineers: [slack:UBENCH]\n"
                            "rules:\n  - name: reads\n    group: engineers\n"
                            "    action: [status, help]\n    effect: allow\n");
}

static int spawn_opsbot(const char *bin)
{
    char cfg[300];
    char *args[5];
    uv_process_options_t o = {0};
    uv_stdio_container_t io[3];
    int rc;

    snprintf(cfg, sizeof(cfg), "%s/opsbot.yaml", B.dir);
    args[0] = (char *)bin;
    args[1] = (char[]){"run"};
    args[2] = (char[]){"-c"};
    args[3] = cfg;
    args[4] = NULL;
    uv_pipe_init(&B.loop, &B.errp, 0);
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = 2;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)&B.errp;
    o.file = bin;
    o.args = args;
    o.exit_cb = on_exit_cb;
    o.stdio = io;
    o.stdio_count = 3;
    B.t_spawn = now_ns();
    rc = uv_spawn(&B.loop, &B.proc, &o);
    if (rc) {
        fprintf(stderr, "bench: cannot start %s: %s\n", bin, uv_strerror(rc));
        return rc;
    }
    B.pid = B.proc.pid;
    return uv_read_start((uv_stream_t *)&B.errp, err_alloc, err_read);
}

/* ---- the report ------------------------------------------------------------------- */

static void cpu_model(char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];

    snprintf(out, len, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');

            if (c) {
                snprintf(out, len, "%s", c + 2);
                out[strcspn(out, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

static void json_phase(FILE *f, const struct phase *p, bool last)
{
    fprintf(f,
            "    {\"name\": \"%s\", \"offered_eps\": %.0f, \"events\": %u, \"acked\": %u, "
            "\"echoed\": %u, \"done\": %u, \"seconds\": %.3f, \"done_eps\": %.0f,\n"
            "     \"ack_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
            "\"echo_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
            "\"done_ms\": {\"p50\": %.3f, \"p99\": %.3f},\n"
            "     \"opsbot_cpu_s\": %.3f, \"opsbot_cpu_s_per_1000\": %.4f, \"bench_cpu_s\": "
            "%.3f, \"other_cpu_s\": %.3f, \"steal_s\": %.3f, \"opsbot_rss_kb\": %ld, "
            "\"opsbot_hwm_kb\": %ld, "
            "\"loop_busy_pct\": %.1f, \"loop_turns\": %ld, \"loop_turns_over_ms\": {\"5\": %ld, "
            "\"10\": %ld, \"25\": %ld, "
            "\"50\": %ld},\n     \"fsyncs\": %ld, \"fsync_mean_ms\": %.3f, "
            "\"fsyncs_over_ms\": {\"5\": %ld, \"25\": %ld},\n"
            "     \"loadavg\": \"%s\", \"timed_out\": %s}%s\n",
            p->name, p->rate > 0 ? p->rate : p->offered, p->sent, p->acked, p->echoed, p->done,
            p->wall_s, p->achieved, p->ack_p50, p->ack_p99, p->ack_max, p->echo_p50, p->echo_p99,
            p->echo_max, p->done_p50, p->done_p99, p->cpu_s,
            p->sent ? p->cpu_s * 1000 / p->sent : 0, p->bench_cpu_s, p->other_cpu_s, p->steal_s,
            p->rss_kb, p->hwm_kb, busy_pct(p), p->turns, p->over5, p->over10, p->over25, p->over50,
            p->fsyncs, p->fsync_mean_ms, p->fsync_over5, p->fsync_over25, p->load,
            p->timed_out ? "true" : "false", last ? "" : ",");
}

static int report(const char *out, struct phase *ph, size_t nph, const struct mem *idle,
                  const struct mem *after, long hwm_kb, double total_cpu, unsigned total_ev,
                  const char *load0)
{
    char path[512], cpu[160], when[64], line[512];
    struct utsname u;
    time_t t = time(NULL);
    FILE *f, *n;
    const struct phase *sat = &ph[nph - 1];
    double startup_ms = B.t_ready ? (double)(B.t_ready - B.t_spawn) / 1e6 : -1;

    uname(&u);
    cpu_model(cpu, sizeof(cpu));
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));

    snprintf(path, sizeof(path), "%s/results.json", out);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\n  \"when\": \"%s\",\n  \"machine\": {\"nproc\": %ld, \"cpu\": \"%s\", "
            "\"kernel\": \"%s %s\", \"loadavg_start\": \"%s\"},\n"
            "  \"setup\": \"Socket Mode + Web API on loopback, DM message events in %d channels, "
            "rule parser, status -> http executor GET on the stand-in, min_post_interval 0\",\n"
            "  \"startup_ms_to_ready\": %.1f,\n"
            "  \"idle_rss_kb\": %ld, \"idle_rss_after_load_kb\": %ld, \"peak_rss_kb\": %ld,\n"
            "  \"idle_pss_kb\": %ld, \"idle_uss_kb\": %ld, \"idle_anon_kb\": %ld, "
            "\"idle_shared_kb\": %ld,\n"
            "  \"after_load_pss_kb\": %ld, \"after_load_uss_kb\": %ld,\n"
            "  \"wal_mb_load_end\": %.1f, \"wal_mb_2s_later\": %.1f,\n"
            "  \"cpu_s_per_1000_events_all\": %.4f, \"saturation_eps\": %.0f,\n"
            "  \"phases\": [\n",
            when, sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release, load0, NCHAN,
            startup_ms, idle->rss, after->rss, hwm_kb, idle->pss, idle->uss, idle->anon,
            idle->shared, after->pss, after->uss, B.wal_mb[0], B.wal_mb[1],
            total_ev ? total_cpu * 1000 / total_ev : 0, sat->achieved);
    for (size_t i = 0; i < nph; i++)
        json_phase(f, &ph[i], i + 1 == nph);
    fprintf(f, "  ]\n}\n");
    fclose(f);

    snprintf(path, sizeof(path), "%s/RESULTS.md", out);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# opsbot benchmark results\n\n"
            "Written by `make bench` (tests/bench/bench.c) on %s; the machine-readable copy is "
            "`results.json`.\n\n"
            "**Machine:** %ld CPUs (nproc), %s, %s %s. Load average at the start: `%s`. "
            "The load source and the stand-in run in one process beside opsbot, so on this "
            "machine the two share the two cores; \"other CPU\" below is what every other "
            "process used during the phase (from /proc/stat), i.e. the load from other "
            "people's builds and tests at the time.\n\n"
            "**Setup:** the real `opsbot run` as a child process; Slack = the local stand-in "
            "(Socket Mode websocket through its relay + Web API, loopback); %d DM channels, "
            "user `UBENCH`, text `status of checkout in prod` (rule parser, no LLM); `status` "
            "bound to an `http` executor (GET on the stand-in, answered at once: the pipeline is "
            "measured, not fork/exec); policy allows it without approval; "
            "`min_post_interval: 0`; state DB on the root disk (WAL, synchronous=NORMAL, an fsync "
            "before each batch of action starts). Each request "
            "posts several messages into its thread; *echo* = the first, *done* = the last "
            "(`audit #N · chain …`).\n\n",
            when, sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release, load0, NCHAN);
    fprintf(f,
            "| phase | offered ev/s | events | done ev/s | ack p50 / p99 / max ms | echo p50 "
            "/ p99 / max ms | done p99 ms | opsbot CPU s /1000 ev | opsbot loop busy | opsbot loop "
            "turns (> 5 / 10 / 25 / 50 ms) | WAL fsyncs: mean ms (> 5 / 25 ms) | bench CPU s | "
            "other CPU s (steal) | load avg "
            "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < nph; i++) {
        const struct phase *p = &ph[i];

        fprintf(
            f,
            "| %s | %.0f | %u | %.0f | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.2f | "
            "%.3f | %.0f %% | %ld (%ld / %ld / %ld / %ld) | %ld: %.2f (%ld / %ld) | %.2f | %.2f "
            "(%.2f) | %.2f %.2f %.2f |\n",
            p->name, p->rate > 0 ? p->rate : p->offered, p->sent, p->achieved, p->ack_p50,
            p->ack_p99, p->ack_max, p->echo_p50, p->echo_p99, p->echo_max, p->done_p99,
            p->sent ? p->cpu_s * 1000 / p->sent : 0, busy_pct(p), p->turns, p->over5, p->over10,
            p->over25, p->over50, p->fsyncs, p->fsync_mean_ms, p->fsync_over5, p->fsync_over25,
            p->bench_cpu_s, p->other_cpu_s, p->steal_s, atof(p->load),
            atof(strchr(p->load, ' ') ? strchr(p->load, ' ') : "0"),
            atof(strchr(p->load, ' ') && strchr(strchr(p->load, ' ') + 1, ' ')
                     ? strchr(strchr(p->load, ' ') + 1, ' ')
                     : "0"));
    }
    fprintf(f,
            "\n| opsbot | measured |\n|---|---|\n"
            "| start-up to ready (spawn → `connected (Socket Mode` log line) | %.1f ms |\n"
            "| idle RSS after start (VmRSS) | %.1f MB |\n"
            "| … of it pages other running processes map too (shared libraries) | %.1f MB |\n"
            "| idle PSS after start (shared pages divided among their users) | %.1f MB |\n"
            "| idle USS after start (private: what this process alone costs) | %.1f MB |\n"
            "| idle anonymous memory after start (heap, stacks, JIT) | %.1f MB |\n"
            "| idle RSS / USS after the load | %.1f / %.1f MB |\n"
            "| WAL file when the load ended / 2 s later (cut back to 64 MB while quiet) | "
            "%.1f / %.1f MB |\n"
            "| peak RSS (VmHWM) | %.1f MB |\n"
            "| CPU s per 1000 events, whole run | %.3f |\n"
            "| events/s at saturation | %.0f |\n\n",
            startup_ms, idle->rss / 1024.0, idle->shared / 1024.0, idle->pss / 1024.0,
            idle->uss / 1024.0, idle->anon / 1024.0, after->rss / 1024.0, after->uss / 1024.0,
            B.wal_mb[0], B.wal_mb[1], hwm_kb / 1024.0, total_ev ? total_cpu * 1000 / total_ev : 0,
            sat->achieved);
    snprintf(path, sizeof(path), "%s/notes.md", out);
    n = fopen(path, "r");
    if (n) {
        while (fgets(line, sizeof(line), n))
            fputs(line, f);
        fclose(n);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    struct slack_standin_opts so = {0};
    struct slack_standin_hooks h = {0};
    bool quick = argc > 4 && !strcmp(argv[4], "quick");
    struct phase ph[] = {
        {.name = "warm-up", .rate = 500, .count = 500},
        {.name = "100/s", .rate = 100, .count = quick ? 200 : 500},
        {.name = "1000/s", .rate = 1000, .count = quick ? 2000 : 5000},
        {.name = "10000/s", .rate = 10000, .count = quick ? 5000 : 20000},
        {.name = "saturation", .rate = 0, .count = quick ? 5000 : 20000, .window = 1000},
    };
    size_t nph = sizeof(ph) / sizeof(ph[0]);
    struct mem idle, after;
    long hwm;
    double cpu_all;
    char load0[64], cmd[300];
    int rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: %s OPSBOT_BINARY SOURCE_ROOT OUT_DIR [quick]\n", argv[0]);
        return 64;
    }
    loadavg(load0, sizeof(load0));
    B.evs = calloc(MAX_EVENTS, sizeof(*B.evs));
    /* BENCH_TMP: where the state DB goes (default /tmp; /dev/shm shows the
     * pipeline without the disk's fsync) */
    snprintf(B.dir, sizeof(B.dir), "%s/opsbot-bench-XXXXXX",
             getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp");
    if (!mkdtemp(B.dir) || uv_loop_init(&B.loop))
        return 1;
    so.ack_deadline_ms = 60000;
    if (slack_standin_new(&B.sd, &B.loop, &so))
        return 1;
    h.on_frame = on_frame;
    h.on_post = on_post;
    h.lean = true;
    slack_standin_set_hooks(B.sd, &h);
    B.metrics_port = standin_free_port();
    if (ob_http_new(&B.http, &B.loop))
        B.http = NULL; /* the loop-turn columns then read -1 */
    if (write_config(argv[2]) || spawn_opsbot(argv[1]))
        goto out;
    uv_timer_init(&B.loop, &B.tick);
    uv_timer_start(&B.tick, tick_cb, 1, 1);
    run_until(ready_cond, 10000000000LL);
    if (!B.t_ready) {
        fprintf(stderr, "bench: opsbot did not become ready; its log:\n%s\n", B.tail);
        goto out;
    }
    fprintf(stderr, "bench: ready in %.1f ms (hello at %.1f ms)\n",
            (double)(B.t_ready - B.t_spawn) / 1e6,
            B.t_hello ? (double)(B.t_hello - B.t_spawn) / 1e6 : -1.0);
    /* idle: past the quiet second after which opsbot hands start-up's
     * freed heap back (TRIM_AFTER_MS in src/core.h) */
    run_until(never, 2000000000LL);
    idle = mem_now(B.pid);
    B.out = argv[3];
    snprintf(cmd, sizeof(cmd), "%s/idle-mappings.txt", argv[3]);
    write_smaps_breakdown(B.pid, cmd);
    for (size_t i = 0; i < nph && !B.exited; i++) {
        run_phase(&ph[i]);
        /* a phase that timed out drains before the next (not measured) */
        run_until(drained_cond, 30000000000LL);
        run_until(never, 300000000LL); /* let stragglers and the WAL settle */
    }
    if (B.exited) {
        fprintf(stderr, "bench: opsbot died; its log:\n%s\n", B.tail);
        goto out;
    }
    B.wal_mb[0] = wal_mb_now();
    run_until(never, 2000000000LL); /* opsbot trims its heap after 1 s of quiet */
    B.wal_mb[1] = wal_mb_now();
    after = mem_now(B.pid);
    snprintf(cmd, sizeof(cmd), "%s/after-load-mappings.txt", argv[3]);
    write_smaps_breakdown(B.pid, cmd);
    hwm = status_kb(B.pid, "VmHWM");
    cpu_all = proc_cpu_s(B.pid);
    fprintf(stderr,
            "bench: idle rss %ld kB (pss %ld, uss %ld, anon %ld), after load rss %ld kB (uss "
            "%ld), peak %ld kB, cpu %.2f s for %u events; WAL file %.1f MB, 2 s later %.1f MB\n",
            idle.rss, idle.pss, idle.uss, idle.anon, after.rss, after.uss, hwm, cpu_all, B.nsent,
            B.wal_mb[0], B.wal_mb[1]);
    /* the last phase must not be empty for the report */
    rc = report(argv[3], ph, nph, &idle, &after, hwm, cpu_all, B.nsent, load0) ? 1 : 0;
    if (B.ndone != B.nsent) /* a backlog when the run ended, not a loss */
        fprintf(stderr, "bench: %u of %u events still in flight at the end\n", B.nsent - B.ndone,
                B.nsent);
out:
    if (B.pid && !B.exited) {
        uv_process_kill(&B.proc, SIGTERM);
        run_until(never, 3000000000LL);
        if (!B.exited)
            uv_process_kill(&B.proc, SIGKILL);
    }
    if (B.proc.loop)
        uv_close((uv_handle_t *)&B.proc, NULL);
    if (B.errp.loop)
        uv_close((uv_handle_t *)&B.errp, NULL);
    if (B.tick.loop)
        uv_close((uv_handle_t *)&B.tick, NULL);
    slack_standin_free(B.sd);
    ob_http_free(B.http);
    uv_run(&B.loop, UV_RUN_DEFAULT);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", B.dir);
    if (system(cmd))
        fprintf(stderr, "bench: cannot remove %s\n", B.dir);
    free(B.evs);
    return rc;
}
