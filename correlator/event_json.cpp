/*
 * event_json.cpp - decodes one JSON event into the value slots of the fields rules
 * reference (simdjson On-Demand). The only C++ in the project, behind the C
 * interface of event_json.h. Design notes: README-event.md.
 *
 * At creation the field table's paths become a trie of segments ("geo.dest.country"
 * is root -> geo -> dest -> country); each edge is an entry of one open-addressing
 * hash table keyed by (parent node, segment). Decoding walks the document's objects
 * once: every key of an object is looked up among the children of the current trie
 * node; a key that is no prefix of any path is not decoded, and On-Demand skips its
 * value by counting brackets. Nothing is allocated per event: the padded copy of the
 * text, the simdjson parser and the list-item arena grow to the largest event seen
 * (bounded by EVENT_MAX_BYTES) and are reused.
 *
 * Errors use simdjson's error codes, never exceptions; the only exception that can
 * arise is std::bad_alloc inside simdjson when a buffer grows, caught at the C
 * boundary and reported as FH_ERR_NOMEM.
 */
#include <simdjson.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
#include "../common/fh_error.h"
#include "event.h"
}
#include "event_json.h"

using namespace simdjson;

#define BUF_INITIAL (16u * 1024)

/* A trie node: a path prefix. */
typedef struct {
    uint32_t slot;   /* field id when a path ends here, else FIELD_NONE */
    uint32_t nchild; /* 0: a leaf, its object values are not entered */
    bool deep;       /* has grandchildren: a dotted key ("a.b") may match below */
    bool is_ts;      /* the top-level "timestamp" */
} tnode;

/* A trie edge, one entry of the hash table; child 0 marks an empty entry. */
typedef struct {
    uint64_t h;
    uint32_t parent, child;
    const char *seg;
    uint32_t len;
} tedge;

struct event_decoder {
    const field_table *ft = nullptr;
    ondemand::parser parser;

    char *buf = nullptr; /* the event's text, then SIMDJSON_PADDING zero bytes */
    size_t cap = 0;      /* text bytes buf can hold */
    size_t len = 0;

    sv *slots = nullptr;         /* one per field id known at creation */
    uint8_t *flat = nullptr;     /* slot was set through a dotted key (a nested key overrides it) */
    uint32_t *touched = nullptr; /* slots set by this event, reset by the next */
    uint32_t nslots = 0, ntouched = 0;
    bool exposed = false; /* slots were handed out for writing: reset all of them */

    tnode *nodes = nullptr;
    uint32_t nnodes = 0;
    tedge *edges = nullptr;
    uint32_t edge_mask = 0;
    char *segs = nullptr; /* segment text of the edges */

    sv **blocks = nullptr; /* list-item arena: blocks of EVENT_LIST_MAX items */
    uint32_t nblocks = 0, cur_block = 0, cur_used = 0;

    int64_t ts_ms = 0;
    bool ts_seen = false;

    event_decoder_stats stats = {0, 0, 0};

    explicit event_decoder(size_t max) noexcept : parser(max)
    {
    }
};

/* ---- the trie -------------------------------------------------------------------------------- */

static inline uint64_t load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t load32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/*
 * Hash of (parent node, segment). Reads only s[0..n), in whole words where it can
 * (overlapping loads for the tail: no byte-wise copy into a word, which would stall
 * on store forwarding).
 */
static inline uint64_t seg_hash(uint32_t parent, const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)parent << 32) ^ n;
    const char *end = s + n;
    uint64_t w;
    if (n >= 8) {
        for (; end - s > 8; s += 8) {
            h = (h ^ load64(s)) * 0xff51afd7ed558ccdull;
            h ^= h >> 29;
        }
        w = load64(end - 8);
    } else if (n >= 4) {
        w = load32(s) << 32 | load32(end - 4);
    } else if (n) {
        w = (uint64_t)(uint8_t)s[0] << 16 | (uint64_t)(uint8_t)s[n >> 1] << 8 | (uint8_t)end[-1];
    } else {
        w = 0;
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

/* a[0..n) == b[0..n), in words (the keys are short; no call into libc). */
static inline bool seg_equal(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load64(a + i) != load64(b + i))
                return false;
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4)
        return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The child of node parent named s[0..n), or 0. */
