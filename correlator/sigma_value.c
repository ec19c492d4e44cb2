/*
 * sigma_value.c - one Sigma value under its modifiers: compile once, match per event.
 *
 * A rule value ("field|contains|cased: 'x'") becomes a value_matcher (sigma.h).
 * Compilation checks the modifier list, refuses what this engine does not do and
 * prepares the fast form; matching never allocates.
 *
 * Semantics (Sigma specification v2, modifiers appendix, as applied to JSON events):
 *
 * - Strings are globs: `*` any run of characters, `?` exactly one character (one UTF-8
 *   sequence; a byte that is not valid UTF-8 counts as one character). A backslash
 *   escapes `*`, `?` and itself (`\*` `\?` `\\`); before any other character, or at the
 *   end, it is a literal backslash (so `C:\Windows` needs no doubling).
 *   |contains |startswith |endswith add wildcards around the value *after* its escapes
 *   are read, so a trailing `\` stays literal.
 *   Comparison is case-insensitive for ASCII letters only (as Sigma backends do); other
 *   bytes compare exactly. |cased makes it byte-exact. A glob without wildcards is kept
 *   unescaped and compared by length first (`literal`). The glob matcher is the
 *   iterative one with a single star back-track point: O(text x pattern) worst case, no
 *   exponential blow-up.
 * - Event values seen as text: a string as is, a number by its JSON text, a boolean as
 *   "true"/"false". A list matches when any item matches. Absent, null and objects never
 *   match a string, regex, CIDR or number.
 * - A YAML number (`dest_port: 23`) compares by value with a JSON number and with a string
 *   holding a decimal number ("23", "23.0"). |gt |gte |lt |lte need a YAML number and
 *   compare the same way. Numbers given to |contains |startswith |endswith |cased |re are
 *   taken as their text. Rule numbers are doubles: integers are exact up to 2^53.
 * - A YAML boolean matches a JSON boolean and the strings "true"/"false" (any case).
 * - `null` matches an absent field and a JSON null, nothing else (not "").
 * - |re: PCRE2 with UTF, searched anywhere in the text (use ^ $ to anchor), case-sensitive
 *   unless |i; |m multi-line, |s dot-all (also spelled ignorecase, multiline, dotall).
 *   The flags must follow |re. Every match runs under a match limit; hitting it, or any
 *   other PCRE2 error, is "no match". Invalid UTF-8 in an event is tolerated
 *   (PCRE2_MATCH_INVALID_UTF): no pattern character matches inside it.
 *   The match data lives in the matcher: one matcher must not be used by two threads at
 *   once.
 * - |cidr: IPv4 or IPv6 network, parsed as the asset inventory parses it (common/fh_addr):
 *   host bits set are refused; an address without "/n" is a single host. An IPv4
 *   network also matches an IPv4-mapped IPv6 address (::ffff:10.1.2.3); an IPv6 network
 *   matches IPv6 addresses. A zone suffix (fe80::1%eth0) is ignored; a value that is not
 *   exactly an address (a NUL inside, text after it) matches nothing.
 * - |exists: true or false (YAML boolean or the strings). A field present with JSON null
 *   exists (the key is in the event); use `field: null` to match null or absent.
 * - |fieldref: equal to another field of the same event, compared as text (case per
 *   |cased, no wildcards) except that two numbers, or a number and a numeric string,
 *   compare by value. An absent or null side never matches; lists match on any item.
 * - `all` and `expand` belong to the caller (sigma_load.c). base64, base64offset, utf16le,
 *   utf16be, utf16, wide and windash transform values for Windows log sources and are
 *   refused with a reason.
 *
 * Errors: FH_ERR_CONFIG for modifier problems (unknown, unsupported, combination, wrong
 * value type), FH_ERR_PARSE for values that do not parse (regex, CIDR, number),
 * FH_ERR_LIMIT when the field table is full, FH_ERR_NOMEM.
 */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sigma.h"

#include "../common/fh_addr.h"

/* Back-tracking budget of one regex match: a few milliseconds at most. */
#define SIGMA_RE_MATCH_LIMIT 200000u
#define SIGMA_RE_DEPTH_LIMIT 10000u
#define SIGMA_RE_HEAP_LIMIT  (8u * 1024u) /* KiB */

/* How much of a rule value an error message quotes. */
#define ERR_QUOTE_MAX 80

