/*
 * test_incident.c - the rectification of incidents in the store
 * (correlator/store_incident.c, store_apply's recurrence) with a fixed clock:
 * every move recorded (who, when, from, to, comment), illegal moves refused
 * naming both states and recording nothing, the details each side exit needs,
 * assignment and notices recorded like moves, deadlines stamped from the
 * shipped policy and calendar (a year without calendar data flagged), a
 * recurrence of a rectified incident reopening it (by the correlator, in the
 * store), verification by traffic (verified with evidence; sensor gap by a
 * missing hour or by an L3-28 alert; closing an unverified incident needs a
 * comment), accepted risk expiring into rectifying with a fresh deadline, and
 * migration 0005 keeping the status and evidence of alerts stored before it.
 *
 * Every test runs twice: on an SQLite file and on a PostgreSQL database of the
 * server tests/tools/pg.sh starts (FH_TEST_PG; without it that group skips).
 *
 * Run from the repository root (rules/rectification.yaml, rules/calendar).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../correlator/alerts.h"
#include "../../../correlator/incident.h"
#include "../../../correlator/db.h"
#include "../../../correlator/store.h"
#include "pgtest.h"

#define H   (3600 * 1000LL)
#define DAY (24 * H)

/* UTC ms of Asia/Shanghai local time */
static int64_t cst(int y, int m, int d, int hh, int mm)
{
    return (cal_days((cal_date){y, m, d}) * 24 + hh - 8) * H + mm * 60000LL;
}

typedef struct {
    char dir[64], path[256];
    bool pg;
    store *st;
    calendar *cal;
    deadline_policy pol;
    int64_t now; /* the store's clock (reopen records) */
} fx;

static int64_t fx_now(void *ctx)
{
    return ((fx *)ctx)->now;
}

