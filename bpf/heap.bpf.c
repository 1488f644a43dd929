// SPDX-License-Identifier: GPL-2.0
/* Heap tracking: uprobes on the C library's allocator entry points and
 * uretprobes for their results, attached by pid to the workload before it
 * runs. Each block lives in a map from allocation to free; a free that finds
 * nothing is reported with the user stack, and a recently freed address
 * tells a double free from a pointer never allocated. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "heap.h"

char LICENSE[] SEC("license") = "GPL";

#define EEXIST 17	/* bpf_get_stackid: the bucket holds another stack */

/* Tunables, set through the skeleton's rodata before load. */
const volatile bool capture_stacks = true;	/* allocation and free stacks */
const volatile bool remember_frees = true;	/* tell double from never-allocated */
const volatile bool trap_only = false;		/* benchmarks: do nothing, to measure the trap */
/* Stop the process at a bad free, before the C library acts on it (glibc
 * aborts on most), so the daemon can read its maps and name the frames;
 * the daemon lets it go on (SIGCONT) right after. */
const volatile bool stop_on_bad_free = true;
/* The C library's file: a free from inside it that finds no block is its
 * own bookkeeping (at thread exit glibc frees its tcache, made by an
 * internal allocation, and the blocks cached in it), not the program's. */
const volatile __u64 libc_ino = 0;
const volatile __u32 libc_dev = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HEAP_MAX_LIVE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct heap_key);
	__type(value, struct heap_block);
} live SEC(".maps");

/* Children of the workload: attached after their fork, with a heap copied
 * from their parent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HEAP_MAX_CHILDREN);
	__type(key, __u32);		/* tgid */
	__type(value, __u8);
} partial SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HEAP_MAX_RECENT);
	__type(key, struct heap_key);
	__type(value, struct heap_freed);
} recent SEC(".maps");

/* Allocation sites by the allocator's immediate caller. The stack walk,
 * the costliest step, runs once per site, not per call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HEAP_MAX_SITES);
	__type(key, __u64);		/* caller */
	__type(value, struct heap_site);
} sites SEC(".maps");

/* The same for the callers of free, for the first free of a double free. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HEAP_MAX_SITES);
	__type(key, __u64);		/* caller */
	__type(value, __s32);		/* stack id */
} free_sites SEC(".maps");

/* Entry-to-return hand-off, one slot per thread: task storage is a
 * pointer away, where a hash keyed by tid is a lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct heap_pending_slots);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, HEAP_MAX_SITES);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, HEAP_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* The stacks whose bucket in the map above was taken by another stack. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, HEAP_SPILL_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, HEAP_STACK_DEPTH * sizeof(__u64));
} spill_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HEAP_C__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Set once a block could not be tracked: from then on a free that finds
 * nothing may be of that block, so it is counted, not judged. */
bool live_overflowed = false;

static __always_inline void count(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += n;
}

/* At a function's entry (or before its first push) the return address is at
 * the stack pointer: the caller a frame-pointer walk from here would miss. */
static __always_inline __u64 caller_of(struct pt_regs *ctx)
{
	__u64 ret = 0;

	bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
	return ret;
}

/* The user stack's id: in the stack map, or, if its bucket there holds
 * another stack, in the spill map (HEAP_MAX_SITES + its id there). */
static __always_inline __s32 stack_id_of(struct pt_regs *ctx, __u64 flags)
{
	__s32 id;

	if (!capture_stacks)
		return -1;
	id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK | flags);
	if (id == -EEXIST) {
		id = bpf_get_stackid(ctx, &spill_stacks, BPF_F_USER_STACK | flags);
		if (id >= 0)
			id += HEAP_MAX_SITES;
	}
	if (id < 0)
		count(HEAP_C_LOST_STACK, 1);
	return id;
}

static __always_inline __s32 stack_of(struct pt_regs *ctx)
{
	return stack_id_of(ctx, BPF_F_FAST_STACK_CMP);
}

