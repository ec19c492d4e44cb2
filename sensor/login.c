/*
 * login.c - failed-login detection on clear-text POP3, IMAP, SMTP AUTH, Telnet
 * and HTTP; what is recognised and the limits are described in login.h.
 *
 * Every read is bounded by the payload length; nothing is copied but an IMAP
 * tag of at most LOGIN_TAG_MAX bytes.
 */
#include "login.h"

#include <string.h>

enum {
    LOGIN_F_SEQ_C = 0x01, /* next_seq[0] is known */
    LOGIN_F_SEQ_S = 0x02,
    LOGIN_F_MID_C = 0x04, /* the client's next segment continues a line */
    LOGIN_F_MID_S = 0x08,
    LOGIN_F_DONE = 0x10,
    LOGIN_F_HDR_C = 0x20, /* HTTP: in the headers of the client's request */
    LOGIN_F_HDR_S = 0x40, /* HTTP: in the headers of a 401/407 just counted */
};

/* HTTP: credentials a request carried (login_state.wait) */
enum { LOGIN_HTTP_AUTH = 0x01, LOGIN_HTTP_PROXY_AUTH = 0x02 };

void login_init(login_state *s, login_proto p)
{
    memset(s, 0, sizeof(*s));
    s->proto = (uint8_t)p;
    if (p == LOGIN_NONE)
        s->flags = LOGIN_F_DONE;
}

bool login_done(const login_state *s)
{
    return s->proto == LOGIN_NONE || (s->flags & LOGIN_F_DONE);
}

unsigned login_failures(const login_state *s)
{
    return s->failures;
}

login_proto login_proto_by_port(uint16_t server_port)
{
    switch (server_port) {
    case 110:
        return LOGIN_POP3;
    case 143:
        return LOGIN_IMAP;
    case 25:
    case 587:
        return LOGIN_SMTP;
    case 23:
        return LOGIN_TELNET;
    case 80:
    case 8080:
        return LOGIN_HTTP;
    }
    return LOGIN_NONE;
}

static void failed(login_state *s)
{
    if (s->failures < 255)
        s->failures++;
    s->wait = 0;
}

static int lc(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* True when l[0..n) starts with w, ignoring case. */
static bool prefix(const uint8_t *l, size_t n, const char *w)
{
    size_t i;

    for (i = 0; w[i]; i++)
        if (i >= n || lc(l[i]) != w[i])
            return false;
    return true;
}

/* Length of w when the line starts with the word w (any case) ending there
 * (end of line, blank or CR), else 0. w is lower case. */
static size_t word(const uint8_t *l, size_t n, const char *w)
{
    size_t wl = strlen(w);

    if (!prefix(l, n, w))
        return 0;
    if (wl < n && l[wl] != ' ' && l[wl] != '\t' && l[wl] != '\r')
        return 0;
    return wl;
}

/* True when the word of length wl at the start of the line has an argument. */
static bool has_arg(const uint8_t *l, size_t n, size_t wl)
{
    size_t i = wl;

    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    return i > wl && i < n && l[i] != '\r';
}

/* ---- POP3 (RFC 1939, RFC 5034) ------------------------------------------ */

static void pop3_line(login_state *s, bool from_server, const uint8_t *l, size_t n)
{
    size_t w;

    if (!from_server) {
        if (word(l, n, "pass") || word(l, n, "apop") ||
            ((w = word(l, n, "auth")) && has_arg(l, n, w)))
            s->wait = 1;
        return;
    }
    if (!s->wait)
        return;
    if (prefix(l, n, "+ok"))
        s->flags |= LOGIN_F_DONE;
    else if (prefix(l, n, "-err"))
        failed(s);
    /* "+ challenge": the SASL exchange goes on */
}

/* ---- IMAP (RFC 9051) ---------------------------------------------------- */

/* Length of the tag at the start of a line, 0 when there is none: an IMAP
 * atom (no blank, control byte or atom-special) up to LOGIN_TAG_MAX bytes,
 * followed by a space. "*" and "+" lines have no tag. */
static size_t imap_tag(const uint8_t *l, size_t n)
{
    size_t i;

    for (i = 0; i < n && i <= LOGIN_TAG_MAX; i++) {
        uint8_t c = l[i];

        if (c == ' ')
            return i <= LOGIN_TAG_MAX ? i : 0;
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\+]", c))
            return 0;
    }
    return 0;
}

