/*
 * pipeline.c - decode -> flow -> DPI -> enrichment -> events; see pipeline.h.
 *
 * Events are built here (the EVE layout of docs/events.md): flow events when
 * a flow ends or updates, application metadata events (dns, http, tls, ssh, smb)
 * when nDPI's detection of a flow is over, stats events, and sampled anomaly
 * events.
 */
#include "pipeline.h"

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "community_id.h"

#define SCHEMA_VERSION  "1.1"
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

/*
 * Opens an event: timestamp, type, schema version, sensor; in_iface when the
 * event comes from live interface `iface` (index in cap->ifaces, -1 = none).
 */
static void common_header(const sensor_config *cfg, const capture_stats *cap, jbuf *b,
                          uint64_t ts_us, const char *type, int iface)
{
    char ts[48];

    format_timestamp(ts_us, ts, sizeof(ts));
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

/* ---- event output -------------------------------------------------------- */

/*
 * A batch record: the three lengths, then the event type and the key (each
 * NUL-terminated) and the JSON, padded to 8 bytes.
 */
typedef struct {
    uint32_t type_len, key_len, json_len, pad;
} batch_rec;

static size_t batch_rec_size(size_t type_len, size_t key_len, size_t json_len)
{
    return (sizeof(batch_rec) + type_len + 1 + key_len + 1 + json_len + 7) & ~(size_t)7;
}

#define BATCH_BYTES ((size_t)256 << 10) /* handed to the sink when it holds this much */

static void emitter_init(emitter *o, event_sink *sink, pthread_mutex_t *lock)
{
    memset(o, 0, sizeof(*o));
    o->sink = sink;
    o->lock = lock;
}

static void emitter_free(emitter *o)
{
    free(o->batch);
    o->batch = NULL;
    o->len = o->cap = 0;
}

static void sink_write_one(emitter *o, const char *type, const char *json, size_t len,
                           const char *key, size_t key_len)
{
    if (o->sink->write(o->sink, type, json, len, key, key_len) != FH_OK) {
        o->write_errors++;
        o->events_dropped++;
    }
}

/* Hands the batch to the sink under the lock (worker threads), then lets the sink poll. */
static void emitter_flush(emitter *o)
{
    size_t off = 0;

    if (!o->len)
        return;
    pthread_mutex_lock(o->lock);
    while (off < o->len) {
        const batch_rec *r = (const batch_rec *)(o->batch + off);
        const char *type = (const char *)(r + 1); /* NUL-terminated, as the sink expects */
        const char *key = type + r->type_len + 1;
        const char *json = key + r->key_len + 1;

        sink_write_one(o, type, json, r->json_len, key, r->key_len);
        off += batch_rec_size(r->type_len, r->key_len, r->json_len);
    }
    if (o->sink->poll)
        o->sink->poll(o->sink);
    pthread_mutex_unlock(o->lock);
    o->len = 0;
}

/*
 * Hands the event in b to the sink (through the batch with worker threads).
 * The key keeps a flow's events together (one Kafka partition): its
 * Community ID; events of no flow use the sensor id.
 */
static void emit_event(emitter *o, const sensor_config *cfg, jbuf *b, const char *event_type,
                       const char *key)
{
    size_t tl, kl, need;
    batch_rec *r;
    char *d;

    if (!key)
        key = cfg->sensor_id;
    if (jbuf_failed(b)) {
        o->events_dropped++;
        return;
    }
    o->events++;
    if (!o->lock) {
        sink_write_one(o, event_type, b->data, b->len, key, strlen(key));
        /* Delivery reports and spool replay, every so often on the packet path. */
        if (o->sink->poll && (o->events & 63) == 0)
            o->sink->poll(o->sink);
        return;
    }
    tl = strlen(event_type);
    kl = strlen(key);
    need = batch_rec_size(tl, kl, b->len);
    if (o->len + need > o->cap) {
        size_t nc = o->cap ? o->cap : (size_t)64 << 10;
        uint8_t *nb;

        while (nc < o->len + need)
            nc *= 2;
        if (!(nb = realloc(o->batch, nc))) {
            /* No memory for a larger batch: write what it holds, then this one. */
            emitter_flush(o);
            pthread_mutex_lock(o->lock);
            sink_write_one(o, event_type, b->data, b->len, key, kl);
            pthread_mutex_unlock(o->lock);
            return;
        }
        o->batch = nb;
        o->cap = nc;
    }
    r = (batch_rec *)(o->batch + o->len);
    r->type_len = (uint32_t)tl;
    r->key_len = (uint32_t)kl;
    r->json_len = (uint32_t)b->len;
    r->pad = 0;
    d = (char *)(r + 1);
    memcpy(d, event_type, tl + 1);
    memcpy(d + tl + 1, key, kl + 1);
    memcpy(d + tl + 1 + kl + 1, b->data, b->len);
    o->len += need;
    if (o->len >= BATCH_BYTES)
        emitter_flush(o);
}

static void emit(pworker *p, const char *event_type, const char *key)
{
    emit_event(&p->out, p->cfg, &p->jb, event_type, key);
}

/* ---- flow events --------------------------------------------------------- */

/* Looks up one address; returns true when something was found. */
static bool geo_side(pworker *p, int version, const uint8_t *a, geoip_result *r)
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

static void write_geo(pworker *p, jbuf *b, const flow *f)
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

/* Adds n flows of app name to an app_proto table (open addressing by name). */
static void app_table_add(app_stat *tab, const char *name, uint64_t n)
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

static void app_stat_add(pworker *p, const char *name)
{
    app_table_add(p->apps, name, 1);
}

/*
 * Opens an event of flow f: the common header, then the fields every event of
 * a flow carries (flow_id, endpoints with the client as src, proto, ICMP
 * type/code, vlan, community_id, app_proto). Leaves the object open; cid gets
 * the Community ID (the event's key).
 */
static void flow_header(pworker *p, jbuf *b, const flow *f, uint64_t ts_us, const char *type,
                        char cid[COMMUNITY_ID_LEN])
{
    char a[INET6_ADDRSTRLEN], pbuf[8], app[32];

    common_header(p->cfg, &p->front->cap, b, ts_us, type, (int)f->key.iface - 1);
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
 * Writes the application metadata events (dns, http, tls, ssh, smb) of flow f that
 * are ready and not yet written: once per flow and kind, as soon as nDPI's
 * detection is over. ts_us is the time of the packet that ended detection,
 * or of the flow's last packet when the flow ends first.
 */
static void write_meta_events(pworker *p, flow *f, uint64_t ts_us)
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

/* ---- payload inspection: TCP reassembly and YARA ---------------------------- */

/*
 * Per-flow state (flow->payload), made on the flow's first TCP packet or UDP
 * match while YARA is on. Each TCP direction is reassembled into a scan
 * buffer of at most yara.max_bytes (grown on demand, bounded by yara.memcap)
 * and scanned once: when the buffer is full, when the direction's FIN is
 * reached in order, at RST, or when the flow ends. A UDP datagram is scanned
 * on its own; `seen` keeps each (rule, direction) to one event per flow.
 */
typedef struct {
    reasm_dir rd[2];
    uint8_t *buf[2];
    uint32_t len[2], cap[2];
    uint64_t fin_off[2]; /* stream offset of the FIN, when fin[dir] */
    uint8_t fin[2];
    uint8_t done[2];  /* scanned: nothing more is buffered */
    uint8_t trunc[2]; /* payload not buffered (yara.memcap) */
    uint64_t *seen;   /* UDP: hashes of (namespace, rule, direction) reported */
    uint32_t nseen, capseen;
} flow_payload;

#define SCAN_BUF_MIN 4096

typedef struct {
    pworker *p;
    flow *f;
    flow_payload *fp;
    int dir;
    uint64_t ts_us;
    uint32_t scanned;
    bool udp;
} scan_ctx;

static void payload_account(pworker *p, flow *f)
{
    const flow_payload *fp = f->payload;
    size_t mem = 0;

    if (fp)
        mem = sizeof(*fp) + fp->rd[0].mem + fp->rd[1].mem + fp->cap[0] + fp->cap[1] +
              (size_t)fp->capseen * sizeof(uint64_t);
    flow_set_payload_mem(&p->flows, f, mem > UINT32_MAX ? UINT32_MAX : (uint32_t)mem);
}

static flow_payload *payload_of(pworker *p, flow *f)
{
    if (!f->payload) {
        f->payload = calloc(1, sizeof(flow_payload));
        if (f->payload)
            payload_account(p, f);
    }
    return f->payload;
}

static void free_scan_buf(payload_worker *w, flow_payload *fp, int dir)
{
    free(fp->buf[dir]);
    w->buf_mem -= fp->cap[dir];
    fp->buf[dir] = NULL;
    fp->cap[dir] = 0;
    fp->len[dir] = 0;
}

/* Reassembly's deliver callback: appends to the direction's scan buffer. */
static void on_deliver(void *arg, uint64_t offset, const uint8_t *data, uint32_t len,
                       unsigned flags)
{
    scan_ctx *c = arg;
    payload_worker *w = &c->p->pw;
    flow_payload *fp = c->fp;
    int d = c->dir;
    uint32_t n;

    (void)offset;
    (void)flags; /* gaps are counted by the reasm_dir */
    if (fp->done[d] || fp->len[d] >= w->max_bytes)
        return;
    n = w->max_bytes - fp->len[d];
    if (n > len)
        n = len;
    if (fp->len[d] + n > fp->cap[d]) {
        uint32_t nc = fp->cap[d] ? fp->cap[d] : SCAN_BUF_MIN;
        uint8_t *nb;

        while (nc < fp->len[d] + n && nc < w->max_bytes)
            nc *= 2;
        if (nc > w->max_bytes)
            nc = w->max_bytes;
        if (w->buf_mem - fp->cap[d] + nc > w->memcap || !(nb = realloc(fp->buf[d], nc))) {
            w->cnt.memcap_drops++;
            w->cnt.memcap_drop_bytes += n;
            fp->trunc[d] = 1;
            return;
        }
        w->buf_mem = w->buf_mem - fp->cap[d] + nc;
        if (w->buf_mem > w->buf_mem_peak)
            w->buf_mem_peak = w->buf_mem;
        fp->buf[d] = nb;
        fp->cap[d] = nc;
    }
    memcpy(fp->buf[d] + fp->len[d], data, n);
    fp->len[d] += n;
}

/* The scanner of the rules in service: a new one when the slot's generation moved. */
static yara_scanner *current_scanner(payload_worker *w)
{
    uint64_t g = yara_rules_slot_generation(w->slot);

    if (w->scanner && g == w->generation)
        return w->scanner;
    yara_rules *r = yara_rules_slot_get(w->slot);
    yara_scanner *s = r ? yara_scanner_new(r) : NULL;

    yara_rules_unref(r);
    w->generation = g; /* a failure is not retried on every scan */
    if (!s) {
        if (r)
            fh_error("YARA: cannot make a scanner for the new rules; keeping the previous ones");
        return w->scanner;
    }
    yara_scanner_free(w->scanner);
    w->scanner = s;
    w->rule_sets++;
    return s;
}

static uint64_t match_hash(const yara_match *m, int dir)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *s = m->ns; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = m->rule; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (h ^ (uint64_t)dir) * 1099511628211ull;
}

/* UDP: true the first time (rule, direction) matches in this flow. */
static bool udp_first_match(pworker *p, scan_ctx *c, const yara_match *m)
{
    flow_payload *fp = payload_of(p, c->f);
    uint64_t h = match_hash(m, c->dir);

    if (!fp)
        return true;
    for (uint32_t i = 0; i < fp->nseen; i++)
        if (fp->seen[i] == h)
            return false;
    if (fp->nseen == fp->capseen) {
        uint32_t nc = fp->capseen ? fp->capseen * 2 : 4;
        uint64_t *ns = realloc(fp->seen, nc * sizeof(*ns));

        if (!ns)
            return true;
        fp->seen = ns;
        fp->capseen = nc;
        payload_account(p, c->f);
    }
    fp->seen[fp->nseen++] = h;
    return true;
}

static int on_match(const yara_match *m, void *arg)
{
    scan_ctx *c = arg;
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];

    if (c->udp && !udp_first_match(p, c, m)) {
        p->pw.cnt.udp_duplicates++;
        return 0;
    }
    p->pw.cnt.matches++;
    c->f->alerted = true; /* flow.alerted, as Suricata's: an alert event was raised on it */
    jbuf_reset(b);
    flow_header(p, b, c->f, c->ts_us, "yara", cid);
    yara_match_to_json(b, m, c->dir == FLOW_TOSERVER ? YARA_DIR_TO_SERVER : YARA_DIR_TO_CLIENT,
                       p->pw.excerpt_bytes);
    jbuf_obj_open(b, "scan");
    jbuf_u64(b, "bytes", c->scanned);
    if (!c->udp) {
        const reasm_dir *rd = &c->fp->rd[c->dir];

        if (rd->gaps) {
            jbuf_u64(b, "gaps", rd->gaps);
            jbuf_u64(b, "gap_bytes", rd->gap_bytes);
        }
        if (c->fp->trunc[c->dir])
            jbuf_bool(b, "truncated", true);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    emit(p, "yara", cid);
    return 0;
}

static void run_scan(pworker *p, scan_ctx *c, const uint8_t *data, uint32_t len)
{
    payload_worker *w = &p->pw;
    yara_scanner *s = current_scanner(w);
    int rc;

    if (!s || !len)
        return;
    c->scanned = len;
    w->cnt.scans++;
    w->cnt.scanned_bytes += len;
    rc = yara_scan(s, data, len, on_match, c);
    if (rc == FH_ERR_LIMIT)
        w->cnt.timeouts++;
    else if (rc < 0)
        w->cnt.errors++;
}

/* Scans a TCP direction once with what it holds, then frees its buffers. */
static void scan_tcp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    payload_worker *w = &p->pw;
    scan_ctx c = {p, f, fp, dir, ts_us, 0, false};

    if (fp->done[dir])
        return;
    fp->done[dir] = 1;
    reasm_release(&w->reasm, &fp->rd[dir]);
    if (fp->len[dir]) {
        w->cnt.tcp_scans++;
        if (fp->rd[dir].gaps)
            w->cnt.scans_with_gaps++;
        run_scan(p, &c, fp->buf[dir], fp->len[dir]);
    }
    free_scan_buf(w, fp, dir);
    payload_account(p, f);
}

