/*
 * config.h - sensor configuration: defaults, YAML file, command-line overrides.
 *
 * Options are a table (name, type, field offset, help), as nginx does, so the
 * YAML loader, `--set name=value` and `--help-config` share one definition.
 * The YAML file is a tree of mappings whose dotted paths are option names:
 *
 *   flow:
 *     timeouts:
 *       udp: 60        # -> option "flow.timeouts.udp"
 *
 * Errors name the file, the line and the reason:
 *   "sensor.yaml:12: unknown option 'flow.timeout'"
 *   "sensor.yaml:3: option 'flow.max_flows': expected a whole number, got 'many'"
 */
#ifndef FH_CONFIG_H
#define FH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/fh_error.h"
#include "dpi.h"
#include "flow.h"

typedef struct {
    char *sensor_id;
    char *segment;

    char *interface; /* live capture: one interface or several, comma-separated; NULL = pcap */
    uint32_t snaplen;
    bool promisc;
    char *bpf;
    uint32_t buffer_mb;

    flow_config flow;
    dpi_config dpi;
    size_t frag_memcap;
    uint32_t frag_max_datagrams;
    uint32_t frag_timeout;

    char *geoip_country, *geoip_asn, *geoip_city;
    uint32_t community_id_seed;

    char *output_file; /* "-" = stdout */
    size_t max_event_bytes;
    uint32_t stats_interval; /* seconds; 0 = only at the end */
    char *log_level;
    char *metrics_listen; /* /metrics over HTTP ("ADDR:PORT"), NULL: none */

    /* Option strings owned by the config (freed by config_free). */
    char *dpi_protos_file, *dpi_categories_file;
    char *dpi_malicious_ja3_file, *dpi_malicious_sha1_file;

    uint32_t replay_rate; /* pcap input paced to this many packets/s; 0 = as fast as possible */

    /* Kafka output (sink_kafka.c); brokers NULL = no Kafka. */
    char *kafka_brokers;
    char *kafka_topic; /* literal, or a template with {event_type} */
    char *kafka_compression;
    uint32_t kafka_flush_timeout;   /* seconds to wait at shutdown before spooling */
    uint32_t kafka_startup_timeout; /* seconds to reach the brokers at start */
    uint32_t kafka_message_timeout; /* seconds before librdkafka gives a message up */
    size_t kafka_queue_bytes;       /* producer queue */
    char **kafka_props;             /* "name=value" passed to librdkafka (-X, kafka.properties) */
    size_t kafka_nprops;

    char *spool_dir;
    size_t spool_max_bytes, spool_segment_bytes;
    char *spool_fsync;     /* none | segment | always */
    char *spool_when_full; /* drop_oldest | drop_newest (live capture; pcap input waits) */

    /* Payload inspection (docs/events.md, yara): off while yara_rules is NULL. */
    char *yara_rules;            /* rule file or directory */
    size_t yara_max_bytes;       /* first bytes of each TCP direction / UDP payload scanned */
    size_t yara_excerpt_bytes;   /* matched bytes written per string (0 = none) */
    uint32_t yara_udp_datagrams; /* datagrams scanned per UDP flow direction (0 = all) */
    uint32_t yara_tls_bytes;     /* bytes of a TLS stream scanned (its handshake) */
    uint32_t yara_clean_cache;   /* entries of each worker's clean cache (0 = off) */
    bool yara_prefilter;         /* yara_prefilter.c: skip libyara where no rule can match */
    size_t yara_memcap;          /* scan buffers of all flows */
    size_t reasm_memcap;         /* out-of-order TCP segments of all flows */
    size_t reasm_dir_cap;        /* out-of-order TCP segments per direction */

    /* Application parsers (http.c) and files (files.c), docs/events.md. */
    bool http_enabled;       /* HTTP/1.x transactions with libhtp */
    bool dns_enabled;        /* every DNS message of UDP port 53 flows (dns.c) */
    bool ftp_enabled;        /* FTP control commands (ftp.c) */
    bool krb5_enabled;       /* Kerberos messages (krb5.c) */
    bool smtp_enabled;       /* SMTP messages and their attachments (smtp.c, mime.c) */
    size_t smtp_max_message; /* bytes of a message kept for its MIME parts */
    bool files_raw_tcp;      /* files that are a whole TCP stream (payload.c) */
    bool tls_enabled;        /* TLS record-layer anomalies (tls_records.c) */
    bool smb_enabled;        /* SMB2 shares, admin-share files, DCE-RPC binds and operations */
    size_t http_depth;       /* bytes of each direction of an HTTP flow parsed */
    size_t files_max_bytes;  /* first bytes of a file kept and scanned (YARA) */

    /* Worker threads (pipeline.h): 0 = one per online CPU, 1 = none (capture thread only). */
    uint32_t threads;
    size_t ring_bytes; /* packet queue of each worker thread */

    /* Privilege drop once the captures and outputs are open (main.c); NULL = stay. */
    char *run_user, *run_group;
} sensor_config;

/* Sets every option to its default. */
void config_defaults(sensor_config *c);
void config_free(sensor_config *c);

/* Loads a YAML file over the current values. Errors go to err as "FILE:LINE: reason". */
fh_err config_load_file(sensor_config *c, const char *path, char *err, size_t errlen);

/* Sets one option from "name=value" (or name and value). */
fh_err config_set(sensor_config *c, const char *name, const char *value, char *err, size_t errlen);

/* Adds a librdkafka property "name=value" (from -X or kafka.properties.NAME). */
fh_err config_add_kafka_property(sensor_config *c, const char *name, const char *value, char *err,
                                 size_t errlen);

/*
 * Compares two configurations option by option: calls fn (if not NULL) with
 * the name and both values as text for each option that differs, and returns
 * how many differ. librdkafka properties count as one option, "kafka.properties".
 */
typedef void (*config_diff_fn)(const char *name, const char *old_value, const char *new_value,
                               void *arg);
unsigned config_diff(const sensor_config *a, const sensor_config *b, config_diff_fn fn, void *arg);

/* Prints every option with its default and help to f (for --help-config). */
void config_print_options(FILE *f);

#endif
