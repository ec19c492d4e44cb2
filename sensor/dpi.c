/*
 * dpi.c - nDPI 4.2 integration; see dpi.h for the lifecycle of per-flow state.
 */
#include "dpi.h"
#include "dns.h"
#include "login.h"
#include "../common/fh_log.h"

#include <ndpi/ndpi_api.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dpi_engine {
    struct ndpi_detection_module_struct *ndpi;
    dpi_config cfg;
    dpi_stats stats;
};

/* Metadata copied out of nDPI; strings are owned (malloc'd) or NULL. */
typedef struct {
    char *hostname;
    /* HTTP */
    char *url, *user_agent, *content_type;
    const char *method; /* static string from nDPI */
    uint16_t status;
    /* TLS / QUIC */
    bool has_tls;
    uint16_t tls_version, cipher;
    char ja3c[33], ja3s[33];
    char *alpn, *subject, *issuer;
    uint32_t not_before, not_after;
    bool has_fp;
    uint8_t fp[20];
    /* DNS */
    bool has_dns;
    uint16_t qtype;
    uint8_t rcode, answers, is_query;
    uint16_t rsp_type;    /* type of the first A/AAAA answer nDPI kept, 0 = none */
    uint8_t rsp_addr[16]; /* its address */
    /* SSH */
    char ssh_client[48], ssh_server[48], hassh_c[33], hassh_s[33];
    /* SMB: 1 = nDPI's SMBv1, 2 = SMBv2/3, 0 = not SMB */
    uint8_t smb;
    /* FTP: nDPI's auth_failed (a 4xx/5xx reply to PASS) */
    bool login_failed;
} dpi_meta;

typedef struct {
    struct ndpi_flow_struct *nf; /* NULL once detection is over */
    ndpi_protocol proto;
    ndpi_risk risk;
    uint32_t pkts;
    uint8_t done, guessed;
    uint8_t meta_taken;   /* metadata events handed out (dpi_take_meta_events) */
    uint8_t smb_wait;     /* SMB2/3 detected: waiting for the server's first payload */
    uint16_t smb_dialect; /* DialectRevision of the NEGOTIATE response, 0 = none */
    uint32_t smb_pkts;    /* packets seen while waiting */
    ndpi_confidence_t confidence;
    dpi_meta *meta;
    login_state login; /* POP3/IMAP/SMTP/Telnet/HTTP failed logins (login.h) */
} dpi_flow;

void dpi_config_defaults(dpi_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = true;
    cfg->max_tcp_packets = 80;
    cfg->max_udp_packets = 24;
    cfg->metadata_events = true;
}

/* Loads a JA3 or certificate SHA-1 feed; false (err says why) when it cannot be read. */
static bool load_feed(dpi_engine *e, const char *path, bool sha1, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    fclose(f);
    n = sha1 ? ndpi_load_malicious_sha1_file(e->ndpi, path)
             : ndpi_load_malicious_ja3_file(e->ndpi, path);
    if (n < 0) {
        snprintf(err, errlen, "%s: nDPI could not load it as a %s feed", path,
                 sha1 ? "certificate SHA-1" : "JA3");
        return false;
    }
    if (n == 0)
        fh_warn("dpi: no %s fingerprint in %s (%s)", sha1 ? "certificate SHA-1" : "JA3", path,
                sha1 ? "abuse.ch sslblacklist.csv lines: date,sha1,reason"
                     : "abuse.ch ja3_fingerprints.csv lines: md5,...");
    else
        fh_info("dpi: %d %s fingerprints from %s", n, sha1 ? "certificate SHA-1" : "JA3", path);
    return true;
}

