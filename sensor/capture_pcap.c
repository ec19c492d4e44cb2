/*
 * capture_pcap.c - file and live capture with libpcap; see capture.h.
 */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define LIVE_TIMEOUT_MS 100

static uint64_t tv_us(const struct timeval *tv)
{
    return (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
}

/* Pacing of pcap input (capture.replay_rate), across all files of one run. */
static struct timespec pace_start;
static bool pace_started;
static uint64_t pace_n;

static fh_err apply_filter(capture *c, const char *bpf, char *err, size_t errlen)
{
    struct bpf_program prog;

    if (!bpf || !*bpf)
        return FH_OK;
    if (pcap_compile(c->pcap, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errlen, "bad BPF filter '%s': %s", bpf, pcap_geterr(c->pcap));
        return FH_ERR_CAPTURE;
    }
    if (pcap_setfilter(c->pcap, &prog) != 0) {
        snprintf(err, errlen, "cannot apply BPF filter '%s': %s", bpf, pcap_geterr(c->pcap));
        pcap_freecode(&prog);
        return FH_ERR_CAPTURE;
    }
    pcap_freecode(&prog);
    return FH_OK;
}

static void any_close(capture *c);

/* Checks the link type, applies the filter, hands the capture out (or closes it). */
static fh_err finish_open(capture **out, capture *c, const char *bpf, char *err, size_t errlen)
{
    fh_err e;

    c->linktype = pcap_datalink(c->pcap);
    if (!decode_linktype_supported(c->linktype)) {
        const char *n = pcap_datalink_val_to_name(c->linktype);

        snprintf(err, errlen, "%s '%s': unsupported link type %d (%s)",
                 c->live ? "interface" : "pcap", c->name, c->linktype, n ? n : "unknown");
        any_close(c);
        return FH_ERR_CAPTURE;
    }
    e = apply_filter(c, bpf, err, errlen);
    if (e) {
        any_close(c);
        return e;
    }
    *out = c;
    return FH_OK;
}

static fh_err file_run(capture *c, pipeline *p, volatile sig_atomic_t *stop, char *err,
                       size_t errlen)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    struct timespec now;
    int rc;

    if (c->rate && !pace_started) {
        clock_gettime(CLOCK_MONOTONIC, &pace_start);
        pace_started = true;
    }
    while (!*stop) {
        rc = pcap_next_ex(c->pcap, &h, &data);
        if (rc == 1) {
            pipeline_packet(p, c->linktype, data, h->caplen, h->len, tv_us(&h->ts));
            if (c->rate) {
                /* Paced replay (demos, fault tests): sleep until packet n is due. The
                 * count runs across all input files. */
                uint64_t due_ns = ++pace_n * 1000000000ull / c->rate, el_ns;

                clock_gettime(CLOCK_MONOTONIC, &now);
                el_ns = (uint64_t)(now.tv_sec - pace_start.tv_sec) * 1000000000ull +
                        (uint64_t)(now.tv_nsec - pace_start.tv_nsec);
                if (due_ns > el_ns) {
                    struct timespec d = {(time_t)((due_ns - el_ns) / 1000000000ull),
                                         (long)((due_ns - el_ns) % 1000000000ull)};
                    nanosleep(&d, NULL);
                }
                pipeline_poll(p); /* also wakes the workers: a slow replay is not batched */
            }
            continue;
        }
        if (rc == PCAP_ERROR_BREAK)
            break; /* end of file */
        /* A file cut mid-record (copied while being written, power loss):
         * keep everything read so far, report it once. */
        snprintf(err, errlen, "%s: %s (processed the packets before it)", c->name,
                 pcap_geterr(c->pcap));
        c->truncated++;
        p->cap.truncated_files++;
        return FH_ERR_IO;
    }
    return FH_OK;
}

static void file_stats(capture *c, capture_stats *out)
{
    (void)c;
    out->has_kernel = false;
}

static void any_close(capture *c)
{
    if (c->pcap)
        pcap_close(c->pcap);
    free(c->readbuf); /* after pcap_close(), which closes the FILE using it */
    free(c);
}

static const capture_ops file_ops = {file_run, file_stats, any_close};

/*
 * A capture file is opened here rather than by pcap_open_offline(), to give its FILE a
 * buffer of CAPTURE_FILE_BUFFER bytes: stdio's default is the file system's block size
 * (4 KiB), one read() system call every few packets: 5 % of the sensor's time on the
 * bench capture (bench/README.md). The kernel is told the file is read in order (more
 * read-ahead).
 */
