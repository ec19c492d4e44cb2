/*
 * defrag.c - IP fragment reassembly; see defrag.h for the design.
 */
#include "defrag.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFRAG_MAX_PAYLOAD 65535u
#define DEFRAG_BLOCKS      ((DEFRAG_MAX_PAYLOAD + 7) / 8)
#define DEFRAG_OUT_SIZE    (60u + DEFRAG_MAX_PAYLOAD)

struct defrag_dgram {
    defrag_dgram *hnext;         /* hash chain */
    defrag_dgram *older, *newer; /* arrival list */
    uint8_t version, proto;
    uint32_t id;
    uint8_t src[16], dst[16];
    uint64_t first_us;
    uint8_t hdr[60];  /* header of the offset-0 fragment (IPv4 with options, or IPv6 base) */
    uint32_t hdr_len; /* 0 until the first fragment has arrived */
    uint32_t total;   /* payload length once the last fragment is known, else 0 */
    uint32_t have_last;
    uint8_t *data;
    uint32_t cap;
    uint8_t blocks[(DEFRAG_BLOCKS + 7) / 8]; /* received 8-byte blocks */
};

static uint32_t dgram_hash(uint8_t version, uint8_t proto, uint32_t id, const uint8_t *src,
                           const uint8_t *dst)
{
    /* FNV-1a over the key; addresses are attacker-chosen but the chains are
     * bounded by max_datagrams, so a poor spread costs time, never memory. */
    uint32_t h = 2166136261u;
    int alen = version == 4 ? 4 : 16;

    h = (h ^ version) * 16777619u;
    h = (h ^ proto) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((id >> (8 * i)) & 0xff)) * 16777619u;
    for (int i = 0; i < alen; i++)
        h = (h ^ (uint8_t)(src[i] + dst[i])) * 16777619u; /* symmetric not needed; cheap mix */
    for (int i = 0; i < alen; i++)
        h = (h ^ dst[i]) * 16777619u;
    return h;
}

int defrag_init(defrag_ctx *c, size_t memcap, uint32_t max_datagrams, uint32_t timeout_s)
{
    memset(c, 0, sizeof(*c));
    c->memcap = memcap;
    c->max_count = max_datagrams ? max_datagrams : 1;
    c->timeout_us = (uint64_t)timeout_s * 1000000u;
    c->nbuckets = 1;
    while (c->nbuckets < c->max_count)
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    c->out = malloc(DEFRAG_OUT_SIZE);
    if (!c->buckets || !c->out) {
        defrag_free(c);
        return -1;
    }
    return 0;
}

static void dgram_unlink(defrag_ctx *c, defrag_dgram *d)
{
    uint32_t b = dgram_hash(d->version, d->proto, d->id, d->src, d->dst) & (c->nbuckets - 1);
    defrag_dgram **pp = &c->buckets[b];

    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = d->hnext;
    if (d->older)
        d->older->newer = d->newer;
    else
        c->oldest = d->newer;
    if (d->newer)
        d->newer->older = d->older;
    else
        c->newest = d->older;
    c->mem_used -= sizeof(*d) + d->cap;
    c->count--;
    free(d->data);
    free(d);
}

void defrag_free(defrag_ctx *c)
{
    while (c->oldest)
        dgram_unlink(c, c->oldest);
    free(c->buckets);
    free(c->out);
    memset(c, 0, sizeof(*c));
}

void defrag_expire(defrag_ctx *c, uint64_t now_us)
{
    while (c->oldest && c->oldest->first_us + c->timeout_us < now_us) {
        dgram_unlink(c, c->oldest);
        c->expired++;
    }
}

/* Frees the oldest datagrams until `need` more bytes fit and a slot is free. */
static bool make_room(defrag_ctx *c, size_t need, const defrag_dgram *keep)
{
    while (c->oldest && (c->mem_used + need > c->memcap || c->count >= c->max_count)) {
        if (c->oldest == keep)
            return false;
        dgram_unlink(c, c->oldest);
        c->evicted++;
    }
    return c->mem_used + need <= c->memcap && c->count < c->max_count;
}

/* Finds the datagram of this key, or creates it; NULL when no room can be made. */
static defrag_dgram *dgram_find(defrag_ctx *c, uint8_t version, uint8_t proto, uint32_t id,
                                const uint8_t *src, const uint8_t *dst, uint64_t now_us)
{
    int alen = version == 4 ? 4 : 16;
    uint32_t b = dgram_hash(version, proto, id, src, dst) & (c->nbuckets - 1);
    defrag_dgram *d;

    for (d = c->buckets[b]; d; d = d->hnext)
        if (d->version == version && d->proto == proto && d->id == id &&
            memcmp(d->src, src, alen) == 0 && memcmp(d->dst, dst, alen) == 0)
            return d;
    if (!make_room(c, sizeof(*d), NULL) || !(d = calloc(1, sizeof(*d))))
        return NULL;
    d->version = version;
    d->proto = proto;
    d->id = id;
    memcpy(d->src, src, alen);
    memcpy(d->dst, dst, alen);
    d->first_us = now_us;
    d->hnext = c->buckets[b];
    c->buckets[b] = d;
    d->older = c->newest;
    if (c->newest)
        c->newest->newer = d;
    else
        c->oldest = d;
    c->newest = d;
    c->mem_used += sizeof(*d);
    c->count++;
    return d;
}

static bool block_get(const defrag_dgram *d, uint32_t i)
{
    return d->blocks[i >> 3] & (1u << (i & 7));
}

