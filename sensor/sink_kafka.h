/*
 * sink_kafka.h - events to Kafka with librdkafka, and to a disk spool when
 * the brokers do not take them. The only sensor file that includes librdkafka
 * is sink_kafka.c.
 *
 * Delivery model (at-least-once, no silent loss):
 *
 *   write()  ──► spool empty? ──yes──► rd_kafka_producev ──► delivery report
 *                   │ no                    │ queue full            ok: delivered++
 *                   ▼                       ▼                        failed: ─┐
 *                 spool_append ◄── live: spool it; pcap: wait ◄──────────────┘
 *                   │
 *   poll()  ──► replay from the spool, in order, a window at a time; each
 *               record is acknowledged in the spool when its delivery report
 *               says so; a failed replay rewinds and backs off.
 *
 * While the spool holds anything, new events are appended behind it so the
 * order of events is kept. Every event ends up counted exactly once as
 * delivered, dropped (only on live capture when the spool is full, or when
 * the spool cannot be written), or still pending in the spool (replayed
 * first by the next run); in flight while the process runs:
 *
 *   produced + pending_at_start = delivered + dropped + spool_pending + in_flight
 *
 * Duplicates: with enable.idempotence librdkafka's own retries do not
 * duplicate; a message whose delivery report failed after the broker had
 * in fact stored it (a timeout on an ambiguous write) is delivered again from
 * the spool. The consumer side (the correlator) keys alerts deterministically,
 * so such a duplicate creates no duplicate alert.
 *
 * Message key: the event's Community ID (all events of a flow, from any
 * sensor, land in one partition); the sensor id for stats and anomaly events.
 */
#ifndef FH_SINK_KAFKA_H
#define FH_SINK_KAFKA_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/fh_error.h"
#include "config.h"
#include "sink.h"

/*
 * Creates the producer, opens the spool and checks that the brokers answer
 * within kafka.startup_timeout. `live` selects the full-spool policy (live:
 * drop per spool.when_full; pcap: wait) and what an unreachable broker at
 * start means (live: warn and spool; pcap: fail). On failure writes a one-line
 * reason to err.
 */
fh_err sink_kafka_open(event_sink **out, const sensor_config *cfg, bool live, char *err,
                       size_t errlen);

/*
 * The flag a signal handler sets to stop the sensor: pcap input that waits
 * for room in a full spool gives up waiting when it is set (what cannot be
 * stored is then counted as dropped).
 */
void sink_kafka_set_stop_flag(volatile sig_atomic_t *flag);

/* Counters for the exit summary. */
typedef struct {
    uint64_t produced, delivered, failed, retried, queue_full, spooled, replayed, dropped;
    uint64_t spool_pending, pending_at_start, in_flight;
} kafka_counters;

/* Fills c from a Kafka sink (no-op for other sinks: returns false). */
bool sink_kafka_counters(event_sink *s, kafka_counters *c);

#endif
