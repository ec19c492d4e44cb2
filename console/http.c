/*
 * http.c - see http.h.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../common/fh_log.h"
#include "../common/fh_metrics.h"

/* No inline script or style anywhere; nothing from elsewhere; never in a frame. */
#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

static const double BUCKETS[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
#define NBUCKETS (sizeof(BUCKETS) / sizeof(BUCKETS[0]))

typedef struct {
    uint64_t count[6];             /* by status class 1xx..5xx (index 1..5) */
    uint64_t bucket[NBUCKETS + 1]; /* latency, cumulative at export */
    double sum;
} route_stats;

/* Per API route (its method and path pattern, as the dispatcher names it). */
#define MAX_ROUTES 96
typedef struct {
    const char *method, *path; /* static strings of the route table; "other": no route */
    route_stats st;
} route_slot;

struct http_server {
    struct MHD_Daemon *d;
    http_opts o;
    http_routes routes;
    char *cert, *key;
    unsigned port;
    pthread_mutex_t mu;
    route_slot api[MAX_ROUTES]; /* the API, per route */
    size_t napi;
    route_stats stat; /* static files */
};

typedef struct {
    char *body;
    size_t len, cap;
    bool too_big;
    struct timespec start;
} req_state;

static double since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

const char *http_query(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_cookie(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

void http_error_open(http_resp *w, int status, const char *code)
{
    w->status = status;
    jbuf_reset(&w->body);
    jbuf_obj_open(&w->body, NULL);
    jbuf_obj_open(&w->body, "error");
    jbuf_str(&w->body, "code", code);
}

void http_error_close(http_resp *w)
{
    jbuf_obj_close(&w->body);
    jbuf_obj_close(&w->body);
}

void http_error(http_resp *w, int status, const char *code)
{
    http_error_open(w, status, code);
    http_error_close(w);
}

static void headers(http_server *s, struct MHD_Response *r, bool api)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    if (api)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    if (s->o.tls_cert)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

static void add_sample(route_stats *rs, int status, double secs)
{
    size_t b = 0;

    if (status >= 100 && status < 600)
        rs->count[status / 100]++;
    while (b < NBUCKETS && secs > BUCKETS[b])
        b++;
    rs->bucket[b]++;
    rs->sum += secs;
}

static void count(http_server *s, route_stats *rs, int status, double secs)
{
    pthread_mutex_lock(&s->mu);
    add_sample(rs, status, secs);
    pthread_mutex_unlock(&s->mu);
}

/* An API request, under its route (or "other": unknown path or method, refused early). */
static void count_api(http_server *s, const http_resp *w, double secs)
{
    const char *method = w->route_method ? w->route_method : "other";
    const char *path = w->route_path ? w->route_path : "other";
    route_slot *slot = NULL;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->napi && !slot; i++)
        if (s->api[i].method == method && s->api[i].path == path)
            slot = &s->api[i];
    if (!slot && s->napi < MAX_ROUTES) {
        slot = &s->api[s->napi++];
        slot->method = method;
        slot->path = path;
    }
    if (slot)
        add_sample(&slot->st, w->status, secs);
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result send_json(http_server *s, struct MHD_Connection *c, http_resp *w)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (w->raw)
        r = MHD_create_response_from_buffer(w->raw_len, (void *)w->raw, MHD_RESPMEM_MUST_COPY);
    else
        r = MHD_create_response_from_buffer(w->body.len, w->body.data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    headers(s, r, true);
    MHD_add_response_header(r, "Content-Type",
                            w->content_type ? w->content_type : "application/json; charset=utf-8");
    if (w->set_cookie[0])
        MHD_add_response_header(r, "Set-Cookie", w->set_cookie);
    if (w->disposition[0])
        MHD_add_response_header(r, "Content-Disposition", w->disposition);
    ret = MHD_queue_response(c, (unsigned)w->status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *mime(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".json", "application/json"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"},
                 {".woff2", "font/woff2"},
                 {".txt", "text/plain; charset=utf-8"}};
    const char *dot = strrchr(path, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/*
 * A file under static_dir. The path must be made of plain segments (no "..",
 * no ".", no empty or hidden segment, no backslash or NUL), and the resolved
 * file must still lie under the resolved directory (no symlink out of it).
 */
static int open_static(const http_server *s, const char *url, struct stat *sb, const char **type)
{
    char rel[1024], full[PATH_MAX], real[PATH_MAX], root[PATH_MAX];
    const char *p = url;
    size_t rl;
    int fd;

    if (!s->o.static_dir || strlen(url) >= sizeof(rel) - 16 || strchr(url, '\\'))
        return -1;
    snprintf(rel, sizeof(rel), "%s", !strcmp(url, "/") ? "/index.html" : url);
    for (p = rel; *p; p++) {
        if (*p == '/' && (p[1] == '/' || p[1] == '.' || p[1] == '\0'))
            return -1;
        if ((unsigned char)*p < 0x20)
            return -1;
    }
    if (snprintf(full, sizeof(full), "%s%s", s->o.static_dir, rel) >= (int)sizeof(full) ||
        !realpath(s->o.static_dir, root) || !realpath(full, real))
        return -1;
    rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || real[rl] != '/')
        return -1;
    if ((fd = open(real, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(fd);
        return -1;
    }
    *type = mime(real);
    return fd;
}

/* A static request refused: the JSON error, counted with the static files. */
static enum MHD_Result static_error(http_server *s, struct MHD_Connection *c, req_state *rs,
                                    int status, const char *code)
{
    http_resp w = {.status = status};
    enum MHD_Result ret;

    if (!jbuf_init(&w.body, 256, 4096))
        return MHD_NO;
    http_error(&w, status, code);
    ret = send_json(s, c, &w);
    jbuf_free(&w.body);
    count(s, &s->stat, status, since(&rs->start));
    return ret;
}

static enum MHD_Result serve_static(http_server *s, struct MHD_Connection *c, const char *url,
                                    const char *method, req_state *rs)
{
    struct stat sb;
    const char *type;
    struct MHD_Response *r;
    enum MHD_Result ret;
    int fd, status = 200;

    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return static_error(s, c, rs, 405, "method_not_allowed");
    fd = open_static(s, url, &sb, &type);
    if (fd < 0)
        return static_error(s, c, rs, 404, "not_found");
    r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    headers(s, r, false);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    count(s, &s->stat, status, since(&rs->start));
    return ret;
}

static void client_address(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, len, "unknown");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)len);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    req_state *rs = *con_cls;
    enum MHD_Result ret;

    (void)version;
    if (!rs) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");

        if (!(rs = calloc(1, sizeof(*rs))))
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rs->start);
        *con_cls = rs;
        /* a body announced larger than the cap is refused before it is read */
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
            rs->too_big = true;
        else
            return MHD_YES;
    }
    if (*upload_size) {
        if (!rs->too_big && rs->len + *upload_size <= s->o.max_body) {
            if (rs->len + *upload_size + 1 > rs->cap) {
                size_t cap = (rs->len + *upload_size + 1) * 2;
                char *b = realloc(rs->body, cap > s->o.max_body + 1 ? s->o.max_body + 1 : cap);

                if (!b)
                    return MHD_NO;
                rs->body = b;
                rs->cap = cap > s->o.max_body + 1 ? s->o.max_body + 1 : cap;
            }
            memcpy(rs->body + rs->len, upload_data, *upload_size);
            rs->len += *upload_size;
        } else {
            rs->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/metrics") != 0 && !rs->too_big)
        return serve_static(s, c, url, method, rs);
    {
        http_resp w = {.status = 200};
        http_req r = {.conn = c,
                      .method = method,
                      .path = url,
                      .body = rs->body ? rs->body : "",
                      .body_len = rs->len,
                      .tls = s->o.tls_cert != NULL};

        if (!jbuf_init(&w.body, 4096, (size_t)256 << 20))
            return MHD_NO;
        if (rs->body)
            rs->body[rs->len] = '\0';
        client_address(c, r.source, sizeof(r.source));
        if (rs->too_big)
            http_error(&w, 413, "body_too_large");
        else
            s->routes.api(s->routes.ctx, &r, &w);
        if (jbuf_failed(&w.body))
            http_error(&w, 500, "response_too_large");
        ret = send_json(s, c, &w);
        count_api(s, &w, since(&rs->start));
        jbuf_free(&w.body);
        free((void *)w.raw);
    }
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    req_state *rs = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rs) {
        free(rs->body);
        free(rs);
    }
    *con_cls = NULL;
}

char *http_slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (size_t)n <= max &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
        errno = EFBIG; /* or unreadable: said as "cannot read" by the callers */
    }
    fclose(f);
    return buf;
}

/* A certificate or key (PEM, under 1 MiB). */
static char *slurp(const char *path, char *err, size_t errlen)
{
    size_t n;
    char *buf;

    errno = 0;
    if (!(buf = http_slurp(path, (1 << 20) - 1, &n))) {
        if (errno && errno != EFBIG)
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        else
            snprintf(err, errlen, "cannot read '%s'", path);
    }
    return buf;
}

int http_start(http_server **out, const http_opts *o, const http_routes *routes, char *err,
               size_t errlen)
{
    http_server *s = calloc(1, sizeof(*s));
    struct sockaddr_storage ss;
    socklen_t sslen;
    bool v6;
    char why[256];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *di;

    *out = NULL;
    if (!s)
        return -1;
    s->o = *o;
    s->routes = *routes;
    pthread_mutex_init(&s->mu, NULL);
    if (!s->o.threads)
        s->o.threads = 4;
    if (!s->o.timeout_s)
        s->o.timeout_s = 30;
    if (!s->o.per_ip)
        s->o.per_ip = 32;
    if (!s->o.max_body)
        s->o.max_body = 1 << 20;
    if (!fh_listen_addr(o->listen, &ss, &sslen, &v6, why, sizeof(why))) {
        snprintf(err, errlen, "--listen: %s", why);
        http_stop(s);
        return -1;
    }
    if (v6)
        flags |= MHD_USE_IPv6;
    if (o->tls_cert || o->tls_key) {
        if (!o->tls_cert || !o->tls_key) {
            snprintf(err, errlen, "HTTPS needs both --tls-cert and --tls-key");
            http_stop(s);
            return -1;
        }
        if (!(s->cert = slurp(o->tls_cert, err, errlen)) ||
            !(s->key = slurp(o->tls_key, err, errlen))) {
            http_stop(s);
            return -1;
        }
        flags |= MHD_USE_TLS;
    }
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, s->o.threads, MHD_OPTION_CONNECTION_TIMEOUT, s->o.timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->o.per_ip, MHD_OPTION_CONNECTION_LIMIT, 512u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        completed, s, s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->cert,
        MHD_OPTION_HTTPS_MEM_KEY, s->key, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s%s", o->listen,
                 s->cert ? " (or the certificate and key are not usable)" : "");
        http_stop(s);
        return -1;
    }
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    *out = s;
    return 0;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s->cert);
    free(s->key);
    free(s);
}

