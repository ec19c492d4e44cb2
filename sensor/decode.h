/*
 * decode.h - from link-layer frame to a decoded packet (addresses, ports, payload).
 *
 * Pipeline, outermost first:
 *
 *   link (Ethernet | Linux SLL/SLL2 | raw IP | NULL/loopback | PPP)
 *     -> 802.1Q / 802.1ad / QinQ tags, MPLS label stack, PPPoE session
 *     -> IPv4 (options checked) | IPv6 (extension headers walked)
 *        -> fragments go to defrag.c; a completed datagram re-enters here
 *        -> tunnels: IP-in-IP, IPv6-in-IPv4, GRE (incl. ERSPAN I/II/III,
 *           transparent Ethernet), VXLAN (UDP 4789), Geneve (UDP 6081),
 *           GTP-U (UDP 2152); the innermost IP packet is what is classified
 *     -> TCP | UDP | ICMP | ICMPv6 | SCTP | other IP protocol
 *
 * Every read is preceded by a length check. A packet that cannot be decoded
 * increments exactly one counter in decode_stats.errors[] (the reason) and is
 * otherwise dropped; decoding never logs and never aborts. Fragment reassembly
 * also reports, on any packet that feeds it, what it saw besides: an overlap
 * (frag.overlap: the fragment is still used) and sets it gave up for memory or
 * time (frag.memcap, frag.timeout). Reasons are stable
 * identifiers that appear in `stats` and `anomaly` events.
 *
 * Ownership: a decode_pkt points into the caller's frame, or into the defrag
 * context's reassembly buffer; it is valid until the next decode call on the
 * same decoder.
 */
#ifndef FH_DECODE_H
#define FH_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defrag.h"

/* X-macro: enum name, stable reason id. Append only; names are an interface. */
#define DECODE_REASONS(X)                                                                          \
    X(LINK_UNSUPPORTED, "link.unsupported")                                                        \
    X(ETH_TRUNCATED, "eth.truncated")                                                              \
    X(SLL_TRUNCATED, "sll.truncated")                                                              \
    X(NULL_TRUNCATED, "null.truncated")                                                            \
    X(PPP_TRUNCATED, "ppp.truncated")                                                              \
    X(VLAN_TRUNCATED, "vlan.truncated")                                                            \
    X(VLAN_TOO_MANY, "vlan.too_many")                                                              \
    X(MPLS_TRUNCATED, "mpls.truncated")                                                            \
    X(MPLS_TOO_MANY, "mpls.too_many")                                                              \
    X(MPLS_BAD_PAYLOAD, "mpls.bad_payload")                                                        \
    X(PPPOE_TRUNCATED, "pppoe.truncated")                                                          \
    X(IPV4_TRUNCATED, "ipv4.truncated")                                                            \
    X(IPV4_BAD_VERSION, "ipv4.bad_version")                                                        \
    X(IPV4_BAD_HEADER_LEN, "ipv4.bad_header_len")                                                  \
    X(IPV4_BAD_TOTAL_LEN, "ipv4.bad_total_len")                                                    \
    X(IPV4_BAD_OPTIONS, "ipv4.bad_options")                                                        \
    X(IPV6_TRUNCATED, "ipv6.truncated")                                                            \
    X(IPV6_BAD_VERSION, "ipv6.bad_version")                                                        \
    X(IPV6_BAD_PAYLOAD_LEN, "ipv6.bad_payload_len")                                                \
    X(IPV6_TRUNCATED_EXT_HDR, "ipv6.truncated_ext_hdr")                                            \
    X(IPV6_TOO_MANY_EXT_HDRS, "ipv6.too_many_ext_hdrs")                                            \
    X(TCP_TRUNCATED, "tcp.truncated")                                                              \
    X(TCP_BAD_OFFSET, "tcp.bad_offset")                                                            \
    X(UDP_TRUNCATED, "udp.truncated")                                                              \
    X(UDP_BAD_LEN, "udp.bad_len")                                                                  \
    X(ICMP_TRUNCATED, "icmp.truncated")                                                            \
    X(ICMPV6_TRUNCATED, "icmpv6.truncated")                                                        \
    X(SCTP_TRUNCATED, "sctp.truncated")                                                            \
    X(GRE_TRUNCATED, "gre.truncated")                                                              \
    X(GRE_BAD_VERSION, "gre.bad_version")                                                          \
    X(ERSPAN_TRUNCATED, "erspan.truncated")                                                        \
    X(VXLAN_TRUNCATED, "vxlan.truncated")                                                          \
    X(GENEVE_TRUNCATED, "geneve.truncated")                                                        \
    X(GTP_TRUNCATED, "gtp.truncated")                                                              \
    X(TUNNEL_TOO_DEEP, "tunnel.too_deep")                                                          \
    X(TUNNEL_BAD_PAYLOAD, "tunnel.bad_payload")                                                    \
    X(FRAG_OVERLAP, "frag.overlap")                                                                \
    X(FRAG_TOO_LARGE, "frag.too_large")                                                            \
    X(FRAG_MEMCAP, "frag.memcap")                                                                  \
    X(FRAG_TIMEOUT, "frag.timeout")                                                                \
    X(FRAG_BAD_LEN, "frag.bad_len")

