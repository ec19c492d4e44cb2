/*
 * correlation.c - the streaming correlation engine: groups, windows, the clock
 * policy, emits (correlation.h is the contract, README-correlation.md the design,
 * correlation_int.h the layout). Rules are compiled by corr_rule.c; the state kept
 * across a reload and in checkpoints is corr_state.c.
 */
#include "correlation_int.h"

#include "alerts.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- engine ---------------------------------------------------------------------------- */

static const sv sv_none;

static const sv *src_get(const src *s, field_id id)
{
    if (s->slots)
        return id < s->nslots ? &s->slots[id] : &sv_none;
    return event_get(s->ev, id);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

#define FNV_BASIS 14695981039346656037ull

/* A group's hash: its rule and its key text (without the values). */
uint64_t ce_group_hash(uint32_t rule, const char *key, uint32_t keylen)
{
    return fnv1a(fnv1a(FNV_BASIS, &rule, sizeof(rule)), key, keylen);
}

static bool cond_true(const struct corr_rule *r, double x)
{
    for (uint32_t i = 0; i < r->nconds; i++) {
        double v = r->conds[i].value;
        bool ok = false;

        switch (r->conds[i].op) {
        case CORR_GT:
            ok = x > v;
            break;
        case CORR_GTE:
            ok = x >= v;
            break;
        case CORR_LT:
            ok = x < v;
            break;
        case CORR_LTE:
            ok = x <= v;
            break;
        case CORR_EQ:
            ok = x == v;
            break;
        case CORR_NEQ:
            ok = x != v;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/*
 * Builds "name=value,..." then "\0value0\0value1\0" into e->keybuf. Returns the
 * total length (NULs included) and the key length, or 0 when a value is missing.
 */
static size_t build_key(corr_engine *e, const struct corr_rule *r, const corr_ref *f, const src *s,
                        uint32_t *keylen)
{
    char *b = e->keybuf, tmp[64];
    size_t off = 0;
    const char *vs[CORR_MAX_GROUPBY];
    size_t vl[CORR_MAX_GROUPBY];
    char vtmp[CORR_MAX_GROUPBY][32];

    for (uint32_t k = 0; k < r->ngroup_by; k++) {
        const char *name = r->group_by[k], *v;
        size_t nl = strlen(name), len;

        /* the text the matchers see: a number groups by the text its event carries */
        if (!(v = sigma_value_text(src_get(s, f->gb[k]), tmp, sizeof(tmp), &len)))
            return 0;
        if (v == tmp) { /* keep number texts for the value part */
            memcpy(vtmp[k], tmp, len < 31 ? len + 1 : 32);
            v = vtmp[k];
        }
        vs[k] = v;
        vl[k] = len;
        if (off + nl + 2 >= KEY_MAX)
            return 0;
        if (k)
            b[off++] = ',';
        memcpy(b + off, name, nl);
        off += nl;
        b[off++] = '=';
        /* the same escaping as a detection rule's key (alerts.h): a NUL in a value
         * neither ends the key nor merges it with another */
        if (!alert_key_escape(b, KEY_MAX, &off, v, len))
            return 0;
    }
    b[off++] = '\0';
    *keylen = (uint32_t)off - 1;
    for (uint32_t k = 0; k < r->ngroup_by; k++) {
        /* values are NUL-separated: one holding a NUL is kept in its escaped form */
        if (memchr(vs[k], '\0', vl[k])) {
            if (!alert_key_escape(b, KEY_MAX, &off, vs[k], vl[k]))
                return 0;
            off++;
            continue;
        }
        if (off + vl[k] + 1 >= KEY_MAX)
            return 0;
        memcpy(b + off, vs[k], vl[k]);
        off += vl[k];
        b[off++] = '\0';
    }
    return off;
}

size_t corr_memory_per_group(const struct corr_rule *r, uint32_t entries)
{
    size_t m = sizeof(cgroup);

    m += (size_t)entries * sizeof(int64_t);
    if (r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM)
        m += (size_t)entries * sizeof(uint64_t);
    if (r->type == CORR_TEMPORAL)
        m += r->nrefs * sizeof(int64_t);
    if (r->type == CORR_TEMPORAL_ORDERED)
        m += 2 * r->nrefs * sizeof(int64_t);
    return m;
}

size_t ce_group_bytes(const corr_engine *e, const cgroup *g)
{
    return corr_memory_per_group(&e->rs->corrs[g->rule], g->cap) + g->textlen;
}

void ce_lru_unlink(rstate *rs, cgroup *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        rs->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        rs->tail = g->prev;
    g->prev = g->next = NULL;
}

void ce_lru_push_head(rstate *rs, cgroup *g)
{
    g->prev = NULL;
    g->next = rs->head;
    if (rs->head)
        rs->head->prev = g;
    rs->head = g;
    if (!rs->tail)
        rs->tail = g;
}

void ce_mark_dirty(corr_engine *e, cgroup *g)
{
    if (g->dirty || !e->track)
        return;
    g->dirty = true;
    g->dprev = NULL;
    g->dnext = e->dirty;
    if (e->dirty)
        e->dirty->dprev = g;
    e->dirty = g;
}

void ce_dirty_unlink(corr_engine *e, cgroup *g)
{
    if (!g->dirty)
        return;
    if (g->dprev)
        g->dprev->dnext = g->dnext;
    else
        e->dirty = g->dnext;
    if (g->dnext)
        g->dnext->dprev = g->dprev;
    g->dprev = g->dnext = NULL;
    g->dirty = false;
}

/* Records that a saved group (key NULL: all of rule's) must go from the checkpoint. */
void ce_add_gone(corr_engine *e, const char *rule, const char *key, uint32_t keylen)
{
    gone *ng;

    if (!e->track)
        return;
    if (e->ngone == e->capgone) {
        uint32_t nc = e->capgone ? e->capgone * 2 : 64;

        if (!(ng = realloc(e->gone, nc * sizeof(*ng)))) {
            e->gone_failed = true;
            return;
        }
        e->gone = ng;
        e->capgone = nc;
    }
    ng = &e->gone[e->ngone];
    ng->rule = strdup(rule);
    ng->key = key ? malloc(keylen ? keylen : 1) : NULL;
    ng->keylen = keylen;
    if (!ng->rule || (key && !ng->key)) {
        free(ng->rule);
        free(ng->key);
        e->gone_failed = true;
        return;
    }
    if (key)
        memcpy(ng->key, key, keylen);
    e->ngone++;
}

static void group_free(corr_engine *e, cgroup *g)
{
    cgroup **pp = &e->bucket[g->hash & (e->nbucket - 1)];

    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    ce_dirty_unlink(e, g);
    if (g->saved)
        ce_add_gone(e, e->pkey[g->rule], g->text, g->textlen);
    ce_lru_unlink(&e->rst[g->rule], g);
    e->rst[g->rule].ngroups--;
    e->ngroups--;
    e->st.memory_bytes -= ce_group_bytes(e, g);
    free(g->ts);
    free(g->val);
    free(g->stage);
    free(g);
}

static void evict_tail(corr_engine *e, uint32_t rule, const cgroup *keep)
{
    cgroup *t = e->rst[rule].tail;

    if (t == keep)
        t = t ? t->prev : NULL;
    if (t) {
        group_free(e, t);
        e->st.groups_evicted++;
    }
}

bool ce_grow_table(corr_engine *e)
{
    uint32_t nb = e->nbucket * 2;
    cgroup **b = calloc(nb, sizeof(*b));

    if (!b)
        return false;
    /* Rehash walking old buckets in order: deterministic chain order. */
    for (uint32_t i = 0; i < e->nbucket; i++) {
        cgroup *g = e->bucket[i], *nx;

        for (; g; g = nx) {
            nx = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
        }
    }
    e->st.memory_bytes += (size_t)(nb - e->nbucket) * sizeof(*b);
    free(e->bucket);
    e->bucket = b;
    e->nbucket = nb;
    return true;
}

static void reset_state(const struct corr_rule *r, cgroup *g)
{
    g->nent = 0;
    if (g->stage)
        for (uint32_t i = 0; i < (r->type == CORR_TEMPORAL_ORDERED ? 2 : 1) * r->nrefs; i++)
            g->stage[i] = NO_TS;
}

cgroup *ce_group_get(corr_engine *e, uint32_t rule, uint64_t h, const char *text, uint32_t keylen,
                     uint32_t textlen, int64_t ts)
{
    const struct corr_rule *r = &e->rs->corrs[rule];
    rstate *rst = &e->rst[rule];
    cgroup *g;
    size_t need;

    for (g = e->bucket[h & (e->nbucket - 1)]; g; g = g->hnext)
        if (g->hash == h && g->rule == rule && g->keylen == keylen &&
            !memcmp(g->text, text, keylen))
            return g;
    while (rst->ngroups >= e->lim.max_groups_per_rule && rst->tail)
        evict_tail(e, rule, NULL);
    need = corr_memory_per_group(r, 0) + textlen;
    while (e->st.memory_bytes + need > e->lim.max_memory && rst->tail)
        evict_tail(e, rule, NULL);
    if (e->st.memory_bytes + need > e->lim.max_memory)
        return NULL;
    g = calloc(1, sizeof(*g) + textlen);
    if (!g)
        return NULL;
    if (r->type == CORR_TEMPORAL || r->type == CORR_TEMPORAL_ORDERED) {
        g->stage =
            malloc((r->type == CORR_TEMPORAL_ORDERED ? 2 : 1) * r->nrefs * sizeof(*g->stage));
        if (!g->stage) {
            free(g);
            return NULL;
        }
    }
    memcpy(g->text, text, textlen);
    g->hash = h;
    g->rule = rule;
    g->keylen = keylen;
    g->textlen = textlen;
    g->newest = ts;
    g->win_start = g->first = g->last = ts;
    reset_state(r, g);
    g->hnext = e->bucket[h & (e->nbucket - 1)];
    e->bucket[h & (e->nbucket - 1)] = g;
    g->seq = ++e->touch;
    ce_lru_push_head(rst, g);
    rst->ngroups++;
    e->ngroups++;
    e->st.groups_created++;
    e->st.memory_bytes += ce_group_bytes(e, g);
    if (r->at_close && ts + r->timespan_ms < e->next_deadline)
        e->next_deadline = ts + r->timespan_ms;
    if (e->ngroups > (uint64_t)e->nbucket * 3 / 4)
        ce_grow_table(e); /* failure only makes chains longer */
    return g;
}

/* Makes room for one more entry; false (entry not stored) when memory is exhausted. */
bool ce_reserve(corr_engine *e, cgroup *g)
{
    const struct corr_rule *r = &e->rs->corrs[g->rule];
    uint32_t ncap;
    size_t add;
    int64_t *ts;

    if (g->nent < g->cap)
        return true;
    ncap = g->cap ? g->cap * 2 : 4;
    if (ncap > e->rst[g->rule].cap)
        ncap = e->rst[g->rule].cap;
    if (ncap <= g->cap)
        return false;
    add = corr_memory_per_group(r, ncap) - corr_memory_per_group(r, g->cap);
    while (e->st.memory_bytes + add > e->lim.max_memory && e->rst[g->rule].ngroups > 1)
        evict_tail(e, g->rule, g);
    if (e->st.memory_bytes + add > e->lim.max_memory)
        return false;
    ts = realloc(g->ts, ncap * sizeof(*ts));
    if (!ts)
        return false;
    g->ts = ts;
    if (r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM) {
        uint64_t *v = realloc(g->val, ncap * sizeof(*v));

        if (!v)
            return false;
        g->val = v;
    }
    g->cap = ncap;
    e->st.memory_bytes += add;
    return true;
}

/* Inserts (ts, v) keeping entries sorted by time (stable: after equal times). */
static void insert_sorted(cgroup *g, int64_t ts, uint64_t v)
{
    uint32_t p = g->nent;

    while (p > 0 && g->ts[p - 1] > ts)
        p--;
    memmove(g->ts + p + 1, g->ts + p, (g->nent - p) * sizeof(*g->ts));
    g->ts[p] = ts;
    if (g->val) {
        memmove(g->val + p + 1, g->val + p, (g->nent - p) * sizeof(*g->val));
        g->val[p] = v;
    }
    g->nent++;
}

/* Drops entries older than the window ending at `end` (sorted entries). */
static void prune_sorted(cgroup *g, int64_t end, int64_t T)
{
    uint32_t k = 0;

    while (k < g->nent && g->ts[k] <= end - T)
        k++;
    if (!k)
        return;
    memmove(g->ts, g->ts + k, (g->nent - k) * sizeof(*g->ts));
    if (g->val)
        memmove(g->val, g->val + k, (g->nent - k) * sizeof(*g->val));
    g->nent -= k;
}

typedef struct {
    corr_emit_fn emit;
    void *arg;
    const event_view *root;
} emitter;

static void feed_ref(corr_engine *e, uint32_t ci, uint32_t ri, const src *s, int64_t ts,
                     const emitter *em);

/* Reports a match of correlation ci for group g and feeds the correlations using it. */
static void fire(corr_engine *e, uint32_t ci, const cgroup *g, int64_t wstart, int64_t first,
                 int64_t last, double value, const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    sv slots[CORR_MAX_GROUPBY];
    const char *p;
    uint64_t v = value <= 0 ? 0 : value >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)value;
    src s;

    e->st.emits++;
    if (em->emit)
        em->emit(em->arg, r, g->text, wstart, first, last, v, em->root);
    if (e->cd_off[ci] == e->cd_off[ci + 1])
        return;
    /* The chained match carries the group-by values (copied: g may go away below). */
    {
        char text[KEY_MAX];

        memcpy(text, g->text, g->textlen);
        p = text + g->keylen + 1;
        memset(slots, 0, sizeof(slots));
        for (uint32_t k = 0; k < r->ngroup_by; k++) {
            slots[k].type = SV_STR;
            slots[k].s = p;
            slots[k].len = strlen(p);
            p += slots[k].len + 1;
        }
        s.ev = NULL;
        s.slots = slots;
        s.nslots = r->ngroup_by;
        for (uint32_t d = e->cd_off[ci]; d < e->cd_off[ci + 1]; d++)
            feed_ref(e, e->cd[d].corr, e->cd[d].ref, &s, last, em);
    }
}

/* Closes at-close windows of g that end at or before `upto`. Returns false if g was freed. */
static bool close_windows(corr_engine *e, cgroup *g, int64_t upto, const emitter *em)
{
    uint32_t ci = g->rule;
    const struct corr_rule *r = &e->rs->corrs[ci];
    int64_t T = r->timespan_ms;

    if (g->win_start + T <= upto)
        ce_mark_dirty(e, g);
    while (g->win_start + T <= upto) {
        bool empty = g->count == 0;
        double x = r->type == CORR_VALUE_SUM ? g->sum : (double)g->count;

        if (cond_true(r, x)) {
            emitter quiet = *em;

            quiet.root = NULL;
            fire(e, ci, g, g->win_start, empty ? g->win_start : g->first,
                 empty ? g->win_start : g->last, x, &quiet);
        }
        if (empty) {
            group_free(e, g);
            e->st.groups_expired++;
            return false;
        }
        g->win_start += T;
        g->count = 0;
        g->sum = 0;
        g->nent = 0;
    }
    return true;
}

/* Closes every at-close window that the watermark (minus lateness) has passed. */
static void sweep(corr_engine *e, const emitter *em)
{
    int64_t upto = e->wm - e->lim.allowed_lateness_ms;
    int64_t next = INT64_MAX;

    if (e->wm == NO_TS || upto < e->next_deadline)
        return;
    e->next_deadline = INT64_MAX; /* chained matches during the sweep may lower it */
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        const struct corr_rule *r = &e->rs->corrs[ci];
        cgroup *g, *prev;

        if (!r->at_close)
            continue;
        /* oldest first, so emits come out in a stable order */
        for (g = e->rst[ci].tail; g; g = prev) {
            prev = g->prev;
            if (close_windows(e, g, upto, em) && g->win_start + r->timespan_ms < next)
                next = g->win_start + r->timespan_ms;
        }
    }
    /* At most one sweep per SWEEP_STEP_MS of event time: with many groups whose windows
     * end at different times, a sweep per event would cost O(groups) per event. A window
     * may so close up to that much later; its content and the emit are the same. */
    if (next < upto + SWEEP_STEP_MS)
        next = upto + SWEEP_STEP_MS;
    if (next < e->next_deadline)
        e->next_deadline = next;
}

/* Frees sliding-window groups whose newest event left every window the watermark allows. */
static void expire_idle(corr_engine *e)
{
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        const struct corr_rule *r = &e->rs->corrs[ci];
        int64_t limit = e->wm - r->timespan_ms - e->lim.allowed_lateness_ms;

        if (r->at_close)
            continue;
        while (e->rst[ci].tail && e->rst[ci].tail->newest <= limit) {
            group_free(e, e->rst[ci].tail);
            e->st.groups_expired++;
        }
    }
}

static void advance(corr_engine *e, int64_t ts, const emitter *em)
{
    if (e->wm != NO_TS && ts <= e->wm) {
        if (e->next_deadline == INT64_MIN) { /* corr_admit moved the watermark */
            sweep(e, em);
            expire_idle(e);
        }
        return;
    }
    e->wm = ts;
    sweep(e, em);
    expire_idle(e);
}

static void feed_at_close(corr_engine *e, uint32_t ci, cgroup *g, int64_t ts, uint64_t hv,
                          double num)
{
    const struct corr_rule *r = &e->rs->corrs[ci];

    if (ts < g->win_start) {
        e->st.late_dropped++;
        return;
    }
    if (g->count == 0)
        g->first = g->last = ts;
    if (ts < g->first)
        g->first = ts;
    if (ts > g->last)
        g->last = ts;
    switch (r->type) {
    case CORR_EVENT_COUNT:
        g->count++;
        break;
    case CORR_VALUE_SUM:
        g->sum += num;
        g->count++; /* events in the window (empty-window detection) */
        break;
    case CORR_VALUE_COUNT: {
        bool seen = false;

        for (uint32_t i = 0; i < g->nent && !seen; i++)
            seen = g->val[i] == hv;
        if (!seen) {
            if (ce_reserve(e, g)) {
                g->ts[g->nent] = ts;
                g->val[g->nent++] = hv;
            } else {
                e->st.entries_capped++;
            }
        }
        /* count = distinct values, at least 1 once an event was seen */
        g->count = g->nent ? g->nent : 1;
        break;
    }
    default:
        break;
    }
}

static void feed_sliding(corr_engine *e, uint32_t ci, uint32_t ri, cgroup *g, int64_t ts,
                         uint64_t hv, double num, const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    const rstate *rst = &e->rst[ci];
    int64_t T = r->timespan_ms, end, first = ts;
    double x = 0;
    bool hit = false;

    if (ts <= g->newest - T) { /* outside the window of the group's newest event */
        e->st.late_dropped++;
        return;
    }
    if (ts > g->newest)
        g->newest = ts;
    end = g->newest;
    switch (r->type) {
    case CORR_EVENT_COUNT:
        prune_sorted(g, end, T);
        if (!ce_reserve(e, g)) { /* threshold above the per-group cap, or no memory */
            e->st.entries_capped++;
            return;
        }
        insert_sorted(g, ts, 0);
        if (g->nent >= rst->need) {
            hit = true;
            first = g->ts[0];
            x = g->nent;
        }
        break;
    case CORR_VALUE_SUM:
        prune_sorted(g, end, T);
        if (g->nent == rst->cap && g->nent >= 2) {
            /* merge the two oldest, keeping the newer time (never under-counts) */
            double a, b;

            memcpy(&a, &g->val[0], sizeof(a));
            memcpy(&b, &g->val[1], sizeof(b));
            b += a;
            memcpy(&g->val[1], &b, sizeof(b));
            memmove(g->ts, g->ts + 1, (g->nent - 1) * sizeof(*g->ts));
            memmove(g->val, g->val + 1, (g->nent - 1) * sizeof(*g->val));
            g->nent--;
            e->st.entries_merged++;
        }
        if (!ce_reserve(e, g)) {
            e->st.entries_capped++;
            return;
        }
        memcpy(&hv, &num, sizeof(hv));
        insert_sorted(g, ts, hv);
        for (uint32_t i = 0; i < g->nent; i++) {
            double v;

            memcpy(&v, &g->val[i], sizeof(v));
            x += v;
        }
        first = g->ts[0];
        hit = cond_true(r, x);
        break;
    case CORR_VALUE_COUNT: {
        uint32_t i, k = 0;

        /* drop values not seen in the window, then add or refresh this one */
        for (i = 0; i < g->nent; i++)
            if (g->ts[i] > end - T) {
                g->ts[k] = g->ts[i];
                g->val[k++] = g->val[i];
            }
        g->nent = k;
        for (i = 0; i < g->nent && g->val[i] != hv; i++)
            ;
        if (i < g->nent) {
            if (ts > g->ts[i])
                g->ts[i] = ts;
        } else if (ce_reserve(e, g)) {
            g->ts[g->nent] = ts;
            g->val[g->nent++] = hv;
        } else {
            e->st.entries_capped++;
        }
        if (g->nent >= rst->need) {
            hit = true;
            x = g->nent;
            for (i = 0; i < g->nent; i++)
                if (g->ts[i] < first)
                    first = g->ts[i];
        }
        break;
    }
    case CORR_TEMPORAL: {
        uint32_t n = 0;

        if (ts > g->stage[ri])
            g->stage[ri] = ts;
        first = end;
        for (uint32_t k = 0; k < r->nrefs; k++)
            if (g->stage[k] != NO_TS && g->stage[k] > end - T) {
                n++;
                if (g->stage[k] < first)
                    first = g->stage[k];
            }
        if (n >= rst->need) {
            hit = true;
            x = n;
        }
        break;
    }
    case CORR_TEMPORAL_ORDERED: {
        int64_t *start = g->stage, *fin = g->stage + r->nrefs;

        if (ri == 0) {
            if (start[0] == NO_TS || ts > start[0])
                start[0] = fin[0] = ts;
        } else if (start[ri - 1] != NO_TS && ts >= fin[ri - 1] && start[ri - 1] > ts - T &&
                   (start[ri] == NO_TS || start[ri - 1] > start[ri])) {
            start[ri] = start[ri - 1];
            fin[ri] = ts;
        }
        if (start[r->nrefs - 1] != NO_TS && start[r->nrefs - 1] > end - T) {
            hit = true;
            first = start[r->nrefs - 1];
            end = fin[r->nrefs - 1];
            x = r->nrefs;
        }
        break;
    }
    }
    if (!hit)
        return;
    reset_state(r, g);
    fire(e, ci, g, end - T + 1, first, end, x, em);
}

static void feed_ref(corr_engine *e, uint32_t ci, uint32_t ri, const src *s, int64_t ts,
                     const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    const corr_ref *f = &r->refs[ri];
    uint32_t keylen;
    size_t textlen;
    uint64_t h, hv = 0;
    double num = 0;
    cgroup *g;

    textlen = build_key(e, r, f, s, &keylen);
    if (!textlen) {
        e->st.no_group_value++;
        return;
    }
    if (r->type == CORR_VALUE_COUNT) {
        const char *v;
        char tmp[64];
        size_t len;

        if (!(v = sigma_value_text(src_get(s, f->value), tmp, sizeof(tmp), &len))) {
            e->st.no_group_value++;
            return;
        }
        hv = fnv1a(FNV_BASIS, v, len);
    } else if (r->type == CORR_VALUE_SUM && !sigma_value_number(src_get(s, f->value), &num)) {
        e->st.no_group_value++;
        return;
    }
    h = ce_group_hash(ci, e->keybuf, keylen);
    g = ce_group_get(e, ci, h, e->keybuf, keylen, (uint32_t)textlen, ts);
    if (!g) {
        e->st.matches_dropped++;
        return;
    }
    ce_mark_dirty(e, g);
    ce_lru_unlink(&e->rst[ci], g);
    g->seq = ++e->touch;
    ce_lru_push_head(&e->rst[ci], g);
    if (r->at_close) {
        if (ts >= g->win_start + r->timespan_ms) {
            emitter quiet = *em;
            char text[KEY_MAX];

            /* chained matches of the closing windows reuse e->keybuf */
            memcpy(text, e->keybuf, textlen);
            quiet.root = NULL;
            if (!close_windows(e, g, ts, &quiet)) {
                g = ce_group_get(e, ci, h, text, keylen, (uint32_t)textlen, ts);
                if (!g) {
                    e->st.matches_dropped++;
                    return;
                }
                ce_mark_dirty(e, g);
            }
            if (g->win_start + r->timespan_ms < e->next_deadline)
                e->next_deadline = g->win_start + r->timespan_ms;
        }
        if (ts > g->newest)
            g->newest = ts;
        feed_at_close(e, ci, g, ts, hv, num);
        return;
    }
    feed_sliding(e, ci, ri, g, ts, hv, num, em);
}

static uint64_t fp_str(uint64_t h, const char *s)
{
    /* the NUL too: ("ab", "c") and ("a", "bc") differ; NULL differs from "" */
    return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "\xff", 1);
}

