/*
 * test_correlation.c - Sigma correlation rules: compiling each type and each
 * refusal (message and line), resolving references, and the engine on
 * hand-made event sequences with exact window boundaries (event time), group
 * separation, distinct counting, sums, temporal order, chaining (L3-10: brute
 * force followed by a long session), late events, at-close conditions (lt),
 * eviction, determinism and the memory a group costs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <yaml.h>

#include "../../../correlator/correlation.h"

/* ---- helpers ------------------------------------------------------------------------ */

static field_table ft;

/* Compiles the single document in `y`; returns the fh_err and fills err/line. */
static fh_err compile_doc(const char *y, struct corr_rule *r, char *err, size_t errlen,
                          uint32_t *line)
{
    yaml_parser_t p;
    yaml_document_t doc;
    fh_err rc;

    memset(r, 0, sizeof(*r));
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)y, strlen(y));
    assert_true(yaml_parser_load(&p, &doc));
    rc = corr_compile(&doc, yaml_document_get_root_node(&doc), &ft, r, err, errlen, line);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

/* A ruleset of named detection rules (no detection: the engine only needs indices). */
static void rs_init(ruleset *rs, const char *const *names)
{
    uint32_t n = 0;

    memset(rs, 0, sizeof(*rs));
    while (names[n])
        n++;
    rs->rules = calloc(n, sizeof(*rs->rules));
    for (uint32_t i = 0; i < n; i++) {
        rs->rules[i].name = strdup(names[i]);
        rs->rules[i].title = strdup(names[i]);
    }
    rs->nrules = n;
}

static void rs_add_corr(ruleset *rs, const char *y)
{
    char err[512];
    uint32_t line;
    struct corr_rule r;

    if (compile_doc(y, &r, err, sizeof(err), &line) != FH_OK)
        fail_msg("compile: %u: %s", line, err);
    r.file = strdup("test.yml");
    r.line = 1;
    rs->corrs = realloc(rs->corrs, (rs->ncorrs + 1) * sizeof(*rs->corrs));
    rs->corrs[rs->ncorrs++] = r;
}

static void rs_done(ruleset *rs)
{
    for (uint32_t i = 0; i < rs->ncorrs; i++)
        corr_rule_free(&rs->corrs[i]);
    free(rs->corrs);
    rs->corrs = NULL;
    rs->ncorrs = 0;
    ruleset_free(rs);
}

/* Hand-made events: one sv slot per interned field. */
typedef struct {
    sv vals[FIELD_MAX];
    event_view ev;
} tev;

static void ev_clear(tev *t)
{
    memset(t, 0, sizeof(*t));
    t->ev.vals = t->vals;
    t->ev.nvals = ft.n;
}

static void ev_str(tev *t, const char *field, const char *v)
{
    field_id id = field_lookup(&ft, field);

    assert_int_not_equal(id, FIELD_NONE);
    t->vals[id].type = SV_STR;
    t->vals[id].s = v;
    t->vals[id].len = strlen(v);
}

static void ev_num(tev *t, const char *field, int64_t v)
{
    field_id id = field_lookup(&ft, field);

    assert_int_not_equal(id, FIELD_NONE);
    t->vals[id].type = SV_NUM;
    t->vals[id].is_int = true;
    t->vals[id].i = v;
    t->vals[id].num = (double)v;
}

/* src_ip/dest_ip event (the most common shape here). */
static const event_view *ev_pair(tev *t, const char *src, const char *dst, int64_t ts)
{
    ev_clear(t);
    ev_str(t, "src_ip", src);
    ev_str(t, "dest_ip", dst);
    t->ev.ts_ms = ts;
    return &t->ev;
}

/* Emits, recorded as text lines ("rule|key|start|first|last|value|ev") for comparison. */
typedef struct {
    char lines[64][256];
    const event_view *evs[64];
    int n;
} rec;

static void on_emit(void *arg, const struct corr_rule *r, const char *key, int64_t wstart,
                    int64_t first, int64_t last, uint64_t v, const event_view *ev)
{
    rec *x = arg;

    assert_true(x->n < 64);
    x->evs[x->n] = ev;
    snprintf(x->lines[x->n++], sizeof(x->lines[0]), "%s|%s|%lld|%lld|%lld|%llu|%s",
             r->name ? r->name : r->title, key, (long long)wstart, (long long)first,
             (long long)last, (unsigned long long)v, ev ? "ev" : "-");
}

static int setup(void **state)
{
    (void)state;
    field_table_init(&ft);
    /* fixed ids for the fields events below use, whatever the rules intern */
    field_intern(&ft, "src_ip");
    field_intern(&ft, "dest_ip");
    field_intern(&ft, "dest_port");
    field_intern(&ft, "flow.bytes_toserver");
    field_intern(&ft, "sensor.id");
    field_intern(&ft, "user");
    field_intern(&ft, "client");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    field_table_free(&ft);
    return 0;
}

/* ---- compile ------------------------------------------------------------------------- */

static void test_compile_types(void **state)
{
    char err[512];
    uint32_t line;
    struct corr_rule r;

    (void)state;
    assert_int_equal(compile_doc("title: Brute force\n"
                                 "name: bf\n"
                                 "id: 70b18f73-6383-4f6b-9f9d-fa12b77b13a7\n"
                                 "correlation:\n"
                                 "  type: event_count\n"
                                 "  rules: [short_login]\n"
                                 "  group-by: [src_ip, dest_ip]\n"
                                 "  timespan: 5m\n"
                                 "  condition: {gte: 10}\n"
                                 "level: high\n"
                                 "tags: [attack.t1110]\n",
                                 &r, err, sizeof(err), &line),
                     FH_OK);
    assert_int_equal(r.type, CORR_EVENT_COUNT);
    assert_string_equal(r.name, "bf");
    assert_int_equal(r.nrefs, 1);
    assert_string_equal(r.refs[0].name, "short_login");
    assert_int_equal(r.refs[0].line, 6);
    assert_int_equal(r.ngroup_by, 2);
    assert_int_equal(r.group_by_fid[1], field_lookup(&ft, "dest_ip"));
    assert_int_equal(r.timespan_ms, 300000);
    assert_int_equal(r.nconds, 1);
    assert_int_equal(r.conds[0].op, CORR_GTE);
    assert_false(r.at_close);
    assert_int_equal(r.lvl, LEVEL_HIGH);
    assert_int_equal(r.ntags, 1);
    assert_false(r.generate);
    assert_int_equal(r.corr_line, 5);
    corr_rule_free(&r);

    assert_int_equal(compile_doc("title: Scan\n"
                                 "correlation:\n"
                                 "  type: value_count\n"
                                 "  rules: [probe]\n"
                                 "  group-by: [src_ip]\n"
                                 "  timespan: 60s\n"
                                 "  condition:\n"
                                 "    field: dest_port\n"
                                 "    gt: 99\n"
                                 "    lte: 5000\n",
                                 &r, err, sizeof(err), &line),
                     FH_OK);
    assert_int_equal(r.type, CORR_VALUE_COUNT);
    assert_string_equal(r.value_field, "dest_port");
    assert_int_equal(r.value_fid, field_lookup(&ft, "dest_port"));
    assert_int_equal(r.nconds, 2);
    assert_true(r.at_close); /* an upper bound: decided when the window closes */
    assert_int_equal(r.timespan_ms, 60000);
    corr_rule_free(&r);

    assert_int_equal(compile_doc("title: Exfil\n"
                                 "correlation:\n"
                                 "  type: value_sum\n"
                                 "  rules: [out]\n"
                                 "  group-by: [src_ip]\n"
                                 "  timespan: 1d\n"
                                 "  condition: {field: flow.bytes_toserver, gt: 104857600}\n",
                                 &r, err, sizeof(err), &line),
                     FH_OK);
    assert_int_equal(r.type, CORR_VALUE_SUM);
    assert_int_equal(r.timespan_ms, 86400000);
    corr_rule_free(&r);

    assert_int_equal(compile_doc("title: Error then connection\n"
                                 "generate: true\n"
                                 "correlation:\n"
                                 "  type: temporal\n"
                                 "  rules: [internal_error, new_network_connection]\n"
                                 "  group-by: [internal_ip, remote_ip]\n"
                                 "  timespan: 10s\n"
                                 "  aliases:\n"
                                 "    internal_ip:\n"
                                 "      internal_error: dest_ip\n"
                                 "      new_network_connection: src_ip\n"
                                 "    remote_ip:\n"
                                 "      internal_error: src_ip\n"
                                 "      new_network_connection: dest_ip\n",
                                 &r, err, sizeof(err), &line),
                     FH_OK);
    assert_int_equal(r.type, CORR_TEMPORAL);
    assert_true(r.generate);
    assert_int_equal(r.naliases, 4);
    assert_int_equal(r.group_by_fid[0], FIELD_NONE); /* an alias, not a field */
    assert_int_equal(r.nconds, 1);                   /* default: all rules */
    assert_int_equal(r.conds[0].value, 2);
    corr_rule_free(&r);

    assert_int_equal(compile_doc("title: Then\n"
                                 "correlation:\n"
                                 "  type: temporal_ordered\n"
                                 "  rules: [a, b, c]\n"
                                 "  group-by: [user]\n"
                                 "  timespan: 1h\n"
                                 "  generate: false\n",
                                 &r, err, sizeof(err), &line),
                     FH_OK);
    assert_int_equal(r.type, CORR_TEMPORAL_ORDERED);
    assert_int_equal(r.timespan_ms, 3600000);
    assert_int_equal(r.nrefs, 3);
    corr_rule_free(&r);
}

