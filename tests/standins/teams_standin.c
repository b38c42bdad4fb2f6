/* The local Bot Framework: see teams_standin.h. Shapes follow
 * ../shared/protocols.md part C (Entra token, OpenID metadata / JWKS,
 * Connector v3 activities). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "opsbot/http.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "standin_wait.h"
#include "teams_standin.h"

#define MAX_KEYS 4
#define MAX_TOKENS 64

enum { K_MAIN, K_WEBCHAT, K_UNKNOWN, K_ROTATED };

struct skey {
    EVP_PKEY *pkey;
    char kid[32];
    const char *endorse; /* one endorsement */
    bool published;
};

struct stoken {
    char value[64];
    int64_t exp_ms;
    bool revoked;
};

struct teams_standin {
    uv_loop_t *loop;
    struct ob_lws *lws;
    struct ob_http_server *srv;
    struct ob_http *http;
    int port;
    char service_url[80], token_url[120], openid_url[120];
    char app_id[128], secret[256];
    int64_t expires_in;
    struct standin_waiter waiter;
    bool freeing;
    int handles;

    struct skey keys[MAX_KEYS];
    int signing; /* the key that signs "OK" activities */

    struct stoken tokens[MAX_TOKENS];
    size_t ntokens;
    size_t token_reqs, openid_reqs, jwks_reqs, bad_bearers;
    char token_tenant[128];
    struct {
        int status, n;
        char error[64];
        long aadsts;
    } tfail;
    struct {
        int status, n, retry_after;
    } cfail;

    struct teams_call *calls;
    size_t ncalls, cap;
    unsigned seq;
};

static const char *const sign_names[] = {
    "ok",
    "bad signature",
    "wrong audience",
    "expired",
    "wrong issuer",
    "no endorsement",
    "wrong serviceurl",
    "unknown kid",
    "no header",
    "basic",
    "hs256",
    "not yet valid",
};

const char *teams_sign_name(enum teams_sign m)
{
    return (unsigned)m < TEAMS_SIGN_COUNT ? sign_names[m] : "?";
}

/* ---- base64url -------------------------------------------------------------------- */

static char *b64url(const unsigned char *in, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len * 4 / 3 + 4);
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

/* ---- keys and JWTs ----------------------------------------------------------------- */

static char *bn_param_b64(EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    char *out;

    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        return NULL;
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    out = b64url(buf, (size_t)n);
    return out;
}

char *teams_standin_jwks(struct teams_standin *s)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "keys");
    char *out;

    for (int i = 0; i < MAX_KEYS; i++) {
        struct skey *k = &s->keys[i];
        cJSON *j;
        char *n, *e;

        if (!k->published || !k->pkey)
            continue;
        n = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N);
        e = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E);
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "kty", "RSA");
        cJSON_AddStringToObject(j, "use", "sig");
        cJSON_AddStringToObject(j, "kid", k->kid);
        cJSON_AddStringToObject(j, "x5t", k->kid);
        cJSON_AddStringToObject(j, "n", n ? n : "");
        cJSON_AddStringToObject(j, "e", e ? e : "");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(j, "endorsements"),
                             cJSON_CreateString(k->endorse));
        cJSON_AddItemToArray(arr, j);
        free(n);
        free(e);
    }
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static char *sign_with(EVP_PKEY *pkey, const char *alg, const char *kid, const char *claims,
                       bool corrupt)
{
    char *header = NULL, *h64, *c64, *input = NULL, *sig64, *out = NULL;
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx;

    if (asprintf(&header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"x5t\":\"%s\",\"typ\":\"JWT\"}", alg,
                 kid, kid) < 0)
        return NULL;
    h64 = b64url_str(header);
    c64 = b64url_str(claims);
    free(header);
    if (asprintf(&input, "%s.%s", h64, c64) < 0)
        input = NULL;
    free(h64);
    free(c64);
    if (!input)
        return NULL;
    if (!strcmp(alg, "HS256")) {
        unsigned int l = 0;

        HMAC(EVP_sha256(), "not-a-key", 9, (const unsigned char *)input, strlen(input), sig, &l);
        siglen = l;
    } else {
        ctx = EVP_MD_CTX_new();
        if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
            EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
            siglen = 0;
        EVP_MD_CTX_free(ctx);
    }
    if (corrupt && siglen)
        sig[siglen / 2] ^= 0x40;
    sig64 = b64url(sig, siglen);
    if (asprintf(&out, "%s.%s", input, sig64) < 0)
        out = NULL;
    free(sig64);
    free(input);
    return out;
}

