/* A worker thread for an event loop (worker.h): jobs go in through one
 * queue and come back through another, both under one lock; an eventfd on
 * the loop says that some came back. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "worker.h"

struct worker {
	const struct worker_ops *ops;
	void *arg;
	struct event_base *base;
	pthread_t thread;
	bool up;
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* a job posted, one done, or stopping */
	struct fifo todo, done;		/* handed over; done, not yet delivered */
	bool stopping;			/* atomic */
	unsigned pending;		/* the loop's: posted, not delivered */
	int wake_fd;			/* eventfd: the thread finished a job */
	struct event *wake_ev;
};

struct worker *worker_new(struct event_base *base, const struct worker_ops *ops, void *arg)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	w->ops = ops;
	w->arg = arg;
	w->base = base;
	w->wake_fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	return w;
}

bool worker_stopping(const struct worker *w)
{
	return __atomic_load_n(&w->stopping, __ATOMIC_RELAXED);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fifo_node *j;

	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		j = fifo_pop(&w->todo);
		if (!j) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		pthread_mutex_unlock(&w->mu);
		w->ops->work(j, w->arg);
		pthread_mutex_lock(&w->mu);
		fifo_push(&w->done, j);
		pthread_cond_broadcast(&w->cv);
		eventfd_write(w->wake_fd, 1);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hand what the thread did to ops->done, in the order posted. */
static void deliver(struct worker *w)
{
	struct fifo_node *j;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		j = fifo_pop(&w->done);
		pthread_mutex_unlock(&w->mu);
		if (!j)
			break;
		w->pending--;
		w->ops->done(j, w->arg);
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	eventfd_t n;

	(void)what;
	eventfd_read(fd, &n);
	deliver(arg);
}

static int start(struct worker *w)
{
	sigset_t all, old;
	int err;

	/* What an earlier try made is kept for the next. */
	if (w->wake_fd < 0)
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	if (!w->wake_ev)
		w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_done, w);
	if (!w->wake_ev || event_add(w->wake_ev, NULL) < 0)
		return -ENOMEM;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);	/* signals stay the loop's */
	err = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	w->up = !err;
	return err;
}

int worker_post(struct worker *w, struct fifo_node *job)
{
	int err = w->up ? 0 : start(w);

	if (err)
		return err;
	w->pending++;
	pthread_mutex_lock(&w->mu);
	fifo_push(&w->todo, job);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

unsigned worker_pending(const struct worker *w)
{
	return w ? w->pending : 0;
}

void worker_settle(struct worker *w)
{
	while (w && w->pending) {
		pthread_mutex_lock(&w->mu);
		while (fifo_empty(&w->done))
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		deliver(w);
	}
}

void worker_free(struct worker *w)
{
	struct fifo *lists[2];
	struct fifo_node *j;

	if (!w)
		return;
	lists[0] = &w->todo;
	lists[1] = &w->done;
	if (w->up) {
		pthread_mutex_lock(&w->mu);
		__atomic_store_n(&w->stopping, true, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	for (int l = 0; l < 2; l++)
		while ((j = fifo_pop(lists[l])))
			w->ops->drop(j, w->arg);
	if (w->wake_ev)
		event_free(w->wake_ev);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
