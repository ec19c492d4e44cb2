/*
 * assets_load.c - the asset inventory's YAML loader (libyaml's document API
 * through common/fh_yaml): every mistake is "PATH:LINE: what: why". The file
 * format is documented by rules/assets.example.yaml.
 */
#include "assets_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <yaml.h>

#include "../common/fh_addr.h"
#include "../common/fh_yaml.h"

/* ---- address parsing ----------------------------------------------------- */

/* "addr/len" or a bare address (a /32 or /128): fh_cidr_parse (host bits refused). */
static fh_cidr_status parse_cidr(const char *s, int *family, ptab_u128_t *net, unsigned *plen)
{
    uint8_t a[16];
    fh_cidr_status st = fh_cidr_parse(s, strlen(s), family, a, plen);

    if (st == FH_CIDR_OK)
        *net = ptab_u128(*family, a);
    return st;
}

/* ---- loader --------------------------------------------------------------- */

typedef struct {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    assets *a;
    ptab_entry *ptab_entry; /* segment CIDRs, then host addresses */
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
    if (!(*out = assets_own(L->a, sval(v), v->data.scalar.length)))
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
        if (!((*out)[(*n)++] = assets_own(L->a, sval(e), e->data.scalar.length)))
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
    nl[a->nlists].name = assets_own(a, name, strlen(name));
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
        ptab_u128_t net = 0;
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
        else if (!(vals[n++] = assets_own(L->a, sval(e), e->data.scalar.length)))
            rc = FH_ERR_NOMEM;
        if (rc) {
            free(vals);
            return rc;
        }
    }
    return add_list(L, v, name, vals, n);
}

static fh_err add_pfx(loader *L, int fam, ptab_u128_t net, unsigned len, uint32_t rec, size_t line,
                      const char *text)
{
    if (L->npfx == L->cappfx) {
        size_t cap = L->cappfx ? L->cappfx * 2 : 64;
        ptab_entry *n = realloc(L->ptab_entry, cap * sizeof(*n));

        if (!n)
            return FH_ERR_NOMEM;
        L->ptab_entry = n;
        L->cappfx = cap;
    }
    L->ptab_entry[L->npfx++] = (ptab_entry){fam, len, net, rec, line, text};
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
                         ptab_entry **out, size_t *nout)
{
    fh_err rc;

    if ((rc = expect_type(L, v, ctx, key, YAML_SEQUENCE_NODE)))
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        node *e = get(L, *it);
        int fam;
        ptab_u128_t net = 0;
        unsigned len;
        ptab_entry *n;

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
        n[(*nout)++] = (ptab_entry){fam, len, net, rec, line_of(e), NULL};
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
        ptab_entry *ep = NULL;
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
            ptab_entry *cp = NULL;
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
                    qsort(ep, nep, sizeof(*ep), ptab_entry_cmp);
                /* the same network twice in an allow-list is harmless: keep one */
                size_t w = 0;
                for (size_t i = 0; i < nep; i++)
                    if (!w || ep[w - 1].family != ep[i].family || ep[w - 1].net != ep[i].net ||
                        ep[w - 1].len != ep[i].len)
                        ep[w++] = ep[i];
                nep = w;
                rc = ptab_build(&s->egress, ep, nep);
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
                if (!(vals[i] = assets_own(a, sval(e), e->data.scalar.length))) {
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
static fh_err check_duplicates(loader *L, const ptab_entry *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i].family == p[i - 1].family && p[i].net == p[i - 1].net &&
            p[i].len == p[i - 1].len) {
            const ptab_entry *later = &p[i], *first = &p[i - 1];
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

static fh_err add_device(loader *L, node *macn, const char *ctx, const char *mac, int fam,
                         const uint8_t *addr)
{
    assets *a = L->a;
    device *n;
    uint64_t m;

    if (!assets_parse_mac(mac, strlen(mac), &m))
        return fail(L, macn, ctx, "invalid MAC address '%s'", mac);
    if (!(n = realloc(a->devices, (a->ndevices + 1) * sizeof(*n))))
        return FH_ERR_NOMEM;
    a->devices = n;
    n[a->ndevices++] = (device){ptab_u128(fam, addr), m, fam};
    return FH_OK;
}

static fh_err load_hosts(loader *L, node *v, ptab *segtab)
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
        if ((seg = ptab_find(segtab, fam, addr)) == PTAB_NONE)
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
        if ((rc = add_pfx(L, fam, ptab_u128(fam, addr), fam == AF_INET ? 32 : 128, a->nrecs,
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
                !(a->pair_str[i * nz + j] = assets_own(a, buf, (size_t)len)))
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

                if (!nv || !(nv[n] = assets_own(a, sval(e), e->data.scalar.length))) {
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
    ptab segtab;
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
        qsort(L->ptab_entry, L->npfx, sizeof(*L->ptab_entry), ptab_entry_cmp);
    if ((rc = check_duplicates(L, L->ptab_entry, L->npfx)) ||
        (rc = ptab_build(&segtab, L->ptab_entry, L->npfx)))
        return rc;
    rc = (n = map_get(L, root, "hosts")) ? load_hosts(L, n, &segtab) : FH_OK;
    ptab_free(&segtab);
    if (rc)
        return rc;
    if (L->npfx > nseg_pfx) {
        qsort(L->ptab_entry, L->npfx, sizeof(*L->ptab_entry), ptab_entry_cmp);
        if ((rc = check_duplicates(L, L->ptab_entry, L->npfx)))
            return rc;
    }
    if ((rc = ptab_build(&a->table, L->ptab_entry, L->npfx)))
        return rc;
    if ((n = map_get(L, root, "devices")) && (rc = load_devices(L, n)))
        return rc;
    if (a->ndevices)
        qsort(a->devices, a->ndevices, sizeof(*a->devices), assets_device_cmp);
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
    yaml_document_t doc;
    loader L = {0};
    fh_err rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if ((rc = fh_yaml_load_file(&doc, path, "asset inventory", err, errlen)) != FH_OK)
        return rc;
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
    free(L.ptab_entry);
    free(L.seg_line);
    free(L.seg_node);
    yaml_document_delete(&doc);
    if (rc) {
        assets_free(L.a);
        return rc;
    }
    *out = L.a;
    return FH_OK;
}