/* The site of @caller, made (with its stack) on first sight. */
static __always_inline struct heap_site *site_of(struct pt_regs *ctx, __u64 caller)
{
	struct heap_site *s, fresh = {.caller = caller};

	s = bpf_map_lookup_elem(&sites, &caller);
	if (s)
		return s;
	fresh.stack_id = stack_of(ctx);
	if (bpf_map_update_elem(&sites, &caller, &fresh, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&sites, &caller)) {
		count(HEAP_C_LOST_SITE, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&sites, &caller);
}

static __always_inline __s32 free_stack_of(struct pt_regs *ctx, __u64 caller)
{
	__s32 *known = bpf_map_lookup_elem(&free_sites, &caller), id;

	if (known)
		return *known;
	id = stack_of(ctx);
	if (id >= 0)	/* a stack not taken now may be the next time */
		bpf_map_update_elem(&free_sites, &caller, &id, BPF_ANY);
	return id;
}

/* Inside a probed allocator call of this thread (nested calls run on the
 * stack below the outer call's entry). */
static __always_inline bool inside_call(struct pt_regs *ctx, const struct heap_pending *slot)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return slot && slot->fn_valid && PT_REGS_SP(ctx) < slot->sp &&
	       slot->mm == (__u64)task->mm &&
	       bpf_ktime_get_ns() - slot->ts_ns < HEAP_NESTED_MAX_NS;
}

static __always_inline int enter(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 arg)
{
	struct heap_pending_slots *slots;
	struct heap_pending *slot;

	if (trap_only)
		return 0;
	/* Only what the return cannot see: the arguments. The caller and
	 * its stack are taken at the return, from the caller's own frame. */
	slots = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slots) {
		count(HEAP_C_LOST_PENDING, 1);
		return 0;
	}
	slot = fn == HEAP_FN_USER_ALLOC ? &slots->user : &slots->alloc;
	/* A call the allocator makes inside a probed one is its own
	 * business: the outer call's result is the program's. A stale slot
	 * (a return never seen) sits below the stack pointer: overwritten. */
	if (inside_call(ctx, slot))
		return 0;
	slot->sp = PT_REGS_SP(ctx);
	slot->mm = (__u64)bpf_get_current_task_btf()->mm;
	slot->ts_ns = bpf_ktime_get_ns();
	slot->size = size;
	slot->arg = arg;
	slot->fn = fn;
	slot->fn_valid = 1;
	return 0;
}

/* Whose heap the current task works on: its own process's, or, in a
 * vfork child before its exec (vfork_done set; dash spawns commands so),
 * the parent's, whose memory it shares and whose probes fire for it. */
static __always_inline __u32 heap_tgid(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	if (BPF_CORE_READ(t, vfork_done))
		return BPF_CORE_READ(t, real_parent, tgid);
	return bpf_get_current_pid_tgid() >> 32;
}

/* At the return: @site is the caller's, made on first sight. A stale
 * "recently freed" entry for a reused address is harmless: it is read only
 * when a free finds no live block. */
static __always_inline void track_alloc(__u64 addr, const struct heap_pending *p,
					struct heap_site *site)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct heap_key k = {.tgid = heap_tgid(), .space = p->fn == HEAP_FN_USER_ALLOC, .addr = addr};
	struct heap_block b = {
		.size = p->size, .ts_ns = bpf_ktime_get_ns(), .caller = p->caller,
		.stack_id = site ? site->stack_id : -1, .tid = (__u32)id,
	};

	if (bpf_map_update_elem(&live, &k, &b, BPF_ANY)) {
		count(HEAP_C_LOST_LIVE, 1);
		live_overflowed = true;
		return;
	}
	count(HEAP_C_ALLOCS, 1);
	count(HEAP_C_BYTES_ALLOC, p->size);
	if (site) {
		__sync_fetch_and_add(&site->bytes, (__s64)p->size);
		__sync_fetch_and_add(&site->blocks, 1);
	}
}

struct vma_ctx {
	bool in_libc;
};

static long vma_is_libc(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_ctx *c = data;
	struct file *f = vma->vm_file;

	if (f && BPF_CORE_READ(f, f_inode, i_ino) == libc_ino &&
	    BPF_CORE_READ(f, f_inode, i_sb, s_dev) == libc_dev)
		c->in_libc = true;
	return 0;
}

