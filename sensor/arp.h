/*
 * arp.h - ARP bindings (IPv4 address to MAC) seen on the wire, for spoofing detection:
 * one `arp` event when a binding is first seen and one when it changes (the address
 * answers from another MAC: ARP cache poisoning, GB/T 20986 broadcast spoofing), with
 * the previous MAC (docs/events.md). Runs on the capture thread, which sees every frame.
 *
 * Bounded: a fixed table of ARP_SLOTS bindings keyed by (address, VLAN), open addressing
 * over ARP_PROBE slots; when those are taken the least recently seen binding is
 * replaced (counted). ARP probes (sender 0.0.0.0) bind nothing.
 */
#ifndef FH_ARP_H
#define FH_ARP_H

#include <stdbool.h>
#include <stdint.h>

#define ARP_SLOTS 8192
#define ARP_PROBE 16

typedef struct {
    uint32_t ip;
    uint16_t vlan;
    uint8_t mac[6];
    uint8_t used;
    uint64_t seen_us;
} arp_entry;

typedef struct {
    arp_entry *slots; /* ARP_SLOTS */
    uint64_t bindings, changes, evicted;
} arp_table;

typedef enum { ARP_SAME, ARP_NEW, ARP_CHANGED } arp_verdict;

/*
 * IPv6 routers (router advertisements): the same idea for the router's link-local
 * address, keyed by (address, VLAN): its MAC and whether it withdrew itself (router
 * lifetime 0). An event when a router is first seen, answers from another MAC (a forged
 * advertisement, THC's fake_router6 / kill_router6) or changes between offering and
 * withdrawing itself. ARP_SLOTS / 16 routers, least recently seen replaced.
 */
#define RA_SLOTS 512

typedef struct {
    uint8_t ip[16];
    uint16_t vlan;
    uint8_t mac[6];
    uint8_t used, withdrawn;
    uint64_t seen_us;
} ra_entry;

typedef struct {
    ra_entry *slots; /* RA_SLOTS */
} ra_table;

bool ra_table_init(ra_table *t);
void ra_table_free(ra_table *t);
/* Records an advertisement of router ip on vlan from mac; withdrawn: router lifetime 0.
 * prev gets the MAC before a change of MAC. ARP_CHANGED also for a change of withdrawn. */
arp_verdict ra_table_bind(ra_table *t, const uint8_t ip[16], uint16_t vlan, const uint8_t mac[6],
                          bool withdrawn, uint64_t ts_us, uint8_t prev[6], bool *mac_changed);

bool arp_table_init(arp_table *t);
void arp_table_free(arp_table *t);
/* Records that ip (4 bytes, network order) on vlan answered from mac; prev gets the
 * binding's MAC before a change. */
arp_verdict arp_table_bind(arp_table *t, const uint8_t ip[4], uint16_t vlan, const uint8_t mac[6],
                           uint64_t ts_us, uint8_t prev[6]);

#endif
