/*
 * test_calendar.c - the working-day calendar (correlator/calendar.c) on the
 * shipped 2025 and 2026 files (rules/calendar, read from the repository root):
 * the worked examples of ../shared/docs/rectification.md, where Monday-Friday
 * arithmetic is wrong; a deadline on a make-up Saturday (调休); the year counts
 * (248 and 248); a year without a file (guessed, flagged); and each mistake in
 * a calendar file refused with file:line.
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

#include "../../../correlator/calendar.h"

static calendar *cal;

static int setup(void **state)
{
    char err[512];

    (void)state;
    if (calendar_load(&cal, "rules/calendar", err, sizeof(err)) != FH_OK) {
        print_error("%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    calendar_free(cal);
    return 0;
}

static void add(const char *from, int n, const char *want, bool want_guessed)
{
    cal_date d;
    bool guessed = false;
    char got[11];

    assert_true(cal_parse(from, &d));
    cal_format(calendar_add_workdays(cal, d, n, &guessed), got);
    if (strcmp(got, want) || guessed != want_guessed)
        fail_msg("%s + %d working days: got %s%s, want %s%s", from, n, got,
                 guessed ? " (guessed)" : "", want, want_guessed ? " (guessed)" : "");
}

static void test_worked_examples(void **state)
{
    (void)state;
    /* rectification.md: Monday-Friday arithmetic gets each of these wrong */
    add("2026-02-12", 5, "2026-02-26", false); /* Spring Festival, make-up Sat 02-14 */
    add("2026-09-30", 5, "2026-10-13", false); /* National Day, make-up Sat 10-10 */
    add("2026-04-30", 5, "2026-05-11", false); /* Labour Day, make-up Sat 05-09 */
    /* a deadline that lands on a make-up Saturday (调休) */
    add("2026-02-12", 2, "2026-02-14", false);
    add("2026-05-07", 2, "2026-05-09", false);
    /* 2025: Spring Festival 01-28..02-04, make-up Sun 01-26 and Sat 02-08 */
    add("2025-01-24", 1, "2025-01-26", false);
    add("2025-01-27", 1, "2025-02-05", false);
    /* across the new year, into a year with data */
    add("2025-12-30", 2, "2026-01-04", false); /* 12-31, (01-01..03 off), Sun 01-04 make-up */
    add("2025-12-30", 3, "2026-01-05", false);
    /* a plain week */
    add("2026-03-02", 5, "2026-03-09", false);
}

static void test_year_without_data(void **state)
{
    bool guessed = false;

    (void)state;
    assert_false(calendar_has_year(cal, 2027));
    add("2026-12-30", 5, "2027-01-06", true); /* counted Monday-Friday, flagged */
    add("2027-03-01", 5, "2027-03-08", true);
    assert_int_equal(calendar_count_year(cal, 2027, &guessed), 261);
    assert_true(guessed);
}

static void test_days(void **state)
{
    bool guessed = false;
    const char *h;

    (void)state;
    assert_int_equal(calendar_count_year(cal, 2025, &guessed), 248);
    assert_int_equal(calendar_count_year(cal, 2026, &guessed), 248);
    assert_false(guessed);
    assert_false(calendar_is_workday(cal, (cal_date){2026, 2, 16}, NULL, &h)); /* a Monday */
    assert_string_equal(h, "春节");
    assert_true(calendar_is_workday(cal, (cal_date){2026, 2, 28}, NULL, &h)); /* a Saturday */
    assert_string_equal(h, "春节");
    assert_true(calendar_is_workday(cal, (cal_date){2026, 3, 3}, NULL, &h));
    assert_null(h);
    assert_false(calendar_is_workday(cal, (cal_date){2026, 3, 7}, NULL, &h)); /* Saturday */
    assert_non_null(strstr(calendar_source(cal, 2026), "202511/content_7047091"));
    /* civil date arithmetic */
    assert_int_equal(cal_days((cal_date){1970, 1, 1}), 0);
    assert_int_equal(cal_weekday((cal_date){2026, 12, 5}), 5); /* a Saturday */
    {
        cal_date d;

        assert_true(cal_parse("2024-02-29", &d));
        assert_false(cal_parse("2026-02-29", &d));
        assert_false(cal_parse("2026-13-01", &d));
        assert_false(cal_parse("2026-1-01", &d));
        assert_false(cal_parse("2026-01-01x", &d));
    }
}

/* Writes text as DIR/NAME and loads DIR: returns the error message ("" if it loaded). */
static const char *load_bad(const char *name, const char *text)
{
    static char err[512];
    char dir[] = "/tmp/fh-cal-XXXXXX", path[128];
    calendar *c = NULL;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    if (calendar_load(&c, dir, err, sizeof(err)) == FH_OK) {
        calendar_free(c);
        err[0] = '\0';
    }
    unlink(path);
    rmdir(dir);
    /* the directory part is random: keep from the file name on */
    return strstr(err, name) ? strstr(err, name) : err;
}

static void test_bad_files(void **state)
{
    (void)state;
    assert_string_equal(load_bad("2030.yaml", "year: 2031\nsource: x\nholidays: []\n"),
                        "2030.yaml:1: 'year' must be the year of the file name");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nholidays: []\n"),
                        "2030.yaml:1: missing 'source' (the notice the dates come from)");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nsource: x\nholidays:\n"
                                              "  - {name: a, from: 2030-02-30, to: 2030-03-01}\n"),
                        "2030.yaml:4: 'from' must be a date YYYY-MM-DD");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nsource: x\nholidays:\n"
                                              "  - {name: a, from: 2031-01-01, to: 2031-01-02}\n"),
                        "2030.yaml:4: date outside the file's year: ");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nsource: x\nholidays:\n"
                                              "  - {name: a, from: 2030-01-05, to: 2030-01-06}\n"
                                              "workdays:\n  - {date: 2030-01-05, for: a}\n"),
                        "2030.yaml:6: a day given twice (holiday and make-up working day?)");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nsource: x\nholidays: []\n"
                                              "workdays:\n  - {date: 2030-01-07, for: a}\n"),
                        "2030.yaml:5: a make-up working day on a weekday: a");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nsource: x\nholidays:\n"
                                              "  - {name: a, from: 2030-01-05, to: 2030-01-01}\n"),
                        "2030.yaml:4: 'to' must be on or after 'from', within a month: a");
    assert_string_equal(load_bad("2030.yaml", "year: 2030\nyear: 2030\nsource: x\n"),
                        "2030.yaml:1: a key given twice");
    /* files not named YYYY.yaml are not calendars: ignored */
    assert_string_equal(load_bad("notes.yaml", "not: [a calendar\n"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_examples),
        cmocka_unit_test(test_year_without_data),
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("calendar", tests, setup, teardown);
}