char *teams_standin_sign_jwt(struct teams_standin *s, const char *kid, const char *claims_json)
{
    return sign_with(s->keys[K_MAIN].pkey, "RS256", kid, claims_json, false);
}

/* The Bot Framework's token for an activity with serviceUrl surl. */
static char *activity_token(struct teams_standin *s, const char *surl, enum teams_sign m)
{
    int64_t now = ob_now_ms() / 1000;
    int key = m == TEAMS_SIGN_NO_ENDORSEMENT ? K_WEBCHAT
              : m == TEAMS_SIGN_UNKNOWN_KID  ? K_UNKNOWN
                                             : s->signing;
    char *claims = NULL, *tok;

    if (asprintf(&claims,
                 "{\"serviceurl\":\"%s\",\"nbf\":%lld,\"exp\":%lld,\"iss\":\"%s\",\"aud\":\"%s\"}",
                 m == TEAMS_SIGN_WRONG_SERVICEURL ? "https://evil.example.com/" : surl,
                 (long long)(m == TEAMS_SIGN_NOT_YET_VALID ? now + 900 : now - 60),
                 (long long)(m == TEAMS_SIGN_EXPIRED ? now - 600 : now + 3600),
                 m == TEAMS_SIGN_WRONG_ISSUER ? "https://sts.windows.net/evil/"
                                              : "https://api.botframework.com",
                 m == TEAMS_SIGN_WRONG_AUDIENCE ? "11111111-2222-3333-4444-555555555555"
                                                : s->app_id) < 0)
        return NULL;
    tok = sign_with(s->keys[key].pkey, m == TEAMS_SIGN_HS256 ? "HS256" : "RS256", s->keys[key].kid,
                    claims, m == TEAMS_SIGN_BAD_SIGNATURE);
    free(claims);
    return tok;
}

/* ---- the server --------------------------------------------------------------------- */

static void reply_json(struct ob_http_exchange *ex, int status, cJSON *o, const char *const *hdrs)
{
    char *s = cJSON_PrintUnformatted(o);

    ob_http_reply(ex, status, "application/json; charset=utf-8", s, strlen(s), hdrs);
    free(s);
    cJSON_Delete(o);
}

/* Value of a form field (decoded, malloc'd) or NULL. */
static char *form_get(const char *body, size_t len, const char *key)
{
    size_t kl = strlen(key), i = 0;

    while (i < len) {
        size_t end = i;

        while (end < len && body[end] != '&')
            end++;
        if (end - i > kl && !strncmp(body + i, key, kl) && body[i + kl] == '=') {
            char *out = malloc(end - i);
            size_t o = 0;

            for (size_t j = i + kl + 1; j < end; j++) {
                if (body[j] == '+')
                    out[o++] = ' ';
                else if (body[j] == '%' && j + 2 < end && ob_hexval(body[j + 1]) >= 0 &&
                         ob_hexval(body[j + 2]) >= 0) {
                    out[o++] = (char)(ob_hexval(body[j + 1]) * 16 + ob_hexval(body[j + 2]));
                    j += 2;
                } else
                    out[o++] = body[j];
            }
            out[o] = '\0';
            return out;
        }
        i = end + 1;
    }
    return NULL;
}

