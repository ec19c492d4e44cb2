/*
 * config.c - option table, YAML loader (libyaml event API) and setters.
 */
#include "config.h"

#include "../common/fh_yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* OPT_LIST: a string option that a YAML sequence may also give; its items are joined
 * with commas (capture.interfaces: [eth0, eth1] is "eth0,eth1"). */
typedef enum { OPT_STR, OPT_U32, OPT_BOOL, OPT_SIZE, OPT_SECONDS, OPT_LIST } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;
    uint64_t max; /* for numbers; 0 = no limit beyond the type */
    const char *help;
} opt_def;

#define OFF(f) offsetof(sensor_config, f)

static const opt_def options[] = {
    {"sensor.id", OPT_STR, OFF(sensor_id), 0, "sensor identifier written in every event"},
    {"sensor.segment", OPT_STR, OFF(segment), 0, "network segment this sensor watches"},
    {"capture.interface", OPT_STR, OFF(interface), 0,
     "live capture interface (-i); several: comma-separated"},
    {"capture.interfaces", OPT_LIST, OFF(interface), 0,
     "live capture interfaces, a YAML list (the same setting as capture.interface)"},
    {"capture.snaplen", OPT_U32, OFF(snaplen), 262144, "bytes captured per packet"},
    {"capture.promisc", OPT_BOOL, OFF(promisc), 0, "promiscuous mode on live capture"},
    {"capture.bpf", OPT_STR, OFF(bpf), 0, "BPF filter expression (-f)"},
    {"capture.buffer_mb", OPT_U32, OFF(buffer_mb), 4096, "kernel capture buffer, MiB"},
    {"flow.max_flows", OPT_U32, OFF(flow.max_flows), 0,
     "flows tracked at once; past it the "
     "least recently active is evicted"},
    {"flow.memcap", OPT_SIZE, OFF(flow.memcap), 0, "memory for flows and their DPI state"},
    {"flow.update_interval", OPT_SECONDS, OFF(flow.update_interval_s), 0,
     "seconds between update events of a long flow (0 = none)"},
    {"flow.timeouts.tcp_new", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_TCP_NEW]), 0,
     "idle timeout of a TCP flow before its handshake completes"},
    {"flow.timeouts.tcp_established", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_TCP_ESTABLISHED]), 0,
     "idle timeout of an established TCP flow"},
    {"flow.timeouts.tcp_closed", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_TCP_CLOSED]), 0,
     "time a TCP flow is kept after FIN/RST"},
    {"flow.timeouts.udp", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_UDP]), 0, "UDP idle timeout"},
    {"flow.timeouts.icmp", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_ICMP]), 0, "ICMP idle timeout"},
    {"flow.timeouts.other", OPT_SECONDS, OFF(flow.timeout_s[FLOW_TC_OTHER]), 0,
     "idle timeout of other IP protocols"},
    {"defrag.memcap", OPT_SIZE, OFF(frag_memcap), 0, "memory for IP fragment reassembly"},
    {"defrag.max_datagrams", OPT_U32, OFF(frag_max_datagrams), 0,
     "datagrams being reassembled at once"},
    {"defrag.timeout", OPT_SECONDS, OFF(frag_timeout), 0, "seconds to wait for missing fragments"},
    {"dpi.enabled", OPT_BOOL, OFF(dpi.enabled), 0, "classify flows with nDPI"},
    {"dpi.max_tcp_packets", OPT_U32, OFF(dpi.max_tcp_packets), 0,
     "TCP packets inspected before nDPI gives up"},
    {"dpi.max_udp_packets", OPT_U32, OFF(dpi.max_udp_packets), 0,
     "UDP packets inspected before nDPI gives up"},
    {"dpi.protos_file", OPT_STR, OFF(dpi_protos_file), 0, "nDPI custom protocols file"},
    {"dpi.categories_file", OPT_STR, OFF(dpi_categories_file), 0, "nDPI custom categories file"},
    {"dpi.malicious_ja3_file", OPT_STR, OFF(dpi_malicious_ja3_file), 0,
     "JA3 indicator feed (abuse.ch SSLBL ja3_fingerprints.csv: the MD5 in the first column): "
     "matches set nDPI's 'Possibly Malicious JA3 Fingerprint' risk"},
    {"dpi.malicious_sha1_file", OPT_STR, OFF(dpi_malicious_sha1_file), 0,
     "certificate SHA-1 indicator feed (abuse.ch SSLBL sslblacklist.csv: date, SHA-1, reason): "
     "matches set 'Possibly Malicious SSL Cert. SHA1 Fingerprint'"},
    {"dpi.metadata_events", OPT_BOOL, OFF(dpi.metadata_events), 0,
     "write dns, http, tls and ssh events (docs/events.md) besides the flow event"},
    {"geoip.country", OPT_STR, OFF(geoip_country), 0, "country .mmdb (MaxMind or ip-location-db)"},
    {"geoip.asn", OPT_STR, OFF(geoip_asn), 0, "ASN .mmdb (GeoLite2-ASN layout)"},
    {"geoip.city", OPT_STR, OFF(geoip_city), 0, "city .mmdb (GeoIP2/GeoLite2-City)"},
    {"community_id.seed", OPT_U32, OFF(community_id_seed), 65535, "Community ID seed"},
    {"output.file", OPT_STR, OFF(output_file), 0, "NDJSON event file (-w), '-' for stdout"},
    {"output.max_event_bytes", OPT_SIZE, OFF(max_event_bytes), 0,
     "largest event written; larger ones are counted as dropped"},
    {"stats.interval", OPT_SECONDS, OFF(stats_interval), 0,
     "seconds between stats events on live capture (0 = only at the end)"},
    {"log.level", OPT_STR, OFF(log_level), 0, "error, warning, info or debug"},
    {"metrics.listen", OPT_STR, OFF(metrics_listen), 0,
     "serve /metrics (Prometheus) over HTTP on this management ADDRESS:PORT; renewed with "
     "every stats event"},
    {"capture.replay_rate", OPT_U32, OFF(replay_rate), 0,
     "pace pcap input to this many packets/s (0 = as fast as possible)"},
    {"kafka.brokers", OPT_STR, OFF(kafka_brokers), 0,
     "bootstrap servers (--kafka); unset = no Kafka output"},
    {"kafka.topic", OPT_STR, OFF(kafka_topic), 0,
     "topic, or a template such as fenghuo.{event_type} (--topic)"},
    {"kafka.compression", OPT_STR, OFF(kafka_compression), 0, "none, gzip, snappy, lz4 or zstd"},
    {"kafka.flush_timeout", OPT_SECONDS, OFF(kafka_flush_timeout), 0,
     "at shutdown, wait this long for deliveries; the rest is spooled"},
    {"kafka.startup_timeout", OPT_SECONDS, OFF(kafka_startup_timeout), 0,
     "time to reach the brokers at start (pcap input fails after it; live capture spools)"},
    {"kafka.message_timeout", OPT_SECONDS, OFF(kafka_message_timeout), 0,
     "librdkafka gives a message up after this long; it then goes to the spool"},
    {"kafka.queue_bytes", OPT_SIZE, OFF(kafka_queue_bytes), 0, "producer queue in memory"},
    {"spool.dir", OPT_STR, OFF(spool_dir), 0, "where undelivered events wait (Kafka output)"},
    {"spool.max_bytes", OPT_SIZE, OFF(spool_max_bytes), 0, "disk the spool may use"},
    {"spool.segment_bytes", OPT_SIZE, OFF(spool_segment_bytes), 0, "size of one spool file"},
    {"spool.fsync", OPT_STR, OFF(spool_fsync), 0, "none, segment or always"},
    {"spool.when_full", OPT_STR, OFF(spool_when_full), 0,
     "live capture with a full spool: drop_oldest or drop_newest (pcap input waits instead)"},
    {"yara.rules", OPT_STR, OFF(yara_rules), 0,
     "YARA rule file or directory (--yara-rules); unset = no payload inspection"},
    {"yara.max_bytes", OPT_SIZE, OFF(yara_max_bytes), 0,
     "first bytes of each TCP direction and of each UDP payload scanned (--yara-max-bytes)"},
    {"yara.excerpt_bytes", OPT_SIZE, OFF(yara_excerpt_bytes), 0,
     "matched bytes written in yara events per string (0 = none)"},
    {"yara.udp_datagrams", OPT_U32, OFF(yara_udp_datagrams), 0,
     "first datagrams of each UDP flow direction scanned (0 = all)"},
    {"yara.tls_bytes", OPT_U32, OFF(yara_tls_bytes), 0,
     "first bytes of each direction of a TLS flow scanned: the handshake, not the ciphertext"},
    {"yara.clean_cache", OPT_U32, OFF(yara_clean_cache), 0,
     "buffers found clean remembered per worker (by a keyed hash), not scanned again; 0 = off"},
    {"yara.prefilter", OPT_BOOL, OFF(yara_prefilter), 0,
     "buffers holding no literal a rule needs skip libyara (only rules needing none run)"},
    {"yara.memcap", OPT_SIZE, OFF(yara_memcap), 0,
     "scan buffers of all flows; past it payload is not buffered (counted)"},
    {"reassembly.memcap", OPT_SIZE, OFF(reasm_memcap), 0,
     "out-of-order TCP segments of all flows (YARA on)"},
    {"reassembly.dir_cap", OPT_SIZE, OFF(reasm_dir_cap), 0,
     "out-of-order TCP segments per flow direction (YARA on)"},
    {"files.raw_tcp", OPT_BOOL, OFF(files_raw_tcp), 0,
     "a TCP stream without an application protocol that starts as a file (PE, ELF, archive, "
     "document; after a 4-byte length too) is a file: fileinfo with source tcp"},
    {"ftp.enabled", OPT_BOOL, OFF(ftp_enabled), 0,
     "an ftp event for the file and data-connection commands of FTP control connections "
     "(port 21), with PORT/EPRT bounces flagged; the data connections they announce carry "
     "files (fileinfo source ftp, named by RETR/STOR)"},
    {"smtp.enabled", OPT_BOOL, OFF(smtp_enabled), 0,
     "an smtp event per message of SMTP sessions (ports 25, 587, 2525, or opened with "
     "EHLO/HELO) with its envelope and headers, and a fileinfo per attachment (GMime)"},
    {"smtp.max_message", OPT_SIZE, OFF(smtp_max_message), 0,
     "bytes of a message kept to read its MIME parts (bounded by yara.memcap); past it the "
     "message is cut and its last attachment truncated"},
    {"krb5.enabled", OPT_BOOL, OFF(krb5_enabled), 0,
     "a krb5 event for every Kerberos message (port 88, UDP and TCP): tickets issued with "
     "RC4 or DES are flagged weak"},
    {"dns.enabled", OPT_BOOL, OFF(dns_enabled), 0,
     "a dns event for every DNS query and response of UDP flows to or from port 53"},
    {"http.enabled", OPT_BOOL, OFF(http_enabled), 0,
     "HTTP/1.x: one http event per transaction, bodies as files (libhtp)"},
    {"smb.enabled", OPT_BOOL, OFF(smb_enabled), 0,
     "SMB2 and DCE-RPC: shares, files on admin shares, RPC interfaces and operations (smb.c)"},
    {"tls.enabled", OPT_BOOL, OFF(tls_enabled), 0,
     "TLS record layer: heartbeat overflow (Heartbleed), SSLv2/SSLv3, renegotiation anomalies"},
    {"http.depth", OPT_SIZE, OFF(http_depth), 0,
     "bytes of each direction of an HTTP flow parsed (0 = all)"},
    {"files.max_bytes", OPT_SIZE, OFF(files_max_bytes), 0,
     "first bytes of a file kept and scanned by YARA (4 KiB are typed); the hash covers all"},
    {"workers.threads", OPT_U32, OFF(threads), 64,
     "worker threads (--threads): 0 = one per online CPU, 1 = everything on the capture thread"},
    {"workers.ring_bytes", OPT_SIZE, OFF(ring_bytes), 0,
     "packet queue between the capture thread and each worker thread"},
    {"run.user", OPT_STR, OFF(run_user), 0,
     "live capture as root: become this user once the interfaces and outputs are open"},
    {"run.group", OPT_STR, OFF(run_group), 0, "group for run.user (default: the user's group)"},
};

