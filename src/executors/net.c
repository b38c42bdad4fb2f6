/* The network executors' common part: the type table (the one dispatch
 * point besides `exec`), the load-time check of the shared binding keys,
 * the life of a job, requests with auth and TLS, dry-run display and the
 * small template helpers. See net.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define DEF_TIMEOUT_MS 30000
#define MAX_TIMEOUT_MS (24LL * 3600 * 1000)
#define REQ_TIMEOUT_MS 30000
#define MAX_TMPL 8192

static const struct ob__exec_type *const types[] = {
    &ob__type_prometheus, &ob__type_loki, &ob__type_kubernetes, &ob__type_http, NULL,
};

const struct ob__exec_type *ob__exec_type_find(const char *name)
{
    for (size_t i = 0; name && types[i]; i++) {
        if (!strcmp(types[i]->name, name))
            return types[i];
    }
    return NULL;
}

const char *ob__exec_type_names(void)
{
    return "exec, prometheus, loki, kubernetes, http";
}

bool ob_exec_binding_is_network(const cJSON *binding)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(binding, "type");

    return cJSON_IsString(t) && ob__exec_type_find(t->valuestring) != NULL;
}

/* ---- template helpers --------------------------------------------------- */

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

bool ob__ph_at(const char *s, size_t *name_len)
{
    size_t j = 1;

    if (s[0] != '{' || !name_start(s[1]))
        return false;
    while (name_char(s[j]))
        j++;
    if (s[j] != '}' || j - 1 > 63)
        return false;
    *name_len = j - 1;
    return true;
}

const struct ob_param_def *ob__param_def(const struct ob_action *a, const char *name, size_t n)
{
    for (size_t i = 0; a && i < a->nparams; i++) {
        if (a->params[i].name && strlen(a->params[i].name) == n &&
            !memcmp(a->params[i].name, name, n))
            return &a->params[i];
    }
    return NULL;
}

