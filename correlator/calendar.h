/*
 * calendar.h - the official working-day calendar (Asia/Shanghai) that
 * rectification deadlines count in: public holidays (法定节假日) and make-up
 * working days (调休上班), one data file per year (rules/calendar/YYYY.yaml,
 * from the State Council's notice, whose title and address each file names).
 *
 * A day is a working day when it is a make-up working day, or a Monday to
 * Friday that is not a holiday. For a year without a data file there is no
 * official answer: Monday to Friday is used and every result that touched such
 * a year says so (`guessed`), so that a deadline or a report can flag it loudly
 * instead of silently being wrong (Monday-Friday arithmetic gets 2026-02-12 + 5
 * working days wrong by a week).
 *
 * Dates are civil dates (no time zone arithmetic here: the caller turns an
 * instant into an Asia/Shanghai date, UTC+8 without daylight saving).
 */
#ifndef FH_CALENDAR_H
#define FH_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct {
    int y, m, d;
} cal_date;

typedef struct calendar calendar;

/*
 * Loads every YYYY.yaml of dir. Each file is checked: its `year` matches its
 * name, every date lies in that year, no day is both a holiday and a make-up
 * working day, a holiday range runs forward. On error: "PATH:LINE: reason".
 */
fh_err calendar_load(calendar **out, const char *dir, char *err, size_t errlen);
void calendar_free(calendar *c);

/* Whether the year has a data file; its source line (the notice) when it does. */
bool calendar_has_year(const calendar *c, int year);
const char *calendar_source(const calendar *c, int year);

/*
 * Whether d is a working day. *guessed (may be NULL) is set true when d's year
 * has no data and Monday-Friday decided. *holiday (may be NULL) gets the name of
 * the holiday or of the make-up day's holiday, else NULL.
 */
bool calendar_is_workday(const calendar *c, cal_date d, bool *guessed, const char **holiday);

/*
 * The date n >= 1 working days after `from` (from itself does not count: a
 * deadline of "5 working days" from an incident on Thursday 2026-02-12 is
 * Thursday 2026-02-26, the end of the fifth working day after it). *guessed is
 * set when any day counted lay in a year without data.
 */
cal_date calendar_add_workdays(const calendar *c, cal_date from, int n, bool *guessed);

/* Working days in a year (248 in 2025 and 2026); *guessed as above. */
int calendar_count_year(const calendar *c, int year, bool *guessed);

/* Day arithmetic on civil dates. */
int64_t cal_days(cal_date d); /* days since 1970-01-01 */
cal_date cal_from_days(int64_t days);
int cal_weekday(cal_date d);                  /* 0 Monday .. 6 Sunday */
bool cal_parse(const char *s, cal_date *out); /* "YYYY-MM-DD", a real date */
void cal_format(cal_date d, char out[11]);

#endif
