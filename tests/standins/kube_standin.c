/* The local Kubernetes API stand-in (see kube_standin.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_standin.h"
#include "opsbot/err.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define MAX_DEPS 16
#define MAX_FORBID 16
#define STUCK_TICKS 3
#define REV "deployment.kubernetes.io/revision"

struct dep {
    cJSON *obj;
    bool rolling;
    int ticks;
    int crash_restarts; /* > 0: its first pod is in CrashLoopBackOff */
    bool crash_oom;     /* ... after being OOMKilled */
};

struct ob_kube_standin {
    uv_loop_t *loop;
    struct ob_http_server *srv;
    char *token;
    struct dep deps[MAX_DEPS];
    size_t ndeps;
    cJSON *rsets; /* array of ReplicaSet objects */
    long rv;
    struct {
        char verb[16], ns[64];
    } forbid[MAX_FORBID];
    size_t nforbid;
    int conflicts;
    enum ob_kube_rollout mode;
    int64_t tick_ms;
    uv_timer_t timer;
    bool timer_on;
    size_t requests, patches;
    char last_type[128];
};

/* ---- small helpers ----------------------------------------------------------- */

static cJSON *obj_at(cJSON *o, const char *a, const char *b)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

    if (!x) {
        x = cJSON_AddObjectToObject(o, a);
    }
    if (!b)
        return x;
    o = x;
    x = cJSON_GetObjectItemCaseSensitive(o, b);
    if (!x)
        x = cJSON_AddObjectToObject(o, b);
    return x;
}

static void set_num(cJSON *o, const char *k, double v)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);

    if (x)
        cJSON_SetNumberValue(x, v);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void set_str(cJSON *o, const char *k, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v);
}

static long num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? (long)x->valuedouble : 0;
}

static const char *str_at(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void bump_rv(struct ob_kube_standin *s, cJSON *obj)
{
    char rv[32];

    snprintf(rv, sizeof(rv), "%ld", ++s->rv);
    set_str(obj_at(obj, "metadata", NULL), "resourceVersion", rv);
}

static void hash_hex(const char *text, char *out, size_t len)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *text; text++) {
        h ^= (unsigned char)*text;
        h *= 1099511628211ULL;
    }
    snprintf(out, len, "%08llx", (unsigned long long)(h & 0xffffffffULL));
}

static struct dep *find_dep(struct ob_kube_standin *s, const char *ns, const char *name)
{
    for (size_t i = 0; i < s->ndeps; i++) {
        const char *n = str_at(s->deps[i].obj, "metadata", "name", NULL);
        const char *x = str_at(s->deps[i].obj, "metadata", "namespace", NULL);

        if (n && x && !strcmp(n, name) && !strcmp(x, ns))
            return &s->deps[i];
    }
    return NULL;
}

/* ---- replies ------------------------------------------------------------------ */

static void reply(struct ob_http_exchange *ex, int code, const cJSON *body)
{
    char *t = cJSON_PrintUnformatted(body);

    ob_http_reply(ex, code, "application/json", t, strlen(t), NULL);
    free(t);
}

static void status_reply(struct ob_http_exchange *ex, int code, const char *reason,
                         const char *message, const char *name, const char *kind)
{
    cJSON *st = cJSON_CreateObject();

    cJSON_AddStringToObject(st, "kind", "Status");
    cJSON_AddStringToObject(st, "apiVersion", "v1");
    cJSON_AddObjectToObject(st, "metadata");
    cJSON_AddStringToObject(st, "status", "Failure");
    cJSON_AddStringToObject(st, "message", message);
    cJSON_AddStringToObject(st, "reason", reason);
    if (name || kind) {
        cJSON *d = cJSON_AddObjectToObject(st, "details");

        if (name)
            cJSON_AddStringToObject(d, "name", name);
        cJSON_AddStringToObject(d, "group", "apps");
        if (kind)
            cJSON_AddStringToObject(d, "kind", kind);
    }
    cJSON_AddNumberToObject(st, "code", code);
    reply(ex, code, st);
    cJSON_Delete(st);
}

