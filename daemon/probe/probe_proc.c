/* User side of bpf/proc.bpf.c: load, attach, seed the tracked set, consume
 * the ring buffer on the event loop. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe_proc.h"
#include "probe_util.h"
#include "proc.skel.h"
#include "util.h"

struct probe_proc {
	struct proc_bpf *skel;
	struct probe_ring ring;
	probe_proc_cb cb;
	void *arg;
};

PROBE_SKEL_OPS_DEFINE(proc);

/* Process exits are the core: crash stacks are an add-on whose refusal
 * must not take exits with it. */
static const struct probe_prog_cap proc_progs[] = {
	{"proc_fork", CAPS_PROC},
	{"proc_exec", CAPS_PROC},
	{"proc_exit", CAPS_PROC},
	{"proc_exit_task", CAPS_PROC},
	{"proc_signal", CAPS_CRASH_STACK},
};

/* How many arguments the kernel's sched_process_exit tracepoint passes
 * (its btf_trace_ typedef is a pointer to a function of ctx and them), or
 * -errno. libbpf-tools tell block_rq_issue's forms apart the same way.
 * The kernel does not change under a running faultd: read once, not at
 * every run's load (parsing vmlinux BTF takes tens of milliseconds). */
static int exit_tp_n;

static void exit_tp_read(void)
{
	const struct btf_type *t;
	struct btf *btf;
	int id, n = -ENOENT;

	btf = btf__load_vmlinux_btf();
	if (!btf) {
		exit_tp_n = -errno;
		return;
	}
	id = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	if (t)
		t = btf__type_by_id(btf, t->type);	/* pointer */
	if (t && btf_is_ptr(t))
		t = btf__type_by_id(btf, t->type);	/* function prototype */
	if (t && btf_is_func_proto(t))
		n = btf_vlen(t) - 1;
	btf__free(btf);
	exit_tp_n = n;
}

/* Runs load from threads of their own: read once, by whichever is first. */
static int exit_tp_args(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, exit_tp_read);
	return exit_tp_n;
}

/* Keep the exit program whose arguments this kernel passes. */
static int choose_exit(void *skel, void *arg)
{
	struct proc_bpf *s = skel;
	int n = exit_tp_args();

	(void)arg;
	if (n < 0)
		log_debug("%s: sched_process_exit's arguments unknown (%s): task only",
			  __func__, strerror(-n));
	bpf_program__set_autoload(s->progs.proc_exit, n >= 2);
	bpf_program__set_autoload(s->progs.proc_exit_task, n < 2);
	return 0;
}

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
	p->skel = probe_load(&proc_ops, proc_progs, ARRAY_SIZE(proc_progs), CAPS_PROC,
			     choose_exit, NULL);
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	caps_set_ok(CAPS_PROC, exit_tp_args() >= 2 ? "tp_btf sched_process_exit(task, group_dead)"
						: "tp_btf sched_process_exit(task)");
	err = probe_attach_auto(p->skel, &proc_ops, proc_progs, ARRAY_SIZE(proc_progs),
				CAPS_PROC);
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
