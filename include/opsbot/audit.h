/* The audit trail: every step of every request is one record, appended to
 * the state store with a BLAKE2b-256 hash chain:
 *     hash_i = BLAKE2b-256(hash_{i-1} || canonical_json(record_i))
 * with hash_0 = 32 zero bytes. The canonical JSON has a fixed key order and
 * includes the record id, so editing, removing or reordering a row breaks the
 * chain at that row. The latest hash is also kept in a head row, so
 * truncating the tail is caught too.
 */
#ifndef OPSBOT_AUDIT_H
#define OPSBOT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ob_store;

#define OB_HASH_HEX 65 /* 64 hex digits + NUL */

/* One step. All strings borrowed; NULL means empty. */
struct ob_audit_entry {
    const char *request_id; /* groups the steps of one request ("r-…") */
    const char *step;       /* received, understood, asked, decided,
                               approval_requested, approval_granted,
                               approval_refused, approval_expired, started,
                               finished, failed, denied, ignored,
                               outcome_unknown (started, then opsbot
                               stopped without a trace: not re-run) */
    const char *actor;      /* platform-qualified user, or "opsbot" */
    const char *platform;
    const char *channel;
    const char *action;
    const char *detail; /* JSON object text (already redacted) or NULL */
};

struct ob_audit_record {
    int64_t id;
    int64_t ts_ms;
    char *request_id, *step, *actor, *platform, *channel, *action, *detail;
    char hash[OB_HASH_HEX];
};

/* Appends one record inside the store's open write batch. Returns 0 and the
 * record id and chain hash, or OB_ESTORE. */
int ob_audit_append(struct ob_store *s, const struct ob_audit_entry *e, int64_t now_ms,
                    int64_t *id_out, char hash_out[OB_HASH_HEX]);

/* Recomputes the whole chain. Returns 0 when intact (and *count records),
 * OB_ETAMPER with *bad_id = the first bad record and why filled in, or
 * OB_ESTORE. */
int ob_audit_verify(struct ob_store *s, int64_t *count, int64_t *bad_id, char *why, size_t whylen);

enum ob_audit_format { OB_AUDIT_CSV, OB_AUDIT_HTML, OB_AUDIT_JSONL };
int ob_audit_format_parse(const char *s, enum ob_audit_format *out);

/* Writes records with since_ms <= ts < until_ms (0 = unbounded) to f. The
 * HTML is one self-contained page grouped by request: who asked, what was
 * understood, the decision and rule, who approved or refused, what ran, the
 * outcome and duration, with the chain hash of each request's last record.
 * All text is HTML-escaped; CSV follows RFC 4180. */
int ob_audit_export(struct ob_store *s, FILE *f, enum ob_audit_format fmt, int64_t since_ms,
                    int64_t until_ms);

/* Iterates records of one request in order (for tests and the echo). The
 * record's strings are borrowed for the duration of the callback. A non-zero
 * return from cb stops the walk and is returned. */
typedef int (*ob_audit_each_cb)(void *data, const struct ob_audit_record *r);
int ob_audit_each(struct ob_store *s, const char *request_id, ob_audit_each_cb cb, void *data);

/* Actions cut off: every `started` record with no `finished`, `failed` or
 * `outcome_unknown` record of the same request after it (opsbot was killed
 * or crashed while the action ran), oldest first. The core runs it once at
 * start to report them. Same callback contract as ob_audit_each; do not
 * append from inside the callback (collect, then act). */
int ob_audit_unfinished(struct ob_store *s, ob_audit_each_cb cb, void *data);

#endif
