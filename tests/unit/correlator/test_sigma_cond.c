/*
 * test_sigma_cond.c - Sigma conditions: every construct, precedence (checked
 * against truth tables), `them` and wildcard resolution, short-circuit order,
 * every error message, the nesting limit, random input, and the conditions of
 * the rules in /work/shared/data/sigma/rules (copied below as data).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../correlator/sigma.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers -------------------------------------------------------------------- */

static cond_node *parse_ok(const char *text, const char *const *names, uint32_t n)
{
    char err[256];
    cond_node *c = NULL;
    fh_err rc = sigma_cond_parse(text, names, n, &c, err, sizeof(err));

    if (rc != FH_OK)
        fail_msg("'%s' did not parse: %s", text, err);
    assert_non_null(c);
    return c;
}

static void parse_err(const char *text, const char *const *names, uint32_t n, fh_err want_rc,
                      const char *want_msg)
{
    char err[512];
    cond_node *c = (cond_node *)0x1; /* must be reset to NULL */
    fh_err rc = sigma_cond_parse(text, names, n, &c, err, sizeof(err));

    if (rc == FH_OK)
        fail_msg("'%s' parsed but should fail with: %s", text, want_msg);
    assert_int_equal(rc, want_rc);
    assert_null(c);
    assert_string_equal(err, want_msg);
}

/* The selection callback: truth of selection i is bit i of `truth`; calls are logged. */
typedef struct {
    uint64_t truth;
    unsigned ncalls;
    uint32_t calls[64];
} eval_ctx;

static bool sel_bit(void *vctx, uint32_t idx)
{
    eval_ctx *ctx = vctx;

    if (ctx->ncalls < ARRAY_LEN(ctx->calls))
        ctx->calls[ctx->ncalls] = idx;
    ctx->ncalls++;
    return idx < 64 && (ctx->truth >> idx & 1u);
}

static bool eval_mask(const cond_node *c, uint64_t truth, unsigned *ncalls)
{
    eval_ctx ctx = {.truth = truth};
    bool r = sigma_cond_eval(c, sel_bit, &ctx);

    if (ncalls)
        *ncalls = ctx.ncalls;
    return r;
}

/* Checks the parsed condition against a reference over every assignment of n selections. */
typedef bool (*ref_fn)(unsigned m);

static void check_truth_table(const char *text, const char *const *names, uint32_t n, ref_fn ref)
{
    cond_node *c = parse_ok(text, names, n);
    unsigned m;

    for (m = 0; m < (1u << n); m++) {
        if (eval_mask(c, m, NULL) != ref(m))
            fail_msg("'%s' with truth mask 0x%x: got %d, want %d", text, m, !ref(m), ref(m));
    }
    sigma_cond_free(c);
}

/* Bits of the truth mask, for the reference functions. */
#define B0 ((m & 1u) != 0)
#define B1 ((m & 2u) != 0)
#define B2 ((m & 4u) != 0)
#define B3 ((m & 8u) != 0)
#define B4 ((m & 16u) != 0)

static const char *const ABC[] = {"a", "b", "c", "d"};

/* ---- constructs ----------------------------------------------------------------- */

static void test_single_selection(void **state)
{
    static const char *const names[] = {"filter", "selection"};
    cond_node *c;

    (void)state;
    c = parse_ok("selection", names, 2);
    assert_int_equal(c->kind, CN_SEL);
    assert_int_equal(c->sel, 1);
    assert_true(eval_mask(c, 2, NULL));
    assert_false(eval_mask(c, 1, NULL));
    sigma_cond_free(c);

    /* Surrounding whitespace, tabs and newlines (YAML folded scalars) are fine. */
    c = parse_ok("  \tselection\n", names, 2);
    assert_int_equal(c->kind, CN_SEL);
    assert_int_equal(c->sel, 1);
    sigma_cond_free(c);

    /* '-' belongs to names, as in pySigma. */
    static const char *const dashed[] = {"sel-a", "sel-b"};
    c = parse_ok("sel-a and not sel-b", dashed, 2);
    assert_int_equal(c->kind, CN_AND);
    assert_int_equal(c->a->sel, 0);
    assert_int_equal(c->b->kind, CN_NOT);
    assert_int_equal(c->b->a->sel, 1);
    sigma_cond_free(c);

    sigma_cond_free(NULL);
}

static bool ref_and(unsigned m)
{
    return B0 && B1;
}
static bool ref_or(unsigned m)
{
    return B0 || B1;
}
static bool ref_not(unsigned m)
{
    return !B0;
}
static bool ref_and3(unsigned m)
{
    return B0 && B1 && B2;
}
static bool ref_or3(unsigned m)
{
    return B0 || B1 || B2;
}
static bool ref_not_not(unsigned m)
{
    return B0;
}
static bool ref_not3(unsigned m)
{
    return !B0;
}

static void test_and_or_not(void **state)
{
    cond_node *c;

    (void)state;
    check_truth_table("a and b", ABC, 2, ref_and);
    check_truth_table("a or b", ABC, 2, ref_or);
    check_truth_table("not a", ABC, 1, ref_not);
    check_truth_table("a and b and c", ABC, 3, ref_and3);
    check_truth_table("a or b or c", ABC, 3, ref_or3);
    check_truth_table("not not a", ABC, 1, ref_not_not);
    check_truth_table("not not not a", ABC, 1, ref_not3);

    /* Chains lean right: a and (b and c), evaluated left to right. */
    c = parse_ok("a and b and c", ABC, 3);
    assert_int_equal(c->kind, CN_AND);
    assert_int_equal(c->a->kind, CN_SEL);
    assert_int_equal(c->a->sel, 0);
    assert_int_equal(c->b->kind, CN_AND);
    assert_int_equal(c->b->a->sel, 1);
    assert_int_equal(c->b->b->sel, 2);
    sigma_cond_free(c);

    c = parse_ok("not a", ABC, 1);
    assert_int_equal(c->kind, CN_NOT);
    assert_int_equal(c->a->kind, CN_SEL);
    sigma_cond_free(c);
}

/* Keywords in any case; names stay case-sensitive. */
static bool ref_case(unsigned m)
{
    return (!B0 && B1) || B2;
}

