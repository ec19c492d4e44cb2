/*
 * yara_prefilter.c - which buffers cannot match any rule of a YARA set (yara_prefilter.h).
 *
 * Why: libyara 4.2 runs the whole set on every buffer: Aho-Corasick over the data, then
 * every rule's condition, 20 to 30 us a scan with a rule set of a few hundred rules
 * whatever the buffer holds, and its atoms (4 bytes at most) hit often in web content,
 * each hit verified. On the bench mix with the shared rules three scans in four find no
 * string of any rule at all, and almost none can match, yet they cost most of YARA's time.
 *
 * What: the rule sources are read once more (after libyara compiled them, so they are
 * valid YARA) and two things are worked out:
 *
 * - for every string, its factors: sets of literals such that every match holds one
 *   literal of each set. A text string is one factor (its ascii and wide forms, caseless
 *   with nocase; with xor, the forms of every key of the range). A hex string has a factor
 *   per run of fixed bytes at its top level. A regexp has one per run of plain characters
 *   of its top-level sequence, where a group whose alternatives are plain multiplies the
 *   run ("(ldap|rmi):\/\/" is {"ldap://", "rmi://"}) and a group that is not gives one
 *   factor, a literal of each alternative; top-level alternatives likewise. Literals of
 *   under two bytes are dropped, and leading NUL bytes (Vectorscan, the fork arm64 builds
 *   use, refuses a literal that starts with one; `make check-vectorscan`). A string with
 *   no factor (base64, a regexp of classes) is "unknown": it may match anywhere.
 * - for every rule, a formula over "string s may be in the data" (all of its factors
 *   found) and filesize, true whenever the condition is: `$a`, `$a at/in ...`, `#a > N`,
 *   `N of (...)`, `all of them`, `filesize < N` (and the other comparisons), a rule it
 *   names; `and`, `or` as such; and the vetoes `not $fp`, `not any of ($fp*)`,
 *   `not 1 of (...)` as "none of these strings is in the data" when every one of them is
 *   exact (a text string, not fullword, whose literals are all of it: one found is a
 *   match, so its absence is known). Anything else (another `not X`, arithmetic, modules,
 *   `for`, an unknown string) is "true": the formula can only be weaker than the
 *   condition. A rule whose formula can hold with no literal in the data is "always" run.
 *
 * The literals of the strings the formulas name go into one Hyperscan literal database.
 * For a buffer the filter finds the literals (Hyperscan, each reported once), then
 * evaluates the formulas of the rules naming a string one of whose literals it found.
 * When none holds, no rule but the "always" ones can match: libyara runs those (yara_scan.c:
 * a set compiled with the other rules blanked out), or nothing when there are none. When
 * one holds, the buffer goes to libyara whole, as before: the filter never decides that
 * a rule matches, only that no rule can.
 *
 * The filter errs one way only: a factor is a necessary part of its string, and the
 * formula of a condition is never stronger than the condition. Anything the parser does
 * not recognise counts as "true". A test (tests/unit/test_yara.c) checks against libyara,
 * on hand-made rules and 20,000 random buffers, that no buffer that matches is filtered
 * out, and tests/e2e/test_yara.py that the events of the whole corpus are the same.
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
               (yara_text_ident_char(t[x->pos]) || (t[x->pos] == '.' && x->pos + 1 < x->len &&
                                                    t[x->pos + 1] >= '0' && t[x->pos + 1] <= '9')))
            x->pos++;
        k.k = T_NUM;
    } else if (yara_text_ident_char(c)) {
        while (x->pos < x->len && yara_text_ident_char(t[x->pos]))
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
               (c == '$' || (s + 1 < x->len && yara_text_ident_char(t[s + 1])))) {
        x->pos++;
        while (x->pos < x->len && yara_text_ident_char(t[x->pos]))
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
    uint8_t factor; /* which of its string's factors it is one form of */
} lit;

typedef struct {
    char *name; /* without the '$'; "" for an anonymous string */
    lit *lits;  /* every match holds, for each factor, one of that factor's literals */
    size_t n_lits;
    uint8_t n_factors;
    bool unknown; /* no literal known: may match anywhere */
    bool exact;   /* a text string whose literals are all of it: one found is a match */
    bool trimmed; /* a literal lost its leading NUL bytes (add_lit) */
    bool used;    /* a public rule needs it */
} pstr;

/*
 * What a condition needs, as a formula over "a literal of string s is in the data": the
 * nodes of all rules in one array (shared: a rule named by others is one node), with the
 * two constants first.
 */
enum { F_TRUE, F_FALSE, F_STR, F_AND, F_OR, F_ATLEAST, F_SIZE, F_NOSTR };

/* F_SIZE: filesize (the buffer's length) compared with a number, as libyara does */
enum { S_LT, S_LE, S_GT, S_GE, S_EQ, S_NE };

