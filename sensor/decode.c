/*
 * decode.c - link layer to L4; see decode.h for the pipeline and contract.
 *
 * Each decode_* function takes a pointer and the number of bytes available
 * from it, checks the length before every read, and either fills the packet
 * and continues inward or returns an error reason. Tunnels recurse through
 * decode_ip() with a depth limit.
 */
#include "decode.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <string.h>

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#define LINKTYPE_RAW 101 /* some files carry the LINKTYPE value, not DLT_RAW */

#define ETH_P_IPV4      0x0800
#define ETH_P_ARP       0x0806
#define ETH_P_VLAN      0x8100
#define ETH_P_QINQ      0x88a8
#define ETH_P_QINQ_9100 0x9100
#define ETH_P_IPV6      0x86dd
#define ETH_P_MPLS_UC   0x8847
#define ETH_P_MPLS_MC   0x8848
#define ETH_P_PPPOE_S   0x8864
#define ETH_P_TEB       0x6558 /* transparent Ethernet bridging (GRE, Geneve) */
#define ETH_P_ERSPAN2   0x88be
#define ETH_P_ERSPAN3   0x22eb
#define ETH_P_PPP       0x880b

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

#define UDP_PORT_VXLAN  4789
#define UDP_PORT_GENEVE 6081
#define UDP_PORT_GTPU   2152

#define MAX_MPLS_LABELS 8
#define MAX_IPV6_EXT    8

static const char *reason_names[] = {
#define X(e, s) s,
    DECODE_REASONS(X)
#undef X
};

const char *decode_reason_name(decode_reason r)
{
    return (unsigned)r < DECODE_ERR_COUNT ? reason_names[r] : "unknown";
}

static const char *const pkt_anomaly_names[] = {
#define X(e, s) s,
    DECODE_PKT_ANOMALIES(X)
#undef X
};

const char *decode_pkt_anomaly_name(decode_pkt_anomaly a)
{
    return (unsigned)a < DECODE_PKT_COUNT ? pkt_anomaly_names[a] : "unknown";
}

int decode_packet_anomaly(const decode_pkt *k)
{
    static const uint8_t v6_loopback[16] = {[15] = 1}, unspecified[16] = {0};

    if (k->ip_version == 4) {
        if ((k->src[0] & 0xf0) == 0xe0)
            return DECODE_PKT_SRC_MULTICAST;
        if (k->src[0] == 255 && k->src[1] == 255 && k->src[2] == 255 && k->src[3] == 255)
            return DECODE_PKT_SRC_BROADCAST;
        if (memcmp(k->src, k->dst, 4) == 0 && k->src[0] != 127 && memcmp(k->src, unspecified, 4))
            return DECODE_PKT_SRC_EQUALS_DST;
    } else if (k->ip_version == 6) {
        if (k->src[0] == 0xff)
            return DECODE_PKT_SRC_MULTICAST;
        if (memcmp(k->src, k->dst, 16) == 0 && memcmp(k->src, v6_loopback, 16) != 0 &&
            memcmp(k->src, unspecified, 16) != 0)
            return DECODE_PKT_SRC_EQUALS_DST;
    }
    return k->l4_anomaly;
}

/* A TCP header's flags and options (p: the header, off: its length, at least 20). */
static int tcp_anomaly(const uint8_t *p, uint32_t off)
{
    uint8_t fl = p[13];

    if ((fl & 0x03) == 0x03)
        return DECODE_PKT_TCP_SYN_FIN;
    if ((fl & 0x22) == 0x22)
        return DECODE_PKT_TCP_SYN_URG;
    for (uint32_t i = 20; i < off;) {
        uint8_t kind = p[i], olen;

        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= off || (olen = p[i + 1]) < 2 || i + olen > off)
            return DECODE_PKT_TCP_BAD_OPTION;
        /* the options whose length is fixed (RFC 9293, 7323, 2018, 2385, 5925) */
        if ((kind == 2 && olen != 4) || (kind == 3 && olen != 3) || (kind == 4 && olen != 2) ||
            (kind == 8 && olen != 10) || (kind == 19 && olen != 18) || (kind == 29 && olen < 4))
            return DECODE_PKT_TCP_BAD_OPTION;
        i += olen;
    }
    return -1;
}

