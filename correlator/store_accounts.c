/*
 * store_accounts.c - users, passwords and sessions in the store; see accounts.h.
 */
#include "accounts.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>
#include <sodium.h>

#include "store_int.h"

#define DAY_MS (24 * 3600 * 1000LL)

static const char *const ROLES[ROLE_COUNT] = {"sysadmin", "secadmin", "analyst", "compliance",
                                              "auditor"};

enum {
    U_COUNT_ALL,
    U_GET,
    U_INSERT,
    U_FAIL,
    U_OK,
    U_SESSION_NEW,
    U_SESSION_GET,
    U_SESSION_TOUCH,
    U_SESSION_DEL,
    U_PASSWORD,
    U_DEPARTMENTS,
    U_LIST,
    U_SET_ROLE,
    U_SET_DISABLED,
    U_RESET,
    U_SESSIONS_END,
    U_OTHER_SYSADMINS,
    T_INSERT,
    T_GET,
    T_TOUCH,
    T_LIST,
    T_REVOKE,
    U_STMTS
};

static const char *const SQL[U_STMTS] = {
    [U_COUNT_ALL] = "SELECT COUNT(*) FROM users",
    [U_GET] = "SELECT name, role, password_hash, must_change, password_changed_at, departments, "
              "failed_logins, locked_until, disabled FROM users WHERE name = ?1",
    [U_INSERT] = "INSERT INTO users (name, role, password_hash, must_change, password_changed_at, "
                 "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [U_FAIL] = "UPDATE users SET failed_logins = failed_logins + 1, locked_until = CASE WHEN "
               "failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END WHERE name = ?1",
    [U_OK] = "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?1",
    [U_SESSION_NEW] = "INSERT INTO sessions (id_hash, user_name, csrf, created_at, last_seen, "
                      "source) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
    [U_SESSION_GET] = "SELECT s.user_name, s.csrf, s.created_at, s.last_seen FROM sessions s "
                      "JOIN users u ON u.name = s.user_name WHERE s.id_hash = ?1 AND "
                      "u.disabled = 0",
    [U_SESSION_TOUCH] = "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1",
    [U_SESSION_DEL] = "DELETE FROM sessions WHERE id_hash = ?1",
    [U_PASSWORD] = "UPDATE users SET password_hash = ?2, must_change = 0, password_changed_at = "
                   "?3 WHERE name = ?1",
    [U_DEPARTMENTS] = "UPDATE users SET departments = ?2 WHERE name = ?1",
    [U_LIST] = "SELECT name, role, must_change, disabled, locked_until, departments, created_at, "
               "password_changed_at FROM users ORDER BY name",
    [U_SET_ROLE] = "UPDATE users SET role = ?2 WHERE name = ?1",
    [U_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE name = ?1",
    [U_RESET] = "UPDATE users SET password_hash = ?2, must_change = 1, password_changed_at = ?3, "
                "failed_logins = 0, locked_until = NULL WHERE name = ?1",
    [U_SESSIONS_END] = "DELETE FROM sessions WHERE user_name = ?1",
    [U_OTHER_SYSADMINS] = "SELECT COUNT(*) FROM users WHERE role = 'sysadmin' AND disabled = 0 "
                          "AND name <> ?1",
    [T_INSERT] = "INSERT INTO api_tokens (id, hash, name, user_name, role, created_at, expires_at) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [T_GET] = "SELECT t.id, t.user_name, t.role, t.expires_at, t.revoked_at, u.role, u.disabled "
              "FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.hash = ?1",
    [T_TOUCH] = "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1",
    [T_LIST] = "SELECT id, name, user_name, role, created_at, expires_at, revoked_at, last_used "
               "FROM api_tokens WHERE user_name = COALESCE(?1, user_name) ORDER BY created_at, id",
    [T_REVOKE] = "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_name = COALESCE(?2, "
                 "user_name) AND revoked_at IS NULL",
};

_Static_assert((int)U_STMTS <= (int)STORE_LAZY_MAX - (int)LAZY_ACCOUNTS,
               "store_accounts.c: too many statements");

static db_stmt *stmt(store *st, int i)
{
    return store_lazy(st, LAZY_ACCOUNTS + i, SQL[i]);
}

const char *account_role_name(account_role r)
{
    return (unsigned)r < ROLE_COUNT ? ROLES[r] : NULL;
}

int account_role_parse(const char *s)
{
    for (int r = 0; s && r < ROLE_COUNT; r++)
        if (!strcmp(s, ROLES[r]))
            return r;
    return -1;
}

account_policy account_policy_default(void)
{
    account_policy p = {
        .min_length = 12,
        .min_classes = 3,
        .max_age_ms = 90 * DAY_MS,
        .lock_after = 5,
        .lock_ms = 15 * 60 * 1000LL,
        .session_idle_ms = 30 * 60 * 1000LL,
        .session_absolute_ms = 12 * 3600 * 1000LL,
    };
    return p;
}

bool account_password_ok(const account_policy *p, const char *pw, const char **why)
{
    bool lower = false, upper = false, digit = false, other = false;
    size_t chars = 0;

    for (const unsigned char *c = (const unsigned char *)pw; *c; c++) {
        if ((*c & 0xC0) != 0x80) /* count characters, not UTF-8 bytes */
            chars++;
        if (islower(*c))
            lower = true;
        else if (isupper(*c))
            upper = true;
        else if (isdigit(*c))
            digit = true;
        else
            other = true;
    }
    if (chars < p->min_length) {
        *why = "too_short";
        return false;
    }
    if ((uint32_t)(lower + upper + digit + other) < p->min_classes) {
        *why = "too_few_classes";
        return false;
    }
    return true;
}

static bool name_ok(const char *n)
{
    size_t len = strlen(n);

    if (!len || len > 64)
        return false;
    for (const char *c = n; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._-@", *c))
            return false;
    return true;
}

static fh_err count_users(store *st, int64_t *n)
{
    db_stmt *s = stmt(st, U_COUNT_ALL);
    fh_err err = FH_OK;

    if (!s)
        return FH_ERR_IO;
    if (db_step(s) == DB_ROW)
        *n = db_column_int64(s, 0);
    else
        err = store_fail(st, "accounts: SELECT COUNT(*) FROM users");
    store_stmt_done(s);
    return err;
}

fh_err account_create(store *st, const account_policy *p, const char *name, account_role role,
                      const char *password, bool must_change, int64_t now, const char **why)
{
    char hash[crypto_pwhash_STRBYTES];
    db_stmt *s;
    fh_err err;

    *why = NULL;
    if (!name || !name_ok(name)) {
        *why = "bad_name";
        return FH_ERR_ARG;
    }
    if (!account_role_name(role)) {
        *why = "bad_role";
        return FH_ERR_ARG;
    }
    if (!account_password_ok(p, password, why))
        return FH_ERR_ARG;
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(st->errmsg, sizeof(st->errmsg), "accounts: out of memory hashing a password");
        return FH_ERR_NOMEM;
    }
    if (!(s = stmt(st, U_INSERT)))
        return FH_ERR_IO;
    db_bind_str(s, 1, name);
    db_bind_str(s, 2, account_role_name(role));
    db_bind_str(s, 3, hash);
    db_bind_int64(s, 4, must_change ? 1 : 0);
    db_bind_int64(s, 5, now);
    err = store_step_done(st, s, "accounts: INSERT users");
    sodium_memzero(hash, sizeof(hash));
    if (err && strstr(st->errmsg, "UNIQUE") == NULL && strstr(st->errmsg, "duplicate") == NULL)
        return err;
    if (err)
        *why = "exists";
    return err ? FH_ERR_ARG : FH_OK;
}

fh_err account_bootstrap(store *st, int64_t now, char pw[25], bool *created)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    account_policy p = account_policy_default();
    const char *why;
    int64_t n = 0;
    fh_err err;

    *created = false;
    pw[0] = '\0';
    if ((err = count_users(st, &n)) || n > 0)
        return err;
    for (int i = 0; i < 24; i++)
        pw[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    /* the policy asks for three classes: make sure of them */
    pw[5] = '7';
    pw[11] = 'K';
    pw[17] = 'q';
    pw[24] = '\0';
    err = account_create(st, &p, "admin", ROLE_SYSADMIN, pw, true, now, &why);
    *created = err == FH_OK;
    return err;
}

/* base64url of n random bytes. */
static void random_token(char *out, size_t outlen)
{
    unsigned char b[32];

    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(out, outlen, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void sid_hash(const char *sid, char out[65])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];

    sha256_init(&c);
    sha256_update(&c, strlen(sid), (const uint8_t *)sid);
    sha256_digest(&c, sizeof(d), d);
    for (size_t i = 0; i < sizeof(d); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A hash of a random password, checked against when the user does not exist. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    char pw[SESSION_TOKEN_LEN + 1];

    random_token(pw, sizeof(pw));
    if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0';
}

typedef struct {
    char hash[crypto_pwhash_STRBYTES];
    int64_t changed_at, locked_until;
    int failed;
    bool disabled;
} user_row;

static fh_err get_user(store *st, const char *name, account_info *who, user_row *u)
{
    db_stmt *s = stmt(st, U_GET);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, name);
    rc = db_step(s);
    if (rc == DB_ROW) {
        int role = account_role_parse(db_column_text(s, 1));

        memset(who, 0, sizeof(*who));
        snprintf(who->name, sizeof(who->name), "%s", db_column_text(s, 0));
        who->role = role < 0 ? ROLE_AUDITOR : (account_role)role;
        snprintf(u->hash, sizeof(u->hash), "%s", db_column_text(s, 2) ? db_column_text(s, 2) : "");
        who->must_change = db_column_int64(s, 3) != 0;
        u->changed_at = db_column_int64(s, 4);
        snprintf(who->departments, sizeof(who->departments), "%s",
                 db_column_text(s, 5) ? db_column_text(s, 5) : "");
        u->failed = (int)db_column_int64(s, 6);
        u->locked_until = db_column_int64(s, 7);
        u->disabled = db_column_int64(s, 8) != 0;
    } else if (rc == DB_DONE) {
        err = FH_ERR_NOTFOUND;
    } else {
        err = store_fail(st, "accounts: SELECT users");
    }
    store_stmt_done(s);
    return err;
}

fh_err account_login(store *st, const account_policy *p, const char *name, const char *password,
                     const char *source, int64_t now, login_result *res, int64_t *locked_until,
                     account_info *who, char *sid, char *csrf)
{
    user_row u;
    account_info tmp;
    char h[65];
    db_stmt *s;
    fh_err err;

    *res = LOGIN_BAD;
    *locked_until = 0;
    if (!who)
        who = &tmp;
    err = get_user(st, name ? name : "", who, &u);
    if (err == FH_ERR_NOTFOUND) {
        /* the same work as a real check, so timing does not tell which names exist */
        pthread_once(&dummy_once, make_dummy);
        if (crypto_pwhash_str_verify(dummy_hash, password, strlen(password)) == 0)
            *res = LOGIN_BAD; /* a random password nobody knows: cannot happen */
        return FH_OK;
    }
    if (err)
        return err;
    if (u.disabled) {
        *res = LOGIN_DISABLED;
        return FH_OK;
    }
    if (u.locked_until > now) {
        *res = LOGIN_LOCKED;
        *locked_until = u.locked_until;
        return FH_OK;
    }
    if (crypto_pwhash_str_verify(u.hash, password, strlen(password)) != 0) {
        if (!(s = stmt(st, U_FAIL)))
            return FH_ERR_IO;
        db_bind_str(s, 1, who->name);
        db_bind_int64(s, 2, p->lock_after);
        db_bind_int64(s, 3, now + p->lock_ms);
        if ((err = store_step_done(st, s, "accounts: UPDATE users (failure)")))
            return err;
        if ((uint32_t)u.failed + 1 >= p->lock_after) {
            *res = LOGIN_LOCKED;
            *locked_until = now + p->lock_ms;
        }
        return FH_OK;
    }
    if (p->max_age_ms > 0 && now - u.changed_at > p->max_age_ms)
        who->must_change = true;
    if (!(s = stmt(st, U_OK)))
        return FH_ERR_IO;
    db_bind_str(s, 1, who->name);
    if ((err = store_step_done(st, s, "accounts: UPDATE users (success)")))
        return err;
    random_token(sid, SESSION_TOKEN_LEN + 1);
    random_token(csrf, SESSION_TOKEN_LEN + 1);
    sid_hash(sid, h);
    if (!(s = stmt(st, U_SESSION_NEW)))
        return FH_ERR_IO;
    db_bind_str(s, 1, h);
    db_bind_str(s, 2, who->name);
    db_bind_str(s, 3, csrf);
    db_bind_int64(s, 4, now);
    db_bind_str(s, 5, source);
    if ((err = store_step_done(st, s, "accounts: INSERT sessions")))
        return err;
    *res = LOGIN_OK;
    return FH_OK;
}

fh_err account_session(store *st, const account_policy *p, const char *sid, int64_t now,
                       account_info *who, char *csrf)
{
    db_stmt *s = stmt(st, U_SESSION_GET);
    char h[65], user[128] = "";
    int64_t created = 0, seen = 0;
    user_row u;
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    if (!sid || strlen(sid) != SESSION_TOKEN_LEN)
        return FH_ERR_NOTFOUND;
    sid_hash(sid, h);
    db_bind_str(s, 1, h);
    rc = db_step(s);
    if (rc == DB_ROW) {
        snprintf(user, sizeof(user), "%s", db_column_text(s, 0));
        snprintf(csrf, SESSION_TOKEN_LEN + 1, "%s", db_column_text(s, 1));
        created = db_column_int64(s, 2);
        seen = db_column_int64(s, 3);
    } else if (rc == DB_DONE) {
        err = FH_ERR_NOTFOUND;
    } else {
        err = store_fail(st, "accounts: SELECT sessions");
    }
    store_stmt_done(s);
    if (err)
        return err;
    if (now - seen > p->session_idle_ms || now - created > p->session_absolute_ms) {
        account_logout(st, sid);
        return FH_ERR_NOTFOUND;
    }
    if ((err = get_user(st, user, who, &u)))
        return err;
    if (p->max_age_ms > 0 && now - u.changed_at > p->max_age_ms)
        who->must_change = true;
    if (!(s = stmt(st, U_SESSION_TOUCH)))
        return FH_ERR_IO;
    db_bind_str(s, 1, h);
    db_bind_int64(s, 2, now);
    return store_step_done(st, s, "accounts: UPDATE sessions");
}

fh_err account_logout(store *st, const char *sid)
{
    db_stmt *s = stmt(st, U_SESSION_DEL);
    char h[65];

    if (!s)
        return FH_ERR_IO;
    sid_hash(sid, h);
    db_bind_str(s, 1, h);
    return store_step_done(st, s, "accounts: DELETE sessions");
}

fh_err account_set_departments(store *st, const char *name, const char *departments)
{
    db_stmt *s = stmt(st, U_DEPARTMENTS);
    fh_err err;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, name);
    db_bind_str(s, 2, departments && *departments ? departments : NULL);
    if ((err = store_step_done(st, s, "accounts: UPDATE users (departments)")))
        return err;
    return db_changes(st->db) ? FH_OK : FH_ERR_NOTFOUND;
}

