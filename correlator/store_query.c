/*
 * store_query.c - the alert queue's queries; see alert_query.h.
 */
#include "alert_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "calendar.h"
#include "store_int.h"

#define MAX_PARAMS 96
#define DEPT       "COALESCE(a.assigned_department, a.department)"

/* A query under construction: fixed SQL fragments, and the values bound to ?N. */
typedef struct {
    char sql[8192];
    size_t len;
    bool overflow;
    int n;
    const char *text[MAX_PARAMS];
    int64_t num[MAX_PARAMS];
    bool is_num[MAX_PARAMS];
    char *owned[MAX_PARAMS]; /* LIKE patterns built here */
    int nowned;
} qb;

static void add(qb *q, const char *frag)
{
    size_t n = strlen(frag);

    if (q->len + n + 1 > sizeof(q->sql)) {
        q->overflow = true;
        return;
    }
    memcpy(q->sql + q->len, frag, n + 1);
    q->len += n;
}

/* Appends ?N bound to a text value. */
static void text(qb *q, const char *v)
{
    char p[16];

    if (q->n >= MAX_PARAMS) {
        q->overflow = true;
        return;
    }
    q->text[q->n] = v;
    q->is_num[q->n] = false;
    snprintf(p, sizeof(p), "?%d", ++q->n);
    add(q, p);
}

static void num(qb *q, int64_t v)
{
    char p[16];

    if (q->n >= MAX_PARAMS) {
        q->overflow = true;
        return;
    }
    q->num[q->n] = v;
    q->is_num[q->n] = true;
    snprintf(p, sizeof(p), "?%d", ++q->n);
    add(q, p);
}

/* "%" + v with \, % and _ escaped + "%", for LIKE ... ESCAPE '\'. */
static const char *like(qb *q, const char *v)
{
    size_t n = strlen(v);
    char *p = malloc(n * 2 + 3), *o = p;

    if (!p || q->nowned >= MAX_PARAMS) {
        free(p);
        q->overflow = true;
        return "";
    }
    *o++ = '%';
    for (; *v; v++) {
        if (*v == '\\' || *v == '%' || *v == '_')
            *o++ = '\\';
        *o++ = *v;
    }
    *o++ = '%';
    *o = '\0';
    q->owned[q->nowned++] = p;
    return p;
}

static void qb_free(qb *q)
{
    for (int i = 0; i < q->nowned; i++)
        free(q->owned[i]);
}

static void in_list(qb *q, const char *col, const char *const *v, uint32_t n)
{
    add(q, " AND ");
    add(q, col);
    add(q, " IN (");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            add(q, ", ");
        text(q, v[i]);
    }
    add(q, ")");
}

/* " WHERE ..." for the filter (always a WHERE: it starts with 1 = 1). */
static void where(qb *q, const aq_filter *f)
{
    add(q, " WHERE 1 = 1");
    if (f->scoped) {
        if (f->nscope)
            in_list(q, DEPT, f->scope, f->nscope);
        else
            add(q, " AND 1 = 0");
    }
    if (f->nseverity)
        in_list(q, "a.level", f->severity, f->nseverity);
    if (f->nstatus)
        in_list(q, "a.status", f->status, f->nstatus);
    if (f->rule) {
        add(q, " AND (a.rule_id = ");
        text(q, f->rule);
        add(q, " OR a.rule_name = ");
        text(q, f->rule);
        add(q, ")");
    }
    if (f->clause) {
        add(q, " AND EXISTS (SELECT 1 FROM alert_tags t WHERE t.alert_id = a.id AND "
               "t.kind = 'clause' AND (t.value = ");
        text(q, f->clause);
        add(q, " OR t.display = ");
        text(q, f->clause);
        add(q, "))");
    }
    if (f->category) {
        add(q, " AND a.category = ");
        text(q, f->category);
    }
    if (f->department) {
        add(q, " AND " DEPT " = ");
        text(q, f->department);
    }
    if (f->segment) {
        add(q, " AND (a.src_segment = ");
        text(q, f->segment);
        add(q, " OR a.dest_segment = ");
        text(q, f->segment);
        add(q, ")");
    }
    if (f->asset) {
        add(q, " AND (a.src_asset = ");
        text(q, f->asset);
        add(q, " OR a.dest_asset = ");
        text(q, f->asset);
        add(q, ")");
    }
    if (f->address) {
        add(q, " AND (a.src_ip = ");
        text(q, f->address);
        add(q, " OR a.dest_ip = ");
        text(q, f->address);
        add(q, ")");
    }
    if (f->from_ms) {
        add(q, " AND a.last_seen >= ");
        num(q, f->from_ms);
    }
    if (f->to_ms) {
        add(q, " AND a.last_seen < ");
        num(q, f->to_ms);
    }
    if (f->text && *f->text) {
        const char *pat = like(q, f->text);
        static const char *const cols[] = {"a.title", "a.group_key", "a.src_ip", "a.dest_ip"};

        add(q, " AND (");
        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
            add(q, i ? " OR " : "");
            add(q, cols[i]);
            add(q, " LIKE ");
            text(q, pat);
            add(q, " ESCAPE '\\'");
        }
        add(q, ")");
    }
}

