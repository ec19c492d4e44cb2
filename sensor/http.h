/*
 * http.h - HTTP/1.x transactions with libhtp (the parser Suricata uses): every
 * request and response of a TCP flow that starts with an HTTP request,
 * pipelined or keep-alive, fed with the flow's reassembled bytes
 * (payload.c). Each transaction gives one `http` event (docs/events.md) with
 * the raw and the normalised URI; request and response bodies, de-chunked
 * and decompressed by libhtp within its limits, are files (files.c): hashed,
 * typed and scanned by YARA.
 *
 * Bounded: libhtp's field limits, its decompression bomb and time limits,
 * at most HTTP_MAX_OPEN_TX transactions waiting for their response per flow
 * (the oldest are logged early past it), and transactions freed as soon as
 * they are logged and complete. A gap in either direction ends parsing of
 * the flow (what was logged stays; the open bodies are marked with gaps).
 */
#ifndef FH_HTTP_H
#define FH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pworker;
struct flow;

typedef struct http_engine http_engine;
typedef struct http_conn http_conn;

http_engine *http_engine_new(void);
void http_engine_free(http_engine *e);

/* True when data (a flow's first bytes to the server) starts an HTTP/1.x request line. */
bool http_is_request_start(const uint8_t *data, size_t len);

http_conn *http_conn_new(struct pworker *p, struct flow *f);
/* Bytes of direction dir (FLOW_TOSERVER / FLOW_TOCLIENT) in stream order; gap: a hole before them.
 */
void http_conn_data(http_conn *c, int dir, const uint8_t *data, size_t len, bool gap,
                    uint64_t ts_us);
/* The flow ends: what libhtp still holds is finished, the remaining transactions logged. */
void http_conn_close(http_conn *c, uint64_t ts_us);
/* Frees without events. */
void http_conn_free(http_conn *c);
/* Memory a connection holds, roughly (for the flow's memory accounting). */
size_t http_conn_mem(const http_conn *c);

/*
 * The normalised form of a URI (or any URL-encoded text) for matching:
 * percent-decoded twice (double encoding), '+' as a space, ASCII lower case,
 * control characters and SQL comments (slash-star ... star-slash) as one
 * space, runs of spaces as one. Writes at most outlen-1 bytes and a NUL;
 * returns the length written.
 */
size_t http_normalize(const uint8_t *in, size_t len, char *out, size_t outlen);

#endif
