/*
 * test_geoip.c - unit tests of sensor/geoip.c (cmocka).
 *
 * Three parts:
 *  - geoip_is_public() on IPv4 and IPv6 boundary cases of the IANA
 *    special-purpose ranges (no files needed);
 *  - lookups against the databases made by tests/tools/build-test-mmdb.pl in
 *    $FH_TESTDATA/geoip (default build/testdata/geoip): both country layouts,
 *    ASN, city, precedence, UTF-8 truncation, error messages, threads;
 *  - the MaxMind test databases in $FH_SHARED/mmdb (default ../shared/data,
 *    relative to the repo root, where `make test-unit` runs): every row of
 *    expected/geoip/mmdb-ground-truth.tsv about country.iso_code, ASN number,
 *    AS organisation or city.names.en, the derived-pcap table, and the broken
 *    files' error paths.
 * A part whose data is absent is skipped with a message saying why, except that
 * a test-data directory named explicitly by FH_TESTDATA must exist.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../../sensor/geoip.h"

#define PATH_LEN 1024

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    int family;
    uint8_t bytes[16];
} addr_t;

static addr_t parse_addr(const char *s)
{
    addr_t a;

    memset(&a, 0, sizeof(a));
    a.family = strchr(s, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(a.family, s, a.bytes) != 1)
        fail_msg("bad test address %s", s);
    return a;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void join(char *dst, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path too long: %s/%s", dir, name);
}

/* Directory of the test databases, or NULL (test skipped) when absent. */
static const char *testdata_dir(void)
{
    static char dir[PATH_LEN];
    const char *env = getenv("FH_TESTDATA");
    const char *base = env && *env ? env : "build/testdata";
    char probe[PATH_LEN];

    join(dir, sizeof(dir), base, "geoip");
    join(probe, sizeof(probe), dir, "test-asn.mmdb");
    if (is_file(probe))
        return dir;
    if (env && *env)
        fail_msg("FH_TESTDATA=%s but %s is missing: run `make testdata` or "
                 "`perl tests/tools/build-test-mmdb.pl %s`",
                 env, probe, dir);
    print_message("SKIP: %s not found; build it with `make testdata` "
                  "(or set FH_TESTDATA)\n",
                  probe);
    return NULL;
}

/* $FH_SHARED (default ../shared/data), or NULL (test skipped) when absent. */
static const char *shared_dir(void)
{
    const char *env = getenv("FH_SHARED");
    const char *dir = env && *env ? env : "../shared/data";
    char probe[PATH_LEN];

    join(probe, sizeof(probe), dir, "mmdb");
    if (is_dir(probe))
        return dir;
    print_message("SKIP: shared test data not found at %s (set FH_SHARED to the "
                  "shared/data directory)\n",
                  probe);
    return NULL;
}

static geoip *open_test(const char *country, const char *asn, const char *city)
{
    const char *dir = testdata_dir();
    char pc[PATH_LEN], pa[PATH_LEN], pt[PATH_LEN], err[512];
    geoip *g = NULL;

    if (!dir)
        return NULL;
    if (country)
        join(pc, sizeof(pc), dir, country);
    if (asn)
        join(pa, sizeof(pa), dir, asn);
    if (city)
        join(pt, sizeof(pt), dir, city);
    fh_err rc =
        geoip_open(&g, country ? pc : NULL, asn ? pa : NULL, city ? pt : NULL, err, sizeof(err));
    if (rc != FH_OK)
        fail_msg("geoip_open: %s", err);
    assert_non_null(g);
    return g;
}

static int lookup(geoip *g, const char *ip, geoip_result *res)
{
    addr_t a = parse_addr(ip);
    return geoip_lookup(g, a.family, a.bytes, res);
}

/* ---- geoip_is_public ---------------------------------------------------- */

typedef struct {
    const char *ip;
    bool public;
} pub_case;

