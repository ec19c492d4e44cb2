/*
 * report.c - `fenghuo-console report`, and the JSON and CSV formats (report.h).
 */
#include "report.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fh_log.h"
#include "../common/jbuf.h"
#include "../correlator/alerts.h"
#include "../correlator/incident.h"

const char REPORT_DEFINITION_ZH[] =
    "网络安全事件及时整改率 = 在整改时限内完成整改且此后未重开的事件数 ÷ 整改时限落在统计期内的"
    "事件总数。整改时限自告警首次发现时间（first_"
    "seen）起算；超期完成、重开或到期仍未整改的计为超期；"
    "误报和重复事件不计入；风险接受的事件单独列出。";
const char REPORT_DEFINITION_EN[] =
    "Timely rectification rate = incidents rectified by their deadline and never reopened / "
    "incidents whose deadline falls in the period. Deadlines count from the alert's first_seen. "
    "Rectified after the deadline, reopened, or still open past it counts as late; false "
    "positives and duplicates are excluded; accepted risks are listed apart.";

static const char *const ACCEPTED[] = {"excluded", "on_time", "late"};

void report_policy_text(const deadline_policy *p, char *out, size_t len)
{
    size_t off = 0;

    for (int l = DEADLINE_LEVELS - 1; l >= 0 && off < len; l--) {
        char t[40];

        deadline_rule_text(&p->by_level[l], t, sizeof(t));
        off += (size_t)snprintf(out + off, len - off, "%s%s %s", off ? "; " : "",
                                alert_level_name(l), t);
        if (off < len && p->by_level[l].containment_hours)
            off += (size_t)snprintf(out + off, len - off, " (containment %u h)",
                                    p->by_level[l].containment_hours);
    }
    if (off < len)
        off +=
            (size_t)snprintf(out + off, len - off,
                             "; %u override(s); verification %u h; accepted risk: %s; "
                             "counted from first_seen",
                             p->noverrides, p->verification_hours, ACCEPTED[p->accepted_risk % 3]);
}

void report_rate_text(const rate_row *row, char *out, size_t len)
{
    double v;

    if (rate_value(row, &v))
        snprintf(out, len, "%.1f%%", v * 100);
    else
        snprintf(out, len, "n/a");
}

/* ---- JSON ------------------------------------------------------------------------- */

/* A time, or null when not set (0). */
static void json_time(jbuf *b, const char *key, int64_t ms)
{
    if (ms)
        alert_json_time(b, key, ms);
    else
        jbuf_null(b, key);
}

static void json_ids(jbuf *b, const char *key, const rate_report *r, const rate_set *s)
{
    jbuf_obj_open(b, key);
    jbuf_u64(b, "count", s->n);
    jbuf_arr_open(b, "ids");
    for (uint32_t k = 0; k < s->n; k++)
        jbuf_str(b, NULL, r->inc[s->v[k]].id);
    jbuf_arr_close(b);
    jbuf_obj_close(b);
}

static void json_row(jbuf *b, const rate_report *r, const rate_row *row)
{
    double v;

    if (rate_value(row, &v))
        jbuf_fixed(b, "rate", v, 4);
    else
        jbuf_null(b, "rate");
    for (int o = 0; o < RATE_OUTCOMES; o++)
        json_ids(b, rate_outcome_name((rate_outcome)o), r, &row->of[o]);
    json_ids(b, "overdue", r, &row->overdue);
}