fh_err dpi_engine_new(dpi_engine **out, const dpi_config *cfg, char *err, size_t errlen)
{
    dpi_engine *e;
    NDPI_PROTOCOL_BITMASK all;

    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return FH_ERR_NOMEM;
    e->cfg = *cfg;
    e->ndpi = ndpi_init_detection_module(ndpi_no_prefs);
    if (!e->ndpi) {
        snprintf(err, errlen, "ndpi_init_detection_module() failed");
        free(e);
        return FH_ERR_DPI;
    }
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(e->ndpi, &all);
    if (cfg->protos_file && ndpi_load_protocols_file(e->ndpi, cfg->protos_file) != 0) {
        snprintf(err, errlen, "ndpi_load_protocols_file(\"%s\") failed", cfg->protos_file);
        goto fail;
    }
    if (cfg->categories_file && ndpi_load_categories_file(e->ndpi, cfg->categories_file) < 0) {
        snprintf(err, errlen, "ndpi_load_categories_file(\"%s\") failed", cfg->categories_file);
        goto fail;
    }
    /* Indicator feeds (abuse.ch SSLBL's JA3 and certificate lists, or one's own in their
     * CSV layout): nDPI sets the risks "Possibly Malicious JA3 Fingerprint"
     * and "Possibly Malicious SSL Cert. SHA1 Fingerprint" on a match (L3-14). */
    if (cfg->malicious_ja3_file && !load_feed(e, cfg->malicious_ja3_file, false, err, errlen))
        goto fail;
    if (cfg->malicious_sha1_file && !load_feed(e, cfg->malicious_sha1_file, true, err, errlen))
        goto fail;
    ndpi_finalize_initialization(e->ndpi);
    *out = e;
    return FH_OK;
fail:
    ndpi_exit_detection_module(e->ndpi);
    free(e);
    return FH_ERR_DPI;
}

void dpi_engine_free(dpi_engine *e)
{
    if (!e)
        return;
    ndpi_exit_detection_module(e->ndpi);
    free(e);
}

const dpi_stats *dpi_engine_stats(const dpi_engine *e)
{
    return &e->stats;
}

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static void meta_free(dpi_meta *m)
{
    if (!m)
        return;
    free(m->hostname);
    free(m->url);
    free(m->user_agent);
    free(m->content_type);
    free(m->alpn);
    free(m->subject);
    free(m->issuer);
    free(m);
}

static bool is_proto(ndpi_protocol p, uint16_t id)
{
    return p.master_protocol == id || p.app_protocol == id;
}

/* TLS-based protocols nDPI names on their own (no TLS master): IMAPS, SMTPS, ... */
static bool is_tls_family(ndpi_protocol p)
{
    switch (p.master_protocol ? p.master_protocol : p.app_protocol) {
    case NDPI_PROTOCOL_MAIL_IMAPS:
    case NDPI_PROTOCOL_MAIL_SMTPS:
    case NDPI_PROTOCOL_MAIL_POPS:
    case NDPI_PROTOCOL_DOH_DOT:
        return true;
    }
    return false;
}

