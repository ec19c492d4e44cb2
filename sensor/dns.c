/*
 * dns.c - DNS messages as `dns` events (see dns.h).
 *
 * One pass over the message, never past its end: the header, the questions (the first
 * one written), then the answer records of a response. Names are read label by label;
 * a compression pointer must point before the name that uses it (RFC 1035 4.1.4 only
 * allows prior occurrences), which with DNS_MAX_POINTERS rules out loops.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

const char *dns_rrtype_name(uint16_t t)
{
    switch (t) {
    case 1:
        return "A";
    case 2:
        return "NS";
    case 5:
        return "CNAME";
    case 6:
        return "SOA";
    case 10:
        return "NULL";
    case 12:
        return "PTR";
    case 13:
        return "HINFO";
    case 15:
        return "MX";
    case 16:
        return "TXT";
    case 28:
        return "AAAA";
    case 33:
        return "SRV";
    case 35:
        return "NAPTR";
    case 41:
        return "OPT";
    case 43:
        return "DS";
    case 46:
        return "RRSIG";
    case 47:
        return "NSEC";
    case 48:
        return "DNSKEY";
    case 64:
        return "SVCB";
    case 65:
        return "HTTPS";
    case 99:
        return "SPF";
    case 251:
        return "IXFR";
    case 252:
        return "AXFR";
    case 255:
        return "ANY";
    case 257:
        return "CAA";
    }
    return NULL;
}

const char *dns_rcode_name(uint16_t r)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    return r < sizeof(names) / sizeof(names[0]) ? names[r] : NULL;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_type(jbuf *b, const char *key, uint16_t t)
{
    const char *n = dns_rrtype_name(t);
    char buf[16];

    if (!n) {
        snprintf(buf, sizeof(buf), "TYPE%u", t);
        n = buf;
    }
    jbuf_str(b, key, n);
}

/* Appends c to out (escaped when not printable, or a backslash); false when full. */
static bool put_char(char *out, size_t *n, uint8_t c)
{
    if (c > 0x20 && c < 0x7f && c != '\\') {
        if (*n + 1 > DNS_MAX_NAME)
            return false;
        out[(*n)++] = (char)c;
        return true;
    }
    if (*n + 4 > DNS_MAX_NAME)
        return false;
    snprintf(out + *n, 5, "\\x%02x", c);
    *n += 4;
    return true;
}

/*
 * Reads the name at msg[*off..] into out (NUL-terminated, "." for the root); *off moves
 * past the name as written in place. False when the name runs out of the message, loops,
 * or uses a reserved label type. A name longer than DNS_MAX_NAME is cut, not refused.
 */
static bool read_name(const uint8_t *msg, uint32_t len, uint32_t *off, char *out)
{
    uint32_t p = *off, floor = *off;
    size_t n = 0;
    int jumps = 0;
    bool jumped = false, full = false;

    for (;;) {
        if (p >= len)
            return false;
        uint8_t l = msg[p];
        if (l == 0) {
            if (!jumped)
                *off = p + 1;
            break;
        }
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len || ++jumps > DNS_MAX_POINTERS)
                return false;
            uint32_t to = (uint32_t)(l & 0x3f) << 8 | msg[p + 1];
            if (to >= floor) /* only earlier names: no loops */
                return false;
            if (!jumped)
                *off = p + 2;
            jumped = true;
            floor = to;
            p = to;
            continue;
        }
        if (l & 0xc0)
            return false; /* 0x40 / 0x80: extended and reserved label types */
        if (p + 1 + l > len)
            return false;
        if (n > 0 && !full)
            full = !put_char(out, &n, '.');
        for (uint32_t i = 0; i < l && !full; i++)
            full = !put_char(out, &n, msg[p + 1 + i]);
        p += 1 + l;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
    return true;
}

