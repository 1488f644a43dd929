/* Syscall errors for calls a cgroup BPF hook cannot reach: a seccomp filter
 * (SECCOMP_RET_ERRNO) built here and installed by the supervisor in the
 * child just before exec. The filter is fixed for the process's life, so
 * these faults hold for the whole run and every call fails; socket() is the
 * exception, done at run time by sysfault (cgroup/sock_create). */
#ifndef FAULTD_SECFAULT_H
#define FAULTD_SECFAULT_H

#include <stddef.h>

#include <linux/filter.h>

#define SECFAULT_SOCKET 0	/* index of "socket": not seccomp's */

/* The calls a scenario may name, NULL-terminated; index 0 is "socket". */
extern const char *const secfault_calls[];

/* One rule per call: seccomp makes @call (an index of secfault_calls) fail
 * with @err. */
struct secfault_rule {
	int call;
	int err;
};

/* Build the filter for @n rules into @prog (its filter array is malloc'ed;
 * free with secfault_free). 0 or -errno. */
int secfault_build(const struct secfault_rule *rules, size_t n, struct sock_fprog *prog);
void secfault_free(struct sock_fprog *prog);

#endif