/* Delivers what a direction still buffers (holes become gaps) and scans it. */
static void close_tcp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    scan_ctx c = {p, f, fp, dir, ts_us, 0, false};

    if (fp->done[dir])
        return;
    reasm_close(&p->pw.reasm, &fp->rd[dir], on_deliver, &c);
    scan_tcp_dir(p, f, fp, dir, ts_us);
}

static void payload_tcp(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    payload_worker *w = &p->pw;
    flow_payload *fp = payload_of(p, f);
    reasm_dir *rd;
    uint32_t seq = k->tcp_seq;
    scan_ctx c = {p, f, fp, dir, k->ts_us, 0, false};

    if (!fp)
        return;
    rd = &fp->rd[dir];
    if (!fp->done[dir]) {
        if (k->tcp_flags & 0x02) { /* SYN */
            reasm_init_dir(&w->reasm, rd, k->tcp_seq);
            seq++;
        }
        if (k->payload_len)
            reasm_segment(&w->reasm, rd, seq, k->payload, k->payload_len, on_deliver, &c);
        if ((k->tcp_flags & 0x01) && !fp->fin[dir]) { /* FIN: its stream offset */
            uint32_t fin_seq = seq + k->payload_len;

            fp->fin[dir] = 1;
            if (rd->flags & REASM_DIR_STARTED)
                fp->fin_off[dir] =
                    rd->next +
                    (uint64_t)(int64_t)(int32_t)(fin_seq - (rd->base + (uint32_t)rd->next));
        }
        if (fp->len[dir] >= w->max_bytes || (rd->flags & REASM_DIR_DEPTH))
            scan_tcp_dir(p, f, fp, dir, k->ts_us);
        else if (fp->fin[dir] && (!(rd->flags & REASM_DIR_STARTED) || rd->next >= fp->fin_off[dir]))
            close_tcp_dir(p, f, fp, dir, k->ts_us); /* every byte before the FIN is in */
    }
    if (k->tcp_flags & 0x04) { /* RST: nothing more comes either way */
        close_tcp_dir(p, f, fp, FLOW_TOSERVER, k->ts_us);
        close_tcp_dir(p, f, fp, FLOW_TOCLIENT, k->ts_us);
    }
    payload_account(p, f);
}

