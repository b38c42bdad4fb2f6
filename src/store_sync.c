/* The state store's daemon mode: durability without the loop waiting for
 * the disk.
 *
 * Attached to the loop, the connection commits with synchronous=NORMAL: a
 * commit only writes WAL frames (no fsync), so it costs microseconds on
 * the loop. Durability is asked for where it matters, before an action
 * starts: ob_store_sync() fsyncs the WAL file on libuv's thread pool with a
 * descriptor of our own (fsync is per file, whoever wrote the pages) and
 * answers on the loop. The WAL is append-only between checkpoints, so an
 * fsync that began after a commit makes that commit and every earlier one
 * durable; one fsync serves every caller that asked before it began.
 * Fsyncs happen only when asked for: before actions start, and when the
 * daemon goes quiet (ob_store_sync with no callback), so a burst of
 * commits costs one fsync per action batch, not one per commit.
 *
 * Checkpoints (copying the WAL back into the database, with two fsyncs)
 * would block the committing thread, so SQLite's automatic ones are off
 * (our wal_hook replaces them) and a PASSIVE checkpoint runs on the thread
 * pool, on a second connection, each time CKPT_PAGES more pages are in the
 * WAL (not after every commit once it is past that size). PASSIVE never
 * takes the writer lock, and nothing on the thread pool ever does: the
 * loop's BEGIN would wait for it asleep in SQLite's busy handler (the
 * TRUNCATE checkpoint that once ran here held it through a 150 MB cut,
 * 50-150 ms of a stopped loop).
 *
 * Under constant writes a checkpoint never copies all of the WAL (commits
 * land while it runs), so SQLite never starts the WAL over and the file
 * grows until a quiet moment. Then ob_store_tidy(), called by the daemon
 * every few milliseconds while it stays quiet, puts it back in shape one
 * small step at a time: a checkpoint of what no checkpoint covered; one
 * small commit, which starts the WAL over once all of it is copied; then
 * the dead end of a file larger than wal_keep (past the frames in use, as
 * SQLite counts them) is cut off in CUT_STEP pieces, on the loop, each
 * under the writer lock of the loop's own connection (freeing a file's blocks costs ~0.35 ms per MB
 * on the bench's ext4 with online discard; one cut of 150 MB stopped the loop ~50 ms).
 * journal_size_limit is off: SQLite would cut the whole file inside the
 * commit that restarts the WAL, on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/metrics.h"
#include "opsbot/util.h"
#include "store_int.h"

#define COMP "store"
#define CKPT_PAGES 1000    /* SQLite's own default for wal_autocheckpoint */
#define CUT_STEP (2 << 20) /* bytes of WAL file cut per tidy step */
#define WAL_HDR 32         /* SQLite's WAL header, then frames: */
#define FRAME_HDR 24       /* a header and a page each */
#define TIDY_BUSY_MAX 3    /* tries of a quiet moment, against another process's lock */

static void start_round(struct ob_store *s);

static void free_waiters(struct sync_waiter *w)
{
    while (w) {
        struct sync_waiter *next = w->next;

        free(w);
        w = next;
    }
}

static void maybe_free(struct ob_store *s)
{
    if (!s->released || s->fsync_busy || s->ckpt_busy)
        return;
    if (s->ckpt_db)
        sqlite3_close(s->ckpt_db);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    free_waiters(s->round);
    free_waiters(s->next_round);
    free(s);
}

void ob__store_sync_release(struct ob_store *s)
{
    s->db = NULL;
    s->released = true;
    maybe_free(s);
}

/* ---- fsync rounds ----------------------------------------------------------- */

static void fsync_done(uv_fs_t *req)
{
    struct ob_store *s = req->data;
    struct sync_waiter *w = s->round;
    int status = 0;

    if (req->result < 0) {
        ob_error(COMP, "fsync of the write-ahead log failed: %s", uv_strerror((int)req->result));
        snprintf(s->error, sizeof(s->error), "fsync: %s", uv_strerror((int)req->result));
        status = OB_ESTORE;
    }
    uv_fs_req_cleanup(req);
    ob_metrics_store_fsync((double)(uv_hrtime() - s->fsync_t0) / 1e9);
    s->fsync_busy = false;
    s->round = NULL;
    if (s->released) { /* closed meanwhile: nobody to answer */
        free_waiters(w);
        maybe_free(s);
        return;
    }
    while (w) {
        struct sync_waiter *next = w->next;

        if (w->cb)
            w->cb(w->data, status);
        free(w);
        w = next;
    }
    if (s->next_round)
        start_round(s);
}

