/*
 * corr_state.c - correlation window state that outlives one engine: moved to the
 * engine of a reloaded rule set (corr_engine_adopt) and saved in / restored from
 * the store's checkpoints (correlation.h, "checkpoints").
 */
#include "correlation_int.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- reload: keeping window state -------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Same correlation: identity (id, name) and everything that shapes its windows. */
static bool same_definition(const struct corr_rule *a, const struct corr_rule *b)
{
    if (!str_eq(a->id, b->id) || !str_eq(a->name, b->name) || a->type != b->type ||
        a->timespan_ms != b->timespan_ms || a->nconds != b->nconds || a->nrefs != b->nrefs ||
        a->ngroup_by != b->ngroup_by || a->naliases != b->naliases ||
        !str_eq(a->value_field, b->value_field))
        return false;
    for (uint32_t i = 0; i < a->nconds; i++)
        if (a->conds[i].op != b->conds[i].op || a->conds[i].value != b->conds[i].value)
            return false;
    for (uint32_t i = 0; i < a->nrefs; i++)
        if (!str_eq(a->refs[i].name, b->refs[i].name))
            return false;
    for (uint32_t i = 0; i < a->ngroup_by; i++)
        if (!str_eq(a->group_by[i], b->group_by[i]))
            return false;
    for (uint32_t i = 0; i < a->naliases; i++)
        if (!str_eq(a->aliases[i].alias, b->aliases[i].alias) ||
            !str_eq(a->aliases[i].rule, b->aliases[i].rule) ||
            !str_eq(a->aliases[i].field, b->aliases[i].field))
            return false;
    return true;
}

uint64_t corr_engine_adopt(corr_engine *to, corr_engine *from)
{
    uint64_t moved = 0;
    uint32_t *map;

    if (!to || !from)
        return 0;
    /* old rule index -> new rule index, or UINT32_MAX when changed or gone */
    map = malloc((from->rs->ncorrs ? from->rs->ncorrs : 1) * sizeof(*map));
    if (!map)
        return 0;
    for (uint32_t o = 0; o < from->rs->ncorrs; o++) {
        map[o] = UINT32_MAX;
        for (uint32_t n = 0; n < to->rs->ncorrs; n++)
            if (same_definition(&from->rs->corrs[o], &to->rs->corrs[n])) {
                map[o] = n;
                break;
            }
    }
    for (uint32_t o = 0; o < from->rs->ncorrs; o++) {
        rstate *ors = &from->rst[o];
        cgroup *g;

        if (map[o] == UINT32_MAX)
            continue;
        /* Oldest first, so the new LRU keeps the same order. */
        while ((g = ors->tail)) {
            uint32_t n = map[o];
            cgroup **pp = &from->bucket[g->hash & (from->nbucket - 1)];

            while (*pp && *pp != g)
                pp = &(*pp)->hnext;
            if (*pp)
                *pp = g->hnext;
            ce_lru_unlink(ors, g);
            ors->ngroups--;
            from->ngroups--;
            from->st.memory_bytes -= ce_group_bytes(from, g);
            if (g->dirty) {
                ce_dirty_unlink(from, g);
                ce_mark_dirty(to, g);
            }
            g->rule = n;
            g->hash = ce_group_hash(n, g->text, g->keylen);
            g->hnext = to->bucket[g->hash & (to->nbucket - 1)];
            to->bucket[g->hash & (to->nbucket - 1)] = g;
            ce_lru_push_head(&to->rst[n], g);
            to->rst[n].ngroups++;
            to->ngroups++;
            to->st.memory_bytes += ce_group_bytes(to, g);
            if (to->rs->corrs[n].at_close &&
                g->win_start + to->rs->corrs[n].timespan_ms < to->next_deadline)
                to->next_deadline = g->win_start + to->rs->corrs[n].timespan_ms;
            if (to->ngroups > (uint64_t)to->nbucket * 3 / 4)
                ce_grow_table(to);
            moved++;
        }
    }
    if (from->wm != NO_TS && (to->wm == NO_TS || from->wm > to->wm)) {
        to->wm = from->wm;
        to->wm_firm = from->wm_firm;
        to->near_run = from->near_run;
        to->ahead_run = from->ahead_run;
        to->ahead_min = from->ahead_min;
        to->behind_run = from->behind_run;
        to->behind_max = from->behind_max;
    }
    if (from->touch > to->touch)
        to->touch = from->touch;
    /* Checkpoint bookkeeping: what `from` still had to delete, and every saved group of
     * a rule that changed or went away (its state was not carried over). */
    for (uint32_t i = 0; i < from->ngone; i++) {
        ce_add_gone(to, from->gone[i].rule, from->gone[i].key, from->gone[i].keylen);
        free(from->gone[i].rule);
        free(from->gone[i].key);
    }
    from->ngone = 0;
    to->gone_failed |= from->gone_failed;
    for (uint32_t o = 0; o < from->rs->ncorrs; o++)
        if (map[o] == UINT32_MAX || strcmp(from->pkey[o], to->pkey[map[o]]) != 0)
            ce_add_gone(to, from->pkey[o], NULL, 0);
    free(map);
    return moved;
}

