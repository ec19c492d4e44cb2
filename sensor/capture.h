/*
 * capture.h - packet sources behind one small table of operations, so a pcap
 * file and a live interface are interchangeable for the pipeline.
 *
 *   capture_open_file()  pcap or pcapng file (libpcap reads both)
 *   capture_open_live()  live interface: promiscuous, snaplen, kernel buffer
 *   capture_run_live_set()  several live interfaces, one pcap handle each,
 *                        polled together (-i eth0 -i eth1)
 *
 * capture_run() feeds every packet to the pipeline until the source ends, a
 * stop is requested (the flag is set from a signal handler), or an error.
 * Live sources also call pipeline_tick() about every 100 ms so flows time
 * out and stats are written on an idle link.
 */
#ifndef FH_CAPTURE_H
#define FH_CAPTURE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/fh_error.h"
#include "pipeline.h"

typedef struct capture capture;

/* The read buffer of a capture file: 1 MiB, a read() system call every few thousand packets. */
#define CAPTURE_FILE_BUFFER (1u << 20)

typedef struct {
    /* Feeds packets until the end (pcap input paced to capture->rate packets/s if set). */
    fh_err (*run)(capture *c, pipeline *p, volatile sig_atomic_t *stop, char *err, size_t errlen);
    void (*stats)(capture *c, capture_stats *out);
    void (*close)(capture *c);
} capture_ops;

struct capture {
    const capture_ops *ops;
    void *pcap; /* pcap_t */
    int linktype;
    bool live;
    char name[256];
    uint64_t truncated; /* files that ended mid-record */
    uint32_t rate;      /* pcap input: packets per second, 0 = as fast as possible */
    /* Live: frames read from this handle, and pcap_stats() made 64-bit (libpcap's
     * counters are 32-bit and wrap; the differences between reads are summed). */
    uint64_t packets, bytes;
    uint64_t kernel_packets, kernel_drops, ifdrops;
    unsigned last_recv, last_drop, last_ifdrop;
    unsigned index; /* in the set: the event's in_iface */
    void *readbuf;  /* file input: the FILE's buffer (CAPTURE_FILE_BUFFER), freed after it */
};

/* Opens a pcap/pcapng file and applies the BPF filter (NULL or "" = none). */
fh_err capture_open_file(capture **out, const char *path, const char *bpf, char *err,
                         size_t errlen);

/* Opens a live interface. */
fh_err capture_open_live(capture **out, const char *iface, uint32_t snaplen, bool promisc,
                         uint32_t buffer_mb, const char *bpf, char *err, size_t errlen);

/*
 * Feeds packets from n live captures (n <= CAPTURE_MAX_IFACES) to one pipeline
 * until stop or an error: one poll() over every handle's descriptor, then up to
 * 4096 packets from each handle in turn, so a busy interface cannot starve
 * another. Stats events carry each handle's counters (capture.interfaces).
 * With n == 1 this is c->ops->run().
 */
fh_err capture_run_live_set(capture **cs, size_t n, pipeline *p, volatile sig_atomic_t *stop,
                            char *err, size_t errlen);

#endif
