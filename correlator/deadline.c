/*
 * deadline.c - see deadline.h.
 */
#include "deadline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../common/fh_yaml.h"
#include "alerts.h"

#define MS_HOUR (3600 * 1000LL)
#define MS_DAY  (24 * MS_HOUR)

typedef fh_yaml_src loader;

/* A whole number in [min, max] from a scalar node. */
static fh_err number(loader *L, yaml_node_t *n, const char *what, uint32_t min, uint32_t max,
                     uint32_t *out)
{
    const char *s = fh_yaml_scalar(n);
    char *end;
    unsigned long v;

    if (!s || !*s || *s == '-')
        return fh_yaml_fail(L, n, "'%s' must be a whole number", what);
    v = strtoul(s, &end, 10);
    if (*end || v < min || v > max)
        return fh_yaml_fail(L, n, "'%s' is out of range", what);
    *out = (uint32_t)v;
    return FH_OK;
}

/* {hours: N} or {working_days: N}, and for critical containment_hours. */
static fh_err rule_of(loader *L, yaml_node_t *m, deadline_rule *r, bool containment, bool override)
{
    static const char *const keys[] = {
        "hours", "working_days", "containment_hours", "department", "zone", "severity", NULL};
    int nkeys = override ? 6 : 3;
    yaml_node_t *h = fh_yaml_get(L->doc, m, "hours"), *w = fh_yaml_get(L->doc, m, "working_days");
    yaml_node_t *c = fh_yaml_get(L->doc, m, "containment_hours"), *first;
    fh_err e;

    memset(r, 0, sizeof(*r));
    if (!m || m->type != YAML_MAPPING_NODE)
        return fh_yaml_fail(L, m, "a deadline is a map {hours: N} or {working_days: N}");
    if (fh_yaml_duplicate_key(L->doc, m, &first))
        return fh_yaml_fail(L, m, "a key given twice");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = fh_yaml_scalar(fh_yaml_node(L->doc, p->key));
        bool known = false;

        for (int i = 0; i < nkeys && k; i++)
            known |= !strcmp(k, keys[i]);
        if (!known)
            return fh_yaml_fail(L, fh_yaml_node(L->doc, p->key), "unknown key '%s'", k ? k : "");
    }
    if (!h == !w)
        return fh_yaml_fail(L, m, "give either 'hours' or 'working_days'");
    if (h && (e = number(L, h, "hours", 1, 24 * 366, &r->hours)))
        return e;
    if (w && (e = number(L, w, "working_days", 1, 366, &r->working_days)))
        return e;
    if (c && !containment)
        return fh_yaml_fail(L, c, "'containment_hours' belongs to a severity's deadline");
    if (c && (e = number(L, c, "containment_hours", 1, 24 * 366, &r->containment_hours)))
        return e;
    return FH_OK;
}

static char *dup_opt(loader *L, yaml_node_t *m, const char *key, bool *bad)
{
    yaml_node_t *v = fh_yaml_get(L->doc, m, key);
    const char *s = fh_yaml_scalar(v);

    if (!v)
        return NULL;
    if (!s || !*s) {
        *bad = true;
        fh_yaml_fail(L, v, "'%s' must be a name", key);
        return NULL;
    }
    return strdup(s);
}

static fh_err load_doc(deadline_policy *p, loader *L, yaml_node_t *root)
{
    yaml_node_t *d, *o, *v, *first;
    const char *s;
    fh_err e;

    if (!root || root->type != YAML_MAPPING_NODE)
        return fh_yaml_fail(L, root, "the policy is a map");
    if ((v = fh_yaml_duplicate_key(L->doc, root, &first)))
        return fh_yaml_fail(L, v, "a key given twice: '%s'", fh_yaml_scalar(v));
    if (!(s = fh_yaml_scalar(fh_yaml_get(L->doc, root, "version"))) || strcmp(s, "1"))
        return fh_yaml_fail(L, root, "'version: 1' expected");
    if (!(d = fh_yaml_get(L->doc, root, "deadlines")) || d->type != YAML_MAPPING_NODE)
        return fh_yaml_fail(L, root, "missing 'deadlines' (a map from severity to deadline)");
    for (int lv = 0; lv < DEADLINE_LEVELS; lv++) {
        yaml_node_t *m = fh_yaml_get(L->doc, d, alert_level_name(lv));

        if (!m)
            return fh_yaml_fail(L, d, "no deadline for severity '%s'", alert_level_name(lv));
        if ((e = rule_of(L, m, &p->by_level[lv], lv == 4, false)))
            return e;
    }
    for (yaml_node_pair_t *q = d->data.mapping.pairs.start; q < d->data.mapping.pairs.top; q++) {
        yaml_node_t *k = fh_yaml_node(L->doc, q->key);

        if (alert_level_parse(fh_yaml_scalar(k)) < 0)
            return fh_yaml_fail(L, k, "unknown severity '%s'", fh_yaml_scalar(k));
    }
    if ((o = fh_yaml_get(L->doc, root, "overrides"))) {
        if (o->type != YAML_SEQUENCE_NODE)
            return fh_yaml_fail(L, o, "'overrides' must be a list");
        for (yaml_node_item_t *it = o->data.sequence.items.start; it < o->data.sequence.items.top;
             it++) {
            yaml_node_t *m = fh_yaml_node(L->doc, *it);
            deadline_override *no = realloc(p->overrides, (p->noverrides + 1) * sizeof(*no));
            deadline_override *x;
            bool bad = false;

            if (!no)
                return FH_ERR_NOMEM;
            p->overrides = no;
            x = &p->overrides[p->noverrides];
            memset(x, 0, sizeof(*x));
            x->level = -1;
            if ((e = rule_of(L, m, &x->rule, false, true)))
                return e;
            p->noverrides++;
            x->department = dup_opt(L, m, "department", &bad);
            x->zone = dup_opt(L, m, "zone", &bad);
            if (bad)
                return FH_ERR_CONFIG;
            if ((v = fh_yaml_get(L->doc, m, "severity")) &&
                (x->level = alert_level_parse(fh_yaml_scalar(v))) < 0)
                return fh_yaml_fail(L, v, "unknown severity '%s'", fh_yaml_scalar(v));
            if (!x->department && !x->zone && x->level < 0)
                return fh_yaml_fail(L, m, "an override names a department, a zone or a severity");
        }
    }
    p->verification_hours = 24;
    if ((v = fh_yaml_get(L->doc, root, "verification_hours")) &&
        (e = number(L, v, "verification_hours", 1, 24 * 90, &p->verification_hours)))
        return e;
    if ((v = fh_yaml_get(L->doc, root, "accepted_risk"))) {
        s = fh_yaml_scalar(v);
        if (s && !strcmp(s, "excluded"))
            p->accepted_risk = ACCEPTED_EXCLUDED;
        else if (s && !strcmp(s, "on_time"))
            p->accepted_risk = ACCEPTED_ON_TIME;
        else if (s && !strcmp(s, "late"))
            p->accepted_risk = ACCEPTED_LATE;
        else
            return fh_yaml_fail(L, v, "'accepted_risk' must be excluded, on_time or late");
    }
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top;
         q++) {
        static const char *const keys[] = {
            "version", "deadlines", "overrides", "verification_hours", "accepted_risk", NULL};
        const char *k = fh_yaml_scalar(fh_yaml_node(L->doc, q->key));
        bool known = false;

        for (int i = 0; keys[i] && k; i++)
            known |= !strcmp(k, keys[i]);
        if (!known)
            return fh_yaml_fail(L, fh_yaml_node(L->doc, q->key), "unknown key '%s'", k ? k : "");
    }
    return FH_OK;
}

