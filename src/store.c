/* The state store: SQLite in WAL mode, one file, statements prepared once.
 *
 * Writes are batched: every write function opens `BEGIN IMMEDIATE` lazily
 * (ob_store_begin) and ob_store_flush() commits. synchronous=FULL makes each
 * commit durable (one fsync of the WAL per flush, not per write) until the
 * daemon attaches its loop (store_sync.c): then commits only write, and
 * durability is asked for explicitly, off the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/store.h"
#include "opsbot/util.h"
#include "store_int.h"

#define COMP "store"

#define SCHEMA_VERSION 1
#define EVENT_KEEP_MS (7LL * 24 * 3600 * 1000)
#define RATE_KEEP_MS (31LL * 24 * 3600 * 1000)
#define PRUNE_EVERY 1000
#define ID_MAX 512             /* event ids, approval ids, user and action names */
#define JSON_MAX (1024 * 1024) /* one serialised approval */

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_CLAIM] = "INSERT OR IGNORE INTO events(id, ts) VALUES (?1, ?2)",
    [ST_EVENTS_PRUNE] = "DELETE FROM events WHERE ts < ?1",
    [ST_RATE_NOTE] = "INSERT INTO rate(user, action, ts) VALUES (?1, ?2, ?3)",
    [ST_RATE_COUNT] = "SELECT count(*) FROM rate WHERE user = ?1 AND action = ?2 AND ts >= ?3",
    [ST_RATE_PRUNE] = "DELETE FROM rate WHERE ts < ?1",
    /* An upsert rather than INSERT OR REPLACE: the row keeps its rowid, so a
     * replaced approval keeps its place in the load order. */
    [ST_APPROVAL_SAVE] = "INSERT INTO approvals(id, request_id, deadline, json) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET "
                         "request_id = excluded.request_id, deadline = excluded.deadline, "
                         "json = excluded.json",
    [ST_APPROVAL_DELETE] = "DELETE FROM approvals WHERE id = ?1",
    [ST_APPROVALS_LOAD] = "SELECT id, request_id, deadline, json FROM approvals ORDER BY rowid",
    [ST_TIP_GET] = "SELECT last_id, hash FROM audit_head WHERE k = 0",
    [ST_TIP_SET] = "UPDATE audit_head SET last_id = ?1, hash = ?2 WHERE k = 0",
};

/* Migration i brings the schema from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE events ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  ts INTEGER NOT NULL);"
    "CREATE INDEX events_ts ON events(ts);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  request_id TEXT NOT NULL DEFAULT '',"
    "  step TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL DEFAULT '',"
    "  platform TEXT NOT NULL DEFAULT '',"
    "  channel TEXT NOT NULL DEFAULT '',"
    "  action TEXT NOT NULL DEFAULT '',"
    "  detail TEXT NOT NULL DEFAULT '',"
    "  hash TEXT NOT NULL);"
    "CREATE INDEX audit_request ON audit(request_id, id);"
    "CREATE INDEX audit_ts ON audit(ts);"
    "CREATE TABLE audit_head ("
    "  k INTEGER PRIMARY KEY CHECK (k = 0),"
    "  last_id INTEGER NOT NULL,"
    "  hash TEXT NOT NULL);"
    "INSERT INTO audit_head(k, last_id, hash) VALUES (0, 0, "
    "  '0000000000000000000000000000000000000000000000000000000000000000');"
    "CREATE TABLE approvals ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  deadline INTEGER NOT NULL,"
    "  json TEXT NOT NULL);"
    "CREATE TABLE rate ("
    "  user TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  ts INTEGER NOT NULL);"
    "CREATE INDEX rate_key ON rate(user, action, ts);"
    "CREATE INDEX rate_ts ON rate(ts);",
    /* 2: claims keyed by their id alone. A rowid table with a TEXT primary
     * key is two b-trees (the rows and the key's index); every event paid
     * for both, and every commit wrote a page of each. */
    "CREATE TABLE events_v2 ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  ts INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO events_v2(id, ts) SELECT id, ts FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v2 RENAME TO events;"
    "CREATE INDEX events_ts ON events(ts);",
};

