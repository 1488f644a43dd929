/* no_leak: LeakSanitizer's check at exit on an unmodified binary. Every
 * process of the workload was held at _exit and its live blocks judged
 * reachable or not (run_leak.c, leakscan.c); FAIL lists the direct leaks
 * by allocation stack, as LSan prints them, unless below min_bytes or
 * suppressed ("leak:" rules). Indirect leaks (reachable only from leaked
 * blocks) are listed, never judged on their own: their direct leak is. */
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "suppress.h"

struct leak_tally {
	unsigned scanned, errors;
	unsigned long long fail_bytes, fail_blocks, fail_stacks, suppressed, below;
	unsigned long long indirect_bytes, indirect_blocks, live_blocks;
	const json_t *first;		/* the largest failing group */
	const json_t *first_rec;
};

static const char *site_of(const json_t *stack)
{
	const char *f = json_string_value(json_array_get(stack, 0));

	return f ? f : "an unknown site";
}

/* Judge one process's record; @ev is its copy in the evidence. */
static void judge(const struct inv_no_leak_params *p, const struct suppress *s,
		  const json_t *rec, json_t *ev, struct leak_tally *t)
{
	json_t *direct = json_object_get(ev, "direct"), *g;
	unsigned long long below = 0;
	size_t i;

	t->scanned++;
	if (json_object_get(rec, "error")) {
		t->errors++;
		return;
	}
	t->live_blocks += (unsigned long long)json_integer_value(
		json_object_get(json_object_get(rec, "scan"), "blocks"));
	t->indirect_bytes += (unsigned long long)json_integer_value(
		json_object_get(rec, "indirect_bytes"));
	t->indirect_blocks += (unsigned long long)json_integer_value(
		json_object_get(rec, "indirect_blocks"));
	json_array_foreach(direct, i, g) {
		long long bytes = json_integer_value(json_object_get(g, "bytes"));
		const char *rule = suppress_match_stack(s, "leak", json_object_get(g, "stack"));

		if (bytes < p->min_bytes) {
			json_object_set_new(g, "below_min_bytes", json_true());
			below++;
		} else if (rule) {
			inv_mark_suppressed(g, rule);
			t->suppressed++;
		} else {
			t->fail_bytes += (unsigned long long)bytes;
			t->fail_blocks += (unsigned long long)json_integer_value(
				json_object_get(g, "blocks"));
			t->fail_stacks++;
			if (!t->first || bytes > json_integer_value(json_object_get(t->first, "bytes"))) {
				t->first = g;
				t->first_rec = ev;
			}
		}
	}
	t->below += below;
}

int inv_no_leak(const struct run_obs *obs, const struct sc_invariant *inv,
		struct inv_result *res)
{
	const struct inv_no_leak_params *p = inv->params;
	struct leak_tally t = {0};
	unsigned long long lost = 0;
	size_t uncovered = 0;	/* 1 + the first workload the heap probe saw too little of */
	char err[512], extra[96] = "";
	struct suppress *s = inv_suppressions(obs, inv, err, sizeof(err));
	const json_t *rec;
	size_t i;

	if (err[0]) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "suppressions: %.200s", err);
		return 0;
	}
	json_array_foreach(obs->leaks, i, rec) {
		const char *w = json_string_value(json_object_get(rec, "workload"));
		json_t *ev;

		if (inv->workload_idx >= 0 && strcmp(obs->sc->wl[inv->workload_idx].name, w))
			continue;
		ev = json_deep_copy(rec);
		if (!ev)
			continue;
		judge(p, s, rec, ev, &t);
		json_array_append_new(res->evidence, ev);
	}
	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w)
			continue;
		lost += obs->probes[w].heap_lost;
		if (obs->probes[w].heap && obs->probes[w].heap_uncovered[0] && !uncovered)
			uncovered = w + 1;
	}
	if (t.suppressed || t.below)
		snprintf(extra, sizeof(extra), " (%llu stacks suppressed, %llu below min_bytes)",
			 t.suppressed, t.below);
	if (t.first && !lost) {
		res->verdict = V_FAIL;
		res->first_at_ms = (uint64_t)json_integer_value(json_object_get(t.first_rec, "at_ms"));
		res->first_cycle = obs_cycle_at(obs, res->first_at_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "%llu bytes leaked in %llu blocks from %llu allocation stacks at exit, the "
			 "largest %lld bytes from %s in pid %lld of '%s'; %llu bytes indirectly%s",
			 t.fail_bytes, t.fail_blocks, t.fail_stacks,
			 json_integer_value(json_object_get(t.first, "bytes")),
			 site_of(json_object_get(t.first, "stack")),
			 json_integer_value(json_object_get(t.first_rec, "pid")),
			 json_string_value(json_object_get(t.first_rec, "workload")),
			 t.indirect_bytes, extra);
	} else if (uncovered) {
		/* No block tracked is no block leaked only if the allocator
		 * was probed. */
		res->verdict = V_INCONCLUSIVE;
		inv_heap_uncovered(obs, uncovered - 1, res);
	} else if (t.first || lost) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "%llu heap events or blocks were not "
			 "tracked: a block may be reachable only through one, or leaked unseen",
			 lost);
	} else if (!t.scanned || t.errors) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "%s",
			 t.errors ? "a process held at exit could not be read (see evidence)"
				  : "no process of the workload ended by exit or a return from "
				    "main: there was no exit to check at");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary), "%u processes checked at exit: no "
			 "direct leak among %llu live blocks%s", t.scanned, t.live_blocks, extra);
	}
	suppress_free(s);
	return 0;
}
