/* Unit tests for the SQLite state store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <uv.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/metrics.h"
#include "opsbot/store.h"

#define DAY_MS (24LL * 3600 * 1000)

struct tmp {
    char dir[64];
    char db[128];
};

static void tmp_make(struct tmp *t)
{
    strcpy(t->dir, "/tmp/ob-store-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof(t->db), "%s/state.db", t->dir);
}

static void tmp_clean(struct tmp *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", t->db, suffix[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(t->dir), 0);
}

/* Runs one integer query on a separate connection (what another process sees). */
static int64_t other_conn_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs sql on a connection of its own, opening (or making) the file. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Every cut of a file in this program goes through here. While the file
 * cut is cut_watch.wal, another connection (probe) tries to take the
 * writer lock: the tidy must be holding it, so no commit can land past the
 * cut meanwhile. */
static struct {
    const char *wal;
    sqlite3 *probe;
    int cuts, unlocked;
} cut_watch;

int ftruncate(int fd, off_t len)
{
    struct stat a, b;

    if (cut_watch.wal && fstat(fd, &a) == 0 && stat(cut_watch.wal, &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        cut_watch.cuts++;
        if (sqlite3_exec(cut_watch.probe, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
            cut_watch.unlocked++;
            sqlite3_exec(cut_watch.probe, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    return (int)syscall(SYS_ftruncate, fd, len);
}

/* One integer query on the store's own connection. */
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

static void test_open_migrate_reopen(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;
    char id[] = "a-1", req[] = "r-1", json[] = "{\"n\":1}";
    struct ob_stored_approval a = {.id = id, .request_id = req, .json = json, .deadline_ms = 5000};
    struct ob_stored_approval *loaded = NULL;
    size_t n = 0;

    (void)state;
    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_non_null(ob_store_db(s));
    assert_int_equal(ob_store_claim(s, "console:e1", 1000), 0);
    assert_int_equal(ob_store_count_note(s, "console:dev", "restart", 1000), 0);
    assert_int_equal(ob_store_approval_save(s, &a), 0);
    assert_int_equal(ob_store_flush(s), 0);
    ob_store_close(s);

    /* Schema version and WAL mode as seen from outside. */
    assert_int_equal(other_conn_int(t.db, "PRAGMA user_version"), 2);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 1);

    s = NULL;
    assert_int_equal(ob_store_open(&s, t.db), 0); /* migration is a no-op now */
    assert_int_equal(ob_store_claim(s, "console:e1", 2000), OB_EDUP);
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 0), 1);
    assert_int_equal(ob_store_approvals_load(s, &loaded, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(loaded[0].id, "a-1");
    assert_string_equal(loaded[0].request_id, "r-1");
    assert_string_equal(loaded[0].json, "{\"n\":1}");
    assert_int_equal(loaded[0].deadline_ms, 5000);
    ob_store_approvals_free(loaded, n);
    ob_store_close(s);
    tmp_clean(&t);
}

/* A new state file gets 1 KiB pages; one that exists keeps its own (the
 * page size is fixed once a file has its first page). */
static void test_page_size(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;

    (void)state;
    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    ob_store_close(s);
    assert_int_equal(other_conn_int(t.db, "PRAGMA page_size"), 1024);
    tmp_clean(&t);

    tmp_make(&t);
    raw_exec(t.db, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;");
    s = NULL;
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(ob_store_claim(s, "console:e1", 1000), 0);
    assert_int_equal(ob_store_flush(s), 0);
    ob_store_close(s);
    assert_int_equal(other_conn_int(t.db, "PRAGMA page_size"), 4096);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 1);
    tmp_clean(&t);
}

/* A version-1 database (events as a rowid table) keeps its claims when
 * migrated to version 2 (events WITHOUT ROWID). */
static void test_migrate_events_v2(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;

    (void)state;
    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    ob_store_close(s);
    raw_exec(t.db, "DROP TABLE events;"
                   "CREATE TABLE events (id TEXT PRIMARY KEY NOT NULL,"
                   "  ts INTEGER NOT NULL);"
                   "CREATE INDEX events_ts ON events(ts);"
                   "INSERT INTO events VALUES ('slack:Ev1', 1000);"
                   "PRAGMA user_version = 1;");
    s = NULL;
    assert_int_equal(ob_store_open(&s, t.db), 0);
    ob_store_close(s);
    assert_int_equal(other_conn_int(t.db, "PRAGMA user_version"), 2);
    assert_int_equal(other_conn_int(t.db, "SELECT wr FROM pragma_table_list WHERE name = 'events'"),
                     1);
    s = NULL;
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev1", 2000), OB_EDUP);
    assert_int_equal(ob_store_claim(s, "slack:Ev2", 2000), 0);
    ob_store_close(s);
    tmp_clean(&t);
}

static void test_claim_dup(void **state)
{
    struct ob_store *s = NULL;
    char big[600];

    (void)state;
    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev01", 100), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev01", 200), OB_EDUP);
    assert_int_equal(ob_store_claim(s, "slack:Ev02", 200), 0);
    /* ids are exact: case matters, prefixes are different events */
    assert_int_equal(ob_store_claim(s, "slack:ev01", 200), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev0", 200), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev01", 300), OB_EDUP);
    assert_int_equal(ob_store_claim(s, NULL, 300), OB_EINVAL);
    assert_int_equal(ob_store_claim(NULL, "x", 300), OB_EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ob_store_claim(s, big, 300), OB_E2BIG);
    /* flush with nothing pending is fine, twice */
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(ob_store_claim(s, "slack:Ev02", 400), OB_EDUP);
    ob_store_close(s);
    ob_store_close(NULL);
}

static void test_claim_prune(void **state)
{
    struct ob_store *s = NULL;
    char id[32];
    const int64_t t0 = 1000000;
    const int64_t later = t0 + 8 * DAY_MS;

    (void)state;
    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    assert_int_equal(ob_store_claim(s, "old", t0), 0);                /* claim 1 */
    assert_int_equal(ob_store_claim(s, "recent", later - DAY_MS), 0); /* claim 2 */
    for (int i = 3; i <= 1000; i++) {
        snprintf(id, sizeof(id), "e%d", i);
        assert_int_equal(ob_store_claim(s, id, later), 0);
    }
    /* 1000 claims so far: "old" (8 days old) is still there ... */
    assert_int_equal(db_int(s, "SELECT count(*) FROM events WHERE id = 'old'"), 1);
    /* ... claim 1001 prunes first, so it can be claimed again. */
    assert_int_equal(ob_store_claim(s, "old", later), 0);
    assert_int_equal(db_int(s, "SELECT count(*) FROM events"), 1000);
    /* 7 days are kept. */
    assert_int_equal(ob_store_claim(s, "recent", later), OB_EDUP);
    assert_int_equal(ob_store_claim(s, "e500", later), OB_EDUP);
    ob_store_close(s);
}

static void test_batch_and_close_flushes(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;

    (void)state;
    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(ob_store_claim(s, "c:1", 10), 0);
    assert_int_equal(ob_store_claim(s, "c:2", 10), 0);
    /* The batch is not visible to another connection until flushed ... */
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 0);
    /* ... but the writer itself sees it. */
    assert_int_equal(ob_store_claim(s, "c:1", 11), OB_EDUP);
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 2);

    /* Writes then close without flush: close commits. */
    assert_int_equal(ob_store_claim(s, "c:3", 12), 0);
    assert_int_equal(ob_store_count_note(s, "u", "a", 12), 0);
    ob_store_close(s);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 3);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM rate"), 1);

    s = NULL;
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(ob_store_claim(s, "c:3", 13), OB_EDUP);
    ob_store_close(s);
    tmp_clean(&t);
}

