/*
 * test_alerts.c - alerts and their store (correlator/alerts.c, store.c):
 * tag splitting, deterministic ids (against a Python hashlib vector), dedupe,
 * evidence bounds, LRU eviction and resumption from the store, idle closing,
 * the embedded migrations equal the files in correlator/migrations/, migrations from
 * empty and on reopen, upsert after reopen, exactly-once application of a
 * stream across a kill -9 (forked child), bound parameters against SQL
 * injection, NDJSON escaping, the outbox, WAL and integrity_check.
 *
 * Run from the repository root (make test-unit does): it reads
 * correlator/migrations/.
 */
#include <setjmp.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../correlator/alerts.h"
#include "../../../correlator/db.h"
#include "../../../correlator/store.h"
#include "pgtest.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

static const char *const L3_07_TAGS[] = {
    "gbt22239.8.1.3.3.a",    "gbt22239.8.1.3.3.d", "gbt20986.network_attack.scan",
    "attack.reconnaissance", "attack.t1595.001",
};

static alert_hit mkhit(const char *rule, const char *key, int64_t ts)
{
    alert_hit h;

    memset(&h, 0, sizeof(h));
    h.rule_id = rule;
    h.rule_name = "l3_07_internet_port_scan";
    h.title = "Port scan from the Internet";
    h.level = ALERT_LEVEL_LOW;
    h.tags = L3_07_TAGS;
    h.ntags = 5;
    h.group_key = key;
    h.ts_ms = ts;
    h.event = "{\"event_type\":\"flow\",\"src_ip\":\"203.0.113.9\"}";
    h.event_len = strlen(h.event);
    h.community_id = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
    h.src.ip = key;
    h.dest.ip = "10.20.1.5";
    h.dest.zone = "dmz";
    h.dest.department = "大数据局";
    h.dest.name = "web-01";
    return h;
}

/* ---- a pipeline: book -> (store_apply + NDJSON) --------------------------------------- */

typedef struct {
    store *st;
    alert_book *book;
    jbuf jb;
    char **lines; /* emitted JSON, in order */
    size_t nlines;
    char path[256];
} pipe_t;

static fh_err emit(void *ctx, const alert *a)
{
    pipe_t *p = ctx;
    fh_err err;

    if (p->st && (err = store_apply(p->st, a)))
        return err;
    if ((err = alert_to_json(a, &p->jb)))
        return err;
    p->lines = realloc(p->lines, (p->nlines + 1) * sizeof(*p->lines));
    assert_non_null(p->lines);
    p->lines[p->nlines] = strdup(jbuf_cstr(&p->jb));
    assert_non_null(p->lines[p->nlines]);
    p->nlines++;
    return FH_OK;
}

static int db_seq;
static bool use_pg; /* the store tests' second run: on PostgreSQL (pgtest.h) */

/* A new store: an SQLite file, or a fresh PostgreSQL database. */
static void db_path(char *out, size_t n)
{
    if (use_pg) {
        if (!pgtest_fresh_db(out, n))
            fail_msg("cannot create a PostgreSQL database on FH_TEST_PG");
        return;
    }
    snprintf(out, n, "/tmp/fh-test-alerts-%d-%d.db", (int)getpid(), db_seq++);
}

static void db_remove(const char *path)
{
    char p[300];

    if (db_target_is_postgres(path))
        return; /* the server is thrown away with its databases */
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static store *open_store(const char *path, bool outbox)
{
    store_opts o = {.path = path, .outbox = outbox};
    store *st = NULL;
    char err[512] = "";

    if (store_open(&st, &o, err, sizeof(err)) != FH_OK)
        fail_msg("store_open: %s", err);
    return st;
}

/* Opens a pipeline without a store (the book alone). */
static void pipe_open(pipe_t *p, const char *path, const alert_book_opts *bo)
{
    alert_book_ops ops = {.emit = emit, .ctx = p};

    assert_null(path);
    memset(p, 0, sizeof(*p));
    assert_true(jbuf_init(&p->jb, 1024, 1 << 20));
    assert_int_equal(alert_book_new(&p->book, bo, &ops), FH_OK);
}

static void pipe_close(pipe_t *p)
{
    alert_book_free(p->book);
    store_close(p->st);
    for (size_t i = 0; i < p->nlines; i++)
        free(p->lines[i]);
    free(p->lines);
    jbuf_free(&p->jb);
}

/* The book's load callback with the pipe as ctx. */
static fh_err pipe_load(void *ctx, const char *rule_id, const char *key, alert *out, bool *found)
{
    return store_load_open(((pipe_t *)ctx)->st, rule_id, key, out, found);
}

static void pipe_open_store(pipe_t *p, const char *path, const alert_book_opts *bo)
{
    alert_book_ops ops = {.emit = emit, .load = pipe_load};

    memset(p, 0, sizeof(*p));
    assert_true(jbuf_init(&p->jb, 1024, 1 << 20));
    snprintf(p->path, sizeof(p->path), "%s", path);
    p->st = open_store(path, false);
    ops.ctx = p;
    assert_int_equal(alert_book_new(&p->book, bo, &ops), FH_OK);
}

static void hit_ok(pipe_t *p, const alert_hit *h)
{
    fh_err err = alert_book_hit(p->book, h, NULL);

    if (err)
        fail_msg("alert_book_hit: %s (%s)", fh_strerror(err), p->st ? store_errmsg(p->st) : "");
}

static void tx(pipe_t *p, const alert_hit *hits, size_t n)
{
    assert_int_equal(store_begin(p->st), FH_OK);
    for (size_t i = 0; i < n; i++)
        hit_ok(p, &hits[i]);
    if (alert_book_flush(p->book) != FH_OK)
        fail_msg("flush: %s", store_errmsg(p->st));
    assert_int_equal(store_commit(p->st), FH_OK);
}

/* The database behind a store, read directly (db.h: SQLite or PostgreSQL). */
static db *raw_open(const char *path)
{
    db *d = NULL;
    db_opts o = {.busy_timeout_ms = 5000};
    char err[256];

    if (db_open(&d, path, &o, err, sizeof(err)) != FH_OK)
        fail_msg("%s: %s", path, err);
    return d;
}

/* The first column of the first row of sql as text ("" for none), into out. */
static const char *raw_text(db *d, const char *sql, char *out, size_t n)
{
    db_stmt *s = db_prepare(d, sql);

    out[0] = '\0';
    if (!s)
        fail_msg("%s: %s", sql, db_errmsg(d));
    if (db_step(s) == DB_ROW && db_column_text(s, 0))
        snprintf(out, n, "%s", db_column_text(s, 0));
    db_finalize(s);
    return out;
}

static long long raw_int(db *d, const char *sql)
{
    char t[64];

    return atoll(raw_text(d, sql, t, sizeof(t)));
}

/* Every row of sql, columns joined by '|', rows by '\n' (malloc'd); ncols columns. */
static char *raw_dump_n(db *d, const char *sql, int ncols)
{
    db_stmt *s = db_prepare(d, sql);
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);

    assert_non_null(out);
    out[0] = '\0';
    if (!s)
        fail_msg("%s: %s", sql, db_errmsg(d));
    while (db_step(s) == DB_ROW) {
        for (int i = 0; i < ncols; i++) {
            const char *v = db_column_text(s, i);
            size_t need = (v ? strlen(v) : 4) + 2;

            if (len + need + 1 > cap) {
                cap = (len + need + 1) * 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%c", v ? v : "NULL",
                                    i + 1 < ncols ? '|' : '\n');
        }
    }
    db_finalize(s);
    return out;
}