typedef struct {
    uint8_t op;
    uint8_t cmp; /* F_SIZE: S_LT, ... */
    uint32_t k;  /* F_ATLEAST: how many of the kids */
    uint32_t a;  /* F_STR, F_NOSTR: the string; F_AND, F_OR, F_ATLEAST: the first kid */
    uint32_t n;  /* kids */
    uint64_t v;  /* F_SIZE: the number */
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
    uint32_t *fr_first;   /* per factor: its roots, fr[fr_first[f] .. fr_first[f + 1]) */
    uint32_t *fr;         /* the roots whose formula names the factor's string */
    uint32_t *lit_factor; /* literal id -> factor (global) */
    uint32_t *str_f0;     /* per string: its first factor */
    uint8_t *str_nf;      /* per string: its factors */
    size_t n_strings, n_factors;
    unsigned n_always; /* public rules that need nothing */
    char **keep;       /* the rules the "always" set must hold */
    unsigned n_keep;
};

/* Per-thread: Hyperscan's scratch and the strings found in the buffer being looked at. */
typedef struct {
    hs_scratch_t *hs;
    uint8_t *present; /* per factor: one of its literals is in the buffer */
    uint32_t *set;    /* factors marked present, to clear */
    size_t n_set;
    uint64_t len;   /* of the buffer: filesize */
    uint32_t *done; /* per root: the scan it was last evaluated in */
    uint32_t scan;
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
    bool cut; /* the text was longer: b is its prefix */
} run;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool add_lit(model *m, pstr *s, const uint8_t *b, size_t n, bool caseless, uint8_t factor)
{
    /* Vectorscan (Hyperscan's fork, on arm64) refuses a literal that starts with a NUL byte
     * as "empty": the rest of it is still in every match, but no longer all of it */
    while (n > 0 && b[0] == 0) {
        b++;
        n--;
        s->trimmed = true;
    }
    if (n == 0) { /* nothing left of this form: the string may match anywhere */
        s->unknown = true;
        return true;
    }
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
    nl[s->n_lits].factor = factor;
    s->n_lits++;
    if (factor >= s->n_factors)
        s->n_factors = (uint8_t)(factor + 1);
    return true;
}

/* Adds b[0..n) to factor f of s in the forms the modifiers ask for (ascii, wide). */
static void add_forms(model *m, pstr *s, const uint8_t *b, size_t n, bool ascii, bool wide,
                      bool caseless, uint8_t f)
{
    if (n == 0) {
        s->unknown = true;
        return;
    }
    if (ascii)
        add_lit(m, s, b, n, caseless, f);
    if (wide) {
        uint8_t w[512];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 2 <= sizeof(w); i++) {
            w[k++] = b[i];
            w[k++] = 0;
        }
        add_lit(m, s, w, k, caseless, f);
    }
}

/* Decodes the text string t[0..n) (without quotes); false on an escape it does not know. */
static bool text_bytes(const char *t, size_t n, run *out)
{
    out->n = 0;
    out->cut = false;
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
        if (out->n == sizeof(out->b)) {
            out->cut = true;
            return true; /* a prefix of the text is still in every match */
        }
        out->b[out->n++] = c;
    }
    return true;
}

#define MAX_FACTORS 8  /* factors kept per string: the longest */
#define LMAX        64 /* bytes of a literal made from a regexp or hex string */
#define SMAX        64 /* literals of one factor */

/* A set of literals: one of them is in every match (a factor), or what a piece of a regexp
 * matches exactly. */
typedef struct {
    uint8_t b[SMAX][LMAX];
    uint8_t len[SMAX];
    unsigned n;
} lset;

static unsigned lset_min(const lset *x)
{
    unsigned m = LMAX + 1;
    for (unsigned i = 0; i < x->n; i++)
        if (x->len[i] < m)
            m = x->len[i];
    return x->n ? m : 0;
}

/* The factors found so far (heap: an lset is 4 KiB). */
typedef struct {
    lset *v[MAX_FACTORS];
    unsigned n;
    bool nomem;
} factors;

static void factors_free(factors *f)
{
    for (unsigned i = 0; i < f->n; i++)
        free(f->v[i]);
    f->n = 0;
}

/* Adds a copy of x as a factor when its literals are at least 2 bytes; past MAX_FACTORS it
 * replaces the weakest (shortest) if x is stronger. */
static void factors_add(factors *f, const lset *x)
{
    unsigned mx = lset_min(x), weakest = 0;

    if (x->n == 0 || mx < 2)
        return;
    if (f->n == MAX_FACTORS) {
        for (unsigned i = 1; i < f->n; i++)
            if (lset_min(f->v[i]) < lset_min(f->v[weakest]))
                weakest = i;
        if (lset_min(f->v[weakest]) >= mx)
            return;
        memcpy(f->v[weakest], x, sizeof(*x));
        return;
    }
    if (!(f->v[f->n] = malloc(sizeof(*x)))) {
        f->nomem = true;
        return;
    }
    memcpy(f->v[f->n++], x, sizeof(*x));
}

