/*
 * sigma.h - the Sigma rule model (specification v2) as the correlator runs it.
 *
 *   rule ─┬─ selections[]: named search identifiers
 *         │     a map      = AND of field conditions
 *         │     a list     = OR of maps (or of keyword strings)
 *         │     field condition = field|mod|mod: value or [values]  (OR, or AND with |all)
 *         └─ condition: AST over selection indices (and, or, not, x of, all of, them)
 *
 * Loading (sigma_load.c) reads multi-document YAML with libyaml, interns every
 * field path into the field_table, compiles each value into a value_matcher
 * (sigma_value.c) and each condition into a cond_node tree (sigma_cond.c).
 * Anything not supported is refused with file, line and reason; nothing is
 * silently ignored.
 *
 * Matching semantics (documented for rule authors in docs/rules.md):
 * - strings compare case-insensitively unless |cased; `*` and `?` are wildcards,
 *   `\*` `\?` `\\` escape them; |contains |startswith |endswith add wildcards;
 * - a list-valued event field (ndpi.risks) matches when any item matches;
 * - numbers in rules match numbers in events by value (`dest_port: 23`) and the
 *   string form of a number matches too ("23");
 * - `null` matches a field that is absent or JSON null; |exists true/false.
 */
#ifndef FH_SIGMA_H
#define FH_SIGMA_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "event.h"

/* ---- values ------------------------------------------------------------------ */

/* The case folding of every case-insensitive comparison (ASCII only), shared by the
 * matchers and the rule index, which must fold exactly alike. */
static inline unsigned char sigma_fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

typedef enum {
    VM_STRING,   /* glob pattern (wildcards after modifiers), case per `cased` */
    VM_REGEX,    /* |re (PCRE2), with |i |m |s sub-modifiers */
    VM_CIDR,     /* |cidr: IPv4 or IPv6 network */
    VM_NUMBER,   /* a YAML number compared for equality, or |gt |gte |lt |lte */
    VM_BOOL,     /* a YAML boolean */
    VM_NULL,     /* null: absent or JSON null */
    VM_EXISTS,   /* |exists: true or false */
    VM_FIELDREF, /* |fieldref: equal to another field of the same event */
} vm_kind;

typedef enum { NUM_EQ = 0, NUM_GT, NUM_GTE, NUM_LT, NUM_LTE } num_op;

typedef struct {
    vm_kind kind;
    bool cased;
    /* VM_STRING: the pattern after modifiers; `literal` when it has no wildcard
     * (then plain equality, the fast path). Lower-cased unless cased. */
    char *pattern;
    size_t pattern_len;
    bool literal;
    /* VM_REGEX */
    pcre2_code *re;
    pcre2_match_data *md;
    /* VM_CIDR */
    int family; /* AF_INET or AF_INET6 */
    uint8_t net[16];
    uint8_t prefix;
    /* VM_NUMBER */
    num_op op;
    double num;
    /* VM_BOOL, VM_EXISTS */
    bool b;
    /* VM_FIELDREF */
    field_id ref;
} value_matcher;

/*
 * One rule value as written in YAML, before compilation: the scalar text, its
 * YAML tag/style (a plain `23` is a number, `"23"` a string, `null`, `true`),
 * and where it came from for error messages.
 */
typedef enum { YV_STRING, YV_NUMBER, YV_BOOL, YV_NULL } yaml_value_type;

typedef struct {
    const char *text;
    size_t len;
    yaml_value_type type;
} yaml_value;

/*
 * Compiles one value under the field's modifiers (the names after the field,
 * in order, e.g. {"contains", "all"} — `all` and `expand` are handled by the
 * caller and must not be passed here). `ft` resolves |fieldref targets.
 * On error writes the reason ("unsupported modifier 'base64offset'",
 * "invalid regular expression: ... at offset 4", "invalid CIDR '10.0.0/8'")
 * to err and returns FH_ERR_PARSE / FH_ERR_CONFIG.
 */
fh_err sigma_value_compile(value_matcher *m, const char *const *mods, size_t nmods,
                           const yaml_value *v, field_table *ft, char *err, size_t errlen);
void sigma_value_free(value_matcher *m);

/* True if the field value v (of event ev, for fieldref) matches. */
bool sigma_value_match(const value_matcher *m, const sv *v, const event_view *ev);

/*
 * The text string, regex and CIDR matchers see for a scalar event value (a number's
 * JSON text, "true"/"false"), or NULL when it has none; buf holds at least 32 bytes.
 * sigma_value_bool: the boolean a VM_BOOL matcher sees (a JSON boolean or the
 * string "true"/"false" in any case); false when v has none.
 */
const char *sigma_value_text(const sv *v, char *buf, size_t bufsz, size_t *len);
bool sigma_value_bool(const sv *v, bool *out);
/* The numeric value comparisons see: a JSON number, or a string that is a strict decimal
 * number ([+-]digits[.digits][e[+-]digits]; no spaces, hex, inf or nan). */
