/*
 * files.h - files seen in application protocols (HTTP bodies today): each is
 * hashed (SHA-256 over every byte, however long), its first files.max_bytes
 * bytes are kept for libmagic and YARA, and when it ends one `fileinfo` event
 * is written (docs/events.md), plus one `yara` event per matching rule.
 *
 * A file belongs to the protocol parser that saw it (http.c keeps two per
 * transaction); this file owns the buffers' memory accounting (the worker's
 * yara.memcap share) and the event.
 */
#ifndef FH_FILES_H
#define FH_FILES_H

#include <nettle/sha2.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/jbuf.h"

struct pworker;
struct flow;

typedef struct {
    struct sha256_ctx sha;
    uint8_t *buf; /* the first bytes (at most keep) */
    uint32_t len, cap;
    uint32_t keep;     /* bytes to keep: files.max_bytes to scan, MAGIC_BYTES to type only */
    uint64_t size;     /* every byte seen */
    char *name;        /* file name (URI path, Content-Disposition, share path), may be NULL */
    char declared[64]; /* the type the sender declared (Content-Type), lower case, or "" */
    uint8_t dir;       /* FLOW_TOSERVER or FLOW_TOCLIENT */
    bool open;
    bool cut;   /* bytes past the buffer were not kept (scan and type on the first ones) */
    bool nomem; /* the buffer could not grow (memcap): scanned on what it holds */
    bool gap;   /* bytes are missing (stream gap): the hash is not the file's */
} fh_file;

/* Writes what the protocol knows of the file's context (e.g. the "http" object). */
typedef void (*file_ctx_writer)(jbuf *b, void *arg);

/*
 * Makes room for n more bytes after the len held in *buf (capacity *cap): the capacity
 * doubles from min_cap, up to max (len + n <= max), inside the worker's share of
 * yara.memcap (buf_mem). False, counted as a memcap drop of n bytes, when it cannot.
 * The one allocator of the scan buffers, files and SMTP messages.
 */
struct payload_worker;
bool worker_buf_reserve(struct payload_worker *w, uint8_t **buf, uint32_t *cap, uint32_t len,
                        uint32_t n, uint32_t min_cap, uint32_t max);

void file_open(struct pworker *p, fh_file *f, int dir, const char *name, size_t name_len);
void file_data(struct pworker *p, fh_file *f, const uint8_t *data, size_t len);
/* Names the file after it opened (an FTP data connection learns its name at its end). */
void file_set_name(fh_file *f, const char *name, size_t len);
/* The type the protocol says the sender declared (Content-Type), as a hint for typing. */
void file_declared_type(fh_file *f, const char *type, size_t len);
/* Marks missing bytes (a hole in the stream): the file's hash is then not written. */
void file_gap(fh_file *f);
/*
 * Ends the file: YARA on its first bytes, libmagic, then the events, stamped
 * ts_us. `source` is the protocol ("http", "smb", ...); `complete` false when
 * the protocol saw the file end early (connection closed mid-body).
 */
void file_close(struct pworker *p, struct flow *fl, fh_file *f, uint64_t ts_us, const char *source,
                uint64_t tx_id, bool complete, file_ctx_writer ctx, void *arg);
/* Frees a file without events (teardown). */
void file_discard(struct pworker *p, fh_file *f);

#endif
