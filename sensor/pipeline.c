/*
 * pipeline.c - the capture side of the packet path (pipeline.h): decoding, the
 * capture clock, dispatch to the workers, barriers, stats, and the public API.
 * A packet's walk: capture_pcap.c -> pipeline.c (decode.c, defrag.c) -> ring.c
 * -> worker.c (flow.c, dpi.c, login.c, payload.c -> reassembly.c, yara_scan.c)
 * -> output_eve.c (geoip.c, community_id.c) -> emitter.c -> sink_file.c /
 * sink_kafka.c (spool.c).
 */
#include "pipeline_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "community_id.h"
#include "ftp_expect.h"

/*
 * Sends every worker `type` (MSG_END or MSG_SYNC) and waits until each has
 * handled it and everything before it, and handed its events to the sink.
 * The workers are then idle until the next packet: their state can be read.
 */
static void pipeline_barrier(pipeline *p, uint32_t type)
{
    uint32_t n;

    atomic_store(&p->acks, 0);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_send(&p->workers[i], type, p->clock);
    while ((n = atomic_load(&p->acks)) < p->nworkers)
        ring_wait_word(&p->acks, n, 100);
}

/*
 * Which worker a packet goes to: a hash of its two addresses (and VLANs,
 * interface) without ports and protocol, the same both ways (flow_pair_hash).
 * All flows between two hosts meet in one worker because nDPI classifies some
 * flows from what it learnt on earlier flows between the same hosts (its
 * caches: "DPI (cache)" confidence); split over workers, the same traffic
 * would be classified differently with 1 and N threads.
 */
static pworker *worker_of(pipeline *p, const decode_pkt *k)
{
    uint64_t h = flow_pair_hash(k);

    return &p->workers[(uint32_t)(((h >> 32) * p->nworkers) >> 32)];
}

static void dispatch(pipeline *p, const decode_pkt *k)
{
    pworker *w = worker_of(p, k);
    uint32_t l3n = k->l3 ? k->l3_len : 0;
    bool inside =
        k->payload && k->l3 && k->payload >= k->l3 && k->payload + k->payload_len <= k->l3 + l3n;
    uint32_t extra = (k->payload && !inside) ? k->payload_len : 0;
    size_t len = sizeof(worker_msg) + (size_t)l3n + extra;
    worker_msg *m;
    uint8_t *data;

    if (len > ring_max_record(&w->ring) || !(m = ring_reserve(&w->ring, (uint32_t)len))) {
        p->oversize++;
        return;
    }
    m->type = MSG_PACKET;
    m->clock = p->clock;
    m->k = *k;
    data = (uint8_t *)(m + 1);
    if (l3n)
        memcpy(data, k->l3, l3n);
    if (inside) {
        m->payload_off = (uint32_t)(k->payload - k->l3);
    } else {
        m->payload_off = l3n;
        if (extra)
            memcpy(data + l3n, k->payload, extra);
    }
    ring_commit(&w->ring);
}

static void kick_all(pipeline *p)
{
    for (unsigned i = 0; p->threaded && i < p->nworkers; i++)
        ring_kick(&p->workers[i].ring);
}

static unsigned thread_count(const sensor_config *cfg)
{
    long n = cfg->threads;

    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > PIPELINE_MAX_THREADS)
        n = PIPELINE_MAX_THREADS;
    return (unsigned)n;
}

