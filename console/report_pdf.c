/*
 * report_pdf.c - the rectification report as a PDF for an inspection file
 * (report.h): cairo draws, pango sets the text in Noto Sans CJK (Debian's
 * fonts-noto-cjk), so Chinese and attacker-supplied text (titles, hostnames)
 * are rendered as text, never interpreted.
 *
 * Layout (A4 portrait, 40 pt margins): header with the definition and the
 * deadline policy; the summary; the breakdown table; the month-by-month trend
 * chart against the 95% target line; the overdue list; an appendix listing
 * every incident counted. A running footer gives the page number.
 */
#include <cairo-pdf.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../correlator/alerts.h"
#include "../correlator/incident.h"
#include "report.h"

#define PAGE_W  595.0
#define PAGE_H  842.0
#define MARGIN  40.0
#define FONT    "Noto Sans CJK SC"
#define BODY_PT 8.5

typedef struct {
    cairo_t *cr;
    double y;
    int page;
} pdf;

static void footer(pdf *p)
{
    char t[64];
    PangoLayout *l = pango_cairo_create_layout(p->cr);
    PangoFontDescription *fd = pango_font_description_from_string(FONT " 7");

    snprintf(t, sizeof(t), "烽火 Fenghuo · 整改报告 rectification report · %d", p->page);
    pango_layout_set_font_description(l, fd);
    pango_layout_set_text(l, t, -1);
    cairo_set_source_rgb(p->cr, 0.4, 0.4, 0.4);
    cairo_move_to(p->cr, MARGIN, PAGE_H - MARGIN + 12);
    pango_cairo_show_layout(p->cr, l);
    pango_font_description_free(fd);
    g_object_unref(l);
}

static void new_page(pdf *p)
{
    footer(p);
    cairo_show_page(p->cr);
    p->page++;
    p->y = MARGIN;
}

/* Room for h more points on this page, else a new page. */
static void need(pdf *p, double h)
{
    if (p->y + h > PAGE_H - MARGIN)
        new_page(p);
}

