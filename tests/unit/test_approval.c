#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opsbot/approval.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

static void init(struct ob_approval *ap, int needed, bool allow_self)
{
    memset(ap, 0, sizeof(*ap));
    strcpy(ap->id, "a-1");
    strcpy(ap->request_id, "r-1");
    strcpy(ap->requester, "console:dev");
    strcpy(ap->platform, "console");
    strcpy(ap->action, "restart");
    strcpy(ap->group, "oncall");
    strcpy(ap->rule, "prod-changes");
    ap->needed = needed;
    ap->allow_self = allow_self;
    ap->created_ms = 1000;
    ap->deadline_ms = 10000;
    ap->nmsgs = 1;
    strcpy(ap->msgs[0].channel, "ops");
    strcpy(ap->msgs[0].message, "m3");
}

static void test_emoji(void **state)
{
    (void)state;
    assert_int_equal(ob_approval_emoji("white_check_mark"), 1);
    assert_int_equal(ob_approval_emoji(":+1:"), 1);
    assert_int_equal(ob_approval_emoji("+1::skin-tone-3"), 1);
    assert_int_equal(ob_approval_emoji("\xe2\x9c\x85"), 1);
    assert_int_equal(ob_approval_emoji("x"), -1);
    assert_int_equal(ob_approval_emoji("no_entry"), -1);
    assert_int_equal(ob_approval_emoji("deny"), -1);
    assert_int_equal(ob_approval_emoji("tada"), 0);
    assert_int_equal(ob_approval_emoji(""), 0);
    assert_int_equal(ob_approval_emoji(NULL), 0);
}

