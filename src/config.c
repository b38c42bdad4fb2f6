/* Configuration loader: YAML (libyaml event API) into cJSON trees.
 *
 * Every node created is recorded in a pointer-keyed open-addressing hash
 * table with its document and 1-based line, so that validators can name
 * file:line for anything they reject. Scalars expand ${VAR} and
 * ${VAR:-default} from the environment, then from `.env` next to the main
 * file; plain scalars are then typed by the YAML 1.2 core schema. The main
 * file's `actions.include` / `policies.include` globs load further documents.
 * See docs/CONFIG-LOADER.md.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/json.h"

#define FILE_CAP (1024 * 1024)       /* bytes per YAML or .env file */
#define NODE_CAP 100000              /* nodes in one configuration, aliases included */
#define DEPTH_CAP 64                 /* nested collections */
#define ANCHOR_CAP 1000              /* anchors per document */
#define INCLUDE_CAP 1000             /* documents per section */
#define ENV_CAP 1000                 /* variables in .env */
#define ENVNAME_CAP 128              /* length of a variable name */
#define KEYPATH_CAP 512              /* key path shown in messages */
#define EXACT_INT 9007199254740992.0 /* 2^53: larger integers stay strings */

#define LOC_ENV 1u /* scalar had a ${VAR} substituted: never print its value */

struct loc {
    const cJSON *node;
    uint32_t line;
    uint16_t doc;
    uint16_t flags;
};

struct envvar {
    char *name;
    char *value; /* secret: wiped on free, never logged */
};

enum { SEC_ACTIONS, SEC_POLICIES, SEC_N };
static const char *const sec_names[SEC_N] = {"actions", "policies"};

struct ob_config {
    char *path;
    char *dir;
    cJSON *root;
    char **docpaths; /* document index -> path; [0] is the main file */
    size_t ndocs, capdocs;
    struct ob_config_doc *sec[SEC_N]; /* .path borrowed from docpaths */
    size_t nsec[SEC_N], capsec[SEC_N];
    bool sec_capped[SEC_N];
    struct loc *locs; /* open addressing, caplocs is a power of two */
    size_t nlocs, caplocs;
    struct envvar *env;
    size_t nenv;
    size_t nodes;
    int nerr;
};

__attribute__((format(printf, 3, 4))) static void report(struct ob_config *cfg, struct ob_diag *d,
                                                         const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (cfg)
        cfg->nerr++;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    ob_diag_addf(d, "%s", s ? s : "(error message lost: out of memory)");
    free(s);
}

/* ---- node locations --------------------------------------------------- */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static struct loc *loc_slot(struct loc *locs, size_t cap, const cJSON *node)
{
    size_t i = ptr_hash(node) & (cap - 1);

    while (locs[i].node && locs[i].node != node)
        i = (i + 1) & (cap - 1);
    return &locs[i];
}

static int loc_grow(struct ob_config *cfg)
{
    size_t cap = cfg->caplocs ? cfg->caplocs * 2 : 256;
    struct loc *n = calloc(cap, sizeof(*n));

    if (!n)
        return OB_ENOMEM;
    for (size_t i = 0; i < cfg->caplocs; i++) {
        if (cfg->locs[i].node)
            *loc_slot(n, cap, cfg->locs[i].node) = cfg->locs[i];
    }
    free(cfg->locs);
    cfg->locs = n;
    cfg->caplocs = cap;
    return 0;
}

static int loc_set(struct ob_config *cfg, const cJSON *node, uint16_t doc, size_t line,
                   unsigned flags)
{
    struct loc *l;

    if ((cfg->nlocs + 1) * 4 > cfg->caplocs * 3) {
        int rc = loc_grow(cfg);

        if (rc < 0)
            return rc;
    }
    l = loc_slot(cfg->locs, cfg->caplocs, node);
    if (!l->node)
        cfg->nlocs++;
    l->node = node;
    l->doc = doc;
    l->line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
    l->flags = (uint16_t)flags;
    return 0;
}

static void loc_set_line(struct ob_config *cfg, const cJSON *node, size_t line)
{
    struct loc *l;

    if (!node || !cfg->caplocs)
        return;
    l = loc_slot(cfg->locs, cfg->caplocs, node);
    if (l->node)
        l->line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
}

static const struct loc *loc_get(const struct ob_config *cfg, const cJSON *node)
{
    const struct loc *l;

    if (!cfg || !node || !cfg->caplocs)
        return NULL;
    l = loc_slot(cfg->locs, cfg->caplocs, node);
    return l->node ? l : NULL;
}

