/*
 * db_sqlite.c - db.h over SQLite: WAL, foreign keys, defensive mode, the busy
 * timeout; statements are prepared persistent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db_int.h"

fh_err db_sqlite_open(db *d, const char *path, const db_opts *o, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    bool wal;
    char sql[64];

    if (sqlite3_open_v2(path, &d->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "open: %s", d->lite ? sqlite3_errmsg(d->lite) : "out of memory");
        return FH_ERR_IO;
    }
    sqlite3_extended_result_codes(d->lite, 1);
    sqlite3_busy_timeout(d->lite, o->busy_timeout_ms);
    sqlite3_db_config(d->lite, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(d->lite, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    if (sqlite3_prepare_v2(d->lite, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        snprintf(err, errlen, "PRAGMA journal_mode=WAL: %s", sqlite3_errmsg(d->lite));
        sqlite3_finalize(s);
        return FH_ERR_IO;
    }
    wal = strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (!wal && strcmp(path, ":memory:") != 0) {
        snprintf(err, errlen, "cannot switch to WAL journal mode");
        return FH_ERR_IO;
    }
    snprintf(sql, sizeof(sql), "PRAGMA foreign_keys=ON; PRAGMA synchronous=%s",
             o->sync_full ? "FULL" : "NORMAL");
    if (sqlite3_exec(d->lite, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(d->lite));
        return FH_ERR_IO;
    }
    return FH_OK;
}

void db_sqlite_close(db *d)
{
    sqlite3_close(d->lite);
}

const char *db_sqlite_errmsg(db *d)
{
    return d->lite ? sqlite3_errmsg(d->lite) : "not open";
}

fh_err db_sqlite_exec(db *d, const char *sql)
{
    return sqlite3_exec(d->lite, sql, NULL, NULL, NULL) == SQLITE_OK ? FH_OK : FH_ERR_IO;
}

bool db_sqlite_in_transaction(db *d)
{
    return !sqlite3_get_autocommit(d->lite);
}

int64_t db_sqlite_changes(db *d)
{
    return sqlite3_changes64(d->lite);
}

bool db_sqlite_prepare(db *d, db_stmt *st, const char *sql)
{
    return sqlite3_prepare_v3(d->lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->lite, NULL) ==
           SQLITE_OK;
}

void db_sqlite_finalize(db_stmt *st)
{
    sqlite3_finalize(st->lite);
}

void db_sqlite_bind_text(db_stmt *st, int i, const char *v, int len)
{
    sqlite3_bind_text(st->lite, i, v, len, SQLITE_STATIC);
}

void db_sqlite_bind_int64(db_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st->lite, i, v);
}

void db_sqlite_bind_blob(db_stmt *st, int i, const void *v, size_t len)
{
    sqlite3_bind_blob64(st->lite, i, v, len, SQLITE_STATIC);
}

void db_sqlite_bind_null(db_stmt *st, int i)
{
    sqlite3_bind_null(st->lite, i);
}

int db_sqlite_step(db_stmt *st)
{
    int rc = sqlite3_step(st->lite);

    return rc == SQLITE_ROW ? DB_ROW : rc == SQLITE_DONE ? DB_DONE : DB_ERROR;
}

void db_sqlite_reset(db_stmt *st)
{
    sqlite3_reset(st->lite);
    sqlite3_clear_bindings(st->lite);
}

bool db_sqlite_column_null(db_stmt *st, int c)
{
    return sqlite3_column_type(st->lite, c) == SQLITE_NULL;
}

const char *db_sqlite_column_text(db_stmt *st, int c)
{
    return (const char *)sqlite3_column_text(st->lite, c);
}

size_t db_sqlite_column_bytes(db_stmt *st, int c)
{
    return (size_t)sqlite3_column_bytes(st->lite, c);
}

int64_t db_sqlite_column_int64(db_stmt *st, int c)
{
    return sqlite3_column_int64(st->lite, c);
}

const void *db_sqlite_column_blob(db_stmt *st, int c, size_t *len)
{
    const void *p = sqlite3_column_blob(st->lite, c);

    *len = (size_t)sqlite3_column_bytes(st->lite, c);
    return p;
}
