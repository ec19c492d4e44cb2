/*
 * test_decode.c - the decoder: every layer it supports, every error reason it
 * can give, truncation at every byte, random mutations, and IP fragment
 * reassembly (in order, out of order, overlapping, memory cap, timeout).
 *
 * Frames are built here byte by byte with small helpers so each test shows
 * exactly what it feeds the decoder.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/dlt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/decode.h"

/* ---- frame builder --------------------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} frame;

static void put(frame *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof(f->b));
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put8(frame *f, uint8_t v)
{
    put(f, &v, 1);
}

static void put16(frame *f, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(f, x, 2);
}

static void put32(frame *f, uint32_t v)
{
    put16(f, (uint16_t)(v >> 16));
    put16(f, (uint16_t)v);
}

static void eth(frame *f, uint16_t type)
{
    static const uint8_t dst[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
    static const uint8_t src[6] = {0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};

    put(f, dst, 6);
    put(f, src, 6);
    put16(f, type);
}

/* IPv4 header with total length covering `payload` more bytes; returns its offset. */
static size_t ipv4(frame *f, const char *src, const char *dst, uint8_t proto, size_t payload,
                   uint16_t id, uint16_t frag)
{
    size_t at = f->n;
    uint8_t a[4];

    put8(f, 0x45);
    put8(f, 0);
    put16(f, (uint16_t)(20 + payload));
    put16(f, id);
    put16(f, frag);
    put8(f, 64);
    put8(f, proto);
    put16(f, 0);
    inet_pton(AF_INET, src, a);
    put(f, a, 4);
    inet_pton(AF_INET, dst, a);
    put(f, a, 4);
    return at;
}

static void ipv6(frame *f, const char *src, const char *dst, uint8_t nh, size_t payload)
{
    uint8_t a[16];

    put32(f, 0x60000000);
    put16(f, (uint16_t)payload);
    put8(f, nh);
    put8(f, 64);
    inet_pton(AF_INET6, src, a);
    put(f, a, 16);
    inet_pton(AF_INET6, dst, a);
    put(f, a, 16);
}

static void tcp(frame *f, uint16_t sp, uint16_t dp, uint8_t flags, const char *data)
{
    put16(f, sp);
    put16(f, dp);
    put32(f, 1000);
    put32(f, 0);
    put8(f, 5 << 4);
    put8(f, flags);
    put16(f, 65535);
    put16(f, 0);
    put16(f, 0);
    if (data)
        put(f, data, strlen(data));
}

static void udp(frame *f, uint16_t sp, uint16_t dp, const void *data, size_t n)
{
    put16(f, sp);
    put16(f, dp);
    put16(f, (uint16_t)(8 + n));
    put16(f, 0);
    if (n)
        put(f, data, n);
}

/* Ethernet/IPv4/TCP with payload `data`. */
static void eth_ipv4_tcp(frame *f, const char *data)
{
    size_t dl = data ? strlen(data) : 0;

    eth(f, 0x0800);
    ipv4(f, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 20 + dl, 1, 0);
    tcp(f, 40000, 80, 0x18, data);
}

/* ---- harness ---------------------------------------------------------------- */

static decoder dec;

static int setup(void **state)
{
    (void)state;
    decoder_init(&dec, 1 << 20, 64, 30);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    decoder_free(&dec);
    return 0;
}

static decode_result run(int dlt, const frame *f, decode_pkt *p, decode_reason *r)
{
    return decode_frame(&dec, dlt, f->b, (uint32_t)f->n, (uint32_t)f->n, 1700000000000000ULL, p, r);
}

static void assert_ip4(const uint8_t *a, const char *s)
{
    uint8_t x[4];

    inet_pton(AF_INET, s, x);
    assert_memory_equal(a, x, 4);
}

static uint64_t total_errors(void)
{
    uint64_t n = 0;

    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        n += dec.stats.errors[i];
    return n;
}

static bool is_report(int reason)
{
    return reason == DECODE_ERR_FRAG_OVERLAP || reason == DECODE_ERR_FRAG_MEMCAP ||
           reason == DECODE_ERR_FRAG_TIMEOUT;
}

