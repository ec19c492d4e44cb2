/*
 * smtp.c - the client's side of an SMTP session (see smtp.h).
 *
 * Command lines end at LF (a CR before it is dropped); the verb is matched without case.
 * DATA: the message runs to a line holding a lone "." (RFC 5321 4.1.1.4); a line that
 * starts with "." loses that dot (4.5.2). Lines end at CRLF or LF alike. BDAT (RFC 3030):
 * the chunk's size is read from the command and that many bytes follow, raw.
 */
#include "smtp.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool smtp_is_start(const uint8_t *d, size_t len)
{
    return len >= 5 &&
           (!strncasecmp((const char *)d, "EHLO ", 5) || !strncasecmp((const char *)d, "HELO ", 5));
}

void smtp_init(smtp_state *s)
{
    memset(s, 0, sizeof(*s));
}

/* The address of "FROM:<a@b> SIZE=1" / "TO:<a@b>": between the brackets, or the first
 * word; at most SMTP_ADDR_MAX - 1 bytes. */
static void copy_addr(char *dst, const char *a, size_t n)
{
    const char *lt = memchr(a, '<', n);
    bool bracket = lt != NULL;
    size_t i = 0, k = 0;

    if (bracket) {
        n -= (size_t)(lt + 1 - a);
        a = lt + 1;
    }
    while (i < n && a[i] == ' ')
        i++;
    while (i < n && a[i] != '>' && (bracket || a[i] != ' ') && k + 1 < SMTP_ADDR_MAX)
        dst[k++] = a[i++];
    dst[k] = '\0';
}

static void end_message(smtp_state *s, bool complete, smtp_ev_cb cb, void *arg)
{
    smtp_ev e = {.kind = SMTP_EV_END, .env = &s->env, .complete = complete};

    if (!s->in_message)
        return;
    s->in_message = false;
    cb(&e, arg);
    /* the envelope is for one message (RFC 5321 4.1.4): the next starts with MAIL */
    s->env.mail_from[0] = '\0';
    s->env.nrcpt = 0;
}

static void begin_message(smtp_state *s, smtp_ev_cb cb, void *arg)
{
    smtp_ev e = {.kind = SMTP_EV_BEGIN, .env = &s->env};

    if (s->in_message)
        return;
    s->in_message = true;
    s->messages++;
    cb(&e, arg);
}

/* The verb of line (length n) is word (case-insensitive), followed by a space, ':' or the
 * end; *rest is what follows the verb. */
static bool verb(const char *line, size_t n, const char *word, const char **rest, size_t *rn)
{
    size_t w = strlen(word);

    if (n < w || strncasecmp(line, word, w) != 0 || (n > w && line[w] != ' ' && line[w] != ':'))
        return false;
    *rest = line + w;
    *rn = n - w;
    return true;
}

/* A whole command line (without its CR LF). */
static void command(smtp_state *s, const char *l, size_t n, smtp_ev_cb cb, void *arg)
{
    const char *r;
    size_t rn;

    if (verb(l, n, "EHLO", &r, &rn) || verb(l, n, "HELO", &r, &rn)) {
        copy_addr(s->env.helo, r, rn);
    } else if (verb(l, n, "MAIL FROM", &r, &rn)) {
        if (rn && *r == ':')
            r++, rn--;
        copy_addr(s->env.mail_from, r, rn);
        s->env.nrcpt = 0;
    } else if (verb(l, n, "RCPT TO", &r, &rn)) {
        if (rn && *r == ':')
            r++, rn--;
        if (s->env.nrcpt < SMTP_MAX_RCPT)
            copy_addr(s->env.rcpt[s->env.nrcpt], r, rn);
        s->env.nrcpt++;
    } else if (verb(l, n, "RSET", &r, &rn)) {
        s->env.mail_from[0] = '\0';
        s->env.nrcpt = 0;
    } else if (verb(l, n, "DATA", &r, &rn)) {
        if (s->messages >= SMTP_MAX_MESSAGES) {
            s->mode = SMTP_MODE_DONE;
            return;
        }
        s->mode = SMTP_MODE_DATA;
        s->bol = true;
        s->dot = 0;
        begin_message(s, cb, arg);
    } else if (verb(l, n, "BDAT", &r, &rn)) {
        uint64_t size = 0;
        size_t i = 0, d = 0;

        while (i < rn && r[i] == ' ')
            i++;
        while (i < rn && isdigit((unsigned char)r[i]) && d < 15) {
            size = size * 10 + (uint64_t)(r[i++] - '0');
            d++;
        }
        if (!d || (s->messages >= SMTP_MAX_MESSAGES && !s->in_message)) {
            s->mode = SMTP_MODE_DONE; /* not a chunk size: the rest cannot be framed */
            return;
        }
        while (i < rn && r[i] == ' ')
            i++;
        s->bdat_last = rn - i >= 4 && !strncasecmp(r + i, "LAST", 4);
        s->bdat_left = size;
        s->mode = SMTP_MODE_BDAT;
        begin_message(s, cb, arg);
        if (!size && s->bdat_last) {
            end_message(s, true, cb, arg);
            s->mode = SMTP_MODE_CMD;
        }
    } else if (verb(l, n, "STARTTLS", &r, &rn)) {
        s->mode = SMTP_MODE_DONE;
    }
}

