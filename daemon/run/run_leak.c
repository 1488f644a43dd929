/* no_leak's side of a run: every process of a workload judged by no_leak
 * is held at the C library's _exit (probe_exit.c), its live heap blocks
 * are judged by the reachability scan (leakscan.c) while it is stopped,
 * and the leaks, grouped by allocation stack, go into r->obs.leaks; then
 * it goes on exiting.
 *
 * The wait for the stop, the scan and the naming of the stacks are done by
 * the run's leak worker (worker.h), never on the run's loop, whose fault
 * timers would wait meanwhile: the loop posts the exit and later takes
 * back the result, in the order of the exits, records it and lets the
 * process go on. The worker names frames with a symbolizer of its own
 * (r->leak_sym); the loop's (r->sym) is never touched by it. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "leakscan.h"
#include "log.h"
#include "probe_exit.h"
#include "probe_heap.h"
#include "run_priv.h"
#include "sym.h"
#include "util.h"
#include "worker.h"

#define LEAK_STOP_WAIT_MS 200
#define LEAK_MAX_GROUPS 50	/* allocation stacks listed per kind and process */

static bool wants_leak_check(const struct run *r, size_t wl)
{
	for (size_t k = 0; k < r->sc->n_inv; k++)
		if (!strcmp(r->sc->inv[k].name, "no_leak") &&
		    (r->sc->inv[k].workload_idx < 0 || (size_t)r->sc->inv[k].workload_idx == wl))
			return true;
	return false;
}

struct leak_group {
	int32_t stack_id;
	uint64_t caller;
	uint64_t bytes, count, example;
};

static int cmp_site(const void *a, const void *b)
{
	const struct leak_block *x = a, *y = b;

	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	return x->caller < y->caller ? -1 : x->caller > y->caller;
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct leak_group *x = a, *y = b;

	return x->bytes > y->bytes ? -1 : x->bytes < y->bytes;
}

/* The blocks in @state, one row per allocation stack, largest first, named
 * by @s; the rows past LEAK_MAX_GROUPS are counted in *unlisted. */
static json_t *groups(struct sym *s, struct probe_heap *h, pid_t pid, struct leak_block *b,
		      size_t n, uint8_t state, size_t *unlisted)
{
	struct leak_group *g = calloc(n ? n : 1, sizeof(*g));
	json_t *out = json_array();
	size_t ng = 0;

	*unlisted = 0;
	if (!g || !out)
		goto out;
	if (n)			/* b is NULL when there are no blocks */
		qsort(b, n, sizeof(*b), cmp_site);
	for (size_t k = 0; k < n; k++) {
		if (b[k].state != state)
			continue;
		/* Without a stack the caller alone names the site. */
		if (!ng || g[ng - 1].stack_id != b[k].stack_id ||
		    (b[k].stack_id < 0 && g[ng - 1].caller != b[k].caller))
			g[ng++] = (struct leak_group){.stack_id = b[k].stack_id,
						      .caller = b[k].caller, .example = b[k].addr};
		g[ng - 1].bytes += b[k].size;
		g[ng - 1].count++;
	}
	qsort(g, ng, sizeof(*g), cmp_bytes);
	for (size_t i = 0; i < ng && i < LEAK_MAX_GROUPS; i++) {
		char ex[24];

		snprintf(ex, sizeof(ex), "0x%llx", (unsigned long long)g[i].example);
		json_array_append_new(out, json_pack("{sIsIssso}", "bytes", (json_int_t)g[i].bytes,
			"blocks", (json_int_t)g[i].count, "example", ex,
			"stack", run_heap_stack(s, h, pid, g[i].stack_id, g[i].caller)));
	}
	if (ng > LEAK_MAX_GROUPS)
		*unlisted = ng - LEAK_MAX_GROUPS;
out:
	free(g);
	return out;
}

static json_t *scan_json(const struct leakscan_stats *st)
{
	return json_pack("{sfsIsIsIsIsIsIsIsIsIsIsIsI}", "ms", st->ms,
			 "threads_registers", (json_int_t)st->threads_regs,
			 "regions", (json_int_t)st->regions,
			 "skipped_regions", (json_int_t)st->skipped_regions,
			 "root_bytes", (json_int_t)st->root_bytes,
			 "heap_bytes", (json_int_t)st->heap_bytes,
			 "heap_gap_root_bytes", (json_int_t)st->gap_root_bytes,
			 "block_bytes_scanned", (json_int_t)st->scanned_block_bytes,
			 "threads", (json_int_t)st->threads,
			 "threads_without_sp", (json_int_t)st->threads_no_sp,
			 "blocks", (json_int_t)st->blocks,
			 "reachable", (json_int_t)st->reachable,
			 "stale", (json_int_t)st->stale);
}

/* Every thread's registers if the kernel gives them, else the exiting
 * thread's (the others' stacks are still scanned). */
static int scan(struct probe_exit *hold, const struct leak_exit_event *ev,
		struct leak_block *b, size_t n, bool partial, struct leakscan_stats *st)
{
	struct leak_thread *th = NULL, self = {.tid = ev->tid, .nregs = ev->nregs, .sp = ev->sp};
	size_t n_th = 0;
	int err;

