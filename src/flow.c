/* SPDX-License-Identifier: MIT */
/* flow.c -- flow control: how many messages may wait for their outputs, and what to do past it. */
#include "flow.h"

void flow_init(struct flow *f, uint64_t max)
{
    *f = (struct flow){.max = max};
}

void flow_queue_full(struct flow *f, int queued)
{
    if (f->queue_full)
        return;
    f->queue_full = true;
    f->queue_resume = queued / 2;
}

enum flow_verdict flow_check(struct flow *f, uint64_t in_flight, int queued, int64_t now_ms)
{
    bool queue_ok = !f->queue_full || queued <= f->queue_resume;

    if (f->paused) {
        if (in_flight > f->max / 2 || !queue_ok)
            return FLOW_WAIT;
        f->paused = false;
        f->queue_full = false;
        f->since = 0;
        return FLOW_RESUME_ALL;
    }
    if (f->since) {
        if (in_flight < f->max && queue_ok) {
            f->queue_full = false;
            f->since = 0;
            return FLOW_TAKE;
        }
        if (now_ms - f->since < FLOW_HOLD_MS)
            return FLOW_WAIT;
        f->paused = true;
        f->pauses++;
        return FLOW_PAUSE_ALL;
    }
    if (in_flight < f->max && !f->queue_full)
        return FLOW_TAKE;
    f->since = now_ms;
    f->waits++;
    return FLOW_WAIT;
}
