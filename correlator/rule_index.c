/*
 * rule_index.c - see rule_index.h.
 *
 * Analysis: req_set = AND of requirements, each (field, {keys}). A key is the
 * case-folded text a literal matches, or BOOL_TRUE / BOOL_FALSE for a boolean
 * value. All combinations keep the result a necessary condition of the rule:
 *   and(a, b)  = a's requirements, plus b's on fields a does not constrain (two
 *                requirements on one field are not intersected: with a list field
 *                each may be met by a different item);
 *   or(a, b)   = on each field both constrain, the union of the two key sets;
 *   not(a)     = nothing.
 *
 * Lookup: one open-addressing table of (field slot, key) -> bitset of rules whose
 * requirement on that field accepts the key; per field, a bitset of the rules that
 * have a requirement on it. candidates = AND over fields of (~required | satisfied).
 */
#include "rule_index.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of boolean values. Event text "\x01t" would look them up too, which can only add
 * candidates, never hide one. (Written as two literals: "\x01f" is one hex escape.) */
#define BOOL_TRUE                                                                                  \
    "\x01"                                                                                         \
    "t"
#define BOOL_FALSE                                                                                 \
    "\x01"                                                                                         \
    "f"
#define KEY_MAX 256 /* longer literals are not indexed: no requirement */

typedef struct {
    char *s;
    uint32_t len;
} key;

typedef struct {
    field_id f;
    key *keys;
    uint32_t n, cap;
    uint32_t uniq; /* keys[0..uniq) are sorted and distinct (req_compact) */
} req;

typedef struct {
    req *r;
    uint32_t n;
} req_set;

typedef struct {
    uint32_t slot; /* index in ix->fields */
    uint32_t len;
    char *key;
    uint64_t hash;
    uint64_t *rules; /* ix->words words in ix->pool */
} entry;

typedef struct {
    field_id f;
    uint32_t maxlen;    /* longest text key: longer event values cannot meet it */
    bool has_text;      /* some rule wants a text value here */
    bool has_bool;      /* some rule wants a boolean here */
    uint64_t *required; /* rules with a requirement on this field */
} ifield;

struct rule_index {
    const sigma_rule *rules;
    uint32_t nrules, words;
    req_set *per_rule; /* nrules */
    ifield *fields;
    uint32_t nfields;
    entry *tab;
    uint32_t tabmask, nkeys;
    uint64_t *pool; /* bitsets: fields' required, entries' rules, then cand and sat */
    uint64_t *cand, *sat;
    uint32_t unindexed, nreqs;
    bool oom;
};

/* ---- requirement sets ------------------------------------------------------------ */

static void req_free(req *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        free(r->keys[i].s);
    free(r->keys);
    r->keys = NULL;
    r->n = r->cap = r->uniq = 0;
}

static void set_free(req_set *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        req_free(&s->r[i]);
    free(s->r);
    s->r = NULL;
    s->n = 0;
}

static bool key_eq(const key *a, const char *s, uint32_t len)
{
    return a->len == len && memcmp(a->s, s, len) == 0;
}

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sorts r's keys and removes duplicates. */
static void req_compact(req *r)
{
    uint32_t out = 0;

    if (r->n == r->uniq)
        return;
    qsort(r->keys, r->n, sizeof(*r->keys), key_cmp);
    for (uint32_t i = 0; i < r->n; i++) {
        if (out && key_eq(&r->keys[out - 1], r->keys[i].s, r->keys[i].len))
            free(r->keys[i].s);
        else
            r->keys[out++] = r->keys[i];
    }
    r->n = r->uniq = out;
}

/* Removes duplicate keys; short lists keep their order (rule_index_describe shows it). */
static void req_finish(req *r)
{
    uint32_t out = 0;

    if (r->n > 64) {
        req_compact(r);
        return;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        bool dup = false;

        for (uint32_t k = 0; k < out && !dup; k++)
            dup = key_eq(&r->keys[k], r->keys[i].s, r->keys[i].len);
        if (dup)
            free(r->keys[i].s);
        else
            r->keys[out++] = r->keys[i];
    }
    r->n = out;
}

