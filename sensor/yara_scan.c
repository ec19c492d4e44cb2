/*
 * yara_scan.c - YARA rules and per-thread scanners (see yara_scan.h).
 *
 * Compiling: the files are listed first (recursive, byte order of names), then
 * added one by one to a single yr_compiler, each under its own namespace. The
 * compiler callback appends "FILE:LINE: MESSAGE" to the caller's buffer for
 * every error (and warning). libyara forbids adding to a compiler once a file
 * failed, so after the first broken file each remaining file is checked in a
 * throw-away compiler of its own: one reload reports every broken file, not
 * only the first. Nothing reaches the caller unless all files compiled.
 *
 * Scanning: a yr_scanner per yara_scanner, so threads never share scan state.
 * The libyara callback copies what the event needs into the scanner's
 * yara_match (bounded arrays, pointers into the rules and into libyara's
 * match records) and hands it to the caller's callback: no allocation per
 * scan beyond what libyara itself does.
 *
 * yr_initialize()/yr_finalize() are not thread-safe and not idempotent in
 * libyara 4.2, so yara_scan_init()/fini() count the calls under a mutex.
 */
#include "yara_scan.h"
#include "yara_prefilter.h"
#include "yara_source.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include <yara.h>

#define MAX_DEPTH 8 /* directory levels below the rules path */

struct yara_rules {
    YR_RULES *y;
    YR_RULES *plain;    /* the rules that need no file-format module, or NULL (yara_source.c) */
    unsigned n_format;  /* rules only in y: run on data of a format a module reads */
    yara_prefilter *pf; /* which data no rule that needs a string can match, or NULL */
    YR_RULES *always;   /* with pf: the rules that may match without one, or NULL if none */
    unsigned n_always;
    yara_prefilter_info pf_info; /* what the prefilter read (for the start-up log) */
    atomic_uint refs;
    unsigned n_rules;
    unsigned n_files;
    bool clock; /* a source imports "time": no clean cache */
};

struct yara_rules_slot {
    pthread_mutex_t lock;
    yara_rules *cur;
    _Atomic uint64_t generation;
};

typedef struct {
    uint8_t h[crypto_shorthash_siphashx24_BYTES];
    uint64_t len1; /* the buffer's length + 1; 0: the entry is empty */
} clean_entry;

struct yara_scanner {
    YR_SCANNER *y;
    clean_entry *cache; /* yara_scanner_set_clean_cache(), or NULL */
    uint32_t cache_mask;
    bool last_cached;
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    YR_SCANNER *plain;   /* for rules->plain */
    YR_SCANNER *always;  /* for rules->always */
    void *pf_scratch;    /* for rules->pf */
    uint64_t full_scans; /* scans that needed y (data of a file format) */
    bool last_prefiltered;
    yara_rules *rules;
    yara_match_cb cb;
    void *arg;
    int n_matches;
    bool stop;
    yara_match m;
};

/* ---- library ------------------------------------------------------------ */

static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned lib_users;

fh_err yara_scan_init(void)
{
    fh_err rc = FH_OK;

    pthread_mutex_lock(&lib_lock);
    if (lib_users == 0 && (yr_initialize() != ERROR_SUCCESS || sodium_init() < 0))
        rc = FH_ERR_NOMEM;
    else
        lib_users++;
    pthread_mutex_unlock(&lib_lock);
    return rc;
}

void yara_scan_fini(void)
{
    pthread_mutex_lock(&lib_lock);
    if (lib_users > 0 && --lib_users == 0)
        yr_finalize();
    pthread_mutex_unlock(&lib_lock);
}

/* ---- error text ---------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    unsigned errors;
    unsigned warnings;
    bool truncated;
} msgs;

/* Appends one line to m (a newline before all but the first). */
static void msg_add(msgs *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void msg_add(msgs *m, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!m->buf || m->cap == 0 || m->truncated)
        return;
    if (m->len > 0 && m->len + 1 < m->cap) {
        m->buf[m->len++] = '\n';
        m->buf[m->len] = '\0';
    }
    va_start(ap, fmt);
    n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= m->cap - m->len) {
        m->len = m->cap - 1;
        m->truncated = true;
        return;
    }
    m->len += (size_t)n;
}

