/*
 * reassembly.h - bounded TCP stream reassembly, one direction at a time.
 *
 * A connection has two reasm_dir (client->server, server->client), embedded
 * in whatever per-flow state the owner keeps; a reasm_ctx holds the limits,
 * the memory count and the counters shared by all flows of one pipeline.
 *
 * Stream offsets: byte 0 of a direction is ISN+1 when the SYN was seen
 * (reasm_init_dir), or the first payload byte seen otherwise (mid-stream
 * pickup, flagged REASM_DIR_MIDSTREAM). Offsets are 64-bit, so the 32-bit
 * sequence space wraps transparently: a sequence number is interpreted as
 * the nearest offset (within +-2^31) to the next byte to deliver.
 *
 * Delivery: every byte is handed to the deliver callback at most once, in
 * stream order, together with its offset. Contiguous data goes straight from
 * the packet to the callback (no copy); only out-of-order data is copied
 * into per-direction segments, kept sorted and non-overlapping.
 *
 * Overlap policy "first": bytes already received (delivered or buffered)
 * win over bytes at the same offset arriving later, as Suricata's "first"
 * and defrag.c. A retransmission with different bytes therefore cannot
 * change what a scanner saw; overlapping buffered bytes that differ are
 * counted (overlap_conflict_bytes) as a sign of evasion.
 *
 * Gaps: a hole that is never filled is skipped at reasm_close, or earlier
 * when the per-direction buffer is full (see below). The skip is counted
 * per direction (gaps, gap_bytes) and the next delivery carries
 * REASM_F_GAP and an offset past the hole, so a scanner knows the stream is
 * discontiguous.
 *
 * Limits (all counted in reasm_stats, never a crash, never unbounded memory):
 *  - max_window: segments starting more than this ahead of, or ending more
 *    than this behind, the next byte to deliver are ignored (out_of_window).
 *  - dir_cap: memory of out-of-order segments per direction (data plus a
 *    fixed header, reasm_seg_mem()) and dir_max_segs segments. When a
 *    segment would not fit, the direction gives up waiting for its first
 *    hole (the sensor most likely lost that packet): the hole becomes a gap,
 *    buffered data behind it is delivered, and the segment is tried again;
 *    only if it still does not fit is it dropped. The skip is counted
 *    (dir_cap_skips). An attacker who fills the buffer can make the sensor
 *    skip a hole that the receiver will later fill: the gap counters are the
 *    evidence of it.
 *  - memcap: out-of-order memory of all flows of the context. Past it the
 *    new segment is dropped (memcap drop): a flow cannot free other flows'
 *    memory, and its own holes may still fill.
 *  - depth: bytes with a stream offset >= depth are never delivered nor
 *    buffered. Once the delivered point reaches depth the direction frees
 *    its buffer and only counts the bytes it is given (after_depth_bytes).
 *    A gap counts towards depth: depth bounds the stream offset. 0 means no
 *    depth limit.
 *
 * Memory: an idle reasm_dir is sizeof(reasm_dir) (48 bytes on LP64) and owns
 * nothing; out-of-order data costs reasm_seg_mem(len) per segment until it is
 * delivered or the direction is closed.
 *
 * Ownership: the owner embeds the reasm_dir and must call reasm_close() (or
 * reasm_release()) before freeing it, which frees the buffered segments and
 * returns their memory to the context. A zeroed reasm_dir is a valid "nothing
 * seen yet" state.
 */
#ifndef FH_REASSEMBLY_H
#define FH_REASSEMBLY_H

#include <stddef.h>
#include <stdint.h>

/* Why a segment (or part of it) was not used; one counter each. */
#define REASM_DROP_REASONS(X)                                                                      \
    X(BAD_LEN, "reasm.bad_len")             /* longer than the window, or no data pointer */       \
    X(OUT_OF_WINDOW, "reasm.out_of_window") /* far from the expected sequence number */            \
    X(OLD, "reasm.old")                     /* entirely before the delivered point */              \
    X(DIR_CAP, "reasm.dir_cap")             /* direction's buffer full, even after skipping */     \
    X(MEMCAP, "reasm.memcap")               /* context memcap reached */                           \
    X(NOMEM, "reasm.nomem")                 /* malloc failed */                                    \
    X(CLOSED, "reasm.closed")               /* direction already closed */

typedef enum {
#define X(e, s) REASM_DROP_##e,
    REASM_DROP_REASONS(X)
#undef X
        REASM_DROP_COUNT
} reasm_drop_reason;

/* Stable reason id, e.g. "reasm.memcap". */
const char *reasm_drop_name(reasm_drop_reason r);

typedef struct {
    uint32_t dir_cap;      /* bytes of out-of-order segments per direction (with headers) */
    uint32_t dir_max_segs; /* out-of-order segments per direction (bounds insertion cost) */
    size_t memcap;         /* bytes of out-of-order segments in the whole context */
    uint64_t depth;        /* deliver stream offsets < depth; 0 = no limit */
    uint32_t max_window;   /* sequence distance accepted around the delivered point */
} reasm_config;

