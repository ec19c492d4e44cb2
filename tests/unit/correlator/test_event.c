/*
 * test_event.c - the field table, event time parsing and the JSON event decoder
 * (correlator/event.c, correlator/event_json.cpp): every value type, nested and
 * dotted paths, lists, escapes, numbers, malformed input, reuse of one decoder
 * across events of different shapes. (Its throughput is measured by
 * bench/micro.c, in `make bench`.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../../correlator/event.h"
#include "../../../correlator/event_json.h"

/* Flow events as `fenghuo-sensor -r <pcap> -w -` writes them (ndpi test captures). */
static const char *const FLOW_HTTP_AUTH =
    "{\"timestamp\":\"2013-10-15T13:34:17.320871+0000\",\"event_type\":\"flow\",\"schema_version\":"
    "\"1.0\",\"sensor\":{\"id\":\"fenghuo-sensor\",\"segment\":\"default\"},\"flow_id\":"
    "2194799979503639,\"src_ip\":\"192.168.0.4\",\"src_port\":54337,\"dest_ip\":\"192.254.189."
    "169\",\"dest_port\":80,\"proto\":\"TCP\",\"community_id\":\"1:felaK/Nbs+Te6dboUot9Mbol0YI=\","
    "\"app_proto\":\"http\",\"ndpi\":{\"protocol\":\"HTTP\",\"master_protocol\":\"Unknown\","
    "\"app_protocol\":\"HTTP\",\"category\":\"Web\",\"confidence\":\"DPI\",\"guessed\":false,"
    "\"risks\":[\"Clear-Text Credentials\"],\"risk_score\":100,\"hostname\":\"browserspy.dk\"},"
    "\"http\":{\"hostname\":\"browserspy.dk\",\"url\":\"/password-ok.php\",\"http_user_agent\":"
    "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_8_5) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/30.0.1599.69 Safari/537.36\",\"http_method\":\"GET\",\"status\":401,"
    "\"http_content_type\":\"text/html\"},\"ether\":{\"src_mac\":\"28:cf:e9:21:3c:2b\","
    "\"dest_mac\":\"4c:17:eb:ba:24:e1\"},\"flow\":{\"pkts_toserver\":14,\"pkts_toclient\":19,"
    "\"bytes_toserver\":1479,\"bytes_toclient\":18633,\"start\":\"2013-10-15T13:34:10.222515+"
    "0000\",\"end\":\"2013-10-15T13:34:17.320871+0000\",\"age\":7,\"state\":\"closed\",\"reason\":"
    "\"closed\",\"alerted\":false},\"tcp\":{\"tcp_flags\":\"1b\",\"tcp_flags_ts\":\"1b\","
    "\"tcp_flags_tc\":\"1b\",\"syn\":true,\"ack\":true,\"fin\":true,\"psh\":true,\"state\":"
    "\"closed\"}}";

static const char *const FLOW_DNS =
    "{\"timestamp\":\"2005-03-30T08:51:35.437491+0000\",\"event_type\":\"flow\",\"schema_version\":"
    "\"1.0\",\"sensor\":{\"id\":\"fenghuo-sensor\",\"segment\":\"default\"},\"flow_id\":"
    "1516252654110246,\"src_ip\":\"192.168.170.8\",\"src_port\":32795,\"dest_ip\":\"192.168.170."
    "20\",\"dest_port\":53,\"proto\":\"UDP\",\"community_id\":\"1:PIDOtGFIHUsiDppmnIxS0PK/t7Y=\","
    "\"app_proto\":\"dns\",\"ndpi\":{\"protocol\":\"DNS.Google\",\"master_protocol\":\"DNS\","
    "\"app_protocol\":\"Google\",\"category\":\"Web\",\"confidence\":\"DPI\",\"guessed\":false,"
    "\"risks\":[],\"risk_score\":0,\"hostname\":\"www.l.google.com\"},\"dns\":{\"rrname\":"
    "\"www.l.google.com\",\"rcode\":\"NOERROR\",\"answers\":0},\"ether\":{\"src_mac\":\"00:e0:18:"
    "b1:0c:ad\",\"dest_mac\":\"00:c0:9f:32:41:8c\"},\"flow\":{\"pkts_toserver\":1,"
    "\"pkts_toclient\":2,\"bytes_toserver\":61,\"bytes_toclient\":123,\"start\":\"2005-03-30T08:"
    "50:54.366527+0000\",\"end\":\"2005-03-30T08:51:35.437491+0000\",\"age\":41,\"state\":"
    "\"established\",\"reason\":\"timeout\",\"alerted\":false}}";

