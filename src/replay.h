/* SPDX-License-Identifier: MIT */
/* replay.h -- the dead-letter topic summarised, and its dead letters handled again. */
#ifndef CRM_REPLAY_H
#define CRM_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Which dead letters a replay takes, and how. */
struct replay_options {
    unsigned classes; /* a bit per enum error_class; 0: every class */
    int64_t since_ms; /* record timestamps from (inclusive), or -1 */
    int64_t until_ms; /* record timestamps before (exclusive), or -1 */
    long limit;       /* at most this many selected dead letters, 0: no limit */
    bool dry_run;     /* print what would be replayed; write and commit nothing */
};

/*
 * Parse a --class list ("oversize,schema") into a class mask. 0, or -EINVAL
 * with the reason in err (an empty item, or a name that is no class).
 */
int replay_parse_classes(const char *list, unsigned *mask, char *err, size_t errlen);

/*
 * Parse an ISO 8601 time: "2024-05-01", "2024-05-01T12:30", with seconds,
 * fractions of a second, and "Z" or a "+02:00"-style offset (none: UTC).
 * 0 and *ms (milliseconds since the epoch), or -EINVAL.
 */
int replay_parse_time(const char *text, int64_t *ms);

/*
 * The consumer group that keeps the progress of a replay with these
 * options: "<kafka.group_id>.replay", then ".class-a+b", ".since-T" and
 * ".until-T" for the filters given, so that replays of different
 * selections never pass over each other's dead letters. Written to out.
 */
void replay_group_name(const struct config *cfg, const struct replay_options *o, char *out,
                       size_t len);

/*
 * --replay: handle the selected dead letters again with the daemon's router
 * and handlers under cfg, publish their outputs to the output topics, and
 * commit the progress (in replay_group_name()'s group) only past dead letters
 * whose outputs are acknowledged. A report line per dead letter that is not
 * replayed and one summary line go to standard output. Stops early when
 * *quit becomes non-zero. Returns an exit status: EX_OK when every selected
 * dead letter was replayed, EX_DATAERR when some failed again or could not
 * be replayed, EX_TEMPFAIL when interrupted, EX_UNAVAILABLE when outputs
 * were not acknowledged, others as dlq_open() (see dlq.h).
 */
int replay_run(const struct config *cfg, const char *path, const struct replay_options *o,
               volatile sig_atomic_t *quit);

#endif
