/*
 * fh_metrics.c - see fh_metrics.h.
 */
#include "fh_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

struct fh_metrics {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    char *text;
    size_t len;
    unsigned port;
};

bool fh_listen_addr(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *v6,
                    char *err, size_t errlen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;
    char host[128], *end;
    long port;

    memset(ss, 0, sizeof(*ss));
    if (!colon || (size_t)(colon - listen) >= sizeof(host) || !colon[1] ||
        (port = strtol(colon + 1, &end, 10)) < 0 || port > 65535 || *end) {
        snprintf(err, errlen, "expected ADDRESS:PORT, got '%s'", listen ? listen : "");
        return false;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[' && strlen(host) > 1 && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        *v6 = true;
        return true;
    }
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", host);
    return false;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    fh_metrics *m = cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    bool ok = !strcmp(method, "GET") && !strcmp(url, "/metrics");
    char *copy = NULL;
    size_t n = 0;

    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    if (ok) {
        pthread_mutex_lock(&m->mu);
        if (m->len && (copy = malloc(m->len))) {
            memcpy(copy, m->text, m->len);
            n = m->len;
        }
        pthread_mutex_unlock(&m->mu);
    }
    if (copy)
        r = MHD_create_response_from_buffer(n, copy, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(copy);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(c,
                             !ok    ? MHD_HTTP_NOT_FOUND
                             : copy ? MHD_HTTP_OK
                                    : MHD_HTTP_SERVICE_UNAVAILABLE,
                             r);
    MHD_destroy_response(r);
    return ret;
}

int fh_metrics_start(fh_metrics **out, const char *listen, char *err, size_t errlen)
{
    fh_metrics *m = calloc(1, sizeof(*m));
    struct sockaddr_storage ss;
    socklen_t len;
    bool v6;
    const union MHD_DaemonInfo *di;
    char why[256];

    *out = NULL;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&m->mu, NULL);
    if (!fh_listen_addr(listen, &ss, &len, &v6, why, sizeof(why))) {
        snprintf(err, errlen, "metrics listener: %s", why);
        fh_metrics_stop(m);
        return -1;
    }
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                                (v6 ? MHD_USE_IPv6 : 0),
                            0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 16u,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8u, MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, errlen, "metrics listener: cannot listen on %s", listen);
        fh_metrics_stop(m);
        return -1;
    }
    di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di ? di->port : 0;
    *out = m;
    return 0;
}

unsigned fh_metrics_port(const fh_metrics *m)
{
    return m->port;
}

void fh_metrics_publish(fh_metrics *m, const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy)
        return; /* the previous snapshot stays */
    memcpy(copy, text, len);
    pthread_mutex_lock(&m->mu);
    free(m->text);
    m->text = copy;
    m->len = len;
    pthread_mutex_unlock(&m->mu);
}

void fh_metrics_stop(fh_metrics *m)
{
    if (!m)
        return;
    if (m->d)
        MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->mu);
    free(m->text);
    free(m);
}

void fh_metrics_label(char *out, size_t outlen, const char *s)
{
    size_t o = 0;

    for (; s && *s && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
}

void fh_metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void fh_metrics_one(FILE *f, const char *name, const char *type, const char *help,
                    unsigned long long v)
{
    fh_metrics_head(f, name, type, help);
    fprintf(f, "%s %llu\n", name, v);
}
