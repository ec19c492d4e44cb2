/*
 * test_rule_index.c - the rule index (rule_index.c): what it derives from each
 * construct, and that it never holds back a rule that matches.
 *
 * 1. Analysis: a rule per construct, its requirements compared as text.
 * 2. Soundness on crafted events that stress the matching rules (case, lists,
 *    "true" strings, numbers as text, null, objects): for every event and rule,
 *    sigma_rule_match true => the rule is a candidate; and the index does filter.
 * 3. Soundness on the shipped level-3 pack over every rule-pack test event
 *    (tests/rules/ * /events.ndjson) through the engine, with the asset enrichment.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../correlator/engine.h"
#include "../../../correlator/event_json.h"
#include "../../../correlator/rule_index.h"
#include "../../../correlator/sigma.h"

#define FLOW "logsource: {product: fenghuo, category: flow}\n"

/* name, then the requirements the index must find ("" = none) */
static const struct {
    const char *name, *doc, *want;
} CASES[] = {
    {"and",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {dest_asset.known: true}\n"
          "  condition: a and b\n",
     "event_type in {flow}; app_proto in {ssh}; dest_asset.known in {true}"},
    {"map", FLOW "detection:\n  a: {app_proto: [ssh, RDP], proto: TCP}\n  condition: a\n",
     "event_type in {flow}; app_proto in {ssh, rdp}; proto in {tcp}"},
    {"or_same",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {app_proto: rdp, proto: TCP}\n"
          "  condition: a or b\n",
     "event_type in {flow}; app_proto in {ssh, rdp}"},
    {"or_other",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {ndpi.risks: X}\n"
          "  condition: a or b\n",
     "event_type in {flow}"},
    {"not",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {proto: TCP}\n"
          "  condition: not a and b\n",
     "event_type in {flow}; proto in {tcp}"},
    {"not_or",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {proto: TCP}\n"
          "  condition: not (a or b)\n",
     "event_type in {flow}"},
    {"wildcard", FLOW "detection:\n  a: {app_proto: 'ss*'}\n  condition: a\n",
     "event_type in {flow}"},
    {"mixed_values", FLOW "detection:\n  a: {app_proto: [ssh, 'rd?']}\n  condition: a\n",
     "event_type in {flow}"},
    {"contains", FLOW "detection:\n  a: {http.url|contains: x}\n  condition: a\n",
     "event_type in {flow}"},
    {"escaped", FLOW "detection:\n  a: {app_proto: 'a\\*B'}\n  condition: a\n",
     "event_type in {flow}; app_proto in {a*b}"},
    {"cased", FLOW "detection:\n  a: {app_proto|cased: SSH}\n  condition: a\n",
     "event_type in {flow}; app_proto in {ssh}"},
    {"all", FLOW "detection:\n  a: {ndpi.risks|all: [A, B]}\n  condition: a\n",
     "event_type in {flow}; ndpi.risks in {a, b}"},
    {"number", FLOW "detection:\n  a: {dest_port: 23}\n  condition: a\n", "event_type in {flow}"},
    {"string_number", FLOW "detection:\n  a: {dest_port: '23'}\n  condition: a\n",
     "event_type in {flow}; dest_port in {23}"},
    {"bools", FLOW "detection:\n  a: {src_internet: [true, false]}\n  condition: a\n",
     "event_type in {flow}; src_internet in {true, false}"},
    {"null", FLOW "detection:\n  a: {http.hostname: null}\n  condition: a\n",
     "event_type in {flow}"},
    {"exists", FLOW "detection:\n  a: {http.hostname|exists: true}\n  condition: a\n",
     "event_type in {flow}"},
    {"cidr", FLOW "detection:\n  a: {src_ip|cidr: 10.0.0.0/8}\n  condition: a\n",
     "event_type in {flow}"},
    {"list_of_maps",
     FLOW "detection:\n  a:\n    - {app_proto: ssh, proto: TCP}\n"
          "    - {app_proto: rdp}\n  condition: a\n",
     "event_type in {flow}; app_proto in {ssh, rdp}"},
    {"one_of",
     FLOW "detection:\n  s_1: {app_proto: ssh}\n  s_2: {app_proto: vnc}\n"
          "  condition: 1 of s_*\n",
     "event_type in {flow}; app_proto in {ssh, vnc}"},
    {"all_of",
     FLOW "detection:\n  s_1: {app_proto: ssh}\n  s_2: {proto: TCP}\n"
          "  condition: all of s_*\n",
     "event_type in {flow}; app_proto in {ssh}; proto in {tcp}"},
    {"same_field_and",
     FLOW "detection:\n  a: {ndpi.risks: A}\n  b: {ndpi.risks: B}\n"
          "  condition: a and b\n",
     "event_type in {flow}; ndpi.risks in {a}"},
    {"conditions",
     FLOW "detection:\n  a: {app_proto: ssh}\n  b: {app_proto: rdp}\n"
          "  condition: [a, b]\n",
     "event_type in {flow}; app_proto in {ssh, rdp}"},
    {"keywords", FLOW "detection:\n  k: [evil]\n  condition: k\n", "event_type in {flow}"},
    {"empty_literal", FLOW "detection:\n  a: {app_proto: ''}\n  condition: a\n",
     "event_type in {flow}; app_proto in {}"},
    {"any_type",
     "logsource: {product: fenghuo}\ndetection:\n  a: {app_proto: dns}\n"
     "  condition: a\n",
     "app_proto in {dns}"},
    {"http",
     "logsource: {product: fenghuo, category: http}\ndetection:\n"
     "  a: {http.http_method: POST}\n  condition: a\n",
     "event_type in {http}; http.http_method in {post}"},
};
#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static field_table ft;
static ruleset rs;
static event_decoder *dec;
static rule_index *ix;

