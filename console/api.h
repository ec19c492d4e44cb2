/*
 * api.h - the console's JSON API (api.c) on its HTTP server (http.h).
 */
#ifndef FH_CONSOLE_API_H
#define FH_CONSOLE_API_H

#include <stddef.h>
#include <stdint.h>

#include "../correlator/calendar.h"
#include "../correlator/deadline.h"
#include "console.h"
#include "http.h"

typedef struct {
    const char *db;                /* the store every request thread opens */
    const deadline_policy *policy; /* for moves (verification window, fresh deadlines) */
    const char *policy_path;       /* shown in reports */
    const char *rules_dir;         /* the correlators' rule folder (NULL: no rules API) */
    const char *assets_file;       /* their asset inventory (placeholders), NULL: none */
    const char *archive_dir;       /* the correlators' event archive root, NULL: none */
    const calendar *cal;
    int64_t session_idle_ms;   /* 0: the account policy's default */
    int64_t (*now)(void *ctx); /* NULL: the wall clock */
    void *now_ctx;
} api_opts;

typedef struct api api;

int api_start(api **out, const api_opts *o, const http_opts *ho, char *err, size_t errlen);
void api_stop(api *a);
unsigned api_port(const api *a);

/* Every route: method, path ({id} for a path parameter) and the roles (bits of
 * account_role) allowed; 0 = public. For docs and the role x route test. */
typedef struct {
    const char *method, *path;
    unsigned roles;
} api_route_info;
const api_route_info *api_routes(size_t *n);

#endif
