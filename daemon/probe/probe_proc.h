/* User side of bpf/proc.bpf.c: follows a workload's process tree (fork, exec,
 * exit) from the moment its root pid is tracked. */
#ifndef FAULTD_PROBE_PROC_H
#define FAULTD_PROBE_PROC_H

#include <sys/types.h>

#include <event2/event.h>

#include "proc.h"

struct probe_proc;

/* Called from the event loop for every event, in ring-buffer order. The event
 * is a copy the callee may keep only for the duration of the call. */
typedef void (*probe_proc_cb)(const struct proc_ev *ev, void *arg);

/* Load and attach the probe and register its ring buffer with @base.
 * Returns NULL with errno set on failure. One instance per run: its tracked
 * set is that run's process tree only. */
struct probe_proc *probe_proc__open(struct event_base *base, probe_proc_cb cb,
				    void *arg);

/* Start following @pid (a held, not yet exec'ed child) and every process it
 * forks from now on. 0 or -errno. */
int probe_proc__track(struct probe_proc *p, pid_t pid);

/* Deliver every event already in the ring buffer now; 0 or -errno. */
int probe_proc__drain(struct probe_proc *p);

/* Sum of per-CPU loss counters, indexed by enum proc_loss. */
void probe_proc__losses(const struct probe_proc *p,
			unsigned long long out[PROC_LOSS__MAX]);

/* Detach, unregister from the loop, free. NULL is fine. */
void probe_proc__destroy(struct probe_proc *p);

#endif