/* ---- tags, levels, ids ---------------------------------------------------------------- */

static void expect_tag(const char *tag, alert_tag_kind kind, const char *value, const char *sub,
                       const char *display)
{
    alert_tag t;

    assert_int_equal(alert_tag_parse(tag, &t), FH_OK);
    if (t.kind != kind)
        fail_msg("%s: kind %s, want %s", tag, alert_tag_kind_name(t.kind),
                 alert_tag_kind_name(kind));
    assert_string_equal(t.tag, tag);
    assert_string_equal(t.value, value);
    if (sub)
        assert_string_equal(t.sub, sub);
    else
        assert_null(t.sub);
    assert_string_equal(t.display, display);
    alert_tag_clear(&t);
}

static void test_tags(void **state)
{
    alert a;

    (void)state;
    expect_tag("gbt22239.8.1.4.1.c", ALERT_TAG_CLAUSE, "8.1.4.1.c", NULL, "8.1.4.1 c");
    expect_tag("gbt22239.8.1.2.2", ALERT_TAG_CLAUSE, "8.1.2.2", NULL, "8.1.2.2");
    expect_tag("GBT22239.8.2.4.5.A", ALERT_TAG_CLAUSE, "8.2.4.5.a", NULL, "8.2.4.5 a");
    expect_tag("gbt20986.malware.mining", ALERT_TAG_CATEGORY, "malware", "mining",
               "malware.mining");
    expect_tag("gbt20986.malware", ALERT_TAG_CATEGORY, "malware", NULL, "malware");
    expect_tag("attack.t1046", ALERT_TAG_ATTACK, "t1046", "technique", "T1046");
    expect_tag("attack.t1595.001", ALERT_TAG_ATTACK, "t1595.001", "technique", "T1595.001");
    expect_tag("attack.credential-access", ALERT_TAG_ATTACK, "credential-access", "tactic",
               "credential-access");
    expect_tag("attack.g0007", ALERT_TAG_ATTACK, "g0007", "group", "G0007");
    expect_tag("attack.s0002", ALERT_TAG_ATTACK, "s0002", "software", "S0002");
    /* not a clause: kept, as "other" */
    expect_tag("gbt22239.foo", ALERT_TAG_OTHER, "gbt22239.foo", NULL, "gbt22239.foo");
    expect_tag("gbt22239.8..1", ALERT_TAG_OTHER, "gbt22239.8..1", NULL, "gbt22239.8..1");
    expect_tag("gbt22239.8.1.", ALERT_TAG_OTHER, "gbt22239.8.1.", NULL, "gbt22239.8.1.");
    expect_tag("cve.2021-44228", ALERT_TAG_OTHER, "cve.2021-44228", NULL, "cve.2021-44228");
    {
        alert_tag t;
        assert_int_equal(alert_tag_parse("", &t), FH_ERR_PARSE);
    }

    memset(&a, 0, sizeof(a));
    assert_int_equal(alert_set_tags(&a, L3_07_TAGS, 5), FH_OK);
    assert_int_equal(a.ntags, 5);
    assert_string_equal(a.category, "network_attack");
    assert_string_equal(a.subcategory, "scan");
    alert_clear(&a);

    assert_string_equal(alert_level_name(ALERT_LEVEL_CRITICAL), "critical");
    assert_null(alert_level_name(5));
    assert_int_equal(alert_level_parse("medium"), ALERT_LEVEL_MEDIUM);
    assert_int_equal(alert_level_parse("urgent"), -1);
}

static void test_ids(void **state)
{
    char a[ALERT_ID_LEN + 1], b[ALERT_ID_LEN + 1];

    (void)state;
    /* python3 -c "import hashlib; print(hashlib.sha256(b'L3-07\0203.0.113.9\0' b'1700000000000')
     *             .hexdigest()[:32])" */
    alert_make_id("L3-07", "203.0.113.9", T0, a);
    assert_string_equal(a, "f9aa9bf924b9a681edce7dcbbb4a9ee8");
    alert_make_id("r", "", -5, a);
    assert_string_equal(a, "a86abbb1fa15cb779acef3987b35865e");

    alert_make_id("L3-07", "203.0.113.9", T0, a);
    alert_make_id("L3-07", "203.0.113.9", T0, b);
    assert_string_equal(a, b);
    alert_make_id("L3-07", "203.0.113.10", T0, b);
    assert_string_not_equal(a, b);
    alert_make_id("L3-08", "203.0.113.9", T0, b);
    assert_string_not_equal(a, b);
    alert_make_id("L3-07", "203.0.113.9", T0 + 1, b);
    assert_string_not_equal(a, b);
    /* the separator matters: ("ab","c") is not ("a","bc") */
    alert_make_id("ab", "c", 0, a);
    alert_make_id("a", "bc", 0, b);
    assert_string_not_equal(a, b);
}

