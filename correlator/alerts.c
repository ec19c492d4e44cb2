/*
 * alerts.c - alert ids, tag splitting, the JSON form of an alert, and the book
 * of open alerts (hash table + LRU list + dirty list); see alerts.h.
 */
#include "alerts.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>

/* ---- small helpers ---------------------------------------------------------------- */

/* strdup that passes NULL through; *failed is set when an allocation fails. */
static char *dup_or_null(const char *s, bool *failed)
{
    char *p;

    if (!s)
        return NULL;
    p = strdup(s);
    if (!p)
        *failed = true;
    return p;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- levels ---------------------------------------------------------------------- */

static const char *const level_names[] = {"informational", "low", "medium", "high", "critical"};

const char *alert_level_name(int level)
{
    if (level < 0 || level > ALERT_LEVEL_CRITICAL)
        return NULL;
    return level_names[level];
}

int alert_level_parse(const char *name)
{
    for (int i = 0; name && i <= ALERT_LEVEL_CRITICAL; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* ---- tags ------------------------------------------------------------------------ */

const char *alert_tag_kind_name(alert_tag_kind k)
{
    switch (k) {
    case ALERT_TAG_CLAUSE:
        return "clause";
    case ALERT_TAG_CATEGORY:
        return "category";
    case ALERT_TAG_ATTACK:
        return "attack";
    case ALERT_TAG_OTHER:
        break;
    }
    return "other";
}

/* A GB/T 22239 clause: digits separated by dots, optionally ending in ".<letter>". */
static bool clause_valid(const char *s)
{
    size_t n = strlen(s);
    bool digit_run = false;

    if (n >= 2 && isalpha((unsigned char)s[n - 1]) && s[n - 2] == '.')
        n -= 2;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) {
            digit_run = true;
        } else if (s[i] == '.' && digit_run) {
            digit_run = false;
        } else {
            return false;
        }
    }
    return digit_run;
}

void alert_tag_clear(alert_tag *t)
{
    free(t->tag);
    free(t->value);
    free(t->sub);
    free(t->display);
    memset(t, 0, sizeof(*t));
}

fh_err alert_tag_parse(const char *tag, alert_tag *out)
{
    const char *rest;
    const char *dot;

    memset(out, 0, sizeof(*out));
    if (!tag || !*tag)
        return FH_ERR_PARSE;
    out->kind = ALERT_TAG_OTHER;
    if (!(out->tag = strdup(tag)))
        goto nomem;

    if (prefix_ci(tag, "gbt22239.") && clause_valid(tag + 9)) {
        size_t n;

        out->kind = ALERT_TAG_CLAUSE;
        if (!(out->value = strdup(tag + 9)) || !(out->display = strdup(tag + 9)))
            goto nomem;
        lower(out->value);
        lower(out->display);
        n = strlen(out->display);
        if (isalpha((unsigned char)out->display[n - 1]))
            out->display[n - 2] = ' '; /* "8.1.4.1.c" -> "8.1.4.1 c" */
        return FH_OK;
    }
    if (prefix_ci(tag, "gbt20986.") && tag[9] && tag[9] != '.') {
        rest = tag + 9;
        dot = strchr(rest, '.');
        out->kind = ALERT_TAG_CATEGORY;
        if (!(out->value = dup_n(rest, dot ? (size_t)(dot - rest) : strlen(rest))))
            goto nomem;
        if (dot && dot[1] && !(out->sub = strdup(dot + 1)))
            goto nomem;
        if (!(out->display = strdup(rest)))
            goto nomem;
        lower(out->value);
        if (out->sub)
            lower(out->sub);
        lower(out->display);
        return FH_OK;
    }
    if (prefix_ci(tag, "attack.") && tag[7]) {
        const char *sub = "tactic";
        char c;

        rest = tag + 7;
        c = (char)tolower((unsigned char)rest[0]);
        if (isdigit((unsigned char)rest[1]) && (c == 't' || c == 'g' || c == 's'))
            sub = c == 't' ? "technique" : c == 'g' ? "group" : "software";
        out->kind = ALERT_TAG_ATTACK;
        if (!(out->value = strdup(rest)) || !(out->sub = strdup(sub)) ||
            !(out->display = strdup(rest)))
            goto nomem;
        lower(out->value);
        if (strcmp(sub, "tactic") != 0)
            for (char *p = out->display; *p; p++)
                *p = (char)toupper((unsigned char)*p); /* MITRE writes T1595.001 */
        return FH_OK;
    }
    if (!(out->value = strdup(tag)) || !(out->display = strdup(tag)))
        goto nomem;
    return FH_OK;
nomem:
    alert_tag_clear(out);
    return FH_ERR_NOMEM;
}

static void free_tags(alert *a)
{
    for (uint32_t i = 0; i < a->ntags; i++)
        alert_tag_clear(&a->tags[i]);
    free(a->tags);
    a->tags = NULL;
    a->ntags = 0;
    a->category = a->subcategory = NULL;
}

fh_err alert_set_tags(alert *a, const char *const *tags, uint32_t ntags)
{
    alert_tag *t = NULL;
    uint32_t n = 0;

    free_tags(a);
    if (ntags) {
        t = calloc(ntags, sizeof(*t));
        if (!t)
            return FH_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < ntags; i++) {
        fh_err err;

        if (!tags[i] || !*tags[i])
            continue; /* an empty tag carries nothing */
        err = alert_tag_parse(tags[i], &t[n]);
        if (err) {
            for (uint32_t j = 0; j < n; j++)
                alert_tag_clear(&t[j]);
            free(t);
            return err;
        }
        n++;
    }
    a->tags = t;
    a->ntags = n;
    for (uint32_t i = 0; i < n; i++)
        if (t[i].kind == ALERT_TAG_CATEGORY) {
            a->category = t[i].value;
            a->subcategory = t[i].sub;
            break;
        }
    return FH_OK;
}

/* ---- alerts ---------------------------------------------------------------------- */

static void side_clear(alert_side *s)
{
    free(s->ip);
    free(s->zone);
    free(s->department);
    free(s->name);
    free(s->segment);
    memset(s, 0, sizeof(*s));
}

static void evidence_clear(alert *a)
{
    for (uint32_t i = 0; i < a->nevidence; i++) {
        free(a->evidence[i].community_id);
        free(a->evidence[i].event);
    }
    a->nevidence = 0;
}

void alert_clear(alert *a)
{
    evidence_clear(a);
    free(a->evidence);
    free_tags(a);
    free(a->rule_id);
    free(a->rule_name);
    free(a->title);
    free(a->group_key);
    free(a->department);
    free(a->sensor);
    free(a->status);
    side_clear(&a->src);
    side_clear(&a->dest);
    memset(a, 0, sizeof(*a));
}

/* Escapes v into dst: control bytes as \xHH, '\\' with '\\', and for a key ',' and '=' too. */
static bool escape(char *dst, size_t dstlen, size_t *off, const char *v, size_t len, bool key)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = *off;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c < 0x20 || c == 0x7f) {
            if (o + 4 >= dstlen)
                return false;
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
            continue;
        }
        if (c == '\\' || (key && (c == ',' || c == '='))) {
            if (o + 1 >= dstlen)
                return false;
            dst[o++] = '\\';
        }
        if (o + 1 >= dstlen)
            return false;
        dst[o++] = (char)c;
    }
    if (o >= dstlen)
        return false;
    dst[o] = '\0';
    *off = o;
    return true;
}

