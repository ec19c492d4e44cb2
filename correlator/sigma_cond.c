/*
 * sigma_cond.c - Sigma detection conditions: parse into a cond_node tree, evaluate.
 *
 * The language (Sigma specification v2, "Condition"), least to most binding:
 *
 *   expr  := and ("or" and)*
 *   and   := not ("and" not)*
 *   not   := "not" not | atom
 *   atom  := "(" expr ")" | quant | NAME
 *   quant := ("1" | "all") "of" (PATTERN | "them")
 *
 * Lexical rules, as this engine applies them:
 * - whitespace (space, tab, CR, LF, VT, FF) separates tokens; YAML folded
 *   conditions that span lines therefore work;
 * - a word is a run of [A-Za-z0-9_*-]. The keywords and, or, not, of, all, them
 *   are matched case-insensitively (the specification writes them in lower case;
 *   pySigma only accepts lower case), so a selection cannot be named after one;
 *   "1" is the quantifier and cannot name a selection either;
 * - selection names and patterns are compared case-sensitively, as YAML keys are;
 *   `*` in a pattern matches any run of characters (also none) and the pattern
 *   must match the whole name. `*` is only allowed after "1 of" / "all of";
 * - `them` is every selection whose name does not start with "_" (spec v2); a
 *   pattern matches every selection name, "_" ones included (the specification
 *   restricts only `them`; pySigma excludes "_" names from patterns too);
 * - a pattern or `them` that matches nothing is an error, as is a name that is
 *   not a selection; only "1 of" and "all of" exist ("any of", "2 of" are refused);
 * - `|` starts a Sigma v1 aggregation (`| count() by x > 5`, `| near`): refused,
 *   correlation rules replace it.
 *
 * Errors are written to the caller's buffer as "condition: <what> at column N",
 * N being the 1-based byte offset of the offending token in the condition text;
 * a name or pattern that resolves to nothing is reported by its text followed by
 * the rule's selections (the first COND_LIST_MAX) instead of a column. `not` and
 * `(` both count towards the nesting limit. The return value is FH_ERR_PARSE
 * for every mistake in the text, FH_ERR_LIMIT when nesting exceeds
 * COND_MAX_DEPTH, FH_ERR_NOMEM when allocation fails.
 *
 * Tree shape: chains of and/or are built right-leaning (a or (b or c)), which
 * keeps left-to-right evaluation order and lets eval and free loop along the
 * chain instead of recursing, so their recursion depth is bounded by the
 * nesting the parser allows, not by the length of the condition. "1 of" / "all
 * of" that resolve to a single selection become CN_SEL. CN_ONE_OF / CN_ALL_OF
 * list their selections in declaration order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigma.h"

/* Parentheses and `not` nested deeper than this are refused (bounds recursion). */
#define COND_MAX_DEPTH 64
/* Longest token text quoted back in an error message. */
#define COND_TOK_SHOW 64
/* Selection names listed in an "unknown selection" message before "...". */
#define COND_LIST_MAX 16

typedef enum {
    TK_END,
    TK_LPAREN,
    TK_RPAREN,
    TK_WORD, /* a name or a pattern (has_star) */
    TK_AND,
    TK_OR,
    TK_NOT,
    TK_OF,
    TK_ALL,
    TK_ONE, /* the word "1" */
    TK_THEM,
    TK_BAD, /* a character that cannot start a token */
} tok_kind;

typedef struct {
    tok_kind kind;
    size_t pos; /* byte offset in the text */
    size_t len;
    bool has_star;
} token;

typedef struct {
    const char *text;
    size_t len;
    const char *const *names;
    uint32_t nnames;
    size_t pos; /* where the next token starts to be looked for */
    token cur;  /* the current (not yet consumed) token */
    unsigned depth;
    fh_err err;
    char *msg;
    size_t msglen;
} cond_parser;

/* ---- errors --------------------------------------------------------------------- */

