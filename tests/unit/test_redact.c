#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opsbot/err.h"
#include "opsbot/redact.h"

static struct ob_redact *R;

static char *red(const char *s)
{
    char *out = ob_redact_apply(R, s, strlen(s));

    assert_non_null(out);
    return out;
}

static void expect_red(const char *in, const char *want)
{
    char *out = red(in);

    if (strcmp(out, want))
        fail_msg("redact(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, out, want);
    free(out);
}

static void expect_same(const char *in)
{
    expect_red(in, in);
}

static size_t count_masks(const char *s)
{
    size_t n = 0;

    for (const char *p = s; (p = strstr(p, "[REDACTED]")); p += 10)
        n++;
    return n;
}

static int setup(void **state)
{
    struct ob_diag d;

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(ob_redact_new(&R, NULL, NULL, &d), 0);
    assert_int_equal(d.n, 0);
    ob_diag_release(&d);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ob_redact_free(R);
    R = NULL;
    return 0;
}

static void test_slack(void **state)
{
    (void)state;
    expect_red("token xoxb-123456789012-1234567890123-AbCdEfGhIjKl done", "token [REDACTED] done");
    expect_red("xoxp-11111-22222-33333-abcdef", "[REDACTED]");
    expect_red("app xapp-1-A0123456789-1234567890-abcdef0123", "app [REDACTED]");
    expect_red("hook https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX ok",
               "hook https://hooks.slack.com/services/[REDACTED] ok");
    /* near misses */
    expect_same("the xoxb prefix alone is not a token");
    expect_same("xoxb-short");
    expect_same("xoxz-123456789012-abcdef");
    expect_same("https://hooks.slack.com/ is the host");
}

static void test_discord(void **state)
{
    (void)state;
    expect_red("Bot MTA4NzY1NDMyMTAxMjM0NTY3OA.GabcDE.abcdefghijklmnopqrstuvwxyz0123 x",
               "Bot [REDACTED] x");
    expect_same("www.example.com and a.b.c");
    /* middle part must be exactly 6 */
    expect_same("MTA4NzY1NDMyMTAxMjM0NTY3OA.GabcDEF.abcdefghijklmnopqrstuvwxyz0123");
}

static void test_github(void **state)
{
    (void)state;
    expect_red("ghp_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]");
    expect_red("use gho_0123456789abcdefghijABCDEFGHIJ now", "use [REDACTED] now");
    expect_red("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[REDACTED]");
    expect_same("ghp_short");
    expect_same("my_ghp_0123456789abcdefghijABCDEFGHIJ"); /* glued to a word */
}

static void test_aws(void **state)
{
    (void)state;
    expect_red("key AKIAIOSFODNN7EXAMPLE,", "key [REDACTED],");
    expect_red("ASIAIOSFODNN7EXAMPLE", "[REDACTED]");
    expect_same("AKIAIOSFODNN7EXAMPL");   /* 15 after the prefix */
    expect_same("AKIAIOSFODNN7EXAMPLEX"); /* 17 */
    expect_red("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
               "aws_secret_access_key = [REDACTED]");
    expect_red("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
               "AWS_SECRET_ACCESS_KEY=[REDACTED]\n");
}

static void test_authorization(void **state)
{
    (void)state;
    expect_red("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED]");
    expect_red("authorization: Basic dXNlcjpwYXNzd29yZA==", "authorization: Basic [REDACTED]");
    expect_red("curl -H 'Authorization: Bot xyz123' url",
               "curl -H 'Authorization: Bot [REDACTED]' url");
    expect_red("bearer 0123456789abcdefXYZ", "bearer [REDACTED]");
    expect_same("basic authentication is fine");
    expect_same("the bearer of bad news");
}

static void test_jwt(void **state)
{
    (void)state;
    expect_red("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-1 end",
               "jwt=[REDACTED] end");
    expect_red("x eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. y", "x [REDACTED] y");
    expect_same("eyJ alone is nothing");
    expect_same("eyJhbGciOiJIUzI1NiJ9 without the rest");
}

static void test_pem(void **state)
{
    (void)state;
    expect_red("before\n-----BEGIN RSA PRIVATE KEY-----\n"
               "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
               "aNcHoV+2x3y0/w==\n"
               "-----END RSA PRIVATE KEY-----\nafter",
               "before\n[REDACTED]\nafter");
    expect_red("-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
               "DEK-Info: AES-128-CBC,0123\n\nabc\n-----END ENCRYPTED PRIVATE KEY-----",
               "[REDACTED]");
    expect_red("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
               "-----END OPENSSH PRIVATE KEY-----",
               "[REDACTED]");
    /* a key cut by the output cap is still masked to the end */
    expect_red("x\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "x\n[REDACTED]");
    /* Fuzz finding (fuzz_redact): a key without its END line followed by
     * another key left the first key's body in clear text. */
    expect_red("-----BEGIN RSA PRIVATE KEY-----\nMIIEcutoffFIRSTsecret\n"
               "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecond\n-----END RSA PRIVATE KEY-----\nok",
               "[REDACTED][REDACTED]\nok");
    expect_red("key -----BEGIN RSA PRIVATE KEY-----t_access_ke-----BEGIN RSA PRIVATE "
               "KEY-----E\"aAMPLEKEY",
               "key [REDACTED][REDACTED]");
    /* public material is not secret */
    expect_same("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----");
    expect_same("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
}

static void test_url_password(void **state)
{
    (void)state;
    expect_red("postgres://admin:s3cr3t@db.internal:5432/app",
               "postgres://admin:[REDACTED]@db.internal:5432/app");
    expect_red("redis://:p4ss@cache:6379", "redis://:[REDACTED]@cache:6379");
    expect_red("fetch https://bot:tok%40en@git.example.com/repo.git",
               "fetch https://bot:[REDACTED]@git.example.com/repo.git");
    expect_same("http://host:8080/path?q=1");
    expect_same("mailto:someone@example.com");
}

static void test_key_value(void **state)
{
    (void)state;
    expect_red("password=hunter2 user=bob", "password=[REDACTED] user=bob");
    expect_red("API_KEY: abc123", "API_KEY: [REDACTED]");
    expect_red("DB_PASSWORD=xyz;next", "DB_PASSWORD=[REDACTED];next");
    expect_red("{\"client_secret\": \"a b c\", \"id\": 1}",
               "{\"client_secret\": \"[REDACTED]\", \"id\": 1}");
    expect_red("Token = 'quoted value'", "Token = '[REDACTED]'");
    expect_red("?access_key=AbC&x=1", "?access_key=[REDACTED]&x=1");
    expect_red("passwd:letmein", "passwd:[REDACTED]");
    expect_red("apikey=k1 secret=s2", "apikey=[REDACTED] secret=[REDACTED]");
    expect_same("tokens are rotated daily");
    expect_same("the password is strong");
    expect_same("password =\nnext line");
    expect_same("mypasswordless=1");
    /* a keyword ending a name counts; the tail of a word does not */
    expect_red("x-api-key: k2 _token=t3", "x-api-key: [REDACTED] _token=[REDACTED]");
    expect_red("my_secret_token=t4", "my_secret_token=[REDACTED]");
    expect_same("mypassword=hunter2 oauthtoken=t5");
}

static void test_openai(void **state)
{
    (void)state;
    expect_red("OPENAI sk-proj-abc123DEF456ghi789JKL012mno", "OPENAI [REDACTED]");
    expect_red("sk-0123456789abcdefghijklmnop", "[REDACTED]");
    expect_same("sk-learn is a library");
    expect_same("task-scheduler-with-a-long-name-here");
    expect_same("sk-no-digits-in-this-long-hyphenated-name");
}

static void test_null_and_length(void **state)
{
    const char buf[] = "password=abc TRAILING";
    char *out;

    (void)state;
    out = ob_redact_apply(NULL, "xoxb-123456789012-abcdef", 24);
    assert_string_equal(out, "xoxb-123456789012-abcdef");
    free(out);
    /* not NUL-terminated: only len bytes are read */
    out = ob_redact_apply(R, buf, 12);
    assert_string_equal(out, "password=[REDACTED]");
    free(out);
    out = ob_redact_apply(R, "", 0);
    assert_string_equal(out, "");
    free(out);
    assert_true(ob_redact_count(R) >= 13);
    assert_int_equal(ob_redact_count(NULL), 0);
}

static void test_extra_patterns(void **state)
{
    struct ob_redact *r = NULL;
    struct ob_diag d;
    cJSON *extra =
        cJSON_Parse("[\"ticket-(?<secret>[0-9]{6})\", \"internal\\\\.example\\\\.com\"]");
    char *out;
    const char *in = "see ticket-123456 on internal.example.com, password=x";

    (void)state;
    assert_non_null(extra);
    ob_diag_init(&d);
    assert_int_equal(ob_redact_new(&r, NULL, extra, &d), 0);
    assert_int_equal(d.n, 0);
    out = ob_redact_apply(r, in, strlen(in));
    assert_string_equal(out, "see ticket-[REDACTED] on [REDACTED], password=[REDACTED]");
    free(out);
    ob_redact_free(r);
    ob_diag_release(&d);
    cJSON_Delete(extra);
}

static void test_bad_extra_pattern(void **state)
{
    struct ob_redact *r = (struct ob_redact *)0x1;
    struct ob_diag d;
    cJSON *extra = cJSON_Parse("[\"fine\", \"foo(\", 7]");

    (void)state;
    ob_diag_init(&d);
    assert_int_equal(ob_redact_new(&r, NULL, extra, &d), OB_EREGEX);
    assert_null(r);
    assert_int_equal(d.n, 2);
    assert_non_null(strstr(d.lines[0], "<input>"));
    assert_non_null(strstr(d.lines[0], "redact[1]"));
    assert_non_null(strstr(d.lines[0], "missing closing parenthesis"));
    assert_non_null(strstr(d.lines[1], "redact[2]"));
    ob_diag_release(&d);
    cJSON_Delete(extra);

    /* not a list at all */
    extra = cJSON_Parse("{\"a\": 1}");
    ob_diag_init(&d);
    assert_int_equal(ob_redact_new(&r, NULL, extra, &d), OB_ECONFIG);
    assert_int_equal(d.n, 1);
    ob_diag_release(&d);
    cJSON_Delete(extra);
}

static void test_large_input(void **state)
{
    const size_t len = 1024 * 1024;
    char *big = malloc(len), *out;
    const char *line = "2026-01-01 INFO request ok user=bob latency=12ms host=web-1.prod.example\n";
    size_t ll = strlen(line), pos = 0, n = 0;

    (void)state;
    assert_non_null(big);
    /* ordinary log lines with a secret every 100 lines */
    while (pos + ll + 64 < len) {
        if (n % 100 == 0) {
            memcpy(big + pos, "token=abcdef0123 ", 17);
            pos += 17;
        }
        memcpy(big + pos, line, ll);
        pos += ll;
        n++;
    }
    out = ob_redact_apply(R, big, pos);
    assert_non_null(out);
    assert_int_equal(count_masks(out), (n + 99) / 100);
    free(out);

    /* adversarial shapes: one long token-alphabet run, many dots, many
     * BEGIN lines without an end, a PEM body full of dashes */
    memset(big, 'a', len);
    out = ob_redact_apply(R, big, len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    free(out);
    for (size_t i = 0; i < len; i++)
        big[i] = (i % 7 == 6) ? '.' : 'A';
    out = ob_redact_apply(R, big, len);
    assert_non_null(out);
    free(out);
    {
        const char *b = "-----BEGIN RSA PRIVATE KEY-----x";
        size_t bl = strlen(b);

        for (pos = 0; pos + bl < len; pos += bl)
            memcpy(big + pos, b, bl);
        out = ob_redact_apply(R, big, pos);
        assert_non_null(out);
        /* every header with what follows it up to the next header is
         * masked (a block cut before its END line may still hold key
         * material; see test_pem), the last one to the end of the text */
        assert_null(strstr(out, "PRIVATE KEY"));
        assert_int_equal(count_masks(out), pos / bl);
        assert_int_equal(strlen(out), (pos / bl) * 10);
        free(out);
    }
    memcpy(big, "-----BEGIN EC PRIVATE KEY-----", 30);
    for (size_t i = 30; i < len; i++)
        big[i] = (i % 2) ? '-' : 'z';
    out = ob_redact_apply(R, big, len);
    assert_non_null(out);
    assert_string_equal(out, "[REDACTED]");
    free(out);
    free(big);
}

static void test_invalid_utf8(void **state)
{
    const char in[] = "\xff\xfe password=\xc3\x28zz \x80\xbf xoxb-123456789012-abc\xe2\x82 end\0"
                      "AKIAIOSFODNN7EXAMPLE";
    char *out;

    (void)state;
    out = ob_redact_apply(R, in, sizeof(in) - 1);
    assert_non_null(out);
    assert_non_null(strstr(out, "password=[REDACTED] \x80\xbf "));
    assert_null(strstr(out, "xoxb-123456789012"));
    /* past the embedded NUL the AWS key id is masked too */
    assert_string_equal(out + strlen(out) + 1, "[REDACTED]");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_discord),
        cmocka_unit_test(test_github),
        cmocka_unit_test(test_aws),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_url_password),
        cmocka_unit_test(test_key_value),
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_null_and_length),
        cmocka_unit_test(test_extra_patterns),
        cmocka_unit_test(test_bad_extra_pattern),
        cmocka_unit_test(test_large_input),
        cmocka_unit_test(test_invalid_utf8),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
