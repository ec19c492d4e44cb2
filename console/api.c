/*
 * api.c - the console's JSON API under /api/v1 and /metrics (http.h serves it):
 * sessions (login, logout, password), users, the audit log, incident moves,
 * version. Every route names the roles that may call it and the server checks
 * them before the handler runs; every state change needs the session's CSRF
 * token (X-CSRF-Token) and, when the browser sends an Origin, our own.
 *
 * Answers are codes and parameters, never prose (the dashboard translates):
 *   {"error":{"code":"csrf_token_invalid"}}
 */
#include "api.h"

#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/fh_log.h"
#include "../correlator/accounts.h"
#include "../correlator/alert_query.h"
#include "../correlator/alerts.h"
#include "../correlator/audit.h"
#include "../correlator/incident.h"
#include "../correlator/rate.h"
#include "../correlator/store.h"
#include "api_int.h"
#include "report.h"

/* ---- per-thread store -------------------------------------------------------------- */

/* Each pool thread opens its own connection on first use; it is closed when the
 * thread ends (the daemon stopping). */
static pthread_key_t store_key;
static pthread_once_t store_key_once = PTHREAD_ONCE_INIT;

static void close_store(void *st)
{
    store_close(st);
}

static void make_store_key(void)
{
    pthread_key_create(&store_key, close_store);
}

static store *thread_store(api *a)
{
    char err[512];
    store_opts so = {.path = a->o.db, .busy_timeout_ms = 30000};
    store *st;

    pthread_once(&store_key_once, make_store_key);
    if ((st = pthread_getspecific(store_key)))
        return st;
    if (store_open(&st, &so, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        return NULL;
    }
    pthread_setspecific(store_key, st);
    return st;
}

int64_t api_now(api *a)
{
    struct timespec ts;

    if (a->o.now)
        return a->o.now(a->o.now_ctx);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- request bodies ---------------------------------------------------------------- */

/* Nesting depth of JSON text (strings skipped); refuses deep bodies before parsing. */
static int json_depth(const char *s, size_t n)
{
    int d = 0, max = 0;
    bool str = false, esc = false;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '{' || c == '[') {
            if (++d > max)
                max = d;
        } else if (c == '}' || c == ']') {
            d--;
        }
    }
    return max;
}

/*
 * The body as a JSON object: NULL after answering 400 with invalid_json,
 * too_deep, or not_an_object. jansson refuses invalid UTF-8 and NUL bytes.
 */
json_t *api_body(const http_req *r, http_resp *w)
{
    json_error_t e;
    json_t *j;

    if (json_depth(r->body, r->body_len) > MAX_DEPTH) {
        http_error(w, 400, "too_deep");
        return NULL;
    }
    j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        http_error(w, 400, "invalid_json");
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_error(w, 400, "not_an_object");
        return NULL;
    }
    return j;
}

/* A string member: NULL (and 400 wrong_type / missing_field) when absent and required. */
const char *api_str(json_t *o, const char *key, bool required, http_resp *w, bool *bad)
{
    json_t *v = json_object_get(o, key);

    if (!v || json_is_null(v)) {
        if (required && !*bad) {
            http_error_open(w, 400, "missing_field");
            jbuf_str(&w->body, "field", key);
            http_error_close(w);
            *bad = true;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        if (!*bad) {
            http_error_open(w, 400, "wrong_type");
            jbuf_str(&w->body, "field", key);
            jbuf_str(&w->body, "want", "string");
            http_error_close(w);
            *bad = true;
        }
        return NULL;
    }
    return json_string_value(v);
}

void api_ok(http_resp *w)
{
    jbuf_obj_open(&w->body, NULL);
    jbuf_bool(&w->body, "ok", true);
    jbuf_obj_close(&w->body);
}

/* ---- audit ------------------------------------------------------------------------- */

void api_audit(api *a, store *st, const char *actor, const http_req *r, const char *action,
               const char *object, const char *outcome, const char *detail)
{
    audit_entry e = {.at = api_now(a),
                     .actor = actor && *actor ? actor : "(anonymous)",
                     .source = r->source,
                     .action = action,
                     .object = object,
                     .outcome = outcome,
                     .detail = detail};

    if (audit_append(st, &e, NULL) != FH_OK)
        fh_error("audit: %s", store_errmsg(st));
}

/* ---- sessions ---------------------------------------------------------------------- */

static void session_cookie(const http_req *r, http_resp *w, const char *sid, bool clear)
{
    snprintf(w->set_cookie, sizeof(w->set_cookie),
             COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s%s", clear ? "" : sid,
             r->tls ? "; Secure" : "", clear ? "; Max-Age=0" : "");
}

/* ---- handlers ---------------------------------------------------------------------- */

static void h_version(api *a, store *st, session *s, const http_req *r, http_resp *w,
                      const char *id)
{
    (void)id;
    (void)a;
    (void)s;
    (void)r;
    jbuf_obj_open(&w->body, NULL);
    jbuf_str(&w->body, "version", FH_VERSION);
    jbuf_str(&w->body, "revision", FH_GIT_REV);
    jbuf_i64(&w->body, "schema", store_schema_version(st));
    jbuf_obj_close(&w->body);
}

static void who_json(http_resp *w, const account_info *who, const char *csrf)
{
    jbuf_obj_open(&w->body, NULL);
    jbuf_str(&w->body, "user", who->name);
    jbuf_str(&w->body, "role", account_role_name(who->role));
    jbuf_bool(&w->body, "must_change_password", who->must_change);
    jbuf_str(&w->body, "csrf", csrf);
    jbuf_obj_close(&w->body);
}

/* Counts a failed login from addr; true when the address is over its budget. */
static bool source_throttled(api *a, const char *addr, int64_t now, bool failed)
{
    source_slot *slot = NULL, *oldest = &a->sources[0];
    bool over;

    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < NSOURCES; i++) {
        if (!strcmp(a->sources[i].addr, addr)) {
            slot = &a->sources[i];
            break;
        }
        if (a->sources[i].since < oldest->since)
            oldest = &a->sources[i];
    }
    if (!slot && failed) {
        slot = oldest;
        snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
        slot->since = now;
        slot->failures = 0;
    }
    if (slot && now - slot->since > SOURCE_WINDOW) {
        slot->since = now;
        slot->failures = 0;
    }
    if (slot && failed)
        slot->failures++;
    over = slot && slot->failures >= SOURCE_FAILURES;
    pthread_mutex_unlock(&a->mu);
    return over;
}

