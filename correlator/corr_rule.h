/*
 * corr_rule.h - Sigma correlation rules (specification v2): the model, compiling
 * one YAML document into it, and resolving references between rules
 * (corr_rule.c). The engine that evaluates them is correlation.h.
 *
 * Loading: sigma_load.c hands each YAML document with a `correlation` key to
 * corr_compile(); when every file is loaded, corr_resolve() binds the `rules`
 * references (by name or id, detection or correlation rules), applies `aliases`
 * to `group-by` and `condition.field` per referenced rule, and refuses unknown
 * or ambiguous references and cycles.
 *
 * Ownership: a corr_rule belongs to the ruleset (corr_rule_free()).
 */
#ifndef FH_CORR_RULE_H
#define FH_CORR_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "event.h"
#include "sigma.h"

typedef enum {
    CORR_EVENT_COUNT,
    CORR_VALUE_COUNT,
    CORR_VALUE_SUM,
    CORR_TEMPORAL,
    CORR_TEMPORAL_ORDERED,
} corr_type;

typedef enum { CORR_GT, CORR_GTE, CORR_LT, CORR_LTE, CORR_EQ, CORR_NEQ } corr_op;

typedef struct {
    corr_op op;
    double value;
} corr_cond;

#define CORR_MAX_CONDS   6  /* one of each operator at most */
#define CORR_MAX_REFS    32 /* referenced rules per correlation */
#define CORR_MAX_GROUPBY 16 /* group-by fields per correlation */

/* What a reference resolved to. */
typedef enum { CORR_REF_UNRESOLVED = 0, CORR_REF_RULE, CORR_REF_CORR } corr_ref_kind;

/*
 * One `aliases` entry as written: group-by name `alias` reads `field` in events
 * of the rule named `rule`. For a detection rule `field_id` is the interned
 * field; for a correlation rule the field must be one of its group-by names.
 */
typedef struct {
    char *alias, *rule, *field;
    field_id fid;
    uint32_t line;
} corr_alias;

/*
 * A referenced rule after corr_resolve(). `gb[k]` is what to read for group-by
 * entry k in a match of that rule, `value` the same for condition.field:
 *  - CORR_REF_RULE: field ids of the event (event_get);
 *  - CORR_REF_CORR: indices into the referenced correlation's group_by list
 *    (a chained match carries only its group-by values).
 */
typedef struct {
    char *name; /* as written in `rules` */
    uint32_t line;
    corr_ref_kind kind;
    uint32_t index; /* into ruleset.rules (RULE) or ruleset.corrs (CORR) */
    field_id gb[CORR_MAX_GROUPBY];
    field_id value; /* FIELD_NONE unless value_count / value_sum */
} corr_ref;

struct corr_rule {
    char *id, *name, *title, *description, *status, *author;
    char *title_zh; /* the title in Chinese (title_zh:), NULL: none */
    level lvl;
    bool level_set; /* `level` was written (else LEVEL_MEDIUM) */
    char **tags;
    uint32_t ntags;
    corr_type type;
    corr_ref refs[CORR_MAX_REFS];
    uint32_t nrefs;
    char *group_by[CORR_MAX_GROUPBY];        /* names as written (aliases or field paths) */
    field_id group_by_fid[CORR_MAX_GROUPBY]; /* interned, FIELD_NONE for an alias */
    uint32_t ngroup_by;
    corr_alias *aliases;
    uint32_t naliases;
    int64_t timespan_ms;
    corr_cond conds[CORR_MAX_CONDS]; /* AND; temporal without condition: gte nrefs */
    uint32_t nconds;
    bool at_close;      /* a condition has an upper bound: evaluated when windows close */
    char *value_field;  /* condition.field (value_count, value_sum), else NULL */
    field_id value_fid; /* interned value_field, FIELD_NONE if it is an alias name */
    bool generate;      /* referenced rules also alert on their own */
    char *file;
    uint32_t line;      /* of the document */
    uint32_t corr_line; /* of the `correlation` node (resolve errors point here) */
};

/*
 * Compiles one correlation document (root is its mapping; it has a `correlation`
 * key). Field names are interned verbatim with field_intern(). `out` must be
 * zeroed; the caller sets out->file and out->line and frees with corr_rule_free()
 * on success and failure alike. References are left unresolved (corr_resolve).
 * On error: returns FH_ERR_PARSE (or FH_ERR_LIMIT / FH_ERR_NOMEM), writes the
 * reason to err ("correlation type 'value_avg' is not supported (event_count,
 * ...)") and the 1-based line of the offending node to *err_line.
 */
struct yaml_document_s; /* <yaml.h>: only corr_rule.c and the loaders read YAML */
struct yaml_node_s;
fh_err corr_compile(struct yaml_document_s *doc, struct yaml_node_s *root, field_table *ft,
                    struct corr_rule *out, char *err, size_t errlen, uint32_t *err_line);

/*
 * Resolves every correlation's references against rs->rules and rs->corrs (by
 * name, then id; a reference matching two rules is ambiguous), applies aliases,
 * and refuses cycles of correlations. Each refused correlation is added to
 * rs->errors ("file:line: rule 'title': reason", line of its `correlation`) and
 * removed from rs->corrs, and so is every correlation that references it;
 * indices of the others are renumbered. Returns FH_OK, or FH_ERR_NOMEM.
 */
fh_err corr_resolve(ruleset *rs);

void corr_rule_free(struct corr_rule *r);

/*
 * Whether a match of detection rule `rule_index` should raise its own alert:
 * false when correlations reference it and none of them says `generate: true`
 * (specification: by default only the correlation is output). Correlation
 * rules referenced by other correlations are not covered: the caller decides.
 */
bool corr_rule_generates(const ruleset *rs, uint32_t rule_index);

#endif
