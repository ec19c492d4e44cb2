/*
 * correlation.h - the streaming engine that evaluates Sigma correlation rules
 * (corr_rule.h: the model and its loading) on event time.
 *
 *   detection match ──corr_feed()──> group table (per correlation rule, keyed by
 *   (rule i, event ev, ts)            the canonical "field=value,..." group key)
 *                                       │ condition true for the group's window
 *                                       ▼
 *                                     emit(rule, group key, window, count/value, ev)
 *                                       │ and, chained: the match is fed into every
 *                                       ▼ correlation rule that references this one
 *
 * Evaluation semantics (README-correlation.md has the details and the reasons):
 * - Time is EVENT time: the ts_ms passed to corr_feed()/corr_advance(), never
 *   the wall clock. The engine's watermark is the largest ts it has seen.
 * - A window of timespan T ending at time t covers [t - T + 1, t] in ms: events
 *   at 0 ms and 299 999 ms share a 5m window, events at 0 and 300 000 do not.
 * - "Rising" conditions (only gt/gte; temporal types) are evaluated on a
 *   sliding window ending at the newest event of the group, at every match.
 *   When one becomes true the engine emits once and clears the group's state:
 *   the next emit needs the condition met again by later events.
 * - Conditions with an upper bound (lt, lte, eq, neq, ranges) cannot be decided
 *   before the window is over: they use tumbling windows [s, s + T) anchored at
 *   the group's first event and are evaluated when the window closes (the
 *   watermark minus the allowed lateness reaches s + T, or the group receives
 *   an event at or after s + T). A closed window that was empty is evaluated
 *   (count 0: this is how `lt: 1` detects silence) and the group is then dropped.
 * - Deterministic: the same sequence of calls gives the same emits.
 *
 * Ownership: the engine keeps a pointer to the ruleset, which must outlive it. The engine is not
 * thread-safe: one engine per thread.
 */
#ifndef FH_CORRELATION_H
#define FH_CORRELATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "event.h"
#include "corr_rule.h"
#include "sigma.h"

/* ---- the engine -------------------------------------------------------------------- */

typedef struct {
    uint32_t max_groups_per_rule;   /* LRU eviction beyond; 0 = 100 000 */
    size_t max_memory;              /* bytes of state, all rules; 0 = 256 MiB */
    int64_t allowed_lateness_ms;    /* see README-correlation.md; < 0 = 0 */
    uint32_t max_entries_per_group; /* timestamps / values kept per group; 0 = 4096 */
    int64_t max_ahead_ms;           /* clock policy (corr_admit); 0 = 24 h */
    uint32_t resync_events;         /* clock policy (corr_admit); 0 = 8 */
} corr_limits;

typedef struct {
    uint64_t groups_live;
    uint64_t groups_created;
    uint64_t groups_evicted;  /* LRU: per-rule cap or memory ceiling */
    uint64_t groups_expired;  /* idle past their window, by event time */
    uint64_t late_dropped;    /* events too late for any open window */
    uint64_t no_group_value;  /* matches without a usable group-by / value field */
    uint64_t entries_merged;  /* value_sum entries merged at the per-group cap */
    uint64_t entries_capped;  /* values / timestamps not held past the per-group cap */
    uint64_t matches_dropped; /* no room (memory ceiling) for a new group */
    uint64_t clock_ahead;     /* events set aside: too far ahead of the watermark (corr_admit) */
    uint64_t clock_resyncs;   /* times the watermark followed a run of far-off events */
    uint64_t emits;
    size_t memory_bytes; /* state currently allocated */
} corr_stats;

typedef struct corr_engine corr_engine;

/*
 * Called once per group per window when a correlation matches.
 *  group_key: canonical "name=value,name=value" over the rule's group-by names
 *    in rule order (values escaped by alert_key_escape(): ',' '=' '\' with '\', control
 *    bytes as \xHH); "" without group-by.
 *  window_start_ms: first ms of the window; the window is [start, start + T).
 *  first_ms, last_ms: oldest and newest event counted (both = window_start_ms
 *    for an empty at-close window).
 *  count_or_value: event count, distinct value count, or the sum (value_sum,
 *    truncated toward zero, negative sums as 0); temporal: rules matched.
 *  ev: the detection event whose match triggered the emit; for a chained match
 *    the detection event at the root of the chain; NULL when a window closed
 *    by the passage of time (corr_advance, or another group's event).
 * The callback must not call back into the engine.
 */
typedef void (*corr_emit_fn)(void *arg, const struct corr_rule *rule, const char *group_key,
                             int64_t window_start_ms, int64_t first_ms, int64_t last_ms,
                             uint64_t count_or_value, const event_view *ev);

/* NULL on allocation failure. lim NULL = defaults. rs must outlive the engine. */
corr_engine *corr_engine_new(const ruleset *rs, const corr_limits *lim);
void corr_engine_free(corr_engine *e);

/*
 * Feeds one match of detection rule `detection_rule_index` (into rs->rules) by
 * event ev at event time ts_ms. Does nothing for rules no correlation uses.
 */
