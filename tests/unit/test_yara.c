/*
 * test_yara.c - unit tests of sensor/yara_scan.c (cmocka).
 *
 * Three parts:
 *  - the rules shipped in rules/yara (path relative to the repo root, where
 *    `make test-unit` runs; $FH_YARA_RULES overrides): EICAR inside a buffer,
 *    one sample per web shell rule, clean data;
 *  - the module's contracts with rules written to a temporary directory:
 *    compile errors with FILE:LINE for every broken file, warnings as errors,
 *    the old set still scanning after a failed reload, JSON escaping of
 *    metadata and matched bytes, bounded string matches, stopping a scan, and
 *    threads scanning while the set in service is swapped;
 *  - the third-party rules in $FH_SHARED/yara (default ../shared/data): every
 *    file loaded on its own (counts of rules loaded and files refused), then
 *    index.yar against samples/eicar.com as in expected/yara/. Skipped with a
 *    message when the shared data is absent.
 *
 * The EICAR string is assembled at run time from two halves, so this file
 * itself is not flagged by anti-virus scanners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../sensor/yara_scan.h"

#define PATH_LEN 1024
#define MAX_SEEN 16

/* ---- helpers ------------------------------------------------------------ */

static const char eicar_a[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-";
static const char eicar_b[] = "STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static size_t make_eicar(char *dst, size_t cap)
{
    int n = snprintf(dst, cap, "%s%s", eicar_a, eicar_b);
    assert_true(n == 68 && (size_t)n < cap);
    return (size_t)n;
}

static const char *rules_dir(void)
{
    const char *env = getenv("FH_YARA_RULES");
    return env && *env ? env : "rules/yara";
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* $FH_SHARED (default ../shared/data) if it has yara/, or NULL (skip). */
static const char *shared_dir(void)
{
    static char probe[PATH_LEN];
    const char *env = getenv("FH_SHARED");
    const char *dir = env && *env ? env : "../shared/data";

    snprintf(probe, sizeof(probe), "%s/yara", dir);
    if (is_dir(probe))
        return dir;
    print_message("SKIP: shared YARA rules not found at %s (set FH_SHARED to the "
                  "shared/data directory)\n",
                  probe);
    return NULL;
}

static void join(char *dst, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path too long: %s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("fopen(%s): %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* A fresh temporary directory (removed with rm_tmpdir). */
static void make_tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/fh-yara-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp: %s", strerror(errno));
}

static void rm_tmpdir(const char *dir, const char *const *names)
{
    char path[PATH_LEN];
    for (size_t i = 0; names[i]; i++) {
        join(path, sizeof(path), dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static yara_rules *load_ok(const char *path)
{
    char err[4096];
    yara_rules *r = NULL;
    fh_err rc = yara_rules_load(path, &r, err, sizeof(err));
    if (rc != FH_OK)
        fail_msg("yara_rules_load(%s): %s: %s", path, fh_strerror(rc), err);
    assert_non_null(r);
    return r;
}

/* What a scan reported: copies, since a yara_match lives only in the callback. */
typedef struct {
    int n;
    char rule[MAX_SEEN][128];
    char json[MAX_SEEN][2048];
    yara_match first;
    int stop_after; /* stop the scan after this many matches (0: never) */
} seen_t;

static int collect(const yara_match *m, void *arg)
{
    seen_t *s = arg;
    jbuf b;

    if (s->n == 0)
        s->first = *m; /* pointers into the rules: valid while they are */
    if (s->n < MAX_SEEN) {
        snprintf(s->rule[s->n], sizeof(s->rule[0]), "%s", m->rule);
        assert_true(jbuf_init(&b, 256, sizeof(s->json[0]) - 1));
        jbuf_obj_open(&b, NULL);
        yara_match_to_json(&b, m, YARA_DIR_TO_SERVER, 0);
        jbuf_obj_close(&b);
        assert_false(jbuf_failed(&b));
        snprintf(s->json[s->n], sizeof(s->json[0]), "%s", jbuf_cstr(&b));
        jbuf_free(&b);
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static int scan(yara_scanner *sc, const void *data, size_t len, seen_t *seen)
{
    int stop_after = seen->stop_after;
    memset(seen, 0, sizeof(*seen));
    seen->stop_after = stop_after;
    return yara_scan(sc, data, len, collect, seen);
}

static bool seen_rule(const seen_t *s, const char *rule)
{
    for (int i = 0; i < s->n && i < MAX_SEEN; i++)
        if (strcmp(s->rule[i], rule) == 0)
            return true;
    return false;
}

static const yara_meta *find_meta(const yara_match *m, const char *key)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return &m->meta[i];
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    return yara_scan_init() == FH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    yara_scan_fini();
    return 0;
}

/* ---- shipped rules --------------------------------------------------------- */

static void test_load_shipped(void **state)
{
    (void)state;
    yara_rules *r = load_ok(rules_dir());
    assert_int_equal(yara_rules_files(r), 6);
    assert_int_equal(yara_rules_count(r), 14);
    print_message("  %s: %u rules in %u files\n", rules_dir(), yara_rules_count(r),
                  yara_rules_files(r));
    yara_rules_unref(r);
}

static void test_eicar_in_buffer(void **state)
{
    (void)state;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 68\r\n\r\n";
    char eicar[80], buf[512];
    size_t n = make_eicar(eicar, sizeof(eicar));
    size_t off = sizeof(head) - 1;
    yara_rules *r = load_ok(rules_dir());
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};

    assert_non_null(sc);
    yara_rules_unref(r); /* the scanner keeps its own reference */
    memcpy(buf, head, off);
    memcpy(buf + off, eicar, n);
    memcpy(buf + off + n, "\r\ntrailer", 9);
    assert_int_equal(scan(sc, buf, off + n + 9, &seen), 1);
    assert_int_equal(seen.n, 1);

    const yara_match *m = &seen.first;
    assert_string_equal(m->rule, "Fenghuo_EICAR_Test_File");
    assert_string_equal(m->ns, "eicar");
    assert_int_equal(m->n_tags, 2);
    assert_string_equal(m->tags[0], "eicar");
    assert_string_equal(m->tags[1], "test");
    const yara_meta *cat = find_meta(m, "category");
    assert_non_null(cat);
    assert_int_equal(cat->type, YARA_META_STRING);
    assert_string_equal(cat->s, "malware.virus");
    assert_string_equal(find_meta(m, "severity")->s, "low");
    assert_string_equal(find_meta(m, "author")->s, "Fenghuo");
    assert_int_equal(find_meta(m, "version")->type, YARA_META_INT);
    assert_int_equal(find_meta(m, "version")->i, 1);
    assert_int_equal(m->n_strings, 1);
    assert_int_equal(m->strings_total, 1);
    assert_string_equal(m->strings[0].id, "$eicar");
    assert_int_equal(m->strings[0].offset, off);
    assert_int_equal(m->strings[0].length, 68);

    /* the event's yara object; no excerpt of the payload by default */
    assert_string_equal(seen.json[0],
                        "{\"yara\":{\"rule\":\"Fenghuo_EICAR_Test_File\",\"namespace\":\"eicar\","
                        "\"tags\":[\"eicar\",\"test\"],\"meta\":{\"description\":\"EICAR "
                        "anti-virus test string (harmless test file)\",\"author\":\"Fenghuo\","
                        "\"severity\":\"low\",\"category\":\"malware.virus\",\"version\":1},"
                        "\"strings\":[{\"id\":\"$eicar\",\"offset\":39,\"length\":68}],"
                        "\"direction\":\"to_server\"}}");
    assert_null(strstr(seen.json[0], eicar_b));

    /* the same scanner again: state does not leak between scans */
    assert_int_equal(scan(sc, eicar, n, &seen), 1);
    assert_int_equal(seen.first.strings[0].offset, 0);
    yara_scanner_free(sc);
}

static void test_webshell_samples(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        const char *data;
    } cases[] = {
        {"Fenghuo_Webshell_PHP_Eval_Encoded",
         "POST /upload.php HTTP/1.1\r\nContent-Type: multipart/form-data\r\n\r\n"
         "<?php $x='aWQ='; eval(base64_decode($x)); ?>"},
        {"Fenghuo_Webshell_PHP_Eval_Encoded", "<?php\n@eval (gzinflate(base64_decode('8y8o')));\n"},
        {"Fenghuo_Webshell_PHP_Request_Exec", "<?php echo '<pre>'; system($_GET['cmd']); ?>"},
        {"Fenghuo_Webshell_PHP_Request_Exec", "<?php array_map('assert', (array)$_REQUEST['x']);"},
        {"Fenghuo_Webshell_China_Chopper", "<?php @eval($_POST['caidao']);?>"},
        {"Fenghuo_Webshell_China_Chopper", "<%eval request(\"pass\")%>"},
        {"Fenghuo_Webshell_China_Chopper",
         "<%@ Page Language=\"Jscript\"%><%eval(Request.Item[\"z\"],\"unsafe\");%>"},
        {"Fenghuo_Webshell_China_Chopper",
         "POST /a.php HTTP/1.1\r\n\r\ncaidao=@eval(base64_decode($_POST[z0]));&z0=QGluaV9zZXQ%3D"},
        {"Fenghuo_Webshell_JSP_Cmd",
         "<%@ page import=\"java.io.*\" %><% Process p = Runtime.getRuntime().exec("
         "request.getParameter(\"cmd\")); %>"},
    };
    yara_rules *r = load_ok(rules_dir());
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = scan(sc, cases[i].data, strlen(cases[i].data), &seen);
        if (rc < 1 || !seen_rule(&seen, cases[i].rule))
            fail_msg("case %zu: %s not matched (rc %d, %d matches)", i, cases[i].rule, rc, seen.n);
        for (int j = 0; j < seen.n; j++) {
            assert_non_null(strstr(seen.json[j], "\"category\":\"webshell\""));
            assert_non_null(strstr(seen.json[j], "\"severity\":\"high\""));
        }
    }
    yara_scanner_free(sc);
    yara_rules_unref(r);
}

/* The rules written from the public corpus (c2_beacons.yar, exploitation.yar): each on a
 * sample shaped like the capture it came from, with its category. */
static void test_corpus_rule_samples(void **state)
{
    (void)state;
    static const struct {
        const char *rule, *category, *data;
    } cases[] = {
        {"Fenghuo_C2_CryptoWall4_Checkin", "malware.ransomware",
         "POST /76N1Lm.php?n=x4tk7t4jo6 HTTP/1.1\r\nAccept: */*\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 131\r\n"
         "Host: homealldaylong.com\r\n\r\n"
         "o=6b787638683333616b6431660f05f2393c1a354ad6e57d984568037ecebfe360e70ca9e211cdc0f5cf1b065"
         "484cf67e605493877069bbcc6b7eae868198581"},
        {"Fenghuo_C2_Emotet_Epoch_HTTP", "malware.trojan",
         "POST /OK21pqJAtyyGBEo00sk HTTP/1.1\r\nReferer: "
         "http://82.118.225.196/OK21pqJAtyyGBEo00sk\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nDNT: 1\r\n"
         "User-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0)\r\n"
         "\r\nOK21pqJAtyyGBEo00sk=U6yKuycpyrtWSffsIT9g"},
        {"Fenghuo_C2_LocalNRD_Checkin", "malware.trojan",
         "GET /a/Drk.syn?adcontext=ROUTINE_CHECKIN&contextpeak=0&contextcount=0 HTTP/1.1\r\n\r\n"},
        {"Fenghuo_Shell_Windows_Cmd_Banner", "backdoor.shell",
         "Microsoft Windows XP [Version 5.1.2600]\r\n(C) Copyright 1985-2001 Microsoft Corp.\r\n"
         "\r\nC:\\Documents and Settings\\Administrator\\Desktop>"},
        {"Fenghuo_Shell_Windows_Cmd_Banner", "backdoor.shell",
         "Microsoft Windows [Version 10.0.19045.3803]\r\n(c) Microsoft Corporation. All rights "
         "reserved.\r\n\r\nC:\\Users\\bob>"},
        {"Fenghuo_Shell_Unix_Root_Id", "exploit.command_output",
         "HTTP/1.1 200 OK\r\n\r\nuid=0(root) gid=0(root) groups=0(root)\n"},
        {"Fenghuo_JS_Obfuscated_Eval_Replace", "exploit.script",
         "<script>var a='...';window[\"eVaL\".replace(/[A-Z]/g,\"\")](a);</script>"},
        /* mimikatz 2.1.1's strings as its binary holds them (its ASCII ones) */
        {"Fenghuo_HackTool_Mimikatz", "hacktool.credential_theft",
         "MZ..ERROR kuhl_m_lsadump_sam ; CreateFile (SAM hive)..ERROR kuhl_m_kerberos_ptt_file "
         "; LsaCallKerberosPackage"},
        {"Fenghuo_HackTool_Mimikatz", "hacktool.credential_theft",
         "  .#####.   mimikatz 2.1.1 (x64)\n ## \\ / ##   Benjamin DELPY `gentilkiwi` "
         "( benjamin@gentilkiwi.com ).. ERROR kull_m_file_readData"},
    };
    static const char *const clean[] = {
        /* an ordinary form POST and an ordinary .php check */
        "POST /login.php HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
        "user=alice&pass=secret",
        "POST /api/v1/items HTTP/1.1\r\nReferer: https://shop.example.com/cart\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nDNT: 1\r\n\r\nq=1",
        /* the banner alone (documentation), the prompt alone, an unprivileged id */
        "Microsoft Windows [Version 10.0.19045] is the release we support.",
        "uid=1000(alice) gid=1000(alice) groups=1000(alice),27(sudo)",
        "<script>window['onload'] = init; s.replace(/[a-z]/g, '');</script>",
        /* an article naming the tool and its author, without the tool's code */
        "Mimikatz, by Benjamin Delpy (gentilkiwi), dumps credentials with sekurlsa::",
    };
    yara_rules *r = load_ok(rules_dir());
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};
    char want[96];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = scan(sc, cases[i].data, strlen(cases[i].data), &seen);
        if (rc < 1 || !seen_rule(&seen, cases[i].rule))
            fail_msg("case %zu: %s not matched (rc %d, %d matches)", i, cases[i].rule, rc, seen.n);
        snprintf(want, sizeof(want), "\"category\":\"%s\"", cases[i].category);
        assert_int_equal(seen.n, 1);
        assert_non_null(strstr(seen.json[0], want));
    }
    for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
        if (scan(sc, clean[i], strlen(clean[i]), &seen) != 0)
            fail_msg("clean case %zu matched %s", i, seen.json[0]);
    }
    yara_scanner_free(sc);
    yara_rules_unref(r);
}

static void test_clean_data(void **state)
{
    (void)state;
    static const char *const clean[] = {
        "GET /index.php?id=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "<?php echo htmlspecialchars($_GET['q']); $v = base64_decode($s); ?>",
        "<% String name = request.getParameter(\"name\"); out.println(name); %>",
        "evaluate(base64 text) without the code around it",
        "",
    };
    yara_rules *r = load_ok(rules_dir());
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};
    uint8_t rnd[65536];
    uint32_t x = 2463534242u;

    for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
        assert_int_equal(scan(sc, clean[i], strlen(clean[i]), &seen), 0);
        assert_int_equal(seen.n, 0);
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        rnd[i] = (uint8_t)x;
    }
    assert_int_equal(scan(sc, rnd, sizeof(rnd), &seen), 0);
    assert_int_equal(yara_scan(sc, NULL, 0, collect, &seen), 0);
    assert_int_equal(yara_scan(sc, NULL, 5, collect, &seen), FH_ERR_ARG);
    yara_scanner_set_timeout(sc, 0);
    assert_int_equal(scan(sc, rnd, sizeof(rnd), &seen), 0);
    yara_scanner_free(sc);
    yara_rules_unref(r);
}

