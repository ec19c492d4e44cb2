/*
 * test_reassembly.c - TCP stream reassembly: in-order and out-of-order
 * delivery (every permutation of small splits, seeded shuffles of larger
 * ones against a first-wins reference model), retransmissions, the overlap
 * policy, sequence wraparound, gaps at close and on a full buffer, the
 * per-direction cap and the memcap, the depth limit, mid-stream pickup and
 * hostile values. Every delivery goes through a sink that checks that
 * offsets only move forward and jump only when flagged as a gap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/reassembly.h"

#define SINK_BYTES  4096
#define SINK_CHUNKS 256

/* What the deliver callback saw. */
typedef struct {
    uint8_t buf[SINK_BYTES]; /* delivered bytes by stream offset */
    uint8_t seen[SINK_BYTES];
    uint64_t expect; /* offset just past the last delivery */
    uint64_t total;
    int errors; /* offset went backwards, or jumped without REASM_F_GAP, or delivered twice */
    int n;
    uint64_t off[SINK_CHUNKS];
    uint32_t len[SINK_CHUNKS];
    unsigned flags[SINK_CHUNKS];
} sink;

static void on_data(void *arg, uint64_t off, const uint8_t *data, uint32_t len, unsigned flags)
{
    sink *k = arg;

    if (len == 0)
        k->errors++;
    if (flags & REASM_F_GAP) {
        if (off <= k->expect)
            k->errors++;
    } else if (off != k->expect) {
        k->errors++;
    }
    for (uint32_t i = 0; i < len; i++) {
        uint64_t o = off + i;

        if (o < SINK_BYTES) {
            if (k->seen[o])
                k->errors++;
            k->seen[o] = 1;
            k->buf[o] = data[i];
        }
    }
    if (k->n < SINK_CHUNKS) {
        k->off[k->n] = off;
        k->len[k->n] = len;
        k->flags[k->n] = flags;
    }
    k->n++;
    k->expect = off + len;
    k->total += len;
}

typedef struct {
    reasm_ctx c;
    reasm_dir d[2];
    sink k[2];
} fixture;

static reasm_config small_config(void)
{
    reasm_config cfg;

    reasm_config_defaults(&cfg);
    cfg.depth = 0;
    return cfg;
}

static int setup(void **state)
{
    fixture *f = test_calloc(1, sizeof(*f));
    reasm_config cfg = small_config();

    reasm_ctx_init(&f->c, &cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    reasm_release(&f->c, &f->d[0]);
    reasm_release(&f->c, &f->d[1]);
    /* Every test must leave no segment behind once its directions are released. */
    assert_int_equal(f->c.mem_used, 0);
    test_free(f);
    return 0;
}

static void reconfigure(fixture *f, const reasm_config *cfg)
{
    reasm_ctx_init(&f->c, cfg);
}

/* Feeds one segment to direction i of the fixture. */
static void seg(fixture *f, int i, uint32_t seq, const void *data, uint32_t len)
{
    reasm_segment(&f->c, &f->d[i], seq, data, len, on_data, &f->k[i]);
}

static void close_dir(fixture *f, int i)
{
    reasm_close(&f->c, &f->d[i], on_data, &f->k[i]);
}

/* A recognisable message: byte i is a function of i and a salt. */
static void fill(uint8_t *buf, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7 + salt * 13 + (i >> 8));
}

/* Deterministic PRNG (xorshift32) so every run sees the same shuffles. */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void test_in_order(void **state)
{
    fixture *f = *state;

    reasm_init_dir(&f->c, &f->d[0], 1000);
    seg(f, 0, 1001, "hello ", 6);
    seg(f, 0, 1007, "world", 5);
    assert_int_equal(f->k[0].n, 2);
    assert_int_equal(f->k[0].off[0], 0);
    assert_int_equal(f->k[0].len[0], 6);
    assert_int_equal(f->k[0].off[1], 6);
    assert_int_equal(f->k[0].flags[1], 0);
    assert_memory_equal(f->k[0].buf, "hello world", 11);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->d[0].next, 11);
    assert_int_equal(f->d[0].nsegs, 0);
    assert_int_equal(f->c.mem_peak, 0); /* in-order data is never copied */
    assert_int_equal(f->c.stats.delivered_bytes, 11);
    assert_int_equal(f->c.stats.segments, 2);
    assert_true(f->d[0].flags & REASM_DIR_SYN);
    assert_false(f->d[0].flags & REASM_DIR_MIDSTREAM);
    /* The other direction is independent and untouched. */
    assert_int_equal(f->k[1].n, 0);
    assert_int_equal(f->d[1].flags, 0);
}