/* Copies what nDPI knows about the flow into a fresh dpi_meta. */
static void extract(dpi_engine *e, dpi_flow *df)
{
    struct ndpi_flow_struct *nf = df->nf;
    dpi_meta *m;

    if (!nf)
        return;
    df->risk = nf->risk;
    df->confidence = nf->confidence;
    m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->hostname = dup_or_null(nf->host_server_name);
    if (nf->http.url || nf->http.user_agent || nf->http.response_status_code) {
        m->url = dup_or_null(nf->http.url);
        m->user_agent = dup_or_null(nf->http.user_agent);
        m->content_type = dup_or_null(nf->http.content_type);
        m->status = nf->http.response_status_code;
        if (nf->http.method != NDPI_HTTP_METHOD_UNKNOWN)
            m->method = ndpi_http_method2str(nf->http.method);
    }
    /* nf->protos is a union: read only the member of the protocol nDPI decided on. */
    if (is_proto(df->proto, NDPI_PROTOCOL_TLS) || is_proto(df->proto, NDPI_PROTOCOL_QUIC) ||
        is_proto(df->proto, NDPI_PROTOCOL_DTLS) || is_tls_family(df->proto)) {
        m->has_tls = nf->protos.tls_quic.ssl_version || nf->protos.tls_quic.ja3_client[0] ||
                     nf->protos.tls_quic.hello_processed;
        m->tls_version = nf->protos.tls_quic.ssl_version;
        m->cipher = nf->protos.tls_quic.server_cipher;
        memcpy(m->ja3c, nf->protos.tls_quic.ja3_client, sizeof(m->ja3c));
        memcpy(m->ja3s, nf->protos.tls_quic.ja3_server, sizeof(m->ja3s));
        m->ja3c[32] = m->ja3s[32] = '\0';
        m->alpn = dup_or_null(nf->protos.tls_quic.alpn);
        m->subject = dup_or_null(nf->protos.tls_quic.subjectDN);
        m->issuer = dup_or_null(nf->protos.tls_quic.issuerDN);
        m->not_before = nf->protos.tls_quic.notBefore;
        m->not_after = nf->protos.tls_quic.notAfter;
        for (int i = 0; i < 20; i++)
            if (nf->protos.tls_quic.sha1_certificate_fingerprint[i])
                m->has_fp = true;
        if (m->has_fp)
            memcpy(m->fp, nf->protos.tls_quic.sha1_certificate_fingerprint, 20);
    } else if (is_proto(df->proto, NDPI_PROTOCOL_DNS) || is_proto(df->proto, NDPI_PROTOCOL_MDNS) ||
               is_proto(df->proto, NDPI_PROTOCOL_LLMNR)) {
        m->has_dns = true;
        m->qtype = nf->protos.dns.query_type;
        m->rcode = nf->protos.dns.reply_code;
        m->answers = nf->protos.dns.num_answers;
        m->is_query = nf->protos.dns.is_query;
        if (nf->protos.dns.rsp_type == 1 || nf->protos.dns.rsp_type == 28) {
            m->rsp_type = nf->protos.dns.rsp_type;
            memcpy(m->rsp_addr, &nf->protos.dns.rsp_addr,
                   m->rsp_type == 1 ? 4 : sizeof(m->rsp_addr));
        }
    } else if (is_proto(df->proto, NDPI_PROTOCOL_SSH)) {
        memcpy(m->ssh_client, nf->protos.ssh.client_signature, sizeof(m->ssh_client));
        memcpy(m->ssh_server, nf->protos.ssh.server_signature, sizeof(m->ssh_server));
        /* HASSH in lower case, as Suricata and Zeek print it. */
        for (size_t i = 0; i < sizeof(m->hassh_c); i++) {
            m->hassh_c[i] = (char)tolower((unsigned char)nf->protos.ssh.hassh_client[i]);
            m->hassh_s[i] = (char)tolower((unsigned char)nf->protos.ssh.hassh_server[i]);
        }
        m->ssh_client[47] = m->ssh_server[47] = m->hassh_c[32] = m->hassh_s[32] = '\0';
    } else if (is_proto(df->proto, NDPI_PROTOCOL_SMBV1)) {
        m->smb = 1;
    } else if (is_proto(df->proto, NDPI_PROTOCOL_SMBV23)) {
        m->smb = 2;
    } else if (is_proto(df->proto, NDPI_PROTOCOL_FTP_CONTROL) && nf->l4_proto == IPPROTO_TCP) {
        /* nDPI 4.2's ftp_control.c sets it for a 4xx/5xx reply to PASS */
        m->login_failed = nf->l4.tcp.ftp_imap_pop_smtp.auth_failed;
    }
    (void)e;
    meta_free(df->meta);
    df->meta = m;
}

static void release_ndpi(dpi_engine *e, flow_table *t, flow *f, dpi_flow *df)
{
    if (df->nf) {
        ndpi_free_flow(df->nf);
        df->nf = NULL;
        e->stats.ndpi_bytes -= SIZEOF_FLOW_STRUCT;
        flow_set_extra_mem(t, f, sizeof(*df));
    }
}

/* Detection is over: record the verdict, keep the metadata, free nDPI's state. */
static void conclude(dpi_engine *e, flow_table *t, flow *f, dpi_flow *df)
{
    if (df->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN) {
        uint8_t guessed = 0;

        df->proto = ndpi_detection_giveup(e->ndpi, df->nf, 1, &guessed);
        df->guessed = guessed;
    }
    extract(e, df);
    df->done = 1;
    if (e->cfg.metadata_events && df->meta && df->meta->smb == 2 && !df->guessed)
        df->smb_wait = 1;
    if (df->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN &&
        df->proto.master_protocol == NDPI_PROTOCOL_UNKNOWN)
        e->stats.flows_unknown++;
    else if (df->guessed)
        e->stats.flows_guessed++;
    else
        e->stats.flows_detected++;
    release_ndpi(e, t, f, df);
}

/*
 * DialectRevision of an SMB2 NEGOTIATE response at the start of payload (one
 * NetBIOS session message, [MS-SMB2] 2.2.2 and 2.2.4), or 0 when the payload
 * is not a successful one. Reads only the first 74 bytes, all length-checked.
 */
