/* One workload's life in a run: started held in its cgroup with its
 * faults' set-up, its output times, its timeout and the SIGKILL after the
 * grace, its exit (the run stops when every workload has exited). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "fault_family.h"
#include "journal.h"
#include "log.h"
#include "probe_proc.h"
#include "run_priv.h"
#include "secfault.h"
#include "sup.h"
#include "topo.h"
#include "util.h"

bool run_wl_all_done(const struct run *r, bool services_too)
{
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		const struct obs_workload *w = &r->obs.wl[i];

		if (!services_too && w->sc->service)
			continue;
		if (w->started && !w->exited)
			return false;
	}
	return true;
}

static void on_wl_exit(struct sup_child *c, int status, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = run_ms(r);
	struct obs_workload *w = NULL;
	struct obs_proc *p;
	size_t i;

	for (i = 0; i < r->sc->n_wl; i++)
		if (r->rw[i].child == c) {
			w = &r->obs.wl[i];
			break;
		}
	if (!w)
		return;
	w->exited = true;
	w->t_exit_ms = t_ms;
	util_wait_status(status, &w->exit_status, &w->signal, &w->core);
	/* The probe normally reports the root's exit first; if it has not,
	 * record it from the wait status so no exit goes unseen. */
	p = run_proc_find(r, w->pid);
	if (p)
		run_proc_set_exit(r, p, status, t_ms);
	if (w->signal)
		log_info("%s: run %s: workload '%s' (pid %d) killed by %s", __func__,
			 r->id, w->sc->name, (int)w->pid, util_signame(w->signal));
	else
		log_info("%s: run %s: workload '%s' (pid %d) exited %d", __func__,
			 r->id, w->sc->name, (int)w->pid, w->exit_status);
	run_publish(r);
	if (r->state == RUN_RUNNING && run_wl_all_done(r, false))
		run_begin_stop(r, run_wl_all_done(r, true) ? "every workload exited"
						 : "every non-service workload exited");
}

#define RUN_OUTPUT_GRAIN_MS 100	/* output times kept this far apart */

/* Output is the plainest sign of progress: recovers looks for it after a
 * link comes back. */
static void on_wl_output(void *arg, size_t bytes)
{
	struct run_wl *rw = arg;
	struct obs_workload *w = &rw->run->obs.wl[rw->idx];
	uint64_t t = run_ms(rw->run), *grown;

	(void)bytes;
	if (w->n_out_times && t < w->out_times[w->n_out_times - 1] + RUN_OUTPUT_GRAIN_MS)
		return;
	grown = util_grow(w->out_times, &w->cap_out_times, w->n_out_times + 1, sizeof(*grown));
	if (!grown)
		return;
	w->out_times = grown;
	w->out_times[w->n_out_times++] = t;
}

void run_wl_on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;

	(void)fd;
	(void)what;
	if (!run_leak_defer_kill(r, rw->kill_ev, rw->fw->kill_sent_ms +
				 (uint64_t)r->obs.wl[rw->idx].sc->stop_grace_ms + RUN_REAP_EXTRA_MS))
		cgroup_kill(rw->cgroup);
}

static void on_wl_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	struct obs_workload *w = &r->obs.wl[rw->idx];
	struct timeval grace = {
		.tv_sec = w->sc->stop_grace_ms / 1000,
		.tv_usec = (w->sc->stop_grace_ms % 1000) * 1000,
	};

	(void)fd;
	(void)what;
	if (r->state != RUN_RUNNING || w->exited)
		return;
	/* As the run's stop does: a process of the tree held at _exit for its
	 * scan is let go first (ended now, a parent whose child leads a group
	 * of its own would leave it, stopped, a SIGHUP, and its scan void),
	 * not longer than the kill would wait. */
	if (run_leak_defer_kill(r, rw->timeout_ev, w->t_start_ms +
				(uint64_t)(w->sc->timeout_s * 1000) + RUN_REAP_EXTRA_MS))
		return;
	log_warn("%s: run %s: workload '%s' ran past timeout_s=%g; stopping it",
		 __func__, r->id, w->sc->name, w->sc->timeout_s);
	w->timed_out = true;
	rw->fw->kill_sent_ms = run_ms(r);
	sup__kill(rw->child, SIGTERM);
	evtimer_add(rw->kill_ev, &grace);
}