static __always_inline void report_bad_free(struct pt_regs *ctx, struct heap_key *k,
					    __u32 fn, __u64 caller)
{
	struct vma_ctx vc = {};

	if (live_overflowed) {
		count(HEAP_C_UNJUDGED_FREE, 1);
		return;
	}
	if (libc_ino) {
		bpf_find_vma(bpf_get_current_task_btf(), caller, vma_is_libc, &vc, 0);
		if (vc.in_libc) {
			count(HEAP_C_LIBC_INTERNAL, 1);
			return;
		}
	}
	struct heap_freed *prev = remember_frees ? bpf_map_lookup_elem(&recent, k) : NULL;
	struct heap_event *ev;

	if (!prev && bpf_map_lookup_elem(&partial, &k->tgid)) {
		struct heap_freed f = {
			.ts_ns = bpf_ktime_get_ns(), .caller = caller, .stack_id = -1,
			.alloc_stack_id = -1, .tid = (__u32)bpf_get_current_pid_tgid(),
		};

		count(HEAP_C_CHILD_UNJUDGED, 1);
		if (remember_frees)
			bpf_map_update_elem(&recent, k, &f, BPF_ANY);
		return;
	}
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(HEAP_C_LOST_RINGBUF, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = prev ? HEAP_EV_DOUBLE_FREE : HEAP_EV_INVALID_FREE;
	ev->tgid = k->tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->fn = fn;
	ev->addr = k->addr;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->caller = caller;
	ev->stack_id = stack_id_of(ctx, 0);
	ev->prev_stack_id = -1;
	ev->alloc_stack_id = -1;
	if (prev) {
		ev->prev_stack_id = prev->stack_id;
		ev->prev_caller = prev->caller;
		ev->prev_ts_ns = prev->ts_ns;
		ev->prev_tid = prev->tid;
		ev->alloc_stack_id = prev->alloc_stack_id;
		ev->alloc_caller = prev->alloc_caller;
		ev->size = prev->size;
	}
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
	if (stop_on_bad_free)
		bpf_send_signal(HEAP_STOP_SIGNAL);
}

/* @addr was live and is now freed, or the bad free is reported. */
static __always_inline void track_free(struct pt_regs *ctx, __u64 addr, __u32 fn,
				       __u64 caller, __s32 stack_id)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct heap_key k = {.tgid = heap_tgid(), .space = fn == HEAP_FN_USER_FREE, .addr = addr};
	struct heap_block *b;
	struct heap_site *s;
	struct heap_freed f;

	b = bpf_map_lookup_elem(&live, &k);
	if (!b) {
		report_bad_free(ctx, &k, fn, caller);
		return;
	}
	count(HEAP_C_FREES, 1);
	count(HEAP_C_BYTES_FREED, b->size);
	s = bpf_map_lookup_elem(&sites, &b->caller);
	if (s) {
		__sync_fetch_and_add(&s->bytes, -(__s64)b->size);
		__sync_fetch_and_add(&s->blocks, -1);
	}
	if (remember_frees) {
		f.size = b->size;
		f.ts_ns = bpf_ktime_get_ns();
		f.caller = caller;
		f.alloc_caller = b->caller;
		f.stack_id = stack_id;
		f.alloc_stack_id = b->stack_id;
		f.tid = (__u32)id;
		f.pad = 0;
		bpf_map_update_elem(&recent, &k, &f, BPF_ANY);
	}
	bpf_map_delete_elem(&live, &k);
}

/* Drop @addr from the live map without judging the free. */
static __always_inline void free_if_live(__u64 addr)
{
	struct heap_key k = {.tgid = heap_tgid(), .addr = addr};
	struct heap_block *b = bpf_map_lookup_elem(&live, &k);
	struct heap_site *s;

	if (!b)
		return;
	count(HEAP_C_FREES, 1);
	count(HEAP_C_BYTES_FREED, b->size);
	s = bpf_map_lookup_elem(&sites, &b->caller);
	if (s) {
		__sync_fetch_and_add(&s->bytes, -(__s64)b->size);
		__sync_fetch_and_add(&s->blocks, -1);
	}
	bpf_map_delete_elem(&live, &k);
}

static __always_inline struct heap_pending_slots *take_pending(void)
{
	return bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
}

