/*
 * store_incident.c - the rectification of incidents in the SQLite store; see
 * incident.h. Every change reads the incident, changes the struct and writes
 * all its lifecycle columns back with a record of the move, in one
 * BEGIN IMMEDIATE transaction.
 */
#include "incident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/jbuf.h"
#include "alerts.h"
#include "store_int.h"

#define HOUR_MS 3600000LL

/* Lazily prepared statements (store_lazy slots). */
enum {
    L_GET,
    L_GET_LOCK,
    L_LIST_ALL,
    L_LIST_RANGE,
    L_CLAUSES,
    L_WRITE,
    L_UNSTAMPED,
    L_UNSTAMPED_SKIP,
    L_STAMP,
    L_DUE,
    L_STATS,
    L_GAPS,
    L_SEG_SENSORS,
    L_HISTORY,
    L_COUNT
};

/* The owning side's zone and segment: dest when it is the owner's department, else src. */
#define OWNER_SIDE(col)                                                                            \
    "CASE WHEN department IS NOT NULL AND department = dest_department THEN dest_" col " "         \
    "WHEN department IS NOT NULL AND department = src_department THEN src_" col " "                \
    "ELSE COALESCE(dest_" col ", src_" col ") END"

#define INCIDENT_COLS                                                                              \
    "id, rule_id, rule_name, title, severity, status, category, subcategory, department, "         \
    "assigned_department, assignee, " OWNER_SIDE("zone") ", " OWNER_SIDE(                          \
        "segment") ", sensor, "                                                                    \
                   "src_ip, dest_ip, first_seen, last_seen, count, status_at, acknowledged_at, "   \
                   "rectified_at, "                                                                \
                   "closed_at, reopen_count, deadline_at, containment_at, deadline_guessed, "      \
                   "deadline_source, "                                                             \
                   "duplicate_of, risk_reason, risk_approver, risk_expires, notice_no, "           \
                   "notice_issuer, "                                                               \
                   "notice_date, verify_until, verification, verification_evidence, group_key"

/* Incidents without a deadline yet (incident_stamp_deadlines). */
#define UNSTAMPED                                                                                  \
    "SELECT id, first_seen, severity, department, " OWNER_SIDE(                                    \
        "zone") " FROM alerts WHERE "                                                              \
                "deadline_at IS NULL ORDER BY id"

static const char *const SQL[L_COUNT] = {
    [L_GET] = "SELECT " INCIDENT_COLS " FROM alerts WHERE id = ?1",
    /* PostgreSQL: the row stays locked until the change commits, so a correlator
     * reopening it at the same time waits instead of being overwritten */
    [L_GET_LOCK] = "SELECT " INCIDENT_COLS " FROM alerts WHERE id = ?1 FOR UPDATE",
    [L_LIST_ALL] = "SELECT " INCIDENT_COLS " FROM alerts ORDER BY deadline_at, first_seen, id",
    [L_LIST_RANGE] = "SELECT " INCIDENT_COLS " FROM alerts WHERE deadline_at >= ?1 AND "
                     "deadline_at < ?2 ORDER BY deadline_at, first_seen, id",
    [L_CLAUSES] = "SELECT display FROM alert_tags WHERE alert_id = ?1 AND kind = 'clause' "
                  "ORDER BY ord",
    [L_WRITE] = "UPDATE alerts SET status = ?2, status_at = ?3, acknowledged_at = ?4, "
                "rectified_at = ?5, closed_at = ?6, reopen_count = ?7, deadline_at = ?8, "
                "containment_at = ?9, deadline_guessed = ?10, deadline_source = ?11, "
                "duplicate_of = ?12, risk_reason = ?13, risk_approver = ?14, risk_expires = ?15, "
                "notice_no = ?16, notice_issuer = ?17, notice_date = ?18, verify_until = ?19, "
                "verification = ?20, verification_evidence = ?21, assigned_department = ?22, "
                "assignee = ?23 WHERE id = ?1",
    [L_UNSTAMPED] = UNSTAMPED,
    [L_UNSTAMPED_SKIP] = UNSTAMPED " FOR UPDATE SKIP LOCKED",
    [L_STAMP] = "UPDATE alerts SET deadline_at = ?2, containment_at = ?3, deadline_guessed = ?4, "
                "deadline_source = 'policy' WHERE id = ?1 AND deadline_at IS NULL",
    [L_DUE] = "SELECT id FROM alerts WHERE (status = 'accepted_risk' AND risk_expires <= ?1) OR "
              "(status = 'rectified' AND verification IS NULL AND verify_until <= ?1) ORDER BY id",
    [L_STATS] = "SELECT hour, count, segment FROM sensor_stats WHERE sensor = ?1 AND hour >= ?2 "
                "AND hour <= ?3 ORDER BY hour",
    [L_GAPS] = "SELECT id FROM alerts WHERE rule_name LIKE 'l3\\_28\\_%' ESCAPE '\\' AND "
               "(sensor = ?1 OR group_key = ?2) AND first_seen < ?4 AND last_seen >= ?3 "
               "ORDER BY id",
    [L_SEG_SENSORS] = "SELECT DISTINCT sensor FROM sensor_stats WHERE segment = ?1 AND "
                      "hour >= ?2 AND hour <= ?3 ORDER BY sensor",
    [L_HISTORY] = "SELECT seq, at, actor, kind, from_state, to_state, detail, comment FROM "
                  "incident_transitions WHERE alert_id = ?1 ORDER BY seq",
};

