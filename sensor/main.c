/*
 * main.c - fenghuo-sensor: command line, configuration, inputs, run.
 *
 * Order of precedence: built-in defaults < configuration file (-c) <
 * command-line options (in the order given). Inputs are checked before any
 * packet is read, so a typo in the tenth file name fails at once instead of
 * after nine files of output.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "capture.h"
#include "config.h"
#include "geoip.h"
#include "pipeline.h"
#include "sink_kafka.h"
#include "sink.h"
#include "yara_scan.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* A setting from the command line; replayed over the configuration file, also on SIGHUP. */
typedef struct {
    char *name, *value;
} cli_set;

/*
 * SIGHUP: the configuration file (-c) is read again and the YARA rules are
 * reloaded. SIGHUP is blocked in every thread (the mask is set before any
 * thread exists) and taken by sigwait() in this thread, which does the work
 * while the packet loop runs on.
 *
 * Configuration: the file is parsed into a new configuration, the command
 * line's settings are replayed over it, and it is compared with the running
 * one (config_diff). What can change live is applied: log.level,
 * stats.interval (live capture) and yara.rules (a new path; payload inspection
 * cannot be turned on or off live). Every other change is logged as waiting
 * for a restart. A file that does not parse is reported (FILE:LINE: reason)
 * and nothing changes.
 *
 * YARA: only a set that compiled is published to the slot, where each worker
 * picks it up before its next scan; a broken rule file is logged (FILE:LINE)
 * and the old set stays.
 */
typedef struct {
    yara_rules_slot *slot; /* NULL: YARA off */
    char *path;            /* rules in service (owned); NULL when YARA is off */
    const char *config_path;
    const sensor_config *start; /* the configuration the sensor started with */
    const cli_set *sets;
    size_t nsets;
    pipeline *pl;
    char *log_level;         /* in service (owned) */
    uint32_t stats_interval; /* in service */
    bool live;               /* live capture: stats.interval applies */
    atomic_int quit;         /* set by main before it wakes the thread with SIGHUP */
    pthread_t thread;
    bool running;
} reloader;

static fh_log_level parse_level(const char *s);

typedef struct {
    reloader *r;
    const sensor_config *next;
    unsigned applied, waiting;
} reload_pass;

/* config_diff callback: applies what can change live, logs the rest. */
static void reload_option(const char *name, const char *old_value, const char *new_value, void *arg)
{
    reload_pass *rp = arg;
    reloader *r = rp->r;
    const sensor_config *n = rp->next;

    if (!strcmp(name, "log.level")) {
        if (strcmp(r->log_level, n->log_level) != 0) {
            fh_log_set_level(parse_level(n->log_level));
            fh_info("SIGHUP: log.level %s -> %s", r->log_level, n->log_level);
            free(r->log_level);
            r->log_level = strdup(n->log_level);
            rp->applied++;
        }
        return;
    }
    if (!strcmp(name, "stats.interval") && r->live) {
        if (r->stats_interval != n->stats_interval) {
            atomic_store(&r->pl->stats_us, (uint64_t)n->stats_interval * 1000000u);
            fh_info("SIGHUP: stats.interval %u -> %u s", r->stats_interval, n->stats_interval);
            r->stats_interval = n->stats_interval;
            rp->applied++;
        }
        return;
    }
    if (!strcmp(name, "yara.rules") && r->slot && n->yara_rules && n->yara_rules[0]) {
        if (strcmp(r->path, n->yara_rules) != 0) {
            fh_info("SIGHUP: yara.rules %s -> %s", r->path, n->yara_rules);
            free(r->path);
            r->path = strdup(n->yara_rules);
            rp->applied++;
        }
        return;
    }
    rp->waiting++;
    if (!strcmp(name, "kafka.properties"))
        fh_warn("SIGHUP: the librdkafka properties changed; they take effect at the next start");
    else
        fh_warn("SIGHUP: option '%s' changed (%s -> %s); it takes effect at the next start", name,
                old_value, new_value);
}