static void test_compile_errors(void **state)
{
    static const struct {
        const char *yaml;
        uint32_t line;
        const char *msg;
    } cases[] = {
        {"title: x\ncorrelation:\n  type: value_avg\n  rules: [a]\n  timespan: 5m\n", 3,
         "correlation type 'value_avg' is not supported (event_count, value_count, value_sum, "
         "temporal, temporal_ordered)"},
        {"title: x\ncorrelation:\n  rules: [a]\n", 3, "correlation: missing 'type'"},
        {"title: x\ncorrelation:\n  type: event_count\n  timespan: 5m\n", 3,
         "correlation: missing 'rules'"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: a\n", 4,
         "'rules' must be a list of rule names or ids"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: []\n", 4, "'rules' is empty"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules:\n    - a\n    - a\n", 6,
         "rule 'a' is listed twice"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5w\n"
         "  condition: {gte: 1}\n",
         5, "invalid timespan unit 'w' in '5w' (s, m, h or d)"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 1.5h\n", 5,
         "invalid timespan '1.5h' (a number and one of s, m, h, d: 30s, 5m, 1h, 1d)"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 0s\n", 5,
         "timespan '0s' must be longer than zero"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [src_ip]\n", 3,
         "correlation: missing 'timespan'"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n", 3,
         "correlation: missing 'condition' (event_count needs one, e.g. {gte: 10})"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition:\n    above: 3\n",
         7, "unknown condition 'above' (gt, gte, lt, lte, eq, neq)"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition: {gte: ten}\n",
         6, "condition 'gte': 'ten' is not a number"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition: {gte: 2.5}\n",
         6, "condition 'gte' counts: '2.5' must be a whole number >= 0"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition: {field: dest_port, gte: 2}\n",
         6, "'field' in the condition is only for value_count and value_sum"},
        {"title: x\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition:\n    gte: 2\n",
         7, "value_count needs 'field' in the condition"},
        {"title: x\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition:\n    field: [a, b]\n    gte: 2\n",
         7, "condition 'field' must be one field name (a list is not supported)"},
        {"title: x\ncorrelation:\n  type: value_sum\n  rules: [a]\n  timespan: 5m\n"
         "  condition:\n    field: bytes\n",
         7, "condition has no comparison (gt, gte, lt, lte, eq, neq)"},
        {"title: x\ncorrelation:\n  type: temporal\n  rules: [a]\n  timespan: 5m\n", 4,
         "temporal correlation needs at least two rules"},
        {"title: x\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  timespan: 5m\n"
         "  condition: {lt: 2}\n",
         6,
         "temporal condition 'lt' is not supported (gt or gte: how many of the rules must "
         "match)"},
        {"title: x\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  timespan: 5m\n"
         "  condition: {gte: 3}\n",
         6, "temporal condition asks for more rules than the 2 listed"},
        {"title: x\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b]\n  timespan: 5m\n"
         "  condition: {gte: 2}\n",
         6, "temporal_ordered takes no 'condition' (every rule must match, in order)"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  window: 5m\n",
         6,
         "unknown key 'window' in 'correlation' (type, rules, group-by, timespan, condition, "
         "aliases, generate)"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
         "  condition: {gte: 1, gte: 2}\n",
         6, "condition 'gte' is given twice"},
        {"title: x\nlogsource: {product: fenghuo}\ncorrelation: {type: event_count}\n", 2,
         "a correlation rule has no 'logsource' (put the detection rule in its own document "
         "and reference it in 'rules')"},
        {"title: x\nseverity: high\ncorrelation: {type: event_count}\n", 2,
         "unknown key 'severity' in a correlation rule"},
        {"id: 1\ncorrelation:\n  type: event_count\n", 1, "missing 'title'"},
        {"title: x\nlevel: urgent\ncorrelation:\n  type: event_count\n", 2,
         "unknown level 'urgent'"},
        {"title: x\ngenerate: yes please\ncorrelation:\n  type: event_count\n  rules: [a]\n"
         "  timespan: 5m\n  condition: {gte: 1}\n",
         2, "'generate' must be true or false"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [ip]\n"
         "  timespan: 5m\n  condition: {gte: 1}\n  aliases:\n    ip: {a: src_ip}\n"
         "    other: {a: dest_ip}\n",
         10, "alias 'other' is not used in 'group-by'"},
        {"title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n"
         "  group-by: [src_ip, src_ip]\n",
         5, "group-by field 'src_ip' is listed twice"},
        {"title: x\ncorrelation: [1]\n", 2, "'correlation' must be a map"},
    };
    char err[512];
    uint32_t line;
    struct corr_rule r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fh_err rc = compile_doc(cases[i].yaml, &r, err, sizeof(err), &line);

        if (rc == FH_OK || strcmp(err, cases[i].msg) || line != cases[i].line)
            fail_msg("case %zu: rc %d, got %u: '%s', want %u: '%s'", i, rc, line, err,
                     cases[i].line, cases[i].msg);
        corr_rule_free(&r);
    }
}

/* ---- resolve ------------------------------------------------------------------------- */

