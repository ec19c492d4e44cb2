/*
 * sink_kafka.c - the Kafka sink with its disk spool; see sink_kafka.h for the
 * delivery model and the counting invariant.
 *
 * Everything runs on the pipeline's thread: librdkafka's delivery reports,
 * errors and statistics are served from rd_kafka_poll() inside our poll(),
 * write() and close(), so the counters and the spool need no locks.
 */
#include "sink_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fh_kafka_names.h"
#include "../common/fh_log.h"
#include "spool.h"

#define REPLAY_WINDOW  5000 /* spooled records in flight at once once the brokers answer */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 10000
#define BLOCK_POLL_MS  100

typedef struct {
    event_sink base;
    rd_kafka_t *rk;
    spool *sp;
    const sensor_config *cfg;
    bool live;
    bool templated;          /* topic contains {event_type} */
    uint64_t spool_soft_max; /* pcap input waits above this many spooled bytes */

    /* delivery state */
    bool brokers_down;
    bool replay_failed;
    uint64_t inflight_replay;
    uint64_t backoff_until_ms, backoff_ms;

    kafka_counters n;
    uint64_t purged;
    uint64_t spool_errors; /* appends that failed on I/O (full disk, ...) */
    uint64_t requeued;     /* failed deliveries handed back to librdkafka (pcap, spool failing) */
    bool warned_wait;
    bool warned_drop, warned_io, warned_size;
    char last_error[256];
} kafka_sink;

static volatile sig_atomic_t *stop_flag;

