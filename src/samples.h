/* SPDX-License-Identifier: MIT */
/* samples.h -- the demo's sample traffic: e-mails, WhatsApp messages, forms and poison. */
#ifndef CRM_SAMPLES_H
#define CRM_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A generator of realistic inputs: recurring customers (some whose phone a
 * form links to their e-mail address) and one-off guests writing in six
 * languages, and about 2% poison of every kind the daemon dead-letters. One
 * thread only.
 */
struct samples {
    uint64_t rng;
    char run[16]; /* makes ids unique across runs */
    char *buf;    /* the message built last; grows to fit */
    size_t cap;
};

/* A generator seeded with seed (any value; the run id is derived from it). */
void samples_init(struct samples *s, uint64_t seed);

/* Free its buffer. */
void samples_fini(struct samples *s);

/*
 * Build the message numbered id into s->buf: its length, or -1 when out of
 * memory. *poison says whether it is one the daemon must dead-letter.
 */
int samples_next(struct samples *s, uint64_t id, bool *poison);

/* A number below n, from the generator's stream. */
uint32_t samples_pick(struct samples *s, uint32_t n);

/* This run's id, in every message id. */
const char *samples_run(const struct samples *s);

#endif