static void test_resolve(void **state)
{
    static const char *const names[] = {"short_login", "long_login", "dup", "dup", NULL};
    ruleset rs;

    (void)state;
    rs_init(&rs, names);
    rs.rules[1].id = strdup("12611cfa-428b-4b68-8068-efbaedec88e9");
    rs_add_corr(&rs, "title: BF\nname: bf\ncorrelation:\n  type: event_count\n"
                     "  rules: [short_login]\n  group-by: [src_ip, dest_ip]\n  timespan: 5m\n"
                     "  condition: {gte: 10}\n");
    /* by id, and chained over bf */
    rs_add_corr(&rs, "title: BF then long\nname: bf_long\ncorrelation:\n"
                     "  type: temporal_ordered\n"
                     "  rules: [bf, 12611cfa-428b-4b68-8068-efbaedec88e9]\n"
                     "  group-by: [src_ip, dest_ip]\n  timespan: 10m\n");
    rs_add_corr(&rs, "title: Unknown\ncorrelation:\n  type: event_count\n"
                     "  rules: [nope]\n  timespan: 5m\n  condition: {gte: 1}\n");
    rs_add_corr(&rs, "title: Ambiguous\ncorrelation:\n  type: event_count\n"
                     "  rules: [dup]\n  timespan: 5m\n  condition: {gte: 1}\n");
    rs_add_corr(&rs, "title: Cycle A\nname: ca\ncorrelation:\n  type: temporal\n"
                     "  rules: [cb, short_login]\n  timespan: 5m\n");
    rs_add_corr(&rs, "title: Cycle B\nname: cb\ncorrelation:\n  type: temporal\n"
                     "  rules: [ca, long_login]\n  timespan: 5m\n");
    rs_add_corr(&rs, "title: Over cycle\ncorrelation:\n  type: event_count\n"
                     "  rules: [ca]\n  timespan: 5m\n  condition: {gte: 1}\n");
    rs_add_corr(&rs, "title: Bad chain field\ncorrelation:\n  type: event_count\n"
                     "  rules: [bf]\n  group-by: [user]\n  timespan: 5m\n"
                     "  condition: {gte: 1}\n");
    rs_add_corr(&rs, "title: Alias gap\ncorrelation:\n  type: temporal\n"
                     "  rules: [short_login, long_login]\n  group-by: [ip]\n  timespan: 5m\n"
                     "  aliases:\n    ip: {short_login: src_ip}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);

    assert_int_equal(rs.ncorrs, 2);
    assert_string_equal(rs.corrs[0].name, "bf");
    assert_int_equal(rs.corrs[0].refs[0].kind, CORR_REF_RULE);
    assert_int_equal(rs.corrs[0].refs[0].index, 0);
    assert_int_equal(rs.corrs[0].refs[0].gb[0], field_lookup(&ft, "src_ip"));
    assert_string_equal(rs.corrs[1].name, "bf_long");
    assert_int_equal(rs.corrs[1].refs[0].kind, CORR_REF_CORR);
    assert_int_equal(rs.corrs[1].refs[0].index, 0);
    assert_int_equal(rs.corrs[1].refs[0].gb[1], 1); /* slot: bf's 2nd group-by field */
    assert_int_equal(rs.corrs[1].refs[1].kind, CORR_REF_RULE);
    assert_int_equal(rs.corrs[1].refs[1].index, 1);

    assert_int_equal(rs.nerrors, 7);
    {
        static const char *const want[] = {
            "test.yml:3: Unknown: unknown rule 'nope' in 'rules' (no loaded detection or "
            "correlation rule has this name or id)",
            "test.yml:3: Ambiguous: rule reference 'dup' is ambiguous (2 rules have this name "
            "or id)",
            "test.yml:3: Alias gap: alias 'ip' has no field for rule 'long_login'",
            "test.yml:4: Cycle A: correlation rules form a cycle: ca -> cb -> ca",
            "test.yml:4: Cycle B: correlation rules form a cycle: ca -> cb -> ca",
            "test.yml:3: Bad chain field: field 'user' is not a group-by field of correlation "
            "'bf' (a chained correlation only carries its group-by values)",
            "test.yml:3: Over cycle: references correlation 'ca', which was refused",
        };
        char got[7][512];

        for (uint32_t i = 0; i < 7; i++)
            snprintf(got[i], sizeof(got[i]), "%s:%u: %s: %s", rs.errors[i].file, rs.errors[i].line,
                     rs.errors[i].rule, rs.errors[i].reason);
        /* order: references, cycles, fields, spread — check as a set */
        for (uint32_t w = 0; w < 7; w++) {
            bool found = false;

            for (uint32_t i = 0; i < 7; i++)
                found |= !strcmp(got[i], want[w]);
            if (!found)
                fail_msg("missing error: %s\n first: %s", want[w], got[0]);
        }
    }
    assert_false(corr_rule_generates(&rs, 0)); /* only bf uses it, generate false */
    assert_true(corr_rule_generates(&rs, 2));  /* no correlation uses it */
    rs_done(&rs);
}

/* ---- engine: event_count ------------------------------------------------------------ */

static const char *const BF_NAMES[] = {"short_login", "long_login", NULL};

static const char *BF =
    "title: Brute force\nname: l3_09_bruteforce\ncorrelation:\n  type: event_count\n"
    "  rules: [short_login]\n  group-by: [src_ip, dest_ip]\n  timespan: 5m\n"
    "  condition: {gte: 10}\n";

static void test_event_count_boundaries(void **state)
{
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    corr_stats st;

    (void)state;
    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    assert_non_null(e);

    /* A: 10 events from 0 to 299.999 s: the 10th is in the window of the 1st -> fires */
    for (int i = 0; i < 9; i++)
        corr_feed(e, 0, ev_pair(&t, "1.1.1.1", "10.0.0.1", i * 1000), i * 1000, on_emit, &x);
    assert_int_equal(x.n, 0);
    corr_feed(e, 0, ev_pair(&t, "1.1.1.1", "10.0.0.1", 299999), 299999, on_emit, &x);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0],
                        "l3_09_bruteforce|src_ip=1.1.1.1,dest_ip=10.0.0.1|0|0|299999|10|ev");
    assert_ptr_equal(x.evs[0], &t.ev);

    /* B: 9 events from 1000 s, the 10th exactly 300.000 s after the first: no */
    for (int i = 0; i < 9; i++)
        corr_feed(e, 0, ev_pair(&t, "2.2.2.2", "10.0.0.1", 1000000 + i), 1000000 + i, on_emit, &x);
    corr_feed(e, 0, ev_pair(&t, "2.2.2.2", "10.0.0.1", 1300000), 1300000, on_emit, &x);
    assert_int_equal(x.n, 1);
    /* C: and 300.001 s after the first: no */
    for (int i = 0; i < 9; i++)
        corr_feed(e, 0, ev_pair(&t, "3.3.3.3", "10.0.0.1", 2000000 + i), 2000000 + i, on_emit, &x);
    corr_feed(e, 0, ev_pair(&t, "3.3.3.3", "10.0.0.1", 2300001), 2300001, on_emit, &x);
    assert_int_equal(x.n, 1);
    corr_get_stats(e, &st);
    assert_int_equal(st.emits, 1);
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_event_count_groups_and_once(void **state)
{
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;

    (void)state;
    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    /* two sources interleaved, 25 events each in 25 s: each group fires at its 10th and
     * 20th event (state cleared after an emit), never on the events in between */
    for (int i = 0; i < 25; i++) {
        corr_feed(e, 0, ev_pair(&t, "1.1.1.1", "10.0.0.1", i * 1000), i * 1000, on_emit, &x);
        corr_feed(e, 0, ev_pair(&t, "1.1.1.2", "10.0.0.1", i * 1000 + 1), i * 1000 + 1, on_emit,
                  &x);
    }
    assert_int_equal(x.n, 4);
    assert_string_equal(x.lines[0],
                        "l3_09_bruteforce|src_ip=1.1.1.1,dest_ip=10.0.0.1|-290999|0|9000|10|ev");
    assert_string_equal(x.lines[1],
                        "l3_09_bruteforce|src_ip=1.1.1.2,dest_ip=10.0.0.1|-290998|1|9001|10|ev");
    assert_string_equal(
        x.lines[2], "l3_09_bruteforce|src_ip=1.1.1.1,dest_ip=10.0.0.1|-280999|10000|19000|10|ev");
    assert_string_equal(
        x.lines[3], "l3_09_bruteforce|src_ip=1.1.1.2,dest_ip=10.0.0.1|-280998|10001|19001|10|ev");
    /* a missing group-by field: not counted, counted as such */
    {
        corr_stats st;

        ev_clear(&t);
        ev_str(&t, "src_ip", "9.9.9.9");
        corr_feed(e, 0, &t.ev, 30000, on_emit, &x);
        corr_get_stats(e, &st);
        assert_int_equal(st.no_group_value, 1);
        assert_int_equal(st.groups_live, 2);
    }
    corr_engine_free(e);
    rs_done(&rs);
}

/* ---- value_count, value_sum ------------------------------------------------------------ */

