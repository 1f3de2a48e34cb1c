/* SPDX-License-Identifier: MIT */
/* trace.c -- W3C trace context: an input's traceparent and tracestate, carried onto its outputs. */
#include "trace.h"

#include <string.h>
#include <strings.h>

static bool lower_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

static bool all_zeros(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '0')
            return false;
    return true;
}

bool trace_parent_valid(const char *v, size_t len)
{
    /* version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 bytes. */
    if (len < 55 || len >= sizeof(((struct trace *)0)->parent))
        return false;
    if (!lower_hex(v, 2) || v[2] != '-' || !lower_hex(v + 3, 32) || v[35] != '-' ||
        !lower_hex(v + 36, 16) || v[52] != '-' || !lower_hex(v + 53, 2))
        return false;
    if (memcmp(v, "ff", 2) == 0 || all_zeros(v + 3, 32) || all_zeros(v + 36, 16))
        return false;
    /* Version 00 ends there; a later one may carry more fields after a dash. */
    if (memcmp(v, "00", 2) == 0)
        return len == 55;
    return len == 55 || v[55] == '-';
}

static bool printable(const void *v, size_t len)
{
    const unsigned char *p = v;

    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

void trace_read(const rd_kafka_headers_t *headers, struct trace *t)
{
    const char *name;
    const void *value;
    size_t size;
    int parents = 0;
    bool seen_state = false;

    t->valid = false;
    t->state[0] = '\0';
    if (!headers)
        return;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == 0; i++) {
        if (strcasecmp(name, "traceparent") == 0) {
            if (++parents == 1 && value && trace_parent_valid(value, size)) {
                memcpy(t->parent, value, size);
                t->parent[size] = '\0';
                t->valid = true;
            } else {
                t->valid = false;
            }
        } else if (strcasecmp(name, "tracestate") == 0 && !seen_state) {
            /* The first one counts: a list split over headers is not pieced together. */
            seen_state = true;
            if (value && size > 0 && size <= TRACE_STATE_MAX && printable(value, size)) {
                memcpy(t->state, value, size);
                t->state[size] = '\0';
            }
        }
    }
    if (parents > 1)
        t->valid = false;
    if (!t->valid) {
        t->state[0] = '\0';
        return;
    }
    memcpy(t->id, t->parent + 3, 32);
    t->id[32] = '\0';
}

rd_kafka_headers_t *trace_headers(const struct trace *t)
{
    rd_kafka_headers_t *h;

    if (!t->valid)
        return NULL;
    h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "traceparent", -1, t->parent, -1);
    if (t->state[0])
        rd_kafka_header_add(h, "tracestate", -1, t->state, -1);
    return h;
}