/* An echo request or reply whose data (after the identifier and sequence) is an IPv4 or
 * IPv6 packet whose own length says it fills the data: IP tunnelled in ping. */
static int icmp_anomaly(const uint8_t *p, uint32_t len, bool v6)
{
    const uint8_t *d = p + 8;
    uint32_t n = len - 8;

    if (len < 8 + 20 || !(v6 ? (p[0] == 128 || p[0] == 129) : (p[0] == 8 || p[0] == 0)))
        return -1;
    if ((d[0] >> 4) == 4 && (d[0] & 0x0f) >= 5 && ((uint32_t)d[2] << 8 | d[3]) == n)
        return DECODE_PKT_ICMP_IP_TUNNEL;
    if ((d[0] >> 4) == 6 && n >= 40 && ((uint32_t)d[4] << 8 | d[5]) + 40 == n)
        return DECODE_PKT_ICMP_IP_TUNNEL;
    return -1;
}

const char *decode_tunnel_name(int type)
{
    switch (type) {
    case TUNNEL_GRE:
        return "gre";
    case TUNNEL_VXLAN:
        return "vxlan";
    case TUNNEL_IPIP:
        return "ipip";
    case TUNNEL_IPV6:
        return "ipv6";
    case TUNNEL_ERSPAN:
        return "erspan";
    case TUNNEL_GENEVE:
        return "geneve";
    case TUNNEL_GTP:
        return "gtp";
    }
    return "none";
}

void decoder_init(decoder *d, size_t frag_memcap, uint32_t frag_max_datagrams,
                  uint32_t frag_timeout_s)
{
    memset(d, 0, sizeof(*d));
    defrag_init(&d->defrag, frag_memcap, frag_max_datagrams, frag_timeout_s);
}

void decoder_free(decoder *d)
{
    defrag_free(&d->defrag);
}

void decoder_expire(decoder *d, uint64_t now_us)
{
    uint64_t before = d->defrag.expired;

    defrag_expire(&d->defrag, now_us);
    d->stats.errors[DECODE_ERR_FRAG_TIMEOUT] += d->defrag.expired - before;
}

bool decode_linktype_supported(int linktype)
{
    switch (linktype) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case LINKTYPE_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_PPP:
        return true;
    }
    return false;
}

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Reads a PPP protocol field, which protocol-field compression (RFC 1661)
 * may shorten to one byte: a first byte with its low bit set is the whole field.
 * Returns the field's length, or 0 if the bytes are missing.
 */
static uint32_t ppp_protocol(const uint8_t *p, uint32_t len, uint16_t *proto)
{
    if (len >= 1 && (p[0] & 1)) {
        *proto = p[0];
        return 1;
    }
    if (len < 2)
        return 0;
    *proto = rd16(p);
    return 2;
}

/* Decode state carried through one frame. */
typedef struct {
    decoder *d;
    decode_pkt *pkt;
    decode_reason *reason;
    int depth; /* tunnel layers removed so far */
} dctx;

static decode_result fail(dctx *x, decode_reason r)
{
    x->d->stats.errors[r]++;
    *x->reason = r;
    return DECODE_ERROR;
}

static decode_result decode_ether(dctx *x, const uint8_t *p, uint32_t len, bool outer);
static decode_result decode_ip(dctx *x, const uint8_t *p, uint32_t len);

/* Records the outer IP header of a tunnel (only the outermost one is kept). */
static decode_result enter_tunnel(dctx *x, int type, const uint8_t *outer_ip)
{
    decode_pkt *k = x->pkt;

    if (++x->depth > DECODE_MAX_TUNNEL_DEPTH)
        return fail(x, DECODE_ERR_TUNNEL_TOO_DEEP);
    if (k->tunnel_depth == 0 && outer_ip) {
        k->tunnel_type = (uint8_t)type;
        k->tunnel_ip_version = k->ip_version;
        memcpy(k->tunnel_src, k->src, 16);
        memcpy(k->tunnel_dst, k->dst, 16);
    }
    k->tunnel_depth++;
    /* The inner packet gets fresh addresses and L4 state. */
    k->sport = k->dport = 0;
    k->tcp_flags = 0;
    k->l4_anomaly = -1;
    k->icmp_type = k->icmp_code = 0;
    return DECODE_OK;
}

