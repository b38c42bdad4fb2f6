/* opsbot's own metrics (Prometheus text exposition format 0.0.4) and the
 * /metrics, /healthz and /readyz endpoints on the libwebsockets HTTP server.
 *
 * The registry is process-wide: the pipeline and the adapters count into it
 * with the functions below, from the loop thread only. Every metric keeps at
 * most OB_METRICS_MAX_SERIES label sets; further ones are counted in one
 * series whose labels all read "other", so a flood of channel or user names
 * cannot grow memory without bound.
 *
 * Families:
 *   opsbot_events_total{platform,kind}               counter
 *   opsbot_decisions_total{effect,rule}               counter
 *   opsbot_approvals_total{outcome}                   counter
 *   opsbot_approval_seconds                           histogram (time to decision)
 *   opsbot_executions_total{action,result}            counter
 *   opsbot_execution_seconds{action}                  histogram
 *   opsbot_llm_calls_total{connection,model,action,channel,team,result} counter
 *   opsbot_llm_tokens_total{connection,model,direction} counter (in | out)
 *   opsbot_llm_cost_usd_total{connection,model}       counter
 *   opsbot_llm_latency_seconds{connection,model}      histogram
 *   opsbot_adapter_reconnects_total{platform}         counter
 *   opsbot_ratelimit_waits_total{platform}            counter
 *   opsbot_loop_busy_seconds                          histogram (work per loop turn)
 *   opsbot_store_fsync_seconds                        histogram (each WAL fsync)
 */
#ifndef OPSBOT_METRICS_H
#define OPSBOT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_METRICS_MAX_SERIES 1000
#define OB_METRICS_LABEL_MAX 128 /* label values are cut here */

void ob_metrics_event(const char *platform, const char *kind);
void ob_metrics_decision(const char *effect, const char *rule);
/* outcome: granted | refused | expired; seconds from request to decision. */
void ob_metrics_approval(const char *outcome, double seconds);
/* result: ok | failed | timeout | error */
void ob_metrics_execution(const char *action, const char *result, double seconds);

struct ob_metrics_llm {
    const char *connection, *model, *action, *channel, *team, *result;
    int64_t tokens_in, tokens_out;
    double cost_usd;
    double seconds;
};
void ob_metrics_llm_call(const struct ob_metrics_llm *m);

/* For the adapters. */
void ob_metrics_inc_reconnect(const char *platform);
void ob_metrics_inc_ratelimit_wait(const char *platform);
/* One turn of the event loop: the time it worked, not waiting for I/O. */
void ob_metrics_loop_busy(double seconds);
/* One fsync of the state store's write-ahead log (the daemon's mode). */
void ob_metrics_store_fsync(double seconds);

/* The exposition text (malloc'd, NUL-terminated; *len without the NUL). */
char *ob_metrics_render(size_t *len);
/* Forgets every series (tests). */
void ob_metrics_reset(void);
/* Current value of a counter series (labels in declaration order), or of a
 * histogram's count; -1 when the series does not exist (tests). */
double ob_metrics_value(const char *family, const char *const *labels, size_t nlabels);

/* ---- the endpoint ------------------------------------------------------ */

struct ob_lws;
struct ob_metrics_server;

/* Readiness: true when ready; otherwise why is filled ("adapter slack not
 * connected"). */
typedef bool (*ob_metrics_ready_cb)(void *data, char *why, size_t len);

/* Serves GET /metrics, /healthz (200 "ok") and /readyz (200, or 503 with
 * the reason) on listen ("127.0.0.1:9464", port 0 = ephemeral). */
int ob_metrics_server_new(struct ob_metrics_server **out, struct ob_lws *lws, const char *listen,
                          ob_metrics_ready_cb ready, void *data);
int ob_metrics_server_port(const struct ob_metrics_server *s);
void ob_metrics_server_free(struct ob_metrics_server *s);

#endif
