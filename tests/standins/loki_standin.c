/* The local Loki stand-in (see loki_standin.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "loki_standin.h"
#include "opsbot/err.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define MAX_STREAMS 64
#define MAX_MATCHERS 16

struct entry {
    int64_t ns;
    char *line;
};

struct stream {
    cJSON *labels; /* object name -> value */
    struct entry *e;
    size_t n, cap;
};

struct ob_loki_standin {
    struct ob_http_server *srv;
    char *tenant;
    struct stream streams[MAX_STREAMS];
    size_t nstreams;
    size_t count;
    char *last_query;
    int last_limit;
    int64_t last_range;
};

/* ---- query string -------------------------------------------------------- */

/* The decoded value of parameter name in query (malloc'd) or NULL. */
static char *qparam(const char *query, const char *name)
{
    size_t nl = strlen(name);
    const char *p = query;

    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);

        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            char *out = malloc(len + 1);
            size_t o = 0;

            for (size_t i = nl + 1; i < len; i++) {
                if (p[i] == '%' && i + 2 < len + 1 && ob_hexval(p[i + 1]) >= 0 &&
                    ob_hexval(p[i + 2]) >= 0) {
                    out[o++] = (char)(ob_hexval(p[i + 1]) * 16 + ob_hexval(p[i + 2]));
                    i += 2;
                } else {
                    out[o++] = p[i] == '+' ? ' ' : p[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ---- the LogQL subset ------------------------------------------------------ */

enum mop { M_EQ, M_NE, M_RE, M_NRE };

struct matcher {
    char name[64];
    enum mop op;
    char *value;
    pcre2_code *re;
};

struct lq {
    const char *s;
    size_t i;
    char err[256];
    struct matcher sel[MAX_MATCHERS];
    size_t nsel;
    struct matcher filt[MAX_MATCHERS];
    size_t nfilt;
};

static void skip_ws(struct lq *q)
{
    while (q->s[q->i] == ' ' || q->s[q->i] == '\t' || q->s[q->i] == '\n')
        q->i++;
}

static int syntax(struct lq *q, const char *what)
{
    snprintf(q->err, sizeof(q->err), "parse error at line 1, col %zu: syntax error: %s", q->i + 1,
             what);
    return -1;
}

static int parse_string(struct lq *q, char **out)
{
    const char *s = q->s;
    size_t cap = strlen(s) + 1, o = 0;
    char *v = malloc(cap);
    char quote = s[q->i];

    if (quote != '"' && quote != '`') {
        free(v);
        return syntax(q, "unexpected token, expecting STRING");
    }
    q->i++;
    while (s[q->i] && s[q->i] != quote) {
        char c = s[q->i];

        if (quote == '"' && c == '\n') {
            free(v);
            return syntax(q, "newline in string");
        }
        if (quote == '"' && c == '\\') {
            char e = s[q->i + 1];

            q->i += 2;
            switch (e) {
            case '\\':
                v[o++] = '\\';
                break;
            case '"':
                v[o++] = '"';
                break;
            case '\'':
                v[o++] = '\'';
                break;
            case 'n':
                v[o++] = '\n';
                break;
            case 't':
                v[o++] = '\t';
                break;
            case 'r':
                v[o++] = '\r';
                break;
            case 'x':
                if (ob_hexval(s[q->i]) < 0 || ob_hexval(s[q->i + 1]) < 0) {
                    free(v);
                    snprintf(q->err, sizeof(q->err),
                             "parse error at line 1, col %zu: invalid char escape", q->i);
                    return -1;
                }
                v[o++] = (char)(ob_hexval(s[q->i]) * 16 + ob_hexval(s[q->i + 1]));
                q->i += 2;
                break;
            default:
                free(v);
                snprintf(q->err, sizeof(q->err),
                         "parse error at line 1, col %zu: invalid char escape", q->i);
                return -1;
            }
            continue;
        }
        v[o++] = c;
        q->i++;
    }
    if (s[q->i] != quote) {
        free(v);
        return syntax(q, "literal not terminated");
    }
    q->i++;
    v[o] = '\0';
    *out = v;
    return 0;
}

static int compile(struct lq *q, struct matcher *m, bool anchored)
{
    char *pat = NULL;
    int ec;
    PCRE2_SIZE off;

    if (asprintf(&pat, anchored ? "^(?:%s)$" : "%s", m->value) < 0)
        return -1;
    m->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    free(pat);
    if (!m->re) {
        snprintf(q->err, sizeof(q->err), "parse error : error parsing regexp: invalid regex");
        return -1;
    }
    return 0;
}

static int parse_op(const char *s, enum mop *op, bool line)
{
    if (line) {
        if (!strncmp(s, "|=", 2))
            *op = M_EQ;
        else if (!strncmp(s, "!=", 2))
            *op = M_NE;
        else if (!strncmp(s, "|~", 2))
            *op = M_RE;
        else if (!strncmp(s, "!~", 2))
            *op = M_NRE;
        else
            return 0;
        return 2;
    }
    if (!strncmp(s, "=~", 2)) {
        *op = M_RE;
        return 2;
    }
    if (!strncmp(s, "!~", 2)) {
        *op = M_NRE;
        return 2;
    }
    if (!strncmp(s, "!=", 2)) {
        *op = M_NE;
        return 2;
    }
    if (s[0] == '=') {
        *op = M_EQ;
        return 1;
    }
    return 0;
}

static int parse_query(struct lq *q)
{
    const char *s = q->s;

    skip_ws(q);
    if (s[q->i] != '{')
        return syntax(q, "unexpected IDENTIFIER, expecting {");
    q->i++;
    for (;;) {
        struct matcher *m;
        size_t st;
        int k;

        skip_ws(q);
        if (s[q->i] == '}' && q->nsel > 0)
            break;
        if (q->nsel == MAX_MATCHERS)
            return syntax(q, "too many matchers");
        m = &q->sel[q->nsel];
        st = q->i;
        while ((s[q->i] >= 'a' && s[q->i] <= 'z') || (s[q->i] >= 'A' && s[q->i] <= 'Z') ||
               s[q->i] == '_' || (q->i > st && s[q->i] >= '0' && s[q->i] <= '9'))
            q->i++;
        if (q->i == st || q->i - st >= sizeof(m->name))
            return syntax(q, "unexpected token, expecting IDENTIFIER");
        memcpy(m->name, s + st, q->i - st);
        m->name[q->i - st] = '\0';
        skip_ws(q);
        k = parse_op(s + q->i, &m->op, false);
        if (!k)
            return syntax(q, "unexpected token, expecting = or != or =~ or !~");
        q->i += (size_t)k;
        skip_ws(q);
        if (parse_string(q, &m->value))
            return -1;
        q->nsel++;
        if ((m->op == M_RE || m->op == M_NRE) && compile(q, m, true))
            return -1;
        skip_ws(q);
        if (s[q->i] == ',') {
            q->i++;
            continue;
        }
        if (s[q->i] != '}')
            return syntax(q, "unexpected token, expecting , or }");
        break;
    }
    q->i++;
    for (;;) {
        struct matcher *m;
        int k;

        skip_ws(q);
        if (!s[q->i])
            return 0;
        if (q->nfilt == MAX_MATCHERS)
            return syntax(q, "too many filters");
        m = &q->filt[q->nfilt];
        k = parse_op(s + q->i, &m->op, true);
        if (!k)
            return syntax(q, "unexpected token, expecting |= or != or |~ or !~");
        q->i += (size_t)k;
        skip_ws(q);
        if (parse_string(q, &m->value))
            return -1;
        q->nfilt++;
        if ((m->op == M_RE || m->op == M_NRE) && compile(q, m, false))
            return -1;
    }
}

static void lq_release(struct lq *q)
{
    for (size_t i = 0; i < q->nsel; i++) {
        free(q->sel[i].value);
        pcre2_code_free(q->sel[i].re);
    }
    for (size_t i = 0; i < q->nfilt; i++) {
        free(q->filt[i].value);
        pcre2_code_free(q->filt[i].re);
    }
}

static bool re_match(pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);

    pcre2_match_data_free(md);
    return rc >= 0;
}

static bool stream_matches(const struct lq *q, const struct stream *st)
{
    for (size_t i = 0; i < q->nsel; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->labels, q->sel[i].name);
        const char *val = cJSON_IsString(v) ? v->valuestring : "";
        bool hit;

        if (q->sel[i].op == M_EQ || q->sel[i].op == M_NE)
            hit = !strcmp(val, q->sel[i].value);
        else
            hit = re_match(q->sel[i].re, val);
        if (q->sel[i].op == M_NE || q->sel[i].op == M_NRE)
            hit = !hit;
        if (!hit)
            return false;
    }
    return true;
}

static bool line_matches(const struct lq *q, const char *line)
{
    for (size_t i = 0; i < q->nfilt; i++) {
        bool hit;

        if (q->filt[i].op == M_EQ || q->filt[i].op == M_NE)
            hit = strstr(line, q->filt[i].value) != NULL;
        else
            hit = re_match(q->filt[i].re, line);
        if (q->filt[i].op == M_NE || q->filt[i].op == M_NRE)
            hit = !hit;
        if (!hit)
            return false;
    }
    return true;
}

/* ---- serving ------------------------------------------------------------- */

struct hit {
    size_t stream;
    const struct entry *e;
};

static int by_newest(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;

    return x->e->ns < y->e->ns ? 1 : x->e->ns > y->e->ns ? -1 : 0;
}

static void text(struct ob_http_exchange *ex, int status, const char *msg)
{
    ob_http_reply(ex, status, "text/plain; charset=utf-8", msg, strlen(msg), NULL);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct ob_loki_standin *s = data;
    struct lq q = {0};
    char *query = NULL, *lim = NULL, *start = NULL, *end = NULL, *dir = NULL, *body;
    struct hit *hits = NULL;
    size_t nh = 0, total = 0;
    int64_t t0, t1;
    int limit;
    cJSON *root, *result;

    s->count++;
    if (s->tenant) {
        const char *org = ob_http_srv_header(req, "X-Scope-OrgID");

        if (!org || strcmp(org, s->tenant)) {
            text(ex, 401, "no org id\n");
            return;
        }
    }
    if (strcmp(req->method, "GET") || strcmp(req->path, "/loki/api/v1/query_range")) {
        text(ex, 404, "404 page not found\n");
        return;
    }
    query = qparam(req->query, "query");
    lim = qparam(req->query, "limit");
    start = qparam(req->query, "start");
    end = qparam(req->query, "end");
    dir = qparam(req->query, "direction");
    free(s->last_query);
    s->last_query = query ? ob_xstrdup(query) : NULL;
    limit = lim ? atoi(lim) : 100;
    s->last_limit = limit;
    t0 = start ? strtoll(start, NULL, 10) : 0;
    t1 = end ? strtoll(end, NULL, 10) : INT64_MAX;
    s->last_range = t1 - t0;
    if (!query) {
        text(ex, 400, "parse error : syntax error: unexpected $end\n");
        goto out;
    }
    q.s = query;
    if (parse_query(&q)) {
        char msg[300];

        snprintf(msg, sizeof(msg), "%s\n", q.err);
        text(ex, 400, msg);
        goto out;
    }
    if (dir && strcmp(dir, "backward")) {
        text(ex, 400, "the stand-in only answers direction=backward\n");
        goto out;
    }
    for (size_t i = 0; i < s->nstreams; i++)
        total += s->streams[i].n;
    hits = calloc(total + 1, sizeof(*hits));
    for (size_t i = 0; i < s->nstreams; i++) {
        if (!stream_matches(&q, &s->streams[i]))
            continue;
        for (size_t k = 0; k < s->streams[i].n; k++) {
            const struct entry *e = &s->streams[i].e[k];

            if (e->ns >= t0 && e->ns <= t1 && line_matches(&q, e->line)) {
                hits[nh].stream = i;
                hits[nh].e = e;
                nh++;
            }
        }
    }
    qsort(hits, nh, sizeof(*hits), by_newest);
    if (limit > 0 && nh > (size_t)limit)
        nh = (size_t)limit;
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "success");
    {
        cJSON *d = cJSON_AddObjectToObject(root, "data");

        cJSON_AddStringToObject(d, "resultType", "streams");
        result = cJSON_AddArrayToObject(d, "result");
        cJSON_AddObjectToObject(d, "stats");
    }
    for (size_t i = 0; i < s->nstreams; i++) {
        cJSON *st = NULL, *vals = NULL;

        for (size_t k = 0; k < nh; k++) {
            cJSON *pair;
            char ts[32];

            if (hits[k].stream != i)
                continue;
            if (!st) {
                st = cJSON_CreateObject();
                cJSON_AddItemToObject(st, "stream", cJSON_Duplicate(s->streams[i].labels, true));
                vals = cJSON_AddArrayToObject(st, "values");
                cJSON_AddItemToArray(result, st);
            }
            snprintf(ts, sizeof(ts), "%lld", (long long)hits[k].e->ns);
            pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(ts));
            cJSON_AddItemToArray(pair, cJSON_CreateString(hits[k].e->line));
            cJSON_AddItemToArray(vals, pair);
        }
    }
    body = cJSON_PrintUnformatted(root);
    ob_http_reply(ex, 200, "application/json", body, strlen(body), NULL);
    free(body);
    cJSON_Delete(root);