static void h_login(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    const char *user, *pw;
    char sid[SESSION_TOKEN_LEN + 1], csrf[SESSION_TOKEN_LEN + 1];
    int64_t now = api_now(a), until = 0;
    login_result res;
    account_info who;
    bool bad = false;

    (void)id;
    (void)s;
    if (!j)
        return;
    user = api_str(j, "user", true, w, &bad);
    pw = api_str(j, "password", true, w, &bad);
    if (bad) {
        json_decref(j);
        return;
    }
    if (source_throttled(a, r->source, now, false)) {
        http_error(w, 429, "too_many_failures_from_address");
        api_audit(a, st, user, r, "login", user, "throttled", NULL);
        json_decref(j);
        return;
    }
    if (sem_trywait(&a->logins) != 0) {
        http_error(w, 429, "login_busy");
        json_decref(j);
        return;
    }
    if (account_login(st, &a->pol, user, pw, r->source, now, &res, &until, &who, sid, csrf) !=
        FH_OK) {
        sem_post(&a->logins);
        http_error(w, 500, "store_error");
        json_decref(j);
        return;
    }
    sem_post(&a->logins);
    if (res == LOGIN_OK) {
        session_cookie(r, w, sid, false);
        who_json(w, &who, csrf);
        api_audit(a, st, who.name, r, "login", who.name, "ok", NULL);
    } else {
        source_throttled(a, r->source, now, true);
        http_error(w, res == LOGIN_LOCKED ? 423 : 401,
                   res == LOGIN_LOCKED     ? "account_locked"
                   : res == LOGIN_DISABLED ? "account_disabled"
                                           : "bad_credentials");
        api_audit(a, st, user, r, "login", user,
                  res == LOGIN_LOCKED     ? "locked"
                  : res == LOGIN_DISABLED ? "disabled"
                                          : "failed",
                  NULL);
    }
    json_decref(j);
}

static void h_whoami(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)id;
    (void)a;
    (void)st;
    (void)r;
    who_json(w, &s->who, s->csrf);
}

static void h_logout(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)id;
    if (account_logout(st, s->sid) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    session_cookie(r, w, NULL, true);
    api_audit(a, st, s->who.name, r, "logout", s->who.name, "ok", NULL);
    api_ok(w);
}

static void h_password(api *a, store *st, session *s, const http_req *r, http_resp *w,
                       const char *id)
{
    json_t *j = api_body(r, w);
    const char *old_pw, *new_pw, *why = NULL;
    bool bad = false;
    fh_err err;

    (void)id;
    if (!j)
        return;
    old_pw = api_str(j, "old", true, w, &bad);
    new_pw = api_str(j, "new", true, w, &bad);
    if (!bad) {
        err = account_change_password(st, &a->pol, s->who.name, old_pw, new_pw, api_now(a), &why);
        if (err == FH_ERR_ARG) {
            http_error(w, 400, why ? why : "refused");
            api_audit(a, st, s->who.name, r, "password.change", s->who.name, "refused", why);
        } else if (err) {
            http_error(w, 500, "store_error");
        } else {
            api_audit(a, st, s->who.name, r, "password.change", s->who.name, "ok", NULL);
            api_ok(w);
        }
    }
    json_decref(j);
}

static void h_user_add(api *a, store *st, session *s, const http_req *r, http_resp *w,
                       const char *id)
{
    json_t *j = api_body(r, w);
    const char *name, *role, *pw, *why = NULL;
    bool bad = false;
    int rl;
    fh_err err;

    (void)id;
    if (!j)
        return;
    name = api_str(j, "name", true, w, &bad);
    role = api_str(j, "role", true, w, &bad);
    pw = api_str(j, "password", true, w, &bad);
    if (!bad && (rl = account_role_parse(role)) < 0) {
        http_error(w, 400, "bad_role");
    } else if (!bad) {
        err = account_create(st, &a->pol, name, (account_role)rl, pw, true, api_now(a), &why);
        if (err) {
            http_error(w, err == FH_ERR_ARG ? (why && !strcmp(why, "exists") ? 409 : 400) : 500,
                       err == FH_ERR_ARG && why ? why : "store_error");
        } else {
            w->status = 201;
            jbuf_obj_open(&w->body, NULL);
            jbuf_str(&w->body, "name", name);
            jbuf_str(&w->body, "role", role);
            jbuf_obj_close(&w->body);
        }
        api_audit(a, st, s->who.name, r, "user.create", name, err ? "refused" : "ok", role);
    }
    json_decref(j);
}

typedef struct {
    jbuf *b;
} list_ctx;

static void audit_row(void *ctx, const audit_record *rec)
{
    jbuf *b = ((list_ctx *)ctx)->b;

    jbuf_obj_open(b, NULL);
    jbuf_i64(b, "seq", rec->seq);
    jbuf_i64(b, "at", rec->at);
    jbuf_str(b, "actor", rec->actor ? rec->actor : "");
    if (rec->source)
        jbuf_str(b, "source", rec->source);
    jbuf_str(b, "action", rec->action ? rec->action : "");
    if (rec->object)
        jbuf_str(b, "object", rec->object);
    jbuf_str(b, "outcome", rec->outcome ? rec->outcome : "");
    if (rec->detail)
        jbuf_str(b, "detail", rec->detail);
    jbuf_obj_close(b);
}

static void h_audit(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *after = http_query(r, "after"), *limit = http_query(r, "limit");
    long long lim = limit ? atoll(limit) : 100;
    list_ctx c = {&w->body};

    (void)id;
    (void)a;
    (void)s;
    if (lim < 1 || lim > 1000) {
        http_error(w, 400, "bad_limit");
        return;
    }
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "records");
    if (audit_list(st, after ? atoll(after) : 0, (uint32_t)lim, audit_row, &c) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
}

