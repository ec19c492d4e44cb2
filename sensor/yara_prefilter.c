/*
 * yara_prefilter.c - which buffers cannot match any rule of a YARA set (yara_prefilter.h).
 *
 * Why: libyara 4.2 runs the whole set on every buffer: Aho-Corasick over the data, then
 * every rule's condition, 20 to 30 us a scan with a rule set of a few hundred rules
 * whatever the buffer holds. On the bench mix three scans in four find no string of any
 * rule at all, yet cost half of YARA's time.
 *
 * What: the rule sources are read once more (after libyara compiled them, so they are
 * valid YARA) and two things are worked out:
 *
 * - for every string, literals one of which must be in the data for the string to match:
 *   the text itself (in its ascii and wide forms, caseless with nocase); for a hex string
 *   its longest run of fixed bytes; for a regexp the longest run of plain characters that
 *   every match contains, one per top-level alternative. Strings with no such literal
 *   (xor, base64, a regexp of classes only) are "unknown": they may match anywhere.
 * - for every rule, whether its condition can only be true when one of a set of strings
 *   matched: `$a`, `$a at/in ...`, `#a > 0`, `N of (...)` with N >= 1, a reference to a
 *   rule that needs strings; `A and B` needs what either needs, `A or B` the union of
 *   both. Anything else (`not`, arithmetic, `filesize`, modules, `for`) needs nothing:
 *   the rule may match on data with no string in it, and is "always" run.
 *
 * The literals of the strings the rules need go into one Hyperscan literal database.
 * A buffer in which Hyperscan finds none of them cannot match any rule that needs
 * strings, so libyara only has to run the "always" rules on it (yara_scan.c: a set
 * compiled with the other rules blanked out), or nothing when there are none. A buffer
 * in which it finds one goes to libyara whole, as before: the filter never decides that
 * a rule matches, only that no rule can.
 *
 * The filter errs one way only: a literal is a necessary part of its string, and a need
 * is only claimed for a condition of the shapes above. Anything the parser does not
 * recognise counts as "needs nothing". A test (tests/unit/test_yara.c) checks against
 * libyara that no buffer that matches is filtered out.
 */
#include "yara_prefilter.h"
#include "yara_source.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

/* ---- lexer --------------------------------------------------------------------------- */

typedef enum {
    T_EOF,
    T_IDENT,
    T_NUM,
    T_STR,
    T_REGEX,
    T_SVAR,   /* $name, $name*, $, $* */
    T_SCOUNT, /* #name */
    T_SOFF,   /* @name */
    T_SLEN,   /* !name */
    T_LPAR,
    T_RPAR,
    T_LBRACE,
    T_RBRACE,
    T_COLON,
    T_COMMA,
    T_OP,
} tkind;

typedef struct {
    tkind k;
    const char *p;
    size_t n;
} tok;

typedef struct {
    const char *t;
    size_t len, pos;
    bool after_matches; /* a '/' starts a regexp */
} lex;

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void skip_space(lex *x)
{
    x->pos = yara_text_skip_space(x->t, x->len, x->pos);
}

static size_t quoted_end(const char *t, size_t len, size_t pos)
{
    return yara_text_quoted_end(t, len, pos);
}

static tok lex_next(lex *x)
{
    const char *t = x->t;
    tok k = {T_EOF, NULL, 0};
    bool matches = x->after_matches;
    size_t s;

    x->after_matches = false;
    skip_space(x);
    if (x->pos >= x->len)
        return k;
    s = x->pos;
    k.p = t + s;
    char c = t[s];
    if (c >= '0' && c <= '9') {
        x->pos++;
        while (x->pos < x->len &&
               (id_char(t[x->pos]) || (t[x->pos] == '.' && x->pos + 1 < x->len &&
                                       t[x->pos + 1] >= '0' && t[x->pos + 1] <= '9')))
            x->pos++;
        k.k = T_NUM;
    } else if (id_char(c)) {
        while (x->pos < x->len && id_char(t[x->pos]))
            x->pos++;
        k.k = T_IDENT;
        x->after_matches = x->pos - s == 7 && memcmp(t + s, "matches", 7) == 0;
    } else if (c == '"') {
        x->pos = quoted_end(t, x->len, s);
        k.k = T_STR;
    } else if (c == '/' && matches) {
        x->pos = quoted_end(t, x->len, s);
        while (x->pos < x->len && (t[x->pos] == 'i' || t[x->pos] == 's'))
            x->pos++;
        k.k = T_REGEX;
    } else if ((c == '$' || c == '#' || c == '@' || c == '!') &&
               (c == '$' || (s + 1 < x->len && id_char(t[s + 1])))) {
        x->pos++;
        while (x->pos < x->len && id_char(t[x->pos]))
            x->pos++;
        if (c == '$' && x->pos < x->len && t[x->pos] == '*')
            x->pos++;
        k.k = c == '$' ? T_SVAR : c == '#' ? T_SCOUNT : c == '@' ? T_SOFF : T_SLEN;
    } else {
        static const char *const two[] = {"==", "!=", "<=", ">=", "<<", ">>", ".."};
        x->pos++;
        k.k = c == '('   ? T_LPAR
              : c == ')' ? T_RPAR
              : c == '{' ? T_LBRACE
              : c == '}' ? T_RBRACE
              : c == ':' ? T_COLON
              : c == ',' ? T_COMMA
                         : T_OP;
        if (k.k == T_OP && x->pos < x->len)
            for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
                if (c == two[i][0] && t[x->pos] == two[i][1]) {
                    x->pos++;
                    break;
                }
    }
    k.n = x->pos - s;
    return k;
}

