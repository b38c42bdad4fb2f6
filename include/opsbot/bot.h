/* The core: owns the loop's pipeline (adapter -> intent -> policy ->
 * approval -> executor -> audit), the state store and the adapters. Only
 * this module knows the order of the stages.
 */
#ifndef OPSBOT_BOT_H
#define OPSBOT_BOT_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "opsbot/config.h"
#include "opsbot/event.h"

struct ob_bot;

/* Everything that is reloaded together on SIGHUP. */
struct ob_bundle;

/* Loads and validates the whole configuration (config, catalog, policy,
 * redaction, executor bindings). Problems go into d; returns 0 or
 * OB_ECONFIG. */
int ob_bundle_load(struct ob_bundle **out, const char *path, struct ob_diag *d);
void ob_bundle_unref(struct ob_bundle *b);
/* One-screen summary for check-config. */
void ob_bundle_summary(const struct ob_bundle *b, void *file);
const struct ob_config *ob_bundle_config(const struct ob_bundle *b);
const struct ob_policy *ob_bundle_policy(const struct ob_bundle *b);
const struct ob_catalog *ob_bundle_catalog(const struct ob_bundle *b);
/* The state database path from bot.state, resolved against the config dir
 * (malloc'd). */
char *ob_bundle_state_path(const struct ob_bundle *b);

/* Takes the bundle reference (also on failure). Opens the store. */
int ob_bot_new(struct ob_bot **out, uv_loop_t *loop, struct ob_bundle *b, const char *config_path);
/* Attaches an adapter (the bot owns it from now on, also on failure). */
int ob_bot_add_adapter(struct ob_bot *bot, struct ob_adapter *ad);
/* Starts the adapters, then restores pending approvals from the store
 * (overdue ones expire, live ones are re-armed and, on adapters whose
 * message ids do not survive a restart, re-announced). */
int ob_bot_start(struct ob_bot *bot);
/* Installs SIGHUP (reload), SIGTERM/SIGINT (graceful stop). With hold the
 * signal handles keep the loop alive (the daemon); without, the adapters
 * decide when the loop ends (the console at end of input). */
int ob_bot_handle_signals(struct ob_bot *bot, bool hold);
/* Reloads the configuration; a bad one is refused and the old kept. */
int ob_bot_reload(struct ob_bot *bot);
/* Stops taking input, waits for running actions (up to bot.shutdown_grace),
 * flushes, and closes all handles; uv_run then returns. */
void ob_bot_shutdown(struct ob_bot *bot);
/* Frees after the loop has drained. */
void ob_bot_free(struct ob_bot *bot);
size_t ob_bot_inflight(const struct ob_bot *bot);
/* Adapters attached (the console and every configured platform). */
size_t ob_bot_adapter_count(const struct ob_bot *bot);
/* Exit status for the process (non-zero after a fatal adapter error). */
int ob_bot_exit_status(const struct ob_bot *bot);

#endif