/* ---- the book (memory only) ----------------------------------------------------------- */

static void test_dedupe(void **state)
{
    pipe_t p;
    const alert *a;
    const alert_book_stats *s;
    alert_hit h;
    char first_id[ALERT_ID_LEN + 1];

    (void)state;
    pipe_open(&p, NULL, NULL);
    h = mkhit("L3-07", "203.0.113.9", T0 + 5000);
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    snprintf(first_id, sizeof(first_id), "%s", a->id);
    h.ts_ms = T0 + 9000;
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    h.ts_ms = T0; /* out of order: first_seen moves back, last_seen stays */
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_string_equal(a->id, first_id);
    assert_int_equal(a->count, 3);
    assert_int_equal(a->hits, 3);
    assert_true(a->first_seen_ms == T0);
    assert_true(a->last_seen_ms == T0 + 9000);
    assert_true(a->window_start_ms == T0 + 5000);   /* the id's window is the opening hit's */
    assert_string_equal(a->department, "大数据局"); /* group key is src, src has none: dest's */
    assert_string_equal(a->dest.name, "web-01");

    /* another key: another alert */
    h = mkhit("L3-07", "198.51.100.7", T0 + 6000);
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_string_not_equal(a->id, first_id);

    /* a correlation hit adds its count; its window is the id's */
    h = mkhit("L3-09", "198.51.100.7|10.20.1.5", T0 + 70000);
    h.correlation = true;
    h.window_start_ms = T0 + 10000;
    h.count = 12;
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    h.ts_ms = T0 + 80000;
    h.window_start_ms = T0 + 20000;
    h.count = 15;
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_int_equal(a->count, 27);
    assert_int_equal(a->hits, 2);
    assert_true(a->window_start_ms == T0 + 10000);
    {
        char want[ALERT_ID_LEN + 1];
        alert_make_id("L3-09", "198.51.100.7|10.20.1.5", T0 + 10000, want);
        assert_string_equal(a->id, want);
    }

    s = alert_book_get_stats(p.book);
    assert_int_equal(s->opened, 3);
    assert_int_equal(s->deduplicated, 3);
    assert_int_equal(s->dirty, 3);
    assert_int_equal(p.nlines, 0);
    assert_int_equal(alert_book_flush(p.book), FH_OK);
    assert_int_equal(p.nlines, 3); /* one update per changed alert, not per hit */
    assert_non_null(strstr(p.lines[0], "\"count\":3,\"hits\":3"));
    assert_non_null(strstr(p.lines[0], "\"update\":\"opened\""));
    assert_int_equal(alert_book_flush(p.book), FH_OK);
    assert_int_equal(p.nlines, 3);
    h = mkhit("L3-07", "203.0.113.9", T0 + 10000);
    assert_int_equal(alert_book_hit(p.book, &h, NULL), FH_OK);
    assert_int_equal(alert_book_flush(p.book), FH_OK);
    assert_int_equal(p.nlines, 4);
    assert_non_null(strstr(p.lines[3], "\"update\":\"updated\""));
    assert_non_null(strstr(p.lines[3], "\"count\":4"));

    /* bad hits */
    h = mkhit(NULL, "x", T0);
    assert_int_equal(alert_book_hit(p.book, &h, NULL), FH_ERR_ARG);
    h = mkhit("L3-07", NULL, T0);
    assert_int_equal(alert_book_hit(p.book, &h, NULL), FH_ERR_ARG);
    h = mkhit("L3-07", "x", T0);
    h.level = 7;
    assert_int_equal(alert_book_hit(p.book, &h, NULL), FH_ERR_ARG);
    pipe_close(&p);
}

static void test_replay_same_ids(void **state)
{
    char *ids[2][40];

    (void)state;
    for (int run = 0; run < 2; run++) {
        pipe_t p;

        pipe_open(&p, NULL, NULL);
        for (int i = 0; i < 40; i++) {
            char key[32];
            const alert *a;
            alert_hit h;

            snprintf(key, sizeof(key), "10.0.0.%d", i % 7);
            h = mkhit(i % 2 ? "L3-07" : "L3-08", key, T0 + i * 1000);
            assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
            ids[run][i] = strdup(a->id);
        }
        pipe_close(&p);
    }
    for (int i = 0; i < 40; i++) {
        assert_string_equal(ids[0][i], ids[1][i]);
        free(ids[0][i]);
        free(ids[1][i]);
    }
}

static void test_evidence_bound(void **state)
{
    alert_book_opts o = {.evidence_first = 10, .evidence_max_bytes = 40};
    pipe_t p;
    const alert *a;
    alert_hit h;
    char big[128];
    const alert_book_stats *s;
    uint64_t truncated;

    (void)state;
    pipe_open(&p, NULL, &o);
    for (int i = 1; i <= 25; i++) {
        h = mkhit("L3-07", "203.0.113.9", T0 + i);
        assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    }
    /* the first 10 and the latest, before a flush */
    assert_int_equal(a->nevidence, 11);
    for (uint32_t i = 0; i < 10; i++)
        assert_int_equal(a->evidence[i].seq, i + 1);
    assert_int_equal(a->evidence[10].seq, 25);
    assert_true(a->evidence[10].ts_ms == T0 + 25);
    s = alert_book_get_stats(p.book);
    assert_int_equal(s->evidence_dropped, 14);
    assert_int_equal(alert_book_flush(p.book), FH_OK);
    h = mkhit("L3-07", "203.0.113.9", T0 + 26);
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_int_equal(a->nevidence, 1);
    assert_int_equal(a->evidence[0].seq, 26);

    /* truncation at a UTF-8 boundary: 38 ASCII bytes then 3-byte characters */
    memset(big, 'x', 38);
    snprintf(big + 38, sizeof(big) - 38, "烽火烽火");
    h = mkhit("L3-07", "other", T0);
    truncated = s->evidence_truncated;
    h.event = big;
    h.event_len = strlen(big);
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_true(a->evidence[0].truncated);
    assert_int_equal(a->evidence[0].event_len, 38);
    assert_int_equal(s->evidence_truncated, truncated + 1);
    /* no event at all is fine */
    h = mkhit("L3-07", "third", T0);
    h.event = NULL;
    h.community_id = NULL;
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_string_equal(a->evidence[0].event, "");
    pipe_close(&p);
}