/*
 * The name of correlation r in checkpoints: its id (else name, else title) and a hash
 * of everything that shapes its windows (what same_definition() compares), so state
 * saved under another definition of the rule is never restored into this one.
 */
static char *rule_pkey(const struct corr_rule *r)
{
    const char *id = r->id ? r->id : r->name ? r->name : r->title ? r->title : "";
    uint64_t h = FNV_BASIS;
    uint32_t t = (uint32_t)r->type;
    char *out;
    size_t n;

    h = fp_str(fp_str(h, r->id), r->name);
    h = fnv1a(h, &t, sizeof(t));
    h = fnv1a(h, &r->timespan_ms, sizeof(r->timespan_ms));
    for (uint32_t i = 0; i < r->nconds; i++) {
        uint32_t op = (uint32_t)r->conds[i].op;

        h = fnv1a(h, &op, sizeof(op));
        h = fnv1a(h, &r->conds[i].value, sizeof(r->conds[i].value));
    }
    for (uint32_t i = 0; i < r->nrefs; i++)
        h = fp_str(h, r->refs[i].name);
    h = fnv1a(h, "|", 1);
    for (uint32_t i = 0; i < r->ngroup_by; i++)
        h = fp_str(h, r->group_by[i]);
    h = fnv1a(h, "|", 1);
    for (uint32_t i = 0; i < r->naliases; i++)
        h = fp_str(fp_str(fp_str(h, r->aliases[i].alias), r->aliases[i].rule), r->aliases[i].field);
    h = fp_str(h, r->value_field);
    n = strlen(id) + 18;
    if ((out = malloc(n)))
        snprintf(out, n, "%s#%016" PRIx64, id, h);
    return out;
}

