/*
 * archive.c - see archive.h.
 */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "../common/fh_log.h"

#define DEFAULT_MAX_BYTES  (1ull << 30)
#define DEFAULT_MAX_AGE_MS (180LL * 24 * 3600 * 1000)
#define DEFAULT_SEG_BYTES  (64ull << 20)
#define MAX_SEGMENTS       65536

typedef struct {
    uint64_t seq, events, disk;
    int64_t first_ts, last_ts;
} seg_info;

struct archive {
    archive_opts o;
    char dir[1024];
    ZSTD_CCtx *cctx;
    FILE *f;
    uint64_t seq;
    int64_t first_ts, last_ts, newest_ts;
    uint64_t seg_events, seg_raw;
    void *out;
    size_t out_cap;
    archive_stats st;
    bool dirty;
};

static void seg_path(char *out, size_t len, const char *dir, uint64_t seq, const char *ext)
{
    snprintf(out, len, "%s/%016" PRIu64 ".%s", dir, seq, ext);
}

static int by_seq(const void *a, const void *b)
{
    const seg_info *x = a, *y = b;

    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The segments of one instance folder, by seq; NULL (n = 0) when none. */
static seg_info *list_segments(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    seg_info *v = NULL;
    size_t cap = 0;

    *n = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d)) && *n < MAX_SEGMENTS) {
        char path[1400], *end;
        unsigned long long seq = strtoull(e->d_name, &end, 10);
        struct stat sb;
        FILE *f;
        seg_info s = {.seq = seq};

        if (end == e->d_name || strcmp(end, ".ndjson.zst"))
            continue;
        seg_path(path, sizeof(path), dir, seq, "ndjson.zst");
        if (stat(path, &sb) == 0)
            s.disk = (uint64_t)sb.st_size;
        seg_path(path, sizeof(path), dir, seq, "idx");
        if ((f = fopen(path, "r"))) {
            long long a, b;
            unsigned long long ev, raw;

            if (fscanf(f, "%lld %lld %llu %llu", &a, &b, &ev, &raw) == 4) {
                s.first_ts = a;
                s.last_ts = b;
                s.events = ev;
            }
            fclose(f);
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            seg_info *nv = realloc(v, nc * sizeof(*nv));

            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        v[(*n)++] = s;
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof(*v), by_seq);
    return v;
}

static fh_err write_index(archive *a)
{
    char path[1400], tmp[1420];
    FILE *f;
    bool ok;

    seg_path(path, sizeof(path), a->dir, a->seq, "idx");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return FH_ERR_IO;
    fprintf(f, "%lld %lld %llu %llu\n", (long long)a->first_ts, (long long)a->last_ts,
            (unsigned long long)a->seg_events, (unsigned long long)a->seg_raw);
    ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return FH_ERR_IO;
    }
    return FH_OK;
}

static fh_err new_segment(archive *a)
{
    char path[1400];

    a->seq++;
    seg_path(path, sizeof(path), a->dir, a->seq, "ndjson.zst");
    if (!(a->f = fopen(path, "wx")))
        return FH_ERR_IO;
    a->first_ts = a->last_ts = 0;
    a->seg_events = a->seg_raw = 0;
    a->st.segments++;
    ZSTD_CCtx_reset(a->cctx, ZSTD_reset_session_only);
    return write_index(a);
}

/* Deletes the oldest segments past the bounds (never the one being written). */
static void evict(archive *a)
{
    size_t n;
    seg_info *v = list_segments(a->dir, &n);
    uint64_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += v[i].disk;
    for (size_t i = 0; i < n; i++) {
        char path[1400];
        bool old = a->newest_ts && v[i].last_ts && v[i].last_ts < a->newest_ts - a->o.max_age_ms;

        if (v[i].seq == a->seq || (total <= a->o.max_bytes && !old))
            continue;
        seg_path(path, sizeof(path), a->dir, v[i].seq, "ndjson.zst");
        unlink(path);
        seg_path(path, sizeof(path), a->dir, v[i].seq, "idx");
        unlink(path);
        total -= v[i].disk;
        a->st.evicted_segments++;
        a->st.evicted_events += v[i].events;
    }
    a->st.disk_bytes = total;
    free(v);
}