bool alert_key_escape(char *dst, size_t dstlen, size_t *off, const char *v, size_t len)
{
    return escape(dst, dstlen, off, v, len, true);
}

static void bounded_text(char *out, size_t outlen, const char *v, size_t len, bool key)
{
    static const char hex[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    size_t off = 0, keep;

    if (escape(out, outlen, &off, v, len, key))
        return;
    /* prefix (whole characters of the escaped text) + "~" + 16 hex digits */
    keep = outlen > 18 ? outlen - 18 : 0;
    off = 0;
    for (size_t i = 0; i < len; i++) {
        size_t o = off;

        if (!escape(out, keep, &o, v + i, 1, key))
            break;
        off = o;
    }
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)v);
    sha256_digest(&ctx, sizeof(d), d);
    out[off++] = '~';
    for (int i = 0; i < 8; i++) {
        out[off++] = hex[d[i] >> 4];
        out[off++] = hex[d[i] & 15];
    }
    out[off] = '\0';
}

void alert_value_text(char *out, size_t outlen, const char *v, size_t len)
{
    bounded_text(out, outlen, v, len, false);
}

void alert_key_text(char *out, size_t outlen, const char *v, size_t len)
{
    bounded_text(out, outlen, v, len, true);
}

void alert_make_id(const char *rule_id, const char *group_key, int64_t window_start_ms,
                   char out[ALERT_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, window_start_ms);

    sha256_init(&ctx);
    sha256_update(&ctx, strlen(rule_id) + 1, (const uint8_t *)rule_id);
    sha256_update(&ctx, strlen(group_key) + 1, (const uint8_t *)group_key);
    sha256_update(&ctx, (size_t)n, (const uint8_t *)num);
    sha256_digest(&ctx, sizeof(digest), digest);
    for (int i = 0; i < ALERT_ID_LEN / 2; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[ALERT_ID_LEN] = '\0';
}

void alert_format_time(int64_t ms, char out[32])
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    time_t t;
    struct tm tm;
    size_t n;

    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    t = (time_t)sec;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "%" PRId64, ms);
        return;
    }
    n = strftime(out, 32 - 5, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)frac);
}

