/*
 * test_spool.c - the on-disk spool: byte-exact round trips, order across
 * segments, out-of-order acks and rewind, segment deletion, restart, power
 * loss (torn tail), corruption and garbage files, the three full policies,
 * fsync policies, the counter invariant, the window cap and error messages.
 * (Its throughput is measured by bench/micro.c, in `make bench`.)
 *
 * Every test works in its own mkdtemp directory under /tmp, removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../sensor/spool.h"

#define TOPIC "fenghuo.events"

typedef struct {
    char root[64]; /* the mkdtemp directory */
    char dir[128]; /* the spool directory inside it */
    char err[256];
} fixture;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    strcpy(f->root, "/tmp/fh-spool-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/spool", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    chmod(f->dir, 0700);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static spool_config cfg_of(const fixture *f, uint64_t max_bytes, uint64_t segment_bytes,
                           spool_full_policy when_full)
{
    spool_config c = {.dir = f->dir,
                      .max_bytes = max_bytes,
                      .segment_bytes = segment_bytes,
                      .fsync = SPOOL_FSYNC_SEGMENT,
                      .when_full = when_full};
    return c;
}

static spool *open_ok(fixture *f, const spool_config *c)
{
    spool *s = NULL;
    fh_err e = spool_open(&s, c, f->err, sizeof(f->err));

    if (e)
        print_error("spool_open: %s\n", f->err);
    assert_int_equal(e, FH_OK);
    assert_non_null(s);
    return s;
}

/*
 * Record n: key "k<n>", payload of `len` bytes (len >= 8) starting with n
 * (8 bytes, little endian, so it has NULs) then a pattern derived from n.
 */
static void make_payload(uint64_t n, unsigned char *p, size_t len)
{
    size_t i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(n >> (8 * i));
    for (i = 8; i < len; i++)
        p[i] = (unsigned char)((i % 5 == 0) ? 0 : (n * 131 + i * 7));
}

static fh_err append_rec(spool *s, uint64_t n, size_t len)
{
    unsigned char p[4096];
    char key[32];
    int kl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)n);

    assert_true(len >= 8 && len <= sizeof(p));
    make_payload(n, p, len);
    return spool_append(s, TOPIC, strlen(TOPIC), key, (size_t)kl, p, len);
}

static void append_ok(spool *s, uint64_t from, uint64_t count, size_t len)
{
    uint64_t n;

    for (n = from; n < from + count; n++)
        assert_int_equal(append_rec(s, n, len), FH_OK);
}

/* Checks that rec is record n (any payload length) and returns n. */
static uint64_t check_rec(const spool_record *rec)
{
    unsigned char p[4096];
    char key[32];
    uint64_t n = 0;
    size_t i;

    assert_int_equal(rec->topic_len, strlen(TOPIC));
    assert_memory_equal(rec->topic, TOPIC, rec->topic_len);
    assert_true(rec->payload_len >= 8 && rec->payload_len <= sizeof(p));
    for (i = 0; i < 8; i++)
        n |= (uint64_t)((const unsigned char *)rec->payload)[i] << (8 * i);
    make_payload(n, p, rec->payload_len);
    assert_memory_equal(rec->payload, p, rec->payload_len);
    snprintf(key, sizeof(key), "k%llu", (unsigned long long)n);
    assert_int_equal(rec->key_len, strlen(key));
    assert_memory_equal(rec->key, key, rec->key_len);
    return n;
}

/* Reads the next record (which must exist), checks it, returns its number and id. */
static uint64_t next_ok(fixture *f, spool *s, uint64_t *id)
{
    spool_record rec;
    int r = spool_next(s, &rec, f->err, sizeof(f->err));

    if (r < 0)
        print_error("spool_next: %s\n", f->err);
    assert_int_equal(r, 1);
    if (id)
        *id = rec.id;
    return check_rec(&rec);
}

static void next_end(fixture *f, spool *s)
{
    spool_record rec;

    assert_int_equal(spool_next(s, &rec, f->err, sizeof(f->err)), 0);
}

/* Reads everything, expects records first..first+count-1 in order, acks them all. */
static void drain_expect(fixture *f, spool *s, uint64_t first, uint64_t count)
{
    uint64_t i, id;

    for (i = 0; i < count; i++) {
        assert_int_equal(next_ok(f, s, &id), first + i);
        spool_ack(s, id);
    }
    next_end(f, s);
}

