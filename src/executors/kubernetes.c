/* The kubernetes executor: restart, scale, rollback and status of a
 * Deployment through the API server, following the rollout after a change.
 *
 *   executor:
 *     type: kubernetes
 *     operation: restart            # restart | scale | rollback | status
 *     replicas: "{replicas}"        # scale: an int parameter or a number
 *     revision: "{revision}"        # rollback: 0 / unset = the previous revision
 *     follow: true                  # follow the rollout after a change (default)
 *     poll: 2s                      # rollout polling interval (default 2s)
 *     timeout: 5m                   # the whole job, rollout included
 *
 * The action needs parameters `service` and `env`; the top-level targets:
 * section maps them to cluster, namespace and deployment (kube_auth.c).
 *
 * Every change is optimistic: GET the object, PATCH with its
 * metadata.resourceVersion; a 409 Conflict starts over with a fresh GET, at
 * most three times.
 *   restart:  strategic merge patch of
 *             spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
 *   scale:    merge patch of the scale subresource's spec.replicas
 *   rollback: like `kubectl rollout undo`: the Deployment's ReplicaSets (its
 *             selector, owned by it), the previous (or named) revision by the
 *             deployment.kubernetes.io/revision annotation, and a JSON patch
 *             replacing spec.template with that ReplicaSet's template (without
 *             the pod-template-hash label).
 * The rollout is complete when observedGeneration >= generation and
 * updated, total and available replicas all equal spec.replicas; it failed
 * when the Progressing condition says ProgressDeadlineExceeded.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/util.h"

#define MAX_ATTEMPTS 3
#define DEF_POLL_MS 2000
#define DEF_KUBE_TIMEOUT_MS (5 * 60 * 1000)

enum op { OP_RESTART, OP_SCALE, OP_ROLLBACK, OP_STATUS };

static const char *const op_names[] = {"restart", "scale", "rollback", "status", NULL};
static const char *const kube_keys[] = {"operation", "replicas", "revision", "follow",
                                        "poll",      "detail",   NULL};

struct kube {
    enum op op;
    struct ob__kube_target t;
    char *dep_url; /* …/namespaces/NS/deployments/NAME */
    long replicas;
    long revision; /* rollback target; 0 = previous */
    int attempts;
    bool follow;
    int64_t poll_ms;
    int64_t generation; /* to observe after the change */
    long to_revision;
    char last[256]; /* last progress line */
    char *patch;
    char when[40];
    bool detail;    /* status: also ReplicaSets (last rollout) and pods */
    cJSON *status;  /* status with detail: res.data being completed */
    char *selector; /* status with detail: the Deployment's label selector */
    char *dep_uid;  /* status with detail: owner of the ReplicaSets */
};