void sink_kafka_set_stop_flag(volatile sig_atomic_t *flag)
{
    stop_flag = flag;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Expands "{event_type}" in the topic template into out. */
static void topic_for(const kafka_sink *k, const char *event_type, char *out, size_t len)
{
    const char *t = k->cfg->kafka_topic, *p;

    if (!k->templated) {
        snprintf(out, len, "%s", t);
        return;
    }
    p = strstr(t, "{event_type}");
    snprintf(out, len, "%.*s%s%s", (int)(p - t), t, event_type, p + strlen("{event_type}"));
}

/* Pcap input waits rather than drops (back-pressure), until a stop is asked; live cannot. */
static bool may_wait(const kafka_sink *k)
{
    return !k->live && !(stop_flag && *stop_flag);
}

static void warn_full(kafka_sink *k)
{
    if (k->warned_drop)
        return;
    k->warned_drop = true;
    fh_warn("kafka: spool full (%zu bytes in %s): %s events are being dropped (counted)",
            k->cfg->spool_max_bytes, k->cfg->spool_dir,
            k->live && strcmp(k->cfg->spool_when_full, "drop_newest") ? "the oldest" : "new");
}

/* An event the spool could not write and nothing else can keep: counted, said once. (The
 * spool counts the records it had buffered and lost itself.) */
static void dropped_io(kafka_sink *k)
{
    k->n.dropped++;
    if (!k->warned_io) {
        k->warned_io = true;
        fh_error("kafka: cannot write the spool in %s (the spool said why): events that the "
                 "brokers do not take are being dropped (counted)",
                 k->cfg->spool_dir);
    }
}

/*
 * Appends to the spool without waiting (delivery reports, live capture, and pcap
 * input once told to stop). What cannot be kept is counted as dropped and said
 * once, with the true reason: the spool's limit (and which events its policy
 * drops), or the error that stopped the spool from writing. With caller_waits
 * (pcap input) an I/O error drops nothing: the caller keeps the event and waits.
 */
static fh_err spool_put(kafka_sink *k, const char *topic, const void *key, size_t key_len,
                        const void *payload, size_t len, bool caller_waits)
{
    uint64_t dropped_before = spool_get_stats(k->sp)->dropped;
    fh_err e = spool_append(k->sp, topic, strlen(topic), key, key_len, payload, len);

    if (e == FH_OK) {
        k->n.spooled++;
        /* drop_oldest made room by dropping whole old segments: say so once. */
        if (spool_get_stats(k->sp)->dropped > dropped_before)
            warn_full(k);
        return FH_OK;
    }
    if (e == FH_ERR_IO && caller_waits) {
        /* pcap input: the caller keeps the event and waits (back-pressure). */
        k->spool_errors++;
        if (!k->warned_wait) {
            k->warned_wait = true;
            fh_error("kafka: cannot write the spool in %s (the spool said why): waiting until "
                     "the brokers take events or space comes back",
                     k->cfg->spool_dir);
        }
        return e;
    }
    if (e == FH_ERR_IO) {
        k->spool_errors++;
        dropped_io(k);
        return e;
    }
    /* DROP_NEWEST counts its refusal in the spool's own dropped counter. */
    if (!(e == FH_ERR_LIMIT && k->live))
        k->n.dropped++;
    if (e == FH_ERR_LIMIT)
        warn_full(k);
    else if (!k->warned_size) {
        k->warned_size = true;
        fh_warn("kafka: an event of %zu bytes does not fit in a spool record: dropped (counted)",
                len);
    }
    return e;
}

static fh_err spool_now(kafka_sink *k, const char *topic, const void *key, size_t key_len,
                        const void *payload, size_t len)
{
    return spool_put(k, topic, key, key_len, payload, len, false);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink *k = opaque;
    uint64_t sid = (uint64_t)(uintptr_t)m->_private; /* spool id + 1, or 0 */

    (void)rk;
    if (!m->err) {
        k->n.delivered++;
        k->brokers_down = false;
        k->backoff_ms = 0;
        if (sid) {
            spool_ack(k->sp, sid - 1);
            k->inflight_replay--;
        }
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        k->purged++;
    else
        k->n.failed++;
    snprintf(k->last_error, sizeof(k->last_error), "%s", rd_kafka_err2str(m->err));
    if (sid) { /* a replayed record: it is still in the spool, unacknowledged */
        k->inflight_replay--;
        k->replay_failed = true;
        return;
    }
    if (may_wait(k) && k->purged == 0) {
        /* pcap input loses nothing while it can wait: when the spool cannot take the
         * event (full disk), it goes back to librdkafka's queue for another try. */
        if (spool_put(k, rd_kafka_topic_name(m->rkt), m->key, m->key_len, m->payload, m->len,
                      true) != FH_ERR_IO)
            return;
        if (rd_kafka_producev(
                k->rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->requeued++;
            return;
        }
        dropped_io(k); /* the spool just failed: no second try */
        return;
    }
    spool_now(k, rd_kafka_topic_name(m->rkt), m->key, m->key_len, m->payload, m->len);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_sink *k = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!k->brokers_down)
            fh_warn("kafka: all brokers down (%s): events go to the spool", reason);
        k->brokers_down = true;
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        fh_error("kafka: fatal producer error: %s", reason);
    }
    snprintf(k->last_error, sizeof(k->last_error), "%s", reason);
}

/* Sums "txretries" over the brokers in librdkafka's statistics JSON. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    kafka_sink *k = opaque;
    const char *p = json, *end = json + len;
    uint64_t sum = 0;

    (void)rk;
    while (p < end && (p = strstr(p, "\"txretries\":")) != NULL) {
        p += strlen("\"txretries\":");
        sum += strtoull(p, NULL, 10);
    }
    k->n.retried = sum;
    return 0; /* librdkafka frees json */
}

/*
 * librdkafka's own log lines. Its errors (level 3) are mostly one line per
 * failed reconnect during an outage: debug only, since on_error() already
 * reports the state once. Critical and worse stay visible.
 */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 2)
        fh_warn("kafka: %s: %s", fac, buf);
    else
        fh_debug("kafka: %s: %s", fac, buf);
}