fh_err deadline_policy_load(deadline_policy *p, const char *path, char *err, size_t errlen)
{
    yaml_document_t doc;
    loader L = {path, &doc, err, errlen};
    fh_err e;

    memset(p, 0, sizeof(*p));
    if ((e = fh_yaml_load_file(&doc, path, "the deadline policy", err, errlen)) != FH_OK)
        return e;
    e = load_doc(p, &L, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    if (e)
        deadline_policy_free(p);
    return e;
}

void deadline_policy_free(deadline_policy *p)
{
    for (uint32_t i = 0; i < p->noverrides; i++) {
        free(p->overrides[i].department);
        free(p->overrides[i].zone);
    }
    free(p->overrides);
    memset(p, 0, sizeof(*p));
}

static bool same(const char *want, const char *have)
{
    return !want || (have && !strcmp(want, have));
}

const deadline_rule *deadline_rule_for(const deadline_policy *p, int level, const char *department,
                                       const char *zone)
{
    if (level < 0 || level >= DEADLINE_LEVELS)
        level = 2; /* medium: an unknown severity is not a free pass */
    for (uint32_t i = 0; i < p->noverrides; i++) {
        const deadline_override *o = &p->overrides[i];

        if ((o->level < 0 || o->level == level) && same(o->department, department) &&
            same(o->zone, zone))
            return &o->rule;
    }
    return &p->by_level[level];
}

deadline deadline_compute(const deadline_policy *p, const calendar *cal, int64_t first_seen_ms,
                          int level, const char *department, const char *zone)
{
    const deadline_rule *r = deadline_rule_for(p, level, department, zone);
    deadline d = {0};

    if (r->containment_hours)
        d.containment_ms = first_seen_ms + (int64_t)r->containment_hours * MS_HOUR;
    if (r->hours) {
        d.due_ms = first_seen_ms + (int64_t)r->hours * MS_HOUR;
        return d;
    }
    {
        /* the Asia/Shanghai date of first_seen, then the end of the Nth working day after */
        cal_date due = calendar_add_workdays(cal, deadline_local_date(first_seen_ms, NULL),
                                             (int)r->working_days, &d.guessed);

        d.due_ms = (cal_days(due) + 1) * MS_DAY - DEADLINE_TZ_HOURS * MS_HOUR;
    }
    return d;
}

cal_date deadline_local_date(int64_t ms, int64_t *ms_of_day)
{
    int64_t local = ms + DEADLINE_TZ_HOURS * MS_HOUR;
    int64_t day = local >= 0 ? local / MS_DAY : (local - MS_DAY + 1) / MS_DAY;

    if (ms_of_day)
        *ms_of_day = local - day * MS_DAY;
    return cal_from_days(day);
}

void deadline_local_text(int64_t ms, char *out, size_t len)
{
    int64_t msd;
    char d[11];

    deadline_local_date(ms, &msd);
    if (msd == 0) {
        cal_format(deadline_local_date(ms - 1, NULL), d);
        snprintf(out, len, "%s 24:00", d);
    } else {
        cal_format(deadline_local_date(ms, NULL), d);
        snprintf(out, len, "%s %02d:%02d", d, (int)(msd / 3600000), (int)(msd / 60000 % 60));
    }
}

void deadline_rule_text(const deadline_rule *r, char *out, size_t len)
{
    if (r->hours)
        snprintf(out, len, "%u h", r->hours);
    else
        snprintf(out, len, "%u working day%s", r->working_days, r->working_days == 1 ? "" : "s");
}