static void imap_line(login_state *s, bool from_server, const uint8_t *l, size_t n)
{
    size_t t = imap_tag(l, n);

    if (!t)
        return;
    if (!from_server) {
        if (word(l + t + 1, n - t - 1, "login") || word(l + t + 1, n - t - 1, "authenticate")) {
            memcpy(s->tag, l, t);
            s->tag_len = (uint8_t)t;
            s->wait = 1;
        }
        return;
    }
    if (!s->wait || t != s->tag_len || memcmp(l, s->tag, t) != 0)
        return;
    if (word(l + t + 1, n - t - 1, "ok"))
        s->flags |= LOGIN_F_DONE;
    else if (word(l + t + 1, n - t - 1, "no") || word(l + t + 1, n - t - 1, "bad"))
        failed(s);
}

/* ---- SMTP AUTH (RFC 4954) ----------------------------------------------- */

static void smtp_line(login_state *s, bool from_server, const uint8_t *l, size_t n)
{
    size_t w;

    if (!from_server) {
        if ((w = word(l, n, "auth")) && has_arg(l, n, w))
            s->wait = 1;
        return;
    }
    if (!s->wait || n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
        l[2] > '9')
        return;
    if (n > 3 && l[3] != ' ' && l[3] != '\r')
        return; /* "535-..." is not the last line of the reply, or not a reply */
    if (l[0] == '2')
        s->flags |= LOGIN_F_DONE; /* 235 Authentication successful */
    else if (l[0] == '4' || l[0] == '5')
        failed(s);
    /* 334: the SASL exchange goes on */
}

/* ---- Telnet ------------------------------------------------------------- */

static const char *const telnet_failures[] = {
    "login incorrect",       "login failed",  "login invalid", "authentication failure",
    "authentication failed", "access denied", "bad password",
};

static const char *const telnet_prompts[] = {"login:", "username:", "user name:", "password:"};

/* True when nothing printable follows: the server waits for input. */
static bool at_end(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] > 0x20 && d[i] < 0x7f)
            return false;
    return true;
}

/*
 * One server payload. Only a payload with printable text changes anything:
 * after a prompt, the first such payload says how the login went. A failure
 * phrase counts (once per payload); anything else (the echo of a user name,
 * "Last login: ...") ends the wait. A prompt ending the payload starts a new
 * wait.
 */
static void telnet_text(login_state *s, const uint8_t *d, size_t n)
{
    bool armed = s->wait;

    if (at_end(d, n))
        return; /* Telnet commands, CRLF, NUL: no text */
    s->wait = 0;
    for (size_t i = 0; i < n; i++) {
        int c = lc(d[i]);
        size_t k;

        if (c != 'l' && c != 'a' && c != 'b' && c != 'u' && c != 'p')
            continue;
        for (k = 0; k < sizeof(telnet_failures) / sizeof(telnet_failures[0]); k++) {
            if (prefix(d + i, n - i, telnet_failures[k])) {
                if (armed)
                    failed(s);
                armed = false;
                i += strlen(telnet_failures[k]) - 1;
                goto next;
            }
        }
        for (k = 0; k < sizeof(telnet_prompts) / sizeof(telnet_prompts[0]); k++) {
            size_t pl = strlen(telnet_prompts[k]);

            if (prefix(d + i, n - i, telnet_prompts[k])) {
                if (at_end(d + i + pl, n - i - pl))
                    s->wait = 1;
                i += pl - 1;
                goto next;
            }
        }
    next:;
    }
}

/* ---- HTTP/1.x (RFC 9110, RFC 9112) -------------------------------------- */

/*
 * True when the payload starts a request: "METHOD target HTTP/1.x" as its
 * first line, which must end in this payload (a method of 1 to 20 upper-case
 * letters, '-' or '_', then a space).
 */