const char *ob__param_value(const struct ob_proposal *prop, const char *name, size_t n)
{
    const struct ob_param_def *def = ob__param_def(prop->action, name, n);

    for (size_t i = 0; i < prop->nparams && i < OB_MAX_PARAMS; i++) {
        if (strlen(prop->params[i].name) == n && !memcmp(prop->params[i].name, name, n))
            return prop->params[i].value;
    }
    if (!def || def->required)
        return NULL;
    return "";
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *np;

        while (cap < b->len + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

char *ob__tmpl_render(const char *tmpl, const struct ob_proposal *prop,
                      char *(*esc)(const char *value), char *why, size_t whylen)
{
    struct sbuf b = {0};
    size_t i = 0, n;

    sb_add(&b, "", 0);
    while (tmpl[i]) {
        if ((tmpl[i] == '{' && tmpl[i + 1] == '{') || (tmpl[i] == '}' && tmpl[i + 1] == '}')) {
            sb_add(&b, tmpl + i, 1);
            i += 2;
        } else if (ob__ph_at(tmpl + i, &n)) {
            const char *v = ob__param_value(prop, tmpl + i + 1, n);
            char *e;

            if (!v) {
                snprintf(why, whylen, "no value for {%.*s}", (int)n, tmpl + i + 1);
                goto fail;
            }
            e = esc ? esc(v) : strdup(v);
            if (!e) {
                snprintf(why, whylen, "cannot encode the value of {%.*s}", (int)n, tmpl + i + 1);
                goto fail;
            }
            sb_add(&b, e, strlen(e));
            free(e);
            i += n + 2;
        } else if (tmpl[i] == '{' || tmpl[i] == '}') {
            snprintf(why, whylen, "lone '%c' at byte %zu (write '%c%c' for a literal brace)",
                     tmpl[i], i, tmpl[i], tmpl[i]);
            goto fail;
        } else {
            size_t j = i;

            while (tmpl[j] && tmpl[j] != '{' && tmpl[j] != '}')
                j++;
            sb_add(&b, tmpl + i, j - i);
            i = j;
        }
    }
    if (b.oom) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    return b.p;
fail:
    free(b.p);
    return NULL;
}

int ob__tmpl_check(const char *tmpl, const struct ob_action *a, char *why, size_t whylen)
{
    size_t i = 0, n;

    if (strlen(tmpl) > MAX_TMPL) {
        snprintf(why, whylen, "too long (at most %d bytes)", MAX_TMPL);
        return OB_EINVAL;
    }
    while (tmpl[i]) {
        if ((tmpl[i] == '{' && tmpl[i + 1] == '{') || (tmpl[i] == '}' && tmpl[i + 1] == '}')) {
            i += 2;
        } else if (ob__ph_at(tmpl + i, &n)) {
            if (a && !ob__param_def(a, tmpl + i + 1, n)) {
                snprintf(why, whylen, "unknown placeholder {%.*s}", (int)n, tmpl + i + 1);
                return OB_EINVAL;
            }
            i += n + 2;
        } else if (tmpl[i] == '{' || tmpl[i] == '}') {
            snprintf(why, whylen, "lone '%c' at byte %zu (write '%c%c' for a literal brace)",
                     tmpl[i], i, tmpl[i], tmpl[i]);
            return OB_EINVAL;
        } else {
            i++;
        }
    }
    return 0;
}

char *ob__json_escape(const char *s)
{
    struct sbuf b = {0};

    sb_add(&b, "", 0);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char u[8];

        if (c == '"' || c == '\\') {
            u[0] = '\\';
            u[1] = (char)c;
            sb_add(&b, u, 2);
        } else if (c == '\n') {
            sb_add(&b, "\\n", 2);
        } else if (c == '\r') {
            sb_add(&b, "\\r", 2);
        } else if (c == '\t') {
            sb_add(&b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(u, sizeof(u), "\\u%04x", c);
            sb_add(&b, u, 6);
        } else {
            sb_add(&b, s, 1);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int ob__duration_key_check(const struct ob_action *a, const cJSON *v, char *why, size_t whylen)
{
    size_t n;
    int64_t ms;

    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(why, whylen,
                 "must be a duration (\"15m\") or one duration placeholder (\"{since}\")");
        return OB_EINVAL;
    }
    if (ob__ph_at(v->valuestring, &n)) {
        const struct ob_param_def *p = ob__param_def(a, v->valuestring + 1, n);

        if (v->valuestring[n + 2]) {
            snprintf(why, whylen, "a placeholder must be the whole value");
            return OB_EINVAL;
        }
        if (!p) {
            snprintf(why, whylen, "unknown placeholder %s", v->valuestring);
            return OB_EINVAL;
        }
        if (p->type != OB_PARAM_DURATION) {
            snprintf(why, whylen, "%s is not a duration parameter", v->valuestring);
            return OB_EINVAL;
        }
        return 0;
    }
    if (ob_duration_parse(v->valuestring, &ms) || ms <= 0) {
        snprintf(why, whylen, "'%s' is not a duration", v->valuestring);
        return OB_EINVAL;
    }
    return 0;
}

int ob__duration_key_value(const struct ob_proposal *prop, const cJSON *v, int64_t *ms)
{
    size_t n;
    const char *s;

    *ms = 0;
    if (!cJSON_IsString(v) || !v->valuestring)
        return OB_EINVAL;
    s = v->valuestring;
    if (ob__ph_at(s, &n)) {
        s = ob__param_value(prop, v->valuestring + 1, n);
        if (!s || !*s)
            return OB_EINVAL;
    }
    if (ob_duration_parse(s, ms) || *ms <= 0)
        return OB_EINVAL;
    return 0;
}

void ob__check_err(struct ob__check *c, const cJSON *node, const char *key, const char *fmt, ...)
{
    char where[256], msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ob_config_where(c->cfg, node ? node : c->b, where, sizeof(where));
    ob_diag_addf(c->d, "%s: action '%s': executor: %s%s%s", where, c->a->name ? c->a->name : "?",
                 key ? key : "", key ? ": " : "", msg);
    c->nerr++;
}

/* "scheme://user:pass@host/…": the HTTP client refuses such URLs. */
static bool url_has_userinfo(const char *url)
{
    const char *a = strstr(url, "://");
    size_t n;

    if (!a)
        return false;
    a += 3;
    n = strcspn(a, "/?#");
    return memchr(a, '@', n) != NULL;
}

/* ---- load-time check of the shared keys -------------------------------- */

static const char *const common_keys[] = {"type", "timeout", "dry_run", NULL};
static const char *const conn_keys[] = {"url", "auth", "tls", "headers", NULL};

static bool in_list(const char *const *l, const char *s)
{
    for (size_t i = 0; l && l[i]; i++) {
        if (!strcmp(l[i], s))
            return true;
    }
    return false;
}

static void check_str_keys(struct ob__check *c, const cJSON *m, const char *what,
                           const char *const *allowed)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, m)
    {
        if (!in_list(allowed, it->string))
            ob__check_err(c, it, what, "unknown key '%s'", it->string);
    }
}

static void check_auth(struct ob__check *c, const cJSON *auth)
{
    static const char *const keys[] = {"bearer", "bearer_file", "basic", NULL};
    static const char *const bkeys[] = {"user", "password", NULL};
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsObject(auth)) {
        ob__check_err(c, auth, "auth",
                      "must be a mapping: {bearer: TOKEN}, {bearer_file: PATH} or {basic: "
                      "{user: U, password: P}}");
        return;
    }
    check_str_keys(c, auth, "auth", keys);
    cJSON_ArrayForEach(it, auth)
    {
        if (!in_list(keys, it->string))
            continue;
        n++;
        if (!strcmp(it->string, "basic")) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(it, "user");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "password");

            if (!cJSON_IsObject(it) || !cJSON_IsString(u) || !cJSON_IsString(p)) {
                ob__check_err(c, it, "auth.basic", "needs user and password strings");
                continue;
            }
            check_str_keys(c, it, "auth.basic", bkeys);
            if (strchr(u->valuestring, ':'))
                ob__check_err(c, u, "auth.basic.user", "must not contain ':'");
        } else if (!cJSON_IsString(it)) {
            ob__check_err(c, it, "auth", "%s: must be a string", it->string);
        }
    }
    if (n > 1)
        ob__check_err(c, auth, "auth", "give one of bearer, bearer_file or basic");
}

