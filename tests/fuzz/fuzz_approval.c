/* A persisted approval (the state store's JSON) through
 * ob_approval_from_json: whatever a damaged or hand-edited row holds,
 * loading never overruns a field, and what loads survives a round trip
 * (to_json -> from_json -> to_json gives the same text). The loaded
 * approval then takes a few votes as the pipeline would. */
#include "fuzz_common.h"
#include "opsbot/approval.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const emoji[] = {"white_check_mark", "x", "+1", "eyes", "✅", "deny"};
    struct ob_approval *ap = calloc(2, sizeof(*ap));
    char *json = fuzz_cstr(data, size);
    char why[300];

    if (!ap)
        abort();
    if (ob_approval_from_json(&ap[0], json) == 0) {
        char *one = ob_approval_to_json(&ap[0]), *two;

        if (!one || ob_approval_from_json(&ap[1], one) != 0)
            abort();
        two = ob_approval_to_json(&ap[1]);
        if (!two || strcmp(one, two))
            abort();
        free(one);
        free(two);
        if (ap[0].nvotes > OB_APPROVAL_MAX_VOTES || ap[0].nmsgs > OB_APPROVAL_MAX_MSGS ||
            ap[0].nparams > OB_MAX_PARAMS)
            abort();
        for (size_t i = 0; i < ap[0].nmsgs; i++)
            ob_approval_has_msg(&ap[0], ap[0].msgs[i].channel, ap[0].msgs[i].message);
        for (size_t i = 0; i < 6 && ap[0].state == OB_APPROVAL_PENDING; i++) {
            enum ob_vote v =
                ob_approval_vote(&ap[0], i % 2 ? ap[0].requester : "console:oncall", i < 3,
                                 emoji[i], ap[0].created_ms + 1, why, sizeof(why));

            if (v == OB_VOTE_COUNTED && ap[0].nvotes > (size_t)ap[0].needed)
                abort();
            ob_approval_unvote(&ap[0], "console:oncall", emoji[i]);
        }
        ob_approval_expire(&ap[0], ap[0].deadline_ms + 1);
        ob_approval_state_name(ap[0].state);
    }
    free(json);
    free(ap);
    return 0;
}