/* A new password under the policy, hashed and stored by statement which (?1 name, ?2 hash,
 * ?3 time). */
static fh_err set_password(store *st, const account_policy *p, const char *name, const char *pw,
                           int which, int64_t now, const char **why)
{
    char hash[crypto_pwhash_STRBYTES];
    db_stmt *s;
    fh_err err;

    if (!account_password_ok(p, pw, why))
        return FH_ERR_ARG;
    if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return FH_ERR_NOMEM;
    if (!(s = stmt(st, which))) {
        sodium_memzero(hash, sizeof(hash));
        return FH_ERR_IO;
    }
    db_bind_str(s, 1, name);
    db_bind_str(s, 2, hash);
    db_bind_int64(s, 3, now);
    err = store_step_done(st, s, "accounts: UPDATE users (password)");
    sodium_memzero(hash, sizeof(hash));
    return err;
}

fh_err account_change_password(store *st, const account_policy *p, const char *name,
                               const char *old_pw, const char *new_pw, int64_t now,
                               const char **why)
{
    account_info who;
    user_row u;
    fh_err err;

    *why = NULL;
    if ((err = get_user(st, name, &who, &u)))
        return err;
    if (crypto_pwhash_str_verify(u.hash, old_pw, strlen(old_pw)) != 0) {
        *why = "wrong_password";
        return FH_ERR_ARG;
    }
    if (!strcmp(old_pw, new_pw)) {
        *why = "same_password";
        return FH_ERR_ARG;
    }
    return set_password(st, p, name, new_pw, U_PASSWORD, now, why);
}