static void on_compile_msg(int level, const char *file, int line, const YR_RULE *rule,
                           const char *message, void *user)
{
    msgs *m = user;

    (void)rule;
    if (level == YARA_ERROR_LEVEL_WARNING)
        m->warnings++;
    else
        m->errors++;
    msg_add(m, "%s:%d: %s%s", file ? file : "(string)", line,
            level == YARA_ERROR_LEVEL_WARNING ? "warning: " : "", message ? message : "");
}

/* ---- listing the files ---------------------------------------------------- */

typedef struct {
    char **path; /* full path */
    char **ns;   /* namespace */
    size_t n;
    size_t cap;
} file_list;

static void files_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->path[i]);
        free(l->ns[i]);
    }
    free(l->path);
    free(l->ns);
    memset(l, 0, sizeof(*l));
}

static bool is_rule_file(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && strcmp(name + n - 4, ".yar") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".yara") == 0);
}

/* Adds path with namespace rel minus its .yar/.yara extension. */
static fh_err files_add(file_list *l, const char *path, const char *rel)
{
    if (l->n == YARA_MAX_FILES)
        return FH_ERR_LIMIT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->path, cap * sizeof(*p));
        if (!p)
            return FH_ERR_NOMEM;
        l->path = p;
        p = realloc(l->ns, cap * sizeof(*p));
        if (!p)
            return FH_ERR_NOMEM;
        l->ns = p;
        l->cap = cap;
    }
    char *full = strdup(path);
    char *ns = strdup(rel);
    if (!full || !ns) {
        free(full);
        free(ns);
        return FH_ERR_NOMEM;
    }
    if (is_rule_file(ns))
        *strrchr(ns, '.') = '\0';
    l->path[l->n] = full;
    l->ns[l->n] = ns;
    l->n++;
    return FH_OK;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Lists the rule files under dir (rel: its path relative to the root, "" for
 * the root). */
static fh_err list_dir(file_list *l, const char *dir, const char *rel, int depth, msgs *m)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, not_hidden, by_name);
    fh_err rc = FH_OK;

    if (n < 0) {
        msg_add(m, "scandir(\"%s\") failed: %s", dir, strerror(errno));
        return FH_ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        char path[4096], sub[4096];
        struct stat st;
        const char *name = ents[i]->d_name;

        if (rc)
            goto next;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
            (size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", name) >=
                sizeof(sub)) {
            msg_add(m, "%s/%s: path too long", dir, name);
            rc = FH_ERR_LIMIT;
            goto next;
        }
        if (stat(path, &st) != 0)
            goto next; /* dangling link or vanished: not a rule file */
        if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH)
                rc = list_dir(l, path, sub, depth + 1, m);
        } else if (S_ISREG(st.st_mode) && is_rule_file(name)) {
            rc = files_add(l, path, sub);
            if (rc == FH_ERR_LIMIT)
                msg_add(m, "%s: more than %d rule files", dir, YARA_MAX_FILES);
        }
    next:
        free(ents[i]);
    }
    free(ents);
    return rc;
}

/* Lists path (a file or a directory). */
static fh_err list_files(file_list *l, const char *path, msgs *m)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        msg_add(m, "stat(\"%s\") failed: %s", path, strerror(errno));
        return errno == ENOENT ? FH_ERR_NOTFOUND : FH_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        fh_err rc = list_dir(l, path, "", 0, m);
        if (rc == FH_OK && l->n == 0) {
            msg_add(m, "%s: no *.yar or *.yara file", path);
            rc = FH_ERR_NOTFOUND;
        }
        return rc;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return files_add(l, path, base); /* named explicitly: any extension */
}

/* ---- compiling -------------------------------------------------------------- */

/* Adds one file to c; returns FH_OK, FH_ERR_PARSE (errors went to m) or FH_ERR_IO. */
static fh_err add_file(yara_sources *src, YR_COMPILER *c, const char *path, const char *ns, msgs *m)
{
    int errors = yara_sources_add(src, c, path, ns);

    if (errors < 0 && yara_sources_error(src)) {
        msg_add(m, "%s", yara_sources_error(src));
        return FH_ERR_IO;
    }
    if (errors < 0) {
        msg_add(m, "%s: %s", path, fh_strerror(FH_ERR_NOMEM));
        return FH_ERR_NOMEM;
    }
    return errors > 0 ? FH_ERR_PARSE : FH_OK;
}

