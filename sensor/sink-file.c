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

static fh_err file_write(event_sink *s, const char *json, size_t len, uint64_t key)
{
    file_sink *f = (file_sink *)s;

    (void)key;
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
