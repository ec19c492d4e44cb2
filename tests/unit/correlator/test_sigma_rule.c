/*
 * test_sigma_rule.c - the detection path end to end inside the process: a rule
 * file is loaded (sigma_load), events are decoded from JSON (event_json) and
 * matched (sigma_rule_match). Covers logsource filtering, maps, lists of maps,
 * keywords, |all, null, list-valued fields, numbers and several conditions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../correlator/event_json.h"
#include "../../../correlator/sigma.h"

static const char *RULES = "title: Plaintext administration\n"
                           "name: plaintext_admin\n"
                           "logsource: {product: fenghuo, category: flow}\n"
                           "detection:\n"
                           "  proto_sel:\n"
                           "    - app_proto: [telnet, ftp, rlogin, vnc]\n"
                           "    - ndpi.risks: Clear-Text Credentials\n"
                           "  mgmt:\n"
                           "    src_ip|cidr: 10.99.0.0/24\n"
                           "  condition: proto_sel and not mgmt\n"
                           "level: high\n"
                           "tags: [gbt22239.8.1.4.1.c, gbt20986.hidden_danger.config_defect]\n"
                           "---\n"
                           "title: Big upload to a risky port\n"
                           "name: big_upload\n"
                           "logsource: {product: fenghuo, category: flow}\n"
                           "detection:\n"
                           "  sel:\n"
                           "    flow.bytes_toserver|gt: 1000000\n"
                           "    dest_port: [4444, '8443']\n"
                           "  condition: sel\n"
                           "---\n"
                           "title: Keyword and all\n"
                           "name: kw\n"
                           "logsource: {product: fenghuo, category: http}\n"
                           "detection:\n"
                           "  words:\n"
                           "    - 'union select'\n"
                           "  both:\n"
                           "    http.url|contains|all: ['/admin', 'id=']\n"
                           "  nohost:\n"
                           "    http.hostname: null\n"
                           "  condition:\n"
                           "    - words\n"
                           "    - both and nohost\n"
                           "---\n"
                           "title: Invoice lure\n"
                           "name: invoice_lure\n"
                           "logsource: {product: fenghuo, category: email}\n"
                           "detection:\n"
                           "  sel:\n"
                           "    email.subject|contains: '发票'\n"
                           "    email.attachment|endswith: ['.exe', '.js']\n"
                           "  condition: sel\n"
                           "---\n"
                           "title: Zeek SMTP sender\n"
                           "name: zeek_smtp\n"
                           "logsource: {product: zeek, service: smtp}\n"
                           "detection:\n"
                           "  sel:\n"
                           "    smtp.mail_from|endswith: '@example.net'\n"
                           "  condition: sel\n";

static field_table ft;
static ruleset rs;
static event_decoder *dec;

static int setup(void **state)
{
    char path[64], err[512];
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "/tmp/fh-test-rules-%d.yml", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(RULES, f);
    fclose(f);
    field_table_init(&ft);
    assert_int_equal(sigma_load(&rs, path, &ft, err, sizeof(err)), FH_OK);
    unlink(path);
    if (rs.nerrors)
        fail_msg("%s:%u: %s", rs.errors[0].file, rs.errors[0].line, rs.errors[0].reason);
    assert_int_equal(rs.nrules, 5);
    assert_int_equal(event_decoder_new(&dec, &ft), FH_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    event_decoder_free(dec);
    ruleset_free(&rs);
    field_table_free(&ft);
    return 0;
}

static bool match(int rule, const char *json)
{
    event_view ev;
    char err[256];

    if (event_decode(dec, json, strlen(json), &ev, err, sizeof(err)) != FH_OK)
        fail_msg("decode: %s", err);
    return sigma_rule_match(&rs.rules[rule], &ev);
}

static void test_metadata(void **state)
{
    (void)state;
    assert_string_equal(rs.rules[0].title, "Plaintext administration");
    assert_string_equal(rs.rules[0].name, "plaintext_admin");
    assert_int_equal(rs.rules[0].lvl, LEVEL_HIGH);
    assert_int_equal(rs.rules[0].ntags, 2);
    assert_string_equal(rs.rules[0].event_type, "flow");
    assert_int_equal(rs.rules[0].line, 1);
    assert_int_equal(rs.rules[1].line, 14);
}

static void test_lists_of_maps_and_not(void **state)
{
    (void)state;
    assert_true(
        match(0, "{\"event_type\":\"flow\",\"app_proto\":\"telnet\",\"src_ip\":\"10.1.1.1\"}"));
    assert_true(
        match(0, "{\"event_type\":\"flow\",\"app_proto\":\"TELNET\",\"src_ip\":\"10.1.1.1\"}"));
    /* from the management network: filtered */
    assert_false(
        match(0, "{\"event_type\":\"flow\",\"app_proto\":\"telnet\",\"src_ip\":\"10.99.0.5\"}"));
    /* second map of the list: a risk in a list-valued field */
    assert_true(match(0, "{\"event_type\":\"flow\",\"app_proto\":\"http\",\"src_ip\":\"10.1.1.1\","
                         "\"ndpi\":{\"risks\":[\"Known Protocol on Non Standard Port\","
                         "\"Clear-Text Credentials\"]}}"));
    assert_false(match(0, "{\"event_type\":\"flow\",\"app_proto\":\"http\",\"src_ip\":\"10.1.1.1\","
                          "\"ndpi\":{\"risks\":[]}}"));
    /* logsource: only flow events */
    assert_false(
        match(0, "{\"event_type\":\"dns\",\"app_proto\":\"telnet\",\"src_ip\":\"10.1.1.1\"}"));
}

