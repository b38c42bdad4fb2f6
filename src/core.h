/* Private to the core (bot.c and approvals.c): the bot, its requests and
 * its pending approvals, and the helpers both files use. */
#ifndef OPSBOT_CORE_PRIV_H
#define OPSBOT_CORE_PRIV_H

#include <cjson/cJSON.h>

#include "bundle.h"
#include "opsbot/approval.h"
#include "opsbot/audit.h"
#include "opsbot/store.h"

#define MAX_ADAPTERS 8
#define RECENT_APPROVALS 256
#define AUDIT_OUTPUT_CAP 4096
#define CTX_RING 64 /* recent thread messages kept for llm.context_messages */
#define CTX_TEXT 512
#define TRIM_AFTER_MS 1000
#define TIDY_TICK_MS 5      /* between two steps of the state file's quiet upkeep */
#define RUNNING_HOLD_MS 500 /* a result within this shares the "running:" message */

enum req_state { RQ_NEW, RQ_ASKING, RQ_DECIDING, RQ_RUNNING, RQ_DONE };

struct ob_request {
    struct ob_request *next;
    struct ob_bot *bot;
    struct ob_bundle *bundle; /* reference: the catalog the proposal points into */
    struct ob_adapter *ad;
    enum req_state state;
    char id[32];
    char platform[32];
    char user[160];     /* qualified */
    char raw_user[128]; /* as the platform knows it */
    char channel[128];
    char thread[128]; /* where the bot answers */
    struct ob_proposal prop;
    int64_t ask_deadline_ms;
    int asks;
    int64_t last_audit_id;
    char last_hash[OB_HASH_HEX];
    /* The "running:" message (with the steps said before it in the same
     * message), edited in place with progress lines. */
    char *running_text;
    /* Plain steps gathered for one message (bot.c say_*), posted at the
     * end of the loop turn or when the request ends. */
    char *say;
    struct ob_request *next_say; /* in bot->saying */
    bool running_held;           /* "running:" not posted yet (bot.c running_hold) */
    int64_t hold_until_ms;
    struct ob_request *next_hold; /* in bot->held */
    struct ob_msgref running_ref;
    bool has_running_ref;
    int post_refs;                 /* posts whose callback still points here */
    struct ob_request *next_start; /* in bot->start_queue */
    struct ob_exec_start_opts start_opts;
    bool dead; /* ended while post_refs > 0: freed by the last callback */
};

/* One recent message of a thread (LLM context), already redacted. */
struct ctx_msg {
    char thread[300]; /* platform/channel/thread root */
    char text[CTX_TEXT];
};

struct parse_job;
struct post_ctx;

/* Actions queued in one loop turn, waiting for the fsync that makes their
 * "started" records durable (bot.c flush_cb). */
struct start_batch {
    struct start_batch *next;
    struct ob_bot *bot;
    struct ob_request *reqs; /* linked by next_start */
};
struct dx_run;

struct pending {
    struct pending *next;
    struct ob_approval ap;
    struct ob_adapter *ad;
};

struct ob_bot {
    uv_loop_t *loop;
    struct ob_bundle *bundle;
    char *config_path;
    struct ob_store *store;
    struct ob_exec *exec;
    struct ob_lws *lws;   /* created when a network platform is configured */
    struct ob_http *http; /* created when a network platform is configured */
    struct ob_adapter *adapters[MAX_ADAPTERS];
    size_t nadapters;
    struct ob_llm *llm;                /* created on the first LLM parse */
    struct parse_job *parses;          /* messages waiting for the LLM */
    size_t parsing;                    /* counted in ob_bot_inflight */
    struct ob_metrics_server *metrics; /* metrics.listen */
    struct ctx_msg ctx[CTX_RING];
    size_t ctx_next;
    struct ob_request *requests; /* asking or running */
    struct ob_request *saying;   /* requests with gathered text (bot.c say_*) */
    struct ob_request **saying_tail;
    bool say_dirty; /* gathered since the last flush */
    /* Started actions whose "running:" line waits RUNNING_HOLD_MS to share
     * a message with their result (deadline order). */
    struct ob_request *held, **hold_tail;
    uv_timer_t hold_timer;
    uv_timer_t trim_timer; /* malloc_trim once quiet (bot.c) */
    bool loop_metrics;     /* the loop counts its idle time */
    uint64_t turn_ns, turn_idle_ns;
    struct dx_run *diagnoses;  /* diagnose_run.c: gathering, or open for picks */
    size_t diagnosing;         /* diagnoses not answered yet (in flight) */
    struct pending *approvals; /* pending first; resolved ones kept a while */
    size_t running;
    size_t posts_in_flight;
    struct post_ctx *post_list; /* bot.c: their contexts */
    uv_check_t flush_check;
    /* Actions whose "started" record waits for this loop turn's durable
     * commit (group commit): started together right after it. */
    struct ob_request *start_queue, **start_tail;
    uv_idle_t start_kick;        /* keeps the loop from blocking in poll meanwhile */
    struct start_batch *syncing; /* committed, their fsync in flight */
    uv_timer_t expiry_timer;
    uv_timer_t grace_timer;
    uv_timer_t release_timer; /* frees adapters + lws after the last post */
    uv_signal_t sig_hup, sig_term, sig_int;
    bool signals;
    bool stopping;
    bool closed;
    int exit_status;
    /* recovery.c: the state store cannot be written (requests refused). */
    int open_handles;  /* embedded uv handles not closed yet */
    bool free_pending; /* ob_bot_free ran: the last handle frees the bot */
    bool store_failing;
    int64_t store_probe_ms; /* no write is tried before this */
    char store_why[256];
};

