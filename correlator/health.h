/*
 * health.h - what a correlator says of itself: the rules it runs, the rules it
 * refused and its counters. A level-3 deployment that silently lacks some of
 * its rules fails its inspection, so a refused rule is said in three places:
 *
 *   the log      an error line per refused rule at start and after a reload,
 *                and the list again in the exit summary;
 *   the store    table correlator_health, one row per instance with the report
 *                as JSON: the console's health page and metrics read it;
 *   --metrics    a Prometheus text file (node_exporter's textfile collector
 *                format), replaced atomically: fenghuo_correlator_rules_refused
 *                and one fenghuo_correlator_rule_refused{file,line,rule} per rule.
 *
 * Strict mode (--strict, the packaged service's setting) goes further: the
 * correlator does not start while any rule is refused.
 *
 * The report (JSON):
 *   {"instance", "version", "strict", "started", "updated",
 *    "rules": {"loaded", "correlation", "refused", "files"},
 *    "refused": [{"file", "line", "rule", "reason"}, ...],
 *    "events": {"total", "malformed", "matches"}, "alert_updates",
 *    "clock": {"set_aside", "resyncs"}}
 */
#ifndef FH_HEALTH_H
#define FH_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/jbuf.h"
#include "stream.h"

/* More metrics from the caller (the Kafka consumer's lag per partition). */
typedef void (*health_extra_fn)(void *ctx, FILE *f);

typedef struct {
    char instance[256];
    const char *metrics_path;    /* NULL: no file */
    struct fh_metrics *listener; /* /metrics on a management address, NULL: none */
    health_extra_fn extra;
    void *extra_ctx;
    int64_t published_ms; /* last snapshot for the listener */
    bool strict;
    int64_t started_ms; /* wall clock */
    int64_t last_ms;    /* last write */
    jbuf json;
} health;

/*
 * instance NULL: the host name. listen ("ADDR:PORT", NULL: none) starts the /metrics
 * listener (fh_metrics.h) and logs its address; FH_ERR_NOMEM, FH_ERR_CONFIG.
 */
fh_err health_init(health *h, const char *instance, const char *metrics_path, const char *listen,
                   bool strict);
void health_free(health *h);

/*
 * At start and after a reload: when rules were refused, says how many of how
 * many and names them (engine_load logged each with its reason). Returns false
 * when strict and any rule is refused: the caller must not run.
 */
bool health_check_refused(const engine *e, bool strict);

/*
 * Writes the report to the store (st may be NULL) and the metrics file. With
 * force false it does nothing when the last write is less than 10 s old (wall
 * clock); the listener's snapshot is renewed at most once a second. Returns the first error
 * (already logged); a failed write never stops the correlator.
 */
fh_err health_write(health *h, const stream *p, store *st, bool force);

/* At exit: names the refused rules once more (the run went without them), then writes
 * the final report (health_write, forced). */
fh_err health_finish(health *h, const stream *p, store *st);

#endif