static uint16_t smb2_dialect(const uint8_t *d, uint32_t len)
{
    const uint8_t *h = d + 4; /* SMB2 header after the 4-byte NetBIOS header */
    uint32_t nb_len, status, flags;

    if (len < 4 + 64 + 6 || d[0] != 0x00)
        return 0;
    nb_len = ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
    if (nb_len < 64 + 6 || memcmp(h, "\xfeSMB", 4) != 0)
        return 0;
    status = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    flags = (uint32_t)h[16] | (uint32_t)h[17] << 8 | (uint32_t)h[18] << 16 | (uint32_t)h[19] << 24;
    if ((h[4] | h[5] << 8) != 64 || (h[12] | h[13] << 8) != 0 /* NEGOTIATE */ ||
        !(flags & 1) /* SMB2_FLAGS_SERVER_TO_REDIR */ || status != 0 ||
        (h[64] | h[65] << 8) != 65 /* response StructureSize */)
        return 0;
    return (uint16_t)(h[68] | h[69] << 8);
}

static const char *smb2_dialect_name(uint16_t d)
{
    switch (d) {
    case 0x0202:
        return "2.0.2";
    case 0x0210:
        return "2.1";
    case 0x0300:
        return "3.0";
    case 0x0302:
        return "3.0.2";
    case 0x0311:
        return "3.1.1";
    }
    return NULL;
}

/* After detection of an SMB2/3 flow: the first payload from the server gives
 * the dialect (when it is the NEGOTIATE response), then the wait is over. */
static void smb_look(dpi_engine *e, dpi_flow *df, const decode_pkt *p, int dir)
{
    if (!df->smb_wait)
        return;
    if (dir == FLOW_TOCLIENT && p->payload_len) {
        df->smb_dialect = smb2_dialect(p->payload, p->payload_len);
        df->smb_wait = 0;
    } else if (++df->smb_pkts > e->cfg.max_tcp_packets) {
        df->smb_wait = 0;
    }
}

/* The login parser for nDPI's verdict (master or app protocol), LOGIN_NONE
 * for protocols without one. */
static login_proto ndpi_login_proto(ndpi_protocol p)
{
    if (is_proto(p, NDPI_PROTOCOL_MAIL_POP))
        return LOGIN_POP3;
    if (is_proto(p, NDPI_PROTOCOL_MAIL_IMAP))
        return LOGIN_IMAP;
    if (is_proto(p, NDPI_PROTOCOL_MAIL_SMTP))
        return LOGIN_SMTP;
    if (is_proto(p, NDPI_PROTOCOL_TELNET))
        return LOGIN_TELNET;
    if (is_proto(p, NDPI_PROTOCOL_HTTP) || is_proto(p, NDPI_PROTOCOL_HTTP_PROXY) ||
        is_proto(p, NDPI_PROTOCOL_HTTP_CONNECT))
        return LOGIN_HTTP;
    return LOGIN_NONE;
}

static bool ndpi_decided(const dpi_flow *df)
{
    return df->done || df->proto.app_protocol != NDPI_PROTOCOL_UNKNOWN ||
           df->proto.master_protocol != NDPI_PROTOCOL_UNKNOWN;
}

/*
 * The failed-login parser (login.h) sees every TCP packet of a flow whose
 * protocol has one: by nDPI's verdict once there is one, before that by the
 * server port (the login can come before nDPI decides). When the verdict
 * differs from the port's guess, the parser starts over for the verdict. It
 * goes on after nDPI's detection is over, for at most LOGIN_MAX_PKTS payload
 * packets, and stops at a successful login.
 */
static void login_look(dpi_flow *df, const decode_pkt *p, int dir)
{
    login_proto lp;

    if (p->l4_proto != IPPROTO_TCP)
        return;
    if (ndpi_decided(df))
        lp = ndpi_login_proto(df->proto);
    else
        lp = login_proto_by_port(dir == FLOW_TOSERVER ? p->dport : p->sport);
    if (lp != (login_proto)df->login.proto)
        login_init(&df->login, lp);
    if (!login_done(&df->login))
        login_feed(&df->login, dir == FLOW_TOCLIENT, p->tcp_seq, p->payload, p->payload_len);
}

/* Failed logins the flow event reports from the login parser: 0 when its
 * protocol is not (or no longer) the flow's. */
static unsigned login_failures_of(const dpi_flow *df)
{
    if (ndpi_decided(df) && ndpi_login_proto(df->proto) != (login_proto)df->login.proto)
        return 0;
    return login_failures(&df->login);
}