static void test_value_count(void **state)
{
    static const char *const names[] = {"probe", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    static const struct {
        int64_t ts;
        int port;
    } seq[] = {
        {0, 22},      {1000, 22},   {30000, 23}, {59000, 22}, /* 2 distinct so far */
        {60000, 24},  /* window (0, 60000]: 22 (last seen 59 s), 23 (30 s), 24 -> 3: fires */
        {100000, 22}, /* state cleared: 1 */
        {130000, 23}, /* 2 */
        {190000, 24}, /* window (130000, 190000]: 22 (100 s) and 23 (130 s) are out: 1 */
        {200000, 25}, {210000, 25}, /* 24, 25 -> 2 */
        {249999, 26},               /* 24, 25, 26 -> fires */
    };

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Port scan\nname: scan\ncorrelation:\n  type: value_count\n"
                     "  rules: [probe]\n  group-by: [src_ip]\n  timespan: 60s\n"
                     "  condition: {field: dest_port, gte: 3}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        ev_clear(&t);
        ev_str(&t, "src_ip", "5.5.5.5");
        ev_num(&t, "dest_port", seq[i].port);
        corr_feed(e, 0, &t.ev, seq[i].ts, on_emit, &x);
    }
    assert_int_equal(x.n, 2);
    assert_string_equal(x.lines[0], "scan|src_ip=5.5.5.5|1|30000|60000|3|ev");
    assert_string_equal(x.lines[1], "scan|src_ip=5.5.5.5|190000|190000|249999|3|ev");
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_value_sum(void **state)
{
    static const char *const names[] = {"out", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    static const struct {
        int64_t ts;
        int64_t bytes;
    } seq[] = {
        {0, 400},
        {1000, 400},
        {3600000, 300}, /* the first 400 left the hour: 700 */
        {3600500, 301}, /* 1001 > 1000: fires */
    };

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Upload\nname: upload\ncorrelation:\n  type: value_sum\n"
                     "  rules: [out]\n  group-by: [src_ip]\n  timespan: 1h\n"
                     "  condition: {field: flow.bytes_toserver, gt: 1000}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        ev_clear(&t);
        ev_str(&t, "src_ip", "10.1.1.1");
        ev_num(&t, "flow.bytes_toserver", seq[i].bytes);
        corr_feed(e, 0, &t.ev, seq[i].ts, on_emit, &x);
        if (i == 2)
            assert_int_equal(x.n, 0);
    }
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "upload|src_ip=10.1.1.1|501|1000|3600500|1001|ev");
    corr_engine_free(e);
    rs_done(&rs);
}

/* ---- temporal ----------------------------------------------------------------------- */

