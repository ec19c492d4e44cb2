/*
 * defrag.h - IPv4 and IPv6 fragment reassembly with bounded memory.
 *
 * A datagram in progress is keyed by (IP version, src, dst, id, protocol).
 * Received bytes are tracked in 8-byte blocks (the fragment offset unit);
 * when a fragment overlaps data already held, the data first received wins
 * ("first" policy, as BSD) and the overlap is reported once per fragment.
 *
 * Limits: total buffer memory (memcap), number of datagrams in progress and a
 * timeout in packet time. Past the memcap or count the oldest datagram is
 * dropped; datagrams older than the timeout are dropped by defrag_expire().
 * Both are counted by the caller through the result codes and the counters.
 *
 * The reassembled datagram is written into one output buffer owned by the
 * context (valid until the next defrag call): a full IPv4 header (options of
 * the first fragment kept, MF and offset cleared, lengths fixed) or an IPv6
 * base header whose next header is the fragmented protocol, then the payload.
 */
#ifndef FH_DEFRAG_H
#define FH_DEFRAG_H

#include <stddef.h>
#include <stdint.h>

typedef struct defrag_dgram defrag_dgram;

typedef struct {
    defrag_dgram **buckets;
    uint32_t nbuckets;
    defrag_dgram *oldest, *newest; /* arrival order of datagrams, for expiry */
    size_t mem_used, memcap;
    uint32_t count, max_count;
    uint64_t timeout_us;
    uint8_t *out;     /* reassembly output, 64 KiB + header */
    uint64_t expired; /* datagrams dropped by timeout */
    uint64_t evicted; /* datagrams dropped by memcap/count */
} defrag_ctx;

typedef enum {
    DEFRAG_HELD = 0, /* stored; datagram not complete yet */
    DEFRAG_DONE,     /* complete: out and outlen hold the datagram */
    DEFRAG_OVERLAP,  /* stored, but it overlapped earlier data (maybe also complete) */
    DEFRAG_OVERLAP_DONE,
    DEFRAG_TOO_LARGE, /* would exceed 65535 bytes: datagram dropped */
    DEFRAG_MEMCAP,    /* no memory within the cap even after eviction: fragment dropped */
    DEFRAG_BAD_LEN,   /* non-final fragment whose length is not a multiple of 8 */
} defrag_result;

/* Returns 0, or -1 if the hash table or output buffer cannot be allocated. */
int defrag_init(defrag_ctx *c, size_t memcap, uint32_t max_datagrams, uint32_t timeout_s);
void defrag_free(defrag_ctx *c);

/*
 * Adds an IPv4 fragment. `ip` is the IPv4 header (hlen bytes, already
 * validated), `data`/`len` the fragment's payload, `off` its byte offset and
 * `more` the MF flag.
 */
defrag_result defrag_add_ipv4(defrag_ctx *c, const uint8_t *ip, uint32_t hlen, const uint8_t *data,
                              uint32_t len, uint32_t off, int more, uint64_t now_us,
                              const uint8_t **out, uint32_t *outlen);

/*
 * Adds an IPv6 fragment. `ip6` is the 40-byte base header, `nh` the next
 * header carried in the fragment header, `id` its identification.
 */
defrag_result defrag_add_ipv6(defrag_ctx *c, const uint8_t *ip6, uint8_t nh, uint32_t id,
                              const uint8_t *data, uint32_t len, uint32_t off, int more,
                              uint64_t now_us, const uint8_t **out, uint32_t *outlen);

/* Drops datagrams whose first fragment is older than the timeout. */
void defrag_expire(defrag_ctx *c, uint64_t now_us);

#endif