static void test_single_grant(void **state)
{
    struct ob_approval ap;
    char why[256];

    (void)state;
    init(&ap, 1, false);
    assert_int_equal(ob_approval_vote(&ap, "console:oncall", true, "tada", 2000, why, sizeof(why)),
                     OB_VOTE_NONE);
    assert_int_equal(
        ob_approval_vote(&ap, "console:oncall", true, "white_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_GRANTED);
    assert_int_equal(ap.state, OB_APPROVAL_GRANTED);
    assert_string_equal(ap.decided_by, "console:oncall");
    /* Late votes are refused with a reason. */
    assert_int_equal(ob_approval_vote(&ap, "console:oncall2", true, "x", 2000, why, sizeof(why)),
                     OB_VOTE_REJECTED);
    assert_non_null(strstr(why, "already granted"));
}

static void test_self_and_stranger(void **state)
{
    struct ob_approval ap;
    char why[256];

    (void)state;
    init(&ap, 1, false);
    assert_int_equal(
        ob_approval_vote(&ap, "console:dev", true, "white_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_REJECTED);
    assert_non_null(strstr(why, "self-approval is off"));
    assert_int_equal(ap.state, OB_APPROVAL_PENDING);
    assert_int_equal(
        ob_approval_vote(&ap, "console:viewer", false, "white_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_REJECTED);
    assert_non_null(strstr(why, "not in the approver group 'oncall'"));
    /* A stranger's refusal does not end it either. */
    assert_int_equal(ob_approval_vote(&ap, "console:viewer", false, "x", 2000, why, sizeof(why)),
                     OB_VOTE_REJECTED);
    assert_int_equal(ap.state, OB_APPROVAL_PENDING);
    /* With allow_self an eligible requester may approve. */
    init(&ap, 1, true);
    assert_int_equal(
        ob_approval_vote(&ap, "console:dev", true, "white_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_GRANTED);
    /* ... but allow_self does not make an ineligible requester eligible. */
    init(&ap, 1, true);
    assert_int_equal(
        ob_approval_vote(&ap, "console:dev", false, "white_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_REJECTED);
}

static void test_requester_withdraws(void **state)
{
    struct ob_approval ap;
    char why[256];

    (void)state;
    init(&ap, 1, false);
    assert_int_equal(ob_approval_vote(&ap, "console:dev", false, "x", 2000, why, sizeof(why)),
                     OB_VOTE_REFUSED);
    assert_int_equal(ap.state, OB_APPROVAL_REFUSED);
}

static void test_n_of_m(void **state)
{
    struct ob_approval ap;
    char why[256];

    (void)state;
    init(&ap, 2, false);
    assert_int_equal(ob_approval_vote(&ap, "console:a", true, "+1", 2000, why, sizeof(why)),
                     OB_VOTE_COUNTED);
    assert_int_equal(ob_approval_vote(&ap, "console:a", true, "+1", 2000, why, sizeof(why)),
                     OB_VOTE_REJECTED);
    assert_non_null(strstr(why, "already approved"));
    /* Withdrawing takes the approval back. */
    assert_int_equal(ob_approval_unvote(&ap, "console:a", "+1"), OB_VOTE_WITHDRAWN);
    assert_int_equal(ap.nvotes, 0);
    assert_int_equal(ob_approval_unvote(&ap, "console:a", "+1"), OB_VOTE_NONE);
    assert_int_equal(ob_approval_vote(&ap, "console:a", true, "+1", 2000, why, sizeof(why)),
                     OB_VOTE_COUNTED);
    assert_int_equal(
        ob_approval_vote(&ap, "console:b", true, "heavy_check_mark", 2000, why, sizeof(why)),
        OB_VOTE_GRANTED);
    assert_int_equal(ap.nvotes, 2);
    /* Any eligible refusal ends it, even after approvals. */
    init(&ap, 2, false);
    assert_int_equal(ob_approval_vote(&ap, "console:a", true, "+1", 2000, why, sizeof(why)),
                     OB_VOTE_COUNTED);
    assert_int_equal(ob_approval_vote(&ap, "console:b", true, "-1", 2000, why, sizeof(why)),
                     OB_VOTE_REFUSED);
    assert_int_equal(ap.state, OB_APPROVAL_REFUSED);
    assert_string_equal(ap.decided_by, "console:b");
}

static void test_expiry(void **state)
{
    struct ob_approval ap;
    char why[256];

    (void)state;
    init(&ap, 1, false);
    assert_false(ob_approval_expire(&ap, 9999));
    assert_int_equal(ob_approval_vote(&ap, "console:oncall", true, "+1", 10000, why, sizeof(why)),
                     OB_VOTE_REJECTED);
    assert_non_null(strstr(why, "expired"));
    assert_true(ob_approval_expire(&ap, 10000));
    assert_int_equal(ap.state, OB_APPROVAL_EXPIRED);
    assert_false(ob_approval_expire(&ap, 20000));
}

static void test_msgs(void **state)
{
    struct ob_approval ap;

    (void)state;
    init(&ap, 1, false);
    assert_true(ob_approval_has_msg(&ap, "ops", "m3"));
    assert_true(ob_approval_has_msg(&ap, NULL, "m3"));
    assert_false(ob_approval_has_msg(&ap, "other", "m3"));
    assert_false(ob_approval_has_msg(&ap, "ops", "m4"));
    assert_false(ob_approval_has_msg(&ap, "ops", ""));
}

static void test_json_roundtrip(void **state)
{
    struct ob_approval ap, back;
    char why[256], *json;

    (void)state;
    init(&ap, 2, false);
    strcpy(ap.params[0].name, "service");
    strcpy(ap.params[0].value, "checkout");
    strcpy(ap.params[1].name, "env");
    strcpy(ap.params[1].value, "prod");
    ap.nparams = 2;
    ob_approval_vote(&ap, "console:a", true, "+1", 2000, why, sizeof(why));
    json = ob_approval_to_json(&ap);
    assert_non_null(json);
    assert_int_equal(ob_approval_from_json(&back, json), 0);
    free(json);
    assert_string_equal(back.id, "a-1");
    assert_string_equal(back.requester, "console:dev");
    assert_int_equal(back.needed, 2);
    assert_int_equal(back.nvotes, 1);
    assert_string_equal(back.votes[0], "console:a");
    assert_int_equal(back.nparams, 2);
    assert_string_equal(back.params[1].value, "prod");
    assert_int_equal(back.deadline_ms, 10000);
    assert_string_equal(back.msgs[0].message, "m3");
    assert_int_equal(back.state, OB_APPROVAL_PENDING);
    /* Damaged rows are refused, not half-loaded. */
    assert_int_equal(ob_approval_from_json(&back, "{"), OB_EJSON);
    assert_int_equal(ob_approval_from_json(&back, "{\"id\":\"a\"}"), OB_EJSON);
    assert_int_equal(ob_approval_from_json(&back, "[]"), OB_EJSON);
}

/* Fuzz finding (fuzz_approval): a number out of int64 range in a stored row
 * (1e308, or an overflowing literal cJSON reads as inf) was converted to
 * int64_t — undefined behaviour, caught by UBSan. It is refused now. */
static void test_json_huge_numbers(void **state)
{
    static const char *const keys[] = {"needed", "created_ms", "deadline_ms"};
    struct ob_approval ap, back;
    char *json, *bad, *at;

    (void)state;
    init(&ap, 1, false);
    json = ob_approval_to_json(&ap);
    assert_non_null(json);
    for (size_t k = 0; k < 3; k++) {
        static const char *const values[] = {"1e308", "-1e308", "1e999", "9.3e18"};

        for (size_t v = 0; v < 4; v++) {
            char key[32];
            size_t off;

            snprintf(key, sizeof(key), "\"%s\":", keys[k]);
            at = strstr(json, key);
            assert_non_null(at);
            off = (size_t)(at - json) + strlen(key);
            bad = malloc(strlen(json) + 32);
            assert_non_null(bad);
            /* replace the number after the key */
            memcpy(bad, json, off);
            strcpy(bad + off, values[v]);
            strcat(bad, json + off + strspn(json + off, "-0123456789.e"));
            assert_int_equal(ob_approval_from_json(&back, bad), OB_EJSON);
            free(bad);
        }
    }
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emoji),
        cmocka_unit_test(test_single_grant),
        cmocka_unit_test(test_self_and_stranger),
        cmocka_unit_test(test_requester_withdraws),
        cmocka_unit_test(test_n_of_m),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_msgs),
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_json_huge_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
