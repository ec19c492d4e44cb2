/*
 * output_eve.c - the EVE writers of a worker's events (docs/events.md): the
 * header every event shares, flow events (at flow end and as periodic
 * updates), and application metadata events (dns, http, tls, ssh, smb) once
 * nDPI has decided a flow. Stats and anomaly events are output_stats.c.
 */
#include "pipeline_int.h"
#include "../common/fh_addr.h"

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

#define SCHEMA_VERSION "1.2"

/*
 * Packet time as EVE writes it, "2026-12-06T02:20:00.123456+0000". Every event has one, flow events
 * three: the date and time of the second are kept per thread and formatted again only when the
 * second changes (packet times mostly move forward), the microseconds by hand.
 */
static void eve_timestamp(uint64_t ts_us, char *out, size_t len)
{
    static __thread time_t cached = (time_t)-1;
    static __thread char date[32];
    static __thread size_t date_len;
    time_t secs = (time_t)(ts_us / 1000000u);
    uint32_t us = (uint32_t)(ts_us % 1000000u);

    if (secs != cached) {
        struct tm tm;

        gmtime_r(&secs, &tm);
        date_len = strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        cached = secs;
    }
    if (len < date_len + sizeof(".000000+0000")) {
        snprintf(out, len, "%s.%06u+0000", date, us);
        return;
    }
    memcpy(out, date, date_len);
    out[date_len] = '.';
    for (int i = 6; i >= 1; i--) {
        out[date_len + (size_t)i] = (char)('0' + us % 10);
        us /= 10;
    }
    memcpy(out + date_len + 7, "+0000", 6);
}

void eve_ip(int version, const uint8_t *a, char *out, size_t len)
{
    fh_addr_text(version == 4 ? AF_INET : AF_INET6, a, out, len);
}

/* A MAC as "aa:bb:cc:dd:ee:ff" under key. */
void eve_put_mac(jbuf *b, const char *key, const uint8_t *m)
{
    char out[18];

    for (int i = 0; i < 6; i++) {
        fh_hex(out + 3 * i, m + i, 1);
        out[3 * i + 2] = i < 5 ? ':' : '\0';
    }
    jbuf_str(b, key, out);
}

/* The "ether" object: the frame's source and destination MACs. */
void eve_ether(jbuf *b, const uint8_t *src, const uint8_t *dst)
{
    jbuf_obj_open(b, "ether");
    eve_put_mac(b, "src_mac", src);
    eve_put_mac(b, "dest_mac", dst);
    jbuf_obj_close(b);
}

static const char *eve_proto_name(uint8_t proto, char *buf, size_t len)
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

/*
 * Opens an event: timestamp, type, schema version, sensor; in_iface when the
 * event comes from live interface `iface` (index in cap->ifaces, -1 = none).
 */
void eve_header(const sensor_config *cfg, const capture_stats *cap, jbuf *b, uint64_t ts_us,
                const char *type, int iface)
{
    char ts[48];

    eve_timestamp(ts_us, ts, sizeof(ts));
    jbuf_obj_open(b, NULL);
    jbuf_str(b, "timestamp", ts);
    jbuf_str(b, "event_type", type);
    jbuf_str(b, "schema_version", SCHEMA_VERSION);
    jbuf_obj_open(b, "sensor");
    jbuf_str(b, "id", cfg->sensor_id);
    jbuf_str(b, "segment", cfg->segment);
    jbuf_obj_close(b);
    if (iface >= 0 && (unsigned)iface < cap->n_ifaces)
        jbuf_str(b, "in_iface", cap->ifaces[iface].name);
}

void eve_emit(pworker *p, const char *event_type, const char *key)
{
    emitter_emit(&p->out, p->cfg, &p->jb, event_type, key);
}

/*
 * The GeoIP cache: a lookup in two or three MaxMind trees and their data sections costs
 * about a microsecond, and the same hosts come back in flow after flow (a site's servers, a
 * resolver, the clients of a segment). Each worker keeps its last results by address,
 * direct-mapped; the databases do not change while the sensor runs (a new one needs a
 * restart), so an entry never goes stale. Errors are not kept.
 */
#define GEO_CACHE 4096 /* entries a worker; a power of two */

struct geo_slot {
    uint8_t addr[16];
    uint8_t family; /* 0: empty */
    bool found;
    geoip_result r;
};

static struct geo_slot *geo_slot_of(pworker *p, int family, const uint8_t *a, size_t alen)
{
    uint64_t w[2] = {0, 0};

