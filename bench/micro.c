/*
 * micro.c - micro-benchmarks of three building blocks, printed, never asserted
 * (they were unit tests that could not fail; `make bench` runs them):
 *
 *   spool        append 200,000 records of 1 KiB, replay and acknowledge them,
 *                append 2,000 with fsync=always (sensor/spool.c)
 *   assets       longest-prefix lookups in the example inventory (correlator/assets.c)
 *   event_decode the correlator's decoder over the rule-pack scenario events with the
 *                fields of the level-3 pack (correlator/event_json.cpp)
 *
 * Usage: micro REPO_ROOT WORK_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "../correlator/assets.h"
#include "../correlator/engine.h"
#include "../sensor/spool.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_spool(const char *work)
{
    char dir[4096], err[256];
    spool_config c = {.dir = dir, .max_bytes = 1ull << 30, .segment_bytes = 64 << 20,
                      .fsync = SPOOL_FSYNC_SEGMENT, .when_full = SPOOL_FULL_DROP_OLDEST};
    static unsigned char payload[1024 - 16 - 14 - 7];
    const uint64_t count = 200000, synced = 2000;
    uint64_t ids[1000], n;
    double t0, t_app, t_rd, t_sync;
    spool *s;
    spool_record r;

    snprintf(dir, sizeof(dir), "%s/micro-spool", work);
    memset(payload, 'x', sizeof(payload));
    if (spool_open(&s, &c, err, sizeof(err)) != FH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    t0 = now_s();
    for (n = 0; n < count; n++)
        if (spool_append(s, "t", 1, "k", 1, payload, sizeof(payload)) != FH_OK)
            return 1;
    t_app = now_s() - t0;
    spool_close(s);
    if (spool_open(&s, &c, err, sizeof(err)) != FH_OK)
        return 1;
    t0 = now_s();
    for (n = 0; n < count; n++) {
        if (spool_next(s, &r, err, sizeof(err)) != 1)
            return fprintf(stderr, "replay: %s\n", err), 1;
        ids[n % 1000] = r.id;
        if (n % 1000 == 999) /* delivery reports arrive per batch */
            for (int i = 0; i < 1000; i++)
                spool_ack(s, ids[i]);
    }
    t_rd = now_s() - t0;
    spool_close(s);
    c.fsync = SPOOL_FSYNC_ALWAYS;
    if (spool_open(&s, &c, err, sizeof(err)) != FH_OK)
        return 1;
    t0 = now_s();
    for (n = 0; n < synced; n++)
        spool_append(s, "t", 1, "k", 1, payload, sizeof(payload));
    t_sync = now_s() - t0;
    spool_close(s);
    printf("  %-40s %10.0f records/s (%.0f MiB/s)\n", "spool append, 1 KiB records",
           (double)count / t_app, (double)count / 1024 / t_app);
    printf("  %-40s %10.0f records/s\n", "spool replay + acknowledge", (double)count / t_rd);
    printf("  %-40s %10.0f records/s\n", "spool append, fsync=always", (double)synced / t_sync);
    return 0;
}

static int bench_assets(const char *repo)
{
    enum { N = 2000000, NADDR = 1024 };
    static uint8_t addrs[NADDR][4];
    char path[4096], err[512];
    uint32_t x = 12345;
    volatile uintptr_t sink = 0;
    assets *a;
    double t0, t1;

    snprintf(path, sizeof(path), "%s/rules/assets.example.yaml", repo);
    if (assets_load(&a, path, err, sizeof(err)) != FH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    for (int i = 0; i < NADDR; i++) {
        x = x * 1103515245u + 12345u;
        if (i % 2)
            x = (x & 0x00FFFFFF) | 0x0A000000; /* half inside 10/8 */
        addrs[i][0] = (uint8_t)(x >> 24);
        addrs[i][1] = (uint8_t)(x >> 16);
        addrs[i][2] = (uint8_t)(x >> 8);
        addrs[i][3] = (uint8_t)x;
    }
    t0 = now_s();
    for (int i = 0; i < N; i++)
        sink += (uintptr_t)assets_lookup(a, AF_INET, addrs[i & (NADDR - 1)]);
    t1 = now_s();
    printf("  %-40s %10.1f M lookups/s\n", "assets_lookup (inventory prefixes)", N / (t1 - t0) / 1e6);
    (void)sink;
    assets_free(a);
    return 0;
}

static int bench_decode(const char *repo)
{
    engine_config cfg;
    char rules[4096], inv[4096], path[4200], err[1024];
    char **ev = NULL, *line = NULL;
    size_t *len = NULL, nev = 0, cap = 0, bytes = 0;
    engine *e;
    event_view v;
    uint64_t n = 0;
    double t0, t1;

    snprintf(rules, sizeof(rules), "%s/rules/level3", repo);
    snprintf(inv, sizeof(inv), "%s/rules/assets.example.yaml", repo);
    cfg = (engine_config){rules, NULL, inv};
    if (engine_open(&e, &cfg, err, sizeof(err)) != FH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    for (int k = 1; k <= 28; k++) {
        FILE *f;
        ssize_t got;
        size_t lcap = 0;

        snprintf(path, sizeof(path), "%s/tests/rules/L3-%02d/events.ndjson", repo, k);
        if (!(f = fopen(path, "r")))
            continue;
        while ((got = getline(&line, &lcap, f)) > 1) {
            if (nev == cap) {
                cap = cap ? cap * 2 : 1024;
                ev = realloc(ev, cap * sizeof(*ev));
                len = realloc(len, cap * sizeof(*len));
            }
            ev[nev] = strndup(line, (size_t)got - 1);
            len[nev] = (size_t)got - 1;
            bytes += len[nev++];
        }
        fclose(f);
        free(line);
        line = NULL;
    }
    if (!nev)
        return 1;
    t0 = now_s();
    do {
        for (size_t i = 0; i < nev; i++)
            if (event_decode(e->dec, ev[i], len[i], &v, err, sizeof(err)) != FH_OK)
                return fprintf(stderr, "decode: %s\n", err), 1;
        n += nev;
        t1 = now_s();
    } while (t1 - t0 < 1.0);
    printf("  %-40s %10.0f events/s (%.0f MB/s; %zu scenario events, %u fields)\n",
           "event_decode, level-3 pack fields", (double)n / (t1 - t0),
           (double)n / (t1 - t0) * (double)bytes / (double)nev / 1e6, nev, e->ft.n);
    for (size_t i = 0; i < nev; i++)
        free(ev[i]);
    free(ev);
    free(len);
    engine_free(e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s REPO_ROOT WORK_DIR\n", argv[0]);
        return 2;
    }
    fh_log_init("micro", FH_LOG_ERROR);
    printf("\nMicro-benchmarks (bench/micro.c):\n");
    return bench_spool(argv[2]) | bench_assets(argv[1]) | bench_decode(argv[1]);
}