/* ---- paths and files -------------------------------------------------- */

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* dir/rel; rel as is when absolute or when dir is "." (shorter messages). */
static char *join_short(const char *dir, const char *rel)
{
    char *s = NULL;
    size_t dl = strlen(dir);

    if (rel[0] == '/' || !strcmp(dir, "."))
        return strdup(rel);
    if (asprintf(&s, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", rel) < 0)
        return NULL;
    return s;
}

static int doc_add(struct ob_config *cfg, const char *path, uint16_t *idx)
{
    char *p;

    if (cfg->ndocs >= UINT16_MAX)
        return OB_E2BIG;
    if (cfg->ndocs == cfg->capdocs) {
        size_t cap = cfg->capdocs ? cfg->capdocs * 2 : 8;
        char **n = realloc(cfg->docpaths, cap * sizeof(*n));

        if (!n)
            return OB_ENOMEM;
        cfg->docpaths = n;
        cfg->capdocs = cap;
    }
    p = strdup(path);
    if (!p)
        return OB_ENOMEM;
    *idx = (uint16_t)cfg->ndocs;
    cfg->docpaths[cfg->ndocs++] = p;
    return 0;
}

/* Reads a whole regular file of at most FILE_CAP bytes. missing_ok: ENOENT
 * is returned quietly. */
static int read_file(struct ob_config *cfg, const char *path, bool missing_ok, char **out,
                     size_t *outlen, struct ob_diag *d)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap;
    int fd, err = 0;

    *out = NULL;
    *outlen = 0;
    /* stat first: never open a device or FIFO a glob happened to match. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        report(cfg, d, "%s: not a regular file", path);
        return OB_ECONFIG;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        err = -errno;
        if (!(missing_ok && (err == -ENOENT || err == -ENOTDIR)))
            report(cfg, d, "%s: cannot open: %s", path, strerror(-err));
        return err;
    }
    if (fstat(fd, &st) < 0) {
        err = -errno;
        report(cfg, d, "%s: cannot stat: %s", path, strerror(-err));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        report(cfg, d, "%s: not a regular file", path);
        err = OB_ECONFIG;
        goto out;
    }
    if (st.st_size > FILE_CAP) {
        report(cfg, d, "%s: file is larger than 1 MiB (%lld bytes)", path, (long long)st.st_size);
        err = OB_E2BIG;
        goto out;
    }
    cap = (size_t)st.st_size + 2; /* one extra byte detects growth, one for NUL */
    buf = malloc(cap);
    if (!buf) {
        report(cfg, d, "%s: out of memory", path);
        err = OB_ENOMEM;
        goto out;
    }
    while (len < cap - 1) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            report(cfg, d, "%s: cannot read: %s", path, strerror(-err));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > (size_t)st.st_size) {
        report(cfg, d, "%s: file changed while being read", path);
        err = OB_ECONFIG;
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return err;
}

/* ---- .env -------------------------------------------------------------- */

static bool is_name_start(int c)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static int env_put(struct ob_config *cfg, const char *name, const char *value)
{
    char *v;

    for (size_t i = 0; i < cfg->nenv; i++) {
        if (!strcmp(cfg->env[i].name, name)) {
            v = strdup(value);
            if (!v)
                return OB_ENOMEM;
            wipe_free(cfg->env[i].value); /* last definition wins */
            cfg->env[i].value = v;
            return 0;
        }
    }
    if (cfg->nenv >= ENV_CAP)
        return OB_E2BIG;
    if (!cfg->env) {
        cfg->env = calloc(ENV_CAP, sizeof(*cfg->env));
        if (!cfg->env)
            return OB_ENOMEM;
    }
    cfg->env[cfg->nenv].name = strdup(name);
    cfg->env[cfg->nenv].value = strdup(value);
    if (!cfg->env[cfg->nenv].name || !cfg->env[cfg->nenv].value) {
        free(cfg->env[cfg->nenv].name);
        wipe_free(cfg->env[cfg->nenv].value);
        cfg->env[cfg->nenv].name = NULL;
        cfg->env[cfg->nenv].value = NULL;
        return OB_ENOMEM;
    }
    cfg->nenv++;
    return 0;
}

static char *skip_ws(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* One .env line, modified in place. Returns 0, OB_EINVAL (malformed) or the
 * env_put error. */
static int dotenv_line(struct ob_config *cfg, char *s)
{
    char *name, *name_end, *val;

    s = skip_ws(s);
    if (!*s || *s == '#')
        return 0;
    if (!strncmp(s, "export", 6) && (s[6] == ' ' || s[6] == '\t'))
        s = skip_ws(s + 6);
    if (!is_name_start((unsigned char)*s))
        return OB_EINVAL;
    name = s;
    while (is_name_char((unsigned char)*s))
        s++;
    name_end = s;
    if (name_end - name > ENVNAME_CAP)
        return OB_EINVAL;
    s = skip_ws(s);
    if (*s != '=')
        return OB_EINVAL;
    *name_end = '\0';
    s = skip_ws(s + 1);
    if (*s == '"' || *s == '\'') {
        char q = *s++;
        char *w = s;

        val = s;
        for (;;) {
            if (!*s)
                return OB_EINVAL; /* unterminated quote */
            if (*s == q)
                break;
            if (q == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\' || s[1] == 'n')) {
                *w++ = s[1] == 'n' ? '\n' : s[1];
                s += 2;
                continue;
            }
            *w++ = *s++;
        }
        s++;
        *w = '\0';
        s = skip_ws(s);
        if (*s && *s != '#')
            return OB_EINVAL;
    } else {
        size_t n;

        val = s;
        for (char *c = s; *c; c++) {
            if (*c == '#' && c > s && (c[-1] == ' ' || c[-1] == '\t')) {
                *c = '\0';
                break;
            }
        }
        n = strlen(val);
        while (n && (val[n - 1] == ' ' || val[n - 1] == '\t'))
            val[--n] = '\0';
    }
    return env_put(cfg, name, val);
}

static void dotenv_load(struct ob_config *cfg, struct ob_diag *d)
{
    char *path = join_short(cfg->dir, ".env");
    char *buf = NULL, *line;
    size_t len = 0, lineno = 0;

    if (!path) {
        report(cfg, d, ".env: out of memory");
        return;
    }
    if (read_file(cfg, path, true, &buf, &len, d) < 0)
        goto out;
    if (memchr(buf, '\0', len)) {
        report(cfg, d, "%s: contains a NUL byte", path);
        goto out;
    }
    line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        size_t ll;
        int rc;

        if (nl)
            *nl = '\0';
        lineno++;
        ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[ll - 1] = '\0';
        rc = dotenv_line(cfg, line);
        if (rc == OB_EINVAL)
            report(cfg, d, "%s:%zu: malformed line (expected KEY=VALUE)", path, lineno);
        else if (rc == OB_E2BIG)
            report(cfg, d, "%s:%zu: more than %d variables", path, lineno, ENV_CAP);
        else if (rc < 0)
            report(cfg, d, "%s:%zu: out of memory", path, lineno);
        if (rc == OB_E2BIG || rc == OB_ENOMEM)
            break;
        line = nl ? nl + 1 : NULL;
    }
out:
    if (buf) {
        explicit_bzero(buf, len);
        free(buf);
    }
    free(path);
}

static const char *env_lookup(const struct ob_config *cfg, const char *name)
{
    const char *v = getenv(name);

    if (v)
        return v;
    for (size_t i = 0; i < cfg->nenv; i++) {
        if (!strcmp(cfg->env[i].name, name))
            return cfg->env[i].value;
    }
    return NULL;
}

/* ---- YAML parsing ------------------------------------------------------ */

struct anchor {
    char *name;
    cJSON *node; /* borrowed from the tree being built */
};

struct pctx {
    struct ob_config *cfg;
    struct ob_diag *d;
    yaml_parser_t parser;
    const char *path;
    uint16_t doc;
    const char *buf;
    size_t len;
    struct anchor *anchors;
    size_t nanchors;
    cJSON *trash; /* nodes dropped after an error (anchors may still point in) */
    char key[KEYPATH_CAP];
    size_t keylen;
    bool fatal;
};

static size_t key_push(struct pctx *p, const char *name, size_t index, bool is_index)
{
    size_t old = p->keylen;
    int n;

    if (is_index)
        n = snprintf(p->key + old, sizeof(p->key) - old, "[%zu]", index);
    else
        n = snprintf(p->key + old, sizeof(p->key) - old, "%s%s", old ? "." : "", name);
    if (n < 0)
        n = 0;
    p->keylen = old + (size_t)n < sizeof(p->key) ? old + (size_t)n : sizeof(p->key) - 1;
    return old;
}

static void key_pop(struct pctx *p, size_t old)
{
    p->keylen = old;
    p->key[old] = '\0';
}

static const char *key_name(const struct pctx *p)
{
    return p->keylen ? p->key : "(top level)";
}

static void yaml_fail(struct pctx *p)
{
    size_t line = p->parser.problem_mark.line + 1, col = p->parser.problem_mark.column + 1;
    const char *problem = p->parser.problem ? p->parser.problem : "unknown error";

    p->fatal = true;
    if (p->parser.error == YAML_MEMORY_ERROR) {
        report(p->cfg, p->d, "%s: out of memory while parsing", p->path);
        return;
    }
    if (p->parser.error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        size_t off = p->parser.problem_offset < p->len ? p->parser.problem_offset : p->len;

        line = 1;
        col = 1;
        for (size_t i = 0; i < off; i++) {
            if (p->buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    report(p->cfg, p->d, "%s:%zu:%zu: YAML error: %s", p->path, line, col, problem);
}

static int next_event(struct pctx *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev)) {
        memset(ev, 0, sizeof(*ev));
        yaml_fail(p);
        return OB_EYAML;
    }
    return 0;
}

/* Counts and records a newly created node; deletes it on failure. */
static int node_new(struct pctx *p, cJSON *node, size_t line, unsigned flags, cJSON **out)
{
    *out = NULL;
    if (!node) {
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
        p->fatal = true;
        return OB_ENOMEM;
    }
    if (p->cfg->nodes >= NODE_CAP) {
        report(p->cfg, p->d, "%s:%zu: %s: configuration exceeds the limit of %d nodes", p->path,
               line, key_name(p), NODE_CAP);
        cJSON_Delete(node);
        p->fatal = true;
        return OB_E2BIG;
    }
    if (loc_set(p->cfg, node, p->doc, line, flags) < 0) {
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
        cJSON_Delete(node);
        p->fatal = true;
        return OB_ENOMEM;
    }
    p->cfg->nodes++;
    *out = node;
    return 0;
}

static void trash(struct pctx *p, cJSON *node)
{
    if (!node)
        return;
    if (!p->trash)
        p->trash = cJSON_CreateArray();
    if (p->trash)
        cJSON_AddItemToArray(p->trash, node);
    else
        cJSON_Delete(node); /* OOM: the load fails anyway */
}

static bool match_float(const char *s)
{
    bool digits = false;

    if (*s == '+' || *s == '-')
        s++;
    while (isdigit((unsigned char)*s)) {
        s++;
        digits = true;
    }
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s)) {
            s++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* Non-empty and every character in set. */
static bool all_of(const char *s, const char *set)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!strchr(set, *s))
            return false;
    }
    return true;
}

