/* exit_ok: FAIL when a workload ends by itself with a code not allowed, by a
 * signal, or is killed because its timeout_s passed. Workloads faultd stopped
 * at the end of the run are fine. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "util.h"

int inv_parse_codes(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct inv_exit_ok_params *p = target;
	json_t *item;
	size_t i;

	if (!json_is_array(val) || json_array_size(val) == 0 ||
	    json_array_size(val) > ARRAY_SIZE(p->codes)) {
		sc_error(ctx, false, "expected an array of 1 to %zu exit codes",
			 ARRAY_SIZE(p->codes));
		return -EINVAL;
	}
	json_array_foreach(val, i, item) {
		if (!json_is_integer(item) || json_integer_value(item) < 0 ||
		    json_integer_value(item) > 255) {
			jpath_push_idx(sc_path(ctx), i);
			sc_error(ctx, false, "expected an exit code 0..255");
			jpath_pop(sc_path(ctx));
			return -EINVAL;
		}
		p->codes[p->n_codes++] = json_integer_value(item);
	}
	return 0;
}

static bool code_ok(const struct inv_exit_ok_params *p, int code)
{
	for (size_t i = 0; i < p->n_codes; i++)
		if (p->codes[i] == code)
			return true;
	return false;
}

int inv_exit_ok(const struct run_obs *obs, const struct sc_invariant *inv,
		struct inv_result *res)
{
	const struct inv_exit_ok_params *p = inv->params;
	const struct obs_workload *first = NULL;
	char why[128], first_why[128] = "";

	for (size_t i = 0; i < obs->sc->n_wl; i++) {
		const struct obs_workload *w = &obs->wl[i];
		json_t *ev;

		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != i)
			continue;
		if (!w->started || !w->exited)
			continue;
		if (w->timed_out)
			snprintf(why, sizeof(why), "killed after timeout_s=%g", w->sc->timeout_s);
		else if (w->stopped)
			continue;
		else if (w->signal)
			snprintf(why, sizeof(why), "killed by %s", util_signame(w->signal));
		else if (!code_ok(p, w->exit_status))
			snprintf(why, sizeof(why), "exited with code %d", w->exit_status);
		else
			continue;
		ev = json_pack("{sssisssIsI}", "workload", w->sc->name, "pid", (int)w->pid,
			       "reason", why, "at_ms", (json_int_t)w->t_exit_ms,
			       "cycle", (json_int_t)obs_cycle_at(obs, w->t_exit_ms));
		if (!ev)
			return -ENOMEM;
		if (w->timed_out)
			json_object_set_new(ev, "timed_out", json_true());
		else if (!w->signal)
			json_object_set_new(ev, "exit_code", json_integer(w->exit_status));
		json_array_append_new(res->evidence, ev);
		if (!first || w->t_exit_ms < first->t_exit_ms) {
			first = w;
			snprintf(first_why, sizeof(first_why), "%s", why);
		}
	}
	if (first) {
		res->verdict = V_FAIL;
		res->first_at_ms = first->t_exit_ms;
		res->first_cycle = obs_cycle_at(obs, first->t_exit_ms);
		snprintf(res->summary, sizeof(res->summary), "workload '%s' %s",
			 first->sc->name, first_why);
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "every workload that ended by itself exited with an allowed code");
	}
	return 0;
}