static void test_temporal_any_order(void **state)
{
    static const char *const names[] = {"a", "b", "c", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Recon\nname: recon\ncorrelation:\n  type: temporal\n"
                     "  rules: [a, b, c]\n  group-by: [user]\n  timespan: 5m\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    ev_clear(&t);
    ev_str(&t, "user", "alice");
    corr_feed(e, 2, &t.ev, 0, on_emit, &x);     /* c */
    corr_feed(e, 0, &t.ev, 10000, on_emit, &x); /* a */
    corr_feed(e, 0, &t.ev, 20000, on_emit, &x); /* a again */
    assert_int_equal(x.n, 0);
    corr_feed(e, 1, &t.ev, 299999, on_emit, &x); /* b: c at 0 still in (-1, 299999] */
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "recon|user=alice|0|0|299999|3|ev");
    /* bob: c at 0, a at 100 s, b at 300 s: c has left the window */
    ev_str(&t, "user", "bob");
    corr_feed(e, 2, &t.ev, 1000000, on_emit, &x);
    corr_feed(e, 0, &t.ev, 1100000, on_emit, &x);
    corr_feed(e, 1, &t.ev, 1300000, on_emit, &x);
    assert_int_equal(x.n, 1);
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_temporal_ordered(void **state)
{
    static const char *const names[] = {"fail", "success", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Fail then success\nname: fs\ncorrelation:\n"
                     "  type: temporal_ordered\n  rules: [fail, success]\n"
                     "  group-by: [user]\n  timespan: 10m\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    ev_clear(&t);
    /* order violated: success then fail */
    ev_str(&t, "user", "u1");
    corr_feed(e, 1, &t.ev, 0, on_emit, &x);
    corr_feed(e, 0, &t.ev, 1000, on_emit, &x);
    assert_int_equal(x.n, 0);
    /* order respected within 10 min: fail at 0.1 s, success at 600.099 s */
    ev_str(&t, "user", "u2");
    corr_feed(e, 0, &t.ev, 100, on_emit, &x);
    corr_feed(e, 1, &t.ev, 600099, on_emit, &x);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "fs|user=u2|100|100|600099|2|ev");
    /* respected but 600.000 s apart: outside */
    ev_str(&t, "user", "u3");
    corr_feed(e, 0, &t.ev, 700000, on_emit, &x);
    corr_feed(e, 1, &t.ev, 1300000, on_emit, &x);
    assert_int_equal(x.n, 1);
    /* the u1 fail at 1 s, a success now: in order but 1300 s apart */
    ev_str(&t, "user", "u1");
    corr_feed(e, 1, &t.ev, 1300001, on_emit, &x);
    assert_int_equal(x.n, 1);
    corr_engine_free(e);
    rs_done(&rs);
}

/* ---- chaining: L3-10 ---------------------------------------------------------------- */

static const char *L3_10 =
    "title: Brute force followed by a long session\nname: l3_10_bruteforce_then_session\n"
    "correlation:\n  type: temporal_ordered\n"
    "  rules: [l3_09_bruteforce, long_login]\n  group-by: [src_ip, dest_ip]\n"
    "  timespan: 10m\nlevel: critical\n";

static void run_l3_10(rec *x, corr_stats *st)
{
    ruleset rs;
    corr_engine *e;
    tev t;
    static const char *const SRC[3] = {"45.155.205.233", "193.32.162.40", "89.248.165.52"};
    static const char *const DST[3] = {"10.10.1.10", "10.10.1.11", "10.10.1.12"};
    const int64_t T0 = 1795572000000; /* 2026-11-20T02:00:00Z */

    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    rs_add_corr(&rs, L3_10);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    /* 89.248.165.52: a long session first (90 s), then the brute force */
    corr_feed(e, 1, ev_pair(&t, SRC[2], DST[2], T0 + 90000), T0 + 90000, on_emit, x);
    /* short sessions every 20 s from 103 s for all three; the 10th at 283 s */
    for (int i = 0; i < 10; i++)
        for (int s = 0; s < 3; s++) {
            int64_t ts = T0 + 103000 + i * 20000;

            corr_feed(e, 0, ev_pair(&t, SRC[s], DST[s], ts), ts, on_emit, x);
        }
    /* 45.155.205.233: a 200 s session ending at 500 s: 217 s after the brute force */
    corr_feed(e, 1, ev_pair(&t, SRC[0], DST[0], T0 + 500000), T0 + 500000, on_emit, x);
    /* 193.32.162.40: the long session ends 917 s after the brute force */
    corr_feed(e, 1, ev_pair(&t, SRC[1], DST[1], T0 + 1200000), T0 + 1200000, on_emit, x);
    corr_get_stats(e, st);
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_chained_l3_10(void **state)
{
    rec x = {0};
    corr_stats st;

    (void)state;
    run_l3_10(&x, &st);
    assert_int_equal(x.n, 4);
    assert_string_equal(x.lines[0], "l3_09_bruteforce|src_ip=45.155.205.233,dest_ip=10.10.1.10|"
                                    "1795571983001|1795572103000|1795572283000|10|ev");
    assert_string_equal(x.lines[1], "l3_09_bruteforce|src_ip=193.32.162.40,dest_ip=10.10.1.11|"
                                    "1795571983001|1795572103000|1795572283000|10|ev");
    assert_string_equal(x.lines[2], "l3_09_bruteforce|src_ip=89.248.165.52,dest_ip=10.10.1.12|"
                                    "1795571983001|1795572103000|1795572283000|10|ev");
    assert_string_equal(x.lines[3],
                        "l3_10_bruteforce_then_session|src_ip=45.155.205.233,dest_ip=10.10.1.10|"
                        "1795571900001|1795572283000|1795572500000|2|ev");
    assert_int_equal(st.emits, 4);
}

/* ---- late events, at-close (lt), eviction --------------------------------------------- */

static void test_late_events(void **state)
{
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    corr_stats st;
    corr_limits lim = {.allowed_lateness_ms = 0};

    (void)state;
    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, &lim);
    /* newest at 400 s; 100 s (= 400 - 300) is outside its window: dropped and counted;
     * 100.001 s is inside: accepted and counted toward the window ending at 400 s */
    for (int i = 0; i < 8; i++)
        corr_feed(e, 0, ev_pair(&t, "6.6.6.6", "10.0.0.1", 390000 + i * 1000), 390000 + i * 1000,
                  on_emit, &x);
    corr_feed(e, 0, ev_pair(&t, "6.6.6.6", "10.0.0.1", 400000), 400000, on_emit, &x);
    corr_feed(e, 0, ev_pair(&t, "6.6.6.6", "10.0.0.1", 100000), 100000, on_emit, &x);
    corr_get_stats(e, &st);
    assert_int_equal(st.late_dropped, 1);
    assert_int_equal(x.n, 0);
    corr_feed(e, 0, ev_pair(&t, "6.6.6.6", "10.0.0.1", 100001), 100001, on_emit, &x);
    assert_int_equal(x.n, 1);
    assert_string_equal(
        x.lines[0], "l3_09_bruteforce|src_ip=6.6.6.6,dest_ip=10.0.0.1|100001|100001|400000|10|ev");
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_at_close_silence(void **state)
{
    static const char *const names[] = {"heartbeat", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    corr_stats st;

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Silent\nname: silent\ncorrelation:\n  type: event_count\n"
                     "  rules: [heartbeat]\n  group-by: [sensor.id]\n  timespan: 15m\n"
                     "  condition: {lt: 1}\n");
    rs_add_corr(&rs, "title: Exactly three\nname: three\ncorrelation:\n  type: event_count\n"
                     "  rules: [heartbeat]\n  group-by: [sensor.id]\n  timespan: 15m\n"
                     "  condition: {eq: 3}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    ev_clear(&t);
    ev_str(&t, "sensor.id", "s1");
    /* s1: heartbeats at 0, 60, 120 s, then silence */
    for (int i = 0; i < 3; i++)
        corr_feed(e, 0, &t.ev, i * 60000, on_emit, &x);
    /* window [0, 900000) closes when the watermark reaches 900 000 */
    corr_advance(e, 899999, on_emit, &x);
    assert_int_equal(x.n, 0);
    corr_advance(e, 900000, on_emit, &x);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "three|sensor.id=s1|0|0|120000|3|-");
    /* [900000, 1800000) is empty: lt 1 fires once, then the group is dropped */
    corr_advance(e, 1799999, on_emit, &x);
    assert_int_equal(x.n, 1);
    corr_advance(e, 1800000, on_emit, &x);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.lines[1], "silent|sensor.id=s1|900000|900000|900000|0|-");
    corr_advance(e, 9000000, on_emit, &x);
    assert_int_equal(x.n, 2);
    corr_get_stats(e, &st);
    assert_int_equal(st.groups_live, 0);
    /* an event for an already closed window is late */
    corr_feed(e, 0, &t.ev, 9000000, on_emit, &x);
    corr_feed(e, 0, &t.ev, 8999999, on_emit, &x);
    corr_get_stats(e, &st);
    assert_int_equal(st.late_dropped, 2);
    corr_engine_free(e);
    rs_done(&rs);
}

/* Feeds one heartbeat of sensor `sid` at ts through the clock policy, as the stream does. */
static bool beat(corr_engine *e, tev *t, const char *sid, int64_t ts, rec *x)
{
    ev_clear(t);
    ev_str(t, "sensor.id", sid);
    t->ev.ts_ms = ts;
    if (!corr_admit(e, ts))
        return false;
    corr_advance(e, ts, on_emit, x);
    corr_feed(e, 0, &t->ev, ts, on_emit, x);
    return true;
}

/*
 * The clock policy (corr_admit): one event far in the future neither moves the
 * watermark nor closes anyone's window; a run of them is time moving on; a
 * first event that was the odd one is corrected by the run of events behind it.
 */
static void test_clock_policy(void **state)
{
    static const char *const names[] = {"heartbeat", NULL};
    const int64_t H = 3600000, M = 60000;
    corr_limits lim = {.max_ahead_ms = H, .resync_events = 4};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    corr_stats st;
    corr_clock c;

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Silent\nname: silent\ncorrelation:\n  type: event_count\n"
                     "  rules: [heartbeat]\n  group-by: [sensor.id]\n  timespan: 15m\n"
                     "  condition: {lt: 1}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);

    /* 1. A single event stamped 9999 between heartbeats: set aside, nothing closes. */
    e = corr_engine_new(&rs, &lim);
    for (int i = 0; i < 10; i++)
        assert_true(beat(e, &t, "s1", i * M, &x));
    assert_false(beat(e, &t, "bogus", 253402300799000LL, &x));
    for (int i = 10; i < 14; i++)
        assert_true(beat(e, &t, "s1", i * M, &x));
    assert_int_equal(x.n, 0); /* s1 never went silent */
    corr_engine_get_clock(e, &c);
    assert_int_equal(c.watermark, 13 * M);
    corr_get_stats(e, &st);
    assert_int_equal(st.clock_ahead, 1);
    assert_int_equal(st.clock_resyncs, 0);

    /* 2. Exactly one hour ahead is still in time; one ms more is not. */
    assert_true(beat(e, &t, "s1", 13 * M + H, &x));
    assert_false(beat(e, &t, "s1", 13 * M + 2 * H + 1, &x));
    assert_true(beat(e, &t, "s1", 13 * M + H + M, &x)); /* breaks the run */

    /* 3. A pause of a day: the 4th event in a row resyncs to the oldest of the run,
     * and the silent window of s1 closes then (not before). */
    x.n = 0;
    {
        int64_t base = 13 * M + H + M + 24 * H;

        assert_false(beat(e, &t, "s2", base, &x));
        assert_false(beat(e, &t, "s2", base + 1000, &x));
        assert_false(beat(e, &t, "s2", base + 2000, &x));
        assert_int_equal(x.n, 0);
        assert_true(beat(e, &t, "s2", base + 3000, &x));
        corr_engine_get_clock(e, &c);
        assert_int_equal(c.watermark, base + 3000);
        assert_int_equal(x.n, 1);
        assert_string_equal(x.lines[0] + strlen(x.lines[0]) - 2, "|-"); /* closed by time */
        assert_non_null(strstr(x.lines[0], "silent|sensor.id=s1|"));
        corr_get_stats(e, &st);
        assert_int_equal(st.clock_ahead, 1 + 1 + 3);
        assert_int_equal(st.clock_resyncs, 1);
    }
    corr_engine_free(e);

    /* 4. The very first event is the odd one (9999): the run of events far behind it
     * moves the watermark back, and silence is noticed again as it should be. */
    x.n = 0;
    e = corr_engine_new(&rs, &lim);
    assert_true(beat(e, &t, "bogus", 253402300799000LL, &x));
    for (int i = 0; i < 4; i++)
        assert_true(beat(e, &t, "s1", i * M, &x));
    corr_engine_get_clock(e, &c);
    assert_int_equal(c.watermark, 3 * M);
    corr_get_stats(e, &st);
    assert_int_equal(st.clock_resyncs, 1);
    /* s1 falls silent; s3 keeps time: 15 to 30 min later s1's silence is reported */
    for (int i = 4; i < 40; i++)
        assert_true(beat(e, &t, "s3", i * M, &x));
    assert_true(x.n >= 1);
    assert_non_null(strstr(x.lines[0], "silent|sensor.id=s1|"));
    corr_engine_free(e);

    /* 5. A firm watermark is never moved back: late events stay late. */
    x.n = 0;
    e = corr_engine_new(&rs, &lim);
    for (int i = 0; i < 6; i++)
        assert_true(beat(e, &t, "s1", 10 * H + i * M, &x));
    for (int i = 0; i < 6; i++)
        assert_true(beat(e, &t, "old", i * M, &x));
    corr_engine_get_clock(e, &c);
    assert_int_equal(c.watermark, 10 * H + 5 * M);
    corr_get_stats(e, &st);
    assert_int_equal(st.clock_resyncs, 0);
    corr_engine_free(e);
    rs_done(&rs);
}

/* Group-by values that differ only after a NUL are two groups, and the key says so. */
static void test_group_key_nul(void **state)
{
    static const char *const names[] = {"login", NULL};
    static const char a[] = "10.0.0.1\0a", b[] = "10.0.0.1\0b";
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    field_id id;

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Two\nname: two\ncorrelation:\n  type: event_count\n"
                     "  rules: [login]\n  group-by: [src_ip]\n  timespan: 5m\n"
                     "  condition: {gte: 2}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    id = field_lookup(&ft, "src_ip");
    ev_clear(&t);
    t.vals[id].type = SV_STR;
    t.vals[id].s = a;
    t.vals[id].len = sizeof(a) - 1;
    corr_feed(e, 0, &t.ev, 1000, on_emit, &x);
    t.vals[id].s = b;
    corr_feed(e, 0, &t.ev, 2000, on_emit, &x);
    assert_int_equal(x.n, 0); /* one event in each of two groups */
    corr_feed(e, 0, &t.ev, 3000, on_emit, &x);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "two|src_ip=10.0.0.1\\x00b|-296999|2000|3000|2|ev");
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_at_close_value_count(void **state)
{
    static const char *const names[] = {"probe", NULL};
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    static const struct {
        const char *src;
        int64_t ts;
        int port;
    } seq[] = {
        {"1.0.0.1", 0, 22},     {"1.0.0.1", 10000, 23}, {"1.0.0.1", 59999, 22},
        {"1.0.0.2", 5000, 22},  {"1.0.0.2", 6000, 23},  {"1.0.0.2", 7000, 24},
        {"1.0.0.1", 60000, 25}, /* closes 1.0.0.1's window [0, 60000): 2 distinct */
    };

    (void)state;
    rs_init(&rs, names);
    rs_add_corr(&rs, "title: Two ports\nname: two\ncorrelation:\n  type: value_count\n"
                     "  rules: [probe]\n  group-by: [src_ip]\n  timespan: 60s\n"
                     "  condition: {field: dest_port, gt: 1, lte: 2}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        ev_clear(&t);
        ev_str(&t, "src_ip", seq[i].src);
        ev_num(&t, "dest_port", seq[i].port);
        corr_feed(e, 0, &t.ev, seq[i].ts, on_emit, &x);
    }
    /* the event at 60 s moved the watermark: 1.0.0.2's window [5000, 65000) is still open */
    assert_int_equal(x.n, 1);
    assert_string_equal(x.lines[0], "two|src_ip=1.0.0.1|0|0|59999|2|-");
    corr_advance(e, 65000, on_emit, &x);  /* 1.0.0.2: 3 distinct, not in (1, 2] */
    corr_advance(e, 120000, on_emit, &x); /* 1.0.0.1: [60000, 120000) has 1 value */
    assert_int_equal(x.n, 1);
    corr_engine_free(e);
    rs_done(&rs);
}

static void test_eviction(void **state)
{
    ruleset rs;
    corr_engine *e;
    rec x = {0};
    tev t;
    corr_stats st;
    corr_limits lim = {.max_groups_per_rule = 4};
    char ip[32];

    (void)state;
    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, &lim);
    for (int i = 0; i < 6; i++) {
        snprintf(ip, sizeof(ip), "7.7.7.%d", i);
        corr_feed(e, 0, ev_pair(&t, ip, "10.0.0.1", 1000 + i), 1000 + i, on_emit, &x);
    }
    corr_get_stats(e, &st);
    assert_int_equal(st.groups_live, 4);
    assert_int_equal(st.groups_evicted, 2);
    assert_int_equal(st.groups_created, 6);
    /* 7.7.7.0 was the least recently used: evicted, its count restarts */
    for (int i = 0; i < 9; i++)
        corr_feed(e, 0, ev_pair(&t, "7.7.7.5", "10.0.0.1", 2000 + i), 2000 + i, on_emit, &x);
    assert_int_equal(x.n, 1); /* 7.7.7.5 kept its first event: 10 */
    /* idle groups expire once the watermark leaves their window */
    corr_advance(e, 1005 + 300000, on_emit, &x);
    corr_get_stats(e, &st);
    assert_int_equal(st.groups_live, 1); /* 7.7.7.5, fed until 2008 */
    assert_int_equal(st.groups_expired, 3);
    corr_engine_free(e);
    rs_done(&rs);
}