/* Ethernet-like payload after a tunnel header (VXLAN, Geneve, GRE TEB, ERSPAN). */
static decode_result decode_inner_ether(dctx *x, int type, const uint8_t *outer_ip,
                                        const uint8_t *p, uint32_t len)
{
    decode_result r = enter_tunnel(x, type, outer_ip);

    if (r != DECODE_OK)
        return r;
    return decode_ether(x, p, len, false);
}

static decode_result decode_inner_ip(dctx *x, int type, const uint8_t *outer_ip, const uint8_t *p,
                                     uint32_t len)
{
    decode_result r = enter_tunnel(x, type, outer_ip);

    if (r != DECODE_OK)
        return r;
    if (len < 1 || ((p[0] >> 4) != 4 && (p[0] >> 4) != 6))
        return fail(x, DECODE_ERR_TUNNEL_BAD_PAYLOAD);
    return decode_ip(x, p, len);
}

/* ---- L4 ---------------------------------------------------------------- */

static decode_result decode_udp(dctx *x, const uint8_t *ip, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;
    uint16_t ulen;

    if (len < 8)
        return fail(x, DECODE_ERR_UDP_TRUNCATED);
    ulen = rd16(p + 4);
    if (ulen < 8)
        return fail(x, DECODE_ERR_UDP_BAD_LEN);
    k->sport = rd16(p);
    k->dport = rd16(p + 2);
    /* A UDP length beyond the captured bytes is a snaplen cut, not an error. */
    k->payload = p + 8;
    k->payload_len = (ulen <= len ? ulen : len) - 8;
    x->d->stats.udp++;

    /* Tunnels carried over UDP. */
    if (k->dport == UDP_PORT_VXLAN && k->payload_len >= 8 && (k->payload[0] & 0x08)) {
        x->d->stats.vxlan++;
        if (k->payload_len < 8 + 14)
            return fail(x, DECODE_ERR_VXLAN_TRUNCATED);
        return decode_inner_ether(x, TUNNEL_VXLAN, ip, k->payload + 8, k->payload_len - 8);
    }
    if (k->dport == UDP_PORT_GENEVE && k->payload_len >= 8 && (k->payload[0] >> 6) == 0) {
        uint32_t hl = 8 + (uint32_t)(k->payload[0] & 0x3f) * 4;
        uint16_t ptype = rd16(k->payload + 2);

        x->d->stats.geneve++;
        if (k->payload_len < hl)
            return fail(x, DECODE_ERR_GENEVE_TRUNCATED);
        if (ptype == ETH_P_TEB)
            return decode_inner_ether(x, TUNNEL_GENEVE, ip, k->payload + hl, k->payload_len - hl);
        if (ptype == ETH_P_IPV4 || ptype == ETH_P_IPV6)
            return decode_inner_ip(x, TUNNEL_GENEVE, ip, k->payload + hl, k->payload_len - hl);
        return DECODE_OK; /* unknown inner protocol: keep the outer UDP flow */
    }
    if ((k->dport == UDP_PORT_GTPU || k->sport == UDP_PORT_GTPU) && k->payload_len >= 8 &&
        (k->payload[0] >> 5) == 1 && (k->payload[0] & 0x10) && k->payload[1] == 0xff) {
        /* GTPv1-U G-PDU: 8-byte header, 4 more if E, S or PN, then extension headers. */
        const uint8_t *g = k->payload;
        uint32_t glen = k->payload_len, hl = 8;

        x->d->stats.gtp++;
        if (g[0] & 0x07) {
            if (glen < 12)
                return fail(x, DECODE_ERR_GTP_TRUNCATED);
            hl = 12;
            if (g[0] & 0x04) { /* extension header chain */
                uint8_t next = g[11];

                while (next) {
                    uint32_t elen;

                    if (glen < hl + 1)
                        return fail(x, DECODE_ERR_GTP_TRUNCATED);
                    elen = (uint32_t)g[hl] * 4;
                    if (elen == 0 || glen < hl + elen)
                        return fail(x, DECODE_ERR_GTP_TRUNCATED);
                    next = g[hl + elen - 1];
                    hl += elen;
                }
            }
        }
        if (glen > hl && ((g[hl] >> 4) == 4 || (g[hl] >> 4) == 6))
            return decode_inner_ip(x, TUNNEL_GTP, ip, g + hl, glen - hl);
        return DECODE_OK;
    }
    return DECODE_OK;
}