static inline uint32_t trie_child(const event_decoder *d, uint32_t parent, const char *s, size_t n)
{
    uint64_t h = seg_hash(parent, s, n);
    for (uint32_t i = (uint32_t)h & d->edge_mask;; i = (i + 1) & d->edge_mask) {
        const tedge *e = &d->edges[i];
        if (!e->child)
            return 0;
        if (e->h == h && e->parent == parent && e->len == n && seg_equal(e->seg, s, n))
            return e->child;
    }
}

/* Adds (or finds) the child seg of parent; the table is sized so it never fills. */
static uint32_t trie_add(event_decoder *d, uint32_t parent, const char *seg, uint32_t n)
{
    uint32_t c = trie_child(d, parent, seg, n);
    if (c)
        return c;
    uint64_t h = seg_hash(parent, seg, n);
    uint32_t i = (uint32_t)h & d->edge_mask;
    while (d->edges[i].child)
        i = (i + 1) & d->edge_mask;
    c = d->nnodes++;
    d->nodes[c] = tnode{FIELD_NONE, 0, false, false};
    d->edges[i] = tedge{h, parent, c, seg, n};
    d->nodes[parent].nchild++;
    return c;
}

/* Builds the trie of every path in d->ft, plus the top-level "timestamp". */
static fh_err trie_build(event_decoder *d)
{
    const field_table *ft = d->ft;
    size_t nseg = 1, text = sizeof("timestamp");
    for (uint32_t id = 0; id < ft->n; id++) {
        const char *p = ft->names[id];
        for (; *p; p++)
            nseg += *p == '.';
        nseg++;
        text += (size_t)(p - ft->names[id]) + 1;
    }
    uint32_t nedges = 16;
    while (nedges < 2 * nseg)
        nedges <<= 1;
    d->nodes = (tnode *)calloc(nseg + 1, sizeof(tnode));
    d->edges = (tedge *)calloc(nedges, sizeof(tedge));
    d->segs = (char *)malloc(text);
    if (!d->nodes || !d->edges || !d->segs)
        return FH_ERR_NOMEM;
    d->edge_mask = nedges - 1;
    d->nodes[0] = tnode{FIELD_NONE, 0, false, false};
    d->nnodes = 1;

    char *w = d->segs;
    memcpy(w, "timestamp", sizeof("timestamp"));
    d->nodes[trie_add(d, 0, w, 9)].is_ts = true;
    w += sizeof("timestamp");

    for (uint32_t id = 0; id < ft->n; id++) {
        size_t n = strlen(ft->names[id]);
        memcpy(w, ft->names[id], n + 1);
        uint32_t node = 0;
        const char *seg = w;
        for (;;) {
            const char *dot = (const char *)memchr(seg, '.', (size_t)(w + n - seg));
            const char *end = dot ? dot : w + n;
            node = trie_add(d, node, seg, (uint32_t)(end - seg));
            if (!dot)
                break;
            seg = dot + 1;
        }
        d->nodes[node].slot = id;
        w += n + 1;
    }
    /* deep: some child has children of its own */
    for (uint32_t i = 0; i <= d->edge_mask; i++) {
        const tedge *e = &d->edges[i];
        if (e->child && d->nodes[e->child].nchild)
            d->nodes[e->parent].deep = true;
    }
    return FH_OK;
}