/* ---- user management ----------------------------------------------------------------- */

fh_err account_list(store *st, account_row_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, U_LIST);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    while ((rc = db_step(s)) == DB_ROW) {
        account_row r = {.name = db_column_text(s, 0),
                         .role = db_column_text(s, 1),
                         .must_change = db_column_int64(s, 2) != 0,
                         .disabled = db_column_int64(s, 3) != 0,
                         .locked_until = db_column_int64(s, 4),
                         .departments = db_column_text(s, 5),
                         .created_at = db_column_int64(s, 6),
                         .password_changed_at = db_column_int64(s, 7)};
        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "accounts: SELECT users");
    store_stmt_done(s);
    return err;
}

/* Whether another enabled system administrator than name exists. */
static fh_err other_sysadmin(store *st, const char *name, bool *yes)
{
    db_stmt *s = stmt(st, U_OTHER_SYSADMINS);
    fh_err err = FH_OK;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, name);
    if (db_step(s) == DB_ROW)
        *yes = db_column_int64(s, 0) > 0;
    else
        err = store_fail(st, "accounts: SELECT COUNT(*) FROM users (sysadmins)");
    store_stmt_done(s);
    return err;
}

static fh_err end_sessions(store *st, const char *name)
{
    db_stmt *s = stmt(st, U_SESSIONS_END);

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, name);
    return store_step_done(st, s, "accounts: DELETE sessions (user)");
}