/* The one place SQLite result codes become OB_ESTORE. */
int ob__store_fail(struct ob_store *s, const char *what)
{
    const char *msg = s->db ? sqlite3_errmsg(s->db) : "no database";

    ob_error(COMP, "%s: %s", what, msg);
    ob_strlcpy(s->error, msg, sizeof(s->error));
    return OB_ESTORE;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int exec_sql(struct ob_store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        ob_error(COMP, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return OB_ESTORE;
    }
    return 0;
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int step_done(struct ob_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int err = 0;

    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = ob__store_fail(s, what);
    done(st);
    return err;
}

static int pragma_int(struct ob_store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    int err = 0;

    if (rc != SQLITE_OK)
        return ob__store_fail(s, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        err = ob__store_fail(s, sql);
    sqlite3_finalize(st);
    return err;
}

static int migrate(struct ob_store *s)
{
    const int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
    int version = 0;
    int err;

    err = pragma_int(s, "PRAGMA user_version", &version);
    if (err)
        return err;
    if (version > latest) {
        ob_error(COMP, "database schema version %d is newer than this opsbot knows (%d)", version,
                 latest);
        return OB_ESTORE;
    }
    while (version < latest) {
        char sql[64];

        err = exec_sql(s, "BEGIN IMMEDIATE", "migration");
        if (err)
            return err;
        err = exec_sql(s, migrations[version], "migration");
        if (!err) {
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
            err = exec_sql(s, sql, "migration");
        }
        if (!err)
            err = exec_sql(s, "COMMIT", "migration");
        if (err) {
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return err;
        }
        version++;
        if (version == latest)
            ob_info(COMP, "state store schema at version %d", version);
    }
    return 0;
}

static int configure(struct ob_store *s, const char *path)
{
    sqlite3_stmt *st = NULL;
    int err;
    int rc;

    rc = sqlite3_extended_result_codes(s->db, 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(s->db, OB__STORE_BUSY_MS);
    if (rc != SQLITE_OK)
        return ob__store_fail(s, "configure");
    /* 1 KiB pages for a new file (one that exists keeps its own): every
     * commit writes each page it touched whole into the WAL, and a request's
     * commits touch a few bytes of 5-9 pages. The bench's WAL grew 2.4x
     * slower than with SQLite's default 4 KiB (tests/bench/notes.md). */
    rc = sqlite3_exec(s->db, "PRAGMA page_size=1024", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return ob__store_fail(s, "configure");
    /* journal_mode answers with the mode in effect ("memory" for :memory:). */
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return ob__store_fail(s, path);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return ob__store_fail(s, path);
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0 &&
        strcmp(path, ":memory:") != 0)
        ob_warn(COMP, "%s: journal mode is %s, not wal", path,
                (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    err = exec_sql(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", path);
    if (err)
        return err;
    return migrate(s);
}

int ob_store_open(struct ob_store **out, const char *path)
{
    struct ob_store *s;
    int err;
    int rc;

    if (!out || !path || !*path)
        return OB_EINVAL;
    *out = NULL;
    if (sodium_init() < 0) {
        ob_error(COMP, "libsodium initialisation failed");
        return OB_ESTORE;
    }
    s = ob_xcalloc(1, sizeof(*s));
    s->path = ob_xstrdup(path);
    s->wal_fd = -1;
    s->wal_keep = 64 * 1024 * 1024; /* what journal_size_limit was */
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ob_error(COMP, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        err = OB_ESTORE;
        goto out;
    }
    err = configure(s, path);
    if (err)
        goto out;
    for (int i = 0; i < ST_COUNT_; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            err = ob__store_fail(s, stmt_sql[i]);
            goto out;
        }
    }
    *out = s;
    s = NULL;
out:
    if (s) {
        for (int i = 0; i < ST_COUNT_; i++)
            sqlite3_finalize(s->st[i]);
        sqlite3_close(s->db);
        free(s->path);
        free(s);
    }
    return err;
}

int ob_store_begin(struct ob_store *s)
{
    if (!s)
        return OB_EINVAL;
    if (!sqlite3_get_autocommit(s->db))
        return 0;
    /* a new transaction: a tip held from one SQLite rolled back is stale */
    s->tip.held = s->tip.dirty = false;
    return step_done(s, s->st[ST_BEGIN], "begin");
}

/* The tip goes to its row in the transaction it covers, just before COMMIT. */
static int tip_write(struct ob_store *s)
{
    sqlite3_stmt *st = s->st[ST_TIP_SET];

    if (!s->tip.dirty)
        return 0;
    sqlite3_bind_int64(st, 1, s->tip.last_id);
    sqlite3_bind_text(st, 2, s->tip.hash, -1, SQLITE_STATIC);
    return step_done(s, st, "audit head update");
}

int ob_store_flush(struct ob_store *s)
{
    int err;

    if (!s)
        return OB_EINVAL;
    if (sqlite3_get_autocommit(s->db))
        return 0;
    err = tip_write(s);
    if (!err)
        err = step_done(s, s->st[ST_COMMIT], "commit");
    s->tip.held = s->tip.dirty = false; /* committed, or rolled back below */
    if (!err)
        ob__store_committed(s);
    /* SQLite may or may not have rolled the batch back itself (SQLITE_FULL,
     * SQLITE_IOERR): make sure, so that it cannot become durable later. */
    if (err && !sqlite3_get_autocommit(s->db)) {
        char why[sizeof(s->error)];

        ob_strlcpy(why, s->error, sizeof(why));
        ob_error(COMP, "commit failed: pending writes rolled back");
        step_done(s, s->st[ST_ROLLBACK], "rollback");
        ob_strlcpy(s->error, why, sizeof(s->error));
    }
    return err;
}

void ob_store_release_memory(struct ob_store *s)
{
    if (s && s->db)
        sqlite3_db_release_memory(s->db);
}

int ob_store_tip(struct ob_store *s, bool for_write, int64_t *last_id, char hash[OB_STORE_TIP_HEX])
{
    sqlite3_stmt *st;
    int err = 0;
    int rc;

    *last_id = -1;
    hash[0] = '\0';
    if (!s)
        return OB_EINVAL;
    if (for_write) {
        err = ob_store_begin(s);
        if (err)
            return err;
    }
    if (s->tip.held && !sqlite3_get_autocommit(s->db)) {
        *last_id = s->tip.last_id;
        memcpy(hash, s->tip.hash, OB_STORE_TIP_HEX);
        return 0;
    }
    s->tip.held = s->tip.dirty = false;
    st = s->st[ST_TIP_GET];
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 1);

        *last_id = sqlite3_column_int64(st, 0);
        ob_strlcpy(hash, h ? h : "", OB_STORE_TIP_HEX);
    } else if (rc == SQLITE_DONE) {
        err = OB_ESTORE;
    } else {
        err = ob__store_fail(s, "audit head");
    }
    done(st);
    if (!err && for_write) {
        s->tip.held = true;
        s->tip.last_id = *last_id;
        memcpy(s->tip.hash, hash, OB_STORE_TIP_HEX);
    }
    return err;
}

void ob_store_tip_advance(struct ob_store *s, int64_t last_id, const char *hash)
{
    s->tip.held = s->tip.dirty = true;
    s->tip.last_id = last_id;
    ob_strlcpy(s->tip.hash, hash, sizeof(s->tip.hash));
}

const char *ob_store_error(const struct ob_store *s)
{
    return s ? s->error : "";
}

void ob_store_close(struct ob_store *s)
{
    if (!s)
        return;
    if (ob_store_flush(s) != 0 && !sqlite3_get_autocommit(s->db)) {
        ob_error(COMP, "closing: pending writes rolled back");
        step_done(s, s->st[ST_ROLLBACK], "rollback");
    }
    for (int i = 0; i < ST_COUNT_; i++)
        sqlite3_finalize(s->st[i]);
    for (size_t i = 0; i < s->ncache; i++) {
        sqlite3_finalize(s->cache[i].st);
        free(s->cache[i].sql);
    }
    if (sqlite3_close(s->db) != SQLITE_OK)
        ob_error(COMP, "close: %s", sqlite3_errmsg(s->db));
    free(s->path);
    ob__store_sync_release(s); /* frees s now, or when the disk work ends */
}

void *ob_store_db(struct ob_store *s)
{
    return s ? s->db : NULL;
}

void *ob_store_stmt(struct ob_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;

    if (!s || !sql)
        return NULL;
    for (size_t i = 0; i < s->ncache; i++) {
        if (!strcmp(s->cache[i].sql, sql))
            return s->cache[i].st;
    }
    if (s->ncache == STMT_CACHE_MAX) {
        ob_error(COMP, "statement cache full (%d)", STMT_CACHE_MAX);
        return NULL;
    }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        ob__store_fail(s, sql);
        return NULL;
    }
    s->cache[s->ncache].sql = ob_xstrdup(sql);
    s->cache[s->ncache].st = st;
    s->ncache++;
    return st;
}

static int check_text(const char *v, size_t max)
{
    if (!v)
        return OB_EINVAL;
    if (strlen(v) > max)
        return OB_E2BIG;
    return 0;
}

int ob_store_claim(struct ob_store *s, const char *event_id, int64_t now_ms)
{
    sqlite3_stmt *st;
    int err;

    if (!s)
        return OB_EINVAL;
    err = check_text(event_id, ID_MAX);
    if (err)
        return err;
    err = ob_store_begin(s);
    if (err)
        return err;
    if (s->claims++ % PRUNE_EVERY == 0) {
        st = s->st[ST_EVENTS_PRUNE];
        sqlite3_bind_int64(st, 1, now_ms - EVENT_KEEP_MS);
        err = step_done(s, st, "prune events");
        if (err)
            return err;
    }
    st = s->st[ST_CLAIM];
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    err = step_done(s, st, "claim");
    if (err)
        return err;
    return sqlite3_changes(s->db) == 0 ? OB_EDUP : 0;
}

int ob_store_count_note(struct ob_store *s, const char *user, const char *action, int64_t now_ms)
{
    sqlite3_stmt *st;
    int err;

    if (!s)
        return OB_EINVAL;
    err = check_text(user, ID_MAX);
    if (!err)
        err = check_text(action, ID_MAX);
    if (!err)
        err = ob_store_begin(s);
    if (err)
        return err;
    if (s->notes++ % PRUNE_EVERY == 0) {
        st = s->st[ST_RATE_PRUNE];
        sqlite3_bind_int64(st, 1, now_ms - RATE_KEEP_MS);
        err = step_done(s, st, "prune rate counters");
        if (err)
            return err;
    }
    st = s->st[ST_RATE_NOTE];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    return step_done(s, st, "rate note");
}

int ob_store_count(struct ob_store *s, const char *user, const char *action, int64_t since_ms)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    int err;
    int rc;

    if (!s)
        return OB_EINVAL;
    err = check_text(user, ID_MAX);
    if (!err)
        err = check_text(action, ID_MAX);
    if (err)
        return err;
    st = s->st[ST_RATE_COUNT];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, since_ms);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        err = ob__store_fail(s, "rate count");
    done(st);
    if (err)
        return err;
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

int ob_store_approval_save(struct ob_store *s, const struct ob_stored_approval *a)
{
    sqlite3_stmt *st;
    int err;

    if (!s || !a)
        return OB_EINVAL;
    err = check_text(a->id, ID_MAX);
    if (!err)
        err = check_text(a->request_id, ID_MAX);
    if (!err)
        err = check_text(a->json, JSON_MAX);
    if (!err)
        err = ob_store_begin(s);
    if (err)
        return err;
    st = s->st[ST_APPROVAL_SAVE];
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->deadline_ms);
    sqlite3_bind_text(st, 4, a->json, -1, SQLITE_STATIC);
    return step_done(s, st, "approval save");
}

int ob_store_approval_delete(struct ob_store *s, const char *id)
{
    sqlite3_stmt *st;
    int err;

    if (!s)
        return OB_EINVAL;
    err = check_text(id, ID_MAX);
    if (!err)
        err = ob_store_begin(s);
    if (err)
        return err;
    st = s->st[ST_APPROVAL_DELETE];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return step_done(s, st, "approval delete");
}

static char *column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *p = malloc(n + 1);

    if (!p)
        return NULL;
    if (t)
        memcpy(p, t, n);
    p[n] = '\0';
    return p;
}

