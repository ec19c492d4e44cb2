/*
 * test_ring.c - the capture-to-worker ring: records come out whole and in
 * order, across the wrap point, when the producer must wait for room and
 * when the consumer sleeps; sizes past the limit are refused.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../sensor/ring.h"

/* Record i: its index, then bytes derived from it; its length varies with i. */
static uint32_t rec_len(uint32_t i, uint32_t max)
{
    uint32_t x = i * 2654435761u;

    return 8 + (x >> 7) % (max - 8);
}

static void fill(uint8_t *p, uint32_t i, uint32_t len)
{
    memcpy(p, &i, 4);
    memcpy(p + 4, &len, 4);
    for (uint32_t k = 8; k < len; k++)
        p[k] = (uint8_t)(i * 31 + k);
}

static bool check(const uint8_t *p, uint32_t len, uint32_t want_i)
{
    uint32_t i, l;

    memcpy(&i, p, 4);
    memcpy(&l, p + 4, 4);
    if (i != want_i || l != len)
        return false;
    for (uint32_t k = 8; k < len; k++)
        if (p[k] != (uint8_t)(i * 31 + k))
            return false;
    return true;
}

static void test_single_thread_wrap(void **state)
{
    fh_ring r;
    uint32_t len;

    (void)state;
    assert_int_equal(ring_init(&r, 1000), 0); /* rounded up to 64 KiB */
    assert_int_equal(r.size, 65536);
    assert_null(ring_peek(&r, &len));
    /* Many times around the buffer, a few records in flight at a time. */
    for (uint32_t i = 0; i < 20000; i += 3) {
        for (uint32_t k = 0; k < 3; k++) {
            uint32_t n = rec_len(i + k, 4000);
            uint8_t *p = ring_reserve(&r, n);

            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 8, 0); /* records hold 8-byte aligned structs */
            fill(p, i + k, n);
            ring_commit(&r);
        }
        for (uint32_t k = 0; k < 3; k++) {
            uint8_t *p = ring_peek(&r, &len);

            assert_non_null(p);
            assert_int_equal(len, rec_len(i + k, 4000));
            assert_true(check(p, len, i + k));
            ring_release(&r);
        }
        assert_null(ring_peek(&r, &len));
    }
    ring_free(&r);
}

static void test_too_large(void **state)
{
    fh_ring r;

    (void)state;
    assert_int_equal(ring_init(&r, 65536), 0);
    assert_null(ring_reserve(&r, (uint32_t)ring_max_record(&r) + 1));
    assert_non_null(ring_reserve(&r, (uint32_t)ring_max_record(&r)));
    ring_commit(&r);
    ring_free(&r);
}

typedef struct {
    fh_ring *r;
    uint32_t n, max;
    bool ok;
    uint32_t got;
} consumer_arg;

static void *consumer(void *arg)
{
    consumer_arg *c = arg;
    uint32_t len;

    c->ok = true;
    while (c->got < c->n) {
        uint8_t *p = ring_peek(c->r, &len);

        if (!p) {
            ring_wait(c->r, 50);
            continue;
        }
        if (len != rec_len(c->got, c->max) || !check(p, len, c->got))
            c->ok = false;
        ring_release(c->r);
        c->got++;
    }
    return NULL;
}

/*
 * Producer and consumer on two threads, a small ring so the producer waits
 * for room all the time, and pauses so the consumer goes to sleep and must be
 * woken (ring_kick) rather than find records by polling.
 */
static void test_two_threads(void **state)
{
    fh_ring r;
    pthread_t t;
    consumer_arg c = {&r, 200000, 3000, false, 0};

    (void)state;
    assert_int_equal(ring_init(&r, 65536), 0);
    assert_int_equal(pthread_create(&t, NULL, consumer, &c), 0);
    for (uint32_t i = 0; i < c.n; i++) {
        uint32_t n = rec_len(i, c.max);
        uint8_t *p = ring_reserve(&r, n);

        assert_non_null(p);
        fill(p, i, n);
        ring_commit(&r);
        if (i % 50000 == 49999) {
            struct timespec d = {0, 30 * 1000000L}; /* the consumer falls asleep */

            ring_kick(&r);
            nanosleep(&d, NULL);
        }
    }
    ring_kick(&r);
    pthread_join(t, NULL);
    assert_true(c.ok);
    assert_int_equal(c.got, c.n);
    assert_true(r.full_waits > 0); /* the small ring did fill */
    assert_true(r.sleeps > 0);     /* and the consumer did sleep */
    ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_wrap),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_two_threads),
    };

    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