static void test_syn_with_data_and_repeated_syn(void **state)
{
    fixture *f = *state;

    reasm_init_dir(&f->c, &f->d[0], 500);
    /* SYN carrying data: its payload starts at isn + 1. */
    seg(f, 0, 501, "GET", 3);
    reasm_init_dir(&f->c, &f->d[0], 500); /* retransmitted SYN: nothing changes */
    assert_int_equal(f->c.stats.syn_ignored, 0);
    reasm_init_dir(&f->c, &f->d[0], 9999); /* another ISN: ignored, counted */
    assert_int_equal(f->c.stats.syn_ignored, 1);
    seg(f, 0, 501, "GET", 3); /* the SYN's data again: a retransmission */
    seg(f, 0, 504, " /", 2);
    assert_int_equal(f->k[0].total, 5);
    assert_memory_equal(f->k[0].buf, "GET /", 5);
    assert_int_equal(f->c.stats.drops[REASM_DROP_OLD], 1);
    assert_int_equal(f->c.stats.retransmit_bytes, 3);
    /* A SYN after a mid-stream pickup cannot re-base the direction. */
    seg(f, 1, 7000, "x", 1);
    reasm_init_dir(&f->c, &f->d[1], 6000);
    assert_int_equal(f->c.stats.syn_ignored, 2);
    assert_int_equal(f->d[1].base, 7000);
}

static void test_out_of_order_simple(void **state)
{
    fixture *f = *state;

    reasm_init_dir(&f->c, &f->d[0], 0);
    seg(f, 0, 6, "world", 5);
    assert_int_equal(f->k[0].n, 0);
    assert_int_equal(f->d[0].nsegs, 1);
    assert_int_equal(f->d[0].mem, reasm_seg_mem(5));
    assert_int_equal(f->c.mem_used, reasm_seg_mem(5));
    seg(f, 0, 1, "hello", 5);
    assert_int_equal(f->k[0].n, 2);
    assert_int_equal(f->k[0].off[0], 0);
    assert_int_equal(f->k[0].len[0], 5);
    assert_int_equal(f->k[0].off[1], 5);
    assert_int_equal(f->k[0].len[1], 5);
    assert_memory_equal(f->k[0].buf, "helloworld", 10);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->d[0].nsegs, 0);
    assert_int_equal(f->d[0].mem, 0);
    assert_int_equal(f->c.mem_used, 0);
    assert_int_equal(f->c.mem_peak, reasm_seg_mem(5));
}

/* Splits [0, n) into k pieces at the given cut points and feeds them in order `perm`. */
static void run_split(uint32_t isn, const uint8_t *msg, uint32_t n, const uint32_t *cut, int k,
                      const int *perm)
{
    reasm_ctx c;
    reasm_dir d;
    reasm_config cfg = small_config();
    sink *s = test_calloc(1, sizeof(*s));

    reasm_ctx_init(&c, &cfg);
    memset(&d, 0, sizeof(d));
    reasm_init_dir(&c, &d, isn);
    for (int i = 0; i < k; i++) {
        int j = perm[i];
        uint32_t a = j ? cut[j - 1] : 0, b = j < k - 1 ? cut[j] : n;

        reasm_segment(&c, &d, isn + 1 + a, msg + a, b - a, on_data, s);
    }
    assert_int_equal(s->errors, 0);
    assert_int_equal(s->total, n);
    assert_memory_equal(s->buf, msg, n);
    assert_int_equal(d.next, n);
    assert_int_equal(d.nsegs, 0);
    assert_int_equal(c.mem_used, 0);
    assert_int_equal(c.stats.gaps, 0);
    for (int i = 0; i < REASM_DROP_COUNT; i++)
        assert_int_equal(c.stats.drops[i], 0);
    reasm_close(&c, &d, on_data, s);
    assert_int_equal(s->total, n);
    assert_int_equal(d.gaps, 0);
    test_free(s);
}

