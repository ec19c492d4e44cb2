/*
 * test_sigma_value.c - one Sigma value under its modifiers (sigma_value.c): globs and
 * escapes, case rules, lists, numbers against strings, CIDR, regex flags and limits,
 * fieldref, exists, null, and the exact text of every error a rule author can cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "../../../correlator/sigma.h"

/* ---- helpers ------------------------------------------------------------------------ */

static field_table ft;
static char errbuf[512];

static int setup(void **state)
{
    (void)state;
    field_table_init(&ft);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    field_table_free(&ft);
    return 0;
}

static yaml_value yv(yaml_value_type t, const char *text)
{
    yaml_value v = {text, strlen(text), t};

    return v;
}

/* Splits "a|b|c" into mods[] (at most 8); "" means none. Returns the count. */
static size_t split_mods(const char *spec, char store[8][32], const char *mods[8])
{
    size_t n = 0;

    while (spec && *spec && n < 8) {
        const char *bar = strchr(spec, '|');
        size_t len = bar ? (size_t)(bar - spec) : strlen(spec);

        snprintf(store[n], sizeof(store[n]), "%.*s", (int)len, spec);
        mods[n] = store[n];
        n++;
        spec = bar ? bar + 1 : NULL;
    }
    return n;
}

static fh_err compile_t(value_matcher *m, const char *modspec, yaml_value_type t, const char *text)
{
    char store[8][32];
    const char *mods[8];
    size_t n = split_mods(modspec, store, mods);
    yaml_value v = yv(t, text);

    errbuf[0] = '\0';
    return sigma_value_compile(m, mods, n, &v, &ft, errbuf, sizeof(errbuf));
}

/* Compiles or fails the test with the error text. */
static void must_compile(value_matcher *m, const char *modspec, yaml_value_type t, const char *text)
{
    fh_err rc = compile_t(m, modspec, t, text);

    if (rc != FH_OK)
        fail_msg("compile '%s' with '%s': %s", text, modspec, errbuf);
}

/* The compile error of a value, which must fail with code `want`. */
static const char *compile_err(const char *modspec, yaml_value_type t, const char *text,
                               fh_err want)
{
    value_matcher m;
    fh_err rc = compile_t(&m, modspec, t, text);

    assert_int_equal(rc, want);
    /* A failed compile leaves nothing to free, and freeing is harmless. */
    assert_null(m.pattern);
    assert_null(m.re);
    assert_null(m.md);
    sigma_value_free(&m);
    return errbuf;
}

static const event_view no_event = {0};

static sv s_str(const char *s)
{
    sv v = {0};

    v.type = SV_STR;
    v.s = s;
    v.len = strlen(s);
    return v;
}

static sv s_strn(const char *s, size_t len)
{
    sv v = {0};

    v.type = SV_STR;
    v.s = s;
    v.len = len;
    return v;
}

/* A JSON number as the decoder gives it: its text plus the value. */
static sv s_num(const char *text, double num, bool is_int, int64_t i)
{
    sv v = {0};

    v.type = SV_NUM;
    v.s = text;
    v.len = strlen(text);
    v.num = num;
    v.is_int = is_int;
    v.i = i;
    return v;
}

static sv s_int(const char *text, int64_t i)
{
    return s_num(text, (double)i, true, i);
}

static sv s_bool(bool b)
{
    sv v = {0};

    v.type = SV_BOOL;
    v.b = b;
    return v;
}

static sv s_type(sv_type t)
{
    sv v = {0};

    v.type = t;
    return v;
}

static bool match_str(const value_matcher *m, const char *s)
{
    sv v = s_str(s);

    return sigma_value_match(m, &v, &no_event);
}

static bool match_sv(const value_matcher *m, sv v)
{
    return sigma_value_match(m, &v, &no_event);
}

static bool match_sv_ev(const value_matcher *m, sv v, const event_view *ev)
{
    return sigma_value_match(m, &v, ev);
}

/* One-shot: does `text` under `modspec` (a YAML string) match the event string s? */
static bool str_matches(const char *modspec, const char *text, const char *s)
{
    value_matcher m;
    bool r;

    must_compile(&m, modspec, YV_STRING, text);
    r = match_str(&m, s);
    sigma_value_free(&m);
    return r;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- strings ------------------------------------------------------------------------ */

static void test_plain_string_literal(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "", YV_STRING, "EvilCorp.EXAMPLE");
    assert_int_equal(m.kind, VM_STRING);
    assert_true(m.literal);
    assert_string_equal(m.pattern, "evilcorp.example"); /* folded at compile time */
    assert_int_equal(m.pattern_len, 16);
    assert_true(match_str(&m, "evilcorp.example"));
    assert_true(match_str(&m, "EVILCORP.example"));
    assert_false(match_str(&m, "evilcorp.example."));
    assert_false(match_str(&m, "evilcorp.exampl"));
    assert_false(match_str(&m, ""));
    sigma_value_free(&m);

    /* The empty string matches only the empty string. */
    must_compile(&m, "", YV_STRING, "");
    assert_true(m.literal);
    assert_true(match_str(&m, ""));
    assert_false(match_str(&m, "x"));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    assert_false(match_sv(&m, s_type(SV_NULL)));
    sigma_value_free(&m);
}

