/* Audit export: CSV (RFC 4180), JSON lines and one self-contained HTML page
 * grouped by request. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "opsbot/audit.h"
#include "opsbot/config.h"
#include "opsbot/err.h"
#include "opsbot/json.h"
#include "opsbot/log.h"
#include "opsbot/store.h"
#include "opsbot/util.h"

#define COMP "audit"

#define SQL_COLS "id, ts, request_id, step, actor, platform, channel, action, detail, hash"
#define SQL_RANGE "(?1 = 0 OR ts >= ?1) AND (?2 = 0 OR ts < ?2)"

#define EM_DASH " \xE2\x80\x94 "

int ob_audit_format_parse(const char *s, enum ob_audit_format *out)
{
    if (!s || !out)
        return OB_EINVAL;
    if (!strcmp(s, "csv"))
        *out = OB_AUDIT_CSV;
    else if (!strcmp(s, "html"))
        *out = OB_AUDIT_HTML;
    else if (!strcmp(s, "jsonl"))
        *out = OB_AUDIT_JSONL;
    else
        return OB_EINVAL;
    return 0;
}

static int db_fail(sqlite3 *db, const char *what)
{
    ob_error(COMP, "%s: %s", what, sqlite3_errmsg(db));
    return OB_ESTORE;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? (const char *)t : "";
}

static void row_record(sqlite3_stmt *st, struct ob_audit_record *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->ts_ms = sqlite3_column_int64(st, 1);
    r->request_id = (char *)col_text(st, 2);
    r->step = (char *)col_text(st, 3);
    r->actor = (char *)col_text(st, 4);
    r->platform = (char *)col_text(st, 5);
    r->channel = (char *)col_text(st, 6);
    r->action = (char *)col_text(st, 7);
    r->detail = (char *)col_text(st, 8);
    ob_strlcpy(r->hash, col_text(st, 9), sizeof(r->hash));
}

static int prepare(sqlite3 *db, const char *sql, int64_t since_ms, int64_t until_ms,
                   sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK)
        return db_fail(db, "audit export");
    sqlite3_bind_int64(*out, 1, since_ms);
    sqlite3_bind_int64(*out, 2, until_ms);
    return 0;
}

/* ---- CSV ------------------------------------------------------------------ */

/* Chat text reaches these fields: ob_csv_field also defuses spreadsheet
 * formulas (docs/AUDIT.md, Exports). */
static void csv_field(FILE *f, const char *v, bool last)
{
    ob_csv_field(f, v);
    fputs(last ? "\r\n" : ",", f);
}

static void csv_record(FILE *f, const struct ob_audit_record *r)
{
    char num[32], when[40];

    snprintf(num, sizeof(num), "%" PRId64, r->id);
    csv_field(f, num, false);
    csv_field(f, ob_time_format(r->ts_ms, when, sizeof(when)), false);
    csv_field(f, r->request_id, false);
    csv_field(f, r->step, false);
    csv_field(f, r->actor, false);
    csv_field(f, r->platform, false);
    csv_field(f, r->channel, false);
    csv_field(f, r->action, false);
    csv_field(f, r->detail, false);
    csv_field(f, r->hash, true);
}

/* ---- JSON lines ----------------------------------------------------------- */

static int jsonl_record(FILE *f, const struct ob_audit_record *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *detail = NULL;
    char when[40];
    char *line = NULL;
    int err = 0;

    if (!o)
        return OB_ENOMEM;
    if (*r->detail)
        detail = cJSON_ParseWithOpts(r->detail, NULL, 1);
    if (!detail)
        detail = cJSON_CreateString(r->detail);
    if (!detail || !cJSON_AddNumberToObject(o, "id", (double)r->id) ||
        !cJSON_AddNumberToObject(o, "ts", (double)r->ts_ms) ||
        !cJSON_AddStringToObject(o, "time", ob_time_format(r->ts_ms, when, sizeof(when))) ||
        !cJSON_AddStringToObject(o, "request", r->request_id) ||
        !cJSON_AddStringToObject(o, "step", r->step) ||
        !cJSON_AddStringToObject(o, "actor", r->actor) ||
        !cJSON_AddStringToObject(o, "platform", r->platform) ||
        !cJSON_AddStringToObject(o, "channel", r->channel) ||
        !cJSON_AddStringToObject(o, "action", r->action)) {
        cJSON_Delete(detail);
        err = OB_ENOMEM;
        goto out;
    }
    cJSON_AddItemToObject(o, "detail", detail);
    if (!cJSON_AddStringToObject(o, "hash", r->hash)) {
        err = OB_ENOMEM;
        goto out;
    }
    line = cJSON_PrintUnformatted(o);
    if (!line) {
        err = OB_ENOMEM;
        goto out;
    }
    fputs(line, f);
    fputc('\n', f);
out:
    cJSON_free(line);
    cJSON_Delete(o);
    return err;
}

