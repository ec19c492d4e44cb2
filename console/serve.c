/*
 * serve.c - `fenghuo-console serve` (the HTTP API), `user add` and
 * `audit verify|prune` on the command line.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../common/fh_log.h"
#include "../correlator/accounts.h"
#include "../correlator/admin.h"
#include "../correlator/audit.h"
#include "api.h"
#include "console.h"

#define DAY_MS        (24 * 3600 * 1000LL)
#define MIN_KEEP_DAYS 180 /* Cybersecurity Law Art. 21: logs kept at least six months */

static int64_t fixed_now(void *ctx)
{
    return *(int64_t *)ctx;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"tls-cert", required_argument, NULL, 'c'},
                                         {"tls-key", required_argument, NULL, 'k'},
                                         {"static", required_argument, NULL, 's'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {"calendar-dir", required_argument, NULL, 'C'},
                                         {"session-idle", required_argument, NULL, 'i'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"rules", required_argument, NULL, 'r'},
                                         {"assets", required_argument, NULL, 'a'},
                                         {"archive", required_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    http_opts ho = {.listen = "127.0.0.1:8080", .static_dir = "dashboards"};
    console_ctx c = {0};
    api_opts ao = {0};
    api *a = NULL;
    char err[512], pw[25];
    bool created = false, test_clock;
    sigset_t set;
    int opt, sig;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            ho.listen = optarg;
            break;
        case 'c':
            ho.tls_cert = optarg;
            break;
        case 'k':
            ho.tls_key = optarg;
            break;
        case 's':
            ho.static_dir = optarg;
            break;
        case 'd':
            c.db = optarg;
            break;
        case 'p':
            c.policy_path = optarg;
            break;
        case 'C':
            c.calendar_dir = optarg;
            break;
        case 'i':
            ao.session_idle_ms = atoll(optarg) * 1000;
            break;
        case 't':
            ho.threads = (unsigned)atoi(optarg);
            break;
        case 'r':
            ao.rules_dir = optarg;
            break;
        case 'a':
            ao.assets_file = optarg;
            break;
        case 'e':
            ao.archive_dir = optarg;
            break;
        default:
            return 2;
        }
    }
    if (optind != argc) {
        fh_error("usage: fenghuo-console serve [--listen ADDR:PORT] [--tls-cert PEM --tls-key PEM] "
                 "[--static DIR] [--db PATH|URI] [--rules DIR [--assets FILE]] [--archive DIR] "
                 "[--session-idle SECONDS]");
        return 2;
    }
    if (!console_open(&c))
        return 1;
    if (account_bootstrap(c.st, c.now, pw, &created) != FH_OK) {
        fh_error("creating the first administrator: %s", store_errmsg(c.st));
        console_close(&c);
        return 1;
    }
    test_clock = getenv("FENGHUO_TEST_NOW") && *getenv("FENGHUO_TEST_NOW");
    ao.db = c.db ? c.db : DEFAULT_DB;
    ao.policy = &c.policy;
    ao.policy_path = c.policy_path;
    ao.cal = c.cal;
    if (test_clock) {
        ao.now = fixed_now;
        ao.now_ctx = &c.now;
    }
    /* the signals are taken by sigwait below, in no thread of the daemon */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (api_start(&a, &ao, &ho, err, sizeof(err)) != 0) {
        fh_error("%s", err);
        console_close(&c);
        return 1;
    }
    {
        char host[128];
        const char *colon = strrchr(ho.listen, ':');

        snprintf(host, sizeof(host), "%.*s", (int)(colon - ho.listen), ho.listen);
        printf("console listening on %s://%s:%u/\n", ho.tls_cert ? "https" : "http", host,
               api_port(a));
    }
    if (created)
        printf("first administrator: admin, one-time password: %s (change it at first login) / "
               "首个管理员 admin 的一次性口令：%s（首次登录须修改）\n",
               pw, pw);
    fflush(stdout);
    sodium_memzero(pw, sizeof(pw));
    sigwait(&set, &sig);
    fh_info("stopping (signal %d)", sig);
    api_stop(a);
    console_close(&c);
    return 0;
}

int cmd_user(int argc, char **argv)
{
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         {"departments", required_argument, NULL, 'D'},
                                         {"db", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    console_ctx c = {0};
    const char *role = NULL, *deps = NULL, *why = NULL;
    char pw[512], list[512] = "";
    account_policy p = account_policy_default();
    int opt, r, rc = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            role = optarg;
            break;
        case 'D':
            deps = optarg;
            break;
        case 'd':
            c.db = optarg;
            break;
        default:
            return 2;
        }
    }
    if (argc - optind != 2 || strcmp(argv[optind], "add") != 0 || !role) {
        fh_error("usage: fenghuo-console user add NAME --role sysadmin|secadmin|analyst|"
                 "compliance|auditor [--departments 'A,B'] (the password on stdin)");
        return 2;
    }
    if ((r = account_role_parse(role)) < 0) {
        fh_error("unknown role '%s'", role);
        return 2;
    }
    if (!fgets(pw, sizeof(pw), stdin)) {
        fh_error("no password on stdin");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    for (size_t i = 0; deps && deps[i] && i < sizeof(list) - 1; i++)
        list[i] = deps[i] == ',' ? '\n' : deps[i];
    if (!console_open(&c))
        return 1;
    if (account_create(c.st, &p, argv[optind + 1], (account_role)r, pw, false, c.now, &why) !=
            FH_OK ||
        (list[0] && account_set_departments(c.st, argv[optind + 1], list) != FH_OK)) {
        fh_error("user %s not created: %s", argv[optind + 1], why ? why : store_errmsg(c.st));
        rc = 1;
    } else {
        console_audit(&c, "user.create", argv[optind + 1], "ok", role);
        printf("%s\t%s\n", argv[optind + 1], role);
    }
    sodium_memzero(pw, sizeof(pw));
    console_close(&c);
    return rc;
}

