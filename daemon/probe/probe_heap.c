/* User side of bpf/heap.bpf.c: attach to the entry points of the allocator
 * each program really uses (probe_alloc.c finds it), pick probe offsets from
 * the library's own bytes, attach by pid, consume bad-free events (looked
 * into off the loop by probe_heap_bad.c), read counters and sites. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe_alloc.h"
#include "probe_exit.h"
#include "probe_heap_priv.h"
#include "probe_util.h"
#include "util.h"

/* The plan for @exe with @preload (LD_PRELOAD's value, or NULL), made once
 * per distinct program. Its index, or -errno. */
static int plan_index(struct probe_heap *p, const char *exe, const char *const *env)
{
	const char *preload = NULL;
	struct heap_plan *hp;
	char key[sizeof(hp->key)];
	int err;

	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], "LD_PRELOAD=", 11))
			preload = env[i] + 11;
	snprintf(key, sizeof(key), "%s\n%s", exe, preload ? preload : "");
	for (size_t i = 0; i < p->n_plans; i++)
		if (!strcmp(p->plans[i].key, key))
			return (int)i;
	if (p->n_plans >= HEAP_MAX_PLANS)
		return -ENOSPC;
	hp = &p->plans[p->n_plans];
	memset(hp, 0, sizeof(*hp));
	snprintf(hp->key, sizeof(hp->key), "%s", key);
	snprintf(hp->exe, sizeof(hp->exe), "%s", exe);
	err = alloc_plan_for(exe, env, p->user, p->n_user, &hp->plan);
	if (err)
		log_warn("%s: %s: %s", __func__, exe, hp->plan.why);
	return (int)p->n_plans++;
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
	heap_bad_free(p, &ev);
	return 0;
}

PROBE_SKEL_OPS_DEFINE(heap);

static const struct probe_prog_cap heap_progs[] = {
	{"malloc_enter", CAPS_HEAP}, {"calloc_enter", CAPS_HEAP},
	{"realloc_enter", CAPS_HEAP}, {"reallocarray_enter", CAPS_HEAP},
	{"posix_memalign_enter", CAPS_HEAP}, {"aligned_alloc_enter", CAPS_HEAP},
	{"memalign_enter", CAPS_HEAP}, {"valloc_enter", CAPS_HEAP},
	{"pvalloc_enter", CAPS_HEAP}, {"alloc_return", CAPS_HEAP},
	{"free_enter", CAPS_HEAP}, {"user_alloc_enter", CAPS_HEAP},
	{"user_free_enter", CAPS_HEAP}, {"user_alloc_return", CAPS_HEAP},
};

struct heap_prep {
	struct probe_heap *p;
	const struct probe_heap_opts *opts;
};

/* The options and the C library's identity reach the programs as rodata. */
static int heap_prepare(void *skel, void *arg)
{
	const struct heap_prep *prep = arg;
	const char *libc = prep->p->plans[0].plan.libc;
	const char *buckets = getenv("FAULTD_HEAP_STACK_BUCKETS");
	struct heap_bpf *s = skel;
	struct stat st;

	s->rodata->capture_stacks = prep->opts->stacks;
	s->rodata->remember_frees = prep->opts->remember_frees;
	s->rodata->trap_only = prep->opts->trap_only;
	s->rodata->stop_on_bad_free = prep->opts->stop_on_bad_free;
	/* Tests: a stack map this small makes its buckets collide in every
	 * run, so the spill map (HEAP_SPILL_STACKS) is seen to catch them.
	 * Never larger: ids from HEAP_MAX_SITES on are the spill map's. */
	if (buckets && atoi(buckets) > 0 && atoi(buckets) <= HEAP_MAX_SITES)
		bpf_map__set_max_entries(s->maps.stacks, (__u32)atoi(buckets));
	for (size_t i = 0; prep->p->multi && i < ARRAY_SIZE(heap_progs); i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(s->obj,
									    heap_progs[i].prog);

		if (prog)
			bpf_program__set_expected_attach_type(prog, PROBE_ATTACH_UPROBE_MULTI);
	}
	if (libc[0] && stat(libc, &st) == 0) {
		s->rodata->libc_ino = st.st_ino;
		/* The kernel's s_dev encoding (MKDEV: major << 20 | minor). */
		s->rodata->libc_dev = (__u32)((major(st.st_dev) << 20) | minor(st.st_dev));
	}
	return 0;
}

static void on_attached(struct probe_attach_job *j, void *arg);
static void on_attach_dropped(struct probe_attach_job *j, void *arg);