static bool next_perm(int *a, int n)
{
    int i = n - 2, j = n - 1;

    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return false;
    while (a[j] <= a[i])
        j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

static void test_all_permutations(void **state)
{
    uint8_t msg[97];
    /* Uneven pieces, including 1-byte ones; ISNs around 0 and the 2^32 wrap. */
    static const uint32_t cuts[] = {1, 13, 14, 40, 41, 77};
    static const uint32_t isns[] = {0, 12345, 0xffffffc0u, 0xffffffffu};
    long runs = 0;

    (void)state;
    fill(msg, sizeof(msg), 1);
    for (int k = 1; k <= 7; k++) {
        for (size_t is = 0; is < sizeof(isns) / sizeof(isns[0]); is++) {
            int perm[7];

            for (int i = 0; i < k; i++)
                perm[i] = i;
            do {
                run_split(isns[is], msg, sizeof(msg), cuts, k, perm);
                runs++;
            } while (next_perm(perm, k));
        }
    }
    assert_int_equal(runs, 4 * (1 + 2 + 6 + 24 + 120 + 720 + 5040));
}

/*
 * Larger splits in seeded random orders, with random retransmissions of
 * arbitrary ranges carrying *different* bytes: what is delivered must equal a
 * reference model in which each byte keeps the value of the first segment
 * (in arrival order) that covered it.
 */
static void test_random_shuffles_first_wins(void **state)
{
    enum { N = 3000, SEGS = 64 };
    uint8_t *msg = test_malloc(N), *ref = test_malloc(N), *have = test_malloc(N);
    uint8_t *noise = test_malloc(N);
    uint32_t seed = 0x5eed1234u;

    (void)state;
    for (int iter = 0; iter < 300; iter++) {
        uint32_t start[SEGS * 2], len[SEGS * 2];
        const uint8_t *src[SEGS * 2];
        int order[SEGS * 2], nseg = 0;
        uint32_t isn = rnd(&seed);
        reasm_ctx c;
        reasm_dir d;
        reasm_config cfg = small_config();
        sink *s = test_calloc(1, sizeof(*s));

        fill(msg, N, (unsigned)iter);
        for (int i = 0; i < N; i++)
            noise[i] = (uint8_t)rnd(&seed);
        /* A partition of [0, N) ... */
        for (uint32_t a = 0; a < N; nseg++) {
            uint32_t l = 1 + rnd(&seed) % (2 * N / SEGS);

            if (a + l > N || nseg == SEGS - 1)
                l = N - a;
            start[nseg] = a;
            len[nseg] = l;
            src[nseg] = msg;
            a += l;
        }
        /* ... plus as many random ranges, half with conflicting bytes. */
        for (int extra = nseg; nseg < 2 * extra; nseg++) {
            uint32_t a = rnd(&seed) % N, l = 1 + rnd(&seed) % 200;

            if (a + l > N)
                l = N - a;
            start[nseg] = a;
            len[nseg] = l;
            src[nseg] = (rnd(&seed) & 1) ? noise : msg;
        }
        for (int i = 0; i < nseg; i++)
            order[i] = i;
        for (int i = nseg - 1; i > 0; i--) {
            int j = (int)(rnd(&seed) % (uint32_t)(i + 1)), t = order[i];

            order[i] = order[j];
            order[j] = t;
        }

        memset(have, 0, N);
        reasm_ctx_init(&c, &cfg);
        memset(&d, 0, sizeof(d));
        reasm_init_dir(&c, &d, isn);
        for (int i = 0; i < nseg; i++) {
            int j = order[i];

            for (uint32_t b = start[j]; b < start[j] + len[j]; b++)
                if (!have[b]) {
                    have[b] = 1;
                    ref[b] = src[j][b];
                }
            reasm_segment(&c, &d, isn + 1 + start[j], src[j] + start[j], len[j], on_data, s);
            assert_true(c.mem_used <= cfg.dir_cap);
        }
        assert_int_equal(s->errors, 0);
        assert_int_equal(s->total, N);
        assert_memory_equal(s->buf, ref, N);
        assert_int_equal(c.mem_used, 0);
        assert_int_equal(c.stats.gaps, 0);
        assert_int_equal(c.stats.drops[REASM_DROP_DIR_CAP] + c.stats.drops[REASM_DROP_MEMCAP], 0);
        test_free(s);
    }
    test_free(msg);
    test_free(ref);
    test_free(have);
    test_free(noise);
}

static void test_retransmissions(void **state)
{
    fixture *f = *state;
    uint8_t msg[30];

    fill(msg, sizeof(msg), 2);
    reasm_init_dir(&f->c, &f->d[0], 100);
    seg(f, 0, 101, msg, 10);
    seg(f, 0, 101, msg, 10);         /* exact duplicate of delivered data */
    seg(f, 0, 121, msg + 20, 10);    /* out of order */
    seg(f, 0, 121, msg + 20, 10);    /* duplicate of buffered data */
    seg(f, 0, 106, msg + 5, 10);     /* half old, half new */
    seg(f, 0, 111 + 5, msg + 15, 5); /* in order now: fills the hole */
    seg(f, 0, 101, msg, 30);         /* everything again */
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->k[0].total, 30);
    assert_memory_equal(f->k[0].buf, msg, 30);
    assert_int_equal(f->c.stats.delivered_bytes, 30);
    assert_int_equal(f->c.stats.drops[REASM_DROP_OLD], 2);
    assert_int_equal(f->c.stats.drop_bytes[REASM_DROP_OLD], 40);
    assert_int_equal(f->c.stats.retransmit_bytes, 10 + 5 + 30);
    assert_int_equal(f->c.stats.overlap_bytes, 10);
    assert_int_equal(f->c.stats.overlap_conflict_bytes, 0);
    assert_int_equal(f->c.mem_used, 0);
}

