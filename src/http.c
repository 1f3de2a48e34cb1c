/* SPDX-License-Identifier: MIT */
/* http.c -- /metrics, /health and /ready over libmicrohttpd, on its own thread. */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"

/*
 * Per-connection memory: a normal request's headers fit with room to spare,
 * while a flood of headers is refused by libmicrohttpd before it reaches us.
 */
#define CONNECTION_MEMORY (32 * 1024)

/*
 * Connections waiting to be accepted: enough for a burst of scrapes, no
 * more. Given to our own listen(); MHD_OPTION_LISTEN_BACKLOG_SIZE would
 * only apply to a socket libmicrohttpd opened itself.
 */
#define LISTEN_BACKLOG 64

/* What a probe may write, NUL included. */
#define PROBE_BODY_MAX 4096

/* PEM files are a few KiB; anything near this is not a certificate or a key. */
#define PEM_MAX (1024 * 1024)

/* Longer than any configured user (config caps it at 255), so one fixed-length comparison. */
#define USER_MAX 256

/*
 * Room above http.max_connections in libmicrohttpd's own limit: a
 * connection accepted past ours displaces one (see on_connection()), and
 * libmicrohttpd accepts up to ten in a turn before it closes those
 * displaced; at its own limit it would stop accepting.
 */
#define EVICTION_ROOM 16

/* The longest the server thread sleeps while connections wait for their headers' deadline. */
#define SWEEP_MS 250

/* TLS 1.2 and 1.3 only: scrapers have spoken TLS 1.2 for a decade. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#define REALM_HEADER "Basic realm=\"crm-consumerd\""

/*
 * One open connection. A connection is idle from its start, and from the
 * end of each response, until its next request's headers are complete.
 */
struct conn {
    struct conn *prev, *next; /* in struct http's list, the longest idle first */
    int fd;
    int64_t idle_since_ms; /* monotonic; meaningless while busy */
    bool busy;             /* a request's headers are in, and it is being answered */
    bool doomed;           /* shut down by us: libmicrohttpd closes it at its next turn */
};

struct http {
    struct MHD_Daemon *daemon;
    struct http_routes routes;
    int port;
    /*
     * The server thread: it alone runs libmicrohttpd and the callbacks
     * below, so the connection list needs no lock. http_stop() wakes it
     * with wake_fd.
     */
    pthread_t thread;
    bool thread_started;
    int wake_fd;
    int epoll_fd; /* libmicrohttpd's */
    struct conn *head, *tail;
    size_t live;       /* connections open and not doomed */
    size_t max_live;   /* http.max_connections */
    int64_t header_ms; /* http.timeout_s: how long a connection may stay idle in all */
    char *cert_pem;
    char *key_pem;
    size_t key_len;
    bool auth;
    char user[USER_MAX]; /* zero-padded, so comparing it always reads USER_MAX bytes */
    size_t user_len;
    char *hash;
    /*
     * crypt_r's scratch space, ~32 KiB, so not on the stack. One is enough:
     * every request is handled on the server thread, one at a time.
     */
    struct crypt_data *crypt;
};

/* libmicrohttpd must print nothing; its error log is off, and this catches the rest. */
static void discard_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
}

/* A decimal port, 0 to 65535 (0: let the kernel choose, for tests). */
static bool parse_port(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);
    unsigned long v = 0;

    if (n == 0 || n > 5 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    memcpy(out, s, n + 1);
    return true;
}

/*
 * "HOST:PORT" or "[IPV6]:PORT" to a socket address. Numeric hosts are taken
 * as they are; a name (e.g. "localhost") is resolved and its first address
 * used.
 */
