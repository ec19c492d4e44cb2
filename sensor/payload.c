/*
 * payload.c - payload inspection for a worker: TCP reassembly (reassembly.c)
 * feeding per-flow scan buffers for YARA (yara_scan.c, each match written as
 * a yara event) and the application parsers (http.c, tls_records.c, smb.c, ftp.c,
 * krb5.c, files that are a whole stream); a UDP direction's first datagrams are scanned
 * as one buffer; DNS (dns.c) and Kerberos datagrams become events.
 */
#include "pipeline_int.h"

#include <arpa/inet.h>
#include <magic.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/fh_log.h"
#include "community_id.h"
#include "dns.h"
#include "files.h"
#include "ftp.h"
#include "krb5.h"
#include "http.h"
#include "smb.h"
#include "ftp_expect.h"
#include "mime.h"
#include "smb_files.h"
#include "smtp.h"
#include "tls_records.h"

/*
 * Per-flow state (flow->payload), made on the flow's first TCP packet or UDP
 * match while YARA or an application parser is on. Each TCP direction is
 * reassembled; with YARA, into a scan buffer of at most yara.max_bytes
 * (yara.tls_bytes for TLS; grown on demand, bounded by yara.memcap) scanned
 * once: when the buffer is full, when the direction's FIN is reached in order,
 * at RST, or when the flow ends. The flow's first bytes to the server choose
 * its parser (app_decide: FTP and Kerberos by the server port, then HTTP, TLS records,
 * SMB/DCE-RPC or none), and its directions stay reassembled past the scan buffer while
 * that parser wants them (app_wants). A UDP direction's first datagrams are kept in
 * its scan buffer and scanned together (payload_udp); `seen`
 * keeps each (rule, direction) to one yara event per flow, whether it matched a
 * datagram, the stream or a file.
 */
typedef struct {
    reasm_dir rd[2];
    uint8_t *buf[2];
    uint32_t len[2], cap[2];
    uint64_t fin_off[2]; /* stream offset of the FIN, when fin[dir] */
    uint8_t fin[2];
    uint8_t done[2];     /* reassembly over: nothing more is delivered */
    uint8_t raw_done[2]; /* the scan buffer was scanned (or YARA is off) */
    uint8_t trunc[2];    /* payload not buffered (yara.memcap) */
    uint8_t app;         /* APP_UNDECIDED, APP_HTTP, ... APP_NONE */
    http_conn *http;
    tls_records *tls;
    smb_state *smb;
    ftp_state *ftp;
    krb5_stream *krb; /* [2]: the two directions of a Kerberos TCP flow */
    uint64_t *seen;   /* hashes of (namespace, rule, direction) reported */
    uint32_t nseen, capseen;
    /* A file that is the whole stream of a direction (no application protocol): a PE,
     * ELF, archive or document from the first byte, or after a 4-byte length (payload
     * stagers). raw_file_start() decides on the first RAW_HEAD bytes. */
    uint8_t head[2][16];
    uint8_t head_len[2];
    uint8_t fstate[2]; /* RAW_UNDECIDED, RAW_FILE, RAW_NONE */
    fh_file *rawfile[2];
    smb_files *smbfiles; /* the files of an SMB flow (smb.c's slots), made on the first */
    smtp_state *smtp;
    uint8_t *msg; /* the SMTP message being read (smtp.max_message at most) */
    uint32_t msg_len, msg_cap;
    bool msg_cut; /* bytes of it were not kept */
} flow_payload;

enum { RAW_UNDECIDED, RAW_FILE, RAW_NONE };
#define RAW_HEAD 8 /* bytes that decide: a 4-byte length and a 4-byte magic */

#define SCAN_BUF_MIN 4096

enum {
    APP_UNDECIDED,
    APP_HTTP,
    APP_TLS,
    APP_SMB,
    APP_FTP,
    APP_FTPDATA, /* an FTP data connection (ftp_expect.c): each direction is a file */
    APP_KRB5,
    APP_SMTP,
    APP_NONE
};

typedef struct {
    pworker *p;
    flow *f;
    flow_payload *fp;
    int dir;
    uint64_t ts_us;
    uint32_t scanned;
    bool udp;
} scan_ctx;

static void payload_account(pworker *p, flow *f)
{
    const flow_payload *fp = f->payload;
    size_t mem = 0;

    if (fp)
        mem = sizeof(*fp) + fp->rd[0].mem + fp->rd[1].mem + fp->cap[0] + fp->cap[1] +
              (size_t)fp->capseen * sizeof(uint64_t) + http_conn_mem(fp->http) +
              (fp->tls ? sizeof(tls_records) : 0) + (fp->smb ? sizeof(smb_state) : 0) +
              (fp->ftp ? sizeof(ftp_state) : 0) +
              (fp->krb ? 2 * sizeof(krb5_stream) + (fp->krb[0].buf ? fp->krb[0].need : 0) +
                             (fp->krb[1].buf ? fp->krb[1].need : 0)
                       : 0) +
              (fp->rawfile[0] ? sizeof(fh_file) : 0) + (fp->rawfile[1] ? sizeof(fh_file) : 0) +
              (fp->smbfiles ? smb_files_mem(fp->smbfiles) : 0) +
              (fp->smtp ? sizeof(smtp_state) : 0) + fp->msg_cap;
    flow_set_payload_mem(&p->flows, f, mem > UINT32_MAX ? UINT32_MAX : (uint32_t)mem);
}

static flow_payload *payload_of(pworker *p, flow *f)
{
    if (!f->payload) {
        f->payload = calloc(1, sizeof(flow_payload));
        if (f->payload)
            payload_account(p, f);
    }
    return f->payload;
}

static void free_scan_buf(payload_worker *w, flow_payload *fp, int dir)
{
    free(fp->buf[dir]);
    w->buf_mem -= fp->cap[dir];
    fp->buf[dir] = NULL;
    fp->cap[dir] = 0;
    fp->len[dir] = 0;
}

/* The server port decides FTP, Kerberos and SMTP (their servers may speak first); otherwise
 * the first bytes to the server decide: HTTP, TLS, SMB, SMTP or none. */