/* Flat formats: one line per record in id order. */
static int export_flat(sqlite3 *db, FILE *f, enum ob_audit_format fmt, int64_t since_ms,
                       int64_t until_ms)
{
    sqlite3_stmt *st = NULL;
    int err;
    int rc;

    err = prepare(db, "SELECT " SQL_COLS " FROM audit WHERE " SQL_RANGE " ORDER BY id", since_ms,
                  until_ms, &st);
    if (err)
        return err;
    if (fmt == OB_AUDIT_CSV)
        fputs("id,time,request,step,actor,platform,channel,action,detail,hash\r\n", f);
    for (;;) {
        struct ob_audit_record r;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(db, "audit export");
            break;
        }
        row_record(st, &r);
        if (fmt == OB_AUDIT_CSV)
            csv_record(f, &r);
        else
            err = jsonl_record(f, &r);
        if (err)
            break;
    }
    sqlite3_finalize(st);
    return err;
}

/* ---- HTML ----------------------------------------------------------------- */

/* What a request came to, gathered from its steps. */
struct summary {
    char proposal[512];
    char text[160]; /* what was asked, when nothing was understood */
    char action[128];
    char asked_by[256];
    char first_actor[256];
    char effect[32];
    char rule[128];
    char approved_by[512];
    char refused_by[256];
    char error[256];
    char last_hash[OB_HASH_HEX];
    int64_t exit_status, duration_ms;
    int64_t first_ts, last_ts;
    int64_t nrecords;
    bool has_exit, has_duration;
    bool expired, denied, started, finished, failed, ignored;
};

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static bool jint(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return ob_json_int(v, out);
}

static void append_list(char *buf, size_t len, const char *item)
{
    size_t used = strlen(buf);

    if (used)
        snprintf(buf + used, len - used, ", %s", item);
    else
        ob_strlcpy(buf, item, len);
}

/* “text”, cut at a character boundary with an ellipsis when long. */
static void quote_text(char *out, size_t len, const char *v)
{
    size_t max = len - 10, n = strlen(v);
    bool cut = n > max;

    if (cut) {
        n = max;
        while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
            n--;
    }
    snprintf(out, len, "\xE2\x80\x9C%.*s%s\xE2\x80\x9D", (int)n, v, cut ? "\xE2\x80\xA6" : "");
}

