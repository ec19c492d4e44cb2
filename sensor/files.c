/*
 * files.c - see files.h.
 */
#include "files.h"
#include "../common/fh_addr.h"

#include <magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

#define FILE_BUF_MIN  4096
#define FILE_MAX_YARA 16 /* rule names kept for the fileinfo event */
#define MAGIC_BYTES   4096

void file_open(pworker *p, fh_file *f, int dir, const char *name, size_t name_len)
{
    memset(f, 0, sizeof(*f));
    sha256_init(&f->sha);
    f->dir = (uint8_t)dir;
    f->open = true;
    /* Without YARA rules nothing reads past what typing reads: keeping more would only
     * copy the body (and grow the buffer) for nothing. */
    f->keep = p->pw.slot || p->pw.file_max_bytes < MAGIC_BYTES ? p->pw.file_max_bytes : MAGIC_BYTES;
    if (name && name_len) {
        f->name = malloc(name_len + 1);
        if (f->name) {
            memcpy(f->name, name, name_len);
            f->name[name_len] = '\0';
        }
    }
    p->pw.cnt.files++;
}

bool worker_buf_reserve(payload_worker *w, uint8_t **buf, uint32_t *cap, uint32_t len, uint32_t n,
                        uint32_t min_cap, uint32_t max)
{
    uint32_t nc = *cap ? *cap : min_cap;
    uint8_t *nb;

    if (len + n <= *cap)
        return true;
    if (len > max || n > max - len) { /* the callers bound n; never past max */
        w->cnt.memcap_drops++;
        w->cnt.memcap_drop_bytes += n;
        return false;
    }
    while (nc < len + n && nc < max)
        nc = nc > max / 2 ? max : nc * 2;
    if (nc > max)
        nc = max;
    if (w->buf_mem - *cap + nc > w->memcap || !(nb = realloc(*buf, nc))) {
        w->cnt.memcap_drops++;
        w->cnt.memcap_drop_bytes += n;
        return false;
    }
    w->buf_mem = w->buf_mem - *cap + nc;
    if (w->buf_mem > w->buf_mem_peak)
        w->buf_mem_peak = w->buf_mem;
    *buf = nb;
    *cap = nc;
    return true;
}

void file_data(pworker *p, fh_file *f, const uint8_t *data, size_t len)
{
    payload_worker *w = &p->pw;
    size_t n;

    if (!f->open || !len)
        return;
    sha256_update(&f->sha, len, data);
    f->size += len;
    w->cnt.file_bytes += len;
    if (f->len >= f->keep || f->nomem) {
        f->cut = true;
        return;
    }
    n = f->keep - f->len;
    if (n > len)
        n = len;
    else if (n < len)
        f->cut = true;
    if (!worker_buf_reserve(w, &f->buf, &f->cap, f->len, (uint32_t)n, FILE_BUF_MIN, f->keep)) {
        f->nomem = true;
        return;
    }
    memcpy(f->buf + f->len, data, n);
    f->len += (uint32_t)n;
}

void file_set_name(fh_file *f, const char *name, size_t len)
{
    char *n;

    if (!len || !(n = malloc(len + 1)))
        return;
    memcpy(n, name, len);
    n[len] = '\0';
    free(f->name);
    f->name = n;
}

void file_declared_type(fh_file *f, const char *type, size_t len)
{
    size_t i;

    for (i = 0; i < len && i + 1 < sizeof(f->declared) && type[i] != ';' && type[i] != ' '; i++)
        f->declared[i] = (char)(type[i] >= 'A' && type[i] <= 'Z' ? type[i] + 32 : type[i]);
    f->declared[i] = '\0';
}

void file_gap(fh_file *f)
{
    f->gap = true;
}

void file_discard(pworker *p, fh_file *f)
{
    if (f->cap)
        p->pw.buf_mem -= f->cap;
    free(f->buf);
    free(f->name);
    memset(f, 0, sizeof(*f));
}

typedef struct {
    pworker *p;
    flow *fl;
    fh_file *f;
    uint64_t ts_us;
    const char *source;
    char names[FILE_MAX_YARA][64];
    unsigned n;
} file_scan;