static void test_case_rules(void **state)
{
    (void)state;
    /* ASCII letters fold; other bytes compare exactly. */
    assert_true(str_matches("", "ABCxyz", "abcXYZ"));
    assert_true(str_matches("", "a*Z", "Abcz"));
    assert_false(str_matches("", "\xc3\x89t\xc3\xa9", "\xc3\xa9t\xc3\xa9")); /* Été vs été */
    assert_true(str_matches("", "\xc3\xa9T\xc3\xa9", "\xc3\xa9t\xc3\xa9"));
    /* |cased: byte-exact, in the literal and the glob paths. */
    assert_false(str_matches("cased", "Admin", "admin"));
    assert_true(str_matches("cased", "Admin", "Admin"));
    assert_false(str_matches("contains|cased", "Admin", "xxadminxx"));
    assert_true(str_matches("contains|cased", "Admin", "xxAdminxx"));
    assert_true(str_matches("cased|startswith", "Ad", "Admin"));
    assert_false(str_matches("cased|startswith", "Ad", "admin"));

    value_matcher m;

    must_compile(&m, "cased", YV_STRING, "MiXeD");
    assert_true(m.cased);
    assert_string_equal(m.pattern, "MiXeD"); /* not folded */
    sigma_value_free(&m);
}

static void test_wildcards(void **state)
{
    (void)state;
    assert_true(str_matches("", "*.example.com", "www.example.com"));
    assert_true(str_matches("", "*.example.com", ".example.com"));
    assert_false(str_matches("", "*.example.com", "example.com"));
    assert_true(str_matches("", "a?c", "abc"));
    assert_false(str_matches("", "a?c", "ac"));
    assert_false(str_matches("", "a?c", "abbc"));
    assert_true(str_matches("", "*", ""));
    assert_true(str_matches("", "*", "anything"));
    assert_true(str_matches("", "**", "x"));
    assert_false(str_matches("", "?", ""));
    assert_true(str_matches("", "a*b*c", "aXXbYYc"));
    assert_true(str_matches("", "a*b*c", "abc"));
    assert_false(str_matches("", "a*b*c", "aXXbYY"));
    assert_true(str_matches("", "*ab", "aab"));
    assert_true(str_matches("", "*a?b", "xxaZb"));
    /* `?` is one character: a whole UTF-8 sequence, not one byte. */
    assert_true(str_matches("", "a?b",
                            "a\xe6\x94\xbf"
                            "b"));
    assert_false(str_matches("", "a??b",
                             "a\xe6\x94\xbf"
                             "b"));
    assert_false(str_matches("", "*??", "\xe6\x94\xbf"));
    assert_true(str_matches("", "*?", "\xe6\x94\xbf"));
    /* An invalid byte counts as one character. */
    assert_true(str_matches("", "a?b",
                            "a\xff"
                            "b"));
    /* Text with an embedded NUL is compared by length. */
    {
        value_matcher m;

        must_compile(&m, "", YV_STRING, "a*");
        assert_true(match_sv(&m, s_strn("a\0b", 3)));
        sigma_value_free(&m);
        must_compile(&m, "", YV_STRING, "ab");
        assert_false(match_sv(&m, s_strn("a\0b", 3)));
        sigma_value_free(&m);
    }
}

static void test_escapes(void **state)
{
    value_matcher m;

    (void)state;
    /* \* and \? are literal; with no wildcard left the value is a literal. */
    must_compile(&m, "", YV_STRING, "what\\?");
    assert_true(m.literal);
    assert_string_equal(m.pattern, "what?");
    assert_true(match_str(&m, "what?"));
    assert_false(match_str(&m, "whatx"));
    sigma_value_free(&m);

    assert_true(str_matches("", "a\\*b", "a*b"));
    assert_false(str_matches("", "a\\*b", "aXb"));
    /* \\ is one backslash; so is a backslash before an ordinary character. */
    assert_true(str_matches("", "C:\\\\Windows", "C:\\Windows"));
    assert_true(str_matches("", "C:\\Windows", "c:\\windows"));
    assert_false(str_matches("", "C:\\Windows", "C:\\\\Windows"));
    /* \\* is a backslash then a wildcard; \\\* a backslash then a star. */
    assert_true(str_matches("", "dir\\\\*", "dir\\anything"));
    assert_false(str_matches("", "dir\\\\*", "dirx"));
    assert_true(str_matches("", "dir\\\\\\*", "dir\\*"));
    assert_false(str_matches("", "dir\\\\\\*", "dir\\x"));
    /* Three or four backslashes are both a double backslash. */
    assert_true(str_matches("", "a\\\\\\b", "a\\\\b"));
    assert_true(str_matches("", "a\\\\\\\\b", "a\\\\b"));
    /* A trailing backslash is literal. */
    assert_true(str_matches("", "share\\", "share\\"));
    /* Escaped wildcards inside a glob. */
    assert_true(str_matches("", "*\\?*", "is it?"));
    assert_false(str_matches("", "*\\?*", "is it"));
    assert_true(str_matches("", "*\\**", "a*b"));
    assert_false(str_matches("", "*\\**", "ab"));
}

