/* Discord interactions over HTTP: "TIMESTAMP\nSIGNATURE-HEX\nBODY" through
 * ob_discord_verify_signature with a fixed Ed25519 key, plus an oracle:
 * the real signature of TIMESTAMP + BODY verifies, a flipped bit does not. */
#include <sodium.h>

#include "fuzz_common.h"
#include "opsbot/discord.h"
#include "opsbot/err.h"

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsigned char seed[crypto_sign_SEEDBYTES] = {1, 2, 3, 4, 5, 6, 7, 8};

    (void)argc;
    (void)argv;
    fuzz_quiet();
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, seed))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ts = fuzz_cstr(data, size);
    char *sig = fuzz_cut(ts, '\n');
    char *body = fuzz_cut(sig, '\n');
    size_t body_len = body ? size - (size_t)(body - ts) : 0;
    int rc = ob_discord_verify_signature(pk, sig, ts, body, body_len);

    if (rc != 0 && rc != OB_EPARSE && rc != OB_EDENIED && rc != OB_ENOMEM)
        abort();
    if (*ts && strlen(ts) <= 32 && body) {
        unsigned char *msg = malloc(strlen(ts) + body_len + 1), s[crypto_sign_BYTES];
        char hex[2 * crypto_sign_BYTES + 1];

        if (!msg)
            abort();
        memcpy(msg, ts, strlen(ts));
        memcpy(msg + strlen(ts), body, body_len);
        crypto_sign_detached(s, NULL, msg, strlen(ts) + body_len, sk);
        sodium_bin2hex(hex, sizeof(hex), s, sizeof(s));
        if (ob_discord_verify_signature(pk, hex, ts, body, body_len) != 0)
            abort();
        hex[0] = hex[0] == '0' ? '1' : '0';
        if (ob_discord_verify_signature(pk, hex, ts, body, body_len) != OB_EDENIED)
            abort();
        free(msg);
    }
    free(ts);
    return 0;
}
