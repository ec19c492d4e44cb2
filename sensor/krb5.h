/*
 * krb5.h - Kerberos 5 messages (RFC 4120) of flows to or from port 88: AS-REQ, AS-REP,
 * TGS-REQ, TGS-REP and KRB-ERROR become `krb5` events (Suricata's EVE layout, plus the
 * ticket's encryption type and the requested ones), so that a service ticket issued with
 * RC4 or DES (Kerberoasting: the ticket is encrypted with the service account's password
 * hash, crackable offline) is visible.
 *
 * UDP: one message per datagram. TCP: each message has a 4-byte length in front (RFC 4120
 * 7.2.2); a message is collected up to KRB5_MAX_MSG bytes (larger ones are skipped). The
 * DER reader never reads past a message and keeps at most KRB5_MAX_NAME bytes of a name.
 */
#ifndef FH_KRB5_H
#define FH_KRB5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KRB5_MAX_MSG    65536
#define KRB5_MAX_NAME   256
#define KRB5_MAX_ETYPES 16

typedef struct {
    int msg_type; /* 10 AS-REQ, 11 AS-REP, 12 TGS-REQ, 13 TGS-REP, 30 KRB-ERROR */
    char cname[KRB5_MAX_NAME];
    char realm[KRB5_MAX_NAME];
    char sname[KRB5_MAX_NAME];
    int etype;                       /* the reply's enc-part, -1 when absent */
    int ticket_etype;                /* the ticket's enc-part (AS-REP / TGS-REP), -1 when absent */
    int req_etypes[KRB5_MAX_ETYPES]; /* requests: the encryption types asked for */
    int n_req_etypes;
    int error_code; /* KRB-ERROR, -1 otherwise */
} krb5_msg;

/* Parses one DER-encoded message; false when it is not one of the five. */
bool krb5_parse(const uint8_t *msg, size_t len, krb5_msg *out);

/* "rc4-hmac", "aes256-cts-hmac-sha1-96", ... or NULL. */
const char *krb5_etype_name(int etype);
/* True for DES and RC4 (crackable, deprecated by RFC 6649 and RFC 8429). */
bool krb5_etype_weak(int etype);
/* "KRB_TGS_REP", ... */
const char *krb5_msg_type_name(int msg_type);

/* TCP: the stream of one direction, framed into messages. */
typedef struct {
    uint8_t *buf;
    uint32_t len, need; /* bytes held; bytes of the current record (4 + length), 0 = header */
    uint8_t hdr[4];
    uint8_t hdr_len;
    uint32_t skip; /* bytes of an oversized record still to skip */
    bool broken;   /* a gap or a nonsense length: the direction is given up */
} krb5_stream;

typedef void (*krb5_msg_cb)(const krb5_msg *m, void *arg);

void krb5_stream_data(krb5_stream *s, const uint8_t *data, uint32_t len, bool gap, krb5_msg_cb cb,
                      void *arg);
void krb5_stream_free(krb5_stream *s);

#endif
