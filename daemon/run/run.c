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
#include "log.h"
#include "paths.h"
#include "probe_proc.h"
#include "report.h"
#include "run.h"
#include "run_priv.h"
#include "sup.h"
#include "sym.h"
#include "topo.h"
#include "util.h"

void run_paths_default(struct run_paths *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->runs_dir, sizeof(p->runs_dir), "%s", RUN_DEFAULT_DIR);
	snprintf(p->journal_dir, sizeof(p->journal_dir), "%s", JOURNAL_DEFAULT_DIR);
	/* The bundled workloads may come from another build than faultd's own
	 * (a sanitized faultd driving the plain workloads, as the tests do):
	 * FAULTD_HARNESS_DIR says which. */
	paths_harness_dir(p->harness_dir, sizeof(p->harness_dir));
}

uint64_t run_ms(const struct run *r)
{
	return (util_now_ns() - r->t0_ns) / 1000000ull;
}


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
	struct obs_sample *rows;
	struct obs_cycle *c;
	json_t *j;

	if (now_ms < r->cycle_start_ms)
		now_ms = r->cycle_start_ms;	/* a timer a little early */
	snapshot_maps(r);
	c = util_grow(r->obs.cycles, &r->cap_cycles, r->obs.n_cycles + 1, sizeof(*c));
	if (c)
		r->obs.cycles = c;
	rows = c ? util_grow(r->obs.samples, &r->cap_samples,
			     (r->obs.n_cycles + 1) * r->sc->n_wl, sizeof(*rows)) : NULL;
	if (!rows) {
		log_warn("%s: run %s: out of memory for cycles", __func__, r->id);
		return;
	}
	r->obs.samples = rows;
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
	run_publish(r);
	if (!r->opts.on_cycle)
		return;
	j = json_pack("{sssIsIsIsIsIso}", "run_id", r->id, "cycle", (json_int_t)c->n,
		      "t_start_ms", (json_int_t)c->t_start_ms,
		      "t_end_ms", (json_int_t)c->t_end_ms,
		      "procs", (json_int_t)c->procs, "rss_kb", (json_int_t)c->rss_kb,
		      "workloads", report_cycle_workloads(&r->obs, r->obs.n_cycles - 1));
	if (j)
		run_post_cycle(r, j);
}

/* Without a cyclic fault, cycle N ends N * sample_ms after t0, however
 * late the loop got to the last one. */
static void arm_cycle(struct run *r)
{
	uint64_t next = (uint64_t)(r->obs.n_cycles + 1) * (uint64_t)r->sc->sample_ms;
	uint64_t now = run_ms(r), wait = next > now ? next - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
			     .tv_usec = (suseconds_t)(wait % 1000) * 1000};

	evtimer_add(r->cycle_ev, &tv);
}

static void on_cycle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	probe_proc__drain(r->proc);
	run_probes_drain(r);
	/* The cycle ends at its boundary: what happened at or after it (a
	 * fault due at the same millisecond, fired first) is the next's. */
	run_close_cycle(r, (uint64_t)(r->obs.n_cycles + 1) * (uint64_t)r->sc->sample_ms);
	if (r->state == RUN_RUNNING)
		arm_cycle(r);
}

/* --- start ------------------------------------------------------------------ */

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_begin_stop(arg, "duration elapsed");
}

/* On the run's thread, which nothing else waits on: a stop asked
 * meanwhile is looked at between the steps. */
