/*
 * correlation_int.h - the correlation engine's own types, shared by its two files:
 * correlation.c (the streaming engine) and corr_state.c (state kept across a reload
 * and in checkpoints). Not for other modules: they use correlation.h.
 *
 * Engine layout: one hash table of groups for all rules, keyed by (rule index,
 * canonical group key), chained, FNV-1a with a constant basis (deterministic),
 * doubled when the load passes 3/4. Each rule keeps its groups on an LRU list
 * (head = most recently fed) used for eviction at the caps and for expiry of
 * idle groups by event time. A group holds what its type needs:
 *
 *   event_count   sorted timestamps, at most `need` (the threshold)
 *   value_count   distinct values (64-bit hash of the text) with last-seen time
 *   value_sum     sorted (timestamp, value) pairs, merged when the cap is hit
 *   temporal      last time each referenced rule matched
 *   temporal_ord. per stage the best partial chain (start, end)
 *   at-close      window start, count / sum / distinct set of the open window
 */
#ifndef FH_CORRELATION_INT_H
#define FH_CORRELATION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "correlation.h"
#define KEY_MAX        2048 /* bytes of a group key (plus values); longer keys are refused */
#define DEF_MAX_GROUPS 100000u
#define DEF_MAX_MEM    (256u * 1024 * 1024)
#define DEF_MAX_ENT    4096u
#define DEF_MAX_AHEAD  (24 * 3600 * 1000LL) /* 24 h */
#define DEF_RESYNC     8u
#define NO_TS          INT64_MIN
#define SWEEP_STEP_MS  1000 /* event time between two sweeps of at-close windows */

typedef struct cgroup cgroup;
struct cgroup {
    cgroup *hnext;       /* hash chain */
    cgroup *prev, *next; /* rule LRU list, head = most recently fed */
    uint64_t hash;
    uint32_t rule;
    uint32_t keylen;       /* strlen(key) */
    uint32_t textlen;      /* key + values, NULs included */
    uint32_t nent, cap;    /* entries held / allocated */
    int64_t newest;        /* newest event time fed to the group */
    int64_t win_start;     /* at-close: open window [win_start, win_start + T) */
    int64_t first, last;   /* at-close: oldest / newest event of the open window */
    uint64_t count;        /* at-close: events (event_count) or distinct values (saturating) */
    double sum;            /* at-close value_sum */
    int64_t *ts;           /* entries: event time (value_count: last seen) */
    uint64_t *val;         /* entries: value hash or value bits (value types), else NULL */
    int64_t *stage;        /* temporal: [nrefs] last seen; ordered: [2*nrefs] start, end */
    cgroup *dprev, *dnext; /* changed since the last checkpoint (engine's dirty list) */
    bool dirty;
    bool saved;   /* a checkpoint wrote it: its removal must be written too */
    uint64_t seq; /* engine's touch counter when last fed: the LRU order, kept in checkpoints */
    char text[];  /* key "\0" value0 "\0" value1 "\0" ... */
};

typedef struct {
    uint32_t corr, ref;
} dep;

typedef struct {
    cgroup *head, *tail;
    uint32_t ngroups;
    uint32_t need; /* rising count types: the smallest count that satisfies the condition */
    uint32_t cap;  /* entries per group */
} rstate;

/* A saved group (or, key NULL, every saved group of a rule) to delete at the next checkpoint. */
typedef struct {
    char *rule;
    char *key;
    uint32_t keylen;
} gone;

struct corr_engine {
    const ruleset *rs;
    char **pkey; /* per correlation: "<id>#<definition hash>", its name in checkpoints */
    cgroup *dirty;
    gone *gone;
    uint32_t ngone, capgone;
    bool gone_failed; /* a deletion could not be recorded: the next checkpoint fails */
    bool track;       /* checkpoints are taken: keep the dirty list and the deletions */
    uint64_t touch;   /* counter behind cgroup.seq */
    corr_limits lim;
    uint32_t *rd_off; /* deps of detection rule i: rd[rd_off[i] .. rd_off[i + 1]) */
    dep *rd;
    uint32_t *cd_off; /* deps of correlation i */
    dep *cd;
    rstate *rst;
    cgroup **bucket;
    uint32_t nbucket;
    uint64_t ngroups;
    int64_t wm; /* watermark: newest event time seen; NO_TS before any */
    /* clock policy (corr_admit) */
    bool wm_firm;       /* resync_events events near the watermark confirmed it */
    uint32_t near_run;  /* events near the watermark since it was set (until firm) */
    uint32_t ahead_run; /* far-ahead events in a row, and the oldest of them */
    int64_t ahead_min;
    uint32_t behind_run; /* far-behind events in a row (tentative watermark), the newest */
    int64_t behind_max;
    int64_t next_deadline; /* earliest end of an open at-close window */
    corr_stats st;
    char keybuf[KEY_MAX];
};

/* Where a match's field values come from: an event, or a chained match's group values. */
typedef struct {
    const event_view *ev;
    const sv *slots;
    uint32_t nslots;
} src;

/* ---- engine internals used by corr_state.c (correlation.c) ---- */

size_t ce_group_bytes(const corr_engine *e, const cgroup *g);
void ce_lru_unlink(rstate *rs, cgroup *g);
void ce_lru_push_head(rstate *rs, cgroup *g);
void ce_mark_dirty(corr_engine *e, cgroup *g);
void ce_dirty_unlink(corr_engine *e, cgroup *g);
void ce_add_gone(corr_engine *e, const char *rule, const char *key, uint32_t keylen);
bool ce_grow_table(corr_engine *e);
cgroup *ce_group_get(corr_engine *e, uint32_t rule, uint64_t h, const char *text, uint32_t keylen,
                     uint32_t textlen, int64_t ts);
bool ce_reserve(corr_engine *e, cgroup *g);
uint64_t ce_group_hash(uint32_t rule, const char *key, uint32_t keylen);

#endif