_Static_assert((int)L_COUNT <= (int)LAZY_AUDIT,
               "store_incident.c: too many statements for its slots");

static db_stmt *stmt(store *st, int i)
{
    return store_lazy(st, LAZY_INCIDENT + i, SQL[i]);
}

/* ---- the incident struct ---------------------------------------------------------- */

const char *incident_department(const incident *i)
{
    return i->assigned_department ? i->assigned_department : i->owner_department;
}

void incident_clear(incident *i)
{
    char **strs[] = {&i->rule_id,
                     &i->rule_name,
                     &i->title,
                     &i->group_key,
                     &i->category,
                     &i->subcategory,
                     &i->owner_department,
                     &i->assigned_department,
                     &i->assignee,
                     &i->zone,
                     &i->segment,
                     &i->sensor,
                     &i->src_ip,
                     &i->dest_ip,
                     &i->deadline_source,
                     &i->duplicate_of,
                     &i->risk_reason,
                     &i->risk_approver,
                     &i->notice_no,
                     &i->notice_issuer,
                     &i->notice_date,
                     &i->verification,
                     &i->verification_evidence};

    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
        free(*strs[k]);
    for (uint32_t k = 0; k < i->nclauses; k++)
        free(i->clauses[k]);
    free(i->clauses);
    memset(i, 0, sizeof(*i));
}

void incident_free_list(incident *list, size_t n)
{
    for (size_t k = 0; k < n; k++)
        incident_clear(&list[k]);
    free(list);
}

static int64_t col_ms(db_stmt *s, int c)
{
    return db_column_null(s, c) ? 0 : db_column_int64(s, c);
}

static fh_err read_clauses(store *st, incident *i)
{
    db_stmt *s = stmt(st, L_CLAUSES);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, i->id);
    while ((rc = db_step(s)) == DB_ROW) {
        bool failed = false;
        char **c = realloc(i->clauses, (i->nclauses + 1) * sizeof(*c));

        if (!c) {
            err = FH_ERR_NOMEM;
            break;
        }
        i->clauses = c;
        c[i->nclauses] = store_col_dup(s, 0, &failed);
        if (failed || !c[i->nclauses]) {
            err = FH_ERR_NOMEM;
            break;
        }
        i->nclauses++;
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "incident: SELECT alert_tags");
    store_stmt_done(s);
    return err;
}

