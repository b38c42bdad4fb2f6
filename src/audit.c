/* The audit trail: append, verify and iterate the hash-chained records.
 *
 *     hash_i = BLAKE2b-256(hash_{i-1} || canonical_json(record_i)),  hash_0 = 32 zero bytes
 *
 * canonical_json is built here byte by byte (see docs/AUDIT.md): fixed key
 * order, no whitespace, integers in decimal, strings escaped exactly as
 * Python's json.dumps(..., ensure_ascii=False) does, so an auditor can
 * re-verify with a few lines of Python.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "opsbot/audit.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/store.h"
#include "opsbot/util.h"

#define COMP "audit"

#define HASH_BYTES 32
#define FIELD_MAX 1024          /* request, step, actor, platform, channel, action */
#define DETAIL_MAX (256 * 1024) /* detail JSON text */

#define SQL_INSERT                                                                                 \
    "INSERT INTO audit(id, ts, request_id, step, actor, platform, channel, action, detail, hash) " \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
#define SQL_COLS "id, ts, request_id, step, actor, platform, channel, action, detail, hash"

/* ---- growable byte buffer ------------------------------------------------ */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        char *np;

        while (ncap < b->len + n + 1)
            ncap *= 2;
        np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- canonical form ------------------------------------------------------ */

/* A JSON string as Python's json.dumps(s, ensure_ascii=False) writes it. */
static void json_string(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char u[7];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(b, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
            break;
        }
        buf_str(b, esc);
    }
    buf_str(b, run);
    buf_add(b, "\"", 1);
}

struct fields {
    int64_t id, ts;
    const char *v[7]; /* request, step, actor, platform, channel, action, detail */
};

static const char *const canon_keys[7] = {"request", "step",   "actor", "platform",
                                          "channel", "action", "detail"};

static void canonical(struct buf *b, const struct fields *f)
{
    char num[32];

    b->len = 0;
    snprintf(num, sizeof(num), "{\"id\":%" PRId64, f->id);
    buf_str(b, num);
    snprintf(num, sizeof(num), ",\"ts\":%" PRId64, f->ts);
    buf_str(b, num);
    for (int i = 0; i < 7; i++) {
        buf_str(b, ",\"");
        buf_str(b, canon_keys[i]);
        buf_str(b, "\":");
        json_string(b, f->v[i] ? f->v[i] : "");
    }
    buf_add(b, "}", 1);
}

static void chain_hash(const unsigned char prev[HASH_BYTES], const struct buf *canon,
                       unsigned char out[HASH_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, HASH_BYTES);
    crypto_generichash_update(&st, prev, HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)canon->p, canon->len);
    crypto_generichash_final(&st, out, HASH_BYTES);
}

/* ---- field sanitising ---------------------------------------------------- */

/* The field as stored and hashed: at most max bytes (cut at a character
 * boundary), invalid UTF-8 replaced by U+FFFD. Returns s itself when it is
 * fine, else a malloc'd copy in *owned; NULL on OOM. */
