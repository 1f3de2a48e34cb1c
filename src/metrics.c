/* SPDX-License-Identifier: MIT */
/* metrics.c -- a small Prometheus registry: counters, gauges, histograms, text format 0.0.4. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

/* The most label names a family may have, as metrics.h promises. */
#define MAX_LABELS 8

/* The rendering buffer's first allocation: enough for a typical scrape, so most never grow. */
#define INITIAL_CAP 4096

/*
 * Whole numbers of smaller magnitude print in plain digits ("3", not
 * "3e+00"); the threshold is JavaScript's, so a value switches to an
 * exponent only where a reader expects it to. At or above 2^53 every
 * double is whole.
 */
#define PLAIN_INT_LIMIT 1e21
#define EXACT_INT_LIMIT 9007199254740992.0

/* Room for any double as "%.17g" ("-2.2250738585072014e-308") and its NUL. */
#define NUMBER_LEN 32

/*
 * One child: the series for one set of label values. Writers update it with
 * relaxed atomics and no lock; the order between one child's fields does not
 * matter, since a scrape is a sample, not a transaction.
 *
 * Lifetime: a child pointer stays valid until metrics_clear() on its family
 * or metrics_free(). Callers that keep child pointers on a hot path must
 * therefore never clear those families; families that are cleared (per
 * partition lag, say) are looked up again with metrics_child() after each
 * clear.
 */
struct metric {
    struct metric_family *family;
    char **values; /* nlabels copies, valid UTF-8 */
    /* A counter's count; a gauge's double, as its bits; a histogram's observation count. */
    atomic_uint_fast64_t value;
    atomic_uint_fast64_t sum; /* a histogram's sum of observations, as a double's bits */
    /*
     * A histogram's per-bucket counts, not cumulative, so that an
     * observation touches one bucket; the last, at index nbuckets, counts
     * observations above every bound. Rendering sums them.
     */
    atomic_uint_fast64_t buckets[];
};

typedef metrics_collect_fn collect_fn;

struct metric_family {
    struct metrics *registry;
    struct metric_family *next;
    enum metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[MAX_LABELS];
    size_t nbuckets;
    double *buckets;
    collect_fn *collect;
    double divisor; /* counters: shown as count / divisor (0: shown as counted) */
    /* Children in creation order; each is its own allocation, so pointers survive growth. */
    struct metric **children;
    size_t nchildren;
    size_t cap;
};

struct metrics {
    /* Guards the family list and every family's children array; never the children's values. */
    pthread_mutex_t lock;
    struct metric_family *first;
    struct metric_family *last;
};

/* The rendering buffer. Errors are sticky so that a render checks once at the end. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

static uint64_t double_bits(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

static bool is_name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool is_name_char(char c, bool colon)
{
    return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names (colon true), [a-zA-Z_][a-zA-Z0-9_]* for labels. */
static bool valid_name(const char *s, bool colon)
{
    if (s == NULL || !is_name_start(s[0], colon))
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!is_name_char(*p, colon))
            return false;
    return true;
}

static bool valid_label_name(const char *s, enum metric_type type)
{
    if (!valid_name(s, false))
        return false;
    /* Names starting with "__" are Prometheus's own; "le" is the histogram's bucket label. */
    if (strncmp(s, "__", 2) == 0)
        return false;
    return !(type == METRIC_HISTOGRAM && strcmp(s, "le") == 0);
}

/* Whether name is base followed by suffix. */
static bool has_base_suffix(const char *name, const char *base, const char *suffix)
{
    size_t n = strlen(base);

    return strncmp(name, base, n) == 0 && strcmp(name + n, suffix) == 0;
}

/*
 * Whether the sample names of a histogram hist (hist_bucket, hist_sum,
 * hist_count) include name, which would make two families share a series.
 */
static bool histogram_owns(const char *hist, const char *name)
{
    return has_base_suffix(name, hist, "_bucket") || has_base_suffix(name, hist, "_sum") ||
           has_base_suffix(name, hist, "_count");
}

