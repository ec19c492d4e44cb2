/*
 * geoip.c - country / ASN / city enrichment with libmaxminddb (see geoip.h).
 *
 * Up to three MaxMind DB files are opened read-only with MMDB_MODE_MMAP. After
 * geoip_open() the struct is never written again, and libmaxminddb lookups only
 * read the mapping, so any number of threads may call geoip_lookup() at once.
 *
 * Which addresses are looked up at all is common/fh_addr.c's rule
 * (fh_addr_is_public): only globally reachable ones.
 *
 * Strings from the databases are copied bounded; a value longer than its field
 * is cut at a UTF-8 character boundary, never inside a character.
 */
#include "geoip.h"

#include "../common/fh_addr.h"

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

bool geoip_is_public(int family, const void *addr)
{
    return fh_addr_is_public(family, addr);
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
    if (family == AF_INET6 && !fh_addr_embedded_v4(addr, v4)) {
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