/* The first error of a compile of the plain set: the rule to drop next. */
typedef struct {
    char file[4096];
    int line;
    unsigned errors;
} first_error;

static void on_plain_msg(int level, const char *file, int line, const YR_RULE *rule,
                         const char *message, void *user)
{
    first_error *e = user;

    (void)rule;
    (void)message;
    if (level != YARA_ERROR_LEVEL_ERROR || e->errors++)
        return;
    snprintf(e->file, sizeof(e->file), "%s", file ? file : "");
    e->line = line;
}

#define PLAIN_MAX_COMPILES 256

static unsigned public_rules(YR_RULES *y)
{
    const YR_RULE *rule;
    unsigned n = 0;

    yr_rules_foreach(y, rule)
    {
        if (!RULE_IS_PRIVATE(rule))
            n++;
    }
    return n;
}

/* Compiles the texts src hands out now, dropping each rule that fails (it names a module
 * blanked out, or a rule dropped before) and compiling again. NULL when a failure leaves no
 * rule to drop. */
static YR_RULES *compile_variant(yara_sources *src, const file_list *files)
{
    for (int round = 0; round < PLAIN_MAX_COMPILES; round++) {
        YR_COMPILER *c = NULL;
        YR_RULES *y = NULL;
        first_error e = {.line = 0};
        bool io = false;

        if (yr_compiler_create(&c) != ERROR_SUCCESS)
            return NULL;
        yr_compiler_set_callback(c, on_plain_msg, &e);
        for (size_t i = 0; i < files->n && !e.errors && !io; i++)
            io = yara_sources_add(src, c, files->path[i], files->ns[i]) < 0;
        if (!e.errors && !io && yr_compiler_get_rules(c, &y) != ERROR_SUCCESS)
            y = NULL;
        yr_compiler_destroy(c);
        if (y || io || !e.errors)
            return y;
        if (!yara_sources_drop_rule(src, e.file, e.line))
            return NULL;
    }
    return NULL;
}

/*
 * The plain set (yara_source.c): the sources without their file-format imports, less every
 * rule that will not compile so. NULL when the sources import no such module, or when a
 * compile fails where no rule can be dropped (every rule then runs on all data).
 */
static YR_RULES *compile_plain(yara_sources *src, const file_list *files)
{
    if (!yara_sources_have_format(src) || !yara_sources_plain_init(src))
        return NULL;
    return compile_variant(src, files);
}

static bool keep_rule(const char *name, void *arg)
{
    return yara_prefilter_keep(arg, name);
}

/*
 * The prefilter (yara_prefilter.c) and the set of the rules it cannot rule out, made from
 * the plain texts less the other rules: run on data of no file format in which the filter
 * finds nothing. Leaves r->pf NULL when either cannot be made: every buffer then goes to
 * libyara whole.
 */
static void make_prefilter(yara_rules *r, yara_sources *src, const file_list *files)
{
    size_t n = yara_sources_count(src);
    const char **texts = calloc(n ? n : 1, sizeof(*texts));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    if (texts && lens) {
        for (size_t i = 0; i < n; i++)
            texts[i] = yara_sources_text(src, i, &lens[i]);
        r->pf = yara_prefilter_new(texts, lens, n, &r->pf_info);
    }
    free(texts);
    free(lens);
    if (!r->pf || yara_prefilter_always_count(r->pf) == 0)
        return;
    if (!yara_sources_alt_init(src, keep_rule, r->pf) ||
        !(r->always = compile_variant(src, files))) {
        yara_prefilter_free(r->pf);
        r->pf = NULL;
        return;
    }
    r->n_always = public_rules(r->always);
    if (r->n_always == 0) { /* they all need a file-format module: not run on plain data */
        yr_rules_destroy(r->always);
        r->always = NULL;
    }
}