static void reload_config(reloader *r)
{
    sensor_config n;
    char err[1024] = "";
    reload_pass rp = {r, &n, 0, 0};
    fh_err e;

    config_defaults(&n);
    e = config_load_file(&n, r->config_path, err, sizeof(err));
    for (size_t i = 0; e == FH_OK && i < r->nsets; i++)
        e = config_set(&n, r->sets[i].name, r->sets[i].value, err, sizeof(err));
    if (e != FH_OK) {
        fh_error("SIGHUP: configuration reload failed, the running configuration stays: %s", err);
    } else {
        config_diff(r->start, &n, reload_option, &rp);
        fh_info("SIGHUP: configuration %s read: %u change%s applied, %u waiting for a restart",
                r->config_path, rp.applied, rp.applied == 1 ? "" : "s", rp.waiting);
    }
    config_free(&n);
}

static void reload_yara(reloader *r)
{
    yara_rules *rules = NULL;
    char err[2048];

    fh_info("SIGHUP: reloading YARA rules from %s", r->path);
    if (yara_rules_load(r->path, &rules, err, sizeof(err)) != FH_OK) {
        fh_error("YARA reload failed, keeping the rules in service:\n%s", err);
        return;
    }
    fh_info("YARA rules reloaded: %u rules from %u files", yara_rules_count(rules),
            yara_rules_files(rules));
    yara_rules_slot_set(r->slot, rules);
}

static void *reload_main(void *arg)
{
    reloader *r = arg;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
        if (sigwait(&set, &sig) != 0 || atomic_load(&r->quit))
            break;
        if (r->config_path)
            reload_config(r);
        if (r->slot)
            reload_yara(r);
        else if (!r->config_path)
            fh_info("SIGHUP: nothing to reload (no -c configuration file, yara.rules is not set)");
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fenghuo-sensor [options] -r PCAP|DIR [PCAP|DIR ...]\n"
               "       fenghuo-sensor [options] -i INTERFACE [-i INTERFACE ...]\n"
               "\n"
               "Fenghuo (烽火) packet sensor: decodes traffic, classifies flows with nDPI,\n"
               "enriches addresses with GeoIP and writes EVE-compatible JSON events.\n"
               "烽火流量探针：解码流量，用 nDPI 识别应用，用 GeoIP 补充地址信息，输出 EVE 兼容的 "
               "JSON 事件。\n"
               "\n"
               "Input:\n"
               "  -r, --read PATH          pcap/pcapng file or directory of them (repeatable)\n"
               "  -i, --interface IFACE    capture live from IFACE (repeatable: several\n"
               "                           interfaces, polled together)\n"
               "  -f, --filter EXPR        BPF filter\n"
               "  -s, --snaplen N          bytes captured per packet (live)\n"
               "      --no-promisc         do not put the interface in promiscuous mode\n"
               "Output:\n"
               "  -w, --write FILE         NDJSON events to FILE ('-' = stdout; the default\n"
               "                           when there is no Kafka output)\n"
               "      --kafka BROKERS      publish events to Kafka (host:port,...)\n"
               "      --topic TOPIC        topic, or a template such as 'fenghuo.{event_type}'\n"
               "  -X NAME=VALUE            librdkafka property (TLS, SASL, ...), as kcat -X\n"
               "Payload inspection:\n"
               "      --yara-rules PATH    YARA rule file or directory (yara.rules); SIGHUP\n"
               "                           reloads it (a broken file keeps the old rules)\n"
               "      --yara-max-bytes N   scan the first N bytes of each TCP direction and\n"
               "                           UDP payload (yara.max_bytes, default 65536)\n"
               "Threads:\n"
               "      --threads N          worker threads (workers.threads; default: one per\n"
               "                           CPU; 1 = everything on the capture thread)\n"
               "Enrichment:\n"
               "      --geoip-country FILE country database (.mmdb)\n"
               "      --geoip-asn FILE     ASN database (.mmdb)\n"
               "      --geoip-city FILE    city database (.mmdb)\n"
               "Identity:\n"
               "      --sensor-id ID       sensor id written in every event\n"
               "      --segment NAME       network segment written in every event\n"
               "Service:\n"
               "      --user USER          once the capture and outputs are open, switch to\n"
               "                           USER (run.user); --group GROUP (run.group)\n"
               "Configuration:\n"
               "  -c, --config FILE        YAML configuration file\n"
               "      --set NAME=VALUE     set any configuration option\n"
               "      --help-config        list every option with its default\n"
               "  -v, --verbose            more log output;  -q, --quiet  errors only\n"
               "  -h, --help               this help;  -V, --version  version\n"
               "\n"
               "Exit status: 0 on success, 1 on a runtime error, 2 on a usage error.\n"
               "Events are described in docs/events.md.\n");
}

