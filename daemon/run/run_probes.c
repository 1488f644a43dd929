/* The probes a workload asks for ("probes": ["heap", "fds", "lifecycle"]):
 * attached to its held child before it runs, sampled at the end of every
 * cycle, summarised at the end of the run into the observations the
 * invariants read. One probe instance per workload, so its totals are the
 * workload's own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "inv_params.h"
#include "log.h"
#include "probe_fds.h"
#include "probe_heap.h"
#include "probe_lifecycle.h"
#include "run_priv.h"
#include "sym.h"
#include "util.h"

#define RUN_TOP_SITES 10	/* allocation sites named in the report */
#define RUN_MAX_LISTED 100	/* objects or messages listed at the end */

static uint64_t ts_to_run_ms(const struct run *r, uint64_t ts_ns)
{
	return ts_ns > r->t0_ns ? (ts_ns - r->t0_ns) / 1000000ull : 0;
}

static json_t *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

_Static_assert(RUN_SYM_FRAMES >= HEAP_STACK_DEPTH + 1, "a heap stack fits a naming job");

/* A stack's addresses: frame 0 is where the probe fired, then the caller,
 * then the rest. Older kernels' frame-pointer walk misses the caller of a
 * function probed before its frame is set up; newer ones (6.18 here)
 * already add it, so it is inserted only when missing. Their count; room
 * for HEAP_STACK_DEPTH + 1 in @ips; *frame0_is_ip is cleared when the
 * caller alone is known. */
static int stack_ips(struct probe_heap *h, __s32 stack_id, uint64_t caller,
		     bool *frame0_is_ip, uint64_t *ips)
{
	__u64 got[HEAP_STACK_DEPTH];
	int n = probe_heap__stack(h, stack_id, got, HEAP_STACK_DEPTH);

	for (int i = 0; i < n; i++)
		ips[i] = got[i];
	if (caller && *frame0_is_ip && n > 0 && (n < 2 || ips[1] != caller)) {
		memmove(ips + 2, ips + 1, (size_t)(n - 1) * sizeof(ips[0]));
		ips[1] = caller;
		n++;
	} else if (caller && n == 0) {
		ips[0] = caller;
		n = 1;
		*frame0_is_ip = false;
	}
	return n;
}

/* A stack of a finding, to be named off the loop into @in's @key. */
static void stack_names(struct run_sym_job *j, json_t *in, const char *key,
			struct probe_heap *h, __s32 stack_id, uint64_t caller, bool frame0_is_ip)
{
	uint64_t ips[HEAP_STACK_DEPTH + 1];
	int n = stack_ips(h, stack_id, caller, &frame0_is_ip, ips);

	run_sym_stack(j, in, key, ips, n, frame0_is_ip);
}

json_t *run_heap_stack(struct sym *s, struct probe_heap *h, pid_t pid, int32_t stack_id,
		       uint64_t caller)
{
	uint64_t ips[HEAP_STACK_DEPTH + 1];
	bool frame0_is_ip = false;
	int n = stack_ips(h, stack_id, caller, &frame0_is_ip, ips);

	return sym__frames(s, pid, ips, n, frame0_is_ip);
}

/* --- heap -------------------------------------------------------------------------- */

#define RUN_MAX_SOURCE_SEARCHES 4	/* per workload: a storm of bad frees is not searched */

/* A bad free, while its stacks are named (run_sym.c). */
struct heap_named {
	struct run_sym_job job;		/* first: the job is freed as a whole */
	struct run_wl *rw;
	struct heap_event ev;
	struct heap_finding f;
};

/* A pointer never allocated is often one read from freed memory: the
 * block that held it was freed (by "the free that released it") and
 * maybe handed out again, and a stale reference read the word that is
 * there now. While the process was held, the probe looked for the word in
 * the recently freed blocks: name that block's free, allocation and new
 * owner. */