static bool forbidden(struct ob_kube_standin *s, struct ob_http_exchange *ex, const char *verb,
                      const char *ns, const char *resource, const char *name)
{
    char msg[512];

    for (size_t i = 0; i < s->nforbid; i++) {
        if (strcmp(s->forbid[i].verb, verb) || strcmp(s->forbid[i].ns, ns))
            continue;
        if (name)
            snprintf(msg, sizeof(msg),
                     "%s.apps \"%s\" is forbidden: User \"system:serviceaccount:ops:opsbot\" "
                     "cannot %s resource \"%s\" in API group \"apps\" in the namespace \"%s\"",
                     strncmp(resource, "replicasets", 11) ? "deployments" : "replicasets", name,
                     verb, resource, ns);
        else
            snprintf(msg, sizeof(msg),
                     "%s.apps is forbidden: User \"system:serviceaccount:ops:opsbot\" cannot %s "
                     "resource \"%s\" in API group \"apps\" in the namespace \"%s\"",
                     resource, verb, resource, ns);
        status_reply(ex, 403, "Forbidden", msg, name, resource);
        return true;
    }
    return false;
}

static void not_found(struct ob_http_exchange *ex, const char *name)
{
    char msg[300];

    snprintf(msg, sizeof(msg), "deployments.apps \"%s\" not found", name);
    status_reply(ex, 404, "NotFound", msg, name, "deployments");
}

static void conflict(struct ob_http_exchange *ex, const char *name)
{
    char msg[400];

    snprintf(msg, sizeof(msg),
             "Operation cannot be fulfilled on deployments.apps \"%s\": the object has been "
             "modified; please apply your changes to the latest version and try again",
             name);
    status_reply(ex, 409, "Conflict", msg, name, "deployments");
}

/* ---- ReplicaSets and the controller ----------------------------------------- */

static cJSON *strip_hash(const cJSON *tmpl)
{
    cJSON *t = cJSON_Duplicate(tmpl, true);
    cJSON *labels =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "metadata"), "labels");

    cJSON_DeleteItemFromObjectCaseSensitive(labels, "pod-template-hash");
    return t;
}

static bool owned(const cJSON *rs, const char *uid)
{
    const cJSON *o;

    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(rs, "metadata"), "ownerReferences"))
    {
        const char *u = str_at(o, "uid", NULL, NULL);

        if (u && !strcmp(u, uid))
            return true;
    }
    return false;
}

/* The Deployment's template became current: re-use the ReplicaSet with the
 * same template or create one, with the next revision. */
static void new_revision(struct ob_kube_standin *s, cJSON *dep)
{
    const char *uid = str_at(dep, "metadata", "uid", NULL);
    const char *name = str_at(dep, "metadata", "name", NULL);
    const char *ns = str_at(dep, "metadata", "namespace", NULL);
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(obj_at(dep, "spec", NULL), "template");
    long max = 0;
    cJSON *rs, *hit = NULL;
    char rev[32];

    cJSON_ArrayForEach(rs, s->rsets)
    {
        const char *r;
        cJSON *t;

        if (!owned(rs, uid))
            continue;
        r = str_at(rs, "metadata", "annotations", REV);
        if (r && atol(r) > max)
            max = atol(r);
        t = strip_hash(cJSON_GetObjectItemCaseSensitive(obj_at(rs, "spec", NULL), "template"));
        if (cJSON_Compare(t, tmpl, true))
            hit = rs;
        cJSON_Delete(t);
    }
    snprintf(rev, sizeof(rev), "%ld", max + 1);
    if (!hit) {
        char *text = cJSON_PrintUnformatted(tmpl);
        char h[24], rsname[160];
        cJSON *meta, *owner, *t;

        hash_hex(text, h, sizeof(h));
        free(text);
        snprintf(rsname, sizeof(rsname), "%s-%s", name, h);
        hit = cJSON_CreateObject();
        cJSON_AddStringToObject(hit, "apiVersion", "apps/v1");
        cJSON_AddStringToObject(hit, "kind", "ReplicaSet");
        meta = cJSON_AddObjectToObject(hit, "metadata");
        cJSON_AddStringToObject(meta, "name", rsname);
        cJSON_AddStringToObject(meta, "namespace", ns);
        cJSON_AddItemToObject(
            meta, "labels",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), "labels"),
                            true));
        cJSON_AddStringToObject(obj_at(hit, "metadata", "labels"), "pod-template-hash", h);
        cJSON_AddObjectToObject(meta, "annotations");
        owner = cJSON_AddArrayToObject(meta, "ownerReferences");
        {
            cJSON *o = cJSON_CreateObject();

            cJSON_AddStringToObject(o, "apiVersion", "apps/v1");
            cJSON_AddStringToObject(o, "kind", "Deployment");
            cJSON_AddStringToObject(o, "name", name);
            cJSON_AddStringToObject(o, "uid", uid);
            cJSON_AddTrueToObject(o, "controller");
            cJSON_AddItemToArray(owner, o);
        }
        t = cJSON_Duplicate(tmpl, true);
        cJSON_AddStringToObject(obj_at(obj_at(t, "metadata", NULL), "labels", NULL),
                                "pod-template-hash", h);
        cJSON_AddItemToObject(obj_at(hit, "spec", NULL), "template", t);
        cJSON_AddItemToObject(
            obj_at(hit, "spec", NULL), "selector",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(obj_at(dep, "spec", NULL), "selector"),
                            true));
        cJSON_AddItemToArray(s->rsets, hit);
    }
    set_str(obj_at(hit, "metadata", "annotations"), REV, rev);
    {
        char ts[40];

        ob_time_format(ob_now_ms(), ts, sizeof(ts));
        strcpy(ts + 19, "Z"); /* RFC 3339 without fractions, like the API server */
        set_str(obj_at(hit, "metadata", NULL), "creationTimestamp", ts);
    }
    bump_rv(s, hit);
    set_str(obj_at(dep, "metadata", "annotations"), REV, rev);
}

