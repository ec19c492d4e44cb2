/*
 * ftp_expect.h - FTP data connections announced on control connections, so that the
 * file a data connection carries gets the name its RETR/STOR gave (fileinfo source
 * "ftp", docs/events.md).
 *
 * A control connection announces where its next data connection will go: the server's
 * reply to PASV/EPSV (a port on the control connection's server; payload.c ignores the
 * address a 227 names), or the client's PORT/EPRT (an address and port, where the server
 * will connect from port 20). The control connection's worker adds the endpoint;
 * the transfer command (RETR, STOR, STOU, APPE, or LIST/NLST/MLSD for a listing) names
 * its newest endpoint. A new TCP flow whose server side is an announced endpoint is a
 * data connection: each direction that carries bytes is a file from its first byte,
 * named when it ends.
 *
 * Shared by the worker threads (a control connection and its data connections may be on
 * different workers): one mutex, taken once per announcement, per transfer command and
 * per new flow's first bytes only while the table holds anything. FTP_EXPECT_MAX
 * endpoints; an endpoint unclaimed for FTP_EXPECT_TTL_US of packet time is forgotten, and
 * the oldest gives way when the table is full. With several worker threads, a data
 * connection whose first bytes are read before the reply that announced it is not
 * recognised (its bytes are then a raw stream, as without this table).
 */
#ifndef FH_FTP_EXPECT_H
#define FH_FTP_EXPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FTP_EXPECT_MAX    256
#define FTP_EXPECT_TTL_US (120ull * 1000000)

typedef struct ftp_expect_table ftp_expect_table;

ftp_expect_table *ftp_expect_new(void);
void ftp_expect_free(ftp_expect_table *t);

/* Control connection ctrl announced the data endpoint (ip of ipv 4 or 6, port). */
void ftp_expect_add(ftp_expect_table *t, uint64_t ctrl, int ipv, const uint8_t *ip, uint16_t port,
                    uint64_t now_us);
/* A transfer command on ctrl (cmd upper case: RETR, STOR, STOU, APPE, LIST, NLST, MLSD):
 * it names the newest endpoint ctrl announced and no command named yet. */
void ftp_expect_name(ftp_expect_table *t, uint64_t ctrl, const char *cmd, const char *arg,
                     size_t arg_len);
/* A new TCP flow's first bytes: true when its server side (ip, port) was announced; the
 * endpoint is then the flow's until ftp_expect_release(). */
bool ftp_expect_claim(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port,
                      uint64_t now_us);
/* What the endpoint's transfer command was (cmd: 5 bytes, "" when none came) and named
 * (name: at most name_len - 1 bytes, "" when none). */
void ftp_expect_lookup(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port, char *cmd,
                       char *name, size_t name_len);
/* The data connection ended: the endpoint is forgotten. */
void ftp_expect_release(ftp_expect_table *t, int ipv, const uint8_t *ip, uint16_t port);
/* Forgets everything (the end of an input: every flow ended). */
void ftp_expect_clear(ftp_expect_table *t);
/* True when nothing is announced (no lock: a hint to skip ftp_expect_claim). */
bool ftp_expect_empty(const ftp_expect_table *t);

#endif
