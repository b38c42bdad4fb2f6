/* The loki executor: one LogQL log query through /loki/api/v1/query_range,
 * answered with the newest lines first, each redacted, capped in number and
 * bytes.
 *
 *   executor:
 *     type: loki
 *     url: ${LOKI_URL:-http://127.0.0.1:3100}
 *     tenant: team-a                 # X-Scope-OrgID (optional)
 *     query: '{app="{service}", env="{env}"} |= "{filter}"'
 *     since: "{since}"               # default 15m
 *     max_range: 24h                 # since is capped here (default 24h)
 *     limit: 50                      # lines shown (default 50, at most 5000)
 *     max_bytes: 16384               # bytes of lines shown (default 16 KiB)
 *     max_line: 1000                 # longer lines are cut (default 1000 bytes)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/util.h"

#define DEF_SINCE_MS (15 * 60 * 1000)
#define DEF_MAX_RANGE_MS (24LL * 3600 * 1000)
#define DEF_LIMIT 50
#define MAX_LIMIT 5000
#define DEF_MAX_BYTES 16384
#define DEF_MAX_LINE 1000
#define MAX_ENTRIES 20000

static const char *const loki_keys[] = {"query",     "since",    "max_range", "limit",
                                        "max_bytes", "max_line", "tenant",    NULL};

struct loki {
    char *query;
    int64_t since_ms;
    bool capped;
    int limit;
    size_t max_bytes, max_line;
    char what[512];
};

struct entry {
    int64_t ns;
    const char *line;
    const cJSON *stream;
};

static void loki_free(void *ctx)
{
    struct loki *l = ctx;

    if (!l)
        return;
    free(l->query);
    free(l);
}

static int64_t num_key(const cJSON *b, const char *k, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);

    return ob_json_int_or(v, def);
}

static void loki_check(struct ob__check *c)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c->b, "query");
    const cJSON *it;
    char why[512];

    if (!cJSON_IsString(q) || !*q->valuestring) {
        ob__check_err(c, q, "query",
                      "required: a LogQL template such as "
                      "'{app=\"{service}\"} |= \"{filter}\"'");
    } else {
        const char *s = q->valuestring;

        while (*s == ' ')
            s++;
        if (*s != '{' || (s[1] == '{'))
            ob__check_err(c, q, "query", "a log query starts with a stream selector {…}");
        else if (ob__query_check(OB__LOGQL, q->valuestring, c->a, why, sizeof(why)))
            ob__check_err(c, q, "query", "%s", why);
    }
    it = cJSON_GetObjectItemCaseSensitive(c->b, "since");
    if (it && ob__duration_key_check(c->a, it, why, sizeof(why)))
        ob__check_err(c, it, "since", "%s", why);
    it = cJSON_GetObjectItemCaseSensitive(c->b, "max_range");
    if (it && ob__duration_key_check(NULL, it, why, sizeof(why)))
        ob__check_err(c, it, "max_range", "%s", why);
    it = cJSON_GetObjectItemCaseSensitive(c->b, "limit");
    if (it && (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > MAX_LIMIT))
        ob__check_err(c, it, "limit", "must be a number from 1 to %d", MAX_LIMIT);
    it = cJSON_GetObjectItemCaseSensitive(c->b, "max_bytes");
    if (it && (!cJSON_IsNumber(it) || it->valuedouble < 256 || it->valuedouble > (1 << 20)))
        ob__check_err(c, it, "max_bytes", "must be a number from 256 to 1048576");
    it = cJSON_GetObjectItemCaseSensitive(c->b, "max_line");
    if (it && (!cJSON_IsNumber(it) || it->valuedouble < 40 || it->valuedouble > 65536))
        ob__check_err(c, it, "max_line", "must be a number from 40 to 65536");
    it = cJSON_GetObjectItemCaseSensitive(c->b, "tenant");
    if (it && (!cJSON_IsString(it) || !*it->valuestring || strpbrk(it->valuestring, "\r\n")))
        ob__check_err(c, it, "tenant", "must be a one-line string (sent as X-Scope-OrgID)");
}

static int render(const cJSON *b, const struct ob_proposal *prop, struct loki *l, char *why,
                  size_t whylen)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, "query");
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(b, "since");
    const cJSON *maxr = cJSON_GetObjectItemCaseSensitive(b, "max_range");
    int64_t max_ms = DEF_MAX_RANGE_MS;

    if (!cJSON_IsString(q)) {
        snprintf(why, whylen, "no query");
        return OB_EINVAL;
    }
    l->query = ob__query_render(OB__LOGQL, q->valuestring, prop, why, whylen);
    if (!l->query)
        return OB_EINVAL;
    l->since_ms = DEF_SINCE_MS;
    if (since && ob__duration_key_value(prop, since, &l->since_ms)) {
        snprintf(why, whylen, "since: no duration");
        return OB_EINVAL;
    }
    if (maxr && ob__duration_key_value(prop, maxr, &max_ms))
        max_ms = DEF_MAX_RANGE_MS;
    if (l->since_ms > max_ms) {
        l->since_ms = max_ms;
        l->capped = true;
    }
    l->limit = (int)num_key(b, "limit", DEF_LIMIT);
    if (l->limit < 1 || l->limit > MAX_LIMIT)
        l->limit = DEF_LIMIT;
    l->max_bytes = (size_t)num_key(b, "max_bytes", DEF_MAX_BYTES);
    l->max_line = (size_t)num_key(b, "max_line", DEF_MAX_LINE);
    return 0;
}

static int loki_describe(const struct ob_config *cfg, const struct ob_proposal *prop,
                         const cJSON *b, char *buf, size_t len)
{
    struct loki l = {0};
    char why[256], d[32];
    int rc;

    (void)cfg;
    rc = render(b, prop, &l, why, sizeof(why));
    if (rc)
        snprintf(buf, len, "loki: cannot build the query (%s)", why);
    else
        snprintf(buf, len, "loki: %s (last %s)", l.query, ob__qduration(l.since_ms, d, sizeof(d)));
    free(l.query);
    return rc;
}

/* ---- the answer --------------------------------------------------------- */

