/* User side of bpf/leak.bpf.c: attach the _exit hold by pid, read its
 * events from the event loop. */
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "leak.skel.h"
#include "leakregs.skel.h"
#include "log.h"
#include "probe_alloc.h"
#include "probe_attach.h"
#include "probe_exit.h"
#include "probe_util.h"
#include "util.h"
#include "worker.h"

#define EXIT_MAX_PIDS 4096

struct exit_pid {
	pid_t pid;
	struct bpf_link *link;		/* a perf-event uprobe's, or NULL */
	int fd;				/* else a uprobe_multi link's */
};

struct probe_exit {
	struct leak_bpf *skel;
	struct leakregs_bpf *regs;	/* NULL: the kernel refused the iterator */
	struct probe_ring ring;
	struct exit_pid *pids;
	size_t n_pids;
	char libc[256];
	long exit_off;			/* _exit's file offset in @libc, for uprobe_multi */
	bool multi;			/* links are uprobe_multi links */
	struct probe_attacher *attacher;	/* children's holds, attached off the loop */
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

static int exit_prepare(void *skel, void *arg)
{
	const struct probe_exit *p = arg;

	if (p->multi)
		bpf_program__set_expected_attach_type(((struct leak_bpf *)skel)->progs.exit_enter,
						      PROBE_ATTACH_UPROBE_MULTI);
	return 0;
}

/* With uprobe_multi links (their release does not hold up the kernel's
 * other uprobe work), _exit is found here rather than by libbpf: the C
 * library @libc names, or the daemon's own. */
static void choose_links(struct probe_exit *p, const char *libc)
{
	Dl_info info;

	p->multi = probe_uprobe_multi();
	/* The C library faultd itself runs on, found by a function of its
	 * own: a sanitizer's runtime intercepts _exit, and dladdr would name
	 * the runtime, whose _exit no workload calls. */
	if (p->multi && !libc && dladdr((void *)gnu_get_libc_version, &info) && info.dli_fname &&
	    info.dli_fname[0] == '/')
		snprintf(p->libc, sizeof(p->libc), "%s", info.dli_fname);
	p->exit_off = p->multi && p->libc[0] == '/' ? alloc_sym_offset(p->libc, "_exit") : -1;
	p->multi = p->exit_off >= 0;
}

static void on_attached(struct probe_attach_job *j, void *arg);
static void on_attach_dropped(struct probe_attach_job *j, void *arg);

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
	/* libbpf finds "libc.so.6" where the dynamic linker would. */
	snprintf(p->libc, sizeof(p->libc), "%s", libc ? libc : "libc.so.6");
	choose_links(p, libc);
	p->pids = calloc(EXIT_MAX_PIDS, sizeof(*p->pids));
	p->attacher = probe_attacher_new(base, on_attached, on_attach_dropped, p);
	p->skel = p->pids && p->attacher ? probe_load(&leak_ops, exit_progs, ARRAY_SIZE(exit_progs), CAPS_HEAP,
				       exit_prepare, p) : NULL;
	if (!p->skel) {
		err = p->pids && p->attacher ? -errno : -ENOMEM;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.exits), on_exit_sample, p);
	if (err)
		goto err_destroy;
	p->regs = leakregs_bpf__open_and_load();
	if (!p->regs)
		log_info("%s: no iter/task for other threads' registers (%s): their stacks "
			 "are scanned, their registers not", __func__, strerror(errno));
	return p;
err_destroy:
	leak_bpf__destroy(p->skel);
err_free:
	probe_attacher_free(p->attacher);
	free(p->pids);
	free(p);
	errno = -err;
	return NULL;
}

/* The hold at _exit for @pid: one uprobe. NULL with errno set. */
static struct probe_attach_job *exit_job(struct probe_exit *p, pid_t pid)
{
	struct probe_attach_job *j = calloc(1, sizeof(*j));

	if (!j || probe_attach_job_init(j, pid, p->multi, 1)) {
		free(j);
		errno = ENOMEM;
		return NULL;
	}
	j->u[0] = (struct probe_uprobe){.prog = p->skel->progs.exit_enter, .path = p->libc,
		.func = p->multi ? NULL : "_exit", .off = p->multi ? (size_t)p->exit_off : 0,
		.fd = -1};
	j->n = 1;
	return j;
}

/* An attach is over (on the loop, in order): its link is @j's process's,
 * unless the process exited meanwhile. 0 or -errno. */