fh_err report_json(FILE *f, const report_input *in)
{
    const rate_report *r = in->r;
    char pol[512];
    jbuf b;
    fh_err err = FH_OK;

    if (!jbuf_init(&b, 1 << 16, (size_t)1 << 30))
        return FH_ERR_NOMEM;
    report_policy_text(in->policy, pol, sizeof(pol));
    jbuf_obj_open(&b, NULL);
    jbuf_obj_open(&b, "period");
    json_time(&b, "from", r->from);
    json_time(&b, "to", r->to);
    jbuf_obj_close(&b);
    json_time(&b, "as_of", r->now);
    jbuf_str(&b, "by", rate_by_name(r->by));
    jbuf_fixed(&b, "target", RATE_TARGET, 2);
    jbuf_obj_open(&b, "definition");
    jbuf_str(&b, "zh", REPORT_DEFINITION_ZH);
    jbuf_str(&b, "en", REPORT_DEFINITION_EN);
    jbuf_obj_close(&b);
    jbuf_obj_open(&b, "policy");
    jbuf_str(&b, "file", in->policy_path);
    jbuf_str(&b, "text", pol);
    jbuf_str(&b, "accepted_risk", ACCEPTED[in->policy->accepted_risk % 3]);
    jbuf_obj_close(&b);
    jbuf_obj_open(&b, "total");
    json_row(&b, r, &r->total);
    jbuf_obj_close(&b);
    jbuf_arr_open(&b, "rows");
    for (size_t k = 0; k < r->nrows; k++) {
        jbuf_obj_open(&b, NULL);
        jbuf_str(&b, "key", r->rows[k].key);
        json_row(&b, r, &r->rows[k]);
        jbuf_obj_close(&b);
    }
    jbuf_arr_close(&b);
    jbuf_arr_open(&b, "trend");
    for (size_t k = 0; k < r->nmonths; k++) {
        char m[16];

        snprintf(m, sizeof(m), "%04d-%02d", r->months[k].year % 10000, r->months[k].month % 100);
        jbuf_obj_open(&b, NULL);
        jbuf_str(&b, "month", m);
        json_row(&b, r, &r->months[k].row);
        jbuf_obj_close(&b);
    }
    jbuf_arr_close(&b);
    jbuf_obj_open(&b, "projection");
    if (r->projection_defined) {
        jbuf_fixed(&b, "at_current_pace", r->projection_pace, 4);
        jbuf_fixed(&b, "best_case", r->projection_best, 4);
        jbuf_bool(&b, "target_reachable", r->projection_best >= RATE_TARGET);
    } else {
        jbuf_null(&b, "at_current_pace");
        jbuf_null(&b, "best_case");
        jbuf_null(&b, "target_reachable");
    }
    jbuf_obj_close(&b);
    jbuf_obj_open(&b, "mtta");
    jbuf_i64(&b, "ms", r->mtta_ms);
    json_ids(&b, "over", r, &r->mtta);
    jbuf_obj_close(&b);
    jbuf_obj_open(&b, "mttr");
    jbuf_i64(&b, "ms", r->mttr_ms);
    json_ids(&b, "over", r, &r->mttr);
    jbuf_obj_close(&b);
    jbuf_arr_open(&b, "overdue");
    for (uint32_t k = 0; k < r->overdue.n; k++) {
        const incident *i = &r->inc[r->overdue.v[k]];
        const char *dep = incident_department(i);

        jbuf_obj_open(&b, NULL);
        jbuf_str(&b, "id", i->id);
        jbuf_str(&b, "title", i->title);
        jbuf_str(&b, "rule_id", i->rule_id);
        if (dep)
            jbuf_str(&b, "department", dep);
        else
            jbuf_null(&b, "department");
        json_time(&b, "deadline", i->deadline_at);
        jbuf_i64(&b, "overdue_ms", r->now - i->deadline_at);
        jbuf_obj_close(&b);
    }
    jbuf_arr_close(&b);
    json_ids(&b, "deadlines_guessed", r, &r->guessed);
    jbuf_arr_open(&b, "incidents");
    for (size_t k = 0; k < r->ninc; k++) {
        const incident *i = &r->inc[k];
        const char *dep = incident_department(i);

        if (r->outcome[k] == RATE_OUTCOMES)
            continue;
        jbuf_obj_open(&b, NULL);
        jbuf_str(&b, "id", i->id);
        jbuf_str(&b, "title", i->title);
        jbuf_str(&b, "rule", i->rule_name ? i->rule_name : i->rule_id);
        jbuf_str(&b, "severity", alert_level_name(i->level));
        jbuf_str(&b, "status", incident_state_name(i->status));
        if (dep)
            jbuf_str(&b, "department", dep);
        else
            jbuf_null(&b, "department");
        if (i->segment)
            jbuf_str(&b, "segment", i->segment);
        if (i->assignee)
            jbuf_str(&b, "assignee", i->assignee);
        jbuf_str(&b, "group_key", i->group_key ? i->group_key : "");
        if (i->src_ip)
            jbuf_str(&b, "src_ip", i->src_ip);
        if (i->dest_ip)
            jbuf_str(&b, "dest_ip", i->dest_ip);
        if (i->category)
            jbuf_str(&b, "category", i->category);
        jbuf_arr_open(&b, "clauses");
        for (uint32_t c = 0; c < i->nclauses; c++)
            jbuf_str(&b, NULL, i->clauses[c]);
        jbuf_arr_close(&b);
        json_time(&b, "first_seen", i->first_seen);
        json_time(&b, "deadline", i->deadline_at);
        jbuf_str(&b, "deadline_source", i->deadline_source ? i->deadline_source : "policy");
        jbuf_bool(&b, "deadline_guessed", i->deadline_guessed);
        json_time(&b, "acknowledged_at", i->acknowledged_at);
        json_time(&b, "rectified_at", i->rectified_at);
        json_time(&b, "closed_at", i->closed_at);
        jbuf_u64(&b, "reopened", i->reopen_count);
        jbuf_str(&b, "outcome", rate_outcome_name(r->outcome[k]));
        jbuf_str(&b, "reason", r->why[k]);
        if (i->notice_no) {
            jbuf_obj_open(&b, "notice");
            jbuf_str(&b, "number", i->notice_no);
            jbuf_str(&b, "issuer", i->notice_issuer ? i->notice_issuer : "");
            jbuf_str(&b, "date", i->notice_date ? i->notice_date : "");
            jbuf_obj_close(&b);
        }
        if (i->verification)
            jbuf_str(&b, "verification", i->verification);
        jbuf_obj_close(&b);
    }
    jbuf_arr_close(&b);
    jbuf_obj_close(&b);
    if (jbuf_failed(&b))
        err = FH_ERR_NOMEM;
    else if (fwrite(b.data, 1, b.len, f) != b.len || fputc('\n', f) == EOF)
        err = FH_ERR_IO;
    jbuf_free(&b);
    return err;
}

