/*
 * traffic.c - the traffic sums of a batch and the sensors' latest stats; see traffic.h.
 */
#include "traffic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

typedef struct {
    int64_t hour;
    char seg[TRAFFIC_KEY_MAX + 1], app[TRAFFIC_KEY_MAX + 1], cat[TRAFFIC_KEY_MAX + 1],
        cc[TRAFFIC_KEY_MAX + 1];
    uint64_t flows, packets, bytes;
} trow;

struct traffic_agg {
    trow *rows;
    size_t n, cap;
    uint32_t *slot; /* index + 1 into rows, 0: free; nslot a power of two, > 2 n */
    size_t nslot;
};

enum { T_ADD, T_STATUS, T_STMTS };

static const char *const SQL[T_STMTS] = {
    [T_ADD] = "INSERT INTO traffic_hourly (hour, segment, app_proto, category, country, flows, "
              "packets, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hour, "
              "segment, app_proto, category, country) DO UPDATE SET flows = traffic_hourly.flows "
              "+ excluded.flows, packets = traffic_hourly.packets + excluded.packets, bytes = "
              "traffic_hourly.bytes + excluded.bytes",
    /* every SET reads the row as it was: prev_* take the old values when the counters
     * went on (not after a restart of the sensor); an older event changes nothing */
    [T_STATUS] = "INSERT INTO sensor_status (sensor, segment, ts, received_at, packets, "
                 "kernel_packets, kernel_drops, ifdrops, kafka_failed, kafka_dropped, "
                 "spool_pending, output_dropped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                 "?10, ?11, ?12) ON CONFLICT (sensor) DO UPDATE SET segment = excluded.segment, "
                 "prev_ts = CASE WHEN excluded.ts > sensor_status.ts AND excluded.packets >= "
                 "sensor_status.packets THEN sensor_status.ts END, prev_packets = CASE WHEN "
                 "excluded.ts > sensor_status.ts AND excluded.packets >= sensor_status.packets "
                 "THEN sensor_status.packets END, ts = excluded.ts, received_at = "
                 "excluded.received_at, packets = excluded.packets, kernel_packets = "
                 "excluded.kernel_packets, kernel_drops = excluded.kernel_drops, ifdrops = "
                 "excluded.ifdrops, kafka_failed = excluded.kafka_failed, kafka_dropped = "
                 "excluded.kafka_dropped, spool_pending = excluded.spool_pending, "
                 "output_dropped = excluded.output_dropped WHERE excluded.ts >= sensor_status.ts",
};

_Static_assert((int)T_STMTS <= (int)STORE_LAZY_MAX - (int)LAZY_TRAFFIC,
               "traffic.c: too many statements");

traffic_agg *traffic_new(void)
{
    return calloc(1, sizeof(traffic_agg));
}

void traffic_free(traffic_agg *t)
{
    if (!t)
        return;
    free(t->rows);
    free(t->slot);
    free(t);
}

size_t traffic_rows(const traffic_agg *t)
{
    return t->n;
}

void traffic_clear(traffic_agg *t)
{
    t->n = 0;
    if (t->slot)
        memset(t->slot, 0, t->nslot * sizeof(t->slot[0]));
}

static void copy_key(char *dst, const char *src, const char *none)
{
    size_t n;

    if (!src || !*src)
        src = none;
    n = strnlen(src, TRAFFIC_KEY_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* FNV-1a over the key */
static uint64_t row_hash(const trow *r)
{
    uint64_t h = 1469598103934665603ULL;
    const char *parts[4] = {r->seg, r->app, r->cat, r->cc};

    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)((uint64_t)r->hour >> (8 * i))) * 1099511628211ULL;
    for (int p = 0; p < 4; p++)
        for (const char *c = parts[p];; c++) {
            h = (h ^ (uint8_t)*c) * 1099511628211ULL;
            if (!*c)
                break;
        }
    return h;
}

static bool same_key(const trow *a, const trow *b)
{
    return a->hour == b->hour && !strcmp(a->seg, b->seg) && !strcmp(a->app, b->app) &&
           !strcmp(a->cat, b->cat) && !strcmp(a->cc, b->cc);
}