static int resolve_listen(const char *listen_on, struct sockaddr_storage *ss, socklen_t *sslen,
                          char *err, size_t errlen)
{
    char host[256], port[6];
    const char *colon;
    size_t hlen;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc;

    if (listen_on[0] == '[') {
        const char *close = strchr(listen_on, ']');

        if (!close || close[1] != ':')
            goto malformed;
        hlen = (size_t)(close - listen_on - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto malformed;
        memcpy(host, listen_on + 1, hlen);
        colon = close + 1;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        colon = strrchr(listen_on, ':');
        if (!colon || colon == listen_on)
            goto malformed;
        hlen = (size_t)(colon - listen_on);
        /* A bare IPv6 address would be ambiguous with the port: it needs brackets. */
        if (hlen >= sizeof(host) || memchr(listen_on, ':', hlen))
            goto malformed;
        memcpy(host, listen_on, hlen);
        hints.ai_family = AF_UNSPEC;
    }
    host[hlen] = '\0';
    if (!parse_port(colon + 1, port, sizeof(port)))
        goto malformed;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "http.listen %s: %s", listen_on,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return rc == EAI_MEMORY ? -ENOMEM : -EINVAL;
    }
    if (res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        goto malformed;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;

malformed:
    snprintf(err, errlen, "http.listen %s: must be \"HOST:PORT\" or \"[IPV6]:PORT\"", listen_on);
    return -EINVAL;
}

/*
 * Our own listening socket rather than libmicrohttpd's: a bind failure then
 * comes back with its exact errno ("Address already in use") instead of a
 * bare NULL, and the socket is close-on-exec. Returns the socket and sets
 * *port, or -1 with a reason in err.
 */
static int open_listener(const char *listen_on, bool *ipv6, int *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int fd, one = 1;

    if (resolve_listen(listen_on, &ss, &sslen, err, errlen) < 0)
        return -1;
    *ipv6 = ss.ss_family == AF_INET6;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "http.listen %s: %s", listen_on, strerror(errno));
        return -1;
    }
    /* A restart must not wait out TIME_WAIT connections from the last scrape. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "http.listen %s: %s", listen_on, strerror(errno));
        close(fd);
        return -1;
    }
    sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "http.listen %s: %s", listen_on, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A whole PEM file, NUL-terminated, for MHD_OPTION_HTTPS_MEM_*; NULL with a reason in err. */
