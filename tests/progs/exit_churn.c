/* A process tree whose processes exit all the time, each with a big heap
 * and one leak: usage exit_churn [MB [COUNT [GAP_MS [EARLY [LIVE [ORPHAN]]]]]]
 * (default 32 MB, 1000 children, 100 ms, 0, 1, 0). The parent forks COUNT
 * children, GAP_MS apart, with at most LIVE alive at once (1: one after
 * the other); each child waits 150 ms (faultd follows it from its fork
 * on), allocates MB MiB in 4 KiB blocks a global keeps reachable, drops
 * one 77-byte block (lose_one) and exits. no_leak holds each one at its
 * exit and scans its whole heap. With EARLY (a fourth argument, 1) each
 * child allocates its pointer array at once, before faultd can have
 * followed it, and waits 1 s before the blocks. With ORPHAN (1) the parent
 * does not wait for its last child: once that child is stopped (held by
 * faultd at its exit), the parent exits at once (exit_group, past the C
 * library's _exit) and leaves it to init. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCK 4096

static void **kept;

static void lose_one(void)
{
	char *p = malloc(77);

	memset(p, 0x45, 77);
	p = NULL;
}

static void child(long mb, int early)
{
	size_t n = (size_t)mb * (1u << 20) / BLOCK;

	if (early)
		kept = calloc(n, sizeof(*kept));
	usleep(early ? 1000 * 1000 : 150 * 1000);
	if (!early)
		kept = calloc(n, sizeof(*kept));
	for (size_t i = 0; kept && i < n; i++) {
		kept[i] = malloc(BLOCK);
		if (kept[i])
			memset(kept[i], (int)(i & 0x7f), BLOCK);
	}
	lose_one();
	exit(0);
}

/* Waits (up to 10 s) until @pid is stopped, as faultd holds it at its exit. */
static void wait_stopped(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 10000; i++) {
		f = fopen(path, "r");
		if (!f)
			return;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p && (p[2] == 'T' || p[2] == 't'))
			return;
		usleep(1000);
	}
}

int main(int argc, char **argv)
{
	long mb = argc > 1 ? atol(argv[1]) : 32;
	long count = argc > 2 ? atol(argv[2]) : 1000;
	long gap = argc > 3 ? atol(argv[3]) : 100;
	int early = argc > 4 && atoi(argv[4]);
	long live = argc > 5 && atol(argv[5]) > 1 ? atol(argv[5]) : 1, alive = 0;
	int orphan = argc > 6 && atoi(argv[6]);
	pid_t last = 0;
	struct timespec ts = {gap / 1000, (gap % 1000) * 1000000L};

	for (long k = 0; k < count; k++) {
		pid_t pid = fork();

		if (pid == 0)
			child(mb, early);
		if (pid < 0)
			return 1;
		last = pid;
		if (++alive >= live) {
			if (wait(NULL) < 0)
				return 1;
			alive--;
		}
		nanosleep(&ts, NULL);
	}
	if (orphan && alive > 0) {
		wait_stopped(last);
		printf("%ld children, the last one left\n", count);
		fflush(stdout);
		/* Straight to the kernel, as a process killed meanwhile would
		 * go: not through the C library's _exit, where faultd would
		 * hold this process too until the child's scan is over. */
		syscall(SYS_exit_group, 0);
	}
	while (alive-- > 0)
		wait(NULL);
	printf("%ld children\n", count);
	return 0;
}