fh_err pipeline_init(pipeline *p, const sensor_config *cfg, geoip *geo, event_sink *sink, char *err,
                     size_t errlen)
{
    fh_err e;

    memset(p, 0, sizeof(*p));
    p->iface = -1;
    p->cfg = cfg;
    p->geo = geo;
    p->sink = sink;
    p->nworkers = thread_count(cfg);
    p->threaded = p->nworkers > 1;
    pthread_mutex_init(&p->sink_lock, NULL);
    emitter_init(&p->out, sink, p->threaded ? &p->sink_lock : NULL);
    decoder_init(&p->dec, cfg->frag_memcap, cfg->frag_max_datagrams, cfg->frag_timeout);
    p->workers = calloc(p->nworkers, sizeof(*p->workers));
    if (cfg->ftp_enabled)
        p->ftp_expect = ftp_expect_new();
    if (!p->dec.defrag.buckets || !jbuf_init(&p->jb, 8192, cfg->max_event_bytes) || !p->workers ||
        !arp_table_init(&p->arp) || !ra_table_init(&p->ra) ||
        (cfg->ftp_enabled && !p->ftp_expect)) {
        snprintf(err, errlen, "out of memory setting up the pipeline");
        e = FH_ERR_NOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < p->nworkers; i++)
        if ((e = worker_init(&p->workers[i], p, i, sink, err, errlen)) != FH_OK)
            goto fail;
    return FH_OK;
fail:
    pipeline_free(p);
    return e;
}

fh_err pipeline_set_yara(pipeline *p, yara_rules_slot *slot, char *err, size_t errlen)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        payload_worker *w = &p->workers[i].pw;

        w->slot = slot;
        w->active = true;
        if (!payload_scanner(w)) {
            snprintf(err, errlen, "YARA: cannot make a scanner (no rules, or out of memory)");
            for (unsigned j = 0; j <= i; j++) {
                p->workers[j].pw.slot = NULL;
                p->workers[j].pw.active = p->workers[j].pw.http != NULL;
            }
            return FH_ERR_NOMEM;
        }
    }
    return FH_OK;
}

