/*
 * correlation.c - Sigma correlation rules: compile (YAML document -> corr_rule),
 * resolve (references, aliases, cycles) and the streaming engine (see
 * correlation.h for the contract and README-correlation.md for the design).
 *
 * Engine layout: one hash table of groups for all rules, keyed by (rule index,
 * canonical group key), chained, FNV-1a with a constant basis (deterministic),
 * doubled when the load passes 3/4. Each rule keeps its groups on an LRU list
 * (head = most recently fed) used for eviction at the caps and for expiry of
 * idle groups by event time. A group holds what its type needs:
 *
 *   event_count   sorted timestamps, at most `need` (the threshold)
 *   value_count   distinct values (64-bit hash of the text) with last-seen time
 *   value_sum     sorted (timestamp, value) pairs, merged when the cap is hit
 *   temporal      last time each referenced rule matched
 *   temporal_ord. per stage the best partial chain (start, end)
 *   at-close      window start, count / sum / distinct set of the open window
 */
#include "correlation.h"

#include "alerts.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX        2048 /* bytes of a group key (plus values); longer keys are refused */
#define DEF_MAX_GROUPS 100000u
#define DEF_MAX_MEM    (256u * 1024 * 1024)
#define DEF_MAX_ENT    4096u
#define DEF_MAX_AHEAD  (24 * 3600 * 1000LL) /* 24 h */
#define DEF_RESYNC     8u
#define NO_TS          INT64_MIN
#define SWEEP_STEP_MS  1000 /* event time between two sweeps of at-close windows */

/* ---- compile ----------------------------------------------------------------------- */

typedef struct {
    yaml_document_t *doc;
    field_table *ft;
    char *err;
    size_t errlen;
    uint32_t *err_line;
    fh_err code;
} cctx;

static bool cfail(cctx *c, yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool cfail(cctx *c, yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    if (c->err_line)
        *c->err_line = n ? (uint32_t)n->start_mark.line + 1 : 0;
    if (c->code == FH_OK)
        c->code = FH_ERR_PARSE;
    return false;
}

static yaml_node_t *ynode(cctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *yscalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *ymap_get(cctx *c, yaml_node_t *m, const char *k)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *key = yscalar(ynode(c, p->key));

        if (key && strcmp(key, k) == 0)
            return ynode(c, p->value);
    }
    return NULL;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

/* A string-valued metadata key: scalar or absent. */
static bool dup_meta(cctx *c, yaml_node_t *root, const char *k, char **out)
{
    yaml_node_t *n = ymap_get(c, root, k);

    if (!n)
        return true;
    if (!yscalar(n))
        return cfail(c, n, "'%s' must be a string", k);
    *out = strdup(yscalar(n));
    if (!*out) {
        c->code = FH_ERR_NOMEM;
        return cfail(c, n, "out of memory");
    }
    return true;
}

static bool parse_bool(cctx *c, yaml_node_t *n, const char *what, bool *out)
{
    const char *s = yscalar(n);

    if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
        *out = true;
        return true;
    }
    if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
        *out = false;
        return true;
    }
    return cfail(c, n, "'%s' must be true or false", what);
}

/* "30s", "5m", "1h", "1d" -> ms. */
static bool parse_timespan(cctx *c, yaml_node_t *n, int64_t *ms)
{
    const char *s = yscalar(n);
    size_t len;
    int64_t v = 0, unit;

    if (!s)
        return cfail(c, n, "'timespan' must be a string such as 30s, 5m, 1h or 1d");
    len = strlen(s);
    if (len < 2 || strspn(s, "0123456789") != len - 1)
        return cfail(c, n,
                     "invalid timespan '%s' (a number and one of s, m, h, d: 30s, 5m, "
                     "1h, 1d)",
                     s);
    switch (s[len - 1]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    default:
        return cfail(c, n, "invalid timespan unit '%c' in '%s' (s, m, h or d)", s[len - 1], s);
    }
    for (size_t i = 0; i + 1 < len; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > INT64_MAX / unit / 10)
            return cfail(c, n, "timespan '%s' is too long", s);
    }
    if (v == 0)
        return cfail(c, n, "timespan '%s' must be longer than zero", s);
    *ms = v * unit;
    return true;
}

static const char *const op_names[] = {"gt", "gte", "lt", "lte", "eq", "neq"};

static bool parse_condition(cctx *c, yaml_node_t *cn, struct corr_rule *r)
{
    bool seen[6] = {false};
    bool counts = r->type != CORR_VALUE_SUM;

    if (cn->type != YAML_MAPPING_NODE)
        return cfail(c, cn, "'condition' must be a map such as {gte: 10}");
    for (yaml_node_pair_t *p = cn->data.mapping.pairs.start; p < cn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ynode(c, p->key), *vn = ynode(c, p->value);
        const char *k = yscalar(kn), *v = yscalar(vn);
        int op = -1;
        char *end;
        double d;

        if (!k)
            return cfail(c, kn, "condition keys must be strings");
        if (!strcmp(k, "field")) {
            if (r->type != CORR_VALUE_COUNT && r->type != CORR_VALUE_SUM)
                return cfail(c, kn,
                             "'field' in the condition is only for value_count and "
                             "value_sum");
            if (vn->type == YAML_SEQUENCE_NODE)
                return cfail(c, vn,
                             "condition 'field' must be one field name (a list is not "
                             "supported)");
            if (!v || !*v)
                return cfail(c, vn, "condition 'field' must be a field name");
            r->value_field = strdup(v);
            if (!r->value_field) {
                c->code = FH_ERR_NOMEM;
                return cfail(c, vn, "out of memory");
            }
            continue;
        }
        for (int i = 0; i < 6; i++)
            if (!strcmp(k, op_names[i]))
                op = i;
        if (op < 0)
            return cfail(c, kn, "unknown condition '%s' (gt, gte, lt, lte, eq, neq%s)", k,
                         r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM ? ", field" : "");
        if (seen[op])
            return cfail(c, kn, "condition '%s' is given twice", k);
        seen[op] = true;
        if (!v || !*v)
            return cfail(c, vn, "condition '%s' needs a number", k);
        d = strtod(v, &end);
        if (*end || !isfinite(d))
            return cfail(c, vn, "condition '%s': '%s' is not a number", k, v);
        if (counts && (d < 0 || d != floor(d)))
            return cfail(c, vn, "condition '%s' counts: '%s' must be a whole number >= 0", k, v);
        if (r->type == CORR_TEMPORAL && op != CORR_GT && op != CORR_GTE)
            return cfail(c, kn,
                         "temporal condition '%s' is not supported (gt or gte: how "
                         "many of the rules must match)",
                         k);
        r->conds[r->nconds].op = (corr_op)op;
        r->conds[r->nconds].value = d;
        r->nconds++;
        if (op != CORR_GT && op != CORR_GTE)
            r->at_close = true;
    }
    if (r->nconds == 0)
        return cfail(c, cn, "condition has no comparison (gt, gte, lt, lte, eq, neq)");
    if ((r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM) && !r->value_field)
        return cfail(c, cn, "%s needs 'field' in the condition",
                     r->type == CORR_VALUE_COUNT ? "value_count" : "value_sum");
    return true;
}

static bool parse_rules(cctx *c, yaml_node_t *rn, struct corr_rule *r)
{
    if (rn->type != YAML_SEQUENCE_NODE)
        return cfail(c, rn, "'rules' must be a list of rule names or ids");
    for (yaml_node_item_t *it = rn->data.sequence.items.start; it < rn->data.sequence.items.top;
         it++) {
        yaml_node_t *n = ynode(c, *it);
        const char *s = yscalar(n);

        if (!s || !*s)
            return cfail(c, n, "'rules' items must be rule names or ids");
        if (r->nrefs == CORR_MAX_REFS)
            return cfail(c, n, "too many rules (limit %d)", CORR_MAX_REFS);
        for (uint32_t i = 0; i < r->nrefs; i++)
            if (!strcmp(r->refs[i].name, s))
                return cfail(c, n, "rule '%s' is listed twice", s);
        r->refs[r->nrefs].name = strdup(s);
        if (!r->refs[r->nrefs].name) {
            c->code = FH_ERR_NOMEM;
            return cfail(c, n, "out of memory");
        }
        r->refs[r->nrefs].line = (uint32_t)n->start_mark.line + 1;
        r->refs[r->nrefs].value = FIELD_NONE;
        for (int k = 0; k < CORR_MAX_GROUPBY; k++)
            r->refs[r->nrefs].gb[k] = FIELD_NONE;
        r->nrefs++;
    }
    if (r->nrefs == 0)
        return cfail(c, rn, "'rules' is empty");
    return true;
}

static bool parse_aliases(cctx *c, yaml_node_t *an, struct corr_rule *r)
{
    size_t n = 0;

    if (an->type != YAML_MAPPING_NODE)
        return cfail(c, an, "'aliases' must be a map: alias -> {rule name: field}");
    for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top; p++) {
        yaml_node_t *vn = ynode(c, p->value);

        if (!yscalar(ynode(c, p->key)))
            return cfail(c, ynode(c, p->key), "alias names must be strings");
        if (vn->type != YAML_MAPPING_NODE)
            return cfail(c, vn, "alias '%s' must map rule names to fields",
                         yscalar(ynode(c, p->key)));
        n += (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start);
    }
    r->aliases = calloc(n ? n : 1, sizeof(*r->aliases));
    if (!r->aliases) {
        c->code = FH_ERR_NOMEM;
        return cfail(c, an, "out of memory");
    }
    for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top; p++) {
        const char *alias = yscalar(ynode(c, p->key));
        yaml_node_t *vn = ynode(c, p->value);

        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top;
             q++) {
            yaml_node_t *rk = ynode(c, q->key), *fv = ynode(c, q->value);
            corr_alias *a = &r->aliases[r->naliases];

            if (!yscalar(rk) || !yscalar(fv) || !*yscalar(fv))
                return cfail(c, fv, "alias '%s': each entry is 'rule name: field'", alias);
            a->alias = strdup(alias);
            a->rule = strdup(yscalar(rk));
            a->field = strdup(yscalar(fv));
            a->line = (uint32_t)rk->start_mark.line + 1;
            a->fid = FIELD_NONE;
            r->naliases++;
            if (!a->alias || !a->rule || !a->field) {
                c->code = FH_ERR_NOMEM;
                return cfail(c, fv, "out of memory");
            }
        }
    }
    return true;
}

