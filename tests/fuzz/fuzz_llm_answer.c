/* The LLM's chat-completion body through ob_llm_answer_parse against the
 * shipped catalog: whatever the model (or a man in the middle) answers,
 * only validated proposals come out and shown text is tamed. */
#include "fuzz_common.h"
#include "opsbot/llm.h"
#include "opsbot/util.h"

static struct fuzz_shipped S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    S = fuzz_load_shipped();
    return 0;
}

/* Text shown to people: valid UTF-8, one line, capped. */
static void check_shown(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    if (n == cap || !ob_utf8_valid(s, n))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ob_llm_result *r = calloc(1, sizeof(*r));

    if (!r)
        abort();
    ob_llm_answer_parse(S.cat, (const char *)data, size, r);
    if (r->outcome == OB_LLM_PROPOSAL)
        fuzz_check_parse(S.cat, &r->parse);
    if (r->outcome == OB_LLM_CLARIFY || r->outcome == OB_LLM_NO_ACTION)
        check_shown(r->text, sizeof(r->text));
    check_shown(r->tool, sizeof(r->tool));
    if (r->tokens_in < 0 || r->tokens_out < 0)
        abort();
    free(r);
    return 0;
}