static fh_err grow(traffic_agg *t)
{
    size_t ns = t->nslot ? t->nslot * 2 : 256;
    uint32_t *slot = calloc(ns, sizeof(*slot));
    trow *rows = realloc(t->rows, ns / 2 * sizeof(*rows));

    if (!slot || !rows) {
        free(slot);
        if (rows)
            t->rows = rows;
        return FH_ERR_NOMEM;
    }
    t->rows = rows;
    t->cap = ns / 2;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = row_hash(&rows[i]) & (ns - 1);

        while (slot[j])
            j = (j + 1) & (ns - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(t->slot);
    t->slot = slot;
    t->nslot = ns;
    return FH_OK;
}

fh_err traffic_add(traffic_agg *t, const traffic_flow *f, store *st)
{
    trow key;
    size_t j;
    fh_err e;

    key.hour = f->hour;
    copy_key(key.seg, f->segment, "");
    copy_key(key.app, f->app, "unknown");
    copy_key(key.cat, f->category, "");
    copy_key(key.cc, f->country, "");
    if (t->n >= TRAFFIC_ROWS_MAX && (e = traffic_flush(t, st)))
        return e;
    if (t->n + 1 > t->cap && (e = grow(t)))
        return e;
    for (j = row_hash(&key) & (t->nslot - 1); t->slot[j]; j = (j + 1) & (t->nslot - 1)) {
        trow *r = &t->rows[t->slot[j] - 1];

        if (same_key(r, &key)) {
            r->flows++;
            r->packets += f->packets;
            r->bytes += f->bytes;
            return FH_OK;
        }
    }
    key.flows = 1;
    key.packets = f->packets;
    key.bytes = f->bytes;
    t->rows[t->n] = key;
    t->slot[j] = (uint32_t)(++t->n);
    return FH_OK;
}

static int cmp_row(const void *a, const void *b)
{
    const trow *x = a, *y = b;
    int c;

    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    if ((c = strcmp(x->seg, y->seg)) || (c = strcmp(x->app, y->app)) ||
        (c = strcmp(x->cat, y->cat)))
        return c;
    return strcmp(x->cc, y->cc);
}

static int64_t clamp(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

fh_err traffic_flush(traffic_agg *t, store *st)
{
    db_stmt *s;
    fh_err e = FH_OK;

    if (!t->n)
        return FH_OK;
    if ((e = store_need_tx(st, "traffic_flush")))
        return e;
    if (!(s = store_lazy(st, LAZY_TRAFFIC + T_ADD, SQL[T_ADD])))
        return FH_ERR_IO;
    qsort(t->rows, t->n, sizeof(t->rows[0]), cmp_row);
    for (size_t i = 0; i < t->n && !e; i++) {
        const trow *r = &t->rows[i];

        db_bind_int64(s, 1, r->hour);
        db_bind_str(s, 2, r->seg);
        db_bind_str(s, 3, r->app);
        db_bind_str(s, 4, r->cat);
        db_bind_str(s, 5, r->cc);
        db_bind_int64(s, 6, clamp(r->flows));
        db_bind_int64(s, 7, clamp(r->packets));
        db_bind_int64(s, 8, clamp(r->bytes));
        e = store_step_done(st, s, "traffic: INSERT traffic_hourly");
    }
    traffic_clear(t);
    return e;
}

static void bind_opt(db_stmt *s, int i, int64_t v)
{
    if (v < 0)
        db_bind_null(s, i);
    else
        db_bind_int64(s, i, v);
}

fh_err store_sensor_status(store *st, const sensor_status *v)
{
    db_stmt *s;
    fh_err e;

    if ((e = store_need_tx(st, "store_sensor_status")))
        return e;
    if (!(s = store_lazy(st, LAZY_TRAFFIC + T_STATUS, SQL[T_STATUS])))
        return FH_ERR_IO;
    db_bind_str(s, 1, v->sensor);
    db_bind_str(s, 2, v->segment && *v->segment ? v->segment : NULL);
    db_bind_int64(s, 3, v->ts);
    db_bind_int64(s, 4, store_now_ms(st));
    db_bind_int64(s, 5, v->packets < 0 ? 0 : v->packets);
    bind_opt(s, 6, v->kernel_packets);
    bind_opt(s, 7, v->kernel_drops);
    bind_opt(s, 8, v->ifdrops);
    bind_opt(s, 9, v->kafka_failed);
    bind_opt(s, 10, v->kafka_dropped);
    bind_opt(s, 11, v->spool_pending);
    bind_opt(s, 12, v->output_dropped);
    return store_step_done(st, s, "traffic: INSERT sensor_status");
}