static void check_public(const pub_case *cases, size_t n)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        addr_t a = parse_addr(cases[i].ip);
        bool got = geoip_is_public(a.family, a.bytes);
        if (got != cases[i].public) {
            print_error("geoip_is_public(%s) = %d, want %d\n", cases[i].ip, got, cases[i].public);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_public_v4(void **state)
{
    (void)state;
    static const pub_case cases[] = {
        {"1.1.1.1", true},          {"8.8.8.8", true},
        {"81.2.69.142", true},      {"1.0.0.0", true},
        {"0.0.0.0", false},         {"0.255.255.255", false},
        {"9.255.255.255", true},    {"10.0.0.0", false},
        {"10.255.255.255", false},  {"11.0.0.0", true},
        {"100.63.255.255", true},   {"100.64.0.0", false},
        {"100.127.255.255", false}, {"100.128.0.0", true},
        {"126.255.255.255", true},  {"127.0.0.1", false},
        {"127.255.255.255", false}, {"128.0.0.0", true},
        {"169.253.255.255", true},  {"169.254.0.1", false},
        {"169.254.255.255", false}, {"169.255.0.0", true},
        {"172.15.255.255", true},   {"172.16.0.0", false},
        {"172.31.255.255", false},  {"172.32.0.0", true},
        {"191.255.255.255", true},  {"192.0.0.0", false},
        {"192.0.0.8", false},       {"192.0.0.9", true}, /* PCP anycast */
        {"192.0.0.10", true},                            /* TURN anycast */
        {"192.0.0.11", false},      {"192.0.0.170", false},
        {"192.0.0.255", false},     {"192.0.1.0", true},
        {"192.0.2.0", false},       {"192.0.2.255", false},
        {"192.0.3.0", true},        {"192.31.196.1", true}, /* AS112 */
        {"192.52.193.1", true},                             /* AMT */
        {"192.88.98.255", true},    {"192.88.99.1", false},
        {"192.88.100.0", true},     {"192.167.255.255", true},
        {"192.168.0.0", false},     {"192.168.255.255", false},
        {"192.169.0.0", true},      {"198.17.255.255", true},
        {"198.18.0.0", false},      {"198.19.255.255", false},
        {"198.20.0.0", true},       {"198.51.99.255", true},
        {"198.51.100.7", false},    {"198.51.101.0", true},
        {"203.0.112.255", true},    {"203.0.113.9", false},
        {"203.0.114.0", true},      {"223.255.255.255", true},
        {"224.0.0.1", false},       {"239.255.255.250", false},
        {"240.0.0.1", false},       {"255.255.255.254", false},
        {"255.255.255.255", false},
    };
    check_public(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_public_v6(void **state)
{
    (void)state;
    static const pub_case cases[] = {
        {"2001:4860:4860::8888", true},
        {"2001:218::1", true}, /* MaxMind test DBs: JP */
        {"2001:2b8::1", true},
        {"2001:200::1", true}, /* just past 2001::/23 */
        {"2001:480:10::", true},
        {"2600:6000::1", true},
        {"2003::", true},
        {"2620:4f:8000::1", true}, /* AS112 direct delegation */
        {"abcd:1000::", true},     /* not special-purpose (in the City test DB) */
        {"::", false},
        {"::1", false},
        {"::2", false},
        {"::1.2.3.4", false}, /* deprecated IPv4-compatible */
        {"::1:0:0:0", true},
        {"::ffff:8.8.8.8", true},
        {"::ffff:10.0.0.1", false},
        {"::ffff:127.0.0.1", false},
        {"::ffff:192.168.1.1", false},
        {"::ffff:100.64.0.1", false},
        {"64:ff9b::808:808", true},    /* NAT64 of 8.8.8.8 */
        {"64:ff9b::a00:1", false},     /* NAT64 of 10.0.0.1 */
        {"64:ff9b:1::808:808", false}, /* local-use NAT64 */
        {"100::1", false},
        {"100:0:0:1::1", false},
        {"100:0:0:2::1", true},
        {"2001::", false}, /* Teredo */
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", false},
        {"2001:1::1", true}, /* PCP anycast */
        {"2001:1::2", true}, /* TURN anycast */
        {"2001:1::3", true}, /* DNS-SD SRP */
        {"2001:1::4", false},
        {"2001:2::1", false}, /* benchmarking */
        {"2001:3::1", true},  /* AMT */
        {"2001:4:112::1", true},
        {"2001:4:113::1", false},
        {"2001:10::1", false}, /* deprecated ORCHID */
        {"2001:20::1", true},  /* ORCHIDv2 */
        {"2001:2f:ffff::1", true},
        {"2001:30::1", true}, /* DRIP */
        {"2001:40::1", false},
        {"2001:1ff:ffff::1", false},
        {"2001:db7:ffff::1", true},
        {"2001:db8::1", false},
        {"2001:db8:ffff:ffff::1", false},
        {"2001:db9::1", true},
        {"2002:808:808::1", true},   /* 6to4 of 8.8.8.8 */
        {"2002:a00:1::1", false},    /* 6to4 of 10.0.0.1 */
        {"2002:c000:201::1", false}, /* 6to4 of 192.0.2.1 */
        {"3ffe:ffff::1", true},
        {"3fff::1", false},
        {"3fff:fff:ffff::1", false},
        {"3fff:1000::1", true},
        {"5eff::1", true},
        {"5f00::1", false},
        {"5f00:ffff::1", false},
        {"5f01::1", true},
        {"fbff::1", true},
        {"fc00::1", false},
        {"fd12:3456::1", false},
        {"fe7f::1", true},
        {"fe80::1", false},
        {"febf::1", false},
        {"fec0::1", false},
        {"ff02::1", false},
        {"ff0e::fb", false},
    };
    check_public(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_public_bad_args(void **state)
{
    (void)state;
    uint8_t a[16] = {8, 8, 8, 8};
    assert_false(geoip_is_public(AF_UNIX, a));
    assert_false(geoip_is_public(AF_INET, NULL));
    assert_false(geoip_is_public(AF_INET6, NULL));
}

/* ---- lookups in the generated test databases ----------------------------- */

/* The table in tests/tools/build-test-mmdb.pl (and OUTDIR/expected.json):
 * the result with a country file, test-asn and test-city open, and the
 * country/city with only test-city open. */
typedef struct {
    const char *ip;
    const char *country;
    uint32_t asn;
    const char *as_org;
    const char *city;
    const char *city_db_country;
} probe;

#define YANDEX_63 "ЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНДЕКСЯНД"

static const probe probes[] = {
    {"1.2.3.4", "CN", 4134, "CHINANET-BACKBONE", "Beijing", "CN"},
    {"8.8.8.8", "US", 15169, "GOOGLE", "Mountain View", "US"},
    {"2001:250::1", "CN", 4538, "ERX-CERNET-BKB China Education and Research Network Center",
     "Beijing", "CN"},
    {"202.97.1.1", "CN", 4809, "中国电信", "Shanghai", "CN"},
    {"81.2.69.142", "GB", 20712, "Andrews & Arnold \"AAISP\" \\ Ltd", "London", "GB"},
    {"89.160.20.112", "SE", 29518, "Bredband2 AB", "Linköping", "SE"},
    {"9.9.9.9", "CH", 0, "", "", "CH"},
    {"2400:cb00::1", "", 13335, "CLOUDFLARENET", "", ""},
    {"104.16.1.1", "US", 13335, "CLOUDFLARENET", "Toronto", "CA"},
    {"77.88.8.8", "RU", 13238, YANDEX_63, "Moscow", "RU"},
    {"::ffff:1.2.3.4", "CN", 4134, "CHINANET-BACKBONE", "Beijing", "CN"},
    {"64:ff9b::808:808", "US", 15169, "GOOGLE", "Mountain View", "US"},
    {"2002:102:304::1", "CN", 4134, "CHINANET-BACKBONE", "Beijing", "CN"},
    /* nothing: public but in no database, or never looked up */
    {"1.2.4.1", "", 0, "", "", ""},
    {"2a00:1450:4001:803::1017", "", 0, "", "", ""},
    {"10.1.2.3", "", 0, "", "", ""},    /* stored in every test DB on purpose */
    {"2001:db8::1", "", 0, "", "", ""}, /* likewise */
    {"192.168.1.1", "", 0, "", "", ""},
    {"::ffff:10.1.2.3", "", 0, "", "", ""},
    {"2001::1", "", 0, "", "", ""},
};

static void check_probes_full(const char *country_file)
{
    geoip *g = open_test(country_file, "test-asn.mmdb", "test-city.mmdb");
    if (!g)
        skip();
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const probe *p = &probes[i];
        geoip_result r;
        int rc = lookup(g, p->ip, &r);
        bool any = p->country[0] || p->asn || p->as_org[0] || p->city[0];
        if (rc != (any ? 1 : 0) || strcmp(r.country, p->country) != 0 || r.asn != p->asn ||
            strcmp(r.as_org, p->as_org) != 0 || strcmp(r.city, p->city) != 0)
            print_error("%s: %s -> %d %s AS%u \"%s\" \"%s\"\n", country_file, p->ip, rc, r.country,
                        r.asn, r.as_org, r.city);
        assert_int_equal(rc, any ? 1 : 0);
        assert_string_equal(r.country, p->country);
        assert_int_equal(r.asn, p->asn);
        assert_string_equal(r.as_org, p->as_org);
        assert_string_equal(r.city, p->city);
    }
    geoip_close(g);
}

static void test_lookup_maxmind_layout(void **state)
{
    (void)state;
    check_probes_full("test-country.mmdb");
}

static void test_lookup_ipl_layout(void **state)
{
    (void)state;
    check_probes_full("test-country-ipl.mmdb");
}

static void test_lookup_city_only(void **state)
{
    (void)state;
    geoip *g = open_test(NULL, NULL, "test-city.mmdb");
    if (!g)
        skip();
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const probe *p = &probes[i];
        geoip_result r;
        int rc = lookup(g, p->ip, &r);
        assert_int_equal(rc, (p->city_db_country[0] || p->city[0]) ? 1 : 0);
        assert_string_equal(r.country, p->city_db_country);
        assert_string_equal(r.city, p->city);
        assert_int_equal(r.asn, 0);
        assert_string_equal(r.as_org, "");
    }
    geoip_close(g);
}

static void test_lookup_country_wins_over_city(void **state)
{
    (void)state;
    geoip *g = open_test("test-country.mmdb", NULL, "test-city.mmdb");
    geoip_result r;
    if (!g)
        skip();
    assert_int_equal(lookup(g, "104.16.1.1", &r), 1);
    assert_string_equal(r.country, "US"); /* the City DB says CA */
    assert_string_equal(r.city, "Toronto");
    /* a country file without the network: no country even if City has one */
    assert_int_equal(lookup(g, "9.9.9.9", &r), 1);
    assert_string_equal(r.country, "CH");
    assert_string_equal(r.city, "");
    geoip_close(g);
}

static void test_lookup_asn_only(void **state)
{
    (void)state;
    geoip *g = open_test(NULL, "test-asn.mmdb", NULL);
    geoip_result r;
    if (!g)
        skip();
    assert_int_equal(lookup(g, "202.97.1.1", &r), 1);
    assert_int_equal(r.asn, 4809);
    assert_string_equal(r.as_org, "中国电信");
    assert_memory_equal(r.as_org, "\xe4\xb8\xad\xe5\x9b\xbd\xe7\x94\xb5\xe4\xbf\xa1", 13);
    assert_string_equal(r.country, "");
    assert_string_equal(r.city, "");
    assert_int_equal(lookup(g, "81.2.69.142", &r), 1);
    assert_string_equal(r.as_org, "Andrews & Arnold \"AAISP\" \\ Ltd");
    assert_int_equal(lookup(g, "9.9.9.9", &r), 0);
    geoip_close(g);
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int more;
        if (*p < 0x80)
            more = 0;
        else if ((*p & 0xE0) == 0xC0)
            more = 1;
        else if ((*p & 0xF0) == 0xE0)
            more = 2;
        else if ((*p & 0xF8) == 0xF0)
            more = 3;
        else
            return false;
        p++;
        for (int i = 0; i < more; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

static void test_lookup_long_org_truncated(void **state)
{
    (void)state;
    geoip *g = open_test(NULL, "test-asn.mmdb", NULL);
    geoip_result r;
    if (!g)
        skip();
    /* 204 bytes of 2-byte characters: 127 would split one, so 126 are kept */
    assert_int_equal(lookup(g, "77.88.8.8", &r), 1);
    assert_int_equal(strlen(r.as_org), 126);
    assert_true(valid_utf8(r.as_org));
    assert_string_equal(r.as_org, YANDEX_63);
    geoip_close(g);
}

static void test_lookup_empty_and_bad_args(void **state)
{
    (void)state;
    geoip *g = NULL;
    geoip_result r;
    char err[64] = "x";
    addr_t a = parse_addr("8.8.8.8");

    assert_int_equal(geoip_open(&g, NULL, NULL, NULL, err, sizeof(err)), FH_OK);
    assert_non_null(g);
    assert_string_equal(err, "");
    memset(&r, 'x', sizeof(r));
    assert_int_equal(geoip_lookup(g, a.family, a.bytes, &r), 0);
    assert_string_equal(r.country, "");
    assert_string_equal(r.as_org, "");
    assert_string_equal(r.city, "");
    assert_int_equal(r.asn, 0);
    assert_int_equal(geoip_lookup(g, AF_UNIX, a.bytes, &r), 0);
    assert_int_equal(geoip_lookup(g, AF_INET, NULL, &r), 0);
    assert_int_equal(geoip_lookup(g, AF_INET, a.bytes, NULL), -1);
    geoip_close(g);
    memset(&r, 'x', sizeof(r));
    assert_int_equal(geoip_lookup(NULL, a.family, a.bytes, &r), 0);
    assert_string_equal(r.country, "");
    geoip_close(NULL);
    assert_int_equal(geoip_open(NULL, NULL, NULL, NULL, NULL, 0), FH_ERR_ARG);
}

static void test_open_missing_file(void **state)
{
    (void)state;
    const char *path = "/nonexistent-fenghuo/country.mmdb";
    geoip *g = (geoip *)(uintptr_t)1; /* must be reset to NULL */
    char err[512];

    assert_int_equal(geoip_open(&g, path, NULL, NULL, err, sizeof(err)), FH_ERR_NOTFOUND);
    assert_null(g);
    assert_string_equal(err, "open(\"/nonexistent-fenghuo/country.mmdb\") failed: Error opening "
                             "the specified MaxMind DB file (No such file or directory)");

    /* truncated into a small buffer, still terminated */
    char small[16];
    assert_int_equal(geoip_open(&g, NULL, NULL, path, small, sizeof(small)), FH_ERR_NOTFOUND);
    assert_string_equal(small, "open(\"/nonexist");
    assert_int_equal(geoip_open(&g, path, NULL, NULL, NULL, 0), FH_ERR_NOTFOUND);
    assert_null(g);
}

static void test_open_partial_failure_cleans_up(void **state)
{
    (void)state;
    const char *dir = testdata_dir();
    char pc[PATH_LEN], err[512];
    geoip *g = NULL;
    if (!dir)
        skip();
    join(pc, sizeof(pc), dir, "test-country.mmdb");
    /* country opens, then ASN fails: the country DB must be closed (ASan) */
    assert_int_equal(geoip_open(&g, pc, "/nonexistent-fenghuo/asn.mmdb", NULL, err, sizeof(err)),
                     FH_ERR_NOTFOUND);
    assert_null(g);
    assert_non_null(strstr(err, "open(\"/nonexistent-fenghuo/asn.mmdb\") failed: "));
    /* a file that is not a MaxMind DB */
    join(pc, sizeof(pc), dir, "expected.json");
    assert_int_equal(geoip_open(&g, NULL, NULL, pc, err, sizeof(err)), FH_ERR_GEOIP);
    assert_null(g);
    assert_non_null(strstr(err, "failed: The MaxMind DB file contains invalid metadata"));
}

/* Many threads share one handle; libmaxminddb only reads the mapping. */
typedef struct {
    geoip *g;
    int mismatches;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *t = p;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
            addr_t a = parse_addr(probes[i].ip);
            geoip_result r;
            int rc = geoip_lookup(t->g, a.family, a.bytes, &r);
            if (rc < 0 || strcmp(r.country, probes[i].country) != 0 || r.asn != probes[i].asn ||
                strcmp(r.as_org, probes[i].as_org) != 0 || strcmp(r.city, probes[i].city) != 0)
                t->mismatches++;
        }
    }
    return NULL;
}

static void test_lookup_threads(void **state)
{
    (void)state;
    enum { NTHREADS = 4 };
    pthread_t th[NTHREADS];
    thread_arg args[NTHREADS];
    geoip *g = open_test("test-country.mmdb", "test-asn.mmdb", "test-city.mmdb");
    if (!g)
        skip();
    for (int i = 0; i < NTHREADS; i++) {
        args[i].g = g;
        args[i].mismatches = 0;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].mismatches, 0);
    }
    geoip_close(g);
}

/* ---- MaxMind test databases (shared data) -------------------------------- */

static geoip *open_shared(const char *shared, const char *country, const char *asn,
                          const char *city)
{
    char pc[PATH_LEN], pa[PATH_LEN], pt[PATH_LEN], err[512];
    geoip *g = NULL;

    if (country)
        join(pc, sizeof(pc), shared, country);
    if (asn)
        join(pa, sizeof(pa), shared, asn);
    if (city)
        join(pt, sizeof(pt), shared, city);
    if (geoip_open(&g, country ? pc : NULL, asn ? pa : NULL, city ? pt : NULL, err, sizeof(err)) !=
        FH_OK)
        fail_msg("geoip_open: %s", err);
    return g;
}

/* Splits line at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;

    line[strcspn(line, "\r\n")] = '\0';
    while (n < max) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

/* The value as geoip_result keeps it: at most cap-1 bytes, cut before a
 * UTF-8 continuation byte. */
static void clip(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void test_shared_ground_truth(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    char path[PATH_LEN];
    if (!shared)
        skip();
    join(path, sizeof(path), shared, "expected/geoip/mmdb-ground-truth.tsv");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));

    /* City alone (so it also supplies the country), Country alone, ASN alone */
    geoip *city = open_shared(shared, NULL, NULL, "mmdb/GeoIP2-City-Test.mmdb");
    geoip *country = open_shared(shared, "mmdb/GeoIP2-Country-Test.mmdb", NULL, NULL);
    geoip *asn = open_shared(shared, NULL, "mmdb/GeoLite2-ASN-Test.mmdb", NULL);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rows = 0, checked = 0, other = 0, not_public = 0, bad = 0;
    int n_cc = 0, n_asn = 0, n_org = 0, n_city = 0;

    while (getline(&line, &cap, f) >= 0) {
        char *fld[6];
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        rows++;
        if (split_tabs(line, fld, 6) != 5)
            fail_msg("%s:%d: expected 5 tab-separated fields", path, lineno);
        const char *db = fld[0], *ip = fld[2], *field = fld[3], *want = fld[4];
        geoip *g = NULL;
        if (strcmp(db, "GeoIP2-City-Test.mmdb") == 0)
            g = city;
        else if (strcmp(db, "GeoIP2-Country-Test.mmdb") == 0)
            g = country;
        else if (strcmp(db, "GeoLite2-ASN-Test.mmdb") == 0)
            g = asn;
        bool relevant = strcmp(field, "country.iso_code") == 0 ||
                        strcmp(field, "autonomous_system_number") == 0 ||
                        strcmp(field, "autonomous_system_organization") == 0 ||
                        strcmp(field, "city.names.en") == 0;
        if (!g || !relevant) {
            other++; /* e.g. the Anonymous-IP flags: not something geoip reads */
            continue;
        }
        addr_t a = parse_addr(ip);
        if (!geoip_is_public(a.family, a.bytes)) {
            print_message("  not checked (address not public): %s %s %s\n", db, ip, field);
            not_public++;
            continue;
        }
        geoip_result r;
        int rc = geoip_lookup(g, a.family, a.bytes, &r);
        char got[160], exp[160];
        if (strcmp(field, "country.iso_code") == 0) {
            snprintf(got, sizeof(got), "%s", r.country);
            clip(exp, sizeof(r.country), want);
            n_cc++;
        } else if (strcmp(field, "autonomous_system_number") == 0) {
            snprintf(got, sizeof(got), "%u", r.asn);
            snprintf(exp, sizeof(exp), "%s", want);
            n_asn++;
        } else if (strcmp(field, "autonomous_system_organization") == 0) {
            snprintf(got, sizeof(got), "%s", r.as_org);
            clip(exp, sizeof(r.as_org), want);
            n_org++;
        } else {
            snprintf(got, sizeof(got), "%s", r.city);
            clip(exp, sizeof(r.city), want);
            n_city++;
        }
        checked++;
        if (rc != 1 || strcmp(got, exp) != 0) {
            print_error("%s:%d: %s %s %s: got rc=%d \"%s\", want \"%s\"\n", path, lineno, db, ip,
                        field, rc, got, exp);
            bad++;
        }
    }
    free(line);
    fclose(f);
    geoip_close(city);
    geoip_close(country);
    geoip_close(asn);
    print_message("  ground truth: %d rows; %d checked (country %d, ASN %d, AS org %d, city %d), "
                  "%d mismatches, %d not public, %d about other fields/databases\n",
                  rows, checked, n_cc, n_asn, n_org, n_city, bad, not_public, other);
    assert_int_equal(bad, 0);
    assert_int_equal(checked, 1842);
}

