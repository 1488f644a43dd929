/* The exit hold of no_leak, shared by bpf/leak.bpf.c and
 * daemon/probe/probe_exit.c: a uprobe on the C library's _exit stops the
 * process (SIGSTOP) before the exit_group system call unmaps anything, and
 * reports the calling thread's registers, which are roots of the scan.
 * Fixed-width fields only. */
#ifndef FAULTD_LEAK_H
#define FAULTD_LEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LEAK_STOP_SIGNAL 19		/* SIGSTOP */
#define LEAK_NREGS 16			/* general-purpose registers, x86-64 */

struct leak_exit_event {
	__u32 tgid;
	__u32 tid;
	__s32 status;			/* _exit's argument */
	__u32 nregs;			/* how many of regs[] are valid */
	__u64 sp;
	__u64 ip;
	__u64 ts_ns;
	__u64 regs[LEAK_NREGS];
	char comm[16];
};

/* One thread's user registers, as bpf/leakregs.bpf.c writes them (an
 * iter/task program reading bpf_task_pt_regs of each stopped thread). */
struct leak_thread {
	__u32 tid;
	__u32 nregs;
	__u64 sp;
	__u64 regs[LEAK_NREGS];
};

enum leak_counter {
	LEAK_C_HELD = 0,		/* processes stopped at _exit */
	LEAK_C_LOST_RINGBUF,		/* not stopped: the event could not be sent */
	LEAK_C__MAX,
};

#endif
