// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle of a workload tree: fork, exec, exit of every process
 * descended from a pid the daemon tracks. tp_btf programs: no tracefs
 * needed, BTF-typed arguments. Untracked processes cost one hash lookup. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "proc.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROC_MAX_TRACKED);
	__type(key, __u32);	/* tgid */
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROC_LOSS__MAX);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void count_loss(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &what);

	if (n)
		(*n)++;
}

static __always_inline void emit(__u32 type, struct task_struct *task, __u32 pid,
				 __u32 ppid, __s32 exit_code, __u32 flags)
{
	struct proc_ev *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_loss(PROC_LOSS_RINGBUF);
		return;
	}
	ev->type = type;
	ev->pid = pid;
	ev->ppid = ppid;
	ev->tid = BPF_CORE_READ(task, pid);
	ev->exit_code = exit_code;
	ev->flags = flags;
	ev->ts_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&ev->comm, task, comm);
	bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (!bpf_map_lookup_elem(&tracked, &ptgid))
		return 0;
	/* A new thread shares its parent's tgid: nothing new to follow. */
	if (ctgid == ptgid)
		return 0;
	if (bpf_map_update_elem(&tracked, &ctgid, &one, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&tracked, &ctgid)) {
		count_loss(PROC_LOSS_MAP);
		return 0;
	}
	emit(PROC_EV_FORK, child, ctgid, ptgid, 0, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *task, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (!bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	emit(PROC_EV_EXEC, task, tgid, BPF_CORE_READ(task, real_parent, tgid), 0, 0);
	return 0;
}

static __always_inline void exit_event(struct task_struct *task, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u32 flags = 0;
	__s32 code;

	/* One event per process: when its last thread goes. */
	if (!group_dead || !bpf_map_lookup_elem(&tracked, &tgid))
		return;
	code = BPF_CORE_READ(task, exit_code);
	if (!code)
		code = BPF_CORE_READ(task, signal, group_exit_code);
	/* Named as the process, not as the thread that happened to go last
	 * (a DPDK client's last thread is often "eal-intr-thread"). */
	/* The OOM killer marks its victim's signal struct (mark_oom_victim
	 * sets oom_mm) right after sending it SIGKILL: a SIGKILL death with
	 * it set is an OOM kill, not a termination by another process. */
	if (BPF_CORE_READ(task, signal, oom_mm))
		flags |= PROC_EXIT_OOM;
	emit(PROC_EV_EXIT, BPF_CORE_READ(task, group_leader), tgid,
	     BPF_CORE_READ(task, real_parent, tgid), code, flags);
	bpf_map_delete_elem(&tracked, &tgid);
}

/* Two forms of one tracepoint: newer kernels pass group_dead; older ones
 * (6.1, 6.12) pass the task alone, and reading a second argument there is
 * refused. The daemon keeps the one whose form the kernel's BTF has. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *task, bool group_dead)
{
	exit_event(task, group_dead);
	return 0;
}

/* The task-only form: the thread group is dead when its live count, which
 * do_exit() drops before this tracepoint, has reached zero. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit_task, struct task_struct *task)
{
	exit_event(task, BPF_CORE_READ(task, signal, live.counter) == 0);
	return 0;
}

/* A crash inside a leaf function (memcpy into NULL) has not pushed a frame,
 * so walking frame pointers skips the function that called it. Its return
 * address is the word at the stack pointer: taken if the bytes before it
 * are a call (e8 rel32, or ff /2 of 2, 3 or 6 bytes). */
static __always_inline __u64 leaf_caller(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u8 code[6];
	__u64 sp, ret = 0;

	if (!regs)
		return 0;
	sp = BPF_CORE_READ(regs, sp);
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) || ret < 6 ||
	    bpf_probe_read_user(code, sizeof(code), (void *)(ret - 6)))
		return 0;
	if (code[1] == 0xe8 || code[0] == 0xff || code[3] == 0xff || code[4] == 0xff)
		return ret;
	return 0;
}

/* Signals whose default action kills with a core: a crash. */
#define CRASH_SIGNALS ((1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | \
		       (1u << 11) | (1u << 31))	/* ILL TRAP ABRT BUS FPE SEGV SYS */

/* The crashing thread's own stack, taken as the kernel delivers the signal
 * and before the default action ends the process: a backtrace without a
 * core file or a debugger. Handled signals are the program's business. */
SEC("tp_btf/signal_deliver")
int BPF_PROG(proc_signal, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_ev *ev;

	if (sig <= 0 || sig > 31 || !(CRASH_SIGNALS & (1u << sig)) ||
	    !bpf_map_lookup_elem(&tracked, &tgid) || BPF_CORE_READ(ka, sa.sa_handler))
		return 0;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_loss(PROC_LOSS_RINGBUF);
		return 0;
	}
	ev->type = PROC_EV_CRASH;
	ev->pid = tgid;
	ev->ppid = 0;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->exit_code = 0;
	ev->flags = 0;
	ev->ts_ns = bpf_ktime_get_ns();
	BPF_CORE_READ_STR_INTO(&ev->comm, task, comm);
	ev->signo = (__u32)sig;
	/* Some kernels (6.18) mark @info as a possible error pointer, and a
	 * direct read of it is refused: read it as untrusted memory. */
	ev->addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	/* Bytes written, or a negative error; frames are 8 bytes each. */
	long got = bpf_get_stack(ctx, ev->frames, sizeof(ev->frames), BPF_F_USER_STACK);

	ev->n_frames = got > 0 ? (__s32)((__u64)got >> 3) : (__s32)got;
	ev->leaf_caller = leaf_caller(task);
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