static void test_shared_derived_pcap_table(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    char path[PATH_LEN];
    if (!shared)
        skip();
    join(path, sizeof(path), shared, "expected/geoip/derived-pcap-ip-enrichment.tsv");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    /* what the sensor would be configured with: Country + ASN + City */
    geoip *all = open_shared(shared, "mmdb/GeoIP2-Country-Test.mmdb", "mmdb/GeoLite2-ASN-Test.mmdb",
                             "mmdb/GeoIP2-City-Test.mmdb");
    geoip *city = open_shared(shared, NULL, NULL, "mmdb/GeoIP2-City-Test.mmdb");
    char *line = NULL;
    size_t cap = 0;
    int rows = 0;

    while (getline(&line, &cap, f) >= 0) {
        char *fld[10];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        int n = split_tabs(line, fld, 10);
        assert_true(n >= 8);
        /* pcap ip role city_cc city_name country_cc asn as_org [anon flags] */
        geoip_result r, rc_city;
        int rc = lookup(all, fld[1], &r);
        int rc2 = lookup(city, fld[1], &rc_city);
        bool any = fld[5][0] || fld[6][0] || fld[7][0] || fld[4][0];
        assert_int_equal(rc, any ? 1 : 0);
        assert_string_equal(r.country, fld[5]);
        assert_string_equal(r.city, fld[4]);
        assert_int_equal(r.asn, (uint32_t)strtoul(fld[6], NULL, 10));
        assert_string_equal(r.as_org, fld[7]);
        assert_int_equal(rc2, (fld[3][0] || fld[4][0]) ? 1 : 0);
        assert_string_equal(rc_city.country, fld[3]);
        rows++;
    }
    free(line);
    fclose(f);
    geoip_close(all);
    geoip_close(city);
    print_message("  derived-pcap table: %d addresses checked\n", rows);
    assert_int_equal(rows, 7);
}