static void test_idle_close(void **state)
{
    alert_book_opts o = {.max_idle_ms = 3600000};
    pipe_t p;
    const alert *a;
    alert_hit h;
    char id1[ALERT_ID_LEN + 1];

    (void)state;
    pipe_open(&p, NULL, &o);
    h = mkhit("L3-07", "203.0.113.9", T0);
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    snprintf(id1, sizeof(id1), "%s", a->id);
    h.ts_ms = T0 + 3600000; /* exactly the limit: still open */
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_string_equal(a->id, id1);
    h.ts_ms = T0 + 2 * 3600000 + 1;
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);
    assert_string_not_equal(a->id, id1);
    assert_int_equal(a->count, 1);
    assert_int_equal(alert_book_get_stats(p.book)->idle_closed, 1);
    assert_int_equal(p.nlines, 1); /* the closed one was emitted before it was dropped */
    assert_non_null(strstr(p.lines[0], id1));
    pipe_close(&p);
}

/* ---- migrations ----------------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_migrations_embedded(void **state)
{
    size_t n, files = 0;
    const store_migration *m = store_migrations(&n);
    DIR *d;
    struct dirent *e;

    (void)state;
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        char path[256], prefix[8];
        char *text;

        assert_int_equal(m[i].version, (int)i + 1);
        snprintf(prefix, sizeof(prefix), "%04d_", m[i].version);
        assert_memory_equal(m[i].name, prefix, 5);
        snprintf(path, sizeof(path), "correlator/migrations/%s.sql", m[i].name);
        text = read_file(path);
        if (!text)
            fail_msg("cannot read %s (run from the repository root)", path);
        if (strcmp(text, m[i].sql) != 0)
            fail_msg("%s differs from the string embedded in store.c: regenerate it "
                     "(correlator/README-alerts.md)",
                     path);
        free(text);
    }
    /* and every file is embedded */
    d = opendir("correlator/migrations");
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".sql") == 0)
            files++;
    closedir(d);
    assert_int_equal(files, n);
}

static void test_migrations_open(void **state)
{
    char path[256], t[64];
    store *st;
    db *raw;
    size_t n;

    (void)state;
    store_migrations(&n);
    db_path(path, sizeof(path));
    db_remove(path);
    st = open_store(path, false);
    assert_int_equal(store_schema_version(st), (int)n);
    store_close(st);
    st = open_store(path, false); /* re-open: nothing re-applied */
    assert_int_equal(store_schema_version(st), (int)n);
    store_close(st);

    raw = raw_open(path);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM schema_migrations"), (long long)n);
    assert_string_equal(
        raw_text(raw, "SELECT name FROM schema_migrations WHERE version = 1", t, sizeof(t)),
        "0001_alerts");
    assert_true(raw_int(raw, "SELECT MIN(applied_at) FROM schema_migrations") > T0);
    if (!use_pg) {
        assert_string_equal(raw_text(raw, "PRAGMA journal_mode", t, sizeof(t)), "wal");
        assert_string_equal(raw_text(raw, "PRAGMA integrity_check", t, sizeof(t)), "ok");
        assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                      "AND name IN ('alerts', 'alert_tags', 'alert_evidence', "
                                      "'consumer_offsets', 'alert_outbox')"),
                         5);
        assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' "
                                      "AND name = 'alerts_queue'"),
                         1);
    } else {
        assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                      "table_name IN ('alerts', 'alert_tags', 'alert_evidence', "
                                      "'consumer_offsets', 'alert_outbox')"),
                         5);
        assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM pg_indexes WHERE "
                                      "indexname = 'alerts_queue'"),
                         1);
        /* corr_state's BLOB columns became BYTEA */
        assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM information_schema.columns WHERE "
                                      "table_name = 'corr_state' AND data_type = 'bytea'"),
                         2);
    }
    /* a database from a newer build is refused, not half-used */
    assert_int_equal(db_exec(raw, "INSERT INTO schema_migrations VALUES (99, '0099_future', 0)"),
                     FH_OK);
    db_close(raw);
    {
        store_opts o = {.path = path};
        char err[512] = "";

        st = (store *)1;
        assert_int_equal(store_open(&st, &o, err, sizeof(err)), FH_ERR_CONFIG);
        assert_null(st);
        assert_non_null(strstr(err, "schema version 99 is newer"));
        o.path = NULL;
        assert_int_equal(store_open(&st, &o, err, sizeof(err)), FH_ERR_CONFIG);
        o.path = "/nonexistent-dir/x.db";
        assert_int_equal(store_open(&st, &o, err, sizeof(err)), FH_ERR_IO);
        assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
    }
    db_remove(path);
}

/* ---- the store ------------------------------------------------------------------------ */

