/* The adapters' stop / drain / close / free sequence
 * (include/opsbot/adapter_life.h). */
#include "opsbot/adapter_life.h"

#include "opsbot/err.h"
#include "opsbot/log.h"

static void closed_cb(uv_handle_t *h)
{
    struct ob_life *l = h->data;

    if (--l->closing == 0 && l->freed)
        l->ops->destroy(l->ctx);
}

static void life_close(struct ob_life *l)
{
    if (l->closed)
        return;
    l->closed = true;
    l->ops->release(l->ctx);
    for (size_t i = 0; i <= l->ntimers; i++) {
        uv_timer_t *t = i < l->ntimers ? l->timers[i] : &l->drain;

        t->data = l; /* no timer callback runs after uv_close */
        l->closing++;
        uv_close((uv_handle_t *)t, closed_cb);
    }
}

static void drain_cb(uv_timer_t *t)
{
    struct ob_life *l = t->data;
    size_t n = l->ops->queued(l->ctx);

    if (n)
        ob_warn(l->ops->name, "stopping: %zu queued message(s) not delivered", n);
    /* Callbacks for what is dropped, while the core is still there. */
    l->ops->fail_queued(l->ctx);
    life_close(l);
}

int ob_life_init(struct ob_life *l, uv_loop_t *loop, const struct ob_life_ops *ops, void *ctx,
                 uv_timer_t *const *timers)
{
    size_t n = 0;

    while (timers[n])
        if (++n > OB_LIFE_MAX_TIMERS)
            return OB_E2BIG;
    l->ops = ops;
    l->ctx = ctx;
    uv_timer_init(loop, &l->drain);
    l->drain.data = l;
    for (size_t i = 0; i < n; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = ctx;
        l->timers[i] = timers[i];
    }
    l->ntimers = n;
    return 0;
}

bool ob_life_stop(struct ob_life *l)
{
    if (l->stopping)
        return false;
    l->stopping = true;
    return true;
}

void ob_life_close_handles(struct ob_life *l, uint64_t after_ms)
{
    if (!l->closed)
        uv_timer_start(&l->drain, drain_cb, after_ms, 0);
}

void ob_life_free(struct ob_life *l)
{
    l->stopping = true;
    life_close(l);
    l->freed = true;
    if (l->closing == 0)
        l->ops->destroy(l->ctx);
}