/* ---- CSV -------------------------------------------------------------------------- */

void report_csv_field(FILE *f, const char *v, bool last)
{
    if (!v)
        v = "";
    fputc('"', f);
    if (*v == '=' || *v == '+' || *v == '-' || *v == '@' || *v == '\t' || *v == '\r')
        fputc('\'', f);
    for (; *v; v++) {
        if (*v == '"')
            fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
    fputs(last ? "\r\n" : ",", f);
}

static void csv_row(FILE *f, const char *const *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        report_csv_field(f, v[k], k + 1 == n);
}

static char *ids_text(const rate_report *r, const rate_set *s)
{
    size_t len = (size_t)s->n * (ALERT_ID_LEN + 1) + 1;
    char *t = malloc(len);
    size_t off = 0;

    if (!t)
        return NULL;
    t[0] = '\0';
    for (uint32_t k = 0; k < s->n; k++)
        off += (size_t)snprintf(t + off, len - off, "%s%s", k ? " " : "", r->inc[s->v[k]].id);
    return t;
}

static bool csv_figures(FILE *f, const rate_report *r, const char *key, const rate_row *row)
{
    char n[RATE_OUTCOMES + 2][24], rate[16];
    char *ids[RATE_OUTCOMES + 1];
    const char *v[2 + RATE_OUTCOMES + 2 + RATE_OUTCOMES + 1];
    size_t k = 0;
    bool ok = true;
    uint32_t total = 0;

    for (int o = 0; o < RATE_OUTCOMES; o++) {
        snprintf(n[o], sizeof(n[o]), "%u", row->of[o].n);
        if (o == RATE_ON_TIME || o == RATE_LATE || o == RATE_PENDING)
            total += row->of[o].n;
        ok = ok && (ids[o] = ids_text(r, &row->of[o])) != NULL;
    }
    snprintf(n[RATE_OUTCOMES], sizeof(n[0]), "%u", total);
    snprintf(n[RATE_OUTCOMES + 1], sizeof(n[0]), "%u", row->overdue.n);
    ok = ok && (ids[RATE_OUTCOMES] = ids_text(r, &row->overdue)) != NULL;
    report_rate_text(row, rate, sizeof(rate));
    if (ok) {
        v[k++] = key;
        v[k++] = rate;
        v[k++] = n[RATE_OUTCOMES];
        for (int o = 0; o < RATE_OUTCOMES; o++)
            v[k++] = n[o];
        v[k++] = n[RATE_OUTCOMES + 1];
        for (int o = 0; o < RATE_OUTCOMES; o++)
            v[k++] = ids[o];
        v[k++] = ids[RATE_OUTCOMES];
        csv_row(f, v, k);
    }
    for (int o = 0; o <= RATE_OUTCOMES; o++)
        if (o < RATE_OUTCOMES || ok)
            free(ids[o]);
    return ok;
}

fh_err report_csv(FILE *f, const report_input *in)
{
    const rate_report *r = in->r;
    char from[32], to[32], asof[32], pol[512], by[64];
    bool ok = true;

    fputs("\xEF\xBB\xBF", f); /* UTF-8 BOM: Excel in Chinese reads UTF-8 */
    console_time_text(r->from, from, sizeof(from));
    console_deadline_text(r->to, to, sizeof(to));
    console_time_text(r->now, asof, sizeof(asof));
    report_policy_text(in->policy, pol, sizeof(pol));
    csv_row(f, (const char *[]){"网络安全事件及时整改率报告 / Timely rectification rate report"},
            1);
    csv_row(f, (const char *[]){"统计期 / period (Asia/Shanghai)", from, to}, 3);
    csv_row(f, (const char *[]){"统计时点 / as of", asof}, 2);
    csv_row(f, (const char *[]){"目标 / target", "95%"}, 2);
    csv_row(f, (const char *[]){"定义", REPORT_DEFINITION_ZH}, 2);
    csv_row(f, (const char *[]){"definition", REPORT_DEFINITION_EN}, 2);
    csv_row(f, (const char *[]){"整改时限策略 / deadline policy", pol, in->policy_path}, 3);
    fputs("\r\n", f);
    snprintf(by, sizeof(by), "%s / %s", rate_by_name_zh(r->by), rate_by_name(r->by));
    csv_row(f,
            (const char *[]){by, "及时整改率 / rate", "事件数 / incidents", "按时 / on_time",
                             "超期 / late", "未到期 / pending", "风险接受 / accepted_risk",
                             "不计入 / excluded", "超期未整改 / overdue", "ids on_time", "ids late",
                             "ids pending", "ids accepted_risk", "ids excluded", "ids overdue"},
            15);
    for (size_t k = 0; ok && k < r->nrows; k++)
        ok = csv_figures(f, r, r->rows[k].key, &r->rows[k]);
    ok = ok && csv_figures(f, r, "合计 / total", &r->total);
    fputs("\r\n", f);
    csv_row(f,
            (const char *[]){"月份 / month", "及时整改率 / rate", "事件数 / incidents",
                             "按时 / on_time", "超期 / late", "未到期 / pending",
                             "风险接受 / accepted_risk", "不计入 / excluded",
                             "超期未整改 / overdue", "ids on_time", "ids late", "ids pending",
                             "ids accepted_risk", "ids excluded", "ids overdue"},
            15);
    for (size_t k = 0; ok && k < r->nmonths; k++) {
        char m[16];

        snprintf(m, sizeof(m), "%04d-%02d", r->months[k].year % 10000, r->months[k].month % 100);
        ok = csv_figures(f, r, m, &r->months[k].row);
    }
    fputs("\r\n", f);
    csv_row(f,
            (const char *[]){
                "事件 / incident",        "标题 / title",         "规则 / rule",
                "级别 / severity",        "状态 / status",        "部门 / department",
                "网段 / segment",         "条款 / clauses",       "类别 / category",
                "首次发现 / first_seen",  "整改时限 / deadline",  "时限来源 / deadline source",
                "时限推算 / guessed",     "整改完成 / rectified", "结果 / outcome",
                "原因 / reason",          "通报 / notice",        "通报单位 / issuer",
                "通报日期 / notice date", "责任人 / assignee",    "分组 / group key",
                "源地址 / src_ip",        "目的地址 / dest_ip"},
            23);
    for (size_t k = 0; ok && k < r->ninc; k++) {
        const incident *i = &r->inc[k];
        char fs[32], dl[32], rt[32], clauses[512] = "";
        size_t off = 0;

        if (r->outcome[k] == RATE_OUTCOMES)
            continue;
        for (uint32_t c = 0; c < i->nclauses && off < sizeof(clauses); c++)
            off += (size_t)snprintf(clauses + off, sizeof(clauses) - off, "%s%s", c ? "; " : "",
                                    i->clauses[c]);
        console_time_text(i->first_seen, fs, sizeof(fs));
        console_deadline_text(i->deadline_at, dl, sizeof(dl));
        console_time_text(i->rectified_at, rt, sizeof(rt));
        csv_row(f,
                (const char *[]){i->id,
                                 i->title,
                                 i->rule_name ? i->rule_name : i->rule_id,
                                 alert_level_name(i->level),
                                 incident_state_name(i->status),
                                 incident_department(i),
                                 i->segment,
                                 clauses,
                                 i->category,
                                 fs,
                                 dl,
                                 i->deadline_source ? i->deadline_source : "policy",
                                 i->deadline_guessed ? "GUESSED (no calendar data)" : "",
                                 rt,
                                 rate_outcome_name(r->outcome[k]),
                                 r->why[k],
                                 i->notice_no,
                                 i->notice_issuer,
                                 i->notice_date,
                                 i->assignee,
                                 i->group_key,
                                 i->src_ip,
                                 i->dest_ip},
                23);
    }
    if (!ok)
        return FH_ERR_NOMEM;
    return ferror(f) ? FH_ERR_IO : FH_OK;
}

/* ---- text (a terminal) ------------------------------------------------------------ */

static void text_row(FILE *f, const char *key, const rate_row *row, int keyw)
{
    char rate[16];

    report_rate_text(row, rate, sizeof(rate));
    console_pad(f, key, keyw);
    fprintf(f, "  %7s  %9u  %7u  %5u  %7u  %8u  %8u  %7u\n", rate,
            row->of[RATE_ON_TIME].n + row->of[RATE_LATE].n + row->of[RATE_PENDING].n,
            row->of[RATE_ON_TIME].n, row->of[RATE_LATE].n, row->of[RATE_PENDING].n,
            row->of[RATE_ACCEPTED].n, row->of[RATE_EXCLUDED].n, row->overdue.n);
}

fh_err report_text(FILE *f, const report_input *in)
{
    const rate_report *r = in->r;
    char from[32], to[32], asof[32], pol[512];
    int keyw = 24;

    console_time_text(r->from, from, sizeof(from));
    console_deadline_text(r->to, to, sizeof(to));
    console_time_text(r->now, asof, sizeof(asof));
    report_policy_text(in->policy, pol, sizeof(pol));
    fprintf(f, "网络安全事件及时整改率 / timely rectification rate (target 95%%)\n");
    fprintf(f, "period (deadlines, Asia/Shanghai): %s - %s; as of %s\n", from, to, asof);
    fprintf(f, "policy (%s): %s\n\n", in->policy_path, pol);
    for (size_t k = 0; k < r->nrows; k++)
        if (console_width(r->rows[k].key) > keyw)
            keyw = console_width(r->rows[k].key);
    console_pad(f, rate_by_name(r->by), keyw);
    fprintf(f, "  %7s  %9s  %7s  %5s  %7s  %8s  %8s  %7s\n", "rate", "incidents", "on_time", "late",
            "pending", "accepted", "excluded", "overdue");
    for (size_t k = 0; k < r->nrows; k++)
        text_row(f, r->rows[k].key, &r->rows[k], keyw);
    text_row(f, "total", &r->total, keyw);
    if (r->guessed.n)
        fprintf(f,
                "\n%u deadline(s) GUESSED: counted Monday to Friday in a year without "
                "calendar data\n",
                r->guessed.n);
    return ferror(f) ? FH_ERR_IO : FH_OK;
}

fh_err report_write(store *st, const deadline_policy *p, const char *policy_path, int64_t from,
                    int64_t to, int64_t now, rate_by by, const char *format, FILE *f,
                    const char *pdf_path, char *err, size_t errlen)
{
    incident *list = NULL;
    size_t n = 0;
    rate_report r;
    fh_err e;

    if ((e = incident_list(st, from, to, &list, &n))) {
        snprintf(err, errlen, "%s", store_errmsg(st));
        return e;
    }
    if ((e = rate_compute(&r, list, n, from, to, now, by, p->accepted_risk))) {
        snprintf(err, errlen, "computing the rate: %s", fh_strerror(e));
    } else {
        report_input in = {.r = &r, .policy = p, .policy_path = policy_path};

        if (!strcmp(format, "pdf"))
            e = report_pdf(pdf_path, &in, err, errlen);
        else if (!strcmp(format, "csv"))
            e = report_csv(f, &in);
        else if (!strcmp(format, "text"))
            e = report_text(f, &in);
        else
            e = report_json(f, &in);
        rate_report_free(&r);
    }
    incident_free_list(list, n);
    return e;
}

/* ---- the command ------------------------------------------------------------------ */

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},         {"to", required_argument, NULL, 't'},
        {"by", required_argument, NULL, 'b'},           {"format", required_argument, NULL, 'F'},
        {"output", required_argument, NULL, 'o'},       {"as-of", required_argument, NULL, 'a'},
        {"db", required_argument, NULL, 'd'},           {"policy", required_argument, NULL, 'p'},
        {"calendar-dir", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
    const char *from_s = NULL, *to_s = NULL, *by_s = "department", *format = "json", *output = NULL,
               *asof = NULL;
    console_ctx c = {0};
    int64_t from, to, now;
    int opt, by, rc = 0;
    fh_err err;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            from_s = optarg;
            break;
        case 't':
            to_s = optarg;
            break;
        case 'b':
            by_s = optarg;
            break;
        case 'F':
            format = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'a':
            asof = optarg;
            break;
        case 'd':
            c.db = optarg;
            break;
        case 'p':
            c.policy_path = optarg;
            break;
        case 'c':
            c.calendar_dir = optarg;
            break;
        default:
            return 2;
        }
    }
    if (optind != argc || !from_s || !to_s) {
        fh_error("usage: fenghuo-console report --from YYYY-MM-DD --to YYYY-MM-DD "
                 "[--by department|segment|severity|clause|category] [--format json|csv|pdf|text] "
                 "[--output FILE] [--as-of TIME]");
        return 2;
    }
    if (!console_parse_time(from_s, false, &from) || !console_parse_time(to_s, true, &to) ||
        to <= from) {
        fh_error("--from and --to expect dates YYYY-MM-DD (Asia/Shanghai, both days included), "
                 "from before to; got '%s' '%s'",
                 from_s, to_s);
        return 2;
    }
    if ((by = rate_by_parse(by_s)) < 0) {
        fh_error("--by expects department, segment, severity, clause or category, got '%s'", by_s);
        return 2;
    }
    if (strcmp(format, "json") && strcmp(format, "csv") && strcmp(format, "pdf") &&
        strcmp(format, "text")) {
        fh_error("--format expects json, csv, pdf or text, got '%s'", format);
        return 2;
    }
    if (!strcmp(format, "pdf") && !output) {
        fh_error("--format pdf needs --output FILE.pdf");
        return 2;
    }
    if (!console_open(&c))
        return 1;
    now = c.now;
    if (asof && !console_parse_time(asof, false, &now)) {
        fh_error("--as-of expects a time or a date, got '%s'", asof);
        console_close(&c);
        return 2;
    }
    {
        FILE *f = NULL;
        char e[512] = "";

        if (strcmp(format, "pdf") && !(f = output ? fopen(output, "wb") : stdout)) {
            fh_error("cannot write '%s'", output);
            console_close(&c);
            return 1;
        }
        err = report_write(c.st, &c.policy, c.policy_path, from, to, now, (rate_by)by, format, f,
                           output, e, sizeof(e));
        if (f && output && fclose(f) != 0 && !err)
            err = FH_ERR_IO;
        if (err) {
            fh_error("writing the report%s%s: %s", output ? " to " : "", output ? output : "",
                     e[0] ? e : fh_strerror(err));
            rc = 1;
        }
    }
    console_close(&c);
    return rc;
}