/* YAML 1.2 core schema for plain scalars. Integers beyond 2^53 would lose
 * precision as cJSON doubles, so they stay strings (chat platform ids). */
static cJSON *type_plain(const char *s)
{
    const char *u = (*s == '+' || *s == '-') ? s + 1 : s;

    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return cJSON_CreateNull();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return cJSON_CreateTrue();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return cJSON_CreateFalse();
    if (all_of(u, "0123456789")) {
        double v = strtod(s, NULL);

        return fabs(v) > EXACT_INT ? cJSON_CreateString(s) : cJSON_CreateNumber(v);
    }
    if ((!strncmp(s, "0x", 2) && all_of(s + 2, "0123456789abcdefABCDEF")) ||
        (!strncmp(s, "0o", 2) && all_of(s + 2, "01234567"))) {
        unsigned long long v;

        errno = 0;
        v = strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
        if (errno || (double)v > EXACT_INT)
            return cJSON_CreateString(s);
        return cJSON_CreateNumber((double)v);
    }
    if (match_float(s))
        return cJSON_CreateNumber(strtod(s, NULL));
    if (!strcmp(u, ".inf") || !strcmp(u, ".Inf") || !strcmp(u, ".INF"))
        return cJSON_CreateNumber(*s == '-' ? -INFINITY : INFINITY);
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
        return cJSON_CreateNumber(NAN);
    return cJSON_CreateString(s);
}

