/* The run's process bookkeeping: every process of the workload trees, from
 * the process probe's fork, exec, exit and crash events and from the
 * supervisor's reaps; the evidence no_crash and the report read. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "probe_proc.h"
#include "run_priv.h"
#include "sym.h"
#include "util.h"

/* --- process bookkeeping --------------------------------------------------- */

struct obs_proc *run_proc_find(struct run *r, pid_t pid)
{
	/* Newest first: a pid reused within a run refers to the live one. */
	for (size_t i = r->obs.n_procs; i-- > 0;)
		if (r->obs.procs[i].pid == pid && !r->obs.procs[i].exited)
			return &r->obs.procs[i];
	return NULL;
}

struct obs_proc *run_proc_add(struct run *r, pid_t pid, pid_t ppid, int wl,
				 const char *comm, uint64_t t_ms)
{
	struct obs_proc *p;

	p = util_grow(r->obs.procs, &r->cap_procs, r->obs.n_procs + 1, sizeof(*p));
	if (!p)
		return NULL;
	r->obs.procs = p;
	p = &r->obs.procs[r->obs.n_procs++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	p->workload = wl;
	p->t_start_ms = t_ms;
	snprintf(p->comm, sizeof(p->comm), "%s", comm);
	r->procs_seen++;
	return p;
}

/* Keep evidence bounded in long runs: once more than RUN_MAX_KEPT_PROCS are
 * kept, processes that exited normally and are not a workload's root are
 * dropped (they are still counted in procs_seen). Short runs keep every
 * process, so a crash's ancestry can be shown. */
static void procs_compact(struct run *r)
{
	size_t kept = 0;

	if (r->obs.n_procs <= RUN_MAX_KEPT_PROCS)
		return;
	for (size_t i = 0; i < r->obs.n_procs; i++) {
		struct obs_proc *p = &r->obs.procs[i];

		if (p->exited && !p->signal && p->pid != r->obs.wl[p->workload].pid)
			continue;
		r->obs.procs[kept++] = *p;
	}
	if (kept > RUN_MAX_KEPT_PROCS)
		r->obs.proc_lost += kept - RUN_MAX_KEPT_PROCS;	/* evidence dropped */
	r->obs.n_procs = kept > RUN_MAX_KEPT_PROCS ? RUN_MAX_KEPT_PROCS : kept;
}

void run_proc_set_exit(struct run *r, struct obs_proc *p, int status, uint64_t t_ms)
{
	const struct run_wl *rw = &r->rw[p->workload];

	p->exited = true;
	p->t_exit_ms = t_ms;
	util_wait_status(status, &p->exit_status, &p->signal, &p->core);
	/* A death by the signals faultd sends, after it sent them, is faultd's
	 * doing, not a crash. */
	if ((p->signal == SIGTERM || p->signal == SIGKILL) && !p->oom_killed &&
	    (t_ms >= r->stop_at_ms || t_ms >= rw->fw->kill_sent_ms))
		p->by_faultd = true;
}

_Static_assert(RUN_SYM_FRAMES >= PROC_MAX_FRAMES, "a crash's frames fit a job");

/* A crash, named (run_sym.c): to the evidence, in the order of the crashes. */
static void crash_named(struct run *r, struct run_sym_job *j)
{
	json_array_append_new(r->obs.crashes, j->found);
	j->found = NULL;
}

/* A tracked thread is dying of a signal: its stack, named off the loop from
 * the maps snapshot (the process may be gone by the time that is done). */
static void crash_stack(struct run *r, const struct proc_ev *ev, uint64_t t_ms)
{
	char addr[32];
	struct run_sym_job *j;
	json_t *c;

	uint64_t frames[PROC_MAX_FRAMES];
	int n = 0;

	if (!r->obs.crashes || r->crashes_listed >= RUN_MAX_LISTED_CRASHES)
		return;
	/* Frame-pointer unwinding through code built without them (glibc's
	 * abort path) repeats one bogus address: keep it once. */
	for (int i = 0; i < ev->n_frames && i < PROC_MAX_FRAMES; i++) {
		if (n && frames[n - 1] == ev->frames[i])
			continue;
		frames[n++] = ev->frames[i];
		/* The leaf's caller goes right after the faulting IP. */
		if (n == 1 && ev->leaf_caller && n < PROC_MAX_FRAMES &&
		    (ev->n_frames < 2 || ev->frames[1] != ev->leaf_caller))
			frames[n++] = ev->leaf_caller;
	}
	snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)ev->addr);
	c = json_pack("{sisisssssI}", "pid", (int)ev->pid, "tid", (int)ev->tid,
		      "comm", ev->comm, "signal", util_signame((int)ev->signo),
		      "at_ms", (json_int_t)t_ms);
	j = c ? run_sym_job_new(r, (pid_t)ev->pid, sizeof(*j), crash_named) : NULL;
	if (!j) {
		json_decref(c);
		log_warn("%s: run %s: pid %u: out of memory; its crash is not listed", __func__,
			 r->id, ev->pid);
		return;
	}
	run_sym_stack(j, c, "backtrace", frames, n, true);
	if (ev->signo == SIGSEGV || ev->signo == SIGBUS || ev->signo == SIGFPE ||
	    ev->signo == SIGILL)
		json_object_set_new(c, "fault_address", json_string(addr));
	j->found = c;
	j->forget = true;	/* named: the process is on its way out */
	r->crashes_listed++;
	run_sym_post(r, j);
}

