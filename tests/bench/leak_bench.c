/* The no_leak half of `make bench`: run a command held, attach the heap
 * probe and the _exit hold by pid (as faultd does), release it; at its
 * exit run the reachability scan and print what it took. With --plain the
 * command just runs (a LeakSanitizer build, or the unprobed baseline): the
 * figure is then from the "exit_at_ns" line it prints to its end.
 * Prints: "exit_check_ms X blocks N direct D indirect I heap_mb H". */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leakscan.h"
#include "log.h"
#include "probe_exit.h"
#include "probe_heap.h"

struct bench {
	struct probe_heap *heap;
	struct leakscan_stats st;
	int err;
	bool done;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void on_heap(const struct heap_event *ev, const struct heap_finding *f, void *arg)
{
	(void)ev;
	(void)f;
	(void)arg;
}

static void on_exit_ev(const struct leak_exit_event *ev, void *arg)
{
	struct bench *b = arg;
	struct leak_block *blocks = NULL;
	size_t n = 0;

	probe_wait_stopped((pid_t)ev->tgid, 200, NULL);
	struct leak_thread self = {.tid = ev->tid, .nregs = ev->nregs, .sp = ev->sp};

	memcpy(self.regs, ev->regs, sizeof(self.regs));
	b->err = leakscan_blocks(probe_heap__live_fd(b->heap), (pid_t)ev->tgid, &blocks, &n);
	if (!b->err)
		b->err = leakscan_run((pid_t)ev->tgid, blocks, n, &self, 1, false, &b->st);
	free(blocks);
	b->done = true;
	kill((pid_t)ev->tgid, SIGCONT);
}

/* --plain: the time from the command's "exit_at_ns" to its end. */
static int plain(char **argv)
{
	int out[2], status;
	long long exit_at = 0, end;
	char buf[4096];
	ssize_t got, used = 0;
	pid_t pid;

	if (pipe(out) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	while ((got = read(out[0], buf + used, sizeof(buf) - 1 - (size_t)used)) > 0)
		used += got;
	waitpid(pid, &status, 0);
	end = now_ns();
	buf[used] = '\0';
	if (strstr(buf, "exit_at_ns "))
		exit_at = atoll(strstr(buf, "exit_at_ns ") + 11);
	printf("exit_check_ms %.1f (%s)\n", exit_at ? (double)(end - exit_at) / 1e6 : -1.0,
	       WIFEXITED(status) ? "exited" : "killed");
	return 0;
}

int main(int argc, char **argv)
{
	struct probe_heap_opts opts = {.stacks = true, .remember_frees = true};
	struct bench b = {0};
	struct event_base *base;
	struct probe_exit *ex;
	int hold[2], status;
	pid_t pid;
	char go;

	if (argc < 2) {
		fprintf(stderr, "usage: leak_bench [--plain] CMD...\n");
		return 2;
	}
	if (!strcmp(argv[1], "--plain"))
		return plain(argv + 2);
	log_set_level(LOG_WARN);
	base = event_base_new();
	b.heap = probe_heap__open(base, &opts, on_heap, NULL);
	ex = b.heap ? probe_exit__open(base, NULL, on_exit_ev, &b) : NULL;
	if (!ex || pipe(hold) < 0) {
		perror("leak_bench: probes");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		close(hold[1]);
		if (read(hold[0], &go, 1) != 1)
			_exit(127);
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	close(hold[0]);
	if (probe_heap__attach(b.heap, pid) || probe_exit__attach(ex, pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (write(hold[1], "g", 1) != 1)
		return 1;
	close(hold[1]);
	while (!b.done && waitpid(pid, &status, WNOHANG) == 0)
		if (event_base_loop(base, EVLOOP_NONBLOCK) == 1)
			usleep(1000);
	waitpid(pid, &status, 0);
	if (b.err) {
		fprintf(stderr, "leak_bench: scan: %s\n", strerror(-b.err));
		return 1;
	}
	printf("exit_check_ms %.1f blocks %zu direct %zu indirect %zu heap_mb %.0f\n", b.st.ms,
	       b.st.blocks, b.st.direct, b.st.indirect, (double)b.st.heap_bytes / 1048576.0);
	probe_exit__destroy(ex);
	probe_heap__destroy(b.heap);
	event_base_free(base);
	return 0;
}