static void kube_free(void *ctx)
{
    struct kube *k = ctx;

    if (!k)
        return;
    ob__kube_target_release(&k->t);
    free(k->dep_url);
    free(k->patch);
    cJSON_Delete(k->status);
    free(k->selector);
    free(k->dep_uid);
    free(k);
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const cJSON *path(const cJSON *o, const char *a, const char *b, const char *c)
{
    o = get(o, a);
    if (b)
        o = get(o, b);
    if (c)
        o = get(o, c);
    return o;
}

static long num(const cJSON *o, long def)
{
    int64_t v;

    return ob_json_int(o, &v) && v >= LONG_MIN && v <= LONG_MAX ? (long)v : def;
}

static int parse_op(const cJSON *b)
{
    const cJSON *o = get(b, "operation");

    for (int i = 0; cJSON_IsString(o) && op_names[i]; i++) {
        if (!strcmp(op_names[i], o->valuestring))
            return i;
    }
    return -1;
}

/* An int binding key: a number or one placeholder of an int parameter. */
static int int_key_check(const struct ob_action *a, const cJSON *v, char *why, size_t whylen)
{
    size_t n;

    if (cJSON_IsNumber(v))
        return 0;
    if (cJSON_IsString(v) && ob__ph_at(v->valuestring, &n) && !v->valuestring[n + 2]) {
        const struct ob_param_def *p = ob__param_def(a, v->valuestring + 1, n);

        if (!p) {
            snprintf(why, whylen, "unknown placeholder %s", v->valuestring);
            return OB_EINVAL;
        }
        if (p->type != OB_PARAM_INT) {
            snprintf(why, whylen, "%s is not an int parameter", v->valuestring);
            return OB_EINVAL;
        }
        return 0;
    }
    snprintf(why, whylen, "a number or one int placeholder such as \"{replicas}\"");
    return OB_EINVAL;
}

static int int_key_value(const struct ob_proposal *prop, const cJSON *v, long def, long *out)
{
    size_t n;
    const char *s;
    char *end;

    *out = def;
    if (!v)
        return 0;
    if (cJSON_IsNumber(v))
        return (*out = num(v, LONG_MIN)) == LONG_MIN ? OB_EINVAL : 0;
    if (!cJSON_IsString(v) || !ob__ph_at(v->valuestring, &n))
        return OB_EINVAL;
    s = ob__param_value(prop, v->valuestring + 1, n);
    if (!s)
        return OB_EINVAL;
    if (!*s)
        return 0;
    *out = strtol(s, &end, 10);
    return *end ? OB_EINVAL : 0;
}

static void kube_check(struct ob__check *c)
{
    const cJSON *it;
    int op = parse_op(c->b);
    char why[256];

    if (op < 0)
        ob__check_err(c, get(c->b, "operation"), "operation",
                      "required: one of restart, scale, rollback, status");
    if (!ob__param_def(c->a, "service", 7) || !ob__param_def(c->a, "env", 3))
        ob__check_err(c, NULL, NULL,
                      "the kubernetes executor needs parameters named service and env (mapped "
                      "through targets:)");
    it = get(c->b, "replicas");
    if (op == OP_SCALE && !it)
        ob__check_err(c, NULL, "replicas", "required for scale (e.g. \"{replicas}\")");
    if (it && op != OP_SCALE)
        ob__check_err(c, it, "replicas", "only for operation scale");
    if (it && int_key_check(c->a, it, why, sizeof(why)))
        ob__check_err(c, it, "replicas", "%s", why);
    it = get(c->b, "revision");
    if (it && op != OP_ROLLBACK)
        ob__check_err(c, it, "revision", "only for operation rollback");
    if (it && int_key_check(c->a, it, why, sizeof(why)))
        ob__check_err(c, it, "revision", "%s", why);
    it = get(c->b, "follow");
    if (it && !cJSON_IsBool(it))
        ob__check_err(c, it, "follow", "must be true or false");
    it = get(c->b, "detail");
    if (it && !cJSON_IsBool(it))
        ob__check_err(c, it, "detail", "must be true or false");
    if (it && op != OP_STATUS)
        ob__check_err(c, it, "detail", "only for operation status");
    it = get(c->b, "poll");
    if (it && ob__duration_key_check(NULL, it, why, sizeof(why)))
        ob__check_err(c, it, "poll", "%s", why);
    if (c->cfg) {
        const cJSON *tg = get(ob_config_root(c->cfg), "targets");
        const struct ob_param_def *env = ob__param_def(c->a, "env", 3);

        if (!cJSON_IsObject(tg)) {
            ob__check_err(c, NULL, NULL,
                          "the kubernetes executor needs a top-level targets: section (clusters, "
                          "envs)");
        } else if (env && env->type == OB_PARAM_ENUM) {
            for (size_t i = 0; i < env->nvalues; i++) {
                if (!get(get(tg, "envs"), env->values[i]))
                    ob__check_err(c, NULL, NULL, "env '%s' has no entry in targets.envs",
                                  env->values[i]);
            }
        }
    }
}

/* ---- describe ----------------------------------------------------------- */

static int find_target(const struct ob_config *cfg, const struct ob_proposal *prop,
                       struct ob__kube_target *t, char *why, size_t whylen)
{
    const char *svc = ob__param_value(prop, "service", 7);
    const char *env = ob__param_value(prop, "env", 3);

    if (!svc || !*svc || !env || !*env) {
        snprintf(why, whylen, "no service or env");
        return OB_EINVAL;
    }
    return ob__kube_target_find(cfg, svc, env, t, why, whylen);
}

static int kube_describe(const struct ob_config *cfg, const struct ob_proposal *prop,
                         const cJSON *b, char *buf, size_t len)
{
    struct ob__kube_target t;
    int op = parse_op(b);
    long n = 0;
    char why[256], extra[64] = "";
    int rc;

    rc = find_target(cfg, prop, &t, why, sizeof(why));
    if (rc || op < 0) {
        snprintf(buf, len, "kubernetes: %s", rc ? why : "no operation");
        return rc ? rc : OB_EINVAL;
    }
    if (op == OP_SCALE && !int_key_value(prop, get(b, "replicas"), 0, &n))
        snprintf(extra, sizeof(extra), " to %ld replicas", n);
    if (op == OP_ROLLBACK && !int_key_value(prop, get(b, "revision"), 0, &n))
        snprintf(extra, sizeof(extra), n > 0 ? " to revision %ld" : " to the previous revision", n);
    snprintf(buf, len, "kubernetes %s: deployment %s%s in namespace %s (cluster %s)", op_names[op],
             t.deployment, extra, t.ns[0] ? t.ns : "(pod's)", t.cluster);
    return 0;
}

/* ---- API errors ---------------------------------------------------------- */

/* One line from the Status object of an error answer. */
static void api_error(struct ob__job *j, const struct ob_http_resp *resp, const char *verb,
                      const char *resource)
{
    struct kube *k = j->ctx;
    cJSON *st = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->body_len);
    const cJSON *msg = get(st, "message"), *reason = get(st, "reason");
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "";
    const char *r = cJSON_IsString(reason) ? reason->valuestring : "";

    if (resp->status == 403) {
        ob__job_status(j, "Forbidden");
        ob__job_printf(j, "the service account may not %s %s in %s (Forbidden: %s)\n", verb,
                       resource, k->t.ns, m);
    } else if (resp->status == 404) {
        ob__job_status(j, "not found");
        if (!strcmp(resource, "replicasets"))
            ob__job_printf(j, "no replicasets of deployment %s in namespace %s (%s)\n",
                           k->t.deployment, k->t.ns, m);
        else
            ob__job_printf(j, "no deployment %s in namespace %s\n", k->t.deployment, k->t.ns);
    } else if (resp->status == 401) {
        ob__job_status(j, "Unauthorized");
        ob__job_printf(j,
                       "the API server of cluster %s rejected the credentials "
                       "(Unauthorized%s%s)\n",
                       k->t.cluster, m[0] ? ": " : "", m);
    } else if (resp->status == 409) {
        ob__job_status(j, "conflict");
        ob__job_printf(j, "gave up after %d conflicting updates of deployment %s (%s)\n",
                       k->attempts, k->t.deployment, m);
    } else {
        ob__job_status(j, "HTTP %ld", resp->status);
        ob__job_printf(j, "Kubernetes API error HTTP %ld%s%s%s: %.300s\n", resp->status,
                       r[0] ? " (" : "", r, r[0] ? ")" : "",
                       m[0] ? m : (resp->body ? resp->body : ""));
    }
    cJSON_Delete(st);
    ob__job_finish(j, false);
}

/* ---- reading a Deployment ------------------------------------------------ */

static const cJSON *condition(const cJSON *dep, const char *type)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, path(dep, "status", "conditions", NULL))
    {
        const cJSON *t = get(c, "type");

        if (cJSON_IsString(t) && !strcmp(t->valuestring, type))
            return c;
    }
    return NULL;
}

static const char *annotation(const cJSON *obj, const char *name)
{
    const cJSON *a = get(path(obj, "metadata", "annotations", NULL), name);

    return cJSON_IsString(a) ? a->valuestring : NULL;
}

enum rollout { RO_PROGRESSING, RO_COMPLETE, RO_FAILED };

