/*
 * test_flow.c - the flow table: client direction, TCP states, per-class
 * timeouts on the sensor clock, port reuse, eviction by count and memory,
 * periodic updates, VLAN keys, ICMP, and deterministic flushing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/flow.h"

#define SEC 1000000ULL

/* Every end/update callback is recorded here. */
typedef struct {
    int n;
    flow_reason reason[64];
    uint64_t pkts_ts[64], pkts_tc[64];
    uint16_t cli_port[64];
    uint64_t flow_id[64];
} record;

static void on_end(flow *f, flow_reason reason, void *arg)
{
    record *r = arg;

    if (r->n < 64) {
        r->reason[r->n] = reason;
        r->pkts_ts[r->n] = f->pkts[FLOW_TOSERVER];
        r->pkts_tc[r->n] = f->pkts[FLOW_TOCLIENT];
        r->cli_port[r->n] = f->cli_port;
        r->flow_id[r->n] = f->flow_id;
    }
    r->n++;
}

static decode_pkt pkt(const char *src, uint16_t sp, const char *dst, uint16_t dp, uint8_t proto,
                      uint8_t flags, uint64_t ts)
{
    decode_pkt p;

    memset(&p, 0, sizeof(p));
    p.ip_version = 4;
    inet_pton(AF_INET, src, p.src);
    inet_pton(AF_INET, dst, p.dst);
    p.sport = sp;
    p.dport = dp;
    p.l4_proto = proto;
    p.tcp_flags = flags;
    p.ts_us = ts;
    p.ip_bytes = 60;
    return p;
}

static void table(flow_table *t, record *r, void (*tweak)(flow_config *))
{
    flow_config cfg;

    flow_config_defaults(&cfg);
    if (tweak)
        tweak(&cfg);
    memset(r, 0, sizeof(*r));
    assert_int_equal(flow_table_init(t, &cfg, on_end, r), 0);
}

/* Feeds a packet at clock = its timestamp, expiring first as the pipeline does. */
static flow *feed(flow_table *t, decode_pkt p, int *dir)
{
    bool created;
    int d;

    flow_expire(t, p.ts_us);
    return flow_packet(t, &p, p.ts_us, dir ? dir : &d, &created);
}

static void test_tcp_handshake_direction(void **state)
{
    flow_table t;
    record r;
    int dir;
    flow *f;

    (void)state;
    table(&t, &r, NULL);
    f = feed(&t, pkt("10.0.0.1", 40000, "10.0.0.2", 80, IPPROTO_TCP, 0x02, 1 * SEC), &dir);
    assert_int_equal(dir, FLOW_TOSERVER);
    assert_int_equal(f->tcp_state, TCP_ST_SYN_SENT);
    f = feed(&t, pkt("10.0.0.2", 80, "10.0.0.1", 40000, IPPROTO_TCP, 0x12, 1 * SEC + 10), &dir);
    assert_int_equal(dir, FLOW_TOCLIENT);
    assert_int_equal(f->tcp_state, TCP_ST_SYN_RECV);
    f = feed(&t, pkt("10.0.0.1", 40000, "10.0.0.2", 80, IPPROTO_TCP, 0x10, 1 * SEC + 20), &dir);
    assert_int_equal(f->tcp_state, TCP_ST_ESTABLISHED);
    assert_int_equal(f->tclass, FLOW_TC_TCP_ESTABLISHED);
    assert_int_equal(f->cli_port, 40000);
    assert_int_equal(f->srv_port, 80);
    assert_int_equal(f->pkts[FLOW_TOSERVER], 2);
    assert_int_equal(f->pkts[FLOW_TOCLIENT], 1);
    assert_int_equal(f->bytes[FLOW_TOSERVER], 120);
    assert_int_equal(t.stats.created, 1);
    assert_int_equal(t.stats.active, 1);
    flow_table_free(&t);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], FLOW_REASON_SHUTDOWN);
}

static void test_direction_without_syn(void **state)
{
    flow_table t;
    record r;
    flow *f;

    (void)state;
    table(&t, &r, NULL);
    /* First packet is the SYN+ACK: the client is its receiver. */
    f = feed(&t, pkt("10.0.0.2", 443, "10.0.0.1", 50000, IPPROTO_TCP, 0x12, SEC), NULL);
    assert_int_equal(f->cli_port, 50000);
    /* A DNS answer seen before its query: the server is the well-known port. */
    f = feed(&t, pkt("10.0.0.53", 53, "10.0.0.1", 33333, IPPROTO_UDP, 0, SEC), NULL);
    assert_int_equal(f->cli_port, 33333);
    assert_int_equal(f->srv_port, 53);
    /* Two ephemeral ports: first packet's sender is the client. */
    f = feed(&t, pkt("10.0.0.7", 40001, "10.0.0.8", 40002, IPPROTO_UDP, 0, SEC), NULL);
    assert_int_equal(f->cli_port, 40001);
    flow_table_free(&t);
}

