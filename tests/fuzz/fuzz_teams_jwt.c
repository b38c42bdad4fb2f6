/* Teams inbound auth: "TOKEN\nJWKS" — the bearer token through
 * ob_teams_jwt_parse and ob_teams_jwt_check_claims (at a few instants),
 * the JWKS document (when present) through ob_teams_jwks_parse and
 * ob_teams_openid_jwks_uri, and the token's signature through
 * ob_teams_jwt_verify_sig with whatever key its kid finds there (RSA keys
 * from fuzzed n and e included). Nothing fuzzed verifies by accident: a
 * token that checks out must carry a signature made with a key we do not
 * have, so verification must always fail. */
#include "fuzz_common.h"
#include "opsbot/err.h"
#include "opsbot/teams.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t instants[] = {0, 1800000000, 4102444800};
    const struct ob_teams_expect x = {"https://api.botframework.com", "app-1",
                                      "https://smba.example/", 300};
    char *token = fuzz_cstr(data, size);
    char *jwks = fuzz_cut(token, '\n');
    struct ob_teams_keys *keys = calloc(1, sizeof(*keys));
    struct ob_teams_jwt t;
    unsigned char raw[512];
    char err[160], why[200], uri[256];
    size_t rawlen;
    int rc;

    if (!keys)
        abort();
    ob_teams_b64url_decode(token, strlen(token), raw, sizeof(raw), &rawlen);
    rc = ob_teams_jwt_parse(token, strlen(token), &t, err, sizeof(err));
    if (rc == 0) {
        if (t.signed_len > strlen(token) || t.sig_len > sizeof(t.sig))
            abort();
        for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
            int c = ob_teams_jwt_check_claims(&t, &x, instants[i], why, sizeof(why));

            if (c != 0 && c != OB_EDENIED)
                abort();
        }
    } else if (strnlen(err, sizeof(err)) == sizeof(err) || !err[0]) {
        abort();
    }
    if (jwks) {
        ob_teams_openid_jwks_uri(jwks, strlen(jwks), uri, sizeof(uri));
        if (ob_teams_jwks_parse(jwks, strlen(jwks), keys) > 0) {
            const struct ob_teams_key *k = ob_teams_keys_find(keys, rc == 0 ? t.kid : "");

            ob_teams_keys_decide(keys, rc == 0 ? t.kid : "", 1800000000000LL);
            if (k && rc == 0 && ob_teams_jwt_verify_sig(&t, token, k) == 0)
                abort(); /* a fuzzed RSA signature that verifies: worth a look */
            if (k)
                ob_teams_key_endorses(k, "msteams");
        }
    }
    ob_teams_jwt_release(&t);
    ob_teams_keys_release(keys);
    free(keys);
    free(token);
    return 0;
}
