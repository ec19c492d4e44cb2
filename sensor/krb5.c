/*
 * krb5.c - Kerberos 5 messages (see krb5.h).
 *
 * A small DER reader: a value is (tag, length, bytes), read only within its parent. The
 * messages are explicitly tagged sequences, so a field is "the child with context tag [n]
 * of this SEQUENCE, then the one value inside it". Long-form lengths of up to 4 bytes;
 * indefinite lengths (BER only) are refused.
 */
#include "krb5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t len;
} der;

/* Reads one TLV at *in (and moves *in past it). */
static bool der_read(der *in, uint8_t *tag, der *val)
{
    size_t n, i = 2;

    if (in->len < 2 || (in->p[0] & 0x1f) == 0x1f)
        return false;
    *tag = in->p[0];
    n = in->p[1];
    if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k == 0 || k > 4 || in->len < 2 + k)
            return false;
        n = 0;
        for (size_t j = 0; j < k; j++)
            n = n << 8 | in->p[2 + j];
        i = 2 + k;
    }
    if (n > in->len - i)
        return false;
    val->p = in->p + i;
    val->len = n;
    in->p += i + n;
    in->len -= i + n;
    return true;
}

/* The value inside context tag [n] of the constructed value seq (the inner TLV's value in
 * *out, its tag in *inner). */
static bool der_field(der seq, unsigned n, uint8_t *inner, der *out)
{
    uint8_t tag;
    der v;

    while (seq.len) {
        if (!der_read(&seq, &tag, &v))
            return false;
        if (tag == (0xa0 | n))
            return der_read(&v, inner, out);
    }
    return false;
}

static bool der_int(der v, int *out)
{
    long x = 0;

    if (v.len == 0 || v.len > 4)
        return false;
    x = (v.p[0] & 0x80) ? -1 : 0;
    for (size_t i = 0; i < v.len; i++)
        x = (long)((unsigned long)x << 8) | v.p[i];
    *out = (int)x;
    return true;
}

static bool field_int(der seq, unsigned n, int *out)
{
    uint8_t t;
    der v;

    return der_field(seq, n, &t, &v) && t == 0x02 && der_int(v, out);
}

/* A KerberosString (GeneralString), its bytes outside printable ASCII as \xHH. */
static void put_string(char *out, size_t *o, der v)
{
    for (size_t i = 0; i < v.len; i++) {
        uint8_t c = v.p[i];
        if (c > 0x20 && c < 0x7f && c != '\\') {
            if (*o + 2 > KRB5_MAX_NAME)
                return;
            out[(*o)++] = (char)c;
        } else {
            if (*o + 5 > KRB5_MAX_NAME)
                return;
            *o += (size_t)snprintf(out + *o, 5, "\\x%02x", c);
        }
    }
}

static void field_string(der seq, unsigned n, char *out)
{
    uint8_t t;
    der v;
    size_t o = 0;

    out[0] = '\0';
    if (der_field(seq, n, &t, &v) && t == 0x1b) {
        put_string(out, &o, v);
        out[o] = '\0';
    }
}

/* PrincipalName ::= SEQUENCE { name-type [0], name-string [1] SEQUENCE OF KerberosString },
 * written as the components joined by '/'. */
static void field_principal(der seq, unsigned n, char *out)
{
    uint8_t t;
    der pn, names, s;
    size_t o = 0;

    out[0] = '\0';
    if (!der_field(seq, n, &t, &pn) || t != 0x30 || !der_field(pn, 1, &t, &names) || t != 0x30)
        return;
    while (names.len && der_read(&names, &t, &s)) {
        if (t != 0x1b)
            continue;
        if (o && o + 2 < KRB5_MAX_NAME)
            out[o++] = '/';
        put_string(out, &o, s);
    }
    out[o] = '\0';
}

/* EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] OPTIONAL, cipher [2] } */
static int field_etype(der seq, unsigned n)
{
    uint8_t t;
    der ed;
    int e;

    if (der_field(seq, n, &t, &ed) && t == 0x30 && field_int(ed, 0, &e))
        return e;
    return -1;
}