static void h_audit_verify(api *a, store *st, session *s, const http_req *r, http_resp *w,
                           const char *id)
{
    audit_verdict v;

    (void)id;
    if (audit_verify(st, &v) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    api_audit(a, st, s->who.name, r, "audit.verify", NULL, v.ok ? "ok" : "broken", NULL);
    jbuf_obj_open(&w->body, NULL);
    jbuf_bool(&w->body, "ok", v.ok);
    jbuf_i64(&w->body, "records", v.records);
    if (!v.ok) {
        jbuf_i64(&w->body, "first_bad", v.first_bad);
        jbuf_str(&w->body, "reason", v.reason);
    }
    jbuf_obj_close(&w->body);
}

/* Whether an analyst may act on an incident: its department is one of theirs. */
static bool in_scope(const account_info *who, const incident *i)
{
    const char *dep = incident_department(i), *p = who->departments;
    size_t n;

    if (who->role != ROLE_ANALYST)
        return true;
    if (!dep)
        return false;
    n = strlen(dep);
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);

        if (len == n && !strncmp(p, dep, n))
            return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

/*
 * Whether the user may act on incident id; false after answering 404 (absent, or out
 * of an analyst's scope: nothing about it leaks) or 500.
 */
bool api_incident_for(store *st, const session *s, const char *id, http_resp *w)
{
    incident cur;
    fh_err err = incident_get(st, id, &cur);
    bool ok = !err && in_scope(&s->who, &cur);

    if (!err)
        incident_clear(&cur);
    if (!ok)
        http_error(w, err && err != FH_ERR_NOTFOUND ? 500 : 404,
                   err && err != FH_ERR_NOTFOUND ? "store_error" : "not_found");
    return ok;
}

/* POST /api/v1/incidents/{id}/transition {"to":..., "comment":..., ...} */
static void h_transition(api *a, store *st, session *s, const http_req *r, http_resp *w,
                         const char *id)
{
    json_t *j = api_body(r, w);
    const char *to, *comment, *dup, *reason, *approver, *expires;
    incident_move m;
    incident_state from;
    char why[512];
    bool bad = false;
    int state;
    fh_err err;

    if (!j)
        return;
    to = api_str(j, "to", true, w, &bad);
    comment = api_str(j, "comment", false, w, &bad);
    dup = api_str(j, "duplicate_of", false, w, &bad);
    reason = api_str(j, "risk_reason", false, w, &bad);
    approver = api_str(j, "risk_approver", false, w, &bad);
    expires = api_str(j, "risk_expires", false, w, &bad);
    if (bad)
        goto out;
    if ((state = incident_state_parse(to)) < 0) {
        http_error(w, 400, "bad_state");
        goto out;
    }
    if (!api_incident_for(st, s, id, w))
        goto out;
    memset(&m, 0, sizeof(m));
    m.to = (incident_state)state;
    m.actor = s->who.name;
    m.comment = comment;
    m.now = api_now(a);
    m.duplicate_of = dup;
    m.risk_reason = reason;
    m.risk_approver = approver;
    if (expires && !console_parse_time(expires, true, &m.risk_expires)) {
        http_error(w, 400, "bad_time");
        goto out;
    }
    m.policy = a->o.policy;
    m.cal = a->o.cal;
    err = incident_transition(st, id, &m, &from, why, sizeof(why));
    if (err == FH_ERR_ARG) {
        http_error_open(w, 409, "transition_refused");
        jbuf_str(&w->body, "to", to);
        http_error_close(w);
        api_audit(a, st, s->who.name, r, "incident.transition", id, "refused", to);
    } else if (err) {
        http_error(w, err == FH_ERR_NOTFOUND ? 404 : 500,
                   err == FH_ERR_NOTFOUND ? "not_found" : "store_error");
    } else {
        char detail[64];

        snprintf(detail, sizeof(detail), "%s -> %s", incident_state_name(from), to);
        api_audit(a, st, s->who.name, r, "incident.transition", id, "ok", detail);
        jbuf_obj_open(&w->body, NULL);
        jbuf_str(&w->body, "id", id);
        jbuf_str(&w->body, "from", incident_state_name(from));
        jbuf_str(&w->body, "to", to);
        jbuf_obj_close(&w->body);
    }
out:
    json_decref(j);
}

/* ---- alerts ------------------------------------------------------------------------ */

/* A filter from the query string; values are comma lists where several are allowed. */
typedef struct {
    aq_filter f;
    char lists[3][1024]; /* copies split in place: severity, status, scope */
} filter_buf;

static uint32_t split(char *list, const char **out)
{
    uint32_t n = 0;

    for (char *p = list; p && *p && n < AQ_MAX_VALUES;) {
        char *c = strchr(p, ',');

        if (c)
            *c = '\0';
        if (*p)
            out[n++] = p;
        p = c ? c + 1 : NULL;
    }
    return n;
}

/* Fills fb from the request; false after answering 400 with the field's code. */
static bool parse_filter(const http_req *r, const session *s, filter_buf *fb, http_resp *w)
{
    aq_filter *f = &fb->f;
    const char *v;

    memset(fb, 0, sizeof(*fb));
    if ((v = http_query(r, "severity"))) {
        snprintf(fb->lists[0], sizeof(fb->lists[0]), "%s", v);
        f->nseverity = split(fb->lists[0], f->severity);
        for (uint32_t i = 0; i < f->nseverity; i++)
            if (alert_level_parse(f->severity[i]) < 0) {
                http_error(w, 400, "bad_severity");
                return false;
            }
    }
    if ((v = http_query(r, "status"))) {
        snprintf(fb->lists[1], sizeof(fb->lists[1]), "%s", v);
        f->nstatus = split(fb->lists[1], f->status);
        for (uint32_t i = 0; i < f->nstatus; i++)
            if (incident_state_parse(f->status[i]) < 0) {
                http_error(w, 400, "bad_status");
                return false;
            }
    }
    f->rule = http_query(r, "rule");
    f->clause = http_query(r, "clause");
    f->category = http_query(r, "category");
    f->department = http_query(r, "department");
    f->segment = http_query(r, "segment");
    f->asset = http_query(r, "asset");
    f->address = http_query(r, "address");
    f->text = http_query(r, "q");
    if (((v = http_query(r, "from")) && !console_parse_time(v, false, &f->from_ms)) ||
        ((v = http_query(r, "to")) && !console_parse_time(v, true, &f->to_ms))) {
        http_error(w, 400, "bad_time");
        return false;
    }
    if (s->who.role == ROLE_ANALYST) {
        /* the analyst's departments, added to every query (Arkime's forced expression) */
        char *o = fb->lists[2];

        snprintf(o, sizeof(fb->lists[2]), "%s", s->who.departments);
        for (char *p = o; *p; p++)
            if (*p == '\n')
                *p = ',';
        f->scoped = true;
        f->nscope = split(o, f->scope);
    }
    return true;
}

static void h_alerts(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *sort_s = http_query(r, "sort"), *limit_s = http_query(r, "limit");
    long long limit = limit_s ? atoll(limit_s) : 50;
    filter_buf fb;
    aq_sort sort = AQ_SORT_LAST_SEEN;
    bool desc = true;
    fh_err err;

    (void)a;
    (void)id;
    if (!parse_filter(r, s, &fb, w))
        return;
    if (sort_s && !aq_sort_parse(sort_s, &sort, &desc)) {
        http_error(w, 400, "bad_sort");
        return;
    }
    if (limit < 1 || limit > 500) {
        http_error(w, 400, "bad_limit");
        return;
    }
    err = aq_list(st, &fb.f, sort, desc, http_query(r, "cursor"), (uint32_t)limit, &w->body);
    if (err)
        http_error(w, err == FH_ERR_ARG ? 400 : 500,
                   err == FH_ERR_ARG ? "bad_cursor" : "store_error");
}

static void h_facets(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    filter_buf fb;

    (void)a;
    (void)id;
    if (parse_filter(r, s, &fb, w) && aq_facets(st, &fb.f, &w->body) != FH_OK)
        http_error(w, 500, "store_error");
}

/*
 * The timely rectification rate of the overview's days (the incidents whose deadline falls
 * in them, as the report counts them: rate.h) over the incidents the user may see, as JSON
 * into b: {"from","to","target","rate"|null,"on_time","late","pending","overdue"}.
 */
static fh_err overview_rate(api *a, store *st, const session *s, int64_t from, int64_t to, jbuf *b)
{
    incident *list = NULL;
    size_t n = 0, k = 0;
    uint32_t stamped;
    rate_report r;
    double v;
    fh_err e;

    if ((e = incident_stamp_deadlines(st, a->o.policy, a->o.cal, &stamped)) ||
        (e = incident_list(st, from, to, &list, &n)))
        return e;
    for (size_t i = 0; i < n; i++) /* the user's incidents first; all are freed below */
        if (in_scope(&s->who, &list[i])) {
            incident t = list[k];

            list[k++] = list[i];
            list[i] = t;
        }
    if (!(e = rate_compute(&r, list, k, from, to, api_now(a), BY_DEPARTMENT,
                           a->o.policy->accepted_risk))) {
        jbuf_obj_open(b, NULL);
        alert_json_time(b, "from", from);
        alert_json_time(b, "to", to);
        jbuf_fixed(b, "target", RATE_TARGET, 2);
        if (rate_value(&r.total, &v))
            jbuf_fixed(b, "rate", v, 4);
        else
            jbuf_null(b, "rate");
        jbuf_i64(b, "on_time", r.total.of[RATE_ON_TIME].n);
        jbuf_i64(b, "late", r.total.of[RATE_LATE].n);
        jbuf_i64(b, "pending", r.total.of[RATE_PENDING].n);
        jbuf_i64(b, "overdue", r.total.overdue.n);
        jbuf_obj_close(b);
        rate_report_free(&r);
    }
    incident_free_list(list, n);
    return e;
}

/* GET /api/v1/overview?days=14[&end=YYYY-MM-DD][&filters]: the overview's figures
 * (aq_overview): the days up to `end` (Asia/Shanghai, inclusive), today by default */
static void h_overview(api *a, store *st, session *s, const http_req *r, http_resp *w,
                       const char *id)
{
    const char *d = http_query(r, "days"), *e = http_query(r, "end");
    long long days = d ? atoll(d) : 14;
    int64_t end = 0, since, until;
    jbuf rate = {0};
    filter_buf fb;
    fh_err err;

    (void)id;
    if (days < 1 || days > 90) {
        http_error(w, 400, "bad_days");
        return;
    }
    if (e && *e && !console_parse_time(e, true, &end)) {
        http_error(w, 400, "bad_time");
        return;
    }
    if (!parse_filter(r, s, &fb, w))
        return;
    if (!aq_overview_range((uint32_t)days, end, api_now(a), &since, &until) ||
        !jbuf_init(&rate, 512, 4096) || overview_rate(a, st, s, since, until, &rate) != FH_OK) {
        if (rate.data)
            jbuf_free(&rate);
        http_error(w, 500, "store_error");
        return;
    }
    err = aq_overview(st, &fb.f, (uint32_t)days, end, api_now(a), "rectification", jbuf_cstr(&rate),
                      &w->body);
    jbuf_free(&rate);
    if (err != FH_OK)
        http_error(w, err == FH_ERR_ARG ? 400 : 500,
                   err == FH_ERR_ARG ? "bad_days" : "store_error");
}

static void h_groups(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *by = http_query(r, "by"), *limit_s = http_query(r, "limit");
    long long limit = limit_s ? atoll(limit_s) : 100;
    filter_buf fb;
    fh_err err;

    (void)a;
    (void)id;
    if (!parse_filter(r, s, &fb, w))
        return;
    if (limit < 1 || limit > 1000) {
        http_error(w, 400, "bad_limit");
        return;
    }
    err = aq_groups(st, &fb.f, by ? by : "rule,source,destination", (uint32_t)limit, &w->body);
    if (err)
        http_error(w, err == FH_ERR_ARG ? 400 : 500,
                   err == FH_ERR_ARG ? "bad_group" : "store_error");
}

static void timeline_row(void *ctx, const incident_record *rec)
{
    jbuf *b = ctx;

    jbuf_obj_open(b, NULL);
    jbuf_i64(b, "seq", rec->seq);
    jbuf_i64(b, "at", rec->at);
    jbuf_str(b, "actor", rec->actor ? rec->actor : "");
    jbuf_str(b, "kind", rec->kind ? rec->kind : "");
    jbuf_str(b, "from", rec->from ? rec->from : "");
    jbuf_str(b, "to", rec->to ? rec->to : "");
    if (rec->detail)
        jbuf_str(b, "detail", rec->detail);
    if (rec->comment)
        jbuf_str(b, "comment", rec->comment);
    jbuf_obj_close(b);
}

/* GET /api/v1/alerts/{id}: the alert (with its evidence, as on the alerts topic), its
 * incident (deadline, assignment, notice, verification) and its timeline. */
static void h_alert(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    incident i;
    alert al;
    jbuf one;
    fh_err err;

    (void)a;
    (void)r;
    if ((err = incident_get(st, id, &i)) || !in_scope(&s->who, &i)) {
        if (!err)
            incident_clear(&i);
        http_error(w, err && err != FH_ERR_NOTFOUND ? 500 : 404,
                   err && err != FH_ERR_NOTFOUND ? "store_error" : "not_found");
        return;
    }
    memset(&al, 0, sizeof(al));
    if (store_get_alert(st, id, &al) != FH_OK || !jbuf_init(&one, 1 << 16, (size_t)64 << 20) ||
        alert_to_json(&al, &one) != FH_OK) {
        alert_clear(&al);
        incident_clear(&i);
        http_error(w, 500, "store_error");
        return;
    }
    jbuf_obj_open(&w->body, NULL);
    jbuf_raw(&w->body, "alert", one.data, one.len);
    jbuf_obj_open(&w->body, "incident");
    jbuf_str(&w->body, "status", incident_state_name(i.status));
    if (incident_department(&i))
        jbuf_str(&w->body, "department", incident_department(&i));
    if (i.assignee)
        jbuf_str(&w->body, "assignee", i.assignee);
    if (i.deadline_at)
        jbuf_i64(&w->body, "deadline", i.deadline_at);
    jbuf_bool(&w->body, "deadline_guessed", i.deadline_guessed);
    if (i.notice_no)
        jbuf_str(&w->body, "notice", i.notice_no);
    if (i.verification)
        jbuf_str(&w->body, "verification", i.verification);
    jbuf_i64(&w->body, "reopened", i.reopen_count);
    jbuf_obj_close(&w->body);
    jbuf_arr_open(&w->body, "timeline");
    if (incident_history(st, id, timeline_row, &w->body) != FH_OK)
        http_error(w, 500, "store_error");
    else {
        jbuf_arr_close(&w->body);
        jbuf_obj_close(&w->body);
    }
    jbuf_free(&one);
    alert_clear(&al);
    incident_clear(&i);
}

typedef struct {
    char **ids;
    size_t n, cap;
} id_list;

static void collect_id(void *ctx, const char *id)
{
    id_list *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->ids, cap * sizeof(*v));

        if (!v)
            return;
        l->ids = v;
        l->cap = cap;
    }
    if ((l->ids[l->n] = strdup(id)))
        l->n++;
}