/* One row of INCIDENT_COLS. */
static fh_err read_incident(db_stmt *s, incident *i)
{
    bool failed = false;
    int state;

    memset(i, 0, sizeof(*i));
    snprintf(i->id, sizeof(i->id), "%s", db_column_text(s, 0));
    i->rule_id = store_col_dup(s, 1, &failed);
    i->rule_name = store_col_dup(s, 2, &failed);
    i->title = store_col_dup(s, 3, &failed);
    i->level = (int)db_column_int64(s, 4);
    state = incident_state_parse(db_column_text(s, 5));
    i->status = state < 0 ? INC_NEW : (incident_state)state;
    i->category = store_col_dup(s, 6, &failed);
    i->subcategory = store_col_dup(s, 7, &failed);
    i->owner_department = store_col_dup(s, 8, &failed);
    i->assigned_department = store_col_dup(s, 9, &failed);
    i->assignee = store_col_dup(s, 10, &failed);
    i->zone = store_col_dup(s, 11, &failed);
    i->segment = store_col_dup(s, 12, &failed);
    i->sensor = store_col_dup(s, 13, &failed);
    i->src_ip = store_col_dup(s, 14, &failed);
    i->dest_ip = store_col_dup(s, 15, &failed);
    i->first_seen = db_column_int64(s, 16);
    i->last_seen = db_column_int64(s, 17);
    i->count = (uint64_t)db_column_int64(s, 18);
    i->status_at = col_ms(s, 19);
    i->acknowledged_at = col_ms(s, 20);
    i->rectified_at = col_ms(s, 21);
    i->closed_at = col_ms(s, 22);
    i->reopen_count = (uint32_t)(int)db_column_int64(s, 23);
    i->deadline_at = col_ms(s, 24);
    i->containment_at = col_ms(s, 25);
    i->deadline_guessed = (int)db_column_int64(s, 26) != 0;
    i->deadline_source = store_col_dup(s, 27, &failed);
    i->duplicate_of = store_col_dup(s, 28, &failed);
    i->risk_reason = store_col_dup(s, 29, &failed);
    i->risk_approver = store_col_dup(s, 30, &failed);
    i->risk_expires = col_ms(s, 31);
    i->notice_no = store_col_dup(s, 32, &failed);
    i->notice_issuer = store_col_dup(s, 33, &failed);
    i->notice_date = store_col_dup(s, 34, &failed);
    i->verify_until = col_ms(s, 35);
    i->verification = store_col_dup(s, 36, &failed);
    i->verification_evidence = store_col_dup(s, 37, &failed);
    i->group_key = store_col_dup(s, 38, &failed);
    return failed ? FH_ERR_NOMEM : FH_OK;
}

static fh_err get_incident(store *st, int slot, const char *id, incident *out)
{
    db_stmt *s = stmt(st, slot);
    fh_err err;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    rc = db_step(s);
    if (rc == DB_ROW)
        err = read_incident(s, out);
    else if (rc == DB_DONE)
        err = FH_ERR_NOTFOUND;
    else
        err = store_fail(st, "incident_get: SELECT alerts");
    store_stmt_done(s);
    if (!err)
        err = read_clauses(st, out);
    if (err)
        incident_clear(out);
    return err;
}

fh_err incident_get(store *st, const char *id, incident *out)
{
    return get_incident(st, L_GET, id, out);
}

fh_err incident_list(store *st, int64_t from_ms, int64_t to_ms, incident **out, size_t *n)
{
    bool all = !from_ms && !to_ms;
    db_stmt *s = stmt(st, all ? L_LIST_ALL : L_LIST_RANGE);
    incident *list = NULL;
    size_t cnt = 0, cap = 0;
    fh_err err = FH_OK;
    int rc;

    *out = NULL;
    *n = 0;
    if (!s)
        return FH_ERR_IO;
    if (!all) {
        db_bind_int64(s, 1, from_ms);
        db_bind_int64(s, 2, to_ms);
    }
    while ((rc = db_step(s)) == DB_ROW) {
        if (cnt == cap) {
            incident *l = realloc(list, (cap ? cap * 2 : 64) * sizeof(*l));

            if (!l) {
                err = FH_ERR_NOMEM;
                break;
            }
            list = l;
            cap = cap ? cap * 2 : 64;
        }
        if ((err = read_incident(s, &list[cnt]))) {
            incident_clear(&list[cnt]);
            break;
        }
        cnt++;
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "incident_list: SELECT alerts");
    store_stmt_done(s);
    for (size_t k = 0; !err && k < cnt; k++)
        err = read_clauses(st, &list[k]);
    if (err) {
        incident_free_list(list, cnt);
        return err;
    }
    *out = list;
    *n = cnt;
    return FH_OK;
}