void run_begin(struct run *r)
{
	struct timeval tv;
	char path[PATH_MAX + 32];
	double left;
	int err;

	if (run_loop_cancelled(r))
		goto err_stop;	/* stopped before it started: nothing is run */
	run_set_state(r, RUN_STARTING);
	snprintf(path, sizeof(path), "%s/scenario.json", r->dir);
	err = util_write_atomic(path, r->sc->text, r->sc->text_len);
	if (err) {
		run_error(r, "cannot write %s: %s", path, strerror(-err));
		goto err_stop;
	}
	err = caps_state(CAPS_CGROUP) == CAPS_MISSING ? 0 : cgroup_owner_hold(r->cgroup);
	if (!err)
		err = cgroup_create(r->cgroup);
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
	if (run_loop_cancelled(r))
		goto err_stop;
	if (r->sc->n_ns) {
		r->journal = journal__open(r->paths.journal_dir, r->id);
		if (!r->journal) {
			run_error(r, "cannot open the undo journal in %s: %s", r->paths.journal_dir,
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
	}
	if (run_loop_cancelled(r))
		goto err_stop;
	err = run_faults_attach(r);
	if (err) {
		run_error(r, "cannot set up the faults: %s", strerror(-err));
		goto err_stop;
	}
	if (run_loop_cancelled(r))
		goto err_stop;
	r->proc = probe_proc__open(r->base, run_on_proc_event, r);
	if (!r->proc)
		log_warn("%s: run %s: process probe unavailable (%s); child process "
			 "exits will be missing", __func__, r->id, strerror(errno));
	r->obs.proc_probe = r->proc != NULL;
	r->t0_ns = util_now_ns();
	r->started_at_ms = util_realtime_ms();
	run_set_state(r, RUN_RUNNING);
	for (size_t i = 0; i < r->sc->n_wl; i++)
		if (run_loop_cancelled(r) || run_wl_start(r, i))
			goto err_stop;
	/* The run's clock starts when its workloads are let go, together:
	 * holding them while probes attach (tens of ms each, more while
	 * other runs load theirs) does not eat into the fault timeline. */
	r->t0_ns = util_now_ns();
	r->started_at_ms = util_realtime_ms();
	run_loop_timing(r, true);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		err = run_wl_release(r, i);
		if (err)
			goto err_stop;
	}
	run_publish(r);
	r->duration_ev = evtimer_new(r->base, on_duration, r);
	r->cycle_ev = evtimer_new(r->base, on_cycle_tick, r);
	if (!r->duration_ev || !r->cycle_ev) {
		run_error(r, "out of memory");
		goto err_stop;
	}
	/* libevent counts a timeout from the time it cached when the loop last
	 * woke, before the workloads were started (forks, probes attached by
	 * pid: hundreds of ms, more on a busy host). The run ends duration_s
	 * after t0, so count from now, less what has passed since t0; the
	 * fault and cycle timers count from now too. */
	event_base_update_cache_time(r->base);
	err = run_faults_start(r);
	if (err) {
		run_error(r, "cannot plan the faults: %s", strerror(-err));
		goto err_stop;
	}
	left = r->sc->duration_s - (double)run_ms(r) / 1000.0;
	left = left > 0 ? left : 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->duration_ev, &tv);
	/* Flaps make the cycles when there are any; otherwise the clock does. */
	if (!r->cyclic)
		arm_cycle(r);
	log_info("%s: run %s: scenario '%s' running for up to %gs", __func__, r->id,
		 r->sc->name, r->sc->duration_s);
	/* A workload may have exited before the timers existed. */
	if (run_wl_all_done(r, false))
		run_begin_stop(r, "every non-service workload exited");
	return;
err_stop:
	if (!r->t0_ns) {
		r->t0_ns = util_now_ns();
		r->started_at_ms = util_realtime_ms();
	}
	run_set_state(r, RUN_RUNNING);
	if (r->error[0]) {
		run_begin_stop(r, "setup failed");
	} else {
		char reason[sizeof(r->stop_asked)];

		run_loop_stop_reason(r, reason, sizeof(reason));
		r->stop_requested = true;
		run_begin_stop(r, reason);
	}
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
	populated = cgroup_populated(r->cgroup);
	if (populated > 0 || !run_wl_all_done(r, true)) {
		if (t_ms < r->give_up_ms)
			return;
		/* Killed, and then given the time a killed tree takes to
		 * leave, here rather than asleep in cgroup_destroy: the loop
		 * serves the other runs meanwhile. */
		if (!r->reap_killed) {
			log_warn("%s: run %s: processes still present %llums after stop; "
				 "killing them", __func__, r->id,
				 (unsigned long long)(t_ms - r->stop_at_ms));
			for (size_t i = 0; i < r->sc->n_wl; i++)
				if (r->rw[i].child)
					sup__kill(r->rw[i].child, SIGKILL);
			cgroup_kill(r->cgroup);
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
	if (run_leak_defer_kill(r, r->grace_ev, r->give_up_ms))
		return;
	if (cgroup_populated(r->cgroup) > 0) {
		log_info("%s: run %s: grace over; killing what is left", __func__, r->id);
		cgroup_kill(r->cgroup);
	}
}

void run_begin_stop(struct run *r, const char *reason)
{
	struct timeval tv = {.tv_usec = RUN_REAP_POLL_MS * 1000};
	long long grace_ms = 0;
	uint64_t t_ms;

	if (r->state != RUN_RUNNING)
		return;
	run_set_state(r, RUN_STOPPING);
	run_loop_timing(r, false);
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
	fault_families_end(&r->fenv);
	probe_proc__drain(r->proc);
	/* The last, partial cycle counts if it is at least half a cycle long
	 * (or the only one): a sliver would read as a sample of nothing. */
	if (r->obs.n_cycles == 0 ||
	    (t_ms >= r->cycle_start_ms && t_ms - r->cycle_start_ms >= (uint64_t)r->sc->sample_ms / 2))
		run_close_cycle(r, t_ms);
	/* A process held at a bad free until its stacks are named, or at its
	 * _exit until its heap is scanned, goes on before its tree hears the
	 * SIGTERM (a parent that exits leaves a stopped child a SIGHUP, and a
	 * scan of a process dying under it is void); no fault is left to
	 * wait. */
	run_sym_settle(r);
	run_leak_settle(r);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct obs_workload *w = &r->obs.wl[i];
		struct run_wl *rw = &r->rw[i];

		if (rw->timeout_ev)
			evtimer_del(rw->timeout_ev);
		if (!w->started || w->exited)
			continue;
		w->stopped = !w->timed_out;
		if (rw->fw->kill_sent_ms > t_ms)
			rw->fw->kill_sent_ms = t_ms;
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
	if (r->fenv.wl)
		fault_families_detach(&r->fenv);	/* before the links go */
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
	if (cgroup_destroy_nowait(r->cgroup) == -EBUSY)
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
	run_post_done(r);
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
	r->sc = sc;
	r->opts = *opts;
	r->paths = *opts->paths;
	r->opts.paths = &r->paths;
	r->opts.suppressions = opts->suppressions ? strdup(opts->suppressions) : NULL;
	r->stop_at_ms = UINT64_MAX;
	err = run_loop_init(r, base);
	if (err)
		goto err_free;
	r->rw = calloc(sc->n_wl, sizeof(*r->rw));
	r->obs.wl = calloc(sc->n_wl, sizeof(*r->obs.wl));
	r->obs.probes = calloc(sc->n_wl, sizeof(*r->obs.probes));
	r->obs.sc = sc;
	r->obs.suppressions[0] = sc->suppressions;
	r->obs.suppressions[1] = r->opts.suppressions;
	run_probes_kinds(r);
	r->sym = sym__new();
	r->obs.heap_events = json_array();
	r->obs.faults = json_array();
	r->obs.life_events = json_array();
	r->obs.crashes = json_array();
	r->snapshot_ev = evtimer_new(r->base, on_snapshot, r);
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
		r->rw[i].kill_ev = evtimer_new(r->base, run_wl_on_kill, &r->rw[i]);
		if (!r->rw[i].kill_ev) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	err = run_faults_init(r);
	if (err)
		goto err_free;
	err = strlen(opts->paths->runs_dir) + 16 > RUN_PATH_MAX ||
	      strlen(opts->paths->cgroup_root) + 16 > RUN_PATH_MAX ? -ENAMETOOLONG : 0;
	if (!err)
		err = util_mkdir_p(opts->paths->runs_dir, 0755);
	for (int tries = 0; !err && tries < 8; tries++) {
		err = util_run_id(r->id);
		if (err)
			break;
		snprintf(r->dir, sizeof(r->dir), "%.*s/%s", RUN_PATH_MAX - 16, opts->paths->runs_dir,
			 r->id);
		err = mkdir(r->dir, 0755) < 0 ? -errno : 0;
		if (err != -EEXIST)
			break;
	}
	if (err) {
		log_err("%s: cannot create a run directory in %s: %s", __func__,
			opts->paths->runs_dir, strerror(-err));
		goto err_free;
	}
	err = cgroup_owner_dir(opts->paths->cgroup_root, r->cgroup, sizeof(r->cgroup) - RUN_ID_LEN - 1);
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
	run_publish(r);
	return r;
err_free:
	run__free(r);
	errno = -err;
	return NULL;
}

void run__start(struct run *r)
{
	if (r->thread_started || run__state(r) != RUN_QUEUED)
		return;
	run_loop_start(r);
}

void run__stop(struct run *r, const char *reason)
{
	run_loop_stop(r, reason);
}

/* On the run's thread: a stop the caller asked for. */
void run_stop_now(struct run *r, const char *reason)
{
	if (r->state == RUN_DONE || r->state == RUN_STOPPING)
		return;
	r->stop_requested = true;
	run_begin_stop(r, reason);
}

void run__free(struct run *r)
{
	if (!r)
		return;
	/* The run's thread is gone before anything of the run is. */
	run_loop_join(r);
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
		if (rw->argv && r->sc->wl[i].kind != WL_EXEC)
			free((char *)rw->argv[0]);
		free(rw->argv);
		for (size_t j = 0; j < rw->n_env; j++)
			free((char *)rw->env[j]);
		free(rw->env);
	}
	if (r->state != RUN_DONE && r->state != RUN_QUEUED && r->cgroup[0]) {
		cgroup_destroy(r->cgroup);
		remove_owner_dir(r);
	}
	teardown_network(r);
	run_faults_free(r);
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
		json_decref(r->obs.probes[i].heap_coverage);
		json_decref(r->obs.probes[i].heap_losses);
		json_decref(r->obs.probes[i].fd_calls);
	}
	free(r->obs.probes);
	free(r->obs.samples);
	json_decref(r->obs.heap_events);
	json_decref(r->obs.leaks);
	free((char *)r->opts.suppressions);
	json_decref(r->obs.life_events);
	json_decref(r->obs.life_alive);
	json_decref(r->obs.msg_events);
	json_decref(r->obs.msg_lost);
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
	run_loop_free(r);
	if (r->base)
		event_base_free(r->base);
	free(r);
}

const char *run__id(const struct run *r)
{
	return r->id;
}

const struct scenario *run__scenario(const struct run *r)
{
	return r->sc;
}

const char *run__dir(const struct run *r)
{
	return r->dir;
}

json_t *run_status_build(const struct run *r)
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
