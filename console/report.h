/*
 * report.h - the rectification report of a period, in the console's three
 * formats: JSON (for scripts and the HTTP API), CSV (Excel in Chinese: UTF-8
 * with a BOM, CRLF, formula injection neutralised) and PDF (report_pdf.c, for
 * an inspection file). All three print the same figures from one rate_report.
 */
#ifndef FH_REPORT_H
#define FH_REPORT_H

#include <stdio.h>

#include "../common/fh_error.h"
#include "../correlator/rate.h"
#include "console.h"

typedef struct {
    const rate_report *r;
    const deadline_policy *policy;
    const char *policy_path;
} report_input;

/* The definition of the rate, in Chinese and in English (one paragraph each). */
extern const char REPORT_DEFINITION_ZH[];
extern const char REPORT_DEFINITION_EN[];

/* The deadline policy in one line: "critical 24 h (containment 2 h); high 72 h; ..." */
void report_policy_text(const deadline_policy *p, char *out, size_t len);

/* "95.0%", or "n/a" when nothing was decided. */
void report_rate_text(const rate_row *row, char *out, size_t len);

fh_err report_json(FILE *f, const report_input *in);
fh_err report_csv(FILE *f, const report_input *in);
/* A table for a terminal (make run prints it). */
fh_err report_text(FILE *f, const report_input *in);
/* Writes a PDF file (cairo needs a path). */
fh_err report_pdf(const char *path, const report_input *in, char *err, size_t errlen);

/*
 * The report of the incidents whose deadline is in [from, to), at now, grouped by by:
 * format "json", "csv" or "text" to f, or "pdf" to the file pdf_path. On error err says why.
 */
fh_err report_write(store *st, const deadline_policy *p, const char *policy_path, int64_t from,
                    int64_t to, int64_t now, rate_by by, const char *format, FILE *f,
                    const char *pdf_path, char *err, size_t errlen);

/*
 * One CSV field: always quoted, quotes doubled, and a value that a spreadsheet
 * would take for a formula (starting with = + - @, a tab or a carriage return)
 * prefixed with an apostrophe. Exposed for tests.
 */
void report_csv_field(FILE *f, const char *v, bool last);

#endif
