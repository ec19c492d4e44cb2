/*
 * sigma_load.c - Sigma YAML documents to compiled rules (see sigma.h).
 *
 * Each file may hold several YAML documents; each document is one rule and is
 * compiled or refused on its own, with the file, the line of the offending node
 * and a reason. libyaml's document API gives every node its line.
 *
 * Fields: rules written for Fenghuo use EVE paths (dest_port, ndpi.risks,
 * geo.dest.country, src_asset.zone). Rules from SigmaHQ use Sigma's taxonomy
 * (dst_ip, c-uri, query, id.resp_h); a fixed table maps the names that have an
 * EVE equivalent, and any field Fenghuo's (or Suricata's) events cannot carry is
 * refused with that reason instead of loading a rule that could never match.
 */
#include "sigma.h"

#include "../common/fh_yaml.h"

#include "corr_rule.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_MODS 8

/* ---- errors ------------------------------------------------------------------- */

static void add_error(ruleset *rs, const char *file, uint32_t line, const char *rule,
                      const char *reason)
{
    load_error *e = realloc(rs->errors, (rs->nerrors + 1) * sizeof(*e));

    if (!e)
        return;
    rs->errors = e;
    e = &rs->errors[rs->nerrors++];
    e->file = strdup(file);
    e->line = line;
    e->rule = rule ? strdup(rule) : NULL;
    e->reason = strdup(reason);
}

/* The compile context of one document. */
typedef struct {
    yaml_document_t *doc;
    const char *file;
    field_table *ft;
    sigma_placeholder_fn resolve;
    void *resolve_arg;
    char err[512];
    uint32_t err_line;
} ctx;

static bool fail_at(ctx *c, yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail_at(ctx *c, yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->err_line = n ? (uint32_t)n->start_mark.line + 1 : 0;
    return false;
}

/* ---- YAML helpers --------------------------------------------------------------- */

static char *dup_scalar(ctx *c, yaml_node_t *m, const char *k)
{
    const char *v = fh_yaml_scalar(fh_yaml_get(c->doc, m, k));

    return v ? strdup(v) : NULL;
}

/* Refuses a mapping that names a key twice, at the second one, with file:line. */
static bool check_unique_keys(ctx *c, yaml_node_t *m, const char *what)
{
    yaml_node_t *first = NULL, *dup = fh_yaml_duplicate_key(c->doc, m, &first);

    if (!dup)
        return true;
    return fail_at(c, dup, "duplicate key '%s' in %s (first at line %u)", fh_yaml_scalar(dup), what,
                   fh_yaml_line(first));
}

/* Classifies a plain scalar as YAML 1.1/1.2 core would: number, bool, null or string. */
static yaml_value_type scalar_type(yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    char *end;

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return YV_STRING;
    if (!*s || !strcmp(s, "~") || !strcasecmp(s, "null"))
        return YV_NULL;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "false"))
        return YV_BOOL;
    strtod(s, &end);
    if (end != s && *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s))
        return YV_NUMBER;
    return YV_STRING;
}

/* ---- fields ----------------------------------------------------------------------- */

/* Sigma taxonomy names with an EVE equivalent. */
static const struct {
    const char *sigma, *eve;
} field_map[] = {
    {"dst_ip", "dest_ip"},
    {"dst_port", "dest_port"},
    {"DestinationIp", "dest_ip"},
    {"DestinationPort", "dest_port"},
    {"SourceIp", "src_ip"},
    {"SourcePort", "src_port"},
    {"source.ip", "src_ip"},
    {"destination.ip", "dest_ip"},
    {"source.port", "src_port"},
    {"destination.port", "dest_port"},
    {"id.orig_h", "src_ip"},
    {"id.orig_p", "src_port"},
    {"id.resp_h", "dest_ip"},
    {"id.resp_p", "dest_port"},
    {"DestinationHostname", "ndpi.hostname"},
    {"query", "dns.rrname"},
    {"QueryName", "dns.rrname"},
    {"qtype_name", "dns.rrtype"},
    {"record_type", "dns.rrtype"},
    {"rcode_name", "dns.rcode"},
    {"c-uri", "http.url"},
    {"cs-uri", "http.url"},
    {"cs-uri-stem", "http.url"},
    {"cs-uri-query", "http.url"},
    {"c-uri-query", "http.url"},
    {"c-uri-stem", "http.url"},
    {"uri", "http.url"},
    {"cs-host", "http.hostname"},
    {"r-dns", "http.hostname"},
    {"host", "http.hostname"},
    {"c-useragent", "http.http_user_agent"},
    {"cs-user-agent", "http.http_user_agent"},
    {"user_agent", "http.http_user_agent"},
    {"cs-method", "http.http_method"},
    {"method", "http.http_method"},
    {"sc-status", "http.status"},
    {"status_code", "http.status"},
    {"server_name", "tls.sni"},
    {"resp_mime_types", "http.http_content_type"},
};