/* Defaults: dir_cap 1 MiB, 1024 segments, memcap 64 MiB, depth 1 MiB, window 1 GiB. */
void reasm_config_defaults(reasm_config *cfg);

typedef struct {
    uint64_t segments;               /* calls with data */
    uint64_t empty;                  /* calls without data (ignored) */
    uint64_t midstream;              /* directions picked up without a SYN */
    uint64_t delivered_bytes;        /* handed to deliver callbacks */
    uint64_t retransmit_bytes;       /* already delivered, received again */
    uint64_t overlap_bytes;          /* already buffered, received again */
    uint64_t overlap_conflict_bytes; /* ... with different content (first kept) */
    uint64_t gaps, gap_bytes;        /* holes skipped, all directions */
    uint64_t dir_cap_skips;          /* holes skipped because a direction's buffer was full */
    uint64_t after_depth_bytes;      /* received at or past the depth, only counted */
    uint64_t drops[REASM_DROP_COUNT];
    uint64_t drop_bytes[REASM_DROP_COUNT];
    uint64_t syn_ignored; /* reasm_init_dir on a direction already started differently */
} reasm_stats;

typedef struct {
    reasm_config cfg;
    size_t mem_used, mem_peak; /* out-of-order segments, with headers */
    reasm_stats stats;
} reasm_ctx;

typedef struct reasm_seg reasm_seg;

/* Direction flags. */
enum {
    REASM_DIR_STARTED = 1u << 0,   /* base is set */
    REASM_DIR_SYN = 1u << 1,       /* started from a SYN */
    REASM_DIR_MIDSTREAM = 1u << 2, /* started from the first data seen */
    REASM_DIR_DEPTH = 1u << 3,     /* depth reached: counting only */
    REASM_DIR_CLOSED = 1u << 4,    /* reasm_close done */
    REASM_DIR_GAP = 1u << 5,       /* a gap was skipped since the last delivery */
};

typedef struct {
    reasm_seg *head, *tail; /* out-of-order segments, sorted by offset, disjoint */
    uint64_t next;          /* stream offset of the next byte to deliver */
    uint64_t gap_bytes;     /* bytes skipped in holes */
    uint32_t base;          /* sequence number of stream offset 0 */
    uint32_t mem;           /* reasm_seg_mem() of the segments held */
    uint32_t gaps;          /* holes skipped (saturates) */
    uint16_t nsegs;         /* segments held */
    uint8_t flags;          /* REASM_DIR_* */
} reasm_dir;

/* Delivery flags. */
enum {
    REASM_F_GAP = 1u << 0, /* bytes are missing before `offset` (a hole was skipped) */
};

/*
 * Receives `len` (> 0) contiguous bytes at stream offset `offset`. `data` is
 * valid only during the call. Must not call back into the same direction.
 */
typedef void (*reasm_deliver_fn)(void *arg, uint64_t offset, const uint8_t *data, uint32_t len,
                                 unsigned flags);

/* Sets up a context; allocates nothing. Values of cfg are clamped to sane ranges. */
void reasm_ctx_init(reasm_ctx *c, const reasm_config *cfg);

/* Memory one buffered segment of len bytes is charged (header included). */
size_t reasm_seg_mem(uint32_t len);

/*
 * The direction's SYN with initial sequence number isn was seen: offset 0 is
 * isn + 1. A repeated SYN with the same isn is a no-op; one with another isn,
 * or after data was picked up mid-stream, is ignored and counted
 * (syn_ignored): the flow layer ends a connection whose ports are reused.
 */
void reasm_init_dir(reasm_ctx *c, reasm_dir *d, uint32_t isn);

/*
 * Mid-stream pickup: offset 0 is seq. Done by reasm_segment on the first
 * data of a direction without SYN; exposed for callers that know better.
 * No-op on a started direction.
 */
void reasm_init_midstream(reasm_ctx *c, reasm_dir *d, uint32_t seq);

/*
 * One TCP segment: `seq` is the sequence number of its first payload byte
 * (for a SYN carrying data, the SYN's seq + 1), `data`/`len` the payload.
 * Delivers through `deliver` every byte that has become contiguous, buffers
 * what is out of order, within the limits above. Never fails: what is not
 * used is counted in c->stats.
 */
void reasm_segment(reasm_ctx *c, reasm_dir *d, uint32_t seq, const uint8_t *data, uint32_t len,
                   reasm_deliver_fn deliver, void *arg);

/*
 * FIN, RST or end of flow: delivers the buffered data in order, recording the
 * holes before it as gaps, frees the direction's segments and marks it closed
 * (later segments are dropped, reason CLOSED). deliver may be NULL to only
 * release (the holes are still counted).
 */
void reasm_close(reasm_ctx *c, reasm_dir *d, reasm_deliver_fn deliver, void *arg);

/* Frees the direction's segments without delivering or counting gaps. */
void reasm_release(reasm_ctx *c, reasm_dir *d);

#endif