static void summary_add(struct summary *sm, const struct ob_audit_record *r)
{
    cJSON *d = *r->detail ? cJSON_Parse(r->detail) : NULL;
    const char *v;

    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        d = NULL;
    }
    if (sm->nrecords++ == 0)
        sm->first_ts = r->ts_ms;
    sm->last_ts = r->ts_ms;
    ob_strlcpy(sm->last_hash, r->hash, sizeof(sm->last_hash));
    if (!*sm->first_actor && *r->actor && strcmp(r->actor, "opsbot") != 0)
        ob_strlcpy(sm->first_actor, r->actor, sizeof(sm->first_actor));
    if (!*sm->action && *r->action)
        ob_strlcpy(sm->action, r->action, sizeof(sm->action));

    if (!strcmp(r->step, "received") || !strcmp(r->step, "understood")) {
        if (!*sm->asked_by && *r->actor && strcmp(r->actor, "opsbot") != 0)
            ob_strlcpy(sm->asked_by, r->actor, sizeof(sm->asked_by));
        v = jstr(d, "text");
        if (v && *v && !*sm->text)
            quote_text(sm->text, sizeof(sm->text), v);
        v = jstr(d, "proposal");
        if (v && *v)
            ob_strlcpy(sm->proposal, v, sizeof(sm->proposal));
    } else if (!strcmp(r->step, "decided")) {
        v = jstr(d, "effect");
        if (v)
            ob_strlcpy(sm->effect, v, sizeof(sm->effect));
        v = jstr(d, "rule");
        if (v)
            ob_strlcpy(sm->rule, v, sizeof(sm->rule));
    } else if (!strcmp(r->step, "approval_granted")) {
        v = jstr(d, "by");
        append_list(sm->approved_by, sizeof(sm->approved_by), v ? v : r->actor);
    } else if (!strcmp(r->step, "approval_refused")) {
        v = jstr(d, "by");
        ob_strlcpy(sm->refused_by, v ? v : r->actor, sizeof(sm->refused_by));
    } else if (!strcmp(r->step, "approval_expired")) {
        sm->expired = true;
    } else if (!strcmp(r->step, "started")) {
        sm->started = true;
    } else if (!strcmp(r->step, "finished") || !strcmp(r->step, "failed")) {
        if (!strcmp(r->step, "finished"))
            sm->finished = true;
        else
            sm->failed = true;
        sm->has_exit = jint(d, "exit", &sm->exit_status);
        sm->has_duration = jint(d, "duration_ms", &sm->duration_ms);
        v = jstr(d, "error");
        if (v)
            ob_strlcpy(sm->error, v, sizeof(sm->error));
    } else if (!strcmp(r->step, "denied")) {
        sm->denied = true;
    } else if (!strcmp(r->step, "ignored")) {
        sm->ignored = true;
    }
    cJSON_Delete(d);
}

static const char *duration_text(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, len, "%" PRId64 "ms", ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else
        ob_duration_format(ms, buf, len);
    return buf;
}

/* "restart service=checkout env=prod — asked by console:dev — approved by
 * console:oncall — finished exit 0 in 1.2s" */
static void summary_line(const struct summary *sm, char *out, size_t len)
{
    char part[768], dur[48];
    const char *who = *sm->asked_by ? sm->asked_by : sm->first_actor;

    if (*sm->proposal)
        ob_strlcpy(out, sm->proposal, len);
    else if (*sm->action)
        ob_strlcpy(out, sm->action, len);
    else if (*sm->text)
        ob_strlcpy(out, sm->text, len);
    else
        ob_strlcpy(out, "(no action)", len);
#define ADD(...)                                                                                   \
    do {                                                                                           \
        size_t used_ = strlen(out);                                                                \
        snprintf(part, sizeof(part), __VA_ARGS__);                                                 \
        snprintf(out + used_, len - used_, EM_DASH "%s", part);                                    \
    } while (0)
    if (*who)
        ADD("asked by %s", who);
    if (*sm->approved_by)
        ADD("approved by %s", sm->approved_by);
    else if (*sm->refused_by)
        ADD("refused by %s", sm->refused_by);
    else if (sm->expired)
        ADD("approval expired");
    else if (!strcmp(sm->effect, "allow"))
        ADD("allowed%s%s", *sm->rule ? " by rule " : "", sm->rule);
    else if (!strcmp(sm->effect, "deny") || sm->denied)
        ADD("denied%s%s", *sm->rule ? " by rule " : "", sm->rule);
    else if (!strcmp(sm->effect, "approve"))
        ADD("awaiting approval");

    if (sm->finished || sm->failed) {
        const char *what = sm->finished ? "finished" : "failed";

        if (sm->has_exit && sm->has_duration)
            ADD("%s exit %" PRId64 " in %s", what, sm->exit_status,
                duration_text(sm->duration_ms, dur, sizeof(dur)));
        else if (sm->has_exit)
            ADD("%s exit %" PRId64, what, sm->exit_status);
        else if (*sm->error)
            ADD("%s: %s", what, sm->error);
        else
            ADD("%s", what);
    } else if (sm->started) {
        ADD("started, no result recorded");
    } else if (*sm->refused_by || sm->expired || sm->denied || !strcmp(sm->effect, "deny")) {
        ADD("not run");
    } else if (sm->ignored) {
        ADD("ignored");
    }
#undef ADD
}