static void app_decide(pworker *p, flow *f, flow_payload *fp, int dir, const uint8_t *data,
                       uint32_t len, uint64_t ts_us)
{
    fp->app = APP_NONE;
    if (ftp_expect_claim(p->front->ftp_expect, f->ip_version, f->srv, f->srv_port, ts_us)) {
        fp->app = APP_FTPDATA; /* announced on an FTP control connection */
        p->pw.cnt.ftp_data_flows++;
        return;
    }
    if (p->pw.ftp && f->srv_port == 21) { /* the server speaks first: decided by the port */
        fp->ftp = malloc(sizeof(*fp->ftp));
        if (fp->ftp) {
            ftp_init(fp->ftp);
            fp->app = APP_FTP;
            p->pw.cnt.ftp_flows++;
        }
        return;
    }
    if (p->pw.krb5 && f->srv_port == 88) {
        fp->krb = calloc(2, sizeof(*fp->krb));
        if (fp->krb)
            fp->app = APP_KRB5;
        return;
    }
    if (p->pw.smtp && (f->srv_port == 25 || f->srv_port == 587 || f->srv_port == 2525 ||
                       (dir == FLOW_TOSERVER && smtp_is_start(data, len)))) {
        fp->smtp = malloc(sizeof(*fp->smtp));
        if (fp->smtp) {
            smtp_init(fp->smtp);
            fp->app = APP_SMTP;
            p->pw.cnt.smtp_flows++;
        }
        return;
    }
    if (dir != FLOW_TOSERVER)
        return;
    if (p->pw.http && http_is_request_start(data, len)) {
        fp->http = http_conn_new(p, f);
        if (fp->http)
            fp->app = APP_HTTP;
    } else if (p->pw.tls && tls_is_client_hello_start(data, len)) {
        fp->tls = malloc(sizeof(*fp->tls));
        if (fp->tls) {
            tls_records_init(fp->tls, data, len);
            fp->app = APP_TLS;
            p->pw.cnt.tls_flows++;
        }
    } else if (p->pw.smb && smb_is_start(data, len)) {
        fp->smb = malloc(sizeof(*fp->smb));
        if (fp->smb) {
            smb_init(fp->smb, data, len);
            fp->app = APP_SMB;
            p->pw.cnt.smb_flows++;
        }
    }
}

/* An SMB2 / DCE-RPC fact (smb.c): an smb event (shares, files) or a dcerpc event. */
/* ---- SMTP ------------------------------------------------------------------ */

/* Frees the message buffer of an SMTP flow. */
static void smtp_msg_free(payload_worker *w, flow_payload *fp)
{
    w->buf_mem -= fp->msg_cap;
    free(fp->msg);
    fp->msg = NULL;
    fp->msg_len = fp->msg_cap = 0;
    fp->msg_cut = false;
}

/* Keeps the message's next bytes, up to smtp.max_message and within yara.memcap. */
static void smtp_msg_append(payload_worker *w, flow_payload *fp, const uint8_t *data, size_t n)
{
    if (fp->msg_cut)
        return;
    if (n > w->smtp_max - fp->msg_len) {
        n = w->smtp_max - fp->msg_len;
        fp->msg_cut = true;
    }
    if (!worker_buf_reserve(w, &fp->msg, &fp->msg_cap, fp->msg_len, (uint32_t)n, 16384,
                            w->smtp_max)) {
        fp->msg_cut = true;
        return;
    }
    memcpy(fp->msg + fp->msg_len, data, n);
    fp->msg_len += (uint32_t)n;
}

typedef struct {
    scan_ctx *c;
    const smtp_envelope *env;
    bool truncated; /* the message did not end, or was cut: its last attachment is cut */
    unsigned n;
    char names[SMTP_MAX_ATTACHMENTS][256];
    mime_result result;
    fh_file last; /* the last attachment read, closed when the next comes or at the end */
} smtp_read;

/* The "smtp" object: the envelope. */
static void put_envelope(jbuf *b, const smtp_envelope *env)
{
    jbuf_obj_open(b, "smtp");
    if (env->helo[0])
        jbuf_str(b, "helo", env->helo);
    if (env->mail_from[0])
        jbuf_str(b, "mail_from", env->mail_from);
    jbuf_arr_open(b, "rcpt_to");
    for (uint32_t i = 0; i < env->nrcpt && i < SMTP_MAX_RCPT; i++)
        jbuf_str(b, NULL, env->rcpt[i]);
    jbuf_arr_close(b);
    if (env->nrcpt > SMTP_MAX_RCPT)
        jbuf_u64(b, "rcpt_count", env->nrcpt);
    jbuf_obj_close(b);
}

static void smtp_file_ctx(jbuf *b, void *arg)
{
    put_envelope(b, arg);
}

/* Ends the last attachment read: its fileinfo event (and yara events), source smtp. */
static void close_attachment(smtp_read *r, bool complete)
{
    scan_ctx *c = r->c;

    if (r->last.open) /* tx_id: the message's number in the session, from 0 */
        file_close(c->p, c->f, &r->last, c->ts_us, "smtp", c->fp->smtp->messages - 1, complete,
                   smtp_file_ctx, (void *)r->env);
}

/* An attachment (mime.c). The one before it is complete; this one is, unless it is the
 * last of a message that was cut (the cut is in it, or after it: it cannot be told). */
static void on_attachment(const mime_attachment *a, void *arg)
{
    smtp_read *r = arg;
    scan_ctx *c = r->c;
    const char *name = a->filename ? a->filename : "";

    close_attachment(r, true);
    c->p->pw.cnt.smtp_attachments++;
    if (r->n < SMTP_MAX_ATTACHMENTS)
        snprintf(r->names[r->n], sizeof(r->names[0]), "%s", name);
    r->n++;
    file_open(c->p, &r->last, FLOW_TOSERVER, name[0] ? name : NULL, strlen(name));
    file_declared_type(&r->last, a->content_type, strlen(a->content_type));
    file_data(c->p, &r->last, a->data, a->len);
}

/* The message's header fields (mime.c), then the smtp event. */
static void write_smtp_event(smtp_read *r, const mime_headers *h)
{
    pworker *p = r->c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];
    static const char *const status[] = {"PARSE_DONE", "TOO_COMPLEX", "PARSE_ERROR"};

    jbuf_reset(b);
    eve_flow_header(p, b, r->c->f, r->c->ts_us, "smtp", cid);
    put_envelope(b, r->env);
    jbuf_obj_open(b, "email");
    jbuf_str(b, "status", status[r->result]);
    if (r->truncated)
        jbuf_bool(b, "truncated", true);
    if (h) {
        if (h->from)
            jbuf_str(b, "from", h->from);
        if (h->to)
            jbuf_str(b, "to", h->to);
        if (h->cc)
            jbuf_str(b, "cc", h->cc);
        if (h->subject)
            jbuf_str(b, "subject", h->subject);
        if (h->message_id)
            jbuf_str(b, "message_id", h->message_id);
        if (h->x_mailer)
            jbuf_str(b, "x_mailer", h->x_mailer);
    }
    if (r->n) {
        jbuf_arr_open(b, "attachment");
        for (unsigned i = 0; i < r->n && i < SMTP_MAX_ATTACHMENTS; i++)
            jbuf_str(b, NULL, r->names[i]);
        jbuf_arr_close(b);
        if (r->n > SMTP_MAX_ATTACHMENTS)
            jbuf_u64(b, "attachment_count", r->n);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "smtp", cid);
}

