/* no_leak's side of a run: every process of a workload judged by no_leak
 * is held at the C library's _exit (probe_exit.c), its live heap blocks
 * are judged by the reachability scan (leakscan.c) while it is stopped,
 * and the leaks, grouped by allocation stack, go into r->obs.leaks; then
 * it goes on exiting. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "leakscan.h"
#include "log.h"
#include "probe_exit.h"
#include "probe_heap.h"
#include "run_priv.h"
#include "sym.h"

#define LEAK_STOP_WAIT_MS 200
#define LEAK_MAX_GROUPS 50	/* allocation stacks listed per kind and process */

static bool wants_leak_check(const struct run *r, size_t wl)
{
	for (size_t k = 0; k < r->sc->n_inv; k++)
		if (!strcmp(r->sc->inv[k].name, "no_leak") &&
		    (r->sc->inv[k].workload_idx < 0 || (size_t)r->sc->inv[k].workload_idx == wl))
			return true;
	return false;
}

struct leak_group {
	int32_t stack_id;
	uint64_t caller;
	uint64_t bytes, count, example;
};

static int cmp_site(const void *a, const void *b)
{
	const struct leak_block *x = a, *y = b;

	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	return x->caller < y->caller ? -1 : x->caller > y->caller;
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct leak_group *x = a, *y = b;

	return x->bytes > y->bytes ? -1 : x->bytes < y->bytes;
}

/* The blocks in @state, one row per allocation stack, largest first. */
static json_t *groups(struct run *r, struct run_wl *rw, pid_t pid, struct leak_block *b,
		      size_t n, uint8_t state)
{
	struct leak_group *g = calloc(n ? n : 1, sizeof(*g));
	json_t *out = json_array();
	size_t ng = 0;

	if (!g || !out)
		goto out;
	qsort(b, n, sizeof(*b), cmp_site);
	for (size_t k = 0; k < n; k++) {
		if (b[k].state != state)
			continue;
		/* Without a stack the caller alone names the site. */
		if (!ng || g[ng - 1].stack_id != b[k].stack_id ||
		    (b[k].stack_id < 0 && g[ng - 1].caller != b[k].caller))
			g[ng++] = (struct leak_group){.stack_id = b[k].stack_id,
						      .caller = b[k].caller, .example = b[k].addr};
		g[ng - 1].bytes += b[k].size;
		g[ng - 1].count++;
	}
	qsort(g, ng, sizeof(*g), cmp_bytes);
	for (size_t i = 0; i < ng && i < LEAK_MAX_GROUPS; i++) {
		char ex[24];

		snprintf(ex, sizeof(ex), "0x%llx", (unsigned long long)g[i].example);
		json_array_append_new(out, json_pack("{sIsIssso}", "bytes", (json_int_t)g[i].bytes,
			"blocks", (json_int_t)g[i].count, "example", ex,
			"stack", run_heap_stack(r, rw->idx, pid, g[i].stack_id, g[i].caller)));
	}
	if (ng > LEAK_MAX_GROUPS)
		log_info("%s: run %s: pid %d: %zu more allocation stacks not listed", __func__,
			 r->id, (int)pid, ng - LEAK_MAX_GROUPS);
out:
	free(g);
	return out;
}

static json_t *scan_json(const struct leakscan_stats *st)
{
	return json_pack("{sfsIsIsIsIsIsIsIsIsIsIsI}", "ms", st->ms,
			 "threads_registers", (json_int_t)st->threads_regs,
			 "regions", (json_int_t)st->regions,
			 "skipped_regions", (json_int_t)st->skipped_regions,
			 "root_bytes", (json_int_t)st->root_bytes,
			 "heap_bytes", (json_int_t)st->heap_bytes,
			 "block_bytes_scanned", (json_int_t)st->scanned_block_bytes,
			 "threads", (json_int_t)st->threads,
			 "threads_without_sp", (json_int_t)st->threads_no_sp,
			 "blocks", (json_int_t)st->blocks,
			 "reachable", (json_int_t)st->reachable,
			 "stale", (json_int_t)st->stale);
}

/* Every thread's registers if the kernel gives them, else the exiting
 * thread's (the others' stacks are still scanned). */
static int scan(struct probe_exit *hold, const struct leak_exit_event *ev,
		struct leak_block *b, size_t n, struct leakscan_stats *st)
{
	struct leak_thread *th = NULL, self = {.tid = ev->tid, .nregs = ev->nregs, .sp = ev->sp};
	size_t n_th = 0;
	int err;

