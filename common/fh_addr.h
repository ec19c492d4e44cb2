/*
 * fh_addr.h - IP addresses, the one library of the product: parsing an address
 * or a network from text (rules, the asset inventory, event values), and which
 * addresses are public (globally reachable, per the IANA special-purpose
 * registries; the rules are listed in fh_addr.c).
 *
 * One answer everywhere: IPv4 is dotted-quad only; an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is that IPv4 address; an IPv6 zone ("%eth0", a
 * short name of visible characters) is dropped; text with a NUL or anything
 * after the address is no address; a network with host bits set is refused
 * (10.1.2.3/8 is a typo for 10.0.0.0/8 or for 10.1.2.3/32, and a guess could
 * be wrong either way).
 */
#ifndef FH_ADDR_H
#define FH_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses the whole of s[0..len) as an address: *family AF_INET (addr[0..4)) or
 * AF_INET6 (addr[0..16)). False for anything that is not exactly an address.
 */
bool fh_addr_parse(const char *s, size_t len, int *family, uint8_t addr[16]);

typedef enum {
    FH_CIDR_OK = 0,
    FH_CIDR_BAD,      /* not "address" or "address/length" */
    FH_CIDR_HOSTBITS, /* bits set past the prefix length */
} fh_cidr_status;

/*
 * Parses "address/length" or a bare address (a /32 or /128), the whole of
 * s[0..len). An IPv4-mapped address written with a prefix length is refused
 * (its length would count 96 bits too many).
 */
fh_cidr_status fh_cidr_parse(const char *s, size_t len, int *family, uint8_t net[16],
                             unsigned *prefix);

/* True if addr starts with the first `prefix` bits of net. */
bool fh_addr_in(const uint8_t *addr, const uint8_t *net, unsigned prefix);

/*
 * True if addr (4 bytes for AF_INET, 16 for AF_INET6) is globally reachable;
 * false for NULL or another family. An IPv6 address that carries an IPv4
 * address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4) is judged by that address.
 */
bool fh_addr_is_public(int family, const void *addr);

/* If the IPv6 address a carries an IPv4 address, copies it to v4 and returns true. */
bool fh_addr_embedded_v4(const uint8_t *a, uint8_t v4[4]);

/* in[0..n) as lower-case hex: 2n characters and a NUL into out. */
void fh_hex(char *out, const uint8_t *in, size_t n);

/*
 * An address as text, as inet_ntop() writes it (out: INET6_ADDRSTRLEN bytes at least);
 * IPv4 without printf (it is in every event twice).
 */
void fh_addr_text(int family, const uint8_t *addr, char *out, size_t len);

#endif