static void html_detail(FILE *f, const char *detail)
{
    cJSON *d = *detail ? cJSON_Parse(detail) : NULL;
    const cJSON *m;

    if (!cJSON_IsObject(d)) {
        ob_html_escape(f, detail);
        cJSON_Delete(d);
        return;
    }
    cJSON_ArrayForEach(m, d)
    {
        fputs("<div><span class=\"k\">", f);
        ob_html_escape(f, m->string ? m->string : "");
        fputs("</span> ", f);
        if (cJSON_IsString(m)) {
            ob_html_escape(f, m->valuestring);
        } else {
            char *txt = cJSON_PrintUnformatted(m);

            ob_html_escape(f, txt ? txt : "");
            cJSON_free(txt);
        }
        fputs("</div>", f);
    }
    cJSON_Delete(d);
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>opsbot audit trail</title>\n<style>\n"
    "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;"
    "margin:2em;color:#222;background:#fff}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}\n"
    "h2{font-size:1.1em;margin:1.6em 0 .3em;font-family:ui-monospace,monospace}\n"
    ".meta{color:#555;margin:.2em 0}\n"
    ".ok{color:#176b2c;font-weight:bold}\n"
    ".bad{color:#b00020;font-weight:bold}\n"
    ".summary{font-size:1.05em;margin:.3em 0 .6em}\n"
    "table{border-collapse:collapse;width:100%;font-size:.9em}\n"
    "th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}\n"
    "th{background:#f2f2f2}\n"
    "td.d{white-space:pre-wrap;word-break:break-word}\n"
    "td.h,td.t{font-family:ui-monospace,monospace;white-space:nowrap}\n"
    ".k{color:#555;font-weight:bold}\n"
    "</style>\n</head>\n<body>\n<h1>opsbot audit trail</h1>\n";

static int html_request(sqlite3 *db, FILE *f, const char *request_id, int64_t since_ms,
                        int64_t until_ms)
{
    static const char sql[] =
        "SELECT " SQL_COLS " FROM audit WHERE " SQL_RANGE " AND request_id = ?3 ORDER BY id";
    struct summary *sm = ob_xcalloc(1, sizeof(*sm));
    sqlite3_stmt *st = NULL;
    char line[2048], when[40];
    int err;
    int rc;

    err = prepare(db, sql, since_ms, until_ms, &st);
    if (err)
        goto out;
    sqlite3_bind_text(st, 3, request_id, -1, SQLITE_STATIC);
    /* First pass: the summary. */
    for (;;) {
        struct ob_audit_record r;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(db, "audit export");
            goto out;
        }
        row_record(st, &r);
        summary_add(sm, &r);
    }
    sqlite3_reset(st);
    summary_line(sm, line, sizeof(line));
    fputs("<section>\n<h2>", f);
    ob_html_escape(f, *request_id ? request_id : "(no request id)");
    fputs("</h2>\n<p class=\"summary\">", f);
    ob_html_escape(f, line);
    fputs("</p>\n<p class=\"meta\">", f);
    ob_html_escape(f, ob_time_format(sm->first_ts, when, sizeof(when)));
    fputs(" to ", f);
    ob_html_escape(f, ob_time_format(sm->last_ts, when, sizeof(when)));
    fprintf(f, " &middot; %" PRId64 " record%s &middot; chain hash of the last record ",
            sm->nrecords, sm->nrecords == 1 ? "" : "s");
    fputs("<code>", f);
    ob_html_escape(f, sm->last_hash);
    fputs("</code></p>\n<table>\n<tr><th>time</th><th>step</th><th>actor</th><th>details</th>"
          "<th>hash</th></tr>\n",
          f);
    /* Second pass: the steps. */
    for (;;) {
        struct ob_audit_record r;
        char shorth[17]; /* 16 hex digits, as the chat echo shows */

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(db, "audit export");
            goto out;
        }
        row_record(st, &r);
        ob_strlcpy(shorth, r.hash, sizeof(shorth));
        fputs("<tr><td class=\"t\">", f);
        ob_html_escape(f, ob_time_format(r.ts_ms, when, sizeof(when)));
        fputs("</td><td>", f);
        ob_html_escape(f, r.step);
        fputs("</td><td>", f);
        ob_html_escape(f, r.actor);
        fputs("</td><td class=\"d\">", f);
        html_detail(f, r.detail);
        fprintf(f, "</td><td class=\"h\" title=\"");
        ob_html_escape(f, r.hash);
        fprintf(f, "\">#%" PRId64 " ", r.id);
        ob_html_escape(f, shorth);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n</section>\n", f);
out:
    sqlite3_finalize(st);
    free(sm);
    return err;
}