    if (!p->geo_cache && !(p->geo_cache = calloc(GEO_CACHE, sizeof(*p->geo_cache))))
        return NULL;
    memcpy(w, a, alen);
    uint64_t h = (w[0] ^ (w[1] * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)family) * 0xff51afd7ed558ccdULL;
    return &p->geo_cache[(h >> 32) & (GEO_CACHE - 1)];
}

/* Looks up one address; returns true when something was found. */
static bool geo_side(pworker *p, int version, const uint8_t *a, geoip_result *r)
{
    int family = version == 4 ? AF_INET : AF_INET6;
    size_t alen = version == 4 ? 4 : 16;
    struct geo_slot *s;
    int rc;

    /* Counted as a lookup only for public addresses (geoip_lookup skips the rest). */
    if (!geoip_is_public(family, a))
        return false;
    p->geo_lookups++;
    s = geo_slot_of(p, family, a, alen);
    if (s && s->family == (uint8_t)family && memcmp(s->addr, a, alen) == 0) {
        p->geo_cached++;
        if (!s->found)
            return false;
        *r = s->r;
        p->geo_found++;
        return true;
    }
    rc = geoip_lookup(p->geo, family, a, r);
    if (rc < 0)
        p->geo_errors++;
    if (s && rc >= 0) {
        memcpy(s->addr, a, alen);
        s->family = (uint8_t)family;
        s->found = rc > 0;
        s->r = *r;
    }
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

static void eve_geo(pworker *p, jbuf *b, const flow *f)
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

static void eve_tcp(jbuf *b, const flow *f)
{
    uint8_t all = f->tcp_flags[0] | f->tcp_flags[1];
    char hex[4];

    jbuf_obj_open(b, "tcp");
    fh_hex(hex, &all, 1);
    jbuf_str(b, "tcp_flags", hex);
    fh_hex(hex, &f->tcp_flags[0], 1);
    jbuf_str(b, "tcp_flags_ts", hex);
    fh_hex(hex, &f->tcp_flags[1], 1);
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

static const char *eve_flow_state_name(const flow *f, flow_reason reason)
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

/* Adds n flows of app name to an app_proto table (open addressing by name). */
void eve_app_table_add(app_stat *tab, const char *name, uint64_t n)
{
    uint32_t h = 2166136261u, i;

    for (const char *s = name; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (uint32_t k = 0; k < APP_STATS_SLOTS; k++) {
        i = (h + k) & (APP_STATS_SLOTS - 1);
        if (tab[i].name[0] == '\0') {
            snprintf(tab[i].name, sizeof(tab[i].name), "%s", name);
            tab[i].flows = n;
            return;
        }
        if (strcmp(tab[i].name, name) == 0) {
            tab[i].flows += n;
            return;
        }
    }
}

static void eve_app_stat_add(pworker *p, const char *name)
{
    eve_app_table_add(p->apps, name, 1);
}

/*
 * Opens an event of flow f: the common header, then the fields every event of
 * a flow carries (flow_id, endpoints with the client as src, proto, ICMP
 * type/code, vlan, community_id, app_proto). Leaves the object open; cid gets
 * the Community ID (the event's key).
 */
void eve_flow_header(pworker *p, jbuf *b, const flow *f, uint64_t ts_us, const char *type,
                     char cid[COMMUNITY_ID_LEN])
{
    char a[INET6_ADDRSTRLEN], pbuf[8], app[32];

    eve_header(p->cfg, &p->front->cap, b, ts_us, type, (int)f->key.iface - 1);
    jbuf_u64(b, "flow_id", f->flow_id);
    eve_ip(f->ip_version, f->cli, a, sizeof(a));
    jbuf_str(b, "src_ip", a);
    jbuf_u64(b, "src_port", f->cli_port);
    eve_ip(f->ip_version, f->srv, a, sizeof(a));
    jbuf_str(b, "dest_ip", a);
    jbuf_u64(b, "dest_port", f->srv_port);
    jbuf_str(b, "proto", eve_proto_name(f->proto, pbuf, sizeof(pbuf)));
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
 * Writes the application metadata events (dns, http, tls, ssh, smb) of flow f that
 * are ready and not yet written: once per flow and kind, as soon as nDPI's
 * detection is over. ts_us is the time of the packet that ended detection,
 * or of the flow's last packet when the flow ends first.
 */
void eve_meta_events(pworker *p, flow *f, uint64_t ts_us)
{
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];
    unsigned ready = dpi_take_meta_events(p->dpi, f);

    if (payload_http_parsed(f)) /* http.c writes one per transaction */
        ready &= ~(1u << DPI_META_HTTP);
    if (payload_dns_parsed(p, f)) /* dns.c writes one per message */
        ready &= ~(1u << DPI_META_DNS);

    for (int k = 0; k < DPI_META_KINDS; k++) {
        const char *type = dpi_meta_kind_name((dpi_meta_kind)k);

        if (!(ready & (1u << k)))
            continue;
        jbuf_reset(b);
        eve_flow_header(p, b, f, ts_us, type, cid);
        dpi_write_meta_event(p->dpi, f, (dpi_meta_kind)k, b);
        jbuf_obj_close(b);
        eve_emit(p, type, cid);
    }
}

/*
 * An application-layer anomaly of a flow (tls_records.c, ...): EVE's anomaly layout,
 * {"type": "applayer", "app_proto", "event", "layer", "direction"}, with the flow's header.
 */
void eve_app_anomaly(pworker *p, flow *f, uint64_t ts_us, const char *app_proto, const char *event,
                     int dir)
{
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];

    jbuf_reset(b);
    eve_flow_header(p, b, f, ts_us, "anomaly", cid);
    jbuf_obj_open(b, "anomaly");
    jbuf_str(b, "type", "applayer");
    jbuf_str(b, "app_proto", app_proto);
    jbuf_str(b, "event", event);
    jbuf_str(b, "layer", "proto_parser");
    jbuf_str(b, "direction", dir == FLOW_TOSERVER ? "to_server" : "to_client");
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "anomaly", cid);
}

void eve_flow_end(flow *f, flow_reason reason, void *arg)
{
    pworker *p = arg;
    jbuf *b = &p->jb;
    char a[INET6_ADDRSTRLEN], ts[48], cid[COMMUNITY_ID_LEN], app[32];

    if (reason != FLOW_REASON_UPDATE && p->dpi) {
        dpi_finish(p->dpi, &p->flows, f);
        eve_meta_events(p, f, f->last_us);
    }
    /* Every parser's end of flow: HTTP transactions cut short, files in raw streams, the
     * scan buffers (YARA or not) */
    if (reason != FLOW_REASON_UPDATE && p->pw.active)
        payload_flow_end(p, f);

    jbuf_reset(b);
    eve_flow_header(p, b, f, f->last_us, "flow", cid);
    if (p->dpi)
        dpi_write_json(p->dpi, f, b);
    if (f->has_mac)
        eve_ether(b, f->cli_mac, f->srv_mac);
    if (f->tunnel_depth) {
        jbuf_obj_open(b, "tunnel");
        jbuf_str(b, "type", decode_tunnel_name(f->tunnel_type));
        jbuf_u64(b, "depth", f->tunnel_depth);
        if (f->tunnel_ip_version) {
            eve_ip(f->tunnel_ip_version, f->tunnel_src, a, sizeof(a));
            jbuf_str(b, "src_ip", a);
            eve_ip(f->tunnel_ip_version, f->tunnel_dst, a, sizeof(a));
            jbuf_str(b, "dest_ip", a);
        }
        jbuf_obj_close(b);
    }
    jbuf_obj_open(b, "flow");
    jbuf_u64(b, "pkts_toserver", f->pkts[FLOW_TOSERVER]);
    jbuf_u64(b, "pkts_toclient", f->pkts[FLOW_TOCLIENT]);
    jbuf_u64(b, "bytes_toserver", f->bytes[FLOW_TOSERVER]);
    jbuf_u64(b, "bytes_toclient", f->bytes[FLOW_TOCLIENT]);
    jbuf_u64(b, "pps_peak", f->pps_peak);
    eve_timestamp(f->first_us, ts, sizeof(ts));
    jbuf_str(b, "start", ts);
    eve_timestamp(f->last_us, ts, sizeof(ts));
    jbuf_str(b, "end", ts);
    jbuf_u64(b, "age", (f->last_us - f->first_us) / 1000000u);
    jbuf_str(b, "state", eve_flow_state_name(f, reason));
    jbuf_str(b, "reason", flow_reason_name(reason));
    jbuf_bool(b, "alerted", f->alerted);
    jbuf_obj_close(b);
    if (f->proto == IPPROTO_TCP)
        eve_tcp(b, f);
    eve_geo(p, b, f);
    payload_write_json(b, f);
    jbuf_obj_close(b);
    eve_emit(p, "flow", cid);

    if (reason != FLOW_REASON_UPDATE) {
        if (p->dpi) {
            dpi_app_proto(p->dpi, f, app, sizeof(app));
            eve_app_stat_add(p, app[0] ? app : "unknown");
            dpi_flow_release(p->dpi, &p->flows, f);
        } else {
            eve_app_stat_add(p, "unknown");
        }
        payload_release(p, f);
    }
}
