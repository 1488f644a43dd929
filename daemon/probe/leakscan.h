/* LeakSanitizer's check at exit, on a process held stopped: which live
 * heap blocks can no longer be reached from the program's memory. Roots
 * are the writable mappings that hold no heap block (data and bss of every
 * object, TLS, the allocator-free anonymous mappings), each thread's stack
 * from its stack pointer up, and the exiting thread's registers; reachable
 * blocks are scanned in turn for aligned words that point into live blocks
 * (interior pointers count). */
#ifndef FAULTD_LEAKSCAN_H
#define FAULTD_LEAKSCAN_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "leak.h"

enum leak_state {
	LEAK_UNSEEN = 0,		/* during the scan: not reached (yet) */
	LEAK_REACHABLE,			/* from a root */
	LEAK_DIRECT,			/* reached from nothing: a leak */
	LEAK_INDIRECT,			/* reached only from leaked blocks */
	LEAK_STALE,			/* not in the process's memory (before an exec) */
};

struct leak_block {
	uint64_t addr;
	uint64_t size;
	uint64_t caller;		/* the allocator's caller */
	int32_t stack_id;		/* allocation stack, or < 0 */
	uint8_t state;			/* enum leak_state */
};

struct leakscan_stats {
	size_t regions;			/* writable mappings read */
	size_t skipped_regions;		/* larger than 4 GiB: not read */
	size_t root_bytes;		/* scanned as roots */
	size_t heap_bytes;		/* mappings holding blocks, read */
	size_t gap_root_bytes;		/* partial: heap outside known blocks, as roots */
	size_t scanned_block_bytes;	/* block contents scanned */
	size_t threads;			/* stacks scanned from their pointer */
	size_t threads_no_sp;		/* whose stack pointer was unreadable */
	size_t threads_regs;		/* whose registers were scanned */
	size_t blocks;			/* live blocks judged */
	size_t reachable, direct, indirect, stale;
	uint64_t direct_bytes, indirect_bytes;
	double ms;			/* reading and scanning */
};

/* The live blocks of @tgid from the heap probe's live map (@map_fd). A new
 * array in *out (free it), or -errno. */
int leakscan_blocks(int map_fd, pid_t tgid, struct leak_block **out, size_t *n);

/* Judge @n blocks of @tgid, which must be stopped, setting each one's
 * state. @th are threads whose registers and stack pointer are known (from
 * bpf/leakregs.bpf.c, or the exiting thread's from the _exit hold); the
 * others' stack pointers are read from /proc/PID/task/TID/syscall. A
 * mapping that holds a stack pointer is scanned from it up. @partial:
 * tracking began after the process's first allocations, so the heap
 * mappings' bytes outside @b are roots too. Sorts @b by address. 0 or
 * -errno (nothing judged). */
int leakscan_run(pid_t tgid, struct leak_block *b, size_t n, const struct leak_thread *th,
		 size_t n_th, bool partial, struct leakscan_stats *st);

#endif
