/*
 * rate.c - see rate.h.
 */
#include "rate.h"

#include <stdlib.h>
#include <string.h>

#include "alerts.h"

static const char *const OUTCOME[RATE_OUTCOMES] = {"on_time", "late", "pending", "accepted_risk",
                                                   "excluded"};
static const char *const OUTCOME_ZH[RATE_OUTCOMES] = {"按时整改", "超期", "未到期", "风险接受",
                                                      "不计入"};
static const char *const BY[BY_COUNT] = {"department", "segment", "severity", "clause", "category"};
static const char *const BY_ZH[BY_COUNT] = {"部门", "网段", "级别", "等保条款", "事件类别"};

const char *rate_outcome_name(rate_outcome o)
{
    return (unsigned)o < RATE_OUTCOMES ? OUTCOME[o] : NULL;
}

const char *rate_outcome_name_zh(rate_outcome o)
{
    return (unsigned)o < RATE_OUTCOMES ? OUTCOME_ZH[o] : NULL;
}

const char *rate_by_name(rate_by b)
{
    return (unsigned)b < BY_COUNT ? BY[b] : NULL;
}

const char *rate_by_name_zh(rate_by b)
{
    return (unsigned)b < BY_COUNT ? BY_ZH[b] : NULL;
}

int rate_by_parse(const char *s)
{
    for (int b = 0; s && b < BY_COUNT; b++)
        if (!strcmp(s, BY[b]))
            return b;
    return -1;
}

rate_outcome rate_outcome_of(const incident *i, int64_t now, const char **why)
{
    int64_t done = i->rectified_at ? i->rectified_at : i->closed_at;
    const char *w;
    rate_outcome o;

    switch (i->status) {
    case INC_FALSE_POSITIVE:
        o = RATE_EXCLUDED, w = "false positive";
        break;
    case INC_DUPLICATE:
        o = RATE_EXCLUDED, w = "duplicate";
        break;
    case INC_ACCEPTED_RISK:
        o = RATE_ACCEPTED, w = "risk accepted";
        break;
    default:
        if (i->reopen_count > 0)
            o = RATE_LATE, w = "reopened after rectification";
        else if ((i->status == INC_RECTIFIED || i->status == INC_CLOSED) && done)
            o = done <= i->deadline_at ? RATE_ON_TIME : RATE_LATE,
            w = done <= i->deadline_at ? "rectified by the deadline"
                                       : "rectified after the deadline";
        else if (now > i->deadline_at)
            o = RATE_LATE, w = "open past the deadline";
        else
            o = RATE_PENDING, w = "open, deadline not yet reached";
    }
    if (why)
        *why = w;
    return o;
}

bool rate_value(const rate_row *r, double *rate)
{
    uint32_t d = r->of[RATE_ON_TIME].n + r->of[RATE_LATE].n;

    *rate = d ? (double)r->of[RATE_ON_TIME].n / d : 0;
    return d > 0;
}

static fh_err set_add(rate_set *s, uint32_t v)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 8;
        uint32_t *p = realloc(s->v, cap * sizeof(*p));

        if (!p)
            return FH_ERR_NOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return FH_OK;
}

static void set_free(rate_set *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static void row_free(rate_row *r)
{
    for (int o = 0; o < RATE_OUTCOMES; o++)
        set_free(&r->of[o]);
    set_free(&r->overdue);
    free(r->key);
    memset(r, 0, sizeof(*r));
}

/* Adds incident k with outcome o to a row (accepted risks also per the policy). */
static fh_err row_add(rate_row *r, const rate_report *rep, uint32_t k, rate_outcome o)
{
    fh_err err = set_add(&r->of[o], k);

    if (!err && o == RATE_ACCEPTED && rep->accepted != ACCEPTED_EXCLUDED)
        err = set_add(&r->of[rep->accepted == ACCEPTED_ON_TIME ? RATE_ON_TIME : RATE_LATE], k);
    if (!err && o == RATE_LATE && incident_state_open(rep->inc[k].status))
        err = set_add(&r->overdue, k);
    return err;
}

static rate_row *row_for(rate_report *r, const char *key)
{
    rate_row *rows;

    if (!key || !*key)
        key = "(none)";
    for (size_t k = 0; k < r->nrows; k++)
        if (!strcmp(r->rows[k].key, key))
            return &r->rows[k];
    if (!(rows = realloc(r->rows, (r->nrows + 1) * sizeof(*rows))))
        return NULL;
    r->rows = rows;
    memset(&rows[r->nrows], 0, sizeof(rows[0]));
    if (!(rows[r->nrows].key = strdup(key)))
        return NULL;
    return &rows[r->nrows++];
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const rate_row *)a)->key, ((const rate_row *)b)->key);
}

static int overdue_cmp(const void *a, const void *b, void *ctx)
{
    const incident *inc = ctx;
    int64_t da = inc[*(const uint32_t *)a].deadline_at;
    int64_t db = inc[*(const uint32_t *)b].deadline_at;

    return da < db ? -1 : da > db ? 1 : 0;
}

static fh_err add_months(rate_report *r)
{
    cal_date a = deadline_local_date(r->from, NULL), b = deadline_local_date(r->to - 1, NULL);
    size_t n = (size_t)((b.y - a.y) * 12 + (b.m - a.m) + 1);

    if (r->to <= r->from || n > 1200)
        return FH_ERR_ARG;
    if (!(r->months = calloc(n, sizeof(*r->months))))
        return FH_ERR_NOMEM;
    r->nmonths = n;
    for (size_t k = 0; k < n; k++) {
        int m = a.m - 1 + (int)k;

        r->months[k].year = a.y + m / 12;
        r->months[k].month = m % 12 + 1;
    }
    return FH_OK;
}