/* The node a dotted key ("geo.dest.country") reaches from node, or 0. */
static uint32_t trie_dotted(const event_decoder *d, uint32_t node, const char *k, size_t n)
{
    const char *end = k + n;
    for (;;) {
        const char *dot = (const char *)memchr(k, '.', (size_t)(end - k));
        const char *segend = dot ? dot : end;
        node = trie_child(d, node, k, (size_t)(segend - k));
        if (!node || !dot)
            return node;
        k = dot + 1;
    }
}

/* ---- slots and the list arena ---------------------------------------------------------------- */

static void slots_reset(event_decoder *d)
{
    if (d->exposed) {
        for (uint32_t i = 0; i < d->nslots; i++)
            d->slots[i].type = SV_ABSENT;
    } else {
        for (uint32_t i = 0; i < d->ntouched; i++)
            d->slots[d->touched[i]].type = SV_ABSENT;
    }
    d->ntouched = 0;
}

/*
 * The slot to write for field id, or NULL when this event already set it: the first
 * value wins, except that a nested key overrides a dotted one. The caller writes a
 * non-absent value into the slot it gets.
 */
static inline sv *slot_claim(event_decoder *d, uint32_t id, bool flat)
{
    sv *s = &d->slots[id];
    if (s->type != SV_ABSENT) {
        if (flat || !d->flat[id])
            return nullptr;
    } else if (d->ntouched < d->nslots) {
        d->touched[d->ntouched++] = id;
    } else {
        d->exposed = true; /* cannot happen; stay correct anyway */
    }
    d->flat[id] = flat;
    return s;
}

/* Makes sure arena block b exists. */
static bool arena_block(event_decoder *d, uint32_t b)
{
    if (b < d->nblocks)
        return true;
    sv **nb = (sv **)realloc(d->blocks, (b + 1) * sizeof(*nb));
    if (!nb)
        return false;
    d->blocks = nb;
    nb[b] = (sv *)malloc(EVENT_LIST_MAX * sizeof(sv));
    if (!nb[b])
        return false;
    d->nblocks = b + 1;
    return true;
}

/* ---- values ---------------------------------------------------------------------------------- */

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A number token (JSON grammar) that simdjson refused: more than 64 bits or out of range. */
static bool number_grammar_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t st = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t st = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return false;
    }
    return i == n;
}

/*
 * A string value without escapes is viewed in place (the decoder's copy of the text);
 * one with escapes is unescaped by simdjson into its string buffer. Both live until
 * the next event_decode.
 */
static inline error_code get_str(ondemand::value &v, std::string_view &out)
{
    std::string_view tok = v.raw_json_token();
    size_t n = tok.size();
    while (n > 0 && is_ws(tok[n - 1]))
        n--;
    if (n >= 2 && tok[0] == '"' && tok[n - 1] == '"' && !memchr(tok.data() + 1, '\\', n - 2)) {
        out = std::string_view(tok.data() + 1, n - 2);
        return SUCCESS;
    }
    return v.get_string().get(out);
}

/* Decodes a string, number, boolean or null into *out (type t, from v.type()). */
static error_code decode_scalar(ondemand::value &v, ondemand::json_type t, sv *out)
{
    error_code e;
    *out = sv{};
    switch (t) {
    case ondemand::json_type::string: {
        std::string_view s;
        if ((e = get_str(v, s)))
            return e;
        out->type = SV_STR;
        out->s = s.data();
        out->len = s.size();
        return SUCCESS;
    }
    case ondemand::json_type::number: {
        std::string_view tok = v.raw_json_token();
        size_t n = tok.size();
        while (n > 0 && is_ws(tok[n - 1]))
            n--;
        ondemand::number num;
        e = v.get_number().get(num);
        if (!e) {
            switch (num.get_number_type()) {
            case ondemand::number_type::signed_integer:
                out->is_int = true;
                out->i = num.get_int64();
                out->num = (double)out->i;
                break;
            case ondemand::number_type::unsigned_integer:
                out->num = (double)num.get_uint64();
                break;
            default:
                out->num = num.get_double();
                break;
            }
        } else if (e == NUMBER_ERROR && number_grammar_ok(tok.data(), n)) {
            /* beyond 64 bits or out of double range; the token ends at a delimiter */
            out->num = strtod(tok.data(), nullptr);
        } else {
            return e;
        }
        out->type = SV_NUM;
        out->s = tok.data();
        out->len = n;
        return SUCCESS;
    }
    case ondemand::json_type::boolean: {
        bool b;
        if ((e = v.get_bool().get(b)))
            return e;
        out->type = SV_BOOL;
        out->b = b;
        return SUCCESS;
    }
    case ondemand::json_type::null: {
        bool isnull;
        if ((e = v.is_null().get(isnull)))
            return e;
        if (!isnull)
            return N_ATOM_ERROR;
        out->type = SV_NULL;
        return SUCCESS;
    }
    default:
        return INCORRECT_TYPE;
    }
}