static void payload_udp(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    scan_ctx c = {p, f, NULL, dir, k->ts_us, 0, true};
    uint32_t n = k->payload_len;

    if (!n)
        return;
    if (n > p->pw.max_bytes)
        n = p->pw.max_bytes;
    p->pw.cnt.udp_scans++;
    run_scan(p, &c, k->payload, n);
}

static void payload_packet(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    if (k->l4_proto == IPPROTO_TCP)
        payload_tcp(p, f, k, dir);
    else if (k->l4_proto == IPPROTO_UDP)
        payload_udp(p, f, k, dir);
}

/* Flow end: scans what each TCP direction still holds (time: the flow's last packet). */
static void payload_flow_end(pworker *p, flow *f)
{
    flow_payload *fp = f->payload;

    if (!fp || f->proto != IPPROTO_TCP)
        return;
    close_tcp_dir(p, f, fp, FLOW_TOSERVER, f->last_us);
    close_tcp_dir(p, f, fp, FLOW_TOCLIENT, f->last_us);
}

/* The flow event's "reassembly" summary, when a direction had gaps or lost payload. */
static void write_reassembly(jbuf *b, const flow *f)
{
    const flow_payload *fp = f->payload;
    static const char *const side[2] = {"toserver", "toclient"};

    if (!fp || (!fp->rd[0].gaps && !fp->rd[1].gaps && !fp->trunc[0] && !fp->trunc[1]))
        return;
    jbuf_obj_open(b, "reassembly");
    for (int d = 0; d < 2; d++) {
        jbuf_obj_open(b, side[d]);
        jbuf_u64(b, "gaps", fp->rd[d].gaps);
        jbuf_u64(b, "gap_bytes", fp->rd[d].gap_bytes);
        if (fp->trunc[d])
            jbuf_bool(b, "truncated", true);
        jbuf_obj_close(b);
    }
    jbuf_obj_close(b);
}

