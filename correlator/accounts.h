/*
 * accounts.h - the console's users, roles and sessions in the store.
 *
 * Roles (GB/T 22239 8.1.5, separation of duties): sysadmin (users and settings,
 * no alert data), secadmin (rules, assets, lists, suppressions), analyst
 * (triage, limited to its departments), compliance (rates and reports,
 * read-only), auditor (the audit log only).
 *
 * Passwords: Argon2id (libsodium crypto_pwhash_str, interactive limits), a
 * policy of length and character classes and a change interval (8.1.4.1 a).
 * Login failures lock the account for a while (8.1.4.1 b); the server also
 * throttles per source address. Sessions: a random 256-bit id in the cookie,
 * only its SHA-256 in the store, with a CSRF token, idle and absolute timeouts.
 * Call sodium_init() once before any of this.
 */
#ifndef FH_ACCOUNTS_H
#define FH_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "store.h"

typedef enum {
    ROLE_SYSADMIN = 0,
    ROLE_SECADMIN,
    ROLE_ANALYST,
    ROLE_COMPLIANCE,
    ROLE_AUDITOR,
    ROLE_COUNT
} account_role;

const char *account_role_name(account_role r); /* "sysadmin" ... */
int account_role_parse(const char *s);         /* -1 when unknown */

typedef struct {
    uint32_t min_length;         /* default 12 */
    uint32_t min_classes;        /* of lower, upper, digit, other; default 3 */
    int64_t max_age_ms;          /* change interval; default 90 days */
    uint32_t lock_after;         /* failed logins in a row; default 5 */
    int64_t lock_ms;             /* default 15 min */
    int64_t session_idle_ms;     /* default 30 min */
    int64_t session_absolute_ms; /* default 12 h */
} account_policy;

/* The defaults above. */
account_policy account_policy_default(void);

/* Whether pw satisfies the policy; why = a code: "too_short", "too_few_classes". */
bool account_password_ok(const account_policy *p, const char *pw, const char **why);

/* Creates a user (FH_ERR_ARG with why = "exists", "bad_name", "too_short", ...). */
fh_err account_create(store *st, const account_policy *p, const char *name, account_role role,
                      const char *password, bool must_change, int64_t now, const char **why);

/*
 * When there is no user at all: creates "admin" (sysadmin) with a random one-time
 * password (written to pw, 24 characters + NUL) that must be changed at first
 * login; *created tells whether it did.
 */
fh_err account_bootstrap(store *st, int64_t now, char pw[25], bool *created);

typedef struct {
    char name[128];
    account_role role;
    bool must_change;      /* first login, or the password is older than the interval */
    char departments[512]; /* analyst scope, one per line ("" = none) */
} account_info;

typedef enum {
    LOGIN_OK = 0,
    LOGIN_BAD,    /* unknown user or wrong password (indistinguishable to the caller) */
    LOGIN_LOCKED, /* too many failures: locked until *until */
    LOGIN_DISABLED,
} login_result;

#define SESSION_TOKEN_LEN 43 /* base64url of 32 random bytes */

/*
 * Checks a password and opens a session: session id and CSRF token written to
 * sid and csrf (SESSION_TOKEN_LEN + 1 each). A failure counts towards the lock.
 */
fh_err account_login(store *st, const account_policy *p, const char *name, const char *password,
                     const char *source, int64_t now, login_result *res, int64_t *locked_until,
                     account_info *who, char *sid, char *csrf);

/* The session of sid, if alive at now (it touches last_seen); FH_ERR_NOTFOUND otherwise. */
fh_err account_session(store *st, const account_policy *p, const char *sid, int64_t now,
                       account_info *who, char *csrf);
fh_err account_logout(store *st, const char *sid);

/* An analyst's departments, one per line (NULL or "": none). */
fh_err account_set_departments(store *st, const char *name, const char *departments);

/* Changes a password (the old one checked; why as account_password_ok, or "wrong_password"). */
fh_err account_change_password(store *st, const account_policy *p, const char *name,
                               const char *old_pw, const char *new_pw, int64_t now,
                               const char **why);

/* ---- user management (the system administrator) ------------------------------------ */

typedef struct {
    const char *name, *role, *departments;
    bool must_change, disabled;
    int64_t locked_until, created_at, password_changed_at;
} account_row;
typedef void (*account_row_fn)(void *ctx, const account_row *r);
fh_err account_list(store *st, account_row_fn fn, void *ctx);

/*
 * Changes a user: role (< 0 keeps it), disabled (1, 0, or < 0 keeps it), departments
 * (NULL keeps them, "" clears them). A new role or disabling ends the user's sessions.
 * FH_ERR_NOTFOUND for an unknown user; FH_ERR_ARG with why = "last_sysadmin" when it
 * would leave no enabled system administrator, "bad_role".
 */
fh_err account_update(store *st, const char *name, int role, int disabled, const char *departments,
                      const char **why);

/* Sets a new password that must be changed at the next login; ends the user's sessions. */
fh_err account_reset_password(store *st, const account_policy *p, const char *name,
                              const char *password, int64_t now, const char **why);

/* ---- API tokens ---------------------------------------------------------------------
 * "fht_" + 16 hex digits (the id, public) + "_" + 43 characters of base64url (secret).
 * Only the SHA-256 of the whole token is stored. A token acts as its owner with the
 * role it was made for; a revoked or expired token, a disabled owner, or an owner
 * whose role has changed since, is refused. */

#define TOKEN_ID_LEN      20 /* "fht_" + 16 */
#define TOKEN_LEN         (TOKEN_ID_LEN + 1 + SESSION_TOKEN_LEN)
#define TOKEN_MAX_LIFE_MS (366 * 24 * 3600 * 1000LL)

/* FH_ERR_ARG with why = "bad_name", "bad_expiry" (past, or over a year), "no_such_user". */
fh_err token_create(store *st, const char *user, account_role role, const char *name,
                    int64_t expires_at, int64_t now, char token[TOKEN_LEN + 1],
                    char id[TOKEN_ID_LEN + 1], const char **why);

/* The owner of a live token, as who (id = the token's id); FH_ERR_NOTFOUND with why =
 * "unknown_token", "token_revoked", "token_expired", "account_disabled",
 * "token_role_changed". Records the use. */
fh_err token_auth(store *st, const char *token, int64_t now, account_info *who, char *id,
                  const char **why);

typedef struct {
    const char *id, *name, *user, *role;
    int64_t created_at, expires_at, revoked_at, last_used;
} token_row;
typedef void (*token_row_fn)(void *ctx, const token_row *r);
/* The tokens of user (NULL: everyone's). */
fh_err token_list(store *st, const char *user, token_row_fn fn, void *ctx);
/* Revokes token id (of user, or of anyone when user is NULL); FH_ERR_NOTFOUND if none. */
fh_err token_revoke(store *st, const char *id, const char *user, int64_t now);

#endif