/* A paragraph of wrapped text; returns its height. */
static double text_at(pdf *p, double x, double y, double width, const char *s, double pt, bool bold,
                      bool draw)
{
    PangoLayout *l = pango_cairo_create_layout(p->cr);
    PangoFontDescription *fd = pango_font_description_new();
    int w, h;

    pango_font_description_set_family(fd, FONT);
    pango_font_description_set_absolute_size(fd, pt * PANGO_SCALE);
    pango_font_description_set_weight(fd, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    pango_layout_set_font_description(l, fd);
    pango_layout_set_width(l, (int)(width * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_text(l, s ? s : "", -1);
    pango_layout_get_size(l, &w, &h);
    if (draw) {
        cairo_set_source_rgb(p->cr, 0, 0, 0);
        cairo_move_to(p->cr, x, y);
        pango_cairo_show_layout(p->cr, l);
    }
    pango_font_description_free(fd);
    g_object_unref(l);
    return (double)h / PANGO_SCALE;
}

static void para(pdf *p, const char *s, double pt, bool bold)
{
    double h = text_at(p, MARGIN, p->y, PAGE_W - 2 * MARGIN, s, pt, bold, false);

    need(p, h);
    text_at(p, MARGIN, p->y, PAGE_W - 2 * MARGIN, s, pt, bold, true);
    p->y += h + 4;
}

/* A table row: cells wrap inside their column; the row is as tall as its tallest cell. */
static void row(pdf *p, const double *widths, const char *const *cells, int n, bool head)
{
    double h = 0, x = MARGIN;

    for (int k = 0; k < n; k++) {
        double ch = text_at(p, 0, 0, widths[k] - 4, cells[k], BODY_PT, head, false);

        h = ch > h ? ch : h;
    }
    need(p, h + 4);
    if (head) {
        double w = 0;

        for (int k = 0; k < n; k++)
            w += widths[k];
        cairo_set_source_rgb(p->cr, 0.9, 0.92, 0.95);
        cairo_rectangle(p->cr, MARGIN, p->y, w, h + 3);
        cairo_fill(p->cr);
    }
    for (int k = 0; k < n; k++) {
        text_at(p, x + 2, p->y + 1.5, widths[k] - 4, cells[k], BODY_PT, head, true);
        x += widths[k];
    }
    p->y += h + 3;
    cairo_set_source_rgb(p->cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(p->cr, 0.4);
    cairo_move_to(p->cr, MARGIN, p->y);
    cairo_line_to(p->cr, x, p->y);
    cairo_stroke(p->cr);
}

static void figures_row(pdf *p, const double *w, const char *key, const rate_row *r)
{
    char n[7][16], rate[16];
    const char *cells[9];

    report_rate_text(r, rate, sizeof(rate));
    snprintf(n[0], 16, "%u", r->of[RATE_ON_TIME].n + r->of[RATE_LATE].n + r->of[RATE_PENDING].n);
    for (int o = 0; o < RATE_OUTCOMES; o++)
        snprintf(n[o + 1], 16, "%u", r->of[o].n);
    snprintf(n[6], 16, "%u", r->overdue.n);
    cells[0] = key;
    cells[1] = rate;
    for (int k = 0; k < 7; k++)
        cells[k + 2] = n[k];
    row(p, w, cells, 9, false);
}

/* Bars of the monthly rate with the 95% target line. */
static void trend_chart(pdf *p, const rate_report *r)
{
    const double h = 150, w = PAGE_W - 2 * MARGIN - 40, x0 = MARGIN + 30;
    double y0, bw;
    char t[32];

    need(p, h + 40);
    y0 = p->y + h; /* the 0% line */
    cairo_set_source_rgb(p->cr, 0, 0, 0);
    cairo_set_line_width(p->cr, 0.6);
    cairo_move_to(p->cr, x0, p->y);
    cairo_line_to(p->cr, x0, y0);
    cairo_line_to(p->cr, x0 + w, y0);
    cairo_stroke(p->cr);
    for (int pct = 0; pct <= 100; pct += 25) {
        snprintf(t, sizeof(t), "%d%%", pct);
        text_at(p, MARGIN, y0 - h * pct / 100.0 - 5, 28, t, 6.5, false, true);
    }
    bw = r->nmonths ? w / (double)r->nmonths : w;
    for (size_t k = 0; k < r->nmonths; k++) {
        double v, bx = x0 + bw * (double)k;

        if (rate_value(&r->months[k].row, &v)) {
            cairo_set_source_rgb(p->cr, v >= RATE_TARGET ? 0.2 : 0.85,
                                 v >= RATE_TARGET ? 0.55 : 0.45, v >= RATE_TARGET ? 0.3 : 0.2);
            cairo_rectangle(p->cr, bx + bw * 0.2, y0 - h * v, bw * 0.6, h * v);
            cairo_fill(p->cr);
            snprintf(t, sizeof(t), "%.0f%%", v * 100);
            text_at(p, bx + bw * 0.2, y0 - h * v - 10, bw, t, 6.5, false, true);
        }
        snprintf(t, sizeof(t), "%04d-%02d", r->months[k].year % 10000, r->months[k].month % 100);
        text_at(p, bx + 2, y0 + 2, bw, t, 6.5, false, true);
    }
    /* the target */
    cairo_set_source_rgb(p->cr, 0.8, 0, 0);
    cairo_set_line_width(p->cr, 1);
    {
        const double dash[] = {4, 3};

        cairo_set_dash(p->cr, dash, 2, 0);
        cairo_move_to(p->cr, x0, y0 - h * RATE_TARGET);
        cairo_line_to(p->cr, x0 + w, y0 - h * RATE_TARGET);
        cairo_stroke(p->cr);
        cairo_set_dash(p->cr, NULL, 0, 0);
    }
    text_at(p, x0 + w - 90, y0 - h * RATE_TARGET - 11, 90, "目标 target 95%", 6.5, true, true);
    p->y = y0 + 16;
}

/*
 * One PDF at a time: the end of each releases fontconfig's and cairo's global
 * state (FcFini), which must not happen while another thread is drawing (the
 * console's API serves reports from several threads).
 */
static pthread_mutex_t pdf_lock = PTHREAD_MUTEX_INITIALIZER;

static fh_err write_pdf(const char *path, const report_input *in, char *err, size_t errlen);

fh_err report_pdf(const char *path, const report_input *in, char *err, size_t errlen)
{
    fh_err e;

    pthread_mutex_lock(&pdf_lock);
    e = write_pdf(path, in, err, errlen);
    pthread_mutex_unlock(&pdf_lock);
    return e;
}

static fh_err write_pdf(const char *path, const report_input *in, char *err, size_t errlen)
{
    const rate_report *r = in->r;
    cairo_surface_t *s = cairo_pdf_surface_create(path, PAGE_W, PAGE_H);
    char buf[1024], a[32], b[32], pol[512], rate[16];
    const double wt[9] = {135, 50, 45, 45, 40, 45, 50, 50, 55};
    pdf p = {.y = MARGIN, .page = 1};
    cairo_status_t st;

    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "%s", cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return FH_ERR_IO;
    }
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE,
                                   "网络安全事件及时整改率报告 Timely rectification rate report");
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "fenghuo-console");
    p.cr = cairo_create(s);

    para(&p, "网络安全事件及时整改率报告", 18, true);
    para(&p, "Timely rectification rate of network security incidents", 11, true);
    console_time_text(r->from, a, sizeof(a));
    console_deadline_text(r->to, b, sizeof(b));
    snprintf(buf, sizeof(buf), "统计期 period: %s – %s (Asia/Shanghai; by deadline)", a, b);
    para(&p, buf, 9, false);
    console_time_text(r->now, a, sizeof(a));
    snprintf(buf, sizeof(buf), "统计时点 as of: %s    分组 by: %s %s", a, rate_by_name_zh(r->by),
             rate_by_name(r->by));
    para(&p, buf, 9, false);
    para(&p, "定义 Definition", 10, true);
    para(&p, REPORT_DEFINITION_ZH, 8.5, false);
    para(&p, REPORT_DEFINITION_EN, 8.5, false);
    report_policy_text(in->policy, pol, sizeof(pol));
    snprintf(buf, sizeof(buf), "整改时限策略 Deadline policy (%s): %s", in->policy_path, pol);
    para(&p, buf, 8.5, false);
    if (r->guessed.n) {
        snprintf(buf, sizeof(buf),
                 "注意 WARNING: %u 个事件的整改时限落在无节假日数据的年度，按周一至周五推算 / %u "
                 "deadline(s) fall in a year without calendar data and were counted Monday to "
                 "Friday (GUESSED).",
                 r->guessed.n, r->guessed.n);
        para(&p, buf, 9, true);
    }

    p.y += 6;
    para(&p, "总体 Summary", 12, true);
    report_rate_text(&r->total, rate, sizeof(rate));
    snprintf(buf, sizeof(buf),
             "及时整改率 rate: %s (目标 target 95%%)    按时 on time %u · 超期 late %u · 未到期 "
             "pending %u · 风险接受 accepted risk %u · 不计入 excluded %u",
             rate, r->total.of[RATE_ON_TIME].n, r->total.of[RATE_LATE].n,
             r->total.of[RATE_PENDING].n, r->total.of[RATE_ACCEPTED].n,
             r->total.of[RATE_EXCLUDED].n);
    para(&p, buf, 9.5, true);
    if (r->projection_defined) {
        snprintf(buf, sizeof(buf),
                 "期末预测 projection at period end: %.1f%% at the current pace, %.1f%% at best "
                 "— %s",
                 r->projection_pace * 100, r->projection_best * 100,
                 r->projection_best >= RATE_TARGET
                     ? "95% 目标仍可达成 target reachable"
                     : "95% 目标已无法达成 target no longer reachable");
        para(&p, buf, 9, false);
    }
    console_duration_text(r->mtta_ms, a, sizeof(a));
    console_duration_text(r->mttr_ms, b, sizeof(b));
    snprintf(buf, sizeof(buf),
             "平均确认时间 MTTA %s (%u incidents) · 平均整改时间 MTTR %s (%u incidents), from "
             "first_seen",
             r->mtta.n ? a : "-", r->mtta.n, r->mttr.n ? b : "-", r->mttr.n);
    para(&p, buf, 9, false);

    p.y += 6;
    snprintf(buf, sizeof(buf), "按%s Breakdown by %s", rate_by_name_zh(r->by), rate_by_name(r->by));
    para(&p, buf, 12, true);
    row(&p, wt,
        (const char *[]){rate_by_name_zh(r->by), "整改率 rate", "事件 total", "按时 on time",
                         "超期 late", "未到期 pending", "风险接受 accepted", "不计入 excluded",
                         "超期未改 overdue"},
        9, true);
    for (size_t k = 0; k < r->nrows; k++)
        figures_row(&p, wt, r->rows[k].key, &r->rows[k]);
    figures_row(&p, wt, "合计 total", &r->total);

    p.y += 10;
    para(&p, "月度趋势 Monthly trend (by deadline month) against the 95% target", 12, true);
    trend_chart(&p, r);

    p.y += 6;
    snprintf(buf, sizeof(buf), "超期未整改 Overdue (%u)", r->overdue.n);
    para(&p, buf, 12, true);
    {
        const double w[5] = {165, 110, 80, 80, 80};

        row(&p, w,
            (const char *[]){"事件 incident", "部门 department", "级别 severity",
                             "整改时限 deadline", "已超期 overdue by"},
            5, true);
        for (uint32_t k = 0; k < r->overdue.n; k++) {
            const incident *i = &r->inc[r->overdue.v[k]];

            console_deadline_text(i->deadline_at, a, sizeof(a));
            console_duration_text(r->now - i->deadline_at, b, sizeof(b));
            row(&p, w,
                (const char *[]){i->id, incident_department(i) ? incident_department(i) : "-",
                                 alert_level_name(i->level), a, b},
                5, false);
        }
    }

    new_page(&p);
    para(&p, "附录：统计的全部事件 Appendix: every incident counted", 12, true);
    {
        const double w[6] = {200, 95, 45, 65, 62, 48};

        row(&p, w,
            (const char *[]){"事件 incident / 标题 title / 通报 notice", "部门 department",
                             "级别 severity", "整改时限 deadline", "状态 status", "结果 outcome"},
            6, true);
        for (size_t k = 0; k < r->ninc; k++) {
            const incident *i = &r->inc[k];
            char idt[768];

            if (r->outcome[k] == RATE_OUTCOMES)
                continue;
            if (i->notice_no)
                snprintf(idt, sizeof(idt), "%s\n%s\n通报 %s (%s %s)", i->id, i->title, i->notice_no,
                         i->notice_issuer ? i->notice_issuer : "",
                         i->notice_date ? i->notice_date : "");
            else
                snprintf(idt, sizeof(idt), "%s\n%s", i->id, i->title);
            console_deadline_text(i->deadline_at, a, sizeof(a));
            if (i->deadline_guessed)
                snprintf(a + strlen(a), sizeof(a) - strlen(a), " *");
            row(&p, w,
                (const char *[]){idt, incident_department(i) ? incident_department(i) : "-",
                                 alert_level_name(i->level), a, incident_state_name(i->status),
                                 rate_outcome_name(r->outcome[k])},
                6, false);
        }
        if (r->guessed.n)
            para(&p, "* 时限按周一至周五推算 deadline guessed (no calendar data)", 8, false);
    }
    footer(&p);
    cairo_show_page(p.cr);
    cairo_destroy(p.cr);
    cairo_surface_finish(s);
    st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    /* the font map, cairo's and fontconfig's caches live until exit otherwise (and
     * LeakSanitizer counts them) */
    pango_cairo_font_map_set_default(NULL);
    cairo_debug_reset_static_data();
    FcFini();
    if (st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "%s", cairo_status_to_string(st));
        return FH_ERR_IO;
    }
    return FH_OK;
}
