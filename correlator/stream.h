/*
 * stream.h - events in, alerts out: the engine's matches become alert hits
 * in the alert book, which deduplicates them; changed alerts are written to
 * the store (SQLite) and to an NDJSON file, a batch at a time.
 *
 * A batch is one store transaction: the alerts the batch's events produced
 * and, for Kafka input, the consumer position after the batch are committed
 * together, so a crash replays the batch instead of losing or doubling it.
 *
 * Group key of a detection rule: "src_ip=<address>" (one alert per rule and
 * source host while it is open), or "sensor.id=<id>" for events without
 * addresses (stats, anomaly: one alert per rule and sensor). Correlation rules group by their
 * group-by fields ("src_ip=10.0.0.1,dest_ip=..."). A detection rule that only feeds correlations
 * raises no alert of its own unless one of them says `generate: true` (Sigma v2).
 */
#ifndef FH_STREAM_H
#define FH_STREAM_H

#include <stdio.h>

#include "../common/jbuf.h"
#include "alerts.h"
#include "correlation.h"
#include "engine.h"
#include "store.h"

/* Upper bounds (seconds) of the event processing time histogram's buckets. */
#define STREAM_HIST_BUCKETS 10
extern const double stream_hist_bounds[STREAM_HIST_BUCKETS];

typedef struct {
    engine *eng;
    store *st;        /* NULL: no database */
    FILE *alerts_out; /* NULL: no NDJSON */
    alert_book *book;
    corr_engine *corr;
    corr_limits lim; /* of every engine this stream creates (stream_set_limits) */
    bool *generates; /* per detection rule: raises its own alerts (Sigma `generate`) */
    /* matches of the current event, handled after decoding */
    const sigma_rule **matched;
    uint32_t nmatched;
    event_view ev;
    jbuf jb;
    fh_err error; /* first error of the current batch */
    bool persist; /* correlation windows are checkpointed in the store (Kafka mode) */
    bool broken;  /* the windows could not be reloaded after a failed batch: stop */
    uint64_t batch_events;
    uint64_t alerts_written;
    /* what the console's security administrators set in the store (admin.h) */
    struct stream_admin *admin;
    bool reload_wanted;  /* the console changed rules or asked for a reload: stream_reload */
    uint64_t suppressed; /* alerts a suppression hid */
    /* for the metrics (health.c) */
    uint64_t alerts_by_level[5]; /* alert updates by severity */
    uint64_t reloads;
    int64_t loaded_ms;                      /* wall clock of the last reload, 0: the start */
    uint64_t hist[STREAM_HIST_BUCKETS + 1]; /* event processing time */
    uint64_t hist_sum_ns;
    struct archive *archive;     /* events archived as they are processed (archive.h), NULL: none */
    struct traffic_agg *traffic; /* the batch's traffic sums (traffic.h), NULL: no store */
} stream;

fh_err stream_init(stream *p, engine *e, store *st, FILE *alerts_out, char *err, size_t errlen);
void stream_free(stream *p);

/*
 * Sets the correlation engine's limits (clock policy, memory): before the first
 * event and before stream_restore_windows(). FH_ERR_NOMEM leaves the old engine.
 */
fh_err stream_set_limits(stream *p, const corr_limits *lim);

/*
 * Suppressions and switched-off rules (admin.h), read from the store when a batch
 * opens, at most once a second of wall clock, and again when the console's
 * generation counters move: a suppressed or switched-off rule's hit raises no alert
 * and is counted (p->suppressed, the suppression's hits in the store). A switched-off
 * detection rule feeds no correlation either. When the rules generation moves,
 * p->reload_wanted is set: the caller reloads (stream_reload) like on SIGHUP.
 * Expiry is wall clock: a suppression ends at its expires_at, whatever the events'
 * time. Without a store nothing is suppressed.
 */

/* Archives every processed event from now on (archive.h; closed by stream_free). */
fh_err stream_open_archive(stream *p, const char *dir, uint64_t max_bytes, int64_t max_age_ms,
                           const char *instance, char *err, size_t errlen);

/* The same read between batches (an idle consumer); nothing inside a transaction. */
fh_err stream_admin_poll(stream *p);

/* Processes one event (opens a batch when none is open). */
fh_err stream_event(stream *p, const char *json, size_t len);

/*
 * Kafka mode: from now on the correlation windows are saved with every batch, in its
 * transaction, and are restored from the store here (the state of the last committed
 * batch, matching the stored consumer positions). Rows of rules that changed or are
 * gone, or that do not fit, are dropped (counted in the log line). Needs p->st.
 * Not for --input runs: a file has no stored position to resume from, and replaying a
 * file into windows that already counted it would count it twice.
 */
fh_err stream_restore_windows(stream *p, char *err, size_t errlen);

/*
 * Flushes the book and commits the batch (with the windows' checkpoint when
 * persisting). On failure the batch is rolled back, the book forgets it and
 * persisted windows are reloaded from the store, so consuming the batch again
 * applies it once.
 */
fh_err stream_commit(stream *p, char *err, size_t errlen);

/*
 * Reloads rules, lists and the asset inventory (SIGHUP). The new set is built
 * beside the running one; if any rule is refused (reported file:line: reason)
 * or anything fails to load, the running set stays in force and an error is
 * returned. Otherwise the current batch is committed, the window state of
 * correlation rules whose definition did not change moves to the new set,
 * open alerts stay open, and p->eng is replaced (the old engine is freed: use
 * p->eng, not a saved pointer, afterwards).
 */
fh_err stream_reload(stream *p, const engine_config *cfg, char *err, size_t errlen);

#endif
