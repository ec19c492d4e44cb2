/*
 * arp.c - see arp.h.
 */
#include "arp.h"

#include <stdlib.h>
#include <string.h>

bool arp_table_init(arp_table *t)
{
    memset(t, 0, sizeof(*t));
    t->slots = calloc(ARP_SLOTS, sizeof(arp_entry));
    return t->slots != NULL;
}

void arp_table_free(arp_table *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static uint32_t slot_of(uint32_t ip, uint16_t vlan)
{
    uint32_t h = (ip ^ ((uint32_t)vlan << 16)) * 2654435761u;

    return (h ^ (h >> 15)) & (ARP_SLOTS - 1);
}

arp_verdict arp_table_bind(arp_table *t, const uint8_t ipb[4], uint16_t vlan, const uint8_t mac[6],
                           uint64_t ts_us, uint8_t prev[6])
{
    uint32_t ip = (uint32_t)ipb[0] << 24 | (uint32_t)ipb[1] << 16 | (uint32_t)ipb[2] << 8 | ipb[3];
    uint32_t s = slot_of(ip, vlan);
    arp_entry *free_e = NULL, *oldest = NULL;

    for (uint32_t i = 0; i < ARP_PROBE; i++) {
        arp_entry *e = &t->slots[(s + i) & (ARP_SLOTS - 1)];

        if (!e->used) {
            if (!free_e)
                free_e = e;
            continue;
        }
        if (e->ip == ip && e->vlan == vlan) {
            e->seen_us = ts_us;
            if (!memcmp(e->mac, mac, 6))
                return ARP_SAME;
            memcpy(prev, e->mac, 6);
            memcpy(e->mac, mac, 6);
            t->changes++;
            return ARP_CHANGED;
        }
        if (!oldest || e->seen_us < oldest->seen_us)
            oldest = e;
    }
    if (!free_e) {
        free_e = oldest;
        t->evicted++;
    } else {
        t->bindings++;
    }
    free_e->used = 1;
    free_e->ip = ip;
    free_e->vlan = vlan;
    memcpy(free_e->mac, mac, 6);
    free_e->seen_us = ts_us;
    return ARP_NEW;
}

bool ra_table_init(ra_table *t)
{
    t->slots = calloc(RA_SLOTS, sizeof(ra_entry));
    return t->slots != NULL;
}

void ra_table_free(ra_table *t)
{
    free(t->slots);
    t->slots = NULL;
}

arp_verdict ra_table_bind(ra_table *t, const uint8_t ip[16], uint16_t vlan, const uint8_t mac[6],
                          bool withdrawn, uint64_t ts_us, uint8_t prev[6], bool *mac_changed)
{
    uint32_t h = 2166136261u;
    ra_entry *free_e = NULL, *oldest = NULL;

    *mac_changed = false;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 16777619u;
    h = (h ^ vlan) * 16777619u;
    for (uint32_t i = 0; i < ARP_PROBE; i++) {
        ra_entry *e = &t->slots[(h + i) & (RA_SLOTS - 1)];

        if (!e->used) {
            if (!free_e)
                free_e = e;
            continue;
        }
        if (!memcmp(e->ip, ip, 16) && e->vlan == vlan) {
            bool same_mac = !memcmp(e->mac, mac, 6);

            e->seen_us = ts_us;
            if (same_mac && e->withdrawn == withdrawn)
                return ARP_SAME;
            if (!same_mac) {
                memcpy(prev, e->mac, 6);
                memcpy(e->mac, mac, 6);
                *mac_changed = true;
            }
            e->withdrawn = withdrawn;
            return ARP_CHANGED;
        }
        if (!oldest || e->seen_us < oldest->seen_us)
            oldest = e;
    }
    if (!free_e)
        free_e = oldest;
    free_e->used = 1;
    memcpy(free_e->ip, ip, 16);
    free_e->vlan = vlan;
    memcpy(free_e->mac, mac, 6);
    free_e->withdrawn = withdrawn;
    free_e->seen_us = ts_us;
    return ARP_NEW;
}