struct probe_heap *probe_heap__open(struct event_base *base,
				    const struct probe_heap_opts *opts,
				    probe_heap_cb cb, void *arg)
{
	struct heap_prep prep;
	struct probe_heap *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (p)
		p->plans = calloc(HEAP_MAX_PLANS, sizeof(*p->plans));
	if (!p || !p->plans) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	p->user = opts->user;
	p->n_user = opts->n_user;
	p->stop_on_bad_free = opts->stop_on_bad_free;
	p->searches_left = opts->source_searches;
	p->multi = probe_uprobe_multi();
	err = heap_worker_init(p, base);
	if (err)
		goto err_free;
	p->attacher = probe_attacher_new(base, on_attached, on_attach_dropped, p);
	if (!p->attacher) {
		err = -errno;
		goto err_free;
	}
	/* Without a program named, the daemon's own (the C library). */
	err = plan_index(p, opts->exe ? opts->exe : "/proc/self/exe", opts->env);
	if (err < 0) {
		log_warn("%s: %s: %s", __func__, opts->exe, strerror(-err));
		goto err_free;
	}
	prep.p = p;
	prep.opts = opts;
	p->skel = probe_load(&heap_ops, heap_progs, ARRAY_SIZE(heap_progs), CAPS_HEAP,
			     heap_prepare, &prep);
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	/* Which link the heap probe is attached with: both work; the
	 * multi link is let go in a fraction of the time. */
	caps_set_ok(CAPS_HEAP, p->multi ? "uprobe_multi" : "uprobe");
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.events), on_sample, p);
	if (err)
		goto err_destroy;
	return p;
err_destroy:
	heap_bpf__destroy(p->skel);
err_free:
	probe_attacher_free(p->attacher);
	worker_free(p->worker);
	free(p->plans);
	free(p);
	errno = -err;
	return NULL;
}

static struct bpf_program *entry_prog(struct probe_heap *p, unsigned fn)
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
	case HEAP_FN_USER_ALLOC: return s->progs.user_alloc_enter;
	case HEAP_FN_USER_FREE: return s->progs.user_free_enter;
	default: return s->progs.free_enter;
	}
}

static bool is_free_fn(unsigned fn)
{
	return fn == HEAP_FN_FREE || fn == HEAP_FN_USER_FREE;
}

/* Let a link go off the loop: its close waits for grace periods. */
static void drop_link(struct heap_link *l)
{
	probe_link_release(l->link, l->fd);
	l->link = NULL;
	l->fd = -1;
}

static void drop_links(struct heap_pid *hp)
{
	for (int k = 0; k < hp->n_links; k++)
		drop_link(&hp->links[k]);
	free(hp->links);
	hp->links = NULL;
	hp->n_links = hp->cap_links = 0;
}

static bool same_target(const struct alloc_target *a, const struct alloc_target *b)
{
	return a->sym_off == b->sym_off && a->probe_off == b->probe_off && a->fn == b->fn &&
	       a->size_arg == b->size_arg && a->ptr_arg == b->ptr_arg && !strcmp(a->path, b->path);
}

/* Is @t's function probed in @hp already (by an earlier plan)? */
static bool attached_at(const struct heap_pid *hp, const struct alloc_target *t)
{
	for (int k = 0; k < hp->n_links; k++)
		if (!hp->links[k].ret && same_target(hp->links[k].t, t))
			return true;
	return false;
}

/* Drop @hp's links to functions plan @plan does not have. */
static void drop_other_links(struct probe_heap *p, struct heap_pid *hp, int plan)
{
	const struct alloc_plan *pl = &p->plans[plan].plan;
	int kept = 0;

	for (int k = 0; k < hp->n_links; k++) {
		bool keep = false;

		for (size_t i = 0; i < pl->n && !keep; i++)
			keep = same_target(hp->links[k].t, &pl->t[i]);
		if (keep)
			hp->links[kept++] = hp->links[k];
		else
			drop_link(&hp->links[k]);
	}
	hp->n_links = kept;
}

static bool plan_has(const struct alloc_plan *pl, const struct alloc_target *t)
{
	for (size_t i = 0; i < pl->n; i++)
		if (same_target(&pl->t[i], t))
			return true;
	return false;
}

/* Will @hp have @t's function probed once its attaches in flight are in?
 * Those leave it the last posted plan's functions. */
static bool probed_or_coming(const struct probe_heap *p, const struct heap_pid *hp,
			     const struct alloc_target *t)
{
	return attached_at(hp, t) || (hp->inflight && plan_has(&p->plans[hp->plan].plan, t));
}

/* The uprobes plan @plan needs in @hp's process: for each function not
 * probed there already, its entry, then its return. NULL with errno set.
 * With the function's file offset known (decoded once per program), an
 * attach needs no symbol lookup. */