static void test_store_roundtrip(void **state)
{
    char path[256], t[256];
    pipe_t p;
    alert_hit h[3];
    alert got;
    db *raw;
    char id[ALERT_ID_LEN + 1];

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    pipe_open_store(&p, path, NULL);
    for (int i = 0; i < 3; i++)
        h[i] = mkhit("L3-07", "203.0.113.9", T0 + i * 1000);
    tx(&p, h, 3);
    alert_make_id("L3-07", "203.0.113.9", T0, id);
    pipe_close(&p);

    /* reopen: a fresh book resumes the stored alert (same id, count continues) */
    pipe_open_store(&p, path, NULL);
    h[0] = mkhit("L3-07", "203.0.113.9", T0 + 60000);
    h[0].src.zone = "internet"; /* fills a gap, does not overwrite */
    h[0].dest.zone = "data";
    tx(&p, h, 1);
    assert_int_equal(alert_book_get_stats(p.book)->resumed, 1);
    assert_int_equal(alert_book_get_stats(p.book)->opened, 0);
    assert_non_null(strstr(p.lines[0], id));
    assert_non_null(strstr(p.lines[0], "\"status\":\"new\""));

    assert_int_equal(store_get_alert(p.st, id, &got), FH_OK);
    assert_int_equal(got.count, 4);
    assert_int_equal(got.hits, 4);
    assert_true(got.first_seen_ms == T0);
    assert_true(got.last_seen_ms == T0 + 60000);
    assert_true(got.created_ms == T0);
    assert_true(got.updated_ms == T0 + 60000);
    assert_int_equal(got.level, ALERT_LEVEL_LOW);
    assert_string_equal(got.status, "new");
    assert_string_equal(got.title, "Port scan from the Internet");
    assert_string_equal(got.rule_name, "l3_07_internet_port_scan");
    assert_string_equal(got.src.zone, "internet");
    assert_string_equal(got.dest.zone, "dmz");
    assert_string_equal(got.department, "大数据局");
    assert_int_equal(got.ntags, 5);
    assert_string_equal(got.category, "network_attack");
    assert_int_equal(got.nevidence, 4);
    assert_int_equal(got.evidence[3].seq, 4);
    assert_string_equal(got.evidence[0].community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    alert_clear(&got);
    assert_int_equal(store_get_alert(p.st, "0000", &got), FH_ERR_NOTFOUND);
    pipe_close(&p);

    raw = raw_open(path);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alerts"), 1);
    {
        char *clauses = raw_dump_n(raw,
                                   "SELECT display FROM alert_tags WHERE kind = 'clause' "
                                   "ORDER BY ord",
                                   1);

        assert_string_equal(clauses, "8.1.3.3 a\n8.1.3.3 d\n");
        free(clauses);
    }
    assert_string_equal(raw_text(raw,
                                 "SELECT value || '/' || sub FROM alert_tags "
                                 "WHERE kind = 'category'",
                                 t, sizeof(t)),
                        "network_attack/scan");
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alert_tags WHERE kind = 'attack'"), 2);
    assert_string_equal(raw_text(raw, "SELECT level || ',' || severity FROM alerts", t, sizeof(t)),
                        "low,1");
    /* a status change elsewhere closes it: the next hit opens a new alert */
    assert_int_equal(db_exec(raw, "UPDATE alerts SET status = 'closed'"), FH_OK);
    db_close(raw);
    pipe_open_store(&p, path, NULL);
    h[0] = mkhit("L3-07", "203.0.113.9", T0 + 70000);
    tx(&p, h, 1);
    assert_int_equal(alert_book_get_stats(p.book)->opened, 1);
    assert_null(strstr(p.lines[0], id));
    /* forget(): the API changed the status of an alert the book holds */
    raw = raw_open(path);
    assert_int_equal(db_exec(raw, "UPDATE alerts SET status = 'false_positive' "
                                  "WHERE status = 'new'"),
                     FH_OK);
    db_close(raw);
    alert_book_forget(p.book, "L3-07", "203.0.113.9");
    h[0].ts_ms = T0 + 80000;
    tx(&p, h, 1);
    assert_int_equal(alert_book_get_stats(p.book)->opened, 2);
    pipe_close(&p);
    raw = raw_open(path);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alerts"), 3);
    db_close(raw);
    db_remove(path);
}

static void test_store_evidence_bound(void **state)
{
    alert_book_opts o = {.evidence_first = 10};
    char path[256];
    pipe_t p;
    db *raw;
    char *dump;

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    pipe_open_store(&p, path, &o);
    /* 25 hits, one flush per hit, then 5 more in one batch */
    for (int i = 1; i <= 25; i++) {
        alert_hit h = mkhit("L3-07", "203.0.113.9", T0 + i);
        tx(&p, &h, 1);
    }
    {
        alert_hit h[5];
        for (int i = 0; i < 5; i++)
            h[i] = mkhit("L3-07", "203.0.113.9", T0 + 26 + i);
        tx(&p, h, 5);
    }
    pipe_close(&p);
    raw = raw_open(path);
    dump = raw_dump_n(raw, "SELECT seq FROM alert_evidence ORDER BY seq", 1);
    assert_string_equal(dump, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n30\n");
    free(dump);
    assert_int_equal(raw_int(raw, "SELECT count FROM alerts"), 30);
    db_close(raw);
    db_remove(path);
}

static void test_lru_eviction(void **state)
{
    alert_book_opts o = {.max_open = 2};
    char path[256];
    pipe_t p;
    alert_hit h;
    alert got;
    char id[ALERT_ID_LEN + 1];
    const alert_book_stats *s;

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    pipe_open_store(&p, path, &o);
    s = alert_book_get_stats(p.book);
    assert_int_equal(store_begin(p.st), FH_OK);
    h = mkhit("L3-07", "a", T0);
    hit_ok(&p, &h);
    h = mkhit("L3-07", "b", T0 + 1);
    hit_ok(&p, &h);
    h = mkhit("L3-07", "c", T0 + 2); /* evicts "a", dirty: emitted first */
    hit_ok(&p, &h);
    assert_int_equal(s->evicted, 1);
    assert_int_equal(s->open, 2);
    assert_int_equal(p.nlines, 1);
    h = mkhit("L3-07", "a", T0 + 3); /* resumed from the store (same transaction) */
    hit_ok(&p, &h);
    assert_int_equal(s->resumed, 1);
    assert_int_equal(s->opened, 3);
    assert_int_equal(alert_book_flush(p.book), FH_OK);
    assert_int_equal(store_commit(p.st), FH_OK);
    alert_make_id("L3-07", "a", T0, id);
    assert_int_equal(store_get_alert(p.st, id, &got), FH_OK);
    assert_int_equal(got.count, 2);
    assert_int_equal(got.nevidence, 2);
    alert_clear(&got);
    pipe_close(&p);
    db_remove(path);
}

static void test_offsets_api(void **state)
{
    char path[256];
    store *st;
    int64_t off = -1;
    alert a;

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    st = open_store(path, false);
    assert_int_equal(store_get_offset(st, "fenghuo.events", 0, &off), FH_ERR_NOTFOUND);
    /* writes outside a transaction are refused */
    assert_int_equal(store_set_offset(st, "fenghuo.events", 0, 5), FH_ERR_ARG);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_apply(st, &a), FH_ERR_ARG);
    assert_non_null(strstr(store_errmsg(st), "outside a transaction"));
    assert_int_equal(store_commit(st), FH_ERR_ARG);

    assert_int_equal(store_begin(st), FH_OK);
    assert_int_equal(store_begin(st), FH_ERR_ARG);
    assert_true(store_in_transaction(st));
    assert_int_equal(store_set_offset(st, "fenghuo.events", 1, 42), FH_OK);
    assert_int_equal(store_set_offset(st, "fenghuo.events", 0, 7), FH_OK);
    assert_int_equal(store_set_offset(st, "fenghuo.events", 0, 9), FH_OK);
    assert_int_equal(store_set_offset(st, "other", 0, 1), FH_OK);
    assert_int_equal(store_set_offset(st, "fenghuo.events", 0, -1), FH_ERR_ARG);
    assert_int_equal(store_commit(st), FH_OK);
    assert_int_equal(store_get_offset(st, "fenghuo.events", 0, &off), FH_OK);
    assert_true(off == 9);
    store_close(st);
    st = open_store(path, false); /* committed offsets survive a reopen */
    assert_int_equal(store_get_offset(st, "fenghuo.events", 1, &off), FH_OK);
    assert_true(off == 42);
    assert_int_equal(store_get_offset(st, "other", 0, &off), FH_OK);
    assert_true(off == 1);
    store_close(st);
    db_remove(path);
}

static void collect_offset(void *ctx, int32_t partition, int64_t next)
{
    int64_t *offs = ctx;

    if (partition >= 0 && partition < 4)
        offs[partition] = next;
}

/* ---- exactly once across kill -9 ------------------------------------------------------- */

#define NEVENTS 60
#define NPART   2
#define TOPIC   "fenghuo.events"

/* Event i sits at partition i % NPART, offset i / NPART; hits rule R (all) and, every
 * third event, rule S; keys cycle over four hosts. */
static int stream_hits(int i, alert_hit out[2], char key[32], char ev[96])
{
    int n = 0;

    snprintf(key, 32, "10.9.0.%d", i % 4);
    snprintf(ev, 96, "{\"i\":%d,\"community_id\":\"1:cid-%d\"}", i, i);
    out[n] = mkhit("R", key, T0 + i * 1000);
    out[n].event = ev;
    out[n].event_len = strlen(ev);
    n++;
    if (i % 3 == 0) {
        out[n] = mkhit("S", key, T0 + i * 1000);
        out[n].correlation = true;
        out[n].window_start_ms = T0 + (i / 10) * 10000;
        out[n].count = 3;
        out[n].event = ev;
        out[n].event_len = strlen(ev);
        n++;
    }
    return n;
}

/*
 * Consumes the stream from the offsets stored in path, in batches of `batch`
 * events; when `die_after` events of this run have been applied (uncommitted),
 * the process kills itself with SIGKILL.
 */
static void consume(const char *path, int batch, int die_after)
{
    pipe_t p;
    int64_t next[NPART];
    int applied = 0, in_batch = 0;

    pipe_open_store(&p, path, NULL);
    for (int part = 0; part < NPART; part++)
        if (store_get_offset(p.st, TOPIC, part, &next[part]) != FH_OK)
            next[part] = 0;
    for (int i = 0; i < NEVENTS; i++) {
        int part = i % NPART;
        int64_t off = i / NPART;
        alert_hit h[2];
        char key[32], ev[96];
        int n;

        if (off < next[part])
            continue; /* the consumer seeked past it */
        if (in_batch == 0)
            assert_int_equal(store_begin(p.st), FH_OK);
        n = stream_hits(i, h, key, ev);
        for (int k = 0; k < n; k++)
            hit_ok(&p, &h[k]);
        assert_int_equal(store_set_offset(p.st, TOPIC, part, off + 1), FH_OK);
        applied++;
        if (applied == die_after) {
            assert_int_equal(alert_book_flush(p.book), FH_OK); /* written, not committed */
            raise(SIGKILL);
        }
        if (++in_batch == batch) {
            assert_int_equal(alert_book_flush(p.book), FH_OK);
            assert_int_equal(store_commit(p.st), FH_OK);
            in_batch = 0;
        }
    }
    if (in_batch) {
        assert_int_equal(alert_book_flush(p.book), FH_OK);
        assert_int_equal(store_commit(p.st), FH_OK);
    }
    pipe_close(&p);
}

static void consume_in_child(const char *path, int batch, int die_after)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        consume(path, batch, die_after);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static char *dump_db(const char *path)
{
    db *raw = raw_open(path);
    char *a = raw_dump_n(raw,
                         "SELECT id, rule_id, group_key, window_start, first_seen, last_seen, "
                         "count, hits FROM alerts ORDER BY id",
                         8);
    char *e = raw_dump_n(raw,
                         "SELECT alert_id, seq, ts, community_id, event FROM alert_evidence "
                         "ORDER BY alert_id, seq",
                         5);
    char *o = raw_dump_n(raw,
                         "SELECT topic, partition_id, next_offset FROM consumer_offsets "
                         "ORDER BY partition_id",
                         3);
    char t[64];
    char *all = malloc(strlen(a) + strlen(e) + strlen(o) + 1);

    if (!use_pg)
        assert_string_equal(raw_text(raw, "PRAGMA integrity_check", t, sizeof(t)), "ok");
    db_close(raw);
    assert_non_null(all);
    strcpy(all, a);
    strcat(all, e);
    strcat(all, o);
    free(a);
    free(e);
    free(o);
    return all;
}

static void test_exactly_once(void **state)
{
    char ref[256], crash[256];
    char *want, *got;
    int64_t offs[4] = {-1, -1, -1, -1};
    store *st;

    (void)state;
    db_path(ref, sizeof(ref));
    db_path(crash, sizeof(crash));
    db_remove(ref);
    db_remove(crash);
    consume(ref, 7, -1);
    want = dump_db(ref);
    assert_non_null(strstr(want, "fenghuo.events|0|30\nfenghuo.events|1|30\n"));

    /* die in the middle of the 3rd batch, twice, then finish */
    consume_in_child(crash, 7, 17);
    {
        char *mid = dump_db(crash);
        /* two batches (14 events) committed: offsets 7 and 7 */
        assert_non_null(strstr(mid, "fenghuo.events|0|7\nfenghuo.events|1|7\n"));
        free(mid);
    }
    consume_in_child(crash, 5, 12);
    consume(crash, 9, -1);
    got = dump_db(crash);
    assert_string_equal(got, want);

    st = open_store(crash, false);
    assert_int_equal(store_get_offsets(st, TOPIC, collect_offset, offs), FH_OK);
    assert_true(offs[0] == 30 && offs[1] == 30 && offs[2] == -1);
    store_close(st);
    free(want);
    free(got);
    db_remove(ref);
    db_remove(crash);
}

static void test_crash_before_commit(void **state)
{
    char path[256];
    pid_t pid;
    int status;
    store *st;
    db *raw;
    int64_t off;

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    store_close(open_store(path, false)); /* schema exists */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pipe_t p;
        alert_hit h = mkhit("L3-07", "203.0.113.9", T0);

        pipe_open_store(&p, path, NULL);
        assert_int_equal(store_begin(p.st), FH_OK);
        hit_ok(&p, &h);
        assert_int_equal(alert_book_flush(p.book), FH_OK);
        assert_int_equal(store_set_offset(p.st, TOPIC, 0, 1), FH_OK);
        raise(SIGKILL); /* no COMMIT */
        _exit(1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    st = open_store(path, false);
    assert_int_equal(store_get_offset(st, TOPIC, 0, &off), FH_ERR_NOTFOUND);
    store_close(st);
    raw = raw_open(path);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alerts"), 0);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alert_evidence"), 0);
    db_close(raw);
    db_remove(path);
}