/* Frees a flow's payload state without scanning. */
static void payload_release(pworker *p, flow *f)
{
    flow_payload *fp = f->payload;

    if (!fp)
        return;
    for (int d = 0; d < 2; d++) {
        reasm_release(&p->pw.reasm, &fp->rd[d]);
        free_scan_buf(&p->pw, fp, d);
    }
    free(fp->seen);
    free(fp);
    f->payload = NULL;
    flow_set_payload_mem(&p->flows, f, 0);
}

static void on_flow_end(flow *f, flow_reason reason, void *arg)
{
    pworker *p = arg;
    jbuf *b = &p->jb;
    char a[INET6_ADDRSTRLEN], ts[48], cid[COMMUNITY_ID_LEN], app[32];

    if (reason != FLOW_REASON_UPDATE && p->dpi) {
        dpi_finish(p->dpi, &p->flows, f);
        write_meta_events(p, f, f->last_us);
    }
    if (reason != FLOW_REASON_UPDATE && p->pw.slot)
        payload_flow_end(p, f);

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
    jbuf_bool(b, "alerted", f->alerted);
    jbuf_obj_close(b);
    if (f->proto == IPPROTO_TCP)
        write_tcp(b, f);
    write_geo(p, b, f);
    write_reassembly(b, f);
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
        payload_release(p, f);
    }
}

