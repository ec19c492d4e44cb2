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
