/*
 * test_login.c - the failed-login parser (sensor/login.c): the four protocols,
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