static bool tok_is(tok k, const char *w)
{
    size_t n = strlen(w);
    return k.k == T_IDENT && k.n == n && memcmp(k.p, w, n) == 0;
}

static bool op_is(tok k, const char *w)
{
    size_t n = strlen(w);
    return k.k == T_OP && k.n == n && memcmp(k.p, w, n) == 0;
}

/* ---- the model ----------------------------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t n;
    bool caseless;
} lit;

typedef struct {
    char *name; /* without the '$'; "" for an anonymous string */
    lit *lits;  /* one of these is in every match */
    size_t n_lits;
    bool unknown; /* no literal known: may match anywhere */
    bool used;    /* a public rule needs it */
} pstr;

/*
 * What a condition needs, as a formula over "a literal of string s is in the data": the
 * nodes of all rules in one array (shared: a rule named by others is one node), with the
 * two constants first.
 */
enum { F_TRUE, F_FALSE, F_STR, F_AND, F_OR, F_ATLEAST };

typedef struct {
    uint8_t op;
    uint32_t k; /* F_ATLEAST: how many of the kids */
    uint32_t a; /* F_STR: the string; F_AND, F_OR, F_ATLEAST: the first kid in kids[] */
    uint32_t n; /* kids */
} fnode;

#define NODE_TRUE  0u
#define NODE_FALSE 1u

typedef struct {
    char *name;
    bool private_, global_;
    bool keep;     /* an "always" rule, or one such a rule needs (yara_prefilter_keep) */
    size_t s0, s1; /* its strings */
    size_t c0, c1; /* its condition tokens */
    int state;     /* 0 not analysed, 1 in progress, 2 done */
    uint32_t node; /* what its condition needs */
} prule;

typedef struct {
    pstr *s;
    size_t n_s, cap_s;
    prule *r;
    size_t n_r, cap_r;
    tok *t;
    size_t n_t, cap_t;
    fnode *f;
    size_t n_f, cap_f;
    uint32_t *kids;
    size_t n_k, cap_k;
    bool nomem;
} model;

struct yara_prefilter {
    hs_database_t *db;
    fnode *f; /* the formulas (model.f, model.kids) */
    uint32_t *kids;
    uint32_t *roots; /* the public rules' formulas, but the "always" ones */
    size_t n_roots;
    uint32_t *lit_str; /* literal id -> string */
    size_t n_strings;
    char **always; /* names of the public rules that need nothing */
    unsigned n_always;
    char **keep; /* the rules the "always" set must hold */
    unsigned n_keep;
};

/* Per-thread: Hyperscan's scratch and the strings found in the buffer being looked at. */
typedef struct {
    hs_scratch_t *hs;
    uint8_t *present; /* per string */
    uint32_t *set;    /* strings marked present, to clear */
    size_t n_set;
    const yara_prefilter *p;
} pf_scratch;

static void *grow(void *v, size_t *cap, size_t n, size_t size, bool *nomem)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : 64;
    void *nv = realloc(v, nc * size);
    if (!nv) {
        *nomem = true;
        return NULL;
    }
    *cap = nc;
    return nv;
}

/* ---- literals of a string --------------------------------------------------------- */

typedef struct {
    uint8_t b[256];
    size_t n;
} run;

static void run_push(run *cur, run *best, uint8_t c)
{
    if (cur->n < sizeof(cur->b))
        cur->b[cur->n++] = c;
    if (cur->n > best->n)
        *best = *cur;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool add_lit(model *m, pstr *s, const uint8_t *b, size_t n, bool caseless)
{
    lit *nl = realloc(s->lits, (s->n_lits + 1) * sizeof(*nl));
    if (!nl) {
        m->nomem = true;
        return false;
    }
    s->lits = nl;
    nl[s->n_lits].b = malloc(n ? n : 1);
    if (!nl[s->n_lits].b) {
        m->nomem = true;
        return false;
    }
    memcpy(nl[s->n_lits].b, b, n);
    nl[s->n_lits].n = n;
    nl[s->n_lits].caseless = caseless;
    s->n_lits++;
    return true;
}

/* Adds b[0..n) in the forms the modifiers ask for (ascii, wide). */
static void add_forms(model *m, pstr *s, const uint8_t *b, size_t n, bool ascii, bool wide,
                      bool caseless)
{
    if (n == 0) {
        s->unknown = true;
        return;
    }
    if (ascii)
        add_lit(m, s, b, n, caseless);
    if (wide) {
        uint8_t w[512];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 2 <= sizeof(w); i++) {
            w[k++] = b[i];
            w[k++] = 0;
        }
        add_lit(m, s, w, k, caseless);
    }
}

/* Decodes the text string t[0..n) (without quotes); false on an escape it does not know. */
static bool text_bytes(const char *t, size_t n, run *out)
{
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)t[i];
        if (c == '\\') {
            if (++i >= n)
                return false;
            switch (t[i]) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '"':
            case '\\':
                c = (uint8_t)t[i];
                break;
            case 'x':
                if (i + 2 >= n || hexval(t[i + 1]) < 0 || hexval(t[i + 2]) < 0)
                    return false;
                c = (uint8_t)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
                i += 2;
                break;
            default:
                return false;
            }
        }
        if (out->n == sizeof(out->b))
            return true; /* a prefix of the text is still in every match */
        out->b[out->n++] = c;
    }
    return true;
}

