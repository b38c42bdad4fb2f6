/* Normalised inbound events and the adapter interface.
 *
 * An adapter turns a platform's wire traffic into struct ob_event and
 * offers a few operations back: post (in a thread), update, react. Every
 * adapter is a static const struct ob_adapter_ops plus a per-instance
 * struct ob_adapter.
 */
#ifndef OPSBOT_EVENT_H
#define OPSBOT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opsbot/config.h"

enum ob_event_kind {
    OB_EV_MESSAGE,
    OB_EV_REACTION_ADD,
    OB_EV_REACTION_REMOVE,
    OB_EV_BUTTON, /* approve / deny button press: emoji holds "approve"|"deny" */
};

/* All strings borrowed for the duration of the on_event call. */
struct ob_event {
    enum ob_event_kind kind;
    const char *id;        /* platform-unique event id, claimed for idempotency */
    const char *platform;  /* "console", "slack", ... */
    const char *user;      /* platform user id ("dev"; qualified by the core) */
    const char *user_name; /* display name, may be NULL */
    const char *channel;
    const char *thread;  /* thread root message id; NULL for a new root */
    const char *message; /* message: its own id; reaction/button: the target */
    const char *text;    /* message text (UTF-8) */
    size_t text_len;
    const char *emoji; /* reaction name without colons, or button value */
    bool addressed;    /* DM, mention, or console: the bot is being spoken to */
};

/* Where a bot message goes / went. */
struct ob_msgref {
    char channel[128];
    char thread[128];  /* thread root; "" for channel level */
    char message[128]; /* the message itself (after post) */
};

enum ob_post_flags {
    OB_POST_QUESTION = 1 << 0, /* the bot asks `ask_user` something */
    OB_POST_APPROVAL = 1 << 1, /* an approval request: reactions / buttons */
    OB_POST_RESOLVED = 1 << 2, /* update: the approval is no longer open */
    /* A pick message (diagnosis proposals): people choose one of N numbered
     * choices (N in bits 8..11, OB_POST_NCHOICES) with a reaction (one,
     * two, three / the keycap emoji) or a button sending OB_EV_BUTTON with
     * emoji "pick:N". Adapters without buttons need do nothing. */
    OB_POST_CHOICES = 1 << 3,
};

#define OB_POST_WITH_CHOICES(n) (OB_POST_CHOICES | (((unsigned)(n)&0xfu) << 8))
#define OB_POST_NCHOICES(flags) ((((unsigned)(flags)) >> 8) & 0xfu)

struct ob_post {
    const char *channel;
    const char *thread; /* NULL or "" = channel level */
    const char *text;   /* already redacted */
    unsigned flags;
    const char *ask_user; /* with OB_POST_QUESTION: who is asked (raw id) */
};

struct ob_adapter;

/* Post completion: ref filled on success (status 0). */
typedef void (*ob_post_cb)(void *data, int status, const struct ob_msgref *ref);

enum ob_adapter_flags {
    /* Message ids are not stable across restarts (the console): restored
     * approvals are re-announced and only the new message takes votes. */
    OB_ADAPTER_EPHEMERAL_IDS = 1 << 0,
};

struct ob_adapter_ops {
    const char *name;
    unsigned flags;
    int (*start)(struct ob_adapter *ad);
    int (*post)(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data);
    int (*update)(struct ob_adapter *ad, const struct ob_msgref *ref, const struct ob_post *p);
    int (*react)(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji);
    /* Stop taking input and close handles (the loop then drains). */
    void (*stop)(struct ob_adapter *ad);
    void (*free)(struct ob_adapter *ad);
    /* Optional: the core calls it whenever in-flight work drops to zero. */
    void (*idle)(struct ob_adapter *ad);
    /* Optional: connected and taking events (for /readyz); adapters
     * without it count as ready. */
    bool (*ready)(struct ob_adapter *ad);
};

typedef void (*ob_event_cb)(void *data, struct ob_adapter *ad, const struct ob_event *ev);

struct ob_adapter {
    const struct ob_adapter_ops *ops;
    uv_loop_t *loop;
    void *ctx;            /* adapter-private */
    ob_event_cb on_event; /* set by the core */
    void *on_event_data;
    /* Set by the core: work in flight (running or queued actions, pending
     * posts); approvals waiting for a person do not count. */
    size_t (*inflight)(void *core);
    /* Set by the core: approvals still waiting for people. */
    size_t (*pending_approvals)(void *core);
    /* Set by the core: graceful stop of the whole process (console EOF). */
    void (*shutdown)(void *core);
    /* Set by the core: the adapter cannot go on (credentials rejected, ...).
     * why is one line for the log; the core logs it, stops and exits
     * non-zero. */
    void (*fatal)(void *core, const char *why);
};

static inline int ob_adapter_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb,
                                  void *data)
{
    return ad->ops->post(ad, p, cb, data);
}

static inline int ob_adapter_update(struct ob_adapter *ad, const struct ob_msgref *ref,
                                    const struct ob_post *p)
{
    return ad->ops->update(ad, ref, p);
}

#endif
