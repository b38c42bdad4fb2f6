/* The messaging endpoint: Teams POSTs every activity here. Each request's
 * JWT is verified before anything else (Bearer scheme, OpenID metadata ->
 * JWKS key by kid, RS256 signature, iss / aud / exp / nbf with 5 minutes'
 * skew, serviceurl claim == activity serviceUrl, key endorsements contain
 * the channel id); any failure is a 401, one log line naming the check,
 * and nothing else happens. Requests that need the keys fetched first
 * wait (bounded) for that fetch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opsbot/err.h"
#include "opsbot/http.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "teams_int.h"

#define SKEW_S 300
#define FETCH_TIMEOUT_MS 10000
#define DOC_MAX (512 * 1024)

static void reply_text(struct ob_http_exchange *ex, int status, const char *text)
{
    ob_http_reply(ex, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static void reject(struct ob_http_exchange *ex, const char *remote, const char *why)
{
    ob_warn("teams", "request from %s rejected (401): %s", remote && *remote ? remote : "?", why);
    reply_text(ex, 401, "unauthorized\n");
}

static bool tenant_allowed(const struct teams *tm, const char *tenant)
{
    if (!tm->cfg.ntenants)
        return true;
    for (size_t i = 0; i < tm->cfg.ntenants; i++)
        if (tenant && !strcmp(tm->cfg.tenants[i], tenant))
            return true;
    return false;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Verifies token with a known key, then the activity, then dispatches. */
static void verify_and_dispatch(struct teams *tm, struct ob_http_exchange *ex, const char *remote,
                                const char *token, const char *body, size_t body_len)
{
    struct ob_teams_jwt jwt;
    struct ob_teams_expect x = {0};
    const struct ob_teams_key *key;
    char err[160], why[200];
    cJSON *act = NULL;
    const char *surl, *chan, *tenant;
    int64_t now_s = ob_now_ms() / 1000;

    if (ob_teams_jwt_parse(token, strlen(token), &jwt, err, sizeof(err))) {
        reject(ex, remote, err);
        goto out;
    }
    key = ob_teams_keys_find(&tm->keys, jwt.kid);
    if (!key) {
        snprintf(why, sizeof(why), "unknown signing key (kid %.60s)", jwt.kid);
        reject(ex, remote, why);
        goto out;
    }
    if (strcmp(jwt.alg, "RS256") && strcmp(jwt.alg, "RS384") && strcmp(jwt.alg, "RS512")) {
        snprintf(why, sizeof(why), "signing algorithm %.16s is not allowed (RS256 expected)",
                 jwt.alg);
        reject(ex, remote, why);
        goto out;
    }
    if (ob_teams_jwt_verify_sig(&jwt, token, key)) {
        reject(ex, remote, "bad signature");
        goto out;
    }
    x.issuer = tm->cfg.issuer;
    x.audience = tm->cfg.app_id;
    x.skew_s = SKEW_S;
    if (ob_teams_jwt_check_claims(&jwt, &x, now_s, why, sizeof(why))) {
        reject(ex, remote, why);
        goto out;
    }
    /* Authentic so far: the activity itself. */
    act = cJSON_ParseWithLength(body, body_len);
    if (!cJSON_IsObject(act)) {
        ob_warn("teams", "request from %s: malformed JSON body (400)", remote);
        reply_text(ex, 400, "malformed JSON\n");
        goto out;
    }
    surl = jstr(act, "serviceUrl");
    if (!surl) {
        ob_warn("teams", "request from %s: activity without serviceUrl (400)", remote);
        reply_text(ex, 400, "activity without serviceUrl\n");
        goto out;
    }
    x.service_url = surl;
    if (ob_teams_jwt_check_claims(&jwt, &x, now_s, why, sizeof(why))) {
        reject(ex, remote, why);
        goto out;
    }
    chan = jstr(act, "channelId");
    if (!ob_teams_key_endorses(key, chan)) {
        snprintf(why, sizeof(why), "signing key %.60s is not endorsed for channel %.32s", key->kid,
                 chan ? chan : "(none)");
        reject(ex, remote, why);
        goto out;
    }
    tenant = jstr(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(act, "channelData"), "tenant"),
                  "id");
    if (!tenant)
        tenant = jstr(cJSON_GetObjectItemCaseSensitive(act, "conversation"), "tenantId");
    if (!tenant_allowed(tm, tenant)) {
        ob_warn("teams",
                "activity from tenant %.64s refused (403): not in "
                "platforms.teams.allowed_tenants",
                tenant ? tenant : "(none)");
        reply_text(ex, 403, "tenant not allowed\n");
        goto out;
    }
    teams__dispatch(tm, ex, act);
