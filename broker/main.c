/*
 * fenghuo-broker - the Kafka-protocol broker built into librdkafka, as a program.
 *
 * librdkafka ships a mock Kafka cluster (rdkafka_mock.h) for its own tests: N brokers, each a
 * TCP listener on 127.0.0.1 with a kernel-chosen port, served by one thread of the library.
 * This program creates one, creates the topics asked for, prints the bootstrap address as the
 * first line of stdout and then only waits: for SIGINT/SIGTERM (clean exit 0), for
 * SIGUSR1/SIGUSR2 (all brokers down/up) and for commands in a control file. The fault
 * controls exist for tests of the sensor's spool and of the correlator's replay.
 *
 * Signals: SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 are blocked before librdkafka starts its
 * threads (threads inherit the mask), so no handler ever runs; the main loop takes them with
 * sigtimedwait(), whose 100 ms timeout is also the control file's poll period. Every action
 * (librdkafka calls, logging, file I/O) therefore happens in the main thread in plain code.
 *
 * What the mock cluster does (librdkafka 2.0.2) is written down in broker/README.md and
 * docs/kafka.md: auto-created topics, idempotence, groups, and its 5 MiB per-partition log
 * limit (old batches are dropped silently).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "../common/fh_error.h"
#include "../common/fh_kafka_names.h"
#include "../common/fh_log.h"

#define PROG              "fenghuo-broker"
#define DEFAULT_TOPIC     "fenghuo.events"
#define MAX_BROKERS       32
#define MAX_PARTITIONS    1024
#define MAX_TOPICS        64
#define CONTROL_POLL_MS   100
#define CONTROL_MAX_BYTES 256
#define EXIT_USAGE        2

struct broker_opts {
    int brokers;
    int partitions;
    const char *topics[MAX_TOPICS];
    int ntopics;
    const char *bootstrap_file; /* NULL: none */
    const char *control_file;   /* NULL: none */
};

/* What the control file looked like when last read; a change of any field means "read it". */
struct control_state {
    int seen;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
};

/* The brokers' state as this program set it (index 1..brokers; the mock ids are 1-based). */
static int broker_up[MAX_BROKERS + 1];

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [options]\n"
            "\n"
            "Runs librdkafka's built-in Kafka-protocol broker on 127.0.0.1 (embedded mode and\n"
            "tests). Prints the bootstrap address as the first line of stdout, then runs until\n"
            "SIGINT or SIGTERM. Everything is held in memory; see docs/kafka.md.\n"
            "\n"
            "  --brokers N            number of brokers, 1-%d (default 1)\n"
            "  --partitions N         partitions of each created topic, 1-%d (default 3)\n"
            "  --topic NAME           create this topic (repeatable; default " DEFAULT_TOPIC ")\n"
            "  --bootstrap-file PATH  also write the bootstrap address to PATH (atomically)\n"
            "  --control-file PATH    poll PATH every %d ms for 'down', 'up', 'down 2', 'up 1,3'\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "Signals: SIGUSR1 takes every broker down, SIGUSR2 brings them back up.\n",
            MAX_BROKERS, MAX_PARTITIONS, CONTROL_POLL_MS);
}

/* Parses a decimal integer in [lo, hi]; returns FH_ERR_PARSE for anything else. */
static fh_err parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return FH_ERR_PARSE;
    *out = (int)v;
    return FH_OK;
}

/*
 * Fills *o from argv. Returns FH_OK to run, or FH_ERR_ARG after printing one line on stderr
 * (the caller exits 2). --help and --version print and set *exit_now (exit 0).
 */
