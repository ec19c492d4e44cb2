/*
 * common.c - see console.h.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "../correlator/audit.h"
#include "../correlator/event.h"
#include "../correlator/incident.h"
#include "console.h"

bool console_now(int64_t *now)
{
    const char *t = getenv("FENGHUO_TEST_NOW");
    struct timespec ts;

    if (t && *t) {
        if (!event_parse_time(t, strlen(t), now)) {
            fh_error("FENGHUO_TEST_NOW: expected a time such as 2026-03-02T09:00:00+08:00, "
                     "got '%s'",
                     t);
            return false;
        }
        fh_warn("FENGHUO_TEST_NOW is set: the console acts at %s, not at the wall clock", t);
        return true;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    *now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return true;
}

const char *console_actor(const char *given)
{
    const char *u;
    struct passwd *pw;

    if (given && *given)
        return given;
    if ((u = getenv("SUDO_USER")) && *u)
        return u;
    if ((u = getenv("USER")) && *u)
        return u;
    pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "unknown";
}

bool console_open(console_ctx *c)
{
    store_opts so = {.path = c->db ? c->db : DEFAULT_DB, .busy_timeout_ms = 30000};
    char err[1024];

    if (!console_now(&c->now))
        return false;
    c->actor = console_actor(c->actor);
    if (!c->policy_path)
        c->policy_path = DEFAULT_POLICY;
    if (!c->calendar_dir)
        c->calendar_dir = DEFAULT_CALENDAR_DIR;
    if (deadline_policy_load(&c->policy, c->policy_path, err, sizeof(err)) != FH_OK ||
        calendar_load(&c->cal, c->calendar_dir, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        console_close(c);
        return false;
    }
    c->have_policy = true;
    if (store_open(&c->st, &so, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        console_close(c);
        return false;
    }
    /* alerts the correlators opened since: their deadlines, from the policy */
    if (incident_stamp_deadlines(c->st, &c->policy, c->cal, &c->stamped) != FH_OK) {
        fh_error("stamping deadlines: %s", store_errmsg(c->st));
        console_close(c);
        return false;
    }
    return true;
}

void console_close(console_ctx *c)
{
    store_close(c->st);
    c->st = NULL;
    if (c->have_policy)
        deadline_policy_free(&c->policy);
    c->have_policy = false;
    calendar_free(c->cal);
    c->cal = NULL;
}

void console_time_text(int64_t ms, char *out, size_t len)
{
    int64_t msd, min;
    char d[11];

    if (!ms) {
        snprintf(out, len, "%s", "");
        return;
    }
    cal_format(deadline_local_date(ms, &msd), d);
    min = msd / 60000;
    snprintf(out, len, "%s %02d:%02d", d, (int)(min / 60), (int)(min % 60));
}

void console_deadline_text(int64_t ms, char *out, size_t len)
{
    if (ms)
        deadline_local_text(ms, out, len);
    else
        snprintf(out, len, "%s", "");
}

int console_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int w = 0;

    while (*p) {
        uint32_t c;
        int n;

        if (*p < 0x80)
            c = *p, n = 1;
        else if ((*p & 0xE0) == 0xC0)
            c = *p & 0x1F, n = 2;
        else if ((*p & 0xF0) == 0xE0)
            c = *p & 0x0F, n = 3;
        else
            c = *p & 0x07, n = 4;
        for (int k = 1; k < n; k++)
            c = p[k] ? (c << 6) | (p[k] & 0x3F) : c, n = p[k] ? n : k;
        p += n;
        /* East Asian wide: Hangul Jamo, CJK, Hangul, compatibility and full-width forms */
        w += (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
                     (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
                     (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
                     (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x20000 && c <= 0x3FFFD)
                 ? 2
                 : 1;
    }
    return w;
}

void console_pad(FILE *f, const char *s, int width)
{
    fputs(s, f);
    for (int w = console_width(s); w < width; w++)
        fputc(' ', f);
}

void console_duration_text(int64_t ms, char *out, size_t len)
{
    int64_t min = ms / 60000, h = min / 60, d = h / 24;

    if (d)
        snprintf(out, len, "%lld d %lld h", (long long)d, (long long)(h % 24));
    else
        snprintf(out, len, "%lld h %lld min", (long long)h, (long long)(min % 60));
}

bool console_parse_time(const char *s, bool end_of_day, int64_t *ms)
{
    cal_date d;

    if (cal_parse(s, &d)) {
        int64_t days = cal_days(d) + (end_of_day ? 1 : 0);

        *ms = (days * 86400 - DEADLINE_TZ_HOURS * 3600) * 1000;
        return true;
    }
    return event_parse_time(s, strlen(s), ms);
}

void console_audit(console_ctx *c, const char *action, const char *object, const char *outcome,
                   const char *detail)
{
    audit_entry e = {.at = c->now,
                     .actor = c->actor,
                     .source = "cli",
                     .action = action,
                     .object = object,
                     .outcome = outcome,
                     .detail = detail};

    if (audit_append(c->st, &e, NULL) != FH_OK)
        fh_error("audit: %s", store_errmsg(c->st));
}
