/* One tool call as the model sends it: "NAME\nARGUMENTS-JSON" through
 * ob_llm_tool_call against the shipped catalog. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ob_llm_result *r = calloc(1, sizeof(*r));
    char *name = fuzz_cstr(data, size);
    char *args = fuzz_cut(name, '\n');

    if (!r)
        abort();
    ob_llm_tool_call(S.cat, name, args, r);
    if (r->outcome == OB_LLM_PROPOSAL)
        fuzz_check_parse(S.cat, &r->parse);
    if (r->outcome == OB_LLM_CLARIFY && !ob_utf8_valid(r->text, strnlen(r->text, sizeof(r->text))))
        abort();
    free(r);
    free(name);
    return 0;
}
