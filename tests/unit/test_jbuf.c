/*
 * test_jbuf.c - the JSON writer: escaping of attacker-controlled strings,
 * nesting and commas, numbers, and the buffer ceiling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/jbuf.h"

static const char *esc(jbuf *b, const char *s, size_t n)
{
    jbuf_reset(b);
    jbuf_escape(b, s, n);
    return jbuf_cstr(b);
}

static void test_escape_ascii(void **state)
{
    jbuf b;

    (void)state;
    assert_true(jbuf_init(&b, 16, 1 << 16));
    assert_string_equal(esc(&b, "plain", 5), "plain");
    assert_string_equal(esc(&b, "a\"b\\c", 5), "a\\\"b\\\\c");
    assert_string_equal(esc(&b, "\n\r\t\b\f", 5), "\\n\\r\\t\\b\\f");
    assert_string_equal(esc(&b, "\x01\x1b\x7f", 3), "\\u0001\\u001b\\u007f");
    /* An embedded NUL is data, not the end of the string. */
    assert_string_equal(esc(&b, "a\0b", 3), "a\\u0000b");
    assert_string_equal(esc(&b, "</script>", 9), "</script>");
    jbuf_free(&b);
}

static void test_escape_utf8(void **state)
{
    jbuf b;

    (void)state;
    assert_true(jbuf_init(&b, 16, 1 << 16));
    /* Valid UTF-8 passes through: 政务云, é, an emoji (4 bytes). */
    assert_string_equal(esc(&b, "\xe6\x94\xbf\xe5\x8a\xa1\xe4\xba\x91", 9),
                        "\xe6\x94\xbf\xe5\x8a\xa1\xe4\xba\x91");
    assert_string_equal(esc(&b, "\xc3\xa9", 2), "\xc3\xa9");
    assert_string_equal(esc(&b, "\xf0\x9f\x94\xa5", 4), "\xf0\x9f\x94\xa5");
    /* Invalid bytes: each becomes U+FFFD. */
    assert_string_equal(esc(&b, "\xff", 1), "\\ufffd");
    assert_string_equal(esc(&b, "\xc3\x28", 2), "\\ufffd(");
    assert_string_equal(esc(&b, "\xc0\xaf", 2), "\\ufffd\\ufffd");            /* overlong '/' */
    assert_string_equal(esc(&b, "\xe0\x80\xaf", 3), "\\ufffd\\ufffd\\ufffd"); /* overlong */
    assert_string_equal(esc(&b, "\xed\xa0\x80", 3), "\\ufffd\\ufffd\\ufffd"); /* surrogate */
    assert_string_equal(esc(&b, "\xf4\x90\x80\x80", 4),
                        "\\ufffd\\ufffd\\ufffd\\ufffd");           /* > U+10FFFF */
    assert_string_equal(esc(&b, "\xe6\x94", 2), "\\ufffd\\ufffd"); /* cut sequence */
    /* Line and paragraph separators are escaped for JavaScript consumers. */
    assert_string_equal(esc(&b, "\xe2\x80\xa8\xe2\x80\xa9", 6), "\\u2028\\u2029");
    jbuf_free(&b);
}