static const char *const FLOW_TLS =
    "{\"timestamp\":\"2020-02-07T21:03:54.258190+0000\",\"event_type\":\"flow\",\"schema_version\":"
    "\"1.0\",\"sensor\":{\"id\":\"fenghuo-sensor\",\"segment\":\"default\"},\"flow_id\":"
    "153730852611210,\"src_ip\":\"192.168.1.13\",\"src_port\":53059,\"dest_ip\":\"178.62.197.130\","
    "\"dest_port\":443,\"proto\":\"TCP\",\"community_id\":\"1:KhgxkZ8o5kZAJjXqlT4IA/xFcmA=\","
    "\"ndpi\":{\"protocol\":\"TLS\",\"master_protocol\":\"Unknown\",\"app_protocol\":\"TLS\","
    "\"category\":\"Web\",\"confidence\":\"Match by port\",\"guessed\":true,\"risks\":[],"
    "\"risk_score\":0},\"ether\":{\"src_mac\":\"28:37:37:00:6d:c8\",\"dest_mac\":\"10:13:31:f1:39:"
    "76\"},\"flow\":{\"pkts_toserver\":0,\"pkts_toclient\":1,\"bytes_toserver\":0,"
    "\"bytes_toclient\":1492,\"start\":\"2020-02-07T21:03:54.258190+0000\",\"end\":\"2020-02-07T21:"
    "03:54.258190+0000\",\"age\":0,\"state\":\"new\",\"reason\":\"shutdown\",\"alerted\":false},"
    "\"tcp\":{\"tcp_flags\":\"10\",\"tcp_flags_ts\":\"00\",\"tcp_flags_tc\":\"10\",\"ack\":true,"
    "\"state\":\"midstream\"}}";

/* 30 fields a rule pack typically references in flow events. */
static const char *const FLOW_FIELDS[] = {"event_type",
                                          "src_ip",
                                          "src_port",
                                          "dest_ip",
                                          "dest_port",
                                          "proto",
                                          "app_proto",
                                          "community_id",
                                          "ndpi.protocol",
                                          "ndpi.category",
                                          "ndpi.confidence",
                                          "ndpi.risks",
                                          "ndpi.risk_score",
                                          "ndpi.hostname",
                                          "ndpi.guessed",
                                          "http.hostname",
                                          "http.url",
                                          "http.http_user_agent",
                                          "http.http_method",
                                          "http.status",
                                          "dns.rrname",
                                          "dns.rcode",
                                          "tls.sni",
                                          "tls.ja3.hash",
                                          "flow.bytes_toserver",
                                          "flow.bytes_toclient",
                                          "flow.pkts_toserver",
                                          "flow.state",
                                          "tcp.tcp_flags",
                                          "geo.dest.country",
                                          NULL};

/* ---- fixture -----------------------------------------------------------------------------------
 */

typedef struct {
    field_table ft;
    event_decoder *d;
    event_view ev;
    char err[256];
} fx;

static fx *fx_new(const char *const *paths)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    field_table_init(&f->ft);
    for (size_t i = 0; paths[i]; i++)
        assert_int_not_equal(field_intern(&f->ft, paths[i]), FIELD_NONE);
    assert_int_equal(event_decoder_new(&f->d, &f->ft), FH_OK);
    return f;
}

static void fx_free(fx *f)
{
    event_decoder_free(f->d);
    field_table_free(&f->ft);
    free(f);
}

static fh_err dec_n(fx *f, const char *json, size_t len)
{
    f->err[0] = '\0';
    return event_decode(f->d, json, len, &f->ev, f->err, sizeof(f->err));
}

static fh_err dec(fx *f, const char *json)
{
    return dec_n(f, json, strlen(json));
}

static const sv *get(fx *f, const char *path)
{
    field_id id = field_lookup(&f->ft, path);
    assert_int_not_equal(id, FIELD_NONE);
    return event_get(&f->ev, id);
}

static void assert_str(const sv *v, const char *want)
{
    assert_int_equal(v->type, SV_STR);
    if (v->len != strlen(want) || memcmp(v->s, want, v->len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)v->len, v->s, want);
}

static void assert_int_num(const sv *v, int64_t want)
{
    assert_int_equal(v->type, SV_NUM);
    assert_true(v->is_int);
    assert_true(v->i == want);
    assert_true(v->num == (double)want);
}

static void assert_raw(const sv *v, const char *want)
{
    if (v->len != strlen(want) || memcmp(v->s, want, v->len) != 0)
        fail_msg("raw \"%.*s\", want \"%s\"", (int)v->len, v->s, want);
}

/* ---- field table -------------------------------------------------------------------------------
 */

static void test_field_table(void **state)
{
    (void)state;
    field_table ft;
    field_table_init(&ft);
    field_id a = field_intern(&ft, "dest_port");
    field_id b = field_intern(&ft, "geo.dest.country");
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(field_intern(&ft, "dest_port"), a);
    assert_int_equal(field_lookup(&ft, "geo.dest.country"), b);
    assert_int_equal(field_lookup(&ft, "nope"), FIELD_NONE);
    assert_int_equal(ft.n, 2);
    char name[32];
    for (uint32_t i = ft.n; i < FIELD_MAX; i++) {
        snprintf(name, sizeof(name), "f%u", i);
        assert_int_equal(field_intern(&ft, name), i);
    }
    assert_int_equal(field_intern(&ft, "one.too.many"), FIELD_NONE);
    assert_int_equal(field_intern(&ft, "dest_port"), a);
    field_table_free(&ft);
    assert_int_equal(ft.n, 0);

    event_view ev = {0};
    assert_int_equal(event_get(&ev, 0)->type, SV_ABSENT);
    assert_int_equal(event_get(NULL, 3)->type, SV_ABSENT);
    assert_int_equal(event_get(&ev, FIELD_NONE)->type, SV_ABSENT);
}

