/* Slack HTTP Events mode form bodies (adapters/slack/events_http.c):
 * decoding, fields, and the payload handed to dispatch. Includes the
 * regression for fuzz_slack_form's first finding (a raw NUL byte cut a value
 * short instead of refusing the body). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../adapters/slack/slack_int.h"
#include "opsbot/err.h"

static void decodes_to(const char *s, const char *want)
{
    char *got = slack__form_decode(s, strlen(s));

    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_decode(void **state)
{
    (void)state;
    decodes_to("restart+checkout+in+prod", "restart checkout in prod");
    decodes_to("%2Fopsbot", "/opsbot");
    decodes_to("%7b%22a%22%7D", "{\"a\"}");
    decodes_to("%E2%9C%85", "\xE2\x9C\x85");
    decodes_to("a%2Bb%25", "a+b%");
    decodes_to("", "");
    assert_null(slack__form_decode("%2", 2));    /* cut off */
    assert_null(slack__form_decode("%zz", 3));   /* not hex */
    assert_null(slack__form_decode("a%00b", 5)); /* an escaped NUL */
    assert_null(slack__form_decode("100%", 4));  /* a lone % */
    assert_null(slack__form_decode("%41", 2));   /* len stops before the second digit */
    decodes_to("%41%42", "AB");
}

/* fuzz_slack_form, first crash: a raw NUL byte was copied, so the value was
 * silently cut at it. Now the body is refused like an escaped %00. */
static void test_raw_nul_refused(void **state)
{
    static const char body[] = "command=%2Fopsbot&text=restart+cart\0%3B+rm+-rf+%2F&user_id=U1"
                               "&channel_id=C1&trigger_id=1.2.4";
    static const char payload[] = "payload={\"tu\0e\":\"block_actions\",\"user\":{\"id\":\"U3\"}}";
    enum ob_slack_frame type = OB_SLACK_OTHER;
    cJSON *root = NULL;

    (void)state;
    assert_null(slack__form_decode("restart cart\0; rm", 17));
    assert_null(slack__form_decode("\0", 1));
    assert_null(slack__form_fields(body, sizeof(body) - 1));
    assert_int_equal(slack__form_payload(body, sizeof(body) - 1, &type, &root), OB_EPARSE);
    assert_null(root);
    assert_int_equal(slack__form_payload(payload, sizeof(payload) - 1, &type, &root), OB_EPARSE);
    assert_null(root);
    /* The same body without the NUL is a slash command. */
    assert_int_equal(slack__form_payload(body, strlen(body), &type, &root), 0);
    assert_int_equal(type, OB_SLACK_SLASH_COMMANDS);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "text")->valuestring,
                        "restart cart");
    cJSON_Delete(root);
}

static void test_fields(void **state)
{
    static const char body[] = "command=%2Fopsbot&text=a%26b%3Dc&command=%2Fother&=x&&flag&k=";
    cJSON *f;
    char many[1024];
    size_t off = 0;

    (void)state;
    f = slack__form_fields(body, strlen(body));
    assert_non_null(f);
    assert_int_equal(cJSON_GetArraySize(f), 4); /* command, text, flag, k */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "command")->valuestring, "/opsbot");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "text")->valuestring, "a&b=c");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "flag")->valuestring, "");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f, "k")->valuestring, "");
    cJSON_Delete(f);
    f = slack__form_fields("", 0);
    assert_non_null(f);
    assert_int_equal(cJSON_GetArraySize(f), 0);
    cJSON_Delete(f);
    /* 64 fields are fine, 65 are not. */
    for (int i = 0; i < 64; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%sk%d=v", i ? "&" : "", i);
    f = slack__form_fields(many, off);
    assert_non_null(f);
    assert_int_equal(cJSON_GetArraySize(f), 64);
    cJSON_Delete(f);
    off += (size_t)snprintf(many + off, sizeof(many) - off, "&k64=v");
    assert_null(slack__form_fields(many, off));
}

static void test_payload(void **state)
{
    static const char inter[] =
        "payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U3%22%7D%7D";
    enum ob_slack_frame type = OB_SLACK_OTHER;
    cJSON *root = NULL;

    (void)state;
    assert_int_equal(slack__form_payload(inter, strlen(inter), &type, &root), 0);
    assert_int_equal(type, OB_SLACK_INTERACTIVE);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "type")->valuestring,
                        "block_actions");
    cJSON_Delete(root);
    /* No usable payload: not an object, or neither payload nor command. */
    root = (cJSON *)1;
    assert_int_equal(slack__form_payload("payload=%5B1%5D", 15, &type, &root), OB_EINVAL);
    assert_null(root);
    assert_int_equal(slack__form_payload("payload=%7B", 11, &type, &root), OB_EINVAL);
    assert_int_equal(slack__form_payload("token=x&text=hi", 15, &type, &root), OB_EINVAL);
    assert_int_equal(slack__form_payload(NULL, 0, &type, &root), OB_EINVAL);
    assert_null(root);
    /* Not a form at all. */
    assert_int_equal(slack__form_payload("text=%zz&command=x", 18, &type, &root), OB_EPARSE);
    assert_null(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_raw_nul_refused),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_payload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
