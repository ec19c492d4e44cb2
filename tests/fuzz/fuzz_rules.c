/*
 * fuzz_rules.c - libFuzzer target: the rule loader. Each input is a rule file
 * (YAML, any number of documents, detection and correlation rules) loaded
 * with the shipped placeholder lists and example inventory, as the correlator
 * loads its rules: YAML parsing, modifiers and values, conditions, correlation
 * references, |expand, the rule index. A few events then go through what
 * compiled. Errors are expected; crashes, leaks and hangs are not.
 * FH_REPO (set by the Makefile) is the repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fh_log.h"
#include "../../correlator/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], path[300];

static const char *const EVENTS[] = {
    "{\"timestamp\":\"2026-11-20T02:00:00.000000+0000\",\"event_type\":\"flow\","
    "\"src_ip\":\"172.16.20.5\",\"dest_ip\":\"10.99.0.10\",\"dest_port\":23,\"proto\":\"TCP\","
    "\"app_proto\":\"telnet\",\"flow\":{\"bytes_toserver\":100},\"sensor\":{\"id\":\"s1\"}}",
    "{\"timestamp\":\"2026-11-20T02:00:01.000000+0000\",\"event_type\":\"dns\","
    "\"src_ip\":\"10.20.1.20\",\"dest_ip\":\"8.8.8.8\",\"dns\":{\"rrname\":\"a.example\"}}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    engine_config cfg = {dir, FH_REPO "/rules/lists", FH_REPO "/rules/assets.example.yaml"};
    char err[1024];
    engine *e;
    FILE *f;

    if (!dir[0]) {
        fh_log_init("fuzz_rules", FH_LOG_QUIET);
        snprintf(dir, sizeof(dir), "%s/fh-fuzz-rules-%d",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
        mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/fuzz.yml", dir);
    }
    if (!(f = fopen(path, "wb")))
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    if (engine_open(&e, &cfg, err, sizeof(err)) == FH_OK) {
        for (size_t i = 0; i < sizeof(EVENTS) / sizeof(EVENTS[0]); i++)
            engine_process(e, EVENTS[i], strlen(EVENTS[i]), NULL, NULL, NULL, err, sizeof(err));
        engine_free(e);
    }
    return 0;
}