static void on_headers(const mime_headers *h, void *arg)
{
    smtp_read *r = arg;

    close_attachment(r, !r->truncated);
    write_smtp_event(r, h);
}

/* The envelope and message bytes of an SMTP session (smtp.c). */
static void on_smtp_ev(const smtp_ev *e, void *arg)
{
    scan_ctx *c = arg;
    payload_worker *w = &c->p->pw;
    flow_payload *fp = c->fp;
    smtp_read r = {.c = c, .env = e->env};
    mime_callbacks cb = {on_attachment, on_headers, &r};

    if (e->kind == SMTP_EV_BEGIN) {
        smtp_msg_free(w, fp);
        return;
    }
    if (e->kind == SMTP_EV_BODY) {
        smtp_msg_append(w, fp, e->data, e->len);
        return;
    }
    w->cnt.smtp_messages++;
    r.truncated = !e->complete || fp->msg_cut;
    w->cnt.smtp_cut += fp->msg_cut;
    r.result = mime_parse(fp->msg ? fp->msg : (const uint8_t *)"", fp->msg_len, &cb);
    close_attachment(&r, !r.truncated); /* when no headers callback came */
    if (r.result != MIME_OK) {
        w->cnt.smtp_mime_errors++;
        write_smtp_event(&r, NULL);
    }
    smtp_msg_free(w, fp);
    payload_account(c->p, c->f);
}

/* File data, gaps and ends of an SMB flow (smb.c), to smb_files.c. */
static void on_smb_file(scan_ctx *c, const smb_ev *e)
{
    flow_payload *fp = c->fp;
    const smb_file *sf = smb_file_at(fp->smb, e->file);

    if (!fp->smbfiles) {
        if (e->kind != SMB_EV_FILE_DATA || !sf)
            return;
        fp->smbfiles = calloc(1, sizeof(*fp->smbfiles));
        if (!fp->smbfiles)
            return;
    }
    if (e->kind == SMB_EV_FILE_CLOSE)
        smb_files_close(c->p, c->f, fp->smbfiles, e->file, sf ? sf->share : NULL, e->complete,
                        c->ts_us);
    else if (e->kind == SMB_EV_FILE_GAP)
        smb_files_gap(fp->smbfiles, e->file);
    else if (sf)
        smb_files_data(c->p, fp->smbfiles, e->file, e->dir == 0 ? FLOW_TOSERVER : FLOW_TOCLIENT,
                       sf->name, e->offset, e->data, e->len);
}

static void on_smb_ev(const smb_ev *e, void *arg)
{
    scan_ctx *c = arg;
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];
    bool smb = e->kind == SMB_EV_TREE || e->kind == SMB_EV_CREATE;
    const char *type = smb ? "smb" : "dcerpc";

    if (e->kind == SMB_EV_FILE_DATA || e->kind == SMB_EV_FILE_GAP || e->kind == SMB_EV_FILE_CLOSE) {
        on_smb_file(c, e);
        return;
    }

    p->pw.cnt.smb_events++;
    jbuf_reset(b);
    eve_flow_header(p, b, c->f, c->ts_us, type, cid);
    if (smb) {
        jbuf_obj_open(b, "smb");
        static const char *const commands[2][2] = {
            {"SMB2_COMMAND_TREE_CONNECT", "SMB2_COMMAND_CREATE"},
            {"SMB1_COMMAND_TREE_CONNECT_ANDX", "SMB1_COMMAND_NT_CREATE_ANDX"}};

        jbuf_str(b, "command", commands[e->smb1][e->kind == SMB_EV_CREATE]);
        if (e->share)
            jbuf_str(b, "share", e->share);
        if (e->filename)
            jbuf_str(b, "filename", e->filename);
        jbuf_bool(b, "admin_share", e->admin_share);
        jbuf_obj_close(b);
    } else {
        jbuf_obj_open(b, "dcerpc");
        jbuf_str(b, "request", e->kind == SMB_EV_BIND ? "BIND" : "REQUEST");
        jbuf_str(b, "transport", e->transport);
        if (e->iface)
            jbuf_str(b, "interface", e->iface);
        jbuf_str(b, "uuid", e->uuid);
        if (e->kind == SMB_EV_REQUEST) {
            jbuf_u64(b, "opnum", e->opnum);
            jbuf_str(b, "operation", e->op);
        }
        jbuf_obj_close(b);
    }
    jbuf_obj_close(b);
    eve_emit(p, type, cid);
}

/* An FTP command of the client (ftp.c): an ftp event. */
static void on_ftp_ev(const ftp_ev *e, void *arg)
{
    scan_ctx *c = arg;
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN], a[INET6_ADDRSTRLEN];
    ftp_expect_table *t = p->front->ftp_expect;

    /* where the data connections will go, and what they carry */
    if (e->passive) /* on the control connection's server, whatever 227 says: a NAT'd
                     * server names its inner address, and no other host can be claimed */
        ftp_expect_add(t, c->f->flow_id, c->f->ip_version, c->f->srv, e->port, c->ts_us);
    else if (e->active)
        ftp_expect_add(t, c->f->flow_id, e->af == AF_INET ? 4 : 6, e->ip, e->port, c->ts_us);
    if (e->transfer)
        ftp_expect_name(t, c->f->flow_id, e->command, e->arg, e->arg_len);
    if (e->quiet)
        return;
    p->pw.cnt.ftp_events++;
    p->pw.cnt.ftp_bounces += e->bounce;
    jbuf_reset(b);
    eve_flow_header(p, b, c->f, c->ts_us, "ftp", cid);
    jbuf_obj_open(b, "ftp");
    jbuf_str(b, "command", e->command); /* never PASS: ftp.c does not hand it over */
    jbuf_strn(b, "command_data", e->arg, e->arg_len);
    if (e->active) {
        jbuf_obj_open(b, "active");
        inet_ntop(e->af, e->ip, a, sizeof(a));
        jbuf_str(b, "ip", a);
        jbuf_u64(b, "port", e->port);
        jbuf_obj_close(b);
        jbuf_bool(b, "bounce", e->bounce);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "ftp", cid);
}

