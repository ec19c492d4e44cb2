/*
 * yara_source.h - the rule sources of a YARA set, read once and kept in memory, and the
 * "plain" variant without file-format modules (see the design note in yara_source.c).
 */
#ifndef FH_YARA_SOURCE_H
#define FH_YARA_SOURCE_H

#include <stdbool.h>

#include <yara.h>

typedef struct yara_sources yara_sources;

yara_sources *yara_sources_new(void);
void yara_sources_free(yara_sources *s);

/*
 * Compiles the file at path into c under namespace ns, from memory; what it includes is
 * read through s (relative to the including file, as libyara does). Hands out the plain
 * texts once yara_sources_plain_init() ran. Returns libyara's error count, -1 when a file
 * could not be read (yara_sources_error()) or memory ran out.
 */
int yara_sources_add(yara_sources *s, YR_COMPILER *c, const char *path, const char *ns);
/* The first file that could not be read ("cannot read ...: reason"), or NULL. */
const char *yara_sources_error(const yara_sources *s);

/* True when a source imports pe, elf, dotnet, macho or dex. */
bool yara_sources_have_format(const yara_sources *s);
/* True when a source imports "time": the same data may then match at one time and not at
 * another (yara_scan.c keeps no clean cache for such a set). */
bool yara_sources_use_clock(const yara_sources *s);
/* Makes the plain texts: the sources with the imports of those modules blanked out. */
bool yara_sources_plain_init(yara_sources *s);
/*
 * Makes the alt texts, for the set of the rules yara_prefilter.c says may match with no
 * string: the plain texts less every rule whose name keep() refuses. Hands them out from
 * then on.
 */
bool yara_sources_alt_init(yara_sources *s, bool (*keep)(const char *name, void *arg), void *arg);
/* Blanks, in the text now handed out (plain or alt) of the source libyara calls key, the
 * rule spanning line. False when no rule spans it. */
bool yara_sources_drop_rule(yara_sources *s, const char *key, int line);

/* In YARA source text t[0..len): the first position from pos on that is not white space
 * or a comment; the position after the "string" or /regexp/ opening at t[pos]. */
size_t yara_text_skip_space(const char *t, size_t len, size_t pos);
/* A character of an identifier (letters, digits, '_'). */
bool yara_text_ident_char(char c);
size_t yara_text_quoted_end(const char *t, size_t len, size_t pos);

/* The sources read (top-level files and includes), and the text of each as read. */
size_t yara_sources_count(const yara_sources *s);
const char *yara_sources_text(const yara_sources *s, size_t i, size_t *len);

#endif
