/*
 * flow.c - the flow table; see flow.h for the model (key, client, clock,
 * timeout classes, limits, ownership).
 */
#include "flow.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define FLOW_ID_MASK ((1ULL << 53) - 1) /* exact in JavaScript numbers too */

static const char *reason_names[FLOW_REASON_COUNT] = {"timeout", "closed", "forced", "shutdown",
                                                      "update"};

const char *flow_reason_name(flow_reason r)
{
    return (unsigned)r < FLOW_REASON_COUNT ? reason_names[r] : "unknown";
}

void flow_config_defaults(flow_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_s[FLOW_TC_TCP_NEW] = 30;
    cfg->timeout_s[FLOW_TC_TCP_ESTABLISHED] = 600;
    cfg->timeout_s[FLOW_TC_TCP_CLOSED] = 10;
    cfg->timeout_s[FLOW_TC_UDP] = 60;
    cfg->timeout_s[FLOW_TC_ICMP] = 30;
    cfg->timeout_s[FLOW_TC_OTHER] = 60;
    cfg->max_flows = 500000;
    cfg->memcap = (size_t)1 << 30;
    cfg->update_interval_s = 300;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const flow_key *k, uint64_t seed)
{
    uint64_t w[sizeof(flow_key) / 8 + 1] = {0};
    uint64_t h = seed;

    memcpy(w, k, sizeof(*k));
    for (size_t i = 0; i < sizeof(w) / 8; i++)
        h = mix64(h ^ w[i]) + i;
    return h;
}

/* The bucket hash, on every packet. An IPv4 key is mostly zeros: its two addresses share one
 * word, so it takes three rounds where key_hash takes six. */
static inline uint64_t lookup_hash(const flow_key *k, uint64_t seed)
{
    _Static_assert(sizeof(flow_key) - offsetof(flow_key, lo_port) <= 16, "rest holds the tail");
    uint32_t lo, hi;
    uint64_t rest[2] = {0, 0}; /* ports, VLANs, version, protocol, interface */

    if (k->ip_version != 4)
        return key_hash(k, seed);
    memcpy(&lo, k->lo, 4);
    memcpy(&hi, k->hi, 4);
    memcpy(rest, &k->lo_port, sizeof(*k) - offsetof(flow_key, lo_port));
    return mix64(mix64(mix64(seed ^ lo ^ (uint64_t)hi << 32) ^ rest[0]) ^ rest[1]);
}

static uint64_t addr_hash(const uint8_t *a, size_t alen)
{
    uint64_t w[2] = {0, 0};

    memcpy(w, a, alen);
    return mix64(w[0] ^ mix64(w[1] ^ 0x6a09e667f3bcc908ULL));
}

uint64_t flow_pair_hash(const decode_pkt *p)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    uint64_t extra = (uint64_t)(p->vlan_count > 0 ? p->vlan[0] : 0) |
                     (uint64_t)(p->vlan_count > 1 ? p->vlan[1] : 0) << 16 |
                     (uint64_t)p->iface << 32 | (uint64_t)p->ip_version << 40;

    /* A sum of the two addresses' hashes: the same whichever side sent the packet. */
    return mix64((addr_hash(p->src, alen) + addr_hash(p->dst, alen)) ^ extra);
}