/* ---- determinism, memory ----------------------------------------------------------------- */

static uint64_t run_random(uint64_t seed)
{
    static const char *const names[] = {"a", "b", NULL};
    ruleset rs;
    corr_engine *e;
    rec x;
    tev t;
    uint64_t h = 14695981039346656037ull;
    char ip[32];
    int64_t ts = 0;

    rs_init(&rs, names);
    rs_add_corr(&rs, "title: C\nname: c\ncorrelation:\n  type: event_count\n  rules: [a, b]\n"
                     "  group-by: [src_ip]\n  timespan: 10s\n  condition: {gte: 3}\n");
    rs_add_corr(&rs, "title: D\nname: d\ncorrelation:\n  type: temporal\n  rules: [c, b]\n"
                     "  group-by: [src_ip]\n  timespan: 30s\n");
    rs_add_corr(&rs, "title: V\nname: v\ncorrelation:\n  type: value_count\n  rules: [a]\n"
                     "  group-by: [dest_ip]\n  timespan: 20s\n"
                     "  condition: {field: src_ip, gte: 4}\n");
    assert_int_equal(corr_resolve(&rs), FH_OK);
    {
        corr_limits lim = {.max_groups_per_rule = 16};

        e = corr_engine_new(&rs, &lim);
    }
    for (int i = 0; i < 5000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ts += (int64_t)(seed >> 60) * 300;
        snprintf(ip, sizeof(ip), "10.0.0.%u", (unsigned)(seed >> 40) % 40);
        memset(&x, 0, sizeof(x));
        corr_feed(e, (uint32_t)(seed >> 33) & 1, ev_pair(&t, ip, ip + 3, ts), ts, on_emit, &x);
        for (int k = 0; k < x.n; k++)
            for (const char *p = x.lines[k]; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    corr_engine_free(e);
    rs_done(&rs);
    return h;
}

static void test_determinism(void **state)
{
    (void)state;
    assert_int_equal(run_random(42), run_random(42));
    assert_int_not_equal(run_random(42), run_random(43));
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* An in-memory stand-in for the corr_state table: (rule, key) -> state. */
typedef struct {
    char *rule;
    void *key, *state;
    size_t keylen, len;
} srow;

typedef struct {
    srow *rows;
    size_t n;
    corr_clock clock;
    uint64_t puts, dels;
} sstore;

static srow *sfind(sstore *s, const char *rule, const void *key, size_t keylen)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->rows[i].rule, rule) && s->rows[i].keylen == keylen &&
            !memcmp(s->rows[i].key, key, keylen))
            return &s->rows[i];
    return NULL;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);

    memcpy(d, p, n);
    return d;
}

static fh_err sput(void *arg, const char *rule, const char *key, size_t keylen, const void *st,
                   size_t len)
{
    sstore *s = arg;
    srow *r = sfind(s, rule, key, keylen);

    s->puts++;
    if (!r) {
        s->rows = realloc(s->rows, (s->n + 1) * sizeof(*s->rows));
        r = &s->rows[s->n++];
        r->rule = strdup(rule);
        r->key = dup_bytes(key, keylen);
        r->keylen = keylen;
    } else {
        free(r->state);
    }
    r->state = dup_bytes(st, len);
    r->len = len;
    return FH_OK;
}

static fh_err sdel(void *arg, const char *rule, const char *key, size_t keylen)
{
    sstore *s = arg;

    s->dels++;
    for (size_t i = 0; i < s->n;) {
        srow *r = &s->rows[i];

        if (!strcmp(r->rule, rule) &&
            (!key || (r->keylen == keylen && !memcmp(r->key, key, keylen)))) {
            free(r->rule);
            free(r->key);
            free(r->state);
            s->rows[i] = s->rows[--s->n];
        } else {
            i++;
        }
    }
    return FH_OK;
}