static int setup_on(void **state, bool pg)
{
    fx *f = calloc(1, sizeof(*f));
    store_opts so;
    char err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/fh-incident-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->pg = pg;
    if (!pg)
        snprintf(f->path, sizeof(f->path), "%s/a.db", f->dir);
    else if (!pgtest_fresh_db(f->path, sizeof(f->path)))
        return -1;
    memset(&so, 0, sizeof(so));
    so.path = f->path;
    so.now = fx_now;
    so.now_ctx = f;
    f->now = cst(2026, 3, 2, 9, 0);
    if (store_open(&f->st, &so, err, sizeof(err)) != FH_OK ||
        calendar_load(&f->cal, "rules/calendar", err, sizeof(err)) != FH_OK ||
        deadline_policy_load(&f->pol, "rules/rectification.yaml", err, sizeof(err)) != FH_OK) {
        print_error("%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_on(state, false);
}

static int setup_pg(void **state)
{
    return setup_on(state, true);
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];

    store_close(f->st);
    calendar_free(f->cal);
    deadline_policy_free(&f->pol);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static const char *put_segment = "seg-a"; /* the segment put() gives the alert's dest */

static const char *const TAGS[] = {"gbt22239.8.1.3.3.a", "gbt20986.network_attack.scan"};

/* Stores one alert as the correlator would (opened, or a later update with more hits). */
static void put(fx *f, const char *id, const char *rule_name, int level, const char *dept,
                const char *sensor, int64_t first, uint64_t hits, bool opened)
{
    alert a;

    memset(&a, 0, sizeof(a));
    snprintf(a.id, sizeof(a.id), "%s", id);
    a.rule_id = (char *)(rule_name ? rule_name : "rule-x");
    a.rule_name = (char *)rule_name;
    a.title = (char *)"a title";
    a.level = level;
    a.group_key = (char *)"src_ip=10.0.0.1";
    a.window_start_ms = first;
    a.first_seen_ms = first;
    a.last_seen_ms = first + (int64_t)hits * 60000;
    a.created_ms = first;
    a.updated_ms = a.last_seen_ms;
    a.count = a.hits = hits;
    a.department = (char *)dept;
    a.dest.department = (char *)dept;
    a.dest.segment = (char *)put_segment;
    a.dest.zone = (char *)"business";
    a.sensor = (char *)sensor;
    a.opened = opened;
    if (opened)
        assert_int_equal(alert_set_tags(&a, TAGS, 2), FH_OK);
    assert_int_equal(store_begin(f->st), FH_OK);
    assert_int_equal(store_apply(f->st, &a), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
    if (opened) {
        for (uint32_t k = 0; k < a.ntags; k++)
            alert_tag_clear(&a.tags[k]);
        free(a.tags);
    }
}

static fh_err move(fx *f, const char *id, incident_state to, const char *comment, char *why)
{
    incident_move m;

    memset(&m, 0, sizeof(m));
    m.to = to;
    m.actor = "alice";
    m.comment = comment;
    m.now = f->now;
    m.policy = &f->pol;
    m.cal = f->cal;
    return incident_transition(f->st, id, &m, NULL, why, 512);
}

typedef struct {
    int n;
    incident_record r[16];
    char text[16][4][160]; /* actor, kind, from->to, comment|detail */
} hist;

static void collect(void *ctx, const incident_record *r)
{
    hist *h = ctx;

    if (h->n >= 16)
        return;
    h->r[h->n] = *r;
    snprintf(h->text[h->n][0], 160, "%s", r->actor);
    snprintf(h->text[h->n][1], 160, "%s", r->kind);
    snprintf(h->text[h->n][2], 160, "%s->%s", r->from, r->to);
    snprintf(h->text[h->n][3], 160, "%s|%s", r->comment ? r->comment : "",
             r->detail ? r->detail : "");
    h->n++;
}

static void history(fx *f, const char *id, hist *h)
{
    memset(h, 0, sizeof(*h));
    assert_int_equal(incident_history(f->st, id, collect, h), FH_OK);
}

static incident get(fx *f, const char *id)
{
    incident i;

    assert_int_equal(incident_get(f->st, id, &i), FH_OK);
    return i;
}

static void test_moves_are_recorded(void **state)
{
    fx *f = *state;
    char why[512];
    incident i;
    hist h;

    put(f, "a1", "l3_07_internet_port_scan", ALERT_LEVEL_HIGH, "大数据局", "s1",
        cst(2026, 3, 1, 10, 0), 1, true);
    assert_int_equal(move(f, "a1", INC_ACKNOWLEDGED, NULL, why), FH_OK);
    f->now += H;
    assert_int_equal(move(f, "a1", INC_RECTIFYING, "ticket 42", why), FH_OK);
    f->now += 2 * H;
    assert_int_equal(move(f, "a1", INC_RECTIFIED, "port closed", why), FH_OK);
    i = get(f, "a1");
    assert_int_equal(i.status, INC_RECTIFIED);
    assert_int_equal(i.acknowledged_at, cst(2026, 3, 2, 9, 0));
    assert_int_equal(i.rectified_at, cst(2026, 3, 2, 12, 0));
    assert_int_equal(i.status_at, cst(2026, 3, 2, 12, 0));
    assert_int_equal(i.verify_until, cst(2026, 3, 3, 12, 0)); /* 24 h window */
    assert_string_equal(i.segment, "seg-a");
    assert_string_equal(i.zone, "business");
    assert_int_equal(i.nclauses, 1);
    assert_string_equal(i.clauses[0], "8.1.3.3 a");
    assert_string_equal(i.category, "network_attack");
    incident_clear(&i);
    history(f, "a1", &h);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.text[0][0], "alice");
    assert_string_equal(h.text[0][2], "new->acknowledged");
    assert_string_equal(h.text[1][2], "acknowledged->rectifying");
    assert_string_equal(h.text[1][3], "ticket 42|");
    assert_string_equal(h.text[2][2], "rectifying->rectified");
    assert_int_equal(h.r[0].at, cst(2026, 3, 2, 9, 0));
    assert_int_equal(h.r[2].at, cst(2026, 3, 2, 12, 0));
    assert_int_equal(h.r[2].seq, 3);
}

static void test_illegal_moves_refused(void **state)
{
    fx *f = *state;
    char why[512];
    incident i;
    hist h;

    put(f, "b1", NULL, ALERT_LEVEL_LOW, "市财政局", NULL, cst(2026, 3, 1, 10, 0), 1, true);
    assert_int_equal(move(f, "b1", INC_CLOSED, "x", why), FH_ERR_ARG);
    assert_non_null(strstr(why, "new"));
    assert_non_null(strstr(why, "closed"));
    assert_int_equal(move(f, "b1", INC_NEW, NULL, why), FH_ERR_ARG);
    assert_non_null(strstr(why, "already new"));
    assert_int_equal(move(f, "nosuch", INC_ACKNOWLEDGED, NULL, why), FH_ERR_NOTFOUND);
    assert_non_null(strstr(why, "no incident nosuch"));
    /* side exits need their details */
    assert_int_equal(move(f, "b1", INC_DUPLICATE, NULL, why), FH_ERR_ARG);
    assert_non_null(strstr(why, "id of the incident it duplicates"));
    assert_int_equal(move(f, "b1", INC_ACCEPTED_RISK, NULL, why), FH_ERR_ARG);
    assert_non_null(strstr(why, "reason, an approver and an expiry"));
    history(f, "b1", &h);
    assert_int_equal(h.n, 0); /* nothing recorded for refused moves */
    i = get(f, "b1");
    assert_int_equal(i.status, INC_NEW);
    assert_int_equal(i.status_at, 0);
    incident_clear(&i);
    /* final states stay final */
    assert_int_equal(move(f, "b1", INC_FALSE_POSITIVE, "scanner of the SOC", why), FH_OK);
    assert_int_equal(move(f, "b1", INC_RECTIFYING, NULL, why), FH_ERR_ARG);
    assert_string_equal(why, "an incident that is false_positive cannot become rectifying "
                             "(false_positive is final)");
}

static void test_duplicate_assign_notice(void **state)
{
    fx *f = *state;
    char why[512];
    incident_move m;
    incident_notice n = {"杭网通〔2026〕12号", "市委网信办", "2026-03-02", cst(2026, 3, 6, 24, 0)};
    incident i;
    hist h;

    put(f, "c1", NULL, ALERT_LEVEL_MEDIUM, "大数据局", NULL, cst(2026, 3, 1, 10, 0), 1, true);
    put(f, "c2", NULL, ALERT_LEVEL_MEDIUM, "大数据局", NULL, cst(2026, 3, 1, 11, 0), 1, true);
    memset(&m, 0, sizeof(m));
    m.to = INC_DUPLICATE;
    m.actor = "bob";
    m.now = f->now;
    m.duplicate_of = "c2";
    assert_int_equal(incident_transition(f->st, "c2", &m, NULL, why, sizeof(why)), FH_ERR_ARG);
    assert_non_null(strstr(why, "cannot duplicate itself"));
    assert_int_equal(incident_transition(f->st, "c1", &m, NULL, why, sizeof(why)), FH_OK);
    i = get(f, "c1");
    assert_int_equal(i.status, INC_DUPLICATE);
    assert_string_equal(i.duplicate_of, "c2");
    incident_clear(&i);

    assert_int_equal(incident_assign(f->st, "c2", "市委网信办", "张三", "bob", "owner moved",
                                     f->now, why, sizeof(why)),
                     FH_OK);
    assert_int_equal(incident_set_notice(f->st, "c2", &n, "carol", NULL, f->now, why, sizeof(why)),
                     FH_OK);
    i = get(f, "c2");
    assert_string_equal(incident_department(&i), "市委网信办");
    assert_string_equal(i.owner_department, "大数据局");
    assert_string_equal(i.assignee, "张三");
    assert_string_equal(i.notice_no, "杭网通〔2026〕12号");
    assert_string_equal(i.notice_issuer, "市委网信办");
    assert_string_equal(i.notice_date, "2026-03-02");
    assert_int_equal(i.deadline_at, cst(2026, 3, 7, 0, 0));
    assert_string_equal(i.deadline_source, "notice");
    assert_int_equal(i.status, INC_NEW); /* neither changes the status */
    incident_clear(&i);
    history(f, "c2", &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.text[0][1], "assign");
    assert_string_equal(h.text[0][2], "new->new");
    assert_string_equal(h.text[0][3],
                        "owner moved|department: 大数据局 -> 市委网信办; assignee: (none) -> 张三");
    assert_string_equal(h.text[1][1], "notice");
    assert_non_null(strstr(h.text[1][3], "notice 杭网通〔2026〕12号 by 市委网信办"));
}

static void test_stamp_deadlines(void **state)
{
    fx *f = *state;
    uint32_t n;
    incident i;
    char why[512];
    incident_notice nt = {"N1", "issuer", "2026-09-29", cst(2026, 10, 20, 24, 0)};

    /* medium: 5 working days; 2026-09-30 + 5 = 2026-10-13 (National Day holiday) */
    put(f, "d1", NULL, ALERT_LEVEL_MEDIUM, "大数据局", NULL, cst(2026, 9, 30, 10, 0), 1, true);
    /* critical: 24 h and containment 2 h */
    put(f, "d2", NULL, ALERT_LEVEL_CRITICAL, "大数据局", NULL, cst(2026, 2, 14, 9, 0), 1, true);
    /* low, 15 working days from late December 2026 runs into 2027: no calendar file */
    put(f, "d3", NULL, ALERT_LEVEL_LOW, "大数据局", NULL, cst(2026, 12, 24, 10, 0), 1, true);
    /* a notice's deadline is not replaced by the policy */
    put(f, "d4", NULL, ALERT_LEVEL_MEDIUM, "大数据局", NULL, cst(2026, 9, 28, 10, 0), 1, true);
    assert_int_equal(incident_set_notice(f->st, "d4", &nt, "carol", NULL, f->now, why, 512), FH_OK);
    assert_int_equal(incident_stamp_deadlines(f->st, &f->pol, f->cal, &n), FH_OK);
    assert_int_equal(n, 3);
    i = get(f, "d1");
    assert_int_equal(i.deadline_at, cst(2026, 10, 14, 0, 0)); /* end of 10-13 */
    assert_false(i.deadline_guessed);
    assert_string_equal(i.deadline_source, "policy");
    incident_clear(&i);
    i = get(f, "d2");
    assert_int_equal(i.deadline_at, cst(2026, 2, 15, 9, 0));
    assert_int_equal(i.containment_at, cst(2026, 2, 14, 11, 0));
    incident_clear(&i);
    i = get(f, "d3");
    assert_true(i.deadline_guessed);
    incident_clear(&i);
    i = get(f, "d4");
    assert_int_equal(i.deadline_at, cst(2026, 10, 21, 0, 0));
    assert_string_equal(i.deadline_source, "notice");
    incident_clear(&i);
    /* a second pass stamps nothing */
    assert_int_equal(incident_stamp_deadlines(f->st, &f->pol, f->cal, &n), FH_OK);
    assert_int_equal(n, 0);
}

static void test_recurrence_reopens(void **state)
{
    fx *f = *state;
    char why[512];
    incident i;
    alert loaded;
    bool found;
    hist h;

    put(f, "e1", "l3_09_bruteforce", ALERT_LEVEL_HIGH, "大数据局", "s1", cst(2026, 3, 1, 10, 0), 1,
        true);
    assert_int_equal(move(f, "e1", INC_ACKNOWLEDGED, NULL, why), FH_OK);
    assert_int_equal(move(f, "e1", INC_RECTIFYING, NULL, why), FH_OK);
    assert_int_equal(move(f, "e1", INC_RECTIFIED, "blocked", why), FH_OK);
    /* after a restart the correlator finds the rectified alert for its rule and key */
    memset(&loaded, 0, sizeof(loaded));
    assert_int_equal(store_load_open(f->st, "l3_09_bruteforce", "src_ip=10.0.0.1", &loaded, &found),
                     FH_OK);
    assert_true(found);
    assert_string_equal(loaded.id, "e1");
    assert_string_equal(loaded.status, "rectified");
    alert_clear(&loaded);
    /* the same rule and key fire again: reopened, not duplicated */
    f->now = cst(2026, 3, 2, 15, 0);
    put(f, "e1", "l3_09_bruteforce", ALERT_LEVEL_HIGH, "大数据局", "s1", cst(2026, 3, 1, 10, 0), 2,
        false);
    i = get(f, "e1");
    assert_int_equal(i.status, INC_REOPENED);
    assert_int_equal(i.reopen_count, 1);
    assert_int_equal(i.verify_until, 0);
    assert_int_equal(i.count, 2);
    incident_clear(&i);
    history(f, "e1", &h);
    assert_int_equal(h.n, 4);
    assert_string_equal(h.text[3][0], "correlator");
    assert_string_equal(h.text[3][2], "rectified->reopened");
    assert_string_equal(h.text[3][3],
                        "|recurrence at 2026-03-01T02:02:00.000Z (event time); hits 2");
    assert_int_equal(h.r[3].at, cst(2026, 3, 2, 15, 0));
    /* a further hit on a reopened incident changes nothing in its lifecycle */
    put(f, "e1", "l3_09_bruteforce", ALERT_LEVEL_HIGH, "大数据局", "s1", cst(2026, 3, 1, 10, 0), 3,
        false);
    history(f, "e1", &h);
    assert_int_equal(h.n, 4);
    /* and the path back is reopened -> rectifying */
    assert_int_equal(move(f, "e1", INC_RECTIFIED, NULL, why), FH_ERR_ARG);
    assert_int_equal(move(f, "e1", INC_RECTIFYING, NULL, why), FH_OK);
}

/* Stats events of a sensor at every `step` from..to (event time). */
static void stats(fx *f, const char *sensor, const char *segment, int64_t from, int64_t to,
                  int64_t step)
{
    assert_int_equal(store_begin(f->st), FH_OK);
    for (int64_t t = from; t < to; t += step)
        assert_int_equal(store_sensor_stats(f->st, sensor, segment, t), FH_OK);
    assert_int_equal(store_commit(f->st), FH_OK);
}

static void rectify(fx *f, const char *id, const char *sensor)
{
    char why[512];

    put(f, id, "l3_12_yara_malware", ALERT_LEVEL_HIGH, "大数据局", sensor, cst(2026, 3, 1, 8, 0), 1,
        true);
    assert_int_equal(move(f, id, INC_ACKNOWLEDGED, NULL, why), FH_OK);
    assert_int_equal(move(f, id, INC_RECTIFYING, NULL, why), FH_OK);
    assert_int_equal(move(f, id, INC_RECTIFIED, NULL, why), FH_OK); /* at 03-02 09:00 */
}

static void test_verification(void **state)
{
    fx *f = *state;
    int64_t r = cst(2026, 3, 2, 9, 0), end = r + DAY;
    incident_sweep_result res;
    char why[512];
    incident i;
    hist h;

    rectify(f, "v1", "s-good");
    rectify(f, "v2", "s-hole");
    rectify(f, "v3", "s-drop");
    rectify(f, "v4", NULL); /* no sensor named: the sensors of its segment (s-good) */
    put_segment = "seg-z";
    rectify(f, "v5", NULL); /* no sensor named, none watching its segment */
    put_segment = "seg-a";
    stats(f, "s-good", "seg-a", r - H, end + H, 60000);
    /* s-hole: silent from 14:00 to 16:00 */
    stats(f, "s-hole", NULL, r - H, cst(2026, 3, 2, 14, 0), 60000);
    stats(f, "s-hole", NULL, cst(2026, 3, 2, 16, 0), end + H, 60000);
    /* s-drop: every hour covered, but a capture-drops alert (L3-28) in the window */
    stats(f, "s-drop", NULL, r - H, end + H, 60000);
    {
        alert a;

        memset(&a, 0, sizeof(a));
        snprintf(a.id, sizeof(a.id), "gap1");
        a.rule_id = a.rule_name = (char *)"l3_28_capture_drops";
        a.title = (char *)"drops";
        a.level = ALERT_LEVEL_HIGH;
        a.group_key = (char *)"sensor.id=s-drop";
        a.window_start_ms = a.first_seen_ms = cst(2026, 3, 2, 20, 0);
        a.last_seen_ms = cst(2026, 3, 2, 20, 30);
        a.created_ms = a.updated_ms = a.first_seen_ms;
        a.count = a.hits = 1;
        a.opened = true;
        assert_int_equal(store_begin(f->st), FH_OK);
        assert_int_equal(store_apply(f->st, &a), FH_OK);
        assert_int_equal(store_commit(f->st), FH_OK);
    }
    /* before the window ends nothing happens */
    assert_int_equal(incident_sweep(f->st, &f->pol, f->cal, end - 1, &res), FH_OK);
    assert_int_equal(res.verified + res.sensor_gap, 0);
    assert_int_equal(incident_sweep(f->st, &f->pol, f->cal, end, &res), FH_OK);
    assert_int_equal(res.verified, 2);
    assert_int_equal(res.sensor_gap, 3);

    i = get(f, "v1");
    assert_int_equal(i.status, INC_CLOSED);
    assert_string_equal(i.verification, "verified");
    assert_int_equal(i.closed_at, end);
    assert_non_null(strstr(i.verification_evidence, "\"id\":\"s-good\""));
    assert_non_null(strstr(i.verification_evidence, "\"hours\":24,\"hours_with_stats\":24"));
    assert_non_null(strstr(i.verification_evidence, "\"healthy\":true"));
    assert_non_null(strstr(i.verification_evidence, "2026-03-02T01:00:00.000Z"));
    incident_clear(&i);
    history(f, "v1", &h);
    assert_string_equal(h.text[h.n - 1][0], "console:sweep");
    assert_string_equal(h.text[h.n - 1][2], "rectified->closed");

    i = get(f, "v2");
    assert_int_equal(i.status, INC_RECTIFIED);
    assert_string_equal(i.verification, "sensor_gap");
    /* its own sensor missed two hours (silent from 14:00 to 16:00: 300 + 1020 stats);
     * s-good, watching the same segment, was fine */
    assert_non_null(strstr(i.verification_evidence,
                           "{\"id\":\"s-hole\",\"stats_events\":1320,\"hours\":24,"
                           "\"hours_with_stats\":22,\"gap_alerts\":[],\"healthy\":false}"));
    assert_non_null(strstr(i.verification_evidence, "\"id\":\"s-good\""));
    incident_clear(&i);
    i = get(f, "v3");
    assert_string_equal(i.verification, "sensor_gap");
    assert_non_null(strstr(i.verification_evidence, "\"gap_alerts\":[\"gap1\"]"));
    incident_clear(&i);
    i = get(f, "v4");
    assert_string_equal(i.verification, "verified");
    assert_non_null(strstr(i.verification_evidence, "\"sensors\":[{\"id\":\"s-good\""));
    incident_clear(&i);
    i = get(f, "v5");
    assert_string_equal(i.verification, "sensor_gap");
    assert_int_equal(i.status, INC_RECTIFIED);
    assert_non_null(strstr(i.verification_evidence, "no sensor is known"));
    incident_clear(&i);
    /* the sweep does not mark them twice */
    assert_int_equal(incident_sweep(f->st, &f->pol, f->cal, end + DAY, &res), FH_OK);
    assert_int_equal(res.verified + res.sensor_gap, 0);
    /* a person closes an unverified incident only with a comment */
    f->now = end + 2 * H;
    assert_int_equal(move(f, "v2", INC_CLOSED, NULL, why), FH_ERR_ARG);
    assert_non_null(strstr(why, "needs a comment"));
    assert_int_equal(move(f, "v2", INC_CLOSED, "checked the host by hand", why), FH_OK);
}

static void test_accepted_risk_expires(void **state)
{
    fx *f = *state;
    incident_sweep_result res;
    incident_move m;
    char why[512];
    incident i;
    hist h;
    deadline want;

    put(f, "r1", NULL, ALERT_LEVEL_MEDIUM, "大数据局", NULL, cst(2026, 3, 1, 10, 0), 1, true);
    memset(&m, 0, sizeof(m));
    m.to = INC_ACCEPTED_RISK;
    m.actor = "dave";
    m.now = f->now;
    m.risk_reason = "legacy system, replacement in Q3";
    m.risk_approver = "CISO 王五";
    m.risk_expires = f->now - 1; /* in the past: refused */
    assert_int_equal(incident_transition(f->st, "r1", &m, NULL, why, sizeof(why)), FH_ERR_ARG);
    m.risk_expires = cst(2026, 4, 30, 24, 0);
    assert_int_equal(incident_transition(f->st, "r1", &m, NULL, why, sizeof(why)), FH_OK);
    assert_int_equal(incident_sweep(f->st, &f->pol, f->cal, cst(2026, 4, 30, 12, 0), &res), FH_OK);
    assert_int_equal(res.risk_expired, 0);
    /* swept late (on 05-06): the fresh deadline still counts from the expiry */
    assert_int_equal(incident_sweep(f->st, &f->pol, f->cal, cst(2026, 5, 6, 9, 0), &res), FH_OK);
    assert_int_equal(res.risk_expired, 1);
    i = get(f, "r1");
    assert_int_equal(i.status, INC_RECTIFYING);
    want = deadline_compute(&f->pol, f->cal, cst(2026, 5, 1, 0, 0), ALERT_LEVEL_MEDIUM, "大数据局",
                            "business");
    /* 2026-05-01..05 is the Labour Day holiday, 05-09 a make-up Saturday */
    assert_int_equal(i.deadline_at, want.due_ms);
    assert_int_equal(i.deadline_at, cst(2026, 5, 11, 24, 0));
    assert_string_equal(i.deadline_source, "risk_expired");
    assert_string_equal(i.risk_approver, "CISO 王五");
    incident_clear(&i);
    history(f, "r1", &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.text[0][2], "new->accepted_risk");
    assert_non_null(strstr(h.text[0][3], "risk accepted by CISO 王五 until 2026-04-30 24:00"));
    assert_string_equal(h.text[1][0], "console:sweep");
    assert_string_equal(h.text[1][2], "accepted_risk->rectifying");
    assert_non_null(strstr(h.text[1][3], "risk acceptance expired on 2026-04-30 24:00|"));
    assert_non_null(strstr(h.text[1][3], "fresh deadline 2026-05-11 24:00"));
}

/* Runs sql (a migration of SQLite's dialect) on the test's database. */
static void raw_exec(fx *f, const char *path, const char *sql)
{
    db *d;
    db_opts o = {.busy_timeout_ms = 5000};
    char err[256], *t = malloc(strlen(sql) * 2 + 1), *o2 = t;

    assert_non_null(t);
    for (const char *p = sql; *p;) /* PostgreSQL says BYTEA where SQLite says BLOB */
        if (f->pg && !strncmp(p, " BLOB", 5))
            o2 += sprintf(o2, " BYTEA"), p += 5;
        else
            *o2++ = *p++;
    *o2 = '\0';
    assert_int_equal(db_open(&d, path, &o, err, sizeof(err)), FH_OK);
    if (db_exec(d, t) != FH_OK)
        fail_msg("%s", db_errmsg(d));
    db_close(d);
    free(t);
}

/* A database made by the 0004 schema, with an acknowledged alert and its evidence. */
static void test_migration_keeps_alerts(void **state)
{
    fx *f = *state;
    size_t n;
    const store_migration *m = store_migrations(&n);
    char path[256], err[256];
    store *st;
    store_opts so;
    incident i;

    if (f->pg)
        assert_true(pgtest_fresh_db(path, sizeof(path)));
    else
        snprintf(path, sizeof(path), "%s/old.db", f->dir);
    raw_exec(f, path,
             "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
             "applied_at BIGINT NOT NULL)");
    for (size_t k = 0; k < n && m[k].version <= 4; k++) {
        char ins[160];

        raw_exec(f, path, m[k].sql);
        snprintf(ins, sizeof(ins), "INSERT INTO schema_migrations VALUES (%d, '%s', 0)",
                 m[k].version, m[k].name);
        raw_exec(f, path, ins);
    }
    raw_exec(f, path,
             "INSERT INTO alerts (id, rule_id, title, level, severity, status, group_key, "
             "window_start, first_seen, last_seen, count, hits, department, created_at, "
             "updated_at) VALUES ('old1', 'r', 't', 'high', 3, 'acknowledged', 'k', 1, 1, "
             "1, 1, 1, '大数据局', 1, 1);"
             "INSERT INTO alert_evidence VALUES ('old1', 1, 1, NULL, '{}', 0);");
    memset(&so, 0, sizeof(so));
    so.path = path;
    assert_int_equal(store_open(&st, &so, err, sizeof(err)), FH_OK);
    assert_int_equal(store_schema_version(st), (int)n); /* every migration since 0004 applied */
    assert_int_equal(incident_get(st, "old1", &i), FH_OK);
    assert_int_equal(i.status, INC_ACKNOWLEDGED);
    assert_string_equal(i.owner_department, "大数据局");
    incident_clear(&i);
    {
        alert a;

        memset(&a, 0, sizeof(a));
        assert_int_equal(store_get_alert(st, "old1", &a), FH_OK);
        assert_int_equal(a.nevidence, 1);
        alert_clear(&a);
    }
    store_close(st);
    /* the new CHECK holds: a status outside the lifecycle is refused */
    {
        db *d;
        db_opts o = {.busy_timeout_ms = 5000};

        assert_int_equal(db_open(&d, path, &o, err, sizeof(err)), FH_OK);
        assert_int_not_equal(db_exec(d, "UPDATE alerts SET status = 'bogus'"), FH_OK);
        assert_int_equal(db_exec(d, "UPDATE alerts SET status = 'duplicate'"), FH_OK);
        db_close(d);
    }
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

#define PG(t) cmocka_unit_test_setup_teardown(t, setup_pg, teardown)

#define TESTS(X)                                                                                   \
    {                                                                                              \
        X(test_moves_are_recorded), X(test_illegal_moves_refused),                                 \
            X(test_duplicate_assign_notice), X(test_stamp_deadlines), X(test_recurrence_reopens),  \
            X(test_verification), X(test_accepted_risk_expires), X(test_migration_keeps_alerts),   \
    }

int main(void)
{
    const struct CMUnitTest lite[] = TESTS(BOTH);
    const struct CMUnitTest pg[] = TESTS(PG);
    int failed = cmocka_run_group_tests_name("sqlite", lite, NULL, NULL);

    if (!getenv("FH_TEST_PG") || !*getenv("FH_TEST_PG")) {
        printf("PostgreSQL: skipped, FH_TEST_PG is not set (make test-unit starts a server "
               "with tests/tools/pg.sh)\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("postgresql", pg, NULL, NULL);
}
