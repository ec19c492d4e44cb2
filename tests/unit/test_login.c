/*
 * test_login.c - the failed-login parser (sensor/login.c): the five protocols,
 * successes and errors that are no failed login, lines split across segments,
 * LF without CR, lines without an end, long lines, binary garbage, IMAP tags
 * that do not match, retransmissions, holes, and the packet budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/login.h"

/* A conversation with consecutive sequence numbers in each direction. */
typedef struct {
    login_state s;
    uint32_t seq[2];
} conv;

static void conv_init(conv *c, login_proto p)
{
    login_init(&c->s, p);
    c->seq[0] = 1000;
    c->seq[1] = 900000;
}

static void send_n(conv *c, bool from_server, const void *data, size_t len)
{
    int d = from_server ? 1 : 0;

    login_feed(&c->s, from_server, c->seq[d], data, len);
    c->seq[d] += (uint32_t)len;
}

#define CLI(c, str) send_n((c), false, (str), strlen(str))
#define SRV(c, str) send_n((c), true, (str), strlen(str))

static void test_pop3(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_POP3);
    SRV(&c, "+OK ready\r\n");
    CLI(&c, "USER bob\r\n");
    SRV(&c, "-ERR no such user\r\n"); /* not after an authentication command */
    assert_int_equal(login_failures(&c.s), 0);
    CLI(&c, "PASS x\r\n");
    SRV(&c, "-ERR [AUTH] failed\r\n");
    SRV(&c, "-ERR again\r\n"); /* no command pending: once */
    assert_int_equal(login_failures(&c.s), 1);
    CLI(&c, "apop bob 0123456789abcdef\r\n");
    SRV(&c, "-err bad digest\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, "AUTH\r\n"); /* lists the mechanisms: no login */
    SRV(&c, "-ERR not supported\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, "AUTH PLAIN\r\n");
    SRV(&c, "+ \r\n");
    CLI(&c, "AGJvYgB4\r\n");
    SRV(&c, "-ERR [AUTH] failed\r\n");
    assert_int_equal(login_failures(&c.s), 3);
    assert_false(login_done(&c.s));
    CLI(&c, "PASS right\r\n");
    SRV(&c, "+OK logged in\r\n");
    assert_true(login_done(&c.s));
    CLI(&c, "PASS y\r\n");
    SRV(&c, "-ERR\r\n");
    assert_int_equal(login_failures(&c.s), 3);
}

static void test_imap(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_IMAP);
    SRV(&c, "* OK ready\r\n");
    CLI(&c, "a1 LOGIN bob x\r\n");
    SRV(&c, "* BAD untagged\r\na0 NO other tag\r\na10 NO longer tag\r\nA1 NO case\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    SRV(&c, "a1 NO [AUTHENTICATIONFAILED] failed\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    CLI(&c, "a2 SELECT INBOX\r\n");
    SRV(&c, "a2 NO not logged in\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    CLI(&c, "tag.3 authenticate PLAIN\r\n");
    SRV(&c, "+ \r\n");
    CLI(&c, "AGJvYgB4\r\n");
    SRV(&c, "tag.3 BAD invalid\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, "a4 LOGINX bob x\r\n"); /* not LOGIN */
    SRV(&c, "a4 NO\r\n");
    CLI(&c, "* LOGIN bob x\r\n"); /* no tag */
    SRV(&c, "* NO\r\n");
    CLI(&c, "aaaaaaaaaaaaaaaaa LOGIN bob x\r\n"); /* tag of 17 bytes: ignored */
    SRV(&c, "aaaaaaaaaaaaaaaaa NO\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, "aaaaaaaaaaaaaaaa LOGIN bob x\r\n"); /* 16 bytes: the longest */
    SRV(&c, "aaaaaaaaaaaaaaaa NO\r\n");
    assert_int_equal(login_failures(&c.s), 3);
    CLI(&c, "a5 LOGIN bob y\r\n");
    SRV(&c, "a5 OK logged in\r\n");
    assert_true(login_done(&c.s));
}

static void test_smtp(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_SMTP);
    SRV(&c, "220 mail ESMTP\r\n");
    CLI(&c, "EHLO x\r\n");
    SRV(&c, "250-mail\r\n250 AUTH PLAIN LOGIN\r\n");
    CLI(&c, "MAIL FROM:<a@b>\r\n");
    SRV(&c, "550 no\r\n"); /* not after AUTH */
    CLI(&c, "AUTH LOGIN\r\n");
    SRV(&c, "334 VXNlcm5hbWU6\r\n");
    CLI(&c, "Ym9i\r\n");
    SRV(&c, "334 UGFzc3dvcmQ6\r\n");
    CLI(&c, "eA==\r\n");
    SRV(&c, "535-5.7.8 first line\r\n535-5.7.8 second\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    SRV(&c, "535 5.7.8 last line\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    CLI(&c, "AUTH PLAIN AGJvYgB4\r\n");
    SRV(&c, "454 4.7.0 Temporary authentication failure\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, "AUTH PLAIN AGJvYgB4\r\n");
    SRV(&c, "53x not a code\r\n5350 nor this\r\n");
    assert_int_equal(login_failures(&c.s), 2);
    SRV(&c, "535\r\n"); /* a code alone is a last line */
    assert_int_equal(login_failures(&c.s), 3);
    CLI(&c, "AUTH PLAIN AGJvYgB5\r\n");
    SRV(&c, "235 2.7.0 Authentication successful\r\n");
    assert_true(login_done(&c.s));
}

static void test_telnet(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_TELNET);
    SRV(&c, "\xff\xfd\x18\xff\xfd\x20");
    SRV(&c, "Warning: access denied to strangers\r\n\r\nLogin: ");
    assert_int_equal(login_failures(&c.s), 0);
    CLI(&c, "b"); /* the client side is not read */
    SRV(&c, "b"); /* echo: ends the wait */
    SRV(&c, "\r\nLogin incorrect\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    SRV(&c, "Password: \xff\xf9"); /* IAC GA after the prompt */
    SRV(&c, "\r\n");               /* no text: still waiting */
    SRV(&c, "\r\nLOGIN INCORRECT\r\nlogin: ");
    assert_int_equal(login_failures(&c.s), 1);
    SRV(&c, "\r\n% Authentication failed\r\nUsername: ");
    assert_int_equal(login_failures(&c.s), 2);
    SRV(&c, "User Name: ");
    SRV(&c, "Access denied. Access denied.\r\n"); /* once a payload */
    assert_int_equal(login_failures(&c.s), 3);
    SRV(&c, "password:");
    SRV(&c, "Last login: Fri Mar  1 07:59:01 2024\r\n$ ");
    SRV(&c, "cat: x: Access denied\r\n$ ");
    assert_int_equal(login_failures(&c.s), 3);
    SRV(&c, "Last login: yesterday"); /* a prompt only at the end of the payload */
    SRV(&c, "login failed");
    assert_int_equal(login_failures(&c.s), 3);
    assert_false(login_done(&c.s));
}

/* A line whose keyword is split between segments is missed; one whose
 * keyword is whole is seen, whatever follows in the next segment. */
static void test_split_lines(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_POP3);
    CLI(&c, "PA");
    CLI(&c, "SS x\r\n");
    SRV(&c, "-ERR no\r\n");
    assert_int_equal(login_failures(&c.s), 0); /* PASS was split */
    CLI(&c, "PASS x");
    CLI(&c, "yz\r\n");
    SRV(&c, "-ER");
    SRV(&c, "R no\r\n");
    assert_int_equal(login_failures(&c.s), 0); /* -ERR was split */
    SRV(&c, "-ERR [AUTH] fai");
    SRV(&c, "led\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    /* the continuation of a line is not a line start */
    CLI(&c, "NOOP padding ");
    CLI(&c, "PASS x\r\n");
    SRV(&c, "-ERR\r\n");
    assert_int_equal(login_failures(&c.s), 1);
}

static void test_lf_and_missing_end(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_IMAP);
    CLI(&c, "a1 LOGIN bob x\n"); /* LF only */
    SRV(&c, "* OK\na1 NO failed\n");
    assert_int_equal(login_failures(&c.s), 1);
    CLI(&c, "a2 LOGIN bob x"); /* no end at all */
    SRV(&c, "a2 NO");
    assert_int_equal(login_failures(&c.s), 2);
    conv_init(&c, LOGIN_SMTP);
    CLI(&c, "AUTH PLAIN AGJvYgB4");
    SRV(&c, "535");
    assert_int_equal(login_failures(&c.s), 1);
}

static void test_long_lines(void **state)
{
    conv c;
    size_t n = 60000;
    char *big = malloc(n + 32);

    (void)state;
    assert_non_null(big);
    conv_init(&c, LOGIN_POP3);
    memcpy(big, "PASS ", 5);
    memset(big + 5, 'x', n - 5);
    memcpy(big + n, "\r\n", 3);
    CLI(&c, big);
    /* a long reply, and a long line before the real one */
    memcpy(big, "+OK", 3);
    memset(big + 3, 'y', n - 3);
    memcpy(big + n, "\r\n-ERR\r\n", 9);
    SRV(&c, big);
    assert_true(login_done(&c.s)); /* +OK came first */
    conv_init(&c, LOGIN_POP3);
    CLI(&c, "PASS x\r\n");
    memset(big, 'z', n);
    memcpy(big + n, "\r\n-ERR\r\n", 9);
    SRV(&c, big);
    assert_int_equal(login_failures(&c.s), 1);
    /* oversized payloads (not from a real segment) are ignored */
    CLI(&c, "PASS x\r\n");
    login_feed(&c.s, true, c.seq[1], (const uint8_t *)"-ERR\r\n", 70000);
    assert_int_equal(login_failures(&c.s), 1);
    free(big);
}

static void test_garbage(void **state)
{
    uint8_t buf[1400];
    uint32_t x = 12345;
    login_proto protos[] = {LOGIN_POP3, LOGIN_IMAP, LOGIN_SMTP, LOGIN_TELNET};

    (void)state;
    for (size_t p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
        conv c;

        conv_init(&c, protos[p]);
        for (int round = 0; round < 50; round++) {
            for (size_t i = 0; i < sizeof(buf); i++) {
                x = x * 1103515245u + 12345u;
                buf[i] = (uint8_t)(x >> 16);
            }
            send_n(&c, round & 1, buf, (size_t)(x % sizeof(buf)));
        }
        assert_int_equal(login_failures(&c.s), 0);
        /* NUL bytes, lone CRs and empty lines */
        conv_init(&c, protos[p]);
        send_n(&c, false, "\0\0\r\r\n\n\n", 7);
        send_n(&c, true, "\n\r\n\0-ERR\0", 9);
        assert_int_equal(login_failures(&c.s), 0);
    }
}

static void test_retransmission_and_holes(void **state)
{
    conv c;
    login_state *s = &c.s;

    (void)state;
    conv_init(&c, LOGIN_POP3);
    login_feed(s, false, 100, (const uint8_t *)"PASS x\r\n", 8);
    login_feed(s, true, 500, (const uint8_t *)"-ERR\r\n", 6);
    login_feed(s, false, 100, (const uint8_t *)"PASS x\r\n", 8); /* retransmitted */
    login_feed(s, true, 500, (const uint8_t *)"-ERR\r\n", 6);
    assert_int_equal(login_failures(s), 1);
    /* overlap: only the new part is read */
    login_feed(s, false, 104, (const uint8_t *)" x\r\nPASS y\r\n", 12);
    login_feed(s, true, 506, (const uint8_t *)"-ERR\r\n", 6);
    assert_int_equal(login_failures(s), 2);
    /* a hole: the next segment may start inside a line and is skipped to its LF */
    login_feed(s, false, 200, (const uint8_t *)"PASS z\r\n", 8);
    login_feed(s, true, 512, (const uint8_t *)"-ERR\r\n", 6);
    assert_int_equal(login_failures(s), 2);
    login_feed(s, false, 208, (const uint8_t *)"PASS z\r\n", 8);
    login_feed(s, true, 518, (const uint8_t *)"-ERR\r\n", 6);
    assert_int_equal(login_failures(s), 3);
    /* sequence numbers wrapping around */
    conv_init(&c, LOGIN_SMTP);
    login_feed(s, false, 0xfffffffcu, (const uint8_t *)"AUTH PLAIN x\r\n", 14);
    login_feed(s, false, 0xfffffffcu, (const uint8_t *)"AUTH PLAIN x\r\n", 14);
    login_feed(s, true, 7, (const uint8_t *)"535 no\r\n", 8);
    login_feed(s, false, 10, (const uint8_t *)"AUTH PLAIN x\r\n", 14);
    login_feed(s, true, 15, (const uint8_t *)"535 no\r\n", 8);
    assert_int_equal(login_failures(s), 2);
}

#define REQ(path, hdrs) "GET " path " HTTP/1.1\r\nHost: portal\r\n" hdrs "\r\n"
#define R401                                                                                       \
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"admin\"\r\n"                     \
    "Content-Length: 0\r\n\r\n"
#define R200 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

static void test_http(void **state)
{
    conv c;

    (void)state;
    /* a 401 to a request without credentials is the challenge */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, REQ("/admin/", ""));
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 0);
    /* then the same request with credentials, refused */
    CLI(&c, REQ("/admin/", "Authorization: Basic YWRtaW46d3Jvbmc=\r\n"));
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 1);
    /* keep-alive: two more refusals (lower-case header name), then a 200 */
    CLI(&c, REQ("/admin/", "authorization: Basic YWRtaW46eA==\r\n"));
    SRV(&c, R401);
    CLI(&c, REQ("/admin/", "AUTHORIZATION: Digest username=\"admin\", response=\"0\"\r\n"));
    SRV(&c, "HTTP/1.0 401 Unauthorized\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 3);
    assert_false(login_done(&c.s));
    CLI(&c, REQ("/admin/", "Authorization: Basic YWRtaW46cGFzc3dvcmQ=\r\n"));
    SRV(&c, R200);
    assert_true(login_done(&c.s));
    CLI(&c, REQ("/admin/", "Authorization: Basic eDp5\r\n"));
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 3);

    /* a 200 to a request without credentials goes on */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, REQ("/", ""));
    SRV(&c, R200);
    assert_false(login_done(&c.s));
    CLI(&c, REQ("/api", "Authorization: Bearer eyJhbGciOi.x.y\r\n"));
    SRV(&c,
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
}

static void test_http_proxy(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    SRV(&c, "HTTP/1.1 407 Proxy Authentication Required\r\n"
            "Proxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    CLI(&c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
            "Proxy-Authorization: Basic dXNlcjp3cm9uZw==\r\n\r\n");
    SRV(&c, "HTTP/1.1 407 Proxy Authentication Required\r\n"
            "Proxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    /* past the proxy, the origin's challenge: no failure */
    CLI(&c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
            "proxy-authorization: Basic dXNlcjpwYXNz\r\n\r\n");
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 1);
    /* Authorization only, answered 407: the proxy's challenge */
    CLI(&c, REQ("/", "Authorization: Basic eDp5\r\n"));
    SRV(&c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    /* CONNECT with good proxy credentials: the login is over */
    CLI(&c, "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
    SRV(&c, "HTTP/1.1 200 Connection established\r\n\r\n");
    assert_true(login_done(&c.s));
}

static void test_http_handshakes(void **state)
{
    conv c;

    (void)state;
    /* NTLM: the 401 with the server's challenge token is a step; the 401
     * without a token after the client's answer is the refusal */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, REQ("/", ""));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
            "WWW-Authenticate: NTLM\r\n\r\n");
    CLI(&c,
        REQ("/",
            "Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==\r\n"));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
            "WWW-Authenticate: NTLM TlRMTVNTUAACAAAADAAMADgAAAAFgomi\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    CLI(&c, REQ("/", "Authorization: NTLM TlRMTVNTUAADAAAAGAAYAGgAAAAYABgAgAAAAA==\r\n"));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
            "WWW-Authenticate: NTLM\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    /* the challenge header in the next segment of the response */
    CLI(&c,
        REQ("/",
            "Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==\r\n"));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n");
    SRV(&c, "www-authenticate: ntlm TlRMTVNTUAACAAAADAAMADgAAAAFgomi\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    /* Digest with a stale nonce: the client retries, no failure */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, REQ("/", "Authorization: Digest username=\"a\", nonce=\"old\"\r\n"));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", "
            "nonce=\"new\", stale=TRUE\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    CLI(&c, REQ("/", "Authorization: Digest username=\"a\", nonce=\"new\"\r\n"));
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", "
            "nonce=\"newer\", stale=false\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 1);
}

