/*
 * engine.c - see engine.h.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"

fh_err engine_placeholder(void *arg, const char *name, const char *const **values, size_t *n)
{
    engine *e = arg;
    const char *const *lv = NULL;
    const char **av = NULL;
    size_t ln = 0, an = 0;
    fh_err le = lists_get(&e->lists, name, &lv, &ln);
    fh_err ae = e->inv ? assets_placeholder(e->inv, name, &av, &an) : FH_ERR_NOTFOUND;

    if (le == FH_OK && ae == FH_OK)
        return FH_ERR_CONFIG;
    if (le == FH_OK) {
        *values = lv;
        *n = ln;
        return FH_OK;
    }
    if (ae == FH_OK) {
        *values = (const char *const *)av;
        *n = an;
        return FH_OK;
    }
    return FH_ERR_NOTFOUND;
}

void engine_default_lists_dir(const char *rules, char *out, size_t len)
{
    char tmp[4096];
    char *slash;

    snprintf(tmp, sizeof(tmp), "%s", rules);
    while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/')
        tmp[strlen(tmp) - 1] = '\0';
    slash = strrchr(tmp, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(tmp, sizeof(tmp), ".");
    snprintf(out, len, "%s/lists", tmp);
}

fh_err engine_load(engine *e, const engine_config *cfg, char *err, size_t errlen)
{
    char dir[4096];
    fh_err r;

    field_table_init(&e->ft);
    if (cfg->lists_dir)
        snprintf(dir, sizeof(dir), "%s", cfg->lists_dir);
    else
        engine_default_lists_dir(cfg->rules_path, dir, sizeof(dir));
    if ((r = lists_load(&e->lists, dir, err, errlen)) != FH_OK)
        return r;
    if (cfg->assets_file && (r = assets_load(&e->inv, cfg->assets_file, err, errlen)) != FH_OK)
        return r;
    if ((r = sigma_load_with(&e->rs, cfg->rules_path, &e->ft, engine_placeholder, e, err,
                             errlen)) != FH_OK)
        return r;
    if ((r = rule_index_build(&e->ix, e->rs.rules, e->rs.nrules)) != FH_OK ||
        !(e->cand = calloc(e->rs.nrules ? e->rs.nrules : 1, sizeof(*e->cand)))) {
        snprintf(err, errlen, "out of memory indexing the rules");
        return FH_ERR_NOMEM;
    }
    return FH_OK;
}

fh_err engine_open(engine **out, const engine_config *cfg, char *err, size_t errlen)
{
    engine *e = calloc(1, sizeof(*e));
    fh_err r;

    *out = NULL;
    if (!e)
        return FH_ERR_NOMEM;
    if ((r = engine_load(e, cfg, err, errlen)) != FH_OK)
        goto fail;
    for (uint32_t i = 0; i < e->rs.nerrors; i++) {
        char msg[1024];

        load_error_text(&e->rs.errors[i], msg, sizeof(msg));
        fh_error("%s", msg);
    }
    if (e->rs.nrules == 0) {
        snprintf(err, errlen, "no usable rule in '%s'", cfg->rules_path);
        r = FH_ERR_CONFIG;
        goto fail;
    }
    if ((r = engine_ready(e, err, errlen)) != FH_OK)
        goto fail;
    fh_info("%u rules loaded (%u refused), %u fields, %zu placeholder lists%s", e->rs.nrules,
            e->rs.nerrors, e->ft.n, e->lists.n, e->inv ? ", asset inventory loaded" : "");
    {
        rule_index_info ri;

        rule_index_get_info(e->ix, &ri);
        fh_info("rule index: %u fields looked up per event, %u values; %u of %u rules "
                "evaluated on every event",
                ri.fields, ri.keys, ri.unindexed, ri.rules);
    }
    *out = e;
    return FH_OK;
fail:
    engine_free(e);
    return r;
}

static const char *const TF_PATHS[TF_COUNT] = {
    [TF_FLOW_REASON] = "flow.reason",
    [TF_APP_PROTO] = "app_proto",
    [TF_CATEGORY] = "ndpi.category",
    [TF_DEST_COUNTRY] = "geo.dest.country",
    [TF_PKTS_TS] = "flow.pkts_toserver",
    [TF_PKTS_TC] = "flow.pkts_toclient",
    [TF_BYTES_TS] = "flow.bytes_toserver",
    [TF_BYTES_TC] = "flow.bytes_toclient",
    [TF_CAP_PACKETS] = "stats.capture.packets",
    [TF_KERNEL_PACKETS] = "stats.capture.kernel_packets",
    [TF_KERNEL_DROPS] = "stats.capture.kernel_drops",
    [TF_IFDROPS] = "stats.capture.ifdrops",
    [TF_KAFKA_FAILED] = "stats.kafka.failed",
    [TF_KAFKA_DROPPED] = "stats.kafka.dropped",
    [TF_SPOOL_PENDING] = "stats.kafka.spool.pending",
    [TF_OUTPUT_DROPPED] = "stats.output.dropped",
};

fh_err engine_ready(engine *e, char *err, size_t errlen)
{
    fh_err r;

    e->f_src_ip = field_intern(&e->ft, "src_ip");
    e->f_dest_ip = field_intern(&e->ft, "dest_ip");
    e->f_community_id = field_intern(&e->ft, "community_id");
    e->f_sensor_id = field_intern(&e->ft, "sensor.id");
    e->f_event_type = field_intern(&e->ft, "event_type");
    e->f_sensor_segment = field_intern(&e->ft, "sensor.segment");
    for (int i = 0; i < TF_COUNT; i++)
        e->tf[i] = field_intern(&e->ft, TF_PATHS[i]);
    if ((r = assets_bind(&e->af, &e->ft)) != FH_OK) {
        snprintf(err, errlen, "too many distinct fields for the asset enrichment");
        return r;
    }
    if ((r = event_decoder_new(&e->dec, &e->ft)) != FH_OK) {
        snprintf(err, errlen, "cannot create the event decoder");
        return r;
    }
    return FH_OK;
}

void engine_free(engine *e)
{
    if (!e)
        return;
    event_decoder_free(e->dec);
    rule_index_free(e->ix);
    free(e->cand);
    ruleset_free(&e->rs);
    assets_free(e->inv);
    lists_free(&e->lists);
    field_table_free(&e->ft);
    free(e);
}

fh_err engine_process(engine *e, const char *json, size_t len, engine_match_fn fn, void *arg,
                      event_view *view, char *err, size_t errlen)
{
    event_view ev;
    uint32_t n;

    e->stats.events++;
    if (event_decode(e->dec, json, len, &ev, err, errlen) != FH_OK) {
        e->stats.malformed++;
        if (fh_log_sample(e->stats.malformed))
            fh_warn("event %llu skipped (%llu malformed so far): %s",
                    (unsigned long long)e->stats.events, (unsigned long long)e->stats.malformed,
                    err);
        return FH_ERR_PARSE;
    }
    assets_enrich_seen(e->inv, &e->af, event_decoder_slots(e->dec), e->ft.n, ev.ts_ms, &e->seen);
    if (view)
        *view = ev;
    n = rule_index_candidates(e->ix, &ev, e->cand);
    e->stats.evaluated += n;
    for (uint32_t k = 0; k < n; k++) {
        const sigma_rule *r = &e->rs.rules[e->cand[k]];

        if (sigma_rule_match(r, &ev)) {
            e->stats.matches++;
            if (fn)
                fn(arg, r, &ev);
        }
    }
    return FH_OK;
}
