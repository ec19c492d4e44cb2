/*
 * test_audit.c - the hash-chained audit log (correlator/store_audit.c) and the
 * accounts (store_accounts.c), on SQLite and on PostgreSQL (pgtest.h): the
 * record hash against a vector computed independently (Python hashlib, the
 * definition in audit.h), appends numbered without gaps, pruning that moves the
 * anchor and keeps the rest verifiable, and after pruning an edit still found;
 * passwords (policy, Argon2id, lockout after five failures, unlock after the
 * lock time), sessions (hash stored, idle and absolute expiry, logout) with an
 * injected clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "../../../correlator/accounts.h"
#include "../../../correlator/audit.h"
#include "../../../correlator/db.h"
#include "../../../correlator/store.h"
#include "pgtest.h"

#define MIN 60000LL
#define T0  1772416800000LL /* 2026-03-02T02:00:00Z */

typedef struct {
    char path[256];
    store *st;
} fx;

static int setup_on(void **state, bool pg)
{
    fx *f = calloc(1, sizeof(*f));
    store_opts so = {0};
    char err[512];
    static int n;

    if (pg) {
        if (!pgtest_fresh_db(f->path, sizeof(f->path)))
            return -1;
    } else {
        snprintf(f->path, sizeof(f->path), "/tmp/fh-test-audit-%d-%d.db", (int)getpid(), n++);
        unlink(f->path);
    }
    so.path = f->path;
    if (store_open(&f->st, &so, err, sizeof(err)) != FH_OK) {
        print_error("%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_on(state, false);
}

static int setup_pg(void **state)
{
    return setup_on(state, true);
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[300];

    store_close(f->st);
    if (!db_target_is_postgres(f->path)) {
        unlink(f->path);
        snprintf(p, sizeof(p), "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", f->path);
        unlink(p);
    }
    free(f);
    return 0;
}

static void raw(fx *f, const char *sql)
{
    db *d;
    db_opts o = {.busy_timeout_ms = 5000};
    char err[256];

    assert_int_equal(db_open(&d, f->path, &o, err, sizeof(err)), FH_OK);
    if (db_exec(d, sql) != FH_OK)
        fail_msg("%s: %s", sql, db_errmsg(d));
    db_close(d);
}

static void test_hash_vector(void **state)
{
    audit_entry e = {T0, "张三", "10.0.0.9", "login", NULL, "ok", NULL};
    char h1[65], h2[65];

    (void)state;
    audit_hash(1, &e, "0000000000000000000000000000000000000000000000000000000000000000", h1);
    assert_string_equal(h1, "af795265844f4afb21b9ed2393957f89b8e4c05bed69395154d20d6c55173c3b");
    e.at = T0 + MIN;
    e.action = "incident.transition";
    e.object = "abc";
    e.detail = "new -> acknowledged";
    audit_hash(2, &e, h1, h2);
    assert_string_equal(h2, "d333f49bbe07d011567e57d62cb00bfc4df28e8a211fb4b4d434cb84c0c2db60");
}

static void test_chain_and_prune(void **state)
{
    fx *f = *state;
    audit_verdict v;
    int64_t seq, pruned;
    char sql[128];

    for (int i = 0; i < 10; i++) {
        audit_entry e = {T0 + i * MIN, "张三", "10.0.0.9", "login", NULL, "ok", NULL};

        assert_int_equal(audit_append(f->st, &e, &seq), FH_OK);
        assert_int_equal(seq, i + 1);
    }
    assert_int_equal(audit_verify(f->st, &v), FH_OK);
    assert_true(v.ok);
    assert_int_equal(v.records, 10);
    /* inside a transaction: rolled back with it */
    {
        audit_entry e = {T0 + 99 * MIN, "x", NULL, "login", NULL, "ok", NULL};

        assert_int_equal(store_begin(f->st), FH_OK);
        assert_int_equal(audit_append(f->st, &e, &seq), FH_OK);
        store_rollback(f->st);
        assert_int_equal(audit_append(f->st, &e, &seq), FH_OK);
        assert_int_equal(seq, 11); /* not 12: nothing of the rolled-back one stayed */
    }
    /* prune records before T0 + 4 min: 1..4 go, the anchor is record 4 */
    assert_int_equal(audit_prune(f->st, T0 + 4 * MIN, &pruned), FH_OK);
    assert_int_equal(pruned, 4);
    assert_int_equal(audit_verify(f->st, &v), FH_OK);
    assert_true(v.ok);
    assert_int_equal(v.records, 7);
    /* the newest record is never pruned */
    assert_int_equal(audit_prune(f->st, T0 + 1000 * MIN, &pruned), FH_OK);
    assert_int_equal(pruned, 6);
    assert_int_equal(audit_verify(f->st, &v), FH_OK);
    assert_true(v.ok);
    assert_int_equal(v.records, 1);
    /* an edit after pruning is still found */
    snprintf(sql, sizeof(sql), "UPDATE audit_log SET actor = 'mallory' WHERE seq = 11");
    raw(f, sql);
    assert_int_equal(audit_verify(f->st, &v), FH_OK);
    assert_false(v.ok);
    assert_int_equal(v.first_bad, 11);
    assert_non_null(strstr(v.reason, "edited"));
}

static void test_accounts(void **state)
{
    fx *f = *state;
    account_policy p = account_policy_default();
    char pw[25], sid[SESSION_TOKEN_LEN + 1], csrf[SESSION_TOKEN_LEN + 1], csrf2[sizeof(csrf)];
    const char *why;
    bool created;
    login_result res;
    int64_t until, now = T0;
    account_info who;

    assert_int_equal(account_bootstrap(f->st, now, pw, &created), FH_OK);
    assert_true(created);
    assert_int_equal(strlen(pw), 24);
    assert_true(account_password_ok(&p, pw, &why));
    {
        char pw2[25];

        assert_int_equal(account_bootstrap(f->st, now, pw2, &created), FH_OK);
        assert_false(created); /* only on an empty user table */
        assert_string_equal(pw2, "");
    }
    assert_false(account_password_ok(&p, "Short-1", &why));
    assert_string_equal(why, "too_short");
    assert_false(account_password_ok(&p, "longbutonlylowercase", &why));
    assert_string_equal(why, "too_few_classes");
    assert_true(account_password_ok(&p, "密码很长很长很长很长很长-A1", &why)); /* characters */
    assert_int_equal(
        account_create(f->st, &p, "li", ROLE_ANALYST, "A-good-passw0rd", false, now, &why), FH_OK);
    assert_int_equal(
        account_create(f->st, &p, "li", ROLE_ANALYST, "A-good-passw0rd", false, now, &why),
        FH_ERR_ARG);
    assert_string_equal(why, "exists");
    assert_int_equal(
        account_create(f->st, &p, "bad name", ROLE_ANALYST, "A-good-passw0rd", false, now, &why),
        FH_ERR_ARG);
    assert_string_equal(why, "bad_name");
    /* the first login must change the one-time password */
    assert_int_equal(
        account_login(f->st, &p, "admin", pw, "10.0.0.1", now, &res, &until, &who, sid, csrf),
        FH_OK);
    assert_int_equal(res, LOGIN_OK);
    assert_true(who.must_change);
    assert_int_equal(who.role, ROLE_SYSADMIN);
    assert_int_equal(strlen(sid), SESSION_TOKEN_LEN);
    /* the session: alive, then idle too long */
    assert_int_equal(account_session(f->st, &p, sid, now + 29 * MIN, &who, csrf2), FH_OK);
    assert_string_equal(csrf, csrf2);
    assert_int_equal(account_session(f->st, &p, sid, now + 29 * MIN + 31 * MIN, &who, csrf2),
                     FH_ERR_NOTFOUND);
    /* absolute: touched every 20 minutes, still gone after 12 h */
    assert_int_equal(account_login(f->st, &p, "li", "A-good-passw0rd", "10.0.0.1", now, &res,
                                   &until, &who, sid, csrf),
                     FH_OK);
    for (int64_t t = now + 20 * MIN; t < now + 12 * 60 * MIN; t += 20 * MIN)
        assert_int_equal(account_session(f->st, &p, sid, t, &who, csrf2), FH_OK);
    assert_int_equal(account_session(f->st, &p, sid, now + 12 * 60 * MIN + MIN, &who, csrf2),
                     FH_ERR_NOTFOUND);
    /* logout */
    assert_int_equal(account_login(f->st, &p, "li", "A-good-passw0rd", "10.0.0.1", now, &res,
                                   &until, &who, sid, csrf),
                     FH_OK);
    assert_int_equal(account_logout(f->st, sid), FH_OK);
    assert_int_equal(account_session(f->st, &p, sid, now, &who, csrf2), FH_ERR_NOTFOUND);
    /* five failures lock; the right password is refused while locked; then it works */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(
            account_login(f->st, &p, "li", "wrong", "10.0.0.1", now, &res, &until, &who, sid, csrf),
            FH_OK);
        assert_int_equal(res, LOGIN_BAD);
    }
    assert_int_equal(
        account_login(f->st, &p, "li", "wrong", "10.0.0.1", now, &res, &until, &who, sid, csrf),
        FH_OK);
    assert_int_equal(res, LOGIN_LOCKED);
    assert_int_equal(until, now + 15 * MIN);
    assert_int_equal(account_login(f->st, &p, "li", "A-good-passw0rd", "10.0.0.1", now + MIN, &res,
                                   &until, &who, sid, csrf),
                     FH_OK);
    assert_int_equal(res, LOGIN_LOCKED);
    assert_int_equal(account_login(f->st, &p, "li", "A-good-passw0rd", "10.0.0.1", now + 16 * MIN,
                                   &res, &until, &who, sid, csrf),
                     FH_OK);
    assert_int_equal(res, LOGIN_OK);
    /* a password older than the change interval must be changed */
    assert_int_equal(account_login(f->st, &p, "li", "A-good-passw0rd", "10.0.0.1",
                                   now + p.max_age_ms + MIN, &res, &until, &who, sid, csrf),
                     FH_OK);
    assert_int_equal(res, LOGIN_OK);
    assert_true(who.must_change);
    assert_int_equal(account_change_password(f->st, &p, "li", "A-good-passw0rd", "Another-passw0rd",
                                             now + p.max_age_ms + 2 * MIN, &why),
                     FH_OK);
    assert_int_equal(account_login(f->st, &p, "li", "Another-passw0rd", "10.0.0.1",
                                   now + p.max_age_ms + 3 * MIN, &res, &until, &who, sid, csrf),
                     FH_OK);
    assert_int_equal(res, LOGIN_OK);
    assert_false(who.must_change);
}

#define LITE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
#define PG(t)   cmocka_unit_test_setup_teardown(t, setup_pg, teardown)
#define TESTS(X)                                                                                   \
    {                                                                                              \
        X(test_chain_and_prune), X(test_accounts)                                                  \
    }

int main(void)
{
    const struct CMUnitTest pure[] = {cmocka_unit_test(test_hash_vector)};
    const struct CMUnitTest lite[] = TESTS(LITE);
    const struct CMUnitTest pg[] = TESTS(PG);
    int failed;

    if (sodium_init() < 0)
        return 1;
    failed = cmocka_run_group_tests_name("audit hash", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("sqlite", lite, NULL, NULL);
    if (!getenv("FH_TEST_PG") || !*getenv("FH_TEST_PG")) {
        printf("PostgreSQL: skipped, FH_TEST_PG is not set (make test-unit starts a server "
               "with tests/tools/pg.sh)\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("postgresql", pg, NULL, NULL);
}