/* Appends to the message buffer, truncating silently at its end. */
static void cond_msg_append(cond_parser *p, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!p->msg || p->msglen == 0 || *off >= p->msglen - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(p->msg + *off, p->msglen - *off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *off += (size_t)n;
    if (*off > p->msglen - 1)
        *off = p->msglen - 1;
}

/* Records the first error only; later ones are consequences of it. */
static void cond_fail(cond_parser *p, fh_err err, const char *fmt, ...)
{
    va_list ap;

    if (p->err)
        return;
    p->err = err;
    if (!p->msg || p->msglen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(p->msg, p->msglen, fmt, ap);
    va_end(ap);
}

/* An operand was expected and t came instead. */
static void cond_fail_unexpected(cond_parser *p, const token *t)
{
    if (t->kind == TK_END)
        cond_fail(p, FH_ERR_PARSE, "condition: unexpected end of condition at column %zu",
                  t->pos + 1);
    else
        cond_fail(p, FH_ERR_PARSE, "condition: unexpected '%.*s' at column %zu",
                  (int)(t->len < COND_TOK_SHOW ? t->len : COND_TOK_SHOW), p->text + t->pos,
                  t->pos + 1);
}

/* A TK_BAD token: a character no token starts with. */
static void cond_fail_bad(cond_parser *p, const token *t)
{
    unsigned char c = (unsigned char)p->text[t->pos];

    if (c < 0x20 || c >= 0x7f)
        cond_fail(p, FH_ERR_PARSE, "condition: unexpected byte 0x%02x at column %zu", c,
                  t->pos + 1);
    else
        cond_fail(p, FH_ERR_PARSE, "condition: unexpected character '%c' at column %zu", c,
                  t->pos + 1);
}

/* After a complete operand t came, which is not and, or, the end (or ')' in parentheses). */
static void cond_fail_after_operand(cond_parser *p, const token *t, bool in_parens)
{
    if (t->kind == TK_BAD)
        cond_fail_bad(p, t);
    else if (t->kind == TK_RPAREN)
        cond_fail(p, FH_ERR_PARSE, "condition: unexpected ')' at column %zu", t->pos + 1);
    else
        cond_fail(p, FH_ERR_PARSE, "condition: expected %s before '%.*s' at column %zu",
                  in_parens ? "'and', 'or' or ')'" : "'and' or 'or'",
                  (int)(t->len < COND_TOK_SHOW ? t->len : COND_TOK_SHOW), p->text + t->pos,
                  t->pos + 1);
}

/* Appends " (selections: a, b, c)" to the current message. */
static void cond_msg_list_names(cond_parser *p)
{
    size_t off;
    uint32_t i;

    if (!p->msg || p->msglen == 0)
        return;
    off = strlen(p->msg);
    if (p->nnames == 0) {
        cond_msg_append(p, &off, " (no selections)");
        return;
    }
    cond_msg_append(p, &off, " (selections: ");
    for (i = 0; i < p->nnames && i < COND_LIST_MAX; i++)
        cond_msg_append(p, &off, "%s%s", i ? ", " : "", p->names[i]);
    if (p->nnames > COND_LIST_MAX)
        cond_msg_append(p, &off, ", ... %u more", p->nnames - COND_LIST_MAX);
    cond_msg_append(p, &off, ")");
}

/* ---- tokens --------------------------------------------------------------------- */

static bool cond_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool cond_is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '*';
}

static bool cond_word_is(const cond_parser *p, const token *t, const char *kw)
{
    size_t n = strlen(kw);

    return t->len == n && strncasecmp(p->text + t->pos, kw, n) == 0;
}

/* Reads the token starting at or after p->pos into p->cur and moves p->pos past it. */
static void cond_lex(cond_parser *p)
{
    static const struct {
        const char *word;
        tok_kind kind;
    } keywords[] = {
        {"and", TK_AND}, {"or", TK_OR},     {"not", TK_NOT}, {"of", TK_OF},
        {"all", TK_ALL}, {"them", TK_THEM}, {"1", TK_ONE},
    };
    token *t = &p->cur;
    size_t i;

    while (p->pos < p->len && cond_is_space(p->text[p->pos]))
        p->pos++;
    memset(t, 0, sizeof(*t));
    t->pos = p->pos;
    if (p->pos >= p->len) {
        t->kind = TK_END;
        return;
    }
    if (p->text[p->pos] == '(' || p->text[p->pos] == ')') {
        t->kind = p->text[p->pos] == '(' ? TK_LPAREN : TK_RPAREN;
        t->len = 1;
        p->pos++;
        return;
    }
    if (!cond_is_word(p->text[p->pos])) {
        t->kind = TK_BAD;
        t->len = 1;
        p->pos++;
        return;
    }
    while (p->pos < p->len && cond_is_word(p->text[p->pos])) {
        if (p->text[p->pos] == '*')
            t->has_star = true;
        p->pos++;
    }
    t->len = p->pos - t->pos;
    t->kind = TK_WORD;
    for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (cond_word_is(p, t, keywords[i].word)) {
            t->kind = keywords[i].kind;
            break;
        }
    }
}

