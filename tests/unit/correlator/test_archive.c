/*
 * test_archive.c - the event archive (correlator/archive.c): events written in
 * batches come back in order with their event time; a time range skips segments by
 * their index and filters events; segments roll at their size; the size bound and
 * the age bound (event time) evict the oldest segments and count them; a frame cut
 * short (a crash mid-write) loses only that frame; a reopened archive continues
 * in a new segment after the old ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../correlator/archive.h"

#define DAY (24 * 3600 * 1000LL)

typedef struct {
    int n;
    int64_t ts[4096];
    int id[4096];
} seen;

static bool collect(void *ctx, const char *json, size_t len, int64_t ts)
{
    seen *s = ctx;
    int id;

    assert_true(len > 0 && json[0] == '{' && json[len - 1] == '}');
    assert_int_equal(sscanf(json, "{\"n\":%d", &id), 1);
    s->ts[s->n] = ts;
    s->id[s->n++] = id;
    return s->n < 4096;
}

static char root[64];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/fh-archive-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd);
}

static void add(archive *a, int n, int64_t ts)
{
    char ev[128];
    int len = snprintf(ev, sizeof(ev), "{\"n\":%d,\"pad\":\"%060d\"}", n, n);

    assert_int_equal(archive_add(a, ev, (size_t)len, ts), FH_OK);
}

static void test_roundtrip_range_and_roll(void **state)
{
    archive_opts o = {.dir = root, .segment_bytes = 4096};
    archive *a;
    archive_stats st;
    char err[256];
    seen s = {0};
    uint64_t scanned = 0;

    (void)state;
    assert_int_equal(archive_open(&a, &o, "c1", err, sizeof(err)), FH_OK);
    /* 300 events of ~80 bytes, a batch of 10 at a time: several segments */
    for (int i = 0; i < 300; i++) {
        add(a, i, 1000000 + i * 1000LL);
        if (i % 10 == 9)
            assert_int_equal(archive_flush(a), FH_OK);
    }
    archive_get_stats(a, &st);
    assert_int_equal(st.events, 300);
    assert_true(st.segments >= 5);
    assert_int_equal(st.evicted_segments, 0);
    assert_int_equal(archive_scan(root, 0, 0, collect, &s, &scanned, err, sizeof(err)), FH_OK);
    assert_int_equal(s.n, 300);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(s.id[i], i);
        assert_int_equal(s.ts[i], 1000000 + i * 1000LL);
    }
    /* a range: only its events, and segments outside it are not read */
    memset(&s, 0, sizeof(s));
    assert_int_equal(archive_scan(root, 1000000 + 100000, 1000000 + 119000, collect, &s, &scanned,
                                  err, sizeof(err)),
                     FH_OK);
    assert_int_equal(s.n, 20);
    assert_int_equal(s.id[0], 100);
    assert_int_equal(s.id[19], 119);
    assert_true(scanned < 300);
    archive_close(a);
    /* reopened: a new segment after the others; everything still there */
    assert_int_equal(archive_open(&a, &o, "c1", err, sizeof(err)), FH_OK);
    add(a, 300, 1000000 + 300000);
    assert_int_equal(archive_flush(a), FH_OK);
    memset(&s, 0, sizeof(s));
    assert_int_equal(archive_scan(root, 0, 0, collect, &s, NULL, err, sizeof(err)), FH_OK);
    assert_int_equal(s.n, 301);
    assert_int_equal(s.id[300], 300);
    archive_close(a);
}

static void test_bounds_evict_and_count(void **state)
{
    archive_opts o = {.dir = root, .segment_bytes = 2048, .max_bytes = 4096};
    archive *a;
    archive_stats st;
    char err[256], agedir[128];
    seen s = {0};

    (void)state;
    assert_int_equal(archive_open(&a, &o, "c2", err, sizeof(err)), FH_OK);
    for (int i = 0; i < 400; i++) {
        add(a, i, 5000000 + i);
        if (i % 5 == 4)
            assert_int_equal(archive_flush(a), FH_OK);
    }
    archive_get_stats(a, &st);
    assert_true(st.evicted_segments > 0);
    assert_true(st.disk_bytes <= 4096 + 2048);
    assert_int_equal(archive_scan(root, 5000000, 6000000, collect, &s, NULL, err, sizeof(err)),
                     FH_OK);
    /* what is left is the newest, in order, and what went was counted */
    assert_int_equal((uint64_t)s.n + st.evicted_events, 400);
    assert_int_equal(s.id[s.n - 1], 399);
    for (int i = 1; i < s.n; i++)
        assert_int_equal(s.id[i], s.id[i - 1] + 1);
    archive_close(a);

    /* age: event time, not the clock */
    /* one event per segment; at the last roll the newest event is day 19: segments whose
     * newest event is before day 9 go */
    snprintf(agedir, sizeof(agedir), "%s/age", root);
    o = (archive_opts){.dir = agedir, .segment_bytes = 64, .max_age_ms = 10 * DAY};
    assert_int_equal(archive_open(&a, &o, "c3", err, sizeof(err)), FH_OK);
    for (int i = 0; i < 20; i++) {
        add(a, i, 1000 + i * DAY);
        assert_int_equal(archive_flush(a), FH_OK);
    }
    archive_get_stats(a, &st);
    assert_int_equal(st.evicted_events, 9);
    memset(&s, 0, sizeof(s));
    assert_int_equal(archive_scan(agedir, 1, 1000 + 100 * DAY, collect, &s, NULL, err, sizeof(err)),
                     FH_OK);
    assert_int_equal(s.n, 11);
    assert_int_equal(s.id[0], 9);
    assert_int_equal(s.id[s.n - 1], 19);
    archive_close(a);
}

static void test_torn_frame(void **state)
{
    archive_opts o = {.dir = root};
    archive *a;
    char err[256], path[256];
    seen s = {0};
    struct stat sb;

    (void)state;
    assert_int_equal(archive_open(&a, &o, "c4", err, sizeof(err)), FH_OK);
    for (int i = 0; i < 10; i++)
        add(a, i, 7000 + i);
    assert_int_equal(archive_flush(a), FH_OK);
    for (int i = 10; i < 20; i++)
        add(a, i, 7000 + i);
    assert_int_equal(archive_flush(a), FH_OK);
    archive_close(a);
    /* cut the second frame short */
    snprintf(path, sizeof(path), "%s/c4/%016d.ndjson.zst", root, 1);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 5), 0);
    assert_int_equal(archive_scan(root, 7000, 8000, collect, &s, NULL, err, sizeof(err)), FH_OK);
    assert_true(s.n >= 10 && s.n < 20);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.id[i], i);
    /* an instance name that is not a folder name is refused */
    assert_int_equal(archive_open(&a, &o, "../x", err, sizeof(err)), FH_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_range_and_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_evict_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_frame, setup, teardown),
    };
    return cmocka_run_group_tests_name("archive", tests, NULL, NULL);
}
