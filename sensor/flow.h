/*
 * flow.h - the bidirectional flow table.
 *
 * Key: (IP version, protocol, both addresses, both ports, up to two VLAN ids),
 * normalised so both directions find the same entry. ICMP flows have ports 0
 * (all ICMP between two hosts is one flow, as nDPI's reader does).
 *
 * Client: the side that sent a TCP SYN without ACK; if the first packet seen is
 * a SYN+ACK, its destination; otherwise the sender of the first packet.
 *
 * Time: the table runs on a "clock" the caller passes in, the highest packet
 * time seen so far (or the wall clock on an idle live interface). Expiry and
 * update intervals use that clock, never a packet's own timestamp, so a
 * capture whose timestamps jump backwards does not expire flows early.
 *
 * Timeouts: each flow is in one of several timeout classes (TCP not yet
 * established, established, closed; UDP; ICMP; other). Each class keeps an
 * LRU list ordered by last activity, so expiry only looks at list heads and
 * costs O(1) when nothing is due.
 *
 * Limits: max_flows and memcap (bytes: the flow record plus whatever the
 * owner adds to flow->extra_mem, e.g. DPI state). When a new flow would
 * exceed either, the least recently active flow is ended with reason FORCED
 * and counted as evicted.
 *
 * Ownership: the table owns the flow records. The owner's `end` callback
 * sees each flow once at its end (and at every periodic update) and must
 * release what it hung on flow->user; the record is freed after the callback.
 */
#ifndef FH_FLOW_H
#define FH_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

typedef enum {
    FLOW_TC_TCP_NEW = 0,
    FLOW_TC_TCP_ESTABLISHED,
    FLOW_TC_TCP_CLOSED,
    FLOW_TC_UDP,
    FLOW_TC_ICMP,
    FLOW_TC_OTHER,
    FLOW_TC_COUNT
} flow_tclass;

typedef enum {
    FLOW_REASON_TIMEOUT = 0,
    FLOW_REASON_CLOSED,   /* TCP FIN both ways or RST, then the closed timeout */
    FLOW_REASON_FORCED,   /* evicted by max_flows / memcap */
    FLOW_REASON_SHUTDOWN, /* end of input */
    FLOW_REASON_UPDATE,   /* periodic update of a long flow: the flow goes on */
    FLOW_REASON_COUNT
} flow_reason;

const char *flow_reason_name(flow_reason r);

typedef enum {
    TCP_ST_NONE = 0, /* mid-stream pickup: no handshake seen */
    TCP_ST_SYN_SENT,
    TCP_ST_SYN_RECV,
    TCP_ST_ESTABLISHED,
    TCP_ST_CLOSING, /* FIN from one side */
    TCP_ST_CLOSED,  /* FIN from both sides */
    TCP_ST_RESET,
} tcp_state;

enum { FLOW_TOSERVER = 0, FLOW_TOCLIENT = 1 };

typedef struct flow_key {
    uint8_t lo[16], hi[16]; /* addresses, lo <= hi (with ports as tie-break) */
    uint16_t lo_port, hi_port;
    uint16_t vlan[2];
    uint8_t ip_version, proto;
    uint8_t iface; /* live capture: 1 + index of the interface (-i), 0 = pcap input */
    uint8_t pad;
} flow_key;

typedef struct flow flow;
struct flow {
    flow *hnext;
    flow *lprev, *lnext; /* timeout-class LRU list */
    flow_key key;
    uint64_t hash; /* of key, kept so lookups and removal need not rehash */
    uint8_t tclass;
    uint8_t tcp_state;
    uint8_t tcp_flags[2]; /* ORed flags per direction */
    uint8_t fin_seen[2];

    /* Endpoints as reported: client first. */
    uint8_t cli[16], srv[16];
    uint16_t cli_port, srv_port;
    uint8_t ip_version, proto;
    uint8_t icmp_type, icmp_code; /* of the first ICMP packet */
    uint16_t vlan[DECODE_MAX_VLAN];
    uint8_t vlan_count;
    bool has_mac;
    bool alerted; /* a yara event was written for the flow (its flow.alerted) */
    uint8_t cli_mac[6], srv_mac[6];
    uint8_t tunnel_type, tunnel_depth, tunnel_ip_version;
    uint8_t tunnel_src[16], tunnel_dst[16];