#define KAFKA_PROPS_PREFIX "kafka.properties."

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

void config_defaults(sensor_config *c)
{
    memset(c, 0, sizeof(*c));
    c->sensor_id = strdup("fenghuo-sensor");
    c->segment = strdup("default");
    c->snaplen = 65535;
    c->promisc = true;
    c->buffer_mb = 64;
    flow_config_defaults(&c->flow);
    dpi_config_defaults(&c->dpi);
    c->frag_memcap = (size_t)32 << 20;
    c->frag_max_datagrams = 4096;
    c->frag_timeout = 30;
    c->output_file = NULL;
    c->max_event_bytes = (size_t)1 << 20;
    c->stats_interval = 60;
    c->log_level = strdup("info");
    c->kafka_topic = strdup("fenghuo.events");
    c->kafka_compression = strdup("lz4");
    c->kafka_flush_timeout = 10;
    c->kafka_startup_timeout = 10;
    c->kafka_message_timeout = 30;
    c->kafka_queue_bytes = (size_t)128 << 20;
    c->spool_dir = strdup("/var/spool/fenghuo");
    c->spool_max_bytes = (size_t)1 << 30;
    c->spool_segment_bytes = (size_t)16 << 20;
    c->spool_fsync = strdup("segment");
    c->spool_when_full = strdup("drop_oldest");
    c->yara_max_bytes = 65536;
    c->yara_excerpt_bytes = 0;
    c->yara_udp_datagrams = 4;
    c->yara_tls_bytes = 16384;
    c->yara_clean_cache = 4096;
    c->yara_prefilter = true;
    c->yara_memcap = (size_t)256 << 20;
    c->reasm_memcap = (size_t)64 << 20;
    c->reasm_dir_cap = (size_t)1 << 20;
    c->http_enabled = true;
    c->dns_enabled = true;
    c->ftp_enabled = true;
    c->krb5_enabled = true;
    c->smtp_enabled = true;
    c->smtp_max_message = (size_t)4 << 20;
    c->files_raw_tcp = true;
    c->tls_enabled = true;
    c->smb_enabled = true;
    c->http_depth = (size_t)16 << 20;
    c->files_max_bytes = (size_t)1 << 20;
    c->threads = 0;
    c->ring_bytes = (size_t)16 << 20;
}