static void check_tls(struct ob__check *c, const cJSON *tls)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", "insecure", NULL};
    const cJSON *it;

    if (!cJSON_IsObject(tls)) {
        ob__check_err(c, tls, "tls", "must be a mapping (ca_file, cert_file, key_file, insecure)");
        return;
    }
    check_str_keys(c, tls, "tls", keys);
    cJSON_ArrayForEach(it, tls)
    {
        if (!strcmp(it->string, "insecure")) {
            if (!cJSON_IsBool(it))
                ob__check_err(c, it, "tls.insecure", "must be true or false");
        } else if (in_list(keys, it->string) && (!cJSON_IsString(it) || !*it->valuestring)) {
            ob__check_err(c, it, "tls", "%s: must be a file name", it->string);
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(tls, "cert_file") !=
        !cJSON_GetObjectItemCaseSensitive(tls, "key_file"))
        ob__check_err(c, tls, "tls", "cert_file and key_file go together");
}

static bool header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch <= 0x20 || ch >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", ch))
            return false;
    }
    return true;
}

static void check_headers(struct ob__check *c, const cJSON *h)
{
    const cJSON *it;
    int n = 0;

    if (!cJSON_IsObject(h)) {
        ob__check_err(c, h, "headers", "must be a mapping of Name: value");
        return;
    }
    cJSON_ArrayForEach(it, h)
    {
        if (++n > OB__MAX_HEADERS - 4) {
            ob__check_err(c, it, "headers", "at most %d headers", OB__MAX_HEADERS - 4);
            break;
        }
        if (!header_name_ok(it->string))
            ob__check_err(c, it, "headers", "invalid header name '%s'", it->string);
        else if (!cJSON_IsString(it))
            ob__check_err(c, it, "headers", "%s: must be a string", it->string);
        else if (strpbrk(it->valuestring, "\r\n"))
            ob__check_err(c, it, "headers", "%s: must be one line", it->string);
    }
}

