#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "journal.h"
#include "secfault.h"
#include "sysfault_user.h"
#include "inv.h"
#include "log.h"
#include "probe_proc.h"
#include "report.h"
#include "run.h"
#include "run_priv.h"
#include "supervise.h"
#include "sym.h"
#include "topo.h"
#include "util.h"

uint64_t run_ms(const struct run *r)
{
	return (util_now_ns() - r->t0_ns) / 1000000ull;
}

static void begin_stop(struct run *r, const char *reason);

void run_error(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->error[0])
		return;	/* the first error is the cause */
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	log_err("%s: run %s: %s", __func__, r->id, r->error);
}

const char *run__state_name(enum run_state s)
{
	static const char *const names[] = {"queued", "starting", "running",
					    "stopping", "done"};

	return s <= RUN_DONE ? names[s] : "?";
}

/* --- cycles ----------------------------------------------------------------- */

#define RUN_SNAPSHOT_PROCS 32	/* live processes whose maps are kept fresh */

/* Maps of the live processes, so a crash reported after the process is gone
 * can still be named: at exec (the program itself), shortly after each
 * start (its libraries) and at every cycle's end. */
static void snapshot_maps(struct run *r)
{
	size_t n = 0;

	for (size_t i = r->obs.n_procs; i-- > 0 && n < RUN_SNAPSHOT_PROCS;) {
		if (r->obs.procs[i].exited)
			continue;
		sym__snapshot(r->sym, r->obs.procs[i].pid);
		n++;
	}
}

static void on_snapshot(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	snapshot_maps(arg);
}

void run_close_cycle(struct run *r, uint64_t now_ms)
{
	struct obs_cycle *c;
	json_t *j;

	snapshot_maps(r);
	if (r->obs.n_cycles == r->cap_cycles) {
		size_t cap = r->cap_cycles ? r->cap_cycles * 2 : 64;
		struct obs_cycle *grown = realloc(r->obs.cycles, cap * sizeof(*grown));
		struct obs_sample *rows;

		if (!grown) {
			log_warn("%s: run %s: out of memory for cycles", __func__, r->id);
			return;
		}
		r->obs.cycles = grown;
		rows = realloc(r->obs.samples, cap * r->sc->n_wl * sizeof(*rows));
		if (!rows) {
			log_warn("%s: run %s: out of memory for samples", __func__, r->id);
			return;
		}
		r->obs.samples = rows;
		r->cap_cycles = cap;
	}
	memset(&r->obs.samples[r->obs.n_cycles * r->sc->n_wl], 0,
	       r->sc->n_wl * sizeof(*r->obs.samples));
	c = &r->obs.cycles[r->obs.n_cycles++];
	memset(c, 0, sizeof(*c));
	c->n = (unsigned)r->obs.n_cycles;
	c->t_start_ms = r->cycle_start_ms;
	c->t_end_ms = now_ms;
	for (size_t i = 0; i < r->obs.n_procs; i++)
		c->procs += !r->obs.procs[i].exited;
	for (size_t i = 0; i < r->sc->n_wl; i++)
		if (r->obs.wl[i].started && !r->obs.wl[i].exited)
			c->rss_kb += util_rss_bytes(r->obs.wl[i].pid) / 1024;
	r->cycle_start_ms = now_ms;
	run_probes_sample(r, r->obs.n_cycles - 1);
	if (!r->opts.on_cycle)
		return;
	j = json_pack("{sssIsIsIsIsIso}", "run_id", r->id, "cycle", (json_int_t)c->n,
		      "t_start_ms", (json_int_t)c->t_start_ms,
		      "t_end_ms", (json_int_t)c->t_end_ms,
		      "procs", (json_int_t)c->procs, "rss_kb", (json_int_t)c->rss_kb,
		      "workloads", report_cycle_workloads(&r->obs, r->obs.n_cycles - 1));
	if (j)
		r->opts.on_cycle(r, j, r->opts.arg);
	json_decref(j);
}

static void on_cycle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	run_probes_drain(r);
	run_close_cycle(r, run_ms(r));
}

/* --- workloads ------------------------------------------------------------- */

static bool all_done(const struct run *r, bool services_too)
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
	if (r->state == RUN_RUNNING && all_done(r, false))
		begin_stop(r, all_done(r, true) ? "every workload exited"
						 : "every non-service workload exited");
}

