/*
 * fh_addr.c - which IP addresses are public (globally reachable).
 *
 * "Public" follows the IANA IPv4 and IPv6 Special-Purpose
 * Address Registries: a range is skipped unless its "Globally Reachable" column
 * says True. So 192.0.0.9 and 192.0.0.10 (PCP / TURN anycast), 2001:1::1-3,
 * 2001:3::/32 (AMT), 2001:4:112::/48 (AS112), 2001:20::/28 (ORCHIDv2) and
 * 2001:30::/28 (DRIP) are public, the rest of 192.0.0.0/24 and of 2001::/23
 * (Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28) is not.
 * Also never looked up: IPv4 multicast 224/4, the deprecated 6to4 relay
 * anycast 192.88.99.0/24, IPv6 multicast ff00::/8, deprecated site-local
 * fec0::/10 and the deprecated IPv4-compatible ::/96 (which holds :: and ::1).
 *
 * IPv6 addresses that carry an IPv4 address are judged and looked up as that
 * IPv4 address: IPv4-mapped ::ffff:0:0/96, the NAT64 well-known prefix
 * 64:ff9b::/96 (RFC 6052; the real peer is the embedded IPv4 address) and 6to4
 * 2002::/16 (the 6to4 router's IPv4 address, as MaxMind's own aliasing does).
 * The local-use NAT64 prefix 64:ff9b:1::/48 is not public.
 *
 * The sensor (GeoIP lookups) and the correlator (src_internet / dest_internet)
 * share this one rule.
 */
#include "fh_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- parsing ----------------------------------------------------------------------- */

static bool parse_v4(const char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;

        if (part) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned)(s[i] - '0');
            if (++digits > 3 || v > 255)
                return false;
            i++;
        }
        if (!digits)
            return false;
        out[part] = (uint8_t)v;
    }
    return i == len;
}

bool fh_addr_parse(const char *s, size_t len, int *family, uint8_t addr[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[64];
    const char *pct;

    if (!s || !len || memchr(s, '\0', len))
        return false; /* "10.0.0.1\0junk" is not an address */
    if (parse_v4(s, len, addr)) {
        *family = AF_INET;
        return true;
    }
    if ((pct = memchr(s, '%', len))) {
        /* an IPv6 zone ("fe80::1%eth0"): a short name of visible characters */
        size_t zl = len - (size_t)(pct - s) - 1;

        if (zl == 0 || zl > 32)
            return false;
        for (size_t i = 1; i <= zl; i++)
            if (pct[i] <= ' ' || pct[i] > '~')
                return false;
        len = (size_t)(pct - s);
    }
    if (len == 0 || len >= sizeof(buf) || !memchr(s, ':', len))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return false;
    if (!memcmp(addr, mapped, 12)) {
        memmove(addr, addr + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return true;
}

bool fh_addr_in(const uint8_t *addr, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;

    if (memcmp(addr, net, full))
        return false;
    return rest == 0 || ((addr[full] ^ net[full]) & (uint8_t)(0xFF00u >> rest)) == 0;
}

fh_cidr_status fh_cidr_parse(const char *s, size_t len, int *family, uint8_t net[16],
                             unsigned *prefix)
{
    const char *slash = s ? memchr(s, '/', len) : NULL;
    size_t alen = slash ? (size_t)(slash - s) : len;
    unsigned bits, n;

    if (!fh_addr_parse(s, alen, family, net))
        return FH_CIDR_BAD;
    bits = *family == AF_INET ? 32 : 128;
    /* "::ffff:10.0.0.0/104" became AF_INET: its length counts 96 bits too many */
    if (slash && *family == AF_INET && memchr(s, ':', alen))
        return FH_CIDR_BAD;
    *prefix = bits;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        unsigned long v = 0;

        if (p == end || end - p > 3)
            return FH_CIDR_BAD;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return FH_CIDR_BAD;
            v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v > bits)
            return FH_CIDR_BAD;
        *prefix = (unsigned)v;
    }
    n = bits / 8;
    for (unsigned i = 0; i < n; i++) {
        unsigned keep = *prefix > i * 8 ? *prefix - i * 8 : 0;

        if (keep < 8 && (net[i] & (uint8_t) ~(0xFF00u >> keep)))
            return FH_CIDR_HOSTBITS;
    }
    return FH_CIDR_OK;
}

/* ---- public addresses -------------------------------------------------------------- */

typedef struct {
    uint32_t net; /* host byte order */
    uint8_t len;
} v4_range;

typedef struct {
    uint8_t net[16];
    uint8_t len;
} v6_range;

/* IANA IPv4 Special-Purpose Address Registry entries that are not globally
 * reachable, plus multicast and the deprecated 6to4 relay anycast. */
static const v4_range v4_special[] = {
    {0x00000000u, 8},  /* 0.0.0.0/8 "this network" (RFC 791) */
    {0x0A000000u, 8},  /* 10.0.0.0/8 private (RFC 1918) */
    {0x64400000u, 10}, /* 100.64.0.0/10 shared address space, CGNAT (RFC 6598) */
    {0x7F000000u, 8},  /* 127.0.0.0/8 loopback */
    {0xA9FE0000u, 16}, /* 169.254.0.0/16 link-local (RFC 3927) */
    {0xAC100000u, 12}, /* 172.16.0.0/12 private (RFC 1918) */
    {0xC0000000u, 24}, /* 192.0.0.0/24 IETF protocol assignments (RFC 6890) */
    {0xC0000200u, 24}, /* 192.0.2.0/24 TEST-NET-1 documentation (RFC 5737) */
    {0xC0586300u, 24}, /* 192.88.99.0/24 deprecated 6to4 relay anycast (RFC 7526) */
    {0xC0A80000u, 16}, /* 192.168.0.0/16 private (RFC 1918) */
    {0xC6120000u, 15}, /* 198.18.0.0/15 benchmarking (RFC 2544) */
    {0xC6336400u, 24}, /* 198.51.100.0/24 TEST-NET-2 documentation (RFC 5737) */
    {0xCB007100u, 24}, /* 203.0.113.0/24 TEST-NET-3 documentation (RFC 5737) */
    {0xE0000000u, 4},  /* 224.0.0.0/4 multicast (RFC 5771) */
    {0xF0000000u, 4},  /* 240.0.0.0/4 reserved, incl. 255.255.255.255 broadcast */
};

/* Globally reachable exceptions inside the ranges above. */
static const v4_range v4_global[] = {
    {0xC0000009u, 32}, /* 192.0.0.9 Port Control Protocol anycast (RFC 7723) */
    {0xC000000Au, 32}, /* 192.0.0.10 TURN anycast (RFC 8155) */
};

/* IANA IPv6 Special-Purpose Address Registry entries that are not globally
 * reachable, plus multicast and deprecated site-local. The embedded-IPv4
 * prefixes (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) are handled before this. */
static const v6_range v6_special[] = {
    {{0}, 96},                                  /* ::/96 IPv4-compatible, ::, ::1 */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48}, /* 64:ff9b:1::/48 local NAT64 */
    {{0x01, 0x00}, 64},                         /* 100::/64 discard-only (RFC 6666) */
    {{0x01, 0x00, 0, 0, 0, 0, 0, 1}, 64},       /* 100:0:0:1::/64 dummy (RFC 9780) */
    {{0x20, 0x01, 0x00, 0x00}, 23},             /* 2001::/23 IETF protocol assignments */
    {{0x20, 0x01, 0x0d, 0xb8}, 32},             /* 2001:db8::/32 documentation */
    {{0x3f, 0xff, 0x00}, 20},                   /* 3fff::/20 documentation (RFC 9637) */
    {{0x5f, 0x00}, 16},                         /* 5f00::/16 SRv6 SIDs (RFC 9602) */
    {{0xfc}, 7},                                /* fc00::/7 unique local (RFC 4193) */
    {{0xfe, 0x80}, 10},                         /* fe80::/10 link-local */
    {{0xfe, 0xc0}, 10},                         /* fec0::/10 deprecated site-local */
    {{0xff}, 8},                                /* ff00::/8 multicast */
};

