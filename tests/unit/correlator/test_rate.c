/*
 * test_rate.c - the timely rectification rate (correlator/rate.c) on a
 * hand-made history with a fixed "now", against a table computed by hand:
 * on time, late (after the deadline, reopened, open past it), pending,
 * excluded (false positive, duplicate), accepted risk under each policy, the
 * period's bounds (a deadline at `from` counts, at `to` does not), the
 * department an assignment moves an incident to, clause breakdown (an
 * incident under two clauses counts under both), MTTA and MTTR, the overdue
 * list in order, the monthly trend and the projection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../correlator/rate.h"

#define H (3600 * 1000LL)

static int64_t cst(int y, int m, int d, int hh)
{
    return (cal_days((cal_date){y, m, d}) * 24 + hh - 8) * H;
}

static char *clauses_a1[] = {"8.1.3.3 a", "8.1.4.1 c"};
static char *clauses_a2[] = {"8.1.3.3 a"};

/* The history (now = 2026-03-20 12:00; period 2026-03-01 .. 2026-04-30). */
static incident INC[] = {
    {.id = "A1",
     .owner_department = "大数据局",
     .status = INC_CLOSED,
     .first_seen = 0 /* set below */,
     .deadline_at = 0,
     .clauses = clauses_a1,
     .nclauses = 2},
    {.id = "A2",
     .owner_department = "大数据局",
     .status = INC_RECTIFIED,
     .clauses = clauses_a2,
     .nclauses = 1},
    {.id = "A3", .owner_department = "大数据局", .status = INC_REOPENED, .reopen_count = 1},
    {.id = "A4",
     .owner_department = "市财政局",
     .assigned_department = "大数据局",
     .status = INC_RECTIFYING},
    {.id = "B1", .owner_department = "市财政局", .status = INC_NEW},
    {.id = "B2", .owner_department = "市财政局", .status = INC_FALSE_POSITIVE},
    {.id = "B3", .owner_department = "市财政局", .status = INC_DUPLICATE},
    {.id = "B4", .owner_department = "市财政局", .status = INC_ACCEPTED_RISK},
    {.id = "C1", .status = INC_CLOSED},
    {.id = "C2", .status = INC_CLOSED},
    {.id = "D1", .owner_department = "市财政局", .status = INC_NEW},
    {.id = "E1", .owner_department = "市财政局", .status = INC_NEW}, /* deadline at `to` */
};
#define N (sizeof(INC) / sizeof(INC[0]))

static int setup(void **state)
{
    (void)state;
    /* A1: seen 03-03 08:00, acknowledged +2 h, rectified +20 h, deadline 03-05 24:00 */
    INC[0].first_seen = cst(2026, 3, 3, 8);
    INC[0].acknowledged_at = INC[0].first_seen + 2 * H;
    INC[0].rectified_at = INC[0].first_seen + 20 * H;
    INC[0].closed_at = INC[0].rectified_at + 24 * H;
    INC[0].deadline_at = cst(2026, 3, 6, 0);
    /* A2: seen 03-03 08:00, acknowledged +4 h, rectified 03-06 10:00 (late) */
    INC[1].first_seen = cst(2026, 3, 3, 8);
    INC[1].acknowledged_at = INC[1].first_seen + 4 * H;
    INC[1].rectified_at = cst(2026, 3, 6, 10);
    INC[1].deadline_at = cst(2026, 3, 6, 0);
    /* A3: rectified 03-08 (before its deadline) and then reopened: late */
    INC[2].first_seen = cst(2026, 3, 5, 8);
    INC[2].rectified_at = cst(2026, 3, 8, 8);
    INC[2].deadline_at = cst(2026, 3, 11, 0);
    INC[3].first_seen = cst(2026, 3, 18, 8);
    INC[3].deadline_at = cst(2026, 3, 26, 0); /* pending */
    INC[4].first_seen = cst(2026, 3, 10, 8);
    INC[4].deadline_at = cst(2026, 3, 16, 0); /* open past it */
    INC[5].first_seen = INC[6].first_seen = INC[7].first_seen = cst(2026, 3, 10, 8);
    INC[5].deadline_at = INC[6].deadline_at = cst(2026, 3, 16, 0);
    INC[7].deadline_at = cst(2026, 3, 13, 0);
    /* C1: deadline 03-31 24:00 = 04-01 00:00 (April), rectified 03-19 */
    INC[8].first_seen = cst(2026, 3, 17, 8);
    INC[8].rectified_at = cst(2026, 3, 19, 8);
    INC[8].closed_at = cst(2026, 3, 20, 9);
    INC[8].deadline_at = cst(2026, 4, 1, 0);
    /* C2: deadline exactly at `from`, rectified before it */
    INC[9].first_seen = cst(2026, 2, 27, 8);
    INC[9].rectified_at = cst(2026, 2, 28, 8);
    INC[9].closed_at = cst(2026, 3, 1, 0);
    INC[9].deadline_at = cst(2026, 3, 1, 0);
    INC[10].first_seen = cst(2026, 3, 30, 8);
    INC[10].deadline_at = cst(2026, 4, 6, 0); /* pending, April */
    INC[11].first_seen = cst(2026, 4, 25, 8);
    INC[11].deadline_at = cst(2026, 5, 1, 0); /* == to: not in the period */
    return 0;
}