/* Sends spooled records, in order, a window at a time. */
static void replay(kafka_sink *k)
{
    uint64_t window = k->brokers_down ? 1 : REPLAY_WINDOW;
    char err[256];

    while (k->inflight_replay < window && spool_has_unread(k->sp)) {
        spool_record r;
        char topic[FH_TOPIC_NAME_MAX + 1];
        rd_kafka_resp_err_t e;
        int rc = spool_next(k->sp, &r, err, sizeof(err));

        if (rc < 0) {
            if (!k->warned_io) {
                k->warned_io = true;
                fh_error("kafka: %s", err);
            }
            break;
        }
        if (rc == 0)
            break;
        snprintf(topic, sizeof(topic), "%.*s", (int)r.topic_len, r.topic);
        e = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY((void *)r.key, r.key_len),
                              RD_KAFKA_V_VALUE((void *)r.payload, r.payload_len),
                              RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(r.id + 1)), RD_KAFKA_V_END);
        if (e) {
            /* Queue full or the like: read it again after a rewind. */
            k->replay_failed = true;
            break;
        }
        k->inflight_replay++;
        k->n.replayed++;
    }
}

static void kafka_poll(event_sink *s)
{
    kafka_sink *k = (kafka_sink *)s;
    uint64_t now;

    rd_kafka_poll(k->rk, 0);
    if (spool_empty(k->sp))
        return;
    now = now_ms();
    if (k->replay_failed) {
        if (k->inflight_replay)
            return; /* wait for the rest of the window's reports */
        spool_rewind(k->sp);
        k->replay_failed = false;
        k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (k->backoff_ms > BACKOFF_MAX_MS)
            k->backoff_ms = BACKOFF_MAX_MS;
        k->backoff_until_ms = now + k->backoff_ms;
        return;
    }
    if (now >= k->backoff_until_ms)
        replay(k);
}

static fh_err kafka_write(event_sink *s, const char *event_type, const char *json, size_t len,
                          const char *key, size_t key_len)
{
    kafka_sink *k = (kafka_sink *)s;
    char topic[FH_TOPIC_NAME_MAX + 64];
    rd_kafka_resp_err_t e;

    k->n.produced++;
    topic_for(k, event_type, topic, sizeof(topic));
    for (;;) {
        /* Behind anything already spooled (order), or while the brokers are down. */
        if (!spool_empty(k->sp) || k->brokers_down) {
            if (!may_wait(k)) {
                spool_now(k, topic, key, key_len, json, len);
                return FH_OK;
            }
            /* pcap input: wait while the spool is over its limit or cannot be written
             * (back-pressure), until the brokers take events again or a stop is asked. */
            if (spool_get_stats(k->sp)->bytes < k->spool_soft_max &&
                spool_put(k, topic, key, key_len, json, len, true) != FH_ERR_IO)
                return FH_OK;
            rd_kafka_poll(k->rk, BLOCK_POLL_MS);
            kafka_poll(s);
            continue;
        }
        e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)json, len),
            RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (!e)
            return FH_OK;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            k->n.queue_full++;
            if (!may_wait(k)) {
                spool_now(k, topic, key, key_len, json, len);
                return FH_OK;
            }
            rd_kafka_poll(k->rk, BLOCK_POLL_MS); /* pcap input: wait for room */
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            k->n.dropped++;
            if (!k->warned_size) {
                k->warned_size = true;
                fh_warn("kafka: an event of %zu bytes is larger than message.max.bytes: dropped "
                        "(counted)",
                        len);
            }
            return FH_OK;
        }
        /* Anything else (unknown topic, ...): keep it for a later replay. */
        snprintf(k->last_error, sizeof(k->last_error), "%s", rd_kafka_err2str(e));
        spool_now(k, topic, key, key_len, json, len);
        return FH_OK;
    }
}

static fh_err kafka_flush(event_sink *s)
{
    kafka_poll(s);
    return FH_OK;
}

static void fill_counters(kafka_sink *k, kafka_counters *c)
{
    const spool_stats *st = spool_get_stats(k->sp);

    *c = k->n;
    c->dropped = k->n.dropped + st->dropped;
    c->spool_pending = st->pending_records;
    /* Replayed records in flight are still pending in the spool: count them there only. */
    {
        uint64_t q = (uint64_t)rd_kafka_outq_len(k->rk);

        c->in_flight = q > k->inflight_replay ? q - k->inflight_replay : 0;
    }
}

