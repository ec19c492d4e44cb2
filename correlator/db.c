/*
 * db.c - db.h: one entry point per call, handed to the backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

bool db_target_is_postgres(const char *t)
{
    return t && (!strncmp(t, "postgresql://", 13) || !strncmp(t, "postgres://", 11));
}

fh_err db_open(db **out, const char *target, const db_opts *o, char *err, size_t errlen)
{
    db *d = calloc(1, sizeof(*d));
    fh_err e;

    *out = NULL;
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return FH_ERR_NOMEM;
    }
    d->kind = db_target_is_postgres(target) ? DB_POSTGRES : DB_SQLITE;
    e = d->kind == DB_POSTGRES ? db_pg_open(d, target, o, err, errlen)
                               : db_sqlite_open(d, target, o, err, errlen);
    if (e) {
        db_close(d);
        return e;
    }
    *out = d;
    return FH_OK;
}

void db_close(db *d)
{
    if (!d)
        return;
    if (d->kind == DB_POSTGRES)
        db_pg_close(d);
    else
        db_sqlite_close(d);
    free(d);
}

db_kind db_backend(const db *d)
{
    return d->kind;
}

const char *db_errmsg(db *d)
{
    return d->kind == DB_POSTGRES ? d->errmsg : db_sqlite_errmsg(d);
}

fh_err db_exec(db *d, const char *sql)
{
    return d->kind == DB_POSTGRES ? db_pg_exec(d, sql) : db_sqlite_exec(d, sql);
}

fh_err db_begin(db *d)
{
    return db_exec(d, d->kind == DB_POSTGRES ? "BEGIN" : "BEGIN IMMEDIATE");
}

bool db_in_transaction(db *d)
{
    return d->kind == DB_POSTGRES ? db_pg_in_transaction(d) : db_sqlite_in_transaction(d);
}

int64_t db_changes(db *d)
{
    return d->kind == DB_POSTGRES ? d->changes : db_sqlite_changes(d);
}

db_stmt *db_prepare(db *d, const char *sql)
{
    db_stmt *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(d->errmsg, sizeof(d->errmsg), "out of memory");
        return NULL;
    }
    s->d = d;
    if (!(d->kind == DB_POSTGRES ? db_pg_prepare(d, s, sql) : db_sqlite_prepare(d, s, sql))) {
        db_finalize(s);
        return NULL;
    }
    return s;
}

void db_finalize(db_stmt *s)
{
    if (!s)
        return;
    if (s->d->kind == DB_POSTGRES)
        db_pg_finalize(s);
    else
        db_sqlite_finalize(s);
    free(s);
}

void db_bind_text(db_stmt *s, int i, const char *v, int len)
{
    if (s->d->kind == DB_POSTGRES)
        db_pg_bind(s, i, v, len < 0 ? strlen(v) : (size_t)len, false);
    else
        db_sqlite_bind_text(s, i, v, len);
}

void db_bind_str(db_stmt *s, int i, const char *v)
{
    if (v)
        db_bind_text(s, i, v, -1);
    else
        db_bind_null(s, i);
}

void db_bind_int64(db_stmt *s, int i, int64_t v)
{
    if (s->d->kind == DB_POSTGRES)
        db_pg_bind_int64(s, i, v);
    else
        db_sqlite_bind_int64(s, i, v);
}

void db_bind_blob(db_stmt *s, int i, const void *v, size_t len)
{
    if (s->d->kind == DB_POSTGRES)
        db_pg_bind(s, i, v, len, true);
    else
        db_sqlite_bind_blob(s, i, v, len);
}

void db_bind_null(db_stmt *s, int i)
{
    if (s->d->kind == DB_POSTGRES)
        db_pg_bind(s, i, NULL, 0, false);
    else
        db_sqlite_bind_null(s, i);
}

int db_step(db_stmt *s)
{
    return s->d->kind == DB_POSTGRES ? db_pg_step(s) : db_sqlite_step(s);
}

void db_reset(db_stmt *s)
{
    if (s->d->kind == DB_POSTGRES)
        db_pg_reset(s);
    else
        db_sqlite_reset(s);
}

bool db_column_null(db_stmt *s, int c)
{
    return s->d->kind == DB_POSTGRES ? db_pg_column_null(s, c) : db_sqlite_column_null(s, c);
}

const char *db_column_text(db_stmt *s, int c)
{
    if (db_column_null(s, c))
        return NULL;
    return s->d->kind == DB_POSTGRES ? db_pg_column_text(s, c) : db_sqlite_column_text(s, c);
}

size_t db_column_bytes(db_stmt *s, int c)
{
    return s->d->kind == DB_POSTGRES ? db_pg_column_bytes(s, c) : db_sqlite_column_bytes(s, c);
}

int64_t db_column_int64(db_stmt *s, int c)
{
    const char *t;

    if (s->d->kind == DB_SQLITE)
        return db_sqlite_column_int64(s, c);
    t = db_column_text(s, c);
    return t ? strtoll(t, NULL, 10) : 0;
}

const void *db_column_blob(db_stmt *s, int c, size_t *len)
{
    return s->d->kind == DB_POSTGRES ? db_pg_column_blob(s, c, len)
                                     : db_sqlite_column_blob(s, c, len);
}