struct sbuf {
    char *s;
    size_t len, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > FILE_CAP)
        return OB_E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *ns;

        while (cap < b->len + n + 1)
            cap *= 2;
        ns = malloc(cap);
        if (!ns)
            return OB_ENOMEM;
        if (b->s) {
            memcpy(ns, b->s, b->len);
            explicit_bzero(b->s, b->cap);
            free(b->s);
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

/* ${VAR}, ${VAR:-default} (default also when VAR is empty), $$ -> $. *out
 * is NULL when there was nothing to expand. Errors are reported here. */
static int expand(struct pctx *p, const char *v, size_t len, size_t line, char **out,
                  bool *expanded)
{
    struct sbuf b = {0};
    size_t i = 0;
    int rc = 0, err = 0;

    *out = NULL;
    *expanded = false;
    if (!memchr(v, '$', len))
        return 0;
    while (i < len && !rc) {
        const char *close, *val;
        size_t start, nlen, vlen;
        char name[ENVNAME_CAP + 1];

        if (v[i] != '$' || i + 1 >= len || (v[i + 1] != '$' && v[i + 1] != '{')) {
            rc = sbuf_add(&b, v + i, 1);
            i++;
            continue;
        }
        if (v[i + 1] == '$') {
            rc = sbuf_add(&b, "$", 1);
            i += 2;
            continue;
        }
        start = i + 2;
        close = memchr(v + start, '}', len - start);
        if (!close) {
            report(p->cfg, p->d, "%s:%zu: %s: unterminated ${ in value", p->path, line,
                   key_name(p));
            err = OB_ECONFIG;
            break;
        }
        nlen = 0;
        while (start + nlen < len && is_name_char((unsigned char)v[start + nlen]))
            nlen++;
        if (!nlen || nlen > ENVNAME_CAP || !is_name_start((unsigned char)v[start]) ||
            (v + start + nlen != close &&
             (v[start + nlen] != ':' || start + nlen + 1 >= len || v[start + nlen + 1] != '-'))) {
            report(p->cfg, p->d,
                   "%s:%zu: %s: invalid environment reference (use ${NAME} or ${NAME:-default})",
                   p->path, line, key_name(p));
            err = OB_ECONFIG;
            i = (size_t)(close - v) + 1;
            continue;
        }
        memcpy(name, v + start, nlen);
        name[nlen] = '\0';
        val = env_lookup(p->cfg, name);
        vlen = val ? strlen(val) : 0;
        if (v + start + nlen != close && !vlen) {
            val = v + start + nlen + 2;
            vlen = (size_t)(close - val);
        } else if (!val) {
            report(p->cfg, p->d, "%s:%zu: %s: environment variable %s is not set", p->path, line,
                   key_name(p), name);
            err = OB_ECONFIG;
            i = (size_t)(close - v) + 1;
            continue;
        }
        rc = sbuf_add(&b, val, vlen);
        *expanded = true;
        i = (size_t)(close - v) + 1;
    }
    if (rc == OB_E2BIG)
        report(p->cfg, p->d, "%s:%zu: %s: value is longer than 1 MiB after expansion", p->path,
               line, key_name(p));
    else if (rc < 0)
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
    if (rc || err) {
        if (b.s)
            explicit_bzero(b.s, b.cap);
        free(b.s);
        return rc ? rc : err;
    }
    if (!b.s)
        b.s = strdup("");
    if (!b.s) {
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
        return OB_ENOMEM;
    }
    *out = b.s;
    return 0;
}

static int parse_scalar(struct pctx *p, yaml_event_t *ev, cJSON **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    size_t len = ev->data.scalar.length, line = ev->start_mark.line + 1;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, expanded = false;
    char *exp = NULL;
    cJSON *node;
    int rc;

    if (memchr(v, '\0', len))
        report(p->cfg, p->d, "%s:%zu: %s: value contains a NUL byte", p->path, line, key_name(p));
    if (tag && strcmp(tag, YAML_STR_TAG) && strcmp(tag, "!"))
        report(p->cfg, p->d, "%s:%zu: %s: unsupported YAML tag %s", p->path, line, key_name(p),
               tag);
    else if (tag)
        plain = false;
    rc = expand(p, v, len, line, &exp, &expanded);
    if (rc == OB_ENOMEM) {
        p->fatal = true;
        return rc;
    }
    node = plain ? type_plain(exp ? exp : v) : cJSON_CreateString(exp ? exp : v);
    wipe_free(exp);
    return node_new(p, node, line, expanded ? LOC_ENV : 0, out);
}

static void tree_size(const cJSON *n, size_t *count, int *depth)
{
    const cJSON *c;
    int sub = 0;

    (*count)++;
    if (!cJSON_IsArray(n) && !cJSON_IsObject(n)) {
        *depth = 0;
        return;
    }
    cJSON_ArrayForEach(c, n)
    {
        int cd = 0;

        tree_size(c, count, &cd);
        if (cd > sub)
            sub = cd;
    }
    *depth = sub + 1;
}

static int copy_locs(struct ob_config *cfg, const cJSON *orig, const cJSON *copy)
{
    const struct loc *l = loc_get(cfg, orig);
    const cJSON *a = orig ? orig->child : NULL, *b = copy ? copy->child : NULL;

    if (l && loc_set(cfg, copy, l->doc, l->line, l->flags) < 0)
        return OB_ENOMEM;
    for (; a && b; a = a->next, b = b->next) {
        if (copy_locs(cfg, a, b) < 0)
            return OB_ENOMEM;
    }
    return 0;
}

static int parse_alias(struct pctx *p, yaml_event_t *ev, int depth, cJSON **out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    size_t line = ev->start_mark.line + 1, count = 0;
    const struct loc *l;
    cJSON *target = NULL, *copy;
    int sub = 0;

    *out = NULL;
    for (size_t i = p->nanchors; i-- > 0;) {
        if (!strcmp(p->anchors[i].name, name)) {
            target = p->anchors[i].node;
            break;
        }
    }
    if (!target) {
        report(p->cfg, p->d, "%s:%zu: %s: unknown alias *%s", p->path, line, key_name(p), name);
        return node_new(p, cJSON_CreateNull(), line, 0, out);
    }
    tree_size(target, &count, &sub);
    if (count > NODE_CAP - p->cfg->nodes) {
        report(p->cfg, p->d, "%s:%zu: %s: alias *%s exceeds the limit of %d nodes", p->path, line,
               key_name(p), name, NODE_CAP);
        p->fatal = true;
        return OB_E2BIG;
    }
    if (depth + sub > DEPTH_CAP) {
        report(p->cfg, p->d, "%s:%zu: %s: alias *%s nests deeper than %d levels", p->path, line,
               key_name(p), name, DEPTH_CAP);
        p->fatal = true;
        return OB_E2BIG;
    }
    copy = cJSON_Duplicate(target, 1);
    if (!copy || copy_locs(p->cfg, target, copy) < 0) {
        cJSON_Delete(copy);
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
        p->fatal = true;
        return OB_ENOMEM;
    }
    if (copy->string && !(copy->type & cJSON_StringIsConst))
        free(copy->string);
    copy->string = NULL;
    l = loc_get(p->cfg, copy);
    if (loc_set(p->cfg, copy, p->doc, line, l ? l->flags : 0) < 0) {
        cJSON_Delete(copy);
        report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
        p->fatal = true;
        return OB_ENOMEM;
    }
    p->cfg->nodes += count;
    *out = copy;
    return 0;
}

static int parse_node(struct pctx *p, yaml_event_t *ev, int depth, cJSON **out);

static int parse_seq(struct pctx *p, size_t line, int depth, cJSON **out)
{
    cJSON *arr = NULL;
    int rc;

    rc = node_new(p, cJSON_CreateArray(), line, 0, &arr);
    if (rc)
        return rc;
    for (size_t i = 0;; i++) {
        yaml_event_t ev;
        cJSON *child = NULL;
        size_t old;

        rc = next_event(p, &ev);
        if (rc)
            goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        old = key_push(p, NULL, i, true);
        rc = parse_node(p, &ev, depth + 1, &child);
        key_pop(p, old);
        if (rc)
            goto fail;
        cJSON_AddItemToArray(arr, child);
    }
    *out = arr;
    return 0;
fail:
    cJSON_Delete(arr);
    return rc;
}

struct member {
    cJSON *item;
    size_t idx;
    bool dup;
};

static int member_by_key(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int member_by_idx(const void *a, const void *b)
{
    const struct member *x = a, *y = b;

    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Reports and drops later occurrences of a key, in O(n log n). */
static int dedupe(struct pctx *p, cJSON *obj)
{
    struct member *m;
    size_t n = 0, i = 0, first = 0;
    cJSON *c;

    cJSON_ArrayForEach(c, obj) n++;
    if (n < 2)
        return 0;
    m = calloc(n, sizeof(*m));
    if (!m) {
        report(p->cfg, p->d, "%s: out of memory", p->path);
        p->fatal = true;
        return OB_ENOMEM;
    }
    cJSON_ArrayForEach(c, obj)
    {
        m[i].item = c;
        m[i].idx = i;
        i++;
    }
    qsort(m, n, sizeof(*m), member_by_key);
    for (i = 1; i < n; i++) {
        if (!strcmp(m[i].item->string, m[first].item->string))
            m[i].dup = true;
        else
            first = i;
    }
    qsort(m, n, sizeof(*m), member_by_idx);
    for (i = 0; i < n; i++) {
        const struct loc *l;

        if (!m[i].dup)
            continue;
        l = loc_get(p->cfg, m[i].item);
        report(p->cfg, p->d, "%s:%u: %s%s%s: duplicate key", p->path, l ? l->line : 0,
               p->keylen ? p->key : "", p->keylen ? "." : "", m[i].item->string);
        trash(p, cJSON_DetachItemViaPointer(obj, m[i].item));
    }
    free(m);
    return 0;
}

static const char *event_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SEQUENCE_START_EVENT:
        return "list";
    case YAML_MAPPING_START_EVENT:
        return "mapping";
    case YAML_ALIAS_EVENT:
        return "alias";
    default:
        return "non-scalar";
    }
}

static int parse_map(struct pctx *p, size_t line, int depth, cJSON **out)
{
    cJSON *obj = NULL;
    int rc;

    rc = node_new(p, cJSON_CreateObject(), line, 0, &obj);
    if (rc)
        return rc;
    for (;;) {
        yaml_event_t kev, vev;
        cJSON *val = NULL;
        char *key;
        size_t kline, old;

        rc = next_event(p, &kev);
        if (rc)
            goto fail;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        kline = kev.start_mark.line + 1;
        if (kev.type != YAML_SCALAR_EVENT) {
            cJSON *junk = NULL;

            report(p->cfg, p->d, "%s:%zu: %s: mapping keys must be scalars, not a %s", p->path,
                   kline, key_name(p), event_kind(kev.type));
            rc = parse_node(p, &kev, depth + 1, &junk);
            trash(p, junk);
            if (!rc)
                rc = next_event(p, &vev);
            if (!rc) {
                junk = NULL;
                rc = parse_node(p, &vev, depth + 1, &junk);
                trash(p, junk);
            }
            if (rc)
                goto fail;
            continue;
        }
        if (memchr(kev.data.scalar.value, '\0', kev.data.scalar.length))
            report(p->cfg, p->d, "%s:%zu: %s: key contains a NUL byte", p->path, kline,
                   key_name(p));
        key = strdup((const char *)kev.data.scalar.value);
        yaml_event_delete(&kev);
        if (!key) {
            report(p->cfg, p->d, "%s:%zu: out of memory", p->path, kline);
            p->fatal = true;
            rc = OB_ENOMEM;
            goto fail;
        }
        old = key_push(p, key, 0, false);
        rc = next_event(p, &vev);
        if (!rc)
            rc = parse_node(p, &vev, depth + 1, &val);
        key_pop(p, old);
        if (rc) {
            free(key);
            goto fail;
        }
        /* A member's location is the line of its key. */
        loc_set_line(p->cfg, val, kline);
        if (!cJSON_AddItemToObject(obj, key, val)) {
            cJSON_Delete(val);
            free(key);
            report(p->cfg, p->d, "%s:%zu: out of memory", p->path, kline);
            p->fatal = true;
            rc = OB_ENOMEM;
            goto fail;
        }
        free(key);
    }
    rc = dedupe(p, obj);
    if (rc)
        goto fail;
    *out = obj;
    return 0;
fail:
    cJSON_Delete(obj);
    return rc;
}

static bool tag_ok(const yaml_char_t *tag, const char *want)
{
    return !tag || !strcmp((const char *)tag, want) || !strcmp((const char *)tag, "!");
}

/* Consumes ev (always deleted). Non-zero only on fatal errors. */
static int parse_node(struct pctx *p, yaml_event_t *ev, int depth, cJSON **out)
{
    char *anchor = NULL;
    const yaml_char_t *a = NULL;
    size_t line = ev->start_mark.line + 1;
    int rc;

    *out = NULL;
    if (ev->type == YAML_SCALAR_EVENT)
        a = ev->data.scalar.anchor;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        a = ev->data.sequence_start.anchor;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        a = ev->data.mapping_start.anchor;
    if (a) {
        anchor = strdup((const char *)a);
        if (!anchor) {
            yaml_event_delete(ev);
            report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
            p->fatal = true;
            return OB_ENOMEM;
        }
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        rc = parse_scalar(p, ev, out);
        yaml_event_delete(ev);
        break;
    case YAML_ALIAS_EVENT:
        rc = parse_alias(p, ev, depth, out);
        yaml_event_delete(ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const yaml_char_t *tag = seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;

        if (!tag_ok(tag, seq ? YAML_SEQ_TAG : YAML_MAP_TAG))
            report(p->cfg, p->d, "%s:%zu: %s: unsupported YAML tag %s", p->path, line, key_name(p),
                   (const char *)tag);
        yaml_event_delete(ev);
        if (depth >= DEPTH_CAP) {
            report(p->cfg, p->d, "%s:%zu: %s: nesting deeper than %d levels", p->path, line,
                   key_name(p), DEPTH_CAP);
            p->fatal = true;
            rc = OB_E2BIG;
            break;
        }
        rc = seq ? parse_seq(p, line, depth, out) : parse_map(p, line, depth, out);
        break;
    }
    default:
        yaml_event_delete(ev);
        report(p->cfg, p->d, "%s:%zu: unexpected YAML event", p->path, line);
        p->fatal = true;
        rc = OB_EYAML;
        break;
    }
    if (!rc && anchor) {
        if (p->nanchors >= ANCHOR_CAP) {
            report(p->cfg, p->d, "%s:%zu: more than %d anchors", p->path, line, ANCHOR_CAP);
            p->fatal = true;
            rc = OB_E2BIG;
        } else {
            if (!p->anchors)
                p->anchors = calloc(ANCHOR_CAP, sizeof(*p->anchors));
            if (!p->anchors) {
                report(p->cfg, p->d, "%s:%zu: out of memory", p->path, line);
                p->fatal = true;
                rc = OB_ENOMEM;
            } else {
                p->anchors[p->nanchors].name = anchor;
                p->anchors[p->nanchors++].node = *out;
                anchor = NULL;
            }
        }
        if (rc) {
            cJSON_Delete(*out);
            *out = NULL;
        }
    }
    free(anchor);
    return rc;
}

/* Parses one document. *out is NULL after a fatal error; non-fatal errors
 * are only counted in cfg->nerr. */
static int parse_doc(struct ob_config *cfg, uint16_t doc, const char *buf, size_t len, cJSON **out,
                     struct ob_diag *d)
{
    struct pctx p;
    yaml_event_t ev;
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    p.d = d;
    p.path = cfg->docpaths[doc];
    p.doc = doc;
    p.buf = buf;
    p.len = len;
    if (!yaml_parser_initialize(&p.parser)) {
        report(cfg, d, "%s: out of memory", p.path);
        return OB_ENOMEM;
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)buf, len);
    rc = next_event(&p, &ev); /* stream start */
    if (rc)
        goto out;
    yaml_event_delete(&ev);
    rc = next_event(&p, &ev);
    if (rc)
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty file: null document */
        yaml_event_delete(&ev);
        rc = node_new(&p, cJSON_CreateNull(), 1, 0, &root);
        goto out;
    }
    yaml_event_delete(&ev);
    rc = next_event(&p, &ev);
    if (!rc)
        rc = parse_node(&p, &ev, 0, &root);
    if (!rc)
        rc = next_event(&p, &ev); /* document end */
    if (rc)
        goto out;
    yaml_event_delete(&ev);
    rc = next_event(&p, &ev);
    if (rc)
        goto out;
    if (ev.type != YAML_STREAM_END_EVENT) {
        report(cfg, d, "%s:%zu: only one YAML document per file is supported", p.path,
               ev.start_mark.line + 1);
        rc = OB_ECONFIG;
    }
    yaml_event_delete(&ev);
