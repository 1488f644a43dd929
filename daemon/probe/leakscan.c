/* The reachability scan of no_leak (see leakscan.h): read the held
 * process's writable memory with process_vm_readv, mark what the roots
 * reach, then split the rest into direct and indirect leaks. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <bpf/bpf.h>

#include "heap.h"
#include "leakscan.h"
#include "log.h"
#include "util.h"

#define LS_BATCH 4096
#define LS_READ_CHUNK (16u << 20)	/* bytes per process_vm_readv */
/* A writable mapping larger than this is not read: a sanitizer's shadow or
 * a reservation (terabytes, mostly never touched), not data. */
#define LS_MAX_REGION (4ull << 30)

struct ls_region {
	uint64_t start, end;
	unsigned char *buf;		/* its bytes; NULL if unreadable */
	uint64_t root_from;		/* root: scan from here (a stack pointer) */
	uint64_t buf_from;		/* buf holds [buf_from, end) */
	bool heap;			/* [heap] or holds live blocks: not a root */
	bool stack;			/* a thread's stack pointer is in it */
};

struct ls_ctx {
	pid_t tgid;
	struct leak_block *b;
	size_t n;
	uint64_t lo, hi;		/* lowest block start, highest block end */
	struct ls_region *r;
	size_t n_r;
	size_t *work;			/* block indexes to scan */
	size_t n_work;
	struct leakscan_stats *st;
};

int leakscan_blocks(int map_fd, pid_t tgid, struct leak_block **out, size_t *n)
{
	struct heap_key *keys = calloc(LS_BATCH, sizeof(*keys));
	struct heap_block *vals = calloc(LS_BATCH, sizeof(*vals));
	struct leak_block *b = NULL;
	size_t cap = 0, used = 0;
	bool first = true, more = true;
	__u64 batch = 0;
	int err = 0;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (more && !err) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 got = LS_BATCH;

		if (bpf_map_lookup_batch(map_fd, first ? NULL : &batch, &batch, keys, vals, &got,
					 &bo)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			more = false;
		}
		first = false;
		for (__u32 i = 0; i < got && !err; i++) {
			/* A user allocator's pieces (space 1) sit inside
			 * malloc's blocks: the scan judges malloc's. */
			if (keys[i].tgid != (__u32)tgid || keys[i].space)
				continue;
			if (used == cap) {
				size_t ncap = cap ? cap * 2 : 1024;
				struct leak_block *nb = realloc(b, ncap * sizeof(*b));

				if (!nb) {
					err = -ENOMEM;
					break;
				}
				b = nb;
				cap = ncap;
			}
			b[used++] = (struct leak_block){
				.addr = keys[i].addr, .size = vals[i].size,
				.caller = vals[i].caller, .stack_id = vals[i].stack_id,
			};
		}
	}
out:
	free(keys);
	free(vals);
	if (err) {
		free(b);
		b = NULL;
		used = 0;
	}
	*out = b;
	*n = used;
	return err;
}