/* Segment files in the spool directory, sorted; returns how many (at most max). */
static int list_segs(const fixture *f, char names[][40], int max)
{
    DIR *d = opendir(f->dir);
    struct dirent *de;
    int n = 0, i, j;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "spool-", 6) != 0 || !strstr(de->d_name, ".seg"))
            continue;
        if (n < max && strlen(de->d_name) < 40)
            memcpy(names[n], de->d_name, strlen(de->d_name) + 1);
        n++;
    }
    closedir(d);
    for (i = 1; i < n && i < max; i++) {
        for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[40];

            memcpy(t, names[j], 40);
            memcpy(names[j], names[j - 1], 40);
            memcpy(names[j - 1], t, 40);
        }
    }
    return n;
}

static int count_segs(const fixture *f)
{
    char names[1][40];

    return list_segs(f, names, 0);
}

static uint64_t disk_bytes(const fixture *f)
{
    char names[256][40], path[200];
    int n = list_segs(f, names, 256), i;
    uint64_t total = 0;
    struct stat sb;

    assert_true(n <= 256);
    for (i = 0; i < n; i++) {
        assert_true(snprintf(path, sizeof(path), "%s/%.39s", f->dir, names[i]) < 200);
        assert_int_equal(stat(path, &sb), 0);
        total += (uint64_t)sb.st_size;
    }
    return total;
}

static off_t file_size(const char *path)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    static unsigned char big[1 << 20];
    char topic[255], key[1024];
    const unsigned char bin[] = {0, 1, 0, 0xff, 'F', 'H', 'S', '1', 0, 0};
    spool_record rec;
    uint64_t ids[4];
    size_t i;

    for (i = 0; i < sizeof(topic); i++)
        topic[i] = (char)('a' + i % 26);
    for (i = 0; i < sizeof(key); i++)
        key[i] = (char)(i & 0xff); /* NULs included */
    for (i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 2654435761u >> 13);
    assert_true(spool_empty(s));
    assert_false(spool_has_unread(s));
    assert_int_equal(spool_append(s, "t", 1, "k\0y", 3, bin, sizeof(bin)), FH_OK);
    assert_int_equal(spool_append(s, topic, 255, key, 1024, "", 0), FH_OK);
    assert_int_equal(spool_append(s, "", 0, NULL, 0, big, sizeof(big)), FH_OK); /* > buffer */
    assert_int_equal(spool_append(s, "t2", 2, NULL, 0, bin, 1), FH_OK);
    /* Over the ceilings: refused, nothing counted. */
    assert_int_equal(spool_append(s, topic, 256, NULL, 0, "", 0), FH_ERR_NOMEM);
    assert_int_equal(spool_append(s, "t", 1, key, 1025, "", 0), FH_ERR_NOMEM);
    assert_int_equal(spool_append(s, "t", 1, NULL, 0, big, (16u << 20) + 1), FH_ERR_NOMEM);
    assert_false(spool_empty(s));
    assert_true(spool_has_unread(s));
    assert_int_equal(spool_get_stats(s)->appended, 4);

    /* Read back without closing: buffered appends must be visible. */
    assert_int_equal(spool_next(s, &rec, f->err, sizeof(f->err)), 1);
    ids[0] = rec.id;
    assert_int_equal(rec.topic_len, 1);
    assert_memory_equal(rec.topic, "t", 1);
    assert_int_equal(rec.key_len, 3);
    assert_memory_equal(rec.key, "k\0y", 3);
    assert_int_equal(rec.payload_len, sizeof(bin));
    assert_memory_equal(rec.payload, bin, sizeof(bin));
    assert_int_equal(spool_next(s, &rec, f->err, sizeof(f->err)), 1);
    ids[1] = rec.id;
    assert_int_equal(rec.topic_len, 255);
    assert_memory_equal(rec.topic, topic, 255);
    assert_int_equal(rec.key_len, 1024);
    assert_memory_equal(rec.key, key, 1024);
    assert_int_equal(rec.payload_len, 0);
    assert_int_equal(spool_next(s, &rec, f->err, sizeof(f->err)), 1);
    ids[2] = rec.id;
    assert_int_equal(rec.topic_len, 0);
    assert_int_equal(rec.key_len, 0);
    assert_int_equal(rec.payload_len, sizeof(big));
    assert_memory_equal(rec.payload, big, sizeof(big));
    assert_int_equal(spool_next(s, &rec, f->err, sizeof(f->err)), 1);
    ids[3] = rec.id;
    assert_int_equal(rec.payload_len, 1);
    assert_memory_equal(rec.payload, bin, 1);
    next_end(f, s);
    assert_false(spool_has_unread(s));
    assert_int_not_equal(ids[0], 0);
    assert_int_not_equal(ids[0], ids[1]);
    assert_int_equal(spool_get_stats(s)->read, 4);

    for (i = 0; i < 4; i++)
        spool_ack(s, ids[i]);
    spool_ack(s, ids[0]); /* twice: ignored */
    assert_int_equal(spool_get_stats(s)->acked, 4);
    assert_int_equal(spool_get_stats(s)->pending_records, 0);
    assert_true(spool_empty(s));
    assert_int_equal(count_segs(f), 0);
    assert_int_equal(spool_get_stats(s)->segments, 0);
    assert_int_equal(spool_get_stats(s)->bytes, 0);
    spool_close(s);
}