typedef enum {
#define X(e, s) DECODE_ERR_##e,
    DECODE_REASONS(X)
#undef X
        DECODE_ERR_COUNT
} decode_reason;

/* Stable reason id, e.g. "ipv4.truncated". */
const char *decode_reason_name(decode_reason r);
/* Layer name for anomaly events: the part of the id before the dot. */

/*
 * Packets that are valid enough to go on but that no correct stack sends (the packet is
 * still processed; one anomaly per packet, the first found): a source address no host
 * has (a multicast group, the limited broadcast, the destination itself: a LAND packet,
 * loopback excepted); TCP flag combinations and options no stack emits (SYN with FIN,
 * SYN with URG, an option whose length is impossible: URGENT/11's malformed TCP-AO);
 * an ICMP echo whose payload is itself an IP packet (IP tunnelled in ping). Stable ids,
 * append only.
 */
#define DECODE_PKT_ANOMALIES(X)                                                                    \
    X(SRC_MULTICAST, "src.multicast")                                                              \
    X(SRC_BROADCAST, "src.broadcast")                                                              \
    X(SRC_EQUALS_DST, "src.equals_dst")                                                            \
    X(TCP_SYN_FIN, "tcp.syn_fin")                                                                  \
    X(TCP_SYN_URG, "tcp.syn_urg")                                                                  \
    X(TCP_BAD_OPTION, "tcp.bad_option")                                                            \
    X(ICMP_IP_TUNNEL, "icmp.ip_tunnel")

typedef enum {
#define X(e, s) DECODE_PKT_##e,
    DECODE_PKT_ANOMALIES(X)
#undef X
        DECODE_PKT_COUNT
} decode_pkt_anomaly;

/* Stable id, e.g. "src.multicast". */
const char *decode_pkt_anomaly_name(decode_pkt_anomaly a);

/* Counters one decoder owns; summed across decoders for the stats event. */
typedef struct {
    uint64_t packets, bytes;
    uint64_t ipv4, ipv6, tcp, udp, icmp, sctp, other_l4;
    uint64_t vlan, mpls, pppoe, gre, vxlan, geneve, gtp, ipip, erspan;
    uint64_t fragments, reassembled;
    uint64_t non_ip;
    uint64_t arp; /* ARP messages (Ethernet/IPv4), also counted in non_ip */
    uint64_t errors[DECODE_ERR_COUNT];
    uint64_t pkt_anomalies[DECODE_PKT_COUNT];
} decode_stats;