static void add_pointer_source(struct run *r, struct heap_named *hn, json_t *j)
{
	const struct heap_source *src = &hn->f.source;
	struct probe_heap *h = hn->rw->heap;
	json_t *o;

	if (hn->f.source_err)
		return;
	o = json_pack("{sosisIsisI}", "block", hex(src->block), "offset", (int)src->offset,
		      "size", (json_int_t)src->freed.size, "tid", (int)src->freed.tid,
		      "at_ms", (json_int_t)ts_to_run_ms(r, src->freed.ts_ns));
	if (!o)
		return;
	stack_names(&hn->job, o, "stack", h, src->freed.stack_id, src->freed.caller, true);
	stack_names(&hn->job, o, "allocated_at", h, src->freed.alloc_stack_id,
		    src->freed.alloc_caller, false);
	if (src->reused)
		stack_names(&hn->job, o, "reallocated_at", h, src->now.stack_id, src->now.caller,
			    false);
	json_object_set_new(o, "other_holders", json_integer(src->others));
	json_object_set_new(j, "read_from_freed", o);
}

/* The bad free, named: recorded and logged, in the order of the frees. */
static void on_heap_named(struct run *r, struct run_sym_job *job)
{
	struct heap_named *hn = (struct heap_named *)job;
	const struct heap_event *ev = &hn->ev;
	const struct heap_source *src = &hn->f.source;
	int err = hn->f.source_err;

	if (!hn->f.stopped)
		log_warn("%s: run %s: pid %u did not stop in %dms", __func__, r->id, ev->tgid,
			 HEAP_STOP_WAIT_MS);
	if (err && err != -ENOENT && err != -EAGAIN)
		log_warn("%s: run %s: pid %d: %s", __func__, r->id, (int)ev->tgid, strerror(-err));
	if (json_object_get(job->found, "read_from_freed"))
		log_warn("%s: run %s: 0x%llx was read from 0x%llx+%llu, a %llu-byte block "
			 "freed %s", __func__, r->id, (unsigned long long)ev->addr,
			 (unsigned long long)src->block, (unsigned long long)src->offset,
			 (unsigned long long)src->freed.size,
			 src->reused ? "and allocated again" : "earlier");
	json_array_append_new(r->obs.heap_events, job->found);
	job->found = NULL;
	log_warn("%s: run %s: %s of 0x%llx in pid %u (%s) of '%s'", __func__, r->id,
		 ev->type == HEAP_EV_DOUBLE_FREE ? "double free" : "free of a pointer never allocated",
		 (unsigned long long)ev->addr, ev->tgid, ev->comm, r->sc->wl[hn->rw->idx].name);
}

/* A bad free, looked into by the heap probe's worker: its maps are read and
 * its stacks' addresses taken now, while the process is held (SIGSTOP) at
 * it; the names are made off the loop (on_heap_named), and then it goes
 * on, even if the C library will abort it. */
static void on_heap_event(const struct heap_event *ev, const struct heap_finding *f, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	const char *wname = r->sc->wl[rw->idx].name;
	bool is_double = ev->type == HEAP_EV_DOUBLE_FREE;
	struct heap_named *hn = NULL;
	json_t *j;

	j = json_pack("{sssssisissss}", "kind", is_double ? "double_free" : "invalid_free",
		      "workload", wname, "pid", (int)ev->tgid, "tid", (int)ev->tid,
		      "comm", ev->comm, "function", ev->fn == HEAP_FN_FREE ? "free" : "realloc");
	if (j)
		hn = (struct heap_named *)run_sym_job_new(r, (pid_t)ev->tgid, sizeof(*hn),
							  on_heap_named);
	if (!hn) {
		json_decref(j);
		log_warn("%s: run %s: out of memory: %s of 0x%llx in pid %u (%s) of '%s' "
			 "not listed", __func__, r->id,
			 is_double ? "double free" : "free of a pointer never allocated",
			 (unsigned long long)ev->addr, ev->tgid, ev->comm, wname);
		kill((pid_t)ev->tgid, SIGCONT);
		return;
	}
	hn->rw = rw;
	hn->ev = *ev;
	hn->f = *f;
	json_object_set_new(j, "address", hex(ev->addr));
	json_object_set_new(j, "at_ms", json_integer((json_int_t)ts_to_run_ms(r, ev->ts_ns)));
	stack_names(&hn->job, j, "stack", rw->heap, ev->stack_id, ev->caller, true);
	if (is_double) {
		json_t *first = json_pack("{si}", "tid", (int)ev->prev_tid);

		json_object_set_new(j, "size", json_integer((json_int_t)ev->size));
		stack_names(&hn->job, first, "stack", rw->heap, ev->prev_stack_id,
			    ev->prev_caller, true);
		if (first)
			json_object_set_new(first, "at_ms",
				json_integer((json_int_t)ts_to_run_ms(r, ev->prev_ts_ns)));
		json_object_set_new(j, "first_free", first);
		stack_names(&hn->job, j, "allocated_at", rw->heap, ev->alloc_stack_id, 0, false);
	}
	if (!is_double)
		add_pointer_source(r, hn, j);
	hn->job.found = j;
	/* It goes on once named (SIGCONT); at once when the run is stopping
	 * (its maps are copied), so that it can hear the stop. */
	if (r->state == RUN_RUNNING)
		hn->job.hold = (pid_t)ev->tgid;
	else
		kill((pid_t)ev->tgid, SIGCONT);
	run_sym_post(r, &hn->job);
}

