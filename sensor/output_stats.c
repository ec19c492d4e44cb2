/*
 * output_stats.c - the capture side's EVE writers: the stats event (capture,
 * decoder, flows, payload inspection, applications, workers, the sinks'
 * counters) and sampled anomaly events (decode errors).
 */
#include "pipeline_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "community_id.h"
#include "metrics.h"

/* Dropped / (delivered + dropped); on Linux ps_recv already counts ps_drop. */
static double drop_ratio(uint64_t recv, uint64_t drop, uint64_t ifdrop)
{
    double r = recv + ifdrop ? (double)(drop + ifdrop) / (double)(recv + ifdrop) : 0.0;

    return r > 1.0 ? 1.0 : r;
}

static void write_iface_counters(jbuf *b, uint64_t packets, uint64_t bytes, uint64_t recv,
                                 uint64_t drop, uint64_t ifdrop)
{
    jbuf_u64(b, "packets", packets);
    jbuf_u64(b, "bytes", bytes);
    jbuf_u64(b, "kernel_packets", recv);
    jbuf_u64(b, "kernel_drops", drop);
    jbuf_u64(b, "ifdrops", ifdrop);
    jbuf_fixed(b, "drop_ratio", drop_ratio(recv, drop, ifdrop), 6);
}

/*
 * capture.interfaces: per live interface, totals since it was opened and, in
 * "delta", the change since the previous stats event (which becomes the base).
 */
static void write_iface_stats(pipeline *p, jbuf *b)
{
    jbuf_arr_open(b, "interfaces");
    for (unsigned i = 0; i < p->cap.n_ifaces && i < CAPTURE_MAX_IFACES; i++) {
        const capture_iface_stats *c = &p->cap.ifaces[i];
        capture_iface_stats *o = &p->cap_prev[i];

        jbuf_obj_open(b, NULL);
        jbuf_str(b, "name", c->name);
        write_iface_counters(b, c->packets, c->bytes, c->kernel_packets, c->kernel_drops,
                             c->ifdrops);
        jbuf_obj_open(b, "delta");
        write_iface_counters(b, c->packets - o->packets, c->bytes - o->bytes,
                             c->kernel_packets - o->kernel_packets,
                             c->kernel_drops - o->kernel_drops, c->ifdrops - o->ifdrops);
        jbuf_obj_close(b);
        jbuf_obj_close(b);
        *o = *c;
    }
    jbuf_arr_close(b);
}

/*
 * Counter structs summed over the workers. Each holds only uint64_t counters
 * (checked below), so they are added as arrays.
 */
static void add_counters(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *s = src;

    for (size_t i = 0; i < size / sizeof(uint64_t); i++)
        d[i] += s[i];
}

_Static_assert(sizeof(reasm_stats) % sizeof(uint64_t) == 0, "reasm_stats: uint64_t only");

_Static_assert(sizeof(flow_stats) % sizeof(uint64_t) == 0, "flow_stats: uint64_t only");

_Static_assert(sizeof(dpi_stats) % sizeof(uint64_t) == 0, "dpi_stats: uint64_t only");

_Static_assert(sizeof(payload_counters) % sizeof(uint64_t) == 0, "payload_counters: uint64_t only");

