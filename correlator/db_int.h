/*
 * db_int.h - the two backends of db.h (db_sqlite.c, db_pg.c) and the
 * dispatcher (db.c). Not for other files.
 */
#ifndef FH_DB_INT_H
#define FH_DB_INT_H

#include "db.h"

struct sqlite3;
struct sqlite3_stmt;
struct pg_conn;
struct pg_stmt;

struct db {
    db_kind kind;
    struct sqlite3 *lite;
    struct pg_conn *pg;
    int64_t changes;  /* PostgreSQL: of the last command */
    uint32_t next_id; /* PostgreSQL: prepared statement names */
    char errmsg[512];
};

struct db_stmt {
    db *d;
    struct sqlite3_stmt *lite;
    struct pg_stmt *pg;
};

fh_err db_sqlite_open(db *d, const char *path, const db_opts *o, char *err, size_t errlen);
void db_sqlite_close(db *d);
const char *db_sqlite_errmsg(db *d);
fh_err db_sqlite_exec(db *d, const char *sql);
bool db_sqlite_in_transaction(db *d);
int64_t db_sqlite_changes(db *d);
bool db_sqlite_prepare(db *d, db_stmt *st, const char *sql);
void db_sqlite_finalize(db_stmt *st);
void db_sqlite_bind_text(db_stmt *st, int i, const char *v, int len);
void db_sqlite_bind_int64(db_stmt *st, int i, int64_t v);
void db_sqlite_bind_blob(db_stmt *st, int i, const void *v, size_t len);
void db_sqlite_bind_null(db_stmt *st, int i);
int db_sqlite_step(db_stmt *st);
void db_sqlite_reset(db_stmt *st);
bool db_sqlite_column_null(db_stmt *st, int c);
const char *db_sqlite_column_text(db_stmt *st, int c);
size_t db_sqlite_column_bytes(db_stmt *st, int c);
int64_t db_sqlite_column_int64(db_stmt *st, int c);
const void *db_sqlite_column_blob(db_stmt *st, int c, size_t *len);

fh_err db_pg_open(db *d, const char *uri, const db_opts *o, char *err, size_t errlen);
void db_pg_close(db *d);
fh_err db_pg_exec(db *d, const char *sql);
bool db_pg_in_transaction(db *d);
bool db_pg_prepare(db *d, db_stmt *st, const char *sql);
void db_pg_finalize(db_stmt *st);
void db_pg_bind(db_stmt *st, int i, const char *v, size_t len, bool binary);
void db_pg_bind_int64(db_stmt *st, int i, int64_t v);
int db_pg_step(db_stmt *st);
void db_pg_reset(db_stmt *st);
bool db_pg_column_null(db_stmt *st, int c);
const char *db_pg_column_text(db_stmt *st, int c);
size_t db_pg_column_bytes(db_stmt *st, int c);
const void *db_pg_column_blob(db_stmt *st, int c, size_t *len);

#endif