fh_err config_add_kafka_property(sensor_config *c, const char *name, const char *value, char *err,
                                 size_t errlen)
{
    char **v;
    size_t n = strlen(name) + strlen(value) + 2;

    if (!*name) {
        snprintf(err, errlen, "empty librdkafka property name");
        return FH_ERR_CONFIG;
    }
    v = realloc(c->kafka_props, (c->kafka_nprops + 1) * sizeof(*v));
    if (!v)
        return FH_ERR_NOMEM;
    c->kafka_props = v;
    if (!(v[c->kafka_nprops] = malloc(n)))
        return FH_ERR_NOMEM;
    snprintf(v[c->kafka_nprops], n, "%s=%s", name, value);
    c->kafka_nprops++;
    return FH_OK;
}

void config_free(sensor_config *c)
{
    for (size_t i = 0; i < c->kafka_nprops; i++)
        free(c->kafka_props[i]);
    free(c->kafka_props);
    c->kafka_props = NULL;
    c->kafka_nprops = 0;
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].type == OPT_STR) { /* OPT_LIST fields are OPT_STR ones too */
            char **p = (char **)((char *)c + options[i].offset);
            free(*p);
            *p = NULL;
        }
}

static const opt_def *find_option(const char *name)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

/* True if name is a section (a prefix of option names), such as "flow.timeouts". */
static bool is_section(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < NOPTIONS; i++)
        if (strncmp(options[i].name, name, n) == 0 && options[i].name[n] == '.')
            return true;
    return false;
}

