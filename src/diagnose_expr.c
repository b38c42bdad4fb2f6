/* The playbook's expressions (grammar in diagnose_int.h): a recursive-descent
 * parser into a small tree, evaluated with NaN as "unknown". */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose_int.h"
#include "opsbot/util.h"

#define MAX_SRC 512
#define MAX_DEPTH 32
#define MAX_ARGS 8
#define NAME_MAX_LEN 64

enum kind {
    K_NUM,
    K_NAME,
    K_NEG,
    K_ADD,
    K_SUB,
    K_MUL,
    K_DIV,
    K_LT,
    K_LE,
    K_GT,
    K_GE,
    K_EQ,
    K_NE,
    K_CALL
};

struct dx_expr {
    enum kind k;
    double num;
    char name[NAME_MAX_LEN];
    struct dx_expr *a, *b;
    struct dx_expr *args[MAX_ARGS];
    size_t nargs;
};

struct parser {
    const char *s;
    size_t i;
    int depth;
    char *why;
    size_t whylen;
    bool failed;
};

static const char *const functions[] = {"max", "min", "ceil", "floor", "round", "abs", "has", NULL};

static void fail(struct parser *p, const char *what)
{
    if (p->failed)
        return;
    p->failed = true;
    if (p->s[p->i])
        snprintf(p->why, p->whylen, "%s at %zu ('%.10s')", what, p->i + 1, p->s + p->i);
    else
        snprintf(p->why, p->whylen, "%s at the end", what);
}

static void skip(struct parser *p)
{
    while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
        p->i++;
}

static struct dx_expr *node(enum kind k)
{
    struct dx_expr *e = ob_xcalloc(1, sizeof(*e));

    e->k = k;
    return e;
}

static struct dx_expr *expr(struct parser *p);

static struct dx_expr *atom(struct parser *p)
{
    struct dx_expr *e;
    const char *s = p->s;

    skip(p);
    if (isdigit((unsigned char)s[p->i]) ||
        (s[p->i] == '.' && isdigit((unsigned char)s[p->i + 1]))) {
        char *end = NULL;
        double v = strtod(s + p->i, &end);

        if (!end || end == s + p->i || !isfinite(v)) {
            fail(p, "bad number");
            return NULL;
        }
        p->i = (size_t)(end - s);
        if (!strncmp(s + p->i, "ms", 2) && !isalnum((unsigned char)s[p->i + 2])) {
            v /= 1000;
            p->i += 2;
        } else if (s[p->i] == '%') {
            v /= 100;
            p->i++;
        } else if (strchr("smhd", s[p->i]) && s[p->i] && !isalnum((unsigned char)s[p->i + 1]) &&
                   s[p->i + 1] != '_') {
            v *= s[p->i] == 's' ? 1 : s[p->i] == 'm' ? 60 : s[p->i] == 'h' ? 3600 : 86400;
            p->i++;
        }
        if (isalpha((unsigned char)s[p->i]) || s[p->i] == '_') {
            fail(p, "unknown unit");
            return NULL;
        }
        e = node(K_NUM);
        e->num = v;
        return e;
    }
    if (isalpha((unsigned char)s[p->i]) || s[p->i] == '_') {
        size_t st = p->i, n;

        while (isalnum((unsigned char)s[p->i]) || s[p->i] == '_')
            p->i++;
        n = p->i - st;
        if (n >= NAME_MAX_LEN) {
            fail(p, "name too long");
            return NULL;
        }
        skip(p);
        e = node(K_NAME);
        memcpy(e->name, s + st, n);
        e->name[n] = '\0';
        if (s[p->i] != '(')
            return e;
        e->k = K_CALL;
        {
            bool known = false;

            for (size_t f = 0; functions[f]; f++)
                known = known || !strcmp(functions[f], e->name);
            if (!known) {
                p->i = st;
                fail(p, "unknown function (max, min, ceil, floor, round, abs, has)");
                dx_expr_free(e);
                return NULL;
            }
        }
        p->i++;
        for (;;) {
            struct dx_expr *arg;

            if (e->nargs == MAX_ARGS) {
                fail(p, "too many arguments");
                dx_expr_free(e);
                return NULL;
            }
            arg = expr(p);
            if (!arg) {
                dx_expr_free(e);
                return NULL;
            }
            e->args[e->nargs++] = arg;
            skip(p);
            if (s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (s[p->i] == ')') {
                p->i++;
                break;
            }
            fail(p, "expected ',' or ')'");
            dx_expr_free(e);
            return NULL;
        }
        if (!strcmp(e->name, "has") && (e->nargs != 1 || e->args[0]->k != K_NAME)) {
            fail(p, "has() takes one name");
            dx_expr_free(e);
            return NULL;
        }
        if (strcmp(e->name, "max") && strcmp(e->name, "min") && e->nargs != 1) {
            fail(p, "this function takes one argument");
            dx_expr_free(e);
            return NULL;
        }
        return e;
    }
    if (s[p->i] == '(') {
        p->i++;
        e = expr(p);
        if (!e)
            return NULL;
        skip(p);
        if (s[p->i] != ')') {
            fail(p, "expected ')'");
            dx_expr_free(e);
            return NULL;
        }
        p->i++;
        return e;
    }
    fail(p, s[p->i] ? "unexpected character" : "expression ends too early");
    return NULL;
}

static struct dx_expr *unary(struct parser *p)
{
    skip(p);
    if (p->s[p->i] == '-') {
        struct dx_expr *e, *a;

        p->i++;
        if (++p->depth > MAX_DEPTH) {
            fail(p, "nested too deeply");
            return NULL;
        }
        a = unary(p);
        p->depth--;
        if (!a)
            return NULL;
        e = node(K_NEG);
        e->a = a;
        return e;
    }
    return atom(p);
}

static struct dx_expr *binary(struct parser *p, struct dx_expr *a, enum kind k,
                              struct dx_expr *(*next)(struct parser *))
{
    struct dx_expr *b = next(p), *e;