static void test_udp_timeout(void **state)
{
    flow_table t;
    record r;

    (void)state;
    table(&t, &r, NULL);
    feed(&t, pkt("10.0.0.1", 5000, "10.0.0.2", 53, IPPROTO_UDP, 0, 100 * SEC), NULL);
    flow_expire(&t, 159 * SEC);
    assert_int_equal(r.n, 0); /* 59 s idle: still alive */
    flow_expire(&t, 160 * SEC);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], FLOW_REASON_TIMEOUT);
    assert_int_equal(t.stats.active, 0);
    /* The same 5-tuple again is a new flow with a new id. */
    feed(&t, pkt("10.0.0.1", 5000, "10.0.0.2", 53, IPPROTO_UDP, 0, 200 * SEC), NULL);
    flow_table_free(&t);
    assert_int_equal(r.n, 2);
    assert_int_not_equal(r.flow_id[0], r.flow_id[1]);
}

static void test_tcp_close_and_reset(void **state)
{
    flow_table t;
    record r;
    flow *f;

    (void)state;
    table(&t, &r, NULL);
    feed(&t, pkt("10.0.0.1", 1111, "10.0.0.2", 22, IPPROTO_TCP, 0x02, 10 * SEC), NULL);
    feed(&t, pkt("10.0.0.2", 22, "10.0.0.1", 1111, IPPROTO_TCP, 0x12, 10 * SEC), NULL);
    feed(&t, pkt("10.0.0.1", 1111, "10.0.0.2", 22, IPPROTO_TCP, 0x11, 11 * SEC), NULL);
    f = feed(&t, pkt("10.0.0.2", 22, "10.0.0.1", 1111, IPPROTO_TCP, 0x11, 11 * SEC), NULL);
    assert_int_equal(f->tcp_state, TCP_ST_CLOSED);
    assert_int_equal(f->tclass, FLOW_TC_TCP_CLOSED);
    flow_expire(&t, 20 * SEC);
    assert_int_equal(r.n, 0);
    flow_expire(&t, 21 * SEC); /* tcp_closed timeout: 10 s */
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], FLOW_REASON_CLOSED);

    /* RST from the server. */
    feed(&t, pkt("10.0.0.1", 2222, "10.0.0.2", 23, IPPROTO_TCP, 0x02, 30 * SEC), NULL);
    f = feed(&t, pkt("10.0.0.2", 23, "10.0.0.1", 2222, IPPROTO_TCP, 0x14, 30 * SEC), NULL);
    assert_int_equal(f->tcp_state, TCP_ST_RESET);
    /* A flush after the reset reports the connection as closed, not shutdown. */
    flow_flush(&t);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.reason[1], FLOW_REASON_CLOSED);
    flow_table_free(&t);
}

static void test_port_reuse(void **state)
{
    flow_table t;
    record r;

    (void)state;
    table(&t, &r, NULL);
    feed(&t, pkt("10.0.0.1", 3333, "10.0.0.2", 80, IPPROTO_TCP, 0x02, SEC), NULL);
    feed(&t, pkt("10.0.0.2", 80, "10.0.0.1", 3333, IPPROTO_TCP, 0x14, SEC), NULL); /* RST */
    /* Same ports, new SYN one second later: the old connection ends, a new one starts. */
    feed(&t, pkt("10.0.0.1", 3333, "10.0.0.2", 80, IPPROTO_TCP, 0x02, 2 * SEC), NULL);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], FLOW_REASON_CLOSED);
    assert_int_equal(t.stats.created, 2);
    assert_int_equal(t.stats.active, 1);
    flow_table_free(&t);
}

static void max3(flow_config *c)
{
    c->max_flows = 3;
}