/* Writes every lifecycle column of i. */
static fh_err write_incident(store *st, const incident *i)
{
    db_stmt *s = stmt(st, L_WRITE);

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, i->id);
    db_bind_str(s, 2, incident_state_name(i->status));
    store_bind_ms(s, 3, i->status_at);
    store_bind_ms(s, 4, i->acknowledged_at);
    store_bind_ms(s, 5, i->rectified_at);
    store_bind_ms(s, 6, i->closed_at);
    db_bind_int64(s, 7, (int)i->reopen_count);
    store_bind_ms(s, 8, i->deadline_at);
    store_bind_ms(s, 9, i->containment_at);
    db_bind_int64(s, 10, i->deadline_guessed ? 1 : 0);
    db_bind_str(s, 11, i->deadline_source);
    db_bind_str(s, 12, i->duplicate_of);
    db_bind_str(s, 13, i->risk_reason);
    db_bind_str(s, 14, i->risk_approver);
    store_bind_ms(s, 15, i->risk_expires);
    db_bind_str(s, 16, i->notice_no);
    db_bind_str(s, 17, i->notice_issuer);
    db_bind_str(s, 18, i->notice_date);
    store_bind_ms(s, 19, i->verify_until);
    db_bind_str(s, 20, i->verification);
    db_bind_str(s, 21, i->verification_evidence);
    db_bind_str(s, 22, i->assigned_department);
    db_bind_str(s, 23, i->assignee);
    return store_step_done(st, s, "incident: UPDATE alerts");
}

/* Replaces *dst with a copy of v (NULL clears it). */
static fh_err set_str(char **dst, const char *v)
{
    char *c = v ? strdup(v) : NULL;

    if (v && !c)
        return FH_ERR_NOMEM;
    free(*dst);
    *dst = c;
    return FH_OK;
}

/* ---- one change = one transaction ------------------------------------------------- */

/* What a change does to the incident, and the record it leaves. */
typedef struct {
    const char *actor, *kind, *comment;
    int64_t now;
    char detail[512];
    incident_state from; /* set by apply_change */
} change;

typedef fh_err (*change_fn)(void *ctx, incident *i, change *c, char *why, size_t whylen);

static fh_err apply_change(store *st, const char *id, change_fn fn, void *ctx, change *c, char *why,
                           size_t whylen)
{
    incident i;
    incident_state from;
    fh_err err;

    why[0] = '\0';
    if (!id || !*id || !c->actor || !*c->actor) {
        snprintf(why, whylen, "an incident id and an actor are required");
        return FH_ERR_ARG;
    }
    if (st->in_tx) {
        snprintf(why, whylen, "a store transaction is already open");
        return FH_ERR_ARG;
    }
    if ((err = store_begin(st))) {
        snprintf(why, whylen, "%s", store_errmsg(st));
        return err;
    }
    /* SQLite: BEGIN IMMEDIATE already holds the only write lock */
    err = get_incident(st, db_backend(st->db) == DB_POSTGRES ? L_GET_LOCK : L_GET, id, &i);
    if (err == FH_ERR_NOTFOUND)
        snprintf(why, whylen, "no incident %s", id);
    if (err)
        goto out;
    from = c->from = i.status;
    if ((err = fn(ctx, &i, c, why, whylen)))
        goto out;
    if (!strcmp(c->kind, "status"))
        i.status_at = c->now;
    if ((err = write_incident(st, &i)) ||
        (err = store_record(st, i.id, c->now, c->actor, c->kind, incident_state_name(from),
                            incident_state_name(i.status), c->detail[0] ? c->detail : NULL,
                            c->comment && *c->comment ? c->comment : NULL)))
        goto out;
    err = store_commit(st);
out:
    if (err && !why[0])
        snprintf(why, whylen, "%s", err == FH_ERR_NOMEM ? "out of memory" : store_errmsg(st));
    if (err)
        store_rollback(st);
    incident_clear(&i);
    return err;
}

/* A fresh deadline from `from` (a risk acceptance that ended). */
static void fresh_deadline(incident *i, const deadline_policy *p, const calendar *cal, int64_t from)
{
    deadline d = deadline_compute(p, cal, from, i->level, i->owner_department, i->zone);

    i->deadline_at = d.due_ms;
    i->containment_at = d.containment_ms;
    i->deadline_guessed = d.guessed;
    set_str(&i->deadline_source, "risk_expired");
}

