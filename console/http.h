/*
 * http.h - the console's HTTP(S) server on libmicrohttpd 0.9.75: limits set
 * explicitly (connection timeout, connections per address, header memory,
 * body size), security headers on every response, JSON errors as codes, the
 * static files of dashboards/ without path traversal, and a route table the
 * API (api.c) fills.
 *
 * A request's body is buffered up to its cap (413 beyond, before reading it
 * when Content-Length says so); the route runs once the request is complete,
 * on one of the daemon's pool threads, with that thread's own store
 * connection (stores are one per thread).
 */
#ifndef FH_CONSOLE_HTTP_H
#define FH_CONSOLE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/jbuf.h"

struct MHD_Connection;

typedef struct {
    const char *listen;   /* "127.0.0.1:8443" */
    const char *tls_cert; /* PEM files: HTTPS when both are set */
    const char *tls_key;
    const char *static_dir; /* dashboards/ */
    unsigned threads;       /* default 4 */
    unsigned timeout_s;     /* idle connection timeout; default 30 */
    unsigned per_ip;        /* connections per client address; default 32 */
    size_t max_body;        /* default 1 MiB */
} http_opts;

typedef struct {
    struct MHD_Connection *conn;
    const char *method, *path; /* path without the query */
    const char *body;
    size_t body_len;
    char source[64]; /* client address */
    bool tls;
} http_req;

typedef struct {
    int status;
    jbuf body;                /* JSON */
    char set_cookie[256];     /* a Set-Cookie header, when not empty */
    const char *content_type; /* default application/json */
    const void *raw;          /* a non-JSON body (reports), raw_len bytes, copied */
    size_t raw_len;
    char disposition[128];                 /* Content-Disposition, when not empty */
    const char *route_method, *route_path; /* the route that answered (metrics), static strings */
} http_resp;

/* The text of a file (NUL-terminated, its length in *len); NULL when it cannot be read or
 * holds more than max bytes. */
char *http_slurp(const char *path, size_t max, size_t *len);

/* A query parameter or a header of the request (NULL when absent). */
const char *http_query(const http_req *r, const char *name);
const char *http_header(const http_req *r, const char *name);
const char *http_cookie(const http_req *r, const char *name);

/* {"error":{"code":CODE}} with status: codes, never prose (the UI translates). */
void http_error(http_resp *w, int status, const char *code);
/* The same, with the "error" object left open for parameters (jbuf_str(&w->body, ...));
 * http_error_close() ends it. */
void http_error_open(http_resp *w, int status, const char *code);
void http_error_close(http_resp *w);

/* A route: returns nothing, fills w (status 200 and a JSON body by default). */
typedef void (*http_handler)(void *ctx, const http_req *r, http_resp *w);

/* The API's dispatcher: called for every /api/ and /metrics request (the server
 * itself is passed to it as server, for /metrics). */
typedef struct {
    http_handler api;
    void *ctx;
} http_routes;

typedef struct http_server http_server;

/* Starts the daemon; on error err says why. */
int http_start(http_server **out, const http_opts *o, const http_routes *routes, char *err,
               size_t errlen);
void http_stop(http_server *s);
/* The port it listens on (useful with port 0). */
unsigned http_port(const http_server *s);

/* HTTP requests per method and status, and their latency histogram, in Prometheus text. */
void http_metrics(http_server *s, FILE *out);

#endif
