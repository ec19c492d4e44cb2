/*
 * assets.c - asset inventory: YAML loader (libyaml document API), longest-prefix
 * match over sorted disjoint intervals, public-address test, enrichment of
 * decoded events and placeholder lists. Design notes in assets.h; the file
 * format is documented by rules/assets.example.yaml.
 *
 * Every string the object hands out (asset_info fields, zone_pair strings,
 * placeholder values) is allocated once at load and freed by assets_free().
 */
#include "assets.h"

#include "../common/fh_yaml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <yaml.h>

#include "../common/fh_addr.h"

typedef unsigned __int128 u128;

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

bool assets_is_public(int family, const uint8_t *a)
{
    return fh_addr_is_public(family, a);
}

/* ---- address parsing ----------------------------------------------------- */

static u128 addr_to_u128(int family, const uint8_t *a)
{
    u128 v = 0;
    int n = family == AF_INET ? 4 : 16;

    for (int i = 0; i < n; i++)
        v = v << 8 | a[i];
    return v;
}

static u128 host_mask(int family, unsigned len)
{
    unsigned bits = family == AF_INET ? 32 : 128;

    if (len >= bits)
        return 0;
    if (len == 0 && bits == 128)
        return ~(u128)0;
    return (((u128)1) << (bits - len)) - 1;
}

/* "addr/len" or a bare address (a /32 or /128): fh_cidr_parse (host bits refused). */
static fh_cidr_status parse_cidr(const char *s, int *family, u128 *net, unsigned *plen)
{
    uint8_t a[16];
    fh_cidr_status st = fh_cidr_parse(s, strlen(s), family, a, plen);

    if (st == FH_CIDR_OK)
        *net = addr_to_u128(*family, a);
    return st;
}

