/* Waiting on a stand-in's loop and on its recorded posts: see standin_wait.h. */
#include "standin_wait.h"

static void expired_cb(uv_timer_t *t)
{
    struct standin_waiter *w =
        (struct standin_waiter *)((char *)t - offsetof(struct standin_waiter, timer));

    w->expired = true;
}

void standin_waiter_init(struct standin_waiter *w, uv_loop_t *loop, void *owner)
{
    uv_timer_init(loop, &w->timer);
    w->timer.data = owner;
    w->expired = false;
}

bool standin_waiter_run(struct standin_waiter *w, bool (*done)(void *ctx), void *ctx,
                        int64_t timeout_ms)
{
    bool ok = false;

    w->expired = false;
    uv_timer_start(&w->timer, expired_cb, (uint64_t)timeout_ms, 0);
    for (;;) {
        if (done && done(ctx)) {
            ok = true;
            break;
        }
        if (w->expired)
            break;
        uv_run(w->timer.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&w->timer);
    return ok;
}

size_t standin_count_found(standin_find_fn find, const void *standin, const char *needle)
{
    size_t n = 0;

    for (long i = find(standin, needle, 0); i >= 0; i = find(standin, needle, (size_t)i + 1))
        n++;
    return n;
}

struct found_wait {
    standin_find_fn find;
    const void *standin;
    const char *needle;
    size_t n;   /* posts wanted */
    long first; /* index of the first one, -1 = none yet */
};

static bool found_done(void *ctx)
{
    struct found_wait *f = ctx;

    f->first = f->find(f->standin, f->needle, 0);
    if (f->n <= 1)
        return f->n == 0 || f->first >= 0;
    return standin_count_found(f->find, f->standin, f->needle) >= f->n;
}

long standin_wait_found(struct standin_waiter *w, standin_find_fn find, const void *standin,
                        const char *needle, int64_t timeout_ms)
{
    struct found_wait f = {find, standin, needle, 1, -1};

    standin_waiter_run(w, found_done, &f, timeout_ms);
    return f.first;
}

bool standin_wait_count(struct standin_waiter *w, standin_find_fn find, const void *standin,
                        const char *needle, size_t n, int64_t timeout_ms)
{
    struct found_wait f = {find, standin, needle, n, -1};

    return standin_waiter_run(w, found_done, &f, timeout_ms);
}
