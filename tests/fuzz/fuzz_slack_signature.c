/* Slack HTTP Events mode signatures: "TIMESTAMP\nSIGNATURE\nBODY" through
 * ob_slack_verify_signature, plus an oracle: for a well-formed timestamp
 * the correct signature of BODY verifies and a one-bit change does not. */
#include <ctype.h>

#include <sodium.h>

#include "fuzz_common.h"
#include "opsbot/err.h"
#include "opsbot/slack.h"

#define SECRET "8f742231b10e8888abcd99yyyzzz85a5"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    if (sodium_init() < 0)
        abort();
    return 0;
}

static void sign(const char *ts, const char *body, size_t len, char out[72])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"v0:", 3);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)":", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "v0=", 3);
    sodium_bin2hex(out + 3, 72 - 3, mac, sizeof(mac));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    char *sig = fuzz_cut(in, '\n');
    char *body = fuzz_cut(sig, '\n');
    size_t body_len = body ? size - (size_t)(body - in) : 0;
    const int64_t now = 1700000000;
    bool digits = *in && strlen(in) <= 12;
    int rc;

    for (const char *p = in; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    rc = ob_slack_verify_signature(SECRET, strlen(SECRET), in, sig, body, body_len, now);
    if (rc != 0 && rc != OB_EPARSE && rc != OB_ETIMEOUT && rc != OB_EDENIED)
        abort();
    if (!sig && rc != OB_EPARSE)
        abort();
    if (digits) {
        char good[72];
        int64_t ts = strtoll(in, NULL, 10);

        sign(in, body ? body : "", body_len, good);
        if (ob_slack_verify_signature(SECRET, strlen(SECRET), in, good, body, body_len, ts) != 0)
            abort();
        good[3] = good[3] == '0' ? '1' : '0';
        if (ob_slack_verify_signature(SECRET, strlen(SECRET), in, good, body, body_len, ts) !=
            OB_EDENIED)
            abort();
        /* Far outside the 5-minute window. */
        if (ob_slack_verify_signature(SECRET, strlen(SECRET), in, good, body, body_len,
                                      ts + 3600) != OB_ETIMEOUT)
            abort();
    }
    free(in);
    return 0;
}
