/*
 * db.h - the SQL the store needs from a database, over SQLite (db_sqlite.c)
 * and PostgreSQL through libpq (db_pg.c), so that the store (store.c,
 * store_incident.c) and its migrations are written once.
 *
 * SQL is the portable subset both accept; parameters are written ?1, ?2 ...
 * (PostgreSQL's $1, $2 ... are substituted outside quoted text). Where the
 * databases differ the store asks db_backend(). Every value is bound; a
 * bound text or blob must stay valid until the statement is reset.
 *
 * One connection per thread. Errors: a call that fails returns DB_ERROR,
 * NULL or an fh_err, and db_errmsg() says why (the database's own message).
 */
#ifndef FH_DB_H
#define FH_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"

typedef struct db db;
typedef struct db_stmt db_stmt;

typedef enum { DB_SQLITE = 0, DB_POSTGRES } db_kind;

enum { DB_ERROR = -1, DB_DONE = 0, DB_ROW = 1 };

typedef struct {
    int busy_timeout_ms; /* wait this long for a lock another connection holds */
    bool sync_full;      /* SQLite: synchronous=FULL (else NORMAL) */
} db_opts;

/* "postgresql://..." or "postgres://..." (a libpq URI) opens PostgreSQL; anything else
 * is an SQLite file, created when absent. */
bool db_target_is_postgres(const char *target);

/* Opens and configures (SQLite: WAL, foreign keys, synchronous, defensive). On error
 * err = what failed and why. */
fh_err db_open(db **out, const char *target, const db_opts *o, char *err, size_t errlen);
void db_close(db *d);
db_kind db_backend(const db *d);
const char *db_errmsg(db *d);

/* A script of statements without parameters (migrations). */
fh_err db_exec(db *d, const char *sql);
/* BEGIN that takes the write lock now where the database has one (SQLite IMMEDIATE). */
fh_err db_begin(db *d);
bool db_in_transaction(db *d);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int64_t db_changes(db *d);

db_stmt *db_prepare(db *d, const char *sql); /* NULL on error */
void db_finalize(db_stmt *s);                /* NULL is fine */

void db_bind_text(db_stmt *s, int i, const char *v, int len); /* len < 0: strlen */
void db_bind_str(db_stmt *s, int i, const char *v);           /* NULL binds NULL */
void db_bind_int64(db_stmt *s, int i, int64_t v);
void db_bind_blob(db_stmt *s, int i, const void *v, size_t len);
void db_bind_null(db_stmt *s, int i);

/* DB_ROW (a row to read), DB_DONE, or DB_ERROR. */
int db_step(db_stmt *s);
/* Back to before the first step, bindings cleared. */
void db_reset(db_stmt *s);

bool db_column_null(db_stmt *s, int c);
const char *db_column_text(db_stmt *s, int c); /* NULL for NULL */
size_t db_column_bytes(db_stmt *s, int c);     /* of the text */
int64_t db_column_int64(db_stmt *s, int c);    /* 0 for NULL */
const void *db_column_blob(db_stmt *s, int c, size_t *len);

#endif
