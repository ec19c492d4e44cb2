/*
 * api_admin.c - the console API's administration: comments on incidents, users
 * (the system administrator), API tokens, suppressions (the security
 * administrator) and health. Routes and roles are in api.c's table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../correlator/admin.h"
#include "../correlator/incident.h"
#include "api_int.h"

/* An integer member (ms times): false after answering 400 when present but not an integer. */
static bool member_i64(json_t *o, const char *key, bool required, int64_t *out, http_resp *w)
{
    json_t *v = json_object_get(o, key);

    if (!v || json_is_null(v)) {
        if (required) {
            http_error_open(w, 400, "missing_field");
            jbuf_str(&w->body, "field", key);
            http_error_close(w);
        }
        return !required;
    }
    if (!json_is_integer(v)) {
        http_error_open(w, 400, "wrong_type");
        jbuf_str(&w->body, "field", key);
        jbuf_str(&w->body, "want", "integer");
        http_error_close(w);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* A refusal with its code in a 400 (or 404 / 409 / 500 by err). */
static void refuse(http_resp *w, fh_err err, const char *why)
{
    if (err == FH_ERR_NOTFOUND)
        http_error(w, 404, "not_found");
    else if (err == FH_ERR_ARG)
        http_error(w, why && !strcmp(why, "exists") ? 409 : 400, why ? why : "refused");
    else
        http_error(w, 500, "store_error");
}

/* ---- comments -------------------------------------------------------------------------- */

/* POST /api/v1/incidents/{id}/comment {"comment": TEXT} */
void h_comment(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    const char *text;
    char why[512];
    bool bad = false;
    fh_err err;

    if (!j)
        return;
    text = api_str(j, "comment", true, w, &bad);
    if (!bad && !*text) {
        http_error(w, 400, "empty_comment");
        bad = true;
    }
    if (!bad && api_incident_for(st, s, id, w)) {
        err = incident_comment(st, id, s->who.name, text, api_now(a), why, sizeof(why));
        if (err)
            refuse(w, err, "comment_refused");
        else
            api_ok(w);
        api_audit(a, st, s->who.name, r, "incident.comment", id, err ? "refused" : "ok", NULL);
    }
    json_decref(j);
}

/* ---- users ------------------------------------------------------------------------------ */

static void user_row_json(void *ctx, const account_row *u)
{
    jbuf *b = ctx;

    jbuf_obj_open(b, NULL);
    jbuf_str(b, "name", u->name);
    jbuf_str(b, "role", u->role);
    jbuf_bool(b, "disabled", u->disabled);
    jbuf_bool(b, "must_change_password", u->must_change);
    if (u->locked_until)
        jbuf_i64(b, "locked_until", u->locked_until);
    jbuf_arr_open(b, "departments");
    for (const char *p = u->departments; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);

        jbuf_strn(b, NULL, p, n);
        p += n + (e ? 1 : 0);
    }
    jbuf_arr_close(b);
    jbuf_i64(b, "created_at", u->created_at);
    jbuf_i64(b, "password_changed_at", u->password_changed_at);
    jbuf_obj_close(b);
}

/* GET /api/v1/users */
void h_users(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)a;
    (void)s;
    (void)r;
    (void)id;
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "users");
    if (account_list(st, user_row_json, &w->body) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
}

/* The departments member (an array of strings) as lines; false after answering 400. */
static bool departments_lines(json_t *v, char *out, size_t len, http_resp *w)
{
    size_t i, off = 0;
    json_t *d;

    out[0] = '\0';
    if (!json_is_array(v)) {
        http_error_open(w, 400, "wrong_type");
        jbuf_str(&w->body, "field", "departments");
        jbuf_str(&w->body, "want", "array");
        http_error_close(w);
        return false;
    }
    json_array_foreach(v, i, d)
    {
        const char *t = json_string_value(d);

        if (!t || !*t || strchr(t, '\n') || off + strlen(t) + 2 > len) {
            http_error(w, 400, "bad_department");
            return false;
        }
        off += (size_t)snprintf(out + off, len - off, "%s%s", off ? "\n" : "", t);
    }
    return true;
}

/* POST /api/v1/users/{name} {"role":..., "disabled":bool, "departments":[...]} */
void h_user_update(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w), *dis, *deps;
    const char *role, *why = NULL;
    char lines[512], detail[700];
    bool bad = false;
    int rl = -1, disabled = -1;
    fh_err err;

    if (!j)
        return;
    role = api_str(j, "role", false, w, &bad);
    dis = json_object_get(j, "disabled");
    deps = json_object_get(j, "departments");
    if (bad)
        goto out;
    if (role && (rl = account_role_parse(role)) < 0) {
        http_error(w, 400, "bad_role");
        goto out;
    }
    if (dis && !json_is_boolean(dis)) {
        http_error_open(w, 400, "wrong_type");
        jbuf_str(&w->body, "field", "disabled");
        jbuf_str(&w->body, "want", "boolean");
        http_error_close(w);
        goto out;
    }
    if (dis)
        disabled = json_is_true(dis) ? 1 : 0;
    if (deps && !departments_lines(deps, lines, sizeof(lines), w))
        goto out;
    if (!role && !dis && !deps) {
        http_error(w, 400, "nothing_to_change");
        goto out;
    }
    err = account_update(st, id, rl, disabled, deps ? lines : NULL, &why);
    if (err)
        refuse(w, err, why);
    else
        api_ok(w);
    snprintf(detail, sizeof(detail), "%s%s%s%s%s", role ? "role=" : "", role ? role : "",
             dis ? (disabled ? " disabled" : " enabled") : "", deps ? " departments=" : "",
             deps ? lines : "");
    api_audit(a, st, s->who.name, r, "user.update", id, err ? "refused" : "ok", detail);