out:
    cJSON_Delete(act);
    ob_teams_jwt_release(&jwt);
}

/* What to do with a request whose token names kid. */
static void authenticate(struct teams *tm, struct ob_http_exchange *ex, const char *remote,
                         const char *token, const char *body, size_t body_len, bool may_wait)
{
    struct ob_teams_jwt jwt;
    char err[160], why[200];
    enum ob_teams_keys_step step;

    if (ob_teams_jwt_parse(token, strlen(token), &jwt, err, sizeof(err))) {
        ob_teams_jwt_release(&jwt);
        reject(ex, remote, err);
        return;
    }
    step = ob_teams_keys_decide(&tm->keys, jwt.kid, ob_now_ms());
    if (step == OB_TEAMS_KEYS_FETCH && !may_wait)
        step = ob_teams_keys_find(&tm->keys, jwt.kid) ? OB_TEAMS_KEYS_USE
               : tm->keys.n                           ? OB_TEAMS_KEYS_UNKNOWN_KID
                                                      : OB_TEAMS_KEYS_UNAVAILABLE;
    switch (step) {
    case OB_TEAMS_KEYS_USE:
        ob_teams_jwt_release(&jwt);
        verify_and_dispatch(tm, ex, remote, token, body, body_len);
        return;
    case OB_TEAMS_KEYS_UNKNOWN_KID:
        snprintf(why, sizeof(why),
                 "unknown signing key (kid %.60s; keys were refreshed less than an hour ago)",
                 jwt.kid);
        ob_teams_jwt_release(&jwt);
        reject(ex, remote, why);
        return;
    case OB_TEAMS_KEYS_UNAVAILABLE:
        ob_teams_jwt_release(&jwt);
        ob_warn("teams",
                "request from %s not served (503): the signing keys are not available "
                "(OpenID metadata fetch failing)",
                remote);
        reply_text(ex, 503, "signing keys unavailable\n");
        return;
    case OB_TEAMS_KEYS_FETCH:
        break;
    }
    ob_teams_jwt_release(&jwt);
    if (tm->nwaiters >= TEAMS_MAX_WAITERS) {
        reply_text(ex, 503, "busy\n");
        return;
    }
    {
        struct teams_waiter *w = ob_xcalloc(1, sizeof(*w)), **pp;

        w->ex = ex;
        w->token = ob_xstrdup(token);
        w->body = ob_xmalloc(body_len + 1);
        memcpy(w->body, body, body_len);
        w->body[body_len] = '\0';
        w->body_len = body_len;
        ob_strlcpy(w->remote, remote, sizeof(w->remote));
        for (pp = &tm->waiters; *pp; pp = &(*pp)->next)
            ;
        *pp = w;
        tm->nwaiters++;
    }
    teams__keys_fetch(tm);
}

static void waiter_free(struct teams_waiter *w)
{
    free(w->token);
    free(w->body);
    free(w);
}

/* The fetch ended (keys updated or not): every waiter is decided now. */
static void waiters_run(struct teams *tm)
{
    struct teams_waiter *list = tm->waiters;

    tm->waiters = NULL;
    tm->nwaiters = 0;
    while (list) {
        struct teams_waiter *w = list;

        list = w->next;
        if (tm->life.stopping || tm->dead)
            reply_text(w->ex, 503, "stopping\n");
        else
            authenticate(tm, w->ex, w->remote, w->token, w->body, w->body_len, false);
        waiter_free(w);
    }
}

/* ---- key fetch: OpenID metadata, then the JWKS ------------------------------------------ */

static void keys_get(struct teams *tm, const char *url);