int ob__net_check_binding(const struct ob_config *cfg, const struct ob_action *a, const cJSON *b,
                          const struct ob__exec_type *t, struct ob_diag *d)
{
    struct ob__check c = {.cfg = cfg, .a = a, .b = b, .d = d};
    const cJSON *it;
    char why[256];

    cJSON_ArrayForEach(it, b)
    {
        if (!in_list(common_keys, it->string) && !in_list(t->keys, it->string) &&
            !(t->needs_url && in_list(conn_keys, it->string))) {
            char allowed[512];
            size_t off = 0;
            const char *const *lists[] = {common_keys, t->needs_url ? conn_keys : NULL, t->keys};

            allowed[0] = '\0';
            for (size_t l = 0; l < 3; l++) {
                for (size_t i = 0; lists[l] && lists[l][i] && off < sizeof(allowed); i++)
                    off += (size_t)snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
                                            off ? ", " : "", lists[l][i]);
            }
            ob__check_err(&c, it, NULL, "unknown key '%s' for type %s (allowed: %s)", it->string,
                          t->name, allowed);
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(b, "timeout");
    if (it) {
        int64_t ms = -1;

        if (cJSON_IsString(it) && ob_duration_parse(it->valuestring, &ms))
            ms = -1;
        else if (cJSON_IsNumber(it) && it->valuedouble > 0 &&
                 it->valuedouble <= MAX_TIMEOUT_MS / 1000)
            ms = (int64_t)(it->valuedouble * 1000);
        if (ms <= 0 || ms > MAX_TIMEOUT_MS)
            ob__check_err(&c, it, "timeout", "not a duration between 1ms and 24h (e.g. 30s, 5m)");
    }
    it = cJSON_GetObjectItemCaseSensitive(b, "dry_run");
    if (it && !cJSON_IsBool(it))
        ob__check_err(&c, it, "dry_run", "must be true or false");
    if (t->needs_url) {
        it = cJSON_GetObjectItemCaseSensitive(b, "url");
        if (!cJSON_IsString(it) || !*it->valuestring) {
            ob__check_err(&c, it, "url", "required: the base URL (http:// or https://)");
        } else if (strncmp(it->valuestring, "http://", 7) &&
                   strncmp(it->valuestring, "https://", 8)) {
            ob__check_err(&c, it, "url", "'%s' is not an http:// or https:// URL", it->valuestring);
        } else if (url_has_userinfo(it->valuestring)) {
            /* not echoed: the value holds a password */
            ob__check_err(&c, it, "url",
                          "credentials in the URL are not sent; use auth: {basic: {user: …, "
                          "password: …}}");
        } else if (ob__tmpl_check(it->valuestring, a, why, sizeof(why))) {
            ob__check_err(&c, it, "url", "%s", why);
        }
        it = cJSON_GetObjectItemCaseSensitive(b, "auth");
        if (it)
            check_auth(&c, it);
        it = cJSON_GetObjectItemCaseSensitive(b, "tls");
        if (it)
            check_tls(&c, it);
        it = cJSON_GetObjectItemCaseSensitive(b, "headers");
        if (it)
            check_headers(&c, it);
    }
    if (t->check)
        t->check(&c);
    return c.nerr ? OB_ECONFIG : 0;
}

/* ---- output ------------------------------------------------------------- */

void ob__job_append(struct ob__job *j, const char *s, size_t n)
{
    size_t cap = j->net->output_cap;
    size_t room = cap > j->res.output_len ? cap - j->res.output_len : 0;

    if (n > room) {
        j->res.truncated = true;
        n = room;
    }
    if (n == 0)
        return;
    if (j->res.output_len + n + 1 > j->out_alloc) {
        size_t want = j->out_alloc ? j->out_alloc : 1024;
        char *np;

        while (want < j->res.output_len + n + 1)
            want *= 2;
        np = realloc(j->res.output, want);
        if (!np) {
            j->res.truncated = true;
            return;
        }
        j->res.output = np;
        j->out_alloc = want;
    }
    memcpy(j->res.output + j->res.output_len, s, n);
    j->res.output_len += n;
    j->res.output[j->res.output_len] = '\0';
}

void ob__job_printf(struct ob__job *j, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        j->res.truncated = true;
        return;
    }
    ob__job_append(j, s, (size_t)n);
    free(s);
}

void ob__job_status(struct ob__job *j, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(j->res.status, sizeof(j->res.status), fmt, ap);
    va_end(ap);
}

void ob__job_progress(struct ob__job *j, const char *line)
{
    if (j->progress && !j->done && !j->net->freeing)
        j->progress(j->data, line);
}

/* ---- life of a job ------------------------------------------------------ */

static void deferred_finish(struct ob__job *j);

static void on_timer(uv_timer_t *t)
{
    struct ob__job *j = t->data;
    ob__step_fn fn = j->timer_fn;

    j->timer_fn = NULL;
    if (fn && !j->done) {
        if (fn == deferred_finish)
            j->finish_due = false;
        fn(j);
    }
}

static void job_free(struct ob__job *j)
{
    if (!j)
        return;
    if (j->type && j->type->free_ctx)
        j->type->free_ctx(j->ctx);
    cJSON_Delete(j->b);
    free(j->base_url);
    for (size_t i = 0; i < j->nheaders; i++) {
        sodium_memzero(j->headers[i], strlen(j->headers[i]));
        free(j->headers[i]);
    }
    free(j->ca_file);
    free(j->cert_file);
    free(j->key_file);
    free(j->res.output);
    cJSON_Delete(j->res.data);
    free(j);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ob__job *j = h->data;
    struct ob__net *n = j->net;

    job_free(j);
    n->alive--;
    if (n->freeing && n->alive == 0 && n->on_idle)
        n->on_idle(n->on_idle_data);
}