out:
    yaml_parser_delete(&p.parser);
    for (size_t i = 0; i < p.nanchors; i++)
        free(p.anchors[i].name);
    free(p.anchors);
    cJSON_Delete(p.trash);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ---- includes ---------------------------------------------------------- */

static void describe(const struct ob_config *cfg, const cJSON *n, char *buf, size_t len);

static void add_include(struct ob_config *cfg, int s, const char *path, const char *where,
                        const char *key, struct ob_diag *d)
{
    struct ob_config_doc *docs;
    char *buf = NULL;
    size_t blen = 0;
    cJSON *root = NULL;
    uint16_t idx;

    if (cfg->nsec[s] >= INCLUDE_CAP) {
        if (!cfg->sec_capped[s])
            report(cfg, d, "%s: %s: more than %d files included under %s", where, key, INCLUDE_CAP,
                   sec_names[s]);
        cfg->sec_capped[s] = true;
        return;
    }
    for (size_t i = 0; i < cfg->nsec[s]; i++) {
        if (!strcmp(cfg->sec[s][i].path, path)) {
            report(cfg, d, "%s: %s: %s is included twice", where, key, path);
            return;
        }
    }
    if (doc_add(cfg, path, &idx) < 0) {
        report(cfg, d, "%s: out of memory", path);
        return;
    }
    if (read_file(cfg, cfg->docpaths[idx], false, &buf, &blen, d) < 0)
        return;
    parse_doc(cfg, idx, buf, blen, &root, d);
    free(buf);
    if (!root)
        return;
    if (cfg->nsec[s] == cfg->capsec[s]) {
        size_t cap = cfg->capsec[s] ? cfg->capsec[s] * 2 : 8;

        docs = realloc(cfg->sec[s], cap * sizeof(*docs));
        if (!docs) {
            cJSON_Delete(root);
            report(cfg, d, "%s: out of memory", path);
            return;
        }
        cfg->sec[s] = docs;
        cfg->capsec[s] = cap;
    }
    cfg->sec[s][cfg->nsec[s]].path = cfg->docpaths[idx];
    cfg->sec[s][cfg->nsec[s]].root = root;
    cfg->nsec[s]++;
}