static struct heap_attach *plan_job(struct probe_heap *p, const struct heap_pid *hp, int plan)
{
	const struct alloc_plan *pl = &p->plans[plan].plan;
	struct heap_attach *a = calloc(1, sizeof(*a));
	size_t n = 0;

	if (!a || probe_attach_job_init(&a->j, hp->pid, p->multi, pl->n * 2)) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	a->plan = plan;
	for (size_t i = 0; i < pl->n; i++) {
		const struct alloc_target *t = &pl->t[i];
		__u64 cookie = t->user ? HEAP_COOKIE(t->size_arg, t->ptr_arg) : 0;

		if (probed_or_coming(p, hp, t))
			continue;
		a->j.u[n++] = (struct probe_uprobe){.prog = entry_prog(p, t->fn), .path = t->path,
			.off = (size_t)(t->sym_off + t->probe_off), .cookie = cookie, .tag = t,
			.fd = -1};
		if (!is_free_fn(t->fn))
			a->j.u[n++] = (struct probe_uprobe){.prog = t->fn == HEAP_FN_USER_ALLOC ?
				p->skel->progs.user_alloc_return : p->skel->progs.alloc_return,
				.path = t->path, .off = (size_t)t->sym_off, .cookie = cookie,
				.ret = true, .after_prev = true, .tag = t, .fd = -1};
	}
	a->j.n = n;
	return a;
}

/* @hp runs plan @plan's program now: the coverage counts it. */
static void count_proc(struct probe_heap *p, struct heap_pid *hp, int plan)
{
	struct heap_plan *pl = &p->plans[plan];

	hp->plan = plan;
	if (pl->n_procs < HEAP_COVERAGE_PIDS)
		pl->pids[pl->n_procs] = hp->pid;
	pl->n_procs++;
}

static struct heap_pid *find_pid(struct probe_heap *p, pid_t pid)
{
	for (size_t i = 0; i < p->n_pids; i++)
		if (p->pids[i].pid == pid)
			return &p->pids[i];
	return NULL;
}

/* An attach is over (on the loop, in the order posted): its links go to
 * its process, unless the process exited meanwhile (the loop read the
 * exit: the job was cancelled; or the thread saw it gone). 0 or -errno:
 * malloc, free or a user's own function could not be probed. An exec's
 * attach comes after its fork's (one thread, in order): it attaches only
 * the new program's functions the fork's did not (none when both use the
 * C library's), then the links the new program does not need go. */
static int take_links(struct probe_heap *p, struct heap_attach *a)
{
	struct heap_pid *hp = a->j.cancelled ? NULL : find_pid(p, a->j.pid);
	const struct heap_plan *pl = &p->plans[a->plan];
	int err = 0, attached = 0;

	if (hp)
		hp->inflight--;
	for (size_t i = 0; hp && !a->j.gone && i < a->j.n; i++) {
		struct probe_uprobe *u = &a->j.u[i];
		const struct alloc_target *t = u->tag;
		const char *base = strncmp(t->sym, "je_", 3) ? t->sym : t->sym + 3;
		struct heap_link *grown = hp->links;
		int cap = hp->cap_links;

		if (!u->err && hp->n_links == cap) {
			cap = cap ? cap * 2 : 32;
			grown = realloc(hp->links, (size_t)cap * sizeof(*grown));
			u->err = grown ? 0 : -ENOMEM;
			if (grown) {
				hp->links = grown;
				hp->cap_links = cap;
			}
		}
		if (u->err) {
			/* Without one of the rarer entry points the heap is
			 * still seen; without malloc or free it is not. */
			if (u->err != -ECANCELED)
				log_warn("%s: pid %d: %s%s: %s", __func__, (int)hp->pid, t->sym,
					 u->ret ? " (return)" : "", strerror(-u->err));
			if (!strcmp(base, "malloc") || !strcmp(base, "free") || t->user)
				err = u->err;
			continue;
		}
		hp->links[hp->n_links++] = (struct heap_link){u->link, u->fd, t, u->ret};
		u->link = NULL;
		u->fd = -1;
	}
	if (hp && !a->j.gone && a->exec)
		drop_other_links(p, hp, a->plan);
	for (size_t i = 0; hp && !a->j.gone && i < pl->plan.n; i++)
		attached += attached_at(hp, &pl->plan.t[i]);
	if (hp && !a->j.gone)
		log_debug("%s: pid %d: %d allocator probes attached (%s), %.1f ms after its %s "
			  "was read (%.1f ms attaching)", __func__, (int)hp->pid, attached,
			  pl->plan.allocator, (double)(a->j.done_ns - a->j.post_ns) / 1e6,
			  a->exec ? "exec" : "fork", (double)(a->j.done_ns - a->j.start_ns) / 1e6);
	else	/* A job cancelled before the thread took it has no done_ns. */
		log_debug("%s: pid %d: its allocator probes for its %s are dropped: it exited "
			  "first (%.1f ms after)", __func__, (int)a->j.pid, a->exec ? "exec" : "fork",
			  (double)((a->j.done_ns ?: util_now_ns()) - a->j.post_ns) / 1e6);
	probe_attach_job_release(&a->j);
	free(a);
	return err;
}