/* ---- event time --------------------------------------------------------------------------------
 */

static void check_time(const char *s, int64_t want)
{
    int64_t ms = 12345;
    if (!event_parse_time(s, strlen(s), &ms))
        fail_msg("rejected \"%s\"", s);
    if (ms != want)
        fail_msg("\"%s\": got %lld, want %lld", s, (long long)ms, (long long)want);
}

static void check_bad_time(const char *s)
{
    int64_t ms = 0;
    if (event_parse_time(s, strlen(s), &ms))
        fail_msg("accepted \"%s\" as %lld", s, (long long)ms);
}

static void test_parse_time(void **state)
{
    (void)state;
    /* sensor / Suricata format */
    check_time("2013-10-15T13:34:17.320871+0000", 1381844057320);
    check_time("2024-03-01T08:00:00.003000+0000", 1709280000003);
    /* RFC 3339 variants */
    check_time("2024-03-01T08:00:00.003Z", 1709280000003);
    check_time("2024-03-01T08:00:00z", 1709280000000);
    check_time("2024-03-01T08:00:00Z", 1709280000000);
    check_time("2024-03-01T16:00:00+08:00", 1709280000000);
    check_time("2024-03-01T16:00:00+0800", 1709280000000);
    check_time("2024-03-01t08:00:00.0+00:00", 1709280000000);
    check_time("2024-03-01 08:00:00", 1709280000000); /* no zone: UTC */
    check_time("2024-03-01T08:00:00.5", 1709280000500);
    check_time("2024-03-01T08:00:00.123456789Z", 1709280000123);
    check_time("2024-03-01T02:30:00-05:30", 1709280000000);
    check_time("2024-03-01T02:30:00.000-0530", 1709280000000);
    check_time("1970-01-01T00:00:00Z", 0);
    check_time("1970-01-01T00:00:00-00:01", 60000);
    check_time("1970-01-01T23:59:00+23:59", 0);
    check_time("1969-12-31T23:59:59.500Z", -500);
    check_time("2038-01-19T03:14:08Z", 2147483648000);
    /* leap years and month ends */
    check_time("2024-02-29T23:59:59.999Z", 1709251199999);
    check_time("2000-02-29T12:00:00Z", 951825600000);
    check_time("2100-02-28T23:59:59Z", 4107542399000);
    check_time("2100-03-01T00:00:00Z", 4107542400000);
    check_time("2016-12-31T23:59:60Z", 1483228800000); /* leap second */
    check_time("9999-12-31T23:59:59.999Z", 253402300799999);

    check_bad_time("");
    check_bad_time("2024-03-01");
    check_bad_time("2024-03-01T08:00");
    check_bad_time("2023-02-29T00:00:00Z"); /* not a leap year */
    check_bad_time("2100-02-29T00:00:00Z"); /* not a leap year */
    check_bad_time("2024-02-30T00:00:00Z");
    check_bad_time("2024-04-31T00:00:00Z");
    check_bad_time("2024-13-01T00:00:00Z");
    check_bad_time("2024-00-01T00:00:00Z");
    check_bad_time("2024-01-00T00:00:00Z");
    check_bad_time("2024-01-01T24:00:00Z");
    check_bad_time("2024-01-01T00:60:00Z");
    check_bad_time("2024-01-01T00:00:61Z");
    check_bad_time("2024-01-01X00:00:00Z");
    check_bad_time("2024/01/01T00:00:00Z");
    check_bad_time("2024-1-01T00:00:00Z");
    check_bad_time("2024-01-01T00:00:00.Z");
    check_bad_time("2024-01-01T00:00:00.");
    check_bad_time("2024-01-01T00:00:00+");
    check_bad_time("2024-01-01T00:00:00+08");
    check_bad_time("2024-01-01T00:00:00+8:00");
    check_bad_time("2024-01-01T00:00:00+08:0");
    check_bad_time("2024-01-01T00:00:00+24:00");
    check_bad_time("2024-01-01T00:00:00+08:60");
    check_bad_time("2024-01-01T00:00:00ZZ");
    check_bad_time("2024-01-01T00:00:00Z ");
    check_bad_time("2024-01-01T00:00:00+0000x");
    check_bad_time("+024-01-01T00:00:00Z");
    check_bad_time("2024-01-01T00:00:00 +0000");

    /* the length bounds the parse: no read past len */
    const char *s = "2024-03-01T08:00:00.003000+0000";
    int64_t ms;
    assert_true(event_parse_time(s, 19, &ms));
    assert_true(ms == 1709280000000);
    assert_false(event_parse_time(s, 18, &ms));
    assert_false(event_parse_time(s, 29, &ms)); /* "+00" */
    assert_false(event_parse_time(NULL, 0, &ms));
}

