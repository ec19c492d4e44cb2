/*
 * fh_yaml.c - see fh_yaml.h.
 */
#include "fh_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

yaml_node_t *fh_yaml_node(yaml_document_t *doc, int id)
{
    return yaml_document_get_node(doc, id);
}

const char *fh_yaml_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

uint32_t fh_yaml_line(const yaml_node_t *n)
{
    return n ? (uint32_t)n->start_mark.line + 1 : 0;
}

static yaml_node_pair_t *find(yaml_document_t *doc, yaml_node_t *m, const char *k)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *key = fh_yaml_scalar(fh_yaml_node(doc, p->key));

        if (key && strcmp(key, k) == 0)
            return p;
    }
    return NULL;
}

yaml_node_t *fh_yaml_get(yaml_document_t *doc, yaml_node_t *m, const char *k)
{
    yaml_node_pair_t *p = find(doc, m, k);

    return p ? fh_yaml_node(doc, p->value) : NULL;
}

yaml_node_t *fh_yaml_key(yaml_document_t *doc, yaml_node_t *m, const char *k)
{
    yaml_node_pair_t *p = find(doc, m, k);

    return p ? fh_yaml_node(doc, p->key) : NULL;
}

bool fh_yaml_bool_text(const char *s, bool *out)
{
    if (!s)
        return false;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcmp(s, "1")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
        !strcmp(s, "0")) {
        *out = false;
        return true;
    }
    return false;
}

typedef struct {
    const char *k;
    yaml_node_t *n;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = strcmp(x->k, y->k);

    /* equal names: in file order, so the later one is the duplicate */
    if (c)
        return c;
    return (x->n->start_mark.index > y->n->start_mark.index) -
           (x->n->start_mark.index < y->n->start_mark.index);
}

yaml_node_t *fh_yaml_duplicate_key(yaml_document_t *doc, yaml_node_t *m, yaml_node_t **first)
{
    size_t n, k = 0;
    key_ref *v;
    yaml_node_t *dup = NULL;

    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    if (n < 2 || !(v = malloc(n * sizeof(*v))))
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = fh_yaml_node(doc, p->key);

        if (fh_yaml_scalar(kn))
            v[k++] = (key_ref){fh_yaml_scalar(kn), kn};
    }
    qsort(v, k, sizeof(*v), key_ref_cmp);
    for (size_t i = 1; i < k && !dup; i++)
        if (!strcmp(v[i - 1].k, v[i].k)) {
            dup = v[i].n;
            *first = v[i - 1].n;
        }
    free(v);
    return dup;
}

fh_err fh_yaml_load_file(yaml_document_t *doc, const char *path, const char *what, char *err,
                         size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    FILE *fp = fopen(path, "rb");
    fh_err rc = FH_OK;

    if (!fp) {
        fh_error_at(err, errlen, path, 0, "cannot open %s: %s", what, strerror(errno));
        return FH_ERR_IO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return FH_ERR_NOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, doc)) {
        fh_error_at(err, errlen, path, (uint32_t)parser.problem_mark.line + 1,
                    "YAML syntax error: %s%s%s", parser.problem ? parser.problem : "unknown",
                    parser.context ? " " : "", parser.context ? parser.context : "");
        rc = FH_ERR_PARSE;
    } else if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *r = yaml_document_get_root_node(&extra);

        if (r) {
            fh_error_at(err, errlen, path, fh_yaml_line(r), "only one YAML document is allowed");
            yaml_document_delete(doc);
            rc = FH_ERR_CONFIG;
        }
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

fh_err fh_yaml_fail(const fh_yaml_src *src, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fh_error_atv(src->err, src->errlen, src->path, n ? fh_yaml_line(n) : 1, fmt, ap);
    va_end(ap);
    return FH_ERR_CONFIG;
}