fh_err pipeline_start(pipeline *p, char *err, size_t errlen)
{
    sigset_t all, old;
    fh_err e = FH_OK;

    if (!p->threaded)
        return FH_OK;
    /* Signals go to the capture thread (its poll() returns EINTR), not to workers. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < p->nworkers; i++) {
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);

        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread %u: %s", i, strerror(rc));
            e = FH_ERR_NOMEM;
            break;
        }
        p->workers[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

void pipeline_free(pipeline *p)
{
    for (unsigned i = 0; p->workers && i < p->nworkers; i++)
        if (p->workers[i].started) {
            worker_send(&p->workers[i], MSG_STOP, p->clock);
            pthread_join(p->workers[i].thread, NULL);
            p->workers[i].started = false;
        }
    for (unsigned i = 0; p->workers && i < p->nworkers; i++)
        worker_free(&p->workers[i]);
    arp_table_free(&p->arp);
    ra_table_free(&p->ra);
    ftp_expect_free(p->ftp_expect);
    p->ftp_expect = NULL;
    free(p->workers);
    p->workers = NULL;
    p->nworkers = 0;
    decoder_free(&p->dec);
    jbuf_free(&p->jb);
    emitter_free(&p->out);
    pthread_mutex_destroy(&p->sink_lock);
}

/*
 * The capture clock: fragments expire here; the workers follow (one worker:
 * at once; worker threads: a tick every EXPIRE_EVERY_US of clock, so a worker
 * without packets still ends its idle flows).
 */
static void advance_clock(pipeline *p, uint64_t now)
{
    if (now > p->clock)
        p->clock = now;
    if (p->clock < p->next_expire)
        return;
    decoder_expire(&p->dec, p->clock);
    if (!p->threaded) {
        worker_advance(&p->workers[0], p->clock);
    } else {
        for (unsigned i = 0; i < p->nworkers; i++)
            worker_send(&p->workers[i], MSG_TICK, p->clock);
    }
    p->next_expire = p->clock + EXPIRE_EVERY_US;
}

/* Periodic stats (live capture): every stats_us of clock, first one an interval in. */
static void periodic_stats(pipeline *p, uint64_t ts_us)
{
    uint64_t every = atomic_load_explicit(&p->stats_us, memory_order_relaxed);

    if (!every) {
        p->next_stats = 0;
        return;
    }
    if (!p->next_stats || p->next_stats > p->clock + every) {
        /* First interval, or the interval was shortened (SIGHUP): one interval from now. */
        p->next_stats = p->clock + every;
        return;
    }
    if (p->clock >= p->next_stats) {
        pipeline_write_stats(p, ts_us);
        pipeline_flush(p); /* a busy link's events are out at least this often */
        while (p->next_stats <= p->clock)
            p->next_stats += every;
    }
}

void pipeline_write_stats(pipeline *p, uint64_t now_us)
{
    if (p->threaded)
        pipeline_barrier(p, MSG_SYNC);
    eve_stats_event(p, now_us);
}

void pipeline_packet(pipeline *p, int linktype, const uint8_t *frame, uint32_t caplen,
                     uint32_t wire_len, uint64_t ts_us)
{
    decode_pkt k;
    decode_reason reason;
    decode_result r;

    p->cap.packets++;
    p->cap.bytes += wire_len;
    p->last_ts = ts_us;
    advance_clock(p, ts_us);
    periodic_stats(p, ts_us);
    r = decode_frame(&p->dec, linktype, frame, caplen, wire_len, ts_us, &k, &reason);
    if (r == DECODE_ERROR) {
        if (fh_log_sample(p->dec.stats.errors[reason]))
            eve_anomaly_event(p, &k, reason);
        return;
    }
    if (r == DECODE_ARP) {
        eve_arp(p, &k);
        return;
    }
    if (r != DECODE_OK)
        return;
    int pa = decode_packet_anomaly(&k);
    if (pa >= 0 && fh_log_sample(++p->dec.stats.pkt_anomalies[pa]))
        eve_packet_anomaly(p, &k, (decode_pkt_anomaly)pa);
    if (k.l4_proto == IPPROTO_ICMPV6 && k.icmp_type == 134) /* router advertisement */
        eve_router_advertisement(p, &k);
    k.iface = p->iface >= 0 ? (uint8_t)(p->iface + 1) : 0;
    if (p->threaded)
        dispatch(p, &k);
    else
        worker_packet(&p->workers[0], &k, p->clock);
}

void pipeline_tick(pipeline *p, uint64_t now_us)
{
    pipeline_poll(p);
    advance_clock(p, now_us);
    periodic_stats(p, now_us);
    if (p->threaded)
        emitter_flush(&p->out);
}

void pipeline_end_of_input(pipeline *p)
{
    if (p->threaded)
        pipeline_barrier(p, MSG_END);
    else
        worker_end_of_input(&p->workers[0]);
    /* Datagrams still incomplete at the end will never complete; data connections announced
     * and not made will not be made. */
    decoder_expire(&p->dec, UINT64_MAX);
    ftp_expect_clear(p->ftp_expect);
    eve_stats_event(p, 0);
    pipeline_flush(p);
    /* The next input starts its own clock (a new pcap may be older). */
    p->clock = 0;
    p->next_expire = 0;
}

fh_err pipeline_flush(pipeline *p)
{
    fh_err e;

    if (!p->threaded)
        return p->sink->flush(p->sink);
    kick_all(p);
    emitter_flush(&p->out);
    pthread_mutex_lock(&p->sink_lock);
    e = p->sink->flush(p->sink);
    pthread_mutex_unlock(&p->sink_lock);
    return e;
}

void pipeline_poll(pipeline *p)
{
    kick_all(p);
    if (!p->sink->poll)
        return;
    if (p->threaded)
        pthread_mutex_lock(&p->sink_lock);
    p->sink->poll(p->sink);
    if (p->threaded)
        pthread_mutex_unlock(&p->sink_lock);
}

void pipeline_get_totals(pipeline *p, pipeline_totals *t)
{
    memset(t, 0, sizeof(*t));
    t->packets = p->cap.packets;
    t->events = p->out.events;
    t->events_dropped = p->out.events_dropped;
    t->write_errors = p->out.write_errors;
    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        t->malformed += p->dec.stats.errors[i];
    for (unsigned i = 0; i < p->nworkers; i++) {
        const pworker *w = &p->workers[i];

        t->flows += w->flows.stats.created;
        t->events += w->out.events;
        t->events_dropped += w->out.events_dropped;
        t->write_errors += w->out.write_errors;
    }
}