static _Thread_local int glob_errno;

/* Missing directories just match nothing; anything else aborts the glob. */
static int glob_err(const char *path, int err)
{
    (void)path;
    if (err == ENOENT || err == ENOTDIR)
        return 0;
    glob_errno = err;
    return 1;
}

static void load_glob(struct ob_config *cfg, int s, const cJSON *node, const char *key,
                      struct ob_diag *d)
{
    const char *pat = node->valuestring, *shown = pat;
    const struct loc *l;
    char where[1024];
    char *full;
    glob_t g;
    int rc;

    ob_config_where(cfg, node, where, sizeof(where));
    l = loc_get(cfg, node);
    if (l && (l->flags & LOC_ENV))
        shown = "(from the environment)"; /* expanded values are never printed */
    if (!*pat) {
        report(cfg, d, "%s: %s: empty glob", where, key);
        return;
    }
    full = join_short(cfg->dir, pat);
    if (!full) {
        report(cfg, d, "%s: out of memory", where);
        return;
    }
    memset(&g, 0, sizeof(g));
    glob_errno = 0;
    rc = glob(full, 0, glob_err, &g);
    if (rc == GLOB_NOMATCH)
        report(cfg, d, "%s: %s: glob '%s' matches no files", where, key, shown);
    else if (rc == GLOB_ABORTED)
        report(cfg, d, "%s: %s: glob '%s': cannot read a directory: %s", where, key, shown,
               strerror(glob_errno ? glob_errno : EIO));
    else if (rc != 0)
        report(cfg, d, "%s: %s: glob '%s' failed (out of memory)", where, key, shown);
    else
        for (size_t i = 0; i < g.gl_pathc; i++)
            add_include(cfg, s, g.gl_pathv[i], where, key, d);
    globfree(&g);
    free(full);
}

static void load_section(struct ob_config *cfg, int s, struct ob_diag *d)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg->root, sec_names[s]);
    const cJSON *inc =
        cJSON_IsObject(sec) ? cJSON_GetObjectItemCaseSensitive(sec, "include") : NULL;
    char key[64], where[1024], got[128];
    const cJSON *el;
    size_t i = 0;

    if (!inc)
        return;
    snprintf(key, sizeof(key), "%s.include", sec_names[s]);
    if (cJSON_IsString(inc)) {
        load_glob(cfg, s, inc, key, d);
        return;
    }
    if (!cJSON_IsArray(inc)) {
        describe(cfg, inc, got, sizeof(got));
        report(cfg, d, "%s: %s: expected a glob or a list of globs, got %s",
               ob_config_where(cfg, inc, where, sizeof(where)), key, got);
        return;
    }
    cJSON_ArrayForEach(el, inc)
    {
        snprintf(key, sizeof(key), "%s.include[%zu]", sec_names[s], i++);
        if (cJSON_IsString(el)) {
            load_glob(cfg, s, el, key, d);
            continue;
        }
        describe(cfg, el, got, sizeof(got));
        report(cfg, d, "%s: %s: expected a glob, got %s",
               ob_config_where(cfg, el, where, sizeof(where)), key, got);
    }
}

/* ---- public API -------------------------------------------------------- */