static void set_condition(cJSON *dep, const char *type, const char *status, const char *reason,
                          const char *message)
{
    cJSON *conds = cJSON_GetObjectItemCaseSensitive(obj_at(dep, "status", NULL), "conditions");
    cJSON *c, *hit = NULL;

    if (!conds)
        conds = cJSON_AddArrayToObject(obj_at(dep, "status", NULL), "conditions");
    cJSON_ArrayForEach(c, conds)
    {
        const char *t = str_at(c, "type", NULL, NULL);

        if (t && !strcmp(t, type))
            hit = c;
    }
    if (!hit) {
        hit = cJSON_CreateObject();
        cJSON_AddStringToObject(hit, "type", type);
        cJSON_AddItemToArray(conds, hit);
    }
    set_str(hit, "status", status);
    set_str(hit, "reason", reason);
    set_str(hit, "message", message);
}

static void on_tick(uv_timer_t *t);

static void start_timer(struct ob_kube_standin *s)
{
    if (!s->timer_on) {
        s->timer_on = true;
        uv_timer_start(&s->timer, on_tick, (uint64_t)s->tick_ms, (uint64_t)s->tick_ms);
    }
}

static void step(struct dep *d)
{
    cJSON *st = obj_at(d->obj, "status", NULL);
    long want = num_at(d->obj, "spec", "replicas");
    long upd = num_at(st, "updatedReplicas", NULL);
    long avail = num_at(st, "availableReplicas", NULL);
    long total;

    if (upd < want) {
        upd++;
        total = upd < want ? want + 1 : want;
        avail = want > 1 ? want - 1 : 0;
    } else {
        upd = want;
        total = want;
        avail = avail < want ? avail + 1 : want;
    }
    set_num(st, "updatedReplicas", (double)upd);
    set_num(st, "replicas", (double)total);
    set_num(st, "availableReplicas", (double)avail);
    set_num(st, "readyReplicas", (double)avail);
    if (upd == want && total == want && avail == want) {
        d->rolling = false;
        set_condition(d->obj, "Progressing", "True", "NewReplicaSetAvailable",
                      "ReplicaSet has successfully progressed.");
        set_condition(d->obj, "Available", "True", "MinimumReplicasAvailable",
                      "Deployment has minimum availability.");
    }
}

static void on_tick(uv_timer_t *t)
{
    struct ob_kube_standin *s = t->data;
    bool any = false;

    for (size_t i = 0; i < s->ndeps; i++) {
        struct dep *d = &s->deps[i];
        cJSON *st;

        if (!d->rolling)
            continue;
        st = obj_at(d->obj, "status", NULL);
        set_num(st, "observedGeneration", (double)num_at(d->obj, "metadata", "generation"));
        d->ticks++;
        if (s->mode == OB_KUBE_ROLLOUT_STUCK) {
            long want = num_at(d->obj, "spec", "replicas");

            set_num(st, "updatedReplicas", 1);
            set_num(st, "replicas", (double)want + 1);
            set_num(st, "availableReplicas", (double)(want > 1 ? want - 1 : 0));
            set_num(st, "readyReplicas", (double)(want > 1 ? want - 1 : 0));
            if (d->ticks >= STUCK_TICKS) {
                set_condition(d->obj, "Progressing", "False", "ProgressDeadlineExceeded",
                              "ReplicaSet has timed out progressing.");
                d->rolling = false;
            }
        } else if (s->mode == OB_KUBE_ROLLOUT_OK || d->ticks % 1000 == 0) {
            step(d);
        }
        bump_rv(s, d->obj);
        any = any || d->rolling;
    }
    if (!any) {
        uv_timer_stop(&s->timer);
        s->timer_on = false;
    }
}