static char *read_pem(const char *setting, const char *path, size_t *lenp, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        snprintf(err, errlen, "%s: %s: not a regular file", setting, path);
        goto out;
    }
    if (st.st_size > PEM_MAX) {
        snprintf(err, errlen, "%s: %s: larger than %d bytes", setting, path, PEM_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto fail;
    /* Read what fstat promised; a file that shrank meanwhile just reads short. */
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    if (lenp)
        *lenp = len;
    return buf;

fail:
    snprintf(err, errlen, "%s: %s: %s", setting, path, strerror(errno));
out:
    if (buf) {
        explicit_bzero(buf, len);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_unlink(struct http *h, struct conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        h->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        h->tail = k->prev;
    k->prev = k->next = NULL;
}

static void conn_append(struct http *h, struct conn *k)
{
    k->prev = h->tail;
    k->next = NULL;
    if (h->tail)
        h->tail->next = k;
    else
        h->head = k;
    h->tail = k;
}

/*
 * Close a connection from outside libmicrohttpd: shutdown() wakes its
 * epoll, its next read finds the end, and it closes the connection and
 * calls on_connection(). The descriptor stays libmicrohttpd's to close.
 */
static void conn_doom(struct http *h, struct conn *k)
{
    shutdown(k->fd, SHUT_RDWR);
    k->doomed = true;
    h->live--;
}

/* The connection's record, or NULL for one that could not be tracked. */
static struct conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

/*
 * Past http.max_connections, a new connection displaces the one idle the
 * longest (waiting for a request's headers, be it a slow client or a
 * trickling one), so that a slowloris cannot keep a probe out; if every
 * other connection is being answered, the new one is closed instead.
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http *h = cls;
    struct conn *k = *socket_context, *victim = NULL;
    const union MHD_ConnectionInfo *ci;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (k) {
            conn_unlink(h, k);
            if (!k->doomed)
                h->live--;
            free(k);
            *socket_context = NULL;
        }
        return;
    }
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    k = calloc(1, sizeof(*k));
    if (!k) {
        /* Untracked, it would escape the limits: refuse it. */
        shutdown(ci->connect_fd, SHUT_RDWR);
        return;
    }
    k->fd = ci->connect_fd;
    k->idle_since_ms = now_ms();
    conn_append(h, k);
    *socket_context = k;
    h->live++;
    if (h->live <= h->max_live)
        return;
    for (struct conn *o = h->head; o && o != k && !victim; o = o->next)
        if (!o->busy && !o->doomed)
            victim = o;
    conn_doom(h, victim ? victim : k);
}

/* A response is done: the connection is idle again, and now the youngest. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct conn *k = conn_of(c);

    (void)req_cls;
    (void)toe;
    if (!k || !k->busy)
        return;
    k->busy = false;
    k->idle_since_ms = now_ms();
    conn_unlink(h, k);
    conn_append(h, k);
}

/*
 * Close every connection idle for http.timeout_s in all: libmicrohttpd's
 * own timeout restarts at each byte, so a client sending a header line now
 * and then would hold its connection for ever. Returns the milliseconds
 * until the next such deadline, or -1 if there is none.
 */
static int sweep(struct http *h)
{
    int64_t now = now_ms(), next = -1;

    for (struct conn *k = h->head; k; k = k->next) {
        int64_t left;

        if (k->busy || k->doomed)
            continue;
        left = k->idle_since_ms + h->header_ms - now;
        if (left <= 0)
            conn_doom(h, k);
        else if (next < 0 || left < next)
            next = left;
    }
    return next < 0 ? -1 : (int)next;
}

/* The server thread: libmicrohttpd's turns, each followed by a sweep, until http_stop(). */
static void *serve(void *arg)
{
    struct http *h = arg;
    struct pollfd fds[2] = {{.fd = h->epoll_fd, .events = POLLIN},
                            {.fd = h->wake_fd, .events = POLLIN}};
    int wait_ms = -1;

    for (;;) {
        MHD_UNSIGNED_LONG_LONG mhd_ms;

        if (MHD_get_timeout(h->daemon, &mhd_ms) == MHD_YES &&
            (wait_ms < 0 || mhd_ms < (MHD_UNSIGNED_LONG_LONG)wait_ms))
            wait_ms = mhd_ms > INT_MAX ? INT_MAX : (int)mhd_ms;
        if (wait_ms > SWEEP_MS || (wait_ms < 0 && h->head))
            wait_ms = SWEEP_MS;
        if (poll(fds, 2, wait_ms) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        MHD_run(h->daemon);
        wait_ms = sweep(h);
    }
    return NULL;
}

/* Equal, in time that depends on neither string's contents. */
static bool same_user(const struct http *h, const char *given)
{
    char padded[USER_MAX] = {0};
    size_t len = strlen(given);
    volatile unsigned char diff = len != h->user_len;

    memcpy(padded, given, len < USER_MAX ? len : USER_MAX);
    for (size_t i = 0; i < USER_MAX; i++)
        diff |= (unsigned char)(padded[i] ^ h->user[i]);
    return diff == 0;
}

/* crypt(3) output against the configured hash, in time independent of where they differ. */
static bool same_hash(const char *out, const char *hash)
{
    size_t olen = strlen(out), hlen = strlen(hash);
    volatile unsigned char diff = olen != hlen;

    for (size_t i = 0; i < hlen; i++)
        diff |= (unsigned char)((i < olen ? out[i] : 0) ^ hash[i]);
    return diff == 0;
}

/*
 * The request's Basic credentials against the configured user and hash.
 * When credentials are present the hash is always computed, for a wrong
 * user too, so that the time taken does not tell which users exist.
 */
static bool authorized(struct http *h, struct MHD_Connection *c)
{
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    const char *out;
    bool ok;

    if (!user) {
        /* No credentials: nothing to enumerate, so no hashing to spend CPU on. */
        if (pass) {
            explicit_bzero(pass, strlen(pass));
            MHD_free(pass);
        }
        return false;
    }
    ok = same_user(h, user);
    out = crypt_r(pass ? pass : "", h->hash, h->crypt);
    /* On failure crypt_r gives NULL or a "*0"-style token; neither can match a real hash. */
    ok = same_hash(out ? out : "*", h->hash) && ok;
    explicit_bzero(h->crypt, sizeof(*h->crypt));
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        MHD_free(pass);
    }
    MHD_free(user);
    return ok;
}

/* Queue a response with the headers every response carries; the response is then released. */
static enum MHD_Result send_response(struct MHD_Connection *c, unsigned int status,
                                     struct MHD_Response *r, const char *content_type)
{
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A short fixed JSON body; extra is one more header (name, value) or NULL. */
static enum MHD_Result send_static(struct MHD_Connection *c, unsigned int status, const char *body,
                                   const char *extra_name, const char *extra_value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_PERSISTENT);

    if (r && extra_name && MHD_add_response_header(r, extra_name, extra_value) != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return send_response(c, status, r, "application/json");
}

static enum MHD_Result send_metrics(struct MHD_Connection *c, struct metrics *m)
{
    char *buf = NULL;
    size_t len = 0;
    struct MHD_Response *r;

    if (metrics_render(m, &buf, &len) < 0)
        return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "{\"error\":\"cannot render metrics\"}\n", NULL, NULL);
    r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(buf);
        return MHD_NO;
    }
    return send_response(c, MHD_HTTP_OK, r, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result send_probe(struct MHD_Connection *c, http_probe_fn probe, void *opaque)
{
    char body[PROBE_BODY_MAX] = "";
    bool ok = probe(opaque, body, sizeof(body));
    size_t len;

    /* The probe promised a NUL; do not trust a promise with the stack. */
    body[sizeof(body) - 1] = '\0';
    len = strlen(body);
    if (len == 0) {
        memcpy(body, "{}", 3);
        len = 2;
    }
    return send_response(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                         MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY),
                         "application/json");
}

/* What the header fields of a request hold, for the checks of RFC 9112 the library leaves out. */
struct fields {
    unsigned hosts;           /* Host fields */
    unsigned content_lengths; /* Content-Length fields */
    bool bad_name;            /* a field name with a space or a tab, or none at all */
};

static enum MHD_Result count_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct fields *f = cls;

    (void)kind;
    (void)value;
    if (!key || key[0] == '\0' || key[strcspn(key, " \t")] != '\0')
        f->bad_name = true;
    else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        f->hosts++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->content_lengths++;
    return MHD_YES;
}

