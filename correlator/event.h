/*
 * event.h - events as the rule engine sees them: only the fields rules use.
 *
 * Rules name fields by dotted path ("dest_port", "ndpi.risks", "geo.dest.country",
 * "src_asset.zone"). Loading rules interns every path they reference into a
 * field_table; each path gets a small integer id. Decoding an event (event_json.cpp,
 * simdjson On-Demand) fills one value slot per id and skips everything else, so the
 * cost of an event does not grow with fields no rule reads.
 *
 * Values are views: strings point into the event's own buffer (JSON escapes are
 * decoded into the event's scratch arena), lists are arrays of values (EVE uses them
 * for ndpi.risks, vlan, ...). A slot of type SV_ABSENT means the field is not in the
 * event; SV_NULL that it is there with JSON null.
 *
 * Ownership: an event_view and everything it points to belong to the decoder that
 * filled it and stay valid until that decoder decodes the next event.
 */
#ifndef FH_EVENT_H
#define FH_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "field.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SV_ABSENT = 0, SV_NULL, SV_BOOL, SV_NUM, SV_STR, SV_LIST, SV_OBJECT } sv_type;

typedef struct sv sv;
struct sv {
    sv_type type;
    bool b;          /* SV_BOOL */
    bool is_int;     /* SV_NUM: the JSON number had no fraction or exponent */
    int64_t i;       /* SV_NUM when is_int */
    double num;      /* SV_NUM, always set */
    const char *s;   /* SV_STR: UTF-8, not NUL-terminated; also the raw text of a number */
    size_t len;      /* SV_STR: bytes; SV_LIST: items */
    const sv *items; /* SV_LIST */
};

/* What the rule engine evaluates: one slot per interned field, plus the raw text. */
typedef struct {
    const sv *vals; /* vals[id] for id < nvals; beyond: absent */
    uint32_t nvals;
    const char *raw; /* the event's JSON text (keyword searches) */
    size_t raw_len;
    int64_t ts_ms; /* event time (the "timestamp" field), ms since the epoch; 0 if none */
} event_view;

/* The value of field id in ev (a static SV_ABSENT value when out of range). */
const sv *event_get(const event_view *ev, field_id id);

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.frac][Z|+hhmm|+hh:mm]" into ms since the epoch.
 * Returns false if malformed.
 */
bool event_parse_time(const char *s, size_t len, int64_t *ms);

#ifdef __cplusplus
}
#endif

#endif
