/*
 * prefix_table.c - see prefix_table.h.
 */
#include "prefix_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

ptab_u128_t ptab_u128(int family, const uint8_t *a)
{
    ptab_u128_t v = 0;
    int n = family == AF_INET ? 4 : 16;

    for (int i = 0; i < n; i++)
        v = v << 8 | a[i];
    return v;
}

ptab_u128_t ptab_host_mask(int family, unsigned len)
{
    unsigned bits = family == AF_INET ? 32 : 128;

    if (len >= bits)
        return 0;
    if (len == 0 && bits == 128)
        return ~(ptab_u128_t)0;
    return (((ptab_u128_t)1) << (bits - len)) - 1;
}

/* ---- longest-prefix match ------------------------------------------------- */

int ptab_entry_cmp(const void *x, const void *y)
{
    const ptab_entry *a = x, *b = y;

    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    if (a->net != b->net)
        return a->net < b->net ? -1 : 1;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

typedef struct {
    ptab_u128_t *start, *end;
    uint32_t *rec;
    size_t n, cap;
} ivec;

static bool ivec_emit(ivec *v, ptab_u128_t s, ptab_u128_t e, uint32_t rec)
{
    if (v->n && v->rec[v->n - 1] == rec && v->end[v->n - 1] + 1 == s) {
        v->end[v->n - 1] = e;
        return true;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        ptab_u128_t *ns = realloc(v->start, cap * sizeof(*ns));
        ptab_u128_t *ne;
        uint32_t *nr;

        if (!ns)
            return false;
        v->start = ns;
        if (!(ne = realloc(v->end, cap * sizeof(*ne))))
            return false;
        v->end = ne;
        if (!(nr = realloc(v->rec, cap * sizeof(*nr))))
            return false;
        v->rec = nr;
        v->cap = cap;
    }
    v->start[v->n] = s;
    v->end[v->n] = e;
    v->rec[v->n] = rec;
    v->n++;
    return true;
}

/* Flattens p[0..n) (one family, sorted by ptab_entry_cmp, no duplicates) into v. */
static bool flatten(const ptab_entry *p, size_t n, ivec *v)
{
    struct {
        ptab_u128_t end;
        uint32_t rec;
    } stk[130];
    size_t sp = 0;
    ptab_u128_t cursor = 0;
    bool have_cursor = false;

#define POP_EMIT()                                                                                 \
    do {                                                                                           \
        sp--;                                                                                      \
        if (have_cursor && cursor <= stk[sp].end &&                                                \
            !ivec_emit(v, cursor, stk[sp].end, stk[sp].rec))                                       \
            return false;                                                                          \
        if (stk[sp].end == ~(ptab_u128_t)0 ||                                                      \
            (p[0].family == AF_INET && stk[sp].end == 0xFFFFFFFFu))                                \
            have_cursor = false;                                                                   \
        else                                                                                       \
            cursor = stk[sp].end + 1;                                                              \
    } while (0)

    for (size_t i = 0; i < n; i++) {
        ptab_u128_t s = p[i].net, e = p[i].net | ptab_host_mask(p[i].family, p[i].len);

        while (sp && stk[sp - 1].end < s)
            POP_EMIT();
        if (sp && have_cursor && cursor < s && !ivec_emit(v, cursor, s - 1, stk[sp - 1].rec))
            return false;
        stk[sp].end = e;
        stk[sp].rec = p[i].rec;
        sp++;
        cursor = s;
        have_cursor = true;
    }
    while (sp)
        POP_EMIT();
#undef POP_EMIT
    return true;
}

void ptab_free(ptab *t)
{
    free(t->v4.start);
    free(t->v4.end);
    free(t->v4.rec);
    free(t->v6.start);
    free(t->v6.end);
    free(t->v6.rec);
    memset(t, 0, sizeof(*t));
}

/* Builds t from p[0..n), which must be sorted by ptab_entry_cmp and free of duplicates. */
fh_err ptab_build(ptab *t, const ptab_entry *p, size_t n)
{
    size_t n4 = 0;
    ivec v = {0};
    fh_err rc = FH_ERR_NOMEM;

    memset(t, 0, sizeof(*t));
    while (n4 < n && p[n4].family == AF_INET)
        n4++;
    if (n4 && !flatten(p, n4, &v))
        goto out;
    if (v.n) {
        t->v4.start = malloc(v.n * sizeof(uint32_t));
        t->v4.end = malloc(v.n * sizeof(uint32_t));
        t->v4.rec = malloc(v.n * sizeof(uint32_t));
        if (!t->v4.start || !t->v4.end || !t->v4.rec)
            goto out;
        for (size_t i = 0; i < v.n; i++) {
            t->v4.start[i] = (uint32_t)v.start[i];
            t->v4.end[i] = (uint32_t)v.end[i];
            t->v4.rec[i] = v.rec[i];
        }
        t->v4.n = v.n;
    }
    v.n = 0;
    if (n > n4 && !flatten(p + n4, n - n4, &v))
        goto out;
    if (v.n) {
        /* hand the arrays over */
        t->v6.start = v.start;
        t->v6.end = v.end;
        t->v6.rec = v.rec;
        t->v6.n = v.n;
        v.start = v.end = NULL;
        v.rec = NULL;
    }
    rc = FH_OK;
out:
    free(v.start);
    free(v.end);
    free(v.rec);
    if (rc)
        ptab_free(t);
    return rc;
}

/* Record of the longest prefix covering addr, or PTAB_NONE. */
static uint32_t ptab_find4(const ptab4 *t, uint32_t a)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (t->start[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && a <= t->end[lo - 1] ? t->rec[lo - 1] : PTAB_NONE;
}

static uint32_t ptab_find6(const ptab6 *t, ptab_u128_t a)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (t->start[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && a <= t->end[lo - 1] ? t->rec[lo - 1] : PTAB_NONE;
}

uint32_t ptab_find(const ptab *t, int family, const uint8_t *addr)
{
    if (family == AF_INET)
        return ptab_find4(&t->v4, be32(addr));
    if (family == AF_INET6)
        return ptab_find6(&t->v6, ptab_u128(AF_INET6, addr));
    return PTAB_NONE;
}
