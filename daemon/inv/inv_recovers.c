/* recovers: after every outage of a link (a down, then an up), each watched
 * workload makes progress within within_ms: prints a line on stdout, or, with
 * "counter", raises that FAULTD_COUNTER (a client that keeps printing
 * "connect failed" is not recovering). A link that never comes back fails
 * too. FAIL names the cycle and the link. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"

struct outage {
	const char *link;
	uint64_t down, up;	/* up: UINT64_MAX if it stayed down */
	long cycle;
};

#define MAX_OUTAGES 65536

/* First progress of @w after @t, or UINT64_MAX: output, or a rise of
 * @counter. */
static uint64_t progress_after(const struct obs_workload *w, uint64_t t, const char *counter)
{
	long long last = 0;
	bool seen = false;

	for (size_t i = 0; !counter && i < w->n_out_times; i++)
		if (w->out_times[i] > t)
			return w->out_times[i];
	for (size_t i = 0; counter && i < w->n_counters; i++) {
		const struct obs_counter *c = &w->counters[i];

		if (strcmp(c->name, counter))
			continue;
		if (c->t_ms > t && (!seen || c->value > last))
			return c->t_ms;
		last = c->value;
		seen = true;
	}
	return UINT64_MAX;
}

static size_t outages(const struct run_obs *obs, struct outage *out)
{
	const json_t *e;
	size_t i, n = 0;

	json_array_foreach(obs->faults, i, e) {
		const char *act = json_string_value(json_object_get(e, "action"));
		const char *link = json_string_value(json_object_get(e, "target"));
		uint64_t t = (uint64_t)json_integer_value(json_object_get(e, "t_actual_ms"));

		if (!act || !link)
			continue;
		if (!strcmp(act, "link_down") && n < MAX_OUTAGES) {
			json_t *cyc = json_object_get(e, "cycle");

			out[n++] = (struct outage){link, t, UINT64_MAX,
						   cyc ? (long)json_integer_value(cyc) : 0};
		} else if (!strcmp(act, "link_up")) {
			for (size_t k = n; k-- > 0;)
				if (!strcmp(out[k].link, link) && out[k].up == UINT64_MAX) {
					out[k].up = t;
					break;
				}
		}
	}
	return n;
}

int inv_recovers(const struct run_obs *obs, const struct sc_invariant *inv,
		 struct inv_result *res)
{
	const struct inv_recovers_params *p = inv->params;
	struct outage *list = calloc(MAX_OUTAGES, sizeof(*list));
	size_t n, fails = 0;
	uint64_t worst = 0;

	if (!list)
		return -ENOMEM;
	n = outages(obs, list);

	for (size_t k = 0; k < n; k++) {
		const struct outage *o = &list[k];
		long cycle = o->cycle ? o->cycle : (long)obs_cycle_at(obs, o->down);

		for (size_t w = 0; w < obs->sc->n_wl; w++) {
			const struct obs_workload *wl = &obs->wl[w];
			uint64_t from = o->up == UINT64_MAX ? o->down : o->up, got;
			char why[160];
			json_t *ev;

			if (inv->workload_idx >= 0 ? (size_t)inv->workload_idx != w : wl->sc->service)
				continue;
			/* A workload already gone, or the run ending within the
			 * bound, cannot be judged on this outage. */
			if (!wl->started || (wl->exited && wl->t_exit_ms <= from + (uint64_t)p->within_ms) ||
			    (o->up != UINT64_MAX && obs->t_end_ms < o->up + (uint64_t)p->within_ms))
				continue;
			got = progress_after(wl, from, p->counter);
			if (o->up != UINT64_MAX && got != UINT64_MAX &&
			    got - o->up <= (uint64_t)p->within_ms) {
				worst = got - o->up > worst ? got - o->up : worst;
				continue;
			}
			if (o->up == UINT64_MAX && got != UINT64_MAX)
				continue;	/* it got on without the link */
			if (o->up == UINT64_MAX)
				snprintf(why, sizeof(why), "link '%s' went down at %.1fs and never "
					 "came back; no progress after it", o->link, o->down / 1000.0);
			else
				snprintf(why, sizeof(why), "no progress%s%s within %lldms after link "
					 "'%s' came back at %.1fs", p->counter ? " of counter " : "",
					 p->counter ? p->counter : "", p->within_ms, o->link,
					 o->up / 1000.0);
			ev = json_pack("{sssisssIss}", "workload", wl->sc->name, "cycle", (int)cycle,
				       "link", o->link, "down_at_ms", (json_int_t)o->down, "reason", why);
			if (ev && o->up != UINT64_MAX)
				json_object_set_new(ev, "up_at_ms", json_integer((json_int_t)o->up));
			if (ev && got != UINT64_MAX)
				json_object_set_new(ev, "next_progress_ms", json_integer((json_int_t)got));
			/* What it was saying instead: "create socket failed". */
			if (ev && wl->last_output)
				json_object_set_new(ev, "last_output", json_incref(wl->last_output));
			json_array_append_new(res->evidence, ev);
			if (!fails++) {
				res->first_cycle = cycle;
				res->first_at_ms = from;
				snprintf(res->summary, sizeof(res->summary), "cycle %ld: workload '%s': %s",
					 cycle, wl->sc->name, why);
			}
		}
	}
	if (fails) {
		res->verdict = V_FAIL;
	} else if (n == 0) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "no link outage to recover from");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "recovered from all %zu outages; slowest %llums after the link came back",
			 n, (unsigned long long)worst);
	}
	free(list);
	return 0;
}
