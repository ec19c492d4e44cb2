/*
 * api_rules.c - the console API's rules: list (with hit counts and switches), get
 * (the rule's file), validate a file (file:line errors), upload, switch on and
 * off, and ask the correlators to reload. The rule folder is the console's
 * --rules directory (the correlators' rule folder, shared or synchronised); the
 * correlators notice an upload, a switch or a reload request through the store's
 * rules generation (admin.h) and reload, keeping the running set when the new one
 * has an error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "../correlator/admin.h"
#include "../correlator/alerts.h"
#include "../correlator/corr_rule.h"
#include "../correlator/engine.h"
#include "api_int.h"

#define RULE_FILE_MAX (256 * 1024)

/* Loads the rules at path (lists from lists_dir); NULL after answering 500 / 503. */
static engine *load(api *a, const char *path, http_resp *w)
{
    char lists[1024], err[512];
    engine *e;
    engine_config cfg = {.rules_path = path, .assets_file = a->o.assets_file};

    if (!a->o.rules_dir) {
        http_error(w, 503, "rules_not_configured");
        return NULL;
    }
    engine_default_lists_dir(a->o.rules_dir, lists, sizeof(lists));
    cfg.lists_dir = lists;
    if (!(e = calloc(1, sizeof(*e)))) {
        http_error(w, 500, "out_of_memory");
        return NULL;
    }
    if (engine_load(e, &cfg, err, sizeof(err)) != FH_OK) {
        fh_error("rules: %s", err);
        engine_free(e);
        http_error(w, 500, "rules_unreadable");
        return NULL;
    }
    return e;
}

static const char *base(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;

    return s ? s + 1 : path ? path : "";
}

static void errors_json(jbuf *b, const ruleset *rs)
{
    jbuf_arr_open(b, "errors");
    for (uint32_t i = 0; i < rs->nerrors; i++) {
        const load_error *le = &rs->errors[i];

        jbuf_obj_open(b, NULL);
        jbuf_str(b, "file", base(le->file));
        jbuf_i64(b, "line", le->line);
        if (le->rule)
            jbuf_str(b, "rule", le->rule);
        jbuf_str(b, "reason", le->reason ? le->reason : "");
        jbuf_obj_close(b);
    }
    jbuf_arr_close(b);
}

typedef struct {
    const char *rule_id;
    int64_t alerts, hits, last_seen;
    bool off;
} rule_extra;

typedef struct {
    rule_extra *x;
    size_t n;
} extras;

static rule_extra *extra_for(extras *xs, const char *id)
{
    for (size_t i = 0; i < xs->n; i++)
        if (!strcmp(xs->x[i].rule_id, id))
            return &xs->x[i];
    return NULL;
}

static void hits_row(void *ctx, const char *rule_id, int64_t alerts, int64_t hits,
                     int64_t last_seen)
{
    rule_extra *x = extra_for(ctx, rule_id);

    if (x) {
        x->alerts = alerts;
        x->hits = hits;
        x->last_seen = last_seen;
    }
}

static void switch_row(void *ctx, const rule_switch *r)
{
    rule_extra *x = extra_for(ctx, r->rule_id);

    if (x)
        x->off = !r->enabled;
}

uint32_t api_rule_count(const engine *e)
{
    return e->rs.nrules + e->rs.ncorrs;
}

api_rule api_rule_at(const engine *e, uint32_t k)
{
    api_rule v;

    if (k < e->rs.nrules) {
        const sigma_rule *x = &e->rs.rules[k];

        v = (api_rule){x->id,   x->name, x->title, x->title_zh, x->file,
                       x->line, x->lvl,  x->tags,  x->ntags,    false};
    } else {
        const struct corr_rule *x = &e->rs.corrs[k - e->rs.nrules];

        v = (api_rule){x->id,   x->name, x->title, x->title_zh, x->file,
                       x->line, x->lvl,  x->tags,  x->ntags,    true};
    }
    v.id = v.id ? v.id : v.name ? v.name : v.title;
    return v;
}