void flow_key_of(const decode_pkt *p, flow_key *k)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    uint16_t sp = p->sport, dp = p->dport;
    int c;

    memset(k, 0, sizeof(*k));
    if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6)
        sp = dp = 0;
    if (alen == 4) { /* memcmp's order, without a call on every packet */
        uint32_t s = (uint32_t)p->src[0] << 24 | p->src[1] << 16 | p->src[2] << 8 | p->src[3];
        uint32_t d = (uint32_t)p->dst[0] << 24 | p->dst[1] << 16 | p->dst[2] << 8 | p->dst[3];

        c = s < d ? -1 : s > d;
    } else {
        c = memcmp(p->src, p->dst, alen);
    }
    if (c < 0 || (c == 0 && sp <= dp)) {
        memcpy(k->lo, p->src, alen);
        memcpy(k->hi, p->dst, alen);
        k->lo_port = sp;
        k->hi_port = dp;
    } else {
        memcpy(k->lo, p->dst, alen);
        memcpy(k->hi, p->src, alen);
        k->lo_port = dp;
        k->hi_port = sp;
    }
    k->vlan[0] = p->vlan_count > 0 ? p->vlan[0] : 0;
    k->vlan[1] = p->vlan_count > 1 ? p->vlan[1] : 0;
    k->ip_version = p->ip_version;
    k->proto = p->l4_proto;
    k->iface = p->iface; /* the same 5-tuple on two interfaces is two flows */
}

static flow_tclass initial_class(uint8_t proto)
{
    switch (proto) {
    case IPPROTO_TCP:
        return FLOW_TC_TCP_NEW;
    case IPPROTO_UDP:
        return FLOW_TC_UDP;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        return FLOW_TC_ICMP;
    }
    return FLOW_TC_OTHER;
}

int flow_table_init(flow_table *t, const flow_config *cfg, flow_end_fn end, void *end_arg)
{
    memset(t, 0, sizeof(*t));
    t->max_flows = cfg->max_flows ? cfg->max_flows : 1;
    t->memcap = cfg->memcap;
    for (int i = 0; i < FLOW_TC_COUNT; i++)
        t->timeout_us[i] = (uint64_t)cfg->timeout_s[i] * 1000000u;
    t->update_us = (uint64_t)cfg->update_interval_s * 1000000u;
    /* Small to start with, up to about one bucket per flow allowed (flow_grow). */
    t->max_buckets = FLOW_BUCKETS_MIN;
    while (t->max_buckets < t->max_flows && t->max_buckets < FLOW_BUCKETS_MAX)
        t->max_buckets <<= 1;
    t->nbuckets = FLOW_BUCKETS_MIN;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    if (!t->buckets)
        return -1;
    t->hash_seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)t;
    t->end = end;
    t->end_arg = end_arg;
    return 0;
}

static void list_remove(flow_table *t, flow *f)
{
    if (f->lprev)
        f->lprev->lnext = f->lnext;
    else
        t->head[f->tclass] = f->lnext;
    if (f->lnext)
        f->lnext->lprev = f->lprev;
    else
        t->tail[f->tclass] = f->lprev;
    f->lprev = f->lnext = NULL;
}

static void list_append(flow_table *t, flow *f)
{
    f->lnext = NULL;
    f->lprev = t->tail[f->tclass];
    if (t->tail[f->tclass])
        t->tail[f->tclass]->lnext = f;
    else
        t->head[f->tclass] = f;
    t->tail[f->tclass] = f;
}

static void hash_remove(flow_table *t, flow *f)
{
    uint32_t b = (uint32_t)f->hash & (t->nbuckets - 1);
    flow **pp = &t->buckets[b];

    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
}

/*
 * Doubles the bucket array once there are more live flows than buckets, up to max_buckets.
 * A table sized for max_flows up front (4 MiB of buckets for the default 500,000) makes
 * nearly every lookup a cache miss; one sized to the flows alive stays in cache. Nothing
 * walks the buckets in order, so relinking changes no outcome. When the allocation fails
 * the table keeps its size: longer chains, nothing lost.
 */