/* Teardown without events: frees what the owner hung on the flow. */
static void on_flow_release(flow *f, flow_reason reason, void *arg)
{
    pworker *p = arg;

    (void)reason;
    if (p->dpi)
        dpi_flow_release(p->dpi, &p->flows, f);
    payload_release(p, f);
}

/* ---- stats and anomaly events --------------------------------------------- */

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

static void write_payload_stats(const pipeline *pl, jbuf *b)
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
                app_table_add(all, p->workers[w].apps[i].name, p->workers[w].apps[i].flows);
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
static void write_stats_event(pipeline *p, uint64_t now_us)
{
    jbuf *b = &p->jb;
    const decode_stats *d = &p->dec.stats;
    flow_stats fs = {0};
    dpi_stats ds = {0};
    uint64_t flow_mem = 0, flow_mem_peak = 0, unaccounted = 0, geo_lookups = 0, geo_found = 0,
             geo_errors = 0;
    uint64_t max_active = 0;
    pipeline_totals t;
    bool yara = false;

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
        yara |= w->pw.slot != NULL;
    }
    /* The most flows alive at once in one worker; with one worker, in the sensor. */
    fs.max_active = max_active;

    if (p->refresh_capture)
        p->refresh_capture(p->refresh_arg, &p->cap);
    jbuf_reset(b);
    common_header(p->cfg, &p->cap, b, now_us ? now_us : p->last_ts, "stats", -1);
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
    jbuf_obj_open(b, "errors");
    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        if (d->errors[i])
            jbuf_u64(b, decode_reason_name((decode_reason)i), d->errors[i]);
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
    if (yara)
        write_payload_stats(p, b);

    jbuf_obj_open(b, "geoip");
    jbuf_u64(b, "lookups", geo_lookups);
    jbuf_u64(b, "found", geo_found);
    jbuf_u64(b, "errors", geo_errors);
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
    emit_event(&p->out, p->cfg, b, "stats", NULL);
}

static void write_anomaly(pipeline *p, const decode_pkt *k, decode_reason r)
{
    jbuf *b = &p->jb;
    const char *name = decode_reason_name(r);
    const char *dot = strchr(name, '.');
    char a[INET6_ADDRSTRLEN];

    jbuf_reset(b);
    common_header(p->cfg, &p->cap, b, k->ts_us, "anomaly", p->iface);
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
    emit_event(&p->out, p->cfg, b, "anomaly", NULL);
}

/* ---- a worker: flows, DPI, payload inspection ----------------------------------- */

/* Moves the worker's clock to `now` (never back); looks at the timeout lists when due. */
static void worker_advance(pworker *w, uint64_t now)
{
    if (now > w->clock)
        w->clock = now;
    if (w->clock >= w->next_expire) {
        flow_expire(&w->flows, w->clock);
        w->next_expire = w->clock + EXPIRE_EVERY_US;
    }
}

/* One decoded packet; clock is the capture thread's clock when it was decoded. */
static void worker_packet(pworker *w, const decode_pkt *k, uint64_t clock)
{
    flow *f;
    int dir;
    bool created;

    worker_advance(w, clock);
    f = flow_packet(&w->flows, k, w->clock, &dir, &created);
    if (!f) {
        w->flows_unaccounted++;
        return;
    }
    w->packets++;
    if (w->dpi) {
        dpi_packet(w->dpi, &w->flows, f, k, dir);
        write_meta_events(w, f, k->ts_us);
    }
    if (w->pw.slot)
        payload_packet(w, f, k, dir);
    flow_maybe_update(&w->flows, f, w->clock);
}

/* End of one input: every flow ends; the next input starts its own clock. */
static void worker_end_of_input(pworker *w)
{
    flow_flush(&w->flows);
    w->clock = 0;
    w->next_expire = 0;
}

