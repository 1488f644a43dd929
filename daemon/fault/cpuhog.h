/* CPU contention on demand: busy processes pinned to chosen CPUs, in a
 * cgroup of the run, so a workload pinned beside them competes for its core
 * (the races of incidents 3 and 4 need a scheduler that interrupts). */
#ifndef FAULTD_CPUHOG_H
#define FAULTD_CPUHOG_H

#include <stddef.h>

struct cpuhog;

/* Start @threads busy processes on each of @cpus, inside the cgroup
 * directory @cgroup (created). NULL with errno. */
struct cpuhog *cpuhog__start(const char *cgroup, const int *cpus, size_t n_cpus,
			     unsigned threads);
/* Kill and reap them, remove the cgroup; NULL is fine. */
void cpuhog__stop(struct cpuhog *h);

#endif