static void test_shared_invalid_node_count(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    char path[PATH_LEN], want[PATH_LEN + 128], err[PATH_LEN + 128];
    geoip *g = NULL;
    if (!shared)
        skip();
    join(path, sizeof(path), shared, "mmdb/GeoIP2-City-Test-Invalid-Node-Count.mmdb");
    assert_int_equal(geoip_open(&g, NULL, NULL, path, err, sizeof(err)), FH_ERR_GEOIP);
    assert_null(g);
    snprintf(want, sizeof(want),
             "open(\"%s\") failed: The MaxMind DB file contains invalid metadata", path);
    assert_string_equal(err, want);
}

static void test_shared_broken_pointers(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    const char *db = "mmdb/MaxMind-DB-test-broken-pointers-24.mmdb";
    if (!shared)
        skip();
    /* in each slot: the lookup of 1.1.1.16 reports "bad data" -> -1, empty result */
    geoip *gs[3] = {
        open_shared(shared, db, NULL, NULL),
        open_shared(shared, NULL, db, NULL),
        open_shared(shared, NULL, NULL, db),
    };
    for (int i = 0; i < 3; i++) {
        geoip_result r;
        memset(&r, 'x', sizeof(r));
        assert_int_equal(lookup(gs[i], "1.1.1.16", &r), -1);
        assert_string_equal(r.country, "");
        assert_string_equal(r.as_org, "");
        assert_string_equal(r.city, "");
        assert_int_equal(r.asn, 0);
        geoip_close(gs[i]);
    }
}