static void test_keywords_any_case(void **state)
{
    static const char *const names[] = {"sel1", "sel2", "Filter"};
    cond_node *c;

    (void)state;
    check_truth_table("NOT a AND b OR c", ABC, 3, ref_case);
    check_truth_table("Not a And b Or c", ABC, 3, ref_case);

    c = parse_ok("ALL OF sel* AND NOT 1 OF Them", names, 3);
    assert_int_equal(c->kind, CN_AND);
    assert_int_equal(c->a->kind, CN_ALL_OF);
    assert_int_equal(c->b->kind, CN_NOT);
    assert_int_equal(c->b->a->kind, CN_ONE_OF);
    assert_int_equal(c->b->a->nsels, 3);
    sigma_cond_free(c);

    c = parse_ok("Filter", names, 3);
    assert_int_equal(c->sel, 2);
    sigma_cond_free(c);
    parse_err("filter", names, 3, FH_ERR_PARSE,
              "condition: unknown selection 'filter' (selections: sel1, sel2, Filter)");
}

/* ---- precedence: or < and < not < x of < ( ) ----------------------------------- */

static bool ref_p1(unsigned m)
{
    return (!B0) && B1;
}
static bool ref_p2(unsigned m)
{
    return B0 || (B1 && B2);
}
static bool ref_p3(unsigned m)
{
    return (B0 && B1) || B2;
}
static bool ref_p4(unsigned m)
{
    return (!B0) || B1;
}
static bool ref_p5(unsigned m)
{
    return !(B0 || B1);
}
static bool ref_p6(unsigned m)
{
    return (B0 || B1) && B2;
}
static bool ref_p7(unsigned m)
{
    return B0 && (B1 || (B2 && !B3));
}
static bool ref_p8(unsigned m)
{
    return (B0 && !B1) || (!B2 && B3);
}
static bool ref_p9(unsigned m)
{
    return B0 || (!B1 && B2) || B3;
}
/* names sel1 sel2 filter1 filter2 other */
static bool ref_q1(unsigned m)
{
    return (B0 || B1) && !(B2 || B3);
}
static bool ref_q2(unsigned m)
{
    return !(B0 || B1);
}
static bool ref_q3(unsigned m)
{
    return (B0 && B1) || B4;
}
static bool ref_q4(unsigned m)
{
    return B4 && !(B2 && B3);
}
static bool ref_q5(unsigned m)
{
    return (B0 || B1) && !B4;
}

static void test_precedence(void **state)
{
    static const char *const names[] = {"sel1", "sel2", "filter1", "filter2", "other"};
    cond_node *c;

    (void)state;
    check_truth_table("not a and b", ABC, 2, ref_p1);
    check_truth_table("(not a) and b", ABC, 2, ref_p1);
    check_truth_table("a or b and c", ABC, 3, ref_p2);
    check_truth_table("a or (b and c)", ABC, 3, ref_p2);
    check_truth_table("a and b or c", ABC, 3, ref_p3);
    check_truth_table("not a or b", ABC, 2, ref_p4);
    check_truth_table("not (a or b)", ABC, 2, ref_p5);
    check_truth_table("(a or b) and c", ABC, 3, ref_p6);
    check_truth_table("a and (b or (c and not d))", ABC, 4, ref_p7);
    check_truth_table("a and not b or not c and d", ABC, 4, ref_p8);
    check_truth_table("a or not b and c or d", ABC, 4, ref_p9);

    check_truth_table("1 of sel* and not 1 of filter*", names, 5, ref_q1);
    check_truth_table("not 1 of sel*", names, 5, ref_q2);
    check_truth_table("all of sel* or other", names, 5, ref_q3);
    check_truth_table("other and not all of filter*", names, 5, ref_q4);
    check_truth_table("1 of sel* and not other", names, 5, ref_q5);

    /* Shapes: `not a and b` is (not a) and b; `a or b and c` is a or (b and c). */
    c = parse_ok("not a and b", ABC, 2);
    assert_int_equal(c->kind, CN_AND);
    assert_int_equal(c->a->kind, CN_NOT);
    assert_int_equal(c->b->kind, CN_SEL);
    sigma_cond_free(c);
    c = parse_ok("a or b and c", ABC, 3);
    assert_int_equal(c->kind, CN_OR);
    assert_int_equal(c->a->kind, CN_SEL);
    assert_int_equal(c->b->kind, CN_AND);
    sigma_cond_free(c);
    c = parse_ok("not 1 of sel*", names, 5);
    assert_int_equal(c->kind, CN_NOT);
    assert_int_equal(c->a->kind, CN_ONE_OF);
    sigma_cond_free(c);
}

static bool ref_par1(unsigned m)
{
    return B0;
}
static bool ref_par2(unsigned m)
{
    return !(!(B0 && B1) || B2);
}
static bool ref_par3(unsigned m)
{
    return ((!(B0 && B1) || B2) && B0) || (B1 && !B1);
}

static void test_parentheses(void **state)
{
    (void)state;
    check_truth_table("(a)", ABC, 1, ref_par1);
    check_truth_table("((((a))))", ABC, 1, ref_par1);
    check_truth_table("not (not (a and b) or c)", ABC, 3, ref_par2);
    check_truth_table("not(not(a and b)or c)", ABC, 3, ref_par2);
    check_truth_table("( ( not ( a and b ) ) or ( c ) ) and ( a ) or ( b ) and ( not b )", ABC, 3,
                      ref_par3);
}

/* ---- 1 of / all of / them --------------------------------------------------------- */

static void assert_sels(const cond_node *c, cond_kind kind, const uint32_t *want, uint32_t n)
{
    uint32_t i;

    assert_int_equal(c->kind, kind);
    assert_int_equal(c->nsels, n);
    for (i = 0; i < n; i++)
        assert_int_equal(c->sels[i], want[i]);
}

static bool ref_one_of(unsigned m)
{
    return B0 || B2;
}
static bool ref_all_of(unsigned m)
{
    return B0 && B2;
}

static void test_quantifiers(void **state)
{
    static const char *const names[] = {"selection_a", "filter", "selection_b"};
    static const uint32_t both[] = {0, 2};
    cond_node *c;

    (void)state;
    c = parse_ok("1 of selection_*", names, 3);
    assert_sels(c, CN_ONE_OF, both, 2);
    sigma_cond_free(c);
    c = parse_ok("all of selection_*", names, 3);
    assert_sels(c, CN_ALL_OF, both, 2);
    sigma_cond_free(c);
    check_truth_table("1 of selection_*", names, 3, ref_one_of);
    check_truth_table("all of selection_*", names, 3, ref_all_of);

    /* A quantifier over one selection is just that selection. */
    c = parse_ok("1 of filter*", names, 3);
    assert_int_equal(c->kind, CN_SEL);
    assert_int_equal(c->sel, 1);
    assert_null(c->sels);
    sigma_cond_free(c);
    c = parse_ok("all of filter", names, 3);
    assert_int_equal(c->kind, CN_SEL);
    assert_int_equal(c->sel, 1);
    sigma_cond_free(c);

    /* them: every selection, in declaration order. */
    static const uint32_t all3[] = {0, 1, 2};
    c = parse_ok("1 of them", names, 3);
    assert_sels(c, CN_ONE_OF, all3, 3);
    sigma_cond_free(c);
    c = parse_ok("all of them", names, 3);
    assert_sels(c, CN_ALL_OF, all3, 3);
    sigma_cond_free(c);
}

