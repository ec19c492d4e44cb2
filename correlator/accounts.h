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

#endif