static int setup(void **state)
{
    char path[64], err[512];
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "/tmp/fh-test-rix-%d.yml", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < NCASES; i++)
        fprintf(f, "%stitle: %s\n%s", i ? "---\n" : "", CASES[i].name, CASES[i].doc);
    fclose(f);
    field_table_init(&ft);
    assert_int_equal(sigma_load(&rs, path, &ft, err, sizeof(err)), FH_OK);
    unlink(path);
    if (rs.nerrors)
        fail_msg("%s:%u: %s", rs.errors[0].file, rs.errors[0].line, rs.errors[0].reason);
    assert_int_equal(rs.nrules, NCASES);
    assert_int_equal(event_decoder_new(&dec, &ft), FH_OK);
    assert_int_equal(rule_index_build(&ix, rs.rules, rs.nrules), FH_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rule_index_free(ix);
    event_decoder_free(dec);
    ruleset_free(&rs);
    field_table_free(&ft);
    return 0;
}

static void test_analysis(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < rs.nrules; i++) {
        char got[1024] = "";

        assert_string_equal(rs.rules[i].title, CASES[i].name);
        rule_index_describe(ix, &ft, i, got, sizeof(got));
        if (strcmp(got, CASES[i].want) != 0)
            fail_msg("rule '%s': got \"%s\", want \"%s\"", CASES[i].name, got, CASES[i].want);
    }
}

static void test_info(void **state)
{
    rule_index_info info;

    (void)state;
    rule_index_get_info(ix, &info);
    assert_int_equal(info.rules, NCASES);
    assert_int_equal(info.unindexed, 0); /* every case has event_type or app_proto */
    /* event_type app_proto dest_asset.known proto ndpi.risks dest_port src_internet
     * http.http_method */
    assert_int_equal(info.fields, 8);
}

/* Checks every rule on the event: match => candidate. Returns the candidate count. */
static uint32_t check_event(const char *json)
{
    uint32_t cand[NCASES], n, matches = 0;
    event_view ev;
    char err[256];

    if (event_decode(dec, json, strlen(json), &ev, err, sizeof(err)) != FH_OK)
        fail_msg("cannot decode %s: %s", json, err);
    n = rule_index_candidates(ix, &ev, cand);
    for (uint32_t k = 1; k < n; k++)
        assert_true(cand[k - 1] < cand[k]); /* rule order */
    for (uint32_t i = 0; i < rs.nrules; i++) {
        bool is_cand = false;

        for (uint32_t k = 0; k < n; k++)
            is_cand |= cand[k] == i;
        if (sigma_rule_match(&rs.rules[i], &ev)) {
            matches++;
            if (!is_cand)
                fail_msg("rule '%s' matches but the index held it back: %s", CASES[i].name, json);
        }
    }
    return n;
}

