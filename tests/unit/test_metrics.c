/*
 * test_metrics.c - the sensor's /metrics text rendered from a stats event
 * (sensor/metrics.c): per-interface capture counters, every decode reason (zeros
 * too; reason names with dots are names, not paths), application protocols,
 * Kafka errors by kind, spool depth; label values escaped; a non-stats event
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/decode.h"
#include "../../sensor/metrics.h"

static char *render(const char *json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(sensor_metrics_render(json, strlen(json), f), FH_OK);
    fclose(f);
    return buf;
}

static void has(const char *text, const char *line)
{
    char want[512];

    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(text, want)) {
        fprintf(stderr, "missing: %s\nin:\n%s", line, text);
        fail();
    }
}

static void test_live_stats(void **state)
{
    char reason[64], line[1024];
    char *t;

    (void)state;
    snprintf(reason, sizeof(reason), "%s", decode_reason_name((decode_reason)0));
    snprintf(line, sizeof(line),
             "{\"timestamp\":\"2026-03-02T02:00:00.000000+0000\",\"event_type\":\"stats\","
             "\"sensor\":{\"id\":\"s\\\"1\"},\"stats\":{\"capture\":{\"interfaces\":["
             "{\"name\":\"eth0\",\"packets\":10,\"bytes\":900,\"kernel_drops\":2,\"ifdrops\":1}]},"
             "\"decoder\":{\"errors\":{\"%s\":7}},\"flow\":{\"created\":5,\"active\":3},"
             "\"app_proto\":{\"dns\":4,\"tls\":1},\"kafka\":{\"delivered\":9,\"failed\":1,"
             "\"queue_full\":0,\"dropped\":0,\"spool\":{\"pending\":12,\"bytes\":3456}}}}",
             reason);
    t = render(line);
    has(t, "fenghuo_sensor_info{sensor=\"s\\\"1\"} 1");
    has(t, "fenghuo_sensor_capture_packets_total{interface=\"eth0\"} 10");
    has(t, "fenghuo_sensor_capture_bytes_total{interface=\"eth0\"} 900");
    has(t, "fenghuo_sensor_capture_kernel_drops_total{interface=\"eth0\",kind=\"kernel\"} 2");
    has(t, "fenghuo_sensor_capture_kernel_drops_total{interface=\"eth0\",kind=\"interface\"} 1");
    snprintf(line, sizeof(line), "fenghuo_sensor_decode_errors_total{reason=\"%s\"} 7", reason);
    has(t, line);
    snprintf(line, sizeof(line), "fenghuo_sensor_decode_errors_total{reason=\"%s\"} 0",
             decode_reason_name((decode_reason)(DECODE_ERR_COUNT - 1)));
    has(t, line);
    has(t, "fenghuo_sensor_flows_total 5");
    has(t, "fenghuo_sensor_flows_active 3");
    has(t, "fenghuo_sensor_app_protocol_flows_total{app_proto=\"dns\"} 4");
    has(t, "fenghuo_sensor_events_published_total 9");
    has(t, "fenghuo_sensor_kafka_errors_total{kind=\"delivery\"} 1");
    has(t, "fenghuo_sensor_spool_pending_events 12");
    has(t, "fenghuo_sensor_spool_bytes 3456");
    has(t, "fenghuo_sensor_stats_timestamp_seconds 1772416800");
    free(t);
}

static void test_file_stats_and_refusal(void **state)
{
    const char *flow = "{\"event_type\":\"flow\",\"flow\":{}}";
    char *t, *buf = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    t = render("{\"event_type\":\"stats\",\"stats\":{\"capture\":{\"packets\":3,\"bytes\":300}}}");
    has(t, "fenghuo_sensor_capture_packets_total{interface=\"pcap\"} 3");
    has(t, "fenghuo_sensor_events_published_total 0");
    free(t);
    f = open_memstream(&buf, &len);
    assert_int_equal(sensor_metrics_render(flow, strlen(flow), f), FH_ERR_PARSE);
    assert_int_equal(sensor_metrics_render("{", 1, f), FH_ERR_PARSE);
    fclose(f);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_stats),
        cmocka_unit_test(test_file_stats_and_refusal),
    };
    return cmocka_run_group_tests_name("sensor metrics", tests, NULL, NULL);
}