void alert_json_time(jbuf *b, const char *key, int64_t ms)
{
    char t[32];

    alert_format_time(ms, t);
    jbuf_str(b, key, t);
}

void alert_json_opt(jbuf *b, const char *key, const char *s)
{
    if (s)
        jbuf_str(b, key, s);
}

static void json_side(jbuf *b, const char *key, const alert_side *s)
{
    if (!s->ip && !s->zone && !s->department && !s->name && !s->segment)
        return;
    jbuf_obj_open(b, key);
    alert_json_opt(b, "ip", s->ip);
    alert_json_opt(b, "zone", s->zone);
    alert_json_opt(b, "department", s->department);
    alert_json_opt(b, "asset", s->name);
    alert_json_opt(b, "segment", s->segment);
    jbuf_obj_close(b);
}

fh_err alert_to_json(const alert *a, jbuf *b)
{
    jbuf_reset(b);
    jbuf_obj_open(b, NULL);
    jbuf_str(b, "id", a->id);
    jbuf_str(b, "update", a->opened ? "opened" : "updated");
    jbuf_obj_open(b, "rule");
    alert_json_opt(b, "id", a->rule_id);
    alert_json_opt(b, "name", a->rule_name);
    alert_json_opt(b, "title", a->title);
    jbuf_obj_close(b);
    alert_json_opt(b, "level", alert_level_name(a->level));
    alert_json_opt(b, "status", a->status ? a->status : a->opened ? "new" : NULL);
    alert_json_opt(b, "group_key", a->group_key);
    alert_json_time(b, "window_start", a->window_start_ms);
    alert_json_time(b, "first_seen", a->first_seen_ms);
    alert_json_time(b, "last_seen", a->last_seen_ms);
    jbuf_u64(b, "count", a->count);
    jbuf_u64(b, "hits", a->hits);
    alert_json_opt(b, "department", a->department);
    alert_json_opt(b, "sensor", a->sensor);
    json_side(b, "src", &a->src);
    json_side(b, "dest", &a->dest);
    alert_json_opt(b, "category", a->category);
    alert_json_opt(b, "subcategory", a->subcategory);

    jbuf_arr_open(b, "clauses");
    for (uint32_t i = 0; i < a->ntags; i++)
        if (a->tags[i].kind == ALERT_TAG_CLAUSE) {
            jbuf_obj_open(b, NULL);
            jbuf_str(b, "clause", a->tags[i].value);
            jbuf_str(b, "display", a->tags[i].display);
            jbuf_obj_close(b);
        }
    jbuf_arr_close(b);
    jbuf_arr_open(b, "categories");
    for (uint32_t i = 0; i < a->ntags; i++)
        if (a->tags[i].kind == ALERT_TAG_CATEGORY) {
            jbuf_obj_open(b, NULL);
            jbuf_str(b, "category", a->tags[i].value);
            alert_json_opt(b, "subcategory", a->tags[i].sub);
            jbuf_obj_close(b);
        }
    jbuf_arr_close(b);
    jbuf_arr_open(b, "attack");
    for (uint32_t i = 0; i < a->ntags; i++)
        if (a->tags[i].kind == ALERT_TAG_ATTACK)
            jbuf_str(b, NULL, a->tags[i].value);
    jbuf_arr_close(b);
    jbuf_arr_open(b, "tags");
    for (uint32_t i = 0; i < a->ntags; i++)
        jbuf_str(b, NULL, a->tags[i].tag);
    jbuf_arr_close(b);

    jbuf_arr_open(b, "evidence");
    for (uint32_t i = 0; i < a->nevidence; i++) {
        const alert_evidence *e = &a->evidence[i];

        jbuf_obj_open(b, NULL);
        jbuf_u64(b, "seq", e->seq);
        alert_json_time(b, "timestamp", e->ts_ms);
        alert_json_opt(b, "community_id", e->community_id);
        jbuf_strn(b, "event", e->event ? e->event : "", e->event ? e->event_len : 0);
        if (e->truncated)
            jbuf_bool(b, "truncated", true);
        jbuf_obj_close(b);
    }
    jbuf_arr_close(b);
    jbuf_obj_close(b);
    return jbuf_failed(b) ? FH_ERR_NOMEM : FH_OK;
}