/* The stored object changed from old to d->obj (both complete). */
static void changed(struct ob_kube_standin *s, struct dep *d, const cJSON *old)
{
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(old, "spec");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(d->obj, "spec");

    if (cJSON_Compare(old, d->obj, true))
        return;
    bump_rv(s, d->obj);
    if (cJSON_Compare(os, ns, true))
        return;
    set_num(obj_at(d->obj, "metadata", NULL), "generation",
            (double)num_at(d->obj, "metadata", "generation") + 1);
    if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(os, "template"),
                       cJSON_GetObjectItemCaseSensitive(ns, "template"), true)) {
        new_revision(s, d->obj);
        set_num(obj_at(d->obj, "status", NULL), "updatedReplicas", 0);
        set_condition(d->obj, "Progressing", "True", "ReplicaSetUpdated",
                      "ReplicaSet is progressing.");
    }
    d->rolling = true;
    d->ticks = 0;
    start_timer(s);
}

/* ---- patches ------------------------------------------------------------------- */

static cJSON *merge(cJSON *target, const cJSON *patch)
{
    const cJSON *m;

    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return cJSON_Duplicate(patch, true);
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
    }
    cJSON_ArrayForEach(m, patch)
    {
        cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(target, m->string);

        if (cJSON_IsNull(m)) {
            cJSON_Delete(cur);
            continue;
        }
        cJSON_AddItemToObject(target, m->string, merge(cur, m));
    }
    return target;
}

/* Resolves a JSON pointer to (parent, last token). */
static cJSON *pointer_parent(cJSON *root, const char *ptr, char *last, size_t lastlen)
{
    char tok[256];
    cJSON *cur = root;

    if (*ptr != '/')
        return NULL;
    for (;;) {
        size_t n = 0;

        ptr++;
        while (*ptr && *ptr != '/' && n + 1 < sizeof(tok)) {
            if (ptr[0] == '~' && ptr[1] == '1') {
                tok[n++] = '/';
                ptr += 2;
            } else if (ptr[0] == '~' && ptr[1] == '0') {
                tok[n++] = '~';
                ptr += 2;
            } else {
                tok[n++] = *ptr++;
            }
        }
        tok[n] = '\0';
        if (!*ptr) {
            ob_strlcpy(last, tok, lastlen);
            return cur;
        }
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(tok))
                                 : cJSON_GetObjectItemCaseSensitive(cur, tok);
        if (!cur)
            return NULL;
    }
}

/* Applies a JSON patch to doc in place. Returns 0, or the HTTP status of the
 * failure (422). */
static int json_patch(cJSON *doc, const cJSON *ops)
{
    const cJSON *op;

    if (!cJSON_IsArray(ops))
        return 400;
    cJSON_ArrayForEach(op, ops)
    {
        const char *o = str_at(op, "op", NULL, NULL), *p = str_at(op, "path", NULL, NULL);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(op, "value");
        char last[256];
        cJSON *parent;

        if (!o || !p)
            return 400;
        parent = pointer_parent(doc, p, last, sizeof(last));
        if (!parent)
            return 422;
        if (!strcmp(o, "test")) {
            cJSON *cur = cJSON_GetObjectItemCaseSensitive(parent, last);

            if (!cur || !cJSON_Compare(cur, v, true))
                return 422;
        } else if (!strcmp(o, "remove")) {
            if (!cJSON_GetObjectItemCaseSensitive(parent, last))
                return 422;
            cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        } else if (!strcmp(o, "replace") || !strcmp(o, "add")) {
            if (!v)
                return 400;
            if (!strcmp(o, "replace") && !cJSON_GetObjectItemCaseSensitive(parent, last))
                return 422;
            cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
            cJSON_AddItemToObject(parent, last, cJSON_Duplicate(v, true));
        } else {
            return 400;
        }
    }
    return 0;
}

