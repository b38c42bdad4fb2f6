/* Redaction: the built-in patterns plus the demo's operator pattern over
 * arbitrary bytes (ob_redact_apply), and over its own output. Oracle: a
 * known secret planted in the input never survives. (Redacting twice may
 * mask a little more: a mask can turn a glued "xpassword=v" into a word
 * boundary; that is not a contract, so it is not checked.) */
#include "fuzz_common.h"
#include "opsbot/redact.h"

static struct ob_redact *R;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ob_diag d;
    cJSON *extra = cJSON_Parse("[\"demo-secret-[0-9a-f]{8,}\"]");

    (void)argc;
    (void)argv;
    fuzz_quiet();
    ob_diag_init(&d);
    if (ob_redact_new(&R, NULL, extra, &d))
        abort();
    ob_diag_release(&d);
    cJSON_Delete(extra);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = " xoxb-123456789012-abcdefABCDEF123456 ";
    char *once, *twice, *planted;
    size_t n;

    once = ob_redact_apply(R, (const char *)data, size);
    if (!once)
        abort();
    n = strlen(once);
    twice = ob_redact_apply(R, once, n);
    if (!twice)
        abort();
    free(twice);
    free(once);
    /* The input with a Slack token in the middle. */
    planted = malloc(size + sizeof(secret));
    if (!planted)
        abort();
    memcpy(planted, data, size / 2);
    memcpy(planted + size / 2, secret, sizeof(secret) - 1);
    memcpy(planted + size / 2 + sizeof(secret) - 1, data + size / 2, size - size / 2);
    once = ob_redact_apply(R, planted, size + sizeof(secret) - 1);
    if (!once || (strstr(once, "abcdefABCDEF123456") &&
                  !memmem(data, size, "abcdefABCDEF123456", 18) && !memchr(data, 0, size)))
        abort();
    free(once);
    free(planted);
    return 0;
}
