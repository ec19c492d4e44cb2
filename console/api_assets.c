/*
 * api_assets.c - the console API's asset inventory (--assets) and placeholder lists
 * (the rule folder's lists/, NAME.txt): read, validate, replace. A change is checked
 * the way the correlators will load it, together with the rules that use it (a list or
 * an inventory that drops a placeholder a rule expands is refused), with the same
 * file:line errors; a valid change is written atomically and the correlators reload.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"
#include "../correlator/admin.h"
#include "../correlator/engine.h"
#include "../correlator/lists.h"
#include "api_int.h"

#define FILE_MAX (4u << 20)

/* The body's "text"; NULL after answering. */
static const char *body_text(const http_req *r, http_resp *w, json_t **j, size_t *len)
{
    bool bad = false;
    const char *t;

    if (!(*j = api_body(r, w)))
        return NULL;
    if (!(t = api_str(*j, "text", true, w, &bad)))
        return NULL;
    *len = json_string_length(json_object_get(*j, "text"));
    if (*len > FILE_MAX || memchr(t, '\0', *len)) {
        http_error(w, 400, "bad_text");
        return NULL;
    }
    return t;
}

/*
 * Checks a candidate; answers {"ok", "errors"} (status ok_status when valid,
 * bad_status when not) and returns whether it is valid.
 */
static bool check(api *a, const api_candidate *c, http_resp *w, int bad_status)
{
    bool refused, ok;
    engine *e = api_load_candidate(a, c, w, &refused);

    if (!e) {
        if (refused)
            w->status = bad_status;
        return false;
    }
    ok = e->rs.nerrors == 0;
    w->status = ok ? 200 : bad_status;
    jbuf_obj_open(&w->body, NULL);
    jbuf_bool(&w->body, "ok", ok);
    api_rules_errors_json(&w->body, e);
    jbuf_obj_close(&w->body);
    engine_free(e);
    return ok;
}

/* After a save (ok) or a refusal: the correlators told to reload, the audit record. */
static void saved(api *a, store *st, session *s, const http_req *r, const char *action,
                  const char *object, bool ok)
{
    if (ok && admin_generation_bump(st, true, false) != FH_OK)
        fh_error("%s: %s", action, store_errmsg(st));
    api_audit(a, st, s->who.name, r, action, object, ok ? "ok" : "refused", NULL);
}

/* ---- the inventory ------------------------------------------------------------------------ */

static bool have_assets(api *a, http_resp *w)
{
    if (!a->o.assets_file || !a->o.rules_dir) {
        http_error(w, 503, "assets_not_configured");
        return false;
    }
    return true;
}

/* GET /api/v1/assets */
void h_assets(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    size_t len = 0;
    char *text, path[1024];

    (void)st;
    (void)s;
    (void)r;
    (void)id;
    if (!have_assets(a, w))
        return;
    if (!(text = http_slurp(a->o.assets_file, FILE_MAX, &len))) {
        http_error(w, 500, "assets_unreadable");
        return;
    }
    snprintf(path, sizeof(path), "%s", a->o.assets_file);
    jbuf_obj_open(&w->body, NULL);
    jbuf_str(&w->body, "file", basename(path));
    jbuf_strn(&w->body, "text", text, len);
    jbuf_obj_close(&w->body);
    free(text);
}

static void assets_change(api *a, store *st, session *s, const http_req *r, http_resp *w, bool save)
{
    json_t *j = NULL;
    size_t len = 0;
    const char *text;
    api_candidate c = {0};
    char dir[1024], name[1024];
    bool ok;

    if (!have_assets(a, w) || !(text = body_text(r, w, &j, &len)))
        goto out;
    c.assets_text = text;
    c.assets_len = len;
    ok = check(a, &c, w, save ? 422 : 200);
    if (save && ok) {
        snprintf(dir, sizeof(dir), "%s", a->o.assets_file);
        snprintf(name, sizeof(name), "%s", a->o.assets_file);
        if (!api_write_atomic(dirname(dir), basename(name), text, len)) {
            jbuf_reset(&w->body);
            http_error(w, 500, "assets_unwritable");
            ok = false;
        }
    }
    if (save)
        saved(a, st, s, r, "assets.replace", "assets", ok);
out:
    json_decref(j);
}

