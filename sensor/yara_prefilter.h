/*
 * yara_prefilter.h - which buffers cannot match any rule of a YARA set, found without
 * libyara (see the design note in yara_prefilter.c).
 */
#ifndef FH_YARA_PREFILTER_H
#define FH_YARA_PREFILTER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct yara_prefilter yara_prefilter;

typedef struct {
    unsigned rules;    /* public rules seen */
    unsigned always;   /* of them, rules that may match with no string found (run always) */
    unsigned strings;  /* strings whose necessary literals are in the filter */
    unsigned unknown;  /* strings with no necessary literal (xor, base64, a regexp without one) */
    unsigned literals; /* literals in the filter */
    char first_always[128]; /* the name of the first "always" rule, for the log */
} yara_prefilter_info;

/*
 * Analyses the rule sources texts[0..n) (each the whole text of one file, as libyara
 * compiled it). Returns NULL when no filter can be made (out of memory, Hyperscan refused
 * the literals or this CPU); info is filled in either way.
 */
yara_prefilter *yara_prefilter_new(const char *const *texts, const size_t *lens, size_t n,
                                   yara_prefilter_info *info);
void yara_prefilter_free(yara_prefilter *p);

/* True when the rule named name belongs in the set run on data the filter finds nothing in:
 * an "always" rule, a rule one of them names, or a global rule. */
bool yara_prefilter_keep(const yara_prefilter *p, const char *name);
/* Public rules that may match with no string found (yara_prefilter_info.always). */
unsigned yara_prefilter_always_count(const yara_prefilter *p);

/* Per-thread scan space; NULL when out of memory. */
void *yara_prefilter_scratch_new(const yara_prefilter *p);
void yara_prefilter_scratch_free(void *scratch);

/*
 * False when no rule that needs a string can match data[0..len): none of the literals one
 * of its necessary strings contains is in the data. True otherwise, and on any error.
 */
bool yara_prefilter_may_match(const yara_prefilter *p, void *scratch, const void *data, size_t len);

#endif