void dpi_packet(dpi_engine *e, flow_table *t, flow *f, const decode_pkt *p, int dir)
{
    dpi_flow *df = f->user;
    bool enough;

    if (!e->cfg.enabled)
        return;
    if (!df) {
        df = calloc(1, sizeof(*df));
        if (!df)
            return;
        df->nf = ndpi_flow_malloc(SIZEOF_FLOW_STRUCT);
        if (!df->nf) {
            free(df);
            return;
        }
        memset(df->nf, 0, SIZEOF_FLOW_STRUCT);
        f->user = df;
        e->stats.ndpi_bytes += SIZEOF_FLOW_STRUCT;
        flow_set_extra_mem(t, f, sizeof(*df) + SIZEOF_FLOW_STRUCT);
    }
    if (df->done) {
        smb_look(e, df, p, dir);
        login_look(df, p, dir);
        return;
    }
    df->pkts++;
    e->stats.packets_inspected++;
    df->proto = ndpi_detection_process_packet(
        e->ndpi, df->nf, p->l3, (unsigned short)(p->l3_len > 65535 ? 65535 : p->l3_len),
        p->ts_us / 1000);
    enough = (p->l4_proto == IPPROTO_TCP && df->pkts > e->cfg.max_tcp_packets) ||
             (p->l4_proto == IPPROTO_UDP && df->pkts > e->cfg.max_udp_packets) ||
             df->nf->fail_with_unknown;
    /* Decided, unless nDPI waits for the certificate, the HTTP response, ... */
    if (enough || (df->proto.app_protocol != NDPI_PROTOCOL_UNKNOWN &&
                   !ndpi_extra_dissection_possible(e->ndpi, df->nf))) {
        conclude(e, t, f, df);
        smb_look(e, df, p, dir);
    }
    login_look(df, p, dir);
}

void dpi_finish(dpi_engine *e, flow_table *t, flow *f)
{
    dpi_flow *df = f->user;

    if (df && !df->done)
        conclude(e, t, f, df);
    if (df)
        df->smb_wait = 0; /* the flow ends: no dialect seen */
}

void dpi_flow_release(dpi_engine *e, flow_table *t, flow *f)
{
    dpi_flow *df = f->user;

    if (!df)
        return;
    release_ndpi(e, t, f, df);
    meta_free(df->meta);
    free(df);
    f->user = NULL;
    flow_set_extra_mem(t, f, 0);
}

static void lower_copy(char *dst, size_t len, const char *src)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

const char *dpi_app_proto(dpi_engine *e, const flow *f, char *buf, size_t len)
{
    const dpi_flow *df = f->user;
    uint16_t id;

    buf[0] = '\0';
    if (!df || df->guessed)
        return buf;
    id = df->proto.master_protocol != NDPI_PROTOCOL_UNKNOWN ? df->proto.master_protocol
                                                            : df->proto.app_protocol;
    if (id == NDPI_PROTOCOL_UNKNOWN)
        return buf;
    lower_copy(buf, len, ndpi_get_proto_name(e->ndpi, id));
    return buf;
}

/*
 * True when nDPI has found the flow's protocol (not guessed) and its payload is no use to
 * a content scan: encrypted (nDPI's own flag: QUIC, DTLS, IPsec, WireGuard, DNSCrypt, ...),
 * media (RTP, RTCP, STUN, the payload of a call), or name and time services whose fields
 * are events of their own (DNS, mDNS, LLMNR, NTP).
 */
bool dpi_flow_opaque(dpi_engine *e, const flow *f)
{
    const dpi_flow *df = f->user;

    if (!df || df->guessed ||
        (df->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN &&
         df->proto.master_protocol == NDPI_PROTOCOL_UNKNOWN))
        return false;
    for (int i = 0; i < 2; i++) {
        switch (i ? df->proto.app_protocol : df->proto.master_protocol) {
        case NDPI_PROTOCOL_DNS:
        case NDPI_PROTOCOL_MDNS:
        case NDPI_PROTOCOL_LLMNR:
        case NDPI_PROTOCOL_NTP:
        case NDPI_PROTOCOL_RTP:
        case NDPI_PROTOCOL_RTCP:
        case NDPI_PROTOCOL_STUN:
            return true;
        default:
            break;
        }
    }
    return ndpi_is_encrypted_proto(e->ndpi, df->proto) != 0;
}