static void write_payload_stats(const pipeline *pl, jbuf *b, bool yara)
{
    payload_counters w = {0};
    reasm_stats rs = {0};
    size_t rmem = 0, rpeak = 0, buf_mem = 0, buf_mem_peak = 0;
    uint64_t rule_sets = 0;
    uint32_t rules = 0;

    for (unsigned i = 0; i < pl->nworkers; i++) {
        const payload_worker *x = &pl->workers[i].pw;

        add_counters(&rs, &x->reasm.stats, sizeof(rs));
        add_counters(&w, &x->cnt, sizeof(w));
        rmem += x->reasm.mem_used;
        rpeak += x->reasm.mem_peak;
        buf_mem += x->buf_mem;
        buf_mem_peak += x->buf_mem_peak;
        /* Rule sets the sensor has used: every worker makes a scanner per set. */
        if (x->rule_sets > rule_sets)
            rule_sets = x->rule_sets;
        if (x->scanner)
            rules = yara_rules_count(yara_scanner_rules(x->scanner));
    }

    jbuf_obj_open(b, "reassembly");
    jbuf_u64(b, "segments", rs.segments);
    jbuf_u64(b, "delivered_bytes", rs.delivered_bytes);
    jbuf_u64(b, "midstream", rs.midstream);
    jbuf_u64(b, "retransmit_bytes", rs.retransmit_bytes);
    jbuf_u64(b, "overlap_bytes", rs.overlap_bytes);
    jbuf_u64(b, "overlap_conflict_bytes", rs.overlap_conflict_bytes);
    jbuf_u64(b, "gaps", rs.gaps);
    jbuf_u64(b, "gap_bytes", rs.gap_bytes);
    jbuf_u64(b, "dir_cap_skips", rs.dir_cap_skips);
    jbuf_u64(b, "after_depth_bytes", rs.after_depth_bytes);
    jbuf_u64(b, "syn_ignored", rs.syn_ignored);
    jbuf_u64(b, "memory", rmem);
    jbuf_u64(b, "memory_peak", rpeak);
    jbuf_obj_open(b, "drops");
    for (int r = 0; r < REASM_DROP_COUNT; r++)
        jbuf_u64(b, reasm_drop_name((reasm_drop_reason)r) + 6, rs.drops[r]);
    jbuf_obj_close(b);
    jbuf_obj_open(b, "drop_bytes");
    for (int r = 0; r < REASM_DROP_COUNT; r++)
        jbuf_u64(b, reasm_drop_name((reasm_drop_reason)r) + 6, rs.drop_bytes[r]);
    jbuf_obj_close(b);
    jbuf_obj_close(b);

    if (pl->cfg->http_enabled) {
        jbuf_obj_open(b, "http");
        jbuf_u64(b, "flows", w.http_flows);
        jbuf_u64(b, "transactions", w.http_txs);
        jbuf_u64(b, "errors", w.http_errors);
        jbuf_obj_close(b);
        jbuf_obj_open(b, "files");
        jbuf_u64(b, "files", w.files);
        jbuf_u64(b, "bytes", w.file_bytes);
        jbuf_u64(b, "typed_by_signature", w.files_sniffed);
        jbuf_u64(b, "raw_tcp", w.raw_files);
        jbuf_u64(b, "smb", w.smb_files);
        jbuf_obj_close(b);
    }
    if (pl->cfg->ftp_enabled) {
        jbuf_obj_open(b, "ftp");
        jbuf_u64(b, "flows", w.ftp_flows);
        jbuf_u64(b, "events", w.ftp_events);
        jbuf_u64(b, "bounces", w.ftp_bounces);
        jbuf_u64(b, "data_connections", w.ftp_data_flows);
        jbuf_u64(b, "data_files", w.ftp_data_files);
        jbuf_obj_close(b);
    }
    if (pl->cfg->smtp_enabled) {
        jbuf_obj_open(b, "smtp");
        jbuf_u64(b, "flows", w.smtp_flows);
        jbuf_u64(b, "messages", w.smtp_messages);
        jbuf_u64(b, "attachments", w.smtp_attachments);
        jbuf_u64(b, "cut", w.smtp_cut);
        jbuf_u64(b, "mime_errors", w.smtp_mime_errors);
        jbuf_obj_close(b);
    }
    if (pl->cfg->krb5_enabled) {
        jbuf_obj_open(b, "krb5");
        jbuf_u64(b, "messages", w.krb5_messages);
        jbuf_u64(b, "weak_tickets", w.krb5_weak_tickets);
        jbuf_obj_close(b);
    }
    if (pl->cfg->dns_enabled) {
        jbuf_obj_open(b, "dns");
        jbuf_u64(b, "queries", w.dns_queries);
        jbuf_u64(b, "answers", w.dns_answers);
        jbuf_u64(b, "malformed", w.dns_malformed);
        jbuf_obj_close(b);
    }
    if (pl->cfg->smb_enabled) {
        jbuf_obj_open(b, "smb");
        jbuf_u64(b, "flows", w.smb_flows);
        jbuf_u64(b, "events", w.smb_events);
        jbuf_obj_close(b);
    }
    if (pl->cfg->tls_enabled) {
        jbuf_obj_open(b, "tls");
        jbuf_u64(b, "flows", w.tls_flows);
        jbuf_u64(b, "anomalies", w.tls_anomalies);
        jbuf_obj_close(b);
    }

    if (!yara)
        return;
    jbuf_obj_open(b, "yara");
    jbuf_u64(b, "rules", rules);
    jbuf_u64(b, "rule_sets", rule_sets);
    jbuf_u64(b, "scans", w.scans);
    jbuf_u64(b, "tcp_scans", w.tcp_scans);
    jbuf_u64(b, "udp_scans", w.udp_scans);
    jbuf_u64(b, "scans_with_gaps", w.scans_with_gaps);
    jbuf_u64(b, "scanned_bytes", w.scanned_bytes);
    jbuf_u64(b, "matches", w.matches);
    jbuf_u64(b, "udp_duplicates", w.udp_duplicates);
    jbuf_u64(b, "duplicates", w.duplicates);
    jbuf_u64(b, "udp_skipped", w.udp_skipped);
    jbuf_u64(b, "udp_opaque", w.udp_opaque);
    jbuf_u64(b, "udp_datagrams", w.udp_datagrams_kept);
    jbuf_u64(b, "tcp_unscanned", w.tcp_unscanned);
    jbuf_u64(b, "file_scans", w.file_scans);
    jbuf_u64(b, "format_scans", w.format_scans);
    jbuf_u64(b, "cache_hits", w.cache_hits);
    jbuf_u64(b, "prefiltered", w.prefiltered);
    jbuf_u64(b, "timeouts", w.timeouts);
    jbuf_u64(b, "errors", w.errors);
    jbuf_u64(b, "buffer_memory", buf_mem);
    jbuf_u64(b, "buffer_memory_peak", buf_mem_peak);
    jbuf_obj_open(b, "drops");
    jbuf_u64(b, "memcap", w.memcap_drops);
    jbuf_obj_close(b);
    jbuf_obj_open(b, "drop_bytes");
    jbuf_u64(b, "memcap", w.memcap_drop_bytes);
    jbuf_obj_close(b);
    jbuf_obj_close(b);
}