static void token_endpoint(struct teams_standin *s, struct ob_http_exchange *ex,
                           const struct ob_http_srv_req *req)
{
    char *grant = form_get(req->body, req->body_len, "grant_type");
    char *id = form_get(req->body, req->body_len, "client_id");
    char *secret = form_get(req->body, req->body_len, "client_secret");
    char *scope = form_get(req->body, req->body_len, "scope");
    const char *slash = strchr(req->path + 1, '/');
    cJSON *o = cJSON_CreateObject();

    s->token_reqs++;
    snprintf(s->token_tenant, sizeof(s->token_tenant), "%.*s",
             slash ? (int)(slash - req->path - 1) : 0, req->path + 1);
    if (s->tfail.n > 0) {
        char desc[200];
        cJSON *codes = cJSON_AddArrayToObject(o, "error_codes");

        s->tfail.n--;
        snprintf(desc, sizeof(desc), "AADSTS%ld: the stand-in says no. Trace ID: 0000",
                 s->tfail.aadsts);
        cJSON_AddStringToObject(o, "error", s->tfail.error);
        cJSON_AddStringToObject(o, "error_description", desc);
        cJSON_AddItemToArray(codes, cJSON_CreateNumber((double)s->tfail.aadsts));
        reply_json(ex, s->tfail.status, o, NULL);
        goto out;
    }
    if (!grant || strcmp(grant, "client_credentials") || !scope ||
        strcmp(scope, "https://api.botframework.com/.default")) {
        cJSON_AddStringToObject(o, "error", "invalid_request");
        cJSON_AddStringToObject(o, "error_description", "AADSTS900144: bad request");
        reply_json(ex, 400, o, NULL);
        goto out;
    }
    if (!id || strcmp(id, s->app_id)) {
        cJSON_AddStringToObject(o, "error", "unauthorized_client");
        cJSON_AddStringToObject(o, "error_description",
                                "AADSTS700016: Application with identifier was not found in the "
                                "directory.");
        reply_json(ex, 400, o, NULL);
        goto out;
    }
    if (!secret || strcmp(secret, s->secret)) {
        cJSON_AddStringToObject(o, "error", "invalid_client");
        cJSON_AddStringToObject(o, "error_description",
                                "AADSTS7000215: Invalid client secret provided.");
        reply_json(ex, 401, o, NULL);
        goto out;
    }
    {
        struct stoken *t = &s->tokens[s->ntokens++ % MAX_TOKENS];

        snprintf(t->value, sizeof(t->value), "eyJ.standin-token-%zu", s->ntokens);
        t->exp_ms = ob_now_ms() + s->expires_in * 1000;
        t->revoked = false;
        cJSON_AddStringToObject(o, "token_type", "Bearer");
        cJSON_AddNumberToObject(o, "expires_in", (double)s->expires_in);
        cJSON_AddNumberToObject(o, "ext_expires_in", (double)s->expires_in);
        cJSON_AddStringToObject(o, "access_token", t->value);
        reply_json(ex, 200, o, NULL);
    }
out:
    free(grant);
    free(id);
    free(secret);
    free(scope);
}

static bool bearer_ok(struct teams_standin *s, const char *auth)
{
    int64_t now = ob_now_ms();

    if (!auth || strncmp(auth, "Bearer ", 7))
        return false;
    for (size_t i = 0; i < MAX_TOKENS; i++)
        if (s->tokens[i].value[0] && !strcmp(s->tokens[i].value, auth + 7))
            return !s->tokens[i].revoked && now < s->tokens[i].exp_ms;
    return false;
}

static struct teams_call *call_new(struct teams_standin *s)
{
    struct teams_call *c;

    if (s->ncalls == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->calls = realloc(s->calls, s->cap * sizeof(*s->calls));
    }
    c = &s->calls[s->ncalls++];
    memset(c, 0, sizeof(*c));
    c->at_ms = ob_now_ms();
    return c;
}

