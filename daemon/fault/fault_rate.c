/* The rate family: a bandwidth limit on one or both directions of a link,
 * in a window. The mechanism is a tbf root qdisc (netrate.c); a qdisc
 * shapes what leaves, so ingress at a is shaped at b's egress. */
#include <errno.h>
#include <stdio.h>

#include "fault_window.h"
#include "netrate.h"
#include "topo.h"

struct rate_fault {
	struct sc_fault f;
	long long rate_kbit;
	long long burst_kb;		/* 0: picked from the rate */
	long long latency_ms;		/* the longest a packet may queue */
};

#define RT(field) offsetof(struct rate_fault, field)
static const struct sc_key rate_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_LINK, FAULT_KEYS_WINDOW, FAULT_KEY_DIR,
	{"rate_kbit", SC_INT, SC_REQ, RT(rate_kbit), 8, 10000000, .doc = "bandwidth, kbit/s"},
	{"burst_kb", SC_INT, 0, RT(burst_kb), 0, 1048576, .def = "0",
	 .doc = "bucket size; 0: 10 ms at the rate, at least 4 KiB"},
	{"latency_ms", SC_INT, 0, RT(latency_ms), 1, 60000, .def = "100",
	 .doc = "longest a packet may wait before it is dropped"},
	{NULL},
};

enum { RATE_ON, RATE_OFF };
static const struct fault_act_def rate_acts[] = {
	[RATE_ON] = {"rate_on", false, FAULT_ON_LINK},
	[RATE_OFF] = {"rate_off", true, FAULT_ON_LINK},
};

const struct fault_family fault_rate;
static const struct fault_type rate_types[] = {
	{"rate", &fault_rate, 0, rate_keys, sizeof(struct rate_fault), false},
	{NULL},
};

static int rate_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	/* A qdisc shapes what leaves; a tap's far side is not ours. */
	if (sc->links[f->link_idx].type == SC_LINK_TAP && f->direction != SC_DIR_EGRESS) {
		e->key = "direction";
		snprintf(e->msg, sizeof(e->msg), "a rate on tap '%s' can only be \"egress\" "
			 "(toward the workload's stack)", f->link);
		return -EINVAL;
	}
	return 0;
}

static int rate_open(struct fault_env *env, const struct sc_fault *f, int dir, void **inst)
{
	const char *ns = topo__link_a_ns(env->topo, f->link_idx);
	const char *ifname = topo__link_kernel_name(env->topo, f->link_idx);

	if (dir == FAULT_DIR_IN) {
		ns = topo__link_b_ns(env->topo, f->link_idx);
		ifname = topo__link_b_name(env->topo, f->link_idx);
	}
	if (!ns)
		return -EINVAL;
	*inst = netrate__open(ns, ifname);
	return *inst ? 0 : -errno;
}

static int rate_set(const struct sc_fault *f, void *inst, bool on)
{
	const struct rate_fault *r = (const struct rate_fault *)f;
	/* 10 ms at the rate makes a bucket that neither bursts far past the
	 * limit nor starves a full-size frame. */
	unsigned long long burst = r->burst_kb ? (unsigned long long)r->burst_kb * 1024 :
				   (unsigned long long)r->rate_kbit * 1000 / 8 / 100;

	if (burst < 4096)
		burst = 4096;
	return netrate__set(inst, on ? (unsigned)r->rate_kbit : 0, (unsigned)burst,
			    (unsigned)r->latency_ms);
}

static void rate_close(void *inst)
{
	netrate__close(inst);
}

static const struct fault_window_ops rate_ops = {
	.cap = CAPS_RATE,
	.open = rate_open,
	.set = rate_set,
	.close = rate_close,
};

static int rate_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_rate, RATE_ON, f->link_idx);
}

static int rate_attach(struct fault_env *env)
{
	return fault_window_attach(env, &fault_rate, &rate_ops);
}

static int rate_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	(void)now_ms;
	return fault_window_fire(env, &fault_rate, &rate_ops, a);
}

static void rate_detach(struct fault_env *env)
{
	fault_window_detach(env, &fault_rate, &rate_ops);
}

const struct fault_family fault_rate = {
	.name = "rate",
	.types = rate_types,
	.acts = rate_acts,
	.n_acts = 2,
	.check = rate_check,
	.span = fault_window_span,
	.conflict = fault_window_conflict,
	.plan = rate_plan,
	.attach = rate_attach,
	.fire = rate_fire,
	.detach = rate_detach,
};