/* The longest run of fixed bytes of the hex string t[0..n) (without braces). */
static void hex_best(const char *t, size_t n, run *best)
{
    run cur = {.n = 0};
    int depth = 0;

    best->n = 0;
    for (size_t i = 0; i < n;) {
        char c = t[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else if (c == '/' && i + 1 < n && (t[i + 1] == '/' || t[i + 1] == '*')) {
            if (t[i + 1] == '/') {
                while (i < n && t[i] != '\n')
                    i++;
            } else {
                i += 2;
                while (i + 1 < n && !(t[i] == '*' && t[i + 1] == '/'))
                    i++;
                i += 2;
            }
        } else if (c == '(') {
            depth++;
            cur.n = 0;
            i++;
        } else if (c == ')') {
            depth--;
            cur.n = 0;
            i++;
        } else if (c == '[') {
            while (i < n && t[i] != ']')
                i++;
            i++;
            cur.n = 0;
        } else if (i + 1 < n && hexval(c) >= 0 && hexval(t[i + 1]) >= 0) {
            if (depth == 0)
                run_push(&cur, best, (uint8_t)(hexval(c) * 16 + hexval(t[i + 1])));
            i += 2;
        } else {
            /* ??, a nibble wildcard, ~, |: not a fixed byte */
            cur.n = 0;
            i++;
        }
    }
}

/* The end of the group or class starting at re[i] ('(' or '['). */
static size_t re_skip(const char *re, size_t n, size_t i)
{
    if (re[i] == '[') {
        i++;
        if (i < n && re[i] == '^')
            i++;
        if (i < n && re[i] == ']')
            i++;
        while (i < n && re[i] != ']') {
            if (re[i] == '\\')
                i++;
            i++;
        }
        return i < n ? i + 1 : n;
    }
    int depth = 0;
    while (i < n) {
        if (re[i] == '\\') {
            i += 2;
            continue;
        }
        if (re[i] == '[') {
            i = re_skip(re, n, i);
            continue;
        }
        if (re[i] == '(')
            depth++;
        else if (re[i] == ')' && --depth == 0)
            return i + 1;
        i++;
    }
    return n;
}

/* Reads a quantifier at re[*i]; returns its minimum count (0 when the atom is optional), or
 * -1 when there is no quantifier. */
static long re_quant(const char *re, size_t n, size_t *i)
{
    long min = -1;

    if (*i >= n)
        return -1;
    if (re[*i] == '*' || re[*i] == '?') {
        min = 0;
        (*i)++;
    } else if (re[*i] == '+') {
        min = 1;
        (*i)++;
    } else if (re[*i] == '{') {
        size_t j = *i + 1;
        long v = 0;
        bool digits = false;
        while (j < n && re[j] >= '0' && re[j] <= '9') {
            v = v * 10 + (re[j] - '0');
            if (v > 100000)
                v = 100000;
            j++;
            digits = true;
        }
        if (j < n && (re[j] == ',' || re[j] == '}')) {
            while (j < n && re[j] != '}')
                j++;
            if (j < n) {
                *i = j + 1;
                min = digits ? v : 0;
            }
        }
    }
    if (min >= 0 && *i < n && re[*i] == '?')
        (*i)++; /* lazy */
    return min;
}

/* Adds to s the best literal of each top-level alternative of the regexp re[0..n). */
static void regex_lits(model *m, pstr *s, const char *re, size_t n, bool ascii, bool wide,
                       bool caseless)
{
    size_t a = 0;

    while (a <= n) {
        /* one alternative: [a, b) */
        size_t b = a;
        while (b < n && re[b] != '|') {
            if (re[b] == '\\')
                b += 2;
            else if (re[b] == '(' || re[b] == '[')
                b = re_skip(re, n, b);
            else
                b++;
        }
        if (b > n)
            b = n;
        run cur = {.n = 0}, best = {.n = 0};
        for (size_t i = a; i < b;) {
            int c = -1; /* a literal character, or -1 */
            if (re[i] == '\\' && i + 1 < b) {
                char e = re[i + 1];
                i += 2;
                if (e == 'x' && i + 1 < b && hexval(re[i]) >= 0 && hexval(re[i + 1]) >= 0) {
                    c = hexval(re[i]) * 16 + hexval(re[i + 1]);
                    i += 2;
                } else if (e == 'n') {
                    c = '\n';
                } else if (e == 't') {
                    c = '\t';
                } else if (e == 'r') {
                    c = '\r';
                } else if (e == 'f') {
                    c = '\f';
                } else if (e == 'a') {
                    c = '\a';
                } else if (!id_char(e)) {
                    c = (uint8_t)e; /* an escaped punctuation character */
                }
            } else if (re[i] == '(' || re[i] == '[') {
                i = re_skip(re, b, i);
            } else if (re[i] == '.' || re[i] == '^' || re[i] == '$') {
                i++;
            } else {
                c = (uint8_t)re[i];
                i++;
            }
            long q = re_quant(re, b, &i);
            if (c < 0 || q == 0) {
                cur.n = 0;
                continue;
            }
            run_push(&cur, &best, (uint8_t)c);
            if (q > 0)
                cur.n = 0; /* repeated: what follows is not next to it */
        }
        if (best.n == 0) {
            s->unknown = true;
            return;
        }
        add_forms(m, s, best.b, best.n, ascii, wide, caseless);
        a = b + 1;
    }
}

/* ---- parsing the sources ----------------------------------------------------------- */

static char *dup_n(model *m, const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        m->nomem = true;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

/* Parses the strings section at x->pos (up to "condition:"), adding to m. */
static void parse_strings(model *m, lex *x)
{
    const char *t = x->t;

    for (;;) {
        skip_space(x);
        if (x->pos >= x->len || t[x->pos] != '$')
            return;
        size_t ns = ++x->pos;
        while (x->pos < x->len && id_char(t[x->pos]))
            x->pos++;
        pstr *s;
        m->s = grow(m->s, &m->cap_s, m->n_s, sizeof(*m->s), &m->nomem);
        if (!m->s)
            return;
        s = &m->s[m->n_s];
        memset(s, 0, sizeof(*s));
        s->name = dup_n(m, t + ns, x->pos - ns);
        if (!s->name)
            return;
        m->n_s++;
        skip_space(x);
        if (x->pos >= x->len || t[x->pos] != '=') {
            s->unknown = true;
            return;
        }
        x->pos++;
        skip_space(x);
        if (x->pos >= x->len) {
            s->unknown = true;
            return;
        }
        char kind = t[x->pos];
        size_t v0 = x->pos, v1;
        bool re_i = false;
        if (kind == '"' || kind == '/') {
            x->pos = quoted_end(t, x->len, v0);
            v1 = x->pos;
            while (kind == '/' && x->pos < x->len && (t[x->pos] == 'i' || t[x->pos] == 's'))
                re_i |= t[x->pos++] == 'i';
        } else if (kind == '{') {
            while (x->pos < x->len && t[x->pos] != '}')
                x->pos++;
            v1 = x->pos < x->len ? ++x->pos : x->pos;
        } else {
            s->unknown = true;
            return;
        }
        /* modifiers */
        bool ascii = false, wide = false, nocase = re_i, opaque = false;
        for (;;) {
            size_t save = x->pos;
            skip_space(x);
            if (x->pos >= x->len || !id_char(t[x->pos]) || t[x->pos] == '$') {
                x->pos = save;
                break;
            }
            size_t w0 = x->pos;
            while (x->pos < x->len && id_char(t[x->pos]))
                x->pos++;
            size_t wn = x->pos - w0;
            if (wn == 9 && memcmp(t + w0, "condition", 9) == 0) {
                x->pos = save;
                break;
            }
            if (wn == 5 && memcmp(t + w0, "ascii", 5) == 0)
                ascii = true;
            else if (wn == 4 && memcmp(t + w0, "wide", 4) == 0)
                wide = true;
            else if (wn == 6 && memcmp(t + w0, "nocase", 6) == 0)
                nocase = true;
            else if (!((wn == 8 && memcmp(t + w0, "fullword", 8) == 0) ||
                       (wn == 7 && memcmp(t + w0, "private", 7) == 0)))
                opaque = true; /* xor, base64, base64wide, or one this parser does not know */
            skip_space(x);
            if (x->pos < x->len && t[x->pos] == '(') { /* xor(1-255), base64("...") */
                int d = 0;
                while (x->pos < x->len) {
                    if (t[x->pos] == '"') {
                        x->pos = quoted_end(t, x->len, x->pos);
                        continue;
                    }
                    if (t[x->pos] == '(')
                        d++;
                    else if (t[x->pos] == ')' && --d == 0) {
                        x->pos++;
                        break;
                    }
                    x->pos++;
                }
            }
        }
        if (!wide)
            ascii = true;
        if (opaque) {
            s->unknown = true;
            continue;
        }
        run r;
        if (kind == '"') {
            if (v1 < v0 + 2 || !text_bytes(t + v0 + 1, v1 - v0 - 2, &r))
                s->unknown = true;
            else
                add_forms(m, s, r.b, r.n, ascii, wide, nocase);
        } else if (kind == '{') {
            hex_best(t + v0 + 1, v1 - v0 - 2, &r);
            add_forms(m, s, r.b, r.n, true, false, false);
        } else {
            if (v1 < v0 + 2)
                s->unknown = true;
            else
                regex_lits(m, s, t + v0 + 1, v1 - v0 - 2, ascii, wide, nocase);
        }
    }
}

static void add_tok(model *m, tok k)
{
    m->t = grow(m->t, &m->cap_t, m->n_t, sizeof(*m->t), &m->nomem);
    if (m->t)
        m->t[m->n_t++] = k;
}

/* Parses one rule body after its '{'. */
static void parse_body(model *m, lex *x, prule *r)
{
    for (;;) {
        tok k = lex_next(x);
        if (k.k == T_EOF || k.k == T_RBRACE)
            return;
        if (k.k != T_IDENT)
            continue;
        size_t save = x->pos;
        tok c = lex_next(x);
        if (c.k != T_COLON) {
            x->pos = save;
            continue;
        }
        if (tok_is(k, "strings")) {
            r->s0 = m->n_s;
            parse_strings(m, x);
            r->s1 = m->n_s;
        } else if (tok_is(k, "condition")) {
            int depth = 0;
            r->c0 = m->n_t;
            for (;;) {
                tok t = lex_next(x);
                if (t.k == T_EOF || (t.k == T_RBRACE && depth == 0))
                    break;
                depth += t.k == T_LPAR ? 1 : t.k == T_RPAR ? -1 : 0;
                add_tok(m, t);
            }
            r->c1 = m->n_t;
            return;
        }
    }
}

static void parse_text(model *m, const char *text, size_t len)
{
    lex x = {.t = text, .len = len};
    bool private_ = false, global_ = false;

    while (!m->nomem) {
        tok k = lex_next(&x);
        if (k.k == T_EOF)
            return;
        if (tok_is(k, "import") || tok_is(k, "include")) {
            lex_next(&x);
            continue;
        }
        if (tok_is(k, "private")) {
            private_ = true;
            continue;
        }
        if (tok_is(k, "global")) {
            global_ = true;
            continue;
        }
        if (!tok_is(k, "rule")) {
            private_ = global_ = false;
            continue;
        }
        tok name = lex_next(&x);
        if (name.k != T_IDENT)
            continue;
        m->r = grow(m->r, &m->cap_r, m->n_r, sizeof(*m->r), &m->nomem);
        if (!m->r)
            return;
        prule *r = &m->r[m->n_r];
        memset(r, 0, sizeof(*r));
        r->name = dup_n(m, name.p, name.n);
        if (!r->name)
            return;
        r->private_ = private_;
        r->global_ = global_;
        r->s0 = r->s1 = m->n_s;
        r->c0 = r->c1 = m->n_t;
        private_ = global_ = false;
        m->n_r++;
        for (;;) { /* tags up to '{' */
            tok t = lex_next(&x);
            if (t.k == T_EOF)
                return;
            if (t.k == T_LBRACE)
                break;
        }
        parse_body(m, &x, &m->r[m->n_r - 1]);
    }
}

/* ---- needs ------------------------------------------------------------------------- */

static uint32_t node_new(model *m, uint8_t op, uint32_t k, uint32_t a, const uint32_t *kids,
                         uint32_t n)
{
    if (m->n_f == 0) { /* the constants */
        m->f = grow(m->f, &m->cap_f, 0, sizeof(*m->f), &m->nomem);
        if (!m->f)
            return NODE_TRUE;
        m->f[NODE_TRUE] = (fnode){.op = F_TRUE};
        m->f[NODE_FALSE] = (fnode){.op = F_FALSE};
        m->n_f = 2;
    }
    m->f = grow(m->f, &m->cap_f, m->n_f, sizeof(*m->f), &m->nomem);
    if (!m->f)
        return NODE_TRUE;
    if (n > 0) {
        while (m->n_k + n > m->cap_k) {
            m->kids = grow(m->kids, &m->cap_k, m->cap_k, sizeof(*m->kids), &m->nomem);
            if (!m->kids)
                return NODE_TRUE;
        }
        memcpy(m->kids + m->n_k, kids, n * sizeof(*kids));
        a = (uint32_t)m->n_k;
        m->n_k += n;
    }
    m->f[m->n_f] = (fnode){.op = op, .k = k, .a = a, .n = n};
    return (uint32_t)m->n_f++;
}

static uint32_t node_str(model *m, size_t s)
{
    return m->s[s].unknown ? NODE_TRUE : node_new(m, F_STR, 0, (uint32_t)s, NULL, 0);
}

/* AND (and = true) or OR of kids[0..n): constants folded. */
static uint32_t node_junction(model *m, bool and, uint32_t *kids, uint32_t n)
{
    uint32_t keep = 0;
    uint32_t absorbing = and? NODE_FALSE : NODE_TRUE, neutral = and? NODE_TRUE : NODE_FALSE;

    for (uint32_t i = 0; i < n; i++) {
        if (kids[i] == absorbing)
            return absorbing;
        if (kids[i] != neutral)
            kids[keep++] = kids[i];
    }
    if (keep == 0)
        return neutral;
    if (keep == 1)
        return kids[0];
    return node_new(m, and? F_AND : F_OR, 0, 0, kids, keep);
}

/* At least q of the strings ids[0..n) (sorted, unique): strings with no literal count as
 * found, so q - (their number) of the others are needed. */
static uint32_t node_atleast(model *m, size_t q, const size_t *ids, size_t n)
{
    uint32_t *kids = malloc((n ? n : 1) * sizeof(*kids));
    uint32_t nk = 0, r;
    size_t u = 0;

    if (!kids) {
        m->nomem = true;
        return NODE_TRUE;
    }
    for (size_t i = 0; i < n; i++) {
        if (m->s[ids[i]].unknown)
            u++;
        else
            kids[nk++] = node_str(m, ids[i]);
    }
    if (q <= u)
        r = NODE_TRUE;
    else if (q - u > nk)
        r = NODE_FALSE;
    else if (q - u == 1)
        r = node_junction(m, false, kids, nk);
    else if (q - u == nk)
        r = node_junction(m, true, kids, nk);
    else
        r = node_new(m, F_ATLEAST, (uint32_t)(q - u), 0, kids, nk);
    free(kids);
    return r;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t rule_node(model *m, size_t ri);
static uint32_t analyze_or(model *m, const prule *r, size_t b, size_t e);

/* The index of the parenthesis closing the one at b, or e. */
static size_t close_of(const model *m, size_t b, size_t e)
{
    int d = 0;
    for (size_t i = b; i < e; i++) {
        d += m->t[i].k == T_LPAR ? 1 : m->t[i].k == T_RPAR ? -1 : 0;
        if (d == 0)
            return i;
    }
    return e;
}

/*
 * `Q of SET`, SET being the tokens [b, e) ("$a, $b*" or "them") and at least q of its
 * strings having to match (SIZE_MAX: all of them).
 */
static uint32_t string_set(model *m, const prule *r, size_t b, size_t e, size_t q)
{
    size_t *ids = malloc((r->s1 - r->s0 + 1) * sizeof(*ids));
    size_t n = 0;
    uint32_t d;

    if (!ids) {
        m->nomem = true;
        return NODE_TRUE;
    }
    if (e == b + 1 && tok_is(m->t[b], "them")) {
        for (size_t i = r->s0; i < r->s1; i++)
            ids[n++] = i;
    } else {
        if (e < b + 2 || m->t[b].k != T_LPAR || close_of(m, b, e) != e - 1) {
            free(ids);
            return NODE_TRUE;
        }
        bool *in = calloc(r->s1 - r->s0 + 1, sizeof(*in));
        if (!in) {
            free(ids);
            m->nomem = true;
            return NODE_TRUE;
        }
        for (size_t i = b + 1; i < e - 1; i++) {
            tok t = m->t[i];
            if (t.k == T_COMMA)
                continue;
            if (t.k != T_SVAR) {
                free(in);
                free(ids);
                return NODE_TRUE;
            }
            bool wild = t.p[t.n - 1] == '*';
            size_t nl = t.n - 1 - wild;
            bool any = false;
            for (size_t j = r->s0; j < r->s1; j++) {
                const char *nm = m->s[j].name;
                if (wild ? strncmp(nm, t.p + 1, nl) == 0
                         : strlen(nm) == nl && nl > 0 && memcmp(nm, t.p + 1, nl) == 0) {
                    in[j - r->s0] = any = true;
                }
            }
            if (!any) {
                free(in);
                free(ids);
                return NODE_TRUE;
            }
        }
        for (size_t j = r->s0; j < r->s1; j++)
            if (in[j - r->s0])
                ids[n++] = j;
        free(in);
    }
    if (n == 0) {
        free(ids);
        return NODE_TRUE;
    }
    qsort(ids, n, sizeof(*ids), cmp_size);
    d = node_atleast(m, q == SIZE_MAX ? n : q, ids, n);
    free(ids);
    return d;
}

/* A number token's value, or -1 when it is not a plain decimal or hex integer. */
static long num_of(tok t)
{
    char buf[32];
    char *end;

    if (t.k != T_NUM || t.n >= sizeof(buf))
        return -1;
    memcpy(buf, t.p, t.n);
    buf[t.n] = '\0';
    long v = strtol(buf, &end, 0);
    return *end == '\0' && v >= 0 ? v : -1;
}

/* The string of r a `$a`, `#a`, `@a` or `!a` token names, or SIZE_MAX. */
static size_t named_string(const model *m, const prule *r, tok t)
{
    for (size_t j = r->s0; j < r->s1; j++)
        if (strlen(m->s[j].name) == t.n - 1 && memcmp(m->s[j].name, t.p + 1, t.n - 1) == 0)
            return j;
    return SIZE_MAX;
}

/* One operand of an `and`: tokens [b, e). */
static uint32_t analyze_primary(model *m, const prule *r, size_t b, size_t e)
{
    const tok *t = m->t;
    size_t j;

    if (b >= e)
        return NODE_TRUE;
    if (t[b].k == T_LPAR && close_of(m, b, e) == e - 1)
        return analyze_or(m, r, b + 1, e - 1);
    if (t[b].k == T_SVAR && t[b].n > 1 && t[b].p[t[b].n - 1] != '*' &&
        (e == b + 1 || tok_is(t[b + 1], "at") || tok_is(t[b + 1], "in"))) {
        j = named_string(m, r, t[b]);
        return j == SIZE_MAX ? NODE_TRUE : node_str(m, j);
    }
    if (t[b].k == T_SCOUNT && e == b + 3 && t[b + 1].k == T_OP) {
        long v = num_of(t[b + 2]);
        bool ok = (op_is(t[b + 1], ">") && v >= 0) ||
                  ((op_is(t[b + 1], ">=") || op_is(t[b + 1], "==")) && v >= 1);
        j = ok ? named_string(m, r, t[b]) : SIZE_MAX;
        return j == SIZE_MAX ? NODE_TRUE : node_str(m, j);
    }
    /* N of SET, any of SET, all of SET, N% of SET; optionally "at X" or "in (A..B)" */
    size_t q = b + 1, count = tok_is(t[b], "all") ? SIZE_MAX : 1;
    bool quant = tok_is(t[b], "any") || tok_is(t[b], "all");
    if (!quant && num_of(t[b]) >= 1) {
        quant = true;
        count = (size_t)num_of(t[b]);
        if (q < e && op_is(t[q], "%")) {
            q++;
            count = 1; /* a percentage of a set: at least one */
        }
    }
    if (quant && q < e && tok_is(t[q], "of") && q + 1 < e) {
        size_t s0 = q + 1, s1;
        if (tok_is(t[s0], "them"))
            s1 = s0 + 1;
        else if (t[s0].k == T_LPAR)
            s1 = close_of(m, s0, e) + 1;
        else
            return NODE_TRUE;
        if (s1 > e)
            return NODE_TRUE;
        if (s1 < e && !tok_is(t[s1], "at") && !tok_is(t[s1], "in"))
            return NODE_TRUE;
        return string_set(m, r, s0, s1, count);
    }
    if (t[b].k == T_IDENT && e == b + 1) {
        if (tok_is(t[b], "false"))
            return NODE_FALSE;
        /* a rule: any of the rules of that name (one per namespace) */
        uint32_t kids[64];
        uint32_t n = 0;
        for (size_t i = 0; i < m->n_r; i++)
            if (strlen(m->r[i].name) == t[b].n && memcmp(m->r[i].name, t[b].p, t[b].n) == 0) {
                if (n == 64)
                    return NODE_TRUE;
                kids[n++] = rule_node(m, i);
            }
        return n ? node_junction(m, false, kids, n) : NODE_TRUE;
    }
    return NODE_TRUE;
}

/* Splits [b, e) at top-level word w; fills cuts (the split tokens), returns their count. */
static size_t split_at(const model *m, size_t b, size_t e, const char *w, size_t *cuts, size_t max)
{
    int d = 0;
    size_t n = 0;

    for (size_t i = b; i < e; i++) {
        tok t = m->t[i];
        d += t.k == T_LPAR || op_is(t, "[") ? 1 : t.k == T_RPAR || op_is(t, "]") ? -1 : 0;
        if (d == 0 && tok_is(t, w)) {
            if (n == max)
                return SIZE_MAX;
            cuts[n++] = i;
        }
    }
    return n;
}

#define MAX_PARTS 256

static uint32_t analyze_and(model *m, const prule *r, size_t b, size_t e)
{
    size_t cuts[MAX_PARTS];
    uint32_t kids[MAX_PARTS + 1];
    size_t n = split_at(m, b, e, "and", cuts, MAX_PARTS);
    uint32_t nk = 0;

    if (n == SIZE_MAX)
        return NODE_TRUE;
    for (size_t k = 0; k <= n; k++) {
        size_t pb = k == 0 ? b : cuts[k - 1] + 1, pe = k == n ? e : cuts[k];
        if (pb >= pe || tok_is(m->t[pb], "not")) /* `not` binds tighter than `and` */
            continue;
        kids[nk++] = analyze_primary(m, r, pb, pe);
    }
    return node_junction(m, true, kids, nk);
}

static uint32_t analyze_or(model *m, const prule *r, size_t b, size_t e)
{
    size_t cuts[MAX_PARTS];
    uint32_t kids[MAX_PARTS + 1];
    size_t n = split_at(m, b, e, "or", cuts, MAX_PARTS);
    uint32_t nk = 0;

    if (n == SIZE_MAX)
        return NODE_TRUE;
    if (n == 0)
        return analyze_and(m, r, b, e);
    for (size_t k = 0; k <= n; k++) {
        size_t pb = k == 0 ? b : cuts[k - 1] + 1, pe = k == n ? e : cuts[k];
        kids[nk++] = analyze_and(m, r, pb, pe);
    }
    return node_junction(m, false, kids, nk);
}

static uint32_t rule_node(model *m, size_t ri)
{
    if (m->r[ri].state == 1)
        return NODE_TRUE; /* a cycle: libyara would not have compiled it */
    if (m->r[ri].state == 0) {
        m->r[ri].state = 1;
        uint32_t d = analyze_or(m, &m->r[ri], m->r[ri].c0, m->r[ri].c1);
        m->r[ri].node = m->nomem ? NODE_TRUE : d;
        m->r[ri].state = 2;
    }
    return m->r[ri].node;
}

/* Marks the strings formula x names as used; seen[] avoids walking a shared node twice. */
static void mark_used(model *m, uint32_t x, uint8_t *seen)
{
    if (seen[x])
        return;
    seen[x] = 1;
    if (m->f[x].op == F_STR) {
        m->s[m->f[x].a].used = true;
        return;
    }
    if (m->f[x].op == F_AND || m->f[x].op == F_OR || m->f[x].op == F_ATLEAST)
        for (uint32_t i = 0; i < m->f[x].n; i++)
            mark_used(m, m->kids[m->f[x].a + i], seen);
}

/* ---- the filter ---------------------------------------------------------------------- */

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n_s; i++) {
        for (size_t j = 0; j < m->s[i].n_lits; j++)
            free(m->s[i].lits[j].b);
        free(m->s[i].lits);
        free(m->s[i].name);
    }
    for (size_t i = 0; i < m->n_r; i++)
        free(m->r[i].name);
    free(m->s);
    free(m->r);
    free(m->t);
    free(m->f);
    free(m->kids);
}

void yara_prefilter_free(yara_prefilter *p)
{
    if (!p)
        return;
    hs_free_database(p->db);
    free(p->f);
    free(p->kids);
    free(p->roots);
    free(p->lit_str);
    for (unsigned i = 0; i < p->n_always; i++)
        free(p->always[i]);
    free(p->always);
    for (unsigned i = 0; i < p->n_keep; i++)
        free(p->keep[i]);
    free(p->keep);
    free(p);
}

/* Marks rule ri kept, and every rule its condition names, transitively. */
static void mark_keep(model *m, size_t ri)
{
    if (m->r[ri].keep)
        return;
    m->r[ri].keep = true;
    for (size_t i = m->r[ri].c0; i < m->r[ri].c1; i++) {
        tok t = m->t[i];
        if (t.k != T_IDENT)
            continue;
        for (size_t j = 0; j < m->n_r; j++)
            if (strlen(m->r[j].name) == t.n && memcmp(m->r[j].name, t.p, t.n) == 0)
                mark_keep(m, j);
    }
}

/* Appends name to a list of names; false when out of memory. */
static bool names_add(char ***v, unsigned *n, const char *name)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (!nv)
        return false;
    *v = nv;
    if (!(nv[*n] = strdup(name)))
        return false;
    (*n)++;
    return true;
}

