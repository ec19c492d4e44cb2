/*
 * store_audit.c - the hash-chained audit log in the store; see audit.h.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "store_int.h"

enum {
    A_HEAD,
    A_HEAD_LOCK,
    A_INSERT,
    A_SET_HEAD,
    A_LIST,
    A_WALK,
    A_PRUNE_LAST,
    A_PRUNE,
    A_ANCHOR,
    A_COUNT
};

static const char *const SQL[A_COUNT] = {
    [A_HEAD] = "SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1",
    [A_HEAD_LOCK] = "SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1 "
                    "FOR UPDATE",
    [A_INSERT] = "INSERT INTO audit_log (seq, at, actor, source, action, object, outcome, detail, "
                 "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [A_SET_HEAD] = "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1",
    [A_LIST] = "SELECT seq, at, actor, source, action, object, outcome, detail, hash FROM "
               "audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [A_WALK] = "SELECT seq, at, actor, source, action, object, outcome, detail, prev_hash, hash "
               "FROM audit_log ORDER BY seq",
    /* the newest record older than the cutoff, never the head itself */
    [A_PRUNE_LAST] = "SELECT seq, hash FROM audit_log WHERE at < ?1 AND seq < (SELECT seq FROM "
                     "audit_head WHERE id = 1) ORDER BY seq DESC LIMIT 1",
    [A_PRUNE] = "DELETE FROM audit_log WHERE seq <= ?1",
    [A_ANCHOR] = "UPDATE audit_head SET anchor_seq = ?1, anchor_hash = ?2 WHERE id = 1",
};

_Static_assert((int)A_COUNT <= (int)LAZY_ACCOUNTS - (int)LAZY_AUDIT,
               "store_audit.c: too many statements");

static db_stmt *stmt(store *st, int i)
{
    return store_lazy(st, LAZY_AUDIT + i, SQL[i]);
}

static void field(struct sha256_ctx *c, const char *v)
{
    char len[24];

    if (!v) {
        sha256_update(c, 3, (const uint8_t *)"-1:");
        return;
    }
    snprintf(len, sizeof(len), "%zu:", strlen(v));
    sha256_update(c, strlen(len), (const uint8_t *)len);
    sha256_update(c, strlen(v), (const uint8_t *)v);
}

