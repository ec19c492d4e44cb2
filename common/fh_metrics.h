/*
 * fh_metrics.h - the sensor's and the correlator's /metrics: a small HTTP
 * listener (libmicrohttpd, one thread) on a management address that serves the
 * last text the program published, in the Prometheus text format.
 *
 *   main loop ── render text ── fh_metrics_publish() ──► snapshot ◄── GET /metrics
 *
 * The program renders from its own counters on its own thread, so the listener
 * never reads live state: a scrape sees the last snapshot whole. Only GET
 * /metrics is served (404 otherwise); a few connections at a time, short
 * timeouts. Bind it to a management address, not to the monitored network.
 */
#ifndef FH_METRICS_H
#define FH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

/*
 * Parses "ADDRESS:PORT" ("127.0.0.1:9101", "[::1]:9101"; port 0 = any free one) into
 * ss (*len set); *v6 tells the family. False with a reason in err.
 */
bool fh_listen_addr(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *v6,
                    char *err, size_t errlen);

typedef struct fh_metrics fh_metrics;

/* Starts listening; -1 with a reason in err. */
int fh_metrics_start(fh_metrics **out, const char *listen, char *err, size_t errlen);
/* The port it listens on (the one chosen when the address said 0). */
unsigned fh_metrics_port(const fh_metrics *m);
/* Replaces the snapshot (copied). */
void fh_metrics_publish(fh_metrics *m, const char *text, size_t len);
void fh_metrics_stop(fh_metrics *m);

/* Writes a label value escaped for the text format (backslash, quote, newline). */
void fh_metrics_label(char *out, size_t outlen, const char *s);

/* A metric family's "# HELP" and "# TYPE" lines. */
void fh_metrics_head(FILE *f, const char *name, const char *type, const char *help);
/* A family of one unlabelled sample: its head and "name value". */
void fh_metrics_one(FILE *f, const char *name, const char *type, const char *help,
                    unsigned long long v);

#endif
