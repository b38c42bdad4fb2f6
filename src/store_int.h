/* Private to the state store (store.c, store_sync.c). */
#ifndef OPSBOT_STORE_INT_H
#define OPSBOT_STORE_INT_H

#include <stdbool.h>

#include <sqlite3.h>
#include <uv.h>

#include "opsbot/store.h"

#define STMT_CACHE_MAX 32
#define OB__STORE_BUSY_MS 2000 /* waiting for another process's lock */

enum stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_CLAIM,
    ST_EVENTS_PRUNE,
    ST_RATE_NOTE,
    ST_RATE_COUNT,
    ST_RATE_PRUNE,
    ST_APPROVAL_SAVE,
    ST_APPROVAL_DELETE,
    ST_APPROVALS_LOAD,
    ST_TIP_GET,
    ST_TIP_SET,
    ST_COUNT_
};

struct stmt_cache_entry {
    char *sql;
    sqlite3_stmt *st;
};

struct sync_waiter {
    struct sync_waiter *next;
    ob_store_sync_cb cb;
    void *data;
};

struct ob_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT_];
    struct stmt_cache_entry cache[STMT_CACHE_MAX];
    size_t ncache;
    unsigned long claims;
    unsigned long notes;
    char error[160]; /* the last failure, for ob_store_error */
    /* the audit chain's tip in the open transaction (ob_store_tip) */
    struct {
        bool held;  /* read in this transaction */
        bool dirty; /* advanced since: written before COMMIT */
        int64_t last_id;
        char hash[OB_STORE_TIP_HEX];
    } tip;
    /* store_sync.c: the daemon's mode, durability off the loop */
    uv_loop_t *loop;
    int wal_fd; /* our own descriptor of the -wal file: fsync is per file */
    uv_fs_t fsync_req;
    bool fsync_busy;
    uint64_t fsync_t0;              /* uv_hrtime() when it was queued */
    bool dirty;                     /* committed since the in-flight fsync began */
    struct sync_waiter *round;      /* served by the fsync in flight */
    struct sync_waiter *next_round; /* asked meanwhile: the next fsync */
    uv_work_t ckpt_req;
    bool ckpt_busy;
    int ckpt_rc;
    int ckpt_frames, ckpt_copied; /* its answer: frames in the WAL, frames copied */
    unsigned long ckpt_commits;   /* commits when the running checkpoint was queued */
    unsigned long commits;        /* of this connection (wal_hook) */
    unsigned long copied;         /* commits all in the database file */
    int wal_pages;                /* frames in the WAL (wal_hook) */
    int page_size;
    int app_id;       /* the header's application id (never set: 0) */
    int ckpt_at;      /* wal_pages when the last checkpoint was queued */
    int ckpt_tries;   /* quiet checkpoints since the last commit */
    int tidy_busy;    /* quiet steps since then that met another's lock */
    bool nudged;      /* the quiet commit that starts the WAL over was made */
    int64_t wal_keep; /* bytes of WAL file a quiet moment leaves alone */
    sqlite3 *ckpt_db; /* used on the thread pool only, one job at a time */
    bool released;    /* ob_store_close ran while disk work was in flight */
};

int ob__store_fail(struct ob_store *s, const char *what);
/* store_sync.c: after a commit (the WAL grew) */
void ob__store_committed(struct ob_store *s);
/* store_sync.c: ob_store_close's last step: frees s, now or when the
 * fsync / checkpoint in flight returns */
void ob__store_sync_release(struct ob_store *s);

#endif
