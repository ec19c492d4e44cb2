/*
 * yara_source.c - rule sources in memory, and the format-module split (yara_source.h).
 *
 * Why: libyara 4.2 builds a module's declarations again on every scan of a rule set that
 * imports it, before looking at the data. For "pe" that is ~240 us a scan (hundreds of
 * constants put into a structure one by one, each checked against the others), whatever
 * is scanned: a 60-byte DNS datagram costs as much as a PE file. A rule set with one
 * `import "pe"` made YARA 40 times slower on the bench mix.
 *
 * What: every source (top-level files and what they include) is read here, and kept. When
 * a source imports a file-format module (pe, elf, dotnet, macho, dex), a second, "plain"
 * set is compiled from the same sources with those imports blanked out; a rule that then
 * fails to compile (it names the module, or a rule that does) is blanked out too, and the
 * compile repeats. The plain set has every rule that does not need a format module; it is
 * scanned on data that is not of a format such a module reads. Data that is (MZ, ELF,
 * Mach-O, DEX: yara_scan.c) gets the full set. Line numbers are kept: blanking replaces
 * characters with spaces.
 *
 * The lexer only knows what it needs to find rules and imports: comments, "strings",
 * /regexps/ (after `=` or `matches`), and braces. It runs on sources libyara has already
 * compiled once, so it never sees text libyara would refuse.
 */
#include "yara_source.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;   /* the name libyara reports: a top-level path, or an include as written */
    char *path;  /* the file read */
    char *text;  /* as read */
    char *plain; /* text for the plain set (NULL until yara_sources_plain_init) */
    char *alt;   /* text for the "always" set (NULL until yara_sources_alt_init) */
    size_t len;
    bool format; /* imports a file-format module */
    bool clock;  /* imports "time": a result may change with the clock */
} ysrc;

struct yara_sources {
    ysrc *v;
    size_t n, cap;
    int serve; /* the texts handed out: 0 as read, 1 plain, 2 alt */
    char *err; /* the first include failure, for the caller's message */
};

static const char *const format_modules[] = {"pe", "elf", "dotnet", "macho", "dex"};

yara_sources *yara_sources_new(void)
{
    return calloc(1, sizeof(yara_sources));
}

void yara_sources_free(yara_sources *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].path);
        free(s->v[i].text);
        free(s->v[i].plain);
        free(s->v[i].alt);
    }
    free(s->v);
    free(s->err);
    free(s);
}

/* ---- the lexer ---------------------------------------------------------------- */

typedef enum { TOK_EOF, TOK_IDENT, TOK_STRING, TOK_OPEN, TOK_CLOSE, TOK_OTHER } tok_kind;

typedef struct {
    const char *t;
    size_t len, pos;
    tok_kind kind;
    size_t start, end; /* of the token */
    bool regex_ok;     /* a '/' here starts a regexp (after '=' or "matches") */
} lexer;

bool yara_text_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Skips to the closing quote (or slash) at t[pos..], honouring backslashes. */
static size_t skip_quoted(const char *t, size_t len, size_t pos, char close)
{
    while (pos < len && t[pos] != close && t[pos] != '\n') {
        if (t[pos] == '\\' && pos + 1 < len)
            pos++;
        pos++;
    }
    return pos < len && t[pos] == close ? pos + 1 : pos;
}