static bool make_pkeys(corr_engine *e)
{
    for (uint32_t c = 0; c < e->rs->ncorrs; c++)
        if (!(e->pkey[c] = rule_pkey(&e->rs->corrs[c])))
            return false;
    return true;
}

/* Count of deps and fill, for a reference predicate. Sorted by (corr asc, ref desc). */
static bool build_deps(corr_engine *e)
{
    const ruleset *rs = e->rs;
    uint32_t total = 0;

    e->rd_off = calloc(rs->nrules + 1, sizeof(uint32_t));
    e->cd_off = calloc(rs->ncorrs + 1, sizeof(uint32_t));
    if (!e->rd_off || !e->cd_off)
        return false;
    for (uint32_t c = 0; c < rs->ncorrs; c++)
        total += rs->corrs[c].nrefs;
    e->rd = calloc(total ? total : 1, sizeof(dep));
    e->cd = calloc(total ? total : 1, sizeof(dep));
    if (!e->rd || !e->cd)
        return false;
    for (int pass = 0; pass < 2; pass++) {
        corr_ref_kind kind = pass == 0 ? CORR_REF_RULE : CORR_REF_CORR;
        uint32_t n = pass == 0 ? rs->nrules : rs->ncorrs;
        uint32_t *off = pass == 0 ? e->rd_off : e->cd_off;
        dep *d = pass == 0 ? e->rd : e->cd;
        uint32_t m = 0;

        for (uint32_t i = 0; i < n; i++) {
            off[i] = m;
            for (uint32_t c = 0; c < rs->ncorrs; c++)
                for (uint32_t k = rs->corrs[c].nrefs; k-- > 0;)
                    if (rs->corrs[c].refs[k].kind == kind && rs->corrs[c].refs[k].index == i) {
                        d[m].corr = c;
                        d[m++].ref = k;
                    }
        }
        off[n] = m;
    }
    return true;
}

