/* The fault timeline: planned up front from the scenario and its seed (so
 * the same seed gives the same timeline), played by the run on one timer.
 * Planning is a pure function: each fault's family adds its actions
 * (fault_family.h); playing them is run/run_faults.c's. */
#ifndef FAULTD_FAULT_H
#define FAULTD_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

struct fault_family;

/* An action no family owns: a flap's settle window is over, sample. */
#define FAULT_CYCLE_END (-1)

struct fault_action {
	uint64_t t_ms;		/* planned, from the run's start */
	const struct fault_family *family;	/* NULL with FAULT_CYCLE_END */
	int act;		/* the family's action code, or FAULT_CYCLE_END */
	int target;		/* link, workload or fault index, by the action */
	int signo;		/* a kill's signal */
	unsigned cycle;		/* the fault cycle it belongs to; 0: none */
	int fault;		/* index into the scenario's faults */
};

/* The plan being built, for the families' plan(). */
struct fault_plan {
	struct fault_action *a;
	size_t n, cap;
	uint64_t horizon_ms;	/* nothing at or after this */
	uint64_t rand;		/* the seeded generator's state */
	int fault;		/* the index of the fault being planned */
};

/* Plan every action before @horizon_ms, sorted by time. 0 or -errno;
 * *out is freed by the caller. */
int fault_plan(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
	       struct fault_action **out, size_t *n);
const char *fault_act_name(const struct fault_action *a);
bool fault_act_is_off(const struct fault_action *a);	/* the end of a window */

/* For the families' plan(): add one action of p->fault; a draw in [lo, hi]
 * from the seed; a window (on at at_ms, off after for_ms unless 0) of
 * actions @on and @on + 1. 0 or -ENOMEM. */
int fault_plan_add(struct fault_plan *p, uint64_t t, const struct fault_family *fam, int act,
		   int target, unsigned cycle, int signo);
uint64_t fault_plan_uniform(struct fault_plan *p, long long lo, long long hi);
int fault_plan_window(struct fault_plan *p, const struct sc_fault *f,
		      const struct fault_family *fam, int on, int target);

#endif