/* Applies body to a copy of cur per content type. NULL with *code set. */
static cJSON *apply_patch(const cJSON *cur, const char *ctype, const char *body, size_t len,
                          int *code)
{
    cJSON *p = cJSON_ParseWithLength(body, len);
    cJSON *doc = cJSON_Duplicate(cur, true);

    *code = 0;
    if (!p) {
        *code = 400;
    } else if (!strcmp(ctype, "application/strategic-merge-patch+json") ||
               !strcmp(ctype, "application/merge-patch+json")) {
        doc = merge(doc, p);
    } else if (!strcmp(ctype, "application/json-patch+json")) {
        *code = json_patch(doc, p);
    } else {
        *code = 415;
    }
    cJSON_Delete(p);
    if (*code) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static const char *rv_of(const cJSON *o)
{
    const char *rv = str_at(o, "metadata", "resourceVersion", NULL);

    return rv ? rv : "";
}

/* ---- handlers -------------------------------------------------------------------- */

static cJSON *scale_of(const cJSON *dep)
{
    cJSON *sc = cJSON_CreateObject(), *m;
    char sel[200];

    cJSON_AddStringToObject(sc, "kind", "Scale");
    cJSON_AddStringToObject(sc, "apiVersion", "autoscaling/v1");
    m = cJSON_AddObjectToObject(sc, "metadata");
    cJSON_AddStringToObject(m, "name", str_at(dep, "metadata", "name", NULL));
    cJSON_AddStringToObject(m, "namespace", str_at(dep, "metadata", "namespace", NULL));
    cJSON_AddStringToObject(m, "uid", str_at(dep, "metadata", "uid", NULL));
    cJSON_AddStringToObject(m, "resourceVersion", rv_of(dep));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(sc, "spec"), "replicas",
                            (double)num_at(dep, "spec", "replicas"));
    snprintf(sel, sizeof(sel), "app=%s", str_at(dep, "metadata", "name", NULL));
    m = cJSON_AddObjectToObject(sc, "status");
    cJSON_AddNumberToObject(m, "replicas", (double)num_at(dep, "status", "replicas"));
    cJSON_AddStringToObject(m, "selector", sel);
    return sc;
}

static void on_deployment(struct ob_kube_standin *s, struct ob_http_exchange *ex,
                          const struct ob_http_srv_req *req, const char *ns, const char *name,
                          bool scale)
{
    struct dep *d = find_dep(s, ns, name);
    const char *res = scale ? "deployments/scale" : "deployments";
    bool get = !strcmp(req->method, "GET"), patch = !strcmp(req->method, "PATCH");
    bool put = !strcmp(req->method, "PUT");
    cJSON *old, *upd = NULL;
    int code = 0;

    if (!get && !patch && !put) {
        status_reply(ex, 405, "MethodNotAllowed", "the server does not allow this method", name,
                     res);
        return;
    }
    if (forbidden(s, ex, get ? "get" : patch ? "patch" : "update", ns, res, name))
        return;
    if (!d) {
        not_found(ex, name);
        return;
    }
    if (get) {
        cJSON *o = scale ? scale_of(d->obj) : cJSON_Duplicate(d->obj, true);

        reply(ex, 200, o);
        cJSON_Delete(o);
        return;
    }
    if (patch) {
        const char *ct = ob_http_srv_header(req, "content-type");
        cJSON *base = scale ? scale_of(d->obj) : cJSON_Duplicate(d->obj, true);

        s->patches++;
        ob_strlcpy(s->last_type, ct ? ct : "", sizeof(s->last_type));
        if (s->conflicts > 0) {
            s->conflicts--;
            cJSON_Delete(base);
            conflict(ex, name);
            return;
        }
        upd = apply_patch(base, ct ? ct : "", req->body, req->body_len, &code);
        cJSON_Delete(base);
    } else {
        upd = cJSON_ParseWithLength(req->body, req->body_len);
        code = upd ? 0 : 400;
        if (upd && !str_at(upd, "metadata", "resourceVersion", NULL)) {
            cJSON_Delete(upd);
            status_reply(ex, 422, "Invalid",
                         "metadata.resourceVersion: Invalid value: 0x0: must "
                         "be specified for an update",
                         name, res);
            return;
        }
    }
    if (code == 415) {
        status_reply(ex, 415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml",
                     NULL, NULL);
        return;
    }
    if (code) {
        status_reply(ex, code, code == 422 ? "Invalid" : "BadRequest",
                     "the server rejected our request due to an error in our request", name, res);
        return;
    }
    if (strcmp(rv_of(upd), rv_of(d->obj))) {
        cJSON_Delete(upd);
        conflict(ex, name);
        return;
    }
    old = cJSON_Duplicate(d->obj, true);
    if (scale) {
        set_num(obj_at(d->obj, "spec", NULL), "replicas", (double)num_at(upd, "spec", "replicas"));
    } else {
        /* Only spec and metadata labels/annotations are writable here. */
        cJSON_ReplaceItemInObjectCaseSensitive(
            d->obj, "spec", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(upd, "spec"), true));
        if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(upd, "metadata"),
                                             "annotations"))
            cJSON_ReplaceItemInObjectCaseSensitive(
                obj_at(d->obj, "metadata", NULL), "annotations",
                cJSON_Duplicate(
                    cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(upd, "metadata"), "annotations"),
                    true));
    }
    cJSON_Delete(upd);
    changed(s, d, old);
    cJSON_Delete(old);
    {
        cJSON *o = scale ? scale_of(d->obj) : cJSON_Duplicate(d->obj, true);

        reply(ex, 200, o);
        cJSON_Delete(o);
    }
}