/* ---- hostile strings ------------------------------------------------------------------ */

static void test_sql_injection(void **state)
{
    static const char *const evil_tags[] = {"gbt22239.8.1.3.3.a'); DROP TABLE alerts; --",
                                            "attack.t1190\"; DELETE FROM alert_tags; --"};
    const char *host = "x'); DROP TABLE alerts; --";
    const char *ev = "{\"http\":{\"hostname\":\"a' OR '1'='1\",\"url\":\"/?q=1;DELETE FROM "
                     "alerts WHERE '1'='1\"}}";
    char path[256], t[512];
    pipe_t p;
    alert_hit h;
    db *raw;
    alert got;
    char id[ALERT_ID_LEN + 1];

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    pipe_open_store(&p, path, NULL);
    h = mkhit("L3-11'--", host, T0);
    h.title = "t\"itle'); --";
    h.tags = evil_tags;
    h.ntags = 2;
    h.event = ev;
    h.event_len = strlen(ev);
    h.community_id = "1:'); DROP TABLE alert_evidence; --";
    h.dest.name = "srv'; --";
    h.department = "dept\"); --";
    tx(&p, &h, 1);
    alert_make_id("L3-11'--", host, T0, id);
    assert_int_equal(store_get_alert(p.st, id, &got), FH_OK);
    assert_string_equal(got.rule_id, "L3-11'--");
    assert_string_equal(got.group_key, host);
    assert_string_equal(got.title, "t\"itle'); --");
    assert_string_equal(got.dest.name, "srv'; --");
    assert_string_equal(got.department, "dept\"); --");
    assert_int_equal(got.nevidence, 1);
    assert_string_equal(got.evidence[0].event, ev);
    assert_string_equal(got.evidence[0].community_id, "1:'); DROP TABLE alert_evidence; --");
    assert_int_equal(got.ntags, 2);
    assert_string_equal(got.tags[0].tag, evil_tags[0]);
    assert_int_equal(got.tags[0].kind, ALERT_TAG_OTHER); /* not a valid clause */
    alert_clear(&got);
    pipe_close(&p);

    raw = raw_open(path);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alerts"), 1);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alert_tags"), 2);
    assert_int_equal(raw_int(raw, "SELECT COUNT(*) FROM alert_evidence"), 1);
    assert_string_equal(raw_text(raw, "SELECT group_key FROM alerts", t, sizeof(t)), host);
    if (!use_pg) {
        assert_string_equal(raw_text(raw, "PRAGMA integrity_check", t, sizeof(t)), "ok");
        assert_string_equal(raw_text(raw, "PRAGMA journal_mode", t, sizeof(t)), "wal");
    }
    db_close(raw);
    db_remove(path);
}

