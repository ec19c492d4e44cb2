/*
 * ftp.c - FTP control commands of the client (see ftp.h).
 *
 * Lines end at LF (a CR before it is dropped). A gap in the stream ends the line being
 * read without an event: its start is lost, so what follows the gap up to the next LF is
 * skipped. The command is the first word; only the commands listed in ftp.h are events.
 */
#include "ftp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const commands[] = {"USER", "PORT", "EPRT", "RETR", "STOR", "STOU", "APPE",
                                       "DELE", "RNFR", "RNTO", "MKD",  "RMD",  "SITE"};
/* Commands that open a data connection for a listing: followed, not written. */
static const char *const quiet_commands[] = {"LIST", "NLST", "MLSD"};
/* Commands that open a data connection for a file. */
static const char *const file_commands[] = {"RETR", "STOR", "STOU", "APPE"};

bool ftp_command_is_listing(const char *cmd)
{
    for (size_t k = 0; k < sizeof(quiet_commands) / sizeof(quiet_commands[0]); k++)
        if (!strcmp(cmd, quiet_commands[k]))
            return true;
    return false;
}

void ftp_init(ftp_state *s)
{
    memset(s, 0, sizeof(*s));
}

bool ftp_done(const ftp_state *s)
{
    return s->events >= FTP_MAX_EVENTS;
}

/* "h1,h2,h3,h4,p1,p2" (RFC 959). */
static bool parse_port(const char *a, size_t n, ftp_ev *e)
{
    unsigned v[6];
    int k = 0;
    size_t i = 0;

    while (i < n && a[i] == ' ')
        i++;
    for (; k < 6; k++) {
        unsigned x = 0;
        size_t d = 0;
        while (i < n && isdigit((unsigned char)a[i]) && d < 3) {
            x = x * 10 + (unsigned)(a[i++] - '0');
            d++;
        }
        if (!d || x > 255)
            return false;
        v[k] = x;
        if (k < 5) {
            if (i >= n || a[i] != ',')
                return false;
            i++;
        }
    }
    e->af = AF_INET;
    for (k = 0; k < 4; k++)
        e->ip[k] = (uint8_t)v[k];
    e->port = (uint16_t)(v[4] << 8 | v[5]);
    return true;
}

/* "<d>proto<d>address<d>port<d>" with any delimiter d (RFC 2428). */
static bool parse_eprt(const char *a, size_t n, ftp_ev *e)
{
    char f[3][64];
    size_t i = 0;
    char d;

    while (i < n && a[i] == ' ')
        i++;
    if (i >= n)
        return false;
    d = a[i++];
    for (int k = 0; k < 3; k++) {
        size_t j = 0;
        while (i < n && a[i] != d && j + 1 < sizeof(f[k]))
            f[k][j++] = a[i++];
        if (i >= n || a[i] != d)
            return false;
        f[k][j] = '\0';
        i++;
    }
    char *end;
    long port = strtol(f[2], &end, 10);
    if (*end || port < 0 || port > 65535)
        return false;
    if (!strcmp(f[0], "1") && inet_pton(AF_INET, f[1], e->ip) == 1)
        e->af = AF_INET;
    else if (!strcmp(f[0], "2") && inet_pton(AF_INET6, f[1], e->ip) == 1)
        e->af = AF_INET6;
    else
        return false;
    e->port = (uint16_t)port;
    return true;
}

/*
 * Reads data into l up to and including the next LF; returns the bytes used. l->ready
 * tells whether l->buf then holds a whole line (its CR dropped); a line longer than
 * FTP_LINE_MAX, or one a gap cut, is skipped to its end.
 */
static uint32_t line_take(ftp_line *l, const uint8_t *data, uint32_t len, bool gap)
{
    uint32_t i = 0;

    if (l->ready || gap) {
        l->len = 0;
        l->ready = false;
        l->skipping = gap;
    }
    while (i < len) {
        uint8_t ch = data[i++];

        if (ch == '\n') {
            l->ready = !l->skipping;
            l->skipping = false;
            if (l->ready && l->len && l->buf[l->len - 1] == '\r')
                l->len--;
            if (!l->ready)
                l->len = 0;
            break;
        }
        if (l->skipping)
            continue;
        if (l->len == FTP_LINE_MAX) {
            l->skipping = true;
            l->len = 0;
        } else {
            l->buf[l->len++] = (char)ch;
        }
    }
    return i;
}