corr_engine *corr_engine_new(const ruleset *rs, const corr_limits *lim)
{
    corr_engine *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->rs = rs;
    if (lim)
        e->lim = *lim;
    if (!e->lim.max_groups_per_rule)
        e->lim.max_groups_per_rule = DEF_MAX_GROUPS;
    if (!e->lim.max_memory)
        e->lim.max_memory = DEF_MAX_MEM;
    if (!e->lim.max_entries_per_group)
        e->lim.max_entries_per_group = DEF_MAX_ENT;
    if (e->lim.allowed_lateness_ms < 0)
        e->lim.allowed_lateness_ms = 0;
    if (e->lim.max_ahead_ms <= 0)
        e->lim.max_ahead_ms = DEF_MAX_AHEAD;
    if (!e->lim.resync_events)
        e->lim.resync_events = DEF_RESYNC;
    e->wm = NO_TS;
    e->next_deadline = INT64_MAX;
    e->nbucket = 1024;
    e->bucket = calloc(e->nbucket, sizeof(*e->bucket));
    e->rst = calloc(rs->ncorrs ? rs->ncorrs : 1, sizeof(*e->rst));
    e->pkey = calloc(rs->ncorrs ? rs->ncorrs : 1, sizeof(*e->pkey));
    if (!e->bucket || !e->rst || !e->pkey || !build_deps(e) || !make_pkeys(e)) {
        corr_engine_free(e);
        return NULL;
    }
    e->st.memory_bytes = e->nbucket * sizeof(*e->bucket);
    for (uint32_t c = 0; c < rs->ncorrs; c++) {
        const struct corr_rule *r = &rs->corrs[c];
        rstate *st = &e->rst[c];
        double lo = 1, hi = 0;

        for (uint32_t i = 0; i < r->nconds; i++) {
            double v = r->conds[i].value;

            if (r->conds[i].op == CORR_GT && floor(v) + 1 > lo)
                lo = floor(v) + 1;
            if (r->conds[i].op == CORR_GTE && ceil(v) > lo)
                lo = ceil(v);
            if (v + 2 > hi)
                hi = v + 2;
        }
        st->need = lo > UINT32_MAX ? UINT32_MAX : (uint32_t)lo;
        switch (r->type) {
        case CORR_EVENT_COUNT:
            st->cap = st->need; /* never more than `need` events held */
            break;
        case CORR_VALUE_COUNT: /* at-close: counts past every bound behave alike */
            st->cap = r->at_close ? (hi > UINT32_MAX ? UINT32_MAX : (uint32_t)hi) : st->need;
            break;
        default:
            st->cap = e->lim.max_entries_per_group;
            break;
        }
        if (st->cap > e->lim.max_entries_per_group)
            st->cap = e->lim.max_entries_per_group;
        if (st->cap < 2)
            st->cap = 2;
    }
    return e;
}

