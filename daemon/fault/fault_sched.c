#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault_sched.h"

int fault_act_parse(const char *name)
{
	for (int act = 0; name && act < FA_COUNT; act++)
		if (!strcmp(fault_act_name(act), name))
			return act;
	return -1;
}

/* What an action acts on, as the planner names it: a link, a workload,
 * or (cpu_hog) the fault itself. */
static int target_of(const struct sc_fault *f, int fault)
{
	return f->type == SC_F_CPU_HOG ? fault : f->link_idx >= 0 ? f->link_idx : f->wl_idx;
}

int fault_sched_plan(const struct scenario *sc, uint64_t horizon_ms,
		     struct fault_action **out, size_t *n)
{
	struct fault_action *a = calloc(sc->n_schedule + 1, sizeof(*a));
	size_t k = 0;

	if (!a)
		return -ENOMEM;
	/* scenario/sc_schedule.c checked each entry against its fault and
	 * sorted them by time. */
	for (size_t i = 0; i < sc->n_schedule; i++) {
		const struct sc_sched *e = &sc->schedule[i];
		const struct sc_fault *f = &sc->faults[e->fault];
		int act = fault_act_parse(e->action);

		if (act < 0 || (uint64_t)e->at_ms >= horizon_ms)
			continue;
		a[k++] = (struct fault_action){
			.t_ms = (uint64_t)e->at_ms, .act = act, .target = target_of(f, (int)e->fault),
			.signo = f->type == SC_F_KILL ? f->signo : 0, .cycle = (unsigned)e->cycle,
			.fault = (int)e->fault,
		};
	}
	*out = a;
	*n = k;
	return 0;
}