static bool name_taken(const struct metrics *m, enum metric_type type, const char *name)
{
    for (const struct metric_family *f = m->first; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return true;
        if (f->type == METRIC_HISTOGRAM && histogram_owns(f->name, name))
            return true;
        if (type == METRIC_HISTOGRAM && histogram_owns(name, f->name))
            return true;
    }
    return false;
}

/* Free f's children; the caller holds the lock, or is the only thread left. */
static void child_free(const struct metric_family *f, struct metric *c)
{
    for (size_t j = 0; j < f->nlabels; j++)
        free(c->values[j]);
    free(c->values);
    free(c);
}

static void children_free(struct metric_family *f)
{
    for (size_t i = 0; i < f->nchildren; i++)
        child_free(f, f->children[i]);
    f->nchildren = 0;
}

static struct metric_family *family_free(struct metric_family *f)
{
    if (f == NULL)
        return NULL;
    children_free(f);
    free(f->children);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->buckets);
    free(f->help);
    free(f->name);
    free(f);
    return NULL;
}

/*
 * Check and register a family; metrics_family() without the collected
 * kind, which stays private. 0, -EINVAL for a malformed name, label or
 * bucket list, -EEXIST when a family already renders a sample of the same
 * name, or -ENOMEM.
 */
static int family_add(struct metrics *m, enum metric_type type, const char *name, const char *help,
                      size_t nlabels, const char *const *labels, size_t nbuckets,
                      const double *buckets, collect_fn *collect, struct metric_family **out)
{
    *out = NULL;
    if (m == NULL || (type != METRIC_COUNTER && type != METRIC_GAUGE && type != METRIC_HISTOGRAM))
        return -EINVAL;
    if (!valid_name(name, true) || nlabels > MAX_LABELS || (nlabels > 0 && labels == NULL))
        return -EINVAL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_label_name(labels[i], type))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return -EINVAL;
    }
    if (nbuckets > 0 && (type != METRIC_HISTOGRAM || buckets == NULL))
        return -EINVAL;
    /* +Inf is always the last bucket, so explicit bounds are finite and strictly increasing. */
    for (size_t i = 0; i < nbuckets; i++) {
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return -EINVAL;
    }
    if (collect != NULL && nlabels > 0)
        return -EINVAL;

    struct metric_family *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->registry = m;
    f->type = type;
    f->collect = collect;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto oom;
    for (; f->nlabels < nlabels; f->nlabels++) {
        f->labels[f->nlabels] = strdup(labels[f->nlabels]);
        if (f->labels[f->nlabels] == NULL)
            goto oom;
    }
    if (nbuckets > 0) {
        f->buckets = malloc(nbuckets * sizeof(*f->buckets));
        if (f->buckets == NULL)
            goto oom;
        memcpy(f->buckets, buckets, nbuckets * sizeof(*f->buckets));
        f->nbuckets = nbuckets;
    }

    /* Rendering may already run on the HTTP thread, so the list changes under the lock. */
    pthread_mutex_lock(&m->lock);
    if (name_taken(m, type, name)) {
        pthread_mutex_unlock(&m->lock);
        family_free(f);
        return -EEXIST;
    }
    if (m->last != NULL)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->lock);
    *out = f;
    return 0;

oom:
    family_free(f);
    return -ENOMEM;
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

struct metric_family *metrics_family(struct metrics *m, enum metric_type type, const char *name,
                                     const char *help, size_t nlabels, const char *const *labels,
                                     size_t nbuckets, const double *buckets)
{
    struct metric_family *f;

    family_add(m, type, name, help, nlabels, labels, nbuckets, buckets, NULL, &f);
    return f;
}

static struct metric *child_new(struct metric_family *f, const char *const *keys)
{
    size_t nb = f->type == METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
    struct metric *c = calloc(1, sizeof(*c) + nb * sizeof(c->buckets[0]));