static bool parse_mac(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        char c = s[i];

        if (i % 3 == 2) {
            if (c != ':' && c != '-')
                return false;
            continue;
        }
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v << 4 | (uint64_t)((c | 0x20) - 'a' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

/* ---- longest-prefix match ------------------------------------------------- */

/*
 * Prefixes flattened into disjoint intervals sorted by start; each interval
 * carries the record of the most specific prefix covering it. Lookup: the last
 * interval whose start <= addr, if addr <= its end.
 */
typedef struct {
    uint32_t *start, *end, *rec;
    size_t n;
} lpm4;

typedef struct {
    u128 *start, *end;
    uint32_t *rec;
    size_t n;
} lpm6;

typedef struct {
    lpm4 v4;
    lpm6 v6;
} lpm;

typedef struct {
    int family;
    unsigned len;
    u128 net;
    uint32_t rec;
    size_t line;      /* for messages */
    const char *text; /* as written */
} pfx;

static int pfx_cmp(const void *x, const void *y)
{
    const pfx *a = x, *b = y;

    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    if (a->net != b->net)
        return a->net < b->net ? -1 : 1;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

typedef struct {
    u128 *start, *end;
    uint32_t *rec;
    size_t n, cap;
} ivec;

static bool ivec_emit(ivec *v, u128 s, u128 e, uint32_t rec)
{
    if (v->n && v->rec[v->n - 1] == rec && v->end[v->n - 1] + 1 == s) {
        v->end[v->n - 1] = e;
        return true;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        u128 *ns = realloc(v->start, cap * sizeof(*ns));
        u128 *ne;
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

/* Flattens p[0..n) (one family, sorted by pfx_cmp, no duplicates) into v. */
static bool flatten(const pfx *p, size_t n, ivec *v)
{
    struct {
        u128 end;
        uint32_t rec;
    } stk[130];
    size_t sp = 0;
    u128 cursor = 0;
    bool have_cursor = false;

#define POP_EMIT()                                                                                 \
    do {                                                                                           \
        sp--;                                                                                      \
        if (have_cursor && cursor <= stk[sp].end &&                                                \
            !ivec_emit(v, cursor, stk[sp].end, stk[sp].rec))                                       \
            return false;                                                                          \
        if (stk[sp].end == ~(u128)0 || (p[0].family == AF_INET && stk[sp].end == 0xFFFFFFFFu))     \
            have_cursor = false;                                                                   \
        else                                                                                       \
            cursor = stk[sp].end + 1;                                                              \
    } while (0)

    for (size_t i = 0; i < n; i++) {
        u128 s = p[i].net, e = p[i].net | host_mask(p[i].family, p[i].len);

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

static void lpm_free(lpm *t)
{
    free(t->v4.start);
    free(t->v4.end);
    free(t->v4.rec);
    free(t->v6.start);
    free(t->v6.end);
    free(t->v6.rec);
    memset(t, 0, sizeof(*t));
}

/* Builds t from p[0..n), which must be sorted by pfx_cmp and free of duplicates. */
static fh_err lpm_build(lpm *t, const pfx *p, size_t n)
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
        lpm_free(t);
    return rc;
}

/* Record of the longest prefix covering addr, or UINT32_MAX. */
static uint32_t lpm_find4(const lpm4 *t, uint32_t a)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (t->start[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && a <= t->end[lo - 1] ? t->rec[lo - 1] : UINT32_MAX;
}

static uint32_t lpm_find6(const lpm6 *t, u128 a)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (t->start[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && a <= t->end[lo - 1] ? t->rec[lo - 1] : UINT32_MAX;
}

static uint32_t lpm_find(const lpm *t, int family, const uint8_t *addr)
{
    if (family == AF_INET)
        return lpm_find4(&t->v4, be32(addr));
    if (family == AF_INET6)
        return lpm_find6(&t->v6, addr_to_u128(AF_INET6, addr));
    return UINT32_MAX;
}

/* ---- the object ----------------------------------------------------------- */

enum { Z_INTERNET = 0, Z_UNKNOWN = 1, Z_FIRST = 2 };

typedef struct {
    char *name;
    const char **vals;
    size_t n;
} plist;

typedef struct {
    u128 addr;
    uint64_t mac;
    int family;
} device;

typedef struct {
    const char *name;
    uint32_t zone;
    bool has_learning;
    int64_t learning_until_ms;
    lpm egress;
} segment;

struct assets {
    char **owned; /* every string handed out */
    size_t nowned, capowned;

    const char **zones; /* [0] internet, [1] unknown, then declared */
    uint32_t nzones;
    const char **departments;
    uint32_t ndepartments;
    const char **tenants;
    uint32_t ntenants;
    bool intra_allow, default_allow, tenant_isolation;
    const char **pair_str; /* nzones * nzones, "from->to" */
    bool *pair_allowed;

    segment *segs;
    uint32_t nsegs;
    asset_info *recs; /* segments first, then hosts */
    uint32_t nrecs, caprecs;
    lpm table;

    device *devices;
    size_t ndevices;

    plist *lists;
    size_t nlists;
};

static char *own(assets *a, const char *s, size_t len)
{
    char *d;

    if (a->nowned == a->capowned) {
        size_t cap = a->capowned ? a->capowned * 2 : 64;
        char **n = realloc(a->owned, cap * sizeof(*n));

        if (!n)
            return NULL;
        a->owned = n;
        a->capowned = cap;
    }
    if (!(d = malloc(len + 1)))
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    a->owned[a->nowned++] = d;
    return d;
}

void assets_free(assets *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nowned; i++)
        free(a->owned[i]);
    free(a->owned);
    free(a->zones);
    free(a->departments);
    free(a->tenants);
    free(a->pair_str);
    free(a->pair_allowed);
    for (uint32_t i = 0; i < a->nsegs; i++)
        lpm_free(&a->segs[i].egress);
    free(a->segs);
    free(a->recs);
    lpm_free(&a->table);
    free(a->devices);
    for (size_t i = 0; i < a->nlists; i++)
        free(a->lists[i].vals);
    free(a->lists);
    free(a);
}

const asset_info *assets_lookup(const assets *a, int family, const uint8_t *addr)
{
    uint32_t r;

    if (!a || !addr)
        return NULL;
    r = lpm_find(&a->table, family, addr);
    return r == UINT32_MAX ? NULL : &a->recs[r];
}

const asset_info *assets_lookup_str(const assets *a, const char *s, size_t len)
{
    uint8_t addr[16];
    int family;

    if (!fh_addr_parse(s, len, &family, addr))
        return NULL;
    return assets_lookup(a, family, addr);
}

fh_err assets_placeholder(const assets *a, const char *name, const char ***values, size_t *n)
{
    if (!a || !name)
        return FH_ERR_NOTFOUND;
    for (size_t i = 0; i < a->nlists; i++)
        if (!strcmp(a->lists[i].name, name)) {
            *values = a->lists[i].vals;
            *n = a->lists[i].n;
            return FH_OK;
        }
    return FH_ERR_NOTFOUND;
}

/* ---- loader --------------------------------------------------------------- */

typedef struct {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    assets *a;
    pfx *pfx; /* segment CIDRs, then host addresses */
    size_t npfx, cappfx;
    size_t *seg_line; /* line of each segment, for messages */
    yaml_node_t **seg_node;
} loader;

typedef yaml_node_t node;

static size_t line_of(const node *n)
{
    return fh_yaml_line(n);
}

/* Writes "PATH:LINE: [ctx: ]msg" (fh_error_at) and returns FH_ERR_CONFIG. */
__attribute__((format(printf, 4, 5))) static fh_err fail(loader *L, const node *n, const char *ctx,
                                                         const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fh_error_at(L->err, L->errlen, L->path, n ? fh_yaml_line(n) : 1, "%s%s%s", ctx ? ctx : "",
                ctx ? ": " : "", msg);
    return FH_ERR_CONFIG;
}

static node *get(loader *L, int idx)
{
    return fh_yaml_node(L->doc, idx);
}

static const char *sval(const node *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_str(const node *n)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length > 0 &&
           strlen(sval(n)) == n->data.scalar.length;
}

static const char *type_name(const node *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (n->data.scalar.length == 0)
        return "empty";
    return "a string";
}

/* Checks that every key of mapping m is in keys[] (NULL-terminated). */
static fh_err check_keys(loader *L, node *m, const char *ctx, const char *const *keys)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        node *k = get(L, p->key);
        bool ok = false;

        if (!is_str(k))
            return fail(L, k, ctx, "keys must be strings");
        for (size_t i = 0; keys[i]; i++)
            if (!strcmp(keys[i], sval(k)))
                ok = true;
        if (!ok)
            return fail(L, k, ctx, "unknown key '%s'", sval(k));
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++)
            if (!strcmp(sval(get(L, q->key)), sval(k)))
                return fail(L, k, ctx, "duplicate key '%s'", sval(k));
    }
    return FH_OK;
}

static node *map_get(loader *L, node *m, const char *key)
{
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        node *k = get(L, p->key);

        if (is_str(k) && !strcmp(sval(k), key))
            return get(L, p->value);
    }
    return NULL;
}

/* A required (or optional, *out = NULL when absent) non-empty string. */
static fh_err get_str(loader *L, node *m, const char *ctx, const char *key, bool required,
                      const char **out)
{
    node *v = map_get(L, m, key);

    *out = NULL;
    if (!v) {
        if (required)
            return fail(L, m, ctx, "missing '%s'", key);
        return FH_OK;
    }
    if (!is_str(v))
        return fail(L, v, ctx, "'%s' must be a string, not %s", key, type_name(v));
    if (!(*out = own(L->a, sval(v), v->data.scalar.length)))
        return FH_ERR_NOMEM;
    return FH_OK;
}

static fh_err expect_type(loader *L, node *n, const char *ctx, const char *what, yaml_node_type_t t)
{
    if (n->type == t)
        return FH_OK;
    return fail(L, n, ctx, "'%s' must be %s, not %s", what,
                t == YAML_MAPPING_NODE ? "a mapping" : "a list", type_name(n));
}

static fh_err get_bool(loader *L, node *v, const char *ctx, const char *key, bool *out)
{
    if (!is_str(v) || !fh_yaml_bool_text(sval(v), out))
        return fail(L, v, ctx, "'%s' must be true or false", key);
    return FH_OK;
}

static int find_name(const char *const *names, uint32_t n, const char *s)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -1;
}

/* A list of unique non-empty strings into *out (owned by a). */
static fh_err get_name_list(loader *L, node *v, const char *what, const char ***out, uint32_t *n,
                            uint32_t reserve)
{
    fh_err rc;
    size_t cnt;

    if ((rc = expect_type(L, v, NULL, what, YAML_SEQUENCE_NODE)))
        return rc;
    cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (!(*out = calloc(cnt + reserve + 1, sizeof(**out))))
        return FH_ERR_NOMEM;
    *n = reserve;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *e = get(L, *it);

        if (!is_str(e))
            return fail(L, e, NULL, "'%s' items must be strings, not %s", what, type_name(e));
        if (find_name(*out + reserve, *n - reserve, sval(e)) >= 0)
            return fail(L, e, NULL, "'%s': duplicate '%s'", what, sval(e));
        if (!((*out)[(*n)++] = own(L->a, sval(e), e->data.scalar.length)))
            return FH_ERR_NOMEM;
    }
    return FH_OK;
}

static fh_err add_list(loader *L, node *where, const char *name, const char **vals, size_t n)
{
    assets *a = L->a;
    plist *nl;

    for (size_t i = 0; i < a->nlists; i++)
        if (!strcmp(a->lists[i].name, name)) {
            free(vals);
            return fail(L, where, NULL, "placeholder '%s' is defined twice", name);
        }
    if (!(nl = realloc(a->lists, (a->nlists + 1) * sizeof(*nl)))) {
        free(vals);
        return FH_ERR_NOMEM;
    }
    a->lists = nl;
    nl[a->nlists].name = own(a, name, strlen(name));
    nl[a->nlists].vals = vals;
    nl[a->nlists].n = n;
    if (!nl[a->nlists].name) {
        free(vals);
        return FH_ERR_NOMEM;
    }
    a->nlists++;
    return FH_OK;
}

typedef enum { LV_ANY, LV_CIDR, LV_COUNTRY } list_kind;

/* A list of strings for a placeholder, validated per kind. */
static fh_err load_list(loader *L, node *v, const char *ctx, const char *key, const char *name,
                        list_kind kind)
{
    const char **vals;
    size_t n = 0, cnt;
    fh_err rc;

    if ((rc = expect_type(L, v, ctx, key, YAML_SEQUENCE_NODE)))
        return rc;
    cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (!(vals = calloc(cnt + 1, sizeof(*vals))))
        return FH_ERR_NOMEM;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *e = get(L, *it);
        int fam;
        u128 net;
        unsigned len;

        rc = FH_OK;
        if (!is_str(e))
            rc = fail(L, e, ctx, "'%s' items must be strings, not %s", key, type_name(e));
        else if (kind == LV_CIDR && parse_cidr(sval(e), &fam, &net, &len) != FH_CIDR_OK)
            rc = fail(L, e, ctx, "'%s': invalid address or CIDR '%s'", key, sval(e));
        else if (kind == LV_COUNTRY && (e->data.scalar.length != 2 || sval(e)[0] < 'A' ||
                                        sval(e)[0] > 'Z' || sval(e)[1] < 'A' || sval(e)[1] > 'Z'))
            rc = fail(L, e, ctx, "'%s': '%s' is not an ISO 3166 country code such as CN", key,
                      sval(e));
        else if (!(vals[n++] = own(L->a, sval(e), e->data.scalar.length)))
            rc = FH_ERR_NOMEM;
        if (rc) {
            free(vals);
            return rc;
        }
    }
    return add_list(L, v, name, vals, n);
}