static int cmp_app(const void *a, const void *b)
{
    return strcmp((*(const app_stat *const *)a)->name, (*(const app_stat *const *)b)->name);
}

/* Application protocols seen by all workers, in name order so output is deterministic. */
static void write_app_stats(pipeline *p, jbuf *b)
{
    app_stat *all = p->apps_total;
    const app_stat *order[APP_STATS_SLOTS];
    int n = 0;

    memset(all, 0, sizeof(p->apps_total));
    for (unsigned w = 0; w < p->nworkers; w++)
        for (int i = 0; i < APP_STATS_SLOTS; i++)
            if (p->workers[w].apps[i].name[0])
                eve_app_table_add(all, p->workers[w].apps[i].name, p->workers[w].apps[i].flows);
    for (int i = 0; i < APP_STATS_SLOTS; i++)
        if (all[i].name[0])
            order[n++] = &all[i];
    qsort(order, (size_t)n, sizeof(order[0]), cmp_app);
    jbuf_obj_open(b, "app_proto");
    for (int i = 0; i < n; i++)
        jbuf_u64(b, order[i]->name, order[i]->flows);
    jbuf_obj_close(b);
}

/* "workers": the thread count and, with worker threads, how the load was shared. */
static void write_worker_stats(const pipeline *p, jbuf *b)
{
    jbuf_obj_open(b, "workers");
    jbuf_u64(b, "threads", p->threaded ? p->nworkers : 0);
    if (p->threaded) {
        jbuf_u64(b, "oversize_packets", p->oversize);
        jbuf_arr_open(b, "per_thread");
        for (unsigned i = 0; i < p->nworkers; i++) {
            const pworker *w = &p->workers[i];

            jbuf_obj_open(b, NULL);
            jbuf_u64(b, "packets", w->packets);
            jbuf_u64(b, "flows_active", w->flows.stats.active);
            jbuf_u64(b, "queue_full", w->ring.full_waits);
            jbuf_obj_close(b);
        }
        jbuf_arr_close(b);
    }
    jbuf_obj_close(b);
}