static void sstore_copy(sstore *to, const sstore *from)
{
    memset(to, 0, sizeof(*to));
    to->rows = calloc(from->n ? from->n : 1, sizeof(*to->rows));
    for (size_t i = 0; i < from->n; i++) {
        to->rows[i].rule = strdup(from->rows[i].rule);
        to->rows[i].key = dup_bytes(from->rows[i].key, from->rows[i].keylen);
        to->rows[i].keylen = from->rows[i].keylen;
        to->rows[i].state = dup_bytes(from->rows[i].state, from->rows[i].len);
        to->rows[i].len = from->rows[i].len;
    }
    to->n = from->n;
    to->clock = from->clock;
}

static void sstore_free(sstore *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].rule);
        free(s->rows[i].key);
        free(s->rows[i].state);
    }
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

static const char *const CK_NAMES[] = {"a", "b", NULL};

/* Every correlation type, sliding and at-close, chained; small caps so eviction happens. */
static void ck_rules(ruleset *rs, const char *c_timespan)
{
    char c[512];

    rs_init(rs, CK_NAMES);
    snprintf(c, sizeof(c),
             "title: C\nname: c\ncorrelation:\n  type: event_count\n  rules: [a, b]\n"
             "  group-by: [src_ip]\n  timespan: %s\n  condition: {gte: 3}\n",
             c_timespan);
    rs_add_corr(rs, c);
    rs_add_corr(rs, "title: D\nname: d\ncorrelation:\n  type: temporal\n  rules: [c, b]\n"
                    "  group-by: [src_ip]\n  timespan: 30s\n");
    rs_add_corr(rs, "title: O\nname: o\ncorrelation:\n  type: temporal_ordered\n"
                    "  rules: [a, b]\n  group-by: [src_ip]\n  timespan: 20s\n");
    rs_add_corr(rs, "title: V\nname: v\ncorrelation:\n  type: value_count\n  rules: [a]\n"
                    "  group-by: [dest_ip]\n  timespan: 20s\n"
                    "  condition: {field: src_ip, gte: 4}\n");
    rs_add_corr(rs, "title: S\nname: s\ncorrelation:\n  type: value_sum\n  rules: [b]\n"
                    "  group-by: [src_ip]\n  timespan: 15s\n"
                    "  condition: {field: dest_port, gte: 2000}\n");
    rs_add_corr(rs, "title: Q\nname: q\ncorrelation:\n  type: event_count\n  rules: [b]\n"
                    "  group-by: [dest_ip]\n  timespan: 12s\n  condition: {lt: 2}\n");
    rs_add_corr(rs, "title: W\nname: w\ncorrelation:\n  type: value_count\n  rules: [a]\n"
                    "  group-by: [src_ip]\n  timespan: 10s\n"
                    "  condition: {field: dest_ip, lte: 1}\n");
    assert_int_equal(corr_resolve(rs), FH_OK);
}

#define CK_EVENTS 6000
#define CK_BATCH  50

/* Event i of the test stream (deterministic). */
static const event_view *ck_event(tev *t, int i, uint32_t *rule, int64_t *ts)
{
    static char src[32], dst[32];
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;

    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    *ts = (int64_t)i * 137 + (int64_t)(x % 97);
    *rule = (uint32_t)(x >> 7) & 1;
    snprintf(src, sizeof(src), "10.0.0.%u", (unsigned)(x >> 17) % 11);
    snprintf(dst, sizeof(dst), "10.9.0.%u", (unsigned)(x >> 27) % 10);
    ev_pair(t, src, dst, *ts);
    ev_num(t, "dest_port", (int64_t)((x >> 40) % 1024));
    return &t->ev;
}

/* Feeds events [from, to) with a checkpoint every CK_BATCH; hashes emits into *h. */
static void ck_run(corr_engine *e, int from, int to, sstore *s, uint64_t *h, uint64_t *n)
{
    tev t;

    for (int i = from; i < to; i++) {
        uint32_t rule;
        int64_t ts;
        const event_view *ev = ck_event(&t, i, &rule, &ts);
        rec x;

        memset(&x, 0, sizeof(x));
        corr_advance(e, ts, on_emit, &x);
        corr_feed(e, rule, ev, ts, on_emit, &x);
        for (int k = 0; k < x.n; k++) {
            for (const char *p = x.lines[k]; *p; p++)
                *h = (*h ^ (unsigned char)*p) * 1099511628211ull;
            (*n)++;
        }
        if ((i + 1) % CK_BATCH == 0 && s) {
            assert_int_equal(corr_engine_checkpoint(e, sput, sdel, s), FH_OK);
            corr_engine_get_clock(e, &s->clock);
        }
    }
}

static corr_engine *ck_engine(const ruleset *rs)
{
    corr_limits lim = {.max_groups_per_rule = 8};
    corr_engine *e = corr_engine_new(rs, &lim);

    assert_non_null(e);
    corr_engine_track_changes(e, true);
    return e;
}

static corr_engine *ck_restore(const ruleset *rs, const sstore *s)
{
    corr_engine *e = ck_engine(rs);

    for (size_t i = 0; i < s->n; i++)
        assert_int_equal(corr_engine_restore(e, s->rows[i].rule, s->rows[i].key, s->rows[i].keylen,
                                             s->rows[i].state, s->rows[i].len),
                         FH_OK);
    assert_int_equal(corr_engine_restore_done(e, &s->clock), FH_OK);
    return e;
}

/*
 * A crash after any committed checkpoint, then a restart from it: the emits from there on
 * are exactly those of the run without the crash. Without the restore they are not.
 */
static void test_checkpoint_restore(void **state)
{
    static const int CRASH[] = {CK_BATCH, 1000, 2950, 4500};
    ruleset rs;
    sstore s = {0}, snap[4];
    corr_engine *a;
    uint64_t hall = 14695981039346656037ull, nall = 0, rows_max = 0;
    uint64_t href[4], nref[4];
    corr_stats st;

    (void)state;
    ck_rules(&rs, "10s");
    /* the reference run, with a snapshot of the store at each crash point */
    a = ck_engine(&rs);
    {
        int at = 0;

        for (int c = 0; c < 4; c++) {
            ck_run(a, at, CRASH[c], &s, &hall, &nall);
            sstore_copy(&snap[c], &s);
            if (s.n > rows_max)
                rows_max = s.n;
            href[c] = 14695981039346656037ull;
            nref[c] = 0;
            at = CRASH[c];
        }
        ck_run(a, at, CK_EVENTS, &s, &hall, &nall);
    }
    corr_get_stats(a, &st);
    assert_true(st.emits > 100);        /* the stream exercises the rules */
    assert_true(st.groups_evicted > 0); /* and the caps */
    assert_true(rows_max >= 10);
    assert_true(s.dels > 0);
    /* the tail of the reference run from each crash point */
    for (int c = 0; c < 4; c++) {
        corr_engine *r = ck_engine(&rs);
        sstore tmp = {0};
        uint64_t hx = 14695981039346656037ull, nx = 0;

        ck_run(r, 0, CRASH[c], &tmp, &hx, &nx); /* same engine state as `a` at CRASH[c] */
        ck_run(r, CRASH[c], CK_EVENTS, &tmp, &href[c], &nref[c]);
        corr_engine_free(r);
        sstore_free(&tmp);
    }
    for (int c = 0; c < 4; c++) {
        corr_engine *b = ck_restore(&rs, &snap[c]);
        corr_engine *fresh = ck_engine(&rs);
        uint64_t hb = 14695981039346656037ull, nb = 0, hf = hb, nf = 0;
        sstore tmp = {0};

        ck_run(b, CRASH[c], CK_EVENTS, &snap[c], &hb, &nb);
        ck_run(fresh, CRASH[c], CK_EVENTS, &tmp, &hf, &nf);
        if (hb != href[c] || nb != nref[c])
            fail_msg("crash at event %d: %llu emits after the restore, %llu without the crash",
                     CRASH[c], (unsigned long long)nb, (unsigned long long)nref[c]);
        assert_true(hf != href[c]); /* the restore is what makes them equal */
        corr_engine_free(b);
        corr_engine_free(fresh);
        sstore_free(&tmp);
    }
    /* the stores the restarted engines kept writing equal the reference's final one */
    for (int c = 0; c < 4; c++) {
        assert_int_equal(snap[c].n, s.n);
        assert_int_equal(snap[c].clock.has_watermark, s.clock.has_watermark);
        assert_int_equal(snap[c].clock.watermark, s.clock.watermark);
        assert_int_equal(snap[c].clock.next_deadline, s.clock.next_deadline);
        assert_int_equal(snap[c].clock.touch, s.clock.touch);
        for (size_t i = 0; i < s.n; i++) {
            srow *r = sfind(&snap[c], s.rows[i].rule, s.rows[i].key, s.rows[i].keylen);

            if (!r || r->len != s.rows[i].len || memcmp(r->state, s.rows[i].state, r->len))
                fail_msg("crash at event %d: saved group %s %s differs at the end", CRASH[c],
                         s.rows[i].rule, (const char *)s.rows[i].key);
        }
    }
    for (int c = 0; c < 4; c++)
        sstore_free(&snap[c]);
    sstore_free(&s);
    corr_engine_free(a);
    rs_done(&rs);
}