static void test_ndjson_escaping(void **state)
{
    pipe_t p;
    alert_hit h;
    const alert *a;
    char ev[256];
    FILE *f;
    char *buf = NULL;
    size_t len = 0;
    jbuf jb;

    (void)state;
    pipe_open(&p, NULL, NULL);
    snprintf(ev, sizeof(ev), "{\"http\":{\"hostname\":\"evil\\\"}\",\"x\":\"%s\"}}",
             "\xe2\x80\xa8");
    h = mkhit("L3-11", "host\"\n\x01</script>", T0 + 123);
    h.title = "quote \" backslash \\ newline \n tab \t";
    h.event = ev;
    h.event_len = strlen(ev);
    h.dest.name = "bad\xff utf8";
    assert_int_equal(alert_book_hit(p.book, &h, &a), FH_OK);

    assert_true(jbuf_init(&jb, 256, 1 << 16));
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(alert_write_ndjson(f, &jb, a), FH_OK);
    assert_int_equal(alert_write_ndjson(f, &jb, a), FH_OK);
    fclose(f);
    /* exactly two lines, each one JSON object */
    assert_int_equal(buf[len - 1], '\n');
    {
        int lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += buf[i] == '\n';
        assert_int_equal(lines, 2);
    }
    assert_int_equal(buf[0], '{');
    assert_non_null(strstr(buf, "\"group_key\":\"host\\\"\\n\\u0001</script>\""));
    assert_non_null(strstr(buf, "\"title\":\"quote \\\" backslash \\\\ newline \\n tab \\t\""));
    /* the event is a string, its quotes escaped, U+2028 escaped */
    assert_non_null(strstr(buf, "\"event\":\"{\\\"http\\\":{\\\"hostname\\\":\\\"evil\\\\\\\"}"));
    assert_non_null(strstr(buf, "\\u2028"));
    assert_non_null(strstr(buf, "\"asset\":\"bad\\ufffd utf8\""));
    assert_non_null(strstr(buf, "\"first_seen\":\"2023-11-14T22:13:20.123Z\""));
    assert_non_null(strstr(buf, "\"clauses\":[{\"clause\":\"8.1.3.3.a\",\"display\":\"8.1.3.3 "
                                "a\"},{\"clause\":\"8.1.3.3.d\",\"display\":\"8.1.3.3 d\"}]"));
    assert_non_null(strstr(buf, "\"categories\":[{\"category\":\"network_attack\","
                                "\"subcategory\":\"scan\"}]"));
    assert_non_null(strstr(buf, "\"attack\":[\"reconnaissance\",\"t1595.001\"]"));
    assert_non_null(strstr(buf, "\"community_id\":\"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\""));
    assert_non_null(strstr(buf, "\"level\":\"low\""));
    free(buf);

    /* a ceiling too small: FH_ERR_NOMEM, never a cut line */
    jbuf_free(&jb);
    assert_true(jbuf_init(&jb, 64, 64));
    assert_int_equal(alert_to_json(a, &jb), FH_ERR_NOMEM);
    jbuf_free(&jb);

    {
        char t[32];
        alert_format_time(-1, t);
        assert_string_equal(t, "1969-12-31T23:59:59.999Z");
        alert_format_time(0, t);
        assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    }
    pipe_close(&p);
}

