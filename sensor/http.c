/*
 * http.c - see http.h.
 */
#include "http.h"
#include "../common/fh_addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <htp/htp.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "files.h"
#include "pipeline_int.h"

#define HTTP_MAX_OPEN_TX 64   /* transactions of a flow waiting for their response */
#define HTTP_NORM_MAX    4096 /* bytes of a normalised URI */
#define HTTP_FIELD_SOFT  9000 /* libhtp's header and line limits */
#define HTTP_FIELD_HARD  18000
#define HTTP_BOMB_LIMIT  (1u << 24) /* decompressed bytes per body */
#define HTTP_BOMB_USEC   100000     /* decompression time per body */

struct http_engine {
    htp_cfg_t *cfg;
};

struct http_conn {
    htp_connp_t *connp;
    pworker *p;
    flow *f;
    uint64_t ts_us;
    uint32_t open_tx; /* transactions started and not yet logged */
    bool dead;        /* parsing stopped (gap, libhtp error) */
    bool sweep;       /* a transaction completed: free the finished ones */
};

/* Per transaction: its two bodies and whether its event was written. */
typedef struct {
    fh_file file[2];
    bool logged;
} http_txd;

static http_conn *conn_of(const htp_tx_t *tx)
{
    return htp_connp_get_user_data(tx->connp);
}

static int on_request_start(htp_tx_t *tx)
{
    http_conn *c = conn_of(tx);
    http_txd *t = calloc(1, sizeof(*t));

    if (!t)
        return HTP_ERROR;
    htp_tx_set_user_data(tx, t);
    c->open_tx++;
    c->p->pw.cnt.http_txs++;
    return HTP_OK;
}

/* The file name of a body: the request URI's path as sent (EVE's fileinfo.filename for HTTP). */
static void body_name(const htp_tx_t *tx, const char **name, size_t *len)
{
    const unsigned char *u;
    size_t n, i;

    *name = NULL;
    *len = 0;
    if (!tx->request_uri)
        return;
    u = bstr_ptr(tx->request_uri);
    n = bstr_len(tx->request_uri);
    for (i = 0; i < n && u[i] != '?'; i++)
        ;
    *name = (const char *)u;
    *len = i;
}

static int on_body(htp_tx_data_t *d, int dir)
{
    http_conn *c = conn_of(d->tx);
    http_txd *t = htp_tx_get_user_data(d->tx);
    const char *name;
    size_t nlen;

    if (!t || (!d->data && !t->file[dir].open))
        return HTP_OK;
    if (!t->file[dir].open) {
        body_name(d->tx, &name, &nlen);
        file_open(c->p, &t->file[dir], dir, name, nlen);
        if (dir == FLOW_TOCLIENT && d->tx->response_content_type)
            file_declared_type(&t->file[dir], (const char *)bstr_ptr(d->tx->response_content_type),
                               bstr_len(d->tx->response_content_type));
        else if (dir == FLOW_TOSERVER && d->tx->request_content_type)
            file_declared_type(&t->file[dir], (const char *)bstr_ptr(d->tx->request_content_type),
                               bstr_len(d->tx->request_content_type));
    }
    if (d->data && d->len)
        file_data(c->p, &t->file[dir], d->data, d->len);
    return HTP_OK;
}

static int on_request_body(htp_tx_data_t *d)
{
    return on_body(d, FLOW_TOSERVER);
}

static int on_response_body(htp_tx_data_t *d)
{
    return on_body(d, FLOW_TOCLIENT);
}

static const htp_header_t *header(htp_table_t *t, const char *name)
{
    return t ? htp_table_get_c(t, name) : NULL;
}

static void put_bstr(jbuf *b, const char *key, const bstr *s)
{
    if (s)
        jbuf_strn(b, key, (const char *)bstr_ptr(s), bstr_len(s));
}

static void put_header(jbuf *b, const char *key, htp_table_t *t, const char *name)
{
    const htp_header_t *h = header(t, name);

    if (h && h->value)
        put_bstr(b, key, h->value);
}