	memcpy(self.regs, ev->regs, sizeof(self.regs));
	if (probe_exit__threads(hold, (pid_t)ev->tgid, &th, &n_th) || !n_th) {
		free(th);
		th = NULL;
	}
	err = leakscan_run((pid_t)ev->tgid, b, n, th ? th : &self, th ? n_th : 1, partial, st);
	free(th);
	return err;
}

/* A process held at its exit: what the worker found, for the loop. */
struct leak_job {
	struct fifo_node node;
	struct run_wl *rw;
	struct leak_exit_event ev;
	bool stopped;
	bool killed;			/* it left its stop during the scan */
	int err;
	struct leakscan_stats st;
	json_t *kinds[2];		/* the direct and indirect groups, named */
	size_t unlisted[2];		/* their allocation stacks not listed */
	uint64_t done_ns;		/* when the scan and naming were over */
};

static const uint8_t kind_state[2] = {LEAK_DIRECT, LEAK_INDIRECT};
static const char *const kind_name[2] = {"direct", "indirect"};

/* Still held where the scan found it: stopped, and not on its way out. A
 * held process can still be ended meanwhile: a SIGKILL, or the SIGHUP and
 * SIGCONT of an orphaned process group with a stopped member (a child in
 * a group of its own whose parent exits; the workload's own group is
 * never orphaned, as it leads its session). It dies while its memory is
 * read, and what could no longer be read would read as leaks. */
static bool still_held(pid_t pid)
{
	bool exiting = true;
	char path[64], state = 'X';

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return !util_task_state(path, &state, &exiting) && (state == 't' || state == 'T') &&
	       !exiting;
}

/* The worker's part (job_done logs what it found): wait for the stop,
 * take the maps, read the blocks, scan, name the leaks' stacks. */
static void job_work(struct fifo_node *n, void *arg)
{
	struct run *r = arg;
	struct leak_job *j = (struct leak_job *)n;
	struct run_wl *rw = j->rw;
	pid_t pid = (pid_t)j->ev.tgid;
	struct leak_block *b = NULL;
	size_t nb = 0;

	j->stopped = probe_wait_stopped(pid, LEAK_STOP_WAIT_MS, r->leak_worker);
	sym__snapshot(r->leak_sym, pid);
	/* The heap probe's events up to the exit are in its maps already: the
	 * uprobes ran in this process's context before it stopped. */
	j->err = leakscan_blocks(probe_heap__live_fd(rw->heap), pid, &b, &nb);
	if (!j->err)
		j->err = scan(rw->exit_hold, &j->ev, b, nb, probe_heap__partial(rw->heap, pid),
			      &j->st);
	/* What a process that died meanwhile left unread is no finding. */
	if (!j->err && !still_held(pid)) {
		j->killed = true;
		j->err = -ESRCH;
	}
	for (int k = 0; k < 2 && !j->err; k++)
		j->kinds[k] = groups(r->leak_sym, rw->heap, pid, b, nb, kind_state[k],
				     &j->unlisted[k]);
	sym__forget(r->leak_sym, pid);	/* named: the process is on its way out */
	free(b);
	j->done_ns = util_now_ns();
}

static void job_free(struct leak_job *j)
{
	json_decref(j->kinds[0]);
	json_decref(j->kinds[1]);
	free(j);
}

/* On the loop, in the order of the exits: record what the worker found and
 * let the process go on. */
static void job_done(struct fifo_node *n, void *arg)
{
	struct run *r = arg;
	struct leak_job *j = (struct leak_job *)n;
	struct run_wl *rw = j->rw;
	const struct leak_exit_event *ev = &j->ev;
	const struct leakscan_stats *st = &j->st;
	pid_t pid = (pid_t)ev->tgid;
	json_t *o;

	if (!j->stopped)
		log_warn("%s: run %s: pid %d did not stop in %dms", __func__, r->id, (int)pid,
			 LEAK_STOP_WAIT_MS);
	/* The loop's symbolizer keeps the maps at exit too, as it did when
	 * the scan ran here: later names of this pid (its sites) use them. */
	sym__snapshot(r->sym, pid);
	o = json_pack("{sssisisissso}", "workload", r->sc->wl[rw->idx].name, "pid", (int)pid,
		      "tid", (int)ev->tid, "exit_status", ev->status, "comm", ev->comm,
		      "scan", scan_json(st));
	if (o && j->err) {
		json_object_set_new(o, "error", json_string(j->killed ?
				    "it was killed while its memory was read" : strerror(-j->err)));
	} else if (o) {
		json_object_set_new(o, "direct_bytes", json_integer((json_int_t)st->direct_bytes));
		json_object_set_new(o, "direct_blocks", json_integer((json_int_t)st->direct));
		json_object_set_new(o, "indirect_bytes", json_integer((json_int_t)st->indirect_bytes));
		json_object_set_new(o, "indirect_blocks", json_integer((json_int_t)st->indirect));
		for (int k = 0; k < 2; k++) {
			json_object_set_new(o, kind_name[k], j->kinds[k] ? j->kinds[k] : json_array());
			j->kinds[k] = NULL;
			if (j->unlisted[k])
				log_info("%s: run %s: pid %d: %zu more allocation stacks not listed",
					 __func__, r->id, (int)pid, j->unlisted[k]);
		}
	}
	if (o) {
		json_object_set_new(o, "at_ms", json_integer((json_int_t)(
			j->done_ns > r->t0_ns ? (j->done_ns - r->t0_ns) / 1000000ull : 0)));
		if (!r->obs.leaks)
			r->obs.leaks = json_array();
		json_array_append_new(r->obs.leaks, o);
	}
	log_info("%s: run %s: pid %d (%s) of '%s' at exit: %zu blocks, %zu direct leaks "
		 "(%llu bytes), %zu indirect, scanned in %.1f ms%s%s", __func__, r->id, (int)pid,
		 ev->comm, r->sc->wl[rw->idx].name, st->blocks, st->direct,
		 (unsigned long long)st->direct_bytes, st->indirect, st->ms, j->err ? ": " : "",
		 j->err ? strerror(-j->err) : "");
	kill(pid, SIGCONT);
	job_free(j);
}

