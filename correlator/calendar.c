/*
 * calendar.c - see calendar.h.
 */
#include "calendar.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../common/fh_yaml.h"

#define CAL_MAX_YEARS 64

typedef struct {
    int64_t day;      /* cal_days */
    bool workday;     /* a make-up working day; else a holiday */
    const char *name; /* the holiday's name (owned by the year) */
} cal_day;

typedef struct {
    int year;
    char *source;
    char **names;
    size_t nnames;
    cal_day *days; /* sorted by day */
    size_t ndays;
} cal_year;

struct calendar {
    cal_year years[CAL_MAX_YEARS];
    size_t n;
};

/* ---- civil dates (Howard Hinnant's algorithms) ------------------------------------ */

int64_t cal_days(cal_date d)
{
    int64_t y = d.y - (d.m <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (d.m + (d.m > 2 ? -3 : 9)) + 2) / 5 + d.d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

cal_date cal_from_days(int64_t z)
{
    int64_t era, doe, yoe, doy, mp, y;
    cal_date d;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d.d = (int)(doy - (153 * mp + 2) / 5 + 1);
    d.m = (int)(mp < 10 ? mp + 3 : mp - 9);
    d.y = (int)(y + (d.m <= 2));
    return d;
}

int cal_weekday(cal_date d)
{
    int64_t w = (cal_days(d) + 3) % 7; /* 1970-01-01 was a Thursday */

    return (int)(w < 0 ? w + 7 : w);
}

bool cal_parse(const char *s, cal_date *out)
{
    int y, m, d, n = 0;

    if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[10])
        return false;
    out->y = y;
    out->m = m;
    out->d = d;
    /* a real date: it survives the round trip */
    {
        cal_date back = cal_from_days(cal_days(*out));

        return m >= 1 && m <= 12 && back.y == y && back.m == m && back.d == d;
    }
}

void cal_format(cal_date d, char out[11])
{
    unsigned y = (unsigned)d.y % 10000u, m = (unsigned)d.m % 100u, dd = (unsigned)d.d % 100u;

    snprintf(out, 11, "%04u-%02u-%02u", y, m, dd);
}

/* ---- loading ---------------------------------------------------------------------- */

static void year_free(cal_year *y)
{
    free(y->source);
    for (size_t i = 0; i < y->nnames; i++)
        free(y->names[i]);
    free(y->names);
    free(y->days);
    memset(y, 0, sizeof(*y));
}

void calendar_free(calendar *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        year_free(&c->years[i]);
    free(c);
}

static int day_cmp(const void *a, const void *b)
{
    const cal_day *x = a, *y = b;

    return (x->day > y->day) - (x->day < y->day);
}

typedef struct {
    fh_yaml_src src;
    cal_year *y;
} loader;

static const char *intern(loader *L, const char *name)
{
    char **nn;

    for (size_t i = 0; i < L->y->nnames; i++)
        if (!strcmp(L->y->names[i], name))
            return L->y->names[i];
    if (!(nn = realloc(L->y->names, (L->y->nnames + 1) * sizeof(*nn))))
        return NULL;
    L->y->names = nn;
    if (!(nn[L->y->nnames] = strdup(name)))
        return NULL;
    return nn[L->y->nnames++];
}

static fh_err add_day(loader *L, const yaml_node_t *where, cal_date d, bool workday,
                      const char *name)
{
    cal_day *nd;
    int64_t day = cal_days(d);

    if (d.y != L->y->year)
        return fh_yaml_fail(&L->src, where, "date outside the file's year: ");
    for (size_t i = 0; i < L->y->ndays; i++)
        if (L->y->days[i].day == day)
            return fh_yaml_fail(&L->src, where,
                                "a day given twice (holiday and make-up working day?)");
    if (!(nd = realloc(L->y->days, (L->y->ndays + 1) * sizeof(*nd))))
        return FH_ERR_NOMEM;
    L->y->days = nd;
    nd[L->y->ndays].day = day;
    nd[L->y->ndays].workday = workday;
    if (!(nd[L->y->ndays].name = intern(L, name)))
        return FH_ERR_NOMEM;
    L->y->ndays++;
    return FH_OK;
}

static fh_err date_of(loader *L, yaml_node_t *m, const char *key, cal_date *out)
{
    yaml_node_t *v = fh_yaml_get(L->src.doc, m, key);

    if (!v)
        return fh_yaml_fail(&L->src, m, "missing '%s'", key);
    if (!cal_parse(fh_yaml_scalar(v), out))
        return fh_yaml_fail(&L->src, v, "'%s' must be a date YYYY-MM-DD", key);
    return FH_OK;
}