/* Prepares the query and binds its values; NULL on error (errmsg set). */
static db_stmt *prepare(store *st, qb *q)
{
    db_stmt *s;

    if (q->overflow) {
        snprintf(st->errmsg, sizeof(st->errmsg), "alert query: too many filter values");
        return NULL;
    }
    if (!(s = db_prepare(st->db, q->sql))) {
        store_fail(st, "alert query: prepare");
        return NULL;
    }
    for (int i = 0; i < q->n; i++) {
        if (q->is_num[i])
            db_bind_int64(s, i + 1, q->num[i]);
        else
            db_bind_str(s, i + 1, q->text[i]);
    }
    return s;
}

bool aq_sort_parse(const char *s, aq_sort *sort, bool *desc)
{
    static const char *const names[] = {"last_seen", "first_seen", "severity", "count"};

    *desc = true;
    if (s && *s == '-')
        s++;
    else if (s && *s == '+')
        *desc = false, s++;
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i])) {
            *sort = (aq_sort)i;
            return true;
        }
    return false;
}

static const char *sort_col(aq_sort s)
{
    static const char *const cols[] = {"a.last_seen", "a.first_seen", "a.severity", "a.count"};

    return cols[s];
}

#define LIST_COLS                                                                                  \
    "a.id, a.rule_id, a.rule_name, a.title, a.level, a.status, " DEPT ", a.group_key, "            \
    "a.first_seen, a.last_seen, a.count, a.hits, a.src_ip, a.src_asset, a.src_segment, "           \
    "a.src_zone, a.dest_ip, a.dest_asset, a.dest_segment, a.dest_zone, a.deadline_at, "            \
    "a.assignee, a.category, a.subcategory, a.sensor, a.severity, "

static void side_json(jbuf *b, const char *key, db_stmt *s, int c)
{
    jbuf_obj_open(b, key);
    alert_json_opt(b, "ip", db_column_text(s, c));
    alert_json_opt(b, "asset", db_column_text(s, c + 1));
    alert_json_opt(b, "segment", db_column_text(s, c + 2));
    alert_json_opt(b, "zone", db_column_text(s, c + 3));
    jbuf_obj_close(b);
}