/* EVE paths the events can carry (prefixes ending in '.' cover a whole object). */
static const char *const eve_fields[] = {
    "timestamp",    "event_type",    "schema_version", "flow_id",      "src_ip",
    "src_port",     "dest_ip",       "dest_port",      "proto",        "app_proto",
    "community_id", "vlan",          "icmp_type",      "icmp_code",    "in_iface",
    "src_internet", "dest_internet", "zone_pair",      "zone_allowed", "egress_allowed",
    "sensor.",      "ether.",        "tunnel.",        "flow.",        "tcp.",
    "ndpi.",        "tls.",          "http.",          "dns.",         "ssh.",
    "smb.",         "geo.",          "yara.",          "stats.",       "anomaly.",
    "alert.",       "fileinfo.",     "src_asset.",     "dest_asset.",  "ftp.",
    "smtp.",        "rdp.",          "krb5.",          "snmp.",        "dhcp.",
    "quic.",        "mqtt.",         "login.",         "arp.",         "file.",
    "ipv6_ra.",     "dcerpc.",       "email.",
};

/*
 * Resolves a rule's field name to an EVE path and interns it. Returns false with a
 * reason when Fenghuo's events cannot carry the field.
 */
static bool resolve_field(ctx *c, yaml_node_t *n, const char *name, field_id *out)
{
    const char *eve = name;

    for (size_t i = 0; i < sizeof(field_map) / sizeof(field_map[0]); i++)
        if (!strcmp(field_map[i].sigma, name)) {
            eve = field_map[i].eve;
            break;
        }
    for (size_t i = 0; i < sizeof(eve_fields) / sizeof(eve_fields[0]); i++) {
        size_t l = strlen(eve_fields[i]);
        bool prefix = eve_fields[i][l - 1] == '.';

        if (prefix ? (strncmp(eve, eve_fields[i], l) == 0 && eve[l])
                   : strcmp(eve, eve_fields[i]) == 0) {
            *out = field_intern(c->ft, eve);
            if (*out == FIELD_NONE)
                return fail_at(c, n, "too many distinct fields in the loaded rules (limit %d)",
                               FIELD_MAX);
            return true;
        }
    }
    return fail_at(c, n, "field '%s' is not carried by Fenghuo (or Suricata EVE) events", name);
}

/* ---- logsource -------------------------------------------------------------------------- */