static void write_file_ref(jbuf *b, const fh_file *f, const char *source, const char *sha)
{
    jbuf_obj_open(b, "file");
    jbuf_str(b, "source", source);
    if (f->name)
        jbuf_str(b, "filename", f->name);
    if (sha)
        jbuf_str(b, "sha256", sha);
    jbuf_u64(b, "size", f->size);
    jbuf_obj_close(b);
}

static int on_file_match(const yara_match *m, void *arg)
{
    file_scan *s = arg;
    pworker *p = s->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];

    if (s->n < FILE_MAX_YARA)
        snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", m->rule);
    if (!payload_first_match(p, s->fl, m, s->f->dir)) {
        p->pw.cnt.duplicates++;
        return 0;
    }
    p->pw.cnt.matches++;
    s->fl->alerted = true;
    jbuf_reset(b);
    eve_flow_header(p, b, s->fl, s->ts_us, "yara", cid);
    yara_match_to_json(b, m, s->f->dir == FLOW_TOSERVER ? YARA_DIR_TO_SERVER : YARA_DIR_TO_CLIENT,
                       p->pw.excerpt_bytes);
    jbuf_obj_open(b, "scan");
    jbuf_u64(b, "bytes", s->f->len);
    if (s->f->cut || s->f->nomem)
        jbuf_bool(b, "truncated", true);
    jbuf_obj_close(b);
    write_file_ref(b, s->f, s->source, NULL);
    jbuf_obj_close(b);
    eve_emit(p, "yara", cid);
    return 0;
}

/* libmagic reads attacker data: no decompression, no ELF or CDF sub-parsers */
#define MAGIC_SAFE (MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_CDF)

static void *worker_magic(payload_worker *w)
{
    if (!w->magic && !w->magic_failed) {
        magic_t m = magic_open(MAGIC_NONE | MAGIC_SAFE);

        if (!m || magic_load(m, NULL) != 0) {
            if (m)
                magic_close(m);
            w->magic_failed = true;
            return NULL;
        }
        w->magic = m;
    }
    return w->magic;
}

/*
 * libmagic runs its whole database per call, a few hundred microseconds, which for every
 * picture and page of the web would cost more than the rest of the sensor (bench/README.md).
 * So two kinds of files are typed without it: the common image formats, told by their
 * signature as libmagic would (same MIME types), and printable text declared as text
 * (HTML, CSS, script, JSON, XML, form data; UTF-16 too), typed as declared. So are protocol
 * messages carried over HTTP whose declared type their first bytes bear out (OCSP requests and
 * responses: one DER SEQUENCE as long as the body; IPP: version, operation, request id,
 * an attribute group tag): libmagic knows neither and says "data" after two full passes.
 * Everything else - anything binary, anything undeclared, text declared as something else
 * - goes to libmagic, the description first for binary data: when that is libmagic's
 * "nothing matched" ("data"), the MIME type is its "nothing matched" too
 * (application/octet-stream), and the second pass is saved.
 */
static bool sniff_image(const uint8_t *d, size_t n, const char **mime, const char **desc)
{
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) {
        *mime = "image/jpeg";
        *desc = "JPEG image data";
    } else if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6))) {
        *mime = "image/gif";
        *desc = d[4] == '7' ? "GIF image data, version 87a" : "GIF image data, version 89a";
    } else if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) {
        *mime = "image/png";
        *desc = "PNG image data";
    } else if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) {
        *mime = "image/webp";
        *desc = "RIFF (little-endian) data, Web/P image";
    } else {
        return false;
    }
    return true;
}

/* Control bytes (other than white space) in the first KiB of d[0..n). */
static bool looks_binary(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n && i < 1024; i++)
        if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' && d[i] != '\r' && d[i] != '\f')
            return true;
    return false;
}

/* The UTF-16 code unit at d[i], little-endian (le) or big. */
static unsigned utf16_unit(const uint8_t *d, size_t i, bool le)
{
    return le ? (unsigned)(d[i] | d[i + 1] << 8) : (unsigned)(d[i] << 8 | d[i + 1]);
}

