/*
 * test_assets.c - the asset inventory: loading rules/assets.example.yaml, an
 * exact message (file, line, reason) for each mistake, longest-prefix match
 * for IPv4 and IPv6 (checked against a naive scan on random prefixes), the
 * public-address test, enrichment of a hand-built slot array, the zone matrix
 * and placeholders. (The lookup rate is measured by bench/micro.c.)
 *
 * Run from the repository root (make test-unit does): it reads
 * rules/assets.example.yaml.
 */
#include <setjmp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../common/fh_addr.h"
#include "../../../correlator/assets.h"

#define EXAMPLE "rules/assets.example.yaml"

static char path[64];

static const char *write_yaml(const char *text)
{
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/fh-test-assets-%d.yaml", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static assets *load_text(const char *yaml)
{
    assets *a = NULL;
    char err[512] = "";

    write_yaml(yaml);
    if (assets_load(&a, path, err, sizeof(err)) != FH_OK)
        fail_msg("load failed: %s", err);
    unlink(path);
    return a;
}

static void expect_error(const char *yaml, const char *want_suffix)
{
    assets *a = (assets *)1;
    char err[512] = "", want[512];

    write_yaml(yaml);
    assert_int_not_equal(assets_load(&a, path, err, sizeof(err)), FH_OK);
    assert_null(a);
    snprintf(want, sizeof(want), "%s:%s", path, want_suffix);
    if (strcmp(err, want) != 0)
        fail_msg("error was  '%s'\nexpected   '%s'", err, want);
    unlink(path);
}

static assets *load_example(void)
{
    assets *a = NULL;
    char err[512] = "";

    if (assets_load(&a, EXAMPLE, err, sizeof(err)) != FH_OK)
        fail_msg("%s", err);
    return a;
}

static const asset_info *look(const assets *a, const char *ip)
{
    return assets_lookup_str(a, ip, strlen(ip));
}

/* ---- the example inventory --------------------------------------------------- */

static void test_example(void **state)
{
    assets *a = load_example();
    const asset_info *i;

    (void)state;
    i = look(a, "10.10.3.4");
    assert_non_null(i);
    assert_string_equal(i->segment, "dmz-web");
    assert_string_equal(i->zone, "dmz");
    assert_string_equal(i->department, "大数据局");
    assert_string_equal(i->criticality, "high");
    assert_null(i->name);
    assert_null(i->tenant);
    /* nested segment: longest prefix */
    i = look(a, "10.10.8.200");
    assert_string_equal(i->segment, "dmz-api-gateway");
    assert_string_equal(i->department, "市政务服务管理办公室");
    assert_string_equal(i->criticality, "critical");
    /* host inside a segment */
    i = look(a, "10.10.1.10");
    assert_string_equal(i->name, "政务服务网门户-web01");
    assert_string_equal(i->segment, "dmz-web");
    assert_string_equal(i->criticality, "critical");
    i = look(a, "10.30.5.10");
    assert_string_equal(i->name, "社保核心库-db01");
    assert_string_equal(i->department, "市人力资源和社会保障局");
    assert_string_equal(i->zone, "data");
    /* IPv4-mapped IPv6 is looked up as IPv4 */
    i = look(a, "::ffff:10.30.5.10");
    assert_string_equal(i->name, "社保核心库-db01");
    i = look(a, "10.20.8.77");
    assert_string_equal(i->segment, "biz-rsj");
    assert_string_equal(i->tenant, "rsj");
    assert_string_equal(look(a, "10.20.9.1")->segment, "biz-rsj");
    assert_string_equal(look(a, "10.20.10.1")->segment, "biz-common");
    assert_string_equal(look(a, "10.30.70.1")->segment, "data-czj");
    assert_string_equal(look(a, "10.99.0.255")->zone, "management");
    assert_null(look(a, "10.99.1.0"));
    assert_string_equal(look(a, "172.16.255.255")->zone, "office");
    assert_null(look(a, "172.17.0.1"));
    assert_null(look(a, "8.8.8.8"));
    assert_string_equal(look(a, "2408:8000:10:ffff::1")->segment, "dmz-web");
    assert_null(look(a, "2408:8000:11::1"));
    assert_string_equal(look(a, "fd00:30:1::5")->zone, "data");
    assert_null(look(a, "not-an-ip"));
    assert_null(look(a, "10.10.1"));
    assets_free(a);
}

static void test_example_placeholders(void **state)
{
    assets *a = load_example();
    const char **v;
    size_t n;

    (void)state;
    assert_int_equal(assets_placeholder(a, "allowed_countries", &v, &n), FH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "CN");
    assert_int_equal(assets_placeholder(a, "management_networks", &v, &n), FH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "10.99.0.0/24");
    assert_int_equal(assets_placeholder(a, "approved_resolvers", &v, &n), FH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[2], "114.114.114.114");
    assert_int_equal(assets_placeholder(a, "approved_vpns", &v, &n), FH_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[1], "61.150.12.0/28");
    assert_int_equal(assets_placeholder(a, "zone.data", &v, &n), FH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "10.30.0.0/16");
    assert_string_equal(v[1], "fd00:30::/32");
    assert_string_equal(v[2], "10.30.64.0/20");
    assert_null(v[3]); /* NULL-terminated as well */
    assert_int_equal(assets_placeholder(a, "zone.management", &v, &n), FH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(assets_placeholder(a, "egress.dmz-web", &v, &n), FH_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "114.114.114.114/32");
    assert_int_equal(assets_placeholder(a, "mail_servers", &v, &n), FH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(assets_placeholder(a, "threat_intel_ips", &v, &n), FH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(assets_placeholder(a, "no_such_list", &v, &n), FH_ERR_NOTFOUND);
    assert_int_equal(assets_placeholder(a, "egress.biz-common", &v, &n), FH_ERR_NOTFOUND);
    assets_free(a);
}

/* ---- errors -------------------------------------------------------------------- */

#define HEAD "zones: [dmz, data]\n"

static void test_errors(void **state)
{
    assets *a = NULL;
    char err[512];

    (void)state;
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    department: 大数据局\n"
                      "    cidrs: [10.10.0/16]\n",
                 "6: segment 'dmz-web': invalid CIDR '10.10.0/16'");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    department: 大数据局\n"
                      "    cidrs:\n"
                      "      - 10.10.0.0/16\n"
                      "      - 10.10.0.0/33\n",
                 "8: segment 'dmz-web': invalid CIDR '10.10.0.0/33'");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    department: 大数据局\n"
                      "    cidrs: [10.10.1.0/16]\n",
                 "6: segment 'dmz-web': CIDR '10.10.1.0/16' has host bits set");
    expect_error(HEAD "segments:\n"
                      "  - name: v6\n"
                      "    zone: dmz\n"
                      "    department: x\n"
                      "    cidrs: ['2001:db8::/129']\n",
                 "6: segment 'v6': invalid CIDR '2001:db8::/129'");
    /* unknown keys, at every level */
    expect_error(HEAD "segmnets: []\n", "2: unknown key 'segmnets'");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    zonee: dmz\n",
                 "5: segment 'dmz-web': unknown key 'zonee'");
    expect_error(HEAD "segments: []\npolicy:\n  allowed_country: [CN]\n",
                 "4: policy: unknown key 'allowed_country'");
    expect_error(HEAD "segments: []\nzone_matrix:\n  alow: []\n",
                 "4: zone_matrix: unknown key 'alow'");
    expect_error(HEAD "segments: []\nhosts:\n  - name: h\n    ip: 1.2.3.4\n    zone: dmz\n",
                 "6: host 'h': unknown key 'zone'");
    /* wrong types */
    expect_error(HEAD "segments:\n  dmz-web: 10.10.0.0/16\n",
                 "3: 'segments' must be a list, not a mapping");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: [dmz]\n",
                 "4: segment 'dmz-web': 'zone' must be a string, not a list");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    department: 大数据局\n"
                      "    cidrs: 10.10.0.0/16\n",
                 "6: segment 'dmz-web': 'cidrs' must be a list, not a string");
    expect_error(HEAD "segments:\n"
                      "  - name: dmz-web\n"
                      "    zone: dmz\n"
                      "    department: 大数据局\n"
                      "    cidrs: [[10.10.0.0/16]]\n",
                 "6: segment 'dmz-web': 'cidrs' items must be strings, not a list");
    expect_error(HEAD "segments:\n  - dmz-web\n",
                 "3: 'segments' items must be mappings, not a string");
    expect_error("zones: dmz\nsegments: []\n", "1: 'zones' must be a list, not a string");
    expect_error(HEAD "segments: []\nzone_matrix:\n  tenant_isolation: maybe\n",
                 "4: zone_matrix: 'tenant_isolation' must be true or false");
    /* missing things */
    expect_error("segments: []\n", "1: missing 'zones'");
    expect_error(HEAD, "1: missing 'segments'");
    expect_error("", "1: expected a mapping with 'zones' and 'segments'");
    expect_error(HEAD "segments:\n  - name: s\n    zone: dmz\n    department: d\n",
                 "3: segment 's': missing 'cidrs'");
    expect_error(HEAD "segments:\n  - zone: dmz\n", "3: segment: missing 'name'");
    /* duplicates */
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.0.0.0/16]}\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.1.0.0/16]}\n",
                 "4: segment 'a': duplicate segment name (first at line 3)");
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.0.0.0/16]}\n"
                      "  - {name: b, zone: dmz, department: d, cidrs: [10.0.0.0/16]}\n",
                 "4: segment 'b': address range already listed at line 3 (segment 'a')");
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.0.0.0/16]}\n"
                      "hosts:\n"
                      "  - {name: h1, ip: 10.0.0.1}\n"
                      "  - {name: h2, ip: 10.0.0.1}\n",
                 "6: host 'h2': address range already listed at line 5 (host 'h1')");
    expect_error(HEAD "segments:\n  - {name: a, zone: dmz, zone: data}\n",
                 "3: segment 'a': duplicate key 'zone'");
    expect_error("zones: [dmz, dmz]\nsegments: []\n", "1: 'zones': duplicate 'dmz'");
    /* references */
    expect_error(HEAD "segments:\n  - {name: a, zone: dmx, department: d, cidrs: [10.0.0.0/8]}\n",
                 "3: segment 'a': unknown zone 'dmx' (not in 'zones')");
    expect_error("zones: [dmz, internet]\nsegments: []\n",
                 "1: 'zones': 'internet' is reserved (an address outside the inventory)");
    expect_error(HEAD "departments: [大数据局]\nsegments:\n"
                      "  - {name: a, zone: dmz, department: 大数据",
                 "5: YAML syntax error: did not find expected ',' or '}' while parsing a flow "
                 "mapping");
    expect_error(HEAD "departments: [大数据局]\nsegments:\n"
                      "  - {name: a, zone: dmz, department: 大数据, cidrs: [10.0.0.0/8]}\n",
                 "4: segment 'a': unknown department '大数据' (not in 'departments')");
    expect_error(HEAD "tenants: [{id: rsj}]\nsegments:\n"
                      "  - {name: a, zone: dmz, department: d, tenant: wjw, cidrs: [10.0.0.0/8]}\n",
                 "4: segment 'a': unknown tenant 'wjw' (not in 'tenants')");
    expect_error(HEAD
                 "segments:\n"
                 "  - {name: a, zone: dmz, department: d, criticality: 高, cidrs: [10.0.0.0/8]}\n",
                 "3: segment 'a': criticality '高' is not low, medium, high or critical");
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, learning_until: 2025-13-01,\n"
                      "     cidrs: [10.0.0.0/8]}\n",
                 "3: segment 'a': invalid learning_until '2025-13-01' (expected e.g. "
                 "2025-09-30T00:00:00+08:00)");
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.0.0.0/8]}\n"
                      "hosts:\n"
                      "  - {name: h, ip: 11.0.0.1}\n",
                 "5: host 'h': 11.0.0.1 is in no segment");
    expect_error(HEAD "segments:\n"
                      "  - {name: a, zone: dmz, department: d, cidrs: [10.0.0.0/8]}\n"
                      "hosts:\n"
                      "  - {name: h, ip: 10.0.0.1, mac: '52:54:00:zz:00:01'}\n",
                 "5: host 'h': invalid MAC address '52:54:00:zz:00:01'");
    expect_error(HEAD "segments: []\ndevices:\n  - {mac: '52:54:00:00:00:01', ip: 10.0.0.256}\n",
                 "4: device: invalid IP address '10.0.0.256'");
    expect_error(HEAD "segments: []\nzone_matrix:\n  allow: [dmz -> dta]\n",
                 "4: zone_matrix: unknown zone 'dta'");
    expect_error(HEAD "segments: []\nzone_matrix:\n  allow: [dmz to data]\n",
                 "4: zone_matrix: 'dmz to data' is not 'from -> to'");
    expect_error(HEAD "segments: []\nzone_matrix:\n  default: permit\n",
                 "4: zone_matrix: 'default' must be allow or deny");
    expect_error(HEAD "segments: []\npolicy:\n  allowed_countries: [CN, china]\n",
                 "4: policy: 'allowed_countries': 'china' is not an ISO 3166 country code such "
                 "as CN");
    expect_error(HEAD "segments: []\npolicy:\n  management_networks: [10.99.0/24]\n",
                 "4: policy: 'management_networks': invalid address or CIDR '10.99.0/24'");
    expect_error(HEAD "segments: []\nlists:\n  bad name: [x]\n",
                 "4: lists: 'bad name' is not a valid placeholder name");
    expect_error(HEAD "segments: []\npolicy:\n  approved_vpns: [1.2.3.4]\nlists:\n"
                      "  approved_vpns: [5.6.7.8]\n",
                 "6: placeholder 'approved_vpns' is defined twice");
    expect_error(HEAD "segments: []\n---\nzones: [x]\n", "4: only one YAML document is allowed");
    expect_error(HEAD "version: 2\nsegments: []\n",
                 "2: unsupported version (this build reads version 1)");
    /* a missing file */
    assert_int_equal(assets_load(&a, "/nonexistent/assets.yaml", err, sizeof(err)), FH_ERR_IO);
    assert_null(a);
    assert_string_equal(err,
                        "/nonexistent/assets.yaml: cannot open asset inventory: No such file or "
                        "directory");
}

