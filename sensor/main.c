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
#include <malloc.h>
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
#include "../common/fh_metrics.h"
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
    unsigned yara_flags;   /* yara_rules_load_flags(): YARA_LOAD_NO_PREFILTER */
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

/* Says which rules run only on PE, ELF, Mach-O or DEX data (yara_source.c), and what the
 * prefilter (yara_prefilter.c) leaves to run on every buffer. */
static void yara_log_sets(const yara_rules *rules)
{
    unsigned n = yara_rules_format_only(rules), always = 0;

    if (n)
        fh_info("YARA: %u of the rules need a file-format module (pe, elf, dotnet, macho, dex) "
                "and run on data of such a format only; the others run on all data",
                n);
    if (yara_rules_prefiltered(rules, &always)) {
        const yara_prefilter_info *pi = yara_rules_prefilter_info(rules);
        fh_info("YARA prefilter: %u literals of %u strings; data holding none that a rule "
                "needs skips libyara; %u rule%s may match without one and run on all data%s%s%s",
                pi->literals, pi->strings, always, always == 1 ? "" : "s",
                pi->first_always[0] ? " (the first: " : "", pi->first_always,
                pi->first_always[0] ? ")" : "");
    } else
        fh_info("YARA prefilter: off (yara.prefilter false, no string with a literal, or a CPU "
                "Hyperscan does not run on); every buffer is scanned with every rule");
}