/* ---- value types -------------------------------------------------------------------------------
 */

static void test_types(void **state)
{
    (void)state;
    static const char *const paths[] = {"s",    "i",    "neg", "fl",  "e3",     "big",
                                        "huge", "u64",  "t",   "f",   "nul",    "obj",
                                        "arr",  "zero", "min", "exp", "absent", NULL};
    fx *f = fx_new(paths);
    assert_int_equal(dec(f, "{\"s\":\"hello\",\"i\":23,\"neg\":-42,\"fl\":3.5,\"e3\":1e3,"
                            "\"big\":123456789012345678901234567890,\"huge\":1e400,"
                            "\"u64\":18446744073709551615,\"t\":true,\"f\":false,\"nul\":null,"
                            "\"obj\":{\"x\":1},\"arr\":[1,\"two\"],\"zero\":-0,"
                            "\"min\":-9223372036854775808,\"exp\":2.5E-3 }"),
                     FH_OK);
    assert_str(get(f, "s"), "hello");

    const sv *v = get(f, "i");
    assert_int_num(v, 23);
    assert_raw(v, "23");
    v = get(f, "neg");
    assert_int_num(v, -42);
    assert_raw(v, "-42");
    v = get(f, "fl");
    assert_int_equal(v->type, SV_NUM);
    assert_false(v->is_int);
    assert_true(v->num == 3.5);
    assert_raw(v, "3.5");
    v = get(f, "e3"); /* an exponent makes it a float */
    assert_int_equal(v->type, SV_NUM);
    assert_false(v->is_int);
    assert_true(v->num == 1000.0);
    assert_raw(v, "1e3");
    v = get(f, "big"); /* beyond 64 bits: num only */
    assert_int_equal(v->type, SV_NUM);
    assert_false(v->is_int);
    assert_true(v->num > 1.2345e29 && v->num < 1.2346e29);
    assert_raw(v, "123456789012345678901234567890");
    v = get(f, "huge");
    assert_int_equal(v->type, SV_NUM);
    assert_false(v->is_int);
    assert_true(v->num > 1e308);
    assert_raw(v, "1e400");
    v = get(f, "u64"); /* uint64 beyond int64: num only */
    assert_int_equal(v->type, SV_NUM);
    assert_false(v->is_int);
    assert_true(v->num == 18446744073709551615.0);
    assert_raw(v, "18446744073709551615");
    v = get(f, "zero");
    assert_int_num(v, 0);
    assert_raw(v, "-0");
    v = get(f, "min");
    assert_int_num(v, INT64_MIN);
    v = get(f, "exp"); /* trailing space trimmed from the raw text */
    assert_int_equal(v->type, SV_NUM);
    assert_true(v->num == 2.5e-3);
    assert_raw(v, "2.5E-3");

    v = get(f, "t");
    assert_int_equal(v->type, SV_BOOL);
    assert_true(v->b);
    v = get(f, "f");
    assert_int_equal(v->type, SV_BOOL);
    assert_false(v->b);
    assert_int_equal(get(f, "nul")->type, SV_NULL);
    assert_int_equal(get(f, "obj")->type, SV_OBJECT);
    v = get(f, "arr");
    assert_int_equal(v->type, SV_LIST);
    assert_int_equal(v->len, 2);
    assert_int_num(&v->items[0], 1);
    assert_str(&v->items[1], "two");
    assert_int_equal(get(f, "absent")->type, SV_ABSENT);
    assert_int_equal(f->ev.ts_ms, 0);
    fx_free(f);
}

/* ---- paths -------------------------------------------------------------------------------------
 */

