/* Kubernetes targets (service + env -> cluster, namespace, deployment) and
 * API-server credentials.
 *
 *   targets:
 *     clusters:
 *       prod:    {in_cluster: true}                   # the pod's service account
 *       staging: {kubeconfig: ~/.kube/config, context: staging-eu1}
 *       lab:     {server: https://10.0.0.1:6443, token: "${LAB_TOKEN}",
 *                 ca_file: lab-ca.pem}                # or token_file, cert_file + key_file
 *     envs:
 *       prod:    {cluster: prod, namespace: prod}
 *       staging: {cluster: staging, namespace: staging}
 *     services:                                       # optional exceptions
 *       checkout: {deployment: checkout-web}
 *       payments: {namespace: payments, envs: {prod: {namespace: payments-prod}}}
 *
 * A service not listed under services is the deployment of the same name in
 * the env's namespace. Values come only from this mapping and from validated
 * parameters, never from free text.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_FILE (256 * 1024)

bool ob__dns_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

bool ob__dns_subdomain(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.'))
            return false;
        if (s[i] == '.' && (s[i + 1] == '.' || s[i + 1] == '-' || s[i - 1] == '-'))
            return false;
    }
    return true;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);

    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* ---- load-time check ---------------------------------------------------- */

static void err(const struct ob_config *cfg, struct ob_diag *d, const cJSON *node, int *nerr,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void err(const struct ob_config *cfg, struct ob_diag *d, const cJSON *node, int *nerr,
                const char *fmt, ...)
{
    char where[256], msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_diag_addf(d, "%s: %s", ob_config_where(cfg, node, where, sizeof(where)), msg);
    (*nerr)++;
}

static void check_cluster(const struct ob_config *cfg, const cJSON *c, struct ob_diag *d, int *nerr)
{
    static const char *const keys[] = {"in_cluster", "sa_dir",   "kubeconfig", "context",
                                       "server",     "token",    "token_file", "ca_file",
                                       "cert_file",  "key_file", "insecure",   NULL};
    const char *name = c->string;
    int kinds = 0;

    if (!cJSON_IsObject(c)) {
        err(cfg, d, c, nerr, "targets.clusters.%s: must be a mapping", name);
        return;
    }
    *nerr += ob_cfg_check_keys(cfg, c, keys, "targets.clusters", d);
    kinds += cJSON_IsTrue(get(c, "in_cluster"));
    kinds += get(c, "kubeconfig") != NULL;
    kinds += get(c, "server") != NULL;
    if (kinds != 1)
        err(cfg, d, c, nerr,
            "targets.clusters.%s: give exactly one of in_cluster: true, kubeconfig or server",
            name);
    if (get(c, "in_cluster") && !cJSON_IsBool(get(c, "in_cluster")))
        err(cfg, d, get(c, "in_cluster"), nerr, "targets.clusters.%s.in_cluster: true or false",
            name);
    if (get(c, "insecure") && !cJSON_IsBool(get(c, "insecure")))
        err(cfg, d, get(c, "insecure"), nerr, "targets.clusters.%s.insecure: true or false", name);
    for (size_t i = 1; keys[i]; i++) {
        const cJSON *v = get(c, keys[i]);

        if (v && strcmp(keys[i], "insecure") && (!cJSON_IsString(v) || !*v->valuestring))
            err(cfg, d, v, nerr, "targets.clusters.%s.%s: must be a non-empty string", name,
                keys[i]);
    }
    if (str(c, "server") && strncmp(str(c, "server"), "https://", 8) &&
        strncmp(str(c, "server"), "http://", 7))
        err(cfg, d, get(c, "server"), nerr, "targets.clusters.%s.server: not an http(s) URL", name);
    if (get(c, "context") && !get(c, "kubeconfig"))
        err(cfg, d, get(c, "context"), nerr, "targets.clusters.%s.context: only with kubeconfig",
            name);
    if (!get(c, "cert_file") != !get(c, "key_file"))
        err(cfg, d, c, nerr, "targets.clusters.%s: cert_file and key_file go together", name);
}

static void check_place(const struct ob_config *cfg, const cJSON *m, const char *what,
                        struct ob_diag *d, int *nerr)
{
    const char *ns = str(m, "namespace"), *dep = str(m, "deployment");

    if (get(m, "namespace") && (!ns || !ob__dns_label(ns)))
        err(cfg, d, get(m, "namespace"), nerr, "%s.namespace: not a valid namespace name", what);
    if (get(m, "deployment") && (!dep || !ob__dns_subdomain(dep)))
        err(cfg, d, get(m, "deployment"), nerr, "%s.deployment: not a valid deployment name", what);
}

int ob_targets_check(const struct ob_config *cfg, struct ob_diag *d)
{
    static const char *const top[] = {"clusters", "envs", "services", NULL};
    static const char *const env_keys[] = {"cluster", "namespace", NULL};
    static const char *const svc_keys[] = {"deployment", "namespace", "envs", NULL};
    static const char *const svc_env_keys[] = {"deployment", "namespace", NULL};
    const cJSON *t = get(ob_config_root(cfg), "targets"), *clusters, *envs, *services, *it;
    int nerr = 0;
    char what[200];

    if (!t || cJSON_IsNull(t))
        return 0;
    if (!cJSON_IsObject(t)) {
        err(cfg, d, t, &nerr, "targets: must be a mapping (clusters, envs, services)");
        return OB_ECONFIG;
    }
    nerr += ob_cfg_check_keys(cfg, t, top, "targets", d);
    clusters = get(t, "clusters");
    envs = get(t, "envs");
    services = get(t, "services");
    if (!cJSON_IsObject(clusters) || !cJSON_GetArraySize(clusters))
        err(cfg, d, clusters ? clusters : t, &nerr,
            "targets.clusters: required, a mapping of cluster name to connection");
    cJSON_ArrayForEach(it, clusters)
    {
        check_cluster(cfg, it, d, &nerr);
    }
    if (!cJSON_IsObject(envs) || !cJSON_GetArraySize(envs))
        err(cfg, d, envs ? envs : t, &nerr,
            "targets.envs: required, a mapping of env to {cluster, namespace}");
    cJSON_ArrayForEach(it, envs)
    {
        const char *cl = str(it, "cluster");

        snprintf(what, sizeof(what), "targets.envs.%s", it->string);
        if (!cJSON_IsObject(it)) {
            err(cfg, d, it, &nerr, "%s: must be a mapping {cluster, namespace}", what);
            continue;
        }
        nerr += ob_cfg_check_keys(cfg, it, env_keys, what, d);
        if (!cl)
            err(cfg, d, it, &nerr, "%s.cluster: required", what);
        else if (!get(clusters, cl))
            err(cfg, d, get(it, "cluster"), &nerr,
                "%s.cluster: no cluster '%s' in "
                "targets.clusters",
                what, cl);
        else if (!get(it, "namespace") && get(get(clusters, cl), "server"))
            err(cfg, d, it, &nerr,
                "%s.namespace: required (in-cluster targets default to the pod's namespace, "
                "kubeconfig ones to the context's)",
                what);
        check_place(cfg, it, what, d, &nerr);
    }
    if (services && !cJSON_IsObject(services))
        err(cfg, d, services, &nerr, "targets.services: must be a mapping");
    cJSON_ArrayForEach(it, services)
    {
        const cJSON *se, *e;

        snprintf(what, sizeof(what), "targets.services.%s", it->string);
        if (!cJSON_IsObject(it)) {
            err(cfg, d, it, &nerr, "%s: must be a mapping {deployment, namespace, envs}", what);
            continue;
        }
        nerr += ob_cfg_check_keys(cfg, it, svc_keys, what, d);
        check_place(cfg, it, what, d, &nerr);
        se = get(it, "envs");
        if (se && !cJSON_IsObject(se))
            err(cfg, d, se, &nerr, "%s.envs: must be a mapping", what);
        cJSON_ArrayForEach(e, se)
        {
            char w2[300];

            snprintf(w2, sizeof(w2), "%s.envs.%s", what, e->string);
            if (!get(envs, e->string))
                err(cfg, d, e, &nerr, "%s: no env '%s' in targets.envs", w2, e->string);
            if (!cJSON_IsObject(e)) {
                err(cfg, d, e, &nerr, "%s: must be a mapping {deployment, namespace}", w2);
                continue;
            }
            nerr += ob_cfg_check_keys(cfg, e, svc_env_keys, w2, d);
            check_place(cfg, e, w2, d, &nerr);
        }
    }
    return nerr ? OB_ECONFIG : 0;
}

/* ---- lookup ------------------------------------------------------------- */

int ob__kube_target_find(const struct ob_config *cfg, const char *service, const char *env,
                         struct ob__kube_target *t, char *why, size_t whylen)
{
    const cJSON *tg = cfg ? get(ob_config_root(cfg), "targets") : NULL;
    const cJSON *e, *svc, *svce;
    const char *v;

    memset(t, 0, sizeof(*t));
    if (!cJSON_IsObject(tg)) {
        snprintf(why, whylen, "the configuration has no targets: section");
        return OB_EINVAL;
    }
    e = get(get(tg, "envs"), env);
    if (!cJSON_IsObject(e) || !str(e, "cluster")) {
        snprintf(why, whylen, "env '%s' has no entry in targets.envs", env);
        return OB_ENOTFOUND;
    }
    ob_strlcpy(t->cluster, str(e, "cluster"), sizeof(t->cluster));
    ob_strlcpy(t->ns, str(e, "namespace") ? str(e, "namespace") : "", sizeof(t->ns));
    ob_strlcpy(t->deployment, service, sizeof(t->deployment));
    svc = get(get(tg, "services"), service);
    svce = get(get(svc, "envs"), env);
    v = str(svce, "namespace") ? str(svce, "namespace") : str(svc, "namespace");
    if (v)
        ob_strlcpy(t->ns, v, sizeof(t->ns));
    v = str(svce, "deployment") ? str(svce, "deployment") : str(svc, "deployment");
    if (v)
        ob_strlcpy(t->deployment, v, sizeof(t->deployment));
    if (!ob__dns_subdomain(t->deployment)) {
        snprintf(why, whylen, "'%s' is not a valid deployment name", t->deployment);
        return OB_EINVAL;
    }
    if (t->ns[0] && !ob__dns_label(t->ns)) {
        snprintf(why, whylen, "'%s' is not a valid namespace", t->ns);
        return OB_EINVAL;
    }
    return 0;
}

/* ---- credentials -------------------------------------------------------- */

static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, MAX_FILE, f);
    fclose(f);
    buf[n] = '\0';
    if (len_out)
        *len_out = n;
    return buf;
}

