/* SPDX-License-Identifier: MIT */
/* metrics.h -- a small Prometheus registry: counters, gauges, histograms, text format 0.0.4. */
#ifndef CRM_METRICS_H
#define CRM_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Families are registered at start-up; a family's children (one per set of
 * label values) are made with metrics_child() and their pointers kept by the
 * caller, so the hot path only does relaxed atomic updates: no lock, no
 * lookup. Creating children and clearing a family take the registry's mutex,
 * as does rendering, which happens on the HTTP thread.
 */
struct metrics;
struct metric_family;
struct metric;

enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

/* An empty registry; NULL when out of memory. */
struct metrics *metrics_new(void);

/*
 * Register a family. name and help are copied; labels is an array of
 * nlabels label names (at most 8). buckets (histograms only) are the
 * nbuckets upper bounds in increasing order, without +Inf. NULL on a
 * malformed name or label, or when out of memory.
 */
struct metric_family *metrics_family(struct metrics *m, enum metric_type type, const char *name,
                                     const char *help, size_t nlabels, const char *const *labels,
                                     size_t nbuckets, const double *buckets);

/*
 * The child with these label values (nlabels of them, copied), made on
 * first use. Thread-safe. NULL when out of memory.
 */
struct metric *metrics_child(struct metric_family *f, const char *const *values);

/*
 * Show f's counts divided by divisor, e.g. 1e9 for a counter of nanoseconds
 * that Prometheus should read as seconds: the hot path still adds whole
 * numbers, exactly and without a lock. Counters only; call it before the
 * first render.
 */
void metrics_set_divisor(struct metric_family *f, double divisor);

/* Remove every child of f; thread-safe. */
void metrics_clear(struct metric_family *f);

/*
 * Remove every child of f but the nkeep in keep (e.g. the lag of partitions
 * no longer assigned), without a moment when the kept ones are missing from
 * a scrape; thread-safe. Removed children's pointers become invalid.
 */
void metrics_retain(struct metric_family *f, struct metric *const *keep, size_t nkeep);

/* Add n to a counter, or to a gauge. */
void metric_add(struct metric *c, uint64_t n);

/* Set a gauge. */
void metric_set(struct metric *g, double v);

/* Record one observation in a histogram. */
void metric_observe(struct metric *h, double v);

/* The current value of a counter or gauge, for tests and STATUS= lines. */
double metric_value(const struct metric *c);

/*
 * Render every family in the Prometheus text format 0.0.4, with # HELP and
 * # TYPE lines and escaped label values, into a malloc'd buffer (*out, *len;
 * the caller frees it). Families appear in registration order, children in
 * creation order. 0 or -ENOMEM.
 */
int metrics_render(struct metrics *m, char **out, size_t *len);

/*
 * A collected family has no children: its one labelless sample is read by
 * the function at render time (the process_* families, see procstat.h). It
 * returns 0 and the value, or a negative errno, in which case the sample is
 * left out.
 */
typedef int metrics_collect_fn(double *value);

/* Add a collected family of type (counter or gauge). 0, -EEXIST, -EINVAL or -ENOMEM. */
int metrics_collected(struct metrics *m, enum metric_type type, const char *name, const char *help,
                      metrics_collect_fn *collect);

/* Free the registry and every family; takes NULL; returns NULL. */
struct metrics *metrics_free(struct metrics *m);

#endif
