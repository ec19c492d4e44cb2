/*
 * sink-file.c - NDJSON file sink; see sink.h.
 */
#include "sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_SINK_BUF (1u << 20)

typedef struct {
    event_sink base;
    FILE *fp;
    int is_stdout;
    char *buf;
    const char *path;
} file_sink;

static fh_err file_write(event_sink *s, const char *event_type, const char *json, size_t len,
                         const char *key, size_t key_len)
{
    file_sink *f = (file_sink *)s;

    (void)event_type;
    (void)key;
    (void)key_len;
    if (fwrite(json, 1, len, f->fp) != len || fputc('\n', f->fp) == EOF)
        return FH_ERR_IO;
    return FH_OK;
}

static fh_err file_flush(event_sink *s)
{
    file_sink *f = (file_sink *)s;

    return fflush(f->fp) == 0 ? FH_OK : FH_ERR_IO;
}

static void file_close(event_sink *s)
{
    file_sink *f = (file_sink *)s;

    if (f->is_stdout)
        fflush(f->fp);
    else
        fclose(f->fp);
    free(f->buf);
    free(f);
}

fh_err sink_file_open(event_sink **out, const char *path, char *err, size_t errlen)
{
    file_sink *f = calloc(1, sizeof(*f));

    *out = NULL;
    if (!f)
        return FH_ERR_NOMEM;
    if (strcmp(path, "-") == 0) {
        f->fp = stdout;
        f->is_stdout = 1;
    } else if (!(f->fp = fopen(path, "w"))) {
        snprintf(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
        free(f);
        return FH_ERR_IO;
    }
    f->buf = malloc(FILE_SINK_BUF);
    if (f->buf)
        setvbuf(f->fp, f->buf, _IOFBF, FILE_SINK_BUF);
    f->path = path;
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

static void tee_close(event_sink *s)
{
    tee_sink *t = (tee_sink *)s;

    t->a->close(t->a);
    t->b->close(t->b);
    free(t);
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
