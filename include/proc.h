/* Process lifecycle events of a workload tree (named proc_ev: the kernel
 * already has a struct proc_event), shared by bpf/proc.bpf.c and
 * daemon/probe_proc.c. Fixed-width fields only: both sides read this layout. */
#ifndef FAULTD_PROC_H
#define FAULTD_PROC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PROC_COMM_LEN 16
#define PROC_MAX_TRACKED 8192	/* processes of one run alive at once */
#define PROC_MAX_FRAMES 32	/* user stack frames of a crash */

enum proc_event_type {
	PROC_EV_FORK = 1,	/* a tracked process forked a new process */
	PROC_EV_EXEC = 2,	/* a tracked process called execve */
	PROC_EV_EXIT = 3,	/* a tracked process (thread group) ended */
	PROC_EV_CRASH = 4,	/* a tracked thread is about to die of a signal */
};

struct proc_ev {
	__u32 type;		/* enum proc_event_type */
	__u32 pid;		/* tgid of the process the event is about */
	__u32 ppid;		/* FORK: the parent tgid; otherwise the real parent */
	__u32 tid;		/* the thread that raised it */
	__s32 exit_code;	/* EXIT: wait status as the kernel encodes it */
	__u32 flags;		/* EXIT: PROC_EXIT_* */
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	char comm[PROC_COMM_LEN];
	/* CRASH only: the signal, the faulting address, and the user stack
	 * of the thread at the moment the signal was delivered. */
	__u32 signo;
	__s32 n_frames;		/* bytes bpf_get_stack wrote / 8, or < 0 */
	__u64 addr;
	__u64 leaf_caller;	/* the word at the user sp, if it follows a call:
				 * the caller of a leaf function (memcpy) that
				 * the frame-pointer walk skips; 0 if not */
	__u64 frames[PROC_MAX_FRAMES];
};

#define PROC_EXIT_OOM 1u	/* EXIT: the OOM killer chose this process */

/* Index into the per-CPU loss counters map. */
enum proc_loss {
	PROC_LOSS_RINGBUF = 0,	/* ring buffer reserve failed */
	PROC_LOSS_MAP = 1,	/* tracked-pid map was full */
	PROC_LOSS__MAX = 2,
};

#endif