/* Teams "xml" text back to plain text. */
static char *plain_of(const char *x)
{
    static const char *const from[] = {"<br>", "&lt;", "&gt;", "&quot;", "&amp;", NULL};
    static const char to[] = {'\n', '<', '>', '"', '&'};
    char *out = malloc(strlen(x) + 1);
    size_t o = 0;

    while (*x) {
        int k;

        for (k = 0; from[k]; k++)
            if (!strncmp(x, from[k], strlen(from[k])))
                break;
        if (from[k]) {
            out[o++] = to[k];
            x += strlen(from[k]);
        } else {
            out[o++] = *x++;
        }
    }
    out[o] = '\0';
    return out;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void note_card(struct teams_call *c, const cJSON *card)
{
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(card, "body"), *b;
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(card, "actions"), *a;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    bool approve = false, deny = false;

    c->has_card = true;
    cJSON_ArrayForEach(b, body)
    {
        if (jstr(b, "text"))
            fprintf(f, "%s%s", len || ftell(f) ? "\n" : "", jstr(b, "text"));
    }
    fclose(f);
    c->text = text;
    cJSON_ArrayForEach(a, actions)
    {
        const cJSON *fb = cJSON_GetObjectItemCaseSensitive(a, "fallback");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(a, "data");
        const char *verb = jstr(a, "verb");

        if (!jstr(a, "type") || strcmp(jstr(a, "type"), "Action.Execute") || !verb ||
            !jstr(fb, "type") || strcmp(jstr(fb, "type"), "Action.Submit") || !jstr(data, "verb") ||
            strcmp(jstr(data, "verb"), verb))
            continue;
        if (!strcmp(verb, "approve"))
            approve = true;
        if (!strcmp(verb, "deny"))
            deny = true;
        if (jstr(data, "ref"))
            ob_strlcpy(c->card_ref, jstr(data, "ref"), sizeof(c->card_ref));
    }
    c->has_buttons = approve && deny;
}

static void connector(struct teams_standin *s, struct ob_http_exchange *ex,
                      const struct ob_http_srv_req *req)
{
    const char *p = req->path + strlen("/amer/v3/conversations/");
    const char *act = NULL, *auth = ob_http_srv_header(req, "Authorization");
    struct teams_call *c = call_new(s);
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len), *o;
    const cJSON *atts, *ents;

    for (const char *q = strstr(p, "/activities"); q; q = strstr(q + 1, "/activities"))
        act = q;
    ob_strlcpy(c->method, req->method, sizeof(c->method));
    if (auth && strlen(auth) > 7)
        ob_strlcpy(c->token, auth + 7, sizeof(c->token));
    if (!act) {
        c->status = 404;
        c->text = strdup("");
        cJSON_Delete(body);
        ob_http_reply(ex, 404, "text/plain", "no route\n", 9, NULL);
        return;
    }
    snprintf(c->conversation, sizeof(c->conversation), "%.*s", (int)(act - p), p);
    if (act[strlen("/activities")] == '/')
        ob_strlcpy(c->target, act + strlen("/activities/"), sizeof(c->target));
    if (jstr(body, "replyToId"))
        ob_strlcpy(c->reply_to, jstr(body, "replyToId"), sizeof(c->reply_to));
    atts = cJSON_GetObjectItemCaseSensitive(body, "attachments");
    if (cJSON_IsArray(atts) && cJSON_GetArraySize(atts) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(atts, 0);

        if (jstr(a0, "contentType") &&
            !strcmp(jstr(a0, "contentType"), "application/vnd.microsoft.card.adaptive"))
            note_card(c, cJSON_GetObjectItemCaseSensitive(a0, "content"));
    }
    if (!c->text)
        c->text = plain_of(jstr(body, "text") ? jstr(body, "text") : "");
    ents = cJSON_GetObjectItemCaseSensitive(body, "entities");
    if (cJSON_IsArray(ents) && cJSON_GetArraySize(ents) > 0) {
        const cJSON *e = cJSON_GetArrayItem(ents, 0);

        if (jstr(e, "type") && !strcmp(jstr(e, "type"), "mention")) {
            ob_strlcpy(c->mention_id,
                       jstr(cJSON_GetObjectItemCaseSensitive(e, "mentioned"), "id")
                           ? jstr(cJSON_GetObjectItemCaseSensitive(e, "mentioned"), "id")
                           : "",
                       sizeof(c->mention_id));
            ob_strlcpy(c->mention_text, jstr(e, "text") ? jstr(e, "text") : "",
                       sizeof(c->mention_text));
        }
    }
    if (!bearer_ok(s, auth)) {
        s->bad_bearers++;
        c->status = 401;
        cJSON_Delete(body);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "message", "Authorization has been denied for this request.");
        reply_json(ex, 401, o, NULL);
        return;
    }
    if (!cJSON_IsObject(body) || !jstr(body, "type")) {
        c->status = 400;
        cJSON_Delete(body);
        ob_http_reply(ex, 400, "text/plain", "bad activity\n", 13, NULL);
        return;
    }
    cJSON_Delete(body);
    if (s->cfail.n > 0) {
        char ra[40];
        const char *hdrs[] = {ra, NULL};

        s->cfail.n--;
        c->status = s->cfail.status;
        snprintf(ra, sizeof(ra), "Retry-After: %d", s->cfail.retry_after);
        o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "error", cJSON_CreateObject());
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "error"), "code",
                                c->status == 429 ? "TooManyRequests" : "ServiceError");
        reply_json(ex, c->status, o, s->cfail.retry_after >= 0 ? hdrs : NULL);
        return;
    }
    o = cJSON_CreateObject();
    if (!strcmp(req->method, "PUT")) {
        c->status = 200;
        ob_strlcpy(c->id, c->target, sizeof(c->id));
        cJSON_AddStringToObject(o, "id", c->target);
        reply_json(ex, 200, o, NULL);
        return;
    }
    c->status = 201;
    teams_standin_new_id(s, c->id, sizeof(c->id));
    cJSON_AddStringToObject(o, "id", c->id);
    reply_json(ex, 201, o, NULL);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct teams_standin *s = data;

    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/v1/.well-known/openidconfiguration")) {
        cJSON *o = cJSON_CreateObject(), *a;
        char uri[120];

        s->openid_reqs++;
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/v1/.well-known/keys", s->port);
        cJSON_AddStringToObject(o, "issuer", "https://api.botframework.com");
        cJSON_AddStringToObject(o, "authorization_endpoint", "https://invalid.botframework.com");
        cJSON_AddStringToObject(o, "jwks_uri", uri);
        a = cJSON_AddArrayToObject(o, "id_token_signing_alg_values_supported");
        cJSON_AddItemToArray(a, cJSON_CreateString("RS256"));
        a = cJSON_AddArrayToObject(o, "token_endpoint_auth_methods_supported");
        cJSON_AddItemToArray(a, cJSON_CreateString("private_key_jwt"));
        reply_json(ex, 200, o, NULL);
        return;
    }
    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/v1/.well-known/keys")) {
        char *j = teams_standin_jwks(s);

        s->jwks_reqs++;
        ob_http_reply(ex, 200, "application/json", j, strlen(j), NULL);
        free(j);
        return;
    }
    if (!strcmp(req->method, "POST") && strstr(req->path, "/oauth2/v2.0/token")) {
        token_endpoint(s, ex, req);
        return;
    }
    if ((!strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) &&
        !strncmp(req->path, "/amer/v3/conversations/", strlen("/amer/v3/conversations/"))) {
        connector(s, ex, req);
        return;
    }
    ob_http_reply(ex, 404, "text/plain", "not found\n", 10, NULL);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int teams_standin_new(struct teams_standin **out, uv_loop_t *loop,
                      const struct teams_standin_opts *opts)
{
    struct teams_standin *s = calloc(1, sizeof(*s));
    struct ob_http_server_opts so = {0};
    static const char *const endorse[MAX_KEYS] = {"msteams", "webchat", "msteams", "msteams"};
    int rc;

    *out = NULL;
    s->loop = loop;
    ob_strlcpy(s->app_id, opts && opts->app_id ? opts->app_id : TEAMS_STANDIN_APP_ID,
               sizeof(s->app_id));
    ob_strlcpy(s->secret, opts && opts->app_secret ? opts->app_secret : TEAMS_STANDIN_SECRET,
               sizeof(s->secret));
    s->expires_in = opts && opts->expires_in ? opts->expires_in : 3599;
    for (int i = 0; i < MAX_KEYS; i++) {
        s->keys[i].pkey = EVP_RSA_gen(2048);
        snprintf(s->keys[i].kid, sizeof(s->keys[i].kid), "standin-k%d", i + 1);
        s->keys[i].endorse = endorse[i];
        s->keys[i].published = i == K_MAIN || i == K_WEBCHAT;
        if (!s->keys[i].pkey) {
            rc = -1;
            goto fail;
        }
    }
    s->signing = K_MAIN;
    rc = ob_lws_new(&s->lws, loop);
    if (rc)
        goto fail;
    so.listen = "127.0.0.1:0";
    rc = ob_http_server_new(s->lws, &so, handler, s, &s->srv);
    if (rc)
        goto fail;
    rc = ob_http_new(&s->http, loop);
    if (rc)
        goto fail;
    s->port = ob_http_server_port(s->srv);
    snprintf(s->service_url, sizeof(s->service_url), "http://127.0.0.1:%d/amer/", s->port);
    snprintf(s->token_url, sizeof(s->token_url), "http://127.0.0.1:%d/{tenant}/oauth2/v2.0/token",
             s->port);
    snprintf(s->openid_url, sizeof(s->openid_url),
             "http://127.0.0.1:%d/v1/.well-known/openidconfiguration", s->port);
    standin_waiter_init(&s->waiter, loop, s);
    s->handles = 1;
    *out = s;
    return 0;
fail:
    teams_standin_free(s);
    return rc ? rc : -1;
}