void corr_engine_free(corr_engine *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; e->bucket && i < e->nbucket; i++) {
        cgroup *g = e->bucket[i], *nx;

        for (; g; g = nx) {
            nx = g->hnext;
            free(g->ts);
            free(g->val);
            free(g->stage);
            free(g);
        }
    }
    free(e->bucket);
    free(e->rst);
    for (uint32_t i = 0; e->pkey && i < e->rs->ncorrs; i++)
        free(e->pkey[i]);
    free(e->pkey);
    for (uint32_t i = 0; i < e->ngone; i++) {
        free(e->gone[i].rule);
        free(e->gone[i].key);
    }
    free(e->gone);
    free(e->rd_off);
    free(e->rd);
    free(e->cd_off);
    free(e->cd);
    free(e);
}

void corr_feed(corr_engine *e, uint32_t detection_rule_index, const event_view *ev, int64_t ts_ms,
               corr_emit_fn emit, void *arg)
{
    emitter em = {.emit = emit, .arg = arg, .root = ev};
    src s = {.ev = ev};

    if (detection_rule_index >= e->rs->nrules)
        return;
    advance(e, ts_ms, &em);
    for (uint32_t d = e->rd_off[detection_rule_index]; d < e->rd_off[detection_rule_index + 1]; d++)
        feed_ref(e, e->rd[d].corr, e->rd[d].ref, &s, ts_ms, &em);
}

