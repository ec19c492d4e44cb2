/*
 * fuzz_decode.c - libFuzzer target: the sensor's packet decoder (decode.c and
 * the IP fragment reassembly of defrag.c).
 *
 * Input: a sequence of frames, each  [1 byte link type index][2 bytes length,
 * big endian][frame], so that one input can hold a fragment train (state
 * lives in a fresh decoder per input: every crash reproduces from its input
 * alone). The link types are those decode_linktype_supported() accepts.
 *
 * Invariants checked beyond "no crash" (ASan/UBSan): a refused frame adds
 * exactly one to the error counters; any other frame adds none, except the
 * reassembly's own reports (an overlap is counted while the fragment is still
 * stored, defrag.h; sets evicted for memory or time); a decoded packet's
 * payload and L3 pointers stay inside the frame or the reassembly buffer the
 * decoder owns (ASan checks the reads below).
 */
#include <pcap/dlt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sensor/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int LINKTYPES[] = {
    DLT_EN10MB,     DLT_RAW, 12 /* LINKTYPE_RAW */, DLT_NULL, DLT_LOOP, DLT_LINUX_SLL,
    276 /* SLL2 */, DLT_PPP, 228 /* IPV4 */,        229 /* IPV6 */};
#define NLINK (sizeof(LINKTYPES) / sizeof(LINKTYPES[0]))

/* Refusals counted (reassembly reports excluded when `reports` is false). */
static uint64_t errors(const decoder *d, bool reports)
{
    uint64_t n = 0;

    for (int i = 0; i < DECODE_ERR_COUNT; i++)
        if (reports || (i != DECODE_ERR_FRAG_OVERLAP && i != DECODE_ERR_FRAG_MEMCAP &&
                        i != DECODE_ERR_FRAG_TIMEOUT))
            n += d->stats.errors[i];
    return n;
}

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decoder d;
    uint64_t ts = 1000000;

    decoder_init(&d, 256 * 1024, 64, 30);
    while (size >= 3) {
        int lt = LINKTYPES[data[0] % NLINK];
        size_t len = ((size_t)data[1] << 8) | data[2];
        uint8_t *frame;
        decode_pkt p;
        decode_reason r;
        decode_result res;
        uint64_t before, before_all;

        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        /* a copy of exactly len bytes: ASan sees any read past the frame */
        frame = malloc(len ? len : 1);
        if (!frame)
            break;
        memcpy(frame, data, len);
        before = errors(&d, false);
        before_all = errors(&d, true);
        res = decode_frame(&d, lt, frame, (uint32_t)len, (uint32_t)len + 4, ts, &p, &r);
        if (res == DECODE_ERROR) {
            if (errors(&d, true) != before_all + 1)
                abort();
        } else if (errors(&d, false) != before) {
            abort();
        }
        if (res == DECODE_OK) {
            uint8_t x = 0;

            for (uint32_t i = 0; i < p.payload_len; i++)
                x ^= p.payload[i];
            for (uint32_t i = 0; i < p.l3_len; i++)
                x ^= p.l3[i];
            sink = x;
        }
        free(frame);
        data += len;
        size -= len;
        ts += 1000;
        decoder_expire(&d, ts);
    }
    decoder_free(&d);
    return 0;
}
