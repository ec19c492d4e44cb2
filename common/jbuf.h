/*
 * jbuf.h - JSON text built into one reusable, bounded buffer.
 *
 * The writer tracks nesting so callers never place commas by hand:
 *
 *     jbuf_reset(&b);
 *     jbuf_obj_open(&b, NULL);
 *     jbuf_str(&b, "event_type", "flow");
 *     jbuf_obj_open(&b, "flow"); jbuf_u64(&b, "pkts", 3); jbuf_obj_close(&b);
 *     jbuf_obj_close(&b);
 *     if (jbuf_failed(&b)) ...;          // ceiling hit or nesting too deep
 *
 * Inside an array pass key = NULL. Every string (keys included) is escaped:
 * quotes, backslash and control characters become JSON escapes, valid UTF-8
 * passes through, each byte of an invalid UTF-8 sequence becomes U+FFFD, and
 * U+2028/U+2029 are escaped so the output is also safe inside JavaScript.
 *
 * Ownership: the jbuf owns `data`. The buffer grows by doubling up to `max`
 * bytes; past that the writer stops appending, sets the failure flag and the
 * caller drops or truncates the event (counted by the caller). No allocation
 * happens once the buffer has reached its working size, so the packet path
 * can reuse one jbuf per thread.
 */
#ifndef FH_JBUF_H
#define FH_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JBUF_MAX_DEPTH 16

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool failed;
    int depth;
    bool need_comma[JBUF_MAX_DEPTH];
} jbuf;

/* Allocates `initial` bytes (0 = 4096). Returns false if that fails. */
bool jbuf_init(jbuf *b, size_t initial, size_t max);
void jbuf_free(jbuf *b);
/* Empties the buffer for a new document; keeps the memory. */
void jbuf_reset(jbuf *b);
bool jbuf_failed(const jbuf *b);
/* NUL-terminated view of the document so far (valid until the next append). */
const char *jbuf_cstr(jbuf *b);

void jbuf_obj_open(jbuf *b, const char *key);
void jbuf_obj_close(jbuf *b);
void jbuf_arr_open(jbuf *b, const char *key);
void jbuf_arr_close(jbuf *b);

void jbuf_str(jbuf *b, const char *key, const char *s);
void jbuf_strn(jbuf *b, const char *key, const char *s, size_t n);
void jbuf_u64(jbuf *b, const char *key, uint64_t v);
void jbuf_i64(jbuf *b, const char *key, int64_t v);
/* Fixed-point decimal with `decimals` digits after the point (0..9). */
void jbuf_fixed(jbuf *b, const char *key, double v, int decimals);
void jbuf_bool(jbuf *b, const char *key, bool v);
void jbuf_null(jbuf *b, const char *key);
/* Appends `raw` unchanged as the value: the caller guarantees it is valid JSON. */
void jbuf_raw(jbuf *b, const char *key, const char *raw, size_t n);

/* Appends the escaped form of s[0..n) without quotes to `b` (for tests and keys). */
void jbuf_escape(jbuf *b, const char *s, size_t n);

#endif
