/*
 * assets_int.h - the asset inventory's layout, shared by its files: assets.c
 * (the object, lookups, enrichment) and assets_load.c (the YAML loader). Not
 * for other modules: they use assets.h.
 *
 * Every string the object hands out (asset_info fields, zone_pair strings,
 * placeholder values) is allocated once at load (assets_own) and freed by
 * assets_free().
 */
#ifndef FH_ASSETS_INT_H
#define FH_ASSETS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "assets.h"
#include "prefix_table.h"

enum { Z_INTERNET = 0, Z_UNKNOWN = 1, Z_FIRST = 2 };

typedef struct {
    char *name;
    const char **vals;
    size_t n;
} plist;

typedef struct {
    ptab_u128_t addr;
    uint64_t mac;
    int family;
} device;

typedef struct {
    const char *name;
    uint32_t zone;
    bool has_learning;
    int64_t learning_until_ms;
    ptab egress;
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
    ptab table;

    device *devices;
    size_t ndevices;

    plist *lists;
    size_t nlists;
};

/* "aa:bb:cc:dd:ee:ff" (or with '-') as a number; false if malformed. */
bool assets_parse_mac(const char *s, size_t len, uint64_t *out);

/* Orders devices by family, address, MAC (the devices array is sorted for lookups). */
int assets_device_cmp(const void *x, const void *y);

/* A copy of s[0..len) owned by a (freed with it); NULL on allocation failure. */
char *assets_own(assets *a, const char *s, size_t len);

#endif