/* Record size with append_rec(n < 10, 200): 16 + 14 + 2 + 200 = 232; 4 fit in 1024. */
#define SMALL    200
#define SMALL_SZ 232

static void test_order_across_segments(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1024, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    uint64_t n, id;

    append_ok(s, 0, 100, SMALL);
    assert_true(count_segs(f) >= 20);
    assert_int_equal(spool_get_stats(s)->segments, count_segs(f));
    /* Interleave reads and appends: order is append order. */
    for (n = 0; n < 50; n++) {
        assert_int_equal(next_ok(f, s, &id), n);
        spool_ack(s, id);
    }
    append_ok(s, 100, 20, SMALL);
    drain_expect(f, s, 50, 70);
    assert_true(spool_empty(s));
    assert_int_equal(count_segs(f), 0);
    spool_close(s);
}

static void test_out_of_order_acks_and_rewind(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1024, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    uint64_t ids[20], n, id;
    int i;

    append_ok(s, 0, 20, SMALL);
    for (n = 0; n < 20; n++)
        assert_int_equal(next_ok(f, s, &ids[n]), n);
    next_end(f, s);
    /* Acknowledge the even ones, newest first. */
    for (i = 18; i >= 0; i -= 2)
        spool_ack(s, ids[i]);
    assert_int_equal(spool_get_stats(s)->acked, 10);
    assert_int_equal(spool_get_stats(s)->pending_records, 10);
    spool_rewind(s);
    assert_true(spool_has_unread(s));
    /* Only the odd ones come back, in order, with the same ids. */
    for (n = 1; n < 20; n += 2) {
        assert_int_equal(next_ok(f, s, &id), n);
        assert_int_equal(id, ids[n]);
    }
    next_end(f, s);
    /* Ack 1 and 3 only, rewind again: 5.. come back. */
    spool_ack(s, ids[3]);
    spool_ack(s, ids[1]);
    spool_rewind(s);
    for (n = 5; n < 20; n += 2) {
        assert_int_equal(next_ok(f, s, &id), n);
        spool_ack(s, id);
    }
    next_end(f, s);
    spool_rewind(s); /* nothing in flight: no effect */
    next_end(f, s);
    assert_true(spool_empty(s));
    assert_int_equal(spool_get_stats(s)->read, 20 + 10 + 8);
    assert_int_equal(spool_get_stats(s)->acked, 20);
    assert_int_equal(count_segs(f), 0);
    spool_close(s);
}

static void test_segments_deleted_when_acked(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1024, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    char names[8][40];
    uint64_t ids[10], n;

    append_ok(s, 0, 10, SMALL); /* segments of 4, 4, 2 records */
    assert_int_equal(list_segs(f, names, 8), 3);
    assert_string_equal(names[0], "spool-00000000000000000001.seg");
    assert_string_equal(names[2], "spool-00000000000000000003.seg");
    for (n = 0; n < 10; n++)
        assert_int_equal(next_ok(f, s, &ids[n]), n);
    /* The second segment first, out of order: it goes, the first stays. */
    spool_ack(s, ids[6]);
    spool_ack(s, ids[4]);
    spool_ack(s, ids[7]);
    assert_int_equal(count_segs(f), 3);
    spool_ack(s, ids[5]);
    assert_int_equal(list_segs(f, names, 8), 2);
    assert_string_equal(names[0], "spool-00000000000000000001.seg");
    assert_string_equal(names[1], "spool-00000000000000000003.seg");
    for (n = 0; n < 4; n++)
        spool_ack(s, ids[n]);
    assert_int_equal(list_segs(f, names, 8), 1);
    assert_string_equal(names[0], "spool-00000000000000000003.seg");
    /* The write segment goes too once all is acknowledged. */
    spool_ack(s, ids[8]);
    spool_ack(s, ids[9]);
    assert_int_equal(count_segs(f), 0);
    assert_int_equal(spool_get_stats(s)->segments, 0);
    assert_int_equal(spool_get_stats(s)->bytes, 0);
    assert_true(spool_empty(s));
    /* The next append starts a new segment. */
    append_ok(s, 10, 1, SMALL);
    assert_int_equal(list_segs(f, names, 8), 1);
    assert_string_equal(names[0], "spool-00000000000000000004.seg");
    drain_expect(f, s, 10, 1);
    assert_int_equal(count_segs(f), 0);
    spool_close(s);
}