static void flow_grow(flow_table *t)
{
    uint32_t n = t->nbuckets * 2;
    flow **nb;

    if (t->stats.active <= t->nbuckets || t->nbuckets >= t->max_buckets ||
        !(nb = calloc(n, sizeof(*nb))))
        return;
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        flow *f = t->buckets[i], *next;

        for (; f; f = next) {
            uint32_t b = (uint32_t)f->hash & (n - 1);

            next = f->hnext;
            f->hnext = nb[b];
            nb[b] = f;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = n;
}

/* Ends a flow: callback, unlink, recycle. */
static void flow_end(flow_table *t, flow *f, flow_reason reason)
{
    if (reason != FLOW_REASON_FORCED &&
        (f->tcp_state == TCP_ST_CLOSED || f->tcp_state == TCP_ST_RESET))
        reason = FLOW_REASON_CLOSED;
    if (t->end)
        t->end(f, reason, t->end_arg);
    t->stats.ended++;
    t->stats.by_reason[reason]++;
    if (reason == FLOW_REASON_FORCED)
        t->stats.evicted++;
    hash_remove(t, f);
    list_remove(t, f);
    t->mem_used -= sizeof(*f) + f->extra_mem + f->payload_mem;
    t->stats.active--;
    f->hnext = t->free_list;
    t->free_list = f;
    t->free_count++;
}

void flow_table_free(flow_table *t)
{
    flow *f;

    flow_flush(t);
    while ((f = t->free_list)) {
        t->free_list = f->hnext;
        free(f);
    }
    free(t->buckets);
    t->buckets = NULL;
}

void flow_expire(flow_table *t, uint64_t now)
{
    for (int c = 0; c < FLOW_TC_COUNT; c++) {
        flow *f;

        while ((f = t->head[c]) && f->touch + t->timeout_us[c] <= now)
            flow_end(t, f, c == FLOW_TC_TCP_CLOSED ? FLOW_REASON_CLOSED : FLOW_REASON_TIMEOUT);
    }
}

void flow_flush(flow_table *t)
{
    for (;;) {
        flow *oldest = NULL;

        /* End in order of last activity so output order is deterministic. */
        for (int c = 0; c < FLOW_TC_COUNT; c++)
            if (t->head[c] &&
                (!oldest || t->head[c]->touch < oldest->touch ||
                 (t->head[c]->touch == oldest->touch && t->head[c]->flow_id < oldest->flow_id)))
                oldest = t->head[c];
        if (!oldest)
            break;
        flow_end(t, oldest, FLOW_REASON_SHUTDOWN);
    }
}

/* Evicts the least recently active flow. Returns false if the table is empty. */
static bool evict_one(flow_table *t)
{
    flow *oldest = NULL;

    for (int c = 0; c < FLOW_TC_COUNT; c++)
        if (t->head[c] && (!oldest || t->head[c]->touch < oldest->touch))
            oldest = t->head[c];
    if (!oldest)
        return false;
    flow_end(t, oldest, FLOW_REASON_FORCED);
    return true;
}

static flow *flow_new(flow_table *t, const decode_pkt *p, const flow_key *k, uint64_t hash,
                      uint64_t now)
{
    flow *f;
    size_t alen = p->ip_version == 4 ? 4 : 16;
    bool server_first;

    while (t->stats.active >= t->max_flows || t->mem_used + sizeof(*f) > t->memcap)
        if (!evict_one(t))
            break;
    if (t->free_list) {
        f = t->free_list;
        t->free_list = f->hnext;
        t->free_count--;
    } else if (!(f = malloc(sizeof(*f)))) {
        return NULL;
    }
    memset(f, 0, sizeof(*f));
    f->key = *k;
    f->hash = hash;
    f->ip_version = p->ip_version;
    f->proto = p->l4_proto;
    /* A first packet that is a SYN+ACK comes from the server. Without a
     * handshake, a packet from a well-known port to an ephemeral one is taken
     * as the server's reply (a DNS answer seen before its query). */
    if (p->l4_proto == IPPROTO_TCP && (p->tcp_flags & 0x02))
        server_first = (p->tcp_flags & 0x12) == 0x12;
    else if (p->l4_proto == IPPROTO_TCP || p->l4_proto == IPPROTO_UDP ||
             p->l4_proto == IPPROTO_SCTP)
        server_first = p->sport < 1024 && p->dport >= 1024;
    else
        server_first = false;
    memcpy(f->cli, server_first ? p->dst : p->src, alen);
    memcpy(f->srv, server_first ? p->src : p->dst, alen);
    f->cli_port = server_first ? p->dport : p->sport;
    f->srv_port = server_first ? p->sport : p->dport;
    if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6) {
        f->cli_port = f->srv_port = 0;
        f->icmp_type = p->icmp_type;
        f->icmp_code = p->icmp_code;
    }
    f->vlan_count = p->vlan_count;
    memcpy(f->vlan, p->vlan, sizeof(f->vlan));
    if (p->has_mac) {
        f->has_mac = true;
        memcpy(f->cli_mac, server_first ? p->mac_dst : p->mac_src, 6);
        memcpy(f->srv_mac, server_first ? p->mac_src : p->mac_dst, 6);
    }
    f->tunnel_type = p->tunnel_type;
    f->tunnel_depth = p->tunnel_depth;
    f->tunnel_ip_version = p->tunnel_ip_version;
    memcpy(f->tunnel_src, p->tunnel_src, 16);
    memcpy(f->tunnel_dst, p->tunnel_dst, 16);
    f->first_us = f->last_us = p->ts_us;
    f->touch = now;
    f->next_update = t->update_us ? now + t->update_us : UINT64_MAX;
    f->flow_id = mix64(key_hash(k, 0x5eed) ^ mix64(p->ts_us)) & FLOW_ID_MASK;
    f->tclass = initial_class(p->l4_proto);
    f->hnext = t->buckets[hash & (t->nbuckets - 1)];
    t->buckets[hash & (t->nbuckets - 1)] = f;
    list_append(t, f);
    t->mem_used += sizeof(*f);
    if (t->mem_used > t->mem_peak)
        t->mem_peak = t->mem_used;
    t->stats.created++;
    if (++t->stats.active > t->stats.max_active)
        t->stats.max_active = t->stats.active;
    flow_grow(t);
    return f;
}

