/*
 * consumer.c - the Kafka mode; see consumer.h for the design and the guarantees.
 *
 * Everything runs on the calling thread: the rebalance and error callbacks of
 * the consumer are served by rd_kafka_consumer_poll() (the main queue is
 * forwarded to the consumer queue), the producer's delivery reports by
 * rd_kafka_poll(), so the stream, the store and the counters need no locks.
 */
#include "consumer.h"

#include "health.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fh_log.h"
#include "../common/fh_metrics.h"
#include "engine.h"
#include "stream.h"
#include "store.h"

#define DEFAULT_GROUP        "fenghuo-correlator"
#define DEFAULT_ALERTS_TOPIC "fenghuo.alerts"
#define POLL_MS              100
#define STARTUP_TIMEOUT_MS   10000 /* brokers must answer a metadata request within this */
#define SHUTDOWN_FLUSH_MS    5000  /* alerts still undelivered at exit stay in the outbox */
#define SERVICE_MS           100   /* idle producer service period */
#define OUTBOX_READ_MAX      500   /* outbox rows read per call */
#define OUTBOX_INFLIGHT_MAX  10000 /* alert messages awaiting a delivery report */
#define COMMIT_RETRIES       10    /* failed batch commits in a row before giving up */

/* Position of one partition within the open batch. */
typedef struct {
    char *topic;
    int32_t partition;
    int64_t first; /* offset of the batch's first message from it; -1: none */
    int64_t next;  /* offset after the batch's last message from it */
    bool assigned; /* in the current assignment (tracked for exit_at_end) */
    bool eof;      /* reported the end of its log since its last message */
} part_pos;

typedef struct {
    uint64_t seq;
    int state; /* 0 pending, 1 delivered, 2 failed */
} inflight;

typedef struct {
    const consumer_config *cfg;
    const char *alerts_topic;
    health hl;
    engine *eng;
    store *st;
    FILE *out;
    stream pl;
    bool pl_ready;
    rd_kafka_t *rk;   /* consumer */
    rd_kafka_t *prod; /* alerts producer */

    part_pos *parts;
    size_t nparts, capparts, last;
    bool batch_open;
    uint64_t batch_start_ms;
    uint32_t fails_in_row;
    bool fatal;
    bool brokers_down;

    /* exit_at_end: assigned partitions and how many of them are at their end */
    size_t n_assigned, n_eof;
    bool assigned_once;   /* an assignment arrived */
    bool awaiting_assign; /* everything was revoked: the next assignment decides */

    /* outbox publishing */
    inflight *inf;
    size_t inf_head, inf_len, inf_cap;
    uint64_t ob_sent;        /* highest seq handed to the producer */
    uint64_t ob_acked;       /* every seq <= this was delivered */
    uint64_t ob_store_acked; /* last store_outbox_ack() */
    bool ob_failed;          /* a delivery failed: re-send after ob_acked once settled */
    bool ob_blocked;         /* producer queue full */
    uint64_t last_service_ms;

    /* counters */
    uint64_t consumed, batches, commit_failures, published, delivery_failures;
    uint64_t first_msg_ms, last_msg_ms;
    uint64_t last_err_log_ms;
} kctx;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The consumer's own metrics (health.h extra): lag per assigned partition from the
 * cached high watermarks (no broker round trip), and the publishing counters. */