/*
 * Why the request's framing is invalid under RFC 9112, or NULL. libmicrohttpd
 * 0.9.75 reads the first of several Content-Length fields and takes a name
 * ending in a space ("Content-Length : 5") as another field, so either would
 * let a request hide in another's body; its strict mode checks Host, but
 * answers a missing one with a malformed 400, and the space before a colon
 * only when set to be tolerant. So these are checked here.
 */
static const char *framing_error(struct MHD_Connection *c, const char *version)
{
    struct fields f = {0};

    MHD_get_connection_values(c, MHD_HEADER_KIND, count_field, &f);
    if (f.bad_name)
        return "a header field name with whitespace";
    if (f.content_lengths > 1)
        return "more than one Content-Length";
    if (f.hosts > 1)
        return "more than one Host";
    if (f.hosts == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
        return "no Host in an HTTP/1.1 request";
    return NULL;
}

/* 400 for a request whose framing cannot be trusted; the connection is closed after it. */
static enum MHD_Result send_bad_request(struct MHD_Connection *c, const char *why)
{
    char body[128];
    struct MHD_Response *r;
    int n = snprintf(body, sizeof(body), "{\"error\":\"bad request: %s\"}\n", why);

    r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return send_response(c, MHD_HTTP_BAD_REQUEST, r, "application/json");
}

/* Whether the request announces a body: a non-zero Content-Length, or any Transfer-Encoding. */
static bool has_body(struct MHD_Connection *c)
{
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (te)
        return true;
    return cl && cl[strspn(cl, "0")] != '\0';
}

/*
 * libmicrohttpd calls this first when a request's headers are in, then
 * again once the request is complete. Invalid framing, a wrong method or an
 * announced body is answered at the first call: the body is then never read (the
 * connection is closed after the response instead) and no "100 Continue"
 * is sent. Anything else is answered at the second call, when the request
 * is known to be complete, so that the connection can be kept alive.
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    struct http *h = cls;
    const char *bad;

    (void)upload_data;

    if (!*req_cls) {
        struct conn *k = conn_of(c);

        /* Its headers are in: no longer idle, so neither displaced nor timed out by us. */
        if (k)
            k->busy = true;
        bad = framing_error(c, version);
        if (bad)
            return send_bad_request(c, bad);
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return send_static(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "{\"error\":\"method not allowed\"}\n", MHD_HTTP_HEADER_ALLOW,
                               "GET, HEAD");
        if (has_body(c))
            return send_static(c, MHD_HTTP_CONTENT_TOO_LARGE,
                               "{\"error\":\"request body not allowed\"}\n", NULL, NULL);
        /* Any non-NULL marker: this request has passed the first call. */
        *req_cls = h;
        return MHD_YES;
    }
    /* Unreachable without a Content-Length or Transfer-Encoding, but never buffer a body. */
    if (*upload_data_size != 0)
        return send_static(c, MHD_HTTP_CONTENT_TOO_LARGE,
                           "{\"error\":\"request body not allowed\"}\n", NULL, NULL);
    if (h->auth && !authorized(h, c))
        return send_static(c, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"unauthorized\"}\n",
                           MHD_HTTP_HEADER_WWW_AUTHENTICATE, REALM_HEADER);

    if (strcmp(url, "/metrics") == 0 && h->routes.metrics)
        return send_metrics(c, h->routes.metrics);
    if (strcmp(url, "/health") == 0 && h->routes.health)
        return send_probe(c, h->routes.health, h->routes.opaque);
    if (strcmp(url, "/ready") == 0 && h->routes.ready)
        return send_probe(c, h->routes.ready, h->routes.opaque);
    return send_static(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}\n", NULL, NULL);
}