static fh_err add_pfx(loader *L, int fam, u128 net, unsigned len, uint32_t rec, size_t line,
                      const char *text)
{
    if (L->npfx == L->cappfx) {
        size_t cap = L->cappfx ? L->cappfx * 2 : 64;
        pfx *n = realloc(L->pfx, cap * sizeof(*n));

        if (!n)
            return FH_ERR_NOMEM;
        L->pfx = n;
        L->cappfx = cap;
    }
    L->pfx[L->npfx++] = (pfx){fam, len, net, rec, line, text};
    return FH_OK;
}

static fh_err add_rec(assets *a, const asset_info *r)
{
    if (a->nrecs == a->caprecs) {
        uint32_t cap = a->caprecs ? a->caprecs * 2 : 32;
        asset_info *n = realloc(a->recs, cap * sizeof(*n));

        if (!n)
            return FH_ERR_NOMEM;
        a->recs = n;
        a->caprecs = cap;
    }
    a->recs[a->nrecs++] = *r;
    return FH_OK;
}

/* Parses a list of CIDRs into prefixes (rec = rec). */
static fh_err load_cidrs(loader *L, node *v, const char *ctx, const char *key, uint32_t rec,
                         pfx **out, size_t *nout)
{
    fh_err rc;

    if ((rc = expect_type(L, v, ctx, key, YAML_SEQUENCE_NODE)))
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *e = get(L, *it);
        int fam;
        u128 net;
        unsigned len;
        pfx *n;

        if (!is_str(e))
            return fail(L, e, ctx, "'%s' items must be strings, not %s", key, type_name(e));
        switch (parse_cidr(sval(e), &fam, &net, &len)) {
        case FH_CIDR_BAD:
            return fail(L, e, ctx, "invalid CIDR '%s'", sval(e));
        case FH_CIDR_HOSTBITS:
            return fail(L, e, ctx, "CIDR '%s' has host bits set", sval(e));
        case FH_CIDR_OK:
            break;
        }
        if (!(n = realloc(*out, (*nout + 1) * sizeof(*n))))
            return FH_ERR_NOMEM;
        *out = n;
        n[(*nout)++] = (pfx){fam, len, net, rec, line_of(e), NULL};
    }
    return FH_OK;
}

static const char *const crit_names[] = {"low", "medium", "high", "critical", NULL};

static fh_err check_criticality(loader *L, node *m, const char *ctx, const char *c)
{
    if (c && find_name(crit_names, 4, c) < 0)
        return fail(L, map_get(L, m, "criticality"), ctx,
                    "criticality '%s' is not low, medium, high or critical", c);
    return FH_OK;
}

