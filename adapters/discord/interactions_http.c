/* Interactions over HTTP (the application's Interactions Endpoint URL):
 * every request is verified first (X-Signature-Ed25519 over
 * X-Signature-Timestamp + body with the application's public key); a bad
 * or missing signature gets 401 and nothing else happens (Discord probes
 * with bad signatures and disables an endpoint that accepts them). PING is
 * answered PONG; a button press DEFERRED_UPDATE_MESSAGE and a /ops command
 * a short acknowledgement, both inline and at once (Discord wants an answer
 * within 3 s); the event then goes to the core. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discord_int.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"
#include "opsbot/ws.h"

#define BODY_MAX (256 * 1024)
#define TIMESTAMP_MAX 32

int ob_discord_verify_signature(const unsigned char public_key[32], const char *signature_hex,
                                const char *timestamp, const char *body, size_t body_len)
{
    unsigned char sig[crypto_sign_BYTES], *msg;
    size_t tl, got = 0;
    int rc;

    if (!public_key || !signature_hex || !timestamp || (!body && body_len))
        return OB_EPARSE;
    tl = strlen(timestamp);
    if (tl == 0 || tl > TIMESTAMP_MAX || strlen(signature_hex) != 2 * crypto_sign_BYTES)
        return OB_EPARSE;
    if (sodium_hex2bin(sig, sizeof(sig), signature_hex, 2 * crypto_sign_BYTES, NULL, &got, NULL) ||
        got != sizeof(sig))
        return OB_EPARSE;
    if (body_len > SIZE_MAX - tl)
        return OB_EPARSE;
    msg = malloc(tl + body_len + 1);
    if (!msg)
        return OB_ENOMEM;
    memcpy(msg, timestamp, tl);
    if (body_len)
        memcpy(msg + tl, body, body_len);
    rc = crypto_sign_verify_detached(sig, msg, tl + body_len, public_key) ? OB_EDENIED : 0;
    free(msg);
    return rc;
}

static void reply(struct ob_http_exchange *ex, int status, const char *body)
{
    ob_http_reply(ex, status, "application/json", body, strlen(body), NULL);
}

static void reply_json(struct ob_http_exchange *ex, cJSON *o)
{
    char *body = cJSON_PrintUnformatted(o);

    cJSON_Delete(o);
    if (!body) {
        reply(ex, 500, "{\"message\":\"out of memory\"}");
        return;
    }
    reply(ex, 200, body);
    free(body);
}

static cJSON *ack_body(const struct ob_discord_event *e)
{
    cJSON *o;

    if (e->source != OB_DISCORD_SRC_COMPONENT)
        return discord__command_ack(e);
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "type", 6); /* DEFERRED_UPDATE_MESSAGE */
    return o;
}

static void handler(void *data, struct ob_http_exchange *ex, const struct ob_http_srv_req *req)
{
    struct discord *dc = data;
    const char *sig, *ts;
    struct ob_discord_self self;
    struct ob_discord_event e;
    cJSON *root;
    int rc;

    if (strcmp(req->path, dc->cfg.ix_path)) {
        reply(ex, 404, "{\"message\":\"not found\"}");
        return;
    }
    if (strcmp(req->method, "POST")) {
        reply(ex, 405, "{\"message\":\"method not allowed\"}");
        return;
    }
    sig = ob_http_srv_header(req, "X-Signature-Ed25519");
    ts = ob_http_srv_header(req, "X-Signature-Timestamp");
    rc = ob_discord_verify_signature(dc->cfg.public_key, sig, ts, req->body, req->body_len);
    if (rc) {
        ob_warn("discord", "interactions endpoint: request from %s refused: %s",
                req->remote ? req->remote : "?",
                rc == OB_EDENIED ? "bad signature" : "signature headers missing or malformed");
        reply(ex, 401, "{\"message\":\"invalid request signature\"}");
        return;
    }
    root = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        ob_error("discord", "interactions endpoint: body is not a JSON object");
        reply(ex, 400, "{\"message\":\"malformed interaction\"}");
        return;
    }
    discord__self(dc, &self);
    rc = ob_discord_dispatch_event(&self, "INTERACTION_CREATE", root, &e);
    cJSON_Delete(root);
    if (rc < 0) {
        ob_error("discord", "interactions endpoint: malformed interaction (%s)", ob_strerror(rc));
        reply(ex, 400, "{\"message\":\"malformed interaction\"}");
        goto out;
    }
    if (e.source == OB_DISCORD_SRC_PING) {
        reply(ex, 200, "{\"type\":1}");
        goto out;
    }
    if (rc == 0 || dc->life.stopping || dc->dead) {
        /* Answered all the same: an unanswered interaction shows an error. */
        cJSON *o = cJSON_CreateObject();

        cJSON_AddNumberToObject(o, "type", 6);
        ob_debug("discord", "interaction ignored: %s", rc == 0 ? e.ignored : "stopping");
        reply_json(ex, o);
        goto out;
    }
    reply_json(ex, ack_body(&e));
    discord__interaction(dc, &e, true);
out:
    ob_discord_event_release(&e);
}

int discord__ix_start(struct discord *dc)
{
    struct ob_http_server_opts o = {0};
    int rc;

    o.listen = dc->cfg.ix_listen;
    o.max_body = BODY_MAX;
    rc = ob_http_server_new(dc->lws, &o, handler, dc, &dc->ix);
    if (rc)
        return rc;
    ob_info("discord", "interactions endpoint on %s%s (port %d)", dc->cfg.ix_listen,
            dc->cfg.ix_path, ob_http_server_port(dc->ix));
    return 0;
}

void discord__ix_stop(struct discord *dc)
{
    if (!dc->ix)
        return;
    ob_http_server_free(dc->ix);
    dc->ix = NULL;
}
