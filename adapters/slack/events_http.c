/* HTTP Events mode: Slack POSTs Events API callbacks, interactivity
 * payloads and slash commands to a request URL. Every request is checked
 * first (X-Slack-Signature v0, 5-minute window); a bad one gets 401 and
 * nothing else happens. Good ones are answered 200 at once and processed
 * afterwards (Slack wants an answer within 3 s). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"
#include "slack_int.h"

#define WINDOW_S 300
#define BODY_MAX (1024 * 1024)

int ob_slack_verify_signature(const char *secret, size_t secret_len, const char *timestamp,
                              const char *signature, const char *body, size_t body_len,
                              int64_t now_s)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], want[crypto_auth_hmacsha256_BYTES];
    size_t tl, got = 0;
    long long ts = 0;
    int rc;

    if (!secret || !timestamp || !signature || (!body && body_len))
        return OB_EPARSE;
    tl = strlen(timestamp);
    if (tl == 0 || tl > 12)
        return OB_EPARSE;
    for (size_t i = 0; i < tl; i++) {
        if (!isdigit((unsigned char)timestamp[i]))
            return OB_EPARSE;
        ts = ts * 10 + (timestamp[i] - '0');
    }
    if (strncmp(signature, "v0=", 3) || strlen(signature) != 3 + 2 * sizeof(want))
        return OB_EPARSE;
    if (sodium_hex2bin(want, sizeof(want), signature + 3, 2 * sizeof(want), NULL, &got, NULL) ||
        got != sizeof(want))
        return OB_EPARSE;
    if (ts > now_s + WINDOW_S || ts < now_s - WINDOW_S)
        return OB_ETIMEOUT;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"v0:", 3);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, tl);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)":", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)(body ? body : ""), body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    rc = sodium_memcmp(mac, want, sizeof(mac)) ? OB_EDENIED : 0;
    sodium_memzero(&st, sizeof(st));
    return rc;
}

/* ---- form bodies ----------------------------------------------------------- */

char *slack__form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            /* A raw NUL would cut the value short: what the signature
             * covered and what is acted on would differ. */
            free(out);
            return NULL;
        } else if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len) {
                free(out);
                return NULL;
            }
            hi = ob_hexval((unsigned char)s[i + 1]);
            lo = ob_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

cJSON *slack__form_fields(const char *body, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    size_t i = 0, n = 0;

    while (o && i < len) {
        size_t end = i, eq;
        char *k, *v;

        while (end < len && body[end] != '&')
            end++;
        for (eq = i; eq < end && body[eq] != '='; eq++)
            ;
        k = slack__form_decode(body + i, eq - i);
        v = eq < end ? slack__form_decode(body + eq + 1, end - eq - 1) : ob_xstrdup("");
        if (!k || !v || ++n > 64) {
            free(k);
            free(v);
            cJSON_Delete(o);
            return NULL;
        }
        if (*k && !cJSON_GetObjectItemCaseSensitive(o, k))
            cJSON_AddStringToObject(o, k, v);
        free(k);
        free(v);
        i = end + 1;
    }
    return o;
}

int slack__form_payload(const char *body, size_t len, enum ob_slack_frame *type, cJSON **root)
{
    cJSON *fields = slack__form_fields(body ? body : "", body ? len : 0);
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(fields, "payload");

    *root = NULL;
    if (!fields)
        return OB_EPARSE;
    if (cJSON_IsString(payload)) {
        *root = cJSON_Parse(payload->valuestring);
        *type = OB_SLACK_INTERACTIVE;
    } else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fields, "command"))) {
        *root = fields;
        fields = NULL;
        *type = OB_SLACK_SLASH_COMMANDS;
    }
    cJSON_Delete(fields);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return OB_EINVAL;
    }
    return 0;
}

/* ---- the handler -------------------------------------------------------------- */

static void reply(struct ob_http_exchange *ex, int status, const char *type, const char *body)
{
    ob_http_reply(ex, status, type, body, strlen(body), NULL);
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct slack *sl = data;
    const char *ts, *sig, *retry;
    cJSON *root = NULL;
    enum ob_slack_frame type = OB_SLACK_EVENTS_API;
    int rc;

    if (sl->life.stopping || sl->dead) {
        reply(ex, 503, "text/plain", "stopping\n");
        return;
    }
    if (strcmp(req->path, sl->cfg.events_path)) {
        reply(ex, 404, "text/plain", "not found\n");
        return;
    }
    if (strcmp(req->method, "POST")) {
        reply(ex, 405, "text/plain", "POST only\n");
        return;
    }
    ts = ob_http_srv_header(req, "X-Slack-Request-Timestamp");
    sig = ob_http_srv_header(req, "X-Slack-Signature");
    rc = ob_slack_verify_signature(sl->cfg.signing_secret, sl->cfg.signing_secret_len, ts, sig,
                                   req->body, req->body_len, ob_now_ms() / 1000);
    if (rc) {
        ob_warn("slack", "HTTP event from %s rejected: %s", req->remote ? req->remote : "?",
                rc == OB_ETIMEOUT  ? "stale timestamp (more than 5 minutes off)"
                : rc == OB_EDENIED ? "bad signature"
                                   : "signature headers missing or malformed");
        reply(ex, 401, "text/plain", "invalid request signature\n");
        return;
    }
    retry = ob_http_srv_header(req, "X-Slack-Retry-Num");
    if (req->body_len && req->body[0] == '{') {
        const cJSON *t;

        root = cJSON_ParseWithLength(req->body, req->body_len);
        t = cJSON_GetObjectItemCaseSensitive(root, "type");
        if (!cJSON_IsObject(root) || !cJSON_IsString(t)) {
            ob_warn("slack", "HTTP event: malformed JSON body");
            reply(ex, 400, "text/plain", "malformed body\n");
            goto out;
        }
        if (!strcmp(t->valuestring, "url_verification")) {
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(root, "challenge");

            if (!cJSON_IsString(ch) || strlen(ch->valuestring) > 256) {
                reply(ex, 400, "text/plain", "no challenge\n");
                goto out;
            }
            ob_info("slack", "HTTP Events URL verified");
            reply(ex, 200, "text/plain", ch->valuestring);
            goto out;
        }
        if (strcmp(t->valuestring, "event_callback")) {
            reply(ex, 200, "text/plain", "");
            goto out;
        }
    } else {
        rc = slack__form_payload(req->body, req->body_len, &type, &root);
        if (rc) {
            if (rc == OB_EINVAL)
                ob_warn("slack", "HTTP event: form body without a usable payload");
            reply(ex, 400, "text/plain", "malformed body\n");
            goto out;
        }
    }
    /* Answer first, then work. */
    reply(ex, 200, "text/plain", "");
    if (retry)
        ob_info("slack", "HTTP event redelivered by Slack (retry %.8s)", retry);
    slack__dispatch(sl, type, root);
out:
    cJSON_Delete(root);
}

int slack__events_start(struct slack *sl)
{
    struct ob_http_server_opts opts = {0};
    int rc;

    opts.listen = sl->cfg.events_listen;
    opts.max_body = BODY_MAX;
    rc = ob_http_server_new(sl->lws, &opts, handler, sl, &sl->events);
    if (rc)
        return rc;
    ob_info("slack", "HTTP Events mode: listening on port %d, path %s",
            ob_http_server_port(sl->events), sl->cfg.events_path);
    return 0;
}

void slack__events_stop(struct slack *sl)
{
    if (!sl->events)
        return;
    ob_http_server_free(sl->events);
    sl->events = NULL;
}
