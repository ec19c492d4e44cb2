/*
 * geoip.c - country / ASN / city enrichment with libmaxminddb (see geoip.h).
 *
 * Up to three MaxMind DB files are opened read-only with MMDB_MODE_MMAP. After
 * geoip_open() the struct is never written again, and libmaxminddb lookups only
 * read the mapping, so any number of threads may call geoip_lookup() at once.
 *
 * Which addresses are "public" follows the IANA IPv4 and IPv6 Special-Purpose
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
 * Strings from the databases are copied bounded; a value longer than its field
 * is cut at a UTF-8 character boundary, never inside a character.
 */
#include "geoip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

struct geoip {
    MMDB_s country;
    MMDB_s asn;
    MMDB_s city;
    bool has_country;
    bool has_asn;
    bool has_city;
};

/* ---- public / special-purpose ranges ---------------------------------- */

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

/* If the IPv6 address carries an IPv4 address we judge and look up instead,
 * copies it to v4 and returns true. */
static bool v6_embedded_v4(const uint8_t *a, uint8_t v4[4])
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

/*
 * True if addr (4 bytes for AF_INET, 16 for AF_INET6) is globally reachable
 * per the rules at the top of this file; false for NULL or another family.
 */
bool geoip_is_public(int family, const void *addr)
{
    uint8_t v4[4];

    if (!addr)
        return false;
    if (family == AF_INET)
        return v4_public(addr);
    if (family != AF_INET6)
        return false;
    if (v6_embedded_v4(addr, v4))
        return v4_public(v4);
    return v6_public(addr);
}

/* ---- open / close ------------------------------------------------------ */

/* Opens one database if path is not NULL; on failure writes the message. */
static fh_err open_db(MMDB_s *db, bool *opened, const char *path, char *err, size_t errlen)
{
    int status;
    int saved_errno;

    if (!path)
        return FH_OK;
    errno = 0;
    status = MMDB_open(path, MMDB_MODE_MMAP, db);
    saved_errno = errno;
    if (status == MMDB_SUCCESS) {
        *opened = true;
        return FH_OK;
    }
    if ((status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR) && saved_errno != 0) {
        if (err && errlen)
            snprintf(err, errlen, "open(\"%s\") failed: %s (%s)", path, MMDB_strerror(status),
                     strerror(saved_errno));
        if (status == MMDB_FILE_OPEN_ERROR && saved_errno == ENOENT)
            return FH_ERR_NOTFOUND;
        return FH_ERR_IO;
    }
    if (err && errlen)
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, MMDB_strerror(status));
    if (status == MMDB_OUT_OF_MEMORY_ERROR)
        return FH_ERR_NOMEM;
    if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR)
        return FH_ERR_IO;
    return FH_ERR_GEOIP;
}

/*
 * Opens the databases whose paths are not NULL (all NULL gives a handle whose
 * lookups find nothing). Returns FH_OK and sets *out, or: FH_ERR_NOTFOUND (a
 * file is missing), FH_ERR_IO (unreadable), FH_ERR_GEOIP (not a valid MaxMind
 * DB), FH_ERR_NOMEM; then *out is NULL and err holds
 * "open(\"PATH\") failed: REASON" (REASON from MMDB_strerror, plus the system
 * error in parentheses when there is one).
 */
fh_err geoip_open(geoip **out, const char *country_path, const char *asn_path,
                  const char *city_path, char *err, size_t errlen)
{
    geoip *g = NULL;
    fh_err rc;

    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return FH_ERR_ARG;
    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (!g) {
        if (err && errlen)
            snprintf(err, errlen, "geoip: %s", fh_strerror(FH_ERR_NOMEM));
        return FH_ERR_NOMEM;
    }
    rc = open_db(&g->country, &g->has_country, country_path, err, errlen);
    if (rc)
        goto fail;
    rc = open_db(&g->asn, &g->has_asn, asn_path, err, errlen);
    if (rc)
        goto fail;
    rc = open_db(&g->city, &g->has_city, city_path, err, errlen);
    if (rc)
        goto fail;
    *out = g;
    return FH_OK;
fail:
    geoip_close(g);
    return rc;
}

/* Closes every open database and frees g. NULL is a no-op. */
void geoip_close(geoip *g)
{
    if (!g)
        return;
    if (g->has_country)
        MMDB_close(&g->country);
    if (g->has_asn)
        MMDB_close(&g->asn);
    if (g->has_city)
        MMDB_close(&g->city);
    free(g);
}

/* ---- lookup -------------------------------------------------------------- */

/* Finds the record for sa: 1 (*entry set), 0 no record, -1 database error. */
static int db_find(const MMDB_s *db, const struct sockaddr *sa, MMDB_entry_s *entry)
{
    int mmdb_err = MMDB_SUCCESS;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(db, sa, &mmdb_err);

    if (mmdb_err == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return 0; /* an IPv4-only file simply has no IPv6 data */
    if (mmdb_err != MMDB_SUCCESS)
        return -1;
    if (!r.found_entry)
        return 0;
    *entry = r.entry;
    return 1;
}

/* Value at path: 1 (*data set), 0 absent or a different shape, -1 bad data. */
static int db_value(MMDB_entry_s *entry, const char *const *path, MMDB_entry_data_s *data)
{
    int rc = MMDB_aget_value(entry, data, path);

    if (rc == MMDB_SUCCESS)
        return data->has_data ? 1 : 0;
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || rc == MMDB_INVALID_LOOKUP_PATH_ERROR)
        return 0;
    return -1;
}

