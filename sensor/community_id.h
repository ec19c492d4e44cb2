/*
 * community_id.h - Community ID v1 flow hashing (corelight/community-id-spec).
 *
 *   "1:" + base64(SHA1(seed(2, BE) | saddr | daddr | proto(1) | 0(1) | sport(2) | dport(2)))
 *
 * The endpoints are ordered so that both directions give the same ID: the
 * smaller (address, port) pair comes first. For ICMP and ICMPv6 the "ports"
 * are type and code, with the request/reply types mapped to each other so a
 * request and its reply hash alike; unpaired types are one-way. Protocols
 * without ports (GRE, ESP, ...) hash addresses and protocol only.
 */
#ifndef FH_COMMUNITY_ID_H
#define FH_COMMUNITY_ID_H

#include <stddef.h>
#include <stdint.h>

#define COMMUNITY_ID_LEN 31 /* "1:" + 28 base64 characters + NUL */

/*
 * Computes the ID for a flow seen from src to dst. Addresses are 4 bytes for
 * ip_version 4 and 16 for 6. For ICMP pass type in sport and code in dport.
 * Writes a NUL-terminated string to out (at least COMMUNITY_ID_LEN bytes).
 */
void community_id_v1(uint16_t seed, int ip_version, const uint8_t *src, const uint8_t *dst,
                     uint8_t proto, uint16_t sport, uint16_t dport, char *out);

#endif