static char *read_token(const char *path)
{
    char *t = read_file(path, NULL);
    size_t n;

    if (!t)
        return NULL;
    n = strlen(t);
    while (n && strchr(" \t\r\n", t[n - 1]))
        t[--n] = '\0';
    if (!n || strpbrk(t, "\r\n")) {
        free(t);
        return NULL;
    }
    return t;
}

/* Resolves p (with "~/" = $HOME) against base (a directory) or the config. */
static char *resolve(const struct ob_config *cfg, const char *base, const char *p)
{
    char *out = NULL;

    if (!p)
        return NULL;
    if (p[0] == '~' && p[1] == '/' && getenv("HOME")) {
        if (asprintf(&out, "%s/%s", getenv("HOME"), p + 2) < 0)
            return NULL;
        return out;
    }
    if (p[0] == '/' || (!base && !cfg))
        return strdup(p);
    if (base) {
        if (asprintf(&out, "%s/%s", base, p) < 0)
            return NULL;
        return out;
    }
    return ob_config_path(cfg, p);
}

/* Writes decoded base64 data to a 0600 file in n's private directory (named
 * by its hash, so repeated jobs reuse it). */
static char *blob_file(struct ob__net *n, const char *b64, char *why, size_t whylen)
{
    size_t blen = strlen(b64), binlen = 0;
    unsigned char *bin = malloc(blen + 1);
    unsigned char h[16];
    char hex[33], *path = NULL;
    int fd = -1;

    if (!bin)
        return NULL;
    if (sodium_base642bin(bin, blen, b64, blen, " \n\r\t", &binlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL)) {
        snprintf(why, whylen, "kubeconfig: a *-data value is not base64");
        goto out;
    }
    if (!n->tmpdir) {
        const char *tmp = getenv("TMPDIR");
        char *tpl = NULL;

        if (asprintf(&tpl, "%s/opsbot-kube-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
            goto out;
        if (!mkdtemp(tpl)) {
            snprintf(why, whylen, "cannot create a private directory: %s", strerror(errno));
            free(tpl);
            goto out;
        }
        n->tmpdir = tpl;
    }
    crypto_generichash(h, sizeof(h), bin, binlen, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    if (asprintf(&path, "%s/%s.pem", n->tmpdir, hex) < 0) {
        path = NULL;
        goto out;
    }
    if (access(path, R_OK) == 0)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, bin, binlen) != (ssize_t)binlen) {
        snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(path);
        free(path);
        path = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    sodium_memzero(bin, blen + 1);
    free(bin);
    return path;
}

static const cJSON *named(const cJSON *list, const char *name, const char *inner)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, list)
    {
        const char *n = str(it, "name");

        if (n && !strcmp(n, name))
            return get(it, inner);
    }
    return NULL;
}

