/* What every stand-in (Slack, Discord, Teams) offers its tests for waiting:
 * running the caller's loop until a condition holds or a deadline passes
 * (event-driven: UV_RUN_ONCE plus a deadline timer, no sleeps), and
 * looking for, counting and waiting for the posts it recorded.
 *
 * A stand-in embeds a struct standin_waiter and states its typed functions
 * once with STANDIN_DEFINE_WAITS (below).
 */
#ifndef OPSBOT_STANDIN_WAIT_H
#define OPSBOT_STANDIN_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct standin_waiter {
    uv_timer_t timer; /* its data is the owner's, for the owner's close callback */
    bool expired;
};

/* Initialises the deadline timer on loop; owner becomes timer.data. The
 * owner closes the timer (uv_close) when it goes. */
void standin_waiter_init(struct standin_waiter *w, uv_loop_t *loop, void *owner);

/* Runs the loop until done(ctx) is true or timeout_ms passed; returns
 * whether done became true. done NULL = just run for timeout_ms. */
bool standin_waiter_run(struct standin_waiter *w, bool (*done)(void *ctx), void *ctx,
                        int64_t timeout_ms);

/* Finds the first recorded post at or after from whose text contains
 * needle: its index, or -1. */
typedef long (*standin_find_fn)(const void *standin, const char *needle, size_t from);

/* How many recorded posts contain needle. */
size_t standin_count_found(standin_find_fn find, const void *standin, const char *needle);
/* Runs the loop until a post contains needle; its index, or -1 after
 * timeout_ms. */
long standin_wait_found(struct standin_waiter *w, standin_find_fn find, const void *standin,
                        const char *needle, int64_t timeout_ms);
/* Runs the loop until at least n posts contain needle; whether they did
 * within timeout_ms. */
bool standin_wait_count(struct standin_waiter *w, standin_find_fn find, const void *standin,
                        const char *needle, size_t n, int64_t timeout_ms);

/* Defines, for a stand-in `struct P` with a `struct standin_waiter waiter`
 * member and P_find_post(), the functions its header declares:
 *   bool P_wait(struct P *, bool (*cond)(struct P *, void *), void *arg, int64_t timeout_ms)
 *   long P_wait_post(struct P *, const char *needle, int64_t timeout_ms)
 *   size_t P_count_posts(const struct P *, const char *needle)
 *   bool P_wait_posts(struct P *, const char *needle, size_t n, int64_t timeout_ms)
 */
#define STANDIN_DEFINE_WAITS(P)                                                                    \
    struct P##_cond_call {                                                                         \
        struct P *s;                                                                               \
        bool (*cond)(struct P *, void *);                                                          \
        void *arg;                                                                                 \
    };                                                                                             \
                                                                                                   \
    static bool P##_cond_done(void *ctx)                                                           \
    {                                                                                              \
        struct P##_cond_call *c = ctx;                                                             \
                                                                                                   \
        return c->cond(c->s, c->arg);                                                              \
    }                                                                                              \
                                                                                                   \
    static long P##_find_any(const void *s, const char *needle, size_t from)                       \
    {                                                                                              \
        return P##_find_post(s, needle, from);                                                     \
    }                                                                                              \
                                                                                                   \
    bool P##_wait(struct P *s, bool (*cond)(struct P *, void *), void *arg, int64_t timeout_ms)    \
    {                                                                                              \
        struct P##_cond_call c = {s, cond, arg};                                                   \
                                                                                                   \
        return standin_waiter_run(&s->waiter, cond ? P##_cond_done : NULL, &c, timeout_ms);        \
    }                                                                                              \
                                                                                                   \
    long P##_wait_post(struct P *s, const char *needle, int64_t timeout_ms)                        \
    {                                                                                              \
        return standin_wait_found(&s->waiter, P##_find_any, s, needle, timeout_ms);                \
    }                                                                                              \
                                                                                                   \
    size_t P##_count_posts(const struct P *s, const char *needle)                                  \
    {                                                                                              \
        return standin_count_found(P##_find_any, s, needle);                                       \
    }                                                                                              \
                                                                                                   \
    bool P##_wait_posts(struct P *s, const char *needle, size_t n, int64_t timeout_ms)             \
    {                                                                                              \
        return standin_wait_count(&s->waiter, P##_find_any, s, needle, n, timeout_ms);             \
    }

#endif
