/* The run's faults: the fault families lent what they need of the run
 * (struct fault_env), the timeline played on the run's timer, each action
 * stamped in the report's timeline; a fault whose mechanism the host lacks
 * is listed as not applied. What a fault does is its family's
 * (daemon/fault/fault_<family>.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "fault.h"
#include "fault_sched.h"
#include "fault_family.h"
#include "log.h"
#include "probe_proc.h"
#include "run_priv.h"
#include "topo.h"
#include "util.h"

void run_not_applied(struct run *r, const char *what, enum caps_id cap)
{
	json_t *row;

	if (!r->obs.not_applied)
		r->obs.not_applied = json_array();
	row = json_pack("{ssss}", "fault", what, "why", caps_why(cap));
	if (row)
		json_array_append_new(r->obs.not_applied, row);
	log_warn("%s: run %s: %s is not applied: this host lacks %s", __func__, r->id, what,
		 caps_name(cap));
}

static void on_not_applied(void *arg, const char *what, enum caps_id cap)
{
	run_not_applied(arg, what, cap);
}

int run_faults_init(struct run *r)
{
	struct fault_env *env = &r->fenv;

	env->wl = calloc(r->sc->n_wl + 1, sizeof(*env->wl));
	if (!env->wl)
		return -ENOMEM;
	env->run_id = r->id;
	env->sc = r->sc;
	env->base = r->base;
	env->cgroup = r->cgroup;
	env->not_applied = on_not_applied;
	env->arg = r;
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		env->wl[i].cgroup = r->rw[i].cgroup;
		env->wl[i].kill_sent_ms = UINT64_MAX;
		r->rw[i].fw = &env->wl[i];
	}
	return 0;
}

int run_faults_attach(struct run *r)
{
	r->fenv.topo = r->topo;
	r->fenv.seed = (unsigned long long)r->seed;
	return fault_families_attach(&r->fenv);
}

/* After teardown_network, which detached the families. */
void run_faults_free(struct run *r)
{
	free(r->fenv.wl);
	r->fenv.wl = NULL;
}

/* --- the timeline ------------------------------------------------------ */

static const char *target_name(const struct run *r, const struct fault_action *a,
			       enum fault_target t)
{
	return t == FAULT_ON_LINK ? r->sc->links[a->target].name :
	       t == FAULT_ON_WORKLOAD ? r->sc->wl[a->target].name : "cpus";
}

static void fire(struct run *r, const struct fault_action *a, uint64_t now)
{
	const struct fault_act_def *def = a->family && a->act >= 0 &&
					  a->act < a->family->n_acts ? &a->family->acts[a->act]
								     : NULL;
	const char *target = def ? target_name(r, a, def->target) : "";
	uint64_t t_ns;
	json_t *entry;
	int err;

	if (a->act == FAULT_CYCLE_END) {
		run_close_cycle(r, now);
		return;
	}
	t_ns = util_now_ns();
	err = fault_fire(&r->fenv, a, now);
	/* How long the kernel took: a link set down waits for an RCU grace
	 * period under the rtnl lock, which a loaded host can stretch to
	 * tens of ms, and the next action waits for it. */
	t_ns = util_now_ns() - t_ns;
	entry = json_pack("{sIsIsIssssss}", "t_planned_ms", (json_int_t)a->t_ms,
			  "t_actual_ms", (json_int_t)now, "apply_ms", (json_int_t)(t_ns / 1000000),
			  "action", fault_act_name(a), "target", target,
			  "fault", r->sc->faults[a->fault]->type->name);
	if (entry) {
		if (a->cycle)
			json_object_set_new(entry, "cycle", json_integer(a->cycle));
		if (def && def->target == FAULT_ON_LINK)
			json_object_set_new(entry, "kernel_name",
					    json_string(topo__link_kernel_name(r->topo, a->target)));
		if (a->signo)
			json_object_set_new(entry, "signal", json_string(util_signame(a->signo)));
		if (err)
			json_object_set_new(entry, "error", json_string(strerror(-err)));
		json_array_append_new(r->obs.faults, entry);
	}
	run_publish(r);
	log_info("%s: run %s: %s %s%s", __func__, r->id, fault_act_name(a), target,
		 err ? " failed" : "");
}

static void arm_faults(struct run *r)
{
	uint64_t now = run_ms(r), at;
	struct timeval tv;

	if (r->next_action >= r->n_plan)
		return;
	at = r->plan[r->next_action].t_ms;
	at = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(at / 1000);
	tv.tv_usec = (suseconds_t)(at % 1000) * 1000;
	evtimer_add(r->fault_ev, &tv);
}

static void on_fault_timer(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	uint64_t now = run_ms(r);

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	run_probes_drain(r);
	/* libevent may wake a little early by our clock; what is due within
	 * a millisecond fires now. */
	while (r->state == RUN_RUNNING && r->next_action < r->n_plan &&
	       r->plan[r->next_action].t_ms <= now + 1)
		fire(r, &r->plan[r->next_action++], run_ms(r));
	if (r->state == RUN_RUNNING)
		arm_faults(r);
}

/* Plan the timeline from the seed and start playing it. */
int run_faults_start(struct run *r)
{
	int err;

	r->cyclic = scenario_has_cyclic_fault(r->sc);
	err = fault_sched_timeline(r->sc, (uint64_t)r->seed,
				   (uint64_t)(r->sc->duration_s * 1000.0), &r->plan, &r->n_plan);
	if (err)
		return err;
	r->fault_ev = evtimer_new(r->base, on_fault_timer, r);
	if (!r->fault_ev)
		return -ENOMEM;
	arm_faults(r);
	return 0;
}