/* Which event type a logsource selects; false with a reason if none can serve it. */
static bool logsource_event_type(ctx *c, yaml_node_t *ls, sigma_rule *r)
{
    const char *product = r->logsource_product, *category = r->logsource_category,
               *service = r->logsource_service;
    const char *et = NULL;

    if (!ls)
        return fail_at(c, NULL, "missing 'logsource'");
    if (product && strcasecmp(product, "fenghuo") && strcasecmp(product, "suricata") &&
        strcasecmp(product, "zeek"))
        return fail_at(c, ls,
                       "logsource product '%s' is not a network sensor (fenghuo, "
                       "suricata or zeek)",
                       product);
    if (product && !strcasecmp(product, "zeek")) {
        static const struct {
            const char *svc, *et;
        } zeek[] = {{"conn", "flow"},      {"dns", "dns"},         {"http", "http"},
                    {"ssl", "tls"},        {"x509", "tls"},        {"ssh", "ssh"},
                    {"smb_files", "smb"},  {"smb_mapping", "smb"}, {"dce_rpc", "dcerpc"},
                    {"kerberos", "krb5"},  {"rdp", NULL},          {"ntlm", NULL},
                    {"files", "fileinfo"}, {"ftp", "ftp"},         {"smtp", "smtp"}};

        for (size_t i = 0; service && i < sizeof(zeek) / sizeof(zeek[0]); i++)
            if (!strcasecmp(service, zeek[i].svc)) {
                if (!zeek[i].et)
                    return fail_at(c, ls,
                                   "logsource zeek/%s: Fenghuo has no events of that "
                                   "kind (yet)",
                                   service);
                et = zeek[i].et;
                goto done;
            }
        return fail_at(c, ls, "logsource zeek/%s is not supported", service ? service : "(none)");
    }
    if (category) {
        static const struct {
            const char *cat, *et;
        } cats[] = {{"flow", "flow"},       {"network", "flow"},  {"network_connection", "flow"},
                    {"firewall", "flow"},   {"dns", "dns"},       {"proxy", "http"},
                    {"webserver", "http"},  {"http", "http"},     {"tls", "tls"},
                    {"ssh", "ssh"},         {"yara", "yara"},     {"stats", "stats"},
                    {"anomaly", "anomaly"}, {"smb", "smb"},       {"fileinfo", "fileinfo"},
                    {"arp", "arp"},         {"file", "fileinfo"}, {"ipv6_ra", "ipv6_ra"},
                    {"dcerpc", "dcerpc"},   {"ftp", "ftp"},       {"krb5", "krb5"},
                    {"kerberos", "krb5"},   {"smtp", "smtp"},     {"email", "smtp"}};

        for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++)
            if (!strcasecmp(category, cats[i].cat)) {
                et = cats[i].et;
                goto done;
            }
        return fail_at(c, ls, "logsource category '%s' is not a network event category", category);
    }
    if (service) {
        if (!strcasecmp(service, "netflow")) {
            et = "flow";
            goto done;
        }
        return fail_at(c, ls, "logsource service '%s' is not supported", service);
    }
    if (!product)
        return fail_at(c, ls, "logsource names no product, category or service");
done:
    r->event_type = et ? strdup(et) : NULL;
    r->event_type_len = et ? (uint32_t)strlen(et) : 0;
    r->event_type_field = field_intern(c->ft, "event_type");
    return true;
}

/* ---- detection ---------------------------------------------------------------------------- */

static bool compile_value(ctx *c, yaml_node_t *vn, const char *const *mods, size_t nmods,
                          value_matcher *m)
{
    yaml_value v;
    char e[384];

    if (vn->type != YAML_SCALAR_NODE)
        return fail_at(c, vn, "a value must be a scalar (nested lists and maps are not Sigma)");
    v.text = (const char *)vn->data.scalar.value;
    v.len = vn->data.scalar.length;
    v.type = scalar_type(vn);
    if (sigma_value_compile(m, mods, nmods, &v, c->ft, e, sizeof(e)) != FH_OK)
        return fail_at(c, vn, "%s", e);
    return true;
}

/*
 * |expand: every value is a whole placeholder "%name%" standing for a list;
 * the list's entries are compiled under the other modifiers, as alternatives.
 */
