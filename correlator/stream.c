/*
 * stream.c - see stream.h.
 */
#include "stream.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fh_log.h"
#include "admin.h"
#include "archive.h"
#include "traffic.h"

/* Texts of event values in an alert (addresses, sensor id, Community ID): longer values
 * end in a hash of the whole value (alert_value_text). */
#define VALUE_MAX 256

const double stream_hist_bounds[STREAM_HIST_BUCKETS] = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4,
                                                        5e-4, 1e-3, 5e-3, 1e-2, 1e-1};

static void hist_add(stream *p, const struct timespec *t0)
{
    struct timespec t1;
    uint64_t ns;
    int b = 0;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
         (uint64_t)t0->tv_nsec;
    while (b < STREAM_HIST_BUCKETS && (double)ns > stream_hist_bounds[b] * 1e9)
        b++;
    p->hist[b]++;
    p->hist_sum_ns += ns;
}

/* ---- suppressions and switched-off rules (admin.h) ------------------------------------- */

#define ADMIN_SYNC_MS 1000

typedef struct {
    char *id, *rule, *src, *dst;
    int64_t expires_at, last_hit;
    uint64_t pending; /* hits of the open batch */
} supp_entry;

struct stream_admin {
    supp_entry *supp;
    size_t nsupp, capsupp;
    char **off; /* rule ids switched off */
    size_t noff, capoff;
    int64_t gen_rules, gen_supp, next_sync, next_expiry;
    bool known, nomem;
};

static void admin_clear_supp(struct stream_admin *a)
{
    for (size_t i = 0; i < a->nsupp; i++) {
        free(a->supp[i].id);
        free(a->supp[i].rule);
        free(a->supp[i].src);
        free(a->supp[i].dst);
    }
    a->nsupp = 0;
}

static void admin_clear_off(struct stream_admin *a)
{
    for (size_t i = 0; i < a->noff; i++)
        free(a->off[i]);
    a->noff = 0;
}

static void admin_free(struct stream_admin *a)
{
    if (!a)
        return;
    admin_clear_supp(a);
    admin_clear_off(a);
    free(a->supp);
    free(a->off);
    free(a);
}

static char *dup_or_null(const char *s, bool *nomem)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *nomem = true;
    return d;
}

static void supp_row(void *ctx, const suppression_row *r)
{
    struct stream_admin *a = ctx;
    supp_entry *e;

    if (a->nsupp == a->capsupp) {
        size_t nc = a->capsupp ? a->capsupp * 2 : 16;
        supp_entry *ns = realloc(a->supp, nc * sizeof(*ns));

        if (!ns) {
            a->nomem = true;
            return;
        }
        a->supp = ns;
        a->capsupp = nc;
    }
    e = &a->supp[a->nsupp++];
    memset(e, 0, sizeof(*e));
    e->id = dup_or_null(r->id, &a->nomem);
    e->rule = dup_or_null(r->rule_id, &a->nomem);
    e->src = dup_or_null(r->src_ip, &a->nomem);
    e->dst = dup_or_null(r->dest_ip, &a->nomem);
    e->expires_at = r->expires_at;
    if (r->expires_at < a->next_expiry)
        a->next_expiry = r->expires_at;
}

static void off_row(void *ctx, const rule_switch *r)
{
    struct stream_admin *a = ctx;

    if (r->enabled)
        return;
    if (a->noff == a->capoff) {
        size_t nc = a->capoff ? a->capoff * 2 : 8;
        char **no = realloc(a->off, nc * sizeof(*no));

        if (!no) {
            a->nomem = true;
            return;
        }
        a->off = no;
        a->capoff = nc;
    }
    if ((a->off[a->noff] = strdup(r->rule_id)))
        a->noff++;
    else
        a->nomem = true;
}

/* Writes the batch's suppression hits (inside its transaction). */
static fh_err admin_flush_hits(stream *p)
{
    struct stream_admin *a = p->admin;
    fh_err e = FH_OK;

    for (size_t i = 0; a && i < a->nsupp && !e; i++)
        if (a->supp[i].pending)
            e = suppression_add_hits(p->st, a->supp[i].id, a->supp[i].pending, a->supp[i].last_hit);
    return e;
}

