/* Which allocator serves a program's malloc, found the way the dynamic
 * linker would: LD_PRELOAD, the program, then its DT_NEEDED libraries
 * breadth first, the first object defining malloc wins. Its entry points
 * (and those of a prefixed jemalloc linked into the program, as redis-server
 * has) become the heap probe's targets. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "log.h"
#include "probe_alloc.h"
#include "heap.h"
#include "util.h"

#define ALLOC_MAX_OBJS 128	/* objects of one program followed */
#define ALLOC_DECODE_BYTES 32

/* --- probe placement ---------------------------------------------------------- */

int probe_alloc_offset(const unsigned char *code, size_t len, bool allow_skip,
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

static const char *const default_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	"/usr/local/lib",
};

/* The entry points, by the program that reads their arguments. "movable":
 * the entry probe may step past a leading null check (frees only). */
struct alloc_entry {
	const char *sym;
	unsigned fn;
	bool movable;
};

/* What malloc's own family offers, in every allocator. */
static const struct alloc_entry std_entries[] = {
	{"malloc", HEAP_FN_MALLOC, false}, {"calloc", HEAP_FN_CALLOC, false},
	{"realloc", HEAP_FN_REALLOC, false}, {"reallocarray", HEAP_FN_REALLOCARRAY, false},
	{"posix_memalign", HEAP_FN_POSIX_MEMALIGN, false},
	{"aligned_alloc", HEAP_FN_ALIGNED_ALLOC, false}, {"memalign", HEAP_FN_MEMALIGN, false},
	{"valloc", HEAP_FN_VALLOC, false}, {"pvalloc", HEAP_FN_PVALLOC, false},
	{"free", HEAP_FN_FREE, true}, {"cfree", HEAP_FN_FREE, true},
	{"free_sized", HEAP_FN_FREE, true}, {"free_aligned_sized", HEAP_FN_FREE, true},
};

/* jemalloc's own API: the size or the pointer is the first argument, as in
 * malloc/realloc/free. */
static const struct alloc_entry je_entries[] = {
	{"mallocx", HEAP_FN_MALLOC, false}, {"rallocx", HEAP_FN_REALLOC, false},
	{"dallocx", HEAP_FN_FREE, true}, {"sdallocx", HEAP_FN_FREE, true},
};

/* C++ operator new/delete, probed where the allocator defines them itself
 * (libstdc++'s route through malloc, which is probed already). The size or
 * pointer is the first argument of each. */
static const struct alloc_entry cxx_entries[] = {
	{"_Znwm", HEAP_FN_MALLOC, false}, {"_Znam", HEAP_FN_MALLOC, false},
	{"_ZnwmRKSt9nothrow_t", HEAP_FN_MALLOC, false},
	{"_ZnamRKSt9nothrow_t", HEAP_FN_MALLOC, false},
	{"_ZnwmSt11align_val_t", HEAP_FN_MALLOC, false},
	{"_ZnamSt11align_val_t", HEAP_FN_MALLOC, false},
	{"_ZnwmSt11align_val_tRKSt9nothrow_t", HEAP_FN_MALLOC, false},
	{"_ZnamSt11align_val_tRKSt9nothrow_t", HEAP_FN_MALLOC, false},
	{"_ZdlPv", HEAP_FN_FREE, true}, {"_ZdaPv", HEAP_FN_FREE, true},
	{"_ZdlPvm", HEAP_FN_FREE, true}, {"_ZdaPvm", HEAP_FN_FREE, true},
	{"_ZdlPvSt11align_val_t", HEAP_FN_FREE, true},
	{"_ZdaPvSt11align_val_t", HEAP_FN_FREE, true},
	{"_ZdlPvmSt11align_val_t", HEAP_FN_FREE, true},
	{"_ZdaPvmSt11align_val_t", HEAP_FN_FREE, true},
	{"_ZdlPvRKSt9nothrow_t", HEAP_FN_FREE, true},
	{"_ZdaPvRKSt9nothrow_t", HEAP_FN_FREE, true},
};