/* Rollout state of dep and one line describing it. */
static enum rollout rollout_state(const cJSON *dep, char *line, size_t len)
{
    long gen = num(path(dep, "metadata", "generation", NULL), 0);
    long og = num(path(dep, "status", "observedGeneration", NULL), 0);
    long want = num(path(dep, "spec", "replicas", NULL), 1);
    long total = num(path(dep, "status", "replicas", NULL), 0);
    long upd = num(path(dep, "status", "updatedReplicas", NULL), 0);
    long ready = num(path(dep, "status", "readyReplicas", NULL), 0);
    long avail = num(path(dep, "status", "availableReplicas", NULL), 0);
    const cJSON *prog = condition(dep, "Progressing");
    const cJSON *reason = get(prog, "reason");

    if (cJSON_IsString(reason) && !strcmp(reason->valuestring, "ProgressDeadlineExceeded")) {
        const cJSON *m = get(prog, "message");

        snprintf(line, len,
                 "rollout failed: ProgressDeadlineExceeded (%s); %ld of %ld updated, "
                 "%ld available",
                 cJSON_IsString(m) ? m->valuestring : "no progress", upd, want, avail);
        return RO_FAILED;
    }
    if (og < gen) {
        snprintf(line, len, "waiting for the controller to see generation %ld", gen);
        return RO_PROGRESSING;
    }
    if (upd < want) {
        snprintf(line, len, "%ld of %ld updated, %ld ready, %ld available", upd, want, ready,
                 avail);
        return RO_PROGRESSING;
    }
    if (total > upd) {
        snprintf(line, len, "%ld of %ld updated, %ld old replica%s terminating", upd, want,
                 total - upd, total - upd == 1 ? "" : "s");
        return RO_PROGRESSING;
    }
    if (avail < want) {
        snprintf(line, len, "%ld of %ld updated, %ld available", upd, want, avail);
        return RO_PROGRESSING;
    }
    snprintf(line, len, "%ld of %ld updated, %ld available", upd, want, avail);
    return RO_COMPLETE;
}

static void show_status(struct ob__job *j, const cJSON *dep)
{
    struct kube *k = j->ctx;
    const cJSON *c;
    const char *rev = annotation(dep, "deployment.kubernetes.io/revision");
    char line[512];
    enum rollout ro;
    size_t nimg = 0;

    ob__job_printf(j, "deployment %s in namespace %s (cluster %s)\n", k->t.deployment, k->t.ns,
                   k->t.cluster);
    ob__job_printf(j, "replicas: %ld desired, %ld updated, %ld ready, %ld available\n",
                   num(path(dep, "spec", "replicas", NULL), 1),
                   num(path(dep, "status", "updatedReplicas", NULL), 0),
                   num(path(dep, "status", "readyReplicas", NULL), 0),
                   num(path(dep, "status", "availableReplicas", NULL), 0));
    {
        const cJSON *cs = get(path(dep, "spec", "template", "spec"), "containers");
        bool named = cJSON_GetArraySize(cs) > 1;

        cJSON_ArrayForEach(c, cs)
        {
            const cJSON *img = get(c, "image"), *name = get(c, "name");
            bool show = named && cJSON_IsString(name);

            if (!cJSON_IsString(img))
                continue;
            ob__job_printf(j, "%s%s%s%s", nimg ? ", " : "image: ", show ? name->valuestring : "",
                           show ? "=" : "", img->valuestring);
            nimg++;
        }
    }
    if (nimg)
        ob__job_printf(j, "\n");
    ob__job_printf(j, "revision: %s\n", rev ? rev : "unknown");
    {
        size_t n = 0;

        cJSON_ArrayForEach(c, path(dep, "status", "conditions", NULL))
        {
            const cJSON *t = get(c, "type"), *s = get(c, "status"), *r = get(c, "reason");

            if (!cJSON_IsString(t) || !cJSON_IsString(s))
                continue;
            ob__job_printf(j, "%s%s=%s%s%s%s", n ? ", " : "conditions: ", t->valuestring,
                           s->valuestring, cJSON_IsString(r) ? " (" : "",
                           cJSON_IsString(r) ? r->valuestring : "", cJSON_IsString(r) ? ")" : "");
            n++;
        }
        if (n)
            ob__job_printf(j, "\n");
    }
    ro = rollout_state(dep, line, sizeof(line));
    ob__job_printf(j, "rollout: %s%s\n",
                   ro == RO_COMPLETE      ? "complete, "
                   : ro == RO_PROGRESSING ? "in progress, "
                                          : "",
                   line);
    ob__job_status(j, "%s",
                   ro == RO_COMPLETE      ? "healthy"
                   : ro == RO_PROGRESSING ? "rollout in progress"
                                          : "rollout failed");
}

/* ---- following the rollout ------------------------------------------------ */

static void poll_now(struct ob__job *j);

/* The deadline came before the rollout completed: the job times out and
 * says where the rollout stood when last seen. */
static void rollout_overdue(struct ob__job *j)
{
    struct kube *k = j->ctx;
    char what[1200];

    snprintf(what, sizeof(what),
             "the rollout of %s is not complete%s%s. It goes on in the cluster; ask for its "
             "status later.",
             k->t.deployment, k->last[0] ? ": " : "", k->last);
    ob__job_timeout(j, what);
}

