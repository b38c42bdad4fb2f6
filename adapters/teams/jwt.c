/* Bot Framework inbound authentication, the pure part: base64url, JWT
 * splitting, claim checks, the OpenID metadata / JWKS documents, the key
 * refresh policy and RS256 verification with OpenSSL (libsodium has no
 * RSA). No loop, no network, no logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "opsbot/err.h"
#include "opsbot/teams.h"
#include "opsbot/util.h"

#define DOC_MAX (512 * 1024)
#define MOD_MAX 1024 /* bytes of an RSA modulus (8192 bits) */

/* ---- base64url ------------------------------------------------------------- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int ob_teams_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                           size_t *outlen)
{
    uint32_t acc = 0;
    size_t o = 0, bits = 0;

    *outlen = 0;
    while (len && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return OB_EPARSE;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return OB_E2BIG;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);

        if (v < 0)
            return OB_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* The unused low bits of the last character must be zero. */
    if (bits && (acc & ((1u << bits) - 1)))
        return OB_EPARSE;
    *outlen = o;
    return 0;
}

/* Decodes a base64url JSON object into a cJSON tree (NULL on failure). */
static cJSON *b64_json(const char *in, size_t len, int *err)
{
    unsigned char *buf;
    size_t n = 0;
    cJSON *o;
    int rc;

    buf = malloc(len + 1);
    if (!buf) {
        *err = OB_ENOMEM;
        return NULL;
    }
    rc = ob_teams_b64url_decode(in, len, buf, len, &n);
    if (rc) {
        free(buf);
        *err = rc;
        return NULL;
    }
    o = cJSON_ParseWithLength((const char *)buf, n);
    free(buf);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        *err = OB_EJSON;
        return NULL;
    }
    return o;
}

/* ---- JWT ------------------------------------------------------------------------ */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int ob_teams_jwt_parse(const char *token, size_t len, struct ob_teams_jwt *out, char *err,
                       size_t errlen)
{
    const char *d1, *d2;
    const char *alg, *kid;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (errlen)
        err[0] = '\0';
    if (!token || !len) {
        snprintf(err, errlen, "empty token");
        return OB_EPARSE;
    }
    if (len > OB_TEAMS_TOKEN_MAX) {
        snprintf(err, errlen, "token longer than %d bytes", OB_TEAMS_TOKEN_MAX);
        return OB_E2BIG;
    }
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        snprintf(err, errlen, "not a JWT (expected three dot-separated parts)");
        return OB_EPARSE;
    }
    out->header = b64_json(token, (size_t)(d1 - token), &rc);
    if (!out->header) {
        snprintf(err, errlen, "malformed JWT header");
        return rc;
    }
    out->claims = b64_json(d1 + 1, (size_t)(d2 - d1 - 1), &rc);
    if (!out->claims) {
        snprintf(err, errlen, "malformed JWT payload");
        return rc;
    }
    rc = ob_teams_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), out->sig, sizeof(out->sig),
                                &out->sig_len);
    if (rc || !out->sig_len) {
        snprintf(err, errlen, "malformed JWT signature");
        return rc ? rc : OB_EPARSE;
    }
    out->signed_len = (size_t)(d2 - token);
    alg = jstr(out->header, "alg");
    kid = jstr(out->header, "kid");
    if (!alg || strlen(alg) >= sizeof(out->alg)) {
        snprintf(err, errlen, "JWT header without a usable alg");
        return OB_EPARSE;
    }
    ob_strlcpy(out->alg, alg, sizeof(out->alg));
    if (kid && strlen(kid) < sizeof(out->kid))
        ob_strlcpy(out->kid, kid, sizeof(out->kid));
    return 0;
}

void ob_teams_jwt_release(struct ob_teams_jwt *t)
{
    if (!t)
        return;
    cJSON_Delete(t->header);
    cJSON_Delete(t->claims);
    t->header = t->claims = NULL;
}

static int deny(char *why, size_t len, const char *fmt, const char *a)
{
    snprintf(why, len, fmt, a ? a : "");
    return OB_EDENIED;
}

static bool alg_ok(const char *alg)
{
    return !strcmp(alg, "RS256") || !strcmp(alg, "RS384") || !strcmp(alg, "RS512");
}

