/* User side of bpf/heap.bpf.c: pick probe offsets from the library's own
 * bytes, attach by pid, consume bad-free events, read counters and sites. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "heap.skel.h"
#include "log.h"
#include "probe_heap.h"
#include "probe_util.h"
#include "util.h"

#define HEAP_MAX_LINKS 24	/* per process: entry and return of every function */
#define HEAP_MAX_PIDS 4096	/* processes followed at once */
#define HEAP_DECODE_BYTES 32

static const char *const libc_candidates[] = {
	"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
	"/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6",
};

/* The allocator entry points: symbol, entry program, and whether the entry
 * probe may move past a null check (only free: the others need a uretprobe,
 * which must sit at the entry where the return address is on top). */
static const struct {
	const char *sym;
	int fn;
	bool movable;
} heap_fns[] = {
	{"malloc", HEAP_FN_MALLOC, false}, {"calloc", HEAP_FN_CALLOC, false},
	{"realloc", HEAP_FN_REALLOC, false}, {"reallocarray", HEAP_FN_REALLOCARRAY, false},
	{"posix_memalign", HEAP_FN_POSIX_MEMALIGN, false},
	{"aligned_alloc", HEAP_FN_ALIGNED_ALLOC, false}, {"memalign", HEAP_FN_MEMALIGN, false},
	{"valloc", HEAP_FN_VALLOC, false}, {"pvalloc", HEAP_FN_PVALLOC, false},
	{"free", HEAP_FN_FREE, true},
};

struct heap_pid {
	pid_t pid;
	struct bpf_link *links[HEAP_MAX_LINKS];
	int n_links;
};

struct probe_heap {
	struct heap_bpf *skel;
	struct probe_ring ring;
	struct heap_pid *pids;		/* the processes attached, with their links */
	size_t n_pids;
	char libc[256];
	long offsets[HEAP_FN__MAX];	/* chosen probe offset within each function */
	long sym_offsets[HEAP_FN__MAX];	/* each function's file offset, -1 if unknown */
	char placement[1024];
	probe_heap_cb cb;
	void *arg;
};

/* --- probe placement ---------------------------------------------------------- */

int heap_probe_offset(const unsigned char *code, size_t len, bool allow_skip,
		      char *why, size_t why_len)
{
	size_t off = 0;
	bool null_checked = false;

	while (off < len) {
		const unsigned char *c = code + off;
		size_t left = len - off;

		if (left >= 1 && (c[0] >= 0x50 && c[0] <= 0x57)) {
			snprintf(why, why_len, "+%zu push: emulated", off);
			return (int)off;
		}
		if (left >= 2 && c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57) {
			snprintf(why, why_len, "+%zu push: emulated", off);
			return (int)off;
		}
		if (left >= 5 && c[0] == 0x0f && c[1] == 0x1f && c[2] == 0x44 &&
		    c[3] == 0x00 && c[4] == 0x00) {
			snprintf(why, why_len, "+%zu nop5: optimisable", off);
			return (int)off;
		}
		if (!allow_skip)
			break;
		/* Instructions that may be stepped over: they neither change
		 * the first argument nor the stack, and only a null first
		 * argument branches away (free(NULL) is nothing to see). */
		if (left >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) {
			off += 4;	/* endbr64 */
		} else if (left >= 3 && c[0] == 0x48 && c[1] == 0x85 && c[2] == 0xff) {
			off += 3;	/* test %rdi,%rdi */
			null_checked = true;
		} else if (null_checked && left >= 2 && c[0] == 0x74) {
			off += 2;	/* je rel8 */
		} else if (null_checked && left >= 6 && c[0] == 0x0f && c[1] == 0x84) {
			off += 6;	/* je rel32 */
		} else {
			break;
		}
	}
	snprintf(why, why_len, "+0 (%02x %02x %02x: single-stepped, slow)",
		 len > 0 ? code[0] : 0, len > 1 ? code[1] : 0, len > 2 ? code[2] : 0);
	return 0;
}

