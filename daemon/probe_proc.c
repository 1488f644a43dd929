/* User side of bpf/proc.bpf.c: load, attach, seed the tracked set, consume
 * the ring buffer on the event loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe_proc.h"
#include "probe_util.h"
#include "proc.skel.h"

struct probe_proc {
	struct proc_bpf *skel;
	struct probe_ring ring;
	probe_proc_cb cb;
	void *arg;
};

static int on_sample(void *ctx, void *data, size_t len)
{
	struct probe_proc *p = ctx;
	struct proc_ev ev;

	if (len < sizeof(ev))
		return 0;
	/* Copy out of the ring before reading: the slot is reused. */
	memcpy(&ev, data, sizeof(ev));
	ev.comm[PROC_COMM_LEN - 1] = '\0';
	p->cb(&ev, p->arg);
	return 0;
}

struct probe_proc *probe_proc__open(struct event_base *base, probe_proc_cb cb, void *arg)
{
	struct probe_proc *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	p->skel = proc_bpf__open_and_load();
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	err = proc_bpf__attach(p->skel);
	if (err) {
		log_warn("%s: attach: %s", __func__, strerror(-err));
		goto err_destroy;
	}
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.events), on_sample, p);
	if (err) {
		log_warn("%s: ring buffer: %s", __func__, strerror(-err));
		goto err_destroy;
	}
	log_debug("%s: attached", __func__);
	return p;
err_destroy:
	proc_bpf__destroy(p->skel);
err_free:
	free(p);
	errno = -err;
	return NULL;
}

int probe_proc__track(struct probe_proc *p, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.tracked, &key, sizeof(key), &one,
				 sizeof(one), BPF_ANY) < 0)
		return -errno;
	return 0;
}

int probe_proc__drain(struct probe_proc *p)
{
	return p ? probe_ring_drain(&p->ring) : 0;
}

void probe_proc__losses(const struct probe_proc *p, unsigned long long out[PROC_LOSS__MAX])
{
	for (__u32 k = 0; k < PROC_LOSS__MAX; k++)
		out[k] = p ? probe_percpu_sum(p->skel->maps.losses, k) : 0;
}

void probe_proc__destroy(struct probe_proc *p)
{
	if (!p)
		return;
	probe_ring_close(&p->ring);
	proc_bpf__destroy(p->skel);
	free(p);
}