static bool compile_expanded(ctx *c, yaml_node_t *kn, yaml_node_t *vn, const char *const *mods,
                             size_t nmods, field_cond *fc)
{
    yaml_node_t *items[64];
    size_t nitems = 0, total = 0;

    if (fc->all)
        return fail_at(c, kn, "modifiers 'expand' and 'all' cannot be combined");
    if (vn->type == YAML_SCALAR_NODE)
        items[nitems++] = vn;
    else if (vn->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = vn->data.sequence.items.start;
             it < vn->data.sequence.items.top && nitems < 64; it++)
            items[nitems++] = fh_yaml_node(c->doc, *it);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nitems; i++) {
            const char *t = fh_yaml_scalar(items[i]);
            size_t tl = t ? strlen(t) : 0, n = 0;
            const char *const *vals = NULL;
            char name[160];

            if (!t || tl < 3 || t[0] != '%' || t[tl - 1] != '%' || tl - 2 >= sizeof(name))
                return fail_at(c, items[i],
                               "|expand takes placeholders of the form %%name%%, "
                               "got '%s'",
                               t ? t : "(not a string)");
            snprintf(name, sizeof(name), "%.*s", (int)(tl - 2), t + 1);
            fh_err re = c->resolve ? c->resolve(c->resolve_arg, name, &vals, &n) : FH_ERR_NOTFOUND;

            if (re == FH_ERR_CONFIG)
                return fail_at(c, items[i],
                               "placeholder '%%%s%%' is defined both in "
                               "rules/lists/%s.txt and in the asset inventory",
                               name, name);
            if (re != FH_OK)
                return fail_at(c, items[i],
                               "placeholder '%%%s%%' is not defined (no "
                               "rules/lists/%s.txt and not in the asset inventory)",
                               name, name);
            if (pass == 0) {
                total += n;
                continue;
            }
            for (size_t j = 0; j < n; j++) {
                yaml_value v = {vals[j], strlen(vals[j]), YV_STRING};
                char e[384];

                if (sigma_value_compile(&fc->values[fc->nvalues], mods, nmods, &v, c->ft, e,
                                        sizeof(e)) != FH_OK)
                    return fail_at(c, items[i], "placeholder '%%%s%%' value '%s': %s", name,
                                   vals[j], e);
                fc->nvalues++;
            }
        }
        if (pass == 0) {
            if (total == 0)
                return fail_at(c, vn, "the placeholders of field '%s' are empty lists",
                               fh_yaml_scalar(kn));
            fc->values = calloc(total, sizeof(*fc->values));
            if (!fc->values)
                return fail_at(c, vn, "out of memory");
        }
    }
    return true;
}

/*
 * Splits "field|mod|mod" at its bars into key (a copy) and toks. An empty part
 * ("a||b", a trailing '|') is refused, as is a key longer than the buffer:
 * neither may be read as something else.
 */
static bool split_key(ctx *c, yaml_node_t *kn, char *key, size_t keylen, char **toks, size_t *ntoks,
                      size_t maxtoks)
{
    const char *k = fh_yaml_scalar(kn);
    size_t len = strlen(k);
    char *p;

    if (len >= keylen)
        return fail_at(c, kn, "field name and modifiers longer than %zu bytes", keylen - 1);
    memcpy(key, k, len + 1);
    *ntoks = 0;
    p = key;
    for (;;) {
        char *bar = strchr(p, '|');

        if (*ntoks == maxtoks)
            return fail_at(c, kn, "too many modifiers");
        toks[(*ntoks)++] = p;
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    for (size_t i = 1; i < *ntoks; i++)
        if (!toks[i][0])
            return fail_at(c, kn, "empty modifier in '%s'", k);
    return true;
}

/* "field|mod|mod": value(s) -> one field_cond. */
static bool compile_field(ctx *c, yaml_node_t *kn, yaml_node_t *vn, field_cond *fc)
{
    char key[256], *toks[MAX_MODS + 4] = {0};
    const char *mods[MAX_MODS];
    size_t nmods = 0, ntoks = 0;
    bool expand = false;

    memset(fc, 0, sizeof(*fc));
    if (!split_key(c, kn, key, sizeof(key), toks, &ntoks, MAX_MODS + 4))
        return false;
    if (!toks[0][0] && ntoks > 1) {
        /* "|all": keywords with modifiers (no field): searched in the event text */
        fc->field = FIELD_NONE;
        mods[nmods++] = "contains";
        if (strcmp(toks[1], "all") == 0)
            fc->all = true;
        else
            return fail_at(c, kn, "keyword modifier '%s' is not supported (only '|all')", toks[1]);
        if (ntoks > 2)
            return fail_at(c, kn, "keyword searches take only the '|all' modifier");
        goto values;
    }
    if (!toks[0][0])
        return fail_at(c, kn, "empty field name");
    if (!resolve_field(c, kn, toks[0], &fc->field))
        return false;
    for (size_t i = 1; i < ntoks; i++) {
        const char *tok = toks[i];

        if (!strcmp(tok, "all"))
            fc->all = true;
        else if (!strcmp(tok, "expand"))
            expand = true;
        else if (nmods == MAX_MODS)
            return fail_at(c, kn, "too many modifiers");
        else
            mods[nmods++] = tok;
    }
    if (expand)
        return compile_expanded(c, kn, vn, mods, nmods, fc);
values:
    if (vn->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);

        if (n == 0)
            return fail_at(c, vn, "field '%s' has an empty list of values", fh_yaml_scalar(kn));
        fc->values = calloc(n, sizeof(*fc->values));
        if (!fc->values)
            return fail_at(c, vn, "out of memory");
        for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
             it++)
            if (!compile_value(c, fh_yaml_node(c->doc, *it), mods, nmods,
                               &fc->values[fc->nvalues++]))
                return false;
        return true;
    }
    if (fc->all)
        return fail_at(c, kn, "modifier 'all' needs a list of values");
    fc->values = calloc(1, sizeof(*fc->values));
    if (!fc->values)
        return fail_at(c, vn, "out of memory");
    fc->nvalues = 1;
    return compile_value(c, vn, mods, nmods, &fc->values[0]);
}