static void test_rate_windows(void **state)
{
    struct ob_store *s = NULL;

    (void)state;
    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 0), 0);
    assert_int_equal(ob_store_count_note(s, "console:dev", "restart", 1000), 0);
    assert_int_equal(ob_store_count_note(s, "console:dev", "restart", 2000), 0);
    assert_int_equal(ob_store_count_note(s, "console:dev", "restart", 3000), 0);
    assert_int_equal(ob_store_count_note(s, "console:dev", "scale", 2500), 0);
    assert_int_equal(ob_store_count_note(s, "console:ops", "restart", 2500), 0);

    assert_int_equal(ob_store_count(s, "console:dev", "restart", 0), 3);
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 1000), 3); /* inclusive */
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 1001), 2);
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 3000), 1);
    assert_int_equal(ob_store_count(s, "console:dev", "restart", 3001), 0);
    assert_int_equal(ob_store_count(s, "console:dev", "scale", 0), 1);
    assert_int_equal(ob_store_count(s, "console:ops", "restart", 0), 1);
    assert_int_equal(ob_store_count(s, "console:nobody", "restart", 0), 0);
    assert_int_equal(ob_store_count(s, NULL, "restart", 0), OB_EINVAL);
    assert_int_equal(ob_store_count_note(s, "u", NULL, 0), OB_EINVAL);
    ob_store_close(s);
}

