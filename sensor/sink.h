/*
 * sink.h - where finished events go.
 *
 * A sink takes one complete JSON event at a time (no trailing newline) with
 * its event type and a key that is stable for all events of one flow (the
 * Community ID; the sensor id for stats and anomaly events). The file sink
 * writes NDJSON through a large stdio buffer, so events cost no system call
 * each; the Kafka sink (sink_kafka.c) publishes them with librdkafka and
 * spools what the broker does not take; the tee sink feeds two sinks.
 *
 * poll() lets a sink do its background work on the caller's thread
 * (delivery reports, spool replay); the pipeline calls it regularly and on
 * idle ticks. write_stats() adds the sink's counters to a stats event.
 *
 * Loss accounting: write() returns FH_OK when the sink took the event. An
 * event it took and later could not keep (a failed write of the file buffer,
 * a full or unwritable spool) is counted in sink_result.lost; every failed
 * system call (write, flush, close, spool I/O) in sink_result.errors. The
 * final counts come from close(), which is the last word: the run's summary
 * and exit status are decided after it.
 *
 * Ownership: the caller keeps the buffers it passes; a sink copies what it keeps.
 */
#ifndef FH_SINK_H
#define FH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"

typedef struct {
    uint64_t lost;   /* events taken by write() and then not kept */
    uint64_t errors; /* failed writes, flushes, closes, spool I/O */
} sink_result;

typedef struct event_sink event_sink;
struct event_sink {
    fh_err (*write)(event_sink *s, const char *event_type, const char *json, size_t len,
                    const char *key, size_t key_len);
    fh_err (*flush)(event_sink *s);
    void (*poll)(event_sink *s);                 /* may be NULL */
    void (*write_stats)(event_sink *s, jbuf *b); /* may be NULL */
    /* Flushes, closes and frees; adds the final counts to *res (may be NULL).
     * FH_ERR_IO when anything was lost or failed over the sink's life. */
    fh_err (*close)(event_sink *s, sink_result *res);
};

/*
 * Opens an NDJSON file sink ("-" = stdout). On failure writes
 * "open(\"PATH\") failed: REASON" to err. Events are buffered (1 MiB) and
 * written with write(2): a failed write is logged with its reason, the events
 * it cut are counted as lost, and a regular file is cut back to its last whole
 * line, so the file never ends in half an event.
 */
fh_err sink_file_open(event_sink **out, const char *path, char *err, size_t errlen);

/* A sink that writes every event to both a and b (it owns them). */
fh_err sink_tee_new(event_sink **out, event_sink *a, event_sink *b);

#endif