static void list_remove(struct ob__job *j)
{
    struct ob__net *n = j->net;

    if (j->prev)
        j->prev->next = j->next;
    else if (n->jobs == j)
        n->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    n->njobs--;
}

static void job_close(struct ob__job *j)
{
    if (j->timer_open) {
        j->timer_open = false;
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, on_timer_closed);
    }
}

static void deferred_finish(struct ob__job *j)
{
    j->starting = false;
    ob__job_finish(j, j->finish_ok);
}

void ob__job_finish(struct ob__job *j, bool ok)
{
    struct ob__net *n = j->net;

    if (j->done || j->finish_due)
        return;
    if (j->starting) {
        /* Never call back from inside ob_exec_start. */
        j->finish_due = true;
        j->finish_ok = ok;
        if (j->call) {
            ob_http_cancel(j->call);
            j->call = NULL;
        }
        uv_timer_stop(&j->timer);
        j->timer_fn = deferred_finish;
        uv_timer_start(&j->timer, on_timer, 0, 0);
        return;
    }
    j->done = true;
    if (j->call) {
        ob_http_cancel(j->call);
        j->call = NULL;
    }
    list_remove(j);
    j->res.exit_status = ok ? 0 : 1;
    j->res.duration_ms = (int64_t)((uv_hrtime() - j->start_ns) / 1000000);
    j->res.dry_run = j->dry_run;
    if (!j->res.output) {
        j->res.output = calloc(1, 1);
        j->res.output_len = 0;
    }
    if (j->res.output_len && j->res.output[j->res.output_len - 1] == '\n')
        j->res.output[--j->res.output_len] = '\0';
    if (!j->res.status[0])
        ob_strlcpy(j->res.status, ok ? "done" : "failed", sizeof(j->res.status));
    if (!n->freeing && j->cb)
        j->cb(j->data, &j->res);
    job_close(j);
}

void ob__job_timeout(struct ob__job *j, const char *what)
{
    char dur[32];

    j->res.timed_out = true;
    ob_duration_format(j->timeout_ms, dur, sizeof(dur));
    ob__job_status(j, "timed out after %s", dur);
    if (what)
        ob__job_printf(j, "%s%s\n", j->res.output_len ? "\n" : "", what);
    ob__job_finish(j, false);
}

int64_t ob__job_left(const struct ob__job *j)
{
    return j->deadline_ms - (int64_t)uv_now(j->net->loop);
}

void ob__job_after(struct ob__job *j, int64_t ms, ob__step_fn fn)
{
    int64_t left;

    if (j->done || !j->timer_open || j->finish_due)
        return;
    uv_update_time(j->net->loop);
    left = ob__job_left(j);
    if (ms > left)
        ms = left;
    if (ms < 0)
        ms = 0;
    j->timer_fn = fn;
    uv_timer_start(&j->timer, on_timer, (uint64_t)ms, 0);
}

static void on_http(void *data, const struct ob_http_resp *resp)
{
    struct ob__job *j = data;
    ob__resp_fn fn = j->resp_fn;

    j->call = NULL;
    j->resp_fn = NULL;
    if (j->done || !fn)
        return;
    fn(j, resp);
}

void ob__job_request(struct ob__job *j, const char *method, const char *url,
                     const char *const *extra, const char *body, ob__resp_fn fn)
{
    const char *hdrs[2 * OB__MAX_HEADERS + 1];
    struct ob_http_req req = {0};
    size_t k = 0;
    int64_t left;
    int rc;

    if (j->done)
        return;
    if (j->dry_run) { /* a bug in a type; never send in a dry run */
        ob__job_printf(j, "internal error: a dry run tried to send %s %s\n", method, url);
        ob__job_finish(j, false);
        return;
    }
    if (!j->net->http) {
        ob__job_status(j, "no HTTP client");
        ob__job_printf(j, "cannot send %s %s: opsbot has no HTTP client\n", method, url);
        ob__job_finish(j, false);
        return;
    }
    uv_update_time(j->net->loop);
    left = ob__job_left(j);
    if (left <= 0) {
        ob__job_timeout(j, NULL);
        return;
    }
    for (size_t i = 0; i < j->nheaders; i++)
        hdrs[k++] = j->headers[i];
    for (size_t i = 0; extra && extra[i] && k < 2 * OB__MAX_HEADERS; i++)
        hdrs[k++] = extra[i];
    hdrs[k] = NULL;
    req.method = method;
    req.url = url;
    req.headers = hdrs;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = left < REQ_TIMEOUT_MS ? left : REQ_TIMEOUT_MS;
    req.max_response = 8u << 20;
    req.ca_file = j->ca_file;
    req.cert_file = j->cert_file;
    req.key_file = j->key_file;
    req.insecure = j->insecure;
    j->resp_fn = fn;
    rc = ob_http_request(j->net->http, &req, on_http, j, &j->call);
    if (rc) {
        j->resp_fn = NULL;
        j->call = NULL;
        ob__job_status(j, "request failed");
        ob__job_printf(j, "cannot send %s %s: %s\n", method, url, ob_strerror(rc));
        ob__job_finish(j, false);
    }
}

