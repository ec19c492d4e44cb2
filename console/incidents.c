/*
 * incidents.c - the console's rectification commands: move, assign, notice,
 * show, list, sweep (console.h; the logic is correlator/incident.h).
 *
 * Bulk: move and assign take several ids, or "-" to read ids from stdin (one
 * per line), and print one result line per incident:
 *     ID<TAB>ok<TAB>new -> acknowledged
 *     ID<TAB>refused<TAB>an incident that is closed cannot become rectifying (closed is final)
 * Exit status: 0 when every incident moved, 1 when any was refused or failed,
 * 2 on a usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"
#include "../correlator/alerts.h"
#include "../correlator/audit.h"
#include "../correlator/incident.h"
#include "console.h"

enum {
    O_DB = 1000,
    O_POLICY,
    O_CALDIR,
    O_ACTOR,
    O_COMMENT,
    O_DUP,
    O_REASON,
    O_APPROVER,
    O_EXPIRES,
    O_DEPT,
    O_ASSIGNEE,
    O_NUMBER,
    O_ISSUER,
    O_DATE,
    O_DEADLINE,
    O_STATUS,
    O_OVERDUE,
    O_JSON
};

#define COMMON_OPTS                                                                                \
    {"db", required_argument, NULL, O_DB}, {"policy", required_argument, NULL, O_POLICY},          \
        {"calendar-dir", required_argument, NULL, O_CALDIR},                                       \
        {"actor", required_argument, NULL, O_ACTOR},                                               \
    {                                                                                              \
        "comment", required_argument, NULL, O_COMMENT                                              \
    }

typedef struct {
    console_ctx c;
    const char *comment, *dup, *reason, *approver, *expires, *dept, *assignee;
    const char *number, *issuer, *date, *deadline, *status;
    bool overdue, json;
} args;

static const struct option OPTS[] = {COMMON_OPTS,
                                     {"duplicate-of", required_argument, NULL, O_DUP},
                                     {"reason", required_argument, NULL, O_REASON},
                                     {"approver", required_argument, NULL, O_APPROVER},
                                     {"expires", required_argument, NULL, O_EXPIRES},
                                     {"department", required_argument, NULL, O_DEPT},
                                     {"assignee", required_argument, NULL, O_ASSIGNEE},
                                     {"number", required_argument, NULL, O_NUMBER},
                                     {"issuer", required_argument, NULL, O_ISSUER},
                                     {"date", required_argument, NULL, O_DATE},
                                     {"deadline", required_argument, NULL, O_DEADLINE},
                                     {"status", required_argument, NULL, O_STATUS},
                                     {"overdue", no_argument, NULL, O_OVERDUE},
                                     {"json", no_argument, NULL, O_JSON},
                                     {NULL, 0, NULL, 0}};

/* Parses the options every command shares; false on a usage error (said). */
static bool parse(int argc, char **argv, args *a)
{
    int opt;

    memset(a, 0, sizeof(*a));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", OPTS, NULL)) != -1) {
        switch (opt) {
        case O_DB:
            a->c.db = optarg;
            break;
        case O_POLICY:
            a->c.policy_path = optarg;
            break;
        case O_CALDIR:
            a->c.calendar_dir = optarg;
            break;
        case O_ACTOR:
            a->c.actor = optarg;
            break;
        case O_COMMENT:
            a->comment = optarg;
            break;
        case O_DUP:
            a->dup = optarg;
            break;
        case O_REASON:
            a->reason = optarg;
            break;
        case O_APPROVER:
            a->approver = optarg;
            break;
        case O_EXPIRES:
            a->expires = optarg;
            break;
        case O_DEPT:
            a->dept = optarg;
            break;
        case O_ASSIGNEE:
            a->assignee = optarg;
            break;
        case O_NUMBER:
            a->number = optarg;
            break;
        case O_ISSUER:
            a->issuer = optarg;
            break;
        case O_DATE:
            a->date = optarg;
            break;
        case O_DEADLINE:
            a->deadline = optarg;
            break;
        case O_STATUS:
            a->status = optarg;
            break;
        case O_OVERDUE:
            a->overdue = true;
            break;
        case O_JSON:
            a->json = true;
            break;
        default:
            fh_error("%s: see fenghuo-console --help", argv[0]);
            return false;
        }
    }
    return true;
}