static bool selector_matches(const cJSON *rs, const char *sel)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rs, "metadata"), "labels");
    char *copy = ob_xstrdup(sel), *save = NULL;
    bool ok = true;

    for (char *kv = strtok_r(copy, ",", &save); kv && ok; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const cJSON *v;

        if (!eq) {
            ok = false;
            break;
        }
        *eq = '\0';
        v = cJSON_GetObjectItemCaseSensitive(labels, kv);
        ok = cJSON_IsString(v) && !strcmp(v->valuestring, eq[1] == '=' ? eq + 2 : eq + 1);
    }
    free(copy);
    return ok;
}

static char *decode(const char *q, const char *name)
{
    size_t nl = strlen(name);
    const char *p = strstr(q, name);
    char *out;
    size_t o = 0;

    while (p && !(p == q || p[-1] == '&'))
        p = strstr(p + 1, name);
    if (!p || p[nl] != '=')
        return NULL;
    p += nl + 1;
    out = ob_xmalloc(strlen(p) + 1);
    for (; *p && *p != '&'; p++) {
        if (p[0] == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};

            out[o++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            out[o++] = *p == '+' ? ' ' : *p;
        }
    }
    out[o] = '\0';
    return out;
}

static void on_rs_list(struct ob_kube_standin *s, struct ob_http_exchange *ex,
                       const struct ob_http_srv_req *req, const char *ns)
{
    char *sel = decode(req->query, "labelSelector");
    cJSON *list, *items;
    const cJSON *rs;
    char rv[32];

    if (strcmp(req->method, "GET")) {
        status_reply(ex, 405, "MethodNotAllowed", "the server does not allow this method", NULL,
                     "replicasets");
        free(sel);
        return;
    }
    if (forbidden(s, ex, "list", ns, "replicasets", NULL)) {
        free(sel);
        return;
    }
    list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "kind", "ReplicaSetList");
    cJSON_AddStringToObject(list, "apiVersion", "apps/v1");
    snprintf(rv, sizeof(rv), "%ld", s->rv);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(list, "metadata"), "resourceVersion", rv);
    items = cJSON_AddArrayToObject(list, "items");
    cJSON_ArrayForEach(rs, s->rsets)
    {
        const char *x = str_at(rs, "metadata", "namespace", NULL);

        if (x && !strcmp(x, ns) && (!sel || selector_matches(rs, sel)))
            cJSON_AddItemToArray(items, cJSON_Duplicate(rs, true));
    }
    reply(ex, 200, list);
    cJSON_Delete(list);
    free(sel);
}

/* GET /api/v1/namespaces/NS/pods?labelSelector=…: the pods of every
 * Deployment of NS whose selector labels match, made up from its status
 * (ready replicas are ready pods) and the crash loop set by
 * ob_kube_standin_crashloop. */