/* Read the first bytes of @sym in the ELF file @path. 0 or -errno. */
static int read_func_bytes(const char *path, const char *sym, unsigned char *buf, size_t len,
			   long *where)
{
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Sym s;
	long file_off = -1;
	int fd, err = -ENOENT;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf) {
		err = -EINVAL;
		goto out_close;
	}
	while (file_off < 0 && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			const char *name;

			if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    !s.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);
			if (name && strcmp(name, sym) == 0)
				break;
			s.st_value = 0;
		}
		if (!s.st_value)
			continue;
		/* Virtual address to file offset through its load segment. */
		size_t nph = 0;
		elf_getphdrnum(elf, &nph);
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    s.st_value >= ph.p_vaddr && s.st_value < ph.p_vaddr + ph.p_filesz)
				file_off = (long)(s.st_value - ph.p_vaddr + ph.p_offset);
		}
	}
	if (file_off >= 0) {
		err = pread(fd, buf, len, file_off) == (ssize_t)len ? 0 : -EIO;
		*where = file_off;
	}
	elf_end(elf);
out_close:
	close(fd);
	return err;
}

static int find_libc(struct probe_heap *p, const char *given)
{
	if (given) {
		snprintf(p->libc, sizeof(p->libc), "%s", given);
		return access(given, R_OK) ? -errno : 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(libc_candidates); i++) {
		if (access(libc_candidates[i], R_OK) == 0) {
			snprintf(p->libc, sizeof(p->libc), "%s", libc_candidates[i]);
			return 0;
		}
	}
	return -ENOENT;
}

static void place_probes(struct probe_heap *p)
{
	size_t used = 0;

	p->placement[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(heap_fns); i++) {
		unsigned char code[HEAP_DECODE_BYTES];
		char why[96];
		int off = 0;

		long sym_off = -1;

		if (read_func_bytes(p->libc, heap_fns[i].sym, code, sizeof(code), &sym_off) == 0)
			off = heap_probe_offset(code, sizeof(code), heap_fns[i].movable,
						why, sizeof(why));
		else
			snprintf(why, sizeof(why), "+0 (bytes unreadable)");
		p->offsets[heap_fns[i].fn] = off;
		p->sym_offsets[heap_fns[i].fn] = sym_off;
		used += (size_t)snprintf(p->placement + used, sizeof(p->placement) - used,
					 "%s%s%s", used ? ", " : "", heap_fns[i].sym, why);
		if (used >= sizeof(p->placement))
			break;
	}
	log_info("%s: %s: %s", __func__, p->libc, p->placement);
}

/* --- events --------------------------------------------------------------------- */

static int on_sample(void *ctx, void *data, size_t len)
{
	struct probe_heap *p = ctx;
	struct heap_event ev;

	if (len < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	ev.comm[HEAP_COMM_LEN - 1] = '\0';
	p->cb(&ev, p->arg);
	return 0;
}

PROBE_SKEL_OPS_DEFINE(heap);

static const struct probe_prog_cap heap_progs[] = {
	{"malloc_enter", CAPS_HEAP}, {"calloc_enter", CAPS_HEAP},
	{"realloc_enter", CAPS_HEAP}, {"reallocarray_enter", CAPS_HEAP},
	{"posix_memalign_enter", CAPS_HEAP}, {"aligned_alloc_enter", CAPS_HEAP},
	{"memalign_enter", CAPS_HEAP}, {"valloc_enter", CAPS_HEAP},
	{"pvalloc_enter", CAPS_HEAP}, {"alloc_return", CAPS_HEAP},
	{"free_enter", CAPS_HEAP},
};

struct heap_prep {
	struct probe_heap *p;
	const struct probe_heap_opts *opts;
};

/* The options and the C library's identity reach the programs as rodata. */
static int heap_prepare(void *skel, void *arg)
{
	const struct heap_prep *prep = arg;
	struct heap_bpf *s = skel;
	struct stat st;

	s->rodata->capture_stacks = prep->opts->stacks;
	s->rodata->remember_frees = prep->opts->remember_frees;
	s->rodata->trap_only = prep->opts->trap_only;
	s->rodata->stop_on_bad_free = prep->opts->stop_on_bad_free;
	if (stat(prep->p->libc, &st) == 0) {
		s->rodata->libc_ino = st.st_ino;
		/* The kernel's s_dev encoding (MKDEV: major << 20 | minor). */
		s->rodata->libc_dev = (__u32)((major(st.st_dev) << 20) | minor(st.st_dev));
	}
	return 0;
}

struct probe_heap *probe_heap__open(struct event_base *base,
				    const struct probe_heap_opts *opts,
				    probe_heap_cb cb, void *arg)
{
	struct heap_prep prep;
	struct probe_heap *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	err = find_libc(p, opts->libc);
	if (err) {
		log_warn("%s: no C library found: %s", __func__, strerror(-err));
		goto err_free;
	}
	place_probes(p);
	prep.p = p;
	prep.opts = opts;
	p->skel = probe_load(&heap_ops, heap_progs, ARRAY_SIZE(heap_progs), CAPS_HEAP,
			     heap_prepare, &prep);
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.events), on_sample, p);
	if (err)
		goto err_destroy;
	return p;
