/*
 * metrics.h - the sensor's /metrics: every stats event (output_stats.c) is also
 * rendered in the Prometheus text format and published to the listener of
 * metrics.listen (common/fh_metrics.h). One source of truth: the figures are the
 * stats event's, so the event stream and the scrape never disagree.
 *
 *   fenghuo_sensor_capture_packets_total{interface}      capture.interfaces[].packets
 *   fenghuo_sensor_capture_bytes_total{interface}        .bytes
 *   fenghuo_sensor_capture_kernel_drops_total{interface} .kernel_drops (+ ifdrops: kind)
 *   fenghuo_sensor_decode_errors_total{reason}           decoder.errors
 *   fenghuo_sensor_flows_total, _flows_active, _flows_evicted_total
 *   fenghuo_sensor_app_protocol_flows_total{app_proto}   app_proto
 *   fenghuo_sensor_yara_scans_total, _yara_matches_total payload.yara
 *   fenghuo_sensor_events_total, _events_dropped_total   output
 *   fenghuo_sensor_events_published_total                kafka.delivered
 *   fenghuo_sensor_kafka_errors_total{kind}              kafka.failed / queue_full / dropped
 *   fenghuo_sensor_spool_pending_events, _spool_bytes    kafka.spool
 *   fenghuo_sensor_stats_timestamp_seconds               the stats event's time
 * (file input: interface="pcap", the capture's totals).
 */
#ifndef FH_SENSOR_METRICS_H
#define FH_SENSOR_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "../common/fh_error.h"

/* Renders one stats event (its JSON) as metrics text into f; FH_ERR_PARSE if it is not one. */
fh_err sensor_metrics_render(const char *json, size_t len, FILE *f);

struct fh_metrics;
/* Renders and publishes (errors are logged once). */
void sensor_metrics_publish(struct fh_metrics *m, const char *json, size_t len);

#endif