static void test_approvals(void **state)
{
    struct ob_store *s = NULL;
    char id1[] = "a-1", id2[] = "a-2", r1[] = "r-1", r2[] = "r-2", r[] = "r";
    char j1[] = "{\"v\":1}", j2[] = "{\"v\":2}", j3[] = "{\"v\":3}", j0[] = "{}";
    struct ob_stored_approval a1 = {.id = id1, .request_id = r1, .json = j1, .deadline_ms = 100};
    struct ob_stored_approval a2 = {.id = id2, .request_id = r2, .json = j2, .deadline_ms = 200};
    struct ob_stored_approval a1b = {.id = id1, .request_id = r1, .json = j3, .deadline_ms = 300};
    struct ob_stored_approval bad = {.id = NULL, .request_id = r, .json = j0};
    struct ob_stored_approval *l = NULL;
    size_t n = 99;

    (void)state;
    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    assert_int_equal(ob_store_approvals_load(s, &l, &n), 0);
    assert_int_equal(n, 0);
    assert_null(l);

    assert_int_equal(ob_store_approval_save(s, &a1), 0);
    assert_int_equal(ob_store_approval_save(s, &a2), 0);
    assert_int_equal(ob_store_approval_save(s, &a1b), 0); /* replace keeps its place */
    assert_int_equal(ob_store_approval_save(s, &bad), OB_EINVAL);
    assert_int_equal(ob_store_approval_save(s, NULL), OB_EINVAL);
    assert_int_equal(ob_store_approvals_load(s, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].id, "a-1");
    assert_string_equal(l[0].json, "{\"v\":3}");
    assert_int_equal(l[0].deadline_ms, 300);
    assert_string_equal(l[1].id, "a-2");
    assert_string_equal(l[1].request_id, "r-2");
    assert_int_equal(l[1].deadline_ms, 200);
    ob_store_approvals_free(l, n);

    assert_int_equal(ob_store_approval_delete(s, "a-1"), 0);
    assert_int_equal(ob_store_approval_delete(s, "a-1"), 0); /* idempotent */
    assert_int_equal(ob_store_approval_delete(s, NULL), OB_EINVAL);
    assert_int_equal(ob_store_approvals_load(s, &l, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].id, "a-2");
    ob_store_approvals_free(l, n);
    ob_store_approvals_free(NULL, 0);
    ob_store_close(s);
}