static const char *krb5_error_name(int code, char *buf, size_t len)
{
    switch (code) {
    case 6:
        return "KDC_ERR_C_PRINCIPAL_UNKNOWN";
    case 7:
        return "KDC_ERR_S_PRINCIPAL_UNKNOWN";
    case 14:
        return "KDC_ERR_ETYPE_NOSUPP";
    case 18:
        return "KDC_ERR_CLIENT_REVOKED";
    case 23:
        return "KDC_ERR_KEY_EXPIRED";
    case 24:
        return "KDC_ERR_PREAUTH_FAILED";
    case 25:
        return "KDC_ERR_PREAUTH_REQUIRED";
    case 32:
        return "KRB_AP_ERR_TKT_EXPIRED";
    case 37:
        return "KRB_AP_ERR_SKEW";
    case 68:
        return "KDC_ERR_WRONG_REALM";
    }
    snprintf(buf, len, "KRB_ERR_%d", code);
    return buf;
}

/* An encryption type by name ("etype-N" when unnamed); key NULL in an array. */
static void put_etype(jbuf *b, const char *key, int e)
{
    const char *n = krb5_etype_name(e);
    char buf[24];

    if (!n) {
        snprintf(buf, sizeof(buf), "etype-%d", e);
        n = buf;
    }
    jbuf_str(b, key, n);
}

/*
 * A Kerberos message (krb5.c): a krb5 event, Suricata's layout (msg_type, cname, realm,
 * sname, encryption, weak_encryption, failed_request / error_code) plus the ticket's
 * encryption type and, for requests, the types asked for.
 */
static void on_krb5_msg(const krb5_msg *m, void *arg)
{
    scan_ctx *c = arg;
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN], ebuf[24];
    bool weak = false;

    p->pw.cnt.krb5_messages++;
    jbuf_reset(b);
    eve_flow_header(p, b, c->f, c->ts_us, "krb5", cid);
    jbuf_obj_open(b, "krb5");
    jbuf_str(b, "msg_type", krb5_msg_type_name(m->msg_type));
    if (m->cname[0])
        jbuf_str(b, "cname", m->cname);
    if (m->realm[0])
        jbuf_str(b, "realm", m->realm);
    if (m->sname[0])
        jbuf_str(b, "sname", m->sname);
    if (m->etype != -1) {
        put_etype(b, "encryption", m->etype);
        weak = krb5_etype_weak(m->etype);
    }
    if (m->ticket_etype != -1) {
        put_etype(b, "ticket_encryption", m->ticket_etype);
        weak = weak || krb5_etype_weak(m->ticket_etype);
        p->pw.cnt.krb5_weak_tickets += krb5_etype_weak(m->ticket_etype);
    }
    if (m->n_req_etypes) {
        bool all_weak = true;
        jbuf_arr_open(b, "requested_encryption");
        for (int i = 0; i < m->n_req_etypes; i++) {
            put_etype(b, NULL, m->req_etypes[i]);
            all_weak = all_weak && krb5_etype_weak(m->req_etypes[i]);
        }
        jbuf_arr_close(b);
        weak = all_weak;
    }
    jbuf_bool(b, "weak_encryption", weak);
    if (m->msg_type == 30 && m->error_code >= 0)
        jbuf_str(b, "error_code", krb5_error_name(m->error_code, ebuf, sizeof(ebuf)));
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "krb5", cid);
}

static void tls_deliver(scan_ctx *c, const uint8_t *data, uint32_t len, bool gap)
{
    flow_payload *fp = c->fp;
    uint32_t found = tls_records_data(fp->tls, c->dir, data, len, gap);

    for (int a = 0; found && a < TLS_ANOM_COUNT; a++)
        if (found & (1u << a)) {
            c->p->pw.cnt.tls_anomalies++;
            eve_app_anomaly(c->p, c->f, c->ts_us, "tls", tls_anomaly_name((tls_anomaly)a), c->dir);
        }
}

/* The scan buffer's size: TLS keeps its handshake (certificates, up to yara.tls_bytes), not
 * the ciphertext from the direction's first ChangeCipherSpec or application data record. */
static uint32_t scan_limit(const payload_worker *w, const flow_payload *fp, int dir)
{
    uint32_t limit = w->max_bytes;

    if (fp->app == APP_TLS) {
        int64_t plain = tls_records_plain_end(fp->tls, dir);

        if (w->tls_bytes < limit)
            limit = w->tls_bytes;
        if (plain >= 0 && plain < limit)
            limit = plain ? (uint32_t)plain : 1;
    }
    return limit;
}

/*
 * Where a file starts in a stream's first bytes: 0 for a file magic (or a script's "#!/")
 * at the start, 4 for
 * one after a little-endian length that could be the file's (Metasploit-style stagers
 * send the stage's length, then the stage), -1 for none.
 */
static int raw_file_start(const uint8_t *h, uint32_t n)
{
    static const struct {
        const char *m;
        uint8_t len;
    } magic[] = {
        {"MZ", 2},
        {"\x7f"
         "ELF",
         4},
        {"PK\x03\x04", 4},
        {"%PDF", 4},
        {"\xd0\xcf\x11\xe0", 4},
        {"Rar!", 4},
        {"7z\xbc\xaf", 4},
        {"\xcf\xfa\xed\xfe", 4},
        {"\xce\xfa\xed\xfe", 4},
        {"\xca\xfe\xba\xbe", 4},
        {"#!/", 3},
    };

    for (int at = 0; at <= 4; at += 4) {
        if (at == 4) {
            uint32_t l = n >= 4 ? (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                                      (uint32_t)h[3] << 24
                                : 0;
            if (l < 64 || l > (64u << 20))
                break;
        }
        for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++)
            if (n >= (uint32_t)at + magic[i].len && memcmp(h + at, magic[i].m, magic[i].len) == 0)
                return at;
    }
    return -1;
}

/* Direction d of the flow is a file from here on, starting with first[0..n); false (and
 * never a file) when there is no memory for it. */
static bool raw_file_begin(scan_ctx *c, int d, const uint8_t *first, size_t n)
{
    flow_payload *fp = c->fp;

    if (!(fp->rawfile[d] = calloc(1, sizeof(fh_file)))) {
        fp->fstate[d] = RAW_NONE;
        return false;
    }
    fp->fstate[d] = RAW_FILE;
    file_open(c->p, fp->rawfile[d], d, NULL, 0);
    file_data(c->p, fp->rawfile[d], first, n);
    return true;
}

/*
 * A stream with no application protocol: is it a file from its first bytes? Then every
 * byte goes to files.c (fileinfo with source "tcp": type, SHA-256, YARA on the file
 * instead of the raw stream).
 */