static void start_round(struct ob_store *s)
{
    int rc;

    s->round = s->next_round;
    s->next_round = NULL;
    s->dirty = false;
    s->fsync_req.data = s;
    s->fsync_t0 = uv_hrtime();
    rc = uv_fs_fsync(s->loop, &s->fsync_req, s->wal_fd, fsync_done);
    if (rc) {
        /* cannot even queue it: answer from the loop as a failure */
        s->fsync_req.result = rc;
        ob_error(COMP, "cannot queue the fsync: %s", uv_strerror(rc));
        fsync_done(&s->fsync_req);
        return;
    }
    s->fsync_busy = true;
}

static void queue_ckpt(struct ob_store *s);

int ob_store_sync(struct ob_store *s, ob_store_sync_cb cb, void *data)
{
    struct sync_waiter *w, **tail;

    if (!s || !s->loop || s->released)
        return OB_EINVAL;
    if (!cb && (!s->dirty || s->next_round))
        return 0; /* nothing new, or a round that begins later is coming */
    w = ob_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->data = data;
    for (tail = &s->next_round; *tail; tail = &(*tail)->next)
        ;
    *tail = w;
    if (!s->fsync_busy)
        start_round(s);
    return 0;
}

/* ---- the quiet upkeep: the WAL started over, its file cut back ------------------- */

/* Runs sql on the loop's connection without waiting for a lock another
 * process holds: SQLITE_BUSY then, and the step is tried again later. A
 * failure leaves no transaction open; a BEGIN that succeeds stays open. */
static int exec_nowait(struct ob_store *s, const char *sql)
{
    int rc;

    sqlite3_busy_timeout(s->db, 0);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    sqlite3_busy_timeout(s->db, OB__STORE_BUSY_MS);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        ob_warn(COMP, "tidying the write-ahead log: %s", sqlite3_errmsg(s->db));
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

bool ob_store_tidy(struct ob_store *s)
{
    struct stat st;
    int64_t live, keep, to;
    int frames = 0, copied = 0;
    bool more;

    if (!s || !s->loop || s->released)
        return false;
    if (s->ckpt_busy || !sqlite3_get_autocommit(s->db))
        return true; /* a checkpoint copying, a transaction open: later */
    /* 1. what no checkpoint covered is copied (without the writer lock) */
    if (s->copied != s->commits) {
        if (s->ckpt_tries++ >= TIDY_BUSY_MAX)
            return false; /* a reader of another process holds it back */
        queue_ckpt(s);
        return true;
    }
    if (fstat(s->wal_fd, &st) || st.st_size <= s->wal_keep)
        return false;
    /* 2. all of it copied: one small commit starts the WAL over, once a
     * quiet moment. It sets the header's application id to the value it
     * has (an UPDATE to the same values writes nothing: SQLite compares
     * the cells first). */
    if (!s->nudged) {
        char sql[96];

        s->nudged = true;
        snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; PRAGMA application_id = %d; COMMIT",
                 s->app_id);
        if (exec_nowait(s, sql) == SQLITE_BUSY) {
            s->nudged = false;
            return ++s->tidy_busy < TIDY_BUSY_MAX;
        }
        return true;
    }
    /* 3. the dead end is cut, a step at a time, under the writer lock (no
     * commit can land meanwhile). Where the WAL in use ends, SQLite says:
     * a PASSIVE checkpoint from the second connection answers the frame
     * count, commits of other processes included (wal_pages counts ours
     * only), and it has nothing left to copy but what those added. */
    if (!s->ckpt_db || s->page_size <= 0)
        return false; /* no second connection yet; no frame size known */
    if (exec_nowait(s, "BEGIN IMMEDIATE") != SQLITE_OK)
        return ++s->tidy_busy < TIDY_BUSY_MAX;
    more = false;
    if (sqlite3_wal_checkpoint_v2(s->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, &frames,
                                  &copied) == SQLITE_OK &&
        fstat(s->wal_fd, &st) == 0) {
        live = WAL_HDR + (int64_t)frames * (s->page_size + FRAME_HDR);
        keep = live > s->wal_keep ? live : s->wal_keep;
        to = st.st_size - CUT_STEP > keep ? st.st_size - CUT_STEP : keep;
        if (st.st_size > keep && ftruncate(s->wal_fd, to))
            ob_warn(COMP, "cutting the write-ahead log back: %s", strerror(errno));
        more = st.st_size > keep && to > keep;
    }
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return more;
}

