/*
 * corr_rule.c - Sigma correlation rules: compile (YAML document -> corr_rule) and
 * resolve (references, aliases, cycles). The engine that runs them is correlation.c.
 */
#include "corr_rule.h"

#include <yaml.h>

#include "../common/fh_yaml.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    yaml_node_t *n = fh_yaml_get(c->doc, root, k);

    if (!n)
        return true;
    if (!fh_yaml_scalar(n))
        return cfail(c, n, "'%s' must be a string", k);
    *out = strdup(fh_yaml_scalar(n));
    if (!*out) {
        c->code = FH_ERR_NOMEM;
        return cfail(c, n, "out of memory");
    }
    return true;
}

static bool parse_bool(cctx *c, yaml_node_t *n, const char *what, bool *out)
{
    if (fh_yaml_bool_text(fh_yaml_scalar(n), out))
        return true;
    return cfail(c, n, "'%s' must be true or false", what);
}

/* "30s", "5m", "1h", "1d" -> ms. */
static bool parse_timespan(cctx *c, yaml_node_t *n, int64_t *ms)
{
    const char *s = fh_yaml_scalar(n);
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
        yaml_node_t *kn = fh_yaml_node(c->doc, p->key), *vn = fh_yaml_node(c->doc, p->value);
        const char *k = fh_yaml_scalar(kn), *v = fh_yaml_scalar(vn);
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
        yaml_node_t *n = fh_yaml_node(c->doc, *it);
        const char *s = fh_yaml_scalar(n);

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
        yaml_node_t *vn = fh_yaml_node(c->doc, p->value);

        if (!fh_yaml_scalar(fh_yaml_node(c->doc, p->key)))
            return cfail(c, fh_yaml_node(c->doc, p->key), "alias names must be strings");
        if (vn->type != YAML_MAPPING_NODE)
            return cfail(c, vn, "alias '%s' must map rule names to fields",
                         fh_yaml_scalar(fh_yaml_node(c->doc, p->key)));
        n += (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start);
    }
    r->aliases = calloc(n ? n : 1, sizeof(*r->aliases));
    if (!r->aliases) {
        c->code = FH_ERR_NOMEM;
        return cfail(c, an, "out of memory");
    }
    for (yaml_node_pair_t *p = an->data.mapping.pairs.start; p < an->data.mapping.pairs.top; p++) {
        const char *alias = fh_yaml_scalar(fh_yaml_node(c->doc, p->key));
        yaml_node_t *vn = fh_yaml_node(c->doc, p->value);

        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top;
             q++) {
            yaml_node_t *rk = fh_yaml_node(c->doc, q->key), *fv = fh_yaml_node(c->doc, q->value);
            corr_alias *a = &r->aliases[r->naliases];

            if (!fh_yaml_scalar(rk) || !fh_yaml_scalar(fv) || !*fh_yaml_scalar(fv))
                return cfail(c, fv, "alias '%s': each entry is 'rule name: field'", alias);
            a->alias = strdup(alias);
            a->rule = strdup(fh_yaml_scalar(rk));
            a->field = strdup(fh_yaml_scalar(fv));
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
        yaml_node_t *n = fh_yaml_node(c->doc, *it);
        const char *s = fh_yaml_scalar(n);

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
        yaml_node_t *kn = fh_yaml_node(c->doc, p->key);
        const char *k = fh_yaml_scalar(kn);

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
    cn = fh_yaml_get(c->doc, root, "correlation");
    if (!cn)
        return cfail(c, root, "missing 'correlation'");
    r->corr_line = (uint32_t)cn->start_mark.line + 1;
    if (!dup_meta(c, root, "title", &r->title) || !dup_meta(c, root, "title_zh", &r->title_zh) ||
        !dup_meta(c, root, "id", &r->id) || !dup_meta(c, root, "name", &r->name) ||
        !dup_meta(c, root, "status", &r->status) ||
        !dup_meta(c, root, "description", &r->description) ||
        !dup_meta(c, root, "author", &r->author))
        return false;
    /* a key given twice would be read once, silently: refused, in both maps */
    {
        yaml_node_t *first = NULL, *dup = fh_yaml_duplicate_key(c->doc, root, &first);

        if (!dup)
            dup = fh_yaml_duplicate_key(c->doc, cn, &first);
        if (dup)
            return cfail(c, dup, "duplicate key '%s' (first at line %u)", fh_yaml_scalar(dup),
                         fh_yaml_line(first));
    }
    if (!r->title)
        return cfail(c, root, "missing 'title'");
    r->lvl = LEVEL_MEDIUM;
    if ((n = fh_yaml_get(c->doc, root, "level"))) {
        static const char *lv[] = {"informational", "low", "medium", "high", "critical"};
        bool ok = false;

        for (int i = 0; fh_yaml_scalar(n) && i < 5; i++)
            if (!strcasecmp(fh_yaml_scalar(n), lv[i])) {
                r->lvl = (level)i;
                ok = true;
            }
        if (!ok)
            return cfail(c, n, "unknown level '%s'",
                         fh_yaml_scalar(n) ? fh_yaml_scalar(n) : "(not a string)");
        r->level_set = true;
    }
    if ((n = fh_yaml_get(c->doc, root, "tags"))) {
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
            yaml_node_t *tn = fh_yaml_node(c->doc, n->data.sequence.items.start[i]);

            if (!fh_yaml_scalar(tn))
                return cfail(c, tn, "'tags' must be a list of strings");
            if (!(r->tags[r->ntags] = strdup(fh_yaml_scalar(tn)))) {
                c->code = FH_ERR_NOMEM;
                return cfail(c, tn, "out of memory");
            }
            r->ntags++;
        }
    }

    if (cn->type != YAML_MAPPING_NODE)
        return cfail(c, cn, "'correlation' must be a map");
    for (yaml_node_pair_t *p = cn->data.mapping.pairs.start; p < cn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = fh_yaml_node(c->doc, p->key);
        const char *k = fh_yaml_scalar(kn);

        if (!k || !in_list(k, corr_keys))
            return cfail(c, kn,
                         "unknown key '%s' in 'correlation' (type, rules, group-by, "
                         "timespan, condition, aliases, generate)",
                         k ? k : "(not a string)");
    }
    n = fh_yaml_get(c->doc, cn, "type");
    if (!n)
        return cfail(c, cn, "correlation: missing 'type'");
    s = fh_yaml_scalar(n);
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
    if (!(n = fh_yaml_get(c->doc, cn, "rules")))
        return cfail(c, cn, "correlation: missing 'rules'");
    if (!parse_rules(c, n, r))
        return false;
    if ((r->type == CORR_TEMPORAL || r->type == CORR_TEMPORAL_ORDERED) && r->nrefs < 2)
        return cfail(c, n, "%s correlation needs at least two rules", type_names[r->type]);
    if ((n = fh_yaml_get(c->doc, cn, "aliases")) && !parse_aliases(c, n, r))
        return false;
    if ((n = fh_yaml_get(c->doc, cn, "group-by")) && !parse_group_by(c, n, r))
        return false;
    for (uint32_t i = 0; i < r->naliases; i++) {
        bool used = false;

        for (uint32_t k = 0; k < r->ngroup_by; k++)
            used |= !strcmp(r->group_by[k], r->aliases[i].alias);
        if (!used)
            return cfail(
                c, fh_yaml_get(c->doc, fh_yaml_get(c->doc, cn, "aliases"), r->aliases[i].alias),
                "alias '%s' is not used in 'group-by'", r->aliases[i].alias);
        if (!intern(c, fh_yaml_get(c->doc, cn, "aliases"), r->aliases[i].field, &r->aliases[i].fid))
            return false;
    }
    if (!(n = fh_yaml_get(c->doc, cn, "timespan")))
        return cfail(c, cn, "correlation: missing 'timespan'");
    if (!parse_timespan(c, n, &r->timespan_ms))
        return false;
    n = fh_yaml_get(c->doc, cn, "condition");
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
        !intern(c, fh_yaml_get(c->doc, n, "field"), r->value_field, &r->value_fid))
        return false;
    gen_top = fh_yaml_get(c->doc, root, "generate");
    gen_corr = fh_yaml_get(c->doc, cn, "generate");
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
    free(r->title_zh);
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
