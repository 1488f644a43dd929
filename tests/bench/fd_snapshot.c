/* The fd snapshot of a process holding N fds (default 10000): the
 * iter/task_file probe against reading /proc/PID/fd, side by side. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "probe_fds.h"

#define ROUNDS 21

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000, ready[2];
	double probe_ms[ROUNDS], proc_ms[ROUNDS];
	long long counts[FD_T__MAX], total = 0;
	struct probe_fds *p;
	pid_t pid;
	char c;

	log_set_level(LOG_WARN);
	if (pipe(ready) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = (rlim_t)n + 64, .rlim_max = (rlim_t)n + 64};

		setrlimit(RLIMIT_NOFILE, &rl);
		for (int i = 0; i < n; i++)
			if (open("/dev/null", O_RDONLY) < 0)
				_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "fd_snapshot: child could not open %d fds\n", n);
		return 1;
	}
	p = probe_fds__open();
	if (!p)
		return 1;
	for (int r = 0; r < ROUNDS; r++) {
		char path[64];
		struct dirent *de;
		DIR *d;
		double t0 = now_ms();
		int seen = 0;

		for (int t = 0; t < FD_T__MAX; t++)
			counts[t] = 0;
		probe_fds__snapshot(p, pid, counts);
		probe_ms[r] = now_ms() - t0;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		t0 = now_ms();
		d = opendir(path);
		while (d && (de = readdir(d))) {
			char link[512], target[256];

			if (de->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
			if (readlink(link, target, sizeof(target)) > 0)
				seen++;
		}
		if (d)
			closedir(d);
		proc_ms[r] = now_ms() - t0;
		(void)seen;
	}
	for (int t = 0; t < FD_T__MAX; t++)
		total += counts[t];
	qsort(probe_ms, ROUNDS, sizeof(double), cmp);
	qsort(proc_ms, ROUNDS, sizeof(double), cmp);
	printf("fd snapshot of %lld fds: iter/task_file median %.2f ms (max %.2f), "
	       "/proc/PID/fd median %.2f ms, ratio %.1fx\n", total, probe_ms[ROUNDS / 2],
	       probe_ms[ROUNDS - 1], proc_ms[ROUNDS / 2], proc_ms[ROUNDS / 2] / probe_ms[ROUNDS / 2]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	probe_fds__destroy(p);
	return 0;
}
