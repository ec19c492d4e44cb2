/*
 * pipeline.h - the packet path: decode -> flow -> DPI -> enrichment -> events.
 *
 *   capture thread: pipeline_packet()        worker (pworker, worker.c) x N
 *     decode (defrag, tunnels), anomalies  ─ring─►  flow table, nDPI, reassembly,
 *     capture clock, stats events                   YARA, flow/metadata/yara events
 *
 * The pipeline (the capture side) owns the decoder and the workers; each
 * worker owns its flow table, nDPI engine, payload inspection state, JSON
 * buffer and event batch. GeoIP databases are shared read-only. With one
 * worker there is no thread and no ring: pipeline_packet() calls the worker.
 * With N > 1 each worker runs on its own thread, fed through a lock-free ring
 * (ring.h); sensor/README.md explains the dispatch, time and barriers. Nothing
 * here allocates per packet on the steady path: flows are recycled, nDPI state
 * is per flow, the event buffers are reused.
 *
 * Time: pipeline_packet() advances the clock to the highest packet time seen;
 * pipeline_tick() lets a live capture advance it without packets. All flow
 * expiry and periodic events run on that clock (see flow.h); workers get it
 * with every packet and in a tick every 100 ms of clock.
 *
 * Files: pipeline.c (the capture side), worker.c, payload.c, output_eve.c,
 * output_stats.c, emitter.c; what they share is pipeline_int.h.
 *
 * All functions here are called from the capture thread only.
 */
#ifndef FH_PIPELINE_H
#define FH_PIPELINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/jbuf.h"
#include "config.h"
#include "decode.h"
#include "arp.h"
#include "dpi.h"
#include "flow.h"
#include "geoip.h"
#include "reassembly.h"
#include "ring.h"
#include "emitter.h"
#include "sink.h"
#include "yara_scan.h"

#define APP_STATS_SLOTS      1024
#define YARA_MAX_SCAN_BYTES  (64u << 20) /* largest yara.max_bytes */
#define PIPELINE_MAX_THREADS 64

typedef struct {
    char name[32];
    uint64_t flows;
} app_stat;

#define CAPTURE_MAX_IFACES 32 /* live interfaces in one sensor (-i, capture.interfaces) */

/*
 * One live interface's counters (one pcap handle): frames the sensor read from
 * it, and pcap_stats() as 64-bit totals since the handle was opened. What each
 * libpcap counter means on Linux is in docs/events.md (stats).
 */
typedef struct {
    char name[64];
    uint64_t packets, bytes;
    uint64_t kernel_packets, kernel_drops, ifdrops;
} capture_iface_stats;

/* Capture-level counters reported in stats events (filled by the source). */
typedef struct {
    uint64_t packets, bytes;
    bool has_kernel;
    uint64_t kernel_packets, kernel_drops, ifdrops; /* sums over the interfaces */
    uint64_t truncated_files;
    unsigned n_ifaces; /* live capture: the interfaces, in -i order */
    capture_iface_stats ifaces[CAPTURE_MAX_IFACES];
} capture_stats;

typedef struct pipeline pipeline;
typedef struct pworker pworker;

/*
 * The capture side: the decoder (with IP defragmentation, so fragments and
 * tunnelled packets are dispatched by their innermost flow), the capture
 * counters, anomaly and stats events, and the workers.
 */
struct pipeline {
    const sensor_config *cfg;
    struct fh_metrics *metrics; /* /metrics listener (metrics.listen), NULL: none */
    decoder dec;
    geoip *geo; /* shared, may be NULL */
    event_sink *sink;
    pthread_mutex_t sink_lock;           /* worker threads: the sink's writers take it */
    struct ftp_expect_table *ftp_expect; /* FTP data endpoints (ftp.enabled); shared, locked */
    jbuf jb;
    emitter out;

    uint64_t clock;   /* microseconds; highest packet time seen */
    uint64_t last_ts; /* time of the last packet, for stats timestamps */
    _Atomic uint64_t
        stats_us;        /* periodic stats interval; 0 = only at the end (SIGHUP may change it) */
    uint64_t next_stats; /* clock of the next periodic stats event */
    uint64_t next_expire;

    capture_stats cap;
    capture_iface_stats cap_prev[CAPTURE_MAX_IFACES]; /* at the last stats event (deltas) */
    int iface; /* index in cap.ifaces of the packet being processed; -1 = pcap input */
    /* Called before each stats event so the source can fill kernel counters. */
    void (*refresh_capture)(void *arg, capture_stats *cap);
    void *refresh_arg;

    pworker *workers; /* pipeline_int.h */
    unsigned nworkers;
    bool threaded;         /* workers run on their own threads, fed through rings */
    _Atomic uint32_t acks; /* barrier: workers that reached it */
    uint64_t oversize;     /* packets too large for a ring record (counted, not processed) */
    arp_table arp;         /* ARP bindings (arp.c), capture thread only */
    ra_table ra;           /* IPv6 routers seen in router advertisements (arp.c) */
    app_stat apps_total[APP_STATS_SLOTS]; /* the stats event's merge of the workers' tables */
};

/* Totals over the workers, for the end-of-run summary. */
typedef struct {
    uint64_t packets, flows, events, events_dropped, write_errors, malformed;
} pipeline_totals;

/*
 * Sets up a pipeline with cfg->threads workers (0 = one per online CPU; 1 =
 * no worker thread: the caller's thread does everything). Flow, reassembly
 * and scan-buffer limits are shared out evenly between the workers. On
 * failure writes the reason to err.
 */
fh_err pipeline_init(pipeline *p, const sensor_config *cfg, geoip *geo, event_sink *sink, char *err,
                     size_t errlen);
/*
 * Turns payload inspection (reassembly + YARA) on with the rules in slot
 * (shared, not owned; it must outlive the pipeline). Call before the first
 * packet. FH_ERR_NOMEM if no scanner can be made.
 */
fh_err pipeline_set_yara(pipeline *p, yara_rules_slot *slot, char *err, size_t errlen);

/* Starts the worker threads (after pipeline_set_yara, before the first packet). */
fh_err pipeline_start(pipeline *p, char *err, size_t errlen);

/* Ends all flows, writes nothing more, stops the workers, frees everything it owns. */
void pipeline_free(pipeline *p);

/* Processes one captured frame. */
void pipeline_packet(pipeline *p, int linktype, const uint8_t *frame, uint32_t caplen,
                     uint32_t wire_len, uint64_t ts_us);

/* Live capture without traffic: advance the clock to `now_us` (wall clock). */
void pipeline_tick(pipeline *p, uint64_t now_us);

/* End of one input (a pcap file, or the capture): flush flows and fragments, write stats. */
void pipeline_end_of_input(pipeline *p);

/* Writes a stats event now (timestamp: last packet, or now_us if non-zero). */
void pipeline_write_stats(pipeline *p, uint64_t now_us);

/* Hands buffered events to the sink and flushes it. */
fh_err pipeline_flush(pipeline *p);

/* Lets the sink do its background work (delivery reports, spool replay). */
void pipeline_poll(pipeline *p);

/* Sums over the workers (call between inputs or at the end, not while packets flow). */
void pipeline_get_totals(pipeline *p, pipeline_totals *t);

#endif