static bool is_alias(const struct corr_rule *r, const char *name)
{
    for (uint32_t i = 0; i < r->naliases; i++)
        if (!strcmp(r->aliases[i].alias, name))
            return true;
    return false;
}

static bool intern(cctx *c, yaml_node_t *n, const char *name, field_id *out)
{
    *out = field_intern(c->ft, name);
    if (*out == FIELD_NONE) {
        c->code = FH_ERR_LIMIT;
        return cfail(c, n, "too many distinct fields in the loaded rules (limit %d)", FIELD_MAX);
    }
    return true;
}

static bool parse_group_by(cctx *c, yaml_node_t *gn, struct corr_rule *r)
{
    if (gn->type != YAML_SEQUENCE_NODE)
        return cfail(c, gn, "'group-by' must be a list of field names");
    for (yaml_node_item_t *it = gn->data.sequence.items.start; it < gn->data.sequence.items.top;
         it++) {
        yaml_node_t *n = ynode(c, *it);
        const char *s = yscalar(n);

        if (!s || !*s)
            return cfail(c, n, "'group-by' items must be field names");
        if (r->ngroup_by == CORR_MAX_GROUPBY)
            return cfail(c, n, "too many group-by fields (limit %d)", CORR_MAX_GROUPBY);
        for (uint32_t i = 0; i < r->ngroup_by; i++)
            if (!strcmp(r->group_by[i], s))
                return cfail(c, n, "group-by field '%s' is listed twice", s);
        r->group_by[r->ngroup_by] = strdup(s);
        if (!r->group_by[r->ngroup_by]) {
            c->code = FH_ERR_NOMEM;
            return cfail(c, n, "out of memory");
        }
        r->group_by_fid[r->ngroup_by] = FIELD_NONE;
        if (!is_alias(r, s) && !intern(c, n, s, &r->group_by_fid[r->ngroup_by]))
            return false;
        r->ngroup_by++;
    }
    return true;
}

static const char *const corr_keys[] = {"type",      "rules",   "group-by", "timespan",
                                        "condition", "aliases", "generate", NULL};
static const char *const top_keys[] = {
    "title",      "title_zh", "id",       "name",        "status",         "description", "author",
    "references", "date",     "modified", "correlation", "falsepositives", "level",       "tags",
    "generate",   "fields",   "license",  "related",     "taxonomy",       "scope",       NULL};
static const char *const type_names[] = {"event_count", "value_count", "value_sum", "temporal",
                                         "temporal_ordered"};

static bool compile(cctx *c, yaml_node_t *root, struct corr_rule *r)
{
    yaml_node_t *cn, *n, *gen_top, *gen_corr;
    const char *s;

    if (!root || root->type != YAML_MAPPING_NODE)
        return cfail(c, root, "a rule document must be a map");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = ynode(c, p->key);
        const char *k = yscalar(kn);

        if (!k)
            return cfail(c, kn, "keys must be strings");
        if (!strcmp(k, "detection") || !strcmp(k, "logsource"))
            return cfail(c, kn,
                         "a correlation rule has no '%s' (put the detection rule in its "
                         "own document and reference it in 'rules')",
                         k);
        if (!in_list(k, top_keys))
            return cfail(c, kn, "unknown key '%s' in a correlation rule", k);
    }
    cn = ymap_get(c, root, "correlation");
    if (!cn)
        return cfail(c, root, "missing 'correlation'");
    r->corr_line = (uint32_t)cn->start_mark.line + 1;
    if (!dup_meta(c, root, "title", &r->title) || !dup_meta(c, root, "id", &r->id) ||
        !dup_meta(c, root, "name", &r->name) || !dup_meta(c, root, "status", &r->status) ||
        !dup_meta(c, root, "description", &r->description) ||
        !dup_meta(c, root, "author", &r->author))
        return false;
    if (!r->title)
        return cfail(c, root, "missing 'title'");
    r->lvl = LEVEL_MEDIUM;
    if ((n = ymap_get(c, root, "level"))) {
        static const char *lv[] = {"informational", "low", "medium", "high", "critical"};
        bool ok = false;

        for (int i = 0; yscalar(n) && i < 5; i++)
            if (!strcasecmp(yscalar(n), lv[i])) {
                r->lvl = (level)i;
                ok = true;
            }
        if (!ok)
            return cfail(c, n, "unknown level '%s'", yscalar(n) ? yscalar(n) : "(not a string)");
        r->level_set = true;
    }
    if ((n = ymap_get(c, root, "tags"))) {
        size_t nt;

        if (n->type != YAML_SEQUENCE_NODE)
            return cfail(c, n, "'tags' must be a list of strings");
        nt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        r->tags = calloc(nt ? nt : 1, sizeof(char *));
        if (!r->tags) {
            c->code = FH_ERR_NOMEM;
            return cfail(c, n, "out of memory");
        }
        for (size_t i = 0; i < nt; i++) {
            yaml_node_t *tn = ynode(c, n->data.sequence.items.start[i]);

            if (!yscalar(tn))
                return cfail(c, tn, "'tags' must be a list of strings");
            if (!(r->tags[r->ntags] = strdup(yscalar(tn)))) {
                c->code = FH_ERR_NOMEM;
                return cfail(c, tn, "out of memory");
            }
            r->ntags++;
        }
    }

    if (cn->type != YAML_MAPPING_NODE)
        return cfail(c, cn, "'correlation' must be a map");
    for (yaml_node_pair_t *p = cn->data.mapping.pairs.start; p < cn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ynode(c, p->key);
        const char *k = yscalar(kn);

        if (!k || !in_list(k, corr_keys))
            return cfail(c, kn,
                         "unknown key '%s' in 'correlation' (type, rules, group-by, "
                         "timespan, condition, aliases, generate)",
                         k ? k : "(not a string)");
    }
    n = ymap_get(c, cn, "type");
    if (!n)
        return cfail(c, cn, "correlation: missing 'type'");
    s = yscalar(n);
    {
        int t = -1;

        for (int i = 0; s && i < 5; i++)
            if (!strcmp(s, type_names[i]))
                t = i;
        if (t < 0)
            return cfail(c, n,
                         "correlation type '%s' is not supported (event_count, "
                         "value_count, value_sum, temporal, temporal_ordered)",
                         s ? s : "(not a string)");
        r->type = (corr_type)t;
    }
    if (!(n = ymap_get(c, cn, "rules")))
        return cfail(c, cn, "correlation: missing 'rules'");
    if (!parse_rules(c, n, r))
        return false;
    if ((r->type == CORR_TEMPORAL || r->type == CORR_TEMPORAL_ORDERED) && r->nrefs < 2)
        return cfail(c, n, "%s correlation needs at least two rules", type_names[r->type]);
    if ((n = ymap_get(c, cn, "aliases")) && !parse_aliases(c, n, r))
        return false;
    if ((n = ymap_get(c, cn, "group-by")) && !parse_group_by(c, n, r))
        return false;
    for (uint32_t i = 0; i < r->naliases; i++) {
        bool used = false;

        for (uint32_t k = 0; k < r->ngroup_by; k++)
            used |= !strcmp(r->group_by[k], r->aliases[i].alias);
        if (!used)
            return cfail(c, ymap_get(c, ymap_get(c, cn, "aliases"), r->aliases[i].alias),
                         "alias '%s' is not used in 'group-by'", r->aliases[i].alias);
        if (!intern(c, ymap_get(c, cn, "aliases"), r->aliases[i].field, &r->aliases[i].fid))
            return false;
    }
    if (!(n = ymap_get(c, cn, "timespan")))
        return cfail(c, cn, "correlation: missing 'timespan'");
    if (!parse_timespan(c, n, &r->timespan_ms))
        return false;
    n = ymap_get(c, cn, "condition");
    if (n) {
        if (r->type == CORR_TEMPORAL_ORDERED)
            return cfail(c, n,
                         "temporal_ordered takes no 'condition' (every rule must match, "
                         "in order)");
        if (!parse_condition(c, n, r))
            return false;
    } else if (r->type == CORR_TEMPORAL || r->type == CORR_TEMPORAL_ORDERED) {
        r->conds[0].op = CORR_GTE;
        r->conds[0].value = r->nrefs;
        r->nconds = 1;
    } else {
        return cfail(c, cn, "correlation: missing 'condition' (%s needs one, e.g. {gte: 10})",
                     type_names[r->type]);
    }
    if (r->type == CORR_TEMPORAL)
        for (uint32_t i = 0; i < r->nconds; i++)
            if (r->conds[i].value > r->nrefs ||
                (r->conds[i].op == CORR_GT && r->conds[i].value >= r->nrefs))
                return cfail(c, n, "temporal condition asks for more rules than the %u listed",
                             r->nrefs);
    r->value_fid = FIELD_NONE;
    if (r->value_field && !is_alias(r, r->value_field) &&
        !intern(c, ymap_get(c, n, "field"), r->value_field, &r->value_fid))
        return false;
    gen_top = ymap_get(c, root, "generate");
    gen_corr = ymap_get(c, cn, "generate");
    if (gen_top && gen_corr)
        return cfail(c, gen_corr, "'generate' is given twice (top level and in 'correlation')");
    if ((gen_top || gen_corr) &&
        !parse_bool(c, gen_top ? gen_top : gen_corr, "generate", &r->generate))
        return false;
    return true;
}

fh_err corr_compile(yaml_document_t *doc, yaml_node_t *root, field_table *ft, struct corr_rule *out,
                    char *err, size_t errlen, uint32_t *err_line)
{
    cctx c = {.doc = doc, .ft = ft, .err = err, .errlen = errlen, .err_line = err_line};

    if (err_line)
        *err_line = 0;
    if (errlen)
        err[0] = '\0';
    if (!compile(&c, root, out))
        return c.code ? c.code : FH_ERR_PARSE;
    return FH_OK;
}

