/*
 * assets.c - the asset inventory object: lookups by address, placeholder lists,
 * the public-address test, and enrichment of decoded events. Design notes in
 * assets.h; loading is assets_load.c, the prefix table prefix_table.c.
 */
#include "assets_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/fh_addr.h"

bool assets_parse_mac(const char *s, size_t len, uint64_t *out)
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

int assets_device_cmp(const void *x, const void *y)
{
    const device *a = x, *b = y;

    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    return a->mac < b->mac ? -1 : a->mac > b->mac;
}

bool assets_is_public(int family, const uint8_t *a)
{
    return fh_addr_is_public(family, a);
}

char *assets_own(assets *a, const char *s, size_t len)
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

/* ---- the object ----------------------------------------------------------- */

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
        ptab_free(&a->segs[i].egress);
    free(a->segs);
    free(a->recs);
    ptab_free(&a->table);
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
    r = ptab_find(&a->table, family, addr);
    return r == PTAB_NONE ? NULL : &a->recs[r];
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
    device key = {ptab_u128(family, addr), mac, family};
    size_t lo = 0, hi = a->ndevices;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = assets_device_cmp(&a->devices[mid], &key);

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

            if (m->type == SV_STR && assets_parse_mac(m->s, m->len, &mac))
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
                 ptab_find(&a->segs[info[0]->segment_idx].egress, fam[1], addr[1]) != PTAB_NONE);
}