/* Parses an unsigned number with an optional unit suffix. Returns false if malformed. */
static bool parse_u64(const char *s, opt_type type, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    while (*s == ' ')
        s++;
    if (*s == '-' || *s == '\0')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    while (*end == ' ')
        end++;
    if (type == OPT_SIZE) {
        if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib"))
            mult = 1ULL << 10;
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib"))
            mult = 1ULL << 20;
        else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib"))
            mult = 1ULL << 30;
        else if (*end)
            return false;
    } else if (type == OPT_SECONDS) {
        if (!strcmp(end, "s"))
            mult = 1;
        else if (!strcmp(end, "m") || !strcmp(end, "min"))
            mult = 60;
        else if (!strcmp(end, "h"))
            mult = 3600;
        else if (*end)
            return false;
    } else if (*end) {
        return false;
    }
    if (mult > 1 && v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

static fh_err set_option(sensor_config *c, const opt_def *o, const char *value, char *err,
                         size_t errlen)
{
    void *field = (char *)c + o->offset;
    uint64_t v;

    switch (o->type) {
    case OPT_STR:
    case OPT_LIST: {
        char **p = field;
        char *dup = strdup(value);

        if (!dup)
            return FH_ERR_NOMEM;
        free(*p);
        *p = dup;
        return FH_OK;
    }
    case OPT_BOOL:
        if (!fh_yaml_bool_text(value, (bool *)field)) {
            snprintf(err, errlen, "option '%s': expected true or false, got '%s'", o->name, value);
            return FH_ERR_CONFIG;
        }
        return FH_OK;
    case OPT_U32:
    case OPT_SECONDS:
        if (!parse_u64(value, o->type, &v) || v > UINT32_MAX || (o->max && v > o->max)) {
            if (o->max)
                snprintf(err, errlen,
                         "option '%s': expected a whole number from 0 to %llu%s, "
                         "got '%s'",
                         o->name, (unsigned long long)o->max,
                         o->type == OPT_SECONDS ? " (seconds, or with s/m/h)" : "", value);
            else
                snprintf(err, errlen, "option '%s': expected a whole number%s, got '%s'", o->name,
                         o->type == OPT_SECONDS ? " of seconds (or with s/m/h)" : "", value);
            return FH_ERR_CONFIG;
        }
        *(uint32_t *)field = (uint32_t)v;
        return FH_OK;
    case OPT_SIZE:
        if (!parse_u64(value, OPT_SIZE, &v) || v > SIZE_MAX) {
            snprintf(err, errlen, "option '%s': expected a size such as 512m or 2g, got '%s'",
                     o->name, value);
            return FH_ERR_CONFIG;
        }
        *(size_t *)field = (size_t)v;
        return FH_OK;
    }
    return FH_ERR_CONFIG;
}

fh_err config_set(sensor_config *c, const char *name, const char *value, char *err, size_t errlen)
{
    const opt_def *o = find_option(name);

    if (!o && strncmp(name, KAFKA_PROPS_PREFIX, strlen(KAFKA_PROPS_PREFIX)) == 0)
        return config_add_kafka_property(c, name + strlen(KAFKA_PROPS_PREFIX), value, err, errlen);
    if (!o) {
        snprintf(err, errlen, "unknown option '%s' (see --help-config)", name);
        return FH_ERR_CONFIG;
    }
    return set_option(c, o, value, err, errlen);
}

/* The value of option o in c as text (strings as they are, "" when unset). */
static void format_value(const opt_def *o, const sensor_config *c, char *out, size_t len)
{
    const void *field = (const char *)c + o->offset;

    switch (o->type) {
    case OPT_STR:
    case OPT_LIST:
        snprintf(out, len, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    case OPT_BOOL:
        snprintf(out, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    case OPT_U32:
    case OPT_SECONDS:
        snprintf(out, len, "%u", *(const uint32_t *)field);
        break;
    case OPT_SIZE:
        snprintf(out, len, "%zu", *(const size_t *)field);
        break;
    }
}

void config_print_options(FILE *f)
{
    sensor_config d;

    config_defaults(&d);
    for (size_t i = 0; i < NOPTIONS; i++) {
        char def[64];

        format_value(&options[i], &d, def, sizeof(def));
        fprintf(f, "  %-30s %-12s %s\n", options[i].name, def, options[i].help);
    }
    config_free(&d);
}

unsigned config_diff(const sensor_config *a, const sensor_config *b, config_diff_fn fn, void *arg)
{
    unsigned n = 0;

    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt_def *o = &options[i];
        char va[1024], vb[1024];
        bool dup = false;

        /* Two names for one field (capture.interface / capture.interfaces): once. */
        for (size_t j = 0; j < i; j++)
            dup |= options[j].offset == o->offset;
        if (dup)
            continue;
        format_value(o, a, va, sizeof(va));
        format_value(o, b, vb, sizeof(vb));
        if (strcmp(va, vb) != 0) {
            n++;
            if (fn)
                fn(o->name, va, vb, arg);
        }
    }
    {
        bool same = a->kafka_nprops == b->kafka_nprops;

        for (size_t i = 0; same && i < a->kafka_nprops; i++)
            same = strcmp(a->kafka_props[i], b->kafka_props[i]) == 0;
        if (!same) {
            n++;
            if (fn)
                fn("kafka.properties", "", "", arg);
        }
    }
    return n;
}

#define MAX_DEPTH 8

/* The items of a YAML sequence (plain scalars) for an OPT_LIST option, up to its end. */
static fh_err load_list(yaml_parser_t *parser, sensor_config *c, const opt_def *o, const char *path,
                        char *err, size_t errlen)
{
    char joined[4096] = "", msg[384];
    size_t used = 0, items = 0;
    yaml_event_t ev;
    fh_err e = FH_OK;

    for (;;) {
        size_t line, n;

        if (!yaml_parser_parse(parser, &ev)) {
            fh_error_at(err, errlen, path, (uint32_t)(parser->problem_mark.line + 1),
                        "YAML syntax error: %s", parser->problem ? parser->problem : "unknown");
            return FH_ERR_PARSE;
        }
        line = ev.start_mark.line + 1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            fh_error_at(err, errlen, path, (uint32_t)(line),
                        "option '%s': expected a list of names", o->name);
            yaml_event_delete(&ev);
            return FH_ERR_CONFIG;
        }
        n = ev.data.scalar.length;
        if (n == 0 || memchr(ev.data.scalar.value, ',', n) || used + n + 2 > sizeof(joined)) {
            fh_error_at(err, errlen, path, (uint32_t)(line), "option '%s': bad item '%s'", o->name,
                        (const char *)ev.data.scalar.value);
            yaml_event_delete(&ev);
            return FH_ERR_CONFIG;
        }
        if (items++)
            joined[used++] = ',';
        memcpy(joined + used, ev.data.scalar.value, n);
        used += n;
        joined[used] = '\0';
        yaml_event_delete(&ev);
    }
    if (!items) {
        snprintf(err, errlen, "%s: option '%s': empty list", path, o->name);
        return FH_ERR_CONFIG;
    }
    if ((e = set_option(c, o, joined, msg, sizeof(msg))) != FH_OK)
        snprintf(err, errlen, "%s: %s", path, msg);
    return e;
}

fh_err config_load_file(sensor_config *c, const char *path, char *err, size_t errlen)
{
    FILE *fp;
    yaml_parser_t parser;
    yaml_event_t ev;
    char *keys[MAX_DEPTH] = {0};
    bool expect_key[MAX_DEPTH] = {0};
    int depth = -1; /* index of the innermost open mapping */
    char msg[384];
    fh_err result = FH_OK;
    bool done = false;

    fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open configuration: %s", path, strerror(errno));
        return FH_ERR_IO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        snprintf(err, errlen, "%s: YAML parser initialisation failed", path);
        return FH_ERR_NOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    while (!done) {
        size_t line;

        if (!yaml_parser_parse(&parser, &ev)) {
            fh_error_at(err, errlen, path, (uint32_t)(parser.problem_mark.line + 1),
                        "YAML syntax error: %s", parser.problem ? parser.problem : "unknown");
            result = FH_ERR_PARSE;
            break;
        }
        line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_MAPPING_START_EVENT:
            if (depth >= 0 && expect_key[depth]) {
                fh_error_at(err, errlen, path, (uint32_t)(line), "a mapping cannot be a key");
                result = FH_ERR_PARSE;
                done = true;
                break;
            }
            if (depth + 1 >= MAX_DEPTH) {
                fh_error_at(err, errlen, path, (uint32_t)(line), "nesting too deep");
                result = FH_ERR_PARSE;
                done = true;
                break;
            }
            depth++;
            expect_key[depth] = true;
            break;
        case YAML_MAPPING_END_EVENT:
            free(keys[depth]);
            keys[depth] = NULL;
            depth--;
            if (depth >= 0) {
                free(keys[depth]);
                keys[depth] = NULL;
                expect_key[depth] = true;
            }
            break;
        case YAML_SEQUENCE_START_EVENT: {
            char name[256] = "";

            for (int i = 0; i <= depth && keys[i]; i++) {
                if (i)
                    strncat(name, ".", sizeof(name) - strlen(name) - 1);
                strncat(name, keys[i], sizeof(name) - strlen(name) - 1);
            }
            if (depth >= 0 && !expect_key[depth] && find_option(name) &&
                find_option(name)->type == OPT_LIST) {
                /* capture.interfaces: [eth0, eth1]: joined with commas */
                result = load_list(&parser, c, find_option(name), path, err, errlen);
                free(keys[depth]);
                keys[depth] = NULL;
                expect_key[depth] = true;
                if (result != FH_OK)
                    done = true;
                break;
            }
            fh_error_at(err, errlen, path, (uint32_t)(line),
                        "option '%s' takes a single value, not a list",
                        name[0] ? name : "(top level)");
            result = FH_ERR_CONFIG;
            done = true;
            break;
        }
        case YAML_SCALAR_EVENT: {
            const char *val = (const char *)ev.data.scalar.value;

            if (depth < 0) {
                /* A document that is a single scalar (or empty: a null scalar). */
                if (ev.data.scalar.length != 0) {
                    fh_error_at(err, errlen, path, (uint32_t)(line),
                                "expected a mapping of options");
                    result = FH_ERR_CONFIG;
                    done = true;
                }
                break;
            }
            if (expect_key[depth]) {
                keys[depth] = strdup(val);
                expect_key[depth] = false;
            } else {
                char name[256] = "";
                const opt_def *o;

                for (int i = 0; i <= depth; i++) {
                    if (i)
                        strncat(name, ".", sizeof(name) - strlen(name) - 1);
                    strncat(name, keys[i] ? keys[i] : "", sizeof(name) - strlen(name) - 1);
                }
                o = find_option(name);
                if (!o && strncmp(name, KAFKA_PROPS_PREFIX, strlen(KAFKA_PROPS_PREFIX)) == 0) {
                    /* kafka: properties: {security.protocol: SASL_SSL}: passed through */
                    if ((result = config_add_kafka_property(c, name + strlen(KAFKA_PROPS_PREFIX),
                                                            val, msg, sizeof(msg))) != FH_OK) {
                        fh_error_at(err, errlen, path, (uint32_t)(line), "%s", msg);
                        done = true;
                    }
                } else if (!o && ev.data.scalar.length == 0 && ev.data.scalar.plain_implicit &&
                           (is_section(name) || !strcmp(name, "kafka.properties"))) {
                    /* "geoip:" with every option under it commented out */
                } else if (!o) {
                    fh_error_at(err, errlen, path, (uint32_t)(line), "unknown option '%s'", name);
                    result = FH_ERR_CONFIG;
                    done = true;
                } else if (ev.data.scalar.length == 0 && ev.data.scalar.plain_implicit &&
                           o->type != OPT_STR && o->type != OPT_LIST) {
                    fh_error_at(err, errlen, path, (uint32_t)(line), "option '%s' has no value",
                                name);
                    result = FH_ERR_CONFIG;
                    done = true;
                } else if ((result = set_option(c, o, val, msg, sizeof(msg))) != FH_OK) {
                    fh_error_at(err, errlen, path, (uint32_t)(line), "%s", msg);
                    done = true;
                }
                free(keys[depth]);
                keys[depth] = NULL;
                expect_key[depth] = true;
            }
            break;
        }
        case YAML_ALIAS_EVENT:
            fh_error_at(err, errlen, path, (uint32_t)(line), "YAML aliases are not supported here");
            result = FH_ERR_CONFIG;
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    for (int i = 0; i < MAX_DEPTH; i++)
        free(keys[i]);
    yaml_parser_delete(&parser);
    fclose(fp);
    return result;
}
