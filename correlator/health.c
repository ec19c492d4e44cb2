/*
 * health.c - see health.h.
 */
#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "../common/fh_metrics.h"
#include "archive.h"
#include "correlation.h"

#define HEALTH_EVERY_MS 10000

#ifndef FH_VERSION
#define FH_VERSION "0.0.0"
#endif

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fh_err health_init(health *h, const char *instance, const char *metrics_path, const char *listen,
                   bool strict)
{
    memset(h, 0, sizeof(*h));
    if (instance)
        snprintf(h->instance, sizeof(h->instance), "%s", instance);
    else if (gethostname(h->instance, sizeof(h->instance) - 1) != 0 || !h->instance[0])
        snprintf(h->instance, sizeof(h->instance), "fenghuo-correlator");
    h->metrics_path = metrics_path;
    h->strict = strict;
    h->started_ms = wall_ms();
    if (!jbuf_init(&h->json, 4096, 4u << 20)) {
        health_free(h);
        return FH_ERR_NOMEM;
    }
    if (listen) {
        char err[512];

        if (fh_metrics_start(&h->listener, listen, err, sizeof(err)) != 0) {
            fh_error("%s", err);
            health_free(h);
            return FH_ERR_CONFIG;
        }
        fh_info("metrics on http://%s/metrics (port %u)", listen, fh_metrics_port(h->listener));
    }
    return FH_OK;
}

void health_free(health *h)
{
    fh_metrics_stop(h->listener);
    h->listener = NULL;
    jbuf_free(&h->json);
}

static const char *rule_name(const load_error *le)
{
    return le->rule ? le->rule : "(untitled)";
}

/* The refused rules as one line "R (FILE:LINE), ..." in buf. */
static void health_refused_list(const engine *e, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (uint32_t i = 0; i < e->rs.nerrors && off < len; i++) {
        const load_error *le = &e->rs.errors[i];
        int n = snprintf(buf + off, len - off, "%s%s (%s:%u)", i ? ", " : "", rule_name(le),
                         le->file, le->line);

        if (n < 0)
            break;
        off += (size_t)n;
    }
}

bool health_check_refused(const engine *e, bool strict)
{
    char list[2048];

    if (!e->rs.nerrors)
        return true;
    health_refused_list(e, list, sizeof(list));
    if (strict) {
        fh_error("strict mode: %u of %u rules refused, not starting: %s", e->rs.nerrors,
                 e->rs.nerrors + e->rs.nrules + e->rs.ncorrs, list);
        return false;
    }
    fh_error("%u of %u rules refused, running without them (--strict refuses to start): %s",
             e->rs.nerrors, e->rs.nerrors + e->rs.nrules + e->rs.ncorrs, list);
    return true;
}

static void build_report(health *h, const stream *p, int64_t now)
{
    const engine *e = p->eng;
    jbuf *b = &h->json;
    corr_stats cs;

    corr_get_stats(p->corr, &cs);
    jbuf_reset(b);
    jbuf_obj_open(b, NULL);
    jbuf_str(b, "instance", h->instance);
    jbuf_str(b, "version", FH_VERSION);
    jbuf_bool(b, "strict", h->strict);
    jbuf_i64(b, "started", h->started_ms);
    jbuf_i64(b, "updated", now);
    jbuf_obj_open(b, "rules");
    jbuf_u64(b, "loaded", e->rs.nrules + e->rs.ncorrs);
    jbuf_u64(b, "correlation", e->rs.ncorrs);
    jbuf_u64(b, "refused", e->rs.nerrors);
    jbuf_u64(b, "files", e->rs.files);
    jbuf_obj_close(b);
    jbuf_arr_open(b, "refused");
    for (uint32_t i = 0; i < e->rs.nerrors; i++) {
        const load_error *le = &e->rs.errors[i];

        jbuf_obj_open(b, NULL);
        jbuf_str(b, "file", le->file);
        jbuf_u64(b, "line", le->line);
        if (le->rule)
            jbuf_str(b, "rule", le->rule);
        else
            jbuf_null(b, "rule");
        jbuf_str(b, "reason", le->reason);
        jbuf_obj_close(b);
    }
    jbuf_arr_close(b);
    jbuf_obj_open(b, "events");
    jbuf_u64(b, "total", e->stats.events);
    jbuf_u64(b, "malformed", e->stats.malformed);
    jbuf_u64(b, "matches", e->stats.matches);
    jbuf_obj_close(b);
    jbuf_u64(b, "alert_updates", p->alerts_written);
    jbuf_obj_open(b, "clock");
    jbuf_u64(b, "set_aside", cs.clock_ahead);
    jbuf_u64(b, "resyncs", cs.clock_resyncs);
    jbuf_obj_close(b);
    jbuf_obj_close(b);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
    char esc[8192]; /* a file path or a rule title, escaped */

    fh_metrics_label(esc, sizeof(esc), s);
    fputs(esc, f);
}