static void raw_file_deliver(scan_ctx *c, const uint8_t *data, uint32_t len, bool gap)
{
    flow_payload *fp = c->fp;
    int d = c->dir, at;
    uint32_t take;

    if (fp->fstate[d] == RAW_NONE ||
        (fp->app != APP_FTPDATA && (fp->app != APP_NONE || !c->p->pw.raw_files)))
        return;
    if (fp->fstate[d] == RAW_FILE) {
        if (gap)
            file_gap(fp->rawfile[d]);
        file_data(c->p, fp->rawfile[d], data, len);
        return;
    }
    if (gap) { /* the first bytes are missing: nothing to decide on */
        fp->fstate[d] = RAW_NONE;
        return;
    }
    if (fp->app == APP_FTPDATA) { /* a file from the first byte, whatever it is */
        raw_file_begin(c, d, data, len);
        return;
    }
    take = RAW_HEAD - fp->head_len[d];
    if (take > len)
        take = len;
    memcpy(fp->head[d] + fp->head_len[d], data, take);
    fp->head_len[d] += (uint8_t)take;
    if (fp->head_len[d] < RAW_HEAD)
        return;
    at = raw_file_start(fp->head[d], fp->head_len[d]);
    if (at < 0) {
        fp->fstate[d] = RAW_NONE;
        return;
    }
    if (!raw_file_begin(c, d, fp->head[d] + at, (size_t)(fp->head_len[d] - at)))
        return;
    c->p->pw.cnt.raw_files++;
    file_data(c->p, fp->rawfile[d], data + take, len - take);
}

/* The "ftp" object of an FTP data connection's fileinfo: the command that moved it. */
static void ftp_file_ctx(jbuf *b, void *arg)
{
    jbuf_obj_open(b, "ftp");
    jbuf_str(b, "command", arg);
    jbuf_obj_close(b);
}

/* The direction's stream ended: its file, if it was one, is complete when a FIN ended it.
 * An FTP data connection's is named by the transfer command of its control connection (a
 * listing, LIST/NLST/MLSD, is no file). */
static void raw_file_end(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    fh_file *rf = fp->rawfile[dir];
    bool complete = fp->fin[dir] && !fp->rd[dir].gaps;

    if (!rf)
        return;
    if (fp->app == APP_FTPDATA) {
        char cmd[5], name[256];

        ftp_expect_lookup(p->front->ftp_expect, f->ip_version, f->srv, f->srv_port, cmd, name,
                          sizeof(name));
        if (ftp_command_is_listing(cmd)) {
            file_discard(p, rf);
        } else {
            p->pw.cnt.ftp_data_files++;
            file_set_name(rf, name, strlen(name));
            file_close(p, f, rf, ts_us, "ftp", 0, complete, cmd[0] ? ftp_file_ctx : NULL, cmd);
        }
    } else {
        file_close(p, f, rf, ts_us, "tcp", 0, complete, NULL, NULL);
    }
    free(rf);
    fp->rawfile[dir] = NULL;
}

/* True while the flow's parser still wants the stream of a direction: with no parser,
 * while the direction may still be a file or is one (raw_file_deliver). */
static bool app_wants(const payload_worker *w, const flow_payload *fp, int dir)
{
    if (fp->app == APP_NONE)
        return w->raw_files && fp->fstate[dir] != RAW_NONE;
    if (fp->app == APP_FTPDATA)
        return fp->fstate[dir] != RAW_NONE;
    if (fp->app == APP_UNDECIDED || fp->app == APP_HTTP)
        return true;
    if (fp->app == APP_SMB)
        return !smb_done(fp->smb);
    if (fp->app == APP_FTP)
        return !ftp_done(fp->ftp);
    if (fp->app == APP_KRB5)
        return !fp->krb[0].broken || !fp->krb[1].broken;
    if (fp->app == APP_SMTP)
        return dir == FLOW_TOSERVER && fp->smtp->mode != SMTP_MODE_DONE;
    return fp->app == APP_TLS && !tls_records_done(fp->tls);
}

/* Appends n bytes to a direction's scan buffer (which grows from min_cap, doubling, up to
 * yara.max_bytes); past yara.memcap they are counted, not kept. */
static void scan_buf_append(payload_worker *w, flow_payload *fp, int d, const uint8_t *data,
                            uint32_t n, uint32_t min_cap)
{
    if (!worker_buf_reserve(w, &fp->buf[d], &fp->cap[d], fp->len[d], n, min_cap, w->max_bytes)) {
        fp->trunc[d] = 1;
        return;
    }
    memcpy(fp->buf[d] + fp->len[d], data, n);
    fp->len[d] += n;
}

/* Reassembly's deliver callback: the flow's parser, then the direction's scan buffer. */
static void on_deliver(void *arg, uint64_t offset, const uint8_t *data, uint32_t len,
                       unsigned flags)
{
    scan_ctx *c = arg;
    payload_worker *w = &c->p->pw;
    flow_payload *fp = c->fp;
    int d = c->dir;
    uint32_t n, limit;

    (void)offset;
    if (fp->app == APP_UNDECIDED && len)
        app_decide(c->p, c->f, fp, d, data, len, c->ts_us);
    if (fp->http)
        http_conn_data(fp->http, d, data, len, (flags & REASM_F_GAP) != 0, c->ts_us);
    else if (fp->tls)
        tls_deliver(c, data, len, (flags & REASM_F_GAP) != 0);
    else if (fp->smb)
        smb_data(fp->smb, d, data, len, (flags & REASM_F_GAP) != 0, on_smb_ev, c);
    else if (fp->krb)
        krb5_stream_data(&fp->krb[d], data, len, (flags & REASM_F_GAP) != 0, on_krb5_msg, c);
    else if (fp->smtp && d == FLOW_TOSERVER)
        smtp_data(fp->smtp, data, len, (flags & REASM_F_GAP) != 0, on_smtp_ev, c);
    else if (fp->ftp && d == FLOW_TOSERVER)
        ftp_data(fp->ftp, c->f->cli, c->f->ip_version, data, len, (flags & REASM_F_GAP) != 0,
                 on_ftp_ev, c);
    else if (fp->ftp)
        ftp_reply_data(fp->ftp, data, len, (flags & REASM_F_GAP) != 0, on_ftp_ev, c);
    else if (fp->app == APP_NONE || fp->app == APP_FTPDATA)
        raw_file_deliver(c, data, len, (flags & REASM_F_GAP) != 0);
    limit = scan_limit(w, fp, d);
    if (fp->raw_done[d] || fp->len[d] >= limit)
        return;
    n = limit - fp->len[d];
    if (n > len)
        n = len;
    scan_buf_append(w, fp, d, data, n, SCAN_BUF_MIN);
}