fh_err aq_list(store *st, const aq_filter *f, aq_sort sort, bool desc, const char *cursor,
               uint32_t limit, jbuf *out)
{
    qb q = {0};
    db_stmt *s;
    int64_t cval = 0, last_val = 0;
    char cid[ALERT_ID_LEN + 1] = "", last_id[ALERT_ID_LEN + 1] = "";
    uint32_t rows = 0;
    fh_err err = FH_OK;
    int rc;

    if (limit < 1 || limit > 500)
        return FH_ERR_ARG;
    if (cursor) {
        const char *dot = strchr(cursor, '.');
        char *end;

        cval = strtoll(cursor, &end, 10);
        if (!dot || end != dot || strlen(dot + 1) != ALERT_ID_LEN ||
            strspn(dot + 1, "0123456789abcdef") != ALERT_ID_LEN)
            return FH_ERR_ARG;
        snprintf(cid, sizeof(cid), "%s", dot + 1);
    }
    add(&q, "SELECT " LIST_COLS);
    add(&q, sort_col(sort));
    add(&q, " FROM alerts a");
    where(&q, f);
    if (cursor) {
        /* keyset: the rows after (value, id) in the order below, written as a range on
         * the sort column (an index range scan) and a test within it */
        add(&q, " AND ");
        add(&q, sort_col(sort));
        add(&q, desc ? " <= " : " >= ");
        num(&q, cval);
        add(&q, " AND (");
        add(&q, sort_col(sort));
        add(&q, desc ? " < " : " > ");
        num(&q, cval);
        add(&q, desc ? " OR a.id < " : " OR a.id > ");
        text(&q, cid);
        add(&q, ")");
    }
    add(&q, " ORDER BY ");
    add(&q, sort_col(sort));
    add(&q, desc ? " DESC, a.id DESC LIMIT " : " ASC, a.id ASC LIMIT ");
    num(&q, (int64_t)limit + 1);
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    jbuf_obj_open(out, NULL);
    jbuf_arr_open(out, "alerts");
    while ((rc = db_step(s)) == DB_ROW) {
        if (++rows > limit)
            break;
        jbuf_obj_open(out, NULL);
        jbuf_str(out, "id", db_column_text(s, 0));
        jbuf_obj_open(out, "rule");
        jbuf_str(out, "id", db_column_text(s, 1));
        alert_json_opt(out, "name", db_column_text(s, 2));
        jbuf_str(out, "title", db_column_text(s, 3));
        jbuf_obj_close(out);
        jbuf_str(out, "level", db_column_text(s, 4));
        jbuf_str(out, "status", db_column_text(s, 5));
        alert_json_opt(out, "department", db_column_text(s, 6));
        jbuf_str(out, "group_key", db_column_text(s, 7));
        alert_json_time(out, "first_seen", db_column_int64(s, 8));
        alert_json_time(out, "last_seen", db_column_int64(s, 9));
        jbuf_i64(out, "count", db_column_int64(s, 10));
        jbuf_i64(out, "hits", db_column_int64(s, 11));
        side_json(out, "src", s, 12);
        side_json(out, "dest", s, 16);
        if (!db_column_null(s, 20))
            alert_json_time(out, "deadline", db_column_int64(s, 20));
        alert_json_opt(out, "assignee", db_column_text(s, 21));
        alert_json_opt(out, "category", db_column_text(s, 22));
        alert_json_opt(out, "subcategory", db_column_text(s, 23));
        alert_json_opt(out, "sensor", db_column_text(s, 24));
        jbuf_obj_close(out);
        last_val = db_column_int64(s, 26);
        snprintf(last_id, sizeof(last_id), "%s", db_column_text(s, 0));
    }
    if (rc != DB_ROW && rc != DB_DONE)
        err = store_fail(st, "alert query: SELECT");
    db_finalize(s);
    qb_free(&q);
    jbuf_arr_close(out);
    if (rows > limit) {
        char next[64];

        snprintf(next, sizeof(next), "%lld.%s", (long long)last_val, last_id);
        jbuf_str(out, "next", next);
    } else {
        jbuf_null(out, "next");
    }
    jbuf_obj_close(out);
    return err;
}

/* {"value": count, ...} of one facet. */
static fh_err facet(store *st, const aq_filter *f, const char *key, const char *expr, bool top,
                    jbuf *out)
{
    qb q = {0};
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    add(&q, "SELECT ");
    add(&q, expr);
    add(&q, ", COUNT(*) FROM alerts a");
    where(&q, f);
    add(&q, " GROUP BY ");
    add(&q, expr);
    add(&q, top ? " ORDER BY COUNT(*) DESC, 1 LIMIT 20" : " ORDER BY 1");
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    jbuf_obj_open(out, key);
    while ((rc = db_step(s)) == DB_ROW) {
        const char *v = db_column_text(s, 0);

        jbuf_i64(out, v ? v : "(none)", db_column_int64(s, 1));
    }
    if (rc != DB_DONE)
        err = store_fail(st, "alert facets: SELECT");
    jbuf_obj_close(out);
    db_finalize(s);
    qb_free(&q);
    return err;
}