int64_t api_rule_find(const engine *e, const char *id)
{
    for (uint32_t k = 0; k < api_rule_count(e); k++)
        if (!strcmp(api_rule_at(e, k).id, id))
            return k;
    return -1;
}

/* One entry per loaded rule (detection, then correlation), with its store figures. */
static bool collect(store *st, const engine *e, extras *xs)
{
    xs->n = 0;
    if (!(xs->x = calloc(api_rule_count(e) + 1, sizeof(*xs->x))))
        return false;
    for (uint32_t k = 0; k < api_rule_count(e); k++)
        xs->x[xs->n++].rule_id = api_rule_at(e, k).id;
    return admin_rule_hits(st, hits_row, xs) == FH_OK &&
           rule_switch_list(st, switch_row, xs) == FH_OK;
}

static void rule_json(jbuf *b, const char *key, const rule_extra *x, const api_rule *v)
{
    jbuf_obj_open(b, key);
    jbuf_str(b, "id", x->rule_id);
    jbuf_str(b, "kind", v->correlation ? "correlation" : "detection");
    jbuf_str(b, "title", v->title ? v->title : "");
    alert_json_opt(b, "title_zh", v->title_zh);
    jbuf_str(b, "level", alert_level_name((int)v->lvl));
    jbuf_arr_open(b, "tags");
    for (uint32_t t = 0; t < v->ntags; t++)
        jbuf_str(b, NULL, v->tags[t]);
    jbuf_arr_close(b);
    jbuf_str(b, "file", base(v->file));
    jbuf_i64(b, "line", v->line);
    jbuf_bool(b, "enabled", !x->off);
    jbuf_i64(b, "alerts", x->alerts);
    jbuf_i64(b, "hits", x->hits);
    if (x->last_seen)
        jbuf_i64(b, "last_alert", x->last_seen);
    jbuf_obj_close(b);
}

/* GET /api/v1/rules */
void h_rules(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    engine *e = load(a, a->o.rules_dir, w);
    extras xs = {0};

    (void)s;
    (void)r;
    (void)id;
    if (!e)
        return;
    if (!collect(st, e, &xs)) {
        http_error(w, 500, "store_error");
        goto out;
    }
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "rules");
    for (uint32_t k = 0; k < api_rule_count(e); k++) {
        api_rule v = api_rule_at(e, k);

        rule_json(&w->body, NULL, &xs.x[k], &v);
    }
    jbuf_arr_close(&w->body);
    errors_json(&w->body, &e->rs);
    jbuf_obj_close(&w->body);
out:
    free(xs.x);
    engine_free(e);
}

/*
 * GET /api/v1/rules/titles: {"titles":{"<rule id>":{"title","title_zh"?},...}} for every
 * loaded rule, so that every role that reads alerts sees their titles in its language.
 */
void h_rule_titles(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    engine *e = load(a, a->o.rules_dir, w);

    (void)st;
    (void)s;
    (void)r;
    (void)id;
    if (!e)
        return;
    jbuf_obj_open(&w->body, NULL);
    jbuf_obj_open(&w->body, "titles");
    for (uint32_t k = 0; k < api_rule_count(e); k++) {
        api_rule v = api_rule_at(e, k);

        jbuf_obj_open(&w->body, v.id);
        jbuf_str(&w->body, "title", v.title ? v.title : "");
        alert_json_opt(&w->body, "title_zh", v.title_zh);
        jbuf_obj_close(&w->body);
    }
    jbuf_obj_close(&w->body);
    jbuf_obj_close(&w->body);
    engine_free(e);
}

/* GET /api/v1/rules/{id}: the rule and the text of its file */
void h_rule(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    engine *e = load(a, a->o.rules_dir, w);
    extras xs = {0};
    size_t len = 0;
    int64_t k;
    api_rule v;
    char *text;

    (void)s;
    (void)r;
    if (!e)
        return;
    if (!collect(st, e, &xs)) {
        http_error(w, 500, "store_error");
        goto out;
    }
    if ((k = api_rule_find(e, id)) < 0) {
        http_error(w, 404, "not_found");
        goto out;
    }
    v = api_rule_at(e, (uint32_t)k);
    if (!(text = http_slurp(v.file, RULE_FILE_MAX, &len))) {
        http_error(w, 500, "rules_unreadable");
        goto out;
    }
    jbuf_obj_open(&w->body, NULL);
    rule_json(&w->body, "rule", &xs.x[k], &v);
    jbuf_strn(&w->body, "source", text, len);
    jbuf_obj_close(&w->body);
    free(text);
out:
    free(xs.x);
    engine_free(e);
}