bool corr_admit(corr_engine *e, int64_t ts)
{
    int64_t w = e->lim.max_ahead_ms;
    uint32_t need = e->lim.resync_events;

    if (e->wm == NO_TS) {
        e->near_run = e->ahead_run = e->behind_run = 0;
        return true; /* corr_advance sets a tentative watermark */
    }
    if (ts > e->wm && ts - e->wm > w) {
        e->behind_run = 0;
        if (e->ahead_run == 0 || ts < e->ahead_min)
            e->ahead_min = ts;
        if (++e->ahead_run < need) {
            e->st.clock_ahead++;
            return false;
        }
        /* A run of them: time moved on. The watermark moves to the oldest of the run
         * (the next corr_advance sweeps); this event counts unless it is itself far
         * ahead of that. */
        e->st.clock_resyncs++;
        e->wm_firm = false;
        e->near_run = 0;
        e->ahead_run = 0;
        e->wm = e->ahead_min;
        e->next_deadline = INT64_MIN;
        if (ts - e->wm > w) {
            e->st.clock_ahead++;
            return false;
        }
        return true;
    }
    e->ahead_run = 0;
    if (!e->wm_firm && ts < e->wm && e->wm - ts > w) {
        if (e->behind_run == 0 || ts > e->behind_max)
            e->behind_max = ts;
        if (++e->behind_run >= need) {
            /* The tentative watermark came from an odd event: back to the run's time. */
            e->st.clock_resyncs++;
            e->wm = e->behind_max;
            e->next_deadline = INT64_MIN; /* the next advance sweeps */
            e->behind_run = 0;
            e->near_run = 0;
        }
        return true; /* late, as behind events are */
    }
    e->behind_run = 0;
    if (!e->wm_firm && ++e->near_run >= need)
        e->wm_firm = true;
    return true;
}

void corr_advance(corr_engine *e, int64_t ts_ms, corr_emit_fn emit, void *arg)
{
    emitter em = {.emit = emit, .arg = arg, .root = NULL};

    advance(e, ts_ms, &em);
}

bool corr_uses_rule(const corr_engine *e, uint32_t detection_rule_index)
{
    return detection_rule_index < e->rs->nrules &&
           e->rd_off[detection_rule_index] != e->rd_off[detection_rule_index + 1];
}

void corr_get_stats(const corr_engine *e, corr_stats *out)
{
    *out = e->st;
    out->groups_live = e->ngroups;
}
