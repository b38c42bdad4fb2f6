/* The http executor: one request from a template, for webhook-style APIs
 * (ArgoCD sync, Jenkins builds, GitLab pipelines, Rundeck jobs).
 *
 *   executor:
 *     type: http
 *     method: POST                      # default GET, or POST with a body
 *     url: https://argocd.example/api/v1/applications/{service}-{env}/sync
 *     headers: {Authorization: "Bearer ${ARGOCD_TOKEN}"}
 *     body: {prune: false, revision: "{revision}", note: "by opsbot for {service}"}
 *     content_type: application/json   # default with a body
 *     expect: [200, 201]               # default: any 2xx
 *     excerpt: 500                     # bytes of the answer shown (default 500)
 *
 * URL placeholders are percent-encoded. A body given as a mapping or list
 * is rendered node by node: placeholders only in string values (never in
 * keys), the whole tree printed by cJSON, so every value is JSON-escaped; a
 * string that is exactly "{n}" of an int parameter becomes a number. A body
 * given as a string is JSON text with placeholders only inside its string
 * literals, each value JSON-escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

#define DEF_EXCERPT 500
#define MAX_BODY_DEPTH 16

static const char *const http_keys[] = {"method", "body",    "content_type",
                                        "expect", "excerpt", NULL};

struct hx {
    char method[8];
    char *body;
    char *ctype_hdr;
    int expect[16];
    size_t nexpect;
    size_t excerpt;
};

static void hx_free(void *ctx)
{
    struct hx *h = ctx;

    if (!h)
        return;
    free(h->body);
    free(h->ctype_hdr);
    free(h);
}

/* ---- the body ----------------------------------------------------------- */

/* Walks a structured body: check (a set) or render (prop set) in place. */
static int walk_body(cJSON *node, const struct ob_action *a, const struct ob_proposal *prop,
                     int depth, char *why, size_t whylen)
{
    cJSON *it;

    if (depth > MAX_BODY_DEPTH) {
        snprintf(why, whylen, "nested too deeply");
        return OB_EINVAL;
    }
    cJSON_ArrayForEach(it, node)
    {
        size_t n;
        int rc;

        if (it->string && strchr(it->string, '{') && a) {
            snprintf(why, whylen, "placeholders are not allowed in keys ('%s')", it->string);
            return OB_EINVAL;
        }
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            rc = walk_body(it, a, prop, depth + 1, why, whylen);
            if (rc)
                return rc;
        } else if (cJSON_IsString(it) && it->valuestring) {
            if (a) {
                rc = ob__tmpl_check(it->valuestring, a, why, whylen);
                if (rc)
                    return rc;
                continue;
            }
            if (ob__ph_at(it->valuestring, &n) && !it->valuestring[n + 2]) {
                const struct ob_param_def *p = ob__param_def(prop->action, it->valuestring + 1, n);
                const char *v = ob__param_value(prop, it->valuestring + 1, n);

                if (p && p->type == OB_PARAM_INT && v && *v) {
                    cJSON *num = cJSON_CreateNumber(strtod(v, NULL));

                    /* the replacement keeps the member's name */
                    if (num && it->string) {
                        num->string = strdup(it->string);
                        if (!num->string) {
                            cJSON_Delete(num);
                            return OB_ENOMEM;
                        }
                    }
                    if (!num || !cJSON_ReplaceItemViaPointer(node, it, num)) {
                        cJSON_Delete(num);
                        return OB_ENOMEM;
                    }
                    it = num;
                    continue;
                }
            }
            {
                char *r = ob__tmpl_render(it->valuestring, prop, NULL, why, whylen);

                if (!r)
                    return OB_EINVAL;
                if (!cJSON_SetValuestring(it, r)) {
                    free(r);
                    return OB_ENOMEM;
                }
                free(r);
            }
        }
    }
    return 0;
}

/* A JSON-text body: placeholders only inside string literals. With prop:
 * render (values JSON-escaped); without: render with "x" for the check. */
