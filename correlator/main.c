/*
 * main.c - fenghuo-correlator command line.
 *
 * `--check-rules PATH` validates a rule directory (or file): every document is
 * compiled or refused with "file:line: rule 'title': reason", then a summary
 * line; the exit status is 1 when anything was refused, so it fits a CI check
 * of a rule repository.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "assets.h"
#include "consumer.h"
#include "correlation.h"
#include "engine.h"
#include "stream.h"
#include "event.h"
#include "health.h"
#include "lists.h"
#include "sigma.h"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fenghuo-correlator --rules DIR [--assets FILE] --input FILE|- "
               "[--alerts-out FILE] [--db PATH]\n"
               "       fenghuo-correlator --rules DIR --kafka BROKERS [--topic T]... "
               "[--group ID]\n"
               "              [--alerts-topic T] [-X name=value]... --db PATH "
               "[--alerts-out FILE]\n"
               "              [--exit-at-end]\n"
               "       fenghuo-correlator --check-rules PATH [--lists DIR] [--assets FILE] "
               "[--quiet]\n"
               "\n"
               "Fenghuo (烽火) correlator: Sigma rules over sensor events.\n"
               "烽火关联分析引擎：以 Sigma 规则分析探针事件。\n"
               "\n"
               "  --rules PATH         the rules to run (file or directory)\n"
               "  --input FILE         NDJSON events (Fenghuo or Suricata EVE); '-' = stdin\n"
               "  --alerts-out FILE    alerts as NDJSON, one line per new or updated alert\n"
               "  --db PATH|URI        alert store: an SQLite file (created with its schema if\n"
               "                       absent) or PostgreSQL, postgresql://user@host/db\n"
               "  --batch N            events per store transaction (default 5000; Kafka mode\n"
               "                       also commits every 200 ms)\n"
               "  --kafka BROKERS      consume Kafka instead of --input (a consumer group; needs\n"
               "                       --db: positions are stored with the alerts, exactly once)\n"
               "  --topic T            events topic, repeatable (default fenghuo.events)\n"
               "  --group ID           consumer group (default fenghuo-correlator)\n"
               "  --alerts-topic T     publish alerts there, key = alert id (default\n"
               "                       fenghuo.alerts; Kafka mode only)\n"
               "  --exit-at-end        stop once every assigned partition is at its end (as\n"
               "                       kcat -e): commit, send the alerts, exit 0 (Kafka mode)\n"
               "  -X name=value        librdkafka property for the consumer and the producer\n"
               "                       (-X session.timeout.ms=6000, -X auto.offset.reset=latest)\n"
               "  --check-rules PATH   validate every rule under PATH (file or directory) and\n"
               "                       print each refused one as file:line: reason\n"
               "  --lists DIR          placeholder lists for |expand (default: the 'lists'\n"
               "                       folder beside the rule folder, when there is one)\n"
               "  --assets FILE        asset inventory (its placeholders: management networks,\n"
               "                       allowed countries, zones, egress lists)\n"
               "  --strict             do not start while any rule is refused (the packaged\n"
               "                       service's setting; without it refused rules are named\n"
               "                       in the log, the store's health row and the metrics)\n"
               "  --metrics FILE       Prometheus text file of the rules and counters (replaced\n"
               "                       every 10 s and at exit; node_exporter textfile format)\n"
               "  --archive DIR        keep the consumed events in a rolling zstd archive\n"
               "                       (DIR/<instance>/; docs/archive.md) for the console's\n"
               "                       pivots and rule tests\n"
               "  --archive-max-bytes N  compressed bytes kept (K, M, G; default 1G)\n"
               "  --archive-max-age D  drop segments older than D (event time; default 180d)\n"
               "  --metrics-listen A:P serve /metrics over HTTP on a management address\n"
               "                       (127.0.0.1:9102; renewed every second)\n"
               "  --instance NAME      this instance's name in the store's health table\n"
               "                       (default: the host name)\n"
               "  --max-clock-ahead D  an event further than D ahead of the newest event time\n"
               "                       is set aside from correlation (default 24h; 30m, 1h, 2d;\n"
               "                       see correlator/README-correlation.md)\n"
               "  -q, --quiet          print only the refused rules and the summary\n"
               "  -h, --help           this help;  -V, --version  version\n"
               "\n"
               "Exit status: 0 when every rule loads, 1 when some are refused, 2 on usage.\n");
}

static int check_rules(const char *path, const char *lists_dir, const char *assets_file, bool quiet)
{
    engine_config cfg = {path, lists_dir, assets_file};
    engine *e = calloc(1, sizeof(*e));
    char err[1024], dflt[4096], dflt_assets[4200];
    size_t room;
    int rc;

    if (!e)
        return 1;
    if (!assets_file) {
        /* Default: the inventory beside the rule folder, rules/assets.yaml, else the
         * shipped example, so placeholders from the inventory resolve. */
        char *slash;

        if (!lists_dir)
            engine_default_lists_dir(path, dflt, sizeof(dflt));
        snprintf(dflt_assets, sizeof(dflt_assets), "%s", lists_dir ? lists_dir : dflt);
        slash = strrchr(dflt_assets, '/');
        if (slash) {
            /* bounded: the lists path comes from the command line */
            room = sizeof(dflt_assets) - (size_t)(slash + 1 - dflt_assets);
            snprintf(slash + 1, room, "%s", "assets.yaml");
            if (access(dflt_assets, R_OK) != 0)
                snprintf(slash + 1, room, "%s", "assets.example.yaml");
            if (access(dflt_assets, R_OK) == 0) {
                cfg.assets_file = dflt_assets;
                if (!quiet)
                    printf("asset inventory: %s\n", dflt_assets);
            }
        }
    }
    if (engine_load(e, &cfg, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        engine_free(e);
        return 1;
    }
    for (uint32_t i = 0; i < e->rs.nerrors; i++) {
        const load_error *le = &e->rs.errors[i];
        char msg[1024];

        load_error_text(le, msg, sizeof(msg));
        printf("%s\n", msg);
    }
    if (!quiet)
        for (uint32_t i = 0; i < e->rs.nrules; i++)
            printf("%s:%u: ok: %s%s%s\n", e->rs.rules[i].file, e->rs.rules[i].line,
                   e->rs.rules[i].title, e->rs.rules[i].id ? " " : "",
                   e->rs.rules[i].id ? e->rs.rules[i].id : "");
    if (!quiet)
        for (uint32_t i = 0; i < e->rs.ncorrs; i++)
            printf("%s:%u: ok: %s%s%s (correlation)\n", e->rs.corrs[i].file, e->rs.corrs[i].line,
                   e->rs.corrs[i].title ? e->rs.corrs[i].title : "", e->rs.corrs[i].id ? " " : "",
                   e->rs.corrs[i].id ? e->rs.corrs[i].id : "");
    printf("%u rules loaded (%u correlation), %u refused, in %u files; %u distinct fields\n",
           e->rs.nrules + e->rs.ncorrs, e->rs.ncorrs, e->rs.nerrors, e->rs.files, e->ft.n);
    rc = e->rs.nerrors ? 1 : 0;
    engine_free(e);
    return rc;
}