int cmd_routes(int argc, char **argv)
{
    size_t n;
    const api_route_info *r = api_routes(&n);

    (void)argv;
    if (argc != 1) {
        fh_error("usage: fenghuo-console routes");
        return 2;
    }
    for (size_t k = 0; k < n; k++) {
        printf("%s %s", r[k].method, r[k].path);
        if (!r[k].roles)
            printf(" public");
        for (int role = 0; role < ROLE_COUNT; role++)
            if (r[k].roles & (1u << role))
                printf(" %s", account_role_name((account_role)role));
        printf("\n");
    }
    return 0;
}

/* --db and --keep-days (audit, retention); false on an unknown option. */
static bool keep_days_opts(int argc, char **argv, console_ctx *c, long *keep)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"keep-days", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'd')
            c->db = optarg;
        else if (opt == 'k')
            *keep = atol(optarg);
        else
            return false;
    }
    return true;
}

int cmd_audit(int argc, char **argv)
{
    console_ctx c = {0};
    long keep = MIN_KEEP_DAYS;
    int rc = 0;

    if (!keep_days_opts(argc, argv, &c, &keep))
        return 2;
    if (argc - optind != 1 || (strcmp(argv[optind], "verify") && strcmp(argv[optind], "prune"))) {
        fh_error("usage: fenghuo-console audit verify | audit prune [--keep-days N (>= 180)]");
        return 2;
    }
    if (keep < MIN_KEEP_DAYS) {
        fh_error("--keep-days: audit records are kept at least %d days", MIN_KEEP_DAYS);
        return 2;
    }
    if (!console_open(&c))
        return 1;
    if (!strcmp(argv[optind], "verify")) {
        audit_verdict v;

        if (audit_verify(c.st, &v) != FH_OK) {
            fh_error("%s", store_errmsg(c.st));
            rc = 1;
        } else if (v.ok) {
            printf("audit log intact: %lld records\n", (long long)v.records);
        } else {
            printf("audit log BROKEN at record %lld: %s (%lld records verified before it)\n",
                   (long long)v.first_bad, v.reason, (long long)v.records);
            rc = 1;
        }
    } else {
        int64_t pruned = 0;

        if (audit_prune(c.st, c.now - keep * DAY_MS, &pruned) != FH_OK) {
            fh_error("%s", store_errmsg(c.st));
            rc = 1;
        } else {
            printf("pruned %lld audit records older than %ld days\n", (long long)pruned, keep);
        }
    }
    console_close(&c);
    return rc;
}

/*
 * retention [--keep-days N]: what the law lets go (at least 180 days, the default):
 * ended incidents whose last event and last move are older, sensor stats hours, and
 * audit records (the chain stays verifiable). Run daily (packaging: the retention
 * timer); every run is itself audited.
 */
int cmd_retention(int argc, char **argv)
{
    console_ctx c = {0};
    long keep = MIN_KEEP_DAYS;
    int64_t alerts = 0, stats = 0, audits = 0, cutoff;
    char detail[160];
    int rc = 0;
    fh_err err;

    if (!keep_days_opts(argc, argv, &c, &keep))
        return 2;
    if (optind != argc) {
        fh_error("usage: fenghuo-console retention [--keep-days N (>= 180)] [--db PATH|URI]");
        return 2;
    }
    if (keep < MIN_KEEP_DAYS) {
        fh_error("--keep-days: alerts, events and audit records are kept at least %d days "
                 "(Cybersecurity Law Art. 21) / 网络日志留存不少于六个月",
                 MIN_KEEP_DAYS);
        return 2;
    }
    if (!console_open(&c))
        return 1;
    cutoff = c.now - keep * DAY_MS;
    if ((err = admin_prune(c.st, cutoff, &alerts, &stats)) ||
        (err = audit_prune(c.st, cutoff, &audits))) {
        fh_error("retention: %s", store_errmsg(c.st));
        rc = 1;
    } else {
        snprintf(detail, sizeof(detail),
                 "keep %ld days: %lld incidents, %lld stats hours, %lld "
                 "audit records",
                 keep, (long long)alerts, (long long)stats, (long long)audits);
        printf("retention: %s deleted\n", detail);
        console_audit(&c, "retention", NULL, "ok", detail);
    }
    console_close(&c);
    return rc;
}