/* ---- contracts -------------------------------------------------------------- */

static void test_broken_rules_keep_old_set(void **state)
{
    (void)state;
    static const char *const names[] = {"a_good.yar", "b_broken.yar", "c_broken.yara",
                                        "d_notes.txt", NULL};
    char dir[PATH_LEN], path[PATH_LEN], err[4096], eicar[80];
    size_t n = make_eicar(eicar, sizeof(eicar));
    yara_rules *old = load_ok(rules_dir());
    yara_rules *r = old;
    seen_t seen = {0};

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "a_good.yar");
    write_file(path, "rule good { strings: $a = \"fenghuo-good\" condition: $a }\n");
    join(path, sizeof(path), dir, "b_broken.yar");
    write_file(path, "rule broken\n{\n    strings:\n        $a = \"xyz1\"\n"
                     "    condition:\n        $a and and\n}\n");
    join(path, sizeof(path), dir, "c_broken.yara");
    write_file(path, "rule other {\n  condition:\n    $nope }\n");
    join(path, sizeof(path), dir, "d_notes.txt");
    write_file(path, "not a rule file: ignored\n");

    fh_err rc = yara_rules_load(dir, &r, err, sizeof(err));
    print_message("  errors reported:\n%s\n", err);
    assert_int_equal(rc, FH_ERR_PARSE);
    assert_ptr_equal(r, old);
    /* every broken file, with its line */
    assert_non_null(strstr(err, "b_broken.yar:6: "));
    assert_non_null(strstr(err, "c_broken.yara:3: "));
    assert_null(strstr(err, "a_good.yar"));

    /* the old set still scans */
    yara_scanner *sc = yara_scanner_new(r);
    assert_int_equal(scan(sc, eicar, n, &seen), 1);
    assert_string_equal(seen.first.rule, "Fenghuo_EICAR_Test_File");
    yara_scanner_free(sc);

    /* a bounded error buffer is cut, never overrun */
    char small[24];
    assert_int_equal(yara_rules_load(dir, &r, small, sizeof(small)), FH_ERR_PARSE);
    assert_int_equal(strlen(small), sizeof(small) - 1);

    /* fixing the files makes the reload succeed */
    join(path, sizeof(path), dir, "b_broken.yar");
    unlink(path);
    join(path, sizeof(path), dir, "c_broken.yara");
    unlink(path);
    yara_rules *fresh = load_ok(dir);
    assert_int_equal(yara_rules_files(fresh), 1);
    assert_int_equal(yara_rules_count(fresh), 1);
    yara_rules_unref(fresh);

    /* a single file by name, and a missing path */
    join(path, sizeof(path), dir, "a_good.yar");
    fresh = load_ok(path);
    yara_rules_unref(fresh);
    assert_int_equal(yara_rules_load("/nonexistent-fenghuo/rules", &r, err, sizeof(err)),
                     FH_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/nonexistent-fenghuo/rules"));
    assert_ptr_equal(r, old);

    rm_tmpdir(dir, names);
    yara_rules_unref(old);
}

