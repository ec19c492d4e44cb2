/*
 * fuzz_event.c - libFuzzer target: the correlator's event path. Each input is
 * NDJSON (one event per line), run through a fresh stream (stream.h) over the shipped
 * level-3 pack and example inventory (loaded once): JSON decoding, asset
 * enrichment, the rule index and every matcher, the clock policy, correlation
 * windows and the alert book with its group keys. No store, no output file.
 * FH_REPO (set by the Makefile) is the repository root.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/fh_log.h"
#include "../../correlator/engine.h"
#include "../../correlator/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static engine *eng;

static engine *load(void)
{
    static const engine_config cfg = {FH_REPO "/rules/level3", NULL,
                                      FH_REPO "/rules/assets.example.yaml"};
    char err[1024];
    engine *e;

    if (engine_open(&e, &cfg, err, sizeof(err)) != FH_OK || e->rs.nerrors)
        abort(); /* the shipped pack must load whole */
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream pl;
    char err[256];
    const char *p = (const char *)data, *end = p + size;

    if (!eng) {
        fh_log_init("fuzz_event", FH_LOG_QUIET);
        eng = load();
    }
    if (stream_init(&pl, eng, NULL, NULL, err, sizeof(err)) != FH_OK)
        abort();
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* an exact-size copy: ASan sees a read past the event */
        char *line = malloc(n ? n : 1);

        if (!line)
            break;
        memcpy(line, p, n);
        stream_event(&pl, line, n);
        free(line);
        p += n + 1;
    }
    stream_commit(&pl, err, sizeof(err));
    stream_free(&pl);
    return 0;
}