    uint64_t first_us, last_us; /* packet times */
    uint64_t touch;             /* clock at the last packet */
    uint64_t next_update;       /* clock of the next periodic update */
    uint64_t pkts[2], bytes[2]; /* [FLOW_TOSERVER], [FLOW_TOCLIENT] */
    uint32_t pps_sec;           /* second (of packet time) being counted */
    uint32_t pps_cur, pps_peak; /* packets in it; the most in any second so far */
    uint64_t flow_id;
    uint32_t updates;
    uint32_t extra_mem;   /* bytes the owner holds for this flow (counted in memcap) */
    void *user;           /* owner's per-flow state (DPI) */
    void *payload;        /* owner's payload inspection state (reassembly, scan buffers) */
    uint32_t payload_mem; /* bytes of that state (counted in memcap, as extra_mem) */
};

typedef struct {
    uint32_t timeout_s[FLOW_TC_COUNT];
    uint32_t max_flows;
    size_t memcap;
    uint32_t update_interval_s; /* 0 = no periodic updates */
} flow_config;

/* Fills cfg with the defaults (documented in docs/configuration.md). */
void flow_config_defaults(flow_config *cfg);

#define FLOW_BUCKETS_MIN 4096u
#define FLOW_BUCKETS_MAX (1u << 22)

typedef struct {
    uint64_t created, ended, evicted, updates, active, max_active;
    uint64_t by_reason[FLOW_REASON_COUNT];
} flow_stats;

typedef void (*flow_end_fn)(flow *f, flow_reason reason, void *arg);

typedef struct {
    flow **buckets;
    uint32_t nbuckets;    /* a power of two, FLOW_BUCKETS_MIN to max_buckets */
    uint32_t max_buckets; /* the power of two at or above max_flows, at most FLOW_BUCKETS_MAX */
    flow *head[FLOW_TC_COUNT], *tail[FLOW_TC_COUNT];
    uint64_t timeout_us[FLOW_TC_COUNT];
    uint64_t update_us;
    uint32_t max_flows;
    size_t memcap, mem_used;
    size_t mem_peak; /* most mem_used ever */
    uint64_t hash_seed;
    flow *free_list; /* recycled records, so steady state allocates nothing */
    uint32_t free_count;
    flow_end_fn end;
    void *end_arg;
    flow_stats stats;
} flow_table;

/* Returns 0, or -1 when the bucket array cannot be allocated. */
int flow_table_init(flow_table *t, const flow_config *cfg, flow_end_fn end, void *end_arg);
/* Ends every flow (reason SHUTDOWN) and frees the table. */
void flow_table_free(flow_table *t);

/*
 * Finds or creates the flow of packet p at clock `now` (microseconds) and
 * accounts the packet to it: counters, TCP state, LRU position, periodic
 * update. Sets *dir to FLOW_TOSERVER or FLOW_TOCLIENT and *created when the
 * flow is new. Returns NULL only if no record can be allocated (counted as
 * evicted nothing; the caller counts the packet as unaccounted).
 */
flow *flow_packet(flow_table *t, const decode_pkt *p, uint64_t now, int *dir, bool *created);

/*
 * Emits a periodic update (end callback with FLOW_REASON_UPDATE) when the
 * flow's update interval has passed at clock `now`. Call after the owner has
 * processed the packet so the update carries its latest state.
 */
void flow_maybe_update(flow_table *t, flow *f, uint64_t now);

/* Records how many bytes the owner holds for f (counted against memcap). */
void flow_set_extra_mem(flow_table *t, flow *f, uint32_t bytes);

/* Records how many bytes the owner's payload inspection holds for f (counted against memcap). */
void flow_set_payload_mem(flow_table *t, flow *f, uint32_t bytes);

/* Ends flows whose timeout has passed at clock `now`. */
void flow_expire(flow_table *t, uint64_t now);

/* Ends every flow with reason SHUTDOWN (end of a pcap or of the capture). */
void flow_flush(flow_table *t);

/* Builds the normalised key of a packet (exposed for tests). */
void flow_key_of(const decode_pkt *p, flow_key *k);

/*
 * A hash of the packet's two addresses and the rest of its flow key except
 * ports and protocol (VLANs, interface), the same for both directions and in
 * every process: which worker thread the packet goes to.
 */
uint64_t flow_pair_hash(const decode_pkt *p);

#endif