static void handle_closed(uv_handle_t *h)
{
    struct teams_standin *s = h->data;

    if (--s->handles == 0 && s->freeing)
        free(s);
}

void teams_standin_free(struct teams_standin *s)
{
    if (!s)
        return;
    s->freeing = true;
    if (s->http)
        ob_http_free(s->http);
    if (s->srv)
        ob_http_server_free(s->srv);
    if (s->lws)
        ob_lws_free(s->lws);
    for (int i = 0; i < MAX_KEYS; i++)
        EVP_PKEY_free(s->keys[i].pkey);
    for (size_t i = 0; i < s->ncalls; i++)
        free(s->calls[i].text);
    free(s->calls);
    s->calls = NULL;
    if (!s->handles) {
        free(s);
        return;
    }
    uv_close((uv_handle_t *)&s->waiter.timer, handle_closed);
}

const char *teams_standin_service_url(const struct teams_standin *s)
{
    return s->service_url;
}

const char *teams_standin_token_url(const struct teams_standin *s)
{
    return s->token_url;
}

const char *teams_standin_openid_url(const struct teams_standin *s)
{
    return s->openid_url;
}

/* ---- queries and knobs ------------------------------------------------------------------ */

size_t teams_standin_ncalls(const struct teams_standin *s)
{
    return s->ncalls;
}

