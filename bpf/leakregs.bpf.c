// SPDX-License-Identifier: GPL-2.0
/* no_leak's roots in registers: for a process held stopped at exit, each
 * thread's user registers (saved at its kernel entry) as struct
 * leak_thread records, one per thread, read with an iter/task link for
 * that process. Its own object: a kernel that refuses it costs only the
 * other threads' registers (the scan still reads their stacks). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "leak.h"

char LICENSE[] SEC("license") = "GPL";

/* Kernels whose task iterator takes no pid walk every task. */
__u32 target_tgid = 0;

SEC("iter/task")
int thread_regs(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct leak_thread out = {};
	struct pt_regs regs;

	if (!task || task->tgid != target_tgid)
		return 0;
	if (bpf_probe_read_kernel(&regs, sizeof(regs), (void *)bpf_task_pt_regs(task)))
		return 0;
	out.tid = task->pid;
	out.sp = PT_REGS_SP(&regs);
#if defined(__TARGET_ARCH_x86)
	out.regs[0] = regs.ax;
	out.regs[1] = regs.bx;
	out.regs[2] = regs.cx;
	out.regs[3] = regs.dx;
	out.regs[4] = regs.si;
	out.regs[5] = regs.di;
	out.regs[6] = regs.bp;
	out.regs[7] = regs.sp;
	out.regs[8] = regs.r8;
	out.regs[9] = regs.r9;
	out.regs[10] = regs.r10;
	out.regs[11] = regs.r11;
	out.regs[12] = regs.r12;
	out.regs[13] = regs.r13;
	out.regs[14] = regs.r14;
	out.regs[15] = regs.r15;
	out.nregs = LEAK_NREGS;
#endif
	bpf_seq_write(ctx->meta->seq, &out, sizeof(out));
	return 0;
}