static pcap_t *open_file(capture *c, const char *path, char *perr)
{
    pcap_t *p;
    FILE *fp;

    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(perr, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
        return NULL;
    }
    (void)posix_fadvise(fileno(fp), 0, 0, POSIX_FADV_SEQUENTIAL);
    c->readbuf = malloc(CAPTURE_FILE_BUFFER);
    if (c->readbuf && setvbuf(fp, c->readbuf, _IOFBF, CAPTURE_FILE_BUFFER) != 0) {
        free(c->readbuf);
        c->readbuf = NULL;
    }
    p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, perr);
    if (!p)
        fclose(fp); /* libpcap leaves the FILE open when it fails */
    return p;
}

fh_err capture_open_file(capture **out, const char *path, const char *bpf, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    capture *c;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return FH_ERR_NOMEM;
    c->ops = &file_ops;
    snprintf(c->name, sizeof(c->name), "%s", path);
    c->pcap = open_file(c, path, perr);
    if (!c->pcap) {
        snprintf(err, errlen, "cannot read pcap '%s': %s", path, perr);
        free(c->readbuf);
        free(c);
        return FH_ERR_CAPTURE;
    }
    /* libpcap reads a file with two fread() calls a packet, each taking the FILE's lock;
     * only the capture thread ever reads it */
    if (pcap_file(c->pcap))
        __fsetlocking(pcap_file(c->pcap), FSETLOCKING_BYCALLER);
    return finish_open(out, c, bpf, err, errlen);
}

/* ---- live ------------------------------------------------------------------ */

typedef struct {
    pipeline *p;
    capture *c;
} live_arg;

static void live_cb(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    live_arg *a = (live_arg *)user;

    a->c->packets++;
    a->c->bytes += h->len;
    pipeline_packet(a->p, a->c->linktype, data, h->caplen, h->len, tv_us(&h->ts));
}

/*
 * Reads pcap_stats() into the handle's 64-bit totals. libpcap's counters are
 * u_int and wrap (on Linux it sums the kernel's, which reset on every read):
 * the unsigned difference since the previous read is added.
 */
static void live_read_stats(capture *c)
{
    struct pcap_stat st;

    if (pcap_stats(c->pcap, &st) != 0)
        return;
    c->kernel_packets += (unsigned)(st.ps_recv - c->last_recv);
    c->kernel_drops += (unsigned)(st.ps_drop - c->last_drop);
    c->ifdrops += (unsigned)(st.ps_ifdrop - c->last_ifdrop);
    c->last_recv = st.ps_recv;
    c->last_drop = st.ps_drop;
    c->last_ifdrop = st.ps_ifdrop;
}

typedef struct {
    capture **cs;
    size_t n;
} live_set;

/* Before each stats event: every handle's counters, and their sums. */
static void live_refresh(void *arg, capture_stats *out)
{
    live_set *ls = arg;

    out->has_kernel = true;
    out->kernel_packets = out->kernel_drops = out->ifdrops = 0;
    out->n_ifaces = (unsigned)ls->n;
    for (size_t i = 0; i < ls->n; i++) {
        capture *c = ls->cs[i];
        capture_iface_stats *s = &out->ifaces[i];

        live_read_stats(c);
        s->packets = c->packets;
        s->bytes = c->bytes;
        s->kernel_packets = c->kernel_packets;
        s->kernel_drops = c->kernel_drops;
        s->ifdrops = c->ifdrops;
        out->kernel_packets += c->kernel_packets;
        out->kernel_drops += c->kernel_drops;
        out->ifdrops += c->ifdrops;
    }
}

