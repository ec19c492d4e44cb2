/*
 * tls_records.c - see tls_records.h.
 */
#include "tls_records.h"

#include <string.h>

enum { CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23, CT_HEARTBEAT = 24 };
#define TLS_MAX_RECORD (16384 + 2048) /* largest TLSCiphertext */

const char *tls_anomaly_name(tls_anomaly a)
{
    static const char *const names[TLS_ANOM_COUNT] = {
        "HEARTBEAT_OVERFLOW", "HEARTBEAT_RESPONSE_OVERSIZE",
        "SSLV2_SESSION",      "SSLV3_SESSION",
        "RENEGOTIATION",      "INVALID_RECORD",
        "SSLV2_CLIENT_HELLO", "EXPORT_CIPHER_OFFERED"};

    return (unsigned)a < TLS_ANOM_COUNT ? names[a] : "UNKNOWN";
}

static bool sslv2_client_hello(const uint8_t *d, size_t len)
{
    /* 2-byte header with the high bit, message type 1, version 0.2, 3.0 or 3.x */
    return len >= 5 && (d[0] & 0x80) && d[2] == 0x01 &&
           ((d[3] == 0x00 && d[4] == 0x02) || d[3] == 0x03);
}

bool tls_is_client_hello_start(const uint8_t *d, size_t len)
{
    if (len >= 6 && d[0] == CT_HANDSHAKE && d[1] == 0x03 && d[2] <= 0x04 && d[5] == 0x01)
        return true;
    return sslv2_client_hello(d, len);
}

/*
 * Export-grade cipher suites: RFC 2246 and RFC 2712's _EXPORT_ suites (40-bit keys and
 * 512-bit key exchange) and the EXPORT1024 suites of draft-ietf-tls-56-bit-ciphersuites
 * (56-bit keys).
 */
static bool export_suite(unsigned s)
{
    static const uint16_t suites[] = {0x0003, 0x0006, 0x0008, 0x000b, 0x000e, 0x0011, 0x0014,
                                      0x0017, 0x0019, 0x0026, 0x0027, 0x0028, 0x0029, 0x002a,
                                      0x002b, 0x0060, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065};

    if (s > 0x0065)
        return false;
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (suites[i] == s)
            return true;
    return false;
}

/* An SSLv2 cipher kind (3 bytes): SSLv2's RC4_128_EXPORT40 and RC2_128_CBC_EXPORT40, or an
 * export TLS suite */
static bool export_v2_kind(const uint8_t *k)
{
    if (k[0] == 0)
        return export_suite((unsigned)k[1] << 8 | k[2]); /* a TLS suite in SSLv2 form */
    return (k[0] == 0x02 || k[0] == 0x04) && k[1] == 0x00 && k[2] == 0x80;
}

/*
 * The anomalies of a client hello, from its first len bytes (a hello longer than what
 * arrived is read as far as it goes; its cipher list comes before anything large).
 * SSLv2 framing: 2-byte length, type 1, version, cipher specs length, session id and
 * challenge lengths, then 3-byte cipher kinds. TLS: record header, handshake header,
 * version, 32 bytes of random, session id, then 2-byte suites.
 */
static uint32_t client_hello_anomalies(const uint8_t *d, size_t len, bool v2)
{
    uint32_t found = 0;
    size_t off, end, rec, w = v2 ? 3 : 2; /* a cipher's bytes */

    if (v2) {
        found = 1u << TLS_ANOM_SSLV2_CLIENT_HELLO;
        if (len < 11)
            return found;
        rec = ((size_t)(d[0] & 0x7f) << 8 | d[1]) + 2;
        off = 11;
        end = off + ((size_t)d[5] << 8 | d[6]);
    } else {
        if (len < 44)
            return 0;
        off = 44 + d[43]; /* past the session id */
        if (off + 2 > len)
            return 0;
        rec = 5 + ((size_t)d[3] << 8 | d[4]);
        end = off + 2 + ((size_t)d[off] << 8 | d[off + 1]);
        off += 2;
    }
    if (end > rec)
        end = rec; /* not past the record */
    for (; off + w <= end && off + w <= len; off += w)
        if (v2 ? export_v2_kind(d + off) : export_suite((unsigned)d[off] << 8 | d[off + 1]))
            return found | 1u << TLS_ANOM_EXPORT_CIPHER_OFFERED;
    return found;
}

void tls_records_init(tls_records *t, const uint8_t *first, size_t len)
{
    memset(t, 0, sizeof(*t));
    t->sslv2 = first && sslv2_client_hello(first, len);
    if (t->sslv2)
        t->d[0].done = 1; /* SSLv2 framing: only the server's answer is read */
    if (first && (t->sslv2 || tls_is_client_hello_start(first, len)))
        t->pending = client_hello_anomalies(first, len, t->sslv2);
}

