/*
 * db_pg.c - db.h over PostgreSQL with libpq: statements are prepared on the
 * server (PQprepare, named s1, s2 ...), parameters are sent as text (blobs as
 * binary), results come back as text (bytea is unescaped on demand).
 * ?N in the SQL becomes $N outside quoted text. Notices (such as "relation
 * already exists, skipping") are not printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_int.h"

struct pg_stmt {
    char name[24];
    int nparams;
    const char **values;
    int *lengths, *formats;
    char (*ints)[24];
    PGresult *res;
    int row, nrows;
    bool executed;
    unsigned char **blobs; /* unescaped bytea per column of the current row */
    int nblobs;
};

static void no_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The message of a failed result, on one line. */
static void set_error(db *d, const char *what, const char *msg)
{
    size_t n;

    snprintf(d->errmsg, sizeof(d->errmsg), "%s%s%s", what, *what ? ": " : "",
             msg && *msg ? msg : "unknown error");
    n = strlen(d->errmsg);
    while (n && (d->errmsg[n - 1] == '\n' || d->errmsg[n - 1] == ' '))
        d->errmsg[--n] = '\0';
    for (char *p = d->errmsg; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

fh_err db_pg_open(db *d, const char *uri, const db_opts *o, char *err, size_t errlen)
{
    char sql[128];

    d->pg = PQconnectdb(uri);
    if (!d->pg || PQstatus(d->pg) != CONNECTION_OK) {
        set_error(d, "connect", d->pg ? PQerrorMessage(d->pg) : "out of memory");
        snprintf(err, errlen, "%s", d->errmsg);
        return FH_ERR_IO;
    }
    PQsetNoticeProcessor(d->pg, no_notices, NULL);
    snprintf(sql, sizeof(sql),
             "SET client_encoding = 'UTF8'; SET lock_timeout = '%dms'; "
             "SET client_min_messages = warning",
             o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
    if (db_pg_exec(d, sql) != FH_OK) {
        snprintf(err, errlen, "%s", d->errmsg);
        return FH_ERR_IO;
    }
    return FH_OK;
}

void db_pg_close(db *d)
{
    if (d->pg)
        PQfinish(d->pg);
}

fh_err db_pg_exec(db *d, const char *sql)
{
    PGresult *r = PQexec(d->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    fh_err e = FH_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_error(d, "", r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg));
        e = FH_ERR_IO;
    } else if (!strcmp(sql, "COMMIT") && !strcmp(PQcmdStatus(r), "ROLLBACK")) {
        /* COMMIT of a transaction in which a statement failed rolls it back */
        set_error(d, "COMMIT", "the transaction was rolled back (a statement in it failed)");
        e = FH_ERR_IO;
    }
    PQclear(r);
    return e;
}

bool db_pg_in_transaction(db *d)
{
    return PQtransactionStatus(d->pg) != PQTRANS_IDLE;
}

/* ?N -> $N outside '...' and "..."; *nparams = the largest N. NULL when out of memory. */
static char *convert(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1), *o = out;
    char quote = 0;

    *nparams = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
            int v = atoi(p + 1);

            if (v > *nparams)
                *nparams = v;
            *o++ = '$';
            continue;
        }
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

bool db_pg_prepare(db *d, db_stmt *st, const char *sql)
{
    struct pg_stmt *p = calloc(1, sizeof(*p));
    char *text;
    PGresult *r;
    bool ok;

    if (!p || !(text = convert(sql, &p->nparams))) {
        free(p);
        set_error(d, "prepare", "out of memory");
        return false;
    }
    st->pg = p;
    snprintf(p->name, sizeof(p->name), "s%u", ++d->next_id);
    if (p->nparams && (!(p->values = calloc((size_t)p->nparams, sizeof(*p->values))) ||
                       !(p->lengths = calloc((size_t)p->nparams, sizeof(*p->lengths))) ||
                       !(p->formats = calloc((size_t)p->nparams, sizeof(*p->formats))) ||
                       !(p->ints = calloc((size_t)p->nparams, sizeof(*p->ints))))) {
        free(text);
        set_error(d, "prepare", "out of memory");
        return false;
    }
    r = PQprepare(d->pg, p->name, text, p->nparams, NULL);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        set_error(d, "prepare", r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg));
    PQclear(r);
    free(text);
    return ok;
}