static fh_err load_segments(loader *L, node *v)
{
    static const char *const keys[] = {"name",        "zone",  "department", "tenant",
                                       "criticality", "cidrs", "egress",     "learning_until",
                                       "description", NULL};
    assets *a = L->a;
    fh_err rc;
    size_t cnt;

    if ((rc = expect_type(L, v, NULL, "segments", YAML_SEQUENCE_NODE)))
        return rc;
    cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (!(a->segs = calloc(cnt ? cnt : 1, sizeof(*a->segs))))
        return FH_ERR_NOMEM;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *m = get(L, *it);
        asset_info r = {0};
        segment *s = &a->segs[a->nsegs];
        char ctx[192];
        const char *lu;
        node *cidrs, *eg;
        pfx *ep = NULL;
        size_t nep = 0;
        int z;

        if (m->type != YAML_MAPPING_NODE)
            return fail(L, m, NULL, "'segments' items must be mappings, not %s", type_name(m));
        if ((rc = get_str(L, m, "segment", "name", true, &r.segment)))
            return rc;
        snprintf(ctx, sizeof(ctx), "segment '%s'", r.segment);
        if ((rc = check_keys(L, m, ctx, keys)))
            return rc;
        for (uint32_t i = 0; i < a->nsegs; i++)
            if (!strcmp(a->segs[i].name, r.segment))
                return fail(L, map_get(L, m, "name"), ctx,
                            "duplicate segment name (first at line %zu)", L->seg_line[i]);
        if ((rc = get_str(L, m, ctx, "zone", true, &r.zone)) ||
            (rc = get_str(L, m, ctx, "department", true, &r.department)) ||
            (rc = get_str(L, m, ctx, "tenant", false, &r.tenant)) ||
            (rc = get_str(L, m, ctx, "criticality", false, &r.criticality)) ||
            (rc = get_str(L, m, ctx, "learning_until", false, &lu)))
            return rc;
        if ((z = find_name(a->zones, a->nzones, r.zone)) < Z_FIRST)
            return fail(L, map_get(L, m, "zone"), ctx, "unknown zone '%s' (not in 'zones')",
                        r.zone);
        if (a->departments && find_name(a->departments, a->ndepartments, r.department) < 0)
            return fail(L, map_get(L, m, "department"), ctx,
                        "unknown department '%s' (not in 'departments')", r.department);
        if (r.tenant && find_name(a->tenants, a->ntenants, r.tenant) < 0)
            return fail(L, map_get(L, m, "tenant"), ctx, "unknown tenant '%s' (not in 'tenants')",
                        r.tenant);
        if (!r.criticality)
            r.criticality = "medium";
        if ((rc = check_criticality(L, m, ctx, r.criticality)))
            return rc;
        if (lu && !event_parse_time(lu, strlen(lu), &s->learning_until_ms))
            return fail(L, map_get(L, m, "learning_until"), ctx,
                        "invalid learning_until '%s' (expected e.g. 2025-09-30T00:00:00+08:00)",
                        lu);
        s->has_learning = lu != NULL;
        s->name = r.segment;
        s->zone = (uint32_t)z;
        r.zone = a->zones[z]; /* one string per zone */
        r.zone_idx = (uint32_t)z;
        r.segment_idx = a->nsegs;
        L->seg_line[a->nsegs] = line_of(m);
        L->seg_node[a->nsegs] = m;
        a->nsegs++;
        if (!(cidrs = map_get(L, m, "cidrs")))
            return fail(L, m, ctx, "missing 'cidrs'");
        {
            pfx *cp = NULL;
            size_t ncp = 0;

            rc = load_cidrs(L, cidrs, ctx, "cidrs", a->nrecs, &cp, &ncp);
            for (size_t i = 0; !rc && i < ncp; i++)
                rc = add_pfx(L, cp[i].family, cp[i].net, cp[i].len, cp[i].rec, cp[i].line,
                             r.segment);
            free(cp);
            if (rc)
                return rc;
            if (!ncp)
                return fail(L, cidrs, ctx, "'cidrs' is empty");
        }
        if ((eg = map_get(L, m, "egress"))) {
            char name[256];
            const char **vals;

            rc = load_cidrs(L, eg, ctx, "egress", 0, &ep, &nep);
            if (!rc) {
                if (nep)
                    qsort(ep, nep, sizeof(*ep), pfx_cmp);
                /* the same network twice in an allow-list is harmless: keep one */
                size_t w = 0;
                for (size_t i = 0; i < nep; i++)
                    if (!w || ep[w - 1].family != ep[i].family || ep[w - 1].net != ep[i].net ||
                        ep[w - 1].len != ep[i].len)
                        ep[w++] = ep[i];
                nep = w;
                rc = lpm_build(&s->egress, ep, nep);
            }
            free(ep);
            if (rc)
                return rc;
            /* the egress.<segment> placeholder, as written */
            cnt = (size_t)(eg->data.sequence.items.top - eg->data.sequence.items.start);
            if (!(vals = calloc(cnt + 1, sizeof(*vals))))
                return FH_ERR_NOMEM;
            for (size_t i = 0; i < cnt; i++) {
                node *e = get(L, eg->data.sequence.items.start[i]);
                if (!(vals[i] = own(a, sval(e), e->data.scalar.length))) {
                    free(vals);
                    return FH_ERR_NOMEM;
                }
            }
            snprintf(name, sizeof(name), "egress.%s", r.segment);
            if ((rc = add_list(L, eg, name, vals, cnt)))
                return rc;
        }
        if ((rc = add_rec(a, &r)))
            return rc;
    }
    return FH_OK;
}

/* Rejects the same prefix twice; names both owners. p must be sorted. */
static fh_err check_duplicates(loader *L, const pfx *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i].family == p[i - 1].family && p[i].net == p[i - 1].net &&
            p[i].len == p[i - 1].len) {
            const pfx *later = &p[i], *first = &p[i - 1];
            node fake = {0};
            char ctx[192];

            fake.start_mark.line = later->line - 1;
            snprintf(ctx, sizeof(ctx), "%s '%s'", later->rec < L->a->nsegs ? "segment" : "host",
                     later->text);
            return fail(L, &fake, ctx, "address range already listed at line %zu (%s '%s')",
                        first->line, first->rec < L->a->nsegs ? "segment" : "host", first->text);
        }
    return FH_OK;
}

static int device_cmp(const void *x, const void *y)
{
    const device *a = x, *b = y;

    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    return a->mac < b->mac ? -1 : a->mac > b->mac;
}

static fh_err add_device(loader *L, node *macn, const char *ctx, const char *mac, int fam,
                         const uint8_t *addr)
{
    assets *a = L->a;
    device *n;
    uint64_t m;

    if (!parse_mac(mac, strlen(mac), &m))
        return fail(L, macn, ctx, "invalid MAC address '%s'", mac);
    if (!(n = realloc(a->devices, (a->ndevices + 1) * sizeof(*n))))
        return FH_ERR_NOMEM;
    a->devices = n;
    n[a->ndevices++] = (device){addr_to_u128(fam, addr), m, fam};
    return FH_OK;
}

