/*
 * ring.c - SPSC ring of variable-size records; see ring.h.
 */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_WRAP  0xffffffffu
#define RING_ALIGN 8u
#define SPINS      200 /* polls before yielding */
#define YIELDS     8   /* sched_yield() calls before sleeping */
#define SLEEP_MS   20  /* a sleeper re-checks at least this often */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expect, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};

    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expect, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#define REC_HDR 8u /* u32 length, u32 unused: the record itself starts 8-byte aligned */

static inline uint32_t rec_size(uint32_t len)
{
    return (uint32_t)((REC_HDR + len + RING_ALIGN - 1) & ~(RING_ALIGN - 1));
}

int ring_init(fh_ring *r, size_t bytes)
{
    size_t size = 65536;

    memset(r, 0, sizeof(*r));
    while (size < bytes && size < ((size_t)1 << 31))
        size <<= 1;
    /* Huge pages where the kernel gives them: a 16 MiB ring is 8 faults, not 4096. */
    r->buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r->buf == MAP_FAILED) {
        r->buf = NULL;
        return -1;
    }
    madvise(r->buf, size, MADV_HUGEPAGE);
    /* Fault it in now, not on the packet path. */
    for (size_t off = 0; off < size; off += 4096)
        ((volatile uint8_t *)r->buf)[off] = 0;
    r->size = size;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void ring_free(fh_ring *r)
{
    if (r->buf)
        munmap(r->buf, r->size);
    r->buf = NULL;
}

size_t ring_max_record(const fh_ring *r)
{
    return r->size / 4 - 2 * REC_HDR;
}

/* Space free for the producer, refreshing its view of tail when needed. */
static uint64_t ring_free_bytes(fh_ring *r, uint64_t head, uint64_t need)
{
    if (r->size - (head - r->tail_cache) >= need)
        return r->size - (head - r->tail_cache);
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    return r->size - (head - r->tail_cache);
}

/* Producer: the ring is full; sleep until the consumer frees something. */
static void producer_wait(fh_ring *r, uint64_t head, uint64_t need, unsigned *round)
{
    uint32_t seq;

    if (*round < SPINS) {
        cpu_relax();
    } else if (*round < SPINS + YIELDS) {
        sched_yield();
    } else {
        ring_kick(r); /* it may be asleep on records not yet signalled */
        atomic_store(&r->prod_waiting, 1);
        seq = atomic_load(&r->prod_seq);
        if (ring_free_bytes(r, head, need) < need)
            futex_wait(&r->prod_seq, seq, SLEEP_MS);
        atomic_store(&r->prod_waiting, 0);
    }
    (*round)++;
}

/*
 * Producer: waits until `need` bytes are free. Once the ring was found full it
 * waits for a quarter of the ring (hysteresis): resuming as soon as one record
 * is freed would make the two threads wake each other for every record.
 */
static void wait_for_room(fh_ring *r, uint64_t head, uint64_t need)
{
    unsigned round = 0;
    uint64_t want;

    if (ring_free_bytes(r, head, need) >= need)
        return;
    r->full_waits++;
    want = need > r->size / 4 ? need : r->size / 4;
    while (ring_free_bytes(r, head, want) < want)
        producer_wait(r, head, want, &round);
}

void *ring_reserve(fh_ring *r, uint32_t len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t need = rec_size(len);
    uint64_t pos = head & (r->size - 1);
    uint64_t to_end = r->size - pos;

    if (len > ring_max_record(r))
        return NULL;
    if (to_end < need) {
        /* Fill the rest with a wrap mark; the record goes to the start. */
        wait_for_room(r, head, to_end + need);
        *(uint32_t *)(r->buf + pos) = RING_WRAP;
        head += to_end;
        pos = 0;
    } else {
        wait_for_room(r, head, need);
    }
    *(uint32_t *)(r->buf + pos) = len;
    r->reserved = head + need;
    return r->buf + pos + REC_HDR;
}

void ring_commit(fh_ring *r)
{
    atomic_store_explicit(&r->head, r->reserved, memory_order_release);
    r->reserved = 0;
    if (++r->since_wake >= RING_WAKE_BATCH)
        ring_kick(r);
}

void ring_kick(fh_ring *r)
{
    if (!r->since_wake)
        return;
    /* Pairs with the consumer's store of cons_waiting and load of head (ring_wait): either
     * it sees the records published so far, or this sees it waiting. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->cons_waiting, memory_order_relaxed)) {
        atomic_fetch_add(&r->cons_seq, 1);
        futex_wake(&r->cons_seq);
    }
    r->since_wake = 0;
}

void *ring_peek(fh_ring *r, uint32_t *len)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

    for (;;) {
        uint64_t pos = tail & (r->size - 1);
        uint32_t n;

        if (tail == r->head_cache) {
            r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail == r->head_cache)
                return NULL;
        }
        n = *(uint32_t *)(r->buf + pos);
        if (n == RING_WRAP) {
            tail += r->size - pos;
            atomic_store_explicit(&r->tail, tail, memory_order_release);
            continue;
        }
        *len = n;
        r->peeked = tail + rec_size(n);
        return r->buf + pos + REC_HDR;
    }
}

void ring_release(fh_ring *r)
{
    uint64_t tail = r->peeked;

    atomic_store(&r->tail, tail); /* seq_cst: ordered before the load below */
    r->peeked = 0;
    /* A sleeping producer waits for a quarter of the ring (wait_for_room). */
    if (atomic_load(&r->prod_waiting) &&
        r->size - (atomic_load_explicit(&r->head, memory_order_acquire) - tail) >= r->size / 4) {
        atomic_fetch_add(&r->prod_seq, 1);
        futex_wake(&r->prod_seq);
    }
}

bool ring_wait(fh_ring *r, int timeout_ms)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t seq;

    for (unsigned i = 0; i < SPINS + YIELDS; i++) {
        if (atomic_load_explicit(&r->head, memory_order_acquire) != tail)
            return true;
        if (i < SPINS)
            cpu_relax();
        else
            sched_yield();
    }
    r->sleeps++;
    atomic_store(&r->cons_waiting, 1);
    seq = atomic_load(&r->cons_seq);
    if (atomic_load(&r->head) == tail)
        futex_wait(&r->cons_seq, seq, timeout_ms > 0 ? timeout_ms : SLEEP_MS);
    atomic_store(&r->cons_waiting, 0);
    return atomic_load_explicit(&r->head, memory_order_acquire) != tail;
}

void ring_wait_word(_Atomic uint32_t *word, uint32_t expect, int timeout_ms)
{
    futex_wait(word, expect, timeout_ms);
}

void ring_wake_word(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
