/* lifecycle: FAIL on an event or a destroy that reaches a destroyed object
 * (naming the kind, id, event and both threads), an object created twice,
 * and objects left alive when the workload exited by itself (not a crash). */
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

int inv_lifecycle(const struct run_obs *obs, const struct sc_invariant *inv,
		  struct inv_result *res)
{
	const struct inv_lifecycle_params *p = inv->params;
	const json_t *first = NULL, *first_alive = NULL, *ev;
	size_t i, alive = 0;
	bool attached = false;
	unsigned long long lost = 0;

	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w)
			continue;
		attached |= obs->probes[w].life;
		lost += obs->probes[w].life_lost;
	}
	json_array_foreach(obs->life_events, i, ev) {
		if (!selected(inv, obs, ev))
			continue;
		json_array_append(res->evidence, (json_t *)ev);
		if (!first)
			first = ev;
	}
	if (!p->alive_at_end) {
		json_array_foreach(obs->life_alive, i, ev) {
			if (!selected(inv, obs, ev) ||
			    !obs_wl_exited_by_itself(obs, scenario_workload_idx(obs->sc,
					json_string_value(json_object_get(ev, "workload")))))
				continue;
			json_t *copy = json_deep_copy(ev);

			json_object_set_new(copy, "kind", json_string("alive_at_end"));
			json_array_append_new(res->evidence, copy);
			if (!alive++)
				first_alive = copy;
		}
	}
	if (first) {
		const json_t *dtid = json_object_get(first, "destroyed_tid");

		res->verdict = V_FAIL;
		res->first_at_ms = (uint64_t)json_integer_value(json_object_get(first, "at_ms"));
		res->first_cycle = obs_cycle_at(obs, res->first_at_ms);
		if (json_is_integer(dtid))
			snprintf(res->summary, sizeof(res->summary),
				 "%s %lld: %s '%s' on tid %lld after tid %lld destroyed it",
				 json_string_value(json_object_get(first, "object_kind")),
				 json_integer_value(json_object_get(first, "id")),
				 json_string_value(json_object_get(first, "kind")),
				 json_string_value(json_object_get(first, "event")),
				 json_integer_value(json_object_get(first, "tid")),
				 json_integer_value(dtid));
		else
			snprintf(res->summary, sizeof(res->summary), "%s %lld: %s '%s' on tid %lld",
				 json_string_value(json_object_get(first, "object_kind")),
				 json_integer_value(json_object_get(first, "id")),
				 json_string_value(json_object_get(first, "kind")),
				 json_string_value(json_object_get(first, "event")),
				 json_integer_value(json_object_get(first, "tid")));
	} else if (alive) {
		res->verdict = V_FAIL;
		res->first_at_ms = obs->t_end_ms;
		res->first_cycle = obs_cycle_at(obs, obs->t_end_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "%zu objects still alive when the workload exited (%s %lld%s)", alive,
			 json_string_value(json_object_get(first_alive, "object_kind")),
			 json_integer_value(json_object_get(first_alive, "id")),
			 alive > 1 ? " and more in evidence" : "");
	} else if (!attached || lost) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "%s",
			 lost ? "the lifecycle probe lost events"
			      : "no faultd USDT probes found in the workload");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "no event reached a destroyed object");
	}
	return 0;
}
