/* msg_integrity: FAIL when a message is received twice (a stale pointer
 * dequeued again), received but never sent, received after a newer one of
 * its queue, or (when the workload exited by itself, not by a crash) never
 * received. */
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"

static bool selected(const struct sc_invariant *inv, const struct run_obs *obs,
		     const json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "workload"));

	return inv->workload_idx < 0 || !strcmp(obs->sc->wl[inv->workload_idx].name, name);
}

int inv_msg_integrity(const struct run_obs *obs, const struct sc_invariant *inv,
		      struct inv_result *res)
{
	const struct inv_msg_params *p = inv->params;
	const json_t *first = NULL, *ev;
	size_t i, lost = 0;
	bool attached = false;
	unsigned long long missed = 0;

	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w)
			continue;
		attached |= obs->probes[w].life;
		missed += obs->probes[w].life_lost;
	}
	json_array_foreach(obs->msg_events, i, ev) {
		if (!selected(inv, obs, ev))
			continue;
		json_array_append(res->evidence, (json_t *)ev);
		if (!first)
			first = ev;
	}
	json_array_foreach(obs->msg_lost, i, ev) {
		int w = scenario_workload_idx(obs->sc,
					      json_string_value(json_object_get(ev, "workload")));

		if (!p->lost || !selected(inv, obs, ev) || !obs_wl_exited_by_itself(obs, w))
			continue;
		json_t *copy = json_deep_copy(ev);

		json_object_set_new(copy, "kind", json_string("lost"));
		json_array_append_new(res->evidence, copy);
		lost++;
	}
	if (first) {
		res->verdict = V_FAIL;
		res->first_at_ms = (uint64_t)json_integer_value(json_object_get(first, "at_ms"));
		res->first_cycle = obs_cycle_at(obs, res->first_at_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "message %lld of queue %lld %s (ptr %s, tid %lld)%s",
			 json_integer_value(json_object_get(first, "seq")),
			 json_integer_value(json_object_get(first, "queue")),
			 !strcmp(json_string_value(json_object_get(first, "kind")), "duplicate")
			 ? "received twice" : json_string_value(json_object_get(first, "kind")),
			 json_string_value(json_object_get(first, "ptr")),
			 json_integer_value(json_object_get(first, "tid")),
			 json_array_size(res->evidence) > 1 ? "; more in evidence" : "");
	} else if (lost) {
		res->verdict = V_FAIL;
		res->first_at_ms = obs->t_end_ms;
		res->first_cycle = obs_cycle_at(obs, obs->t_end_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "%zu messages sent and never received before the workload exited",
			 lost);
	} else if (!attached || missed) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "%s",
			 missed ? "the lifecycle probe lost events"
				: "no faultd USDT probes found in the workload");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "every message received once, in order");
	}
	return 0;
}
