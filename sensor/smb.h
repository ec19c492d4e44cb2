/*
 * smb.h - SMB2/3 and DCE-RPC, the evidence of lateral movement (docs/events.md): the
 * shares a client connects to (admin shares flagged), the files it opens on admin shares,
 * the RPC interfaces it binds over named pipes or plain TCP (svcctl, atsvc, samr,
 * drsuapi, ...) and the operations that create or start a service, add a scheduled task
 * or replicate the directory.
 *
 * Fed with the reassembled bytes of a flow whose first bytes to the server are a NetBIOS
 * session message holding an SMB2/3 header, or a DCE-RPC bind (payload.c decides). Only
 * the client's direction is read: requests carry the names; the server's answers are not
 * needed for these facts. Bounded: each NetBIOS message (or RPC fragment) keeps its first
 * SMB_PEEK bytes, the rest is skipped; at most SMB_MAX_CTX RPC contexts and SMB_MAX_SEEN
 * reported names per flow; parsing stops at a malformed framing or after SMB_MAX_BYTES.
 * Every length read from the wire is checked against what is held.
 */
#ifndef FH_SMB_H
#define FH_SMB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMB_PEEK      2048
#define SMB_MAX_CTX   8
#define SMB_MAX_SEEN  64
#define SMB_MAX_BYTES (16u << 20)

/* What the parser found; the caller writes the events (payload.c). */
typedef enum { SMB_EV_TREE, SMB_EV_CREATE, SMB_EV_BIND, SMB_EV_REQUEST } smb_ev_kind;

typedef struct {
    smb_ev_kind kind;
    const char *share;     /* UTF-8, NUL-terminated (TREE, CREATE) */
    const char *filename;  /* CREATE */
    bool admin_share;      /* C$, ADMIN$, D$, ... (not IPC$) */
    const char *iface;     /* BIND, REQUEST: interface name, or NULL when unknown */
    const char *uuid;      /* BIND, REQUEST: the interface's UUID, text */
    uint16_t opnum;        /* REQUEST */
    const char *op;        /* REQUEST: the operation's name when known */
    const char *transport; /* "smb" (named pipe) or "tcp" */
} smb_ev;

typedef void (*smb_ev_cb)(const smb_ev *e, void *arg);

typedef struct {
    uint8_t buf[SMB_PEEK];
    uint32_t held;  /* bytes of the current message in buf */
    uint32_t need;  /* bytes of the current message still to come (after buf) */
    uint32_t total; /* its length */
    uint8_t hdr[4];
    uint8_t hdr_len;
    uint64_t bytes;
    bool done;
} smb_dir;

typedef struct {
    uint16_t id;
    uint8_t iface; /* index into the known interfaces + 1, 0 = unknown */
    char uuid[37];
} smb_ctx;

typedef struct {
    bool dcerpc_tcp; /* plain DCE-RPC over TCP, else SMB2 over NetBIOS */
    smb_dir d;       /* the client's direction */
    smb_ctx ctx[SMB_MAX_CTX];
    uint32_t nctx;
    struct {
        uint64_t msg_id;
        char path[128];
    } pending_tree[4]; /* tree connects waiting for the server's TreeId */
    struct {
        uint32_t tree_id;
        char path[128];
    } trees[8];
    uint32_t ntrees;
    uint64_t seen[SMB_MAX_SEEN]; /* hashes of what was reported */
    uint32_t nseen;
    smb_dir r; /* the server's direction: tree connect responses only */
} smb_state;

/* True when data (a flow's first bytes to the server) starts SMB2 over NetBIOS or a
 * DCE-RPC bind. */
bool smb_is_start(const uint8_t *data, size_t len);
void smb_init(smb_state *s, const uint8_t *first, size_t len);
/* Bytes of direction dir in stream order; gap: bytes missing before them. */
void smb_data(smb_state *s, int dir, const uint8_t *data, size_t len, bool gap, smb_ev_cb cb,
              void *arg);
bool smb_done(const smb_state *s);

#endif