int ob_teams_jwt_check_claims(const struct ob_teams_jwt *t, const struct ob_teams_expect *x,
                              int64_t now_s, char *why, size_t whylen)
{
    const cJSON *aud, *exp, *nbf, *it;
    const char *iss, *surl;
    bool aud_ok = false;

    if (whylen)
        why[0] = '\0';
    if (!alg_ok(t->alg))
        return deny(why, whylen, "signing algorithm %.16s is not allowed (RS256 expected)", t->alg);
    if (!t->kid[0])
        return deny(why, whylen, "no key id (kid) in the token header%s", NULL);
    iss = jstr(t->claims, "iss");
    if (!iss || !x->issuer || strcmp(iss, x->issuer))
        return deny(why, whylen, "wrong issuer (iss \"%.80s\")", iss ? iss : "missing");
    aud = cJSON_GetObjectItemCaseSensitive(t->claims, "aud");
    if (cJSON_IsString(aud))
        aud_ok = x->audience && !strcmp(aud->valuestring, x->audience);
    cJSON_ArrayForEach(it, (cJSON_IsArray(aud) ? aud : NULL))
    {
        if (cJSON_IsString(it) && x->audience && !strcmp(it->valuestring, x->audience))
            aud_ok = true;
    }
    if (!aud_ok)
        return deny(why, whylen, "wrong audience (aud is not this bot's app id)%s", NULL);
    exp = cJSON_GetObjectItemCaseSensitive(t->claims, "exp");
    if (!cJSON_IsNumber(exp))
        return deny(why, whylen, "no expiry (exp) in the token%s", NULL);
    if ((double)now_s > exp->valuedouble + (double)x->skew_s)
        return deny(why, whylen, "token expired%s", NULL);
    nbf = cJSON_GetObjectItemCaseSensitive(t->claims, "nbf");
    if (nbf && !cJSON_IsNumber(nbf))
        return deny(why, whylen, "malformed nbf claim%s", NULL);
    if (nbf && nbf->valuedouble > (double)(now_s + x->skew_s))
        return deny(why, whylen, "token not valid yet (nbf in the future)%s", NULL);
    if (x->service_url) {
        surl = jstr(t->claims, "serviceurl");
        if (!surl)
            surl = jstr(t->claims, "serviceUrl");
        if (!surl || strcmp(surl, x->service_url))
            return deny(why, whylen, "serviceurl claim does not match the activity's serviceUrl%s",
                        NULL);
    }
    return 0;
}

/* ---- keys -------------------------------------------------------------------------- */

const struct ob_teams_key *ob_teams_keys_find(const struct ob_teams_keys *k, const char *kid)
{
    if (!kid || !*kid)
        return NULL;
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->keys[i].kid, kid))
            return &k->keys[i];
    return NULL;
}

enum ob_teams_keys_step ob_teams_keys_decide(const struct ob_teams_keys *k, const char *kid,
                                             int64_t now_ms)
{
    const struct ob_teams_key *key = ob_teams_keys_find(k, kid);
    bool attempted_recently = k->attempt_ms && now_ms - k->attempt_ms < OB_TEAMS_EMPTY_RETRY_MS;

    if (!k->n || !k->fetched_ms)
        return attempted_recently ? OB_TEAMS_KEYS_UNAVAILABLE : OB_TEAMS_KEYS_FETCH;
    if (now_ms - k->fetched_ms >= OB_TEAMS_KEYS_TTL_MS) {
        /* Stale: refresh, but keep using a known key while a recent
         * refresh attempt failed. */
        if (attempted_recently && k->attempt_ms > k->fetched_ms)
            return key ? OB_TEAMS_KEYS_USE : OB_TEAMS_KEYS_UNKNOWN_KID;
        return OB_TEAMS_KEYS_FETCH;
    }
    if (key)
        return OB_TEAMS_KEYS_USE;
    if (!k->attempt_ms || now_ms - k->attempt_ms >= OB_TEAMS_KID_REFETCH_MS)
        return OB_TEAMS_KEYS_FETCH;
    return OB_TEAMS_KEYS_UNKNOWN_KID;
}

