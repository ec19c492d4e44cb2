/*
 * store.h - where alerts live: an SQLite file (WAL) or a PostgreSQL database
 * (opts.path "postgresql://..."), with the same schema from the same files
 * (correlator/migrations/NNNN_*.sql, embedded in the binary) and the same SQL
 * (db.h). Several correlators and one console may share one store.
 *
 * Exactly once, from Kafka to the store
 * -------------------------------------
 * The consumer's position is stored in the same database, in the same
 * transaction, as the alerts the consumed events produced:
 *
 *     store_begin(st)
 *       for each event of the batch (partition p, offset o):
 *         hits = rules(event); alert_book_hit(book, hit) ...
 *         store_set_offset(st, topic, p, o + 1)
 *       alert_book_flush(book)        -> emit -> store_apply(st, alert) (+ outbox row)
 *     store_commit(st)                 <- the batch is applied, or not at all
 *     (then, optionally, commit the same offsets to Kafka: monitoring only)
 *
 * On start and on every partition assignment the consumer seeks each assigned
 * partition to store_get_offset() (falling back to Kafka's committed offset or
 * auto.offset.reset when the store has none). A crash (kill -9, power loss)
 * before COMMIT loses the whole batch, offsets included, so the batch is
 * consumed again and applied once; a crash after COMMIT resumes after it. The
 * database is the only source of truth for the position; the Kafka commit is
 * never trusted over it. With synchronous=NORMAL (the default) a power loss may
 * undo the last committed batches, offsets together with alerts: they are
 * replayed from Kafka (its retention must cover a few seconds).
 *
 * store_apply() writes absolute values (count, hits, last_seen...) so applying
 * the same alert state twice is harmless as well.
 *
 * Evidence: rows with seq <= evidence_first are inserted once (first N);
 * an item with a larger seq replaces the previous "latest" row.
 *
 * Outbox (opts.outbox): each store_apply() also appends the alert's JSON to
 * alert_outbox in the same transaction; the Kafka publisher reads it with
 * store_outbox_read() and deletes delivered rows with store_outbox_ack(). A
 * crash between commit and delivery re-sends (same alert id, same content):
 * consumers of the alerts topic deduplicate by (id, hits).
 *
 * Errors: SQLite failures return FH_ERR_IO and store_errmsg() says what failed
 * ("store_apply: INSERT alerts: database or disk is full"). After any error
 * inside a transaction call store_rollback() and alert_book_reset().
 *
 * Every value is bound as a parameter; no SQL text is ever built from data.
 * One store per thread (the connection is not shared).
 */
#ifndef FH_STORE_H
#define FH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "alerts.h"

typedef struct store store;