void ob_store_set_wal_keep(struct ob_store *s, int64_t bytes)
{
    if (s)
        s->wal_keep = bytes;
}

bool ob_store_is_async(const struct ob_store *s)
{
    return s && s->loop;
}

/* ---- checkpoints on the thread pool --------------------------------------------- */

static void ckpt_work(uv_work_t *req)
{
    struct ob_store *s = req->data;
    int rc;

    if (!s->ckpt_db) {
        rc = sqlite3_open_v2(s->path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        /* A new connection learns that the database is in WAL mode when it
         * first reads it; until then a checkpoint is a no-op that answers
         * SQLITE_OK (the WAL grew without bound before this read). */
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->ckpt_db, "PRAGMA journal_mode", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            s->ckpt_rc = rc;
            return;
        }
    }
    rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, &s->ckpt_frames,
                                   &s->ckpt_copied);
    s->ckpt_rc = rc;
}

static void ckpt_done(uv_work_t *req, int status)
{
    struct ob_store *s = req->data;

    s->ckpt_busy = false;
    if (status == 0 && s->ckpt_rc != SQLITE_OK && s->ckpt_rc != SQLITE_BUSY)
        ob_warn(COMP, "checkpoint of the write-ahead log failed: %s (retried later)",
                s->ckpt_db ? sqlite3_errmsg(s->ckpt_db) : sqlite3_errstr(s->ckpt_rc));
    if (s->ckpt_rc != SQLITE_OK && s->ckpt_db) {
        sqlite3_close(s->ckpt_db); /* reopened by the next job */
        s->ckpt_db = NULL;
    }
    /* every frame committed before it was queued is in the database now */
    if (status == 0 && s->ckpt_rc == SQLITE_OK && s->ckpt_frames == s->ckpt_copied)
        s->copied = s->ckpt_commits;
    maybe_free(s);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct ob_store *s = arg;

    (void)db;
    (void)name;
    s->wal_pages = pages;
    s->commits++;
    return SQLITE_OK;
}

/* A checkpoint of everything committed so far, unless one is running. */
static void queue_ckpt(struct ob_store *s)
{
    if (s->ckpt_busy)
        return;
    s->ckpt_at = s->wal_pages;
    s->ckpt_commits = s->commits;
    s->ckpt_req.data = s;
    s->ckpt_rc = SQLITE_OK;
    if (uv_queue_work(s->loop, &s->ckpt_req, ckpt_work, ckpt_done) == 0)
        s->ckpt_busy = true;
}

void ob__store_committed(struct ob_store *s)
{
    if (!s->loop)
        return;
    s->dirty = true;
    s->nudged = false;
    s->ckpt_tries = s->tidy_busy = 0;
    if (s->wal_pages < s->ckpt_at)
        s->ckpt_at = 0; /* the WAL restarted from its beginning */
    if (s->wal_pages - s->ckpt_at >= CKPT_PAGES)
        queue_ckpt(s);
}

/* ---- attaching ------------------------------------------------------------------ */

int ob_store_attach_loop(struct ob_store *s, uv_loop_t *loop)
{
    char wal[4096];
    char *msg = NULL;
    sqlite3_stmt *st = NULL;

    if (!s || !loop)
        return OB_EINVAL;
    if (s->loop)
        return 0;
    if (!strcmp(s->path, ":memory:") || !sqlite3_threadsafe())
        return OB_EINVAL; /* nothing to sync / no second connection */
    if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", s->path) >= sizeof(wal))
        return OB_E2BIG;
    /* the WAL exists while a connection has the database open in WAL mode */
    s->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
    if (s->wal_fd < 0) {
        ob_warn(COMP, "%s: %s; commits stay synchronous", wal, strerror(errno));
        return OB_ESTORE;
    }
    if (sqlite3_exec(s->db,
                     "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=-1; "
                     "PRAGMA wal_autocheckpoint=0;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        ob_warn(COMP, "%s: %s; commits stay synchronous", s->path, msg ? msg : "?");
        sqlite3_free(msg);
        close(s->wal_fd);
        s->wal_fd = -1;
        return OB_ESTORE;
    }
    if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        s->page_size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA application_id", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        s->app_id = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_wal_hook(s->db, wal_hook, s);
    s->loop = loop;
    return 0;
}
