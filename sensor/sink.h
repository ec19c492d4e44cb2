/*
 * sink.h - where finished events go.
 *
 * A sink takes one complete JSON event at a time (no trailing newline) with a
 * 64-bit key that is stable for all events of one flow (the flow_id; 0 for
 * events that belong to no flow). The file sink writes NDJSON through a large
 * stdio buffer, so events cost no system call each; the Kafka sink (issue 3)
 * sits behind the same three calls.
 *
 * Ownership: the caller keeps the JSON buffer; a sink copies what it keeps.
 */
#ifndef FH_SINK_H
#define FH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct event_sink event_sink;
struct event_sink {
    fh_err (*write)(event_sink *s, const char *json, size_t len, uint64_t key);
    fh_err (*flush)(event_sink *s);
    void (*close)(event_sink *s); /* flushes and frees */
};

/*
 * Opens an NDJSON file sink ("-" = stdout). On failure writes
 * "open(\"PATH\") failed: REASON" to err.
 */
fh_err sink_file_open(event_sink **out, const char *path, char *err, size_t errlen);

#endif