static void test_restart_replays_pending(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1024, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    uint64_t ids[10], n;

    append_ok(s, 0, 50, SMALL);
    for (n = 0; n < 10; n++)
        assert_int_equal(next_ok(f, s, &ids[n]), n);
    for (n = 0; n < 5; n++) /* the first segment (0-3) goes, 4 is acked in the second */
        spool_ack(s, ids[n]);
    spool_close(s);

    s = open_ok(f, &c);
    /* At-least-once: 4 was acked but its segment remained, so it comes back. */
    assert_int_equal(spool_get_stats(s)->pending_records, 46);
    assert_int_equal(spool_get_stats(s)->appended, 0);
    assert_int_equal(spool_get_stats(s)->corrupt, 0);
    assert_int_equal(spool_get_stats(s)->truncated, 0);
    assert_int_equal(spool_get_stats(s)->bytes, disk_bytes(f));
    assert_int_equal(spool_get_stats(s)->segments, count_segs(f));
    append_ok(s, 50, 3, SMALL);
    drain_expect(f, s, 4, 49);
    assert_true(spool_empty(s));
    assert_int_equal(count_segs(f), 0);
    spool_close(s);

    /* An empty spool reopens empty. */
    s = open_ok(f, &c);
    assert_true(spool_empty(s));
    next_end(f, s);
    spool_close(s);
}

static void test_power_loss_torn_tail(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    /* Cut inside the last record's payload, then inside its header. */
    const off_t cuts[2] = {SMALL_SZ / 2, 7};
    char names[8][40], path[256];
    off_t cut_size;
    spool *s;
    int k;

    for (k = 0; k < 2; k++) {
        s = open_ok(f, &c);
        append_ok(s, 0, 10, SMALL);
        spool_close(s);
        assert_int_equal(list_segs(f, names, 8), 1);
        snprintf(path, sizeof(path), "%s/%s", f->dir, names[0]);
        assert_int_equal(file_size(path), 10 * SMALL_SZ);
        cut_size = 9 * SMALL_SZ + cuts[k];
        assert_int_equal(truncate(path, cut_size), 0);

        s = open_ok(f, &c);
        assert_int_equal(spool_get_stats(s)->truncated, 1);
        assert_int_equal(spool_get_stats(s)->corrupt, 0);
        assert_int_equal(spool_get_stats(s)->pending_records, 9);
        append_ok(s, 100, 3, SMALL);
        /* The new records went to a new segment; the torn one is untouched. */
        assert_int_equal(list_segs(f, names, 8), 2);
        assert_int_equal(file_size(path), cut_size);
        for (uint64_t n = 0; n < 9; n++) {
            uint64_t id;

            assert_int_equal(next_ok(f, s, &id), n);
            spool_ack(s, id);
        }
        drain_expect(f, s, 100, 3);
        assert_int_equal(count_segs(f), 0);
        assert_int_equal(spool_get_stats(s)->bytes, 0);
        spool_close(s);
    }
}

