/* Safe PromQL and LogQL from templates.
 *
 * A parameter value never becomes query text. The scanner below walks the
 * template with just enough of the languages' lexical structure to know
 * where each {placeholder} sits:
 *
 *   inside a double-quoted string that is a label-matcher value
 *   ({service="{service}"}, PromQL and LogQL selectors) or, in LogQL, a
 *   line filter (|= "{filter}", != "…") or a label filter (| level="{x}"):
 *       the value is escaped as a string (\ " newline CR tab; any other
 *       control character is refused); behind a regex operator (=~ !~ |~)
 *       it is regex-escaped first, so it matches itself literally;
 *   a whole range, subquery or offset duration ([{since}], [1h:{step}],
 *   offset {since}):
 *       the parameter must be of type duration; its parsed value is written
 *       back as one unit ("90m").
 *
 * Any other placement (a bare placeholder, one in a function argument
 * string, in a single-quoted or raw string) is refused at load time.
 * "{{" and "}}" stand for literal braces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

enum qctx { Q_NONE, Q_STR, Q_REGEX };
enum prev { PV_NONE, PV_OTHER, PV_LBRACKET, PV_COLON, PV_OFFSET, PV_OP_EQ, PV_OP_RE };

struct qbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void qb_add(struct qbuf *b, const char *s, size_t n)
{
    if (!b || b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
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

char *ob__qstring_escape(const char *v, bool regex)
{
    struct qbuf b = {0};

    qb_add(&b, "", 0);
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;

        if (regex && strchr("\\.+*?()|[]{}^$", c) && c) {
            /* regex escape, then the string escape doubles the backslash */
            qb_add(&b, "\\\\", 2);
        }
        if (c == '\\')
            qb_add(&b, "\\\\", 2);
        else if (c == '"')
            qb_add(&b, "\\\"", 2);
        else if (c == '\n')
            qb_add(&b, "\\n", 2);
        else if (c == '\r')
            qb_add(&b, "\\r", 2);
        else if (c == '\t')
            qb_add(&b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f)
            goto fail;
        else
            qb_add(&b, v, 1);
    }
    if (b.oom)
        goto fail;
    return b.p;
fail:
    free(b.p);
    return NULL;
}

const char *ob__qduration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = {{7 * 86400000LL, "w"}, {86400000LL, "d"}, {3600000, "h"},
                 {60000, "m"},          {1000, "s"},       {1, "ms"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
            return buf;
        }
    }
    snprintf(buf, len, "%lldms", (long long)(ms > 0 ? ms : 0));
    return buf;
}

int64_t ob__step_for_range(int64_t range_ms)
{
    static const int64_t steps[] = {1000,    5000,     10000,    15000,    30000,   60000,
                                    120000,  300000,   600000,   900000,   1800000, 3600000,
                                    7200000, 10800000, 21600000, 43200000, 86400000};
    int64_t want = range_ms / 60;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i] >= want)
            return steps[i];
    }
    return steps[sizeof(steps) / sizeof(steps[0]) - 1];
}

struct qscan {
    enum ob__qdialect dl;
    const char *s;
    const struct ob_action *a;      /* check mode */
    const struct ob_proposal *prop; /* render mode */
    struct qbuf *out;               /* render mode */
    char *why;
    size_t whylen;
};

static bool ident_char(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || (colon && c == ':');
}

static int fail(struct qscan *q, const char *fmt, size_t at, size_t n, const char *name)
{
    snprintf(q->why, q->whylen, fmt, (int)n, name, at);
    return OB_EINVAL;
}

/* A placeholder at s[i] (name of n bytes at s[i+1]) in context ctx (or as
 * a duration when dur). Check: the parameter exists (and is a duration).
 * Render: append the escaped value. */