/* Attach plan @plan's entry points to @hp's process, here. */
static int attach_plan(struct probe_heap *p, struct heap_pid *hp, int plan)
{
	struct heap_attach *a = plan_job(p, hp, plan);

	if (!a)
		return -errno;
	count_proc(p, hp, plan);
	hp->inflight++;
	probe_attach_run(&a->j, NULL, NULL);
	return take_links(p, a);
}

/* The same, by the attacher's thread: a perf-event uprobe's attach waits
 * for the kernel's trace-event lock (0.2 s and more), and the run's fault
 * timers are on this loop. Its links are taken on the loop later, in the
 * order of the forks, execs and exits (probe_attach.h). */
static int post_plan(struct probe_heap *p, struct heap_pid *hp, int plan, bool exec)
{
	struct heap_attach *a = plan_job(p, hp, plan);
	int err;

	if (!a)
		return -errno;
	a->exec = exec;
	count_proc(p, hp, plan);
	hp->inflight++;
	err = probe_attacher_post(p->attacher, &a->j);
	if (!err)
		return 0;
	if (err == -ESRCH) {
		/* Gone already: its exit is on the way and drops its slot. */
		a->j.gone = true;
		return take_links(p, a);
	}
	log_warn("%s: no attach thread (%s): pid %d is attached to on the loop", __func__,
		 strerror(-err), (int)hp->pid);
	probe_attach_run(&a->j, NULL, NULL);
	return take_links(p, a);
}

static void on_attached(struct probe_attach_job *j, void *arg)
{
	struct probe_heap *p = arg;
	pid_t pid = j->pid;
	int err = take_links(p, (struct heap_attach *)j);

	if (err)
		log_warn("%s: cannot follow pid %d: %s", __func__, (int)pid, strerror(-err));
}

static void on_attach_dropped(struct probe_attach_job *j, void *arg)
{
	(void)arg;
	free(j);
}

static struct heap_pid *pid_slot(struct probe_heap *p, pid_t pid)
{
	struct heap_pid *hp = find_pid(p, pid);

	if (hp)
		return hp;
	if (p->n_pids >= HEAP_MAX_PIDS)
		return NULL;
	if (!p->pids) {
		p->pids = calloc(HEAP_MAX_PIDS, sizeof(*p->pids));
		if (!p->pids)
			return NULL;
	}
	hp = &p->pids[p->n_pids++];
	memset(hp, 0, sizeof(*hp));
	hp->pid = pid;
	return hp;
}

/* The held first process: attached here, before it runs (and before the
 * run's timeline begins), so that nothing it allocates is missed. */
int probe_heap__attach(struct probe_heap *p, pid_t pid)
{
	struct heap_pid *hp = pid_slot(p, pid);

	if (!hp)
		return -ENOSPC;
	hp->held = true;
	return attach_plan(p, hp, 0);
}

static int mark_partial(struct probe_heap *p, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;

	if (bpf_map__update_elem(p->skel->maps.partial, &key, sizeof(key), &one, sizeof(one),
				 BPF_ANY) < 0)
		return -errno;
	return 0;
}

bool probe_heap__partial(struct probe_heap *p, pid_t pid)
{
	__u32 key = (__u32)pid;
	__u8 one;

	return bpf_map__lookup_elem(p->skel->maps.partial, &key, sizeof(key), &one, sizeof(one),
				    0) == 0;
}

int probe_heap__add_child(struct probe_heap *p, pid_t pid, pid_t ppid)
{
	struct heap_pid *hp = find_pid(p, ppid);
	int plan = hp ? hp->plan : 0, err;

	/* Before its probes: what it allocates until they come is unknown. */
	err = mark_partial(p, pid);
	if (err)
		return err;
	hp = pid_slot(p, pid);
	return hp ? post_plan(p, hp, plan, false) : -ENOSPC;
}