/*
 * Writes the stats event. The workers must be quiet: no worker threads, or
 * every worker past a barrier with nothing queued (its counters are read here).
 */
void eve_stats_event(pipeline *p, uint64_t now_us)
{
    jbuf *b = &p->jb;
    const decode_stats *d = &p->dec.stats;
    flow_stats fs = {0};
    dpi_stats ds = {0};
    uint64_t flow_mem = 0, flow_mem_peak = 0, unaccounted = 0, geo_lookups = 0, geo_found = 0,
             geo_errors = 0, geo_cached = 0;
    uint64_t max_active = 0;
    pipeline_totals t;
    bool yara = false, payload = false;

    for (unsigned i = 0; i < p->nworkers; i++) {
        const pworker *w = &p->workers[i];

        add_counters(&fs, &w->flows.stats, sizeof(fs));
        if (w->flows.stats.max_active > max_active)
            max_active = w->flows.stats.max_active;
        if (w->dpi)
            add_counters(&ds, dpi_engine_stats(w->dpi), sizeof(ds));
        flow_mem += w->flows.mem_used;
        flow_mem_peak += w->flows.mem_peak;
        unaccounted += w->flows_unaccounted;
        geo_lookups += w->geo_lookups;
        geo_found += w->geo_found;
        geo_errors += w->geo_errors;
        geo_cached += w->geo_cached;
        yara |= w->pw.slot != NULL;
        payload |= w->pw.active;
    }
    /* The most flows alive at once in one worker; with one worker, in the sensor. */
    fs.max_active = max_active;

    if (p->refresh_capture)
        p->refresh_capture(p->refresh_arg, &p->cap);
    jbuf_reset(b);
    eve_header(p->cfg, &p->cap, b, now_us ? now_us : p->last_ts, "stats", -1);
    jbuf_obj_open(b, "stats");

    jbuf_obj_open(b, "capture");
    jbuf_u64(b, "packets", p->cap.packets);
    jbuf_u64(b, "bytes", p->cap.bytes);
    if (p->cap.has_kernel) {
        jbuf_u64(b, "kernel_packets", p->cap.kernel_packets);
        jbuf_u64(b, "kernel_drops", p->cap.kernel_drops);
        jbuf_u64(b, "ifdrops", p->cap.ifdrops);
        jbuf_fixed(b, "drop_ratio",
                   drop_ratio(p->cap.kernel_packets, p->cap.kernel_drops, p->cap.ifdrops), 6);
    }
    if (p->cap.truncated_files)
        jbuf_u64(b, "truncated_files", p->cap.truncated_files);
    if (p->cap.n_ifaces)
        write_iface_stats(p, b);
    jbuf_obj_close(b);

    jbuf_obj_open(b, "decoder");
    jbuf_u64(b, "packets", d->packets);
    jbuf_u64(b, "bytes", d->bytes);
    jbuf_u64(b, "ipv4", d->ipv4);
    jbuf_u64(b, "ipv6", d->ipv6);
    jbuf_u64(b, "tcp", d->tcp);
    jbuf_u64(b, "udp", d->udp);
    jbuf_u64(b, "icmp", d->icmp);
    jbuf_u64(b, "sctp", d->sctp);
    jbuf_u64(b, "other_l4", d->other_l4);
    jbuf_u64(b, "vlan", d->vlan);
    jbuf_u64(b, "mpls", d->mpls);
    jbuf_u64(b, "pppoe", d->pppoe);
    jbuf_u64(b, "gre", d->gre);
    jbuf_u64(b, "vxlan", d->vxlan);
    jbuf_u64(b, "geneve", d->geneve);
    jbuf_u64(b, "gtp", d->gtp);
    jbuf_u64(b, "ipip", d->ipip);
    jbuf_u64(b, "erspan", d->erspan);
    jbuf_u64(b, "fragments", d->fragments);
    jbuf_u64(b, "reassembled", d->reassembled);
    jbuf_u64(b, "non_ip", d->non_ip);
    jbuf_u64(b, "arp", d->arp);
    jbuf_obj_open(b, "errors");
    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        if (d->errors[i])
            jbuf_u64(b, decode_reason_name((decode_reason)i), d->errors[i]);
    jbuf_obj_close(b);
    jbuf_obj_open(b, "packet_anomalies");
    for (int i = 0; i < DECODE_PKT_COUNT; i++)
        jbuf_u64(b, decode_pkt_anomaly_name((decode_pkt_anomaly)i), d->pkt_anomalies[i]);
    jbuf_obj_close(b);
    jbuf_obj_close(b);

    jbuf_obj_open(b, "flow");
    jbuf_u64(b, "created", fs.created);
    jbuf_u64(b, "ended", fs.ended);
    jbuf_u64(b, "evicted", fs.evicted);
    jbuf_u64(b, "active", fs.active);
    jbuf_u64(b, "max_active", fs.max_active);
    jbuf_u64(b, "updates", fs.updates);
    jbuf_u64(b, "unaccounted_packets", unaccounted);
    jbuf_obj_open(b, "by_reason");
    for (int r = 0; r < FLOW_REASON_COUNT; r++)
        if (r != FLOW_REASON_UPDATE)
            jbuf_u64(b, flow_reason_name((flow_reason)r), fs.by_reason[r]);
    jbuf_obj_close(b);
    jbuf_u64(b, "memory", flow_mem);
    jbuf_u64(b, "memory_peak", flow_mem_peak);
    jbuf_obj_close(b);

    if (p->cfg->dpi.enabled) {
        jbuf_obj_open(b, "dpi");
        jbuf_u64(b, "flows_detected", ds.flows_detected);
        jbuf_u64(b, "flows_guessed", ds.flows_guessed);
        jbuf_u64(b, "flows_unknown", ds.flows_unknown);
        jbuf_u64(b, "packets_inspected", ds.packets_inspected);
        jbuf_obj_close(b);
    }

    write_app_stats(p, b);
    if (payload)
        write_payload_stats(p, b, yara);

    jbuf_obj_open(b, "geoip");
    jbuf_u64(b, "lookups", geo_lookups);
    jbuf_u64(b, "found", geo_found);
    jbuf_u64(b, "errors", geo_errors);
    jbuf_u64(b, "cached", geo_cached);
    jbuf_obj_close(b);

    write_worker_stats(p, b);

    if (p->sink->write_stats) {
        if (p->threaded)
            pthread_mutex_lock(&p->sink_lock);
        p->sink->write_stats(p->sink, b);
        if (p->threaded)
            pthread_mutex_unlock(&p->sink_lock);
    }

    jbuf_obj_open(b, "output");
    pipeline_get_totals(p, &t);
    jbuf_u64(b, "events", t.events + 1); /* this one included */
    jbuf_u64(b, "dropped", t.events_dropped);
    jbuf_u64(b, "write_errors", t.write_errors);
    jbuf_obj_close(b);

    jbuf_obj_close(b);
    jbuf_obj_close(b);
    if (p->metrics && !jbuf_failed(b))
        sensor_metrics_publish(p->metrics, jbuf_cstr(b), strlen(jbuf_cstr(b)));
    emitter_emit(&p->out, p->cfg, b, "stats", NULL);
}

