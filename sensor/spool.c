/*
 * spool.c - the on-disk queue of undelivered events; see spool.h for the
 * record format and the contract.
 *
 * Segments. The directory holds sealed segments and at most one segment open
 * for appends (the newest). Segments found at open are all sealed: appends go
 * to a new segment, so nothing is ever written after a torn tail. Appends go
 * through a 256 KiB buffer, written out when full, when the segment is sealed,
 * after every record under SPOOL_FSYNC_ALWAYS, and before spool_next reads
 * bytes of the write segment that are still buffered. A segment is deleted as
 * soon as every record in it is acknowledged (the write segment too: the next
 * append then starts a new one), or dropped whole by SPOOL_FULL_DROP_OLDEST.
 *
 * Ids. A record's id is (segment sequence << 32) | index of the record among
 * the valid records of its segment; it never is 0. Internally every record
 * also has an ordinal: segment base + index, increasing across segments (gaps
 * where a segment lost records are allowed). Ordinals are valid for the life
 * of one handle only; ids of a deleted segment are simply no longer found.
 *
 * Window. Per segment we keep only counts (records, acknowledged). The
 * records handed out but not all acknowledged are tracked by ordinal in a
 * ring of SPOOL_WINDOW slots starting at the oldest unacknowledged ordinal
 * (`low`): one "acknowledged" bit and the record's file offset per slot, so
 * out-of-order acks, the rewind target and skipping acknowledged records on a
 * re-read need no per-record state beyond the window. spool_next hands out no
 * record at or past low + SPOOL_WINDOW; it returns 0 until `low` moves.
 *
 * Memory: the segment table (40 bytes per segment), the window (about 520 KiB),
 * the write buffer and a read buffer of 256 KiB that grows to the largest
 * record read (at most 16 MiB plus headers). Nothing grows with the number of
 * records spooled.
 *
 * Reading. One segment is open for reading at a time, read through the read
 * buffer with pread. Each record is checked (magic, lengths against sane
 * maxima and the bytes left in the file, CRC) both at open and when read
 * back; the same resynchronisation (next magic whose record checks out) is
 * used in both places, so both see the same records with the same indexes.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/fh_log.h"

#define REC_HDR      16
#define REC_MAGIC    "FHS1"
#define MAX_TOPIC    255u
#define MAX_KEY      1024u
#define MAX_PAYLOAD  (16u << 20)
#define MAX_REC      ((size_t)REC_HDR + MAX_TOPIC + MAX_KEY + MAX_PAYLOAD)
#define WBUF_SIZE    (256u << 10)
#define RBUF_SIZE    (256u << 10)
#define SCAN_CHUNK   (64u << 10)
#define SPOOL_WINDOW 65536u /* power of two */
#define WIN_MASK     ((uint64_t)SPOOL_WINDOW - 1)
#define MIN_SEGMENT  1024u
#define MAX_SEGMENT  (1u << 30)
#define SEG_NAME_LEN 30 /* "spool-" + 20 digits + ".seg" */
#define REPORT_OFFS  8
#define NO_OFFSET    UINT64_MAX

/* Outcome of checking the bytes at one offset. */
enum {
    REC_OK = 0,
    REC_BAD_MAGIC = 1,
    REC_BAD_LEN = 2,
    REC_BAD_CRC = 4,
    REC_SHORT = 8,
    REC_IO = -1
};

typedef struct {
    uint64_t seq;
    uint64_t base;     /* ordinal of the segment's record 0 */
    uint64_t size;     /* bytes, including those still in the write buffer */
    uint32_t nrecords; /* valid records */
    uint32_t nacked;   /* acknowledged among them (always < nrecords while listed) */
} spool_seg;

/* One segment file opened for reading, and a window of its bytes. */
typedef struct {
    int fd;
    uint64_t seq; /* 0: none */
    unsigned char *buf;
    size_t cap;
    uint64_t off; /* file offset of buf[0] */
    size_t len;   /* valid bytes in buf */
} seg_reader;

/* What a scan at open skipped in one segment, for its one log line. */
typedef struct {
    uint32_t corrupt;
    unsigned reasons; /* REC_BAD_* bits */
    uint64_t offs[REPORT_OFFS];
    uint32_t truncated;
    uint64_t trunc_off;
} scan_report;

struct spool {
    spool_config cfg;
    char *dir;
    char *path; /* scratch for segment paths */
    size_t path_cap;
    int dir_fd;
    int lock_fd;

    spool_seg *segs; /* segs[head..nsegs), oldest first, sorted by seq */
    size_t head, nsegs, segs_cap;
    uint64_t next_seq;
    uint64_t next_ord;

    int wfd; /* the newest segment is open for appends when >= 0 */
    uint64_t wflushed;
    unsigned char *wbuf;
    size_t wlen;
    uint32_t wrecs; /* records in wbuf */
    bool wfailing;  /* a write failed; logged once until one succeeds */

    seg_reader rd;
    uint64_t rd_seq; /* read cursor: segment, index of the next record, its offset */
    uint32_t rd_idx;
    uint64_t rd_off;

    uint64_t low; /* oldest unacknowledged ordinal */
    uint64_t hi;  /* 1 + the highest ordinal handed out */
    uint64_t *win_off;
    uint64_t *win_bits;

