/* Which allocator serves a program's heap, and which of its functions the
 * heap probe must attach to. Read from the program's file and the shared
 * objects it will load (before it runs: the workload is held before exec),
 * in the dynamic linker's search order, so the answer is the allocator the
 * program really uses: glibc, jemalloc (a shared library, or linked into
 * the binary, with or without its je_ prefix), tcmalloc, mimalloc. */
#ifndef FAULTD_PROBE_ALLOC_H
#define FAULTD_PROBE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "scenario.h"

#define ALLOC_MAX_TARGETS 64
#define ALLOC_PATH_MAX 256
#define ALLOC_SYM_MAX 48

/* One function to probe. */
struct alloc_target {
	char path[ALLOC_PATH_MAX];	/* the file holding it */
	char sym[ALLOC_SYM_MAX];
	unsigned fn;			/* enum heap_fn: which program reads its arguments */
	long sym_off;			/* its file offset */
	long probe_off;			/* where in it the entry probe goes */
	bool user;			/* a user's allocator: args[] say where things are */
	unsigned size_arg;		/* user allocate: 1-based argument holding the size */
	unsigned ptr_arg;		/* user free: the pointer; allocate: an out-pointer, 0: returned */
};

struct alloc_plan {
	char allocator[32];		/* "glibc", "jemalloc", ..., or "unknown" */
	char served_by[ALLOC_PATH_MAX];	/* the file whose malloc the program gets */
	bool known;			/* false: heap invariants cannot be judged */
	char why[640];			/* how it was found, or why it is unknown */
	char libc[ALLOC_PATH_MAX];	/* the C library it loads ("" if static) */
	struct alloc_target t[ALLOC_MAX_TARGETS];
	size_t n;
	char placement[1024];		/* "malloc+0 push: emulated, free+9 ..." */
};

/* The plan for @exe run with @env (NULL-terminated "K=V", may be NULL; the
 * daemon's own LD_PRELOAD and LD_LIBRARY_PATH are used when @env has
 * none) plus @user's functions. 0 (also for an unknown allocator: plan->known
 * says) or -errno when @exe cannot be read. */
int alloc_plan_for(const char *exe, const char *const *env, const struct sc_allocator *user,
		   size_t n_user, struct alloc_plan *plan);
/* {"exe", "allocator", "served_by", "known", "why", "entry_points": [..]} */
json_t *alloc_plan_json(const struct alloc_plan *plan, const char *exe);

/* Classify an object by the symbols it defines (exposed for unit tests):
 * "jemalloc", "tcmalloc", "mimalloc", "glibc", or NULL. @has answers "does
 * it define this function". */
const char *alloc_classify(bool (*has)(const char *sym, void *arg), void *arg,
			   const char **prefix);

/* Where to put a probe in the function at @code (its first bytes): past a
 * leading null check of the first argument, on an instruction the kernel
 * emulates (push) or a 5-byte nop. Returns the offset and says why in
 * @why. Exposed for unit tests. */
int probe_alloc_offset(const unsigned char *code, size_t len, bool allow_skip,
		      char *why, size_t why_len);

/* The file offset of the function @sym in the ELF file @path (its dynamic
 * or full symbol table), or -errno. */
long alloc_sym_offset(const char *path, const char *sym);

#endif
