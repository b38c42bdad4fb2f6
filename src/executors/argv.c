/* argv templates of the exec executor, and the load-time check of a binding.
 *
 * Template rules (one element at a time; an element is never split or
 * joined, whatever a value contains):
 *   {name}   the validated value of parameter `name` of the action
 *   {{  }}   a literal brace
 *   a lone '{' or '}' is an error, as is a placeholder in argv[0].
 * A placeholder of an optional parameter that has no value renders as "".
 * An element whose placeholders are ALL such unset optional parameters is
 * dropped entirely, so "--revision={revision}" disappears when no revision
 * was given, while "{service}-{revision}" keeps "checkout-".
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executors/net.h"
#include "opsbot/err.h"
#include "opsbot/executor.h"
#include "opsbot/util.h"

#define ARGV_MAX 64
#define ELEM_MAX 1024
#define NAME_MAX_LEN 63

enum piece_kind { PIECE_LIT, PIECE_NAME };

typedef int (*piece_cb)(void *ctx, enum piece_kind kind, const char *p, size_t n);

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Splits template element s into literal pieces and placeholder names.
 * Returns 0, the first non-zero value of cb, or OB_EINVAL with why set. */
static int tmpl_scan(const char *s, piece_cb cb, void *ctx, char *why, size_t whylen)
{
    size_t i = 0;
    int rc;

    while (s[i]) {
        if (s[i] == '{' && s[i + 1] == '{') {
            rc = cb(ctx, PIECE_LIT, "{", 1);
            i += 2;
        } else if (s[i] == '}' && s[i + 1] == '}') {
            rc = cb(ctx, PIECE_LIT, "}", 1);
            i += 2;
        } else if (s[i] == '}') {
            snprintf(why, whylen, "single '}' at byte %zu (write '}}' for a literal brace)", i);
            return OB_EINVAL;
        } else if (s[i] == '{') {
            size_t j = i + 1;

            if (name_start(s[j])) {
                while (name_char(s[j]))
                    j++;
            }
            if (j == i + 1 || s[j] != '}' || j - i - 1 > NAME_MAX_LEN) {
                snprintf(why, whylen,
                         "bad placeholder at byte %zu (placeholders look like {name}; write "
                         "'{{' for a literal brace)",
                         i);
                return OB_EINVAL;
            }
            rc = cb(ctx, PIECE_NAME, s + i + 1, j - i - 1);
            i = j + 1;
        } else {
            size_t j = i;

            while (s[j] && s[j] != '{' && s[j] != '}')
                j++;
            rc = cb(ctx, PIECE_LIT, s + i, j - i);
            i = j;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static const struct ob_param_def *find_param(const struct ob_action *a, const char *name, size_t n)
{
    for (size_t i = 0; a && i < a->nparams; i++) {
        if (a->params[i].name && strlen(a->params[i].name) == n &&
            !memcmp(a->params[i].name, name, n))
            return &a->params[i];
    }
    return NULL;
}

static const char *find_value(const struct ob_proposal *prop, const char *name)
{
    for (size_t i = 0; i < prop->nparams && i < OB_MAX_PARAMS; i++) {
        if (!strcmp(prop->params[i].name, name))
            return prop->params[i].value;
    }
    return NULL;
}

/* Makes p absolute against the current directory (dropping leading "./").
 * Takes ownership of p; returns a malloc'd string or NULL on OOM. */
static char *absolutize(char *p)
{
    char cwd[PATH_MAX];
    const char *rel = p;
    char *abs = NULL;

    if (!p || p[0] == '/')
        return p;
    if (!getcwd(cwd, sizeof(cwd)))
        return p; /* keep it relative; spawn reports the problem */
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (asprintf(&abs, "%s/%s", strcmp(cwd, "/") ? cwd : "", rel) < 0)
        abs = NULL;
    free(p);
    return abs;
}

static bool is_executable_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Resolves the program name: with a '/', relative to the config directory
 * (cfg NULL: the current directory) and made absolute; without one, looked
 * up in our PATH. *out is malloc'd (the best guess even on failure, or NULL
 * on OOM). Returns 0, -ENOENT (not found / not executable) or OB_ENOMEM. */
static int resolve_program(const struct ob_config *cfg, const char *name, char **out)
{
    const char *path, *p;
    char *cand = NULL;

    *out = NULL;
    if (strchr(name, '/')) {
        char *r = cfg ? ob_config_path(cfg, name) : strdup(name);

        *out = absolutize(r);
        if (!*out)
            return OB_ENOMEM;
        return is_executable_file(*out) ? 0 : -ENOENT;
    }
    path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path; *p;) {
        size_t n = strcspn(p, ":");

        if (n > 0 && n < PATH_MAX) {
            if (asprintf(&cand, "%.*s/%s", (int)n, p, name) < 0)
                return OB_ENOMEM;
            if (is_executable_file(cand)) {
                *out = absolutize(cand);
                return *out ? 0 : OB_ENOMEM;
            }
            free(cand);
            cand = NULL;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    *out = strdup(name);
    return *out ? -ENOENT : OB_ENOMEM;
}

/* ---- rendering ---------------------------------------------------------- */

struct render_ctx {
    const struct ob_proposal *prop;
    char *buf;
    size_t len, cap;
    size_t nph, nset;
};

static int render_add(struct render_ctx *c, const char *p, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 64;
        char *nb;

        while (cap < c->len + n + 1)
            cap *= 2;
        nb = realloc(c->buf, cap);
        if (!nb)
            return OB_ENOMEM;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return 0;
}

static int render_piece(void *ctx, enum piece_kind kind, const char *p, size_t n)
{
    struct render_ctx *c = ctx;
    const struct ob_param_def *def;
    const char *value;
    char name[NAME_MAX_LEN + 1];

    if (kind == PIECE_LIT)
        return render_add(c, p, n);
    def = find_param(c->prop->action, p, n);
    if (!def)
        return OB_EINVAL;
    memcpy(name, p, n);
    name[n] = '\0';
    value = find_value(c->prop, name);
    c->nph++;
    if (!value)
        return def->required ? OB_EINVAL : 0;
    c->nset++;
    return render_add(c, value, strlen(value));
}

int ob_argv_render(const struct ob_config *cfg, const cJSON *argv_tmpl,
                   const struct ob_proposal *prop, char ***argv_out)
{
    char **argv = NULL;
    char why[160];
    size_t n, k = 0;
    int rc = 0;

    *argv_out = NULL;
    if (!prop || !prop->action || !cJSON_IsArray(argv_tmpl))
        return OB_EINVAL;
    n = (size_t)cJSON_GetArraySize(argv_tmpl);
    if (n == 0 || n > ARGV_MAX)
        return OB_EINVAL;
    argv = calloc(n + 1, sizeof(*argv));
    if (!argv)
        return OB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const cJSON *el = cJSON_GetArrayItem(argv_tmpl, (int)i);
        struct render_ctx c = {.prop = prop};

        if (!cJSON_IsString(el) || !el->valuestring || strlen(el->valuestring) > ELEM_MAX) {
            rc = OB_EINVAL;
            goto out;
        }
        rc = tmpl_scan(el->valuestring, render_piece, &c, why, sizeof(why));
        if (!rc && !c.buf)
            rc = render_add(&c, "", 0);
        if (!rc && i == 0 && (c.nph > 0 || c.len == 0))
            rc = OB_EINVAL; /* the program is never parameterised */
        if (rc) {
            free(c.buf);
            goto out;
        }
        if (c.nph > 0 && c.nset == 0) {
            free(c.buf); /* only unset optional parameters: drop */
            continue;
        }
        argv[k++] = c.buf;
    }
    {
        char *prog = NULL;
        int e = resolve_program(cfg, argv[0], &prog);

        if (e == OB_ENOMEM) {
            rc = e;
            goto out;
        }
        free(argv[0]);
        argv[0] = prog;
    }
out:
    if (rc) {
        ob_argv_free(argv);
        return rc;
    }
    *argv_out = argv;
    return 0;
}

void ob_argv_free(char **argv)
{
    if (!argv)
        return;
    for (size_t i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* ---- display ------------------------------------------------------------ */

struct fmt {
    char *buf;
    size_t len, pos;
    bool full;
};

static void fmt_putc(struct fmt *f, char c)
{
    if (f->pos + 1 >= f->len) {
        f->full = true;
        return;
    }
    f->buf[f->pos++] = c;
}

static bool shell_safe(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_@%+=:,./-", c)))
            return false;
    }
    return true;
}

static void fmt_word(struct fmt *f, const char *s)
{
    bool quote = !shell_safe(s);

    if (quote)
        fmt_putc(f, '\'');
    for (; *s && !f->full; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\'') {
            fmt_putc(f, '\'');
            fmt_putc(f, '\\');
            fmt_putc(f, '\'');
            fmt_putc(f, '\'');
        } else {
            fmt_putc(f, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
        }
    }
    if (quote)
        fmt_putc(f, '\'');
}

const char *ob_argv_format(char *const *argv, char *buf, size_t len)
{
    struct fmt f = {.buf = buf, .len = len};

    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!argv || !argv[0])
        return buf;
    {
        const char *base = strrchr(argv[0], '/');

        fmt_word(&f, base && base[1] ? base + 1 : argv[0]);
    }
    for (size_t i = 1; argv[i] && !f.full; i++) {
        fmt_putc(&f, ' ');
        fmt_word(&f, argv[i]);
    }
    buf[f.pos] = '\0';
    if (f.full && len > 4)
        memcpy(buf + (f.pos > 3 ? f.pos - 3 : 0), "...", 4);
    return buf;
}

/* ---- load-time check ---------------------------------------------------- */

struct check_ctx {
    const struct ob_action *a;
    const char *where;
    size_t idx;
    struct ob_diag *d;
    int nerr;
    size_t nph;
};

static void param_list(const struct ob_action *a, char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    if (!a->nparams) {
        ob_strlcpy(buf, "the action has no parameters", len);
        return;
    }
    pos = ob_strlcpy(buf, "parameters: ", len);
    for (size_t i = 0; i < a->nparams && pos < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", a->params[i].name);
}

static int check_piece(void *ctx, enum piece_kind kind, const char *p, size_t n)
{
    struct check_ctx *c = ctx;
    char list[512];

    if (kind == PIECE_LIT)
        return 0;
    c->nph++;
    if (c->idx == 0) {
        ob_diag_addf(c->d,
                     "%s: action '%s': executor: argv[0]: placeholders are not allowed in the "
                     "program name",
                     c->where, c->a->name);
        c->nerr++;
        return 1; /* one message per element */
    }
    if (!find_param(c->a, p, n)) {
        param_list(c->a, list, sizeof(list));
        ob_diag_addf(c->d, "%s: action '%s': executor: argv[%zu]: unknown placeholder {%.*s} (%s)",
                     c->where, c->a->name, c->idx, (int)n, p, list);
        c->nerr++;
    }
    return 0;
}

static bool valid_env_name(const char *s)
{
    if (!name_start(*s) || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        if (!name_start(*s) && !(*s >= '0' && *s <= '9'))
            return false;
    }
    return true;
}

int ob_exec_check_binding(const struct ob_config *cfg, const struct ob_action *a, struct ob_diag *d)
{
    static const char *const allowed[] = {"type", "argv", "timeout", "cwd", "env", NULL};
    const cJSON *ex, *type, *argv, *it;
    char where[256];
    const char *an;
    int nerr = 0;

    if (!a || !a->executor)
        return 0;
    ex = a->executor;
    an = a->name ? a->name : "?";
    ob_config_where(cfg, ex, where, sizeof(where));
    if (!cJSON_IsObject(ex)) {
        ob_diag_addf(d, "%s: action '%s': executor: must be a mapping", where, an);
        return OB_ECONFIG;
    }
    /* The one dispatch point for the other types (src/executors/net.c). */
    type = cJSON_GetObjectItemCaseSensitive(ex, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "exec")) {
        const struct ob__exec_type *t = ob__exec_type_find(type->valuestring);

        if (t)
            return ob__net_check_binding(cfg, a, ex, t, d);
        ob_diag_addf(d, "%s: action '%s': executor: unknown executor type '%s' (known: %s)",
                     ob_config_where(cfg, type, where, sizeof(where)), an, type->valuestring,
                     ob__exec_type_names());
        return OB_ECONFIG;
    }
    cJSON_ArrayForEach(it, ex)
    {
        bool ok = false;

        for (size_t i = 0; allowed[i]; i++)
            ok = ok || (it->string && !strcmp(it->string, allowed[i]));
        if (!ok) {
            char w[256];

            ob_diag_addf(d,
                         "%s: action '%s': executor: unknown key '%s' (allowed: type, argv, "
                         "timeout, cwd, env)",
                         ob_config_where(cfg, it, w, sizeof(w)), an, it->string ? it->string : "");
            nerr++;
        }
    }

    if (!cJSON_IsString(type)) {
        ob_diag_addf(d, "%s: action '%s': executor: type: missing or not a string (known: %s)",
                     where, an, ob__exec_type_names());
        return OB_ECONFIG;
    }

    argv = cJSON_GetObjectItemCaseSensitive(ex, "argv");
    if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0) {
        ob_diag_addf(d, "%s: action '%s': executor: argv: must be a non-empty list of strings",
                     ob_config_where(cfg, argv ? argv : ex, where, sizeof(where)), an);
        nerr++;
    } else if (cJSON_GetArraySize(argv) > ARGV_MAX) {
        ob_diag_addf(d, "%s: action '%s': executor: argv: too many elements (%d, at most %d)",
                     ob_config_where(cfg, argv, where, sizeof(where)), an, cJSON_GetArraySize(argv),
                     ARGV_MAX);
        nerr++;
    } else {
        size_t idx = 0;

        cJSON_ArrayForEach(it, argv)
        {
            struct check_ctx c = {.a = a, .where = where, .idx = idx, .d = d};
            char why[160];

            ob_config_where(cfg, it, where, sizeof(where));
            if (!cJSON_IsString(it) || !it->valuestring) {
                ob_diag_addf(d, "%s: action '%s': executor: argv[%zu]: must be a string", where, an,
                             idx);
                nerr++;
            } else if (strlen(it->valuestring) > ELEM_MAX) {
                ob_diag_addf(d,
                             "%s: action '%s': executor: argv[%zu]: too long (%zu bytes, at most "
                             "%d)",
                             where, an, idx, strlen(it->valuestring), ELEM_MAX);
                nerr++;
            } else if (tmpl_scan(it->valuestring, check_piece, &c, why, sizeof(why)) == OB_EINVAL) {
                ob_diag_addf(d, "%s: action '%s': executor: argv[%zu]: %s", where, an, idx, why);
                nerr++;
            } else if (idx == 0 && c.nerr == 0) {
                char *prog = NULL;
                int e;

                if (!*it->valuestring) {
                    ob_diag_addf(d, "%s: action '%s': executor: argv[0]: empty program name", where,
                                 an);
                    nerr++;
                } else {
                    e = resolve_program(cfg, it->valuestring, &prog);
                    if (e && strchr(it->valuestring, '/')) {
                        ob_diag_addf(d,
                                     "%s: action '%s': executor: argv[0]: %s not found or not "
                                     "executable (resolved to %s)",
                                     where, an, it->valuestring, prog ? prog : "?");
                        nerr++;
                    } else if (e) {
                        ob_diag_addf(d,
                                     "%s: action '%s': executor: argv[0]: %s not found in PATH "
                                     "(or not executable)",
                                     where, an, it->valuestring);
                        nerr++;
                    }
                    free(prog);
                }
            }
            nerr += c.nerr;
            idx++;
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(ex, "timeout");
    if (it) {
        int64_t ms = -1;

        ob_config_where(cfg, it, where, sizeof(where));
        if (cJSON_IsString(it) && it->valuestring) {
            if (ob_duration_parse(it->valuestring, &ms))
                ms = -1;
        } else if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 86400 &&
                   it->valuedouble == (double)(int64_t)it->valuedouble) {
            ms = (int64_t)it->valuedouble * 1000;
        }
        if (ms <= 0 || ms > 86400000) {
            ob_diag_addf(d,
                         "%s: action '%s': executor: timeout: not a duration between 1ms and 24h "
                         "(e.g. 30s, 5m, 1h)",
                         where, an);
            nerr++;
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(ex, "cwd");
    if (it) {
        ob_config_where(cfg, it, where, sizeof(where));
        if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring) {
            ob_diag_addf(d, "%s: action '%s': executor: cwd: must be a non-empty string", where,
                         an);
            nerr++;
        } else {
            char *dir =
                absolutize(cfg ? ob_config_path(cfg, it->valuestring) : strdup(it->valuestring));
            struct stat st;

            if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                ob_diag_addf(d,
                             "%s: action '%s': executor: cwd: %s is not a directory (resolved "
                             "to %s)",
                             where, an, it->valuestring, dir ? dir : "?");
                nerr++;
            }
            free(dir);
        }
    }

    it = cJSON_GetObjectItemCaseSensitive(ex, "env");
    if (it) {
        const cJSON *kv;

        ob_config_where(cfg, it, where, sizeof(where));
        if (!cJSON_IsObject(it)) {
            ob_diag_addf(d, "%s: action '%s': executor: env: must be a mapping of NAME: value",
                         where, an);
            nerr++;
        } else {
            cJSON_ArrayForEach(kv, it)
            {
                const char *k = kv->string ? kv->string : "";

                ob_config_where(cfg, kv, where, sizeof(where));
                if (!valid_env_name(k)) {
                    ob_diag_addf(d, "%s: action '%s': executor: env: invalid variable name '%s'",
                                 where, an, k);
                    nerr++;
                } else if (!strncmp(k, "OPSBOT_", 7)) {
                    ob_diag_addf(d,
                                 "%s: action '%s': executor: env.%s: the OPSBOT_ prefix is "
                                 "reserved",
                                 where, an, k);
                    nerr++;
                } else if (!cJSON_IsString(kv) && !cJSON_IsNumber(kv) && !cJSON_IsBool(kv)) {
                    ob_diag_addf(d, "%s: action '%s': executor: env.%s: must be a string", where,
                                 an, k);
                    nerr++;
                }
            }
        }
    }
    return nerr ? OB_ECONFIG : 0;
}