static void kafka_metrics(void *ctx, FILE *f)
{
    kctx *k = ctx;
    rd_kafka_topic_partition_list_t *l = NULL;
    char topic[512];

    fputs("# HELP fenghuo_correlator_consumer_lag_messages High watermark minus the consumer "
          "position, per partition.\n# TYPE fenghuo_correlator_consumer_lag_messages gauge\n",
          f);
    if (k->rk && rd_kafka_assignment(k->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l) {
        rd_kafka_position(k->rk, l);
        for (int i = 0; i < l->cnt; i++) {
            int64_t lo = 0, hi = 0;

            if (rd_kafka_get_watermark_offsets(k->rk, l->elems[i].topic, l->elems[i].partition, &lo,
                                               &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0)
                continue;
            fh_metrics_label(topic, sizeof(topic), l->elems[i].topic);
            fprintf(f,
                    "fenghuo_correlator_consumer_lag_messages{topic=\"%s\",partition=\"%d\"} "
                    "%lld\n",
                    topic, (int)l->elems[i].partition,
                    (long long)(l->elems[i].offset >= 0 ? hi - l->elems[i].offset : hi - lo));
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    fprintf(f,
            "# HELP fenghuo_correlator_events_consumed_total Kafka messages consumed.\n"
            "# TYPE fenghuo_correlator_events_consumed_total counter\n"
            "fenghuo_correlator_events_consumed_total %llu\n"
            "# HELP fenghuo_correlator_alerts_published_total Alerts delivered to the alerts "
            "topic.\n# TYPE fenghuo_correlator_alerts_published_total counter\n"
            "fenghuo_correlator_alerts_published_total %llu\n"
            "# HELP fenghuo_correlator_kafka_errors_total Kafka errors by kind.\n"
            "# TYPE fenghuo_correlator_kafka_errors_total counter\n"
            "fenghuo_correlator_kafka_errors_total{kind=\"delivery\"} %llu\n"
            "fenghuo_correlator_kafka_errors_total{kind=\"commit\"} %llu\n",
            (unsigned long long)k->consumed, (unsigned long long)k->published,
            (unsigned long long)k->delivery_failures, (unsigned long long)k->commit_failures);
}

static bool stopping(const kctx *k)
{
    return (k->cfg->stop && *k->cfg->stop) || k->fatal;
}

/* ---- librdkafka callbacks and configuration ----------------------------------------- */

static void on_log(const rd_kafka_t *rk, int lvl, const char *fac, const char *buf)
{
    (void)rk;
    if (lvl <= 2)
        fh_warn("kafka: %s: %s", fac, buf);
    else
        fh_debug("kafka: %s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kctx *k = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];

        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        fh_error("kafka: fatal error: %s", fatal);
        k->fatal = true;
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!k->brokers_down)
            fh_warn("kafka: all brokers down (%s): waiting for them", reason);
        k->brokers_down = true;
    } else {
        fh_debug("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

static int set_conf(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char e[512];

    if (rd_kafka_conf_set(conf, name, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        fh_error("kafka: property %s=%s: %s", name, value, e);
        return -1;
    }
    return 0;
}

/* The user's -X properties (name=value). */
static int set_user_props(rd_kafka_conf_t *conf, const consumer_config *cfg)
{
    for (size_t i = 0; i < cfg->nprops; i++) {
        const char *eq = strchr(cfg->props[i], '=');
        char name[256];

        if (!eq || eq == cfg->props[i] || (size_t)(eq - cfg->props[i]) >= sizeof(name)) {
            fh_error("kafka: -X expects name=value, got '%s'", cfg->props[i]);
            return -1;
        }
        memcpy(name, cfg->props[i], (size_t)(eq - cfg->props[i]));
        name[eq - cfg->props[i]] = '\0';
        if (set_conf(conf, name, eq + 1) != 0)
            return -1;
    }
    return 0;
}

static bool user_sets(const consumer_config *cfg, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < cfg->nprops; i++)
        if (!strncmp(cfg->props[i], name, n) && cfg->props[i][n] == '=')
            return true;
    return false;
}

/* ---- partition positions of the open batch ------------------------------------------ */

static part_pos *part_get(kctx *k, const char *topic, int32_t partition)
{
    part_pos *p;

    if (k->last < k->nparts && k->parts[k->last].partition == partition &&
        !strcmp(k->parts[k->last].topic, topic))
        return &k->parts[k->last];
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].partition == partition && !strcmp(k->parts[i].topic, topic)) {
            k->last = i;
            return &k->parts[i];
        }
    if (k->nparts == k->capparts) {
        size_t cap = k->capparts ? k->capparts * 2 : 16;
        part_pos *np = realloc(k->parts, cap * sizeof(*np));

        if (!np)
            return NULL;
        k->parts = np;
        k->capparts = cap;
    }
    p = &k->parts[k->nparts];
    if (!(p->topic = strdup(topic)))
        return NULL;
    p->partition = partition;
    p->first = -1;
    p->next = -1;
    p->assigned = false;
    p->eof = false;
    k->last = k->nparts++;
    return p;
}

static void parts_clear(kctx *k)
{
    for (size_t i = 0; i < k->nparts; i++)
        k->parts[i].first = -1;
}

static void parts_free(kctx *k)
{
    for (size_t i = 0; i < k->nparts; i++)
        free(k->parts[i].topic);
    free(k->parts);
    k->parts = NULL;
    k->nparts = k->capparts = k->last = 0;
}

/* The counters behind at_end(): only assigned partitions count. */
static void part_set_eof(kctx *k, part_pos *p, bool eof)
{
    if (!p->assigned || p->eof == eof)
        return;
    p->eof = eof;
    if (eof)
        k->n_eof++;
    else
        k->n_eof--;
}

static void part_set_assigned(kctx *k, part_pos *p, bool assigned)
{
    if (p->assigned == assigned)
        return;
    part_set_eof(k, p, false); /* a new assignment must reach its end again */
    p->assigned = assigned;
    if (assigned)
        k->n_assigned++;
    else
        k->n_assigned--;
}

/* exit_at_end: every partition of the current assignment is at the end of its log. */
static bool at_end(const kctx *k)
{
    return k->cfg->exit_at_end && k->assigned_once && !k->awaiting_assign &&
           k->n_eof == k->n_assigned;
}

/* ---- batches ------------------------------------------------------------------------- */

/* Seeks the partitions of the failed batch back to its first messages. */
static void rewind_batch(kctx *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)k->nparts + 1);
    rd_kafka_error_t *e;

    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].first >= 0) {
            rd_kafka_topic_partition_list_add(l, k->parts[i].topic, k->parts[i].partition)->offset =
                k->parts[i].first;
            part_set_eof(k, &k->parts[i], false); /* its messages come again */
        }
    if (l->cnt && (e = rd_kafka_seek_partitions(k->rk, l, 5000)) != NULL) {
        fh_error("kafka: seeking back after a failed batch: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        k->fatal = true; /* the batch would be skipped: stop, the restart replays it */
    }
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err) {
            fh_error("kafka: seeking %s[%d] back to %lld: %s", l->elems[i].topic,
                     (int)l->elems[i].partition, (long long)l->elems[i].offset,
                     rd_kafka_err2str(l->elems[i].err));
            k->fatal = true;
        }
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Stores the positions of the batch in its transaction and commits it with the
 * alerts; then commits the same offsets to Kafka (async, monitoring only).
 * rewind: on failure seek back (false while the partitions are being revoked).
 * Returns 0, or -1 when the batch was rolled back.
 */
static int commit_batch(kctx *k, bool rewind)
{
    rd_kafka_topic_partition_list_t *l;
    char err[1024];
    fh_err e = FH_OK;

    if (!k->batch_open)
        return 0;
    k->batch_open = false;
    /* stream_event() opened the transaction; the positions go into it */
    for (size_t i = 0; i < k->nparts && !e; i++)
        if (k->parts[i].first >= 0)
            e = store_set_offset(k->st, k->parts[i].topic, k->parts[i].partition, k->parts[i].next);
    if (e && !k->pl.error)
        k->pl.error = e; /* makes stream_commit roll back */
    if (stream_commit(&k->pl, err, sizeof(err)) != FH_OK) {
        k->commit_failures++;
        fh_error("%s; the batch will be consumed again", err);
        if (rewind)
            rewind_batch(k);
        parts_clear(k);
        if (++k->fails_in_row >= COMMIT_RETRIES) {
            fh_error("%u batches failed in a row: stopping (the next start resumes at the "
                     "stored positions)",
                     k->fails_in_row);
            k->fatal = true;
        } else if (rewind) {
            struct timespec ts = {1, 0};

            nanosleep(&ts, NULL);
        }
        return -1;
    }
    k->fails_in_row = 0;
    k->batches++;
    l = rd_kafka_topic_partition_list_new((int)k->nparts + 1);
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].first >= 0)
            rd_kafka_topic_partition_list_add(l, k->parts[i].topic, k->parts[i].partition)->offset =
                k->parts[i].next;
    if (l->cnt)
        rd_kafka_commit(k->rk, l, 1); /* lag monitoring only; the store is the truth */
    rd_kafka_topic_partition_list_destroy(l);
    parts_clear(k);
    return 0;
}