    spool_stats st;
};

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static const char *seg_path(spool *s, uint64_t seq)
{
    snprintf(s->path, s->path_cap, "%s/spool-%020" PRIu64 ".seg", s->dir, seq);
    return s->path;
}

static const char *seg_name(spool *s, uint64_t seq)
{
    return seg_path(s, seq) + strlen(s->dir) + 1;
}

/* ---- the window ---------------------------------------------------------------------------- */

static bool win_test(const spool *s, uint64_t o)
{
    return (s->win_bits[(o & WIN_MASK) >> 6] >> (o & 63)) & 1;
}

static void win_set(spool *s, uint64_t o)
{
    s->win_bits[(o & WIN_MASK) >> 6] |= (uint64_t)1 << (o & 63);
}

static void win_clear(spool *s, uint64_t o)
{
    s->win_bits[(o & WIN_MASK) >> 6] &= ~((uint64_t)1 << (o & 63));
}

/* Clears the bits of ordinals [lo, hi) that lie inside the window. */
static void win_clear_range(spool *s, uint64_t lo, uint64_t hi)
{
    if (lo < s->low)
        lo = s->low;
    if (hi > s->low + SPOOL_WINDOW)
        hi = s->low + SPOOL_WINDOW;
    for (; lo < hi; lo++)
        win_clear(s, lo);
}

/* Is ordinal o (of a listed segment) acknowledged? */
static bool ord_acked(const spool *s, uint64_t o)
{
    return o < s->low || (o < s->hi && win_test(s, o));
}

/* Moves `low` to the oldest unacknowledged ordinal. Every listed segment has one. */
static void win_advance(spool *s)
{
    const spool_seg *h;

    if (s->head == s->nsegs) {
        s->low = s->next_ord;
        return;
    }
    h = &s->segs[s->head];
    if (s->low < h->base)
        s->low = h->base; /* the ordinals between belonged to deleted segments */
    while (s->low < h->base + h->nrecords && win_test(s, s->low)) {
        win_clear(s, s->low);
        s->low++;
    }
}

/* ---- the segment table --------------------------------------------------------------------- */

/* Index of the listed segment with this sequence, or SIZE_MAX. */
static size_t seg_index(const spool *s, uint64_t seq)
{
    size_t lo = s->head, hi = s->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->segs[mid].seq == seq)
            return mid;
        if (s->segs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* The oldest listed segment with a sequence above seq, or NULL. */
static spool_seg *seg_after(spool *s, uint64_t seq)
{
    size_t lo = s->head, hi = s->nsegs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->segs[mid].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nsegs ? &s->segs[lo] : NULL;
}

static spool_seg *seg_find(spool *s, uint64_t seq)
{
    size_t i = seg_index(s, seq);

    return i == SIZE_MAX ? NULL : &s->segs[i];
}

static bool seg_is_write(const spool *s, const spool_seg *seg)
{
    return s->wfd >= 0 && seg == &s->segs[s->nsegs - 1];
}

/* Appends a segment to the table. FH_ERR_NOMEM when the table cannot grow. */
static fh_err seg_push(spool *s, const spool_seg *seg)
{
    if (s->nsegs == s->segs_cap && s->head > 0) {
        memmove(s->segs, s->segs + s->head, (s->nsegs - s->head) * sizeof(*s->segs));
        s->nsegs -= s->head;
        s->head = 0;
    }
    if (s->nsegs == s->segs_cap) {
        size_t cap = s->segs_cap ? s->segs_cap * 2 : 16;
        spool_seg *n = realloc(s->segs, cap * sizeof(*n));

        if (!n)
            return FH_ERR_NOMEM;
        s->segs = n;
        s->segs_cap = cap;
    }
    s->segs[s->nsegs++] = *seg;
    s->st.segments++;
    return FH_OK;
}

static void reader_close(seg_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->seq = 0;
    r->len = 0;
}

/*
 * Removes segment i from the table and deletes its file. With `dropped`, its
 * unacknowledged records are counted as dropped; acks for its ids are ignored
 * from now on. Closes the write or read side when they were on it.
 */
static void seg_remove(spool *s, size_t i, bool dropped)
{
    spool_seg seg = s->segs[i];
    uint64_t unacked = seg.nrecords - seg.nacked;

    if (dropped) {
        s->st.dropped += unacked;
        s->st.pending_records -= unacked;
    }
    win_clear_range(s, seg.base, seg.base + seg.nrecords);
    if (seg_is_write(s, &s->segs[i])) {
        close(s->wfd);
        s->wfd = -1;
        s->wlen = 0;
        s->wrecs = 0;
    }
    if (s->rd.seq == seg.seq)
        reader_close(&s->rd);
    if (unlink(seg_path(s, seg.seq)) != 0 && errno != ENOENT)
        fh_warn("spool: unlink(\"%s\") failed: %s", s->path, strerror(errno));
    s->st.bytes -= seg.size;
    s->st.segments--;
    if (i == s->head) {
        s->head++;
    } else {
        memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(*s->segs));
        s->nsegs--;
    }
    if (s->head == s->nsegs) {
        s->head = 0;
        s->nsegs = 0;
    }
    win_advance(s);
}

/* ---- writing ------------------------------------------------------------------------------- */