static fh_err worker_init(pworker *w, pipeline *p, unsigned index, event_sink *sink, char *err,
                          size_t errlen)
{
    const sensor_config *cfg = p->cfg;
    flow_config fc = cfg->flow;
    fh_err e;

    w->front = p;
    w->cfg = cfg;
    w->index = index;
    w->geo = p->geo;
    emitter_init(&w->out, sink, p->threaded ? &p->sink_lock : NULL);
    /* The limits are the sensor's: each worker gets its share. */
    fc.max_flows = cfg->flow.max_flows / p->nworkers ? cfg->flow.max_flows / p->nworkers : 1;
    fc.memcap = cfg->flow.memcap / p->nworkers;
    if (!jbuf_init(&w->jb, 8192, cfg->max_event_bytes)) {
        snprintf(err, errlen, "out of memory setting up worker %u", index);
        return FH_ERR_NOMEM;
    }
    if (flow_table_init(&w->flows, &fc, on_flow_end, w) != 0) {
        snprintf(err, errlen, "cannot allocate the flow table (flow.max_flows = %u)",
                 cfg->flow.max_flows);
        return FH_ERR_NOMEM;
    }
    if (cfg->dpi.enabled && (e = dpi_engine_new(&w->dpi, &cfg->dpi, err, errlen)) != FH_OK)
        return e;
    if (p->threaded && ring_init(&w->ring, cfg->ring_bytes) != 0) {
        snprintf(err, errlen, "cannot allocate the packet queue of worker %u (%zu bytes)", index,
                 cfg->ring_bytes);
        return FH_ERR_NOMEM;
    }
    return FH_OK;
}

static void worker_free(pworker *w)
{
    if (w->flows.buckets) {
        w->flows.end = on_flow_release; /* no events from teardown */
        flow_table_free(&w->flows);
    }
    yara_scanner_free(w->pw.scanner);
    w->pw.scanner = NULL;
    w->pw.slot = NULL;
    dpi_engine_free(w->dpi);
    w->dpi = NULL;
    jbuf_free(&w->jb);
    emitter_free(&w->out);
    ring_free(&w->ring);
}

/* ---- worker threads ------------------------------------------------------------------ */

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

static void worker_ack(pworker *w)
{
    atomic_fetch_add(&w->front->acks, 1);
    ring_wake_word(&w->front->acks);
}

static void *worker_main(void *arg)
{
    pworker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "fh-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name); /* top -H, perf, gdb */

    for (;;) {
        uint32_t len;
        worker_msg *m = ring_peek(&w->ring, &len);

        if (!m) {
            /* Out of work: what this worker wrote so far goes to the sink. */
            emitter_flush(&w->out);
            ring_wait(&w->ring, 100);
            continue;
        }
        switch (m->type) {
        case MSG_PACKET: {
            decode_pkt k = m->k;
            uint8_t *data = (uint8_t *)(m + 1);

            k.l3 = k.l3_len ? data : NULL;
            if (k.payload)
                k.payload = data + m->payload_off;
            worker_packet(w, &k, m->clock);
            break;
        }
        case MSG_TICK:
            worker_advance(w, m->clock);
            emitter_flush(&w->out);
            break;
        case MSG_END:
            worker_end_of_input(w);
            emitter_flush(&w->out);
            ring_release(&w->ring);
            worker_ack(w);
            continue;
        case MSG_SYNC:
            emitter_flush(&w->out);
            ring_release(&w->ring);
            worker_ack(w);
            continue;
        case MSG_STOP:
            emitter_flush(&w->out);
            ring_release(&w->ring);
            return NULL;
        }
        ring_release(&w->ring);
    }
}

static void send_ctrl(pworker *w, uint32_t type, uint64_t clock)
{
    worker_msg *m = ring_reserve(&w->ring, sizeof(*m));

    memset(m, 0, sizeof(*m));
    m->type = type;
    m->clock = clock;
    ring_commit(&w->ring);
    ring_kick(&w->ring);
}

/*
 * Sends every worker `type` (MSG_END or MSG_SYNC) and waits until each has
 * handled it and everything before it, and handed its events to the sink.
 * The workers are then idle until the next packet: their state can be read.
 */
static void barrier(pipeline *p, uint32_t type)
{
    uint32_t n;

    atomic_store(&p->acks, 0);
    for (unsigned i = 0; i < p->nworkers; i++)
        send_ctrl(&p->workers[i], type, p->clock);
    while ((n = atomic_load(&p->acks)) < p->nworkers)
        ring_wait_word(&p->acks, n, 100);
}

/*
 * Which worker a packet goes to: a hash of its two addresses (and VLANs,
 * interface) without ports and protocol, the same both ways (flow_pair_hash).
 * All flows between two hosts meet in one worker because nDPI classifies some
 * flows from what it learnt on earlier flows between the same hosts (its
 * caches: "DPI (cache)" confidence); split over workers, the same traffic
 * would be classified differently with 1 and N threads.
 */