out:
    lq_release(&q);
    free(hits);
    free(query);
    free(lim);
    free(start);
    free(end);
    free(dir);
}

/* ---- API ------------------------------------------------------------------ */

int ob_loki_standin_new(struct ob_loki_standin **out, struct ob_lws *lws, const char *tenant)
{
    struct ob_loki_standin *s = ob_xcalloc(1, sizeof(*s));
    struct ob_http_server_opts o = {.listen = "127.0.0.1:0"};
    int rc;

    s->tenant = tenant ? ob_xstrdup(tenant) : NULL;
    rc = ob_http_server_new(lws, &o, handler, s, &s->srv);
    if (rc) {
        free(s->tenant);
        free(s);
        *out = NULL;
        return rc;
    }
    *out = s;
    return 0;
}

void ob_loki_standin_free(struct ob_loki_standin *s)
{
    if (!s)
        return;
    ob_http_server_free(s->srv);
    for (size_t i = 0; i < s->nstreams; i++) {
        for (size_t k = 0; k < s->streams[i].n; k++)
            free(s->streams[i].e[k].line);
        free(s->streams[i].e);
        cJSON_Delete(s->streams[i].labels);
    }
    free(s->last_query);
    free(s->tenant);
    free(s);
}

int ob_loki_standin_port(const struct ob_loki_standin *s)
{
    return ob_http_server_port(s->srv);
}