/* SIGHUP with checkpoints: state of unchanged rules moves on, saved state of a changed
 * rule is deleted at the next checkpoint, and pending changes are not lost. */
static void test_adopt_checkpoint(void **state)
{
    ruleset rs, rs2;
    sstore s = {0};
    corr_engine *a, *b;
    uint64_t h = 0, n = 0;
    size_t c_rows = 0, others = 0;
    char cname[64] = "";

    (void)state;
    ck_rules(&rs, "10s");
    a = ck_engine(&rs);
    ck_run(a, 0, 1000, &s, &h, &n);
    ck_run(a, 1000, 1020, NULL, &h, &n); /* changed since the last checkpoint */
    for (size_t i = 0; i < s.n; i++) {
        if (!strncmp(s.rows[i].rule, "c#", 2)) {
            c_rows++;
            snprintf(cname, sizeof(cname), "%s", s.rows[i].rule);
        } else {
            others++;
        }
    }
    assert_true(c_rows > 0 && others > 0);
    ck_rules(&rs2, "11s"); /* c changed; d (which references c) is unchanged */
    b = ck_engine(&rs2);
    assert_true(corr_engine_adopt(b, a) > 0);
    corr_engine_free(a);
    assert_int_equal(corr_engine_checkpoint(b, sput, sdel, &s), FH_OK);
    for (size_t i = 0; i < s.n; i++)
        assert_string_not_equal(s.rows[i].rule, cname);
    assert_true(s.n >= others - 8); /* the others are still there (evictions aside) */
    /* and what was restored from the store now equals the adopted engine's state */
    {
        corr_engine *r = ck_restore(&rs2, &s);
        uint64_t h1 = 1, n1 = 0, h2 = 1, n2 = 0;
        sstore t1 = {0}, t2 = {0};

        ck_run(b, 1020, 3000, &t1, &h1, &n1);
        ck_run(r, 1020, 3000, &t2, &h2, &n2);
        assert_int_equal(n1, n2);
        assert_true(h1 == h2);
        corr_engine_free(r);
        sstore_free(&t1);
        sstore_free(&t2);
    }
    corr_engine_free(b);
    sstore_free(&s);
    rs_done(&rs2);
    rs_done(&rs);
}

/* Rows that do not fit: another definition, an unknown rule, damaged key or state. */
static void test_restore_refuses(void **state)
{
    ruleset rs, rs2;
    sstore s = {0};
    corr_engine *a, *b;
    uint64_t h = 0, n = 0;
    srow *r = NULL;
    char *bad;

    (void)state;
    ck_rules(&rs, "10s");
    a = ck_engine(&rs);
    ck_run(a, 0, 500, &s, &h, &n);
    assert_true(s.n > 0);
    for (size_t i = 0; i < s.n && !r; i++)
        if (!strncmp(s.rows[i].rule, "c#", 2))
            r = &s.rows[i];
    assert_non_null(r);
    /* the same rule with another timespan has another name: not restored */
    ck_rules(&rs2, "11s");
    b = ck_engine(&rs2);
    assert_int_equal(corr_engine_restore(b, r->rule, r->key, r->keylen, r->state, r->len),
                     FH_ERR_NOTFOUND);
    corr_engine_free(b);
    b = ck_engine(&rs);
    assert_int_equal(
        corr_engine_restore(b, "nosuch#0000000000000000", r->key, r->keylen, r->state, r->len),
        FH_ERR_NOTFOUND);
    assert_int_equal(corr_engine_restore(b, r->rule, r->key, r->keylen, r->state, r->len - 1),
                     FH_ERR_PARSE);
    assert_int_equal(corr_engine_restore(b, r->rule, r->key, r->keylen - 1, r->state, r->len),
                     FH_ERR_PARSE); /* no final NUL */
    assert_int_equal(corr_engine_restore(b, r->rule, "k\0v\0w", 6, r->state, r->len),
                     FH_ERR_PARSE); /* one group-by value, not two */
    bad = dup_bytes(r->state, r->len);
    bad[0] ^= 1; /* magic */
    assert_int_equal(corr_engine_restore(b, r->rule, r->key, r->keylen, bad, r->len), FH_ERR_PARSE);
    free(bad);
    assert_int_equal(corr_engine_restore(b, r->rule, r->key, r->keylen, r->state, r->len), FH_OK);
    corr_engine_free(b);
    corr_engine_free(a);
    sstore_free(&s);
    rs_done(&rs2);
    rs_done(&rs);
}

static void test_memory_per_group(void **state)
{
    ruleset rs;
    corr_engine *e;
    tev t;
    corr_stats st0, st;
    char ip[32];
    const int N = 10000;

    (void)state;
    rs_init(&rs, BF_NAMES);
    rs_add_corr(&rs, BF);
    assert_int_equal(corr_resolve(&rs), FH_OK);
    e = corr_engine_new(&rs, NULL);
    corr_get_stats(e, &st0);
    /* N groups (src_ip=198.51.x.y,dest_ip=10.10.1.10) with 9 events each: the most an
     * event_count gte 10 group holds without firing */
    for (int k = 0; k < 9; k++)
        for (int i = 0; i < N; i++) {
            snprintf(ip, sizeof(ip), "198.51.%d.%d", i / 256, i % 256);
            corr_feed(e, 0, ev_pair(&t, ip, "10.10.1.10", k * 1000 + i), k * 1000 + i, NULL, NULL);
        }
    corr_get_stats(e, &st);
    assert_int_equal(st.groups_live, N);
    assert_int_equal(st.emits, 0);
    printf("[ memory ] event_count gte 10, 2 group-by fields, 9 events held: %zu bytes/group "
           "(incl. hash buckets; struct %zu, 10 entries %zu, 0 entries %zu)\n",
           (st.memory_bytes - st0.memory_bytes) / (size_t)N, corr_memory_per_group(&rs.corrs[0], 0),
           corr_memory_per_group(&rs.corrs[0], 10), corr_memory_per_group(&rs.corrs[0], 0));
    assert_true((st.memory_bytes - st0.memory_bytes) / (size_t)N < 400);
    corr_engine_free(e);
    rs_done(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_types),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_event_count_boundaries),
        cmocka_unit_test(test_event_count_groups_and_once),
        cmocka_unit_test(test_value_count),
        cmocka_unit_test(test_value_sum),
        cmocka_unit_test(test_temporal_any_order),
        cmocka_unit_test(test_temporal_ordered),
        cmocka_unit_test(test_chained_l3_10),
        cmocka_unit_test(test_late_events),
        cmocka_unit_test(test_at_close_silence),
        cmocka_unit_test(test_at_close_value_count),
        cmocka_unit_test(test_clock_policy),
        cmocka_unit_test(test_group_key_nul),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_memory_per_group),
        cmocka_unit_test(test_checkpoint_restore),
        cmocka_unit_test(test_restore_refuses),
        cmocka_unit_test(test_adopt_checkpoint),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