static void test_warnings_are_errors(void **state)
{
    (void)state;
    static const char *const names[] = {"slow.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN], err[1024];
    yara_rules *r = NULL;

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "slow.yar");
    write_file(path,
               "rule slow\n{\n  strings:\n    $a = { 01 ?? ?? 02 }\n  condition:\n    $a\n}\n");
    assert_int_equal(yara_rules_load(dir, &r, err, sizeof(err)), FH_ERR_PARSE);
    assert_null(r);
    assert_non_null(strstr(err, "slow.yar:4: warning: "));
    assert_int_equal(yara_rules_load_flags(dir, YARA_LOAD_ALLOW_WARNINGS, &r, err, sizeof(err)),
                     FH_OK);
    assert_non_null(r);
    assert_non_null(strstr(err, "slow.yar:4: warning: ")); /* still reported */
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

/* JSON of the first match in three variants, made inside the callback. */
typedef struct {
    char full[2048]; /* to_client, 64-byte excerpts */
    char cut[2048];  /* no direction, 3-byte excerpts */
    char none[2048]; /* to_server, no excerpt */
    bool small_failed;
} esc_out;

static void json_into(char *dst, size_t cap, const yara_match *m, yara_direction dir, size_t ex)
{
    jbuf b;
    assert_true(jbuf_init(&b, 64, 1 << 16));
    yara_match_to_json(&b, m, dir, ex);
    assert_false(jbuf_failed(&b));
    snprintf(dst, cap, "%s", jbuf_cstr(&b));
    jbuf_free(&b);
}

static int esc_json(const yara_match *m, void *arg)
{
    esc_out *o = arg;
    jbuf small;

    json_into(o->full, sizeof(o->full), m, YARA_DIR_TO_CLIENT, 64);
    json_into(o->cut, sizeof(o->cut), m, YARA_DIR_NONE, 3);
    json_into(o->none, sizeof(o->none), m, YARA_DIR_TO_SERVER, 0);
    assert_true(jbuf_init(&small, 16, 64));
    yara_match_to_json(&small, m, YARA_DIR_TO_SERVER, 0);
    o->small_failed = jbuf_failed(&small);
    jbuf_free(&small);
    return 0;
}

static void test_json_escaping(void **state)
{
    (void)state;
    static const char *const names[] = {"esc.yar", NULL};
    /* metadata with a quote, backslash, newline, tab, invalid UTF-8, valid
     * UTF-8 and U+2028; a repeated key; negative integer; booleans */
    static const char rule[] =
        "rule Esc : t1 t2\n"
        "{\n"
        "  meta:\n"
        "    description = \"say \\\"hi\\\" \\\\ line1\\nline2\\tend \\xff\\xfe \\xe7\\x83\\xbd "
        "\\xe2\\x80\\xa8\"\n"
        "    description = \"second value of the same key\"\n"
        "    score = -42\n"
        "    active = true\n"
        "    retired = false\n"
        "  strings:\n"
        "    $m = { 4D 41 52 4B }\n"
        "    $q = \"\\\"</script>\"\n"
        "    $x = { 01 FF 0A }\n"
        "  condition:\n"
        "    $m and $q and $x\n"
        "}\n";
    static const uint8_t data[] = "xx\"</script>\x01\xff\n MARK";
    char dir[PATH_LEN], path[PATH_LEN];

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "esc.yar");
    write_file(path, rule);
    yara_rules *r = load_ok(path);
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};
    assert_int_equal(scan(sc, data, sizeof(data) - 1, &seen), 1);
    const yara_match *m = &seen.first;
    assert_int_equal(find_meta(m, "score")->i, -42);
    assert_int_equal(find_meta(m, "active")->type, YARA_META_BOOL);

    /* matched bytes live only during the callback: the JSON is made there */
    esc_out out = {0};
    assert_int_equal(yara_scan(sc, data, sizeof(data) - 1, esc_json, &out), 1);
    print_message("  %s\n", out.full);
    assert_string_equal(out.full,
                        "\"yara\":{\"rule\":\"Esc\",\"namespace\":\"esc\",\"tags\":[\"t1\","
                        "\"t2\"],\"meta\":{\"description\":\"say \\\"hi\\\" \\\\ "
                        "line1\\nline2\\tend \\ufffd\\ufffd \xe7\x83\xbd \\u2028\","
                        "\"score\":-42,\"active\":true,\"retired\":false},"
                        "\"strings\":[{\"id\":\"$m\",\"offset\":16,\"length\":4,"
                        "\"data\":\"MARK\"},{\"id\":\"$q\",\"offset\":2,\"length\":10,"
                        "\"data\":\"\\\"</script>\"},{\"id\":\"$x\",\"offset\":12,"
                        "\"length\":3,\"data\":\"\\u0001\\ufffd\\n\"}],"
                        "\"direction\":\"to_client\"}");
    /* no raw control character or invalid byte ever reaches the output */
    for (const unsigned char *p = (const unsigned char *)out.full; *p; p++)
        assert_true(*p >= 0x20 && *p != 0xff && *p != 0xfe);
    /* an excerpt is cut at excerpt_len; no direction when none is given */
    assert_non_null(strstr(out.cut, "\"data\":\"MAR\"}"));
    assert_non_null(strstr(out.cut, "\"data\":\"\\\"</\"}"));
    assert_null(strstr(out.cut, "direction"));
    /* without an excerpt, no matched byte at all */
    assert_null(strstr(out.none, "\"data\""));
    assert_null(strstr(out.none, "MARK"));
    /* a ceiling too small fails cleanly */
    assert_true(out.small_failed);

    yara_scanner_free(sc);
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

