/*
 * test_ftp_expect.c - unit tests of sensor/ftp_expect.c (cmocka): announced FTP data
 * endpoints, claimed by one flow, named by the newest transfer command of their control
 * connection, forgotten when unused past the TTL, the oldest unclaimed giving way when the
 * table is full, and cleared at the end of an input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../sensor/ftp_expect.h"

static const uint8_t SRV[4] = {10, 1, 1, 21}, CLI[4] = {10, 1, 1, 10};
static const uint64_t T0 = 1700000000000000ull;

static void lookup(ftp_expect_table *t, const uint8_t *ip, uint16_t port, char *cmd, char *name)
{
    ftp_expect_lookup(t, 4, ip, port, cmd, name, 256);
}

static void test_announce_claim_name_release(void **state)
{
    (void)state;
    ftp_expect_table *t = ftp_expect_new();
    char cmd[5], name[256];

    assert_non_null(t);
    assert_true(ftp_expect_empty(t));
    assert_false(ftp_expect_claim(t, 4, SRV, 50001, T0));
    ftp_expect_add(t, 7, 4, SRV, 50001, T0);
    assert_false(ftp_expect_empty(t));
    /* another address, another port, another family: not it */
    assert_false(ftp_expect_claim(t, 4, CLI, 50001, T0));
    assert_false(ftp_expect_claim(t, 4, SRV, 50002, T0));
    assert_false(ftp_expect_claim(t, 6, SRV, 50001, T0));
    /* the data connection comes before its RETR (clients connect first) */
    assert_true(ftp_expect_claim(t, 4, SRV, 50001, T0 + 1000));
    assert_false(ftp_expect_claim(t, 4, SRV, 50001, T0 + 2000)); /* claimed once */
    lookup(t, SRV, 50001, cmd, name);
    assert_string_equal(cmd, "");
    assert_string_equal(name, "");
    ftp_expect_name(t, 8, "RETR", "other.txt", 9); /* another control connection */
    ftp_expect_name(t, 7, "RETR", "notes.txt", 9);
    ftp_expect_name(t, 7, "STOR", "late.bin", 8); /* already named: no endpoint left */
    lookup(t, SRV, 50001, cmd, name);
    assert_string_equal(cmd, "RETR");
    assert_string_equal(name, "notes.txt");
    ftp_expect_release(t, 4, SRV, 50001);
    assert_true(ftp_expect_empty(t));
    lookup(t, SRV, 50001, cmd, name);
    assert_string_equal(cmd, "");
    ftp_expect_free(t);
}

static void test_newest_is_named_and_ttl(void **state)
{
    (void)state;
    ftp_expect_table *t = ftp_expect_new();
    char cmd[5], name[256], longname[400];

    ftp_expect_add(t, 7, 4, SRV, 50001, T0);
    ftp_expect_add(t, 7, 4, CLI, 50003, T0 + 10); /* a PORT after a PASV */
    memset(longname, 'a', sizeof(longname));
    ftp_expect_name(t, 7, "STOR", longname, sizeof(longname));
    assert_true(ftp_expect_claim(t, 4, CLI, 50003, T0 + 20));
    lookup(t, CLI, 50003, cmd, name);
    assert_string_equal(cmd, "STOR");
    assert_int_equal(strlen(name), 255); /* cut to the name's room */
    /* the PASV endpoint was never used: gone once its TTL passed */
    assert_false(ftp_expect_claim(t, 4, SRV, 50001, T0 + FTP_EXPECT_TTL_US + 1));
    ftp_expect_add(t, 9, 4, SRV, 50009, T0 + FTP_EXPECT_TTL_US + 1); /* sweeps stale ones */
    assert_false(ftp_expect_claim(t, 4, SRV, 50001, T0));
    /* the claimed one stays past the TTL: a long transfer */
    lookup(t, CLI, 50003, cmd, name);
    assert_string_equal(cmd, "STOR");
    ftp_expect_clear(t);
    assert_true(ftp_expect_empty(t));
    ftp_expect_free(t);
}

static void test_full_table(void **state)
{
    (void)state;
    ftp_expect_table *t = ftp_expect_new();

    for (int i = 0; i < FTP_EXPECT_MAX + 10; i++)
        ftp_expect_add(t, 1, 4, SRV, (uint16_t)(20000 + i), T0 + (uint64_t)i);
    /* the oldest ten gave way */
    for (int i = 0; i < 10; i++)
        assert_false(ftp_expect_claim(t, 4, SRV, (uint16_t)(20000 + i), T0 + 1000));
    for (int i = 10; i < FTP_EXPECT_MAX + 10; i++)
        assert_true(ftp_expect_claim(t, 4, SRV, (uint16_t)(20000 + i), T0 + 1000));
    /* every entry claimed: a new announcement finds no room and is dropped */
    ftp_expect_add(t, 1, 4, CLI, 1234, T0 + 2000);
    assert_false(ftp_expect_claim(t, 4, CLI, 1234, T0 + 2000));
    ftp_expect_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announce_claim_name_release),
        cmocka_unit_test(test_newest_is_named_and_ttl),
        cmocka_unit_test(test_full_table),
    };
    return cmocka_run_group_tests_name("ftp_expect", tests, NULL, NULL);
}