/* One number over the alerts the filter selects: "SELECT <expr> FROM alerts a WHERE ..." */
static fh_err scalar(store *st, const aq_filter *f, const char *expr, int64_t *n, const char *what)
{
    qb q = {0};
    db_stmt *s;
    fh_err err = FH_OK;

    add(&q, "SELECT ");
    add(&q, expr);
    add(&q, " FROM alerts a");
    where(&q, f);
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    if (db_step(s) == DB_ROW)
        *n = db_column_int64(s, 0);
    else
        err = store_fail(st, "%s", what);
    db_finalize(s);
    qb_free(&q);
    return err;
}

fh_err aq_count(store *st, const aq_filter *f, int64_t *n)
{
    return scalar(st, f, "COUNT(*)", n, "alert count: SELECT");
}

fh_err aq_facets(store *st, const aq_filter *f, jbuf *out)
{
    int64_t total = 0;
    fh_err err;

    if ((err = aq_count(st, f, &total)))
        return err;
    jbuf_obj_open(out, NULL);
    jbuf_i64(out, "total", total);
    if (!(err = facet(st, f, "severity", "a.level", false, out)) &&
        !(err = facet(st, f, "status", "a.status", false, out)) &&
        !(err = facet(st, f, "department", DEPT, false, out)))
        err = facet(st, f, "rule", "COALESCE(a.rule_name, a.rule_id)", true, out);
    jbuf_obj_close(out);
    return err;
}

fh_err aq_ids(store *st, const aq_filter *f, uint32_t max, aq_id_fn fn, void *ctx)
{
    qb q = {0};
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    add(&q, "SELECT a.id FROM alerts a");
    where(&q, f);
    add(&q, " ORDER BY a.id LIMIT ");
    num(&q, max);
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    while ((rc = db_step(s)) == DB_ROW)
        fn(ctx, db_column_text(s, 0));
    if (rc != DB_DONE)
        err = store_fail(st, "alert ids: SELECT");
    db_finalize(s);
    qb_free(&q);
    return err;
}

fh_err aq_groups(store *st, const aq_filter *f, const char *by, uint32_t limit, jbuf *out)
{
    static const struct {
        const char *name, *cols, *keys[2];
        int ncols;
    } dims[] = {{"rule", "a.rule_id, a.rule_name", {"rule_id", "rule_name"}, 2},
                {"source", "a.src_ip", {"src_ip", NULL}, 1},
                {"destination", "a.dest_ip", {"dest_ip", NULL}, 1}};
    int use[3] = {0}, ncols = 0;
    char cols[128] = "";
    const char *p = by;
    qb q = {0};
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    if (!by || !*by || limit < 1 || limit > 1000)
        return FH_ERR_ARG;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool known = false;

        for (int d = 0; d < 3; d++)
            if (strlen(dims[d].name) == n && !strncmp(p, dims[d].name, n) && !use[d]) {
                use[d] = 1;
                known = true;
            }
        if (!known)
            return FH_ERR_ARG;
        p += n + (p[n] == ',');
    }
    for (int d = 0; d < 3; d++)
        if (use[d]) {
            snprintf(cols + strlen(cols), sizeof(cols) - strlen(cols), "%s%s", ncols ? ", " : "",
                     dims[d].cols);
            ncols += dims[d].ncols;
        }
    add(&q, "SELECT ");
    add(&q, cols);
    add(&q, ", COUNT(*), SUM(a.count), MIN(a.first_seen), MAX(a.last_seen) FROM alerts a");
    where(&q, f);
    add(&q, " GROUP BY ");
    add(&q, cols);
    add(&q, " ORDER BY MAX(a.last_seen) DESC, COUNT(*) DESC LIMIT ");
    num(&q, limit);
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    jbuf_obj_open(out, NULL);
    jbuf_arr_open(out, "groups");
    while ((rc = db_step(s)) == DB_ROW) {
        int c = 0;

        jbuf_obj_open(out, NULL);
        for (int d = 0; d < 3; d++)
            for (int k = 0; use[d] && k < dims[d].ncols; k++, c++)
                alert_json_opt(out, dims[d].keys[k], db_column_text(s, c));
        jbuf_i64(out, "alerts", db_column_int64(s, c));
        jbuf_i64(out, "events", db_column_int64(s, c + 1));
        alert_json_time(out, "first_seen", db_column_int64(s, c + 2));
        alert_json_time(out, "last_seen", db_column_int64(s, c + 3));
        jbuf_obj_close(out);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "alert groups: SELECT");
    jbuf_arr_close(out);
    jbuf_obj_close(out);
    db_finalize(s);
    qb_free(&q);
    return err;
}