/* --- one ELF file ------------------------------------------------------------------ */

struct elf_obj {
	char path[ALLOC_PATH_MAX];
	int fd;
	Elf *elf;
	bool is_exe;
};

static int obj_open(struct elf_obj *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->path, sizeof(o->path), "%s", path);
	elf_version(EV_CURRENT);
	o->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (o->fd < 0)
		return -errno;
	o->elf = elf_begin(o->fd, ELF_C_READ, NULL);
	if (!o->elf || elf_kind(o->elf) != ELF_K_ELF) {
		if (o->elf)
			elf_end(o->elf);
		close(o->fd);
		o->fd = -1;
		o->elf = NULL;
		return -ENOEXEC;
	}
	return 0;
}

static void obj_close(struct elf_obj *o)
{
	if (o->elf)
		elf_end(o->elf);
	if (o->fd >= 0)
		close(o->fd);
	o->elf = NULL;
	o->fd = -1;
}

/* A virtual address of @o to its file offset, through its load segment. */
static long vaddr_to_off(Elf *elf, GElf_Addr v)
{
	size_t nph = 0;

	elf_getphdrnum(elf, &nph);
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    v >= ph.p_vaddr && v < ph.p_vaddr + ph.p_filesz)
			return (long)(v - ph.p_vaddr + ph.p_offset);
	}
	return -1;
}

/* The file offset of the function @sym that @o defines, in its dynamic
 * symbols (@dyn_only) or also its full table. -1 if none. */
static long obj_sym(const struct elf_obj *o, const char *sym, bool dyn_only)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while (o->elf && (scn = elf_nextscn(o->elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize ||
		    (sh.sh_type != SHT_DYNSYM && (dyn_only || sh.sh_type != SHT_SYMTAB)))
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    !s.st_value || s.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(o->elf, sh.sh_link, s.st_name);
			if (name && !strcmp(name, sym))
				return vaddr_to_off(o->elf, s.st_value);
		}
	}
	return -1;
}

long alloc_sym_offset(const char *path, const char *sym)
{
	struct elf_obj o;
	long off;
	int err = obj_open(&o, path);

	if (err)
		return err;
	off = obj_sym(&o, sym, false);
	obj_close(&o);
	return off < 0 ? -ENOENT : off;
}

/* A program with an interpreter loads shared objects; one without is static. */
static bool obj_dynamic(const struct elf_obj *o)
{
	size_t nph = 0;

	elf_getphdrnum(o->elf, &nph);
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(o->elf, (int)i, &ph) && ph.p_type == PT_DYNAMIC)
			return true;
	}
	return false;
}

/* Its DT_NEEDED names and run path, through @cb. */
static void obj_needed(const struct elf_obj *o, void (*cb)(const char *name, bool is_path,
							  void *arg), void *arg)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(o->elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		/* Run paths first: the names are resolved against them. */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
				GElf_Dyn d;
				const char *s;

				if (!gelf_getdyn(data, (int)i, &d))
					continue;
				if (pass == 0 && d.d_tag != DT_RUNPATH && d.d_tag != DT_RPATH)
					continue;
				if (pass == 1 && d.d_tag != DT_NEEDED)
					continue;
				s = elf_strptr(o->elf, sh.sh_link, d.d_un.d_val);
				if (s)
					cb(s, pass == 0, arg);
			}
	}
}

/* --- the program's objects, in the dynamic linker's order ------------------------- */

struct walk {
	struct elf_obj objs[ALLOC_MAX_OBJS];
	size_t n;
	char runpath[1024];		/* of the object being read */
	char origin[ALLOC_PATH_MAX];
	const char *ld_library_path;
};

static bool already(const struct walk *w, const char *path)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->objs[i].path, path))
			return true;
	return false;
}

static void add_obj(struct walk *w, const char *path)
{
	char real[ALLOC_PATH_MAX];

	if (!realpath(path, real) || already(w, real) || w->n >= ALLOC_MAX_OBJS)
		return;
	if (obj_open(&w->objs[w->n], real) == 0)
		w->n++;
}

