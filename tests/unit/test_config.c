/* Tests for the configuration loader (src/config.c). Fixtures live in
 * tests/data/config/ (found through OB_SOURCE_ROOT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "opsbot/config.h"
#include "opsbot/err.h"

static char *fixture(const char *rel)
{
    const char *root = getenv("OB_SOURCE_ROOT");
    char *s = NULL;

    if (asprintf(&s, "%s/tests/data/config%s%s", root ? root : ".", *rel ? "/" : "", rel) < 0)
        fail_msg("asprintf");
    return s;
}

static void dump(const struct ob_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_message("  diag: %s\n", d->lines[i] ? d->lines[i] : "(null)");
}

static void expect_line(const struct ob_diag *d, const char *want)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->lines[i] && !strcmp(d->lines[i], want))
            return;
    }
    dump(d);
    fail_msg("missing diagnostic: %s", want);
}

static void expect_line_prefix(const struct ob_diag *d, const char *prefix)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->lines[i] && !strncmp(d->lines[i], prefix, strlen(prefix)))
            return;
    }
    dump(d);
    fail_msg("missing diagnostic starting with: %s", prefix);
}

static bool diag_mentions(const struct ob_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->lines[i] && strstr(d->lines[i], needle))
            return true;
    }
    return false;
}

static struct ob_config *load_ok(const char *yaml, const char *path)
{
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    int rc;

    ob_diag_init(&d);
    rc = ob_config_load_string(&cfg, yaml, path, &d);
    if (rc != 0)
        dump(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_non_null(cfg);
    ob_diag_release(&d);
    return cfg;
}

/* Loads yaml expecting failure; d is initialised here. */
static void load_bad(const char *yaml, const char *path, struct ob_diag *d)
{
    struct ob_config *cfg = (struct ob_config *)1;

    ob_diag_init(d);
    assert_int_equal(ob_config_load_string(&cfg, yaml, path, d), OB_ECONFIG);
    assert_null(cfg);
    assert_true(d->n > 0);
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!it)
        fail_msg("no key %s", key);
    return it;
}

static void assert_where(const struct ob_config *cfg, const cJSON *node, const char *want)
{
    char buf[1024];

    assert_string_equal(ob_config_where(cfg, node, buf, sizeof(buf)), want);
}

static void assert_num(const cJSON *n, double v)
{
    assert_true(cJSON_IsNumber(n));
    assert_true(n->valuedouble == v);
}

static void assert_str(const cJSON *n, const char *s)
{
    assert_true(cJSON_IsString(n));
    assert_string_equal(n->valuestring, s);
}

/* ---- scalars and structure ------------------------------------------- */

static void test_scalar_typing(void **state)
{
    (void)state;
    struct ob_config *cfg = load_ok("n1: null\n"
                                    "n2: ~\n"
                                    "n3:\n"
                                    "n4: NULL\n"
                                    "t1: true\n"
                                    "t2: True\n"
                                    "t3: TRUE\n"
                                    "f1: false\n"
                                    "f2: FALSE\n"
                                    "norway: no\n"
                                    "yes_: yes\n"
                                    "on_: on\n"
                                    "off_: Off\n"
                                    "tRuE: tRuE\n"
                                    "i1: 42\n"
                                    "i2: -17\n"
                                    "i3: +8\n"
                                    "hex: 0x1F\n"
                                    "oct: 0o17\n"
                                    "lead0: 0755\n"
                                    "fl1: 1.5\n"
                                    "fl2: -2.5e3\n"
                                    "fl3: .5\n"
                                    "qi: \"123\"\n"
                                    "qs: '1.5'\n"
                                    "qb: \"true\"\n"
                                    "qn: \"null\"\n"
                                    "qe: \"\"\n"
                                    "big: 12345678901234567890\n"
                                    "exact: 9007199254740992\n"
                                    "under: 1_000\n"
                                    "dur: 30s\n"
                                    "clock: 12:30\n"
                                    "ver: 1.2.3\n"
                                    "tagged: !!str 123\n"
                                    "text: hello world\n",
                                    "s.yaml");
    const cJSON *r = ob_config_root(cfg);

    assert_true(cJSON_IsNull(get(r, "n1")));
    assert_true(cJSON_IsNull(get(r, "n2")));
    assert_true(cJSON_IsNull(get(r, "n3")));
    assert_true(cJSON_IsNull(get(r, "n4")));
    assert_true(cJSON_IsTrue(get(r, "t1")));
    assert_true(cJSON_IsTrue(get(r, "t2")));
    assert_true(cJSON_IsTrue(get(r, "t3")));
    assert_true(cJSON_IsFalse(get(r, "f1")));
    assert_true(cJSON_IsFalse(get(r, "f2")));
    /* The Norway problem: YAML 1.1 booleans stay strings. */
    assert_str(get(r, "norway"), "no");
    assert_str(get(r, "yes_"), "yes");
    assert_str(get(r, "on_"), "on");
    assert_str(get(r, "off_"), "Off");
    assert_str(get(r, "tRuE"), "tRuE");
    assert_num(get(r, "i1"), 42);
    assert_num(get(r, "i2"), -17);
    assert_num(get(r, "i3"), 8);
    assert_num(get(r, "hex"), 31);
    assert_num(get(r, "oct"), 15);
    assert_num(get(r, "lead0"), 755);
    assert_num(get(r, "fl1"), 1.5);
    assert_num(get(r, "fl2"), -2500);
    assert_num(get(r, "fl3"), 0.5);
    assert_str(get(r, "qi"), "123");
    assert_str(get(r, "qs"), "1.5");
    assert_str(get(r, "qb"), "true");
    assert_str(get(r, "qn"), "null");
    assert_str(get(r, "qe"), "");
    /* Beyond 2^53 a double would lose digits: kept as text. */
    assert_str(get(r, "big"), "12345678901234567890");
    assert_num(get(r, "exact"), 9007199254740992.0);
    assert_str(get(r, "under"), "1_000");
    assert_str(get(r, "dur"), "30s");
    assert_str(get(r, "clock"), "12:30");
    assert_str(get(r, "ver"), "1.2.3");
    assert_str(get(r, "tagged"), "123");
    assert_str(get(r, "text"), "hello world");
    ob_config_free(cfg);
}

