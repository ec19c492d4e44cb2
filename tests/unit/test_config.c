/*
 * test_config.c - configuration: defaults, the YAML loader with every option
 * type, and an exact error message (file, line, reason) for each mistake a
 * user can make.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sensor/config.h"

static char path[64];

static const char *write_yaml(const char *text)
{
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/fh-test-config-%d.yaml", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void expect_error(const char *yaml, const char *want_suffix)
{
    sensor_config c;
    char err[512] = "", want[512];

    config_defaults(&c);
    write_yaml(yaml);
    assert_int_not_equal(config_load_file(&c, path, err, sizeof(err)), FH_OK);
    snprintf(want, sizeof(want), "%s:%s", path, want_suffix);
    if (strcmp(err, want) != 0)
        fail_msg("error was  '%s'\nexpected   '%s'", err, want);
    config_free(&c);
    unlink(path);
}

static void test_defaults(void **state)
{
    sensor_config c;

    (void)state;
    config_defaults(&c);
    assert_string_equal(c.sensor_id, "fenghuo-sensor");
    assert_int_equal(c.flow.timeout_s[FLOW_TC_UDP], 60);
    assert_int_equal(c.flow.update_interval_s, 300);
    assert_true(c.dpi.enabled);
    assert_int_equal(c.dpi.max_tcp_packets, 80);
    assert_int_equal(c.community_id_seed, 0);
    assert_null(c.geoip_country);
    config_free(&c);
}

static void test_load_all_types(void **state)
{
    sensor_config c;
    char err[512] = "";

    (void)state;
    config_defaults(&c);
    write_yaml("# comment\n"
               "sensor:\n"
               "  id: gov-dmz-01\n"
               "  segment: \"政务外网 DMZ\"\n"
               "flow:\n"
               "  max_flows: 1000\n"
               "  memcap: 512m\n"
               "  update_interval: 5m\n"
               "  timeouts:\n"
               "    udp: 30s\n"
               "    tcp_established: 1h\n"
               "dpi:\n"
               "  enabled: no\n"
               "community_id:\n"
               "  seed: 7\n"
               "capture:\n"
               "  promisc: false\n"
               "  bpf: \"not port 22\"\n"
               "geoip:\n"
               "  country: /x/country.mmdb\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), FH_OK);
    assert_string_equal(c.sensor_id, "gov-dmz-01");
    assert_string_equal(c.segment, "政务外网 DMZ");
    assert_int_equal(c.flow.max_flows, 1000);
    assert_int_equal(c.flow.memcap, (size_t)512 << 20);
    assert_int_equal(c.flow.update_interval_s, 300);
    assert_int_equal(c.flow.timeout_s[FLOW_TC_UDP], 30);
    assert_int_equal(c.flow.timeout_s[FLOW_TC_TCP_ESTABLISHED], 3600);
    assert_false(c.dpi.enabled);
    assert_int_equal(c.community_id_seed, 7);
    assert_false(c.promisc);
    assert_string_equal(c.bpf, "not port 22");
    assert_string_equal(c.geoip_country, "/x/country.mmdb");
    /* Command-line overrides go through the same table. */
    assert_int_equal(config_set(&c, "flow.max_flows", "2000", err, sizeof(err)), FH_OK);
    assert_int_equal(c.flow.max_flows, 2000);
    assert_int_not_equal(config_set(&c, "flow.max_flow", "1", err, sizeof(err)), FH_OK);
    assert_string_equal(err, "unknown option 'flow.max_flow' (see --help-config)");
    config_free(&c);
    unlink(path);
}

/* capture.interfaces is a YAML list (joined with commas); run.user/run.group are strings. */
static void test_interfaces_list(void **state)
{
    sensor_config c;
    char err[512] = "";

    (void)state;
    config_defaults(&c);
    write_yaml("capture:\n"
               "  interfaces: [eth1, eth2]\n"
               "run:\n"
               "  user: nobody\n"
               "  group: nogroup\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), FH_OK);
    assert_string_equal(c.interface, "eth1,eth2");
    assert_string_equal(c.run_user, "nobody");
    assert_string_equal(c.run_group, "nogroup");
    write_yaml("capture:\n  interfaces:\n    - eth3\n  snaplen: 1500\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), FH_OK);
    assert_string_equal(c.interface, "eth3");
    assert_int_equal(c.snaplen, 1500);
    config_free(&c);
    expect_error("capture:\n  interfaces: []\n", " option 'capture.interfaces': empty list");
    expect_error("capture:\n  interfaces: [a, {b: 1}]\n",
                 "2: option 'capture.interfaces': expected a list of names");
    expect_error("capture:\n  bpf: [a]\n",
                 "2: option 'capture.bpf' takes a single value, not a list");
    unlink(path);
}

static void test_empty_file(void **state)
{
    sensor_config c;
    char err[256] = "";

    (void)state;
    config_defaults(&c);
    write_yaml("# nothing but a comment\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), FH_OK);
    config_free(&c);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("sensor:\n  id: a\nflow:\n  timeout: 5\n", "4: unknown option 'flow.timeout'");
    expect_error("flow:\n  max_flows: many\n",
                 "2: option 'flow.max_flows': expected a whole number, got 'many'");
    expect_error("flow:\n  max_flows: -5\n",
                 "2: option 'flow.max_flows': expected a whole number, got '-5'");
    expect_error("flow:\n  memcap: 12 parsecs\n",
                 "2: option 'flow.memcap': expected a size such as 512m or 2g, got '12 parsecs'");
    expect_error("dpi:\n  enabled: maybe\n",
                 "2: option 'dpi.enabled': expected true or false, got 'maybe'");
    expect_error("community_id:\n  seed: 70000\n",
                 "2: option 'community_id.seed': expected a whole number from 0 to 65535, got "
                 "'70000'");
    expect_error("flow:\n  timeouts:\n    udp: soon\n",
                 "3: option 'flow.timeouts.udp': expected a whole number of seconds (or with "
                 "s/m/h), got 'soon'");
    expect_error("sensor:\n  id: [a, b]\n",
                 "2: option 'sensor.id' takes a single value, not a list");
    expect_error("sensor:\n  id: a\n   segment: b\n",
                 "3: YAML syntax error: mapping values are not allowed in this context");
    expect_error("just a string\n", "1: expected a mapping of options");
    expect_error("flow:\n  max_flows:\n", "2: option 'flow.max_flows' has no value");
    expect_error("nosuch:\n", "1: unknown option 'nosuch'");
}

static void test_missing_file(void **state)
{
    sensor_config c;
    char err[512] = "";

    (void)state;
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/fenghuo.yaml", err, sizeof(err)),
                     FH_ERR_IO);
    assert_string_equal(err,
                        "/nonexistent/fenghuo.yaml: cannot open configuration: No such file or "
                        "directory");
    config_free(&c);
}

/* The shipped example configuration loads without error. */
static void test_packaged_config(void **state)
{
    sensor_config c;
    char err[512] = "";

    (void)state;
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "packaging/fenghuo-sensor.yaml", err, sizeof(err)),
                     FH_OK);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9101");
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_load_all_types),
        cmocka_unit_test(test_interfaces_list), cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_packaged_config),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