/* Flips one byte at `off` of the only segment file. */
static void flip_byte(const fixture *f, off_t off)
{
    char names[2][40], path[256];
    unsigned char b;
    int fd;

    assert_int_equal(list_segs(f, names, 2), 1);
    snprintf(path, sizeof(path), "%s/%s", f->dir, names[0]);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_corrupt_record_skipped(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    /* In the payload (bad CRC), in the magic, in the length field. */
    const off_t where[3] = {2 * SMALL_SZ + 100, 2 * SMALL_SZ + 1, 2 * SMALL_SZ + 13};
    spool *s;
    int k;

    for (k = 0; k < 3; k++) {
        uint64_t id;

        s = open_ok(f, &c);
        append_ok(s, 0, 5, SMALL);
        spool_close(s);
        flip_byte(f, where[k]);

        s = open_ok(f, &c);
        assert_int_equal(spool_get_stats(s)->corrupt, 1);
        assert_int_equal(spool_get_stats(s)->truncated, 0);
        assert_int_equal(spool_get_stats(s)->pending_records, 4);
        assert_int_equal(next_ok(f, s, &id), 0);
        spool_ack(s, id);
        assert_int_equal(next_ok(f, s, &id), 1);
        spool_ack(s, id);
        assert_int_equal(next_ok(f, s, &id), 3);
        spool_ack(s, id);
        /* A rewind across the corrupt spot finds the same records with the same ids. */
        spool_rewind(s);
        assert_int_equal(next_ok(f, s, &id), 4);
        spool_rewind(s);
        assert_int_equal(next_ok(f, s, &id), 4);
        spool_ack(s, id);
        next_end(f, s);
        assert_true(spool_empty(s));
        assert_int_equal(count_segs(f), 0);
        spool_close(s);
    }
}

static void test_garbage_segment_file(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    char path[256], names[8][40];
    unsigned char junk[5000];
    spool *s;
    size_t i;
    int fd;

    s = open_ok(f, &c);
    append_ok(s, 0, 3, SMALL);
    spool_close(s);
    srand(7);
    for (i = 0; i < sizeof(junk); i++) {
        junk[i] = (unsigned char)rand();
        if (junk[i] == 'F')
            junk[i] = 'G';
    }
    snprintf(path, sizeof(path), "%s/spool-00000000000000000007.seg", f->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    /* Not segment names: left alone. */
    snprintf(path, sizeof(path), "%s/spool-junk.seg", f->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);

    s = open_ok(f, &c);
    assert_int_equal(spool_get_stats(s)->corrupt, 1);
    assert_int_equal(spool_get_stats(s)->pending_records, 3);
    assert_int_equal(spool_get_stats(s)->segments, 1);
    append_ok(s, 10, 1, SMALL);
    assert_int_equal(list_segs(f, names, 8), 3);
    assert_string_equal(names[0], "spool-00000000000000000001.seg");
    assert_string_equal(names[1], "spool-00000000000000000008.seg"); /* after the junk's 7 */
    assert_string_equal(names[2], "spool-junk.seg");
    for (i = 0; i < 4; i++) {
        uint64_t id;

        assert_int_equal(next_ok(f, s, &id), i < 3 ? i : 10);
        spool_ack(s, id);
    }
    next_end(f, s);
    assert_int_equal(count_segs(f), 1); /* spool-junk.seg */
    spool_close(s);
}

static void test_full_drop_oldest(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 4096, 1024, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    const spool_stats *st = spool_get_stats(s);
    uint64_t inflight[2], n, first, id;

    append_ok(s, 0, 8, SMALL);
    /* Two records of the oldest segment in flight when it gets dropped. */
    assert_int_equal(next_ok(f, s, &inflight[0]), 0);
    assert_int_equal(next_ok(f, s, &inflight[1]), 1);
    append_ok(s, 8, 40, SMALL);
    assert_true(st->bytes <= 4096);
    assert_true(st->dropped >= 32);
    assert_int_equal(st->dropped % 4, 0); /* whole segments */
    assert_int_equal(st->appended, 48);
    assert_int_equal(st->dropped + st->pending_records, 48);
    /* Acks for the dropped segment are ignored, not counted. */
    spool_ack(s, inflight[0]);
    spool_ack(s, inflight[1]);
    assert_int_equal(st->acked, 0);
    /* The newest records survive, in order. */
    first = 48 - st->pending_records;
    for (n = first; n < 48; n++) {
        assert_int_equal(next_ok(f, s, &id), n);
        spool_ack(s, id);
    }
    next_end(f, s);
    assert_true(spool_empty(s));
    assert_int_equal(count_segs(f), 0);
    spool_close(s);
}

static void test_full_drop_newest(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 4096, 1024, SPOOL_FULL_DROP_NEWEST);
    spool *s = open_ok(f, &c);
    const spool_stats *st = spool_get_stats(s);
    uint64_t n, refused = 0, ok = 0;

    for (n = 0; n < 40; n++) {
        fh_err e = append_rec(s, n, SMALL);

        if (e == FH_OK) {
            assert_int_equal(refused, 0); /* nothing fits after the first refusal */
            ok++;
        } else {
            assert_int_equal(e, FH_ERR_LIMIT);
            refused++;
        }
    }
    assert_int_equal(ok, 17); /* 10 * 232 + 7 * 233 bytes <= 4096 */
    assert_int_equal(st->dropped, refused);
    assert_int_equal(st->appended, ok);
    assert_true(st->bytes <= 4096);
    drain_expect(f, s, 0, ok);
    assert_int_equal(count_segs(f), 0);
    spool_close(s);
}

static void test_full_block_recovers(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 4096, 1024, SPOOL_FULL_BLOCK);
    spool *s = open_ok(f, &c);
    const spool_stats *st = spool_get_stats(s);
    uint64_t n = 0, id, k;

    while (append_rec(s, n, SMALL) == FH_OK)
        n++;
    assert_int_equal(n, 17);
    assert_int_equal(append_rec(s, n, SMALL), FH_ERR_LIMIT);
    assert_int_equal(st->dropped, 0);
    assert_int_equal(st->pending_records, 17);
    /* Deliver the oldest segment: room again. */
    for (k = 0; k < 4; k++) {
        assert_int_equal(next_ok(f, s, &id), k);
        spool_ack(s, id);
    }
    assert_int_equal(append_rec(s, n, SMALL), FH_OK);
    drain_expect(f, s, 4, 14);
    assert_int_equal(st->dropped, 0);
    spool_close(s);
}