static bool is_session_cookie(const bstr *name)
{
    static const char *const marks[] = {"sess", "sid", "token", "auth", "jwt"};
    char low[64];
    size_t n = bstr_len(name);

    if (n >= sizeof(low))
        n = sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower(bstr_ptr(name)[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (strstr(low, marks[i]))
            return true;
    return false;
}

/*
 * http.session_cookie: the first cookie whose name marks a session (sess, sid,
 * token, auth, jwt), as its name and the SHA-256 of host, name and value; the
 * value itself is never written.
 */
static void put_session_cookie(jbuf *b, const htp_tx_t *tx)
{
    struct sha256_ctx sha;
    uint8_t d[SHA256_DIGEST_SIZE];
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    bstr *name = NULL;
    const bstr *value = NULL;

    if (!tx->request_cookies)
        return;
    for (size_t i = 0, n = htp_table_size(tx->request_cookies); i < n; i++) {
        bstr *k = NULL;
        const bstr *v = htp_table_get_index(tx->request_cookies, i, &k);

        if (k && v && bstr_len(v) && is_session_cookie(k)) {
            name = k;
            value = v;
            break;
        }
    }
    if (!name)
        return;
    sha256_init(&sha);
    if (tx->request_hostname)
        sha256_update(&sha, bstr_len(tx->request_hostname), bstr_ptr(tx->request_hostname));
    sha256_update(&sha, 1, (const uint8_t *)"");
    sha256_update(&sha, bstr_len(name), bstr_ptr(name));
    sha256_update(&sha, 1, (const uint8_t *)"=");
    sha256_update(&sha, bstr_len(value), bstr_ptr(value));
    sha256_digest(&sha, sizeof(d), d);
    fh_hex(hex, d, sizeof(d));
    jbuf_obj_open(b, "session_cookie");
    put_bstr(b, "name", name);
    jbuf_str(b, "sha256", hex);
    jbuf_obj_close(b);
}

static size_t append(uint8_t *dst, size_t at, size_t cap, const bstr *s)
{
    size_t n = bstr_len(s);

    if (n > cap - at)
        n = cap - at;
    memcpy(dst + at, bstr_ptr(s), n);
    return at + n;
}

/* The "http" object of a transaction (EVE's field names, plus url_normalized). */
static void write_http_tx(jbuf *b, void *arg)
{
    const htp_tx_t *tx = arg;
    char norm[HTTP_NORM_MAX];
    size_t n;

    jbuf_obj_open(b, "http");
    put_bstr(b, "hostname", tx->request_hostname);
    if (tx->request_port_number > 0)
        jbuf_u64(b, "http_port", (uint64_t)tx->request_port_number);
    if (tx->request_uri) {
        put_bstr(b, "url", tx->request_uri);
        /* libhtp's normalised path (dot segments, separators, %-decoding) and the query. */
        if (tx->parsed_uri && tx->parsed_uri->path) {
            uint8_t raw[HTTP_NORM_MAX];
            size_t m = 0;

            m = append(raw, m, sizeof(raw), tx->parsed_uri->path);
            if (tx->parsed_uri->query && m < sizeof(raw)) {
                raw[m++] = '?';
                m = append(raw, m, sizeof(raw), tx->parsed_uri->query);
            }
            n = http_normalize(raw, m, norm, sizeof(norm));
        } else {
            n = http_normalize(bstr_ptr(tx->request_uri), bstr_len(tx->request_uri), norm,
                               sizeof(norm));
        }
        jbuf_strn(b, "url_normalized", norm, n);
    }
    put_header(b, "http_user_agent", tx->request_headers, "user-agent");
    put_header(b, "http_refer", tx->request_headers, "referer");
    put_header(b, "xff", tx->request_headers, "x-forwarded-for");
    put_bstr(b, "http_content_type", tx->response_content_type);
    put_bstr(b, "http_method", tx->request_method);
    put_bstr(b, "protocol", tx->request_protocol);
    if (tx->response_status_number >= 100 && tx->response_status_number <= 999)
        jbuf_u64(b, "status", (uint64_t)tx->response_status_number);
    put_header(b, "redirect", tx->response_headers, "location");
    if (tx->response_entity_len > 0)
        jbuf_u64(b, "length", (uint64_t)tx->response_entity_len);
    if (tx->request_entity_len > 0)
        jbuf_u64(b, "request_length", (uint64_t)tx->request_entity_len);
    put_session_cookie(b, tx);
    jbuf_u64(b, "tx_id", tx->index);
    jbuf_obj_close(b);
}

static void close_body(http_conn *c, htp_tx_t *tx, http_txd *t, int dir, bool complete)
{
    if (t->file[dir].open)
        file_close(c->p, c->f, &t->file[dir], c->ts_us, "http", tx->index, complete, write_http_tx,
                   tx);
}

/* One transaction's events: its request body, response body, then the http event. */
static void log_tx(http_conn *c, htp_tx_t *tx, bool complete)
{
    http_txd *t = htp_tx_get_user_data(tx);
    pworker *p = c->p;
    jbuf *b = &p->jb;
    char cid[COMMUNITY_ID_LEN];

    if (!t || t->logged)
        return;
    close_body(c, tx, t, FLOW_TOSERVER, complete || tx->request_progress == HTP_REQUEST_COMPLETE);
    close_body(c, tx, t, FLOW_TOCLIENT, complete);
    t->logged = true;
    c->open_tx--;
    if (!tx->request_method && !tx->request_uri)
        return; /* nothing of a request line: no event */
    jbuf_reset(b);
    eve_flow_header(p, b, c->f, c->ts_us, "http", cid);
    write_http_tx(b, tx);
    jbuf_obj_close(b);
    eve_emit(p, "http", cid);
}

static int on_request_complete(htp_tx_t *tx)
{
    http_conn *c = conn_of(tx);
    http_txd *t = htp_tx_get_user_data(tx);

    if (t)
        close_body(c, tx, t, FLOW_TOSERVER, true);
    return HTP_OK;
}

static int on_response_complete(htp_tx_t *tx)
{
    http_conn *c = conn_of(tx);

    log_tx(c, tx, true);
    c->sweep = true;
    return HTP_OK;
}

http_engine *http_engine_new(void)
{
    http_engine *e = calloc(1, sizeof(*e));
    htp_cfg_t *cfg;

    if (!e || !(cfg = htp_config_create())) {
        free(e);
        return NULL;
    }
    e->cfg = cfg;
    htp_config_set_server_personality(cfg, HTP_SERVER_IDS);
    htp_config_set_log_level(cfg, HTP_LOG_ERROR);
    htp_config_set_field_limits(cfg, HTTP_FIELD_SOFT, HTTP_FIELD_HARD);
    htp_config_set_response_decompression(cfg, 1);
    htp_config_set_request_decompression(cfg, 1);
    htp_config_set_response_decompression_layer_limit(cfg, 2);
    htp_config_set_compression_bomb_limit(cfg, HTTP_BOMB_LIMIT);
    htp_config_set_compression_time_limit(cfg, HTTP_BOMB_USEC);
    htp_config_set_lzma_memlimit(cfg, 1u << 20);
    htp_config_set_lzma_layers(cfg, 1);
    htp_config_set_parse_request_cookies(cfg, 1);
    htp_config_register_request_start(cfg, on_request_start);
    htp_config_register_request_body_data(cfg, on_request_body);
    htp_config_register_response_body_data(cfg, on_response_body);
    htp_config_register_request_complete(cfg, on_request_complete);
    htp_config_register_response_complete(cfg, on_response_complete);
    return e;
}

void http_engine_free(http_engine *e)
{
    if (!e)
        return;
    htp_config_destroy(e->cfg);
    free(e);
}

bool http_is_request_start(const uint8_t *d, size_t len)
{
    static const char *const methods[] = {"GET ",       "POST ",  "HEAD ",    "PUT ",   "DELETE ",
                                          "OPTIONS ",   "PATCH ", "CONNECT ", "TRACE ", "PROPFIND ",
                                          "PROPPATCH ", "MKCOL ", "COPY ",    "MOVE ",  "LOCK ",
                                          "UNLOCK ",    "SEARCH "};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t n = strlen(methods[i]);

        if (len >= n && !memcmp(d, methods[i], n))
            return true;
    }
    return false;
}

http_conn *http_conn_new(pworker *p, flow *f)
{
    http_conn *c = calloc(1, sizeof(*c));
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

    if (!c)
        return NULL;
    c->connp = htp_connp_create(p->pw.http->cfg);
    if (!c->connp) {
        free(c);
        return NULL;
    }
    c->p = p;
    c->f = f;
    htp_connp_set_user_data(c->connp, c);
    eve_ip(f->ip_version, f->cli, a, sizeof(a));
    eve_ip(f->ip_version, f->srv, b, sizeof(b));
    htp_connp_open(c->connp, a, f->cli_port, b, f->srv_port, NULL);
    p->pw.cnt.http_flows++;
    return c;
}

static void free_txd(pworker *p, htp_tx_t *tx)
{
    http_txd *t = htp_tx_get_user_data(tx);

    if (!t)
        return;
    file_discard(p, &t->file[0]);
    file_discard(p, &t->file[1]);
    free(t);
    htp_tx_set_user_data(tx, NULL);
}

/* Frees the transactions that are logged and complete. */
static void sweep(http_conn *c)
{
    htp_conn_t *conn = htp_connp_get_connection(c->connp);
    size_t n = conn ? htp_list_size(conn->transactions) : 0;

    c->sweep = false;
    for (size_t i = 0; i < n; i++) {
        htp_tx_t *tx = htp_list_get(conn->transactions, i);
        http_txd *t;

        if (!tx || tx == htp_connp_get_in_tx(c->connp) || tx == htp_connp_get_out_tx(c->connp))
            continue;
        t = htp_tx_get_user_data(tx);
        if ((t && !t->logged) || tx->request_progress != HTP_REQUEST_COMPLETE ||
            tx->response_progress != HTP_RESPONSE_COMPLETE)
            continue;
        free_txd(c->p, tx);
        htp_tx_destroy(tx);
    }
}

/* Logs every transaction not logged yet (flow end, or too many waiting). */
static void log_all(http_conn *c, bool all)
{
    htp_conn_t *conn = htp_connp_get_connection(c->connp);
    size_t n = conn ? htp_list_size(conn->transactions) : 0;

    for (size_t i = 0; i < n && (all || c->open_tx > HTTP_MAX_OPEN_TX / 2); i++) {
        htp_tx_t *tx = htp_list_get(conn->transactions, i);

        if (tx)
            log_tx(c, tx, tx->response_progress == HTP_RESPONSE_COMPLETE);
    }
}

void http_conn_data(http_conn *c, int dir, const uint8_t *data, size_t len, bool gap,
                    uint64_t ts_us)
{
    struct timeval tv = {.tv_sec = (time_t)(ts_us / 1000000u),
                         .tv_usec = (suseconds_t)(ts_us % 1000000u)};
    int rc;

    if (c->dead || !len)
        return;
    c->ts_us = ts_us;
    if (gap) {
        /* libhtp cannot resynchronise in the middle of a message: stop here. */
        htp_conn_t *conn = htp_connp_get_connection(c->connp);

        for (size_t i = 0, n = conn ? htp_list_size(conn->transactions) : 0; i < n; i++) {
            htp_tx_t *tx = htp_list_get(conn->transactions, i);
            http_txd *t = tx ? htp_tx_get_user_data(tx) : NULL;

            if (t && t->file[dir].open)
                file_gap(&t->file[dir]);
        }
        log_all(c, true);
        c->dead = true;
        return;
    }
    if (dir == FLOW_TOSERVER)
        rc = htp_connp_req_data(c->connp, &tv, data, len);
    else
        rc = htp_connp_res_data(c->connp, &tv, data, len);
    if (rc == HTP_STREAM_ERROR) {
        c->p->pw.cnt.http_errors++;
        log_all(c, true);
        c->dead = true;
        return;
    }
    if (c->open_tx > HTTP_MAX_OPEN_TX)
        log_all(c, false);
    if (c->sweep)
        sweep(c);
}

void http_conn_close(http_conn *c, uint64_t ts_us)
{
    struct timeval tv = {.tv_sec = (time_t)(ts_us / 1000000u),
                         .tv_usec = (suseconds_t)(ts_us % 1000000u)};

    if (!c)
        return;
    c->ts_us = ts_us;
    if (!c->dead)
        htp_connp_close(c->connp, &tv);
    log_all(c, true);
    http_conn_free(c);
}

void http_conn_free(http_conn *c)
{
    htp_conn_t *conn;

    if (!c)
        return;
    conn = htp_connp_get_connection(c->connp);
    for (size_t i = 0, n = conn ? htp_list_size(conn->transactions) : 0; i < n; i++) {
        htp_tx_t *tx = htp_list_get(conn->transactions, i);

        if (tx)
            free_txd(c->p, tx);
    }
    htp_connp_destroy_all(c->connp);
    free(c);
}

size_t http_conn_mem(const http_conn *c)
{
    /* libhtp does not report its memory: the fixed part and the open transactions. */
    return c ? sizeof(*c) + 4096 + (size_t)c->open_tx * (sizeof(http_txd) + 2048) : 0;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* One round of %-decoding (and '+' as space) into out; returns the length. */
static size_t pct_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int h, l;

        if (in[i] == '%' && i + 2 < len && (h = hexval(in[i + 1])) >= 0 &&
            (l = hexval(in[i + 2])) >= 0) {
            out[o++] = (uint8_t)(h << 4 | l);
            i += 2;
        } else if (in[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

size_t http_normalize(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    uint8_t a[HTTP_NORM_MAX], bb[HTTP_NORM_MAX];
    size_t n, o = 0;
    bool space = false;

    if (!outlen)
        return 0;
    if (len > sizeof(a))
        len = sizeof(a);
    n = pct_decode(in, len, a);
    n = pct_decode(a, n, bb);
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        uint8_t ch = bb[i];

        if (ch == '/' && i + 1 < n && bb[i + 1] == '*') { /* SQL comment: one space */
            size_t j = i + 2;

            while (j + 1 < n && !(bb[j] == '*' && bb[j + 1] == '/'))
                j++;
            i = j + 1 < n ? j + 1 : n - 1;
            ch = ' ';
        }
        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            if (space || o == 0)
                continue;
            space = true;
            out[o++] = ' ';
            continue;
        }
        space = false;
        out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o;
}