static void test_string_matches_bounded(void **state)
{
    (void)state;
    static const char *const names[] = {"many.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    char data[1000];

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "many.yar");
    write_file(path, "rule many_a { strings: $a = \"ABCDE\" condition: #a > 10 }\n"
                     "rule many_b { strings: $b = \"BCDEA\" condition: $b }\n"
                     "private rule hidden { strings: $c = \"CDEAB\" condition: $c }\n"
                     "rule uses_hidden { condition: hidden }\n");
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = "ABCDE"[i % 5];
    yara_rules *r = load_ok(path);
    assert_int_equal(yara_rules_count(r), 3); /* the private rule is not counted */
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};
    assert_int_equal(scan(sc, data, sizeof(data), &seen), 3);
    assert_false(seen_rule(&seen, "hidden"));
    assert_string_equal(seen.first.rule, "many_a");
    assert_int_equal(seen.first.n_strings, YARA_MAX_STRINGS);
    assert_int_equal(seen.first.strings_total, 200);
    assert_int_equal(seen.first.strings[15].offset, 75);
    assert_non_null(strstr(seen.json[0], "\"strings_total\":200"));

    /* the callback stops the scan */
    seen.stop_after = 1;
    assert_int_equal(scan(sc, data, sizeof(data), &seen), 1);
    assert_int_equal(seen.n, 1);
    yara_scanner_free(sc);
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

/* Workers scan while the main thread reloads and swaps the set in service. */
typedef struct {
    yara_rules_slot *slot;
    _Atomic int *done;
    int scans;
    int swaps;
    int bad;
} worker_t;

static int count_only(const yara_match *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
    return 0;
}

static void *worker_main(void *p)
{
    worker_t *w = p;
    char eicar[80];
    size_t n = make_eicar(eicar, sizeof(eicar));
    uint64_t gen = yara_rules_slot_generation(w->slot);
    yara_rules *r = yara_rules_slot_get(w->slot);
    yara_scanner *sc = yara_scanner_new(r);

    yara_rules_unref(r);
    while (!atomic_load(w->done) || w->scans < 50) {
        uint64_t now = yara_rules_slot_generation(w->slot);
        if (now != gen) {
            gen = now;
            r = yara_rules_slot_get(w->slot);
            yara_scanner *fresh = yara_scanner_new(r);
            yara_rules_unref(r);
            if (fresh) {
                yara_scanner_free(sc);
                sc = fresh;
                w->swaps++;
            }
        }
        int hits = 0;
        if (yara_scan(sc, eicar, n, count_only, &hits) != 1 || hits != 1)
            w->bad++;
        w->scans++;
    }
    yara_scanner_free(sc);
    return NULL;
}

static void test_swap_while_scanning(void **state)
{
    (void)state;
    enum { NTHREADS = 4, RELOADS = 8 };
    pthread_t th[NTHREADS];
    worker_t w[NTHREADS];
    _Atomic int done = 0;
    yara_rules_slot *slot = yara_rules_slot_new();
    char err[1024];

    assert_non_null(slot);
    yara_rules_slot_set(slot, load_ok(rules_dir()));
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){.slot = slot, .done = &done};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < RELOADS; i++) {
        yara_rules *r = NULL;
        /* a failed reload leaves the slot alone */
        assert_int_equal(yara_rules_load("/nonexistent-fenghuo", &r, err, sizeof(err)),
                         FH_ERR_NOTFOUND);
        yara_rules_slot_set(slot, load_ok(rules_dir()));
        usleep(2000);
    }
    atomic_store(&done, 1);
    int scans = 0, swaps = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
        scans += w[i].scans;
        swaps += w[i].swaps;
    }
    assert_int_equal(yara_rules_slot_generation(slot), RELOADS + 1);
    print_message("  %d threads: %d scans, %d scanner swaps over %d reloads\n", NTHREADS, scans,
                  swaps, RELOADS);
    yara_rules_slot_free(slot);
}

/* ---- shared third-party rules --------------------------------------------------- */