/* The ids of argv[from..]: "-" reads them from stdin. Returns the count; *ids is malloc'd. */
static size_t collect_ids(int argc, char **argv, int from, char ***ids)
{
    size_t n = 0, cap = 0;
    char **v = NULL;

    for (int k = from; k < argc; k++) {
        char line[256];

        if (strcmp(argv[k], "-") != 0) {
            if (n == cap && !(v = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v))))
                return 0;
            v[n++] = strdup(argv[k]);
            continue;
        }
        while (fgets(line, sizeof(line), stdin)) {
            line[strcspn(line, "\r\n \t")] = '\0';
            if (!line[0])
                continue;
            if (n == cap && !(v = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v))))
                return 0;
            v[n++] = strdup(line);
        }
    }
    *ids = v;
    return n;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(ids[k]);
    free(ids);
}

/* One incident of a bulk command: FH_OK and what was done, or why it was refused. */
typedef fh_err (*bulk_fn)(args *a, void *ctx, const char *id, char *done, size_t donelen, char *why,
                          size_t whylen);

/* One audit record of a command-line change (source "cli"). */
static void audit_cli(args *a, const char *action, const char *id, bool ok, const char *detail)
{
    console_audit(&a->c, action, id, ok ? "ok" : "refused", detail);
}

/* Runs fn on every id of argv[from..] ("-": stdin), one result line and one audit
 * record (action) each. */
static int bulk(args *a, int argc, char **argv, int from, bulk_fn fn, void *ctx, const char *action)
{
    char **ids = NULL, why[512], done[128];
    size_t n = collect_ids(argc, argv, from, &ids);
    int rc = 0;

    for (size_t k = 0; k < n; k++) {
        done[0] = why[0] = '\0';
        if (fn(a, ctx, ids[k], done, sizeof(done), why, sizeof(why)) == FH_OK) {
            printf("%s\tok\t%s\n", ids[k], done);
            audit_cli(a, action, ids[k], true, done);
        } else {
            printf("%s\trefused\t%s\n", ids[k], why);
            audit_cli(a, action, ids[k], false, why);
            rc = 1;
        }
    }
    if (!n) {
        fh_error("no incident id given");
        rc = 2;
    }
    free_ids(ids, n);
    return rc;
}

static fh_err move_one(args *a, void *ctx, const char *id, char *done, size_t donelen, char *why,
                       size_t whylen)
{
    const incident_move *m = ctx;
    incident_state from;
    fh_err err = incident_transition(a->c.st, id, m, &from, why, whylen);

    if (!err)
        snprintf(done, donelen, "%s -> %s", incident_state_name(from), incident_state_name(m->to));
    return err;
}

int cmd_move(int argc, char **argv)
{
    args a;
    incident_move m;
    int to, rc;

    if (!parse(argc, argv, &a))
        return 2;
    if (argc - optind < 2) {
        fh_error("usage: fenghuo-console move STATE ID... (or - to read ids from stdin)");
        return 2;
    }
    if ((to = incident_state_parse(argv[optind])) < 0) {
        fh_error("unknown state '%s' (new, acknowledged, rectifying, rectified, closed, "
                 "reopened, false_positive, duplicate, accepted_risk)",
                 argv[optind]);
        return 2;
    }
    memset(&m, 0, sizeof(m));
    m.to = (incident_state)to;
    m.comment = a.comment;
    m.duplicate_of = a.dup;
    m.risk_reason = a.reason;
    m.risk_approver = a.approver;
    if (a.expires && !console_parse_time(a.expires, true, &m.risk_expires)) {
        fh_error("--expires expects a date YYYY-MM-DD or a time, got '%s'", a.expires);
        return 2;
    }
    if (!console_open(&a.c))
        return 1;
    m.actor = a.c.actor;
    m.now = a.c.now;
    m.policy = &a.c.policy;
    m.cal = a.c.cal;
    rc = bulk(&a, argc, argv, optind + 1, move_one, &m, "incident.transition");
    console_close(&a.c);
    return rc;
}

