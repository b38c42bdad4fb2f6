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
 * WAL (not after every commit once it is past that size).
 * PASSIVE never blocks the writer; a WAL that cannot be fully checkpointed
 * under constant writes keeps growing until a quieter moment, when a
 * TRUNCATE checkpoint (also on the thread pool) cuts a file larger than
 * wal_keep to nothing. journal_size_limit is off: SQLite would truncate
 * inside the commit that restarts the WAL, on the loop.
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
#define CKPT_PAGES 1000 /* SQLite's own default for wal_autocheckpoint */

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

static void queue_ckpt(struct ob_store *s, int mode);

/* The WAL file is larger than a quiet moment leaves it. */
static bool wal_big(const struct ob_store *s)
{
    struct stat st;

    return fstat(s->wal_fd, &st) == 0 && st.st_size > s->wal_keep;
}

int ob_store_sync(struct ob_store *s, ob_store_sync_cb cb, void *data)
{
    struct sync_waiter *w, **tail;

    if (!s || !s->loop || s->released)
        return OB_EINVAL;
    /* Quiet (no waiter): the pages no checkpoint covered yet are copied
     * too. SQLite starts the WAL over only when a checkpoint has copied
     * all of it, which while commits keep coming never happens; with this
     * the next commit after a quiet second starts it over. A WAL file a
     * burst left larger than wal_keep is cut to nothing by that checkpoint
     * (TRUNCATE) on the thread pool: SQLite's own journal_size_limit would
     * cut it inside the next commit, on the loop, and freeing a large file's
     * blocks took 15-40 ms on the bench's ext4 (tests/bench/notes.md). */
    if (!cb && wal_big(s))
        queue_ckpt(s, SQLITE_CHECKPOINT_TRUNCATE);
    else if (!cb && s->wal_pages > s->ckpt_at)
        queue_ckpt(s, SQLITE_CHECKPOINT_PASSIVE);
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
    /* TRUNCATE answers SQLITE_BUSY at once (no busy handler here) while
     * the loop's connection is in a transaction: tried again when quiet */
    s->ckpt_rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, "main", s->ckpt_mode, NULL, NULL);
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
    if (s->cut_due && !s->released) {
        s->cut_due = false;
        queue_ckpt(s, SQLITE_CHECKPOINT_TRUNCATE);
    }
    maybe_free(s);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct ob_store *s = arg;

    (void)db;
    (void)name;
    s->wal_pages = pages;
    return SQLITE_OK;
}

/* A checkpoint of everything committed so far, unless one is running (a
 * TRUNCATE then follows it). */
static void queue_ckpt(struct ob_store *s, int mode)
{
    if (s->ckpt_busy) {
        s->cut_due |= mode == SQLITE_CHECKPOINT_TRUNCATE;
        return;
    }
    s->ckpt_mode = mode;
    s->ckpt_at = s->wal_pages;
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
    if (s->wal_pages < s->ckpt_at)
        s->ckpt_at = 0; /* the WAL restarted from its beginning */
    if (s->wal_pages - s->ckpt_at >= CKPT_PAGES)
        queue_ckpt(s, SQLITE_CHECKPOINT_PASSIVE);
}

/* ---- attaching ------------------------------------------------------------------ */

int ob_store_attach_loop(struct ob_store *s, uv_loop_t *loop)
{
    char wal[4096];
    char *msg = NULL;

    if (!s || !loop)
        return OB_EINVAL;
    if (s->loop)
        return 0;
    if (!strcmp(s->path, ":memory:") || !sqlite3_threadsafe())
        return OB_EINVAL; /* nothing to sync / no second connection */
    if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", s->path) >= sizeof(wal))
        return OB_E2BIG;
    /* the WAL exists while a connection has the database open in WAL mode */
    s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
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
    sqlite3_wal_hook(s->db, wal_hook, s);
    s->loop = loop;
    return 0;
}
