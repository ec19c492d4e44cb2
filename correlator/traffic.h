/*
 * traffic.h - what the sensors saw, summed for the overview (态势感知).
 *
 * The stream adds every ended flow (flow events whose flow.reason is not "update")
 * to a traffic_agg: flows, packets and bytes per hour of event time, segment,
 * application protocol, nDPI category and destination country. The batch's sums are
 * written with traffic_flush in the batch's transaction (so they are exactly-once with
 * the consumer offsets) in key order, so that correlators of one consumer group that
 * write the same rows never wait on each other in a cycle. Each stats event updates
 * the sensor's row in sensor_status (store_sensor_status). Tables: migration 0009.
 */
#ifndef FH_TRAFFIC_H
#define FH_TRAFFIC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "store.h"

#define TRAFFIC_KEY_MAX  64    /* bytes kept of each key value (longer ones are cut) */
#define TRAFFIC_ROWS_MAX 16384 /* distinct keys held before traffic_add writes them out */

typedef struct traffic_agg traffic_agg;

typedef struct {
    int64_t hour;         /* event time / 3600000 */
    const char *segment;  /* NULL or "": none */
    const char *app;      /* NULL or "": "unknown" */
    const char *category; /* NULL: none */
    const char *country;  /* NULL: none */
    uint64_t packets, bytes;
} traffic_flow;

traffic_agg *traffic_new(void);
void traffic_free(traffic_agg *t);
/* Adds one flow; st (in a transaction) takes the sums when TRAFFIC_ROWS_MAX keys are held. */
fh_err traffic_add(traffic_agg *t, const traffic_flow *f, store *st);
size_t traffic_rows(const traffic_agg *t);
/* Writes the sums (in st's open transaction), in key order, and forgets them. */
fh_err traffic_flush(traffic_agg *t, store *st);
/* Forgets the sums (the batch was rolled back). */
void traffic_clear(traffic_agg *t);

typedef struct {
    const char *sensor, *segment;
    int64_t ts;      /* the stats event's time (ms) */
    int64_t packets; /* stats.capture.packets */
    /* -1: not in the event */
    int64_t kernel_packets, kernel_drops, ifdrops;
    int64_t kafka_failed, kafka_dropped, spool_pending, output_dropped;
} sensor_status;

/* Stores a sensor's stats (in st's open transaction), received at the store's clock
 * (store_opts.now, else the wall clock); an older stats event changes nothing. */
fh_err store_sensor_status(store *st, const sensor_status *s);

#endif
