#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "log.h"
#include "sym.h"
#include "util.h"

#define SYM_MAX_PROCS 64	/* snapshots kept; the oldest goes first */
#define SYM_MAPS_MAX (4u << 20)

struct sym_proc {
	pid_t pid;
	char *maps;		/* /proc/PID/maps text */
	size_t len;
	Dwfl *dwfl;		/* built from maps on first use */
	uint64_t used;
};

struct sym {
	struct sym_proc procs[SYM_MAX_PROCS];
	uint64_t tick;
};

static const Dwfl_Callbacks sym_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

struct sym *sym__new(void)
{
	return calloc(1, sizeof(struct sym));
}

static void proc_clear(struct sym_proc *p)
{
	if (p->dwfl)
		dwfl_end(p->dwfl);
	free(p->maps);
	memset(p, 0, sizeof(*p));
}

static struct sym_proc *proc_find(struct sym *s, pid_t pid)
{
	for (int i = 0; s && i < SYM_MAX_PROCS; i++)
		if (s->procs[i].pid == pid && s->procs[i].maps)
			return &s->procs[i];
	return NULL;
}

/* Keep @text (owned) as @pid's maps: a slot of its own, the least
 * recently used one, unless the same maps are kept already. */
static void keep(struct sym *s, pid_t pid, char *text, size_t len)
{
	struct sym_proc *slot = proc_find(s, pid);

	if (slot && slot->len == len && !memcmp(slot->maps, text, len)) {
		/* Nothing mapped or unmapped since: keep the parsed modules
		 * (every cycle end snapshots, and most cycles change nothing). */
		free(text);
		slot->used = ++s->tick;
		return;
	}
	if (!slot) {
		slot = &s->procs[0];
		for (int i = 1; i < SYM_MAX_PROCS; i++)
			if (s->procs[i].used < slot->used)
				slot = &s->procs[i];
	}
	proc_clear(slot);
	slot->pid = pid;
	slot->maps = text;
	slot->len = len;
	slot->used = ++s->tick;
}

int sym__snapshot(struct sym *s, pid_t pid)
{
	char path[64], *text = NULL;
	size_t len = 0;
	int err;

	if (!s)
		return -EINVAL;	/* a finished run names nothing more */
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	err = util_read_file(path, SYM_MAPS_MAX, &text, &len);
	if (err)
		return err == -ENOENT ? -ESRCH : err;
	if (len == 0) {		/* a zombie: keep what we had */
		free(text);
		return -ESRCH;
	}
	keep(s, pid, text, len);
	return 0;
}

int sym__maps(struct sym *s, pid_t pid, char **text, size_t *len)
{
	struct sym_proc *p = proc_find(s, pid);

	*text = NULL;
	*len = 0;
	if (!p)
		return -ESRCH;
	*text = malloc(p->len);
	if (!*text)
		return -ENOMEM;
	memcpy(*text, p->maps, p->len);
	*len = p->len;
	return 0;
}

int sym__adopt(struct sym *s, pid_t pid, char *text, size_t len)
{
	if (!s || !text || !len) {
		free(text);
		if (s)
			sym__forget(s, pid);
		return s ? -ESRCH : -EINVAL;
	}
	keep(s, pid, text, len);
	return 0;
}

static Dwfl *proc_dwfl(struct sym_proc *p)
{
	FILE *f;

	if (p->dwfl)
		return p->dwfl;
	p->dwfl = dwfl_begin(&sym_callbacks);
	if (!p->dwfl)
		return NULL;
	f = fmemopen(p->maps, p->len, "r");
	if (!f) {
		dwfl_end(p->dwfl);
		p->dwfl = NULL;
		return NULL;
	}
	dwfl_report_begin(p->dwfl);
	if (dwfl_linux_proc_maps_report(p->dwfl, f) != 0)
		log_debug("%s: pid %d: %s", __func__, (int)p->pid, dwfl_errmsg(-1));
	dwfl_report_end(p->dwfl, NULL, NULL);
	fclose(f);
	return p->dwfl;
}

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