void corr_rule_free(struct corr_rule *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    free(r->title);
    free(r->description);
    free(r->status);
    free(r->author);
    for (uint32_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    for (uint32_t i = 0; i < r->nrefs; i++)
        free(r->refs[i].name);
    for (uint32_t i = 0; i < r->ngroup_by; i++)
        free(r->group_by[i]);
    for (uint32_t i = 0; i < r->naliases; i++) {
        free(r->aliases[i].alias);
        free(r->aliases[i].rule);
        free(r->aliases[i].field);
    }
    free(r->aliases);
    free(r->value_field);
    free(r->file);
    memset(r, 0, sizeof(*r));
}

/* ---- resolve ------------------------------------------------------------------------- */

static bool add_load_error(ruleset *rs, const struct corr_rule *r, const char *reason)
{
    load_error *e = realloc(rs->errors, (rs->nerrors + 1) * sizeof(*e));

    if (!e)
        return false;
    rs->errors = e;
    e = &rs->errors[rs->nerrors++];
    e->file = strdup(r->file ? r->file : "");
    e->line = r->corr_line ? r->corr_line : r->line;
    e->rule = r->title ? strdup(r->title) : r->id ? strdup(r->id) : NULL;
    e->reason = strdup(reason);
    return true;
}

static bool names_rule(const char *ref, const char *name, const char *id)
{
    return (name && !strcmp(ref, name)) || (id && !strcmp(ref, id));
}

/* Does alias entry a (keyed by a rule name as written) apply to reference f? */
static bool alias_for_ref(const ruleset *rs, const corr_alias *a, const corr_ref *f)
{
    if (!strcmp(a->rule, f->name))
        return true;
    if (f->kind == CORR_REF_RULE)
        return names_rule(a->rule, rs->rules[f->index].name, rs->rules[f->index].id);
    if (f->kind == CORR_REF_CORR)
        return names_rule(a->rule, rs->corrs[f->index].name, rs->corrs[f->index].id);
    return false;
}

/* The field to read for group-by/value name `nm` (fid if interned) in matches of ref f. */
static bool bind_field(const ruleset *rs, const struct corr_rule *r, const corr_ref *f,
                       const char *nm, field_id fid, field_id *out, char *why, size_t whylen)
{
    const char *field = nm;

    if (is_alias(r, nm)) {
        const corr_alias *hit = NULL;

        for (uint32_t i = 0; i < r->naliases; i++)
            if (!strcmp(r->aliases[i].alias, nm) && alias_for_ref(rs, &r->aliases[i], f))
                hit = &r->aliases[i];
        if (!hit) {
            snprintf(why, whylen, "alias '%s' has no field for rule '%s'", nm, f->name);
            return false;
        }
        field = hit->field;
        fid = hit->fid;
    }
    if (f->kind == CORR_REF_RULE) {
        *out = fid;
        return true;
    }
    {
        const struct corr_rule *t = &rs->corrs[f->index];

        for (uint32_t k = 0; k < t->ngroup_by; k++)
            if (!strcmp(t->group_by[k], field)) {
                *out = k;
                return true;
            }
        snprintf(why, whylen,
                 "field '%s' is not a group-by field of correlation '%s' (a "
                 "chained correlation only carries its group-by values)",
                 field, f->name);
        return false;
    }
}

/* Depth-first search for cycles among correlation references. */
static bool find_cycle(const ruleset *rs, uint32_t i, uint8_t *color, uint32_t *path,
                       uint32_t depth, uint32_t *cyc_start, uint32_t *cyc_len)
{
    color[i] = 1;
    path[depth] = i;
    for (uint32_t k = 0; k < rs->corrs[i].nrefs; k++) {
        const corr_ref *f = &rs->corrs[i].refs[k];

        if (f->kind != CORR_REF_CORR)
            continue;
        if (color[f->index] == 1) {
            for (uint32_t d = 0; d <= depth; d++)
                if (path[d] == f->index) {
                    *cyc_start = d;
                    *cyc_len = depth - d + 1;
                }
            return true;
        }
        if (color[f->index] == 0 &&
            find_cycle(rs, f->index, color, path, depth + 1, cyc_start, cyc_len))
            return true;
    }
    color[i] = 2;
    return false;
}

static const char *rule_label(const struct corr_rule *r)
{
    return r->name ? r->name : r->id ? r->id : r->title;
}

fh_err corr_resolve(ruleset *rs)
{
    uint32_t n = rs->ncorrs;
    bool *bad = NULL;
    uint32_t *remap = NULL, *path = NULL;
    uint8_t *color = NULL;
    char why[512];
    fh_err rc = FH_OK;
    bool changed;

    if (n == 0)
        return FH_OK;
    bad = calloc(n, sizeof(*bad));
    remap = calloc(n, sizeof(*remap));
    path = calloc(n, sizeof(*path));
    color = calloc(n, sizeof(*color));
    if (!bad || !remap || !path || !color) {
        rc = FH_ERR_NOMEM;
        goto out;
    }
    /* 1. references */
    for (uint32_t i = 0; i < n; i++) {
        struct corr_rule *r = &rs->corrs[i];

        for (uint32_t k = 0; k < r->nrefs && !bad[i]; k++) {
            corr_ref *f = &r->refs[k];
            uint32_t hits = 0;

            for (uint32_t j = 0; j < rs->nrules; j++)
                if (names_rule(f->name, rs->rules[j].name, rs->rules[j].id)) {
                    hits++;
                    f->kind = CORR_REF_RULE;
                    f->index = j;
                }
            for (uint32_t j = 0; j < n; j++)
                if (names_rule(f->name, rs->corrs[j].name, rs->corrs[j].id)) {
                    hits++;
                    f->kind = CORR_REF_CORR;
                    f->index = j;
                }
            if (hits == 0)
                snprintf(why, sizeof(why),
                         "unknown rule '%s' in 'rules' (no loaded detection "
                         "or correlation rule has this name or id)",
                         f->name);
            else if (hits > 1)
                snprintf(why, sizeof(why),
                         "rule reference '%s' is ambiguous (%u rules have "
                         "this name or id)",
                         f->name, hits);
            else if (f->kind == CORR_REF_CORR && f->index == i)
                snprintf(why, sizeof(why), "correlation '%s' references itself", rule_label(r));
            if (hits != 1 || (f->kind == CORR_REF_CORR && f->index == i)) {
                bad[i] = true;
                f->kind = CORR_REF_UNRESOLVED;
                if (!add_load_error(rs, r, why))
                    rc = FH_ERR_NOMEM;
            }
        }
        for (uint32_t a = 0; a < r->naliases && !bad[i]; a++) {
            bool found = false;

            for (uint32_t k = 0; k < r->nrefs; k++)
                found |= alias_for_ref(rs, &r->aliases[a], &r->refs[k]);
            if (!found) {
                snprintf(why, sizeof(why), "alias '%s' names rule '%s' which is not in 'rules'",
                         r->aliases[a].alias, r->aliases[a].rule);
                bad[i] = true;
                if (!add_load_error(rs, r, why))
                    rc = FH_ERR_NOMEM;
            }
        }
    }
    /* 2. cycles (only among correlations whose references resolved) */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t cs = 0, cl = 0;

        if (bad[i] || color[i])
            continue;
        if (find_cycle(rs, i, color, path, 0, &cs, &cl)) {
            size_t off;

            off = (size_t)snprintf(why, sizeof(why), "correlation rules form a cycle: ");
            for (uint32_t d = 0; d < cl && off < sizeof(why); d++)
                off += (size_t)snprintf(why + off, sizeof(why) - off, "%s -> ",
                                        rule_label(&rs->corrs[path[cs + d]]));
            if (off < sizeof(why))
                snprintf(why + off, sizeof(why) - off, "%s", rule_label(&rs->corrs[path[cs]]));
            for (uint32_t d = 0; d < cl; d++)
                if (!bad[path[cs + d]]) {
                    bad[path[cs + d]] = true;
                    if (!add_load_error(rs, &rs->corrs[path[cs + d]], why))
                        rc = FH_ERR_NOMEM;
                }
            memset(color, 0, n);
            for (uint32_t j = 0; j < n; j++)
                if (bad[j])
                    color[j] = 2; /* do not walk into refused rules again */
            i = (uint32_t)-1;     /* restart: other cycles may remain */
        }
    }
    /* 3. fields per reference */
    for (uint32_t i = 0; i < n; i++) {
        struct corr_rule *r = &rs->corrs[i];

        for (uint32_t k = 0; k < r->nrefs && !bad[i]; k++) {
            corr_ref *f = &r->refs[k];
            bool ok = true;

            for (uint32_t g = 0; g < r->ngroup_by && ok; g++)
                ok = bind_field(rs, r, f, r->group_by[g], r->group_by_fid[g], &f->gb[g], why,
                                sizeof(why));
            if (ok && r->value_field)
                ok =
                    bind_field(rs, r, f, r->value_field, r->value_fid, &f->value, why, sizeof(why));
            if (!ok) {
                bad[i] = true;
                if (!add_load_error(rs, r, why))
                    rc = FH_ERR_NOMEM;
            }
        }
    }
    /* 4. refusal spreads to correlations that reference a refused one */
    do {
        changed = false;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t k = 0; k < rs->corrs[i].nrefs && !bad[i]; k++) {
                const corr_ref *f = &rs->corrs[i].refs[k];

                if (f->kind == CORR_REF_CORR && bad[f->index]) {
                    snprintf(why, sizeof(why), "references correlation '%s', which was refused",
                             f->name);
                    bad[i] = changed = true;
                    if (!add_load_error(rs, &rs->corrs[i], why))
                        rc = FH_ERR_NOMEM;
                }
            }
    } while (changed);
    /* 5. compact */
    {
        uint32_t m = 0;

        for (uint32_t i = 0; i < n; i++) {
            if (bad[i]) {
                corr_rule_free(&rs->corrs[i]);
                continue;
            }
            remap[i] = m;
            if (m != i)
                rs->corrs[m] = rs->corrs[i];
            m++;
        }
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t k = 0; k < rs->corrs[i].nrefs; k++)
                if (rs->corrs[i].refs[k].kind == CORR_REF_CORR)
                    rs->corrs[i].refs[k].index = remap[rs->corrs[i].refs[k].index];
        rs->ncorrs = m;
    }
out:
    free(bad);
    free(remap);
    free(path);
    free(color);
    return rc;
}

bool corr_rule_generates(const ruleset *rs, uint32_t rule_index)
{
    bool referenced = false;

    for (uint32_t i = 0; i < rs->ncorrs; i++)
        for (uint32_t k = 0; k < rs->corrs[i].nrefs; k++)
            if (rs->corrs[i].refs[k].kind == CORR_REF_RULE &&
                rs->corrs[i].refs[k].index == rule_index) {
                if (rs->corrs[i].generate)
                    return true;
                referenced = true;
            }
    return !referenced;
}