/* Look @name up in the ':'-separated @dirs; $ORIGIN is @origin. */
static bool find_in(const char *dirs, const char *name, const char *origin, char *out,
		    size_t len)
{
	while (dirs && *dirs) {
		size_t n = strcspn(dirs, ":");
		char dir[ALLOC_PATH_MAX];

		int got;

		snprintf(dir, sizeof(dir), "%.*s", (int)n, dirs);
		if (!strncmp(dir, "$ORIGIN", 7))
			got = snprintf(out, len, "%s%s/%s", origin, dir + 7, name);
		else
			got = snprintf(out, len, "%s/%s", dir, name);
		if (n && got > 0 && (size_t)got < len && access(out, R_OK) == 0)
			return true;
		dirs += n + (dirs[n] == ':');
	}
	return false;
}

static void on_needed(const char *name, bool is_path, void *arg)
{
	struct walk *w = arg;
	char path[ALLOC_PATH_MAX];

	if (is_path) {
		snprintf(w->runpath, sizeof(w->runpath), "%s", name);
		return;
	}
	if (strchr(name, '/')) {
		add_obj(w, name);
		return;
	}
	if (find_in(w->runpath, name, w->origin, path, sizeof(path)) ||
	    find_in(w->ld_library_path, name, w->origin, path, sizeof(path))) {
		add_obj(w, path);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(default_dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", default_dirs[i], name);
		if (access(path, R_OK) == 0) {
			add_obj(w, path);
			return;
		}
	}
	log_debug("%s: %s not found", __func__, name);
}

static const char *env_get(const char *const *env, const char *key)
{
	size_t len = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], key, len) && env[i][len] == '=')
			return env[i] + len + 1;
	return getenv(key);
}

static void walk_program(struct walk *w, const char *exe, const char *const *env)
{
	const char *preload = env_get(env, "LD_PRELOAD");
	size_t n_pre = 0;

	w->ld_library_path = env_get(env, "LD_LIBRARY_PATH");
	/* LD_PRELOAD: names or paths, separated by spaces or colons. */
	while (preload && *preload) {
		size_t n = strcspn(preload, ": ");
		char name[ALLOC_PATH_MAX];

		snprintf(name, sizeof(name), "%.*s", (int)n, preload);
		if (n) {
			w->runpath[0] = '\0';
			on_needed(name, false, w);
		}
		preload += n + (preload[n] != '\0');
	}
	n_pre = w->n;
	add_obj(w, exe);
	if (w->n > n_pre)
		w->objs[n_pre].is_exe = true;
	/* Breadth first, as the dynamic linker searches for symbols. */
	for (size_t i = 0; i < w->n; i++) {
		char *slash;

		if (!obj_dynamic(&w->objs[i]))
			continue;
		w->runpath[0] = '\0';
		snprintf(w->origin, sizeof(w->origin), "%s", w->objs[i].path);
		slash = strrchr(w->origin, '/');
		if (slash)
			*slash = '\0';
		obj_needed(&w->objs[i], on_needed, w);
	}
}

/* --- classification ----------------------------------------------------------------- */

struct has_ctx {
	const struct elf_obj *o;
	bool dyn_only;
};

static bool has_sym(const char *sym, void *arg)
{
	const struct has_ctx *h = arg;

	return obj_sym(h->o, sym, h->dyn_only) >= 0;
}

const char *alloc_classify(bool (*has)(const char *sym, void *arg), void *arg,
			   const char **prefix)
{
	*prefix = "";
	if (has("mallocx", arg) && has("sdallocx", arg))
		return "jemalloc";
	if (has("je_mallocx", arg) || has("je_malloc", arg)) {
		*prefix = "je_";
		return "jemalloc";
	}
	if (has("tc_malloc", arg))
		return "tcmalloc";
	if (has("mi_malloc", arg))
		return "mimalloc";
	if (has("__libc_malloc", arg))
		return "glibc";
	return NULL;
}

/* --- the plan ------------------------------------------------------------------------ */

