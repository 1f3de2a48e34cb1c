/* SPDX-License-Identifier: MIT */
/* http.h -- /metrics, /health and /ready over libmicrohttpd, on its own thread. */
#ifndef CRM_HTTP_H
#define CRM_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "metrics.h"

/*
 * A probe fills `body` (a JSON object, NUL-terminated, at most len bytes
 * including the NUL) and returns true when healthy (200) or false (503).
 * Probes run on the HTTP thread: they must only read state that the main
 * loop publishes atomically.
 */
typedef bool (*http_probe_fn)(void *opaque, char *body, size_t len);

struct http_routes {
    struct metrics *metrics; /* GET /metrics */
    http_probe_fn health;    /* GET /health */
    http_probe_fn ready;     /* GET /ready */
    void *opaque;            /* passed to the probes */
};

struct http;

/*
 * Listen on cfg->http.listen ("HOST:PORT" or "[IPV6]:PORT") with the limits
 * of cfg->http (connections, per-IP connections, timeout) and, when set, TLS
 * and basic authentication. Serves GET and HEAD only; any other method gets
 * 405, any other path 404, a request with a body 413. NULL with a reason in
 * err (e.g. the port is taken).
 */
struct http *http_start(const struct config *cfg, const struct http_routes *routes, char *err,
                        size_t errlen);

/* The port actually bound (useful with port 0 in tests). */
int http_port(const struct http *h);

/* Stop the server and free it; takes NULL; returns NULL. */
struct http *http_stop(struct http *h);

#endif
