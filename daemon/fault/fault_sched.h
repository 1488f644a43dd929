/* A scenario's explicit "schedule" as the run's timeline: the actions as
 * written, no planning (the replay and shrink commands write them). */
#ifndef FAULTD_FAULT_SCHED_H
#define FAULTD_FAULT_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "fault.h"

/* The run's timeline: the scenario's "schedule" as written when it has
 * one, else fault_plan() from the faults and the seed. 0 or -errno; *out
 * is freed by the caller. */
int fault_sched_timeline(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
			 struct fault_action **out, size_t *n);
/* The schedule's actions before @horizon_ms, in its order. */
int fault_sched_plan(const struct scenario *sc, uint64_t horizon_ms,
		     struct fault_action **out, size_t *n);
/* Fault @fault's action named @action ("link_down", "cycle_end", ...) as
 * its family plans it: family, code, target, signal. 0, -ENOENT when the
 * fault's type has no such action, or -ENOMEM. */
int fault_sched_lookup(const struct scenario *sc, size_t fault, const char *action,
		       struct fault_action *out);

#endif