static decode_result decode_tcp(dctx *x, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;
    uint32_t off;

    if (len < 20)
        return fail(x, DECODE_ERR_TCP_TRUNCATED);
    off = (uint32_t)(p[12] >> 4) * 4;
    if (off < 20)
        return fail(x, DECODE_ERR_TCP_BAD_OFFSET);
    if (off > len)
        return fail(x, DECODE_ERR_TCP_TRUNCATED);
    k->sport = rd16(p);
    k->dport = rd16(p + 2);
    k->tcp_flags = p[13];
    k->tcp_seq = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    k->l4_anomaly = (int8_t)tcp_anomaly(p, off);
    k->payload = p + off;
    k->payload_len = len - off;
    x->d->stats.tcp++;
    return DECODE_OK;
}

static decode_result decode_icmp(dctx *x, const uint8_t *p, uint32_t len, bool v6)
{
    decode_pkt *k = x->pkt;

    if (len < 4)
        return fail(x, v6 ? DECODE_ERR_ICMPV6_TRUNCATED : DECODE_ERR_ICMP_TRUNCATED);
    k->icmp_type = p[0];
    k->icmp_code = p[1];
    k->l4_anomaly = (int8_t)icmp_anomaly(p, len, v6);
    k->payload = p + 4;
    k->payload_len = len - 4;
    x->d->stats.icmp++;
    return DECODE_OK;
}

static decode_result decode_sctp(dctx *x, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;

    if (len < 12)
        return fail(x, DECODE_ERR_SCTP_TRUNCATED);
    k->sport = rd16(p);
    k->dport = rd16(p + 2);
    k->payload = p + 12;
    k->payload_len = len - 12;
    x->d->stats.sctp++;
    return DECODE_OK;
}

static decode_result decode_gre(dctx *x, const uint8_t *ip, const uint8_t *p, uint32_t len)
{
    uint16_t flags, ptype;
    uint32_t hl = 4;

    x->d->stats.gre++;
    if (len < 4)
        return fail(x, DECODE_ERR_GRE_TRUNCATED);
    flags = rd16(p);
    ptype = rd16(p + 2);
    if ((flags & 0x7) == 0) {
        if (flags & 0x8000) /* checksum present */
            hl += 4;
        if (flags & 0x2000) /* key */
            hl += 4;
        if (flags & 0x1000) /* sequence */
            hl += 4;
        if (flags & 0x4000) /* routing (RFC 1701): not supported past the header */
            return fail(x, DECODE_ERR_GRE_BAD_VERSION);
    } else if ((flags & 0x7) == 1) {
        /* Enhanced GRE (PPTP): key always, optional seq and ack; carries PPP. */
        hl = 8;
        if (flags & 0x1000)
            hl += 4;
        if (flags & 0x0080)
            hl += 4;
        if (len < hl)
            return fail(x, DECODE_ERR_GRE_TRUNCATED);
        if (ptype != ETH_P_PPP)
            return fail(x, DECODE_ERR_GRE_BAD_VERSION);
        p += hl;
        len -= hl;
        if (len >= 2 && p[0] == 0xff && p[1] == 0x03) {
            p += 2;
            len -= 2;
        }
        if (len < 1)
            return DECODE_OK;
        {
            uint32_t pl = ppp_protocol(p, len, &ptype);

            if (!pl)
                return fail(x, DECODE_ERR_GRE_TRUNCATED);
            p += pl;
            len -= pl;
        }
        if (ptype == PPP_IPV4 || ptype == PPP_IPV6)
            return decode_inner_ip(x, TUNNEL_GRE, ip, p, len);
        return DECODE_OK; /* PPP control (LCP, CCP, ...): nothing inside */
    } else {
        return fail(x, DECODE_ERR_GRE_BAD_VERSION);
    }
    if (len < hl)
        return fail(x, DECODE_ERR_GRE_TRUNCATED);
    p += hl;
    len -= hl;
    switch (ptype) {
    case ETH_P_IPV4:
    case ETH_P_IPV6:
        return decode_inner_ip(x, TUNNEL_GRE, ip, p, len);
    case ETH_P_TEB:
        return decode_inner_ether(x, TUNNEL_GRE, ip, p, len);
    case ETH_P_ERSPAN2:
        x->d->stats.erspan++;
        if (!(flags & 0x1000)) /* type I: no ERSPAN header */
            return decode_inner_ether(x, TUNNEL_ERSPAN, ip, p, len);
        if (len < 8)
            return fail(x, DECODE_ERR_ERSPAN_TRUNCATED);
        return decode_inner_ether(x, TUNNEL_ERSPAN, ip, p + 8, len - 8);
    case ETH_P_ERSPAN3: {
        uint32_t eh = 12;

        x->d->stats.erspan++;
        if (len < 12)
            return fail(x, DECODE_ERR_ERSPAN_TRUNCATED);
        if (p[11] & 0x01) /* optional platform-specific subheader */
            eh += 8;
        if (len < eh)
            return fail(x, DECODE_ERR_ERSPAN_TRUNCATED);
        return decode_inner_ether(x, TUNNEL_ERSPAN, ip, p + eh, len - eh);
    }
    }
    return DECODE_OK; /* other payloads (keepalives, WCCP, ...): the GRE flow itself */
}