/*
 * Adds key s (a copy) to r; false on allocation failure. Duplicates are removed
 * in bulk (req_compact) when the list has doubled since the last compaction, so
 * a selection of n literals costs O(n log n), not O(n^2) (an inline IOC list of
 * 200,000 values once took 25 s here).
 */
static bool req_add(req *r, const char *s, uint32_t len)
{
    char *c;

    if (r->n == r->cap) {
        uint32_t nc = r->cap ? r->cap * 2 : 4;
        key *nk = realloc(r->keys, nc * sizeof(*nk));

        if (!nk)
            return false;
        r->keys = nk;
        r->cap = nc;
    }
    if (!(c = malloc(len + 1)))
        return false;
    memcpy(c, s, len);
    c[len] = '\0';
    r->keys[r->n].s = c;
    r->keys[r->n++].len = len;
    if (r->n >= 2 * r->uniq + 64)
        req_compact(r);
    return true;
}

static req *set_find(const req_set *s, field_id f)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->r[i].f == f)
            return &s->r[i];
    return NULL;
}

/* Appends r (moved) to s; false on allocation failure (r is freed). */
static bool set_push(req_set *s, req *r)
{
    req *nr = realloc(s->r, (s->n + 1) * sizeof(*nr));

    if (!nr) {
        req_free(r);
        return false;
    }
    s->r = nr;
    s->r[s->n++] = *r;
    return true;
}

/* a := a AND b; b is consumed. */
static bool set_and(req_set *a, req_set *b)
{
    bool ok = true;

    for (uint32_t i = 0; i < b->n; i++) {
        if (!ok || set_find(a, b->r[i].f))
            req_free(&b->r[i]);
        else
            ok = set_push(a, &b->r[i]);
    }
    free(b->r);
    b->r = NULL;
    b->n = 0;
    return ok;
}

/* a := a OR b; b is consumed. */
static bool set_or(req_set *a, req_set *b)
{
    req_set out = {0};
    bool ok = true;

    for (uint32_t i = 0; i < a->n; i++) {
        req *other = set_find(b, a->r[i].f);

        if (!ok || !other) {
            req_free(&a->r[i]);
            continue;
        }
        for (uint32_t k = 0; ok && k < other->n; k++)
            ok = req_add(&a->r[i], other->keys[k].s, other->keys[k].len);
        if (ok)
            ok = set_push(&out, &a->r[i]);
        else
            req_free(&a->r[i]);
    }
    free(a->r);
    set_free(b);
    *a = out;
    return ok;
}

/* ---- analysis of a rule ---------------------------------------------------------- */

/* dst[0..n) = src[0..n) case-folded as the matchers fold (n <= KEY_MAX). */
static void fold_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)sigma_fold((unsigned char)src[i]);
}

/* The requirement a field condition makes, if any: *ok false on allocation failure. */
static bool cond_req(const field_cond *fc, req *out, bool *ok)
{
    char buf[KEY_MAX];

    memset(out, 0, sizeof(*out));
    if (fc->field == FIELD_NONE || fc->nvalues == 0)
        return false;
    for (uint32_t i = 0; i < fc->nvalues; i++) {
        const value_matcher *m = &fc->values[i];

        if (m->kind == VM_BOOL)
            continue;
        if (m->kind != VM_STRING || !m->literal || m->pattern_len > KEY_MAX)
            return false;
    }
    out->f = fc->field;
    /* Any value matching is necessary, with |all too (all match => one does). */
    for (uint32_t i = 0; i < fc->nvalues; i++) {
        const value_matcher *m = &fc->values[i];

        if (m->kind == VM_BOOL) {
            *ok = req_add(out, m->b ? BOOL_TRUE : BOOL_FALSE, 2);
        } else {
            fold_copy(buf, m->pattern, m->pattern_len);
            *ok = req_add(out, buf, (uint32_t)m->pattern_len);
        }
        if (!*ok) {
            req_free(out);
            return false;
        }
    }
    return true;
}

