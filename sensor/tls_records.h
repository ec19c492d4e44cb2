/*
 * tls_records.h - the TLS record layer of a TCP flow, for anomalies that nDPI (which
 * reads the handshake) does not report: a heartbeat whose declared payload does not fit
 * its record (Heartbleed, CVE-2014-0160), a heartbeat response larger than its request
 * (the leak itself), SSLv2 and SSLv3 sessions, a renegotiation, a stream that stops
 * being TLS records, and a client whose hello shows a cryptographic library from before
 * 2000: SSLv2 framing, or export-grade ciphers (40 and 56-bit keys, FREAK and Logjam),
 * which no maintained TLS stack offers and old builds embedded in malware still do. Each
 * is written once per flow as an `anomaly` event with a stable name (docs/events.md).
 *
 * Fed with the reassembled bytes of a flow whose first bytes to the server are a TLS
 * handshake record or an SSLv2 ClientHello (payload.c decides); reads record headers and
 * the first bytes of handshake and heartbeat records, skips the rest without copying.
 * Bounded: 5 + 4 bytes of state per direction, and it stops after TLS_MAX_RECORDS
 * records or TLS_MAX_BYTES bytes per direction (the anomalies it looks for are early).
 */
#ifndef FH_TLS_RECORDS_H
#define FH_TLS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_MAX_RECORDS 256
#define TLS_MAX_BYTES   (1u << 20)

/* The anomalies, in bit order; tls_anomaly_name() gives the event names. */
typedef enum {
    TLS_ANOM_HEARTBEAT_OVERFLOW,          /* payload_length + 3 + 16 > record length */
    TLS_ANOM_HEARTBEAT_RESPONSE_OVERSIZE, /* response record longer than its request's */
    TLS_ANOM_SSLV2,                       /* the server answered in SSLv2 */
    TLS_ANOM_SSLV3,                       /* ServerHello chose SSL 3.0 */
    TLS_ANOM_RENEGOTIATION,               /* a second handshake after the first finished */
    TLS_ANOM_INVALID_RECORD,              /* a record header that is not TLS: parsing stops */
    TLS_ANOM_SSLV2_CLIENT_HELLO,          /* the client hello came in SSLv2 framing */
    TLS_ANOM_EXPORT_CIPHER_OFFERED,       /* the client hello offers an export-grade cipher */
    TLS_ANOM_COUNT
} tls_anomaly;

typedef struct {
    uint8_t hdr[5];
    uint8_t hdr_len;
    uint8_t type;    /* content type of the record being read */
    uint8_t peek[6]; /* its first body bytes (handshake / heartbeat headers) */
    uint8_t peek_len;
    uint32_t left; /* body bytes of the record still to come */
    uint32_t rec_len;
    uint32_t records;
    uint32_t bytes;
    uint32_t hb_len; /* length of the last heartbeat record sent */
    uint8_t ccs;     /* ChangeCipherSpec sent: records are encrypted from here */
    uint8_t sealed;  /* a ChangeCipherSpec or application data record began at plain_end */
    uint32_t plain_end;
    uint8_t handshakes_after_ccs;
    uint8_t done;
} tls_dir;

typedef struct {
    tls_dir d[2];
    uint8_t sslv2;     /* the flow began with an SSLv2 ClientHello */
    uint32_t reported; /* bit per tls_anomaly */
    uint32_t pending;  /* found in the client hello, reported with the client's bytes */
} tls_records;

/* True when data (a flow's first bytes to the server) starts a TLS or SSLv2 ClientHello. */
bool tls_is_client_hello_start(const uint8_t *data, size_t len);
/* Starts reading a flow whose first bytes to the server (as far as they go) are first;
 * the client hello's anomalies are read from them (its cipher list is near its start). */
void tls_records_init(tls_records *t, const uint8_t *first, size_t len);
/*
 * Reads bytes of direction dir (0 to server, 1 to client), in stream order; gap: bytes
 * are missing before them (the direction stops). Returns the anomalies newly found (a
 * bit per tls_anomaly), each at most once per flow.
 */
uint32_t tls_records_data(tls_records *t, int dir, const uint8_t *data, size_t len, bool gap);
/* True once both directions stopped reading. */
bool tls_records_done(const tls_records *t);
/* The stream offset of direction dir where its records stop being plaintext (its first
 * ChangeCipherSpec or application data record), or -1 while not known. */
int64_t tls_records_plain_end(const tls_records *t, int dir);
const char *tls_anomaly_name(tls_anomaly a);

#endif