static int cmp_block(const void *a, const void *b)
{
	const struct leak_block *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* glibc's malloc puts the next chunk's header 16 bytes before its user
 * pointer, and its size field can fall in a block's last 8 bytes: the
 * arena's pointers to a free or top chunk (main_arena.top, the bins) would
 * then look like interior pointers into the block before it, and keep the
 * last block allocated "reachable". That one offset is not a pointer into
 * the block. */
static uint64_t next_chunk_off(uint64_t size)
{
	uint64_t chunk = (size + 8 + 15) & ~15ull;

	return (chunk < 32 ? 32 : chunk) - 16;
}

/* The block holding @v (interior pointers count), or -1. */
static long block_at(const struct ls_ctx *c, uint64_t v)
{
	size_t lo = 0, hi = c->n;

	if (v < c->lo || v >= c->hi)
		return -1;
	while (lo < hi) {		/* the last block starting at or below v */
		size_t mid = lo + (hi - lo) / 2;

		if (c->b[mid].addr <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	lo--;
	if (v == c->b[lo].addr)
		return (long)lo;
	if (v >= c->b[lo].addr + c->b[lo].size || v == c->b[lo].addr + next_chunk_off(c->b[lo].size))
		return -1;
	return (long)lo;
}

static struct ls_region *region_at(const struct ls_ctx *c, uint64_t addr)
{
	size_t lo = 0, hi = c->n_r;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_r && c->r[lo].start <= addr ? &c->r[lo] : NULL;
}

/* Every aligned word of [p, p + len) that points into a block in state
 * @from moves it to @to and onto the work list. */
static void scan_words(struct ls_ctx *c, const unsigned char *p, size_t len, uint8_t from,
		       uint8_t to, long self)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < len / 8; i++) {
		long k = block_at(c, w[i]);

		if (k < 0 || k == self || c->b[k].state != from)
			continue;
		c->b[k].state = to;
		c->work[c->n_work++] = (size_t)k;
	}
}

/* The bytes of block @k in the copy of its mapping, or NULL. */
static const unsigned char *block_bytes(const struct ls_ctx *c, size_t k, size_t *len)
{
	const struct leak_block *b = &c->b[k];
	const struct ls_region *r = region_at(c, b->addr);
	uint64_t end;

	if (!r || !r->buf)
		return NULL;
	end = b->addr + b->size < r->end ? b->addr + b->size : r->end;
	*len = (size_t)((end - b->addr) & ~7ull);
	return r->buf + ((b->addr - r->start) & ~7ull);
}

static void drain_work(struct ls_ctx *c, uint8_t from, uint8_t to, bool count)
{
	while (c->n_work) {
		size_t k = c->work[--c->n_work], len = 0;
		const unsigned char *p = block_bytes(c, k, &len);

		if (!p)
			continue;
		if (count)
			c->st->scanned_block_bytes += len;
		scan_words(c, p, len, from, to, (long)k);
	}
}

/* A heap mapping is read whole; a root from where its scan starts (a
 * thread's 8 MiB stack from its stack pointer). */
static int read_region(pid_t tgid, struct ls_region *r)
{
	size_t len, done = 0;

	r->buf_from = r->heap ? r->start : r->root_from;
	len = (size_t)(r->end - r->buf_from);
	if (!len)
		return 0;
	/* Faulting in a fresh buffer page by page costs more than the copy
	 * (several times more in a VM): populate it in one go. */
	r->buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->buf == MAP_FAILED) {
		r->buf = NULL;
		return -ENOMEM;
	}
	/* Huge pages where the kernel has them: 512 times fewer faults. */
	madvise(r->buf, len, MADV_HUGEPAGE);
	madvise(r->buf, len, MADV_POPULATE_WRITE);
	while (done < len) {
		size_t want = len - done < LS_READ_CHUNK ? len - done : LS_READ_CHUNK;
		struct iovec l = {.iov_base = r->buf + done, .iov_len = want};
		struct iovec rm = {.iov_base = (void *)(uintptr_t)(r->buf_from + done),
				   .iov_len = want};
		ssize_t got = process_vm_readv(tgid, &l, 1, &rm, 1, 0);

		if (got <= 0) {
			/* A hole (a page that cannot be read): zeros, no pointers. */
			memset(r->buf + done, 0, want);
			got = (ssize_t)(want < 4096 ? want : 4096);
		}
		done += (size_t)got;
	}
	return 0;
}

/* The writable mappings, sorted (the kernel lists them in order). */
static int read_maps(struct ls_ctx *c)
{
	char path[64], *text = NULL, *line, *save = NULL;
	size_t cap = 0;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)c->tgid);
	err = util_read_file(path, 64u << 20, &text, NULL);
	if (err)
		return err;
	for (line = strtok_r(text, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long s, e;
		char perms[8] = "", name[256] = "";

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &s, &e, perms, name) < 3 ||
		    perms[0] != 'r' || perms[1] != 'w' || !strncmp(name, "[v", 2))
			continue;
		if (e - s > LS_MAX_REGION) {
			c->st->skipped_regions++;
			continue;
		}
		if (c->n_r == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct ls_region *nr = realloc(c->r, ncap * sizeof(*nr));

			if (!nr) {
				err = -ENOMEM;
				break;
			}
			c->r = nr;
			cap = ncap;
		}
		c->r[c->n_r++] = (struct ls_region){
			.start = s, .end = e, .root_from = s, .heap = !strcmp(name, "[heap]"),
		};
	}
	free(text);
	return err;
}