static bool http_request_start(const uint8_t *d, size_t n)
{
    const uint8_t *lf;
    size_t i, end;

    for (i = 0; i < n && i <= 20; i++)
        if (!((d[i] >= 'A' && d[i] <= 'Z') || d[i] == '-' || d[i] == '_'))
            break;
    if (i == 0 || i > 20 || i >= n || d[i] != ' ')
        return false;
    lf = memchr(d, '\n', n);
    if (!lf)
        return false;
    end = (size_t)(lf - d);
    if (end > 0 && d[end - 1] == '\r')
        end--;
    return end >= i + 10 && memcmp(d + end - 8, "HTTP/1.", 7) == 0 && d[end - 9] == ' ' &&
           d[end - 1] >= '0' && d[end - 1] <= '9';
}

/* The status code when the payload starts a response ("HTTP/1.x NNN"), else 0. */
static unsigned http_status(const uint8_t *d, size_t n)
{
    if (n < 12 || memcmp(d, "HTTP/1.", 7) != 0 || d[7] < '0' || d[7] > '9' || d[8] != ' ')
        return 0;
    for (int i = 9; i < 12; i++)
        if (d[i] < '0' || d[i] > '9')
            return 0;
    if (n > 12 && d[12] != ' ' && d[12] != '\r' && d[12] != '\n')
        return 0;
    return (unsigned)((d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0'));
}

/* A request starts: its credentials are read from its header lines. */
static void http_request(login_state *s)
{
    if (s->pending < 255)
        s->pending++;
    s->wait = 0;
    s->flags |= LOGIN_F_HDR_C;
    s->flags &= (uint8_t) ~(LOGIN_F_HDR_S | LOGIN_F_MID_C);
}

/*
 * A response starts. With exactly one request pending, a 401 to a request
 * with Authorization or a 407 to one with Proxy-Authorization is a failed
 * login (its headers are then read for a handshake step that takes it back);
 * a 2xx or 3xx to a request with credentials ends the parsing.
 */
static void http_response(login_state *s, unsigned status)
{
    s->flags &= (uint8_t) ~(LOGIN_F_HDR_S | LOGIN_F_MID_S);
    if (status == 101) {
        s->flags |= LOGIN_F_DONE; /* Upgrade: no longer HTTP */
        return;
    }
    if (status < 200 || !s->pending)
        return; /* 1xx, or no request to answer (body text, unseen request) */
    if (--s->pending)
        return; /* pipelined: this answers an earlier request */
    if ((status == 401 && (s->wait & LOGIN_HTTP_AUTH)) ||
        (status == 407 && (s->wait & LOGIN_HTTP_PROXY_AUTH))) {
        failed(s);
        s->flags |= LOGIN_F_HDR_S;
    } else if (status >= 200 && status < 400 && s->wait) {
        s->flags |= LOGIN_F_DONE;
    }
    s->wait = 0;
}

/* True when the value of a WWW-/Proxy-Authenticate header asks the client to
 * go on: an NTLM or Negotiate token, or Digest's stale=true. */
static bool http_continues(const uint8_t *v, size_t n)
{
    size_t i = 0, w = 0;

    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (prefix(v + i, n - i, "ntlm "))
        w = 5;
    else if (prefix(v + i, n - i, "negotiate "))
        w = 10;
    if (w) {
        i += w;
        while (i < n && v[i] == ' ')
            i++;
        return i < n && v[i] > ' ' && v[i] < 0x7f && v[i] != ',';
    }
    if (!prefix(v + i, n - i, "digest"))
        return false;
    for (; i + 10 <= n; i++) {
        if (prefix(v + i, n - i, "stale=")) {
            size_t j = i + 6 + (v[i + 6] == '"');

            return prefix(v + j, n - j, "true");
        }
    }
    return false;
}

static void http_line(login_state *s, bool from_server, const uint8_t *l, size_t n)
{
    size_t w;

    if (!from_server) {
        if (prefix(l, n, "authorization:"))
            s->wait |= LOGIN_HTTP_AUTH;
        else if (prefix(l, n, "proxy-authorization:"))
            s->wait |= LOGIN_HTTP_PROXY_AUTH;
        return;
    }
    if (prefix(l, n, "www-authenticate:"))
        w = 17;
    else if (prefix(l, n, "proxy-authenticate:"))
        w = 19;
    else
        return;
    if (http_continues(l + w, n - w)) {
        if (s->failures && s->failures < 255)
            s->failures--; /* a handshake step, not a refusal */
        s->flags &= (uint8_t)~LOGIN_F_HDR_S;
    }
}

/*
 * One HTTP payload: a request or response may start it; then its header lines
 * (this payload and the next ones of the direction, as lines) are read up to
 * the blank line, after which only a request that follows at once (pipelined
 * in the same payload) is read. Bodies are never read.
 */
static void http_payload(login_state *s, int d, const uint8_t *data, size_t len)
{
    uint8_t hdr = d ? LOGIN_F_HDR_S : LOGIN_F_HDR_C;
    uint8_t midf = d ? LOGIN_F_MID_S : LOGIN_F_MID_C;
    unsigned status;
    bool mid;
    size_t i = 0;

    if (!d && http_request_start(data, len))
        http_request(s);
    else if (d && (status = http_status(data, len)))
        http_response(s, status);
    if (!(s->flags & hdr) || (s->flags & LOGIN_F_DONE))
        return;
    mid = s->flags & midf;
    while (i < len) {
        const uint8_t *lf = memchr(data + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - data) : len;

        if (!mid) {
            if (lf && (end == i || (end == i + 1 && data[i] == '\r'))) {
                /* blank line: the body follows, or a pipelined request */
                s->flags &= (uint8_t) ~(hdr | midf);
                if (d || !http_request_start(data + end + 1, len - end - 1))
                    return;
                http_request(s);
                i = end + 1;
                continue;
            }
            http_line(s, d, data + i, end - i);
            if (!(s->flags & hdr))
                return;
        }
        mid = !lf;
        i = end + 1;
    }
    if (mid)
        s->flags |= midf;
    else
        s->flags &= (uint8_t)~midf;
}

/* ---- segments and lines ------------------------------------------------- */

/*
 * Drops what was already seen of this direction (retransmissions, overlaps)
 * and notes a hole (the segment then continues an unknown line). Returns
 * false when nothing new is left.
 */
static bool take_segment(login_state *s, int d, uint32_t seq, const uint8_t **data, size_t *len)
{
    uint8_t known = d ? LOGIN_F_SEQ_S : LOGIN_F_SEQ_C;
    uint8_t mid = d ? LOGIN_F_MID_S : LOGIN_F_MID_C;
    uint32_t end = seq + (uint32_t)*len;

    if (s->flags & known) {
        int32_t diff = (int32_t)(seq - s->next_seq[d]);

        if (diff < 0) {
            uint32_t seen = s->next_seq[d] - seq; /* bytes already read */

            if (seen >= *len)
                return false;
            *data += seen;
            *len -= seen;
        } else if (diff > 0) {
            s->flags |= mid;
        }
    }
    s->flags |= known;
    s->next_seq[d] = end;
    return true;
}

void login_feed(login_state *s, bool from_server, uint32_t seq, const uint8_t *data, size_t len)
{
    int d = from_server ? 1 : 0;
    uint8_t midf = d ? LOGIN_F_MID_S : LOGIN_F_MID_C;
    bool mid;
    size_t i = 0;

    if (login_done(s) || !data || !len || len > 65535)
        return;
    if (s->proto == LOGIN_TELNET && !from_server)
        return; /* the client's keystrokes are not needed */
    if (!take_segment(s, d, seq, &data, &len))
        return;
    if (s->pkts >= LOGIN_MAX_PKTS) {
        s->flags |= LOGIN_F_DONE;
        return;
    }
    s->pkts++;
    if (s->proto == LOGIN_TELNET) {
        telnet_text(s, data, len);
        return;
    }
    if (s->proto == LOGIN_HTTP) {
        http_payload(s, d, data, len);
        return;
    }
    mid = s->flags & midf;
    while (i < len) {
        const uint8_t *lf = memchr(data + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - data) : len;

        if (!mid) {
            if (s->proto == LOGIN_POP3)
                pop3_line(s, from_server, data + i, end - i);
            else if (s->proto == LOGIN_IMAP)
                imap_line(s, from_server, data + i, end - i);
            else
                smtp_line(s, from_server, data + i, end - i);
            if (s->flags & LOGIN_F_DONE)
                return;
        }
        mid = !lf;
        i = end + 1;
    }
    if (mid)
        s->flags |= midf;
    else
        s->flags &= (uint8_t)~midf;
}