static bool compile_map(ctx *c, yaml_node_t *mn, sel_map *sm)
{
    size_t n = (size_t)(mn->data.mapping.pairs.top - mn->data.mapping.pairs.start);

    if (n == 0)
        return fail_at(c, mn, "empty selection map");
    if (!check_unique_keys(c, mn, "a selection"))
        return false;
    sm->conds = calloc(n, sizeof(*sm->conds));
    if (!sm->conds)
        return fail_at(c, mn, "out of memory");
    for (yaml_node_pair_t *p = mn->data.mapping.pairs.start; p < mn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = fh_yaml_node(c->doc, p->key), *vn = fh_yaml_node(c->doc, p->value);

        if (!fh_yaml_scalar(kn))
            return fail_at(c, kn, "a field name must be a string");
        if (vn->type == YAML_MAPPING_NODE)
            return fail_at(c, vn, "field '%s': a map is not a value", fh_yaml_scalar(kn));
        if (!compile_field(c, kn, vn, &sm->conds[sm->nconds++]))
            return false;
    }
    return true;
}

/* Keywords: a list of strings searched in the raw event text (contains, no case). */
static bool compile_keywords(ctx *c, yaml_node_t *ln, selection *s)
{
    static const char *const contains[] = {"contains"};
    size_t n = (size_t)(ln->data.sequence.items.top - ln->data.sequence.items.start);
    field_cond *fc;

    s->maps = calloc(1, sizeof(*s->maps));
    if (!s->maps || !(fc = calloc(1, sizeof(*fc))))
        return fail_at(c, ln, "out of memory");
    s->nmaps = 1;
    s->maps[0].conds = fc;
    s->maps[0].nconds = 1;
    fc->field = FIELD_NONE;
    fc->values = calloc(n, sizeof(*fc->values));
    if (!fc->values)
        return fail_at(c, ln, "out of memory");
    for (yaml_node_item_t *it = ln->data.sequence.items.start; it < ln->data.sequence.items.top;
         it++)
        if (!compile_value(c, fh_yaml_node(c->doc, *it), contains, 1, &fc->values[fc->nvalues++]))
            return false;
    return true;
}