static void test_nested_and_locations(void **state)
{
    (void)state;
    struct ob_config *cfg = load_ok("bot:\n"            /* 1 */
                                    "  name: x\n"       /* 2 */
                                    "  tags:\n"         /* 3 */
                                    "    - a\n"         /* 4 */
                                    "    - b: 1\n"      /* 5 */
                                    "      c: [1, 2]\n" /* 6 */
                                    "empty_map: {}\n"   /* 7 */
                                    "empty_list: []\n"  /* 8 */
                                    "flow: {k: [v, {w: 1}]}\n",
                                    "n.yaml");
    const cJSON *r = ob_config_root(cfg), *bot = get(r, "bot"), *tags = get(bot, "tags");
    const cJSON *t1 = cJSON_GetArrayItem(tags, 1), *c = get(t1, "c"), *flow = get(r, "flow");
    char small[4];
    cJSON *foreign = cJSON_Parse("{\"a\":1}");

    assert_true(cJSON_IsObject(bot));
    assert_true(cJSON_IsArray(tags));
    assert_int_equal(cJSON_GetArraySize(tags), 2);
    assert_str(cJSON_GetArrayItem(tags, 0), "a");
    assert_num(get(t1, "b"), 1);
    assert_int_equal(cJSON_GetArraySize(c), 2);
    assert_num(cJSON_GetArrayItem(c, 1), 2);
    assert_true(cJSON_IsObject(get(r, "empty_map")));
    assert_null(get(r, "empty_map")->child);
    assert_true(cJSON_IsArray(get(r, "empty_list")));
    assert_num(get(cJSON_GetArrayItem(get(flow, "k"), 1), "w"), 1);

    assert_where(cfg, r, "n.yaml:1");
    assert_where(cfg, bot, "n.yaml:1");
    assert_where(cfg, get(bot, "name"), "n.yaml:2");
    assert_where(cfg, tags, "n.yaml:3");
    assert_where(cfg, cJSON_GetArrayItem(tags, 0), "n.yaml:4");
    assert_where(cfg, t1, "n.yaml:5");
    assert_where(cfg, get(t1, "b"), "n.yaml:5");
    assert_where(cfg, c, "n.yaml:6");
    assert_where(cfg, cJSON_GetArrayItem(c, 1), "n.yaml:6");
    assert_where(cfg, get(r, "empty_list"), "n.yaml:8");
    assert_where(cfg, get(flow, "k"), "n.yaml:9");
    /* Unknown nodes and no config. */
    assert_where(cfg, foreign, "<input>");
    assert_where(cfg, NULL, "<input>");
    assert_where(NULL, bot, "<input>");
    /* Truncation is safe. */
    assert_string_equal(ob_config_where(cfg, bot, small, sizeof(small)), "n.y");
    cJSON_Delete(foreign);
    ob_config_free(cfg);
    ob_config_free(NULL);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    struct ob_diag d;

    load_bad("a:\n"
             "  b: 1\n"
             "  c: 2\n"
             "  b: 3\n"
             "top: 1\n"
             "top: [2]\n"
             "x: {k: 1, k: 2}\n",
             "dup.yaml", &d);
    expect_line(&d, "dup.yaml:4: a.b: duplicate key");
    expect_line(&d, "dup.yaml:6: top: duplicate key");
    expect_line(&d, "dup.yaml:7: x.k: duplicate key");
    assert_int_equal(d.n, 3);
    ob_diag_release(&d);
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    struct ob_diag d;

    load_bad("ok: 1\nbad: x: y\n", "bad.yaml", &d);
    assert_int_equal(d.n, 1);
    expect_line(&d, "bad.yaml:2:7: YAML error: mapping values are not allowed in this context");
    ob_diag_release(&d);

    load_bad("a: [1, 2\nb: 3\n", "flow.yaml", &d);
    expect_line(&d, "flow.yaml:2:2: YAML error: did not find expected ',' or ']'");
    ob_diag_release(&d);

    /* Invalid UTF-8 is a reader error located by byte offset. */
    load_bad("a: 1\nb: \"\xff\"\n", "utf.yaml", &d);
    expect_line_prefix(&d, "utf.yaml:2:5: YAML error: ");
    ob_diag_release(&d);

    load_bad("a: 1\n---\nb: 2\n", "multi.yaml", &d);
    expect_line(&d, "multi.yaml:2: only one YAML document per file is supported");
    ob_diag_release(&d);

    load_bad("? [a, b]\n: 1\nc: 2\n", "key.yaml", &d);
    expect_line(&d, "key.yaml:1: (top level): mapping keys must be scalars, not a list");
    ob_diag_release(&d);

    load_bad("a: !!int 5\n", "tag.yaml", &d);
    expect_line(&d, "tag.yaml:1: a: unsupported YAML tag tag:yaml.org,2002:int");
    ob_diag_release(&d);

    load_bad("a: \"x\\0y\"\n", "nul.yaml", &d);
    expect_line(&d, "nul.yaml:1: a: value contains a NUL byte");
    ob_diag_release(&d);

    load_bad("- a\n- b\n", "list.yaml", &d);
    expect_line(&d, "list.yaml:1: top level must be a mapping");
    ob_diag_release(&d);

    load_bad("", "empty.yaml", &d);
    expect_line(&d, "empty.yaml:1: top level must be a mapping");
    ob_diag_release(&d);
}