static void on_poll(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    cJSON *dep;
    char line[512];
    enum rollout ro;

    /* a status read cut short by the deadline: the rollout is overdue */
    if (resp->err == OB_ETIMEOUT && ob__job_left(j) <= 0) {
        rollout_overdue(j);
        return;
    }
    if (ob__job_transport_failed(j, resp, k->t.server))
        return;
    if (resp->status != 200) {
        api_error(j, resp, "get", "deployments");
        return;
    }
    dep = cJSON_ParseWithLength(resp->body, resp->body_len);
    ro = rollout_state(dep, line, sizeof(line));
    if (num(path(dep, "status", "observedGeneration", NULL), 0) < k->generation &&
        ro != RO_FAILED) {
        ro = RO_PROGRESSING;
        snprintf(line, sizeof(line), "waiting for the controller to see generation %lld",
                 (long long)k->generation);
    }
    if (strcmp(line, k->last)) {
        char p[1100];

        ob_strlcpy(k->last, line, sizeof(k->last));
        snprintf(p, sizeof(p), "%s %s: %s", op_names[k->op], k->t.deployment, line);
        ob__job_progress(j, p);
    }
    if (ro == RO_COMPLETE) {
        const char *rev = annotation(dep, "deployment.kubernetes.io/revision");

        ob__job_printf(j, "rollout complete: %s%s%s%s\n", line, rev ? " (revision " : "",
                       rev ? rev : "", rev ? ")" : "");
        ob__job_status(j, "rollout complete");
        cJSON_Delete(dep);
        ob__job_finish(j, true);
        return;
    }
    if (ro == RO_FAILED) {
        ob__job_printf(j, "%s\n", line);
        ob__job_status(j, "rollout failed");
        cJSON_Delete(dep);
        ob__job_finish(j, false);
        return;
    }
    cJSON_Delete(dep);
    if (ob__job_left(j) <= 0) {
        rollout_overdue(j);
        return;
    }
    ob__job_after(j, k->poll_ms, poll_now);
}

static void poll_now(struct ob__job *j)
{
    struct kube *k = j->ctx;

    if (ob__job_left(j) <= 0) {
        rollout_overdue(j);
        return;
    }
    ob__job_request(j, "GET", k->dep_url, NULL, NULL, on_poll);
}

/* The change went through: resp is the patched object. */
static void changed(struct ob__job *j, const cJSON *obj)
{
    struct kube *k = j->ctx;

    k->generation = num(path(obj, "metadata", "generation", NULL), 0);
    if (!k->follow) {
        ob__job_status(j, "%s requested", op_names[k->op]);
        ob__job_finish(j, true);
        return;
    }
    ob__job_after(j, 0, poll_now);
}

/* ---- restart and scale --------------------------------------------------- */

static void first_get(struct ob__job *j);

static bool retry_conflict(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;

    char line[400];

    if (resp->status != 409 || k->attempts >= MAX_ATTEMPTS)
        return false;
    snprintf(line, sizeof(line),
             "%s %s: conflict %d of %d, the deployment changed meanwhile; reading it again",
             op_names[k->op], k->t.deployment, k->attempts, MAX_ATTEMPTS);
    ob__job_progress(j, line);
    first_get(j);
    return true;
}

static void on_patched(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    const char *res = k->op == OP_SCALE ? "deployments/scale" : "deployments";
    cJSON *obj;

    if (ob__job_transport_failed(j, resp, k->t.server))
        return;
    if (retry_conflict(j, resp))
        return;
    if (resp->status != 200 && resp->status != 201) {
        api_error(j, resp, "patch", res);
        return;
    }
    obj = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (k->op == OP_RESTART)
        ob__job_printf(j, "restarted deployment %s in namespace %s (cluster %s) at %s\n",
                       k->t.deployment, k->t.ns, k->t.cluster, k->when);
    else if (k->op == OP_SCALE)
        ob__job_printf(j, "scaled deployment %s in namespace %s (cluster %s) to %ld replicas\n",
                       k->t.deployment, k->t.ns, k->t.cluster, k->replicas);
    else
        ob__job_printf(j,
                       "rolled deployment %s in namespace %s (cluster %s) back to the template of "
                       "revision %ld\n",
                       k->t.deployment, k->t.ns, k->t.cluster, k->to_revision);
    if (k->op == OP_SCALE) {
        /* The Scale answer has no generation: follow the Deployment. */
        cJSON_Delete(obj);
        k->generation = 0;
        if (!k->follow) {
            ob__job_status(j, "scale requested");
            ob__job_finish(j, true);
            return;
        }
        ob__job_after(j, 0, poll_now);
        return;
    }
    changed(j, obj);
    cJSON_Delete(obj);
}

static char *restart_patch(const char *rv, const char *when)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *ann;
    char *s;

    if (rv)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "metadata"), "resourceVersion", rv);
    ann = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "spec"), "template"), "metadata"),
        "annotations");
    cJSON_AddStringToObject(ann, "kubectl.kubernetes.io/restartedAt", when);
    s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

static char *scale_patch(const char *rv, long replicas)
{
    cJSON *p = cJSON_CreateObject();
    char *s;

    if (rv)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "metadata"), "resourceVersion", rv);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(p, "spec"), "replicas", (double)replicas);
    s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

static const char *const smp_hdr[] = {"Accept: application/json",
                                      "Content-Type: application/strategic-merge-patch+json", NULL};
static const char *const mp_hdr[] = {"Accept: application/json",
                                     "Content-Type: application/merge-patch+json", NULL};
static const char *const jp_hdr[] = {"Accept: application/json",
                                     "Content-Type: application/json-patch+json", NULL};
static const char *const get_hdr[] = {"Accept: application/json", NULL};

/* ---- rollback ------------------------------------------------------------ */

static char *selector_string(const cJSON *sel)
{
    const cJSON *it;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (!f)
        return NULL;
    cJSON_ArrayForEach(it, get(sel, "matchLabels"))
    {
        if (cJSON_IsString(it))
            fprintf(f, "%s%s=%s", ftell(f) ? "," : "", it->string, it->valuestring);
    }
    cJSON_ArrayForEach(it, get(sel, "matchExpressions"))
    {
        const cJSON *key = get(it, "key"), *op = get(it, "operator"), *v;
        bool first = true;

        if (!cJSON_IsString(key) || !cJSON_IsString(op))
            continue;
        if (ftell(f))
            fputc(',', f);
        if (!strcmp(op->valuestring, "Exists")) {
            fprintf(f, "%s", key->valuestring);
            continue;
        }
        if (!strcmp(op->valuestring, "DoesNotExist")) {
            fprintf(f, "!%s", key->valuestring);
            continue;
        }
        fprintf(f, "%s %s (", key->valuestring, !strcmp(op->valuestring, "In") ? "in" : "notin");
        cJSON_ArrayForEach(v, get(it, "values"))
        {
            if (cJSON_IsString(v)) {
                fprintf(f, "%s%s", first ? "" : ",", v->valuestring);
                first = false;
            }
        }
        fputc(')', f);
    }
    fclose(f);
    return out;
}

