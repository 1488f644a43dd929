/* The run's fault timeline played on its timers: each action fired on the
 * run's links, workloads and cgroups, stamped in the report's timeline; a
 * fault whose mechanism the host lacks is listed as not applied. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cgroup.h"
#include "cpuhog.h"
#include "fault.h"
#include "log.h"
#include "probe_proc.h"
#include "run_priv.h"
#include "secfault.h"
#include "supervise.h"
#include "sysfault_user.h"
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

/* A syscall_error fault's rate on its workload's cgroup, or off. */
int run_syserr_set(struct run *r, const struct sc_fault *f, bool on)
{
	struct sysfault_conf c = {
		.ppm = on ? (__u32)(f->pct * (SYSFAULT_PPM / 100)) : 0,
		.err = f->err,
	};
	struct sysfault *sf = r->rw[f->wl_idx].sysfault;

	if (f->syscall != SECFAULT_SOCKET)
		return 0;	/* seccomp's, fixed since exec */
	if (!sf && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING)
		return -ENOTSUP;	/* listed as not applied at start */
	return sf ? sysfault__set(sf, &c) : -ENODEV;
}

/* The seccomp filter for workload @i's syscall errors other than socket():
 * prog->len stays 0 when it has none. 0 or -errno. */
int run_seccomp_filter(struct run *r, size_t i, struct sock_fprog *prog)
{
	struct secfault_rule rules[64];
	size_t n = 0;

	/* The scenario allows one fault per call and workload. */
	for (size_t f = 0; f < r->sc->n_faults && n < ARRAY_SIZE(rules); f++) {
		const struct sc_fault *sf = &r->sc->faults[f];

		if (sf->type == SC_F_SYSCALL_ERROR && sf->wl_idx == (int)i &&
		    sf->syscall != SECFAULT_SOCKET)
			rules[n++] = (struct secfault_rule){.call = sf->syscall, .err = sf->err};
	}
	return n ? secfault_build(rules, n, prog) : 0;
}

/* --- faults ------------------------------------------------------------------ */