/* ---- engine ---------------------------------------------------------------------------- */

typedef struct cgroup cgroup;
struct cgroup {
    cgroup *hnext;       /* hash chain */
    cgroup *prev, *next; /* rule LRU list, head = most recently fed */
    uint64_t hash;
    uint32_t rule;
    uint32_t keylen;       /* strlen(key) */
    uint32_t textlen;      /* key + values, NULs included */
    uint32_t nent, cap;    /* entries held / allocated */
    int64_t newest;        /* newest event time fed to the group */
    int64_t win_start;     /* at-close: open window [win_start, win_start + T) */
    int64_t first, last;   /* at-close: oldest / newest event of the open window */
    uint64_t count;        /* at-close: events (event_count) or distinct values (saturating) */
    double sum;            /* at-close value_sum */
    int64_t *ts;           /* entries: event time (value_count: last seen) */
    uint64_t *val;         /* entries: value hash or value bits (value types), else NULL */
    int64_t *stage;        /* temporal: [nrefs] last seen; ordered: [2*nrefs] start, end */
    cgroup *dprev, *dnext; /* changed since the last checkpoint (engine's dirty list) */
    bool dirty;
    bool saved;   /* a checkpoint wrote it: its removal must be written too */
    uint64_t seq; /* engine's touch counter when last fed: the LRU order, kept in checkpoints */
    char text[];  /* key "\0" value0 "\0" value1 "\0" ... */
};

typedef struct {
    uint32_t corr, ref;
} dep;

typedef struct {
    cgroup *head, *tail;
    uint32_t ngroups;
    uint32_t need; /* rising count types: the smallest count that satisfies the condition */
    uint32_t cap;  /* entries per group */
} rstate;

/* A saved group (or, key NULL, every saved group of a rule) to delete at the next checkpoint. */
typedef struct {
    char *rule;
    char *key;
    uint32_t keylen;
} gone;

struct corr_engine {
    const ruleset *rs;
    char **pkey; /* per correlation: "<id>#<definition hash>", its name in checkpoints */
    cgroup *dirty;
    gone *gone;
    uint32_t ngone, capgone;
    bool gone_failed; /* a deletion could not be recorded: the next checkpoint fails */
    bool track;       /* checkpoints are taken: keep the dirty list and the deletions */
    uint64_t touch;   /* counter behind cgroup.seq */
    corr_limits lim;
    uint32_t *rd_off; /* deps of detection rule i: rd[rd_off[i] .. rd_off[i + 1]) */
    dep *rd;
    uint32_t *cd_off; /* deps of correlation i */
    dep *cd;
    rstate *rst;
    cgroup **bucket;
    uint32_t nbucket;
    uint64_t ngroups;
    int64_t wm; /* watermark: newest event time seen; NO_TS before any */
    /* clock policy (corr_admit) */
    bool wm_firm;       /* resync_events events near the watermark confirmed it */
    uint32_t near_run;  /* events near the watermark since it was set (until firm) */
    uint32_t ahead_run; /* far-ahead events in a row, and the oldest of them */
    int64_t ahead_min;
    uint32_t behind_run; /* far-behind events in a row (tentative watermark), the newest */
    int64_t behind_max;
    int64_t next_deadline; /* earliest end of an open at-close window */
    corr_stats st;
    char keybuf[KEY_MAX];
};

/* Where a match's field values come from: an event, or a chained match's group values. */
typedef struct {
    const event_view *ev;
    const sv *slots;
    uint32_t nslots;
} src;

static const sv sv_none;