bool sigma_value_number(const sv *v, double *out);

/* True if mod is a modifier this engine supports (for error messages). */
bool sigma_modifier_known(const char *mod);

/* ---- conditions --------------------------------------------------------------- */

typedef enum { CN_SEL, CN_AND, CN_OR, CN_NOT, CN_ONE_OF, CN_ALL_OF } cond_kind;

typedef struct cond_node cond_node;
struct cond_node {
    cond_kind kind;
    uint32_t sel;          /* CN_SEL: selection index */
    cond_node *a, *b;      /* CN_AND, CN_OR: both; CN_NOT: a */
    uint32_t *sels, nsels; /* CN_ONE_OF, CN_ALL_OF: the selections the pattern names */
};

/*
 * Parses a Sigma condition against the rule's selection names. Grammar (spec v2):
 *   expr := or ; or := and ("or" and)* ; and := not ("and" not)* ;
 *   not := "not" not | atom ; atom := "(" expr ")" | quant | NAME
 *   quant := ("1" | "all") "of" (NAME-with-wildcards | "them")
 * Keywords are case-insensitive; `them` means every selection whose name does not
 * start with "_"; a wildcard pattern must match at least one selection.
 * Errors: "condition: unknown selection 'x'", "...: unexpected ')' at column 12", ...
 */
fh_err sigma_cond_parse(const char *text, const char *const *sel_names, uint32_t nsel,
                        cond_node **out, char *err, size_t errlen);
void sigma_cond_free(cond_node *n);

/* Evaluates with a callback deciding selection idx (lazily, short-circuit). */
typedef bool (*sel_eval_fn)(void *ctx, uint32_t idx);
bool sigma_cond_eval(const cond_node *n, sel_eval_fn sel, void *ctx);

/* ---- rules -------------------------------------------------------------------- */

typedef struct {
    field_id field; /* FIELD_NONE for keyword searches (raw event text) */
    bool all;       /* |all: every value must match; else any */
    value_matcher *values;
    uint32_t nvalues;
} field_cond;

typedef struct {
    field_cond *conds; /* AND */
    uint32_t nconds;
} sel_map;

typedef struct {
    char *name;
    sel_map *maps; /* OR of maps (a plain map selection has exactly one) */
    uint32_t nmaps;
} selection;

typedef enum { LEVEL_INFORMATIONAL = 0, LEVEL_LOW, LEVEL_MEDIUM, LEVEL_HIGH, LEVEL_CRITICAL } level;

typedef struct {
    char *id, *name, *title, *description, *status, *author;
    char *title_zh; /* the title in Chinese (title_zh:), NULL: none */
    level lvl;
    char **tags;
    uint32_t ntags;
    char *logsource_product, *logsource_category, *logsource_service;
    /* The event type the logsource selects ("flow", "dns", "http", ...), NULL = any:
     * a rule is only evaluated on events of that type (sigma_load.c maps logsources). */
    char *event_type;
    uint32_t event_type_len;
    field_id event_type_field;
    selection *sels;
    uint32_t nsels;
    cond_node **conds; /* a list of conditions is their OR */
    uint32_t nconds;
    char *file;
    uint32_t line;
} sigma_rule;

/* True if the rule's detection matches the event. */
bool sigma_rule_match(const sigma_rule *r, const event_view *ev);

void sigma_rule_free(sigma_rule *r);

/* ---- loading ------------------------------------------------------------------ */

/* One problem found while loading: "file:line: reason". */
typedef struct {
    char *file;
    uint32_t line;
    char *rule; /* title or id when known, else NULL */
    char *reason;
} load_error;

struct corr_rule; /* correlation.h */

typedef struct {
    sigma_rule *rules;
    uint32_t nrules;
    struct corr_rule *corrs; /* correlation rules (correlation.c compiles them) */
    uint32_t ncorrs;
    load_error *errors;
    uint32_t nerrors;
    uint32_t files;
} ruleset;

/*
 * Loads every *.yml / *.yaml under `path` (a file or a directory, recursively,
 * in name order). Each document is compiled or refused: refused documents are
 * listed in rs->errors with file, line and reason, the others in rs->rules.
 * Returns FH_OK unless the path itself cannot be read (err filled).
 */
fh_err sigma_load(ruleset *rs, const char *path, field_table *ft, char *err, size_t errlen);

/*
 * As sigma_load, with placeholders for |expand resolved through `resolve`
 * (see lists.h; NULL: any |expand is refused).
 */
typedef fh_err (*sigma_placeholder_fn)(void *arg, const char *name, const char *const **values,
                                       size_t *n);
fh_err sigma_load_with(ruleset *rs, const char *path, field_table *ft, sigma_placeholder_fn resolve,
                       void *arg, char *err, size_t errlen);
void ruleset_free(ruleset *rs);

/* "FILE:LINE: rule 'TITLE': reason" (or without the rule part), via fh_error_at. */
void load_error_text(const load_error *le, char *buf, size_t len);

#endif
