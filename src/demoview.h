/* SPDX-License-Identifier: MIT */
/* demoview.h -- what --demo shows on a terminal: a live view redrawn in place, and sample events.
 */
#ifndef CRM_DEMOVIEW_H
#define CRM_DEMOVIEW_H

#include <stdbool.h>

#include "config.h"
#include "demo.h"
#include "telemetry.h"

struct demoview;

/*
 * On a terminal (tty), a view of a few lines redrawn in place once a second
 * -- produced, handled, rate, lag, tickets, responses, links, dead letters
 * by class -- with a sample event now and then scrolling above it (an
 * e-mail becoming a ticket, a WhatsApp message resolved to the customer a
 * form linked, a form linking a number), read from the tickets topic at
 * bootstraps. Elsewhere, one line every five seconds. NULL when out of memory.
 */
struct demoview *demoview_new(const char *bootstraps, const struct config *cfg, bool tty);

/* Called from the main loop: draws when it is due. */
void demoview_tick(struct demoview *v, struct demo *d, struct telemetry *tm);

/* Free; takes NULL; returns NULL. */
struct demoview *demoview_free(struct demoview *v);

#endif