static fh_err assign_one(args *a, void *ctx, const char *id, char *done, size_t donelen, char *why,
                         size_t whylen)
{
    (void)ctx;
    snprintf(done, donelen, "assigned");
    return incident_assign(a->c.st, id, a->dept, a->assignee, a->c.actor, a->comment, a->c.now, why,
                           whylen);
}

int cmd_assign(int argc, char **argv)
{
    args a;
    int rc;

    if (!parse(argc, argv, &a))
        return 2;
    if (argc - optind < 1 || (!a.dept && !a.assignee)) {
        fh_error("usage: fenghuo-console assign ID... --department D and/or --assignee A");
        return 2;
    }
    if (!console_open(&a.c))
        return 1;
    rc = bulk(&a, argc, argv, optind, assign_one, NULL, "incident.assign");
    console_close(&a.c);
    return rc;
}

int cmd_notice(int argc, char **argv)
{
    args a;
    incident_notice nt;
    char why[512];
    int rc = 0;

    if (!parse(argc, argv, &a))
        return 2;
    memset(&nt, 0, sizeof(nt));
    if (argc - optind != 1 || !a.number || !a.issuer || !a.date || !a.deadline) {
        fh_error("usage: fenghuo-console notice ID --number N --issuer I --date YYYY-MM-DD "
                 "--deadline DATE|TIME");
        return 2;
    }
    if (!console_parse_time(a.deadline, true, &nt.deadline)) {
        fh_error("--deadline expects a date YYYY-MM-DD (end of that day, Asia/Shanghai) or a "
                 "time, got '%s'",
                 a.deadline);
        return 2;
    }
    {
        cal_date d;

        if (!cal_parse(a.date, &d)) {
            fh_error("--date expects the notice's date YYYY-MM-DD, got '%s'", a.date);
            return 2;
        }
    }
    nt.number = a.number;
    nt.issuer = a.issuer;
    nt.date = a.date;
    if (!console_open(&a.c))
        return 1;
    if (incident_set_notice(a.c.st, argv[optind], &nt, a.c.actor, a.comment, a.c.now, why,
                            sizeof(why)) != FH_OK) {
        fh_error("%s", why);
        audit_cli(&a, "incident.notice", argv[optind], false, why);
        rc = 1;
    } else {
        char due[32];

        console_deadline_text(nt.deadline, due, sizeof(due));
        printf("%s\tok\tnotice %s: deadline %s\n", argv[optind], a.number, due);
        audit_cli(&a, "incident.notice", argv[optind], true, a.number);
    }
    console_close(&a.c);
    return rc;
}

static void print_record(void *ctx, const incident_record *r)
{
    char at[32];

    (void)ctx;
    console_time_text(r->at, at, sizeof(at));
    printf("  %2u  %s  %-13s %s -> %s  by %s", r->seq, at, r->kind, r->from, r->to, r->actor);
    if (r->detail)
        printf("  [%s]", r->detail);
    if (r->comment)
        printf("  \"%s\"", r->comment);
    printf("\n");
}

static void line(const char *label, const char *value)
{
    if (value) {
        console_pad(stdout, label, 24);
        printf("%s\n", value);
    }
}

static void line_time(const char *label, int64_t ms)
{
    char t[32];

    if (ms) {
        console_time_text(ms, t, sizeof(t));
        line(label, t);
    }
}