/* Dispatches on the L4 protocol of an IP packet whose L4 starts at p. */
static decode_result decode_l4(dctx *x, const uint8_t *ip, uint8_t proto, const uint8_t *p,
                               uint32_t len)
{
    decode_pkt *k = x->pkt;

    k->l4_proto = proto;
    k->payload = p;
    k->payload_len = len;
    switch (proto) {
    case IPPROTO_TCP:
        return decode_tcp(x, p, len);
    case IPPROTO_UDP:
        return decode_udp(x, ip, p, len);
    case IPPROTO_ICMP:
        return decode_icmp(x, p, len, false);
    case IPPROTO_ICMPV6:
        return decode_icmp(x, p, len, true);
    case IPPROTO_SCTP:
        return decode_sctp(x, p, len);
    case IPPROTO_GRE:
        return decode_gre(x, ip, p, len);
    case IPPROTO_IPIP:
        x->d->stats.ipip++;
        return decode_inner_ip(x, TUNNEL_IPIP, ip, p, len);
    case IPPROTO_IPV6:
        x->d->stats.ipip++;
        return decode_inner_ip(x, TUNNEL_IPV6, ip, p, len);
    }
    x->d->stats.other_l4++;
    return DECODE_OK;
}

/* ---- IP ---------------------------------------------------------------- */

static bool ipv4_options_ok(const uint8_t *opt, uint32_t n)
{
    uint32_t i = 0;

    while (i < n) {
        uint8_t t = opt[i];

        if (t == 0) /* end of option list */
            return true;
        if (t == 1) { /* no-op */
            i++;
            continue;
        }
        if (i + 1 >= n || opt[i + 1] < 2 || i + opt[i + 1] > n)
            return false;
        i += opt[i + 1];
    }
    return true;
}

static decode_result after_defrag(dctx *x, defrag_result dr, const uint8_t *out, uint32_t outlen)
{
    switch (dr) {
    case DEFRAG_HELD:
        return DECODE_HELD;
    case DEFRAG_OVERLAP:
        x->d->stats.errors[DECODE_ERR_FRAG_OVERLAP]++;
        return DECODE_HELD;
    case DEFRAG_OVERLAP_DONE:
        x->d->stats.errors[DECODE_ERR_FRAG_OVERLAP]++;
        /* fall through */
    case DEFRAG_DONE:
        x->d->stats.reassembled++;
        x->pkt->reassembled = true;
        return decode_ip(x, out, outlen);
    case DEFRAG_TOO_LARGE:
        return fail(x, DECODE_ERR_FRAG_TOO_LARGE);
    case DEFRAG_MEMCAP:
        return fail(x, DECODE_ERR_FRAG_MEMCAP);
    case DEFRAG_BAD_LEN:
        return fail(x, DECODE_ERR_FRAG_BAD_LEN);
    }
    return DECODE_HELD;
}