static void test_overlap_policy_first_wins(void **state)
{
    fixture *f = *state;
    uint8_t x[12];

    memset(x, 'x', sizeof(x));
    reasm_init_dir(&f->c, &f->d[0], 0);
    seg(f, 0, 1, "aaaa", 4);    /* [0,4) delivered */
    seg(f, 0, 9, "cccc", 4);    /* [8,12) buffered */
    seg(f, 0, 3, x, sizeof(x)); /* [2,14): old bytes, new bytes, held bytes, new bytes */
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->k[0].total, 14);
    assert_memory_equal(f->k[0].buf, "aaaaxxxxccccxx", 14);
    assert_int_equal(f->k[0].n, 4);
    assert_int_equal(f->k[0].off[1], 4);
    assert_int_equal(f->k[0].len[1], 4);
    assert_int_equal(f->k[0].off[2], 8);
    assert_int_equal(f->k[0].len[2], 4);
    assert_int_equal(f->k[0].off[3], 12);
    assert_int_equal(f->k[0].len[3], 2);
    assert_int_equal(f->c.stats.retransmit_bytes, 2);
    assert_int_equal(f->c.stats.overlap_bytes, 4);
    assert_int_equal(f->c.stats.overlap_conflict_bytes, 4);

    /* Out of order on both sides of a hole: later copies never replace held bytes. */
    reasm_init_dir(&f->c, &f->d[1], 0);
    seg(f, 1, 11, "CCCCCCCCCC", 10); /* [10,20) */
    seg(f, 1, 6, "yyyyyyyyyy", 10);  /* [5,15): only [5,10) is new */
    seg(f, 1, 13, "ZZZZZZZZ", 8);    /* [12,20): all held */
    seg(f, 1, 4, "Q", 1);            /* [3,4) */
    assert_int_equal(f->k[1].n, 0);
    assert_int_equal(f->d[1].nsegs, 3);
    seg(f, 1, 1, "0123456789ABCDEFGHIJ", 20); /* [0,20): only [0,3) and [4,5) are new */
    assert_int_equal(f->k[1].errors, 0);
    assert_int_equal(f->k[1].total, 20);
    assert_memory_equal(f->k[1].buf, "012Q4yyyyyCCCCCCCCCC", 20);
    assert_int_equal(f->c.stats.overlap_bytes, 4 + 5 + 8 + 1 + 5 + 10);
    assert_int_equal(f->d[1].nsegs, 0);
}

static void test_wraparound(void **state)
{
    fixture *f = *state;
    uint8_t msg[64];
    uint32_t isn = 0xffffffffu - 20; /* offset 0 is 2^32 - 20; the wrap is at offset 20 */

    fill(msg, sizeof(msg), 3);
    reasm_init_dir(&f->c, &f->d[0], isn);
    seg(f, 0, isn + 1 + 30, msg + 30, 34); /* after the wrap, out of order */
    seg(f, 0, isn + 1 + 10, msg + 10, 20); /* spans 2^32 */
    assert_int_equal(f->k[0].n, 0);
    seg(f, 0, isn + 1, msg, 10);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->k[0].total, 64);
    assert_memory_equal(f->k[0].buf, msg, 64);
    assert_int_equal(f->d[0].next, 64);
    /* A retransmission from before the wrap is still recognised as old. */
    seg(f, 0, isn + 1, msg, 10);
    assert_int_equal(f->c.stats.drops[REASM_DROP_OLD], 1);

    /* Mid-stream pickup right at the wrap, and offsets past 2^32 of stream. */
    seg(f, 1, 0xfffffffeu, "ab", 2);
    seg(f, 1, 0, "cd", 2);
    assert_memory_equal(f->k[1].buf, "abcd", 4);
    assert_int_equal(f->k[1].errors, 0);
    f->d[1].next = (1ull << 32) + 4; /* as if 4 GiB had streamed past */
    f->k[1].expect = f->d[1].next;
    /* Offset 2^32 + 4 is sequence 0xfffffffe + 4 = 2 (mod 2^32). */
    seg(f, 1, 4, "ef", 2); /* offset 2^32 + 6, held */
    assert_int_equal(f->d[1].nsegs, 1);
    seg(f, 1, 2, "gh", 2);
    assert_int_equal(f->k[1].errors, 0);
    assert_int_equal(f->k[1].n, 4);
    assert_int_equal(f->k[1].off[2], (1ull << 32) + 4);
    assert_int_equal(f->k[1].off[3], (1ull << 32) + 6);
    assert_int_equal(f->d[1].next, (1ull << 32) + 8);
}

