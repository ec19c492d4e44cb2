/*
 * fh_kafka_names.h - Kafka's rule for topic names, shared by the sensor's
 * producer and the embedded broker.
 */
#ifndef FH_KAFKA_NAMES_H
#define FH_KAFKA_NAMES_H

#include <stdbool.h>

#define FH_TOPIC_NAME_MAX 249 /* Kafka's limit */

/* True for 1-249 characters of [a-zA-Z0-9._-], other than "." and "..". */
bool fh_topic_name_valid(const char *name);

#endif