fh_err archive_open(archive **out, const archive_opts *o, const char *instance, char *err,
                    size_t errlen)
{
    archive *a = calloc(1, sizeof(*a));
    seg_info *v;
    size_t n;

    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return FH_ERR_NOMEM;
    }
    a->o = *o;
    if (!a->o.max_bytes)
        a->o.max_bytes = DEFAULT_MAX_BYTES;
    if (!a->o.max_age_ms)
        a->o.max_age_ms = DEFAULT_MAX_AGE_MS;
    if (!a->o.segment_bytes)
        a->o.segment_bytes = DEFAULT_SEG_BYTES;
    if (!a->o.level)
        a->o.level = 3;
    if (!instance || !*instance || strchr(instance, '/') || instance[0] == '.') {
        snprintf(err, errlen, "archive: the instance name '%s' cannot name a folder",
                 instance ? instance : "");
        free(a);
        return FH_ERR_ARG;
    }
    snprintf(a->dir, sizeof(a->dir), "%s/%s", o->dir, instance);
    if ((mkdir(o->dir, 0750) != 0 && errno != EEXIST) ||
        (mkdir(a->dir, 0750) != 0 && errno != EEXIST)) {
        snprintf(err, errlen, "archive: mkdir(\"%s\") failed: %s", a->dir, strerror(errno));
        free(a);
        return FH_ERR_IO;
    }
    a->out_cap = ZSTD_CStreamOutSize();
    if (!(a->cctx = ZSTD_createCCtx()) || !(a->out = malloc(a->out_cap))) {
        snprintf(err, errlen, "out of memory");
        archive_close(a);
        return FH_ERR_NOMEM;
    }
    ZSTD_CCtx_setParameter(a->cctx, ZSTD_c_compressionLevel, a->o.level);
    ZSTD_CCtx_setParameter(a->cctx, ZSTD_c_checksumFlag, 1);
    v = list_segments(a->dir, &n);
    for (size_t i = 0; i < n; i++) {
        if (v[i].seq > a->seq)
            a->seq = v[i].seq;
        if (v[i].last_ts > a->newest_ts)
            a->newest_ts = v[i].last_ts;
    }
    free(v);
    if (new_segment(a) != FH_OK) {
        snprintf(err, errlen, "archive: cannot start a segment in %s: %s", a->dir, strerror(errno));
        archive_close(a);
        return FH_ERR_IO;
    }
    evict(a);
    *out = a;
    return FH_OK;
}

/* Compresses in (mode: continue or end of frame) to the file. */
static fh_err pump(archive *a, const void *src, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {src, len, 0};
    size_t left;

    do {
        ZSTD_outBuffer out = {a->out, a->out_cap, 0};

        left = ZSTD_compressStream2(a->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return FH_ERR_IO;
        if (out.pos && fwrite(a->out, 1, out.pos, a->f) != out.pos)
            return FH_ERR_IO;
    } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    return FH_OK;
}

static fh_err failed(archive *a, const char *what)
{
    if (!a->st.errors++)
        fh_error("archive: %s in %s failed: %s (said once; counted after)", what, a->dir,
                 strerror(errno));
    return FH_ERR_IO;
}

fh_err archive_add(archive *a, const char *json, size_t len, int64_t ts_ms)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%lld\t", (long long)ts_ms);

    if (!a->f)
        return failed(a, "writing");
    if (pump(a, head, (size_t)n, ZSTD_e_continue) || pump(a, json, len, ZSTD_e_continue) ||
        pump(a, "\n", 1, ZSTD_e_continue))
        return failed(a, "writing");
    if (!a->first_ts || (ts_ms && ts_ms < a->first_ts))
        a->first_ts = ts_ms;
    if (ts_ms > a->last_ts)
        a->last_ts = ts_ms;
    if (ts_ms > a->newest_ts)
        a->newest_ts = ts_ms;
    a->seg_events++;
    a->seg_raw += len + 1;
    a->st.events++;
    a->st.bytes_in += len + 1;
    a->dirty = true;
    return FH_OK;
}