fh_err alert_write_ndjson(FILE *f, jbuf *b, const alert *a)
{
    fh_err err = alert_to_json(a, b);

    if (err)
        return err;
    if (fwrite(b->data, 1, b->len, f) != b->len || fputc('\n', f) == EOF)
        return FH_ERR_IO;
    return FH_OK;
}

/* ---- the book -------------------------------------------------------------------- */

typedef struct entry entry;
struct entry {
    alert a;
    uint64_t hash;
    entry *hnext;               /* hash chain */
    entry *lru_prev, *lru_next; /* lru_head = most recently hit */
    entry *dirty_prev, *dirty_next;
    bool dirty;
};

struct alert_book {
    alert_book_opts o;
    alert_book_ops ops;
    entry **table;
    size_t nbuckets; /* power of two */
    entry *lru_head, *lru_tail;
    entry *dirty_head, *dirty_tail;
    alert_book_stats st;
};

static uint64_t key_hash(const char *rule_id, const char *group_key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)rule_id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* separator no key byte equals */
    for (const unsigned char *p = (const unsigned char *)group_key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

fh_err alert_book_new(alert_book **out, const alert_book_opts *opts, const alert_book_ops *ops)
{
    alert_book *b;

    *out = NULL;
    if (!ops || !ops->emit)
        return FH_ERR_CONFIG;
    b = calloc(1, sizeof(*b));
    if (!b)
        return FH_ERR_NOMEM;
    if (opts)
        b->o = *opts;
    if (!b->o.max_open)
        b->o.max_open = 100000;
    if (!b->o.evidence_first)
        b->o.evidence_first = 10;
    if (!b->o.evidence_max_bytes)
        b->o.evidence_max_bytes = 65536;
    b->ops = *ops;
    b->nbuckets = 64;
    b->table = calloc(b->nbuckets, sizeof(*b->table));
    if (!b->table) {
        free(b);
        return FH_ERR_NOMEM;
    }
    *out = b;
    return FH_OK;
}

static void lru_unlink(alert_book *b, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        b->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        b->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(alert_book *b, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = b->lru_head;
    if (b->lru_head)
        b->lru_head->lru_prev = e;
    else
        b->lru_tail = e;
    b->lru_head = e;
}

static void dirty_unlink(alert_book *b, entry *e)
{
    if (!e->dirty)
        return;
    if (e->dirty_prev)
        e->dirty_prev->dirty_next = e->dirty_next;
    else
        b->dirty_head = e->dirty_next;
    if (e->dirty_next)
        e->dirty_next->dirty_prev = e->dirty_prev;
    else
        b->dirty_tail = e->dirty_prev;
    e->dirty_prev = e->dirty_next = NULL;
    e->dirty = false;
    b->st.dirty--;
}

static void dirty_mark(alert_book *b, entry *e)
{
    if (e->dirty)
        return;
    e->dirty = true;
    e->dirty_next = NULL;
    e->dirty_prev = b->dirty_tail;
    if (b->dirty_tail)
        b->dirty_tail->dirty_next = e;
    else
        b->dirty_head = e;
    b->dirty_tail = e;
    b->st.dirty++;
}

static entry *table_find(const alert_book *b, uint64_t h, const char *rule_id,
                         const char *group_key)
{
    for (entry *e = b->table[h & (b->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->a.rule_id, rule_id) == 0 &&
            strcmp(e->a.group_key, group_key) == 0)
            return e;
    return NULL;
}

static void table_unlink(alert_book *b, entry *e)
{
    entry **pp = &b->table[e->hash & (b->nbuckets - 1)];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
}

/* Doubles the table when it holds more entries than buckets (a failed grow is harmless). */
static void table_grow(alert_book *b)
{
    size_t n = b->nbuckets * 2;
    entry **t;

    if (b->st.open < b->nbuckets)
        return;
    t = calloc(n, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < b->nbuckets; i++) {
        entry *e = b->table[i], *next;

        for (; e; e = next) {
            next = e->hnext;
            e->hnext = t[e->hash & (n - 1)];
            t[e->hash & (n - 1)] = e;
        }
    }
    free(b->table);
    b->table = t;
    b->nbuckets = n;
}

static void entry_drop(alert_book *b, entry *e)
{
    table_unlink(b, e);
    lru_unlink(b, e);
    dirty_unlink(b, e);
    alert_clear(&e->a);
    free(e);
    b->st.open--;
}

static fh_err entry_emit(alert_book *b, entry *e)
{
    fh_err err = b->ops.emit(b->ops.ctx, &e->a);

    if (err)
        return err;
    b->st.emitted++;
    evidence_clear(&e->a);
    e->a.opened = false;
    dirty_unlink(b, e);
    return FH_OK;
}

static fh_err evict_one(alert_book *b)
{
    entry *e = b->lru_tail;
    fh_err err;

    if (!e)
        return FH_OK;
    if (e->dirty && (err = entry_emit(b, e)))
        return err;
    entry_drop(b, e);
    b->st.evicted++;
    return FH_OK;
}

static bool idle_closed(const alert_book *b, const alert *a, int64_t ts_ms)
{
    return b->o.max_idle_ms > 0 && ts_ms - a->last_seen_ms > b->o.max_idle_ms;
}

static const char *derive_department(const alert_hit *h)
{
    const char *named = NULL;

    if (h->department)
        return h->department;
    if (h->src.ip && strcmp(h->group_key, h->src.ip) == 0)
        named = h->src.department;
    else if (h->dest.ip && strcmp(h->group_key, h->dest.ip) == 0)
        named = h->dest.department;
    if (named)
        return named;
    return h->dest.department ? h->dest.department : h->src.department;
}

static fh_err side_fill(alert_side *s, const alert_side_view *v)
{
    bool failed = false;

    if (!s->ip)
        s->ip = dup_or_null(v->ip, &failed);
    if (!s->zone)
        s->zone = dup_or_null(v->zone, &failed);
    if (!s->department)
        s->department = dup_or_null(v->department, &failed);
    if (!s->name)
        s->name = dup_or_null(v->name, &failed);
    if (!s->segment)
        s->segment = dup_or_null(v->segment, &failed);
    return failed ? FH_ERR_NOMEM : FH_OK;
}

/* Fills a new alert from its opening hit (count and hits are added by apply_hit). */
static fh_err open_alert(alert *a, const alert_hit *h)
{
    bool failed = false;
    fh_err err;

    a->window_start_ms = h->correlation ? h->window_start_ms : h->ts_ms;
    alert_make_id(h->rule_id, h->group_key, a->window_start_ms, a->id);
    a->rule_id = dup_or_null(h->rule_id, &failed);
    a->group_key = dup_or_null(h->group_key, &failed);
    a->first_seen_ms = a->last_seen_ms = h->ts_ms;
    a->created_ms = h->ts_ms;
    a->level = h->level;
    a->opened = true;
    if (failed)
        return FH_ERR_NOMEM;
    if ((err = alert_set_tags(a, h->tags, h->ntags)))
        return err;
    return FH_OK;
}

static fh_err add_evidence(alert_book *b, alert *a, const alert_hit *h)
{
    alert_evidence *ev;
    size_t n = h->event ? h->event_len : 0;
    bool truncated = false, failed = false;

    if (!a->evidence) {
        a->evidence = calloc(b->o.evidence_first + 1, sizeof(*a->evidence));
        if (!a->evidence)
            return FH_ERR_NOMEM;
    }
    if (a->hits > b->o.evidence_first && a->nevidence > 0 &&
        a->evidence[a->nevidence - 1].seq > b->o.evidence_first) {
        /* keep only the latest item past the first N */
        ev = &a->evidence[a->nevidence - 1];
        free(ev->community_id);
        free(ev->event);
        b->st.evidence_dropped++;
    } else {
        ev = &a->evidence[a->nevidence++];
    }
    memset(ev, 0, sizeof(*ev));
    if (n > b->o.evidence_max_bytes) {
        n = b->o.evidence_max_bytes;
        while (n > 0 && ((unsigned char)h->event[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
        truncated = true;
        b->st.evidence_truncated++;
    }
    ev->seq = a->hits;
    ev->ts_ms = h->ts_ms;
    ev->truncated = truncated;
    ev->community_id = dup_or_null(h->community_id, &failed);
    ev->event = dup_n(n ? h->event : "", n);
    ev->event_len = n;
    if (failed || !ev->event)
        return FH_ERR_NOMEM;
    return FH_OK;
}

static fh_err apply_hit(alert_book *b, entry *e, const alert_hit *h)
{
    alert *a = &e->a;
    bool failed = false;
    fh_err err;

    /* Rule name, title and level are the opening hit's (or the store's); fill gaps only. */
    if (!a->rule_name)
        a->rule_name = dup_or_null(h->rule_name, &failed);
    if (!a->title)
        a->title = dup_or_null(h->title, &failed);
    if (!a->department)
        a->department = dup_or_null(derive_department(h), &failed);
    if (!a->sensor)
        a->sensor = dup_or_null(h->sensor, &failed);
    if (failed)
        return FH_ERR_NOMEM;
    if ((err = side_fill(&a->src, &h->src)) || (err = side_fill(&a->dest, &h->dest)))
        return err;

    a->count += h->count ? h->count : 1;
    a->hits++;
    if (h->ts_ms < a->first_seen_ms)
        a->first_seen_ms = h->ts_ms;
    if (h->ts_ms > a->last_seen_ms)
        a->last_seen_ms = h->ts_ms;
    a->updated_ms = h->ts_ms;
    if ((err = add_evidence(b, a, h)))
        return err;
    dirty_mark(b, e);
    lru_unlink(b, e);
    lru_push_head(b, e);
    b->st.hits++;
    return FH_OK;
}

/* Makes a new entry (from the store when *loaded, else opened by h) and links it in. */
static fh_err insert_entry(alert_book *b, uint64_t hash, const alert_hit *h, alert *loaded,
                           entry **out)
{
    entry *e;
    fh_err err;

    while (b->st.open >= b->o.max_open)
        if ((err = evict_one(b)))
            return err;
    e = calloc(1, sizeof(*e));
    if (!e)
        return FH_ERR_NOMEM;
    if (loaded) {
        e->a = *loaded;
        memset(loaded, 0, sizeof(*loaded));
        evidence_clear(&e->a); /* the store keeps its own */
        free(e->a.evidence);
        e->a.evidence = NULL;
        e->a.opened = false;
        if (!e->a.ntags && (err = alert_set_tags(&e->a, h->tags, h->ntags)))
            goto fail;
    } else if ((err = open_alert(&e->a, h))) {
        goto fail;
    }
    e->hash = hash;
    e->hnext = b->table[hash & (b->nbuckets - 1)];
    b->table[hash & (b->nbuckets - 1)] = e;
    lru_push_head(b, e);
    b->st.open++;
    table_grow(b);
    *out = e;
    return FH_OK;
fail:
    alert_clear(&e->a);
    free(e);
    return err;
}

fh_err alert_book_hit(alert_book *b, const alert_hit *h, const alert **out)
{
    uint64_t hash;
    entry *e;
    fh_err err;

    if (out)
        *out = NULL;
    if (!h->rule_id || !*h->rule_id || !h->title || !h->group_key || !alert_level_name(h->level))
        return FH_ERR_ARG;
    hash = key_hash(h->rule_id, h->group_key);
    e = table_find(b, hash, h->rule_id, h->group_key);
    if (e && idle_closed(b, &e->a, h->ts_ms)) {
        if (e->dirty && (err = entry_emit(b, e)))
            return err;
        entry_drop(b, e);
        b->st.idle_closed++;
        e = NULL;
    } else if (e) {
        b->st.deduplicated++;
    }
    if (!e && b->ops.load) {
        alert loaded;
        bool found = false;

        memset(&loaded, 0, sizeof(loaded));
        err = b->ops.load(b->ops.ctx, h->rule_id, h->group_key, &loaded, &found);
        if (err) {
            alert_clear(&loaded);
            return err;
        }
        if (found && idle_closed(b, &loaded, h->ts_ms)) {
            b->st.idle_closed++;
            found = false;
        }
        if (found) {
            err = insert_entry(b, hash, h, &loaded, &e);
            alert_clear(&loaded);
            if (err)
                return err;
            b->st.resumed++;
            b->st.deduplicated++;
        } else {
            alert_clear(&loaded);
        }
    }
    if (!e) {
        if ((err = insert_entry(b, hash, h, NULL, &e)))
            return err;
        b->st.opened++;
    }
    if ((err = apply_hit(b, e, h)))
        return err;
    if (out)
        *out = &e->a;
    return FH_OK;
}

fh_err alert_book_flush(alert_book *b)
{
    fh_err err;

    while (b->dirty_head)
        if ((err = entry_emit(b, b->dirty_head)))
            return err;
    return FH_OK;
}

void alert_book_reset(alert_book *b)
{
    while (b->lru_head)
        entry_drop(b, b->lru_head);
}

void alert_book_forget(alert_book *b, const char *rule_id, const char *group_key)
{
    uint64_t h = key_hash(rule_id, group_key);
    entry *e = table_find(b, h, rule_id, group_key);

    if (e)
        entry_drop(b, e);
}

const alert_book_stats *alert_book_get_stats(const alert_book *b)
{
    return &b->st;
}

void alert_book_free(alert_book *b)
{
    if (!b)
        return;
    alert_book_reset(b);
    free(b->table);
    free(b);
}
