/*
 * console.h - what the console's commands share: the store, the deadline policy
 * and calendar, who acts, and what time it is.
 *
 * Time: every command runs at the wall clock, except when FENGHUO_TEST_NOW
 * holds a time (2026-03-02T09:00:00+08:00): then moves are recorded at that
 * instant. It exists for tests and demonstrations with fixed histories; the
 * console warns on stderr whenever it is set.
 */
#ifndef FH_CONSOLE_H
#define FH_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../correlator/calendar.h"
#include "../correlator/deadline.h"
#include "../correlator/store.h"

#define DEFAULT_CALENDAR_DIR "rules/calendar"
#define DEFAULT_POLICY       "rules/rectification.yaml"
#define DEFAULT_DB           "fenghuo.db"

typedef struct {
    const char *db, *policy_path, *calendar_dir, *actor;
    int64_t now;
    store *st;
    deadline_policy policy;
    bool have_policy;
    calendar *cal;
    uint32_t stamped; /* deadlines console_open stamped on new incidents */
} console_ctx;

/* The wall clock, or FENGHUO_TEST_NOW; false (and a message) when that is malformed. */
bool console_now(int64_t *now);
/* One audit record of a command-line action (source "cli", actor c->actor). */
void console_audit(console_ctx *c, const char *action, const char *object, const char *outcome,
                   const char *detail);

/* Who acts: --actor, else SUDO_USER, USER, or the uid's name. */
const char *console_actor(const char *given);

/*
 * Opens the store, loads the policy and the calendar, and stamps the policy's
 * deadline on incidents that have none yet; false after saying why.
 */
bool console_open(console_ctx *c);
void console_close(console_ctx *c);

/* UTC ms as "YYYY-MM-DD HH:MM" in Asia/Shanghai; "" for 0 (not set). */
void console_time_text(int64_t ms, char *out, size_t len);
/* A deadline: as console_time_text, but midnight is "the day before 24:00". */
void console_deadline_text(int64_t ms, char *out, size_t len);
/* Terminal columns of UTF-8 text (CJK counts 2); s padded to width columns. */
int console_width(const char *s);
void console_pad(FILE *f, const char *s, int width);
/* A duration as "3 d 4 h" / "5 h 12 min". */
void console_duration_text(int64_t ms, char *out, size_t len);
/*
 * A date (end of that day, Asia/Shanghai, when end_of_day) or a time with zone;
 * false when neither.
 */
bool console_parse_time(const char *s, bool end_of_day, int64_t *ms);

int cmd_move(int argc, char **argv);
int cmd_assign(int argc, char **argv);
int cmd_notice(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_routes(int argc, char **argv);

#endif