static void test_fsync_policies(void **state)
{
    fixture *f = *state;
    const spool_fsync pol[3] = {SPOOL_FSYNC_NONE, SPOOL_FSYNC_SEGMENT, SPOOL_FSYNC_ALWAYS};
    spool_config c = cfg_of(f, 1 << 24, 1024, SPOOL_FULL_DROP_OLDEST);
    int k;

    for (k = 0; k < 3; k++) {
        spool *s;

        c.fsync = pol[k];
        s = open_ok(f, &c);
        append_ok(s, 0, 10, SMALL);
        if (pol[k] == SPOOL_FSYNC_ALWAYS) /* nothing left buffered */
            assert_int_equal(disk_bytes(f), 10 * SMALL_SZ);
        spool_close(s);
        s = open_ok(f, &c);
        assert_int_equal(spool_get_stats(s)->pending_records, 10);
        drain_expect(f, s, 0, 10);
        spool_close(s);
    }
    c.fsync = (spool_fsync)7;
    {
        spool *s = NULL;

        assert_int_equal(spool_open(&s, &c, f->err, sizeof(f->err)), FH_ERR_CONFIG);
        assert_null(s);
    }
}

static void check_invariant(const spool_stats *st, uint64_t pending0, uint64_t refused)
{
    assert_int_equal(pending0 + st->appended + refused,
                     st->acked + st->dropped + st->pending_records);
}

/*
 * The invariant, at every return from a spool call:
 *   pending at open + appended + refused by DROP_NEWEST = acked + dropped + pending_records
 * corrupt and truncated count bytes that never were records and stay outside it.
 *
 * A random mix of appends, reads, out-of-order acks and rewinds under each full
 * policy, checked against a model: the spool never hands out a record acknowledged
 * in this session, hands records out in increasing order between rewinds, and
 * after a restart and a full drain every record is acknowledged or was dropped.
 */
enum { M_NONE = 0, M_APPENDED, M_ACKED, M_REFUSED };

static void test_stats_invariant(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 16384, 1024, SPOOL_FULL_DROP_OLDEST);
    static unsigned char model[12000];
    uint64_t window[64], wnum[64], pending0, refused, limits, next_n = 0, round_start, last,
                                                              dropped;
    size_t nwin, i, left;
    int round, pol;
    spool_record rec;

    srand(42);
    for (pol = 0; pol < 3; pol++) {
        spool *s;
        const spool_stats *st;

        c.when_full = (spool_full_policy)pol;
        s = open_ok(f, &c);
        st = spool_get_stats(s);
        pending0 = st->pending_records;
        assert_int_equal(pending0, 0);
        refused = 0;
        limits = 0;
        nwin = 0;
        round_start = next_n;
        last = 0;
        for (round = 0; round < 3000; round++) {
            int op = rand() % 10;

            if (op < 5) {
                uint64_t n = next_n++;
                fh_err e = append_rec(s, n, 8 + (size_t)(rand() % 600));

                if (e == FH_OK) {
                    model[n] = M_APPENDED;
                } else {
                    limits++;
                    assert_int_equal(e, FH_ERR_LIMIT);
                    assert_int_not_equal(pol, SPOOL_FULL_DROP_OLDEST);
                    if (pol == SPOOL_FULL_DROP_NEWEST)
                        refused++;
                    model[n] = M_REFUSED;
                }
            } else if (op < 8 && nwin < 64) {
                int r = spool_next(s, &rec, f->err, sizeof(f->err));

                assert_true(r >= 0);
                if (r == 1) {
                    uint64_t n = check_rec(&rec);

                    assert_int_equal(model[n], M_APPENDED);
                    assert_true(n + 1 > last); /* increasing since the last rewind */
                    last = n + 1;
                    wnum[nwin] = n;
                    window[nwin++] = rec.id;
                }
            } else if (op < 9 && nwin > 0) {
                uint64_t before = st->acked;

                i = (size_t)rand() % nwin;
                spool_ack(s, window[i]);
                if (st->acked == before + 1) /* else its segment was dropped meanwhile */
                    model[wnum[i]] = M_ACKED;
                else
                    assert_int_equal(pol, SPOOL_FULL_DROP_OLDEST);
                window[i] = window[nwin - 1];
                wnum[i] = wnum[--nwin];
            } else {
                spool_rewind(s);
                nwin = 0; /* the caller forgets what was in flight */
                last = 0;
            }
            check_invariant(st, pending0, refused);
            assert_true(st->bytes <= c.max_bytes);
            assert_int_equal(st->segments, count_segs(f));
        }
        assert_true(next_n < sizeof(model));
        dropped = st->dropped - refused;
        spool_close(s);

        /* Restart with records pending, then deliver everything. */
        s = open_ok(f, &c);
        st = spool_get_stats(s);
        pending0 = st->pending_records;
        assert_int_equal(st->bytes, disk_bytes(f));
        assert_int_equal(st->segments, count_segs(f));
        last = 0;
        while (spool_next(s, &rec, f->err, sizeof(f->err)) == 1) {
            uint64_t n = check_rec(&rec);

            assert_true(n >= round_start && n + 1 > last);
            last = n + 1;
            model[n] = M_ACKED;
            spool_ack(s, rec.id);
            check_invariant(st, pending0, 0);
        }
        assert_true(spool_empty(s));
        assert_int_equal(count_segs(f), 0);
        for (left = 0, i = round_start; i < next_n; i++)
            left += model[i] == M_APPENDED;
        assert_int_equal(left, dropped); /* only what the full policy dropped is missing */
        if (pol == SPOOL_FULL_DROP_OLDEST)
            assert_true(dropped > 0);
        else
            assert_true(limits > 0); /* the policy was exercised */
        spool_close(s);
    }
}