static fh_err parse_args(int argc, char **argv, struct broker_opts *o, int *exit_now)
{
    enum { OPT_BROKERS = 1, OPT_PARTITIONS, OPT_TOPIC, OPT_BOOTFILE, OPT_CTLFILE };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTFILE},
        {"control-file", required_argument, NULL, OPT_CTLFILE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->brokers = 1;
    o->partitions = 3;
    *exit_now = 0;
    opterr = 0; /* our own one-line messages */

    /* A leading '+': stop at the first non-option; ':' reports a missing argument as ':'. */
    while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BROKERS:
            if (parse_int(optarg, 1, MAX_BROKERS, &o->brokers)) {
                fh_error("--brokers: expected an integer 1-%d, got '%s'", MAX_BROKERS, optarg);
                return FH_ERR_ARG;
            }
            break;
        case OPT_PARTITIONS:
            if (parse_int(optarg, 1, MAX_PARTITIONS, &o->partitions)) {
                fh_error("--partitions: expected an integer 1-%d, got '%s'", MAX_PARTITIONS,
                         optarg);
                return FH_ERR_ARG;
            }
            break;
        case OPT_TOPIC: {
            int dup = 0;
            if (!fh_topic_name_valid(optarg)) {
                fh_error("--topic: '%s' is not a Kafka topic name (1-%d of a-z A-Z 0-9 . _ -)",
                         optarg, FH_TOPIC_NAME_MAX);
                return FH_ERR_ARG;
            }
            for (int i = 0; i < o->ntopics; i++)
                dup |= !strcmp(o->topics[i], optarg);
            if (dup)
                break; /* the same topic twice is the same request */
            if (o->ntopics == MAX_TOPICS) {
                fh_error("--topic: at most %d topics", MAX_TOPICS);
                return FH_ERR_ARG;
            }
            o->topics[o->ntopics++] = optarg;
            break;
        }
        case OPT_BOOTFILE:
            if (!*optarg) {
                fh_error("--bootstrap-file: empty path");
                return FH_ERR_ARG;
            }
            o->bootstrap_file = optarg;
            break;
        case OPT_CTLFILE:
            if (!*optarg) {
                fh_error("--control-file: empty path");
                return FH_ERR_ARG;
            }
            o->control_file = optarg;
            break;
        case 'h':
            usage(stdout);
            *exit_now = 1;
            return FH_OK;
        case 'V':
            printf(PROG " %s\n", FH_VERSION);
            *exit_now = 1;
            return FH_OK;
        case ':':
            fh_error("option '%s' needs an argument (try --help)", argv[optind - 1]);
            return FH_ERR_ARG;
        default:
            if (!strncmp(argv[optind - 1], "--", 2))
                fh_error("bad option '%s' (try --help)", argv[optind - 1]);
            else /* a short option, maybe inside a cluster such as -Vx */
                fh_error("unknown option '-%c' (try --help)", optopt);
            return FH_ERR_ARG;
        }
    }
    if (optind < argc) {
        fh_error("unexpected argument '%s' (try --help)", argv[optind]);
        return FH_ERR_ARG;
    }
    if (o->ntopics == 0)
        o->topics[o->ntopics++] = DEFAULT_TOPIC;
    return FH_OK;
}

/* Writes "<addr>\n" to path through a temporary file and rename(), so readers never see a
 * partial address. */
static fh_err write_bootstrap_file(const char *path, const char *addr)
{
    char tmp[PATH_MAX];
    FILE *f;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fh_error("--bootstrap-file: path too long: %s", path);
        return FH_ERR_IO;
    }
    f = fopen(tmp, "w");
    if (!f) {
        fh_error("open(\"%s\") failed: %s", tmp, strerror(errno));
        return FH_ERR_IO;
    }
    if (fprintf(f, "%s\n", addr) < 0 || fflush(f) || fsync(fileno(f))) {
        fh_error("write(\"%s\") failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return FH_ERR_IO;
    }
    if (fclose(f)) {
        fh_error("close(\"%s\") failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return FH_ERR_IO;
    }
    if (rename(tmp, path)) {
        fh_error("rename(\"%s\", \"%s\") failed: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return FH_ERR_IO;
    }
    return FH_OK;
}

/* Formats the ids in set[1..n] as "1-3" or "1,3" into buf. */
static void format_ids(const int *set, int n, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 1; i <= n && len < size; i++) {
        int j = i;
        if (!set[i])
            continue;
        while (j < n && set[j + 1])
            j++;
        if (j > i)
            len += snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "", i, j);
        else
            len += snprintf(buf + len, size - len, "%s%d", len ? "," : "", i);
        i = j;
    }
}