/* An array into SV_LIST: its scalar items, at most EVENT_LIST_MAX, in the arena. */
static error_code decode_list(event_decoder *d, ondemand::value &v, sv *out)
{
    ondemand::array arr;
    error_code e = v.get_array().get(arr);
    if (e)
        return e;
    uint32_t blk = d->cur_block, start = d->cur_used, n = 0;
    if (!arena_block(d, blk))
        return MEMALLOC;
    bool truncated = false;
    for (auto ir : arr) {
        if ((e = ir.error()))
            return e;
        ondemand::value &item = ir.value_unsafe();
        ondemand::json_type t;
        if ((e = item.type().get(t)))
            return e;
        if (t == ondemand::json_type::array || t == ondemand::json_type::object)
            continue; /* skipped by the iterator */
        if (n == EVENT_LIST_MAX) {
            truncated = true;
            continue;
        }
        if (start + n == EVENT_LIST_MAX) { /* block full: move this list to the next */
            if (!arena_block(d, blk + 1))
                return MEMALLOC;
            memcpy(d->blocks[blk + 1], d->blocks[blk] + start, n * sizeof(sv));
            blk++;
            start = 0;
        }
        if ((e = decode_scalar(item, t, &d->blocks[blk][start + n])))
            return e;
        n++;
    }
    d->cur_block = blk;
    d->cur_used = start + n;
    *out = sv{};
    out->type = SV_LIST;
    out->items = d->blocks[blk] + start;
    out->len = n;
    if (truncated)
        d->stats.lists_truncated++;
    return SUCCESS;
}

static error_code walk_object(event_decoder *d, ondemand::object &obj, uint32_t node, bool flat);

/* The value v of trie node c. */
static error_code decode_value(event_decoder *d, ondemand::value &v, uint32_t c, bool flat)
{
    const tnode *n = &d->nodes[c];
    ondemand::json_type t;
    error_code e = v.type().get(t);
    if (e)
        return e;
    sv *out = n->slot != FIELD_NONE ? slot_claim(d, n->slot, flat) : nullptr;

    switch (t) {
    case ondemand::json_type::object: {
        if (out) {
            *out = sv{};
            out->type = SV_OBJECT;
        }
        if (!n->nchild)
            return SUCCESS;
        ondemand::object o;
        if ((e = v.get_object().get(o)))
            return e;
        return walk_object(d, o, c, flat);
    }
    case ondemand::json_type::array:
        return out ? decode_list(d, v, out) : SUCCESS;
    case ondemand::json_type::string:
        if (n->is_ts && !d->ts_seen) {
            std::string_view s;
            if ((e = get_str(v, s)))
                return e;
            int64_t ms;
            d->ts_seen = true;
            if (event_parse_time(s.data(), s.size(), &ms))
                d->ts_ms = ms;
        }
        return out ? decode_scalar(v, t, out) : SUCCESS;
    default:
        return out ? decode_scalar(v, t, out) : SUCCESS;
    }
}