static pworker *worker_of(pipeline *p, const decode_pkt *k)
{
    uint64_t h = flow_pair_hash(k);

    return &p->workers[(uint32_t)(((h >> 32) * p->nworkers) >> 32)];
}

static void dispatch(pipeline *p, const decode_pkt *k)
{
    pworker *w = worker_of(p, k);
    uint32_t l3n = k->l3 ? k->l3_len : 0;
    bool inside =
        k->payload && k->l3 && k->payload >= k->l3 && k->payload + k->payload_len <= k->l3 + l3n;
    uint32_t extra = (k->payload && !inside) ? k->payload_len : 0;
    size_t len = sizeof(worker_msg) + (size_t)l3n + extra;
    worker_msg *m;
    uint8_t *data;

    if (len > ring_max_record(&w->ring) || !(m = ring_reserve(&w->ring, (uint32_t)len))) {
        p->oversize++;
        return;
    }
    m->type = MSG_PACKET;
    m->clock = p->clock;
    m->k = *k;
    data = (uint8_t *)(m + 1);
    if (l3n)
        memcpy(data, k->l3, l3n);
    if (inside) {
        m->payload_off = (uint32_t)(k->payload - k->l3);
    } else {
        m->payload_off = l3n;
        if (extra)
            memcpy(data + l3n, k->payload, extra);
    }
    ring_commit(&w->ring);
}

static void kick_all(pipeline *p)
{
    for (unsigned i = 0; p->threaded && i < p->nworkers; i++)
        ring_kick(&p->workers[i].ring);
}

/* ---- the capture side -------------------------------------------------------------- */

static unsigned thread_count(const sensor_config *cfg)
{
    long n = cfg->threads;

    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > PIPELINE_MAX_THREADS)
        n = PIPELINE_MAX_THREADS;
    return (unsigned)n;
}

fh_err pipeline_init(pipeline *p, const sensor_config *cfg, geoip *geo, event_sink *sink, char *err,
                     size_t errlen)
{
    fh_err e;

    memset(p, 0, sizeof(*p));
    p->iface = -1;
    p->cfg = cfg;
    p->geo = geo;
    p->sink = sink;
    p->nworkers = thread_count(cfg);
    p->threaded = p->nworkers > 1;
    pthread_mutex_init(&p->sink_lock, NULL);
    emitter_init(&p->out, sink, p->threaded ? &p->sink_lock : NULL);
    decoder_init(&p->dec, cfg->frag_memcap, cfg->frag_max_datagrams, cfg->frag_timeout);
    p->workers = calloc(p->nworkers, sizeof(*p->workers));
    if (!p->dec.defrag.buckets || !jbuf_init(&p->jb, 8192, cfg->max_event_bytes) || !p->workers) {
        snprintf(err, errlen, "out of memory setting up the pipeline");
        e = FH_ERR_NOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < p->nworkers; i++)
        if ((e = worker_init(&p->workers[i], p, i, sink, err, errlen)) != FH_OK)
            goto fail;
    return FH_OK;
fail:
    pipeline_free(p);
    return e;
}

fh_err pipeline_set_yara(pipeline *p, yara_rules_slot *slot, char *err, size_t errlen)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        payload_worker *w = &p->workers[i].pw;
        reasm_config rc;

        reasm_config_defaults(&rc);
        rc.memcap = p->cfg->reasm_memcap / p->nworkers;
        rc.dir_cap =
            p->cfg->reasm_dir_cap > UINT32_MAX ? UINT32_MAX : (uint32_t)p->cfg->reasm_dir_cap;
        w->max_bytes = p->cfg->yara_max_bytes > YARA_MAX_SCAN_BYTES
                           ? YARA_MAX_SCAN_BYTES
                           : (uint32_t)p->cfg->yara_max_bytes;
        if (!w->max_bytes)
            w->max_bytes = 1;
        rc.depth = w->max_bytes; /* bytes past what is scanned are only counted */
        reasm_ctx_init(&w->reasm, &rc);
        w->excerpt_bytes = p->cfg->yara_excerpt_bytes;
        w->memcap = p->cfg->yara_memcap / p->nworkers;
        w->slot = slot;
        if (!current_scanner(w)) {
            snprintf(err, errlen, "YARA: cannot make a scanner (no rules, or out of memory)");
            for (unsigned j = 0; j <= i; j++)
                p->workers[j].pw.slot = NULL;
            return FH_ERR_NOMEM;
        }
    }
    return FH_OK;
}