static void wipe_env_values(const struct ob_config *cfg, cJSON *n)
{
    const struct loc *l = loc_get(cfg, n);
    cJSON *c;

    if (!n)
        return;
    if (l && (l->flags & LOC_ENV) && cJSON_IsString(n) && n->valuestring)
        explicit_bzero(n->valuestring, strlen(n->valuestring));
    cJSON_ArrayForEach(c, n) wipe_env_values(cfg, c);
}

void ob_config_free(struct ob_config *cfg)
{
    if (!cfg)
        return;
    wipe_env_values(cfg, cfg->root);
    cJSON_Delete(cfg->root);
    for (int s = 0; s < SEC_N; s++) {
        for (size_t i = 0; i < cfg->nsec[s]; i++) {
            wipe_env_values(cfg, cfg->sec[s][i].root);
            cJSON_Delete(cfg->sec[s][i].root);
        }
        free(cfg->sec[s]);
    }
    for (size_t i = 0; i < cfg->ndocs; i++)
        free(cfg->docpaths[i]);
    free(cfg->docpaths);
    free(cfg->locs);
    for (size_t i = 0; i < cfg->nenv; i++) {
        free(cfg->env[i].name);
        wipe_free(cfg->env[i].value);
    }
    free(cfg->env);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

static int load(struct ob_config **out, const char *text, size_t len, const char *path,
                struct ob_diag *d)
{
    struct ob_config *cfg;
    char *buf = NULL;
    cJSON *root = NULL;
    uint16_t idx;

    *out = NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        ob_diag_addf(d, "%s: out of memory", path);
        return OB_ECONFIG;
    }
    cfg->path = strdup(path);
    cfg->dir = dir_of(path);
    if (!cfg->path || !cfg->dir || doc_add(cfg, path, &idx) < 0) {
        report(cfg, d, "%s: out of memory", path);
        goto fail;
    }
    dotenv_load(cfg, d);
    if (!text) {
        if (read_file(cfg, path, false, &buf, &len, d) < 0)
            goto fail;
        text = buf;
    } else if (len > FILE_CAP) {
        report(cfg, d, "%s: input is larger than 1 MiB (%zu bytes)", path, len);
        goto fail;
    }
    parse_doc(cfg, 0, text, len, &root, d);
    free(buf);
    if (!root)
        goto fail;
    cfg->root = root;
    if (!cJSON_IsObject(root)) {
        char where[1024];

        report(cfg, d, "%s: top level must be a mapping",
               ob_config_where(cfg, root, where, sizeof(where)));
        goto fail;
    }
    for (int s = 0; s < SEC_N; s++)
        load_section(cfg, s, d);
    if (cfg->nerr)
        goto fail;
    *out = cfg;
    return 0;
fail:
    ob_config_free(cfg);
    return OB_ECONFIG;
}

int ob_config_load(struct ob_config **out, const char *path, struct ob_diag *d)
{
    if (!path) {
        *out = NULL;
        ob_diag_addf(d, "no configuration file given");
        return OB_ECONFIG;
    }
    return load(out, NULL, 0, path, d);
}

int ob_config_load_string(struct ob_config **out, const char *yaml, const char *path,
                          struct ob_diag *d)
{
    if (!yaml)
        yaml = "";
    return load(out, yaml, strlen(yaml), path ? path : "<string>", d);
}

const cJSON *ob_config_root(const struct ob_config *cfg)
{
    return cfg ? cfg->root : NULL;
}

const char *ob_config_dir(const struct ob_config *cfg)
{
    return cfg ? cfg->dir : ".";
}

const struct ob_config_doc *ob_config_includes(const struct ob_config *cfg, const char *section,
                                               size_t *n)
{
    size_t dummy;

    if (!n)
        n = &dummy;
    *n = 0;
    if (!cfg || !section)
        return NULL;
    for (int s = 0; s < SEC_N; s++) {
        if (!strcmp(section, sec_names[s])) {
            *n = cfg->nsec[s];
            return cfg->sec[s];
        }
    }
    return NULL;
}

const char *ob_config_where(const struct ob_config *cfg, const cJSON *node, char *buf, size_t len)
{
    const struct loc *l = loc_get(cfg, node);

    if (!buf || !len)
        return buf;
    if (l)
        snprintf(buf, len, "%s:%u", cfg->docpaths[l->doc], l->line);
    else
        snprintf(buf, len, "<input>");
    return buf;
}

