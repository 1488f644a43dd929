/* no_invalid_free: FAIL on a double free or a free of a pointer that was
 * never allocated, with the address, both frees' stacks and the thread. A
 * pointer never allocated that was read from a freed block (a use after
 * free) names that block's free too: the free that released it. */
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "suppress.h"

static bool selected(const struct sc_invariant *inv, const struct run_obs *obs,
		     const char *wname)
{
	return inv->workload_idx < 0 || !strcmp(obs->sc->wl[inv->workload_idx].name, wname);
}

/* The first frame of @stack past the allocator's own (frame 0, where the
 * probe fired, when the whole stack was taken) and outside the C library:
 * the free's caller. */
static const char *caller_frame(const json_t *stack)
{
	const char *f = NULL;
	size_t i;
	json_t *frame;

	json_array_foreach(stack, i, frame) {
		f = json_string_value(frame);
		if (f && (i > 0 || json_array_size(stack) == 1) && !strstr(f, "[libc.so"))
			break;
		f = NULL;
	}
	return f;
}

void inv_heap_uncovered(const struct run_obs *obs, size_t w, struct inv_result *res)
{
	const struct obs_probes *op = &obs->probes[w];

	snprintf(res->summary, sizeof(res->summary), "workload '%s': %.200s",
		 obs->sc->wl[w].name, op->heap_uncovered);
	json_array_append_new(res->evidence, json_pack("{sssssssO?}", "kind", "heap_coverage",
		"workload", obs->sc->wl[w].name, "why", op->heap_uncovered,
		"coverage", op->heap_coverage));
}

int inv_no_invalid_free(const struct run_obs *obs, const struct sc_invariant *inv,
			struct inv_result *res)
{
	unsigned long long allocs = 0, frees = 0, lost = 0, suppressed = 0;
	size_t uncovered = 0;	/* 1 + the first workload the probe saw too little of */
	const json_t *first = NULL, *ev;
	char err[512];
	struct suppress *s = inv_suppressions(obs, inv, err, sizeof(err));
	size_t i;

	if (err[0]) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "suppressions: %.200s", err);
		return 0;
	}
	json_array_foreach(obs->heap_events, i, ev) {
		const json_t *stack = json_object_get(ev, "stack");
		const char *rule = NULL;

		if (!selected(inv, obs, json_string_value(json_object_get(ev, "workload"))))
			continue;
		if (!strcmp(json_string_value(json_object_get(ev, "kind")), "double_free"))
			rule = suppress_match_stack(s, "double_free", stack);
		if (!rule)
			rule = suppress_match_stack(s, "invalid_free", stack);
		if (rule) {
			json_t *copy = json_deep_copy(ev);

			inv_mark_suppressed(copy, rule);
			json_array_append_new(res->evidence, copy);
			suppressed++;
			continue;
		}
		json_array_append(res->evidence, (json_t *)ev);
		if (!first)
			first = ev;
	}
	suppress_free(s);
	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w)
			continue;
		allocs += obs->probes[w].heap_allocs;
		frees += obs->probes[w].heap_frees;
		lost += obs->probes[w].heap_lost;
		if (obs->probes[w].heap && obs->probes[w].heap_uncovered[0] && !uncovered)
			uncovered = w + 1;
	}
	if (first) {
		const json_t *stack = json_object_get(first, "stack");
		const char *caller = caller_frame(stack);
		const json_t *src = json_object_get(first, "read_from_freed");
		const char *freer = caller_frame(json_object_get(src, "stack"));
		char from[128] = "";

		if (src && freer)
			snprintf(from, sizeof(from), ", read from a %lld-byte block freed by %s",
				 json_integer_value(json_object_get(src, "size")), freer);
		res->verdict = V_FAIL;
		res->first_at_ms = (uint64_t)json_integer_value(json_object_get(first, "at_ms"));
		res->first_cycle = obs_cycle_at(obs, res->first_at_ms);
		snprintf(res->summary, sizeof(res->summary), "%s of %s%s in pid %lld (%s) of '%s'%s%s%s",
			 !strcmp(json_string_value(json_object_get(first, "kind")), "double_free")
			 ? "double free" : "free of a pointer never allocated",
			 json_string_value(json_object_get(first, "address")), from,
			 json_integer_value(json_object_get(first, "pid")),
			 json_string_value(json_object_get(first, "comm")),
			 json_string_value(json_object_get(first, "workload")),
			 caller ? " from " : "", caller ? caller : "",
			 json_array_size(res->evidence) > 1 ? "; more in evidence" : "");
	} else if (uncovered) {
		/* "0 allocations tracked, no invalid free" of a program whose
		 * allocator was not probed is no assurance. */
		res->verdict = V_INCONCLUSIVE;
		inv_heap_uncovered(obs, uncovered - 1, res);
	} else if (lost) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary),
			 "%llu heap events or blocks were not tracked: an invalid free may "
			 "have gone unseen", lost);
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "%llu allocations and %llu frees tracked, no invalid free%s", allocs, frees,
			 suppressed ? " but suppressed ones (see evidence)" : "");
	}
	return 0;
}
