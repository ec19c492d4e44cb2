/*
 * admin.h - what the console's security administrators change and the correlators
 * follow, in the store: suppressions, rules switched off, and the generation
 * counters the correlators poll to notice a change (no signal crosses hosts; every
 * correlator instance reads the same store).
 *
 *   console ── suppression_add / rule_switch_set ──► store ◄── poll generation ── correlator
 *                        └── admin_generation_bump ──┘          (reload when it moved)
 */
#ifndef FH_ADMIN_H
#define FH_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "store.h"

#define SUPPRESSION_ID_LEN      32 /* hex */
#define SUPPRESSION_MAX_LIFE_MS (366 * 24 * 3600 * 1000LL)

typedef struct {
    const char *id, *rule_id, *src_ip, *dest_ip, *reason, *from_alert, *created_by, *revoked_by;
    int64_t created_at, expires_at, revoked_at, hits, last_hit;
} suppression_row;

/*
 * Adds a suppression (id generated into id). FH_ERR_ARG with why = "missing_rule",
 * "missing_reason", "bad_address" (src_ip / dest_ip not an IPv4 or IPv6 address),
 * "dest_needs_src", "bad_expiry" (not after now, or more than a year ahead).
 * Bumps the suppression generation in the same transaction.
 */
fh_err suppression_add(store *st, const suppression_row *in, int64_t now,
                       char id[SUPPRESSION_ID_LEN + 1], const char **why);

typedef void (*suppression_fn)(void *ctx, const suppression_row *r);
/* All suppressions, newest first; active_only: not revoked and expiring after now. */
fh_err suppression_list(store *st, bool active_only, int64_t now, suppression_fn fn, void *ctx);
/* FH_ERR_NOTFOUND when id is unknown or already revoked. Bumps the generation. */
fh_err suppression_revoke(store *st, const char *id, const char *actor, int64_t now);
/* Adds n hidden alerts to id's count (inside the caller's transaction). */
fh_err suppression_add_hits(store *st, const char *id, uint64_t n, int64_t last_hit);

typedef struct {
    const char *rule_id, *changed_by;
    bool enabled;
    int64_t changed_at;
} rule_switch;
typedef void (*rule_switch_fn)(void *ctx, const rule_switch *r);
fh_err rule_switch_set(store *st, const char *rule_id, bool enabled, const char *actor,
                       int64_t now);
fh_err rule_switch_list(store *st, rule_switch_fn fn, void *ctx);

/* The counters: rules (rule files or switches changed, or a reload asked for) and
 * suppress (a suppression added or revoked). */
fh_err admin_generation(store *st, int64_t *rules, int64_t *suppress);
fh_err admin_generation_bump(store *st, bool rules, bool suppress);

/* Alerts and hits per rule (for the rules list). */
typedef void (*rule_hits_fn)(void *ctx, const char *rule_id, int64_t alerts, int64_t hits,
                             int64_t last_seen);
fh_err admin_rule_hits(store *st, rule_hits_fn fn, void *ctx);

/*
 * Retention (Cybersecurity Law Art. 21: at least 180 days): deletes the incidents that
 * ended (closed, false positive, duplicate) whose last event and last move are both
 * before before_ms, with their tags, evidence and timeline, and the sensor stats
 * and traffic sums of the hours before it (*stats counts both). Open incidents are
 * kept whatever their age.
 */
fh_err admin_prune(store *st, int64_t before_ms, int64_t *alerts, int64_t *stats);

#endif
