/*
 * sink.h - where finished events go.
 *
 * A sink takes one complete JSON event at a time (no trailing newline) with
 * its event type and a key that is stable for all events of one flow (the
 * Community ID; the sensor id for stats and anomaly events). The file sink
 * writes NDJSON through a large stdio buffer, so events cost no system call
 * each; the Kafka sink (sink-kafka.c) publishes them with librdkafka and
 * spools what the broker does not take; the tee sink feeds two sinks.
 *
 * poll() lets a sink do its background work on the caller's thread
 * (delivery reports, spool replay); the pipeline calls it regularly and on
 * idle ticks. write_stats() adds the sink's counters to a stats event.
 *
 * Ownership: the caller keeps the buffers it passes; a sink copies what it keeps.
 */
#ifndef FH_SINK_H
#define FH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"

typedef struct event_sink event_sink;
struct event_sink {
    fh_err (*write)(event_sink *s, const char *event_type, const char *json, size_t len,
                    const char *key, size_t key_len);
    fh_err (*flush)(event_sink *s);
    void (*poll)(event_sink *s);                 /* may be NULL */
    void (*write_stats)(event_sink *s, jbuf *b); /* may be NULL */
    void (*close)(event_sink *s);                /* flushes and frees */
};

/*
 * Opens an NDJSON file sink ("-" = stdout). On failure writes
 * "open(\"PATH\") failed: REASON" to err.
 */
fh_err sink_file_open(event_sink **out, const char *path, char *err, size_t errlen);

/* A sink that writes every event to both a and b (it owns them). */
fh_err sink_tee_new(event_sink **out, event_sink *a, event_sink *b);

#endif