static bool secret_header(const char *line)
{
    static const char *const words[] = {"authorization", "token",  "secret", "key",
                                        "password",      "cookie", "auth",   NULL};
    size_t n = strcspn(line, ":");
    char name[129];

    if (n >= sizeof(name))
        n = sizeof(name) - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] - 'A' + 'a' : line[i]);
    name[n] = '\0';
    for (size_t i = 0; words[i]; i++) {
        if (strstr(name, words[i]))
            return true;
    }
    return false;
}

static void show_header(struct ob__job *j, const char *h)
{
    const char *colon = strchr(h, ':');
    const char *v;

    if (!colon || !secret_header(h)) {
        ob__job_printf(j, "%s\n", h);
        return;
    }
    v = colon + 1;
    while (*v == ' ')
        v++;
    /* Keep the scheme word of Authorization ("Bearer", "Basic"). */
    if (!strncasecmp(h, "authorization", 13) && strchr(v, ' '))
        ob__job_printf(j, "%.*s: %.*s ****\n", (int)(colon - h), h, (int)strcspn(v, " "), v);
    else
        ob__job_printf(j, "%.*s: ****\n", (int)(colon - h), h);
}

void ob__job_show_request(struct ob__job *j, const char *method, const char *url,
                          const char *const *extra, const char *body)
{
    ob__job_printf(j, "%s %s\n", method, url);
    for (size_t i = 0; i < j->nheaders; i++)
        show_header(j, j->headers[i]);
    for (size_t i = 0; extra && extra[i]; i++)
        show_header(j, extra[i]);
    if (j->ca_file)
        ob__job_printf(j, "(TLS CA %s)\n", j->ca_file);
    if (j->cert_file)
        ob__job_printf(j, "(TLS client certificate %s)\n", j->cert_file);
    if (j->insecure)
        ob__job_printf(j, "(TLS verification off)\n");
    if (body && *body)
        ob__job_printf(j, "\n%s\n", body);
}

bool ob__job_transport_failed(struct ob__job *j, const struct ob_http_resp *resp, const char *what)
{
    if (resp->err == OB_ETIMEOUT) {
        if (ob__job_left(j) <= 50) {
            ob__job_timeout(j, NULL);
        } else {
            ob__job_status(j, "request timed out");
            ob__job_printf(j, "%s: no answer in time\n", what);
            ob__job_finish(j, false);
        }
        return true;
    }
    if (resp->err && resp->err != OB_E2BIG) {
        ob__job_status(j, "unreachable");
        ob__job_printf(j, "cannot reach %s: %s\n", what,
                       resp->errmsg[0] ? resp->errmsg : ob_strerror(resp->err));
        ob__job_finish(j, false);
        return true;
    }
    if (resp->err == OB_E2BIG) {
        ob__job_status(j, "answer too large");
        ob__job_printf(j, "%s: the answer is larger than the response cap\n", what);
        ob__job_finish(j, false);
        return true;
    }
    return false;
}

/* ---- connection keys ---------------------------------------------------- */

int ob__job_add_header(struct ob__job *j, const char *name, const char *value)
{
    char *h = NULL;

    if (j->nheaders >= OB__MAX_HEADERS || strpbrk(value, "\r\n") ||
        asprintf(&h, "%s: %s", name, value) < 0)
        return OB_EINVAL;
    j->headers[j->nheaders++] = h;
    return 0;
}

int ob__job_add_auth(struct ob__job *j, const char *scheme, const char *cred, bool encode)
{
    char *v = NULL;
    size_t clen = strlen(cred), vlen;
    int rc;

    vlen = strlen(scheme) + 1 +
           (encode ? sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL) : clen + 1);
    v = malloc(vlen);
    if (!v)
        return OB_ENOMEM;
    snprintf(v, vlen, "%s ", scheme);
    if (encode)
        sodium_bin2base64(v + strlen(v), vlen - strlen(v), (const unsigned char *)cred, clen,
                          sodium_base64_VARIANT_ORIGINAL);
    else
        ob_strlcpy(v + strlen(v), cred, vlen - strlen(v));
    rc = ob__job_add_header(j, "Authorization", v);
    sodium_memzero(v, vlen);
    free(v);
    return rc;
}