static fh_err load_hosts(loader *L, node *v, lpm *segtab)
{
    static const char *const keys[] = {"name", "ip",          "criticality", "department",
                                       "mac",  "description", NULL};
    assets *a = L->a;
    fh_err rc;

    if ((rc = expect_type(L, v, NULL, "hosts", YAML_SEQUENCE_NODE)))
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *m = get(L, *it);
        const char *ip, *crit, *dept, *mac;
        asset_info r;
        char ctx[192];
        uint8_t addr[16];
        int fam;
        uint32_t seg;
        const char *name;

        if (m->type != YAML_MAPPING_NODE)
            return fail(L, m, NULL, "'hosts' items must be mappings, not %s", type_name(m));
        if ((rc = get_str(L, m, "host", "name", true, &name)))
            return rc;
        snprintf(ctx, sizeof(ctx), "host '%s'", name);
        if ((rc = check_keys(L, m, ctx, keys)) || (rc = get_str(L, m, ctx, "ip", true, &ip)) ||
            (rc = get_str(L, m, ctx, "criticality", false, &crit)) ||
            (rc = get_str(L, m, ctx, "department", false, &dept)) ||
            (rc = get_str(L, m, ctx, "mac", false, &mac)) ||
            (rc = check_criticality(L, m, ctx, crit)))
            return rc;
        if (!fh_addr_parse(ip, strlen(ip), &fam, addr))
            return fail(L, map_get(L, m, "ip"), ctx, "invalid IP address '%s'", ip);
        if ((seg = lpm_find(segtab, fam, addr)) == UINT32_MAX)
            return fail(L, map_get(L, m, "ip"), ctx, "%s is in no segment", ip);
        if (dept && a->departments && find_name(a->departments, a->ndepartments, dept) < 0)
            return fail(L, map_get(L, m, "department"), ctx,
                        "unknown department '%s' (not in 'departments')", dept);
        r = a->recs[seg];
        r.name = name;
        if (crit)
            r.criticality = crit;
        if (dept)
            r.department = dept;
        if ((rc = add_pfx(L, fam, addr_to_u128(fam, addr), fam == AF_INET ? 32 : 128, a->nrecs,
                          line_of(map_get(L, m, "ip")), name)) ||
            (rc = add_rec(a, &r)))
            return rc;
        if (mac && (rc = add_device(L, map_get(L, m, "mac"), ctx, mac, fam, addr)))
            return rc;
    }
    return FH_OK;
}

static fh_err load_devices(loader *L, node *v)
{
    static const char *const keys[] = {"mac", "ip", "name", "description", NULL};
    fh_err rc;

    if ((rc = expect_type(L, v, NULL, "devices", YAML_SEQUENCE_NODE)))
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *m = get(L, *it);
        const char *ip, *mac, *name;
        uint8_t addr[16];
        int fam;

        if (m->type != YAML_MAPPING_NODE)
            return fail(L, m, NULL, "'devices' items must be mappings, not %s", type_name(m));
        if ((rc = check_keys(L, m, "device", keys)) ||
            (rc = get_str(L, m, "device", "mac", true, &mac)) ||
            (rc = get_str(L, m, "device", "ip", true, &ip)) ||
            (rc = get_str(L, m, "device", "name", false, &name)))
            return rc;
        if (!fh_addr_parse(ip, strlen(ip), &fam, addr))
            return fail(L, map_get(L, m, "ip"), "device", "invalid IP address '%s'", ip);
        if ((rc = add_device(L, map_get(L, m, "mac"), "device", mac, fam, addr)))
            return rc;
    }
    return FH_OK;
}

static fh_err load_tenants(loader *L, node *v)
{
    static const char *const keys[] = {"id", "name", "department", "description", NULL};
    assets *a = L->a;
    fh_err rc;
    size_t cnt;

    if ((rc = expect_type(L, v, NULL, "tenants", YAML_SEQUENCE_NODE)))
        return rc;
    cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (!(a->tenants = calloc(cnt + 1, sizeof(*a->tenants))))
        return FH_ERR_NOMEM;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *m = get(L, *it);
        const char *id, *name, *dept;
        char ctx[192];

        if (m->type != YAML_MAPPING_NODE)
            return fail(L, m, NULL, "'tenants' items must be mappings, not %s", type_name(m));
        if ((rc = get_str(L, m, "tenant", "id", true, &id)))
            return rc;
        snprintf(ctx, sizeof(ctx), "tenant '%s'", id);
        if ((rc = check_keys(L, m, ctx, keys)) || (rc = get_str(L, m, ctx, "name", false, &name)) ||
            (rc = get_str(L, m, ctx, "department", false, &dept)))
            return rc;
        if (find_name(a->tenants, a->ntenants, id) >= 0)
            return fail(L, map_get(L, m, "id"), ctx, "duplicate tenant id");
        if (dept && a->departments && find_name(a->departments, a->ndepartments, dept) < 0)
            return fail(L, map_get(L, m, "department"), ctx,
                        "unknown department '%s' (not in 'departments')", dept);
        a->tenants[a->ntenants++] = id;
    }
    return FH_OK;
}

static fh_err load_policy(loader *L, node *v)
{
    static const char *const keys[] = {"allowed_countries", "management_networks",
                                       "approved_resolvers", "approved_vpns", NULL};
    static const list_kind kinds[] = {LV_COUNTRY, LV_CIDR, LV_CIDR, LV_CIDR};
    fh_err rc;

    if ((rc = expect_type(L, v, NULL, "policy", YAML_MAPPING_NODE)) ||
        (rc = check_keys(L, v, "policy", keys)))
        return rc;
    for (size_t i = 0; keys[i]; i++) {
        node *l = map_get(L, v, keys[i]);

        if (l && (rc = load_list(L, l, "policy", keys[i], keys[i], kinds[i])))
            return rc;
    }
    return FH_OK;
}

static fh_err load_lists(loader *L, node *v)
{
    fh_err rc;

    if ((rc = expect_type(L, v, NULL, "lists", YAML_MAPPING_NODE)))
        return rc;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        node *k = get(L, p->key);

        if (!is_str(k))
            return fail(L, k, "lists", "keys must be strings");
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", sval(k)[0]) ||
            strspn(sval(k), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                k->data.scalar.length)
            return fail(L, k, "lists", "'%s' is not a valid placeholder name", sval(k));
        if ((rc = load_list(L, get(L, p->value), "lists", sval(k), sval(k), LV_ANY)))
            return rc;
    }
    return FH_OK;
}