err_destroy:
	heap_bpf__destroy(p->skel);
err_free:
	free(p);
	errno = -err;
	return NULL;
}

static struct bpf_program *entry_prog(struct probe_heap *p, int fn)
{
	struct heap_bpf *s = p->skel;

	switch (fn) {
	case HEAP_FN_MALLOC: return s->progs.malloc_enter;
	case HEAP_FN_CALLOC: return s->progs.calloc_enter;
	case HEAP_FN_REALLOC: return s->progs.realloc_enter;
	case HEAP_FN_REALLOCARRAY: return s->progs.reallocarray_enter;
	case HEAP_FN_POSIX_MEMALIGN: return s->progs.posix_memalign_enter;
	case HEAP_FN_ALIGNED_ALLOC: return s->progs.aligned_alloc_enter;
	case HEAP_FN_MEMALIGN: return s->progs.memalign_enter;
	case HEAP_FN_VALLOC: return s->progs.valloc_enter;
	case HEAP_FN_PVALLOC: return s->progs.pvalloc_enter;
	default: return s->progs.free_enter;
	}
}

/* With the function's file offset known (decoded once at open), an attach
 * needs no symbol lookup: cheap enough to do for every child at its fork. */
static int attach_one(struct probe_heap *p, struct heap_pid *hp, struct bpf_program *prog,
		      int fn, const char *sym, long offset, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = ret);
	struct bpf_link *link;
	size_t where = (size_t)offset;

	if (hp->n_links >= HEAP_MAX_LINKS)
		return -ENOSPC;
	if (p->sym_offsets[fn] >= 0)
		where += (size_t)p->sym_offsets[fn];
	else
		uo.func_name = sym;
	link = bpf_program__attach_uprobe_opts(prog, hp->pid, p->libc, where, &uo);
	if (!link)
		return -errno;
	hp->links[hp->n_links++] = link;
	return 0;
}

int probe_heap__attach(struct probe_heap *p, pid_t pid)
{
	struct heap_pid *hp;
	int err = 0, attached = 0;

	if (p->n_pids >= HEAP_MAX_PIDS)
		return -ENOSPC;
	if (!p->pids) {
		p->pids = calloc(HEAP_MAX_PIDS, sizeof(*p->pids));
		if (!p->pids)
			return -ENOMEM;
	}
	hp = &p->pids[p->n_pids++];
	memset(hp, 0, sizeof(*hp));
	hp->pid = pid;
	for (size_t i = 0; i < ARRAY_SIZE(heap_fns); i++) {
		int fn = heap_fns[i].fn, e;

		e = attach_one(p, hp, entry_prog(p, fn), fn, heap_fns[i].sym, p->offsets[fn], false);
		if (!e && fn != HEAP_FN_FREE)
			e = attach_one(p, hp, p->skel->progs.alloc_return, fn, heap_fns[i].sym, 0, true);
		if (e) {
			/* A C library without one of the rarer entry points
			 * is fine; without malloc or free it is not. */
			log_warn("%s: pid %d: %s: %s", __func__, (int)pid, heap_fns[i].sym,
				 strerror(-e));
			if (fn == HEAP_FN_MALLOC || fn == HEAP_FN_FREE)
				err = e;
			continue;
		}
		attached++;
	}
	log_debug("%s: pid %d: %d allocator probes attached", __func__, (int)pid, attached);
	return err;
}

int probe_heap__add_child(struct probe_heap *p, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.partial, &key, sizeof(key), &one, sizeof(one),
				 BPF_ANY) < 0)
		return -errno;
	return probe_heap__attach(p, pid);
}

void probe_heap__detach(struct probe_heap *p, pid_t pid)
{
	__u32 key = (__u32)pid;

	for (size_t i = 0; i < p->n_pids; i++) {
		struct heap_pid *hp = &p->pids[i];

		if (hp->pid != pid)
			continue;
		for (int k = 0; k < hp->n_links; k++)
			bpf_link__destroy(hp->links[k]);
		p->pids[i] = p->pids[--p->n_pids];
		bpf_map__delete_elem(p->skel->maps.partial, &key, sizeof(key), 0);
		return;
	}
}

int probe_heap__drain(struct probe_heap *p)
{
	return p ? probe_ring_drain(&p->ring) : 0;
}

