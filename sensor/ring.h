/*
 * ring.h - single-producer single-consumer ring of variable-size records,
 * the hand-off from the capture thread to one worker thread.
 *
 *   buf: | rec | rec | rec |  free  | wrap | rec | ...
 *          ^tail (consumer)         ^head (producer)
 *
 *   rec: [u32 len][u32 -][len bytes][pad to 8]   wrap: [u32 RING_WRAP] (rest of the buffer unused)
 *
 * Every record starts 8-byte aligned (decode_pkt and the message header need it).
 *
 * head and tail count bytes since the start and only grow; the position in
 * the buffer is the count modulo the size (a power of two). A record never
 * wraps: if it does not fit before the end, a wrap mark fills the rest and
 * the record starts at offset 0. The producer owns head, the consumer tail;
 * each reads the other's with acquire loads and publishes its own with
 * release stores, so the packet path takes no lock and makes no system call
 * while both sides are busy.
 *
 * Waiting: a side that finds the ring empty (consumer) or full (producer)
 * spins briefly, then sleeps on a futex with a timeout. The other side
 * wakes it after publishing, but the producer only wakes a sleeping consumer
 * every RING_WAKE_BATCH records or on ring_kick(), so a consumer that keeps
 * up is not woken (one system call) per packet. Whoever sleeps sets its
 * "waiting" flag, then re-checks the ring (store-load ordering with seq_cst
 * atomics and fences). A consumer can fall asleep next to records published
 * since the last kick; the next kick (at most RING_WAKE_BATCH records later,
 * and at every pause of the producer) or its timeout wakes it.
 *
 * Ownership: the ring owns its buffer. A reserved record is the producer's
 * until ring_commit(); a peeked record is the consumer's until ring_release().
 */
#ifndef FH_RING_H
#define FH_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_WAKE_BATCH 64 /* records between wake-ups of a sleeping consumer */

typedef struct {
    /* producer side */
    _Alignas(64) _Atomic uint64_t head;
    uint64_t tail_cache; /* last tail the producer read */
    uint64_t reserved;   /* head after the reserved record (0 = none) */
    uint32_t since_wake; /* records committed since the consumer was last woken */
    uint64_t full_waits; /* times the producer found the ring full */

    /* consumer side */
    _Alignas(64) _Atomic uint64_t tail;
    uint64_t head_cache; /* last head the consumer read */
    uint64_t peeked;     /* tail after the peeked record (0 = none) */
    uint64_t sleeps;     /* times the consumer went to sleep */

    /* sleeping, written rarely: a line of its own */
    _Alignas(64) _Atomic uint32_t prod_waiting, cons_waiting;
    _Atomic uint32_t prod_seq, cons_seq; /* futex words the producer / consumer sleep on */

    _Alignas(64) uint8_t *buf;
    size_t size; /* power of two */
} fh_ring;

/*
 * Allocates a ring of at least `bytes` (rounded up to a power of two, >= 64 KiB),
 * on huge pages where the kernel allows, and touches every page so the packet
 * path takes no page fault. 0 or -1.
 */
int ring_init(fh_ring *r, size_t bytes);
void ring_free(fh_ring *r);

/* Largest record that fits (a quarter of the ring). */
size_t ring_max_record(const fh_ring *r);

/*
 * Producer: room for a record of len bytes (len <= ring_max_record()), waiting
 * while the ring is full. The record is invisible until ring_commit(). Returns
 * NULL only if len is too large.
 */
void *ring_reserve(fh_ring *r, uint32_t len);
/* Producer: publishes the reserved record. */
void ring_commit(fh_ring *r);
/* Producer: wakes the consumer if it sleeps and records were published since it was woken. */
void ring_kick(fh_ring *r);

/* Consumer: the next record (its length in *len), or NULL if the ring is empty. */
void *ring_peek(fh_ring *r, uint32_t *len);
/* Consumer: frees the record ring_peek() returned. */
void ring_release(fh_ring *r);
/* Consumer: waits until a record is there or timeout_ms passed. True if one is there. */
bool ring_wait(fh_ring *r, int timeout_ms);

/* Futex helpers for other hand-offs (the pipeline's barrier): sleep while *word == expect. */
void ring_wait_word(_Atomic uint32_t *word, uint32_t expect, int timeout_ms);
void ring_wake_word(_Atomic uint32_t *word);

#endif