static bool compile_selection(ctx *c, const char *name, yaml_node_t *vn, selection *s)
{
    s->name = strdup(name);
    if (vn->type == YAML_MAPPING_NODE) {
        s->maps = calloc(1, sizeof(*s->maps));
        if (!s->maps)
            return fail_at(c, vn, "out of memory");
        s->nmaps = 1;
        return compile_map(c, vn, &s->maps[0]);
    }
    if (vn->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
        yaml_node_t *first;

        if (n == 0)
            return fail_at(c, vn, "selection '%s' is an empty list", name);
        first = fh_yaml_node(c->doc, *vn->data.sequence.items.start);
        if (first->type == YAML_SCALAR_NODE) {
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++)
                if (fh_yaml_node(c->doc, *it)->type != YAML_SCALAR_NODE)
                    return fail_at(c, fh_yaml_node(c->doc, *it),
                                   "selection '%s' mixes keywords and maps", name);
            return compile_keywords(c, vn, s);
        }
        s->maps = calloc(n, sizeof(*s->maps));
        if (!s->maps)
            return fail_at(c, vn, "out of memory");
        for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
             it++) {
            yaml_node_t *mn = fh_yaml_node(c->doc, *it);

            if (mn->type != YAML_MAPPING_NODE)
                return fail_at(c, mn, "selection '%s' mixes keywords and maps", name);
            if (!compile_map(c, mn, &s->maps[s->nmaps++]))
                return false;
        }
        return true;
    }
    return fail_at(c, vn, "selection '%s' must be a map or a list", name);
}

static bool compile_detection(ctx *c, yaml_node_t *det, yaml_node_t *det_key, sigma_rule *r)
{
    size_t n;
    yaml_node_t *cond = NULL;
    const char **names;

    if (!det || det->type != YAML_MAPPING_NODE)
        return fail_at(c, det, "missing or malformed 'detection'");
    if (!check_unique_keys(c, det, "'detection'"))
        return false;
    n = (size_t)(det->data.mapping.pairs.top - det->data.mapping.pairs.start);
    r->sels = calloc(n, sizeof(*r->sels));
    if (!r->sels)
        return fail_at(c, det, "out of memory");
    for (yaml_node_pair_t *p = det->data.mapping.pairs.start; p < det->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = fh_yaml_node(c->doc, p->key), *vn = fh_yaml_node(c->doc, p->value);
        const char *k = fh_yaml_scalar(kn);

        if (!k)
            return fail_at(c, kn, "a selection name must be a string");
        if (!strcmp(k, "condition")) {
            cond = vn;
            continue;
        }
        if (!strcasecmp(k, "and") || !strcasecmp(k, "or") || !strcasecmp(k, "not") ||
            !strcasecmp(k, "of") || !strcasecmp(k, "all") || !strcasecmp(k, "them") ||
            !strcmp(k, "1"))
            return fail_at(c, kn, "'%s' is a condition keyword and cannot name a selection", k);
        if (!strcmp(k, "timeframe"))
            return fail_at(c, kn,
                           "'timeframe' in detection is Sigma v1 aggregation: use a "
                           "correlation rule");
        if (!compile_selection(c, k, vn, &r->sels[r->nsels++]))
            return false;
    }
    if (!cond)
        return fail_at(c, det_key, "detection has no 'condition'");
    if (r->nsels == 0)
        return fail_at(c, det_key, "detection has no selections");
    names = calloc(r->nsels, sizeof(*names));
    if (!names)
        return fail_at(c, det, "out of memory");
    for (uint32_t i = 0; i < r->nsels; i++)
        names[i] = r->sels[i].name;
    if (cond->type == YAML_SCALAR_NODE || cond->type == YAML_SEQUENCE_NODE) {
        size_t nc = cond->type == YAML_SCALAR_NODE
                        ? 1
                        : (size_t)(cond->data.sequence.items.top - cond->data.sequence.items.start);

        r->conds = calloc(nc ? nc : 1, sizeof(*r->conds));
        for (size_t i = 0; r->conds && i < nc; i++) {
            yaml_node_t *cn = cond->type == YAML_SCALAR_NODE
                                  ? cond
                                  : fh_yaml_node(c->doc, cond->data.sequence.items.start[i]);
            char e[384];

            if (!fh_yaml_scalar(cn)) {
                free(names);
                return fail_at(c, cn, "a condition must be a string");
            }
            if (sigma_cond_parse(fh_yaml_scalar(cn), names, r->nsels, &r->conds[r->nconds], e,
                                 sizeof(e)) != FH_OK) {
                free(names);
                return fail_at(c, cn, "%s", e);
            }
            r->nconds++;
        }
    } else {
        free(names);
        return fail_at(c, cond, "'condition' must be a string or a list of strings");
    }
    free(names);
    if (!r->conds || r->nconds == 0)
        return fail_at(c, cond, "empty condition");
    return true;
}

