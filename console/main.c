/*
 * main.c - fenghuo-console command line: the people's side of the platform
 * (rectification, reports, the HTTP API and the dashboard). It shares the
 * correlator's code and store (the logic lives in correlator/incident.h,
 * rate.h, deadline.h, calendar.h; the commands in incidents.c and report.c).
 *
 *   fenghuo-console calendar YEAR              the year: holidays, make-up working days,
 *                                              working days, the notice they come from
 *   fenghuo-console calendar --add DATE N      the date N working days after DATE
 *   fenghuo-console deadline --severity S --first-seen TIME [--department D] [--zone Z]
 *                                              the rectification deadline of an incident
 *   fenghuo-console move STATE ID...           move incidents (bulk; one result per id)
 *   fenghuo-console assign ID...               assign a department and/or an assignee
 *   fenghuo-console notice ID ...              an official notice (通报) sets the deadline
 *   fenghuo-console show ID | list             an incident and its history; the incidents
 *   fenghuo-console sweep                      deadlines, verification by traffic, risk expiry
 *   fenghuo-console report --from --to ...     the timely rectification rate (json, csv, pdf)
 *
 * A year without a calendar file has no official answer: Monday to Friday is
 * used and the output says so loudly (stderr, and "guessed" on stdout).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"
#include "../correlator/alerts.h"
#include "../correlator/calendar.h"
#include "../correlator/deadline.h"
#include "../correlator/event.h"
#include "console.h"

#include <sodium.h>

static const char *const WEEKDAY[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const WEEKDAY_ZH[7] = {"周一", "周二", "周三", "周四", "周五", "周六", "周日"};

static void usage(FILE *f)
{
    fprintf(
        f, "Usage: fenghuo-console COMMAND [OPTIONS]\n"
           "\n"
           "Fenghuo (烽火) console: rectification of incidents (整改).\n"
           "烽火控制台：安全事件整改。\n"
           "\n"
           "  calendar [--dir DIR] YEAR\n"
           "                       the official working-day calendar of YEAR (Asia/Shanghai):\n"
           "                       public holidays (法定节假日), make-up working days (调休上班)\n"
           "  calendar [--dir DIR] --add YYYY-MM-DD N\n"
           "                       the date N working days after it (that day does not count)\n"
           "  deadline --severity S --first-seen TIME [--department D] [--zone Z]\n"
           "                       the rectification deadline of an incident (整改时限)\n"
           "  move STATE ID... [--comment C] [--duplicate-of ID]\n"
           "       [--reason R --approver A --expires DATE]\n"
           "                       move incidents: acknowledged, rectifying, rectified, closed,\n"
           "                       reopened, false_positive, duplicate, accepted_risk; ID - reads\n"
           "                       ids from stdin; one result line per incident\n"
           "  assign ID... [--department D] [--assignee A] [--comment C]\n"
           "  notice ID --number N --issuer I --date YYYY-MM-DD --deadline DATE|TIME\n"
           "                       an official notice (通报) sets the incident's deadline\n"
           "  show ID              an incident, its deadline, verification and history\n"
           "  list [--status S] [--department D] [--overdue]\n"
           "  serve [--listen ADDR:PORT] [--tls-cert PEM --tls-key PEM] [--static DIR]\n"
           "                       the HTTP(S) JSON API under /api/v1, /metrics and the\n"
           "                       dashboard's files; prints the first administrator's\n"
           "                       one-time password when there is no user yet\n"
           "  user add NAME --role ROLE [--departments 'A,B']   (the password on stdin)\n"
           "  audit verify         check the audit log's hash chain; exit 1 when broken\n"
           "  routes               the API's routes and the roles allowed on each\n"
           "  audit prune [--keep-days N]   drop records older than N days (>= 180)\n"
           "  retention [--keep-days N]     drop ended incidents, sensor stats and audit\n"
           "                       records older than N days (>= 180, the default; run daily)\n"
           "  sweep                stamp deadlines, close verified incidents, expire risks\n"
           "                       (run it every few minutes, e.g. by a systemd timer)\n"
           "  report --from YYYY-MM-DD --to YYYY-MM-DD [--by department|segment|severity|\n"
           "         clause|category] [--format json|csv|pdf|text] [--output FILE] [--as-of TIME]\n"
           "                       the timely rectification rate (及时整改率) of the incidents\n"
           "                       whose deadline falls in the period\n"
           "\n"
           "Store commands take --db PATH|URI (an SQLite file, default fenghuo.db, or\n"
           "postgresql://user@host/db), --policy FILE (default\n"
           "rules/rectification.yaml), --calendar-dir DIR (default rules/calendar) and\n"
           "--actor NAME (default the login name); moves are recorded with who and when.\n"
           "Deadlines count from the alert's first_seen.\n"
           "\n"
           "A year without a calendar file is counted Monday to Friday and flagged\n"
           "(\"guessed\"): there is no official answer for it.\n"
           "Exit status: 0 on success, 1 on a runtime error, 2 on a usage error.\n");
}

static void warn_guessed(const calendar *c, cal_date from, cal_date to)
{
    for (int y = from.y; y <= to.y; y++)
        if (!calendar_has_year(c, y))
            fh_warn(
                "no calendar for %d (no rules/calendar/%d.yaml): Monday to Friday was "
                "used; the result may be wrong / %d 年无节假日数据，按周一至周五计算，结果可能有误",
                y, y, y);
}

static int print_year(const calendar *c, int year)
{
    bool guessed = false;
    int n = calendar_count_year(c, year, &guessed);
    int64_t d = cal_days((cal_date){year, 1, 1}), end = cal_days((cal_date){year + 1, 1, 1});
    char ds[11];

    printf("%d: %d working days (工作日)%s\n", year, n, guessed ? ", guessed" : "");
    if (guessed) {
        warn_guessed(c, (cal_date){year, 1, 1}, (cal_date){year, 1, 1});
        return 0;
    }
    printf("source (来源): %s\n", calendar_source(c, year));
    printf("holidays (法定节假日):\n");
    for (int64_t x = d; x < end; x++) {
        const char *h;
        cal_date day = cal_from_days(x);

        if (!calendar_is_workday(c, day, NULL, &h) && h) {
            cal_format(day, ds);
            printf("  %s %s %s  %s\n", ds, WEEKDAY[cal_weekday(day)], WEEKDAY_ZH[cal_weekday(day)],
                   h);
        }
    }
    printf("make-up working days (调休上班):\n");
    for (int64_t x = d; x < end; x++) {
        const char *h;
        cal_date day = cal_from_days(x);

        if (calendar_is_workday(c, day, NULL, &h) && h) {
            cal_format(day, ds);
            printf("  %s %s %s  %s\n", ds, WEEKDAY[cal_weekday(day)], WEEKDAY_ZH[cal_weekday(day)],
                   h);
        }
    }
    return 0;
}

static int cmd_calendar(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"add", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = DEFAULT_CALENDAR_DIR;
    bool add = false;
    calendar *c = NULL;
    char err[1024];
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'a':
            add = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != (add ? 2 : 1)) {
        usage(stderr);
        return 2;
    }
    if (calendar_load(&c, dir, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        return 1;
    }
    if (add) {
        cal_date from, to;
        char *end;
        long n = strtol(argv[optind + 1], &end, 10);
        bool guessed = false;
        char ds[11];

        if (!cal_parse(argv[optind], &from) || *end || n < 1 || n > 3650) {
            fh_error("--add expects a date YYYY-MM-DD and a number of working days from 1 to "
                     "3650, got '%s' '%s'",
                     argv[optind], argv[optind + 1]);
            calendar_free(c);
            return 2;
        }
        to = calendar_add_workdays(c, from, (int)n, &guessed);
        cal_format(to, ds);
        printf("%s%s\n", ds, guessed ? " guessed" : "");
        if (guessed)
            warn_guessed(c, from, to);
        rc = 0;
    } else {
        char *end;
        long year = strtol(argv[optind], &end, 10);

        if (*end || year < 1970 || year > 9999) {
            fh_error("expected a year from 1970 to 9999, got '%s'", argv[optind]);
            calendar_free(c);
            return 2;
        }
        rc = print_year(c, (int)year);
    }
    calendar_free(c);
    return rc;
}

/* UTC ms as "YYYY-MM-DDTHH:MM:SS+08:00" (Asia/Shanghai). */
static void cst_text(int64_t ms, char *out, size_t len)
{
    int64_t msd, sec;
    char d[11];

    cal_format(deadline_local_date(ms, &msd), d);
    sec = msd / 1000;
    snprintf(out, len, "%sT%02d:%02d:%02d+08:00", d, (int)(sec / 3600), (int)(sec / 60 % 60),
             (int)(sec % 60));
}