/* ---- environment -------------------------------------------------------- */

static void test_env_expansion(void **state)
{
    (void)state;
    struct ob_config *cfg;
    const cJSON *r, *list;

    setenv("OB_CT_TOKEN", "secret-xyz", 1);
    setenv("OB_CT_PORT2", "9090", 1);
    setenv("OB_CT_EMPTY", "", 1);
    unsetenv("OB_CT_UNSET");
    cfg = load_ok("token: ${OB_CT_TOKEN}\n"
                  "port: ${OB_CT_PORT2}\n"
                  "qport: \"${OB_CT_PORT2}\"\n"
                  "def: ${OB_CT_UNSET:-fallback}\n"
                  "defnum: ${OB_CT_UNSET:-42}\n"
                  "emptydef: ${OB_CT_EMPTY:-used}\n"
                  "empty: \"${OB_CT_EMPTY}\"\n"
                  "price: $$5 and $$${OB_CT_PORT2} and $${OB_CT_PORT2}\n"
                  "mixed: 'pre-${OB_CT_TOKEN}-post'\n"
                  "lone: cost $5 or $\n"
                  "list:\n"
                  "  - a\n"
                  "  - \"${OB_CT_PORT2}\"\n"
                  "  - ${OB_CT_PORT2}\n"
                  /* in flow context { } are indicators: quote there */
                  "flow: [\"${OB_CT_PORT2}\"]\n"
                  "${OB_CT_TOKEN}: keys are not expanded\n"
                  "block: |\n"
                  "  line ${OB_CT_PORT2}\n",
                  "env.yaml");
    r = ob_config_root(cfg);
    assert_str(get(r, "token"), "secret-xyz");
    assert_num(get(r, "port"), 9090);
    assert_str(get(r, "qport"), "9090");
    assert_str(get(r, "def"), "fallback");
    assert_num(get(r, "defnum"), 42);
    assert_str(get(r, "emptydef"), "used");
    assert_str(get(r, "empty"), "");
    assert_str(get(r, "price"), "$5 and $9090 and ${OB_CT_PORT2}");
    assert_str(get(r, "mixed"), "pre-secret-xyz-post");
    assert_str(get(r, "lone"), "cost $5 or $");
    list = get(r, "list");
    assert_str(cJSON_GetArrayItem(list, 1), "9090");
    assert_num(cJSON_GetArrayItem(list, 2), 9090);
    assert_str(cJSON_GetArrayItem(get(r, "flow"), 0), "9090");
    assert_str(get(r, "${OB_CT_TOKEN}"), "keys are not expanded");
    assert_str(get(r, "block"), "line 9090\n");
    ob_config_free(cfg);
}

static void test_env_errors(void **state)
{
    (void)state;
    struct ob_diag d;

    unsetenv("OB_CT_UNSET");
    unsetenv("OB_CT_UNSET2");
    load_bad("a: 1\n"
             "b:\n"
             "  token: ${OB_CT_UNSET}\n"
             "  list:\n"
             "    - x ${OB_CT_UNSET2} y\n"
             "c: ${OB_CT_BAD\n"
             "e: ${1BAD}\n"
             "f: ${OB_CT_UNSET-x}\n",
             "e.yaml", &d);
    expect_line(&d, "e.yaml:3: b.token: environment variable OB_CT_UNSET is not set");
    expect_line(&d, "e.yaml:5: b.list[0]: environment variable OB_CT_UNSET2 is not set");
    expect_line(&d, "e.yaml:6: c: unterminated ${ in value");
    expect_line(&d, "e.yaml:7: e: invalid environment reference (use ${NAME} or "
                    "${NAME:-default})");
    expect_line_prefix(&d, "e.yaml:8: f: invalid environment reference");
    assert_int_equal(d.n, 5);
    ob_diag_release(&d);
}