/* ---- the overview ------------------------------------------------------------------- */

#define DAY_MS               (24 * 3600 * 1000LL)
#define CST_MS               (8 * 3600 * 1000LL) /* Asia/Shanghai, no daylight saving */
#define OVERVIEW_MAX_DAYS    90
#define OVERVIEW_TRAFFIC_TOP 10
#define OVERVIEW_SILENT_MS   (5 * 60 * 1000LL) /* no stats event for 5 min: silent */

/* One row per (day, level) of alerts first seen in the ndays + 1 days from `since`. */
static fh_err overview_days(store *st, const aq_filter *f, int64_t since, uint32_t ndays, jbuf *out)
{
    int64_t counts[OVERVIEW_MAX_DAYS + 1][5] = {{0}};
    int64_t first = (since + CST_MS) / DAY_MS;
    qb q = {0};
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    add(&q, "SELECT (a.first_seen + 28800000) / 86400000, a.severity, COUNT(*) FROM alerts a");
    where(&q, f);
    add(&q, " AND a.first_seen >= ");
    num(&q, since);
    add(&q, " AND a.first_seen < ");
    num(&q, since + (int64_t)(ndays + 1) * DAY_MS);
    add(&q, " GROUP BY 1, 2");
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    while ((rc = db_step(s)) == DB_ROW) {
        int64_t d = db_column_int64(s, 0) - first, lv = db_column_int64(s, 1);

        if (d >= 0 && d <= (int64_t)ndays && lv >= 0 && lv < 5)
            counts[d][lv] += db_column_int64(s, 2);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "overview: SELECT days");
    db_finalize(s);
    qb_free(&q);
    jbuf_arr_open(out, "days");
    for (uint32_t d = 0; d <= ndays && !err; d++) {
        char day[16];
        cal_date cd = cal_from_days(first + d);

        snprintf(day, sizeof(day), "%04d-%02d-%02d", cd.y % 10000, cd.m % 100, cd.d % 100);
        jbuf_obj_open(out, NULL);
        jbuf_str(out, "day", day);
        for (int lv = 0; lv < 5; lv++)
            jbuf_i64(out, alert_level_name(lv), counts[d][lv]);
        jbuf_obj_close(out);
    }
    jbuf_arr_close(out);
    return err;
}

