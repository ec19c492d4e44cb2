/*
 * geoip.h - country / ASN / city enrichment with libmaxminddb.
 *
 * Up to three databases are open at once; any may be absent. Two country
 * layouts are read: MaxMind's (`country.iso_code`, also found in City files)
 * and ip-location-db's (`country_code`). The ASN database is MaxMind's layout
 * (`autonomous_system_number`, `autonomous_system_organization`), which is
 * also what tools/geoip/build-asn-mmdb.pl writes. A city database, when given,
 * also supplies the country if no country database is open.
 *
 * Private, loopback, link-local, multicast, documentation and other reserved
 * ranges (IPv4 and IPv6) are never looked up: geoip_lookup() returns 0 for
 * them without touching the databases.
 *
 * Only sensor/geoip.c includes maxminddb.h.
 */
#ifndef FH_GEOIP_H
#define FH_GEOIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct geoip geoip;

typedef struct {
    char country[4];  /* ISO 3166-1 alpha-2, "" if unknown */
    uint32_t asn;     /* 0 if unknown */
    char as_org[128]; /* "" if unknown */
    char city[96];    /* English name, "" if unknown or no city database */
} geoip_result;

/*
 * Opens the databases whose paths are not NULL. On failure returns an error,
 * writes "open(\"PATH\") failed: REASON" to err and leaves *out NULL.
 */
fh_err geoip_open(geoip **out, const char *country_path, const char *asn_path,
                  const char *city_path, char *err, size_t errlen);
void geoip_close(geoip *g);

/* True if the address is globally routable (not private, reserved, ...). */
bool geoip_is_public(int family, const void *addr);

/*
 * Looks up `addr` (family AF_INET with 4 bytes or AF_INET6 with 16 bytes).
 * Returns 1 if anything was found (res filled, empty fields for what was not),
 * 0 if the address is not public or in no database, and -1 on a database
 * error (counted in *lookup_errors by the caller; res is then empty).
 */
int geoip_lookup(geoip *g, int family, const void *addr, geoip_result *res);

#endif