#define RUN_OUTPUT_GRAIN_MS 100	/* output times kept this far apart */

/* Output is the plainest sign of progress: recovers looks for it after a
 * link comes back. */
static void on_wl_output(void *arg, size_t bytes)
{
	struct run_wl *rw = arg;
	struct obs_workload *w = &rw->run->obs.wl[rw->idx];
	uint64_t t = run_ms(rw->run);

	(void)bytes;
	if (w->n_out_times && t < w->out_times[w->n_out_times - 1] + RUN_OUTPUT_GRAIN_MS)
		return;
	if (w->n_out_times == w->cap_out_times) {
		size_t cap = w->cap_out_times ? w->cap_out_times * 2 : 256;
		uint64_t *grown = realloc(w->out_times, cap * sizeof(*grown));

		if (!grown)
			return;
		w->out_times = grown;
		w->cap_out_times = cap;
	}
	w->out_times[w->n_out_times++] = t;
}

static void on_wl_kill(evutil_socket_t fd, short what, void *arg)
{
	struct run_wl *rw = arg;

	(void)fd;
	(void)what;
	cg_kill(rw->cgroup);
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
	log_warn("%s: run %s: workload '%s' ran past timeout_s=%g; stopping it",
		 __func__, r->id, w->sc->name, w->sc->timeout_s);
	w->timed_out = true;
	rw->kill_sent_ms = run_ms(r);
	sup__kill(rw->child, SIGTERM);
	evtimer_add(rw->kill_ev, &grace);
}