	memcpy(self.regs, ev->regs, sizeof(self.regs));
	if (probe_exit__threads(hold, (pid_t)ev->tgid, &th, &n_th) || !n_th) {
		free(th);
		th = NULL;
	}
	err = leakscan_run((pid_t)ev->tgid, b, n, th ? th : &self, th ? n_th : 1, st);
	free(th);
	return err;
}

static void on_exit_hold(const struct leak_exit_event *ev, void *arg)
{
	struct run_wl *rw = arg;
	struct run *r = rw->run;
	pid_t pid = (pid_t)ev->tgid;
	struct leakscan_stats st = {0};
	struct leak_block *b = NULL;
	size_t n = 0;
	json_t *j;
	int err;

	probe_wait_stopped(pid, LEAK_STOP_WAIT_MS);
	sym__snapshot(r->sym, pid);
	/* The heap probe's events up to the exit are in its maps already: the
	 * uprobes ran in this process's context before it stopped. */
	err = leakscan_blocks(probe_heap__live_fd(rw->heap), pid, &b, &n);
	if (!err)
		err = scan(rw->exit_hold, ev, b, n, &st);
	j = json_pack("{sssisisissso}", "workload", r->sc->wl[rw->idx].name, "pid", (int)pid,
		      "tid", (int)ev->tid, "exit_status", ev->status, "comm", ev->comm,
		      "scan", scan_json(&st));
	if (j && err) {
		json_object_set_new(j, "error", json_string(strerror(-err)));
	} else if (j) {
		json_object_set_new(j, "direct_bytes", json_integer((json_int_t)st.direct_bytes));
		json_object_set_new(j, "direct_blocks", json_integer((json_int_t)st.direct));
		json_object_set_new(j, "indirect_bytes", json_integer((json_int_t)st.indirect_bytes));
		json_object_set_new(j, "indirect_blocks", json_integer((json_int_t)st.indirect));
		json_object_set_new(j, "direct", groups(r, rw, pid, b, n, LEAK_DIRECT));
		json_object_set_new(j, "indirect", groups(r, rw, pid, b, n, LEAK_INDIRECT));
	}
	if (j) {
		json_object_set_new(j, "at_ms", json_integer((json_int_t)run_ms(r)));
		if (!r->obs.leaks)
			r->obs.leaks = json_array();
		json_array_append_new(r->obs.leaks, j);
	}
	log_info("%s: run %s: pid %d (%s) of '%s' at exit: %zu blocks, %zu direct leaks "
		 "(%llu bytes), %zu indirect, scanned in %.1f ms%s%s", __func__, r->id, (int)pid,
		 ev->comm, r->sc->wl[rw->idx].name, st.blocks, st.direct,
		 (unsigned long long)st.direct_bytes, st.indirect, st.ms, err ? ": " : "",
		 err ? strerror(-err) : "");
	free(b);
	kill(pid, SIGCONT);
}

int run_leak_attach(struct run *r, size_t i, pid_t pid)
{
	struct run_wl *rw = &r->rw[i];

	if (!rw->heap || !wants_leak_check(r, i))
		return 0;
	rw->exit_hold = probe_exit__open(r->base, NULL, on_exit_hold, rw);
	if (!rw->exit_hold)
		return -errno;
	return probe_exit__attach(rw->exit_hold, pid);
}

void run_leak_fork(struct run *r, size_t wl, pid_t child)
{
	int err;

	if (!r->rw[wl].exit_hold)
		return;
	err = probe_exit__attach(r->rw[wl].exit_hold, child);
	if (err)
		log_warn("%s: run %s: child %d of '%s' is not held at exit: %s", __func__, r->id,
			 (int)child, r->sc->wl[wl].name, strerror(-err));
}

void run_leak_exit(struct run *r, size_t wl, pid_t pid)
{
	probe_exit__detach(r->rw[wl].exit_hold, pid);
}

void run_leak_drain(struct run *r)
{
	for (size_t i = 0; i < r->sc->n_wl; i++)
		probe_exit__drain(r->rw[i].exit_hold);
}

void run_leak_destroy(struct run *r)
{
	for (size_t i = 0; r->rw && i < r->sc->n_wl; i++) {
		probe_exit__destroy(r->rw[i].exit_hold);
		r->rw[i].exit_hold = NULL;
	}
}
