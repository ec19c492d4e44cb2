/*
 * api_events.c - the console API over the correlators' event archive (archive.h):
 * pivots from an alert to every archived event of its flow (community_id), of its
 * source or of its destination in a time range; a search for security
 * administrators; and testing a rule file against the archive before enabling it
 * (which alerts it would raise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../correlator/alerts.h"
#include "../correlator/archive.h"
#include "../correlator/engine.h"
#include "../correlator/incident.h"
#include "../correlator/store.h"
#include "../correlator/stream.h"
#include "api_int.h"
#include "console.h"

#define EVENTS_MAX      1000
#define EVENTS_DEFAULT  200
#define PIVOT_MARGIN_MS (3600 * 1000LL)
#define TEST_ALERTS_MAX 100

typedef struct {
    const char *cid, *host; /* the filter: one of them */
    size_t hostlen;
    uint32_t limit, n;
    bool truncated;
    jbuf *b;
} pick;

static bool str_is(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) && !strcmp(json_string_value(v), want);
}

/* One archived event: a substring test first (cheap), then the fields themselves. */
static bool pick_event(void *ctx, const char *json, size_t len, int64_t ts)
{
    pick *k = ctx;
    const char *needle = k->cid ? k->cid : k->host;
    json_t *ev;
    bool hit;

    (void)ts;
    if (!memmem(json, len, needle, strlen(needle)))
        return true;
    if (!(ev = json_loadb(json, len, JSON_ALLOW_NUL, NULL))) /* events may carry \u0000 */
        return true;
    hit = k->cid ? str_is(ev, "community_id", k->cid)
                 : str_is(ev, "src_ip", k->host) || str_is(ev, "dest_ip", k->host);
    json_decref(ev);
    if (!hit)
        return true;
    if (k->n == k->limit) {
        k->truncated = true;
        return false;
    }
    jbuf_raw(k->b, NULL, json, len);
    k->n++;
    return true;
}

/* Answers {"events":[...], "truncated":bool, "scanned":N} for the filter. */
static void answer_events(api *a, http_resp *w, pick *k, int64_t from, int64_t to)
{
    char err[512];
    uint64_t scanned = 0;

    if (!a->o.archive_dir) {
        http_error(w, 503, "archive_not_configured");
        return;
    }
    k->b = &w->body;
    jbuf_obj_open(&w->body, NULL);
    jbuf_arr_open(&w->body, "events");
    if (archive_scan(a->o.archive_dir, from, to, pick_event, k, &scanned, err, sizeof(err)) !=
        FH_OK) {
        http_error(w, 503, "archive_unreadable");
        return;
    }
    jbuf_arr_close(&w->body);
    jbuf_bool(&w->body, "truncated", k->truncated);
    jbuf_u64(&w->body, "scanned", scanned);
    jbuf_i64(&w->body, "from", from);
    jbuf_i64(&w->body, "to", to);
    jbuf_obj_close(&w->body);
}

/* limit, from, to query parameters; false after answering 400. */
static bool range_params(const http_req *r, http_resp *w, uint32_t *limit, int64_t *from,
                         int64_t *to)
{
    const char *l = http_query(r, "limit"), *f = http_query(r, "from"), *t = http_query(r, "to");
    long long n = l ? atoll(l) : EVENTS_DEFAULT;

    if (n < 1 || n > EVENTS_MAX) {
        http_error(w, 400, "bad_limit");
        return false;
    }
    *limit = (uint32_t)n;
    if ((f && !console_parse_time(f, false, from)) || (t && !console_parse_time(t, true, to)) ||
        (f && t && *to < *from)) {
        http_error(w, 400, "bad_time");
        return false;
    }
    return true;
}

/*
 * GET /api/v1/alerts/{id}/events?by=flow|source|destination[&from&to&limit]: the events of
 * the alert's flow (the community_id of its evidence), of its source or of its destination,
 * by default from an hour before its first event to an hour after its last.
 */
void h_alert_events(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *by = http_query(r, "by");
    incident inc;
    alert al;
    pick k = {0};
    int64_t from, to;
    fh_err err;

    if (!api_incident_for(st, s, id, w))
        return;
    if (!by || (strcmp(by, "flow") && strcmp(by, "source") && strcmp(by, "destination"))) {
        http_error(w, 400, "bad_pivot");
        return;
    }
    if ((err = incident_get(st, id, &inc))) {
        http_error(w, 500, "store_error");
        return;
    }
    memset(&al, 0, sizeof(al));
    if (!strcmp(by, "flow") && store_get_alert(st, id, &al) != FH_OK) {
        incident_clear(&inc);
        http_error(w, 500, "store_error");
        return;
    }
    from = inc.first_seen - PIVOT_MARGIN_MS;
    to = inc.last_seen + PIVOT_MARGIN_MS;
    if (range_params(r, w, &k.limit, &from, &to)) {
        if (!strcmp(by, "flow")) {
            for (uint32_t i = 0; i < al.nevidence && !k.cid; i++)
                k.cid = al.evidence[i].community_id;
        } else {
            k.host = !strcmp(by, "source") ? inc.src_ip : inc.dest_ip;
        }
        if (!k.cid && !k.host)
            http_error(w, 404, "no_pivot_value");
        else
            answer_events(a, w, &k, from, to);
    }
    alert_clear(&al);
    incident_clear(&inc);
}