/* ---- outbox --------------------------------------------------------------------------- */

typedef struct {
    int n;
    uint64_t last;
    char first[4096];
} outbox_seen;

static fh_err outbox_cb(void *ctx, uint64_t seq, const char *id, const char *payload, size_t len)
{
    outbox_seen *s = ctx;

    assert_int_equal(strlen(id), ALERT_ID_LEN);
    assert_int_equal(strlen(payload), len);
    if (s->n == 0)
        snprintf(s->first, sizeof(s->first), "%s", payload);
    assert_true(seq > s->last);
    s->last = seq;
    s->n++;
    return FH_OK;
}

static fh_err outbox_emit(void *ctx, const alert *a)
{
    return store_apply(ctx, a);
}

static void test_outbox(void **state)
{
    char path[256];
    store *st;
    alert_book *book;
    alert_book_ops ops = {.emit = outbox_emit, .load = store_book_load};
    outbox_seen seen;
    alert_hit h;

    (void)state;
    db_path(path, sizeof(path));
    db_remove(path);
    st = open_store(path, true);
    ops.ctx = st;
    assert_int_equal(alert_book_new(&book, NULL, &ops), FH_OK);
    assert_int_equal(store_begin(st), FH_OK);
    h = mkhit("L3-07", "a", T0);
    assert_int_equal(alert_book_hit(book, &h, NULL), FH_OK);
    h = mkhit("L3-07", "b", T0);
    assert_int_equal(alert_book_hit(book, &h, NULL), FH_OK);
    assert_int_equal(alert_book_flush(book), FH_OK);
    assert_int_equal(store_commit(st), FH_OK);
    /* a rolled-back batch leaves no message behind */
    assert_int_equal(store_begin(st), FH_OK);
    h = mkhit("L3-07", "c", T0);
    assert_int_equal(alert_book_hit(book, &h, NULL), FH_OK);
    assert_int_equal(alert_book_flush(book), FH_OK);
    store_rollback(st);
    alert_book_reset(book);

    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_outbox_read(st, 0, 100, outbox_cb, &seen), FH_OK);
    assert_int_equal(seen.n, 2);
    assert_non_null(strstr(seen.first, "\"group_key\":\"a\""));
    assert_int_equal(store_outbox_ack(st, 1), FH_OK);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_outbox_read(st, 0, 100, outbox_cb, &seen), FH_OK);
    assert_int_equal(seen.n, 1);
    assert_non_null(strstr(seen.first, "\"group_key\":\"b\""));
    alert_book_free(book);
    store_close(st);

    /* seq keeps increasing across a reopen */
    st = open_store(path, true);
    ops.ctx = st;
    assert_int_equal(alert_book_new(&book, NULL, &ops), FH_OK);
    assert_int_equal(store_begin(st), FH_OK);
    h = mkhit("L3-07", "d", T0);
    assert_int_equal(alert_book_hit(book, &h, NULL), FH_OK);
    assert_int_equal(alert_book_flush(book), FH_OK);
    assert_int_equal(store_commit(st), FH_OK);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_outbox_read(st, 0, 100, outbox_cb, &seen), FH_OK);
    assert_int_equal(seen.n, 2);
    assert_true(seen.last > 2);
    alert_book_free(book);
    store_close(st);
    db_remove(path);
}

static int on_pg(void **state)
{
    (void)state;
    use_pg = true;
    return 0;
}

int main(void)
{
    const struct CMUnitTest alerts[] = {
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_replay_same_ids),
        cmocka_unit_test(test_evidence_bound),
        cmocka_unit_test(test_idle_close),
        cmocka_unit_test(test_migrations_embedded),
        cmocka_unit_test(test_ndjson_escaping),
    };
    /* the store's tests, on SQLite and then on PostgreSQL */
    const struct CMUnitTest store_tests[] = {
        cmocka_unit_test(test_migrations_open),
        cmocka_unit_test(test_store_roundtrip),
        cmocka_unit_test(test_store_evidence_bound),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_offsets_api),
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_crash_before_commit),
        cmocka_unit_test(test_sql_injection),
        cmocka_unit_test(test_outbox),
    };
    int failed = cmocka_run_group_tests_name("alerts", alerts, NULL, NULL);

    failed += cmocka_run_group_tests_name("store on sqlite", store_tests, NULL, NULL);
    if (!getenv("FH_TEST_PG") || !*getenv("FH_TEST_PG")) {
        printf("store on postgresql: skipped, FH_TEST_PG is not set (make test-unit starts a "
               "server with tests/tools/pg.sh)\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("store on postgresql", store_tests, on_pg, NULL);
}
