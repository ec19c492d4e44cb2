/*
 * ftp.h - the client's side of an FTP control connection (server port 21): the commands
 * that move data or name files (USER, PORT, EPRT, RETR, STOR, STOU, APPE, DELE, RNFR,
 * RNTO, MKD, RMD, SITE) become `ftp` events; a PORT or EPRT that names another host than
 * the client is an FTP bounce (the server is made to connect to a third host: scans and
 * relayed attacks, CERT CA-1997-27). PASS is never written.
 *
 * The server's replies are read for the data connections they announce (227 to PASV,
 * 229 to EPSV): with PORT/EPRT and the transfer commands (and LIST, NLST, MLSD, which are
 * not events: `quiet`), payload.c tells ftp_expect.c where the files will go.
 *
 * Bounded: lines of at most FTP_LINE_MAX bytes are read (longer ones are skipped to their
 * end), at most FTP_MAX_EVENTS events per connection.
 */
#ifndef FH_FTP_H
#define FH_FTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FTP_LINE_MAX   512
#define FTP_MAX_EVENTS 256

/* A line being read (one per direction). */
typedef struct {
    char buf[FTP_LINE_MAX];
    uint16_t len;
    bool skipping; /* in a line longer than FTP_LINE_MAX, or cut by a gap */
    bool ready;    /* buf holds a whole line (to be replaced by the next byte) */
} ftp_line;

typedef struct {
    ftp_line cmd;   /* the client's command line */
    ftp_line reply; /* the server's reply line */
    uint16_t events;
} ftp_state;

typedef struct {
    const char *command; /* upper case */
    const char *arg;     /* the rest of the line, without CRLF (may be empty) */
    size_t arg_len;
    bool active;    /* PORT / EPRT: the address below was parsed */
    int af;         /* AF_INET or AF_INET6 */
    uint8_t ip[16]; /* the address the server is told to connect to */
    uint16_t port;
    bool bounce;   /* that address is not the client's */
    bool quiet;    /* not an ftp event: LIST/NLST/MLSD, and the server's passive replies */
    bool transfer; /* opens a data connection: RETR, STOR, STOU, APPE, LIST, NLST, MLSD */
    bool passive;  /* the server's 227/229: ip and port (af 0: 229, no address given) */
} ftp_ev;

typedef void (*ftp_ev_cb)(const ftp_ev *e, void *arg);

void ftp_init(ftp_state *s);
/* The client's bytes; client (4 or 16 bytes, per ip_version) tells what a bounce is. */
void ftp_data(ftp_state *s, const uint8_t *client, int ip_version, const uint8_t *data,
              uint32_t len, bool gap, ftp_ev_cb cb, void *arg);
/* True when no more events will come (the event limit was reached). */
bool ftp_done(const ftp_state *s);
/* True for the commands whose data connection carries a listing, not a file. */
bool ftp_command_is_listing(const char *cmd);
/* The server's bytes: its 227 and 229 replies become passive ftp_ev (quiet). */
void ftp_reply_data(ftp_state *s, const uint8_t *data, uint32_t len, bool gap, ftp_ev_cb cb,
                    void *arg);

#endif