bool sink_kafka_counters(event_sink *s, kafka_counters *c)
{
    if (s->write != kafka_write)
        return false;
    fill_counters((kafka_sink *)s, c);
    return true;
}

static void kafka_write_stats(event_sink *s, jbuf *b)
{
    kafka_sink *k = (kafka_sink *)s;
    const spool_stats *st = spool_get_stats(k->sp);
    kafka_counters c;

    fill_counters(k, &c);
    jbuf_obj_open(b, "kafka");
    jbuf_u64(b, "produced", c.produced);
    jbuf_u64(b, "delivered", c.delivered);
    jbuf_u64(b, "failed", c.failed);
    jbuf_u64(b, "retried", c.retried);
    jbuf_u64(b, "queue_full", c.queue_full);
    jbuf_u64(b, "spooled", c.spooled);
    jbuf_u64(b, "replayed", c.replayed);
    jbuf_u64(b, "dropped", c.dropped);
    jbuf_u64(b, "in_flight", c.in_flight);
    jbuf_u64(b, "pending_at_start", c.pending_at_start);
    jbuf_bool(b, "brokers_down", k->brokers_down);
    jbuf_obj_open(b, "spool");
    jbuf_u64(b, "pending", st->pending_records);
    jbuf_u64(b, "bytes", st->bytes);
    jbuf_u64(b, "segments", st->segments);
    jbuf_u64(b, "corrupt", st->corrupt);
    jbuf_u64(b, "truncated", st->truncated);
    jbuf_obj_close(b);
    jbuf_obj_close(b);
}

static fh_err kafka_close(event_sink *s, sink_result *res)
{
    kafka_sink *k = (kafka_sink *)s;
    uint64_t deadline = now_ms() + (uint64_t)k->cfg->kafka_flush_timeout * 1000u;
    kafka_counters c;
    fh_err e;

    /* Records the spool took but could not write (full disk, pcap input) are only in
     * memory: with the brokers down, wait for them (or for space) rather than stop. */
    bool unsaved = !k->live && spool_flush(k->sp) != FH_OK;

    if (unsaved)
        k->spool_errors++;

    /* Deliver what is queued and what the spool holds, for at most flush_timeout. */
    while (now_ms() < deadline) {
        rd_kafka_poll(k->rk, 50);
        kafka_poll(s);
        if (unsaved && !spool_empty(k->sp))
            unsaved = spool_flush(k->sp) != FH_OK;
        if (rd_kafka_outq_len(k->rk) == 0 && (spool_empty(k->sp) || (k->brokers_down && !unsaved)))
            break;
    }
    /* What librdkafka still holds goes to the spool, not to /dev/null. */
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(k->rk, 2000);
    rd_kafka_poll(k->rk, 0);
    /* The spool's last write: its buffered records reach the disk, or are counted. */
    {
        uint64_t before = spool_get_stats(k->sp)->dropped;

        if (spool_sync(k->sp) != FH_OK) {
            k->spool_errors++;
            fh_error("kafka: the spool in %s cannot be written and the brokers did not take "
                     "the events within kafka.flush_timeout: %llu events dropped (counted)",
                     k->cfg->spool_dir,
                     (unsigned long long)(spool_get_stats(k->sp)->dropped - before));
        }
    }
    fill_counters(k, &c);
    fh_info("kafka: %llu events produced, %llu delivered, %llu spooled (%llu pending in %s), "
            "%llu replayed, %llu dropped, %llu delivery failures, %llu retries, %llu queue full, "
            "%llu spool write errors, %llu requeued",
            (unsigned long long)c.produced, (unsigned long long)c.delivered,
            (unsigned long long)c.spooled, (unsigned long long)c.spool_pending, k->cfg->spool_dir,
            (unsigned long long)c.replayed, (unsigned long long)c.dropped,
            (unsigned long long)c.failed, (unsigned long long)c.retried,
            (unsigned long long)c.queue_full, (unsigned long long)k->spool_errors,
            (unsigned long long)k->requeued);
    /* Spool errors that a wait got over lost nothing: they are said above, not failures. */
    e = c.dropped ? FH_ERR_IO : FH_OK;
    if (res) {
        res->lost += c.dropped;
        res->errors += c.dropped ? k->spool_errors : 0;
    }
    rd_kafka_destroy(k->rk);
    spool_close(k->sp);
    free(k);
    return e;
}