/* The scanner of the rules in service: a new one when the slot's generation moved. */
yara_scanner *payload_scanner(payload_worker *w)
{
    uint64_t g = yara_rules_slot_generation(w->slot);

    if (w->scanner && g == w->generation)
        return w->scanner;
    yara_rules *r = yara_rules_slot_get(w->slot);
    yara_scanner *s = r ? yara_scanner_new(r) : NULL;

    yara_rules_unref(r);
    if (s && yara_scanner_set_clean_cache(s, w->clean_cache) != FH_OK)
        fh_warn("YARA: no memory for a clean cache of %u entries; scanning every buffer",
                w->clean_cache);
    w->generation = g; /* a failure is not retried on every scan */
    if (!s) {
        if (r)
            fh_error("YARA: cannot make a scanner for the new rules; keeping the previous ones");
        return w->scanner;
    }
    yara_scanner_free(w->scanner);
    w->scanner = s;
    w->rule_sets++;
    return s;
}

static uint64_t match_hash(const yara_match *m, int dir)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *s = m->ns; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = m->rule; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (h ^ (uint64_t)dir) * 1099511628211ull;
}

/*
 * True the first time (rule, direction) matches in this flow: a UDP datagram, the TCP
 * stream or a file (files.c) of the flow. One yara event per rule and direction per
 * flow; a file's fileinfo event still lists every rule that matched it.
 */
bool payload_first_match(pworker *p, flow *f, const yara_match *m, int dir)
{
    flow_payload *fp = payload_of(p, f);
    uint64_t h = match_hash(m, dir);

    if (!fp)
        return true;
    for (uint32_t i = 0; i < fp->nseen; i++)
        if (fp->seen[i] == h)
            return false;
    if (fp->nseen == fp->capseen) {
        uint32_t nc = fp->capseen ? fp->capseen * 2 : 4;
        uint64_t *ns = realloc(fp->seen, nc * sizeof(*ns));

        if (!ns)
            return true;
        fp->seen = ns;
        fp->capseen = nc;
        payload_account(p, f);
    }
    fp->seen[fp->nseen++] = h;
    return true;
}

static int on_match(const yara_match *m, void *arg)
{
    scan_ctx *c = arg;
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];

    if (!payload_first_match(p, c->f, m, c->dir)) {
        if (c->udp)
            p->pw.cnt.udp_duplicates++;
        else
            p->pw.cnt.duplicates++;
        return 0;
    }
    p->pw.cnt.matches++;
    c->f->alerted = true; /* flow.alerted, as Suricata's: an alert event was raised on it */
    jbuf_reset(b);
    eve_flow_header(p, b, c->f, c->ts_us, "yara", cid);
    yara_match_to_json(b, m, c->dir == FLOW_TOSERVER ? YARA_DIR_TO_SERVER : YARA_DIR_TO_CLIENT,
                       p->pw.excerpt_bytes);
    jbuf_obj_open(b, "scan");
    jbuf_u64(b, "bytes", c->scanned);
    if (!c->udp) {
        const reasm_dir *rd = &c->fp->rd[c->dir];

        if (rd->gaps) {
            jbuf_u64(b, "gaps", rd->gaps);
            jbuf_u64(b, "gap_bytes", rd->gap_bytes);
        }
        if (c->fp->trunc[c->dir])
            jbuf_bool(b, "truncated", true);
    }
    jbuf_obj_close(b);
    jbuf_obj_close(b);
    eve_emit(p, "yara", cid);
    return 0;
}

static void run_scan(pworker *p, scan_ctx *c, const uint8_t *data, uint32_t len)
{
    payload_worker *w = &p->pw;
    yara_scanner *s = payload_scanner(w);

    if (!s || !len)
        return;
    c->scanned = len;
    payload_scan(w, s, data, len, on_match, c);
}

void payload_scan(payload_worker *w, yara_scanner *s, const void *data, size_t len,
                  yara_match_cb cb, void *arg)
{
    int rc;

    w->cnt.scans++;
    w->cnt.scanned_bytes += len;
    w->cnt.format_scans += yara_format_data(data, len);
    rc = yara_scan(s, data, len, cb, arg);
    w->cnt.cache_hits += yara_scanner_last_cached(s);
    w->cnt.prefiltered += yara_scanner_last_prefiltered(s);
    if (rc == FH_ERR_LIMIT)
        w->cnt.timeouts++;
    else if (rc < 0)
        w->cnt.errors++;
}

/*
 * True when a TCP direction's raw bytes need no scan of their own: an HTTP flow's responses
 * without gaps (their bodies are scanned as files, de-chunked and decoded: files.c), a TLS flow's
 * ClientHellos (its fields are in the tls event; the certificates come from the server),
 * and the directions of flows nDPI has found encrypted past their first bytes.
 */
static bool raw_scan_needless(const pworker *p, const flow *f, const flow_payload *fp, int dir)
{
    if (fp->fstate[dir] == RAW_FILE)
        return true;         /* scanned as a file */
    if (fp->app == APP_HTTP) /* unless bytes are missing: libhtp may have lost the body */
        return dir == FLOW_TOCLIENT && !fp->rd[dir].gaps;
    if (fp->app == APP_TLS)
        return dir == FLOW_TOSERVER;
    return fp->app == APP_NONE && p->dpi && dpi_flow_opaque(p->dpi, f);
}

/* Scans a TCP direction's buffer once with what it holds, then frees it. */
static void scan_tcp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    payload_worker *w = &p->pw;
    scan_ctx c = {p, f, fp, dir, ts_us, 0, false};

    if (fp->raw_done[dir])
        return;
    fp->raw_done[dir] = 1;
    if (fp->len[dir] && w->slot && raw_scan_needless(p, f, fp, dir)) {
        w->cnt.tcp_unscanned++;
    } else if (fp->len[dir] && w->slot) {
        w->cnt.tcp_scans++;
        if (fp->rd[dir].gaps)
            w->cnt.scans_with_gaps++;
        run_scan(p, &c, fp->buf[dir], fp->len[dir]);
    }
    free_scan_buf(w, fp, dir);
    payload_account(p, f);
}

/* The direction's reassembly is over: scans what its buffer holds and frees it. */
static void finish_tcp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    if (fp->done[dir])
        return;
    fp->done[dir] = 1;
    reasm_release(&p->pw.reasm, &fp->rd[dir]);
    scan_tcp_dir(p, f, fp, dir, ts_us);
    raw_file_end(p, f, fp, dir, ts_us);
}

/* Delivers what a direction still buffers (holes become gaps) and finishes it. */
static void close_tcp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    scan_ctx c = {p, f, fp, dir, ts_us, 0, false};

    if (fp->done[dir])
        return;
    reasm_close(&p->pw.reasm, &fp->rd[dir], on_deliver, &c);
    finish_tcp_dir(p, f, fp, dir, ts_us);
}

