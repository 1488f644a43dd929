/* A thread that does an event loop's slow work: the loop posts jobs, the
 * thread does each one's work in turn, and the loop gets them back, done,
 * in the order they were posted (on the loop, from an eventfd). Jobs are
 * items whose first member is a struct fifo_node (fifo.h). The thread is
 * started at the first post. What a job found is logged by ops->done, on
 * the loop, where the log lines of the run are in their order. */
#ifndef FAULTD_WORKER_H
#define FAULTD_WORKER_H

#include <stdbool.h>

#include <event2/event.h>

#include "fifo.h"

struct worker;

struct worker_ops {
	void (*work)(struct fifo_node *job, void *arg);	/* on the thread */
	void (*done)(struct fifo_node *job, void *arg);	/* on the loop, in order; owns the job */
	void (*drop)(struct fifo_node *job, void *arg);	/* worker_free: never delivered; owns it */
};

/* NULL with errno set. @ops and @arg outlive the worker. */
struct worker *worker_new(struct event_base *base, const struct worker_ops *ops, void *arg);
/* Hand @job over: 0, or -errno when there is no thread (the job is not
 * taken; the caller does the work itself). */
int worker_post(struct worker *w, struct fifo_node *job);
/* Posted and not yet delivered (the loop's count). */
unsigned worker_pending(const struct worker *w);
/* On the loop: wait until every job posted has been done and delivered. */
void worker_settle(struct worker *w);
/* On the thread: worker_free has begun; long work ends early. */
bool worker_stopping(const struct worker *w);
/* The thread ends after the job it is doing; the jobs not delivered are
 * dropped (ops->drop). */
void worker_free(struct worker *w);

#endif
