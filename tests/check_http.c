/* SPDX-License-Identifier: MIT */
/* check_http.c -- the HTTP endpoint over real loopback sockets: routes, limits, auth, TLS. */
#include <arpa/inet.h>
#include <check.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "metrics.h"

/* Generous: a sanitizer or valgrind build answers slowly, a hung server not at all. */
#define IO_TIMEOUT_MS 10000

#define CT_METRICS "Content-Type: text/plain; version=0.0.4; charset=utf-8"
#define CT_JSON    "Content-Type: application/json"
#define NOSNIFF    "X-Content-Type-Options: nosniff"
#define NO_STORE   "Cache-Control: no-store"
#define CHALLENGE  "WWW-Authenticate: Basic realm=\"crm-consumerd\""

#define AUTH_USER "prometheus"
#define AUTH_PASS "s3cret pass:with colon"

/* One running server per test; the teardown stops it whatever happened. */
static struct config *cfg;
static struct metrics *reg;
static struct http *srv;
static int port;

/* What the probes answer, and what they were called with (checked on the test's thread). */
static atomic_bool health_ok, ready_ok;
static atomic_uintptr_t opaque_seen;
static int probe_token;

static bool probe(void *opaque, char *body, size_t len, const char *name, bool ok)
{
    atomic_store(&opaque_seen, (uintptr_t)opaque);
    snprintf(body, len, "{\"probe\":\"%s\",\"ok\":%s}", name, ok ? "true" : "false");
    return ok;
}

static bool probe_health(void *opaque, char *body, size_t len)
{
    return probe(opaque, body, len, "health", atomic_load(&health_ok));
}

static bool probe_ready(void *opaque, char *body, size_t len)
{
    return probe(opaque, body, len, "ready", atomic_load(&ready_ok));
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = strdup(v);
    ck_assert_ptr_nonnull(*field);
}

static void setup(void)
{
    struct metric_family *f;
    struct metric *c;

    cfg = config_new_defaults();
    ck_assert_ptr_nonnull(cfg);
    set_str(&cfg->http.listen, "127.0.0.1:0");
    reg = metrics_new();
    ck_assert_ptr_nonnull(reg);
    f = metrics_family(reg, METRIC_COUNTER, "test_requests_total", "Requests seen by the test.", 1,
                       (const char *const[]){"route"}, 0, NULL);
    ck_assert_ptr_nonnull(f);
    c = metrics_child(f, (const char *const[]){"x"});
    ck_assert_ptr_nonnull(c);
    metric_add(c, 3);
    atomic_store(&health_ok, true);
    atomic_store(&ready_ok, true);
    atomic_store(&opaque_seen, 0);
    srv = NULL;
    port = 0;
}

static void teardown(void)
{
    srv = http_stop(srv);
    reg = metrics_free(reg);
    cfg = config_free(cfg);
}

static struct http *try_start(char *err, size_t errlen)
{
    struct http_routes routes = {
        .metrics = reg, .health = probe_health, .ready = probe_ready, .opaque = &probe_token};

    err[0] = '\0';
    return http_start(cfg, &routes, err, errlen);
}

/* Start with the current cfg; fails the test with the server's reason if it does not. */
static void start(void)
{
    char err[512];

    srv = try_start(err, sizeof(err));
    ck_assert_msg(srv != NULL, "http_start: %s", err);
    port = http_port(srv);
    ck_assert_int_gt(port, 0);
}

/* The body the server must send for /metrics: what the registry renders right now. */
static char *rendered(size_t *len)
{
    char *buf = NULL;

    ck_assert_int_eq(metrics_render(reg, &buf, len), 0);
    return buf;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connected, blocking TCP socket to the loopback address of `family`. */
static int dial(int family, int p)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)p);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Write everything; false when the peer has closed (the server may refuse mid-request). */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Wait up to timeout_ms for the peer to close: 1 when it did (EOF or reset),
 * 0 on timeout. Whatever arrives first is discarded.
 */
static int wait_closed(int fd, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    char buf[4096];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            return 0;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return 1;
    }
}

/* A response read to end of stream, split at the blank line. */
struct reply {
    char *raw;
    size_t len;
    char status[128]; /* the status line, without CRLF; "" when nothing came */
    const char *body;
    size_t body_len;
};

static void reply_free(struct reply *r)
{
    free(r->raw);
    *r = (struct reply){0};
}

