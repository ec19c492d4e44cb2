/*
 * smb.h - SMB2/3 and DCE-RPC, the evidence of lateral movement (docs/events.md): the
 * shares a client connects to (admin shares flagged), the files it opens on admin shares,
 * the RPC interfaces it binds over named pipes or plain TCP (svcctl, atsvc, samr,
 * drsuapi, ...) and the operations that create or start a service, add a scheduled task
 * or replicate the directory.
 *
 * Files: the data of WRITE requests and READ responses is handed over as file data
 * (payload.c makes the `fileinfo` events with files.c), for the files opened on shares
 * other than IPC$. A file is known by the FileId of its CREATE response, named by its
 * CREATE request (matched by MessageId); a READ response by its request's MessageId. Data
 * is handed over with its file offset, in the order the messages come (smb_files.c puts
 * it in file order). CLOSE ends a file (once the READs of it outstanding are answered);
 * the flow's end ends what is still open, as incomplete. Every command of a compound message (SMB2
 * NextCommand) counts: its first bytes are kept as they pass (smb_dir.ehdr) to decide whether its
 * data is a file's. A related command (SMB2_FLAGS_RELATED_OPERATIONS) with the FileId 0xff..ff
 * means the file of the compound's CREATE, whose FileId the server has not given yet: that file
 * gets a stand-in id (0xff x 8, then the CREATE's MessageId) until its CREATE response names it.
 *
 * Fed with the reassembled bytes of a flow whose first bytes to the server are a NetBIOS
 * session message holding an SMB2/3 header, or a DCE-RPC bind (payload.c decides). The
 * client's requests carry the names, the server's responses the TreeIds, FileIds and the
 * data read. Bounded: each NetBIOS message (or RPC fragment) keeps its first SMB_PEEK
 * bytes, the rest is skipped (file data is handed over as it passes); at most SMB_MAX_CTX
 * RPC contexts, SMB_MAX_FILES open files and SMB_MAX_SEEN reported names per flow;
 * parsing stops at a malformed framing or after SMB_MAX_BYTES. Every length read from the
 * wire is checked against what is held.
 */
#ifndef FH_SMB_H
#define FH_SMB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMB_PEEK          2048
#define SMB_MAX_CTX       8
#define SMB_MAX_SEEN      64
#define SMB_MAX_BYTES     (16u << 20)
#define SMB_MAX_FILES     8
#define SMB_PENDING_READS 16 /* READ requests outstanding, by MessageId modulo */

/* What the parser found; the caller writes the events (payload.c). */
typedef enum {
    SMB_EV_TREE,
    SMB_EV_CREATE,
    SMB_EV_BIND,
    SMB_EV_REQUEST,
    SMB_EV_FILE_DATA,  /* file, dir, data, len: the next bytes of a file */
    SMB_EV_FILE_GAP,   /* file: bytes of it will not be seen */
    SMB_EV_FILE_CLOSE, /* file: CLOSE, or the slot is needed for another file */
} smb_ev_kind;

typedef struct {
    smb_ev_kind kind;
    const char *share;     /* UTF-8, NUL-terminated (TREE, CREATE) */
    const char *filename;  /* CREATE */
    bool admin_share;      /* C$, ADMIN$, D$, ... (not IPC$) */
    bool smb1;             /* TREE, CREATE: an SMB1 command (else SMB2) */
    const char *iface;     /* BIND, REQUEST: interface name, or NULL when unknown */
    const char *uuid;      /* BIND, REQUEST: the interface's UUID, text */
    uint16_t opnum;        /* REQUEST */
    const char *op;        /* REQUEST: the operation's name when known */
    const char *transport; /* "smb" (named pipe) or "tcp" */
    int file;              /* FILE_*: the file's slot, 0 .. SMB_MAX_FILES - 1 */
    int dir;               /* FILE_DATA: 0 written by the client, 1 read from the server */
    const uint8_t *data;   /* FILE_DATA */
    size_t len;
    uint64_t offset; /* FILE_DATA: the file offset of data[0] */
    bool complete;   /* FILE_CLOSE: the client closed it (else the slot was needed) */
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
    /* the current command of a compound: [elem, elem_end) of the message (elem_end 0 until
     * its NextCommand is read), and its first bytes */
    uint32_t elem, elem_end;
    uint8_t ehdr[96];
    uint32_t ehdr_len;
    uint8_t closes[4][16]; /* FileIds the message's CLOSEs name, ended at its end */
    uint8_t nclose;
    int8_t rfile; /* the file whose READ the current command answers, -1: none */
    /* the current command's file data: [fstart, fend) of the message, emitted to femit */
    bool decided;
    int8_t fslot; /* -1: none */
    uint32_t fstart, fend, femit;
    uint64_t foff; /* the file offset of fstart */
} smb_dir;

typedef struct {
    uint8_t id[16];  /* FileId of the CREATE response */
    char name[256];  /* as the CREATE request named it (UTF-8) */
    char share[128]; /* the tree's path, or "" when its connect was not seen */
    bool used;
    bool closing; /* closed with reads outstanding: ends when they are answered */
} smb_file;

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
    smb_dir r; /* the server's direction: responses (TreeIds, FileIds, data read) */
    struct {
        uint64_t msg_id;
        char name[256];
        char share[128];
        bool used;
    } pending_create[4]; /* CREATE requests waiting for their FileId */
    struct {
        uint64_t msg_id;
        uint64_t offset;
        int8_t file;
        bool used;
    } pending_read[SMB_PENDING_READS]; /* READ requests waiting for their data */
    smb_file files[SMB_MAX_FILES];
    uint32_t next_evict;
    struct {
        uint64_t msg_id; /* the CREATE's */
        bool used;
    } standin[4]; /* files known by a stand-in id until their CREATE response */
} smb_state;

/* True when data (a flow's first bytes to the server) starts SMB2 over NetBIOS or a
 * DCE-RPC bind. */
bool smb_is_start(const uint8_t *data, size_t len);
void smb_init(smb_state *s, const uint8_t *first, size_t len);
/* Bytes of direction dir in stream order; gap: bytes missing before them. */
void smb_data(smb_state *s, int dir, const uint8_t *data, size_t len, bool gap, smb_ev_cb cb,
              void *arg);
bool smb_done(const smb_state *s);
/* The file in slot i (SMB_EV_FILE_*), for its name and share. */
const smb_file *smb_file_at(const smb_state *s, int i);

#endif