static int attach_heap(struct run *r, size_t i, pid_t pid)
{
	struct run_wl *rw = &r->rw[i];
	struct probe_heap_opts opts = {
		.stacks = true, .remember_frees = true, .stop_on_bad_free = true,
		.source_searches = RUN_MAX_SOURCE_SEARCHES,
		.exe = rw->exe, .env = rw->env,
		.user = r->sc->wl[i].allocators, .n_user = r->sc->wl[i].n_allocators,
	};
	int err;

	rw->heap = probe_heap__open(r->base, &opts, on_heap_event, rw);
	if (!rw->heap)
		return -errno;
	err = probe_heap__attach(rw->heap, pid);
	if (err)
		return err;
	r->obs.probes[i].heap = true;
	snprintf(r->obs.probes[i].heap_placement, sizeof(r->obs.probes[i].heap_placement), "%s",
		 probe_heap__placement(rw->heap) ? probe_heap__placement(rw->heap) : "");
	return 0;
}

struct site_ctx {
	json_t *table;		/* caller -> {caller, stack_id, first_bytes, ...} */
	unsigned cycle;
};

static void on_site(const struct heap_site *site, __s32 stack_id, void *arg)
{
	struct site_ctx *sc = arg;
	char key[24];
	json_t *row;

	snprintf(key, sizeof(key), "%llx", (unsigned long long)site->caller);
	row = json_object_get(sc->table, key);
	if (!row) {
		row = json_pack("{sIsisIsI}", "caller", (json_int_t)site->caller,
				"stack_id", (int)stack_id, "first_bytes", (json_int_t)site->bytes,
				"first_cycle", (json_int_t)sc->cycle);
		if (!row)
			return;
		json_object_set_new(sc->table, key, row);
	}
	json_object_set_new(row, "bytes", json_integer((json_int_t)site->bytes));
	json_object_set_new(row, "blocks", json_integer((json_int_t)site->blocks));
	json_object_set_new(row, "seen", json_integer((json_int_t)sc->cycle));
}

/* Anonymous resident memory of the workload's live processes, in bytes,
 * or -1 if none could be read. */
static long long tree_anon(const struct run *r, size_t i)
{
	long long sum = -1;

	for (size_t k = 0; k < r->obs.n_procs; k++) {
		const struct obs_proc *p = &r->obs.procs[k];
		char path[64], *text = NULL, *at;

		if (p->workload != (int)i || p->exited)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
		if (util_read_file(path, 1u << 16, &text, NULL))
			continue;
		at = strstr(text, "RssAnon:");
		if (at)
			sum = (sum < 0 ? 0 : sum) + strtoll(at + 8, NULL, 10) * 1024;
		free(text);
	}
	return sum;
}

static void sample_anon(struct run *r, size_t i, long long live)
{
	struct run_wl *rw = &r->rw[i];
	long long anon = tree_anon(r, i);

	if (anon < 0)
		return;
	if (!rw->anon_seen) {
		rw->anon_first = anon;
		rw->live_first = live;
		rw->anon_seen = true;
	}
	rw->anon_last = anon;
	rw->live_last = live;
}

static void sample_heap(struct run *r, size_t i, struct obs_sample *s, size_t c)
{
	struct run_wl *rw = &r->rw[i];
	unsigned long long cnt[HEAP_C__MAX];
	struct site_ctx sc;

	probe_heap__counters(rw->heap, cnt);
	s->heap = true;
	s->heap_bytes = (long long)(cnt[HEAP_C_BYTES_ALLOC] - cnt[HEAP_C_BYTES_FREED]);
	s->heap_blocks = (long long)(cnt[HEAP_C_ALLOCS] - cnt[HEAP_C_FREES]);
	sample_anon(r, i, s->heap_bytes);
	if (!r->obs.probes[i].heap_sites)
		r->obs.probes[i].heap_sites = json_object();
	sc.table = r->obs.probes[i].heap_sites;
	sc.cycle = (unsigned)c + 1;
	probe_heap__sites(rw->heap, on_site, &sc);
	/* The maps that name these sites once the process is gone are kept
	 * fresh by the run at every cycle's end (snapshot_maps). */
}