static const sv *src_get(const src *s, field_id id)
{
    if (s->slots)
        return id < s->nslots ? &s->slots[id] : &sv_none;
    return event_get(s->ev, id);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

#define FNV_BASIS 14695981039346656037ull

/* A group's hash: its rule and its key text (without the values). */
static uint64_t group_hash(uint32_t rule, const char *key, uint32_t keylen)
{
    return fnv1a(fnv1a(FNV_BASIS, &rule, sizeof(rule)), key, keylen);
}

static bool cond_true(const struct corr_rule *r, double x)
{
    for (uint32_t i = 0; i < r->nconds; i++) {
        double v = r->conds[i].value;
        bool ok = false;

        switch (r->conds[i].op) {
        case CORR_GT:
            ok = x > v;
            break;
        case CORR_GTE:
            ok = x >= v;
            break;
        case CORR_LT:
            ok = x < v;
            break;
        case CORR_LTE:
            ok = x <= v;
            break;
        case CORR_EQ:
            ok = x == v;
            break;
        case CORR_NEQ:
            ok = x != v;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/*
 * Text of a value usable as a group-by or distinct value (false for absent, null,
 * lists): what the matchers see, sigma_value_text(), so a number groups by the text
 * the event carries. Numbers for value_sum: sigma_value_number(), as comparisons.
 */
static bool sv_text(const sv *v, char *tmp, size_t tmplen, const char **s, size_t *len)
{
    if (v->type == SV_STR) {
        *s = v->s ? v->s : "";
        *len = v->len;
        return true;
    }
    return (*s = sigma_value_text(v, tmp, tmplen, len)) != NULL;
}

/*
 * Builds "name=value,..." then "\0value0\0value1\0" into e->keybuf. Returns the
 * total length (NULs included) and the key length, or 0 when a value is missing.
 */
static size_t build_key(corr_engine *e, const struct corr_rule *r, const corr_ref *f, const src *s,
                        uint32_t *keylen)
{
    char *b = e->keybuf, tmp[64];
    size_t off = 0;
    const char *vs[CORR_MAX_GROUPBY];
    size_t vl[CORR_MAX_GROUPBY];
    char vtmp[CORR_MAX_GROUPBY][32];

    for (uint32_t k = 0; k < r->ngroup_by; k++) {
        const char *name = r->group_by[k], *v;
        size_t nl = strlen(name), len;

        if (!sv_text(src_get(s, f->gb[k]), tmp, sizeof(tmp), &v, &len))
            return 0;
        if (v == tmp) { /* keep number texts for the value part */
            memcpy(vtmp[k], tmp, len < 31 ? len + 1 : 32);
            v = vtmp[k];
        }
        vs[k] = v;
        vl[k] = len;
        if (off + nl + 2 >= KEY_MAX)
            return 0;
        if (k)
            b[off++] = ',';
        memcpy(b + off, name, nl);
        off += nl;
        b[off++] = '=';
        /* the same escaping as a detection rule's key (alerts.h): a NUL in a value
         * neither ends the key nor merges it with another */
        if (!alert_key_escape(b, KEY_MAX, &off, v, len))
            return 0;
    }
    b[off++] = '\0';
    *keylen = (uint32_t)off - 1;
    for (uint32_t k = 0; k < r->ngroup_by; k++) {
        /* values are NUL-separated: one holding a NUL is kept in its escaped form */
        if (memchr(vs[k], '\0', vl[k])) {
            if (!alert_key_escape(b, KEY_MAX, &off, vs[k], vl[k]))
                return 0;
            off++;
            continue;
        }
        if (off + vl[k] + 1 >= KEY_MAX)
            return 0;
        memcpy(b + off, vs[k], vl[k]);
        off += vl[k];
        b[off++] = '\0';
    }
    return off;
}

size_t corr_memory_per_group(const struct corr_rule *r, uint32_t entries)
{
    size_t m = sizeof(cgroup);

    m += (size_t)entries * sizeof(int64_t);
    if (r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM)
        m += (size_t)entries * sizeof(uint64_t);
    if (r->type == CORR_TEMPORAL)
        m += r->nrefs * sizeof(int64_t);
    if (r->type == CORR_TEMPORAL_ORDERED)
        m += 2 * r->nrefs * sizeof(int64_t);
    return m;
}

static size_t group_bytes(const corr_engine *e, const cgroup *g)
{
    return corr_memory_per_group(&e->rs->corrs[g->rule], g->cap) + g->textlen;
}

static void lru_unlink(rstate *rs, cgroup *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        rs->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        rs->tail = g->prev;
    g->prev = g->next = NULL;
}

static void lru_push_head(rstate *rs, cgroup *g)
{
    g->prev = NULL;
    g->next = rs->head;
    if (rs->head)
        rs->head->prev = g;
    rs->head = g;
    if (!rs->tail)
        rs->tail = g;
}

static void mark_dirty(corr_engine *e, cgroup *g)
{
    if (g->dirty || !e->track)
        return;
    g->dirty = true;
    g->dprev = NULL;
    g->dnext = e->dirty;
    if (e->dirty)
        e->dirty->dprev = g;
    e->dirty = g;
}

static void dirty_unlink(corr_engine *e, cgroup *g)
{
    if (!g->dirty)
        return;
    if (g->dprev)
        g->dprev->dnext = g->dnext;
    else
        e->dirty = g->dnext;
    if (g->dnext)
        g->dnext->dprev = g->dprev;
    g->dprev = g->dnext = NULL;
    g->dirty = false;
}

/* Records that a saved group (key NULL: all of rule's) must go from the checkpoint. */
static void add_gone(corr_engine *e, const char *rule, const char *key, uint32_t keylen)
{
    gone *ng;

    if (!e->track)
        return;
    if (e->ngone == e->capgone) {
        uint32_t nc = e->capgone ? e->capgone * 2 : 64;

        if (!(ng = realloc(e->gone, nc * sizeof(*ng)))) {
            e->gone_failed = true;
            return;
        }
        e->gone = ng;
        e->capgone = nc;
    }
    ng = &e->gone[e->ngone];
    ng->rule = strdup(rule);
    ng->key = key ? malloc(keylen ? keylen : 1) : NULL;
    ng->keylen = keylen;
    if (!ng->rule || (key && !ng->key)) {
        free(ng->rule);
        free(ng->key);
        e->gone_failed = true;
        return;
    }
    if (key)
        memcpy(ng->key, key, keylen);
    e->ngone++;
}

static void group_free(corr_engine *e, cgroup *g)
{
    cgroup **pp = &e->bucket[g->hash & (e->nbucket - 1)];

    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    dirty_unlink(e, g);
    if (g->saved)
        add_gone(e, e->pkey[g->rule], g->text, g->textlen);
    lru_unlink(&e->rst[g->rule], g);
    e->rst[g->rule].ngroups--;
    e->ngroups--;
    e->st.memory_bytes -= group_bytes(e, g);
    free(g->ts);
    free(g->val);
    free(g->stage);
    free(g);
}

static void evict_tail(corr_engine *e, uint32_t rule, const cgroup *keep)
{
    cgroup *t = e->rst[rule].tail;

    if (t == keep)
        t = t ? t->prev : NULL;
    if (t) {
        group_free(e, t);
        e->st.groups_evicted++;
    }
}

static bool grow_table(corr_engine *e)
{
    uint32_t nb = e->nbucket * 2;
    cgroup **b = calloc(nb, sizeof(*b));

    if (!b)
        return false;
    /* Rehash walking old buckets in order: deterministic chain order. */
    for (uint32_t i = 0; i < e->nbucket; i++) {
        cgroup *g = e->bucket[i], *nx;

        for (; g; g = nx) {
            nx = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
        }
    }
    e->st.memory_bytes += (size_t)(nb - e->nbucket) * sizeof(*b);
    free(e->bucket);
    e->bucket = b;
    e->nbucket = nb;
    return true;
}

static void reset_state(const struct corr_rule *r, cgroup *g)
{
    g->nent = 0;
    if (g->stage)
        for (uint32_t i = 0; i < (r->type == CORR_TEMPORAL_ORDERED ? 2 : 1) * r->nrefs; i++)
            g->stage[i] = NO_TS;
}

static cgroup *group_get(corr_engine *e, uint32_t rule, uint64_t h, const char *text,
                         uint32_t keylen, uint32_t textlen, int64_t ts)
{
    const struct corr_rule *r = &e->rs->corrs[rule];
    rstate *rst = &e->rst[rule];
    cgroup *g;
    size_t need;

    for (g = e->bucket[h & (e->nbucket - 1)]; g; g = g->hnext)
        if (g->hash == h && g->rule == rule && g->keylen == keylen &&
            !memcmp(g->text, text, keylen))
            return g;
    while (rst->ngroups >= e->lim.max_groups_per_rule && rst->tail)
        evict_tail(e, rule, NULL);
    need = corr_memory_per_group(r, 0) + textlen;
    while (e->st.memory_bytes + need > e->lim.max_memory && rst->tail)
        evict_tail(e, rule, NULL);
    if (e->st.memory_bytes + need > e->lim.max_memory)
        return NULL;
    g = calloc(1, sizeof(*g) + textlen);
    if (!g)
        return NULL;
    if (r->type == CORR_TEMPORAL || r->type == CORR_TEMPORAL_ORDERED) {
        g->stage =
            malloc((r->type == CORR_TEMPORAL_ORDERED ? 2 : 1) * r->nrefs * sizeof(*g->stage));
        if (!g->stage) {
            free(g);
            return NULL;
        }
    }
    memcpy(g->text, text, textlen);
    g->hash = h;
    g->rule = rule;
    g->keylen = keylen;
    g->textlen = textlen;
    g->newest = ts;
    g->win_start = g->first = g->last = ts;
    reset_state(r, g);
    g->hnext = e->bucket[h & (e->nbucket - 1)];
    e->bucket[h & (e->nbucket - 1)] = g;
    g->seq = ++e->touch;
    lru_push_head(rst, g);
    rst->ngroups++;
    e->ngroups++;
    e->st.groups_created++;
    e->st.memory_bytes += group_bytes(e, g);
    if (r->at_close && ts + r->timespan_ms < e->next_deadline)
        e->next_deadline = ts + r->timespan_ms;
    if (e->ngroups > (uint64_t)e->nbucket * 3 / 4)
        grow_table(e); /* failure only makes chains longer */
    return g;
}

/* Makes room for one more entry; false (entry not stored) when memory is exhausted. */
static bool reserve(corr_engine *e, cgroup *g)
{
    const struct corr_rule *r = &e->rs->corrs[g->rule];
    uint32_t ncap;
    size_t add;
    int64_t *ts;

    if (g->nent < g->cap)
        return true;
    ncap = g->cap ? g->cap * 2 : 4;
    if (ncap > e->rst[g->rule].cap)
        ncap = e->rst[g->rule].cap;
    if (ncap <= g->cap)
        return false;
    add = corr_memory_per_group(r, ncap) - corr_memory_per_group(r, g->cap);
    while (e->st.memory_bytes + add > e->lim.max_memory && e->rst[g->rule].ngroups > 1)
        evict_tail(e, g->rule, g);
    if (e->st.memory_bytes + add > e->lim.max_memory)
        return false;
    ts = realloc(g->ts, ncap * sizeof(*ts));
    if (!ts)
        return false;
    g->ts = ts;
    if (r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM) {
        uint64_t *v = realloc(g->val, ncap * sizeof(*v));

        if (!v)
            return false;
        g->val = v;
    }
    g->cap = ncap;
    e->st.memory_bytes += add;
    return true;
}

/* Inserts (ts, v) keeping entries sorted by time (stable: after equal times). */
static void insert_sorted(cgroup *g, int64_t ts, uint64_t v)
{
    uint32_t p = g->nent;

    while (p > 0 && g->ts[p - 1] > ts)
        p--;
    memmove(g->ts + p + 1, g->ts + p, (g->nent - p) * sizeof(*g->ts));
    g->ts[p] = ts;
    if (g->val) {
        memmove(g->val + p + 1, g->val + p, (g->nent - p) * sizeof(*g->val));
        g->val[p] = v;
    }
    g->nent++;
}

/* Drops entries older than the window ending at `end` (sorted entries). */
static void prune_sorted(cgroup *g, int64_t end, int64_t T)
{
    uint32_t k = 0;

    while (k < g->nent && g->ts[k] <= end - T)
        k++;
    if (!k)
        return;
    memmove(g->ts, g->ts + k, (g->nent - k) * sizeof(*g->ts));
    if (g->val)
        memmove(g->val, g->val + k, (g->nent - k) * sizeof(*g->val));
    g->nent -= k;
}

typedef struct {
    corr_emit_fn emit;
    void *arg;
    const event_view *root;
} emitter;

static void feed_ref(corr_engine *e, uint32_t ci, uint32_t ri, const src *s, int64_t ts,
                     const emitter *em);

/* Reports a match of correlation ci for group g and feeds the correlations using it. */
static void fire(corr_engine *e, uint32_t ci, const cgroup *g, int64_t wstart, int64_t first,
                 int64_t last, double value, const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    sv slots[CORR_MAX_GROUPBY];
    const char *p;
    uint64_t v = value <= 0 ? 0 : value >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)value;
    src s;

    e->st.emits++;
    if (em->emit)
        em->emit(em->arg, r, g->text, wstart, first, last, v, em->root);
    if (e->cd_off[ci] == e->cd_off[ci + 1])
        return;
    /* The chained match carries the group-by values (copied: g may go away below). */
    {
        char text[KEY_MAX];

        memcpy(text, g->text, g->textlen);
        p = text + g->keylen + 1;
        memset(slots, 0, sizeof(slots));
        for (uint32_t k = 0; k < r->ngroup_by; k++) {
            slots[k].type = SV_STR;
            slots[k].s = p;
            slots[k].len = strlen(p);
            p += slots[k].len + 1;
        }
        s.ev = NULL;
        s.slots = slots;
        s.nslots = r->ngroup_by;
        for (uint32_t d = e->cd_off[ci]; d < e->cd_off[ci + 1]; d++)
            feed_ref(e, e->cd[d].corr, e->cd[d].ref, &s, last, em);
    }
}

/* Closes at-close windows of g that end at or before `upto`. Returns false if g was freed. */
static bool close_windows(corr_engine *e, cgroup *g, int64_t upto, const emitter *em)
{
    uint32_t ci = g->rule;
    const struct corr_rule *r = &e->rs->corrs[ci];
    int64_t T = r->timespan_ms;

    if (g->win_start + T <= upto)
        mark_dirty(e, g);
    while (g->win_start + T <= upto) {
        bool empty = g->count == 0;
        double x = r->type == CORR_VALUE_SUM ? g->sum : (double)g->count;

        if (cond_true(r, x)) {
            emitter quiet = *em;

            quiet.root = NULL;
            fire(e, ci, g, g->win_start, empty ? g->win_start : g->first,
                 empty ? g->win_start : g->last, x, &quiet);
        }
        if (empty) {
            group_free(e, g);
            e->st.groups_expired++;
            return false;
        }
        g->win_start += T;
        g->count = 0;
        g->sum = 0;
        g->nent = 0;
    }
    return true;
}

/* Closes every at-close window that the watermark (minus lateness) has passed. */
static void sweep(corr_engine *e, const emitter *em)
{
    int64_t upto = e->wm - e->lim.allowed_lateness_ms;
    int64_t next = INT64_MAX;

    if (e->wm == NO_TS || upto < e->next_deadline)
        return;
    e->next_deadline = INT64_MAX; /* chained matches during the sweep may lower it */
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        const struct corr_rule *r = &e->rs->corrs[ci];
        cgroup *g, *prev;

        if (!r->at_close)
            continue;
        /* oldest first, so emits come out in a stable order */
        for (g = e->rst[ci].tail; g; g = prev) {
            prev = g->prev;
            if (close_windows(e, g, upto, em) && g->win_start + r->timespan_ms < next)
                next = g->win_start + r->timespan_ms;
        }
    }
    /* At most one sweep per SWEEP_STEP_MS of event time: with many groups whose windows
     * end at different times, a sweep per event would cost O(groups) per event. A window
     * may so close up to that much later; its content and the emit are the same. */
    if (next < upto + SWEEP_STEP_MS)
        next = upto + SWEEP_STEP_MS;
    if (next < e->next_deadline)
        e->next_deadline = next;
}

/* Frees sliding-window groups whose newest event left every window the watermark allows. */
static void expire_idle(corr_engine *e)
{
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        const struct corr_rule *r = &e->rs->corrs[ci];
        int64_t limit = e->wm - r->timespan_ms - e->lim.allowed_lateness_ms;

        if (r->at_close)
            continue;
        while (e->rst[ci].tail && e->rst[ci].tail->newest <= limit) {
            group_free(e, e->rst[ci].tail);
            e->st.groups_expired++;
        }
    }
}

static void advance(corr_engine *e, int64_t ts, const emitter *em)
{
    if (e->wm != NO_TS && ts <= e->wm) {
        if (e->next_deadline == INT64_MIN) { /* corr_admit moved the watermark */
            sweep(e, em);
            expire_idle(e);
        }
        return;
    }
    e->wm = ts;
    sweep(e, em);
    expire_idle(e);
}

static void feed_at_close(corr_engine *e, uint32_t ci, cgroup *g, int64_t ts, uint64_t hv,
                          double num)
{
    const struct corr_rule *r = &e->rs->corrs[ci];

    if (ts < g->win_start) {
        e->st.late_dropped++;
        return;
    }
    if (g->count == 0)
        g->first = g->last = ts;
    if (ts < g->first)
        g->first = ts;
    if (ts > g->last)
        g->last = ts;
    switch (r->type) {
    case CORR_EVENT_COUNT:
        g->count++;
        break;
    case CORR_VALUE_SUM:
        g->sum += num;
        g->count++; /* events in the window (empty-window detection) */
        break;
    case CORR_VALUE_COUNT: {
        bool seen = false;

        for (uint32_t i = 0; i < g->nent && !seen; i++)
            seen = g->val[i] == hv;
        if (!seen) {
            if (reserve(e, g)) {
                g->ts[g->nent] = ts;
                g->val[g->nent++] = hv;
            } else {
                e->st.entries_capped++;
            }
        }
        /* count = distinct values, at least 1 once an event was seen */
        g->count = g->nent ? g->nent : 1;
        break;
    }
    default:
        break;
    }
}

static void feed_sliding(corr_engine *e, uint32_t ci, uint32_t ri, cgroup *g, int64_t ts,
                         uint64_t hv, double num, const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    const rstate *rst = &e->rst[ci];
    int64_t T = r->timespan_ms, end, first = ts;
    double x = 0;
    bool hit = false;

    if (ts <= g->newest - T) { /* outside the window of the group's newest event */
        e->st.late_dropped++;
        return;
    }
    if (ts > g->newest)
        g->newest = ts;
    end = g->newest;
    switch (r->type) {
    case CORR_EVENT_COUNT:
        prune_sorted(g, end, T);
        if (!reserve(e, g)) { /* threshold above the per-group cap, or no memory */
            e->st.entries_capped++;
            return;
        }
        insert_sorted(g, ts, 0);
        if (g->nent >= rst->need) {
            hit = true;
            first = g->ts[0];
            x = g->nent;
        }
        break;
    case CORR_VALUE_SUM:
        prune_sorted(g, end, T);
        if (g->nent == rst->cap && g->nent >= 2) {
            /* merge the two oldest, keeping the newer time (never under-counts) */
            double a, b;

            memcpy(&a, &g->val[0], sizeof(a));
            memcpy(&b, &g->val[1], sizeof(b));
            b += a;
            memcpy(&g->val[1], &b, sizeof(b));
            memmove(g->ts, g->ts + 1, (g->nent - 1) * sizeof(*g->ts));
            memmove(g->val, g->val + 1, (g->nent - 1) * sizeof(*g->val));
            g->nent--;
            e->st.entries_merged++;
        }
        if (!reserve(e, g)) {
            e->st.entries_capped++;
            return;
        }
        memcpy(&hv, &num, sizeof(hv));
        insert_sorted(g, ts, hv);
        for (uint32_t i = 0; i < g->nent; i++) {
            double v;

            memcpy(&v, &g->val[i], sizeof(v));
            x += v;
        }
        first = g->ts[0];
        hit = cond_true(r, x);
        break;
    case CORR_VALUE_COUNT: {
        uint32_t i, k = 0;

        /* drop values not seen in the window, then add or refresh this one */
        for (i = 0; i < g->nent; i++)
            if (g->ts[i] > end - T) {
                g->ts[k] = g->ts[i];
                g->val[k++] = g->val[i];
            }
        g->nent = k;
        for (i = 0; i < g->nent && g->val[i] != hv; i++)
            ;
        if (i < g->nent) {
            if (ts > g->ts[i])
                g->ts[i] = ts;
        } else if (reserve(e, g)) {
            g->ts[g->nent] = ts;
            g->val[g->nent++] = hv;
        } else {
            e->st.entries_capped++;
        }
        if (g->nent >= rst->need) {
            hit = true;
            x = g->nent;
            for (i = 0; i < g->nent; i++)
                if (g->ts[i] < first)
                    first = g->ts[i];
        }
        break;
    }
    case CORR_TEMPORAL: {
        uint32_t n = 0;

        if (ts > g->stage[ri])
            g->stage[ri] = ts;
        first = end;
        for (uint32_t k = 0; k < r->nrefs; k++)
            if (g->stage[k] != NO_TS && g->stage[k] > end - T) {
                n++;
                if (g->stage[k] < first)
                    first = g->stage[k];
            }
        if (n >= rst->need) {
            hit = true;
            x = n;
        }
        break;
    }
    case CORR_TEMPORAL_ORDERED: {
        int64_t *start = g->stage, *fin = g->stage + r->nrefs;

        if (ri == 0) {
            if (start[0] == NO_TS || ts > start[0])
                start[0] = fin[0] = ts;
        } else if (start[ri - 1] != NO_TS && ts >= fin[ri - 1] && start[ri - 1] > ts - T &&
                   (start[ri] == NO_TS || start[ri - 1] > start[ri])) {
            start[ri] = start[ri - 1];
            fin[ri] = ts;
        }
        if (start[r->nrefs - 1] != NO_TS && start[r->nrefs - 1] > end - T) {
            hit = true;
            first = start[r->nrefs - 1];
            end = fin[r->nrefs - 1];
            x = r->nrefs;
        }
        break;
    }
    }
    if (!hit)
        return;
    reset_state(r, g);
    fire(e, ci, g, end - T + 1, first, end, x, em);
}

static void feed_ref(corr_engine *e, uint32_t ci, uint32_t ri, const src *s, int64_t ts,
                     const emitter *em)
{
    const struct corr_rule *r = &e->rs->corrs[ci];
    const corr_ref *f = &r->refs[ri];
    uint32_t keylen;
    size_t textlen;
    uint64_t h, hv = 0;
    double num = 0;
    cgroup *g;

    textlen = build_key(e, r, f, s, &keylen);
    if (!textlen) {
        e->st.no_group_value++;
        return;
    }
    if (r->type == CORR_VALUE_COUNT) {
        const char *v;
        char tmp[64];
        size_t len;

        if (!sv_text(src_get(s, f->value), tmp, sizeof(tmp), &v, &len)) {
            e->st.no_group_value++;
            return;
        }
        hv = fnv1a(FNV_BASIS, v, len);
    } else if (r->type == CORR_VALUE_SUM && !sigma_value_number(src_get(s, f->value), &num)) {
        e->st.no_group_value++;
        return;
    }
    h = group_hash(ci, e->keybuf, keylen);
    g = group_get(e, ci, h, e->keybuf, keylen, (uint32_t)textlen, ts);
    if (!g) {
        e->st.matches_dropped++;
        return;
    }
    mark_dirty(e, g);
    lru_unlink(&e->rst[ci], g);
    g->seq = ++e->touch;
    lru_push_head(&e->rst[ci], g);
    if (r->at_close) {
        if (ts >= g->win_start + r->timespan_ms) {
            emitter quiet = *em;
            char text[KEY_MAX];

            /* chained matches of the closing windows reuse e->keybuf */
            memcpy(text, e->keybuf, textlen);
            quiet.root = NULL;
            if (!close_windows(e, g, ts, &quiet)) {
                g = group_get(e, ci, h, text, keylen, (uint32_t)textlen, ts);
                if (!g) {
                    e->st.matches_dropped++;
                    return;
                }
                mark_dirty(e, g);
            }
            if (g->win_start + r->timespan_ms < e->next_deadline)
                e->next_deadline = g->win_start + r->timespan_ms;
        }
        if (ts > g->newest)
            g->newest = ts;
        feed_at_close(e, ci, g, ts, hv, num);
        return;
    }
    feed_sliding(e, ci, ri, g, ts, hv, num, em);
}

static uint64_t fp_str(uint64_t h, const char *s)
{
    /* the NUL too: ("ab", "c") and ("a", "bc") differ; NULL differs from "" */
    return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "\xff", 1);
}