#define BULK_MAX 10000

/*
 * POST /api/v1/alerts/bulk {"to":STATE, "comment":..., "ids":[...]} or, for every alert
 * a filter matches, {"to":..., "filter":{query parameters as strings}, "expect":N}:
 * N is the count the user confirmed; if it changed meanwhile, 409 count_changed.
 * One result per incident.
 */
static void h_bulk(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w), *ids, *expect;
    const char *to, *comment;
    id_list l = {0};
    incident_move m;
    bool bad = false;
    int state;

    (void)id;
    if (!j)
        return;
    to = api_str(j, "to", true, w, &bad);
    comment = api_str(j, "comment", false, w, &bad);
    if (bad)
        goto out;
    if ((state = incident_state_parse(to)) < 0) {
        http_error(w, 400, "bad_state");
        goto out;
    }
    ids = json_object_get(j, "ids");
    expect = json_object_get(j, "expect");
    if (ids && json_is_array(ids)) {
        size_t k;
        json_t *v;

        if (json_array_size(ids) > BULK_MAX) {
            http_error(w, 400, "too_many_ids");
            goto out;
        }
        json_array_foreach(ids, k, v)
        {
            if (!json_is_string(v)) {
                http_error(w, 400, "wrong_type");
                goto out;
            }
            collect_id(&l, json_string_value(v));
        }
    } else if (json_is_integer(expect)) {
        /* the filter is the alert list's query string, as the UI shows it */
        filter_buf fb;
        int64_t n = 0;

        if (!parse_filter(r, s, &fb, w))
            goto out;
        if (aq_count(st, &fb.f, &n) != FH_OK) {
            http_error(w, 500, "store_error");
            goto out;
        }
        if (n != json_integer_value(expect) || n > BULK_MAX) {
            http_error_open(w, 409, n > BULK_MAX ? "too_many_ids" : "count_changed");
            jbuf_i64(&w->body, "count", n);
            http_error_close(w);
            goto out;
        }
        if (aq_ids(st, &fb.f, BULK_MAX, collect_id, &l) != FH_OK) {
            http_error(w, 500, "store_error");
            goto out;
        }
    } else {
        http_error(w, 400, "missing_field");
        goto out;
    }
    memset(&m, 0, sizeof(m));
    m.to = (incident_state)state;
    m.actor = s->who.name;
    m.comment = comment;
    m.now = api_now(a);
    m.policy = a->o.policy;
    m.cal = a->o.cal;
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "results");
    for (size_t k = 0; k < l.n; k++) {
        incident cur;
        incident_state from;
        char why[512];
        fh_err err = incident_get(st, l.ids[k], &cur);
        const char *code = "ok";

        if (!err) {
            if (!in_scope(&s->who, &cur))
                err = FH_ERR_NOTFOUND; /* out of scope looks absent */
            incident_clear(&cur);
        }
        if (!err)
            err = incident_transition(st, l.ids[k], &m, &from, why, sizeof(why));
        if (err)
            code = err == FH_ERR_NOTFOUND ? "not_found"
                   : err == FH_ERR_ARG    ? "transition_refused"
                                          : "store_error";
        jbuf_obj_open(&w->body, NULL);
        jbuf_str(&w->body, "id", l.ids[k]);
        jbuf_str(&w->body, "result", code);
        if (!err)
            jbuf_str(&w->body, "from", incident_state_name(from));
        jbuf_obj_close(&w->body);
        api_audit(a, st, s->who.name, r, "incident.transition", l.ids[k], err ? "refused" : "ok",
                  to);
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
out:
    for (size_t k = 0; k < l.n; k++)
        free(l.ids[k]);
    free(l.ids);
    json_decref(j);
}

