/*
 * worker.c - a worker: the flow table, nDPI and payload inspection of the flows
 * dispatched to it; with worker threads, its thread and the messages it reads
 * from its ring (sensor/README.md: dispatch, time, barriers).
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

/* Teardown without events: frees what the owner hung on the flow. */
static void on_flow_release(flow *f, flow_reason reason, void *arg)
{
    pworker *p = arg;

    (void)reason;
    if (p->dpi)
        dpi_flow_release(p->dpi, &p->flows, f);
    payload_release(p, f);
}

/* Moves the worker's clock to `now` (never back); looks at the timeout lists when due. */
void worker_advance(pworker *w, uint64_t now)
{
    if (now > w->clock)
        w->clock = now;
    if (w->clock >= w->next_expire) {
        flow_expire(&w->flows, w->clock);
        w->next_expire = w->clock + EXPIRE_EVERY_US;
    }
}

/* One decoded packet; clock is the capture thread's clock when it was decoded. */
void worker_packet(pworker *w, const decode_pkt *k, uint64_t clock)
{
    flow *f;
    int dir;
    bool created;

    worker_advance(w, clock);
    f = flow_packet(&w->flows, k, w->clock, &dir, &created);
    if (!f) {
        w->flows_unaccounted++;
        return;
    }
    w->packets++;
    /* TCP payload before nDPI: a flow found to be HTTP here gets its http events from
     * libhtp. UDP payload after: a datagram of a flow nDPI has just found to be
     * encrypted or media is not scanned (dpi_flow_opaque). */
    if (w->pw.active && k->l4_proto != IPPROTO_UDP)
        payload_packet(w, f, k, dir);
    if (w->dpi) {
        dpi_packet(w->dpi, &w->flows, f, k, dir);
        eve_meta_events(w, f, k->ts_us);
    }
    if ((w->pw.active || w->pw.dns) && k->l4_proto == IPPROTO_UDP)
        payload_packet(w, f, k, dir);
    flow_maybe_update(&w->flows, f, w->clock);
}

/* End of one input: every flow ends; the next input starts its own clock. */
void worker_end_of_input(pworker *w)
{
    flow_flush(&w->flows);
    w->clock = 0;
    w->next_expire = 0;
}

fh_err worker_init(pworker *w, pipeline *p, unsigned index, event_sink *sink, char *err,
                   size_t errlen)
{
    const sensor_config *cfg = p->cfg;
    flow_config fc = cfg->flow;
    fh_err e;

    w->front = p;
    w->cfg = cfg;
    w->index = index;
    w->geo = p->geo;
    emitter_init(&w->out, sink, p->threaded ? &p->sink_lock : NULL);
    /* The limits are the sensor's: each worker gets its share. */
    fc.max_flows = cfg->flow.max_flows / p->nworkers ? cfg->flow.max_flows / p->nworkers : 1;
    fc.memcap = cfg->flow.memcap / p->nworkers;
    if (!jbuf_init(&w->jb, 8192, cfg->max_event_bytes)) {
        snprintf(err, errlen, "out of memory setting up worker %u", index);
        return FH_ERR_NOMEM;
    }
    if (flow_table_init(&w->flows, &fc, eve_flow_end, w) != 0) {
        snprintf(err, errlen, "cannot allocate the flow table (flow.max_flows = %u)",
                 cfg->flow.max_flows);
        return FH_ERR_NOMEM;
    }
    if (cfg->dpi.enabled && (e = dpi_engine_new(&w->dpi, &cfg->dpi, err, errlen)) != FH_OK)
        return e;
    if (payload_worker_init(&w->pw, cfg, p->nworkers) != FH_OK) {
        snprintf(err, errlen, "out of memory setting up the HTTP parser of worker %u", index);
        return FH_ERR_NOMEM;
    }
    if (p->threaded && ring_init(&w->ring, cfg->ring_bytes) != 0) {
        snprintf(err, errlen, "cannot allocate the packet queue of worker %u (%zu bytes)", index,
                 cfg->ring_bytes);
        return FH_ERR_NOMEM;
    }
    return FH_OK;
}

void worker_free(pworker *w)
{
    if (w->flows.buckets) {
        w->flows.end = on_flow_release; /* no events from teardown */
        flow_table_free(&w->flows);
    }
    payload_worker_free(&w->pw);
    dpi_engine_free(w->dpi);
    w->dpi = NULL;
    jbuf_free(&w->jb);
    free(w->geo_cache);
    w->geo_cache = NULL;
    emitter_free(&w->out);
    ring_free(&w->ring);
}

static void worker_ack(pworker *w)
{
    atomic_fetch_add(&w->front->acks, 1);
    ring_wake_word(&w->front->acks);
}

void *worker_main(void *arg)
{
    pworker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "fh-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name); /* top -H, perf, gdb */

    for (;;) {
        uint32_t len;
        worker_msg *m = ring_peek(&w->ring, &len);

        if (!m) {
            /* Out of work: what this worker wrote so far goes to the sink. */
            emitter_flush(&w->out);
            ring_wait(&w->ring, 100);
            continue;
        }
        switch (m->type) {
        case MSG_PACKET: {
            decode_pkt k = m->k;
            uint8_t *data = (uint8_t *)(m + 1);

            k.l3 = k.l3_len ? data : NULL;
            if (k.payload)
                k.payload = data + m->payload_off;
            worker_packet(w, &k, m->clock);
            break;
        }
        case MSG_TICK:
            worker_advance(w, m->clock);
            emitter_flush(&w->out);
            break;
        case MSG_END:
            worker_end_of_input(w);
            emitter_flush(&w->out);
            ring_release(&w->ring);
            worker_ack(w);
            continue;
        case MSG_SYNC:
            emitter_flush(&w->out);
            ring_release(&w->ring);
            worker_ack(w);
            continue;
        case MSG_STOP:
            emitter_flush(&w->out);
            ring_release(&w->ring);
            return NULL;
        }
        ring_release(&w->ring);
    }
}

void worker_send(pworker *w, uint32_t type, uint64_t clock)
{
    worker_msg *m = ring_reserve(&w->ring, sizeof(*m));

    memset(m, 0, sizeof(*m));
    m->type = type;
    m->clock = clock;
    ring_commit(&w->ring);
    ring_kick(&w->ring);
}