/* Write errors (a file size limit): what was lost is counted dropped, the rest is kept. */
static void test_write_error(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    const spool_stats *st;
    struct rlimit old, lim;
    char names[8][40];
    uint64_t n, id;
    spool *s;
    fh_err e;

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;

    /* fsync=always: the record that hit the limit is dropped, the 43 before it stay. */
    c.fsync = SPOOL_FSYNC_ALWAYS;
    s = open_ok(f, &c);
    st = spool_get_stats(s);
    lim.rlim_cur = 10100; /* records 0-42 take 10 * 232 + 33 * 233 = 10009 bytes */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (n = 0, e = FH_OK; n < 44 && e == FH_OK; n++)
        e = append_rec(s, n, SMALL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0); /* before any assert can bail out */
    assert_int_equal(e, FH_ERR_IO);
    assert_int_equal(n, 44);
    assert_int_equal(st->appended, 44);
    assert_int_equal(st->dropped, 1);
    assert_int_equal(st->pending_records, 43);
    assert_int_equal(st->bytes, 10009);
    assert_int_equal(disk_bytes(f), 10009);
    /* The next append goes to a new segment. */
    assert_int_equal(append_rec(s, 44, SMALL), FH_OK);
    assert_int_equal(list_segs(f, names, 8), 2);
    for (n = 0; n < 45; n++) {
        assert_int_equal(next_ok(f, s, &id), n == 43 ? 44 : n);
        spool_ack(s, id);
        if (n == 43)
            break;
    }
    next_end(f, s);
    assert_true(spool_empty(s));
    spool_close(s);

    /* fsync=none: a failed flush of the append buffer drops the records buffered. */
    c.fsync = SPOOL_FSYNC_NONE;
    s = open_ok(f, &c);
    st = spool_get_stats(s);
    lim.rlim_cur = 100000; /* less than the 256 KiB buffer */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (n = 0; n < 5000; n++) {
        e = append_rec(s, n, SMALL);
        if (e)
            break;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0); /* before any assert can bail out */
    assert_int_equal(e, FH_ERR_IO);
    assert_true(n > 400 && n < 5000);
    assert_int_equal(st->appended, n);
    assert_int_equal(st->dropped, n);
    assert_int_equal(st->pending_records, 0);
    assert_int_equal(st->segments, 0);
    assert_int_equal(count_segs(f), 0);
    append_ok(s, 9000, 2, SMALL);
    drain_expect(f, s, 9000, 2);
    spool_close(s);
    signal(SIGXFSZ, SIG_DFL);
}

/*
 * The BLOCK policy (pcap input waits rather than drops) keeps what a full disk
 * would not take: the records stay in the append buffer, the reader serves them
 * from there, nothing is dropped, and once every record is acknowledged the
 * segment goes and appends work again.
 */