static int cmp_growth(const void *a, const void *b)
{
	long long ga = json_integer_value(json_object_get(*(json_t *const *)a, "growth_bytes"));
	long long gb = json_integer_value(json_object_get(*(json_t *const *)b, "growth_bytes"));

	return (gb > ga) - (gb < ga);
}

#define RUN_UNEXPLAINED_MIN (64ll << 20)	/* anonymous growth worth a doubt */
#define RUN_UNEXPLAINED_RATIO 4			/* ... and this many times the probed */

/* What the heap probe covered: the allocator of each program, and how much
 * of the tree's memory growth the probed calls explain. Too little seen
 * makes the heap invariants INCONCLUSIVE (heap_uncovered says why). */
static void heap_coverage(struct run *r, size_t i)
{
	struct obs_probes *op = &r->obs.probes[i];
	const struct run_wl *rw = &r->rw[i];
	const char *unknown = probe_heap__unknown(rw->heap);
	long long anon = rw->anon_last - rw->anon_first;
	long long live = rw->live_last - rw->live_first;
	long long unexplained = anon > live ? anon - live : 0;

	op->heap_coverage = json_pack("{so}", "programs", probe_heap__coverage(rw->heap));
	if (op->heap_coverage && rw->anon_seen) {
		json_object_set_new(op->heap_coverage, "anon_growth_bytes", json_integer(anon));
		json_object_set_new(op->heap_coverage, "probed_growth_bytes", json_integer(live));
		json_object_set_new(op->heap_coverage, "unexplained_growth_bytes",
				    json_integer(unexplained));
	}
	if (unknown)
		snprintf(op->heap_uncovered, sizeof(op->heap_uncovered), "%s", unknown);
	else if (!op->heap_allocs)
		snprintf(op->heap_uncovered, sizeof(op->heap_uncovered),
			 "the allocator probes saw no allocation: the program's heap is not "
			 "served by the functions probed");
	else if (unexplained > RUN_UNEXPLAINED_MIN &&
		 unexplained > RUN_UNEXPLAINED_RATIO * (live > 0 ? live : 0))
		snprintf(op->heap_uncovered, sizeof(op->heap_uncovered),
			 "anonymous memory grew by %lld KiB, the probed allocations by %lld KiB: "
			 "an allocator the probe does not see serves the rest",
			 anon / 1024, live / 1024);
	if (op->heap_coverage) {
		json_object_set_new(op->heap_coverage, "complete",
				    json_boolean(!op->heap_uncovered[0]));
		if (op->heap_uncovered[0])
			json_object_set_new(op->heap_coverage, "why",
					    json_string(op->heap_uncovered));
	}
}