static hs_database_t *compile_lits(model *m, yara_prefilter *p, yara_prefilter_info *info)
{
    size_t n = 0, k = 0;
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;

    for (size_t i = 0; i < m->n_s; i++)
        if (m->s[i].used) {
            n += m->s[i].n_lits;
            info->strings++;
        }
    if (n == 0)
        return NULL;
    const char **expr = malloc(n * sizeof(*expr));
    unsigned *flags = malloc(n * sizeof(*flags));
    unsigned *ids = malloc(n * sizeof(*ids));
    size_t *lens = malloc(n * sizeof(*lens));
    p->lit_str = malloc(n * sizeof(*p->lit_str));
    if (expr && flags && ids && lens && p->lit_str) {
        for (size_t i = 0; i < m->n_s; i++) {
            if (!m->s[i].used)
                continue;
            for (size_t j = 0; j < m->s[i].n_lits; j++) {
                const lit *l = &m->s[i].lits[j];
                expr[k] = (const char *)l->b;
                lens[k] = l->n;
                flags[k] = HS_FLAG_SINGLEMATCH | (l->caseless ? HS_FLAG_CASELESS : 0);
                ids[k] = (unsigned)k;
                p->lit_str[k] = (uint32_t)i;
                k++;
            }
        }
        if (hs_compile_lit_multi(expr, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL, &db,
                                 &err) != HS_SUCCESS) {
            hs_free_compile_error(err);
            db = NULL;
        } else {
            info->literals = (unsigned)n;
        }
    }
    free(expr);
    free(flags);
    free(ids);
    free(lens);
    return db;
}