/* Globally reachable sub-blocks of 2001::/23 (IANA registry). */
static const v6_range v6_global[] = {
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 128}, /* PCP anycast */
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}, 128}, /* TURN anycast */
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03}, 128}, /* DNS-SD SRP */
    {{0x20, 0x01, 0x00, 0x03}, 32},                                         /* AMT */
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48},                             /* AS112-v6 */
    {{0x20, 0x01, 0x00, 0x20}, 28},                                         /* ORCHIDv2 */
    {{0x20, 0x01, 0x00, 0x30}, 28},                                         /* DRIP DETs */
};

static bool v4_in(uint32_t a, const v4_range *r)
{
    uint32_t mask = r->len == 0 ? 0 : 0xFFFFFFFFu << (32 - r->len);
    return (a & mask) == r->net;
}

static bool v6_in(const uint8_t *a, const v6_range *r)
{
    size_t full = r->len / 8;
    unsigned rest = r->len % 8;

    if (memcmp(a, r->net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[full] & mask) == (r->net[full] & mask);
}

static bool v4_public(const uint8_t *b)
{
    uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

    for (size_t i = 0; i < sizeof(v4_global) / sizeof(v4_global[0]); i++)
        if (v4_in(a, &v4_global[i]))
            return true;
    for (size_t i = 0; i < sizeof(v4_special) / sizeof(v4_special[0]); i++)
        if (v4_in(a, &v4_special[i]))
            return false;
    return true;
}

bool fh_addr_embedded_v4(const uint8_t *a, uint8_t v4[4])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};

    if (memcmp(a, mapped, sizeof(mapped)) == 0 || memcmp(a, nat64, sizeof(nat64)) == 0) {
        memcpy(v4, a + 12, 4);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        memcpy(v4, a + 2, 4);
        return true;
    }
    return false;
}

static bool v6_public(const uint8_t *a)
{
    for (size_t i = 0; i < sizeof(v6_global) / sizeof(v6_global[0]); i++)
        if (v6_in(a, &v6_global[i]))
            return true;
    for (size_t i = 0; i < sizeof(v6_special) / sizeof(v6_special[0]); i++)
        if (v6_in(a, &v6_special[i]))
            return false;
    return true;
}

bool fh_addr_is_public(int family, const void *addr)
{
    uint8_t v4[4];

    if (!addr)
        return false;
    if (family == AF_INET)
        return v4_public(addr);
    if (family != AF_INET6)
        return false;
    if (fh_addr_embedded_v4(addr, v4))
        return v4_public(v4);
    return v6_public(addr);
}

void fh_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void fh_addr_text(int family, const uint8_t *addr, char *out, size_t len)
{
    char *o = out;

    if (family != AF_INET || len < 16) {
        inet_ntop(family, addr, out, (socklen_t)len);
        return;
    }
    for (int i = 0; i < 4; i++) {
        unsigned v = addr[i];

        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = i < 3 ? '.' : '\0';
    }
}