fh_err account_update(store *st, const char *name, int role, int disabled, const char *departments,
                      const char **why)
{
    account_info who;
    user_row u;
    db_stmt *s;
    bool own = !store_in_transaction(st), other = true;
    fh_err err;

    *why = NULL;
    if (own && (err = store_begin(st)))
        return err;
    if ((err = get_user(st, name, &who, &u)))
        goto out;
    /* the platform keeps one enabled system administrator, or nobody can manage users */
    if (who.role == ROLE_SYSADMIN && !u.disabled &&
        ((role >= 0 && role != ROLE_SYSADMIN) || disabled == 1)) {
        if ((err = other_sysadmin(st, name, &other)))
            goto out;
        if (!other) {
            *why = "last_sysadmin";
            err = FH_ERR_ARG;
            goto out;
        }
    }
    if (role >= 0) {
        if (!account_role_name((account_role)role)) {
            *why = "bad_role";
            err = FH_ERR_ARG;
            goto out;
        }
        if (!(s = stmt(st, U_SET_ROLE))) {
            err = FH_ERR_IO;
            goto out;
        }
        db_bind_str(s, 1, name);
        db_bind_str(s, 2, account_role_name((account_role)role));
        if ((err = store_step_done(st, s, "accounts: UPDATE users (role)")))
            goto out;
    }
    if (disabled >= 0) {
        if (!(s = stmt(st, U_SET_DISABLED))) {
            err = FH_ERR_IO;
            goto out;
        }
        db_bind_str(s, 1, name);
        db_bind_int64(s, 2, disabled ? 1 : 0);
        if ((err = store_step_done(st, s, "accounts: UPDATE users (disabled)")))
            goto out;
    }
    if (departments && (err = account_set_departments(st, name, departments)))
        goto out;
    /* a new role or a disabled account: its open sessions end now */
    if ((role >= 0 && (account_role)role != who.role) || disabled == 1)
        err = end_sessions(st, name);
out:
    return store_own_tx_end(st, own, err);
}