/* ---- checkpoints: window state in the store ------------------------------------------------- */

/*
 * A group's state as saved (host byte order: the database travels with the binary's
 * machine; a foreign or damaged blob fails the size checks and is dropped):
 *   u32 magic, u32 nent, u32 nstage, u32 pad,
 *   i64 newest, win_start, first, last, u64 count, f64 sum, u64 seq (LRU order),
 *   i64 ts[nent], u64 val[nent] (value types only), i64 stage[nstage]
 */
#define STATE_MAGIC 0x46484331u /* "FHC1" */

typedef struct {
    uint32_t magic, nent, nstage, pad;
    int64_t newest, win_start, first, last;
    uint64_t count;
    double sum;
    uint64_t seq;
} state_head;

static uint32_t nstage_of(const struct corr_rule *r)
{
    return r->type == CORR_TEMPORAL           ? r->nrefs
           : r->type == CORR_TEMPORAL_ORDERED ? 2 * r->nrefs
                                              : 0;
}

static bool has_val(const struct corr_rule *r)
{
    return r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM;
}

static size_t state_size(const struct corr_rule *r, uint32_t nent)
{
    return sizeof(state_head) + (size_t)nent * sizeof(int64_t) * (has_val(r) ? 2 : 1) +
           nstage_of(r) * sizeof(int64_t);
}

void corr_engine_track_changes(corr_engine *e, bool on)
{
    e->track = on;
}

fh_err corr_engine_checkpoint(corr_engine *e, corr_put_fn put, corr_del_fn del, void *arg)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    fh_err err = FH_OK;

    if (e->gone_failed)
        return FH_ERR_NOMEM;
    for (uint32_t i = 0; i < e->ngone && !err; i++)
        err = del(arg, e->gone[i].rule, e->gone[i].key, e->gone[i].keylen);
    for (cgroup *g = e->dirty; g && !err; g = g->dnext) {
        const struct corr_rule *r = &e->rs->corrs[g->rule];
        size_t n = state_size(r, g->nent);
        state_head h = {STATE_MAGIC, g->nent, nstage_of(r), 0,      g->newest, g->win_start,
                        g->first,    g->last, g->count,     g->sum, g->seq};
        unsigned char *p;

        if (n > cap) {
            unsigned char *nb = realloc(buf, n);

            if (!nb) {
                err = FH_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = n;
        }
        p = buf;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        if (g->nent) { /* (ts and val are NULL until the first entry) */
            memcpy(p, g->ts, g->nent * sizeof(int64_t));
            p += g->nent * sizeof(int64_t);
            if (has_val(r)) {
                memcpy(p, g->val, g->nent * sizeof(uint64_t));
                p += g->nent * sizeof(uint64_t);
            }
        }
        if (h.nstage)
            memcpy(p, g->stage, h.nstage * sizeof(int64_t));
        err = put(arg, e->pkey[g->rule], g->text, g->textlen, buf, n);
    }
    free(buf);
    if (err)
        return err;
    /* Written (the caller commits): clear the books. */
    for (uint32_t i = 0; i < e->ngone; i++) {
        free(e->gone[i].rule);
        free(e->gone[i].key);
    }
    e->ngone = 0;
    while (e->dirty) {
        cgroup *g = e->dirty;

        g->saved = true;
        ce_dirty_unlink(e, g);
    }
    return FH_OK;
}