/*
 * Takes the brokers in want[1..n] (all of them when want is NULL) down or up, and logs one
 * line naming those whose state changed. A broker already in the asked state is left alone.
 */
static void brokers_set(rd_kafka_mock_cluster_t *mc, int n, const int *want, int up,
                        const char *why)
{
    int changed[MAX_BROKERS + 1] = {0};
    int nchanged = 0;
    char ids[256];

    for (int id = 1; id <= n; id++) {
        rd_kafka_resp_err_t err;
        if ((want && !want[id]) || broker_up[id] == up)
            continue;
        err = up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
        if (err) {
            fh_warn("broker %d: set %s failed: %s", id, up ? "up" : "down", rd_kafka_err2str(err));
            continue;
        }
        broker_up[id] = up;
        changed[id] = 1;
        nchanged++;
    }
    if (!nchanged) {
        fh_debug("%s: no broker changed state", why);
        return;
    }
    format_ids(changed, n, ids, sizeof(ids));
    fh_info("%s %s %s (%s)", nchanged > 1 ? "brokers" : "broker", ids, up ? "up" : "down", why);
}

/*
 * Parses one control command ("down", "up", "down 2", "up 1,3", "down all") and applies it.
 * Returns FH_ERR_PARSE (and changes nothing) when the text is not a command.
 */
static fh_err control_apply(rd_kafka_mock_cluster_t *mc, int n, char *text, const char *path)
{
    int want[MAX_BROKERS + 1] = {0};
    int any = 0, up;
    char *save = NULL, *word;

    word = strtok_r(text, " \t\r\n,", &save);
    if (!word)
        return FH_OK; /* empty file: nothing asked */
    if (!strcmp(word, "down"))
        up = 0;
    else if (!strcmp(word, "up"))
        up = 1;
    else {
        fh_warn("control file %s: unknown command '%s' (expected down|up [ID...])", path, word);
        return FH_ERR_PARSE;
    }
    while ((word = strtok_r(NULL, " \t\r\n,", &save))) {
        int id;
        if (!strcmp(word, "all")) {
            for (id = 1; id <= n; id++)
                want[id] = 1;
        } else if (parse_int(word, 1, n, &id) == FH_OK) {
            want[id] = 1;
        } else {
            fh_warn("control file %s: '%s' is not a broker id (1-%d)", path, word, n);
            return FH_ERR_PARSE;
        }
        any = 1;
    }
    brokers_set(mc, n, any ? want : NULL, up, "control file");
    return FH_OK;
}

/*
 * Polls the control file: when it appeared or its inode, size or times changed since the last
 * poll, reads it and applies the command in it. Writing the same command again therefore
 * applies it again. A missing file is not an error (tests create it when they need it).
 */
static void control_poll(rd_kafka_mock_cluster_t *mc, int n, const char *path,
                         struct control_state *cs)
{
    char buf[CONTROL_MAX_BYTES + 1];
    struct stat st;
    ssize_t len;
    int fd;