static void test_http_bodies_and_pipelining(void **state)
{
    conv c;

    (void)state;
    /* status text inside a body, mid-packet or at the start of a body segment */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, REQ("/log.txt", "Authorization: Basic YWRtaW46cGFzc3dvcmQ=\r\n"));
    SRV(&c, "HTTP/1.1 404 Not Found\r\nContent-Length: 80\r\n\r\nHTTP/1.1 401 Unauthorized\r\n");
    SRV(&c, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    /* a request body with a credentials line and request text is not read */
    CLI(&c, "POST /login HTTP/1.1\r\nHost: portal\r\nContent-Length: 60\r\n\r\n"
            "Authorization: Basic x\r\n");
    CLI(&c, "GET /x HTTP/1.1 is not a request here\r\n");
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 0);
    /* credentials header in a second segment of the request headers */
    CLI(&c, "GET /admin/ HTTP/1.1\r\nHost: portal\r\n");
    CLI(&c, "Authorization: Basic eDp5\r\n\r\n");
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 1);
    /* 100 Continue is no answer; the final response after it is */
    CLI(&c, "POST /admin/ HTTP/1.1\r\nAuthorization: Basic eDp5\r\nExpect: 100-continue\r\n\r\n");
    SRV(&c, "HTTP/1.1 100 Continue\r\n\r\n");
    CLI(&c, "user=x");
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 2);
    /* pipelined: only the answer to the last request is judged */
    CLI(&c, REQ("/a", "Authorization: Basic eDp5\r\n") REQ("/b", ""));
    CLI(&c, REQ("/c", ""));
    SRV(&c, R401);
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 2);
    SRV(&c, R401); /* answers /c, which had no credentials */
    assert_int_equal(login_failures(&c.s), 2);
    CLI(&c, REQ("/d", "Authorization: Basic eDp5\r\n"));
    CLI(&c, REQ("/e", "Authorization: Basic eDp6\r\n"));
    SRV(&c, R401);
    SRV(&c, R401);
    assert_int_equal(login_failures(&c.s), 3);
    /* Upgrade: the flow is no longer HTTP */
    CLI(&c, REQ("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n"));
    SRV(&c, "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert_true(login_done(&c.s));
}