static void test_dotenv(void **state)
{
    (void)state;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    char *path = fixture("env/main.yaml");
    const cJSON *r;

    unsetenv("OB_CT_FROM_DOTENV");
    unsetenv("OB_CT_EXPORTED");
    unsetenv("OB_CT_DQ");
    unsetenv("OB_CT_SQ");
    unsetenv("OB_CT_PORT");
    setenv("OB_CT_BOTH", "from-env", 1); /* the environment wins over .env */
    ob_diag_init(&d);
    if (ob_config_load(&cfg, path, &d) != 0)
        dump(&d);
    assert_non_null(cfg);
    r = ob_config_root(cfg);
    assert_str(get(r, "a"), "dotenv-value");
    assert_str(get(r, "b"), "exported value");
    assert_str(get(r, "c"), "from-env");
    assert_str(get(r, "d"), "double # quoted\nline");
    assert_str(get(r, "e"), "single $quoted");
    assert_num(get(r, "port"), 8080);
    assert_str(get(r, "quoted_port"), "8080");
    /* .env values never reach the process environment. */
    assert_null(getenv("OB_CT_FROM_DOTENV"));
    ob_config_free(cfg);
    unsetenv("OB_CT_BOTH");
    free(path);

    /* Same file through load_string: .env is found from the path's dir. */
    path = fixture("env/virtual.yaml");
    cfg = load_ok("v: ${OB_CT_FROM_DOTENV}\n", path);
    assert_str(get(ob_config_root(cfg), "v"), "dotenv-value");
    ob_config_free(cfg);
    free(path);
    ob_diag_release(&d);
}

static void test_dotenv_malformed(void **state)
{
    (void)state;
    struct ob_config *cfg = (struct ob_config *)1;
    struct ob_diag d;
    char *path = fixture("badenv/main.yaml"), *dir = fixture("badenv"), want[1024];

    unsetenv("GOOD");
    ob_diag_init(&d);
    assert_int_equal(ob_config_load(&cfg, path, &d), OB_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof(want), "%s/.env:3: malformed line (expected KEY=VALUE)", dir);
    expect_line(&d, want);
    snprintf(want, sizeof(want), "%s/.env:4: malformed line (expected KEY=VALUE)", dir);
    expect_line(&d, want);
    assert_int_equal(d.n, 2); /* ${GOOD} itself resolved from the good line */
    assert_false(diag_mentions(&d, "oops"));
    ob_diag_release(&d);
    free(path);
    free(dir);
}

/* ---- includes ---------------------------------------------------------- */

static void test_includes(void **state)
{
    (void)state;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    char *path = fixture("main.yaml"), *dir = fixture(""), want[1024];
    const struct ob_config_doc *docs;
    const cJSON *r, *actions, *a0, *b0;
    char *p;
    size_t n = 99;

    ob_diag_init(&d);
    if (ob_config_load(&cfg, path, &d) != 0)
        dump(&d);
    assert_non_null(cfg);
    assert_string_equal(ob_config_dir(cfg), dir);
    r = ob_config_root(cfg);

    /* The section is left as written. */
    actions = get(r, "actions");
    assert_str(get(actions, "bind"), "127.0.0.1");
    assert_str(get(actions, "include"), "actions/*.yaml");

    docs = ob_config_includes(cfg, "actions", &n);
    assert_int_equal(n, 2);
    snprintf(want, sizeof(want), "%s/actions/a_restart.yaml", dir);
    assert_string_equal(docs[0].path, want);
    snprintf(want, sizeof(want), "%s/actions/b_status.yaml", dir);
    assert_string_equal(docs[1].path, want);
    a0 = docs[0].root;
    b0 = docs[1].root;
    assert_str(get(a0, "name"), "restart");
    assert_str(get(b0, "name"), "status");

    /* Locations across documents. */
    snprintf(want, sizeof(want), "%s/actions/a_restart.yaml:6", dir);
    assert_where(cfg, get(get(a0, "executor"), "timeout"), want);
    snprintf(want, sizeof(want), "%s/actions/a_restart.yaml:5", dir);
    assert_where(cfg, cJSON_GetArrayItem(get(get(a0, "executor"), "argv"), 2), want);
    snprintf(want, sizeof(want), "%s/actions/b_status.yaml:5", dir);
    assert_where(cfg, get(cJSON_GetArrayItem(get(b0, "params"), 0), "pattern"), want);
    snprintf(want, sizeof(want), "%s/main.yaml:8", dir);
    assert_where(cfg, cJSON_GetArrayItem(get(get(get(r, "platforms"), "console"), "users"), 1),
                 want);
    snprintf(want, sizeof(want), "%s/main.yaml:11", dir);
    assert_where(cfg, get(cJSON_GetArrayItem(get(r, "limits"), 0), "max"), want);

    docs = ob_config_includes(cfg, "policies", &n);
    assert_int_equal(n, 1);
    assert_true(cJSON_IsArray(get(get(docs[0].root, "groups"), "oncall")));
    snprintf(want, sizeof(want), "%s/policies/default.yaml:4", dir);
    assert_where(cfg, cJSON_GetArrayItem(get(docs[0].root, "rules"), 0), want);

    n = 99;
    assert_null(ob_config_includes(cfg, "bogus", &n));
    assert_int_equal(n, 0);
    assert_null(ob_config_includes(NULL, "actions", &n));

    p = ob_config_path(cfg, "./fleet.sh");
    snprintf(want, sizeof(want), "%s/fleet.sh", dir);
    assert_string_equal(p, want);
    free(p);
    p = ob_config_path(cfg, "/bin/true");
    assert_string_equal(p, "/bin/true");
    free(p);

    ob_config_free(cfg);
    ob_diag_release(&d);
    free(path);
    free(dir);
}