/* The site table becomes the top growing sites, named. */
static void finish_heap(struct run *r, size_t i)
{
	struct obs_probes *op = &r->obs.probes[i];
	json_t *table = op->heap_sites, *row, *out = json_array(), **rows;
	unsigned long long cnt[HEAP_C__MAX];
	const char *key;
	size_t n = 0, k = 0;

	probe_heap__counters(r->rw[i].heap, cnt);
	op->heap_allocs = cnt[HEAP_C_ALLOCS];
	op->heap_frees = cnt[HEAP_C_FREES];
	op->heap_internal_frees = cnt[HEAP_C_LIBC_INTERNAL];
	op->heap_lost = cnt[HEAP_C_LOST_RINGBUF] + cnt[HEAP_C_LOST_LIVE] +
			cnt[HEAP_C_LOST_PENDING] + cnt[HEAP_C_LOST_SITE] +
			cnt[HEAP_C_UNJUDGED_FREE];
	/* Stacks that could not be taken only thin the evidence; the rest
	 * can hide a bug, so they make the heap invariants INCONCLUSIVE. */
	op->heap_losses = json_pack("{sIsIsIsIsIsIsI}",
		"child_unjudged_frees", (json_int_t)cnt[HEAP_C_CHILD_UNJUDGED],
		"ringbuf", (json_int_t)cnt[HEAP_C_LOST_RINGBUF],
		"live_map_full", (json_int_t)cnt[HEAP_C_LOST_LIVE],
		"pending", (json_int_t)cnt[HEAP_C_LOST_PENDING],
		"site_map_full", (json_int_t)cnt[HEAP_C_LOST_SITE],
		"unjudged_frees", (json_int_t)cnt[HEAP_C_UNJUDGED_FREE],
		"stacks", (json_int_t)cnt[HEAP_C_LOST_STACK]);
	heap_coverage(r, i);
	n = table ? json_object_size(table) : 0;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows || !out) {
		free(rows);
		json_decref(out);
		return;
	}
	json_object_foreach(table, key, row) {
		json_object_set_new(row, "growth_bytes", json_integer(
			json_integer_value(json_object_get(row, "bytes")) -
			json_integer_value(json_object_get(row, "first_bytes"))));
		rows[k++] = row;
	}
	qsort(rows, k, sizeof(*rows), cmp_growth);
	for (size_t j = 0; j < k && j < RUN_TOP_SITES; j++) {
		uint64_t caller = (uint64_t)json_integer_value(json_object_get(rows[j], "caller"));
		json_t *site = json_pack("{sososIsIsIsI}",
			"caller", sym__frame(r->sym, r->obs.wl[i].pid, caller, true),
			"stack", run_heap_stack(r->sym, r->rw[i].heap, r->obs.wl[i].pid,
				(__s32)json_integer_value(json_object_get(rows[j], "stack_id")),
				0),
			"live_bytes", json_integer_value(json_object_get(rows[j], "bytes")),
			"live_blocks", json_integer_value(json_object_get(rows[j], "blocks")),
			"growth_bytes", json_integer_value(json_object_get(rows[j], "growth_bytes")),
			"first_seen_cycle", json_integer_value(json_object_get(rows[j], "first_cycle")));

		if (site)
			json_array_append_new(out, site);
	}
	free(rows);
	json_decref(op->heap_sites);
	op->heap_sites = out;
}

/* --- fds --------------------------------------------------------------------------- */

static void sample_fds(struct run *r, size_t i, struct obs_sample *s)
{
	struct run_wl *rw = &r->rw[i];

	/* Every live process of the workload's tree: a shell wrapper's fds
	 * are constant; its child's are what leaks. No sample when none was
	 * alive to count: a process in its exit has closed its fds, and a 0
	 * at the end would read as a leak that came back. */
	for (size_t k = 0; k < r->obs.n_procs; k++) {
		const struct obs_proc *p = &r->obs.procs[k];

		if (p->workload != (int)i || p->exited)
			continue;
		if (probe_fds__snapshot(rw->fds, p->pid, s->fd_types) == 0)
			s->fds = true;
	}
	for (int t = 0; t < FD_T__MAX; t++) {
		s->fds_total += s->fd_types[t];
		if (t == FD_T_TCP || t == FD_T_UDP || t == FD_T_UNIX || t == FD_T_NETLINK ||
		    t == FD_T_SOCK_OTHER)
			s->sockets += s->fd_types[t];
	}
}

/* --- lifecycle ------------------------------------------------------------------------ */

static const char *life_kind(__u32 type)
{
	switch (type) {
	case LIFE_EV_EVENT_AFTER_DESTROY: return "event_after_destroy";
	case LIFE_EV_DESTROY_AFTER_DESTROY: return "destroy_after_destroy";
	case LIFE_EV_CREATE_ALIVE: return "create_while_alive";
	case LIFE_EV_UNKNOWN_OBJECT: return "unknown_object";
	case LIFE_EV_MSG_DUPLICATE: return "duplicate";
	case LIFE_EV_MSG_NEVER_SENT: return "never_sent";
	case LIFE_EV_MSG_OUT_OF_ORDER: return "out_of_order";
	default: return "?";
	}
}

#define RUN_MAX_COUNTER_CHANGES 65536	/* per workload; recovers reads them */

