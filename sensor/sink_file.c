/*
 * sink_file.c - NDJSON file sink and the tee; see sink.h.
 *
 * The file sink keeps its own buffer (1 MiB, grown for a larger event) and
 * writes it with write(2) rather than through stdio: a failed write then says
 * exactly how many bytes reached the file, so the events it cut are counted
 * as lost (none is reported written that is not), and a regular file is cut
 * back to its last newline. After a failure the sink goes on with the next
 * buffer (space may come back); the error is logged once per failing stretch
 * and the totals go to the summary.
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fh_log.h"

#define FILE_SINK_BUF ((size_t)1 << 20)

typedef struct {
    event_sink base;
    int fd;
    bool is_stdout;
    bool regular; /* a regular file: a cut line can be truncated away */
    bool failing; /* the last write failed (logged once until one succeeds) */
    char *buf;
    size_t len, cap; /* bytes in buf, its size */
    uint64_t nev;    /* events in buf (each ends in '\n') */
    uint64_t off;    /* file offset after the last whole event written */
    sink_result r;
    char *path;
} file_sink;

static uint64_t count_newlines(const char *p, size_t n)
{
    const char *e = p + n;
    uint64_t c = 0;

    while (p < e && (p = memchr(p, '\n', (size_t)(e - p)))) {
        c++;
        p++;
    }
    return c;
}

/*
 * Writes the buffer out. On failure: the events not written whole are lost
 * (counted), a regular file is cut back to its last whole line, the reason is
 * logged once per failing stretch. FH_ERR_IO when anything was lost.
 */
static fh_err drain(file_sink *f)
{
    size_t done = 0;
    int saved = 0;

    if (f->len == 0)
        return FH_OK;
    while (done < f->len) {
        ssize_t n = write(f->fd, f->buf + done, f->len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            saved = n < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)n;
    }
    if (done == f->len) {
        f->off += done;
        if (f->failing)
            fh_info("writing to '%s' works again", f->path);
        f->failing = false;
        f->len = 0;
        f->nev = 0;
        return FH_OK;
    }
    {
        uint64_t whole = count_newlines(f->buf, done);
        const char *nl = done ? memrchr(f->buf, '\n', done) : NULL;
        size_t keep = nl ? (size_t)(nl - f->buf) + 1 : 0;

        f->r.lost += f->nev - whole;
        f->r.errors++;
        if (!f->failing)
            fh_error("write(\"%s\") failed: %s: %llu events lost (counted); later events are "
                     "tried again",
                     f->path, strerror(saved), (unsigned long long)(f->nev - whole));
        f->failing = true;
        f->off += keep;
        /* Half a line must not stay at the end of the file: cut it away. */
        if (f->regular && keep < done &&
            (ftruncate(f->fd, (off_t)f->off) != 0 || lseek(f->fd, (off_t)f->off, SEEK_SET) < 0))
            fh_warn("cannot cut '%s' back to its last whole event: %s", f->path, strerror(errno));
        f->len = 0;
        f->nev = 0;
    }
    return FH_ERR_IO;
}

static fh_err file_write(event_sink *s, const char *event_type, const char *json, size_t len,
                         const char *key, size_t key_len)
{
    file_sink *f = (file_sink *)s;

    (void)event_type;
    (void)key;
    (void)key_len;
    if (len + 1 > f->cap - f->len) {
        drain(f); /* what it loses is counted there */
        if (len + 1 > f->cap) {
            char *nb = realloc(f->buf, len + 1);

            if (!nb) {
                f->r.lost++;
                return FH_OK; /* taken and lost: counted like a failed write */
            }
            f->buf = nb;
            f->cap = len + 1;
        }
    }
    memcpy(f->buf + f->len, json, len);
    f->buf[f->len + len] = '\n';
    f->len += len + 1;
    f->nev++;
    return FH_OK;
}

static fh_err file_flush(event_sink *s)
{
    return drain((file_sink *)s);
}

static fh_err file_close(event_sink *s, sink_result *res)
{
    file_sink *f = (file_sink *)s;
    fh_err e = FH_OK;

    drain(f);
    if (!f->is_stdout && close(f->fd) != 0) {
        fh_error("close(\"%s\") failed: %s", f->path, strerror(errno));
        f->r.errors++;
    }
    if (f->r.lost || f->r.errors)
        e = FH_ERR_IO;
    if (res) {
        res->lost += f->r.lost;
        res->errors += f->r.errors;
    }
    free(f->buf);
    free(f->path);
    free(f);
    return e;
}

fh_err sink_file_open(event_sink **out, const char *path, char *err, size_t errlen)
{
    file_sink *f = calloc(1, sizeof(*f));
    struct stat st;

    *out = NULL;
    if (!f)
        return FH_ERR_NOMEM;
    if (strcmp(path, "-") == 0) {
        f->fd = STDOUT_FILENO;
        f->is_stdout = true;
    } else if ((f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
        free(f);
        return FH_ERR_IO;
    }
    f->regular = fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode);
    if (f->regular)
        f->off = (uint64_t)lseek(f->fd, 0, SEEK_CUR);
    f->path = strdup(f->is_stdout ? "standard output" : path);
    f->buf = malloc(FILE_SINK_BUF);
    if (!f->path || !f->buf) {
        if (!f->is_stdout)
            close(f->fd);
        free(f->path);
        free(f->buf);
        free(f);
        return FH_ERR_NOMEM;
    }
    f->cap = FILE_SINK_BUF;
    f->base.write = file_write;
    f->base.flush = file_flush;
    f->base.close = file_close;
    *out = &f->base;
    return FH_OK;
}

/* ---- tee ------------------------------------------------------------------- */

typedef struct {
    event_sink base;
    event_sink *a, *b;
} tee_sink;

static fh_err tee_write(event_sink *s, const char *event_type, const char *json, size_t len,
                        const char *key, size_t key_len)
{
    tee_sink *t = (tee_sink *)s;
    fh_err ea = t->a->write(t->a, event_type, json, len, key, key_len);
    fh_err eb = t->b->write(t->b, event_type, json, len, key, key_len);

    return ea ? ea : eb;
}

static fh_err tee_flush(event_sink *s)
{
    tee_sink *t = (tee_sink *)s;
    fh_err ea = t->a->flush(t->a), eb = t->b->flush(t->b);

    return ea ? ea : eb;
}

static void tee_poll(event_sink *s)
{
    tee_sink *t = (tee_sink *)s;

    if (t->a->poll)
        t->a->poll(t->a);
    if (t->b->poll)
        t->b->poll(t->b);
}

static void tee_write_stats(event_sink *s, jbuf *b)
{
    tee_sink *t = (tee_sink *)s;

    if (t->a->write_stats)
        t->a->write_stats(t->a, b);
    if (t->b->write_stats)
        t->b->write_stats(t->b, b);
}

/* An event lost by either output counts once per output in lost. */
static fh_err tee_close(event_sink *s, sink_result *res)
{
    tee_sink *t = (tee_sink *)s;
    fh_err ea = t->a->close(t->a, res), eb = t->b->close(t->b, res);

    free(t);
    return ea ? ea : eb;
}

fh_err sink_tee_new(event_sink **out, event_sink *a, event_sink *b)
{
    tee_sink *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return FH_ERR_NOMEM;
    t->a = a;
    t->b = b;
    t->base.write = tee_write;
    t->base.flush = tee_flush;
    t->base.poll = tee_poll;
    t->base.write_stats = tee_write_stats;
    t->base.close = tee_close;
    *out = &t->base;
    return FH_OK;
}