static void test_sound_on_crafted_events(void **state)
{
    static const char *EVENTS[] = {
        "{\"event_type\":\"flow\",\"app_proto\":\"SSH\",\"proto\":\"tcp\","
        "\"dest_asset\":{\"known\":true}}",
        "{\"event_type\":\"flow\",\"app_proto\":\"rdp\",\"dest_asset\":{\"known\":\"TRUE\"}}",
        "{\"event_type\":\"flow\",\"ndpi\":{\"risks\":[\"b\",\"A\"]}}",
        "{\"event_type\":\"flow\",\"ndpi\":{\"risks\":[[\"a\"],\"x\"]}}",
        "{\"event_type\":\"flow\",\"dest_port\":23,\"src_internet\":false}",
        "{\"event_type\":\"flow\",\"dest_port\":\"23\",\"src_internet\":\"false\"}",
        "{\"event_type\":\"flow\",\"dest_port\":23.0,\"src_internet\":0}",
        "{\"event_type\":\"flow\",\"app_proto\":\"A*B\"}",
        "{\"event_type\":\"flow\",\"app_proto\":\"\"}",
        "{\"event_type\":\"flow\",\"app_proto\":null,\"http\":{\"url\":\"/x\"}}",
        "{\"event_type\":\"flow\",\"app_proto\":{\"nested\":1}}",
        "{\"event_type\":\"flow\",\"app_proto\":[\"tcp\",\"ssh\"],\"proto\":[\"TCP\"]}",
        "{\"event_type\":\"flow\",\"src_ip\":\"10.1.2.3\",\"payload\":\"evil\"}",
        "{\"event_type\":\"flow\",\"app_proto\":\"vnc\"}",
        "{\"event_type\":\"http\",\"app_proto\":\"dns\",\"http\":{\"http_method\":\"post\"}}",
        "{\"event_type\":\"FLOW\",\"app_proto\":\"ssh\"}",
        "{\"app_proto\":\"dns\"}",
        "{\"event_type\":\"flow\",\"app_proto\":\"ssh\",\"dest_asset.known\":true}",
    };
    uint32_t total = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(EVENTS) / sizeof(EVENTS[0]); i++)
        total += check_event(EVENTS[i]);
    /* The http event reaches the http rule and any_type only. */
    assert_int_equal(check_event(EVENTS[14]), 2);
    /* The index filters: far fewer candidates than rules x events. */
    assert_true(total < NCASES * (sizeof(EVENTS) / sizeof(EVENTS[0])) / 2);
}

/* ---- the shipped pack ------------------------------------------------------------ */

static uint32_t pack_events, pack_matches;
static uint64_t pack_evaluated;

static void check_pack_file(engine *e, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t n;

    assert_non_null(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        event_view ev;
        uint32_t nc;

        if (n <= 1 || event_decode(e->dec, line, (size_t)n, &ev, err, sizeof(err)) != FH_OK)
            continue;
        assets_enrich(e->inv, &e->af, event_decoder_slots(e->dec), e->ft.n, ev.ts_ms);
        nc = rule_index_candidates(e->ix, &ev, e->cand);
        pack_events++;
        pack_evaluated += nc;
        for (uint32_t i = 0; i < e->rs.nrules; i++) {
            bool is_cand = false;

            if (!sigma_rule_match(&e->rs.rules[i], &ev))
                continue;
            pack_matches++;
            for (uint32_t k = 0; k < nc; k++)
                is_cand |= e->cand[k] == i;
            if (!is_cand)
                fail_msg("%s: rule '%s' matches but the index held it back: %.*s", path,
                         e->rs.rules[i].title, (int)n, line);
        }
    }
    free(line);
    fclose(f);
}

static void test_sound_on_level3_pack(void **state)
{
    engine_config cfg = {"rules/level3", NULL, "rules/assets.example.yaml"};
    struct dirent **names;
    engine *e;
    char err[512];
    int n;

    (void)state;
    if (engine_open(&e, &cfg, err, sizeof(err)) != FH_OK)
        fail_msg("engine_open: %s", err);
    n = scandir("tests/rules", &names, NULL, alphasort);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char path[1024];

        snprintf(path, sizeof(path), "tests/rules/%s/events.ndjson", names[i]->d_name);
        if (names[i]->d_name[0] != '.' && access(path, R_OK) == 0)
            check_pack_file(e, path);
        free(names[i]);
    }
    free(names);
    print_message("level-3 pack: %u events, %u rule matches, %.2f of %u rules evaluated per "
                  "event\n",
                  pack_events, pack_matches, (double)pack_evaluated / pack_events, e->rs.nrules);
    assert_true(pack_events >= 100);
    assert_true(pack_matches >= 28); /* every rule has a positive case */
    assert_true(pack_evaluated < (uint64_t)pack_events * e->rs.nrules / 2);
    engine_free(e);
}