static void reload_yara(reloader *r)
{
    yara_rules *rules = NULL;
    char err[2048];

    fh_info("SIGHUP: reloading YARA rules from %s", r->path);
    if (yara_rules_load_flags(r->path, r->yara_flags, &rules, err, sizeof(err)) != FH_OK) {
        fh_error("YARA reload failed, keeping the rules in service:\n%s", err);
        return;
    }
    fh_info("YARA rules reloaded: %u rules from %u files", yara_rules_count(rules),
            yara_rules_files(rules));
    yara_log_sets(rules);
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

/* ---- main, in phases ------------------------------------------------------------ */

/* A phase's verdict: go on, or stop with an exit status (EXIT_DONE: stop, status 0). */
enum { GO_ON = -1, EXIT_DONE = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Everything one run holds, released by finish(). */
typedef struct {
    sensor_config cfg;
    strlist reads, inputs, ifaces_cli, ifaces;
    capture *caps[CAPTURE_MAX_IFACES];
    size_t ncaps;
    const char *config_path;
    char err[1024];
    geoip *geo;
    event_sink *sink;
    pipeline pl;
    pipeline_totals totals;
    bool pl_ready, yara_inited, have_totals;
    struct fh_metrics *metrics; /* metrics.listen */
    bool ran;                   /* packets may have gone through the pipeline: it has totals */
    reloader rl;
    int verbosity;
    /* command-line settings, replayed over the configuration file (also on SIGHUP) */
    cli_set sets[256];
    size_t nsets;
} sensor_run;

static bool add_set(sensor_run *r, const char *name, const char *value)
{
    if (r->nsets == sizeof(r->sets) / sizeof(r->sets[0])) {
        fh_error("too many options");
        return false;
    }
    r->sets[r->nsets].name = strdup(name);
    r->sets[r->nsets].value = strdup(value);
    r->nsets++;
    return true;
}

/* Phase 1: the command line into settings, inputs and interfaces. */
static int parse_command_line(sensor_run *r, int argc, char **argv)
{
    int opt;

    while ((opt = getopt_long(argc, argv, "r:i:f:s:w:c:X:vqhV", long_opts, NULL)) != -1) {
        const char *name = NULL, *value = optarg;

        switch (opt) {
        case 'r':
            strlist_add(&r->reads, optarg);
            break;
        case 'i': /* repeatable; together they replace the configuration's list */
            strlist_add(&r->ifaces_cli, optarg);
            break;
        case 'c':
            r->config_path = optarg;
            break;
        case 'f':
            name = "capture.bpf";
            break;
        case 's':
            name = "capture.snaplen";
            break;
        case 'w':
            name = "output.file";
            break;
        case OPT_GEO_COUNTRY:
            name = "geoip.country";
            break;
        case OPT_GEO_ASN:
            name = "geoip.asn";
            break;
        case OPT_GEO_CITY:
            name = "geoip.city";
            break;
        case OPT_SENSOR_ID:
            name = "sensor.id";
            break;
        case OPT_SEGMENT:
            name = "sensor.segment";
            break;
        case OPT_NO_PROMISC:
            name = "capture.promisc";
            value = "false";
            break;
        case OPT_KAFKA:
            name = "kafka.brokers";
            break;
        case OPT_TOPIC:
            name = "kafka.topic";
            break;
        case OPT_YARA_RULES:
            name = "yara.rules";
            break;
        case OPT_YARA_MAX_BYTES:
            name = "yara.max_bytes";
            break;
        case OPT_USER:
            name = "run.user";
            break;
        case OPT_GROUP:
            name = "run.group";
            break;
        case OPT_THREADS:
            name = "workers.threads";
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');

            if (!eq || eq == optarg) {
                fh_error("-X expects NAME=VALUE (a librdkafka property), got '%s'", optarg);
                return EXIT_USAGE;
            }
            *eq = '\0';
            /* Replayed over the configuration file (so also on SIGHUP): -X wins. */
            snprintf(r->err, sizeof(r->err), "kafka.properties.%s", optarg);
            if (!add_set(r, r->err, eq + 1))
                return EXIT_USAGE;
            r->err[0] = '\0';
            break;
        }
        case OPT_SET: {
            char *eq = strchr(optarg, '=');

            if (!eq) {
                fh_error("--set expects NAME=VALUE, got '%s'", optarg);
                return EXIT_USAGE;
            }
            *eq = '\0';
            name = optarg;
            value = eq + 1;
            break;
        }
        case OPT_HELP_CONFIG:
            printf("Configuration options (YAML paths; also --set NAME=VALUE):\n");
            config_print_options(stdout);
            return EXIT_DONE;
        case 'v':
            r->verbosity++;
            break;
        case 'q':
            r->verbosity = -1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_DONE;
        case 'V':
            printf("fenghuo-sensor %s (%s)\n", FH_VERSION, FH_GIT_REV);
            return EXIT_DONE;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
        if (name && !add_set(r, name, value))
            return EXIT_USAGE;
    }
    /* Files after the options are inputs too: -r a.pcap b.pcap dir/ */
    for (; optind < argc; optind++) {
        if (!r->reads.n) {
            fh_error("unexpected argument '%s' (inputs are given with -r)", argv[optind]);
            return EXIT_USAGE;
        }
        strlist_add(&r->reads, argv[optind]);
    }
    if (r->ifaces_cli.n) {
        char joined[4096] = "";

        for (size_t i = 0; i < r->ifaces_cli.n; i++) {
            if (i)
                strncat(joined, ",", sizeof(joined) - strlen(joined) - 1);
            strncat(joined, r->ifaces_cli.v[i], sizeof(joined) - strlen(joined) - 1);
        }
        if (!add_set(r, "capture.interface", joined))
            return EXIT_USAGE;
    }
    return GO_ON;
}

/* Phase 2: the configuration file, the command line over it, and what it implies. */
static int configure(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;

    if (r->config_path && config_load_file(cfg, r->config_path, r->err, sizeof(r->err)) != FH_OK) {
        fh_error("%s", r->err);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < r->nsets; i++)
        if (config_set(cfg, r->sets[i].name, r->sets[i].value, r->err, sizeof(r->err)) != FH_OK) {
            fh_error("%s", r->err);
            return EXIT_USAGE;
        }
    fh_log_set_level(r->verbosity < 0   ? FH_LOG_ERROR
                     : r->verbosity > 0 ? FH_LOG_DEBUG
                                        : parse_level(cfg->log_level));
    if (r->reads.n && cfg->interface) {
        fh_error("give either -r (files) or -i (interface), not both");
        return EXIT_USAGE;
    }
    if (!r->reads.n && !cfg->interface) {
        fh_error("no input: give -r PCAP or -i INTERFACE (see --help)");
        return EXIT_USAGE;
    }
    if (cfg->interface && split_interfaces(&r->ifaces, cfg->interface, r->err, sizeof(r->err))) {
        fh_error("%s", r->err);
        return EXIT_USAGE;
    }
    if (cfg->run_group && cfg->run_group[0] && !(cfg->run_user && cfg->run_user[0])) {
        fh_error("run.group is set without run.user");
        return EXIT_USAGE;
    }
    if (cfg->yara_max_bytes == 0 || cfg->yara_max_bytes > YARA_MAX_SCAN_BYTES) {
        fh_error("option 'yara.max_bytes': expected 1 to %u bytes, got %zu", YARA_MAX_SCAN_BYTES,
                 cfg->yara_max_bytes);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < r->reads.n; i++)
        if (expand_input(&r->inputs, r->reads.v[i], r->err, sizeof(r->err)) != 0) {
            fh_error("%s", r->err);
            return EXIT_RUNTIME;
        }
    cfg->dpi.protos_file = cfg->dpi_protos_file;
    cfg->dpi.categories_file = cfg->dpi_categories_file;
    cfg->dpi.malicious_ja3_file = cfg->dpi_malicious_ja3_file;
    cfg->dpi.malicious_sha1_file = cfg->dpi_malicious_sha1_file;
    return GO_ON;
}

/* Phase 3: GeoIP databases and YARA rules. */
static int open_enrichment(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;
    yara_rules *rules = NULL;
    static char yerr[8192];

    if ((cfg->geoip_country || cfg->geoip_asn || cfg->geoip_city) &&
        geoip_open(&r->geo, cfg->geoip_country, cfg->geoip_asn, cfg->geoip_city, r->err,
                   sizeof(r->err)) != FH_OK) {
        fh_error("GeoIP: %s", r->err);
        return EXIT_RUNTIME;
    }
    if (!cfg->yara_rules || !cfg->yara_rules[0])
        return GO_ON;
    if (yara_scan_init() != FH_OK) {
        fh_error("YARA: libyara initialisation failed");
        return EXIT_RUNTIME;
    }
    r->yara_inited = true;
    r->rl.yara_flags = cfg->yara_prefilter ? 0 : YARA_LOAD_NO_PREFILTER;
    if (yara_rules_load_flags(cfg->yara_rules, r->rl.yara_flags, &rules, yerr, sizeof(yerr)) !=
        FH_OK) {
        fh_error("YARA rules %s:\n%s", cfg->yara_rules, yerr);
        return EXIT_USAGE;
    }
    if (!(r->rl.slot = yara_rules_slot_new())) {
        yara_rules_unref(rules);
        return EXIT_RUNTIME;
    }
    fh_info("YARA: %u rules from %u files in %s", yara_rules_count(rules), yara_rules_files(rules),
            cfg->yara_rules);
    yara_log_sets(rules);
    yara_rules_slot_set(r->rl.slot, rules);
    r->rl.path = strdup(cfg->yara_rules);
    return GO_ON;
}

/* Phase 4: the outputs: a file (-w), Kafka (--kafka), or both; stdout when neither. */
static int open_outputs(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;
    event_sink *ks, *tee;

    if ((cfg->output_file || !cfg->kafka_brokers) &&
        sink_file_open(&r->sink, cfg->output_file ? cfg->output_file : "-", r->err,
                       sizeof(r->err)) != FH_OK) {
        fh_error("%s", r->err);
        return EXIT_RUNTIME;
    }
    if (!cfg->kafka_brokers)
        return GO_ON;
    sink_kafka_set_stop_flag(&stop_requested);
    if (sink_kafka_open(&ks, cfg, cfg->interface != NULL, r->err, sizeof(r->err)) != FH_OK) {
        fh_error("%s", r->err);
        return EXIT_RUNTIME;
    }
    if (!r->sink) {
        r->sink = ks;
    } else if (sink_tee_new(&tee, r->sink, ks) != FH_OK) {
        ks->close(ks, NULL);
        return EXIT_RUNTIME;
    } else {
        r->sink = tee;
    }
    return GO_ON;
}

/* Phase 5: the pipeline and its workers, the SIGHUP thread, the stop signals. */
static int start_pipeline(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;
    reloader *rl = &r->rl;
    struct sigaction sa;

    if (pipeline_init(&r->pl, cfg, r->geo, r->sink, r->err, sizeof(r->err)) != FH_OK) {
        fh_error("%s", r->err);
        return EXIT_RUNTIME;
    }
    r->pl_ready = true;
    if (cfg->metrics_listen && *cfg->metrics_listen) {
        if (fh_metrics_start(&r->metrics, cfg->metrics_listen, r->err, sizeof(r->err)) != 0) {
            fh_error("%s", r->err);
            return EXIT_RUNTIME;
        }
        r->pl.metrics = r->metrics;
        fh_info("metrics on http://%s/metrics (port %u)", cfg->metrics_listen,
                fh_metrics_port(r->metrics));
    }
    if ((rl->slot && pipeline_set_yara(&r->pl, rl->slot, r->err, sizeof(r->err)) != FH_OK) ||
        pipeline_start(&r->pl, r->err, sizeof(r->err)) != FH_OK) {
        fh_error("%s", r->err);
        return EXIT_RUNTIME;
    }
    if (r->pl.threaded)
        fh_debug("%u worker threads", r->pl.nworkers);
    rl->config_path = r->config_path;
    rl->start = cfg;
    rl->sets = r->sets;
    rl->nsets = r->nsets;
    rl->pl = &r->pl;
    rl->log_level = strdup(cfg->log_level);
    rl->stats_interval = cfg->stats_interval;
    rl->live = cfg->interface != NULL;
    if (pthread_create(&rl->thread, NULL, reload_main, rl) == 0)
        rl->running = true;
    else
        fh_warn("cannot start the SIGHUP reload thread; SIGHUP is ignored");
    /* Without SA_RESTART: a blocking open() or read() (a FIFO with no writer yet)
     * returns EINTR, so SIGINT and SIGTERM stop the sensor there too. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return GO_ON;
}

/* Phase 6a: live capture on the interfaces until a stop signal. */
static int capture_live(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;
    int rc = EXIT_DONE;

    for (r->ncaps = 0; r->ncaps < r->ifaces.n; r->ncaps++)
        if (capture_open_live(&r->caps[r->ncaps], r->ifaces.v[r->ncaps], cfg->snaplen, cfg->promisc,
                              cfg->buffer_mb, cfg->bpf, r->err, sizeof(r->err)) != FH_OK) {
            fh_error("%s", r->err);
            return EXIT_RUNTIME;
        }
    if (cfg->run_user && cfg->run_user[0] && drop_privileges(cfg, r->err, sizeof(r->err)) != 0) {
        fh_error("%s; not running on as %s", r->err, geteuid() == 0 ? "root" : "this user");
        return EXIT_RUNTIME;
    }
    r->pl.stats_us = (uint64_t)cfg->stats_interval * 1000000u;
    r->ran = true;
    fh_info("capturing on %s", cfg->interface);
    if (capture_run_live_set(r->caps, r->ncaps, &r->pl, &stop_requested, r->err, sizeof(r->err)) !=
        FH_OK) {
        fh_error("%s", r->err);
        rc = EXIT_RUNTIME;
    }
    pipeline_end_of_input(&r->pl);
    r->pl.refresh_capture = NULL;
    return rc;
}

/* Phase 6b: the capture files, in order; a stray file of a -r directory is skipped. */
static int capture_files(sensor_run *r)
{
    sensor_config *cfg = &r->cfg;

    if (cfg->run_user && cfg->run_user[0] && drop_privileges(cfg, r->err, sizeof(r->err)) != 0) {
        fh_error("%s; not running on as %s", r->err, geteuid() == 0 ? "root" : "this user");
        return EXIT_RUNTIME;
    }
    r->ran = true;
    for (size_t i = 0; i < r->inputs.n && !stop_requested; i++) {
        capture *c;
        fh_err e = capture_open_file(&c, r->inputs.v[i], cfg->bpf, r->err, sizeof(r->err));

        if (e && r->inputs.in_dir[i]) {
            /* one stray file in a capture folder must not stop the others */
            fh_warn("%s: skipped", r->err);
            inputs_skipped++;
            continue;
        }
        if (e) {
            fh_error("%s", r->err);
            return EXIT_RUNTIME;
        }
        c->rate = cfg->replay_rate;
        if (c->ops->run(c, &r->pl, &stop_requested, r->err, sizeof(r->err)) != FH_OK)
            fh_warn("%s", r->err); /* truncated file: what was read is kept */
        pipeline_end_of_input(&r->pl);
        c->ops->close(c);
    }
    return EXIT_DONE;
}

/*
 * Phase 7: stops everything in order and frees it. The outputs close last, so
 * the summary counts what they lost at their final flush and close, and the
 * exit status says so (summary()).
 */
static int finish(sensor_run *r, int rc)
{
    for (size_t i = 0; i < r->ncaps; i++)
        r->caps[i]->ops->close(r->caps[i]);
    if (r->rl.running) {
        atomic_store(&r->rl.quit, 1);
        pthread_kill(r->rl.thread, SIGHUP);
        pthread_join(r->rl.thread, NULL);
    }
    if (r->pl_ready)
        pipeline_free(&r->pl);
    fh_metrics_stop(r->metrics);
    yara_rules_slot_free(r->rl.slot);
    if (r->yara_inited)
        yara_scan_fini();
    if (r->sink) {
        sink_result sr = {0};

        r->sink->close(r->sink, &sr);
        if (r->have_totals)
            rc = summary(&r->totals, &sr, r->cfg.interface != NULL, rc);
    }
    geoip_close(r->geo);
    for (size_t i = 0; i < r->nsets; i++) {
        free(r->sets[i].name);
        free(r->sets[i].value);
    }
    free(r->rl.path);
    free(r->rl.log_level);
    strlist_free(&r->reads);
    strlist_free(&r->inputs);
    strlist_free(&r->ifaces_cli);
    strlist_free(&r->ifaces);
    config_free(&r->cfg);
    return rc;
}

int main(int argc, char **argv)
{
    static sensor_run run; /* static: large (the settings), zeroed */
    sensor_run *r = &run;
    sigset_t hup;
    int rc;

    fh_log_init("fenghuo-sensor", FH_LOG_INFO);
    /* The packet path allocates and frees scan, file and reassembly buffers of 4 KiB to a
     * few MiB all the time. glibc would map the large ones afresh and give freed memory
     * back at once, so every new buffer faulted its pages in again (a few percent of the
     * run on the bench mix). Keep them in the heap instead; what the sensor holds is
     * bounded by its memcaps either way. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    config_defaults(&r->cfg);
    /* Before any thread (librdkafka, the reloader) exists, so all inherit it. */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);

    if ((rc = parse_command_line(r, argc, argv)) != GO_ON || (rc = configure(r)) != GO_ON ||
        (rc = open_enrichment(r)) != GO_ON || (rc = open_outputs(r)) != GO_ON ||
        (rc = start_pipeline(r)) != GO_ON)
        return finish(r, rc);
    rc = r->cfg.interface ? capture_live(r) : capture_files(r);
    if (r->ran) {
        /* what an output loses here is counted by it, and said at its close */
        pipeline_flush(&r->pl);
        pipeline_get_totals(&r->pl, &r->totals);
        r->have_totals = true;
    }
    return finish(r, rc);
}