/* A thread's stack pointer: roots start there. */
static void mark_sp(struct ls_ctx *c, uint64_t sp)
{
	struct ls_region *r = region_at(c, sp);

	if (!r) {
		c->st->threads_no_sp++;
		return;
	}
	c->st->threads++;
	/* Two stack pointers in one mapping (a signal stack, a stale value)
	 * only widen the scan: the lower one wins. */
	if (!r->stack || (sp & ~7ull) < r->root_from)
		r->root_from = sp & ~7ull;
	r->stack = true;
}

static bool listed(const struct leak_thread *th, size_t n_th, pid_t tid)
{
	for (size_t i = 0; i < n_th; i++)
		if ((pid_t)th[i].tid == tid)
			return true;
	return false;
}

/* The stack pointer of every thread not in @th, from
 * /proc/PID/task/TID/syscall ("nr args... sp pc", or "-1 sp pc" outside a
 * system call). */
static void thread_sps(struct ls_ctx *c, const struct leak_thread *th, size_t n_th)
{
	char path[320], *text = NULL;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)c->tgid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *tok[10], *save = NULL, *t;
		int nt = 0;

		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    listed(th, n_th, (pid_t)atoi(de->d_name)))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", (int)c->tgid, de->d_name);
		if (util_read_file(path, 4096, &text, NULL)) {
			c->st->threads_no_sp++;
			continue;
		}
		for (t = strtok_r(text, " \n", &save); t && nt < 10; t = strtok_r(NULL, " \n", &save))
			tok[nt++] = t;
		if (nt >= 3)
			mark_sp(c, strtoull(tok[nt - 2], NULL, 16));
		else
			c->st->threads_no_sp++;
		free(text);
		text = NULL;
	}
	closedir(d);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Blocks in no writable mapping are stale (allocated before an exec, their
 * memory gone); a mapping that holds a block is heap, not a root. */
static void classify(struct ls_ctx *c)
{
	c->lo = UINT64_MAX;
	c->hi = 0;
	for (size_t k = 0; k < c->n; k++) {
		struct ls_region *r = region_at(c, c->b[k].addr);

		if (!r) {
			c->b[k].state = LEAK_STALE;
			c->st->stale++;
			continue;
		}
		r->heap = true;
		if (c->b[k].addr < c->lo)
			c->lo = c->b[k].addr;
		if (c->b[k].addr + c->b[k].size + 1 > c->hi)
			c->hi = c->b[k].addr + c->b[k].size + 1;
	}
}

static void ls_debug(const struct ls_ctx *c)
{
	for (size_t i = 0; i < c->n_r; i++)
		log_debug("%s: pid %d: %llx-%llx %s%s", __func__, (int)c->tgid,
			  (unsigned long long)c->r[i].root_from, (unsigned long long)c->r[i].end,
			  c->r[i].heap ? "heap" : "root", c->r[i].stack ? " (a stack, from its sp)" : "");
}

/* A process whose tracking began after its first allocations (a forked
 * child, a program it exec'd): blocks allocated before are unknown, and
 * what they hold (a pointer array, say) would be read by nobody. The heap
 * mappings' bytes outside the known blocks are scanned as roots too: no
 * block they point to is called leaked. */
static void scan_gaps(struct ls_ctx *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n_r; i++) {
		struct ls_region *r = &c->r[i];
		uint64_t at = r->start;

		if (!r->heap || !r->buf)
			continue;
		while (k < c->n && c->b[k].addr < r->start)
			k++;
		for (; at < r->end; k++) {
			uint64_t to = k < c->n && c->b[k].addr < r->end ? c->b[k].addr : r->end;

			at = (at + 7) & ~7ull;
			if (to > at) {
				scan_words(c, r->buf + (at - r->buf_from), (size_t)(to - at),
					   LEAK_UNSEEN, LEAK_REACHABLE, -1);
				c->st->gap_root_bytes += (size_t)(to - at);
			}
			if (to == r->end)
				break;
			at = c->b[k].addr + c->b[k].size;
		}
	}
	drain_work(c, LEAK_UNSEEN, LEAK_REACHABLE, true);
}

