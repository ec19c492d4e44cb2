/*
 * deadline.h - the rectification deadline policy (rules/rectification.yaml):
 * how long an incident of a given severity, department and zone has to be
 * rectified, counted from the alert's first_seen, in hours or in working days
 * of the official calendar (calendar.h). Shared by the correlator and the
 * console: both stamp and read the same deadlines.
 *
 * Working days: the deadline is 24:00 Asia/Shanghai (UTC+8, no daylight
 * saving) at the end of the Nth working day after the Asia/Shanghai date of
 * first_seen; that day itself does not count. Hours: first_seen + hours. An
 * override (department and/or zone, and severity) replaces the severity's rule;
 * the first matching override wins.
 */
#ifndef FH_DEADLINE_H
#define FH_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "calendar.h"

#define DEADLINE_LEVELS   5 /* informational, low, medium, high, critical (alerts.h order) */
#define DEADLINE_TZ_HOURS 8 /* Asia/Shanghai */

typedef enum { ACCEPTED_EXCLUDED = 0, ACCEPTED_ON_TIME, ACCEPTED_LATE } accepted_risk_policy;

typedef struct {
    uint32_t hours;             /* > 0: a deadline in hours */
    uint32_t working_days;      /* > 0: in working days (exactly one of the two is set) */
    uint32_t containment_hours; /* 0: none */
} deadline_rule;

typedef struct {
    char *department, *zone; /* NULL: any */
    int level;               /* -1: any */
    deadline_rule rule;
} deadline_override;

typedef struct {
    deadline_rule by_level[DEADLINE_LEVELS];
    deadline_override *overrides;
    uint32_t noverrides;
    uint32_t verification_hours;
    accepted_risk_policy accepted_risk;
} deadline_policy;

/* Loads the policy; on error "PATH:LINE: reason" (fh_error_at). */
fh_err deadline_policy_load(deadline_policy *p, const char *path, char *err, size_t errlen);
void deadline_policy_free(deadline_policy *p);

/* The rule for an incident (department and zone may be NULL). */
const deadline_rule *deadline_rule_for(const deadline_policy *p, int level, const char *department,
                                       const char *zone);

typedef struct {
    int64_t due_ms;         /* the deadline, UTC ms */
    int64_t containment_ms; /* 0: none */
    bool guessed;           /* counted in a year without calendar data: flag it */
} deadline;

/* The deadline of an incident first seen at first_seen_ms (UTC ms). */
deadline deadline_compute(const deadline_policy *p, const calendar *cal, int64_t first_seen_ms,
                          int level, const char *department, const char *zone);

/*
 * An instant (UTC ms) in Asia/Shanghai: its civil date, and the ms since that
 * date's midnight (ms_of_day may be NULL). The one place the time zone is applied.
 */
cal_date deadline_local_date(int64_t ms, int64_t *ms_of_day);

/*
 * An instant as Asia/Shanghai text, "2026-04-30 09:30"; midnight is written as the
 * end of the day before, "2026-04-30 24:00", as deadlines are. out needs 17 bytes.
 */
void deadline_local_text(int64_t ms, char *out, size_t len);

/* A rule as text: "24 h", "5 working days" (for reports and the CLI). */
void deadline_rule_text(const deadline_rule *r, char *out, size_t len);

#endif