fh_err pipeline_start(pipeline *p, char *err, size_t errlen)
{
    sigset_t all, old;
    fh_err e = FH_OK;

    if (!p->threaded)
        return FH_OK;
    /* Signals go to the capture thread (its poll() returns EINTR), not to workers. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < p->nworkers; i++) {
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);

        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread %u: %s", i, strerror(rc));
            e = FH_ERR_NOMEM;
            break;
        }
        p->workers[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

void pipeline_free(pipeline *p)
{
    for (unsigned i = 0; p->workers && i < p->nworkers; i++)
        if (p->workers[i].started) {
            send_ctrl(&p->workers[i], MSG_STOP, p->clock);
            pthread_join(p->workers[i].thread, NULL);
            p->workers[i].started = false;
        }
    for (unsigned i = 0; p->workers && i < p->nworkers; i++)
        worker_free(&p->workers[i]);
    free(p->workers);
    p->workers = NULL;
    p->nworkers = 0;
    decoder_free(&p->dec);
    jbuf_free(&p->jb);
    emitter_free(&p->out);
    pthread_mutex_destroy(&p->sink_lock);
}

/*
 * The capture clock: fragments expire here; the workers follow (one worker:
 * at once; worker threads: a tick every EXPIRE_EVERY_US of clock, so a worker
 * without packets still ends its idle flows).
 */
static void advance_clock(pipeline *p, uint64_t now)
{
    if (now > p->clock)
        p->clock = now;
    if (p->clock < p->next_expire)
        return;
    decoder_expire(&p->dec, p->clock);
    if (!p->threaded) {
        worker_advance(&p->workers[0], p->clock);
    } else {
        for (unsigned i = 0; i < p->nworkers; i++)
            send_ctrl(&p->workers[i], MSG_TICK, p->clock);
    }
    p->next_expire = p->clock + EXPIRE_EVERY_US;
}

/* Periodic stats (live capture): every stats_us of clock, first one an interval in. */
static void periodic_stats(pipeline *p, uint64_t ts_us)
{
    uint64_t every = atomic_load_explicit(&p->stats_us, memory_order_relaxed);

    if (!every) {
        p->next_stats = 0;
        return;
    }
    if (!p->next_stats || p->next_stats > p->clock + every) {
        /* First interval, or the interval was shortened (SIGHUP): one interval from now. */
        p->next_stats = p->clock + every;
        return;
    }
    if (p->clock >= p->next_stats) {
        pipeline_write_stats(p, ts_us);
        pipeline_flush(p); /* a busy link's events are out at least this often */
        while (p->next_stats <= p->clock)
            p->next_stats += every;
    }
}

void pipeline_write_stats(pipeline *p, uint64_t now_us)
{
    if (p->threaded)
        barrier(p, MSG_SYNC);
    write_stats_event(p, now_us);
}

void pipeline_packet(pipeline *p, int linktype, const uint8_t *frame, uint32_t caplen,
                     uint32_t wire_len, uint64_t ts_us)
{
    decode_pkt k;
    decode_reason reason;
    decode_result r;

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
    k.iface = p->iface >= 0 ? (uint8_t)(p->iface + 1) : 0;
    if (p->threaded)
        dispatch(p, &k);
    else
        worker_packet(&p->workers[0], &k, p->clock);
}

void pipeline_tick(pipeline *p, uint64_t now_us)
{
    pipeline_poll(p);
    advance_clock(p, now_us);
    periodic_stats(p, now_us);
    if (p->threaded)
        emitter_flush(&p->out);
}

void pipeline_end_of_input(pipeline *p)
{
    if (p->threaded)
        barrier(p, MSG_END);
    else
        worker_end_of_input(&p->workers[0]);
    /* Datagrams still incomplete at the end will never complete. */
    decoder_expire(&p->dec, UINT64_MAX);
    write_stats_event(p, 0);
    pipeline_flush(p);
    /* The next input starts its own clock (a new pcap may be older). */
    p->clock = 0;
    p->next_expire = 0;
}

fh_err pipeline_flush(pipeline *p)
{
    fh_err e;

    if (!p->threaded)
        return p->sink->flush(p->sink);
    kick_all(p);
    emitter_flush(&p->out);
    pthread_mutex_lock(&p->sink_lock);
    e = p->sink->flush(p->sink);
    pthread_mutex_unlock(&p->sink_lock);
    return e;
}

void pipeline_poll(pipeline *p)
{
    kick_all(p);
    if (!p->sink->poll)
        return;
    if (p->threaded)
        pthread_mutex_lock(&p->sink_lock);
    p->sink->poll(p->sink);
    if (p->threaded)
        pthread_mutex_unlock(&p->sink_lock);
}

void pipeline_get_totals(pipeline *p, pipeline_totals *t)
{
    memset(t, 0, sizeof(*t));
    t->packets = p->cap.packets;
    t->events = p->out.events;
    t->events_dropped = p->out.events_dropped;
    t->write_errors = p->out.write_errors;
    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        t->malformed += p->dec.stats.errors[i];
    for (unsigned i = 0; i < p->nworkers; i++) {
        const pworker *w = &p->workers[i];

        t->flows += w->flows.stats.created;
        t->events += w->out.events;
        t->events_dropped += w->out.events_dropped;
        t->write_errors += w->out.write_errors;
    }
}
