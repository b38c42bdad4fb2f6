/* A local Kubernetes API server for tests, apps/v1 only, over loopback
 * (ob_http_server):
 *
 *   GET|PATCH|PUT /apis/apps/v1/namespaces/NS/deployments/NAME
 *   GET|PATCH|PUT /apis/apps/v1/namespaces/NS/deployments/NAME/scale
 *   GET           /apis/apps/v1/namespaces/NS/replicasets?labelSelector=k=v,…
 *
 * PATCH takes application/strategic-merge-patch+json and
 * application/merge-patch+json (RFC 7386 merge: enough for the fields
 * opsbot patches) and application/json-patch+json (add, replace, remove,
 * test); anything else is 415. A metadata.resourceVersion in the result
 * that is not the current one is a 409 Conflict (the API server's
 * precondition), as is a stale resourceVersion in a PUT. Every change
 * increments resourceVersion; a spec change increments generation; a new
 * pod template gets a revision (an existing ReplicaSet with the same
 * template is re-used, like the deployment controller does). Errors carry
 * the real Status object (kind Status, apiVersion v1, status Failure,
 * message, reason, details, code). Requests need "Authorization: Bearer
 * TOKEN" (401 otherwise).
 *
 * A simulated controller moves status towards the spec on a timer: OK mode
 * one replica per tick; STUCK mode stops with one updated replica that is
 * never available and sets Progressing=False/ProgressDeadlineExceeded
 * after a few ticks; SLOW mode advances only every 1000 ticks.
 */
#ifndef OPSBOT_TEST_KUBE_STANDIN_H
#define OPSBOT_TEST_KUBE_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

struct ob_lws;
struct ob_kube_standin;

enum ob_kube_rollout { OB_KUBE_ROLLOUT_OK, OB_KUBE_ROLLOUT_STUCK, OB_KUBE_ROLLOUT_SLOW };

int ob_kube_standin_new(struct ob_kube_standin **out, struct ob_lws *lws, uv_loop_t *loop,
                        const char *token);
/* Closes the server and the controller timer (run the loop afterwards). */
void ob_kube_standin_free(struct ob_kube_standin *s);
int ob_kube_standin_port(const struct ob_kube_standin *s);
/* A Deployment NS/NAME with `revisions` ReplicaSets (revision r runs image
 * registry.example/NAME:1.r), the last one current and fully rolled out. */
void ob_kube_standin_add(struct ob_kube_standin *s, const char *ns, const char *name, int replicas,
                         int revisions);
/* 403 Forbidden for verb ("get", "list", "patch", "update") in namespace. */
void ob_kube_standin_forbid(struct ob_kube_standin *s, const char *verb, const char *ns);
/* The next n PATCH requests get 409 Conflict. */
void ob_kube_standin_conflicts(struct ob_kube_standin *s, int n);
void ob_kube_standin_mode(struct ob_kube_standin *s, enum ob_kube_rollout mode, int64_t tick_ms);
/* The Deployment as stored (borrowed) or NULL. */
const cJSON *ob_kube_standin_deployment(const struct ob_kube_standin *s, const char *ns,
                                        const char *name);
size_t ob_kube_standin_requests(const struct ob_kube_standin *s);
size_t ob_kube_standin_patches(const struct ob_kube_standin *s);
/* Content-Type of the last PATCH ("" before any). */
const char *ob_kube_standin_last_patch_type(const struct ob_kube_standin *s);

/* Pods: GET /api/v1/namespaces/NS/pods?labelSelector=… lists one pod per
 * desired replica of each matching Deployment (ready as its status says).
 * With restarts > 0 the first pod of NS/NAME is in CrashLoopBackOff with
 * that many restarts (its last termination OOMKilled when oom) and the
 * Deployment has one ready replica less. */
void ob_kube_standin_crashloop(struct ob_kube_standin *s, const char *ns, const char *name,
                               int restarts, bool oom);
/* The current revision's ReplicaSet of NS/NAME was created `seconds` ago
 * (ReplicaSets carry creationTimestamp; new ones get "now"). */
void ob_kube_standin_rollout_age(struct ob_kube_standin *s, const char *ns, const char *name,
                                 int64_t seconds);

#endif
