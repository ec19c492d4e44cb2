/*
 * alerts.h - from rule hits to deduplicated alerts.
 *
 *   engine ── alert_hit ──► alert_book ── emit(alert) ──► store_apply() + NDJSON / outbox
 *                              │   ▲
 *                              │   └── load(rule, key): an alert still open in the store
 *                              ▼
 *          open alerts keyed by (rule id, group key), LRU-bounded, dirty list
 *
 * One alert per rule per group key while it is open: a repeat raises `count`
 * (by the hit's increment: 1 for a detection rule, the correlation count for a
 * correlation rule), `hits` (by 1) and `last_seen`; it does not open a new alert.
 * Which event fields make the group key is the caller's choice (the rule's
 * group-by, or src_ip for a detection rule): the book only sees the string.
 *
 * Alert ids are deterministic: the first 32 hex digits of
 *     SHA-256(rule_id "\0" group_key "\0" decimal(window_start_ms))
 * where window_start_ms is the first window of the alert: the correlation
 * window of the hit that opened it, or, for a detection rule, the event time
 * of that hit. Replaying the same events in the same order opens the same ids.
 *
 * When is an alert open? The book asks, in order: its own table; then the
 * store (ops.load: the newest alert of that rule and key whose status is new,
 * acknowledged, rectifying or reopened); an alert whose last_seen is more than
 * max_idle_ms before the hit (when max_idle_ms > 0) counts as closed. So after
 * a restart or an LRU eviction, repeats continue the alert in the store rather
 * than opening a second one. When the API changes an alert's status it calls
 * alert_book_forget() so the book re-reads it.
 *
 * Batching and evidence: alert_book_hit() only changes memory and marks the
 * alert dirty; alert_book_flush() hands each dirty alert to ops.emit once (in
 * the order they were first changed) with the evidence gathered since the
 * previous flush. Each hit contributes one evidence item (its triggering event,
 * community_id, time, seq = the hit's ordinal in the alert). The store keeps the
 * first `evidence_first` items (the start of an incident matters most) plus the
 * latest one; so between flushes the book keeps at most evidence_first + 1
 * items per alert, each capped at evidence_max_bytes (longer events are cut at
 * a UTF-8 boundary and flagged `truncated`). Memory: max_open alerts plus the
 * evidence of one batch. Evicting a dirty alert emits it first, so hit() may
 * call ops.emit too: call hit() and flush() inside one store transaction.
 *
 * Failure: if emit or the store transaction fails, the book is ahead of the
 * store: roll back, alert_book_reset(), and re-seek the consumer to the offsets
 * in the store (see store.h); nothing is lost or counted twice.
 *
 * Ownership: the book copies everything it keeps from a hit; the alert passed
 * to emit (and returned by hit) belongs to the book and is valid until the next
 * call on the book. Not thread-safe: one book per correlation partition.
 */
#ifndef FH_ALERTS_H
#define FH_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"

#define ALERT_ID_LEN 32 /* hex digits */

/* Severity in the order of sigma.h's `level` enum (LEVEL_INFORMATIONAL = 0 ...). */
enum {
    ALERT_LEVEL_INFORMATIONAL = 0,
    ALERT_LEVEL_LOW,
    ALERT_LEVEL_MEDIUM,
    ALERT_LEVEL_HIGH,
    ALERT_LEVEL_CRITICAL
};

/* "informational" ... "critical"; NULL when out of range. */
const char *alert_level_name(int level);
/* The inverse (case-sensitive); -1 when unknown. */
int alert_level_parse(const char *name);

/* ---- tags ---------------------------------------------------------------------- */

/*
 * Rule tags split into fields so that reports filter per clause and category:
 *
 *   tag                        kind      value              sub        display
 *   gbt22239.8.1.4.1.c         clause    8.1.4.1.c          NULL       8.1.4.1 c
 *   gbt22239.8.1.2.2           clause    8.1.2.2            NULL       8.1.2.2
 *   gbt20986.malware.mining    category  malware            mining     malware.mining
 *   gbt20986.malware           category  malware            NULL       malware
 *   attack.t1595.001           attack    t1595.001          technique  T1595.001
 *   attack.credential-access   attack    credential-access  tactic     credential-access
 *   attack.g0007               attack    g0007              group      G0007 (s0002: software)
 *   anything else, or a        other     the tag            NULL       the tag
 *   gbt22239 tag whose clause
 *   is not N(.N)*(.x)
 *
 * Prefixes are matched case-insensitively; value and sub are lower-cased.
 */
typedef enum {
    ALERT_TAG_CLAUSE = 0,
    ALERT_TAG_CATEGORY,
    ALERT_TAG_ATTACK,
    ALERT_TAG_OTHER
} alert_tag_kind;

