// SPDX-License-Identifier: GPL-2.0
/* no_leak's exit hold: a uprobe on the C library's _exit (where exit() and a
 * return from main end), attached by pid. It reports the calling thread's
 * registers and stops the process with SIGSTOP, delivered on the way back to
 * user space, before _exit's exit_group: the memory is still mapped while
 * the daemon scans it, and the daemon's SIGCONT lets the exit go on. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "leak.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LEAK_C__MAX);
	__type(key, __u32);
	__type(value, __u64);
} leak_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&leak_counters, &which);

	if (c)
		*c += 1;
}

SEC("uprobe")
int BPF_KPROBE(exit_enter, int status)
{
	struct leak_exit_event *ev;
	__u64 id = bpf_get_current_pid_tgid();

	ev = bpf_ringbuf_reserve(&exits, sizeof(*ev), 0);
	if (!ev) {
		/* Nobody would be told to let it go on: do not stop it. */
		count(LEAK_C_LOST_RINGBUF);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->tgid = id >> 32;
	ev->tid = (__u32)id;
	ev->status = status;
	ev->sp = PT_REGS_SP(ctx);
	ev->ip = PT_REGS_IP(ctx);
	ev->ts_ns = bpf_ktime_get_ns();
#if defined(__TARGET_ARCH_x86)
	ev->regs[0] = ctx->ax;
	ev->regs[1] = ctx->bx;
	ev->regs[2] = ctx->cx;
	ev->regs[3] = ctx->dx;
	ev->regs[4] = ctx->si;
	ev->regs[5] = ctx->di;
	ev->regs[6] = ctx->bp;
	ev->regs[7] = ctx->sp;
	ev->regs[8] = ctx->r8;
	ev->regs[9] = ctx->r9;
	ev->regs[10] = ctx->r10;
	ev->regs[11] = ctx->r11;
	ev->regs[12] = ctx->r12;
	ev->regs[13] = ctx->r13;
	ev->regs[14] = ctx->r14;
	ev->regs[15] = ctx->r15;
	ev->nregs = LEAK_NREGS;
#endif
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
	count(LEAK_C_HELD);
	bpf_send_signal(LEAK_STOP_SIGNAL);
	return 0;
}
