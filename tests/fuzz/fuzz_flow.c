/*
 * fuzz_flow.c - libFuzzer target: one TCP conversation through the whole packet path
 * (pipeline.c with one worker): decoding, flow tracking, nDPI, reassembly, and the
 * application parsers on top of it (http.c with libhtp, files.c with libmagic, YARA
 * on streams and files with the shipped rules), events written to /dev/null.
 *
 * Input:  [1 byte server port index] then records
 *         [flags][2 bytes length, big endian][payload]
 * flags bit 0: direction (0 client -> server, 1 server -> client); bit 1: leave a hole of
 * 64 bytes before this segment (a lost packet); bit 2: send it twice (retransmission);
 * bit 3: FIN after it. The handshake is built for the conversation; sequence numbers
 * follow the payloads. Every conversation uses new ports, and the flows end with the
 * input (pipeline_end_of_input), so every crash reproduces from its input alone.
 *
 * Beyond "no crash, no leak" (ASan/UBSan/LSan): the worker's buffer memory returns
 * to zero once the flows ended (files.c and payload.c account every byte they hold).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sensor/pipeline_int.h"
#include "../../sensor/sink.h"
#include "../../sensor/yara_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t PORTS[] = {80, 8080, 445, 443, 21, 25};
#define NPORTS (sizeof(PORTS) / sizeof(PORTS[0]))

static pipeline pl;
static sensor_config cfg;
static event_sink *sink;
static yara_rules_slot *slot;
static bool ready;
static uint16_t next_port = 1024;
static uint64_t now_us = 1700000000000000ull;

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;

    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* One Ethernet/IPv4/TCP frame into the pipeline. */
static void send_seg(int dir, uint16_t cport, uint16_t sport, uint32_t seq, uint32_t ack,
                     uint8_t flags, const uint8_t *pl_data, size_t len)
{
    static uint8_t f[14 + 20 + 20 + 65535];
    uint8_t *ip = f + 14, *tcp = ip + 20;
    uint32_t cli = htonl(0x0a010a0a), srv = htonl(0x0a010a50);
    size_t tot = 20 + 20 + len;

    memset(f, 0, 14 + 40);
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, dir ? &srv : &cli, 4);
    memcpy(ip + 16, dir ? &cli : &srv, 4);
    ip[10] = ip[11] = 0;
    {
        uint16_t c = csum(ip, 20);
        ip[10] = (uint8_t)(c >> 8);
        ip[11] = (uint8_t)c;
    }
    tcp[0] = (uint8_t)((dir ? sport : cport) >> 8);
    tcp[1] = (uint8_t)(dir ? sport : cport);
    tcp[2] = (uint8_t)((dir ? cport : sport) >> 8);
    tcp[3] = (uint8_t)(dir ? cport : sport);
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    tcp[8] = (uint8_t)(ack >> 24);
    tcp[9] = (uint8_t)(ack >> 16);
    tcp[10] = (uint8_t)(ack >> 8);
    tcp[11] = (uint8_t)ack;
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14] = 0xfa;
    if (len)
        memcpy(tcp + 20, pl_data, len);
    now_us += 1000;
    pipeline_packet(&pl, 1 /* DLT_EN10MB */, f, (uint32_t)(14 + tot), (uint32_t)(14 + tot), now_us);
}

static void setup(void)
{
    char err[512];
    yara_rules *r = NULL;

    config_defaults(&cfg);
    cfg.threads = 1;
    if (sink_file_open(&sink, "/dev/null", err, sizeof(err)) != FH_OK ||
        pipeline_init(&pl, &cfg, NULL, sink, err, sizeof(err)) != FH_OK) {
        fprintf(stderr, "fuzz_flow: %s\n", err);
        abort();
    }
    if (yara_scan_init() == FH_OK &&
        yara_rules_load(FH_REPO "/rules/yara", &r, err, sizeof(err)) == FH_OK) {
        slot = yara_rules_slot_new();
        yara_rules_slot_set(slot, r); /* takes over the reference */
        if (pipeline_set_yara(&pl, slot, err, sizeof(err)) != FH_OK)
            abort();
    }
    ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t seq[2] = {1000000, 2000000};
    uint16_t cport, sport;

    if (!ready)
        setup();
    if (size < 1)
        return 0;
    sport = PORTS[data[0] % NPORTS];
    data++;
    size--;
    cport = next_port++;
    if (next_port < 1024)
        next_port = 1024;
    send_seg(0, cport, sport, seq[0]++, 0, 0x02, NULL, 0);
    send_seg(1, cport, sport, seq[1]++, seq[0], 0x12, NULL, 0);
    send_seg(0, cport, sport, seq[0], seq[1], 0x10, NULL, 0);
    while (size >= 3) {
        int dir = data[0] & 1;
        uint8_t fl = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];

        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (fl & 2)
            seq[dir] += 64;
        send_seg(dir, cport, sport, seq[dir], seq[1 - dir], 0x18, data, len);
        if (fl & 4)
            send_seg(dir, cport, sport, seq[dir], seq[1 - dir], 0x18, data, len);
        seq[dir] += (uint32_t)len;
        if (fl & 8)
            send_seg(dir, cport, sport, seq[dir]++, seq[1 - dir], 0x11, NULL, 0);
        data += len;
        size -= len;
    }
    pipeline_end_of_input(&pl);
    pipeline_flush(&pl);
    for (unsigned i = 0; i < pl.nworkers; i++)
        if (pl.workers[i].pw.buf_mem != 0) {
            fprintf(stderr, "fuzz_flow: %zu bytes of buffers still held after the flows ended\n",
                    pl.workers[i].pw.buf_mem);
            abort();
        }
    return 0;
}
