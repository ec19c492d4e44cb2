/*
 * smtp.h - the client's side of an SMTP session (server ports 25, 587, 2525, or a client
 * that opens with EHLO/HELO): the envelope (HELO, MAIL FROM, RCPT TO) and each message's
 * bytes, after DATA (dot-unstuffed, up to the lone "." line) or in BDAT chunks. The
 * message itself is read by mime.c (GMime) when it ends; payload.c writes the events.
 *
 * Only the client's bytes are read: a DATA the server refused still reads as a message
 * (it then ends with the session, unparsed as MIME or with no attachment). STARTTLS ends
 * the parsing: what follows is TLS. Bounded: command lines of at most SMTP_LINE_MAX bytes
 * (longer ones are skipped to their end), SMTP_MAX_RCPT recipients kept per message (the
 * rest counted), at most SMTP_MAX_MESSAGES messages per session.
 */
#ifndef FH_SMTP_H
#define FH_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LINE_MAX        1024
#define SMTP_ADDR_MAX        256
#define SMTP_MAX_RCPT        16
#define SMTP_MAX_MESSAGES    1024
#define SMTP_MAX_ATTACHMENTS 32 /* names listed in a message's smtp event */

typedef enum { SMTP_MODE_CMD, SMTP_MODE_DATA, SMTP_MODE_BDAT, SMTP_MODE_DONE } smtp_mode;

typedef struct {
    char helo[SMTP_ADDR_MAX];
    char mail_from[SMTP_ADDR_MAX];
    char rcpt[SMTP_MAX_RCPT][SMTP_ADDR_MAX];
    uint32_t nrcpt; /* recipients given (more than SMTP_MAX_RCPT are counted, not kept) */
} smtp_envelope;

typedef enum {
    SMTP_EV_BEGIN, /* a message starts (DATA or the first BDAT) */
    SMTP_EV_BODY,  /* data, len: the message's next bytes */
    SMTP_EV_END,   /* the message ended: complete (the "." line, BDAT LAST) or not */
} smtp_ev_kind;

typedef struct {
    smtp_ev_kind kind;
    const smtp_envelope *env;
    const uint8_t *data;
    size_t len;
    bool complete; /* END */
} smtp_ev;

typedef void (*smtp_ev_cb)(const smtp_ev *e, void *arg);

typedef struct {
    smtp_mode mode;
    char line[SMTP_LINE_MAX];
    uint16_t len;
    bool skipping;      /* in a command line longer than SMTP_LINE_MAX */
    bool bol;           /* DATA: at the start of a line */
    uint8_t dot;        /* DATA: 1 after a '.' at the start of a line, 2 after ".\r" */
    uint64_t bdat_left; /* BDAT: bytes of the chunk still to come */
    bool bdat_last;
    bool in_message;
    uint32_t messages;
    smtp_envelope env;
} smtp_state;

/* True when data (a flow's first bytes to the server) opens an SMTP session. */
bool smtp_is_start(const uint8_t *data, size_t len);
void smtp_init(smtp_state *s);
/* The client's bytes in stream order; gap: bytes are missing before them (a message being
 * read ends incomplete; parsing stops). */
void smtp_data(smtp_state *s, const uint8_t *data, size_t len, bool gap, smtp_ev_cb cb, void *arg);
/* The session ended: a message being read ends incomplete. */
void smtp_end(smtp_state *s, smtp_ev_cb cb, void *arg);

#endif