/* The token after the current one, without consuming anything. */
static token cond_peek2(cond_parser *p)
{
    size_t save_pos = p->pos;
    token save_cur = p->cur, next;

    cond_lex(p);
    next = p->cur;
    p->pos = save_pos;
    p->cur = save_cur;
    return next;
}

/* ---- names ---------------------------------------------------------------------- */

/* True if glob pat (only `*` is special) matches all of name. */
static bool cond_glob(const char *pat, size_t plen, const char *name)
{
    size_t pi = 0, ni = 0, star_pi = SIZE_MAX, star_ni = 0;
    size_t nlen = strlen(name);

    while (ni < nlen) {
        if (pi < plen && pat[pi] == '*') {
            star_pi = pi++;
            star_ni = ni;
        } else if (pi < plen && pat[pi] == name[ni]) {
            pi++;
            ni++;
        } else if (star_pi != SIZE_MAX) {
            pi = star_pi + 1;
            ni = ++star_ni;
        } else {
            return false;
        }
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

/* ---- nodes ---------------------------------------------------------------------- */

static cond_node *cond_new(cond_parser *p, cond_kind kind)
{
    cond_node *n = calloc(1, sizeof(*n));

    if (!n)
        cond_fail(p, FH_ERR_NOMEM, "condition: out of memory");
    else
        n->kind = kind;
    return n;
}

void sigma_cond_free(cond_node *n)
{
    while (n) {
        cond_node *next = NULL;

        switch (n->kind) {
        case CN_AND:
        case CN_OR:
            sigma_cond_free(n->a); /* depth bounded by the parser's nesting limit */
            next = n->b;
            break;
        case CN_NOT:
            next = n->a;
            break;
        case CN_SEL:
        case CN_ONE_OF:
        case CN_ALL_OF:
            break;
        }
        free(n->sels);
        free(n);
        n = next;
    }
}

/* ---- grammar -------------------------------------------------------------------- */

static cond_node *cond_parse_or(cond_parser *p);

/* NAME: a selection referenced by its exact name. */
static cond_node *cond_parse_name(cond_parser *p)
{
    const token *t = &p->cur;
    cond_node *n;
    uint32_t i;

    if (t->has_star) {
        cond_fail(p, FH_ERR_PARSE,
                  "condition: pattern '%.*s' needs '1 of' or 'all of' in front at column %zu",
                  (int)(t->len < COND_TOK_SHOW ? t->len : COND_TOK_SHOW), p->text + t->pos,
                  t->pos + 1);
        return NULL;
    }
    for (i = 0; i < p->nnames; i++) {
        if (strlen(p->names[i]) == t->len && memcmp(p->names[i], p->text + t->pos, t->len) == 0)
            break;
    }
    if (i == p->nnames) {
        cond_fail(p, FH_ERR_PARSE, "condition: unknown selection '%.*s'",
                  (int)(t->len < COND_TOK_SHOW ? t->len : COND_TOK_SHOW), p->text + t->pos);
        cond_msg_list_names(p);
        return NULL;
    }
    n = cond_new(p, CN_SEL);
    if (!n)
        return NULL;
    n->sel = i;
    cond_lex(p);
    return n;
}

/* quant: the current token is "1" or "all". */
static cond_node *cond_parse_quant(cond_parser *p)
{
    token q = p->cur, t;
    bool them;
    uint32_t i, count = 0;
    cond_node *n;

    cond_lex(p);
    if (p->cur.kind != TK_OF) {
        cond_fail(p, FH_ERR_PARSE, "condition: expected 'of' after '%.*s' at column %zu",
                  (int)q.len, p->text + q.pos, p->cur.pos + 1);
        return NULL;
    }
    cond_lex(p);
    t = p->cur;
    if (t.kind != TK_WORD && t.kind != TK_THEM) {
        cond_fail(p, FH_ERR_PARSE,
                  "condition: expected a selection pattern or 'them' after 'of' at column %zu",
                  t.pos + 1);
        return NULL;
    }
    them = t.kind == TK_THEM;
    for (i = 0; i < p->nnames; i++) {
        if (them ? p->names[i][0] != '_' : cond_glob(p->text + t.pos, t.len, p->names[i]))
            count++;
    }
    if (count == 0) {
        if (them)
            cond_fail(p, FH_ERR_PARSE, "condition: 'them' matches no selection");
        else if (!t.has_star)
            cond_fail(p, FH_ERR_PARSE, "condition: unknown selection '%.*s'",
                      (int)(t.len < COND_TOK_SHOW ? t.len : COND_TOK_SHOW), p->text + t.pos);
        else
            cond_fail(p, FH_ERR_PARSE, "condition: '%.*s' matches no selection",
                      (int)(t.len < COND_TOK_SHOW ? t.len : COND_TOK_SHOW), p->text + t.pos);
        cond_msg_list_names(p);
        return NULL;
    }
    n = cond_new(p, count == 1 ? CN_SEL : q.kind == TK_ALL ? CN_ALL_OF : CN_ONE_OF);
    if (!n)
        return NULL;
    if (count > 1) {
        n->sels = calloc(count, sizeof(*n->sels));
        if (!n->sels) {
            free(n);
            cond_fail(p, FH_ERR_NOMEM, "condition: out of memory");
            return NULL;
        }
    }
    for (i = 0; i < p->nnames; i++) {
        if (them ? p->names[i][0] != '_' : cond_glob(p->text + t.pos, t.len, p->names[i])) {
            if (count == 1)
                n->sel = i;
            else
                n->sels[n->nsels++] = i;
        }
    }
    cond_lex(p);
    return n;
}

static cond_node *cond_parse_atom(cond_parser *p)
{
    token open, next;
    cond_node *n;

    switch (p->cur.kind) {
    case TK_LPAREN:
        open = p->cur;
        if (++p->depth > COND_MAX_DEPTH) {
            cond_fail(p, FH_ERR_LIMIT, "condition: nested deeper than %d at column %zu",
                      COND_MAX_DEPTH, open.pos + 1);
            return NULL;
        }
        cond_lex(p);
        n = cond_parse_or(p);
        if (!n)
            return NULL;
        p->depth--;
        if (p->cur.kind != TK_RPAREN) {
            if (p->cur.kind == TK_END)
                cond_fail(p, FH_ERR_PARSE, "condition: missing ')' for '(' at column %zu",
                          open.pos + 1);
            else
                cond_fail_after_operand(p, &p->cur, true);
            sigma_cond_free(n);
            return NULL;
        }
        cond_lex(p);
        return n;
    case TK_ONE:
    case TK_ALL:
        return cond_parse_quant(p);
    case TK_WORD:
        next = cond_peek2(p);
        if (next.kind == TK_OF) {
            cond_fail(p, FH_ERR_PARSE,
                      "condition: '%.*s of' is not supported (only 1 of / all of) at column %zu",
                      (int)(p->cur.len < COND_TOK_SHOW ? p->cur.len : COND_TOK_SHOW),
                      p->text + p->cur.pos, p->cur.pos + 1);
            return NULL;
        }
        return cond_parse_name(p);
    case TK_BAD:
        cond_fail_bad(p, &p->cur);
        return NULL;
    default:
        cond_fail_unexpected(p, &p->cur);
        return NULL;
    }
}

static cond_node *cond_parse_not(cond_parser *p)
{
    cond_node *n, *inner;
    size_t pos;
    unsigned nots = 0;

    /* `not not not x`: count in a loop, build the chain afterwards. */
    while (p->cur.kind == TK_NOT) {
        pos = p->cur.pos;
        if (p->depth + nots + 1 > COND_MAX_DEPTH) {
            cond_fail(p, FH_ERR_LIMIT, "condition: nested deeper than %d at column %zu",
                      COND_MAX_DEPTH, pos + 1);
            return NULL;
        }
        nots++;
        cond_lex(p);
    }
    p->depth += nots;
    inner = cond_parse_atom(p);
    p->depth -= nots;
    if (!inner)
        return NULL;
    while (nots--) {
        n = cond_new(p, CN_NOT);
        if (!n) {
            sigma_cond_free(inner);
            return NULL;
        }
        n->a = inner;
        inner = n;
    }
    return inner;
}

/*
 * One chain of the binary operator `op` over operands parsed by `sub`, built
 * right-leaning: x1 op (x2 op (x3 ...)).
 */
static cond_node *cond_parse_chain(cond_parser *p, tok_kind op, cond_kind kind,
                                   cond_node *(*sub)(cond_parser *))
{
    cond_node *first, *root = NULL, **slot = &root, *x, *n;

    first = sub(p);
    if (!first || p->cur.kind != op)
        return first;
    x = first;
    while (p->cur.kind == op) {
        cond_lex(p);
        n = cond_new(p, kind);
        if (!n)
            goto fail;
        n->a = x;
        *slot = n;
        slot = &n->b;
        x = sub(p);
        if (!x)
            goto fail;
    }
    *slot = x;
    return root;

fail:
    sigma_cond_free(x);    /* an operand not linked yet, or NULL */
    sigma_cond_free(root); /* a NULL in the last b slot is fine */
    return NULL;
}

static cond_node *cond_parse_and(cond_parser *p)
{
    return cond_parse_chain(p, TK_AND, CN_AND, cond_parse_not);
}

static cond_node *cond_parse_or(cond_parser *p)
{
    return cond_parse_chain(p, TK_OR, CN_OR, cond_parse_and);
}

fh_err sigma_cond_parse(const char *text, const char *const *sel_names, uint32_t nsel,
                        cond_node **out, char *err, size_t errlen)
{
    cond_parser p;
    cond_node *n;
    const char *bar;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.text = text ? text : "";
    p.len = strlen(p.text);
    p.names = sel_names;
    p.nnames = nsel;
    p.msg = err;
    p.msglen = errlen;
    if (err && errlen)
        err[0] = '\0';

    /* Checked first: the rest of a v1 aggregation is not worth a syntax error. */
    bar = memchr(p.text, '|', p.len);
    if (bar) {
        cond_fail(&p, FH_ERR_PARSE,
                  "condition: aggregation expressions ('| count()') are not supported: "
                  "use a correlation rule");
        return p.err;
    }
    cond_lex(&p);
    if (p.cur.kind == TK_END) {
        cond_fail(&p, FH_ERR_PARSE, "condition: empty condition");
        return p.err;
    }
    n = cond_parse_or(&p);
    if (n && p.cur.kind != TK_END)
        cond_fail_after_operand(&p, &p.cur, false);
    if (p.err) {
        sigma_cond_free(n);
        return p.err;
    }
    *out = n;
    return FH_OK;
}

/* ---- evaluation ----------------------------------------------------------------- */

bool sigma_cond_eval(const cond_node *n, sel_eval_fn sel, void *ctx)
{
    bool neg = false; /* an odd number of `not` above n */
    uint32_t i;

    for (;;) {
        switch (n->kind) {
        case CN_SEL:
            return sel(ctx, n->sel) != neg;
        case CN_NOT:
            neg = !neg;
            n = n->a;
            continue;
        case CN_AND:
            if (!sigma_cond_eval(n->a, sel, ctx))
                return neg;
            n = n->b;
            continue;
        case CN_OR:
            if (sigma_cond_eval(n->a, sel, ctx))
                return !neg;
            n = n->b;
            continue;
        case CN_ONE_OF:
            for (i = 0; i < n->nsels; i++) {
                if (sel(ctx, n->sels[i]))
                    return !neg;
            }
            return neg;
        case CN_ALL_OF:
            for (i = 0; i < n->nsels; i++) {
                if (!sel(ctx, n->sels[i]))
                    return neg;
            }
            return !neg;
        }
        return false; /* not reached: every kind is handled above */
    }
}