void corr_feed(corr_engine *e, uint32_t detection_rule_index, const event_view *ev, int64_t ts_ms,
               corr_emit_fn emit, void *arg);

/*
 * The clock policy: whether an event at ts_ms may take part in correlation.
 * Call it once per event before corr_advance() and corr_feed(); false means
 * the event is set aside (counted in clock_ahead): it neither moves the
 * watermark nor enters a window. Detection rules still see it.
 *
 * The watermark is the newest event time seen, so one event stamped far in the
 * future (a sensor with a wrong clock, a crafted event) would close or expire
 * every window of every group at once. So:
 * - an event more than max_ahead_ms ahead of the watermark is set aside;
 * - when resync_events such events come in a row, with no event near the
 *   watermark between them, time really moved on (a pause, a replay of newer
 *   data): the watermark jumps to the oldest of them, and from this one on they
 *   count again (those before it stay set aside);
 * - the first event sets a watermark that is only tentative until resync_events
 *   events near it have followed: if instead resync_events in a row are more
 *   than max_ahead_ms behind it, that first event was the odd one, and the
 *   watermark moves back to the newest of them. (Events behind a firm watermark
 *   are late events as ever, never a reason to move it back.)
 * Deterministic: the same events give the same decisions.
 */
bool corr_admit(corr_engine *e, int64_t ts_ms);

/*
 * Advances the watermark to ts_ms (ignored if older) and closes due at-close
 * windows. Call it for every event, matched or not, so silence is noticed.
 */
void corr_advance(corr_engine *e, int64_t ts_ms, corr_emit_fn emit, void *arg);

/* True if some correlation references detection rule i (cheap filter). */
bool corr_uses_rule(const corr_engine *e, uint32_t detection_rule_index);

void corr_get_stats(const corr_engine *e, corr_stats *out);

/*
 * Bytes of one group of the given rule with `entries` timestamps/values held,
 * as the engine accounts it (allocator overhead not included).
 */
size_t corr_memory_per_group(const struct corr_rule *r, uint32_t entries);

/*
 * Rule reload: moves the window state of every correlation rule of `from` whose
 * definition is unchanged in `to`'s rule set (same id and name, type, timespan,
 * conditions, references, group-by, aliases, value field) into `to`, and the
 * event-time watermark with it. Returns the number of groups moved; `from`
 * keeps the rest and is freed by the caller afterwards.
 */
uint64_t corr_engine_adopt(corr_engine *to, corr_engine *from);

/* ---- checkpoints: window state that survives a restart ------------------------------- */

/*
 * Kafka mode stores the consumer position in the same transaction as the alerts;
 * the window state must go with them, or a restart would replay from the position
 * with windows that forgot the events before it. So, per batch:
 *
 *   corr_engine_track_changes(e, true)        once: keep a list of changed groups
 *   ... events ...
 *   corr_engine_checkpoint(e, put, del, arg)  inside the batch's transaction:
 *                                             put() every group changed since the last
 *                                             checkpoint, del() every saved group gone
 *   commit
 *
 * and on start, corr_engine_restore() for every saved group, then
 * corr_engine_restore_done() with the saved clock. A group is saved as (rule, key, state): rule is
 * "<id>#<hash of the definition>" (state of an edited rule is not restored: the
 * rule starts afresh, as on SIGHUP), key the group key and its values, state a
 * binary blob (layout in correlation.c). del() with key NULL deletes every group
 * of a rule (a rule that changed or went away on reload).
 *
 * After a failed checkpoint the transaction must be rolled back and the process
 * must not go on with this engine (its books no longer match the store): the
 * correlator exits, and a restart restores the last committed state.
 */
typedef fh_err (*corr_put_fn)(void *arg, const char *rule, const char *key, size_t keylen,
                              const void *state, size_t len);
typedef fh_err (*corr_del_fn)(void *arg, const char *rule, const char *key, size_t keylen);

void corr_engine_track_changes(corr_engine *e, bool on);
fh_err corr_engine_checkpoint(corr_engine *e, corr_put_fn put, corr_del_fn del, void *arg);

/*
 * Restores one saved group. FH_ERR_NOTFOUND: no loaded rule has that name (the rule
 * changed or is gone: drop the row); FH_ERR_PARSE: the key or state does not fit the
 * rule (damaged: drop it); FH_ERR_LIMIT: over the group or memory caps.
 */
fh_err corr_engine_restore(corr_engine *e, const char *rule, const void *key, size_t keylen,
                           const void *state, size_t len);

/* The engine's clock: saved with every checkpoint, given back after the restores. */
typedef struct {
    bool has_watermark;    /* false before any event */
    int64_t watermark;     /* newest event time seen, ms */
    int64_t next_deadline; /* when the next at-close window may close */
    uint64_t touch;        /* recency counter (LRU order of groups) */
} corr_clock;

void corr_engine_get_clock(const corr_engine *e, corr_clock *c);

/* After the last corr_engine_restore(): sets the clock (c may be NULL: none saved) and
 * puts the groups back in their saved LRU order. */
fh_err corr_engine_restore_done(corr_engine *e, const corr_clock *c);

#endif