static void block_set(defrag_dgram *d, uint32_t i)
{
    d->blocks[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static bool dgram_complete(const defrag_dgram *d)
{
    if (!d->have_last || !d->hdr_len)
        return false;
    for (uint32_t i = 0; i < (d->total + 7) / 8; i++)
        if (!block_get(d, i))
            return false;
    return true;
}

/*
 * Stores one fragment's bytes. Returns a defrag_result for errors, or
 * DEFRAG_HELD / DEFRAG_OVERLAP when stored.
 */
static defrag_result dgram_store(defrag_ctx *c, defrag_dgram *d, const uint8_t *data, uint32_t len,
                                 uint32_t off, int more)
{
    uint32_t end = off + len;
    bool overlap = false;

    if (end > DEFRAG_MAX_PAYLOAD)
        return DEFRAG_TOO_LARGE;
    if (more && (len % 8 != 0 || len == 0))
        return DEFRAG_BAD_LEN;
    if (!more) {
        if (d->have_last && d->total != end)
            overlap = true; /* two different ends: keep the first */
        else {
            d->have_last = 1;
            d->total = end;
        }
    } else if (d->have_last && end > d->total) {
        return DEFRAG_BAD_LEN; /* data past the announced end */
    }
    if (end > d->cap) {
        uint32_t ncap = (end + 1023) & ~1023u;
        uint8_t *p;

        if (ncap > DEFRAG_MAX_PAYLOAD)
            ncap = DEFRAG_MAX_PAYLOAD;
        if (!make_room(c, ncap - d->cap, d))
            return DEFRAG_MEMCAP;
        p = realloc(d->data, ncap);
        if (!p)
            return DEFRAG_MEMCAP;
        c->mem_used += ncap - d->cap;
        d->data = p;
        d->cap = ncap;
    }
    for (uint32_t blk = off / 8; blk * 8 < end; blk++) {
        uint32_t bs = blk * 8, be = bs + 8;
        uint32_t cs = bs < off ? off : bs, ce = be > end ? end : be;

        if (block_get(d, blk)) {
            overlap = true;
            continue; /* first data wins */
        }
        memcpy(d->data + cs, data + (cs - off), ce - cs);
        /* A block is complete when this fragment covers it fully, or it is
         * the final partial block of the datagram. */
        if ((cs == bs && ce == be) || (!more && ce == end && cs == bs))
            block_set(d, blk);
    }
    return overlap ? DEFRAG_OVERLAP : DEFRAG_HELD;
}

static defrag_result finish(defrag_ctx *c, defrag_dgram *d, defrag_result stored,
                            const uint8_t **out, uint32_t *outlen)
{
    uint32_t n;

    if (!dgram_complete(d))
        return stored;
    memcpy(c->out, d->hdr, d->hdr_len);
    memcpy(c->out + d->hdr_len, d->data, d->total);
    n = d->hdr_len + d->total;
    if (d->version == 4) {
        uint16_t sum_len = (uint16_t)n;
        uint32_t sum = 0;

        c->out[2] = (uint8_t)(sum_len >> 8);
        c->out[3] = (uint8_t)sum_len;
        c->out[6] = 0; /* clear MF and offset, keep nothing of DF: it was fragmented */
        c->out[7] = 0;
        c->out[10] = c->out[11] = 0;
        for (uint32_t i = 0; i < d->hdr_len; i += 2)
            sum += (uint32_t)(c->out[i] << 8 | c->out[i + 1]);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        c->out[10] = (uint8_t)(~sum >> 8);
        c->out[11] = (uint8_t)~sum;
    } else {
        c->out[4] = (uint8_t)(d->total >> 8);
        c->out[5] = (uint8_t)d->total;
        c->out[6] = d->proto;
    }
    *out = c->out;
    *outlen = n;
    dgram_unlink(c, d);
    return stored == DEFRAG_OVERLAP ? DEFRAG_OVERLAP_DONE : DEFRAG_DONE;
}

/* Common to both versions: find or create the datagram, store, complete. */
static defrag_result add_fragment(defrag_ctx *c, uint8_t version, uint8_t proto, uint32_t id,
                                  const uint8_t *src, const uint8_t *dst, const uint8_t *hdr,
                                  uint32_t hlen, const uint8_t *data, uint32_t len, uint32_t off,
                                  int more, uint64_t now_us, const uint8_t **out, uint32_t *outlen)
{
    defrag_dgram *d = dgram_find(c, version, proto, id, src, dst, now_us);
    defrag_result r;

    if (!d)
        return DEFRAG_MEMCAP;
    r = dgram_store(c, d, data, len, off, more);
    if (r != DEFRAG_HELD && r != DEFRAG_OVERLAP) {
        dgram_unlink(c, d);
        return r;
    }
    /* The offset-0 fragment's header becomes the reassembled datagram's. */
    if (off == 0 && !d->hdr_len && hlen <= sizeof(d->hdr)) {
        memcpy(d->hdr, hdr, hlen);
        d->hdr_len = hlen;
    }
    return finish(c, d, r, out, outlen);
}

defrag_result defrag_add_ipv4(defrag_ctx *c, const uint8_t *ip, uint32_t hlen, const uint8_t *data,
                              uint32_t len, uint32_t off, int more, uint64_t now_us,
                              const uint8_t **out, uint32_t *outlen)
{
    return add_fragment(c, 4, ip[9], (uint32_t)(ip[4] << 8 | ip[5]), ip + 12, ip + 16, ip, hlen,
                        data, len, off, more, now_us, out, outlen);
}

defrag_result defrag_add_ipv6(defrag_ctx *c, const uint8_t *ip6, uint8_t nh, uint32_t id,
                              const uint8_t *data, uint32_t len, uint32_t off, int more,
                              uint64_t now_us, const uint8_t **out, uint32_t *outlen)
{
    return add_fragment(c, 6, nh, id, ip6 + 8, ip6 + 24, ip6, 40, data, len, off, more, now_us, out,
                        outlen);
}
