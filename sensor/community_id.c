/*
 * community_id.c - Community ID v1; see community_id.h. SHA-1 and base64 come
 * from nettle.
 */
#include "community_id.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdbool.h>
#include <string.h>

#define PROTO_ICMP   1
#define PROTO_TCP    6
#define PROTO_UDP    17
#define PROTO_ICMPV6 58
#define PROTO_SCTP   132

/*
 * Maps an ICMP type to its counterpart for two-way messages (echo request and
 * reply, ...). Returns true and sets *peer when the type is two-way.
 */
static bool icmp_peer(uint8_t proto, uint8_t type, uint8_t *peer)
{
    static const uint8_t v4[][2] = {{8, 0},   {0, 8},  {13, 14}, {14, 13}, {15, 16},
                                    {16, 15}, {10, 9}, {9, 10},  {17, 18}, {18, 17}};
    static const uint8_t v6[][2] = {{128, 129}, {129, 128}, {133, 134}, {134, 133}, {135, 136},
                                    {136, 135}, {130, 131}, {131, 130}, {144, 145}, {145, 144}};
    const uint8_t(*tab)[2] = proto == PROTO_ICMP ? v4 : v6;
    size_t n = proto == PROTO_ICMP ? sizeof(v4) / sizeof(v4[0]) : sizeof(v6) / sizeof(v6[0]);

    for (size_t i = 0; i < n; i++)
        if (tab[i][0] == type) {
            *peer = tab[i][1];
            return true;
        }
    return false;
}

void community_id_v1(uint16_t seed, int ip_version, const uint8_t *src, const uint8_t *dst,
                     uint8_t proto, uint16_t sport, uint16_t dport, char *out)
{
    struct sha1_ctx ctx;
    uint8_t digest[SHA1_DIGEST_SIZE], buf[2 + 16 + 16 + 2 + 4];
    size_t alen = ip_version == 4 ? 4 : 16, n = 0;
    bool has_ports = proto == PROTO_TCP || proto == PROTO_UDP || proto == PROTO_SCTP ||
                     proto == PROTO_ICMP || proto == PROTO_ICMPV6;
    bool one_way = false;
    const uint8_t *a = src, *b = dst;
    uint16_t pa = sport, pb = dport;
    int c;

    if (proto == PROTO_ICMP || proto == PROTO_ICMPV6) {
        uint8_t peer;

        /* sport = type, dport = code on input; the hashed "dport" becomes the peer type. */
        if (icmp_peer(proto, (uint8_t)sport, &peer))
            pb = peer;
        else {
            one_way = true;
            pb = dport;
        }
        pa = sport;
    }
    c = memcmp(a, b, alen);
    if (!one_way && (c > 0 || (c == 0 && pa > pb))) {
        const uint8_t *t = a;
        uint16_t tp = pa;

        a = b;
        b = t;
        pa = pb;
        pb = tp;
    }
    buf[n++] = (uint8_t)(seed >> 8);
    buf[n++] = (uint8_t)seed;
    memcpy(buf + n, a, alen);
    n += alen;
    memcpy(buf + n, b, alen);
    n += alen;
    buf[n++] = proto;
    buf[n++] = 0;
    if (has_ports) {
        buf[n++] = (uint8_t)(pa >> 8);
        buf[n++] = (uint8_t)pa;
        buf[n++] = (uint8_t)(pb >> 8);
        buf[n++] = (uint8_t)pb;
    }
    sha1_init(&ctx);
    sha1_update(&ctx, n, buf);
    sha1_digest(&ctx, sizeof(digest), digest);
    memcpy(out, "1:", 2);
    base64_encode_raw((char *)out + 2, sizeof(digest), digest);
    out[2 + BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}