static int write_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t n = writev(fd, iov, iovcnt);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static void write_failed(spool *s, const char *call, int saved)
{
    if (!s->wfailing)
        fh_error("spool: %s(\"%s\") failed: %s", call, seg_path(s, s->segs[s->nsegs - 1].seq),
                 strerror(saved));
    s->wfailing = true;
}

/*
 * Gives up the write segment after a write error: cuts it back to what was
 * written before, counts the records that were only buffered as dropped and
 * closes it, so the next append starts a new segment.
 */
static void wseg_abandon(spool *s)
{
    spool_seg *seg = &s->segs[s->nsegs - 1];
    uint64_t lost_bytes = seg->size - s->wflushed;

    /* If this fails too, the next open counts the torn tail and never appends after it. */
    if (ftruncate(s->wfd, (off_t)s->wflushed) != 0)
        fh_debug("spool: ftruncate(\"%s\") failed: %s", seg_path(s, seg->seq), strerror(errno));
    close(s->wfd);
    s->wfd = -1;
    seg->nrecords -= s->wrecs;
    seg->size = s->wflushed;
    s->st.bytes -= lost_bytes;
    s->st.dropped += s->wrecs;
    s->st.pending_records -= s->wrecs;
    s->wlen = 0;
    s->wrecs = 0;
    if (seg->nacked == seg->nrecords)
        seg_remove(s, s->nsegs - 1, false);
}

/*
 * After a failed write: with the BLOCK policy (pcap input, which waits rather
 * than drops) the segment is cut back to what was written before and the
 * records stay in the append buffer, to be written when space comes back
 * (the reader serves them from memory meanwhile); true if that worked.
 */
static bool wseg_keep(spool *s)
{
    if (s->cfg.when_full != SPOOL_FULL_BLOCK)
        return false;
    if (ftruncate(s->wfd, (off_t)s->wflushed) != 0)
        return false;
    return true;
}

/*
 * Writes the append buffer to the write segment. On failure keeps the records
 * (wseg_keep) or abandons the segment, counting them dropped.
 */
static fh_err wbuf_flush(spool *s)
{
    struct iovec iov;

    if (s->wlen == 0)
        return FH_OK;
    iov.iov_base = s->wbuf;
    iov.iov_len = s->wlen;
    if (write_all(s->wfd, &iov, 1) != 0) {
        int saved = errno;

        write_failed(s, "write", saved);
        if (!wseg_keep(s))
            wseg_abandon(s);
        errno = saved;
        return FH_ERR_IO;
    }
    s->wflushed += s->wlen;
    s->wlen = 0;
    s->wrecs = 0;
    return FH_OK;
}

/* Flushes, fsyncs per policy and closes the write segment. */
static fh_err wseg_seal(spool *s)
{
    fh_err err;

    if (s->wfd < 0)
        return FH_OK;
    err = wbuf_flush(s);
    if (err)
        return err;
    if (s->cfg.fsync != SPOOL_FSYNC_NONE && fsync(s->wfd) != 0) {
        write_failed(s, "fsync", errno);
        err = FH_ERR_IO;
    }
    close(s->wfd);
    s->wfd = -1;
    return err;
}

/* Starts a new write segment after the newest one. */
static fh_err wseg_create(spool *s)
{
    spool_seg seg = {.seq = s->next_seq, .base = s->next_ord};
    int fd;

    if (s->next_seq > UINT32_MAX) {
        fh_error("spool: %s: segment sequence exhausted", s->dir);
        return FH_ERR_LIMIT;
    }
    fd = open(seg_path(s, seg.seq), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (!s->wfailing)
            fh_error("spool: open(\"%s\") failed: %s", s->path, strerror(errno));
        s->wfailing = true;
        return FH_ERR_IO;
    }
    if (seg_push(s, &seg) != FH_OK) {
        close(fd);
        unlink(s->path);
        return FH_ERR_NOMEM;
    }
    if (s->cfg.fsync != SPOOL_FSYNC_NONE)
        (void)fsync(s->dir_fd); /* make the new name durable */
    s->next_seq++;
    s->wfd = fd;
    s->wflushed = 0;
    s->wlen = 0;
    s->wrecs = 0;
    return FH_OK;
}

/*
 * Makes room for `need` more bytes under max_bytes. FH_OK when there is room
 * (possibly after dropping the oldest segments), FH_ERR_LIMIT otherwise.
 */
static fh_err make_room(spool *s, uint64_t need)
{
    if (s->st.bytes + need <= s->cfg.max_bytes)
        return FH_OK;
    switch (s->cfg.when_full) {
    case SPOOL_FULL_DROP_OLDEST:
        while (s->st.bytes + need > s->cfg.max_bytes && s->head < s->nsegs)
            seg_remove(s, s->head, true);
        if (s->st.bytes + need <= s->cfg.max_bytes)
            return FH_OK;
        s->st.dropped++; /* larger than the whole spool */
        return FH_ERR_LIMIT;
    case SPOOL_FULL_DROP_NEWEST:
        s->st.dropped++;
        return FH_ERR_LIMIT;
    case SPOOL_FULL_BLOCK:
    default:
        return FH_ERR_LIMIT;
    }
}

