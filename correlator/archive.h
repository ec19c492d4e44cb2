/*
 * archive.h - the correlator's rolling archive of the events it consumed, for the
 * console to pivot from an alert to every event of its flow or host and to test a
 * rule before enabling it (docs/archive.md).
 *
 *   DIR/<instance>/<seq>.ndjson.zst   events, zstd frames ("<ts_ms>\t<event>\n" lines)
 *   DIR/<instance>/<seq>.idx          "first_ts last_ts events raw_bytes\n" of that segment
 *
 * Each correlator instance writes its own folder; a new segment starts at every open
 * and when the current one holds segment_bytes of events. Every batch commit ends a
 * zstd frame and rewrites the segment's index, so readers see every committed batch;
 * a frame cut short by a crash is skipped. Bounds: compressed bytes per instance and
 * the age of a segment's newest event behind the newest event archived (event time,
 * so a replay archives the same way); the oldest segments go first and every eviction
 * is counted. At-least-once: a batch replayed after a crash is archived again.
 */
#ifndef FH_ARCHIVE_H
#define FH_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct {
    const char *dir;        /* the archive root */
    uint64_t max_bytes;     /* compressed bytes kept per instance; 0: 1 GiB */
    int64_t max_age_ms;     /* 0: 180 days */
    uint64_t segment_bytes; /* uncompressed bytes per segment; 0: 64 MiB */
    int level;              /* zstd level; 0: 3 */
} archive_opts;

typedef struct {
    uint64_t events, bytes_in, segments, evicted_segments, evicted_events, errors;
    uint64_t disk_bytes; /* compressed bytes on disk now */
} archive_stats;

typedef struct archive archive;

/* Opens instance's folder under o->dir (made when absent) and a new segment. */
fh_err archive_open(archive **out, const archive_opts *o, const char *instance, char *err,
                    size_t errlen);
/* Appends one event (its text without the newline) of event time ts_ms. */
fh_err archive_add(archive *a, const char *json, size_t len, int64_t ts_ms);
/* Ends the frame and rewrites the index (after each batch commit); rolls and evicts. */
fh_err archive_flush(archive *a);
void archive_get_stats(const archive *a, archive_stats *s);
void archive_close(archive *a);

/*
 * Reads every instance's segments under dir that may hold events of [from_ms, to_ms]
 * (0: unbounded), in each instance's order, calling fn for each event in the range;
 * fn returns false to stop. *scanned (may be NULL) counts the events read.
 */
typedef bool (*archive_event_fn)(void *ctx, const char *json, size_t len, int64_t ts_ms);
fh_err archive_scan(const char *dir, int64_t from_ms, int64_t to_ms, archive_event_fn fn, void *ctx,
                    uint64_t *scanned, char *err, size_t errlen);

#endif
