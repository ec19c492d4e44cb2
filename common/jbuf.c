/*
 * jbuf.c - bounded JSON writer; see jbuf.h for the contract.
 */
#include "jbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool jbuf_init(jbuf *b, size_t initial, size_t max)
{
    memset(b, 0, sizeof(*b));
    if (initial == 0)
        initial = 4096;
    if (max < initial)
        max = initial;
    b->data = malloc(initial);
    if (!b->data)
        return false;
    b->cap = initial;
    b->max = max;
    b->data[0] = '\0';
    return true;
}

void jbuf_free(jbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void jbuf_reset(jbuf *b)
{
    b->len = 0;
    b->failed = false;
    b->depth = 0;
    b->need_comma[0] = false;
    if (b->data)
        b->data[0] = '\0';
}

bool jbuf_failed(const jbuf *b)
{
    return b->failed;
}

const char *jbuf_cstr(jbuf *b)
{
    return b->data ? b->data : "";
}

/* Makes room for n more bytes plus a NUL; sets failed past the ceiling. */
static bool reserve(jbuf *b, size_t n)
{
    size_t need, ncap;
    char *p;

    if (b->failed)
        return false;
    need = b->len + n + 1;
    if (need <= b->cap)
        return true;
    if (need > b->max) {
        b->failed = true;
        return false;
    }
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    p = realloc(b->data, ncap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = ncap;
    return true;
}

/* Room for n more bytes and the NUL without growing: the common case, inlined. */
static inline bool room(const jbuf *b, size_t n)
{
    return !b->failed && b->len + n + 1 <= b->cap;
}

static inline void put(jbuf *b, const char *s, size_t n)
{
    if (!room(b, n) && !reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void putc_(jbuf *b, char c)
{
    if (!room(b, 1) && !reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* Bytes written as they are inside a JSON string: printable ASCII but '"' and '\\'. */
static const bool plain[256] = {
    [0x20 ... 0x21] = true, /* '"' is 0x22 */
    [0x23 ... 0x5b] = true, /* '\\' is 0x5c */
    [0x5d ... 0x7e] = true,
};

/*
 * Length of the valid UTF-8 sequence at s[0..n), or 0 if the bytes there are
 * not one (overlong forms, surrogates and code points past U+10FFFF included).
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

void jbuf_escape(jbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    char esc[8];

    while (i < n) {
        unsigned char c = s[i];
        size_t k;

        /* Fast path: plain printable ASCII that needs no escape. */
        if (plain[c]) {
            i++;
            while (i < n && plain[s[i]])
                i++;
            continue;
        }
        put(b, (const char *)s + run, i - run);
        if (c < 0x80) {
            switch (c) {
            case '"':
                put(b, "\\\"", 2);
                break;
            case '\\':
                put(b, "\\\\", 2);
                break;
            case '\n':
                put(b, "\\n", 2);
                break;
            case '\r':
                put(b, "\\r", 2);
                break;
            case '\t':
                put(b, "\\t", 2);
                break;
            case '\b':
                put(b, "\\b", 2);
                break;
            case '\f':
                put(b, "\\f", 2);
                break;
            default: /* other controls and DEL */
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(b, esc, 6);
                break;
            }
            i++;
        } else if ((k = utf8_seq(s + i, n - i)) == 0) {
            put(b, "\\ufffd", 6);
            i++;
        } else if (k == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 &&
                   (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
            put(b, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            i += 3;
        } else {
            put(b, (const char *)s + i, k);
            i += k;
        }
        run = i;
    }
    put(b, (const char *)s + run, n - run);
}

/* Writes the comma (if any) and the key for the next value. */
static void begin_value(jbuf *b, const char *key)
{
    bool comma = b->need_comma[b->depth];

    b->need_comma[b->depth] = true;
    if (key) {
        /* keys are nearly always plain: ,"key": in one write */
        size_t n = 0;
        while (plain[(unsigned char)key[n]])
            n++;
        if (key[n] == '\0' && (room(b, n + 4) || reserve(b, n + 4))) {
            char *d = b->data + b->len;
            if (comma)
                *d++ = ',';
            *d++ = '"';
            memcpy(d, key, n);
            d += n;
            *d++ = '"';
            *d++ = ':';
            b->len = (size_t)(d - b->data);
            b->data[b->len] = '\0';
            return;
        }
        if (b->failed)
            return;
    }
    if (comma)
        putc_(b, ',');
    if (key) {
        putc_(b, '"');
        jbuf_escape(b, key, strlen(key));
        put(b, "\":", 2);
    }
}

static void open_(jbuf *b, const char *key, char c)
{
    begin_value(b, key);
    putc_(b, c);
    if (b->depth + 1 >= JBUF_MAX_DEPTH) {
        b->failed = true;
        return;
    }
    b->depth++;
    b->need_comma[b->depth] = false;
}

static void close_(jbuf *b, char c)
{
    putc_(b, c);
    if (b->depth > 0)
        b->depth--;
    else
        b->failed = true;
}

void jbuf_obj_open(jbuf *b, const char *key)
{
    open_(b, key, '{');
}

void jbuf_obj_close(jbuf *b)
{
    close_(b, '}');
}

void jbuf_arr_open(jbuf *b, const char *key)
{
    open_(b, key, '[');
}

void jbuf_arr_close(jbuf *b)
{
    close_(b, ']');
}

void jbuf_strn(jbuf *b, const char *key, const char *s, size_t n)
{
    begin_value(b, key);
    putc_(b, '"');
    jbuf_escape(b, s, n);
    putc_(b, '"');
}

void jbuf_str(jbuf *b, const char *key, const char *s)
{
    jbuf_strn(b, key, s ? s : "", s ? strlen(s) : 0);
}

void jbuf_u64(jbuf *b, const char *key, uint64_t v)
{
    char tmp[24];
    int n = 0;
    char out[24];

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    begin_value(b, key);
    put(b, out, (size_t)n);
}

void jbuf_i64(jbuf *b, const char *key, int64_t v)
{
    if (v < 0) {
        char tmp[24];
        int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
        begin_value(b, key);
        put(b, tmp, (size_t)n);
        return;
    }
    jbuf_u64(b, key, (uint64_t)v);
}

void jbuf_fixed(jbuf *b, const char *key, double v, int decimals)
{
    char tmp[64];
    int n;

    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    if (v != v || v > 1e300 || v < -1e300)
        v = 0; /* JSON has no NaN or infinity */
    n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
    begin_value(b, key);
    put(b, tmp, (size_t)n);
}

void jbuf_bool(jbuf *b, const char *key, bool v)
{
    begin_value(b, key);
    put(b, v ? "true" : "false", v ? 4 : 5);
}

void jbuf_null(jbuf *b, const char *key)
{
    begin_value(b, key);
    put(b, "null", 4);
}

void jbuf_raw(jbuf *b, const char *key, const char *raw, size_t n)
{
    begin_value(b, key);
    put(b, raw, n);
}