static void test_http_garbage(void **state)
{
    conv c;
    uint8_t junk[1500];
    uint32_t x = 12345;

    (void)state;
    conv_init(&c, LOGIN_HTTP);
    for (int round = 0; round < 30; round++) {
        for (size_t i = 0; i < sizeof(junk); i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (uint8_t)(x >> 16);
        }
        send_n(&c, round & 1, junk, (size_t)(x % sizeof(junk)) + 1);
    }
    assert_int_equal(login_failures(&c.s), 0);
    /* near misses of a request and a status line */
    conv_init(&c, LOGIN_HTTP);
    CLI(&c, "GET");
    CLI(&c, "GET /x HTTP/1.1");
    CLI(&c, " / HTTP/1.1\r\nAuthorization: x\r\n\r\n");
    CLI(&c, "get / HTTP/1.1\r\nAuthorization: x\r\n\r\n");
    CLI(&c, "GET / HTTP/2.0\r\nAuthorization: x\r\n\r\n");
    SRV(&c, "HTTP/1.1 401");
    SRV(&c, "HTTP/1.1 4010 x\r\n");
    SRV(&c, "HTTP/1.1 40");
    SRV(&c, "HTTP/2 401\r\n");
    SRV(&c, "\r\nHTTP/1.1 401 Unauthorized\r\n\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    /* a status line without a reason phrase ends at the packet */
    CLI(&c, "GET / HTTP/1.1\r\nAuthorization: x\r\n\r\n");
    SRV(&c, "HTTP/1.1 401");
    assert_int_equal(login_failures(&c.s), 1);
    assert_int_equal(login_proto_by_port(80), LOGIN_HTTP);
    assert_int_equal(login_proto_by_port(8080), LOGIN_HTTP);
    assert_int_equal(login_proto_by_port(443), LOGIN_NONE);
}

static void test_budget_and_none(void **state)
{
    conv c;

    (void)state;
    conv_init(&c, LOGIN_POP3);
    for (int i = 0; i < LOGIN_MAX_PKTS - 2; i++)
        CLI(&c, "NOOP\r\n");
    CLI(&c, "PASS x\r\n");
    SRV(&c, "-ERR\r\n"); /* packet LOGIN_MAX_PKTS */
    assert_int_equal(login_failures(&c.s), 1);
    assert_false(login_done(&c.s));
    CLI(&c, "PASS x\r\n");
    SRV(&c, "-ERR\r\n");
    assert_int_equal(login_failures(&c.s), 1);
    assert_true(login_done(&c.s));
    /* the budget bounds the count: the first payload only shows the prompt */
    conv_init(&c, LOGIN_TELNET);
    for (int i = 0; i < 300; i++)
        SRV(&c, "Login incorrect\r\nlogin: ");
    assert_int_equal(login_failures(&c.s), LOGIN_MAX_PKTS - 1);
    conv_init(&c, LOGIN_NONE);
    assert_true(login_done(&c.s));
    CLI(&c, "PASS x\r\n");
    SRV(&c, "-ERR\r\n");
    assert_int_equal(login_failures(&c.s), 0);
    assert_int_equal(login_proto_by_port(110), LOGIN_POP3);
    assert_int_equal(login_proto_by_port(143), LOGIN_IMAP);
    assert_int_equal(login_proto_by_port(587), LOGIN_SMTP);
    assert_int_equal(login_proto_by_port(23), LOGIN_TELNET);
    assert_int_equal(login_proto_by_port(993), LOGIN_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop3),
        cmocka_unit_test(test_imap),
        cmocka_unit_test(test_smtp),
        cmocka_unit_test(test_telnet),
        cmocka_unit_test(test_split_lines),
        cmocka_unit_test(test_lf_and_missing_end),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_retransmission_and_holes),
        cmocka_unit_test(test_budget_and_none),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_proxy),
        cmocka_unit_test(test_http_handshakes),
        cmocka_unit_test(test_http_bodies_and_pipelining),
        cmocka_unit_test(test_http_garbage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
