/*
 * dpi.h - application classification with nDPI (Debian's 4.2).
 *
 * One dpi_engine per worker thread (an nDPI detection module). Each flow gets
 * nDPI state on its first packet; packets are fed until nDPI has decided
 * and has no extra dissection to do (certificate, HTTP response, ...), or it
 * gives up (more than max_tcp / max_udp packets, as ndpiReader does). Then
 * the metadata this sensor reports is copied out and nDPI's per-flow state is
 * freed at once, so long flows cost only the small dpi_meta record. A flow
 * that ends undecided is finished with nDPI's port/IP guess (marked guessed).
 * Flows of POP3, IMAP, SMTP and Telnet (by nDPI's verdict, before it by the
 * server port) also go through the failed-login parser (login.h), which
 * reads on after detection for a bounded number of packets.
 *
 * Only this file includes nDPI headers.
 */
#ifndef FH_DPI_H
#define FH_DPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "../common/jbuf.h"
#include "flow.h"

typedef struct {
    bool enabled;
    uint32_t max_tcp_packets;        /* give up after this many packets (default 80) */
    uint32_t max_udp_packets;        /* default 24 */
    const char *protos_file;         /* optional nDPI custom protocols file */
    const char *categories_file;     /* optional nDPI custom categories file */
    const char *malicious_ja3_file;  /* optional JA3 feed (abuse.ch: "md5,...") */
    const char *malicious_sha1_file; /* optional certificate feed ("date,sha1,reason") */
    bool metadata_events;            /* separate dns/http/tls/ssh/smb events (default on) */
} dpi_config;

void dpi_config_defaults(dpi_config *cfg);

typedef struct dpi_engine dpi_engine;

typedef struct {
    uint64_t flows_detected, flows_guessed, flows_unknown;
    uint64_t packets_inspected;
    uint64_t ndpi_bytes; /* bytes of nDPI flow state currently held */
} dpi_stats;

/* Creates an engine; on failure writes a reason to err. */
fh_err dpi_engine_new(dpi_engine **out, const dpi_config *cfg, char *err, size_t errlen);
void dpi_engine_free(dpi_engine *e);
const dpi_stats *dpi_engine_stats(const dpi_engine *e);

/*
 * Feeds one packet of flow f (which owns the DPI state through f->user); dir
 * is FLOW_TOSERVER or FLOW_TOCLIENT. After nDPI's detection of an SMB2/3 flow,
 * the first server payload is still looked at for the NEGOTIATE response's
 * dialect (dpi.c smb2_dialect); POP3/IMAP/SMTP/Telnet payloads go on to the
 * failed-login parser (dpi.c login_look, login.h).
 */
void dpi_packet(dpi_engine *e, flow_table *t, flow *f, const decode_pkt *p, int dir);

/*
 * Decides the flow if nDPI has not yet (guess allowed), copies the metadata
 * and frees nDPI's state. Called at the end of a flow, before its event.
 */
void dpi_finish(dpi_engine *e, flow_table *t, flow *f);

/* Frees everything the flow holds (after its last event). */
void dpi_flow_release(dpi_engine *e, flow_table *t, flow *f);

/*
 * Appends the DPI part of the flow event: ndpi{}, and tls{}, http{}, dns{},
 * ssh{}, login{} where present (app_proto is the caller's, see dpi_app_proto). Works
 * on a flow still being detected (update events) using what nDPI has so far.
 */
void dpi_write_json(dpi_engine *e, const flow *f, jbuf *b);

/*
 * Application metadata events: one event per kind and flow, written once
 * nDPI's detection of the flow is over (it has decided and done its extra
 * dissection, gave up, or the flow ended), because only then is the data
 * complete.
 */
typedef enum {
    DPI_META_DNS,
    DPI_META_HTTP,
    DPI_META_TLS,
    DPI_META_SSH,
    DPI_META_SMB,
    DPI_META_KINDS
} dpi_meta_kind;

/* The event_type of a kind: "dns", "http", "tls", "ssh", "smb". */
const char *dpi_meta_kind_name(dpi_meta_kind k);

/*
 * Returns a bit (1u << kind) for each metadata event flow f has ready: its
 * detection is over and nDPI gave data of that kind. Each kind is returned
 * once per flow (later calls return 0). Returns 0 while detection goes on
 * (for SMB2/3, until the server's first payload or the flow's end), and
 * always when cfg.metadata_events is off.
 */
unsigned dpi_take_meta_events(dpi_engine *e, flow *f);

/* Appends the object of one metadata event ("dns": {...}, ...) for flow f. */
void dpi_write_meta_event(dpi_engine *e, const flow *f, dpi_meta_kind k, jbuf *b);

/* Lower-case app_proto of the flow ("" when none), for statistics. */
const char *dpi_app_proto(dpi_engine *e, const flow *f, char *buf, size_t len);

/* True when the flow's payload is no use to a content scan (encrypted, media, DNS, NTP). */
bool dpi_flow_opaque(dpi_engine *e, const flow *f);

#endif