static void write_time(jbuf *b, const char *key, uint32_t t)
{
    char ts[32];
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    jbuf_str(b, key, ts);
}

static void write_ssh_side(jbuf *b, const char *key, const char *banner)
{
    /* "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3" -> proto_version 2.0, software_version rest */
    const char *v, *sw;

    if (!banner[0])
        return;
    jbuf_obj_open(b, key);
    if (strncmp(banner, "SSH-", 4) == 0 && (v = banner + 4) && (sw = strchr(v, '-'))) {
        const char *sp = strchr(sw + 1, ' ');

        jbuf_strn(b, "proto_version", v, (size_t)(sw - v));
        /* As Suricata: the software version ends at the first space; the rest
         * is the comment ("Ubuntu-3"), kept because it tells the patch level. */
        if (sp) {
            jbuf_strn(b, "software_version", sw + 1, (size_t)(sp - (sw + 1)));
            jbuf_str(b, "comment", sp + 1);
        } else {
            jbuf_str(b, "software_version", sw + 1);
        }
    } else {
        jbuf_str(b, "software_version", banner);
    }
    jbuf_obj_close(b);
}

/* True when nDPI saw TLS data worth a tls object. nDPI may call a flow TLS
 * from records without a parsable hello: then there is nothing to report. */
static bool has_tls(const dpi_meta *m)
{
    return m->has_tls && (m->hostname || m->tls_version || m->ja3c[0] || m->ja3s[0] || m->cipher ||
                          m->alpn || m->subject || m->issuer || m->not_before || m->has_fp);
}

static bool has_http(const dpi_meta *m)
{
    return m->url || m->user_agent || m->status;
}

static bool has_ssh(const dpi_meta *m)
{
    return m->ssh_client[0] || m->ssh_server[0];
}

/*
 * nDPI 4.2 writes the names of unknown ciphers and risks into one static
 * buffer; with worker threads two flows could be named at once. Names are
 * copied out under a lock (once per event, not per packet).
 */
static pthread_mutex_t ndpi_name_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *cipher_name(uint32_t cipher, char *out, size_t len)
{
    const char *c;

    pthread_mutex_lock(&ndpi_name_lock);
    c = ndpi_cipher2str(cipher);
    snprintf(out, len, "%s", c ? c : "unknown");
    pthread_mutex_unlock(&ndpi_name_lock);
    return out;
}

static const char *risk_name(ndpi_risk_enum r, char *out, size_t len)
{
    pthread_mutex_lock(&ndpi_name_lock);
    snprintf(out, len, "%s", ndpi_risk2str(r));
    pthread_mutex_unlock(&ndpi_name_lock);
    return out;
}

static void write_tls(dpi_engine *e, const dpi_flow *df, const dpi_meta *m, jbuf *b)
{
    char buf[64];
    uint8_t unknown = 0;

    (void)e;
    jbuf_obj_open(b, "tls");
    if (m->hostname &&
        (is_proto(df->proto, NDPI_PROTOCOL_TLS) || is_proto(df->proto, NDPI_PROTOCOL_QUIC) ||
         df->proto.master_protocol == NDPI_PROTOCOL_UNKNOWN))
        jbuf_str(b, "sni", m->hostname);
    if (m->tls_version)
        jbuf_str(b, "version", ndpi_ssl_version2str(buf, sizeof(buf), m->tls_version, &unknown));
    if (m->ja3c[0]) {
        jbuf_obj_open(b, "ja3");
        jbuf_str(b, "hash", m->ja3c);
        jbuf_obj_close(b);
    }
    if (m->ja3s[0]) {
        jbuf_obj_open(b, "ja3s");
        jbuf_str(b, "hash", m->ja3s);
        jbuf_obj_close(b);
    }
    if (m->cipher) {
        char c[64];

        jbuf_str(b, "cipher", cipher_name(m->cipher, c, sizeof(c)));
    }
    if (m->alpn)
        jbuf_str(b, "alpn", m->alpn);
    if (m->subject)
        jbuf_str(b, "subject", m->subject);
    if (m->issuer)
        jbuf_str(b, "issuerdn", m->issuer);
    if (m->not_before)
        write_time(b, "notbefore", m->not_before);
    if (m->not_after)
        write_time(b, "notafter", m->not_after);
    if (m->has_fp) {
        char fp[60];

        for (int i = 0; i < 20; i++)
            snprintf(fp + i * 3, 4, "%02x%s", m->fp[i], i < 19 ? ":" : "");
        jbuf_str(b, "fingerprint", fp);
    }
    jbuf_obj_close(b);
}