#define NOW  cst(2026, 3, 20, 12)
#define FROM cst(2026, 3, 1, 0)
#define TO   cst(2026, 5, 1, 0)

/* The ids of a set, space-separated. */
static const char *ids(const rate_report *r, const rate_set *s)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    size_t off = 0;

    b[0] = '\0';
    for (uint32_t i = 0; i < s->n; i++)
        off += (size_t)snprintf(b + off, 256 - off, "%s%s", i ? " " : "", r->inc[s->v[i]].id);
    return b;
}

static const rate_row *row(const rate_report *r, const char *key)
{
    for (size_t k = 0; k < r->nrows; k++)
        if (!strcmp(r->rows[k].key, key))
            return &r->rows[k];
    fail_msg("no row %s", key);
    return NULL;
}

static void check_row(const rate_report *r, const char *key, const char *on_time, const char *late,
                      const char *pending, const char *accepted, const char *excluded,
                      const char *overdue, double want)
{
    const rate_row *w = key ? row(r, key) : &r->total;
    double v;

    assert_string_equal(ids(r, &w->of[RATE_ON_TIME]), on_time);
    assert_string_equal(ids(r, &w->of[RATE_LATE]), late);
    assert_string_equal(ids(r, &w->of[RATE_PENDING]), pending);
    assert_string_equal(ids(r, &w->of[RATE_ACCEPTED]), accepted);
    assert_string_equal(ids(r, &w->of[RATE_EXCLUDED]), excluded);
    assert_string_equal(ids(r, &w->overdue), overdue);
    if (want < 0) {
        assert_false(rate_value(w, &v));
    } else {
        assert_true(rate_value(w, &v));
        assert_float_equal(v, want, 1e-9);
    }
}