size_t yara_text_skip_space(const char *t, size_t len, size_t pos)
{
    for (;;) {
        while (pos < len && (t[pos] == ' ' || t[pos] == '\t' || t[pos] == '\r' || t[pos] == '\n'))
            pos++;
        if (pos + 1 < len && t[pos] == '/' && t[pos + 1] == '/') {
            while (pos < len && t[pos] != '\n')
                pos++;
            continue;
        }
        if (pos + 1 < len && t[pos] == '/' && t[pos + 1] == '*') {
            size_t i = pos + 2;
            while (i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'))
                i++;
            pos = i + 1 < len ? i + 2 : len;
            continue;
        }
        return pos;
    }
}

size_t yara_text_quoted_end(const char *t, size_t len, size_t pos)
{
    return skip_quoted(t, len, pos + 1, t[pos]);
}

static tok_kind lex_next(lexer *x)
{
    const char *t = x->t;

    x->pos = yara_text_skip_space(t, x->len, x->pos);
    x->start = x->pos;
    if (x->pos >= x->len)
        return x->kind = TOK_EOF;
    char c = t[x->pos];
    bool regex_ok = x->regex_ok;

    x->regex_ok = false;
    if (yara_text_ident_char(c)) {
        while (x->pos < x->len && yara_text_ident_char(t[x->pos]))
            x->pos++;
        x->end = x->pos;
        x->regex_ok = x->end - x->start == 7 && memcmp(t + x->start, "matches", 7) == 0;
        return x->kind = TOK_IDENT;
    }
    if (c == '"') {
        x->pos = skip_quoted(t, x->len, x->pos + 1, '"');
        x->end = x->pos;
        return x->kind = TOK_STRING;
    }
    if (c == '/' && regex_ok) {
        x->pos = skip_quoted(t, x->len, x->pos + 1, '/');
        x->end = x->pos;
        return x->kind = TOK_OTHER;
    }
    x->pos++;
    x->end = x->pos;
    x->regex_ok = c == '=';
    return x->kind = c == '{' ? TOK_OPEN : c == '}' ? TOK_CLOSE : TOK_OTHER;
}

static bool tok_is(const lexer *x, const char *word)
{
    size_t n = strlen(word);

    return x->kind == TOK_IDENT && x->end - x->start == n && memcmp(x->t + x->start, word, n) == 0;
}

/* True when the string token at [start, end) (its quotes included) is "name". */
static bool is_string(const char *t, size_t start, size_t end, const char *name)
{
    size_t n = strlen(name);

    return end >= start + 2 && end - start == n + 2 && memcmp(t + start + 1, name, n) == 0;
}

static bool is_format_module(const char *t, size_t start, size_t end)
{
    for (size_t i = 0; i < sizeof(format_modules) / sizeof(format_modules[0]); i++)
        if (is_string(t, start, end, format_modules[i]))
            return true;
    return false;
}

static void blank(char *t, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (t[i] != '\n')
            t[i] = ' ';
}

static unsigned line_of(const char *t, size_t off)
{
    unsigned line = 1;

    for (size_t i = 0; i < off; i++)
        line += t[i] == '\n';
    return line;
}

/*
 * Walks the imports at the top level of text: those of format modules are blanked (when
 * blank_imports) and counted; *clock (when not NULL) tells whether "time" is imported.
 */
static unsigned walk_imports(char *text, size_t len, bool blank_imports, bool *clock)
{
    lexer x = {.t = text, .len = len};
    unsigned imports = 0;
    int depth = 0;

    while (lex_next(&x) != TOK_EOF) {
        if (depth == 0 && tok_is(&x, "import")) {
            size_t s = x.start;
            if (lex_next(&x) != TOK_STRING)
                continue;
            if (is_format_module(text, x.start, x.end)) {
                imports++;
                if (blank_imports)
                    blank(text, s, x.end);
            } else if (clock && is_string(text, x.start, x.end, "time")) {
                *clock = true;
            }
            continue;
        }
        if (x.kind == TOK_OPEN)
            depth++;
        else if (x.kind == TOK_CLOSE && depth > 0)
            depth--;
    }
    return imports;
}

/* A top-level rule as each_rule() hands it out: its name and its span in the text, from
 * its first keyword (private, global, rule) to its closing brace. */
typedef struct {
    char name[256];
    size_t start, end;
} rule_span;

/* Calls fn for every top-level rule of text, in order, until fn returns true. */
static void each_rule(char *text, size_t len, bool (*fn)(char *, const rule_span *, void *),
                      void *arg)
{
    lexer x = {.t = text, .len = len};
    rule_span r = {.start = 0};
    bool in_head = false, named = false;
    int depth = 0;

    while (lex_next(&x) != TOK_EOF) {
        bool keyword = tok_is(&x, "rule") || tok_is(&x, "private") || tok_is(&x, "global");
        if (depth == 0 && !in_head && keyword) {
            in_head = true;
            named = false;
            r.start = x.start;
            continue;
        }
        if (depth == 0 && in_head && !named && x.kind == TOK_IDENT && !keyword) {
            size_t n = x.end - x.start < sizeof(r.name) - 1 ? x.end - x.start : sizeof(r.name) - 1;
            memcpy(r.name, text + x.start, n);
            r.name[n] = '\0';
            named = true;
            continue;
        }
        if (x.kind == TOK_OPEN) {
            depth++;
            in_head = false;
        } else if (x.kind == TOK_CLOSE && depth > 0 && --depth == 0) {
            r.end = x.end;
            if (fn(text, &r, arg))
                return;
        }
    }
}

/* ---- reading and including -------------------------------------------------- */

static ysrc *find_key(yara_sources *s, const char *key)
{
    for (size_t i = s->n; i-- > 0;)
        if (strcmp(s->v[i].key, key) == 0)
            return &s->v[i];
    return NULL;
}

static ysrc *find_path(yara_sources *s, const char *path)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].path, path) == 0)
            return &s->v[i];
    return NULL;
}

static void set_err(yara_sources *s, const char *path, int e)
{
    char buf[4200];

    if (s->err)
        return;
    snprintf(buf, sizeof(buf), "cannot read \"%s\": %s", path, strerror(e));
    s->err = strdup(buf);
}