/* "from -> to" (spaces optional), zone names or '*'. */
static fh_err parse_flow(loader *L, node *e, int *from, int *to)
{
    const char *s = sval(e), *arrow = strstr(s, "->");
    char f[128], t[128];
    size_t fl, tl;
    const char *ts;

    if (!arrow)
        return fail(L, e, "zone_matrix", "'%s' is not 'from -> to'", s);
    while (*s == ' ')
        s++;
    fl = (size_t)(arrow - s);
    while (fl && s[fl - 1] == ' ')
        fl--;
    ts = arrow + 2;
    while (*ts == ' ')
        ts++;
    tl = strlen(ts);
    while (tl && ts[tl - 1] == ' ')
        tl--;
    if (!fl || !tl || fl >= sizeof(f) || tl >= sizeof(t))
        return fail(L, e, "zone_matrix", "'%s' is not 'from -> to'", sval(e));
    memcpy(f, s, fl);
    f[fl] = '\0';
    memcpy(t, ts, tl);
    t[tl] = '\0';
    *from = strcmp(f, "*") ? find_name(L->a->zones, L->a->nzones, f) : -2;
    *to = strcmp(t, "*") ? find_name(L->a->zones, L->a->nzones, t) : -2;
    if (*from == -1)
        return fail(L, e, "zone_matrix", "unknown zone '%s'", f);
    if (*to == -1)
        return fail(L, e, "zone_matrix", "unknown zone '%s'", t);
    return FH_OK;
}

static fh_err load_matrix(loader *L, node *v)
{
    static const char *const keys[] = {"default", "intra_zone", "tenant_isolation",
                                       "allow",   "deny",       NULL};
    assets *a = L->a;
    uint32_t nz = a->nzones;
    signed char *set; /* explicit decision per pair: 0 none, 1 allow, -1 deny */
    fh_err rc = FH_OK;
    node *n;

    if ((rc = expect_type(L, v, NULL, "zone_matrix", YAML_MAPPING_NODE)) ||
        (rc = check_keys(L, v, "zone_matrix", keys)))
        return rc;
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "intra_zone" : "default";
        bool *dst = i ? &a->intra_allow : &a->default_allow;

        if (!(n = map_get(L, v, key)))
            continue;
        if (!is_str(n) || (strcmp(sval(n), "allow") && strcmp(sval(n), "deny")))
            return fail(L, n, "zone_matrix", "'%s' must be allow or deny", key);
        *dst = !strcmp(sval(n), "allow");
    }
    if ((n = map_get(L, v, "tenant_isolation")) &&
        (rc = get_bool(L, n, "zone_matrix", "tenant_isolation", &a->tenant_isolation)))
        return rc;
    if (!(set = calloc((size_t)nz * nz, 1)))
        return FH_ERR_NOMEM;
    /* deny entries first so that they win over allow entries */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        const char *key = pass ? "allow" : "deny";

        if (!(n = map_get(L, v, key)))
            continue;
        if ((rc = expect_type(L, n, "zone_matrix", key, YAML_SEQUENCE_NODE)))
            break;
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             !rc && it < n->data.sequence.items.top; it++) {
            node *e = get(L, *it);
            int f = -1, t = -1;

            if (!is_str(e)) {
                rc = fail(L, e, "zone_matrix", "'%s' items must be strings, not %s", key,
                          type_name(e));
                break;
            }
            if ((rc = parse_flow(L, e, &f, &t)))
                break;
            for (uint32_t i = 0; i < nz; i++)
                for (uint32_t j = 0; j < nz; j++)
                    if ((f == -2 || (uint32_t)f == i) && (t == -2 || (uint32_t)t == j) &&
                        !set[i * nz + j])
                        set[i * nz + j] = pass ? 1 : -1;
        }
    }
    for (uint32_t i = 0; !rc && i < nz; i++)
        for (uint32_t j = 0; j < nz; j++)
            a->pair_allowed[i * nz + j] = set[i * nz + j] ? set[i * nz + j] > 0
                                          : i == j        ? a->intra_allow
                                                          : a->default_allow;
    free(set);
    return rc;
}

static fh_err build_pairs(assets *a)
{
    uint32_t nz = a->nzones;

    if (!(a->pair_str = calloc((size_t)nz * nz, sizeof(*a->pair_str))) ||
        !(a->pair_allowed = calloc((size_t)nz * nz, sizeof(*a->pair_allowed))))
        return FH_ERR_NOMEM;
    for (uint32_t i = 0; i < nz; i++)
        for (uint32_t j = 0; j < nz; j++) {
            char buf[512];
            int len = snprintf(buf, sizeof(buf), "%s->%s", a->zones[i], a->zones[j]);

            if (len < 0 || (size_t)len >= sizeof(buf) ||
                !(a->pair_str[i * nz + j] = own(a, buf, (size_t)len)))
                return FH_ERR_NOMEM;
            a->pair_allowed[i * nz + j] = i == j ? a->intra_allow : a->default_allow;
        }
    return FH_OK;
}

/* zone.<zone> placeholders: the CIDRs of the zone's segments, as written. */
static fh_err build_zone_lists(loader *L)
{
    assets *a = L->a;
    fh_err rc;

    for (uint32_t z = Z_FIRST; z < a->nzones; z++) {
        const char **vals = NULL;
        size_t n = 0;
        char name[256];

        for (uint32_t s = 0; s < a->nsegs; s++) {
            node *c;

            if (a->segs[s].zone != z)
                continue;
            c = map_get(L, L->seg_node[s], "cidrs");
            for (yaml_node_item_t *it = c->data.sequence.items.start;
                 it < c->data.sequence.items.top; it++) {
                node *e = get(L, *it);
                const char **nv = realloc(vals, (n + 2) * sizeof(*nv));

                if (!nv || !(nv[n] = own(a, sval(e), e->data.scalar.length))) {
                    free(nv ? nv : vals);
                    return FH_ERR_NOMEM;
                }
                vals = nv;
                vals[++n] = NULL;
            }
        }
        if (!vals && !(vals = calloc(1, sizeof(*vals))))
            return FH_ERR_NOMEM;
        snprintf(name, sizeof(name), "zone.%s", a->zones[z]);
        if ((rc = add_list(L, NULL, name, vals, n)))
            return rc;
    }
    return FH_OK;
}