static fh_err move_fn(void *ctx, incident *i, change *c, char *why, size_t whylen)
{
    const incident_move *m = ctx;
    incident_state to = m->to;
    fh_err err = FH_OK;

    if (!incident_transition_ok(i->status, to, why, whylen))
        return FH_ERR_ARG;
    switch (to) {
    case INC_ACKNOWLEDGED:
        if (!i->acknowledged_at)
            i->acknowledged_at = m->now;
        break;
    case INC_RECTIFIED: {
        uint32_t hours = m->policy ? m->policy->verification_hours : 24;

        i->rectified_at = m->now;
        i->verify_until = m->now + (int64_t)hours * HOUR_MS;
        err = set_str(&i->verification, NULL);
        err = err ? err : set_str(&i->verification_evidence, NULL);
        break;
    }
    case INC_CLOSED:
        if (!(i->verification && !strcmp(i->verification, "verified")) &&
            (!m->comment || !*m->comment)) {
            snprintf(why, whylen,
                     "closing an incident that traffic has not verified needs a comment "
                     "(what was checked)");
            return FH_ERR_ARG;
        }
        i->closed_at = m->now;
        break;
    case INC_REOPENED:
        i->reopen_count++;
        i->verify_until = 0;
        err = set_str(&i->verification, NULL);
        break;
    case INC_DUPLICATE:
        if (!m->duplicate_of || !*m->duplicate_of) {
            snprintf(why, whylen, "a duplicate needs the id of the incident it duplicates");
            return FH_ERR_ARG;
        }
        if (!strcmp(m->duplicate_of, i->id)) {
            snprintf(why, whylen, "an incident cannot duplicate itself");
            return FH_ERR_ARG;
        }
        err = set_str(&i->duplicate_of, m->duplicate_of);
        snprintf(c->detail, sizeof(c->detail), "duplicate of %s", m->duplicate_of);
        break;
    case INC_ACCEPTED_RISK: {
        char day[24];

        if (!m->risk_reason || !*m->risk_reason || !m->risk_approver || !*m->risk_approver ||
            m->risk_expires <= m->now) {
            snprintf(why, whylen,
                     "accepting a risk needs a reason, an approver and an expiry date in "
                     "the future");
            return FH_ERR_ARG;
        }
        err = set_str(&i->risk_reason, m->risk_reason);
        err = err ? err : set_str(&i->risk_approver, m->risk_approver);
        i->risk_expires = m->risk_expires;
        deadline_local_text(m->risk_expires, day, sizeof(day));
        snprintf(c->detail, sizeof(c->detail), "risk accepted by %s until %s: %s", m->risk_approver,
                 day, m->risk_reason);
        break;
    }
    case INC_RECTIFYING:
        if (i->status == INC_ACCEPTED_RISK) {
            int64_t from = i->risk_expires && i->risk_expires <= m->now ? i->risk_expires : m->now;
            char due[24];

            if (m->policy && m->cal) {
                fresh_deadline(i, m->policy, m->cal, from);
                deadline_local_text(i->deadline_at, due, sizeof(due));
                snprintf(c->detail, sizeof(c->detail), "risk acceptance %s; fresh deadline %s",
                         from < m->now ? "expired" : "revoked", due);
            }
        }
        i->verify_until = 0;
        break;
    default:
        break;
    }
    if (!err)
        i->status = to;
    return err;
}

fh_err incident_transition(store *st, const char *id, const incident_move *m, incident_state *from,
                           char *why, size_t whylen)
{
    change c = {.actor = m->actor, .kind = "status", .comment = m->comment, .now = m->now};
    fh_err err = apply_change(st, id, move_fn, (void *)m, &c, why, whylen);

    if (from)
        *from = c.from;
    return err;
}

typedef struct {
    const char *department, *assignee;
} assign_args;

static fh_err assign_fn(void *ctx, incident *i, change *c, char *why, size_t whylen)
{
    const assign_args *a = ctx;
    const char *old_dep = incident_department(i);
    size_t off = 0;
    fh_err err = FH_OK;

    if (!a->department && !a->assignee) {
        snprintf(why, whylen, "an assignment needs a department or an assignee");
        return FH_ERR_ARG;
    }
    if (a->department) {
        off += (size_t)snprintf(c->detail + off, sizeof(c->detail) - off, "department: %s -> %s",
                                old_dep ? old_dep : "(none)", a->department);
        err = set_str(&i->assigned_department, a->department);
    }
    if (!err && a->assignee) {
        snprintf(c->detail + off, sizeof(c->detail) - off, "%sassignee: %s -> %s", off ? "; " : "",
                 i->assignee ? i->assignee : "(none)", a->assignee);
        err = set_str(&i->assignee, a->assignee);
    }
    return err;
}