static void add_target(struct alloc_plan *plan, const struct elf_obj *o, const char *sym,
		       unsigned fn, bool movable, bool dyn_only)
{
	unsigned char code[ALLOC_DECODE_BYTES];
	struct alloc_target *t;
	char why[96];
	long off = obj_sym(o, sym, dyn_only);
	size_t used = strlen(plan->placement);

	if (off < 0 || plan->n >= ALLOC_MAX_TARGETS)
		return;
	/* Aliases (tcmalloc's free and tc_free, mimalloc's operator delete
	 * and free) are one function: probed twice, every call would count
	 * twice and every free would look like a double free. */
	for (size_t i = 0; i < plan->n; i++)
		if (plan->t[i].sym_off == off && !strcmp(plan->t[i].path, o->path))
			return;
	t = &plan->t[plan->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->path, sizeof(t->path), "%s", o->path);
	snprintf(t->sym, sizeof(t->sym), "%s", sym);
	t->fn = fn;
	t->sym_off = off;
	if (pread(o->fd, code, sizeof(code), off) == (ssize_t)sizeof(code))
		t->probe_off = probe_alloc_offset(code, sizeof(code), movable, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "+0 (bytes unreadable)");
	snprintf(plan->placement + used, sizeof(plan->placement) - used, "%s%s%s",
		 used ? ", " : "", sym, why);
}

static void add_entries(struct alloc_plan *plan, const struct elf_obj *o,
			const struct alloc_entry *e, size_t n, const char *prefix, bool dyn_only)
{
	for (size_t i = 0; i < n; i++) {
		char sym[ALLOC_SYM_MAX];

		snprintf(sym, sizeof(sym), "%s%s", prefix, e[i].sym);
		add_target(plan, o, sym, e[i].fn, e[i].movable, dyn_only);
	}
}

/* Every entry point of the allocator @kind in @o. */
static void add_allocator(struct alloc_plan *plan, const struct elf_obj *o, const char *kind,
			  const char *prefix, bool dyn_only)
{
	add_entries(plan, o, std_entries, ARRAY_SIZE(std_entries), prefix, dyn_only);
	if (!strcmp(kind, "jemalloc"))
		add_entries(plan, o, je_entries, ARRAY_SIZE(je_entries), prefix, dyn_only);
	if (strcmp(kind, "glibc") && !*prefix)
		add_entries(plan, o, cxx_entries, ARRAY_SIZE(cxx_entries), "", dyn_only);
}

static void add_user(struct alloc_plan *plan, struct walk *w, const struct sc_allocator *u)
{
	const char *sym = u->alloc ? u->alloc : u->free;
	struct alloc_target *t;
	size_t before = plan->n;

	for (size_t i = 0; i < w->n; i++) {
		const char *base = strrchr(w->objs[i].path, '/');

		base = base ? base + 1 : w->objs[i].path;
		if (u->lib ? (strcmp(w->objs[i].path, u->lib) && strncmp(base, u->lib,
								      strlen(u->lib)))
			   : !w->objs[i].is_exe)
			continue;
		add_target(plan, &w->objs[i], sym, u->alloc ? HEAP_FN_USER_ALLOC
							    : HEAP_FN_USER_FREE, false, false);
		break;
	}
	if (plan->n == before) {
		log_warn("%s: no function %s in %s", __func__, sym, u->lib ? u->lib : "the program");
		return;
	}
	t = &plan->t[plan->n - 1];
	t->user = true;
	t->size_arg = (unsigned)u->size_arg;
	t->ptr_arg = (unsigned)u->ptr_arg;
}