void run_on_proc_event(const struct proc_ev *ev, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = ev->ts_ns > r->t0_ns ? (ev->ts_ns - r->t0_ns) / 1000000ull : 0;
	struct obs_proc *p, *parent;

	switch (ev->type) {
	case PROC_EV_FORK:
		parent = run_proc_find(r, (pid_t)ev->ppid);
		if (!parent) {
			log_debug("%s: fork of untracked parent %u", __func__, ev->ppid);
			break;
		}
		if (!run_proc_add(r, (pid_t)ev->pid, (pid_t)ev->ppid, parent->workload,
			      ev->comm, t_ms)) {
			r->obs.proc_lost++;
			break;
		}
		run_probes_fork(r, (size_t)r->obs.procs[r->obs.n_procs - 1].workload,
				(pid_t)ev->pid, (pid_t)ev->ppid);
		break;
	case PROC_EV_EXEC:
		p = run_proc_find(r, (pid_t)ev->pid);
		if (p) {
			snprintf(p->comm, sizeof(p->comm), "%s", ev->comm);
			run_probes_exec(r, (size_t)p->workload, p->pid);
		}
		sym__snapshot(r->sym, (pid_t)ev->pid);
		if (r->snapshot_ev) {
			struct timeval tv = {.tv_usec = 200 * 1000};

			evtimer_add(r->snapshot_ev, &tv);
		}
		break;
	case PROC_EV_CRASH:
		crash_stack(r, ev, t_ms);
		break;
	case PROC_EV_EXIT:
		p = run_proc_find(r, (pid_t)ev->pid);
		if (!p)
			break;
		snprintf(p->comm, sizeof(p->comm), "%s", ev->comm);
		run_probes_exit(r, (size_t)p->workload, p->pid);
		run_proc_set_exit(r, p, ev->exit_code, t_ms);
		if ((ev->flags & PROC_EXIT_OOM) && p->signal == SIGKILL) {
			p->oom_killed = true;
			p->by_faultd = false;
		}
		if (p->signal && !p->by_faultd)
			log_info("%s: run %s: pid %d (%s) of '%s' killed by %s", __func__,
				 r->id, (int)p->pid, p->comm, r->sc->wl[p->workload].name,
				 util_signame(p->signal));
		procs_compact(r);
		break;
	}
}