fh_err incident_assign(store *st, const char *id, const char *department, const char *assignee,
                       const char *actor, const char *comment, int64_t now, char *why,
                       size_t whylen)
{
    assign_args a = {department && *department ? department : NULL,
                     assignee && *assignee ? assignee : NULL};
    change c = {.actor = actor, .kind = "assign", .comment = comment, .now = now};

    return apply_change(st, id, assign_fn, &a, &c, why, whylen);
}

static fh_err notice_fn(void *ctx, incident *i, change *c, char *why, size_t whylen)
{
    const incident_notice *n = ctx;
    char due[24];
    fh_err err;

    if (!n->number || !*n->number || !n->issuer || !*n->issuer || !n->date || !*n->date ||
        n->deadline <= 0) {
        snprintf(why, whylen, "a notice needs a number, an issuer, a date and a deadline");
        return FH_ERR_ARG;
    }
    if ((err = set_str(&i->notice_no, n->number)) ||
        (err = set_str(&i->notice_issuer, n->issuer)) ||
        (err = set_str(&i->notice_date, n->date)) || (err = set_str(&i->deadline_source, "notice")))
        return err;
    i->deadline_at = n->deadline;
    i->deadline_guessed = false;
    deadline_local_text(n->deadline, due, sizeof(due));
    snprintf(c->detail, sizeof(c->detail), "notice %s by %s of %s: deadline %s", n->number,
             n->issuer, n->date, due);
    return FH_OK;
}

fh_err incident_set_notice(store *st, const char *id, const incident_notice *n, const char *actor,
                           const char *comment, int64_t now, char *why, size_t whylen)
{
    change c = {.actor = actor, .kind = "notice", .comment = comment, .now = now};

    return apply_change(st, id, notice_fn, (void *)n, &c, why, whylen);
}

static fh_err comment_fn(void *ctx, incident *i, change *c, char *why, size_t whylen)
{
    (void)ctx;
    (void)i;
    if (!c->comment || !*c->comment) {
        snprintf(why, whylen, "a comment needs text");
        return FH_ERR_ARG;
    }
    return FH_OK;
}

fh_err incident_comment(store *st, const char *id, const char *actor, const char *comment,
                        int64_t now, char *why, size_t whylen)
{
    change c = {.actor = actor, .kind = "comment", .comment = comment, .now = now};

    return apply_change(st, id, comment_fn, NULL, &c, why, whylen);
}

/* ---- deadlines -------------------------------------------------------------------- */

fh_err incident_stamp_deadlines(store *st, const deadline_policy *p, const calendar *cal,
                                uint32_t *stamped)
{
    /* PostgreSQL: rows a correlator holds are left for the next pass, so this batch
     * never waits for a correlator that waits for it (a deadlock) */
    db_stmt *sel = stmt(st, db_backend(st->db) == DB_POSTGRES ? L_UNSTAMPED_SKIP : L_UNSTAMPED),
            *up = stmt(st, L_STAMP);
    fh_err err;
    int rc;

    *stamped = 0;
    if (!sel || !up)
        return FH_ERR_IO;
    if ((err = store_begin(st)))
        return err;
    while ((rc = db_step(sel)) == DB_ROW) {
        const char *dep = db_column_text(sel, 3);
        const char *zone = db_column_text(sel, 4);
        deadline d = deadline_compute(p, cal, db_column_int64(sel, 1), (int)db_column_int64(sel, 2),
                                      dep, zone);

        db_bind_text(up, 1, db_column_text(sel, 0), -1);
        db_bind_int64(up, 2, d.due_ms);
        store_bind_ms(up, 3, d.containment_ms);
        db_bind_int64(up, 4, d.guessed ? 1 : 0);
        if ((err = store_step_done(st, up, "incident_stamp_deadlines: UPDATE alerts")))
            break;
        (*stamped)++;
    }
    if (!err && rc != DB_DONE)
        err = store_fail(st, "incident_stamp_deadlines: SELECT alerts");
    store_stmt_done(sel);
    return store_own_tx_end(st, true, err);
}

/* ---- verification by traffic and risk expiry -------------------------------------- */

typedef struct {
    char **v;
    size_t n;
} strlist;