static int from_kubeconfig(struct ob__net *n, const struct ob_config *cfg, const cJSON *cl,
                           struct ob__kube_target *t, char *why, size_t whylen)
{
    char *path = resolve(cfg, NULL, str(cl, "kubeconfig"));
    char *dir = NULL, *slash;
    struct ob_config *kc = NULL;
    struct ob_diag d;
    const cJSON *root, *ctx, *cluster, *user;
    const char *cname = str(cl, "context"), *v;
    int rc = OB_EINVAL;

    ob_diag_init(&d);
    if (!path)
        return OB_ENOMEM;
    if (access(path, R_OK)) {
        snprintf(why, whylen, "cannot read kubeconfig %s: %s", path, strerror(errno));
        goto out;
    }
    if (ob_config_load(&kc, path, &d)) {
        snprintf(why, whylen, "kubeconfig %s: %s", path, d.n && d.lines[0] ? d.lines[0] : "bad");
        goto out;
    }
    dir = strdup(path);
    slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    root = ob_config_root(kc);
    if (!cname)
        cname = str(root, "current-context");
    if (!cname) {
        snprintf(why, whylen, "kubeconfig %s: no context given and no current-context", path);
        goto out;
    }
    ctx = named(get(root, "contexts"), cname, "context");
    if (!ctx) {
        snprintf(why, whylen, "kubeconfig %s: no context '%s'", path, cname);
        goto out;
    }
    cluster =
        named(get(root, "clusters"), str(ctx, "cluster") ? str(ctx, "cluster") : "", "cluster");
    user = named(get(root, "users"), str(ctx, "user") ? str(ctx, "user") : "", "user");
    if (!cluster || !str(cluster, "server")) {
        snprintf(why, whylen, "kubeconfig %s: context '%s' has no cluster with a server", path,
                 cname);
        goto out;
    }
    t->server = strdup(str(cluster, "server"));
    t->insecure = cJSON_IsTrue(get(cluster, "insecure-skip-tls-verify"));
    if (!t->ns[0] && str(ctx, "namespace"))
        ob_strlcpy(t->ns, str(ctx, "namespace"), sizeof(t->ns));
    v = str(cluster, "certificate-authority-data");
    if (v) {
        t->ca_file = blob_file(n, v, why, whylen);
        if (!t->ca_file)
            goto out;
    } else if (str(cluster, "certificate-authority")) {
        t->ca_file = resolve(NULL, dir, str(cluster, "certificate-authority"));
    }
    if (get(user, "exec") || get(user, "auth-provider")) {
        snprintf(why, whylen,
                 "kubeconfig %s: user of context '%s' uses an exec or auth-provider plugin, "
                 "which opsbot does not run (use a token or a client certificate)",
                 path, cname);
        goto out;
    }
    if (str(user, "token")) {
        t->token = strdup(str(user, "token"));
    } else if (str(user, "tokenFile")) {
        char *tf = resolve(NULL, dir, str(user, "tokenFile"));

        t->token = tf ? read_token(tf) : NULL;
        if (!t->token) {
            snprintf(why, whylen, "cannot read the token file %s", tf ? tf : "?");
            free(tf);
            goto out;
        }
        free(tf);
    } else if (str(user, "username") && str(user, "password")) {
        if (asprintf(&t->basic, "%s:%s", str(user, "username"), str(user, "password")) < 0) {
            t->basic = NULL;
            goto out;
        }
    }
    v = str(user, "client-certificate-data");
    if (v) {
        t->cert_file = blob_file(n, v, why, whylen);
        if (!t->cert_file)
            goto out;
    } else if (str(user, "client-certificate")) {
        t->cert_file = resolve(NULL, dir, str(user, "client-certificate"));
    }
    v = str(user, "client-key-data");
    if (v) {
        t->key_file = blob_file(n, v, why, whylen);
        if (!t->key_file)
            goto out;
    } else if (str(user, "client-key")) {
        t->key_file = resolve(NULL, dir, str(user, "client-key"));
    }
    rc = t->server ? 0 : OB_ENOMEM;
out:
    ob_diag_release(&d);
    ob_config_free(kc);
    free(path);
    free(dir);
    return rc;
}

