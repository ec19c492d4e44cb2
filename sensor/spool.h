/*
 * spool.h - a bounded on-disk queue of events that could not be delivered.
 *
 * Layout: a directory of append-only segment files named
 * "spool-<20-digit sequence>.seg", oldest first. A segment is a sequence of
 * records:
 *
 *   magic "FHS1" (4) | crc32 (4, LE) | topic_len (2, LE) | key_len (2, LE) |
 *   payload_len (4, LE) | topic | key | payload
 *
 * The CRC-32 (zlib) covers everything after the crc field. A record whose
 * magic, lengths or CRC do not check out (power loss, disk error) is counted,
 * reported once per segment, and skipped by scanning for the next magic whose
 * record checks out; a record cut short at the end of a segment is counted as
 * truncated. Everything else is replayed.
 *
 * Use: the Kafka sink appends what the broker did not take, reads records
 * back in order (spool_next), and acknowledges each one once the broker has
 * confirmed it (spool_ack). Acknowledgements may arrive out of order within
 * the window of records read but not yet acknowledged; a record read twice
 * after spool_rewind() that was already acknowledged is skipped, so the spool
 * itself never produces duplicates. A segment is deleted once every record in
 * it is acknowledged. A spool reopened after a restart continues where the
 * last one stopped (acknowledgements not yet reflected by a deleted segment
 * are lost, so those records are replayed again: at-least-once).
 *
 * Limits: max_bytes on disk. When an append would exceed it the configured
 * policy applies: drop the oldest segments (counted), refuse the new record
 * (counted), or return FH_ERR_LIMIT so the caller can wait (back-pressure).
 *
 * Not thread-safe: one owner.
 */
#ifndef FH_SPOOL_H
#define FH_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef enum {
    SPOOL_FSYNC_NONE = 0, /* leave it to the kernel */
    SPOOL_FSYNC_SEGMENT,  /* fsync a segment when it is closed (default) */
    SPOOL_FSYNC_ALWAYS,   /* fsync after every append */
} spool_fsync;

typedef enum {
    SPOOL_FULL_DROP_OLDEST = 0, /* live capture default */
    SPOOL_FULL_DROP_NEWEST,
    SPOOL_FULL_BLOCK, /* spool_append returns FH_ERR_LIMIT; the caller waits */
} spool_full_policy;

typedef struct {
    const char *dir;        /* created if missing (mode 0700) */
    uint64_t max_bytes;     /* total size of all segments */
    uint64_t segment_bytes; /* a new segment is started past this size */
    spool_fsync fsync;
    spool_full_policy when_full;
} spool_config;

typedef struct {
    uint64_t appended;        /* records written */
    uint64_t read;            /* records handed out by spool_next (re-reads included) */
    uint64_t acked;           /* records acknowledged */
    uint64_t dropped;         /* records dropped by the full policy (oldest or newest) */
    uint64_t corrupt;         /* records skipped for a bad magic, length or CRC */
    uint64_t truncated;       /* records cut short at the end of a segment */
    uint64_t pending_records; /* appended (or found at open) and not yet acknowledged */
    uint64_t bytes;           /* bytes on disk */
    uint32_t segments;
} spool_stats;

typedef struct {
    uint64_t id; /* pass to spool_ack */
    const char *topic;
    size_t topic_len;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t payload_len;
} spool_record;

typedef struct spool spool;

/*
 * Opens (creating if needed) the spool directory and indexes the segments
 * already there. On failure writes "spool: REASON" to err.
 */
fh_err spool_open(spool **out, const spool_config *cfg, char *err, size_t errlen);
/* Closes the current segment (fsync per policy) and frees the handle. */
void spool_close(spool *s);

/*
 * Writes the append buffer out (the segment stays open). FH_ERR_IO on a write
 * error: with the BLOCK policy the records stay buffered (a later call may
 * write them), otherwise they are dropped and counted.
 */
fh_err spool_flush(spool *s);

/*
 * Writes the append buffer and closes the current segment (fsync per policy),
 * so that the counters are final: records that could not be written are then
 * counted in dropped. FH_ERR_IO on a write error. The next append starts a new
 * segment.
 */
fh_err spool_sync(spool *s);

/*
 * Appends one record. FH_OK when written (possibly after dropping the oldest
 * segments), FH_ERR_LIMIT when full and the policy is BLOCK or DROP_NEWEST
 * (DROP_NEWEST counts the record as dropped), FH_ERR_IO on a write error.
 */
fh_err spool_append(spool *s, const char *topic, size_t topic_len, const void *key, size_t key_len,
                    const void *payload, size_t payload_len);

/* True when every record is acknowledged (nothing to replay or in flight). */
bool spool_empty(const spool *s);

/* True when records remain after the read cursor. */
bool spool_has_unread(const spool *s);

/*
 * Reads the next unacknowledged record after the read cursor. Returns 1 with
 * *rec filled (valid until the next spool call), 0 when the cursor is at the
 * end, or -1 on an I/O error (err filled).
 */
int spool_next(spool *s, spool_record *rec, char *err, size_t errlen);

/* Marks a record delivered; deletes segments that are fully acknowledged. */
void spool_ack(spool *s, uint64_t id);

/* Moves the read cursor back to the oldest unacknowledged record. */
void spool_rewind(spool *s);

const spool_stats *spool_get_stats(const spool *s);

#endif
