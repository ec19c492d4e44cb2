/*
 * store_admin.c - suppressions, rule switches and the generation counters in the
 * store; see admin.h.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "store_int.h"

enum {
    A_SUPP_INSERT,
    A_SUPP_LIST,
    A_SUPP_REVOKE,
    A_SUPP_HITS,
    A_SWITCH_SET,
    A_SWITCH_LIST,
    A_GEN_GET,
    A_GEN_BUMP,
    A_RULE_HITS,
    A_PRUNE_ALERTS,
    A_PRUNE_STATS,
    A_PRUNE_TRAFFIC,
    A_STMTS
};

static const char *const SQL[A_STMTS] = {
    [A_SUPP_INSERT] = "INSERT INTO suppressions (id, rule_id, src_ip, dest_ip, reason, from_alert, "
                      "created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                      "?9)",
    [A_SUPP_LIST] = "SELECT id, rule_id, src_ip, dest_ip, reason, from_alert, created_by, "
                    "created_at, expires_at, revoked_by, revoked_at, hits, last_hit FROM "
                    "suppressions WHERE ?1 = 0 OR (revoked_at IS NULL AND expires_at > ?2) "
                    "ORDER BY created_at DESC, id",
    [A_SUPP_REVOKE] = "UPDATE suppressions SET revoked_by = ?2, revoked_at = ?3 WHERE id = ?1 AND "
                      "revoked_at IS NULL",
    [A_SUPP_HITS] = "UPDATE suppressions SET hits = hits + ?2, last_hit = CASE WHEN last_hit IS "
                    "NULL OR last_hit < ?3 THEN ?3 ELSE last_hit END WHERE id = ?1",
    [A_SWITCH_SET] = "INSERT INTO rule_switches (rule_id, enabled, changed_by, changed_at) VALUES "
                     "(?1, ?2, ?3, ?4) ON CONFLICT (rule_id) DO UPDATE SET enabled = ?2, "
                     "changed_by = ?3, changed_at = ?4",
    [A_SWITCH_LIST] = "SELECT rule_id, enabled, changed_by, changed_at FROM rule_switches ORDER "
                      "BY rule_id",
    [A_GEN_GET] = "SELECT rules, suppress FROM console_generation WHERE id = 1",
    [A_GEN_BUMP] = "UPDATE console_generation SET rules = rules + ?1, suppress = suppress + ?2 "
                   "WHERE id = 1",
    [A_RULE_HITS] = "SELECT rule_id, COUNT(*), SUM(hits), MAX(last_seen) FROM alerts GROUP BY "
                    "rule_id ORDER BY rule_id",
    [A_PRUNE_ALERTS] = "DELETE FROM alerts WHERE status IN ('closed', 'false_positive', "
                       "'duplicate') AND last_seen < ?1 AND COALESCE(status_at, 0) < ?1",
    [A_PRUNE_STATS] = "DELETE FROM sensor_stats WHERE last_ts < ?1",
    [A_PRUNE_TRAFFIC] = "DELETE FROM traffic_hourly WHERE hour < ?1",
};

_Static_assert((int)A_STMTS <= (int)STORE_LAZY_MAX - (int)LAZY_ADMIN,
               "store_admin.c: too many statements");

static db_stmt *stmt(store *st, int i)
{
    return store_lazy(st, LAZY_ADMIN + i, SQL[i]);
}

static bool address_ok(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

fh_err admin_generation_bump(store *st, bool rules, bool suppress)
{
    db_stmt *s = stmt(st, A_GEN_BUMP);

    if (!s)
        return FH_ERR_IO;
    db_bind_int64(s, 1, rules ? 1 : 0);
    db_bind_int64(s, 2, suppress ? 1 : 0);
    return store_step_done(st, s, "admin: UPDATE console_generation");
}

fh_err admin_generation(store *st, int64_t *rules, int64_t *suppress)
{
    db_stmt *s = stmt(st, A_GEN_GET);
    fh_err err = FH_OK;

    if (!s)
        return FH_ERR_IO;
    if (db_step(s) == DB_ROW) {
        *rules = db_column_int64(s, 0);
        *suppress = db_column_int64(s, 1);
    } else {
        err = store_fail(st, "admin: SELECT console_generation");
    }
    store_stmt_done(s);
    return err;
}

fh_err suppression_add(store *st, const suppression_row *in, int64_t now,
                       char id[SUPPRESSION_ID_LEN + 1], const char **why)
{
    unsigned char rid[SUPPRESSION_ID_LEN / 2];
    bool own = !store_in_transaction(st);
    db_stmt *s;
    fh_err err;

    *why = !in->rule_id || !*in->rule_id ? "missing_rule"
           : !in->reason || !*in->reason ? "missing_reason"
           : (in->src_ip && !address_ok(in->src_ip)) || (in->dest_ip && !address_ok(in->dest_ip))
               ? "bad_address"
           : in->dest_ip && !in->src_ip ? "dest_needs_src"
           : in->expires_at <= now || in->expires_at - now > SUPPRESSION_MAX_LIFE_MS ? "bad_expiry"
                                                                                     : NULL;
    if (*why)
        return FH_ERR_ARG;
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, SUPPRESSION_ID_LEN + 1, rid, sizeof(rid));
    if (!(s = stmt(st, A_SUPP_INSERT)))
        return FH_ERR_IO;
    if (own && (err = store_begin(st)))
        return err;
    db_bind_str(s, 1, id);
    db_bind_str(s, 2, in->rule_id);
    db_bind_str(s, 3, in->src_ip);
    db_bind_str(s, 4, in->dest_ip);
    db_bind_str(s, 5, in->reason);
    db_bind_str(s, 6, in->from_alert);
    db_bind_str(s, 7, in->created_by);
    db_bind_int64(s, 8, now);
    db_bind_int64(s, 9, in->expires_at);
    if (!(err = store_step_done(st, s, "admin: INSERT suppressions")))
        err = admin_generation_bump(st, false, true);
    return store_own_tx_end(st, own, err);
}

fh_err suppression_list(store *st, bool active_only, int64_t now, suppression_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, A_SUPP_LIST);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_int64(s, 1, active_only ? 1 : 0);
    db_bind_int64(s, 2, now);
    while ((rc = db_step(s)) == DB_ROW) {
        suppression_row r = {.id = db_column_text(s, 0),
                             .rule_id = db_column_text(s, 1),
                             .src_ip = db_column_text(s, 2),
                             .dest_ip = db_column_text(s, 3),
                             .reason = db_column_text(s, 4),
                             .from_alert = db_column_text(s, 5),
                             .created_by = db_column_text(s, 6),
                             .created_at = db_column_int64(s, 7),
                             .expires_at = db_column_int64(s, 8),
                             .revoked_by = db_column_text(s, 9),
                             .revoked_at = db_column_int64(s, 10),
                             .hits = db_column_int64(s, 11),
                             .last_hit = db_column_int64(s, 12)};
        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "admin: SELECT suppressions");
    store_stmt_done(s);
    return err;
}

fh_err suppression_revoke(store *st, const char *id, const char *actor, int64_t now)
{
    db_stmt *s = stmt(st, A_SUPP_REVOKE);
    bool own = !store_in_transaction(st);
    fh_err err;

    if (!s)
        return FH_ERR_IO;
    if (own && (err = store_begin(st)))
        return err;
    db_bind_str(s, 1, id);
    db_bind_str(s, 2, actor);
    db_bind_int64(s, 3, now);
    if (!(err = store_step_done(st, s, "admin: UPDATE suppressions (revoke)")))
        err = db_changes(st->db) ? admin_generation_bump(st, false, true) : FH_ERR_NOTFOUND;
    return store_own_tx_end(st, own, err);
}

fh_err suppression_add_hits(store *st, const char *id, uint64_t n, int64_t last_hit)
{
    db_stmt *s = stmt(st, A_SUPP_HITS);

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    db_bind_int64(s, 2, (int64_t)n);
    db_bind_int64(s, 3, last_hit);
    return store_step_done(st, s, "admin: UPDATE suppressions (hits)");
}

fh_err rule_switch_set(store *st, const char *rule_id, bool enabled, const char *actor, int64_t now)
{
    db_stmt *s = stmt(st, A_SWITCH_SET);
    bool own = !store_in_transaction(st);
    fh_err err;

    if (!s)
        return FH_ERR_IO;
    if (own && (err = store_begin(st)))
        return err;
    db_bind_str(s, 1, rule_id);
    db_bind_int64(s, 2, enabled ? 1 : 0);
    db_bind_str(s, 3, actor);
    db_bind_int64(s, 4, now);
    if (!(err = store_step_done(st, s, "admin: UPSERT rule_switches")))
        err = admin_generation_bump(st, true, false);
    return store_own_tx_end(st, own, err);
}

fh_err rule_switch_list(store *st, rule_switch_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, A_SWITCH_LIST);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    while ((rc = db_step(s)) == DB_ROW) {
        rule_switch r = {.rule_id = db_column_text(s, 0),
                         .enabled = db_column_int64(s, 1) != 0,
                         .changed_by = db_column_text(s, 2),
                         .changed_at = db_column_int64(s, 3)};
        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "admin: SELECT rule_switches");
    store_stmt_done(s);
    return err;
}

fh_err admin_rule_hits(store *st, rule_hits_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, A_RULE_HITS);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    while ((rc = db_step(s)) == DB_ROW)
        fn(ctx, db_column_text(s, 0), db_column_int64(s, 1), db_column_int64(s, 2),
           db_column_int64(s, 3));
    if (rc != DB_DONE)
        err = store_fail(st, "admin: SELECT alerts per rule");
    store_stmt_done(s);
    return err;
}

fh_err admin_prune(store *st, int64_t before_ms, int64_t *alerts, int64_t *stats)
{
    db_stmt *a = stmt(st, A_PRUNE_ALERTS), *b = stmt(st, A_PRUNE_STATS),
            *c = stmt(st, A_PRUNE_TRAFFIC);
    fh_err err;

    *alerts = *stats = 0;
    if (!a || !b || !c)
        return FH_ERR_IO;
    if ((err = store_begin(st)))
        return err;
    db_bind_int64(a, 1, before_ms);
    if (!(err = store_step_done(st, a, "admin: DELETE FROM alerts (retention)"))) {
        *alerts = db_changes(st->db);
        db_bind_int64(b, 1, before_ms);
        if (!(err = store_step_done(st, b, "admin: DELETE FROM sensor_stats (retention)")))
            *stats = db_changes(st->db);
    }
    if (!err) {
        /* the traffic sums of the hours wholly before the cut */
        db_bind_int64(c, 1, before_ms / (3600 * 1000LL));
        if (!(err = store_step_done(st, c, "admin: DELETE FROM traffic_hourly (retention)")))
            *stats += db_changes(st->db);
    }
    return store_own_tx_end(st, true, err);
}