/* Inside a call of the allocator (not a user's): its own frees. */
static __always_inline bool inside_alloc(struct pt_regs *ctx)
{
	struct heap_pending_slots *slots = take_pending();

	return slots && inside_call(ctx, &slots->alloc);
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	return enter(ctx, HEAP_FN_MALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 nmemb, __u64 size)
{
	return enter(ctx, HEAP_FN_CALLOC, nmemb * size, 0);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 ptr, __u64 size)
{
	return enter(ctx, HEAP_FN_REALLOC, size, ptr);
}

SEC("uprobe")
int BPF_KPROBE(reallocarray_enter, __u64 ptr, __u64 nmemb, __u64 size)
{
	return enter(ctx, HEAP_FN_REALLOCARRAY, nmemb * size, ptr);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, __u64 memptr, __u64 align, __u64 size)
{
	return enter(ctx, HEAP_FN_POSIX_MEMALIGN, size, memptr);
}

SEC("uprobe")
int BPF_KPROBE(aligned_alloc_enter, __u64 align, __u64 size)
{
	return enter(ctx, HEAP_FN_ALIGNED_ALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(memalign_enter, __u64 align, __u64 size)
{
	return enter(ctx, HEAP_FN_MEMALIGN, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(valloc_enter, __u64 size)
{
	return enter(ctx, HEAP_FN_VALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(pvalloc_enter, __u64 size)
{
	return enter(ctx, HEAP_FN_PVALLOC, size, 0);
}

/* One return serves every allocator: the pending entry says which call it
 * was. */
static __always_inline int returned(struct pt_regs *ctx, struct heap_pending *p, __u64 ret)
{
	struct heap_pending copy;
	__u64 addr = ret;

	if (!p || !p->fn_valid)
		return 0;
	/* A nested call's return: its stack pointer is still below the
	 * outer entry's (a return pops the return address: entry sp + 8). */
	if (inside_call(ctx, p) || (PT_REGS_SP(ctx) == p->sp && p->fn_valid))
		return 0;
	copy = *p;
	p->fn_valid = 0;	/* consumed: a return without an entry finds nothing */
	/* At a return, ip is the return address: the caller. */
	copy.caller = PT_REGS_IP(ctx);
	switch (copy.fn) {
	case HEAP_FN_REALLOC:
	case HEAP_FN_REALLOCARRAY:
		/* realloc(p, n): p is gone if the call returned a block, or
		 * if it freed p for a zero size. glibc frees that one through
		 * free itself (same address, so our free probe saw it): free
		 * it here only if it is still live. */
		if (copy.arg && ret)
			track_free(ctx, copy.arg, copy.fn, copy.caller,
				   remember_frees ? free_stack_of(ctx, copy.caller) : -1);
		else if (copy.arg && copy.size == 0)
			free_if_live(copy.arg);
		break;
	case HEAP_FN_POSIX_MEMALIGN:
		if (ret != 0)	/* an error number: nothing allocated */
			return 0;
		addr = 0;
		bpf_probe_read_user(&addr, sizeof(addr), (void *)copy.arg);
		break;
	case HEAP_FN_USER_ALLOC:
		/* The pointer comes back through an argument, or returned. */
		if (copy.arg) {
			addr = 0;
			bpf_probe_read_user(&addr, sizeof(addr), (void *)copy.arg);
		}
		break;
	default:
		break;
	}
	if (addr)
		track_alloc(addr, &copy, site_of(ctx, copy.caller));
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 ret)
{
	struct heap_pending_slots *slots = trap_only ? NULL : take_pending();

	return slots ? returned(ctx, &slots->alloc, ret) : 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(user_alloc_return, __u64 ret)
{
	struct heap_pending_slots *slots = trap_only ? NULL : take_pending();

	return slots ? returned(ctx, &slots->user, ret) : 0;
}

SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 ptr)
{
	if (!ptr || trap_only || inside_alloc(ctx))
		return 0;
	/* The free's own stack is only kept to show a later double free. */
	__u64 caller = caller_of(ctx);

	track_free(ctx, ptr, HEAP_FN_FREE, caller,
		   remember_frees ? free_stack_of(ctx, caller) : -1);
	return 0;
}

/* A user's allocator, named in the scenario: which argument holds the size
 * and the pointer comes as the attach cookie. */
static __always_inline __u64 arg_n(struct pt_regs *ctx, unsigned n)
{
	/* Every register read first, at a fixed offset of ctx: the verifier
	 * refuses a load through a ctx pointer the compiler has moved. */
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
	__u64 a4 = PT_REGS_PARM4(ctx), a5 = PT_REGS_PARM5(ctx);

	asm volatile("" : "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5));
	return n == 1 ? a1 : n == 2 ? a2 : n == 3 ? a3 : n == 4 ? a4 : n == 5 ? a5 : 0;
}

SEC("uprobe")
int user_alloc_enter(struct pt_regs *ctx)
{
	__u64 c = bpf_get_attach_cookie(ctx);
	unsigned size_arg = HEAP_COOKIE_SIZE_ARG(c), ptr_arg = HEAP_COOKIE_PTR_ARG(c);

	return enter(ctx, HEAP_FN_USER_ALLOC, size_arg ? arg_n(ctx, size_arg) : 0,
		     ptr_arg ? arg_n(ctx, ptr_arg) : 0);
}

SEC("uprobe")
int user_free_enter(struct pt_regs *ctx)
{
	__u64 ptr = arg_n(ctx, HEAP_COOKIE_PTR_ARG(bpf_get_attach_cookie(ctx)));
	__u64 caller;

	if (!ptr || trap_only)
		return 0;
	caller = caller_of(ctx);
	track_free(ctx, ptr, HEAP_FN_USER_FREE, caller,
		   remember_frees ? free_stack_of(ctx, caller) : -1);
	return 0;
}