/* ---- documents ------------------------------------------------------------------------ */

static level parse_level(const char *s, bool *ok)
{
    static const char *names[] = {"informational", "low", "medium", "high", "critical"};

    *ok = true;
    for (int i = 0; s && i < 5; i++)
        if (!strcasecmp(s, names[i]))
            return (level)i;
    *ok = s == NULL;
    return LEVEL_MEDIUM;
}

static bool compile_rule(ctx *c, yaml_node_t *root, sigma_rule *r)
{
    yaml_node_t *tags, *ls;
    bool ok;

    if (!check_unique_keys(c, root, "the rule") ||
        !check_unique_keys(c, fh_yaml_get(c->doc, root, "logsource"), "'logsource'"))
        return false;
    if (fh_yaml_get(c->doc, root, "action"))
        return fail_at(c, fh_yaml_get(c->doc, root, "action"),
                       "rule collections ('action: global/repeat/reset') are Sigma v1: write "
                       "one document per rule");
    r->title = dup_scalar(c, root, "title");
    if (!r->title)
        return fail_at(c, root, "missing 'title'");
    r->title_zh = dup_scalar(c, root, "title_zh");
    r->id = dup_scalar(c, root, "id");
    r->name = dup_scalar(c, root, "name");
    r->status = dup_scalar(c, root, "status");
    r->description = dup_scalar(c, root, "description");
    r->author = dup_scalar(c, root, "author");
    r->lvl = parse_level(fh_yaml_scalar(fh_yaml_get(c->doc, root, "level")), &ok);
    if (!ok)
        return fail_at(c, fh_yaml_get(c->doc, root, "level"), "unknown level '%s'",
                       fh_yaml_scalar(fh_yaml_get(c->doc, root, "level")));
    tags = fh_yaml_get(c->doc, root, "tags");
    if (tags && tags->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(tags->data.sequence.items.top - tags->data.sequence.items.start);

        r->tags = calloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; r->tags && i < n; i++) {
            const char *t =
                fh_yaml_scalar(fh_yaml_node(c->doc, tags->data.sequence.items.start[i]));

            if (t)
                r->tags[r->ntags++] = strdup(t);
        }
    }
    ls = fh_yaml_get(c->doc, root, "logsource");
    r->logsource_product = dup_scalar(c, ls, "product");
    r->logsource_category = dup_scalar(c, ls, "category");
    r->logsource_service = dup_scalar(c, ls, "service");
    if (!logsource_event_type(c, ls, r))
        return false;
    return compile_detection(c, fh_yaml_get(c->doc, root, "detection"),
                             fh_yaml_key(c->doc, root, "detection"), r);
}

typedef struct {
    sigma_placeholder_fn resolve;
    void *arg;
} resolver;