static void test_include_errors(void **state)
{
    (void)state;
    struct ob_config *cfg = (struct ob_config *)1;
    struct ob_diag d;
    char *path = fixture("nomatch/main.yaml"), *dir = fixture(""), want[1024];
    char *virt = fixture("virtual.yaml");

    ob_diag_init(&d);
    assert_int_equal(ob_config_load(&cfg, path, &d), OB_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof(want),
             "%s/nomatch/main.yaml:3: actions.include[0]: glob 'empty/*.yaml' matches no files",
             dir);
    expect_line(&d, want);
    snprintf(want, sizeof(want),
             "%s/nomatch/main.yaml:5: policies.include: glob 'missing-dir/*.yaml' matches no "
             "files",
             dir);
    expect_line(&d, want);
    assert_int_equal(d.n, 2);
    ob_diag_release(&d);

    /* Wrong type, duplicate file, and a syntax error inside an included
     * file, which names the included file. All reported together. */
    load_bad("actions:\n"
             "  include: [\"actions/a_*.yaml\", \"actions/*.yaml\", 7]\n"
             "policies:\n"
             "  include: {a: 1}\n"
             "extra:\n"
             "  include: ignored/*.yaml\n",
             virt, &d);
    snprintf(want, sizeof(want),
             "%s:2: actions.include[1]: %s/actions/a_restart.yaml is included twice", virt, dir);
    expect_line(&d, want);
    snprintf(want, sizeof(want), "%s:2: actions.include[2]: expected a glob, got 7", virt);
    expect_line(&d, want);
    snprintf(want, sizeof(want),
             "%s:4: policies.include: expected a glob or a list of globs, got a mapping", virt);
    expect_line(&d, want);
    assert_int_equal(d.n, 3);
    ob_diag_release(&d);

    load_bad("actions:\n  include: actions/notes.txt\n", virt, &d);
    snprintf(want, sizeof(want), "%s/actions/notes.txt:2:1: YAML error: ", dir);
    expect_line_prefix(&d, want);
    ob_diag_release(&d);

    free(path);
    free(dir);
    free(virt);
}

/* ---- anchors ------------------------------------------------------------ */

static void test_anchors(void **state)
{
    (void)state;
    struct ob_config *cfg = load_ok("base: &b\n"            /* 1 */
                                    "  retries: 3\n"        /* 2 */
                                    "  tags: [x, y]\n"      /* 3 */
                                    "copy: *b\n"            /* 4 */
                                    "list:\n"               /* 5 */
                                    "  - &s hello\n"        /* 6 */
                                    "  - *s\n"              /* 7 */
                                    "again: &b [re, def]\n" /* 8: anchors may be redefined */
                                    "latest: *b\n",
                                    "a.yaml");
    const cJSON *r = ob_config_root(cfg), *base = get(r, "base"), *copy = get(r, "copy");
    const cJSON *list = get(r, "list");

    assert_ptr_not_equal(base, copy);
    assert_true(cJSON_Compare(base, copy, 1));
    assert_ptr_not_equal(get(base, "tags"), get(copy, "tags"));
    assert_where(cfg, copy, "a.yaml:4");
    assert_where(cfg, get(copy, "retries"), "a.yaml:2");
    assert_str(cJSON_GetArrayItem(list, 1), "hello");
    assert_where(cfg, cJSON_GetArrayItem(list, 1), "a.yaml:7");
    assert_str(cJSON_GetArrayItem(get(r, "latest"), 0), "re");
    /* The copy of an array element carries no stale key name. */
    assert_null(cJSON_GetArrayItem(list, 1)->string);
    ob_config_free(cfg);
}