static void on_pods(struct ob_kube_standin *s, struct ob_http_exchange *ex,
                    const struct ob_http_srv_req *req, const char *ns)
{
    char *sel = decode(req->query, "labelSelector");
    cJSON *list, *items;

    if (forbidden(s, ex, "list", ns, "pods", NULL)) {
        free(sel);
        return;
    }
    list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "kind", "PodList");
    cJSON_AddStringToObject(list, "apiVersion", "v1");
    items = cJSON_AddArrayToObject(list, "items");
    for (size_t i = 0; i < s->ndeps; i++) {
        struct dep *d = &s->deps[i];
        const char *x = str_at(d->obj, "metadata", "namespace", NULL);
        const char *name = str_at(d->obj, "metadata", "name", NULL);
        cJSON *tmpl = obj_at(d->obj, "spec", "template");
        long want = num_at(d->obj, "spec", "replicas");
        long ready = num_at(d->obj, "status", "readyReplicas");
        cJSON fake = {0};

        fake.type = cJSON_Object;
        fake.child = cJSON_GetObjectItemCaseSensitive(tmpl, "metadata");
        if (!x || strcmp(x, ns) || !name || (sel && !selector_matches(&fake, sel)))
            continue;
        for (long k = 0; k < want && k < 100; k++) {
            cJSON *pod = cJSON_CreateObject(), *st, *cs, *c;
            char pname[200];
            bool crash = k == 0 && d->crash_restarts > 0;
            bool is_ready = !crash && k < ready;

            snprintf(pname, sizeof(pname), "%s-7d9f8c-%ld", name, k);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(pod, "metadata"), "name", pname);
            cJSON_AddItemToObject(
                cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "labels",
                cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                    cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), "labels"),
                                true));
            st = cJSON_AddObjectToObject(pod, "status");
            cJSON_AddStringToObject(st, "phase", "Running");
            cs = cJSON_AddArrayToObject(st, "containerStatuses");
            c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "name", name);
            cJSON_AddBoolToObject(c, "ready", is_ready);
            cJSON_AddNumberToObject(c, "restartCount", crash ? d->crash_restarts : 0);
            if (crash) {
                cJSON_AddStringToObject(
                    cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "state"), "waiting"),
                    "reason", "CrashLoopBackOff");
                cJSON_AddStringToObject(
                    cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "lastState"), "terminated"),
                    "reason", d->crash_oom ? "OOMKilled" : "Error");
            } else {
                cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "state"), "running");
            }
            cJSON_AddItemToArray(cs, c);
            cJSON_AddItemToArray(items, pod);
        }
    }
    reply(ex, 200, list);
    cJSON_Delete(list);
    free(sel);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    static const char prefix[] = "/apis/apps/v1/namespaces/";
    struct ob_kube_standin *s = data;
    const char *auth = ob_http_srv_header(req, "authorization");
    char ns[64], kind[32], name[128], sub[32];
    const char *p;
    int n;

    s->requests++;
    if (s->token && (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, s->token))) {
        status_reply(ex, 401, "Unauthorized", "Unauthorized", NULL, NULL);
        return;
    }
    if (!strncmp(req->path, "/api/v1/namespaces/", 19) && !strcmp(req->method, "GET") &&
        sscanf(req->path + 19, "%63[^/]/%31[^/]", ns, kind) == 2 && !strcmp(kind, "pods") &&
        !strchr(req->path + 19 + strlen(ns) + 1, '/')) {
        on_pods(s, ex, req, ns);
        return;
    }
    if (strncmp(req->path, prefix, sizeof(prefix) - 1)) {
        status_reply(ex, 404, "NotFound", "the server could not find the requested resource", NULL,
                     NULL);
        return;
    }
    p = req->path + sizeof(prefix) - 1;
    ns[0] = kind[0] = name[0] = sub[0] = '\0';
    n = sscanf(p, "%63[^/]/%31[^/]/%127[^/]/%31[^/]", ns, kind, name, sub);
    if (n == 2 && !strcmp(kind, "replicasets")) {
        on_rs_list(s, ex, req, ns);
    } else if ((n == 3 || (n == 4 && !strcmp(sub, "scale"))) && !strcmp(kind, "deployments")) {
        on_deployment(s, ex, req, ns, name, n == 4);
    } else {
        status_reply(ex, 404, "NotFound", "the server could not find the requested resource", NULL,
                     NULL);
    }
}

/* ---- API ------------------------------------------------------------------------ */