static void admin_forget_hits(stream *p)
{
    for (size_t i = 0; p->admin && i < p->admin->nsupp; i++)
        p->admin->supp[i].pending = 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Called as a batch opens (no hits pending: the previous batch committed or forgot them). */
static fh_err admin_sync(stream *p)
{
    struct stream_admin *a = p->admin;
    int64_t now, gr, gs;
    fh_err e;

    if (!p->st)
        return FH_OK;
    now = wall_ms();
    if (!a) {
        if (!(a = p->admin = calloc(1, sizeof(*a))))
            return FH_ERR_NOMEM;
    }
    if (a->known && now < a->next_sync)
        return FH_OK;
    a->next_sync = now + ADMIN_SYNC_MS;
    if ((e = admin_generation(p->st, &gr, &gs)))
        return e;
    if (a->known && gr != a->gen_rules)
        p->reload_wanted = true;
    if (!a->known || gr != a->gen_rules) {
        admin_clear_off(a);
        if ((e = rule_switch_list(p->st, off_row, a)))
            return e;
    }
    if (!a->known || gs != a->gen_supp || now >= a->next_expiry) {
        admin_clear_supp(a);
        a->next_expiry = INT64_MAX;
        if ((e = suppression_list(p->st, true, now, supp_row, a)))
            return e;
    }
    a->gen_rules = gr;
    a->gen_supp = gs;
    a->known = true;
    if (a->nomem) {
        a->nomem = false;
        a->known = false;
        return FH_ERR_NOMEM;
    }
    return FH_OK;
}

fh_err stream_open_archive(stream *p, const char *dir, uint64_t max_bytes, int64_t max_age_ms,
                           const char *instance, char *err, size_t errlen)
{
    archive_opts o = {.dir = dir, .max_bytes = max_bytes, .max_age_ms = max_age_ms};
    fh_err r = archive_open(&p->archive, &o, instance, err, errlen);

    if (r == FH_OK)
        fh_info("archiving events in %s/%s", dir, instance);
    return r;
}

fh_err stream_admin_poll(stream *p)
{
    if (!p->st || store_in_transaction(p->st))
        return FH_OK;
    return admin_sync(p);
}

static bool rule_off(const stream *p, const char *rule_id)
{
    for (size_t i = 0; p->admin && i < p->admin->noff; i++)
        if (!strcmp(p->admin->off[i], rule_id))
            return true;
    return false;
}

/* The id alerts carry for a detection rule: its id, else its name, else its title. */
static const char *detection_id(const sigma_rule *r)
{
    return r->id ? r->id : r->name ? r->name : r->title;
}

/* Whether a suppression hides this hit (counted on the first that does). Switched-off
 * rules are set aside before: detection rules in stream_event, correlations in on_corr. */
static bool suppressed(stream *p, const alert_hit *h)
{
    struct stream_admin *a = p->admin;

    for (size_t i = 0; a && i < a->nsupp; i++) {
        supp_entry *e = &a->supp[i];

        if (strcmp(e->rule, h->rule_id) || (e->src && (!h->src.ip || strcmp(e->src, h->src.ip))) ||
            (e->dst && (!h->dest.ip || strcmp(e->dst, h->dest.ip))))
            continue;
        e->pending++;
        if (h->ts_ms > e->last_hit)
            e->last_hit = h->ts_ms;
        p->suppressed++;
        return true;
    }
    return false;
}

static fh_err book_load(void *ctx, const char *rule_id, const char *group_key, alert *out,
                        bool *found)
{
    stream *p = ctx;

    *found = false;
    if (!p->st)
        return FH_OK;
    return store_load_open(p->st, rule_id, group_key, out, found);
}

static fh_err book_emit(void *ctx, const alert *a)
{
    stream *p = ctx;
    fh_err e;

    if (p->st && (e = store_apply(p->st, a)) != FH_OK)
        return e;
    if (p->alerts_out && (e = alert_write_ndjson(p->alerts_out, &p->jb, a)) != FH_OK)
        return e;
    p->alerts_written++;
    if (a->level >= 0 && a->level < 5)
        p->alerts_by_level[a->level]++;
    return FH_OK;
}

/*
 * The text of a string slot for an alert (alert_value_text: the whole value,
 * escaped, hashed past len); "" when absent, empty or not a string.
 */
static const char *slot_text(const event_view *ev, field_id id, char *buf, size_t len)
{
    const sv *v = event_get(ev, id);

    buf[0] = '\0';
    if (v->type == SV_STR && v->len)
        alert_value_text(buf, len, v->s, v->len);
    return buf;
}

/*
 * One side of the alert from the event's address field: the text of the whole
 * value, and the asset it belongs to only when the whole value is an address
 * (a value cut at a NUL or at some length must not name an asset).
 */
static void fill_side(const engine *e, const event_view *ev, field_id id, char *buf, size_t len,
                      alert_side_view *side)
{
    const sv *v = ev ? event_get(ev, id) : NULL;
    const asset_info *ai = NULL;

    int s = id == e->f_src_ip ? 0 : 1;

    memset(side, 0, sizeof(*side));
    buf[0] = '\0';
    if (!v || v->type != SV_STR || !v->len)
        return;
    side->ip = slot_text(ev, id, buf, len);
    /* enrichment already looked this side up when any rule uses the inventory */
    if (e->seen.done[s])
        ai = e->seen.info[s];
    else if (e->inv)
        ai = assets_lookup_str(e->inv, v->s, v->len);
    side->zone = ai ? ai->zone : NULL;
    side->department = ai ? ai->department : NULL;
    side->name = ai ? ai->name : NULL;
    side->segment = ai ? ai->segment : NULL;
}

/* A detection rule matched: its own alert (when it generates one). */
static void raise_detection(stream *p, const sigma_rule *r, const event_view *ev)
{
    engine *e = p->eng;
    char src[VALUE_MAX], dst[VALUE_MAX], cid[VALUE_MAX], key[VALUE_MAX + 16], sid[VALUE_MAX];
    alert_hit h;
    fh_err err;

    if (p->error)
        return;
    memset(&h, 0, sizeof(h));
    h.rule_id = detection_id(r);
    h.rule_name = r->name;
    h.title = r->title;
    h.level = (int)r->lvl;
    h.tags = (const char *const *)r->tags;
    h.ntags = r->ntags;
    fill_side(e, ev, e->f_src_ip, src, sizeof(src), &h.src);
    fill_side(e, ev, e->f_dest_ip, dst, sizeof(dst), &h.dest);
    /* grouped by the whole source value, escaped as correlation keys escape theirs:
     * values that differ anywhere (after a NUL, past any length) are two alerts */
    {
        const sv *v = event_get(ev, e->f_src_ip);
        bool by_src = v->type == SV_STR && v->len;
        size_t off;

        if (!by_src)
            v = event_get(ev, e->f_sensor_id);
        off = (size_t)snprintf(key, sizeof(key), "%s=", by_src ? "src_ip" : "sensor.id");
        if (v->type == SV_STR)
            alert_key_text(key + off, sizeof(key) - off, v->s, v->len);
    }
    h.group_key = key;
    h.ts_ms = ev->ts_ms;
    h.count = 1;
    h.event = ev->raw;
    h.event_len = ev->raw_len;
    h.community_id = slot_text(ev, e->f_community_id, cid, sizeof(cid))[0] ? cid : NULL;
    h.sensor = slot_text(ev, e->f_sensor_id, sid, sizeof(sid))[0] ? sid : NULL;
    if (suppressed(p, &h))
        return;
    err = alert_book_hit(p->book, &h, NULL);
    if (err)
        p->error = err;
}

/* Collects the rules that match the current event (handled in stream_event). */
static void on_match(void *arg, const sigma_rule *r, const event_view *ev)
{
    stream *p = arg;

    (void)ev; /* the same view as p->ev (engine_process filled it) */
    p->matched[p->nmatched++] = r;
}

/* A correlation rule's condition held for a group in a window. */
static void on_corr(void *arg, const struct corr_rule *cr, const char *group_key,
                    int64_t window_start_ms, int64_t first_ms, int64_t last_ms,
                    uint64_t count_or_value, const event_view *ev)
{
    stream *p = arg;
    engine *e = p->eng;
    char src[VALUE_MAX] = "", dst[VALUE_MAX] = "", cid[VALUE_MAX] = "", sid[VALUE_MAX] = "";
    alert_hit h;
    fh_err err;

    (void)first_ms;
    if (p->error)
        return;
    memset(&h, 0, sizeof(h));
    h.rule_id = cr->id ? cr->id : cr->name ? cr->name : cr->title;
    h.rule_name = cr->name;
    h.title = cr->title ? cr->title : h.rule_id;
    h.level = (int)cr->lvl;
    h.tags = (const char *const *)cr->tags;
    h.ntags = cr->ntags;
    h.group_key = group_key;
    h.ts_ms = last_ms;
    h.correlation = true;
    h.window_start_ms = window_start_ms;
    /* event_count: the events the window counted; sums and distinct counts are not
     * a number of events, so they stand for one hit each */
    h.count = cr->type == CORR_EVENT_COUNT ? count_or_value : 1;
    if (ev) {
        slot_text(ev, e->f_community_id, cid, sizeof(cid));
        h.event = ev->raw;
        h.event_len = ev->raw_len;
        h.community_id = cid[0] ? cid : NULL;
        h.sensor = slot_text(ev, e->f_sensor_id, sid, sizeof(sid))[0] ? sid : NULL;
    }
    fill_side(e, ev, e->f_src_ip, src, sizeof(src), &h.src);
    fill_side(e, ev, e->f_dest_ip, dst, sizeof(dst), &h.dest);
    if (rule_off(p, h.rule_id)) {
        p->suppressed++;
        return;
    }
    if (suppressed(p, &h))
        return;
    err = alert_book_hit(p->book, &h, NULL);
    if (err)
        p->error = err;
}

fh_err stream_init(stream *p, engine *e, store *st, FILE *alerts_out, char *err, size_t errlen)
{
    alert_book_opts opts = {0};
    alert_book_ops ops = {book_load, book_emit, p};
    fh_err r;

    memset(p, 0, sizeof(*p));
    p->eng = e;
    p->st = st;
    p->alerts_out = alerts_out;
    if (!jbuf_init(&p->jb, 16384, 8u << 20)) {
        snprintf(err, errlen, "out of memory");
        return FH_ERR_NOMEM;
    }
    r = alert_book_new(&p->book, &opts, &ops);
    if (r) {
        snprintf(err, errlen, "cannot create the alert book: %s", fh_strerror(r));
        jbuf_free(&p->jb);
        return r;
    }
    p->matched = calloc(e->rs.nrules ? e->rs.nrules : 1, sizeof(*p->matched));
    p->generates = calloc(e->rs.nrules ? e->rs.nrules : 1, sizeof(*p->generates));
    p->corr = corr_engine_new(&e->rs, &p->lim);
    if (!p->matched || !p->generates || !p->corr) {
        snprintf(err, errlen, "out of memory");
        stream_free(p);
        return FH_ERR_NOMEM;
    }
    if (st && !(p->traffic = traffic_new())) {
        snprintf(err, errlen, "out of memory");
        stream_free(p);
        return FH_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < e->rs.nrules; i++)
        p->generates[i] = corr_rule_generates(&e->rs, i);
    return FH_OK;
}

fh_err stream_set_limits(stream *p, const corr_limits *lim)
{
    corr_engine *c = corr_engine_new(&p->eng->rs, lim);

    if (!c)
        return FH_ERR_NOMEM;
    corr_engine_free(p->corr);
    p->corr = c;
    p->lim = *lim;
    return FH_OK;
}

void stream_free(stream *p)
{
    corr_engine_free(p->corr);
    free(p->matched);
    free(p->generates);
    alert_book_free(p->book);
    jbuf_free(&p->jb);
    admin_free(p->admin);
    archive_close(p->archive);
    traffic_free(p->traffic);
    memset(p, 0, sizeof(*p));
}

/*
 * An event the clock policy set aside: said on the first one and then at every
 * power of two, with the sensor it came from (the counter is in the summary).
 */
static void clock_aside(stream *p)
{
    corr_stats st;
    char sid[VALUE_MAX];

    corr_get_stats(p->corr, &st);
    if (st.clock_ahead & (st.clock_ahead - 1))
        return;
    fh_warn(
        "correlation clock: an event of sensor '%s' at %lld ms is more than %lld s "
        "(--max-clock-ahead) ahead of the newest event time: set aside from correlation "
        "(%llu so far; detection rules still see it)",
        slot_text(&p->ev, p->eng->f_sensor_id, sid, sizeof(sid)), (long long)p->ev.ts_ms,
        (long long)((p->lim.max_ahead_ms > 0 ? p->lim.max_ahead_ms : 24 * 3600 * 1000LL) / 1000),
        (unsigned long long)st.clock_ahead);
}

static bool is_value(const event_view *ev, field_id id, const char *want)
{
    const sv *v = event_get(ev, id);
    size_t n = strlen(want);

    return v->type == SV_STR && v->len == n && !memcmp(v->s, want, n);
}

/* A non-negative integer field, -1 when absent or not one. */
static int64_t slot_count(const event_view *ev, field_id id)
{
    const sv *v = event_get(ev, id);

    return v->type == SV_NUM && v->is_int && v->i >= 0 ? v->i : -1;
}

static uint64_t slot_u64(const event_view *ev, field_id id)
{
    int64_t v = slot_count(ev, id);

    return v < 0 ? 0 : (uint64_t)v;
}

/*
 * A sensor's stats event: counted per hour for verification by traffic
 * (incident.h), and its figures kept as the sensor's status (traffic.h).
 */
static fh_err stats_seen(stream *p)
{
    const engine *e = p->eng;
    char sid[VALUE_MAX], seg[VALUE_MAX];
    sensor_status ss;
    fh_err r;

    slot_text(&p->ev, e->f_sensor_id, sid, sizeof(sid));
    slot_text(&p->ev, e->f_sensor_segment, seg, sizeof(seg));
    if ((r = store_sensor_stats(p->st, sid, seg, p->ev.ts_ms)))
        return r;
    ss = (sensor_status){
        .sensor = sid,
        .segment = seg,
        .ts = p->ev.ts_ms,
        .packets = slot_count(&p->ev, e->tf[TF_CAP_PACKETS]),
        .kernel_packets = slot_count(&p->ev, e->tf[TF_KERNEL_PACKETS]),
        .kernel_drops = slot_count(&p->ev, e->tf[TF_KERNEL_DROPS]),
        .ifdrops = slot_count(&p->ev, e->tf[TF_IFDROPS]),
        .kafka_failed = slot_count(&p->ev, e->tf[TF_KAFKA_FAILED]),
        .kafka_dropped = slot_count(&p->ev, e->tf[TF_KAFKA_DROPPED]),
        .spool_pending = slot_count(&p->ev, e->tf[TF_SPOOL_PENDING]),
        .output_dropped = slot_count(&p->ev, e->tf[TF_OUTPUT_DROPPED]),
    };
    return store_sensor_status(p->st, &ss);
}

/* An ended flow (not an update) into the batch's traffic sums (traffic.h). */
static fh_err flow_seen(stream *p)
{
    const engine *e = p->eng;
    char seg[VALUE_MAX], app[VALUE_MAX], cat[VALUE_MAX], cc[VALUE_MAX];
    traffic_flow f;

    if (is_value(&p->ev, e->tf[TF_FLOW_REASON], "update"))
        return FH_OK;
    f = (traffic_flow){
        .hour = p->ev.ts_ms / (3600 * 1000LL),
        .segment = slot_text(&p->ev, e->f_sensor_segment, seg, sizeof(seg)),
        .app = slot_text(&p->ev, e->tf[TF_APP_PROTO], app, sizeof(app)),
        .category = slot_text(&p->ev, e->tf[TF_CATEGORY], cat, sizeof(cat)),
        .country = slot_text(&p->ev, e->tf[TF_DEST_COUNTRY], cc, sizeof(cc)),
        .packets = slot_u64(&p->ev, e->tf[TF_PKTS_TS]) + slot_u64(&p->ev, e->tf[TF_PKTS_TC]),
        .bytes = slot_u64(&p->ev, e->tf[TF_BYTES_TS]) + slot_u64(&p->ev, e->tf[TF_BYTES_TC]),
    };
    return traffic_add(p->traffic, &f, p->st);
}

fh_err stream_event(stream *p, const char *json, size_t len)
{
    struct timespec t0;
    char err[256];
    bool in_time;

    if (p->broken)
        return FH_ERR_IO;
    if (p->st && !store_in_transaction(p->st)) {
        fh_err e = store_begin(p->st);

        if (e || (e = admin_sync(p)))
            return e;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    p->batch_events++;
    p->nmatched = 0;
    /* A malformed event is counted by the engine and skipped: not an error here. */
    /* p->ev: this event (matched or not: its time moves the windows) */
    if (engine_process(p->eng, json, len, on_match, p, &p->ev, err, sizeof(err)) != FH_OK) {
        hist_add(p, &t0);
        return p->error;
    }
    if (p->archive)
        archive_add(p->archive, json, len, p->ev.ts_ms); /* a failure is counted, not fatal */
    /* Event time moves the correlation windows, matched or not, unless the clock
     * policy sets the event aside (corr_admit: far ahead of the watermark). */
    in_time = p->ev.ts_ms && corr_admit(p->corr, p->ev.ts_ms);
    if (in_time)
        corr_advance(p->corr, p->ev.ts_ms, on_corr, p);
    else if (p->ev.ts_ms)
        clock_aside(p);
    if (in_time && p->st && is_value(&p->ev, p->eng->f_event_type, "stats") &&
        (p->error = stats_seen(p)))
        return p->error;
    if (p->ev.ts_ms > 0 && p->traffic && is_value(&p->ev, p->eng->f_event_type, "flow") &&
        (p->error = flow_seen(p)))
        return p->error;
    for (uint32_t i = 0; i < p->nmatched && !p->error; i++) {
        const sigma_rule *r = p->matched[i];
        uint32_t idx = (uint32_t)(r - p->eng->rs.rules);

        /* a switched-off detection rule neither alerts nor feeds a correlation */
        if (rule_off(p, detection_id(r))) {
            p->suppressed++;
            continue;
        }
        if (p->generates[idx])
            raise_detection(p, r, &p->ev);
        if (in_time && corr_uses_rule(p->corr, idx))
            corr_feed(p->corr, idx, &p->ev, p->ev.ts_ms, on_corr, p);
    }
    hist_add(p, &t0);
    return p->error;
}

fh_err stream_reload(stream *p, const engine_config *cfg, char *err, size_t errlen)
{
    engine *ne = NULL;
    corr_engine *nc = NULL;
    const sigma_rule **nm = NULL;
    bool *ng = NULL;
    uint64_t moved;
    fh_err r;

    r = engine_open(&ne, cfg, err, errlen);
    if (r)
        return r;
    if (ne->rs.nerrors) {
        snprintf(err, errlen, "%u rules refused (see above): the running rule set stays in force",
                 ne->rs.nerrors);
        engine_free(ne);
        return FH_ERR_CONFIG;
    }
    nc = corr_engine_new(&ne->rs, &p->lim);
    if (nc)
        corr_engine_track_changes(nc, p->persist);
    nm = calloc(ne->rs.nrules ? ne->rs.nrules : 1, sizeof(*nm));
    ng = calloc(ne->rs.nrules ? ne->rs.nrules : 1, sizeof(*ng));
    if (!nc || !nm || !ng) {
        snprintf(err, errlen, "out of memory: the running rule set stays in force");
        corr_engine_free(nc);
        free(nm);
        free(ng);
        engine_free(ne);
        return FH_ERR_NOMEM;
    }
    if ((r = stream_commit(p, err, errlen)) != FH_OK) {
        corr_engine_free(nc);
        free(nm);
        free(ng);
        engine_free(ne);
        return r;
    }
    for (uint32_t i = 0; i < ne->rs.nrules; i++)
        ng[i] = corr_rule_generates(&ne->rs, i);
    moved = corr_engine_adopt(nc, p->corr);
    corr_engine_free(p->corr);
    engine_free(p->eng);
    free(p->matched);
    free(p->generates);
    p->eng = ne;
    p->corr = nc;
    p->matched = nm;
    p->generates = ng;
    p->reload_wanted = false;
    p->reloads++;
    p->loaded_ms = wall_ms();
    fh_info("rules reloaded: %u rules (%u correlation); window state of %llu groups kept",
            ne->rs.nrules + ne->rs.ncorrs, ne->rs.ncorrs, (unsigned long long)moved);
    return FH_OK;
}

/* correlator_meta names of the correlation engine's clock */
#define META_WATERMARK "corr_watermark"
#define META_DEADLINE  "corr_next_deadline"
#define META_TOUCH     "corr_touch"

typedef struct {
    stream *p;
    uint64_t restored, dropped, over;
    struct stale {
        char *rule;
        void *key;
        size_t keylen;
    } * stale;
    size_t nstale, capstale;
    bool nomem;
} restore_ctx;

static void restore_row(void *arg, const char *rule, const void *key, size_t keylen,
                        const void *state, size_t len)
{
    restore_ctx *c = arg;
    fh_err r = corr_engine_restore(c->p->corr, rule, key, keylen, state, len);
    struct stale *ns;

    if (r == FH_OK) {
        c->restored++;
        return;
    }
    if (r == FH_ERR_LIMIT) { /* fits the rule, not the caps: kept for a bigger limit */
        c->over++;
        return;
    }
    c->dropped++;
    if (c->nstale == c->capstale) {
        size_t nc = c->capstale ? c->capstale * 2 : 16;

        if (!(ns = realloc(c->stale, nc * sizeof(*ns)))) {
            c->nomem = true;
            return;
        }
        c->stale = ns;
        c->capstale = nc;
    }
    ns = &c->stale[c->nstale];
    ns->rule = strdup(rule);
    ns->key = malloc(keylen ? keylen : 1);
    ns->keylen = keylen;
    if (!ns->rule || !ns->key) {
        free(ns->rule);
        free(ns->key);
        c->nomem = true;
        return;
    }
    memcpy(ns->key, key, keylen);
    c->nstale++;
}

/* Replaces p->corr by a fresh engine holding the store's last committed windows. */
static fh_err windows_load(stream *p, bool log, char *err, size_t errlen)
{
    corr_engine *ce = corr_engine_new(&p->eng->rs, &p->lim);
    restore_ctx c = {.p = p};
    corr_clock clk = {0};
    int64_t v[3];
    fh_err r, m[3] = {FH_ERR_NOTFOUND, FH_ERR_NOTFOUND, FH_ERR_NOTFOUND};

    if (!ce) {
        snprintf(err, errlen, "out of memory");
        return FH_ERR_NOMEM;
    }
    corr_engine_free(p->corr);
    p->corr = ce;
    corr_engine_track_changes(ce, true);
    if ((r = store_corr_load(p->st, restore_row, &c)) == FH_OK && c.nomem)
        r = FH_ERR_NOMEM;
    if (r == FH_OK) {
        m[0] = store_meta_get(p->st, META_WATERMARK, &v[0]);
        m[1] = store_meta_get(p->st, META_DEADLINE, &v[1]);
        m[2] = store_meta_get(p->st, META_TOUCH, &v[2]);
        for (int i = 0; i < 3 && r == FH_OK; i++)
            if (m[i] != FH_OK && m[i] != FH_ERR_NOTFOUND)
                r = m[i];
    }
    if (r == FH_OK) {
        clk.has_watermark = m[0] == FH_OK;
        clk.watermark = v[0];
        clk.next_deadline = m[1] == FH_OK ? v[1] : INT64_MAX;
        clk.touch = m[2] == FH_OK ? (uint64_t)v[2] : 0;
        r = corr_engine_restore_done(ce, m[1] == FH_OK ? &clk : NULL);
    }
    /* rows no loaded rule can use: gone for good */
    if (r == FH_OK && c.nstale && (r = store_begin(p->st)) == FH_OK) {
        for (size_t i = 0; i < c.nstale && r == FH_OK; i++)
            r = store_corr_del(p->st, c.stale[i].rule, c.stale[i].key, c.stale[i].keylen);
        r = r == FH_OK ? store_commit(p->st) : r;
        if (r != FH_OK)
            store_rollback(p->st);
    }
    for (size_t i = 0; i < c.nstale; i++) {
        free(c.stale[i].rule);
        free(c.stale[i].key);
    }
    free(c.stale);
    if (r != FH_OK) {
        snprintf(err, errlen, "restoring the correlation windows failed: %s: %s", fh_strerror(r),
                 store_errmsg(p->st));
        return r;
    }
    if (log && (c.restored || c.dropped || c.over))
        fh_info("correlation windows restored: %llu groups; %llu dropped (rule changed or "
                "gone); %llu over the state limits",
                (unsigned long long)c.restored, (unsigned long long)c.dropped,
                (unsigned long long)c.over);
    return FH_OK;
}

fh_err stream_restore_windows(stream *p, char *err, size_t errlen)
{
    fh_err r;

    if (!p->st) {
        snprintf(err, errlen, "keeping correlation windows needs the store (--db)");
        return FH_ERR_ARG;
    }
    if ((r = windows_load(p, true, err, errlen)) != FH_OK)
        return r;
    p->persist = true;
    return FH_OK;
}

static fh_err checkpoint(stream *p)
{
    corr_clock c;
    fh_err e = corr_engine_checkpoint(p->corr, store_corr_put, store_corr_del, p->st);

    corr_engine_get_clock(p->corr, &c);
    if (e == FH_OK && c.has_watermark)
        e = store_meta_set(p->st, META_WATERMARK, c.watermark);
    if (e == FH_OK)
        e = store_meta_set(p->st, META_DEADLINE, c.next_deadline);
    if (e == FH_OK)
        e = store_meta_set(p->st, META_TOUCH, (int64_t)c.touch);
    return e;
}

fh_err stream_commit(stream *p, char *err, size_t errlen)
{
    fh_err e = p->error ? p->error : alert_book_flush(p->book);

    if (!e && p->st && store_in_transaction(p->st))
        e = admin_flush_hits(p);
    if (!e && p->traffic && store_in_transaction(p->st))
        e = traffic_flush(p->traffic, p->st);
    if (!e && p->persist && store_in_transaction(p->st))
        e = checkpoint(p);
    if (!e && p->st && store_in_transaction(p->st))
        e = store_commit(p->st);
    if (e) {
        char why[512];

        snprintf(err, errlen, "storing alerts failed: %s%s%s", fh_strerror(e), p->st ? ": " : "",
                 p->st ? store_errmsg(p->st) : "");
        if (p->st)
            store_rollback(p->st);
        admin_forget_hits(p);
        if (p->traffic)
            traffic_clear(p->traffic);
        alert_book_reset(p->book);
        p->error = FH_OK;
        /* the windows counted the batch: back to what the store holds */
        if (p->persist && windows_load(p, false, why, sizeof(why)) != FH_OK) {
            snprintf(err, errlen, "%s (after: %s)", why, fh_strerror(e));
            p->broken = true;
            return FH_ERR_IO;
        }
        return e;
    }
    if (p->alerts_out)
        fflush(p->alerts_out);
    if (p->archive)
        archive_flush(p->archive);
    admin_forget_hits(p);
    p->batch_events = 0;
    return FH_OK;
}