static void test_nested_and_flat(void **state)
{
    (void)state;
    static const char *const paths[] = {"geo.dest.country", "geo.src.asn", "tls", "tls.sni",
                                        "tls.ja3.hash",     "a.b",         NULL};
    fx *f = fx_new(paths);

    assert_int_equal(dec(f, "{\"geo\":{\"src\":{\"asn\":4134,\"country\":\"CN\"},"
                            "\"dest\":{\"country\":\"US\"}},\"tls\":{\"sni\":\"x.example\","
                            "\"ja3\":{\"hash\":\"abc\"}}}"),
                     FH_OK);
    assert_str(get(f, "geo.dest.country"), "US");
    assert_int_num(get(f, "geo.src.asn"), 4134);
    assert_int_equal(get(f, "tls")->type, SV_OBJECT);
    assert_str(get(f, "tls.sni"), "x.example");
    assert_str(get(f, "tls.ja3.hash"), "abc");

    /* flat dotted keys, at the top and partly nested */
    assert_int_equal(dec(f, "{\"geo.dest.country\":\"DE\",\"geo\":{\"src.asn\":7},"
                            "\"tls.ja3\":{\"hash\":\"def\"},\"tls\":\"scalar\"}"),
                     FH_OK);
    assert_str(get(f, "geo.dest.country"), "DE");
    assert_int_num(get(f, "geo.src.asn"), 7);
    assert_str(get(f, "tls.ja3.hash"), "def");
    assert_str(get(f, "tls"), "scalar");
    assert_int_equal(get(f, "tls.sni")->type, SV_ABSENT);

    /* both forms: the nested one wins, whatever the order */
    assert_int_equal(dec(f, "{\"geo.dest.country\":\"FLAT\",\"geo\":{\"dest\":{\"country\":"
                            "\"NESTED\"}}}"),
                     FH_OK);
    assert_str(get(f, "geo.dest.country"), "NESTED");
    assert_int_equal(dec(f, "{\"geo\":{\"dest\":{\"country\":\"NESTED\"}},"
                            "\"geo.dest.country\":\"FLAT\"}"),
                     FH_OK);
    assert_str(get(f, "geo.dest.country"), "NESTED");
    /* duplicates of one form: the first wins */
    assert_int_equal(dec(f, "{\"a\":{\"b\":1},\"a\":{\"b\":2},\"a.b\":3}"), FH_OK);
    assert_int_num(get(f, "a.b"), 1);
    assert_int_equal(dec(f, "{\"a.b\":3,\"a.b\":4}"), FH_OK);
    assert_int_num(get(f, "a.b"), 3);

    /* a scalar where an object was expected, an object where a scalar was */
    assert_int_equal(dec(f, "{\"geo\":\"none\",\"a\":{\"b\":{\"c\":1}}}"), FH_OK);
    assert_int_equal(get(f, "geo.dest.country")->type, SV_ABSENT);
    assert_int_equal(get(f, "a.b")->type, SV_OBJECT);
    /* near misses */
    assert_int_equal(dec(f, "{\"geo.dest\":{\"countr\":\"X\"},\"geo.dest.country.x\":1,"
                            "\"ge\":{\"dest\":{\"country\":\"Y\"}},\"geo..dest\":2,\"\":3}"),
                     FH_OK);
    assert_int_equal(get(f, "geo.dest.country")->type, SV_ABSENT);
    fx_free(f);
}

static void test_unreferenced(void **state)
{
    (void)state;
    static const char *const paths[] = {"dest_port", "http.url", NULL};
    fx *f = fx_new(paths);
    /* interned after the decoder was made: unknown to it, always absent */
    field_id late = field_intern(&f->ft, "src_ip");
    assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
    assert_int_equal(f->ev.nvals, 2);
    assert_int_num(get(f, "dest_port"), 80);
    assert_str(get(f, "http.url"), "/password-ok.php");
    assert_int_equal(event_get(&f->ev, late)->type, SV_ABSENT);
    assert_int_equal(event_get(&f->ev, 2)->type, SV_ABSENT);
    assert_int_equal(event_get(&f->ev, 1000)->type, SV_ABSENT);
    /* garbage values in unreferenced fields are only checked for structure */
    assert_int_equal(dec(f, "{\"junk\":{\"deep\":[[[[{\"x\":[1,2,{}]}]]]]},\"dest_port\":1,"
                            "\"http\":{\"other\":[1,2],\"url\":\"/\"}}"),
                     FH_OK);
    assert_int_num(get(f, "dest_port"), 1);
    assert_str(get(f, "http.url"), "/");
    fx_free(f);

    /* an empty table still validates and times events */
    static const char *const none[] = {NULL};
    f = fx_new(none);
    assert_int_equal(dec(f, FLOW_DNS), FH_OK);
    assert_int_equal(f->ev.nvals, 0);
    assert_true(f->ev.ts_ms == 1112172695437);
    assert_int_equal(dec(f, "{\"a\":1"), FH_ERR_PARSE);
    fx_free(f);
}

/* ---- lists -------------------------------------------------------------------------------------
 */