/* A watched counter changed: keep when, for recovers. */
static void counter_changed(struct run *r, size_t wl, const struct life_event *ev)
{
	struct obs_workload *ow = &r->obs.wl[wl];
	struct obs_counter *c;

	c = ow->n_counters < RUN_MAX_COUNTER_CHANGES ?
	    util_grow(ow->counters, &ow->cap_counters, ow->n_counters + 1, sizeof(*c)) : NULL;
	if (!c) {
		r->obs.probes[wl].life_lost++;
		return;
	}
	ow->counters = c;
	c = &ow->counters[ow->n_counters++];
	c->t_ms = ts_to_run_ms(r, ev->ts);
	c->value = (long long)ev->id;
	snprintf(c->name, sizeof(c->name), "%s", ev->kind);
}

static void on_life_event(const struct life_event *ev, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	bool msg = ev->type >= LIFE_EV_MSG_DUPLICATE;
	json_t *j;

	if (ev->type == LIFE_EV_COUNTER) {
		counter_changed(r, rw->idx, ev);
		return;
	}
	j = json_pack("{sssssisisI}", "kind", life_kind(ev->type),
		      "workload", r->sc->wl[rw->idx].name, "pid", (int)ev->tgid,
		      "tid", (int)ev->tid, "at_ms", (json_int_t)ts_to_run_ms(r, ev->ts));
	if (!j)
		return;
	if (msg) {
		json_object_set_new(j, "queue", json_integer((json_int_t)ev->queue));
		json_object_set_new(j, "seq", json_integer((json_int_t)ev->id));
		json_object_set_new(j, "ptr", hex(ev->ptr));
		if (ev->type == LIFE_EV_MSG_DUPLICATE) {
			json_object_set_new(j, "first_received_tid", json_integer(ev->other_tid));
			json_object_set_new(j, "first_received_ms",
					    json_integer((json_int_t)ts_to_run_ms(r, ev->other_ts)));
			json_object_set_new(j, "first_ptr", hex(ev->other_ptr));
		}
		if (ev->type == LIFE_EV_MSG_OUT_OF_ORDER)
			json_object_set_new(j, "newest_seq", json_integer((json_int_t)ev->newest_seq));
		json_array_append_new(r->obs.msg_events, j);
	} else {
		json_object_set_new(j, "object_kind", json_string(ev->kind));
		json_object_set_new(j, "id", json_integer((json_int_t)ev->id));
		json_object_set_new(j, "event", json_string(ev->event));
		if (ev->other_tid) {
			json_object_set_new(j, ev->type == LIFE_EV_CREATE_ALIVE ? "created_tid"
								 : "destroyed_tid",
					    json_integer(ev->other_tid));
			json_object_set_new(j, ev->type == LIFE_EV_CREATE_ALIVE ? "created_ms"
								 : "destroyed_ms",
					    json_integer((json_int_t)ts_to_run_ms(r, ev->other_ts)));
		}
		json_array_append_new(r->obs.life_events, j);
	}
	/* The report has them all; the log says the first few. */
	if (json_array_size(r->obs.life_events) + json_array_size(r->obs.msg_events) <= 3)
		log_warn("%s: run %s: %s: %s %s %llu in '%s'", __func__, r->id,
			 life_kind(ev->type), msg ? "message" : ev->kind, msg ? "seq" : "id",
			 (unsigned long long)ev->id, r->sc->wl[rw->idx].name);
}

static void finish_life(struct run *r, size_t i)
{
	struct run_wl *rw = &r->rw[i];
	struct obs_probes *op = &r->obs.probes[i];
	unsigned long long inflight = 0;
	json_t *rows, *row;
	size_t k;

	op->life_lost = probe_lifecycle__lost(rw->life);
	rows = probe_lifecycle__alive(rw->life, RUN_MAX_LISTED);
	json_array_foreach(rows, k, row) {
		json_object_set_new(row, "workload", json_string(r->sc->wl[i].name));
		json_array_append(r->obs.life_alive, row);
	}
	json_decref(rows);
	rows = probe_lifecycle__inflight(rw->life, RUN_MAX_LISTED, &inflight);
	json_array_foreach(rows, k, row) {
		json_object_set_new(row, "workload", json_string(r->sc->wl[i].name));
		json_array_append(r->obs.msg_lost, row);
	}
	json_decref(rows);
}

/* Counters recovers follows, and the library objects a bundled kind has:
 * an lwIP stack's own sockets, so a leak in the port layer above it shows
 * in lwIP too. */