/* Never delivered (worker_free): the process goes on. */
static void job_drop(struct fifo_node *n, void *arg)
{
	struct leak_job *j = (struct leak_job *)n;

	(void)arg;
	kill((pid_t)j->ev.tgid, SIGCONT);
	job_free(j);
}

static const struct worker_ops leak_worker_ops = {job_work, job_done, job_drop};

/* A process stopped at its _exit: to the worker; done here, the loop
 * waiting, only when there is no worker (none could start, or the run is
 * being torn down). */
static void on_exit_hold(const struct leak_exit_event *ev, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	struct leak_job *j = calloc(1, sizeof(*j));
	int err = j ? 0 : -ENOMEM;

	if (!j) {
		log_warn("%s: run %s: pid %u: %s; not scanned", __func__, r->id, ev->tgid,
			 strerror(-err));
		kill((pid_t)ev->tgid, SIGCONT);
		return;
	}
	j->rw = rw;
	j->ev = *ev;
	err = r->leak_worker ? worker_post(r->leak_worker, &j->node) : -ESRCH;
	if (!err)
		return;
	if (err != -ESRCH)
		log_warn("%s: run %s: no worker (%s): scanning pid %u on the loop", __func__,
			 r->id, strerror(-err), ev->tgid);
	job_work(&j->node, r);
	job_done(&j->node, r);
}

int run_leak_attach(struct run *r, size_t i, pid_t pid)
{
	struct run_wl *rw = &r->rw[i];

	if (!rw->heap || !wants_leak_check(r, i))
		return 0;
	if (!r->leak_worker)
		r->leak_worker = worker_new(r->base, &leak_worker_ops, r);
	if (!r->leak_sym)
		r->leak_sym = sym__new();
	if (!r->leak_worker || !r->leak_sym)
		return -ENOMEM;
	rw->exit_hold = probe_exit__open(r->base, NULL, on_exit_hold, rw);
	if (!rw->exit_hold)
		return -errno;
	return probe_exit__attach(rw->exit_hold, pid);
}

void run_leak_fork(struct run *r, size_t wl, pid_t child)
{
	int err;

	if (!r->rw[wl].exit_hold)
		return;
	err = probe_exit__follow(r->rw[wl].exit_hold, child);
	if (err)
		log_warn("%s: run %s: child %d of '%s' is not held at exit: %s", __func__, r->id,
			 (int)child, r->sc->wl[wl].name, strerror(-err));
}

void run_leak_exit(struct run *r, size_t wl, pid_t pid)
{
	probe_exit__detach(r->rw[wl].exit_hold, pid);
}

void run_leak_drain(struct run *r)
{
	for (size_t i = 0; i < r->sc->n_wl; i++)
		probe_exit__drain(r->rw[i].exit_hold);
}

void run_leak_settle(struct run *r)
{
	run_leak_drain(r);
	worker_settle(r->leak_worker);
}

bool run_leak_defer_kill(struct run *r, struct event *ev, uint64_t limit_ms)
{
	struct timeval tv = {.tv_usec = RUN_REAP_POLL_MS * 1000};

	run_leak_drain(r);	/* a process held at exit, not yet posted */
	if (!worker_pending(r->leak_worker) || run_ms(r) >= limit_ms)
		return false;
	evtimer_add(ev, &tv);
	return true;
}

/* The scans in flight are waited for (each process is let go on as its
 * result is taken); the exits the probes' last drain finds are scanned
 * here, on the loop, with the worker gone. */
void run_leak_destroy(struct run *r)
{
	if (r->rw)
		run_leak_settle(r);
	worker_free(r->leak_worker);
	r->leak_worker = NULL;
	for (size_t i = 0; r->rw && i < r->sc->n_wl; i++) {
		probe_exit__destroy(r->rw[i].exit_hold);
		r->rw[i].exit_hold = NULL;
	}
	sym__free(r->leak_sym);
	r->leak_sym = NULL;
}
