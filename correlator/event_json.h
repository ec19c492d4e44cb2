/*
 * event_json.h - decodes one JSON event into an event_view, reading only the
 * fields in the field_table (simdjson On-Demand, in event_json.cpp: the only
 * C++ in the project, behind this C interface).
 *
 * Paths are resolved through nested objects ("geo.dest.country"); a key that
 * itself contains a dot ("geo.dest.country" written flat) is also found. An
 * array value becomes SV_LIST of its scalar items (nested arrays and objects
 * inside a list are skipped). An object value becomes SV_OBJECT (present,
 * for `exists`), not its contents.
 *
 * Malformed JSON, a top level that is not an object, or a document over
 * EVENT_MAX_BYTES is an error with a short reason; the caller counts it and
 * moves on.
 */
#ifndef FH_EVENT_JSON_H
#define FH_EVENT_JSON_H

#include <stddef.h>

#include "../common/fh_error.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVENT_MAX_BYTES (4u << 20)

typedef struct event_decoder event_decoder;

/* The decoder keeps a pointer to ft: intern every field before creating it. */
fh_err event_decoder_new(event_decoder **out, const field_table *ft);
void event_decoder_free(event_decoder *d);

/*
 * Decodes json[0..len). The bytes are copied into the decoder's padded
 * buffer, so the caller's buffer needs no padding and may be reused at once.
 * On success *ev views the decoder's memory until the next call.
 */
fh_err event_decode(event_decoder *d, const char *json, size_t len, event_view *ev, char *err,
                    size_t errlen);

/*
 * The decoder's value slots for the current event, writable, so enrichment
 * (assets.c) can add fields such as src_asset.zone after decoding. Strings
 * written here must outlive the event (static or owned by the enricher).
 */
sv *event_decoder_slots(event_decoder *d);

/* Items kept of one list (SV_LIST); the rest are dropped and counted. */
#define EVENT_LIST_MAX 1024

/* Counters since the decoder was created. */
typedef struct {
    uint64_t decoded;         /* events decoded */
    uint64_t errors;          /* events refused (malformed, not an object, too large) */
    uint64_t lists_truncated; /* lists cut to EVENT_LIST_MAX items */
} event_decoder_stats;

void event_decoder_get_stats(const event_decoder *d, event_decoder_stats *st);

#ifdef __cplusplus
}
#endif

#endif