#define INPUT_BUFFER (1 << 20)

/* Options both modes share: strictness, health and metrics, the clock policy. */
typedef struct {
    bool strict;
    const char *metrics, *listen, *instance;
    int64_t max_ahead_ms;
    const char *archive; /* --archive DIR */
    uint64_t archive_max_bytes;
    int64_t archive_max_age_ms;
} run_opts;

/*
 * Parses a duration: a number with s, m, h or d (no suffix: seconds). Returns
 * milliseconds, or -1.
 */
static int64_t parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double mul = 1000;

    if (end == s || v <= 0)
        return -1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60e3, end++;
    else if (*end == 'h')
        mul = 3600e3, end++;
    else if (*end == 'd')
        mul = 86400e3, end++;
    if (*end || v * mul > 3650 * 86400e3)
        return -1;
    return (int64_t)(v * mul);
}

/*
 * NDJSON input, line by line, with read(2) into one buffer. Before a read that
 * would block (a pipe or FIFO with nothing waiting) it calls idle(): the open
 * batch is committed there, so a correlator fed slowly never keeps the
 * store's write lock while it waits (the console writes to the same store).
 */
typedef struct {
    int fd;
    char *buf;
    size_t cap, start, end;
    bool eof;
} line_reader;

#define LINE_MAX_BYTES (64u << 20) /* an event longer than this is an input error */

/* The next line (its '\n' replaced by NUL) in *line, its length returned; 0 at the end,
 * -1 on a read error (errno), -2 when a signal interrupted the wait. */