void probe_heap__counters(const struct probe_heap *p, unsigned long long out[HEAP_C__MAX])
{
	for (__u32 k = 0; k < HEAP_C__MAX; k++)
		out[k] = p ? probe_percpu_sum(p->skel->maps.counters, k) : 0;
}

int probe_heap__sites(struct probe_heap *p, probe_heap_site_cb cb, void *arg)
{
	__u64 key, next;
	struct heap_site site;
	int fd = bpf_map__fd(p->skel->maps.sites);
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (bpf_map_lookup_elem(fd, &next, &site) == 0 && site.blocks > 0)
			cb(&site, site.stack_id, arg);
		key = next;
		prev = &key;
	}
	return 0;
}

int probe_heap__stack(struct probe_heap *p, __s32 stack_id, __u64 *ips, int max)
{
	__u64 frames[HEAP_STACK_DEPTH] = {0};
	__u32 id = (__u32)stack_id;
	int n = 0;

	if (stack_id < 0 || bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.stacks), &id, frames))
		return 0;
	while (n < max && n < HEAP_STACK_DEPTH && frames[n]) {
		ips[n] = frames[n];
		n++;
	}
	return n;
}

/* --- where a bad pointer came from ------------------------------------------------ */

#define HEAP_SOURCE_BATCH 4096
#define HEAP_SOURCE_MAX_BLOCK (64u * 1024)	/* bytes scanned per freed block */

/* Does @tgid's memory at [addr, addr + size) hold the word @value? Its
 * offset, or -1 (also when the memory is gone: a freed mapping). */
static long block_holds(pid_t tgid, __u64 addr, __u64 size, __u64 value, __u64 *buf)
{
	struct iovec local = {.iov_base = buf, .iov_len = (size_t)size};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)size};
	ssize_t got = process_vm_readv(tgid, &local, 1, &remote, 1, 0);
	long found = -1;

	for (ssize_t i = 0; got > 0 && found < 0 && i < got / 8; i++)
		if (buf[i] == value)
			found = (long)i * 8;
	return found;
}

int probe_heap__pointer_source(struct probe_heap *p, pid_t tgid, __u64 value,
			       struct heap_source *out)
{
	int fd = bpf_map__fd(p->skel->maps.recent);
	struct heap_key *keys = calloc(HEAP_SOURCE_BATCH, sizeof(*keys)), k;
	struct heap_freed *vals = calloc(HEAP_SOURCE_BATCH, sizeof(*vals));
	__u64 *buf = malloc(HEAP_SOURCE_MAX_BLOCK), batch = 0;
	bool first = true, more = true, found = false;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!keys || !vals || !buf) {
		err = -ENOMEM;
		goto out;
	}
	while (more) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 n = HEAP_SOURCE_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, vals, &n, &bo)) {
			if (errno != ENOENT) {
				err = -errno;
				goto out;
			}
			more = false;
		}
		first = false;
		for (__u32 i = 0; i < n; i++) {
			__u64 size = vals[i].size;
			long off;

			if (keys[i].tgid != (__u32)tgid || size < 8)
				continue;
			if (size > HEAP_SOURCE_MAX_BLOCK)
				size = HEAP_SOURCE_MAX_BLOCK;
			off = block_holds(tgid, keys[i].addr, size, value, buf);
			if (off < 0)
				continue;
			if (found && vals[i].ts_ns <= out->freed.ts_ns) {
				out->others++;
				continue;
			}
			if (found)
				out->others++;
			found = true;
			out->block = keys[i].addr;
			out->offset = (__u64)off;
			out->freed = vals[i];
		}
	}
	if (!found) {
		err = -ENOENT;
		goto out;
	}
	k = (struct heap_key){.tgid = (__u32)tgid, .addr = out->block};
	out->reused = bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.live), &k, &out->now) == 0;
out:
	free(buf);
	free(vals);
	free(keys);
	return err;
}

const char *probe_heap__placement(const struct probe_heap *p)
{
	return p->placement;
}

int probe_heap__live_fd(const struct probe_heap *p)
{
	return bpf_map__fd(p->skel->maps.live);
}

void probe_heap__destroy(struct probe_heap *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_pids; i++)
		for (int k = 0; k < p->pids[i].n_links; k++)
			bpf_link__destroy(p->pids[i].links[k]);
	free(p->pids);
	probe_ring_close(&p->ring);
	heap_bpf__destroy(p->skel);
	free(p);
}