static int cmd_deadline(int argc, char **argv)
{
    static const struct option opts[] = {{"severity", required_argument, NULL, 's'},
                                         {"first-seen", required_argument, NULL, 'f'},
                                         {"department", required_argument, NULL, 'D'},
                                         {"zone", required_argument, NULL, 'z'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = DEFAULT_CALENDAR_DIR, *policy = DEFAULT_POLICY, *sev = NULL, *first = NULL;
    const char *dept = NULL, *zone = NULL;
    deadline_policy p;
    calendar *c = NULL;
    char err[1024], due[40], rule[40];
    int64_t first_ms;
    int opt, level;
    deadline d;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sev = optarg;
            break;
        case 'f':
            first = optarg;
            break;
        case 'D':
            dept = optarg;
            break;
        case 'z':
            zone = optarg;
            break;
        case 'p':
            policy = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !sev || !first) {
        usage(stderr);
        return 2;
    }
    if ((level = alert_level_parse(sev)) < 0) {
        fh_error("--severity expects informational, low, medium, high or critical, got '%s'", sev);
        return 2;
    }
    if (!event_parse_time(first, strlen(first), &first_ms)) {
        fh_error("--first-seen expects a time such as 2026-02-12T10:00:00+08:00, got '%s'", first);
        return 2;
    }
    if (calendar_load(&c, dir, err, sizeof(err)) != FH_OK ||
        deadline_policy_load(&p, policy, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        calendar_free(c);
        return 1;
    }
    d = deadline_compute(&p, c, first_ms, level, dept, zone);
    deadline_rule_text(deadline_rule_for(&p, level, dept, zone), rule, sizeof(rule));
    cst_text(d.due_ms, due, sizeof(due));
    if (deadline_rule_for(&p, level, dept, zone)->working_days) {
        char last[11];
        /* a working-day deadline is 24:00 local: the end of the day before */
        cal_format(deadline_local_date(d.due_ms - 1, NULL), last);
        printf("due %s (end of %s, %s from first_seen)%s\n", due, last, rule,
               d.guessed ? " guessed" : "");
    } else {
        printf("due %s (%s from first_seen)%s\n", due, rule, d.guessed ? " guessed" : "");
    }
    if (d.containment_ms) {
        cst_text(d.containment_ms, due, sizeof(due));
        printf("containment %s\n", due);
    }
    if (d.guessed)
        fh_warn("the deadline runs into a year without calendar data: counted Monday to "
                "Friday / 截止日期所在年度无节假日数据，按周一至周五计算");
    deadline_policy_free(&p);
    calendar_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    fh_log_init("fenghuo-console", FH_LOG_INFO);
    if (sodium_init() < 0) {
        fh_error("libsodium cannot start");
        return 1;
    }
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("fenghuo-console %s (%s)\n", FH_VERSION, FH_GIT_REV);
        return 0;
    }
    if (!strcmp(argv[1], "calendar"))
        return cmd_calendar(argc - 1, argv + 1);
    if (!strcmp(argv[1], "deadline"))
        return cmd_deadline(argc - 1, argv + 1);
    {
        static const struct {
            const char *name;
            int (*fn)(int, char **);
        } cmds[] = {{"move", cmd_move},     {"assign", cmd_assign}, {"notice", cmd_notice},
                    {"show", cmd_show},     {"list", cmd_list},     {"sweep", cmd_sweep},
                    {"report", cmd_report}, {"serve", cmd_serve},   {"user", cmd_user},
                    {"audit", cmd_audit},   {"routes", cmd_routes}, {"retention", cmd_retention}};

        for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
            if (!strcmp(argv[1], cmds[k].name))
                return cmds[k].fn(argc - 1, argv + 1);
    }
    fh_error("unknown command '%s' (see --help)", argv[1]);
    return 2;
}
