/*
 * yara_scan.h - YARA rules and per-thread scanners (libyara 4.2).
 *
 * Design
 *
 *   yara_scan_init()      once at start-up (reference counted, any thread)
 *        │
 *   yara_rules_load()     compile every *.yar / *.yara under a path into a
 *        │                yara_rules (refs = 1); on any error nothing is made
 *        ▼
 *   yara_rules_slot       the set in service: set() publishes a new set and
 *        │                drops the slot's reference to the old one
 *        ▼
 *   yara_scanner_new()    one per worker thread; holds a reference to the
 *                         rules it was made from, so a worker keeps scanning
 *                         with the old set until it builds a new scanner
 *
 * SIGHUP reload: a control thread calls yara_rules_load() (slow; workers keep
 * running), and only on success yara_rules_slot_set(). Each worker compares
 * yara_rules_slot_generation() (one atomic load) with its own before a scan;
 * when it changed, it takes yara_rules_slot_get(), makes a new scanner and
 * frees the old one. The last yara_rules_unref() (slot, or the last old
 * scanner) destroys the compiled rules. A failed reload changes nothing.
 *
 * Ownership: a yara_rules is reference counted with C11 atomics; whoever got
 * a reference (load, ref, slot_get) releases it with yara_rules_unref(). A
 * yara_scanner belongs to one thread at a time. The yara_match given to the
 * match callback points into the rules (names, tags, metadata) and into the
 * scanner (matched bytes): valid only during the callback.
 *
 * Matched data is attacker-controlled: yara_match_to_json() never writes it
 * unless an excerpt length is given, and then only escaped by jbuf.
 *
 * Only sensor/yara_scan.c includes yara.h.
 */
#ifndef FH_YARA_SCAN_H
#define FH_YARA_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"
#include "yara_prefilter.h"

#define YARA_MAX_TAGS        16 /* tags kept per match (more are dropped) */
#define YARA_MAX_META        32 /* metadata entries kept per match */
#define YARA_MAX_STRINGS     16 /* string matches kept per rule match */
#define YARA_MAX_FILES       4096
#define YARA_DEFAULT_TIMEOUT 1 /* seconds per scan; libyara counts whole seconds */

typedef struct yara_rules yara_rules;
typedef struct yara_scanner yara_scanner;

typedef enum {
    YARA_META_STRING,
    YARA_META_INT,
    YARA_META_BOOL,
} yara_meta_type;

typedef struct {
    const char *key;
    yara_meta_type type;
    const char *s; /* YARA_META_STRING */
    int64_t i;     /* YARA_META_INT */
    bool b;        /* YARA_META_BOOL */
} yara_meta;

typedef struct {
    const char *id;      /* "$a", or "$" for an anonymous string */
    uint64_t offset;     /* from the start of the scanned buffer */
    uint32_t length;     /* bytes matched */
    const uint8_t *data; /* the first data_len matched bytes (attacker data) */
    uint32_t data_len;
} yara_string_match;

typedef struct {
    const char *rule;
    const char *ns;
    const char *tags[YARA_MAX_TAGS];
    size_t n_tags;
    yara_meta meta[YARA_MAX_META];
    size_t n_meta;
    yara_string_match strings[YARA_MAX_STRINGS];
    size_t n_strings;
    uint64_t strings_total; /* all string matches of the rule (>= n_strings) */
} yara_match;

typedef enum {
    YARA_DIR_NONE = 0, /* "direction" not written */
    YARA_DIR_TO_SERVER,
    YARA_DIR_TO_CLIENT,
} yara_direction;

/* Called once per matching rule; return 0 to go on, non-zero to stop the scan. */
typedef int (*yara_match_cb)(const yara_match *m, void *arg);

/* ---- library ------------------------------------------------------------ */

/* yr_initialize() on the first call; FH_ERR_NOMEM if libyara refuses. */
fh_err yara_scan_init(void);
/* yr_finalize() when the calls balance the inits; every rules object and
 * scanner must be gone by then. */
void yara_scan_fini(void);

/* ---- rules -------------------------------------------------------------- */

/* Load flags. */
#define YARA_LOAD_ALLOW_WARNINGS 1u /* compiler warnings are not errors */
#define YARA_LOAD_NO_PREFILTER   2u /* no yara_prefilter: every buffer goes to libyara whole */

/*
 * Compiles path: one rule file, or every *.yar / *.yara file under a directory
 * (recursively, in byte order of the names; hidden entries skipped). Each file
 * gets its own namespace: its path relative to the directory without the
 * extension ("webshells", "sub/eicar"); for a single file its base name.
 * Compiler warnings are errors (a slow rule on the packet path is a mistake).
 *
 * On success *out holds a new set (one reference). On failure *out is
 * untouched, err holds "FILE:LINE: MESSAGE" for every error of every file
 * (one per line, truncated to errlen), and the result is FH_ERR_PARSE (rule
 * errors), FH_ERR_NOTFOUND (no such path or no rule file), FH_ERR_IO,
 * FH_ERR_LIMIT (over YARA_MAX_FILES files), FH_ERR_NOMEM or FH_ERR_ARG.
 */