static void line_done(ftp_state *s, const uint8_t *client, int ipv, ftp_ev_cb cb, void *arg)
{
    char cmd[8];
    const char *line = s->cmd.buf;
    size_t n = s->cmd.len, i = 0, c = 0;
    ftp_ev e;

    while (i < n && line[i] == ' ')
        i++;
    while (i < n && isalpha((unsigned char)line[i]) && c + 1 < sizeof(cmd))
        cmd[c++] = (char)toupper((unsigned char)line[i++]);
    cmd[c] = '\0';
    if (!c || (i < n && line[i] != ' '))
        return;
    memset(&e, 0, sizeof(e));
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(cmd, commands[k]))
            e.command = commands[k];
    for (size_t k = 0; k < sizeof(quiet_commands) / sizeof(quiet_commands[0]); k++)
        if (!strcmp(cmd, quiet_commands[k])) {
            e.command = quiet_commands[k];
            e.quiet = true;
        }
    e.transfer = e.quiet;
    for (size_t k = 0; k < sizeof(file_commands) / sizeof(file_commands[0]); k++)
        e.transfer = e.transfer || !strcmp(cmd, file_commands[k]);
    if (!e.command || ftp_done(s))
        return;
    if (i < n)
        i++; /* the space */
    e.arg = line + i;
    e.arg_len = n - i;
    if (!strcmp(e.command, "PORT"))
        e.active = parse_port(e.arg, e.arg_len, &e);
    else if (!strcmp(e.command, "EPRT"))
        e.active = parse_eprt(e.arg, e.arg_len, &e);
    if (e.active)
        e.bounce =
            (e.af == AF_INET) != (ipv == 4) || memcmp(e.ip, client, e.af == AF_INET ? 4 : 16) != 0;
    s->events += !e.quiet;
    cb(&e, arg);
}

/* "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)" (the parentheses are optional) and
 * "229 Entering Extended Passive Mode (|||port|)" (any delimiter). */
static void reply_done(ftp_state *s, ftp_ev_cb cb, void *arg)
{
    const char *l = s->reply.buf;
    size_t n = s->reply.len, i = 4;
    ftp_ev e;

    if (n < 5 || l[3] != ' ' || (memcmp(l, "227", 3) && memcmp(l, "229", 3)))
        return;
    memset(&e, 0, sizeof(e));
    e.command = "PASV";
    e.quiet = e.passive = true;
    if (l[2] == '7') {
        while (i < n && !isdigit((unsigned char)l[i]))
            i++;
        if (i >= n || !parse_port(l + i, n - i, &e))
            return;
    } else {
        char d;
        unsigned long port = 0;
        size_t digits = 0;

        while (i < n && l[i] != '(')
            i++;
        if (i + 5 > n)
            return;
        d = l[++i];
        if (l[i + 1] != d || l[i + 2] != d)
            return;
        for (i += 3; i < n && isdigit((unsigned char)l[i]) && digits < 5; i++, digits++)
            port = port * 10 + (unsigned long)(l[i] - '0');
        if (!digits || i >= n || l[i] != d || port == 0 || port > 65535)
            return;
        e.port = (uint16_t)port;
    }
    cb(&e, arg);
}

void ftp_reply_data(ftp_state *s, const uint8_t *data, uint32_t len, bool gap, ftp_ev_cb cb,
                    void *arg)
{
    while (len || gap) {
        uint32_t used = line_take(&s->reply, data, len, gap);

        gap = false;
        if (s->reply.ready)
            reply_done(s, cb, arg);
        data += used;
        len -= used;
    }
}

void ftp_data(ftp_state *s, const uint8_t *client, int ip_version, const uint8_t *data,
              uint32_t len, bool gap, ftp_ev_cb cb, void *arg)
{
    while ((len || gap) && !ftp_done(s)) {
        uint32_t used = line_take(&s->cmd, data, len, gap);

        gap = false;
        if (s->cmd.ready)
            line_done(s, client, ip_version, cb, arg);
        data += used;
        len -= used;
    }
}