/*
 * The name of correlation r in checkpoints: its id (else name, else title) and a hash
 * of everything that shapes its windows (what same_definition() compares), so state
 * saved under another definition of the rule is never restored into this one.
 */
static char *rule_pkey(const struct corr_rule *r)
{
    const char *id = r->id ? r->id : r->name ? r->name : r->title ? r->title : "";
    uint64_t h = FNV_BASIS;
    uint32_t t = (uint32_t)r->type;
    char *out;
    size_t n;

    h = fp_str(fp_str(h, r->id), r->name);
    h = fnv1a(h, &t, sizeof(t));
    h = fnv1a(h, &r->timespan_ms, sizeof(r->timespan_ms));
    for (uint32_t i = 0; i < r->nconds; i++) {
        uint32_t op = (uint32_t)r->conds[i].op;

        h = fnv1a(h, &op, sizeof(op));
        h = fnv1a(h, &r->conds[i].value, sizeof(r->conds[i].value));
    }
    for (uint32_t i = 0; i < r->nrefs; i++)
        h = fp_str(h, r->refs[i].name);
    h = fnv1a(h, "|", 1);
    for (uint32_t i = 0; i < r->ngroup_by; i++)
        h = fp_str(h, r->group_by[i]);
    h = fnv1a(h, "|", 1);
    for (uint32_t i = 0; i < r->naliases; i++)
        h = fp_str(fp_str(fp_str(h, r->aliases[i].alias), r->aliases[i].rule), r->aliases[i].field);
    h = fp_str(h, r->value_field);
    n = strlen(id) + 18;
    if ((out = malloc(n)))
        snprintf(out, n, "%s#%016" PRIx64, id, h);
    return out;
}

static bool make_pkeys(corr_engine *e)
{
    for (uint32_t c = 0; c < e->rs->ncorrs; c++)
        if (!(e->pkey[c] = rule_pkey(&e->rs->corrs[c])))
            return false;
    return true;
}

