/*
 * login.h - failed-login detection on clear-text POP3, IMAP, SMTP AUTH, Telnet
 * and HTTP.
 *
 * nDPI 4.2 flags a failed login only for FTP (auth_failed, read in dpi.c); for
 * these five protocols it reads the credentials but not the server's answer.
 * This parser reads that answer from the raw TCP payloads dpi.c hands it, one
 * packet at a time, with a fixed 32-byte state per flow and no buffering:
 *
 *   POP3    a "-ERR" reply to PASS, APOP or "AUTH <mechanism>" (SASL "+ "
 *           continuations and the client's answers in between are skipped)
 *   IMAP    a tagged "NO" or "BAD" reply carrying the tag of the last
 *           "<tag> LOGIN" or "<tag> AUTHENTICATE" command (tags up to 16 bytes)
 *   SMTP    a final 4xx or 5xx reply (e.g. "535 5.7.8") to "AUTH <mechanism>"
 *           (334 continuations skipped; "535-" lines of a multi-line reply are
 *           not the final line and count once with it)
 *   Telnet  server text "login incorrect", "login failed", "login invalid",
 *           "authentication failure", "authentication failed", "access denied"
 *           or "bad password" (any case) in the first server payload with text
 *           after a prompt: "login:", "username:", "user name:" or "password:"
 *           ending the server's payload (only blanks, control bytes or Telnet
 *           commands after it), as a server waiting for input sends it. Other
 *           text first (the echo of the user name, "Last login: ..." after a
 *           good password) ends the wait, so a banner or shell output with
 *           these words is no failure; a su/sudo "Password:" prompt answered
 *           with "Authentication failure" inside the session is one.
 *   HTTP    a "401" response to a request with an "Authorization:" header, or
 *           a "407" to one with "Proxy-Authorization:" (any scheme: Basic,
 *           Digest, NTLM, Negotiate, Bearer...). A 401/407 to a request
 *           without them is the normal challenge, no failure. A request starts
 *           a client payload ("METHOD target HTTP/1.x" as its first line), a
 *           response a server payload ("HTTP/1.x NNN"), and only while a
 *           request awaits its response, so a body with such text is no
 *           response. Header names at a line start, any case, up to the blank
 *           line. A 401/407 whose WWW-/Proxy-Authenticate header carries an
 *           NTLM or Negotiate token (a handshake step) or Digest "stale=true"
 *           (a new nonce) is no failure. 1xx responses are skipped (101: the
 *           flow is no longer HTTP). Keep-alive: each response counts.
 *           Pipelined requests: only the response to the last request of a
 *           burst is judged (the others cannot be told apart).
 *
 * Every failure is counted once (a reply closes the pending command; a Telnet
 * failure waits for the next prompt). A positive reply (+OK, tagged OK, 235;
 * HTTP: a 2xx or 3xx to a request with credentials) ends the parsing for the
 * flow: the login is over.
 *
 * Limits, by design (everything here comes from the network):
 *   - Lines are recognised by their first bytes only, in the packet where the
 *     line starts; the rest of a long line is skipped up to its LF, never
 *     stored. A line (or Telnet phrase) split across two TCP segments before
 *     its keyword is complete is missed, as is a line that starts in a segment
 *     after a hole in the sequence numbers (the parser cannot tell whether the
 *     segment starts a line).
 *   - A retransmitted segment (sequence numbers at or before ones already
 *     seen) is skipped, so it cannot count a failure twice.
 *   - At most LOGIN_MAX_PKTS payload packets are read per flow, in the
 *     directions the protocol needs (Telnet: the server's only); then the
 *     flow is done. Brute-force tools make a few attempts per connection, so
 *     this bounds the CPU without missing them in practice.
 *   - HTTP: a request line that does not end in its first payload, a status
 *     line split before its code, a response that shares its payload with a
 *     1xx response, or a credentials header split across two segments is
 *     missed; so is HTTP/2, and anything over TLS (port 443). A response
 *     that goes unseen leaves its request pending: later responses are then
 *     taken as answers to pipelined requests and not judged.
 *   - LF alone ends a line as well as CRLF; a line without any terminator at
 *     the end of a segment is read, and the next segment of that direction is
 *     taken as its continuation.
 */
#ifndef FH_LOGIN_H
#define FH_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LOGIN_NONE,
    LOGIN_POP3,
    LOGIN_IMAP,
    LOGIN_SMTP,
    LOGIN_TELNET,
    LOGIN_HTTP
} login_proto;

#define LOGIN_MAX_PKTS 64
#define LOGIN_TAG_MAX  16

/* Per-flow state: zeroed (or login_init) is a valid start. */
typedef struct {
    uint32_t next_seq[2]; /* [0] client, [1] server: sequence number after the last payload */
    uint8_t proto;        /* login_proto */
    uint8_t flags;        /* LOGIN_F_* (login.c) */
    uint8_t wait;         /* a login command awaits its reply; Telnet: a prompt was seen;
                             HTTP: credentials of the last request (LOGIN_HTTP_*, login.c) */
    uint8_t failures;     /* failed logins seen, saturating at 255 */
    uint8_t pkts;         /* payload packets read */
    uint8_t tag_len;      /* IMAP: tag of the pending LOGIN/AUTHENTICATE */
    uint8_t pending;      /* HTTP: requests without a response yet (saturating) */
    char tag[LOGIN_TAG_MAX];
} login_state;

/* Starts over for protocol p (LOGIN_NONE: read nothing). */
void login_init(login_state *s, login_proto p);

/*
 * Reads one TCP payload of the flow: from_server tells its direction, seq is
 * the segment's TCP sequence number. Does nothing once the flow is done.
 */
void login_feed(login_state *s, bool from_server, uint32_t seq, const uint8_t *data, size_t len);

/* True when nothing more will be read (login over, budget spent, LOGIN_NONE). */
bool login_done(const login_state *s);

/* Number of failed logins seen (0..255). */
unsigned login_failures(const login_state *s);

/* The parser for an application protocol by its well-known TCP server port
 * (110, 143, 25, 587, 23, 80, 8080), LOGIN_NONE for others. */
login_proto login_proto_by_port(uint16_t server_port);

#endif
