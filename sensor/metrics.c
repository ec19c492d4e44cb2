/*
 * metrics.c - see metrics.h.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../common/fh_log.h"
#include "../common/fh_metrics.h"
#include "decode.h"

static unsigned long long num(json_t *o, const char *path)
{
    char key[64];
    const char *dot;

    while (o && (dot = strchr(path, '.'))) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    o = o ? json_object_get(o, path) : NULL;
    return json_is_integer(o) && json_integer_value(o) > 0
               ? (unsigned long long)json_integer_value(o)
               : 0;
}

/* name{label="key"} value for every integer member of obj. */
static void by_key(FILE *f, const char *name, const char *label, json_t *obj)
{
    const char *k;
    json_t *v;
    char esc[256];

    json_object_foreach(obj, k, v)
    {
        if (!json_is_integer(v))
            continue;
        fh_metrics_label(esc, sizeof(esc), k);
        fprintf(f, "%s{%s=\"%s\"} %lld\n", name, label, esc, (long long)json_integer_value(v));
    }
}

fh_err sensor_metrics_render(const char *json, size_t len, FILE *f)
{
    json_t *ev = json_loadb(json, len, 0, NULL), *st, *cap, *ifs, *x;
    const char *sensor = NULL;
    char esc[256];
    size_t i;

    st = ev ? json_object_get(ev, "stats") : NULL;
    if (!json_is_object(st)) {
        json_decref(ev);
        return FH_ERR_PARSE;
    }
    x = json_object_get(json_object_get(ev, "sensor"), "id");
    sensor = json_is_string(x) ? json_string_value(x) : NULL;
    fh_metrics_label(esc, sizeof(esc), sensor ? sensor : "");
    fh_metrics_head(f, "fenghuo_sensor_info", "gauge", "The sensor's id (label sensor).");
    fprintf(f, "fenghuo_sensor_info{sensor=\"%s\"} 1\n", esc);

    cap = json_object_get(st, "capture");
    ifs = json_object_get(cap, "interfaces");
    fh_metrics_head(f, "fenghuo_sensor_capture_packets_total", "counter", "Packets captured.");
    if (json_is_array(ifs) && json_array_size(ifs)) {
        json_array_foreach(ifs, i, x)
        {
            fh_metrics_label(esc, sizeof(esc), json_string_value(json_object_get(x, "name")));
            fprintf(f, "fenghuo_sensor_capture_packets_total{interface=\"%s\"} %llu\n", esc,
                    num(x, "packets"));
        }
        fh_metrics_head(f, "fenghuo_sensor_capture_bytes_total", "counter", "Bytes captured.");
        json_array_foreach(ifs, i, x)
        {
            fh_metrics_label(esc, sizeof(esc), json_string_value(json_object_get(x, "name")));
            fprintf(f, "fenghuo_sensor_capture_bytes_total{interface=\"%s\"} %llu\n", esc,
                    num(x, "bytes"));
        }
        fh_metrics_head(f, "fenghuo_sensor_capture_kernel_drops_total", "counter",
                        "Packets the kernel dropped (kind: buffer full, or interface drops).");
        json_array_foreach(ifs, i, x)
        {
            fh_metrics_label(esc, sizeof(esc), json_string_value(json_object_get(x, "name")));
            fprintf(f,
                    "fenghuo_sensor_capture_kernel_drops_total{interface=\"%s\",kind=\"kernel\"} "
                    "%llu\nfenghuo_sensor_capture_kernel_drops_total{interface=\"%s\",kind="
                    "\"interface\"} %llu\n",
                    esc, num(x, "kernel_drops"), esc, num(x, "ifdrops"));
        }
    } else {
        fprintf(f, "fenghuo_sensor_capture_packets_total{interface=\"pcap\"} %llu\n",
                num(cap, "packets"));
        fh_metrics_head(f, "fenghuo_sensor_capture_bytes_total", "counter", "Bytes captured.");
        fprintf(f, "fenghuo_sensor_capture_bytes_total{interface=\"pcap\"} %llu\n",
                num(cap, "bytes"));
        fh_metrics_head(f, "fenghuo_sensor_capture_kernel_drops_total", "counter",
                        "Packets the kernel dropped (kind: buffer full, or interface drops).");
        fprintf(f,
                "fenghuo_sensor_capture_kernel_drops_total{interface=\"pcap\",kind=\"kernel\"} "
                "%llu\n",
                num(cap, "kernel_drops"));
    }
    fh_metrics_head(f, "fenghuo_sensor_decode_errors_total", "counter",
                    "Malformed packets, by reason.");
    /* every reason, zeros too: a series exists before its first malformed packet */
    x = json_object_get(json_object_get(st, "decoder"), "errors");
    for (int r = 0; r < DECODE_ERR_COUNT; r++) {
        const char *name = decode_reason_name((decode_reason)r);

        json_t *v = x ? json_object_get(x, name) : NULL; /* names have dots: not a path */

        fh_metrics_label(esc, sizeof(esc), name);
        fprintf(f, "fenghuo_sensor_decode_errors_total{reason=\"%s\"} %lld\n", esc,
                json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
    }
    fh_metrics_one(f, "fenghuo_sensor_flows_total", "counter", "Flows created.",
                   num(st, "flow.created"));
    fh_metrics_one(f, "fenghuo_sensor_flows_active", "gauge", "Flows in the table.",
                   num(st, "flow.active"));
    fh_metrics_one(f, "fenghuo_sensor_flows_evicted_total", "counter",
                   "Flows evicted under memory pressure.", num(st, "flow.evicted"));
    fh_metrics_head(f, "fenghuo_sensor_app_protocol_flows_total", "counter",
                    "Flows by application protocol (nDPI).");
    x = json_object_get(st, "app_proto");
    if (json_is_object(x))
        by_key(f, "fenghuo_sensor_app_protocol_flows_total", "app_proto", x);
    x = json_object_get(json_object_get(st, "payload"), "yara");
    fh_metrics_one(f, "fenghuo_sensor_yara_scans_total", "counter", "Payload scans.",
                   num(x, "scans"));
    fh_metrics_one(f, "fenghuo_sensor_yara_matches_total", "counter", "YARA rule matches.",
                   num(x, "matches"));
    fh_metrics_one(f, "fenghuo_sensor_events_total", "counter", "Events written.",
                   num(st, "output.events"));
    fh_metrics_one(f, "fenghuo_sensor_events_dropped_total", "counter",
                   "Events lost (over the size cap).", num(st, "output.dropped"));
    x = json_object_get(st, "kafka");
    fh_metrics_one(f, "fenghuo_sensor_events_published_total", "counter",
                   "Events the Kafka cluster acknowledged.", num(x, "delivered"));
    fh_metrics_head(f, "fenghuo_sensor_kafka_errors_total", "counter", "Kafka errors by kind.");
    fprintf(f,
            "fenghuo_sensor_kafka_errors_total{kind=\"delivery\"} %llu\n"
            "fenghuo_sensor_kafka_errors_total{kind=\"queue_full\"} %llu\n"
            "fenghuo_sensor_kafka_errors_total{kind=\"dropped\"} %llu\n",
            num(x, "failed"), num(x, "queue_full"), num(x, "dropped"));
    fh_metrics_one(f, "fenghuo_sensor_spool_pending_events", "gauge",
                   "Events waiting in the disk spool.", num(x, "spool.pending"));
    fh_metrics_one(f, "fenghuo_sensor_spool_bytes", "gauge", "Disk the spool uses.",
                   num(x, "spool.bytes"));
    fh_metrics_one(f, "fenghuo_sensor_kafka_brokers_down", "gauge",
                   "1 while no broker is reachable.",
                   json_is_true(json_object_get(x, "brokers_down")));
    x = json_object_get(ev, "timestamp");
    fh_metrics_head(f, "fenghuo_sensor_stats_timestamp_seconds", "gauge",
                    "Packet time of the stats event these figures come from.");
    {
        struct tm tm = {0};
        const char *t = json_string_value(x);
        double secs = 0;

        if (t && strptime(t, "%Y-%m-%dT%H:%M:%S", &tm))
            secs = (double)timegm(&tm); /* the sensor writes +0000 (events.md) */
        fprintf(f, "fenghuo_sensor_stats_timestamp_seconds %.0f\n", secs);
    }
    json_decref(ev);
    return FH_OK;
}

void sensor_metrics_publish(struct fh_metrics *m, const char *json, size_t len)
{
    static bool warned;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    fh_err e;

    if (!f)
        return;
    e = sensor_metrics_render(json, len, f);
    if (fclose(f) == 0 && e == FH_OK)
        fh_metrics_publish(m, buf, n);
    else if (!warned) {
        warned = true;
        fh_warn("metrics: a stats event could not be rendered");
    }
    free(buf);
}