static void put_metrics(FILE *f, const health *h, const stream *p)
{
    const engine *e = p->eng;
    corr_stats cs;

    corr_get_stats(p->corr, &cs);
    fh_metrics_one(f, "fenghuo_correlator_rules_loaded", "gauge", "Rules compiled and running.",
                   e->rs.nrules + e->rs.ncorrs);
    fh_metrics_one(f, "fenghuo_correlator_rules_refused", "gauge",
                   "Rules refused at load: the running set lacks them.", e->rs.nerrors);
    fputs("# HELP fenghuo_correlator_rule_refused A refused rule (file, line, title).\n"
          "# TYPE fenghuo_correlator_rule_refused gauge\n",
          f);
    for (uint32_t i = 0; i < e->rs.nerrors; i++) {
        const load_error *le = &e->rs.errors[i];

        fputs("fenghuo_correlator_rule_refused{file=\"", f);
        label(f, le->file);
        fprintf(f, "\",line=\"%u\",rule=\"", le->line);
        label(f, rule_name(le));
        fputs("\"} 1\n", f);
    }
    fh_metrics_one(f, "fenghuo_correlator_strict", "gauge", "1 when refused rules stop the start.",
                   h->strict);
    fh_metrics_one(f, "fenghuo_correlator_events_total", "counter", "Events read.",
                   e->stats.events);
    fh_metrics_one(f, "fenghuo_correlator_events_malformed_total", "counter",
                   "Events skipped as malformed.", e->stats.malformed);
    fh_metrics_one(f, "fenghuo_correlator_rule_matches_total", "counter", "Detection rule matches.",
                   e->stats.matches);
    fh_metrics_one(f, "fenghuo_correlator_alert_updates_total", "counter",
                   "Alerts opened or updated.", p->alerts_written);
    fh_metrics_one(f, "fenghuo_correlator_clock_set_aside_total", "counter",
                   "Events set aside from correlation: too far ahead of event time.",
                   cs.clock_ahead);
    fh_metrics_one(f, "fenghuo_correlator_clock_resyncs_total", "counter",
                   "Times event time followed a run of far-off events.", cs.clock_resyncs);
    fputs("# HELP fenghuo_correlator_alerts_total Alerts opened or updated, by severity.\n"
          "# TYPE fenghuo_correlator_alerts_total counter\n",
          f);
    for (int l = 0; l < 5; l++)
        fprintf(f, "fenghuo_correlator_alerts_total{severity=\"%s\"} %llu\n", alert_level_name(l),
                (unsigned long long)p->alerts_by_level[l]);
    fh_metrics_one(f, "fenghuo_correlator_alerts_suppressed_total", "counter",
                   "Rule hits a suppression or a switched-off rule kept from alerting.",
                   p->suppressed);
    fh_metrics_one(f, "fenghuo_correlator_reloads_total", "counter",
                   "Rule set reloads that took effect.", p->reloads);
    fprintf(f,
            "# HELP fenghuo_correlator_last_reload_timestamp_seconds When the running rule set "
            "was loaded.\n# TYPE fenghuo_correlator_last_reload_timestamp_seconds gauge\n"
            "fenghuo_correlator_last_reload_timestamp_seconds %.3f\n",
            (double)(p->loaded_ms ? p->loaded_ms : h->started_ms) / 1000.0);
    fputs("# HELP fenghuo_correlator_event_processing_seconds Time to process one event "
          "(decode, rules, correlation, alert book).\n"
          "# TYPE fenghuo_correlator_event_processing_seconds histogram\n",
          f);
    {
        uint64_t cum = 0;

        for (int b = 0; b < STREAM_HIST_BUCKETS; b++) {
            cum += p->hist[b];
            fprintf(f, "fenghuo_correlator_event_processing_seconds_bucket{le=\"%g\"} %llu\n",
                    stream_hist_bounds[b], (unsigned long long)cum);
        }
        cum += p->hist[STREAM_HIST_BUCKETS];
        fprintf(f,
                "fenghuo_correlator_event_processing_seconds_bucket{le=\"+Inf\"} %llu\n"
                "fenghuo_correlator_event_processing_seconds_sum %.9f\n"
                "fenghuo_correlator_event_processing_seconds_count %llu\n",
                (unsigned long long)cum, (double)p->hist_sum_ns / 1e9, (unsigned long long)cum);
    }
    if (p->archive) {
        archive_stats as;

        archive_get_stats(p->archive, &as);
        fh_metrics_one(f, "fenghuo_correlator_archive_events_total", "counter", "Events archived.",
                       as.events);
        fh_metrics_one(f, "fenghuo_correlator_archive_disk_bytes", "gauge",
                       "Compressed bytes of this instance's archive (at the last roll).",
                       as.disk_bytes);
        fh_metrics_one(f, "fenghuo_correlator_archive_evicted_segments_total", "counter",
                       "Archive segments deleted to stay within the size and age bounds.",
                       as.evicted_segments);
        fh_metrics_one(f, "fenghuo_correlator_archive_evicted_events_total", "counter",
                       "Events in the evicted archive segments.", as.evicted_events);
        fh_metrics_one(f, "fenghuo_correlator_archive_errors_total", "counter",
                       "Archive writes that failed (the events are still processed).", as.errors);
    }
    if (h->extra)
        h->extra(h->extra_ctx, f);
}

