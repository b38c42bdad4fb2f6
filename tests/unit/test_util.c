#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

static void test_duration(void **state)
{
    int64_t ms;
    char buf[32];

    (void)state;
    assert_int_equal(ob_duration_parse("90s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(ob_duration_parse("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(ob_duration_parse("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(ob_duration_parse("15", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(ob_duration_parse("2d", &ms), 0);
    assert_int_equal(ms, 172800000);
    assert_int_equal(ob_duration_parse("", &ms), OB_EINVAL);
    assert_int_equal(ob_duration_parse("5x", &ms), OB_EINVAL);
    assert_int_equal(ob_duration_parse("m", &ms), OB_EINVAL);
    assert_int_equal(ob_duration_parse("-5m", &ms), OB_EINVAL);
    assert_int_equal(ob_duration_parse("99999999999999999999s", &ms), OB_EINVAL);
    assert_string_equal(ob_duration_format(5400000, buf, sizeof(buf)), "1h30m");
    assert_string_equal(ob_duration_format(45000, buf, sizeof(buf)), "45s");
    assert_string_equal(ob_duration_format(250, buf, sizeof(buf)), "250ms");
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(ob_utf8_valid("restart checkout", 16));
    assert_true(ob_utf8_valid("caf\xc3\xa9 \xe2\x9c\x85", 9));
    assert_false(ob_utf8_valid("\xc3", 1));
    assert_false(ob_utf8_valid("\xc0\xaf", 2));     /* overlong */
    assert_false(ob_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(ob_utf8_valid("a\0b", 3));         /* NUL */
    assert_false(ob_utf8_valid("\xff", 1));
}

static void test_time(void **state)
{
    int64_t ms, now = ob_now_ms();
    char buf[40];

    (void)state;
    assert_int_equal(ob_time_parse("2026-11-27T17:04:07Z", &ms), 0);
    assert_string_equal(ob_time_format(ms, buf, sizeof(buf)), "2026-11-27T17:04:07.000Z");
    assert_int_equal(ob_time_parse("2026-11-27", &ms), 0);
    assert_string_equal(ob_time_format(ms, buf, sizeof(buf)), "2026-11-27T00:00:00.000Z");
    assert_int_equal(ob_time_parse("-2h", &ms), 0);
    assert_true(ms <= now - 7200000 + 1000 && ms >= now - 7200000 - 1000);
    assert_int_equal(ob_time_parse("2026-13-01", &ms), OB_EINVAL);
    assert_int_equal(ob_time_parse("yesterday", &ms), OB_EINVAL);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(ob_err_name(OB_ECONFIG), "OB_ECONFIG");
    assert_string_equal(ob_strerror(OB_EDUP), "already claimed");
    assert_string_equal(ob_err_name(-2), "ENOENT");
    assert_string_equal(ob_strerror(0), "ok");
}

static void test_diag(void **state)
{
    struct ob_diag d;

    (void)state;
    ob_diag_init(&d);
    ob_diag_addf(&d, "%s:%d: %s: %s", "a.yaml", 3, "bot.nmae", "unknown key");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.lines[0], "a.yaml:3: bot.nmae: unknown key");
    ob_diag_release(&d);
    assert_int_equal(d.n, 0);
}

/* One value through ob_csv_field: exactly the bytes written. */
static void csv_is(const char *value, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    ob_csv_field(f, value);
    assert_int_equal(fclose(f), 0);
    assert_non_null(buf);
    assert_string_equal(buf, want);
    free(buf);
}

static void test_csv_field(void **state)
{
    (void)state;
    /* RFC 4180: as is unless , " CR or LF; then quoted, '"' doubled. */
    csv_is("plain text", "plain text");
    csv_is("", "");
    csv_is(NULL, "");
    csv_is("a,b", "\"a,b\"");
    csv_is("say \"hi\"", "\"say \"\"hi\"\"\"");
    csv_is("two\nlines", "\"two\nlines\"");
    csv_is("x=1+2", "x=1+2"); /* only the first character counts */
    csv_is("{\"text\":\"=1+1\"}", "\"{\"\"text\"\":\"\"=1+1\"\"}\"");
    /* Formula starters get a ' in front and are always quoted. */
    csv_is("=HYPERLINK(\"http://evil/\",\"x\")", "\"'=HYPERLINK(\"\"http://evil/\"\",\"\"x\"\")\"");
    csv_is("+1+cmd|' /C calc'!A0", "\"'+1+cmd|' /C calc'!A0\"");
    csv_is("-2+3", "\"'-2+3\"");
    csv_is("@SUM(A1:A9)", "\"'@SUM(A1:A9)\"");
    csv_is("\t=1", "\"'\t=1\"");
    csv_is("\r=1", "\"'\r=1\"");
    csv_is("=", "\"'=\"");
    /* A leading ' is escaped too, so dropping one ' always gives the value. */
    csv_is("'=1", "\"''=1\"");
    csv_is("'quoted'", "\"''quoted'\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_time),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_diag),     cmocka_unit_test(test_csv_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
