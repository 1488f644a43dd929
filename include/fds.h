/* File descriptors of a workload's processes, shared by bpf/fds.bpf.c and
 * daemon/probe_fds.c: an iter/task_file snapshot counts open fds by type
 * (the ground truth), and sys_exit counts the calls that made and closed
 * them (the story). */
#ifndef FAULTD_FDS_H
#define FAULTD_FDS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum fd_type {
	FD_T_FILE = 0, FD_T_DIR, FD_T_PIPE, FD_T_CHR,
	FD_T_TCP, FD_T_UDP, FD_T_UNIX, FD_T_NETLINK, FD_T_SOCK_OTHER,
	FD_T_EVENTFD, FD_T_EPOLL, FD_T_TIMERFD, FD_T_SIGNALFD, FD_T_IO_URING,
	FD_T_OTHER,
	FD_T__MAX,			/* at most 16: struct obs_sample */
};

#define FDS_MAX_SYSCALL 512		/* syscall numbers counted */
#define FDS_MAX_TRACKED 1024		/* processes whose calls are counted */

/* Per-CPU counters of the snapshot and of losses, after the types. */
enum fds_counter {
	FDS_C_LOST_MAP = FD_T__MAX,	/* tracked map full */
	FDS_C__MAX,
};

#endif
