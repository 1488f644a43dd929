/* User side of bpf/heap.bpf.c: every malloc and free of a workload's
 * process, from its first instruction. */
#ifndef FAULTD_PROBE_HEAP_H
#define FAULTD_PROBE_HEAP_H

#include <stdbool.h>
#include <sys/types.h>

#include <event2/event.h>

#include <jansson.h>

#include "heap.h"
#include "probe_alloc.h"

struct probe_heap;

/* Where a bad free's pointer came from: a recently freed block of the
 * process whose memory still holds the pointer. The pointer was most likely
 * read from that block after it was freed (a use after free), and the
 * block's free is "the free that released it". */
struct heap_source {
	__u64 block;			/* the freed block holding the pointer */
	__u64 offset;			/* where in it */
	struct heap_freed freed;	/* its free: stack, caller, thread, time */
	bool reused;			/* allocated again since, by @now */
	struct heap_block now;
	unsigned int others;		/* other freed blocks holding it too */
};

/* What was learnt about a bad free before its callback, off the event loop
 * (waiting for the held process to stop takes up to HEAP_STOP_WAIT_MS, the
 * search up to 65,536 reads of 64 KiB). */
struct heap_finding {
	bool stopped;			/* every thread stopped (or gone) in time */
	int source_err;			/* 0: @source is where the pointer was read;
					 * -ENOENT: no freed block holds it;
					 * -EAGAIN: not searched; or -errno */
	struct heap_source source;
};

#define HEAP_STOP_WAIT_MS 200	/* for the SIGSTOP sent at a bad free to land */

/* A bad free, in the order seen; with stop_on_bad_free the process is
 * still held and the callback must let it go on (SIGCONT). */
typedef void (*probe_heap_cb)(const struct heap_event *ev, const struct heap_finding *f,
			      void *arg);
typedef void (*probe_heap_site_cb)(const struct heap_site *site, __s32 stack_id,
				   void *arg);

struct probe_heap_opts {
	bool stacks;			/* allocation and free stacks */
	bool remember_frees;		/* double free vs never allocated */
	bool trap_only;			/* benchmarks: programs do nothing */
	bool stop_on_bad_free;		/* SIGSTOP at a bad free; the callback must SIGCONT */
	unsigned source_searches;	/* frees of a pointer never allocated whose
					 * source is searched for (a storm is not) */
	const char *exe;		/* the program the held child will exec;
					 * NULL: the daemon's own C library */
	const char *const *env;		/* its extra environment (LD_PRELOAD), or NULL */
	const struct sc_allocator *user;	/* a user's own allocators, kept by the caller */
	size_t n_user;
};

/* Load (not attach). NULL with errno set. */
struct probe_heap *probe_heap__open(struct event_base *base,
				    const struct probe_heap_opts *opts,
				    probe_heap_cb cb, void *arg);
/* Attach the entry points of the program's allocator to @pid (a held
 * child). An allocator faultd does not know attaches nothing and is named
 * by probe_heap__unknown(). 0 or -errno. */
int probe_heap__attach(struct probe_heap *p, pid_t pid);
/* Follow a child of an attached process too. Its heap began as a copy of
 * its parent's, so a free that finds no block there may be of an inherited
 * block: it is counted (HEAP_C_CHILD_UNJUDGED), never called invalid, and
 * remembered, so freeing it again is still a double free. */
int probe_heap__add_child(struct probe_heap *p, pid_t pid, pid_t ppid);
/* Was @pid's tracking begun after its first allocations (a forked child, a
 * program exec'd), so that some of its blocks are unknown? Thread-safe. */
bool probe_heap__partial(struct probe_heap *p, pid_t pid);
/* @pid (followed) exec'ed a new program: probe that program's allocator
 * (read from /proc/PID/exe and its environment). Its first frees may be
 * of blocks allocated before: counted, never judged. 0 or -errno. */
int probe_heap__exec(struct probe_heap *p, pid_t pid);
/* Per program: the allocator found, its entry points probed, the pids
 * that ran it: [{"exe", "allocator", "known", "why", "entry_points",
 * "pids", "processes"}]. */
json_t *probe_heap__coverage(const struct probe_heap *p);
/* Why a program of the workload has an allocator faultd cannot judge, or
 * NULL when every one is known. */
const char *probe_heap__unknown(const struct probe_heap *p);
/* Drop a process's probes (it exited). */
void probe_heap__detach(struct probe_heap *p, pid_t pid);
/* Read the ring now; bad frees that need looking into go to the worker
 * and reach the callback from the loop when done. */
int probe_heap__drain(struct probe_heap *p);
/* Drain, then wait for every bad free being looked into and deliver it (a
 * run's end: its processes are gone, so this takes no wait). */
void probe_heap__settle(struct probe_heap *p);
/* Sums of the per-CPU counters, by enum heap_counter. */
void probe_heap__counters(const struct probe_heap *p,
			  unsigned long long out[HEAP_C__MAX]);
/* Every allocation site with live blocks. 0 or -errno. */
int probe_heap__sites(struct probe_heap *p, probe_heap_site_cb cb, void *arg);
/* The frames of a stack id; returns how many (0 if unknown). */
int probe_heap__stack(struct probe_heap *p, __s32 stack_id, __u64 *ips, int max);
/* Which offset each probe uses and why, e.g. "free+9 (push: emulated)". */
const char *probe_heap__placement(const struct probe_heap *p);
/* The live map: no_leak's scan reads it. */
int probe_heap__live_fd(const struct probe_heap *p);
void probe_heap__destroy(struct probe_heap *p);


#endif
