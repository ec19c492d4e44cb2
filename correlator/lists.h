/*
 * lists.h - placeholder lists for Sigma's |expand modifier.
 *
 * A rule value "%threat_intel_ips%" with |expand stands for every line of
 * rules/lists/threat_intel_ips.txt (one value per line; blank lines and lines
 * starting with '#' are skipped; surrounding spaces trimmed). The asset
 * inventory supplies further placeholders of its own (management networks,
 * allowed countries, zone.<zone>, egress.<segment>, see assets.h); a name
 * defined in both places is an error, so a rule author never has to guess
 * which one is used.
 *
 * Lists change without touching rules: the correlator reloads the rule set
 * (keeping window state of unchanged rules) when a list file changes.
 */
#ifndef FH_LISTS_H
#define FH_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct {
    char *name;
    char **values;
    size_t n;
} named_list;

typedef struct {
    named_list *lists;
    size_t n;
} list_store;

/*
 * Loads every NAME.txt in dir (a missing dir is an empty store). Errors name
 * the file and line ("rules/lists/x.txt:3: value longer than 1024 bytes").
 */
fh_err lists_load(list_store *ls, const char *dir, char *err, size_t errlen);
void lists_free(list_store *ls);

/* The values of list `name`, or FH_ERR_NOTFOUND. */
fh_err lists_get(const list_store *ls, const char *name, const char *const **values, size_t *n);

/* Resolves placeholders for the loader: lists first, then an optional second source. */
typedef fh_err (*placeholder_fn)(void *arg, const char *name, const char *const **values,
                                 size_t *n);

#endif