void ob_loki_standin_push(struct ob_loki_standin *s, const char *labels, int64_t ts_ns,
                          const char *line)
{
    cJSON *l = cJSON_CreateObject();
    char *copy = ob_xstrdup(labels), *save = NULL;
    struct stream *st = NULL;

    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');

        if (eq) {
            *eq = '\0';
            cJSON_AddStringToObject(l, kv, eq + 1);
        }
    }
    free(copy);
    for (size_t i = 0; i < s->nstreams; i++) {
        if (cJSON_Compare(s->streams[i].labels, l, true)) {
            st = &s->streams[i];
            break;
        }
    }
    if (!st) {
        if (s->nstreams == MAX_STREAMS) {
            cJSON_Delete(l);
            return;
        }
        st = &s->streams[s->nstreams++];
        st->labels = l;
    } else {
        cJSON_Delete(l);
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->e = realloc(st->e, st->cap * sizeof(*st->e));
    }
    st->e[st->n].ns = ts_ns;
    st->e[st->n].line = ob_xstrdup(line);
    st->n++;
}

size_t ob_loki_standin_count(const struct ob_loki_standin *s)
{
    return s->count;
}

const char *ob_loki_standin_last_query(const struct ob_loki_standin *s)
{
    return s->last_query;
}

int ob_loki_standin_last_limit(const struct ob_loki_standin *s)
{
    return s->last_limit;
}

int64_t ob_loki_standin_last_range_ns(const struct ob_loki_standin *s)
{
    return s->last_range;
}
