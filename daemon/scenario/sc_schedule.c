/* The "schedule" section: an explicit fault timeline, one entry per action
 * ({at_ms, fault, action, cycle}), that the planner plays as written instead
 * of planning the faults' own timing. faultctl replay writes the actions a
 * run fired; faultctl shrink writes the smallest one that still fails. The
 * faults stay the definitions (which link, what rate); the schedule says
 * when each action happens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_sched.h"
#include "fault_family.h"
#include "sc_priv.h"
#include "scenario.h"
#include "util.h"

#define SD(f) offsetof(struct sc_sched, f)

static const struct sc_key sched_keys[] = {
	{"at_ms", SC_INT, SC_REQ, SD(at_ms), 0, 604800000.0, .doc = "when, from the run's start"},
	{"fault", SC_INT, SC_REQ, SD(fault), 0, 1e6, .doc = "index into faults"},
	{"action", SC_STR, SC_REQ, SD(action), .doc = "link_down, link_up, cycle_end, pause, ..."},
	{"cycle", SC_INT, 0, SD(cycle), 0, 1e9, .def = "0", .doc = "the fault cycle; 0: none"},
	{NULL},
};

/* With a schedule, its cycle_end entries make the cycles. */
bool scenario_sched_cyclic(const struct scenario *sc)
{
	for (size_t i = 0; i < sc->n_schedule; i++)
		if (!strcmp(sc->schedule[i].action, "cycle_end"))
			return true;
	return false;
}

static int cmp_at(const void *a, const void *b)
{
	const struct sc_sched *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return 0;
}

static int check_entry(struct sc_ctx *ctx, const struct scenario *sc, const struct sc_sched *e)
{
	struct fault_action a;
	int err;

	if ((size_t)e->fault >= sc->n_faults) {
		jpath_push_key(&ctx->path, "fault");
		sc_error(ctx, false, "no faults[%lld] (the scenario has %zu faults)", e->fault,
			 sc->n_faults);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	err = fault_sched_lookup(sc, (size_t)e->fault, e->action, &a);
	if (err == -ENOENT) {
		jpath_push_key(&ctx->path, "action");
		sc_error(ctx, false, "'%s' is not an action of faults[%lld] (a %s)", e->action,
			 e->fault, sc->faults[e->fault]->type->name);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	return err;
}

static int check_sched(struct sc_ctx *ctx, void *elem, size_t i, void *sc)
{
	(void)i;
	return check_entry(ctx, sc, elem);
}

int sc_parse_schedule(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	struct sc_sched *s;
	int err;

	s = sc_parse_array(ctx, val, "{at_ms, fault, action}", sched_keys, sizeof(*s),
			   &sc->n_schedule, check_sched, sc, &err);
	if (!s)
		return err;
	sc->schedule = s;
	sc->has_schedule = true;
	/* By time, ties in file order (an insertion sort is stable; a
	 * file faultctl wrote is sorted already and costs one pass). */
	for (size_t k = 1; !err && k < sc->n_schedule; k++)
		for (size_t j = k; j > 0 && cmp_at(&s[j - 1], &s[j]) > 0; j--) {
			struct sc_sched t = s[j];

			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	return err;
}