static void test_contains_startswith_endswith(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "contains", YV_STRING, "Cmd");
    assert_false(m.literal);
    assert_string_equal(m.pattern, "*cmd*");
    assert_true(match_str(&m, "cmd"));
    assert_true(match_str(&m, "run CMD.exe"));
    assert_false(match_str(&m, "cm d"));
    sigma_value_free(&m);

    assert_true(str_matches("startswith", "adm", "Administrator"));
    assert_false(str_matches("startswith", "adm", "xadm"));
    assert_true(str_matches("endswith", ".EXE", "c:\\cmd.exe"));
    assert_false(str_matches("endswith", ".exe", "cmd.exe "));
    /* Wildcards in the value stay wildcards; `**` collapses. */
    must_compile(&m, "contains", YV_STRING, "*a?b*");
    assert_string_equal(m.pattern, "*a?b*");
    assert_true(match_str(&m, "xxaZbxx"));
    sigma_value_free(&m);
    /* The added wildcard does not turn a trailing backslash into an escape. */
    must_compile(&m, "endswith", YV_STRING, "\\");
    assert_string_equal(m.pattern, "*\\\\");
    assert_true(match_str(&m, "C:\\"));
    assert_false(match_str(&m, "C:"));
    sigma_value_free(&m);
    must_compile(&m, "startswith", YV_STRING, "C:\\");
    assert_string_equal(m.pattern, "c:\\\\*");
    assert_true(match_str(&m, "C:\\x"));
    sigma_value_free(&m);
    /* An escaped star before the added one stays literal. */
    must_compile(&m, "startswith", YV_STRING, "a\\*");
    assert_string_equal(m.pattern, "a\\**");
    assert_true(match_str(&m, "a*zz"));
    assert_false(match_str(&m, "abzz"));
    sigma_value_free(&m);
    /* Numbers and booleans given to a string modifier are their text. */
    must_compile(&m, "startswith", YV_NUMBER, "80");
    assert_int_equal(m.kind, VM_STRING);
    assert_true(match_sv(&m, s_int("8080", 8080)));
    assert_false(match_sv(&m, s_int("443", 443)));
    sigma_value_free(&m);
}

static void test_glob_no_blowup(void **state)
{
    static char text[10001];
    value_matcher m;
    double t0;

    (void)state;
    memset(text, 'a', sizeof(text) - 1);
    must_compile(&m, "", YV_STRING, "*a*a*a*a*a*b");
    t0 = now_s();
    for (int i = 0; i < 100; i++)
        assert_false(match_str(&m, text));
    assert_true(now_s() - t0 < 2.0);
    text[sizeof(text) - 2] = 'b';
    assert_true(match_str(&m, text));
    sigma_value_free(&m);

    must_compile(&m, "contains", YV_STRING, "aaaaaaaaab");
    text[sizeof(text) - 2] = 'a';
    t0 = now_s();
    for (int i = 0; i < 100; i++)
        assert_false(match_str(&m, text));
    assert_true(now_s() - t0 < 2.0);
    sigma_value_free(&m);
}

static void test_string_against_event_types(void **state)
{
    value_matcher m;
    sv items[3];
    sv list = {0};

    (void)state;
    /* A number is matched by its JSON text, a boolean as true/false. */
    must_compile(&m, "", YV_STRING, "23");
    assert_true(match_sv(&m, s_int("23", 23)));
    assert_false(match_sv(&m, s_num("23.0", 23.0, false, 0)));
    sigma_value_free(&m);
    must_compile(&m, "", YV_STRING, "TRUE");
    assert_true(match_sv(&m, s_bool(true)));
    assert_false(match_sv(&m, s_bool(false)));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    assert_false(match_sv(&m, s_type(SV_NULL)));
    assert_false(match_sv(&m, s_type(SV_OBJECT)));
    sigma_value_free(&m);
    /* A number without its text (not from the decoder) still has one. */
    must_compile(&m, "", YV_STRING, "-7");
    {
        sv n = {0};

        n.type = SV_NUM;
        n.is_int = true;
        n.i = -7;
        n.num = -7;
        assert_true(match_sv(&m, n));
    }
    sigma_value_free(&m);

    /* A list matches when any item does. */
    items[0] = s_str("NDPI_SUSPICIOUS_DGA_DOMAIN");
    items[1] = s_str("NDPI_TLS_SELFSIGNED_CERTIFICATE");
    items[2] = s_int("5", 5);
    list.type = SV_LIST;
    list.items = items;
    list.len = 3;
    must_compile(&m, "contains", YV_STRING, "selfsigned");
    assert_true(match_sv(&m, list));
    sigma_value_free(&m);
    must_compile(&m, "", YV_STRING, "ndpi_risky_asn");
    assert_false(match_sv(&m, list));
    sigma_value_free(&m);
    must_compile(&m, "", YV_NUMBER, "5");
    assert_true(match_sv(&m, list));
    sigma_value_free(&m);
    list.len = 0;
    must_compile(&m, "", YV_STRING, "*");
    assert_false(match_sv(&m, list));
    sigma_value_free(&m);
}

/* ---- numbers, booleans, null ------------------------------------------------------ */

static void test_number_equality(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "", YV_NUMBER, "23");
    assert_int_equal(m.kind, VM_NUMBER);
    assert_int_equal(m.op, NUM_EQ);
    assert_true(match_sv(&m, s_int("23", 23)));
    assert_true(match_sv(&m, s_num("23.0", 23.0, false, 0)));
    assert_true(match_sv(&m, s_num("2.3e1", 23.0, false, 0)));
    assert_false(match_sv(&m, s_int("24", 24)));
    /* Strings holding a number compare by value; others never match. */
    assert_true(match_str(&m, "23"));
    assert_true(match_str(&m, "23.00"));
    assert_true(match_str(&m, "+23"));
    assert_false(match_str(&m, " 23"));
    assert_false(match_str(&m, "23abc"));
    assert_false(match_str(&m, "0x17"));
    assert_false(match_str(&m, ""));
    assert_false(match_sv(&m, s_bool(true)));
    assert_false(match_sv(&m, s_type(SV_NULL)));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    sigma_value_free(&m);

    must_compile(&m, "", YV_NUMBER, "-1.5");
    assert_true(match_sv(&m, s_num("-1.5", -1.5, false, 0)));
    assert_true(match_str(&m, "-1.50"));
    sigma_value_free(&m);

    /* Large integers (exact up to 2^53). */
    must_compile(&m, "", YV_NUMBER, "9007199254740992");
    assert_true(match_sv(
        &m, s_num("9007199254740992", 9007199254740992.0, true, INT64_C(9007199254740992))));
    assert_false(match_sv(
        &m, s_num("9007199254740990", 9007199254740990.0, true, INT64_C(9007199254740990))));
    sigma_value_free(&m);
}