static decode_result decode_ipv4(dctx *x, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;
    uint32_t hl, tot;
    uint16_t frag;

    if (len < 20)
        return fail(x, DECODE_ERR_IPV4_TRUNCATED);
    if ((p[0] >> 4) != 4)
        return fail(x, DECODE_ERR_IPV4_BAD_VERSION);
    hl = (uint32_t)(p[0] & 0x0f) * 4;
    if (hl < 20)
        return fail(x, DECODE_ERR_IPV4_BAD_HEADER_LEN);
    if (hl > len)
        return fail(x, DECODE_ERR_IPV4_TRUNCATED);
    tot = rd16(p + 2);
    if (tot < hl)
        return fail(x, DECODE_ERR_IPV4_BAD_TOTAL_LEN);
    if (hl > 20 && !ipv4_options_ok(p + 20, hl - 20))
        return fail(x, DECODE_ERR_IPV4_BAD_OPTIONS);
    x->d->stats.ipv4++;
    k->ip_version = 4;
    memset(k->src, 0, 16);
    memset(k->dst, 0, 16);
    memcpy(k->src, p + 12, 4);
    memcpy(k->dst, p + 16, 4);
    k->l3 = p;
    k->ip_bytes = tot;
    /* Trailing link padding is dropped; a snaplen cut keeps what was captured. */
    k->l3_len = tot < len ? tot : len;
    frag = rd16(p + 6);
    if (frag & 0x3fff) { /* MF set or non-zero offset */
        const uint8_t *out = NULL;
        uint32_t outlen = 0;
        defrag_result dr;

        x->d->stats.fragments++;
        if (k->l3_len < tot)
            return fail(x, DECODE_ERR_IPV4_TRUNCATED); /* cannot reassemble a cut fragment */
        dr = defrag_add_ipv4(&x->d->defrag, p, hl, p + hl, tot - hl, (uint32_t)(frag & 0x1fff) * 8,
                             (frag & 0x2000) != 0, k->ts_us, &out, &outlen);
        return after_defrag(x, dr, out, outlen);
    }
    return decode_l4(x, p, p[9], p + hl, k->l3_len - hl);
}

static decode_result decode_ipv6(dctx *x, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;
    uint32_t plen, avail, off = 40;
    uint8_t nh;

    if (len < 40)
        return fail(x, DECODE_ERR_IPV6_TRUNCATED);
    if ((p[0] >> 4) != 6)
        return fail(x, DECODE_ERR_IPV6_BAD_VERSION);
    plen = rd16(p + 4);
    if (plen == 0 && p[6] != 0) /* zero length is only valid with a jumbogram option */
        return fail(x, DECODE_ERR_IPV6_BAD_PAYLOAD_LEN);
    x->d->stats.ipv6++;
    k->ip_version = 6;
    memcpy(k->src, p + 8, 16);
    memcpy(k->dst, p + 24, 16);
    k->l3 = p;
    k->ip_bytes = 40 + plen;
    avail = 40 + plen < len ? 40 + plen : len;
    k->l3_len = avail;
    nh = p[6];
    for (int n = 0;; n++) {
        uint32_t el;

        switch (nh) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
        case 135: /* mobility */
            if (n >= MAX_IPV6_EXT)
                return fail(x, DECODE_ERR_IPV6_TOO_MANY_EXT_HDRS);
            if (avail < off + 8)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
            el = ((uint32_t)p[off + 1] + 1) * 8;
            if (avail < off + el)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
            nh = p[off];
            off += el;
            continue;
        case IPPROTO_AH:
            if (n >= MAX_IPV6_EXT)
                return fail(x, DECODE_ERR_IPV6_TOO_MANY_EXT_HDRS);
            if (avail < off + 8)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
            el = ((uint32_t)p[off + 1] + 2) * 4;
            if (avail < off + el)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
            nh = p[off];
            off += el;
            continue;
        case IPPROTO_FRAGMENT: {
            uint16_t fo;
            const uint8_t *out = NULL;
            uint32_t outlen = 0;
            defrag_result dr;

            if (avail < off + 8)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
            fo = rd16(p + off + 2);
            if ((fo & 0xfff9) == 0) { /* atomic fragment: offset 0, no M */
                nh = p[off];
                off += 8;
                continue;
            }
            x->d->stats.fragments++;
            if (avail < 40 + plen)
                return fail(x, DECODE_ERR_IPV6_TRUNCATED);
            dr = defrag_add_ipv6(&x->d->defrag, p, p[off], rd32(p + off + 4), p + off + 8,
                                 avail - off - 8, fo & 0xfff8, fo & 1, k->ts_us, &out, &outlen);
            return after_defrag(x, dr, out, outlen);
        }
        case IPPROTO_NONE:
            k->l4_proto = nh;
            k->payload = p + off;
            k->payload_len = 0;
            x->d->stats.other_l4++;
            return DECODE_OK;
        default:
            return decode_l4(x, p, nh, p + off, avail - off);
        }
    }
}

