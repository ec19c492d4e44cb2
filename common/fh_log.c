/* fh_log.c - see fh_log.h. */
#include "fh_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static const char *log_prog = "fenghuo";
/* Atomic: SIGHUP changes it (log.level) while other threads log. */
static _Atomic int log_level = FH_LOG_INFO;

void fh_log_init(const char *progname, fh_log_level level)
{
    log_prog = progname;
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void fh_log_set_level(fh_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void fh_log(fh_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;

    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so concurrent writers do not interleave mid-line. */
    fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], line);
}

bool fh_log_sample(uint64_t n)
{
    while (n >= 10 && n % 10 == 0)
        n /= 10;
    return n == 1;
}