static int start_workload(struct run *r, size_t i)
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
	err = cg_create(rw->cgroup);
	if (err) {
		run_error(r, "workload '%s': cgroup %s: %s", w->name, rw->cgroup,
			  strerror(-err));
		return err;
	}
	for (size_t f = 0; f < r->sc->n_faults && !rw->sysfault; f++) {
		if (r->sc->faults[f].type != SC_F_SYSCALL_ERROR || r->sc->faults[f].wl_idx != (int)i ||
		    r->sc->faults[f].syscall != SECFAULT_SOCKET)
			continue;
		rw->sysfault = sysfault__attach(rw->cgroup);
		if (!rw->sysfault && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING) {
			char what[96];

			snprintf(what, sizeof(what), "syscall_error socket of %s", w->name);
			run_not_applied(r, what, CAPS_SYSCALL_SOCKET);
			break;
		}
		if (!rw->sysfault) {
			err = -errno;
			run_error(r, "workload '%s': cannot attach syscall errors: %s", w->name,
				  strerror(-err));
			return err;
		}
		/* A fault planned for time 0 holds from the first instruction,
		 * not from the moment its timer first fires. */
		if (!r->sc->faults[f].at_ms)
			run_syserr_set(r, &r->sc->faults[f], true);
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
	if (!err)
		err = run_seccomp_filter(r, i, &filter);
	if (err) {
		run_error(r, "workload '%s': %s", w->name, strerror(-err));
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
	spec.cpus = w->cpus;
	spec.n_cpus = w->n_cpus;
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

/* --- start ------------------------------------------------------------------ */

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	begin_stop(arg, "duration elapsed");
}

static void do_start(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	struct timeval tv;
	char path[PATH_MAX + 32];
	int err;

	(void)fd;
	(void)what;
	r->state = RUN_STARTING;
	snprintf(path, sizeof(path), "%s/scenario.json", r->dir);
	err = util_write_atomic(path, r->sc->text, r->sc->text_len);
	if (err) {
		run_error(r, "cannot write %s: %s", path, strerror(-err));
		goto err_stop;
	}
	err = cg_create(r->cgroup);
	if (err && caps_state(CAPS_CGROUP) == CAPS_MISSING) {
		run_error(r, "this host lacks cgroup v2, which every run needs: %s",
			  caps_why(CAPS_CGROUP));
		goto err_stop;
	}
	if (err) {
		run_error(r, "cannot create cgroup %s: %s", r->cgroup, strerror(-err));
		goto err_stop;
	}
	caps_set_ok(CAPS_CGROUP, NULL);
	if (r->sc->n_ns) {
		r->journal = journal__open(r->opts.journal_dir, r->id);
		if (!r->journal) {
			run_error(r, "cannot open the undo journal in %s: %s", r->opts.journal_dir,
				  strerror(errno));
			goto err_stop;
		}
		r->topo = topo__create(r->sc, r->id, r->journal);
		if (!r->topo) {
			run_error(r, "cannot build the topology: %s", strerror(errno));
			goto err_stop;
		}
		r->obs.topology = topo__names(r->topo);
		for (size_t l = 0; l < r->sc->n_links; l++)
			caps_set_ok(r->sc->links[l].type == SC_LINK_TAP ? CAPS_TAP : CAPS_NETNS,
				    r->sc->links[l].type == SC_LINK_TAP ? "/dev/net/tun" : "veth");
		err = run_links_attach(r);
		if (err) {
			run_error(r, "cannot set up the link faults: %s", strerror(-err));
			goto err_stop;
		}
	}
	r->proc = probe_proc__open(r->base, run_on_proc_event, r);
	if (!r->proc)
		log_warn("%s: run %s: process probe unavailable (%s); child process "
			 "exits will be missing", __func__, r->id, strerror(errno));
	r->obs.proc_probe = r->proc != NULL;
	r->t0_ns = util_now_ns();
	r->started_at_ms = util_realtime_ms();
	r->state = RUN_RUNNING;
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		err = start_workload(r, i);
		if (err)
			goto err_stop;
	}
	r->duration_ev = evtimer_new(r->base, on_duration, r);
	r->cycle_ev = event_new(r->base, -1, EV_PERSIST, on_cycle_tick, r);
	if (!r->duration_ev || !r->cycle_ev) {
		run_error(r, "out of memory");
		goto err_stop;
	}
	err = run_faults_start(r);
	if (err) {
		run_error(r, "cannot plan the faults: %s", strerror(-err));
		goto err_stop;
	}
	tv.tv_sec = (time_t)r->sc->duration_s;
	tv.tv_usec = (suseconds_t)((r->sc->duration_s - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->duration_ev, &tv);
	/* Flaps make the cycles when there are any; otherwise the clock does. */
	if (!r->cyclic) {
		tv.tv_sec = r->sc->sample_ms / 1000;
		tv.tv_usec = (r->sc->sample_ms % 1000) * 1000;
		event_add(r->cycle_ev, &tv);
	}
	log_info("%s: run %s: scenario '%s' running for up to %gs", __func__, r->id,
		 r->sc->name, r->sc->duration_s);
	/* A workload may have exited before the timers existed. */
	if (all_done(r, false))
		begin_stop(r, "every non-service workload exited");
	return;
err_stop:
	if (!r->t0_ns) {
		r->t0_ns = util_now_ns();
		r->started_at_ms = util_realtime_ms();
	}
	r->state = RUN_RUNNING;
	begin_stop(r, "setup failed");
}

/* --- stop and finish ---------------------------------------------------------- */

static void finish(struct run *r);

static void on_reap_poll(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	uint64_t t_ms = run_ms(r);
	int populated;

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	populated = cg_populated(r->cgroup);
	if (populated > 0 || !all_done(r, true)) {
		if (t_ms < r->give_up_ms)
			return;
		/* Killed, and then given the time a killed tree takes to
		 * leave, here rather than asleep in cg_destroy: the loop
		 * serves the other runs meanwhile. */
		if (!r->reap_killed) {
			log_warn("%s: run %s: processes still present %llums after stop; "
				 "killing them", __func__, r->id,
				 (unsigned long long)(t_ms - r->stop_at_ms));
			for (size_t i = 0; i < r->sc->n_wl; i++)
				if (r->rw[i].child)
					sup__kill(r->rw[i].child, SIGKILL);
			cg_kill(r->cgroup);
			r->reap_killed = true;
			r->give_up_ms = t_ms + CG_EMPTY_WAIT_MS;
			return;
		}
		log_warn("%s: run %s: processes still present after SIGKILL; moving on",
			 __func__, r->id);
	}
	event_del(r->reap_ev);
	finish(r);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	if (cg_populated(r->cgroup) > 0) {
		log_info("%s: run %s: grace over; killing what is left", __func__, r->id);
		cg_kill(r->cgroup);
	}
}

static void begin_stop(struct run *r, const char *reason)
{
	struct timeval tv = {.tv_usec = RUN_REAP_POLL_MS * 1000};
	long long grace_ms = 0;
	uint64_t t_ms;

	if (r->state != RUN_RUNNING)
		return;
	r->state = RUN_STOPPING;
	t_ms = run_ms(r);
	r->stop_at_ms = t_ms;
	snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", reason);
	log_info("%s: run %s: stopping: %s", __func__, r->id, reason);
	if (r->duration_ev)
		evtimer_del(r->duration_ev);
	if (r->cycle_ev)
		event_del(r->cycle_ev);
	if (r->fault_ev)
		evtimer_del(r->fault_ev);
	/* Faults end with the run: the contention goes, and a frozen workload
	 * is thawed so it can hear the SIGTERM that follows. */
	run_hogs_stop(r);
	for (size_t i = 0; i < r->sc->n_wl; i++)
		if (r->rw[i].cgroup[0] && r->obs.wl[i].started)
			run_freeze(r, (int)i, false);
	probe_proc__drain(r->proc);
	/* The last, partial cycle counts if it is at least half a cycle long
	 * (or the only one): a sliver would read as a sample of nothing. */
	if (r->obs.n_cycles == 0 ||
	    t_ms - r->cycle_start_ms >= (uint64_t)r->sc->sample_ms / 2)
		run_close_cycle(r, t_ms);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct obs_workload *w = &r->obs.wl[i];
		struct run_wl *rw = &r->rw[i];

		if (rw->timeout_ev)
			evtimer_del(rw->timeout_ev);
		if (!w->started || w->exited)
			continue;
		w->stopped = !w->timed_out;
		if (rw->kill_sent_ms > t_ms)
			rw->kill_sent_ms = t_ms;
		sup__kill(rw->child, SIGTERM);
		if (w->sc->stop_grace_ms > grace_ms)
			grace_ms = w->sc->stop_grace_ms;
	}
	r->give_up_ms = t_ms + (uint64_t)grace_ms + RUN_REAP_EXTRA_MS;
	r->grace_ev = evtimer_new(r->base, on_grace_over, r);
	r->reap_ev = event_new(r->base, -1, EV_PERSIST, on_reap_poll, r);
	if (r->grace_ev) {
		struct timeval g = {.tv_sec = grace_ms / 1000,
				    .tv_usec = (grace_ms % 1000) * 1000};
		evtimer_add(r->grace_ev, &g);
	}
	if (r->reap_ev)
		event_add(r->reap_ev, &tv);
	else
		finish(r);
}

