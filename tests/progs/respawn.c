/* Runs each program named in turn, one at a time, over and over until
 * killed, waiting -i MS (default 0) after each: a workload whose processes
 * start and exit all the time (the heap probe attaches to each and lets
 * each one's links go). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec gap = {0, 0};
	int first = 1;

	if (argc > 2 && !strcmp(argv[1], "-i")) {
		long ms = atol(argv[2]);

		gap.tv_sec = ms / 1000;
		gap.tv_nsec = (ms % 1000) * 1000000L;
		first = 3;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: respawn [-i MS] PROG...\n");
		return 2;
	}
	for (unsigned long n = 0;; n++) {
		char *prog = argv[first + n % (unsigned long)(argc - first)];
		char *args[] = {prog, NULL};
		pid_t pid = fork();

		if (pid == 0) {
			execv(prog, args);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, NULL, 0) < 0)
			return 1;
		nanosleep(&gap, NULL);
	}
}