static void test_shared_rules(void **state)
{
    (void)state;
    const char *shared = shared_dir();
    char list[PATH_LEN], err[8192];
    if (!shared)
        skip();

    /* every rule file on its own, as an administrator would drop it in */
    snprintf(list, sizeof(list), "find '%s/yara' -name '*.yar' -o -name '*.yara' | sort", shared);
    FILE *p = popen(list, "r");
    assert_non_null(p);
    char line[PATH_LEN];
    int files = 0, loaded = 0, refused = 0;
    unsigned rules = 0;
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        if (strstr(line, "/index.yar"))
            continue; /* includes all the others */
        yara_rules *r = NULL;
        files++;
        if (yara_rules_load(line, &r, err, sizeof(err)) == FH_OK) {
            loaded++;
            rules += yara_rules_count(r);
            yara_rules_unref(r);
        } else {
            refused++;
            print_message("  refused %s:\n%s\n", line, err);
        }
    }
    pclose(p);
    print_message("  %s/yara: %d rule files, %d loaded (%u rules), %d refused\n", shared, files,
                  loaded, rules, refused);
    assert_true(files > 0);
    assert_int_equal(loaded + refused, files);

    /* index.yar against the EICAR sample: the matches of expected/yara/ */
    char path[PATH_LEN], sample[PATH_LEN];
    join(path, sizeof(path), shared, "yara/index.yar");
    join(sample, sizeof(sample), shared, "yara/samples/eicar.com");
    yara_rules *r = load_ok(path);
    print_message("  index.yar: %u rules\n", yara_rules_count(r));
    /* Mimikatz_Strings names pe.imphash(): the one rule that runs on PE data only */
    assert_int_equal(yara_rules_format_only(r), 1);
    FILE *f = fopen(sample, "rb");
    assert_non_null(f);
    char buf[256];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    yara_scanner *sc = yara_scanner_new(r);
    seen_t seen = {0};
    assert_int_equal(scan(sc, buf, n, &seen), 2);
    assert_true(seen_rule(&seen, "SUSP_Just_EICAR"));
    assert_true(seen_rule(&seen, "eicar"));
    assert_int_equal(seen.first.strings[0].offset, 0);
    yara_scanner_free(sc);
    yara_rules_unref(r);

    /* and our own EICAR rule finds the sample too */
    r = load_ok(rules_dir());
    sc = yara_scanner_new(r);
    assert_int_equal(scan(sc, buf, n, &seen), 1);
    assert_string_equal(seen.rule[0], "Fenghuo_EICAR_Test_File");
    yara_scanner_free(sc);
    yara_rules_unref(r);
}

/*
 * A file importing pe (yara_source.c): its rules that need pe run on PE data only, the
 * others on all data; a rule that names a pe rule goes with it; comments, strings and
 * regexps holding braces or "rule" do not confuse the split; an include is followed.
 */