const struct teams_call *teams_standin_call(const struct teams_standin *s, size_t i)
{
    return i < s->ncalls ? &s->calls[i] : NULL;
}

long teams_standin_find_post(const struct teams_standin *s, const char *needle, size_t from)
{
    for (size_t i = from; i < s->ncalls; i++) {
        const struct teams_call *c = &s->calls[i];

        if (!strcmp(c->method, "POST") && c->status == 201 && c->text && strstr(c->text, needle))
            return (long)i;
    }
    return -1;
}

/* teams_standin_wait(), _wait_post(), _count_posts(), _wait_posts() */
STANDIN_DEFINE_WAITS(teams_standin)

size_t teams_standin_updates(const struct teams_standin *s, const char *id, long *last)
{
    size_t n = 0;

    for (size_t i = 0; i < s->ncalls; i++) {
        if (!strcmp(s->calls[i].method, "PUT") && s->calls[i].status == 200 &&
            !strcmp(s->calls[i].target, id)) {
            n++;
            if (last)
                *last = (long)i;
        }
    }
    return n;
}

size_t teams_standin_token_requests(const struct teams_standin *s)
{
    return s->token_reqs;
}

size_t teams_standin_tokens_issued(const struct teams_standin *s)
{
    return s->ntokens;
}

size_t teams_standin_openid_requests(const struct teams_standin *s)
{
    return s->openid_reqs;
}

size_t teams_standin_jwks_requests(const struct teams_standin *s)
{
    return s->jwks_reqs;
}

size_t teams_standin_bad_bearers(const struct teams_standin *s)
{
    return s->bad_bearers;
}

const char *teams_standin_token_tenant(const struct teams_standin *s)
{
    return s->token_tenant;
}

void teams_standin_fail(struct teams_standin *s, int status, int n, int retry_after_s)
{
    s->cfail.status = status;
    s->cfail.n = n;
    s->cfail.retry_after = retry_after_s;
}

void teams_standin_token_fail(struct teams_standin *s, int status, const char *error, long aadsts,
                              int n)
{
    s->tfail.status = status;
    s->tfail.n = n;
    s->tfail.aadsts = aadsts;
    ob_strlcpy(s->tfail.error, error, sizeof(s->tfail.error));
}