/* A rule file name: letters, digits, '_', '-', '.', ending in .yml or .yaml, no leading dot. */
static bool file_name_ok(const char *n)
{
    size_t len = n ? strlen(n) : 0;

    if (len < 5 || len > 100 || n[0] == '.' || n[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '_' || n[i] == '-' || n[i] == '.'))
            return false;
    return (len > 4 && !strcmp(n + len - 4, ".yml")) || (len > 5 && !strcmp(n + len - 5, ".yaml"));
}

/* Writes text to dir/name through a temporary file and rename(): readers see the old or
 * the new file, never half of one. */
bool api_write_atomic(const char *dir, const char *name, const char *text, size_t len)
{
    char tmp[1200], dst[1200];
    int fd;
    bool ok;

    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    if ((fd = mkstemp(tmp)) < 0)
        return false;
    ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && chmod(tmp, 0644) == 0 && rename(tmp, dst) == 0;
    if (!ok)
        unlink(tmp);
    return ok;
}

/* Links every entry of src (but skip and hidden ones) into dst. */
static bool link_entries(const char *src, const char *dst, const char *skip)
{
    char path[1400], target[1400];
    struct dirent *d;
    DIR *dir = opendir(src);
    bool ok = true;

    if (!dir)
        return errno == ENOENT; /* no such folder: nothing to link */
    while (ok && (d = readdir(dir))) {
        if (d->d_name[0] == '.' || (skip && !strcmp(d->d_name, skip)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dst, d->d_name);
        if (src[0] == '/')
            snprintf(target, sizeof(target), "%s/%s", src, d->d_name);
        else if (!getcwd(target, sizeof(target) - 1) ||
                 strlen(target) + strlen(src) + strlen(d->d_name) + 3 > sizeof(target))
            ok = false;
        else
            snprintf(target + strlen(target), sizeof(target) - strlen(target), "/%s/%s", src,
                     d->d_name);
        ok = ok && symlink(target, path) == 0;
    }
    closedir(dir);
    return ok;
}

static bool put_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[1400];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "wb")))
        return false;
    ok = fwrite(text, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Removes a temporary folder made here (its links, files and one level of folders). */
static void remove_tree(const char *dir)
{
    char path[1400];
    struct dirent *d;
    DIR *dp = opendir(dir);

    while (dp && (d = readdir(dp))) {
        struct stat sb;

        if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    if (dp)
        closedir(dp);
    rmdir(dir);
}

/* "PATH:LINE: reason" (a list or inventory error) as an errors entry in b. */
static void loader_error_json(jbuf *b, const char *msg)
{
    const char *c1 = strchr(msg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char file[256];

    jbuf_arr_open(b, "errors");
    jbuf_obj_open(b, NULL);
    if (c1 && c2 && c2 > c1 + 1 && strspn(c1 + 1, "0123456789") == (size_t)(c2 - c1 - 1)) {
        snprintf(file, sizeof(file), "%.*s", (int)(c1 - msg), msg);
        jbuf_str(b, "file", base(file));
        jbuf_i64(b, "line", strtol(c1 + 1, NULL, 10));
        jbuf_str(b, "reason", c2[1] == ' ' ? c2 + 2 : c2 + 1);
    } else {
        jbuf_str(b, "reason", msg);
    }
    jbuf_obj_close(b);
    jbuf_arr_close(b);
}

/*
 * The rule set as it would be after a change: a rule file, a list or the inventory
 * replaced by the candidate text. A temporary folder holds links to everything
 * else (rules beside the new file, the other lists) and the candidate, loaded as the
 * correlators load theirs. NULL after answering; when the lists or the inventory do
 * not load, *refused is set and the answer is {"ok":false,"errors":[{file,line,reason}]}
 * (status 200 for validate, 422 otherwise).
 */
engine *api_load_candidate(api *a, const api_candidate *c, http_resp *w, bool *refused)
{
    char tmp[] = "/tmp/fenghuo-rules-XXXXXX", rules[1200], lists[1200], real_lists[1024], inv[1200],
         err[1024];
    engine_config cfg = {0};
    engine *e = NULL;
    bool ok;

    *refused = false;
    if (!a->o.rules_dir) {
        http_error(w, 503, "rules_not_configured");
        return NULL;
    }
    if (!mkdtemp(tmp)) {
        http_error(w, 500, "temporary_folder");
        return NULL;
    }
    engine_default_lists_dir(a->o.rules_dir, real_lists, sizeof(real_lists));
    snprintf(rules, sizeof(rules), "%s/rules", tmp);
    snprintf(lists, sizeof(lists), "%s/lists", tmp);
    snprintf(inv, sizeof(inv), "%s/assets.yaml", tmp);
    ok = mkdir(rules, 0700) == 0 && mkdir(lists, 0700) == 0 &&
         link_entries(a->o.rules_dir, rules, c->rule_name) &&
         link_entries(real_lists, lists, c->list_name) &&
         (!c->rule_name || put_file(rules, c->rule_name, c->rule_text, c->rule_len)) &&
         (!c->list_name || put_file(lists, c->list_name, c->list_text, c->list_len)) &&
         (!c->assets_text || put_file(tmp, "assets.yaml", c->assets_text, c->assets_len));
    if (!ok) {
        http_error(w, 500, "temporary_folder");
    } else if (!(e = calloc(1, sizeof(*e)))) {
        http_error(w, 500, "out_of_memory");
    } else {
        cfg.rules_path = rules;
        cfg.lists_dir = lists;
        cfg.assets_file = c->assets_text ? inv : a->o.assets_file;
        if (engine_load(e, &cfg, err, sizeof(err)) != FH_OK) {
            engine_free(e);
            e = NULL;
            *refused = true;
            jbuf_obj_open(&w->body, NULL);
            jbuf_bool(&w->body, "ok", false);
            loader_error_json(&w->body, err);
            jbuf_obj_close(&w->body);
        }
    }
    remove_tree(tmp);
    return e;
}

engine *api_rules_load_with(api *a, const char *name, const char *text, size_t len, http_resp *w)
{
    api_candidate c = {.rule_name = name, .rule_text = text, .rule_len = len};
    bool refused;
    engine *e = api_load_candidate(a, &c, w, &refused);

    if (refused)
        w->status = 422;
    return e;
}

void api_rules_errors_json(jbuf *b, const engine *e)
{
    errors_json(b, &e->rs);
}

bool api_rule_in_file(const api_rule *v, const char *name)
{
    return !strcmp(base(v->file), name);
}

/* The ids the file name defines in e (into b when not NULL); how many. */
static uint32_t defined_in(const engine *e, const char *name, jbuf *b)
{
    uint32_t n = 0;

    if (b)
        jbuf_arr_open(b, "rules");
    for (uint32_t k = 0; k < api_rule_count(e); k++) {
        api_rule v = api_rule_at(e, k);

        if (api_rule_in_file(&v, name)) {
            n++;
            if (b)
                jbuf_str(b, NULL, v.id);
        }
    }
    if (b)
        jbuf_arr_close(b);
    return n;
}

/* The body {"name": FILE, "text": YAML}; false after answering. */
static bool rule_body(const http_req *r, http_resp *w, json_t **j, const char **name,
                      const char **text, size_t *len)
{
    bool bad = false;

    if (!(*j = api_body(r, w)))
        return false;
    *name = api_str(*j, "name", true, w, &bad);
    *text = api_str(*j, "text", true, w, &bad);
    if (bad)
        return false;
    if (!file_name_ok(*name)) {
        http_error(w, 400, "bad_file_name");
        return false;
    }
    *len = json_string_length(json_object_get(*j, "text"));
    if (*len > RULE_FILE_MAX || memchr(*text, '\0', *len)) {
        http_error(w, 400, "bad_rule_text");
        return false;
    }
    return true;
}

/*
 * Validates and, when store is set, saves. The answer: {"ok":bool, "rules":[ids the file
 * defines], "errors":[{file, line, rule, reason}]} (errors anywhere in the resulting set:
 * the correlators refuse a set with any error).
 */
static void validate_or_upload(api *a, store *st, session *s, const http_req *r, http_resp *w,
                               bool save)
{
    const char *name = NULL, *text = NULL;
    json_t *j = NULL;
    engine *e = NULL;
    size_t len = 0;
    bool ok, existed = false;
    char path[1200];

    if (!rule_body(r, w, &j, &name, &text, &len) ||
        !(e = api_rules_load_with(a, name, text, len, w)))
        goto out;
    ok = e->rs.nerrors == 0 && defined_in(e, name, NULL) > 0;
    if (save && ok) {
        struct stat sb;

        snprintf(path, sizeof(path), "%s/%s", a->o.rules_dir, name);
        existed = stat(path, &sb) == 0;
        if (!api_write_atomic(a->o.rules_dir, name, text, len)) {
            fh_error("rules: writing %s: %s", path, strerror(errno));
            http_error(w, 500, "rules_unwritable");
            api_audit(a, st, s->who.name, r, "rule.upload", name, "failed", NULL);
            goto out;
        }
        if (admin_generation_bump(st, true, false) != FH_OK)
            fh_error("rules: %s", store_errmsg(st));
        api_audit(a, st, s->who.name, r, "rule.upload", name, "ok", existed ? "replaced" : "added");
    } else if (save) {
        api_audit(a, st, s->who.name, r, "rule.upload", name, "refused", "invalid");
    }
    w->status = save ? (ok ? 201 : 422) : 200;
    jbuf_obj_open(&w->body, NULL);
    jbuf_bool(&w->body, "ok", ok);
    defined_in(e, name, &w->body);
    errors_json(&w->body, &e->rs);
    if (!defined_in(e, name, NULL) && !e->rs.nerrors)
        jbuf_str(&w->body, "code", "no_rule");
    jbuf_obj_close(&w->body);
out:
    engine_free(e);
    json_decref(j);
}

/* POST /api/v1/rules/validate {"name", "text"} */
void h_rule_validate(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)id;
    validate_or_upload(a, st, s, r, w, false);
}

/* POST /api/v1/rules {"name", "text"}: saved only when the resulting set is valid */
void h_rule_upload(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    (void)id;
    validate_or_upload(a, st, s, r, w, true);
}

static void switch_rule(api *a, store *st, session *s, const http_req *r, http_resp *w,
                        const char *id, bool on)
{
    engine *e = load(a, a->o.rules_dir, w);
    bool known;
    fh_err err;

    if (!e)
        return;
    known = api_rule_find(e, id) >= 0;
    engine_free(e);
    if (!known) {
        http_error(w, 404, "not_found");
        return;
    }
    err = rule_switch_set(st, id, on, s->who.name, api_now(a));
    if (err)
        http_error(w, 500, "store_error");
    else
        api_ok(w);
    api_audit(a, st, s->who.name, r, on ? "rule.enable" : "rule.disable", id, err ? "failed" : "ok",
              NULL);
}

/* POST /api/v1/rules/{id}/enable, /disable */
void h_rule_enable(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    switch_rule(a, st, s, r, w, id, true);
}

void h_rule_disable(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    switch_rule(a, st, s, r, w, id, false);
}

/* POST /api/v1/rules/reload: every correlator reloads its rule folder */
void h_rules_reload(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    fh_err err = admin_generation_bump(st, true, false);

    (void)id;
    if (err)
        http_error(w, 500, "store_error");
    else
        api_ok(w);
    api_audit(a, st, s->who.name, r, "rule.reload", NULL, err ? "failed" : "ok", NULL);
}