/* Namespaces and links go by the journal: the same path a successor takes
 * after a kill -9. */
static void teardown_network(struct run *r)
{
	run_links_detach(r);
	topo__free(r->topo);
	r->topo = NULL;
	if (r->journal) {
		journal__replay(r->journal);
		journal__free(r->journal);
		r->journal = NULL;
	}
}

/* The owner directory goes with its last run (another run of ours keeps
 * it busy and the rmdir fails harmlessly). */
static void remove_owner_dir(const struct run *r)
{
	char owner[RUN_PATH_MAX], *slash;

	snprintf(owner, sizeof(owner), "%s", r->cgroup);
	slash = strrchr(owner, '/');
	if (slash) {
		*slash = '\0';
		rmdir(owner);
	}
}

static void finish(struct run *r)
{
	enum verdict v;

	run_judge_collect(r);
	/* Tear down before judging, so no_residue sees what is really left. */
	probe_proc__destroy(r->proc);
	r->proc = NULL;
	run_probes_destroy(r);
	if (cg_destroy_nowait(r->cgroup) == -EBUSY)
		log_warn("%s: run %s: %s still populated; the next sweep removes it", __func__,
			 r->id, r->cgroup);
	remove_owner_dir(r);
	teardown_network(r);
	v = run_judge_report(r);
	/* A finished run is kept for status and its report only: the parsed
	 * debug info of its processes is the bulk of it, and a soak must not
	 * keep it. Its late maps snapshot goes with it. */
	if (r->snapshot_ev)
		evtimer_del(r->snapshot_ev);
	sym__free(r->sym);
	r->sym = NULL;
	r->state = RUN_DONE;
	log_info("%s: run %s: %s (%s)", __func__, r->id, verdict_name(v),
		 r->stop_reason);
	if (r->opts.on_done)
		r->opts.on_done(r, r->report, r->opts.arg);
}

/* --- public ------------------------------------------------------------------- */

