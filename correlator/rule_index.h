/*
 * rule_index.h - which detection rules could match an event, found without
 * evaluating them.
 *
 * Most rules of a pack cannot match most events: a rule for SSH logins needs
 * `app_proto` to be one of a few names, a rule on web attacks needs an `http`
 * event, an exposure rule needs `src_internet: true`. Evaluating every rule on every
 * event spends most of the correlator's time proving that again and again.
 *
 * At load, each rule's condition is analysed for what it REQUIRES: a field that must
 * equal one of a set of literal values for the rule to match at all. Requirements
 * come from
 *   - the logsource (event_type),
 *   - field conditions with literal strings (no wildcard left after modifiers) or
 *     booleans, in a selection the condition ANDs in;
 * and combine up the condition tree: `a and b` requires what either requires; `a or
 * b` only what both require on the same field (the union of their values); `not`
 * requires nothing. Wildcards, regexes, CIDRs, numbers, null and exists add no
 * requirement. The result is a NECESSARY condition: the index may pass a rule that
 * then fails, it never holds back one that would match (matching follows
 * sigma_value_match exactly: case-folded text, list fields by item, "true"/"false"
 * strings as booleans).
 *
 * Per event: for each indexed field, one hash lookup per value (per item of a list)
 * gives the rules whose requirement on that field the event meets; a rule remains a
 * candidate when it meets every requirement it has. Candidates come out in rule
 * order, so callers see the same matches, in the same order, as a scan of all rules.
 *
 * Not thread-safe (per-event scratch lives in the index): one per engine.
 */
#ifndef FH_RULE_INDEX_H
#define FH_RULE_INDEX_H

#include <stdint.h>

#include "../common/fh_error.h"
#include "event.h"
#include "sigma.h"

typedef struct rule_index rule_index;

typedef struct {
    uint32_t rules;        /* rules indexed */
    uint32_t unindexed;    /* rules with no requirement: candidates for every event */
    uint32_t fields;       /* distinct fields looked up per event */
    uint32_t keys;         /* (field, value) entries */
    uint32_t requirements; /* requirements over all rules */
} rule_index_info;

/* Builds the index of rules[0..nrules) (which must outlive it). FH_ERR_NOMEM only. */
fh_err rule_index_build(rule_index **out, const sigma_rule *rules, uint32_t nrules);
void rule_index_free(rule_index *ix);

/*
 * Writes the numbers of the rules that may match ev, ascending, to out (room for
 * nrules) and returns how many.
 */
uint32_t rule_index_candidates(rule_index *ix, const event_view *ev, uint32_t *out);

void rule_index_get_info(const rule_index *ix, rule_index_info *info);

/*
 * The requirements found for rule i, for tests and `--check-rules -v`: appends
 * "field in {v1, v2}; field2 in {...}" (bool values as true/false) to buf.
 */
void rule_index_describe(const rule_index *ix, const field_table *ft, uint32_t i, char *buf,
                         size_t len);

#endif