static bool map_reqs(const sel_map *map, req_set *out)
{
    bool ok = true;

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; ok && i < map->nconds; i++) {
        req r;

        if (cond_req(&map->conds[i], &r, &ok)) {
            req_set one = {0};

            ok = set_push(&one, &r) && set_and(out, &one);
            if (!ok)
                set_free(&one);
        }
    }
    return ok;
}

static bool sel_reqs(const selection *s, req_set *out)
{
    bool ok = true;

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; ok && i < s->nmaps; i++) {
        req_set m;

        ok = map_reqs(&s->maps[i], &m);
        if (!ok)
            set_free(&m);
        else if (i == 0)
            *out = m;
        else
            ok = set_or(out, &m);
    }
    return ok;
}

/*
 * The requirements of condition n. Chains of and/or are right-leaning
 * (sigma_cond.c): they are walked along b in a loop, so the recursion depth is
 * bounded by the parser's nesting limit, not by the length of the chain (a
 * 100,000-term `x or x or ...` once overflowed the stack here). Folding the
 * chain from the left gives what the nested calls gave: set_and keeps the first
 * requirement on a field, set_or intersects fields and unites keys, both
 * associative.
 */
static bool node_reqs(const sigma_rule *r, const cond_node *n, req_set *out)
{
    req_set a = {0}, b = {0};
    bool ok = true;

    memset(out, 0, sizeof(*out));
    switch (n->kind) {
    case CN_SEL:
        return sel_reqs(&r->sels[n->sel], out);
    case CN_NOT:
        return true;
    case CN_AND:
    case CN_OR: {
        const cond_node *x = n;
        bool first = true;

        for (;;) {
            const cond_node *operand = x->kind == n->kind ? x->a : x;

            ok = node_reqs(r, operand, &b);
            if (!ok)
                break;
            if (first) {
                a = b;
                memset(&b, 0, sizeof(b));
                first = false;
            } else {
                ok = n->kind == CN_AND ? set_and(&a, &b) : set_or(&a, &b);
                if (!ok)
                    break;
            }
            if (x->kind != n->kind)
                break;
            x = x->b;
        }
        set_free(&b);
        if (!ok)
            set_free(&a);
        *out = a;
        return ok;
    }
    case CN_ONE_OF:
    case CN_ALL_OF:
        for (uint32_t i = 0; ok && i < n->nsels; i++) {
            ok = sel_reqs(&r->sels[n->sels[i]], &b);
            if (!ok)
                break;
            if (i == 0) {
                a = b;
                memset(&b, 0, sizeof(b));
            } else {
                ok = n->kind == CN_ALL_OF ? set_and(&a, &b) : set_or(&a, &b);
            }
        }
        set_free(&b);
        if (!ok)
            set_free(&a);
        *out = a;
        return ok;
    }
    return true;
}

static bool rule_reqs(const sigma_rule *r, req_set *out)
{
    bool ok = true;

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; ok && i < r->nconds; i++) {
        req_set c;

        ok = node_reqs(r, r->conds[i], &c);
        if (!ok)
            set_free(&c);
        else if (i == 0)
            *out = c;
        else
            ok = set_or(out, &c);
    }
    if (ok && r->event_type && r->event_type_len <= KEY_MAX && r->event_type_field != FIELD_NONE) {
        /* sigma_rule_match compares exactly: the folded text is necessary */
        char buf[KEY_MAX];
        req et = {.f = r->event_type_field};
        req_set one = {0};

        fold_copy(buf, r->event_type, r->event_type_len);
        ok = req_add(&et, buf, r->event_type_len);
        if (!ok) {
            req_free(&et);
        } else {
            ok = set_push(&one, &et);
            /* the logsource first: it rules out the most */
            if (ok) {
                ok = set_and(&one, out);
                *out = one;
            }
        }
    }
    if (!ok)
        set_free(out);
    for (uint32_t i = 0; ok && i < out->n; i++)
        req_finish(&out->r[i]);
    return ok;
}

/* ---- the table ------------------------------------------------------------------- */