static void test_shared_ipv4_only_db(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    if (!shared)
        skip();
    /* an IPv4-only file has no IPv6 data: not found, not an error */
    geoip *g = open_shared(shared, "mmdb/MaxMind-DB-test-ipv4-24.mmdb", NULL, NULL);
    geoip_result r;
    assert_int_equal(lookup(g, "2001:250::1", &r), 0);
    /* its records have no country: found nothing */
    assert_int_equal(lookup(g, "1.1.1.1", &r), 0);
    /* an IPv4-mapped address is looked up as IPv4 */
    assert_int_equal(lookup(g, "::ffff:1.1.1.1", &r), 0);
    geoip_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_v4),
        cmocka_unit_test(test_public_v6),
        cmocka_unit_test(test_public_bad_args),
        cmocka_unit_test(test_lookup_maxmind_layout),
        cmocka_unit_test(test_lookup_ipl_layout),
        cmocka_unit_test(test_lookup_city_only),
        cmocka_unit_test(test_lookup_country_wins_over_city),
        cmocka_unit_test(test_lookup_asn_only),
        cmocka_unit_test(test_lookup_long_org_truncated),
        cmocka_unit_test(test_lookup_empty_and_bad_args),
        cmocka_unit_test(test_open_missing_file),
        cmocka_unit_test(test_open_partial_failure_cleans_up),
        cmocka_unit_test(test_lookup_threads),
        cmocka_unit_test(test_shared_ground_truth),
        cmocka_unit_test(test_shared_derived_pcap_table),
        cmocka_unit_test(test_shared_invalid_node_count),
        cmocka_unit_test(test_shared_broken_pointers),
        cmocka_unit_test(test_shared_ipv4_only_db),
    };
    return cmocka_run_group_tests_name("geoip", tests, NULL, NULL);
}