/*
 * The first '"' or '\\' at or after k, 8 bytes at a time: the text is followed by
 * SIMDJSON_PADDING zero bytes, so whole-word reads stay inside the buffer; a key is
 * always closed before the end of a document simdjson accepted.
 */
static inline const char *key_end(const char *k, const char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (const char *p = k; p < end; p += 8) {
        uint64_t w = load64(p), a = w ^ (ones * '"'), b = w ^ (ones * '\\');
        uint64_t m = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (m) {
            const char *q = p + (__builtin_ctzll(m) >> 3);
            return q < end ? q : end;
        }
    }
    return end;
}

/* Every key of obj that leads somewhere from trie node `node`; the rest is skipped. */
static error_code walk_object(event_decoder *d, ondemand::object &obj, uint32_t node, bool flat)
{
    const char *text_end = d->buf + d->len;
    error_code e;
    for (auto fr : obj) {
        if ((e = fr.error()))
            return e;
        ondemand::field &f = fr.value_unsafe();
        /* the key in place: it ends at the first quote unless it has escapes */
        const char *k = f.key().raw();
        const char *q = key_end(k, text_end);
        std::string_view key(k, (size_t)(q - k));
        if (*q != '"') { /* escaped: let simdjson unescape it */
            if ((e = f.unescaped_key().get(key)))
                return e;
        }

        uint32_t c = trie_child(d, node, key.data(), key.size());
        bool cflat = flat;
        if (!c) {
            if (!d->nodes[node].deep || !memchr(key.data(), '.', key.size()))
                continue;
            c = trie_dotted(d, node, key.data(), key.size());
            if (!c)
                continue;
            cflat = true;
        }
        if ((e = decode_value(d, f.value(), c, cflat)))
            return e;
    }
    return SUCCESS;
}

/* ---- the C interface ------------------------------------------------------------------------- */

static const char *error_name(error_code e)
{
    switch (e) {
    case TAPE_ERROR:
        return "TAPE_ERROR";
    case DEPTH_ERROR:
        return "DEPTH_ERROR";
    case STRING_ERROR:
        return "STRING_ERROR";
    case T_ATOM_ERROR:
        return "T_ATOM_ERROR";
    case F_ATOM_ERROR:
        return "F_ATOM_ERROR";
    case N_ATOM_ERROR:
        return "N_ATOM_ERROR";
    case NUMBER_ERROR:
        return "NUMBER_ERROR";
    case UTF8_ERROR:
        return "UTF8_ERROR";
    case EMPTY:
        return "EMPTY";
    case UNESCAPED_CHARS:
        return "UNESCAPED_CHARS";
    case UNCLOSED_STRING:
        return "UNCLOSED_STRING";
    case INCORRECT_TYPE:
        return "INCORRECT_TYPE";
    case INCOMPLETE_ARRAY_OR_OBJECT:
        return "INCOMPLETE_ARRAY_OR_OBJECT";
    case TRAILING_CONTENT:
        return "TRAILING_CONTENT";
    default:
        return "ERROR";
    }
}

/* Counts a refused event, clears what it set and writes the reason. */
__attribute__((format(printf, 5, 6))) static fh_err fail(event_decoder *d, fh_err err, char *msg,
                                                         size_t msglen, const char *fmt, ...)
{
    slots_reset(d);
    d->stats.errors++;
    if (msg && msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return err;
}

extern "C" fh_err event_decoder_new(event_decoder **out, const field_table *ft)
{
    *out = nullptr;
    event_decoder *d = new (std::nothrow) event_decoder(EVENT_MAX_BYTES);
    if (!d)
        return FH_ERR_NOMEM;
    d->ft = ft;
    d->nslots = ft->n;
    d->slots = (sv *)calloc(d->nslots ? d->nslots : 1, sizeof(sv));
    d->flat = (uint8_t *)calloc(d->nslots ? d->nslots : 1, 1);
    d->touched = (uint32_t *)calloc(d->nslots ? d->nslots : 1, sizeof(uint32_t));
    d->cap = BUF_INITIAL;
    d->buf = (char *)malloc(d->cap + SIMDJSON_PADDING);
    if (!d->slots || !d->flat || !d->touched || !d->buf || trie_build(d) != FH_OK ||
        d->parser.allocate(d->cap) != SUCCESS) {
        event_decoder_free(d);
        return FH_ERR_NOMEM;
    }
    *out = d;
    return FH_OK;
}

extern "C" void event_decoder_free(event_decoder *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->nblocks; i++)
        free(d->blocks[i]);
    free(d->blocks);
    free(d->segs);
    free(d->edges);
    free(d->nodes);
    free(d->buf);
    free(d->touched);
    free(d->flat);
    free(d->slots);
    delete d;
}