out:
    json_decref(j);
}

/* POST /api/v1/users/{name}/password {"password":...}: a one-time password set by the admin */
void h_user_reset(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    const char *pw, *why = NULL;
    bool bad = false;
    account_policy pol = account_policy_default();
    fh_err err;

    if (!j)
        return;
    pw = api_str(j, "password", true, w, &bad);
    if (!bad) {
        err = account_reset_password(st, &pol, id, pw, api_now(a), &why);
        if (err)
            refuse(w, err, why);
        else
            api_ok(w);
        api_audit(a, st, s->who.name, r, "user.password_reset", id, err ? "refused" : "ok", why);
    }
    json_decref(j);
}

/* ---- API tokens --------------------------------------------------------------------------- */

static void token_row_json(void *ctx, const token_row *t)
{
    jbuf *b = ctx;

    jbuf_obj_open(b, NULL);
    jbuf_str(b, "id", t->id);
    jbuf_str(b, "name", t->name);
    jbuf_str(b, "user", t->user);
    jbuf_str(b, "role", t->role);
    jbuf_i64(b, "created_at", t->created_at);
    jbuf_i64(b, "expires_at", t->expires_at);
    if (t->revoked_at)
        jbuf_i64(b, "revoked_at", t->revoked_at);
    if (t->last_used)
        jbuf_i64(b, "last_used", t->last_used);
    jbuf_obj_close(b);
}

/* GET /api/v1/tokens: one's own (a system administrator sees everyone's) */
void h_tokens(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)a;
    (void)r;
    (void)id;
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "tokens");
    if (token_list(st, s->who.role == ROLE_SYSADMIN ? NULL : s->who.name, token_row_json,
                   &w->body) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
}

/* POST /api/v1/tokens {"name":..., "expires_at": ms}: the token is in the answer, once */
void h_token_add(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    json_t *j = api_body(r, w);
    const char *name, *why = NULL;
    char token[TOKEN_LEN + 1], tid[TOKEN_ID_LEN + 1];
    int64_t expires = 0;
    bool bad = false;
    fh_err err;

    (void)id;
    if (!j)
        return;
    name = api_str(j, "name", true, w, &bad);
    if (!bad && member_i64(j, "expires_at", true, &expires, w)) {
        err =
            token_create(st, s->who.name, s->who.role, name, expires, api_now(a), token, tid, &why);
        if (err) {
            refuse(w, err, why);
        } else {
            w->status = 201;
            jbuf_obj_open(&w->body, NULL);
            jbuf_str(&w->body, "id", tid);
            jbuf_str(&w->body, "token", token);
            jbuf_str(&w->body, "role", account_role_name(s->who.role));
            jbuf_i64(&w->body, "expires_at", expires);
            jbuf_obj_close(&w->body);
        }
        api_audit(a, st, s->who.name, r, "token.create", err ? name : tid, err ? "refused" : "ok",
                  why);
    }
    json_decref(j);
}

/* DELETE /api/v1/tokens/{id}: one's own (a system administrator: anyone's) */
void h_token_revoke(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    fh_err err =
        token_revoke(st, id, s->who.role == ROLE_SYSADMIN ? NULL : s->who.name, api_now(a));

    if (err)
        refuse(w, err, NULL);
    else
        api_ok(w);
    api_audit(a, st, s->who.name, r, "token.revoke", id, err ? "refused" : "ok", NULL);
}

/* ---- suppressions --------------------------------------------------------------------------- */

static void supp_json(void *ctx, const suppression_row *x)
{
    jbuf *b = ctx;

    jbuf_obj_open(b, NULL);
    jbuf_str(b, "id", x->id);
    jbuf_str(b, "rule_id", x->rule_id);
    if (x->src_ip)
        jbuf_str(b, "src_ip", x->src_ip);
    if (x->dest_ip)
        jbuf_str(b, "dest_ip", x->dest_ip);
    jbuf_str(b, "reason", x->reason);
    if (x->from_alert)
        jbuf_str(b, "from_alert", x->from_alert);
    jbuf_str(b, "created_by", x->created_by);
    jbuf_i64(b, "created_at", x->created_at);
    jbuf_i64(b, "expires_at", x->expires_at);
    if (x->revoked_at) {
        jbuf_str(b, "revoked_by", x->revoked_by ? x->revoked_by : "");
        jbuf_i64(b, "revoked_at", x->revoked_at);
    }
    jbuf_i64(b, "hits", x->hits);
    if (x->last_hit)
        jbuf_i64(b, "last_hit", x->last_hit);
    jbuf_obj_close(b);
}