    if (c == NULL)
        return NULL;
    c->family = f;
    c->values = calloc(f->nlabels + 1, sizeof(*c->values));
    if (c->values == NULL) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        c->values[i] = strdup(keys[i]);
        if (c->values[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(c->values[j]);
            free(c->values);
            free(c);
            return NULL;
        }
    }
    atomic_init(&c->value, 0);
    atomic_init(&c->sum, double_bits(0.0));
    for (size_t i = 0; i < nb; i++)
        atomic_init(&c->buckets[i], 0);
    return c;
}

static struct metric *child_find(const struct metric_family *f, const char *const *keys)
{
    for (size_t i = 0; i < f->nchildren; i++) {
        struct metric *c = f->children[i];
        size_t j = 0;
        while (j < f->nlabels && strcmp(c->values[j], keys[j]) == 0)
            j++;
        if (j == f->nlabels)
            return c;
    }
    return NULL;
}

struct metric *metrics_child(struct metric_family *f, const char *const *values)
{
    const char *keys[MAX_LABELS];
    char *repaired[MAX_LABELS] = {0};
    struct metric *c = NULL;

    if (f == NULL || f->collect != NULL || (f->nlabels > 0 && values == NULL))
        return NULL;
    /* The common case, valid UTF-8, is compared in place; only a bad value is copied. */
    for (size_t i = 0; i < f->nlabels; i++) {
        keys[i] = values[i] != NULL ? values[i] : "";
        if (!utf8_valid(keys[i])) {
            repaired[i] = utf8_repair(keys[i]);
            if (repaired[i] == NULL)
                goto out;
            keys[i] = repaired[i];
        }
    }

    pthread_mutex_lock(&f->registry->lock);
    c = child_find(f, keys);
    if (c == NULL && f->nchildren == f->cap) {
        size_t cap = f->cap > 0 ? f->cap * 2 : 8;
        struct metric **children = NULL;
        if (cap <= SIZE_MAX / sizeof(*children))
            children = realloc(f->children, cap * sizeof(*children));
        if (children == NULL)
            goto unlock;
        f->children = children;
        f->cap = cap;
    }
    if (c == NULL) {
        c = child_new(f, keys);
        if (c != NULL)
            f->children[f->nchildren++] = c;
    }
unlock:
    pthread_mutex_unlock(&f->registry->lock);
out:
    for (size_t i = 0; i < f->nlabels; i++)
        free(repaired[i]);
    return c;
}

void metrics_clear(struct metric_family *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->registry->lock);
    children_free(f);
    pthread_mutex_unlock(&f->registry->lock);
}

void metrics_retain(struct metric_family *f, struct metric *const *keep, size_t nkeep)
{
    size_t kept = 0;

    if (f == NULL)
        return;
    pthread_mutex_lock(&f->registry->lock);
    for (size_t i = 0; i < f->nchildren; i++) {
        struct metric *c = f->children[i];
        bool wanted = false;

        for (size_t k = 0; k < nkeep && !wanted; k++)
            wanted = keep[k] == c;
        if (wanted)
            f->children[kept++] = c; /* creation order is kept */
        else
            child_free(f, c);
    }
    f->nchildren = kept;
    pthread_mutex_unlock(&f->registry->lock);
}