static int take_link(struct probe_exit *p, struct probe_attach_job *j)
{
	bool gone = j->cancelled || j->gone;
	int err = gone ? 0 : j->u[0].err;

	if (!err && !gone && p->n_pids >= EXIT_MAX_PIDS)
		err = -ENOSPC;
	if (gone)
		log_debug("%s: pid %d exited before its hold at _exit was attached", __func__,
			  (int)j->pid);
	else if (err)
		log_warn("%s: pid %d: _exit in %s: %s", __func__, (int)j->pid, p->libc,
			 strerror(-err));
	else {
		p->pids[p->n_pids++] = (struct exit_pid){j->pid, j->u[0].link, j->u[0].fd};
		j->u[0].link = NULL;
		j->u[0].fd = -1;
	}
	probe_attach_job_release(j);
	free(j);
	return err;
}

int probe_exit__attach(struct probe_exit *p, pid_t pid)
{
	struct probe_attach_job *j = exit_job(p, pid);

	if (!j)
		return -errno;
	probe_attach_run(j, NULL, NULL);
	return take_link(p, j);
}

static void on_attached(struct probe_attach_job *j, void *arg)
{
	take_link(arg, j);
}

static void on_attach_dropped(struct probe_attach_job *j, void *arg)
{
	(void)arg;
	free(j);
}

int probe_exit__follow(struct probe_exit *p, pid_t pid)
{
	struct probe_attach_job *j = exit_job(p, pid);
	int err;

	if (!j)
		return -errno;
	err = probe_attacher_post(p->attacher, j);
	if (!err)
		return 0;
	if (err == -ESRCH) {
		/* Gone already: nothing to hold. */
		probe_attach_job_release(j);
		free(j);
		return 0;
	}
	probe_attach_run(j, NULL, NULL);
	return take_link(p, j);
}

void probe_exit__detach(struct probe_exit *p, pid_t pid)
{
	if (p)
		probe_attacher_cancel(p->attacher, pid);
	for (size_t i = 0; p && i < p->n_pids; i++) {
		if (p->pids[i].pid != pid)
			continue;
		probe_link_release(p->pids[i].link, p->pids[i].fd);
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
	probe_attacher_free(p->attacher);	/* its links made and not taken go */
	for (size_t i = 0; i < p->n_pids; i++)
		probe_link_release(p->pids[i].link, p->pids[i].fd);
	/* A process stopped by a program whose event is still queued would
	 * stay stopped: deliver the events (the callback lets each go on). */
	probe_ring_drain(&p->ring);
	probe_ring_close(&p->ring);
	leakregs_bpf__destroy(p->regs);
	leak_bpf__destroy(p->skel);
	free(p->pids);
	free(p);
}

int probe_exit__threads(struct probe_exit *p, pid_t pid, struct leak_thread **out, size_t *n)
{
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info linfo = {0};
	struct leak_thread *th = NULL, rec;
	struct bpf_link *link;
	size_t cap = 0, used = 0;
	int fd, err = 0;
	ssize_t got;

	*out = NULL;
	*n = 0;
	if (!p->regs)
		return -ENOTSUP;
	p->regs->bss->target_tgid = (__u32)pid;
	linfo.task.pid = (__u32)pid;
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	link = bpf_program__attach_iter(p->regs->progs.thread_regs, &opts);
	if (!link && (errno == E2BIG || errno == EINVAL))	/* no pid: walk all, filtered */
		link = bpf_program__attach_iter(p->regs->progs.thread_regs, NULL);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while ((got = read(fd, &rec, sizeof(rec))) == (ssize_t)sizeof(rec)) {
		if (used == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct leak_thread *nt = realloc(th, ncap * sizeof(*th));

			if (!nt) {
				err = -ENOMEM;
				break;
			}
			th = nt;
			cap = ncap;
		}
		th[used++] = rec;
	}
	if (got < 0 && !err)
		err = -errno;
	close(fd);
out:
	bpf_link__destroy(link);
	if (err) {
		free(th);
		th = NULL;
		used = 0;
	}
	*out = th;
	*n = used;
	return err;
}

static bool stopped_or_gone(char state, bool exiting)
{
	(void)exiting;
	return strchr("TtZX", state) != NULL;
}

/* Is every thread of @pid stopped (or gone)? A group stop reaches each
 * thread on its own way back to user space. */
bool probe_all_stopped(pid_t pid)
{
	return util_every_task(pid, stopped_or_gone);
}

bool probe_wait_stopped(pid_t pid, int max_ms, const struct worker *w)
{
	bool stopped = probe_all_stopped(pid);

	for (int waited = 0; !stopped && waited < max_ms && !(w && worker_stopping(w)); waited++) {
		usleep(1000);
		stopped = probe_all_stopped(pid);
	}
	return stopped;
}