static int by_newest(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static const char *stream_tag(const cJSON *stream)
{
    static const char *const keys[] = {"pod", "instance", "container", "job", NULL};

    for (size_t i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(stream, keys[i]);

        if (cJSON_IsString(v) && *v->valuestring)
            return v->valuestring;
    }
    return NULL;
}

/* One line for chat: control characters and broken UTF-8 become '?', line
 * breaks a space; cut at max bytes (on a character boundary) with "…". */
static char *clean_line(const char *s, size_t max)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc((n < max ? n : max) + 8);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = ob_utf8_seq(s + i, n - i);

        if (o + (k ? k : 1) > max) {
            memcpy(out + o, "…", 3);
            o += 3;
            break;
        }
        if (!k) {
            out[o++] = '?';
            i++;
        } else if (k == 1 && (s[i] == '\n' || s[i] == '\r')) {
            out[o++] = ' ';
            i++;
        } else if (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t') {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}

static void on_answer(struct ob__job *j, const struct ob_http_resp *resp)
{
    struct loki *l = j->ctx;
    cJSON *root = NULL;
    const cJSON *data, *type, *result, *st;
    struct entry *ents = NULL;
    cJSON *sample = NULL;
    size_t n = 0, shown = 0, bytes = 0, streams = 0;
    bool cut = false;
    char d[32];

    if (ob__job_transport_failed(j, resp, j->base_url))
        return;
    if (resp->status != 200) {
        char line[400];
        size_t k;

        snprintf(line, sizeof(line), "%s", resp->body ? resp->body : "");
        k = strcspn(line, "\r\n");
        line[k] = '\0';
        ob__job_status(j, "Loki error");
        ob__job_printf(j, "Loki error (HTTP %ld): %s\nLogQL: %s\n", resp->status,
                       line[0] ? line : "(no message)", l->query);
        ob__job_finish(j, false);
        return;
    }
    root = cJSON_ParseWithLength(resp->body, resp->body_len);
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "streams") || !cJSON_IsArray(result)) {
        ob__job_status(j, "unexpected answer");
        ob__job_printf(j, "Loki answered without log streams (resultType %s)\nLogQL: %s\n",
                       cJSON_IsString(type) ? type->valuestring : "missing", l->query);
        cJSON_Delete(root);
        ob__job_finish(j, false);
        return;
    }
    cJSON_ArrayForEach(st, result)
    {
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(st, "values"), *v;

        streams++;
        cJSON_ArrayForEach(v, vals)
        {
            const cJSON *ts = cJSON_GetArrayItem(v, 0), *line = cJSON_GetArrayItem(v, 1);

            if (!cJSON_IsString(ts) || !cJSON_IsString(line) || n == MAX_ENTRIES)
                continue;
            if (n % 256 == 0) {
                struct entry *ne = realloc(ents, (n + 256) * sizeof(*ents));

                if (!ne)
                    break;
                ents = ne;
            }
            ents[n].ns = strtoll(ts->valuestring, NULL, 10);
            ents[n].line = line->valuestring;
            ents[n].stream = cJSON_GetObjectItemCaseSensitive(st, "stream");
            n++;
        }
    }
    if (n)
        qsort(ents, n, sizeof(*ents), by_newest);
    /* res.data: the number of lines and the (redacted) lines shown. */
    cJSON_Delete(j->res.data);
    j->res.data = cJSON_CreateObject();
    cJSON_AddNumberToObject(j->res.data, "lines", (double)n);
    sample = cJSON_AddArrayToObject(j->res.data, "sample");
    for (size_t i = 0; i < n && shown < (size_t)l->limit; i++) {
        char *red = ob_redact_apply(j->red, ents[i].line, strlen(ents[i].line));
        char *clean = red ? clean_line(red, l->max_line) : NULL;
        char ts[40], *t, *z;
        const char *tag = streams > 1 ? stream_tag(ents[i].stream) : NULL;
        size_t need;

        free(red);
        if (!clean)
            break;
        ob_time_format(ents[i].ns / 1000000, ts, sizeof(ts));
        t = strchr(ts, 'T');
        t = t ? t + 1 : ts;
        z = strchr(t, 'Z');
        if (z)
            *z = '\0';
        need = strlen(t) + strlen(clean) + (tag ? strlen(tag) + 3 : 0) + 2;
        if (bytes + need > l->max_bytes) {
            free(clean);
            cut = true;
            break;
        }
        if (tag)
            ob__job_printf(j, "%s [%s] %s\n", t, tag, clean);
        else
            ob__job_printf(j, "%s %s\n", t, clean);
        if (sample && shown < 50)
            cJSON_AddItemToArray(sample, cJSON_CreateString(clean));
        bytes += need;
        shown++;
        free(clean);
    }
    ob__qduration(l->since_ms, d, sizeof(d));
    if (n == 0) {
        ob__job_status(j, "no lines");
        ob__job_printf(j, "no log lines for %s in the last %s\n", l->what, d);
    } else {
        ob__job_status(j, "%zu line%s", shown, shown == 1 ? "" : "s");
        ob__job_printf(j, "(%zu line%s, newest first, last %s%s", shown, shown == 1 ? "" : "s", d,
                       l->capped ? " (capped)" : "");
        if (cut)
            ob__job_printf(j, "; %zu more not shown: over %zu bytes", n - shown, l->max_bytes);
        else if (n > shown || (int)n >= l->limit)
            ob__job_printf(j, "; limit %d", l->limit);
        ob__job_printf(j, ")\n");
    }
    ob__job_printf(j, "LogQL: %s\n", l->query);
    free(ents);
    cJSON_Delete(root);
    ob__job_finish(j, true);
}