/* Command mode: consumes bytes up to the end of the line that switches mode, if any. */
static size_t cmd_bytes(smtp_state *s, const uint8_t *p, size_t len, smtp_ev_cb cb, void *arg)
{
    size_t i = 0;

    while (i < len && s->mode == SMTP_MODE_CMD) {
        uint8_t c = p[i++];

        if (c == '\n') {
            if (!s->skipping) {
                size_t n = s->len;
                if (n && s->line[n - 1] == '\r')
                    n--;
                command(s, s->line, n, cb, arg);
            }
            s->len = 0;
            s->skipping = false;
        } else if (!s->skipping) {
            if (s->len + 1 >= SMTP_LINE_MAX)
                s->skipping = true;
            else
                s->line[s->len++] = (char)c;
        }
    }
    return i;
}

/* DATA mode: the message's bytes, dot-unstuffed, to the callback in runs; stops after the
 * lone "." line. */
static size_t data_bytes(smtp_state *s, const uint8_t *p, size_t len, smtp_ev_cb cb, void *arg)
{
    uint8_t out[4096];
    size_t o = 0, i = 0;
    smtp_ev e = {.kind = SMTP_EV_BODY, .env = &s->env, .data = out};

#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o == sizeof(out)) {                                                                    \
            e.len = o;                                                                             \
            cb(&e, arg);                                                                           \
            o = 0;                                                                                 \
        }                                                                                          \
        out[o++] = (ch);                                                                           \
    } while (0)

    while (i < len && s->mode == SMTP_MODE_DATA) {
        uint8_t c = p[i++];

        if (s->dot == 1) { /* ".": end if the line ends here, else the dot is dropped */
            if (c == '\r') {
                s->dot = 2;
                continue;
            }
            s->dot = 0;
            if (c == '\n') {
                s->mode = SMTP_MODE_CMD;
                break;
            }
            PUT(c);
            s->bol = false;
            continue;
        }
        if (s->dot == 2) { /* ".\r" */
            s->dot = 0;
            if (c == '\n') {
                s->mode = SMTP_MODE_CMD;
                break;
            }
            PUT('\r');
            s->bol = false;
        }
        if (s->bol && c == '.') {
            s->dot = 1;
            continue;
        }
        PUT(c);
        s->bol = c == '\n';
    }
#undef PUT
    if (o) {
        e.len = o;
        cb(&e, arg);
    }
    if (s->mode == SMTP_MODE_CMD) {
        end_message(s, true, cb, arg);
        s->len = 0;
        s->skipping = false;
    }
    return i;
}

/* BDAT mode: the chunk's bytes as they are. */
static size_t bdat_bytes(smtp_state *s, const uint8_t *p, size_t len, smtp_ev_cb cb, void *arg)
{
    size_t n = s->bdat_left < len ? (size_t)s->bdat_left : len;
    smtp_ev e = {.kind = SMTP_EV_BODY, .env = &s->env, .data = p, .len = n};

    if (n)
        cb(&e, arg);
    s->bdat_left -= n;
    if (!s->bdat_left) {
        s->mode = SMTP_MODE_CMD;
        s->len = 0;
        s->skipping = false;
        if (s->bdat_last)
            end_message(s, true, cb, arg);
    }
    return n;
}

void smtp_data(smtp_state *s, const uint8_t *data, size_t len, bool gap, smtp_ev_cb cb, void *arg)
{
    if (gap && s->mode != SMTP_MODE_DONE) {
        end_message(s, false, cb, arg);
        s->mode = SMTP_MODE_DONE;
    }
    while (len && s->mode != SMTP_MODE_DONE) {
        size_t n;

        if (s->mode == SMTP_MODE_CMD)
            n = cmd_bytes(s, data, len, cb, arg);
        else if (s->mode == SMTP_MODE_DATA)
            n = data_bytes(s, data, len, cb, arg);
        else
            n = bdat_bytes(s, data, len, cb, arg);
        data += n;
        len -= n;
    }
}

void smtp_end(smtp_state *s, smtp_ev_cb cb, void *arg)
{
    end_message(s, false, cb, arg);
    s->mode = SMTP_MODE_DONE;
}