void teams_standin_revoke_tokens(struct teams_standin *s)
{
    for (size_t i = 0; i < MAX_TOKENS; i++)
        s->tokens[i].revoked = true;
}

void teams_standin_rotate(struct teams_standin *s)
{
    s->keys[K_ROTATED].published = true;
    s->signing = K_ROTATED;
}

void teams_standin_new_id(struct teams_standin *s, char *out, size_t len)
{
    snprintf(out, len, "17000%08u", ++s->seq);
}

/* ---- the client side ------------------------------------------------------------------- */

struct pending {
    bool done;
    struct teams_answer *ans;
};

static void post_done(void *data, const struct ob_http_resp *resp)
{
    struct pending *p = data;

    p->done = true;
    p->ans->status = resp->status;
    snprintf(p->ans->body, sizeof(p->ans->body), "%.*s", (int)resp->body_len,
             resp->body ? resp->body : "");
}

static bool pending_cond(struct teams_standin *s, void *arg)
{
    (void)s;
    return ((struct pending *)arg)->done;
}

long teams_standin_post(struct teams_standin *s, const char *url, const char *json,
                        enum teams_sign mode, struct teams_answer *ans)
{
    struct teams_answer local;
    struct pending p = {false, ans ? ans : &local};
    struct ob_http_req req = {0};
    const char *headers[3] = {"Content-Type: application/json; charset=utf-8", NULL, NULL};
    char *auth = NULL, *tok = NULL;
    cJSON *o = cJSON_Parse(json);
    const char *surl = jstr(o, "serviceUrl");

    memset(p.ans, 0, sizeof(*p.ans));
    if (mode == TEAMS_SIGN_BASIC) {
        auth = strdup("Authorization: Basic b3BzYm90OnNlY3JldA==");
    } else if (mode != TEAMS_SIGN_NO_HEADER) {
        tok = activity_token(s, surl ? surl : s->service_url, mode);
        if (tok && asprintf(&auth, "Authorization: Bearer %s", tok) < 0)
            auth = NULL;
    }
    cJSON_Delete(o);
    free(tok);
    headers[1] = auth;
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.body = json;
    req.body_len = strlen(json);
    req.timeout_ms = 5000;
    if (ob_http_request(s->http, &req, post_done, &p, NULL)) {
        free(auth);
        return 0;
    }
    free(auth);
    teams_standin_wait(s, pending_cond, &p, 6000);
    return p.ans->status;
}

/* ---- activity builders --------------------------------------------------------------- */

static cJSON *base_activity(struct teams_standin *s, const char *type, const char *id,
                            const char *conv, const char *conv_type, const char *user)
{
    cJSON *o = cJSON_CreateObject(), *x;
    char buf[160];

    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "timestamp", "2026-11-27T17:04:07.123Z");
    cJSON_AddStringToObject(o, "channelId", "msteams");
    cJSON_AddStringToObject(o, "serviceUrl", s->service_url);
    if (user) {
        x = cJSON_AddObjectToObject(o, "from");
        snprintf(buf, sizeof(buf), "29:%s", user);
        cJSON_AddStringToObject(x, "id", buf);
        snprintf(buf, sizeof(buf), "%c%s", user[0] - 32, user + 1);
        cJSON_AddStringToObject(x, "name", buf);
        snprintf(buf, sizeof(buf), "aad-%s", user);
        cJSON_AddStringToObject(x, "aadObjectId", buf);
    }
    x = cJSON_AddObjectToObject(o, "conversation");
    cJSON_AddStringToObject(x, "id", conv);
    cJSON_AddStringToObject(x, "conversationType", conv_type);
    cJSON_AddStringToObject(x, "tenantId", TEAMS_STANDIN_TENANT);
    if (strcmp(conv_type, "personal"))
        cJSON_AddTrueToObject(x, "isGroup");
    x = cJSON_AddObjectToObject(o, "recipient");
    snprintf(buf, sizeof(buf), "28:%s", s->app_id);
    cJSON_AddStringToObject(x, "id", buf);
    cJSON_AddStringToObject(x, "name", "opsbot");
    x = cJSON_AddObjectToObject(o, "channelData");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "tenant"), "id", TEAMS_STANDIN_TENANT);
    if (!strcmp(conv_type, "channel")) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "team"), "id", "19:team@thread.tacv2");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "channel"), "id", conv);
    }
    return o;
}