static char *text_body(const char *t, const struct ob_action *a, const struct ob_proposal *prop,
                       char *why, size_t whylen)
{
    size_t i = 0, n, len = strlen(t), cap = len + 64, o = 0;
    bool in_str = false;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    while (i < len) {
        const char *piece = t + i;
        size_t plen = 1;
        char *esc = NULL;

        if (t[i] == '{' && ob__ph_at(t + i, &n)) {
            if (!in_str) {
                snprintf(why, whylen,
                         "placeholder {%.*s} at byte %zu is outside a JSON string (write "
                         "\"{%.*s}\")",
                         (int)n, t + i + 1, i, (int)n, t + i + 1);
                free(out);
                return NULL;
            }
            if (a && !ob__param_def(a, t + i + 1, n)) {
                snprintf(why, whylen, "unknown placeholder {%.*s}", (int)n, t + i + 1);
                free(out);
                return NULL;
            }
            if (prop) {
                const char *v = ob__param_value(prop, t + i + 1, n);

                if (!v) {
                    snprintf(why, whylen, "no value for {%.*s}", (int)n, t + i + 1);
                    free(out);
                    return NULL;
                }
                esc = ob__json_escape(v);
            } else {
                esc = strdup("x");
            }
            if (!esc) {
                free(out);
                return NULL;
            }
            piece = esc;
            plen = strlen(esc);
            i += n + 2;
        } else if (in_str && t[i] == '\\' && i + 1 < len) {
            plen = 2;
            i += 2;
        } else {
            if (t[i] == '"')
                in_str = !in_str;
            i++;
        }
        if (o + plen + 1 > cap) {
            char *np;

            while (o + plen + 1 > cap)
                cap *= 2;
            np = realloc(out, cap);
            if (!np) {
                free(esc);
                free(out);
                return NULL;
            }
            out = np;
        }
        memcpy(out + o, piece, plen);
        o += plen;
        free(esc);
    }
    out[o] = '\0';
    return out;
}

static char *render_body(const cJSON *body, const struct ob_proposal *prop, char *why,
                         size_t whylen)
{
    cJSON *copy;
    char *out;

    if (!body)
        return NULL;
    if (cJSON_IsString(body))
        return text_body(body->valuestring, NULL, prop, why, whylen);
    copy = cJSON_Duplicate(body, true);
    if (!copy)
        return NULL;
    if (walk_body(copy, NULL, prop, 0, why, whylen)) {
        cJSON_Delete(copy);
        return NULL;
    }
    out = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return out;
}

/* ---- load-time check ---------------------------------------------------- */

static bool method_ok(const char *m)
{
    static const char *const ms[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

    for (size_t i = 0; ms[i]; i++) {
        if (!strcmp(ms[i], m))
            return true;
    }
    return false;
}

static void hx_check(struct ob__check *c)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->b, "method");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(c->b, "body");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(c->b, "content_type");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(c->b, "expect");
    const cJSON *exc = cJSON_GetObjectItemCaseSensitive(c->b, "excerpt");
    const cJSON *it;
    char why[256];

    if (m && (!cJSON_IsString(m) || !method_ok(m->valuestring)))
        ob__check_err(c, m, "method", "one of GET, POST, PUT, PATCH, DELETE");
    if (body && cJSON_IsString(body)) {
        char *t = text_body(body->valuestring, c->a, NULL, why, sizeof(why));
        cJSON *parsed = t ? cJSON_Parse(t) : NULL;

        if (!t)
            ob__check_err(c, body, "body", "%s", why);
        else if (!parsed && (!cJSON_IsString(ct) || strstr(ct->valuestring, "json")))
            ob__check_err(c, body, "body", "not valid JSON (placeholders go inside strings)");
        cJSON_Delete(parsed);
        free(t);
    } else if (body && (cJSON_IsObject(body) || cJSON_IsArray(body))) {
        if (walk_body((cJSON *)body, c->a, NULL, 0, why, sizeof(why)))
            ob__check_err(c, body, "body", "%s", why);
    } else if (body) {
        ob__check_err(c, body, "body", "must be a mapping, a list or a JSON string");
    }
    if (ct && (!cJSON_IsString(ct) || strpbrk(ct->valuestring, "\r\n")))
        ob__check_err(c, ct, "content_type", "must be a one-line string");
    if (ex) {
        bool ok = cJSON_IsNumber(ex) && ex->valuedouble >= 100 && ex->valuedouble <= 599;

        if (cJSON_IsArray(ex) && cJSON_GetArraySize(ex) > 0 && cJSON_GetArraySize(ex) <= 16) {
            ok = true;
            cJSON_ArrayForEach(it, ex)
            {
                ok = ok && cJSON_IsNumber(it) && it->valuedouble >= 100 && it->valuedouble <= 599;
            }
        }
        if (!ok)
            ob__check_err(c, ex, "expect", "an HTTP status or a list of up to 16");
    }
    if (exc && (!cJSON_IsNumber(exc) || exc->valuedouble < 0 || exc->valuedouble > 65536))
        ob__check_err(c, exc, "excerpt", "bytes of the answer to show, 0 to 65536");
}

/* ---- running ------------------------------------------------------------ */

