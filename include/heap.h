/* Heap tracking of a workload tree, shared by bpf/heap.bpf.c and
 * daemon/probe_heap.c. Every allocation is a live-map entry keyed by
 * (process, address); a free that finds no entry is a double free (a recent
 * free of that address is remembered) or a free of a pointer never
 * allocated. Fixed-width fields only. */
#ifndef FAULTD_HEAP_H
#define FAULTD_HEAP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HEAP_MAX_LIVE (1u << 20)	/* live allocations per run */
#define HEAP_MAX_RECENT (1u << 16)	/* recently freed addresses remembered */
#define HEAP_MAX_SITES 16384		/* distinct allocation stacks */
/* The stack map's buckets are its hash of the frames modulo its size: a
 * second stack whose hash lands on a taken bucket is refused (-EEXIST;
 * about one stack in 16384 per stack already kept). Those go to a small
 * second map, whose ids follow the first's (HEAP_MAX_SITES + its id). */
#define HEAP_SPILL_STACKS 1024
#define HEAP_MAX_CHILDREN 4096		/* forked processes followed */
#define HEAP_STACK_DEPTH 32
#define HEAP_COMM_LEN 16
#define HEAP_STOP_SIGNAL 19		/* SIGSTOP: hold a process at a bad free */

/* Allocator entry points; the index of each program's call in the pending
 * map and in the per-call counters. */
enum heap_fn {
	HEAP_FN_MALLOC = 0, HEAP_FN_CALLOC, HEAP_FN_REALLOC, HEAP_FN_REALLOCARRAY,
	HEAP_FN_POSIX_MEMALIGN, HEAP_FN_ALIGNED_ALLOC, HEAP_FN_MEMALIGN,
	HEAP_FN_VALLOC, HEAP_FN_PVALLOC, HEAP_FN_FREE,
	HEAP_FN_USER_ALLOC,		/* a user's allocator named in the scenario */
	HEAP_FN_USER_FREE,
	HEAP_FN__MAX,
};

/* A user allocator's attach cookie: which argument holds what (1-based;
 * 0 for the pointer of an allocation: the return value). */
#define HEAP_COOKIE_SIZE_ARG(c) ((unsigned)(c) & 0xff)
#define HEAP_COOKIE_PTR_ARG(c) (((unsigned)(c) >> 8) & 0xff)
#define HEAP_COOKIE(size_arg, ptr_arg) ((__u64)(size_arg) | ((__u64)(ptr_arg) << 8))

struct heap_key {
	__u32 tgid;
	__u32 space;			/* 0: malloc's blocks; 1: a user allocator's,
					 * which may sit inside a malloc'ed pool */
	__u64 addr;
};

struct heap_block {			/* value of the live map */
	__u64 size;
	__u64 ts_ns;
	__u64 caller;			/* return address into the caller */
	__s32 stack_id;			/* allocation stack, or < 0 */
	__u32 tid;
};

struct heap_freed {			/* value of the recently-freed map */
	__u64 size;
	__u64 ts_ns;
	__u64 caller;			/* the free's caller */
	__u64 alloc_caller;
	__s32 stack_id;			/* the free's stack */
	__s32 alloc_stack_id;
	__u32 tid;
	__u32 pad;
};

struct heap_site {			/* per allocation site (caller), live totals */
	__s64 bytes;
	__s64 blocks;
	__u64 caller;
	__s32 stack_id;			/* its stack, taken the first time */
	__u32 pad;
};

struct heap_pending {			/* entry -> return hand-off, per thread */
	__u64 size;
	__u64 arg;			/* realloc: old pointer; posix_memalign: memptr */
	__u64 caller;
	__u32 fn;			/* enum heap_fn */
	__s32 stack_id;
	__u32 fn_valid;			/* set at entry, cleared at return */
	__u32 pad;
	__u64 sp;			/* the stack pointer at entry: a probed call
					 * made inside it (mimalloc's realloc calls its
					 * free and malloc) runs below it */
	__u64 mm;			/* the address space at entry: an exec since
					 * (a held child exec'ed inside malloc) makes
					 * the slot stale */
	__u64 ts_ns;			/* entry time: a slot older than
					 * HEAP_NESTED_MAX_NS lost its return */
};

#define HEAP_NESTED_MAX_NS 1000000000ull	/* no allocator call lasts a second */

/* Per thread: a call of the allocator, and one of a user's allocator (a
 * pool that grows itself with malloc has both at once). */
struct heap_pending_slots {
	struct heap_pending alloc;
	struct heap_pending user;
};

enum heap_event_type {
	HEAP_EV_DOUBLE_FREE = 1,	/* freed, and freed again */
	HEAP_EV_INVALID_FREE = 2,	/* never allocated (or before tracking) */
};

struct heap_event {
	__u32 type;
	__u32 tgid;
	__u32 tid;
	__u32 fn;			/* the freeing call: free or realloc */
	__u64 addr;
	__u64 ts_ns;
	__u64 caller;			/* the bad free's caller */
	__s32 stack_id;			/* the bad free's stack */
	__s32 prev_stack_id;		/* double free: the first free's stack */
	__u64 prev_caller;
	__u64 prev_ts_ns;
	__u32 prev_tid;
	__s32 alloc_stack_id;		/* double free: where it was allocated */
	__u64 alloc_caller;
	__u64 size;
	char comm[HEAP_COMM_LEN];
};

/* Per-CPU counters, indexed by this enum. */
enum heap_counter {
	HEAP_C_ALLOCS = 0, HEAP_C_FREES, HEAP_C_BYTES_ALLOC, HEAP_C_BYTES_FREED,
	HEAP_C_LOST_RINGBUF,		/* an event could not be reported */
	HEAP_C_LOST_LIVE,		/* the live map was full: a block untracked */
	HEAP_C_LOST_PENDING,		/* a call's entry could not be recorded */
	HEAP_C_LOST_STACK,		/* a stack could not be taken */
	HEAP_C_LOST_SITE,		/* the site map was full */
	HEAP_C_LIBC_INTERNAL,		/* libc freeing its own data (thread exit) */
	HEAP_C_UNJUDGED_FREE,		/* no block found after tracking was lost */
	HEAP_C_CHILD_UNJUDGED,		/* no block found in a child: maybe inherited */
	HEAP_C__MAX,
};

#endif