static void write_http(const dpi_meta *m, jbuf *b)
{
    jbuf_obj_open(b, "http");
    if (m->hostname)
        jbuf_str(b, "hostname", m->hostname);
    if (m->url) {
        /* nDPI stores "host/path"; EVE's url is the request target. */
        const char *u = m->url;
        size_t hl = m->hostname ? strlen(m->hostname) : 0;

        if (hl && strncmp(u, m->hostname, hl) == 0 && (u[hl] == '/' || u[hl] == '\0'))
            u += hl;
        jbuf_str(b, "url", *u ? u : "/");
    }
    if (m->user_agent)
        jbuf_str(b, "http_user_agent", m->user_agent);
    if (m->method)
        jbuf_str(b, "http_method", m->method);
    if (m->status)
        jbuf_u64(b, "status", m->status);
    if (m->content_type)
        jbuf_str(b, "http_content_type", m->content_type);
    jbuf_obj_close(b);
}

/*
 * The dns object. In the flow event: rrname, rrtype, and rcode with the
 * number of answers once a response was seen. In the dns event (EVE's
 * layout): type query/answer, rrname, rrtype, rcode, and answers[] with the
 * one address nDPI 4.2 keeps (the first A/AAAA record of the response).
 */
static void write_dns(const dpi_meta *m, jbuf *b, bool event)
{
    const char *tn = dns_rrtype_name(m->qtype), *rn = dns_rcode_name(m->rcode);
    bool answered = !m->is_query || m->answers;
    char buf[INET6_ADDRSTRLEN];

    jbuf_obj_open(b, "dns");
    if (event)
        jbuf_str(b, "type", answered ? "answer" : "query");
    if (m->hostname)
        jbuf_str(b, "rrname", m->hostname);
    if (tn)
        jbuf_str(b, "rrtype", tn);
    else if (m->qtype) {
        snprintf(buf, sizeof(buf), "TYPE%u", m->qtype);
        jbuf_str(b, "rrtype", buf);
    }
    if (answered) {
        if (rn)
            jbuf_str(b, "rcode", rn);
        if (!event) {
            jbuf_u64(b, "answers", m->answers);
        } else if (m->rsp_type) {
            jbuf_arr_open(b, "answers");
            jbuf_obj_open(b, NULL);
            jbuf_str(b, "rrtype", dns_rrtype_name(m->rsp_type));
            inet_ntop(m->rsp_type == 1 ? AF_INET : AF_INET6, m->rsp_addr, buf, sizeof(buf));
            jbuf_str(b, "rdata", buf);
            jbuf_obj_close(b);
            jbuf_arr_close(b);
        }
    }
    jbuf_obj_close(b);
}

/* The smb object: the dialect of the NEGOTIATE response ("3.1.1"), else nDPI's
 * family ("SMB1", "SMB2/3"). */
static void write_smb(const dpi_flow *df, const dpi_meta *m, jbuf *b)
{
    const char *d = smb2_dialect_name(df->smb_dialect);

    jbuf_obj_open(b, "smb");
    jbuf_str(b, "dialect", d ? d : m->smb == 1 ? "SMB1" : "SMB2/3");
    jbuf_obj_close(b);
}

static void write_ssh(const dpi_meta *m, jbuf *b)
{
    jbuf_obj_open(b, "ssh");
    write_ssh_side(b, "client", m->ssh_client);
    write_ssh_side(b, "server", m->ssh_server);
    if (m->hassh_c[0] || m->hassh_s[0]) {
        jbuf_obj_open(b, "hassh");
        if (m->hassh_c[0])
            jbuf_str(b, "client", m->hassh_c);
        if (m->hassh_s[0])
            jbuf_str(b, "server", m->hassh_s);
        jbuf_obj_close(b);
    }
    jbuf_obj_close(b);
}

/* login: {failed: true} for FTP (nDPI's auth_failed) or from the login
 * parser (POP3, IMAP, SMTP, Telnet, HTTP), with failures: N when the parser
 * counted more than one. */