/* ---- modifiers ------------------------------------------------------------------- */

typedef enum {
    MOD_CONTAINS,
    MOD_STARTSWITH,
    MOD_ENDSWITH,
    MOD_CASED,
    MOD_RE,
    MOD_RE_I,
    MOD_RE_M,
    MOD_RE_S,
    MOD_CIDR,
    MOD_GT,
    MOD_GTE,
    MOD_LT,
    MOD_LTE,
    MOD_EXISTS,
    MOD_FIELDREF,
    MOD_ALL,         /* the caller's */
    MOD_EXPAND,      /* the caller's (refused there) */
    MOD_UNSUPPORTED, /* known to Sigma, not done here */
} mod_id;

/* What a modifier does to the value: at most one "kind" and one "shape" per value. */
typedef enum { CLS_SHAPE, CLS_KIND, CLS_CASED, CLS_RE_FLAG, CLS_CALLER, CLS_NONE } mod_class;

static const struct {
    const char *name;
    mod_id id;
    mod_class cls;
    const char *why; /* MOD_UNSUPPORTED: the reason */
} mod_table[] = {
    {"contains", MOD_CONTAINS, CLS_SHAPE, NULL},
    {"startswith", MOD_STARTSWITH, CLS_SHAPE, NULL},
    {"endswith", MOD_ENDSWITH, CLS_SHAPE, NULL},
    {"cased", MOD_CASED, CLS_CASED, NULL},
    {"re", MOD_RE, CLS_KIND, NULL},
    {"i", MOD_RE_I, CLS_RE_FLAG, NULL},
    {"ignorecase", MOD_RE_I, CLS_RE_FLAG, NULL},
    {"m", MOD_RE_M, CLS_RE_FLAG, NULL},
    {"multiline", MOD_RE_M, CLS_RE_FLAG, NULL},
    {"s", MOD_RE_S, CLS_RE_FLAG, NULL},
    {"dotall", MOD_RE_S, CLS_RE_FLAG, NULL},
    {"cidr", MOD_CIDR, CLS_KIND, NULL},
    {"gt", MOD_GT, CLS_KIND, NULL},
    {"gte", MOD_GTE, CLS_KIND, NULL},
    {"lt", MOD_LT, CLS_KIND, NULL},
    {"lte", MOD_LTE, CLS_KIND, NULL},
    {"exists", MOD_EXISTS, CLS_KIND, NULL},
    {"fieldref", MOD_FIELDREF, CLS_KIND, NULL},
    {"all", MOD_ALL, CLS_CALLER, NULL},
    {"expand", MOD_EXPAND, CLS_CALLER, NULL},
    {"base64", MOD_UNSUPPORTED, CLS_NONE, "network events carry no base64-encoded fields"},
    {"base64offset", MOD_UNSUPPORTED, CLS_NONE, "network events carry no base64-encoded fields"},
    {"utf16le", MOD_UNSUPPORTED, CLS_NONE, "network event fields are UTF-8 text"},
    {"utf16be", MOD_UNSUPPORTED, CLS_NONE, "network event fields are UTF-8 text"},
    {"utf16", MOD_UNSUPPORTED, CLS_NONE, "network event fields are UTF-8 text"},
    {"wide", MOD_UNSUPPORTED, CLS_NONE, "network event fields are UTF-8 text"},
    {"windash", MOD_UNSUPPORTED, CLS_NONE,
     "Windows command-line dash variants do not occur in network events"},
};

static int mod_find(const char *name)
{
    for (size_t i = 0; i < sizeof(mod_table) / sizeof(mod_table[0]); i++)
        if (!strcmp(mod_table[i].name, name))
            return (int)i;
    return -1;
}

bool sigma_modifier_known(const char *mod)
{
    int i = mod ? mod_find(mod) : -1;

    /* `expand` needs placeholder lists this engine does not load. */
    return i >= 0 && mod_table[i].id != MOD_UNSUPPORTED && mod_table[i].id != MOD_EXPAND;
}

/* ---- small helpers ---------------------------------------------------------------- */