/* Renews the listener's snapshot. */
static void publish(health *h, const stream *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return;
    put_metrics(f, h, p);
    if (fclose(f) == 0)
        fh_metrics_publish(h->listener, buf, len);
    free(buf);
}

/* Replaces the metrics file atomically (a reader sees the old or the new one). */
static fh_err write_metrics(const health *h, const stream *p)
{
    char tmp[4096];
    FILE *f;
    int saved;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", h->metrics_path) >= (int)sizeof(tmp)) {
        fh_error("metrics: path too long: %s", h->metrics_path);
        return FH_ERR_ARG;
    }
    if (!(f = fopen(tmp, "w"))) {
        fh_error("metrics: open(\"%s\") failed: %s", tmp, strerror(errno));
        return FH_ERR_IO;
    }
    put_metrics(f, h, p);
    if (ferror(f) | (fclose(f) != 0)) {
        saved = errno;
        unlink(tmp);
        fh_error("metrics: write(\"%s\") failed: %s", tmp, strerror(saved));
        return FH_ERR_IO;
    }
    if (rename(tmp, h->metrics_path) != 0) {
        saved = errno;
        unlink(tmp);
        fh_error("metrics: rename(\"%s\") failed: %s", h->metrics_path, strerror(saved));
        return FH_ERR_IO;
    }
    return FH_OK;
}

fh_err health_write(health *h, const stream *p, store *st, bool force)
{
    int64_t now = wall_ms();
    fh_err r = FH_OK, e;

    if (h->listener && (force || now - h->published_ms >= 1000)) {
        h->published_ms = now;
        publish(h, p);
    }
    if (!force && now - h->last_ms < HEALTH_EVERY_MS)
        return FH_OK;
    h->last_ms = now;
    if (st) {
        store_health sh = {.instance = h->instance,
                           .started_ms = h->started_ms,
                           .updated_ms = now,
                           .strict = h->strict,
                           .rules_loaded = p->eng->rs.nrules + p->eng->rs.ncorrs,
                           .rules_refused = p->eng->rs.nerrors};

        build_report(h, p, now);
        if (jbuf_failed(&h->json)) {
            fh_error("health: the report does not fit in its buffer");
            r = FH_ERR_NOMEM;
        } else {
            sh.report = jbuf_cstr(&h->json);
            if ((e = store_health_put(st, &sh)) != FH_OK) {
                fh_error("health: %s", store_errmsg(st));
                r = e;
            }
        }
    }
    if (h->metrics_path && (e = write_metrics(h, p)) != FH_OK && !r)
        r = e;
    return r;
}

fh_err health_finish(health *h, const stream *p, store *st)
{
    if (p->eng->rs.nerrors) {
        char refused[2048];

        health_refused_list(p->eng, refused, sizeof(refused));
        fh_error("ran without %u refused rules: %s", p->eng->rs.nerrors, refused);
    }
    return health_write(h, p, st, true);
}