yara_prefilter *yara_prefilter_new(const char *const *texts, const size_t *lens, size_t n,
                                   yara_prefilter_info *info)
{
    model m = {0};
    yara_prefilter *p = NULL;
    yara_prefilter_info dummy;

    if (!info)
        info = &dummy;
    memset(info, 0, sizeof(*info));
    if (hs_valid_platform() != HS_SUCCESS)
        return NULL;
    for (size_t i = 0; i < n && !m.nomem; i++)
        parse_text(&m, texts[i], lens[i]);
    p = calloc(1, sizeof(*p));
    node_new(&m, F_FALSE, 0, 0, NULL, 0); /* makes the constants (and one unused node) */
    if (!p || m.nomem || !(p->roots = malloc((m.n_r ? m.n_r : 1) * sizeof(*p->roots))))
        goto fail;
    for (size_t i = 0; i < m.n_r && !m.nomem; i++) {
        if (m.r[i].private_)
            continue;
        uint32_t d = rule_node(&m, i);
        info->rules++;
        if (d == NODE_TRUE) {
            if (p->n_always == 0)
                snprintf(info->first_always, sizeof(info->first_always), "%s", m.r[i].name);
            if (!names_add(&p->always, &p->n_always, m.r[i].name)) {
                m.nomem = true;
                break;
            }
            mark_keep(&m, i);
            continue;
        }
        if (d != NODE_FALSE)
            p->roots[p->n_roots++] = d;
    }
    uint8_t *seen = m.nomem ? NULL : calloc(m.n_f, 1);
    if (!seen)
        goto fail;
    for (size_t i = 0; i < p->n_roots; i++)
        mark_used(&m, p->roots[i], seen);
    free(seen);
    for (size_t i = 0; i < m.n_r && !m.nomem && p->n_always > 0; i++)
        if (m.r[i].global_) /* it can veto an "always" rule of its namespace */
            mark_keep(&m, i);
    for (size_t i = 0; i < m.n_r && !m.nomem; i++)
        if (m.r[i].keep && !names_add(&p->keep, &p->n_keep, m.r[i].name))
            m.nomem = true;
    for (size_t i = 0; i < m.n_s; i++)
        info->unknown += m.s[i].unknown;
    info->always = p->n_always;
    if (m.nomem)
        goto fail;
    p->db = compile_lits(&m, p, info);
    if (!p->db && info->strings > 0)
        goto fail;
    /* the formulas move to the filter */
    p->f = m.f;
    p->kids = m.kids;
    p->n_strings = m.n_s;
    m.f = NULL;
    m.kids = NULL;
    model_free(&m);
    return p;
fail:
    model_free(&m);
    yara_prefilter_free(p);
    return NULL;
}