enum {
    OPT_GEO_COUNTRY = 256,
    OPT_GEO_ASN,
    OPT_GEO_CITY,
    OPT_SENSOR_ID,
    OPT_SEGMENT,
    OPT_SET,
    OPT_HELP_CONFIG,
    OPT_NO_PROMISC,
    OPT_KAFKA,
    OPT_TOPIC,
    OPT_YARA_RULES,
    OPT_YARA_MAX_BYTES,
    OPT_USER,
    OPT_GROUP,
    OPT_THREADS,
};

static const struct option long_opts[] = {
    {"read", required_argument, NULL, 'r'},
    {"interface", required_argument, NULL, 'i'},
    {"filter", required_argument, NULL, 'f'},
    {"snaplen", required_argument, NULL, 's'},
    {"write", required_argument, NULL, 'w'},
    {"config", required_argument, NULL, 'c'},
    {"geoip-country", required_argument, NULL, OPT_GEO_COUNTRY},
    {"geoip-asn", required_argument, NULL, OPT_GEO_ASN},
    {"geoip-city", required_argument, NULL, OPT_GEO_CITY},
    {"sensor-id", required_argument, NULL, OPT_SENSOR_ID},
    {"segment", required_argument, NULL, OPT_SEGMENT},
    {"set", required_argument, NULL, OPT_SET},
    {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
    {"no-promisc", no_argument, NULL, OPT_NO_PROMISC},
    {"kafka", required_argument, NULL, OPT_KAFKA},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"yara-rules", required_argument, NULL, OPT_YARA_RULES},
    {"yara-max-bytes", required_argument, NULL, OPT_YARA_MAX_BYTES},
    {"user", required_argument, NULL, OPT_USER},
    {"group", required_argument, NULL, OPT_GROUP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* A growable list of input file names. */
typedef struct {
    char **v;
    bool *in_dir; /* v[i] was found in a -r directory: skipped, not fatal, if unreadable */
    size_t n, cap;
} strlist;

static int strlist_add_flag(strlist *l, const char *s, bool in_dir)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        bool *nd;

        if (!nv)
            return -1;
        l->v = nv;
        if (!(nd = realloc(l->in_dir, nc * sizeof(*nd))))
            return -1;
        l->in_dir = nd;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->in_dir[l->n] = in_dir;
    l->n++;
    return 0;
}

static int strlist_add(strlist *l, const char *s)
{
    return strlist_add_flag(l, s, false);
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->in_dir);
}

/* Inputs passed over: entries of -r directories that are not regular files, and files
 * in them that libpcap cannot read. Each is logged; the summary gives the count. */
static uint64_t inputs_skipped;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Expands one -r argument: a file is taken as is (it must be readable); a
 * directory gives its regular files in name order (hidden files skipped;
 * subdirectories, FIFOs and the like are skipped with a warning and counted).
 */