static void test_them_excludes_underscore(void **state)
{
    static const char *const names[] = {"sel", "_helper", "filter", "_other"};
    static const uint32_t visible[] = {0, 2};
    static const uint32_t hidden[] = {1, 3};
    static const char *const one_visible[] = {"_a", "sel", "_b"};
    static const char *const none_visible[] = {"_a", "_b"};
    cond_node *c;

    (void)state;
    c = parse_ok("1 of them", names, 4);
    assert_sels(c, CN_ONE_OF, visible, 2);
    sigma_cond_free(c);
    c = parse_ok("all of them", names, 4);
    assert_sels(c, CN_ALL_OF, visible, 2);
    sigma_cond_free(c);

    c = parse_ok("all of them", one_visible, 3);
    assert_int_equal(c->kind, CN_SEL);
    assert_int_equal(c->sel, 1);
    sigma_cond_free(c);

    parse_err("1 of them", none_visible, 2, FH_ERR_PARSE,
              "condition: 'them' matches no selection (selections: _a, _b)");

    /* Patterns and plain names reach "_" selections (only `them` skips them). */
    c = parse_ok("1 of _*", names, 4);
    assert_sels(c, CN_ONE_OF, hidden, 2);
    sigma_cond_free(c);
    c = parse_ok("sel and not _helper", names, 4);
    assert_int_equal(c->b->a->sel, 1);
    sigma_cond_free(c);
    c = parse_ok("1 of *", names, 4);
    assert_int_equal(c->nsels, 4);
    sigma_cond_free(c);
}

static void test_wildcards(void **state)
{
    static const char *const names[] = {
        "selection",   /* 0 */
        "selection_1", /* 1 */
        "sel_mid_dle", /* 2 */
        "filter_x",    /* 3 */
        "x_filter",    /* 4 */
        "middle",      /* 5 */
        "mid_dle",     /* 6 */
        "dle",         /* 7 */
    };
    static const struct {
        const char *cond;
        uint32_t n;
        uint32_t sels[8];
    } cases[] = {
        {"1 of selection*", 2, {0, 1}}, /* prefix*: the bare prefix matches too */
        {"1 of selection_*", 1, {1}},
        {"1 of *filter", 1, {4}}, /* *suffix */
        {"1 of *_x", 1, {3}},
        {"1 of *", 8, {0, 1, 2, 3, 4, 5, 6, 7}},
        {"1 of **", 8, {0, 1, 2, 3, 4, 5, 6, 7}},
        {"1 of mid*dle", 2, {5, 6}}, /* mid*dle: `*` may match nothing */
        {"1 of *mid*", 3, {2, 5, 6}},
        {"1 of *dle", 4, {2, 5, 6, 7}},
        {"1 of s*_*_*e", 1, {2}},
        {"1 of *i*t*", 2, {3, 4}},
        {"1 of x_filter", 1, {4}}, /* no star: exactly that name */
        {"1 of filter*x", 1, {3}},
    };
    size_t i;
    uint32_t j;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        cond_node *c = parse_ok(cases[i].cond, names, ARRAY_LEN(names));
        uint32_t want_n = cases[i].n;

        if (want_n == 1) {
            assert_int_equal(c->kind, CN_SEL);
            assert_int_equal(c->sel, cases[i].sels[0]);
        } else {
            if (c->nsels != want_n)
                fail_msg("'%s': %u selections, want %u", cases[i].cond, c->nsels, want_n);
            for (j = 0; j < want_n; j++)
                assert_int_equal(c->sels[j], cases[i].sels[j]);
        }
        sigma_cond_free(c);
    }

    /* The whole name must match: no prefix matching as pySigma's re.match does. */
    parse_err("1 of select", names, ARRAY_LEN(names), FH_ERR_PARSE,
              "condition: unknown selection 'select' (selections: selection, selection_1, "
              "sel_mid_dle, filter_x, x_filter, middle, mid_dle, dle)");
    parse_err("1 of *filte", names, ARRAY_LEN(names), FH_ERR_PARSE,
              "condition: '*filte' matches no selection (selections: selection, selection_1, "
              "sel_mid_dle, filter_x, x_filter, middle, mid_dle, dle)");
    /* Matching is case-sensitive, like YAML keys. */
    parse_err("1 of SEL*", names, ARRAY_LEN(names), FH_ERR_PARSE,
              "condition: 'SEL*' matches no selection (selections: selection, selection_1, "
              "sel_mid_dle, filter_x, x_filter, middle, mid_dle, dle)");
}

/* ---- evaluation order and short-circuit ------------------------------------------- */

static void assert_calls(const char *text, const char *const *names, uint32_t n, uint64_t truth,
                         bool want, const uint32_t *want_calls, unsigned nwant)
{
    cond_node *c = parse_ok(text, names, n);
    eval_ctx ctx = {.truth = truth};
    unsigned i;

    assert_int_equal(sigma_cond_eval(c, sel_bit, &ctx), want);
    if (ctx.ncalls != nwant)
        fail_msg("'%s' truth 0x%llx: %u callbacks, want %u", text, (unsigned long long)truth,
                 ctx.ncalls, nwant);
    for (i = 0; i < nwant; i++)
        assert_int_equal(ctx.calls[i], want_calls[i]);
    sigma_cond_free(c);
}

