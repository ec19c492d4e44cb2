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
        "RENEGOTIATION",      "INVALID_RECORD"};

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

void tls_records_init(tls_records *t, const uint8_t *first, size_t len)
{
    memset(t, 0, sizeof(*t));
    t->sslv2 = first && sslv2_client_hello(first, len);
    if (t->sslv2)
        t->d[0].done = 1; /* SSLv2 framing: only the server's answer is read */
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
