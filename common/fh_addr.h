/*
 * fh_addr.h - public (globally reachable) IP addresses, per the IANA
 * special-purpose registries; the rules are listed in fh_addr.c.
 */
#ifndef FH_ADDR_H
#define FH_ADDR_H

#include <stdbool.h>
#include <stdint.h>

/*
 * True if addr (4 bytes for AF_INET, 16 for AF_INET6) is globally reachable;
 * false for NULL or another family. An IPv6 address that carries an IPv4
 * address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4) is judged by that address.
 */
bool fh_addr_is_public(int family, const void *addr);

/* If the IPv6 address a carries an IPv4 address, copies it to v4 and returns true. */
bool fh_addr_embedded_v4(const uint8_t *a, uint8_t v4[4]);

#endif