static void test_gap_at_close(void **state)
{
    fixture *f = *state;
    uint8_t msg[50];

    fill(msg, sizeof(msg), 4);
    reasm_init_dir(&f->c, &f->d[0], 0);
    seg(f, 0, 1, msg, 10);
    seg(f, 0, 41, msg + 40, 10);
    seg(f, 0, 21, msg + 20, 10);
    assert_int_equal(f->k[0].total, 10);
    close_dir(f, 0);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->k[0].n, 3);
    assert_int_equal(f->k[0].off[1], 20);
    assert_int_equal(f->k[0].flags[1], REASM_F_GAP);
    assert_int_equal(f->k[0].off[2], 40);
    assert_int_equal(f->k[0].flags[2], REASM_F_GAP);
    assert_memory_equal(f->k[0].buf + 20, msg + 20, 10);
    assert_memory_equal(f->k[0].buf + 40, msg + 40, 10);
    assert_false(f->k[0].seen[10] || f->k[0].seen[35]);
    assert_int_equal(f->d[0].gaps, 2);
    assert_int_equal(f->d[0].gap_bytes, 20);
    assert_int_equal(f->c.stats.gaps, 2);
    assert_int_equal(f->c.stats.gap_bytes, 20);
    assert_int_equal(f->c.mem_used, 0);
    assert_true(f->d[0].flags & REASM_DIR_CLOSED);
    /* The late hole data after close is dropped, not delivered. */
    seg(f, 0, 11, msg + 10, 10);
    assert_int_equal(f->c.stats.drops[REASM_DROP_CLOSED], 1);
    assert_int_equal(f->k[0].n, 3);
    close_dir(f, 0); /* twice is harmless */
    assert_int_equal(f->d[0].gaps, 2);

    /* Close without a callback releases and still counts the hole. */
    reasm_init_dir(&f->c, &f->d[1], 0);
    seg(f, 1, 5, "late", 4);
    reasm_close(&f->c, &f->d[1], NULL, NULL);
    assert_int_equal(f->k[1].n, 0);
    assert_int_equal(f->d[1].gaps, 1);
    assert_int_equal(f->d[1].gap_bytes, 4);
    assert_int_equal(f->c.mem_used, 0);
    /* A direction closed with nothing buffered has no gap. */
    close_dir(f, 1);
    assert_int_equal(f->c.stats.gaps, 3);
}

static void test_dir_cap_skips_first_hole(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();
    uint8_t msg[80];

    fill(msg, sizeof(msg), 5);
    cfg.dir_cap = (uint32_t)(2 * reasm_seg_mem(10)); /* two 10-byte segments */
    reconfigure(f, &cfg);
    reasm_init_dir(&f->c, &f->d[0], 0);
    seg(f, 0, 11, msg + 10, 10); /* hole [0,10) */
    seg(f, 0, 31, msg + 30, 10); /* hole [20,30) */
    assert_int_equal(f->d[0].mem, cfg.dir_cap);
    seg(f, 0, 51, msg + 50, 10); /* does not fit: [0,10) is given up */
    assert_int_equal(f->c.stats.dir_cap_skips, 1);
    assert_int_equal(f->d[0].gaps, 1);
    assert_int_equal(f->d[0].gap_bytes, 10);
    assert_int_equal(f->k[0].n, 1);
    assert_int_equal(f->k[0].off[0], 10);
    assert_int_equal(f->k[0].flags[0], REASM_F_GAP);
    assert_int_equal(f->d[0].nsegs, 2); /* [30,40) and [50,60) */
    assert_int_equal(f->c.stats.drops[REASM_DROP_DIR_CAP], 0);
    /* The lost segment turns up after all: too late, counted as old. */
    seg(f, 0, 1, msg, 10);
    assert_int_equal(f->c.stats.drops[REASM_DROP_OLD], 1);
    /* A segment inside the first hole skips only up to itself and is delivered. */
    seg(f, 0, 71, msg + 70, 10); /* skip [20,30), deliver [30,40); [50,60),[70,80) held */
    assert_int_equal(f->c.stats.dir_cap_skips, 2);
    seg(f, 0, 46, msg + 45, 2); /* [45,47): hole [40,45) given up, then [45,47) delivered */
    assert_int_equal(f->c.stats.dir_cap_skips, 3);
    assert_int_equal(f->d[0].next, 47);
    assert_true(f->k[0].seen[45] && !f->k[0].seen[44]);
    close_dir(f, 0);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->d[0].gaps, 5); /* [0,10) [20,30) [40,45) [47,50) [60,70) */
    assert_int_equal(f->d[0].gap_bytes, 10 + 10 + 5 + 3 + 10);
    assert_int_equal(f->k[0].total, 80 - 38);
    for (int i = 0; i < 80; i++)
        if (f->k[0].seen[i])
            assert_int_equal(f->k[0].buf[i], msg[i]);
}

