/* SPDX-License-Identifier: MIT */
/* procstat.h -- the standard process_* metrics, read from /proc at each scrape. */
#ifndef CRM_PROCSTAT_H
#define CRM_PROCSTAT_H

#include "metrics.h"

/*
 * Register the process_* families in m (cpu seconds, resident and virtual
 * memory, open and max fds, start time), each read from /proc when m is
 * rendered. 0, -EINVAL for no registry, or metrics_collected()'s error
 * (-EEXIST when they are registered already).
 */
int procstat_register(struct metrics *m);

#endif