/*
 * decode.h's counter contract for one frame, counter by counter: a refusal adds one
 * to its reason (r) and nothing else; any other result adds nothing; reassembly's
 * reports (an overlap, sets given up) may come with either. (fuzz_decode.c checks the
 * same on the fuzzer's inputs.)
 */
static void assert_counters(const decode_stats *before, decode_result res, decode_reason r)
{
    if (res == DECODE_ERROR) {
        assert_true(r < DECODE_ERR_COUNT);
        assert_true(dec.stats.errors[r] > before->errors[r]);
    }
    for (int i = 0; i < DECODE_ERR_COUNT; i++) {
        if (is_report(i))
            assert_true(dec.stats.errors[i] >= before->errors[i]);
        else
            assert_int_equal(dec.stats.errors[i] - before->errors[i],
                             res == DECODE_ERROR && i == (int)r ? 1 : 0);
    }
}

/* ---- tests ------------------------------------------------------------------ */

static void test_ethernet_ipv4_tcp(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    eth_ipv4_tcp(&f, "GET / HTTP/1.1\r\n");
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.ip_version, 4);
    assert_int_equal(p.l4_proto, IPPROTO_TCP);
    assert_ip4(p.src, "10.0.0.1");
    assert_ip4(p.dst, "10.0.0.2");
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.tcp_flags, 0x18);
    assert_int_equal(p.payload_len, 16);
    assert_memory_equal(p.payload, "GET ", 4);
    assert_int_equal(p.ip_bytes, 20 + 20 + 16);
    assert_true(p.has_mac);
    assert_int_equal(p.mac_src[0], 0x66);
    assert_int_equal(p.tunnel_depth, 0);
    assert_int_equal(dec.stats.ipv4, 1);
    assert_int_equal(dec.stats.tcp, 1);
}

static void test_ethernet_padding_ignored(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;
    uint8_t pad[18] = {0};

    (void)state;
    eth(&f, 0x0800);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1, 2, 0x02, NULL);
    put(&f, pad, sizeof(pad)); /* minimum frame padding */
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.payload_len, 0);
    assert_int_equal(p.l3_len, 40);
}

static void test_vlan_qinq(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;
    uint8_t dns[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};

    (void)state;
    eth(&f, 0x88a8);
    put16(&f, 13);
    put16(&f, 0x8100);
    put16(&f, 0x2000 | 10); /* priority bits must be masked off */
    put16(&f, 0x0800);
    ipv4(&f, "192.0.2.1", "192.0.2.53", IPPROTO_UDP, 8 + sizeof(dns), 7, 0);
    udp(&f, 5353, 53, dns, sizeof(dns));
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.vlan_count, 2);
    assert_int_equal(p.vlan[0], 13);
    assert_int_equal(p.vlan[1], 10);
    assert_int_equal(p.l4_proto, IPPROTO_UDP);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_len, sizeof(dns));
}

static void test_vlan_too_many(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    eth(&f, 0x8100);
    for (int i = 0; i < 4; i++) {
        put16(&f, (uint16_t)(100 + i));
        put16(&f, i < 3 ? 0x8100 : 0x0800);
    }
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1, 2, 0x02, NULL);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_VLAN_TOO_MANY);
    assert_string_equal(decode_reason_name(r), "vlan.too_many");
}