fh_err capture_run_live_set(capture **cs, size_t n, pipeline *p, volatile sig_atomic_t *stop,
                            char *err, size_t errlen)
{
    struct pollfd pfd[CAPTURE_MAX_IFACES];
    live_set ls = {cs, n};
    struct timeval now;
    fh_err e = FH_OK;
    int rc, got;

    if (n == 0 || n > CAPTURE_MAX_IFACES) {
        snprintf(err, errlen, "%zu interfaces: expected 1 to %d", n, CAPTURE_MAX_IFACES);
        return FH_ERR_CAPTURE;
    }
    p->cap.n_ifaces = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        cs[i]->index = (unsigned)i;
        snprintf(p->cap.ifaces[i].name, sizeof(p->cap.ifaces[i].name), "%.63s", cs[i]->name);
        pfd[i].fd = pcap_get_selectable_fd(cs[i]->pcap);
        pfd[i].events = POLLIN;
    }
    p->refresh_capture = live_refresh;
    p->refresh_arg = &ls;
    while (!*stop && !e) {
        /* The captures are non-blocking: on Linux (TPACKET_V3) the read timeout
         * does not fire on an idle link, so wait in poll() and stay responsive
         * to signals (poll returns EINTR) and to the clock. Every handle is then
         * read (at most 4096 packets each) whether or not poll flagged it, so a
         * block retired by its timeout is not left waiting. */
        if (poll(pfd, (nfds_t)n, LIVE_TIMEOUT_MS) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll() on the capture interfaces failed: %s", strerror(errno));
            e = FH_ERR_CAPTURE;
            break;
        }
        got = 0;
        for (size_t i = 0; i < n && !*stop; i++) {
            live_arg a = {p, cs[i]};

            p->iface = (int)i;
            rc = pcap_dispatch(cs[i]->pcap, 4096, live_cb, (u_char *)&a);
            if (rc > 0)
                got += rc;
            if (rc == PCAP_ERROR_BREAK)
                continue;
            if (rc < 0) {
                snprintf(err, errlen, "capture on '%s' failed: %s", cs[i]->name,
                         pcap_geterr(cs[i]->pcap));
                e = FH_ERR_CAPTURE;
                break;
            }
        }
        p->iface = -1;
        /* Idle link: write out the buffered events (a file sink's buffer would
         * otherwise hold a quiet link's events until it fills). */
        if (!got && !e)
            pipeline_flush(p);
        gettimeofday(&now, NULL);
        pipeline_tick(p, tv_us(&now));
    }
    p->iface = -1;
    /* The final stats event (pipeline_end_of_input) still reads the counters:
     * the caller clears refresh_capture before the handles are closed, but ls
     * lives on this stack, so take a last reading now and detach. */
    live_refresh(&ls, &p->cap);
    p->refresh_capture = NULL;
    p->refresh_arg = NULL;
    return e;
}

static fh_err live_run(capture *c, pipeline *p, volatile sig_atomic_t *stop, char *err,
                       size_t errlen)
{
    return capture_run_live_set(&c, 1, p, stop, err, errlen);
}

static void live_stats(capture *c, capture_stats *out)
{
    live_read_stats(c);
    out->has_kernel = true;
    out->kernel_packets = c->kernel_packets;
    out->kernel_drops = c->kernel_drops;
    out->ifdrops = c->ifdrops;
}

static const capture_ops live_ops = {live_run, live_stats, any_close};

fh_err capture_open_live(capture **out, const char *iface, uint32_t snaplen, bool promisc,
                         uint32_t buffer_mb, const char *bpf, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    capture *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return FH_ERR_NOMEM;
    c->ops = &live_ops;
    c->live = true;
    snprintf(c->name, sizeof(c->name), "%s", iface);
    c->pcap = pcap_create(iface, perr);
    if (!c->pcap) {
        snprintf(err, errlen, "cannot open interface '%s': %s", iface, perr);
        free(c);
        return FH_ERR_CAPTURE;
    }
    pcap_set_snaplen(c->pcap, (int)snaplen);
    pcap_set_promisc(c->pcap, promisc);
    pcap_set_timeout(c->pcap, LIVE_TIMEOUT_MS);
    pcap_set_buffer_size(c->pcap, (int)(buffer_mb << 20));
    rc = pcap_activate(c->pcap);
    if (rc < 0) {
        snprintf(err, errlen, "cannot capture on '%s': %s", iface,
                 rc == PCAP_ERROR ? pcap_geterr(c->pcap) : pcap_statustostr(rc));
        any_close(c);
        return FH_ERR_CAPTURE;
    }
    if (pcap_setnonblock(c->pcap, 1, perr) != 0 || pcap_get_selectable_fd(c->pcap) < 0) {
        snprintf(err, errlen, "cannot poll interface '%s': %s", iface, perr);
        any_close(c);
        return FH_ERR_CAPTURE;
    }
    return finish_open(out, c, bpf, err, errlen);
}