/* The functions inlined at @look, innermost first, as addr2line -i names
 * them: "helper (f.c:12) inlined in mid (f.c:20) inlined in " with each
 * one's own line, ending where the caller's name follows. @line and @file
 * are the address's own line on entry; on return, the line in the
 * outermost function (the call site of the outermost inlined one). */
static void inline_chain(Dwfl_Module *m, Dwarf_Addr look, char *out, size_t len,
			 const char **file, int *line)
{
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(m, look, &bias), *scopes = NULL;
	Dwarf_Files *files = NULL;
	size_t used = 0, nfiles = 0;
	int n;

	out[0] = '\0';
	if (!cu)
		return;
	n = dwarf_getscopes(cu, look - bias, &scopes);
	if (n > 0 && dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
		files = NULL;
	for (int i = 0; i < n && used < len; i++) {
		Dwarf_Attribute attr;
		Dwarf_Word call_line = 0, call_file = 0;
		const char *name;

		if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
			continue;
		name = dwarf_formstring(dwarf_attr_integrate(&scopes[i], DW_AT_name, &attr));
		used += (size_t)snprintf(out + used, len - used, "%s (%s:%d) inlined in ",
					 name ? name : "??", *file ? base_name(*file) : "?", *line);
		/* The next function out is at this one's call site. */
		dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &call_line);
		dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &call_file);
		*line = (int)call_line;
		if (files && call_file < nfiles)
			*file = dwarf_filesrc(files, call_file, NULL, NULL);
	}
	if (used >= len)
		out[len - 1] = '\0';
	free(scopes);
}

static json_t *name_one(Dwfl *dwfl, uint64_t ip, bool is_return)
{
	Dwarf_Addr look = is_return && ip ? ip - 1 : ip;
	const char *func = NULL, *mod = NULL, *file = NULL;
	Dwfl_Module *m = dwfl ? dwfl_addrmodule(dwfl, look) : NULL;
	GElf_Off off = 0;
	GElf_Sym gsym;
	int line = 0;
	char buf[1024], inl[512] = "";

	if (m) {
		Dwfl_Line *l;

		func = dwfl_module_addrinfo(m, look, &off, &gsym, NULL, NULL, NULL);
		mod = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
		l = dwfl_module_getsrc(m, look);
		if (l)
			file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
		if (file)
			inline_chain(m, look, inl, sizeof(inl), &file, &line);
	}
	if (mod && strrchr(mod, '/'))
		mod = strrchr(mod, '/') + 1;
	if (file && strrchr(file, '/'))
		file = strrchr(file, '/') + 1;
	if (func && file)
		snprintf(buf, sizeof(buf), "%s%s+0x%" PRIx64 " (%s:%d) [%s]", inl, func,
			 (uint64_t)off + (is_return ? 1 : 0), file, line, mod ? mod : "?");
	else if (func)
		snprintf(buf, sizeof(buf), "%s+0x%" PRIx64 " [%s]", func,
			 (uint64_t)off + (is_return ? 1 : 0), mod ? mod : "?");
	else
		snprintf(buf, sizeof(buf), "0x%" PRIx64 "%s%s%s", ip, mod ? " [" : "",
			 mod ? mod : "", mod ? "]" : "");
	return json_string(buf);
}

json_t *sym__frames(struct sym *s, pid_t pid, const uint64_t *ips, int n, bool first_is_ip)
{
	struct sym_proc *p = proc_find(s, pid);
	Dwfl *dwfl = p ? proc_dwfl(p) : NULL;
	json_t *arr = json_array();

	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, name_one(dwfl, ips[i], !(i == 0 && first_is_ip)));
	return arr;
}

json_t *sym__frame(struct sym *s, pid_t pid, uint64_t ip, bool is_return)
{
	struct sym_proc *p = proc_find(s, pid);

	return name_one(p ? proc_dwfl(p) : NULL, ip, is_return);
}

void sym__forget(struct sym *s, pid_t pid)
{
	struct sym_proc *p = proc_find(s, pid);

	if (p)
		proc_clear(p);
}

void sym__free(struct sym *s)
{
	if (!s)
		return;
	for (int i = 0; i < SYM_MAX_PROCS; i++)
		proc_clear(&s->procs[i]);
	free(s);
}
