/* The command grammar and the rule matcher on the shipped catalog:
 * "TEXT\nANSWER" — TEXT through ob_intent_parse; when a parameter is
 * missing, the question is built and ANSWER fills it (ob_intent_answer),
 * as a thread reply would. Results must hold only canonical, validated
 * values of catalog actions (fuzz_check_parse). */
#include "fuzz_common.h"

static struct fuzz_shipped S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    S = fuzz_load_shipped();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ob_parse_result *r = calloc(1, sizeof(*r));
    char *text = fuzz_cstr(data, size);
    char *answer = fuzz_cut(text, '\n');
    char buf[1024];

    if (!r)
        abort();
    ob_intent_parse(S.cat, text, r);
    fuzz_check_parse(S.cat, r);
    for (size_t i = 0; i < r->n && r->status == OB_PARSE_OK; i++)
        ob_proposal_format(&r->proposals[i], buf, sizeof(buf));
    if (r->status == OB_PARSE_ASK && answer) {
        struct ob_parse_result *a = calloc(1, sizeof(*a));
        enum ob_parse_status st;

        if (!a)
            abort();
        ob_intent_question(&r->proposals[0], buf, sizeof(buf));
        a->proposals[0] = r->proposals[0];
        a->n = 1;
        st = ob_intent_answer(&a->proposals[0], answer, a->message, sizeof(a->message));
        if (st != OB_PARSE_OK && st != OB_PARSE_ASK && st != OB_PARSE_INVALID)
            abort();
        a->status = st;
        fuzz_check_parse(S.cat, a);
        free(a);
    }
    free(text);
    free(r);
    return 0;
}