static char *finish(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    cJSON_Delete(o);
    return s;
}

static const char *type_of(const char *conv)
{
    return !strncmp(conv, "a:", 2)                                          ? "personal"
           : strstr(conv, "@thread.tacv2") || strstr(conv, "@thread.skype") ? "channel"
                                                                            : "groupChat";
}

char *teams_standin_message(struct teams_standin *s, const char *id, const char *conv,
                            const char *conv_type, const char *user, const char *text,
                            bool mention_bot)
{
    cJSON *o = base_activity(s, "message", id, conv, conv_type ? conv_type : type_of(conv), user);
    char *full = NULL;

    if (mention_bot) {
        cJSON *e = cJSON_CreateObject(), *m;
        char bid[160];

        if (asprintf(&full, "<at>opsbot</at> %s", text) < 0)
            full = NULL;
        snprintf(bid, sizeof(bid), "28:%s", s->app_id);
        cJSON_AddStringToObject(e, "type", "mention");
        cJSON_AddStringToObject(e, "text", "<at>opsbot</at>");
        m = cJSON_AddObjectToObject(e, "mentioned");
        cJSON_AddStringToObject(m, "id", bid);
        cJSON_AddStringToObject(m, "name", "opsbot");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "entities"), e);
    }
    cJSON_AddStringToObject(o, "text", full ? full : text);
    cJSON_AddStringToObject(o, "textFormat", "plain");
    cJSON_AddStringToObject(o, "locale", "en-US");
    free(full);
    return finish(o);
}

static cJSON *data_of(const char *verb, const char *card_ref)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "opsbot", "approval");
    cJSON_AddStringToObject(d, "verb", verb);
    if (card_ref)
        cJSON_AddStringToObject(d, "ref", card_ref);
    return d;
}

char *teams_standin_invoke(struct teams_standin *s, const char *id, const char *conv,
                           const char *user, const char *reply_to, const char *verb,
                           const char *card_ref)
{
    cJSON *o = base_activity(s, "invoke", id, conv, type_of(conv), user), *v, *a;

    cJSON_AddStringToObject(o, "name", "adaptiveCard/action");
    if (reply_to)
        cJSON_AddStringToObject(o, "replyToId", reply_to);
    v = cJSON_AddObjectToObject(o, "value");
    a = cJSON_AddObjectToObject(v, "action");
    cJSON_AddStringToObject(a, "type", "Action.Execute");
    cJSON_AddStringToObject(a, "verb", verb);
    cJSON_AddItemToObject(a, "data", data_of(verb, card_ref));
    cJSON_AddStringToObject(v, "trigger", "manual");
    return finish(o);
}

char *teams_standin_submit(struct teams_standin *s, const char *id, const char *conv,
                           const char *user, const char *reply_to, const char *verb,
                           const char *card_ref)
{
    cJSON *o = base_activity(s, "message", id, conv, type_of(conv), user);

    if (reply_to)
        cJSON_AddStringToObject(o, "replyToId", reply_to);
    cJSON_AddItemToObject(o, "value", data_of(verb, card_ref));
    return finish(o);
}

char *teams_standin_reaction(struct teams_standin *s, const char *id, const char *conv,
                             const char *user, const char *reply_to, const char *type, bool added)
{
    cJSON *o = base_activity(s, "messageReaction", id, conv, type_of(conv), user), *r;

    cJSON_AddStringToObject(o, "replyToId", reply_to);
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, added ? "reactionsAdded" : "reactionsRemoved"),
                         r);
    return finish(o);
}

char *teams_standin_install(struct teams_standin *s, const char *id, const char *conv,
                            const char *conv_type)
{
    cJSON *o = base_activity(s, "conversationUpdate", id, conv, conv_type, "admin"), *m;
    char bid[160];

    snprintf(bid, sizeof(bid), "28:%s", s->app_id);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", bid);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "membersAdded"), m);
    return finish(o);
}