/* Count of deps and fill, for a reference predicate. Sorted by (corr asc, ref desc). */
static bool build_deps(corr_engine *e)
{
    const ruleset *rs = e->rs;
    uint32_t total = 0;

    e->rd_off = calloc(rs->nrules + 1, sizeof(uint32_t));
    e->cd_off = calloc(rs->ncorrs + 1, sizeof(uint32_t));
    if (!e->rd_off || !e->cd_off)
        return false;
    for (uint32_t c = 0; c < rs->ncorrs; c++)
        total += rs->corrs[c].nrefs;
    e->rd = calloc(total ? total : 1, sizeof(dep));
    e->cd = calloc(total ? total : 1, sizeof(dep));
    if (!e->rd || !e->cd)
        return false;
    for (int pass = 0; pass < 2; pass++) {
        corr_ref_kind kind = pass == 0 ? CORR_REF_RULE : CORR_REF_CORR;
        uint32_t n = pass == 0 ? rs->nrules : rs->ncorrs;
        uint32_t *off = pass == 0 ? e->rd_off : e->cd_off;
        dep *d = pass == 0 ? e->rd : e->cd;
        uint32_t m = 0;

        for (uint32_t i = 0; i < n; i++) {
            off[i] = m;
            for (uint32_t c = 0; c < rs->ncorrs; c++)
                for (uint32_t k = rs->corrs[c].nrefs; k-- > 0;)
                    if (rs->corrs[c].refs[k].kind == kind && rs->corrs[c].refs[k].index == i) {
                        d[m].corr = c;
                        d[m++].ref = k;
                    }
        }
        off[n] = m;
    }
    return true;
}

corr_engine *corr_engine_new(const ruleset *rs, const corr_limits *lim)
{
    corr_engine *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->rs = rs;
    if (lim)
        e->lim = *lim;
    if (!e->lim.max_groups_per_rule)
        e->lim.max_groups_per_rule = DEF_MAX_GROUPS;
    if (!e->lim.max_memory)
        e->lim.max_memory = DEF_MAX_MEM;
    if (!e->lim.max_entries_per_group)
        e->lim.max_entries_per_group = DEF_MAX_ENT;
    if (e->lim.allowed_lateness_ms < 0)
        e->lim.allowed_lateness_ms = 0;
    if (e->lim.max_ahead_ms <= 0)
        e->lim.max_ahead_ms = DEF_MAX_AHEAD;
    if (!e->lim.resync_events)
        e->lim.resync_events = DEF_RESYNC;
    e->wm = NO_TS;
    e->next_deadline = INT64_MAX;
    e->nbucket = 1024;
    e->bucket = calloc(e->nbucket, sizeof(*e->bucket));
    e->rst = calloc(rs->ncorrs ? rs->ncorrs : 1, sizeof(*e->rst));
    e->pkey = calloc(rs->ncorrs ? rs->ncorrs : 1, sizeof(*e->pkey));
    if (!e->bucket || !e->rst || !e->pkey || !build_deps(e) || !make_pkeys(e)) {
        corr_engine_free(e);
        return NULL;
    }
    e->st.memory_bytes = e->nbucket * sizeof(*e->bucket);
    for (uint32_t c = 0; c < rs->ncorrs; c++) {
        const struct corr_rule *r = &rs->corrs[c];
        rstate *st = &e->rst[c];
        double lo = 1, hi = 0;

        for (uint32_t i = 0; i < r->nconds; i++) {
            double v = r->conds[i].value;

            if (r->conds[i].op == CORR_GT && floor(v) + 1 > lo)
                lo = floor(v) + 1;
            if (r->conds[i].op == CORR_GTE && ceil(v) > lo)
                lo = ceil(v);
            if (v + 2 > hi)
                hi = v + 2;
        }
        st->need = lo > UINT32_MAX ? UINT32_MAX : (uint32_t)lo;
        switch (r->type) {
        case CORR_EVENT_COUNT:
            st->cap = st->need; /* never more than `need` events held */
            break;
        case CORR_VALUE_COUNT: /* at-close: counts past every bound behave alike */
            st->cap = r->at_close ? (hi > UINT32_MAX ? UINT32_MAX : (uint32_t)hi) : st->need;
            break;
        default:
            st->cap = e->lim.max_entries_per_group;
            break;
        }
        if (st->cap > e->lim.max_entries_per_group)
            st->cap = e->lim.max_entries_per_group;
        if (st->cap < 2)
            st->cap = 2;
    }
    return e;
}

void corr_engine_free(corr_engine *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; e->bucket && i < e->nbucket; i++) {
        cgroup *g = e->bucket[i], *nx;

        for (; g; g = nx) {
            nx = g->hnext;
            free(g->ts);
            free(g->val);
            free(g->stage);
            free(g);
        }
    }
    free(e->bucket);
    free(e->rst);
    for (uint32_t i = 0; e->pkey && i < e->rs->ncorrs; i++)
        free(e->pkey[i]);
    free(e->pkey);
    for (uint32_t i = 0; i < e->ngone; i++) {
        free(e->gone[i].rule);
        free(e->gone[i].key);
    }
    free(e->gone);
    free(e->rd_off);
    free(e->rd);
    free(e->cd_off);
    free(e->cd);
    free(e);
}

void corr_feed(corr_engine *e, uint32_t detection_rule_index, const event_view *ev, int64_t ts_ms,
               corr_emit_fn emit, void *arg)
{
    emitter em = {.emit = emit, .arg = arg, .root = ev};
    src s = {.ev = ev};

    if (detection_rule_index >= e->rs->nrules)
        return;
    advance(e, ts_ms, &em);
    for (uint32_t d = e->rd_off[detection_rule_index]; d < e->rd_off[detection_rule_index + 1]; d++)
        feed_ref(e, e->rd[d].corr, e->rd[d].ref, &s, ts_ms, &em);
}

bool corr_admit(corr_engine *e, int64_t ts)
{
    int64_t w = e->lim.max_ahead_ms;
    uint32_t need = e->lim.resync_events;

    if (e->wm == NO_TS) {
        e->near_run = e->ahead_run = e->behind_run = 0;
        return true; /* corr_advance sets a tentative watermark */
    }
    if (ts > e->wm && ts - e->wm > w) {
        e->behind_run = 0;
        if (e->ahead_run == 0 || ts < e->ahead_min)
            e->ahead_min = ts;
        if (++e->ahead_run < need) {
            e->st.clock_ahead++;
            return false;
        }
        /* A run of them: time moved on. The watermark moves to the oldest of the run
         * (the next corr_advance sweeps); this event counts unless it is itself far
         * ahead of that. */
        e->st.clock_resyncs++;
        e->wm_firm = false;
        e->near_run = 0;
        e->ahead_run = 0;
        e->wm = e->ahead_min;
        e->next_deadline = INT64_MIN;
        if (ts - e->wm > w) {
            e->st.clock_ahead++;
            return false;
        }
        return true;
    }
    e->ahead_run = 0;
    if (!e->wm_firm && ts < e->wm && e->wm - ts > w) {
        if (e->behind_run == 0 || ts > e->behind_max)
            e->behind_max = ts;
        if (++e->behind_run >= need) {
            /* The tentative watermark came from an odd event: back to the run's time. */
            e->st.clock_resyncs++;
            e->wm = e->behind_max;
            e->next_deadline = INT64_MIN; /* the next advance sweeps */
            e->behind_run = 0;
            e->near_run = 0;
        }
        return true; /* late, as behind events are */
    }
    e->behind_run = 0;
    if (!e->wm_firm && ++e->near_run >= need)
        e->wm_firm = true;
    return true;
}

void corr_advance(corr_engine *e, int64_t ts_ms, corr_emit_fn emit, void *arg)
{
    emitter em = {.emit = emit, .arg = arg, .root = NULL};

    advance(e, ts_ms, &em);
}

bool corr_uses_rule(const corr_engine *e, uint32_t detection_rule_index)
{
    return detection_rule_index < e->rs->nrules &&
           e->rd_off[detection_rule_index] != e->rd_off[detection_rule_index + 1];
}

void corr_get_stats(const corr_engine *e, corr_stats *out)
{
    *out = e->st;
    out->groups_live = e->ngroups;
}

/* ---- reload: keeping window state -------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Same correlation: identity (id, name) and everything that shapes its windows. */
static bool same_definition(const struct corr_rule *a, const struct corr_rule *b)
{
    if (!str_eq(a->id, b->id) || !str_eq(a->name, b->name) || a->type != b->type ||
        a->timespan_ms != b->timespan_ms || a->nconds != b->nconds || a->nrefs != b->nrefs ||
        a->ngroup_by != b->ngroup_by || a->naliases != b->naliases ||
        !str_eq(a->value_field, b->value_field))
        return false;
    for (uint32_t i = 0; i < a->nconds; i++)
        if (a->conds[i].op != b->conds[i].op || a->conds[i].value != b->conds[i].value)
            return false;
    for (uint32_t i = 0; i < a->nrefs; i++)
        if (!str_eq(a->refs[i].name, b->refs[i].name))
            return false;
    for (uint32_t i = 0; i < a->ngroup_by; i++)
        if (!str_eq(a->group_by[i], b->group_by[i]))
            return false;
    for (uint32_t i = 0; i < a->naliases; i++)
        if (!str_eq(a->aliases[i].alias, b->aliases[i].alias) ||
            !str_eq(a->aliases[i].rule, b->aliases[i].rule) ||
            !str_eq(a->aliases[i].field, b->aliases[i].field))
            return false;
    return true;
}

