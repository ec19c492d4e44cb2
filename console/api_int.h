/*
 * api_int.h - what the console API's handler files (api.c, api_admin.c, api_rules.c)
 * share: the server state, the session of a request, the route table's types and
 * the helpers for bodies, audit records and incident scope. Not for other files.
 */
#ifndef FH_API_INT_H
#define FH_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>

#include "../correlator/accounts.h"
#include "../correlator/engine.h"
#include "../correlator/store.h"
#include "api.h"
#include "http.h"

#define COOKIE          "fh_session"
#define MAX_DEPTH       16
#define LOGIN_PARALLEL  2  /* Argon2id costs 64 MiB and ~0.2 s each */
#define SOURCE_FAILURES 20 /* login failures per address per window before 429 */
#define SOURCE_WINDOW   (15 * 60 * 1000LL)
#define NSOURCES        256

/* Role bits. */
#define R(x)   (1u << (x))
#define PUBLIC 0u
#define ANY                                                                                        \
    (R(ROLE_SYSADMIN) | R(ROLE_SECADMIN) | R(ROLE_ANALYST) | R(ROLE_COMPLIANCE) | R(ROLE_AUDITOR))
/* Alert data: analysts (their departments), security admins (tuning), compliance (read). */
/* Rules: security admins write them, analysts read them to understand an alert. */
#define RULES_READ  (R(ROLE_SECADMIN) | R(ROLE_ANALYST))
#define READ_ALERTS (R(ROLE_ANALYST) | R(ROLE_SECADMIN) | R(ROLE_COMPLIANCE))

typedef struct {
    char addr[64];
    int64_t since;
    uint32_t failures;
} source_slot;

struct api {
    api_opts o;
    account_policy pol;
    http_server *srv;
    sem_t logins;
    pthread_mutex_t mu;
    source_slot sources[NSOURCES];
};

typedef struct {
    bool ok;
    bool token; /* authenticated by an API token (Authorization: Bearer), not a cookie */
    account_info who;
    char csrf[SESSION_TOKEN_LEN + 1];
    const char *sid;
} session;

typedef void (*route_fn)(api *a, store *st, session *s, const http_req *r, http_resp *w,
                         const char *id);

typedef struct {
    const char *method, *path;
    unsigned roles;         /* PUBLIC: no session needed */
    bool change;            /* a state change: CSRF token and Origin checked */
    bool while_must_change; /* allowed before the first password change */
    route_fn fn;
    bool session_only; /* not with an API token (passwords, tokens themselves) */
} route;

/* The request's time: the injected clock or the wall clock (ms). */
int64_t api_now(api *a);
/* The body as a JSON object: NULL after answering 400 (invalid_json, too_deep, not_an_object). */
json_t *api_body(const http_req *r, http_resp *w);
/* A string member: NULL (and 400 wrong_type / missing_field, once) when absent and required. */
const char *api_str(json_t *o, const char *key, bool required, http_resp *w, bool *bad);
/* Appends an audit record (errors are logged). */
void api_audit(api *a, store *st, const char *actor, const http_req *r, const char *action,
               const char *object, const char *outcome, const char *detail);
/* Whether the user may act on incident id; false after answering 404 or 500. */
bool api_incident_for(store *st, const session *s, const char *id, http_resp *w);
/* api_admin.c */
#define HANDLER(name)                                                                              \
    void name(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
HANDLER(h_comment);
HANDLER(h_users);
HANDLER(h_user_update);
HANDLER(h_user_reset);
HANDLER(h_tokens);
HANDLER(h_token_add);
HANDLER(h_token_revoke);
HANDLER(h_suppressions);
HANDLER(h_suppression_add);
HANDLER(h_suppression_revoke);
HANDLER(h_health);
/* api_rules.c */
HANDLER(h_rules);
HANDLER(h_rule_titles);
HANDLER(h_rule);
HANDLER(h_rule_validate);
HANDLER(h_rule_upload);
HANDLER(h_rule_enable);
HANDLER(h_rule_disable);
HANDLER(h_rules_reload);
/* api_assets.c */
HANDLER(h_assets);
HANDLER(h_assets_validate);
HANDLER(h_assets_replace);
HANDLER(h_lists);
HANDLER(h_list);
HANDLER(h_list_validate);
HANDLER(h_list_replace);
/* api_events.c */
HANDLER(h_alert_events);
HANDLER(h_events);
HANDLER(h_rule_test);

/* Writes dir/name through a temporary file and rename(). */
bool api_write_atomic(const char *dir, const char *name, const char *text, size_t len);

/* A change to try before saving it: a rule file, a list (NAME.txt) or the inventory. */
typedef struct {
    const char *rule_name, *rule_text;
    size_t rule_len;
    const char *list_name, *list_text;
    size_t list_len;
    const char *assets_text;
    size_t assets_len;
} api_candidate;
engine *api_load_candidate(api *a, const api_candidate *c, http_resp *w, bool *refused);

/* The rule folder with text as its file name (an upload's result); NULL after answering. */
engine *api_rules_load_with(api *a, const char *name, const char *text, size_t len, http_resp *w);
void api_rules_errors_json(jbuf *b, const engine *e);

/* Rule k of a loaded set (detection rules, then correlation rules), as the API names it:
 * id is the rule's id, else its name, else its title (the alerts' rule_id). */
typedef struct {
    const char *id, *name, *title, *title_zh, *file;
    uint32_t line;
    level lvl;
    char **tags;
    uint32_t ntags;
    bool correlation;
} api_rule;
uint32_t api_rule_count(const engine *e);
api_rule api_rule_at(const engine *e, uint32_t k);
/* The index of the rule with that id, or -1. */
int64_t api_rule_find(const engine *e, const char *id);
/* Whether the rule comes from the rule file of that name (its base name). */
bool api_rule_in_file(const api_rule *v, const char *name);

/* {"ok":true} */
void api_ok(http_resp *w);

#endif
