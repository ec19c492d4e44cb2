/*
 * dns.h - DNS messages (RFC 1035) of UDP flows to or from port 53: every query and every
 * response becomes a `dns` event, in EVE's version 2 layout (docs/events.md), where nDPI
 * reports the first query of a flow only.
 *
 * Everything in a message is attacker-controlled: the parser reads within the datagram
 * only, follows at most DNS_MAX_POINTERS compression pointers per name, writes at most
 * DNS_MAX_NAME bytes of a name (bytes outside printable ASCII, and '\', as \xHH) and at
 * most DNS_MAX_ANSWERS answers, and says "malformed" for anything that does not fit.
 */
#ifndef FH_DNS_H
#define FH_DNS_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/jbuf.h"

#define DNS_MAX_NAME     255 /* bytes of a written name, escapes included */
#define DNS_MAX_POINTERS 16
#define DNS_MAX_ANSWERS  32
#define DNS_MAX_TXT      255 /* bytes of a TXT record's text written */

typedef enum { DNS_OK, DNS_MALFORMED, DNS_NOT_DNS } dns_result;

/*
 * Writes the "dns" object of one message (msg[0..len)): header fields, the first question,
 * and for a response its rcode and answers. Returns DNS_OK, DNS_NOT_DNS (shorter than a
 * header: nothing written) or DNS_MALFORMED (what could be read is written, with
 * "malformed": true). *is_query tells the message's direction.
 */
dns_result dns_write_message(jbuf *b, const uint8_t *msg, uint32_t len, bool *is_query);

/* "A", "AAAA", ... or NULL for a type without a name here. */
const char *dns_rrtype_name(uint16_t type);
/* "NOERROR", "NXDOMAIN", ... or NULL. */
const char *dns_rcode_name(uint16_t rcode);

#endif