static bool owned_by(const cJSON *rs, const char *uid)
{
    const cJSON *o;

    if (!uid)
        return true;
    cJSON_ArrayForEach(o, path(rs, "metadata", "ownerReferences", NULL))
    {
        const cJSON *u = get(o, "uid");

        if (cJSON_IsString(u) && !strcmp(u->valuestring, uid))
            return true;
    }
    return false;
}

static void on_rs_list(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    cJSON *dep = NULL, *list, *tmpl = NULL, *patch = NULL, *op;
    const cJSON *rs, *best = NULL;
    const char *uid, *rv, *cur_s;
    long cur, best_rev = 0;
    char known[256] = "";
    size_t off = 0;

    if (ob__job_transport_failed(j, resp, k->t.server))
        return;
    if (resp->status != 200) {
        api_error(j, resp, "list", "replicasets");
        return;
    }
    /* The Deployment was parked in k->patch by on_dep_for_rollback. */
    dep = cJSON_Parse(k->patch ? k->patch : "{}");
    free(k->patch);
    k->patch = NULL;
    list = cJSON_ParseWithLength(resp->body, resp->body_len);
    uid = cJSON_IsString(path(dep, "metadata", "uid", NULL))
              ? path(dep, "metadata", "uid", NULL)->valuestring
              : NULL;
    cur_s = annotation(dep, "deployment.kubernetes.io/revision");
    cur = cur_s ? strtol(cur_s, NULL, 10) : 0;
    if (!cur) {
        cJSON_ArrayForEach(rs, get(list, "items"))
        {
            const char *r = annotation(rs, "deployment.kubernetes.io/revision");
            long rv_n = r ? strtol(r, NULL, 10) : 0;

            if (owned_by(rs, uid) && rv_n > cur)
                cur = rv_n;
        }
    }
    cJSON_ArrayForEach(rs, get(list, "items"))
    {
        const char *r = annotation(rs, "deployment.kubernetes.io/revision");
        long n = r ? strtol(r, NULL, 10) : 0;

        if (!owned_by(rs, uid) || n <= 0)
            continue;
        if (off < sizeof(known))
            off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%ld", off ? ", " : "", n);
        if (k->revision > 0 ? n == k->revision : (n < cur && n > best_rev)) {
            best = rs;
            best_rev = n;
        }
    }
    if (!best) {
        ob__job_status(j, "no such revision");
        if (k->revision > 0)
            ob__job_printf(j, "deployment %s has no revision %ld (revisions: %s)\n",
                           k->t.deployment, k->revision, known[0] ? known : "none");
        else
            ob__job_printf(j,
                           "deployment %s has no revision before %ld to roll back to (revisions: "
                           "%s)\n",
                           k->t.deployment, cur, known[0] ? known : "none");
        goto fail;
    }
    k->to_revision = best_rev;
    tmpl = cJSON_Duplicate(path(best, "spec", "template", NULL), true);
    cJSON_DeleteItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"),
                                         "labels"),
        "pod-template-hash");
    if (cJSON_Compare(tmpl, path(dep, "spec", "template", NULL), true)) {
        ob__job_status(j, "nothing to do");
        ob__job_printf(j,
                       "skipped rollback: revision %ld of deployment %s has the template that "
                       "is running now\n",
                       best_rev, k->t.deployment);
        cJSON_Delete(tmpl);
        cJSON_Delete(dep);
        cJSON_Delete(list);
        ob__job_finish(j, true);
        return;
    }
    rv = cJSON_IsString(path(dep, "metadata", "resourceVersion", NULL))
             ? path(dep, "metadata", "resourceVersion", NULL)->valuestring
             : "";
    patch = cJSON_CreateArray();
    op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "op", "replace");
    cJSON_AddStringToObject(op, "path", "/metadata/resourceVersion");
    cJSON_AddStringToObject(op, "value", rv);
    cJSON_AddItemToArray(patch, op);
    op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "op", "replace");
    cJSON_AddStringToObject(op, "path", "/spec/template");
    cJSON_AddItemToObject(op, "value", tmpl);
    tmpl = NULL;
    cJSON_AddItemToArray(patch, op);
    k->patch = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    cJSON_Delete(dep);
    cJSON_Delete(list);
    if (!k->patch) {
        ob__job_printf(j, "out of memory\n");
        ob__job_finish(j, false);
        return;
    }
    {
        char p[400];

        snprintf(p, sizeof(p), "rollback %s: patching to the template of revision %ld",
                 k->t.deployment, best_rev);
        ob__job_progress(j, p);
    }
    k->attempts++;
    ob__job_request(j, "PATCH", k->dep_url, jp_hdr, k->patch, on_patched);
    return;
fail:
    cJSON_Delete(tmpl);
    cJSON_Delete(dep);
    cJSON_Delete(list);
    ob__job_finish(j, false);
}

/* ---- status: machine-readable facts and `detail: true` ---------------------- */

/* res.data of a status: the replica counts, revision, rollout state and
 * conditions of the Deployment. */