int ob_teams_openid_jwks_uri(const char *json, size_t len, char *out, size_t outlen)
{
    cJSON *o;
    const char *u;
    int rc = 0;

    if (!json || len > DOC_MAX)
        return OB_E2BIG;
    o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return OB_EJSON;
    }
    u = jstr(o, "jwks_uri");
    if (!u || (strncmp(u, "https://", 8) && strncmp(u, "http://", 7)))
        rc = OB_EPARSE;
    else if (strlen(u) >= outlen)
        rc = OB_E2BIG;
    else
        ob_strlcpy(out, u, outlen);
    cJSON_Delete(o);
    return rc;
}

static void key_release(struct ob_teams_key *k)
{
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

void ob_teams_keys_release(struct ob_teams_keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        key_release(&k->keys[i]);
    k->n = 0;
}

/* An RSA public key from the JWK's modulus and exponent (OpenSSL 3). */
static EVP_PKEY *rsa_from_ne(const char *n64, const char *e64)
{
    unsigned char n[MOD_MAX], e[16];
    size_t nl = 0, el = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (ob_teams_b64url_decode(n64, strlen(n64), n, sizeof(n), &nl) ||
        ob_teams_b64url_decode(e64, strlen(e64), e, sizeof(e), &el) || nl < 128 || !el)
        return NULL;
    bn = BN_bin2bn(n, (int)nl, NULL);
    be = BN_bin2bn(e, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

int ob_teams_jwks_parse(const char *json, size_t len, struct ob_teams_keys *out)
{
    struct ob_teams_keys tmp;
    const cJSON *keys, *k;
    cJSON *o;

    if (!json || len > DOC_MAX)
        return OB_EPARSE;
    o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return OB_EJSON;
    }
    memset(&tmp, 0, sizeof(tmp));
    keys = cJSON_GetObjectItemCaseSensitive(o, "keys");
    cJSON_ArrayForEach(k, (cJSON_IsArray(keys) ? keys : NULL))
    {
        const char *kty = jstr(k, "kty"), *kid = jstr(k, "kid"), *use = jstr(k, "use");
        const char *n = jstr(k, "n"), *e = jstr(k, "e");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(k, "endorsements"), *it;
        struct ob_teams_key *key;

        if (tmp.n == OB_TEAMS_MAX_KEYS)
            break;
        if (!kty || strcmp(kty, "RSA") || !kid || !*kid || strlen(kid) >= OB_TEAMS_KID_MAX ||
            (use && strcmp(use, "sig")) || !n || !e)
            continue;
        key = &tmp.keys[tmp.n];
        key->pkey = rsa_from_ne(n, e);
        if (!key->pkey)
            continue;
        ob_strlcpy(key->kid, kid, sizeof(key->kid));
        key->has_endorsements = cJSON_IsArray(end);
        cJSON_ArrayForEach(it, (cJSON_IsArray(end) ? end : NULL))
        {
            if (cJSON_IsString(it) && key->nendorse < OB_TEAMS_MAX_ENDORSE &&
                strlen(it->valuestring) < sizeof(key->endorsements[0]))
                ob_strlcpy(key->endorsements[key->nendorse++], it->valuestring,
                           sizeof(key->endorsements[0]));
        }
        tmp.n++;
    }
    cJSON_Delete(o);
    if (!tmp.n)
        return OB_EPARSE;
    ob_teams_keys_release(out);
    memcpy(out->keys, tmp.keys, sizeof(tmp.keys));
    out->n = tmp.n;
    return (int)tmp.n;
}

int ob_teams_jwt_verify_sig(const struct ob_teams_jwt *t, const char *token,
                            const struct ob_teams_key *key)
{
    const EVP_MD *md = !strcmp(t->alg, "RS256")   ? EVP_sha256()
                       : !strcmp(t->alg, "RS384") ? EVP_sha384()
                       : !strcmp(t->alg, "RS512") ? EVP_sha512()
                                                  : NULL;
    EVP_MD_CTX *ctx;
    int ok;

    if (!md || !key || !key->pkey || !token)
        return OB_EDENIED;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return OB_ENOMEM;
    ok =
        EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
        EVP_DigestVerify(ctx, t->sig, t->sig_len, (const unsigned char *)token, t->signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : OB_EDENIED;
}

bool ob_teams_key_endorses(const struct ob_teams_key *key, const char *channel_id)
{
    if (!key->has_endorsements)
        return true;
    if (!channel_id || !*channel_id)
        return false;
    for (size_t i = 0; i < key->nendorse; i++)
        if (!strcmp(key->endorsements[i], channel_id))
            return true;
    return false;
}
