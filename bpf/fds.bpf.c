// SPDX-License-Identifier: GPL-2.0
/* File descriptors of a workload: an iter/task_file program counts a
 * process's open fds by type (map counters only: printed output and
 * counters in one iterator double count when the seq buffer refills), and
 * tp_btf sys_exit counts the successful calls that create and close fds,
 * for tracked processes only. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fds.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT   00170000
#define S_IFSOCK 0140000
#define S_IFREG  0100000
#define S_IFDIR  0040000
#define S_IFCHR  0020000
#define S_IFIFO  0010000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define ANON_NAME_LEN 12

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FDS_C__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FDS_MAX_TRACKED);
	__type(key, __u32);		/* tgid */
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FDS_MAX_SYSCALL);
	__type(key, __u32);		/* syscall number */
	__type(value, __u64);		/* successful calls */
} calls SEC(".maps");

static __always_inline void bump(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &which);

	if (c)
		(*c)++;
}

static __always_inline bool name_is(const char *name, const char *want, int len)
{
	for (int i = 0; i < len; i++)
		if (name[i] != want[i])
			return false;
	return true;
}

/* Anonymous inodes are told apart by their dentry name: "[eventfd]". */
static __always_inline __u32 anon_type(struct file *file)
{
	char name[ANON_NAME_LEN] = {};
	const unsigned char *p = BPF_CORE_READ(file, f_path.dentry, d_name.name);

	bpf_probe_read_kernel_str(name, sizeof(name), p);
	if (name[0] != '[')
		return FD_T_OTHER;
	if (name_is(name, "[eventfd]", 9))
		return FD_T_EVENTFD;
	if (name_is(name, "[eventpoll]", 11))
		return FD_T_EPOLL;
	if (name_is(name, "[timerfd]", 9))
		return FD_T_TIMERFD;
	if (name_is(name, "[signalfd]", 10))
		return FD_T_SIGNALFD;
	if (name_is(name, "[io_uring]", 10))
		return FD_T_IO_URING;
	return FD_T_OTHER;
}

static __always_inline __u32 socket_type(struct file *file)
{
	struct socket *sock = BPF_CORE_READ(file, private_data);
	__u16 family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	short type = BPF_CORE_READ(sock, type);

	if (family == AF_UNIX)
		return FD_T_UNIX;
	if (family == AF_NETLINK)
		return FD_T_NETLINK;
	if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM)
		return FD_T_TCP;
	if ((family == AF_INET || family == AF_INET6) && type == SOCK_DGRAM)
		return FD_T_UDP;
	return FD_T_SOCK_OTHER;
}

/* The process a snapshot counts. The iterator is limited to it where the
 * kernel takes a pid for task iterators (6.1); older kernels walk every
 * task, and this keeps their counts the process's own. */
volatile __u32 target_tgid;

SEC("iter/task_file")
int count_fds(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	__u32 mode;

	if (!file || !task || task->tgid != target_tgid)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
	switch (mode) {
	case S_IFSOCK: bump(socket_type(file)); break;
	case S_IFREG: bump(FD_T_FILE); break;
	case S_IFDIR: bump(FD_T_DIR); break;
	case S_IFIFO: bump(FD_T_PIPE); break;
	case S_IFCHR: bump(FD_T_CHR); break;
	default: bump(anon_type(file)); break;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(count_calls, struct pt_regs *regs, long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 nr;
	__u64 *c;

	/* Every syscall on the machine passes here: leave at once unless
	 * it is one of ours and it succeeded. */
	if (ret < 0 || !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	nr = (__u32)BPF_CORE_READ(regs, orig_ax);
	if (nr >= FDS_MAX_SYSCALL)
		return 0;
	c = bpf_map_lookup_elem(&calls, &nr);
	if (c)
		(*c)++;
	return 0;
}
