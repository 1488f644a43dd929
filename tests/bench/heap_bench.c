/* Runs a command held, attaches the heap probe by pid (as faultd does),
 * releases it and waits: the probed half of `make bench`. Prints the
 * command's own output, then the probe's placement and counters. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "probe_heap.h"

static void on_event(const struct heap_event *ev, const struct heap_finding *f, void *arg)
{
	(void)f;
	(void)arg;
	printf("event type %u addr 0x%llx\n", ev->type, (unsigned long long)ev->addr);
}

int main(int argc, char **argv)
{
	struct probe_heap_opts opts = {.stacks = true, .remember_frees = true};
	unsigned long long c[HEAP_C__MAX];
	struct event_base *base;
	struct probe_heap *p;
	int hold[2], status, argi = 1;
	pid_t pid;
	char go;

	while (argi < argc && argv[argi][0] == '-' && argv[argi][1] == '-') {
		if (!strcmp(argv[argi], "--no-stacks"))
			opts.stacks = false;
		else if (!strcmp(argv[argi], "--no-recent"))
			opts.remember_frees = false;
		else if (!strcmp(argv[argi], "--trap-only"))
			opts.trap_only = true;
		else
			break;
		argi++;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: heap_bench [--no-stacks] [--no-recent] CMD...\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	/* The command's own allocator (a path: jemalloc, tcmalloc, ...). */
	if (strchr(argv[argi], '/'))
		opts.exe = argv[argi];
	base = event_base_new();
	p = probe_heap__open(base, &opts, on_event, NULL);
	if (!p) {
		perror("probe_heap__open");
		return 1;
	}
	if (pipe(hold) < 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		close(hold[1]);
		if (read(hold[0], &go, 1) != 1)
			_exit(127);
		execvp(argv[argi], argv + argi);
		_exit(127);
	}
	close(hold[0]);
	if (probe_heap__attach(p, pid)) {
		kill(pid, SIGKILL);
		return 1;
	}
	if (write(hold[1], "g", 1) != 1)
		return 1;
	waitpid(pid, &status, 0);
	probe_heap__drain(p);
	probe_heap__counters(p, c);
	fprintf(stderr, "placement: %s\n", probe_heap__placement(p));
	fprintf(stderr, "allocs %llu frees %llu lost live %llu pending %llu stack %llu ringbuf %llu\n",
		c[HEAP_C_ALLOCS], c[HEAP_C_FREES], c[HEAP_C_LOST_LIVE], c[HEAP_C_LOST_PENDING],
		c[HEAP_C_LOST_STACK], c[HEAP_C_LOST_RINGBUF]);
	probe_heap__destroy(p);
	event_base_free(base);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
