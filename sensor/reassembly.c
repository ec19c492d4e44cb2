/*
 * reassembly.c - bounded TCP stream reassembly; see reassembly.h for the design.
 *
 * The out-of-order segments of a direction form a singly linked list sorted
 * by offset whose ranges never overlap (overlapping arrivals are trimmed to
 * the bytes not yet held, which is how "first wins" is enforced), and which
 * all start after the next byte to deliver. Most out-of-order data arrives in
 * increasing order, so a tail pointer makes the common insertion O(1); the
 * worst case is bounded by dir_max_segs.
 */
#include "reassembly.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct reasm_seg {
    reasm_seg *next;
    uint64_t off; /* stream offset of data[0] */
    uint32_t len;
    uint8_t data[];
};

/* Largest window: keeps every sequence distance well inside +-2^31, where
 * "nearest offset" is unambiguous. */
#define REASM_WINDOW_MAX 0x40000000u

static const char *drop_names[] = {
#define X(e, s) s,
    REASM_DROP_REASONS(X)
#undef X
};

const char *reasm_drop_name(reasm_drop_reason r)
{
    return (unsigned)r < REASM_DROP_COUNT ? drop_names[r] : "unknown";
}

void reasm_config_defaults(reasm_config *cfg)
{
    cfg->dir_cap = 1u << 20;
    cfg->dir_max_segs = 1024;
    cfg->memcap = (size_t)64 << 20;
    cfg->depth = 1u << 20;
    cfg->max_window = REASM_WINDOW_MAX;
}

void reasm_ctx_init(reasm_ctx *c, const reasm_config *cfg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    if (c->cfg.max_window == 0 || c->cfg.max_window > REASM_WINDOW_MAX)
        c->cfg.max_window = REASM_WINDOW_MAX;
    if (c->cfg.dir_max_segs > UINT16_MAX)
        c->cfg.dir_max_segs = UINT16_MAX; /* nsegs is 16 bits to keep reasm_dir small */
}

size_t reasm_seg_mem(uint32_t len)
{
    return sizeof(reasm_seg) + len;
}

void reasm_init_dir(reasm_ctx *c, reasm_dir *d, uint32_t isn)
{
    if (!(d->flags & REASM_DIR_STARTED)) {
        d->base = isn + 1; /* the SYN occupies one sequence number */
        d->flags |= REASM_DIR_STARTED | REASM_DIR_SYN;
    } else if (!(d->flags & REASM_DIR_SYN) || d->base != isn + 1) {
        /* Re-basing a live direction would re-deliver or skip bytes; a new
         * connection on the same ports is the flow layer's business. */
        c->stats.syn_ignored++;
    }
}

void reasm_init_midstream(reasm_ctx *c, reasm_dir *d, uint32_t seq)
{
    if (d->flags & REASM_DIR_STARTED)
        return;
    d->base = seq;
    d->flags |= REASM_DIR_STARTED | REASM_DIR_MIDSTREAM;
    c->stats.midstream++;
}

static void count_drop(reasm_ctx *c, reasm_drop_reason r, uint64_t bytes)
{
    c->stats.drops[r]++;
    c->stats.drop_bytes[r] += bytes;
}

static void seg_pop(reasm_ctx *c, reasm_dir *d)
{
    reasm_seg *s = d->head;
    size_t mem = reasm_seg_mem(s->len);

    d->head = s->next;
    if (!d->head)
        d->tail = NULL;
    d->mem -= (uint32_t)mem;
    d->nsegs--;
    c->mem_used -= mem;
    free(s);
}

/* Hands bytes at d->next to the callback and advances. Callers have clipped
 * len to the depth, so this never delivers past it. */
static void deliver_at_next(reasm_ctx *c, reasm_dir *d, const uint8_t *data, uint32_t len,
                            reasm_deliver_fn deliver, void *arg)
{
    if (len == 0)
        return;
    if (deliver) {
        deliver(arg, d->next, data, len, (d->flags & REASM_DIR_GAP) ? REASM_F_GAP : 0);
        c->stats.delivered_bytes += len;
    }
    d->flags &= (uint8_t)~REASM_DIR_GAP;
    d->next += len;
    if (c->cfg.depth && d->next >= c->cfg.depth)
        d->flags |= REASM_DIR_DEPTH; /* the buffer is empty: segments never pass the depth */
}

