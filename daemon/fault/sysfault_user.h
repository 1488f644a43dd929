/* User side of bpf/sysfault.bpf.c: socket() errors in a workload's cgroup. */
#ifndef FAULTD_SYSFAULT_USER_H
#define FAULTD_SYSFAULT_USER_H

#include "sysfault.h"

struct sysfault;

/* Attach to the cgroup directory @cgroup. NULL with errno. */
struct sysfault *sysfault__attach(const char *cgroup);
int sysfault__set(struct sysfault *sf, const struct sysfault_conf *c);	/* 0 or -errno */
void sysfault__stats(const struct sysfault *sf, struct sysfault_stats *out);
void sysfault__destroy(struct sysfault *sf);

#endif