static int in_cluster(struct ob__kube_target *t, const char *dir, const char *host,
                      const char *port, char *why, size_t whylen)
{
    char *p = NULL;

    if (asprintf(&t->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
                 port && *port ? port : "443") < 0) {
        t->server = NULL;
        return OB_ENOMEM;
    }
    if (asprintf(&p, "%s/token", dir) < 0)
        return OB_ENOMEM;
    t->token = read_token(p);
    if (!t->token) {
        snprintf(why, whylen, "cannot read the service account token %s", p);
        free(p);
        return OB_EINVAL;
    }
    free(p);
    if (asprintf(&t->ca_file, "%s/ca.crt", dir) < 0) {
        t->ca_file = NULL;
        return OB_ENOMEM;
    }
    if (!t->ns[0]) {
        if (asprintf(&p, "%s/namespace", dir) < 0)
            return OB_ENOMEM;
        {
            char *ns = read_token(p);

            if (ns && ob__dns_label(ns))
                ob_strlcpy(t->ns, ns, sizeof(t->ns));
            free(ns);
        }
        free(p);
    }
    return 0;
}

int ob__kube_target_auth(struct ob__net *n, const struct ob_config *cfg, struct ob__kube_target *t,
                         char *why, size_t whylen)
{
    const cJSON *cl = get(get(get(ob_config_root(cfg), "targets"), "clusters"), t->cluster);

    if (!cJSON_IsObject(cl)) {
        snprintf(why, whylen, "no cluster '%s' in targets.clusters", t->cluster);
        return OB_EINVAL;
    }
    if (cJSON_IsTrue(get(cl, "in_cluster"))) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        char *dir;
        int rc;

        t->service_account = true;
        if (!host || !*host) {
            snprintf(why, whylen,
                     "cluster '%s' is in_cluster but KUBERNETES_SERVICE_HOST is not set (not "
                     "running in a pod?)",
                     t->cluster);
            return OB_EINVAL;
        }
        dir = resolve(cfg, NULL, str(cl, "sa_dir") ? str(cl, "sa_dir") : SA_DIR);
        if (!dir)
            return OB_ENOMEM;
        rc = in_cluster(t, dir, host, port, why, whylen);
        free(dir);
        if (rc)
            return rc;
    } else if (str(cl, "kubeconfig")) {
        int rc = from_kubeconfig(n, cfg, cl, t, why, whylen);

        if (rc)
            return rc;
    } else {
        const char *v;

        t->server = strdup(str(cl, "server") ? str(cl, "server") : "");
        if (str(cl, "token")) {
            t->token = strdup(str(cl, "token"));
        } else if (str(cl, "token_file")) {
            char *tf = resolve(cfg, NULL, str(cl, "token_file"));

            t->token = tf ? read_token(tf) : NULL;
            if (!t->token) {
                snprintf(why, whylen, "cannot read the token file %s", tf ? tf : "?");
                free(tf);
                return OB_EINVAL;
            }
            free(tf);
        }
        v = str(cl, "ca_file");
        t->ca_file = v ? resolve(cfg, NULL, v) : NULL;
        v = str(cl, "cert_file");
        t->cert_file = v ? resolve(cfg, NULL, v) : NULL;
        v = str(cl, "key_file");
        t->key_file = v ? resolve(cfg, NULL, v) : NULL;
        t->insecure = cJSON_IsTrue(get(cl, "insecure"));
    }
    if (!t->server)
        return OB_ENOMEM;
    {
        size_t k = strlen(t->server);

        while (k && t->server[k - 1] == '/')
            t->server[--k] = '\0';
    }
    if (!t->ns[0]) {
        snprintf(why, whylen, "no namespace for cluster '%s'", t->cluster);
        return OB_EINVAL;
    }
    if (t->token && strpbrk(t->token, "\r\n")) {
        snprintf(why, whylen, "the token of cluster '%s' is not one line", t->cluster);
        return OB_EINVAL;
    }
    return 0;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    sodium_memzero(s, strlen(s));
    free(s);
}

void ob__kube_target_release(struct ob__kube_target *t)
{
    if (!t)
        return;
    free(t->server);
    wipe_free(t->token);
    wipe_free(t->basic);
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
    t->server = t->token = t->basic = t->ca_file = t->cert_file = t->key_file = NULL;
}