static void test_document(void **state)
{
    jbuf b;

    (void)state;
    assert_true(jbuf_init(&b, 8, 1 << 16)); /* tiny start: forces growth */
    jbuf_obj_open(&b, NULL);
    jbuf_str(&b, "s", "x\"y");
    jbuf_u64(&b, "u", 18446744073709551615ULL);
    jbuf_i64(&b, "i", -42);
    jbuf_u64(&b, "z", 0);
    jbuf_bool(&b, "t", true);
    jbuf_null(&b, "n");
    jbuf_fixed(&b, "f", 0.5, 3);
    jbuf_arr_open(&b, "a");
    jbuf_u64(&b, NULL, 1);
    jbuf_str(&b, NULL, "two");
    jbuf_obj_open(&b, NULL);
    jbuf_obj_close(&b);
    jbuf_arr_close(&b);
    jbuf_obj_open(&b, "o");
    jbuf_raw(&b, "r", "[1,2]", 5);
    jbuf_obj_close(&b);
    jbuf_str(&b, "k\"ey", "v");
    jbuf_obj_close(&b);
    assert_false(jbuf_failed(&b));
    assert_string_equal(jbuf_cstr(&b),
                        "{\"s\":\"x\\\"y\",\"u\":18446744073709551615,\"i\":-42,\"z\":0,"
                        "\"t\":true,\"n\":null,\"f\":0.500,\"a\":[1,\"two\",{}],"
                        "\"o\":{\"r\":[1,2]},\"k\\\"ey\":\"v\"}");
    /* Reset reuses the memory for the next document. */
    jbuf_reset(&b);
    jbuf_obj_open(&b, NULL);
    jbuf_obj_close(&b);
    assert_string_equal(jbuf_cstr(&b), "{}");
    jbuf_free(&b);
}

/* Keys: plain ones are written in one piece, others escaped like values; a key that does not
 * fit under the ceiling fails the document without writing past it. */
static void test_keys(void **state)
{
    jbuf b;
    char key[200];

    (void)state;
    assert_true(jbuf_init(&b, 4, 1 << 12));
    jbuf_obj_open(&b, NULL);
    jbuf_u64(&b, "plain_key", 1);
    jbuf_u64(&b, "tab\tkey", 2);
    jbuf_u64(&b, "\xe7\x83\xbd\xe7\x81\xab", 3); /* 烽火 */
    jbuf_u64(&b, "back\\slash", 4);
    jbuf_u64(&b, "", 5);
    jbuf_obj_close(&b);
    assert_false(jbuf_failed(&b));
    assert_string_equal(jbuf_cstr(&b),
                        "{\"plain_key\":1,\"tab\\tkey\":2,"
                        "\"\xe7\x83\xbd\xe7\x81\xab\":3,\"back\\\\slash\":4,\"\":5}");
    jbuf_free(&b);

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_true(jbuf_init(&b, 16, 64));
    jbuf_obj_open(&b, NULL);
    jbuf_u64(&b, key, 1);
    assert_true(jbuf_failed(&b));
    assert_true(b.len < 64);
    jbuf_u64(&b, "after", 2); /* sticky: nothing more is written */
    assert_null(strstr(jbuf_cstr(&b), "after"));
    jbuf_free(&b);
}

static void test_ceiling(void **state)
{
    jbuf b;
    char big[300];

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(jbuf_init(&b, 16, 128));
    jbuf_obj_open(&b, NULL);
    jbuf_str(&b, "k", big);
    jbuf_obj_close(&b);
    assert_true(jbuf_failed(&b));
    assert_true(b.len < 128);
    /* The failure is sticky for the document and cleared by reset. */
    jbuf_reset(&b);
    assert_false(jbuf_failed(&b));
    jbuf_free(&b);
}

static void test_depth_and_nan(void **state)
{
    jbuf b;

    (void)state;
    assert_true(jbuf_init(&b, 64, 4096));
    for (int i = 0; i < JBUF_MAX_DEPTH + 2; i++)
        jbuf_arr_open(&b, NULL);
    assert_true(jbuf_failed(&b));
    jbuf_reset(&b);
    jbuf_obj_open(&b, NULL);
    jbuf_fixed(&b, "nan", 0.0 / 0.0, 2);
    jbuf_obj_close(&b);
    assert_string_equal(jbuf_cstr(&b), "{\"nan\":0.00}");
    jbuf_reset(&b);
    jbuf_obj_close(&b); /* unbalanced close */
    assert_true(jbuf_failed(&b));
    jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_ascii), cmocka_unit_test(test_escape_utf8),
        cmocka_unit_test(test_document),     cmocka_unit_test(test_keys),
        cmocka_unit_test(test_ceiling),      cmocka_unit_test(test_depth_and_nan),
    };
    return cmocka_run_group_tests_name("jbuf", tests, NULL, NULL);
}