static decode_result decode_ip(dctx *x, const uint8_t *p, uint32_t len)
{
    if (len < 1)
        return fail(x, DECODE_ERR_IPV4_TRUNCATED);
    switch (p[0] >> 4) {
    case 4:
        return decode_ipv4(x, p, len);
    case 6:
        return decode_ipv6(x, p, len);
    }
    return fail(x, DECODE_ERR_IPV4_BAD_VERSION);
}

/* ---- link layer ---------------------------------------------------------- */

static decode_result decode_ethertype(dctx *x, uint16_t type, const uint8_t *p, uint32_t len);

static decode_result decode_mpls(dctx *x, const uint8_t *p, uint32_t len)
{
    x->d->stats.mpls++;
    for (int i = 0;; i++) {
        if (i >= MAX_MPLS_LABELS)
            return fail(x, DECODE_ERR_MPLS_TOO_MANY);
        if (len < 4)
            return fail(x, DECODE_ERR_MPLS_TRUNCATED);
        bool bottom = p[2] & 0x01;
        p += 4;
        len -= 4;
        if (bottom)
            break;
    }
    if (len < 1)
        return fail(x, DECODE_ERR_MPLS_TRUNCATED);
    switch (p[0] >> 4) {
    case 4:
    case 6:
        return decode_ip(x, p, len);
    case 0: /* pseudowire control word, then Ethernet */
        if (len < 4 + 14)
            return fail(x, DECODE_ERR_MPLS_TRUNCATED);
        return decode_ether(x, p + 4, len - 4, false);
    }
    return fail(x, DECODE_ERR_MPLS_BAD_PAYLOAD);
}

static decode_result decode_pppoe(dctx *x, const uint8_t *p, uint32_t len)
{
    uint16_t proto;
    uint32_t pl;

    x->d->stats.pppoe++;
    if (len < 7 || !(pl = ppp_protocol(p + 6, len - 6, &proto)))
        return fail(x, DECODE_ERR_PPPOE_TRUNCATED);
    p += 6 + pl;
    len -= 6 + pl;
    if (proto == PPP_IPV4 || proto == PPP_IPV6)
        return decode_ip(x, p, len);
    x->d->stats.non_ip++; /* LCP, IPCP, PAP, CHAP ... */
    return DECODE_NON_IP;
}

static decode_result decode_ethertype(dctx *x, uint16_t type, const uint8_t *p, uint32_t len)
{
    decode_pkt *k = x->pkt;

    for (;;) {
        switch (type) {
        case ETH_P_VLAN:
        case ETH_P_QINQ:
        case ETH_P_QINQ_9100:
            if (len < 4)
                return fail(x, DECODE_ERR_VLAN_TRUNCATED);
            if (k->vlan_count >= DECODE_MAX_VLAN)
                return fail(x, DECODE_ERR_VLAN_TOO_MANY);
            x->d->stats.vlan++;
            k->vlan[k->vlan_count++] = rd16(p) & 0x0fff;
            type = rd16(p + 2);
            p += 4;
            len -= 4;
            continue;
        case ETH_P_IPV4:
        case ETH_P_IPV6:
            return decode_ip(x, p, len);
        case ETH_P_MPLS_UC:
        case ETH_P_MPLS_MC:
            return decode_mpls(x, p, len);
        case ETH_P_PPPOE_S:
            return decode_pppoe(x, p, len);
        case ETH_P_ARP:
            /* Ethernet (1) / IPv4 (0x0800), 6- and 4-byte addresses: 28 bytes */
            x->d->stats.non_ip++;
            if (len < 28 || rd16(p) != 1 || rd16(p + 2) != ETH_P_IPV4 || p[4] != 6 || p[5] != 4)
                return DECODE_NON_IP;
            k->arp_op = rd16(p + 6);
            memcpy(k->arp_sha, p + 8, 6);
            memcpy(k->arp_spa, p + 14, 4);
            memcpy(k->arp_tha, p + 18, 6);
            memcpy(k->arp_tpa, p + 24, 4);
            x->d->stats.arp++;
            return DECODE_ARP;
        }
        x->d->stats.non_ip++;
        return DECODE_NON_IP;
    }
}