static uint64_t hash_key(uint32_t slot, const char *s, uint32_t len)
{
    uint64_t h = 1469598103934665603ULL ^ slot;

    for (uint32_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static entry *tab_find(const rule_index *ix, uint32_t slot, const char *s, uint32_t len, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & ix->tabmask;; i = (i + 1) & ix->tabmask) {
        entry *e = &ix->tab[i];

        if (!e->key)
            return e;
        if (e->hash == h && e->slot == slot && e->len == len && memcmp(e->key, s, len) == 0)
            return e;
    }
}

static uint32_t field_slot(rule_index *ix, field_id f)
{
    for (uint32_t i = 0; i < ix->nfields; i++)
        if (ix->fields[i].f == f)
            return i;
    return UINT32_MAX;
}

fh_err rule_index_build(rule_index **out, const sigma_rule *rules, uint32_t nrules)
{
    rule_index *ix = calloc(1, sizeof(*ix));
    uint32_t nkeys = 0, cap = 16, next = 0;
    size_t poolw;

    *out = NULL;
    if (!ix)
        return FH_ERR_NOMEM;
    ix->rules = rules;
    ix->nrules = nrules;
    ix->words = (nrules + 63) / 64;
    if (!ix->words)
        ix->words = 1;
    if (nrules && !(ix->per_rule = calloc(nrules, sizeof(*ix->per_rule))))
        goto oom;
    /* 1. requirements per rule; distinct fields; key count */
    for (uint32_t i = 0; i < nrules; i++) {
        req_set *s = &ix->per_rule[i];

        if (!rule_reqs(&rules[i], s))
            goto oom;
        if (s->n == 0)
            ix->unindexed++;
        ix->nreqs += s->n;
        for (uint32_t k = 0; k < s->n; k++) {
            if (field_slot(ix, s->r[k].f) == UINT32_MAX) {
                ifield *nf = realloc(ix->fields, (ix->nfields + 1) * sizeof(*nf));

                if (!nf)
                    goto oom;
                ix->fields = nf;
                memset(&nf[ix->nfields], 0, sizeof(*nf));
                nf[ix->nfields++].f = s->r[k].f;
            }
            nkeys += s->r[k].n;
        }
    }
    while (cap < 2 * nkeys + 2)
        cap *= 2;
    ix->tabmask = cap - 1;
    /* bitsets: one per field, one per key (at most), cand and sat */
    poolw = ((size_t)ix->nfields + nkeys + 2) * ix->words;
    if (!(ix->tab = calloc(cap, sizeof(*ix->tab))) || !(ix->pool = calloc(poolw, 8)))
        goto oom;
    for (uint32_t i = 0; i < ix->nfields; i++) {
        ix->fields[i].required = ix->pool + (size_t)next++ * ix->words;
    }
    ix->cand = ix->pool + (size_t)next++ * ix->words;
    ix->sat = ix->pool + (size_t)next++ * ix->words;
    /* 2. fill */
    for (uint32_t i = 0; i < nrules; i++) {
        const req_set *s = &ix->per_rule[i];

        for (uint32_t k = 0; k < s->n; k++) {
            uint32_t slot = field_slot(ix, s->r[k].f);
            ifield *fd = &ix->fields[slot];

            fd->required[i / 64] |= 1ULL << (i % 64);
            for (uint32_t v = 0; v < s->r[k].n; v++) {
                const key *kk = &s->r[k].keys[v];
                uint64_t h = hash_key(slot, kk->s, kk->len);
                entry *e = tab_find(ix, slot, kk->s, kk->len, h);

                if (!e->key) {
                    e->slot = slot;
                    e->len = kk->len;
                    e->key = kk->s; /* owned by per_rule, which lives as long */
                    e->hash = h;
                    e->rules = ix->pool + (size_t)next++ * ix->words;
                    ix->nkeys++;
                }
                e->rules[i / 64] |= 1ULL << (i % 64);
                if (kk->len == 2 && kk->s[0] == '\x01') {
                    fd->has_bool = true;
                } else {
                    fd->has_text = true;
                    if (kk->len > fd->maxlen)
                        fd->maxlen = kk->len;
                }
            }
        }
    }
    *out = ix;
    return FH_OK;
oom:
    rule_index_free(ix);
    return FH_ERR_NOMEM;
}

void rule_index_free(rule_index *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; ix->per_rule && i < ix->nrules; i++)
        set_free(&ix->per_rule[i]);
    free(ix->per_rule);
    free(ix->fields);
    free(ix->tab);
    free(ix->pool);
    free(ix);
}