static fh_err load_list(loader *L, yaml_node_t *root, const char *key, bool workdays)
{
    yaml_node_t *list = fh_yaml_get(L->src.doc, root, key);
    fh_err e;

    if (!list)
        return workdays ? FH_OK : fh_yaml_fail(&L->src, root, "missing '%s'", key);
    if (list->type != YAML_SEQUENCE_NODE)
        return fh_yaml_fail(&L->src, list, "'%s' must be a list", key);
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        yaml_node_t *m = fh_yaml_node(L->src.doc, *it), *first;
        const char *name;
        cal_date a, b;

        if (m->type != YAML_MAPPING_NODE)
            return fh_yaml_fail(&L->src, m, "each entry of '%s' must be a map", key);
        if (fh_yaml_duplicate_key(L->src.doc, m, &first))
            return fh_yaml_fail(&L->src, m, "a key given twice in an entry of '%s'", key);
        name = fh_yaml_scalar(fh_yaml_get(L->src.doc, m, workdays ? "for" : "name"));
        if (!name || !name[0])
            return fh_yaml_fail(&L->src, m, "missing '%s'", workdays ? "for" : "name");
        if (workdays) {
            if ((e = date_of(L, m, "date", &a)) || (e = add_day(L, m, a, true, name)))
                return e;
            if (cal_weekday(a) < 5)
                return fh_yaml_fail(&L->src, m, "a make-up working day on a weekday: %s", name);
            continue;
        }
        if ((e = date_of(L, m, "from", &a)) || (e = date_of(L, m, "to", &b)))
            return e;
        if (cal_days(b) < cal_days(a) || cal_days(b) - cal_days(a) > 31)
            return fh_yaml_fail(&L->src, m, "'to' must be on or after 'from', within a month: %s",
                                name);
        for (int64_t d = cal_days(a); d <= cal_days(b); d++)
            if ((e = add_day(L, m, cal_from_days(d), false, name)))
                return e;
    }
    return FH_OK;
}

static fh_err load_year(calendar *c, const char *path, int year, char *err, size_t errlen)
{
    yaml_document_t doc;
    loader L = {{path, &doc, err, errlen}, &c->years[c->n]};
    yaml_node_t *root, *first;
    const char *s;
    fh_err e;

    if ((e = fh_yaml_load_file(&doc, path, "a calendar file", err, errlen)) != FH_OK)
        return e;
    memset(L.y, 0, sizeof(*L.y));
    L.y->year = year;
    root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        e = fh_yaml_fail(&L.src, root, "a calendar file is a map");
    else if (fh_yaml_duplicate_key(&doc, root, &first))
        e = fh_yaml_fail(&L.src, root, "a key given twice");
    else if (!(s = fh_yaml_scalar(fh_yaml_get(&doc, root, "year"))) || atoi(s) != year)
        e = fh_yaml_fail(&L.src, root, "'year' must be the year of the file name");
    else if (!(s = fh_yaml_scalar(fh_yaml_get(&doc, root, "source"))) || !s[0])
        e = fh_yaml_fail(&L.src, root, "missing 'source' (the notice the dates come from)");
    else if (!(L.y->source = strdup(s)))
        e = FH_ERR_NOMEM;
    else if (!(e = load_list(&L, root, "holidays", false)))
        e = load_list(&L, root, "workdays", true);
    yaml_document_delete(&doc);
    if (e) {
        year_free(L.y);
        return e;
    }
    qsort(L.y->days, L.y->ndays, sizeof(*L.y->days), day_cmp);
    c->n++;
    return FH_OK;
}

fh_err calendar_load(calendar **out, const char *dir, char *err, size_t errlen)
{
    calendar *c = calloc(1, sizeof(*c));
    struct dirent **names = NULL;
    int n;
    fh_err e = FH_OK;

    *out = NULL;
    if (!c)
        return FH_ERR_NOMEM;
    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fh_error_at(err, errlen, dir, 0, "cannot read the calendar folder%s", "");
        free(c);
        return FH_ERR_IO;
    }
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        char path[4096];
        int year, len = 0;

        if (!e && sscanf(nm, "%4d.yaml%n", &year, &len) == 1 && len == 9 && !nm[9] &&
            year >= 1970 && year < 10000) {
            if (c->n == CAL_MAX_YEARS) {
                fh_error_at(err, errlen, dir, 0, "more than %d calendar years", CAL_MAX_YEARS);
                e = FH_ERR_LIMIT;
            } else {
                snprintf(path, sizeof(path), "%s/%s", dir, nm);
                e = load_year(c, path, year, err, errlen);
            }
        }
        free(names[i]);
    }
    free(names);
    if (e) {
        calendar_free(c);
        return e;
    }
    *out = c;
    return FH_OK;
}

/* ---- questions --------------------------------------------------------------------- */

static const cal_year *year_of(const calendar *c, int year)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (c->years[i].year == year)
            return &c->years[i];
    return NULL;
}

bool calendar_has_year(const calendar *c, int year)
{
    return year_of(c, year) != NULL;
}

const char *calendar_source(const calendar *c, int year)
{
    const cal_year *y = year_of(c, year);

    return y ? y->source : NULL;
}

bool calendar_is_workday(const calendar *c, cal_date d, bool *guessed, const char **holiday)
{
    const cal_year *y = year_of(c, d.y);
    int64_t day = cal_days(d);
    size_t lo = 0, hi;

    if (holiday)
        *holiday = NULL;
    if (!y) {
        if (guessed)
            *guessed = true;
        return cal_weekday(d) < 5;
    }
    hi = y->ndays;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (y->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < y->ndays && y->days[lo].day == day) {
        if (holiday)
            *holiday = y->days[lo].name;
        return y->days[lo].workday;
    }
    return cal_weekday(d) < 5;
}

cal_date calendar_add_workdays(const calendar *c, cal_date from, int n, bool *guessed)
{
    int64_t day = cal_days(from);

    while (n > 0) {
        day++;
        if (calendar_is_workday(c, cal_from_days(day), guessed, NULL))
            n--;
    }
    return cal_from_days(day);
}

int calendar_count_year(const calendar *c, int year, bool *guessed)
{
    int64_t d = cal_days((cal_date){year, 1, 1}), end = cal_days((cal_date){year + 1, 1, 1});
    int n = 0;

    for (; d < end; d++)
        n += calendar_is_workday(c, cal_from_days(d), guessed, NULL);
    return n;
}