static void test_by_department(void **state)
{
    rate_report r;

    (void)state;
    assert_int_equal(rate_compute(&r, INC, N, FROM, TO, NOW, BY_DEPARTMENT, ACCEPTED_EXCLUDED),
                     FH_OK);
    assert_int_equal(r.nrows, 3);
    /* rows sorted by key: "(none)" < 大数据局 < 市财政局 (UTF-8 byte order) */
    assert_string_equal(r.rows[0].key, "(none)");
    check_row(&r, "(none)", "C1 C2", "", "", "", "", "", 1.0);
    check_row(&r, "大数据局", "A1", "A2 A3", "A4", "", "", "A3", 1.0 / 3);
    check_row(&r, "市财政局", "", "B1", "D1", "B4", "B2 B3", "B1", 0.0);
    check_row(&r, NULL, "A1 C1 C2", "A2 A3 B1", "A4 D1", "B4", "B2 B3", "A3 B1", 0.5);
    assert_int_equal(r.outcome[11], RATE_OUTCOMES); /* E1: deadline == to */
    assert_string_equal(r.why[2], "reopened after rectification");
    assert_string_equal(r.why[1], "rectified after the deadline");
    assert_string_equal(r.why[4], "open past the deadline");
    /* MTTA over A1 (2 h) and A2 (4 h); MTTR over A1 (20 h), A2 (74 h), A3 (72 h), C1 (48 h),
     * C2 (24 h) */
    assert_int_equal(r.mtta_ms, 3 * H);
    assert_string_equal(ids(&r, &r.mtta), "A1 A2");
    assert_int_equal(r.mttr_ms, (20 + 74 + 72 + 48 + 24) * H / 5);
    assert_string_equal(ids(&r, &r.mttr), "A1 A2 A3 C1 C2");
    /* most overdue first */
    assert_string_equal(ids(&r, &r.overdue), "A3 B1");
    /* trend: March and April */
    assert_int_equal(r.nmonths, 2);
    assert_int_equal(r.months[0].month, 3);
    assert_string_equal(ids(&r, &r.months[0].row.of[RATE_ON_TIME]), "A1 C2");
    assert_string_equal(ids(&r, &r.months[0].row.of[RATE_LATE]), "A2 A3 B1");
    assert_string_equal(ids(&r, &r.months[1].row.of[RATE_ON_TIME]), "C1");
    assert_string_equal(ids(&r, &r.months[1].row.of[RATE_PENDING]), "D1");
    /* projection: 3 on time, 3 late, 2 pending */
    assert_true(r.projection_defined);
    assert_float_equal(r.projection_best, 5.0 / 8, 1e-9);
    assert_float_equal(r.projection_pace, (3 + 2 * 0.5) / 8, 1e-9);
    rate_report_free(&r);
}

static void test_accepted_risk_policy(void **state)
{
    rate_report r;

    (void)state;
    assert_int_equal(rate_compute(&r, INC, N, FROM, TO, NOW, BY_DEPARTMENT, ACCEPTED_ON_TIME),
                     FH_OK);
    check_row(&r, "市财政局", "B4", "B1", "D1", "B4", "B2 B3", "B1", 0.5);
    check_row(&r, NULL, "A1 B4 C1 C2", "A2 A3 B1", "A4 D1", "B4", "B2 B3", "A3 B1", 4.0 / 7);
    rate_report_free(&r);
    assert_int_equal(rate_compute(&r, INC, N, FROM, TO, NOW, BY_DEPARTMENT, ACCEPTED_LATE), FH_OK);
    check_row(&r, "市财政局", "", "B1 B4", "D1", "B4", "B2 B3", "B1", 0.0);
    rate_report_free(&r);
}

static void test_by_clause_and_now(void **state)
{
    rate_report r;

    (void)state;
    assert_int_equal(rate_compute(&r, INC, N, FROM, TO, NOW, BY_CLAUSE, ACCEPTED_EXCLUDED), FH_OK);
    check_row(&r, "8.1.3.3 a", "A1", "A2", "", "", "", "", 0.5);
    check_row(&r, "8.1.4.1 c", "A1", "", "", "", "", "", 1.0);
    check_row(&r, "(none)", "C1 C2", "A3 B1", "A4 D1", "B4", "B2 B3", "A3 B1", 0.5);
    rate_report_free(&r);
    /* as of 03-10 noon: B1 (deadline 03-16) and A3 (03-11; reopened) differ */
    assert_int_equal(
        rate_compute(&r, INC, N, FROM, TO, cst(2026, 3, 10, 12), BY_DEPARTMENT, ACCEPTED_EXCLUDED),
        FH_OK);
    check_row(&r, "市财政局", "", "", "B1 D1", "B4", "B2 B3", "", -1);
    check_row(&r, "大数据局", "A1", "A2 A3", "A4", "", "", "A3", 1.0 / 3);
    rate_report_free(&r);
    /* a period with nothing decided: the rate is undefined, not 0 or 100 */
    assert_int_equal(
        rate_compute(&r, INC, N, cst(2026, 4, 2, 0), TO, NOW, BY_SEVERITY, ACCEPTED_EXCLUDED),
        FH_OK);
    check_row(&r, NULL, "", "", "D1", "", "", "", -1);
    rate_report_free(&r);
    assert_int_equal(rate_compute(&r, INC, N, TO, FROM, NOW, BY_SEVERITY, ACCEPTED_EXCLUDED),
                     FH_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_department),
        cmocka_unit_test(test_accepted_risk_policy),
        cmocka_unit_test(test_by_clause_and_now),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