/* Traffic in [since, until) (traffic_hourly: ended flows, by event hour), top rows by bytes. */
static fh_err overview_traffic(store *st, int64_t since, int64_t until, jbuf *out)
{
    static const char *const by[][2] = {
        {"by_app", "app_proto"},
        {"by_category", "category"},
        {"by_country", "country"},
        {"by_segment", "segment"},
    };
    char sql[256];
    db_stmt *s;
    int rc;

    jbuf_obj_open(out, "traffic");
    if (!(s = db_prepare(st->db, "SELECT COALESCE(SUM(flows), 0), COALESCE(SUM(packets), 0), "
                                 "COALESCE(SUM(bytes), 0) FROM traffic_hourly WHERE hour >= ?1 "
                                 "AND hour < ?2")))
        return store_fail(st, "overview: prepare traffic");
    db_bind_int64(s, 1, since / (3600 * 1000LL));
    db_bind_int64(s, 2, until / (3600 * 1000LL));
    rc = db_step(s);
    if (rc == DB_ROW) {
        jbuf_i64(out, "flows", db_column_int64(s, 0));
        jbuf_i64(out, "packets", db_column_int64(s, 1));
        jbuf_i64(out, "bytes", db_column_int64(s, 2));
    }
    db_finalize(s);
    if (rc != DB_ROW)
        return store_fail(st, "overview: SELECT traffic");
    for (size_t i = 0; i < sizeof(by) / sizeof(by[0]); i++) {
        /* the column names are the constants above, never data */
        snprintf(sql, sizeof(sql),
                 "SELECT %s, SUM(flows), SUM(packets), SUM(bytes) FROM traffic_hourly WHERE hour "
                 ">= ?1 AND hour < ?2 GROUP BY %s ORDER BY 4 DESC, 1 LIMIT %d",
                 by[i][1], by[i][1], OVERVIEW_TRAFFIC_TOP);
        if (!(s = db_prepare(st->db, sql)))
            return store_fail(st, "overview: prepare traffic %s", by[i][0]);
        db_bind_int64(s, 1, since / (3600 * 1000LL));
        db_bind_int64(s, 2, until / (3600 * 1000LL));
        jbuf_arr_open(out, by[i][0]);
        while ((rc = db_step(s)) == DB_ROW) {
            jbuf_obj_open(out, NULL);
            jbuf_str(out, "key", db_column_text(s, 0) ? db_column_text(s, 0) : "");
            jbuf_i64(out, "flows", db_column_int64(s, 1));
            jbuf_i64(out, "packets", db_column_int64(s, 2));
            jbuf_i64(out, "bytes", db_column_int64(s, 3));
            jbuf_obj_close(out);
        }
        jbuf_arr_close(out);
        db_finalize(s);
        if (rc != DB_DONE)
            return store_fail(st, "overview: SELECT traffic %s", by[i][0]);
    }
    jbuf_obj_close(out);
    return FH_OK;
}

static void opt_i64(db_stmt *s, int c, const char *key, jbuf *out)
{
    if (!db_column_null(s, c))
        jbuf_i64(out, key, db_column_int64(s, c));
}

/*
 * The sensors: their stats events (sensor_stats, event time, not department data) and
 * their latest figures (sensor_status). Packets/s between the last two stats events
 * (event time); the drop ratio as the sensor computes it (docs/events.md); silent when
 * no stats event arrived for OVERVIEW_SILENT_MS or three of its intervals (wall clock).
 */
static fh_err overview_sensors(store *st, int64_t now, jbuf *out)
{
    db_stmt *s;
    fh_err err = FH_OK;
    int rc;

    s = db_prepare(st->db,
                   "SELECT g.sensor, g.segment, g.last_ts, g.n, t.received_at, t.ts, t.packets, "
                   "t.prev_ts, t.prev_packets, t.kernel_packets, t.kernel_drops, t.ifdrops, "
                   "t.kafka_failed, t.kafka_dropped, t.spool_pending, t.output_dropped, "
                   "t.segment FROM (SELECT sensor, MAX(segment) AS segment, MAX(last_ts) AS "
                   "last_ts, SUM(CASE WHEN hour >= ?1 THEN count ELSE 0 END) AS n FROM "
                   "sensor_stats GROUP BY sensor) g LEFT JOIN sensor_status t ON t.sensor = "
                   "g.sensor ORDER BY g.sensor");
    if (!s)
        return store_fail(st, "overview: prepare sensors");
    db_bind_int64(s, 1, (now - DAY_MS) / (3600 * 1000LL));
    jbuf_arr_open(out, "sensors");
    while ((rc = db_step(s)) == DB_ROW) {
        bool known = !db_column_null(s, 4);
        int64_t silent_after = OVERVIEW_SILENT_MS;

        jbuf_obj_open(out, NULL);
        jbuf_str(out, "sensor", db_column_text(s, 0));
        alert_json_opt(out, "segment",
                       db_column_text(s, 16) ? db_column_text(s, 16) : db_column_text(s, 1));
        alert_json_time(out, "last_seen", db_column_int64(s, 2));
        jbuf_i64(out, "stats_24h", db_column_int64(s, 3));
        if (known) {
            int64_t ts = db_column_int64(s, 5), pkts = db_column_int64(s, 6);

            alert_json_time(out, "received_at", db_column_int64(s, 4));
            jbuf_i64(out, "packets", pkts);
            if (!db_column_null(s, 7) && ts > db_column_int64(s, 7)) {
                int64_t dt = ts - db_column_int64(s, 7);

                jbuf_fixed(out, "packets_per_s",
                           (double)(pkts - db_column_int64(s, 8)) * 1000.0 / (double)dt, 1);
                jbuf_i64(out, "interval_s", dt / 1000);
                if (3 * dt > silent_after)
                    silent_after = 3 * dt;
            }
            if (!db_column_null(s, 9)) {
                int64_t kp = db_column_int64(s, 9), kd = db_column_int64(s, 10),
                        ifd = db_column_int64(s, 11);

                jbuf_i64(out, "kernel_drops", kd);
                jbuf_i64(out, "ifdrops", ifd);
                jbuf_fixed(out, "drop_ratio",
                           kp + ifd > 0 ? (double)(kd + ifd) / (double)(kp + ifd) : 0.0, 6);
            }
            opt_i64(s, 12, "kafka_failed", out);
            opt_i64(s, 13, "kafka_dropped", out);
            opt_i64(s, 14, "spool_pending", out);
            opt_i64(s, 15, "output_dropped", out);
            jbuf_bool(out, "silent", now - db_column_int64(s, 4) > silent_after);
        } else {
            /* stored before migration 0009: event time is all there is */
            jbuf_bool(out, "silent", now - db_column_int64(s, 2) > silent_after);
        }
        jbuf_i64(out, "silent_after_s", silent_after / 1000);
        jbuf_obj_close(out);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "overview: SELECT sensors");
    db_finalize(s);
    jbuf_arr_close(out);
    return err;
}