static void test_lists(void **state)
{
    (void)state;
    static const char *const paths[] = {"ndpi.risks", "vlan", "l1", "l2", "l3", NULL};
    fx *f = fx_new(paths);

    assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
    const sv *v = get(f, "ndpi.risks");
    assert_int_equal(v->type, SV_LIST);
    assert_int_equal(v->len, 1);
    assert_str(&v->items[0], "Clear-Text Credentials");

    assert_int_equal(dec(f, FLOW_DNS), FH_OK);
    v = get(f, "ndpi.risks");
    assert_int_equal(v->type, SV_LIST);
    assert_int_equal(v->len, 0);

    /* nested lists and objects inside a list are skipped; scalars of every type kept */
    assert_int_equal(dec(f, "{\"vlan\":[10,[1,2],{\"a\":[3]},20,\"x\",true,null,-1.5,[]]}"), FH_OK);
    v = get(f, "vlan");
    assert_int_equal(v->type, SV_LIST);
    assert_int_equal(v->len, 6);
    assert_int_num(&v->items[0], 10);
    assert_int_num(&v->items[1], 20);
    assert_str(&v->items[2], "x");
    assert_int_equal(v->items[3].type, SV_BOOL);
    assert_true(v->items[3].b);
    assert_int_equal(v->items[4].type, SV_NULL);
    assert_true(v->items[5].num == -1.5);
    assert_raw(&v->items[5], "-1.5");

    /* 2000 items: the first 1024 are kept and the truncation counted */
    size_t cap = 64 + 2000 * 8 * 3;
    char *json = malloc(cap);
    assert_non_null(json);
    size_t n = (size_t)snprintf(json, cap, "{\"l1\":[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(json + n, cap - n, "%s%d", i ? "," : "", i);
    n += (size_t)snprintf(json + n, cap - n, "]}");
    assert_int_equal(dec_n(f, json, n), FH_OK);
    v = get(f, "l1");
    assert_int_equal(v->type, SV_LIST);
    assert_int_equal(v->len, EVENT_LIST_MAX);
    for (int i = 0; i < EVENT_LIST_MAX; i++)
        assert_int_num(&v->items[i], i);
    event_decoder_stats st;
    event_decoder_get_stats(f->d, &st);
    assert_int_equal(st.lists_truncated, 1);

    /* three lists of 700 items: they span arena blocks and none overwrites another */
    n = 0;
    for (int l = 1; l <= 3; l++) {
        n += (size_t)snprintf(json + n, cap - n, "%s\"l%d\":[", l == 1 ? "{" : ",", l);
        for (int i = 0; i < 700; i++)
            n += (size_t)snprintf(json + n, cap - n, "%s%d", i ? "," : "", l * 1000 + i);
        n += (size_t)snprintf(json + n, cap - n, "]");
    }
    n += (size_t)snprintf(json + n, cap - n, "}");
    assert_int_equal(dec_n(f, json, n), FH_OK);
    for (int l = 1; l <= 3; l++) {
        char name[4] = {'l', (char)('0' + l), 0};
        v = get(f, name);
        assert_int_equal(v->type, SV_LIST);
        assert_int_equal(v->len, 700);
        for (int i = 0; i < 700; i++)
            assert_int_num(&v->items[i], l * 1000 + i);
    }
    event_decoder_get_stats(f->d, &st);
    assert_int_equal(st.lists_truncated, 1);
    free(json);
    fx_free(f);
}

/* ---- strings -----------------------------------------------------------------------------------
 */

static void test_strings(void **state)
{
    (void)state;
    static const char *const paths[] = {"cjk",       "emoji", "q",     "ctl", "raw",
                                        "dest_port", "k.x",   "empty", NULL};
    fx *f = fx_new(paths);
    assert_int_equal(dec(f,
                         "{\"cjk\":\"\\u4e2d\\u6587\",\"emoji\":\"a\\ud83d\\ude00b\","
                         "\"q\":\"say \\\"hi\\\" \\\\ back\\/slash\","
                         "\"ctl\":\"\\n\\t\\r\\b\\f\\u0000\",\"raw\":\"\xe4\xb8\xad\xe6\x96\x87\","
                         "\"d\\u0065st_port\":8080,\"k\":{\"\\u0078\":\"esc key\"},"
                         "\"empty\":\"\"}"),
                     FH_OK);
    assert_str(get(f, "cjk"), "\xe4\xb8\xad\xe6\x96\x87");
    assert_str(get(f, "emoji"), "a\xf0\x9f\x98\x80"
                                "b");
    assert_str(get(f, "q"), "say \"hi\" \\ back/slash");
    const sv *v = get(f, "ctl");
    assert_int_equal(v->type, SV_STR);
    assert_int_equal(v->len, 6);
    assert_memory_equal(v->s, "\n\t\r\b\f\0", 6);
    assert_str(get(f, "raw"), "\xe4\xb8\xad\xe6\x96\x87");
    assert_int_num(get(f, "dest_port"), 8080); /* escaped key */
    assert_str(get(f, "k.x"), "esc key");
    assert_str(get(f, "empty"), "");

    /* a lone surrogate is an error, as is an unknown escape */
    assert_int_equal(dec(f, "{\"cjk\":\"\\ud83d\"}"), FH_ERR_PARSE);
    assert_int_equal(dec(f, "{\"cjk\":\"\\x41\"}"), FH_ERR_PARSE);
    fx_free(f);
}

/* ---- timestamp in events -----------------------------------------------------------------------
 */

static void test_event_time(void **state)
{
    (void)state;
    static const char *const paths[] = {"dest_port", NULL};
    fx *f = fx_new(paths);
    assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
    assert_true(f->ev.ts_ms == 1381844057320);
    assert_int_equal(dec(f, "{\"timestamp\":\"2024-03-01T16:00:00+08:00\"}"), FH_OK);
    assert_true(f->ev.ts_ms == 1709280000000);
    assert_int_equal(dec(f, "{\"dest_port\":1}"), FH_OK);
    assert_true(f->ev.ts_ms == 0);
    assert_int_equal(dec(f, "{\"timestamp\":\"yesterday\"}"), FH_OK);
    assert_true(f->ev.ts_ms == 0);
    assert_int_equal(dec(f, "{\"timestamp\":1709280000}"), FH_OK);
    assert_true(f->ev.ts_ms == 0);
    /* only the top-level one counts */
    assert_int_equal(dec(f, "{\"x\":{\"timestamp\":\"2024-03-01T08:00:00Z\"}}"), FH_OK);
    assert_true(f->ev.ts_ms == 0);
    /* escaped strings are unescaped before parsing */
    assert_int_equal(dec(f, "{\"timestamp\":\"2024-03-01T08:00:00\\u002b0000\"}"), FH_OK);
    assert_true(f->ev.ts_ms == 1709280000000);
    fx_free(f);

    /* referenced by a rule too: both the slot and ts_ms */
    static const char *const paths2[] = {"timestamp", "flow.start", NULL};
    f = fx_new(paths2);
    assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
    assert_str(get(f, "timestamp"), "2013-10-15T13:34:17.320871+0000");
    assert_str(get(f, "flow.start"), "2013-10-15T13:34:10.222515+0000");
    assert_true(f->ev.ts_ms == 1381844057320);
    fx_free(f);
}

/* ---- malformed input ---------------------------------------------------------------------------
 */

static void expect_parse_error(fx *f, const char *json, size_t len, const char *reason)
{
    fh_err e = dec_n(f, json, len);
    if (e != FH_ERR_PARSE)
        fail_msg("%.*s: got %d, want FH_ERR_PARSE", (int)(len > 80 ? 80 : len), json, e);
    assert_true(f->err[0] != '\0');
    if (reason && !strstr(f->err, reason))
        fail_msg("%.*s: reason \"%s\" lacks \"%s\"", (int)(len > 80 ? 80 : len), json, f->err,
                 reason);
    assert_int_equal(f->ev.nvals, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const paths[] = {"a", "b.c", "s", NULL};
    fx *f = fx_new(paths);
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":}",
        "{\"x\":}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":[1,}",
        "{\"a\":[1,2}",
        "{\"b\":{\"c\":}}",
        "{\"s\":\"unterminated}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1}{\"a\":2}",
        "{\"a\":1},",
        "{\"s\":\"\xff\"}",         /* invalid UTF-8 */
        "{\"s\":\"\xc3\x28\"}",     /* bad continuation */
        "{\"s\":\"\xed\xa0\x80\"}", /* encoded surrogate */
        "{\"x\":\"\xc0\xaf\"}",     /* overlong, in an unreferenced field */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_parse_error(f, bad[i], strlen(bad[i]), NULL);
    expect_parse_error(f, "{\"a\":}", 6, "malformed JSON: ");
    expect_parse_error(f, "{\"s\":\"\xff\"}", 8, "UTF8_ERROR");
    static const char *const notobj[] = {"[]", "[{\"a\":1}]", "1", "\"a\"", "null", "true"};
    for (size_t i = 0; i < sizeof(notobj) / sizeof(notobj[0]); i++)
        expect_parse_error(f, notobj[i], strlen(notobj[i]), "not a JSON object");
    /* a NUL byte inside the text is not the end */
    expect_parse_error(f, "{\"a\":1}\0garbage", 15, NULL);

    /* every truncation of a real event */
    size_t len = strlen(FLOW_HTTP_AUTH);
    for (size_t n = 0; n < len; n++)
        expect_parse_error(f, FLOW_HTTP_AUTH, n, NULL);

    /* 5 MB: over EVENT_MAX_BYTES, refused before parsing */
    size_t big = 5u << 20;
    char *json = malloc(big);
    assert_non_null(json);
    memset(json, ' ', big);
    memcpy(json, "{\"s\":\"", 6);
    memset(json + 6, 'x', big - 8);
    memcpy(json + big - 2, "\"}", 2);
    expect_parse_error(f, json, big, "too large");
    /* just under the limit: accepted, the buffer grows to fit */
    size_t under = EVENT_MAX_BYTES - 16;
    memcpy(json + under - 2, "\"}", 2);
    assert_int_equal(dec_n(f, json, under), FH_OK);
    assert_int_equal(get(f, "s")->len, under - 8);
    /* deeply nested arrays in a skipped field */
    size_t depth = 100000;
    memcpy(json, "{\"x\":", 5);
    memset(json + 5, '[', depth);
    memset(json + 5 + depth, ']', depth);
    memcpy(json + 5 + 2 * depth, ",\"a\":1}", 7);
    fh_err e = dec_n(f, json, 5 + 2 * depth + 7);
    assert_true(e == FH_OK || e == FH_ERR_PARSE);
    free(json);

    /* the decoder is still good afterwards, and counted everything */
    assert_int_equal(dec(f, "{\"a\":5,\"b\":{\"c\":\"ok\"}}"), FH_OK);
    assert_int_num(get(f, "a"), 5);
    assert_str(get(f, "b.c"), "ok");
    event_decoder_stats st;
    event_decoder_get_stats(f->d, &st);
    assert_true(st.errors >= len + sizeof(bad) / sizeof(bad[0]));
    assert_true(st.decoded >= 2);
    fx_free(f);
}

/* Random byte flips of a real event: must not crash (either outcome is fine). */
static void test_mutations(void **state)
{
    (void)state;
    fx *f = fx_new(FLOW_FIELDS);
    size_t len = strlen(FLOW_HTTP_AUTH);
    char *buf = malloc(len);
    assert_non_null(buf);
    uint32_t seed = 12345;
    static const char pick[] = "{}[]\",:\\0123456789.eE-+truefalsnul \x80\xff\xc3";
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, FLOW_HTTP_AUTH, len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            buf[pos] = pick[(seed >> 8) % (sizeof(pick) - 1)];
        }
        fh_err e = dec_n(f, buf, len);
        assert_true(e == FH_OK || e == FH_ERR_PARSE);
        if (e == FH_OK) { /* views stay inside the decoder's memory and are readable */
            for (uint32_t id = 0; id < f->ev.nvals; id++) {
                const sv *v = event_get(&f->ev, id);
                if (v->type == SV_STR && v->len)
                    assert_true(memchr(v->s, 0, v->len) == NULL || v->len > 0);
            }
        }
    }
    free(buf);
    fx_free(f);
}