/*
 * GET /api/v1/rectification/report?from=YYYY-MM-DD&to=YYYY-MM-DD&by=department&
 * format=json|csv|pdf[&as_of=TIME]: the rate and its figures (report.h), JSON inline,
 * CSV and PDF as downloads. Deadlines of new incidents are stamped first. Audited.
 */
static void h_report(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *from_s = http_query(r, "from"), *to_s = http_query(r, "to");
    const char *by_s = http_query(r, "by"), *format = http_query(r, "format");
    const char *asof = http_query(r, "as_of");
    int64_t from, to, now = api_now(a);
    char err[512] = "", path[64] = "", detail[128];
    uint32_t stamped;
    int by = rate_by_parse(by_s ? by_s : "department");
    FILE *f = NULL;
    char *text = NULL;
    size_t len = 0;
    fh_err e;

    (void)id;
    if (!format)
        format = "json";
    if (!from_s || !to_s || !console_parse_time(from_s, false, &from) ||
        !console_parse_time(to_s, true, &to) || to <= from ||
        (asof && !console_parse_time(asof, false, &now))) {
        http_error(w, 400, "bad_period");
        return;
    }
    if (by < 0) {
        http_error(w, 400, "bad_group");
        return;
    }
    if (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "pdf")) {
        http_error(w, 400, "bad_format");
        return;
    }
    if (incident_stamp_deadlines(st, a->o.policy, a->o.cal, &stamped) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    if (!strcmp(format, "pdf")) {
        int fd;

        snprintf(path, sizeof(path), "/tmp/fh-report-XXXXXX");
        if ((fd = mkstemp(path)) < 0) {
            http_error(w, 500, "io_error");
            return;
        }
        close(fd);
    } else if (!(f = open_memstream(&text, &len))) {
        http_error(w, 500, "out_of_memory");
        return;
    }
    e = report_write(st, a->o.policy, a->o.policy_path, from, to, now, (rate_by)by, format, f, path,
                     err, sizeof(err));
    if (f)
        fclose(f);
    if (!e && path[0]) {
        FILE *pf = fopen(path, "rb");

        e = FH_ERR_IO;
        if (pf && (f = open_memstream(&text, &len))) {
            char buf[65536];
            size_t got;

            while ((got = fread(buf, 1, sizeof(buf), pf)) > 0)
                fwrite(buf, 1, got, f);
            fclose(f);
            e = FH_OK;
        }
        if (pf)
            fclose(pf);
    }
    if (path[0])
        unlink(path);
    snprintf(detail, sizeof(detail), "%s %s..%s by %s", format, from_s, to_s, rate_by_name(by));
    api_audit(a, st, s->who.name, r, "report.download", NULL, e ? "failed" : "ok", detail);
    if (e) {
        free(text);
        http_error(w, 500, "report_failed");
        return;
    }
    w->raw = text; /* freed by the server */
    w->raw_len = len;
    if (!strcmp(format, "csv")) {
        w->content_type = "text/csv; charset=utf-8";
        snprintf(w->disposition, sizeof(w->disposition),
                 "attachment; filename=\"rectification-%s-%s.csv\"", from_s, to_s);
    } else if (!strcmp(format, "pdf")) {
        w->content_type = "application/pdf";
        snprintf(w->disposition, sizeof(w->disposition),
                 "attachment; filename=\"rectification-%s-%s.pdf\"", from_s, to_s);
    }
}