/* Reads path once (its key: the name libyara reports it by); NULL on failure. */
static ysrc *load(yara_sources *s, const char *key, const char *path)
{
    ysrc *r = find_path(s, path);
    FILE *f;
    char *text = NULL;
    size_t len = 0, cap = 0;

    if (r) {
        if (strcmp(r->key, key) != 0) { /* the same file included under another name */
            char *k = strdup(key);
            if (!k)
                return NULL;
            free(r->key);
            r->key = k;
        }
        return r;
    }
    f = fopen(path, "r");
    if (!f) {
        set_err(s, path, errno);
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 8192;
            char *nt = realloc(text, nc);
            if (!nt) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = nt;
            cap = nc;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        set_err(s, path, errno ? errno : EIO);
        free(text);
        fclose(f);
        return NULL;
    }
    fclose(f);
    text[len] = '\0';
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        ysrc *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv) {
            free(text);
            return NULL;
        }
        s->v = nv;
        s->cap = nc;
    }
    r = &s->v[s->n];
    memset(r, 0, sizeof(*r));
    r->key = strdup(key);
    r->path = strdup(path);
    if (!r->key || !r->path) {
        free(r->key);
        free(r->path);
        free(text);
        return NULL;
    }
    r->text = text;
    r->len = len;
    r->format = walk_imports(text, len, false, &r->clock) > 0;
    s->n++;
    return r;
}

/* The text of r handed to libyara now. */
static const char *served(const yara_sources *s, const ysrc *r)
{
    if (s->serve == 1 && r->plain)
        return r->plain;
    if (s->serve == 2 && r->alt)
        return r->alt;
    return r->text;
}

/* An included name resolved as libyara does: relative to the including file's directory. */
static const char *on_include(const char *name, const char *calling, const char *ns, void *user)
{
    yara_sources *s = user;
    char path[4096], dir[4096];
    const ysrc *parent = calling ? find_key(s, calling) : NULL;
    ysrc *r;

    (void)ns;
    if (name[0] == '/' || !calling) {
        snprintf(path, sizeof(path), "%s", name);
    } else {
        snprintf(dir, sizeof(dir), "%s", parent ? parent->path : calling);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dirname(dir), name) >= sizeof(path))
            return NULL;
    }
    r = load(s, name, path);
    if (!r)
        return NULL;
    return strdup(served(s, r));
}

static void on_include_free(const char *p, void *user)
{
    (void)user;
    free((void *)p);
}

int yara_sources_add(yara_sources *s, YR_COMPILER *c, const char *path, const char *ns)
{
    ysrc *r = load(s, path, path);
    const char *t;
    FILE *f;
    int errors;

    if (!r)
        return -1;
    yr_compiler_set_include_callback(c, on_include, on_include_free, s);
    t = served(s, r);
    f = fmemopen((void *)t, strlen(t) ? strlen(t) : 1, "r");
    if (!f)
        return -1;
    errors = yr_compiler_add_file(c, f, ns, path);
    fclose(f);
    return errors;
}

const char *yara_sources_error(const yara_sources *s)
{
    return s->err;
}

bool yara_sources_have_format(const yara_sources *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].format)
            return true;
    return false;
}

bool yara_sources_use_clock(const yara_sources *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].clock)
            return true;
    return false;
}

/* A copy of r's text with its format imports blanked out, or NULL. */
static char *without_format(const ysrc *r)
{
    char *t = malloc(r->len + 1);

    if (!t)
        return NULL;
    memcpy(t, r->text, r->len + 1);
    if (r->format)
        walk_imports(t, r->len, true, NULL);
    return t;
}

bool yara_sources_plain_init(yara_sources *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!(s->v[i].plain = without_format(&s->v[i])))
            return false;
    s->serve = 1;
    return true;
}

typedef struct {
    bool (*keep)(const char *name, void *arg);
    void *arg;
} keep_walk;

static bool blank_unkept(char *text, const rule_span *r, void *arg)
{
    keep_walk *k = arg;

    if (!k->keep(r->name, k->arg))
        blank(text, r->start, r->end);
    return false;
}

bool yara_sources_alt_init(yara_sources *s, bool (*keep)(const char *name, void *arg), void *arg)
{
    keep_walk k = {keep, arg};

    for (size_t i = 0; i < s->n; i++) {
        ysrc *r = &s->v[i];

        free(r->alt);
        if (!(r->alt = without_format(r)))
            return false;
        each_rule(r->alt, r->len, blank_unkept, &k);
    }
    s->serve = 2;
    return true;
}

typedef struct {
    unsigned line;
    bool hit;
} line_walk;

static bool blank_at_line(char *text, const rule_span *r, void *arg)
{
    line_walk *w = arg;

    if (w->line < line_of(text, r->start) || w->line > line_of(text, r->end))
        return false;
    blank(text, r->start, r->end);
    w->hit = true;
    return true;
}

bool yara_sources_drop_rule(yara_sources *s, const char *key, int line)
{
    ysrc *r = key ? find_key(s, key) : NULL;
    char *t = r && s->serve == 1 ? r->plain : r && s->serve == 2 ? r->alt : NULL;
    line_walk w = {.line = (unsigned)line};

    if (!t || line <= 0)
        return false;
    each_rule(t, r->len, blank_at_line, &w);
    return w.hit;
}

size_t yara_sources_count(const yara_sources *s)
{
    return s->n;
}

const char *yara_sources_text(const yara_sources *s, size_t i, size_t *len)
{
    if (i >= s->n)
        return NULL;
    *len = s->v[i].len;
    return s->v[i].text;
}
