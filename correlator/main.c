/*
 * main.c - fenghuo-correlator command line.
 *
 * `--check-rules PATH` validates a rule directory (or file): every document is
 * compiled or refused with "file:line: rule 'title': reason", then a summary
 * line; the exit status is 1 when anything was refused, so it fits a CI check
 * of a rule repository.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"
#include "assets.h"
#include "event.h"
#include "lists.h"
#include "sigma.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: fenghuo-correlator --check-rules PATH [--lists DIR] [--assets FILE] "
               "[--quiet]\n"
               "\n"
               "Fenghuo (烽火) correlator: Sigma rules over sensor events.\n"
               "烽火关联分析引擎：以 Sigma 规则分析探针事件。\n"
               "\n"
               "  --check-rules PATH   validate every rule under PATH (file or directory) and\n"
               "                       print each refused one as file:line: reason\n"
               "  --lists DIR          placeholder lists for |expand (default: the 'lists'\n"
               "                       folder beside the rule folder, when there is one)\n"
               "  --assets FILE        asset inventory (its placeholders: management networks,\n"
               "                       allowed countries, zones, egress lists)\n"
               "  -q, --quiet          print only the refused rules and the summary\n"
               "  -h, --help           this help;  -V, --version  version\n"
               "\n"
               "Exit status: 0 when every rule loads, 1 when some are refused, 2 on usage.\n");
}

/* Placeholders: rules/lists files and the asset inventory; a name in both is an error. */
typedef struct {
    list_store lists;
    assets *inv;
} placeholders;

static fh_err resolve_placeholder(void *arg, const char *name, const char *const **values,
                                  size_t *n)
{
    placeholders *p = arg;
    const char *const *lv = NULL;
    const char **av = NULL;
    size_t ln = 0, an = 0;
    fh_err le = lists_get(&p->lists, name, &lv, &ln);
    fh_err ae = p->inv ? assets_placeholder(p->inv, name, &av, &an) : FH_ERR_NOTFOUND;

    if (le == FH_OK && ae == FH_OK)
        return FH_ERR_CONFIG;
    if (le == FH_OK) {
        *values = lv;
        *n = ln;
        return FH_OK;
    }
    if (ae == FH_OK) {
        *values = (const char *const *)av;
        *n = an;
        return FH_OK;
    }
    return FH_ERR_NOTFOUND;
}

/* The default lists folder: "lists" beside the rule folder (rules/level3 -> rules/lists). */
static void default_lists_dir(const char *rules, char *out, size_t len)
{
    char tmp[4096];
    char *slash;

    snprintf(tmp, sizeof(tmp), "%s", rules);
    while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/')
        tmp[strlen(tmp) - 1] = '\0';
    slash = strrchr(tmp, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(tmp, sizeof(tmp), ".");
    snprintf(out, len, "%s/lists", tmp);
}

static int check_rules(const char *path, const char *lists_dir, const char *assets_file, bool quiet)
{
    field_table ft;
    ruleset rs;
    placeholders ph = {0};
    char err[1024], dflt[4096];
    int rc;

    if (!lists_dir) {
        default_lists_dir(path, dflt, sizeof(dflt));
        lists_dir = dflt;
    }
    if (lists_load(&ph.lists, lists_dir, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        return 1;
    }
    if (assets_file && assets_load(&ph.inv, assets_file, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        lists_free(&ph.lists);
        return 1;
    }
    field_table_init(&ft);
    if (sigma_load_with(&rs, path, &ft, resolve_placeholder, &ph, err, sizeof(err)) != FH_OK) {
        fh_error("%s", err);
        field_table_free(&ft);
        lists_free(&ph.lists);
        assets_free(ph.inv);
        return 1;
    }
    for (uint32_t i = 0; i < rs.nerrors; i++) {
        const load_error *e = &rs.errors[i];

        if (e->rule)
            printf("%s:%u: rule '%s': %s\n", e->file, e->line, e->rule, e->reason);
        else
            printf("%s:%u: %s\n", e->file, e->line, e->reason);
    }
    if (!quiet)
        for (uint32_t i = 0; i < rs.nrules; i++)
            printf("%s:%u: ok: %s%s%s\n", rs.rules[i].file, rs.rules[i].line, rs.rules[i].title,
                   rs.rules[i].id ? " " : "", rs.rules[i].id ? rs.rules[i].id : "");
    printf("%u rules loaded, %u refused, in %u files; %u distinct fields\n", rs.nrules, rs.nerrors,
           rs.files, ft.n);
    rc = rs.nerrors ? 1 : 0;
    ruleset_free(&rs);
    field_table_free(&ft);
    lists_free(&ph.lists);
    assets_free(ph.inv);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"check-rules", required_argument, NULL, 'C'},
        {"lists", required_argument, NULL, 'L'},
        {"assets", required_argument, NULL, 'A'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *check = NULL, *lists_dir = NULL, *assets_file = NULL;
    bool quiet = false;
    int opt;

    fh_log_init("fenghuo-correlator", FH_LOG_INFO);
    while ((opt = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
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
        case 'A':
            assets_file = optarg;
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
    if (!check) {
        usage(stderr);
        return 2;
    }
    return check_rules(check, lists_dir, assets_file, quiet);
}