int run_freeze(struct run *r, int wl, bool on)
{
	char path[PATH_MAX + 16];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.freeze", r->rw[wl].cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* Busy processes for cpu_hog fault @fault, in the run's cgroup so they go
 * with it whatever happens. */
static int hog_set(struct run *r, int fault, bool on)
{
	const struct sc_fault *f = &r->sc->faults[fault];
	char cg[RUN_PATH_MAX + 32];

	if (!r->hogs) {
		r->hogs = calloc(r->sc->n_faults, sizeof(*r->hogs));
		if (!r->hogs)
			return -ENOMEM;
	}
	cpuhog__stop(r->hogs[fault]);
	r->hogs[fault] = NULL;
	if (!on)
		return 0;
	snprintf(cg, sizeof(cg), "%s/hog%d", r->cgroup, fault);
	r->hogs[fault] = cpuhog__start(cg, f->cpus, f->n_cpus, (unsigned)f->threads);
	return r->hogs[fault] ? 0 : -errno;
}

void run_hogs_stop(struct run *r)
{
	for (size_t i = 0; r->hogs && i < r->sc->n_faults; i++)
		cpuhog__stop(r->hogs[i]);
	free(r->hogs);
	r->hogs = NULL;
}

/* --- one action ---------------------------------------------------------- */

static int act_link(struct run *r, const struct fault_action *a, uint64_t now)
{
	(void)now;
	return topo__link_set(r->topo, a->target, a->act == FA_LINK_UP);
}

static int act_link_window(struct run *r, const struct fault_action *a, uint64_t now)
{
	(void)now;
	return run_links_fire(r, a);
}

static int act_syserr(struct run *r, const struct fault_action *a, uint64_t now)
{
	(void)now;
	return run_syserr_set(r, &r->sc->faults[a->fault], a->act == FA_SYSERR_ON);
}

static int act_freeze(struct run *r, const struct fault_action *a, uint64_t now)
{
	(void)now;
	return run_freeze(r, a->target, a->act == FA_PAUSE);
}

static int act_hog(struct run *r, const struct fault_action *a, uint64_t now)
{
	(void)now;
	return hog_set(r, a->fault, a->act == FA_HOG_ON);
}

static int act_kill(struct run *r, const struct fault_action *a, uint64_t now)
{
	struct run_wl *rw = &r->rw[a->target];

	if (a->signo == SIGKILL || a->signo == SIGTERM)
		rw->kill_sent_ms = now;	/* faultd's doing */
	return rw->child ? sup__kill(rw->child, a->signo) : -ESRCH;
}

enum act_target { AT_LINK, AT_WORKLOAD, AT_CPUS };

/* Every action of the timeline: what it acts on (a link's actions name
 * its kernel interface in the report) and what carries it out. A new
 * action is a row here; one without a row fails with ENOSYS in the
 * timeline and the log, and never falls into another action's path. */
static const struct act_row {
	enum act_target target;
	int (*fn)(struct run *r, const struct fault_action *a, uint64_t now);
} act_rows[FA_COUNT] = {
	[FA_LINK_DOWN] = {AT_LINK, act_link},
	[FA_LINK_UP] = {AT_LINK, act_link},
	[FA_PAUSE] = {AT_WORKLOAD, act_freeze},
	[FA_RESUME] = {AT_WORKLOAD, act_freeze},
	[FA_KILL] = {AT_WORKLOAD, act_kill},
	[FA_PACKET_ON] = {AT_LINK, act_link_window},
	[FA_PACKET_OFF] = {AT_LINK, act_link_window},
	[FA_SYSERR_ON] = {AT_WORKLOAD, act_syserr},
	[FA_SYSERR_OFF] = {AT_WORKLOAD, act_syserr},
	[FA_RATE_ON] = {AT_LINK, act_link_window},
	[FA_RATE_OFF] = {AT_LINK, act_link_window},
	[FA_DELAY_ON] = {AT_LINK, act_link_window},
	[FA_DELAY_OFF] = {AT_LINK, act_link_window},
	[FA_HOG_ON] = {AT_CPUS, act_hog},
	[FA_HOG_OFF] = {AT_CPUS, act_hog},
	[FA_TCP_RESET_ON] = {AT_LINK, act_link_window},
	[FA_TCP_RESET_OFF] = {AT_LINK, act_link_window},
	[FA_HALF_OPEN_ON] = {AT_LINK, act_link_window},
	[FA_HALF_OPEN_OFF] = {AT_LINK, act_link_window},
};

static const char *act_target_name(const struct run *r, const struct fault_action *a,
				   enum act_target t)
{
	return t == AT_LINK ? r->sc->links[a->target].name :
	       t == AT_WORKLOAD ? r->sc->wl[a->target].name : "cpus";
}

static void fire(struct run *r, const struct fault_action *a, uint64_t now)
{
	const struct act_row *row = a->act >= 0 && a->act < FA_COUNT ? &act_rows[a->act] : NULL;
	const char *target = "";
	json_t *entry;
	int err;

	if (a->act == FA_CYCLE_END) {
		run_close_cycle(r, now);
		return;
	}
	if (row && row->fn) {
		target = act_target_name(r, a, row->target);
		err = row->fn(r, a, now);
	} else {
		err = -ENOSYS;
		log_err("%s: run %s: action %d has no handler", __func__, r->id, a->act);
	}
	entry = json_pack("{sIsIssssss}", "t_planned_ms", (json_int_t)a->t_ms,
			  "t_actual_ms", (json_int_t)now, "action", fault_act_name(a->act),
			  "target", target, "fault", scenario_fault_name(r->sc->faults[a->fault].type));
	if (entry) {
		if (a->cycle)
			json_object_set_new(entry, "cycle", json_integer(a->cycle));
		if (row && row->fn && row->target == AT_LINK)
			json_object_set_new(entry, "kernel_name",
					    json_string(topo__link_kernel_name(r->topo, a->target)));
		if (a->act == FA_KILL)
			json_object_set_new(entry, "signal", json_string(util_signame(a->signo)));
		if (err)
			json_object_set_new(entry, "error", json_string(strerror(-err)));
		json_array_append_new(r->obs.faults, entry);
	}
	log_info("%s: run %s: %s %s%s", __func__, r->id, fault_act_name(a->act), target,
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
	err = fault_plan(r->sc, (uint64_t)r->seed, (uint64_t)(r->sc->duration_s * 1000.0),
			 &r->plan, &r->n_plan);
	if (err)
		return err;
	r->fault_ev = evtimer_new(r->base, on_fault_timer, r);
	if (!r->fault_ev)
		return -ENOMEM;
	arm_faults(r);
	return 0;
}
