/* no_residue: after the run's teardown, nothing of it is left on the
 * machine (namespaces, links, DPDK runtime directories, its cgroup, its
 * undo journal). A stale EAL directory is how incident 1's next run hung. */
#include <stdio.h>

#include "inv.h"
#include "inv_params.h"

int inv_no_residue(const struct run_obs *obs, const struct sc_invariant *inv,
		   struct inv_result *res)
{
	const json_t *item;
	size_t i;

	(void)inv;
	if (!obs->residue) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "the machine was not scanned");
		return 0;
	}
	json_array_foreach(obs->residue, i, item)
		json_array_append(res->evidence, (json_t *)item);
	if (json_array_size(obs->residue)) {
		const json_t *first = json_array_get(obs->residue, 0);

		res->verdict = V_FAIL;
		res->first_at_ms = obs->t_end_ms;
		res->first_cycle = obs->n_cycles ? (long)obs->cycles[obs->n_cycles - 1].n : 1;
		snprintf(res->summary, sizeof(res->summary), "%zu thing%s left after teardown, "
			 "first %s %s", json_array_size(obs->residue),
			 json_array_size(obs->residue) > 1 ? "s" : "",
			 json_string_value(json_object_get(first, "kind")),
			 json_string_value(json_object_get(first, "path")));
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary), "nothing of the run left: "
			 "namespaces, links, DPDK runtime dirs, cgroup and journal all gone");
	}
	return 0;
}