/* ---- the alerts topic: outbox -> producer --------------------------------------------- */

static inflight *inf_find(kctx *k, uint64_t seq)
{
    size_t lo = k->inf_head, hi = k->inf_len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (k->inf[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < k->inf_len && k->inf[lo].seq == seq ? &k->inf[lo] : NULL;
}

static size_t inf_count(const kctx *k)
{
    return k->inf_len - k->inf_head;
}

/* Advances ob_acked over the delivered prefix; after a failure, once every report
 * is in, rewinds to send again from the first undelivered row. */
static void settle(kctx *k)
{
    bool settled = true;

    while (k->inf_head < k->inf_len && k->inf[k->inf_head].state == 1)
        k->ob_acked = k->inf[k->inf_head++].seq;
    if (k->inf_head == k->inf_len)
        k->inf_head = k->inf_len = 0;
    if (!k->ob_failed)
        return;
    for (size_t i = k->inf_head; i < k->inf_len && settled; i++)
        settled = k->inf[i].state != 0;
    if (settled) {
        k->inf_head = k->inf_len = 0;
        k->ob_sent = k->ob_acked;
        k->ob_failed = false;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kctx *k = opaque;
    inflight *f = inf_find(k, (uint64_t)(uintptr_t)m->_private);

    (void)rk;
    if (!f)
        return;
    if (m->err) {
        if (!k->ob_failed)
            fh_warn("kafka: alert delivery to '%s' failed: %s (it will be sent again)",
                    k->alerts_topic, rd_kafka_err2str(m->err));
        k->delivery_failures++;
        f->state = 2;
        k->ob_failed = true;
    } else {
        f->state = 1;
        k->published++;
    }
    settle(k);
}

static fh_err produce_row(void *ctx, uint64_t seq, const char *alert_id, const char *payload,
                          size_t len)
{
    kctx *k = ctx;
    rd_kafka_resp_err_t e;

    if (k->inf_len == k->inf_cap) {
        if (k->inf_head > 0) {
            memmove(k->inf, k->inf + k->inf_head, inf_count(k) * sizeof(*k->inf));
            k->inf_len -= k->inf_head;
            k->inf_head = 0;
        } else {
            size_t cap = k->inf_cap ? k->inf_cap * 2 : 1024;
            inflight *n = realloc(k->inf, cap * sizeof(*n));

            if (!n)
                return FH_ERR_NOMEM;
            k->inf = n;
            k->inf_cap = cap;
        }
    }
    e = rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(k->alerts_topic),
                          RD_KAFKA_V_KEY(alert_id, alert_id ? strlen(alert_id) : 0),
                          RD_KAFKA_V_VALUE((void *)payload, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        k->ob_blocked = true;
        return FH_ERR_LIMIT;
    }
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* would block the outbox for ever: dropped (it is in the store and --alerts-out) */
        fh_error("kafka: alert %s update of %zu bytes exceeds message.max.bytes: not published",
                 alert_id ? alert_id : "?", len);
        k->delivery_failures++;
    } else if (e) {
        fh_error("kafka: producing alert %s to '%s': %s", alert_id ? alert_id : "?",
                 k->alerts_topic, rd_kafka_err2str(e));
        k->ob_failed = true; /* re-sent after the reports in flight are in */
        return FH_ERR_IO;
    }
    k->inf[k->inf_len].seq = seq;
    k->inf[k->inf_len].state = e ? 1 : 0;
    k->inf_len++;
    k->ob_sent = seq;
    return FH_OK;
}

/*
 * Serves delivery reports, deletes delivered outbox rows and produces new
 * ones. Only between batches (no transaction open). Returns true when
 * everything committed so far is delivered.
 */
static bool service_producer(kctx *k)
{
    bool more = true;

    k->last_service_ms = now_ms();
    rd_kafka_poll(k->prod, 0);
    settle(k);
    if (k->ob_acked > k->ob_store_acked && !store_in_transaction(k->st)) {
        if (store_outbox_ack(k->st, k->ob_acked) == FH_OK)
            k->ob_store_acked = k->ob_acked;
        else
            fh_warn("%s", store_errmsg(k->st));
    }
    k->ob_blocked = false;
    while (more && !k->ob_failed && !k->ob_blocked && inf_count(k) < OUTBOX_INFLIGHT_MAX &&
           !store_in_transaction(k->st)) {
        uint64_t before = k->ob_sent;
        fh_err e = store_outbox_read(k->st, k->ob_sent, OUTBOX_READ_MAX, produce_row, k);

        if (e && e != FH_ERR_LIMIT && e != FH_ERR_IO)
            fh_warn("reading the alert outbox: %s", store_errmsg(k->st));
        more = !e && k->ob_sent - before >= OUTBOX_READ_MAX;
        if (e)
            break;
    }
    return !more && !k->ob_failed && inf_count(k) == 0 && !k->ob_blocked;
}

/* ---- rebalance ---------------------------------------------------------------------- */

/* exit_at_end: partitions joining (assigned) or leaving the assignment. Eager
 * assignments replace the whole set; cooperative ones add to it. */
static void track_assignment(kctx *k, const rd_kafka_topic_partition_list_t *parts, bool assigned)
{
    for (int i = 0; i < parts->cnt; i++) {
        part_pos *p = part_get(k, parts->elems[i].topic, parts->elems[i].partition);

        if (!p) {
            fh_error("out of memory");
            k->fatal = true;
            return;
        }
        part_set_assigned(k, p, assigned);
    }
    if (assigned) {
        k->assigned_once = true;
        k->awaiting_assign = false;
        if (!k->n_assigned)
            fh_info("kafka: no partitions assigned: nothing to read (--exit-at-end)");
    } else if (!k->n_assigned) {
        /* an eager rebalance revokes everything before the new assignment */
        k->awaiting_assign = true;
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kctx *k = opaque;
    bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *ae = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t off;
            fh_err e = store_get_offset(k->st, p->topic, p->partition, &off);

            if (e == FH_OK) {
                p->offset = off;
                fh_info("kafka: assigned %s[%d]: resuming at stored offset %lld", p->topic,
                        (int)p->partition, (long long)off);
            } else {
                if (e != FH_ERR_NOTFOUND)
                    fh_warn("%s", store_errmsg(k->st));
                p->offset = RD_KAFKA_OFFSET_INVALID; /* committed, else auto.offset.reset */
                fh_info("kafka: assigned %s[%d]: no stored offset, starting at the group's "
                        "committed offset or auto.offset.reset",
                        p->topic, (int)p->partition);
            }
        }
        if (k->cfg->exit_at_end)
            track_assignment(k, parts, true);
        if (coop)
            ae = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            fh_warn("kafka: rebalance error: %s", rd_kafka_err2str(err));
        /* what was consumed from them is stored before another member takes them */
        commit_batch(k, false);
        fh_info("kafka: %d partitions revoked%s", parts->cnt,
                rd_kafka_assignment_lost(rk) ? " (assignment lost)" : "");
        if (k->cfg->exit_at_end)
            track_assignment(k, parts, false);
        if (coop)
            ae = rd_kafka_incremental_unassign(rk, parts);
        else
            re = rd_kafka_assign(rk, NULL);
    }
    if (ae) {
        fh_error("kafka: assignment failed: %s", rd_kafka_error_string(ae));
        rd_kafka_error_destroy(ae);
        k->fatal = true;
    } else if (re) {
        fh_error("kafka: assignment failed: %s", rd_kafka_err2str(re));
        k->fatal = true;
    }
}

/* ---- start-up ----------------------------------------------------------------------- */

static rd_kafka_t *new_producer(kctx *k)
{
    const consumer_config *cfg = k->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char e[512];

    if (set_conf(conf, "bootstrap.servers", cfg->brokers) ||
        set_conf(conf, "client.id", "fenghuo-correlator") ||
        set_conf(conf, "enable.idempotence", "true") || set_conf(conf, "linger.ms", "5") ||
        set_conf(conf, "message.timeout.ms", "30000") || set_user_props(conf, cfg)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e)))) {
        fh_error("kafka: cannot create the alerts producer: %s", e);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static rd_kafka_t *new_consumer(kctx *k)
{
    const consumer_config *cfg = k->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char e[512];

    if (user_sets(cfg, "enable.auto.commit") || user_sets(cfg, "enable.auto.offset.store"))
        fh_warn("kafka: enable.auto.commit and enable.auto.offset.store are always false here: "
                "positions are stored with the alerts");
    if (set_conf(conf, "bootstrap.servers", cfg->brokers) ||
        set_conf(conf, "group.id", cfg->group ? cfg->group : DEFAULT_GROUP) ||
        set_conf(conf, "client.id", "fenghuo-correlator") ||
        set_conf(conf, "auto.offset.reset", "earliest") || set_user_props(conf, cfg) ||
        set_conf(conf, "enable.auto.commit", "false") ||
        set_conf(conf, "enable.auto.offset.store", "false") ||
        set_conf(conf, "enable.partition.eof", cfg->exit_at_end ? "true" : "false")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e)))) {
        fh_error("kafka: cannot create the consumer: %s", e);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* The brokers answer a metadata request for the first events topic in time. */
static int check_brokers(kctx *k)
{
    const consumer_config *cfg = k->cfg;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, cfg->topics[0], NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    int rc = 0;

    if (!rkt) {
        fh_error("kafka: topic '%s': %s", cfg->topics[0], rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    e = rd_kafka_metadata(k->rk, 0, rkt, &md, STARTUP_TIMEOUT_MS);
    if (e) {
        fh_error("kafka: cannot reach the brokers at '%s' within %d s: %s", cfg->brokers,
                 STARTUP_TIMEOUT_MS / 1000, rd_kafka_err2str(e));
        rc = -1;
    } else if (md->topic_cnt < 1 || md->topics[0].err) {
        /* not fatal: the subscription picks the topic up when it appears */
        fh_warn("kafka: topic '%s' is not available yet on '%s': %s", cfg->topics[0], cfg->brokers,
                rd_kafka_err2str(md->topic_cnt ? md->topics[0].err
                                               : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* ---- the loop ----------------------------------------------------------------------- */

static void handle_message(kctx *k, rd_kafka_message_t *m)
{
    part_pos *p;
    uint64_t now;

    if (m->err) {
        now = now_ms();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* only with exit_at_end: delivered in order after the partition's messages */
            if (m->rkt && (p = part_get(k, rd_kafka_topic_name(m->rkt), m->partition)))
                part_set_eof(k, p, true);
            return;
        }
        if (now - k->last_err_log_ms >= 10000 || !k->last_err_log_ms) {
            k->last_err_log_ms = now;
            fh_warn("kafka: consumer: %s%s%s", rd_kafka_message_errstr(m), m->rkt ? ", topic " : "",
                    m->rkt ? rd_kafka_topic_name(m->rkt) : "");
        }
        if (m->err == RD_KAFKA_RESP_ERR__FATAL)
            k->fatal = true;
        return;
    }
    if (k->brokers_down) {
        fh_info("kafka: brokers reachable again");
        k->brokers_down = false;
    }
    p = part_get(k, rd_kafka_topic_name(m->rkt), m->partition);
    if (!p) {
        fh_error("out of memory");
        k->fatal = true;
        return;
    }
    if (!k->batch_open) {
        k->batch_open = true;
        k->batch_start_ms = now_ms();
    }
    part_set_eof(k, p, false);
    k->consumed++;
    k->last_msg_ms = now_ms();
    if (!k->first_msg_ms)
        k->first_msg_ms = k->last_msg_ms;
    if (p->first < 0)
        p->first = m->offset;
    p->next = m->offset + 1;
    /* a malformed event is counted by the engine and skipped; its offset advances */
    if (stream_event(&k->pl, m->payload ? (const char *)m->payload : "", m->len) != FH_OK)
        commit_batch(k, true); /* fails, rolls back and rewinds */
}

static void shutdown_flush(kctx *k)
{
    uint64_t deadline = now_ms() + SHUTDOWN_FLUSH_MS;

    while (!service_producer(k) && now_ms() < deadline)
        rd_kafka_poll(k->prod, 50);
    if (inf_count(k) || k->ob_failed) {
        fh_warn("kafka: %zu alert messages undelivered after %d s: they stay in the outbox "
                "and are sent by the next run",
                inf_count(k), SHUTDOWN_FLUSH_MS / 1000);
        rd_kafka_purge(k->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->prod, 0);
    }
    if (k->ob_acked > k->ob_store_acked && store_outbox_ack(k->st, k->ob_acked) == FH_OK)
        k->ob_store_acked = k->ob_acked;
}

int run_kafka(const consumer_config *cfg)
{
    engine_config ec = {cfg->rules, cfg->lists_dir, cfg->assets_file};
    store_opts so = {.path = cfg->db, .outbox = true};
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t re;
    kctx k;
    char err[1024];
    uint32_t batch = cfg->batch ? cfg->batch : 5000, batch_ms = cfg->batch_ms ? cfg->batch_ms : 200;
    double secs;
    int rc = 1;

    memset(&k, 0, sizeof(k));
    k.cfg = cfg;
    k.alerts_topic = cfg->alerts_topic ? cfg->alerts_topic : DEFAULT_ALERTS_TOPIC;
    if (!cfg->db) {
        fh_error("--kafka needs --db: the consumer positions and the alert outbox live in the "
                 "store");
        return 2;
    }
    if (!cfg->ntopics) {
        fh_error("--kafka needs at least one --topic");
        return 2;
    }
    if (health_init(&k.hl, cfg->instance, cfg->metrics, cfg->metrics_listen, cfg->strict) != FH_OK)
        return 1;
    k.hl.extra = kafka_metrics;
    k.hl.extra_ctx = &k;
    if (engine_open(&k.eng, &ec, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        health_free(&k.hl);
        return 1;
    }
    if (!health_check_refused(k.eng, cfg->strict))
        goto out;
    if (store_open(&k.st, &so, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    /* appended: a restarted service keeps the previous lines */
    if (cfg->alerts_out &&
        !(k.out = strcmp(cfg->alerts_out, "-") ? fopen(cfg->alerts_out, "a") : stdout)) {
        fh_error("open(\"%s\") failed: %s", cfg->alerts_out, strerror(errno));
        goto out;
    }
    if (stream_init(&k.pl, k.eng, k.st, k.out, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    k.pl_ready = true;
    if (cfg->archive &&
        stream_open_archive(&k.pl, cfg->archive, cfg->archive_max_bytes, cfg->archive_max_age_ms,
                            k.hl.instance, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    {
        corr_limits lim = {.max_ahead_ms = cfg->max_ahead_ms};

        if (stream_set_limits(&k.pl, &lim) != FH_OK) {
            fh_error("out of memory");
            goto out;
        }
    }
    /* windows as of the stored positions: consumption resumes at both together */
    if (stream_restore_windows(&k.pl, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    if (!(k.prod = new_producer(&k)) || !(k.rk = new_consumer(&k)))
        goto out;
    if (check_brokers(&k) != 0)
        goto out;
    rd_kafka_poll_set_consumer(k.rk);
    subs = rd_kafka_topic_partition_list_new((int)cfg->ntopics);
    for (size_t i = 0; i < cfg->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    if ((re = rd_kafka_subscribe(k.rk, subs)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fh_error("kafka: subscribing: %s", rd_kafka_err2str(re));
        goto out;
    }
    fh_info("kafka: consuming %zu topic%s from '%s' as group '%s'; alerts to '%s'", cfg->ntopics,
            cfg->ntopics == 1 ? "" : "s", cfg->brokers, cfg->group ? cfg->group : DEFAULT_GROUP,
            k.alerts_topic);
    health_write(&k.hl, &k.pl, k.st, true);
    service_producer(&k); /* what a previous run left in the outbox */
    while (!stopping(&k)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k.rk, POLL_MS);
        uint64_t now;

        if (m) {
            handle_message(&k, m);
            rd_kafka_message_destroy(m);
        }
        if (!k.batch_open && stream_admin_poll(&k.pl) != FH_OK)
            fh_warn("reading suppressions and rule switches: %s", store_errmsg(k.st));
        if ((cfg->reload && *cfg->reload) || k.pl.reload_wanted) {
            if (cfg->reload)
                *cfg->reload = 0;
            k.pl.reload_wanted = false; /* a refused set is not retried until the next change */
            /* the positions go into the batch before the reload commits it */
            if (commit_batch(&k, true) == 0 && stream_reload(&k.pl, &ec, err, sizeof(err)) != FH_OK)
                fh_error("reload: %s", err);
            k.eng = k.pl.eng; /* a reload replaced the engine */
            health_write(&k.hl, &k.pl, k.st, true);
        }
        now = now_ms();
        if (k.batch_open &&
            (k.pl.batch_events >= batch || now - k.batch_start_ms >= batch_ms || !m)) {
            if (commit_batch(&k, true) == 0) {
                service_producer(&k);
                health_write(&k.hl, &k.pl, k.st, false);
            }
        } else if (!k.batch_open && now - k.last_service_ms >= SERVICE_MS) {
            service_producer(&k);
        }
        /* a failed commit rewinds, and the partitions must reach their end again */
        if (at_end(&k) && commit_batch(&k, true) == 0 && at_end(&k)) {
            fh_info("kafka: all %zu assigned partitions are at the end of their log: stopping "
                    "(--exit-at-end)",
                    k.n_assigned);
            break;
        }
    }
    rc = k.fatal ? 1 : 0;
    if (commit_batch(&k, false) != 0)
        rc = 1;
    fh_info("kafka: leaving the group");
    if ((re = rd_kafka_consumer_close(k.rk)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fh_warn("kafka: closing the consumer: %s", rd_kafka_err2str(re));
    shutdown_flush(&k);
    secs = k.last_msg_ms > k.first_msg_ms ? (double)(k.last_msg_ms - k.first_msg_ms) / 1000.0 : 0;
    fh_info("%llu events consumed (%llu malformed) in %llu batches, %.1f s from first to last "
            "(%.0f events/s), %llu rule matches, %llu alert updates, %llu published to '%s', "
            "%llu failed commits",
            (unsigned long long)k.consumed, (unsigned long long)k.eng->stats.malformed,
            (unsigned long long)k.batches, secs, secs > 0 ? (double)k.consumed / secs : 0.0,
            (unsigned long long)k.eng->stats.matches, (unsigned long long)k.pl.alerts_written,
            (unsigned long long)k.published, k.alerts_topic, (unsigned long long)k.commit_failures);
    health_finish(&k.hl, &k.pl, k.st);
out:
    if (subs)
        rd_kafka_topic_partition_list_destroy(subs);
    if (k.rk)
        rd_kafka_destroy(k.rk);
    if (k.prod)
        rd_kafka_destroy(k.prod);
    if (k.pl_ready) {
        k.eng = k.pl.eng;
        stream_free(&k.pl);
        k.pl_ready = false;
    }
    if (k.out && k.out != stdout)
        fclose(k.out);
    else if (k.out)
        fflush(k.out);
    store_close(k.st);
    engine_free(k.eng);
    health_free(&k.hl);
    parts_free(&k);
    free(k.inf);
    return rc;
}