static fh_err strlist_add(strlist *l, const char *s)
{
    char **v;

    for (size_t k = 0; k < l->n; k++)
        if (!strcmp(l->v[k], s))
            return FH_OK;
    if (!(v = realloc(l->v, (l->n + 1) * sizeof(*v))) || !(v[l->n] = strdup(s))) {
        if (v)
            l->v = v;
        return FH_ERR_NOMEM;
    }
    l->v = v;
    l->n++;
    return FH_OK;
}

static void strlist_free(strlist *l)
{
    for (size_t k = 0; k < l->n; k++)
        free(l->v[k]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/*
 * Whether one sensor watched [from, to): stats in every hour the window touches
 * and no pipeline-gap alert overlapping it. Appends its evidence object to j.
 */
static fh_err sensor_watched(store *st, const char *sensor, int64_t from, int64_t to, jbuf *j,
                             bool *ok)
{
    db_stmt *s = stmt(st, L_STATS), *g = stmt(st, L_GAPS);
    int64_t h0 = from / HOUR_MS, h1 = (to - 1) / HOUR_MS, hours = h1 - h0 + 1, covered = 0;
    uint64_t seen = 0;
    char key[600];
    int rc;
    fh_err err = FH_OK;

    if (!s || !g)
        return FH_ERR_IO;
    db_bind_str(s, 1, sensor);
    db_bind_int64(s, 2, h0);
    db_bind_int64(s, 3, h1);
    while ((rc = db_step(s)) == DB_ROW) {
        covered++;
        seen += (uint64_t)db_column_int64(s, 1);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "verification: SELECT sensor_stats");
    store_stmt_done(s);
    if (err)
        return err;
    jbuf_obj_open(j, NULL);
    jbuf_str(j, "id", sensor);
    jbuf_u64(j, "stats_events", seen);
    jbuf_u64(j, "hours", (uint64_t)hours);
    jbuf_u64(j, "hours_with_stats", (uint64_t)covered);
    jbuf_arr_open(j, "gap_alerts");
    memcpy(key, "sensor.id=", 10);
    alert_key_text(key + 10, sizeof(key) - 10, sensor, strlen(sensor));
    db_bind_str(g, 1, sensor);
    db_bind_str(g, 2, key);
    db_bind_int64(g, 3, from);
    db_bind_int64(g, 4, to);
    *ok = covered == hours;
    while ((rc = db_step(g)) == DB_ROW) {
        jbuf_str(j, NULL, db_column_text(g, 0));
        *ok = false;
    }
    if (rc != DB_DONE)
        err = store_fail(st, "verification: SELECT alerts (L3-28)");
    store_stmt_done(g);
    jbuf_arr_close(j);
    jbuf_bool(j, "healthy", *ok);
    jbuf_obj_close(j);
    return err;
}

/* The sensors of an incident: the one that saw it and those whose stats name its segment. */
static fh_err incident_sensors(store *st, const incident *i, int64_t from, int64_t to, strlist *out)
{
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    if (i->sensor && (err = strlist_add(out, i->sensor)))
        return err;
    if (!i->segment)
        return FH_OK;
    if (!(s = stmt(st, L_SEG_SENSORS)))
        return FH_ERR_IO;
    db_bind_str(s, 1, i->segment);
    db_bind_int64(s, 2, from / HOUR_MS);
    db_bind_int64(s, 3, (to - 1) / HOUR_MS);
    while (!err && (rc = db_step(s)) == DB_ROW)
        err = strlist_add(out, db_column_text(s, 0));
    if (!err && rc != DB_DONE)
        err = store_fail(st, "verification: SELECT sensor_stats");
    store_stmt_done(s);
    return err;
}

typedef struct {
    store *st;
    int64_t now;
    bool verified;
} verify_args;

static fh_err verify_fn(void *ctx, incident *i, change *c, char *why, size_t whylen)
{
    verify_args *v = ctx;
    int64_t from = i->rectified_at, to = i->verify_until;
    char t0[32], t1[32], w0[24], w1[24];
    strlist sensors = {0};
    jbuf j;
    bool all = true;
    fh_err err;

    (void)why;
    (void)whylen;
    if (!jbuf_init(&j, 1024, 1 << 20))
        return FH_ERR_NOMEM;
    alert_format_time(from, t0);
    alert_format_time(to, t1);
    deadline_local_text(from, w0, sizeof(w0));
    deadline_local_text(to, w1, sizeof(w1));
    jbuf_obj_open(&j, NULL);
    jbuf_obj_open(&j, "window");
    jbuf_str(&j, "from", t0);
    jbuf_str(&j, "to", t1);
    jbuf_obj_close(&j);
    jbuf_arr_open(&j, "sensors");
    err = incident_sensors(v->st, i, from, to, &sensors);
    for (size_t k = 0; !err && k < sensors.n; k++) {
        bool ok = false;

        err = sensor_watched(v->st, sensors.v[k], from, to, &j, &ok);
        all = all && ok;
    }
    jbuf_arr_close(&j);
    v->verified = !err && sensors.n > 0 && all;
    jbuf_str(&j, "result", v->verified ? "verified" : "sensor_gap");
    if (!sensors.n)
        jbuf_str(&j, "reason", "no sensor is known to watch this incident's traffic");
    jbuf_obj_close(&j);
    if (!err && jbuf_failed(&j))
        err = FH_ERR_NOMEM;
    if (!err)
        err = set_str(&i->verification, v->verified ? "verified" : "sensor_gap");
    if (!err)
        err = set_str(&i->verification_evidence, jbuf_cstr(&j));
    if (!err && v->verified) {
        i->status = INC_CLOSED;
        i->closed_at = v->now;
        c->kind = "status";
        snprintf(c->detail, sizeof(c->detail),
                 "verified by traffic: no recurrence from %s to %s, %zu sensor(s) healthy", t0, t1,
                 sensors.n);
    } else if (!err) {
        c->kind = "verification";
        snprintf(c->detail, sizeof(c->detail),
                 "unverified: sensor gap between %s and %s; a person must close it with a comment",
                 w0, w1);
    }
    strlist_free(&sensors);
    jbuf_free(&j);
    return err;
}

fh_err incident_sweep(store *st, const deadline_policy *p, const calendar *cal, int64_t now,
                      incident_sweep_result *r)
{
    db_stmt *s = stmt(st, L_DUE);
    strlist due = {0};
    char why[512];
    fh_err err = FH_OK;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!s)
        return FH_ERR_IO;
    db_bind_int64(s, 1, now);
    while (!err && (rc = db_step(s)) == DB_ROW)
        err = strlist_add(&due, db_column_text(s, 0));
    if (!err && rc != DB_DONE)
        err = store_fail(st, "incident_sweep: SELECT alerts");
    store_stmt_done(s);
    for (size_t k = 0; !err && k < due.n; k++) {
        incident i;

        /* each in its own transaction: re-read, the correlator may have reopened it */
        if ((err = incident_get(st, due.v[k], &i)))
            break;
        if (i.status == INC_ACCEPTED_RISK && i.risk_expires && i.risk_expires <= now) {
            char day[24], comment[64];
            incident_move m = {.to = INC_RECTIFYING,
                               .actor = "console:sweep",
                               .now = now,
                               .policy = p,
                               .cal = cal,
                               .comment = comment};

            deadline_local_text(i.risk_expires, day, sizeof(day));
            snprintf(comment, sizeof(comment), "risk acceptance expired on %s", day);
            err = incident_transition(st, i.id, &m, NULL, why, sizeof(why));
            if (!err)
                r->risk_expired++;
        } else if (i.status == INC_RECTIFIED && !i.verification && i.verify_until &&
                   i.verify_until <= now) {
            verify_args v = {.st = st, .now = now};
            change c = {.actor = "console:sweep", .kind = "status", .now = now};

            err = apply_change(st, i.id, verify_fn, &v, &c, why, sizeof(why));
            if (!err && v.verified)
                r->verified++;
            else if (!err)
                r->sensor_gap++;
        }
        /* a move refused because the incident changed meanwhile is not an error */
        if (err == FH_ERR_ARG)
            err = FH_OK;
        incident_clear(&i);
    }
    strlist_free(&due);
    return err;
}

fh_err incident_history(store *st, const char *id, incident_record_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, L_HISTORY);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    while ((rc = db_step(s)) == DB_ROW) {
        incident_record r = {
            .seq = (uint32_t)(int)db_column_int64(s, 0),
            .at = db_column_int64(s, 1),
            .actor = db_column_text(s, 2),
            .kind = db_column_text(s, 3),
            .from = db_column_text(s, 4),
            .to = db_column_text(s, 5),
            .detail = db_column_text(s, 6),
            .comment = db_column_text(s, 7),
        };

        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "incident_history: SELECT incident_transitions");
    store_stmt_done(s);
    return err;
}