fh_err archive_flush(archive *a)
{
    if (!a->dirty)
        return FH_OK;
    if (!a->f || pump(a, NULL, 0, ZSTD_e_end) || fflush(a->f) != 0 || write_index(a) != FH_OK)
        return failed(a, "flushing");
    a->dirty = false;
    if (a->seg_raw >= a->o.segment_bytes) {
        fclose(a->f);
        a->f = NULL;
        if (new_segment(a) != FH_OK)
            return failed(a, "starting a segment");
        evict(a);
    }
    return FH_OK;
}

void archive_get_stats(const archive *a, archive_stats *s)
{
    *s = a->st;
}

void archive_close(archive *a)
{
    if (!a)
        return;
    if (a->f) {
        archive_flush(a);
        fclose(a->f);
    }
    ZSTD_freeCCtx(a->cctx);
    free(a->out);
    free(a);
}

/* ---- reading --------------------------------------------------------------------------- */

/* Calls fn for each complete line of one segment; a torn last frame ends it quietly. */
static bool scan_segment(const char *path, int64_t from_ms, int64_t to_ms, archive_event_fn fn,
                         void *ctx, uint64_t *scanned, bool *stop)
{
    FILE *f = fopen(path, "rb");
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
    char *inb = malloc(in_cap), *outb = malloc(out_cap), *line = NULL;
    size_t llen = 0, lcap = 0, r;
    bool ok = f && d && inb && outb;

    while (ok && !*stop && (r = fread(inb, 1, in_cap, f)) > 0) {
        ZSTD_inBuffer in = {inb, r, 0};

        while (in.pos < in.size && !*stop) {
            ZSTD_outBuffer out = {outb, out_cap, 0};
            size_t rc = ZSTD_decompressStream(d, &out, &in);

            if (ZSTD_isError(rc)) {
                ok = false; /* corrupt: what came before stands */
                break;
            }
            for (size_t i = 0; i < out.pos && !*stop; i++) {
                if (outb[i] != '\n') {
                    if (llen + 1 >= lcap) {
                        size_t nc = lcap ? lcap * 2 : 4096;
                        char *nl = realloc(line, nc);

                        if (!nl) {
                            ok = false;
                            break;
                        }
                        line = nl;
                        lcap = nc;
                    }
                    line[llen++] = outb[i];
                    continue;
                }
                if (llen) {
                    char *tab = memchr(line, '\t', llen);
                    int64_t ts;

                    line[llen] = '\0';
                    ts = strtoll(line, NULL, 10);
                    if (scanned)
                        (*scanned)++;
                    if (tab && (!from_ms || ts >= from_ms) && (!to_ms || ts <= to_ms) &&
                        !fn(ctx, tab + 1, llen - (size_t)(tab + 1 - line), ts))
                        *stop = true;
                }
                llen = 0;
            }
        }
    }
    if (f)
        fclose(f);
    ZSTD_freeDCtx(d);
    free(inb);
    free(outb);
    free(line);
    return true;
}

fh_err archive_scan(const char *dir, int64_t from_ms, int64_t to_ms, archive_event_fn fn, void *ctx,
                    uint64_t *scanned, char *err, size_t errlen)
{
    DIR *root = opendir(dir);
    struct dirent *e;
    bool stop = false;

    if (scanned)
        *scanned = 0;
    if (!root) {
        snprintf(err, errlen, "archive: cannot read %s: %s", dir, strerror(errno));
        return FH_ERR_IO;
    }
    while (!stop && (e = readdir(root))) {
        char inst[1300], path[1400];
        seg_info *v;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(inst, sizeof(inst), "%s/%s", dir, e->d_name);
        v = list_segments(inst, &n);
        for (size_t i = 0; i < n && !stop; i++) {
            /* an index says the segment's range; an empty one (just opened) is read */
            if (v[i].events &&
                ((from_ms && v[i].last_ts < from_ms) || (to_ms && v[i].first_ts > to_ms)))
                continue;
            seg_path(path, sizeof(path), inst, v[i].seq, "ndjson.zst");
            scan_segment(path, from_ms, to_ms, fn, ctx, scanned, &stop);
        }
        free(v);
    }
    closedir(root);
    return FH_OK;
}
