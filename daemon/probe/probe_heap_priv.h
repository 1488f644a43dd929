/* probe_heap.c and probe_heap_bad.c: the heap probe's state, shared by
 * the probe (attach, events, sites) and its bad-free worker. */
#ifndef FAULTD_PROBE_HEAP_PRIV_H
#define FAULTD_PROBE_HEAP_PRIV_H

#include <stdbool.h>

#include <event2/event.h>

#include "fifo.h"
#include "heap.skel.h"
#include "probe_attach.h"
#include "probe_alloc.h"
#include "probe_heap.h"
#include "probe_util.h"
#include "worker.h"

#define HEAP_MAX_PIDS 4096	/* processes followed at once */
#define HEAP_MAX_PLANS 32	/* distinct programs (exe, LD_PRELOAD) of one workload */
#define HEAP_COVERAGE_PIDS 16	/* pids listed per program in the coverage */

struct heap_link {
	struct bpf_link *link;		/* a perf-event uprobe's, or NULL */
	int fd;				/* else a uprobe_multi link's */
	const struct alloc_target *t;	/* in a plan, kept until destroy */
	bool ret;
};

/* A bad free being looked into by the worker, or looked into. */
struct heap_job {
	struct fifo_node node;
	struct heap_event ev;
	bool search;			/* for the pointer's source */
	struct heap_finding found;
};

struct heap_pid {
	pid_t pid;
	struct heap_link *links;
	int n_links, cap_links;
	int plan;			/* index into probe_heap.plans (the last posted) */
	unsigned inflight;		/* its attaches posted, not yet delivered */
	bool held;			/* attached before its exec: that exec is planned */
};

/* An attach of a plan's entry points to a followed process, on the
 * attacher's thread; its links reach the process's heap_pid on the loop. */
struct heap_attach {
	struct probe_attach_job j;	/* first */
	int plan;
	bool exec;			/* then drop the links the plan does not have */
};

/* One program's allocator and the processes that ran it. */
struct heap_plan {
	char key[ALLOC_PATH_MAX * 2];	/* exe and LD_PRELOAD */
	char exe[ALLOC_PATH_MAX];
	struct alloc_plan plan;
	pid_t pids[HEAP_COVERAGE_PIDS];
	unsigned n_procs;
};

struct probe_heap {
	struct heap_bpf *skel;
	struct probe_ring ring;
	struct heap_pid *pids;		/* the processes attached, with their links */
	size_t n_pids;
	struct heap_plan *plans;	/* [HEAP_MAX_PLANS] */
	size_t n_plans;
	const struct sc_allocator *user;	/* the scenario's own allocators */
	size_t n_user;
	bool multi;			/* links are uprobe_multi links */
	bool stop_on_bad_free;
	unsigned searches_left;
	probe_heap_cb cb;
	void *arg;
	/* Bad frees are looked into by a worker thread (worker.h), started at
	 * the first: the loop hands it jobs and takes back what it found. */
	struct worker *worker;
	/* Forked and exec'ed processes are attached to by another thread
	 * (probe_attach.h): the table above stays the loop's alone. */
	struct probe_attacher *attacher;
};

/* probe_heap_bad.c: a bad free from the ring, to the callback at once or
 * through the worker (the wait for the stop, the pointer's source). */
void heap_bad_free(struct probe_heap *p, const struct heap_event *ev);
/* The worker, on the probe's loop; 0 or -errno. worker_free(p->worker)
 * lets a process held at an undelivered bad free go on. */
int heap_worker_init(struct probe_heap *p, struct event_base *base);

#endif