void audit_hash(int64_t seq, const audit_entry *e, const char *prev_hash, char out[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    char num[24];

    sha256_init(&c);
    sha256_update(&c, 16, (const uint8_t *)"fenghuo-audit-v1");
    snprintf(num, sizeof(num), "%lld", (long long)seq);
    field(&c, num);
    snprintf(num, sizeof(num), "%lld", (long long)e->at);
    field(&c, num);
    field(&c, e->actor);
    field(&c, e->source);
    field(&c, e->action);
    field(&c, e->object);
    field(&c, e->outcome);
    field(&c, e->detail);
    field(&c, prev_hash);
    sha256_digest(&c, sizeof(d), d);
    for (size_t i = 0; i < sizeof(d); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The head (seq and hash of the newest record, and the anchor). */
static fh_err read_head(store *st, int slot, int64_t *seq, char hash[65], int64_t *anchor,
                        char anchor_hash[65])
{
    db_stmt *s = stmt(st, slot);
    fh_err err = FH_OK;

    if (!s)
        return FH_ERR_IO;
    if (db_step(s) != DB_ROW) {
        err = store_fail(st, "audit: SELECT audit_head");
    } else {
        *seq = db_column_int64(s, 0);
        snprintf(hash, 65, "%s", db_column_text(s, 1) ? db_column_text(s, 1) : "");
        if (anchor)
            *anchor = db_column_int64(s, 2);
        if (anchor_hash)
            snprintf(anchor_hash, 65, "%s", db_column_text(s, 3) ? db_column_text(s, 3) : "");
    }
    store_stmt_done(s);
    return err;
}

fh_err audit_append(store *st, const audit_entry *e, int64_t *seq_out)
{
    bool own = !st->in_tx;
    int64_t seq;
    char prev[65], hash[65];
    db_stmt *s;
    fh_err err;

    if (!e->actor || !e->action || !e->outcome) {
        snprintf(st->errmsg, sizeof(st->errmsg), "audit_append: actor, action, outcome needed");
        return FH_ERR_ARG;
    }
    if (own && (err = store_begin(st)))
        return err;
    /* PostgreSQL: lock the head row; SQLite: the transaction holds the write lock */
    err = read_head(st, db_backend(st->db) == DB_POSTGRES ? A_HEAD_LOCK : A_HEAD, &seq, prev, NULL,
                    NULL);
    if (err)
        return store_own_tx_end(st, own, err);
    seq++;
    audit_hash(seq, e, prev, hash);
    if (!(s = stmt(st, A_INSERT)))
        return store_own_tx_end(st, own, FH_ERR_IO);
    db_bind_int64(s, 1, seq);
    db_bind_int64(s, 2, e->at);
    db_bind_str(s, 3, e->actor);
    db_bind_str(s, 4, e->source);
    db_bind_str(s, 5, e->action);
    db_bind_str(s, 6, e->object);
    db_bind_str(s, 7, e->outcome);
    db_bind_str(s, 8, e->detail);
    db_bind_str(s, 9, prev);
    db_bind_str(s, 10, hash);
    if ((err = store_step_done(st, s, "audit: INSERT audit_log")))
        return store_own_tx_end(st, own, err);
    if (!(s = stmt(st, A_SET_HEAD)))
        return store_own_tx_end(st, own, FH_ERR_IO);
    db_bind_int64(s, 1, seq);
    db_bind_str(s, 2, hash);
    err = store_step_done(st, s, "audit: UPDATE audit_head");
    if (!err && seq_out)
        *seq_out = seq;
    return store_own_tx_end(st, own, err);
}

static void bad(audit_verdict *v, int64_t seq, const char *fmt, const char *what)
{
    v->ok = false;
    v->first_bad = seq;
    snprintf(v->reason, sizeof(v->reason), fmt, (long long)seq, what);
}

fh_err audit_verify(store *st, audit_verdict *v)
{
    int64_t head, anchor, expect;
    char head_hash[65], prev[65];
    db_stmt *s;
    fh_err err;
    int rc;

    memset(v, 0, sizeof(*v));
    v->ok = true;
    if ((err = read_head(st, A_HEAD, &head, head_hash, &anchor, prev)))
        return err;
    if (!(s = stmt(st, A_WALK)))
        return FH_ERR_IO;
    expect = anchor + 1;
    while ((rc = db_step(s)) == DB_ROW) {
        int64_t seq = db_column_int64(s, 0);
        audit_entry e = {
            .at = db_column_int64(s, 1),
            .actor = db_column_text(s, 2),
            .source = db_column_text(s, 3),
            .action = db_column_text(s, 4),
            .object = db_column_text(s, 5),
            .outcome = db_column_text(s, 6),
            .detail = db_column_text(s, 7),
        };
        const char *p = db_column_text(s, 8), *h = db_column_text(s, 9);
        char want[65];

        if (!v->ok)
            break;
        if (seq < expect) {
            bad(v, seq, "record %lld: %s", "before the anchor (a record inserted)");
            break;
        }
        if (seq > head) {
            bad(v, seq, "record %lld: %s", "beyond the head of the chain (inserted)");
            break;
        }
        if (seq > expect) {
            bad(v, expect, "record %lld: %s", "missing (deleted)");
            break;
        }
        if (!p || strcmp(p, prev) != 0) {
            bad(v, seq, "record %lld: %s", "does not link to the record before it");
            break;
        }
        audit_hash(seq, &e, p, want);
        if (!h || strcmp(h, want) != 0) {
            bad(v, seq, "record %lld: %s", "hash does not match its content (edited)");
            break;
        }
        snprintf(prev, sizeof(prev), "%s", h);
        v->records++;
        expect++;
    }
    if (rc != DB_ROW && rc != DB_DONE)
        err = store_fail(st, "audit_verify: SELECT audit_log");
    store_stmt_done(s);
    if (!err && v->ok && expect - 1 != head)
        bad(v, expect, "record %lld: %s", "missing at the end (the head says more)");
    else if (!err && v->ok && strcmp(prev, head_hash) != 0)
        bad(v, head, "record %lld: %s", "differs from the head's hash");
    return err;
}

fh_err audit_prune(store *st, int64_t before_ms, int64_t *pruned)
{
    db_stmt *s;
    int64_t last = 0, head, anchor;
    char hash[65] = "", cur[65], anchor_hash[65];
    fh_err err;
    int rc;

    *pruned = 0;
    if ((err = store_begin(st)))
        return err;
    /* lock the head: appends wait until the anchor has moved */
    if ((err = read_head(st, db_backend(st->db) == DB_POSTGRES ? A_HEAD_LOCK : A_HEAD, &head, cur,
                         &anchor, anchor_hash)))
        return store_own_tx_end(st, true, err);
    if (!(s = stmt(st, A_PRUNE_LAST)))
        return store_own_tx_end(st, true, FH_ERR_IO);
    db_bind_int64(s, 1, before_ms);
    rc = db_step(s);
    if (rc == DB_ROW) {
        last = db_column_int64(s, 0);
        snprintf(hash, sizeof(hash), "%s", db_column_text(s, 1));
    } else if (rc != DB_DONE) {
        err = store_fail(st, "audit_prune: SELECT audit_log");
    }
    store_stmt_done(s);
    if (err || !last)
        return store_own_tx_end(st, true, err);
    if (!(s = stmt(st, A_PRUNE)))
        return store_own_tx_end(st, true, FH_ERR_IO);
    db_bind_int64(s, 1, last);
    if (!(err = store_step_done(st, s, "audit_prune: DELETE audit_log")))
        *pruned = db_changes(st->db);
    if (!err && (s = stmt(st, A_ANCHOR))) {
        db_bind_int64(s, 1, last);
        db_bind_str(s, 2, hash);
        err = store_step_done(st, s, "audit_prune: UPDATE audit_head");
    } else if (!err) {
        err = FH_ERR_IO;
    }
    return store_own_tx_end(st, true, err);
}

fh_err audit_list(store *st, int64_t after, uint32_t max, audit_record_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, A_LIST);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_int64(s, 1, after);
    db_bind_int64(s, 2, max);
    while ((rc = db_step(s)) == DB_ROW) {
        audit_record r = {
            .seq = db_column_int64(s, 0),
            .at = db_column_int64(s, 1),
            .actor = db_column_text(s, 2),
            .source = db_column_text(s, 3),
            .action = db_column_text(s, 4),
            .object = db_column_text(s, 5),
            .outcome = db_column_text(s, 6),
            .detail = db_column_text(s, 7),
            .hash = db_column_text(s, 8),
        };

        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "audit_list: SELECT audit_log");
    store_stmt_done(s);
    return err;
}
