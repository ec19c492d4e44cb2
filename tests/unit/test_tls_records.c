/*
 * test_tls_records.c - unit tests of sensor/tls_records.c (cmocka): the client hello's
 * anomalies (SSLv2 framing, export-grade ciphers), read from the client's first bytes
 * within the hello's bounds, reported once with the client's bytes; every cut of a hello
 * is read safely and never reports a suite that was not there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/tls_records.h"

#define BIT(a) (1u << (a))

/* A TLS 1.2 ClientHello record offering suites[0..n), with a session id of sid bytes. */
static size_t tls_hello(uint8_t *out, const uint16_t *suites, size_t n, uint8_t sid)
{
    size_t o = 0, body;

    out[o++] = 22, out[o++] = 3, out[o++] = 1, o += 2; /* record header, length later */
    out[o++] = 1, o += 3;                              /* ClientHello, length later */
    out[o++] = 3, out[o++] = 3;
    memset(out + o, 0x11, 32), o += 32;
    out[o++] = sid;
    memset(out + o, 0x22, sid), o += sid;
    out[o++] = (uint8_t)(n * 2 >> 8), out[o++] = (uint8_t)(n * 2);
    for (size_t i = 0; i < n; i++)
        out[o++] = (uint8_t)(suites[i] >> 8), out[o++] = (uint8_t)suites[i];
    out[o++] = 1, out[o++] = 0; /* compression: null */
    out[o++] = 0, out[o++] = 0; /* no extensions */
    body = o - 9;
    out[3] = (uint8_t)((o - 5) >> 8), out[4] = (uint8_t)(o - 5);
    out[6] = 0, out[7] = (uint8_t)(body >> 8), out[8] = (uint8_t)body;
    return o;
}

/* An SSLv2-framed ClientHello offering the 3-byte kinds[0..n). */
static size_t v2_hello(uint8_t *out, const uint32_t *kinds, size_t n)
{
    size_t o = 2;

    out[o++] = 1, out[o++] = 3, out[o++] = 1;
    out[o++] = (uint8_t)(n * 3 >> 8), out[o++] = (uint8_t)(n * 3);
    out[o++] = 0, out[o++] = 0;  /* no session id */
    out[o++] = 0, out[o++] = 16; /* challenge */
    for (size_t i = 0; i < n; i++)
        out[o++] = (uint8_t)(kinds[i] >> 16), out[o++] = (uint8_t)(kinds[i] >> 8),
        out[o++] = (uint8_t)kinds[i];
    memset(out + o, 0x33, 16), o += 16;
    out[0] = (uint8_t)(0x80 | (o - 2) >> 8), out[1] = (uint8_t)(o - 2);
    return o;
}