/* The "K=V" strings of /proc/PID/environ (one allocation; @buf keeps them). */
static const char **read_environ(pid_t pid, char **buf)
{
	char path[64];
	size_t len = 0, n = 0;
	const char **env;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	*buf = NULL;
	if (util_read_file(path, 1u << 20, buf, &len))
		return NULL;
	for (size_t i = 0; i < len; i++)
		n += (*buf)[i] == '\0';
	env = calloc(n + 2, sizeof(*env));
	for (size_t i = 0, k = 0; env && i < len; i += strlen(*buf + i) + 1)
		env[k++] = *buf + i;
	return env;
}

int probe_heap__exec(struct probe_heap *p, pid_t pid)
{
	char link[64], exe[ALLOC_PATH_MAX], *envbuf = NULL;
	const char **env;
	struct heap_pid *hp = find_pid(p, pid);
	ssize_t n;
	int plan, err;

	if (!hp)
		return 0;
	if (hp->held) {
		/* The exec it was held for: its program is the planned one. */
		hp->held = false;
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	env = read_environ(pid, &envbuf);
	plan = plan_index(p, exe, env);
	free(env);
	free(envbuf);
	if (plan < 0)
		return plan;
	/* A new program: its first allocations ran before these probes, so
	 * a free finding no block is counted, never judged. */
	err = mark_partial(p, pid);
	if (err)
		return err;
	if (plan == hp->plan)
		return 0;
	/* The new program's functions first, then the old ones' links go: a
	 * function both have (the C library's malloc) is never unprobed, so
	 * no call slips through between them (take_links drops them). */
	return post_plan(p, hp, plan, true);
}

void probe_heap__detach(struct probe_heap *p, pid_t pid)
{
	__u32 key = (__u32)pid;

	/* Its attaches in flight keep nothing: the pid may be another's soon. */
	probe_attacher_cancel(p->attacher, pid);
	for (size_t i = 0; i < p->n_pids; i++) {
		struct heap_pid *hp = &p->pids[i];

		if (hp->pid != pid)
			continue;
		drop_links(hp);
		p->pids[i] = p->pids[--p->n_pids];
		bpf_map__delete_elem(p->skel->maps.partial, &key, sizeof(key), 0);
		return;
	}
}

json_t *probe_heap__coverage(const struct probe_heap *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; p && arr && i < p->n_plans; i++) {
		const struct heap_plan *pl = &p->plans[i];
		json_t *j, *pids = json_array();

		if (!pl->n_procs)
			continue;
		for (unsigned k = 0; pids && k < pl->n_procs && k < HEAP_COVERAGE_PIDS; k++)
			json_array_append_new(pids, json_integer(pl->pids[k]));
		j = alloc_plan_json(&pl->plan, pl->exe);
		if (j) {
			json_object_set_new(j, "pids", pids);
			json_object_set_new(j, "processes", json_integer(pl->n_procs));
			json_array_append_new(arr, j);
		} else {
			json_decref(pids);
		}
	}
	return arr;
}

const char *probe_heap__unknown(const struct probe_heap *p)
{
	for (size_t i = 0; p && i < p->n_plans; i++)
		if (p->plans[i].n_procs && !p->plans[i].plan.known)
			return p->plans[i].plan.why;
	return NULL;
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
	bool spilled = stack_id >= HEAP_MAX_SITES;	/* see HEAP_SPILL_STACKS */
	__u32 id = (__u32)(spilled ? stack_id - HEAP_MAX_SITES : stack_id);
	struct bpf_map *map = spilled ? p->skel->maps.spill_stacks : p->skel->maps.stacks;
	int n = 0;

	if (stack_id < 0 || bpf_map_lookup_elem(bpf_map__fd(map), &id, frames))
		return 0;
	while (n < max && n < HEAP_STACK_DEPTH && frames[n]) {
		ips[n] = frames[n];
		n++;
	}
	return n;
}

const char *probe_heap__placement(const struct probe_heap *p)
{
	return p->plans[0].plan.placement;
}

int probe_heap__live_fd(const struct probe_heap *p)
{
	return bpf_map__fd(p->skel->maps.live);
}

/* The links go to the closers (a second or more of grace periods on a
 * kernel without uprobe_multi), the rest at once. */
void probe_heap__destroy(struct probe_heap *p)
{
	if (!p)
		return;
	worker_free(p->worker);	/* before the maps its searches read */
	probe_attacher_free(p->attacher);	/* its links made and not taken go */
	for (size_t i = 0; i < p->n_pids; i++)
		drop_links(&p->pids[i]);
	free(p->pids);
	free(p->plans);
	probe_ring_close(&p->ring);
	heap_bpf__destroy(p->skel);
	free(p);
}