static uint32_t report(tls_records *t, tls_anomaly a)
{
    uint32_t bit = 1u << a;

    if (t->reported & bit)
        return 0;
    t->reported |= bit;
    return bit;
}

/* A record's first body bytes are in (peek, up to 6): what they say. */
static uint32_t on_peek(tls_records *t, int dir, const tls_dir *d)
{
    uint32_t found = 0;

    if (d->ccs)
        return 0; /* encrypted */
    if (d->type == CT_HEARTBEAT && d->peek_len >= 3 && d->peek[0] == 1) {
        uint32_t declared = (uint32_t)d->peek[1] << 8 | d->peek[2];

        /* RFC 6520: type(1) + payload_length(2) + payload + at least 16 bytes of padding */
        if (declared + 3 + 16 > d->rec_len)
            found |= report(t, TLS_ANOM_HEARTBEAT_OVERFLOW);
    }
    /* ServerHello: msg_type 2, length (3 bytes), server_version 3.0 */
    if (d->type == CT_HANDSHAKE && dir == 1 && d->peek_len >= 6 && d->peek[0] == 2 &&
        d->peek[4] == 3 && d->peek[5] == 0)
        found |= report(t, TLS_ANOM_SSLV3);
    return found;
}

uint32_t tls_records_data(tls_records *t, int dir, const uint8_t *p, size_t len, bool gap)
{
    tls_dir *d = &t->d[dir];
    uint32_t found = 0;

    if (dir == 0 && t->pending) { /* the client hello's, each once (as report() does) */
        found = t->pending & ~t->reported;
        t->reported |= t->pending;
        t->pending = 0;
    }
    if (gap)
        d->done = 1;
    if (t->sslv2 && dir == 1 && !d->done && d->bytes == 0 && len >= 5) {
        /* the server's first bytes: an SSLv2 ServerHello (message type 4) or TLS */
        if ((p[0] & 0x80) && p[2] == 0x04)
            found |= report(t, TLS_ANOM_SSLV2);
        if (!(p[0] == CT_HANDSHAKE && p[1] == 0x03))
            d->done = 1;
    }
    while (len && !d->done) {
        size_t n;

        if (d->left == 0 && d->hdr_len < 5) {
            /* record header */
            n = 5 - d->hdr_len;
            if (n > len)
                n = len;
            memcpy(d->hdr + d->hdr_len, p, n);
            d->hdr_len += (uint8_t)n;
            p += n;
            len -= n;
            d->bytes += (uint32_t)n;
            if (d->hdr_len < 5)
                break;
            d->type = d->hdr[0];
            d->rec_len = (uint32_t)d->hdr[3] << 8 | d->hdr[4];
            if (d->type < CT_CCS || d->type > CT_HEARTBEAT || d->hdr[1] != 0x03 ||
                d->rec_len == 0 || d->rec_len > TLS_MAX_RECORD) {
                found |= report(t, TLS_ANOM_INVALID_RECORD);
                d->done = 1;
                break;
            }
            d->left = d->rec_len;
            d->peek_len = 0;
            d->records++;
            if (!d->sealed && (d->type == CT_CCS || d->type == CT_APPDATA)) {
                d->sealed = 1;
                d->plain_end = d->bytes - 5;
            }
            if (d->type == CT_CCS)
                d->ccs = 1;
            else if (d->type == CT_HANDSHAKE && d->ccs && ++d->handshakes_after_ccs > 1)
                found |= report(t, TLS_ANOM_RENEGOTIATION); /* the first is Finished */
            if (d->type == CT_HEARTBEAT) {
                if (dir == 0)
                    d->hb_len = d->rec_len;
                else if (t->d[0].hb_len && d->rec_len > t->d[0].hb_len)
                    found |= report(t, TLS_ANOM_HEARTBEAT_RESPONSE_OVERSIZE);
            }
            continue;
        }
        /* record body: keep its first bytes, skip the rest */
        n = d->left < len ? d->left : len;
        {
            size_t off = d->rec_len - d->left, want = d->rec_len < 6 ? d->rec_len : 6;

            for (size_t i = 0; i < n && off + i < want; i++)
                d->peek[off + i] = p[i];
            if (off < want && off + n >= want) {
                d->peek_len = (uint8_t)want;
                found |= on_peek(t, dir, d);
            }
        }
        d->left -= (uint32_t)n;
        p += n;
        len -= n;
        d->bytes += (uint32_t)n;
        if (d->left == 0)
            d->hdr_len = 0;
        if (d->records >= TLS_MAX_RECORDS || d->bytes >= TLS_MAX_BYTES)
            d->done = 1;
    }
    return found;
}

int64_t tls_records_plain_end(const tls_records *t, int dir)
{
    return t->d[dir].sealed ? (int64_t)t->d[dir].plain_end : -1;
}

bool tls_records_done(const tls_records *t)
{
    return t->d[0].done && t->d[1].done;
}