static void test_dir_cap_drop_and_segment_limit(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();
    uint8_t big[200];

    fill(big, sizeof(big), 6);
    cfg.dir_cap = (uint32_t)reasm_seg_mem(100);
    cfg.dir_max_segs = 3;
    reconfigure(f, &cfg);
    reasm_init_dir(&f->c, &f->d[0], 0);
    /* Larger than the whole cap with nothing to give up: dropped. */
    seg(f, 0, 11, big, 101);
    assert_int_equal(f->c.stats.drops[REASM_DROP_DIR_CAP], 1);
    assert_int_equal(f->c.stats.drop_bytes[REASM_DROP_DIR_CAP], 101);
    assert_int_equal(f->d[0].nsegs, 0);
    assert_int_equal(f->c.stats.dir_cap_skips, 0);
    /* The same in order needs no buffer: delivered. */
    seg(f, 0, 1, big, 150);
    assert_int_equal(f->k[0].total, 150);
    /* 1-byte segments every other byte: the count limit bounds them. */
    for (uint32_t i = 0; i < 20; i++) {
        seg(f, 0, 1 + 152 + 2 * i, big + (2 * i) % 100, 1);
        assert_true(f->d[0].nsegs <= 3);
        assert_true(f->d[0].mem <= cfg.dir_cap);
    }
    assert_true(f->c.stats.dir_cap_skips > 0);
    close_dir(f, 0);
    assert_int_equal(f->k[0].errors, 0);
    assert_int_equal(f->k[0].total, 150 + 20);
    assert_int_equal(f->d[0].gaps, 20); /* every odd byte from 150 to 189 */
    assert_int_equal(f->d[0].gap_bytes, 2 + 19);
}

static void test_memcap(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();

    cfg.memcap = reasm_seg_mem(8) + reasm_seg_mem(4);
    reconfigure(f, &cfg);
    reasm_init_dir(&f->c, &f->d[0], 0);
    reasm_init_dir(&f->c, &f->d[1], 0);
    seg(f, 0, 5, "held", 4);
    seg(f, 1, 9, "12345678", 8);
    assert_int_equal(f->c.mem_used, cfg.memcap);
    /* Full: another flow's out-of-order data is dropped, not skipped. */
    seg(f, 1, 20, "zz", 2);
    seg(f, 0, 20, "zz", 2);
    assert_int_equal(f->c.stats.drops[REASM_DROP_MEMCAP], 2);
    assert_int_equal(f->c.stats.drop_bytes[REASM_DROP_MEMCAP], 4);
    assert_int_equal(f->c.stats.gaps, 0);
    assert_int_equal(f->c.stats.dir_cap_skips, 0);
    /* In-order data still flows, and its delivery frees memory for others. */
    seg(f, 0, 1, "abcd", 4);
    assert_memory_equal(f->k[0].buf, "abcdheld", 8);
    assert_int_equal(f->c.mem_used, reasm_seg_mem(8));
    seg(f, 0, 20, "zz", 2);
    assert_int_equal(f->c.mem_used, cfg.memcap - reasm_seg_mem(4) + reasm_seg_mem(2));
    assert_int_equal(f->c.mem_peak, cfg.memcap);
    assert_int_equal(f->k[0].errors + f->k[1].errors, 0);
}

