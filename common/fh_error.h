/*
 * fh_error.h - the one result type of Fenghuo.
 *
 * Every internal call that can fail returns an fh_err: FH_OK (0) on success, a
 * negative code otherwise. Callers write `err = f(); if (err) goto fail;`.
 * fh_strerror() turns a code into a short English phrase for messages; the
 * caller adds what and where ("open(\"%s\") failed: %s").
 */
#ifndef FH_ERROR_H
#define FH_ERROR_H

typedef enum {
    FH_OK = 0,
    FH_ERR_NOMEM = -1,    /* allocation failed or a buffer ceiling was reached */
    FH_ERR_IO = -2,       /* read/write/open failed; errno tells more */
    FH_ERR_CONFIG = -3,   /* bad configuration value */
    FH_ERR_PARSE = -4,    /* malformed input (YAML, JSON, argument) */
    FH_ERR_NOTFOUND = -5, /* file, key or entry absent */
    FH_ERR_LIMIT = -6,    /* a configured cap was hit */
    FH_ERR_CAPTURE = -7,  /* libpcap refused (bad filter, interface, file) */
    FH_ERR_DPI = -8,      /* nDPI initialisation failed */
    FH_ERR_GEOIP = -9,    /* libmaxminddb refused a database or a lookup */
    FH_ERR_ARG = -10,     /* bad command-line usage */
} fh_err;

const char *fh_strerror(fh_err err);

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/*
 * The one form of a message about a place in a file: "PATH:LINE: message"
 * (line 0: "PATH: message"), written to buf (always NUL-terminated). Rule,
 * inventory and configuration errors all use it, so tools and people read
 * them alike.
 */
void fh_error_at(char *buf, size_t len, const char *path, uint32_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void fh_error_atv(char *buf, size_t len, const char *path, uint32_t line, const char *fmt,
                  va_list ap);

#endif
