/*
 * test_http.c - the pure parts of sensor/http.c: the URI normaliser rules match on
 * (http.url_normalized) and the test that hands a flow to libhtp. The parser on real
 * conversations is tested end to end (tests/cases/http-keepalive, the detection table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/http.h"

static const char *norm(const char *in, char *out, size_t cap)
{
    size_t n = http_normalize((const uint8_t *)in, strlen(in), out, cap);

    assert_int_equal(n, strlen(out));
    return out;
}

static void test_normalize(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/a.php?id=1%27+UNION+SELECT+1", "/a.php?id=1' union select 1"},
        /* double encoding: %2527 is %27 is ' */
        {"/a.php?id=1%2527%2BUNION%2BSELECT", "/a.php?id=1' union select"},
        /* SQL comments and runs of white space as one space */
        {"/q?x=1'/**/UNION/*foo*/SELECT%09%0a%0d  2", "/q?x=1' union select 2"},
        /* an unterminated comment ends the text */
        {"/q?x=1/*never closed", "/q?x=1"},
        {"/<ScRiPt>alert(1)</sCrIpT>", "/<script>alert(1)</script>"},
        /* bad escapes are kept as they are */
        {"/%zz%4/%", "/%zz%4/%"},
        /* control characters and NUL as a space, trailing space dropped */
        {"/a%00b%01c%7f", "/a b c"},
        {"", ""},
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(norm(cases[i].in, out, sizeof(out)), cases[i].want))
            fail_msg("case %zu: '%s' gave '%s', want '%s'", i, cases[i].in, out, cases[i].want);
}

static void test_normalize_bounds(void **state)
{
    (void)state;
    char big[10000], out[64], tiny[1];

    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* the output is cut to its buffer and stays a C string */
    assert_int_equal(http_normalize((const uint8_t *)big, strlen(big), out, sizeof(out)), 63);
    assert_int_equal(out[63], '\0');
    assert_int_equal(out[0], 'a');
    assert_int_equal(http_normalize((const uint8_t *)"/abc", 4, tiny, sizeof(tiny)), 0);
    assert_int_equal(tiny[0], '\0');
    assert_int_equal(http_normalize((const uint8_t *)"/abc", 4, tiny, 0), 0);
}

static void test_request_start(void **state)
{
    (void)state;
    static const char *const yes[] = {"GET / HTTP/1.1\r\n", "POST /x", "PROPFIND /dav",
                                      "OPTIONS * HTTP/1.1", "HEAD "};
    static const char *const no[] = {
        "HTTP/1.1 200 OK", "GET/", "get / HTTP/1.1", "\x16\x03\x01", "SSH-2.0-OpenSSH", "", "GE"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(http_is_request_start((const uint8_t *)yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(http_is_request_start((const uint8_t *)no[i], strlen(no[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_normalize_bounds),
        cmocka_unit_test(test_request_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
