/*
 * engine.h - the correlator's processing core, independent of where events
 * come from (NDJSON file, stdin, Kafka) and where alerts go.
 *
 *   engine_open():    rules (+ lists, + asset inventory) -> field table -> decoder
 *   engine_process(): one JSON event -> decode -> enrich -> every rule of the
 *                     event's type -> callback per matching rule
 *
 * Rules that fail to compile are reported (file:line: reason) and left out; the
 * engine runs with the others. Malformed events are counted, a sample is
 * logged (the 1st, 10th, 100th, ... with the reason), and processing goes on.
 */
#ifndef FH_ENGINE_H
#define FH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "assets.h"
#include "event.h"
#include "event_json.h"
#include "lists.h"
#include "rule_index.h"
#include "sigma.h"

typedef struct {
    const char *rules_path;  /* file or directory */
    const char *lists_dir;   /* NULL: "lists" beside the rule folder */
    const char *assets_file; /* NULL: no inventory */
} engine_config;

typedef struct {
    uint64_t events, malformed, matches;
    uint64_t evaluated; /* rules evaluated: the candidates the rule index let through */
} engine_stats;

/* Fields the stream reads for the traffic sums and sensor status (traffic.h): engine.tf[]. */
enum {
    TF_FLOW_REASON,
    TF_APP_PROTO,
    TF_CATEGORY,
    TF_DEST_COUNTRY,
    TF_PKTS_TS,
    TF_PKTS_TC,
    TF_BYTES_TS,
    TF_BYTES_TC,
    TF_CAP_PACKETS, /* from here: stats events */
    TF_KERNEL_PACKETS,
    TF_KERNEL_DROPS,
    TF_IFDROPS,
    TF_KAFKA_FAILED,
    TF_KAFKA_DROPPED,
    TF_SPOOL_PENDING,
    TF_OUTPUT_DROPPED,
    TF_COUNT
};

typedef struct {
    field_table ft;
    ruleset rs;
    list_store lists;
    assets *inv;
    assets_fields af;
    event_decoder *dec;
    rule_index *ix; /* which rules can match an event (rule_index.h) */
    uint32_t *cand; /* scratch: the current event's candidates */
    engine_stats stats;
    assets_seen seen; /* what enrichment found for the current event's src and dest */
    /* Always decoded, for alerts: the group key and the evidence. */
    field_id f_src_ip, f_dest_ip, f_community_id, f_sensor_id, f_event_type, f_sensor_segment;
    field_id tf[TF_COUNT];
} engine;

/*
 * Loads the placeholder lists, the inventory and the rules into e (zeroed, or
 * fresh from calloc). Refused rules are in e->rs.errors, not an error here;
 * fails only when a list, the inventory or the rule path cannot be read.
 */
fh_err engine_load(engine *e, const engine_config *cfg, char *err, size_t errlen);

/* Loads everything; returns an error only if nothing usable can be loaded. */
fh_err engine_open(engine **out, const engine_config *cfg, char *err, size_t errlen);
/* After engine_load: the fields the stream reads and the event decoder (engine_open does it). */
fh_err engine_ready(engine *e, char *err, size_t errlen);
void engine_free(engine *e);

typedef void (*engine_match_fn)(void *arg, const sigma_rule *r, const event_view *ev);

/*
 * Processes one event. Returns FH_OK (view, when not NULL, set to the decoded
 * event before fn is called for each matching rule, in rule order) or
 * FH_ERR_PARSE for a malformed event (counted, reason in err). The view's data
 * stays valid until the next call.
 */
fh_err engine_process(engine *e, const char *json, size_t len, engine_match_fn fn, void *arg,
                      event_view *view, char *err, size_t errlen);

/* Resolves |expand placeholders: rules/lists files, then the inventory; both = error. */
fh_err engine_placeholder(void *arg, const char *name, const char *const **values, size_t *n);

/* "lists" beside the rule folder: rules/level3 -> rules/lists. */
void engine_default_lists_dir(const char *rules, char *out, size_t len);

#endif