static void payload_tcp(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    payload_worker *w = &p->pw;
    flow_payload *fp = payload_of(p, f);
    reasm_dir *rd;
    uint32_t seq = k->tcp_seq;
    scan_ctx c = {p, f, fp, dir, k->ts_us, 0, false};

    if (!fp)
        return;
    rd = &fp->rd[dir];
    if (!fp->done[dir]) {
        if (k->tcp_flags & 0x02) { /* SYN */
            reasm_init_dir(&w->reasm, rd, k->tcp_seq);
            seq++;
        }
        if (k->payload_len)
            reasm_segment(&w->reasm, rd, seq, k->payload, k->payload_len, on_deliver, &c);
        if ((k->tcp_flags & 0x01) && !fp->fin[dir]) { /* FIN: its stream offset */
            uint32_t fin_seq = seq + k->payload_len;

            fp->fin[dir] = 1;
            if (rd->flags & REASM_DIR_STARTED)
                fp->fin_off[dir] =
                    rd->next +
                    (uint64_t)(int64_t)(int32_t)(fin_seq - (rd->base + (uint32_t)rd->next));
        }
        if (!fp->raw_done[dir] && (fp->len[dir] >= scan_limit(w, fp, dir) || !w->slot))
            scan_tcp_dir(p, f, fp, dir, k->ts_us);
        if ((rd->flags & REASM_DIR_DEPTH) || (fp->raw_done[dir] && !app_wants(w, fp, dir)))
            finish_tcp_dir(p, f, fp, dir, k->ts_us);
        else if (fp->fin[dir] && (!(rd->flags & REASM_DIR_STARTED) || rd->next >= fp->fin_off[dir]))
            close_tcp_dir(p, f, fp, dir, k->ts_us); /* every byte before the FIN is in */
    }
    if (k->tcp_flags & 0x04) { /* RST: nothing more comes either way */
        close_tcp_dir(p, f, fp, FLOW_TOSERVER, k->ts_us);
        close_tcp_dir(p, f, fp, FLOW_TOCLIENT, k->ts_us);
    }
    payload_account(p, f);
}

/* Scans what a UDP direction's buffer holds (its first datagrams, one after the other),
 * then frees it. */
static void scan_udp_dir(pworker *p, flow *f, flow_payload *fp, int dir, uint64_t ts_us)
{
    scan_ctx c = {p, f, fp, dir, ts_us, 0, true};

    if (fp->len[dir]) {
        p->pw.cnt.udp_scans++;
        run_scan(p, &c, fp->buf[dir], fp->len[dir]);
    }
    free_scan_buf(&p->pw, fp, dir);
    fp->raw_done[dir] = 1;
    payload_account(p, f);
}

/*
 * A flow's first datagrams carry what is worth scanning (requests, file transfers' starts,
 * C2 check-ins); the rest of a long UDP flow is media, QUIC, tunnels. The first
 * yara.udp_datagrams datagrams of a direction are kept one after the other (each cut to
 * yara.max_bytes) and scanned as one buffer when the last of them came, or when the flow
 * ends: a scan costs libyara the same fixed time, small or not, whatever the rule set.
 */
static void payload_udp(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    payload_worker *w = &p->pw;
    uint32_t n = k->payload_len;
    flow_payload *fp;

    if (!n || !w->slot)
        return;
    if (w->udp_datagrams && f->pkts[dir] > w->udp_datagrams) {
        w->cnt.udp_skipped++;
        return;
    }
    if (p->dpi && dpi_flow_opaque(p->dpi, f)) {
        w->cnt.udp_opaque++;
        return;
    }
    fp = payload_of(p, f);
    if (!fp || fp->raw_done[dir])
        return;
    if (n > w->max_bytes - fp->len[dir])
        n = w->max_bytes - fp->len[dir];
    if (n)
        scan_buf_append(w, fp, dir, k->payload, n, 512);
    w->cnt.udp_datagrams_kept++;
    if ((w->udp_datagrams && f->pkts[dir] >= w->udp_datagrams) || fp->len[dir] >= w->max_bytes)
        scan_udp_dir(p, f, fp, dir, k->ts_us);
    else
        payload_account(p, f);
}

/* True when dns.c writes the flow's dns events: UDP to or from port 53. */
bool payload_dns_parsed(const pworker *p, const flow *f)
{
    return p->pw.dns && f->proto == IPPROTO_UDP && (f->srv_port == 53 || f->cli_port == 53);
}

/* One DNS message: a dns event, or a count when it is too short to be one. */
static void payload_dns(pworker *p, flow *f, const decode_pkt *k)
{
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];
    bool query = false;
    dns_result r;

    jbuf_reset(b);
    eve_flow_header(p, b, f, k->ts_us, "dns", cid);
    r = dns_write_message(b, k->payload, k->payload_len, &query);
    if (r == DNS_NOT_DNS) {
        p->pw.cnt.dns_malformed++;
        return;
    }
    p->pw.cnt.dns_malformed += r == DNS_MALFORMED;
    if (query)
        p->pw.cnt.dns_queries++;
    else
        p->pw.cnt.dns_answers++;
    jbuf_obj_close(b);
    eve_emit(p, "dns", cid);
}

void payload_packet(pworker *p, flow *f, const decode_pkt *k, int dir)
{
    if (k->l4_proto == IPPROTO_UDP && k->payload_len && payload_dns_parsed(p, f))
        payload_dns(p, f, k);
    if (k->l4_proto == IPPROTO_UDP && k->payload_len && p->pw.krb5 &&
        (f->srv_port == 88 || f->cli_port == 88)) {
        scan_ctx c = {p, f, NULL, dir, k->ts_us, 0, true};
        krb5_msg m;
        if (krb5_parse(k->payload, k->payload_len, &m))
            on_krb5_msg(&m, &c);
    }
    if (k->l4_proto == IPPROTO_TCP)
        payload_tcp(p, f, k, dir);
    else if (k->l4_proto == IPPROTO_UDP)
        payload_udp(p, f, k, dir);
}