/* GET /api/v1/events?community_id=...|host=...[&from&to&limit] (security administrators) */
void h_events(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    pick k = {.cid = http_query(r, "community_id"), .host = http_query(r, "host")};
    int64_t from = 0, to = 0;

    (void)st;
    (void)s;
    (void)id;
    if ((!k.cid || !*k.cid) == (!k.host || !*k.host)) {
        http_error(w, 400, "community_id_or_host");
        return;
    }
    if (range_params(r, w, &k.limit, &from, &to))
        answer_events(a, w, &k, from, to);
}

/* ---- testing a rule ------------------------------------------------------------------------ */

typedef struct {
    stream *p;
    uint64_t events;
    fh_err err;
} feed;

static bool feed_event(void *ctx, const char *json, size_t len, int64_t ts)
{
    feed *f = ctx;

    (void)ts;
    f->events++;
    if ((f->err = stream_event(f->p, json, len)) != FH_OK)
        return false;
    return true;
}

static bool in_file(const engine *e, const char *rule_id, const char *name)
{
    int64_t k = api_rule_find(e, rule_id);
    api_rule v;

    if (k < 0)
        return false;
    v = api_rule_at(e, (uint32_t)k);
    return api_rule_in_file(&v, name);
}

/*
 * POST /api/v1/rules/test {"name", "text", "from", "to"}: the rule file (with the rest of
 * the folder, as an upload would leave it) run over the archived events of the range, in
 * a correlator of its own without a store: how many events were read and which alerts the
 * file's rules would raise (at most 100 listed, all counted). Nothing is saved.
 */
void h_rule_test(api *a, store *st, session *s, const http_req *r, http_resp *w, const char *id)
{
    const char *name, *text, *from_s, *to_s;
    json_t *j = api_body(r, w);
    engine *e = NULL;
    stream p;
    bool stream_ok = false, bad = false;
    char *out = NULL, err[512];
    size_t outlen = 0, len;
    FILE *mem = NULL;
    int64_t from = 0, to = 0;
    feed f = {0};
    uint64_t total = 0, listed = 0;

    (void)st;
    (void)id;
    if (!j)
        return;
    name = api_str(j, "name", true, w, &bad);
    text = api_str(j, "text", true, w, &bad);
    from_s = api_str(j, "from", true, w, &bad);
    to_s = api_str(j, "to", true, w, &bad);
    if (bad)
        goto out;
    if (!console_parse_time(from_s, false, &from) || !console_parse_time(to_s, true, &to) ||
        to < from) {
        http_error(w, 400, "bad_time");
        goto out;
    }
    if (!a->o.archive_dir) {
        http_error(w, 503, "archive_not_configured");
        goto out;
    }
    len = json_string_length(json_object_get(j, "text"));
    if (!(e = api_rules_load_with(a, name, text, len, w)))
        goto out;
    if (e->rs.nerrors) {
        w->status = 422;
        jbuf_obj_open(&w->body, NULL);
        jbuf_bool(&w->body, "ok", false);
        api_rules_errors_json(&w->body, e);
        jbuf_obj_close(&w->body);
        goto out;
    }
    if (engine_ready(e, err, sizeof(err)) != FH_OK || !(mem = open_memstream(&out, &outlen)) ||
        stream_init(&p, e, NULL, mem, err, sizeof(err)) != FH_OK) {
        http_error(w, 500, "out_of_memory");
        goto out;
    }
    stream_ok = true;
    f.p = &p;
    if (archive_scan(a->o.archive_dir, from, to, feed_event, &f, NULL, err, sizeof(err)) != FH_OK ||
        f.err || stream_commit(&p, err, sizeof(err)) != FH_OK) {
        http_error(w, 503, "archive_unreadable");
        goto out;
    }
    fflush(mem);
    jbuf_obj_open(&w->body, NULL);
    jbuf_bool(&w->body, "ok", true);
    jbuf_u64(&w->body, "events", f.events);
    jbuf_arr_open(&w->body, "alerts");
    /* the NDJSON alerts the stream wrote */
    for (char *line = out, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        json_t *al, *rid, *rule;

        nl = strchr(line, '\n');
        if (!(al = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), JSON_ALLOW_NUL, NULL)))
            continue;
        rule = json_object_get(al, "rule");
        rid = json_object_get(rule, "id");
        /* each alert is written when it opens ("opened") and at each later update */
        if (json_is_string(rid) && in_file(e, json_string_value(rid), name) &&
            str_is(al, "update", "opened") && ++total <= TEST_ALERTS_MAX) {
            {
                jbuf_obj_open(&w->body, NULL);
                jbuf_str(&w->body, "rule_id", json_string_value(rid));
                jbuf_str(&w->body, "title", json_string_value(json_object_get(rule, "title")));
                jbuf_str(&w->body, "group_key",
                         json_string_value(json_object_get(al, "group_key")));
                jbuf_str(&w->body, "level", json_string_value(json_object_get(al, "level")));
                jbuf_obj_close(&w->body);
                listed++;
            }
        }
        json_decref(al);
    }
    jbuf_arr_close(&w->body);
    jbuf_u64(&w->body, "alerts_total", total);
    jbuf_bool(&w->body, "truncated", total > listed);
    jbuf_obj_close(&w->body);
    api_audit(a, st, s->who.name, r, "rule.test", name, "ok", NULL);
out:
    if (stream_ok)
        stream_free(&p); /* frees nothing of e's */
    if (mem)
        fclose(mem);
    free(out);
    engine_free(e);
    json_decref(j);
}