/* ---- per event ------------------------------------------------------------------- */

static void or_key(rule_index *ix, uint32_t slot, const char *s, uint32_t len)
{
    const entry *e = tab_find(ix, slot, s, len, hash_key(slot, s, len));

    if (e->key)
        for (uint32_t w = 0; w < ix->words; w++)
            ix->sat[w] |= e->rules[w];
}

/* ORs into ix->sat the rules whose requirement on field `slot` value v meets. */
static void satisfy(rule_index *ix, uint32_t slot, const sv *v)
{
    const ifield *fd = &ix->fields[slot];
    char num[32], buf[KEY_MAX];
    const char *t;
    size_t len;
    bool b;

    if (v->type == SV_LIST) {
        for (size_t i = 0; i < v->len; i++)
            satisfy(ix, slot, &v->items[i]);
        return;
    }
    if (fd->has_bool && sigma_value_bool(v, &b))
        or_key(ix, slot, b ? BOOL_TRUE : BOOL_FALSE, 2);
    if (fd->has_text && (t = sigma_value_text(v, num, sizeof(num), &len)) && len <= fd->maxlen) {
        fold_copy(buf, t, len);
        or_key(ix, slot, buf, (uint32_t)len);
    }
}

uint32_t rule_index_candidates(rule_index *ix, const event_view *ev, uint32_t *out)
{
    uint32_t n = 0, W = ix->words;

    for (uint32_t w = 0; w < W; w++)
        ix->cand[w] = ~0ULL;
    if (ix->nrules % 64)
        ix->cand[W - 1] = (1ULL << (ix->nrules % 64)) - 1;
    for (uint32_t f = 0; f < ix->nfields; f++) {
        const ifield *fd = &ix->fields[f];
        uint64_t any = 0;

        memset(ix->sat, 0, W * sizeof(*ix->sat));
        satisfy(ix, f, event_get(ev, fd->f));
        for (uint32_t w = 0; w < W; w++) {
            ix->cand[w] &= ~fd->required[w] | ix->sat[w];
            any |= ix->cand[w];
        }
        if (!any)
            return 0;
    }
    for (uint32_t w = 0; w < W; w++)
        for (uint64_t bits = ix->cand[w]; bits; bits &= bits - 1)
            out[n++] = w * 64 + (uint32_t)__builtin_ctzll(bits);
    return n;
}

void rule_index_get_info(const rule_index *ix, rule_index_info *info)
{
    info->rules = ix->nrules;
    info->unindexed = ix->unindexed;
    info->fields = ix->nfields;
    info->keys = ix->nkeys;
    info->requirements = ix->nreqs;
}

void rule_index_describe(const rule_index *ix, const field_table *ft, uint32_t i, char *buf,
                         size_t len)
{
    const req_set *s = &ix->per_rule[i];
    size_t used = strlen(buf);

#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (used < len) {                                                                          \
            int w_ = snprintf(buf + used, len - used, __VA_ARGS__);                                \
            used += w_ > 0 ? (size_t)w_ : 0;                                                       \
        }                                                                                          \
    } while (0)
    for (uint32_t k = 0; k < s->n; k++) {
        PUT("%s%s in {", k ? "; " : "", s->r[k].f < ft->n ? ft->names[s->r[k].f] : "?");
        for (uint32_t v = 0; v < s->r[k].n; v++) {
            const key *kk = &s->r[k].keys[v];

            if (kk->len == 2 && kk->s[0] == '\x01')
                PUT("%s%s", v ? ", " : "", kk->s[1] == 't' ? "true" : "false");
            else
                PUT("%s%.*s", v ? ", " : "", (int)kk->len, kk->s);
        }
        PUT("}");
    }
#undef PUT
}