static char *cfg_path(const struct ob__job *j, const char *p)
{
    if (!p || !*p)
        return NULL;
    return j->cfg ? ob_config_path(j->cfg, p) : strdup(p);
}

static char *read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

static char *url_escape(const char *v)
{
    return ob_http_escape(v);
}

int ob__job_connect(struct ob__job *j)
{
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(j->b, "url");
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(j->b, "auth");
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(j->b, "tls");
    const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(j->b, "headers");
    const cJSON *it;
    char why[256];
    size_t n;

    if (!cJSON_IsString(url))
        return OB_EINVAL;
    j->base_url = ob__tmpl_render(url->valuestring, &j->prop, url_escape, why, sizeof(why));
    if (!j->base_url)
        return OB_EINVAL;
    n = strlen(j->base_url);
    while (!j->type->raw_url && n > 0 && j->base_url[n - 1] == '/')
        j->base_url[--n] = '\0';
    if (cJSON_IsObject(auth)) {
        const cJSON *bearer = cJSON_GetObjectItemCaseSensitive(auth, "bearer");
        const cJSON *bfile = cJSON_GetObjectItemCaseSensitive(auth, "bearer_file");
        const cJSON *basic = cJSON_GetObjectItemCaseSensitive(auth, "basic");
        int rc = 0;

        if (cJSON_IsString(bearer) && *bearer->valuestring) {
            rc = ob__job_add_auth(j, "Bearer", bearer->valuestring, false);
        } else if (cJSON_IsString(bfile) && *bfile->valuestring) {
            char *p = cfg_path(j, bfile->valuestring);
            char *tok = p ? read_small_file(p, 16384) : NULL;

            free(p);
            rc = tok && *tok ? ob__job_add_auth(j, "Bearer", tok, false) : OB_EINVAL;
            if (tok) {
                sodium_memzero(tok, strlen(tok));
                free(tok);
            }
        } else if (cJSON_IsObject(basic)) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(basic, "user");
            const cJSON *pw = cJSON_GetObjectItemCaseSensitive(basic, "password");
            char *plain = NULL;

            if (!cJSON_IsString(u) || !cJSON_IsString(pw) ||
                asprintf(&plain, "%s:%s", u->valuestring, pw->valuestring) < 0)
                return OB_EINVAL;
            rc = ob__job_add_auth(j, "Basic", plain, true);
            sodium_memzero(plain, strlen(plain));
            free(plain);
        }
        if (rc)
            return rc;
    }
    if (cJSON_IsObject(tls)) {
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(tls, "insecure");

        it = cJSON_GetObjectItemCaseSensitive(tls, "ca_file");
        if (cJSON_IsString(it))
            j->ca_file = cfg_path(j, it->valuestring);
        it = cJSON_GetObjectItemCaseSensitive(tls, "cert_file");
        if (cJSON_IsString(it))
            j->cert_file = cfg_path(j, it->valuestring);
        it = cJSON_GetObjectItemCaseSensitive(tls, "key_file");
        if (cJSON_IsString(it))
            j->key_file = cfg_path(j, it->valuestring);
        j->insecure = cJSON_IsTrue(ins);
    }
    cJSON_ArrayForEach(it, hdrs)
    {
        if (!cJSON_IsString(it) || ob__job_add_header(j, it->string, it->valuestring))
            return OB_EINVAL;
    }
    return 0;
}

/* ---- starting ----------------------------------------------------------- */

static int64_t binding_timeout(const cJSON *b)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "timeout");
    int64_t ms = DEF_TIMEOUT_MS;

    if (cJSON_IsString(t)) {
        if (ob_duration_parse(t->valuestring, &ms))
            ms = DEF_TIMEOUT_MS;
    } else if (cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble <= MAX_TIMEOUT_MS / 1000) {
        ms = (int64_t)(t->valuedouble * 1000);
    }
    if (ms <= 0 || ms > MAX_TIMEOUT_MS)
        ms = DEF_TIMEOUT_MS;
    return ms;
}

