/* The fault timeline: planned up front from the scenario and its seed (so
 * the same seed gives the same timeline), played by the run on one timer.
 * Planning is a pure function; playing it is run.c's. */
#ifndef FAULTD_FAULT_H
#define FAULTD_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

enum fault_act {
	FA_LINK_DOWN, FA_LINK_UP,
	FA_CYCLE_END,		/* a flap's settle window is over: sample */
	FA_PAUSE, FA_RESUME,	/* freeze / thaw the workload's cgroup */
	FA_KILL,		/* a signal to the workload's root */
	FA_PACKET_ON,		/* a packet fault's rates take effect */
	FA_PACKET_OFF,
	FA_SYSERR_ON,		/* a workload's calls start failing */
	FA_SYSERR_OFF,
	FA_RATE_ON,		/* a link's bandwidth limit takes effect */
	FA_RATE_OFF,
	FA_DELAY_ON,		/* a link's added latency takes effect */
	FA_DELAY_OFF,
	FA_HOG_ON,		/* busy processes start on the fault's CPUs */
	FA_HOG_OFF,
	FA_TCP_RESET_ON,	/* a link's TCP connections get resets */
	FA_TCP_RESET_OFF,
	FA_HALF_OPEN_ON,	/* a link's TCP segments vanish one way */
	FA_HALF_OPEN_OFF,
	FA_COUNT
};

struct fault_action {
	uint64_t t_ms;		/* planned, from the run's start */
	int act;		/* enum fault_act */
	int target;		/* link or workload index */
	int signo;		/* FA_KILL */
	unsigned cycle;		/* the fault cycle it belongs to; 0: none */
	int fault;		/* index into the scenario's faults */
};

/* Plan every action before @horizon_ms, sorted by time. 0 or -errno;
 * *out is freed by the caller. */
int fault_plan(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
	       struct fault_action **out, size_t *n);
const char *fault_act_name(int act);
bool fault_act_is_off(int act);		/* the end of a window */

#endif