static void test_mpls_and_pppoe(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    eth(&f, 0x8847);
    put32(&f, (100u << 12) | 64);         /* label 100, not bottom */
    put32(&f, (200u << 12) | 0x100 | 64); /* label 200, bottom of stack */
    ipv4(&f, "10.1.0.1", "10.1.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1234, 23, 0x02, NULL);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.dport, 23);
    assert_int_equal(dec.stats.mpls, 1);

    memset(&f, 0, sizeof(f));
    eth(&f, 0x8864);
    put8(&f, 0x11);
    put8(&f, 0);
    put16(&f, 0x0001);
    put16(&f, 2 + 40);
    put16(&f, 0x0021);
    ipv4(&f, "10.2.0.1", "10.2.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1234, 443, 0x02, NULL);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.dport, 443);
    assert_int_equal(dec.stats.pppoe, 1);
}

static void test_ipv6_extension_headers(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    eth(&f, 0x86dd);
    ipv6(&f, "2001:db8::1", "2001:db8::2", IPPROTO_HOPOPTS, 8 + 16 + 20);
    put8(&f, IPPROTO_DSTOPTS); /* hop-by-hop: next = dest opts, len 0 (8 bytes) */
    put8(&f, 0);
    put32(&f, 0x01040000); /* PadN */
    put16(&f, 0);
    put8(&f, IPPROTO_TCP); /* dest opts: len 1 (16 bytes) */
    put8(&f, 1);
    for (int i = 0; i < 14; i++)
        put8(&f, i == 0 ? 1 : 0);
    tcp(&f, 5555, 80, 0x02, NULL);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.l4_proto, IPPROTO_TCP);
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.ip_bytes, 40 + 8 + 16 + 20);

    /* The same with the destination options header cut short. */
    f.n = 14 + 40 + 8 + 4;
    f.b[14 + 4] = 0;
    f.b[14 + 5] = 8 + 4;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_IPV6_TRUNCATED_EXT_HDR);
}

static void test_tunnels(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;
    size_t inner;

    (void)state;
    /* GRE (no options) carrying IPv4/TCP. */
    eth(&f, 0x0800);
    ipv4(&f, "198.51.100.1", "198.51.100.2", IPPROTO_GRE, 4 + 40, 1, 0);
    put16(&f, 0);
    put16(&f, 0x0800);
    ipv4(&f, "10.9.0.1", "10.9.0.2", IPPROTO_TCP, 20, 2, 0);
    tcp(&f, 1025, 80, 0x02, NULL);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_ip4(p.src, "10.9.0.1");
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.tunnel_type, TUNNEL_GRE);
    assert_int_equal(p.tunnel_depth, 1);
    assert_ip4(p.tunnel_src, "198.51.100.1");
    assert_string_equal(decode_tunnel_name(p.tunnel_type), "gre");

    /* VXLAN carrying Ethernet/IPv4/UDP. */
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0800);
    ipv4(&f, "198.51.100.1", "198.51.100.2", IPPROTO_UDP, 8 + 8 + 14 + 20 + 8 + 4, 1, 0);
    put16(&f, 40000);
    put16(&f, 4789);
    put16(&f, (uint16_t)(8 + 8 + 14 + 20 + 8 + 4));
    put16(&f, 0);
    put32(&f, 0x08000000);
    put32(&f, 42 << 8);
    inner = f.n;
    eth(&f, 0x0800);
    ipv4(&f, "172.16.0.1", "172.16.0.2", IPPROTO_UDP, 8 + 4, 2, 0);
    udp(&f, 1000, 53, "abcd", 4);
    (void)inner;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
    assert_ip4(p.src, "172.16.0.1");
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.tunnel_type, TUNNEL_VXLAN);
    assert_int_equal(dec.stats.vxlan, 1);

    /* IPv4-in-IPv4. */
    memset(&f, 0, sizeof(f));
    put8(&f, 0); /* placeholder removed below */
    f.n = 0;
    ipv4(&f, "203.0.113.1", "203.0.113.2", IPPROTO_IPIP, 40, 1, 0);
    ipv4(&f, "10.3.0.1", "10.3.0.2", IPPROTO_TCP, 20, 2, 0);
    tcp(&f, 999, 22, 0x02, NULL);
    assert_int_equal(run(DLT_RAW, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.tunnel_type, TUNNEL_IPIP);
    assert_int_equal(p.dport, 22);
}

static void test_tunnel_depth_limit(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;
    int layers = DECODE_MAX_TUNNEL_DEPTH + 2;

    (void)state;
    for (int i = 0; i < layers; i++)
        ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_IPIP, (size_t)(layers - i) * 20 + 20, 1, 0);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1, 2, 0x02, NULL);
    assert_int_equal(run(DLT_RAW, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_TUNNEL_TOO_DEEP);
}