static int life_extras(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	int err = 0;

	for (size_t k = 0; k < r->sc->n_inv && !err; k++) {
		const struct sc_invariant *inv = &r->sc->inv[k];
		const struct inv_recovers_params *p = inv->params;

		if (strcmp(inv->name, "recovers") || !p->counter ||
		    (inv->workload_idx >= 0 && (size_t)inv->workload_idx != i))
			continue;
		err = probe_lifecycle__watch(rw->life, p->counter);
	}
	if (!err && w->kind == WL_LWIP_CLIENT) {
		err = probe_lifecycle__track_calls(rw->life, r->obs.wl[i].pid, RUN_LWIP_LIB,
					      "lwip_socket", "lwip_close", "lwip_socket");
		if (!err)
			r->obs.probes[i].life = true;
	}
	if (err)
		log_err("%s: run %s: lifecycle probe for '%s': %s", __func__, r->id, w->name,
			strerror(-err));
	return err;
}

void run_probes_status(const struct run *r, size_t i, json_t *row)
{
	if (r->rw[i].life)
		json_object_set_new(row, "counters", probe_lifecycle__counters(r->rw[i].life));
}

unsigned long long run_probes_lost(const struct run *r)
{
	unsigned long long lost = r->obs.proc_lost;

	for (size_t i = 0; i < r->sc->n_wl; i++) {
		lost += probe_lifecycle__lost(r->rw[i].life);
		lost += r->obs.probes[i].heap_lost + r->obs.probes[i].fds_lost;
	}
	return lost;
}

/* The object kinds the invariants count per cycle, each once. */
static void add_name(const char **names, size_t *n, const char *name)
{
	if (name && *n < INV_MAX_KINDS && obs_name_index(names, *n, name) < 0)
		names[(*n)++] = name;
}

void run_probes_kinds(struct run *r)
{
	for (size_t k = 0; k < r->sc->n_inv; k++) {
		const struct sc_invariant *inv = &r->sc->inv[k];
		const struct inv_trend_params *p = inv->params;

		if (!strcmp(inv->name, "counter_stable"))
			add_name(r->obs.life_counters, &r->obs.n_life_counters, p->counter);
		else if (!strcmp(inv->name, "fds_stable") || !strcmp(inv->name, "sockets_stable"))
			add_name(r->obs.life_kinds, &r->obs.n_life_kinds, p->object);
	}
}

/* --- the interface run.c calls ----------------------------------------------------- */

/* A probe this host lacks is no failed run: the invariants that need it
 * are INCONCLUSIVE and name it (inv_eval reads the run's capabilities). */
static int probe_missing(const struct run *r, const struct sc_workload *w, enum caps_id cap,
			 int err)
{
	if (err != -ENOTSUP || caps_state(cap) != CAPS_MISSING) {
		log_err("%s: run %s: %s probe for '%s': %s", __func__, r->id, caps_name(cap),
			w->name, strerror(-err));
		return err;
	}
	log_info("%s: run %s: '%s' runs without the %s probe, which this host lacks",
		 __func__, r->id, w->name, caps_name(cap));
	return 0;
}

int run_probes_attach(struct run *r, size_t i)
{
	const struct sc_workload *w = &r->sc->wl[i];
	struct run_wl *rw = &r->rw[i];
	pid_t pid = r->obs.wl[i].pid;
	int err = 0, found;

	if (scenario_wl_has_probe(w, "heap")) {
		err = attach_heap(r, i, pid);
		if (!err)
			err = run_leak_attach(r, i, pid);
		if (err)
			err = probe_missing(r, w, CAPS_HEAP, err);
		if (err)
			return err;
	}
	if (scenario_wl_has_probe(w, "fds")) {
		rw->fds = probe_fds__open();
		if (!rw->fds)
			err = probe_missing(r, w, CAPS_FDS, -errno);
		else if (probe_fds__track(rw->fds, pid))
			err = probe_missing(r, w, CAPS_FDS, -EIO);
		if (err)
			return err;
		r->obs.probes[i].fds = rw->fds != NULL;
	}
	if (scenario_wl_has_probe(w, "lifecycle")) {
		rw->life = probe_lifecycle__open(r->base, on_life_event, rw);
		if (!rw->life)
			return probe_missing(r, w, CAPS_LIFECYCLE, -errno);
		found = probe_lifecycle__attach(rw->life, pid, rw->exe);
		if (found <= 0)
			log_warn("%s: run %s: '%s' (%s) has no faultd USDT probes; lifecycle "
				 "invariants cannot be checked", __func__, r->id, w->name, rw->exe);
		r->obs.probes[i].life = found > 0;
		err = life_extras(r, i);
	}
	return err;
}