static void test_write_error_block_keeps(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 22, SPOOL_FULL_BLOCK);
    const spool_stats *st;
    struct rlimit old, lim;
    uint64_t n, kept, id;
    spool *s;
    fh_err e = FH_OK;

    c.fsync = SPOOL_FSYNC_NONE;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    s = open_ok(f, &c);
    st = spool_get_stats(s);
    lim.rlim_cur = 100000; /* less than the 256 KiB append buffer */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (n = 0; n < 5000; n++) {
        e = append_rec(s, n, SMALL);
        if (e)
            break;
    }
    /* once more: still refused, still nothing lost */
    if (e == FH_ERR_IO)
        e = append_rec(s, n, SMALL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0); /* before any assert can bail out */
    assert_int_equal(e, FH_ERR_IO);
    kept = n; /* records 0 .. n-1 were taken; record n was refused (the caller retries) */
    assert_true(kept > 400 && kept < 5000);
    assert_int_equal(st->appended, kept);
    assert_int_equal(st->dropped, 0);
    assert_int_equal(st->pending_records, kept);
    assert_true(disk_bytes(f) <= 100000);
    /* every record comes back, those on disk and those still buffered, in order */
    for (n = 0; n < kept; n++) {
        assert_int_equal(next_ok(f, s, &id), n);
        spool_ack(s, id);
    }
    next_end(f, s);
    assert_true(spool_empty(s));
    assert_int_equal(count_segs(f), 0);
    /* with the disk free again the refused record goes in */
    assert_int_equal(append_rec(s, kept, SMALL), FH_OK);
    assert_int_equal(spool_sync(s), FH_OK);
    drain_expect(f, s, kept, 1);
    assert_int_equal(st->dropped, 0);
    spool_close(s);

    /* A final sync that still cannot write drops what was kept, and counts it. */
    s = open_ok(f, &c);
    st = spool_get_stats(s);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (n = 0; n < 5000 && append_rec(s, n, SMALL) == FH_OK; n++)
        ;
    e = spool_sync(s);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(e, FH_ERR_IO);
    assert_true(st->dropped > 0);
    assert_int_equal(st->appended, st->dropped + st->pending_records);
    assert_int_equal(st->bytes, disk_bytes(f));
    spool_close(s);
    signal(SIGXFSZ, SIG_DFL);
}

static void test_window_cap(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 28, 1 << 24, SPOOL_FULL_DROP_OLDEST);
    spool *s = open_ok(f, &c);
    const uint64_t cap = 65536;
    uint64_t n, id, first;

    append_ok(s, 0, cap + 10, 8);
    assert_int_equal(next_ok(f, s, &first), 0);
    for (n = 1; n < cap; n++) {
        assert_int_equal(next_ok(f, s, &id), n);
        spool_ack(s, id);
    }
    /* Record 0 is still out: no record at 0 + cap or later is handed out. */
    next_end(f, s);
    assert_true(spool_has_unread(s));
    spool_ack(s, first);
    drain_expect(f, s, cap, 10);
    assert_true(spool_empty(s));
    spool_close(s);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    spool_config c = cfg_of(f, 1 << 24, 1 << 20, SPOOL_FULL_DROP_OLDEST);
    char file[128], below[160];
    spool *s = NULL, *s2 = NULL;
    int fd;

    /* A directory below a regular file cannot be created. */
    snprintf(file, sizeof(file), "%s/plain", f->root);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(below, sizeof(below), "%s/spool", file);
    c.dir = below;
    assert_int_equal(spool_open(&s, &c, f->err, sizeof(f->err)), FH_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(f->err, "spool: mkdir(\""));
    assert_non_null(strstr(f->err, below));
    assert_non_null(strstr(f->err, "Not a directory"));

    /* An unwritable directory (root writes anyway, so only checked as a user). */
    c.dir = f->dir;
    assert_int_equal(mkdir(f->dir, 0500), 0);
    if (geteuid() != 0) {
        assert_int_equal(spool_open(&s, &c, f->err, sizeof(f->err)), FH_ERR_IO);
        assert_non_null(strstr(f->err, "spool: open(\""));
        assert_non_null(strstr(f->err, "Permission denied"));
    }
    chmod(f->dir, 0700);

    /* Bad configuration. */
    c.segment_bytes = 10;
    assert_int_equal(spool_open(&s, &c, f->err, sizeof(f->err)), FH_ERR_CONFIG);
    assert_non_null(strstr(f->err, "segment_bytes"));
    c.segment_bytes = 1 << 20;

    /* A second handle on the same directory is refused. */
    s = open_ok(f, &c);
    assert_int_equal(spool_open(&s2, &c, f->err, sizeof(f->err)), FH_ERR_IO);
    assert_null(s2);
    assert_non_null(strstr(f->err, "flock"));
    spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acks_and_rewind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_deleted_when_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_replays_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_segment_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_drop_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_block_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_invariant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_block_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
