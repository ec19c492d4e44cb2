/*
 * smb.c - see smb.h.
 */
#include "smb.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { NBSS_HDR = 4, RPC_HDR = 10 };
enum { SMB2_TREE_CONNECT = 3, SMB2_CREATE = 5, SMB2_WRITE = 9, SMB2_IOCTL = 11 };
#define FSCTL_PIPE_TRANSCEIVE 0x0011C017u

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
    s->dcerpc_tcp = first && len >= 3 && first[0] == 5;
    if (s->dcerpc_tcp)
        s->r.done = true; /* nothing to read from the server */
}

bool smb_done(const smb_state *s)
{
    return s->d.done && s->r.done;
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

static const char *tree_path(const smb_state *s, uint32_t tree_id)
{
    for (uint32_t i = 0; i < s->ntrees && i < 8; i++)
        if (s->trees[i].tree_id == tree_id)
            return s->trees[i].path;
    return NULL;
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

/* The client's SMB2 message m of n bytes held (maybe the start of a longer one). */
static void smb2_request(smb_state *s, const uint8_t *m, uint32_t n, smb_ev_cb cb, void *arg)
{
    uint32_t off = 0;

    for (int guard = 0; guard < 32 && off + 64 <= n; guard++) {
        const uint8_t *h = m + off, *b = h + 64;
        uint32_t avail = n - off, next = le32(h + 20);
        uint16_t cmd = le16(h + 12);

        if (memcmp(h, "\xfeSMB", 4) || (le32(h + 16) & 1))
            return;
        if (cmd == SMB2_TREE_CONNECT && avail >= 64 + 8) {
            uint32_t po = le16(b + 4), pl = le16(b + 6);
            char path[128];

            if (po >= 64 && po + pl <= avail) {
                uint32_t slot = (uint32_t)(le64(h + 24) % 4);
                smb_ev e = {.kind = SMB_EV_TREE, .transport = "smb"};

                utf16_to_utf8(h + po, pl, path, sizeof(path));
                s->pending_tree[slot].msg_id = le64(h + 24);
                memcpy(s->pending_tree[slot].path, path, sizeof(path));
                e.share = path;
                e.admin_share = admin_share(path);
                if (seen_once(s, "tree", path, 0))
                    cb(&e, arg);
            }
        } else if (cmd == SMB2_CREATE && avail >= 64 + 48) {
            uint32_t no = le16(b + 44), nl = le16(b + 46);
            const char *share = tree_path(s, le32(h + 36));
            char name[256];

            if (no >= 64 && no + nl <= avail && nl) {
                utf16_to_utf8(h + no, nl, name, sizeof(name));
                if ((share && admin_share(share)) || !share) {
                    smb_ev e = {.kind = SMB_EV_CREATE,
                                .transport = "smb",
                                .share = share,
                                .filename = name,
                                .admin_share = share && admin_share(share)};

                    if (seen_once(s, share ? share : "", name, 1))
                        cb(&e, arg);
                }
            }
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

/* The server's message: a successful TREE_CONNECT response names its TreeId. */
static void smb2_response(smb_state *s, const uint8_t *m, uint32_t n)
{
    uint32_t off = 0;

    for (int guard = 0; guard < 32 && off + 64 <= n; guard++) {
        const uint8_t *h = m + off;
        uint32_t next = le32(h + 20);

        if (memcmp(h, "\xfeSMB", 4))
            return;
        if (le16(h + 12) == SMB2_TREE_CONNECT && (le32(h + 16) & 1) && le32(h + 8) == 0) {
            uint64_t id = le64(h + 24);

            for (int i = 0; i < 4; i++)
                if (s->pending_tree[i].path[0] && s->pending_tree[i].msg_id == id) {
                    uint32_t t = s->ntrees++ % 8;

                    s->trees[t].tree_id = le32(h + 36);
                    memcpy(s->trees[t].path, s->pending_tree[i].path, sizeof(s->trees[t].path));
                    s->pending_tree[i].path[0] = '\0';
                }
        }
        if (!next || next % 8 || next < 64 || next > n - off)
            return;
        off += next;
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

    if (gap)
        d->done = true;
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

            memcpy(d->buf + d->held, p, keep);
            d->held += keep;
            d->need -= (uint32_t)n;
            p += n;
            len -= n;
            d->bytes += n;
        }
        if (d->need == 0) {
            if (s->dcerpc_tcp)
                rpc_pdu(s, d->buf, d->held, "tcp", cb, arg);
            else if (dir == 0)
                smb2_request(s, d->buf, d->held, cb, arg);
            else
                smb2_response(s, d->buf, d->held);
            d->total = 0;
            d->hdr_len = 0;
            d->held = 0;
        }
        if (d->bytes >= SMB_MAX_BYTES)
            d->done = true;
    }
}