/* POST /api/v1/incidents/{id}/assign {"department":..., "assignee":..., "comment":...} */
static void h_assign(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    const char *dept, *assignee, *comment;
    char why[512];
    bool bad = false;
    fh_err err;

    if (!j)
        return;
    dept = api_str(j, "department", false, w, &bad);
    assignee = api_str(j, "assignee", false, w, &bad);
    comment = api_str(j, "comment", false, w, &bad);
    if (!bad && !dept && !assignee) {
        http_error(w, 400, "missing_field");
        bad = true;
    }
    if (!bad && api_incident_for(st, s, id, w)) {
        err = incident_assign(st, id, dept, assignee, s->who.name, comment, api_now(a), why,
                              sizeof(why));
        if (err) {
            http_error(w, err == FH_ERR_ARG ? 400 : 500,
                       err == FH_ERR_ARG ? "assignment_refused" : "store_error");
        } else {
            jbuf_obj_open(&w->body, NULL);
            jbuf_str(&w->body, "id", id);
            jbuf_bool(&w->body, "ok", true);
            jbuf_obj_close(&w->body);
        }
        api_audit(a, st, s->who.name, r, "incident.assign", id, err ? "refused" : "ok", dept);
    }
    json_decref(j);
}

/* POST /api/v1/incidents/{id}/notice {"number","issuer","date","deadline"}: an official
 * notice (通报) sets the incident's deadline. */
static void h_notice(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    incident_notice n;
    const char *due;
    char why[512];
    bool bad = false;
    cal_date d;
    fh_err err;

    if (!j)
        return;
    memset(&n, 0, sizeof(n));
    n.number = api_str(j, "number", true, w, &bad);
    n.issuer = api_str(j, "issuer", true, w, &bad);
    n.date = api_str(j, "date", true, w, &bad);
    due = api_str(j, "deadline", true, w, &bad);
    if (!bad && (!cal_parse(n.date, &d) || !console_parse_time(due, true, &n.deadline))) {
        http_error(w, 400, "bad_time");
        bad = true;
    }
    if (!bad && api_incident_for(st, s, id, w)) {
        err = incident_set_notice(st, id, &n, s->who.name, NULL, api_now(a), why, sizeof(why));
        if (err) {
            http_error(w, err == FH_ERR_ARG ? 400 : 500,
                       err == FH_ERR_ARG ? "notice_refused" : "store_error");
        } else {
            jbuf_obj_open(&w->body, NULL);
            jbuf_str(&w->body, "id", id);
            jbuf_i64(&w->body, "deadline", n.deadline);
            jbuf_obj_close(&w->body);
        }
        api_audit(a, st, s->who.name, r, "incident.notice", id, err ? "refused" : "ok", n.number);
    }
    json_decref(j);
}