/* Adds the factors to s, in the forms the modifiers ask for; s is unknown without one. */
static void add_factors(model *m, pstr *s, const factors *f, bool ascii, bool wide, bool caseless)
{
    if (f->nomem)
        m->nomem = true;
    if (f->n == 0) {
        s->unknown = true;
        return;
    }
    for (unsigned k = 0; k < f->n; k++)
        for (unsigned i = 0; i < f->v[k]->n; i++)
            add_forms(m, s, f->v[k]->b[i], f->v[k]->len[i], ascii, wide, caseless, (uint8_t)k);
}

/* The runs of fixed bytes of the hex string t[0..n) (without braces) at its top level. */
static void hex_factors(const char *t, size_t n, factors *f)
{
    lset *cur = calloc(1, sizeof(*cur));
    int depth = 0;

    if (!cur) {
        f->nomem = true;
        return;
    }
    cur->n = 1;
    for (size_t i = 0; i <= n;) {
        size_t next = yara_text_skip_space(t, n, i); /* white space, comments */
        if (next != i) {
            i = next;
            continue;
        }
        char c = i < n ? t[i] : '\0';
        if (i + 1 < n && depth == 0 && hexval(c) >= 0 && hexval(t[i + 1]) >= 0 &&
            cur->len[0] < LMAX) {
            cur->b[0][cur->len[0]++] = (uint8_t)(hexval(c) * 16 + hexval(t[i + 1]));
            i += 2;
            continue;
        }
        /* anything else ends the run: ??, a nibble wildcard, a jump, an alternative, the end
         * (a run at LMAX bytes is ended too, and the next starts at this byte) */
        factors_add(f, cur);
        cur->len[0] = 0;
        if (i >= n)
            break;
        if (i + 1 < n && hexval(c) >= 0 && hexval(t[i + 1]) >= 0 && depth == 0)
            continue; /* the byte that did not fit starts the next run */
        if (c == '(')
            depth++;
        else if (c == ')')
            depth--;
        else if (c == '[')
            while (i < n && t[i] != ']')
                i++;
        else if (c == '~' && i + 2 < n && hexval(t[i + 1]) >= 0)
            i += 2; /* "not this byte" (YARA 4.3): not a literal */
        i++;
    }
    free(cur);
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

/*
 * What a piece of a regexp needs. Walking a sequence, `cur` holds every string the
 * literal run so far can be (a group of plain alternatives multiplies it: "(ldap|rmi)://"
 * is {"ldap://", "rmi://"}); anything that is not plain ends the run, which becomes a
 * factor. `exact`: the whole piece is plain, and matches exactly the strings of cur.
 */
typedef struct {
    factors f;
    lset cur;
    bool exact;
} rpiece;

static void re_alt(const char *re, size_t a, size_t b, rpiece *out, int depth);

static void cur_flush(rpiece *p)
{
    bool empty = false;
    for (unsigned i = 0; i < p->cur.n; i++)
        empty |= p->cur.len[i] == 0;
    if (!empty)
        factors_add(&p->f, &p->cur);
    p->cur.n = 1;
    p->cur.len[0] = 0;
}

/* cur := cur x x (every string of cur followed by every one of x); false when the result
 * would be too many or too long strings (cur is then unchanged). */
static bool cur_times(lset *cur, const lset *x, lset *tmp)
{
    if ((size_t)cur->n * x->n > SMAX)
        return false;
    tmp->n = 0;
    for (unsigned i = 0; i < cur->n; i++)
        for (unsigned j = 0; j < x->n; j++) {
            if (cur->len[i] + x->len[j] > LMAX)
                return false;
            memcpy(tmp->b[tmp->n], cur->b[i], cur->len[i]);
            memcpy(tmp->b[tmp->n] + cur->len[i], x->b[j], x->len[j]);
            tmp->len[tmp->n++] = (uint8_t)(cur->len[i] + x->len[j]);
        }
    memcpy(cur, tmp, sizeof(*cur));
    return true;
}

/* A sequence without a top-level '|': re[a..b). */
static void re_seq(const char *re, size_t a, size_t b, rpiece *out, int depth)
{
    lset *one = malloc(sizeof(*one)), *tmp = malloc(sizeof(*tmp));
    rpiece *sub = NULL;

    out->exact = true;
    out->cur.n = 1;
    out->cur.len[0] = 0;
    if (!one || !tmp) {
        out->f.nomem = true;
        out->exact = false;
        goto done;
    }
    for (size_t i = a; i < b;) {
        int c = -1; /* a literal character, or -1 */
        bool group = false;
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
            } else if (!yara_text_ident_char(e)) {
                c = (uint8_t)e; /* an escaped punctuation character */
            }
        } else if (re[i] == '(') {
            size_t end = re_skip(re, b, i);
            size_t in0 = i + 1, in1 = end > i + 1 ? end - 1 : in0;
            if (in1 > in0 + 1 && re[in0] == '?' && re[in0 + 1] == ':')
                in0 += 2;
            if (depth < 8 && end <= b && re[end - 1] == ')') {
                if (!sub && !(sub = calloc(1, sizeof(*sub)))) {
                    out->f.nomem = true;
                    break;
                }
                factors_free(&sub->f);
                re_alt(re, in0, in1, sub, depth + 1);
                group = true;
            }
            i = end;
        } else if (re[i] == '[' || re[i] == '.' || re[i] == '^' || re[i] == '$') {
            i = re[i] == '[' ? re_skip(re, b, i) : i + 1;
        } else {
            c = (uint8_t)re[i];
            i++;
        }
        long q = re_quant(re, b, &i);
        if (q == 0 || (c < 0 && !group)) { /* optional, or not plain: the run ends */
            cur_flush(out);
            out->exact = false;
            continue;
        }
        if (group) {
            /* the group's own factors are needed whatever it is next to */
            for (unsigned k = 0; k < sub->f.n; k++)
                factors_add(&out->f, sub->f.v[k]);
            if (!sub->exact || !cur_times(&out->cur, &sub->cur, tmp)) {
                cur_flush(out);
                out->exact = false;
                if (!sub->exact)
                    continue;
                memcpy(&out->cur, &sub->cur, sizeof(sub->cur)); /* starts the next run */
                if (q > 0)
                    cur_flush(out);
            }
        } else {
            one->n = 1;
            one->len[0] = 1;
            one->b[0][0] = (uint8_t)c;
            if (!cur_times(&out->cur, one, tmp)) {
                cur_flush(out);
                out->exact = false;
                cur_times(&out->cur, one, tmp);
            }
        }
        if (q > 0) { /* repeated: what follows is not next to it */
            cur_flush(out);
            out->exact = false;
        }
    }
    if (!out->exact)
        cur_flush(out);
