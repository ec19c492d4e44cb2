/*
 * smb.c - see smb.h.
 */
#include "smb.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { NBSS_HDR = 4, RPC_HDR = 10 };
enum {
    SMB2_TREE_CONNECT = 3,
    SMB2_CREATE = 5,
    SMB2_CLOSE = 6,
    SMB2_READ = 8,
    SMB2_WRITE = 9,
    SMB2_IOCTL = 11
};
/* Bytes of a command that decide whether it carries file data: the SMB2 header and a
 * WRITE request's fixed part (a READ response's is shorter). */
enum { FILE_DECIDE = 64 + 32 };
_Static_assert(sizeof(((smb_dir *)0)->ehdr) == FILE_DECIDE, "ehdr holds what decides");
#define SMB2_FLAGS_RELATED     0x04u /* a compound's command on the previous one's file */
#define STATUS_BUFFER_OVERFLOW 0x80000005u
#define STATUS_PENDING         0x00000103u /* an interim answer: the real one follows */
#define FSCTL_PIPE_TRANSCEIVE  0x0011C017u

static const struct {
    const char *uuid, *name;
} IFACES[] = {
    {"367abb81-9844-35f1-ad32-98f038001003", "svcctl"},
    {"1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc"},
    {"86d35949-83c9-4044-b424-db363231fd0c", "taskscheduler"},
    {"12345778-1234-abcd-ef00-0123456789ac", "samr"},
    {"12345778-1234-abcd-ef00-0123456789ab", "lsarpc"},
    {"e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi"},
    {"4b324fc8-1670-01d3-1278-5a47bf6ee188", "srvsvc"},
    {"338cd001-2244-31f1-aaaa-900038001003", "winreg"},
    {"e1af8308-5d1f-11c9-91a4-08002b14a0fa", "epmapper"},
    {"12345678-1234-abcd-ef00-01234567cffb", "netlogon"},
    {"6bffd098-a112-3610-9833-46c3f87e345a", "wkssvc"},
    {"82273fdc-e32a-18c3-3f78-827929dc23ea", "eventlog"},
    {"f309ad18-d86a-11d0-a075-00c04fb68820", "wmi"},
    {"000001a0-0000-0000-c000-000000000046", "dcom_activation"},
};
#define NIFACES (sizeof(IFACES) / sizeof(IFACES[0]))

/* The operations that change a remote host: services, tasks, directory replication. */
static const struct {
    const char *iface;
    uint16_t opnum;
    const char *name;
} OPS[] = {
    {"svcctl", 11, "ChangeServiceConfigW"},
    {"svcctl", 12, "CreateServiceW"},
    {"svcctl", 19, "StartServiceW"},
    {"svcctl", 24, "CreateServiceA"},
    {"svcctl", 31, "StartServiceA"},
    {"svcctl", 44, "CreateServiceWOW64A"},
    {"svcctl", 45, "CreateServiceWOW64W"},
    {"atsvc", 0, "JobAdd"},
    {"taskscheduler", 1, "SchRpcRegisterTask"},
    {"taskscheduler", 12, "SchRpcRun"},
    {"drsuapi", 3, "DRSGetNCChanges"},
    {"winreg", 22, "BaseRegSetValue"},
};
#define NOPS (sizeof(OPS) / sizeof(OPS[0]))

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

bool smb_is_start(const uint8_t *d, size_t len)
{
    if (len >= 8 && d[0] == 0x00 && (d[4] == 0xfe || d[4] == 0xff) && d[5] == 'S' && d[6] == 'M' &&
        d[7] == 'B')
        return true;
    /* DCE-RPC v5.0/5.1 bind or alter_context */
    return len >= 16 && d[0] == 5 && d[1] <= 1 && (d[2] == 11 || d[2] == 14);
}

void smb_init(smb_state *s, const uint8_t *first, size_t len)
{
    memset(s, 0, sizeof(*s));
    s->d.fslot = s->r.fslot = -1;
    s->d.rfile = s->r.rfile = -1;
    s->dcerpc_tcp = first && len >= 3 && first[0] == 5;
    if (s->dcerpc_tcp)
        s->r.done = true; /* nothing to read from the server */
}

bool smb_done(const smb_state *s)
{
    return s->d.done && s->r.done;
}

const smb_file *smb_file_at(const smb_state *s, int i)
{
    return i >= 0 && i < SMB_MAX_FILES && s->files[i].used ? &s->files[i] : NULL;
}

static bool seen_once(smb_state *s, const char *a, const char *b, uint32_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (; a && *a; a++)
        h = (h ^ (uint8_t)*a) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (; b && *b; b++)
        h = (h ^ (uint8_t)*b) * 1099511628211ull;
    h = (h ^ n) * 1099511628211ull;
    for (uint32_t i = 0; i < s->nseen; i++)
        if (s->seen[i] == h)
            return false;
    if (s->nseen < SMB_MAX_SEEN)
        s->seen[s->nseen++] = h;
    return true;
}