static rate_month *month_of(rate_report *r, int64_t ms)
{
    cal_date d = deadline_local_date(ms, NULL);

    for (size_t k = 0; k < r->nmonths; k++)
        if (r->months[k].year == d.y && r->months[k].month == d.m)
            return &r->months[k];
    return NULL;
}

/* Adds incident k to the breakdown row(s) of its key(s). */
static fh_err add_breakdown(rate_report *r, uint32_t k, rate_outcome o)
{
    const incident *i = &r->inc[k];
    const char *key = NULL;
    rate_row *row;

    switch (r->by) {
    case BY_DEPARTMENT:
        key = incident_department(i);
        break;
    case BY_SEGMENT:
        key = i->segment;
        break;
    case BY_SEVERITY:
        key = alert_level_name(i->level);
        break;
    case BY_CATEGORY:
        key = i->category;
        break;
    case BY_CLAUSE:
        /* an incident under several clauses counts under each */
        for (uint32_t c = 0; c < i->nclauses; c++) {
            fh_err err;

            if (!(row = row_for(r, i->clauses[c])))
                return FH_ERR_NOMEM;
            if ((err = row_add(row, r, k, o)))
                return err;
        }
        if (i->nclauses)
            return FH_OK;
        break;
    default:
        break;
    }
    if (!(row = row_for(r, key)))
        return FH_ERR_NOMEM;
    return row_add(row, r, k, o);
}

fh_err rate_compute(rate_report *r, const incident *inc, size_t n, int64_t from, int64_t to,
                    int64_t now, rate_by by, accepted_risk_policy accepted)
{
    int64_t sum_a = 0, sum_r = 0;
    fh_err err;

    memset(r, 0, sizeof(*r));
    r->from = from, r->to = to, r->now = now, r->by = by, r->accepted = accepted;
    r->inc = inc;
    r->ninc = n;
    if ((unsigned)by >= BY_COUNT || n > UINT32_MAX)
        return FH_ERR_ARG;
    if ((err = add_months(r)))
        return err;
    if (n && (!(r->outcome = calloc(n, sizeof(*r->outcome))) ||
              !(r->why = calloc(n, sizeof(*r->why))))) {
        rate_report_free(r);
        return FH_ERR_NOMEM;
    }
    for (uint32_t k = 0; k < n; k++) {
        const incident *i = &inc[k];
        rate_outcome o;
        rate_month *m;

        if (!i->deadline_at || i->deadline_at < from || i->deadline_at >= to) {
            r->outcome[k] = RATE_OUTCOMES; /* not in the period */
            continue;
        }
        o = r->outcome[k] = rate_outcome_of(i, now, &r->why[k]);
        if ((err = row_add(&r->total, r, k, o)) || (err = add_breakdown(r, k, o)))
            goto fail;
        if ((m = month_of(r, i->deadline_at)) && (err = row_add(&m->row, r, k, o)))
            goto fail;
        if (o == RATE_LATE && incident_state_open(i->status) && (err = set_add(&r->overdue, k)))
            goto fail;
        if (i->deadline_guessed && (err = set_add(&r->guessed, k)))
            goto fail;
        if (o == RATE_EXCLUDED)
            continue;
        if (i->acknowledged_at) {
            sum_a += i->acknowledged_at > i->first_seen ? i->acknowledged_at - i->first_seen : 0;
            if ((err = set_add(&r->mtta, k)))
                goto fail;
        }
        if (i->rectified_at) {
            sum_r += i->rectified_at > i->first_seen ? i->rectified_at - i->first_seen : 0;
            if ((err = set_add(&r->mttr, k)))
                goto fail;
        }
    }
    r->mtta_ms = r->mtta.n ? sum_a / r->mtta.n : 0;
    r->mttr_ms = r->mttr.n ? sum_r / r->mttr.n : 0;
    if (r->nrows)
        qsort(r->rows, r->nrows, sizeof(*r->rows), row_cmp);
    if (r->overdue.n)
        qsort_r(r->overdue.v, r->overdue.n, sizeof(uint32_t), overdue_cmp, (void *)r->inc);
    {
        double rate;
        uint32_t ok = r->total.of[RATE_ON_TIME].n, late = r->total.of[RATE_LATE].n,
                 pending = r->total.of[RATE_PENDING].n, all = ok + late + pending;
        bool decided = rate_value(&r->total, &rate);

        r->projection_defined = all > 0;
        if (all) {
            r->projection_best = (double)(ok + pending) / all;
            r->projection_pace = decided ? (ok + pending * rate) / all : r->projection_best;
        }
    }
    return FH_OK;
fail:
    rate_report_free(r);
    return err;
}

void rate_report_free(rate_report *r)
{
    row_free(&r->total);
    for (size_t k = 0; k < r->nrows; k++)
        row_free(&r->rows[k]);
    free(r->rows);
    for (size_t k = 0; k < r->nmonths; k++)
        row_free(&r->months[k].row);
    free(r->months);
    set_free(&r->mtta);
    set_free(&r->mttr);
    set_free(&r->overdue);
    set_free(&r->guessed);
    free(r->outcome);
    free(r->why);
    memset(r, 0, sizeof(*r));
}