static void test_alias_limits(void **state)
{
    (void)state;
    struct ob_diag d;
    char *y = NULL, *ok = NULL;
    size_t len;
    FILE *f;

    /* Billion laughs: each level multiplies by ten. */
    f = open_memstream(&y, &len);
    fprintf(f, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i <= 6; i++) {
        fprintf(f, "l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            fprintf(f, "%s*l%d", j ? ", " : "", i - 1);
        fprintf(f, "]\n");
    }
    fclose(f);
    load_bad(y, "bomb.yaml", &d);
    assert_int_equal(d.n, 1);
    expect_line_prefix(&d, "bomb.yaml:");
    assert_true(diag_mentions(&d, "exceeds the limit of 100000 nodes"));
    ob_diag_release(&d);
    free(y);

    /* Depth: 64 nested collections are fine, 65 are not. */
    f = open_memstream(&ok, &len);
    fprintf(f, "a: ");
    for (int i = 0; i < 63; i++)
        fputc('[', f);
    for (int i = 0; i < 63; i++)
        fputc(']', f);
    fputc('\n', f);
    fclose(f);
    ob_config_free(load_ok(ok, "deep.yaml"));
    free(ok);
    f = open_memstream(&y, &len);
    fprintf(f, "a: ");
    for (int i = 0; i < 64; i++)
        fputc('[', f);
    for (int i = 0; i < 64; i++)
        fputc(']', f);
    fputc('\n', f);
    fclose(f);
    load_bad(y, "deep.yaml", &d);
    expect_line_prefix(&d, "deep.yaml:1: a");
    assert_true(diag_mentions(&d, "nesting deeper than 64 levels"));
    ob_diag_release(&d);
    free(y);

    /* An alias can not smuggle depth past the limit either. */
    f = open_memstream(&y, &len);
    fprintf(f, "a: &d ");
    for (int i = 0; i < 40; i++)
        fputc('[', f);
    for (int i = 0; i < 40; i++)
        fputc(']', f);
    fprintf(f, "\nb: ");
    for (int i = 0; i < 30; i++)
        fputc('[', f);
    fprintf(f, "*d");
    for (int i = 0; i < 30; i++)
        fputc(']', f);
    fputc('\n', f);
    fclose(f);
    load_bad(y, "deep2.yaml", &d);
    expect_line_prefix(&d, "deep2.yaml:2: b");
    assert_true(diag_mentions(&d, "alias *d nests deeper than 64 levels"));
    ob_diag_release(&d);
    free(y);

    load_bad("a: *nope\n", "u.yaml", &d);
    expect_line(&d, "u.yaml:1: a: unknown alias *nope");
    ob_diag_release(&d);

    /* An anchor is defined only after its node ends: no self reference. */
    load_bad("a: &s [1, *s]\n", "self.yaml", &d);
    expect_line(&d, "self.yaml:1: a[1]: unknown alias *s");
    ob_diag_release(&d);
}

/* ---- typed helpers --------------------------------------------------- */

static const char helpers_yaml[] = "bot:\n"                      /* 1 */
                                   "  name: opsbot\n"            /* 2 */
                                   "  nmae: typo\n"              /* 3 */
                                   "  echo: steps\n"             /* 4 */
                                   "vals:\n"                     /* 5 */
                                   "  num_name: 5\n"             /* 6 */
                                   "  timeout: soon\n"           /* 7 */
                                   "  port: 70000\n"             /* 8 */
                                   "  count: 1.5\n"              /* 9 */
                                   "  flag: \"yes\"\n"           /* 10 */
                                   "  wait: 90\n"                /* 11 */
                                   "  wait2: 1h30m\n"            /* 12 */
                                   "  neg: -5\n"                 /* 13 */
                                   "  list: [a, 2, c]\n"         /* 14 */
                                   "  one: single\n"             /* 15 */
                                   "  ok: true\n"                /* 16 */
                                   "  empty:\n"                  /* 17 */
                                   "  tags: {x: 1}\n"            /* 18 */
                                   "  good: [a, b]\n"            /* 19 */
                                   "  small: 3\n"                /* 20 */
                                   "  secret: ${OB_CT_SECRET}\n" /* 21 */
                                   "  strnum: \"8080\"\n";       /* 22 */

static void test_cfg_helpers(void **state)
{
    (void)state;
    static const char *const bot_keys[] = {"name", "state", "echo", NULL};
    struct ob_config *cfg;
    struct ob_diag d;
    const cJSON *r, *bot, *v, *node;
    const char *s;
    int64_t i;
    bool b;

    setenv("OB_CT_SECRET", "hunter2", 1);
    cfg = load_ok(helpers_yaml, "h.yaml");
    r = ob_config_root(cfg);
    bot = get(r, "bot");
    v = get(r, "vals");
    ob_diag_init(&d);

    /* check_keys */
    assert_int_equal(ob_cfg_check_keys(cfg, bot, bot_keys, "bot", &d), 1);
    expect_line(&d, "h.yaml:3: bot.nmae: unknown key (expected one of: name, state, echo)");
    ob_diag_release(&d);
    assert_int_equal(ob_cfg_check_keys(cfg, bot, bot_keys, NULL, &d), 1);
    expect_line(&d, "h.yaml:3: nmae: unknown key (expected one of: name, state, echo)");
    ob_diag_release(&d);
    assert_int_equal(ob_cfg_check_keys(cfg, get(v, "list"), bot_keys, "vals.list", &d), 1);
    expect_line(&d, "h.yaml:14: vals.list: expected a mapping, got a list");
    ob_diag_release(&d);
    {
        static const char *const all[] = {"name", "nmae", "echo", NULL};

        assert_int_equal(ob_cfg_check_keys(cfg, bot, all, "bot", &d), 0);
        assert_int_equal(d.n, 0);
    }

    /* string */
    assert_int_equal(ob_cfg_string(cfg, bot, "name", true, NULL, &s, &d), 0);
    assert_string_equal(s, "opsbot");
    assert_int_equal(ob_cfg_string(cfg, bot, "state", false, "./opsbot.db", &s, &d), 0);
    assert_string_equal(s, "./opsbot.db");
    assert_int_equal(ob_cfg_string(cfg, v, "empty", false, "dflt", &s, &d), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(d.n, 0);
    assert_int_equal(ob_cfg_string(cfg, bot, "state", true, NULL, &s, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:1: state: missing required key");
    assert_int_equal(ob_cfg_string(cfg, v, "num_name", true, NULL, &s, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:6: num_name: expected a string, got 5 (put it in quotes)");
    assert_int_equal(ob_cfg_string(cfg, v, "empty", true, NULL, &s, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:17: empty: expected a string, got null");
    assert_int_equal(d.n, 3);
    ob_diag_release(&d);

    /* int */
    assert_int_equal(ob_cfg_int(cfg, v, "small", true, 0, 1, 10, &i, &d), 0);
    assert_int_equal(i, 3);
    assert_int_equal(ob_cfg_int(cfg, v, "missing", false, 77, 1, 10, &i, &d), 0);
    assert_int_equal(i, 77);
    assert_int_equal(ob_cfg_int(cfg, v, "port", true, 0, 1, 65535, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:8: port: must be between 1 and 65535, got 70000");
    assert_int_equal(ob_cfg_int(cfg, v, "neg", true, 0, 0, INT64_MAX, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:13: neg: must be at least 0, got -5");
    assert_int_equal(ob_cfg_int(cfg, v, "small", true, 0, INT64_MIN, 2, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:20: small: must be at most 2, got 3");
    assert_int_equal(ob_cfg_int(cfg, v, "count", true, 0, 0, 10, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:9: count: expected an integer, got 1.5");
    assert_int_equal(ob_cfg_int(cfg, v, "strnum", true, 0, 0, 65535, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:22: strnum: expected an integer, got \"8080\"");
    assert_int_equal(ob_cfg_int(cfg, v, "nope", true, 0, 0, 10, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:5: nope: missing required key");
    /* An expanded value is never echoed back. */
    assert_int_equal(ob_cfg_int(cfg, v, "secret", true, 0, 0, 10, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:21: secret: expected an integer, got a value from the environment (not "
                    "shown)");
    assert_false(diag_mentions(&d, "hunter2"));
    assert_int_equal(d.n, 7);
    ob_diag_release(&d);

    /* bool */
    assert_int_equal(ob_cfg_bool(cfg, v, "ok", false, &b, &d), 0);
    assert_true(b);
    assert_int_equal(ob_cfg_bool(cfg, v, "absent", true, &b, &d), 0);
    assert_true(b);
    assert_int_equal(ob_cfg_bool(cfg, v, "empty", false, &b, &d), 0);
    assert_false(b);
    assert_int_equal(ob_cfg_bool(cfg, v, "flag", false, &b, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:10: flag: expected true or false, got \"yes\"");
    assert_int_equal(d.n, 1);
    ob_diag_release(&d);

    /* duration */
    assert_int_equal(ob_cfg_duration(cfg, v, "wait", true, 0, &i, &d), 0);
    assert_int_equal(i, 90000);
    assert_int_equal(ob_cfg_duration(cfg, v, "wait2", true, 0, &i, &d), 0);
    assert_int_equal(i, 5400000);
    assert_int_equal(ob_cfg_duration(cfg, v, "absent", false, 1234, &i, &d), 0);
    assert_int_equal(i, 1234);
    assert_int_equal(ob_cfg_duration(cfg, v, "timeout", true, 0, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:7: timeout: expected a duration like 30s, 5m, 1h, got \"soon\"");
    assert_int_equal(ob_cfg_duration(cfg, v, "neg", true, 0, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:13: neg: expected a duration like 30s, 5m, 1h, got -5");
    assert_int_equal(ob_cfg_duration(cfg, v, "count", true, 0, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:9: count: expected a duration like 30s, 5m, 1h, got 1.5");
    assert_int_equal(ob_cfg_duration(cfg, v, "gone", true, 0, &i, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:5: gone: missing required key");
    assert_int_equal(d.n, 4);
    ob_diag_release(&d);

    /* strlist */
    assert_int_equal(ob_cfg_strlist(cfg, v, "good", true, &node, &d), 0);
    assert_true(cJSON_IsArray(node));
    assert_int_equal(ob_cfg_strlist(cfg, v, "one", true, &node, &d), 0);
    assert_str(node, "single");
    assert_int_equal(ob_cfg_strlist(cfg, v, "absent", false, &node, &d), 0);
    assert_null(node);
    assert_int_equal(ob_cfg_strlist(cfg, v, "list", true, &node, &d), OB_ECONFIG);
    assert_null(node);
    expect_line(&d, "h.yaml:14: list[1]: expected a string, got 2");
    assert_int_equal(ob_cfg_strlist(cfg, v, "tags", true, &node, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:18: tags: expected a string or a list of strings, got a mapping");
    assert_int_equal(ob_cfg_strlist(cfg, v, "absent", true, &node, &d), OB_ECONFIG);
    expect_line(&d, "h.yaml:5: absent: missing required key");
    assert_int_equal(d.n, 3);
    ob_diag_release(&d);

    ob_config_free(cfg);
    unsetenv("OB_CT_SECRET");
}

static void test_cfg_helpers_without_config(void **state)
{
    (void)state;
    cJSON *obj = cJSON_Parse("{\"port\": 0, \"name\": \"x\", \"extra\": 1}");
    static const char *const keys[] = {"port", "name", NULL};
    struct ob_diag d;
    int64_t i;
    const char *s;

    ob_diag_init(&d);
    assert_int_equal(ob_cfg_int(NULL, obj, "port", true, 0, 1, 10, &i, &d), OB_ECONFIG);
    expect_line(&d, "<input>: port: must be between 1 and 10, got 0");
    assert_int_equal(ob_cfg_check_keys(NULL, obj, keys, "svc", &d), 1);
    expect_line(&d, "<input>: svc.extra: unknown key (expected one of: port, name)");
    assert_int_equal(ob_cfg_string(NULL, NULL, "name", true, NULL, &s, &d), OB_ECONFIG);
    expect_line(&d, "<input>: name: missing required key");
    assert_int_equal(ob_cfg_string(NULL, obj, "name", true, NULL, &s, &d), 0);
    assert_string_equal(s, "x");
    ob_diag_release(&d);
    cJSON_Delete(obj);
}

/* ---- files ------------------------------------------------------------ */

static void write_padded(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    size_t n;

    assert_non_null(f);
    fputs("k: v\n", f);
    n = 5;
    while (n < size) {
        size_t chunk = size - n > 64 ? 64 : size - n;

        if (chunk == 1) {
            fputc('\n', f);
        } else {
            fputc('#', f);
            for (size_t j = 1; j + 1 < chunk; j++)
                fputc('x', f);
            fputc('\n', f);
        }
        n += chunk;
    }
    fclose(f);
}

static void test_files(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/ob-config-test-XXXXXX";
    char *dir = mkdtemp(tmpl), path[512], want[1024], *big;
    struct ob_config *cfg = NULL;
    struct ob_diag d;
    struct stat st;

    assert_non_null(dir);
    ob_diag_init(&d);

    /* Exactly 1 MiB is accepted. */
    snprintf(path, sizeof(path), "%s/max.yaml", dir);
    write_padded(path, 1024 * 1024);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 1024 * 1024);
    assert_int_equal(ob_config_load(&cfg, path, &d), 0);
    assert_str(get(ob_config_root(cfg), "k"), "v");
    ob_config_free(cfg);
    cfg = NULL;
    unlink(path);

    /* One byte more is not. */
    snprintf(path, sizeof(path), "%s/big.yaml", dir);
    write_padded(path, 1024 * 1024 + 1);
    assert_int_equal(ob_config_load(&cfg, path, &d), OB_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof(want), "%s: file is larger than 1 MiB (1048577 bytes)", path);
    expect_line(&d, want);
    assert_int_equal(d.n, 1);
    ob_diag_release(&d);
    unlink(path);

    /* Same cap for strings. */
    big = malloc(1024 * 1024 + 2);
    assert_non_null(big);
    memset(big, '#', 1024 * 1024 + 1);
    big[1024 * 1024 + 1] = '\0';
    assert_int_equal(ob_config_load_string(&cfg, big, "big.yaml", &d), OB_ECONFIG);
    expect_line(&d, "big.yaml: input is larger than 1 MiB (1048577 bytes)");
    ob_diag_release(&d);
    free(big);

    /* Not a regular file, and missing. */
    assert_int_equal(ob_config_load(&cfg, dir, &d), OB_ECONFIG);
    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    expect_line(&d, want);
    ob_diag_release(&d);
    snprintf(path, sizeof(path), "%s/absent.yaml", dir);
    assert_int_equal(ob_config_load(&cfg, path, &d), OB_ECONFIG);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    expect_line(&d, want);
    assert_int_equal(d.n, 1);
    ob_diag_release(&d);

    /* A .env that is a directory is reported, not skipped. */
    snprintf(path, sizeof(path), "%s/.env", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ob_config_load_string(&cfg, "a: 1\n", "x.yaml", &d), 0);
    ob_config_free(cfg); /* x.yaml lives in the cwd, not in dir */
    snprintf(want, sizeof(want), "%s/x.yaml", dir);
    assert_int_equal(ob_config_load_string(&cfg, "a: 1\n", want, &d), OB_ECONFIG);
    snprintf(want, sizeof(want), "%s/.env: not a regular file", dir);
    expect_line(&d, want);
    ob_diag_release(&d);
    rmdir(path);
    rmdir(dir);
}

static void test_load_string_paths(void **state)
{
    (void)state;
    struct ob_config *cfg = load_ok("a:\n  b: 1\n", "conf/test.yaml");
    struct ob_diag d;
    char *p;

    assert_string_equal(ob_config_dir(cfg), "conf");
    assert_where(cfg, get(get(ob_config_root(cfg), "a"), "b"), "conf/test.yaml:2");
    p = ob_config_path(cfg, "x.sh");
    assert_string_equal(p, "conf/x.sh");
    free(p);
    p = ob_config_path(cfg, "./x.sh");
    assert_string_equal(p, "conf/x.sh");
    free(p);
    p = ob_config_path(cfg, "/abs/x.sh");
    assert_string_equal(p, "/abs/x.sh");
    free(p);
    assert_null(ob_config_path(cfg, NULL));
    ob_config_free(cfg);

    cfg = load_ok("a: 1\n", "test.yaml");
    assert_string_equal(ob_config_dir(cfg), ".");
    p = ob_config_path(cfg, "fleet.sh");
    assert_string_equal(p, "./fleet.sh"); /* keeps a '/': never a PATH lookup */
    free(p);
    ob_config_free(cfg);

    cfg = load_ok("a: 1\n", "/opsbot.yaml");
    assert_string_equal(ob_config_dir(cfg), "/");
    p = ob_config_path(cfg, "x");
    assert_string_equal(p, "/x");
    free(p);
    ob_config_free(cfg);

    cfg = load_ok("a: 1\n", NULL);
    assert_where(cfg, get(ob_config_root(cfg), "a"), "<string>:1");
    ob_config_free(cfg);

    assert_string_equal(ob_config_dir(NULL), ".");
    assert_null(ob_config_root(NULL));

    load_bad("a: ${OB_CT_NOPE_NOPE}\n", "fictitious/dir/cfg.yaml", &d);
    expect_line(&d,
                "fictitious/dir/cfg.yaml:1: a: environment variable OB_CT_NOPE_NOPE is not set");
    ob_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_typing),  cmocka_unit_test(test_nested_and_locations),
        cmocka_unit_test(test_duplicate_keys), cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_env_expansion),  cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_dotenv),         cmocka_unit_test(test_dotenv_malformed),
        cmocka_unit_test(test_includes),       cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_anchors),        cmocka_unit_test(test_alias_limits),
        cmocka_unit_test(test_cfg_helpers),    cmocka_unit_test(test_cfg_helpers_without_config),
        cmocka_unit_test(test_files),          cmocka_unit_test(test_load_string_paths),
    };

    unsetenv("OB_CT_NOPE_NOPE");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