typedef struct {
    alert_tag_kind kind;
    char *tag; /* as written in the rule */
    char *value;
    char *sub; /* may be NULL */
    char *display;
} alert_tag;

/* "clause", "category", "attack", "other" (the alert_tags.kind column). */
const char *alert_tag_kind_name(alert_tag_kind k);
/* Splits one tag (allocates the strings). FH_ERR_NOMEM, or FH_ERR_PARSE for an empty tag. */
fh_err alert_tag_parse(const char *tag, alert_tag *out);
void alert_tag_clear(alert_tag *t);

/* ---- what the rule engine reports ---------------------------------------------- */

/* One side of the flow as the asset inventory saw it; every string may be NULL. */
typedef struct {
    const char *ip;
    const char *zone;
    const char *department;
    const char *name;    /* the asset's host name */
    const char *segment; /* the inventory segment holding the address */
} alert_side_view;

/*
 * One rule firing on one event. Strings are NUL-terminated and only read
 * during alert_book_hit(). rule_id is the Sigma `id`, or the rule's name when
 * it has none (it must not change when the rule file is edited).
 */
typedef struct {
    const char *rule_id;   /* required */
    const char *rule_name; /* may be NULL */
    const char *title;     /* required */
    int level;             /* ALERT_LEVEL_* */
    const char *const *tags;
    uint32_t ntags;

    const char *group_key; /* required; "" is a valid key (rule without grouping) */
    int64_t ts_ms;         /* event time of the triggering event */
    bool correlation;      /* a correlation hit: window_start_ms is its window */
    int64_t window_start_ms;
    uint64_t count; /* events this hit stands for: 1 (0 means 1), or the correlation count */

    const char *event; /* the triggering event's JSON text (evidence), may be NULL */
    size_t event_len;
    const char *community_id; /* may be NULL */

    alert_side_view src, dest;
    const char *sensor; /* the triggering event's sensor.id; may be NULL */
    /* The owning department (责任单位). NULL: the side the group key names (the
     * group key equals src.ip or dest.ip), else dest's department, else src's. */
    const char *department;
} alert_hit;

/* ---- alerts -------------------------------------------------------------------- */

typedef struct {
    char *ip, *zone, *department, *name, *segment;
} alert_side;

typedef struct {
    uint64_t seq; /* 1-based: the hit of the alert this event triggered */
    int64_t ts_ms;
    char *community_id; /* may be NULL */
    char *event;        /* JSON text (possibly cut, see truncated); "" when the hit had none */
    size_t event_len;
    bool truncated;
} alert_evidence;

/* An alert's state; the strings belong to whoever filled it (alert_clear frees them). */
typedef struct {
    char id[ALERT_ID_LEN + 1];
    char *rule_id, *rule_name, *title;
    int level;
    alert_tag *tags;
    uint32_t ntags;
    /* The first gbt20986 tag, split (point into tags; NULL when none). */
    const char *category, *subcategory;
    char *group_key;
    int64_t window_start_ms;
    int64_t first_seen_ms, last_seen_ms; /* min and max event time of the hits */
    int64_t created_ms, updated_ms;      /* event time of the opening / the latest hit */
    uint64_t count, hits;
    alert_side src, dest; /* from the opening hit; a NULL field is filled by a later hit */
    char *department;
    char *sensor; /* the sensor that saw the first hit naming one (verification asks it) */
    char *status; /* from the store when resumed; NULL for an alert opened here ("new") */
    bool opened;  /* this update opened the alert (its first emit) */
    alert_evidence *evidence; /* new since the previous emit, in seq order */
    uint32_t nevidence;
} alert;

/* Frees every string, tag and evidence item, and zeroes *a. */
void alert_clear(alert *a);

/*
 * A field value as it stands in a group key, one way for detection and
 * correlation rules: ',' '=' '\\' are escaped with '\\', bytes below 0x20 and
 * 0x7f as "\\xHH" (a NUL inside a value must neither end the key nor merge two
 * values). Appends to dst[*off..dstlen) and NUL-terminates; false, with dst
 * unchanged past *off, when it does not fit.
 */
bool alert_key_escape(char *dst, size_t dstlen, size_t *off, const char *v, size_t len);

/*
 * Text of a whole value for showing (an address, a Community ID, a sensor id)
 * in at most outlen - 1 bytes (outlen >= 32): control bytes as "\\xHH" and '\\'
 * doubled, nothing else changed; a value whose text does not fit ends in "~"
 * and 16 hex digits of SHA-256 of the whole value, so two values never share a
 * text.
 */
void alert_value_text(char *out, size_t outlen, const char *v, size_t len);

/* The same for a value in a group key: escaped as alert_key_escape() does. */
void alert_key_text(char *out, size_t outlen, const char *v, size_t len);