/* Add d to the double whose bits are in a; a CAS loop, as there is no atomic double add. */
static void add_double(atomic_uint_fast64_t *a, double d)
{
    uint_fast64_t old = atomic_load_explicit(a, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(a, &old, double_bits(bits_double(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/*
 * The update functions ignore a NULL child, so that a child lost to an
 * out-of-memory at start-up costs its metric, not the daemon; and a call
 * that does not fit the child's type (metric_set on a counter) is ignored.
 */
void metric_add(struct metric *c, uint64_t n)
{
    if (c == NULL)
        return;
    if (c->family->type == METRIC_COUNTER)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
    else if (c->family->type == METRIC_GAUGE)
        add_double(&c->value, (double)n);
}

void metric_set(struct metric *g, double v)
{
    if (g == NULL || g->family->type != METRIC_GAUGE)
        return;
    atomic_store_explicit(&g->value, double_bits(v), memory_order_relaxed);
}

void metric_observe(struct metric *h, double v)
{
    if (h == NULL || h->family->type != METRIC_HISTOGRAM)
        return;
    const struct metric_family *f = h->family;
    size_t i = 0;

    /* Bounds are inclusive (le); NaN fails every comparison and lands in +Inf, as elsewhere. */
    while (i < f->nbuckets && !(v <= f->buckets[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->value, 1, memory_order_relaxed);
    add_double(&h->sum, v);
}

double metric_value(const struct metric *c)
{
    if (c == NULL)
        return 0.0;
    uint_fast64_t bits = atomic_load_explicit(&c->value, memory_order_relaxed);

    if (c->family->type == METRIC_GAUGE)
        return bits_double(bits);
    if (c->family->divisor != 0)
        return (double)bits / c->family->divisor;
    return (double)bits;
}

void metrics_set_divisor(struct metric_family *f, double divisor)
{
    if (f != NULL && f->type == METRIC_COUNTER && divisor > 0)
        f->divisor = divisor;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/*
 * Copy s, escaping backslash and newline, and also the double quote when
 * quote is set: HELP text escapes the first two, label values all three.
 */
static void buf_escaped(struct buf *b, const char *s, bool quote)
{
    const char *run = s;

    for (const char *p = s; *p != '\0'; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '"' && quote)
            esc = "\\\"";
        if (esc != NULL) {
            buf_put(b, run, (size_t)(p - run));
            buf_put(b, esc, 2);
            run = p + 1;
        }
    }
    buf_puts(b, run);
}

/*
 * v as the text format wants it: NaN, +Inf and -Inf spelled out; whole
 * numbers below 1e21 in plain digits; anything else in the fewest
 * significant digits (at most 17) that read back as exactly v, so 0.1 is
 * "0.1" and 5e-05 is "5e-05", as the Go client writes them. The daemon
 * never calls setlocale(), so the decimal point is '.'.
 */
static void format_double(char out[NUMBER_LEN], double v)
{
    double mag = v < 0 ? -v : v;

    if (isnan(v)) {
        snprintf(out, NUMBER_LEN, "NaN");
    } else if (isinf(v)) {
        snprintf(out, NUMBER_LEN, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        /* -0.0 too: its sign is of no use to a scraper, and "-0" only puzzles a reader. */
        snprintf(out, NUMBER_LEN, "0");
    } else if (mag < PLAIN_INT_LIMIT && (mag >= EXACT_INT_LIMIT || v == (double)(int64_t)v)) {
        /* The range test comes first: converting a double outside int64_t's range is undefined. */
        snprintf(out, NUMBER_LEN, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, NUMBER_LEN, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static void buf_double(struct buf *b, double v)
{
    char num[NUMBER_LEN];

    format_double(num, v);
    buf_puts(b, num);
}

static void buf_uint(struct buf *b, uint64_t v)
{
    char num[NUMBER_LEN];

    snprintf(num, sizeof(num), "%" PRIu64, v);
    buf_puts(b, num);
}

/* The sample's name, its labels in braces (none when it has none), and a space. */
static void buf_series(struct buf *b, const struct metric_family *f, const struct metric *c,
                       const char *suffix, const char *le)
{
    buf_puts(b, f->name);
    buf_puts(b, suffix);
    if (f->nlabels > 0 || le != NULL) {
        buf_put(b, "{", 1);
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i > 0)
                buf_put(b, ",", 1);
            buf_puts(b, f->labels[i]);
            buf_put(b, "=\"", 2);
            buf_escaped(b, c->values[i], true);
            buf_put(b, "\"", 1);
        }
        if (le != NULL) {
            if (f->nlabels > 0)
                buf_put(b, ",", 1);
            buf_put(b, "le=\"", 4);
            buf_puts(b, le);
            buf_put(b, "\"", 1);
        }
        buf_put(b, "}", 1);
    }
    buf_put(b, " ", 1);
}

static void render_histogram(struct buf *b, const struct metric_family *f, const struct metric *c)
{
    char le[NUMBER_LEN];
    uint64_t total = 0;

    /*
     * The +Inf bucket and _count are both the sum of the buckets as read
     * here, not the separate count, so that one scrape never shows them
     * disagreeing while writers are mid-observation.
     */
    for (size_t i = 0; i <= f->nbuckets; i++) {
        total += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
        if (i < f->nbuckets)
            format_double(le, f->buckets[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        buf_series(b, f, c, "_bucket", le);
        buf_uint(b, total);
        buf_put(b, "\n", 1);
    }
    buf_series(b, f, c, "_sum", NULL);
    buf_double(b, bits_double(atomic_load_explicit(&c->sum, memory_order_relaxed)));
    buf_put(b, "\n", 1);
    buf_series(b, f, c, "_count", NULL);
    buf_uint(b, total);
    buf_put(b, "\n", 1);
}

static void render_family(struct buf *b, const struct metric_family *f)
{
    static const char *const type_names[] = {
        [METRIC_COUNTER] = "counter",
        [METRIC_GAUGE] = "gauge",
        [METRIC_HISTOGRAM] = "histogram",
    };

    buf_puts(b, "# HELP ");
    buf_puts(b, f->name);
    buf_put(b, " ", 1);
    buf_escaped(b, f->help, false);
    buf_puts(b, "\n# TYPE ");
    buf_puts(b, f->name);
    buf_put(b, " ", 1);
    buf_puts(b, type_names[f->type]);
    buf_put(b, "\n", 1);

    if (f->collect != NULL) {
        double v;
        if (f->collect(&v) == 0) {
            buf_series(b, f, NULL, "", NULL);
            buf_double(b, v);
            buf_put(b, "\n", 1);
        }
        return;
    }
    for (size_t i = 0; i < f->nchildren; i++) {
        const struct metric *c = f->children[i];
        if (f->type == METRIC_HISTOGRAM) {
            render_histogram(b, f, c);
            continue;
        }
        uint_fast64_t v = atomic_load_explicit(&c->value, memory_order_relaxed);
        buf_series(b, f, c, "", NULL);
        if (f->type == METRIC_COUNTER && f->divisor != 0)
            buf_double(b, (double)v / f->divisor);
        else if (f->type == METRIC_COUNTER)
            buf_uint(b, v);
        else
            buf_double(b, bits_double(v));
        buf_put(b, "\n", 1);
    }
}

int metrics_render(struct metrics *m, char **out, size_t *len)
{
    struct buf b = {.cap = INITIAL_CAP};

    *out = NULL;
    *len = 0;
    if (m == NULL)
        return -EINVAL;
    b.data = malloc(b.cap);
    if (b.data == NULL)
        return -ENOMEM;
    b.data[0] = '\0';

    pthread_mutex_lock(&m->lock);
    for (const struct metric_family *f = m->first; f != NULL && !b.failed; f = f->next)
        render_family(&b, f);
    pthread_mutex_unlock(&m->lock);

    if (b.failed) {
        free(b.data);
        return -ENOMEM;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}

int metrics_collected(struct metrics *m, enum metric_type type, const char *name, const char *help,
                      metrics_collect_fn *collect)
{
    struct metric_family *f;

    if (collect == NULL)
        return -EINVAL;
    return family_add(m, type, name, help, 0, NULL, 0, NULL, collect, &f);
}

struct metrics *metrics_free(struct metrics *m)
{
    if (m == NULL)
        return NULL;
    struct metric_family *f = m->first;
    while (f != NULL) {
        struct metric_family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}