static int placeholder(struct qscan *q, size_t i, size_t n, enum qctx ctx, bool dur)
{
    const char *name = q->s + i + 1;
    const struct ob_action *a = q->a ? q->a : (q->prop ? q->prop->action : NULL);
    const struct ob_param_def *p = a ? ob__param_def(a, name, n) : NULL;

    if (a && !p) {
        char list[256];
        size_t off = 0;

        list[0] = '\0';
        for (size_t k = 0; k < a->nparams && off < sizeof(list); k++)
            off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", k ? ", " : "",
                                    a->params[k].name);
        snprintf(q->why, q->whylen, "unknown placeholder {%.*s} at byte %zu (parameters: %s)",
                 (int)n, name, i, list[0] ? list : "none");
        return OB_EINVAL;
    }
    if (dur && p && p->type != OB_PARAM_DURATION)
        return fail(q,
                    "{%.*s} at byte %zu stands for a duration, but the parameter is not of type "
                    "duration",
                    i, n, name);
    if (!q->out)
        return 0;
    {
        const char *v = ob__param_value(q->prop, name, n);
        char *e = NULL;

        if (!v)
            return fail(q, "no value for {%.*s} (byte %zu)", i, n, name);
        if (dur) {
            int64_t ms;
            char d[32];

            if (!*v || ob_duration_parse(v, &ms) || ms <= 0)
                return fail(q, "{%.*s} (byte %zu) needs a duration value", i, n, name);
            ob__qduration(ms, d, sizeof(d));
            qb_add(q->out, d, strlen(d));
            return 0;
        }
        e = ob__qstring_escape(v, ctx == Q_REGEX);
        if (!e)
            return fail(q, "the value of {%.*s} (byte %zu) holds a control character", i, n, name);
        qb_add(q->out, e, strlen(e));
        free(e);
    }
    return 0;
}

static enum prev classify_op(const char *op, size_t n)
{
    if ((n == 1 && op[0] == '=') || (n == 2 && !memcmp(op, "!=", 2)) ||
        (n == 2 && !memcmp(op, "|=", 2)) || (n == 2 && !memcmp(op, "==", 2)))
        return PV_OP_EQ;
    if (n == 2 && (!memcmp(op, "=~", 2) || !memcmp(op, "!~", 2) || !memcmp(op, "|~", 2)))
        return PV_OP_RE;
    return PV_OTHER;
}

