/* fh_error.c - names for fh_err codes. */
#include "fh_error.h"

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