static int export_html(struct ob_store *s, sqlite3 *db, FILE *f, int64_t since_ms, int64_t until_ms)
{
    sqlite3_stmt *st = NULL;
    char why[256], when[40], head[OB_HASH_HEX] = "";
    int64_t total = 0, count = 0, bad_id = 0;
    int verr;
    int err;
    int rc;

    verr = ob_audit_verify(s, &count, &bad_id, why, sizeof(why));
    if (verr != 0 && verr != OB_ETAMPER)
        return verr;
    err = prepare(db, "SELECT count(*) FROM audit WHERE " SQL_RANGE, since_ms, until_ms, &st);
    if (err)
        return err;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    else
        err = db_fail(db, "audit export");
    sqlite3_finalize(st);
    st = NULL;
    if (err)
        return err;
    if (!verr) {
        if (sqlite3_prepare_v2(db, "SELECT hash FROM audit_head WHERE k = 0", -1, &st, NULL) !=
            SQLITE_OK)
            return db_fail(db, "audit export");
        if (sqlite3_step(st) == SQLITE_ROW)
            ob_strlcpy(head, col_text(st, 0), sizeof(head));
        sqlite3_finalize(st);
        st = NULL;
    }

    fputs(html_head, f);
    fputs("<p class=\"meta\">Period: ", f);
    if (since_ms)
        ob_html_escape(f, ob_time_format(since_ms, when, sizeof(when)));
    else
        fputs("the beginning", f);
    fputs(" to ", f);
    if (until_ms)
        ob_html_escape(f, ob_time_format(until_ms, when, sizeof(when)));
    else
        fputs("now", f);
    fprintf(f, " &middot; %" PRId64 " record%s &middot; generated ", total, total == 1 ? "" : "s");
    ob_html_escape(f, ob_time_format(ob_now_ms(), when, sizeof(when)));
    fputs("</p>\n", f);
    if (!verr) {
        fprintf(f, "<p class=\"ok\">chain intact (%" PRId64 " records, head <code>", count);
        ob_html_escape(f, head);
        fputs("</code>)</p>\n", f);
    } else {
        fprintf(f, "<p class=\"bad\">chain BROKEN at record %" PRId64 ": ", bad_id);
        ob_html_escape(f, why);
        fputs("</p>\n", f);
    }

    err = prepare(db,
                  "SELECT request_id, min(id) AS first FROM audit WHERE " SQL_RANGE
                  " GROUP BY request_id ORDER BY first",
                  since_ms, until_ms, &st);
    if (err)
        return err;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(db, "audit export");
            break;
        }
        err = html_request(db, f, col_text(st, 0), since_ms, until_ms);
        if (err)
            break;
    }
    sqlite3_finalize(st);
    if (!err && total == 0)
        fputs("<p class=\"meta\">No records in this period.</p>\n", f);
    fputs("</body>\n</html>\n", f);
    return err;
}

int ob_audit_export(struct ob_store *s, FILE *f, enum ob_audit_format fmt, int64_t since_ms,
                    int64_t until_ms)
{
    sqlite3 *db = ob_store_db(s);
    int err;

    if (!db || !f)
        return OB_EINVAL;
    switch (fmt) {
    case OB_AUDIT_CSV:
    case OB_AUDIT_JSONL:
        err = export_flat(db, f, fmt, since_ms, until_ms);
        break;
    case OB_AUDIT_HTML:
        err = export_html(s, db, f, since_ms, until_ms);
        break;
    default:
        return OB_EINVAL;
    }
    if (fflush(f) != 0 || ferror(f)) {
        int e = errno ? -errno : -EIO;

        ob_error(COMP, "export: write failed: %s", ob_strerror(e));
        if (!err)
            err = e;
    }
    return err;
}