/* The anomalies a flow reports when its client's first bytes are d[0..len). */
static uint32_t client_found(const uint8_t *d, size_t len)
{
    tls_records t;
    uint32_t found;

    tls_records_init(&t, d, len);
    /* the server's bytes first: the client's anomalies wait for the client's bytes */
    assert_int_equal(tls_records_data(&t, 1, NULL, 0, false), 0);
    found = tls_records_data(&t, 0, d, len, false);
    /* once per flow */
    assert_int_equal(tls_records_data(&t, 0, NULL, 0, false), 0);
    return found & (BIT(TLS_ANOM_SSLV2_CLIENT_HELLO) | BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
}

static void test_tls_export(void **state)
{
    static const uint16_t strong[] = {0xc02b, 0xc02f, 0x002f, 0x0035, 0x000a};
    static const uint16_t exp[] = {0xc02b, 0x002f, 0x0064};
    static const uint16_t each[] = {0x0003, 0x0006, 0x0008, 0x000b, 0x000e, 0x0011, 0x0014,
                                    0x0017, 0x0019, 0x0026, 0x002b, 0x0060, 0x0065};
    uint8_t b[600];
    size_t n;

    (void)state;
    n = tls_hello(b, strong, 5, 32);
    assert_int_equal(client_found(b, n), 0);
    n = tls_hello(b, exp, 3, 0);
    assert_int_equal(client_found(b, n), BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    n = tls_hello(b, exp, 3, 32); /* past a session id */
    assert_int_equal(client_found(b, n), BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    for (size_t i = 0; i < sizeof(each) / sizeof(each[0]); i++) {
        n = tls_hello(b, &each[i], 1, 0);
        assert_int_equal(client_found(b, n), BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    }
    /* 0x0066 (DHE_DSS_WITH_RC4_128_SHA) follows the EXPORT1024 suites but is not one */
    n = tls_hello(b, (const uint16_t[]){0x0066}, 1, 0);
    assert_int_equal(client_found(b, n), 0);
}

static void test_tls_bounds(void **state)
{
    static const uint16_t exp[] = {0xc02b, 0x002f, 0x0003};
    uint8_t b[600];
    size_t n;

    (void)state;
    n = tls_hello(b, exp, 3, 16);
    /* every cut: the export suite counts only when all of it arrived */
    for (size_t cut = 0; cut <= n; cut++) {
        uint8_t *d = malloc(cut ? cut : 1); /* exact size: ASan sees any read past it */

        assert_non_null(d);
        memcpy(d, b, cut);
        uint32_t f = cut >= 6 ? client_found(d, cut) : 0;
        size_t suite_end = 5 + 4 + 2 + 32 + 1 + 16 + 2 + 3 * 2;

        assert_int_equal(f, cut >= suite_end ? BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED) : 0);
        free(d);
    }
    /* a record that ends before its cipher list says: the suites after it are not read */
    n = tls_hello(b, exp, 3, 0);
    b[3] = 0, b[4] = (uint8_t)(4 + 2 + 32 + 1 + 2 + 4); /* the record holds 2 suites */
    assert_int_equal(client_found(b, n), 0);
    /* a cipher list longer than the bytes: read as far as they go */
    n = tls_hello(b, exp, 3, 0);
    b[44] = 0x7f, b[45] = 0xff;
    assert_int_equal(client_found(b, n - 4), BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
}

static void test_sslv2(void **state)
{
    static const uint32_t strong[] = {0x00002f, 0x000035, 0x00000a, 0x0700c0, 0x010080};
    static const uint32_t rc4_40[] = {0x00002f, 0x020080};
    static const uint32_t rc2_40[] = {0x040080};
    static const uint32_t tls_40[] = {0x000039, 0x000014};
    uint8_t b[300];
    size_t n;

    (void)state;
    n = v2_hello(b, strong, 5);
    assert_int_equal(client_found(b, n), BIT(TLS_ANOM_SSLV2_CLIENT_HELLO));
    n = v2_hello(b, rc4_40, 2);
    assert_int_equal(client_found(b, n),
                     BIT(TLS_ANOM_SSLV2_CLIENT_HELLO) | BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    n = v2_hello(b, rc2_40, 1);
    assert_int_equal(client_found(b, n),
                     BIT(TLS_ANOM_SSLV2_CLIENT_HELLO) | BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    n = v2_hello(b, tls_40, 2); /* a TLS export suite in SSLv2's 3 bytes */
    assert_int_equal(client_found(b, n),
                     BIT(TLS_ANOM_SSLV2_CLIENT_HELLO) | BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED));
    /* cut inside the kinds: the framing still shows, the kind that did not arrive does not */
    n = v2_hello(b, rc4_40, 2);
    for (size_t cut = 5; cut < n; cut++) {
        uint8_t *d = malloc(cut);

        assert_non_null(d);
        memcpy(d, b, cut);
        assert_int_equal(client_found(d, cut),
                         BIT(TLS_ANOM_SSLV2_CLIENT_HELLO) |
                             (cut >= 11 + 6 ? BIT(TLS_ANOM_EXPORT_CIPHER_OFFERED) : 0));
        free(d);
    }
    /* a cipher specs length past the SSLv2 record: bounded by the record */
    n = v2_hello(b, strong, 5);
    b[5] = 0x40, b[6] = 0x00;
    memcpy(b + n, (const uint8_t[]){0x02, 0x00, 0x80}, 3); /* after the record */
    assert_int_equal(client_found(b, n + 3), BIT(TLS_ANOM_SSLV2_CLIENT_HELLO));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_export),
        cmocka_unit_test(test_tls_bounds),
        cmocka_unit_test(test_sslv2),
    };
    return cmocka_run_group_tests_name("tls_records", tests, NULL, NULL);
}