int cmd_show(int argc, char **argv)
{
    args a;
    incident i;
    char buf[64];
    int rc = 0;

    if (!parse(argc, argv, &a))
        return 2;
    if (argc - optind != 1) {
        fh_error("usage: fenghuo-console show ID");
        return 2;
    }
    if (!console_open(&a.c))
        return 1;
    if (incident_get(a.c.st, argv[optind], &i) != FH_OK) {
        fh_error("no incident %s in %s", argv[optind], a.c.db ? a.c.db : DEFAULT_DB);
        console_close(&a.c);
        return 1;
    }
    line("incident (事件)", i.id);
    line("title", i.title);
    line("rule", i.rule_name ? i.rule_name : i.rule_id);
    line("severity (级别)", alert_level_name(i.level));
    snprintf(buf, sizeof(buf), "%s (%s)", incident_state_name(i.status),
             incident_state_name_zh(i.status));
    line("status (状态)", buf);
    line("department (责任部门)", incident_department(&i));
    if (i.assigned_department)
        line("owning department", i.owner_department);
    line("assignee (责任人)", i.assignee);
    line("segment (网段)", i.segment);
    line("sensor", i.sensor);
    line_time("first seen", i.first_seen);
    if (i.deadline_at) {
        console_deadline_text(i.deadline_at, buf, sizeof(buf));
        line("deadline (整改时限)", buf);
    }
    if (i.deadline_guessed)
        line("", "GUESSED: no calendar data for that year (counted Monday-Friday)");
    line("deadline set by", i.deadline_source);
    line_time("containment by", i.containment_at);
    line("notice (通报)", i.notice_no);
    line("notice issuer", i.notice_issuer);
    line("notice date", i.notice_date);
    line("duplicate of", i.duplicate_of);
    line("risk reason", i.risk_reason);
    line("risk approver", i.risk_approver);
    line_time("risk expires", i.risk_expires);
    line_time("verification until", i.verify_until);
    if (i.verification)
        line("verification", strcmp(i.verification, "sensor_gap") == 0
                                 ? "unverified: sensor gap (close it with a comment)"
                                 : i.verification);
    line("verification evidence", i.verification_evidence);
    if (i.reopen_count) {
        snprintf(buf, sizeof(buf), "%u", i.reopen_count);
        line("reopened", buf);
    }
    printf("history (处置记录):\n");
    if (incident_history(a.c.st, i.id, print_record, NULL) != FH_OK) {
        fh_error("%s", store_errmsg(a.c.st));
        rc = 1;
    }
    incident_clear(&i);
    console_close(&a.c);
    return rc;
}

int cmd_list(int argc, char **argv)
{
    args a;
    incident *list = NULL;
    size_t n = 0;
    int want = -1;

    if (!parse(argc, argv, &a))
        return 2;
    if (argc != optind) {
        fh_error("usage: fenghuo-console list [--status S] [--department D] [--overdue]");
        return 2;
    }
    if (a.status && (want = incident_state_parse(a.status)) < 0) {
        fh_error("unknown state '%s'", a.status);
        return 2;
    }
    if (!console_open(&a.c))
        return 1;
    if (incident_list(a.c.st, 0, 0, &list, &n) != FH_OK) {
        fh_error("%s", store_errmsg(a.c.st));
        console_close(&a.c);
        return 1;
    }
    printf("%-32s  %-14s  %-13s  %-16s  ", "id", "status", "severity", "deadline");
    console_pad(stdout, "department", 24);
    printf("title\n");
    for (size_t k = 0; k < n; k++) {
        const incident *i = &list[k];
        const char *dep = incident_department(i);
        char due[32];

        if (want >= 0 && (int)i->status != want)
            continue;
        if (a.dept && (!dep || strcmp(dep, a.dept) != 0))
            continue;
        if (a.overdue &&
            !(incident_state_open(i->status) && i->deadline_at && i->deadline_at < a.c.now))
            continue;
        console_deadline_text(i->deadline_at, due, sizeof(due));
        printf("%-32s  %-14s  %-13s  %-16s  ", i->id, incident_state_name(i->status),
               alert_level_name(i->level), due);
        console_pad(stdout, dep ? dep : "-", 24);
        printf("%s%s\n", i->title, i->deadline_guessed ? "  [deadline guessed]" : "");
    }
    incident_free_list(list, n);
    console_close(&a.c);
    return 0;
}

int cmd_sweep(int argc, char **argv)
{
    args a;
    incident_sweep_result r;
    uint32_t stamped = 0;
    int rc = 0;

    if (!parse(argc, argv, &a))
        return 2;
    if (argc != optind) {
        fh_error("usage: fenghuo-console sweep [--db PATH]");
        return 2;
    }
    if (!console_open(&a.c))
        return 1;
    stamped = a.c.stamped;
    if (incident_sweep(a.c.st, &a.c.policy, a.c.cal, a.c.now, &r) != FH_OK) {
        fh_error("%s", store_errmsg(a.c.st));
        rc = 1;
    } else {
        printf("deadlines stamped: %u\nverified and closed: %u\nunverified (sensor gap): %u\n"
               "accepted risks expired: %u\n",
               stamped, r.verified, r.sensor_gap, r.risk_expired);
    }
    console_close(&a.c);
    return rc;
}
