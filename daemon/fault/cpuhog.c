#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cpuhog.h"
#include "log.h"

struct cpuhog {
	char cgroup[PATH_MAX];
	pid_t *pids;
	size_t n;
};

/* The child: into the cgroup, onto its CPU, then spin until killed. Only
 * async-signal-safe calls between fork and the loop. */
static void hog(const char *procs, int cpu)
{
	cpu_set_t set;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) < 0)
			_exit(1);
		close(fd);
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		_exit(1);
	for (volatile unsigned long spin = 0;; spin++)
		;
}

struct cpuhog *cpuhog__start(const char *cgroup, const int *cpus, size_t n_cpus,
			     unsigned threads)
{
	char procs[PATH_MAX + 16];
	struct cpuhog *h;
	int err;

	h = calloc(1, sizeof(*h));
	if (!h || !(h->pids = calloc(n_cpus * threads, sizeof(*h->pids)))) {
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	snprintf(h->cgroup, sizeof(h->cgroup), "%s", cgroup);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
	err = cgroup_create(cgroup);
	for (size_t c = 0; !err && c < n_cpus; c++) {
		for (unsigned t = 0; !err && t < threads; t++) {
			pid_t pid = fork();

			if (pid < 0)
				err = -errno;
			else if (pid == 0)
				hog(procs, cpus[c]);
			else
				h->pids[h->n++] = pid;
		}
	}
	if (err) {
		log_warn("%s: %s: %s", __func__, cgroup, strerror(-err));
		cpuhog__stop(h);
		errno = -err;
		return NULL;
	}
	return h;
}

void cpuhog__stop(struct cpuhog *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		kill(h->pids[i], SIGKILL);
	for (size_t i = 0; i < h->n; i++)
		while (waitpid(h->pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	cgroup_destroy(h->cgroup);
	free(h->pids);
	free(h);
}
