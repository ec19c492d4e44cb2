/*
 * emitter.c - where a thread's finished events go: straight to the sink with
 * one thread, through a batch handed over under the sink lock with worker
 * threads (emitter.h).
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

/*
 * A batch record: the three lengths, then the event type and the key (each
 * NUL-terminated) and the JSON, padded to 8 bytes.
 */
typedef struct {
    uint32_t type_len, key_len, json_len, pad;
} batch_rec;

static size_t batch_rec_size(size_t type_len, size_t key_len, size_t json_len)
{
    return (sizeof(batch_rec) + type_len + 1 + key_len + 1 + json_len + 7) & ~(size_t)7;
}

#define BATCH_BYTES ((size_t)256 << 10) /* handed to the sink when it holds this much */

void emitter_init(emitter *o, event_sink *sink, pthread_mutex_t *lock)
{
    memset(o, 0, sizeof(*o));
    o->sink = sink;
    o->lock = lock;
}

void emitter_free(emitter *o)
{
    free(o->batch);
    o->batch = NULL;
    o->len = o->cap = 0;
}

static void sink_write_one(emitter *o, const char *type, const char *json, size_t len,
                           const char *key, size_t key_len)
{
    if (o->sink->write(o->sink, type, json, len, key, key_len) != FH_OK) {
        o->write_errors++;
        o->events_dropped++;
    }
}

/* Hands the batch to the sink under the lock (worker threads), then lets the sink poll. */
void emitter_flush(emitter *o)
{
    size_t off = 0;

    if (!o->len)
        return;
    pthread_mutex_lock(o->lock);
    while (off < o->len) {
        const batch_rec *r = (const batch_rec *)(o->batch + off);
        const char *type = (const char *)(r + 1); /* NUL-terminated, as the sink expects */
        const char *key = type + r->type_len + 1;
        const char *json = key + r->key_len + 1;

        sink_write_one(o, type, json, r->json_len, key, r->key_len);
        off += batch_rec_size(r->type_len, r->key_len, r->json_len);
    }
    if (o->sink->poll)
        o->sink->poll(o->sink);
    pthread_mutex_unlock(o->lock);
    o->len = 0;
}

/*
 * Hands the event in b to the sink (through the batch with worker threads).
 * The key keeps a flow's events together (one Kafka partition): its
 * Community ID; events of no flow use the sensor id.
 */
void emitter_emit(emitter *o, const sensor_config *cfg, jbuf *b, const char *event_type,
                  const char *key)
{
    size_t tl, kl, need;
    batch_rec *r;
    char *d;

    if (!key)
        key = cfg->sensor_id;
    if (jbuf_failed(b)) {
        o->events_dropped++;
        return;
    }
    o->events++;
    if (!o->lock) {
        sink_write_one(o, event_type, b->data, b->len, key, strlen(key));
        /* Delivery reports and spool replay, every so often on the packet path. */
        if (o->sink->poll && (o->events & 63) == 0)
            o->sink->poll(o->sink);
        return;
    }
    tl = strlen(event_type);
    kl = strlen(key);
    need = batch_rec_size(tl, kl, b->len);
    if (o->len + need > o->cap) {
        size_t nc = o->cap ? o->cap : (size_t)64 << 10;
        uint8_t *nb;

        while (nc < o->len + need)
            nc *= 2;
        if (!(nb = realloc(o->batch, nc))) {
            /* No memory for a larger batch: write what it holds, then this one. */
            emitter_flush(o);
            pthread_mutex_lock(o->lock);
            sink_write_one(o, event_type, b->data, b->len, key, kl);
            pthread_mutex_unlock(o->lock);
            return;
        }
        o->batch = nb;
        o->cap = nc;
    }
    r = (batch_rec *)(o->batch + o->len);
    r->type_len = (uint32_t)tl;
    r->key_len = (uint32_t)kl;
    r->json_len = (uint32_t)b->len;
    r->pad = 0;
    d = (char *)(r + 1);
    memcpy(d, event_type, tl + 1);
    memcpy(d + tl + 1, key, kl + 1);
    memcpy(d + tl + 1 + kl + 1, b->data, b->len);
    o->len += need;
    if (o->len >= BATCH_BYTES)
        emitter_flush(o);
}