static void h_metrics(api *a, store *st, session *s, const http_req *r, http_resp *w,
                      const char *id)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)id;
    (void)st;
    (void)s;
    (void)r;
    if (!f) {
        http_error(w, 500, "out_of_memory");
        return;
    }
    fprintf(f,
            "# HELP fenghuo_console_info Build of the console.\n"
            "# TYPE fenghuo_console_info gauge\n"
            "fenghuo_console_info{version=\"%s\",revision=\"%s\"} 1\n",
            FH_VERSION, FH_GIT_REV);
    http_metrics(a->srv, f);
    fclose(f);
    w->raw = text; /* freed by the server */
    w->raw_len = len;
    w->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- routing ----------------------------------------------------------------------- */

static const route ROUTES[] = {
    {"GET", "/api/v1/version", PUBLIC, false, true, h_version, false},
    {"GET", "/api/v1/health", PUBLIC, false, true, h_health, false},
    {"POST", "/api/v1/session", PUBLIC, false, true, h_login, false},
    {"GET", "/api/v1/session", ANY, false, true, h_whoami, false},
    {"DELETE", "/api/v1/session", ANY, true, true, h_logout, true},
    {"POST", "/api/v1/session/password", ANY, true, true, h_password, true},
    {"GET", "/api/v1/tokens", ANY, false, false, h_tokens, false},
    {"POST", "/api/v1/tokens", ANY, true, false, h_token_add, true},
    {"DELETE", "/api/v1/tokens/{id}", ANY, true, false, h_token_revoke, false},
    {"GET", "/api/v1/users", R(ROLE_SYSADMIN), false, false, h_users, false},
    {"POST", "/api/v1/users", R(ROLE_SYSADMIN), true, false, h_user_add, false},
    {"POST", "/api/v1/users/{id}", R(ROLE_SYSADMIN), true, false, h_user_update, false},
    {"POST", "/api/v1/users/{id}/password", R(ROLE_SYSADMIN), true, false, h_user_reset, true},
    {"GET", "/api/v1/audit", R(ROLE_AUDITOR), false, false, h_audit, false},
    {"GET", "/api/v1/audit/verify", R(ROLE_AUDITOR), false, false, h_audit_verify, false},
    {"GET", "/api/v1/alerts", READ_ALERTS, false, false, h_alerts, false},
    {"GET", "/api/v1/alerts/facets", READ_ALERTS, false, false, h_facets, false},
    {"GET", "/api/v1/alerts/groups", READ_ALERTS, false, false, h_groups, false},
    {"GET", "/api/v1/overview", READ_ALERTS, false, false, h_overview, false},
    {"POST", "/api/v1/alerts/bulk", R(ROLE_ANALYST), true, false, h_bulk, false},
    {"GET", "/api/v1/alerts/{id}", READ_ALERTS, false, false, h_alert, false},
    {"GET", "/api/v1/alerts/{id}/events", READ_ALERTS, false, false, h_alert_events, false},
    {"GET", "/api/v1/events", R(ROLE_SECADMIN), false, false, h_events, false},
    {"POST", "/api/v1/incidents/{id}/transition", R(ROLE_ANALYST), true, false, h_transition,
     false},
    {"POST", "/api/v1/incidents/{id}/assign", R(ROLE_ANALYST), true, false, h_assign, false},
    {"POST", "/api/v1/incidents/{id}/comment", R(ROLE_ANALYST), true, false, h_comment, false},
    {"POST", "/api/v1/incidents/{id}/notice", R(ROLE_ANALYST) | R(ROLE_COMPLIANCE), true, false,
     h_notice, false},
    {"GET", "/api/v1/suppressions", R(ROLE_SECADMIN), false, false, h_suppressions, false},
    {"POST", "/api/v1/suppressions", R(ROLE_SECADMIN), true, false, h_suppression_add, false},
    {"DELETE", "/api/v1/suppressions/{id}", R(ROLE_SECADMIN), true, false, h_suppression_revoke,
     false},
    {"GET", "/api/v1/rules", RULES_READ, false, false, h_rules, false},
    {"POST", "/api/v1/rules", R(ROLE_SECADMIN), true, false, h_rule_upload, false},
    {"POST", "/api/v1/rules/validate", R(ROLE_SECADMIN), true, false, h_rule_validate, false},
    {"POST", "/api/v1/rules/reload", R(ROLE_SECADMIN), true, false, h_rules_reload, false},
    {"POST", "/api/v1/rules/test", R(ROLE_SECADMIN), true, false, h_rule_test, false},
    {"GET", "/api/v1/rules/titles", READ_ALERTS, false, false, h_rule_titles, false},
    {"GET", "/api/v1/rules/{id}", RULES_READ, false, false, h_rule, false},
    {"POST", "/api/v1/rules/{id}/enable", R(ROLE_SECADMIN), true, false, h_rule_enable, false},
    {"POST", "/api/v1/rules/{id}/disable", R(ROLE_SECADMIN), true, false, h_rule_disable, false},
    {"GET", "/api/v1/assets", R(ROLE_SECADMIN), false, false, h_assets, false},
    {"POST", "/api/v1/assets", R(ROLE_SECADMIN), true, false, h_assets_replace, false},
    {"POST", "/api/v1/assets/validate", R(ROLE_SECADMIN), true, false, h_assets_validate, false},
    {"GET", "/api/v1/lists", R(ROLE_SECADMIN), false, false, h_lists, false},
    {"GET", "/api/v1/lists/{id}", R(ROLE_SECADMIN), false, false, h_list, false},
    {"POST", "/api/v1/lists/{id}", R(ROLE_SECADMIN), true, false, h_list_replace, false},
    {"POST", "/api/v1/lists/{id}/validate", R(ROLE_SECADMIN), true, false, h_list_validate, false},
    {"GET", "/api/v1/rectification/report", R(ROLE_COMPLIANCE), false, false, h_report, false},
    {"GET", "/metrics", PUBLIC, false, true, h_metrics, false},
};
#define NROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

