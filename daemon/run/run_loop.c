/* A run lives on a thread of its own, with an event loop of its own: its
 * set-up (namespaces, links, BPF loads and verification, probe attach) and
 * its end (probe detach, teardown, judging, the report) block that thread
 * only, never the caller's loop (control clients, /metrics) nor another
 * run's fault timers. Every field of struct run is that thread's, save the
 * few below r->lock. What crosses, one way each:
 * - the caller starts the thread and asks for a stop (a flag the set-up
 *   checks between its steps, and an event on the run's loop);
 * - the run posts its cycles and its end to the caller's loop, where
 *   on_cycle and on_done are called, and publishes a status snapshot and,
 *   once, its report, which the caller's accessors read. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "run_priv.h"
#include "util.h"

struct run_post {
	struct fifo_node node;
	json_t *cycle;			/* owned; NULL for the end */
};

/* --- the caller's side ------------------------------------------------------ */

/* On the caller's loop: the cycles, in order, then the end. After on_done
 * the run may be gone (the caller frees it there). */
static void on_post(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	struct run_post *p;
	bool done = false;

	(void)fd;
	(void)what;
	while (!done) {
		pthread_mutex_lock(&r->lock);
		p = fifo_pop(&r->posts);
		pthread_mutex_unlock(&r->lock);
		if (!p)
			break;
		done = !p->cycle;
		if (p->cycle && r->opts.on_cycle)
			r->opts.on_cycle(r, p->cycle, r->opts.arg);
		json_decref(p->cycle);
		free(p);
	}
	/* Done only now, for the caller: a run it sees done it may free, and
	 * this one's end has to be told first. */
	if (done)
		__atomic_store_n(&r->pub_state, (int)RUN_DONE, __ATOMIC_RELEASE);
	if (done && r->opts.on_done)
		r->opts.on_done(r, run__report(r), r->opts.arg);
}

static void on_stop_asked(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	char reason[sizeof(r->stop_asked)];

	(void)fd;
	(void)what;
	run_loop_stop_reason(r, reason, sizeof(reason));
	run_stop_now(r, reason);
}

int run_loop_init(struct run *r, struct event_base *loop)
{
	int err = 0;

	pthread_mutex_init(&r->lock, NULL);
	r->lock_ready = true;
	/* The caller's niceness, which the run's thread inherits. */
	errno = 0;
	r->nice_timing = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (errno)
		r->nice_timing = 0;
	r->nice_background = r->nice_timing;
	r->loop = loop;
	r->base = util_event_base();
	r->post_ev = event_new(loop, -1, 0, on_post, r);
	r->stop_ev = r->base ? event_new(r->base, -1, 0, on_stop_asked, r) : NULL;
	if (!r->base || !r->post_ev || !r->stop_ev)
		err = -ENOMEM;
	return err;
}

/* A run's set-up (BPF loads and verification, namespaces, attaches) and
 * its end (teardown, judging, the report) are CPU work with no deadline;
 * while they go on, other runs' fault timers are due on the same cores.
 * So the run's thread is niced by this much outside its clock, and back to
 * the niceness it started with while its clock runs. Its workloads start
 * with that niceness too (sup.c). FAULTD_SETUP_NICE changes the step (0:
 * none), for the benchmark that compares the two. */
#define RUN_BACKGROUND_NICE 5

static int background_step(void)
{
	const char *env = getenv("FAULTD_SETUP_NICE");
	char *end;
	long n;

	if (!env || !*env)
		return RUN_BACKGROUND_NICE;
	n = strtol(env, &end, 10);
	return *end || n < 0 || n > 19 ? RUN_BACKGROUND_NICE : (int)n;
}

void run_loop_timing(struct run *r, bool timing)
{
	int nice = timing ? r->nice_timing : r->nice_background;

	/* Equal: not niced at all (a run on the caller's thread, or a step
	 * of 0). */
	if (r->nice_background != r->nice_timing &&
	    setpriority(PRIO_PROCESS, (id_t)gettid(), nice) < 0)
		log_debug("%s: run %s: nice %d: %s", __func__, r->id, nice, strerror(errno));
}

/* The run's own thread: it starts niced for its set-up. */
static void nice_init(struct run *r)
{
	r->nice_background = r->nice_timing + background_step();
	if (r->nice_background > 19)
		r->nice_background = 19;
	run_loop_timing(r, false);
}

static void *run_thread(void *arg)
{
	nice_init(arg);
	run_loop_body(arg);
	return NULL;
}

void run_loop_start(struct run *r)
{
	sigset_t all, old;
	int err;

	/* Signals are the caller's loop's to hear; the run's children get
	 * their own mask back before exec (sup.c). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&r->thread, NULL, run_thread, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err) {
		r->thread_started = true;
		return;
	}
	/* No thread: the run goes on here, holding the caller's loop. */
	log_warn("%s: run %s: no thread of its own (%s); running it on the caller's",
		 __func__, r->id, strerror(err));
	run_loop_body(r);
}