static ssize_t reader_next(line_reader *r, char **line, void (*idle)(void *), void *ctx)
{
    for (;;) {
        char *nl = r->start < r->end ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        ssize_t got;

        if (nl || (r->eof && r->start < r->end)) {
            size_t len = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;

            *line = r->buf + r->start;
            (*line)[len] = '\0'; /* the buffer keeps one spare byte for the last line */
            r->start += len + (nl ? 1 : 0);
            return (ssize_t)len;
        }
        if (r->eof)
            return 0;
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end + 1 >= r->cap) {
            char *b = r->cap < LINE_MAX_BYTES ? realloc(r->buf, r->cap * 2) : NULL;

            if (!b) {
                errno = EFBIG;
                return -1;
            }
            r->buf = b;
            r->cap *= 2;
        }
        if (idle && poll(&pfd, 1, 0) == 0)
            idle(ctx);
        got = read(r->fd, r->buf + r->end, r->cap - 1 - r->end);
        if (got < 0 && errno == EINTR)
            return -2;
        if (got < 0)
            return -1;
        if (got == 0)
            r->eof = true;
        r->end += (size_t)got;
    }
}

typedef struct {
    stream *pl;
    health *hl;
    store *st;
    bool failed;
    char err[1024];
} idle_ctx;

/* The input has nothing waiting: commit what was read so far. */
static void commit_idle(void *arg)
{
    idle_ctx *c = arg;

    if (c->failed || !c->pl->batch_events)
        return;
    if (stream_commit(c->pl, c->err, sizeof(c->err)) != FH_OK)
        c->failed = true;
    else
        health_write(c->hl, c->pl, c->st, false);
}

