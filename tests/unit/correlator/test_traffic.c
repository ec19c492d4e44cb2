/*
 * test_traffic.c - the traffic sums of a batch (correlator/traffic.c) on SQLite:
 * repeated keys summed, absent values as "unknown" / "", long values cut, more
 * distinct keys than TRAFFIC_ROWS_MAX written out part way and still summed once,
 * a rolled-back batch forgotten; sensor_status keeping the previous stats event's
 * packets only when the counters went on, and ignoring an older event, and the time
 * it was received from the store's (injected) clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../../correlator/store.h"
#include "../../../correlator/traffic.h"

typedef struct {
    char path[256];
    store *st;
    traffic_agg *t;
} fx;

/* the store's injected clock: when sensor_status says a stats event was received */
static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return 1772416800000LL; /* 2026-03-02T02:00:00Z */
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    store_opts so = {0};
    char err[512];
    static int n;

    snprintf(f->path, sizeof(f->path), "/tmp/fh-test-traffic-%d-%d.db", (int)getpid(), n++);
    unlink(f->path);
    so.path = f->path;
    so.now = fixed_now;
    if (store_open(&f->st, &so, err, sizeof(err)) != FH_OK || !(f->t = traffic_new())) {
        print_error("%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[300];

    traffic_free(f->t);
    store_close(f->st);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

/* One row of a query as "a|b|c" (NULL as "-"); "" when there is none. */
static void query(const fx *f, const char *sql, char *out, size_t len)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    size_t n = 0;

    out[0] = '\0';
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(s); i++) {
            const unsigned char *v = sqlite3_column_text(s, i);

            n +=
                (size_t)snprintf(out + n, len - n, "%s%s", i ? "|" : "", v ? (const char *)v : "-");
        }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void add(fx *f, int64_t hour, const char *seg, const char *app, const char *cat,
                const char *cc, uint64_t pkts, uint64_t bytes)
{
    traffic_flow fl = {hour, seg, app, cat, cc, pkts, bytes};

    assert_int_equal(traffic_add(f->t, &fl, f->st), FH_OK);
}

static void test_sums(void **state)
{
    fx *f = *state;
    char got[512], longer[200];

    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(store_begin(f->st), FH_OK);
    add(f, 10, "core", "http", "Web", "CN", 10, 1000);
    add(f, 10, "core", "http", "Web", "CN", 5, 500);
    add(f, 10, "core", NULL, NULL, NULL, 1, 60);
    add(f, 10, "core", "", "", "", 2, 120);
    add(f, 11, "core", "http", "Web", "CN", 1, 1);
    add(f, 11, longer, "dns", "Network", "US", 3, 300);
    assert_int_equal(traffic_rows(f->t), 4);
    assert_int_equal(traffic_flush(f->t, f->st), FH_OK);
    assert_int_equal(traffic_rows(f->t), 0);
    assert_int_equal(store_commit(f->st), FH_OK);
    query(f,
          "SELECT flows, packets, bytes FROM traffic_hourly WHERE hour = 10 AND app_proto = "
          "'http'",
          got, sizeof(got));
    assert_string_equal(got, "2|15|1500");
    query(f,
          "SELECT flows, packets, bytes, category, country FROM traffic_hourly WHERE hour = 10 "
          "AND app_proto = 'unknown'",
          got, sizeof(got));
    assert_string_equal(got, "2|3|180||");
    query(f, "SELECT length(segment) FROM traffic_hourly WHERE app_proto = 'dns'", got,
          sizeof(got));
    assert_string_equal(got, "64");

    /* a second batch adds to the same rows */
    assert_int_equal(store_begin(f->st), FH_OK);
    add(f, 10, "core", "http", "Web", "CN", 1, 10);
    assert_int_equal(traffic_flush(f->t, f->st), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
    query(f, "SELECT flows, bytes FROM traffic_hourly WHERE hour = 10 AND app_proto = 'http'", got,
          sizeof(got));
    assert_string_equal(got, "3|1510");
}

static void test_many_keys(void **state)
{
    fx *f = *state;
    const int n = TRAFFIC_ROWS_MAX + 1000;
    char got[128], cc[16], want[64];

    assert_int_equal(store_begin(f->st), FH_OK);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < n; i++) {
            snprintf(cc, sizeof(cc), "c%d", i);
            add(f, i % 7, "seg", "tls", "Web", cc, 1, (uint64_t)i);
        }
    assert_int_equal(traffic_flush(f->t, f->st), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
    query(f, "SELECT COUNT(*), SUM(flows), SUM(bytes), MAX(flows) FROM traffic_hourly", got,
          sizeof(got));
    snprintf(want, sizeof(want), "%d|%d|%lld|2", n, 2 * n, (long long)n * (n - 1));
    assert_string_equal(got, want);
}

static void test_rollback_forgets(void **state)
{
    fx *f = *state;
    char got[64];

    assert_int_equal(store_begin(f->st), FH_OK);
    add(f, 1, "s", "ssh", "RemoteAccess", "", 1, 1);
    store_rollback(f->st);
    traffic_clear(f->t);
    assert_int_equal(traffic_rows(f->t), 0);
    assert_int_equal(store_begin(f->st), FH_OK);
    add(f, 1, "s", "dns", "Network", "", 1, 1);
    assert_int_equal(traffic_flush(f->t, f->st), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
    query(f, "SELECT group_concat(app_proto) FROM traffic_hourly", got, sizeof(got));
    assert_string_equal(got, "dns");
}

static void status(fx *f, int64_t ts, int64_t packets, int64_t failed)
{
    sensor_status s = {"s1", "core", ts, packets, -1, -1, -1, failed, -1, -1, -1};

    assert_int_equal(store_begin(f->st), FH_OK);
    assert_int_equal(store_sensor_status(f->st, &s), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
}

static void test_sensor_status(void **state)
{
    fx *f = *state;
    const char *q = "SELECT ts, packets, prev_ts, prev_packets, kafka_failed, kernel_drops FROM "
                    "sensor_status WHERE sensor = 's1'";
    char got[256];

    status(f, 1000, 100, -1);
    query(f, q, got, sizeof(got));
    assert_string_equal(got, "1000|100|-|-|-|-");
    query(f, "SELECT received_at FROM sensor_status", got, sizeof(got));
    assert_string_equal(got, "1772416800000");
    status(f, 61000, 700, 2);
    query(f, q, got, sizeof(got));
    assert_string_equal(got, "61000|700|1000|100|2|-");
    /* an older stats event (late) changes nothing */
    status(f, 31000, 400, 1);
    query(f, q, got, sizeof(got));
    assert_string_equal(got, "61000|700|1000|100|2|-");
    /* the sensor restarted: its counters went back, no rate from the two */
    status(f, 121000, 50, 0);
    query(f, q, got, sizeof(got));
    assert_string_equal(got, "121000|50|-|-|0|-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_status, setup, teardown),
    };

    return cmocka_run_group_tests_name("traffic", tests, NULL, NULL);
}