static int prepare(const cJSON *b, const struct ob_proposal *prop, struct hx *h, char *why,
                   size_t whylen)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(b, "method");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(b, "body");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(b, "expect");
    const cJSON *exc = cJSON_GetObjectItemCaseSensitive(b, "excerpt");
    const cJSON *it;

    ob_strlcpy(h->method,
               cJSON_IsString(m) ? m->valuestring
               : body            ? "POST"
                                 : "GET",
               sizeof(h->method));
    if (body) {
        h->body = render_body(body, prop, why, whylen);
        if (!h->body)
            return OB_EINVAL;
    }
    if (cJSON_IsNumber(ex)) {
        h->expect[h->nexpect++] = (int)ex->valuedouble;
    } else {
        cJSON_ArrayForEach(it, ex)
        {
            if (h->nexpect < 16)
                h->expect[h->nexpect++] = (int)it->valuedouble;
        }
    }
    h->excerpt = cJSON_IsNumber(exc) ? (size_t)exc->valuedouble : DEF_EXCERPT;
    return 0;
}

static int hx_describe(const struct ob_config *cfg, const struct ob_proposal *prop, const cJSON *b,
                       char *buf, size_t len)
{
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(b, "url");
    struct hx h = {0};
    char why[256];
    char *u = NULL;
    int rc;

    (void)cfg;
    rc = prepare(b, prop, &h, why, sizeof(why));
    if (!rc) {
        u = cJSON_IsString(url)
                ? ob__tmpl_render(url->valuestring, prop, ob_http_escape, why, sizeof(why))
                : NULL;
        if (!u)
            rc = OB_EINVAL;
    }
    if (rc)
        snprintf(buf, len, "http: cannot build the request (%s)", why);
    else
        snprintf(buf, len, "http %s %s", h.method, u);
    free(u);
    free(h.body);
    return rc;
}

static bool expected(const struct hx *h, long status)
{
    if (!h->nexpect)
        return status >= 200 && status <= 299;
    for (size_t i = 0; i < h->nexpect; i++) {
        if (h->expect[i] == status)
            return true;
    }
    return false;
}

static void on_answer(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct hx *h = j->ctx;
    bool ok;

    if (ob__job_transport_failed(j, resp, j->base_url))
        return;
    ok = expected(h, resp->status);
    ob__job_status(j, "HTTP %ld%s", resp->status, ok ? "" : " (unexpected)");
    ob__job_printf(j, "HTTP %ld from %s %s\n", resp->status, h->method, j->base_url);
    if (h->excerpt && resp->body_len) {
        size_t n = resp->body_len < h->excerpt ? resp->body_len : h->excerpt;
        char *red;

        /* Cut on a UTF-8 boundary. */
        while (n > 0 && n < resp->body_len && ((unsigned char)resp->body[n] & 0xC0) == 0x80)
            n--;
        red = ob_redact_apply(j->red, resp->body, n);
        if (red) {
            for (char *p = red; *p; p++) {
                if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                    *p = '?';
            }
            ob__job_printf(j, "%s%s\n", red, n < resp->body_len ? " …" : "");
            free(red);
        }
    }
    ob__job_finish(j, ok);
}

static void dry_done(struct ob__job *j)
{
    ob__job_finish(j, true);
}

static int hx_start(struct ob__job *j)
{
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j->b, "content_type");
    struct hx *h = calloc(1, sizeof(*h));
    const char *extra[3] = {NULL, NULL, NULL};
    char why[256];
    int rc;

    if (!h)
        return OB_ENOMEM;
    j->ctx = h;
    rc = prepare(j->b, &j->prop, h, why, sizeof(why));
    if (rc)
        return rc;
    if (h->body) {
        if (asprintf(&h->ctype_hdr, "Content-Type: %s",
                     cJSON_IsString(ct) ? ct->valuestring : "application/json") < 0) {
            h->ctype_hdr = NULL;
            return OB_ENOMEM;
        }
        extra[0] = h->ctype_hdr;
    }
    if (j->dry_run) {
        ob__job_status(j, "dry run");
        ob__job_printf(j, "dry run: would send\n");
        ob__job_show_request(j, h->method, j->base_url, extra, h->body);
        ob__job_after(j, 0, dry_done);
        return 0;
    }
    ob__job_request(j, h->method, j->base_url, extra, h->body, on_answer);
    return 0;
}

const struct ob__exec_type ob__type_http = {
    .name = "http",
    .keys = http_keys,
    .needs_url = true,
    .raw_url = true,
    .check = hx_check,
    .start = hx_start,
    .describe = hx_describe,
    .free_ctx = hx_free,
};
