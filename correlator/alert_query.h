/*
 * alert_query.h - the alert queue as the console's API asks for it: filters,
 * sort, keyset (cursor) pagination, counts per facet, and grouping by rule,
 * source and destination (as EveBox groups its inbox).
 *
 * The SQL text is assembled only from fixed fragments chosen by the filter's
 * shape; every value is bound. The same query runs on SQLite and PostgreSQL.
 * Text search is a case-sensitive substring of the title, group key and both
 * addresses, with LIKE's wildcards escaped (so "%" finds a percent sign).
 */
#ifndef FH_ALERT_QUERY_H
#define FH_ALERT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"
#include "store.h"

#define AQ_MAX_VALUES 16 /* values per multi-valued filter */

typedef enum { AQ_SORT_LAST_SEEN = 0, AQ_SORT_FIRST_SEEN, AQ_SORT_SEVERITY, AQ_SORT_COUNT } aq_sort;

typedef struct {
    const char *severity[AQ_MAX_VALUES]; /* level names */
    uint32_t nseverity;
    const char *status[AQ_MAX_VALUES];
    uint32_t nstatus;
    const char *rule;       /* rule id or name */
    const char *clause;     /* "8.1.3.3.a" or "8.1.3.3 a" */
    const char *category;   /* GB/T 20986 category */
    const char *department; /* the incident's (assigned, else owning) */
    const char *segment;    /* either side */
    const char *asset;      /* either side's host name */
    const char *address;    /* either side's address */
    int64_t from_ms, to_ms; /* last_seen in [from, to); 0: open */
    const char *text;       /* free text */
    /* Forced scope (an analyst's departments): added to every query, not overridable. */
    const char *scope[AQ_MAX_VALUES];
    uint32_t nscope;
    bool scoped; /* true: only departments in scope (none in scope = nothing) */
} aq_filter;

/* Parses "last_seen", "-count" ...; false when unknown. *desc: descending. */
bool aq_sort_parse(const char *s, aq_sort *sort, bool *desc);

/*
 * One page as JSON into out: {"alerts":[...],"next":"CURSOR"|null}. cursor is
 * the previous page's "next" (NULL: from the start); limit 1..500. FH_ERR_ARG
 * for a malformed cursor.
 */
fh_err aq_list(store *st, const aq_filter *f, aq_sort sort, bool desc, const char *cursor,
               uint32_t limit, jbuf *out);

/* Counts per facet of the same filter: {"total":N,"severity":{...},"status":{...},
 * "department":{...},"rule":{...} (top 20)}. */
fh_err aq_facets(store *st, const aq_filter *f, jbuf *out);

/* Number of alerts the filter matches (a bulk action's confirmation). */
fh_err aq_count(store *st, const aq_filter *f, int64_t *n);

/* The ids the filter matches, up to max (a bulk action over a filter). */
typedef void (*aq_id_fn)(void *ctx, const char *id);
fh_err aq_ids(store *st, const aq_filter *f, uint32_t max, aq_id_fn fn, void *ctx);

/* Groups: by "rule", "source", "destination" or a comma list of them; the largest
 * (most recent) first: [{"rule":...,"src_ip":...,"alerts":N,"events":N,"first_seen":...,
 * "last_seen":...}]. */
fh_err aq_groups(store *st, const aq_filter *f, const char *by, uint32_t limit, jbuf *out);

/*
 * The overview (态势感知) of the alerts the filter's scope allows, as JSON into out:
 * {"since","until","now","days":[{"day":"YYYY-MM-DD","critical":N,...}] (alerts first
 * seen per Asia/Shanghai day, `days` days, 1..90, ending with the day before end, or with
 * today when end is 0), "open", "overdue" (open incidents past their deadline at now),
 * "latest_alert" (the newest first_seen of the filter), "category":{...} (top 20),
 * "traffic":{...} (the same days), "sensors":[...] (their health at now)}; see
 * docs/openapi.yaml. FH_ERR_ARG for days.
 */
fh_err aq_overview(store *st, const aq_filter *f, uint32_t days, int64_t end, int64_t now,
                   const char *extra_key, const char *extra_json, jbuf *out);
/* The overview's days: [*since, *until) (false for days out of 1..90). extra_json (raw
 * JSON, NULL: none) is written as member extra_key of the overview's object. */
bool aq_overview_range(uint32_t days, int64_t end, int64_t now, int64_t *since, int64_t *until);

#endif