uint64_t corr_engine_adopt(corr_engine *to, corr_engine *from)
{
    uint64_t moved = 0;
    uint32_t *map;

    if (!to || !from)
        return 0;
    /* old rule index -> new rule index, or UINT32_MAX when changed or gone */
    map = malloc((from->rs->ncorrs ? from->rs->ncorrs : 1) * sizeof(*map));
    if (!map)
        return 0;
    for (uint32_t o = 0; o < from->rs->ncorrs; o++) {
        map[o] = UINT32_MAX;
        for (uint32_t n = 0; n < to->rs->ncorrs; n++)
            if (same_definition(&from->rs->corrs[o], &to->rs->corrs[n])) {
                map[o] = n;
                break;
            }
    }
    for (uint32_t o = 0; o < from->rs->ncorrs; o++) {
        rstate *ors = &from->rst[o];
        cgroup *g;

        if (map[o] == UINT32_MAX)
            continue;
        /* Oldest first, so the new LRU keeps the same order. */
        while ((g = ors->tail)) {
            uint32_t n = map[o];
            cgroup **pp = &from->bucket[g->hash & (from->nbucket - 1)];

            while (*pp && *pp != g)
                pp = &(*pp)->hnext;
            if (*pp)
                *pp = g->hnext;
            lru_unlink(ors, g);
            ors->ngroups--;
            from->ngroups--;
            from->st.memory_bytes -= group_bytes(from, g);
            if (g->dirty) {
                dirty_unlink(from, g);
                mark_dirty(to, g);
            }
            g->rule = n;
            g->hash = group_hash(n, g->text, g->keylen);
            g->hnext = to->bucket[g->hash & (to->nbucket - 1)];
            to->bucket[g->hash & (to->nbucket - 1)] = g;
            lru_push_head(&to->rst[n], g);
            to->rst[n].ngroups++;
            to->ngroups++;
            to->st.memory_bytes += group_bytes(to, g);
            if (to->rs->corrs[n].at_close &&
                g->win_start + to->rs->corrs[n].timespan_ms < to->next_deadline)
                to->next_deadline = g->win_start + to->rs->corrs[n].timespan_ms;
            if (to->ngroups > (uint64_t)to->nbucket * 3 / 4)
                grow_table(to);
            moved++;
        }
    }
    if (from->wm != NO_TS && (to->wm == NO_TS || from->wm > to->wm)) {
        to->wm = from->wm;
        to->wm_firm = from->wm_firm;
        to->near_run = from->near_run;
        to->ahead_run = from->ahead_run;
        to->ahead_min = from->ahead_min;
        to->behind_run = from->behind_run;
        to->behind_max = from->behind_max;
    }
    if (from->touch > to->touch)
        to->touch = from->touch;
    /* Checkpoint bookkeeping: what `from` still had to delete, and every saved group of
     * a rule that changed or went away (its state was not carried over). */
    for (uint32_t i = 0; i < from->ngone; i++) {
        add_gone(to, from->gone[i].rule, from->gone[i].key, from->gone[i].keylen);
        free(from->gone[i].rule);
        free(from->gone[i].key);
    }
    from->ngone = 0;
    to->gone_failed |= from->gone_failed;
    for (uint32_t o = 0; o < from->rs->ncorrs; o++)
        if (map[o] == UINT32_MAX || strcmp(from->pkey[o], to->pkey[map[o]]) != 0)
            add_gone(to, from->pkey[o], NULL, 0);
    free(map);
    return moved;
}

/* ---- checkpoints: window state in the store ------------------------------------------------- */

/*
 * A group's state as saved (host byte order: the database travels with the binary's
 * machine; a foreign or damaged blob fails the size checks and is dropped):
 *   u32 magic, u32 nent, u32 nstage, u32 pad,
 *   i64 newest, win_start, first, last, u64 count, f64 sum, u64 seq (LRU order),
 *   i64 ts[nent], u64 val[nent] (value types only), i64 stage[nstage]
 */
#define STATE_MAGIC 0x46484331u /* "FHC1" */

typedef struct {
    uint32_t magic, nent, nstage, pad;
    int64_t newest, win_start, first, last;
    uint64_t count;
    double sum;
    uint64_t seq;
} state_head;

static uint32_t nstage_of(const struct corr_rule *r)
{
    return r->type == CORR_TEMPORAL           ? r->nrefs
           : r->type == CORR_TEMPORAL_ORDERED ? 2 * r->nrefs
                                              : 0;
}

static bool has_val(const struct corr_rule *r)
{
    return r->type == CORR_VALUE_COUNT || r->type == CORR_VALUE_SUM;
}

static size_t state_size(const struct corr_rule *r, uint32_t nent)
{
    return sizeof(state_head) + (size_t)nent * sizeof(int64_t) * (has_val(r) ? 2 : 1) +
           nstage_of(r) * sizeof(int64_t);
}

void corr_engine_track_changes(corr_engine *e, bool on)
{
    e->track = on;
}

fh_err corr_engine_checkpoint(corr_engine *e, corr_put_fn put, corr_del_fn del, void *arg)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    fh_err err = FH_OK;

    if (e->gone_failed)
        return FH_ERR_NOMEM;
    for (uint32_t i = 0; i < e->ngone && !err; i++)
        err = del(arg, e->gone[i].rule, e->gone[i].key, e->gone[i].keylen);
    for (cgroup *g = e->dirty; g && !err; g = g->dnext) {
        const struct corr_rule *r = &e->rs->corrs[g->rule];
        size_t n = state_size(r, g->nent);
        state_head h = {STATE_MAGIC, g->nent, nstage_of(r), 0,      g->newest, g->win_start,
                        g->first,    g->last, g->count,     g->sum, g->seq};
        unsigned char *p;

        if (n > cap) {
            unsigned char *nb = realloc(buf, n);

            if (!nb) {
                err = FH_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = n;
        }
        p = buf;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        if (g->nent) { /* (ts and val are NULL until the first entry) */
            memcpy(p, g->ts, g->nent * sizeof(int64_t));
            p += g->nent * sizeof(int64_t);
            if (has_val(r)) {
                memcpy(p, g->val, g->nent * sizeof(uint64_t));
                p += g->nent * sizeof(uint64_t);
            }
        }
        if (h.nstage)
            memcpy(p, g->stage, h.nstage * sizeof(int64_t));
        err = put(arg, e->pkey[g->rule], g->text, g->textlen, buf, n);
    }
    free(buf);
    if (err)
        return err;
    /* Written (the caller commits): clear the books. */
    for (uint32_t i = 0; i < e->ngone; i++) {
        free(e->gone[i].rule);
        free(e->gone[i].key);
    }
    e->ngone = 0;
    while (e->dirty) {
        cgroup *g = e->dirty;

        g->saved = true;
        dirty_unlink(e, g);
    }
    return FH_OK;
}

fh_err corr_engine_restore(corr_engine *e, const char *rule, const void *key, size_t keylen,
                           const void *state, size_t len)
{
    const struct corr_rule *r = NULL;
    const unsigned char *p = state;
    const char *text = key;
    uint32_t ci, klen, nul = 0;
    state_head h;
    cgroup *g;

    for (ci = 0; ci < e->rs->ncorrs; ci++)
        if (!strcmp(e->pkey[ci], rule)) {
            r = &e->rs->corrs[ci];
            break;
        }
    if (!r)
        return FH_ERR_NOTFOUND;
    /* the key: "key\0" then one "value\0" per group-by name */
    if (keylen == 0 || keylen > KEY_MAX || text[keylen - 1] != '\0')
        return FH_ERR_PARSE;
    for (size_t i = 0; i < keylen; i++)
        nul += text[i] == '\0';
    if (nul != 1 + r->ngroup_by)
        return FH_ERR_PARSE;
    klen = (uint32_t)strlen(text);
    if (len < sizeof(h))
        return FH_ERR_PARSE;
    memcpy(&h, p, sizeof(h));
    if (h.magic != STATE_MAGIC || h.nstage != nstage_of(r) || h.nent > e->rst[ci].cap ||
        len != state_size(r, h.nent))
        return FH_ERR_PARSE;
    g = group_get(e, ci, group_hash(ci, text, klen), text, klen, (uint32_t)keylen, h.newest);
    if (!g)
        return FH_ERR_LIMIT;
    while (g->cap < h.nent) {
        g->nent = g->cap; /* reserve() grows a full group only */
        if (!reserve(e, g)) {
            g->nent = 0;
            return FH_ERR_LIMIT;
        }
    }
    g->nent = 0;
    p += sizeof(h);
    if (h.nent) {
        memcpy(g->ts, p, h.nent * sizeof(int64_t));
        p += h.nent * sizeof(int64_t);
        if (has_val(r)) {
            memcpy(g->val, p, h.nent * sizeof(uint64_t));
            p += h.nent * sizeof(uint64_t);
        }
    }
    if (h.nstage)
        memcpy(g->stage, p, h.nstage * sizeof(int64_t));
    g->nent = h.nent;
    g->newest = h.newest;
    g->win_start = h.win_start;
    g->first = h.first;
    g->last = h.last;
    g->count = h.count;
    g->sum = h.sum;
    g->seq = h.seq;
    g->saved = true;
    e->st.groups_created--; /* restored, not created by an event */
    if (r->at_close && g->win_start + r->timespan_ms < e->next_deadline)
        e->next_deadline = g->win_start + r->timespan_ms;
    return FH_OK;
}

void corr_engine_get_clock(const corr_engine *e, corr_clock *c)
{
    c->has_watermark = e->wm != NO_TS;
    c->watermark = c->has_watermark ? e->wm : 0;
    c->next_deadline = e->next_deadline;
    c->touch = e->touch;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = (*(cgroup *const *)a)->seq, y = (*(cgroup *const *)b)->seq;

    return x < y ? -1 : x > y;
}

fh_err corr_engine_restore_done(corr_engine *e, const corr_clock *c)
{
    cgroup **v = NULL;
    size_t cap = 0;

    if (c && c->has_watermark && (e->wm == NO_TS || c->watermark > e->wm))
        e->wm = c->watermark;
    if (c) {
        e->next_deadline = c->next_deadline;
        if (c->touch > e->touch)
            e->touch = c->touch;
    }
    /* Rows come back in key order: put each rule's LRU list back in touch order. */
    for (uint32_t ci = 0; ci < e->rs->ncorrs; ci++) {
        rstate *rs = &e->rst[ci];
        size_t n = 0;

        if (rs->ngroups > cap) {
            cgroup **nv = realloc(v, rs->ngroups * sizeof(*nv));

            if (!nv) {
                free(v);
                return FH_ERR_NOMEM;
            }
            v = nv;
            cap = rs->ngroups;
        }
        if (rs->ngroups < 2)
            continue;
        for (cgroup *g = rs->head; g; g = g->next)
            v[n++] = g;
        qsort(v, n, sizeof(*v), by_seq);
        rs->head = rs->tail = NULL;
        for (size_t i = 0; i < n; i++) {
            v[i]->prev = v[i]->next = NULL;
            lru_push_head(rs, v[i]);
        }
    }
    free(v);
    return FH_OK;
}
