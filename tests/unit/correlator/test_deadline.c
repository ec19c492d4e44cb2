/*
 * test_deadline.c - rectification deadlines (correlator/deadline.c) with the
 * shipped policy (rules/rectification.yaml) and calendar (rules/calendar), read
 * from the repository root: hours from first_seen, working days ending at 24:00
 * Asia/Shanghai across weekends, holidays and make-up days, the Asia/Shanghai
 * date of a first_seen late in the UTC day, a year without calendar data
 * (flagged), overrides, and each mistake in a policy refused with file:line.
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

#include "../../../correlator/deadline.h"

#define H (3600 * 1000LL)

static calendar *cal;
static deadline_policy pol;

static int setup(void **state)
{
    char err[512];

    (void)state;
    if (calendar_load(&cal, "rules/calendar", err, sizeof(err)) != FH_OK ||
        deadline_policy_load(&pol, "rules/rectification.yaml", err, sizeof(err)) != FH_OK) {
        print_error("%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    deadline_policy_free(&pol);
    calendar_free(cal);
    return 0;
}

/* UTC ms of Asia/Shanghai local time y-m-d hh:mm */
static int64_t cst(int y, int m, int d, int hh, int mm)
{
    return (cal_days((cal_date){y, m, d}) * 24 + hh - 8) * H + mm * 60000LL;
}

static void test_hours(void **state)
{
    deadline d;

    (void)state;
    d = deadline_compute(&pol, cal, cst(2026, 2, 14, 9, 0), 4, NULL, NULL); /* critical */
    assert_int_equal(d.due_ms, cst(2026, 2, 15, 9, 0));          /* 24 h, holidays or not */
    assert_int_equal(d.containment_ms, cst(2026, 2, 14, 11, 0)); /* 2 h */
    assert_false(d.guessed);
    d = deadline_compute(&pol, cal, cst(2026, 2, 14, 9, 0), 3, NULL, NULL); /* high: 72 h */
    assert_int_equal(d.due_ms, cst(2026, 2, 17, 9, 0));
    assert_int_equal(d.containment_ms, 0);
}

static void test_working_days(void **state)
{
    deadline d;

    (void)state;
    /* medium: 5 working days. Thu 2026-02-12 -> end of Thu 02-26 (Spring Festival, make-up
     * Saturday 02-14 counts), whatever the hour of first_seen */
    d = deadline_compute(&pol, cal, cst(2026, 2, 12, 23, 59), 2, NULL, NULL);
    assert_int_equal(d.due_ms, cst(2026, 2, 27, 0, 0));
    d = deadline_compute(&pol, cal, cst(2026, 2, 12, 0, 0), 2, NULL, NULL);
    assert_int_equal(d.due_ms, cst(2026, 2, 27, 0, 0));
    /* 16:30 UTC on 02-11 is already 00:30 on 02-12 in Shanghai */
    d = deadline_compute(&pol, cal, (cal_days((cal_date){2026, 2, 11}) * 24 + 16) * H + 30 * 60000,
                         2, NULL, NULL);
    assert_int_equal(d.due_ms, cst(2026, 2, 27, 0, 0));
    d = deadline_compute(&pol, cal, cst(2026, 9, 30, 15, 0), 2, NULL, NULL);
    assert_int_equal(d.due_ms, cst(2026, 10, 14, 0, 0)); /* end of 10-13 */
    /* low: 15 working days from Thu 04-30: 05-06..08, Sat 05-09, 05-11..15, 05-18..22,
     * 05-25 (15th) */
    d = deadline_compute(&pol, cal, cst(2026, 4, 30, 10, 0), 1, NULL, NULL);
    assert_int_equal(d.due_ms, cst(2026, 5, 26, 0, 0));
    assert_false(d.guessed);
    /* a deadline that runs into 2027 (no calendar): Monday-Friday, flagged */
    d = deadline_compute(&pol, cal, cst(2026, 12, 28, 10, 0), 2, NULL, NULL);
    assert_true(d.guessed);
    assert_int_equal(d.due_ms, cst(2027, 1, 5, 0, 0)); /* 12-29..31, 01-01, 01-04 */
}