/*
 * UTF-16 text with its byte order mark (as Windows writes XML and HTML): past the mark, no
 * code unit in the first KiB is a control character other than white space, and none is
 * an unpaired surrogate. Both orders; an odd last byte is ignored.
 */
static bool utf16_text(const uint8_t *d, size_t n)
{
    bool le;
    size_t end = n < 1024 ? n : 1024;

    if (n < 4 || !((d[0] == 0xff && d[1] == 0xfe) || (d[0] == 0xfe && d[1] == 0xff)))
        return false;
    if (d[0] == 0xff && d[2] == 0 && d[3] == 0)
        return false; /* FF FE 00 00: the UTF-32 mark */
    le = d[0] == 0xff;
    for (size_t i = 2; i + 1 < end; i += 2) {
        unsigned u = utf16_unit(d, i, le);

        if (u < 0x20 && u != '\t' && u != '\n' && u != '\r' && u != '\f')
            return false;
        if (u >= 0xd800 && u <= 0xdbff) { /* a high surrogate: a low one must follow */
            if (i + 3 >= end)
                break; /* cut by the KiB: not judged */
            u = utf16_unit(d, i + 2, le);
            if (u < 0xdc00 || u > 0xdfff)
                return false;
            i += 2;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            return false;
        }
    }
    return true;
}

/* Declared as text (HTML, CSS, script, JSON, XML, plain) and its first bytes are text
 * (UTF-8 or another ASCII superset, or UTF-16 with a byte order mark). */
static bool declared_text(const fh_file *f, size_t n)
{
    static const char *const types[] = {"text/",
                                        "application/javascript",
                                        "application/x-javascript",
                                        "application/ecmascript",
                                        "application/json",
                                        "application/xml",
                                        "application/xhtml+xml",
                                        "application/rss+xml",
                                        "application/atom+xml",
                                        "application/x-www-form-urlencoded"};
    bool text = false;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !text; i++)
        text = !strncmp(f->declared, types[i], strlen(types[i]));
    if (!text)
        return false;
    if (utf16_text(f->buf, n))
        return true;
    if (looks_binary(f->buf, n))
        return false; /* control bytes: not the text it claims to be */
    return n > 0 && (f->buf[0] != 'M' || n < 2 || f->buf[1] != 'Z');
}

/* A DER SEQUENCE as long as the whole file (len bytes), of which d[0..n) is the start. */
static bool der_sequence(const uint8_t *d, size_t n, uint64_t len)
{
    uint64_t l = 0;
    size_t h = 2;

    if (n < 2 || d[0] != 0x30)
        return false;
    if (d[1] < 0x80) {
        l = d[1];
    } else {
        size_t k = d[1] & 0x7f;
        if (k == 0 || k > 4 || n < 2 + k || d[2] == 0)
            return false; /* indefinite, too long, or not the shortest form: not DER */
        for (size_t i = 0; i < k; i++)
            l = l << 8 | d[2 + i];
        if (l < 0x80)
            return false;
        h += k;
    }
    return h + l == len;
}

/* Declared as a protocol message type, and its first bytes are that message's. */
static bool declared_message(const fh_file *f, size_t n)
{
    const uint8_t *d = f->buf;

    if (!strcmp(f->declared, "application/ocsp-request") ||
        !strcmp(f->declared, "application/ocsp-response"))
        return der_sequence(d, n, f->size);
    if (!strcmp(f->declared, "application/ipp")) /* RFC 8010: version, id, request id, tag */
        return n >= 9 && (d[0] == 1 || d[0] == 2) && d[1] <= 2 && d[8] >= 0x01 && d[8] <= 0x0f;
    return false;
}

/* One libmagic pass over the first n bytes of f: the description (MAGIC_NONE) or the MIME
 * type (MAGIC_MIME_TYPE); libmagic's buffer, valid until its next call. */
static const char *magic_pass(magic_t m, int what, const fh_file *f, size_t n)
{
    magic_setflags(m, what | MAGIC_SAFE);
    return magic_buffer(m, f->buf, n);
}