static const char *sanitize(const char *s, size_t max, char **owned)
{
    size_t len;
    struct buf b = {0};
    const unsigned char *p, *end;

    *owned = NULL;
    if (!s)
        return "";
    len = strlen(s);
    if (len <= max && ob_utf8_valid(s, len))
        return s;
    p = (const unsigned char *)s;
    end = p + len;
    while (p < end) {
        size_t n = ob_utf8_seq((const char *)p, (size_t)(end - p));

        if (b.len + (n ? n : 3) > max)
            break;
        if (n) {
            buf_add(&b, p, n);
            p += n;
        } else {
            buf_add(&b, "\xEF\xBF\xBD", 3);
            p++;
        }
    }
    if (!b.p)
        buf_add(&b, "", 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *owned = b.p;
    return b.p;
}

/* ---- append -------------------------------------------------------------- */

static int db_fail(struct ob_store *s, const char *what)
{
    sqlite3 *db = ob_store_db(s);

    ob_error(COMP, "%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
    return OB_ESTORE;
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* The chain's tip; found is false when its row is missing. */
static int read_head(struct ob_store *s, bool for_write, int64_t *last_id, char hash[OB_HASH_HEX],
                     bool *found)
{
    int err = ob_store_tip(s, for_write, last_id, hash);

    *found = *last_id >= 0;
    return *found ? err : 0;
}

static int append_locked(struct ob_store *s, const struct fields *f_in, int64_t *id_out,
                         char hash_out[OB_HASH_HEX])
{
    struct fields f = *f_in;
    struct buf canon = {0};
    unsigned char prev[HASH_BYTES], h[HASH_BYTES];
    char head_hex[OB_HASH_HEX], hex[OB_HASH_HEX];
    int64_t last_id = 0;
    sqlite3_stmt *st;
    bool found;
    size_t binlen = 0;
    int err;
    int rc;

    err = read_head(s, true, &last_id, head_hex, &found);
    if (err)
        return err;
    if (!found ||
        sodium_hex2bin(prev, sizeof(prev), head_hex, strlen(head_hex), NULL, &binlen, NULL) != 0 ||
        binlen != HASH_BYTES) {
        ob_error(COMP, "audit head row missing or corrupt; run `opsbot audit verify`");
        return OB_ESTORE;
    }
    f.id = last_id + 1;
    canonical(&canon, &f);
    if (canon.oom) {
        free(canon.p);
        return OB_ENOMEM;
    }
    chain_hash(prev, &canon, h);
    free(canon.p);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));

    st = ob_store_stmt(s, SQL_INSERT);
    if (!st)
        return OB_ESTORE;
    sqlite3_bind_int64(st, 1, f.id);
    sqlite3_bind_int64(st, 2, f.ts);
    for (int i = 0; i < 7; i++)
        sqlite3_bind_text(st, 3 + i, f.v[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, hex, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, "audit insert");
    /* the head row follows at COMMIT, in the same transaction */
    ob_store_tip_advance(s, f.id, hex);
    if (id_out)
        *id_out = f.id;
    if (hash_out)
        memcpy(hash_out, hex, OB_HASH_HEX);
    return 0;
}

int ob_audit_append(struct ob_store *s, const struct ob_audit_entry *e, int64_t now_ms,
                    int64_t *id_out, char hash_out[OB_HASH_HEX])
{
    const char *raw[7];
    char *owned[7] = {0};
    struct fields f = {0};
    int err;

    if (!s || !e)
        return OB_EINVAL;
    raw[0] = e->request_id;
    raw[1] = e->step;
    raw[2] = e->actor;
    raw[3] = e->platform;
    raw[4] = e->channel;
    raw[5] = e->action;
    raw[6] = e->detail;
    f.ts = now_ms;
    for (int i = 0; i < 7; i++) {
        f.v[i] = sanitize(raw[i], i == 6 ? DETAIL_MAX : FIELD_MAX, &owned[i]);
        if (!f.v[i]) {
            err = OB_ENOMEM;
            goto out;
        }
    }
    /* One statement per record: a failed INSERT undoes itself and leaves
     * the tip where the records before it (in this transaction too) put
     * it; a transaction SQLite rolled back whole is noticed by the next
     * ob_store_begin, which drops the tip. */
    err = append_locked(s, &f, id_out, hash_out);
out:
    for (int i = 0; i < 7; i++)
        free(owned[i]);
    return err;
}

/* ---- verify -------------------------------------------------------------- */

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (!why || !whylen)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? (const char *)t : "";
}

int ob_audit_verify(struct ob_store *s, int64_t *count, int64_t *bad_id, char *why, size_t whylen)
{
    sqlite3 *db = ob_store_db(s);
    sqlite3_stmt *st = NULL;
    struct buf canon = {0};
    unsigned char prev[HASH_BYTES] = {0}, h[HASH_BYTES];
    char hex[OB_HASH_HEX], head_hex[OB_HASH_HEX];
    char last_hex[OB_HASH_HEX];
    int64_t expect = 1, head_id = 0, found;
    bool head_found;
    int err = 0;
    int rc;

    if (count)
        *count = 0;
    if (bad_id)
        *bad_id = 0;
    set_why(why, whylen, "%s", "");
    if (!db)
        return OB_EINVAL;
    sodium_bin2hex(last_hex, sizeof(last_hex), prev, sizeof(prev));
    err = read_head(s, false, &head_id, head_hex, &head_found);
    if (err)
        return err;
    rc = sqlite3_prepare_v2(db, "SELECT " SQL_COLS " FROM audit ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s, "audit verify");
    for (;;) {
        struct fields f;
        int64_t id;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(s, "audit verify");
            goto out;
        }
        id = sqlite3_column_int64(st, 0);
        if (id != expect) {
            if (bad_id)
                *bad_id = expect;
            if (expect == 1)
                set_why(why, whylen, "record 1 missing (first record is %" PRId64 ")", id);
            else
                set_why(why, whylen, "record %" PRId64 " missing after record %" PRId64, expect,
                        expect - 1);
            err = OB_ETAMPER;
            goto out;
        }
        f.id = id;
        f.ts = sqlite3_column_int64(st, 1);
        for (int i = 0; i < 7; i++)
            f.v[i] = col_text(st, 2 + i);
        canonical(&canon, &f);
        if (canon.oom) {
            err = OB_ENOMEM;
            goto out;
        }
        chain_hash(prev, &canon, h);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        if (strcmp(hex, col_text(st, 9)) != 0) {
            if (bad_id)
                *bad_id = id;
            set_why(why, whylen,
                    "record %" PRId64 ": hash mismatch (row edited, or an earlier row removed)",
                    id);
            err = OB_ETAMPER;
            goto out;
        }
        memcpy(prev, h, sizeof(prev));
        memcpy(last_hex, hex, sizeof(last_hex));
        if (count)
            *count = id;
        expect++;
    }
    found = expect - 1;
    if (!head_found) {
        set_why(why, whylen, "audit head row missing");
        err = OB_ETAMPER;
    } else if (head_id > found) {
        if (bad_id)
            *bad_id = found + 1;
        set_why(why, whylen, "head says %" PRId64 " records, found %" PRId64 ": tail removed",
                head_id, found);
        err = OB_ETAMPER;
    } else if (head_id < found) {
        if (bad_id)
            *bad_id = head_id + 1;
        set_why(why, whylen,
                "head says %" PRId64 " records, found %" PRId64 ": records added behind the head",
                head_id, found);
        err = OB_ETAMPER;
    } else if (strcmp(head_hex, last_hex) != 0) {
        if (bad_id)
            *bad_id = found;
        set_why(why, whylen, "head hash does not match record %" PRId64, found);
        err = OB_ETAMPER;
    }
out:
    sqlite3_finalize(st);
    free(canon.p);
    return err;
}

/* ---- iterate ------------------------------------------------------------- */

/* Steps st (bound) to the end, handing each row to cb. */
static int walk(struct ob_store *s, sqlite3_stmt *st, ob_audit_each_cb cb, void *data)
{
    int err = 0;
    int rc;

    for (;;) {
        struct ob_audit_record r;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = db_fail(s, "audit each");
            break;
        }
        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(st, 0);
        r.ts_ms = sqlite3_column_int64(st, 1);
        r.request_id = (char *)col_text(st, 2);
        r.step = (char *)col_text(st, 3);
        r.actor = (char *)col_text(st, 4);
        r.platform = (char *)col_text(st, 5);
        r.channel = (char *)col_text(st, 6);
        r.action = (char *)col_text(st, 7);
        r.detail = (char *)col_text(st, 8);
        ob_strlcpy(r.hash, col_text(st, 9), sizeof(r.hash));
        err = cb(data, &r);
        if (err)
            break;
    }
    return err;
}