static void test_number_compare(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "gt", YV_NUMBER, "1000");
    assert_int_equal(m.op, NUM_GT);
    assert_true(match_sv(&m, s_int("1001", 1001)));
    assert_false(match_sv(&m, s_int("1000", 1000)));
    assert_true(match_sv(&m, s_num("1000.5", 1000.5, false, 0)));
    assert_true(match_str(&m, "5000"));
    assert_false(match_str(&m, "big"));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    sigma_value_free(&m);

    must_compile(&m, "gte", YV_NUMBER, "1000");
    assert_true(match_sv(&m, s_int("1000", 1000)));
    assert_false(match_sv(&m, s_int("999", 999)));
    sigma_value_free(&m);

    must_compile(&m, "lt", YV_NUMBER, "-2.5");
    assert_true(match_sv(&m, s_int("-3", -3)));
    assert_false(match_sv(&m, s_num("-2.5", -2.5, false, 0)));
    sigma_value_free(&m);

    must_compile(&m, "lte", YV_NUMBER, "1e3");
    assert_true(match_sv(&m, s_int("1000", 1000)));
    assert_false(match_sv(&m, s_int("1001", 1001)));
    sigma_value_free(&m);

    /* Lists: any item. */
    {
        sv items[2] = {s_int("1", 1), s_int("70000", 70000)};
        sv list = {0};

        list.type = SV_LIST;
        list.items = items;
        list.len = 2;
        must_compile(&m, "gt", YV_NUMBER, "65535");
        assert_true(match_sv(&m, list));
        sigma_value_free(&m);
        must_compile(&m, "lt", YV_NUMBER, "0");
        assert_false(match_sv(&m, list));
        sigma_value_free(&m);
    }
}

static void test_bool_and_null(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "", YV_BOOL, "true");
    assert_int_equal(m.kind, VM_BOOL);
    assert_true(match_sv(&m, s_bool(true)));
    assert_false(match_sv(&m, s_bool(false)));
    assert_true(match_str(&m, "true"));
    assert_true(match_str(&m, "True"));
    assert_false(match_str(&m, "false"));
    assert_false(match_str(&m, "1"));
    assert_false(match_sv(&m, s_int("1", 1)));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    sigma_value_free(&m);

    must_compile(&m, "", YV_BOOL, "False");
    assert_true(match_sv(&m, s_bool(false)));
    assert_true(match_str(&m, "FALSE"));
    sigma_value_free(&m);

    must_compile(&m, "", YV_NULL, "null");
    assert_int_equal(m.kind, VM_NULL);
    assert_true(match_sv(&m, s_type(SV_ABSENT)));
    assert_true(match_sv(&m, s_type(SV_NULL)));
    assert_false(match_str(&m, ""));
    assert_false(match_str(&m, "null"));
    assert_false(match_sv(&m, s_int("0", 0)));
    assert_false(match_sv(&m, s_bool(false)));
    sigma_value_free(&m);
}

static void test_exists(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "exists", YV_BOOL, "true");
    assert_int_equal(m.kind, VM_EXISTS);
    assert_true(m.b);
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    assert_true(match_sv(&m, s_type(SV_NULL))); /* the key is there */
    assert_true(match_str(&m, ""));
    assert_true(match_sv(&m, s_bool(false)));
    assert_true(match_sv(&m, s_type(SV_OBJECT)));
    sigma_value_free(&m);

    must_compile(&m, "exists", YV_STRING, "False");
    assert_false(m.b);
    assert_true(match_sv(&m, s_type(SV_ABSENT)));
    assert_false(match_sv(&m, s_type(SV_NULL)));
    assert_false(match_str(&m, "x"));
    sigma_value_free(&m);
}

/* ---- CIDR --------------------------------------------------------------------------- */

static bool cidr(const char *net, const char *addr)
{
    return str_matches("cidr", net, addr);
}

static void test_cidr_v4(void **state)
{
    value_matcher m;

    (void)state;
    assert_true(cidr("10.0.0.0/8", "10.1.2.3"));
    assert_true(cidr("10.0.0.0/8", "10.255.255.255"));
    assert_false(cidr("10.0.0.0/8", "11.0.0.0"));
    assert_false(cidr("10.0.0.0/8", "9.255.255.255"));
    assert_true(cidr("192.168.0.0/23", "192.168.1.200"));
    assert_false(cidr("192.168.0.0/23", "192.168.2.1"));
    assert_true(cidr("172.16.0.0/12", "172.31.0.1"));
    assert_false(cidr("172.16.0.0/12", "172.32.0.1"));
    assert_true(cidr("0.0.0.0/0", "8.8.8.8"));
    assert_true(cidr("1.2.3.4", "1.2.3.4")); /* a host */
    assert_false(cidr("1.2.3.4", "1.2.3.5"));
    assert_true(cidr("1.2.3.4/32", "1.2.3.4"));
    /* Host bits in the rule are refused, as the inventory refuses them (common/fh_addr). */
    assert_string_equal(compile_err("cidr", YV_STRING, "10.1.2.3/8", FH_ERR_PARSE),
                        "CIDR '10.1.2.3/8' has host bits set (write the network, or a /32 or "
                        "/128 for one host)");
    must_compile(&m, "cidr", YV_STRING, "10.0.0.0/8");
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(m.prefix, 8);
    assert_memory_equal(m.net, "\x0a\x00\x00\x00", 4);
    assert_true(match_str(&m, "10.200.0.1"));
    /* Not an address, another family, or not a string: no match. */
    assert_false(match_str(&m, "10.1.2"));
    assert_false(match_str(&m, "10.1.2.3 "));
    assert_false(match_str(&m, "::1"));
    assert_false(match_str(&m, ""));
    assert_false(match_sv(&m, s_int("10", 10)));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    /* IPv4-mapped IPv6 matches an IPv4 network. */
    assert_true(match_str(&m, "::ffff:10.9.8.7"));
    assert_true(match_str(&m, "::FFFF:a09:807"));
    assert_false(match_str(&m, "::ffff:11.9.8.7"));
    assert_false(match_str(&m, "::10.9.8.7")); /* IPv4-compatible is not mapped */
    sigma_value_free(&m);
}