/* smtp events: logsource category email and zeek/smtp select them; UTF-8 in a subject,
 * a list of attachment names */
static void test_smtp_events(void **state)
{
    (void)state;
    assert_string_equal(rs.rules[3].event_type, "smtp");
    assert_string_equal(rs.rules[4].event_type, "smtp");
    assert_true(match(3, "{\"event_type\":\"smtp\",\"email\":{\"subject\":\"增值税发票 No.8\","
                         "\"attachment\":[\"readme.txt\",\"发票.js\"]}}"));
    assert_false(match(3, "{\"event_type\":\"smtp\",\"email\":{\"subject\":\"增值税发票\","
                          "\"attachment\":[\"发票.pdf\"]}}"));
    assert_false(match(3, "{\"event_type\":\"fileinfo\",\"email\":{\"subject\":\"发票\","
                          "\"attachment\":[\"a.exe\"]}}"));
    assert_true(match(4, "{\"event_type\":\"smtp\",\"smtp\":{\"mail_from\":\"x@example.net\"}}"));
    assert_false(match(4, "{\"event_type\":\"smtp\",\"smtp\":{\"mail_from\":\"x@example.cn\"}}"));
}

static void test_numbers(void **state)
{
    (void)state;
    assert_true(match(1, "{\"event_type\":\"flow\",\"dest_port\":4444,"
                         "\"flow\":{\"bytes_toserver\":2000000}}"));
    assert_true(match(1, "{\"event_type\":\"flow\",\"dest_port\":8443,"
                         "\"flow\":{\"bytes_toserver\":1000001}}"));
    assert_false(match(1, "{\"event_type\":\"flow\",\"dest_port\":4444,"
                          "\"flow\":{\"bytes_toserver\":1000000}}"));
    assert_false(match(1, "{\"event_type\":\"flow\",\"dest_port\":443,"
                          "\"flow\":{\"bytes_toserver\":9000000}}"));
    assert_false(match(1, "{\"event_type\":\"flow\",\"dest_port\":4444}"));
}

static void test_keywords_all_null_and_condition_list(void **state)
{
    (void)state;
    /* keyword anywhere in the event text, case-insensitive */
    assert_true(match(2, "{\"event_type\":\"http\",\"http\":{\"url\":\"/q?x=1 UNION SELECT pw\","
                         "\"hostname\":\"a\"}}"));
    /* |all: both substrings; null: hostname absent */
    assert_true(match(2, "{\"event_type\":\"http\",\"http\":{\"url\":\"/admin/x?id=5\"}}"));
    assert_false(match(2, "{\"event_type\":\"http\",\"http\":{\"url\":\"/admin/x\"}}"));
    assert_false(match(2, "{\"event_type\":\"http\",\"http\":{\"url\":\"/admin/x?id=5\","
                          "\"hostname\":\"h\"}}"));
    assert_true(match(2, "{\"event_type\":\"http\",\"http\":{\"url\":\"/admin/x?id=5\","
                         "\"hostname\":null}}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_lists_of_maps_and_not),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_smtp_events),
        cmocka_unit_test(test_keywords_all_null_and_condition_list),
    };
    return cmocka_run_group_tests_name("sigma_rule", tests, setup, teardown);
}