int alloc_plan_for(const char *exe, const char *const *env, const struct sc_allocator *user,
		   size_t n_user, struct alloc_plan *plan)
{
	struct walk *w = calloc(1, sizeof(*w));
	const struct elf_obj *definer = NULL, *prog = NULL;
	const char *kind = NULL, *prefix = "";
	int err = 0;

	memset(plan, 0, sizeof(*plan));
	snprintf(plan->allocator, sizeof(plan->allocator), "unknown");
	if (!w)
		return -ENOMEM;
	walk_program(w, exe, env);
	for (size_t i = 0; i < w->n && !prog; i++)
		if (w->objs[i].is_exe)
			prog = &w->objs[i];
	if (!prog) {
		err = -ENOENT;
		snprintf(plan->why, sizeof(plan->why), "%s: not a readable ELF program", exe);
		goto out;
	}
	/* The first object in search order whose dynamic symbols define
	 * malloc serves it; a static program has only its own table. */
	for (size_t i = 0; i < w->n && !definer; i++) {
		bool dyn_only = !(w->objs[i].is_exe && !obj_dynamic(&w->objs[i]));

		if (obj_sym(&w->objs[i], "malloc", dyn_only) >= 0)
			definer = &w->objs[i];
		if (obj_sym(&w->objs[i], "__libc_malloc", true) >= 0 && !plan->libc[0])
			snprintf(plan->libc, sizeof(plan->libc), "%s", w->objs[i].path);
	}
	if (!definer) {
		snprintf(plan->why, sizeof(plan->why), "no object of %s defines malloc (a static "
			 "program without symbols?): its allocator is unknown", exe);
	} else {
		/* A program's own functions are probed by file offset: its
		 * full table will do; a library's are its exported ones. */
		bool dyn_only = !definer->is_exe;
		struct has_ctx h = {definer, false};

		kind = alloc_classify(has_sym, &h, &prefix);
		snprintf(plan->served_by, sizeof(plan->served_by), "%s", definer->path);
		if (!kind || *prefix) {
			snprintf(plan->why, sizeof(plan->why), "malloc comes from %s, an allocator "
				 "faultd does not know; name its functions in the workload's "
				 "\"allocators\"", definer->path);
		} else {
			plan->known = true;
			snprintf(plan->allocator, sizeof(plan->allocator), "%s", kind);
			snprintf(plan->why, sizeof(plan->why), "malloc comes from %s%s",
				 definer->path, definer->is_exe ? " (linked into the program)" : "");
			add_allocator(plan, definer, kind, "", dyn_only);
		}
	}
	/* A jemalloc built with a prefix and linked in (redis-server): the
	 * program's own heap, beside the C library's malloc. */
	if (prog != definer) {
		struct has_ctx h = {prog, false};
		const char *k = alloc_classify(has_sym, &h, &prefix);

		if (k && *prefix) {
			size_t len = strlen(plan->allocator);

			add_allocator(plan, prog, k, prefix, false);
			snprintf(plan->allocator + len, sizeof(plan->allocator) - len, "+%s(%s)", k,
				 prefix);
			len = strlen(plan->why);
			snprintf(plan->why + len, sizeof(plan->why) - len,
				 "; %s has %s with the %s prefix linked in", prog->path, k, prefix);
		}
	}
	for (size_t i = 0; i < n_user; i++)
		add_user(plan, w, &user[i]);
	log_info("%s: %s: %s (%s); %zu entry points: %s", __func__, exe, plan->allocator,
		 plan->why, plan->n, plan->placement);
out:
	for (size_t i = 0; i < w->n; i++)
		obj_close(&w->objs[i]);
	free(w);
	return err;
}

json_t *alloc_plan_json(const struct alloc_plan *plan, const char *exe)
{
	json_t *eps = json_array();
	json_t *j;

	for (size_t i = 0; eps && i < plan->n; i++) {
		const char *base = strrchr(plan->t[i].path, '/');
		char buf[ALLOC_SYM_MAX + ALLOC_PATH_MAX + 4];

		snprintf(buf, sizeof(buf), "%s [%s]", plan->t[i].sym,
			 base ? base + 1 : plan->t[i].path);
		json_array_append_new(eps, json_string(buf));
	}
	j = json_pack("{sssssssbsssO}", "exe", exe, "allocator", plan->allocator,
		      "served_by", plan->served_by, "known", plan->known, "why", plan->why,
		      "entry_points", eps);
	json_decref(eps);
	return j;
}