/* ---- bot.c ---- */
void ob__qualify(char *out, size_t len, const char *platform, const char *user);
struct ob_adapter *ob__adapter_by_name(struct ob_bot *bot, const char *name);
const char *ob__short_hash(const char *hash, char *buf, size_t len);
/* Appends one audit record (detail owned, redacted first); returns its id
 * (0 on failure, logged) and, with req, remembers id and chain hash. */
int64_t ob__audit(struct ob_bot *bot, struct ob_request *req, const char *request_id,
                  const char *step, const char *actor, const char *platform, const char *channel,
                  const char *action, cJSON *detail);
int64_t ob__req_audit(struct ob_request *req, const char *step, const char *actor, cJSON *detail);
/* Redacts and posts text; cb (optional) gets the message reference. */
int ob__post_raw(struct ob_bot *bot, struct ob_adapter *ad, const char *channel, const char *thread,
                 unsigned flags, const char *ask_user, const char *text, ob_post_cb cb, void *data);
/* A plain step of req: gathered with the others said in this loop turn
 * and posted as one message (bot.c "what a request says"). */
void ob__sayf(struct ob_request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ob__say_final(struct ob_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct ob_request *ob__request_new(struct ob_bot *bot, struct ob_adapter *ad,
                                   const struct ob_event *ev, const char *thread);
void ob__request_free(struct ob_request *req);
void ob__request_end(struct ob_request *req);
void ob__start_action(struct ob_request *req);
void ob__maybe_idle(struct ob_bot *bot);
/* The metrics endpoint's bound port, or -1 when it is off (tests). */
int ob_bot_metrics_port(const struct ob_bot *bot);
/* Policy, then run / approval request / denial (the decide stage). */
void ob__decide(struct ob_request *req);

/* ---- recovery.c ---- */
/* The state store failed (err, during what): requests are refused from
 * now on until a probe write succeeds; bot->store_why says why. */
void ob__store_failed(struct ob_bot *bot, int err, const char *what);
/* Makes bot->http if needed, on bot->lws (made too if needed). */
int ob__bot_http(struct ob_bot *bot);
/* While the store is failing: probes it and, still failing, refuses ev
 * (one line to addressed messages). True when ev must go no further. */
bool ob__store_refuses(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev);
/* At start: actions that had started when opsbot stopped without a trace
 * are recorded as outcome_unknown and reported in their threads. */
void ob__report_unfinished(struct ob_bot *bot);

/* ---- approvals.c ---- */
/* Hands a decided request to an approval (the request is freed). */
void ob__request_approval(struct ob_request *req, const struct ob_decision *dec);
void ob__on_vote(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev);
void ob__restore_approvals(struct ob_bot *bot);
void ob__arm_expiry(struct ob_bot *bot);
size_t ob__pending_cb(void *core);

/* ---- diagnose_run.c ---- */
/* Runs an allowed `diagnose` request (takes the request over). */
void ob__diagnose_start(struct ob_request *req);
/* A pick (reaction / button) on a diagnosis' proposals: true when taken. */
bool ob__diagnose_on_pick(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev);
/* Cancels and frees every diagnosis (from finish_shutdown / ob_bot_free). */
void ob__diagnose_shutdown(struct ob_bot *bot);

#endif