fh_err account_reset_password(store *st, const account_policy *p, const char *name,
                              const char *password, int64_t now, const char **why)
{
    account_info who;
    user_row u;
    fh_err err;

    *why = NULL;
    if ((err = get_user(st, name, &who, &u)))
        return err;
    err = set_password(st, p, name, password, U_RESET, now, why);
    return err ? err : end_sessions(st, name);
}

/* ---- API tokens ------------------------------------------------------------------------ */

fh_err token_create(store *st, const char *user, account_role role, const char *name,
                    int64_t expires_at, int64_t now, char token[TOKEN_LEN + 1],
                    char id[TOKEN_ID_LEN + 1], const char **why)
{
    unsigned char rid[8];
    char secret[SESSION_TOKEN_LEN + 1], h[65];
    db_stmt *s;
    fh_err err;

    *why = NULL;
    if (!name || !*name || strlen(name) > 200) {
        *why = "bad_name";
        return FH_ERR_ARG;
    }
    if (expires_at <= now || expires_at - now > TOKEN_MAX_LIFE_MS) {
        *why = "bad_expiry";
        return FH_ERR_ARG;
    }
    randombytes_buf(rid, sizeof(rid));
    memcpy(id, "fht_", 4);
    sodium_bin2hex(id + 4, TOKEN_ID_LEN - 3, rid, sizeof(rid));
    random_token(secret, sizeof(secret));
    snprintf(token, TOKEN_LEN + 1, "%s_%s", id, secret);
    sodium_memzero(secret, sizeof(secret));
    sid_hash(token, h);
    if (!(s = stmt(st, T_INSERT)))
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    db_bind_str(s, 2, h);
    db_bind_str(s, 3, name);
    db_bind_str(s, 4, user);
    db_bind_str(s, 5, account_role_name(role));
    db_bind_int64(s, 6, now);
    db_bind_int64(s, 7, expires_at);
    err = store_step_done(st, s, "accounts: INSERT api_tokens");
    if (err && (strstr(st->errmsg, "FOREIGN") || strstr(st->errmsg, "foreign"))) {
        *why = "no_such_user";
        return FH_ERR_ARG;
    }
    return err;
}