void run_probes_sample(struct run *r, size_t c)
{
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct obs_sample *s = &r->obs.samples[c * r->sc->n_wl + i];

		/* A tree that is gone has no fds open, which says nothing about
		 * whether it closed them; and its heap is what its way out left
		 * (a program frees its pool's slab, not the chunks it lost in
		 * it): no_leak judges that, not the trend of the cycles. */
		if (r->rw[i].heap && !r->obs.wl[i].exited)
			sample_heap(r, i, s, c);
		if (r->rw[i].fds && !r->obs.wl[i].exited)
			sample_fds(r, i, s);
		if (r->rw[i].life && r->obs.probes[i].life &&
		    (r->obs.n_life_kinds || r->obs.n_life_counters)) {
			/* The counters map is walked only when a counter is judged. */
			json_t *all = r->obs.n_life_counters ?
				      probe_lifecycle__counters(r->rw[i].life) : NULL;

			probe_lifecycle__count_alive(r->rw[i].life, r->obs.life_kinds,
						r->obs.n_life_kinds, s->live);
			for (size_t k = 0; k < r->obs.n_life_counters; k++)
				s->counters[k] = json_integer_value(json_object_get(
					all, r->obs.life_counters[k]));
			json_decref(all);
			s->life = true;
		}
	}
}

void run_probes_fork(struct run *r, size_t wl, pid_t child, pid_t parent)
{
	int err;

	if (!r->rw[wl].heap)
		return;
	run_leak_fork(r, wl, child);
	err = probe_heap__add_child(r->rw[wl].heap, child, parent);
	if (err)
		log_warn("%s: run %s: cannot follow child %d of '%s': %s", __func__, r->id,
			 (int)child, r->sc->wl[wl].name, strerror(-err));
}

/* A followed process exec'ed: probe the new program's allocator. */
void run_probes_exec(struct run *r, size_t wl, pid_t pid)
{
	int err;

	if (!r->rw[wl].heap)
		return;
	err = probe_heap__exec(r->rw[wl].heap, pid);
	/* A program that ran and exited before its exec was read here is
	 * common (a shell's short commands), and no fault of faultd's. */
	if (err == -ENOENT || err == -ESRCH)
		log_debug("%s: run %s: pid %d of '%s' exited before its new program "
			  "was read: its heap is not followed", __func__, r->id, (int)pid,
			  r->sc->wl[wl].name);
	else if (err)
		log_warn("%s: run %s: pid %d of '%s': %s", __func__, r->id, (int)pid,
			 r->sc->wl[wl].name, strerror(-err));
}

void run_probes_exit(struct run *r, size_t wl, pid_t pid)
{
	run_leak_exit(r, wl, pid);
	if (r->rw[wl].heap && pid != r->obs.wl[wl].pid)
		probe_heap__detach(r->rw[wl].heap, pid);
}

void run_probes_drain(struct run *r)
{
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		probe_heap__drain(r->rw[i].heap);
		probe_lifecycle__drain(r->rw[i].life);
	}
	run_leak_drain(r);
}

void run_probes_finish(struct run *r)
{
	run_probes_drain(r);
	run_leak_settle(r);
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		probe_heap__settle(r->rw[i].heap);
		if (r->rw[i].heap)
			finish_heap(r, i);
		if (r->rw[i].fds) {
			r->obs.probes[i].fds_lost = probe_fds__lost(r->rw[i].fds);
			r->obs.probes[i].fd_calls = probe_fds__calls(r->rw[i].fds);
		}
		if (r->rw[i].life)
			finish_life(r, i);
	}
	/* The report waits for every bad free and crash to be named. */
	run_sym_settle(r);
}

void run_probes_destroy(struct run *r)
{
	run_leak_destroy(r);
	for (size_t i = 0; r->rw && i < r->sc->n_wl; i++) {
		probe_heap__destroy(r->rw[i].heap);
		probe_fds__destroy(r->rw[i].fds);
		probe_lifecycle__destroy(r->rw[i].life);
		r->rw[i].heap = NULL;
		r->rw[i].fds = NULL;
		r->rw[i].life = NULL;
	}
	run_sym_destroy(r);	/* after the probes: none can post to it any more */
}
