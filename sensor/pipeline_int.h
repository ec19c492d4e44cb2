/*
 * pipeline_int.h - what the files of the packet path share and nothing else
 * sees: a worker's layout (pworker), payload inspection state, the worker
 * messages, and the functions one file calls in another. The public API is
 * pipeline.h.
 */
#ifndef FH_PIPELINE_INT_H
#define FH_PIPELINE_INT_H

#include "community_id.h"
#include "pipeline.h"

#define EXPIRE_EVERY_US 100000 /* look at the timeout lists at most 10 times a second */

/* Payload inspection counters of one worker: uint64_t only, summed over the workers. */
typedef struct {
    uint64_t scans, scanned_bytes, matches, timeouts, errors;
    uint64_t format_scans; /* of PE, ELF, Mach-O or DEX data (yara_format_data) */
    uint64_t cache_hits;   /* scans answered by the clean cache (yara_scan.h) */
    uint64_t prefiltered;  /* scans answered by the prefilter (yara_prefilter.c) */
    uint64_t tcp_scans, udp_scans, udp_duplicates;
    uint64_t memcap_drops, memcap_drop_bytes; /* payload not buffered: yara.memcap */
    uint64_t scans_with_gaps;
    uint64_t duplicates;         /* TCP / file matches already reported */
    uint64_t udp_skipped;        /* later datagrams of a UDP flow, not scanned */
    uint64_t udp_opaque;         /* datagrams of encrypted, media, DNS or NTP flows, not scanned */
    uint64_t udp_datagrams_kept; /* datagrams put in a direction's scan buffer */
    uint64_t tcp_unscanned;      /* TCP directions not scanned raw (payload.c raw_scan_needless) */
    uint64_t files, file_bytes, file_scans, files_sniffed; /* files.c */
    uint64_t http_flows, http_txs, http_errors;            /* http.c */
    uint64_t tls_flows, tls_anomalies;                     /* tls_records.c */
    uint64_t smb_flows, smb_events;                        /* smb.c */
    uint64_t dns_queries, dns_answers, dns_malformed;      /* dns.c */
    uint64_t raw_files;                                    /* streams that are a file */
    uint64_t smb_files;                                    /* files read or written over SMB */
    uint64_t ftp_flows, ftp_events, ftp_bounces;           /* ftp.c */
    uint64_t ftp_data_flows, ftp_data_files;               /* ftp_expect.c */
    uint64_t krb5_messages, krb5_weak_tickets;             /* krb5.c */
    uint64_t smtp_flows, smtp_messages, smtp_attachments;  /* smtp.c, mime.c */
    uint64_t smtp_cut, smtp_mime_errors;
} payload_counters;

/*
 * Payload inspection state of one worker: the TCP reassembly context, the
 * YARA scanner and their counters. The rules slot is shared with whoever
 * reloads the rules (main.c's SIGHUP thread); the worker notices a new
 * generation before its next scan and builds a new scanner.
 */
typedef struct payload_worker {
    yara_rules_slot *slot; /* NULL = payload inspection off */
    yara_scanner *scanner;
    uint64_t generation; /* of the slot, when the scanner was made */
    reasm_ctx reasm;
    uint32_t max_bytes;           /* yara.max_bytes */
    size_t excerpt_bytes;         /* yara.excerpt_bytes */
    size_t memcap;                /* this worker's share of yara.memcap: scan buffers */
    size_t buf_mem, buf_mem_peak; /* scan buffers held now / at most */
    uint64_t rule_sets;           /* scanners made: one per rule set taken into service */
    uint32_t file_max_bytes;      /* files.max_bytes: first bytes of a file kept and scanned */
    uint32_t udp_datagrams;       /* yara.udp_datagrams */
    uint32_t tls_bytes;           /* yara.tls_bytes */
    uint32_t clean_cache;         /* yara.clean_cache */
    void *magic;                  /* libmagic handle (magic_t), made on the first file */
    bool magic_failed;
    struct http_engine *http; /* NULL = HTTP transactions not parsed (http.enabled) */
    bool tls;                 /* tls.enabled: TLS record-layer anomalies */
    bool smb;                 /* smb.enabled: SMB2 / DCE-RPC (smb.c) */
    bool dns;                 /* dns.enabled: every DNS message of port 53 (dns.c) */
    bool ftp;                 /* ftp.enabled: FTP control commands (ftp.c) */
    bool krb5;                /* krb5.enabled: Kerberos messages (krb5.c) */
    bool smtp;                /* smtp.enabled: SMTP messages (smtp.c, mime.c) */
    uint32_t smtp_max;        /* smtp.max_message */
    bool raw_files;           /* files.raw_tcp: files that are a whole TCP stream */
    bool active;              /* reassembly on: YARA rules or an application parser */
    payload_counters cnt;
} payload_worker;

