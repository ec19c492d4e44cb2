/*
 * fh_yaml.h - the one way Fenghuo reads YAML documents (libyaml's document API):
 * node access, scalars, the boolean grammar, duplicate keys, and messages that
 * say where ("PATH:LINE: message", fh_error.h's fh_error_at). Used by the rule
 * loader (sigma_load.c, corr_rule.c) and the asset inventory (assets_load.c);
 * the sensor's configuration (config.c) reads YAML events but takes its
 * booleans from here too, so "yes", "on" and "true" mean the same everywhere.
 */
#ifndef FH_YAML_H
#define FH_YAML_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "fh_error.h"

/* A document being read, for messages about its nodes. */
typedef struct {
    const char *path;
    yaml_document_t *doc;
    char *err; /* where messages go (may be NULL) */
    size_t errlen;
} fh_yaml_src;

/*
 * Reads the one YAML document of the file at path into doc (free it with
 * yaml_document_delete). Errors, written to err: "PATH: cannot open WHAT:
 * REASON" (FH_ERR_IO), "PATH:LINE: YAML syntax error: ..." (FH_ERR_PARSE), and
 * "PATH:LINE: only one YAML document is allowed" (FH_ERR_CONFIG: a second one
 * would be ignored silently).
 */
fh_err fh_yaml_load_file(yaml_document_t *doc, const char *path, const char *what, char *err,
                         size_t errlen);

/* Writes "PATH:LINE: message" about node n (line 1 for NULL) and returns FH_ERR_CONFIG. */
fh_err fh_yaml_fail(const fh_yaml_src *src, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The node with id `id` of doc, or NULL. */
yaml_node_t *fh_yaml_node(yaml_document_t *doc, int id);

/* A scalar's text (NUL-terminated; libyaml's own), or NULL when n is not a scalar. */
const char *fh_yaml_scalar(const yaml_node_t *n);

/* 1-based line of a node (0 for NULL). */
uint32_t fh_yaml_line(const yaml_node_t *n);

/* The value (or the key node) of key `k` in mapping m; NULL when absent or m is no map. */
yaml_node_t *fh_yaml_get(yaml_document_t *doc, yaml_node_t *m, const char *k);
yaml_node_t *fh_yaml_key(yaml_document_t *doc, yaml_node_t *m, const char *k);

/*
 * The boolean grammar of every Fenghuo setting: true, yes, on, 1 / false, no,
 * off, 0, the words in any case (as Suricata's ConfValIsTrue). Returns false (and leaves *out) for
 * anything else. (Values in a rule's detection are typed by YAML's core schema, sigma_load.c, not
 * by this.)
 */
bool fh_yaml_bool_text(const char *s, bool *out);

/*
 * The first key that mapping m names twice: returns its second occurrence and
 * sets *first to the first one; NULL when every key is unique (or m is no map).
 * O(n log n). A lookup would silently take the first, so loaders refuse these.
 */
yaml_node_t *fh_yaml_duplicate_key(yaml_document_t *doc, yaml_node_t *m, yaml_node_t **first);

#endif
