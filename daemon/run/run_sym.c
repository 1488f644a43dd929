/* A run's findings named off its loop: a crash's backtrace and a bad
 * free's stacks (run_procs.c, run_probes.c). libdwfl reads the program's
 * and its libraries' debug info the first time it names a frame of a
 * process (0.1 to 0.8 s for a big one here), and the run's fault timers
 * would wait meanwhile. So the loop reads the process's maps (cheap), takes
 * the stacks' addresses and posts both; the run's naming worker (worker.h)
 * names them with a symbolizer of its own (r->name_sym; the loop's r->sym
 * is never touched by it), from that copy of the maps, so a process that is
 * gone by then is named all the same: its files are opened by path, as
 * they are for any process named from a snapshot. The loop takes the names
 * back in the order the findings came, puts them in and records the
 * finding as it always did. A process held at a bad free stays held until
 * its names are in, as when the loop named them: the evidence is complete
 * before the C library can abort it, and a program that frees badly in a
 * loop makes one bad free at a time, never a queue of them. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "log.h"
#include "run_priv.h"
#include "sym.h"
#include "util.h"
#include "worker.h"

/* The worker's niceness: naming is background work, and on a busy host
 * (2 cores here) the run's loop, whose fault timers are due, goes first. */
#define RUN_SYM_NICE 10

struct run_sym_job *run_sym_job_new(struct run *r, pid_t pid, size_t size,
				    run_sym_done_fn *done)
{
	struct run_sym_job *j = calloc(1, size);

	if (!j)
		return NULL;
	j->done = done;
	j->pid = pid;
	/* Fresh maps if it lives; else the last ones taken (at exec, shortly
	 * after, at a cycle's end). None: its frames are addresses. */
	sym__snapshot(r->sym, pid);
	if (sym__maps(r->sym, pid, &j->maps, &j->maps_len) == -ENOMEM)
		log_warn("%s: run %s: pid %d: no memory for its maps; frames unnamed", __func__,
			 r->id, (int)pid);
	return j;
}

void run_sym_stack(struct run_sym_job *j, json_t *in, const char *key, const uint64_t *ips,
		   int n, bool first_is_ip)
{
	struct run_sym_stack *st;

	if (!in || j->n >= RUN_SYM_STACKS)
		return;
	st = &j->st[j->n++];
	st->n = n < 0 ? 0 : n > RUN_SYM_FRAMES ? RUN_SYM_FRAMES : n;
	memcpy(st->ips, ips, (size_t)st->n * sizeof(st->ips[0]));
	st->first_is_ip = first_is_ip;
	st->in = in;
	st->key = key;
	json_object_set_new(in, key, json_null());	/* its place, in the order it had */
}

/* The names, from the maps the loop read. */
static void name(struct run *r, struct run_sym_job *j)
{
	uint64_t t0 = util_now_ns();

	sym__adopt(r->name_sym, j->pid, j->maps, j->maps_len);
	j->maps = NULL;
	for (size_t k = 0; k < j->n; k++)
		j->named[k] = sym__frames(r->name_sym, j->pid, j->st[k].ips, j->st[k].n,
					  j->st[k].first_is_ip);
	if (j->forget)
		sym__forget(r->name_sym, j->pid);
	j->naming_ns = util_now_ns() - t0;
}

/* The worker's part (its thread only: the loop is never niced). */
static void job_work(struct fifo_node *node, void *arg)
{
	static __thread bool niced;	/* each run's worker is a thread of its own */

	if (!niced && setpriority(PRIO_PROCESS, (id_t)gettid(), RUN_SYM_NICE) == 0)
		niced = true;
	name(arg, (struct run_sym_job *)node);
}

static void job_free(struct run_sym_job *j)
{
	json_decref(j->found);
	for (size_t k = 0; k < j->n; k++)
		json_decref(j->named[k]);
	free(j->maps);
	free(j);
}

/* On the loop, in the order posted: the names go in, the finding is
 * recorded. */
static void job_done(struct fifo_node *node, void *arg)
{
	struct run *r = arg;
	struct run_sym_job *j = (struct run_sym_job *)node;

	for (size_t k = 0; k < j->n; k++) {
		json_object_set_new(j->st[k].in, j->st[k].key,
				    j->named[k] ? j->named[k] : json_array());
		j->named[k] = NULL;
	}
	log_debug("%s: run %s: pid %d: %zu stacks named in %.1f ms", __func__, r->id,
		  (int)j->pid, j->n, (double)j->naming_ns / 1e6);
	j->done(r, j);
	if (j->hold)
		kill(j->hold, SIGCONT);
	job_free(j);
}

/* Never delivered (run_sym_destroy before a settle: the run failed): a
 * process held goes on. */
static void job_drop(struct fifo_node *node, void *arg)
{
	struct run_sym_job *j = (struct run_sym_job *)node;

	(void)arg;
	if (j->hold)
		kill(j->hold, SIGCONT);
	job_free(j);
}

static const struct worker_ops name_worker_ops = {job_work, job_done, job_drop};

void run_sym_post(struct run *r, struct run_sym_job *j)
{
	int err = -ENOMEM;

	if (!r->name_worker)
		r->name_worker = worker_new(r->base, &name_worker_ops, r);
	if (!r->name_sym)
		r->name_sym = sym__new();
	if (r->name_worker && r->name_sym)
		err = worker_post(r->name_worker, &j->node);
	if (!err)
		return;
	/* Named here, as before the worker: the loop waits. */
	log_warn("%s: run %s: no naming worker (%s): naming pid %d's stacks on the loop",
		 __func__, r->id, strerror(-err), (int)j->pid);
	name(r, j);
	job_done(&j->node, r);
}

void run_sym_settle(struct run *r)
{
	worker_settle(r->name_worker);
}

void run_sym_destroy(struct run *r)
{
	worker_free(r->name_worker);
	r->name_worker = NULL;
	sym__free(r->name_sym);
	r->name_sym = NULL;
}