bool yara_prefilter_keep(const yara_prefilter *p, const char *name)
{
    if (!p)
        return true;
    for (unsigned i = 0; i < p->n_keep; i++)
        if (strcmp(p->keep[i], name) == 0)
            return true;
    return false;
}

unsigned yara_prefilter_always_count(const yara_prefilter *p)
{
    return p ? p->n_always : 0;
}

void *yara_prefilter_scratch_new(const yara_prefilter *p)
{
    pf_scratch *s;

    if (!p || !p->db || !(s = calloc(1, sizeof(*s))))
        return NULL;
    s->p = p;
    s->present = calloc(p->n_strings ? p->n_strings : 1, 1);
    s->set = malloc((p->n_strings ? p->n_strings : 1) * sizeof(*s->set));
    if (!s->present || !s->set || hs_alloc_scratch(p->db, &s->hs) != HS_SUCCESS) {
        yara_prefilter_scratch_free(s);
        return NULL;
    }
    return s;
}

void yara_prefilter_scratch_free(void *scratch)
{
    pf_scratch *s = scratch;

    if (!s)
        return;
    if (s->hs)
        hs_free_scratch(s->hs);
    free(s->present);
    free(s->set);
    free(s);
}

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    pf_scratch *s = ctx;
    uint32_t str = s->p->lit_str[id];

    (void)from;
    (void)to;
    (void)flags;
    if (!s->present[str]) {
        s->present[str] = 1;
        s->set[s->n_set++] = str;
    }
    return 0;
}