/*
 * One worker: a flow table, an nDPI engine and the payload inspection state
 * of the flows dispatched to it, and its own event buffer and counters. With
 * worker threads (pipeline.threaded), each runs on its own thread and is fed
 * through its ring; with one worker, the capture thread calls it directly.
 */
struct pworker {
    pipeline *front; /* read-only here: configuration, interface names */
    const sensor_config *cfg;
    unsigned index;
    flow_table flows;
    dpi_engine *dpi;
    geoip *geo; /* shared, may be NULL */
    jbuf jb;
    emitter out;
    uint64_t clock;       /* the capture thread's clock at the last packet or tick */
    uint64_t next_expire; /* clock of the next look at the timeout lists */
    uint64_t packets;     /* packets this worker accounted to flows */
    uint64_t geo_lookups, geo_found, geo_errors;
    uint64_t geo_cached;        /* lookups answered by geo_cache */
    struct geo_slot *geo_cache; /* output_eve.c: the last results by address (GEO_CACHE) */
    uint64_t flows_unaccounted;
    app_stat apps[APP_STATS_SLOTS];
    payload_worker pw;

    /* worker threads only */
    fh_ring ring;
    pthread_t thread;
    bool started;
    uint64_t batches; /* times the event batch was handed to the sink */
};

/*
 * What the capture thread sends a worker. A packet record is followed by its
 * bytes: the innermost IP datagram (k.l3, k.l3_len), then the L4 payload if
 * it does not lie inside it; the worker points k.l3 and k.payload at them.
 */
enum { MSG_PACKET = 1, MSG_TICK, MSG_END, MSG_SYNC, MSG_STOP };

typedef struct {
    uint32_t type;
    uint32_t payload_off; /* MSG_PACKET: offset of the payload after the header */
    uint64_t clock;       /* the capture thread's clock */
    decode_pkt k;
} worker_msg;
/* output_eve.c */
void eve_ip(int version, const uint8_t *a, char *out, size_t len);
void eve_put_mac(jbuf *b, const char *key, const uint8_t *m);
void eve_ether(jbuf *b, const uint8_t *src, const uint8_t *dst);
void eve_header(const sensor_config *cfg, const capture_stats *cap, jbuf *b, uint64_t ts_us,
                const char *type, int iface);
void eve_emit(pworker *p, const char *event_type, const char *key);
void eve_app_table_add(app_stat *tab, const char *name, uint64_t n);
void eve_flow_header(pworker *p, jbuf *b, const flow *f, uint64_t ts_us, const char *type,
                     char cid[COMMUNITY_ID_LEN]);
void eve_meta_events(pworker *p, flow *f, uint64_t ts_us);
void eve_app_anomaly(pworker *p, flow *f, uint64_t ts_us, const char *app_proto, const char *event,
                     int dir);
void eve_flow_end(flow *f, flow_reason reason, void *arg);

/* output_stats.c */
void eve_stats_event(pipeline *p, uint64_t now_us);
void eve_anomaly_event(pipeline *p, const decode_pkt *k, decode_reason r);
void eve_packet_anomaly(pipeline *p, const decode_pkt *k, decode_pkt_anomaly a);
void eve_arp(pipeline *p, const decode_pkt *k);
void eve_router_advertisement(pipeline *p, const decode_pkt *k);

/* payload.c */
fh_err payload_worker_init(payload_worker *w, const sensor_config *cfg, unsigned nworkers);
void payload_worker_free(payload_worker *w);
bool payload_http_parsed(const flow *f);
bool payload_dns_parsed(const pworker *p, const flow *f);
bool payload_first_match(pworker *p, flow *f, const yara_match *m, int dir);
yara_scanner *payload_scanner(payload_worker *w);
/* yara_scan() with the worker's counters (scans, bytes, cache and prefilter answers,
 * timeouts, errors). */
void payload_scan(payload_worker *w, yara_scanner *s, const void *data, size_t len,
                  yara_match_cb cb, void *arg);
void payload_packet(pworker *p, flow *f, const decode_pkt *k, int dir);
void payload_flow_end(pworker *p, flow *f);
void payload_write_json(jbuf *b, const flow *f);
void payload_release(pworker *p, flow *f);

/* worker.c */
void worker_advance(pworker *w, uint64_t now);
void worker_packet(pworker *w, const decode_pkt *k, uint64_t clock);
void worker_end_of_input(pworker *w);
fh_err worker_init(pworker *w, pipeline *p, unsigned index, event_sink *sink, char *err,
                   size_t errlen);
void worker_free(pworker *w);
void *worker_main(void *arg);
void worker_send(pworker *w, uint32_t type, uint64_t clock);

#endif