static void test_link_types(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    /* Linux cooked v1: 16-byte header, protocol at 14. */
    for (int i = 0; i < 14; i++)
        put8(&f, 0);
    put16(&f, 0x0800);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1, 80, 0x02, NULL);
    assert_int_equal(run(DLT_LINUX_SLL, &f, &p, &r), DECODE_OK);
    assert_false(p.has_mac);

    /* Linux cooked v2: protocol first, 20-byte header. */
    memset(&f, 0, sizeof(f));
    put16(&f, 0x86dd);
    for (int i = 0; i < 18; i++)
        put8(&f, 0);
    ipv6(&f, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, 8);
    udp(&f, 1, 53, NULL, 0);
    assert_int_equal(run(276, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.ip_version, 6);

    /* BSD NULL (host-order family 2, little endian) and LOOP (big endian 24). */
    memset(&f, 0, sizeof(f));
    put8(&f, 2);
    put8(&f, 0);
    put8(&f, 0);
    put8(&f, 0);
    ipv4(&f, "127.0.0.1", "127.0.0.1", IPPROTO_TCP, 20, 1, 0);
    tcp(&f, 1, 80, 0x02, NULL);
    assert_int_equal(run(DLT_NULL, &f, &p, &r), DECODE_OK);
    memset(&f, 0, sizeof(f));
    put32(&f, 24);
    ipv6(&f, "::1", "::1", IPPROTO_TCP, 20);
    tcp(&f, 1, 80, 0x02, NULL);
    assert_int_equal(run(DLT_LOOP, &f, &p, &r), DECODE_OK);
    assert_int_equal(p.ip_version, 6);

    /* PPP with address/control bytes. */
    memset(&f, 0, sizeof(f));
    put8(&f, 0xff);
    put8(&f, 0x03);
    put16(&f, 0x0021);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 8, 1, 0);
    udp(&f, 1, 443, NULL, 0);
    assert_int_equal(run(DLT_PPP, &f, &p, &r), DECODE_OK);

    /* Unsupported link type. */
    assert_int_equal(run(DLT_IEEE802_11, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_LINK_UNSUPPORTED);
    assert_false(decode_linktype_supported(DLT_IEEE802_11));
    assert_true(decode_linktype_supported(DLT_EN10MB));
}

static void test_non_ip(void **state)
{
    frame f = {0};
    decode_pkt p;
    decode_reason r;

    (void)state;
    eth(&f, 0x0806); /* ARP */
    for (int i = 0; i < 28; i++)
        put8(&f, 0);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_NON_IP);
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0026); /* 802.3 length field: LLC (STP) */
    for (int i = 0; i < 38; i++)
        put8(&f, 0x42);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_NON_IP);
    memset(&f, 0, sizeof(f));
    eth(&f, 0xabcd); /* garbage ethertype */
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_NON_IP);
    assert_int_equal(dec.stats.non_ip, 3);
    assert_int_equal(total_errors(), 0);
}

static void test_malformed_reasons(void **state)
{
    frame f;
    decode_pkt p;
    decode_reason r;

    (void)state;
    /* IHL below 5. */
    memset(&f, 0, sizeof(f));
    eth_ipv4_tcp(&f, NULL);
    f.b[14] = 0x44;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_IPV4_BAD_HEADER_LEN);
    /* Total length below the header length. */
    memset(&f, 0, sizeof(f));
    eth_ipv4_tcp(&f, NULL);
    f.b[16] = 0;
    f.b[17] = 10;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_IPV4_BAD_TOTAL_LEN);
    /* Wrong version in an IPv4 ethertype. */
    memset(&f, 0, sizeof(f));
    eth_ipv4_tcp(&f, NULL);
    f.b[14] = 0x55;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_IPV4_BAD_VERSION);
    /* TCP data offset below 5. */
    memset(&f, 0, sizeof(f));
    eth_ipv4_tcp(&f, "x");
    f.b[14 + 20 + 12] = 0x30;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_TCP_BAD_OFFSET);
    /* TCP data offset past the packet. */
    f.b[14 + 20 + 12] = 0xf0;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_TCP_TRUNCATED);
    /* UDP length below 8. */
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0800);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 8, 1, 0);
    udp(&f, 1, 2, NULL, 0);
    f.b[14 + 20 + 5] = 4;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_UDP_BAD_LEN);
    /* An IPv4 option whose length runs past the header. */
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0800);
    ipv4(&f, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 4 + 8, 1, 0);
    f.b[14] = 0x46;
    f.b[17] = 24 + 8;
    put8(&f, 0x44); /* timestamp option */
    put8(&f, 40);   /* claims 40 bytes in a 4-byte option area */
    put16(&f, 0);
    udp(&f, 1, 2, NULL, 0);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_IPV4_BAD_OPTIONS);
    /* Valid options (NOP, NOP, router alert) pass. */
    f.b[14 + 20] = 1;
    f.b[14 + 21] = 1;
    f.b[14 + 22] = 0x94;
    f.b[14 + 23] = 2;
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_OK);
}