fh_err corr_engine_restore(corr_engine *e, const char *rule, const void *key, size_t keylen,
                           const void *state, size_t len)
{
    const struct corr_rule *r = NULL;
    const unsigned char *p = state;
    const char *text = key;
    uint32_t ci, klen, nul = 0;
    state_head h;
    cgroup *g;

    for (ci = 0; ci < e->rs->ncorrs; ci++)
        if (!strcmp(e->pkey[ci], rule)) {
            r = &e->rs->corrs[ci];
            break;
        }
    if (!r)
        return FH_ERR_NOTFOUND;
    /* the key: "key\0" then one "value\0" per group-by name */
    if (keylen == 0 || keylen > KEY_MAX || text[keylen - 1] != '\0')
        return FH_ERR_PARSE;
    for (size_t i = 0; i < keylen; i++)
        nul += text[i] == '\0';
    if (nul != 1 + r->ngroup_by)
        return FH_ERR_PARSE;
    klen = (uint32_t)strlen(text);
    if (len < sizeof(h))
        return FH_ERR_PARSE;
    memcpy(&h, p, sizeof(h));
    if (h.magic != STATE_MAGIC || h.nstage != nstage_of(r) || h.nent > e->rst[ci].cap ||
        len != state_size(r, h.nent))
        return FH_ERR_PARSE;
    g = ce_group_get(e, ci, ce_group_hash(ci, text, klen), text, klen, (uint32_t)keylen, h.newest);
    if (!g)
        return FH_ERR_LIMIT;
    while (g->cap < h.nent) {
        g->nent = g->cap; /* ce_reserve() grows a full group only */
        if (!ce_reserve(e, g)) {
            g->nent = 0;
            return FH_ERR_LIMIT;
        }
    }
    g->nent = 0;
    p += sizeof(h);
    if (h.nent) {
        memcpy(g->ts, p, h.nent * sizeof(int64_t));
        p += h.nent * sizeof(int64_t);
        if (has_val(r)) {
            memcpy(g->val, p, h.nent * sizeof(uint64_t));
            p += h.nent * sizeof(uint64_t);
        }
    }
    if (h.nstage)
        memcpy(g->stage, p, h.nstage * sizeof(int64_t));
    g->nent = h.nent;
    g->newest = h.newest;
    g->win_start = h.win_start;
    g->first = h.first;
    g->last = h.last;
    g->count = h.count;
    g->sum = h.sum;
    g->seq = h.seq;
    g->saved = true;
    e->st.groups_created--; /* restored, not created by an event */
    if (r->at_close && g->win_start + r->timespan_ms < e->next_deadline)
        e->next_deadline = g->win_start + r->timespan_ms;
    return FH_OK;
}

void corr_engine_get_clock(const corr_engine *e, corr_clock *c)
{
    c->has_watermark = e->wm != NO_TS;
    c->watermark = c->has_watermark ? e->wm : 0;
    c->next_deadline = e->next_deadline;
    c->touch = e->touch;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = (*(cgroup *const *)a)->seq, y = (*(cgroup *const *)b)->seq;

    return x < y ? -1 : x > y;
}

fh_err corr_engine_restore_done(corr_engine *e, const corr_clock *c)
{
    cgroup **v = NULL;
    size_t cap = 0;

    if (c && c->has_watermark && (e->wm == NO_TS || c->watermark > e->wm))
        e->wm = c->watermark;
    if (c) {
        e->next_deadline = c->next_deadline;
        if (c->touch > e->touch)
            e->touch = c->touch;
    }
    /* Rows come back in key order: put each rule's LRU list back in touch order. */
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        rstate *rs = &e->rst[ci];
        size_t n = 0;

        if (rs->ngroups > cap) {
            cgroup **nv = realloc(v, rs->ngroups * sizeof(*nv));

            if (!nv) {
                free(v);
                return FH_ERR_NOMEM;
            }
            v = nv;
            cap = rs->ngroups;
        }
        if (rs->ngroups < 2)
            continue;
        for (cgroup *g = rs->head; g; g = g->next)
            v[n++] = g;
        qsort(v, n, sizeof(*v), by_seq);
        rs->head = rs->tail = NULL;
        for (size_t i = 0; i < n; i++) {
            v[i]->prev = v[i]->next = NULL;
            ce_lru_push_head(rs, v[i]);
        }
    }
    free(v);
    return FH_OK;
}