static fh_err load_doc(loader *L, node *root)
{
    static const char *const keys[] = {"version",     "zones", "departments", "tenants",
                                       "segments",    "hosts", "devices",     "policy",
                                       "zone_matrix", "lists", NULL};
    assets *a = L->a;
    node *n, *segs;
    lpm segtab;
    size_t nseg_pfx;
    fh_err rc;

    if (!root || root->type != YAML_MAPPING_NODE ||
        root->data.mapping.pairs.top == root->data.mapping.pairs.start)
        return fail(L, root, NULL, "expected a mapping with 'zones' and 'segments'");
    if ((rc = check_keys(L, root, NULL, keys)))
        return rc;
    if ((n = map_get(L, root, "version")) && (!is_str(n) || strcmp(sval(n), "1")))
        return fail(L, n, NULL, "unsupported version (this build reads version 1)");
    if (!(n = map_get(L, root, "zones")))
        return fail(L, root, NULL, "missing 'zones'");
    if ((rc = get_name_list(L, n, "zones", &a->zones, &a->nzones, Z_FIRST)))
        return rc;
    a->zones[Z_INTERNET] = "internet";
    a->zones[Z_UNKNOWN] = "unknown";
    for (uint32_t i = Z_FIRST; i < a->nzones; i++)
        if (find_name(a->zones, Z_FIRST, a->zones[i]) >= 0)
            return fail(L, n, NULL, "'zones': '%s' is reserved (an address outside the inventory)",
                        a->zones[i]);
    if ((n = map_get(L, root, "departments")) &&
        (rc = get_name_list(L, n, "departments", &a->departments, &a->ndepartments, 0)))
        return rc;
    if ((n = map_get(L, root, "tenants")) && (rc = load_tenants(L, n)))
        return rc;
    if ((rc = build_pairs(a)))
        return rc;
    if ((n = map_get(L, root, "zone_matrix")) && (rc = load_matrix(L, n)))
        return rc;
    if (!(segs = map_get(L, root, "segments")))
        return fail(L, root, NULL, "missing 'segments'");
    if (segs->type == YAML_SEQUENCE_NODE) {
        size_t cnt = (size_t)(segs->data.sequence.items.top - segs->data.sequence.items.start);

        if (!(L->seg_line = calloc(cnt + 1, sizeof(*L->seg_line))) ||
            !(L->seg_node = calloc(cnt + 1, sizeof(*L->seg_node))))
            return FH_ERR_NOMEM;
    }
    if ((rc = load_segments(L, segs)))
        return rc;
    /* segments alone first: hosts find their segment in this table */
    nseg_pfx = L->npfx;
    if (L->npfx)
        qsort(L->pfx, L->npfx, sizeof(*L->pfx), pfx_cmp);
    if ((rc = check_duplicates(L, L->pfx, L->npfx)) || (rc = lpm_build(&segtab, L->pfx, L->npfx)))
        return rc;
    rc = (n = map_get(L, root, "hosts")) ? load_hosts(L, n, &segtab) : FH_OK;
    lpm_free(&segtab);
    if (rc)
        return rc;
    if (L->npfx > nseg_pfx) {
        qsort(L->pfx, L->npfx, sizeof(*L->pfx), pfx_cmp);
        if ((rc = check_duplicates(L, L->pfx, L->npfx)))
            return rc;
    }
    if ((rc = lpm_build(&a->table, L->pfx, L->npfx)))
        return rc;
    if ((n = map_get(L, root, "devices")) && (rc = load_devices(L, n)))
        return rc;
    if (a->ndevices)
        qsort(a->devices, a->ndevices, sizeof(*a->devices), device_cmp);
    if ((n = map_get(L, root, "policy")) && (rc = load_policy(L, n)))
        return rc;
    if ((rc = build_zone_lists(L)))
        return rc;
    if ((n = map_get(L, root, "lists")) && (rc = load_lists(L, n)))
        return rc;
    return FH_OK;
}

fh_err assets_load(assets **out, const char *path, char *err, size_t errlen)
{
    FILE *fp;
    yaml_parser_t parser;
    yaml_document_t doc;
    loader L = {0};
    fh_err rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!(fp = fopen(path, "r"))) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open asset inventory: %s", path, strerror(errno));
        return FH_ERR_IO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return FH_ERR_NOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        if (err && errlen)
            fh_error_at(err, errlen, path, (uint32_t)parser.problem_mark.line + 1,
                        "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(fp);
        return FH_ERR_PARSE;
    }
    {
        /* a second document would be ignored silently: refuse it */
        yaml_document_t extra;

        if (yaml_parser_load(&parser, &extra)) {
            yaml_node_t *r = yaml_document_get_root_node(&extra);

            if (r) {
                if (err && errlen)
                    fh_error_at(err, errlen, path, fh_yaml_line(r),
                                "only one YAML document is allowed");
                yaml_document_delete(&extra);
                yaml_document_delete(&doc);
                yaml_parser_delete(&parser);
                fclose(fp);
                return FH_ERR_CONFIG;
            }
            yaml_document_delete(&extra);
        }
    }
    L.path = path;
    L.doc = &doc;
    L.err = err;
    L.errlen = errlen;
    rc = FH_ERR_NOMEM;
    if ((L.a = calloc(1, sizeof(*L.a)))) {
        L.a->tenant_isolation = true;
        L.a->intra_allow = true;
        rc = load_doc(&L, yaml_document_get_root_node(&doc));
    }
    if (rc == FH_ERR_NOMEM && err && errlen)
        snprintf(err, errlen, "%s: %s", path, fh_strerror(rc));
    free(L.pfx);
    free(L.seg_line);
    free(L.seg_node);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    if (rc) {
        assets_free(L.a);
        return rc;
    }
    *out = L.a;
    return FH_OK;
}

/* ---- binding and enrichment ----------------------------------------------- */

static const char *const side_prefix[2] = {"src_asset.", "dest_asset."};
static const char *const side_field[ASSET_F_COUNT] = {"zone",        "department",   "segment",
                                                      "criticality", "tenant",       "name",
                                                      "known",       "device_known", "learning"};