/* Writes the 32-hex-digit id for (rule_id, group_key, window_start_ms) into out[33]. */
void alert_make_id(const char *rule_id, const char *group_key, int64_t window_start_ms,
                   char out[ALERT_ID_LEN + 1]);

/* Splits `tags` into a->tags and sets category/subcategory (replaces existing tags). */
fh_err alert_set_tags(alert *a, const char *const *tags, uint32_t ntags);

/*
 * One alert update as a JSON object (the NDJSON line and the Kafka alerts
 * message), replacing b's content:
 *   {"id","update":"opened"|"updated","rule":{"id","name","title"},"level",
 *    "status"?,"group_key","window_start","first_seen","last_seen" (RFC 3339 UTC, ms),
 *    "count","hits","department","src":{"ip","zone","department","asset"},"dest":{...},
 *    "category","subcategory","clauses":[{"clause","display"}],
 *    "categories":[{"category","subcategory"}],"attack":[...],"tags":[...],
 *    "evidence":[{"seq","timestamp","community_id","event","truncated"}]}
 * Absent values are omitted. The evidence event is a JSON string holding the
 * event's text (never spliced in raw: it comes off the network). Returns
 * FH_ERR_NOMEM when b's ceiling is reached.
 */
fh_err alert_to_json(const alert *a, jbuf *b);
/* alert_to_json() plus "\n", written to f. FH_ERR_IO if the write fails. */
fh_err alert_write_ndjson(FILE *f, jbuf *b, const alert *a);

/* "2024-05-01T08:00:00.123Z" for ms since the epoch; out needs 32 bytes. */
void alert_format_time(int64_t ms, char out[32]);
/* A member with that time as text; a string member only when s is not NULL. */
void alert_json_time(jbuf *b, const char *key, int64_t ms);
void alert_json_opt(jbuf *b, const char *key, const char *s);

/* ---- the book of open alerts ---------------------------------------------------- */

typedef struct alert_book alert_book;

typedef struct {
    uint32_t max_open;         /* open alerts kept in memory (LRU); default 100000 */
    uint32_t evidence_first;   /* evidence items kept from the start; default 10 */
    size_t evidence_max_bytes; /* per event; default 65536 */
    int64_t max_idle_ms;       /* an alert quiet this long is closed for dedupe; 0 = never */
} alert_book_opts;

typedef struct {
    /*
     * Finds the open alert of (rule_id, group_key) in persistent storage.
     * Fills *out (owned strings; tags and evidence may be left empty) and sets
     * *found, or sets *found = false. NULL: no storage, the book alone decides.
     */
    fh_err (*load)(void *ctx, const char *rule_id, const char *group_key, alert *out, bool *found);
    /* Receives each changed alert; must not keep pointers into it. Required. */
    fh_err (*emit)(void *ctx, const alert *a);
    void *ctx;
} alert_book_ops;

typedef struct {
    uint64_t hits;         /* alert_book_hit calls that were applied */
    uint64_t opened;       /* new alerts */
    uint64_t resumed;      /* open alerts found in the store (ops.load) */
    uint64_t deduplicated; /* hits that updated an existing alert */
    uint64_t evicted;      /* open alerts dropped from memory by the LRU (still in the store) */
    uint64_t idle_closed;  /* alerts treated as closed because of max_idle_ms */
    uint64_t emitted;      /* ops.emit calls */
    uint64_t evidence_truncated;
    /* evidence items past evidence_first replaced by a later one before a flush */
    uint64_t evidence_dropped;
    uint32_t open;  /* alerts in memory now */
    uint32_t dirty; /* alerts waiting for flush */
} alert_book_stats;

/* opts may be NULL (defaults). Returns FH_ERR_NOMEM or FH_ERR_CONFIG (no emit). */
fh_err alert_book_new(alert_book **out, const alert_book_opts *opts, const alert_book_ops *ops);
void alert_book_free(alert_book *b);

/*
 * Applies one hit: updates the open alert of (rule, key) or opens one. *out
 * (optional) points at the alert as it is now. Returns FH_ERR_ARG when rule_id,
 * title or group_key is missing or level is out of range, or an error of ops.load / ops.emit
 */
fh_err alert_book_hit(alert_book *b, const alert_hit *h, const alert **out);

/* Emits every dirty alert once; stops at the first emit error (then reset, see above). */
fh_err alert_book_flush(alert_book *b);

/* Forgets everything in memory (after a rolled-back transaction). */
void alert_book_reset(alert_book *b);

/* Forgets one alert (its status changed elsewhere); a dirty one is dropped unflushed. */
void alert_book_forget(alert_book *b, const char *rule_id, const char *group_key);

const alert_book_stats *alert_book_get_stats(const alert_book *b);

#endif
