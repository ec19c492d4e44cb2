/*
 * pgtest.h - the PostgreSQL half of the store tests: a fresh database on the
 * server tests/tools/pg.sh started (FH_TEST_PG, a libpq URI), one per call.
 * Without FH_TEST_PG the PostgreSQL groups skip and say so.
 */
#ifndef FH_PGTEST_H
#define FH_PGTEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

/* A new empty database; its URI in out. False (and why on stderr) when there is none. */
static inline bool pgtest_fresh_db(char *out, size_t len)
{
    static unsigned n;
    const char *base = getenv("FH_TEST_PG");
    const char *slash;
    char name[64], sql[96];
    PGconn *c;
    PGresult *r;
    bool ok;

    if (!base || !*base)
        return false;
    slash = strrchr(base, '/');
    if (!slash) {
        fprintf(stderr, "FH_TEST_PG: not a URI: %s\n", base);
        return false;
    }
    snprintf(name, sizeof(name), "fh_%d_%u", (int)getpid(), ++n);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    c = PQconnectdb(base);
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "FH_TEST_PG: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(out, len, "%.*s/%s", (int)(slash - base), base, name);
    return ok;
}

#endif