static void write_login(const dpi_flow *df, const dpi_meta *m, jbuf *b)
{
    unsigned n = login_failures_of(df);

    if (!n && !(m && m->login_failed))
        return;
    jbuf_obj_open(b, "login");
    jbuf_bool(b, "failed", true);
    if (n > 1)
        jbuf_u64(b, "failures", n);
    jbuf_obj_close(b);
}

void dpi_write_json(dpi_engine *e, const flow *f, jbuf *b)
{
    dpi_flow *df = f->user;
    const dpi_meta *m;
    char name[64];
    uint16_t cscore = 0, sscore = 0;

    if (!df)
        return;
    if (df->nf) /* update of a flow still in detection: take a fresh look */
        extract(e, df);
    m = df->meta;

    jbuf_obj_open(b, "ndpi");
    ndpi_protocol2name(e->ndpi, df->proto, name, sizeof(name));
    jbuf_str(b, "protocol", name);
    jbuf_str(b, "master_protocol", ndpi_get_proto_name(e->ndpi, df->proto.master_protocol));
    jbuf_str(b, "app_protocol", ndpi_get_proto_name(e->ndpi, df->proto.app_protocol));
    jbuf_str(b, "category", ndpi_category_get_name(e->ndpi, df->proto.category));
    jbuf_str(b, "confidence", ndpi_confidence_get_name(df->confidence));
    jbuf_bool(b, "guessed", df->guessed);
    jbuf_arr_open(b, "risks");
    for (int i = 1; i < NDPI_MAX_RISK; i++)
        if (df->risk & (1ULL << i))
            jbuf_str(b, NULL, risk_name((ndpi_risk_enum)i, name, sizeof(name)));
    jbuf_arr_close(b);
    jbuf_u64(b, "risk_score", ndpi_risk2score(df->risk, &cscore, &sscore));
    if (m && m->hostname)
        jbuf_str(b, "hostname", m->hostname);
    jbuf_obj_close(b);
    if (!m) {
        write_login(df, NULL, b);
        return;
    }
    if (has_tls(m))
        write_tls(e, df, m, b);
    if (has_http(m))
        write_http(m, b);
    if (m->has_dns)
        write_dns(m, b, false);
    if (has_ssh(m))
        write_ssh(m, b);
    write_login(df, m, b);
}

/* ---- metadata events ------------------------------------------------------ */

#define META_TAKEN_ALL 0x80

const char *dpi_meta_kind_name(dpi_meta_kind k)
{
    static const char *names[DPI_META_KINDS] = {"dns", "http", "tls", "ssh", "smb"};

    return (unsigned)k < DPI_META_KINDS ? names[k] : "";
}

unsigned dpi_take_meta_events(dpi_engine *e, flow *f)
{
    dpi_flow *df = f->user;
    const dpi_meta *m;
    unsigned ready = 0;

    /* Only once detection is over, and only for what nDPI recognised (a
     * guess from the port has no dissected data). */
    if (!e->cfg.metadata_events || !df || !df->done || df->smb_wait ||
        (df->meta_taken & META_TAKEN_ALL))
        return 0;
    df->meta_taken |= META_TAKEN_ALL; /* the metadata does not change after detection */
    if (!df->meta || df->guessed)
        return 0;
    m = df->meta;
    if (m->has_dns)
        ready |= 1u << DPI_META_DNS;
    if (has_http(m))
        ready |= 1u << DPI_META_HTTP;
    if (has_tls(m))
        ready |= 1u << DPI_META_TLS;
    if (has_ssh(m))
        ready |= 1u << DPI_META_SSH;
    if (m->smb)
        ready |= 1u << DPI_META_SMB;
    return ready;
}

void dpi_write_meta_event(dpi_engine *e, const flow *f, dpi_meta_kind k, jbuf *b)
{
    const dpi_flow *df = f->user;
    const dpi_meta *m = df ? df->meta : NULL;

    if (!m)
        return;
    switch (k) {
    case DPI_META_DNS:
        write_dns(m, b, true);
        break;
    case DPI_META_HTTP:
        write_http(m, b);
        break;
    case DPI_META_TLS:
        write_tls(e, df, m, b);
        break;
    case DPI_META_SSH:
        write_ssh(m, b);
        break;
    case DPI_META_SMB:
        write_smb(df, m, b);
        break;
    case DPI_META_KINDS:
        break;
    }
}