int ob_audit_each(struct ob_store *s, const char *request_id, ob_audit_each_cb cb, void *data)
{
    sqlite3 *db = ob_store_db(s);
    sqlite3_stmt *st = NULL;
    int err;

    if (!db || !request_id || !cb)
        return OB_EINVAL;
    /* Prepared per call (not cached) so that callbacks may iterate too. */
    if (sqlite3_prepare_v2(db, "SELECT " SQL_COLS " FROM audit WHERE request_id = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "audit each");
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    err = walk(s, st, cb, data);
    sqlite3_finalize(st);
    return err;
}

int ob_audit_unfinished(struct ob_store *s, ob_audit_each_cb cb, void *data)
{
    /* The later steps are found through the (request_id, id) index. */
    static const char sql[] = "SELECT " SQL_COLS " FROM audit AS a WHERE a.step = 'started' AND "
                              "NOT EXISTS (SELECT 1 FROM audit AS b WHERE b.request_id = "
                              "a.request_id AND b.id > a.id AND b.step IN ('finished', "
                              "'failed', 'outcome_unknown')) ORDER BY a.id";
    sqlite3 *db = ob_store_db(s);
    sqlite3_stmt *st = NULL;
    int err;

    if (!db || !cb)
        return OB_EINVAL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "audit unfinished");
    err = walk(s, st, cb, data);
    sqlite3_finalize(st);
    return err;
}