static void depth_case(uint32_t depth, uint32_t sent, uint32_t expect_delivered,
                       bool expect_depth_flag)
{
    reasm_ctx c;
    reasm_dir d;
    reasm_config cfg = small_config();
    sink *s = test_calloc(1, sizeof(*s));
    uint8_t msg[64];

    fill(msg, sizeof(msg), 7);
    cfg.depth = depth;
    reasm_ctx_init(&c, &cfg);
    memset(&d, 0, sizeof(d));
    reasm_init_dir(&c, &d, 77);
    reasm_segment(&c, &d, 78, msg, sent, on_data, s);
    assert_int_equal(s->total, expect_delivered);
    assert_memory_equal(s->buf, msg, expect_delivered);
    assert_false(s->seen[expect_delivered]);
    assert_int_equal(!!(d.flags & REASM_DIR_DEPTH), expect_depth_flag);
    assert_int_equal(c.stats.after_depth_bytes, sent - expect_delivered);
    test_free(s);
}

static void test_depth_limit(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();
    uint8_t msg[64];

    depth_case(10, 9, 9, false);  /* below */
    depth_case(10, 10, 10, true); /* exactly at */
    depth_case(10, 11, 10, true); /* one beyond */
    depth_case(10, 64, 10, true); /* well beyond */

    /* Out of order: data at or past the depth is never buffered; a segment
     * straddling it is clipped; once reached, the direction only counts. */
    fill(msg, sizeof(msg), 8);
    cfg.depth = 20;
    reconfigure(f, &cfg);
    reasm_init_dir(&f->c, &f->d[0], 0);
    seg(f, 0, 1 + 25, msg + 25, 10);
    assert_int_equal(f->d[0].nsegs, 0);
    assert_int_equal(f->c.stats.after_depth_bytes, 10);
    seg(f, 0, 1 + 15, msg + 15, 10); /* [15,25): [15,20) buffered */
    assert_int_equal(f->d[0].mem, reasm_seg_mem(5));
    seg(f, 0, 1, msg, 15);
    assert_int_equal(f->k[0].total, 20);
    assert_memory_equal(f->k[0].buf, msg, 20);
    assert_true(f->d[0].flags & REASM_DIR_DEPTH);
    assert_int_equal(f->c.mem_used, 0);
    seg(f, 0, 1 + 20, msg + 20, 30);
    seg(f, 0, 1 + 200, msg, 30); /* past depth nothing is even checked for order */
    assert_int_equal(f->c.stats.after_depth_bytes, 10 + 5 + 30 + 30);
    assert_int_equal(f->c.mem_used, 0);
    assert_int_equal(f->k[0].total, 20);
    assert_int_equal(f->k[0].errors, 0);
}

static void test_midstream_pickup(void **state)
{
    fixture *f = *state;

    /* No SYN: the first data seen is offset 0. */
    seg(f, 0, 0x80000000u, "mid", 3);
    assert_true(f->d[0].flags & REASM_DIR_MIDSTREAM);
    assert_false(f->d[0].flags & REASM_DIR_SYN);
    assert_int_equal(f->c.stats.midstream, 1);
    assert_int_equal(f->k[0].off[0], 0);
    /* A segment starting before the pickup point: only the new bytes count. */
    seg(f, 0, 0x80000000u - 5, "-----midstream", 14);
    assert_int_equal(f->k[0].total, 9);
    assert_memory_equal(f->k[0].buf, "midstream", 9);
    assert_int_equal(f->c.stats.retransmit_bytes, 8);
    /* Explicit pickup is a no-op on a started direction. */
    reasm_init_midstream(&f->c, &f->d[0], 1);
    assert_int_equal(f->d[0].base, 0x80000000u);
    assert_int_equal(f->c.stats.midstream, 1);
    assert_int_equal(f->k[0].errors, 0);
    /* Zero-length segments do not start a direction. */
    seg(f, 1, 42, "", 0);
    assert_int_equal(f->d[1].flags, 0);
    assert_int_equal(f->c.stats.empty, 1);
}