static void file_type(payload_worker *w, const fh_file *f, jbuf *b)
{
    magic_t m;
    const char *desc, *mime;
    size_t n = f->len < MAGIC_BYTES ? f->len : MAGIC_BYTES;

    if (!n)
        return;
    if (sniff_image(f->buf, n, &mime, &desc)) {
        w->cnt.files_sniffed++;
        jbuf_str(b, "magic", desc);
        jbuf_str(b, "mimetype", mime);
        return;
    }
    if (declared_text(f, n) || declared_message(f, n)) {
        /* text or a message that says what it is: the declared type, no libmagic call */
        w->cnt.files_sniffed++;
        jbuf_str(b, "mimetype", f->declared);
        return;
    }
    if (!(m = worker_magic(w)))
        return;
    if (looks_binary(f->buf, n)) {
        /* the description first: "data" means nothing matched, and so is the MIME type */
        char *d;
        desc = magic_pass(m, MAGIC_NONE, f, n);
        if (!desc)
            return;
        if (!strcmp(desc, "data")) {
            jbuf_str(b, "mimetype", "application/octet-stream");
            jbuf_str(b, "magic", "data");
            return;
        }
        if (!(d = strdup(desc))) /* the next call reuses libmagic's buffer */
            return;
        mime = magic_pass(m, MAGIC_MIME_TYPE, f, n);
        if (mime) {
            jbuf_str(b, "mimetype", mime);
            if (strncmp(mime, "text/", 5) != 0)
                jbuf_str(b, "magic", d);
        }
        free(d);
        return;
    }
    /* text: the MIME type; the description (one more pass) for what is not text */
    mime = magic_pass(m, MAGIC_MIME_TYPE, f, n);
    if (!mime)
        return;
    jbuf_str(b, "mimetype", mime);
    if (!strncmp(mime, "text/", 5))
        return;
    desc = magic_pass(m, MAGIC_NONE, f, n);
    if (desc)
        jbuf_str(b, "magic", desc);
}

void file_close(pworker *p, flow *fl, fh_file *f, uint64_t ts_us, const char *source,
                uint64_t tx_id, bool complete, file_ctx_writer ctx, void *arg)
{
    payload_worker *w = &p->pw;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN], sha[2 * SHA256_DIGEST_SIZE + 1];
    uint8_t digest[SHA256_DIGEST_SIZE];
    file_scan s = {.p = p, .fl = fl, .f = f, .ts_us = ts_us, .source = source};
    yara_scanner *sc;

    if (!f->open)
        return;
    sha256_digest(&f->sha, sizeof(digest), digest);
    fh_hex(sha, digest, sizeof(digest));
    if (f->len && w->slot && (sc = payload_scanner(w))) {
        w->cnt.file_scans++;
        payload_scan(w, sc, f->buf, f->len, on_file_match, &s);
    }
    jbuf_reset(b);
    eve_flow_header(p, b, fl, ts_us, "fileinfo", cid);
    if (ctx)
        ctx(b, arg);
    jbuf_obj_open(b, "fileinfo");
    jbuf_str(b, "source", source);
    if (f->name)
        jbuf_str(b, "filename", f->name);
    jbuf_str(b, "direction", f->dir == FLOW_TOSERVER ? "to_server" : "to_client");
    jbuf_u64(b, "size", f->size);
    if (!f->gap)
        jbuf_str(b, "sha256", sha);
    jbuf_bool(b, "gaps", f->gap);
    jbuf_str(b, "state", complete && !f->gap ? "CLOSED" : "TRUNCATED");
    jbuf_bool(b, "stored", false);
    jbuf_u64(b, "tx_id", tx_id);
    file_type(w, f, b);
    jbuf_u64(b, "scanned_bytes", f->len);
    if (s.n) {
        jbuf_arr_open(b, "yara");
        for (unsigned i = 0; i < s.n; i++)
            jbuf_str(b, NULL, s.names[i]);
        jbuf_arr_close(b);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "fileinfo", cid);
    file_discard(p, f);
}