static void test_open_errors(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;
    char path[160];
    FILE *f;

    (void)state;
    tmp_make(&t);
    /* A directory is not a database. */
    assert_int_equal(ob_store_open(&s, t.dir), OB_ESTORE);
    assert_null(s);
    /* Missing parent directory. */
    snprintf(path, sizeof(path), "%s/no/such/dir/x.db", t.dir);
    assert_int_equal(ob_store_open(&s, path), OB_ESTORE);
    assert_null(s);
    assert_int_equal(ob_store_open(&s, NULL), OB_EINVAL);
    assert_int_equal(ob_store_open(&s, ""), OB_EINVAL);
    assert_int_equal(ob_store_open(NULL, ":memory:"), OB_EINVAL);

    /* A file that is not SQLite. */
    f = fopen(t.db, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, just text\n", f);
    fclose(f);
    assert_int_equal(ob_store_open(&s, t.db), OB_ESTORE);
    assert_null(s);
    unlink(t.db);

    /* A schema from a newer opsbot is refused, not "migrated". */
    assert_int_equal(ob_store_open(&s, t.db), 0);
    ob_store_close(s);
    s = NULL;
    {
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(t.db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(ob_store_open(&s, t.db), OB_ESTORE);
    assert_null(s);
    tmp_clean(&t);
}

static void test_stmt_cache(void **state)
{
    struct ob_store *s = NULL;
    void *a, *b;

    (void)state;
    assert_int_equal(ob_store_open(&s, ":memory:"), 0);
    a = ob_store_stmt(s, "SELECT count(*) FROM audit");
    assert_non_null(a);
    b = ob_store_stmt(s, "SELECT count(*) FROM audit");
    assert_ptr_equal(a, b);
    assert_null(ob_store_stmt(s, "SELECT nonsense FROM nowhere"));
    assert_int_equal(ob_store_begin(s), 0);
    assert_int_equal(ob_store_begin(s), 0); /* already open: no-op */
    assert_int_equal(ob_store_flush(s), 0);
    ob_store_close(s);
}

/* ---- the daemon's mode: durability off the loop (src/store_sync.c) ---- */

struct synced {
    int calls, status;
};

static void on_synced(void *data, int status)
{
    struct synced *y = data;

    y->calls++;
    y->status = status;
}

/* The quiet upkeep, step after step, as the daemon's timer runs it. */
static void tidy_all(struct ob_store *s, uv_loop_t *loop)
{
    for (int i = 0; i < 1000 && ob_store_tidy(s); i++)
        uv_run(loop, UV_RUN_DEFAULT);
    assert_false(ob_store_tidy(s));
}

static void test_async_sync(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL, *m = NULL;
    struct synced a = {0}, b = {0};
    struct stat st0, st1;
    uv_loop_t loop;
    char id[32];

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    /* ":memory:" has nothing to sync: it stays synchronous */
    assert_int_equal(ob_store_open(&m, ":memory:"), 0);
    assert_int_not_equal(ob_store_attach_loop(m, &loop), 0);
    assert_false(ob_store_is_async(m));
    assert_int_equal(ob_store_sync(m, on_synced, &a), OB_EINVAL);
    ob_store_close(m);

    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(db_int(s, "PRAGMA synchronous"), 2); /* FULL until attached */
    assert_int_equal(ob_store_attach_loop(s, &loop), 0);
    assert_true(ob_store_is_async(s));
    assert_int_equal(db_int(s, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(ob_store_claim(s, "c:1", 10), 0);
    assert_int_equal(ob_store_flush(s), 0);
    /* two callers: never called before returning, each exactly once */
    ob_metrics_reset();
    assert_int_equal(ob_store_sync(s, on_synced, &a), 0);
    assert_int_equal(ob_store_sync(s, on_synced, &b), 0);
    assert_int_equal(a.calls + b.calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    /* the first began at once; the second (asked while it ran) after it */
    assert_true(ob_metrics_value("opsbot_store_fsync_seconds", NULL, 0) == 2.0);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    /* quiet, with nothing committed since that fsync: a sync without a
     * waiter has nothing to do */
    assert_int_equal(ob_store_sync(s, NULL, NULL), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);

    /* past 1,000 WAL pages a PASSIVE checkpoint runs on the thread pool and
     * copies pages into the database file (autocheckpoint itself is off) */
    assert_int_equal(stat(t.db, &st0), 0);
    for (int i = 0; i < 1500; i++) {
        snprintf(id, sizeof(id), "c:bulk-%d", i);
        assert_int_equal(ob_store_claim(s, id, 20), 0);
        assert_int_equal(ob_store_flush(s), 0);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(stat(t.db, &st1), 0);
    assert_true(st1.st_size > st0.st_size);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 1501);

    /* Quiet (the tidy steps): what no checkpoint covered yet is copied
     * too, so the next commit starts the WAL over (SQLite does so only
     * once all of it was copied) instead of growing it further. */
    tidy_all(s, &loop);
    assert_int_equal(ob_store_claim(s, "c:after-quiet", 30), 0);
    assert_int_equal(ob_store_flush(s), 0);
    {
        sqlite3 *db;
        sqlite3_stmt *st;

        /* (busy, frames in the WAL, frames checkpointed) */
        assert_int_equal(sqlite3_open(t.db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_true(sqlite3_column_int(st, 1) < 20);
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    /* A WAL file a burst left larger than wal_keep: commits never cut it
     * (journal_size_limit is off: that cut ran inside a commit, on the
     * loop), and nothing on the thread pool takes the writer lock (the
     * loop would wait for it asleep); quiet moments cut it back to
     * wal_keep, a few MB a step on the loop, under the loop's own lock. */
    {
        char wal[300];
        sqlite3 *other;

        snprintf(wal, sizeof(wal), "%s-wal", t.db);
        ob_store_set_wal_keep(s, 256 * 1024);
        for (int i = 0; i < 300; i++) {
            snprintf(id, sizeof(id), "c:burst-%d", i);
            assert_int_equal(ob_store_claim(s, id, 40), 0);
            assert_int_equal(ob_store_flush(s), 0);
        }
        assert_int_equal(stat(wal, &st0), 0);
        assert_true(st0.st_size > 1024 * 1024);
        /* another process holds the writer lock: the tidy waits for it
         * nowhere, cuts nothing, and gives up for this quiet moment */
        assert_int_equal(sqlite3_open(t.db, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        tidy_all(s, &loop);
        assert_int_equal(stat(wal, &st1), 0);
        assert_int_equal(st1.st_size, st0.st_size);
        assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(other);
        /* the next quiet moment: with no commit of ours in between, the
         * tidy's own small commit starts the WAL over, then the cut, each
         * step under the writer lock */
        assert_int_equal(sqlite3_open(t.db, &cut_watch.probe), SQLITE_OK);
        assert_int_equal(sqlite3_exec(cut_watch.probe, "PRAGMA journal_mode", NULL, NULL, NULL),
                         SQLITE_OK);
        cut_watch.wal = wal;
        tidy_all(s, &loop);
        cut_watch.wal = NULL;
        sqlite3_close(cut_watch.probe);
        assert_true(cut_watch.cuts > 0);
        assert_int_equal(cut_watch.unlocked, 0);
        assert_int_equal(stat(wal, &st1), 0);
        assert_int_equal(st1.st_size, 256 * 1024);
        /* Another process commits while the daemon is quiet: its frames
         * end the WAL past where this store's own commits do, and the cut
         * goes by where SQLite says the WAL ends, so they stay. */
        {
            char sql[300 * 64] = "PRAGMA wal_autocheckpoint = 0;";
            size_t n = strlen(sql);

            for (int i = 0; i < 300; i++) /* a commit each */
                n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                                      "INSERT INTO events VALUES ('x:other-%d', 60);", i);
            raw_exec(t.db, sql);
        }
        /* (the file was cut to 256 KiB: it grew by those commits alone,
         * and nothing copied them yet) */
        assert_int_equal(stat(wal, &st0), 0);
        assert_true(st0.st_size > 512 * 1024);
        /* ... and a reader of another process is in the middle of reading
         * them (a small page cache: it reads pages again from the WAL) */
        assert_int_equal(sqlite3_open(t.db, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other,
                                      "PRAGMA cache_size = 1; BEGIN; "
                                      "SELECT count(*) FROM events WHERE ts = 60;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        tidy_all(s, &loop);
        {
            sqlite3_stmt *q;

            assert_int_equal(sqlite3_prepare_v2(other,
                                                "SELECT count(*) FROM pragma_integrity_check "
                                                "WHERE integrity_check = 'ok'",
                                                -1, &q, NULL),
                             SQLITE_OK);
            assert_int_equal(sqlite3_step(q), SQLITE_ROW);
            assert_int_equal(sqlite3_column_int(q, 0), 1);
            sqlite3_finalize(q);
            assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
            sqlite3_close(other);
        }
        assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events WHERE ts = 60"), 300);
        /* and the store goes on writing, everything still there, also for
         * a connection opened afresh (it reads the WAL from its start) */
        assert_int_equal(ob_store_claim(s, "c:after-cut", 50), 0);
        assert_int_equal(ob_store_flush(s), 0);
        assert_int_equal(ob_store_claim(s, "c:burst-7", 50), OB_EDUP);
        assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 2103);
    }
    ob_store_close(s);
    assert_int_equal(uv_loop_close(&loop), 0);
    tmp_clean(&t);
}

/* Closed while an fsync is in flight: its waiter is dropped, not called,
 * and the store's memory goes when the fsync returns (LeakSanitizer). */
static void test_close_while_syncing(void **state)
{
    struct tmp t;
    struct ob_store *s = NULL;
    struct synced a = {0}, b = {0};
    uv_loop_t loop;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    tmp_make(&t);
    assert_int_equal(ob_store_open(&s, t.db), 0);
    assert_int_equal(ob_store_attach_loop(s, &loop), 0);
    assert_int_equal(ob_store_claim(s, "c:1", 10), 0);
    assert_int_equal(ob_store_flush(s), 0);
    assert_int_equal(ob_store_sync(s, on_synced, &a), 0); /* in flight */
    assert_int_equal(ob_store_sync(s, on_synced, &b), 0); /* waits for the next round */
    ob_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls + b.calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(other_conn_int(t.db, "SELECT count(*) FROM events"), 1);
    tmp_clean(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrate_reopen), cmocka_unit_test(test_migrate_events_v2),
        cmocka_unit_test(test_page_size),           cmocka_unit_test(test_claim_dup),
        cmocka_unit_test(test_claim_prune),         cmocka_unit_test(test_batch_and_close_flushes),
        cmocka_unit_test(test_rate_windows),        cmocka_unit_test(test_approvals),
        cmocka_unit_test(test_open_errors),         cmocka_unit_test(test_stmt_cache),
        cmocka_unit_test(test_async_sync),          cmocka_unit_test(test_close_while_syncing),
    };

    ob_log_set_level(OB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