static fh_err set_conf(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                       size_t errlen)
{
    char e[256];

    if (rd_kafka_conf_set(conf, name, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka: property %s=%s: %s", name, value, e);
        return FH_ERR_CONFIG;
    }
    return FH_OK;
}

/* Asks the brokers for the topic's metadata: they answer and the topic exists. */
static fh_err check_brokers(kafka_sink *k, char *err, size_t errlen)
{
    char topic[FH_TOPIC_NAME_MAX + 64];
    rd_kafka_topic_t *rkt;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    fh_err result = FH_OK;

    topic_for(k, "flow", topic, sizeof(topic));
    rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    if (!rkt) {
        snprintf(err, errlen, "kafka: topic '%s': %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return FH_ERR_CONFIG;
    }
    e = rd_kafka_metadata(k->rk, 0, rkt, &md,
                          (int)(k->cfg->kafka_startup_timeout ? k->cfg->kafka_startup_timeout : 1) *
                              1000);
    if (e) {
        snprintf(err, errlen, "kafka: cannot reach the brokers at '%s' within %u s: %s",
                 k->cfg->kafka_brokers, k->cfg->kafka_startup_timeout, rd_kafka_err2str(e));
        result = FH_ERR_IO;
    } else if (md->topic_cnt < 1 || md->topics[0].err) {
        snprintf(err, errlen, "kafka: topic '%s' is not available on '%s': %s", topic,
                 k->cfg->kafka_brokers,
                 rd_kafka_err2str(md->topic_cnt ? md->topics[0].err
                                                : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        result = FH_ERR_CONFIG;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return result;
}

fh_err sink_kafka_open(event_sink **out, const sensor_config *cfg, bool live, char *err,
                       size_t errlen)
{
    kafka_sink *k;
    rd_kafka_conf_t *conf = NULL;
    spool_config sc;
    char v[64], e[512], probe[FH_TOPIC_NAME_MAX + 64];
    fh_err r;

    *out = NULL;
    k = calloc(1, sizeof(*k));
    if (!k)
        return FH_ERR_NOMEM;
    k->cfg = cfg;
    k->live = live;
    k->templated = strstr(cfg->kafka_topic, "{event_type}") != NULL;
    topic_for(k, "anomaly", probe, sizeof(probe)); /* the longest event type */
    if (!fh_topic_name_valid(probe)) {
        snprintf(err, errlen,
                 "kafka: invalid topic '%s' (1-%d characters of a-z A-Z 0-9 . _ -; "
                 "{event_type} may appear once)",
                 cfg->kafka_topic, FH_TOPIC_NAME_MAX);
        r = FH_ERR_CONFIG;
        goto fail;
    }

    memset(&sc, 0, sizeof(sc));
    sc.dir = cfg->spool_dir;
    sc.segment_bytes = cfg->spool_segment_bytes;
    if (!strcmp(cfg->spool_fsync, "none"))
        sc.fsync = SPOOL_FSYNC_NONE;
    else if (!strcmp(cfg->spool_fsync, "segment"))
        sc.fsync = SPOOL_FSYNC_SEGMENT;
    else if (!strcmp(cfg->spool_fsync, "always"))
        sc.fsync = SPOOL_FSYNC_ALWAYS;
    else {
        snprintf(err, errlen, "option 'spool.fsync': expected none, segment or always, got '%s'",
                 cfg->spool_fsync);
        r = FH_ERR_CONFIG;
        goto fail;
    }
    if (live) {
        sc.max_bytes = cfg->spool_max_bytes;
        if (!strcmp(cfg->spool_when_full, "drop_oldest"))
            sc.when_full = SPOOL_FULL_DROP_OLDEST;
        else if (!strcmp(cfg->spool_when_full, "drop_newest"))
            sc.when_full = SPOOL_FULL_DROP_NEWEST;
        else {
            snprintf(err, errlen,
                     "option 'spool.when_full': expected drop_oldest or drop_newest, got '%s'",
                     cfg->spool_when_full);
            r = FH_ERR_CONFIG;
            goto fail;
        }
    } else {
        /* pcap input waits at spool.max_bytes; delivery failures of what was already
         * queued may still arrive, so the hard limit leaves room for the queue. */
        k->spool_soft_max = cfg->spool_max_bytes;
        sc.max_bytes = cfg->spool_max_bytes + cfg->kafka_queue_bytes;
        sc.when_full = SPOOL_FULL_BLOCK;
    }
    r = spool_open(&k->sp, &sc, err, errlen);
    if (r)
        goto fail;
    k->n.pending_at_start = spool_get_stats(k->sp)->pending_records;
    if (k->n.pending_at_start)
        fh_info("kafka: %llu events wait in the spool %s: they are sent first",
                (unsigned long long)k->n.pending_at_start, cfg->spool_dir);

    conf = rd_kafka_conf_new();
    r = set_conf(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen);
    if (!r)
        r = set_conf(conf, "compression.codec", cfg->kafka_compression, err, errlen);
    if (!r)
        r = set_conf(conf, "enable.idempotence", "true", err, errlen);
    if (!r) {
        snprintf(v, sizeof(v), "%u", cfg->kafka_message_timeout * 1000u);
        r = set_conf(conf, "message.timeout.ms", v, err, errlen);
    }
    if (!r) {
        snprintf(v, sizeof(v), "%zu",
                 cfg->kafka_queue_bytes / 1024 ? cfg->kafka_queue_bytes / 1024 : 1);
        r = set_conf(conf, "queue.buffering.max.kbytes", v, err, errlen);
    }
    if (!r)
        r = set_conf(conf, "queue.buffering.max.messages", "1000000", err, errlen);
    if (!r)
        r = set_conf(conf, "linger.ms", "5", err, errlen);
    if (!r)
        r = set_conf(conf, "statistics.interval.ms", "1000", err, errlen);
    if (!r)
        r = set_conf(conf, "log.connection.close", "false", err, errlen);
    /* The user's properties last: -X and kafka.properties override ours. */
    for (size_t i = 0; !r && i < cfg->kafka_nprops; i++) {
        char name[256];
        const char *eq = strchr(cfg->kafka_props[i], '=');

        snprintf(name, sizeof(name), "%.*s", (int)(eq - cfg->kafka_props[i]), cfg->kafka_props[i]);
        r = set_conf(conf, name, eq + 1, err, errlen);
    }
    if (r)
        goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_log_cb(conf, on_log);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!k->rk) {
        snprintf(err, errlen, "kafka: cannot create the producer: %s", e);
        r = FH_ERR_CONFIG;
        goto fail; /* conf is still ours */
    }
    conf = NULL; /* now owned by rk */

    r = check_brokers(k, err, errlen);
    if (r) {
        if (!live || r == FH_ERR_CONFIG)
            goto fail;
        /* Live capture starts anyway: events wait in the spool for the brokers. */
        fh_warn("%s: spooling until they answer", err);
        k->brokers_down = true;
    }

    k->base.write = kafka_write;
    k->base.flush = kafka_flush;
    k->base.poll = kafka_poll;
    k->base.write_stats = kafka_write_stats;
    k->base.close = kafka_close;
    *out = &k->base;
    return FH_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    if (k->sp)
        spool_close(k->sp);
    free(k);
    return r;
}
