/* The state store: the only module that speaks SQL. SQLite in WAL mode, one
 * file. Holds event claims (idempotency), the audit trail, pending
 * approvals and rate-limit counters. Writes are grouped: a transaction is
 * opened lazily and committed by ob_store_flush(), which the daemon calls once
 * per loop turn and always before an action starts (durable at that point).
 */
#ifndef OPSBOT_STORE_H
#define OPSBOT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct ob_store;

/* Opens (creating if needed) the database at path (":memory:" allowed) and
 * migrates the schema. Returns 0 or OB_ESTORE (detail logged). */
int ob_store_open(struct ob_store **out, const char *path);
/* Commits pending writes and closes. NULL-safe. */
void ob_store_close(struct ob_store *s);
/* Commits the open write transaction, if any. Returns 0 or OB_ESTORE; when
 * the commit fails (disk full, I/O error) the batch is rolled back, so
 * nothing of it becomes durable later and the store is ready for the next
 * write. */
int ob_store_flush(struct ob_store *s);
/* The daemon's mode (src/store_sync.c). Attached to a loop, commits stop
 * waiting for the disk (synchronous=NORMAL: ob_store_flush only writes the
 * WAL), ob_store_sync() makes what is committed durable with an fsync of
 * the WAL on libuv's thread pool, and checkpoints run there on a second
 * connection: the loop never waits for the disk. Unattached (the CLI,
 * tests), every ob_store_flush is durable when it returns. Returns 0, or
 * an error when the store stays synchronous (":memory:", a WAL that cannot
 * be opened; logged). */
int ob_store_attach_loop(struct ob_store *s, uv_loop_t *loop);
bool ob_store_is_async(const struct ob_store *s);
/* status 0: everything committed before ob_store_sync was called is on
 * disk; OB_ESTORE: the fsync failed (ob_store_error says why). */
typedef void (*ob_store_sync_cb)(void *data, int status);
/* Calls cb once, on the loop, never before returning. One fsync is in
 * flight at a time; calls made meanwhile share the next one. Callbacks
 * still waiting when the store is closed are dropped, not called. With cb
 * NULL: makes what was committed durable soon, when anything is not yet
 * (the daemon calls it when it goes quiet). */
int ob_store_sync(struct ob_store *s, ob_store_sync_cb cb, void *data);
/* One step of the upkeep a quiet moment allows (the daemon calls it again
 * every few milliseconds while it stays quiet, as long as it answers
 * true): what no checkpoint copied yet is copied, on the thread pool, so
 * that the WAL starts over from its beginning; a WAL file a burst left
 * larger than wal_keep is then cut back to it, a few MB per step on the
 * loop. Never waits for a lock or the disk's flush. */
bool ob_store_tidy(struct ob_store *s);
/* The size down to which quiet moments cut the WAL file back (default
 * 64 MiB). For tests. */
void ob_store_set_wal_keep(struct ob_store *s, int64_t bytes);
/* Gives SQLite's page cache back to the heap (the daemon calls it when it
 * goes quiet, before it trims the heap); pages are read again from the OS's
 * cache when next needed. Pages of an open transaction stay. */
void ob_store_release_memory(struct ob_store *s);
/* The last failure's text as SQLite gave it ("database or disk is full"),
 * "" when nothing failed yet. For messages to people. */
const char *ob_store_error(const struct ob_store *s);

/* Claims an inbound event id ("slack:Ev0123", "console:u7"). Returns 0 when
 * this call claimed it, OB_EDUP when it had been claimed before. */
int ob_store_claim(struct ob_store *s, const char *event_id, int64_t now_ms);

/* Rate-limit counters: one row per allowed or approval-asked action. */
int ob_store_count_note(struct ob_store *s, const char *user, const char *action, int64_t now_ms);
/* Number of notes for user/action since since_ms, or a negative error. */
int ob_store_count(struct ob_store *s, const char *user, const char *action, int64_t since_ms);

/* A pending approval as persisted. Strings are owned by the struct when
 * returned by ob_store_approvals_load() (free with ob_store_approval_release). */
struct ob_stored_approval {
    char *id;         /* approval id, e.g. "a-3f9c…" */
    char *request_id; /* request it belongs to */
    char *json;       /* everything else, serialised by the approval module */
    int64_t deadline_ms;
};
int ob_store_approval_save(struct ob_store *s, const struct ob_stored_approval *a);
int ob_store_approval_delete(struct ob_store *s, const char *id);
/* All saved approvals, oldest first; *out is a malloc'd array. */
int ob_store_approvals_load(struct ob_store *s, struct ob_stored_approval **out, size_t *n);
void ob_store_approvals_free(struct ob_stored_approval *a, size_t n);

/* Raw handle for the audit module (sqlite3 *). Only store.c and audit.c use it. */
void *ob_store_db(struct ob_store *s);
/* Opens the write transaction if none is open (audit.c appends inside it). */
int ob_store_begin(struct ob_store *s);
/* A statement (sqlite3_stmt *) for sql, prepared once per store with
 * SQLITE_PREPARE_PERSISTENT, cached by SQL text and finalized by
 * ob_store_close. The caller binds, steps, and resets it (sqlite3_reset and
 * sqlite3_clear_bindings) after each use; not re-entrant for the same sql.
 * NULL on error (logged). For audit.c. */
void *ob_store_stmt(struct ob_store *s, const char *sql);

/* The audit chain's tip (the audit_head row), write-behind for audit.c:
 * read once per transaction, advanced in memory by each append, and
 * written once, just before COMMIT, in the same transaction as the records
 * it covers (so they commit together or not at all). */
#define OB_STORE_TIP_HEX 65 /* 64 hex digits + NUL */
/* The tip as of the open transaction. for_write opens the transaction first
 * (an append follows); otherwise the committed row is read when no tip is
 * held. Returns 0, or OB_ESTORE (the row is missing: *last_id = -1, or
 * SQLite failed; logged). */
int ob_store_tip(struct ob_store *s, bool for_write, int64_t *last_id, char hash[OB_STORE_TIP_HEX]);
/* Record last_id with hash was inserted in the open transaction. */
void ob_store_tip_advance(struct ob_store *s, int64_t last_id, const char *hash);

#endif