unsigned http_port(const http_server *s)
{
    return s->port;
}

/* The labels of one series: kind, and method and route for the API. */
static void labels(char *out, size_t len, const char *kind, const route_slot *r)
{
    if (r)
        snprintf(out, len, "kind=\"%s\",method=\"%s\",route=\"%s\"", kind, r->method, r->path);
    else
        snprintf(out, len, "kind=\"%s\"", kind);
}

static void requests_of(FILE *f, const char *lab, const route_stats *rs)
{
    for (int c = 1; c <= 5; c++)
        if (rs->count[c])
            fprintf(f, "fenghuo_console_http_requests_total{%s,code=\"%dxx\"} %llu\n", lab, c,
                    (unsigned long long)rs->count[c]);
}

static void latency_of(FILE *f, const char *lab, const route_stats *rs)
{
    uint64_t cum = 0;

    for (size_t b = 0; b <= NBUCKETS; b++) {
        char le[16];

        cum += rs->bucket[b];
        if (b < NBUCKETS)
            snprintf(le, sizeof(le), "%g", BUCKETS[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        fprintf(f, "fenghuo_console_http_request_duration_seconds_bucket{%s,le=\"%s\"} %llu\n", lab,
                le, (unsigned long long)cum);
    }
    fprintf(f, "fenghuo_console_http_request_duration_seconds_sum{%s} %.6f\n", lab, rs->sum);
    fprintf(f, "fenghuo_console_http_request_duration_seconds_count{%s} %llu\n", lab,
            (unsigned long long)cum);
}

void http_metrics(http_server *s, FILE *f)
{
    route_slot *api = malloc(sizeof(s->api));
    route_stats stat;
    size_t n;
    char lab[256];

    if (!api)
        return;
    pthread_mutex_lock(&s->mu);
    memcpy(api, s->api, sizeof(s->api));
    n = s->napi;
    stat = s->stat;
    pthread_mutex_unlock(&s->mu);
    fprintf(f, "# HELP fenghuo_console_http_requests_total HTTP requests answered, by kind "
               "(api or static), API route and status class.\n"
               "# TYPE fenghuo_console_http_requests_total counter\n");
    for (size_t i = 0; i < n; i++) {
        labels(lab, sizeof(lab), "api", &api[i]);
        requests_of(f, lab, &api[i].st);
    }
    requests_of(f, "kind=\"static\"", &stat);
    fprintf(f, "# HELP fenghuo_console_http_request_duration_seconds Time to answer a request.\n"
               "# TYPE fenghuo_console_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        labels(lab, sizeof(lab), "api", &api[i]);
        latency_of(f, lab, &api[i].st);
    }
    latency_of(f, "kind=\"static\"", &stat);
    free(api);
}