/* ---- longest-prefix match ---------------------------------------------------- */

static void test_lpm_edges(void **state)
{
    assets *a =
        load_text("zones: [any, net, sub, host]\n"
                  "segments:\n"
                  "  - {name: all4, zone: any, department: d, cidrs: [0.0.0.0/0, '::/0']}\n"
                  "  - {name: ten, zone: net, department: d, cidrs: [10.0.0.0/8]}\n"
                  "  - {name: ten-1, zone: sub, department: d, cidrs: [10.1.0.0/16]}\n"
                  "  - {name: ten-1-2, zone: sub, department: d, cidrs: [10.1.2.0/24]}\n"
                  "  - {name: one, zone: host, department: d,\n"
                  "     cidrs: [10.1.2.3/32, 255.255.255.255/32, 0.0.0.0/32]}\n"
                  "  - {name: v6net, zone: net, department: d, cidrs: ['2001:db8::/32']}\n"
                  "  - {name: v6sub, zone: sub, department: d,\n"
                  "     cidrs: ['2001:db8:1::/48', '2001:db8:1:2::/64']}\n"
                  "  - {name: v6host, zone: host, department: d,\n"
                  "     cidrs: ['2001:db8:1:2::1/128', "
                  "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', '::/128']}\n"
                  "  - {name: adj, zone: net, department: d, cidrs: [11.0.0.0/9, 11.128.0.0/9]}\n");
    static const struct {
        const char *ip, *seg;
    } cases[] = {
        {"1.2.3.4", "all4"},
        {"0.0.0.1", "all4"},
        {"0.0.0.0", "one"},
        {"255.255.255.255", "one"},
        {"255.255.255.254", "all4"},
        {"9.255.255.255", "all4"},
        {"10.0.0.0", "ten"},
        {"10.0.255.255", "ten"},
        {"10.1.0.0", "ten-1"},
        {"10.1.2.2", "ten-1-2"},
        {"10.1.2.3", "one"},
        {"10.1.2.4", "ten-1-2"},
        {"10.1.2.255", "ten-1-2"},
        {"10.1.3.0", "ten-1"},
        {"10.1.255.255", "ten-1"},
        {"10.2.0.0", "ten"},
        {"10.255.255.255", "ten"},
        {"11.0.0.0", "all4"},
        {"11.0.0.0", "adj"},
        {"11.127.255.255", "adj"},
        {"11.128.0.0", "adj"},
        {"11.255.255.255", "adj"},
        {"12.0.0.0", "all4"},
        {"::", "v6host"},
        {"::1", "all4"},
        {"2001:db7:ffff::", "all4"},
        {"2001:db8::", "v6net"},
        {"2001:db8:1::", "v6sub"},
        {"2001:db8:1:2::", "v6sub"},
        {"2001:db8:1:2::1", "v6host"},
        {"2001:db8:1:2::2", "v6sub"},
        {"2001:db8:1:3::", "v6sub"},
        {"2001:db8:2::", "v6net"},
        {"2001:db9::", "all4"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "v6host"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "all4"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const asset_info *r = look(a, cases[i].ip);

        if (!strcmp(cases[i].ip, "11.0.0.0") && !strcmp(cases[i].seg, "all4"))
            continue; /* listed to show: a /9 beats /0 */
        if (!r || strcmp(r->segment, cases[i].seg) != 0)
            fail_msg("%s: got %s, want %s", cases[i].ip, r ? r->segment : "(none)", cases[i].seg);
    }
    assets_free(a);

    /* no /0: gaps between segments are outside the inventory */
    a = load_text("zones: [z]\nsegments:\n"
                  "  - {name: a, zone: z, department: d, cidrs: [10.0.0.0/24, 10.0.2.0/24]}\n");
    assert_null(look(a, "9.255.255.255"));
    assert_non_null(look(a, "10.0.0.255"));
    assert_null(look(a, "10.0.1.0"));
    assert_non_null(look(a, "10.0.2.0"));
    assert_null(look(a, "10.0.3.0"));
    assert_null(look(a, "::1"));
    assets_free(a);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct {
    int family;
    uint8_t net[16];
    unsigned len;
} tp;

static bool tp_match(const tp *p, int family, const uint8_t *a)
{
    unsigned full = p->len / 8, rest = p->len % 8;

    if (p->family != family || memcmp(a, p->net, full) != 0)
        return false;
    return !rest || ((a[full] ^ p->net[full]) & (uint8_t)(0xFF << (8 - rest))) == 0;
}

/* Random nested prefixes, both families, against a naive longest-match scan. */
static void test_lpm_random(void **state)
{
    enum { NP = 300, NQ = 200000 };
    static tp p[NP];
    size_t np = 0;
    char *yaml = malloc(NP * 160 + 256), *w = yaml;
    assets *a;

    (void)state;
    w += sprintf(w, "zones: [z]\nsegments:\n");
    while (np < NP) {
        tp t = {0};
        int bytes;
        char txt[64];
        bool dup = false;

        t.family = rnd() % 3 ? AF_INET : AF_INET6;
        bytes = t.family == AF_INET ? 4 : 16;
        /* cluster under a few roots so that prefixes nest */
        if (t.family == AF_INET) {
            t.net[0] = 10;
            t.net[1] = (uint8_t)(rnd() % 4);
            t.len = 8 + (unsigned)(rnd() % 25);
        } else {
            t.net[0] = 0xfd;
            t.net[1] = (uint8_t)(rnd() % 2);
            t.len = 8 + (unsigned)(rnd() % 121);
        }
        for (int i = 2; i < bytes; i++)
            t.net[i] = (uint8_t)(rnd() % 3); /* few distinct values: more nesting */
        for (int i = 0; i < bytes * 8; i++)
            if ((unsigned)i >= t.len)
                t.net[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
        for (size_t i = 0; i < np; i++)
            if (p[i].family == t.family && p[i].len == t.len && !memcmp(p[i].net, t.net, 16))
                dup = true;
        if (dup)
            continue;
        p[np] = t;
        inet_ntop(t.family, t.net, txt, sizeof(txt));
        w += sprintf(w, "  - {name: s%zu, zone: z, department: d, cidrs: ['%s/%u']}\n", np, txt,
                     t.len);
        np++;
    }
    a = load_text(yaml);
    free(yaml);
    for (int q = 0; q < NQ; q++) {
        const tp *base = &p[rnd() % NP];
        int family = base->family, bytes = family == AF_INET ? 4 : 16;
        uint8_t addr[16] = {0};
        const asset_info *got;
        long best = -1;
        char want[32];

        memcpy(addr, base->net, 16);
        /* flip a few random bits, mostly in the host part */
        for (int k = (int)(rnd() % 3); k >= 0; k--) {
            unsigned bit = (unsigned)(rnd() % (unsigned)(bytes * 8));
            addr[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
        }
        for (size_t i = 0; i < NP; i++)
            if (tp_match(&p[i], family, addr) && (best < 0 || p[i].len > p[best].len))
                best = (long)i;
        got = assets_lookup(a, family, addr);
        snprintf(want, sizeof(want), "s%ld", best);
        if (best < 0 ? got != NULL : (!got || strcmp(got->segment, want) != 0)) {
            char txt[64];

            inet_ntop(family, addr, txt, sizeof(txt));
            fail_msg("%s: got %s, want %s", txt, got ? got->segment : "(none)",
                     best < 0 ? "(none)" : want);
        }
    }
    assets_free(a);
}

/* ---- public addresses ---------------------------------------------------------- */

static void test_public(void **state)
{
    static const struct {
        const char *ip;
        bool pub;
    } cases[] = {
        {"8.8.8.8", true},
        {"114.114.114.114", true},
        {"1.1.1.1", true},
        {"10.0.0.1", false},
        {"172.16.0.1", false},
        {"172.31.255.255", false},
        {"172.32.0.1", true},
        {"192.168.1.1", false},
        {"100.64.0.1", false},
        {"100.128.0.1", true},
        {"127.0.0.1", false},
        {"169.254.1.1", false},
        {"0.0.0.0", false},
        {"192.0.0.8", false},
        {"192.0.0.9", true},
        {"192.0.0.10", true},
        {"192.0.2.1", false},
        {"198.18.0.1", false},
        {"198.51.100.1", false},
        {"203.0.113.1", false},
        {"192.88.99.1", false},
        {"224.0.0.1", false},
        {"239.255.255.250", false},
        {"240.0.0.1", false},
        {"255.255.255.255", false},
        {"2400:3200::1", true},
        {"::1", false},
        {"::", false},
        {"fe80::1", false},
        {"fd00::1", false},
        {"fc00::1", false},
        {"ff02::1", false},
        {"2001:db8::1", false},
        {"2001::1", false},
        {"2001:1::1", true},
        {"2001:1::4", false},
        {"2001:3::1", true},
        {"2001:4:112::1", true},
        {"2001:20::1", true},
        {"2001:10::1", false},
        {"2001:200::1", true},
        {"64:ff9b::808:808", true},
        {"64:ff9b::a00:1", false},
        {"64:ff9b:1::1", false},
        {"2002:808:808::1", true},
        {"2002:a00:1::1", false},
        {"3fff::1", false},
        {"5f00::1", false},
        {"fec0::1", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t addr[16];
        int fam;

        assert_true(fh_addr_parse(cases[i].ip, strlen(cases[i].ip), &fam, addr));
        if (assets_is_public(fam, addr) != cases[i].pub)
            fail_msg("%s: public should be %d", cases[i].ip, cases[i].pub);
    }
    /* IPv4-mapped comes back as IPv4 */
    {
        uint8_t addr[16];
        int fam;

        assert_true(fh_addr_parse("::ffff:8.8.8.8", 14, &fam, addr));
        assert_int_equal(fam, AF_INET);
        assert_true(assets_is_public(fam, addr));
        assert_true(fh_addr_parse("fe80::1%eth0", 12, &fam, addr));
        assert_int_equal(fam, AF_INET6);
        assert_false(fh_addr_parse("1.2.3.4.5", 9, &fam, addr));
        assert_false(fh_addr_parse("1.2.3.256", 9, &fam, addr));
        assert_false(fh_addr_parse("1.2.3.4", 5, &fam, addr)); /* length honoured */
        assert_false(fh_addr_parse("", 0, &fam, addr));
        assert_false(assets_is_public(AF_UNIX, addr));
    }
}

/* ---- enrichment ---------------------------------------------------------------- */

typedef struct {
    field_table ft;
    assets_fields f;
    sv *slots;
    field_id src_ip, dest_ip, src_mac, dest_port;
} fixture;

static void fx_init(fixture *x, const char *const *paths)
{
    field_table_init(&x->ft);
    assert_int_equal(field_intern(&x->ft, "dest_port"), 0);
    for (size_t i = 0; paths[i]; i++)
        assert_int_not_equal(field_intern(&x->ft, paths[i]), FIELD_NONE);
    assert_int_equal(assets_bind(&x->f, &x->ft), FH_OK);
    x->slots = calloc(x->ft.n, sizeof(sv));
    x->src_ip = field_lookup(&x->ft, "src_ip");
    x->dest_ip = field_lookup(&x->ft, "dest_ip");
    x->src_mac = field_lookup(&x->ft, "ether.src_mac");
    x->dest_port = 0;
}

static void fx_event(fixture *x, const char *src, const char *dst, const char *src_mac)
{
    for (uint32_t i = 0; i < x->ft.n; i++)
        x->slots[i] = (sv){0};
    x->slots[x->dest_port] = (sv){.type = SV_NUM, .is_int = true, .i = 443, .num = 443};
    if (src && x->src_ip != FIELD_NONE)
        x->slots[x->src_ip] = (sv){.type = SV_STR, .s = src, .len = strlen(src)};
    if (dst && x->dest_ip != FIELD_NONE)
        x->slots[x->dest_ip] = (sv){.type = SV_STR, .s = dst, .len = strlen(dst)};
    if (src_mac && x->src_mac != FIELD_NONE)
        x->slots[x->src_mac] = (sv){.type = SV_STR, .s = src_mac, .len = strlen(src_mac)};
}

static void fx_free(fixture *x)
{
    free(x->slots);
    field_table_free(&x->ft);
}

static const sv *slot(fixture *x, const char *p)
{
    field_id id = field_lookup(&x->ft, p);

    assert_int_not_equal(id, FIELD_NONE);
    return &x->slots[id];
}

static void assert_str_slot(fixture *x, const char *p, const char *want)
{
    const sv *v = slot(x, p);

    if (v->type != SV_STR || v->len != strlen(want) || memcmp(v->s, want, v->len) != 0)
        fail_msg("%s: got type %d '%.*s', want '%s'", p, v->type,
                 v->type == SV_STR ? (int)v->len : 0, v->type == SV_STR ? v->s : "", want);
}

static void assert_bool_slot(fixture *x, const char *p, bool want)
{
    const sv *v = slot(x, p);

    if (v->type != SV_BOOL || v->b != want)
        fail_msg("%s: got type %d b=%d, want bool %d", p, v->type, v->b, want);
}

static void assert_absent(fixture *x, const char *p)
{
    if (slot(x, p)->type != SV_ABSENT)
        fail_msg("%s: should be absent, is type %d", p, slot(x, p)->type);
}

/* fh_addr_text writes what inet_ntop writes (every IPv4 address of a sweep, some IPv6);
 * fh_hex is lower-case hex. */
static void test_addr_text_and_hex(void **state)
{
    (void)state;
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], hex[9];
    uint8_t v4[4], v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    static const uint8_t bytes[4] = {0x00, 0x0f, 0xa0, 0xff};
    uint32_t x = 0;

    for (int i = 0; i < 200000; i++) {
        x = x * 1103515245u + 12345u;
        v4[0] = (uint8_t)(i & 0xff);
        v4[1] = (uint8_t)(x >> 8);
        v4[2] = (uint8_t)(x >> 16);
        v4[3] = (uint8_t)(i < 256 ? 0 : x >> 24);
        fh_addr_text(AF_INET, v4, a, sizeof(a));
        inet_ntop(AF_INET, v4, b, sizeof(b));
        assert_string_equal(a, b);
    }
    fh_addr_text(AF_INET6, v6, a, sizeof(a));
    assert_string_equal(a, "2001:db8::1");
    fh_hex(hex, bytes, sizeof(bytes));
    assert_string_equal(hex, "000fa0ff");
    fh_hex(hex, bytes, 0);
    assert_string_equal(hex, "");
}

static void test_bind(void **state)
{
    fixture x;
    static const char *const none[] = {"dest_port", "http.hostname", NULL};
    static const char *const some[] = {"dest_asset.department", NULL};

    (void)state;
    /* no rule references an enrichment field: nothing interned, nothing done */
    fx_init(&x, none);
    assert_false(x.f.active);
    assert_int_equal(x.ft.n, 2);
    assert_int_equal(x.src_ip, FIELD_NONE);
    fx_free(&x);
    /* a dest_asset field needs dest_ip only */
    fx_init(&x, some);
    assert_true(x.f.active);
    assert_int_equal(x.src_ip, FIELD_NONE);
    assert_int_not_equal(x.dest_ip, FIELD_NONE);
    assert_int_equal(x.f.side[1][ASSET_F_DEPARTMENT], 1);
    assert_int_equal(x.f.side[1][ASSET_F_ZONE], FIELD_NONE);
    assert_int_equal(x.f.side[0][ASSET_F_DEPARTMENT], FIELD_NONE);
    assert_int_equal(x.f.zone_pair, FIELD_NONE);
    assert_int_equal(x.src_mac, FIELD_NONE);
    assert_int_equal(x.ft.n, 3);
    fx_free(&x);
}

static void test_enrich(void **state)
{
    static const char *const used[] = {"src_asset.zone",
                                       "src_asset.department",
                                       "src_asset.segment",
                                       "src_asset.name",
                                       "src_asset.known",
                                       "src_asset.criticality",
                                       "dest_asset.zone",
                                       "dest_asset.department",
                                       "dest_asset.tenant",
                                       "dest_asset.known",
                                       "src_internet",
                                       "dest_internet",
                                       NULL};
    assets *a = load_example();
    fixture x;
    uint32_t nused;

    (void)state;
    fx_init(&x, used);
    nused = x.ft.n;
    assert_int_equal(nused, 1 + 12 + 2); /* dest_port, the fields, src_ip and dest_ip */

    fx_event(&x, "10.10.1.10", "10.20.8.5", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_str_slot(&x, "src_asset.zone", "dmz");
    assert_str_slot(&x, "src_asset.department", "大数据局");
    assert_str_slot(&x, "src_asset.segment", "dmz-web");
    assert_str_slot(&x, "src_asset.name", "政务服务网门户-web01");
    assert_str_slot(&x, "src_asset.criticality", "critical");
    assert_bool_slot(&x, "src_asset.known", true);
    assert_str_slot(&x, "dest_asset.zone", "business");
    assert_str_slot(&x, "dest_asset.department", "市人力资源和社会保障局");
    assert_str_slot(&x, "dest_asset.tenant", "rsj");
    assert_bool_slot(&x, "dest_asset.known", true);
    assert_bool_slot(&x, "src_internet", false);
    assert_bool_slot(&x, "dest_internet", false);
    /* untouched: the other slots, and the inputs */
    assert_int_equal(x.slots[x.dest_port].type, SV_NUM);
    assert_int_equal(x.slots[x.dest_port].i, 443);
    assert_int_equal(x.slots[x.src_ip].type, SV_STR);
    /* strings point into the assets object (stable), not into the event */
    assert_ptr_equal(slot(&x, "src_asset.zone")->s, look(a, "10.10.1.10")->zone);

    /* from the Internet to a segment (no host name, no tenant) */
    fx_event(&x, "8.8.8.8", "10.30.1.1", NULL);
    /* stale values from a previous event or from the JSON are replaced */
    x.slots[field_lookup(&x.ft, "src_asset.zone")] = (sv){.type = SV_STR, .s = "forged", .len = 6};
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_absent(&x, "src_asset.zone");
    assert_absent(&x, "src_asset.name");
    assert_bool_slot(&x, "src_asset.known", false);
    assert_bool_slot(&x, "src_internet", true);
    assert_bool_slot(&x, "dest_internet", false);
    assert_str_slot(&x, "dest_asset.zone", "data");
    assert_absent(&x, "dest_asset.tenant");

    /* an inventory address that is public is not "Internet" */
    fx_event(&x, "192.168.1.1", "2408:8000:10::80", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "src_internet", false); /* private, unknown */
    assert_bool_slot(&x, "src_asset.known", false);
    assert_bool_slot(&x, "dest_internet", false);
    assert_str_slot(&x, "dest_asset.zone", "dmz");

    /* missing or malformed addresses: everything absent */
    fx_event(&x, NULL, "garbage", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    for (uint32_t i = 1; i < x.ft.n; i++)
        if (i != x.dest_ip)
            assert_int_equal(x.slots[i].type, SV_ABSENT);

    /* no inventory: only the Internet flags */
    fx_event(&x, "10.10.1.10", "1.1.1.1", NULL);
    assets_enrich(NULL, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "src_internet", false);
    assert_bool_slot(&x, "dest_internet", true);
    assert_absent(&x, "src_asset.zone");
    assert_absent(&x, "src_asset.known");

    /* fewer slots than ids (a decoder built for a smaller table): ids past
     * nslots are neither read nor written */
    fx_event(&x, "10.10.1.10", "1.1.1.1", NULL);
    assets_enrich(a, &x.f, x.slots, 3, 0);
    assert_absent(&x, "src_asset.zone");
    assert_absent(&x, "src_asset.known");
    fx_free(&x);
    assets_free(a);
}

static void test_zone_matrix(void **state)
{
    static const char *const used[] = {"zone_pair", "zone_allowed", "egress_allowed", NULL};
    static const struct {
        const char *src, *dst, *pair;
        int allowed; /* 0/1 */
        int egress;  /* -1 absent */
    } cases[] = {
        {"8.8.8.8", "10.10.1.10", "internet->dmz", 1, -1},
        {"8.8.8.8", "10.99.0.10", "internet->management", 0, -1},
        {"8.8.8.8", "10.30.1.1", "internet->data", 0, -1},
        {"10.10.1.10", "10.30.5.10", "dmz->data", 0, -1}, /* explicit deny */
        {"10.10.1.10", "10.20.1.20", "dmz->business", 1, -1},
        {"10.20.1.20", "10.30.5.10", "business->data", 1, -1},
        {"10.99.0.10", "10.30.5.10", "management->data", 1, -1},  /* management -> * */
        {"10.99.0.10", "8.8.8.8", "management->internet", 1, 0},  /* no egress list: none */
        {"10.10.8.1", "10.10.1.10", "dmz->dmz", 1, -1},           /* intra-zone */
        {"10.20.8.5", "10.20.16.5", "business->business", 0, -1}, /* rsj -> wjw: tenants */
        {"10.20.8.5", "10.20.1.20", "business->business", 1, -1}, /* tenant -> shared */
        {"10.20.8.5", "10.20.9.9", "business->business", 1, -1},  /* same tenant */
        {"10.30.1.1", "10.10.1.10", "data->dmz", 0, -1},          /* default deny */
        {"172.16.1.1", "192.168.1.1", "office->unknown", 0, -1},
        {"192.168.1.1", "10.10.1.10", "unknown->dmz", 0, -1},
        {"10.10.1.10", "114.114.114.114", "dmz->internet", 1, 1}, /* on dmz-web's list */
        {"10.10.1.10", "203.119.200.1", "dmz->internet", 1, 1},
        {"10.10.1.10", "8.8.8.8", "dmz->internet", 1, 0},
        {"10.10.8.1", "114.114.114.114", "dmz->internet", 1, 0}, /* its own list only */
        {"10.10.8.1", "106.11.3.4", "dmz->internet", 1, 1},
        {"10.30.1.1", "8.8.8.8", "data->internet", 0, 0},
        {"10.10.1.10", "2400:3200::1", "dmz->internet", 1, 0},
    };
    assets *a = load_example();
    fixture x;

    (void)state;
    fx_init(&x, used);
    assert_int_not_equal(x.src_ip, FIELD_NONE);
    assert_int_not_equal(x.dest_ip, FIELD_NONE);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const sv *eg;

        fx_event(&x, cases[i].src, cases[i].dst, NULL);
        assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
        assert_str_slot(&x, "zone_pair", cases[i].pair);
        if (slot(&x, "zone_allowed")->b != (cases[i].allowed == 1))
            fail_msg("%s -> %s: zone_allowed should be %d", cases[i].src, cases[i].dst,
                     cases[i].allowed);
        eg = slot(&x, "egress_allowed");
        if (cases[i].egress < 0 ? eg->type != SV_ABSENT
                                : eg->type != SV_BOOL || eg->b != (cases[i].egress == 1))
            fail_msg("%s -> %s: egress_allowed type %d b %d, want %d", cases[i].src, cases[i].dst,
                     eg->type, eg->b, cases[i].egress);
    }
    /* one side missing: no pair */
    fx_event(&x, "10.10.1.10", NULL, NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_absent(&x, "zone_pair");
    assert_absent(&x, "zone_allowed");
    fx_free(&x);
    assets_free(a);

    /* without a zone_matrix: same zone allowed, everything else denied; wildcards */
    a = load_text("zones: [a, b]\nsegments:\n"
                  "  - {name: a, zone: a, department: d, cidrs: [10.1.0.0/16]}\n"
                  "  - {name: b, zone: b, department: d, cidrs: [10.2.0.0/16]}\n");
    fx_init(&x, used);
    fx_event(&x, "10.1.0.1", "10.1.0.2", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "zone_allowed", true);
    fx_event(&x, "10.1.0.1", "10.2.0.2", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "zone_allowed", false);
    assets_free(a);
    a = load_text("zones: [a, b]\nsegments:\n"
                  "  - {name: a, zone: a, department: d, cidrs: [10.1.0.0/16]}\n"
                  "  - {name: b, zone: b, department: d, cidrs: [10.2.0.0/16]}\n"
                  "zone_matrix:\n  intra_zone: deny\n  default: allow\n"
                  "  deny: ['* -> b']\n");
    fx_event(&x, "10.1.0.1", "10.1.0.2", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "zone_allowed", false);
    fx_event(&x, "10.2.0.1", "10.1.0.2", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "zone_allowed", true);
    fx_event(&x, "8.8.8.8", "10.2.0.2", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, 0);
    assert_bool_slot(&x, "zone_allowed", false);
    assert_str_slot(&x, "zone_pair", "internet->b");
    fx_free(&x);
    assets_free(a);
}

static void test_devices(void **state)
{
    static const char *const used[] = {"src_asset.device_known", "src_asset.learning", NULL};
    assets *a = load_example();
    fixture x;
    int64_t before, after;

    (void)state;
    assert_true(event_parse_time("2025-09-29T23:59:59+08:00", 25, &before));
    assert_true(event_parse_time("2025-09-30T00:00:00+08:00", 25, &after));
    fx_init(&x, used);
    assert_int_not_equal(x.src_mac, FIELD_NONE);
    /* a host's own mac */
    fx_event(&x, "10.10.1.10", "8.8.8.8", "52:54:00:1a:01:0a");
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_bool_slot(&x, "src_asset.device_known", true);
    assert_bool_slot(&x, "src_asset.learning", false);
    /* upper case, from the devices list */
    fx_event(&x, "10.20.1.20", "8.8.8.8", "52:54:00:20:01:14");
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_bool_slot(&x, "src_asset.device_known", true);
    fx_event(&x, "10.10.1.10", "8.8.8.8", "52:54:00:1A:01:0A");
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_bool_slot(&x, "src_asset.device_known", true);
    /* right mac, wrong ip; unknown mac; during learning */
    fx_event(&x, "10.10.1.11", "8.8.8.8", "52:54:00:1a:01:0a");
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_bool_slot(&x, "src_asset.device_known", false);
    fx_event(&x, "10.10.5.5", "8.8.8.8", "de:ad:be:ef:00:01");
    assets_enrich(a, &x.f, x.slots, x.ft.n, before);
    assert_bool_slot(&x, "src_asset.device_known", false);
    assert_bool_slot(&x, "src_asset.learning", true);
    /* a segment without learning_until is never learning */
    fx_event(&x, "172.16.10.1", "8.8.8.8", "00:1c:42:aa:10:01");
    assets_enrich(a, &x.f, x.slots, x.ft.n, before);
    assert_bool_slot(&x, "src_asset.device_known", true);
    assert_bool_slot(&x, "src_asset.learning", false);
    /* no MAC in the event, or an address outside the inventory: absent */
    fx_event(&x, "10.10.5.5", "8.8.8.8", NULL);
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_absent(&x, "src_asset.device_known");
    fx_event(&x, "8.8.4.4", "10.10.1.10", "de:ad:be:ef:00:01");
    assets_enrich(a, &x.f, x.slots, x.ft.n, after);
    assert_absent(&x, "src_asset.device_known");
    assert_absent(&x, "src_asset.learning");
    fx_free(&x);
    assets_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_example_placeholders),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lpm_edges),
        cmocka_unit_test(test_lpm_random),
        cmocka_unit_test(test_public),
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_enrich),
        cmocka_unit_test(test_zone_matrix),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_addr_text_and_hex),
    };

    return cmocka_run_group_tests_name("assets", tests, NULL, NULL);
}
