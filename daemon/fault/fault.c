/* The pure planner: each fault's family adds its actions; the timeline is
 * then sorted. No I/O. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fault.h"
#include "fault_family.h"
#include "util.h"

/* splitmix64: small, good enough for jitter, and the same everywhere. */
static uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t fault_plan_uniform(struct fault_plan *p, long long lo, long long hi)
{
	return (uint64_t)lo + (hi > lo ? next_rand(&p->rand) % (uint64_t)(hi - lo + 1) : 0);
}

int fault_plan_add(struct fault_plan *p, uint64_t t, const struct fault_family *fam, int act,
		   int target, unsigned cycle, int signo)
{
	struct fault_action *grown = util_grow(p->a, &p->cap, p->n + 1, sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	p->a = grown;
	p->a[p->n++] = (struct fault_action){.t_ms = t, .family = fam, .act = act,
					     .target = target, .signo = signo, .cycle = cycle,
					     .fault = p->fault};
	return 0;
}

int fault_plan_window(struct fault_plan *p, const struct sc_fault *f,
		      const struct fault_family *fam, int on, int target)
{
	int err = fault_plan_add(p, (uint64_t)f->at_ms, fam, on, target, 0, 0);

	if (!err && f->for_ms)
		err = fault_plan_add(p, (uint64_t)(f->at_ms + f->for_ms), fam, on + 1, target, 0, 0);
	return err;
}

bool fault_act_is_off(const struct fault_action *a)
{
	return a->family && a->act >= 0 && a->act < a->family->n_acts &&
	       a->family->acts[a->act].off;
}

const char *fault_act_name(const struct fault_action *a)
{
	if (a->act == FAULT_CYCLE_END)
		return "cycle_end";
	return a->family && a->act >= 0 && a->act < a->family->n_acts ?
	       a->family->acts[a->act].name : "?";
}

/* A cycle's end sorts after its fault's other actions at the same instant
 * (the next down, then the sample). */
static int act_key(const struct fault_action *a)
{
	return a->act == FAULT_CYCLE_END ? INT_MAX : a->act;
}

static int cmp_action(const void *a, const void *b)
{
	const struct fault_action *x = a, *y = b;

	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	/* Same instant: an off before the next window's on, otherwise
	 * planning order (a down before its up). */
	bool x_off = fault_act_is_off(x), y_off = fault_act_is_off(y);

	if (x_off != y_off)
		return x_off ? -1 : 1;
	return x->fault != y->fault ? x->fault - y->fault : act_key(x) < act_key(y) ? -1 :
	       act_key(x) > act_key(y);
}

int fault_plan(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
	       struct fault_action **out, size_t *n)
{
	struct fault_plan p = {.horizon_ms = horizon_ms, .rand = seed};
	int err = 0;

	for (size_t i = 0; !err && i < sc->n_faults; i++) {
		const struct fault_family *fam = sc->faults[i]->type->family;

		p.fault = (int)i;
		err = fam->plan ? fam->plan(&p, sc->faults[i]) : 0;
	}
	if (err) {
		free(p.a);
		return err;
	}
	if (p.n)	/* qsort must not be given NULL, even for nothing */
		qsort(p.a, p.n, sizeof(*p.a), cmp_action);
	*out = p.a;
	*n = p.n;
	return 0;
}