int ob_kube_standin_new(struct ob_kube_standin **out, struct ob_lws *lws, uv_loop_t *loop,
                        const char *token)
{
    struct ob_kube_standin *s = ob_xcalloc(1, sizeof(*s));
    struct ob_http_server_opts o = {.listen = "127.0.0.1:0"};
    int rc;

    s->loop = loop;
    s->token = token ? ob_xstrdup(token) : NULL;
    s->rsets = cJSON_CreateArray();
    s->rv = 1000;
    s->tick_ms = 20;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    rc = ob_http_server_new(lws, &o, handler, s, &s->srv);
    if (rc) {
        *out = NULL;
        ob_kube_standin_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void ob_kube_standin_free(struct ob_kube_standin *s)
{
    if (!s)
        return;
    if (s->srv)
        ob_http_server_free(s->srv);
    for (size_t i = 0; i < s->ndeps; i++)
        cJSON_Delete(s->deps[i].obj);
    cJSON_Delete(s->rsets);
    free(s->token);
    uv_timer_stop(&s->timer);
    s->timer.data = s;
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

int ob_kube_standin_port(const struct ob_kube_standin *s)
{
    return ob_http_server_port(s->srv);
}

void ob_kube_standin_add(struct ob_kube_standin *s, const char *ns, const char *name, int replicas,
                         int revisions)
{
    struct dep *d;
    cJSON *o, *m, *spec, *tmpl, *c, *st;
    char uid[96], img[200];

    if (s->ndeps == MAX_DEPS)
        return;
    d = &s->deps[s->ndeps++];
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "apps/v1");
    cJSON_AddStringToObject(o, "kind", "Deployment");
    m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "namespace", ns);
    snprintf(uid, sizeof(uid), "uid-%s-%s", ns, name);
    cJSON_AddStringToObject(m, "uid", uid);
    cJSON_AddNumberToObject(m, "generation", 1);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "app", name);
    cJSON_AddObjectToObject(m, "annotations");
    spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddNumberToObject(spec, "replicas", replicas);
    cJSON_AddStringToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(spec, "selector"), "matchLabels"), "app",
        name);
    cJSON_AddNumberToObject(spec, "progressDeadlineSeconds", 600);
    tmpl = cJSON_AddObjectToObject(spec, "template");
    cJSON_AddStringToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(tmpl, "metadata"), "labels"), "app", name);
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "image", "");
    cJSON_AddItemToArray(
        cJSON_AddArrayToObject(cJSON_AddObjectToObject(tmpl, "spec"), "containers"), c);
    st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddNumberToObject(st, "observedGeneration", 1);
    cJSON_AddNumberToObject(st, "replicas", replicas);
    cJSON_AddNumberToObject(st, "updatedReplicas", replicas);
    cJSON_AddNumberToObject(st, "readyReplicas", replicas);
    cJSON_AddNumberToObject(st, "availableReplicas", replicas);
    d->obj = o;
    for (int r = 1; r <= revisions; r++) {
        snprintf(img, sizeof(img), "registry.example/%s:1.%d", name, r);
        cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(c, "image"), img);
        new_revision(s, o);
    }
    set_condition(o, "Available", "True", "MinimumReplicasAvailable",
                  "Deployment has minimum availability.");
    set_condition(o, "Progressing", "True", "NewReplicaSetAvailable",
                  "ReplicaSet has successfully progressed.");
    bump_rv(s, o);
}

void ob_kube_standin_forbid(struct ob_kube_standin *s, const char *verb, const char *ns)
{
    if (s->nforbid == MAX_FORBID)
        return;
    ob_strlcpy(s->forbid[s->nforbid].verb, verb, sizeof(s->forbid[0].verb));
    ob_strlcpy(s->forbid[s->nforbid].ns, ns, sizeof(s->forbid[0].ns));
    s->nforbid++;
}

void ob_kube_standin_conflicts(struct ob_kube_standin *s, int n)
{
    s->conflicts = n;
}

void ob_kube_standin_mode(struct ob_kube_standin *s, enum ob_kube_rollout mode, int64_t tick_ms)
{
    s->mode = mode;
    s->tick_ms = tick_ms > 0 ? tick_ms : 20;
}

const cJSON *ob_kube_standin_deployment(const struct ob_kube_standin *s, const char *ns,
                                        const char *name)
{
    struct dep *d = find_dep((struct ob_kube_standin *)s, ns, name);

    return d ? d->obj : NULL;
}

size_t ob_kube_standin_requests(const struct ob_kube_standin *s)
{
    return s->requests;
}

size_t ob_kube_standin_patches(const struct ob_kube_standin *s)
{
    return s->patches;
}

const char *ob_kube_standin_last_patch_type(const struct ob_kube_standin *s)
{
    return s->last_type;
}

void ob_kube_standin_crashloop(struct ob_kube_standin *s, const char *ns, const char *name,
                               int restarts, bool oom)
{
    struct dep *d = find_dep(s, ns, name);

    if (!d)
        return;
    d->crash_restarts = restarts;
    d->crash_oom = oom;
    if (restarts > 0)
        set_num(obj_at(d->obj, "status", NULL), "readyReplicas",
                (double)(num_at(d->obj, "spec", "replicas") - 1));
}

void ob_kube_standin_rollout_age(struct ob_kube_standin *s, const char *ns, const char *name,
                                 int64_t seconds)
{
    struct dep *d = find_dep(s, ns, name);
    const char *uid, *cur;
    cJSON *rs;

    if (!d)
        return;
    uid = str_at(d->obj, "metadata", "uid", NULL);
    cur = str_at(d->obj, "metadata", "annotations", REV);
    cJSON_ArrayForEach(rs, s->rsets)
    {
        const char *r = str_at(rs, "metadata", "annotations", REV);
        char ts[40];

        if (!uid || !cur || !r || !owned(rs, uid) || strcmp(r, cur))
            continue;
        ob_time_format(ob_now_ms() - seconds * 1000, ts, sizeof(ts));
        strcpy(ts + 19, "Z");
        set_str(obj_at(rs, "metadata", NULL), "creationTimestamp", ts);
    }
}