void db_pg_finalize(db_stmt *st)
{
    struct pg_stmt *p = st->pg;
    char sql[48];

    if (!p)
        return;
    db_pg_reset(st);
    if (p->name[0] && PQstatus(st->d->pg) == CONNECTION_OK &&
        PQtransactionStatus(st->d->pg) == PQTRANS_IDLE) {
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", p->name);
        PQclear(PQexec(st->d->pg, sql));
    }
    free(p->values);
    free(p->lengths);
    free(p->formats);
    free(p->ints);
    free(p);
    st->pg = NULL;
}

void db_pg_bind(db_stmt *st, int i, const char *v, size_t len, bool binary)
{
    struct pg_stmt *p = st->pg;

    if (i < 1 || i > p->nparams)
        return;
    p->values[i - 1] = binary && !v ? "" : v;
    p->lengths[i - 1] = (int)len;
    p->formats[i - 1] = binary ? 1 : 0;
}

void db_pg_bind_int64(db_stmt *st, int i, int64_t v)
{
    struct pg_stmt *p = st->pg;

    if (i < 1 || i > p->nparams)
        return;
    snprintf(p->ints[i - 1], sizeof(p->ints[0]), "%lld", (long long)v);
    db_pg_bind(st, i, p->ints[i - 1], strlen(p->ints[i - 1]), false);
}

static void free_blobs(struct pg_stmt *p)
{
    for (int c = 0; c < p->nblobs; c++)
        if (p->blobs[c])
            PQfreemem(p->blobs[c]);
    free(p->blobs);
    p->blobs = NULL;
    p->nblobs = 0;
}

int db_pg_step(db_stmt *st)
{
    struct pg_stmt *p = st->pg;
    db *d = st->d;

    if (p->executed) {
        free_blobs(p);
        return ++p->row < p->nrows ? DB_ROW : DB_DONE;
    }
    p->executed = true;
    p->res = PQexecPrepared(d->pg, p->name, p->nparams, p->values, p->lengths, p->formats, 0);
    switch (PQresultStatus(p->res)) {
    case PGRES_COMMAND_OK:
        d->changes = strtoll(PQcmdTuples(p->res), NULL, 10);
        return DB_DONE;
    case PGRES_TUPLES_OK:
        p->nrows = PQntuples(p->res);
        p->row = 0;
        return p->nrows ? DB_ROW : DB_DONE;
    default:
        set_error(d, "", p->res ? PQresultErrorMessage(p->res) : PQerrorMessage(d->pg));
        return DB_ERROR;
    }
}

void db_pg_reset(db_stmt *st)
{
    struct pg_stmt *p = st->pg;

    PQclear(p->res);
    p->res = NULL;
    p->executed = false;
    p->row = p->nrows = 0;
    free_blobs(p);
    for (int i = 0; i < p->nparams; i++) {
        p->values[i] = NULL;
        p->lengths[i] = 0;
        p->formats[i] = 0;
    }
}

bool db_pg_column_null(db_stmt *st, int c)
{
    struct pg_stmt *p = st->pg;

    return !p->res || p->row >= p->nrows || PQgetisnull(p->res, p->row, c);
}

const char *db_pg_column_text(db_stmt *st, int c)
{
    return PQgetvalue(st->pg->res, st->pg->row, c);
}

size_t db_pg_column_bytes(db_stmt *st, int c)
{
    struct pg_stmt *p = st->pg;

    return p->res && p->row < p->nrows ? (size_t)PQgetlength(p->res, p->row, c) : 0;
}

const void *db_pg_column_blob(db_stmt *st, int c, size_t *len)
{
    struct pg_stmt *p = st->pg;

    *len = 0;
    if (db_pg_column_null(st, c))
        return NULL;
    if (!p->blobs) {
        p->nblobs = PQnfields(p->res);
        if (!(p->blobs = calloc((size_t)p->nblobs, sizeof(*p->blobs)))) {
            p->nblobs = 0;
            return NULL;
        }
    }
    if (c < 0 || c >= p->nblobs)
        return NULL;
    if (p->blobs[c])
        PQfreemem(p->blobs[c]);
    p->blobs[c] = PQunescapeBytea((const unsigned char *)PQgetvalue(p->res, p->row, c), len);
    return p->blobs[c];
}