/*
 * Appends one record (see spool.h). Also FH_ERR_NOMEM when a length is over
 * its ceiling (topic 255, key 1024, payload 16 MiB; nothing is counted) and
 * FH_ERR_LIMIT under DROP_OLDEST for a record larger than max_bytes (counted
 * dropped). On FH_ERR_IO the write segment is closed and the records that
 * were only buffered in it are counted dropped; the cause is logged once.
 */
fh_err spool_append(spool *s, const char *topic, size_t topic_len, const void *key, size_t key_len,
                    const void *payload, size_t payload_len)
{
    unsigned char hdr[REC_HDR];
    uint64_t need;
    spool_seg *seg;
    uint32_t crc;
    fh_err err;

    if (topic_len > MAX_TOPIC || key_len > MAX_KEY || payload_len > MAX_PAYLOAD)
        return FH_ERR_NOMEM;
    need = REC_HDR + topic_len + key_len + payload_len;
    err = make_room(s, need);
    if (err)
        return err;
    if (s->wfd >= 0) {
        seg = &s->segs[s->nsegs - 1];
        if (seg->size > 0 && seg->size + need > s->cfg.segment_bytes) {
            err = wseg_seal(s);
            if (err)
                return err;
        }
    }
    if (s->wfd < 0) {
        err = wseg_create(s);
        if (err)
            return err;
    }
    seg = &s->segs[s->nsegs - 1];

    memcpy(hdr, REC_MAGIC, 4);
    put16(hdr + 8, (uint16_t)topic_len);
    put16(hdr + 10, (uint16_t)key_len);
    put32(hdr + 12, (uint32_t)payload_len);
    /* crc32() with a NULL buffer returns the initial value: skip empty fields. */
    crc = (uint32_t)crc32(0L, hdr + 8, 8);
    if (topic_len)
        crc = (uint32_t)crc32(crc, (const Bytef *)topic, (uInt)topic_len);
    if (key_len)
        crc = (uint32_t)crc32(crc, key, (uInt)key_len);
    if (payload_len)
        crc = (uint32_t)crc32(crc, payload, (uInt)payload_len);
    put32(hdr + 4, crc);

    if (need > WBUF_SIZE - s->wlen) {
        err = wbuf_flush(s);
        if (err)
            return err;
    }
    if (need > WBUF_SIZE) {
        struct iovec iov[4] = {{hdr, REC_HDR},
                               {(void *)topic, topic_len},
                               {(void *)key, key_len},
                               {(void *)payload, payload_len}};

        if (write_all(s->wfd, iov, 4) != 0) {
            write_failed(s, "write", errno);
            if (!wseg_keep(s)) /* kept: the record was not appended, the caller retries */
                wseg_abandon(s);
            return FH_ERR_IO;
        }
        s->wflushed += need;
    } else {
        unsigned char *p = s->wbuf + s->wlen;

        memcpy(p, hdr, REC_HDR);
        if (topic_len)
            memcpy(p + REC_HDR, topic, topic_len);
        if (key_len)
            memcpy(p + REC_HDR + topic_len, key, key_len);
        if (payload_len)
            memcpy(p + REC_HDR + topic_len + key_len, payload, payload_len);
        s->wlen += need;
        s->wrecs++;
    }
    seg->nrecords++;
    seg->size += need;
    s->next_ord++;
    s->st.bytes += need;
    s->st.appended++;
    s->st.pending_records++;

    if (s->cfg.fsync == SPOOL_FSYNC_ALWAYS) {
        err = wbuf_flush(s);
        /* BLOCK keeps the record in memory (appended: the caller must not retry) */
        if (err && s->wlen)
            return FH_OK;
        if (err)
            return err;
        if (fdatasync(s->wfd) != 0) {
            write_failed(s, "fdatasync", errno);
            close(s->wfd); /* the records stay; the next append starts a new segment */
            s->wfd = -1;
            return FH_ERR_IO;
        }
    }
    if (seg->nrecords == UINT32_MAX)
        return wseg_seal(s);
    s->wfailing = false;
    return FH_OK;
}

/* ---- reading ------------------------------------------------------------------------------- */

/*
 * Makes bytes [off, off + want) of the reader's segment available at *p.
 * Returns how many are (fewer only at the end of the file), or -1 with errno.
 * Bytes still in the append buffer are served from it.
 */