int ob_store_approvals_load(struct ob_store *s, struct ob_stored_approval **out, size_t *n)
{
    struct ob_stored_approval *arr = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *st;
    int err = 0;
    int rc;

    if (!s || !out || !n)
        return OB_EINVAL;
    *out = NULL;
    *n = 0;
    st = s->st[ST_APPROVALS_LOAD];
    for (;;) {
        struct ob_stored_approval *a;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = ob__store_fail(s, "approvals load");
            goto out;
        }
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct ob_stored_approval *narr = reallocarray(arr, ncap, sizeof(*arr));

            if (!narr) {
                err = OB_ENOMEM;
                goto out;
            }
            arr = narr;
            cap = ncap;
        }
        a = &arr[len];
        memset(a, 0, sizeof(*a));
        len++;
        a->id = column_dup(st, 0);
        a->request_id = column_dup(st, 1);
        a->deadline_ms = sqlite3_column_int64(st, 2);
        a->json = column_dup(st, 3);
        if (!a->id || !a->request_id || !a->json) {
            err = OB_ENOMEM;
            goto out;
        }
    }
    *out = arr;
    *n = len;
    arr = NULL;
    len = 0;
out:
    done(st);
    ob_store_approvals_free(arr, len);
    return err;
}

void ob_store_approvals_free(struct ob_stored_approval *a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++) {
        free(a[i].id);
        free(a[i].request_id);
        free(a[i].json);
    }
    free(a);
}