static void test_hostile_values(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();
    static uint8_t junk[2000];

    cfg.max_window = 1000;
    reconfigure(f, &cfg);
    reasm_init_dir(&f->c, &f->d[0], 5000);
    seg(f, 0, 5001, NULL, 10); /* no data pointer */
    assert_int_equal(f->c.stats.drops[REASM_DROP_BAD_LEN], 1);
    seg(f, 0, 5001, junk, 1001); /* longer than the window */
    assert_int_equal(f->c.stats.drops[REASM_DROP_BAD_LEN], 2);
    reasm_segment(&f->c, &f->d[0], 5001, junk, UINT32_MAX, on_data, &f->k[0]);
    assert_int_equal(f->c.stats.drops[REASM_DROP_BAD_LEN], 3);
    seg(f, 0, 5001 + 1001, junk, 10); /* starts beyond the window */
    seg(f, 0, 5001 + 0x80000000u, junk, 10);
    seg(f, 0, 5001 + 0x7fffffffu, junk, 10);
    seg(f, 0, 5001 - 2000, junk, 10); /* ends far behind */
    assert_int_equal(f->c.stats.drops[REASM_DROP_OUT_OF_WINDOW], 4);
    assert_int_equal(f->c.stats.drop_bytes[REASM_DROP_OUT_OF_WINDOW], 40);
    seg(f, 0, 5000, "S", 1); /* the SYN's own sequence number: before offset 0 */
    assert_int_equal(f->c.stats.drops[REASM_DROP_OLD], 1);
    seg(f, 0, 5001 + 1000, "w", 1); /* exactly at the window edge: accepted */
    assert_int_equal(f->d[0].nsegs, 1);
    seg(f, 0, 5001, "", 0);
    assert_int_equal(f->c.stats.empty, 1);
    assert_int_equal(f->k[0].n, 0);
    assert_int_equal(f->d[0].next, 0);
    seg(f, 0, 4999, "xyz", 3); /* two bytes before offset 0, one new */
    assert_int_equal(f->k[0].total, 1);
    assert_int_equal(f->k[0].buf[0], 'z');
    /* Config values out of range are clamped, not trusted. */
    reasm_release(&f->c, &f->d[0]);
    assert_int_equal(f->c.mem_used, 0);
    cfg.max_window = 0xffffffffu;
    cfg.dir_max_segs = 1u << 20;
    reasm_ctx_init(&f->c, &cfg);
    assert_true(f->c.cfg.max_window <= 0x40000000u);
    assert_true(f->c.cfg.dir_max_segs <= UINT16_MAX);
    assert_string_equal(reasm_drop_name(REASM_DROP_MEMCAP), "reasm.memcap");
    assert_string_equal(reasm_drop_name(REASM_DROP_COUNT), "unknown");
}

/* Random hostile traffic on both directions with tight limits: invariants only. */
static void test_random_hostile(void **state)
{
    fixture *f = *state;
    reasm_config cfg = small_config();
    static uint8_t junk[70000];
    uint32_t seed = 0xbadc0deu;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)i;
    cfg.dir_cap = 3000;
    cfg.dir_max_segs = 16;
    cfg.memcap = 5000;
    cfg.depth = 100000;
    cfg.max_window = 20000;
    reconfigure(f, &cfg);
    for (int i = 0; i < 200000; i++) {
        int dir = (int)(rnd(&seed) & 1);
        uint32_t r = rnd(&seed), seq, len;
        uint64_t base = f->d[dir].base + f->d[dir].next;

        switch (r % 8) {
        case 0:
            seq = rnd(&seed); /* anywhere */
            break;
        case 1:
            seq = (uint32_t)base - rnd(&seed) % 3000;
            break;
        default:
            seq = (uint32_t)base + rnd(&seed) % 4000;
            break;
        }
        len = (r >> 8) % 16 == 0 ? rnd(&seed) % 70000 : rnd(&seed) % 600;
        reasm_segment(&f->c, &f->d[dir], seq, junk, len, on_data, &f->k[dir]);
        assert_true(f->c.mem_used <= cfg.memcap);
        assert_true(f->d[dir].mem <= cfg.dir_cap);
        assert_true(f->d[dir].nsegs <= cfg.dir_max_segs);
        assert_int_equal(f->c.mem_used, (size_t)f->d[0].mem + f->d[1].mem);
        if ((r >> 20) % 5000 == 0) {
            close_dir(f, dir);
            memset(&f->d[dir], 0, sizeof(f->d[dir]));
            memset(&f->k[dir], 0, sizeof(f->k[dir]));
        }
    }
    assert_int_equal(f->k[0].errors + f->k[1].errors, 0);
    assert_true(f->c.stats.delivered_bytes > 0);
    assert_true(f->c.stats.gaps > 0);
}

static void test_sizes(void **state)
{
    (void)state;
    /* The idle per-direction cost documented in reassembly.h. */
    if (sizeof(void *) == 8)
        assert_int_equal(sizeof(reasm_dir), 48);
    assert_true(reasm_seg_mem(0) <= 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syn_with_data_and_repeated_syn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_simple, setup, teardown),
        cmocka_unit_test(test_all_permutations),
        cmocka_unit_test(test_random_shuffles_first_wins),
        cmocka_unit_test_setup_teardown(test_retransmissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_policy_first_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_at_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_cap_skips_first_hole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_cap_drop_and_segment_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_midstream_pickup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_hostile, setup, teardown),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests_name("reassembly", tests, NULL, NULL);
}