int run_wl_start(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct obs_workload *ow = &r->obs.wl[i];
	struct run_wl *rw = &r->rw[i];
	struct sup_spec spec = {0};
	struct sock_fprog filter = {0};
	int err;

	snprintf(rw->cgroup, sizeof(rw->cgroup), "%s/%s", r->cgroup, w->name);
	snprintf(rw->out_path, sizeof(rw->out_path), "%s/%s.stdout", r->dir, w->name);
	snprintf(rw->err_path, sizeof(rw->err_path), "%s/%s.stderr", r->dir, w->name);
	err = cgroup_create(rw->cgroup);
	if (err) {
		run_error(r, "workload '%s': cgroup %s: %s", w->name, rw->cgroup,
			  strerror(-err));
		return err;
	}
	if (w->kind == WL_DPDK_CLIENT) {
		char dir[PATH_MAX];

		snprintf(rw->dpdk_prefix, sizeof(rw->dpdk_prefix), "fd%s-%s", r->id, w->name);
		snprintf(dir, sizeof(dir), "%s/%s", JOURNAL_DPDK_DIR, rw->dpdk_prefix);
		err = r->journal ? journal__add(r->journal, "dpdkdir", dir) : -EINVAL;
		if (err) {
			run_error(r, "workload '%s': cannot journal %s: %s", w->name, dir,
				  strerror(-err));
			return err;
		}
	}
	err = run_argv_build(r, i);
	if (!err)
		err = run_env_build(r, i);
	if (err) {
		run_error(r, "workload '%s': %s", w->name, strerror(-err));
		return err;
	}
	err = fault_families_workload(&r->fenv, i, &filter);
	if (err) {
		run_error(r, "workload '%s': cannot set up its faults: %s", w->name,
			  strerror(-err));
		secfault_free(&filter);
		return err;
	}
	spec.name = w->name;
	spec.argv = rw->argv;
	spec.env_extra = (const char *const *)rw->env;
	spec.cwd = w->cwd;
	spec.cgroup = rw->cgroup;
	spec.out_path = rw->out_path;
	spec.err_path = rw->err_path;
	spec.out_max = (size_t)w->output_max_kb * 1024;
	spec.on_output = on_wl_output;
	spec.output_arg = rw;
	if (w->netns)
		spec.netns = topo__ns_path(r->topo, scenario_ns_idx(r->sc, w->netns));
	spec.seccomp = filter.len ? &filter : NULL;
	spec.cpus = w->cpus.cpu;
	spec.n_cpus = w->cpus.n;
	spec.nice = r->nice_timing;
	err = sup__spawn(r->base, &spec, on_wl_exit, r, &rw->child);
	secfault_free(&filter);	/* the child has its copy */
	if (err) {
		run_error(r, "workload '%s': cannot start: %s", w->name, strerror(-err));
		return err;
	}
	if (spec.seccomp)
		caps_set_ok(CAPS_SYSCALL_SECCOMP, "seccomp SECCOMP_RET_ERRNO");
	ow->pid = sup__pid(rw->child);
	ow->started = true;
	rw->fw->child = rw->child;
	rw->fw->started = true;
	ow->t_start_ms = run_ms(r);
	if (!run_proc_add(r, ow->pid, getpid(), (int)i, w->name, ow->t_start_ms))
		return -ENOMEM;
	/* Probes attach to the held child before it runs anything. */
	if (r->proc) {
		err = probe_proc__track(r->proc, ow->pid);
		if (err) {
			log_warn("%s: run %s: process probe cannot track pid %d: %s",
				 __func__, r->id, (int)ow->pid, strerror(-err));
			r->obs.proc_lost++;
		}
	}
	err = run_probes_attach(r, i);
	if (err) {
		run_error(r, "workload '%s': cannot attach its probes: %s", w->name,
			  strerror(-err));
		return err;
	}
	return 0;
}

int run_wl_release(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct obs_workload *ow = &r->obs.wl[i];
	struct run_wl *rw = &r->rw[i];
	struct obs_proc *p = run_proc_find(r, ow->pid);
	int err;

	ow->t_start_ms = run_ms(r);
	if (p)
		p->t_start_ms = ow->t_start_ms;
	err = sup__release(rw->child);
	if (err) {
		run_error(r, "workload '%s': cannot run '%s': %s", w->name, rw->argv[0],
			  strerror(-err));
		return err;
	}
	log_info("%s: run %s: workload '%s' started, pid %d", __func__, r->id, w->name,
		 (int)ow->pid);
	if (w->timeout_s > 0) {
		struct timeval tv = {
			.tv_sec = (time_t)w->timeout_s,
			.tv_usec = (suseconds_t)((w->timeout_s - (double)(time_t)w->timeout_s) * 1e6),
		};
		rw->timeout_ev = evtimer_new(r->base, on_wl_timeout, rw);
		if (!rw->timeout_ev || evtimer_add(rw->timeout_ev, &tv) < 0)
			return -ENOMEM;
	}
	return 0;
}

