/*
 * event.c - an event's value slots and event time parsing. The field table that
 * gives the slots their ids is field.c; the JSON decoder that fills them is
 * event_json.cpp; see README-event.md for the design.
 */
#include <stdlib.h>
#include <string.h>

#include "event.h"

static const sv sv_absent; /* all zero: SV_ABSENT */

const sv *event_get(const event_view *ev, field_id id)
{
    if (!ev || !ev->vals || id >= ev->nvals)
        return &sv_absent;
    return &ev->vals[id];
}

/* ---- event time ---------------------------------------------------------------------------- */

/* Reads n decimal digits at s; false if any is not a digit. */
static bool read_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * Accepts exactly: YYYY-MM-DD, 'T' (or 't' or ' '), hh:mm:ss, an optional '.' and one or
 * more digits (milliseconds are the first three, the rest is truncated), then an optional
 * zone: 'Z'/'z', or +/- followed by hhmm or hh:mm. No zone means UTC. A leap second (:60)
 * is accepted and counts as the first second of the next minute. Anything else, trailing
 * bytes included, is rejected.
 */
bool event_parse_time(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    if (!s || len < 19)
        return false;
    if (!read_digits(s, 4, &y) || s[4] != '-' || !read_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !read_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !read_digits(s + 11, 2, &h) || s[13] != ':' || !read_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !read_digits(s + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return false;

    size_t p = 19;
    int frac_ms = 0;
    if (p < len && s[p] == '.') {
        p++;
        size_t start = p;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (p - start < 3)
                frac_ms = frac_ms * 10 + (s[p] - '0');
            p++;
        }
        if (p == start)
            return false;
        for (size_t k = p - start; k < 3; k++)
            frac_ms *= 10;
    }

    int off_min = 0;
    if (p < len) {
        char c = s[p++];
        if (c == 'Z' || c == 'z') {
            /* UTC */
        } else if (c == '+' || c == '-') {
            int oh, om;
            if (p + 2 > len || !read_digits(s + p, 2, &oh))
                return false;
            p += 2;
            if (p < len && s[p] == ':')
                p++;
            if (p + 2 > len || !read_digits(s + p, 2, &om))
                return false;
            p += 2;
            if (oh > 23 || om > 59)
                return false;
            off_min = (oh * 60 + om) * (c == '-' ? -1 : 1);
        } else {
            return false;
        }
        if (p != len)
            return false;
    }

    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    secs -= (int64_t)off_min * 60; /* local = UTC + offset */
    *ms = secs * 1000 + frac_ms;
    return true;
}
