/*
 * pipeline.c - decode -> flow -> DPI -> enrichment -> events; see pipeline.h.
 *
 * Events are built here (the EVE layout of docs/events.md): flow events when
 * a flow ends or updates, application metadata events (dns, http, tls, ssh)
 * when nDPI's detection of a flow is over, stats events, and sampled anomaly
 * events.
 */
#include "pipeline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fh_log.h"
#include "community_id.h"

#define SCHEMA_VERSION  "1.0"
#define EXPIRE_EVERY_US 100000 /* look at the timeout lists at most 10 times a second */

void format_timestamp(uint64_t ts_us, char *out, size_t len)
{
    time_t secs = (time_t)(ts_us / 1000000u);
    struct tm tm;
    char date[32];

    gmtime_r(&secs, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06u+0000", date, (unsigned)(ts_us % 1000000u));
}

static void format_ip(int version, const uint8_t *a, char *out, size_t len)
{
    inet_ntop(version == 4 ? AF_INET : AF_INET6, a, out, (socklen_t)len);
}

static void format_mac(const uint8_t *m, char *out, size_t len)
{
    snprintf(out, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
    switch (proto) {
    case IPPROTO_TCP:
        return "TCP";
    case IPPROTO_UDP:
        return "UDP";
    case IPPROTO_ICMP:
        return "ICMP";
    case IPPROTO_ICMPV6:
        return "IPv6-ICMP";
    case IPPROTO_SCTP:
        return "SCTP";
    }
    snprintf(buf, len, "%u", proto);
    return buf;
}

static void common_header(pipeline *p, jbuf *b, uint64_t ts_us, const char *type)
{
    char ts[48];

    format_timestamp(ts_us, ts, sizeof(ts));
    jbuf_obj_open(b, NULL);
    jbuf_str(b, "timestamp", ts);
    jbuf_str(b, "event_type", type);
    jbuf_str(b, "schema_version", SCHEMA_VERSION);
    jbuf_obj_open(b, "sensor");
    jbuf_str(b, "id", p->cfg->sensor_id);
    jbuf_str(b, "segment", p->cfg->segment);
    jbuf_obj_close(b);
}

/*
 * Hands the event in p->jb to the sink. The key keeps a flow's events
 * together (one Kafka partition): its Community ID; events of no flow use
 * the sensor id.
 */
static void emit(pipeline *p, const char *event_type, const char *key)
{
    jbuf *b = &p->jb;

    if (!key)
        key = p->cfg->sensor_id;
    if (jbuf_failed(b)) {
        p->events_dropped++;
        return;
    }
    if (p->sink->write(p->sink, event_type, b->data, b->len, key, strlen(key)) != FH_OK) {
        p->write_errors++;
        p->events_dropped++;
        return;
    }
    p->events++;
    /* Delivery reports and spool replay, every so often on the packet path. */
    if (p->sink->poll && (p->events & 63) == 0)
        p->sink->poll(p->sink);
}

/* ---- flow events --------------------------------------------------------- */

/* Looks up one address; returns true when something was found. */
static bool geo_side(pipeline *p, int version, const uint8_t *a, geoip_result *r)
{
    int family = version == 4 ? AF_INET : AF_INET6;
    int rc;

    /* Counted as a lookup only for public addresses (geoip_lookup skips the rest). */
    if (!geoip_is_public(family, a))
        return false;
    p->geo_lookups++;
    rc = geoip_lookup(p->geo, family, a, r);
    if (rc < 0)
        p->geo_errors++;
    if (rc <= 0)
        return false;
    p->geo_found++;
    return true;
}

static void write_geo_result(jbuf *b, const char *key, const geoip_result *r)
{
    jbuf_obj_open(b, key);
    if (r->country[0])
        jbuf_str(b, "country", r->country);
    if (r->asn)
        jbuf_u64(b, "asn", r->asn);
    if (r->as_org[0])
        jbuf_str(b, "as_org", r->as_org);
    if (r->city[0])
        jbuf_str(b, "city", r->city);
    jbuf_obj_close(b);
}

static void write_geo(pipeline *p, jbuf *b, const flow *f)
{
    geoip_result src, dst;
    bool has_src, has_dst;

    if (!p->geo)
        return;
    has_src = geo_side(p, f->ip_version, f->cli, &src);
    has_dst = geo_side(p, f->ip_version, f->srv, &dst);
    if (!has_src && !has_dst)
        return;
    jbuf_obj_open(b, "geo");
    if (has_src)
        write_geo_result(b, "src", &src);
    if (has_dst)
        write_geo_result(b, "dest", &dst);
    jbuf_obj_close(b);
}

static const char *tcp_state_name(uint8_t st)
{
    switch (st) {
    case TCP_ST_SYN_SENT:
        return "syn_sent";
    case TCP_ST_SYN_RECV:
        return "half_open";
    case TCP_ST_ESTABLISHED:
    case TCP_ST_CLOSING:
        return "established";
    case TCP_ST_CLOSED:
        return "closed";
    case TCP_ST_RESET:
        return "reset";
    }
    return "midstream"; /* picked up without a handshake, one side seen so far */
}

static void write_tcp(jbuf *b, const flow *f)
{
    uint8_t all = f->tcp_flags[0] | f->tcp_flags[1];
    char hex[4];

    jbuf_obj_open(b, "tcp");
    snprintf(hex, sizeof(hex), "%02x", all);
    jbuf_str(b, "tcp_flags", hex);
    snprintf(hex, sizeof(hex), "%02x", f->tcp_flags[0]);
    jbuf_str(b, "tcp_flags_ts", hex);
    snprintf(hex, sizeof(hex), "%02x", f->tcp_flags[1]);
    jbuf_str(b, "tcp_flags_tc", hex);
    if (all & 0x02)
        jbuf_bool(b, "syn", true);
    if (all & 0x10)
        jbuf_bool(b, "ack", true);
    if (all & 0x01)
        jbuf_bool(b, "fin", true);
    if (all & 0x04)
        jbuf_bool(b, "rst", true);
    if (all & 0x08)
        jbuf_bool(b, "psh", true);
    if (all & 0x20)
        jbuf_bool(b, "urg", true);
    jbuf_str(b, "state", tcp_state_name(f->tcp_state));
    jbuf_obj_close(b);
}

static const char *flow_state_name(const flow *f, flow_reason reason)
{
    if (f->proto == IPPROTO_TCP) {
        if (f->tcp_state == TCP_ST_CLOSED || f->tcp_state == TCP_ST_RESET)
            return "closed";
        if (f->tcp_state == TCP_ST_ESTABLISHED || f->tcp_state == TCP_ST_CLOSING)
            return "established";
        return "new";
    }
    (void)reason;
    return (f->pkts[0] && f->pkts[1]) ? "established" : "new";
}

static void app_stat_add(pipeline *p, const char *name)
{
    uint32_t h = 2166136261u, i;

    for (const char *s = name; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (uint32_t n = 0; n < APP_STATS_SLOTS; n++) {
        i = (h + n) & (APP_STATS_SLOTS - 1);
        if (p->apps[i].name[0] == '\0') {
            snprintf(p->apps[i].name, sizeof(p->apps[i].name), "%s", name);
            p->apps[i].flows = 1;
            return;
        }
        if (strcmp(p->apps[i].name, name) == 0) {
            p->apps[i].flows++;
            return;
        }
    }
}

/*
 * Opens an event of flow f: the common header, then the fields every event of
 * a flow carries (flow_id, endpoints with the client as src, proto, ICMP
 * type/code, vlan, community_id, app_proto). Leaves the object open; cid gets
 * the Community ID (the event's key).
 */
static void flow_header(pipeline *p, jbuf *b, const flow *f, uint64_t ts_us, const char *type,
                        char cid[COMMUNITY_ID_LEN])
{
    char a[INET6_ADDRSTRLEN], pbuf[8], app[32];

    common_header(p, b, ts_us, type);
    jbuf_u64(b, "flow_id", f->flow_id);
    format_ip(f->ip_version, f->cli, a, sizeof(a));
    jbuf_str(b, "src_ip", a);
    jbuf_u64(b, "src_port", f->cli_port);
    format_ip(f->ip_version, f->srv, a, sizeof(a));
    jbuf_str(b, "dest_ip", a);
    jbuf_u64(b, "dest_port", f->srv_port);
    jbuf_str(b, "proto", proto_name(f->proto, pbuf, sizeof(pbuf)));
    if (f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6) {
        jbuf_u64(b, "icmp_type", f->icmp_type);
        jbuf_u64(b, "icmp_code", f->icmp_code);
        community_id_v1((uint16_t)p->cfg->community_id_seed, f->ip_version, f->cli, f->srv,
                        f->proto, f->icmp_type, f->icmp_code, cid);
    } else {
        community_id_v1((uint16_t)p->cfg->community_id_seed, f->ip_version, f->cli, f->srv,
                        f->proto, f->cli_port, f->srv_port, cid);
    }
    if (f->vlan_count) {
        jbuf_arr_open(b, "vlan");
        for (int i = 0; i < f->vlan_count; i++)
            jbuf_u64(b, NULL, f->vlan[i]);
        jbuf_arr_close(b);
    }
    jbuf_str(b, "community_id", cid);
    if (p->dpi && dpi_app_proto(p->dpi, f, app, sizeof(app))[0])
        jbuf_str(b, "app_proto", app);
}

/*
 * Writes the application metadata events (dns, http, tls, ssh) of flow f that
 * are ready and not yet written: once per flow and kind, as soon as nDPI's
 * detection is over. ts_us is the time of the packet that ended detection,
 * or of the flow's last packet when the flow ends first.
 */
static void write_meta_events(pipeline *p, flow *f, uint64_t ts_us)
{
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];
    unsigned ready = dpi_take_meta_events(p->dpi, f);

    for (int k = 0; k < DPI_META_KINDS; k++) {
        const char *type = dpi_meta_kind_name((dpi_meta_kind)k);

        if (!(ready & (1u << k)))
            continue;
        jbuf_reset(b);
        flow_header(p, b, f, ts_us, type, cid);
        dpi_write_meta_event(p->dpi, f, (dpi_meta_kind)k, b);
        jbuf_obj_close(b);
        emit(p, type, cid);
    }
}

static void on_flow_end(flow *f, flow_reason reason, void *arg)
{
    pipeline *p = arg;
    jbuf *b = &p->jb;
    char a[INET6_ADDRSTRLEN], ts[48], cid[COMMUNITY_ID_LEN], app[32];

    if (reason != FLOW_REASON_UPDATE && p->dpi) {
        dpi_finish(p->dpi, &p->flows, f);
        write_meta_events(p, f, f->last_us);
    }

    jbuf_reset(b);
    flow_header(p, b, f, f->last_us, "flow", cid);
    if (p->dpi)
        dpi_write_json(p->dpi, f, b);
    if (f->has_mac) {
        jbuf_obj_open(b, "ether");
        format_mac(f->cli_mac, a, sizeof(a));
        jbuf_str(b, "src_mac", a);
        format_mac(f->srv_mac, a, sizeof(a));
        jbuf_str(b, "dest_mac", a);
        jbuf_obj_close(b);
    }
    if (f->tunnel_depth) {
        jbuf_obj_open(b, "tunnel");
        jbuf_str(b, "type", decode_tunnel_name(f->tunnel_type));
        jbuf_u64(b, "depth", f->tunnel_depth);
        if (f->tunnel_ip_version) {
            format_ip(f->tunnel_ip_version, f->tunnel_src, a, sizeof(a));
            jbuf_str(b, "src_ip", a);
            format_ip(f->tunnel_ip_version, f->tunnel_dst, a, sizeof(a));
            jbuf_str(b, "dest_ip", a);
        }
        jbuf_obj_close(b);
    }
    jbuf_obj_open(b, "flow");
    jbuf_u64(b, "pkts_toserver", f->pkts[FLOW_TOSERVER]);
    jbuf_u64(b, "pkts_toclient", f->pkts[FLOW_TOCLIENT]);
    jbuf_u64(b, "bytes_toserver", f->bytes[FLOW_TOSERVER]);
    jbuf_u64(b, "bytes_toclient", f->bytes[FLOW_TOCLIENT]);
    format_timestamp(f->first_us, ts, sizeof(ts));
    jbuf_str(b, "start", ts);
    format_timestamp(f->last_us, ts, sizeof(ts));
    jbuf_str(b, "end", ts);
    jbuf_u64(b, "age", (f->last_us - f->first_us) / 1000000u);
    jbuf_str(b, "state", flow_state_name(f, reason));
    jbuf_str(b, "reason", flow_reason_name(reason));
    jbuf_bool(b, "alerted", false);
    jbuf_obj_close(b);
    if (f->proto == IPPROTO_TCP)
        write_tcp(b, f);
    write_geo(p, b, f);
    jbuf_obj_close(b);
    emit(p, "flow", cid);

    if (reason != FLOW_REASON_UPDATE) {
        if (p->dpi) {
            dpi_app_proto(p->dpi, f, app, sizeof(app));
            app_stat_add(p, app[0] ? app : "unknown");
            dpi_flow_release(p->dpi, &p->flows, f);
        } else {
            app_stat_add(p, "unknown");
        }
    }
}

/* ---- stats and anomaly events --------------------------------------------- */

void pipeline_write_stats(pipeline *p, uint64_t now_us)
{
    jbuf *b = &p->jb;
    const decode_stats *d = &p->dec.stats;
    const flow_stats *fs = &p->flows.stats;

    if (p->refresh_capture)
        p->refresh_capture(p->refresh_arg, &p->cap);
    jbuf_reset(b);
    common_header(p, b, now_us ? now_us : p->last_ts, "stats");
    jbuf_obj_open(b, "stats");

    jbuf_obj_open(b, "capture");
    jbuf_u64(b, "packets", p->cap.packets);
    jbuf_u64(b, "bytes", p->cap.bytes);
    if (p->cap.has_kernel) {
        jbuf_u64(b, "kernel_packets", p->cap.kernel_packets);
        jbuf_u64(b, "kernel_drops", p->cap.kernel_drops);
        jbuf_u64(b, "ifdrops", p->cap.ifdrops);
        jbuf_fixed(b, "drop_ratio",
                   p->cap.kernel_packets ? (double)(p->cap.kernel_drops + p->cap.ifdrops) /
                                               (double)(p->cap.kernel_packets + p->cap.ifdrops)
                                         : 0.0,
                   6);
    }
    if (p->cap.truncated_files)
        jbuf_u64(b, "truncated_files", p->cap.truncated_files);
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
    jbuf_obj_open(b, "errors");
    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        if (d->errors[i])
            jbuf_u64(b, decode_reason_name((decode_reason)i), d->errors[i]);
    jbuf_obj_close(b);
    jbuf_obj_close(b);

    jbuf_obj_open(b, "flow");
    jbuf_u64(b, "created", fs->created);
    jbuf_u64(b, "ended", fs->ended);
    jbuf_u64(b, "evicted", fs->evicted);
    jbuf_u64(b, "active", fs->active);
    jbuf_u64(b, "max_active", fs->max_active);
    jbuf_u64(b, "updates", fs->updates);
    jbuf_u64(b, "unaccounted_packets", p->flows_unaccounted);
    jbuf_obj_open(b, "by_reason");
    for (int r = 0; r < FLOW_REASON_COUNT; r++)
        if (r != FLOW_REASON_UPDATE)
            jbuf_u64(b, flow_reason_name((flow_reason)r), fs->by_reason[r]);
    jbuf_obj_close(b);
    jbuf_u64(b, "memory", p->flows.mem_used);
    jbuf_obj_close(b);

    if (p->dpi) {
        const dpi_stats *ds = dpi_engine_stats(p->dpi);

        jbuf_obj_open(b, "dpi");
        jbuf_u64(b, "flows_detected", ds->flows_detected);
        jbuf_u64(b, "flows_guessed", ds->flows_guessed);
        jbuf_u64(b, "flows_unknown", ds->flows_unknown);
        jbuf_u64(b, "packets_inspected", ds->packets_inspected);
        jbuf_obj_close(b);
    }

    /* Application protocols seen, in name order so output is deterministic. */
    {
        const app_stat *order[APP_STATS_SLOTS];
        int n = 0;

        for (int i = 0; i < APP_STATS_SLOTS; i++)
            if (p->apps[i].name[0])
                order[n++] = &p->apps[i];
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && strcmp(order[j - 1]->name, order[j]->name) > 0; j--) {
                const app_stat *t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        jbuf_obj_open(b, "app_proto");
        for (int i = 0; i < n; i++)
            jbuf_u64(b, order[i]->name, order[i]->flows);
        jbuf_obj_close(b);
    }

    jbuf_obj_open(b, "geoip");
    jbuf_u64(b, "lookups", p->geo_lookups);
    jbuf_u64(b, "found", p->geo_found);
    jbuf_u64(b, "errors", p->geo_errors);
    jbuf_obj_close(b);

    if (p->sink->write_stats)
        p->sink->write_stats(p->sink, b);

    jbuf_obj_open(b, "output");
    jbuf_u64(b, "events", p->events + 1); /* this one included */
    jbuf_u64(b, "dropped", p->events_dropped);
    jbuf_u64(b, "write_errors", p->write_errors);
    jbuf_obj_close(b);

    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emit(p, "stats", NULL);
}

static void write_anomaly(pipeline *p, const decode_pkt *k, decode_reason r)
{
    jbuf *b = &p->jb;
    const char *name = decode_reason_name(r);
    const char *dot = strchr(name, '.');
    char a[INET6_ADDRSTRLEN];

    jbuf_reset(b);
    common_header(p, b, k->ts_us, "anomaly");
    if (k->ip_version == 4 || k->ip_version == 6) {
        format_ip(k->ip_version, k->src, a, sizeof(a));
        jbuf_str(b, "src_ip", a);
        format_ip(k->ip_version, k->dst, a, sizeof(a));
        jbuf_str(b, "dest_ip", a);
    }
    jbuf_obj_open(b, "anomaly");
    jbuf_str(b, "type", "decode");
    jbuf_str(b, "event", name);
    jbuf_strn(b, "layer", name, dot ? (size_t)(dot - name) : strlen(name));
    jbuf_u64(b, "count", p->dec.stats.errors[r]);
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emit(p, "anomaly", NULL);
}

/* ---- the packet path -------------------------------------------------------- */

fh_err pipeline_init(pipeline *p, const sensor_config *cfg, geoip *geo, event_sink *sink, char *err,
                     size_t errlen)
{
    fh_err e;

    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->geo = geo;
    p->sink = sink;
    decoder_init(&p->dec, cfg->frag_memcap, cfg->frag_max_datagrams, cfg->frag_timeout);
    if (!p->dec.defrag.buckets || !jbuf_init(&p->jb, 8192, cfg->max_event_bytes)) {
        snprintf(err, errlen, "out of memory setting up the pipeline");
        e = FH_ERR_NOMEM;
        goto fail;
    }
    if (flow_table_init(&p->flows, &cfg->flow, on_flow_end, p) != 0) {
        snprintf(err, errlen, "cannot allocate the flow table (flow.max_flows = %u)",
                 cfg->flow.max_flows);
        e = FH_ERR_NOMEM;
        goto fail;
    }
    if (cfg->dpi.enabled) {
        e = dpi_engine_new(&p->dpi, &cfg->dpi, err, errlen);
        if (e)
            goto fail;
    }
    return FH_OK;
fail:
    pipeline_free(p);
    return e;
}

void pipeline_free(pipeline *p)
{
    if (p->flows.buckets) {
        p->flows.end = NULL; /* no events from teardown */
        flow_table_free(&p->flows);
    }
    dpi_engine_free(p->dpi);
    p->dpi = NULL;
    decoder_free(&p->dec);
    jbuf_free(&p->jb);
}

static void advance_clock(pipeline *p, uint64_t now)
{
    if (now > p->clock)
        p->clock = now;
    if (p->clock >= p->next_expire) {
        flow_expire(&p->flows, p->clock);
        decoder_expire(&p->dec, p->clock);
        p->next_expire = p->clock + EXPIRE_EVERY_US;
    }
}

/* Periodic stats (live capture): every stats_us of clock, first one an interval in. */
static void periodic_stats(pipeline *p, uint64_t ts_us)
{
    if (!p->stats_us)
        return;
    if (!p->next_stats) {
        p->next_stats = p->clock + p->stats_us;
        return;
    }
    if (p->clock >= p->next_stats) {
        pipeline_write_stats(p, ts_us);
        while (p->next_stats <= p->clock)
            p->next_stats += p->stats_us;
    }
}

void pipeline_packet(pipeline *p, int linktype, const uint8_t *frame, uint32_t caplen,
                     uint32_t wire_len, uint64_t ts_us)
{
    decode_pkt k;
    decode_reason reason;
    decode_result r;
    flow *f;
    int dir;
    bool created;

    p->cap.packets++;
    p->cap.bytes += wire_len;
    p->last_ts = ts_us;
    advance_clock(p, ts_us);
    periodic_stats(p, ts_us);
    r = decode_frame(&p->dec, linktype, frame, caplen, wire_len, ts_us, &k, &reason);
    if (r == DECODE_ERROR) {
        if (fh_log_sample(p->dec.stats.errors[reason]))
            write_anomaly(p, &k, reason);
        return;
    }
    if (r != DECODE_OK)
        return;
    f = flow_packet(&p->flows, &k, p->clock, &dir, &created);
    if (!f) {
        p->flows_unaccounted++;
        return;
    }
    if (p->dpi) {
        dpi_packet(p->dpi, &p->flows, f, &k);
        write_meta_events(p, f, k.ts_us);
    }
    flow_maybe_update(&p->flows, f, p->clock);
}

void pipeline_tick(pipeline *p, uint64_t now_us)
{
    if (p->sink->poll)
        p->sink->poll(p->sink);
    advance_clock(p, now_us);
    periodic_stats(p, now_us);
}

void pipeline_end_of_input(pipeline *p)
{
    uint64_t pending = p->dec.defrag.count;

    flow_flush(&p->flows);
    /* Datagrams still incomplete at the end will never complete. */
    decoder_expire(&p->dec, UINT64_MAX);
    (void)pending;
    pipeline_write_stats(p, 0);
    p->sink->flush(p->sink);
    /* The next input starts its own clock (a new pcap may be older). */
    p->clock = 0;
    p->next_expire = 0;
}