char *ob_config_path(const struct ob_config *cfg, const char *rel)
{
    const char *dir = ob_config_dir(cfg);
    size_t dl = strlen(dir);
    char *s = NULL;

    if (!rel)
        return NULL;
    if (rel[0] == '/' || !cfg)
        return strdup(rel);
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (*rel == '/')
            rel++;
    }
    if (!*rel || !strcmp(rel, "."))
        return strdup(dir);
    /* Always keeps a '/' so that callers never fall into a PATH lookup. */
    if (asprintf(&s, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", rel) < 0)
        return NULL;
    return s;
}

/* ---- typed access ------------------------------------------------------ */

/* "\"soon\"", "5", "true", "null", "a list", "a mapping"; values that came
 * from the environment are not shown (they may be secrets). */
static void describe(const struct ob_config *cfg, const cJSON *n, char *buf, size_t len)
{
    const struct loc *l = loc_get(cfg, n);

    if (!n) {
        snprintf(buf, len, "nothing");
    } else if (l && (l->flags & LOC_ENV)) {
        snprintf(buf, len, "a value from the environment (not shown)");
    } else if (cJSON_IsString(n)) {
        char tmp[64];
        size_t k = 0;
        const char *s = n->valuestring;

        while (s[k] && k < 40)
            k++;
        while (k && s[k] && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--; /* do not cut a UTF-8 sequence */
        memcpy(tmp, s, k);
        tmp[k] = '\0';
        for (size_t i = 0; i < k; i++) {
            if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
                tmp[i] = '?';
        }
        snprintf(buf, len, "\"%s%s\"", tmp, s[k] ? "..." : "");
    } else if (cJSON_IsNumber(n)) {
        ob_json_num_text(n->valuedouble, buf, len);
    } else if (cJSON_IsBool(n)) {
        snprintf(buf, len, "%s", cJSON_IsTrue(n) ? "true" : "false");
    } else if (cJSON_IsNull(n)) {
        snprintf(buf, len, "null");
    } else if (cJSON_IsArray(n)) {
        snprintf(buf, len, "a list");
    } else if (cJSON_IsObject(n)) {
        snprintf(buf, len, "a mapping");
    } else {
        snprintf(buf, len, "an unknown value");
    }
}

__attribute__((format(printf, 5, 6))) static void cfg_err(const struct ob_config *cfg,
                                                          const cJSON *node, struct ob_diag *d,
                                                          const char *key, const char *fmt, ...)
{
    char where[1024];
    char *msg = NULL;
    va_list ap;

    ob_config_where(cfg, node, where, sizeof(where));
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    ob_diag_addf(d, "%s: %s: %s", where, key, msg ? msg : "(message lost: out of memory)");
    free(msg);
}

/* The member, or NULL when absent (or null and optional). */
static const cJSON *member(const cJSON *obj, const char *key, bool required)
{
    const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

    if (it && cJSON_IsNull(it) && !required)
        return NULL;
    return it;
}

int ob_cfg_check_keys(const struct ob_config *cfg, const cJSON *obj, const char *const allowed[],
                      const char *what, struct ob_diag *d)
{
    const cJSON *c;
    char *list = NULL, *key = NULL, got[128];
    size_t len = 1, off = 0;
    int n = 0;

    if (!cJSON_IsObject(obj)) {
        describe(cfg, obj, got, sizeof(got));
        cfg_err(cfg, obj, d, what && *what ? what : "(config)", "expected a mapping, got %s", got);
        return 1;
    }
    for (size_t i = 0; allowed && allowed[i]; i++)
        len += strlen(allowed[i]) + 2;
    cJSON_ArrayForEach(c, obj)
    {
        bool ok = false;

        for (size_t i = 0; allowed && allowed[i]; i++) {
            if (!strcmp(c->string, allowed[i])) {
                ok = true;
                break;
            }
        }
        if (ok)
            continue;
        if (!list) {
            list = calloc(1, len);
            for (size_t i = 0; list && allowed && allowed[i]; i++) {
                size_t l = strlen(allowed[i]);

                if (i) {
                    memcpy(list + off, ", ", 2);
                    off += 2;
                }
                memcpy(list + off, allowed[i], l + 1);
                off += l;
            }
        }
        if (what && *what) {
            if (asprintf(&key, "%s.%s", what, c->string) < 0)
                key = NULL;
        }
        if (list && *list)
            cfg_err(cfg, c, d, key ? key : c->string, "unknown key (expected one of: %s)", list);
        else
            cfg_err(cfg, c, d, key ? key : c->string, "unknown key (no keys are allowed here)");
        free(key);
        key = NULL;
        n++;
    }
    free(list);
    return n;
}

int ob_cfg_string(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                  const char *def, const char **out, struct ob_diag *d)
{
    const cJSON *it = member(obj, key, required);
    char got[128];

    *out = def;
    if (!it) {
        if (!required)
            return 0;
        cfg_err(cfg, obj, d, key, "missing required key");
        return OB_ECONFIG;
    }
    if (!cJSON_IsString(it)) {
        describe(cfg, it, got, sizeof(got));
        cfg_err(cfg, it, d, key, "expected a string, got %s%s", got,
                cJSON_IsNumber(it) || cJSON_IsBool(it) ? " (put it in quotes)" : "");
        return OB_ECONFIG;
    }
    *out = it->valuestring;
    return 0;
}

int ob_cfg_int(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
               int64_t def, int64_t min, int64_t max, int64_t *out, struct ob_diag *d)
{
    const cJSON *it = member(obj, key, required);
    char got[128];
    int64_t v;

    *out = def;
    if (!it) {
        if (!required)
            return 0;
        cfg_err(cfg, obj, d, key, "missing required key");
        return OB_ECONFIG;
    }
    describe(cfg, it, got, sizeof(got));
    if (!ob_json_int(it, &v)) {
        cfg_err(cfg, it, d, key, "expected an integer, got %s", got);
        return OB_ECONFIG;
    }
    if (v < min || v > max) {
        if (min == INT64_MIN)
            cfg_err(cfg, it, d, key, "must be at most %lld, got %s", (long long)max, got);
        else if (max == INT64_MAX)
            cfg_err(cfg, it, d, key, "must be at least %lld, got %s", (long long)min, got);
        else
            cfg_err(cfg, it, d, key, "must be between %lld and %lld, got %s", (long long)min,
                    (long long)max, got);
        return OB_ECONFIG;
    }
    *out = v;
    return 0;
}

int ob_cfg_bool(const struct ob_config *cfg, const cJSON *obj, const char *key, bool def, bool *out,
                struct ob_diag *d)
{
    const cJSON *it = member(obj, key, false);
    char got[128];

    *out = def;
    if (!it)
        return 0;
    if (!cJSON_IsBool(it)) {
        describe(cfg, it, got, sizeof(got));
        cfg_err(cfg, it, d, key, "expected true or false, got %s", got);
        return OB_ECONFIG;
    }
    *out = cJSON_IsTrue(it);
    return 0;
}

int ob_cfg_duration(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                    int64_t def_ms, int64_t *out_ms, struct ob_diag *d)
{
    const cJSON *it = member(obj, key, required);
    char got[128];
    int64_t v;

    *out_ms = def_ms;
    if (!it) {
        if (!required)
            return 0;
        cfg_err(cfg, obj, d, key, "missing required key");
        return OB_ECONFIG;
    }
    if (cJSON_IsString(it) && ob_duration_parse(it->valuestring, &v) == 0) {
        *out_ms = v;
        return 0;
    }
    if (ob_json_int(it, &v) && v >= 0 && v <= INT64_MAX / 1000) {
        *out_ms = v * 1000;
        return 0;
    }
    describe(cfg, it, got, sizeof(got));
    cfg_err(cfg, it, d, key, "expected a duration like 30s, 5m, 1h, got %s", got);
    return OB_ECONFIG;
}

int ob_cfg_strlist(const struct ob_config *cfg, const cJSON *obj, const char *key, bool required,
                   const cJSON **out, struct ob_diag *d)
{
    const cJSON *it = member(obj, key, required), *el;
    char got[128], ekey[256];
    size_t i = 0;
    int rc = 0;

    *out = NULL;
    if (!it) {
        if (!required)
            return 0;
        cfg_err(cfg, obj, d, key, "missing required key");
        return OB_ECONFIG;
    }
    if (cJSON_IsString(it)) {
        *out = it;
        return 0;
    }
    if (!cJSON_IsArray(it)) {
        describe(cfg, it, got, sizeof(got));
        cfg_err(cfg, it, d, key, "expected a string or a list of strings, got %s", got);
        return OB_ECONFIG;
    }
    cJSON_ArrayForEach(el, it)
    {
        if (!cJSON_IsString(el)) {
            describe(cfg, el, got, sizeof(got));
            snprintf(ekey, sizeof(ekey), "%s[%zu]", key, i);
            cfg_err(cfg, el, d, ekey, "expected a string, got %s", got);
            rc = OB_ECONFIG;
        }
        i++;
    }
    if (!rc)
        *out = it;
    return rc;
}