/* Flow end: scans what each TCP direction still holds (time: the flow's last packet). */
void payload_flow_end(pworker *p, flow *f)
{
    flow_payload *fp = f->payload;

    if (fp && f->proto == IPPROTO_UDP) {
        for (int d = 0; d < 2; d++)
            if (!fp->raw_done[d] && fp->len[d])
                scan_udp_dir(p, f, fp, d, f->last_us);
        return;
    }
    if (!fp || f->proto != IPPROTO_TCP)
        return;
    close_tcp_dir(p, f, fp, FLOW_TOSERVER, f->last_us);
    close_tcp_dir(p, f, fp, FLOW_TOCLIENT, f->last_us);
    if (fp->http) {
        http_conn_close(fp->http, f->last_us);
        fp->http = NULL;
    }
    if (fp->smtp) {
        scan_ctx c = {p, f, fp, FLOW_TOSERVER, f->last_us, 0, false};
        smtp_end(fp->smtp, on_smtp_ev, &c); /* a message still being read */
    }
    for (int i = 0; fp->smbfiles && i < SMB_MAX_FILES; i++) {
        const smb_file *sf = smb_file_at(fp->smb, i);
        /* never closed by the client */
        smb_files_close(p, f, fp->smbfiles, i, sf ? sf->share : NULL, false, f->last_us);
    }
}

/* True when the flow's transactions are parsed by http.c (nDPI's http event is then not written).
 */
bool payload_http_parsed(const flow *f)
{
    const flow_payload *fp = f->payload;

    return fp && fp->app == APP_HTTP;
}

/* Sets up a worker's payload inspection: reassembly and the application parsers (YARA:
 * pipeline_set_yara). */
fh_err payload_worker_init(payload_worker *w, const sensor_config *cfg, unsigned nworkers)
{
    reasm_config rc;

    memset(w, 0, sizeof(*w));
    reasm_config_defaults(&rc);
    rc.memcap = cfg->reasm_memcap / nworkers;
    rc.dir_cap = cfg->reasm_dir_cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cfg->reasm_dir_cap;
    w->max_bytes = cfg->yara_max_bytes > YARA_MAX_SCAN_BYTES ? YARA_MAX_SCAN_BYTES
                                                             : (uint32_t)cfg->yara_max_bytes;
    if (!w->max_bytes)
        w->max_bytes = 1;
    w->file_max_bytes = cfg->files_max_bytes > YARA_MAX_SCAN_BYTES ? YARA_MAX_SCAN_BYTES
                                                                   : (uint32_t)cfg->files_max_bytes;
    /* Bytes past what is scanned or parsed are only counted. */
    rc.depth = w->max_bytes;
    w->smb = cfg->smb_enabled;
    if (w->smb) {
        w->active = true;
        if (rc.depth < SMB_MAX_BYTES)
            rc.depth = SMB_MAX_BYTES;
    }
    w->dns = cfg->dns_enabled; /* datagrams only: no reassembly */
    w->ftp = cfg->ftp_enabled;
    w->krb5 = cfg->krb5_enabled;
    if (w->ftp || w->krb5)
        w->active = true;
    w->smtp = cfg->smtp_enabled;
    w->smtp_max = cfg->smtp_max_message > UINT32_MAX / 2 ? UINT32_MAX / 2
                  : cfg->smtp_max_message                ? (uint32_t)cfg->smtp_max_message
                                                         : 1;
    if (w->smtp) {
        w->active = true;
        mime_init();
        if (rc.depth < w->smtp_max + (64u << 10))
            rc.depth = w->smtp_max + (64u << 10);
    }
    w->raw_files = cfg->files_raw_tcp;
    if (w->raw_files) {
        w->active = true;
        if (rc.depth < w->file_max_bytes)
            rc.depth = w->file_max_bytes;
    }
    w->tls = cfg->tls_enabled;
    if (w->tls) {
        w->active = true;
        if (rc.depth < TLS_MAX_BYTES)
            rc.depth = TLS_MAX_BYTES;
    }
    if (cfg->http_enabled) {
        w->http = http_engine_new();
        if (!w->http)
            return FH_ERR_NOMEM;
        w->active = true;
        rc.depth = cfg->http_depth == 0         ? 0
                   : cfg->http_depth > rc.depth ? cfg->http_depth
                                                : rc.depth;
    }
    reasm_ctx_init(&w->reasm, &rc);
    w->excerpt_bytes = cfg->yara_excerpt_bytes;
    w->memcap = cfg->yara_memcap / nworkers;
    w->udp_datagrams = cfg->yara_udp_datagrams;
    w->tls_bytes = cfg->yara_tls_bytes ? cfg->yara_tls_bytes : 1;
    w->clean_cache = cfg->yara_clean_cache;
    return FH_OK;
}

void payload_worker_free(payload_worker *w)
{
    yara_scanner_free(w->scanner);
    w->scanner = NULL;
    w->slot = NULL;
    http_engine_free(w->http);
    w->http = NULL;
    if (w->magic)
        magic_close(w->magic);
    w->magic = NULL;
}

/* The flow event's "reassembly" summary, when a direction had gaps or lost payload. */
void payload_write_json(jbuf *b, const flow *f)
{
    const flow_payload *fp = f->payload;
    static const char *const side[2] = {"toserver", "toclient"};

    if (!fp || (!fp->rd[0].gaps && !fp->rd[1].gaps && !fp->trunc[0] && !fp->trunc[1]))
        return;
    jbuf_obj_open(b, "reassembly");
    for (int d = 0; d < 2; d++) {
        jbuf_obj_open(b, side[d]);
        jbuf_u64(b, "gaps", fp->rd[d].gaps);
        jbuf_u64(b, "gap_bytes", fp->rd[d].gap_bytes);
        if (fp->trunc[d])
            jbuf_bool(b, "truncated", true);
        jbuf_obj_close(b);
    }
    jbuf_obj_close(b);
}

/* Frees a flow's payload state without scanning. */
void payload_release(pworker *p, flow *f)
{
    flow_payload *fp = f->payload;

    if (!fp)
        return;
    for (int d = 0; d < 2; d++) {
        reasm_release(&p->pw.reasm, &fp->rd[d]);
        free_scan_buf(&p->pw, fp, d);
    }
    http_conn_free(fp->http);
    for (int d = 0; d < 2; d++)
        if (fp->rawfile[d]) {
            file_discard(p, fp->rawfile[d]);
            free(fp->rawfile[d]);
        }
    free(fp->tls);
    free(fp->ftp);
    if (fp->krb) {
        krb5_stream_free(&fp->krb[0]);
        krb5_stream_free(&fp->krb[1]);
        free(fp->krb);
    }
    if (fp->msg)
        smtp_msg_free(&p->pw, fp);
    free(fp->smtp);
    if (fp->app == APP_FTPDATA) /* the endpoint was this flow's */
        ftp_expect_release(p->front->ftp_expect, f->ip_version, f->srv, f->srv_port);
    if (fp->smbfiles)
        smb_files_discard(p, fp->smbfiles);
    free(fp->smbfiles);
    free(fp->smb);
    free(fp->seen);
    free(fp);
    f->payload = NULL;
    flow_set_payload_mem(&p->flows, f, 0);
}
