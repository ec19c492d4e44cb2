/*
 * mime.h - an email message (RFC 5322 with MIME) read with GMime 3: the header fields a
 * SOC reads (From, To, Cc, Subject, Message-ID, X-Mailer; encoded words decoded to UTF-8)
 * and its attachments, decoded from their transfer encoding (base64, quoted-printable,
 * uuencode), each handed over whole.
 *
 * An attachment is a leaf part with a file name (Content-Disposition filename or
 * Content-Type name) or a disposition "attachment"; messages attached as message/rfc822
 * are read too, MIME_MAX_DEPTH deep. The text the message is read from is
 * attacker-controlled: GMime builds a tree of its parts recursively, and an object per
 * part, so a message that names more than MIME_MAX_PARTS multipart or message/rfc822
 * types, or has more than MIME_MAX_DELIMITERS lines that could delimit a part, is not read
 * at all (MIME_TOO_COMPLEX), whatever its nesting.
 */
#ifndef FH_MIME_H
#define FH_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_MAX_DEPTH      4
#define MIME_MAX_PARTS      256  /* multipart and message/rfc822 types named */
#define MIME_MAX_DELIMITERS 4096 /* lines that start with "--": a part each, at most */

typedef struct {
    const char *from, *to, *cc; /* address lists as text, or NULL */
    const char *subject, *message_id, *x_mailer;
} mime_headers;

typedef struct {
    const char *filename;     /* may be NULL (an attachment by disposition only) */
    const char *content_type; /* "type/subtype", lower case */
    const uint8_t *data;      /* decoded */
    size_t len;
} mime_attachment;

typedef struct {
    void (*attachment)(const mime_attachment *a, void *arg);
    /* last, before everything is freed */
    void (*headers)(const mime_headers *h, void *arg);
    void *arg;
} mime_callbacks;

typedef enum { MIME_OK, MIME_TOO_COMPLEX, MIME_ERROR } mime_result;

/* Once per process, before any mime_parse (any thread). */
void mime_init(void);
mime_result mime_parse(const uint8_t *msg, size_t len, const mime_callbacks *cb);

#endif