bool krb5_parse(const uint8_t *msg, size_t len, krb5_msg *m)
{
    der in = {msg, len}, app, seq, body, tkt, v, list;
    uint8_t tag, t;

    memset(m, 0, sizeof(*m));
    m->etype = m->ticket_etype = m->error_code = -1;
    if (!der_read(&in, &tag, &app) || !der_read(&app, &t, &seq) || t != 0x30)
        return false;
    switch (tag) {
    case 0x6a: /* [APPLICATION 10] AS-REQ */
    case 0x6c: /* [APPLICATION 12] TGS-REQ */
        m->msg_type = tag == 0x6a ? 10 : 12;
        /* KDC-REQ ::= SEQUENCE { pvno [1], msg-type [2], padata [3], req-body [4] } */
        if (!der_field(seq, 4, &t, &body) || t != 0x30)
            return true;
        field_principal(body, 1, m->cname);
        field_string(body, 2, m->realm);
        field_principal(body, 3, m->sname);
        if (der_field(body, 8, &t, &list) && t == 0x30)
            while (list.len && der_read(&list, &t, &v) && m->n_req_etypes < KRB5_MAX_ETYPES)
                if (t == 0x02 && der_int(v, &m->req_etypes[m->n_req_etypes]))
                    m->n_req_etypes++;
        return true;
    case 0x6b: /* [APPLICATION 11] AS-REP */
    case 0x6d: /* [APPLICATION 13] TGS-REP */
        m->msg_type = tag == 0x6b ? 11 : 13;
        /* KDC-REP ::= SEQUENCE { pvno [0], msg-type [1], padata [2], crealm [3], cname [4],
         *                        ticket [5], enc-part [6] } */
        field_string(seq, 3, m->realm);
        field_principal(seq, 4, m->cname);
        m->etype = field_etype(seq, 6);
        /* Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1], sname [2],
         *                                       enc-part [3] } */
        if (der_field(seq, 5, &t, &tkt) && t == 0x61 && der_read(&tkt, &t, &v) && t == 0x30) {
            field_principal(v, 2, m->sname);
            m->ticket_etype = field_etype(v, 3);
        }
        return true;
    case 0x7e: /* [APPLICATION 30] KRB-ERROR */
        m->msg_type = 30;
        field_int(seq, 6, &m->error_code);
        field_string(seq, 7, m->realm);
        field_principal(seq, 8, m->cname);
        if (!m->realm[0])
            field_string(seq, 9, m->realm);
        field_principal(seq, 10, m->sname);
        return true;
    default:
        return false;
    }
}

const char *krb5_etype_name(int e)
{
    switch (e) {
    case 1:
        return "des-cbc-crc";
    case 2:
        return "des-cbc-md4";
    case 3:
        return "des-cbc-md5";
    case 16:
        return "des3-cbc-sha1";
    case 17:
        return "aes128-cts-hmac-sha1-96";
    case 18:
        return "aes256-cts-hmac-sha1-96";
    case 19:
        return "aes128-cts-hmac-sha256-128";
    case 20:
        return "aes256-cts-hmac-sha384-192";
    case 23:
        return "rc4-hmac";
    case 24:
        return "rc4-hmac-exp";
    case -133:
        return "rc4-hmac-old";
    case -135:
        return "rc4-hmac-old-exp";
    }
    return NULL;
}

bool krb5_etype_weak(int e)
{
    return e == 1 || e == 2 || e == 3 || e == 23 || e == 24 || e == -133 || e == -135;
}

const char *krb5_msg_type_name(int t)
{
    switch (t) {
    case 10:
        return "KRB_AS_REQ";
    case 11:
        return "KRB_AS_REP";
    case 12:
        return "KRB_TGS_REQ";
    case 13:
        return "KRB_TGS_REP";
    case 30:
        return "KRB_ERROR";
    }
    return "UNKNOWN";
}

void krb5_stream_free(krb5_stream *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

void krb5_stream_data(krb5_stream *s, const uint8_t *data, uint32_t len, bool gap, krb5_msg_cb cb,
                      void *arg)
{
    if (gap) {
        s->broken = true;
        free(s->buf);
        s->buf = NULL;
    }
    while (len && !s->broken) {
        if (s->skip) {
            uint32_t n = len < s->skip ? len : s->skip;
            s->skip -= n;
            data += n;
            len -= n;
            continue;
        }
        if (s->hdr_len < 4) {
            s->hdr[s->hdr_len++] = *data++;
            len--;
            if (s->hdr_len < 4)
                continue;
            uint32_t l = (uint32_t)s->hdr[0] << 24 | (uint32_t)s->hdr[1] << 16 |
                         (uint32_t)s->hdr[2] << 8 | s->hdr[3];
            if (l & 0x80000000u) { /* the reserved bit: not a Kerberos record */
                s->broken = true;
                return;
            }
            if (l == 0 || l > KRB5_MAX_MSG) {
                s->skip = l;
                s->hdr_len = 0;
                continue;
            }
            s->need = l;
            s->len = 0;
            free(s->buf);
            s->buf = malloc(l);
            if (!s->buf) {
                s->broken = true;
                return;
            }
            continue;
        }
        uint32_t n = s->need - s->len;
        if (n > len)
            n = len;
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        data += n;
        len -= n;
        if (s->len == s->need) {
            krb5_msg m;
            if (krb5_parse(s->buf, s->len, &m))
                cb(&m, arg);
            free(s->buf);
            s->buf = NULL;
            s->hdr_len = 0;
        }
    }
}
