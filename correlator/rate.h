/*
 * rate.h - the timely rectification rate (网络安全事件及时整改率) and the figures
 * around it, computed from incidents (incident.h) at a given `now`. Pure: no
 * store, no clock; the console's reports and the tests call it with the
 * incidents of a period.
 *
 * Definition (printed in every report):
 *   - the incidents counted are those whose deadline falls in [from, to);
 *   - on time: rectified (or closed) by the deadline and never reopened;
 *   - late: rectified or closed after the deadline, reopened at any time, or
 *     still open past the deadline at `now`;
 *   - pending: still open, deadline not yet passed at `now`;
 *   - false_positive and duplicate are excluded; accepted_risk is listed apart
 *     and, per the policy (deadline.h accepted_risk), also counted on time,
 *     late, or not at all;
 *   - rate = on time / (on time + late); undefined when nothing was decided.
 * The deadline counts from the alert's first_seen (deadline.h).
 *
 * Every figure keeps the incidents behind it (rate_set: indices into the
 * incident array given to rate_compute), so a report can list the ids of any
 * number it prints.
 */
#ifndef FH_RATE_H
#define FH_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "deadline.h"
#include "incident.h"

#define RATE_TARGET 0.95

typedef enum {
    RATE_ON_TIME = 0,
    RATE_LATE,
    RATE_PENDING,
    RATE_ACCEPTED, /* accepted_risk (listed apart; maybe also in on time or late) */
    RATE_EXCLUDED, /* false_positive, duplicate */
    RATE_OUTCOMES
} rate_outcome;

/* "on_time", "late", "pending", "accepted_risk", "excluded". */
const char *rate_outcome_name(rate_outcome o);
const char *rate_outcome_name_zh(rate_outcome o);

/*
 * The outcome of one incident at now (accepted risks: RATE_ACCEPTED whatever
 * the policy). why: a short English reason ("rectified after the deadline").
 */
rate_outcome rate_outcome_of(const incident *i, int64_t now, const char **why);

typedef enum {
    BY_DEPARTMENT = 0,
    BY_SEGMENT,
    BY_SEVERITY,
    BY_CLAUSE,
    BY_CATEGORY,
    BY_COUNT
} rate_by;

const char *rate_by_name(rate_by b);    /* "department" ... */
const char *rate_by_name_zh(rate_by b); /* 部门 ... */
int rate_by_parse(const char *s);       /* -1 when unknown */

/* Indices into the incident array. */
typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} rate_set;

typedef struct {
    char *key;                  /* the department, segment...; "(none)" when not known */
    rate_set of[RATE_OUTCOMES]; /* on time and late include accepted risks per the policy */
    rate_set overdue;           /* open past the deadline (a subset of late) */
} rate_row;

/* on time / (on time + late); false (and 0) when nothing was decided. */
bool rate_value(const rate_row *r, double *rate);

typedef struct {
    int year, month; /* of the deadline, Asia/Shanghai */
    rate_row row;
} rate_month;

typedef struct {
    int64_t from, to, now;
    rate_by by;
    accepted_risk_policy accepted;
    const incident *inc; /* not owned */
    size_t ninc;
    rate_outcome *outcome; /* per incident */
    const char **why;      /* per incident */
    rate_row total;
    rate_row *rows; /* sorted by key */
    size_t nrows;
    rate_month *months; /* every month of [from, to), in order */
    size_t nmonths;
    /* Mean time to acknowledge / to rectify, from first_seen, over the incidents counted
     * (not excluded) that reached that state; the sets list them. */
    int64_t mtta_ms, mttr_ms;
    rate_set mtta, mttr;
    rate_set overdue; /* open past the deadline, most overdue first */
    rate_set guessed; /* deadlines counted without calendar data */
    /* Period-end projection: decided and pending together, pending incidents
     * rectified on time at the rate so far (pace) or all of them (best case). */
    bool projection_defined;
    double projection_pace, projection_best;
} rate_report;

/*
 * Computes the report for the incidents of a period (those whose deadline is
 * in [from, to): others are ignored). inc must outlive the report.
 */
fh_err rate_compute(rate_report *r, const incident *inc, size_t n, int64_t from, int64_t to,
                    int64_t now, rate_by by, accepted_risk_policy accepted);
void rate_report_free(rate_report *r);

#endif