static void test_eviction_by_count(void **state)
{
    flow_table t;
    record r;

    (void)state;
    table(&t, &r, max3);
    for (int i = 0; i < 5; i++)
        feed(&t,
             pkt("10.0.0.1", (uint16_t)(10000 + i), "10.0.0.2", 53, IPPROTO_UDP, 0,
                 (uint64_t)(i + 1) * SEC),
             NULL);
    assert_int_equal(t.stats.active, 3);
    assert_int_equal(t.stats.evicted, 2);
    assert_int_equal(r.n, 2);
    /* The least recently active go first. */
    assert_int_equal(r.reason[0], FLOW_REASON_FORCED);
    assert_int_equal(r.cli_port[0], 10000);
    assert_int_equal(r.cli_port[1], 10001);
    assert_int_equal(t.stats.by_reason[FLOW_REASON_FORCED], 2);
    flow_table_free(&t);
}

static void max_10000(flow_config *c)
{
    c->max_flows = 10000;
}

/* The bucket array starts small and doubles as flows arrive, up to one bucket per allowed
 * flow; every flow is still found, in either direction, after each doubling. */
static void test_buckets_grow(void **state)
{
    flow_table t;
    record r;
    flow *seen[10000];
    char src[32], dst[32];
    int dir;

    (void)state;
    table(&t, &r, max_10000);
    assert_int_equal(t.nbuckets, FLOW_BUCKETS_MIN);
    assert_int_equal(t.max_buckets, 16384);
    for (int i = 0; i < 10000; i++) {
        snprintf(src, sizeof(src), "10.%d.%d.1", i / 250, i % 250);
        seen[i] = feed(&t, pkt(src, 40000, "192.0.2.1", 80, IPPROTO_TCP, 0x02, SEC), NULL);
        assert_non_null(seen[i]);
        if (i + 1 == FLOW_BUCKETS_MIN)
            assert_int_equal(t.nbuckets, FLOW_BUCKETS_MIN); /* not more flows than buckets yet */
    }
    assert_int_equal(t.stats.active, 10000);
    assert_int_equal(t.nbuckets, 16384); /* 4096 -> 8192 -> 16384 */
    for (int i = 0; i < 10000; i++) {
        snprintf(src, sizeof(src), "10.%d.%d.1", i / 250, i % 250);
        assert_ptr_equal(feed(&t, pkt("192.0.2.1", 80, src, 40000, IPPROTO_TCP, 0x12, SEC), &dir),
                         seen[i]);
        assert_int_equal(dir, FLOW_TOCLIENT);
    }
    assert_int_equal(t.stats.created, 10000);
    snprintf(dst, sizeof(dst), "10.%d.%d.1", 9999 / 250, 9999 % 250);
    /* one more flow than allowed: an eviction, and the array stays at max_buckets */
    feed(&t, pkt("10.200.0.1", 40000, "192.0.2.1", 80, IPPROTO_TCP, 0x02, 2 * SEC), NULL);
    assert_int_equal(t.stats.evicted, 1);
    assert_int_equal(t.nbuckets, 16384);
    assert_non_null(feed(&t, pkt(dst, 40000, "192.0.2.1", 80, IPPROTO_TCP, 0x10, 2 * SEC), NULL));
    assert_int_equal(t.stats.created, 10001);
    flow_table_free(&t);
}

static void memcap_small(flow_config *c)
{
    c->memcap = 4 * sizeof(flow) + 100;
}

static void test_eviction_by_memory(void **state)
{
    flow_table t;
    record r;
    flow *f;

    (void)state;
    table(&t, &r, memcap_small);
    for (int i = 0; i < 10; i++) {
        f = feed(&t,
                 pkt("10.0.1.1", (uint16_t)(20000 + i), "10.0.1.2", 80, IPPROTO_UDP, 0,
                     (uint64_t)(i + 1) * SEC),
                 NULL);
        flow_set_extra_mem(&t, f, 50); /* e.g. DPI state */
        assert_true(t.mem_used <= t.memcap + 50);
    }
    assert_true(t.stats.evicted >= 6);
    flow_table_free(&t);
    assert_int_equal(t.mem_used, 0);
}

static void update_60(flow_config *c)
{
    c->update_interval_s = 60;
}

static void test_periodic_update(void **state)
{
    flow_table t;
    record r;
    flow *f;

    (void)state;
    table(&t, &r, update_60);
    for (int s = 0; s <= 150; s += 10) {
        f = feed(&t, pkt("10.0.0.1", 4444, "10.0.0.2", 443, IPPROTO_UDP, 0, (uint64_t)s * SEC),
                 NULL);
        flow_maybe_update(&t, f, (uint64_t)s * SEC);
    }
    /* Updates at 60 s and 120 s of clock, then the end. */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.reason[0], FLOW_REASON_UPDATE);
    assert_int_equal(r.pkts_ts[0], 7);
    assert_int_equal(r.reason[1], FLOW_REASON_UPDATE);
    flow_table_free(&t);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.reason[2], FLOW_REASON_SHUTDOWN);
    assert_int_equal(r.flow_id[0], r.flow_id[2]);
}