fh_err yara_rules_load_flags(const char *path, unsigned flags, yara_rules **out, char *err,
                             size_t errlen)
{
    msgs m = {.buf = err, .cap = errlen};
    file_list files = {0};
    YR_COMPILER *c = NULL;
    YR_RULES *y = NULL;
    yara_rules *r = NULL;
    yara_sources *src = yara_sources_new();
    fh_err rc = FH_OK;

    if (!src)
        return FH_ERR_NOMEM;
    if (err && errlen)
        err[0] = '\0';
    if (!path || !out)
        return FH_ERR_ARG;
    rc = list_files(&files, path, &m);
    if (rc)
        goto fail;
    if (yr_compiler_create(&c) != ERROR_SUCCESS) {
        rc = FH_ERR_NOMEM;
        goto fail;
    }
    yr_compiler_set_callback(c, on_compile_msg, &m);
    for (size_t i = 0; i < files.n; i++) {
        fh_err frc;
        if (rc == FH_OK) {
            frc = add_file(src, c, files.path[i], files.ns[i], &m);
        } else {
            /* the main compiler is unusable now: check the rest one by one */
            YR_COMPILER *check = NULL;
            if (yr_compiler_create(&check) != ERROR_SUCCESS) {
                rc = FH_ERR_NOMEM;
                break;
            }
            yr_compiler_set_callback(check, on_compile_msg, &m);
            frc = add_file(src, check, files.path[i], files.ns[i], &m);
            yr_compiler_destroy(check);
        }
        if (frc && rc == FH_OK)
            rc = frc;
    }
    if (rc == FH_OK && m.warnings > 0 && !(flags & YARA_LOAD_ALLOW_WARNINGS))
        rc = FH_ERR_PARSE;
    if (rc)
        goto fail;
    if (yr_compiler_get_rules(c, &y) != ERROR_SUCCESS) {
        rc = FH_ERR_NOMEM;
        goto fail;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        rc = FH_ERR_NOMEM;
        goto fail;
    }
    r->n_rules = public_rules(y);
    r->clock = yara_sources_use_clock(src);
    r->plain = compile_plain(src, &files);
    if (r->plain)
        r->n_format = r->n_rules - public_rules(r->plain);
    if (!(flags & YARA_LOAD_NO_PREFILTER))
        make_prefilter(r, src, &files);
    r->y = y;
    r->n_files = (unsigned)files.n;
    atomic_init(&r->refs, 1);
    yr_compiler_destroy(c);
    files_free(&files);
    yara_sources_free(src);
    *out = r;
    return FH_OK;
fail:
    if (rc == FH_ERR_NOMEM)
        msg_add(&m, "%s: %s", path, fh_strerror(rc));
    if (y)
        yr_rules_destroy(y);
    if (c)
        yr_compiler_destroy(c);
    files_free(&files);
    yara_sources_free(src);
    return rc;
}

fh_err yara_rules_load(const char *path, yara_rules **out, char *err, size_t errlen)
{
    return yara_rules_load_flags(path, 0, out, err, errlen);
}

yara_rules *yara_rules_ref(yara_rules *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void yara_rules_unref(yara_rules *r)
{
    if (!r)
        return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    yr_rules_destroy(r->y);
    if (r->plain)
        yr_rules_destroy(r->plain);
    if (r->always)
        yr_rules_destroy(r->always);
    yara_prefilter_free(r->pf);
    free(r);
}

unsigned yara_rules_count(const yara_rules *r)
{
    return r ? r->n_rules : 0;
}

unsigned yara_rules_files(const yara_rules *r)
{
    return r ? r->n_files : 0;
}

unsigned yara_rules_format_only(const yara_rules *r)
{
    return r && r->plain ? r->n_format : 0;
}

bool yara_rules_prefiltered(const yara_rules *r, unsigned *always)
{
    if (always)
        *always = r && r->pf ? r->n_always : 0;
    return r && r->pf;
}

const yara_prefilter_info *yara_rules_prefilter_info(const yara_rules *r)
{
    return r && r->pf ? &r->pf_info : NULL;
}

/* ---- slot ------------------------------------------------------------------ */

yara_rules_slot *yara_rules_slot_new(void)
{
    yara_rules_slot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->generation, 0);
    return s;
}