static void dry_done(struct ob__job *j)
{
    ob__job_finish(j, true);
}

static int loki_start(struct ob__job *j)
{
    const cJSON *tenant = cJSON_GetObjectItemCaseSensitive(j->b, "tenant");
    struct loki *l = calloc(1, sizeof(*l));
    const char *extra[3] = {"Accept: application/json", NULL, NULL};
    char why[256], *q = NULL, *url = NULL, *th = NULL;
    int64_t now_ns = ob_now_ms() * 1000000LL;
    size_t off = 0;
    int rc;

    if (!l)
        return OB_ENOMEM;
    j->ctx = l;
    rc = render(j->b, &j->prop, l, why, sizeof(why));
    if (rc)
        return rc;
    for (size_t i = 0; i < j->prop.nparams && off < sizeof(l->what); i++) {
        const struct ob_kv *kv = &j->prop.params[i];

        if (!strcmp(kv->name, "since"))
            continue;
        off += (size_t)snprintf(l->what + off, sizeof(l->what) - off, "%s%s=%s", off ? " " : "",
                                kv->name, kv->value);
    }
    if (cJSON_IsString(tenant)) {
        if (asprintf(&th, "X-Scope-OrgID: %s", tenant->valuestring) < 0)
            return OB_ENOMEM;
        extra[1] = th;
    }
    q = ob_http_escape(l->query);
    if (!q || asprintf(&url,
                       "%s/loki/api/v1/query_range?query=%s&start=%lld&end=%lld&limit=%d"
                       "&direction=backward",
                       j->base_url, q, (long long)(now_ns - l->since_ms * 1000000LL),
                       (long long)now_ns, l->limit) < 0) {
        url = NULL;
        rc = OB_ENOMEM;
        goto out;
    }
    if (j->dry_run) {
        ob__job_status(j, "dry run");
        ob__job_printf(j, "dry run: would send\n");
        ob__job_show_request(j, "GET", url, extra, NULL);
        ob__job_printf(j, "LogQL: %s\n", l->query);
        ob__job_after(j, 0, dry_done);
    } else {
        ob__job_request(j, "GET", url, extra, NULL, on_answer);
    }
out:
    free(q);
    free(url);
    free(th);
    return rc;
}

const struct ob__exec_type ob__type_loki = {
    .name = "loki",
    .keys = loki_keys,
    .needs_url = true,
    .check = loki_check,
    .start = loki_start,
    .describe = loki_describe,
    .free_ctx = loki_free,
};
