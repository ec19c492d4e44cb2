/*
 * fh_log.h - minimal leveled logging to stderr.
 *
 * Messages are one line: "<prog>: <level>: <text>". Nothing on the packet path
 * logs; per-packet problems become counters (see sensor/decode.h).
 */
#ifndef FH_LOG_H
#define FH_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* FH_LOG_QUIET: nothing at all (the fuzz targets, whose inputs are mostly refused). */
typedef enum {
    FH_LOG_QUIET = -1,
    FH_LOG_ERROR = 0,
    FH_LOG_WARN,
    FH_LOG_INFO,
    FH_LOG_DEBUG
} fh_log_level;

void fh_log_init(const char *progname, fh_log_level level);
void fh_log_set_level(fh_log_level level);
void fh_log(fh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Sampling for problems that repeat (one per packet or event, never a log line
 * each): true at the 1st, 10th, 100th, 1000th, ... occurrence.
 */
bool fh_log_sample(uint64_t n);

#define fh_error(...) fh_log(FH_LOG_ERROR, __VA_ARGS__)
#define fh_warn(...)  fh_log(FH_LOG_WARN, __VA_ARGS__)
#define fh_info(...)  fh_log(FH_LOG_INFO, __VA_ARGS__)
#define fh_debug(...) fh_log(FH_LOG_DEBUG, __VA_ARGS__)

#endif
