/*
 * fuzz_decode.c - libFuzzer target: the sensor's packet decoder (decode.c and
 * the IP fragment reassembly of defrag.c).
 *
 * Input: a sequence of frames, each  [1 byte link type index][2 bytes length,
 * big endian][frame], so that one input can hold a fragment train (state
 * lives in a fresh decoder per input: every crash reproduces from its input
 * alone). The link types are those decode_linktype_supported() accepts.
 *
 * Invariants checked beyond "no crash" (ASan/UBSan): decode.h's counter
 * contract (a refused frame adds one to its reason; reassembly reports, an
 * overlap or sets given up, may come with any frame); a decoded packet's
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

static bool is_report(int reason)
{
    return reason == DECODE_ERR_FRAG_OVERLAP || reason == DECODE_ERR_FRAG_MEMCAP ||
           reason == DECODE_ERR_FRAG_TIMEOUT;
}

/*
 * decode.h's contract for one frame: a refusal adds one to its reason's counter
 * and nothing else but reassembly reports; any other result adds nothing but
 * reports.
 */
static bool counters_ok(const decode_stats *before, const decode_stats *after, decode_result res,
                        decode_reason r)
{
    if (res == DECODE_ERROR && (r >= DECODE_ERR_COUNT || after->errors[r] <= before->errors[r]))
        return false;
    for (int i = 0; i < DECODE_ERR_COUNT; i++) {
        uint64_t want = res == DECODE_ERROR && i == (int)r ? 1 : 0;

        if (is_report(i) ? after->errors[i] < before->errors[i]
                         : after->errors[i] - before->errors[i] != want)
            return false;
    }
    return true;
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
        decode_stats before;

        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        /* a copy of exactly len bytes: ASan sees any read past the frame */
        frame = malloc(len ? len : 1);
        if (!frame)
            break;
        memcpy(frame, data, len);
        before = d.stats;
        res = decode_frame(&d, lt, frame, (uint32_t)len, (uint32_t)len + 4, ts, &p, &r);
        if (!counters_ok(&before, &d.stats, res, r))
            abort();
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