fh_err yara_rules_load(const char *path, yara_rules **out, char *err, size_t errlen);
fh_err yara_rules_load_flags(const char *path, unsigned flags, yara_rules **out, char *err,
                             size_t errlen);

yara_rules *yara_rules_ref(yara_rules *r);
/* Drops one reference; the last one destroys the compiled rules. NULL: no-op. */
void yara_rules_unref(yara_rules *r);
/* Rules (not private ones) and rule files in the set. */
unsigned yara_rules_count(const yara_rules *r);
unsigned yara_rules_files(const yara_rules *r);
/* Rules that need a file-format module (pe, elf, dotnet, macho, dex) and run only on data
 * of such a format; 0 when every rule runs on all data (yara_source.c). */
unsigned yara_rules_format_only(const yara_rules *r);

/* True when the set has a prefilter (yara_prefilter.c); *always gets the number of rules run
 * on data the filter finds nothing in (they may match with no string found). */
bool yara_rules_prefiltered(const yara_rules *r, unsigned *always);
/* What the prefilter read from the sources (literals, strings, the first rule it could not
 * prove needs a string), or NULL without a prefilter. */
const yara_prefilter_info *yara_rules_prefilter_info(const yara_rules *r);

/* The set in service, swapped as a whole (see the design note). */
typedef struct yara_rules_slot yara_rules_slot;

yara_rules_slot *yara_rules_slot_new(void);
/* Drops the slot's reference. */
void yara_rules_slot_free(yara_rules_slot *s);
/* Publishes r (takes over the caller's reference; NULL empties the slot). */
void yara_rules_slot_set(yara_rules_slot *s, yara_rules *r);
/* A new reference to the current set, or NULL if empty. */
yara_rules *yara_rules_slot_get(yara_rules_slot *s);
/* Incremented by every set(): cheap to poll per scan. */
uint64_t yara_rules_slot_generation(const yara_rules_slot *s);

/* ---- scanning ----------------------------------------------------------- */

/* A scanner for one thread; holds a reference to rules. NULL on failure. */
yara_scanner *yara_scanner_new(yara_rules *rules);
void yara_scanner_free(yara_scanner *s);
yara_rules *yara_scanner_rules(const yara_scanner *s);
/* Seconds after which a scan is abandoned (0: no limit). */
void yara_scanner_set_timeout(yara_scanner *s, int seconds);
/* Scans with the whole set: data of a file format, or every scan when there is no plain set. */
uint64_t yara_scanner_full_scans(const yara_scanner *s);
/* True for data a file-format module reads (PE, ELF, Mach-O, DEX). */
bool yara_format_data(const void *data, size_t len);

/*
 * The clean cache: the scanner remembers, by a keyed 128-bit SipHash (libsodium, a key
 * drawn per scanner) of their bytes and their length, the last buffers a scan found clean
 * (no match, no timeout, no error); yara_scan() answers 0 for the same bytes again without
 * scanning. Direct-mapped, `entries` rounded up to a power of two (at most
 * YARA_CLEAN_CACHE_MAX; 0 turns it off: the default). A buffer with a match is scanned every
 * time, so every match is reported with its strings. Not kept for a set that imports
 * "time", whose results may change with the clock alone. A scanner's cache ends with it:
 * a reload starts empty. Floods of one payload from many sources, beacons and discovery
 * broadcasts cost one scan each instead of one per flow.
 */
#define YARA_CLEAN_CACHE_MAX (1u << 20)
fh_err yara_scanner_set_clean_cache(yara_scanner *s, uint32_t entries);
/* True when the last yara_scan() was answered from the clean cache. */
bool yara_scanner_last_cached(const yara_scanner *s);
/* True when the prefilter answered the last yara_scan(): no rule that needs a string could
 * match, so only the rules that need none ran (or nothing, when there are none). */
bool yara_scanner_last_prefiltered(const yara_scanner *s);

/*
 * Scans data[0..len) and calls cb for every matching public rule. Returns the
 * number of matches reported (>= 0), or FH_ERR_LIMIT if the scan timed out
 * (no match is then reported) or libyara refused it otherwise, FH_ERR_NOMEM,
 * FH_ERR_ARG. Single-threaded per scanner.
 */
int yara_scan(yara_scanner *s, const void *data, size_t len, yara_match_cb cb, void *arg);

/*
 * Writes the "yara" object of an event: {"rule", "namespace", "tags": [],
 * "meta": {}, "strings": [{"id", "offset", "length"[, "data"]}],
 * "strings_total" (only when more matched than listed), "direction"}. Metadata
 * keeps its type (string, integer, boolean); a key repeated in a rule is
 * written once (the first). "data" is written only when excerpt_len > 0: at
 * most that many matched bytes, escaped (invalid UTF-8 becomes U+FFFD).
 */
void yara_match_to_json(jbuf *b, const yara_match *m, yara_direction dir, size_t excerpt_len);

#endif