/* Delivers the first buffered segment, which starts at or before next. */
static void drain_one(reasm_ctx *c, reasm_dir *d, reasm_deliver_fn deliver, void *arg)
{
    reasm_seg *s = d->head;
    uint64_t end = s->off + s->len;

    /* Segments start after next by construction; the check keeps a broken
     * invariant from re-delivering bytes. */
    if (end > d->next)
        deliver_at_next(c, d, s->data + (d->next - s->off), (uint32_t)(end - d->next), deliver,
                        arg);
    seg_pop(c, d);
}

/* Delivers the buffered segments that have become contiguous. */
static void drain(reasm_ctx *c, reasm_dir *d, reasm_deliver_fn deliver, void *arg)
{
    while (d->head && d->head->off <= d->next)
        drain_one(c, d, deliver, arg);
}

static void record_gap(reasm_ctx *c, reasm_dir *d, uint64_t to)
{
    uint64_t n = to - d->next;

    if (d->gaps < UINT32_MAX)
        d->gaps++;
    d->gap_bytes += n;
    c->stats.gaps++;
    c->stats.gap_bytes += n;
    d->next = to;
    d->flags |= REASM_DIR_GAP;
}

/* Inserts [off, off+len), known not to overlap any held segment. */
static reasm_drop_reason seg_store(reasm_ctx *c, reasm_dir *d, uint64_t off, const uint8_t *data,
                                   uint32_t len)
{
    size_t mem = reasm_seg_mem(len);
    reasm_seg *s, **pp;

    if (c->mem_used + mem > c->cfg.memcap)
        return REASM_DROP_MEMCAP;
    s = malloc(mem);
    if (!s)
        return REASM_DROP_NOMEM;
    s->off = off;
    s->len = len;
    memcpy(s->data, data, len);
    if (!d->tail || d->tail->off < off) {
        s->next = NULL;
        if (d->tail)
            d->tail->next = s;
        else
            d->head = s;
        d->tail = s;
    } else {
        for (pp = &d->head; *pp && (*pp)->off < off; pp = &(*pp)->next)
            ;
        s->next = *pp; /* never NULL here: the tail starts after off */
        *pp = s;
    }
    d->mem += (uint32_t)mem;
    d->nsegs++;
    c->mem_used += mem;
    if (c->mem_used > c->mem_peak)
        c->mem_peak = c->mem_used;
    return REASM_DROP_COUNT; /* stored */
}

static bool fits_dir(const reasm_ctx *c, const reasm_dir *d, uint32_t len)
{
    return d->nsegs < c->cfg.dir_max_segs &&
           (uint64_t)d->mem + reasm_seg_mem(len) <= c->cfg.dir_cap;
}

/* First held segment that ends after p, or NULL. */
static reasm_seg *seg_after(const reasm_dir *d, uint64_t p)
{
    reasm_seg *s;

    if (!d->tail || d->tail->off + d->tail->len <= p)
        return NULL;
    for (s = d->head; s && s->off + s->len <= p; s = s->next)
        ;
    return s;
}

static uint64_t count_diff(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    uint64_t diff = 0;

    for (uint64_t i = 0; i < n; i++)
        diff += a[i] != b[i];
    return diff;
}

