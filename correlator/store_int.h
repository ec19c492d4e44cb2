/*
 * store_int.h - the store's insides, shared by store.c (alerts,
 * offsets, windows) and store_incident.c (the rectification of incidents).
 * Not for other files: they use store.h and incident.h.
 */
#ifndef FH_STORE_INT_H
#define FH_STORE_INT_H

#include "../common/jbuf.h"
#include "db.h"
#include "store.h"

/* Statements prepared once at open (stmt_sql in store.c). */
enum {
    S_UPSERT,
    S_TAG,
    S_EV_INSERT,
    S_EV_DEL_LATEST,
    S_OUTBOX_INSERT,
    S_OUTBOX_READ,
    S_OUTBOX_DELETE,
    S_OFFSET_SET,
    S_OFFSET_GET,
    S_OFFSETS,
    S_LOAD_OPEN,
    S_GET,
    S_GET_TAGS,
    S_GET_EVIDENCE,
    S_CORR_PUT,
    S_CORR_DEL,
    S_CORR_DEL_RULE,
    S_CORR_LOAD,
    S_META_SET,
    S_META_GET,
    S_HEALTH_PUT,
    S_STATUS_GET,
    S_REOPEN,
    S_TRANSITION,
    S_SENSOR_STATS,
    S_COUNT
};

/* Statements prepared on first use: store_incident.c, store_audit.c, store_accounts.c,
 * store_admin.c and traffic.c each own a range of slots. */
enum {
    LAZY_INCIDENT = 0,
    LAZY_AUDIT = 24,
    LAZY_ACCOUNTS = 36,
    LAZY_ADMIN = 64,
    LAZY_TRAFFIC = 80,
    STORE_LAZY_MAX = 84
};

struct store {
    db *db;
    store_opts o;
    char *path;
    bool in_tx;
    uint64_t next_outbox_seq;
    jbuf json;
    db_stmt *s[S_COUNT];
    db_stmt *lazy[STORE_LAZY_MAX];
    char errmsg[512];
};

/* Sets errmsg to the formatted text plus SQLite's message; returns FH_ERR_IO. */
__attribute__((format(printf, 2, 3))) fh_err store_fail(store *st, const char *fmt, ...);
int64_t store_wall_ms(void);
/* The store's clock: the injected one (store_opts.now), else the wall clock. */
int64_t store_now_ms(const store *st);
fh_err store_exec(store *st, const char *sql, const char *what);
/* Binds an optional time: 0 is NULL. */
void store_bind_ms(db_stmt *s, int i, int64_t ms);
/* Steps a statement that returns no rows, then resets it. */
fh_err store_step_done(store *st, db_stmt *s, const char *what);
void store_stmt_done(db_stmt *s);
/* A copy of a text column, NULL for SQL NULL; *failed on allocation failure. */
char *store_col_dup(db_stmt *s, int i, bool *failed);
fh_err store_need_tx(store *st, const char *what);
/* Ends a transaction the caller opened for itself (own): commit, or roll back on err. */
fh_err store_own_tx_end(store *st, bool own, fh_err err);
/* The lazily prepared statement number i (< STORE_LAZY_MAX) of sql; NULL on error (errmsg set). */
db_stmt *store_lazy(store *st, int i, const char *sql);

#endif
