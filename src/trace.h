/* SPDX-License-Identifier: MIT */
/* trace.h -- W3C trace context: an input's traceparent and tracestate, carried onto its outputs. */
#ifndef CRM_TRACE_H
#define CRM_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* The longest tracestate kept (the W3C limit). */
#define TRACE_STATE_MAX 512

/*
 * What an input carries. Only a valid traceparent is kept, and a tracestate
 * only beside one: the outputs of an input with a malformed traceparent
 * carry neither, as the W3C recommendation asks of a receiver.
 */
struct trace {
    bool valid;
    char parent[64];                 /* the traceparent, as it came */
    char id[33];                     /* its trace id, for the log */
    char state[TRACE_STATE_MAX + 1]; /* the tracestate, "" when none */
};

/*
 * Whether v (len bytes) is a traceparent this daemon may pass on: version,
 * trace id, parent id and flags in lower-case hex ("00-" 32 "-" 16 "-" 2
 * for version 00, which must end there; a later version may go on after a
 * "-"), version not ff, neither id all zeros.
 */
bool trace_parent_valid(const char *v, size_t len);

/*
 * Read the trace context from headers (NULL: none). Header names match
 * without regard to case; two traceparent headers make it invalid. The first
 * tracestate header is kept unless it is longer than TRACE_STATE_MAX or holds
 * a byte outside printable ASCII (then only the traceparent is kept).
 */
void trace_read(const rd_kafka_headers_t *headers, struct trace *t);

/* The headers to give an output: a new list (the caller hands it on), or NULL if none. */
rd_kafka_headers_t *trace_headers(const struct trace *t);

#endif