static cJSON *status_data(const cJSON *dep)
{
    cJSON *o = cJSON_CreateObject(), *conds;
    const char *rev = annotation(dep, "deployment.kubernetes.io/revision");
    const cJSON *c;
    char line[512];
    enum rollout ro = rollout_state(dep, line, sizeof(line));

    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "replicas", (double)num(path(dep, "spec", "replicas", NULL), 1));
    cJSON_AddNumberToObject(o, "updated",
                            (double)num(path(dep, "status", "updatedReplicas", NULL), 0));
    cJSON_AddNumberToObject(o, "ready", (double)num(path(dep, "status", "readyReplicas", NULL), 0));
    cJSON_AddNumberToObject(o, "available",
                            (double)num(path(dep, "status", "availableReplicas", NULL), 0));
    if (rev && strspn(rev, "0123456789") == strlen(rev) && *rev && strlen(rev) < 10)
        cJSON_AddNumberToObject(o, "revision", atof(rev));
    cJSON_AddStringToObject(o, "rollout",
                            ro == RO_COMPLETE      ? "complete"
                            : ro == RO_PROGRESSING ? "progressing"
                                                   : "failed");
    conds = cJSON_AddObjectToObject(o, "conditions");
    cJSON_ArrayForEach(c, path(dep, "status", "conditions", NULL))
    {
        const cJSON *t = get(c, "type"), *st = get(c, "status");

        if (cJSON_IsString(t) && cJSON_IsString(st) && !get(conds, t->valuestring))
            cJSON_AddStringToObject(conds, t->valuestring, st->valuestring);
    }
    return o;
}

static void detail_done(struct ob__job *j)
{
    struct kube *k = j->ctx;

    cJSON_Delete(j->res.data);
    j->res.data = k->status;
    k->status = NULL;
    ob__job_finish(j, true);
}

/* A detail request the API refused is noted, not fatal. */
static bool detail_failed(struct ob__job *j, const struct ob_http_resp *resp, const char *what)
{
    struct kube *k = j->ctx;

    if (resp->err || resp->status != 200) {
        ob__job_printf(j, "%s: not available (%s)\n", what,
                       resp->err             ? (resp->errmsg[0] ? resp->errmsg : "no answer")
                       : resp->status == 403 ? "Forbidden"
                                             : "HTTP error");
        cJSON_AddStringToObject(k->status, "detail_error", what);
        return true;
    }
    return false;
}

static void on_pods(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    cJSON *list, *pods;
    const cJSON *pod;
    long not_ready = 0, rmax = 0, rtotal = 0, crash = 0, oom = 0, n = 0;
    char crash_pod[254] = "";

    if (detail_failed(j, resp, "pods")) {
        detail_done(j);
        return;
    }
    list = cJSON_ParseWithLength(resp->body, resp->body_len);
    pods = cJSON_AddArrayToObject(k->status, "pods");
    cJSON_ArrayForEach(pod, get(list, "items"))
    {
        const cJSON *name = path(pod, "metadata", "name", NULL), *cs;
        long restarts = 0;
        bool ready = true;
        const char *reason = NULL;
        cJSON *po;

        if (n == 200)
            break;
        cJSON_ArrayForEach(cs, path(pod, "status", "containerStatuses", NULL))
        {
            const cJSON *wr = path(cs, "state", "waiting", "reason");
            const cJSON *tr = path(cs, "lastState", "terminated", "reason");

            restarts += num(get(cs, "restartCount"), 0);
            if (!cJSON_IsTrue(get(cs, "ready")))
                ready = false;
            if (cJSON_IsString(wr) && !reason)
                reason = wr->valuestring;
            if (cJSON_IsString(tr) && !strcmp(tr->valuestring, "OOMKilled"))
                oom++;
        }
        if (!get(path(pod, "status", NULL, NULL), "containerStatuses"))
            ready = false;
        po = cJSON_CreateObject();
        cJSON_AddStringToObject(po, "name", cJSON_IsString(name) ? name->valuestring : "?");
        cJSON_AddBoolToObject(po, "ready", ready);
        cJSON_AddNumberToObject(po, "restarts", (double)restarts);
        if (reason)
            cJSON_AddStringToObject(po, "reason", reason);
        cJSON_AddItemToArray(pods, po);
        not_ready += !ready;
        rmax = restarts > rmax ? restarts : rmax;
        rtotal += restarts;
        if (reason && !strcmp(reason, "CrashLoopBackOff")) {
            if (!crash && cJSON_IsString(name))
                snprintf(crash_pod, sizeof(crash_pod), "%s", name->valuestring);
            crash++;
        }
        n++;
    }
    cJSON_AddNumberToObject(k->status, "pods_not_ready", (double)not_ready);
    cJSON_AddNumberToObject(k->status, "restarts_max", (double)rmax);
    cJSON_AddNumberToObject(k->status, "restarts_total", (double)rtotal);
    cJSON_AddNumberToObject(k->status, "crashloop", (double)crash);
    cJSON_AddNumberToObject(k->status, "oom", (double)oom);
    if (crash_pod[0])
        cJSON_AddStringToObject(k->status, "crashloop_pod", crash_pod);
    ob__job_printf(j, "pods: %ld, %ld not ready, restarts max %ld", n, not_ready, rmax);
    if (crash)
        ob__job_printf(j, ", %ld in CrashLoopBackOff (%s)", crash, crash_pod);
    if (oom)
        ob__job_printf(j, ", %ld OOMKilled", oom);
    ob__job_printf(j, "\n");
    cJSON_Delete(list);
    detail_done(j);
}

static void get_pods(struct ob__job *j)
{
    struct kube *k = j->ctx;
    char *esc = ob_http_escape(k->selector), *ns = ob_http_escape(k->t.ns), *url = NULL;

    if (esc && ns &&
        asprintf(&url, "%s/api/v1/namespaces/%s/pods?labelSelector=%s", k->t.server, ns, esc) >= 0)
        ob__job_request(j, "GET", url, get_hdr, NULL, on_pods);
    else
        detail_done(j);
    free(url);
    free(esc);
    free(ns);
}