const api_route_info *api_routes(size_t *n)
{
    static api_route_info info[NROUTES];

    for (size_t k = 0; k < NROUTES; k++) {
        info[k].method = ROUTES[k].method;
        info[k].path = ROUTES[k].path;
        info[k].roles = ROUTES[k].roles;
    }
    *n = NROUTES;
    return info;
}

/*
 * Whether path matches pattern segment by segment; "{id}" matches one segment of
 * letters, digits, '-' and '_' (at most 64), copied to id.
 */
static bool path_match(const char *pattern, const char *path, char *id, size_t idlen)
{
    while (*pattern && *path) {
        if (!strncmp(pattern, "{id}", 4)) {
            size_t n = strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-_");

            if (!n || n >= idlen || (path[n] && path[n] != '/'))
                return false;
            snprintf(id, idlen, "%.*s", (int)n, path);
            pattern += 4;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return !*pattern && !*path;
}

/* The Origin a browser sends must be ours: scheme and the Host the request came to. */
static bool origin_ok(const http_req *r)
{
    const char *origin = http_header(r, "Origin"), *host = http_header(r, "Host");
    char want[300];

    if (!origin)
        return true; /* not a browser (curl, automation): the CSRF token still holds */
    if (!host)
        return false;
    snprintf(want, sizeof(want), "%s://%s", r->tls ? "https" : "http", host);
    return !strcmp(origin, want);
}

static void dispatch(void *ctx, const http_req *r, http_resp *w)
{
    api *a = ctx;
    const route *rt = NULL;
    char id[65] = "";
    bool path_known = false;
    session s = {0};
    store *st;

    /* exact paths win over patterns ("/api/v1/alerts/facets" is not an alert id) */
    for (int pass = 0; pass < 2 && !rt; pass++)
        for (size_t k = 0; k < NROUTES; k++) {
            bool pattern = strstr(ROUTES[k].path, "{id}") != NULL;
            char tmp[65] = "";

            if (pattern != (pass == 1))
                continue;
            if (pattern ? path_match(ROUTES[k].path, r->path, tmp, sizeof(tmp))
                        : !strcmp(r->path, ROUTES[k].path)) {
                path_known = true;
                if (!strcmp(r->method, ROUTES[k].method)) {
                    rt = &ROUTES[k];
                    snprintf(id, sizeof(id), "%s", tmp);
                    break;
                }
            }
        }
    if (!rt) {
        http_error(w, path_known ? 405 : 404, path_known ? "method_not_allowed" : "not_found");
        return;
    }
    w->route_method = rt->method;
    w->route_path = rt->path;
    if (!(st = thread_store(a))) {
        http_error(w, 503, "store_unavailable");
        return;
    }
    if (rt->roles != PUBLIC) {
        const char *sid = http_cookie(r, COOKIE), *authz = http_header(r, "Authorization");

        if (authz && !strncmp(authz, "Bearer ", 7)) {
            char tid[TOKEN_ID_LEN + 1] = "";
            const char *why = NULL;
            fh_err te = token_auth(st, authz + 7, api_now(a), &s.who, tid, &why);

            if (te) {
                http_error(w, te == FH_ERR_NOTFOUND ? 401 : 500,
                           te == FH_ERR_NOTFOUND ? why : "store_error");
                if (te == FH_ERR_NOTFOUND && tid[0])
                    api_audit(a, st, tid, r, "token.use", r->path, "denied", why);
                return;
            }
            s.token = true;
            if (rt->session_only) {
                http_error(w, 403, "session_required");
                return;
            }
        } else if (!sid || account_session(st, &a->pol, sid, api_now(a), &s.who, s.csrf) != FH_OK) {
            http_error(w, 401, "not_authenticated");
            return;
        }
        s.ok = true;
        s.sid = sid;
        if (!(rt->roles & R(s.who.role))) {
            http_error(w, 403, "forbidden");
            api_audit(a, st, s.who.name, r, "access", r->path, "denied", r->method);
            return;
        }
        if (s.who.must_change && !rt->while_must_change) {
            http_error(w, 403, "password_change_required");
            return;
        }
        /* a token is not sent by the browser on its own: no cross-site request to guard */
        if (rt->change && !s.token) {
            const char *tok = http_header(r, "X-CSRF-Token");

            if (!origin_ok(r)) {
                http_error(w, 403, "origin_mismatch");
                api_audit(a, st, s.who.name, r, "csrf", r->path, "denied", "origin");
                return;
            }
            if (!tok || strlen(tok) != SESSION_TOKEN_LEN ||
                sodium_memcmp(tok, s.csrf, SESSION_TOKEN_LEN) != 0) {
                http_error(w, 403, "csrf_token_invalid");
                api_audit(a, st, s.who.name, r, "csrf", r->path, "denied", "token");
                return;
            }
        }
    }
    rt->fn(a, st, &s, r, w, id);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int api_start(api **out, const api_opts *o, const http_opts *ho, char *err, size_t errlen)
{
    api *a = calloc(1, sizeof(*a));
    http_routes routes = {.api = dispatch};

    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->o = *o;
    a->pol = account_policy_default();
    if (o->session_idle_ms > 0)
        a->pol.session_idle_ms = o->session_idle_ms;
    sem_init(&a->logins, 0, LOGIN_PARALLEL);
    pthread_mutex_init(&a->mu, NULL);
    routes.ctx = a;
    if (http_start(&a->srv, ho, &routes, err, errlen) != 0) {
        api_stop(a);
        return -1;
    }
    *out = a;
    return 0;
}

void api_stop(api *a)
{
    if (!a)
        return;
    http_stop(a->srv);
    sem_destroy(&a->logins);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

unsigned api_port(const api *a)
{
    return http_port(a->srv);
}