/* TCP state machine: moves the flow between the TCP timeout classes. */
static void tcp_track(flow_table *t, flow *f, uint8_t flags, int dir)
{
    uint8_t st = f->tcp_state;
    flow_tclass c;

    f->tcp_flags[dir] |= flags;
    if (flags & 0x04) { /* RST */
        st = TCP_ST_RESET;
    } else {
        if ((flags & 0x12) == 0x02 && dir == FLOW_TOSERVER && st == TCP_ST_NONE)
            st = TCP_ST_SYN_SENT;
        else if ((flags & 0x12) == 0x12 && dir == FLOW_TOCLIENT &&
                 (st == TCP_ST_SYN_SENT || st == TCP_ST_NONE))
            st = TCP_ST_SYN_RECV;
        else if ((flags & 0x10) && dir == FLOW_TOSERVER && st == TCP_ST_SYN_RECV)
            st = TCP_ST_ESTABLISHED;
        else if (st == TCP_ST_NONE && f->pkts[0] && f->pkts[1])
            st = TCP_ST_ESTABLISHED; /* picked up mid-stream, both sides talk */
        if (flags & 0x01) {          /* FIN */
            f->fin_seen[dir] = 1;
            st = (f->fin_seen[0] && f->fin_seen[1]) ? TCP_ST_CLOSED : TCP_ST_CLOSING;
        }
    }
    if (st == TCP_ST_CLOSED || st == TCP_ST_RESET)
        c = FLOW_TC_TCP_CLOSED;
    else if (st == TCP_ST_ESTABLISHED || st == TCP_ST_CLOSING)
        c = FLOW_TC_TCP_ESTABLISHED;
    else
        c = FLOW_TC_TCP_NEW;
    f->tcp_state = st;
    if (c != f->tclass) {
        list_remove(t, f);
        f->tclass = (uint8_t)c;
        list_append(t, f);
    }
}