/* Read until the server closes, then parse; fails the test on timeout. */
static void read_reply(int fd, struct reply *r)
{
    int64_t deadline = now_ms() + IO_TIMEOUT_MS;
    size_t cap = 4096;
    const char *eol, *blank;

    *r = (struct reply){0};
    r->raw = malloc(cap + 1);
    ck_assert_ptr_nonnull(r->raw);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t n;

        ck_assert_msg(left > 0 && poll(&p, 1, (int)left) > 0, "no end of response in %d ms",
                      IO_TIMEOUT_MS);
        if (r->len == cap) {
            cap *= 2;
            r->raw = realloc(r->raw, cap + 1);
            ck_assert_ptr_nonnull(r->raw);
        }
        n = recv(fd, r->raw + r->len, cap - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->raw[r->len] = '\0';
    eol = strstr(r->raw, "\r\n");
    if (eol && (size_t)(eol - r->raw) < sizeof(r->status))
        memcpy(r->status, r->raw, (size_t)(eol - r->raw));
    blank = strstr(r->raw, "\r\n\r\n");
    if (blank) {
        r->body = blank + 4;
        r->body_len = r->len - (size_t)(r->body - r->raw);
    }
}

/* Send a raw request on a fresh connection and read the whole reply. */
static void exchange(int family, const char *req, size_t len, struct reply *r)
{
    int fd = dial(family, port);

    send_all(fd, req, len);
    read_reply(fd, r);
    close(fd);
}

/* GET or HEAD `path` with `extra` header lines (each ending in CRLF). */
static void request(const char *method, const char *path, const char *extra, struct reply *r)
{
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n", method,
                     path, extra ? extra : "");

    ck_assert_int_lt(n, (int)sizeof(req));
    exchange(AF_INET, req, (size_t)n, r);
}

