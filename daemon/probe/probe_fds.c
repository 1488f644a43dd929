/* User side of bpf/fds.bpf.c: per-process fd snapshots by type through a
 * task_file iterator, and counts of the calls that make and close fds. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asm/unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fds.skel.h"
#include "log.h"
#include "probe_fds.h"
#include "probe_util.h"
#include "util.h"

struct probe_fds {
	struct fds_bpf *skel;
	struct bpf_link *calls_link;
};

static const char *const type_names[FD_T__MAX] = {
	[FD_T_FILE] = "file", [FD_T_DIR] = "dir", [FD_T_PIPE] = "pipe",
	[FD_T_CHR] = "chr", [FD_T_TCP] = "tcp", [FD_T_UDP] = "udp",
	[FD_T_UNIX] = "unix", [FD_T_NETLINK] = "netlink",
	[FD_T_SOCK_OTHER] = "socket_other", [FD_T_EVENTFD] = "eventfd",
	[FD_T_EPOLL] = "epoll", [FD_T_TIMERFD] = "timerfd",
	[FD_T_SIGNALFD] = "signalfd", [FD_T_IO_URING] = "io_uring",
	[FD_T_OTHER] = "other",
};

/* The calls that make or close fds, by name, for the evidence. */
static const struct {
	int nr;
	const char *name;
} fd_calls[] = {
	{__NR_socket, "socket"}, {__NR_socketpair, "socketpair"},
	{__NR_accept, "accept"}, {__NR_accept4, "accept4"},
	{__NR_open, "open"}, {__NR_openat, "openat"}, {__NR_creat, "creat"},
	{__NR_dup, "dup"}, {__NR_dup2, "dup2"}, {__NR_dup3, "dup3"},
	{__NR_pipe, "pipe"}, {__NR_pipe2, "pipe2"},
	{__NR_eventfd, "eventfd"}, {__NR_eventfd2, "eventfd2"},
	{__NR_epoll_create, "epoll_create"}, {__NR_epoll_create1, "epoll_create1"},
	{__NR_timerfd_create, "timerfd_create"}, {__NR_signalfd4, "signalfd4"},
	{__NR_memfd_create, "memfd_create"}, {__NR_io_uring_setup, "io_uring_setup"},
	{__NR_close, "close"}, {__NR_close_range, "close_range"},
};

const char *probe_fds__type_name(int type)
{
	return type >= 0 && type < FD_T__MAX ? type_names[type] : "?";
}

PROBE_SKEL_OPS_DEFINE(fds);

static const struct probe_prog_cap fds_progs[] = {
	{"count_fds", CAPS_FDS},
	{"count_calls", CAPS_FD_CALLS},
};

struct probe_fds *probe_fds__open(void)
{
	struct probe_fds *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->skel = probe_load(&fds_ops, fds_progs, ARRAY_SIZE(fds_progs), CAPS_FDS, NULL, NULL);
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	/* Per-syscall counts are evidence beside the samples: without them
	 * the fd counts still judge. */
	if (probe_prog_loaded(p->skel->progs.count_calls)) {
		p->calls_link = bpf_program__attach(p->skel->progs.count_calls);
		if (!p->calls_link)
			caps_set_missing(CAPS_FD_CALLS, "tp_btf/sys_exit did not attach: %s",
					 strerror(errno));
	}
	return p;
err_free:
	free(p);
	errno = -err;
	return NULL;
}

int probe_fds__track(struct probe_fds *p, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.tracked, &key, sizeof(key), &one,
				 sizeof(one), BPF_ANY) < 0)
		return -errno;
	return 0;
}

/* Kernels before 6.1 take no pid for a task iterator (E2BIG: the link
 * info is longer than theirs); there it walks every task and the program
 * keeps to target_tgid. Found out once. */
static bool iter_takes_pid = true;

static struct bpf_link *iter_attach(struct probe_fds *p, pid_t pid)
{
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info linfo = {0};
	struct bpf_link *link = NULL;

	linfo.task.pid = (__u32)pid;
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	if (__atomic_load_n(&iter_takes_pid, __ATOMIC_RELAXED)) {
		link = bpf_program__attach_iter(p->skel->progs.count_fds, &opts);
		if (!link && (errno == E2BIG || errno == EINVAL)) {
			log_info("%s: task iterators take no pid here (%s): every task is "
				 "walked and filtered", __func__, strerror(errno));
			__atomic_store_n(&iter_takes_pid, false, __ATOMIC_RELAXED);
			caps_set_ok(CAPS_FDS, "iter/task_file (all tasks, filtered)");
		}
	}
	if (!__atomic_load_n(&iter_takes_pid, __ATOMIC_RELAXED))
		link = bpf_program__attach_iter(p->skel->progs.count_fds, NULL);
	return link;
}

/* A thread that is a zombie or on its way out (the fds are closed early in
 * do_exit, before anyone can see the process has exited). */
static bool not_live(char state, bool exiting)
{
	return state == 'Z' || state == 'X' || exiting;
}

/* Dead, or every thread not live: its count now says nothing of a leak. A
 * main thread that ended with others running is a zombie in a live
 * process. */
static bool exiting(pid_t pid)
{
	return util_every_task(pid, not_live);
}

int probe_fds__snapshot(struct probe_fds *p, pid_t pid, long long counts[FD_T__MAX])
{
	long long mine[FD_T__MAX] = {0}, total = 0;
	struct bpf_link *link;
	char buf[64];
	int fd, err = 0;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	for (__u32 t = 0; t < FD_T__MAX; t++)
		probe_percpu_zero(p->skel->maps.counts, t);
	p->skel->bss->target_tgid = (__u32)pid;
	link = iter_attach(p, pid);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out_link;
	}
	/* The program prints nothing; reading runs it to the end. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	for (__u32 t = 0; t < FD_T__MAX; t++) {
		mine[t] = (long long)probe_percpu_sum(p->skel->maps.counts, t);
		total += mine[t];
	}
	/* No fd at all is what a process in its exit shows (its fd table
	 * goes early in do_exit): only then is it looked at, after the count. */
	err = !total && exiting(pid) ? -ESRCH : 0;
	for (__u32 t = 0; !err && t < FD_T__MAX; t++)
		counts[t] += mine[t];
out_link:
	bpf_link__destroy(link);
	return err;
}

json_t *probe_fds__calls(struct probe_fds *p)
{
	json_t *obj = json_object();

	for (size_t i = 0; obj && i < ARRAY_SIZE(fd_calls); i++) {
		unsigned long long n = probe_percpu_sum(p->skel->maps.calls, (__u32)fd_calls[i].nr);

		if (n)
			json_object_set_new(obj, fd_calls[i].name, json_integer((json_int_t)n));
	}
	return obj;
}

unsigned long long probe_fds__lost(struct probe_fds *p)
{
	return probe_percpu_sum(p->skel->maps.counts, FDS_C_LOST_MAP);
}

void probe_fds__destroy(struct probe_fds *p)
{
	if (!p)
		return;
	bpf_link__destroy(p->calls_link);
	fds_bpf__destroy(p->skel);
	free(p);
}