done:
    if (sub)
        factors_free(&sub->f);
    free(sub);
    free(one);
    free(tmp);
}

/* A regexp or a group's inside: re[a..b), '|' at its top level separating alternatives. */
static void re_alt(const char *re, size_t a, size_t b, rpiece *out, int depth)
{
    size_t cuts[SMAX + 1], nc = 0;
    rpiece *br = NULL;
    lset *u = NULL;

    out->f.n = 0;
    for (size_t i = a; i < b;) {
        if (re[i] == '\\')
            i += 2;
        else if (re[i] == '(' || re[i] == '[')
            i = re_skip(re, b, i);
        else if (re[i] == '|') {
            if (nc == SMAX) {
                out->exact = false; /* too many alternatives: no factor */
                out->cur.n = 1;
                out->cur.len[0] = 0;
                return;
            }
            cuts[nc++] = i++;
        } else
            i++;
    }
    if (nc == 0) {
        re_seq(re, a, b, out, depth);
        return;
    }
    /* alternatives: exact when all are (the union); else one factor, the union of one
     * factor of each alternative (its strongest) */
    br = calloc(1, sizeof(*br));
    u = calloc(1, sizeof(*u));
    out->exact = false;
    out->cur.n = 1;
    out->cur.len[0] = 0;
    if (!br || !u) {
        out->f.nomem = true;
        goto done;
    }
    bool all_exact = true, all_factor = true;
    for (size_t k = 0; k <= nc; k++) {
        size_t pa = k == 0 ? a : cuts[k - 1] + 1, pb = k == nc ? b : cuts[k];
        const lset *pick = NULL;
        factors_free(&br->f);
        re_seq(re, pa, pb, br, depth);
        if (br->f.nomem)
            out->f.nomem = true;
        if (br->exact) {
            pick = &br->cur;
        } else {
            all_exact = false;
            for (unsigned i = 0; i < br->f.n; i++)
                if (!pick || lset_min(br->f.v[i]) > lset_min(pick))
                    pick = br->f.v[i];
        }
        if (!pick || pick->n + u->n > SMAX) {
            all_exact = all_factor = false;
            break;
        }
        for (unsigned i = 0; i < pick->n; i++) {
            memcpy(u->b[u->n], pick->b[i], pick->len[i]);
            u->len[u->n++] = pick->len[i];
        }
    }
    if (all_exact) {
        out->exact = true;
        memcpy(&out->cur, u, sizeof(*u));
    } else if (all_factor) {
        factors_add(&out->f, u);
    }
done:
    if (br)
        factors_free(&br->f);
    free(br);
    free(u);
}