/* Whether the header section holds this exact line. */
static bool has_header(const struct reply *r, const char *line)
{
    size_t n = strlen(line);
    const char *end = r->body ? r->body - 2 : r->raw + r->len;

    for (const char *p = strstr(r->raw, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
        if (strncmp(p + 2, line, n) == 0 && strncmp(p + 2 + n, "\r\n", 2) == 0)
            return true;
    return false;
}

static void assert_secure(const struct reply *r)
{
    ck_assert_msg(has_header(r, NOSNIFF), "no nosniff in:\n%s", r->raw);
    ck_assert_msg(has_header(r, NO_STORE), "no no-store in:\n%s", r->raw);
}

static void assert_status(const struct reply *r, const char *status)
{
    ck_assert_msg(strcmp(r->status, status) == 0, "want \"%s\", got:\n%s", status, r->raw);
    assert_secure(r);
}

/*
 * GET /metrics until it answers 200 or `ms` pass: a server at its limits
 * may close a new connection before serving it, and that is fine.
 */
static bool metrics_answers_within(int ms)
{
    int64_t deadline = now_ms() + ms;

    while (now_ms() < deadline) {
        struct reply r;
        bool ok;

        request("GET", "/metrics", NULL, &r);
        ok = strcmp(r.status, "HTTP/1.1 200 OK") == 0;
        reply_free(&r);
        if (ok)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

START_TEST(test_metrics_get)
{
    struct reply r;
    size_t len;
    char *want;

    start();
    request("GET", "/metrics", NULL, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    ck_assert(has_header(&r, CT_METRICS));
    want = rendered(&len);
    ck_assert_ptr_nonnull(strstr(want, "test_requests_total"));
    ck_assert_uint_eq(r.body_len, len);
    ck_assert_mem_eq(r.body, want, len);
    free(want);
    reply_free(&r);

    /* libmicrohttpd strips the query before routing. */
    request("GET", "/metrics?x=1&y", NULL, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    reply_free(&r);

    /* HTTP/1.0 and an explicit zero-length body are ordinary requests. */
    exchange(AF_INET, "GET /metrics HTTP/1.0\r\n\r\n", 25, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    reply_free(&r);
    request("GET", "/metrics", "Content-Length: 0\r\n", &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    reply_free(&r);
}
END_TEST

START_TEST(test_metrics_head)
{
    struct reply r;
    char clen[64];
    size_t len;

    start();
    free(rendered(&len));
    request("HEAD", "/metrics", NULL, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    ck_assert(has_header(&r, CT_METRICS));
    snprintf(clen, sizeof(clen), "Content-Length: %zu", len);
    ck_assert_msg(has_header(&r, clen), "want %s in:\n%s", clen, r.raw);
    ck_assert_ptr_nonnull(r.body);
    ck_assert_uint_eq(r.body_len, 0);
    reply_free(&r);
}
END_TEST

static const struct probe_case {
    const char *path;
    bool ok;
    const char *status;
    const char *body;
} probe_cases[] = {
    {"/health", true, "HTTP/1.1 200 OK", "{\"probe\":\"health\",\"ok\":true}"},
    {"/health", false, "HTTP/1.1 503 Service Unavailable", "{\"probe\":\"health\",\"ok\":false}"},
    {"/ready", true, "HTTP/1.1 200 OK", "{\"probe\":\"ready\",\"ok\":true}"},
    {"/ready", false, "HTTP/1.1 503 Service Unavailable", "{\"probe\":\"ready\",\"ok\":false}"},
};

START_TEST(test_probes)
{
    const struct probe_case *pc = &probe_cases[_i];
    struct reply r;

    /* The other probe is set the opposite way: each route must ask its own. */
    atomic_store(&health_ok, strcmp(pc->path, "/health") == 0 ? pc->ok : !pc->ok);
    atomic_store(&ready_ok, strcmp(pc->path, "/ready") == 0 ? pc->ok : !pc->ok);
    start();
    request("GET", pc->path, NULL, &r);
    assert_status(&r, pc->status);
    ck_assert(has_header(&r, CT_JSON));
    ck_assert_uint_eq(r.body_len, strlen(pc->body));
    ck_assert_mem_eq(r.body, pc->body, r.body_len);
    ck_assert(atomic_load(&opaque_seen) == (uintptr_t)&probe_token);
    reply_free(&r);

    request("HEAD", pc->path, NULL, &r);
    assert_status(&r, pc->status);
    ck_assert_uint_eq(r.body_len, 0);
    reply_free(&r);
}
END_TEST

static const char *const missing_paths[] = {
    "/nope", "/metrics/", "/../metrics", "//metrics", "/", "/Metrics", "/healthz", "/ready/x", "*",
};

START_TEST(test_not_found)
{
    struct reply r;

    start();
    request("GET", missing_paths[_i], NULL, &r);
    assert_status(&r, "HTTP/1.1 404 Not Found");
    ck_assert(has_header(&r, CT_JSON));
    ck_assert_ptr_nonnull(strstr(r.body, "not found"));
    reply_free(&r);
}
END_TEST

static const char *const other_methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"};

START_TEST(test_methods)
{
    struct reply r;

    start();
    request(other_methods[_i], "/metrics", NULL, &r);
    assert_status(&r, "HTTP/1.1 405 Method Not Allowed");
    ck_assert(has_header(&r, "Allow: GET, HEAD"));
    reply_free(&r);
}
END_TEST

/* Requests with a body; the method is judged first, so a POST gets 405 whatever it carries. */
static const struct body_case {
    const char *req;
    const char *status;
} body_cases[] = {
    {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
     "HTTP/1.1 405 Method Not Allowed"},
    {"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
     "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "HTTP/1.1 405 Method Not Allowed"},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
     "HTTP/1.1 413 Content Too Large"},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
     "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "HTTP/1.1 413 Content Too Large"},
    {"HEAD /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
     "HTTP/1.1 413 Content Too Large"},
    /* A request hidden in the body must not be served: one response, then the close. */
    {"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 37\r\n\r\n"
     "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
     "HTTP/1.1 413 Content Too Large"},
    /* Announced but never sent: answered at once, without a "100 Continue" first. */
    {"GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n",
     "HTTP/1.1 413 Content Too Large"},
};

START_TEST(test_bodies)
{
    const struct body_case *bc = &body_cases[_i];
    struct reply r;

    start();
    exchange(AF_INET, bc->req, strlen(bc->req), &r);
    assert_status(&r, bc->status);
    ck_assert_ptr_null(strstr(r.raw + 1, "HTTP/1.1"));
    reply_free(&r);
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

/*
 * Framing RFC 9112 requires a server to refuse with 400, and to close the
 * connection after: what follows could be another request hidden in a body.
 */
static const struct framing_case {
    const char *req;
    const char *why;
} framing_cases[] = {
    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n"
     "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
     "more than one Content-Length"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
     "more than one Content-Length"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length : 34\r\n\r\n"
     "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
     "a header field name with whitespace"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad\t: 1\r\n\r\n",
     "a header field name with whitespace"},
    {"GET /health HTTP/1.1\r\n\r\n", "no Host in an HTTP/1.1 request"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "more than one Host"},
};

START_TEST(test_framing)
{
    const struct framing_case *fc = &framing_cases[_i];
    char body[128];
    struct reply r;

    start();
    exchange(AF_INET, fc->req, strlen(fc->req), &r);
    assert_status(&r, "HTTP/1.1 400 Bad Request");
    ck_assert(has_header(&r, CT_JSON));
    ck_assert(has_header(&r, "Connection: close"));
    /* Exactly our body, then the close (read_reply reads to it): nothing hidden was served. */
    snprintf(body, sizeof(body), "{\"error\":\"bad request: %s\"}\n", fc->why);
    ck_assert_uint_eq(r.body_len, strlen(body));
    ck_assert_mem_eq(r.body, body, r.body_len);
    reply_free(&r);
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

/*
 * Requests libmicrohttpd refuses before the daemon sees them: its own
 * responses, documented in crm-consumerd(8) as lacking the daemon's headers.
 * Each is refused and closed, and nothing in it is served.
 */
static const struct library_case {
    const char *req;
    const char *status;
} library_cases[] = {
    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     "HTTP/1.1 413 Content Too Large"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n", "HTTP/1.1 400 Bad Request"},
    {"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
};

START_TEST(test_library_refusals)
{
    const struct library_case *lc = &library_cases[_i];
    struct reply r;

    start();
    exchange(AF_INET, lc->req, strlen(lc->req), &r);
    ck_assert_msg(strcmp(r.status, lc->status) == 0, "want \"%s\", got:\n%s", lc->status, r.raw);
    ck_assert(has_header(&r, "Connection: close"));
    ck_assert_ptr_null(strstr(r.raw, "200 OK"));
    reply_free(&r);
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

START_TEST(test_huge_headers)
{
    size_t cap = 80 * 1024, len;
    char *req = malloc(cap);
    struct reply r;
    int fd;

    ck_assert_ptr_nonnull(req);
    start();
    len = (size_t)snprintf(req, cap, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; len < 64 * 1024; i++)
        len += (size_t)snprintf(req + len, cap - len, "X-Pad-%05d: %0100d\r\n", i, 0);
    len += (size_t)snprintf(req + len, cap - len, "\r\n");

    /* Refused with 431, or the connection cut while we still write: both are fine. */
    fd = dial(AF_INET, port);
    send_all(fd, req, len);
    read_reply(fd, &r);
    close(fd);
    ck_assert_msg(r.len == 0 ||
                      strcmp(r.status, "HTTP/1.1 431 Request Header Fields Too Large") == 0,
                  "64 KiB of headers got:\n%.300s", r.raw);
    reply_free(&r);
    free(req);
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

/* Ordinary requests keep the connection: two pipelined, both served, then the idle close. */
START_TEST(test_keep_alive)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                              "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\n\r\n"
                              "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    struct reply r;
    const char *p;
    int n = 0;

    cfg->http.timeout_s = 1;
    start();
    exchange(AF_INET, req, sizeof(req) - 1, &r);
    for (p = r.raw; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        n++;
    ck_assert_msg(n == 3, "want 3 responses, got:\n%s", r.raw);
    ck_assert_int_eq(strncmp(r.raw, "HTTP/1.1 200 OK\r\n", 17), 0);
    p = strstr(r.raw + 1, "HTTP/1.1 200 OK\r\n");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(strstr(p, CT_METRICS));
    p = strstr(p + 1, "HTTP/1.1 ");
    ck_assert_int_eq(strncmp(p, "HTTP/1.1 413 Content Too Large\r\n", 32), 0);
    reply_free(&r);
}
END_TEST

START_TEST(test_connection_limit)
{
    int idle[20];

    cfg->http.max_connections = 8;
    cfg->http.max_connections_per_ip = 100;
    cfg->http.timeout_s = 1;
    start();
    for (size_t i = 0; i < 20; i++)
        idle[i] = dial(AF_INET, port);
    /* The idle ones time out after 1 s each round, so a scrape gets through. */
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
    for (size_t i = 0; i < 20; i++) {
        ck_assert_int_eq(wait_closed(idle[i], IO_TIMEOUT_MS), 1);
        close(idle[i]);
    }
}
END_TEST

/*
 * At the limit, a new connection displaces the one idle the longest (here
 * the first, which never sent a byte) and is served at once; the others stay.
 */
START_TEST(test_connection_limit_enforced)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct pollfd p[7];
    struct reply r;
    int idle[8], fd;

    cfg->http.max_connections = 8;
    cfg->http.max_connections_per_ip = 100;
    cfg->http.timeout_s = 30; /* so that only the limit closes anything here */
    start();
    /* Accepted in the order they connect, from the listen queue: each is older than the next. */
    for (size_t i = 0; i < 8; i++)
        idle[i] = dial(AF_INET, port);
    fd = dial(AF_INET, port);
    ck_assert(send_all(fd, req, sizeof(req) - 1));
    read_reply(fd, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    reply_free(&r);
    close(fd);
    ck_assert_int_eq(wait_closed(idle[0], IO_TIMEOUT_MS), 1);
    for (size_t i = 1; i < 8; i++)
        p[i - 1] = (struct pollfd){.fd = idle[i], .events = POLLIN};
    ck_assert_int_eq(poll(p, 7, 200), 0);
    for (size_t i = 0; i < 8; i++)
        close(idle[i]);
}
END_TEST

START_TEST(test_idle_timeout)
{
    enum { N = 50 };
    static const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    int fds[N];
    int64_t started, deadline;

    cfg->http.max_connections = 64;
    cfg->http.max_connections_per_ip = 64;
    cfg->http.timeout_s = 1;
    start();
    started = now_ms();
    /* Half say nothing, half stop in the middle of their headers. */
    for (size_t i = 0; i < N; i++) {
        fds[i] = dial(AF_INET, port);
        if (i % 2)
            ck_assert(send_all(fds[i], partial, sizeof(partial) - 1));
    }
    deadline = started + (cfg->http.timeout_s + 2) * 1000;
    for (size_t i = 0; i < N; i++) {
        int64_t left = deadline - now_ms();

        ck_assert_msg(wait_closed(fds[i], left > 0 ? (int)left : 0) == 1,
                      "connection %zu still open after %d s", i, cfg->http.timeout_s + 2);
        close(fds[i]);
    }
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

/*
 * A client that sends a header line now and then, never ending its headers,
 * is closed once http.timeout_s has passed since it connected, although no
 * single silence lasts that long.
 */
START_TEST(test_header_deadline)
{
    static const char start_line[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    int64_t started, closed_at = -1;
    int fd;

    cfg->http.timeout_s = 1;
    start();
    fd = dial(AF_INET, port);
    started = now_ms();
    ck_assert(send_all(fd, start_line, sizeof(start_line) - 1));
    for (int i = 0; now_ms() - started < 4000; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "X-Trickle-%d: 1\r\n", i);

        if (wait_closed(fd, 300) == 1 || !send_all(fd, line, (size_t)n)) {
            closed_at = now_ms();
            break;
        }
    }
    close(fd);
    ck_assert_msg(closed_at >= 0, "a trickling client still connected after 4 s");
    /* The deadline, plus the server's sweep (a quarter of a second) and slack for slow builds. */
    ck_assert_msg(closed_at - started < 1000 + 1500, "closed after %lld ms",
                  (long long)(closed_at - started));
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

/* The slowloris of the test below: many addresses, each trickling header lines. */
#define TRICKLE_ADDRS        80
#define TRICKLE_PER_ADDR     2
#define TRICKLE_LINE_MS      1000
#define TRICKLE_RECONNECT_MS 250
#define TRICKLE_MAX_CONNECTS 5000
#define TRICKLE_SLOTS        (TRICKLE_ADDRS * TRICKLE_PER_ADDR)

struct trickle {
    pthread_t thread;
    atomic_bool stop;
    atomic_uint connects; /* connections made, all slots together */
    atomic_uint closed;   /* of which the server closed */
    int port;
};

/* A non-blocking connection to the server from 127.0.1.(n + 1); -1 on failure. */
static int trickle_dial(int n, int p)
{
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    from.sin_addr.s_addr = htonl(0x7f000101u + (uint32_t)n);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)p);
    if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Keep every slot connected and trickling, reconnecting what the server closes, until stopped. */
static void *trickle_run(void *arg)
{
    static const char start_line[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    struct trickle *t = arg;
    struct {
        int fd;
        bool connected;
        int64_t next_ms; /* the next line, or the next connection attempt */
        unsigned lines;
    } slot[TRICKLE_SLOTS];
    struct pollfd pfd[TRICKLE_SLOTS];

    for (int i = 0; i < TRICKLE_SLOTS; i++)
        slot[i].fd = -1, slot[i].next_ms = 0;
    while (!atomic_load(&t->stop)) {
        int64_t now = now_ms();

        for (int i = 0; i < TRICKLE_SLOTS; i++) {
            char line[48];
            int n;

            if (slot[i].fd < 0 && now >= slot[i].next_ms &&
                atomic_load(&t->connects) < TRICKLE_MAX_CONNECTS) {
                slot[i].fd = trickle_dial(i % TRICKLE_ADDRS, t->port);
                slot[i].connected = false;
                slot[i].lines = 0;
                slot[i].next_ms = now + TRICKLE_RECONNECT_MS;
                if (slot[i].fd >= 0)
                    atomic_fetch_add(&t->connects, 1);
            } else if (slot[i].fd >= 0 && slot[i].connected && now >= slot[i].next_ms) {
                n = snprintf(line, sizeof(line), "X-Trickle-%u: 1\r\n", slot[i].lines++);
                if (send(slot[i].fd, line, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
                    close(slot[i].fd);
                    slot[i].fd = -1;
                    atomic_fetch_add(&t->closed, 1);
                }
                slot[i].next_ms = now + TRICKLE_LINE_MS;
            }
            pfd[i] =
                (struct pollfd){.fd = slot[i].fd, .events = slot[i].connected ? POLLIN : POLLOUT};
        }
        if (poll(pfd, TRICKLE_SLOTS, 20) <= 0)
            continue;
        for (int i = 0; i < TRICKLE_SLOTS; i++) {
            char buf[512];
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            bool gone = false;

            if (slot[i].fd < 0 || !pfd[i].revents)
                continue;
            if (!slot[i].connected) {
                getsockopt(slot[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
                gone = soerr != 0 ||
                       send(slot[i].fd, start_line, sizeof(start_line) - 1, MSG_NOSIGNAL) < 0;
                slot[i].connected = !gone;
                slot[i].next_ms = now_ms() + TRICKLE_LINE_MS;
            } else {
                ssize_t r = recv(slot[i].fd, buf, sizeof(buf), 0);

                gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (gone) {
                close(slot[i].fd);
                slot[i].fd = -1;
                slot[i].next_ms = now_ms() + TRICKLE_RECONNECT_MS;
                atomic_fetch_add(&t->closed, 1);
            }
        }
    }
    for (int i = 0; i < TRICKLE_SLOTS; i++)
        if (slot[i].fd >= 0)
            close(slot[i].fd);
    return NULL;
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * While 80 addresses keep twice as many connections trickling header lines
 * (more than http.max_connections and its room together), probes from
 * another address are each answered within a second: the bound supervisors
 * restart a daemon by. The figures are printed for the record.
 */
START_TEST(test_trickle_probes)
{
    enum { PROBES = 30 };
    static const char *const paths[] = {"/metrics", "/health", "/ready"};
    struct trickle t = {.port = 0};
    int64_t took[PROBES], waited;

    start(); /* the defaults: 64 connections, 16 per address, a 10 s timeout */
    t.port = port;
    ck_assert_int_eq(pthread_create(&t.thread, NULL, trickle_run, &t), 0);
    /* Every slot connected once: the server is past its limit before the first probe. */
    for (waited = 0; atomic_load(&t.connects) < TRICKLE_SLOTS && waited < IO_TIMEOUT_MS;
         waited += 50)
        usleep(50 * 1000);
    usleep(500 * 1000);
    for (int i = 0; i < PROBES; i++) {
        struct reply r;
        int64_t t0 = now_ms();

        request("GET", paths[i % 3], NULL, &r);
        took[i] = now_ms() - t0;
        ck_assert_msg(strncmp(r.status, "HTTP/1.1 200 ", 13) == 0 ||
                          strncmp(r.status, "HTTP/1.1 503 ", 13) == 0,
                      "probe %d got:\n%s", i, r.raw);
        reply_free(&r);
        usleep(100 * 1000);
    }
    atomic_store(&t.stop, true);
    pthread_join(t.thread, NULL);
    qsort(took, PROBES, sizeof(took[0]), cmp_ms);
    printf("# trickle: %d addresses, %u connections made, %u closed by the server; %d probes "
           "answered in %lld ms (median), %lld ms (slowest)\n",
           TRICKLE_ADDRS, atomic_load(&t.connects), atomic_load(&t.closed), PROBES,
           (long long)took[PROBES / 2], (long long)took[PROBES - 1]);
    fflush(stdout);
    ck_assert_uint_ge(atomic_load(&t.connects), TRICKLE_SLOTS);
    ck_assert_msg(took[PROBES - 1] < 1000, "slowest probe %lld ms", (long long)took[PROBES - 1]);
}
END_TEST

START_TEST(test_per_ip_limit)
{
    struct pollfd p[2];
    int a, b, c;

    cfg->http.max_connections = 64;
    cfg->http.max_connections_per_ip = 2;
    cfg->http.timeout_s = 30; /* so that only the limit can close anything here */
    start();
    a = dial(AF_INET, port);
    b = dial(AF_INET, port);
    c = dial(AF_INET, port);
    ck_assert_int_eq(wait_closed(c, 5000), 1);
    close(c);
    /* The first two are still held open. */
    p[0] = (struct pollfd){.fd = a, .events = POLLIN};
    p[1] = (struct pollfd){.fd = b, .events = POLLIN};
    ck_assert_int_eq(poll(p, 2, 200), 0);
    close(a);
    close(b);
    ck_assert(metrics_answers_within(IO_TIMEOUT_MS));
}
END_TEST

START_TEST(test_port_in_use)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    char err[512], want[128];
    struct http *second;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);

    snprintf(want, sizeof(want), "127.0.0.1:%d", ntohs(sa.sin_port));
    set_str(&cfg->http.listen, want);
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    snprintf(want, sizeof(want), "http.listen 127.0.0.1:%d: Address already in use",
             ntohs(sa.sin_port));
    ck_assert_str_eq(err, want);
    close(fd);

    /* A second server on our own port, too. */
    set_str(&cfg->http.listen, "127.0.0.1:0");
    start();
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    set_str(&cfg->http.listen, want);
    second = try_start(err, sizeof(err));
    ck_assert_ptr_null(second);
    ck_assert_ptr_nonnull(strstr(err, "Address already in use"));
}
END_TEST

static const struct listen_case {
    const char *listen;
    const char *err;
} listen_cases[] = {
    {"127.0.0.1", "http.listen 127.0.0.1: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {":9464", "http.listen :9464: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"127.0.0.1:", "http.listen 127.0.0.1:: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"127.0.0.1:65536", "http.listen 127.0.0.1:65536: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"127.0.0.1:http", "http.listen 127.0.0.1:http: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"127.0.0.1:-1", "http.listen 127.0.0.1:-1: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"::1:9464", "http.listen ::1:9464: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"[::1]9464", "http.listen [::1]9464: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"[]:9464", "http.listen []:9464: must be \"HOST:PORT\" or \"[IPV6]:PORT\""},
    {"[127.0.0.1]:0", "http.listen [127.0.0.1]:0: "},
    /* TEST-NET-1 is nobody's address here: the bind error comes back as it is. */
    {"192.0.2.1:0", "http.listen 192.0.2.1:0: Cannot assign requested address"},
};

START_TEST(test_bad_listen)
{
    const struct listen_case *lc = &listen_cases[_i];
    char err[512];

    set_str(&cfg->http.listen, lc->listen);
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_msg(strncmp(err, lc->err, strlen(lc->err)) == 0, "want \"%s\", got \"%s\"", lc->err,
                  err);
}
END_TEST

START_TEST(test_localhost)
{
    set_str(&cfg->http.listen, "localhost:0");
    start();
}
END_TEST

START_TEST(test_ipv6)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    struct reply r;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

    if (fd >= 0)
        close(fd);
    if (!have_v6) {
        printf("check_http: no IPv6 loopback here, [::1] test skipped\n");
        return;
    }
    set_str(&cfg->http.listen, "[::1]:0");
    start();
    exchange(AF_INET6, req, sizeof(req) - 1, &r);
    assert_status(&r, "HTTP/1.1 200 OK");
    reply_free(&r);
}
END_TEST

static char *base64(const char *in)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in);
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;

    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)in[i + 2];
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Configure basic auth with a yescrypt hash made from a fixed salt, at the cheapest cost. */
static void enable_auth(void)
{
    static const char rbytes[] = "0123456789abcdef";
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    const char *hash;

    ck_assert_ptr_nonnull(cd);
    ck_assert_ptr_nonnull(crypt_gensalt_rn("$y$", 1, rbytes, 16, salt, sizeof(salt)));
    hash = crypt_r(AUTH_PASS, salt, cd);
    ck_assert_ptr_nonnull(hash);
    ck_assert_int_eq(hash[0], '$');
    set_str(&cfg->http.basic_auth_user, AUTH_USER);
    set_str(&cfg->http.basic_auth_password_hash, hash);
    free(cd);
}

static const struct auth_case {
    const char *credentials; /* "user:password" to encode, or NULL for a raw header */
    const char *raw;         /* the whole Authorization value when credentials is NULL */
    const char *path;
    const char *status;
} auth_cases[] = {
    {NULL, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {AUTH_USER ":" AUTH_PASS, NULL, "/metrics", "HTTP/1.1 200 OK"},
    {AUTH_USER ":" AUTH_PASS, NULL, "/health", "HTTP/1.1 200 OK"},
    {AUTH_USER ":" AUTH_PASS, NULL, "/nope", "HTTP/1.1 404 Not Found"},
    {NULL, NULL, "/nope", "HTTP/1.1 401 Unauthorized"},
    {AUTH_USER ":wrong", NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {AUTH_USER ":", NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {AUTH_USER, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {"prometheuz:" AUTH_PASS, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {"Prometheus:" AUTH_PASS, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {"prometheus2:" AUTH_PASS, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {":" AUTH_PASS, NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {AUTH_USER ":" AUTH_PASS "x", NULL, "/metrics", "HTTP/1.1 401 Unauthorized"},
    {NULL, "Basic !!!!", "/metrics", "HTTP/1.1 401 Unauthorized"},
    {NULL, "Basic", "/metrics", "HTTP/1.1 401 Unauthorized"},
    {NULL, "Bearer abc", "/metrics", "HTTP/1.1 401 Unauthorized"},
};

START_TEST(test_basic_auth)
{
    const struct auth_case *ac = &auth_cases[_i];
    char header[1024] = "";
    struct reply r;

    enable_auth();
    start();
    if (ac->credentials) {
        char *b64 = base64(ac->credentials);

        snprintf(header, sizeof(header), "Authorization: Basic %s\r\n", b64);
        free(b64);
    } else if (ac->raw) {
        snprintf(header, sizeof(header), "Authorization: %s\r\n", ac->raw);
    }
    request("GET", ac->path, header, &r);
    assert_status(&r, ac->status);
    if (strstr(ac->status, " 401 "))
        ck_assert(has_header(&r, CHALLENGE));
    /* Nothing secret comes back. */
    ck_assert_ptr_null(strstr(r.raw, cfg->http.basic_auth_password_hash));
    ck_assert_ptr_null(strstr(r.raw, AUTH_PASS));
    reply_free(&r);
}
END_TEST

START_TEST(test_basic_auth_long_user)
{
    char creds[600], header[1024];
    char *b64;
    struct reply r;

    enable_auth();
    start();
    memset(creds, 'p', 300);
    snprintf(creds + 300, sizeof(creds) - 300, ":%s", AUTH_PASS);
    b64 = base64(creds);
    snprintf(header, sizeof(header), "Authorization: Basic %s\r\n", b64);
    free(b64);
    request("GET", "/metrics", header, &r);
    assert_status(&r, "HTTP/1.1 401 Unauthorized");
    reply_free(&r);
}
END_TEST

START_TEST(test_basic_auth_bad_config)
{
    static const char *const bad_hashes[] = {
        "plaintext-password",
        "abJnggxhB/yWI",
        "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7$trailing",
        "$y$j9T$",
    };
    char err[512];

    set_str(&cfg->http.basic_auth_user, AUTH_USER);
    /* A password pasted in place of its hash; then DES, MD5, and a yescrypt hash with a tail. */
    for (size_t i = 0; i < sizeof(bad_hashes) / sizeof(bad_hashes[0]); i++) {
        set_str(&cfg->http.basic_auth_password_hash, bad_hashes[i]);
        ck_assert_ptr_null(try_start(err, sizeof(err)));
        ck_assert_msg(strncmp(err, "http.basic_auth_password_hash: not a crypt(3) hash", 50) == 0,
                      "got \"%s\"", err);
        ck_assert_ptr_null(strstr(err, bad_hashes[i]));
    }

    set_str(&cfg->http.basic_auth_password_hash, "");
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_str_eq(err, "http.basic_auth_password_hash: required with http.basic_auth_user");
}
END_TEST

/*
 * A temporary directory for PEM files, made and removed by the parent
 * process around the TLS tests: a failed test ends its forked child before
 * any per-test teardown could clean up.
 */
static char tmpdir[64];
static const char *const tmp_names[] = {"cert.pem", "key.pem", "junk.pem"};

static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_http.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_remove(void)
{
    char path[128];

    for (size_t i = 0; i < sizeof(tmp_names) / sizeof(tmp_names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, tmp_names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

static char *path_in_tmp(const char *name)
{
    char *p = NULL;

    ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
    return p;
}

/* Run a shell command and return all of its standard output. */
static char *capture(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    char *out = NULL;
    size_t len = 0, cap = 0;
    int c;

    ck_assert_ptr_nonnull(f);
    while ((c = fgetc(f)) != EOF) {
        if (len + 1 >= cap) {
            cap = cap ? cap * 2 : 4096;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        out[len++] = (char)c;
    }
    pclose(f);
    if (!out)
        out = strdup("");
    else
        out[len] = '\0';
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(test_tls)
{
    char cmd[1024], *cert, *key, *out, *want;
    size_t len;
    struct reply r;

    if (access("/usr/bin/openssl", X_OK) != 0) {
        printf("check_http: no /usr/bin/openssl, TLS test skipped\n");
        return;
    }
    cert = path_in_tmp("cert.pem");
    key = path_in_tmp("key.pem");
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    ck_assert_int_eq(system(cmd), 0);
    set_str(&cfg->http.tls_cert_file, cert);
    set_str(&cfg->http.tls_key_file, key);
    start();

    if (access("/usr/bin/curl", X_OK) == 0)
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/curl -sS -k -i --max-time 30 https://127.0.0.1:%d/metrics 2>&1", port);
    else
        snprintf(cmd, sizeof(cmd),
                 "printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' "
                 "| timeout 30 /usr/bin/openssl s_client -quiet -connect 127.0.0.1:%d 2>/dev/null",
                 port);
    out = capture(cmd);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "over TLS got:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\r\n" NOSNIFF "\r\n"));
    want = rendered(&len);
    ck_assert_ptr_nonnull(strstr(out, want));
    free(want);
    free(out);

    /* Plain HTTP on the TLS port is not served. */
    request("GET", "/metrics", NULL, &r);
    ck_assert_ptr_null(strstr(r.raw, "200 OK"));
    reply_free(&r);

    free(cert);
    free(key);
}
END_TEST

START_TEST(test_tls_errors)
{
    char err[512], *junk;
    FILE *f;

    set_str(&cfg->http.tls_cert_file, "/nonexistent/cert.pem");
    set_str(&cfg->http.tls_key_file, "/nonexistent/key.pem");
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_str_eq(err, "http.tls_cert_file: /nonexistent/cert.pem: No such file or directory");

    set_str(&cfg->http.tls_cert_file, "/");
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_str_eq(err, "http.tls_cert_file: /: not a regular file");

    set_str(&cfg->http.tls_key_file, "");
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_str_eq(err, "http.tls_key_file: required with http.tls_cert_file");

    junk = path_in_tmp("junk.pem");
    f = fopen(junk, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not PEM\n", f);
    fclose(f);
    set_str(&cfg->http.tls_cert_file, junk);
    set_str(&cfg->http.tls_key_file, "/nonexistent/key.pem");
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_str_eq(err, "http.tls_key_file: /nonexistent/key.pem: No such file or directory");

    set_str(&cfg->http.tls_key_file, junk);
    ck_assert_ptr_null(try_start(err, sizeof(err)));
    ck_assert_msg(strstr(err, "cannot start HTTPS") && strstr(err, junk), "got \"%s\"", err);
    free(junk);
}
END_TEST

START_TEST(test_stop_null)
{
    ck_assert_ptr_null(http_stop(NULL));
}
END_TEST

#define NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *routes = tcase_create("routes");
    TCase *limits = tcase_create("limits");
    TCase *listen_tc = tcase_create("listen");
    TCase *auth = tcase_create("auth");
    TCase *tls = tcase_create("tls");

    tcase_add_checked_fixture(routes, setup, teardown);
    tcase_set_timeout(routes, 60);
    tcase_add_test(routes, test_metrics_get);
    tcase_add_test(routes, test_metrics_head);
    tcase_add_loop_test(routes, test_probes, 0, NELEMS(probe_cases));
    tcase_add_loop_test(routes, test_not_found, 0, NELEMS(missing_paths));
    tcase_add_loop_test(routes, test_methods, 0, NELEMS(other_methods));
    tcase_add_loop_test(routes, test_bodies, 0, NELEMS(body_cases));
    tcase_add_loop_test(routes, test_framing, 0, NELEMS(framing_cases));
    tcase_add_loop_test(routes, test_library_refusals, 0, NELEMS(library_cases));
    tcase_add_test(routes, test_stop_null);
    suite_add_tcase(s, routes);

    tcase_add_checked_fixture(limits, setup, teardown);
    tcase_set_timeout(limits, 60);
    tcase_add_test(limits, test_huge_headers);
    tcase_add_test(limits, test_keep_alive);
    tcase_add_test(limits, test_connection_limit);
    tcase_add_test(limits, test_connection_limit_enforced);
    tcase_add_test(limits, test_idle_timeout);
    tcase_add_test(limits, test_per_ip_limit);
    tcase_add_test(limits, test_header_deadline);
    tcase_add_test(limits, test_trickle_probes);
    suite_add_tcase(s, limits);

    tcase_add_checked_fixture(listen_tc, setup, teardown);
    tcase_set_timeout(listen_tc, 60);
    tcase_add_test(listen_tc, test_port_in_use);
    tcase_add_loop_test(listen_tc, test_bad_listen, 0, NELEMS(listen_cases));
    tcase_add_test(listen_tc, test_localhost);
    tcase_add_test(listen_tc, test_ipv6);
    suite_add_tcase(s, listen_tc);

    tcase_add_checked_fixture(auth, setup, teardown);
    tcase_set_timeout(auth, 60);
    tcase_add_loop_test(auth, test_basic_auth, 0, NELEMS(auth_cases));
    tcase_add_test(auth, test_basic_auth_long_user);
    tcase_add_test(auth, test_basic_auth_bad_config);
    suite_add_tcase(s, auth);

    tcase_add_unchecked_fixture(tls, tmpdir_make, tmpdir_remove);
    tcase_add_checked_fixture(tls, setup, teardown);
    tcase_set_timeout(tls, 60);
    tcase_add_test(tls, test_tls);
    tcase_add_test(tls, test_tls_errors);
    suite_add_tcase(s, tls);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