    if (stat(path, &st)) {
        cs->seen = 0;
        return;
    }
    if (cs->seen && cs->dev == st.st_dev && cs->ino == st.st_ino && cs->size == st.st_size &&
        cs->mtime.tv_sec == st.st_mtim.tv_sec && cs->mtime.tv_nsec == st.st_mtim.tv_nsec &&
        cs->ctime.tv_sec == st.st_ctim.tv_sec && cs->ctime.tv_nsec == st.st_ctim.tv_nsec)
        return;
    cs->seen = 1;
    cs->dev = st.st_dev;
    cs->ino = st.st_ino;
    cs->size = st.st_size;
    cs->mtime = st.st_mtim;
    cs->ctime = st.st_ctim;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fh_warn("open(\"%s\") failed: %s", path, strerror(errno));
        return;
    }
    len = read(fd, buf, CONTROL_MAX_BYTES);
    close(fd);
    if (len < 0) {
        fh_warn("read(\"%s\") failed: %s", path, strerror(errno));
        return;
    }
    buf[len] = '\0';
    control_apply(mc, n, buf, path);
}

/* librdkafka's own log lines, under our program name. */
static void rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    if (level <= 3)
        fh_error("rdkafka %s: %s", fac, msg);
    else if (level <= 4)
        fh_warn("rdkafka %s: %s", fac, msg);
    else
        fh_debug("rdkafka %s: %s", fac, msg);
}

int main(int argc, char **argv)
{
    struct broker_opts o;
    struct control_state cs = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    sigset_t sigs;
    const char *addr;
    char errstr[512];
    int exit_now, status = 1, wrote_bootfile = 0;

    fh_log_init(PROG, FH_LOG_INFO);
    if (parse_args(argc, argv, &o, &exit_now))
        return EXIT_USAGE;
    if (exit_now)
        return 0;

    /* Block the signals we wait for in this thread and, by inheritance, in every thread
     * librdkafka starts; they stay pending until sigtimedwait() takes them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL)) {
        fh_error("pthread_sigmask() failed");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a reader that closed our stdout must not kill the broker */

    /* The mock cluster needs a client instance for its bookkeeping and logging only. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rdkafka_log);
    if (rd_kafka_conf_set(conf, "client.id", PROG, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fh_error("rd_kafka_conf_set(client.id) failed: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fh_error("rd_kafka_new() failed: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, o.brokers);
    if (!mc) {
        fh_error("rd_kafka_mock_cluster_new(%d brokers) failed", o.brokers);
        goto done;
    }
    for (int id = 1; id <= o.brokers; id++)
        broker_up[id] = 1;

    for (int i = 0; i < o.ntopics; i++) {
        int rf = o.brokers < 3 ? o.brokers : 3;
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, o.topics[i], o.partitions, rf);
        if (err) {
            fh_error("creating topic %s failed: %s", o.topics[i], rd_kafka_err2str(err));
            goto done;
        }
    }

    addr = rd_kafka_mock_cluster_bootstraps(mc);
    if (o.bootstrap_file) {
        if (write_bootstrap_file(o.bootstrap_file, addr))
            goto done;
        wrote_bootfile = 1;
    }
    /* The interface: the address is the first line of stdout, flushed now. */
    printf("%s\n", addr);
    fflush(stdout);
    fh_info("%d %s at %s, topics:", o.brokers, o.brokers > 1 ? "brokers" : "broker", addr);
    for (int i = 0; i < o.ntopics; i++)
        fh_info("  %s (%d partitions)", o.topics[i], o.partitions);

    for (;;) {
        struct timespec ts = {0, CONTROL_POLL_MS * 1000000L};
        int sig = sigtimedwait(&sigs, NULL, &ts);

        if (sig == SIGINT || sig == SIGTERM) {
            fh_info("%s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (sig == SIGUSR1)
            brokers_set(mc, o.brokers, NULL, 0, "SIGUSR1");
        else if (sig == SIGUSR2)
            brokers_set(mc, o.brokers, NULL, 1, "SIGUSR2");
        else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            fh_error("sigtimedwait() failed: %s", strerror(errno));
            goto done;
        }
        if (o.control_file)
            control_poll(mc, o.brokers, o.control_file, &cs);
    }
    status = 0;

done:
    if (wrote_bootfile)
        unlink(o.bootstrap_file); /* a stale address would send scripts to a dead port */
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return status;
}
