/*
 * emitter.h - where one thread's finished events go (emitter.c).
 */
#ifndef FH_EMITTER_H
#define FH_EMITTER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/jbuf.h"
#include "config.h"
#include "sink.h"

/*
 * Where one thread's events go. With one thread (lock NULL) each event goes
 * straight to the sink. With worker threads every thread collects its events
 * in a batch and hands the batch to the shared sink under sink_lock when it
 * is full, when the thread runs out of work, and at every barrier: one lock
 * per batch, and a flow's events stay in order because one thread writes them.
 */
typedef struct {
    event_sink *sink;
    pthread_mutex_t *lock; /* NULL: the caller is the sink's only user */
    uint8_t *batch;
    size_t len, cap;
    uint64_t events, events_dropped, write_errors;
} emitter;

void emitter_init(emitter *o, event_sink *sink, pthread_mutex_t *lock);
void emitter_free(emitter *o);
/* Hands the batch to the sink under the lock (worker threads), then lets the sink poll. */
void emitter_flush(emitter *o);
/*
 * Hands the event in b to the sink (through the batch with worker threads). The
 * key keeps a flow's events together (one Kafka partition): its Community ID;
 * events of no flow use the sensor id (key NULL).
 */
void emitter_emit(emitter *o, const sensor_config *cfg, jbuf *b, const char *event_type,
                  const char *key);

#endif