void yara_rules_slot_free(yara_rules_slot *s)
{
    if (!s)
        return;
    yara_rules_unref(s->cur);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void yara_rules_slot_set(yara_rules_slot *s, yara_rules *r)
{
    yara_rules *old;

    pthread_mutex_lock(&s->lock);
    old = s->cur;
    s->cur = r;
    atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
    pthread_mutex_unlock(&s->lock);
    yara_rules_unref(old); /* outside the lock: may destroy a large set */
}

yara_rules *yara_rules_slot_get(yara_rules_slot *s)
{
    yara_rules *r;

    pthread_mutex_lock(&s->lock);
    r = yara_rules_ref(s->cur);
    pthread_mutex_unlock(&s->lock);
    return r;
}

uint64_t yara_rules_slot_generation(const yara_rules_slot *s)
{
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

/* ---- scanning ----------------------------------------------------------------- */

/* Fills s->m from a matching rule. */
static void fill_match(yara_scanner *s, YR_SCAN_CONTEXT *ctx, const YR_RULE *rule)
{
    yara_match *m = &s->m;
    const char *tag;
    const YR_META *meta;
    const YR_STRING *str;

    m->rule = rule->identifier;
    m->ns = rule->ns && rule->ns->name ? rule->ns->name : "default";
    m->n_tags = 0;
    yr_rule_tags_foreach(rule, tag)
    {
        if (m->n_tags < YARA_MAX_TAGS)
            m->tags[m->n_tags++] = tag;
    }
    m->n_meta = 0;
    yr_rule_metas_foreach(rule, meta)
    {
        if (m->n_meta == YARA_MAX_META)
            break;
        yara_meta *d = &m->meta[m->n_meta];
        d->key = meta->identifier;
        d->s = NULL;
        d->i = meta->integer;
        d->b = meta->integer != 0;
        if (meta->type == META_TYPE_STRING) {
            d->type = YARA_META_STRING;
            d->s = meta->string ? meta->string : "";
        } else if (meta->type == META_TYPE_BOOLEAN) {
            d->type = YARA_META_BOOL;
        } else {
            d->type = YARA_META_INT;
        }
        m->n_meta++;
    }
    m->n_strings = 0;
    m->strings_total = 0;
    yr_rule_strings_foreach(rule, str)
    {
        const YR_MATCHES *list = &ctx->matches[str->idx];
        const YR_MATCH *p = list->head;

        if (STRING_IS_PRIVATE(str))
            continue;
        m->strings_total += list->count > 0 ? (uint64_t)list->count : 0;
        while (p && m->n_strings < YARA_MAX_STRINGS) {
            /* libyara 4.2 hands out match records at unaligned addresses:
             * copy before reading a field */
            YR_MATCH mt;
            memcpy(&mt, p, sizeof(mt));
            p = mt.next;
            if (mt.is_private)
                continue;
            yara_string_match *d = &m->strings[m->n_strings++];
            d->id = str->identifier;
            d->offset = (uint64_t)(mt.base + mt.offset);
            d->length = mt.match_length > 0 ? (uint32_t)mt.match_length : 0;
            d->data = mt.data;
            d->data_len = mt.data_length > 0 ? (uint32_t)mt.data_length : 0;
        }
    }
}

static int on_scan_msg(YR_SCAN_CONTEXT *ctx, int message, void *data, void *user)
{
    yara_scanner *s = user;
    const YR_RULE *rule = data;

    if (message != CALLBACK_MSG_RULE_MATCHING || s->stop)
        return CALLBACK_CONTINUE; /* includes TOO_MANY_MATCHES: keep what we have */
    if (RULE_IS_PRIVATE(rule))
        return CALLBACK_CONTINUE;
    fill_match(s, ctx, rule);
    s->n_matches++;
    if (s->cb && s->cb(&s->m, s->arg) != 0) {
        s->stop = true;
        return CALLBACK_ABORT;
    }
    return CALLBACK_CONTINUE;
}

yara_scanner *yara_scanner_new(yara_rules *rules)
{
    yara_scanner *s;

    if (!rules)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (yr_scanner_create(rules->y, &s->y) != ERROR_SUCCESS) {
        free(s);
        return NULL;
    }
    if ((rules->plain && yr_scanner_create(rules->plain, &s->plain) != ERROR_SUCCESS) ||
        (rules->always && yr_scanner_create(rules->always, &s->always) != ERROR_SUCCESS)) {
        if (s->plain)
            yr_scanner_destroy(s->plain);
        if (s->always)
            yr_scanner_destroy(s->always);
        yr_scanner_destroy(s->y);
        free(s);
        return NULL;
    }
    /* NULL when out of memory: the filter then passes every buffer on */
    s->pf_scratch = yara_prefilter_scratch_new(rules->pf);
    s->rules = yara_rules_ref(rules);
    for (int i = 0; i < 3; i++) {
        YR_SCANNER *y = i == 0 ? s->y : i == 1 ? s->plain : s->always;
        if (!y)
            continue;
        yr_scanner_set_callback(y, on_scan_msg, s);
        yr_scanner_set_timeout(y, YARA_DEFAULT_TIMEOUT);
        /* libyara's try/catch guards against SIGBUS on memory-mapped files; it installs
         * signal handlers around every scan (4 rt_sigaction + 2 rt_sigprocmask per scan).
         * The sensor only scans its own heap buffers, which cannot fault that way. */
        yr_scanner_set_flags(y, SCAN_FLAGS_NO_TRYCATCH);
    }
    return s;
}

void yara_scanner_free(yara_scanner *s)
{
    if (!s)
        return;
    yr_scanner_destroy(s->y);
    if (s->plain)
        yr_scanner_destroy(s->plain);
    if (s->always)
        yr_scanner_destroy(s->always);
    yara_prefilter_scratch_free(s->pf_scratch);
    yara_rules_unref(s->rules);
    free(s->cache);
    free(s);
}

fh_err yara_scanner_set_clean_cache(yara_scanner *s, uint32_t entries)
{
    uint32_t n = 1;

    if (!s)
        return FH_ERR_ARG;
    free(s->cache);
    s->cache = NULL;
    s->cache_mask = 0;
    if (entries == 0 || s->rules->clock)
        return FH_OK;
    if (entries > YARA_CLEAN_CACHE_MAX)
        entries = YARA_CLEAN_CACHE_MAX;
    while (n < entries)
        n <<= 1;
    s->cache = calloc(n, sizeof(*s->cache));
    if (!s->cache)
        return FH_ERR_NOMEM;
    s->cache_mask = n - 1;
    randombytes_buf(s->key, sizeof(s->key));
    return FH_OK;
}

bool yara_scanner_last_cached(const yara_scanner *s)
{
    return s && s->last_cached;
}

bool yara_scanner_last_prefiltered(const yara_scanner *s)
{
    return s && s->last_prefiltered;
}

/* The entry data[0..len) maps to; h gets its hash. */
static clean_entry *clean_slot(yara_scanner *s, const void *data, size_t len, uint8_t *h)
{
    uint64_t i;

    crypto_shorthash_siphashx24(h, data, len, s->key);
    memcpy(&i, h, sizeof(i));
    return &s->cache[i & s->cache_mask];
}

yara_rules *yara_scanner_rules(const yara_scanner *s)
{
    return s ? s->rules : NULL;
}

void yara_scanner_set_timeout(yara_scanner *s, int seconds)
{
    if (!s)
        return;
    yr_scanner_set_timeout(s->y, seconds > 0 ? seconds : 0);
    if (s->plain)
        yr_scanner_set_timeout(s->plain, seconds > 0 ? seconds : 0);
    if (s->always)
        yr_scanner_set_timeout(s->always, seconds > 0 ? seconds : 0);
}

uint64_t yara_scanner_full_scans(const yara_scanner *s)
{
    return s ? s->full_scans : 0;
}

/* True when data is of a format a file-format module reads: PE (and .NET), ELF, Mach-O
 * (thin, fat, either byte order), DEX. */
bool yara_format_data(const void *data, size_t len)
{
    const uint8_t *d = data;
    uint32_t be;

    if (len < 4)
        return len >= 2 && d[0] == 'M' && d[1] == 'Z';
    if (d[0] == 'M' && d[1] == 'Z')
        return true;
    be = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    return be == 0x7f454c46u ||                      /* ELF */
           be == 0xfeedfaceu || be == 0xfeedfacfu || /* Mach-O, big-endian */
           be == 0xcefaedfeu || be == 0xcffaedfeu || /* Mach-O, little-endian */
           be == 0xcafebabeu || be == 0xbebafecau || /* fat Mach-O (and Java classes) */
           be == 0x6465780au;                        /* "dex\n" */
}

int yara_scan(yara_scanner *s, const void *data, size_t len, yara_match_cb cb, void *arg)
{
    uint8_t h[crypto_shorthash_siphashx24_BYTES];
    clean_entry *e = NULL;
    int yrc;

    if (!s || (!data && len > 0))
        return FH_ERR_ARG;
    if (!data)
        data = "";
    s->last_cached = false;
    s->last_prefiltered = false;
    if (s->cache) {
        e = clean_slot(s, data, len, h);
        if (e->len1 == (uint64_t)len + 1 && memcmp(e->h, h, sizeof(h)) == 0) {
            s->last_cached = true;
            return 0;
        }
    }
    s->cb = cb;
    s->arg = arg;
    s->n_matches = 0;
    s->stop = false;
    bool format = yara_format_data(data, len);
    if (s->rules->pf && !format &&
        !yara_prefilter_may_match(s->rules->pf, s->pf_scratch, data, len)) {
        /* no rule that needs a string can match: only the others are run, if any */
        s->last_prefiltered = true;
        yrc = s->always ? yr_scanner_scan_mem(s->always, data, len) : ERROR_SUCCESS;
    } else if (s->plain && !format) {
        yrc = yr_scanner_scan_mem(s->plain, data, len);
    } else {
        s->full_scans++;
        yrc = yr_scanner_scan_mem(s->y, data, len);
    }
    s->cb = NULL;
    s->arg = NULL;
    if (e && yrc == ERROR_SUCCESS && s->n_matches == 0) {
        memcpy(e->h, h, sizeof(h));
        e->len1 = (uint64_t)len + 1;
    }
    switch (yrc) {
    case ERROR_SUCCESS:
        return s->n_matches;
    case ERROR_SCAN_TIMEOUT:
        return FH_ERR_LIMIT;
    case ERROR_INSUFFICIENT_MEMORY:
        return FH_ERR_NOMEM;
    default:
        return s->stop ? s->n_matches : FH_ERR_LIMIT;
    }
}

/* ---- JSON ------------------------------------------------------------------- */

void yara_match_to_json(jbuf *b, const yara_match *m, yara_direction dir, size_t excerpt_len)
{
    jbuf_obj_open(b, "yara");
    jbuf_str(b, "rule", m->rule);
    jbuf_str(b, "namespace", m->ns);
    jbuf_arr_open(b, "tags");
    for (size_t i = 0; i < m->n_tags; i++)
        jbuf_str(b, NULL, m->tags[i]);
    jbuf_arr_close(b);
    jbuf_obj_open(b, "meta");
    for (size_t i = 0; i < m->n_meta; i++) {
        const yara_meta *d = &m->meta[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(m->meta[j].key, d->key) == 0;
        if (seen)
            continue; /* YARA allows a key twice; JSON objects should not */
        if (d->type == YARA_META_STRING)
            jbuf_str(b, d->key, d->s);
        else if (d->type == YARA_META_BOOL)
            jbuf_bool(b, d->key, d->b);
        else
            jbuf_i64(b, d->key, d->i);
    }
    jbuf_obj_close(b);
    jbuf_arr_open(b, "strings");
    for (size_t i = 0; i < m->n_strings; i++) {
        const yara_string_match *s = &m->strings[i];
        jbuf_obj_open(b, NULL);
        jbuf_str(b, "id", s->id);
        jbuf_u64(b, "offset", s->offset);
        jbuf_u64(b, "length", s->length);
        if (excerpt_len > 0 && s->data) {
            size_t n = s->data_len < excerpt_len ? s->data_len : excerpt_len;
            jbuf_strn(b, "data", (const char *)s->data, n);
        }
        jbuf_obj_close(b);
    }
    jbuf_arr_close(b);
    if (m->strings_total > m->n_strings)
        jbuf_u64(b, "strings_total", m->strings_total);
    if (dir == YARA_DIR_TO_SERVER)
        jbuf_str(b, "direction", "to_server");
    else if (dir == YARA_DIR_TO_CLIENT)
        jbuf_str(b, "direction", "to_client");
    jbuf_obj_close(b);
}