fh_err token_auth(store *st, const char *token, int64_t now, account_info *who, char *id,
                  const char **why)
{
    db_stmt *s = stmt(st, T_GET);
    char h[65], user[128] = "", role[32] = "", urole[32] = "";
    int64_t expires = 0, revoked = 0;
    bool disabled = false;
    user_row u;
    fh_err err = FH_OK;
    int rc;

    *why = "unknown_token";
    if (!s)
        return FH_ERR_IO;
    if (!token || strlen(token) != TOKEN_LEN || strncmp(token, "fht_", 4))
        return FH_ERR_NOTFOUND;
    sid_hash(token, h);
    db_bind_str(s, 1, h);
    rc = db_step(s);
    if (rc == DB_ROW) {
        snprintf(id, TOKEN_ID_LEN + 1, "%s", db_column_text(s, 0));
        snprintf(user, sizeof(user), "%s", db_column_text(s, 1));
        snprintf(role, sizeof(role), "%s", db_column_text(s, 2));
        expires = db_column_int64(s, 3);
        revoked = db_column_int64(s, 4);
        snprintf(urole, sizeof(urole), "%s", db_column_text(s, 5));
        disabled = db_column_int64(s, 6) != 0;
    } else if (rc == DB_DONE) {
        err = FH_ERR_NOTFOUND;
    } else {
        err = store_fail(st, "accounts: SELECT api_tokens");
    }
    store_stmt_done(s);
    if (err)
        return err;
    /* a token never acts beyond its owner: a changed role or a disabled owner voids it */
    *why = revoked               ? "token_revoked"
           : expires <= now      ? "token_expired"
           : disabled            ? "account_disabled"
           : strcmp(role, urole) ? "token_role_changed"
                                 : NULL;
    if (*why)
        return FH_ERR_NOTFOUND;
    if ((err = get_user(st, user, who, &u)))
        return err;
    who->must_change = false; /* a token is not a password */
    if (!(s = stmt(st, T_TOUCH)))
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    db_bind_int64(s, 2, now);
    return store_step_done(st, s, "accounts: UPDATE api_tokens");
}

fh_err token_list(store *st, const char *user, token_row_fn fn, void *ctx)
{
    db_stmt *s = stmt(st, T_LIST);
    fh_err err = FH_OK;
    int rc;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, user);
    while ((rc = db_step(s)) == DB_ROW) {
        token_row r = {.id = db_column_text(s, 0),
                       .name = db_column_text(s, 1),
                       .user = db_column_text(s, 2),
                       .role = db_column_text(s, 3),
                       .created_at = db_column_int64(s, 4),
                       .expires_at = db_column_int64(s, 5),
                       .revoked_at = db_column_int64(s, 6),
                       .last_used = db_column_int64(s, 7)};
        fn(ctx, &r);
    }
    if (rc != DB_DONE)
        err = store_fail(st, "accounts: SELECT api_tokens (list)");
    store_stmt_done(s);
    return err;
}

fh_err token_revoke(store *st, const char *id, const char *user, int64_t now)
{
    db_stmt *s = stmt(st, T_REVOKE);
    fh_err err;

    if (!s)
        return FH_ERR_IO;
    db_bind_str(s, 1, id);
    db_bind_str(s, 2, user);
    db_bind_int64(s, 3, now);
    if ((err = store_step_done(st, s, "accounts: UPDATE api_tokens (revoke)")))
        return err;
    return db_changes(st->db) ? FH_OK : FH_ERR_NOTFOUND;
}