int ob__net_start(struct ob__net *n, const struct ob__exec_type *t, const struct ob_proposal *prop,
                  const struct ob_exec_start_opts *o, ob_exec_cb cb, void *data)
{
    struct ob__job *j;
    const cJSON *dr;
    int rc;

    if (n->freeing)
        return OB_EINVAL;
    j = calloc(1, sizeof(*j));
    if (!j)
        return OB_ENOMEM;
    j->net = n;
    j->type = t;
    j->cfg = o && o->cfg ? o->cfg : n->cfg;
    j->b = cJSON_Duplicate(prop->action->executor, true);
    j->prop = *prop;
    j->red = o ? o->red : NULL;
    j->progress = o ? o->on_progress : NULL;
    j->cb = cb;
    j->data = data;
    dr = cJSON_GetObjectItemCaseSensitive(j->b, "dry_run");
    j->dry_run = n->dry_run || cJSON_IsTrue(dr);
    j->timeout_ms = binding_timeout(j->b);
    if (!j->b) {
        job_free(j);
        return OB_ENOMEM;
    }
    ob_exec_describe(j->cfg, prop, j->res.command, sizeof(j->res.command));
    uv_update_time(n->loop);
    j->start_ns = uv_hrtime();
    j->deadline_ms = (int64_t)uv_now(n->loop) + j->timeout_ms;
    uv_timer_init(n->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = true;
    n->alive++;
    j->next = n->jobs;
    if (n->jobs)
        n->jobs->prev = j;
    n->jobs = j;
    n->njobs++;
    if (t->needs_url) {
        rc = ob__job_connect(j);
        if (rc)
            goto fail;
    }
    j->starting = true;
    rc = t->start(j);
    j->starting = false;
    if (rc)
        goto fail;
    j->cfg = NULL;
    j->prop.action = NULL;
    return 0;
fail:
    /* Nothing was sent and no callback runs: drop the job quietly. */
    j->done = true;
    if (j->call) {
        ob_http_cancel(j->call);
        j->call = NULL;
    }
    list_remove(j);
    job_close(j);
    return rc;
}

/* ---- the executor's part ------------------------------------------------ */

void ob__net_init(struct ob__net *n, uv_loop_t *loop, const struct ob_config *cfg,
                  size_t output_cap, bool dry_run)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->cfg = cfg;
    n->output_cap = output_cap;
    n->dry_run = dry_run;
}

bool ob__net_shutdown(struct ob__net *n)
{
    struct ob__job *j;

    n->freeing = true;
    while ((j = n->jobs)) {
        j->done = true;
        if (j->call) {
            ob_http_cancel(j->call);
            j->call = NULL;
        }
        list_remove(j);
        job_close(j);
    }
    return n->alive == 0;
}

void ob__net_release(struct ob__net *n)
{
    if (n->tmpdir) {
        /* Only our own files live there: remove them, then the directory. */
        char *cmdpath = NULL;
        DIR *dir = opendir(n->tmpdir);

        if (dir) {
            struct dirent *de;

            while ((de = readdir(dir))) {
                if (de->d_name[0] == '.')
                    continue;
                if (asprintf(&cmdpath, "%s/%s", n->tmpdir, de->d_name) >= 0) {
                    unlink(cmdpath);
                    free(cmdpath);
                    cmdpath = NULL;
                }
            }
            closedir(dir);
        }
        rmdir(n->tmpdir);
        free(n->tmpdir);
        n->tmpdir = NULL;
    }
}

int ob_exec_describe(const struct ob_config *cfg, const struct ob_proposal *prop, char *buf,
                     size_t len)
{
    const cJSON *b, *type;
    const struct ob__exec_type *t;

    if (!buf || !len)
        return OB_EINVAL;
    buf[0] = '\0';
    if (!prop || !prop->action || !cJSON_IsObject(prop->action->executor)) {
        ob_strlcpy(buf, "built-in", len);
        return prop && prop->action ? 0 : OB_EINVAL;
    }
    b = prop->action->executor;
    type = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!cJSON_IsString(type))
        return OB_EINVAL;
    if (!strcmp(type->valuestring, "exec")) {
        char **argv = NULL;
        int rc = ob_argv_render(cfg, cJSON_GetObjectItemCaseSensitive(b, "argv"), prop, &argv);

        if (rc) {
            snprintf(buf, len, "cannot build the command (%s)", ob_strerror(rc));
            return rc;
        }
        ob_argv_format(argv, buf, len);
        ob_argv_free(argv);
        return 0;
    }
    t = ob__exec_type_find(type->valuestring);
    if (!t) {
        snprintf(buf, len, "unknown executor type '%s'", type->valuestring);
        return OB_EINVAL;
    }
    return t->describe(cfg, prop, b, buf, len);
}