static int expand_input(strlist *out, const char *path, char *err, size_t errlen)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    size_t first = out->n;

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (access(path, R_OK) != 0) {
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
            return -1;
        }
        return strlist_add(out, path);
    }
    if (!(d = opendir(path))) {
        snprintf(err, errlen, "cannot open directory '%s': %s", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        char full[4096];

        if (de->d_name[0] == '.')
            continue;
        snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            fh_warn("'%s' is not a regular file: skipped", full);
            inputs_skipped++;
            continue;
        }
        if (strlist_add_flag(out, full, true) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    /* (qsort's pointer must not be NULL, even for no elements) */
    if (out->n == first)
        fh_warn("directory '%s' holds no files", path);
    else
        qsort(out->v + first, out->n - first, sizeof(char *), cmp_str);
    return 0;
}

/*
 * Splits the interface setting ("eth0,eth1"; spaces around names ignored) into
 * out. Empty names, duplicates and more than CAPTURE_MAX_IFACES are errors.
 */
static int split_interfaces(strlist *out, const char *list, char *err, size_t errlen)
{
    const char *s = list;

    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char name[256];

        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(name)) {
            snprintf(err, errlen, "capture.interface '%s': empty or overlong interface name", list);
            return -1;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        for (size_t i = 0; i < out->n; i++)
            if (!strcmp(out->v[i], name)) {
                snprintf(err, errlen, "interface '%s' given twice", name);
                return -1;
            }
        if (out->n == CAPTURE_MAX_IFACES) {
            snprintf(err, errlen, "more than %d capture interfaces", CAPTURE_MAX_IFACES);
            return -1;
        }
        if (strlist_add(out, name) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (!e)
            break;
        s = e + 1;
    }
    if (!out->n) {
        snprintf(err, errlen, "capture.interface is empty");
        return -1;
    }
    return 0;
}

/*
 * run.user / run.group: called once every capture handle, the output file and
 * the Kafka spool are open. Supplementary groups are cleared (setgroups to the
 * one group), then setgid, then setuid (glibc applies both to every thread:
 * librdkafka's and the reloader). The result is checked with getuid() & co.,
 * and a process that was root must not be able to become root again. Any
 * failure is an error: the caller stops rather than run on as root.
 */
static int drop_privileges(const sensor_config *cfg, char *err, size_t errlen)
{
    struct passwd *pw;
    uid_t uid;
    gid_t gid;

    errno = 0;
    if (!(pw = getpwnam(cfg->run_user))) {
        snprintf(err, errlen, "run.user '%s': %s", cfg->run_user,
                 errno ? strerror(errno) : "no such user");
        return -1;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (cfg->run_group && cfg->run_group[0]) {
        struct group *gr;

        errno = 0;
        if (!(gr = getgrnam(cfg->run_group))) {
            snprintf(err, errlen, "run.group '%s': %s", cfg->run_group,
                     errno ? strerror(errno) : "no such group");
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
        if (setgroups(1, &gid) != 0 && geteuid() == 0) {
            snprintf(err, errlen, "run.user '%s': setgroups(%u) failed: %s", cfg->run_user,
                     (unsigned)gid, strerror(errno));
            return -1;
        }
        if (setgid(gid) != 0) {
            snprintf(err, errlen, "run.user '%s': setgid(%u) failed: %s", cfg->run_user,
                     (unsigned)gid, strerror(errno));
            return -1;
        }
        if (setuid(uid) != 0) {
            snprintf(err, errlen, "run.user '%s': setuid(%u) failed: %s", cfg->run_user,
                     (unsigned)uid, strerror(errno));
            return -1;
        }
    }
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
        snprintf(err, errlen, "run.user '%s': still uid %u/%u gid %u/%u after the switch",
                 cfg->run_user, (unsigned)getuid(), (unsigned)geteuid(), (unsigned)getgid(),
                 (unsigned)getegid());
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "run.user '%s': root could be regained after the switch",
                 cfg->run_user);
        return -1;
    }
    if (cfg->kafka_brokers && cfg->spool_dir && access(cfg->spool_dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "run.user '%s' cannot write the spool (spool.dir '%s'): %s",
                 cfg->run_user, cfg->spool_dir, strerror(errno));
        return -1;
    }
    fh_info("running as user %s (uid %u, gid %u)", cfg->run_user, (unsigned)uid, (unsigned)gid);
    return 0;
}

static fh_log_level parse_level(const char *s)
{
    if (!strcmp(s, "error"))
        return FH_LOG_ERROR;
    if (!strcmp(s, "warning") || !strcmp(s, "warn"))
        return FH_LOG_WARN;
    if (!strcmp(s, "debug"))
        return FH_LOG_DEBUG;
    return FH_LOG_INFO;
}

/*
 * The last lines of a run, once the outputs are closed: events written are
 * those the outputs kept, dropped those they lost too. Returns the exit status:
 * 1 (with the reason) when an output failed, or when pcap input lost events
 * (live capture may drop by its spool policy: said, not an error).
 */
static int summary(const pipeline_totals *t, const sink_result *sr, bool live, int rc)
{
    uint64_t lost = sr->lost > t->events ? t->events : sr->lost;

    /* a run that already failed (its reason said) has no summary, unless events were lost */
    if (rc != 0 && !lost && !sr->errors && !t->write_errors)
        return rc;
    fh_info("%llu packets, %llu flows, %llu events written (%llu dropped), %llu malformed packets",
            (unsigned long long)t->packets, (unsigned long long)t->flows,
            (unsigned long long)(t->events - lost), (unsigned long long)(t->events_dropped + lost),
            (unsigned long long)t->malformed);
    if (inputs_skipped)
        fh_warn("%llu inputs skipped (not regular files, or not readable as pcap)",
                (unsigned long long)inputs_skipped);
    if (sr->errors || t->write_errors) {
        fh_error("writing events failed: %llu write errors, %llu events lost",
                 (unsigned long long)(sr->errors + t->write_errors),
                 (unsigned long long)(lost + t->write_errors));
        return 1;
    }
    if (lost && !live) {
        fh_error("%llu events were lost (see above)", (unsigned long long)lost);
        return 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    sensor_config cfg;
    strlist reads = {0}, inputs = {0}, ifaces_cli = {0}, ifaces = {0};
    capture *caps[CAPTURE_MAX_IFACES] = {0};
    size_t ncaps = 0;
    const char *config_path = NULL;
    char err[1024] = "";
    geoip *geo = NULL;
    event_sink *sink = NULL;
    pipeline pl;
    pipeline_totals totals;
    bool pl_ready = false, yara_inited = false, have_totals = false;
    reloader rl = {0};
    sigset_t hup;
    int verbosity = 0, rc = 1, opt;
    fh_err e;
    /* Command-line settings are replayed over the configuration file. */
    cli_set sets[256];
    size_t nsets = 0;

    fh_log_init("fenghuo-sensor", FH_LOG_INFO);
    config_defaults(&cfg);
    /* Before any thread (librdkafka, the reloader) exists, so all inherit it. */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);

#define ADD_SET(n, v)                                                                              \
    do {                                                                                           \
        if (nsets == sizeof(sets) / sizeof(sets[0])) {                                             \
            fh_error("too many options");                                                          \
            goto usage_error;                                                                      \
        }                                                                                          \
        sets[nsets].name = strdup(n);                                                              \
        sets[nsets].value = strdup(v);                                                             \
        nsets++;                                                                                   \
    } while (0)

    while ((opt = getopt_long(argc, argv, "r:i:f:s:w:c:X:vqhV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            strlist_add(&reads, optarg);
            break;
        case 'i': /* repeatable; together they replace the configuration's list */
            strlist_add(&ifaces_cli, optarg);
            break;
        case 'f':
            ADD_SET("capture.bpf", optarg);
            break;
        case 's':
            ADD_SET("capture.snaplen", optarg);
            break;
        case 'w':
            ADD_SET("output.file", optarg);
            break;
        case 'c':
            config_path = optarg;
            break;
        case OPT_GEO_COUNTRY:
            ADD_SET("geoip.country", optarg);
            break;
        case OPT_GEO_ASN:
            ADD_SET("geoip.asn", optarg);
            break;
        case OPT_GEO_CITY:
            ADD_SET("geoip.city", optarg);
            break;
        case OPT_SENSOR_ID:
            ADD_SET("sensor.id", optarg);
            break;
        case OPT_SEGMENT:
            ADD_SET("sensor.segment", optarg);
            break;
        case OPT_NO_PROMISC:
            ADD_SET("capture.promisc", "false");
            break;
        case OPT_KAFKA:
            ADD_SET("kafka.brokers", optarg);
            break;
        case OPT_TOPIC:
            ADD_SET("kafka.topic", optarg);
            break;
        case OPT_YARA_RULES:
            ADD_SET("yara.rules", optarg);
            break;
        case OPT_YARA_MAX_BYTES:
            ADD_SET("yara.max_bytes", optarg);
            break;
        case OPT_USER:
            ADD_SET("run.user", optarg);
            break;
        case OPT_GROUP:
            ADD_SET("run.group", optarg);
            break;
        case OPT_THREADS:
            ADD_SET("workers.threads", optarg);
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');

            if (!eq || eq == optarg) {
                fh_error("-X expects NAME=VALUE (a librdkafka property), got '%s'", optarg);
                goto usage_error;
            }
            *eq = '\0';
            /* Replayed over the configuration file (so also on SIGHUP): -X wins. */
            snprintf(err, sizeof(err), "kafka.properties.%s", optarg);
            ADD_SET(err, eq + 1);
            err[0] = '\0';
            break;
        }
        case OPT_SET: {
            char *eq = strchr(optarg, '=');

            if (!eq) {
                fh_error("--set expects NAME=VALUE, got '%s'", optarg);
                goto usage_error;
            }
            *eq = '\0';
            ADD_SET(optarg, eq + 1);
            break;
        }
        case OPT_HELP_CONFIG:
            printf("Configuration options (YAML paths; also --set NAME=VALUE):\n");
            config_print_options(stdout);
            rc = 0;
            goto out;
        case 'v':
            verbosity++;
            break;
        case 'q':
            verbosity = -1;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'V':
            printf("fenghuo-sensor %s (%s)\n", FH_VERSION, FH_GIT_REV);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto usage_error;
        }
    }
    /* Files after the options are inputs too: -r a.pcap b.pcap dir/ */
    for (; optind < argc; optind++) {
        if (!reads.n) {
            fh_error("unexpected argument '%s' (inputs are given with -r)", argv[optind]);
            goto usage_error;
        }
        strlist_add(&reads, argv[optind]);
    }

    if (ifaces_cli.n) {
        char joined[4096] = "";

        for (size_t i = 0; i < ifaces_cli.n; i++) {
            if (i)
                strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
            strncat(joined, ifaces_cli.v[i], sizeof(joined) - strlen(joined) - 1);
        }
        ADD_SET("capture.interface", joined);
    }
    if (config_path && (e = config_load_file(&cfg, config_path, err, sizeof(err))) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    for (size_t i = 0; i < nsets; i++)
        if (config_set(&cfg, sets[i].name, sets[i].value, err, sizeof(err)) != FH_OK) {
            fh_error("%s", err);
            goto usage_error;
        }
    fh_log_set_level(verbosity < 0   ? FH_LOG_ERROR
                     : verbosity > 0 ? FH_LOG_DEBUG
                                     : parse_level(cfg.log_level));

    if (reads.n && cfg.interface) {
        fh_error("give either -r (files) or -i (interface), not both");
        goto usage_error;
    }
    if (!reads.n && !cfg.interface) {
        fh_error("no input: give -r PCAP or -i INTERFACE (see --help)");
        goto usage_error;
    }
    if (cfg.interface && split_interfaces(&ifaces, cfg.interface, err, sizeof(err)) != 0) {
        fh_error("%s", err);
        goto usage_error;
    }
    if (cfg.run_group && cfg.run_group[0] && !(cfg.run_user && cfg.run_user[0])) {
        fh_error("run.group is set without run.user");
        goto usage_error;
    }
    for (size_t i = 0; i < reads.n; i++)
        if (expand_input(&inputs, reads.v[i], err, sizeof(err)) != 0) {
            fh_error("%s", err);
            goto out;
        }

    if (cfg.geoip_country || cfg.geoip_asn || cfg.geoip_city) {
        e = geoip_open(&geo, cfg.geoip_country, cfg.geoip_asn, cfg.geoip_city, err, sizeof(err));
        if (e) {
            fh_error("GeoIP: %s", err);
            goto out;
        }
    }
    if (cfg.yara_max_bytes == 0 || cfg.yara_max_bytes > YARA_MAX_SCAN_BYTES) {
        fh_error("option 'yara.max_bytes': expected 1 to %u bytes, got %zu", YARA_MAX_SCAN_BYTES,
                 cfg.yara_max_bytes);
        goto usage_error;
    }
    if (cfg.yara_rules && cfg.yara_rules[0]) {
        yara_rules *rules = NULL;
        static char yerr[8192];

        if (yara_scan_init() != FH_OK) {
            fh_error("YARA: libyara initialisation failed");
            goto out;
        }
        yara_inited = true;
        e = yara_rules_load(cfg.yara_rules, &rules, yerr, sizeof(yerr));
        if (e != FH_OK) {
            fh_error("YARA rules %s:\n%s", cfg.yara_rules, yerr);
            goto usage_error;
        }
        if (!(rl.slot = yara_rules_slot_new())) {
            yara_rules_unref(rules);
            goto out;
        }
        fh_info("YARA: %u rules from %u files in %s", yara_rules_count(rules),
                yara_rules_files(rules), cfg.yara_rules);
        yara_rules_slot_set(rl.slot, rules);
        rl.path = strdup(cfg.yara_rules);
    }
    cfg.dpi.protos_file = cfg.dpi_protos_file;
    cfg.dpi.categories_file = cfg.dpi_categories_file;

    /* Outputs: a file (-w), Kafka (--kafka), or both; stdout when neither. */
    if (cfg.output_file || !cfg.kafka_brokers) {
        e = sink_file_open(&sink, cfg.output_file ? cfg.output_file : "-", err, sizeof(err));
        if (e) {
            fh_error("%s", err);
            goto out;
        }
    }
    if (cfg.kafka_brokers) {
        event_sink *ks, *tee;

        sink_kafka_set_stop_flag(&stop_requested);
        e = sink_kafka_open(&ks, &cfg, cfg.interface != NULL, err, sizeof(err));
        if (e) {
            fh_error("%s", err);
            goto out;
        }
        if (!sink) {
            sink = ks;
        } else if ((e = sink_tee_new(&tee, sink, ks)) != FH_OK) {
            ks->close(ks, NULL);
            goto out;
        } else {
            sink = tee;
        }
    }
    e = pipeline_init(&pl, &cfg, geo, sink, err, sizeof(err));
    if (e) {
        fh_error("%s", err);
        goto out;
    }
    pl_ready = true;
    if (rl.slot && (e = pipeline_set_yara(&pl, rl.slot, err, sizeof(err))) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    if ((e = pipeline_start(&pl, err, sizeof(err))) != FH_OK) {
        fh_error("%s", err);
        goto out;
    }
    if (pl.threaded)
        fh_debug("%u worker threads", pl.nworkers);
    rl.config_path = config_path;
    rl.start = &cfg;
    rl.sets = sets;
    rl.nsets = nsets;
    rl.pl = &pl;
    rl.log_level = strdup(cfg.log_level);
    rl.stats_interval = cfg.stats_interval;
    rl.live = cfg.interface != NULL;
    if (pthread_create(&rl.thread, NULL, reload_main, &rl) == 0)
        rl.running = true;
    else
        fh_warn("cannot start the SIGHUP reload thread; SIGHUP is ignored");

    {
        /* Without SA_RESTART: a blocking open() or read() (a FIFO with no writer
         * yet) returns EINTR, so SIGINT and SIGTERM stop the sensor there too. */
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);

    rc = 0;
    if (cfg.interface) {
        for (ncaps = 0; ncaps < ifaces.n; ncaps++) {
            e = capture_open_live(&caps[ncaps], ifaces.v[ncaps], cfg.snaplen, cfg.promisc,
                                  cfg.buffer_mb, cfg.bpf, err, sizeof(err));
            if (e) {
                fh_error("%s", err);
                rc = 1;
                goto out;
            }
        }
        if (cfg.run_user && cfg.run_user[0] && drop_privileges(&cfg, err, sizeof(err)) != 0) {
            fh_error("%s; not running on as %s", err, geteuid() == 0 ? "root" : "this user");
            rc = 1;
            goto out;
        }
        pl.stats_us = (uint64_t)cfg.stats_interval * 1000000u;
        fh_info("capturing on %s", cfg.interface);
        e = capture_run_live_set(caps, ncaps, &pl, &stop_requested, err, sizeof(err));
        if (e) {
            fh_error("%s", err);
            rc = 1;
        }
        pipeline_end_of_input(&pl);
        pl.refresh_capture = NULL;
    } else {
        if (cfg.run_user && cfg.run_user[0] && drop_privileges(&cfg, err, sizeof(err)) != 0) {
            fh_error("%s; not running on as %s", err, geteuid() == 0 ? "root" : "this user");
            rc = 1;
            goto out;
        }
        for (size_t i = 0; i < inputs.n && !stop_requested; i++) {
            capture *c;

            e = capture_open_file(&c, inputs.v[i], cfg.bpf, err, sizeof(err));
            if (e && inputs.in_dir[i]) {
                /* one stray file in a capture folder must not stop the others */
                fh_warn("%s: skipped", err);
                inputs_skipped++;
                continue;
            }
            if (e) {
                fh_error("%s", err);
                rc = 1;
                break;
            }
            c->rate = cfg.replay_rate;
            e = c->ops->run(c, &pl, &stop_requested, err, sizeof(err));
            if (e)
                fh_warn("%s", err); /* truncated file: what was read is kept */
            pipeline_end_of_input(&pl);
            c->ops->close(c);
        }
    }
    pipeline_flush(&pl); /* what an output loses here is counted by it, and said at its close */
    pipeline_get_totals(&pl, &totals);
    have_totals = true;
    goto out;

usage_error:
    rc = 2;
out:
    for (size_t i = 0; i < ncaps; i++)
        caps[i]->ops->close(caps[i]);
    if (rl.running) {
        atomic_store(&rl.quit, 1);
        pthread_kill(rl.thread, SIGHUP);
        pthread_join(rl.thread, NULL);
    }
    if (pl_ready)
        pipeline_free(&pl);
    yara_rules_slot_free(rl.slot);
    if (yara_inited)
        yara_scan_fini();
    if (sink) {
        sink_result sr = {0};

        sink->close(sink, &sr);
        if (have_totals)
            rc = summary(&totals, &sr, cfg.interface != NULL, rc);
    }
    geoip_close(geo);
    for (size_t i = 0; i < nsets; i++) {
        free(sets[i].name);
        free(sets[i].value);
    }
    free(rl.path);
    free(rl.log_level);
    strlist_free(&reads);
    strlist_free(&inputs);
    strlist_free(&ifaces_cli);
    strlist_free(&ifaces);
    config_free(&cfg);
    return rc;
}