/*
 * The table keeps time by the clock its caller passes, never by a packet's own
 * stamp: a flow created by a packet stamped 1970 under a clock of 1000 s was
 * touched at 1000 s, so it is not expired as 995 s idle. (That the pipeline's
 * clock never goes back is pipeline.c's advance_clock().)
 */
static void test_times_from_callers_clock(void **state)
{
    flow_table t;
    record r;
    bool created;
    int dir;
    decode_pkt p;
    flow *f;

    (void)state;
    table(&t, &r, NULL);
    p = pkt("10.0.0.1", 1, "10.0.0.2", 2, IPPROTO_UDP, 0, 1000 * SEC);
    flow_packet(&t, &p, 1000 * SEC, &dir, &created);
    p = pkt("10.0.0.3", 1, "10.0.0.4", 2, IPPROTO_UDP, 0, 5 * SEC);
    f = flow_packet(&t, &p, 1000 * SEC, &dir, &created);
    assert_true(created);
    assert_int_equal(f->touch, 1000 * SEC);
    flow_expire(&t, 1030 * SEC);
    assert_int_equal(r.n, 0);
    /* both end together once the clock passes their idle timeout from 1000 s */
    flow_expire(&t, 1000 * SEC + 3600 * SEC);
    assert_int_equal(r.n, 2);
    flow_table_free(&t);
}

static void test_vlan_and_icmp_keys(void **state)
{
    flow_table t;
    record r;
    decode_pkt a, b;
    int dir;

    (void)state;
    table(&t, &r, NULL);
    a = pkt("10.0.0.1", 5, "10.0.0.2", 6, IPPROTO_UDP, 0, SEC);
    b = a;
    a.vlan_count = 1;
    a.vlan[0] = 10;
    b.vlan_count = 1;
    b.vlan[0] = 20;
    feed(&t, a, NULL);
    feed(&t, b, NULL);
    assert_int_equal(t.stats.created, 2);
    /* ICMP echo and reply: one flow, ports 0. */
    a = pkt("10.0.0.1", 0, "10.0.0.2", 0, IPPROTO_ICMP, 0, SEC);
    a.icmp_type = 8;
    b = pkt("10.0.0.2", 0, "10.0.0.1", 0, IPPROTO_ICMP, 0, SEC);
    b.icmp_type = 0;
    feed(&t, a, NULL);
    feed(&t, b, &dir);
    assert_int_equal(dir, FLOW_TOCLIENT);
    assert_int_equal(t.stats.created, 3);
    flow_table_free(&t);
}

static void test_flush_order(void **state)
{
    flow_table t;
    record r;

    (void)state;
    table(&t, &r, NULL);
    feed(&t, pkt("10.0.0.1", 1, "10.0.0.2", 80, IPPROTO_TCP, 0x02, 3 * SEC), NULL);
    feed(&t, pkt("10.0.0.1", 2, "10.0.0.2", 53, IPPROTO_UDP, 0, 1 * SEC), NULL);
    feed(&t, pkt("10.0.0.1", 0, "10.0.0.2", 0, IPPROTO_GRE, 0, 2 * SEC), NULL);
    flow_flush(&t);
    /* Oldest activity first, across all timeout classes. */
    assert_int_equal(r.n, 3);
    assert_int_equal(r.cli_port[0], 2);
    assert_int_equal(r.cli_port[1], 0); /* GRE: no ports */
    assert_int_equal(r.cli_port[2], 1);
    flow_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_handshake_direction),
        cmocka_unit_test(test_direction_without_syn),
        cmocka_unit_test(test_udp_timeout),
        cmocka_unit_test(test_tcp_close_and_reset),
        cmocka_unit_test(test_port_reuse),
        cmocka_unit_test(test_eviction_by_count),
        cmocka_unit_test(test_eviction_by_memory),
        cmocka_unit_test(test_buckets_grow),
        cmocka_unit_test(test_periodic_update),
        cmocka_unit_test(test_times_from_callers_clock),
        cmocka_unit_test(test_vlan_and_icmp_keys),
        cmocka_unit_test(test_flush_order),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