/* An anomaly of one packet (capture thread): type "decode" (an error: the packet is
 * dropped) or "packet" (one no correct stack sends: the packet goes on). Its layer is the
 * part of the name before the dot. */
static void packet_anomaly(pipeline *p, const decode_pkt *k, const char *type, const char *name,
                           uint64_t count)
{
    jbuf *b = &p->jb;
    const char *dot = strchr(name, '.');
    char a[INET6_ADDRSTRLEN];

    jbuf_reset(b);
    eve_header(p->cfg, &p->cap, b, k->ts_us, "anomaly", p->iface);
    if (k->ip_version == 4 || k->ip_version == 6) {
        eve_ip(k->ip_version, k->src, a, sizeof(a));
        jbuf_str(b, "src_ip", a);
        eve_ip(k->ip_version, k->dst, a, sizeof(a));
        jbuf_str(b, "dest_ip", a);
    }
    jbuf_obj_open(b, "anomaly");
    jbuf_str(b, "type", type);
    jbuf_str(b, "event", name);
    jbuf_strn(b, "layer", name, dot ? (size_t)(dot - name) : strlen(name));
    jbuf_u64(b, "count", count);
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emitter_emit(&p->out, p->cfg, b, "anomaly", NULL);
}

void eve_anomaly_event(pipeline *p, const decode_pkt *k, decode_reason r)
{
    packet_anomaly(p, k, "decode", decode_reason_name(r), p->dec.stats.errors[r]);
}