static void on_detail_rs(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    const cJSON *rs, *cur_n = get(k->status, "revision");
    cJSON *list;
    long cur = num(cur_n, 0), prev = 0;
    const char *created = NULL;

    if (detail_failed(j, resp, "replicasets")) {
        get_pods(j);
        return;
    }
    list = cJSON_ParseWithLength(resp->body, resp->body_len);
    cJSON_ArrayForEach(rs, get(list, "items"))
    {
        const char *r = annotation(rs, "deployment.kubernetes.io/revision");
        const cJSON *ts = path(rs, "metadata", "creationTimestamp", NULL);
        long rv = r ? atol(r) : 0;

        if (!owned_by(rs, k->dep_uid) || rv <= 0)
            continue;
        if (rv == cur && cJSON_IsString(ts))
            created = ts->valuestring;
        if (rv < cur && rv > prev)
            prev = rv;
    }
    if (prev)
        cJSON_AddNumberToObject(k->status, "previous_revision", (double)prev);
    if (created) {
        int64_t at = 0;

        cJSON_AddStringToObject(k->status, "last_rollout", created);
        if (!ob_time_parse(created, &at)) {
            int64_t age = (ob_now_ms() - at) / 1000;
            char d[32];

            cJSON_AddNumberToObject(k->status, "last_rollout_age_s", (double)(age > 0 ? age : 0));
            ob_duration_format((age > 0 ? age : 0) * 1000, d, sizeof(d));
            ob__job_printf(j, "last rollout: revision %ld at %s (%s ago)", cur, created, d);
        }
    }
    if (prev)
        ob__job_printf(j, "%sprevious revision %ld\n", created ? "; " : "", prev);
    else if (created)
        ob__job_printf(j, "\n");
    cJSON_Delete(list);
    get_pods(j);
}

/* After the status lines: the ReplicaSets (when the current revision was
 * rolled out, which one came before) and the pods (ready, restarts,
 * CrashLoopBackOff, OOMKilled). */
static void start_detail(struct ob__job *j, const cJSON *dep)
{
    struct kube *k = j->ctx;
    const cJSON *uid = path(dep, "metadata", "uid", NULL);
    char *esc, *ns, *url = NULL;

    k->status = j->res.data;
    j->res.data = NULL;
    k->selector = selector_string(path(dep, "spec", "selector", NULL));
    k->dep_uid = cJSON_IsString(uid) ? strdup(uid->valuestring) : NULL;
    if (!k->status || !k->selector || !*k->selector) {
        ob__job_printf(j, "no label selector: no pods to show\n");
        detail_done(j);
        return;
    }
    esc = ob_http_escape(k->selector);
    ns = ob_http_escape(k->t.ns);
    if (esc && ns &&
        asprintf(&url, "%s/apis/apps/v1/namespaces/%s/replicasets?labelSelector=%s", k->t.server,
                 ns, esc) >= 0)
        ob__job_request(j, "GET", url, get_hdr, NULL, on_detail_rs);
    else
        detail_done(j);
    free(url);
    free(esc);
    free(ns);
}

/* ---- the first GET -------------------------------------------------------- */

static void on_first_get(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct kube *k = j->ctx;
    cJSON *obj;
    const cJSON *rvn;
    const char *rv;

    if (ob__job_transport_failed(j, resp, k->t.server))
        return;
    if (resp->status != 200) {
        api_error(j, resp, "get", k->op == OP_SCALE ? "deployments/scale" : "deployments");
        return;
    }
    obj = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!cJSON_IsObject(obj)) {
        ob__job_status(j, "bad answer");
        ob__job_printf(j, "the API server answered without a JSON object\n");
        cJSON_Delete(obj);
        ob__job_finish(j, false);
        return;
    }
    rvn = path(obj, "metadata", "resourceVersion", NULL);
    rv = cJSON_IsString(rvn) ? rvn->valuestring : NULL;
    free(k->patch);
    k->patch = NULL;
    switch (k->op) {
    case OP_STATUS:
        show_status(j, obj);
        cJSON_Delete(j->res.data);
        j->res.data = status_data(obj);
        if (k->detail) {
            start_detail(j, obj);
            cJSON_Delete(obj);
            return;
        }
        cJSON_Delete(obj);
        ob__job_finish(j, true);
        return;
    case OP_RESTART:
        k->patch = restart_patch(rv, k->when);
        k->attempts++;
        ob__job_request(j, "PATCH", k->dep_url, smp_hdr, k->patch, on_patched);
        break;
    case OP_SCALE: {
        char *url = NULL;

        k->patch = scale_patch(rv, k->replicas);
        k->attempts++;
        if (asprintf(&url, "%s/scale", k->dep_url) < 0) {
            cJSON_Delete(obj);
            ob__job_finish(j, false);
            return;
        }
        ob__job_request(j, "PATCH", url, mp_hdr, k->patch, on_patched);
        free(url);
        break;
    }
    case OP_ROLLBACK: {
        char *sel = selector_string(path(obj, "spec", "selector", NULL));
        char *esc = sel ? ob_http_escape(sel) : NULL;
        char *ns = ob_http_escape(k->t.ns);
        char *url = NULL;

        if (!sel || !*sel) {
            ob__job_status(j, "no selector");
            ob__job_printf(j, "deployment %s has no label selector\n", k->t.deployment);
            free(sel);
            free(esc);
            free(ns);
            cJSON_Delete(obj);
            ob__job_finish(j, false);
            return;
        }
        /* Park the Deployment until the ReplicaSets arrive. */
        k->patch = cJSON_PrintUnformatted(obj);
        if (esc && ns &&
            asprintf(&url, "%s/apis/apps/v1/namespaces/%s/replicasets?labelSelector=%s",
                     k->t.server, ns, esc) >= 0)
            ob__job_request(j, "GET", url, get_hdr, NULL, on_rs_list);
        else
            ob__job_finish(j, false);
        free(url);
        free(sel);
        free(esc);
        free(ns);
        break;
    }
    }
    cJSON_Delete(obj);
}

static void first_get(struct ob__job *j)
{
    struct kube *k = j->ctx;
    char *url = NULL;

    if (k->op == OP_SCALE) {
        if (asprintf(&url, "%s/scale", k->dep_url) < 0) {
            ob__job_finish(j, false);
            return;
        }
        ob__job_request(j, "GET", url, get_hdr, NULL, on_first_get);
        free(url);
        return;
    }
    ob__job_request(j, "GET", k->dep_url, get_hdr, NULL, on_first_get);
}

/* ---- start ------------------------------------------------------------------ */

