/* The end-to-end fixture of the chat adapter tests (tests/integration/
 * test_slack.c, test_discord.c, test_teams.c) and of the fault matrix
 * (test_faults.c): the real pipeline
 * (ob_bundle_load, ob_bot_new, ob_bot_start) on one loop, next to the
 * test's stand-in, in a fresh state directory, with stderr captured into
 * DIR/log (shown when the test ends).
 *
 * A test embeds struct e2e first in its own fixture and, in order:
 * e2e_begin() (directory, capture, loop), makes its stand-in on e->loop and
 * sets the environment the configuration reads, e2e_start_bot(), then
 * drives the test; e2e_end() (also the cmocka teardown, after a failed
 * assertion) stops the bot, frees the stand-in through the hooks, closes
 * the loop (asserting every handle was closed) and removes the directory.
 */
#ifndef OPSBOT_E2E_FIXTURE_H
#define OPSBOT_E2E_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "standin_wait.h"

struct e2e;
struct ob_bot;
struct ob_diag;
struct ob_http;

struct e2e_hooks {
    /* "slack": the directory /tmp/ob-slack-XXXXXX, the configuration
     * tests/data/slack/CONFIG. */
    const char *name;
    /* Frees the test's stand-in (after the bot). */
    void (*free_standin)(struct e2e *e);
    /* After ob_bot_shutdown(): first wait (up to 5 s) until nothing is in
     * flight, so that posts still on their way are delivered. */
    bool drain_inflight;
    /* Environment variables a test may set: unset when it ends (NULL-ended). */
    const char *const *env;
    /* Show the captured log only after a failed test (ended by
     * e2e_teardown), and then its last 64 KiB: for tests with large logs. */
    bool log_on_failure;
};

struct e2e {
    uv_loop_t loop;
    struct ob_bot *bot;
    struct ob_http *http; /* a client for the test's own requests (e2e_http_post) */
    char dir[256];
    char log[320];
    const struct e2e_hooks *hooks;
    struct standin_waiter waiter;
    int saved_err;
    bool capturing;
    bool running;
};

/* OB_SOURCE_ROOT, or ".." (a build directory in the source tree). */
const char *e2e_src_root(void);
/* The whole file at path (malloc'd; "" when it cannot be read). */
char *e2e_slurp(const char *path);
/* How many times needle occurs in text. */
size_t e2e_count_in(const char *text, const char *needle);
/* rm -rf dir (a problem printed). */
void e2e_remove_dir(const char *dir);

void e2e_begin(struct e2e *e, const struct e2e_hooks *hooks);
/* Loads tests/data/NAME/config (any problem printed) and starts the bot. */
void e2e_start_bot(struct e2e *e, const char *config);
void e2e_end(struct e2e *e);
/* A cmocka teardown: ends the test in progress, if any. */
int e2e_teardown(void **state);

/* The captured log so far. */
bool e2e_log_has(struct e2e *e, const char *needle);
size_t e2e_log_count(struct e2e *e, const char *needle);

/* Runs the loop until done(e, arg) is true or timeout_ms passed; returns
 * whether done became true. done NULL = just run for timeout_ms. */
bool e2e_wait(struct e2e *e, bool (*done)(struct e2e *, void *), void *arg, int64_t timeout_ms);
/* ... until the log has needle. */
bool e2e_wait_log(struct e2e *e, const char *needle, int64_t timeout_ms);
/* ... until the bot has exited with a non-zero status (fatal). */
bool e2e_wait_exit(struct e2e *e, int64_t timeout_ms);
/* ... until the bot has nothing in flight. */
bool e2e_wait_idle(struct e2e *e, int64_t timeout_ms);

/* An HTTP answer. */
struct e2e_http_res {
    bool done;
    long status;
    char body[512];
};

/* POSTs body to url with headers (NULL-ended) on e->http (made on first
 * use), timeout_ms for the whole request, and runs the loop until the
 * answer (asserted). Returns its status. */
long e2e_http_post(struct e2e *e, const char *url, const char *const *headers, const char *body,
                   int64_t timeout_ms, struct e2e_http_res *r);

/* A free TCP port on 127.0.0.1 (for a listener the bot opens). */
int e2e_free_port(void);

/* Whether a line of d contains needle. */
bool e2e_diag_has(const struct ob_diag *d, const char *needle);

#endif
