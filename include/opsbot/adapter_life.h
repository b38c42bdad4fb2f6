/* The stop / drain / close / free sequence shared by the chat adapters that
 * own a send queue, uv timers and an HTTP client (Slack, Discord, Teams).
 *
 *   stop   ob_life_stop sets `stopping`; the adapter stops listening, then
 *          calls ob_life_close_handles with its drain period (0 when nothing
 *          is queued or in flight). What the core still posts meanwhile is
 *          delivered.
 *   drain  when the period ends (or earlier: the adapter calls
 *          ob_life_close_handles(l, 0) once its queue is empty), what is
 *          still queued fails with OB_ETIMEOUT through the post callbacks,
 *          while the core is still there; then the handles close.
 *   close  `closed` is set, the release hook stops every source of
 *          callbacks, and the adapter's timers and the drain timer close.
 *   free   ob_life_free closes first when that has not happened yet; the
 *          destroy hook frees the adapter in the last close callback (at
 *          once when none is pending). Nothing may touch the adapter after
 *          ob_life_free.
 *
 * Nothing here runs inside the call that asked for it, except ob_life_free's
 * release hook and (with no close pending) its destroy hook.
 */
#ifndef OPSBOT_ADAPTER_LIFE_H
#define OPSBOT_ADAPTER_LIFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* The adapter's part; ctx is the pointer given to ob_life_init. */
struct ob_life_ops {
    const char *name; /* log component, e.g. "slack" */
    /* Messages still queued (reported when the drain gives up on them). */
    size_t (*queued)(void *ctx);
    /* Fails what is still queued with OB_ETIMEOUT, calling the post
     * callbacks. */
    void (*fail_queued)(void *ctx);
    /* Stops everything that could call back for good: listeners,
     * connections, HTTP calls and queued messages (all without callbacks),
     * the HTTP client. Runs once, with `closed` already set. */
    void (*release)(void *ctx);
    /* Frees the adapter. Runs once, when no close callback is pending. */
    void (*destroy)(void *ctx);
};

#define OB_LIFE_MAX_TIMERS 8

struct ob_life {
    bool stopping; /* stop or free was called (adapters read it; only this module writes) */
    bool closed;   /* the handles are closing or closed (likewise) */
    bool freed;    /* free was called: destroy follows the last close callback */
    int closing;   /* handles whose close callback is pending */
    uv_timer_t drain;
    uv_timer_t *timers[OB_LIFE_MAX_TIMERS]; /* the adapter's, closed with drain */
    size_t ntimers;
    const struct ob_life_ops *ops;
    void *ctx;
};

/* Initialises the drain timer and the adapter's timers (timers: a NULL-
 * terminated list; each gets data = ctx and is closed with the rest). l
 * must be zeroed; ops must outlive it. Returns OB_E2BIG, touching nothing,
 * for more than OB_LIFE_MAX_TIMERS timers. */
int ob_life_init(struct ob_life *l, uv_loop_t *loop, const struct ob_life_ops *ops, void *ctx,
                 uv_timer_t *const *timers);

/* Sets `stopping`; false when it was already set (stop again or after free:
 * the caller does nothing more). */
bool ob_life_stop(struct ob_life *l);

/* Fails what is queued and closes the handles after_ms from now (0: on the
 * next loop turn, so it is safe from inside any callback). A later call
 * replaces the wait; no-op once closed. */
void ob_life_close_handles(struct ob_life *l, uint64_t after_ms);

/* Sets `stopping`, closes (queued messages are dropped without callbacks)
 * and frees the adapter once the last close callback has run. */
void ob_life_free(struct ob_life *l);

#endif
