/* User side of bpf/leak.bpf.c: attach the _exit hold by pid, read its
 * events from the event loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "leak.skel.h"
#include "log.h"
#include "probe_exit.h"
#include "probe_util.h"
#include "util.h"

#define EXIT_MAX_PIDS 4096

struct exit_pid {
	pid_t pid;
	struct bpf_link *link;
};

struct probe_exit {
	struct leak_bpf *skel;
	struct probe_ring ring;
	struct exit_pid *pids;
	size_t n_pids;
	char libc[256];
	probe_exit_cb cb;
	void *arg;
};

PROBE_SKEL_OPS_DEFINE(leak);

static const struct probe_prog_cap exit_progs[] = {{"exit_enter", CAPS_HEAP}};

static int on_exit_sample(void *ctx, void *data, size_t len)
{
	struct probe_exit *p = ctx;
	struct leak_exit_event ev;

	if (len < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	ev.comm[sizeof(ev.comm) - 1] = '\0';
	p->cb(&ev, p->arg);
	return 0;
}

struct probe_exit *probe_exit__open(struct event_base *base, const char *libc,
				    probe_exit_cb cb, void *arg)
{
	struct probe_exit *p = calloc(1, sizeof(*p));
	int err;

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	snprintf(p->libc, sizeof(p->libc), "%s", libc);
	p->pids = calloc(EXIT_MAX_PIDS, sizeof(*p->pids));
	p->skel = p->pids ? probe_load(&leak_ops, exit_progs, ARRAY_SIZE(exit_progs), CAPS_HEAP,
				       NULL, NULL) : NULL;
	if (!p->skel) {
		err = p->pids ? -errno : -ENOMEM;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.exits), on_exit_sample, p);
	if (err)
		goto err_destroy;
	return p;
err_destroy:
	leak_bpf__destroy(p->skel);
err_free:
	free(p->pids);
	free(p);
	errno = -err;
	return NULL;
}

int probe_exit__attach(struct probe_exit *p, pid_t pid)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "_exit");
	struct bpf_link *link;

	if (p->n_pids >= EXIT_MAX_PIDS)
		return -ENOSPC;
	link = bpf_program__attach_uprobe_opts(p->skel->progs.exit_enter, pid, p->libc, 0, &uo);
	if (!link) {
		int err = -errno;

		log_warn("%s: pid %d: _exit in %s: %s", __func__, (int)pid, p->libc,
			 strerror(-err));
		return err;
	}
	p->pids[p->n_pids].pid = pid;
	p->pids[p->n_pids++].link = link;
	return 0;
}

void probe_exit__detach(struct probe_exit *p, pid_t pid)
{
	for (size_t i = 0; p && i < p->n_pids; i++) {
		if (p->pids[i].pid != pid)
			continue;
		bpf_link__destroy(p->pids[i].link);
		p->pids[i] = p->pids[--p->n_pids];
		return;
	}
}

int probe_exit__drain(struct probe_exit *p)
{
	return p ? probe_ring_drain(&p->ring) : 0;
}

void probe_exit__counters(const struct probe_exit *p, unsigned long long *held,
			  unsigned long long *lost)
{
	*held = p ? probe_percpu_sum(p->skel->maps.leak_counters, LEAK_C_HELD) : 0;
	*lost = p ? probe_percpu_sum(p->skel->maps.leak_counters, LEAK_C_LOST_RINGBUF) : 0;
}

void probe_exit__destroy(struct probe_exit *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_pids; i++)
		bpf_link__destroy(p->pids[i].link);
	/* A process stopped by a program whose event is still queued would
	 * stay stopped: deliver the events (the callback lets each go on). */
	probe_ring_drain(&p->ring);
	probe_ring_close(&p->ring);
	leak_bpf__destroy(p->skel);
	free(p->pids);
	free(p);
}

void probe_wait_stopped(pid_t pid, int max_ms)
{
	char path[64], *text = NULL, *state;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int waited = 0; waited < max_ms; waited++) {
		if (util_read_file(path, 4096, &text, NULL))
			return;
		state = strrchr(text, ')');
		if (!state || state[2] == 'T' || state[2] == 't' || state[2] == 'Z' ||
		    state[2] == 'X') {
			free(text);
			return;
		}
		free(text);
		text = NULL;
		usleep(1000);
	}
	log_warn("%s: pid %d did not stop in %dms", __func__, (int)pid, max_ms);
}
