/* The delay family: added latency, with uniform jitter, on one or both
 * directions of a link, in a window. The mechanism is netdelay.c: netem
 * where the kernel has it, else NFQUEUE with a verdict loop. */
#include <errno.h>
#include <stdio.h>

#include "fault_window.h"
#include "netdelay.h"
#include "topo.h"

struct delay_fault {
	struct sc_fault f;
	long long delay_ms, jitter_ms;
};

#define DL(field) offsetof(struct delay_fault, field)
static const struct sc_key delay_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW, FAULT_KEY_DIR,
	{"delay_ms", SC_INT, SC_REQ, DL(delay_ms), 0, 60000, .doc = "added latency"},
	{"jitter_ms", SC_INT, 0, DL(jitter_ms), 0, 60000, .def = "0",
	 .doc = "each packet's delay varies uniformly by up to this"},
	{NULL},
};

enum { DELAY_ON, DELAY_OFF };
static const struct fault_act_def delay_acts[] = {
	[DELAY_ON] = {"delay_on", false, FAULT_ON_LINK},
	[DELAY_OFF] = {"delay_off", true, FAULT_ON_LINK},
};

const struct fault_family fault_delay;
extern const struct fault_family fault_rate;
static const struct fault_type delay_types[] = {
	{"delay", &fault_delay, 0, delay_keys, sizeof(struct delay_fault), false},
	{NULL},
};

static int delay_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	const struct delay_fault *d = (const struct delay_fault *)f;

	(void)sc;
	if (d->jitter_ms > d->delay_ms) {
		e->key = "jitter_ms";
		snprintf(e->msg, sizeof(e->msg), "%lld is larger than delay_ms (%lld)",
			 d->jitter_ms, d->delay_ms);
		return -EINVAL;
	}
	return 0;
}

/* Is a rate limit ever on this link and direction? Its tbf is then the
 * root qdisc where a netem would go, so the delay keeps to NFQUEUE (a
 * netem under the tbf, or the other way round, would have to be rebuilt
 * whenever either changes, and rate 0 removes the tbf). */
static bool rate_limited(const struct scenario *sc, int link, int dir)
{
	bool found = false;

	for (size_t i = 0; i < sc->n_faults && !found; i++) {
		const struct sc_fault *f = sc->faults[i];

		found = fault_is(f, &fault_rate) && f->link_idx == link &&
			fault_window_covers(f, dir);
	}
	return found;
}

static int delay_open(struct fault_env *env, const struct sc_fault *f, int dir, void **inst)
{
	struct netdelay_where w = {
		.netns_path = topo__link_a_ns(env->topo, f->link_idx),
		.ifname = topo__link_kernel_name(env->topo, f->link_idx),
		.peer_netns_path = topo__link_b_ns(env->topo, f->link_idx),
		.peer_ifname = topo__link_b_name(env->topo, f->link_idx),
		.rate_limited = rate_limited(env->sc, f->link_idx, dir),
	};
	unsigned slot = (unsigned)f->link_idx * 2 + (unsigned)dir;

	/* Queue numbers are per namespace; one per link end and direction. */
	return netdelay__open(env->base, &w, dir == FAULT_DIR_IN ? NETDELAY_INGRESS :
			      NETDELAY_EGRESS, slot, env->seed + slot,
			      (struct netdelay **)inst);
}

static int delay_set(const struct sc_fault *f, void *inst, bool on)
{
	const struct delay_fault *d = (const struct delay_fault *)f;

	return netdelay__set(inst, on ? (unsigned)d->delay_ms : 0,
			     on ? (unsigned)d->jitter_ms : 0);
}

static void delay_close(void *inst)
{
	netdelay__close(inst);
}

static const struct fault_window_ops delay_ops = {
	CAPS_DELAY, delay_open, delay_set, delay_close,
};

static int delay_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_delay, DELAY_ON, f->link_idx);
}

static int delay_attach(struct fault_env *env)
{
	return fault_window_attach(env, &fault_delay, &delay_ops);
}

static int delay_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	(void)now_ms;
	return fault_window_fire(env, &fault_delay, &delay_ops, a);
}

static void delay_stats(struct fault_env *env, struct fault_stats *out)
{
	for (size_t l = 0; l < env->sc->n_links; l++)
		for (int dir = FAULT_DIR_IN; dir <= FAULT_DIR_OUT; dir++) {
			struct netdelay *d = fault_window_get(env, &fault_delay, l, dir);
			unsigned long long q, rel, drop;

			if (!d)
				continue;
			netdelay__stats(d, &q, &rel, &drop);
			json_object_set_new(fault_stats_link(out, env->sc->links[l].name,
							     fault_window_dir_name(dir)),
					    "delay", json_pack("{sssIsIsIsI}",
					"via", netdelay__via(d), "queued", (json_int_t)q,
					"released", (json_int_t)rel, "dropped", (json_int_t)drop,
					"overflow", (json_int_t)netdelay__overflows(d)));
		}
}

static void delay_detach(struct fault_env *env)
{
	fault_window_detach(env, &fault_delay, &delay_ops);
}

const struct fault_family fault_delay = {
	.name = "delay",
	.types = delay_types,
	.acts = delay_acts,
	.n_acts = 2,
	.check = delay_check,
	.span = fault_window_span,
	.conflict = fault_window_conflict,
	.plan = delay_plan,
	.attach = delay_attach,
	.fire = delay_fire,
	.stats = delay_stats,
	.detach = delay_detach,
};