/* Copies at most cap-1 bytes of s (length n) into dst, NUL-terminated, cutting
 * before an embedded NUL and never inside a UTF-8 character. */
static void copy_utf8(char *dst, size_t cap, const char *s, size_t n)
{
    const char *nul = memchr(s, '\0', n);

    if (cap == 0)
        return;
    if (nul)
        n = (size_t)(nul - s);
    if (n > cap - 1) {
        n = cap - 1;
        /* s[n] is the first byte left out; if it continues a character, drop
         * that character's leading bytes too. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* UTF-8 string at path into dst: 1 copied (non-empty), 0 absent, -1 bad data. */
static int get_string(MMDB_entry_s *entry, const char *const *path, char *dst, size_t cap)
{
    MMDB_entry_data_s d;
    int rc = db_value(entry, path, &d);

    if (rc <= 0)
        return rc;
    if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size == 0)
        return 0;
    copy_utf8(dst, cap, d.utf8_string, d.data_size);
    return dst[0] != '\0';
}

/* Country code in either layout; only 2-3 ASCII letters/digits are taken. */
static int get_country(MMDB_entry_s *entry, char *dst, size_t cap)
{
    static const char *const maxmind[] = {"country", "iso_code", NULL};
    static const char *const ipl[] = {"country_code", NULL};
    char tmp[8] = "";
    int rc = get_string(entry, maxmind, tmp, sizeof(tmp));

    if (rc == 0)
        rc = get_string(entry, ipl, tmp, sizeof(tmp));
    if (rc <= 0)
        return rc;
    size_t n = strlen(tmp);
    if (n < 2 || n > 3 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = tmp[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    memcpy(dst, tmp, n + 1);
    return 1;
}

/* autonomous_system_number as any unsigned type that fits 32 bits. */
static int get_asn(MMDB_entry_s *entry, uint32_t *asn)
{
    static const char *const path[] = {"autonomous_system_number", NULL};
    MMDB_entry_data_s d;
    int rc = db_value(entry, path, &d);

    if (rc <= 0)
        return rc;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16:
        *asn = d.uint16;
        break;
    case MMDB_DATA_TYPE_UINT32:
        *asn = d.uint32;
        break;
    case MMDB_DATA_TYPE_UINT64:
        if (d.uint64 > UINT32_MAX)
            return 0;
        *asn = (uint32_t)d.uint64;
        break;
    case MMDB_DATA_TYPE_INT32:
        if (d.int32 < 0)
            return 0;
        *asn = (uint32_t)d.int32;
        break;
    default:
        return 0;
    }
    return *asn != 0;
}

/* The address to look up: IPv4 as is, IPv6 with an embedded IPv4 as that. */
static void make_sockaddr(int family, const void *addr, struct sockaddr_storage *ss)
{
    uint8_t v4[4];

    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET6 && !v6_embedded_v4(addr, v4)) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, addr, 16);
        return;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, family == AF_INET ? addr : (const void *)v4, 4);
}

/*
 * Fills res from every open database. Thread-safe: reads g only. Returns 1 if
 * any field was found, 0 if the address is not public, g is NULL or nothing was
 * found, -1 if a database reported corrupt data (res is then all empty).
 */
int geoip_lookup(geoip *g, int family, const void *addr, geoip_result *res)
{
    static const char *const org_path[] = {"autonomous_system_organization", NULL};
    static const char *const city_path[] = {"city", "names", "en", NULL};
    struct sockaddr_storage ss;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    MMDB_entry_s entry;
    int rc;

    if (!res)
        return -1;
    memset(res, 0, sizeof(*res));
    if (!g || !geoip_is_public(family, addr))
        return 0;
    make_sockaddr(family, addr, &ss);

    if (g->has_country) {
        rc = db_find(&g->country, sa, &entry);
        if (rc > 0)
            rc = get_country(&entry, res->country, sizeof(res->country));
        if (rc < 0)
            goto fail;
    }
    if (g->has_asn) {
        rc = db_find(&g->asn, sa, &entry);
        if (rc > 0) {
            rc = get_asn(&entry, &res->asn);
            if (rc >= 0)
                rc = get_string(&entry, org_path, res->as_org, sizeof(res->as_org));
        }
        if (rc < 0)
            goto fail;
    }
    if (g->has_city) {
        rc = db_find(&g->city, sa, &entry);
        if (rc > 0) {
            rc = get_string(&entry, city_path, res->city, sizeof(res->city));
            if (rc >= 0 && !g->has_country)
                rc = get_country(&entry, res->country, sizeof(res->country));
        }
        if (rc < 0)
            goto fail;
    }
    return (res->country[0] || res->asn || res->as_org[0] || res->city[0]) ? 1 : 0;
fail:
    memset(res, 0, sizeof(*res));
    return -1;
}