static void load_file(ruleset *rs, const char *path, field_table *ft, const resolver *rv)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t parser;
    char msg[600];

    rs->files++;
    if (!f) {
        snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
        add_error(rs, path, 0, NULL, msg);
        return;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        add_error(rs, path, 0, NULL, "YAML parser initialisation failed");
        return;
    }
    yaml_parser_set_input_file(&parser, f);
    for (;;) {
        yaml_document_t doc;
        yaml_node_t *root;
        ctx c = {
            .doc = &doc, .file = path, .ft = ft, .resolve = rv->resolve, .resolve_arg = rv->arg};
        sigma_rule r;

        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(msg, sizeof(msg), "YAML syntax error: %s",
                     parser.problem ? parser.problem : "unknown");
            add_error(rs, path, (uint32_t)parser.problem_mark.line + 1, NULL, msg);
            break;
        }
        root = yaml_document_get_root_node(&doc);
        if (!root) { /* end of stream */
            yaml_document_delete(&doc);
            break;
        }
        memset(&r, 0, sizeof(r));
        r.file = strdup(path);
        r.line = (uint32_t)root->start_mark.line + 1;
        if (root->type != YAML_MAPPING_NODE) {
            add_error(rs, path, r.line, NULL, "a rule document must be a map");
            sigma_rule_free(&r);
        } else if (fh_yaml_get(c.doc, root, "correlation")) {
            struct corr_rule cr;
            char e[512];
            uint32_t el = 0;

            memset(&cr, 0, sizeof(cr));
            if (corr_compile(&doc, root, ft, &cr, e, sizeof(e), &el) != FH_OK) {
                add_error(rs, path, el ? el : r.line, cr.title ? cr.title : cr.id, e);
                corr_rule_free(&cr);
            } else {
                struct corr_rule *v = realloc(rs->corrs, (rs->ncorrs + 1) * sizeof(*v));

                cr.file = strdup(path);
                cr.line = r.line;
                if (v) {
                    rs->corrs = v;
                    rs->corrs[rs->ncorrs++] = cr;
                } else {
                    corr_rule_free(&cr);
                }
            }
            sigma_rule_free(&r);
        } else if (!compile_rule(&c, root, &r)) {
            add_error(rs, path, c.err_line ? c.err_line : r.line, r.title ? r.title : r.id, c.err);
            sigma_rule_free(&r);
        } else {
            sigma_rule *v = realloc(rs->rules, (rs->nrules + 1) * sizeof(*v));

            if (v) {
                rs->rules = v;
                rs->rules[rs->nrules++] = r;
            } else {
                sigma_rule_free(&r);
            }
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_rule_file(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && !strcmp(name + n - 4, ".yml")) || (n > 5 && !strcmp(name + n - 5, ".yaml"));
}

/* Loads a directory recursively, entries in name order. */
static fh_err load_dir(ruleset *rs, const char *dir, field_table *ft, const resolver *rv, char *err,
                       size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (!d) {
        snprintf(err, errlen, "cannot open rule directory '%s': %s", dir, strerror(errno));
        return FH_ERR_IO;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*nn));

            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                load_dir(rs, path, ft, rv, err, errlen);
            else if (S_ISREG(st.st_mode) && is_rule_file(names[i]))
                load_file(rs, path, ft, rv);
        }
        free(names[i]);
    }
    free(names);
    return FH_OK;
}

fh_err sigma_load_with(ruleset *rs, const char *path, field_table *ft, sigma_placeholder_fn resolve,
                       void *arg, char *err, size_t errlen)
{
    struct stat st;
    resolver rv = {resolve, arg};

    memset(rs, 0, sizeof(*rs));
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read rules '%s': %s", path, strerror(errno));
        return FH_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        fh_err rc = load_dir(rs, path, ft, &rv, err, errlen);

        if (rc)
            return rc;
    } else {
        load_file(rs, path, ft, &rv);
    }
    /* Correlation rules name other rules: resolve once everything is loaded. */
    if (corr_resolve(rs) != FH_OK) {
        snprintf(err, errlen, "out of memory resolving correlation rules");
        return FH_ERR_NOMEM;
    }
    return FH_OK;
}

fh_err sigma_load(ruleset *rs, const char *path, field_table *ft, char *err, size_t errlen)
{
    return sigma_load_with(rs, path, ft, NULL, NULL, err, errlen);
}

void ruleset_free(ruleset *rs)
{
    for (uint32_t i = 0; i < rs->nrules; i++)
        sigma_rule_free(&rs->rules[i]);
    free(rs->rules);
    for (uint32_t i = 0; i < rs->nerrors; i++) {
        free(rs->errors[i].file);
        free(rs->errors[i].rule);
        free(rs->errors[i].reason);
    }
    free(rs->errors);
    for (uint32_t i = 0; i < rs->ncorrs; i++)
        corr_rule_free(&rs->corrs[i]);
    free(rs->corrs);
    memset(rs, 0, sizeof(*rs));
}

void load_error_text(const load_error *le, char *buf, size_t len)
{
    if (le->rule)
        fh_error_at(buf, len, le->file, le->line, "rule '%s': %s", le->rule, le->reason);
    else
        fh_error_at(buf, len, le->file, le->line, "%s", le->reason);
}