/* Every prefix of a valid frame decodes without a crash and counts one error or none. */
static void test_truncation_sweep(void **state)
{
    frame full[6];
    int dlts[6] = {DLT_EN10MB, DLT_EN10MB, DLT_EN10MB, DLT_EN10MB, DLT_EN10MB, DLT_EN10MB};

    (void)state;
    memset(full, 0, sizeof(full));
    eth_ipv4_tcp(&full[0], "payload");
    eth(&full[1], 0x86dd);
    ipv6(&full[1], "2001:db8::1", "2001:db8::2", IPPROTO_HOPOPTS, 8 + 8 + 3);
    put8(&full[1], IPPROTO_UDP);
    put8(&full[1], 0);
    put32(&full[1], 0x01040000);
    put16(&full[1], 0);
    udp(&full[1], 1, 2, "abc", 3);
    eth(&full[2], 0x8100);
    put16(&full[2], 5);
    put16(&full[2], 0x0800);
    ipv4(&full[2], "10.0.0.1", "10.0.0.2", IPPROTO_ICMP, 8, 1, 0);
    put32(&full[2], 0x08000000);
    put32(&full[2], 0x00010001);
    eth(&full[3], 0x0800);
    ipv4(&full[3], "10.0.0.1", "10.0.0.2", IPPROTO_GRE, 4 + 20 + 8, 1, 0);
    put16(&full[3], 0);
    put16(&full[3], 0x0800);
    ipv4(&full[3], "10.0.1.1", "10.0.1.2", IPPROTO_UDP, 8, 1, 0);
    udp(&full[3], 3, 4, NULL, 0);
    eth(&full[4], 0x8847);
    put32(&full[4], (16u << 12) | 0x100 | 1);
    ipv4(&full[4], "10.0.0.1", "10.0.0.2", IPPROTO_SCTP, 12, 1, 0);
    put16(&full[4], 1);
    put16(&full[4], 2);
    put32(&full[4], 0);
    put32(&full[4], 0);
    eth(&full[5], 0x0800);
    ipv4(&full[5], "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 8 + 8 + 14 + 20 + 8, 1, 0);
    put16(&full[5], 1);
    put16(&full[5], 4789);
    put16(&full[5], 8 + 8 + 14 + 20 + 8);
    put16(&full[5], 0);
    put32(&full[5], 0x08000000);
    put32(&full[5], 0);
    eth(&full[5], 0x0800);
    ipv4(&full[5], "10.0.2.1", "10.0.2.2", IPPROTO_UDP, 8, 1, 0);
    udp(&full[5], 5, 6, NULL, 0);

    for (int k = 0; k < 6; k++) {
        decode_pkt p;
        decode_reason r;

        assert_int_equal(run(dlts[k], &full[k], &p, &r), DECODE_OK);
        for (size_t n = 0; n < full[k].n; n++) {
            uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
            uint64_t before = total_errors();
            decode_result res;

            memcpy(copy, full[k].b, n);
            res = decode_frame(&dec, dlts[k], copy, (uint32_t)n, (uint32_t)full[k].n, 1, &p, &r);
            if (res == DECODE_ERROR)
                assert_int_equal(total_errors(), before + 1);
            else
                assert_int_equal(total_errors(), before);
            free(copy);
        }
    }
}

/*
 * Deterministic random mutations of valid frames: never a crash (ASan checks
 * reads), and the error-counter contract holds for every one of them.
 */
static void test_mutation_fuzz(void **state)
{
    uint32_t seed = 12345;
    frame base = {0};
    int refused = 0, kept = 0;

    (void)state;
    eth(&base, 0x8100);
    put16(&base, 7);
    put16(&base, 0x0800);
    ipv4(&base, "10.0.0.1", "10.0.0.2", IPPROTO_GRE, 4 + 40 + 8, 1, 0);
    put16(&base, 0);
    put16(&base, 0x86dd);
    ipv6(&base, "2001:db8::1", "2001:db8::2", IPPROTO_FRAGMENT, 8 + 0);
    put32(&base, (uint32_t)IPPROTO_UDP << 24);
    put32(&base, 77);
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t buf[sizeof(base.b)];
        size_t n = base.n;
        decode_pkt p;
        decode_reason r;
        int muts = 1 + (int)((seed >> 8) % 4);

        memcpy(buf, base.b, n);
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 4) % n] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        n = n - (seed >> 20) % 8;
        {
            uint8_t *copy = malloc(n); /* exact size: ASan sees any overread */
            decode_stats before = dec.stats;
            decode_result res;

            memcpy(copy, buf, n);
            res = decode_frame(&dec, DLT_EN10MB, copy, (uint32_t)n, (uint32_t)n, (uint64_t)iter, &p,
                               &r);
            free(copy);
            assert_counters(&before, res, r);
            if (res == DECODE_ERROR)
                refused++;
            else
                kept++;
        }
    }
    /* the mutations reach both sides of the decoder */
    assert_true(refused > 1000 && kept > 1000);
}