/* POST /api/v1/assets/validate {"text"} */
void h_assets_validate(api *a, store *st, session *s, const http_req *r, http_resp *w,
                       const char *id)
{
    (void)id;
    assets_change(a, st, s, r, w, false);
}

/* POST /api/v1/assets {"text"}: replaced only when it and the rules load */
void h_assets_replace(api *a, store *st, session *s, const http_req *r, http_resp *w,
                      const char *id)
{
    (void)id;
    assets_change(a, st, s, r, w, true);
}

/* ---- lists --------------------------------------------------------------------------------- */

static bool lists_dir(api *a, http_resp *w, char *out, size_t len)
{
    if (!a->o.rules_dir) {
        http_error(w, 503, "rules_not_configured");
        return false;
    }
    engine_default_lists_dir(a->o.rules_dir, out, len);
    return true;
}

/* A list name: lower-case letters, digits and '_' (the placeholder %name%). */
static bool list_name_ok(const char *n)
{
    size_t len = strlen(n);

    return len && len <= 64 && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* GET /api/v1/lists */
void h_lists(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    char dir[1024], err[512];
    list_store ls = {0};

    (void)st;
    (void)s;
    (void)r;
    (void)id;
    if (!lists_dir(a, w, dir, sizeof(dir)))
        return;
    if (lists_load(&ls, dir, err, sizeof(err)) != FH_OK) {
        jbuf_obj_open(&w->body, NULL);
        jbuf_arr_open(&w->body, "lists");
        jbuf_arr_close(&w->body);
        jbuf_str(&w->body, "error", err);
        jbuf_obj_close(&w->body);
        return;
    }
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "lists");
    for (size_t i = 0; i < ls.n; i++) {
        jbuf_obj_open(&w->body, NULL);
        jbuf_str(&w->body, "name", ls.lists[i].name);
        jbuf_u64(&w->body, "values", ls.lists[i].n);
        jbuf_obj_close(&w->body);
    }
    jbuf_arr_close(&w->body);
    jbuf_obj_close(&w->body);
    lists_free(&ls);
}

/* GET /api/v1/lists/{name} */
void h_list(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    char dir[1024], path[1200];
    size_t len = 0;
    char *text;

    (void)st;
    (void)s;
    (void)r;
    if (!lists_dir(a, w, dir, sizeof(dir)))
        return;
    if (!list_name_ok(id)) {
        http_error(w, 404, "not_found");
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.txt", dir, id);
    if (!(text = http_slurp(path, FILE_MAX, &len))) {
        http_error(w, 404, "not_found");
        return;
    }
    jbuf_obj_open(&w->body, NULL);
    jbuf_str(&w->body, "name", id);
    jbuf_strn(&w->body, "text", text, len);
    jbuf_obj_close(&w->body);
    free(text);
}

static void list_change(api *a, store *st, session *s, const http_req *r, http_resp *w,
                        const char *id, bool save)
{
    json_t *j = NULL;
    size_t len = 0;
    const char *text;
    api_candidate c = {0};
    char dir[1024], file[128];
    bool ok;

    if (!lists_dir(a, w, dir, sizeof(dir)))
        return;
    if (!list_name_ok(id)) {
        http_error(w, 400, "bad_list_name");
        return;
    }
    if (!(text = body_text(r, w, &j, &len)))
        goto out;
    snprintf(file, sizeof(file), "%s.txt", id);
    c.list_name = file;
    c.list_text = text;
    c.list_len = len;
    ok = check(a, &c, w, save ? 422 : 200);
    if (save && ok && !api_write_atomic(dir, file, text, len)) {
        jbuf_reset(&w->body);
        http_error(w, 500, "list_unwritable");
        ok = false;
    }
    if (save)
        saved(a, st, s, r, "list.replace", id, ok);
out:
    json_decref(j);
}

/* POST /api/v1/lists/{name}/validate {"text"} */
void h_list_validate(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    list_change(a, st, s, r, w, id, false);
}

/* POST /api/v1/lists/{name} {"text"}: added or replaced when it and the rules load */
void h_list_replace(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    list_change(a, st, s, r, w, id, true);
}
