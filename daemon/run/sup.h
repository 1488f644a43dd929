/* Workload processes: fork, hold the child until its probes are attached,
 * then exec; capture its output into bounded files; report its exit through
 * the event loop (a pidfd, so no SIGCHLD handler). */
#ifndef FAULTD_SUP_H
#define FAULTD_SUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <linux/filter.h>

#include <event2/event.h>

struct sup_child;

struct sup_spec {
	const char *name;		/* for log lines */
	const char *const *argv;	/* argv[0] is looked up in PATH */
	const char *const *env_extra;	/* "K=V" added to faultd's environment */
	const char *cwd;		/* NULL: inherit */
	const char *cgroup;		/* cgroup directory to join before exec */
	const char *out_path;		/* captured stdout */
	const char *err_path;		/* captured stderr */
	size_t out_max;			/* bytes kept per stream: half head, half tail */
	const char *netns;		/* /run/netns/NAME to enter before exec, or NULL */
	const struct sock_fprog *seccomp; /* installed just before exec, or NULL */
	const int *cpus;		/* pinned to these CPUs before exec */
	size_t n_cpus;			/* 0: not pinned */
	int nice;			/* its niceness (not the spawning thread's) */
	/* Output arrived on stdout: progress a run can watch for. */
	void (*on_output)(void *arg, size_t bytes);
	void *output_arg;
};

/* The child's wait status, as waitpid(2) encodes it. */
typedef void (*sup_exit_cb)(struct sup_child *c, int status, void *arg);

/* Fork a held child (it has not exec'ed yet). 0 or -errno. */
int sup__spawn(struct event_base *base, const struct sup_spec *spec,
	       sup_exit_cb cb, void *arg, struct sup_child **out);
/* Let the held child exec. Returns 0 once it has, or -errno of a failed exec
 * (the child then exits 127 and its exit is still reported). */
int sup__release(struct sup_child *c);
pid_t sup__pid(const struct sup_child *c);
bool sup__exited(const struct sup_child *c);
int sup__kill(struct sup_child *c, int sig);	/* no-op once exited */
/* Capture statistics: bytes seen and bytes dropped over both streams. */
void sup__output_stats(const struct sup_child *c, unsigned long long *seen,
		       unsigned long long *dropped);
/* Read what is left in the pipes, close files, free. Does not kill. */
void sup__free(struct sup_child *c);

#endif