flow *flow_packet(flow_table *t, const decode_pkt *p, uint64_t now, int *dir, bool *created)
{
    flow_key k;
    uint64_t h;
    flow *f;
    size_t alen = p->ip_version == 4 ? 4 : 16;

    flow_key_of(p, &k);
    h = lookup_hash(&k, t->hash_seed);
    for (f = t->buckets[h & (t->nbuckets - 1)]; f; f = f->hnext)
        if (f->hash == h && memcmp(&f->key, &k, sizeof(k)) == 0)
            break;
    *created = false;
    /* Timed out but not yet collected (flow_expire runs every so often): the
     * packet starts a new flow, as it would have right after the collection.
     * This keeps the outcome independent of when expiry runs. */
    if (f && f->touch + t->timeout_us[f->tclass] <= now) {
        flow_end(t, f, f->tclass == FLOW_TC_TCP_CLOSED ? FLOW_REASON_CLOSED : FLOW_REASON_TIMEOUT);
        f = NULL;
    }
    /* A new SYN on a finished connection is a new connection (port reuse). */
    if (f && p->l4_proto == IPPROTO_TCP && (p->tcp_flags & 0x16) == 0x02 &&
        (f->tcp_state == TCP_ST_CLOSED || f->tcp_state == TCP_ST_RESET)) {
        flow_end(t, f, FLOW_REASON_CLOSED);
        f = NULL;
    }
    if (!f) {
        f = flow_new(t, p, &k, h, now);
        if (!f)
            return NULL;
        *created = true;
    }
    if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6)
        *dir = memcmp(p->src, f->cli, alen) == 0 ? FLOW_TOSERVER : FLOW_TOCLIENT;
    else
        *dir = (memcmp(p->src, f->cli, alen) == 0 && p->sport == f->cli_port) ? FLOW_TOSERVER
                                                                              : FLOW_TOCLIENT;
    f->pkts[*dir]++;
    f->bytes[*dir] += p->ip_bytes;
    /* Packet rate: packets per whole second of packet time, both directions; a packet
     * older than the second being counted (capture reordering) counts in it. */
    if ((uint32_t)(p->ts_us / 1000000u) > f->pps_sec) {
        f->pps_sec = (uint32_t)(p->ts_us / 1000000u);
        f->pps_cur = 0;
    }
    if (++f->pps_cur > f->pps_peak)
        f->pps_peak = f->pps_cur;
    if (p->ts_us > f->last_us)
        f->last_us = p->ts_us;
    if (p->ts_us < f->first_us)
        f->first_us = p->ts_us;
    f->touch = now;
    if (p->l4_proto == IPPROTO_TCP)
        tcp_track(t, f, p->tcp_flags, *dir);
    /* Move to the tail of its LRU list (it may already be there). */
    if (t->tail[f->tclass] != f) {
        list_remove(t, f);
        list_append(t, f);
    }
    return f;
}

/* Called by the owner after it accounted the packet (DPI etc.): periodic updates. */
void flow_maybe_update(flow_table *t, flow *f, uint64_t now)
{
    if (now < f->next_update)
        return;
    f->updates++;
    t->stats.updates++;
    /* Catch up in whole intervals so a long silence gives one update, not many. */
    while (f->next_update <= now)
        f->next_update += t->update_us;
    if (t->end)
        t->end(f, FLOW_REASON_UPDATE, t->end_arg);
}

void flow_set_extra_mem(flow_table *t, flow *f, uint32_t bytes)
{
    t->mem_used = t->mem_used - f->extra_mem + bytes;
    if (t->mem_used > t->mem_peak)
        t->mem_peak = t->mem_used;
    f->extra_mem = bytes;
}

void flow_set_payload_mem(flow_table *t, flow *f, uint32_t bytes)
{
    t->mem_used = t->mem_used - f->payload_mem + bytes;
    if (t->mem_used > t->mem_peak)
        t->mem_peak = t->mem_used;
    f->payload_mem = bytes;
}