int leakscan_run(pid_t tgid, struct leak_block *b, size_t n, const struct leak_thread *th,
		 size_t n_th, bool partial, struct leakscan_stats *st)
{
	struct ls_ctx c = {.tgid = tgid, .b = b, .n = n, .st = st};
	double t0 = now_ms();
	int err;

	memset(st, 0, sizeof(*st));
	st->blocks = n;
	if (n)			/* b is NULL when there are no blocks */
		qsort(b, n, sizeof(*b), cmp_block);
	for (size_t k = 0; k < n; k++)
		b[k].state = LEAK_UNSEEN;
	c.work = malloc((n ? n : 1) * sizeof(*c.work));
	err = c.work ? read_maps(&c) : -ENOMEM;
	if (err)
		goto out;
	classify(&c);
	for (size_t i = 0; i < n_th; i++)
		mark_sp(&c, th[i].sp);
	thread_sps(&c, th, n_th);
	for (size_t i = 0; i < c.n_r && !err; i++) {
		struct ls_region *r = &c.r[i];

		err = read_region(tgid, r);
		st->regions++;
		if (r->heap)
			st->heap_bytes += (size_t)(r->end - r->start);
	}
	if (err)
		goto out;
	ls_debug(&c);
	/* The roots: registers, then every root mapping (stacks from sp). */
	for (size_t i = 0; i < n_th; i++) {
		size_t nr = th[i].nregs < LEAK_NREGS ? th[i].nregs : LEAK_NREGS;

		scan_words(&c, (const unsigned char *)th[i].regs, nr * 8, LEAK_UNSEEN,
			   LEAK_REACHABLE, -1);
		st->threads_regs += nr > 0;
	}
	for (size_t i = 0; i < c.n_r; i++) {
		struct ls_region *r = &c.r[i];

		if (r->heap)
			continue;
		scan_words(&c, r->buf, (size_t)(r->end - r->root_from), LEAK_UNSEEN,
			   LEAK_REACHABLE, -1);
		st->root_bytes += (size_t)(r->end - r->root_from);
		drain_work(&c, LEAK_UNSEEN, LEAK_REACHABLE, true);
	}
	if (partial)
		scan_gaps(&c);
	/* What is left is leaked. A leaked block that another leaked block
	 * points to is indirect; the others are direct. One pass: each root
	 * of the walk is direct until a later walk reaches it. */
	for (size_t k = 0; k < n; k++) {
		if (b[k].state != LEAK_UNSEEN)
			continue;
		b[k].state = LEAK_DIRECT;
		c.work[c.n_work++] = k;
		while (c.n_work) {
			size_t j = c.work[--c.n_work], len = 0;
			const unsigned char *p = block_bytes(&c, j, &len);

			if (!p)
				continue;
			for (size_t w = 0; w < len / 8; w++) {
				long t = block_at(&c, ((const uint64_t *)p)[w]);

				if (t < 0 || (size_t)t == k || (size_t)t == j)
					continue;
				if (b[t].state == LEAK_UNSEEN) {
					b[t].state = LEAK_INDIRECT;
					c.work[c.n_work++] = (size_t)t;
				} else if (b[t].state == LEAK_DIRECT) {
					b[t].state = LEAK_INDIRECT;	/* an earlier root */
				}
			}
		}
	}
	for (size_t k = 0; k < n; k++) {
		switch (b[k].state) {
		case LEAK_REACHABLE: st->reachable++; break;
		case LEAK_DIRECT: st->direct++; st->direct_bytes += b[k].size; break;
		case LEAK_INDIRECT: st->indirect++; st->indirect_bytes += b[k].size; break;
		default: break;
		}
	}
out:
	for (size_t i = 0; i < c.n_r; i++)
		if (c.r[i].buf)
			munmap(c.r[i].buf, (size_t)(c.r[i].end - c.r[i].buf_from));
	free(c.r);
	free(c.work);
	st->ms = now_ms() - t0;
	if (err)
		log_warn("%s: pid %d: %s", __func__, (int)tgid, strerror(-err));
	return err;
}
