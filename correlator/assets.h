/*
 * assets.h - the asset inventory: which zone, segment and owning department
 * (责任单位) an address belongs to, the zone matrix, and the lists rules expand
 * through placeholders (%management_networks%, %allowed_countries%, ...).
 *
 * Files: assets_load.c reads the YAML (common/fh_yaml, common/fh_addr for
 * addresses and CIDRs); prefix_table.c is the longest-prefix table; assets.c
 * holds the object, lookups and enrichment; assets_int.h their shared layout.
 *
 * Life cycle (reload without restart):
 *
 *   assets_load("assets.yaml")  ──►  assets *  (immutable from here on)
 *   assets_bind(&fields, ft)         once per rule set, before event_decoder_new()
 *   per event: event_decode(); assets_enrich(a, &fields, event_decoder_slots(d), ft->n, ts)
 *   reload: assets_load() a new object; on success swap the pointer; free the old
 *           one once no event enriched with it is still being evaluated (strings
 *           written into slots point into the assets object).
 *
 * A failed load leaves nothing behind and the caller keeps the old inventory.
 * An assets object is never written after assets_load(), so any number of
 * threads may call assets_lookup() / assets_enrich() on it at once.
 *
 * Address lookup is longest-prefix match over every segment CIDR and host
 * address (prefix_table.h). The prefixes are flattened at load time into sorted, disjoint
 * [start, end] intervals, each owned by its most specific prefix, one array
 * for IPv4 and one for IPv6; a lookup is one binary search (about 10 steps for
 * a thousand prefixes, no pointer chasing). Nested prefixes are allowed and
 * resolved by longest prefix: a segment 10.20.5.0/24 inside another segment's
 * 10.20.0.0/16 owns 10.20.5.x. The same prefix in two segments (or one host
 * listed twice) is a load error. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
 * are looked up as IPv4.
 *
 * Fields filled by assets_enrich(), when a loaded rule references them (SIDE is
 * src_asset or dest_asset, from src_ip / dest_ip):
 *
 *   SIDE.zone, .segment, .department, .criticality, .tenant   strings, when in the inventory
 *   SIDE.name          host name, when the address is a listed host (not just a segment)
 *   SIDE.known         bool: the address is in the inventory
 *   SIDE.device_known  bool: the (ether.src_mac / ether.dest_mac, ip) pair is a known
 *                      device; only when the address is in the inventory and the
 *                      event carries the MAC
 *   SIDE.learning      bool: the event is before its segment's learning_until
 *                      (only when the address is in the inventory)
 *   src_internet, dest_internet   bool: public address (assets_is_public) and not
 *                      in the inventory
 *   zone_pair          "dmz->data"; an address outside the inventory is zone
 *                      "internet" when public, "unknown" otherwise
 *   zone_allowed       bool: the zone matrix allows the pair (deny entries, then
 *                      allow entries, then intra_zone / default), and, with
 *                      tenant_isolation, the two sides are not two different tenants
 *                      (a side without a tenant is shared infrastructure)
 *   egress_allowed     bool: only for a source in the inventory and a destination
 *                      on the Internet: the destination is on the egress allow-list
 *                      of the source's segment (a segment without `egress:` allows
 *                      nothing)
 *
 * The inventory is authoritative: these slots are overwritten (or cleared) even
 * if the event carried fields of the same names. A field no rule references
 * costs nothing.
 */
#ifndef FH_ASSETS_H
#define FH_ASSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "event.h"

typedef struct assets assets;

/* What the inventory says about one address (strings owned by the assets object). */
typedef struct {
    const char *name; /* host name; NULL when only a segment matched */
    const char *segment;
    const char *zone;
    const char *department;
    const char *tenant;      /* tenant id; NULL if the segment has none */
    const char *criticality; /* low, medium, high or critical */
    uint32_t segment_idx;    /* internal indices (zone matrix, egress, learning) */
    uint32_t zone_idx;
} asset_info;