/* Loads the rule text `doc` (one document) into its own rule set and index. */
static void load_one(const char *doc, field_table *t, ruleset *r, rule_index **x)
{
    char path[64], err[512];
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/fh-test-rix1-%d.yml", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(doc, f);
    fclose(f);
    field_table_init(t);
    assert_int_equal(sigma_load(r, path, t, err, sizeof(err)), FH_OK);
    unlink(path);
    if (r->nerrors)
        fail_msg("%s:%u: %s", r->errors[0].file, r->errors[0].line, r->errors[0].reason);
    assert_int_equal(r->nrules, 1);
    assert_int_equal(rule_index_build(x, r->rules, r->nrules), FH_OK);
}

static void free_one(field_table *t, ruleset *r, rule_index *x)
{
    rule_index_free(x);
    ruleset_free(r);
    field_table_free(t);
}

/*
 * Conditions of 100,000 terms ("a or b or a ..."): the chain is walked without
 * recursion (it once overflowed the stack here, ASan: node_reqs) and gives what the
 * two-term condition gives.
 */
static void test_long_chains(void **state)
{
    static const char *const ops[] = {"or", "and"};
    /* (past 64 keys a requirement's keys are kept sorted) */
    static const char *const want[] = {"event_type in {flow}; app_proto in {rdp, ssh}",
                                       "event_type in {flow}; app_proto in {ssh}; proto in {tcp}"};

    (void)state;
    for (int k = 0; k < 2; k++) {
        size_t n = 100000, cap = n * 8 + 256, off;
        char *doc = malloc(cap), got[256] = "";
        field_table t;
        ruleset r;
        rule_index *x;

        assert_non_null(doc);
        off = (size_t)snprintf(doc, cap,
                               "title: long\n" FLOW "detection:\n  a: {app_proto: ssh}\n"
                               "  b: {%s}\n  condition: a",
                               k == 0 ? "app_proto: rdp" : "proto: TCP");
        for (size_t i = 1; i < n; i++)
            off += (size_t)snprintf(doc + off, cap - off, " %s %c", ops[k], i % 2 ? 'b' : 'a');
        snprintf(doc + off, cap - off, "\n");
        load_one(doc, &t, &r, &x);
        rule_index_describe(x, &t, 0, got, sizeof(got));
        assert_string_equal(got, want[k]);
        free_one(&t, &r, x);
        free(doc);
    }
}

/*
 * An inline list of 200,000 values, each twice: every distinct value is one key
 * (duplicates removed in bulk, not by a scan per value), none is lost.
 */
static void test_long_value_list(void **state)
{
    size_t n = 100000, cap = n * 2 * 24 + 256, off;
    char *doc = malloc(cap);
    field_table t;
    ruleset r;
    rule_index *x;
    rule_index_info info;
    uint32_t cand[1];
    event_view ev;
    event_decoder *d;
    char err[256];

    (void)state;
    assert_non_null(doc);
    off = (size_t)snprintf(doc, cap, "title: iocs\n" FLOW "detection:\n  a:\n    dest_ip:\n");
    for (size_t rep = 0; rep < 2; rep++)
        for (size_t i = 0; i < n; i++)
            off += (size_t)snprintf(doc + off, cap - off, "      - 10.%zu.%zu.%zu\n", i >> 16,
                                    (i >> 8) & 255, i & 255);
    snprintf(doc + off, cap - off, "  condition: a\n");
    load_one(doc, &t, &r, &x);
    rule_index_get_info(x, &info);
    assert_int_equal(info.keys, n + 1); /* the addresses and event_type "flow" */
    assert_int_equal(event_decoder_new(&d, &t), FH_OK);
    {
        static const char *const hits[] = {
            "{\"event_type\":\"flow\",\"dest_ip\":\"10.0.0.0\"}",
            "{\"event_type\":\"flow\",\"dest_ip\":\"10.1.134.159\"}", /* the last one */
        };
        static const char *miss = "{\"event_type\":\"flow\",\"dest_ip\":\"10.1.134.160\"}";

        for (int i = 0; i < 2; i++) {
            assert_int_equal(event_decode(d, hits[i], strlen(hits[i]), &ev, err, sizeof(err)),
                             FH_OK);
            assert_int_equal(rule_index_candidates(x, &ev, cand), 1);
            assert_true(sigma_rule_match(&r.rules[0], &ev));
        }
        assert_int_equal(event_decode(d, miss, strlen(miss), &ev, err, sizeof(err)), FH_OK);
        assert_int_equal(rule_index_candidates(x, &ev, cand), 0);
    }
    event_decoder_free(d);
    free_one(&t, &r, x);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analysis),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_sound_on_crafted_events),
        cmocka_unit_test(test_sound_on_level3_pack),
        cmocka_unit_test(test_long_chains),
        cmocka_unit_test(test_long_value_list),
    };

    return cmocka_run_group_tests_name("rule_index", tests, setup, teardown);
}