/* UTF-16LE to UTF-8 (the BMP; a surrogate or NUL becomes '?'), at most outlen-1 bytes. */
static void utf16_to_utf8(const uint8_t *p, uint32_t bytes, char *out, size_t outlen)
{
    size_t o = 0;

    for (uint32_t i = 0; i + 1 < bytes; i += 2) {
        uint32_t c = le16(p + i);

        if (c == 0 || (c >= 0xd800 && c <= 0xdfff))
            c = '?';
        if (c < 0x80) {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)c;
        } else if (c < 0x800) {
            if (o + 2 >= outlen)
                break;
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            if (o + 3 >= outlen)
                break;
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
}

/* C$, ADMIN$, D$ ...: a share name ending in '$' other than IPC$ (and PRINT$). */
static bool admin_share(const char *path)
{
    const char *s = strrchr(path, '\\');
    size_t n;

    s = s ? s + 1 : path;
    n = strlen(s);
    if (!n || s[n - 1] != '$')
        return false;
    return strcasecmp(s, "IPC$") != 0 && strcasecmp(s, "PRINT$") != 0;
}

static bool ipc_share(const char *path)
{
    const char *s = strrchr(path, '\\');

    return strcasecmp(s ? s + 1 : path, "IPC$") == 0;
}

/* ---- files ------------------------------------------------------------------ */

static int file_find(const smb_state *s, const uint8_t *id)
{
    for (int i = 0; i < SMB_MAX_FILES; i++)
        if (s->files[i].used && memcmp(s->files[i].id, id, 16) == 0)
            return i;
    return -1;
}

/* Ends the file in slot i: complete when its CLOSE was seen. */
static void file_end(smb_state *s, int i, bool complete, smb_ev_cb cb, void *arg)
{
    smb_ev e = {.kind = SMB_EV_FILE_CLOSE, .file = i, .complete = complete};

    cb(&e, arg);
    s->files[i].used = false;
    if (s->d.fslot == i)
        s->d.fslot = -1;
    if (s->r.fslot == i)
        s->r.fslot = -1;
    for (int k = 0; k < SMB_PENDING_READS; k++)
        if (s->pending_read[k].file == i)
            s->pending_read[k].used = false;
}

/* A CREATE response gave the FileId of a file the client named (name and share: a pending
 * create's, arrays of the file's sizes). */
static void file_new(smb_state *s, const uint8_t *id, const char name[256], const char share[128],
                     smb_ev_cb cb, void *arg)
{
    int i = file_find(s, id);

    if (i >= 0) {
        file_end(s, i, false, cb, arg); /* the server gave the id again: the old one is over */
    } else {
        for (int k = 0; k < SMB_MAX_FILES && i < 0; k++)
            if (!s->files[k].used)
                i = k;
        if (i < 0) {
            i = (int)(s->next_evict++ % SMB_MAX_FILES);
            file_end(s, i, false, cb, arg);
        }
    }
    memcpy(s->files[i].id, id, 16);
    memcpy(s->files[i].name, name, sizeof(s->files[i].name));
    memcpy(s->files[i].share, share, sizeof(s->files[i].share));
    s->files[i].used = true;
    s->files[i].closing = false;
}

static const char *tree_path(const smb_state *s, uint32_t tree_id)
{
    for (uint32_t i = 0; i < s->ntrees && i < 8; i++)
        if (s->trees[i].tree_id == tree_id)
            return s->trees[i].path;
    return NULL;
}

/* The name an SMB2 CREATE request h (avail bytes held) opens; false when it is not held. */
static bool create_name(const uint8_t *h, uint32_t avail, char name[256])
{
    uint32_t no, nl;

    if (avail < 64 + 48)
        return false;
    no = le16(h + 64 + 44);
    nl = le16(h + 64 + 46);
    if (no < 64 || no + nl > avail || !nl)
        return false;
    utf16_to_utf8(h + no, nl, name, 256);
    return true;
}

/* Whether a CREATE of name on share (NULL: its connect was not seen) opens a file to
 * follow: not on IPC$ (pipes); when the tree is unknown, not a bare pipe-like name (no dot,
 * no directory). */
static bool opens_file(const char *share, const char *name)
{
    return share ? !ipc_share(share) : strpbrk(name, ".\\") != NULL;
}

static bool all_ones(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i] != 0xff)
            return false;
    return true;
}

/* The id a file has from a related command until its CREATE response gives the real one. */
static void standin_id(uint64_t msg_id, uint8_t id[16])
{
    memset(id, 0xff, 8);
    for (int i = 0; i < 8; i++)
        id[8 + i] = (uint8_t)(msg_id >> 8 * i);
}

/*
 * The file a related command at offset `at` of the compound m (n bytes held) works on: the
 * compound's last CREATE before it. Found by its stand-in id, or, when `make` is set, given
 * a slot under that id (a file, not a pipe: create_request's test). -1 when there is none.
 */
static int related_file(smb_state *s, const uint8_t *m, uint32_t n, uint32_t at, bool make,
                        smb_ev_cb cb, void *arg)
{
    uint32_t off = 0, create = UINT32_MAX;
    uint64_t msg_id;
    uint8_t id[16];
    char name[256] = "", share[128] = "";
    const char *tree;
    const uint8_t *h;
    int i;

    for (int guard = 0; guard < 32 && off < at && off + 64 <= n; guard++) {
        uint32_t next = le32(m + off + 20);

        if (memcmp(m + off, "\xfeSMB", 4))
            return -1;
        if (le16(m + off + 12) == SMB2_CREATE)
            create = off;
        if (!next || next % 8 || next < 64 || next > n - off)
            break;
        off += next;
    }
    if (create == UINT32_MAX || n - create < 64 + 48)
        return -1;
    h = m + create;
    msg_id = le64(h + 24);
    standin_id(msg_id, id);
    if ((i = file_find(s, id)) >= 0 || !make)
        return i;
    tree = tree_path(s, le32(h + 36));
    if (!create_name(h, n - create, name) || !opens_file(tree, name))
        return -1;
    snprintf(share, sizeof(share), "%s", tree ? tree : "");
    file_new(s, id, name, share, cb, arg);
    s->standin[msg_id % 4].msg_id = msg_id;
    s->standin[msg_id % 4].used = true;
    return file_find(s, id);
}

