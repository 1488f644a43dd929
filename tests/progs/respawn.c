/* Runs each program named in turn, one at a time, over and over until
 * killed, waiting -i MS (default 0) after each, with the -a ARGs (none by
 * default; up to 4, in order) as each one's arguments: a workload whose
 * processes start and exit all the time (the heap probe attaches to each
 * and lets each one's links go). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec gap = {0, 0};
	char *args[6] = {NULL};
	int first, opt, n_args = 0;

	while ((opt = getopt(argc, argv, "+i:a:")) != -1) {
		long ms;

		switch (opt) {
		case 'i':
			ms = atol(optarg);
			gap.tv_sec = ms / 1000;
			gap.tv_nsec = (ms % 1000) * 1000000L;
			break;
		case 'a':
			if (n_args == 4)
				return 2;
			args[1 + n_args++] = optarg;
			break;
		default:
			return 2;
		}
	}
	first = optind;
	if (argc <= first) {
		fprintf(stderr, "usage: respawn [-i MS] [-a ARG]... PROG...\n");
		return 2;
	}
	for (unsigned long n = 0;; n++) {
		char *prog = argv[first + n % (unsigned long)(argc - first)];
		pid_t pid;

		args[0] = prog;
		pid = fork();

		if (pid == 0) {
			execv(prog, args);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, NULL, 0) < 0)
			return 1;
		nanosleep(&gap, NULL);
	}
}