/* Adds to s the factors of the regexp re[0..n). */
static void regex_lits(model *m, pstr *s, const char *re, size_t n, bool ascii, bool wide,
                       bool caseless)
{
    rpiece *p = calloc(1, sizeof(*p));

    if (!p) {
        m->nomem = true;
        return;
    }
    re_alt(re, 0, n, p, 0);
    if (p->exact)
        cur_flush(p);
    add_factors(m, s, &p->f, ascii, wide, caseless);
    factors_free(&p->f);
    free(p);
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

/* The range of an `xor` modifier at x->pos: "(K)" or "(LO-HI)", or none (0-255). False
 * when it cannot be read; x->pos is left before the parenthesis (the caller skips it). */
static bool parse_xor_range(lex *x, long *lo, long *hi)
{
    size_t save = x->pos;
    char *end;

    *lo = 0;
    *hi = 255;
    skip_space(x);
    if (x->pos >= x->len || x->t[x->pos] != '(') {
        x->pos = save;
        return true;
    }
    *lo = *hi = strtol(x->t + x->pos + 1, &end, 0);
    while (*end == ' ')
        end++;
    if (*end == '-') {
        *hi = strtol(end + 1, &end, 0);
        while (*end == ' ')
            end++;
    }
    x->pos = save;
    return *end == ')' && *lo >= 0 && *hi <= 255 && *lo <= *hi;
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
        while (x->pos < x->len && yara_text_ident_char(t[x->pos]))
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
        bool ascii = false, wide = false, nocase = re_i, opaque = false, xored = false;
        bool fullword = false;
        long xlo = 0, xhi = 255;
        for (;;) {
            size_t save = x->pos;
            skip_space(x);
            if (x->pos >= x->len || !yara_text_ident_char(t[x->pos]) || t[x->pos] == '$') {
                x->pos = save;
                break;
            }
            size_t w0 = x->pos;
            while (x->pos < x->len && yara_text_ident_char(t[x->pos]))
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
            else if (wn == 3 && memcmp(t + w0, "xor", 3) == 0) {
                xored = true;
                if (!parse_xor_range(x, &xlo, &xhi))
                    opaque = true;
            } else if (wn == 8 && memcmp(t + w0, "fullword", 8) == 0)
                fullword = true;
            else if (!(wn == 7 && memcmp(t + w0, "private", 7) == 0))
                opaque = true; /* base64, base64wide, or one this parser does not know */
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
        if (opaque || (xored && (kind != '"' || nocase))) {
            s->unknown = true;
            continue;
        }
        run r;
        if (xored) { /* every key of the range: 255 literals at most, one factor */
            if (v1 < v0 + 2 || !text_bytes(t + v0 + 1, v1 - v0 - 2, &r) || r.n == 0 || r.n > 128) {
                s->unknown = true;
                continue;
            }
            for (long k = xlo; k <= xhi; k++) {
                uint8_t w[256];
                if (ascii) {
                    for (size_t i = 0; i < r.n; i++)
                        w[i] = (uint8_t)(r.b[i] ^ k);
                    add_lit(m, s, w, r.n, false, 0);
                }
                if (wide) {
                    for (size_t i = 0; i < r.n; i++) {
                        w[2 * i] = (uint8_t)(r.b[i] ^ k);
                        w[2 * i + 1] = (uint8_t)k;
                    }
                    add_lit(m, s, w, 2 * r.n, false, 0);
                }
            }
            s->exact = !fullword && !r.cut && !s->trimmed;
        } else if (kind == '"') {
            if (v1 < v0 + 2 || !text_bytes(t + v0 + 1, v1 - v0 - 2, &r)) {
                s->unknown = true;
            } else {
                add_forms(m, s, r.b, r.n, ascii, wide, nocase, 0);
                s->exact = !fullword && !r.cut && r.n > 0 && !s->trimmed;
            }
        } else if (kind == '{') {
            factors f = {.n = 0};
            hex_factors(t + v0 + 1, v1 - v0 - 2, &f);
            add_factors(m, s, &f, true, false, false);
            factors_free(&f);
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

/* "String s is not in the data": exact when a literal found is a match, else TRUE. */
static uint32_t node_absent(model *m, size_t s)
{
    return m->s[s].exact && !m->s[s].unknown ? node_new(m, F_NOSTR, 0, (uint32_t)s, NULL, 0)
                                             : NODE_TRUE;
}

/* AND (and = true) or OR of kids[0..n): constants folded. */
static uint32_t node_junction(model *m, bool conj, uint32_t *kids, uint32_t n)
{
    uint32_t keep = 0;
    uint32_t absorbing = conj ? NODE_FALSE : NODE_TRUE, neutral = conj ? NODE_TRUE : NODE_FALSE;

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
    if (conj) /* the cheap tests first: filesize, then single strings */
        for (uint32_t pass = 0, w = 0; pass < 2; pass++)
            for (uint32_t i = w; i < keep; i++)
                if (m->f[kids[i]].op == (pass ? F_STR : F_SIZE)) {
                    uint32_t t = kids[w];
                    kids[w++] = kids[i];
                    kids[i] = t;
                }
    return node_new(m, conj ? F_AND : F_OR, 0, 0, kids, keep);
}

/* At least q of the strings ids[0..n) (unique): strings with no literal count as
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

/* The strings of the set at [b, e) (`them`, or $names and $prefix* in parentheses): their
 * indices in ids (room for the rule's strings), their number in *n. False when the set is
 * not one this parser reads. */
static bool set_ids(model *m, const prule *r, size_t b, size_t e, size_t *ids, size_t *n)
{
    *n = 0;
    if (e == b + 1 && tok_is(m->t[b], "them")) {
        for (size_t i = r->s0; i < r->s1; i++)
            ids[(*n)++] = i;
        return true;
    }
    if (e < b + 2 || m->t[b].k != T_LPAR || close_of(m, b, e) != e - 1)
        return false;
    bool *in = calloc(r->s1 - r->s0 + 1, sizeof(*in));
    if (!in) {
        m->nomem = true;
        return false;
    }
    for (size_t i = b + 1; i < e - 1; i++) {
        tok t = m->t[i];
        if (t.k == T_COMMA)
            continue;
        if (t.k != T_SVAR) {
            free(in);
            return false;
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
            return false;
        }
    }
    for (size_t j = r->s0; j < r->s1; j++)
        if (in[j - r->s0])
            ids[(*n)++] = j;
    free(in);
    return true;
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
    if (!set_ids(m, r, b, e, ids, &n) || n == 0) {
        free(ids);
        return NODE_TRUE;
    }
    d = node_atleast(m, q == SIZE_MAX ? n : q, ids, n);
    free(ids);
    return d;
}

/* A number token's value (decimal or hex; with sizes, a KB or MB suffix allowed), or -1. */
static long long number_of(tok t, bool sizes)
{
    char buf[32];
    char *end;

    if (t.k != T_NUM || t.n >= sizeof(buf))
        return -1;
    memcpy(buf, t.p, t.n);
    buf[t.n] = '\0';
    long long v = strtoll(buf, &end, 0);
    if (v < 0 || v > (1LL << 40))
        return -1;
    if (sizes && strcmp(end, "KB") == 0)
        return v * 1024;
    if (sizes && strcmp(end, "MB") == 0)
        return v * 1024 * 1024;
    return *end == '\0' ? v : -1;
}

static long num_of(tok t)
{
    return (long)number_of(t, false);
}

static long long size_of(tok t)
{
    return number_of(t, true);
}

/* `filesize OP N` or `N OP filesize` at [b, e): an F_SIZE node, or NODE_TRUE. */
static uint32_t size_node(model *m, size_t b, size_t e)
{
    static const char *const ops[] = {"<", "<=", ">", ">=", "==", "!="};
    static const uint8_t swapped[] = {S_GT, S_GE, S_LT, S_LE, S_EQ, S_NE};
    const tok *t = m->t;
    long long v;
    bool left;

    if (e != b + 3 || t[b + 1].k != T_OP)
        return NODE_TRUE;
    if (tok_is(t[b], "filesize") && (v = size_of(t[b + 2])) >= 0)
        left = true;
    else if (tok_is(t[b + 2], "filesize") && (v = size_of(t[b])) >= 0)
        left = false;
    else
        return NODE_TRUE;
    for (uint8_t i = 0; i < 6; i++)
        if (op_is(t[b + 1], ops[i])) {
            uint32_t x = node_new(m, F_SIZE, 0, 0, NULL, 0);
            if (x != NODE_TRUE) {
                m->f[x].cmp = left ? i : swapped[i];
                m->f[x].v = (uint64_t)v;
            }
            return x;
        }
    return NODE_TRUE;
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
    if (e == b + 3 && (tok_is(t[b], "filesize") || tok_is(t[b + 2], "filesize")))
        return size_node(m, b, e);
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

/*
 * `not X` at [b, e) (b: the token after `not`): a veto such as `not $fp` or
 * `not any of ($fp*)` is read as "none of these strings is in the data" when they are all
 * exact; any other X, or a string that is not exact, is TRUE.
 */
static uint32_t analyze_not(model *m, const prule *r, size_t b, size_t e)
{
    const tok *t = m->t;
    size_t *ids, n = 0;
    uint32_t *kids, d = NODE_TRUE;

    if (b < e && t[b].k == T_LPAR && close_of(m, b, e) == e - 1) {
        b++;
        e--;
    }
    if (e == b + 1 && t[b].k == T_SVAR && t[b].n > 1 && t[b].p[t[b].n - 1] != '*') {
        size_t j = named_string(m, r, t[b]);
        return j == SIZE_MAX ? NODE_TRUE : node_absent(m, j);
    }
    if (e < b + 3 || !(tok_is(t[b], "any") || (t[b].k == T_NUM && num_of(t[b]) == 1)) ||
        !tok_is(t[b + 1], "of"))
        return NODE_TRUE;
    ids = malloc((r->s1 - r->s0 + 1) * sizeof(*ids));
    kids = malloc((r->s1 - r->s0 + 1) * sizeof(*kids));
    if (!ids || !kids)
        m->nomem = true;
    else if (set_ids(m, r, b + 2, e, ids, &n) && n > 0) {
        for (size_t i = 0; i < n; i++)
            kids[i] = node_absent(m, ids[i]);
        d = node_junction(m, true, kids, (uint32_t)n);
    }
    free(ids);
    free(kids);
    return d;
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

/* `A or B ...` (conj false: each part an `and`) or `A and B ...` (conj true: each part a
 * primary) at [b, e). */
static uint32_t analyze_junction(model *m, const prule *r, size_t b, size_t e, bool conj)
{
    size_t cuts[MAX_PARTS];
    uint32_t kids[MAX_PARTS + 1];
    size_t n = split_at(m, b, e, conj ? "and" : "or", cuts, MAX_PARTS);
    uint32_t nk = 0;

    if (n == SIZE_MAX)
        return NODE_TRUE;
    if (n == 0 && !conj)
        return analyze_junction(m, r, b, e, true);
    for (size_t k = 0; k <= n; k++) {
        size_t pb = k == 0 ? b : cuts[k - 1] + 1, pe = k == n ? e : cuts[k];
        if (conj && pb >= pe)
            continue;
        if (conj && tok_is(m->t[pb], "not")) /* `not` binds tighter than `and` */
            kids[nk++] = analyze_not(m, r, pb + 1, pe);
        else
            kids[nk++] =
                conj ? analyze_primary(m, r, pb, pe) : analyze_junction(m, r, pb, pe, true);
    }
    return node_junction(m, conj, kids, nk);
}

static uint32_t analyze_or(model *m, const prule *r, size_t b, size_t e)
{
    return analyze_junction(m, r, b, e, false);
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

/* True when formula x can only hold with a literal in the data (a rule whose formula does
 * not need one is run on all data). */
static bool needs_literal(const model *m, uint32_t x)
{
    const fnode *f = &m->f[x];

    switch (f->op) {
    case F_STR:
        return true;
    case F_FALSE:
        return true; /* never holds */
    case F_AND:
        for (uint32_t i = 0; i < f->n; i++)
            if (needs_literal(m, m->kids[f->a + i]))
                return true;
        return false;
    case F_OR:
        for (uint32_t i = 0; i < f->n; i++)
            if (!needs_literal(m, m->kids[f->a + i]))
                return false;
        return true;
    case F_ATLEAST:
        return f->k >= 1; /* kids are strings */
    default:              /* F_TRUE, F_SIZE */
        return false;
    }
}

/* Calls add(string) once for every string formula x names (nstamp, sstamp: the walk's
 * marks, set to `mark`). */
static void each_string(const model *m, uint32_t x, uint32_t *nstamp, uint32_t *sstamp,
                        uint32_t mark, void (*add)(void *, uint32_t), void *arg)
{
    const fnode *f = &m->f[x];

    if (nstamp[x] == mark)
        return;
    nstamp[x] = mark;
    if (f->op == F_STR || f->op == F_NOSTR) {
        if (sstamp[f->a] != mark) {
            sstamp[f->a] = mark;
            add(arg, f->a);
        }
    } else if (f->op == F_AND || f->op == F_OR || f->op == F_ATLEAST) {
        for (uint32_t i = 0; i < f->n; i++)
            each_string(m, m->kids[f->a + i], nstamp, sstamp, mark, add, arg);
    }
}

typedef struct {
    yara_prefilter *p;
    uint32_t root;
    bool fill; /* false: count into fr_first; true: write into fr */
    uint32_t *at;
} index_walk;

static void index_add(void *arg, uint32_t str)
{
    index_walk *w = arg;
    yara_prefilter *p = w->p;

    for (uint32_t k = 0; k < p->str_nf[str]; k++) {
        uint32_t f = p->str_f0[str] + k;
        if (w->fill)
            p->fr[w->at[f]++] = w->root;
        else
            p->fr_first[f + 1]++;
    }
}

/* fr_first and fr: which roots to evaluate when a factor is found. False: out of memory. */
static bool index_roots(const model *m, yara_prefilter *p)
{
    uint32_t *nstamp = malloc((m->n_f ? m->n_f : 1) * sizeof(*nstamp));
    uint32_t *sstamp = malloc((m->n_s ? m->n_s : 1) * sizeof(*sstamp));
    index_walk w = {.p = p};
    bool ok = false;

    p->fr_first = calloc(p->n_factors + 1, sizeof(*p->fr_first));
    w.at = malloc((p->n_factors + 1) * sizeof(*w.at));
    if (!nstamp || !sstamp || !p->fr_first || !w.at)
        goto done;
    for (int pass = 0; pass < 2; pass++) {
        memset(nstamp, 0xff, (m->n_f ? m->n_f : 1) * sizeof(*nstamp));
        memset(sstamp, 0xff, (m->n_s ? m->n_s : 1) * sizeof(*sstamp));
        w.fill = pass == 1;
        if (w.fill) {
            for (size_t f = 0; f < p->n_factors; f++)
                p->fr_first[f + 1] += p->fr_first[f];
            memcpy(w.at, p->fr_first, (p->n_factors + 1) * sizeof(*w.at));
            if (!(p->fr = malloc((p->fr_first[p->n_factors] + 1) * sizeof(*p->fr))))
                goto done;
        }
        for (size_t r = 0; r < p->n_roots; r++) {
            w.root = (uint32_t)r;
            each_string(m, p->roots[r], nstamp, sstamp, (uint32_t)r, index_add, &w);
        }
    }
    ok = true;
done:
    free(nstamp);
    free(sstamp);
    free(w.at);
    return ok;
}

static void mark_used(void *arg, uint32_t str)
{
    ((model *)arg)->s[str].used = true;
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
    free(p->fr_first);
    free(p->fr);
    free(p->lit_factor);
    free(p->str_f0);
    free(p->str_nf);
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

    p->str_f0 = calloc(m->n_s ? m->n_s : 1, sizeof(*p->str_f0));
    p->str_nf = calloc(m->n_s ? m->n_s : 1, sizeof(*p->str_nf));
    if (!p->str_f0 || !p->str_nf)
        return NULL;
    for (size_t i = 0; i < m->n_s; i++)
        if (m->s[i].used) {
            n += m->s[i].n_lits;
            info->strings++;
            p->str_f0[i] = (uint32_t)p->n_factors;
            p->str_nf[i] = m->s[i].n_factors;
            p->n_factors += m->s[i].n_factors;
        }
    if (n == 0)
        return NULL;
    const char **expr = malloc(n * sizeof(*expr));
    unsigned *flags = malloc(n * sizeof(*flags));
    unsigned *ids = malloc(n * sizeof(*ids));
    size_t *lens = malloc(n * sizeof(*lens));
    p->lit_factor = malloc(n * sizeof(*p->lit_factor));
    if (expr && flags && ids && lens && p->lit_factor) {
        for (size_t i = 0; i < m->n_s; i++) {
            if (!m->s[i].used)
                continue;
            for (size_t j = 0; j < m->s[i].n_lits; j++) {
                const lit *l = &m->s[i].lits[j];
                expr[k] = (const char *)l->b;
                lens[k] = l->n;
                flags[k] = HS_FLAG_SINGLEMATCH | (l->caseless ? HS_FLAG_CASELESS : 0);
                ids[k] = (unsigned)k;
                p->lit_factor[k] = p->str_f0[i] + l->factor;
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
        if (!needs_literal(&m, d)) {
            if (p->n_always++ == 0)
                snprintf(info->first_always, sizeof(info->first_always), "%s", m.r[i].name);
            mark_keep(&m, i);
            continue;
        }
        if (d != NODE_FALSE)
            p->roots[p->n_roots++] = d;
    }
    /* the strings some root names: one walk over all roots (mark 0 throughout) */
    uint32_t *nstamp = m.nomem ? NULL : malloc(m.n_f * sizeof(*nstamp));
    uint32_t *sstamp = nstamp ? malloc((m.n_s ? m.n_s : 1) * sizeof(*sstamp)) : NULL;
    if (!sstamp) {
        free(nstamp);
        goto fail;
    }
    memset(nstamp, 0xff, m.n_f * sizeof(*nstamp));
    memset(sstamp, 0xff, (m.n_s ? m.n_s : 1) * sizeof(*sstamp));
    for (size_t i = 0; i < p->n_roots; i++)
        each_string(&m, p->roots[i], nstamp, sstamp, 0, mark_used, &m);
    free(nstamp);
    free(sstamp);
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
    if (p->db && !index_roots(&m, p))
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
    s->present = calloc(p->n_factors ? p->n_factors : 1, 1);
    s->set = malloc((p->n_factors ? p->n_factors : 1) * sizeof(*s->set));
    s->done = calloc(p->n_roots ? p->n_roots : 1, sizeof(*s->done));
    if (!s->present || !s->set || !s->done || hs_alloc_scratch(p->db, &s->hs) != HS_SUCCESS) {
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
    free(s->done);
    free(s);
}

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    pf_scratch *s = ctx;
    uint32_t fa = s->p->lit_factor[id];

    (void)from;
    (void)to;
    (void)flags;
    if (!s->present[fa]) {
        s->present[fa] = 1;
        s->set[s->n_set++] = fa;
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
    case F_STR: /* every factor of the string */
        for (uint32_t i = 0; i < p->str_nf[f->a]; i++)
            if (!s->present[p->str_f0[f->a] + i])
                return false;
        return true;
    case F_NOSTR: /* an exact string: its one factor found is the string matched */
        return p->str_nf[f->a] != 1 || !s->present[p->str_f0[f->a]];
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
    case F_ATLEAST:
        for (uint32_t i = 0; i < f->n && hits < f->k; i++)
            hits += eval(p, s, p->kids[f->a + i]);
        return hits >= f->k;
    default: /* F_SIZE */
        switch (f->cmp) {
        case S_LT:
            return s->len < f->v;
        case S_LE:
            return s->len <= f->v;
        case S_GT:
            return s->len > f->v;
        case S_GE:
            return s->len >= f->v;
        case S_EQ:
            return s->len == f->v;
        default:
            return s->len != f->v;
        }
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
        return false; /* every root needs a literal */
    s->len = len;
    if (++s->scan == 0) { /* the stamps wrapped: start them again */
        memset(s->done, 0, p->n_roots * sizeof(*s->done));
        s->scan = 1;
    }
    /* only the rules naming a string one of whose literals is here can hold */
    for (size_t i = 0; i < s->n_set; i++) {
        uint32_t fa = s->set[i];
        for (uint32_t j = p->fr_first[fa]; j < p->fr_first[fa + 1]; j++) {
            uint32_t r = p->fr[j];
            if (s->done[r] == s->scan)
                continue;
            s->done[r] = s->scan;
            if (eval(p, s, p->roots[r]))
                return true;
        }
    }
    return false;
}