static fh_err fail(char *err, size_t errlen, fh_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static fh_err fail(char *err, size_t errlen, fh_err code, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The rule value for a message: at most ERR_QUOTE_MAX bytes, "..." when cut. */
#define QUOTE_LEN(v)  ((int)((v)->len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : (v)->len))
#define QUOTE_MORE(v) ((v)->len > ERR_QUOTE_MAX ? "..." : "")

/* Length of the character at s[i]: a valid UTF-8 sequence, else 1 byte. */
static size_t utf8_len(const char *s, size_t i, size_t n)
{
    unsigned char b = (unsigned char)s[i];
    size_t len;

    if (b < 0xC2)
        return 1;
    else if (b < 0xE0)
        len = 2;
    else if (b < 0xF0)
        len = 3;
    else if (b < 0xF5)
        len = 4;
    else
        return 1;
    if (len > n - i)
        return 1;
    for (size_t k = 1; k < len; k++)
        if (((unsigned char)s[i + k] & 0xC0) != 0x80)
            return 1;
    return len;
}

/*
 * Strict decimal number: [+-] digits [. digits] [e [+-] digits], or [+-] . digits ...
 * No spaces, no hex, no inf/nan. Returns false if s/len is not one.
 */
static bool parse_number(const char *s, size_t len, double *out)
{
    char buf[64];
    size_t i = 0, digits = 0;
    char *end;

    if (len == 0 || len >= sizeof(buf))
        return false;
    if (s[i] == '+' || s[i] == '-')
        i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;

        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            exp++;
        if (exp == 0)
            return false;
    }
    if (i != len)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    return end == buf + len && isfinite(*out);
}

/* "true"/"false" in any case (YAML booleans as the loader classifies them). */
static bool parse_bool(const char *s, size_t len, bool *out)
{
    if (len == 4 && !strncasecmp(s, "true", 4))
        *out = true;
    else if (len == 5 && !strncasecmp(s, "false", 5))
        *out = false;
    else
        return false;
    return true;
}

/*
 * The text of an event value for string, regex and CIDR matching, or NULL when it has
 * none. buf (32 bytes) holds a number's text if the decoder left none.
 */
static const char *sv_text(const sv *v, char *buf, size_t bufsz, size_t *len)
{
    switch (v->type) {
    case SV_STR:
        *len = v->len;
        return v->s ? v->s : "";
    case SV_NUM:
        if (v->s) {
            *len = v->len;
            return v->s;
        } else {
            int n = v->is_int ? snprintf(buf, bufsz, "%lld", (long long)v->i)
                              : snprintf(buf, bufsz, "%.17g", v->num);

            *len = n > 0 && (size_t)n < bufsz ? (size_t)n : 0;
            return buf;
        }
    case SV_BOOL:
        *len = v->b ? 4 : 5;
        return v->b ? "true" : "false";
    default:
        return NULL;
    }
}

bool sigma_value_number(const sv *v, double *out)
{
    if (v->type == SV_NUM) {
        *out = v->num;
        return true;
    }
    if (v->type == SV_STR && v->s)
        return parse_number(v->s, v->len, out);
    return false;
}

/* ---- glob ------------------------------------------------------------------------- */

/*
 * Pattern form kept in value_matcher.pattern when !literal: `*` and `?` are wildcards,
 * `\` always escapes exactly the next byte (only `\*` `\?` `\\` are produced), every
 * other byte is itself, already folded unless cased.
 */
static bool glob_match(const char *p, size_t pn, const char *s, size_t sn, bool cased)
{
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;

    while (si < sn) {
        if (pi < pn) {
            unsigned char c = (unsigned char)p[pi];
            size_t adv = 1;

            if (c == '*') {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (c == '?') {
                pi++;
                si += utf8_len(s, si, sn);
                continue;
            }
            if (c == '\\') {
                c = (unsigned char)p[pi + 1];
                adv = 2;
            }
            if ((cased ? (unsigned char)s[si] : sigma_fold((unsigned char)s[si])) == c) {
                pi += adv;
                si++;
                continue;
            }
        }
        /* Mismatch: let the last star eat one more character, retry after it. */
        if (star_p == SIZE_MAX)
            return false;
        star_s += utf8_len(s, star_s, sn);
        si = star_s;
        pi = star_p;
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

static bool literal_match(const char *p, size_t pn, const char *s, size_t sn, bool cased)
{
    if (pn != sn)
        return false;
    if (cased)
        return memcmp(p, s, sn) == 0;
    for (size_t i = 0; i < sn; i++)
        if (sigma_fold((unsigned char)s[i]) != (unsigned char)p[i])
            return false;
    return true;
}

/* Builds the matcher's pattern from the rule text (see glob_match for the form). */
static fh_err glob_compile(value_matcher *m, const char *t, size_t n, mod_id shape, bool has_shape)
{
    bool lead = has_shape && (shape == MOD_CONTAINS || shape == MOD_ENDSWITH);
    bool trail = has_shape && (shape == MOD_CONTAINS || shape == MOD_STARTSWITH);
    char *out = malloc(2 * n + 3), *o = out;
    bool wild = lead || trail, last_star = false;

    if (!out)
        return FH_ERR_NOMEM;
    if (lead) {
        *o++ = '*';
        last_star = true;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];

        if (c == '*') {
            if (!last_star) /* `**` is `*` */
                *o++ = '*';
            wild = last_star = true;
            continue;
        }
        last_star = false;
        if (c == '\\') {
            if (i + 1 < n && (t[i + 1] == '*' || t[i + 1] == '?' || t[i + 1] == '\\'))
                c = (unsigned char)t[++i];
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '?') {
            *o++ = '?';
            wild = true;
        } else {
            *o++ = (char)(m->cased ? c : sigma_fold(c));
        }
    }
    if (trail && !last_star)
        *o++ = '*';
    *o = '\0';
    if (!wild) {
        /* No wildcard left: drop the escapes, compare plainly. */
        char *w = out;

        for (char *r = out; r < o; r++) {
            if (*r == '\\')
                r++;
            *w++ = *r;
        }
        *w = '\0';
        o = w;
    }
    m->pattern = out;
    m->pattern_len = (size_t)(o - out);
    m->literal = !wild;
    return FH_OK;
}

/* ---- regex ------------------------------------------------------------------------ */

static pcre2_match_context *re_mctx;
static pthread_once_t re_mctx_once = PTHREAD_ONCE_INIT;

/* The shared, read-only match context with the limits (never freed: process lifetime). */
static void re_mctx_init(void)
{
    re_mctx = pcre2_match_context_create(NULL);
    if (!re_mctx)
        return;
    pcre2_set_match_limit(re_mctx, SIGMA_RE_MATCH_LIMIT);
    pcre2_set_depth_limit(re_mctx, SIGMA_RE_DEPTH_LIMIT);
    pcre2_set_heap_limit(re_mctx, SIGMA_RE_HEAP_LIMIT);
}

static fh_err re_compile(value_matcher *m, const yaml_value *v, uint32_t flags, char *err,
                         size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[256];

    pthread_once(&re_mctx_once, re_mctx_init);
    if (!re_mctx)
        return fail(err, errlen, FH_ERR_NOMEM, "out of memory");
    m->re = pcre2_compile((PCRE2_SPTR)v->text, v->len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | flags,
                          &code, &off, NULL);
    if (!m->re) {
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        return fail(err, errlen, FH_ERR_PARSE, "invalid regular expression: %s at offset %zu",
                    (const char *)msg, (size_t)off);
    }
    /* JIT where available; the interpreter otherwise. Both honour the match limit. */
    (void)pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);
    m->md = pcre2_match_data_create(1, NULL);
    if (!m->md)
        return fail(err, errlen, FH_ERR_NOMEM, "out of memory");
    return FH_OK;
}

/* The network of a |cidr value: fh_cidr_parse, one answer with the inventory's. */
static fh_err cidr_compile(value_matcher *m, const yaml_value *v, char *err, size_t errlen)
{
    unsigned prefix = 0;

    switch (fh_cidr_parse(v->text, v->len, &m->family, m->net, &prefix)) {
    case FH_CIDR_OK:
        m->prefix = (uint8_t)prefix;
        return FH_OK;
    case FH_CIDR_HOSTBITS:
        return fail(err, errlen, FH_ERR_PARSE,
                    "CIDR '%.*s%s' has host bits set (write the network, or a /32 or /128 "
                    "for one host)",
                    QUOTE_LEN(v), v->text, QUOTE_MORE(v));
    case FH_CIDR_BAD:
        break;
    }
    return fail(err, errlen, FH_ERR_PARSE, "invalid CIDR '%.*s%s'", QUOTE_LEN(v), v->text,
                QUOTE_MORE(v));
}

/* An event value in the network: the whole value must be an address (fh_addr_parse). */
static bool cidr_match(const value_matcher *m, const char *s, size_t len)
{
    uint8_t a[16];
    int family;

    return fh_addr_parse(s, len, &family, a) && family == m->family &&
           fh_addr_in(a, m->net, m->prefix);
}

/* ---- compile ---------------------------------------------------------------------- */

static const char *yv_type_name(yaml_value_type t)
{
    switch (t) {
    case YV_STRING:
        return "string";
    case YV_NUMBER:
        return "number";
    case YV_BOOL:
        return "boolean";
    case YV_NULL:
        return "null";
    }
    return "value";
}

/*
 * Checks the modifier list and the value type, then builds the matcher. The rules:
 * at most one "kind" (re, cidr, gt/gte/lt/lte, exists, fieldref); at most one shape
 * (contains, startswith, endswith), and only without a kind; cased with a shape, a plain
 * string or fieldref; i/m/s only after re; no modifier twice.
 */
static fh_err value_compile(value_matcher *m, const char *const *mods, size_t nmods,
                            const yaml_value *v, field_table *ft, char *err, size_t errlen)
{
    const char *kind_name = NULL, *shape_name = NULL, *cased_name = NULL;
    mod_id kind = MOD_UNSUPPORTED, shape = MOD_UNSUPPORTED;
    uint32_t re_flags = 0;
    bool seen[MOD_UNSUPPORTED + 1] = {false};
    fh_err rc;

    memset(m, 0, sizeof(*m));
    m->ref = FIELD_NONE;
    if (nmods && !mods)
        return fail(err, errlen, FH_ERR_ARG, "no modifier list");
    if (err && errlen)
        err[0] = '\0';

    for (size_t i = 0; i < nmods; i++) {
        const char *name = mods[i];
        int t = mod_find(name);
        mod_id id;

        if (t < 0)
            return fail(err, errlen, FH_ERR_CONFIG, "unknown modifier '%s'", name);
        id = mod_table[t].id;
        if (id == MOD_UNSUPPORTED)
            return fail(err, errlen, FH_ERR_CONFIG, "unsupported modifier '%s' (%s)", name,
                        mod_table[t].why);
        if (id == MOD_ALL || id == MOD_EXPAND)
            return fail(err, errlen, FH_ERR_CONFIG,
                        "modifier '%s' applies to the value list and is handled by the rule "
                        "loader, not per value",
                        name);
        if (seen[id])
            return fail(err, errlen, FH_ERR_CONFIG, "duplicate modifier '%s'", name);
        seen[id] = true;
        switch (mod_table[t].cls) {
        case CLS_KIND:
            if (kind_name)
                return fail(err, errlen, FH_ERR_CONFIG,
                            "modifiers '%s' and '%s' cannot be combined", kind_name, name);
            if (shape_name)
                return fail(err, errlen, FH_ERR_CONFIG,
                            "modifiers '%s' and '%s' cannot be combined", shape_name, name);
            if (cased_name && id != MOD_FIELDREF)
                return fail(err, errlen, FH_ERR_CONFIG,
                            "modifiers '%s' and '%s' cannot be combined", cased_name, name);
            kind = id;
            kind_name = name;
            break;
        case CLS_SHAPE:
            if (shape_name || kind_name)
                return fail(err, errlen, FH_ERR_CONFIG,
                            "modifiers '%s' and '%s' cannot be combined",
                            shape_name ? shape_name : kind_name, name);
            shape = id;
            shape_name = name;
            break;
        case CLS_CASED:
            if (kind_name && kind != MOD_FIELDREF)
                return fail(err, errlen, FH_ERR_CONFIG,
                            "modifiers '%s' and '%s' cannot be combined", kind_name, name);
            cased_name = name;
            break;
        case CLS_RE_FLAG:
            if (kind != MOD_RE)
                return fail(err, errlen, FH_ERR_CONFIG, "modifier '%s' must follow 're'", name);
            re_flags |= id == MOD_RE_I   ? PCRE2_CASELESS
                        : id == MOD_RE_M ? PCRE2_MULTILINE
                                         : PCRE2_DOTALL;
            break;
        case CLS_CALLER:
        case CLS_NONE:
            break;
        }
    }
    m->cased = cased_name != NULL;

    /* null takes no modifier at all. */
    if (v->type == YV_NULL) {
        const char *first = kind_name ? kind_name : shape_name ? shape_name : cased_name;

        if (first && kind != MOD_EXISTS)
            return fail(err, errlen, FH_ERR_CONFIG, "modifier '%s' cannot be applied to null",
                        first);
        if (!first) {
            m->kind = VM_NULL;
            return FH_OK;
        }
    }

    switch (kind) {
    case MOD_RE:
        m->kind = VM_REGEX;
        rc = re_compile(m, v, re_flags, err, errlen);
        break;
    case MOD_CIDR:
        m->kind = VM_CIDR;
        rc = cidr_compile(m, v, err, errlen);
        break;
    case MOD_GT:
    case MOD_GTE:
    case MOD_LT:
    case MOD_LTE:
        m->kind = VM_NUMBER;
        m->op = kind == MOD_GT    ? NUM_GT
                : kind == MOD_GTE ? NUM_GTE
                : kind == MOD_LT  ? NUM_LT
                                  : NUM_LTE;
        if (v->type != YV_NUMBER)
            return fail(err, errlen, FH_ERR_CONFIG,
                        "modifier '%s' requires a number, not %s '%.*s%s'", kind_name,
                        yv_type_name(v->type), QUOTE_LEN(v), v->text, QUOTE_MORE(v));
        if (!parse_number(v->text, v->len, &m->num))
            return fail(err, errlen, FH_ERR_PARSE, "invalid number '%.*s%s'", QUOTE_LEN(v), v->text,
                        QUOTE_MORE(v));
        rc = FH_OK;
        break;
    case MOD_EXISTS:
        m->kind = VM_EXISTS;
        if ((v->type != YV_BOOL && v->type != YV_STRING) || !parse_bool(v->text, v->len, &m->b))
            return fail(err, errlen, FH_ERR_CONFIG,
                        "modifier 'exists' requires true or false, not '%.*s%s'", QUOTE_LEN(v),
                        v->text, QUOTE_MORE(v));
        rc = FH_OK;
        break;
    case MOD_FIELDREF: {
        char *name;

        m->kind = VM_FIELDREF;
        if (v->type != YV_STRING || v->len == 0 || memchr(v->text, '\0', v->len))
            return fail(err, errlen, FH_ERR_CONFIG,
                        "modifier 'fieldref' requires a field name, not %s '%.*s%s'",
                        yv_type_name(v->type), QUOTE_LEN(v), v->text, QUOTE_MORE(v));
        name = strndup(v->text, v->len);
        if (!name)
            return fail(err, errlen, FH_ERR_NOMEM, "out of memory");
        m->ref = field_intern(ft, name);
        free(name);
        if (m->ref == FIELD_NONE)
            return fail(err, errlen, FH_ERR_LIMIT,
                        "fieldref '%.*s%s': too many distinct fields (at most %d)", QUOTE_LEN(v),
                        v->text, QUOTE_MORE(v), FIELD_MAX);
        rc = FH_OK;
        break;
    }
    default:
        /* No kind: a plain value, or a string under contains/startswith/endswith/cased. */
        if (!shape_name && !cased_name && v->type == YV_NUMBER) {
            m->kind = VM_NUMBER;
            m->op = NUM_EQ;
            if (!parse_number(v->text, v->len, &m->num))
                return fail(err, errlen, FH_ERR_PARSE, "invalid number '%.*s%s'", QUOTE_LEN(v),
                            v->text, QUOTE_MORE(v));
            return FH_OK;
        }
        if (!shape_name && !cased_name && v->type == YV_BOOL) {
            m->kind = VM_BOOL;
            if (!parse_bool(v->text, v->len, &m->b))
                return fail(err, errlen, FH_ERR_PARSE, "invalid boolean '%.*s%s'", QUOTE_LEN(v),
                            v->text, QUOTE_MORE(v));
            return FH_OK;
        }
        m->kind = VM_STRING;
        rc = glob_compile(m, v->text, v->len, shape, shape_name != NULL);
        if (rc)
            return fail(err, errlen, rc, "out of memory");
        return FH_OK;
    }
    return rc;
}

/* On error the matcher is left empty (freeing it again is harmless). */
fh_err sigma_value_compile(value_matcher *m, const char *const *mods, size_t nmods,
                           const yaml_value *v, field_table *ft, char *err, size_t errlen)
{
    fh_err rc = value_compile(m, mods, nmods, v, ft, err, errlen);

    if (rc)
        sigma_value_free(m);
    return rc;
}

void sigma_value_free(value_matcher *m)
{
    if (!m)
        return;
    free(m->pattern);
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->re);
    memset(m, 0, sizeof(*m));
    m->ref = FIELD_NONE;
}

/* ---- match ------------------------------------------------------------------------ */

static bool num_match(const value_matcher *m, const sv *v)
{
    double x;

    if (!sigma_value_number(v, &x))
        return false;
    switch (m->op) {
    case NUM_EQ:
        return x == m->num;
    case NUM_GT:
        return x > m->num;
    case NUM_GTE:
        return x >= m->num;
    case NUM_LT:
        return x < m->num;
    case NUM_LTE:
        return x <= m->num;
    }
    return false;
}

/* Two event values equal for |fieldref (neither is a list). */
static bool scalar_equal(const sv *a, const sv *b, bool cased)
{
    char ba[32], bb[32];
    const char *ta, *tb;
    size_t la, lb;
    double xa, xb;

    if ((a->type == SV_NUM || b->type == SV_NUM) && sigma_value_number(a, &xa) &&
        sigma_value_number(b, &xb)) {
        if (a->type == SV_NUM && b->type == SV_NUM && a->is_int && b->is_int)
            return a->i == b->i;
        return xa == xb;
    }
    ta = sv_text(a, ba, sizeof(ba), &la);
    tb = sv_text(b, bb, sizeof(bb), &lb);
    if (!ta || !tb || la != lb)
        return false;
    if (cased)
        return memcmp(ta, tb, la) == 0;
    for (size_t i = 0; i < la; i++)
        if (sigma_fold((unsigned char)ta[i]) != sigma_fold((unsigned char)tb[i]))
            return false;
    return true;
}

static bool ref_match(const sv *a, const sv *b, bool cased)
{
    if (a->type == SV_LIST) {
        for (size_t i = 0; i < a->len; i++)
            if (ref_match(&a->items[i], b, cased))
                return true;
        return false;
    }
    if (b->type == SV_LIST) {
        for (size_t i = 0; i < b->len; i++)
            if (ref_match(a, &b->items[i], cased))
                return true;
        return false;
    }
    return scalar_equal(a, b, cased);
}

const char *sigma_value_text(const sv *v, char *buf, size_t bufsz, size_t *len)
{
    return sv_text(v, buf, bufsz, len);
}

bool sigma_value_bool(const sv *v, bool *out)
{
    if (v->type == SV_BOOL) {
        *out = v->b;
        return true;
    }
    return v->type == SV_STR && v->s && parse_bool(v->s, v->len, out);
}

bool sigma_value_match(const value_matcher *m, const sv *v, const event_view *ev)
{
    char buf[32];
    const char *t;
    size_t len;

    switch (m->kind) {
    case VM_NULL:
        return v->type == SV_ABSENT || v->type == SV_NULL;
    case VM_EXISTS:
        return (v->type != SV_ABSENT) == m->b;
    case VM_FIELDREF:
        return ref_match(v, event_get(ev, m->ref), m->cased);
    default:
        break;
    }
    if (v->type == SV_LIST) {
        for (size_t i = 0; i < v->len; i++)
            if (sigma_value_match(m, &v->items[i], ev))
                return true;
        return false;
    }
    switch (m->kind) {
    case VM_NUMBER:
        return num_match(m, v);
    case VM_BOOL:
        if (v->type == SV_BOOL)
            return v->b == m->b;
        if (v->type == SV_STR && v->s) {
            bool b;

            return parse_bool(v->s, v->len, &b) && b == m->b;
        }
        return false;
    default:
        break;
    }
    t = sv_text(v, buf, sizeof(buf), &len);
    if (!t)
        return false;
    switch (m->kind) {
    case VM_STRING:
        if (m->literal)
            return literal_match(m->pattern, m->pattern_len, t, len, m->cased);
        return glob_match(m->pattern, m->pattern_len, t, len, m->cased);
    case VM_REGEX:
        return pcre2_match(m->re, (PCRE2_SPTR)t, len, 0, 0, m->md, re_mctx) >= 0;
    case VM_CIDR:
        return v->type == SV_STR && cidr_match(m, t, len);
    default:
        return false;
    }
}