/* ---- reuse -------------------------------------------------------------------------------------
 */

static void test_reuse(void **state)
{
    (void)state;
    fx *f = fx_new(FLOW_FIELDS);
    field_id url = field_lookup(&f->ft, "http.url");
    field_id rrname = field_lookup(&f->ft, "dns.rrname");
    field_id risks = field_lookup(&f->ft, "ndpi.risks");
    field_id app = field_lookup(&f->ft, "app_proto");

    for (int round = 0; round < 200; round++) {
        assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
        assert_str(event_get(&f->ev, url), "/password-ok.php");
        assert_int_equal(event_get(&f->ev, rrname)->type, SV_ABSENT);
        assert_int_equal(event_get(&f->ev, risks)->len, 1);
        assert_true(f->ev.ts_ms == 1381844057320);

        assert_int_equal(dec(f, FLOW_DNS), FH_OK);
        assert_int_equal(event_get(&f->ev, url)->type, SV_ABSENT);
        assert_str(event_get(&f->ev, rrname), "www.l.google.com");
        assert_int_equal(event_get(&f->ev, risks)->len, 0);

        assert_int_equal(dec(f, FLOW_TLS), FH_OK); /* no app_proto */
        assert_int_equal(event_get(&f->ev, app)->type, SV_ABSENT);
        assert_int_equal(event_get(&f->ev, rrname)->type, SV_ABSENT);
        assert_int_equal(event_get(&f->ev, url)->type, SV_ABSENT);
        assert_true(f->ev.ts_ms == 1581109434258);

        assert_int_equal(dec(f, "{\"http\":{\"url\":7}}"), FH_OK);
        assert_int_num(event_get(&f->ev, url), 7);
        assert_int_equal(event_get(&f->ev, risks)->type, SV_ABSENT);
        assert_true(f->ev.ts_ms == 0);

        assert_int_equal(dec(f, "{\"http\":{\"url\":"), FH_ERR_PARSE);
        assert_int_equal(event_get(&f->ev, url)->type, SV_ABSENT);
    }
    /* an absent field in every slot after an empty event */
    assert_int_equal(dec(f, FLOW_HTTP_AUTH), FH_OK);
    assert_int_equal(dec(f, "{}"), FH_OK);
    for (uint32_t id = 0; id < f->ft.n; id++)
        assert_int_equal(event_get(&f->ev, id)->type, SV_ABSENT);

    /* enrichment writes into the slots; the next event does not see them */
    field_id zone = field_lookup(&f->ft, "geo.dest.country");
    assert_int_equal(dec(f, FLOW_DNS), FH_OK);
    sv *slots = event_decoder_slots(f->d);
    slots[zone] = (sv){.type = SV_STR, .s = "dmz", .len = 3};
    assert_str(event_get(&f->ev, zone), "dmz");
    assert_int_equal(dec(f, FLOW_DNS), FH_OK);
    assert_int_equal(event_get(&f->ev, zone)->type, SV_ABSENT);
    assert_str(event_get(&f->ev, rrname), "www.l.google.com");
    fx_free(f);
}

static void test_raw(void **state)
{
    (void)state;
    static const char *const paths[] = {"s", NULL};
    fx *f = fx_new(paths);
    char buf[64];
    snprintf(buf, sizeof(buf), "{\"s\":\"keyword here\"}\n");
    size_t len = strlen(buf);
    assert_int_equal(dec_n(f, buf, len), FH_OK);
    memset(buf, 'Z', sizeof(buf)); /* the caller may reuse its buffer at once */
    assert_int_equal(f->ev.raw_len, len);
    assert_memory_equal(f->ev.raw, "{\"s\":\"keyword here\"}\n", len);
    assert_str(get(f, "s"), "keyword here");
    assert_true(get(f, "s")->s >= f->ev.raw && get(f, "s")->s < f->ev.raw + len);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_table),  cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_types),        cmocka_unit_test(test_nested_and_flat),
        cmocka_unit_test(test_unreferenced), cmocka_unit_test(test_lists),
        cmocka_unit_test(test_strings),      cmocka_unit_test(test_event_time),
        cmocka_unit_test(test_malformed),    cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_reuse),        cmocka_unit_test(test_raw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