/* Reads NDJSON events and runs them through the stream, a batch per transaction. */
static int run_file(const char *rules, const char *lists_dir, const char *assets_file,
                    const char *input, const char *alerts_out, const char *db, uint32_t batch,
                    const run_opts *ro)
{
    engine_config ec = {rules, lists_dir, assets_file};
    engine *e = NULL;
    store *st = NULL;
    FILE *out = NULL;
    line_reader in = {.fd = -1};
    idle_ctx idle = {0};
    stream pl;
    bool pl_ready = false;
    char err[1024], *line = NULL;
    ssize_t n = 0;
    int rc = 1;

    health hl;
    corr_limits lim = {.max_ahead_ms = ro->max_ahead_ms};

    if (health_init(&hl, ro->instance, ro->metrics, ro->listen, ro->strict) != FH_OK)
        return 1;
    if (engine_open(&e, &ec, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        health_free(&hl);
        return 1;
    }
    if (!health_check_refused(e, ro->strict))
        goto out;
    if (db) {
        store_opts so = {.path = db};

        if (store_open(&st, &so, err, sizeof(err)) != FH_OK) {
            fh_error("%s", err);
            goto out;
        }
    }
    if (alerts_out && !(out = strcmp(alerts_out, "-") ? fopen(alerts_out, "w") : stdout)) {
        fh_error("open(\"%s\") failed: %s", alerts_out, strerror(errno));
        goto out;
    }
    if ((in.fd = strcmp(input, "-") ? open(input, O_RDONLY | O_CLOEXEC) : STDIN_FILENO) < 0) {
        fh_error("open(\"%s\") failed: %s", input, strerror(errno));
        goto out;
    }
    if (!(in.buf = malloc(in.cap = INPUT_BUFFER))) {
        fh_error("out of memory");
        goto out;
    }
    if (stream_init(&pl, e, st, out, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    pl_ready = true;
    if (stream_set_limits(&pl, &lim) != FH_OK) {
        fh_error("out of memory");
        goto out;
    }
    if (ro->archive &&
        stream_open_archive(&pl, ro->archive, ro->archive_max_bytes, ro->archive_max_age_ms,
                            hl.instance, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    health_write(&hl, &pl, st, true);
    rc = 0;
    idle.pl = &pl;
    idle.hl = &hl;
    idle.st = st;
    while (!stop_requested && !idle.failed &&
           (n = reader_next(&in, &line, st ? commit_idle : NULL, &idle)) != 0) {
        if (n == -2)
            continue; /* a signal: look at the flags */
        if (n < 0)
            break;
        if (st && stream_admin_poll(&pl) != FH_OK)
            fh_warn("reading suppressions and rule switches: %s", store_errmsg(st));
        if (reload_requested || pl.reload_wanted) {
            reload_requested = 0;
            pl.reload_wanted = false; /* a refused set is not retried until the next change */
            if (stream_reload(&pl, &ec, err, sizeof(err)) != FH_OK)
                fh_error("reload: %s", err);
            e = pl.eng;
            health_write(&hl, &pl, st, true);
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (stream_event(&pl, line, (size_t)n) != FH_OK || pl.batch_events >= batch) {
            if (stream_commit(&pl, err, sizeof(err)) != FH_OK) {
                fh_error("%s", err);
                rc = 1;
                break;
            }
            health_write(&hl, &pl, st, false);
        }
    }
    if (idle.failed) {
        fh_error("%s", idle.err);
        rc = 1;
    }
    if (n == -1) {
        fh_error("reading '%s' failed: %s", input, strerror(errno));
        rc = 1;
    }
    if (stream_commit(&pl, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        rc = 1;
    }
    {
        corr_stats cs;

        corr_get_stats(pl.corr, &cs);
        fh_info("%llu events, %llu malformed, %llu rule matches, %llu alert updates written; "
                "%.2f rules evaluated per event; %llu events set aside by the correlation "
                "clock",
                (unsigned long long)e->stats.events, (unsigned long long)e->stats.malformed,
                (unsigned long long)e->stats.matches, (unsigned long long)pl.alerts_written,
                e->stats.events ? (double)e->stats.evaluated / (double)e->stats.events : 0.0,
                (unsigned long long)cs.clock_ahead);
    }
    health_finish(&hl, &pl, st);
out:
    free(in.buf);
    if (pl_ready) {
        e = pl.eng; /* a reload replaced the engine */
        stream_free(&pl);
    }
    if (in.fd > STDIN_FILENO)
        close(in.fd);
    if (out && out != stdout)
        fclose(out);
    else if (out)
        fflush(out);
    store_close(st);
    engine_free(e);
    health_free(&hl);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"check-rules", required_argument, NULL, 'C'},
        {"rules", required_argument, NULL, 'R'},
        {"input", required_argument, NULL, 'I'},
        {"alerts-out", required_argument, NULL, 'O'},
        {"db", required_argument, NULL, 'D'},
        {"batch", required_argument, NULL, 'B'},
        {"lists", required_argument, NULL, 'L'},
        {"assets", required_argument, NULL, 'A'},
        {"kafka", required_argument, NULL, 'K'},
        {"topic", required_argument, NULL, 'T'},
        {"group", required_argument, NULL, 'G'},
        {"alerts-topic", required_argument, NULL, 'P'},
        {"exit-at-end", no_argument, NULL, 'E'},
        {"quiet", no_argument, NULL, 'q'},
        {"strict", no_argument, NULL, 'S'},
        {"metrics", required_argument, NULL, 'M'},
        {"metrics-listen", required_argument, NULL, 'H'},
        {"archive", required_argument, NULL, 'F'},
        {"archive-max-bytes", required_argument, NULL, 'Z'},
        {"archive-max-age", required_argument, NULL, 'Y'},
        {"instance", required_argument, NULL, 'N'},
        {"max-clock-ahead", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *check = NULL, *lists_dir = NULL, *assets_file = NULL, *rules = NULL, *input = NULL,
               *alerts_out = NULL, *db = NULL;
    uint32_t batch = 5000;
    bool quiet = false, exit_at_end = false;
    run_opts ro = {.max_ahead_ms = 24 * 3600 * 1000LL};
    int opt;
    const char *kafka = NULL, *group = NULL, *alerts_topic = NULL;
    /* static: still reachable (not a leak) on the early returns below */
    static const char **topics, **props;
    size_t ntopics = 0, nprops = 0;

    topics = calloc((size_t)argc + 1, sizeof(char *));
    props = calloc((size_t)argc + 1, sizeof(char *));
    if (!topics || !props)
        return 1;

    fh_log_init("fenghuo-correlator", FH_LOG_INFO);
    while ((opt = getopt_long(argc, argv, "qhVX:", opts, NULL)) != -1) {
        switch (opt) {
        case 'C':
            check = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'L':
            lists_dir = optarg;
            break;
        case 'R':
            rules = optarg;
            break;
        case 'I':
            input = optarg;
            break;
        case 'O':
            alerts_out = optarg;
            break;
        case 'D':
            db = optarg;
            break;
        case 'B': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if (*end || v == 0 || v > 1000000) {
                fh_error("--batch expects a number from 1 to 1000000, got '%s'", optarg);
                return 2;
            }
            batch = (uint32_t)v;
            break;
        }
        case 'A':
            assets_file = optarg;
            break;
        case 'K':
            kafka = optarg;
            break;
        case 'T':
            topics[ntopics++] = optarg;
            break;
        case 'G':
            group = optarg;
            break;
        case 'P':
            alerts_topic = optarg;
            break;
        case 'E':
            exit_at_end = true;
            break;
        case 'S':
            ro.strict = true;
            break;
        case 'M':
            ro.metrics = optarg;
            break;
        case 'H':
            ro.listen = optarg;
            break;
        case 'F':
            ro.archive = optarg;
            break;
        case 'Z': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            unsigned long long mul = !*end               ? 1
                                     : !strcmp(end, "K") ? 1ull << 10
                                     : !strcmp(end, "M") ? 1ull << 20
                                     : !strcmp(end, "G") ? 1ull << 30
                                                         : 0;

            if (!mul || !v || end == optarg) {
                fh_error("--archive-max-bytes: expected a size such as 512M or 4G, got '%s'",
                         optarg);
                return 2;
            }
            ro.archive_max_bytes = v * mul;
            break;
        }
        case 'Y':
            if ((ro.archive_max_age_ms = parse_duration(optarg)) <= 0) {
                fh_error("--archive-max-age: expected a duration such as 30d, got '%s'", optarg);
                return 2;
            }
            break;
        case 'N':
            ro.instance = optarg;
            break;
        case 'W':
            if ((ro.max_ahead_ms = parse_duration(optarg)) < 0) {
                fh_error("--max-clock-ahead expects a duration such as 30m, 1h or 2d, got '%s'",
                         optarg);
                return 2;
            }
            break;
        case 'X':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fh_error("-X expects name=value, got '%s'", optarg);
                return 2;
            }
            props[nprops++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("fenghuo-correlator %s (%s)\n", FH_VERSION, FH_GIT_REV);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fh_error("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (check)
        return check_rules(check, lists_dir, assets_file, quiet);
    if (kafka && input) {
        fh_error("give either --input FILE or --kafka BROKERS, not both");
        return 2;
    }
    if (exit_at_end && !kafka) {
        fh_error("--exit-at-end is for --kafka (an --input run always stops at its end)");
        return 2;
    }
    if (!rules || (!input && !kafka)) {
        fh_error("give --rules DIR and --input FILE or --kafka BROKERS (or --check-rules PATH); "
                 "see --help");
        return 2;
    }
    /* SQLite allocates and frees a page cache for the temporary b-trees of every alert
     * upsert; with glibc's default 128 KiB trim threshold each free gave the memory back
     * (brk, a TLB shootdown on every core) and the next statement faulted it in again:
     * 40% of the time of a run with the store. Keep up to 32 MiB of free heap instead. */
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (kafka) {
        consumer_config cc = {
            .rules = rules,
            .lists_dir = lists_dir,
            .assets_file = assets_file,
            .brokers = kafka,
            .topics = topics,
            .ntopics = ntopics,
            .group = group,
            .alerts_topic = alerts_topic,
            .props = props,
            .nprops = nprops,
            .db = db,
            .alerts_out = alerts_out,
            .batch = batch,
            .exit_at_end = exit_at_end,
            .strict = ro.strict,
            .metrics = ro.metrics,
            .metrics_listen = ro.listen,
            .archive = ro.archive,
            .archive_max_bytes = ro.archive_max_bytes,
            .archive_max_age_ms = ro.archive_max_age_ms,
            .instance = ro.instance,
            .max_ahead_ms = ro.max_ahead_ms,
            .stop = &stop_requested,
            .reload = &reload_requested,
        };
        static const char *dflt_topic[] = {"fenghuo.events"};
        int rc;

        if (!ntopics) {
            cc.topics = dflt_topic;
            cc.ntopics = 1;
        }
        rc = run_kafka(&cc);
        free(topics);
        free(props);
        return rc;
    }
    free(topics);
    free(props);
    return run_file(rules, lists_dir, assets_file, input, alerts_out, db, batch, &ro);
}