static void test_cidr_v6(void **state)
{
    value_matcher m;

    (void)state;
    assert_true(cidr("2001:db8::/32", "2001:db8:1::1"));
    assert_true(cidr("2001:db8::/32", "2001:DB8::"));
    assert_false(cidr("2001:db8::/32", "2001:db9::1"));
    assert_true(cidr("fe80::/10", "febf::1"));
    assert_false(cidr("fe80::/10", "fec0::1"));
    assert_true(cidr("fe80::/10", "fe80::1%eth0")); /* zone id ignored */
    assert_true(cidr("::/0", "::1"));
    assert_false(cidr("::/0", "1.2.3.4")); /* IPv4 text is not IPv6 */
    assert_true(cidr("::1", "::1"));
    assert_true(cidr("::1/128", "0:0:0:0:0:0:0:1"));
    assert_string_equal(compile_err("cidr", YV_STRING, "2001:db8:ffff::1/33", FH_ERR_PARSE),
                        "CIDR '2001:db8:ffff::1/33' has host bits set (write the network, or a "
                        "/32 or /128 for one host)");
    must_compile(&m, "cidr", YV_STRING, "2001:db8:8000::/33");
    assert_int_equal(m.family, AF_INET6);
    assert_int_equal(m.prefix, 33);
    assert_memory_equal(m.net, "\x20\x01\x0d\xb8\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                        16);
    assert_true(match_str(&m, "2001:db8:8000::5"));
    assert_false(match_str(&m, "2001:db8:7fff::5"));
    sigma_value_free(&m);
    /* A list of addresses. */
    {
        sv items[2] = {s_str("192.0.2.1"), s_str("2001:db8::7")};
        sv list = {0};

        list.type = SV_LIST;
        list.items = items;
        list.len = 2;
        must_compile(&m, "cidr", YV_STRING, "2001:db8::/64");
        assert_true(match_sv(&m, list));
        sigma_value_free(&m);
    }
}

static void test_cidr_invalid(void **state)
{
    (void)state;
    assert_string_equal(compile_err("cidr", YV_STRING, "10.0.0/8", FH_ERR_PARSE),
                        "invalid CIDR '10.0.0/8'");
    assert_string_equal(compile_err("cidr", YV_STRING, "10.0.0.0/33", FH_ERR_PARSE),
                        "invalid CIDR '10.0.0.0/33'");
    assert_string_equal(compile_err("cidr", YV_STRING, "10.0.0.0/", FH_ERR_PARSE),
                        "invalid CIDR '10.0.0.0/'");
    assert_string_equal(compile_err("cidr", YV_STRING, "10.0.0.0/+8", FH_ERR_PARSE),
                        "invalid CIDR '10.0.0.0/+8'");
    assert_string_equal(compile_err("cidr", YV_STRING, "10.0.0.0/8/8", FH_ERR_PARSE),
                        "invalid CIDR '10.0.0.0/8/8'");
    assert_string_equal(compile_err("cidr", YV_STRING, "::/129", FH_ERR_PARSE),
                        "invalid CIDR '::/129'");
    assert_string_equal(compile_err("cidr", YV_STRING, "", FH_ERR_PARSE), "invalid CIDR ''");
    assert_string_equal(compile_err("cidr", YV_STRING, "example.com/8", FH_ERR_PARSE),
                        "invalid CIDR 'example.com/8'");
    assert_string_equal(compile_err("cidr", YV_NUMBER, "10", FH_ERR_PARSE), "invalid CIDR '10'");
    assert_string_equal(compile_err("cidr", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 'cidr' cannot be applied to null");
}

/* ---- regex -------------------------------------------------------------------------- */

static void test_regex(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "re", YV_STRING, "^[a-z0-9]{20,}\\.example\\.com$");
    assert_int_equal(m.kind, VM_REGEX);
    assert_non_null(m.re);
    assert_non_null(m.md);
    assert_true(match_str(&m, "abcdefghij0123456789.example.com"));
    assert_false(match_str(&m, "short.example.com"));
    /* Case-sensitive by default. */
    assert_false(match_str(&m, "ABCDEFGHIJ0123456789.example.com"));
    sigma_value_free(&m);

    /* A search, not a full match. */
    assert_true(str_matches("re", "ev[il]l", "some evil host"));
    assert_false(str_matches("re", "^ev[il]l", "some evil host"));
    /* Numbers and booleans are searched as their text. */
    must_compile(&m, "re", YV_STRING, "^80(80)?$");
    assert_true(match_sv(&m, s_int("8080", 8080)));
    assert_false(match_sv(&m, s_int("808", 808)));
    assert_false(match_sv(&m, s_type(SV_ABSENT)));
    assert_false(match_sv(&m, s_type(SV_NULL)));
    sigma_value_free(&m);
    must_compile(&m, "re", YV_STRING, "^t");
    assert_true(match_sv(&m, s_bool(true)));
    sigma_value_free(&m);
    /* UTF-8: `.` is one character; invalid UTF-8 in the event is tolerated. */
    assert_true(str_matches("re", "^a.b$",
                            "a\xe6\x94\xbf"
                            "b"));
    assert_true(str_matches("re", "b$",
                            "a\xff"
                            "b"));
    assert_false(str_matches("re", "^a.b$",
                             "a\xff\xff"
                             "b"));
}

static void test_regex_flags(void **state)
{
    (void)state;
    assert_true(str_matches("re|i", "^admin$", "ADMIN"));
    assert_true(str_matches("re|ignorecase", "^admin$", "AdMiN"));
    assert_false(str_matches("re", "^admin$", "ADMIN"));

    assert_false(str_matches("re", "^b$", "a\nb\nc"));
    assert_true(str_matches("re|m", "^b$", "a\nb\nc"));
    assert_true(str_matches("re|multiline", "^b$", "a\nb\nc"));

    assert_false(str_matches("re", "a.b", "a\nb"));
    assert_true(str_matches("re|s", "a.b", "a\nb"));
    assert_true(str_matches("re|dotall", "a.b", "a\nb"));

    assert_true(str_matches("re|i|m|s", "^B.C$", "a\nb\nc"));
    assert_false(str_matches("re|i|m", "^B.C$", "a\nb\nc"));
}

static void test_regex_invalid(void **state)
{
    (void)state;
    assert_string_equal(compile_err("re", YV_STRING, "a(b", FH_ERR_PARSE),
                        "invalid regular expression: missing closing parenthesis at offset 3");
    assert_string_equal(compile_err("re", YV_STRING, "ab[", FH_ERR_PARSE),
                        "invalid regular expression: missing terminating ] for character class "
                        "at offset 3");
    assert_string_equal(compile_err("re", YV_STRING, "*x", FH_ERR_PARSE),
                        "invalid regular expression: quantifier does not follow a repeatable item "
                        "at offset 0");
    assert_string_equal(compile_err("re", YV_STRING, "a\xff", FH_ERR_PARSE),
                        "invalid regular expression: UTF-8 error: illegal byte (0xfe or 0xff) at "
                        "offset 1");
    assert_string_equal(compile_err("re", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 're' cannot be applied to null");
}

static void test_regex_limit(void **state)
{
    static char text[64];
    value_matcher m;
    double t0;

    (void)state;
    /* Exponential back-tracking before the `x` branch can be found: our match limit
     * stops it, and a limit hit is "no match". With PCRE2's default limit (10 million)
     * this subject matches, interpreted or JIT-compiled. */
    must_compile(&m, "re", YV_STRING, "(a|aa)+c|x");
    assert_true(match_str(&m, "aax"));
    memset(text, 'a', 28);
    text[28] = 'x';
    text[29] = '\0';
    t0 = now_s();
    assert_false(match_str(&m, text));
    assert_true(now_s() - t0 < 2.0);
    sigma_value_free(&m);

    must_compile(&m, "re", YV_STRING, "^(\\w+\\s?)*$");
    memset(text, 'a', 40);
    text[40] = '!';
    text[41] = '\0';
    t0 = now_s();
    assert_false(match_str(&m, text));
    assert_true(now_s() - t0 < 2.0);
    sigma_value_free(&m);
}

/* ---- fieldref ---------------------------------------------------------------------- */

static void test_fieldref(void **state)
{
    value_matcher m;
    sv vals[4];
    event_view ev = {0};
    field_id src, host;

    (void)state;
    src = field_intern(&ft, "src_ip");
    must_compile(&m, "fieldref", YV_STRING, "dest_ip");
    assert_int_equal(m.kind, VM_FIELDREF);
    assert_int_equal(m.ref, field_lookup(&ft, "dest_ip"));
    assert_int_not_equal(m.ref, src);
    assert_true(m.ref < 4);

    memset(vals, 0, sizeof(vals));
    ev.vals = vals;
    ev.nvals = 4;
    vals[m.ref] = s_str("10.0.0.1");
    assert_true(match_sv_ev(&m, s_str("10.0.0.1"), &ev));
    {
        sv other = s_str("10.0.0.2");
        sv upper = s_str("ABC");
        sv absent = s_type(SV_ABSENT);
        sv null = s_type(SV_NULL);

        assert_false(sigma_value_match(&m, &other, &ev));
        /* Case-insensitive unless cased; no wildcards in either side. */
        vals[m.ref] = s_str("abc");
        assert_true(sigma_value_match(&m, &upper, &ev));
        vals[m.ref] = s_str("a*");
        assert_false(sigma_value_match(&m, &upper, &ev));
        /* Absent or null on either side: no match. */
        vals[m.ref] = absent;
        assert_false(sigma_value_match(&m, &absent, &ev));
        vals[m.ref] = null;
        assert_false(sigma_value_match(&m, &null, &ev));
        /* Numbers by value, also against a numeric string. */
        vals[m.ref] = s_num("80.0", 80.0, false, 0);
        assert_true(match_sv_ev(&m, s_int("80", 80), &ev));
        assert_true(match_sv_ev(&m, s_str("80"), &ev));
        assert_false(match_sv_ev(&m, s_str("eighty"), &ev));
        /* Booleans against their text. */
        vals[m.ref] = s_bool(true);
        assert_true(match_sv_ev(&m, s_bool(true), &ev));
        assert_true(match_sv_ev(&m, s_str("TRUE"), &ev));
        assert_false(match_sv_ev(&m, s_bool(false), &ev));
    }
    /* The referenced field beyond the event's slots is absent. */
    ev.nvals = 0;
    assert_false(match_sv_ev(&m, s_bool(true), &ev));
    sigma_value_free(&m);

    /* |cased */
    host = field_intern(&ft, "http.hostname");
    must_compile(&m, "fieldref|cased", YV_STRING, "http.hostname");
    assert_int_equal(m.ref, host);
    assert_true(m.cased);
    ev.nvals = 4;
    vals[host] = s_str("Example.com");
    assert_false(match_sv_ev(&m, s_str("example.com"), &ev));
    assert_true(match_sv_ev(&m, s_str("Example.com"), &ev));
    sigma_value_free(&m);

    /* Lists: any item against any item. */
    must_compile(&m, "fieldref", YV_STRING, "dest_ip");
    {
        sv items[2] = {s_str("a"), s_str("b")};
        sv list = {0};

        list.type = SV_LIST;
        list.items = items;
        list.len = 2;
        vals[m.ref] = s_str("B");
        assert_true(match_sv_ev(&m, list, &ev));
        vals[m.ref] = list;
        assert_true(match_sv_ev(&m, s_str("a"), &ev));
        assert_false(match_sv_ev(&m, s_str("c"), &ev));
    }
    sigma_value_free(&m);
}

static void test_fieldref_errors(void **state)
{
    char name[32];
    value_matcher m;

    (void)state;
    assert_string_equal(compile_err("fieldref", YV_NUMBER, "12", FH_ERR_CONFIG),
                        "modifier 'fieldref' requires a field name, not number '12'");
    assert_string_equal(compile_err("fieldref", YV_STRING, "", FH_ERR_CONFIG),
                        "modifier 'fieldref' requires a field name, not string ''");
    assert_string_equal(compile_err("fieldref", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 'fieldref' cannot be applied to null");
    assert_string_equal(compile_err("fieldref|contains", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifiers 'fieldref' and 'contains' cannot be combined");
    /* A full field table. */
    for (int i = 0; field_intern(&ft, (snprintf(name, sizeof(name), "f%d", i), name)) != FIELD_NONE;
         i++)
        ;
    assert_string_equal(compile_err("fieldref", YV_STRING, "one.more", FH_ERR_LIMIT),
                        "fieldref 'one.more': too many distinct fields (at most 1024)");
    /* An already interned name still resolves. */
    must_compile(&m, "fieldref", YV_STRING, "f3");
    assert_int_equal(m.ref, field_lookup(&ft, "f3"));
    sigma_value_free(&m);
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_modifier_errors(void **state)
{
    (void)state;
    assert_string_equal(compile_err("foo", YV_STRING, "x", FH_ERR_CONFIG),
                        "unknown modifier 'foo'");
    assert_string_equal(compile_err("contains|Contains", YV_STRING, "x", FH_ERR_CONFIG),
                        "unknown modifier 'Contains'");

    assert_string_equal(compile_err("base64", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'base64' (network events carry no base64-encoded "
                        "fields)");
    assert_string_equal(compile_err("base64offset|contains", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'base64offset' (network events carry no "
                        "base64-encoded fields)");
    assert_string_equal(compile_err("utf16le", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'utf16le' (network event fields are UTF-8 text)");
    assert_string_equal(compile_err("utf16be", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'utf16be' (network event fields are UTF-8 text)");
    assert_string_equal(compile_err("utf16", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'utf16' (network event fields are UTF-8 text)");
    assert_string_equal(compile_err("wide", YV_STRING, "x", FH_ERR_CONFIG),
                        "unsupported modifier 'wide' (network event fields are UTF-8 text)");
    assert_string_equal(compile_err("contains|windash", YV_STRING, "-x", FH_ERR_CONFIG),
                        "unsupported modifier 'windash' (Windows command-line dash variants do "
                        "not occur in network events)");

    assert_string_equal(compile_err("contains|all", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifier 'all' applies to the value list and is handled by the rule "
                        "loader, not per value");
    assert_string_equal(compile_err("expand", YV_STRING, "%x%", FH_ERR_CONFIG),
                        "modifier 'expand' applies to the value list and is handled by the rule "
                        "loader, not per value");
    assert_string_equal(compile_err("contains|contains", YV_STRING, "x", FH_ERR_CONFIG),
                        "duplicate modifier 'contains'");
    assert_string_equal(compile_err("cased|cased", YV_STRING, "x", FH_ERR_CONFIG),
                        "duplicate modifier 'cased'");
    assert_string_equal(compile_err("re|i|ignorecase", YV_STRING, "x", FH_ERR_CONFIG),
                        "duplicate modifier 'ignorecase'");
}

static void test_combination_errors(void **state)
{
    (void)state;
    assert_string_equal(compile_err("cidr|contains", YV_STRING, "10.0.0.0/8", FH_ERR_CONFIG),
                        "modifiers 'cidr' and 'contains' cannot be combined");
    assert_string_equal(compile_err("contains|cidr", YV_STRING, "10.0.0.0/8", FH_ERR_CONFIG),
                        "modifiers 'contains' and 'cidr' cannot be combined");
    assert_string_equal(compile_err("re|startswith", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifiers 're' and 'startswith' cannot be combined");
    assert_string_equal(compile_err("startswith|endswith", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifiers 'startswith' and 'endswith' cannot be combined");
    assert_string_equal(compile_err("re|cidr", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifiers 're' and 'cidr' cannot be combined");
    assert_string_equal(compile_err("gt|lt", YV_NUMBER, "1", FH_ERR_CONFIG),
                        "modifiers 'gt' and 'lt' cannot be combined");
    assert_string_equal(compile_err("exists|fieldref", YV_BOOL, "true", FH_ERR_CONFIG),
                        "modifiers 'exists' and 'fieldref' cannot be combined");
    assert_string_equal(compile_err("re|cased", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifiers 're' and 'cased' cannot be combined");
    assert_string_equal(compile_err("cased|cidr", YV_STRING, "::/0", FH_ERR_CONFIG),
                        "modifiers 'cased' and 'cidr' cannot be combined");
    assert_string_equal(compile_err("cased|gt", YV_NUMBER, "1", FH_ERR_CONFIG),
                        "modifiers 'cased' and 'gt' cannot be combined");
    assert_string_equal(compile_err("exists|cased", YV_BOOL, "true", FH_ERR_CONFIG),
                        "modifiers 'exists' and 'cased' cannot be combined");
    /* Regex flags need a preceding |re. */
    assert_string_equal(compile_err("i", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifier 'i' must follow 're'");
    assert_string_equal(compile_err("m|re", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifier 'm' must follow 're'");
    assert_string_equal(compile_err("contains|s", YV_STRING, "x", FH_ERR_CONFIG),
                        "modifier 's' must follow 're'");
}

static void test_value_type_errors(void **state)
{
    (void)state;
    assert_string_equal(compile_err("gt", YV_STRING, "abc", FH_ERR_CONFIG),
                        "modifier 'gt' requires a number, not string 'abc'");
    assert_string_equal(compile_err("gte", YV_STRING, "10", FH_ERR_CONFIG),
                        "modifier 'gte' requires a number, not string '10'");
    assert_string_equal(compile_err("lt", YV_BOOL, "true", FH_ERR_CONFIG),
                        "modifier 'lt' requires a number, not boolean 'true'");
    assert_string_equal(compile_err("lte", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 'lte' cannot be applied to null");
    assert_string_equal(compile_err("gt", YV_NUMBER, "1.2.3", FH_ERR_PARSE),
                        "invalid number '1.2.3'");
    assert_string_equal(compile_err("", YV_NUMBER, "--1", FH_ERR_PARSE), "invalid number '--1'");
    assert_string_equal(compile_err("", YV_BOOL, "yes", FH_ERR_PARSE), "invalid boolean 'yes'");
    assert_string_equal(compile_err("exists", YV_STRING, "maybe", FH_ERR_CONFIG),
                        "modifier 'exists' requires true or false, not 'maybe'");
    assert_string_equal(compile_err("exists", YV_NUMBER, "1", FH_ERR_CONFIG),
                        "modifier 'exists' requires true or false, not '1'");
    assert_string_equal(compile_err("exists", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 'exists' requires true or false, not 'null'");
    assert_string_equal(compile_err("contains", YV_NULL, "null", FH_ERR_CONFIG),
                        "modifier 'contains' cannot be applied to null");
    assert_string_equal(compile_err("cased", YV_NULL, "~", FH_ERR_CONFIG),
                        "modifier 'cased' cannot be applied to null");
    /* Long values are cut in messages. */
    {
        char big[200];
        char want[160];

        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        snprintf(want, sizeof(want), "modifier 'gt' requires a number, not string '%.80s...'", big);
        assert_string_equal(compile_err("gt", YV_STRING, big, FH_ERR_CONFIG), want);
        assert_int_equal(strlen(want),
                         strlen("modifier 'gt' requires a number, not string ''...") + 80);
    }
    /* A small error buffer truncates safely; a NULL one is allowed. */
    {
        value_matcher m;
        const char *mods[] = {"nope"};
        yaml_value v = yv(YV_STRING, "x");
        char small[8];

        assert_int_equal(sigma_value_compile(&m, mods, 1, &v, &ft, small, sizeof(small)),
                         FH_ERR_CONFIG);
        assert_string_equal(small, "unknown");
        assert_int_equal(sigma_value_compile(&m, mods, 1, &v, &ft, NULL, 0), FH_ERR_CONFIG);
    }
}

static void test_modifier_known(void **state)
{
    static const char *const yes[] = {
        "contains", "startswith", "endswith",   "all",       "cased",   "re",   "i",
        "m",        "s",          "ignorecase", "multiline", "dotall",  "cidr", "gt",
        "gte",      "lt",         "lte",        "exists",    "fieldref"};
    static const char *const no[] = {"base64",  "base64offset", "utf16le", "utf16be", "utf16",
                                     "wide",    "windash",      "expand",  "foo",     "",
                                     "CONTAINS"};

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!sigma_modifier_known(yes[i]))
            fail_msg("'%s' should be known", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (sigma_modifier_known(no[i]))
            fail_msg("'%s' should not be known", no[i]);
    assert_false(sigma_modifier_known(NULL));
}

static void test_free_is_idempotent(void **state)
{
    value_matcher m;

    (void)state;
    must_compile(&m, "re", YV_STRING, "x");
    sigma_value_free(&m);
    sigma_value_free(&m);
    assert_null(m.re);
    sigma_value_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_string_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contains_startswith_endswith, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob_no_blowup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_against_event_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_equality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cidr_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cidr_v6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cidr_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fieldref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fieldref_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modifier_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_combination_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_type_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modifier_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_is_idempotent, setup, teardown),
    };

    return cmocka_run_group_tests_name("sigma_value", tests, NULL, NULL);
}