/* The rdata of one answer, as EVE writes it: addresses, names, text. */
static bool write_rdata(jbuf *b, const uint8_t *msg, uint32_t len, uint32_t at, uint16_t type,
                        uint16_t rdlen)
{
    char name[DNS_MAX_NAME + 1], txt[DNS_MAX_TXT * 4 + 1];
    char addr[INET6_ADDRSTRLEN];
    uint32_t o = at;

    switch (type) {
    case 1:
    case 28:
        if (rdlen != (type == 1 ? 4 : 16))
            return false;
        inet_ntop(type == 1 ? AF_INET : AF_INET6, msg + at, addr, sizeof(addr));
        jbuf_str(b, "rdata", addr);
        return true;
    case 2:
    case 5:
    case 12:
    case 6: /* SOA: its primary name server */
        if (!read_name(msg, at + rdlen, &o, name))
            return false;
        jbuf_str(b, "rdata", name);
        return true;
    case 15: /* MX: preference, exchange */
        if (rdlen < 3)
            return false;
        o = at + 2;
        if (!read_name(msg, at + rdlen, &o, name))
            return false;
        jbuf_str(b, "rdata", name);
        return true;
    case 16: { /* TXT: the character-strings, concatenated */
        size_t n = 0;
        bool full = false;
        while (o < at + rdlen) {
            uint8_t l = msg[o];
            if (o + 1 + l > at + rdlen)
                return false;
            for (uint32_t i = 0; i < l && !full; i++) {
                uint8_t c = msg[o + 1 + i];
                if (n + 4 > DNS_MAX_TXT) {
                    full = true;
                    break;
                }
                if (c >= 0x20 && c < 0x7f && c != '\\')
                    txt[n++] = (char)c;
                else
                    n += (size_t)snprintf(txt + n, 5, "\\x%02x", c);
            }
            o += 1 + l;
        }
        txt[n] = '\0';
        jbuf_str(b, "rdata", txt);
        return true;
    }
    default:
        (void)len;
        return true; /* the type and TTL say enough */
    }
}

dns_result dns_write_message(jbuf *b, const uint8_t *msg, uint32_t len, bool *is_query)
{
    char name[DNS_MAX_NAME + 1], flags[8];
    uint16_t fl, qd, an;
    uint32_t off = 12;
    bool bad = false;

    if (len < 12)
        return DNS_NOT_DNS;
    fl = rd16(msg + 2);
    qd = rd16(msg + 4);
    an = rd16(msg + 6);
    *is_query = !(fl & 0x8000);
    jbuf_obj_open(b, "dns");
    jbuf_u64(b, "version", 2);
    jbuf_str(b, "type", *is_query ? "query" : "answer");
    jbuf_u64(b, "id", rd16(msg));
    snprintf(flags, sizeof(flags), "%04x", fl);
    jbuf_str(b, "flags", flags);
    jbuf_bool(b, "qr", !*is_query);
    if ((fl >> 11) & 0xf)
        jbuf_u64(b, "opcode", (fl >> 11) & 0xf);
    if (fl & 0x0400)
        jbuf_bool(b, "aa", true);
    if (fl & 0x0200)
        jbuf_bool(b, "tc", true);
    jbuf_bool(b, "rd", (fl & 0x0100) != 0);
    if (!*is_query)
        jbuf_bool(b, "ra", (fl & 0x0080) != 0);
    for (uint16_t i = 0; i < qd && !bad; i++) {
        if (!read_name(msg, len, &off, name) || off + 4 > len) {
            bad = true;
            break;
        }
        if (i == 0) {
            jbuf_str(b, "rrname", name);
            put_type(b, "rrtype", rd16(msg + off));
        }
        off += 4;
    }
    if (qd > 1)
        jbuf_u64(b, "questions", qd);
    if (!*is_query) {
        const char *rc = dns_rcode_name(fl & 0xf);
        char buf[16];
        if (!rc) {
            snprintf(buf, sizeof(buf), "RCODE%u", fl & 0xf);
            rc = buf;
        }
        jbuf_str(b, "rcode", rc);
        if (an && !bad) {
            jbuf_arr_open(b, "answers");
            for (uint16_t i = 0; i < an && !bad; i++) {
                uint16_t type, rdlen;
                uint32_t ttl;

                if (!read_name(msg, len, &off, name) || off + 10 > len) {
                    bad = true;
                    break;
                }
                type = rd16(msg + off);
                ttl = (uint32_t)rd16(msg + off + 4) << 16 | rd16(msg + off + 6);
                rdlen = rd16(msg + off + 8);
                off += 10;
                if (off + rdlen > len) {
                    bad = true;
                    break;
                }
                if (i < DNS_MAX_ANSWERS) {
                    jbuf_obj_open(b, NULL);
                    jbuf_str(b, "rrname", name);
                    put_type(b, "rrtype", type);
                    jbuf_u64(b, "ttl", ttl);
                    if (!write_rdata(b, msg, len, off, type, rdlen))
                        bad = true;
                    jbuf_obj_close(b);
                }
                off += rdlen;
            }
            jbuf_arr_close(b);
            if (an > DNS_MAX_ANSWERS)
                jbuf_u64(b, "answers_total", an);
        }
    }
    if (bad)
        jbuf_bool(b, "malformed", true);
    jbuf_obj_close(b);
    return bad ? DNS_MALFORMED : DNS_OK;
}