/* IPv4 fragments: out of order, reassembled; overlap counted; timeout. */
static void test_ipv4_fragments(void **state)
{
    uint8_t payload[8 + 40];
    decode_pkt p;
    decode_reason r;
    frame f;
    /* offsets in 8-byte units and sizes of three fragments of UDP(8) + 40 bytes */
    struct {
        uint16_t off8;
        size_t len;
        int more;
    } parts[3] = {{3, 24, 1}, {0, 24, 1}, {6, 0, 0}};
    decode_result res = DECODE_HELD;

    (void)state;
    payload[0] = 0x13;
    payload[1] = 0x88; /* sport 5000 */
    payload[2] = 0;
    payload[3] = 53;
    payload[4] = 0;
    payload[5] = 48;
    payload[6] = payload[7] = 0;
    for (int i = 0; i < 40; i++)
        payload[8 + i] = (uint8_t)('A' + i % 26);
    parts[2].len = sizeof(payload) - 48; /* 0: last fragment is empty? no: recompute */
    /* Fragments: [0,24) [24,48) and an empty last fragment would be odd; use 3 real ones. */
    parts[0].off8 = 3;
    parts[0].len = 16; /* [24,40) */
    parts[1].off8 = 0;
    parts[1].len = 24; /* [0,24) */
    parts[2].off8 = 5;
    parts[2].len = 8; /* [40,48) last */
    for (int i = 0; i < 3; i++) {
        memset(&f, 0, sizeof(f));
        eth(&f, 0x0800);
        ipv4(&f, "10.5.0.1", "10.5.0.2", IPPROTO_UDP, parts[i].len, 0x4242,
             (uint16_t)((parts[i].more || i < 2 ? 0x2000 : 0) | parts[i].off8));
        put(&f, payload + parts[i].off8 * 8, parts[i].len);
        res = run(DLT_EN10MB, &f, &p, &r);
        if (i < 2)
            assert_int_equal(res, DECODE_HELD);
    }
    assert_int_equal(res, DECODE_OK);
    assert_true(p.reassembled);
    assert_int_equal(p.l4_proto, IPPROTO_UDP);
    assert_int_equal(p.sport, 5000);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_len, 40);
    assert_memory_equal(p.payload, payload + 8, 40);
    assert_int_equal(p.l3_len, 20 + 48);
    assert_int_equal(dec.stats.fragments, 3);
    assert_int_equal(dec.stats.reassembled, 1);
    assert_int_equal(dec.defrag.count, 0);

    /* Overlap: the same first fragment twice, then the rest. */
    for (int i = 0; i < 4; i++) {
        int k = i == 0 ? 1 : i - 1; /* 1, 0, 1, 2 */
        memset(&f, 0, sizeof(f));
        eth(&f, 0x0800);
        ipv4(&f, "10.5.0.1", "10.5.0.2", IPPROTO_UDP, parts[k].len, 0x4343,
             (uint16_t)((k < 2 ? 0x2000 : 0) | parts[k].off8));
        put(&f, payload + parts[k].off8 * 8, parts[k].len);
        res = run(DLT_EN10MB, &f, &p, &r);
    }
    assert_int_equal(res, DECODE_OK);
    assert_int_equal(dec.stats.errors[DECODE_ERR_FRAG_OVERLAP], 1);

    /* An incomplete datagram times out and is counted. */
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0800);
    ipv4(&f, "10.5.0.1", "10.5.0.2", IPPROTO_UDP, 24, 0x4444, 0x2000);
    put(&f, payload, 24);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_HELD);
    assert_int_equal(dec.defrag.count, 1);
    decoder_expire(&dec, 1700000000000000ULL + 31000000ULL);
    assert_int_equal(dec.defrag.count, 0);
    assert_int_equal(dec.stats.errors[DECODE_ERR_FRAG_TIMEOUT], 1);

    /* A datagram that would exceed 65535 bytes is dropped. */
    memset(&f, 0, sizeof(f));
    eth(&f, 0x0800);
    ipv4(&f, "10.5.0.1", "10.5.0.2", IPPROTO_UDP, 24, 0x4545, 0x1fff);
    put(&f, payload, 24);
    assert_int_equal(run(DLT_EN10MB, &f, &p, &r), DECODE_ERROR);
    assert_int_equal(r, DECODE_ERR_FRAG_TOO_LARGE);
    assert_int_equal(dec.defrag.count, 0);
}