void run_loop_stop(struct run *r, const char *reason)
{
	bool ask;

	pthread_mutex_lock(&r->lock);
	ask = !r->stop_asked[0] && run__state(r) != RUN_DONE;
	if (ask)
		snprintf(r->stop_asked, sizeof(r->stop_asked), "%s", reason);
	pthread_mutex_unlock(&r->lock);
	if (!ask)
		return;
	__atomic_store_n(&r->cancel, true, __ATOMIC_RELEASE);
	if (!r->thread_started)
		run_loop_start(r);	/* never started: it ends at once, on its thread */
	else
		event_active(r->stop_ev, EV_READ, 0);
}

void run_loop_join(struct run *r)
{
	if (!r->thread_started)
		return;
	if (__atomic_load_n(&r->pub_state, __ATOMIC_ACQUIRE) != RUN_DONE)
		run_loop_stop(r, "the run is being freed");
	pthread_join(r->thread, NULL);
	r->thread_started = false;
}

void run_loop_free(struct run *r)
{
	struct run_post *p;

	if (r->post_ev)
		event_free(r->post_ev);
	if (r->stop_ev)
		event_free(r->stop_ev);
	r->post_ev = r->stop_ev = NULL;
	while ((p = fifo_pop(&r->posts))) {
		json_decref(p->cycle);
		free(p);
	}
	json_decref(r->pub_status);
	json_decref(r->pub_report);
	if (r->lock_ready)
		pthread_mutex_destroy(&r->lock);
}

enum run_state run__state(const struct run *r)
{
	return (enum run_state)__atomic_load_n(&r->pub_state, __ATOMIC_ACQUIRE);
}

const json_t *run__report(const struct run *r)
{
	const json_t *rep;

	pthread_mutex_lock((pthread_mutex_t *)&r->lock);
	rep = r->pub_report;
	pthread_mutex_unlock((pthread_mutex_t *)&r->lock);
	return rep;
}

json_t *run__status(const struct run *r)
{
	uint64_t t0 = __atomic_load_n(&r->pub_t0_ns, __ATOMIC_ACQUIRE);
	enum run_state st = run__state(r);
	json_t *copy;

	pthread_mutex_lock((pthread_mutex_t *)&r->lock);
	copy = r->pub_status ? json_deep_copy(r->pub_status) : NULL;
	pthread_mutex_unlock((pthread_mutex_t *)&r->lock);
	if (!copy)
		return NULL;
	json_object_set_new(copy, "state", json_string(run__state_name(st)));
	if (t0 && st != RUN_DONE)
		json_object_set_new(copy, "elapsed_s",
				    json_real((double)(util_now_ns() - t0) / 1e9));
	return copy;
}

/* --- the run's side --------------------------------------------------------- */

bool run_loop_cancelled(const struct run *r)
{
	return __atomic_load_n(&r->cancel, __ATOMIC_ACQUIRE);
}

void run_loop_stop_reason(struct run *r, char *buf, size_t len)
{
	pthread_mutex_lock(&r->lock);
	snprintf(buf, len, "%s", r->stop_asked);
	pthread_mutex_unlock(&r->lock);
}

void run_set_state(struct run *r, enum run_state s)
{
	r->state = s;
	if (s != RUN_DONE)
		__atomic_store_n(&r->pub_state, (int)s, __ATOMIC_RELEASE);
	run_publish(r);
}

void run_publish(struct run *r)
{
	json_t *st = run_status_build(r), *old;

	if (r->state != RUN_STARTING && r->t0_ns)
		__atomic_store_n(&r->pub_t0_ns, r->t0_ns, __ATOMIC_RELEASE);
	if (!st)
		return;
	pthread_mutex_lock(&r->lock);
	old = r->pub_status;
	r->pub_status = st;
	pthread_mutex_unlock(&r->lock);
	json_decref(old);
}

static void post(struct run *r, json_t *cycle)
{
	struct run_post *p = calloc(1, sizeof(*p));

	if (!p) {
		log_warn("%s: run %s: out of memory; a %s is not told", __func__, r->id,
			 cycle ? "cycle" : "run's end");
		json_decref(cycle);
		return;
	}
	p->cycle = cycle;
	pthread_mutex_lock(&r->lock);
	fifo_push(&r->posts, &p->node);
	pthread_mutex_unlock(&r->lock);
	event_active(r->post_ev, EV_READ, 0);
}

void run_post_cycle(struct run *r, json_t *cycle)
{
	post(r, cycle);
}

/* The last thing the run's thread does with the run: after it, the caller
 * may free it (run__free joins the thread first). */
void run_post_done(struct run *r)
{
	run_publish(r);
	pthread_mutex_lock(&r->lock);
	r->pub_report = json_incref(r->report);
	pthread_mutex_unlock(&r->lock);
	event_base_loopexit(r->base, NULL);
	post(r, NULL);
}

void run_loop_body(struct run *r)
{
	run_begin(r);
	event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
}