    if (!b) {
        dx_expr_free(a);
        return NULL;
    }
    e = node(k);
    e->a = a;
    e->b = b;
    return e;
}

static struct dx_expr *term(struct parser *p)
{
    struct dx_expr *e = unary(p);

    while (e) {
        skip(p);
        if (p->s[p->i] != '*' && p->s[p->i] != '/')
            break;
        p->i++;
        e = binary(p, e, p->s[p->i - 1] == '*' ? K_MUL : K_DIV, unary);
    }
    return e;
}

static struct dx_expr *sum(struct parser *p)
{
    struct dx_expr *e = term(p);

    while (e) {
        skip(p);
        if (p->s[p->i] != '+' && p->s[p->i] != '-')
            break;
        p->i++;
        e = binary(p, e, p->s[p->i - 1] == '+' ? K_ADD : K_SUB, term);
    }
    return e;
}

static struct dx_expr *expr(struct parser *p)
{
    static const struct {
        const char *op;
        enum kind k;
    } ops[] = {{"<=", K_LE}, {">=", K_GE}, {"==", K_EQ}, {"!=", K_NE}, {"<", K_LT}, {">", K_GT}};
    struct dx_expr *e;

    if (++p->depth > MAX_DEPTH) {
        fail(p, "nested too deeply");
        return NULL;
    }
    e = sum(p);
    skip(p);
    for (size_t k = 0; e && k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t n = strlen(ops[k].op);

        if (strncmp(p->s + p->i, ops[k].op, n))
            continue;
        p->i += n;
        e = binary(p, e, ops[k].k, sum);
        skip(p);
        if (e && strchr("<>=!", p->s[p->i]) && p->s[p->i]) {
            fail(p, "comparisons do not chain");
            dx_expr_free(e);
            e = NULL;
        }
        break;
    }
    p->depth--;
    return e;
}

struct dx_expr *dx_expr_parse(const char *src, char *why, size_t whylen)
{
    struct parser p = {.s = src, .why = why, .whylen = whylen};
    struct dx_expr *e;

    if (whylen)
        why[0] = '\0';
    if (!src || !*src) {
        snprintf(why, whylen, "empty expression");
        return NULL;
    }
    if (strlen(src) > MAX_SRC) {
        snprintf(why, whylen, "longer than %d bytes", MAX_SRC);
        return NULL;
    }
    e = expr(&p);
    if (e) {
        skip(&p);
        if (p.s[p.i]) {
            fail(&p, "unexpected text");
            dx_expr_free(e);
            e = NULL;
        }
    }
    return e;
}

void dx_expr_free(struct dx_expr *e)
{
    if (!e)
        return;
    dx_expr_free(e->a);
    dx_expr_free(e->b);
    for (size_t i = 0; i < e->nargs; i++)
        dx_expr_free(e->args[i]);
    free(e);
}

void dx_expr_names(const struct dx_expr *e, dx_name_fn fn, void *data)
{
    if (!e)
        return;
    if (e->k == K_NAME)
        fn(data, e->name);
    dx_expr_names(e->a, fn, data);
    dx_expr_names(e->b, fn, data);
    for (size_t i = 0; i < e->nargs; i++)
        dx_expr_names(e->args[i], fn, data);
}

static double cmp(enum kind k, double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    switch (k) {
    case K_LT:
        return a < b;
    case K_LE:
        return a <= b;
    case K_GT:
        return a > b;
    case K_GE:
        return a >= b;
    case K_EQ:
        return a == b;
    default:
        return a != b;
    }
}

double dx_expr_eval(const struct dx_expr *e, dx_lookup_fn fn, void *data)
{
    double a, b;

    if (!e)
        return NAN;
    switch (e->k) {
    case K_NUM:
        return e->num;
    case K_NAME:
        return fn(data, e->name);
    case K_NEG:
        return -dx_expr_eval(e->a, fn, data);
    case K_CALL:
        if (!strcmp(e->name, "has"))
            return isnan(fn(data, e->args[0]->name)) ? 0 : 1;
        a = dx_expr_eval(e->args[0], fn, data);
        if (!strcmp(e->name, "max") || !strcmp(e->name, "min")) {
            bool mx = e->name[1] == 'a';

            for (size_t i = 1; i < e->nargs && !isnan(a); i++) {
                b = dx_expr_eval(e->args[i], fn, data);
                a = isnan(b) ? NAN : mx ? fmax(a, b) : fmin(a, b);
            }
            return a;
        }
        if (!strcmp(e->name, "ceil"))
            return ceil(a);
        if (!strcmp(e->name, "floor"))
            return floor(a);
        if (!strcmp(e->name, "round"))
            return round(a);
        return fabs(a);
    default:
        break;
    }
    a = dx_expr_eval(e->a, fn, data);
    b = dx_expr_eval(e->b, fn, data);
    switch (e->k) {
    case K_ADD:
        return a + b;
    case K_SUB:
        return a - b;
    case K_MUL:
        return a * b;
    case K_DIV:
        return b == 0 ? NAN : a / b;
    default:
        return cmp(e->k, a, b);
    }
}