static void test_ipv6_fragments(void **state)
{
    uint8_t l4[8 + 24];
    decode_pkt p;
    decode_reason r;
    frame f;
    decode_result res = DECODE_HELD;

    (void)state;
    memset(l4, 'z', sizeof(l4));
    l4[0] = 0x04;
    l4[1] = 0xd2; /* 1234 */
    l4[2] = 0;
    l4[3] = 53;
    l4[4] = 0;
    l4[5] = sizeof(l4);
    l4[6] = l4[7] = 0;
    /* second half first */
    for (int i = 1; i >= 0; i--) {
        memset(&f, 0, sizeof(f));
        eth(&f, 0x86dd);
        ipv6(&f, "2001:db8::a", "2001:db8::b", IPPROTO_FRAGMENT, 8 + 16);
        put8(&f, IPPROTO_UDP);
        put8(&f, 0);
        put16(&f, (uint16_t)((i * 16) | (i == 0 ? 1 : 0)));
        put32(&f, 0xdeadbeef);
        put(&f, l4 + i * 16, 16);
        res = run(DLT_EN10MB, &f, &p, &r);
    }
    assert_int_equal(res, DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.l4_proto, IPPROTO_UDP);
    assert_int_equal(p.sport, 1234);
    assert_int_equal(p.payload_len, 24);
    assert_true(p.reassembled);
}

static void test_frag_memcap(void **state)
{
    decoder small;
    decode_pkt p;
    decode_reason r;
    frame f;
    uint8_t data[1024];

    (void)state;
    memset(data, 1, sizeof(data));
    /* Room for about two datagrams: older ones are evicted, never unbounded. */
    decoder_init(&small, 2 * (1024 + 2048), 1024, 30);
    for (int id = 0; id < 50; id++) {
        memset(&f, 0, sizeof(f));
        eth(&f, 0x0800);
        ipv4(&f, "10.6.0.1", "10.6.0.2", IPPROTO_UDP, sizeof(data), (uint16_t)id, 0x2000);
        put(&f, data, sizeof(data));
        decode_frame(&small, DLT_EN10MB, f.b, (uint32_t)f.n, (uint32_t)f.n, 1, &p, &r);
        assert_true(small.defrag.mem_used <= small.defrag.memcap);
    }
    assert_true(small.defrag.evicted > 0 || small.stats.errors[DECODE_ERR_FRAG_MEMCAP] > 0);
    decoder_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ethernet_ipv4_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ethernet_padding_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vlan_qinq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vlan_too_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mpls_and_pppoe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_extension_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tunnels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tunnel_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutation_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv4_fragments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_fragments, setup, teardown),
        cmocka_unit_test(test_frag_memcap),
    };
    return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
