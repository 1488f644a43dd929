/* User side of bpf/leak.bpf.c: hold a process at the C library's _exit,
 * with its memory still mapped, until the callback has looked at it. */
#ifndef FAULTD_PROBE_EXIT_H
#define FAULTD_PROBE_EXIT_H

#include <stdbool.h>
#include <sys/types.h>

#include <event2/event.h>

#include "leak.h"

struct probe_exit;
struct worker;

/* Called with the process stopped (SIGSTOP on its way, see
 * probe_exit_wait_stopped); the callback must let it go on (SIGCONT). */
typedef void (*probe_exit_cb)(const struct leak_exit_event *ev, void *arg);

/* Load (not attach); @libc is the C library the workload maps (NULL:
 * "libc.so.6", found as the dynamic linker would; not the allocator's
 * library, which may be another). NULL with errno set. */
struct probe_exit *probe_exit__open(struct event_base *base, const char *libc,
				    probe_exit_cb cb, void *arg);
/* Hold @pid (not its children) at _exit. 0 or -errno. */
int probe_exit__attach(struct probe_exit *p, pid_t pid);
/* The same for a forked child, off the loop (probe_attach.h): the hold is
 * there from when the attacher's thread is done. 0 or -errno (the error
 * of the attach itself is logged when it is over). */
int probe_exit__follow(struct probe_exit *p, pid_t pid);
void probe_exit__detach(struct probe_exit *p, pid_t pid);
int probe_exit__drain(struct probe_exit *p);
/* Every thread's registers and stack pointer of @pid (held stopped), by
 * an iter/task program: a new array in *out. -ENOTSUP where the kernel
 * refused the program (the caller falls back to /proc and the exiting
 * thread's registers), or -errno. */
int probe_exit__threads(struct probe_exit *p, pid_t pid, struct leak_thread **out, size_t *n);
/* Processes held, and processes let exit unheld (ring buffer full). */
void probe_exit__counters(const struct probe_exit *p, unsigned long long *held,
			  unsigned long long *lost);
/* Drains pending events first: no process is left stopped. */
void probe_exit__destroy(struct probe_exit *p);

/* Wait (at most @max_ms, less once worker @w, if any, is stopping) until
 * @pid is stopped or gone: the SIGSTOP a probe sends lands on the way back
 * to user space, maybe after the event is read, and a SIGCONT sent before
 * it would be lost. Did it stop? Logs nothing (worker threads call it). */
bool probe_wait_stopped(pid_t pid, int max_ms, const struct worker *w);
/* Is every thread of @pid stopped (or gone)? Logs nothing (worker threads
 * call it). */
bool probe_all_stopped(pid_t pid);

#endif