/* Copy the authentication settings, checking that the hash is one crypt(3) can use. */
static int setup_auth(struct http *h, const struct config *cfg, char *err, size_t errlen)
{
    const char *user = cfg->http.basic_auth_user;
    const char *hash = cfg->http.basic_auth_password_hash;
    const char *out;
    int rc;

    if (!user || user[0] == '\0')
        return 0;
    if (strlen(user) >= USER_MAX) {
        snprintf(err, errlen, "http.basic_auth_user: longer than %d bytes", USER_MAX - 1);
        return -EINVAL;
    }
    if (!hash || hash[0] == '\0') {
        snprintf(err, errlen, "http.basic_auth_password_hash: required with http.basic_auth_user");
        return -EINVAL;
    }
    h->crypt = calloc(1, sizeof(*h->crypt));
    h->hash = strdup(hash);
    if (!h->crypt || !h->hash) {
        snprintf(err, errlen, "http: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    /*
     * Legacy methods (DES, MD5) are refused: any string of two salt
     * characters is a valid DES setting, so a plain password pasted here
     * would otherwise be accepted and never match. The output must also be
     * as long as the hash, or no password could ever match it. The hash
     * itself stays out of the message: it is a secret too.
     */
    rc = crypt_checksalt(h->hash);
    out = crypt_r("", h->hash, h->crypt);
    if ((rc != CRYPT_SALT_OK && rc != CRYPT_SALT_TOO_CHEAP) || !out || out[0] == '*' ||
        strlen(out) != strlen(h->hash)) {
        snprintf(err, errlen,
                 "http.basic_auth_password_hash: not a crypt(3) hash this system supports "
                 "(expected \"$y$...\" or \"$2b$...\")");
        return -EINVAL;
    }
    explicit_bzero(h->crypt, sizeof(*h->crypt));
    h->user_len = strlen(user);
    memcpy(h->user, user, h->user_len);
    h->auth = true;
    return 0;
}

static int setup_tls(struct http *h, const struct config *cfg, char *err, size_t errlen)
{
    const char *cert = cfg->http.tls_cert_file;
    const char *key = cfg->http.tls_key_file;
    bool have_cert = cert && cert[0], have_key = key && key[0];

    if (!have_cert && !have_key)
        return 0;
    if (!have_key) {
        snprintf(err, errlen, "http.tls_key_file: required with http.tls_cert_file");
        return -EINVAL;
    }
    if (!have_cert) {
        snprintf(err, errlen, "http.tls_cert_file: required with http.tls_key_file");
        return -EINVAL;
    }
    h->cert_pem = read_pem("http.tls_cert_file", cert, NULL, err, errlen);
    if (!h->cert_pem)
        return -EINVAL;
    h->key_pem = read_pem("http.tls_key_file", key, &h->key_len, err, errlen);
    if (!h->key_pem)
        return -EINVAL;
    return 0;
}

struct http *http_start(const struct config *cfg, const struct http_routes *routes, char *err,
                        size_t errlen)
{
    struct http *h = calloc(1, sizeof(*h));
    struct MHD_OptionItem opts[16];
    size_t n = 0;
    /*
     * No MHD_USE_ERROR_LOG: a library module prints nothing. Epoll: this
     * daemon is Linux-only. No internal thread: ours runs libmicrohttpd and
     * the sweep of slow clients in turn.
     */
    unsigned int flags = MHD_USE_EPOLL;
    const union MHD_DaemonInfo *info;
    sigset_t all, old;
    bool ipv6 = false;
    int fd, rc;

    if (!h) {
        snprintf(err, errlen, "http: %s", strerror(ENOMEM));
        return NULL;
    }
    h->wake_fd = -1;
    h->routes = *routes;
    h->max_live = (size_t)cfg->http.max_connections;
    h->header_ms = (int64_t)cfg->http.timeout_s * 1000;
    if (setup_auth(h, cfg, err, errlen) < 0 || setup_tls(h, cfg, err, errlen) < 0)
        return http_stop(h);
    fd = open_listener(cfg->http.listen, &ipv6, &h->port, err, errlen);
    if (fd < 0)
        return http_stop(h);

    /* First, so that even a message during option parsing would go nowhere. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)discard_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        cfg->http.max_connections + EVICTION_ROOM, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                        cfg->http.max_connections_per_ip, NULL};
    /* libmicrohttpd's default is no timeout: a half-sent request would stay forever. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->http.timeout_s, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL};
    if (ipv6)
        flags |= MHD_USE_IPv6;
    if (h->cert_pem) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)(uintptr_t)TLS_PRIORITIES};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    h->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->daemon) {
        int e = errno;

        if (h->cert_pem)
            snprintf(err, errlen,
                     "http: cannot start HTTPS: is http.tls_cert_file %s a PEM certificate and "
                     "http.tls_key_file %s its PEM private key?",
                     cfg->http.tls_cert_file, cfg->http.tls_key_file);
        else
            snprintf(err, errlen, "http: cannot start the server on %s: %s", cfg->http.listen,
                     e ? strerror(e) : "libmicrohttpd refused");
        /*
         * The socket is not closed here: libmicrohttpd 0.9.75 closes the one
         * it was given on every failure these fixed, valid options can reach
         * (TLS credentials, epoll, thread), and a second close could hit a
         * descriptor another thread has opened meanwhile.
         */
        return http_stop(h);
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!info || h->wake_fd < 0) {
        snprintf(err, errlen, "http: cannot start the server on %s: %s", cfg->http.listen,
                 h->wake_fd < 0 ? strerror(errno) : "no epoll descriptor");
        return http_stop(h);
    }
    h->epoll_fd = info->epoll_fd;
    /* The server thread takes no signal: they are the main thread's to handle. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&h->thread, NULL, serve, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "http: cannot start the server thread: %s", strerror(rc));
        return http_stop(h);
    }
    h->thread_started = true;
    return h;
}

int http_port(const struct http *h)
{
    return h->port;
}

struct http *http_stop(struct http *h)
{
    if (!h)
        return NULL;
    if (h->thread_started) {
        uint64_t one = 1;

        while (write(h->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            continue;
        pthread_join(h->thread, NULL);
    }
    /* Closes every connection (each reported to on_connection()) and the listening socket. */
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    while (h->head) {
        struct conn *k = h->head;

        conn_unlink(h, k);
        free(k);
    }
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    if (h->key_pem) {
        explicit_bzero(h->key_pem, h->key_len);
        free(h->key_pem);
    }
    free(h->cert_pem);
    free(h->hash);
    free(h->crypt);
    explicit_bzero(h, sizeof(*h));
    free(h);
    return NULL;
}