/*
 * Loads an inventory file (format: rules/assets.example.yaml). Returns FH_OK
 * and sets *out, or FH_ERR_IO (cannot open), FH_ERR_PARSE (YAML syntax),
 * FH_ERR_CONFIG (content), FH_ERR_NOMEM; then *out is NULL and err holds
 * "PATH:LINE: what: why", e.g.
 *   "assets.yaml:12: segment 'dmz-web': invalid CIDR '10.10.0/16'".
 */
fh_err assets_load(assets **out, const char *path, char *err, size_t errlen);
void assets_free(assets *a);

/* Longest-prefix match. addr is 4 bytes (AF_INET) or 16 (AF_INET6); NULL if not in the inventory.
 */
const asset_info *assets_lookup(const assets *a, int family, const uint8_t *addr);
/* The same for the text of an address ("10.10.1.5", "2001:db8::1"); NULL if malformed. */
const asset_info *assets_lookup_str(const assets *a, const char *s, size_t len);

/*
 * True if addr is globally reachable per the IANA IPv4/IPv6 Special-Purpose
 * Address Registries (private, loopback, link-local, CGNAT, documentation,
 * benchmarking, multicast, reserved, ULA ... are not). IPv6 that embeds IPv4
 * (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) is judged by the embedded address.
 */
bool assets_is_public(int family, const uint8_t *addr);

/*
 * Placeholder lists for Sigma |expand. Names:
 *   allowed_countries, management_networks, approved_resolvers, approved_vpns
 *                      (from `policy:`; absent unless written there)
 *   zone.<zone>        the CIDRs of every segment in the zone ("zone.management")
 *   egress.<segment>   the segment's egress allow-list
 *   <name>             each list under `lists:` (threat intel, mail servers, ...)
 * Returns FH_OK with *values (owned by a, n strings) or FH_ERR_NOTFOUND.
 */
fh_err assets_placeholder(const assets *a, const char *name, const char ***values, size_t *n);

/* ---- enrichment -------------------------------------------------------------- */

enum {
    ASSET_F_ZONE,
    ASSET_F_DEPARTMENT,
    ASSET_F_SEGMENT,
    ASSET_F_CRITICALITY,
    ASSET_F_TENANT,
    ASSET_F_NAME,
    ASSET_F_KNOWN,
    ASSET_F_DEVICE_KNOWN,
    ASSET_F_LEARNING,
    ASSET_F_COUNT
};

/* The slot ids enrichment reads and writes, for one rule set's field_table. */
typedef struct {
    field_id ip[2];  /* src_ip, dest_ip (0 = src, 1 = dest throughout) */
    field_id mac[2]; /* ether.src_mac, ether.dest_mac */
    field_id side[2][ASSET_F_COUNT];
    field_id internet[2];
    field_id zone_pair, zone_allowed, egress_allowed;
    bool active; /* some rule references an enrichment field */
} assets_fields;

/*
 * Finds which enrichment fields the rules reference (field_lookup) and interns
 * the inputs those need (src_ip, dest_ip, ether.*_mac) so that the decoder
 * fills them: call after loading the rules and before event_decoder_new().
 * Does not depend on an assets object, so inventory reloads need no re-bind.
 * Returns FH_ERR_LIMIT if the field table is full.
 */
fh_err assets_bind(assets_fields *f, field_table *ft);

/*
 * Fills the referenced enrichment slots of one decoded event. slots/nslots are
 * the decoder's value slots (event_decoder_slots(), ft->n); ts_ms is the event
 * time (event_view.ts_ms) for learning periods. a may be NULL (no inventory):
 * the slots are cleared and only src/dest_internet are set.
 */
void assets_enrich(const assets *a, const assets_fields *f, sv *slots, uint32_t nslots,
                   int64_t ts_ms);

/* What enrichment found for each side (0 = src, 1 = dest) of the last event. */
typedef struct {
    bool done[2];              /* that side was looked at (its address parsed or not) */
    const asset_info *info[2]; /* the asset, or NULL (no asset, or not an address) */
} assets_seen;

/* assets_enrich, also telling what it found (seen->done false when nothing was enriched). */
void assets_enrich_seen(const assets *a, const assets_fields *f, sv *slots, uint32_t nslots,
                        int64_t ts_ms, assets_seen *seen);

#endif