/* GET /api/v1/suppressions[?active=1] */
void h_suppressions(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *act = http_query(r, "active");

    (void)s;
    (void)id;
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "suppressions");
    if (suppression_list(st, act && !strcmp(act, "1"), api_now(a), supp_json, &w->body) != FH_OK) {
        http_error(w, 500, "store_error");
        return;
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
}

/*
 * POST /api/v1/suppressions: from an alert, {"alert":ID, "scope":"rule" | "rule_source" |
 * "rule_source_destination", "reason":..., "expires_at":ms}, or explicitly with
 * {"rule_id", "src_ip", "dest_ip"} instead of alert and scope.
 */
void h_suppression_add(api *a, store *st, session *s, const http_req *r, http_resp *w,
                       const char *id)
{
    json_t *j = api_body(r, w);
    const char *alert_id, *scope, *why = NULL;
    suppression_row in = {0};
    char sid[SUPPRESSION_ID_LEN + 1], detail[600];
    incident inc;
    bool bad = false, have_inc = false;
    fh_err err;

    (void)id;
    if (!j)
        return;
    alert_id = api_str(j, "alert", false, w, &bad);
    scope = api_str(j, "scope", false, w, &bad);
    in.rule_id = api_str(j, "rule_id", false, w, &bad);
    in.src_ip = api_str(j, "src_ip", false, w, &bad);
    in.dest_ip = api_str(j, "dest_ip", false, w, &bad);
    in.reason = api_str(j, "reason", true, w, &bad);
    if (bad || !member_i64(j, "expires_at", true, &in.expires_at, w))
        goto out;
    if (alert_id) {
        bool src, dst;

        if (in.rule_id || in.src_ip || in.dest_ip) {
            http_error(w, 400, "alert_or_rule");
            goto out;
        }
        if (!scope || (strcmp(scope, "rule") && strcmp(scope, "rule_source") &&
                       strcmp(scope, "rule_source_destination"))) {
            http_error(w, 400, "bad_scope");
            goto out;
        }
        if ((err = incident_get(st, alert_id, &inc))) {
            refuse(w, err, NULL);
            goto out;
        }
        have_inc = true;
        src = strcmp(scope, "rule") != 0;
        dst = !strcmp(scope, "rule_source_destination");
        if ((src && !inc.src_ip) || (dst && !inc.dest_ip)) {
            http_error(w, 400, "alert_lacks_address");
            goto out;
        }
        in.rule_id = inc.rule_id;
        in.src_ip = src ? inc.src_ip : NULL;
        in.dest_ip = dst ? inc.dest_ip : NULL;
        in.from_alert = alert_id;
    } else if (!in.rule_id) {
        http_error_open(w, 400, "missing_field");
        jbuf_str(&w->body, "field", "rule_id");
        http_error_close(w);
        goto out;
    }
    in.created_by = s->who.name;
    err = suppression_add(st, &in, api_now(a), sid, &why);
    if (err) {
        refuse(w, err, why);
    } else {
        w->status = 201;
        jbuf_obj_open(&w->body, NULL);
        jbuf_str(&w->body, "id", sid);
        jbuf_str(&w->body, "rule_id", in.rule_id);
        if (in.src_ip)
            jbuf_str(&w->body, "src_ip", in.src_ip);
        if (in.dest_ip)
            jbuf_str(&w->body, "dest_ip", in.dest_ip);
        jbuf_i64(&w->body, "expires_at", in.expires_at);
        jbuf_obj_close(&w->body);
    }
    snprintf(detail, sizeof(detail), "rule=%s src=%s dest=%s until=%lld: %s", in.rule_id,
             in.src_ip ? in.src_ip : "*", in.dest_ip ? in.dest_ip : "*", (long long)in.expires_at,
             in.reason);
    api_audit(a, st, s->who.name, r, "suppression.create", err ? in.rule_id : sid,
              err ? "refused" : "ok", detail);
out:
    if (have_inc)
        incident_clear(&inc);
    json_decref(j);
}

/* DELETE /api/v1/suppressions/{id} */
void h_suppression_revoke(api *a, store *st, session *s, const http_req *r, http_resp *w,
                          const char *id)
{
    fh_err err = suppression_revoke(st, id, s->who.name, api_now(a));

    if (err)
        refuse(w, err, NULL);
    else
        api_ok(w);
    api_audit(a, st, s->who.name, r, "suppression.revoke", id, err ? "refused" : "ok", NULL);
}

/* ---- health ------------------------------------------------------------------------------- */

/* GET /api/v1/health: the store answers (503 when not); no data, so public (probes) */
void h_health(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    int64_t gr = 0, gs = 0;
    bool ok = admin_generation(st, &gr, &gs) == FH_OK;

    (void)a;
    (void)s;
    (void)r;
    (void)id;
    w->status = ok ? 200 : 503;
    jbuf_obj_open(&w->body, NULL);
    jbuf_str(&w->body, "status", ok ? "ok" : "store_unavailable");
    jbuf_i64(&w->body, "schema", store_schema_version(st));
    jbuf_obj_close(&w->body);
}