void reasm_segment(reasm_ctx *c, reasm_dir *d, uint32_t seq, const uint8_t *data, uint32_t len,
                   reasm_deliver_fn deliver, void *arg)
{
    uint32_t window = c->cfg.max_window, rel;
    int64_t ahead;
    uint64_t pos, end, p, old;

    if (len == 0) {
        c->stats.empty++;
        return;
    }
    c->stats.segments++;
    if (!data || len > window) {
        count_drop(c, REASM_DROP_BAD_LEN, len);
        return;
    }
    if (d->flags & REASM_DIR_CLOSED) {
        count_drop(c, REASM_DROP_CLOSED, len);
        return;
    }
    if (!(d->flags & REASM_DIR_STARTED))
        reasm_init_midstream(c, d, seq);
    if (d->flags & REASM_DIR_DEPTH) {
        c->stats.after_depth_bytes += len; /* past the depth a direction only counts */
        return;
    }

    /* Signed distance from the next expected sequence number, taken as the
     * nearest one modulo 2^32 (written out: converting an out-of-range value
     * to int32_t is implementation-defined). */
    rel = seq - (d->base + (uint32_t)d->next);
    ahead = rel < 0x80000000u ? (int64_t)rel : (int64_t)rel - 0x100000000LL;
    if (ahead > (int64_t)window || ahead + (int64_t)len < -(int64_t)window) {
        count_drop(c, REASM_DROP_OUT_OF_WINDOW, len);
        return;
    }
    if (ahead + (int64_t)len <= 0) {
        count_drop(c, REASM_DROP_OLD, len);
        c->stats.retransmit_bytes += len;
        return;
    }
    /* Bytes before next were delivered already (or lie before offset 0). */
    old = ahead < 0 ? (uint64_t)-ahead : 0;
    c->stats.retransmit_bytes += old;
    pos = d->next + (ahead > 0 ? (uint64_t)ahead : 0);
    end = d->next + (uint64_t)(ahead + (int64_t)len);
    data += old; /* data now starts at offset pos */
    if (c->cfg.depth && end > c->cfg.depth) {
        uint64_t from = pos > c->cfg.depth ? pos : c->cfg.depth;

        c->stats.after_depth_bytes += end - from;
        end = from;
    }

    p = pos;
    while (p < end) {
        reasm_seg *s = seg_after(d, p);
        uint64_t piece_end;
        reasm_drop_reason r;

        if (p < d->next) { /* defensive: pieces never lie before next, see below */
            p = d->next;
            continue;
        }
        if (s && s->off <= p) {
            /* Held already: the first copy wins. */
            uint64_t n = (end < s->off + s->len ? end : s->off + s->len) - p;

            c->stats.overlap_bytes += n;
            c->stats.overlap_conflict_bytes +=
                count_diff(s->data + (p - s->off), data + (p - pos), n);
            p += n;
            /* Deliver this one segment if it is now contiguous, but not the
             * ones behind it: they may overlap the rest of this segment and
             * must be accounted the same way first. */
            if (s == d->head && s->off <= d->next)
                drain_one(c, d, deliver, arg);
            continue;
        }
        piece_end = s && s->off < end ? s->off : end;
        if (p == d->next) {
            deliver_at_next(c, d, data + (p - pos), (uint32_t)(piece_end - p), deliver, arg);
            p = piece_end;
            continue;
        }
        if (!fits_dir(c, d, (uint32_t)(piece_end - p))) {
            if (d->head) {
                /* Give up on the first hole: the sensor most likely lost
                 * that packet, and waiting would stall the direction. The
                 * hole ends at the first byte held or at this piece, and
                 * the run delivered behind it stops short of this piece
                 * (p lies in a hole), so next <= p still holds. */
                c->stats.dir_cap_skips++;
                record_gap(c, d, d->head->off < p ? d->head->off : p);
                drain(c, d, deliver, arg);
                continue;
            }
            count_drop(c, REASM_DROP_DIR_CAP, piece_end - p);
            p = piece_end;
            continue;
        }
        r = seg_store(c, d, p, data + (p - pos), (uint32_t)(piece_end - p));
        if (r != REASM_DROP_COUNT)
            count_drop(c, r, piece_end - p);
        p = piece_end;
    }
    drain(c, d, deliver, arg);
}

void reasm_close(reasm_ctx *c, reasm_dir *d, reasm_deliver_fn deliver, void *arg)
{
    if (d->flags & REASM_DIR_CLOSED)
        return;
    while (d->head) {
        if (d->head->off > d->next)
            record_gap(c, d, d->head->off);
        drain(c, d, deliver, arg);
    }
    d->flags |= REASM_DIR_CLOSED;
}

void reasm_release(reasm_ctx *c, reasm_dir *d)
{
    while (d->head)
        seg_pop(c, d);
}