typedef struct {
    const char *path;        /* database file; created when absent */
    int busy_timeout_ms;     /* wait for a lock held by another connection; default 5000 */
    bool sync_full;          /* PRAGMA synchronous=FULL (default NORMAL, see above) */
    uint32_t evidence_first; /* must equal the book's; default 10 */
    bool outbox;             /* write alert_outbox rows for the Kafka publisher */
    /* The wall clock of recorded moves (ms); NULL: the real one. Tests inject theirs. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
} store_opts;

/*
 * Opens (creating if needed) the database, sets WAL, foreign keys and the busy
 * timeout, and applies pending migrations in one transaction. Returns FH_OK,
 * or FH_ERR_IO / FH_ERR_CONFIG (database newer than this build) / FH_ERR_NOMEM
 * with err = "store 'PATH': what: why".
 */
fh_err store_open(store **out, const store_opts *opts, char *err, size_t errlen);
void store_close(store *st);

/* The last error, with the call and statement that failed. */
const char *store_errmsg(const store *st);

/* Highest migration version applied (0 for none). */
int store_schema_version(store *st);

/* ---- transactions ------------------------------------------------------------------- */

fh_err store_begin(store *st); /* BEGIN IMMEDIATE: takes the write lock now */
fh_err store_commit(store *st);
void store_rollback(store *st); /* harmless outside a transaction */
bool store_in_transaction(const store *st);

/*
 * Inserts or updates one alert (row, tags on opening, new evidence, outbox).
 * Must be inside store_begin/commit (FH_ERR_ARG otherwise). The status belongs
 * to the lifecycle (incident.h) with one exception: an update of an alert that
 * is `rectified` in the store is a recurrence, and reopens it (status
 * `reopened`, reopen_count + 1, the move recorded with actor "correlator").
 */
fh_err store_apply(store *st, const alert *a);

/* Records one move of an incident (incident_transitions); inside a transaction. */
fh_err store_record(store *st, const char *id, int64_t at, const char *actor, const char *kind,
                    const char *from, const char *to, const char *detail, const char *comment);

/*
 * Counts one stats event of a sensor (its sensor.segment may be NULL) in the
 * hour of its event time: what verification by traffic reads. Inside a transaction.
 */
fh_err store_sensor_stats(store *st, const char *sensor, const char *segment, int64_t ts_ms);

/* Records that partition's next offset to consume; inside a transaction. */
fh_err store_set_offset(store *st, const char *topic, int32_t partition, int64_t next_offset);

/* The next offset of one partition, or FH_ERR_NOTFOUND when none is stored. */
fh_err store_get_offset(store *st, const char *topic, int32_t partition, int64_t *next_offset);

/* Calls fn for every partition of topic with a stored offset (partition order). */
typedef void (*store_offset_fn)(void *ctx, int32_t partition, int64_t next_offset);
fh_err store_get_offsets(store *st, const char *topic, store_offset_fn fn, void *ctx);

/* ---- correlation window state (correlation.h, "checkpoints") ------------------------ */

/* corr_put_fn / corr_del_fn with the store as ctx; inside a transaction. */
fh_err store_corr_put(void *ctx, const char *rule, const char *key, size_t keylen,
                      const void *state, size_t len);
fh_err store_corr_del(void *ctx, const char *rule, const char *key, size_t keylen);

/* Calls fn for every saved group (rule, key order); fn must copy what it keeps. */
typedef void (*store_corr_fn)(void *ctx, const char *rule, const void *key, size_t keylen,
                              const void *state, size_t len);
fh_err store_corr_load(store *st, store_corr_fn fn, void *ctx);

/* Named values of the correlator (correlator_meta); set inside a transaction. */
fh_err store_meta_set(store *st, const char *name, int64_t value);
fh_err store_meta_get(store *st, const char *name, int64_t *value); /* FH_ERR_NOTFOUND */

/* One correlator instance's report of itself (correlator_health; health.h builds it). */
typedef struct {
    const char *instance;
    int64_t started_ms, updated_ms; /* wall clock */
    bool strict;
    uint32_t rules_loaded, rules_refused;
    const char *report; /* JSON */
} store_health;

/* Writes (replaces) the instance's row; in the open transaction, or in its own. */
fh_err store_health_put(store *st, const store_health *h);

/* ---- reading back ------------------------------------------------------------------- */

/*
 * The newest alert of (rule_id, group_key) whose status is open (new,
 * acknowledged, rectifying, reopened) or rectified (a recurrence reopens it,
 * see store_apply): the alert book's load callback. Fills
 * *out (tags too; no evidence) and *found.
 */
fh_err store_load_open(store *st, const char *rule_id, const char *group_key, alert *out,
                       bool *found);
/* The same with the signature of alert_book_ops.load (ctx is the store). */
fh_err store_book_load(void *st, const char *rule_id, const char *group_key, alert *out,
                       bool *found);

/* Any alert by id, with its tags and stored evidence (seq order); FH_ERR_NOTFOUND. */
fh_err store_get_alert(store *st, const char *id, alert *out);

/* ---- outbox ------------------------------------------------------------------------- */

/* Calls fn for up to max rows with seq > after, in seq order (fn must copy payload). */
typedef fh_err (*store_outbox_fn)(void *ctx, uint64_t seq, const char *alert_id,
                                  const char *payload, size_t len);
fh_err store_outbox_read(store *st, uint64_t after, uint32_t max, store_outbox_fn fn, void *ctx);
/* Deletes rows with seq <= upto (delivered). Runs in its own transaction when none is open. */
fh_err store_outbox_ack(store *st, uint64_t upto);

/* ---- migrations --------------------------------------------------------------------- */

typedef struct {
    int version;
    const char *name; /* "0001_alerts": the file correlator/migrations/<name>.sql */
    const char *sql;  /* that file's text, embedded */
} store_migration;

/* The embedded migrations in version order. */
const store_migration *store_migrations(size_t *n);

#endif