bool aq_overview_range(uint32_t days, int64_t end, int64_t now, int64_t *since, int64_t *until)
{
    if (days < 1 || days > OVERVIEW_MAX_DAYS)
        return false;
    /* from the start of the day (Asia/Shanghai) days-1 days before the last one */
    *since = (((end ? end - 1 : now) + CST_MS) / DAY_MS - (days - 1)) * DAY_MS - CST_MS;
    *until = *since + (int64_t)days * DAY_MS;
    return true;
}

fh_err aq_overview(store *st, const aq_filter *f, uint32_t days, int64_t end, int64_t now,
                   const char *extra_key, const char *extra_json, jbuf *out)
{
    int64_t since, until, open = 0, overdue = 0, latest = 0;
    qb q = {0};
    db_stmt *s;
    fh_err err;
    int rc;

    if (!aq_overview_range(days, end, now, &since, &until))
        return FH_ERR_ARG;
    jbuf_obj_open(out, NULL);
    alert_json_time(out, "since", since);
    alert_json_time(out, "until", until);
    alert_json_time(out, "now", now);
    if ((err = overview_days(st, f, since, days - 1, out)))
        return err;
    /* open and overdue now, whatever the days shown */
    add(&q,
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN a.deadline_at IS NOT NULL AND a.deadline_at < ");
    num(&q, now);
    add(&q, " THEN 1 ELSE 0 END), 0) FROM alerts a");
    where(&q, f);
    add(&q, " AND a.status IN ('new', 'acknowledged', 'rectifying', 'reopened')");
    if (!(s = prepare(st, &q))) {
        qb_free(&q);
        return FH_ERR_IO;
    }
    if ((rc = db_step(s)) == DB_ROW) {
        open = db_column_int64(s, 0);
        overdue = db_column_int64(s, 1);
    } else {
        err = store_fail(st, "overview: SELECT open");
    }
    db_finalize(s);
    qb_free(&q);
    if (err)
        return err;
    jbuf_i64(out, "open", open);
    jbuf_i64(out, "overdue", overdue);
    /* the newest alert of the filter: where to look when the days shown have none */
    if ((err = scalar(st, f, "COALESCE(MAX(a.first_seen), 0)", &latest, "overview: SELECT latest")))
        return err;
    if (latest)
        alert_json_time(out, "latest_alert", latest);
    if ((err = facet(st, f, "category", "a.category", true, out)))
        return err;
    if ((err = overview_traffic(st, since, until, out)))
        return err;
    if ((err = overview_sensors(st, now, out)))
        return err;
    if (extra_key && extra_json)
        jbuf_raw(out, extra_key, extra_json, strlen(extra_json));
    jbuf_obj_close(out);
    return FH_OK;
}