void eve_packet_anomaly(pipeline *p, const decode_pkt *k, decode_pkt_anomaly a)
{
    packet_anomaly(p, k, "packet", decode_pkt_anomaly_name(a), p->dec.stats.pkt_anomalies[a]);
}

/*
 * The head of a link-layer event (arp, ipv6_ra; capture thread): header, the addresses
 * (IPv4 or IPv6 by ver), the frame's VLANs and, when the link has them, its MACs.
 */
static void l2_event_head(pipeline *p, jbuf *b, const decode_pkt *k, const char *type, int ver,
                          const uint8_t *src, const uint8_t *dst)
{
    char a[INET6_ADDRSTRLEN];

    jbuf_reset(b);
    eve_header(p->cfg, &p->cap, b, k->ts_us, type, p->iface);
    eve_ip(ver, src, a, sizeof(a));
    jbuf_str(b, "src_ip", a);
    eve_ip(ver, dst, a, sizeof(a));
    jbuf_str(b, "dest_ip", a);
    if (k->vlan_count) {
        jbuf_arr_open(b, "vlan");
        for (int i = 0; i < k->vlan_count; i++)
            jbuf_u64(b, NULL, k->vlan[i]);
        jbuf_arr_close(b);
    }
    if (k->has_mac) /* not on Linux cooked captures */
        eve_ether(b, k->mac_src, k->mac_dst);
}

/*
 * An ARP message (capture thread): an `arp` event when it shows a binding of its sender
 * that is new or changed (arp.c), nothing when the binding is known.
 */
