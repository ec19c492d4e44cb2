/*
 * incident.h - the rectification (整改) of incidents in the store: people and
 * the console moving incidents through the lifecycle (lifecycle.h), assigning
 * them, attaching an official notice (通报), stamping deadlines (deadline.h),
 * verification by traffic and the expiry of accepted risks, and reading
 * incidents back for the rate (rate.h). Shared by the console and the tests;
 * the correlator's part (reopening on recurrence, counting stats) is in
 * store_apply() and store_sensor_stats().
 *
 * Every change is one transaction (BEGIN IMMEDIATE) that reads the incident,
 * checks the move and writes it with its record, so a correlator writing the
 * same alert at the same time never loses an update: SQLite serialises the
 * two writers and each reads what the other committed.
 *
 * Times: `now` is the wall clock of the move (ms), passed in by the caller so
 * that tests fix it. first_seen, deadlines and sensor stats are event time.
 *
 * Verification by traffic (incident_sweep): an incident moved to `rectified`
 * at time R has the window [R, R + verification_hours). A recurrence of its
 * rule and group key inside it reopens it (store_apply). Once now passes the
 * window's end, the incident closes itself as verified when its sensor sent
 * stats in every hour the window touches and no pipeline-gap alert (L3-28, a
 * rule named l3_28_*) for that sensor overlaps the window; the evidence
 * (window, sensors, stats per hour) is stored as JSON. Otherwise it stays
 * `rectified`, marked "sensor_gap" (unverified), until a person closes it with
 * a comment. An incident whose alert named no sensor cannot be verified by
 * traffic and is marked the same way.
 */
#ifndef FH_INCIDENT_H
#define FH_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "calendar.h"
#include "deadline.h"
#include "lifecycle.h"
#include "store.h"

/* One incident as reports and the console see it. Times are ms; 0 = not set. */
typedef struct {
    char id[33];
    char *rule_id, *rule_name, *title, *group_key;
    int level;
    incident_state status;
    char *category, *subcategory; /* GB/T 20986 */
    char **clauses;               /* GB/T 22239 clauses, as displayed ("8.1.4.1 c") */
    uint32_t nclauses;
    char *owner_department;    /* the inventory's owning department (责任单位) */
    char *assigned_department; /* set by an assignment; NULL: the owner */
    char *assignee;
    char *zone, *segment; /* of the owning side (dest when it is the owner's, else src) */
    char *sensor, *src_ip, *dest_ip;
    int64_t first_seen, last_seen; /* event time */
    uint64_t count;
    int64_t status_at, acknowledged_at, rectified_at, closed_at; /* wall clock */
    uint32_t reopen_count;
    int64_t deadline_at, containment_at;
    bool deadline_guessed;
    char *deadline_source; /* policy, notice, risk_expired */
    char *duplicate_of, *risk_reason, *risk_approver;
    int64_t risk_expires;
    char *notice_no, *notice_issuer, *notice_date;
    int64_t verify_until;
    char *verification; /* NULL, "verified", "sensor_gap" */
    char *verification_evidence;
} incident;

/* The department an incident counts for: the assigned one, else the owner; may be NULL. */
const char *incident_department(const incident *i);
void incident_clear(incident *i);
void incident_free_list(incident *list, size_t n);

/* One incident by id (FH_ERR_NOTFOUND). */
fh_err incident_get(store *st, const char *id, incident *out);

/* Incidents whose deadline is in [from_ms, to_ms) (0, 0: all), in deadline order. */
fh_err incident_list(store *st, int64_t from_ms, int64_t to_ms, incident **out, size_t *n);

/* A move asked for by a person (or the sweep). */
typedef struct {
    incident_state to;
    const char *actor;                       /* required */
    const char *comment;                     /* required to close an unverified incident */
    int64_t now;                             /* wall clock, ms */
    const char *duplicate_of;                /* to duplicate: the original's id */
    const char *risk_reason, *risk_approver; /* to accepted_risk: all three */
    int64_t risk_expires;                    /* ms */
    const deadline_policy *policy;           /* for rectified (window) and a fresh deadline */
    const calendar *cal;
} incident_move;

/*
 * Moves one incident, in its own transaction; *from (may be NULL) = the state it
 * left. On refusal returns FH_ERR_ARG (illegal move, named with both states; a
 * missing detail), FH_ERR_NOTFOUND, or FH_ERR_IO (store_errmsg), with the reason
 * in why.
 */
fh_err incident_transition(store *st, const char *id, const incident_move *m, incident_state *from,
                           char *why, size_t whylen);

/* Assigns (department and/or assignee; NULL leaves one as it is); recorded like a move. */
fh_err incident_assign(store *st, const char *id, const char *department, const char *assignee,
                       const char *actor, const char *comment, int64_t now, char *why,
                       size_t whylen);

/* A comment on the incident's timeline (kind "comment"); FH_ERR_ARG when empty. */
fh_err incident_comment(store *st, const char *id, const char *actor, const char *comment,
                        int64_t now, char *why, size_t whylen);

/* An official notice (通报) sets the incident's deadline; recorded like a move. */
typedef struct {
    const char *number, *issuer, *date; /* date YYYY-MM-DD */
    int64_t deadline;                   /* ms */
} incident_notice;
fh_err incident_set_notice(store *st, const char *id, const incident_notice *n, const char *actor,
                           const char *comment, int64_t now, char *why, size_t whylen);

/* Stamps the policy's deadline on every incident without one; *stamped = how many. */
fh_err incident_stamp_deadlines(store *st, const deadline_policy *p, const calendar *cal,
                                uint32_t *stamped);

typedef struct {
    uint32_t verified;     /* closed as verified */
    uint32_t sensor_gap;   /* windows ended without healthy stats: marked unverified */
    uint32_t risk_expired; /* accepted risks back to rectifying with a fresh deadline */
} incident_sweep_result;

/* Verification windows that ended and accepted risks that expired by now. */
fh_err incident_sweep(store *st, const deadline_policy *p, const calendar *cal, int64_t now,
                      incident_sweep_result *r);

/* The recorded moves of one incident, in order. */
typedef struct {
    uint32_t seq;
    int64_t at;
    const char *actor, *kind, *from, *to, *detail, *comment;
} incident_record;
typedef void (*incident_record_fn)(void *ctx, const incident_record *r);
fh_err incident_history(store *st, const char *id, incident_record_fn fn, void *ctx);

#endif