fh_err assets_bind(assets_fields *f, field_table *ft)
{
    static const char *const ip_name[2] = {"src_ip", "dest_ip"};
    static const char *const mac_name[2] = {"ether.src_mac", "ether.dest_mac"};
    static const char *const inet_name[2] = {"src_internet", "dest_internet"};
    bool need_ip[2] = {false, false};

    memset(f, 0xFF, sizeof(*f)); /* every id FIELD_NONE */
    f->active = false;
    f->zone_pair = field_lookup(ft, "zone_pair");
    f->zone_allowed = field_lookup(ft, "zone_allowed");
    f->egress_allowed = field_lookup(ft, "egress_allowed");
    if (f->zone_pair != FIELD_NONE || f->zone_allowed != FIELD_NONE ||
        f->egress_allowed != FIELD_NONE)
        need_ip[0] = need_ip[1] = true;
    for (int s = 0; s < 2; s++) {
        char path[64];

        f->internet[s] = field_lookup(ft, inet_name[s]);
        if (f->internet[s] != FIELD_NONE)
            need_ip[s] = true;
        for (int i = 0; i < ASSET_F_COUNT; i++) {
            snprintf(path, sizeof(path), "%s%s", side_prefix[s], side_field[i]);
            f->side[s][i] = field_lookup(ft, path);
            if (f->side[s][i] != FIELD_NONE)
                need_ip[s] = true;
        }
        if (f->side[s][ASSET_F_DEVICE_KNOWN] != FIELD_NONE &&
            (f->mac[s] = field_intern(ft, mac_name[s])) == FIELD_NONE)
            return FH_ERR_LIMIT;
    }
    for (int s = 0; s < 2; s++)
        if (need_ip[s]) {
            if ((f->ip[s] = field_intern(ft, ip_name[s])) == FIELD_NONE)
                return FH_ERR_LIMIT;
            f->active = true;
        }
    return FH_OK;
}

static inline void put(sv *slots, uint32_t nslots, field_id id, sv v)
{
    if (id < nslots)
        slots[id] = v;
}

static inline void put_str(sv *slots, uint32_t nslots, field_id id, const char *s)
{
    if (id < nslots && s)
        slots[id] = (sv){.type = SV_STR, .s = s, .len = strlen(s)};
}

static inline void put_bool(sv *slots, uint32_t nslots, field_id id, bool b)
{
    if (id < nslots)
        slots[id] = (sv){.type = SV_BOOL, .b = b};
}

static bool device_known(const assets *a, int family, const uint8_t *addr, uint64_t mac)
{
    device key = {addr_to_u128(family, addr), mac, family};
    size_t lo = 0, hi = a->ndevices;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = device_cmp(&a->devices[mid], &key);

        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void assets_enrich(const assets *a, const assets_fields *f, sv *slots, uint32_t nslots,
                   int64_t ts_ms)
{
    assets_enrich_seen(a, f, slots, nslots, ts_ms, NULL);
}

void assets_enrich_seen(const assets *a, const assets_fields *f, sv *slots, uint32_t nslots,
                        int64_t ts_ms, assets_seen *seen)
{
    static const sv absent = {0};
    const asset_info *info[2] = {NULL, NULL};
    uint32_t zone[2] = {Z_UNKNOWN, Z_UNKNOWN};
    bool parsed[2] = {false, false};
    uint8_t addr[2][16];
    int fam[2] = {0, 0};

    if (seen)
        memset(seen, 0, sizeof(*seen));
    if (!f || !f->active || !slots)
        return;
    for (int s = 0; s < 2; s++) {
        const sv *ip = f->ip[s] < nslots ? &slots[f->ip[s]] : &absent;
        bool pub;

        if (seen)
            seen->done[s] = true;
        for (int i = 0; i < ASSET_F_COUNT; i++)
            put(slots, nslots, f->side[s][i], absent);
        put(slots, nslots, f->internet[s], absent);
        if (ip->type != SV_STR || !fh_addr_parse(ip->s, ip->len, &fam[s], addr[s]))
            continue;
        parsed[s] = true;
        info[s] = assets_lookup(a, fam[s], addr[s]);
        if (seen)
            seen->info[s] = info[s];
        pub = !info[s] && assets_is_public(fam[s], addr[s]);
        zone[s] = info[s] ? info[s]->zone_idx : pub ? Z_INTERNET : Z_UNKNOWN;
        put_bool(slots, nslots, f->internet[s], pub);
        if (!a)
            continue;
        put_bool(slots, nslots, f->side[s][ASSET_F_KNOWN], info[s] != NULL);
        if (!info[s])
            continue;
        put_str(slots, nslots, f->side[s][ASSET_F_ZONE], info[s]->zone);
        put_str(slots, nslots, f->side[s][ASSET_F_DEPARTMENT], info[s]->department);
        put_str(slots, nslots, f->side[s][ASSET_F_SEGMENT], info[s]->segment);
        put_str(slots, nslots, f->side[s][ASSET_F_CRITICALITY], info[s]->criticality);
        put_str(slots, nslots, f->side[s][ASSET_F_TENANT], info[s]->tenant);
        put_str(slots, nslots, f->side[s][ASSET_F_NAME], info[s]->name);
        {
            const segment *sg = &a->segs[info[s]->segment_idx];

            put_bool(slots, nslots, f->side[s][ASSET_F_LEARNING],
                     sg->has_learning && ts_ms < sg->learning_until_ms);
        }
        if (f->side[s][ASSET_F_DEVICE_KNOWN] < nslots && f->mac[s] < nslots) {
            const sv *m = &slots[f->mac[s]];
            uint64_t mac;

            if (m->type == SV_STR && parse_mac(m->s, m->len, &mac))
                put_bool(slots, nslots, f->side[s][ASSET_F_DEVICE_KNOWN],
                         device_known(a, fam[s], addr[s], mac));
        }
    }
    put(slots, nslots, f->zone_pair, absent);
    put(slots, nslots, f->zone_allowed, absent);
    put(slots, nslots, f->egress_allowed, absent);
    if (!a || !parsed[0] || !parsed[1])
        return;
    {
        uint32_t k = zone[0] * a->nzones + zone[1];
        bool ok = a->pair_allowed[k];

        if (ok && a->tenant_isolation && info[0] && info[1] && info[0]->tenant && info[1]->tenant &&
            strcmp(info[0]->tenant, info[1]->tenant) != 0)
            ok = false;
        put_str(slots, nslots, f->zone_pair, a->pair_str[k]);
        put_bool(slots, nslots, f->zone_allowed, ok);
    }
    if (info[0] && zone[1] == Z_INTERNET)
        put_bool(slots, nslots, f->egress_allowed,
                 lpm_find(&a->segs[info[0]->segment_idx].egress, fam[1], addr[1]) != UINT32_MAX);
}