static void test_format_module_split(void **state)
{
    (void)state;
    static const char *const names[] = {"main.yar", "inc.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    seen_t seen = {0};
    static const char text[] = "fenghuo-mimi-log and fenghuo-plain";
    char pe[64] = "MZ";

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "inc.yar");
    write_file(path, "rule inc_plain { strings: $a = \"fenghuo-plain\" condition: $a }\n");
    join(path, sizeof(path), dir, "main.yar");
    write_file(path, "include \"inc.yar\"\n"
                     "import \"pe\"\n"
                     "/* rule commented_out { condition: true } */\n"
                     "rule log_text {\n"
                     "  strings: $a = \"fenghuo-mimi-log\" $b = \"} rule x {\" $c = /a\\/b{2}/\n"
                     "  condition: $a or $b or $c\n"
                     "}\n"
                     "rule needs_pe {\n"
                     "  strings: $a = \"fenghuo-mimi-log\"\n"
                     "  condition: $a and pe.is_pe == 0\n"
                     "}\n"
                     "private rule pe_private { condition: pe.is_pe }\n"
                     "rule uses_private {\n"
                     "  strings: $a = \"fenghuo-mimi-log\"\n"
                     "  condition: $a and pe_private\n"
                     "}\n");
    yara_rules *r = load_ok(path);
    assert_int_equal(yara_rules_count(r), 4);
    assert_int_equal(yara_rules_format_only(r), 2);
    yara_scanner *sc = yara_scanner_new(r);

    /* text: the plain set, without the rules that name pe (in the full set needs_pe would
     * match here too: pe.is_pe is 0 on any data; the split's one difference, documented) */
    assert_int_equal(scan(sc, text, strlen(text), &seen), 2);
    assert_true(seen_rule(&seen, "log_text"));
    assert_true(seen_rule(&seen, "inc_plain"));
    assert_int_equal(yara_scanner_full_scans(sc), 0);

    /* data that starts as a PE (MZ): the full set, with the rules that name pe */
    memcpy(pe + 2, text, strlen(text));
    assert_true(yara_format_data(pe, 2 + strlen(text)));
    assert_false(yara_format_data(text, strlen(text)));
    assert_int_equal(scan(sc, pe, 2 + strlen(text), &seen), 3);
    assert_true(seen_rule(&seen, "log_text"));
    assert_true(seen_rule(&seen, "inc_plain"));
    assert_true(seen_rule(&seen, "needs_pe"));
    assert_int_equal(yara_scanner_full_scans(sc), 1);
    yara_scanner_free(sc);
    yara_rules_unref(r);

    /* a set without format modules has no split */
    join(path, sizeof(path), dir, "inc.yar");
    r = load_ok(path);
    assert_int_equal(yara_rules_format_only(r), 0);
    sc = yara_scanner_new(r);
    scan(sc, pe, 2 + strlen(text), &seen);
    assert_int_equal(yara_scanner_full_scans(sc), 1);
    yara_scanner_free(sc);
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

/* ---- the prefilter (yara_prefilter.c) ------------------------------------------ */

/* Rules of every shape the prefilter reads, and some it must leave alone. */
static const char prefilter_rules[] =
    "import \"pe\"\n"
    "rule t_text { strings: $a = \"Fenghuo-PF-text\" condition: $a }\n"
    "rule t_wide { strings: $a = \"pfwide\" nocase wide ascii condition: $a }\n"
    "rule t_hex { strings: $a = { 46 48 ?? 50 [2-4] 46 31 ( 41 | 42 43 ) 5A 5A 5A }\n"
    "  condition: $a }\n"
    "rule t_regex { strings: $a = /fh-re+x[0-9]{2,}(ab|cd)?tail\\.end/i condition: $a }\n"
    "rule t_regex_alt { strings: $a = /(pf-alpha|pf-beta)[0-9]|pf-gamma-\\d/ condition: $a }\n"
    "rule t_small { strings: $a = \"pf-small\" condition: filesize < 20 and $a }\n"
    "rule t_big { strings: $a = \"pf-big\" condition: $a and 30 <= filesize }\n"
    "rule t_xor { strings: $a = \"pf-xored\" xor(1-2) condition: $a }\n"
    "rule t_unknown { strings: $a = \"pf-b64-text\" base64 condition: $a }\n"
    "rule t_regex_product { strings: $a = /(ldap|rmi):\\/\\/[a-z]{3,9}(\\.ex|:1)+\\// condition: "
    "$a }\n"
    "rule t_count { strings: $a = \"pf-count\" condition: #a > 2 }\n"
    "rule t_of { strings: $x1 = \"pf-of-one\" $x2 = \"pf-of-two\" $x3 = \"pf-of-three\"\n"
    "  condition: 2 of ($x*) }\n"
    "rule t_all_xor { strings: $a = \"pf-all\" $b = \"pf-xor\" xor condition: all of them }\n"
    "private rule t_priv { strings: $a = \"pf-private\" condition: $a at 0 }\n"
    "rule t_uses_priv { condition: t_priv and filesize < 1000 }\n"
    "rule t_not { strings: $a = \"pf-not\" $b = \"pf-yes\" condition: not $a and $b }\n"
    "rule t_or_filesize { strings: $a = \"pf-or\" condition: $a or filesize == 7 }\n"
    "rule t_magic { condition: uint16(0) == 0x4b50 }\n"
    "rule t_for { strings: $a = \"pf-for\" condition: for any of ($a) : ($ at 1) }\n"
    "rule t_in { strings: $a = \"pf-in\" /* a comment */ condition: $a in (0..20) and\n"
    "  not t_priv }\n"
    "rule t_pe { strings: $a = \"pf-pe\" condition: $a and pe.number_of_sections == 0 }\n"
    "rule t_any { strings: $a = \"pf-any-a\" $b = \"pf-any-b\" condition: any of them }\n"
    "rule t_and_or { strings: $a = \"pf-ao-a\" $b = \"pf-ao-b\" $c = \"pf-ao-c\"\n"
    "  condition: $a and ($b or #c > 1) }\n"
    /* vetoes: exact text strings are read, fullword and hex strings are not */
    "rule t_veto_set { strings: $s = \"pf-shell\" $fp1 = \"pf-fp-one\" $fp2 = \"pf-fp-two\" "
    "nocase\n"
    "  condition: $s and not any of ($fp*) }\n"
    "rule t_veto_fullword { strings: $s = \"pf-fw-s\" $fp = \"pf-fw-fp\" fullword\n"
    "  condition: $s and not $fp }\n"
    "rule t_veto_paren { strings: $s = \"pf-par\" $fp = \"pf-par-fp\" wide\n"
    "  condition: $s and not (1 of ($fp)) }\n"
    "rule t_veto_hex { strings: $s = \"pf-hexv\" $fp = { 41 42 43 44 } condition: $s and not $fp "
    "}\n"
    "rule t_veto_xor { strings: $s = \"pf-xv\" $fp = \"pf-xfp\" xor(1-3) condition: $s and not $fp "
    "}\n"
    /* a literal's leading NULs are dropped (Vectorscan refuses them): no longer exact */
    "rule t_veto_nul { strings: $s = \"pf-nulv\" $fp = \"\\x00pf-nulfp\" condition: $s and not $fp "
    "}\n";

static yara_rules *load_flags_ok(const char *path, unsigned flags)
{
    char err[4096];
    yara_rules *r = NULL;
    fh_err rc = yara_rules_load_flags(path, flags, &r, err, sizeof(err));
    if (rc != FH_OK)
        fail_msg("yara_rules_load_flags(%s): %s: %s", path, fh_strerror(rc), err);
    return r;
}

/* The sorted, comma-joined names of the rules a scan reported. */
static void seen_names(const seen_t *s, char *out, size_t cap)
{
    char names[MAX_SEEN][128];
    int n = s->n < MAX_SEEN ? s->n : MAX_SEEN;

    memcpy(names, s->rule, sizeof(names));
    qsort(names, (size_t)n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 1);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

/* Scans buf with both scanners; fails unless they report the same rules. Returns whether
 * the prefilter answered. */
static bool same_result(yara_scanner *with, yara_scanner *without, const void *buf, size_t len,
                        char *names, size_t cap)
{
    seen_t a = {0}, b = {0};
    char na[2048], nb[2048];
    int ra = scan(with, buf, len, &a), rb = scan(without, buf, len, &b);

    seen_names(&a, na, sizeof(na));
    seen_names(&b, nb, sizeof(nb));
    if (ra != rb || strcmp(na, nb) != 0)
        fail_msg("prefilter changed a result on %zu bytes: [%s] (%d) vs [%s] (%d)", len, na, ra, nb,
                 rb);
    assert_false(yara_scanner_last_prefiltered(without));
    if (names)
        snprintf(names, cap, "%s", na);
    return yara_scanner_last_prefiltered(with);
}

/* A buffer, its length (0: strlen), the rules expected to match (sorted, each followed by a
 * comma) and whether the prefilter is expected to answer it. */
typedef struct {
    const char *buf;
    size_t len;
    const char *rules;
    bool prefiltered;
} pf_case;

/* Each case through both scanners: the same result, and the one expected. */
static void expect_all(yara_scanner *with, yara_scanner *without, const pf_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char names[2048];
        size_t len = c[i].len ? c[i].len : strlen(c[i].buf);
        bool pf = same_result(with, without, c[i].buf, len, names, sizeof(names));
        if (strcmp(names, c[i].rules) != 0 || pf != c[i].prefiltered)
            fail_msg("\"%.*s\": matched [%s], prefiltered %d; expected [%s], %d", (int)len,
                     c[i].buf, names, pf, c[i].rules, c[i].prefiltered);
    }
}

/*
 * Hand-made rules: which rules the filter leaves to run always, which buffers it answers,
 * that those still get the matches of the rules that need no string, and that every
 * result equals libyara's without the filter; then 20,000 buffers spliced at random from
 * the rules' literals, their case and wide variants, pieces of them and random bytes.
 */
static void test_prefilter(void **state)
{
    (void)state;
    static const char *const names[] = {"p.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    unsigned always = 99;

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "p.yar");
    write_file(path, prefilter_rules);
    yara_rules *r = load_flags_ok(path, 0), *r0 = load_flags_ok(path, YARA_LOAD_NO_PREFILTER);
    assert_true(yara_rules_prefiltered(r, &always));
    /* t_unknown (base64: no literal), t_or_filesize, t_magic, t_for */
    assert_int_equal(always, 4);
    assert_false(yara_rules_prefiltered(r0, &always));
    assert_int_equal(always, 0);
    yara_scanner *with = yara_scanner_new(r), *without = yara_scanner_new(r0);
    assert_non_null(with);
    assert_non_null(without);

    static const char hexdata[] = "FH\x01P\x01\x02"
                                  "F1BCZZZ";
    static const char wide[] = "P\0F\0W\0I\0D\0E\0";
    const pf_case cases[] = {
        {"nothing to see here, at all", 0, "", true},
        {"PK\x03\x04 an archive", 0, "t_magic,", true},
        {"1234567", 0, "t_or_filesize,", true},
        {"xx pf-or xx", 0, "t_or_filesize,", true}, /* an "always" rule: its string not filtered */
        {"xx Fenghuo-PF-text xx", 0, "t_text,", false},
        {"xx fenghuo-pf-text xx", 0, "", true}, /* case matters: not the literal */
        {"xx Fenghuo-PF-tex", 0, "", true},     /* part of it is not enough */
        {wide, sizeof(wide) - 1, "t_wide,", false},
        {"PFWIDE", 0, "t_wide,", false},
        {hexdata, sizeof(hexdata) - 1, "t_hex,", false},
        {"FH-REEEx42tail.end", 0, "t_regex,", false},
        {"pf-beta7", 0, "t_regex_alt,", false},
        {"pf-gamma-1", 0, "t_regex_alt,", false},
        {"pf-gamma", 0, "", true},
        {"qg,ynsde", 0, "t_xor,", false}, /* "pf-xored" xor 1 */
        {"pf-small ...", 0, "t_small,", false},
        {"pf-small ..............", 0, "", true},       /* 24 bytes: filesize rules it out */
        {"pf-big ......................", 0, "", true}, /* 29 bytes */
        {"pf-big .......................", 0, "t_big,", false},
        {"pf-xored", 0, "", true}, /* key 0 is not in the range */
        {"cGYtYjY0LXRleHQ=", 0, "t_unknown,", true},
        {"rmi://abc:1.ex/", 0, "t_regex_product,", false},
        {"ldap://abcd.ex/", 0, "t_regex_product,", false},
        {"ldap:/ rmi:/ x://abc.ex/", 0, "", true}, /* no "ldap://" nor "rmi://" */
        {"pf-count pf-count pf-count", 0, "t_count,", false},
        {"pf-count pf-count", 0, "", false},
        {"pf-of-one pf-of-three", 0, "t_of,", false},
        {"pf-all pf-xor", 0, "t_all_xor,", false},
        {"pf-xor", 0, "", true}, /* only the xor string: the filter waits for "pf-all" */
        {"pf-private at the start", 0, "t_uses_priv,", false},
        {"pf-yes", 0, "t_not,", false},
        {"pf-yes pf-not", 0, "", true}, /* "not $a": $a is exact, so it was seen */
        {"   pf-in", 0, "t_in,", false},
        {" pf-for.", 0, "t_for,", true},
        {"pf-pe", 0, "", false}, /* t_pe needs PE data: not in the plain set */
        {"pf-any-b", 0, "t_any,", false},
        {"pf-ao-a pf-ao-c pf-ao-c", 0, "t_and_or,", false},
        {"pf-ao-a pf-ao-b", 0, "t_and_or,", false},
        {"pf-ao-b pf-ao-c", 0, "", true}, /* no $a: the filter knows no rule can match */
        {"pf-ao-a ", 0, "", true},
        {"pf-shell", 0, "t_veto_set,", false},
        {"pf-shell PF-FP-TWO", 0, "", true},
        {"pf-shell pf-fp-one", 0, "", true},
        {"pf-fw-s xpf-fw-fpx", 0, "t_veto_fullword,", false}, /* fullword: not a veto here */
        {"pf-fw-s pf-fw-fp", 0, "", false},                   /* libyara tells */
        {"pf-par pf-par-fp", 0, "t_veto_paren,", false},      /* the veto is wide only */
        {"pf-par p\0f\0-\0p\0a\0r\0-\0f\0p\0", 25, "", true},
        {"pf-hexv ABCD", 0, "", false},
        {"pf-xv qg,ygq", 0, "", true}, /* "pf-xfp" xor 1 */
        {"pf-xv pf-xfp", 0, "t_veto_xor,", false},
        {"pf-nulv pf-nulfp", 0, "t_veto_nul,", false}, /* "pf-nulfp" seen, not "\0pf-nulfp" */
        {"pf-nulv \0pf-nulfp", 17, "", false},
    };
    expect_all(with, without, cases, sizeof(cases) / sizeof(cases[0]));

    /* random splices */
    static const char *const words[] = {
        "ldap://",    "rmi://",    "ldap",
        ".ex",        ":1",        "/",
        "qg,ynsde",   "pf-small",  "pf-big",
        "..........", "pf-xored",  "cGYtYjY0LXRleHQ=",
        "pf-any-a",   "pf-any-b",  "pf-ao-a",
        "pf-ao-b",    "pf-ao-c",   "Fenghuo-PF-text",
        "pfwide",     "PfWiDe",    "fh-reex12tail.end",
        "FH-RE",      "tail.end",  "pf-alpha",
        "pf-beta",    "pf-gamma-", "pf-count",
        "pf-of-one",  "pf-of-two", "pf-of-three",
        "pf-all",     "pf-xor",    "pf-private",
        "pf-not",     "pf-yes",    "pf-or",
        "pf-for",     "pf-in",     "PK",
        "pf-shell",   "pf-fp-one", "PF-FP-TWO",
        "pf-fw-s",    "pf-fw-fp",  "pf-par",
        "pf-par-fp",  "pf-hexv",   "ABCD",
        "pf-xv",      "qg,ygq",    "pf-xfp",
        "pf-nulv",    "pf-nulfp",  "ZZZ",
        "F1",         "FH",        "ab",
        "cd",         "7",         " ",
        "\x01",
    };
    const size_t nw = sizeof(words) / sizeof(words[0]);
    unsigned seed = 12345;
    int filtered = 0, matched = 0;
    for (int i = 0; i < 20000; i++) {
        char buf[512];
        size_t len = 0;
        int parts = 1 + (int)(rand_r(&seed) % 6);
        for (int k = 0; k < parts; k++) {
            const char *w = words[rand_r(&seed) % nw];
            size_t wl = strlen(w), from = 0, to = wl;
            unsigned how = rand_r(&seed) % 8;
            if (how == 0 && wl > 1) { /* a piece */
                from = rand_r(&seed) % wl;
                to = from + 1 + rand_r(&seed) % (wl - from);
            }
            for (size_t j = from; j < to && len + 2 < sizeof(buf); j++) {
                char c = w[j];
                if (how == 1 && c >= 'a' && c <= 'z')
                    c = (char)(c - 32);
                buf[len++] = c;
                if (how == 2) /* wide */
                    buf[len++] = '\0';
            }
            if (how == 3 && len < sizeof(buf))
                buf[len++] = (char)(rand_r(&seed) & 0xff);
        }
        char got[2048];
        filtered += same_result(with, without, buf, len, got, sizeof(got));
        matched += got[0] != '\0';
    }
    print_message("  prefilter: %d of 20000 random buffers answered by the filter, %d matched\n",
                  filtered, matched);
    assert_true(filtered > 1000);
    assert_true(matched > 1000);

    yara_scanner_free(with);
    yara_scanner_free(without);
    yara_rules_unref(r);
    yara_rules_unref(r0);
    rm_tmpdir(dir, names);
}

/* A set where every rule needs a string: the filter alone answers clean data, nothing runs. */
static void test_prefilter_no_always(void **state)
{
    (void)state;
    static const char *const names[] = {"q.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    unsigned always = 99;
    seen_t seen = {0};

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "q.yar");
    write_file(path, "rule q { strings: $a = \"fenghuo-q\" condition: $a }\n");
    yara_rules *r = load_ok(path);
    assert_true(yara_rules_prefiltered(r, &always));
    assert_int_equal(always, 0);
    yara_scanner *sc = yara_scanner_new(r);
    assert_int_equal(scan(sc, "clean", 5, &seen), 0);
    assert_true(yara_scanner_last_prefiltered(sc));
    assert_int_equal(scan(sc, "a fenghuo-q", 11, &seen), 1);
    assert_false(yara_scanner_last_prefiltered(sc));
    assert_non_null(strstr(seen.json[0], "\"offset\":2"));
    /* data of a file format always goes to the full set */
    assert_int_equal(scan(sc, "MZ clean", 8, &seen), 0);
    assert_false(yara_scanner_last_prefiltered(sc));
    yara_scanner_free(sc);
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

/* Namespaces: a rule name in two files (one needing a string, one not), a global rule, a
 * private rule: the "always" set keeps what it must, and every result equals libyara's
 * without the filter. */
static void test_prefilter_namespaces(void **state)
{
    (void)state;
    static const char *const names[] = {"a.yar", "b.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    unsigned always = 99;
    char big[300];

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "a.yar");
    write_file(path, "global rule g { strings: $g = \"pf-g\" condition: $g }\n"
                     "rule dup { condition: uint8(0) == 0x41 }\n"
                     "private rule p { strings: $a = \"pf-private-a\" condition: $a }\n"
                     "rule uses_p { condition: p }\n");
    join(path, sizeof(path), dir, "b.yar");
    write_file(path,
               "rule dup { strings: $a = \"pf-dup\" condition: $a }\n"
               "rule other { strings: $a = \"pf-other\" nocase condition: $a and not dup }\n");
    yara_rules *r = load_flags_ok(dir, 0), *r0 = load_flags_ok(dir, YARA_LOAD_NO_PREFILTER);
    assert_true(yara_rules_prefiltered(r, &always));
    /* a's dup; with it b's dup (kept by name: it cannot match there anyway) and g (a global
     * rule of a's namespace can veto it) */
    assert_int_equal(always, 3);
    yara_scanner *with = yara_scanner_new(r), *without = yara_scanner_new(r0);
    memset(big, 'A', sizeof(big));
    const pf_case cases[] = {
        {"A little", 0, "", true}, /* no "pf-g": the global rule vetoes a's dup */
        {"Apf-g", 0, "dup,g,", false},    {big, sizeof(big), "", true},
        {"pf-dup", 0, "dup,", false},     {"Apf-dup pf-g", 0, "dup,dup,g,", false},
        {"pf-private-a", 0, "", false},   {"pf-private-a pf-g", 0, "g,uses_p,", false},
        {"PF-OTHER", 0, "other,", false}, {"PF-OTHER pf-dup", 0, "dup,", false},
        {"nothing", 0, "", true},
    };
    expect_all(with, without, cases, sizeof(cases) / sizeof(cases[0]));
    yara_scanner_free(with);
    yara_scanner_free(without);
    yara_rules_unref(r);
    yara_rules_unref(r0);
    rm_tmpdir(dir, names);
}

/* The clean cache: clean buffers are answered without a scan the second time, exactly
 * (same bytes, same length); a buffer with a match is scanned and reported every time;
 * eviction, off, and never for a set that imports "time". */
static void test_clean_cache(void **state)
{
    (void)state;
    static const char *const names[] = {"a.yar", "t.yar", NULL};
    char dir[PATH_LEN], path[PATH_LEN];
    seen_t seen = {0};
    static const char clean[] = "an ordinary datagram, nothing to see";
    static const char other[] = "an ordinary datagram, nothing to seE";
    static const char bad[] = "xx fenghuo-cache-bad xx";

    make_tmpdir(dir, sizeof(dir));
    join(path, sizeof(path), dir, "a.yar");
    write_file(path, "rule cache_bad { strings: $a = \"fenghuo-cache-bad\" condition: $a }\n");
    yara_rules *r = load_ok(path);
    yara_scanner *sc = yara_scanner_new(r);
    assert_non_null(sc);

    /* off by default */
    assert_int_equal(scan(sc, clean, strlen(clean), &seen), 0);
    assert_int_equal(scan(sc, clean, strlen(clean), &seen), 0);
    assert_false(yara_scanner_last_cached(sc));

    assert_int_equal(yara_scanner_set_clean_cache(sc, 16), FH_OK);
    assert_int_equal(scan(sc, clean, strlen(clean), &seen), 0);
    assert_false(yara_scanner_last_cached(sc)); /* first time: scanned */
    assert_int_equal(scan(sc, clean, strlen(clean), &seen), 0);
    assert_true(yara_scanner_last_cached(sc));
    /* one byte different, or a prefix: scanned */
    assert_int_equal(scan(sc, other, strlen(other), &seen), 0);
    assert_false(yara_scanner_last_cached(sc));
    assert_int_equal(scan(sc, clean, strlen(clean) - 1, &seen), 0);
    assert_false(yara_scanner_last_cached(sc));
    /* a match is never cached: reported with its strings each time */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(scan(sc, bad, strlen(bad), &seen), 1);
        assert_false(yara_scanner_last_cached(sc));
        assert_true(seen_rule(&seen, "cache_bad"));
        assert_non_null(strstr(seen.json[0], "\"offset\":3"));
    }
    /* the empty buffer is a buffer like any other */
    assert_int_equal(scan(sc, NULL, 0, &seen), 0);
    assert_int_equal(scan(sc, NULL, 0, &seen), 0);
    assert_true(yara_scanner_last_cached(sc));

    /* one entry: the next clean buffer takes its place */
    assert_int_equal(yara_scanner_set_clean_cache(sc, 1), FH_OK);
    scan(sc, clean, strlen(clean), &seen);
    scan(sc, clean, strlen(clean), &seen);
    assert_true(yara_scanner_last_cached(sc));
    scan(sc, other, strlen(other), &seen);
    scan(sc, clean, strlen(clean), &seen);
    assert_false(yara_scanner_last_cached(sc));

    /* 0: off again */
    assert_int_equal(yara_scanner_set_clean_cache(sc, 0), FH_OK);
    scan(sc, clean, strlen(clean), &seen);
    scan(sc, clean, strlen(clean), &seen);
    assert_false(yara_scanner_last_cached(sc));
    yara_scanner_free(sc);
    yara_rules_unref(r);

    /* a set whose results follow the clock keeps no cache */
    join(path, sizeof(path), dir, "t.yar");
    write_file(path, "import \"time\"\n"
                     "rule late { condition: time.now() < 0 }\n");
    r = load_ok(path);
    sc = yara_scanner_new(r);
    assert_int_equal(yara_scanner_set_clean_cache(sc, 16), FH_OK);
    scan(sc, clean, strlen(clean), &seen);
    assert_int_equal(scan(sc, clean, strlen(clean), &seen), 0);
    assert_false(yara_scanner_last_cached(sc));
    yara_scanner_free(sc);
    yara_rules_unref(r);
    rm_tmpdir(dir, names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_shipped),
        cmocka_unit_test(test_eicar_in_buffer),
        cmocka_unit_test(test_webshell_samples),
        cmocka_unit_test(test_corpus_rule_samples),
        cmocka_unit_test(test_clean_data),
        cmocka_unit_test(test_broken_rules_keep_old_set),
        cmocka_unit_test(test_warnings_are_errors),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_string_matches_bounded),
        cmocka_unit_test(test_swap_while_scanning),
        cmocka_unit_test(test_shared_rules),
        cmocka_unit_test(test_format_module_split),
        cmocka_unit_test(test_clean_cache),
        cmocka_unit_test(test_prefilter),
        cmocka_unit_test(test_prefilter_no_always),
        cmocka_unit_test(test_prefilter_namespaces),
    };
    return cmocka_run_group_tests_name("yara", tests, setup, teardown);
}
