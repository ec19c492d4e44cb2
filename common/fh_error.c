/* fh_error.c - names for fh_err codes. */
#include "fh_error.h"

#include <stdio.h>

const char *fh_strerror(fh_err err)
{
    switch (err) {
    case FH_OK:
        return "success";
    case FH_ERR_NOMEM:
        return "out of memory or buffer limit reached";
    case FH_ERR_IO:
        return "input/output error";
    case FH_ERR_CONFIG:
        return "invalid configuration";
    case FH_ERR_PARSE:
        return "malformed input";
    case FH_ERR_NOTFOUND:
        return "not found";
    case FH_ERR_LIMIT:
        return "limit reached";
    case FH_ERR_CAPTURE:
        return "capture error";
    case FH_ERR_DPI:
        return "DPI engine error";
    case FH_ERR_GEOIP:
        return "GeoIP database error";
    case FH_ERR_ARG:
        return "invalid argument";
    }
    return "unknown error";
}

void fh_error_atv(char *buf, size_t len, const char *path, uint32_t line, const char *fmt,
                  va_list ap)
{
    int n;

    if (!buf || !len)
        return;
    n = line ? snprintf(buf, len, "%s:%u: ", path ? path : "", line)
             : snprintf(buf, len, "%s: ", path ? path : "");
    if (n < 0 || (size_t)n >= len)
        return;
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
}

void fh_error_at(char *buf, size_t len, const char *path, uint32_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fh_error_atv(buf, len, path, line, fmt, ap);
    va_end(ap);
}
