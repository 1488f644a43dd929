#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault_family.h"
#include "fault_sched.h"

/* The fault planned alone, long enough for each of its actions to appear
 * once at least; the one named @action is the template: the family knows
 * its target and signal, the schedule only its time. */
int fault_sched_lookup(const struct scenario *sc, size_t fault, const char *action,
		       struct fault_action *out)
{
	const struct sc_fault *f = sc->faults[fault];
	long long end = f->at_ms + f->for_ms > f->start_ms ? f->at_ms + f->for_ms : f->start_ms;
	struct fault_plan p = {.rand = 0, .fault = (int)fault};
	int err = -ENOENT;

	p.horizon_ms = (uint64_t)(sc->duration_s * 1000.0) + 1;
	if ((uint64_t)end + 1 > p.horizon_ms)
		p.horizon_ms = (uint64_t)end + 1;
	if (f->type->family->plan && f->type->family->plan(&p, f))
		err = -ENOMEM;
	for (size_t i = 0; err == -ENOENT && i < p.n; i++)
		if (!strcmp(fault_act_name(&p.a[i]), action)) {
			*out = p.a[i];
			err = 0;
		}
	free(p.a);
	return err;
}

int fault_sched_plan(const struct scenario *sc, uint64_t horizon_ms,
		     struct fault_action **out, size_t *n)
{
	struct fault_action *a = calloc(sc->n_schedule + 1, sizeof(*a));
	size_t k = 0;
	int err = 0;

	if (!a)
		return -ENOMEM;
	/* scenario/sc_schedule.c checked each entry against its fault and
	 * sorted them by time. */
	for (size_t i = 0; !err && i < sc->n_schedule; i++) {
		const struct sc_sched *e = &sc->schedule[i];

		if ((uint64_t)e->at_ms >= horizon_ms)
			continue;
		err = fault_sched_lookup(sc, (size_t)e->fault, e->action, &a[k]);
		if (err)
			break;
		a[k].t_ms = (uint64_t)e->at_ms;
		a[k].cycle = (unsigned)e->cycle;
		k++;
	}
	if (err) {
		free(a);
		return err;
	}
	*out = a;
	*n = k;
	return 0;
}

int fault_sched_timeline(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
			 struct fault_action **out, size_t *n)
{
	return sc->has_schedule ? fault_sched_plan(sc, horizon_ms, out, n)
				: fault_plan(sc, seed, horizon_ms, out, n);
}