struct run *run__new(struct event_base *base, struct scenario *sc,
		     const struct run_opts *opts)
{
	struct run *r;
	int err = 0;

	r = calloc(1, sizeof(*r));
	if (!r) {
		scenario_free(sc);
		errno = ENOMEM;
		return NULL;
	}
	r->base = base;
	r->sc = sc;
	r->opts = *opts;
	r->stop_at_ms = UINT64_MAX;
	r->rw = calloc(sc->n_wl, sizeof(*r->rw));
	r->obs.wl = calloc(sc->n_wl, sizeof(*r->obs.wl));
	r->obs.probes = calloc(sc->n_wl, sizeof(*r->obs.probes));
	r->obs.sc = sc;
	run_probes_kinds(r);
	r->sym = sym__new();
	r->obs.heap_events = json_array();
	r->obs.faults = json_array();
	r->obs.life_events = json_array();
	r->obs.crashes = json_array();
	r->snapshot_ev = evtimer_new(base, on_snapshot, r);
	r->obs.life_alive = json_array();
	r->obs.msg_events = json_array();
	r->obs.msg_lost = json_array();
	if (!r->rw || !r->obs.wl || !r->obs.probes || !r->sym || !r->obs.heap_events ||
	    !r->obs.faults ||
	    !r->obs.life_events || !r->obs.life_alive || !r->obs.msg_events ||
	    !r->obs.msg_lost) {
		err = -ENOMEM;
		goto err_free;
	}
	for (size_t i = 0; i < sc->n_wl; i++) {
		r->obs.wl[i].sc = &sc->wl[i];
		r->rw[i].run = r;
		r->rw[i].idx = i;
		r->rw[i].kill_sent_ms = UINT64_MAX;
		r->rw[i].kill_ev = evtimer_new(base, on_wl_kill, &r->rw[i]);
		if (!r->rw[i].kill_ev) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	err = strlen(opts->runs_dir) + 16 > RUN_PATH_MAX ||
	      strlen(opts->cgroup_root) + 16 > RUN_PATH_MAX ? -ENAMETOOLONG : 0;
	if (!err)
		err = util_mkdir_p(opts->runs_dir, 0755);
	for (int tries = 0; !err && tries < 8; tries++) {
		err = util_run_id(r->id);
		if (err)
			break;
		snprintf(r->dir, sizeof(r->dir), "%s/%s", opts->runs_dir, r->id);
		err = mkdir(r->dir, 0755) < 0 ? -errno : 0;
		if (err != -EEXIST)
			break;
	}
	if (err) {
		log_err("%s: cannot create a run directory in %s: %s", __func__,
			opts->runs_dir, strerror(-err));
		goto err_free;
	}
	err = cg_owner_dir(opts->cgroup_root, r->cgroup, sizeof(r->cgroup) - RUN_ID_LEN - 1);
	if (err)
		goto err_free;
	strcat(r->cgroup, "/");
	strcat(r->cgroup, r->id);
	if (sc->seed_set) {
		r->seed = sc->seed;
	} else {
		unsigned int s;

		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = (unsigned int)util_now_ns();
		r->seed = s;
	}
	return r;
err_free:
	run__free(r);
	errno = -err;
	return NULL;
}

void run__start(struct run *r)
{
	r->start_ev = evtimer_new(r->base, do_start, r);
	if (!r->start_ev || evtimer_add(r->start_ev, &(struct timeval){0}) < 0) {
		run_error(r, "out of memory");
		r->t0_ns = util_now_ns();
		r->state = RUN_RUNNING;
		begin_stop(r, "setup failed");
	}
}

void run__stop(struct run *r, const char *reason)
{
	if (r->state == RUN_DONE || r->state == RUN_STOPPING)
		return;
	r->stop_requested = true;
	if (r->state == RUN_QUEUED || r->state == RUN_STARTING) {
		/* Not started yet: end it without running anything. */
		if (r->start_ev)
			evtimer_del(r->start_ev);
		r->t0_ns = util_now_ns();
		r->started_at_ms = util_realtime_ms();
		r->state = RUN_RUNNING;
	}
	begin_stop(r, reason);
}

void run__free(struct run *r)
{
	if (!r)
		return;
	run_hogs_stop(r);
	for (size_t i = 0; r->rw && i < r->sc->n_wl; i++) {
		struct run_wl *rw = &r->rw[i];

		if (rw->child) {
			sup__kill(rw->child, SIGKILL);
			sup__free(rw->child);
		}
		if (rw->timeout_ev)
			event_free(rw->timeout_ev);
		if (rw->kill_ev)
			event_free(rw->kill_ev);
		sysfault__destroy(rw->sysfault);
		if (rw->argv && r->sc->wl[i].kind != WL_EXEC)
			free((char *)rw->argv[0]);
		free(rw->argv);
		for (size_t j = 0; j < rw->n_env; j++)
			free((char *)rw->env[j]);
		free(rw->env);
	}
	if (r->state != RUN_DONE && r->state != RUN_QUEUED && r->cgroup[0]) {
		cg_destroy(r->cgroup);
		remove_owner_dir(r);
	}
	teardown_network(r);
	free(r->plan);
	if (r->fault_ev)
		event_free(r->fault_ev);
	if (r->snapshot_ev)
		event_free(r->snapshot_ev);
	for (size_t i = 0; r->obs.wl && i < r->sc->n_wl; i++) {
		free(r->obs.wl[i].out_times);
		free(r->obs.wl[i].counters);
		json_decref(r->obs.wl[i].last_output);
		json_decref(r->obs.wl[i].sanitizer);
	}
	json_decref(r->obs.faults);
	json_decref(r->obs.topology);
	json_decref(r->obs.capabilities);
	json_decref(r->obs.not_applied);
	json_decref(r->obs.packet_stats);
	json_decref(r->obs.syscall_stats);
	probe_proc__destroy(r->proc);
	run_probes_destroy(r);
	sym__free(r->sym);
	for (size_t i = 0; r->obs.probes && i < r->sc->n_wl; i++) {
		json_decref(r->obs.probes[i].heap_sites);
		json_decref(r->obs.probes[i].heap_losses);
		json_decref(r->obs.probes[i].fd_calls);
	}
	free(r->obs.probes);
	free(r->obs.samples);
	json_decref(r->obs.heap_events);
	json_decref(r->obs.life_events);
	json_decref(r->obs.life_alive);
	json_decref(r->obs.msg_events);
	json_decref(r->obs.msg_lost);
	if (r->start_ev)
		event_free(r->start_ev);
	if (r->duration_ev)
		event_free(r->duration_ev);
	if (r->cycle_ev)
		event_free(r->cycle_ev);
	if (r->grace_ev)
		event_free(r->grace_ev);
	if (r->reap_ev)
		event_free(r->reap_ev);
	json_decref(r->report);
	free(r->obs.procs);
	json_decref(r->obs.crashes);
	json_decref(r->obs.residue);
	free(r->obs.cycles);
	free(r->obs.wl);
	free(r->rw);
	scenario_free(r->sc);
	free(r);
}

const char *run__id(const struct run *r)
{
	return r->id;
}

enum run_state run__state(const struct run *r)
{
	return r->state;
}

const struct scenario *run__scenario(const struct run *r)
{
	return r->sc;
}

const json_t *run__report(const struct run *r)
{
	return r->report;
}

const char *run__dir(const struct run *r)
{
	return r->dir;
}

json_t *run__status(const struct run *r)
{
	json_t *st, *wls;

	st = json_pack("{sssssssssI}", "run_id", r->id, "state", run__state_name(r->state),
		       "scenario", r->sc->name, "file", r->sc->path,
		       "cycle", (json_int_t)r->obs.n_cycles);
	if (!st)
		return NULL;
	if (r->t0_ns && r->state != RUN_DONE)
		json_object_set_new(st, "elapsed_s", json_real((double)run_ms(r) / 1000.0));
	if (r->report)
		json_object_set(st, "verdict", json_object_get(r->report, "verdict"));
	json_object_set_new(st, "faults_fired", json_integer((json_int_t)json_array_size(r->obs.faults)));
	json_object_set_new(st, "probe_lost", json_integer((json_int_t)run_probes_lost(r)));
	wls = json_array();
	for (size_t i = 0; wls && i < r->sc->n_wl; i++) {
		const struct obs_workload *w = &r->obs.wl[i];
		const char *state = !w->started ? "pending" : w->exited ? "exited" : "running";
		json_t *row = json_pack("{sssiss}", "name", w->sc->name, "pid", (int)w->pid,
					"state", state);

		if (row && r->state == RUN_RUNNING)
			run_probes_status(r, i, row);
		json_array_append_new(wls, row);
	}
	json_object_set_new(st, "workloads", wls ? wls : json_null());
	return st;
}