static void test_overrides_and_text(void **state)
{
    char dir[] = "/tmp/fh-deadline-XXXXXX", path[128], err[256], txt[32];
    deadline_policy p;
    FILE *f;
    deadline d;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.yaml", dir);
    f = fopen(path, "w");
    fputs("version: 1\ndeadlines:\n  critical: {hours: 24, containment_hours: 2}\n"
          "  high: {hours: 72}\n  medium: {working_days: 5}\n  low: {working_days: 15}\n"
          "  informational: {working_days: 15}\n"
          "overrides:\n  - {department: 市大数据局, severity: high, hours: 48}\n"
          "  - {zone: management, working_days: 1}\n"
          "verification_hours: 48\naccepted_risk: late\n",
          f);
    fclose(f);
    assert_int_equal(deadline_policy_load(&p, path, err, sizeof(err)), FH_OK);
    d = deadline_compute(&p, cal, cst(2026, 3, 2, 9, 0), 3, "市大数据局", NULL);
    assert_int_equal(d.due_ms, cst(2026, 3, 4, 9, 0));
    d = deadline_compute(&p, cal, cst(2026, 3, 2, 9, 0), 3, "市委网信办", NULL);
    assert_int_equal(d.due_ms, cst(2026, 3, 5, 9, 0));
    d = deadline_compute(&p, cal, cst(2026, 3, 6, 9, 0), 4, NULL, "management"); /* Friday */
    assert_int_equal(d.due_ms, cst(2026, 3, 10, 0, 0));                          /* Monday */
    assert_int_equal(d.containment_ms, 0); /* the override has none */
    assert_int_equal(p.verification_hours, 48);
    assert_int_equal(p.accepted_risk, ACCEPTED_LATE);
    deadline_rule_text(deadline_rule_for(&p, 2, NULL, NULL), txt, sizeof(txt));
    assert_string_equal(txt, "5 working days");
    deadline_rule_text(deadline_rule_for(&p, 4, NULL, NULL), txt, sizeof(txt));
    assert_string_equal(txt, "24 h");
    deadline_policy_free(&p);
    unlink(path);
    rmdir(dir);
}

static const char *load_bad(const char *text)
{
    static char err[256];
    char dir[] = "/tmp/fh-deadline-XXXXXX", path[128];
    deadline_policy p;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/policy.yaml", dir);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    if (deadline_policy_load(&p, path, err, sizeof(err)) == FH_OK)
        deadline_policy_free(&p);
    unlink(path);
    rmdir(dir);
    return strstr(err, "policy.yaml") ? strstr(err, "policy.yaml") : err;
}

#define LEVELS                                                                                     \
    "  high: {hours: 72}\n  medium: {working_days: 5}\n  low: {working_days: 15}\n"                \
    "  informational: {working_days: 15}\n"

static void test_bad_policies(void **state)
{
    (void)state;
    assert_string_equal(load_bad("deadlines: {}\n"), "policy.yaml:1: 'version: 1' expected");
    assert_string_equal(load_bad("version: 1\ndeadlines:\n" LEVELS),
                        "policy.yaml:3: no deadline for severity 'critical'");
    assert_string_equal(
        load_bad("version: 1\ndeadlines:\n  critical: {hours: 24, working_days: 1}\n" LEVELS),
        "policy.yaml:3: give either 'hours' or 'working_days'");
    assert_string_equal(load_bad("version: 1\ndeadlines:\n  critical: {hours: -1}\n" LEVELS),
                        "policy.yaml:3: 'hours' must be a whole number");
    assert_string_equal(
        load_bad("version: 1\ndeadlines:\n  critical: {hours: 24, zone: x}\n" LEVELS),
        "policy.yaml:3: unknown key 'zone'");
    assert_string_equal(load_bad("version: 1\ndeadlines:\n  critical: {hours: 24}\n  urgent: "
                                 "{hours: 1}\n" LEVELS),
                        "policy.yaml:4: unknown severity 'urgent'");
    assert_string_equal(load_bad("version: 1\ndeadlines:\n  critical: {hours: 24}\n" LEVELS
                                 "overrides:\n  - {hours: 3}\n"),
                        "policy.yaml:9: an override names a department, a zone or a severity");
    assert_string_equal(load_bad("version: 1\ndeadlines:\n  critical: {hours: 24}\n" LEVELS
                                 "accepted_risk: sometimes\n"),
                        "policy.yaml:8: 'accepted_risk' must be excluded, on_time or late");
    assert_string_equal(load_bad("version: 1\nversion: 1\n"),
                        "policy.yaml:2: a key given twice: 'version'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hours),
        cmocka_unit_test(test_working_days),
        cmocka_unit_test(test_overrides_and_text),
        cmocka_unit_test(test_bad_policies),
    };
    return cmocka_run_group_tests_name("deadline", tests, setup, teardown);
}