/* Whether formula x holds with the strings s->present. */
static bool eval(const yara_prefilter *p, const pf_scratch *s, uint32_t x)
{
    const fnode *f = &p->f[x];
    uint32_t hits = 0;

    switch (f->op) {
    case F_TRUE:
        return true;
    case F_FALSE:
        return false;
    case F_STR:
        return s->present[f->a];
    case F_AND:
        for (uint32_t i = 0; i < f->n; i++)
            if (!eval(p, s, p->kids[f->a + i]))
                return false;
        return true;
    case F_OR:
        for (uint32_t i = 0; i < f->n; i++)
            if (eval(p, s, p->kids[f->a + i]))
                return true;
        return false;
    default: /* F_ATLEAST */
        for (uint32_t i = 0; i < f->n && hits < f->k; i++)
            hits += eval(p, s, p->kids[f->a + i]);
        return hits >= f->k;
    }
}

bool yara_prefilter_may_match(const yara_prefilter *p, void *scratch, const void *data, size_t len)
{
    pf_scratch *s = scratch;

    if (!p)
        return true;
    if (!p->db)
        return false; /* no rule needs a string: only the "always" rules can match */
    if (!s || len > UINT32_MAX)
        return true;
    while (s->n_set > 0)
        s->present[s->set[--s->n_set]] = 0;
    if (hs_scan(p->db, data ? data : "", (unsigned)len, 0, s->hs, on_hit, s) != HS_SUCCESS)
        return true; /* unsure */
    if (s->n_set == 0)
        return false;
    for (size_t i = 0; i < p->n_roots; i++)
        if (eval(p, s, p->roots[i]))
            return true;
    return false;
}