void eve_arp(pipeline *p, const decode_pkt *k)
{
    jbuf *b = &p->jb;
    uint8_t prev[6];
    char a[INET6_ADDRSTRLEN];
    arp_verdict v;
    bool gratuitous = !memcmp(k->arp_spa, k->arp_tpa, 4);
    uint16_t vlan = k->vlan_count ? k->vlan[0] : 0;
    static const uint8_t zero[4];

    if (!memcmp(k->arp_spa, zero, 4))
        return; /* a probe: the sender has no address yet */
    v = arp_table_bind(&p->arp, k->arp_spa, vlan, k->arp_sha, k->ts_us, prev);
    if (v == ARP_SAME)
        return;
    l2_event_head(p, b, k, "arp", 4, k->arp_spa, k->arp_tpa);
    jbuf_obj_open(b, "arp");
    jbuf_str(b, "opcode", k->arp_op == 1 ? "request" : k->arp_op == 2 ? "reply" : "other");
    eve_ip(4, k->arp_spa, a, sizeof(a));
    jbuf_str(b, "src_ip", a);
    eve_put_mac(b, "src_mac", k->arp_sha);
    eve_ip(4, k->arp_tpa, a, sizeof(a));
    jbuf_str(b, "dest_ip", a);
    eve_put_mac(b, "dest_mac", k->arp_tha);
    jbuf_bool(b, "gratuitous", gratuitous);
    jbuf_str(b, "binding", v == ARP_NEW ? "new" : "changed");
    if (v == ARP_CHANGED) {
        eve_put_mac(b, "previous_mac", prev);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emitter_emit(&p->out, p->cfg, b, "arp", NULL);
}

/*
 * An ICMPv6 router advertisement (capture thread; the packet also goes on to its flow):
 * an `ipv6_ra` event when its router is new, answers from another MAC, or moved between
 * offering and withdrawing itself (router lifetime 0).
 */
void eve_router_advertisement(pipeline *p, const decode_pkt *k)
{
    jbuf *b = &p->jb;
    const uint8_t *ra = k->payload; /* after type, code, checksum */
    uint32_t len = k->payload_len, off;
    uint8_t prev[6], mac[6];
    char a[INET6_ADDRSTRLEN];
    bool mac_changed, has_opt_mac = false;
    uint16_t lifetime;
    arp_verdict v;

    if (!ra || len < 12 || k->ip_version != 6)
        return;
    lifetime = (uint16_t)(ra[2] << 8 | ra[3]);
    /* the router's MAC: its source link-layer option, else the frame's */
    if (k->has_mac)
        memcpy(mac, k->mac_src, 6);
    for (off = 12; off + 8 <= len && ra[off + 1];) {
        uint32_t olen = (uint32_t)ra[off + 1] * 8;

        if (off + olen > len)
            break;
        if (ra[off] == 1 && olen >= 8) {
            memcpy(mac, ra + off + 2, 6);
            has_opt_mac = true;
        }
        off += olen;
    }
    if (!k->has_mac && !has_opt_mac)
        return;
    v = ra_table_bind(&p->ra, k->src, k->vlan_count ? k->vlan[0] : 0, mac, lifetime == 0, k->ts_us,
                      prev, &mac_changed);
    if (v == ARP_SAME)
        return;
    l2_event_head(p, b, k, "ipv6_ra", 6, k->src, k->dst);
    jbuf_obj_open(b, "ipv6_ra");
    eve_put_mac(b, "router_mac", mac);
    jbuf_u64(b, "router_lifetime", lifetime);
    jbuf_u64(b, "hop_limit", ra[0]);
    jbuf_bool(b, "managed", (ra[1] & 0x80) != 0);
    jbuf_bool(b, "other", (ra[1] & 0x40) != 0);
    jbuf_arr_open(b, "prefixes");
    for (off = 12; off + 8 <= len && ra[off + 1];) {
        uint32_t olen = (uint32_t)ra[off + 1] * 8;

        if (off + olen > len)
            break;
        if (ra[off] == 3 && olen >= 32) {
            char pfx[INET6_ADDRSTRLEN + 8];

            eve_ip(6, ra + off + 16, a, sizeof(a));
            snprintf(pfx, sizeof(pfx), "%s/%u", a, ra[off + 2] <= 128 ? ra[off + 2] : 128);
            jbuf_str(b, NULL, pfx);
        }
        off += olen;
    }
    jbuf_arr_close(b);
    jbuf_str(b, "binding", v == ARP_NEW ? "new" : "changed");
    if (mac_changed) {
        eve_put_mac(b, "previous_mac", prev);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emitter_emit(&p->out, p->cfg, b, "ipv6_ra", NULL);
}
