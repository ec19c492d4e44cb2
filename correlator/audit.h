/*
 * audit.h - the audit log: who did what, from where, to what, with which
 * outcome (GB/T 22239 8.1.4.3). Append-only and tamper-evident: record n
 * carries the hash of record n - 1, and its own hash covers every field and
 * that link:
 *
 *     hash(n) = SHA-256( "fenghuo-audit-v1" || field(seq) || field(at) ||
 *                        field(actor) || field(source) || field(action) ||
 *                        field(object) || field(outcome) || field(detail) ||
 *                        field(prev_hash) )
 *     field(x) = decimal length of x, ':', x   ("-1:" for NULL)
 *
 * so editing a record breaks its hash, deleting one breaks the next link (and
 * leaves a gap in seq), and inserting one needs a seq that is taken. A single
 * head row (audit_head) is locked by every append, so records are numbered
 * without gaps even with several writers (SQLite's write lock; PostgreSQL's
 * row lock). Pruning old records moves the anchor (the last pruned record's
 * seq and hash) into the head, and verification starts from it.
 */
#ifndef FH_AUDIT_H
#define FH_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "store.h"

#define AUDIT_HASH_HEX 64

typedef struct {
    int64_t at;                                                      /* wall clock, ms */
    const char *actor, *source, *action, *object, *outcome, *detail; /* source..detail: NULL ok */
} audit_entry;

/*
 * Appends one record: in the open transaction (so it commits or rolls back with
 * the change it records), or in its own. *seq (may be NULL) = its number.
 */
fh_err audit_append(store *st, const audit_entry *e, int64_t *seq);

/* The hash of one record (hex, 64 digits + NUL) as defined above. */
void audit_hash(int64_t seq, const audit_entry *e, const char *prev_hash, char out[65]);

typedef struct {
    bool ok;
    int64_t records;   /* verified */
    int64_t first_bad; /* seq of the first broken link (0 when ok) */
    char reason[160];  /* "record 7: hash does not match its content", ... */
} audit_verdict;

/* Walks the chain from the anchor to the head. FH_ERR_IO only when the store fails. */
fh_err audit_verify(store *st, audit_verdict *v);

/* Deletes records older than before_ms (keeping at least the newest one) and moves the
 * anchor; *pruned = how many. In its own transaction. */
fh_err audit_prune(store *st, int64_t before_ms, int64_t *pruned);

/* Calls fn for records with seq > after, at most max, in order. */
typedef struct {
    int64_t seq, at;
    const char *actor, *source, *action, *object, *outcome, *detail, *hash;
} audit_record;
typedef void (*audit_record_fn)(void *ctx, const audit_record *r);
fh_err audit_list(store *st, int64_t after, uint32_t max, audit_record_fn fn, void *ctx);

#endif
