/*
 * mime.c - email messages with GMime 3 (see mime.h). Only this file includes gmime.h.
 */
#include "mime.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    g_mime_init();
}

void mime_init(void)
{
    pthread_once(&once, init_once);
}

/* How many times the text names a type that nests (multipart/..., message/rfc822),
 * whatever the case; counting stops past limit. */
static unsigned nesting_types(const uint8_t *p, size_t n, unsigned limit)
{
    static const char *const words[] = {"multipart/", "message/rfc822"};
    unsigned count = 0;

    for (size_t i = 0; i < n && count <= limit; i++) {
        if ((p[i] | 0x20) != 'm')
            continue;
        for (size_t w = 0; w < 2; w++) {
            size_t l = strlen(words[w]);
            if (n - i >= l && !strncasecmp((const char *)p + i, words[w], l)) {
                count++;
                break;
            }
        }
    }
    return count;
}

/* Lines that start with "--" (each could delimit a part); counting stops past limit. */
static unsigned delimiter_lines(const uint8_t *p, size_t n, unsigned limit)
{
    unsigned count = n >= 2 && p[0] == '-' && p[1] == '-';
    const uint8_t *q = p, *end = p + n;

    while (count <= limit && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        q++;
        if (end - q >= 2 && q[0] == '-' && q[1] == '-')
            count++;
    }
    return count;
}

typedef struct {
    const mime_callbacks *cb;
    int depth;
} walk_ctx;

static void on_part(GMimeObject *parent, GMimeObject *part, gpointer user);

static void walk_message(GMimeMessage *m, walk_ctx *w)
{
    if (w->depth >= MIME_MAX_DEPTH)
        return;
    w->depth++;
    g_mime_message_foreach(m, on_part, w);
    w->depth--;
}

static void on_part(GMimeObject *parent, GMimeObject *part, gpointer user)
{
    walk_ctx *w = user;
    GMimePart *leaf;
    GMimeDataWrapper *content;
    GMimeStream *out;
    GByteArray *bytes;
    char *type;
    mime_attachment a;

    (void)parent;
    if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage *sub = g_mime_message_part_get_message((GMimeMessagePart *)part);
        if (sub)
            walk_message(sub, w);
        return;
    }
    if (!GMIME_IS_PART(part))
        return; /* a multipart: its parts come one by one */
    leaf = (GMimePart *)part;
    a.filename = g_mime_part_get_filename(leaf);
    if (!a.filename && !g_mime_part_is_attachment(leaf))
        return; /* a body, not a file */
    content = g_mime_part_get_content(leaf);
    out = g_mime_stream_mem_new();
    if (content)
        g_mime_data_wrapper_write_to_stream(content, out); /* decodes */
    bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)out);
    type = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(part));
    if (type)
        for (char *c = type; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    a.content_type = type ? type : "application/octet-stream";
    a.data = bytes ? bytes->data : (const uint8_t *)"";
    a.len = bytes ? bytes->len : 0;
    w->cb->attachment(&a, w->cb->arg);
    g_free(type);
    g_object_unref(out);
}

static char *addresses(InternetAddressList *l)
{
    return l && internet_address_list_length(l) > 0
               ? internet_address_list_to_string(l, NULL, FALSE)
               : NULL;
}

mime_result mime_parse(const uint8_t *msg, size_t len, const mime_callbacks *cb)
{
    GMimeStream *in;
    GMimeParser *parser;
    GMimeMessage *m;
    walk_ctx w = {cb, 0};
    mime_headers h;
    char *from, *to, *cc;

    if (nesting_types(msg, len, MIME_MAX_PARTS) > MIME_MAX_PARTS ||
        delimiter_lines(msg, len, MIME_MAX_DELIMITERS) > MIME_MAX_DELIMITERS)
        return MIME_TOO_COMPLEX;
    mime_init();
    in = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
    parser = g_mime_parser_new_with_stream(in);
    g_object_unref(in);
    m = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    if (!m)
        return MIME_ERROR;
    walk_message(m, &w);
    from = addresses(g_mime_message_get_from(m));
    to = addresses(g_mime_message_get_to(m));
    cc = addresses(g_mime_message_get_cc(m));
    h.from = from;
    h.to = to;
    h.cc = cc;
    h.subject = g_mime_message_get_subject(m);
    h.message_id = g_mime_message_get_message_id(m);
    h.x_mailer = g_mime_object_get_header((GMimeObject *)m, "X-Mailer");
    cb->headers(&h, cb->arg);
    g_free(from);
    g_free(to);
    g_free(cc);
    g_object_unref(m);
    return MIME_OK;
}
