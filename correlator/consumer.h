/*
 * consumer.h - the correlator's Kafka mode: events from one or more topics,
 * read as a consumer group, through the stream (stream.h) into the store; alerts from
 * the store's outbox to the alerts topic.
 *
 * Exactly once from the events topics to the store (see store.h and
 * README-alerts.md): auto commit and auto offset store are off; the position of
 * every partition (next offset = last consumed + 1) is written with
 * store_set_offset() into the batch's transaction, after stream_event() has
 * opened it and before stream_commit() commits it, so the alerts a batch
 * produced and the position after the batch are stored together or not at all.
 * On every assignment each partition starts at the store's offset; when the
 * store has none, at the group's committed offset in Kafka, else at
 * auto.offset.reset, which this mode sets to `earliest` (the beginning; give
 * -X auto.offset.reset=latest to skip the backlog). Kafka offset commits
 * (asynchronous, after the store commit) are for lag monitoring only.
 *
 *   poll (100 ms) -> stream_event -> every `batch` events or `batch_ms` ms:
 *   store_set_offset per partition -> stream_commit -> Kafka commit (async)
 *   -> publish the outbox.
 *
 * A revoke commits the open batch first (then unassigns). A failed commit rolls
 * back and seeks the partitions back to the batch's first offsets, so the batch
 * is consumed again (retried with a 1 s pause; the run stops after 10 failures
 * in a row). Malformed messages are counted by the engine and skipped; their
 * offsets advance like any other.
 *
 * Alerts topic (at least once): the outbox rows written in the batch's
 * transaction are produced after the commit, key = alert id, value = the alert
 * update's JSON (the same text as --alerts-out), in seq order; delivered rows
 * are deleted (store_outbox_ack, up to the highest seq below which everything
 * was delivered). A failed delivery re-sends from there; what is left at exit
 * is sent by the next run. Consumers of the topic deduplicate by (id, hits).
 *
 * SIGHUP (*reload): the open batch is committed with its positions, then the rules
 * are reloaded (stream_reload; a refused set leaves the running one in force).
 *
 * SIGINT/SIGTERM (*stop): commit the batch, close the consumer (leave the
 * group), publish and flush the producer for at most 5 s, return 0.
 *
 * exit_at_end (--exit-at-end, like kcat -e): enable.partition.eof is set, and
 * the run stops the same way once it holds an assignment and every assigned
 * partition has reported the end of its log since its last message (an empty
 * assignment counts as at the end). A partition rewound after a failed commit,
 * or newly assigned, must reach its end again; after a revoke that leaves
 * nothing assigned, the next assignment is awaited.
 * Unreachable brokers at start: an error within 10 s (metadata request),
 * never a hang.
 */
#ifndef FH_CORR_CONSUMER_H
#define FH_CORR_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *rules, *lists_dir, *assets_file; /* as for the engine */
    const char *brokers;                         /* bootstrap.servers */
    const char *const *topics;                   /* events topics (at least one) */
    size_t ntopics;
    const char *group;        /* group.id; NULL: "fenghuo-correlator" */
    const char *alerts_topic; /* NULL: "fenghuo.alerts" */
    const char *const *props; /* -X name=value, for the consumer and the producer */
    size_t nprops;
    const char *db;             /* SQLite store: required (positions, outbox) */
    const char *alerts_out;     /* NDJSON, appended to; NULL: none; "-": stdout */
    uint32_t batch;             /* events per transaction (default 5000) */
    uint32_t batch_ms;          /* longest a batch stays open, ms (default 200) */
    bool exit_at_end;           /* stop once every assigned partition is at its end */
    bool strict;                /* do not start with a rule refused (health.h) */
    const char *metrics;        /* Prometheus text file; NULL: none */
    const char *metrics_listen; /* /metrics over HTTP ("ADDR:PORT"); NULL: none */
    const char *archive;        /* event archive root (archive.h); NULL: none */
    uint64_t archive_max_bytes;
    int64_t archive_max_age_ms;
    const char *instance; /* name in correlator_health; NULL: the host name */
    int64_t max_ahead_ms; /* correlation clock policy (corr_admit); 0: default */
    volatile sig_atomic_t *stop;
    volatile sig_atomic_t *reload; /* SIGHUP: commit the batch, then stream_reload() */
} consumer_config;

/* Runs until *stop (or, with exit_at_end, the end of every assigned partition); returns the
 * exit status (0, or 1 with the reason logged). */
int run_kafka(const consumer_config *cfg);

#endif