static int scan(struct qscan *q)
{
    const char *s = q->s;
    size_t i = 0, n;
    int brace = 0;
    bool bracket = false;
    enum prev prev = PV_NONE;
    int rc;

    while (s[i]) {
        char c = s[i];

        if ((c == '{' && s[i + 1] == '{') || (c == '}' && s[i + 1] == '}')) {
            qb_add(q->out, s + i, 1);
            i += 2;
            prev = PV_OTHER;
            continue;
        }
        if (c == '{' && ob__ph_at(s + i, &n)) {
            char next = s[i + n + 2];
            bool dur = false;

            if (bracket && (prev == PV_LBRACKET || prev == PV_COLON) &&
                (next == ']' || next == ':'))
                dur = true;
            else if (prev == PV_OFFSET && !ident_char(next, true))
                dur = true;
            if (!dur)
                return fail(q,
                            "placeholder {%.*s} at byte %zu is not inside a double-quoted label "
                            "value or a whole range/offset duration: parameters are never "
                            "spliced in as query text",
                            i, n, s + i + 1);
            rc = placeholder(q, i, n, Q_NONE, true);
            if (rc)
                return rc;
            i += n + 2;
            prev = PV_OTHER;
            continue;
        }
        if (c == '"') {
            enum qctx ctx = Q_NONE;
            size_t start = i;

            if ((brace > 0 || q->dl == OB__LOGQL) && (prev == PV_OP_EQ || prev == PV_OP_RE))
                ctx = prev == PV_OP_RE ? Q_REGEX : Q_STR;
            qb_add(q->out, "\"", 1);
            i++;
            while (s[i] && s[i] != '"') {
                if (s[i] == '\\') {
                    if (!s[i + 1])
                        break;
                    qb_add(q->out, s + i, 2);
                    i += 2;
                } else if ((s[i] == '{' && s[i + 1] == '{') || (s[i] == '}' && s[i + 1] == '}')) {
                    qb_add(q->out, s + i, 1);
                    i += 2;
                } else if (s[i] == '{' && ob__ph_at(s + i, &n)) {
                    if (ctx == Q_NONE)
                        return fail(q,
                                    "placeholder {%.*s} at byte %zu is in a string that is not a "
                                    "label value or line filter",
                                    i, n, s + i + 1);
                    rc = placeholder(q, i, n, ctx, false);
                    if (rc)
                        return rc;
                    i += n + 2;
                } else {
                    qb_add(q->out, s + i, 1);
                    i++;
                }
            }
            if (s[i] != '"') {
                snprintf(q->why, q->whylen, "unterminated string starting at byte %zu", start);
                return OB_EINVAL;
            }
            qb_add(q->out, "\"", 1);
            i++;
            prev = PV_OTHER;
            continue;
        }
        if (c == '\'' || c == '`') {
            size_t start = i;

            i++;
            while (s[i] && s[i] != c) {
                if (s[i] == '\\' && c == '\'' && s[i + 1])
                    i++;
                else if (s[i] == '{' && ob__ph_at(s + i, &n))
                    return fail(q,
                                "placeholder {%.*s} at byte %zu: parameters go only into "
                                "double-quoted strings",
                                i, n, s + i + 1);
                i++;
            }
            if (s[i] != c) {
                snprintf(q->why, q->whylen, "unterminated string starting at byte %zu", start);
                return OB_EINVAL;
            }
            i++;
            qb_add(q->out, s + start, i - start);
            prev = PV_OTHER;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            qb_add(q->out, s + i, 1);
            i++;
            continue;
        }
        if (strchr("=!~|<>", c)) {
            size_t j = i;

            while (s[j] && strchr("=!~|<>", s[j]))
                j++;
            prev = classify_op(s + i, j - i);
            qb_add(q->out, s + i, j - i);
            i = j;
            continue;
        }
        if (ident_char(c, !bracket)) {
            size_t j = i;

            while (ident_char(s[j], !bracket))
                j++;
            prev = (j - i == 6 && !memcmp(s + i, "offset", 6)) ? PV_OFFSET : PV_OTHER;
            qb_add(q->out, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '{')
            brace++;
        else if (c == '}' && brace > 0)
            brace--;
        else if (c == '[')
            bracket = true;
        else if (c == ']')
            bracket = false;
        prev = c == '[' ? PV_LBRACKET : (c == ':' && bracket) ? PV_COLON : PV_OTHER;
        qb_add(q->out, s + i, 1);
        i++;
    }
    return 0;
}

int ob__query_check(enum ob__qdialect dl, const char *tmpl, const struct ob_action *a, char *why,
                    size_t whylen)
{
    struct qscan q = {.dl = dl, .s = tmpl, .a = a, .why = why, .whylen = whylen};

    if (!tmpl || !*tmpl) {
        snprintf(why, whylen, "empty query");
        return OB_EINVAL;
    }
    if (strlen(tmpl) > 8192) {
        snprintf(why, whylen, "query template too long (at most 8192 bytes)");
        return OB_EINVAL;
    }
    return scan(&q);
}

char *ob__query_render(enum ob__qdialect dl, const char *tmpl, const struct ob_proposal *prop,
                       char *why, size_t whylen)
{
    struct qbuf b = {0};
    struct qscan q = {.dl = dl, .s = tmpl, .prop = prop, .out = &b, .why = why, .whylen = whylen};

    if (!tmpl || !prop) {
        snprintf(why, whylen, "no query");
        return NULL;
    }
    qb_add(&b, "", 0);
    if (scan(&q) || b.oom) {
        if (b.oom)
            snprintf(why, whylen, "out of memory");
        free(b.p);
        return NULL;
    }
    return b.p;
}