static decode_result decode_ether(dctx *x, const uint8_t *p, uint32_t len, bool outer)
{
    decode_pkt *k = x->pkt;

    if (len < 14)
        return fail(x, DECODE_ERR_ETH_TRUNCATED);
    /* Keep the MACs of the innermost Ethernet header: that is the host's. */
    k->has_mac = true;
    memcpy(k->mac_dst, p, 6);
    memcpy(k->mac_src, p + 6, 6);
    (void)outer;
    if (rd16(p + 12) < 0x0600) { /* 802.3 length: LLC/SNAP, STP, ... */
        x->d->stats.non_ip++;
        return DECODE_NON_IP;
    }
    return decode_ethertype(x, rd16(p + 12), p + 14, len - 14);
}

static decode_result decode_null(dctx *x, const uint8_t *p, uint32_t len, bool loop)
{
    uint32_t af;

    if (len < 4)
        return fail(x, DECODE_ERR_NULL_TRUNCATED);
    /* DLT_NULL stores the family in host order of the capturing machine. */
    af = loop ? rd32(p) : (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
    if (!loop && af > 0xffff)
        af = rd32(p);
    switch (af) {
    case 2: /* AF_INET everywhere */
        return decode_ip(x, p + 4, len - 4);
    case 10: /* Linux */
    case 24: /* NetBSD, OpenBSD */
    case 28: /* FreeBSD */
    case 30: /* macOS */
        return decode_ip(x, p + 4, len - 4);
    }
    x->d->stats.non_ip++;
    return DECODE_NON_IP;
}

static decode_result decode_ppp(dctx *x, const uint8_t *p, uint32_t len)
{
    uint16_t proto;
    uint32_t pl;

    if (len >= 2 && p[0] == 0xff && p[1] == 0x03) {
        p += 2;
        len -= 2;
    }
    if (!(pl = ppp_protocol(p, len, &proto)))
        return fail(x, DECODE_ERR_PPP_TRUNCATED);
    if (proto == PPP_IPV4 || proto == PPP_IPV6)
        return decode_ip(x, p + pl, len - pl);
    x->d->stats.non_ip++;
    return DECODE_NON_IP;
}

decode_result decode_frame(decoder *d, int linktype, const uint8_t *frame, uint32_t caplen,
                           uint32_t wire_len, uint64_t ts_us, decode_pkt *pkt,
                           decode_reason *reason)
{
    dctx x = {.d = d, .pkt = pkt, .reason = reason, .depth = 0};

    memset(pkt, 0, offsetof(decode_pkt, vlan));
    pkt->l4_anomaly = -1;
    pkt->vlan_count = 0;
    pkt->has_mac = false;
    pkt->tunnel_type = 0;
    pkt->tunnel_depth = 0;
    pkt->reassembled = false;
    pkt->iface = 0;
    pkt->ts_us = ts_us;
    pkt->wire_len = wire_len;
    d->stats.packets++;
    d->stats.bytes += wire_len;

    switch (linktype) {
    case DLT_EN10MB:
        return decode_ether(&x, frame, caplen, true);
    case DLT_LINUX_SLL:
        if (caplen < 16)
            return fail(&x, DECODE_ERR_SLL_TRUNCATED);
        return decode_ethertype(&x, rd16(frame + 14), frame + 16, caplen - 16);
    case DLT_LINUX_SLL2:
        if (caplen < 20)
            return fail(&x, DECODE_ERR_SLL_TRUNCATED);
        return decode_ethertype(&x, rd16(frame), frame + 20, caplen - 20);
    case DLT_RAW:
    case LINKTYPE_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return decode_ip(&x, frame, caplen);
    case DLT_NULL:
        return decode_null(&x, frame, caplen, false);
    case DLT_LOOP:
        return decode_null(&x, frame, caplen, true);
    case DLT_PPP:
        return decode_ppp(&x, frame, caplen);
    }
    return fail(&x, DECODE_ERR_LINK_UNSUPPORTED);
}