static void test_short_circuit(void **state)
{
    static const char *const names[] = {"sel1", "sel2", "sel3", "filter"};

    (void)state;
    assert_calls("a and b", ABC, 2, 0x0, false, (const uint32_t[]){0}, 1);
    assert_calls("a and b", ABC, 2, 0x1, false, (const uint32_t[]){0, 1}, 2);
    assert_calls("a or b", ABC, 2, 0x1, true, (const uint32_t[]){0}, 1);
    assert_calls("a or b", ABC, 2, 0x0, false, (const uint32_t[]){0, 1}, 2);
    /* Left to right, as written, whatever the selection indices. */
    assert_calls("c or b or a", ABC, 3, 0x0, false, (const uint32_t[]){2, 1, 0}, 3);
    assert_calls("c and b and a", ABC, 3, 0x7, true, (const uint32_t[]){2, 1, 0}, 3);
    assert_calls("c or b or a", ABC, 3, 0x2, true, (const uint32_t[]){2, 1}, 2);
    /* Through not: `not a and b` stops when a is true. */
    assert_calls("not a and b", ABC, 2, 0x1, false, (const uint32_t[]){0}, 1);
    assert_calls("not not a or b", ABC, 2, 0x1, true, (const uint32_t[]){0}, 1);
    assert_calls("not (a or b) and c", ABC, 3, 0x2, false, (const uint32_t[]){0, 1}, 2);
    assert_calls("not (a and b) or c", ABC, 3, 0x0, true, (const uint32_t[]){0}, 1);
    /* 1 of stops at the first true one, all of at the first false one. */
    assert_calls("1 of sel*", names, 4, 0x2, true, (const uint32_t[]){0, 1}, 2);
    assert_calls("1 of sel*", names, 4, 0x0, false, (const uint32_t[]){0, 1, 2}, 3);
    assert_calls("all of sel*", names, 4, 0x5, false, (const uint32_t[]){0, 1}, 2);
    assert_calls("all of sel*", names, 4, 0x7, true, (const uint32_t[]){0, 1, 2}, 3);
    assert_calls("not all of sel*", names, 4, 0x0, true, (const uint32_t[]){0}, 1);
    assert_calls("1 of sel* and not filter", names, 4, 0x9, false, (const uint32_t[]){0, 3}, 2);
    assert_calls("1 of sel* and not filter", names, 4, 0x0, false, (const uint32_t[]){0, 1, 2}, 3);
    assert_calls("filter or all of sel*", names, 4, 0x8, true, (const uint32_t[]){3}, 1);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_error_messages(void **state)
{
    static const struct {
        const char *cond;
        const char *msg;
    } cases[] = {
        {"", "condition: empty condition"},
        {" \t\n ", "condition: empty condition"},
        {"(a) and (b))", "condition: unexpected ')' at column 12"},
        {")", "condition: unexpected ')' at column 1"},
        {"()", "condition: unexpected ')' at column 2"},
        {"slection", "condition: unknown selection 'slection' (selections: a, b, c)"},
        {"a and slection", "condition: unknown selection 'slection' (selections: a, b, c)"},
        {"1 a", "condition: expected 'of' after '1' at column 3"},
        {"1", "condition: expected 'of' after '1' at column 2"},
        {"all them", "condition: expected 'of' after 'all' at column 5"},
        {"a or ALL", "condition: expected 'of' after 'ALL' at column 9"},
        {"2 of a*", "condition: '2 of' is not supported (only 1 of / all of) at column 1"},
        {"a and any of them",
         "condition: 'any of' is not supported (only 1 of / all of) at column 7"},
        {"1 of", "condition: expected a selection pattern or 'them' after 'of' at column 5"},
        {"1 of (a)", "condition: expected a selection pattern or 'them' after 'of' at column 6"},
        {"all of not", "condition: expected a selection pattern or 'them' after 'of' at column 8"},
        {"1 of x*", "condition: 'x*' matches no selection (selections: a, b, c)"},
        {"1 of x", "condition: unknown selection 'x' (selections: a, b, c)"},
        {"a*", "condition: pattern 'a*' needs '1 of' or 'all of' in front at column 1"},
        {"not *", "condition: pattern '*' needs '1 of' or 'all of' in front at column 5"},
        {"a b", "condition: expected 'and' or 'or' before 'b' at column 3"},
        {"a not b", "condition: expected 'and' or 'or' before 'not' at column 3"},
        {"1 of them a", "condition: expected 'and' or 'or' before 'a' at column 11"},
        {"a (b)", "condition: expected 'and' or 'or' before '(' at column 3"},
        {"(a b)", "condition: expected 'and', 'or' or ')' before 'b' at column 4"},
        {"(a and b", "condition: missing ')' for '(' at column 1"},
        {"a and ((b or c)", "condition: missing ')' for '(' at column 7"},
        {"a and", "condition: unexpected end of condition at column 6"},
        {"not", "condition: unexpected end of condition at column 4"},
        {"and a", "condition: unexpected 'and' at column 1"},
        {"a or or b", "condition: unexpected 'or' at column 6"},
        {"them", "condition: unexpected 'them' at column 1"},
        {"of a", "condition: unexpected 'of' at column 1"},
        {"a # b", "condition: unexpected character '#' at column 3"},
        {"#", "condition: unexpected character '#' at column 1"},
        {"a.b", "condition: unexpected character '.' at column 2"},
        {"(a.b)", "condition: unexpected character '.' at column 3"},
        {"\"a\"", "condition: unexpected character '\"' at column 1"},
        {"a\x01", "condition: unexpected byte 0x01 at column 2"},
        {"a and \xc3\xa9", "condition: unexpected byte 0xc3 at column 7"},
        {"selection | count() by src_ip > 5",
         "condition: aggregation expressions ('| count()') are not supported: use a correlation "
         "rule"},
        {"a | near b",
         "condition: aggregation expressions ('| count()') are not supported: use a correlation "
         "rule"},
        /* The aggregation is reported even when the rest is wrong too. */
        {"slection | count(x) by y > 3",
         "condition: aggregation expressions ('| count()') are not supported: use a correlation "
         "rule"},
        {"|",
         "condition: aggregation expressions ('| count()') are not supported: use a correlation "
         "rule"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++)
        parse_err(cases[i].cond, ABC, 3, FH_ERR_PARSE, cases[i].msg);
    parse_err(NULL, ABC, 3, FH_ERR_PARSE, "condition: empty condition");
}

static void test_error_selection_lists(void **state)
{
    static const char *const many[] = {"s0",  "s1",  "s2",  "s3",  "s4",  "s5",  "s6",
                                       "s7",  "s8",  "s9",  "s10", "s11", "s12", "s13",
                                       "s14", "s15", "s16", "s17", "s18", "s19"};
    char text[160], want[256];

    (void)state;
    parse_err("a", NULL, 0, FH_ERR_PARSE, "condition: unknown selection 'a' (no selections)");
    parse_err("1 of them", NULL, 0, FH_ERR_PARSE,
              "condition: 'them' matches no selection (no selections)");
    parse_err("x", many, ARRAY_LEN(many), FH_ERR_PARSE,
              "condition: unknown selection 'x' (selections: s0, s1, s2, s3, s4, s5, s6, s7, s8, "
              "s9, s10, s11, s12, s13, s14, s15, ... 4 more)");

    /* A long token is quoted back cut at 64 characters. */
    memset(text, 'x', 100);
    text[100] = '\0';
    snprintf(want, sizeof(want), "condition: unknown selection '%.64s' (selections: a, b, c)",
             text);
    parse_err(text, ABC, 3, FH_ERR_PARSE, want);
}

/* Small or absent error buffers: messages are cut, never overrun. */
static void test_error_buffer(void **state)
{
    char err[16];
    cond_node *c = NULL;

    (void)state;
    memset(err, 'Z', sizeof(err));
    assert_int_equal(sigma_cond_parse("slection", ABC, 3, &c, err, 10), FH_ERR_PARSE);
    assert_string_equal(err, "condition");
    assert_int_equal(err[10], 'Z');
    assert_null(c);

    memset(err, 'Z', sizeof(err));
    assert_int_equal(sigma_cond_parse("slection", ABC, 3, &c, err, 1), FH_ERR_PARSE);
    assert_int_equal(err[0], '\0');
    assert_int_equal(err[1], 'Z');

    assert_int_equal(sigma_cond_parse("slection", ABC, 3, &c, NULL, 0), FH_ERR_PARSE);
    assert_int_equal(sigma_cond_parse("a b", ABC, 3, &c, NULL, 0), FH_ERR_PARSE);
    assert_null(c);

    /* Success clears the buffer. */
    memset(err, 'Z', sizeof(err));
    assert_int_equal(sigma_cond_parse("a", ABC, 3, &c, err, sizeof(err)), FH_OK);
    assert_int_equal(err[0], '\0');
    sigma_cond_free(c);
}

/* ---- limits ----------------------------------------------------------------------- */

static char *repeat(const char *head, const char *unit, unsigned n, const char *mid,
                    const char *unit2, unsigned n2)
{
    size_t len = strlen(head) + strlen(unit) * n + strlen(mid) + strlen(unit2) * n2 + 1;
    char *s = malloc(len), *p;
    unsigned i;

    assert_non_null(s);
    p = stpcpy(s, head);
    for (i = 0; i < n; i++)
        p = stpcpy(p, unit);
    p = stpcpy(p, mid);
    for (i = 0; i < n2; i++)
        p = stpcpy(p, unit2);
    return s;
}

static void check_depth(const char *head, const char *unit, unsigned n, const char *mid,
                        const char *unit2, unsigned n2, size_t err_col)
{
    char *s = repeat(head, unit, n, mid, unit2, n2);
    char want[96];

    if (err_col == 0) {
        cond_node *c = parse_ok(s, ABC, 3);

        (void)eval_mask(c, 1, NULL); /* walks the whole depth */
        sigma_cond_free(c);
    } else {
        snprintf(want, sizeof(want), "condition: nested deeper than 64 at column %zu", err_col);
        parse_err(s, ABC, 3, FH_ERR_LIMIT, want);
    }
    free(s);
}

static void test_depth_limit(void **state)
{
    (void)state;
    check_depth("", "(", 64, "a", ")", 64, 0);
    check_depth("", "(", 65, "a", ")", 65, 65);
    check_depth("", "not ", 64, "a", "", 0, 0);
    check_depth("", "not ", 65, "a", "", 0, 64 * 4 + 1);
    check_depth("", "not (", 32, "a", ")", 32, 0);
    check_depth("", "not (", 32, "not a", ")", 32, 32 * 5 + 1);
    check_depth("b and ", "(a or ", 64, "c", ")", 64, 0);
    check_depth("b and ", "(a or ", 65, "c", ")", 65, 6 + 64 * 6 + 1);
    /* Far past the limit, unbalanced: still one clean error. */
    check_depth("", "(", 100000, "", "", 0, 65);
    check_depth("", "not ", 100000, "", "", 0, 64 * 4 + 1);
}

/* Long and/or chains are not nesting: no limit, and no deep recursion either. */
static void test_long_chains(void **state)
{
    static const char *const ops[] = {"a or ", "a and ", "(a or b) and not "};
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(ops); i++) {
        char *s = repeat("", ops[i], 200000, "c", "", 0);
        cond_node *c = parse_ok(s, ABC, 3);
        unsigned calls;

        switch (i) {
        case 0:
            assert_false(eval_mask(c, 0, &calls));
            assert_int_equal(calls, 200001);
            assert_true(eval_mask(c, 1, &calls));
            assert_int_equal(calls, 1);
            break;
        case 1:
            assert_true(eval_mask(c, 5, &calls));
            assert_int_equal(calls, 200001);
            break;
        default:
            /* (a or b) and (not (a or b)) and ...: false after four callbacks. */
            assert_false(eval_mask(c, 2, &calls));
            assert_int_equal(calls, 4);
            break;
        }
        sigma_cond_free(c);
        free(s);
    }
}

/* ---- real rules ------------------------------------------------------------------- */

/*
 * Every distinct (condition, selection names) pair of the rules under
 * /work/shared/data/sigma/rules/ (detection.condition and the other keys of
 * detection, in file order), copied here so the test needs no YAML.
 */
static const struct {
    const char *rule;
    const char *cond;
    const char *names; /* space-separated, in declaration order */
} real_rules[] = {
    {"net_connection_lnx_back_connect_shell_dev", "selection and not filter", "selection filter"},
    {"net_connection_lnx_crypto_mining_indicators", "selection", "selection"},
    {"net_connection_lnx_susp_malware_callback_port", "selection and not 1 of filter_main_*",
     "selection filter_main_local_ranges"},
    {"net_dns_external_service_interaction_domains", "selection and not 1 of filter_main_*",
     "selection filter_main_polling"},
    {"net_dns_mal_cobaltstrike", "1 of selection*", "selection1 selection2"},
    {"net_firewall_cleartext_protocols", "selection and 1 of selection_allow*",
     "selection selection_allow1 selection_allow2"},
    {"zeek_dce_rpc_mitre_bzar_execution", "1 of op*", "op1 op2 op3 op4 op5 op6 op7 op8 op9 op10"},
    {"zeek_dce_rpc_mitre_bzar_persistence", "1 of op*", "op1 op2 op3 op4 op5 op6"},
    {"zeek_dns_mining_pools", "selection and not 1 of exclude_*",
     "selection exclude_answers exclude_rejected"},
    {"zeek_dns_susp_zbit_flag",
     "not z_flag_unset and most_probable_valid_domain and not (exclude_tlds or "
     "exclude_query_types or exclude_responses or exclude_netbios)",
     "z_flag_unset most_probable_valid_domain exclude_tlds exclude_query_types "
     "exclude_responses exclude_netbios"},
    {"zeek_http_executable_download_from_webdav", "selection_webdav and selection_executable",
     "selection_webdav selection_executable"},
    {"zeek_http_susp_file_ext_from_susp_tld",
     "selection_suspicious_tld and 1 of selection_malicious_*",
     "selection_suspicious_tld selection_malicious_ext selection_malicious_mime"},
    {"zeek_rdp_public_listener", "not selection", "selection"},
    {"zeek_smb_converted_win_lm_namedpipe", "selection and not 1 of filter_*",
     "selection filter_keywords"},
    {"zeek_susp_kerberos_rc4", "selection and not computer_acct", "selection computer_acct"},
    {"proxy_hktl_cobalt_strike_malleable_c2_requests",
     "1 of selection_* and not 1 of filter_main_*",
     "selection_amazon_1 selection_amazon_2 selection_generic_1 selection_generic_2 "
     "selection_oscp selection_onedrive filter_main_onedrive"},
    {"proxy_ua_bitsadmin_susp_tld", "selection and not falsepositives", "selection falsepositives"},
    {"proxy_ua_susp", "1 of selection* and not falsepositives",
     "selection1 selection2 selection3 falsepositives"},
    {"proxy_webdav_external_execution", "all of selection_* and not 1 of filter_main_*",
     "selection_webdav selection_execution filter_main_local_ips"},
    {"web_java_payload_in_access_logs", "keywords", "keywords"},
    {"web_sql_injection_in_access_logs", "selection and keywords and not 1 of filter_main_*",
     "selection keywords filter_main_status"},
    {"web_ssti_in_access_logs", "select_method and keywords and not filter",
     "select_method keywords filter"},
    {"web_webshell_regeorg", "selection and filter", "selection filter"},
    {"web_win_webshells_in_access_logs", "all of selection_*",
     "selection_method selection_keywords"},
    {"dns_query_win_dns_server_discovery_via_ldap_query",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_generic filter_main_defender filter_main_unknown "
     "filter_optional_azure filter_main_null filter_optional_browsers"},
    {"dns_query_win_domain_azurewebsites", "selection and not 1 of filter_optional_*",
     "selection filter_optional_chrome filter_optional_firefox filter_optional_ie "
     "filter_optional_edge_1 filter_optional_edge_2 filter_optional_safari "
     "filter_optional_defender filter_optional_brave filter_optional_maxthon "
     "filter_optional_opera filter_optional_seamonkey filter_optional_vivaldi "
     "filter_optional_whale filter_optional_tor filter_optional_whaterfox "
     "filter_optional_midori filter_optional_slimbrowser filter_optional_flock "
     "filter_optional_phoebe filter_optional_falkon filter_optional_avant"},
    {"dns_query_win_gup_query_to_uncommon_domains",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_notepad_legit_domain "
     "filter_optional_sourceforge_legit_domain filter_optional_github_legit_domain "
     "filter_optional_google_storage_legit_domain filter_optional_uncommon_domains"},
    {"dns_query_win_remote_access_software_domains_non_browsers",
     "1 of selection_* and not 1 of filter_optional_*",
     "selection_generic selection_rustdesk filter_optional_chrome "
     "filter_optional_firefox filter_optional_ie filter_optional_edge_1 "
     "filter_optional_edge_2 filter_optional_safari filter_optional_defender "
     "filter_optional_brave filter_optional_maxthon filter_optional_opera "
     "filter_optional_seamonkey filter_optional_vivaldi filter_optional_whale "
     "filter_optional_tor filter_optional_whaterfox filter_optional_midori "
     "filter_optional_slimbrowser filter_optional_flock filter_optional_phoebe "
     "filter_optional_falkon filter_optional_avant"},
    {"dns_query_win_susp_external_ip_lookup", "selection and not 1 of filter_optional_*",
     "selection filter_optional_brave filter_optional_chrome filter_optional_firefox "
     "filter_optional_ie filter_optional_maxthon filter_optional_edge_1 "
     "filter_optional_edge_2 filter_optional_opera filter_optional_safari "
     "filter_optional_seamonkey filter_optional_vivaldi filter_optional_whale"},
    {"dns_query_win_teamviewer_domain_query_by_uncommon_app",
     "selection and not 1 of filter_main_*", "selection filter_main_teamviewer"},
    {"net_connection_win_adws_unusual_connection", "selection and not 1 of filter_main_*",
     "selection filter_main_dsac filter_main_ms_monitoring_agent "
     "filter_main_powershell"},
    {"net_connection_win_domain_azurewebsites", "selection and not 1 of filter_main_*",
     "selection filter_main_chrome filter_main_chrome_appdata filter_main_firefox "
     "filter_main_firefox_appdata filter_main_ie filter_main_edge_1 filter_main_edge_2"
     " filter_main_safari filter_main_defender filter_main_prtg filter_main_brave "
     "filter_main_maxthon filter_main_opera filter_main_seamonkey filter_main_vivaldi "
     "filter_main_whale filter_main_whaterfox filter_main_slimbrowser "
     "filter_main_flock filter_main_phoebe filter_main_falkon filter_main_qtweb "
     "filter_main_avant filter_main_discord filter_main_null filter_main_empty"},
    {"net_connection_win_domain_dead_drop_resolvers", "selection and not 1 of filter_main_*",
     "selection filter_main_chrome filter_main_chrome_appdata filter_main_firefox "
     "filter_main_firefox_appdata filter_main_ie filter_main_edge_1 filter_main_edge_2"
     " filter_main_safari filter_main_defender filter_main_prtg filter_main_brave "
     "filter_main_maxthon filter_main_opera filter_main_seamonkey filter_main_vivaldi "
     "filter_main_whale filter_main_whaterfox filter_main_midori "
     "filter_main_slimbrowser filter_main_flock filter_main_phoebe filter_main_falkon "
     "filter_main_qtweb filter_main_avant filter_main_whatsapp filter_main_telegram "
     "filter_main_onedrive filter_main_dropbox filter_main_mega "
     "filter_main_googledrive filter_main_discord filter_main_null filter_main_empty"},
    {"net_connection_win_domain_dropbox_api", "selection and not 1 of filter_main_*",
     "selection filter_main_legit_dropbox"},
    {"net_connection_win_domain_google_api_non_browser_access",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_optional_brave filter_optional_chrome "
     "filter_optional_google_drive filter_optional_firefox filter_optional_ie "
     "filter_optional_maxthon filter_optional_edge_1 filter_optional_edge_2 "
     "filter_optional_opera filter_optional_safari filter_optional_seamonkey "
     "filter_optional_vivaldi filter_optional_whale filter_optional_googleupdate "
     "filter_optional_outlook_exe filter_main_null filter_main_empty"},
    {"net_connection_win_domain_notion_api_susp_communication",
     "selection and not 1 of filter_main_*",
     "selection filter_main_notion filter_main_brave filter_main_chrome "
     "filter_main_firefox filter_main_ie filter_main_maxthon filter_main_edge_1 "
     "filter_main_edge_2 filter_main_opera filter_main_safari filter_main_seamonkey "
     "filter_main_vivaldi filter_main_whale"},
    {"net_connection_win_domain_telegram_api_non_browser_access",
     "selection and not 1 of filter_main_*",
     "selection filter_main_brave filter_main_chrome filter_main_firefox "
     "filter_main_ie filter_main_maxthon filter_main_edge_1 filter_main_edge_2 "
     "filter_main_opera filter_main_safari filter_main_seamonkey filter_main_vivaldi "
     "filter_main_whale"},
    {"net_connection_win_notepad", "selection and not 1 of filter_optional_*",
     "selection filter_optional_printing"},
    {"net_connection_win_office_outbound_non_local_ip", "selection and not 1 of filter_main_*",
     "selection filter_main_local_ranges filter_main_msrange_generic "
     "filter_main_msrange_exchange_1 filter_main_msrange_exchange_2 "
     "filter_main_msrange_exchange_3 filter_main_msrange_exchange_4 "
     "filter_main_msrange_sharepoint_1 filter_main_msrange_office_1 "
     "filter_main_msrange_office_2 filter_main_msrange_office_3 "
     "filter_main_destination_host"},
    {"net_connection_win_office_uncommon_ports", "selection and not 1 of filter_main_*",
     "selection filter_main_common_ports filter_main_outlook_ports"},
    {"net_connection_win_python",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_optional_conda filter_optional_conda_jupyter_notebook "
     "filter_main_local_communication filter_main_pip"},
    {"net_connection_win_rdp_outbound_over_non_standard_tools",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_mstsc filter_optional_dns filter_optional_avast "
     "filter_optional_sysinternals_rdcman filter_optional_chrome "
     "filter_optional_third_party filter_optional_thor filter_optional_splunk "
     "filter_optional_sentinel_one filter_optional_firefox filter_optional_tsplus "
     "filter_optional_null filter_optional_empty filter_optional_unknown"},
    {"net_connection_win_rdp_reverse_tunnel", "all of selection_*",
     "selection_img selection_destination"},
    {"net_connection_win_rundll32_net_connections", "selection and not 1 of filter_main_*",
     "selection filter_main_local_ranges filter_main_ms_ranges filter_main_app_sdb "
     "filter_main_azure_managed filter_main_svchost_update_processes"},
    {"net_connection_win_susp_binary_no_cmdline", "selection and not 1 of filter*",
     "selection filter_no_cmdline filter_null"},
    {"net_connection_win_susp_file_sharing_domains_susp_folders", "all of selection_*",
     "selection_paths selection_domains"},
    {"net_connection_win_susp_initiated_uncommon_or_suspicious_locations",
     "selection and not 1 of filter_main_*", "selection filter_main_domains"},
    {"net_connection_win_susp_malware_callback_port",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_local_ranges filter_optional_sys_directories"},
    {"net_connection_win_susp_outbound_kerberos_connection",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_lsass filter_optional_chrome filter_optional_firefox "
     "filter_optional_tomcat"},
    {"net_connection_win_susp_outbound_smtp_connections", "selection and not 1 of filter_*",
     "selection filter_clients filter_mailserver filter_outlook"},
    {"net_connection_win_susp_remote_powershell_session",
     "selection and not 1 of filter_main_* and not 1 of filter_optional_*",
     "selection filter_main_service_users filter_main_localhost filter_optional_avast"},
    {"net_connection_win_wordpad_uncommon_ports", "selection and not 1 of filter_main_*",
     "selection filter_main_ports"},
    {"net_connection_win_wscript_cscript_outbound_connection",
     "selection and not 1 of filter_main_*",
     "selection filter_main_local_ranges filter_main_ms_ranges"},
    {"net_connection_win_wuauclt_network_connection", "selection and not 1 of filter_main_*",
     "selection filter_main_ip filter_main_msrange filter_main_uus filter_main_winsxs "
     "filter_main_cli_null filter_main_cli_empty"},
};

static void test_real_rule_conditions(void **state)
{
    size_t i;

    (void)state;
    assert_true(ARRAY_LEN(real_rules) >= 30);
    for (i = 0; i < ARRAY_LEN(real_rules); i++) {
        char *buf = strdup(real_rules[i].names), *tok, *save = NULL;
        const char *names[64];
        uint32_t n = 0;
        char err[512];
        cond_node *c = NULL;
        fh_err rc;

        assert_non_null(buf);
        for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            assert_true(n < ARRAY_LEN(names));
            names[n++] = tok;
        }
        rc = sigma_cond_parse(real_rules[i].cond, names, n, &c, err, sizeof(err));
        if (rc != FH_OK)
            fail_msg("%s: '%s': %s", real_rules[i].rule, real_rules[i].cond, err);
        (void)eval_mask(c, 0, NULL);
        (void)eval_mask(c, ~(uint64_t)0, NULL);
        sigma_cond_free(c);
        free(buf);
    }
}

/* A few real conditions with their meaning spelled out. */
static bool ref_zbit(unsigned m)
{
    return !B0 && B1 && !(B2 || B3 || B4);
}

static void test_real_rule_semantics(void **state)
{
    /* zeek_dns_susp_zbit_flag, without exclude_netbios to fit five bits */
    static const char *const zbit[] = {"z_flag_unset", "most_probable_valid_domain", "exclude_tlds",
                                       "exclude_query_types", "exclude_responses"};
    static const char *const proxy[] = {"selection_webdav", "selection_execution",
                                        "filter_main_local_ips"};
    cond_node *c;

    (void)state;
    check_truth_table("not z_flag_unset and most_probable_valid_domain and not (exclude_tlds or "
                      "exclude_query_types or exclude_responses)",
                      zbit, 5, ref_zbit);
    /* proxy_webdav_external_execution: the filter group has one member, so CN_SEL. */
    c = parse_ok("all of selection_* and not 1 of filter_main_*", proxy, 3);
    assert_int_equal(c->kind, CN_AND);
    assert_int_equal(c->a->kind, CN_ALL_OF);
    assert_int_equal(c->a->nsels, 2);
    assert_int_equal(c->b->kind, CN_NOT);
    assert_int_equal(c->b->a->kind, CN_SEL);
    assert_int_equal(c->b->a->sel, 2);
    assert_true(eval_mask(c, 0x3, NULL));
    assert_false(eval_mask(c, 0x7, NULL));
    assert_false(eval_mask(c, 0x1, NULL));
    sigma_cond_free(c);
}

/* ---- random input ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Random token soup: any outcome but a crash, a leak or a half-written result is fine. */
static void test_random_tokens(void **state)
{
    static const char *const names[] = {"a", "b", "sel1", "sel2", "_x", "filter"};
    static const char *const vocab[] = {
        "a",  "b",    "sel1", "sel*", "*",      "_x",      "filter", "nope",    "(",
        ")",  "((",   "))",   "not",  "NOT",    "and",     "or",     "Or",      "1",
        "2",  "all",  "of",   "them", "any",    "|",       "#",      "count()", "\t",
        "\n", "\xff", "-",    "1 of", "all of", "of them", "sel-",   "a*b",     "",
    };
    char text[512], err[256];
    unsigned iter, ok = 0;

    (void)state;
    for (iter = 0; iter < 200000; iter++) {
        unsigned ntok = rnd(24), i;
        size_t len = 0;
        cond_node *c = (cond_node *)0x1;
        fh_err rc;

        text[0] = '\0';
        for (i = 0; i < ntok; i++) {
            const char *t = vocab[rnd(ARRAY_LEN(vocab))];
            const char *sep = rnd(4) ? " " : "";
            int w = snprintf(text + len, sizeof(text) - len, "%s%s", t, sep);

            if (w < 0 || (size_t)w >= sizeof(text) - len)
                break;
            len += (size_t)w;
        }
        rc = sigma_cond_parse(text, names, ARRAY_LEN(names), &c, err, sizeof(err));
        if (rc == FH_OK) {
            assert_non_null(c);
            (void)eval_mask(c, rng_state, NULL);
            sigma_cond_free(c);
            ok++;
        } else {
            assert_null(c);
            assert_true(rc == FH_ERR_PARSE || rc == FH_ERR_LIMIT);
            assert_memory_equal(err, "condition: ", 11);
        }
    }
    /* The soup must also reach the success path now and then. */
    assert_true(ok > 100);
}

static void test_random_bytes(void **state)
{
    static const char *const names[] = {"a", "b"};
    static const char alphabet[] = "ab()*_1 \t|#notandorlfthem\x80\xff";
    char text[64], err[128];
    unsigned iter;

    (void)state;
    for (iter = 0; iter < 200000; iter++) {
        unsigned len = rnd(sizeof(text)), i;
        cond_node *c = NULL;

        for (i = 0; i < len; i++)
            text[i] = rnd(3) ? alphabet[rnd(sizeof(alphabet) - 1)] : (char)(rnd(255) + 1);
        text[len] = '\0'; /* len < sizeof(text) */
        if (sigma_cond_parse(text, names, 2, &c, err, sizeof(err)) == FH_OK) {
            (void)eval_mask(c, iter, NULL);
            sigma_cond_free(c);
        } else {
            assert_null(c);
            assert_memory_equal(err, "condition: ", 11);
        }
    }
}

/*
 * Random well-formed expressions, printed with the fewest parentheses the
 * precedence rules allow (sometimes more), must evaluate like the tree they
 * were printed from: this checks precedence and associativity broadly.
 */
typedef struct gen_node gen_node;
struct gen_node {
    int op; /* 0 leaf, 1 or, 2 and, 3 not, 4 one-of sel*, 5 all-of sel* */
    unsigned leaf;
    gen_node *a, *b;
};

static const char *const gen_names[] = {"a", "b", "c", "sel1", "sel2"};

static gen_node *gen(unsigned depth)
{
    gen_node *g = calloc(1, sizeof(*g));
    unsigned r = depth ? rnd(10) : 0;

    assert_non_null(g);
    if (r < 3) {
        g->op = 0;
        g->leaf = rnd(ARRAY_LEN(gen_names));
    } else if (r < 5) {
        g->op = 1;
    } else if (r < 7) {
        g->op = 2;
    } else if (r < 9) {
        g->op = 3;
    } else {
        g->op = 4 + (int)rnd(2);
    }
    if (g->op == 1 || g->op == 2) {
        g->a = gen(depth - 1);
        g->b = gen(depth - 1);
    } else if (g->op == 3) {
        g->a = gen(depth - 1);
    }
    return g;
}

static int gen_prec(const gen_node *g)
{
    static const int prec[] = {5, 1, 2, 3, 4, 4};

    return prec[g->op];
}

static void gen_print(const gen_node *g, char *buf, size_t cap, size_t *len, int min_prec)
{
    bool par = gen_prec(g) < min_prec || rnd(8) == 0;

#define OUT(s) (*len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, "%s", (s)))
    if (par)
        OUT("(");
    switch (g->op) {
    case 0:
        OUT(gen_names[g->leaf]);
        break;
    case 1:
    case 2:
        /* The right operand of a chain needs no parentheses at the same level either. */
        gen_print(g->a, buf, cap, len, gen_prec(g));
        OUT(g->op == 1 ? " or " : " and ");
        gen_print(g->b, buf, cap, len, gen_prec(g));
        break;
    case 3:
        OUT("not ");
        gen_print(g->a, buf, cap, len, 3);
        break;
    default:
        OUT(g->op == 4 ? "1 of sel*" : "all of sel*");
        break;
    }
    if (par)
        OUT(")");
#undef OUT
}

static bool gen_eval(const gen_node *g, unsigned m)
{
    switch (g->op) {
    case 0:
        return m >> g->leaf & 1u;
    case 1:
        return gen_eval(g->a, m) || gen_eval(g->b, m);
    case 2:
        return gen_eval(g->a, m) && gen_eval(g->b, m);
    case 3:
        return !gen_eval(g->a, m);
    case 4:
        return (m >> 3 & 1u) || (m >> 4 & 1u);
    default:
        return (m >> 3 & 1u) && (m >> 4 & 1u);
    }
}

static void gen_free(gen_node *g)
{
    if (!g)
        return;
    gen_free(g->a);
    gen_free(g->b);
    free(g);
}

static void test_random_expressions(void **state)
{
    char text[8192];
    unsigned iter, m;

    (void)state;
    for (iter = 0; iter < 3000; iter++) {
        gen_node *g = gen(1 + rnd(6));
        size_t len = 0;
        cond_node *c;

        text[0] = '\0';
        gen_print(g, text, sizeof(text), &len, 0);
        assert_true(len < sizeof(text));
        c = parse_ok(text, gen_names, ARRAY_LEN(gen_names));
        for (m = 0; m < 32; m++) {
            if (eval_mask(c, m, NULL) != gen_eval(g, m))
                fail_msg("'%s' with truth mask 0x%x: got %d", text, m, !gen_eval(g, m));
        }
        sigma_cond_free(c);
        gen_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_selection),
        cmocka_unit_test(test_and_or_not),
        cmocka_unit_test(test_keywords_any_case),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_parentheses),
        cmocka_unit_test(test_quantifiers),
        cmocka_unit_test(test_them_excludes_underscore),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_short_circuit),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_error_selection_lists),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_long_chains),
        cmocka_unit_test(test_real_rule_conditions),
        cmocka_unit_test(test_real_rule_semantics),
        cmocka_unit_test(test_random_tokens),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_expressions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