static ssize_t rd_get(spool *s, seg_reader *r, uint64_t off, size_t want, const unsigned char **p)
{
    size_t got = 0;
    uint64_t disk_end = UINT64_MAX;
    bool in_wseg = s->wfd >= 0 && r->seq == s->segs[s->nsegs - 1].seq; /* the write segment */

    if (off >= r->off && off + want <= r->off + r->len) {
        *p = r->buf + (off - r->off);
        return (ssize_t)want;
    }
    if (want > r->cap) {
        size_t cap = r->cap * 2 > want ? r->cap * 2 : want;
        unsigned char *n;

        if (cap > MAX_REC)
            cap = want > MAX_REC ? want : MAX_REC;
        n = realloc(r->buf, cap);
        if (!n) {
            errno = ENOMEM;
            return -1;
        }
        r->buf = n;
        r->cap = cap;
    }
    /* Bytes of the write segment past wflushed are still in the append buffer. Live
     * capture writes them out first (a write error drops them, so nothing handed out
     * is dropped later); the BLOCK policy, which keeps buffered records through a write
     * error, copies them from there (appends never change bytes already buffered). */
    if (in_wseg && off + want > s->wflushed && s->wlen > 0 &&
        s->cfg.when_full != SPOOL_FULL_BLOCK && wbuf_flush(s) != FH_OK)
        return -1;
    if (in_wseg)
        disk_end = s->wflushed;
    r->off = off;
    r->len = 0;
    while (got < want) {
        uint64_t at = off + got;
        size_t room = r->cap - got;
        ssize_t n;

        if (at >= disk_end) {
            uint64_t in = at - disk_end;
            size_t m = in < s->wlen ? s->wlen - (size_t)in : 0;

            if (m > room)
                m = room;
            if (m == 0)
                break;
            memcpy(r->buf + got, s->wbuf + in, m);
            got += m;
            continue;
        }
        if (at + room > disk_end)
            room = (size_t)(disk_end - at);
        n = pread(r->fd, r->buf + got, room, (off_t)at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    r->len = got;
    *p = r->buf;
    return (ssize_t)(got < want ? got : want);
}

/*
 * Checks the record at `off` of a segment of `size` bytes. On REC_OK fills
 * rec (pointing into the reader's buffer) and *len; otherwise returns why not
 * (REC_SHORT: it runs past the end of the file), or REC_IO with errno.
 */
static int rec_check(spool *s, seg_reader *r, uint64_t off, uint64_t size, spool_record *rec,
                     uint64_t *len)
{
    uint64_t rem = size - off;
    const unsigned char *p;
    uint32_t tl, kl, pl;
    uint64_t total;
    ssize_t n;

    n = rd_get(s, r, off, rem < REC_HDR ? (size_t)rem : REC_HDR, &p);
    if (n < 0)
        return REC_IO;
    if (rem < REC_HDR || (size_t)n < REC_HDR) {
        size_t m = (size_t)n < 4 ? (size_t)n : 4;

        return memcmp(p, REC_MAGIC, m) == 0 ? REC_SHORT : REC_BAD_MAGIC;
    }
    if (memcmp(p, REC_MAGIC, 4) != 0)
        return REC_BAD_MAGIC;
    tl = get16(p + 8);
    kl = get16(p + 10);
    pl = get32(p + 12);
    if (tl > MAX_TOPIC || kl > MAX_KEY || pl > MAX_PAYLOAD)
        return REC_BAD_LEN;
    total = (uint64_t)REC_HDR + tl + kl + pl;
    if (total > rem)
        return REC_SHORT;
    n = rd_get(s, r, off, (size_t)total, &p);
    if (n < 0)
        return REC_IO;
    if ((uint64_t)n < total)
        return REC_SHORT;
    if ((uint32_t)crc32(0L, p + 8, (uInt)(total - 8)) != get32(p + 4))
        return REC_BAD_CRC;
    rec->topic = (const char *)p + REC_HDR;
    rec->topic_len = tl;
    rec->key = p + REC_HDR + tl;
    rec->key_len = kl;
    rec->payload = p + REC_HDR + tl + kl;
    rec->payload_len = pl;
    *len = total;
    return REC_OK;
}

/* Offset of the next "FHS1" at or after `from`, NO_OFFSET if none, or -1 on a read error. */
static int find_magic(spool *s, seg_reader *r, uint64_t from, uint64_t size, uint64_t *at)
{
    uint64_t q = from;

    while (q + 4 <= size) {
        uint64_t rem = size - q;
        const unsigned char *p, *hit;
        ssize_t n = rd_get(s, r, q, rem < SCAN_CHUNK ? (size_t)rem : SCAN_CHUNK, &p);

        if (n < 0)
            return -1;
        if (n < 4)
            break;
        hit = memmem(p, (size_t)n, REC_MAGIC, 4);
        if (hit) {
            *at = q + (uint64_t)(hit - p);
            return 0;
        }
        q += (uint64_t)n - 3;
    }
    *at = NO_OFFSET;
    return 0;
}

static void report_corrupt(scan_report *rep, uint64_t off, int why)
{
    if (!rep)
        return;
    if (rep->corrupt < REPORT_OFFS)
        rep->offs[rep->corrupt] = off;
    rep->corrupt++;
    rep->reasons |= (unsigned)why;
}

/*
 * Finds the first valid record at or after `off` in a segment of `size`
 * bytes: 1 with rec, *at and *next (the offset after it) filled, 0 when there
 * is none, -1 on a read error (errno). Bytes skipped on the way are reported
 * in rep (when not NULL): each run up to the next magic whose record checks
 * out is one corrupt record; an unusable tail that starts like a record cut
 * short is one truncated record.
 */
static int seg_scan_next(spool *s, seg_reader *r, uint64_t off, uint64_t size, spool_record *rec,
                         uint64_t *at, uint64_t *next, scan_report *rep)
{
    uint64_t len, q;
    int why;

    if (off >= size)
        return 0;
    why = rec_check(s, r, off, size, rec, &len);
    if (why == REC_IO)
        return -1;
    if (why == REC_OK) {
        *at = off;
        *next = off + len;
        return 1;
    }
    for (q = off + 1;; q++) {
        int st;

        if (find_magic(s, r, q, size, &q) != 0)
            return -1;
        if (q == NO_OFFSET)
            break;
        st = rec_check(s, r, q, size, rec, &len);
        if (st == REC_IO)
            return -1;
        if (st == REC_OK) {
            report_corrupt(rep, off, why == REC_SHORT ? REC_BAD_LEN : why);
            *at = q;
            *next = q + len;
            return 1;
        }
    }
    if (rep && why == REC_SHORT) {
        rep->truncated++;
        rep->trunc_off = off;
    } else {
        report_corrupt(rep, off, why);
    }
    return 0;
}

static int reader_open(spool *s, uint64_t seq, char *err, size_t errlen)
{
    if (s->rd.seq == seq)
        return 0;
    reader_close(&s->rd);
    s->rd.fd = open(seg_path(s, seq), O_RDONLY | O_CLOEXEC);
    if (s->rd.fd < 0) {
        snprintf(err, errlen, "spool: open(\"%s\") failed: %s", s->path, strerror(errno));
        return -1;
    }
    s->rd.seq = seq;
    s->rd.len = 0;
    s->rd.off = 0;
    return 0;
}

/*
 * The file of a segment no longer holds all the records found in it (it
 * changed on disk after open): the records from the cursor on are given up
 * and counted dropped, and the segment takes no more appends.
 */
static void seg_lost_tail(spool *s, spool_seg *seg)
{
    uint64_t o, from = seg->base + s->rd_idx, end = seg->base + seg->nrecords, lost = 0;
    uint64_t seq = seg->seq;

    fh_warn("spool: %s: records from offset %" PRIu64 " on no longer read back; dropped",
            seg_name(s, seq), s->rd_off);
    if (seg_is_write(s, seg)) {
        (void)wseg_seal(s);
        seg = seg_find(s, seq);
        if (!seg)
            return;
    }
    for (o = from; o < end; o++) {
        if (ord_acked(s, o))
            seg->nacked--;
        else
            lost++;
    }
    win_clear_range(s, from, end);
    seg->nrecords = s->rd_idx;
    s->st.dropped += lost;
    s->st.pending_records -= lost;
    if (seg->nacked == seg->nrecords)
        seg_remove(s, seg_index(s, seq), false);
}

int spool_next(spool *s, spool_record *rec, char *err, size_t errlen)
{
    for (;;) {
        spool_seg *seg = seg_find(s, s->rd_seq);
        uint64_t o, at, next;
        int found;

        if (!seg || s->rd_idx >= seg->nrecords) {
            seg = seg_after(s, s->rd_seq);
            if (!seg)
                return 0;
            s->rd_seq = seg->seq;
            s->rd_idx = 0;
            s->rd_off = 0;
            continue;
        }
        o = seg->base + s->rd_idx;
        if (o >= s->low + SPOOL_WINDOW)
            return 0; /* the window is full: wait for the oldest ack or rewind */
        if (reader_open(s, seg->seq, err, errlen) != 0)
            return -1;
        found = seg_scan_next(s, &s->rd, s->rd_off, seg->size, rec, &at, &next, NULL);
        if (found < 0) {
            snprintf(err, errlen, "spool: read(\"%s\") failed: %s", seg_path(s, seg->seq),
                     strerror(errno));
            return -1;
        }
        if (found == 0) {
            seg_lost_tail(s, seg);
            continue;
        }
        s->rd_idx++;
        s->rd_off = next;
        if (ord_acked(s, o))
            continue;
        s->win_off[o & WIN_MASK] = at;
        if (o >= s->hi)
            s->hi = o + 1;
        rec->id = seg->seq << 32 | (o - seg->base);
        s->st.read++;
        return 1;
    }
}

/* Ordinal of the record at the read cursor. */
static uint64_t cursor_ord(const spool *s)
{
    size_t i = seg_index(s, s->rd_seq);
    const spool_seg *seg;

    if (i != SIZE_MAX)
        return s->segs[i].base + s->rd_idx;
    seg = seg_after((spool *)s, s->rd_seq);
    return seg ? seg->base : s->next_ord;
}

void spool_ack(spool *s, uint64_t id)
{
    size_t i = seg_index(s, id >> 32);
    spool_seg *seg;
    uint64_t o;

    if (i == SIZE_MAX)
        return; /* deleted or dropped segment, or not an id */
    seg = &s->segs[i];
    if ((id & UINT32_MAX) >= seg->nrecords)
        return;
    o = seg->base + (id & UINT32_MAX);
    if (o < s->low || o >= s->hi || win_test(s, o))
        return; /* already acknowledged, or never handed out */
    win_set(s, o);
    seg->nacked++;
    s->st.acked++;
    s->st.pending_records--;
    if (seg->nacked == seg->nrecords)
        seg_remove(s, i, false);
    else if (o == s->low)
        win_advance(s);
}

void spool_rewind(spool *s)
{
    if (s->head == s->nsegs || s->low >= s->hi || cursor_ord(s) <= s->low)
        return;
    s->rd_seq = s->segs[s->head].seq;
    s->rd_idx = (uint32_t)(s->low - s->segs[s->head].base);
    s->rd_off = s->win_off[s->low & WIN_MASK];
}

bool spool_empty(const spool *s)
{
    return s->st.pending_records == 0;
}

bool spool_has_unread(const spool *s)
{
    uint64_t x = cursor_ord(s);
    size_t i;

    if (x < s->low)
        x = s->low;
    for (i = s->nsegs; i > s->head; i--) {
        const spool_seg *seg = &s->segs[i - 1];
        uint64_t o, end = seg->base + seg->nrecords;

        if (end <= x)
            break;
        o = seg->base > x ? seg->base : x;
        if (end > s->hi && (o > s->hi ? o : s->hi) < end)
            return true; /* never handed out */
        for (; o < end && o < s->hi; o++) {
            if (!win_test(s, o))
                return true;
        }
    }
    return false;
}

const spool_stats *spool_get_stats(const spool *s)
{
    return &s->st;
}

/* ---- open and close ------------------------------------------------------------------------ */

static bool is_seg_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    int i;

    if (strlen(name) != SEG_NAME_LEN || strncmp(name, "spool-", 6) != 0 ||
        strcmp(name + 26, ".seg") != 0)
        return false;
    for (i = 6; i < 26; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *seq = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void report_log(spool *s, uint64_t seq, const scan_report *rep, uint32_t nrecords)
{
    char line[768], why[48];
    size_t n = 0;
    uint32_t i;

    if (!rep->corrupt && !rep->truncated && nrecords)
        return;
    n += (size_t)snprintf(line + n, sizeof(line) - n, "spool: %s:", seg_name(s, seq));
    if (rep->corrupt) {
        snprintf(why, sizeof(why), "%s%s%s", rep->reasons & REC_BAD_CRC ? ", bad CRC" : "",
                 rep->reasons & REC_BAD_MAGIC ? ", bad magic" : "",
                 rep->reasons & REC_BAD_LEN ? ", bad length" : "");
        n += (size_t)snprintf(
            line + n, sizeof(line) - n, " %" PRIu32 " corrupt record%s skipped (%s) at offset%s",
            rep->corrupt, rep->corrupt > 1 ? "s" : "", why + 2, rep->corrupt > 1 ? "s" : "");
        for (i = 0; i < rep->corrupt && i < REPORT_OFFS && n < sizeof(line); i++)
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %" PRIu64, i ? "," : "",
                                  rep->offs[i]);
        if (rep->corrupt > REPORT_OFFS && n < sizeof(line))
            n += (size_t)snprintf(line + n, sizeof(line) - n, ", ...");
    }
    if (rep->truncated && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s record cut short at offset %" PRIu64,
                              rep->corrupt ? ";" : "", rep->trunc_off);
    if (!nrecords && n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, "%s no valid records, removed",
                 rep->corrupt || rep->truncated ? ";" : "");
    fh_warn("%s", line);
}

/*
 * Indexes one existing segment: counts its valid records, reports what was
 * skipped, and lists it (sealed), or deletes it when it holds no valid record.
 */
static fh_err scan_segment(spool *s, uint64_t seq, char *err, size_t errlen)
{
    seg_reader r = {.fd = -1};
    scan_report rep = {0};
    spool_seg seg = {.seq = seq, .base = s->next_ord};
    spool_record rec;
    uint64_t off = 0, at, next;
    struct stat sb;
    fh_err ret = FH_OK;

    r.fd = open(seg_path(s, seq), O_RDONLY | O_CLOEXEC);
    if (r.fd < 0 || fstat(r.fd, &sb) != 0) {
        snprintf(err, errlen, "spool: open(\"%s\") failed: %s", s->path, strerror(errno));
        ret = FH_ERR_IO;
        goto out;
    }
    r.seq = seq;
    seg.size = (uint64_t)sb.st_size;
    r.buf = malloc(RBUF_SIZE);
    if (!r.buf) {
        ret = FH_ERR_NOMEM;
        goto out;
    }
    r.cap = RBUF_SIZE;
    while (seg.nrecords < UINT32_MAX - 1) {
        int found = seg_scan_next(s, &r, off, seg.size, &rec, &at, &next, &rep);

        if (found < 0) {
            fh_warn("spool: read(\"%s\") failed: %s; keeping the %" PRIu32 " records before",
                    seg_path(s, seq), strerror(errno), seg.nrecords);
            break;
        }
        if (found == 0)
            break;
        seg.nrecords++;
        off = next;
    }
    s->st.corrupt += rep.corrupt;
    s->st.truncated += rep.truncated;
    report_log(s, seq, &rep, seg.nrecords);
    if (seg.nrecords == 0) {
        if (unlink(seg_path(s, seq)) != 0)
            fh_warn("spool: unlink(\"%s\") failed: %s", s->path, strerror(errno));
        goto out;
    }
    ret = seg_push(s, &seg);
    if (ret)
        goto out;
    s->next_ord += seg.nrecords;
    s->st.pending_records += seg.nrecords;
    s->st.bytes += seg.size;
out:
    if (r.fd >= 0)
        close(r.fd);
    free(r.buf);
    return ret;
}

/* Lists, sorts and indexes the segments already in the directory. */
static fh_err scan_dir(spool *s, char *err, size_t errlen)
{
    uint64_t *seqs = NULL, seq;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    fh_err ret = FH_OK;
    DIR *d = opendir(s->dir);

    if (!d) {
        snprintf(err, errlen, "spool: opendir(\"%s\") failed: %s", s->dir, strerror(errno));
        return FH_ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        if (!is_seg_name(de->d_name, &seq))
            continue;
        if (seq == 0 || seq > UINT32_MAX) {
            fh_warn("spool: %s/%s: sequence out of range, ignored", s->dir, de->d_name);
            continue;
        }
        if (n == cap) {
            uint64_t *m = realloc(seqs, (cap ? cap * 2 : 64) * sizeof(*m));

            if (!m) {
                ret = FH_ERR_NOMEM;
                goto out;
            }
            seqs = m;
            cap = cap ? cap * 2 : 64;
        }
        seqs[n++] = seq;
    }
    if (n > 1)
        qsort(seqs, n, sizeof(*seqs), cmp_u64);
    for (i = 0; i < n; i++) {
        ret = scan_segment(s, seqs[i], err, errlen);
        if (ret)
            goto out;
        s->next_seq = seqs[i] + 1;
    }
out:
    closedir(d);
    free(seqs);
    return ret;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int mkdir_p(char *path)
{
    char *p;

    for (p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

fh_err spool_open(spool **out, const spool_config *cfg, char *err, size_t errlen)
{
    spool *s;
    fh_err ret = FH_ERR_NOMEM;
    size_t dlen;

    *out = NULL;
    if (!cfg->dir || !*cfg->dir) {
        snprintf(err, errlen, "spool: no directory configured");
        return FH_ERR_CONFIG;
    }
    if (cfg->segment_bytes < MIN_SEGMENT || cfg->segment_bytes > MAX_SEGMENT) {
        snprintf(err, errlen, "spool: segment_bytes %" PRIu64 " is not between %u and %u",
                 cfg->segment_bytes, MIN_SEGMENT, MAX_SEGMENT);
        return FH_ERR_CONFIG;
    }
    if (cfg->max_bytes < cfg->segment_bytes) {
        snprintf(err, errlen, "spool: max_bytes %" PRIu64 " is below segment_bytes %" PRIu64,
                 cfg->max_bytes, cfg->segment_bytes);
        return FH_ERR_CONFIG;
    }
    if ((unsigned)cfg->fsync > SPOOL_FSYNC_ALWAYS || (unsigned)cfg->when_full > SPOOL_FULL_BLOCK) {
        snprintf(err, errlen, "spool: unknown fsync or full policy");
        return FH_ERR_CONFIG;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->dir_fd = s->lock_fd = s->wfd = s->rd.fd = -1;
    s->cfg = *cfg;
    dlen = strlen(cfg->dir);
    while (dlen > 1 && cfg->dir[dlen - 1] == '/')
        dlen--;
    s->dir = strndup(cfg->dir, dlen);
    s->path_cap = dlen + SEG_NAME_LEN + 16;
    s->path = malloc(s->path_cap);
    s->wbuf = malloc(WBUF_SIZE);
    s->rd.buf = malloc(RBUF_SIZE);
    s->rd.cap = RBUF_SIZE;
    s->win_off = calloc(SPOOL_WINDOW, sizeof(*s->win_off));
    s->win_bits = calloc(SPOOL_WINDOW / 64, sizeof(*s->win_bits));
    if (!s->dir || !s->path || !s->wbuf || !s->rd.buf || !s->win_off || !s->win_bits)
        goto nomem;
    s->cfg.dir = s->dir;
    s->next_seq = 1;
    s->next_ord = 1;
    s->low = s->hi = 1;

    ret = FH_ERR_IO;
    if (mkdir_p(s->dir) != 0) {
        snprintf(err, errlen, "spool: mkdir(\"%s\") failed: %s", s->dir, strerror(errno));
        goto fail;
    }
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        snprintf(err, errlen, "spool: open(\"%s\") failed: %s", s->dir, strerror(errno));
        goto fail;
    }
    /* The lock file proves the directory writable and keeps a second sensor out. */
    snprintf(s->path, s->path_cap, "%s/spool.lock", s->dir);
    s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        snprintf(err, errlen, "spool: open(\"%s\") failed: %s", s->path, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "spool: flock(\"%s\") failed: %s (another process uses this spool?)",
                 s->path, strerror(errno));
        goto fail;
    }
    ret = scan_dir(s, err, errlen);
    if (ret == FH_ERR_NOMEM)
        goto nomem;
    if (ret)
        goto fail;
    win_advance(s);
    *out = s;
    return FH_OK;
nomem:
    snprintf(err, errlen, "spool: out of memory");
    ret = FH_ERR_NOMEM;
fail:
    spool_close(s);
    return ret;
}

fh_err spool_flush(spool *s)
{
    return s->wfd >= 0 ? wbuf_flush(s) : FH_OK;
}

fh_err spool_sync(spool *s)
{
    fh_err e = wbuf_flush(s);

    if (e && s->wfd >= 0 && s->wlen)
        wseg_abandon(s); /* the last chance is gone: what was kept is dropped, counted */
    return wseg_seal(s) ? FH_ERR_IO : e;
}

void spool_close(spool *s)
{
    if (!s)
        return;
    (void)spool_sync(s);
    reader_close(&s->rd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->segs);
    free(s->win_bits);
    free(s->win_off);
    free(s->rd.buf);
    free(s->wbuf);
    free(s->path);
    free(s->dir);
    free(s);
}
