/* The link family: a link set down and up, once (link_down, link_up) or in
 * cycles (link_flap, random), through the topology (topo.c's
 * topo__link_set). A cyclic fault defines the run's cycles: each ends,
 * and is sampled, once its settle window after the up is over. */
#include <errno.h>
#include <stdio.h>

#include "fault_family.h"
#include "topo.h"

struct link_fault {
	struct sc_fault f;
	long long down_ms, up_ms;	/* link_flap */
	long long cycles;		/* link_flap: 0 until the run ends; random: count */
	long long jitter_ms;		/* link_flap */
	long long settle_ms;		/* after up, before the cycle's sample */
	long long min_down_ms, max_down_ms, min_up_ms, max_up_ms;	/* random */
};

#define LK(field) offsetof(struct link_fault, field)
#define KEY_SETTLE {"settle_ms", SC_INT, 0, LK(settle_ms), 0, FAULT_MS_MAX, \
		    .doc = "after up, before the cycle is sampled (default: the whole up time)"}

static const struct sc_key flap_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEY_START, KEY_SETTLE,
	{"down_ms", SC_INT, SC_REQ, LK(down_ms), 1, FAULT_MS_MAX, .doc = "down time per cycle"},
	{"up_ms", SC_INT, SC_REQ, LK(up_ms), 1, FAULT_MS_MAX, .doc = "up time per cycle"},
	{"cycles", SC_INT, 0, LK(cycles), 0, 1e9, .def = "0", .doc = "0: until the run ends"},
	{"jitter_ms", SC_INT, 0, LK(jitter_ms), 0, FAULT_MS_MAX, .def = "0",
	 .doc = "each down moves by up to this, drawn from the seed"},
	{NULL},
};
static const struct sc_key random_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEY_START, KEY_SETTLE,
	{"count", SC_INT, SC_REQ, LK(cycles), 1, 1e6, .doc = "how many outages"},
	{"min_down_ms", SC_INT, 0, LK(min_down_ms), 1, FAULT_MS_MAX, .def = "100"},
	{"max_down_ms", SC_INT, 0, LK(max_down_ms), 1, FAULT_MS_MAX, .def = "1000"},
	{"min_up_ms", SC_INT, 0, LK(min_up_ms), 1, FAULT_MS_MAX, .def = "500"},
	{"max_up_ms", SC_INT, 0, LK(max_up_ms), 1, FAULT_MS_MAX, .def = "2000"},
	{NULL},
};
static const struct sc_key at_keys[] = {FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEY_AT, {NULL}};

enum { T_FLAP, T_RANDOM, T_DOWN, T_UP };
enum { LINK_DOWN, LINK_UP };
static const struct fault_act_def link_acts[] = {
	[LINK_DOWN] = {"link_down", false, FAULT_ON_LINK},
	[LINK_UP] = {"link_up", false, FAULT_ON_LINK},
};

const struct fault_family fault_link;
static const struct fault_type link_types[] = {
	{"link_flap", &fault_link, T_FLAP, flap_keys, sizeof(struct link_fault), true},
	{"link_down", &fault_link, T_DOWN, at_keys, sizeof(struct link_fault), false},
	{"link_up", &fault_link, T_UP, at_keys, sizeof(struct link_fault), false},
	{"random", &fault_link, T_RANDOM, random_keys, sizeof(struct link_fault), true},
	{NULL},
};

static int link_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	struct link_fault *l = (struct link_fault *)f;
	long long up = f->type->code == T_FLAP ? l->up_ms : l->min_up_ms;

	(void)sc;
	if (!f->type->cyclic)
		return 0;
	if (!l->settle_ms)
		l->settle_ms = up;
	if (l->settle_ms > up) {
		e->key = "settle_ms";
		snprintf(e->msg, sizeof(e->msg), "%lld is longer than the link stays up",
			 l->settle_ms);
		return -EINVAL;
	}
	if (f->type->code == T_RANDOM && (l->min_down_ms > l->max_down_ms ||
					  l->min_up_ms > l->max_up_ms)) {
		snprintf(e->msg, sizeof(e->msg), "min_*_ms must not exceed max_*_ms");
		return -EINVAL;
	}
	return 0;
}

static void link_span(const struct sc_fault *f, long long *from, long long *to)
{
	const struct link_fault *l = (const struct link_fault *)f;

	switch (f->type->code) {
	case T_FLAP:
		*from = f->start_ms;
		*to = l->cycles ? f->start_ms + l->cycles * (l->down_ms + l->up_ms + l->jitter_ms)
				: -1;
		break;
	case T_RANDOM:
		*from = f->start_ms;
		*to = f->start_ms + l->cycles * (l->max_down_ms + l->max_up_ms);
		break;
	default:
		*from = f->at_ms;
		*to = f->at_ms + 1;
	}
}

/* Flaps conflict with what else sets the same link's state; two one-shot
 * downs and ups do not. */
static bool link_conflict(const struct sc_fault *f, const struct sc_fault *g, char *why,
			  size_t len)
{
	bool shared = f->link_idx == g->link_idx && (f->type->cyclic || g->type->cyclic);

	if (shared)
		snprintf(why, len, " on link '%s' (their windows overlap)", f->link);
	return shared;
}

/* One outage: down, up, and the cycle's sample after the settle window. */
static int outage(struct fault_plan *p, uint64_t t, uint64_t down, uint64_t settle, int link,
		  unsigned cycle)
{
	int err = fault_plan_add(p, t, &fault_link, LINK_DOWN, link, cycle, 0);

	if (!err)
		err = fault_plan_add(p, t + down, &fault_link, LINK_UP, link, cycle, 0);
	if (!err)
		err = fault_plan_add(p, t + down + settle, NULL, FAULT_CYCLE_END, link, cycle, 0);
	return err;
}

static int link_plan(struct fault_plan *p, const struct sc_fault *f)
{
	const struct link_fault *l = (const struct link_fault *)f;
	uint64_t t = (uint64_t)f->start_ms;
	int err = 0;

	switch (f->type->code) {
	case T_FLAP:
		for (unsigned c = 0; !err && (!l->cycles || c < l->cycles); c++) {
			uint64_t at = t + c * (uint64_t)(l->down_ms + l->up_ms) +
				      (l->jitter_ms ? fault_plan_uniform(p, 0, l->jitter_ms) : 0);

			if (at >= p->horizon_ms)
				break;
			err = outage(p, at, (uint64_t)l->down_ms, (uint64_t)l->settle_ms,
				     f->link_idx, c + 1);
		}
		break;
	case T_RANDOM:
		for (unsigned c = 0; !err && c < l->cycles && t < p->horizon_ms; c++) {
			uint64_t down = fault_plan_uniform(p, l->min_down_ms, l->max_down_ms);
			uint64_t up = fault_plan_uniform(p, l->min_up_ms, l->max_up_ms);

			err = outage(p, t, down, (uint64_t)l->settle_ms, f->link_idx, c + 1);
			t += down + up;
		}
		break;
	case T_DOWN:
	case T_UP:
		err = fault_plan_add(p, (uint64_t)f->at_ms, &fault_link,
				     f->type->code == T_DOWN ? LINK_DOWN : LINK_UP, f->link_idx,
				     0, 0);
		break;
	}
	return err;
}

static int link_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	(void)now_ms;
	return topo__link_set(env->topo, a->target, a->act == LINK_UP);
}

const struct fault_family fault_link = {
	.name = "link",
	.types = link_types,
	.acts = link_acts,
	.n_acts = 2,
	.check = link_check,
	.span = link_span,
	.conflict = link_conflict,
	.plan = link_plan,
	.fire = link_fire,
};