static void dry_done(struct ob__job *j)
{
    ob__job_finish(j, true);
}

static void dry_run(struct ob__job *j)
{
    struct kube *k = j->ctx;
    char *body = NULL, *url = NULL;

    ob__job_status(j, "dry run");
    ob__job_printf(j, "dry run: would send\n");
    switch (k->op) {
    case OP_STATUS:
        ob__job_show_request(j, "GET", k->dep_url, get_hdr, NULL);
        break;
    case OP_RESTART:
        body = restart_patch("<resourceVersion from the GET>", k->when);
        ob__job_show_request(j, "GET", k->dep_url, get_hdr, NULL);
        ob__job_printf(j, "\n");
        ob__job_show_request(j, "PATCH", k->dep_url, smp_hdr, body);
        break;
    case OP_SCALE:
        if (asprintf(&url, "%s/scale", k->dep_url) < 0)
            url = NULL;
        body = scale_patch("<resourceVersion from the GET>", k->replicas);
        ob__job_show_request(j, "GET", url ? url : "", get_hdr, NULL);
        ob__job_printf(j, "\n");
        ob__job_show_request(j, "PATCH", url ? url : "", mp_hdr, body);
        break;
    case OP_ROLLBACK:
        ob__job_show_request(j, "GET", k->dep_url, get_hdr, NULL);
        ob__job_printf(j, "\n");
        ob__job_printf(j,
                       "GET %s/apis/apps/v1/namespaces/%s/replicasets?labelSelector=<the "
                       "deployment's selector>\n\n",
                       k->t.server, k->t.ns);
        ob__job_show_request(j, "PATCH", k->dep_url, jp_hdr, NULL);
        if (k->revision > 0)
            ob__job_printf(j,
                           "\n[{\"op\":\"replace\",\"path\":\"/metadata/resourceVersion\",…},"
                           "{\"op\":\"replace\",\"path\":\"/spec/template\",\"value\":<the "
                           "template of revision %ld>}]\n",
                           k->revision);
        else
            ob__job_printf(j, "\n[{\"op\":\"replace\",\"path\":\"/metadata/resourceVersion\",…},"
                              "{\"op\":\"replace\",\"path\":\"/spec/template\",\"value\":<the "
                              "template of the previous revision>}]\n");
        break;
    }
    if (k->op != OP_STATUS && k->follow)
        ob__job_printf(j, "then: GET %s every %lldms until the rollout completes\n", k->dep_url,
                       (long long)k->poll_ms);
    free(body);
    free(url);
    ob__job_after(j, 0, dry_done);
}

static int kube_start(struct ob__job *j)
{
    struct kube *k = calloc(1, sizeof(*k));
    const cJSON *follow = get(j->b, "follow"), *poll = get(j->b, "poll");
    char why[512];
    char *ns = NULL, *name = NULL;
    time_t now = time(NULL);
    struct tm tm;
    int rc, op = parse_op(j->b);

    if (!k)
        return OB_ENOMEM;
    j->ctx = k;
    if (op < 0)
        return OB_EINVAL;
    k->op = (enum op)op;
    k->follow = !follow || cJSON_IsTrue(follow);
    k->detail = cJSON_IsTrue(get(j->b, "detail"));
    k->poll_ms = DEF_POLL_MS;
    if (poll && ob__duration_key_value(&j->prop, poll, &k->poll_ms))
        k->poll_ms = DEF_POLL_MS;
    if (!get(j->b, "timeout")) {
        j->deadline_ms += DEF_KUBE_TIMEOUT_MS - j->timeout_ms;
        j->timeout_ms = DEF_KUBE_TIMEOUT_MS;
    }
    if (int_key_value(&j->prop, get(j->b, "replicas"), 0, &k->replicas) ||
        int_key_value(&j->prop, get(j->b, "revision"), 0, &k->revision))
        return OB_EINVAL;
    if (k->op == OP_SCALE && (k->replicas < 0 || k->replicas > 100000))
        return OB_EINVAL;
    gmtime_r(&now, &tm);
    strftime(k->when, sizeof(k->when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    rc = find_target(j->cfg, &j->prop, &k->t, why, sizeof(why));
    if (!rc)
        rc = ob__kube_target_auth(j->net, j->cfg, &k->t, why, sizeof(why));
    if (rc) {
        /* A target or credential problem is an answer, not a refusal. */
        ob__job_status(j, "no target");
        ob__job_printf(
            j, "cannot reach deployment %s: %s\n",
            ob__param_value(&j->prop, "service", 7) ? ob__param_value(&j->prop, "service", 7) : "?",
            why);
        ob__job_finish(j, false);
        return 0;
    }
    j->base_url = strdup(k->t.server);
    j->ca_file = k->t.ca_file ? strdup(k->t.ca_file) : NULL;
    j->cert_file = k->t.cert_file ? strdup(k->t.cert_file) : NULL;
    j->key_file = k->t.key_file ? strdup(k->t.key_file) : NULL;
    j->insecure = k->t.insecure;
    if (k->t.token)
        rc = ob__job_add_auth(j, "Bearer", k->t.token, false);
    else if (k->t.basic)
        rc = ob__job_add_auth(j, "Basic", k->t.basic, true);
    if (rc)
        return rc;
    ns = ob_http_escape(k->t.ns);
    name = ob_http_escape(k->t.deployment);
    if (!ns || !name ||
        asprintf(&k->dep_url, "%s/apis/apps/v1/namespaces/%s/deployments/%s", k->t.server, ns,
                 name) < 0) {
        k->dep_url = NULL;
        rc = OB_ENOMEM;
        goto out;
    }
    if (j->dry_run)
        dry_run(j);
    else
        first_get(j);
out:
    free(ns);
    free(name);
    return rc;
}

const struct ob__exec_type ob__type_kubernetes = {
    .name = "kubernetes",
    .keys = kube_keys,
    .needs_url = false,
    .check = kube_check,
    .start = kube_start,
    .describe = kube_describe,
    .free_ctx = kube_free,
};