enum {
    TUNNEL_NONE = 0,
    TUNNEL_GRE,
    TUNNEL_VXLAN,
    TUNNEL_IPIP,
    TUNNEL_IPV6,
    TUNNEL_ERSPAN,
    TUNNEL_GENEVE,
    TUNNEL_GTP
};
const char *decode_tunnel_name(int type);

#define DECODE_MAX_VLAN         3
#define DECODE_MAX_TUNNEL_DEPTH 4

/* A decoded packet. Addresses are in network order; IPv4 uses the first 4 bytes. */
typedef struct {
    uint64_t ts_us; /* packet time, microseconds since the epoch */
    uint32_t wire_len;

    uint8_t ip_version; /* 4 or 6 */
    uint8_t l4_proto;   /* IPPROTO_* */
    uint8_t src[16], dst[16];
    uint16_t sport, dport; /* host order; 0 for protocols without ports */
    uint8_t icmp_type, icmp_code;
    uint8_t tcp_flags;
    uint32_t tcp_seq;  /* TCP sequence number (host order) */
    int8_t l4_anomaly; /* DECODE_PKT_* found in the L4 header or payload, -1 for none */

    const uint8_t *l3;      /* innermost IP header, for nDPI */
    uint32_t l3_len;        /* its datagram length (clipped to what was captured) */
    uint32_t ip_bytes;      /* IP-layer bytes this packet counts for */
    const uint8_t *payload; /* L4 payload */
    uint32_t payload_len;

    uint16_t vlan[DECODE_MAX_VLAN];
    uint8_t vlan_count;
    bool has_mac;
    uint8_t mac_src[6], mac_dst[6];
    /* DECODE_ARP: an Ethernet/IPv4 ARP message (sender and target pairs) */
    uint16_t arp_op;
    uint8_t arp_sha[6], arp_tha[6], arp_spa[4], arp_tpa[4];

    uint8_t tunnel_type;  /* TUNNEL_* of the outermost tunnel, 0 if none */
    uint8_t tunnel_depth; /* number of tunnel layers removed */
    uint8_t tunnel_ip_version;
    uint8_t tunnel_src[16], tunnel_dst[16];

    bool reassembled; /* built from IP fragments */
    uint8_t iface;    /* set by the caller: 1 + live interface index, 0 = pcap (flow_key.iface) */
} decode_pkt;

typedef enum {
    DECODE_OK = 0, /* pkt holds an IP packet with its L4 header decoded */
    DECODE_NON_IP, /* not IP (LLDP, STP, ...): counted, nothing to do */
    DECODE_ARP,    /* an ARP message for IPv4 over Ethernet: pkt's arp_* fields (arp.c) */
    DECODE_HELD,   /* an IP fragment stored for reassembly */
    DECODE_ERROR,  /* malformed: *reason says why, already counted */
} decode_result;

/* One decoder per thread: counters plus the fragment reassembly context. */
typedef struct {
    decode_stats stats;
    defrag_ctx defrag;
} decoder;

/* Initialises a decoder; defrag limits come from the arguments. */
void decoder_init(decoder *d, size_t frag_memcap, uint32_t frag_max_datagrams,
                  uint32_t frag_timeout_s);
void decoder_free(decoder *d);

/*
 * Decodes one captured frame of pcap link type `linktype` (DLT_* value).
 * Returns DECODE_OK with *pkt filled, or another result; on DECODE_ERROR the
 * reason is stored in *reason and counted.
 */
decode_result decode_frame(decoder *d, int linktype, const uint8_t *frame, uint32_t caplen,
                           uint32_t wire_len, uint64_t ts_us, decode_pkt *pkt,
                           decode_reason *reason);

/* True if the pcap link type is one decode_frame() understands. */
bool decode_linktype_supported(int linktype);

/* Expires incomplete fragment sets older than the timeout at packet time now_us. */
void decoder_expire(decoder *d, uint64_t now_us);

/* The anomaly of a decoded IP packet (DECODE_PKT_*), or -1 for none. */
int decode_packet_anomaly(const decode_pkt *k);

#endif