extern "C" sv *event_decoder_slots(event_decoder *d)
{
    d->exposed = true;
    return d->slots;
}

extern "C" void event_decoder_get_stats(const event_decoder *d, event_decoder_stats *st)
{
    *st = d->stats;
}

/* Grows the padded copy buffer (and the parser with it) to hold len bytes. */
static bool buf_reserve(event_decoder *d, size_t len)
{
    if (len <= d->cap)
        return true;
    size_t cap = d->cap * 2 > len ? d->cap * 2 : len;
    if (cap > EVENT_MAX_BYTES)
        cap = EVENT_MAX_BYTES;
    char *nb = (char *)realloc(d->buf, cap + SIMDJSON_PADDING);
    if (!nb)
        return false;
    d->buf = nb;
    d->cap = cap;
    return d->parser.allocate(cap) == SUCCESS;
}

extern "C" fh_err event_decode(event_decoder *d, const char *json, size_t len, event_view *ev,
                               char *err, size_t errlen)
{
    slots_reset(d);
    d->ts_ms = 0;
    d->ts_seen = false;
    d->cur_block = 0;
    d->cur_used = 0;
    d->len = 0;
    *ev = event_view{d->slots, 0, d->buf, 0, 0};

    if (len > EVENT_MAX_BYTES) {
        return fail(d, FH_ERR_PARSE, err, errlen, "event too large (%zu bytes, limit %u)", len,
                    EVENT_MAX_BYTES);
    }
    if (!buf_reserve(d, len))
        return fail(d, FH_ERR_NOMEM, err, errlen, "out of memory for the event buffer");
    if (len)
        memcpy(d->buf, json, len);
    memset(d->buf + len, 0, SIMDJSON_PADDING);
    d->len = len;
    ev->raw = d->buf;
    ev->raw_len = len;

    error_code e;
    try {
        ondemand::document doc;
        if ((e = d->parser.iterate(d->buf, len, d->cap + SIMDJSON_PADDING).get(doc)))
            goto bad;
        ondemand::object obj;
        if ((e = doc.get_object().get(obj))) {
            if (e == INCORRECT_TYPE)
                return fail(d, FH_ERR_PARSE, err, errlen, "not a JSON object");
            goto bad;
        }
        if ((e = walk_object(d, obj, 0, false)))
            goto bad;
        if (doc.current_location().error() != OUT_OF_BOUNDS) {
            e = TRAILING_CONTENT;
            goto bad;
        }
    } catch (...) { /* std::bad_alloc from a simdjson buffer */
        return fail(d, FH_ERR_NOMEM, err, errlen, "out of memory in the JSON parser");
    }
    ev->vals = d->slots;
    ev->nvals = d->nslots;
    ev->ts_ms = d->ts_ms;
    d->stats.decoded++;
    return FH_OK;

bad:
    if (e == MEMALLOC || e == CAPACITY)
        return fail(d, FH_ERR_NOMEM, err, errlen, "out of memory in the JSON parser");
    return fail(d, FH_ERR_PARSE, err, errlen, "malformed JSON: %s (%s)", error_name(e),
                error_message(e));
}