static void keys_done(void *data, const struct ob_http_resp *resp)
{
    struct teams *tm = data;
    char uri[512];
    int rc;

    tm->keys_call = NULL;
    if (resp->err || resp->status != 200) {
        ob_warn("teams", "cannot fetch the %s (%s%ld): inbound requests wait for it",
                tm->keys_stage == 1 ? "OpenID metadata" : "signing keys (JWKS)",
                resp->err ? "transport error, HTTP " : "HTTP ", resp->status);
        goto done;
    }
    if (tm->keys_stage == 1) {
        rc = ob_teams_openid_jwks_uri(resp->body, resp->body_len, uri, sizeof(uri));
        if (rc) {
            ob_warn("teams", "the OpenID metadata has no usable jwks_uri");
            goto done;
        }
        tm->keys_stage = 2;
        keys_get(tm, uri);
        if (tm->keys_call)
            return;
        goto done;
    }
    rc = ob_teams_jwks_parse(resp->body, resp->body_len, &tm->keys);
    if (rc < 0) {
        ob_warn("teams", "the signing keys document (JWKS) has no usable RSA key");
        goto done;
    }
    tm->keys.fetched_ms = ob_now_ms();
    ob_info("teams", "loaded %d Bot Framework signing key(s)", rc);
done:
    tm->keys_stage = 0;
    waiters_run(tm);
}

static void keys_get(struct teams *tm, const char *url)
{
    struct ob_http_req req = {0};
    int rc;

    req.method = "GET";
    req.url = url;
    req.timeout_ms = FETCH_TIMEOUT_MS;
    req.max_response = DOC_MAX;
    rc = ob_http_request(tm->http, &req, keys_done, tm, &tm->keys_call);
    if (rc) {
        tm->keys_call = NULL;
        ob_warn("teams", "cannot start the key fetch: %s", ob_strerror(rc));
    }
}

void teams__keys_fetch(struct teams *tm)
{
    if (tm->keys_stage || tm->life.closed || !tm->http)
        return;
    tm->keys.attempt_ms = ob_now_ms();
    tm->keys_stage = 1;
    keys_get(tm, tm->cfg.openid_url);
    if (!tm->keys_call) {
        tm->keys_stage = 0;
        waiters_run(tm);
    }
}

/* ---- the handler ------------------------------------------------------------------------ */

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct teams *tm = data;
    const char *auth, *remote = req->remote ? req->remote : "?";
    char *token;

    if (tm->life.stopping || tm->dead) {
        reply_text(ex, 503, "stopping\n");
        return;
    }
    if (strcmp(req->path, tm->cfg.path)) {
        reply_text(ex, 404, "not found\n");
        return;
    }
    if (strcmp(req->method, "POST")) {
        reply_text(ex, 405, "POST only\n");
        return;
    }
    auth = ob_http_srv_header(req, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) || !auth[7]) {
        reject(ex, remote,
               auth ? "Authorization is not a Bearer token" : "no Authorization header");
        return;
    }
    if (strlen(auth + 7) > OB_TEAMS_TOKEN_MAX) {
        reject(ex, remote, "token too long");
        return;
    }
    token = ob_xstrdup(auth + 7);
    authenticate(tm, ex, remote, token, req->body ? req->body : "", req->body_len, true);
    free(token);
}

int teams__endpoint_start(struct teams *tm)
{
    struct ob_http_server_opts opts = {0};
    int rc;

    opts.listen = tm->cfg.listen;
    opts.max_body = tm->cfg.max_body;
    opts.tls_cert = tm->cfg.tls_cert;
    opts.tls_key = tm->cfg.tls_key;
    rc = ob_http_server_new(tm->lws, &opts, handler, tm, &tm->srv);
    if (rc)
        return rc;
    ob_info("teams", "messaging endpoint listening on port %d, path %s (%s)",
            ob_http_server_port(tm->srv), tm->cfg.path, tm->cfg.tls_cert ? "TLS" : "plain HTTP");
    return 0;
}

void teams__endpoint_stop(struct teams *tm)
{
    if (tm->keys_call && tm->http)
        ob_http_cancel(tm->keys_call);
    tm->keys_call = NULL;
    tm->keys_stage = 0;
    while (tm->waiters) {
        struct teams_waiter *w = tm->waiters;

        tm->waiters = w->next;
        reply_text(w->ex, 503, "stopping\n");
        waiter_free(w);
    }
    tm->nwaiters = 0;
    if (tm->srv)
        ob_http_server_free(tm->srv);
    tm->srv = NULL;
}