/* Whether the current command (d->ehdr) is related (SMB2_FLAGS_RELATED_OPERATIONS) and names
 * its file by the FileId 0xff..ff at fid: the file of the compound's CREATE (related_file). */
static bool related_fid(const smb_dir *d, const uint8_t *fid)
{
    return (le32(d->ehdr + 16) & SMB2_FLAGS_RELATED) && all_ones(fid);
}

static void uuid_text(const uint8_t *u, bool little, char out[37])
{
    uint32_t a = little ? le32(u) : (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | u[2] << 8 | u[3];
    uint16_t b = little ? le16(u + 4) : (uint16_t)(u[4] << 8 | u[5]);
    uint16_t c = little ? le16(u + 6) : (uint16_t)(u[6] << 8 | u[7]);

    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", a, b, c, u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* One DCE-RPC PDU (or its first bytes): binds name their interfaces, requests their op. */
static void rpc_pdu(smb_state *s, const uint8_t *p, uint32_t n, const char *transport, smb_ev_cb cb,
                    void *arg)
{
    bool little;
    uint8_t type;

    if (n < 16 || p[0] != 5 || p[1] > 1)
        return;
    type = p[2];
    little = (p[4] & 0x10) != 0;
    if (type == 11 || type == 14) { /* bind, alter_context */
        uint32_t off = 28, nctx;

        if (n < 28)
            return;
        nctx = p[24];
        for (uint32_t i = 0; i < nctx && off + 24 <= n; i++) {
            uint16_t id = little ? le16(p + off) : (uint16_t)(p[off] << 8 | p[off + 1]);
            uint8_t ntrans = p[off + 2];
            smb_ctx *c = NULL;
            smb_ev e = {.kind = SMB_EV_BIND, .transport = transport};

            for (uint32_t j = 0; j < s->nctx; j++)
                if (s->ctx[j].id == id)
                    c = &s->ctx[j];
            if (!c && s->nctx < SMB_MAX_CTX)
                c = &s->ctx[s->nctx++];
            if (c) {
                c->id = id;
                uuid_text(p + off + 4, little, c->uuid);
                c->iface = 0;
                for (uint32_t k = 0; k < NIFACES; k++)
                    if (!strcmp(c->uuid, IFACES[k].uuid))
                        c->iface = (uint8_t)(k + 1);
                e.uuid = c->uuid;
                e.iface = c->iface ? IFACES[c->iface - 1].name : NULL;
                if (seen_once(s, "bind", c->uuid, 0))
                    cb(&e, arg);
            }
            off += 24 + (uint32_t)ntrans * 20;
        }
        return;
    }
    if (type == 0 && n >= 24) { /* request */
        uint16_t id = little ? le16(p + 20) : (uint16_t)(p[20] << 8 | p[21]);
        uint16_t opnum = little ? le16(p + 22) : (uint16_t)(p[22] << 8 | p[23]);

        for (uint32_t j = 0; j < s->nctx; j++) {
            const char *iface;

            if (s->ctx[j].id != id || !s->ctx[j].iface)
                continue;
            iface = IFACES[s->ctx[j].iface - 1].name;
            for (uint32_t k = 0; k < NOPS; k++)
                if (OPS[k].opnum == opnum && !strcmp(OPS[k].iface, iface) &&
                    seen_once(s, "op", iface, opnum)) {
                    smb_ev e = {.kind = SMB_EV_REQUEST,
                                .transport = transport,
                                .iface = iface,
                                .uuid = s->ctx[j].uuid,
                                .opnum = opnum,
                                .op = OPS[k].name};
                    cb(&e, arg);
                }
        }
    }
}

/* ---- what SMB1 and SMB2 share: trees, creates, reads, closes ------------------ */

/* A TREE_CONNECT request for path: reported once, and kept until its response. */
static void tree_request(smb_state *s, bool smb1, uint64_t msg_id, const char *path, smb_ev_cb cb,
                         void *arg)
{
    uint32_t slot = (uint32_t)(msg_id % 4);
    smb_ev e = {.kind = SMB_EV_TREE, .transport = "smb", .smb1 = smb1};

    s->pending_tree[slot].msg_id = msg_id;
    snprintf(s->pending_tree[slot].path, sizeof(s->pending_tree[slot].path), "%s", path);
    e.share = path;
    e.admin_share = admin_share(path);
    if (seen_once(s, "tree", path, 0))
        cb(&e, arg);
}

/* A successful TREE_CONNECT response: its request's path has the id tree_id. */
static void tree_response(smb_state *s, uint64_t msg_id, uint32_t tree_id)
{
    for (int i = 0; i < 4; i++)
        if (s->pending_tree[i].path[0] && s->pending_tree[i].msg_id == msg_id) {
            uint32_t t = s->ntrees++ % 8;

            s->trees[t].tree_id = tree_id;
            memcpy(s->trees[t].path, s->pending_tree[i].path, sizeof(s->trees[t].path));
            s->pending_tree[i].path[0] = '\0';
        }
}

/* A CREATE request for name on the tree share (NULL when its connect was not seen): an
 * event for admin shares, and a file to follow once the response gives its id. */
static void create_request(smb_state *s, bool smb1, uint64_t msg_id, const char *share,
                           const char *name, smb_ev_cb cb, void *arg)
{
    if (opens_file(share, name)) {
        uint32_t k = (uint32_t)(msg_id % 4);

        s->pending_create[k].msg_id = msg_id;
        snprintf(s->pending_create[k].name, sizeof(s->pending_create[k].name), "%s", name);
        snprintf(s->pending_create[k].share, sizeof(s->pending_create[k].share), "%s",
                 share ? share : "");
        s->pending_create[k].used = true;
    }
    if ((share && admin_share(share)) || !share) {
        smb_ev e = {.kind = SMB_EV_CREATE,
                    .transport = "smb",
                    .smb1 = smb1,
                    .share = share,
                    .filename = name,
                    .admin_share = share && admin_share(share)};

        if (seen_once(s, share ? share : "", name, 1))
            cb(&e, arg);
    }
}

/* A successful CREATE response: the file its request named has the id `id`. */
static void create_response(smb_state *s, uint64_t msg_id, const uint8_t id[16], smb_ev_cb cb,
                            void *arg)
{
    uint32_t k = (uint32_t)(msg_id % 4);
    uint8_t sid[16];
    int i, j;

    if (s->standin[k].used && s->standin[k].msg_id == msg_id) {
        /* a related command already made the file: it gets its real id */
        s->standin[k].used = false;
        standin_id(msg_id, sid);
        if ((i = file_find(s, sid)) >= 0) {
            if ((j = file_find(s, id)) >= 0)
                file_end(s, j, false, cb, arg); /* the server gave the id again */
            memcpy(s->files[i].id, id, 16);
        }
        if (s->pending_create[k].msg_id == msg_id)
            s->pending_create[k].used = false;
        return;
    }
    if (s->pending_create[k].used && s->pending_create[k].msg_id == msg_id) {
        file_new(s, id, s->pending_create[k].name, s->pending_create[k].share, cb, arg);
        s->pending_create[k].used = false;
    }
}

/* A READ request of offset in the file `id`: its response's data is that file's. */
static void read_request(smb_state *s, uint64_t msg_id, const uint8_t id[16], uint64_t offset)
{
    int i = file_find(s, id);

    if (i >= 0) {
        uint32_t k = (uint32_t)(msg_id % SMB_PENDING_READS);

        s->pending_read[k].msg_id = msg_id;
        s->pending_read[k].offset = offset;
        s->pending_read[k].file = (int8_t)i;
        s->pending_read[k].used = true;
    }
}

/* The file a READ response answers (its request's), and the offset read; -1 when none. */
static int read_response(smb_state *s, uint64_t msg_id, uint64_t *offset)
{
    for (int k = 0; k < SMB_PENDING_READS; k++)
        if (s->pending_read[k].used && s->pending_read[k].msg_id == msg_id) {
            s->pending_read[k].used = false;
            *offset = s->pending_read[k].offset;
            return s->pending_read[k].file;
        }
    return -1;
}

static bool reads_pending(const smb_state *s, int i)
{
    for (int k = 0; k < SMB_PENDING_READS; k++)
        if (s->pending_read[k].used && s->pending_read[k].file == i)
            return true;
    return false;
}

/* A CLOSE ends the file, or, while READs of it wait for their answers (a compound that
 * reads and closes, a client that closes without waiting), once they are answered
 * (read_answered). */
static void close_request(smb_state *s, const uint8_t id[16], smb_ev_cb cb, void *arg)
{
    int i = file_find(s, id);

    if (i < 0)
        return;
    if (reads_pending(s, i))
        s->files[i].closing = true;
    else
        file_end(s, i, true, cb, arg);
}

/* A READ response of file i has passed: a file closed while it waited now ends. */
static void read_answered(smb_state *s, int i, smb_ev_cb cb, void *arg)
{
    if (i >= 0 && s->files[i].used && s->files[i].closing && !reads_pending(s, i))
        file_end(s, i, true, cb, arg);
}

/* ---- SMB2 ------------------------------------------------------------------- */

/* The client's SMB2 message m of n bytes held (maybe the start of a longer one). */
static void smb2_request(smb_state *s, const uint8_t *m, uint32_t n, smb_ev_cb cb, void *arg)
{
    uint32_t off = 0;

    for (int guard = 0; guard < 32 && off + 64 <= n; guard++) {
        const uint8_t *h = m + off, *b = h + 64;
        uint32_t avail = n - off, next = le32(h + 20);
        uint16_t cmd = le16(h + 12);
        uint64_t mid = le64(h + 24);

        if (memcmp(h, "\xfeSMB", 4) || (le32(h + 16) & 1))
            return;
        if (cmd == SMB2_TREE_CONNECT && avail >= 64 + 8) {
            uint32_t po = le16(b + 4), pl = le16(b + 6);
            char path[128];

            if (po >= 64 && po + pl <= avail) {
                utf16_to_utf8(h + po, pl, path, sizeof(path));
                tree_request(s, false, mid, path, cb, arg);
            }
        } else if (cmd == SMB2_CREATE) {
            char name[256];

            if (create_name(h, avail, name))
                create_request(s, false, mid, tree_path(s, le32(h + 36)), name, cb, arg);
        } else if (cmd == SMB2_WRITE && avail >= 64 + 16) {
            uint32_t dof = le16(b + 2), dl = le32(b + 4);

            if (dof >= 64 && dof < avail)
                rpc_pdu(s, h + dof, dl < avail - dof ? dl : avail - dof, "smb", cb, arg);
        } else if (cmd == SMB2_IOCTL && avail >= 64 + 32 && le32(b + 4) == FSCTL_PIPE_TRANSCEIVE) {
            uint32_t io = le32(b + 24), il = le32(b + 28);

            if (io >= 64 && io < avail)
                rpc_pdu(s, h + io, il < avail - io ? il : avail - io, "smb", cb, arg);
        }
        if (!next || next % 8 || next < 64 || next > avail)
            return;
        off += next;
    }
}

/* The server's message: a successful TREE_CONNECT response names its TreeId, a CREATE
 * response its FileId. */
static void smb2_response(smb_state *s, const uint8_t *m, uint32_t n, smb_ev_cb cb, void *arg)
{
    uint32_t off = 0;

    for (int guard = 0; guard < 32 && off + 64 <= n; guard++) {
        const uint8_t *h = m + off;
        uint32_t next = le32(h + 20);

        if (memcmp(h, "\xfeSMB", 4))
            return;
        if ((le32(h + 16) & 1) && le32(h + 8) == 0) {
            if (le16(h + 12) == SMB2_TREE_CONNECT)
                tree_response(s, le64(h + 24), le32(h + 36));
            else if (le16(h + 12) == SMB2_CREATE && n - off >= 64 + 80)
                create_response(s, le64(h + 24), h + 64 + 64, cb, arg);
        }
        if (!next || next % 8 || next < 64 || next > n - off)
            return;
        off += next;
    }
}

/* ---- SMB1 ------------------------------------------------------------------- */

/*
 * SMB1 (CIFS, MS-CIFS): a 32-byte header, then per command a word count, its words and a
 * byte count with its bytes; ANDX commands chain the next one by offset. Files have a
 * 2-byte FID, kept in the first bytes of a 16-byte id with a last byte SMB2 ids do not
 * reach in one flow (a flow speaks one dialect).
 */
enum {
    SMB1_CLOSE = 0x04,
    SMB1_TRANSACTION = 0x25,
    SMB1_READ_ANDX = 0x2e,
    SMB1_WRITE_ANDX = 0x2f,
    SMB1_TREE_CONNECT_ANDX = 0x75,
    SMB1_NT_CREATE_ANDX = 0xa2,
};
#define SMB1_HDR     32
#define SMB1_UNICODE 0x8000 /* Flags2: strings are UTF-16LE */

static void smb1_id(const uint8_t *fid, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = fid[0];
    id[1] = fid[1];
    id[15] = 0x01;
}

/* A NUL-terminated string at m[at..end): UTF-16LE (aligned to 2 from the header) or ASCII. */
static void smb1_string(const uint8_t *m, uint32_t at, uint32_t end, bool unicode, char *out,
                        size_t outlen)
{
    uint32_t n = 0;

    out[0] = '\0';
    if (unicode) {
        at += at & 1;
        while (at + n + 1 < end && (m[at + n] || m[at + n + 1]))
            n += 2;
        if (at < end)
            utf16_to_utf8(m + at, n, out, outlen);
    } else {
        while (at + n < end && m[at + n] && n + 1 < outlen)
            n++;
        for (uint32_t i = 0; i < n; i++)
            out[i] = m[at + i] >= 0x20 && m[at + i] < 0x7f ? (char)m[at + i] : '?';
        out[n] = '\0';
    }
}

/*
 * Walks an SMB1 message's chain of commands (at most 8): calls fn with each command, the
 * offset of its word count and its words and bytes as held. False when the message is not
 * SMB1.
 */
typedef void (*smb1_fn)(smb_state *s, const uint8_t *m, uint32_t n, uint8_t cmd, uint32_t wc_at,
                        smb_ev_cb cb, void *arg);

static void smb1_walk(smb_state *s, const uint8_t *m, uint32_t n, smb1_fn fn, smb_ev_cb cb,
                      void *arg)
{
    uint8_t cmd = m[4];
    uint32_t at = SMB1_HDR;

    for (int guard = 0; guard < 8 && at < n; guard++) {
        uint8_t wc = m[at];
        uint32_t next;

        fn(s, m, n, cmd, at, cb, arg);
        /* ANDX commands: words[0] the next command (0xff: none), words[2..3] its offset */
        if (cmd != SMB1_READ_ANDX && cmd != SMB1_WRITE_ANDX && cmd != SMB1_TREE_CONNECT_ANDX &&
            cmd != SMB1_NT_CREATE_ANDX && cmd != 0x73 /* SESSION_SETUP_ANDX */)
            return;
        if (wc < 2 || at + 1 + 4 > n || m[at + 1] == 0xff)
            return;
        next = le16(m + at + 3);
        if (next <= at || next >= n)
            return; /* must go forwards */
        cmd = m[at + 1];
        at = next;
    }
}

static void smb1_req_cmd(smb_state *s, const uint8_t *m, uint32_t n, uint8_t cmd, uint32_t at,
                         smb_ev_cb cb, void *arg)
{
    const uint8_t *w = m + at + 1;
    uint32_t wc = m[at], bytes = at + 1 + 2 * wc + 2, bend;
    bool uni = (le16(m + 10) & SMB1_UNICODE) != 0;
    uint64_t mid = le16(m + 30);
    uint8_t id[16];

    if (bytes > n)
        return; /* words not all held */
    bend = bytes + le16(m + bytes - 2);
    if (bend > n)
        bend = n;
    if (cmd == SMB1_TREE_CONNECT_ANDX && wc == 4) {
        char path[128];

        smb1_string(m, bytes + le16(w + 6), bend, uni, path, sizeof(path));
        if (path[0])
            tree_request(s, true, mid, path, cb, arg);
    } else if (cmd == SMB1_NT_CREATE_ANDX && wc == 24) {
        char name[256];

        smb1_string(m, bytes, bend, uni, name, sizeof(name));
        if (name[0])
            create_request(s, true, mid, tree_path(s, le16(m + 24)),
                           name[0] == '\\' ? name + 1 : name, cb, arg);
    } else if (cmd == SMB1_READ_ANDX && (wc == 10 || wc == 12)) {
        uint64_t off = le32(w + 6);

        if (wc == 12)
            off |= (uint64_t)le32(w + 20) << 32;
        smb1_id(w + 4, id);
        read_request(s, mid, id, off);
    } else if (cmd == SMB1_CLOSE && wc == 3) {
        smb1_id(w, id);
        close_request(s, id, cb, arg);
    } else if (cmd == SMB1_WRITE_ANDX && (wc == 12 || wc == 14)) {
        uint32_t dof = le16(w + 22), dl = (uint32_t)le16(w + 18) << 16 | le16(w + 20);

        if (dof >= SMB1_HDR && dof < n) /* a pipe's write: DCE-RPC */
            rpc_pdu(s, m + dof, dl < n - dof ? dl : n - dof, "smb", cb, arg);
    } else if (cmd == SMB1_TRANSACTION && wc >= 14 && at + 1 + 2 * 14 <= n) {
        uint32_t dof = le16(w + 24), dl = le16(w + 22); /* TransactNmPipe: DCE-RPC */

        if (dof >= SMB1_HDR && dof < n)
            rpc_pdu(s, m + dof, dl < n - dof ? dl : n - dof, "smb", cb, arg);
    }
}

static void smb1_resp_cmd(smb_state *s, const uint8_t *m, uint32_t n, uint8_t cmd, uint32_t at,
                          smb_ev_cb cb, void *arg)
{
    const uint8_t *w = m + at + 1;
    uint32_t wc = m[at];
    uint8_t id[16];

    if (le32(m + 5) != 0 || at + 1 + 2 * wc > n)
        return;
    if (cmd == SMB1_TREE_CONNECT_ANDX && wc >= 2) {
        tree_response(s, le16(m + 30), le16(m + 24));
    } else if (cmd == SMB1_NT_CREATE_ANDX && wc >= 3 + 1) {
        smb1_id(w + 5, id);
        create_response(s, le16(m + 30), id, cb, arg);
    }
}

/* Hands over data[0..len) of the current command's file, at message offset at. */
static void hand_over(smb_dir *d, int dir, const uint8_t *data, uint32_t len, uint32_t at,
                      smb_ev_cb cb, void *arg)
{
    smb_ev e = {.kind = SMB_EV_FILE_DATA,
                .file = d->fslot,
                .dir = dir,
                .data = data,
                .len = len,
                .offset = d->foff + (at - d->fstart)};

    cb(&e, arg);
    d->femit = at + len;
}

/*
 * Looks at a command's first bytes (d->ehdr, d->ehdr_len of them): a WRITE request or a
 * READ response of a known file (SMB2, or SMB1's WRITE_ANDX and READ_ANDX as the message's
 * first command) sets the command's file data range [fstart, fend) of the message, and
 * hands over what of it ehdr already holds.
 */
static void file_decide(smb_state *s, int dir, smb_dir *d, smb_ev_cb cb, void *arg)
{
    const uint8_t *h = d->ehdr, *b = h + 64, *w = h + SMB1_HDR + 1;
    uint32_t held = d->ehdr_len, len = d->elem_end - d->elem;
    uint32_t dof = 0, dl = 0, min_dof = 64;
    uint64_t off = 0;
    int i = -1;

    d->decided = true;
    d->fslot = -1;
    if (held >= 64 + 16 && !memcmp(h, "\xfeSMB", 4)) {
        bool resp = (le32(h + 16) & 1) != 0;

        if (dir == 0 && le16(h + 12) == SMB2_WRITE && !resp && held >= 64 + 32) {
            dof = le16(b + 2);
            dl = le32(b + 4);
            off = le64(b + 8);
            if (related_fid(d, b + 16))
                i = related_file(s, d->buf, d->held, d->elem, true, cb, arg);
            else
                i = file_find(s, b + 16);
        } else if (dir == 1 && le16(h + 12) == SMB2_READ && resp && le32(h + 8) != STATUS_PENDING) {
            /* the answer to a READ: data, or an error that ends the wait all the same */
            d->rfile = (int8_t)read_response(s, le64(h + 24), &off);
            if (le32(h + 8) == 0 || le32(h + 8) == STATUS_BUFFER_OVERFLOW) {
                dof = b[2];
                dl = le32(b + 4);
                i = d->rfile;
            }
        }
    } else if (d->elem == 0 && held >= SMB1_HDR + 1 + 24 && !memcmp(h, "\xffSMB", 4)) {
        bool resp = (h[9] & 0x80) != 0;
        uint8_t wc = h[SMB1_HDR], id[16];

        min_dof = SMB1_HDR;
        if (dir == 0 && h[4] == SMB1_WRITE_ANDX && !resp && (wc == 12 || wc == 14)) {
            dof = le16(w + 22);
            dl = (uint32_t)le16(w + 18) << 16 | le16(w + 20);
            off = le32(w + 6);
            if (wc == 14 && held >= SMB1_HDR + 1 + 28)
                off |= (uint64_t)le32(w + 24) << 32;
            smb1_id(w + 4, id);
            i = file_find(s, id);
        } else if (dir == 1 && h[4] == SMB1_READ_ANDX && resp && wc == 12 && le32(h + 5) == 0) {
            dof = le16(w + 12);
            dl = (uint32_t)le16(w + 14) << 16 | le16(w + 10);
            i = d->rfile = (int8_t)read_response(s, le16(h + 30), &off);
        }
    }
    if (i < 0 || dof < min_dof || dof >= len || !dl || off > UINT64_MAX - len)
        return;
    if (dl > len - dof)
        dl = len - dof;
    d->fslot = (int8_t)i;
    d->foff = off;
    d->fstart = d->femit = d->elem + dof;
    d->fend = d->elem + dof + dl;
    if (dof < held) /* bytes already passed, kept in ehdr */
        hand_over(d, dir, h + dof, (dof + dl < held ? dof + dl : held) - dof, d->fstart, cb, arg);
}

/* A client's READ or CLOSE, from its first bytes (d->ehdr) as they pass: so every command of
 * a compound counts, however far into the message (the names of TREE_CONNECT and CREATE
 * are read at the message's end, from what it keeps: smb2_request). */
static void fixed_request(smb_state *s, smb_dir *d, smb_ev_cb cb, void *arg)
{
    const uint8_t *h = d->ehdr, *b = h + 64, *fid;
    int i;

    if (d->ehdr_len < 64 + 24 || memcmp(h, "\xfeSMB", 4) || (le32(h + 16) & 1))
        return;
    if (le16(h + 12) == SMB2_READ && d->ehdr_len >= 64 + 32) {
        fid = b + 16;
        if (related_fid(d, fid) &&
            (i = related_file(s, d->buf, d->held, d->elem, true, cb, arg)) >= 0)
            fid = s->files[i].id;
        read_request(s, le64(h + 24), fid, le64(b + 8));
    } else if (le16(h + 12) == SMB2_CLOSE) {
        fid = b + 8;
        if (related_fid(d, fid) &&
            (i = related_file(s, d->buf, d->held, d->elem, false, cb, arg)) >= 0)
            fid = s->files[i].id;
        if (d->nclose < 4) /* after the message's CREATEs, as a single message's would be */
            memcpy(d->closes[d->nclose++], fid, 16);
        else
            close_request(s, fid, cb, arg);
    }
}

/* Where the current command ends: its NextCommand when that is sound, else the message's
 * end (the last command, SMB1, a malformed chain). */
static void elem_bound(smb_dir *d)
{
    uint32_t next = 0;

    if (d->ehdr_len >= 24 && !memcmp(d->ehdr, "\xfeSMB", 4))
        next = le32(d->ehdr + 20);
    d->elem_end = next && next % 8 == 0 && next >= 64 && next < d->total - d->elem ? d->elem + next
                                                                                   : d->total;
}

/* At pos, the end of the current command or not: when it is, a READ it answered may end a
 * file closed while waiting, and the compound's next command starts. */
static void command_end(smb_state *s, smb_dir *d, uint32_t pos, smb_ev_cb cb, void *arg)
{
    if (pos != d->elem_end)
        return;
    if (d->rfile >= 0) {
        read_answered(s, d->rfile, cb, arg);
        d->rfile = -1;
    }
    if (pos < d->total) {
        d->elem = pos;
        d->elem_end = 0;
        d->ehdr_len = 0;
        d->decided = false;
        d->fslot = -1;
    }
}

/*
 * The chunk data[0..n) at offset pos0 of the current message, command by command: keeps
 * each command's first bytes (its NextCommand, then what file_decide needs), decides, and
 * hands over the file data that passes.
 */
static void commands(smb_state *s, int dir, smb_dir *d, const uint8_t *data, uint32_t pos0,
                     uint32_t n, smb_ev_cb cb, void *arg)
{
    uint32_t pos = pos0, end = pos0 + n;

    while (pos < end) {
        if (!d->decided) {
            uint32_t want = d->elem_end ? d->elem_end - d->elem : 24, k;

            if (want > sizeof(d->ehdr))
                want = sizeof(d->ehdr);
            if (want > d->total - d->elem)
                want = d->total - d->elem;
            k = want - d->ehdr_len < end - pos ? want - d->ehdr_len : end - pos;
            memcpy(d->ehdr + d->ehdr_len, data + (pos - pos0), k);
            d->ehdr_len += k;
            pos += k;
            if (d->ehdr_len < want)
                break; /* the rest comes with the next chunk */
            if (!d->elem_end) {
                elem_bound(d);
                continue;
            }
            file_decide(s, dir, d, cb, arg);
            if (dir == 0)
                fixed_request(s, d, cb, arg);
            command_end(s, d, pos, cb, arg); /* a command its first bytes were all of */
            continue;
        }
        uint32_t stop = d->elem_end < end ? d->elem_end : end;

        if (d->fslot >= 0) { /* file data of this chunk not handed over yet */
            uint32_t a = d->femit > pos ? d->femit : pos;
            uint32_t z = stop < d->fend ? stop : d->fend;

            if (a < z)
                hand_over(d, dir, data + (a - pos0), z - a, a, cb, arg);
        }
        pos = stop;
        command_end(s, d, pos, cb, arg);
    }
}

/*
 * Frames a direction into messages: NetBIOS session messages (4-byte header, 24-bit
 * length) or DCE-RPC fragments (frag_len at bytes 8-9, header included), keeps each
 * message's first SMB_PEEK bytes and hands them over once, skips the rest.
 */
void smb_data(smb_state *s, int dir, const uint8_t *p, size_t len, bool gap, smb_ev_cb cb,
              void *arg)
{
    smb_dir *d = dir == 0 ? &s->d : &s->r;
    uint32_t hsize = s->dcerpc_tcp ? RPC_HDR : NBSS_HDR;

    if (gap && !d->done) {
        if (d->fslot >= 0) { /* the file being read or written loses bytes */
            smb_ev e = {.kind = SMB_EV_FILE_GAP, .file = d->fslot};
            cb(&e, arg);
        }
        d->done = true;
    }
    while (len && !d->done) {
        if (d->total == 0) { /* reading a header */
            size_t n = hsize - d->hdr_len;

            if (n > len)
                n = len;
            memcpy((s->dcerpc_tcp ? d->buf : d->hdr) + d->hdr_len, p, n);
            d->hdr_len += (uint8_t)n;
            p += n;
            len -= n;
            d->bytes += n;
            if (d->hdr_len < hsize)
                break;
            if (s->dcerpc_tcp) {
                bool little = (d->buf[4] & 0x10) != 0;

                if (d->buf[0] != 5 || d->buf[1] > 1) {
                    d->done = true;
                    break;
                }
                d->total = little ? le16(d->buf + 8) : (uint32_t)(d->buf[8] << 8 | d->buf[9]);
                if (d->total < RPC_HDR + 6) {
                    d->done = true;
                    break;
                }
                d->held = RPC_HDR;
                d->need = d->total - RPC_HDR;
            } else {
                d->total = (uint32_t)d->hdr[1] << 16 | (uint32_t)d->hdr[2] << 8 | d->hdr[3];
                if (d->hdr[0] != 0x00 && d->hdr[0] != 0x85) {
                    d->done = true; /* not a session message nor a keep-alive */
                    break;
                }
                d->held = 0;
                d->need = d->total;
                if (!d->total) { /* keep-alive */
                    d->hdr_len = 0;
                    continue;
                }
            }
        }
        {
            size_t n = d->need < len ? d->need : len;
            uint32_t room = d->held < SMB_PEEK ? SMB_PEEK - d->held : 0;
            uint32_t keep = (uint32_t)(n < room ? n : room);
            uint32_t pos0 = d->total - d->need; /* the chunk's offset in the message */

            memcpy(d->buf + d->held, p, keep);
            d->held += keep;
            d->need -= (uint32_t)n;
            if (!s->dcerpc_tcp)
                commands(s, dir, d, p, pos0, (uint32_t)n, cb, arg);
            p += n;
            len -= n;
            d->bytes += n;
        }
        if (d->need == 0) {
            if (s->dcerpc_tcp)
                rpc_pdu(s, d->buf, d->held, "tcp", cb, arg);
            else if (d->held >= SMB1_HDR + 1 && !memcmp(d->buf, "\xffSMB", 4) &&
                     (d->buf[9] & 0x80) == (dir == 0 ? 0 : 0x80))
                smb1_walk(s, d->buf, d->held, dir == 0 ? smb1_req_cmd : smb1_resp_cmd, cb, arg);
            else if (dir == 0)
                smb2_request(s, d->buf, d->held, cb, arg);
            else
                smb2_response(s, d->buf, d->held, cb, arg);
            for (uint8_t k = 0; k < d->nclose; k++)
                close_request(s, d->closes[k], cb, arg);
            d->nclose = 0;
            d->total = 0;
            d->hdr_len = 0;
            d->held = 0;
            d->elem = d->elem_end = d->ehdr_len = 0;
            d->decided = false;
            d->fslot = -1;
            d->rfile = -1;
        }
        if (d->bytes >= SMB_MAX_BYTES && !d->done) {
            if (d->fslot >= 0) {
                smb_ev e = {.kind = SMB_EV_FILE_GAP, .file = d->fslot};
                cb(&e, arg);
            }
            d->done = true;
        }
    }
}
