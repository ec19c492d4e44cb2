/*
 * test_community_id.c - Community ID v1 against the specification's published
 * baseline (corelight/community-id-spec, baseline/baseline_deflt.json and
 * baseline_seed1.json): TCP, UDP, SCTP, ICMP, ICMPv6 and a protocol without
 * ports (RSVP), IPv4 and IPv6, both directions, seeds 0 and 1.
 *
 * For ICMP the baseline lists the ports after the type mapping; type and code
 * are passed as the sensor does (code is ignored for two-way types).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/community_id.h"

typedef struct {
    int seed, version;
    const char *saddr, *daddr;
    int proto, sport, dport;
    const char *expect;
} cid_vector;

static const cid_vector vectors[] = {
    {0, 6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 135, 136,
     "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {0, 6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 136, 135,
     "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {0, 6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 135, 136,
     "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {0, 6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 136, 135,
     "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {0, 6, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 3, 0,
     "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="},
    {0, 6, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 1, 4,
     "1:hLZd0XGWojozrvxqE0dWB1iM6R0="},
    {0, 6, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 58, 128, 129,
     "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {0, 6, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 129, 128,
     "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {0, 6, "fe80::200:86ff:fe05:80da", "ff02::2", 58, 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="},
    {0, 6, "fe80::260:97ff:fe07:69ea", "ff02::1", 58, 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00="},
    {0, 4, "192.168.0.89", "192.168.0.1", 1, 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {0, 4, "192.168.0.1", "192.168.0.89", 1, 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {0, 4, "10.0.0.1", "10.0.0.2", 1, 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="},
    {0, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6, 63943, 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {0, 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 6, 25, 63943,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {0, 4, "192.168.170.8", "192.168.170.56", 132, 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {0, 4, "192.168.170.56", "192.168.170.8", 132, 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {0, 4, "128.232.110.120", "66.35.250.204", 6, 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {0, 4, "66.35.250.204", "128.232.110.120", 6, 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {0, 4, "192.168.1.52", "8.8.8.8", 17, 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {0, 4, "8.8.8.8", "192.168.1.52", 17, 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {0, 4, "10.1.12.1", "10.1.12.2", 46, 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {0, 4, "10.1.12.2", "10.1.12.1", 46, 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {1, 6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 135, 136,
     "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
    {1, 6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 136, 135,
     "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="},
    {1, 6, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 135, 136,
     "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
    {1, 6, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 136, 135,
     "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="},
    {1, 6, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 3, 0,
     "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="},
    {1, 6, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 1, 4,
     "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="},
    {1, 6, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 58, 128, 129,
     "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
    {1, 6, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 58, 129, 128,
     "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="},
    {1, 6, "fe80::200:86ff:fe05:80da", "ff02::2", 58, 133, 134, "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="},
    {1, 6, "fe80::260:97ff:fe07:69ea", "ff02::1", 58, 134, 133, "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="},
    {1, 4, "192.168.0.89", "192.168.0.1", 1, 8, 0, "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
    {1, 4, "192.168.0.1", "192.168.0.89", 1, 0, 8, "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
    {1, 4, "10.0.0.1", "10.0.0.2", 1, 11, 0, "1:XjUibYHaafLQ3pxQeiMI8g25q20="},
    {1, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6, 63943, 25,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {1, 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 6, 25, 63943,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {1, 4, "192.168.170.8", "192.168.170.56", 132, 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {1, 4, "192.168.170.56", "192.168.170.8", 132, 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {1, 4, "128.232.110.120", "66.35.250.204", 6, 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {1, 4, "66.35.250.204", "128.232.110.120", 6, 80, 34855, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {1, 4, "192.168.1.52", "8.8.8.8", 17, 54585, 53, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {1, 4, "8.8.8.8", "192.168.1.52", 17, 53, 54585, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {1, 4, "10.1.12.1", "10.1.12.2", 46, 0, 0, "1:rYir8gphR31noO9iDRQmF/BteEI="},
    {1, 4, "10.1.12.2", "10.1.12.1", 46, 0, 0, "1:rYir8gphR31noO9iDRQmF/BteEI="},
};

static void test_baseline_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const cid_vector *v = &vectors[i];
        uint8_t s[16] = {0}, d[16] = {0};
        char out[COMMUNITY_ID_LEN];
        int af = v->version == 4 ? AF_INET : AF_INET6;

        assert_int_equal(inet_pton(af, v->saddr, s), 1);
        assert_int_equal(inet_pton(af, v->daddr, d), 1);
        community_id_v1((uint16_t)v->seed, v->version, s, d, (uint8_t)v->proto, (uint16_t)v->sport,
                        (uint16_t)v->dport, out);
        if (strcmp(out, v->expect) != 0)
            fail_msg("vector %zu (%s -> %s proto %d %d/%d seed %d): got %s, want %s", i, v->saddr,
                     v->daddr, v->proto, v->sport, v->dport, v->seed, out, v->expect);
    }
}

/* The spec README's worked example, and symmetry of both directions. */
static void test_symmetric(void **state)
{
    uint8_t a[4], b[4];
    char x[COMMUNITY_ID_LEN], y[COMMUNITY_ID_LEN];

    (void)state;
    inet_pton(AF_INET, "128.232.110.120", a);
    inet_pton(AF_INET, "66.35.250.204", b);
    community_id_v1(0, 4, a, b, 6, 34855, 80, x);
    community_id_v1(0, 4, b, a, 6, 80, 34855, y);
    assert_string_equal(x, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_string_equal(x, y);
    assert_int_equal(strlen(x), COMMUNITY_ID_LEN - 1);
}

/* ICMP echo request and reply hash alike; an unreachable (one-way) does not swap. */
static void test_icmp_mapping(void **state)
{
    uint8_t a[4], b[4];
    char req[COMMUNITY_ID_LEN], rep[COMMUNITY_ID_LEN], u1[COMMUNITY_ID_LEN], u2[COMMUNITY_ID_LEN];

    (void)state;
    inet_pton(AF_INET, "192.168.0.89", a);
    inet_pton(AF_INET, "192.168.0.1", b);
    community_id_v1(0, 4, a, b, 1, 8, 0, req);
    community_id_v1(0, 4, b, a, 1, 0, 0, rep);
    assert_string_equal(req, rep);
    community_id_v1(0, 4, a, b, 1, 3, 1, u1);
    community_id_v1(0, 4, b, a, 1, 3, 1, u2);
    assert_string_not_equal(u1, u2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline_vectors),
        cmocka_unit_test(test_symmetric),
        cmocka_unit_test(test_icmp_mapping),
    };
    return cmocka_run_group_tests_name("community_id", tests, NULL, NULL);
}
