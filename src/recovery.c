/* What the core does when the state store fails, and about actions that a
 * crash cut off.
 *
 * A failing store (disk full, I/O errors): an action whose `started` record
 * cannot be made durable is not run (ob__start_action says so in its
 * thread); while the store keeps failing, every new event is refused with
 * one line, after one probe: the event's claim is committed at once, and
 * when that works again the store is healthy and the event goes on as
 * usual. Nothing already committed is touched: a failed commit rolls back
 * only its own batch (ob_store_flush).
 *
 * Actions cut off: at start, every `started` record without a
 * `finished`/`failed` after it (opsbot was killed while the action ran) is
 * closed with an `outcome_unknown` record and one message in the request's
 * thread naming the action and saying that it was NOT re-run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core.h"
#include "opsbot/err.h"
#include "opsbot/util.h"

#define UNFINISHED_MAX 1000  /* reported at one start; the rest at the next */
#define STORE_PROBE_MS 10000 /* refusals without trying the store in between */

/* ---- a failing state store ----------------------------------------------- */

void ob__store_failed(struct ob_bot *bot, int err, const char *what)
{
    const char *detail = ob_store_error(bot->store);

    snprintf(bot->store_why, sizeof(bot->store_why), "%s: %s", ob_strerror(err),
             detail && *detail ? detail : "unknown error");
    if (!bot->store_failing)
        ob_error("store",
                 "%s failed (%s): new requests are refused until the state store can "
                 "be written again",
                 what, bot->store_why);
    bot->store_failing = true;
    bot->store_probe_ms = ob_now_ms() + STORE_PROBE_MS;
}

bool ob__store_refuses(struct ob_bot *bot, struct ob_adapter *ad, const struct ob_event *ev)
{
    char probe[48], *line = NULL;
    int64_t now = ob_now_ms();
    int rc;

    if (!bot->store_failing)
        return false;
    /* The probe, at most every STORE_PROBE_MS: one small write (an event
     * claim of its own, pruned with the others after a week), committed
     * now. A full disk may still take a small write; the next action's
     * flush then fails again and the hold-off starts over. */
    if (now >= bot->store_probe_ms) {
        ob_random_id("opsbot:probe:", probe, sizeof(probe));
        rc = ob_store_claim(bot->store, probe, now);
        if (!rc)
            rc = ob_store_flush(bot->store);
        if (!rc) {
            ob_info("store", "the state store can be written again: taking requests");
            bot->store_failing = false;
            bot->store_why[0] = '\0';
            return false;
        }
        ob__store_failed(bot, rc, "probe");
    }
    ob_warn("pipeline", "event from %s:%s refused: the state store cannot be written", ev->platform,
            ev->user ? ev->user : "?");
    if (ev->kind == OB_EV_MESSAGE && ev->addressed &&
        asprintf(&line,
                 "not taking requests: the audit trail cannot be written (%s). Nothing was run; "
                 "ask again once the state store is fixed.",
                 bot->store_why) >= 0) {
        ob__post_raw(bot, ad, ev->channel, ev->thread ? ev->thread : ev->message, 0, NULL, line,
                     NULL, NULL);
        free(line);
    }
    return true;
}

/* ---- actions cut off by a crash -------------------------------------------- */

struct cut_off {
    struct cut_off *next;
    int64_t started_id;
    char request_id[64], platform[32], channel[128], action[64];
    char command[1024];
    char thread[128];
    char requester[160];
};

static int collect_cb(void *data, const struct ob_audit_record *r)
{
    struct cut_off **list = data, *c;
    cJSON *d;
    size_t n = 0;

    for (c = *list; c; c = c->next)
        n++;
    if (n >= UNFINISHED_MAX)
        return 1;
    c = ob_xcalloc(1, sizeof(*c));
    c->started_id = r->id;
    ob_strlcpy(c->request_id, r->request_id, sizeof(c->request_id));
    ob_strlcpy(c->platform, r->platform, sizeof(c->platform));
    ob_strlcpy(c->channel, r->channel, sizeof(c->channel));
    ob_strlcpy(c->action, r->action, sizeof(c->action));
    d = cJSON_Parse(r->detail);
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "command")))
        ob_strlcpy(c->command, cJSON_GetObjectItemCaseSensitive(d, "command")->valuestring,
                   sizeof(c->command));
    cJSON_Delete(d);
    /* Oldest first: append. */
    if (!*list) {
        *list = c;
    } else {
        struct cut_off *t = *list;

        while (t->next)
            t = t->next;
        t->next = c;
    }
    return 0;
}

/* The thread and the requester are in the request's `received` record. */
static int received_cb(void *data, const struct ob_audit_record *r)
{
    struct cut_off *c = data;
    cJSON *d;
    const cJSON *t;

    if (strcmp(r->step, "received"))
        return 0;
    ob_strlcpy(c->requester, r->actor, sizeof(c->requester));
    d = cJSON_Parse(r->detail);
    t = cJSON_GetObjectItemCaseSensitive(d, "thread");
    if (cJSON_IsString(t))
        ob_strlcpy(c->thread, t->valuestring, sizeof(c->thread));
    cJSON_Delete(d);
    return 1; /* the first one is enough */
}

static void report_one(struct ob_bot *bot, struct cut_off *c)
{
    struct ob_adapter *ad = ob__adapter_by_name(bot, c->platform);
    struct ob_request tmp = {0};
    cJSON *d = cJSON_CreateObject();
    char *text = NULL, h[20];
    int64_t id;

    ob_audit_each(bot->store, c->request_id, received_cb, c);
    cJSON_AddNumberToObject(d, "started", (double)c->started_id);
    if (c->command[0])
        cJSON_AddStringToObject(d, "command", c->command);
    cJSON_AddStringToObject(d, "why",
                            "opsbot stopped while the action was running (killed, "
                            "crashed or lost power); it was not re-run");
    tmp.bot = bot;
    id = ob__audit(bot, &tmp, c->request_id, "outcome_unknown", "opsbot", c->platform, c->channel,
                   c->action, d);
    ob_warn("pipeline",
            "%s: %s had started (audit #%lld) when opsbot stopped: outcome unknown, not "
            "re-run",
            c->request_id, c->action, (long long)c->started_id);
    if (!ad)
        return; /* the platform is no longer configured: the trail says it */
    if (asprintf(&text,
                 "[#%lld] outcome unknown: %s (%s) had started (audit #%lld) when opsbot "
                 "stopped; it was NOT re-run%s%s%s. Check its effect before asking again.\n"
                 "audit #%lld · chain %s",
                 (long long)id, c->action, c->command[0] ? c->command : "built-in",
                 (long long)c->started_id, c->requester[0] ? " (requested by " : "", c->requester,
                 c->requester[0] ? ")" : "", (long long)id,
                 ob__short_hash(tmp.last_hash, h, sizeof(h))) < 0)
        return;
    ob__post_raw(bot, ad, c->channel, c->thread, 0, NULL, text, NULL, NULL);
    free(text);
}

void ob__report_unfinished(struct ob_bot *bot)
{
    struct cut_off *list = NULL;
    int rc = ob_audit_unfinished(bot->store, collect_cb, &list);

    if (rc < 0)
        ob_error("pipeline", "cannot look for actions cut off by a stop: %s", ob_strerror(rc));
    while (list) {
        struct cut_off *c = list;

        list = c->next;
        report_one(bot, c);
        free(c);
    }
    rc = ob_store_flush(bot->store);
    if (rc)
        ob__store_failed(bot, rc, "recording actions cut off by a stop");
}
