/* fds_stable, sockets_stable, heap_stable: a per-cycle count that trends
 * upward without returning to its baseline (see trend.c and
 * docs/invariants.md). With "object", fds_stable and sockets_stable judge
 * the live objects of one lifecycle kind instead: a user-space stack's
 * socket slots are not kernel fds. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "suppress.h"
#include "trend.h"

static const char *const series_names[] = {
	[INV_S_FDS] = "fds", [INV_S_SOCKETS] = "sockets", [INV_S_HEAP_BYTES] = "heap_bytes",
	[INV_S_OBJECTS] = "objects", [INV_S_COUNTER] = "counter",
};

static bool has_probe(const struct obs_probes *op, enum inv_series field)
{
	return field == INV_S_HEAP_BYTES ? op->heap :
	       field == INV_S_OBJECTS || field == INV_S_COUNTER ? op->life : op->fds;
}

/* @kind: index into obs->life_kinds, for INV_S_OBJECTS. */
static double value_of(const struct obs_sample *s, enum inv_series field, int kind)
{
	switch (field) {
	case INV_S_FDS: return (double)s->fds_total;
	case INV_S_SOCKETS: return (double)s->sockets;
	case INV_S_OBJECTS: return (double)s->live[kind];
	case INV_S_COUNTER: return (double)s->counters[kind];
	default: return (double)s->heap_bytes;
	}
}

static bool valid(const struct obs_sample *s, enum inv_series field)
{
	return field == INV_S_HEAP_BYTES ? s->heap :
	       field == INV_S_OBJECTS || field == INV_S_COUNTER ? s->life : s->fds;
}

static int counter_index(const struct run_obs *obs, const char *name)
{
	return obs_name_index(obs->life_counters, obs->n_life_counters, name);
}

static int kind_index(const struct run_obs *obs, const char *kind)
{
	return obs_name_index(obs->life_kinds, obs->n_life_kinds, kind);
}

/* Leaked objects hold memory: the live heap over the cycles judged (from
 * @from_cycle, after warm-up), and where it grew, go beside an object
 * count's evidence. */
static void heap_alongside(const struct run_obs *obs, size_t w, unsigned from_cycle, json_t *ev)
{
	const struct obs_sample *first = NULL, *last = NULL;
	unsigned first_c = 0, last_c = 0;
	json_t *heap;

	for (size_t c = 0; c < obs->n_cycles; c++) {
		const struct obs_sample *s = obs_sample_at(obs, c, w);

		if (!s->heap || obs->cycles[c].n < from_cycle)
			continue;
		if (!first) {
			first = s;
			first_c = obs->cycles[c].n;
		}
		last = s;
		last_c = obs->cycles[c].n;
	}
	if (!first || last_c == first_c)
		return;
	heap = json_pack("{sIsIsisisf}", "from_bytes", (json_int_t)first->heap_bytes,
			 "to_bytes", (json_int_t)last->heap_bytes, "from_cycle", (int)first_c,
			 "to_cycle", (int)last_c, "bytes_per_cycle",
			 (double)(last->heap_bytes - first->heap_bytes) / (double)(last_c - first_c));
	if (heap && obs->probes[w].heap_sites)
		json_object_set_new(heap, "top_growing_sites",
				    json_incref(obs->probes[w].heap_sites));
	if (heap)
		json_object_set_new(ev, "heap", heap);
}

/* Judge one workload; 1 if it fails, 0 if not, -1 if it cannot be judged. */
static int judge(const struct run_obs *obs, size_t w, enum inv_series field,
		 const struct inv_trend_params *p, struct inv_result *res, json_t **ev_out,
		 long *first_cycle)
{
	int kind = field == INV_S_COUNTER ? counter_index(obs, p->counter)
					  : kind_index(obs, p->object);
	const char *series = field == INV_S_OBJECTS ? p->object :
			     field == INV_S_COUNTER ? p->counter : series_names[field];
	const struct obs_probes *op = &obs->probes[w];
	struct trend_params tp;
	struct trend_result tr;
	double *xs;
	unsigned *cyc;
	json_t *ev, *vals;
	int n = 0, verdict;

	xs = calloc(obs->n_cycles ? obs->n_cycles : 1, sizeof(*xs));
	cyc = calloc(obs->n_cycles ? obs->n_cycles : 1, sizeof(*cyc));
	if (!xs || !cyc) {
		free(xs);
		free(cyc);
		return -1;
	}
	for (size_t c = 0; c < obs->n_cycles; c++) {
		const struct obs_sample *s = obs_sample_at(obs, c, w);

		if (!valid(s, field))
			continue;
		xs[n] = value_of(s, field, kind);
		cyc[n++] = obs->cycles[c].n;
	}
	trend_defaults(&tp);
	tp.warmup = (int)p->warmup_cycles;
	tp.window = (int)p->window;
	tp.min_slope = p->min_slope;
	tp.min_rising = p->min_rising;
	tp.tolerance = p->tolerance;
	tp.limit = p->limit;
	trend_eval(xs, n, &tp, &tr);
	verdict = !tr.enough ? -1 : tr.fail ? 1 : 0;
	ev = json_pack("{sssssisfsfsfsf}", "workload", obs->sc->wl[w].name,
		       "series", series, "cycles", n,
		       "slope_per_cycle", tr.slope, "rising_fraction", tr.rising,
		       "baseline", tr.baseline, "last", tr.last);
	vals = json_array();
	for (int i = tr.window_start; ev && vals && i < n; i++)
		json_array_append_new(vals, json_pack("{sisf}", "cycle", (int)cyc[i],
						      "value", xs[i]));
	if (ev) {
		json_object_set_new(ev, "window", vals ? vals : json_array());
		if (tr.fail && tr.first_fail >= 0) {
			*first_cycle = cyc[tr.first_fail];
			json_object_set_new(ev, "first_violation_cycle",
					    json_integer(cyc[tr.first_fail]));
		}
		if (tr.exhausted >= 0) {
			json_object_set_new(ev, "limit_reached_cycle",
					    json_integer(cyc[tr.exhausted]));
			json_object_set_new(ev, "slope_when_found_per_cycle",
					    json_real(tr.first_slope));
		}
		if (tr.fail && p->limit > 0 && tr.exhausted < 0) {
			long proj = tr.projected < 0 ? -1 : (long)cyc[n - 1] +
				    (long)(tr.projected - (double)(n - 1));

			json_object_set_new(ev, "limit", json_real(p->limit));
			json_object_set_new(ev, "projected_exhaustion_cycle", json_integer(proj));
		}
		if (field == INV_S_HEAP_BYTES && op->heap_sites)
			json_object_set_new(ev, "top_growing_sites", json_incref(op->heap_sites));
		if (field == INV_S_OBJECTS && op->heap)
			heap_alongside(obs, w, cyc[0], ev);
		if ((field == INV_S_FDS || field == INV_S_SOCKETS) && op->fd_calls)
			json_object_set_new(ev, "calls", json_incref(op->fd_calls));
	}
	if (verdict == 1 && !res->summary[0]) {
		char proj[96] = "";

		if (p->limit > 0 && json_is_integer(json_object_get(ev, "projected_exhaustion_cycle")))
			snprintf(proj, sizeof(proj), "; at this rate %g is reached at cycle %lld",
				 p->limit, json_integer_value(json_object_get(ev,
								"projected_exhaustion_cycle")));
		if (tr.exhausted >= 0)
			snprintf(res->summary, sizeof(res->summary),
				 "%s of '%s' grew %+.1f/cycle from cycle %u and reached the limit "
				 "%g at cycle %u (%g at cycle %u); it stays there", series,
				 obs->sc->wl[w].name, tr.first_slope, cyc[tr.first_fail], p->limit,
				 cyc[tr.exhausted], tr.baseline, cyc[p->warmup_cycles < n ?
								     p->warmup_cycles : 0]);
		else
			snprintf(res->summary, sizeof(res->summary),
				 "%s of '%s' grow %+.1f/cycle (%g -> %g over cycles %u-%u), never "
				 "back to %g%s", series, obs->sc->wl[w].name, tr.slope, tr.first,
				 tr.last, cyc[tr.window_start], cyc[n - 1], tr.baseline, proj);
	}
	*ev_out = ev;
	free(xs);
	free(cyc);
	return verdict;
}

/* The rule that silences a failed trend, or NULL. heap_stable: every
 * allocation site that grew matches a "heap:" rule (the fd probe keeps no
 * stacks, so "fd:" rules match the workload's name or program). */
static const char *trend_suppressed(const struct run_obs *obs, size_t w, enum inv_series field,
				    const struct suppress *s, const json_t *ev)
{
	const char *rule = NULL;

	if (field == INV_S_HEAP_BYTES) {
		const json_t *site;
		size_t i;

		json_array_foreach(json_object_get(ev, "top_growing_sites"), i, site) {
			const char *r;

			if (json_integer_value(json_object_get(site, "growth_bytes")) <= 0)
				continue;
			r = suppress_match_stack(s, "heap", json_object_get(site, "stack"));
			if (!r)
				return NULL;
			rule = r;
		}
	} else if (field == INV_S_FDS || field == INV_S_SOCKETS) {
		const struct sc_workload *wl = &obs->sc->wl[w];
		const char *names[3] = {wl->name, wl->cmd ? wl->cmd[0] : NULL, NULL};

		rule = suppress_match_names(s, "fd", names);
	}
	return rule;
}

int inv_trend(const struct run_obs *obs, const struct sc_invariant *inv,
	      enum inv_series field, struct inv_result *res)
{
	const struct inv_trend_params *p = inv->params;
	char err[512] = "";
	struct suppress *s = NULL;
	int judged = 0, failed = 0, short_runs = 0, suppressed = 0;
	unsigned long long lost = 0;
	size_t uncovered = 0;	/* 1 + the first workload the heap probe saw too little of */

	if (field == INV_S_COUNTER && counter_index(obs, p->counter) < 0) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "counter '%s' was not sampled",
			 p->counter);
		return 0;
	}
	if (p->object) {
		field = INV_S_OBJECTS;
		if (kind_index(obs, p->object) < 0) {
			res->verdict = V_INCONCLUSIVE;
			snprintf(res->summary, sizeof(res->summary), "objects '%s' were not "
				 "counted (at most %d kinds per run)", p->object, INV_MAX_KINDS);
			return 0;
		}
	}
	if (field != INV_S_COUNTER && field != INV_S_OBJECTS)
		s = inv_suppressions(obs, inv, err, sizeof(err));
	if (err[0]) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "suppressions: %.200s", err);
		return 0;
	}
	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		const struct obs_probes *op = &obs->probes[w];
		long first = -1;
		json_t *ev = NULL;
		int v;

		if (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w)
			continue;
		if (!has_probe(op, field))
			continue;
		lost += field == INV_S_HEAP_BYTES ? op->heap_lost :
			field == INV_S_OBJECTS || field == INV_S_COUNTER ? op->life_lost :
			op->fds_lost;
		if (field == INV_S_HEAP_BYTES && op->heap_uncovered[0] && !uncovered)
			uncovered = w + 1;
		v = judge(obs, w, field, p, res, &ev, &first);
		if (v == 1 && s && trend_suppressed(obs, w, field, s, ev)) {
			inv_mark_suppressed(ev, trend_suppressed(obs, w, field, s, ev));
			json_array_append(res->evidence, ev);
			suppressed++;
			if (!failed)
				res->summary[0] = '\0';	/* judge wrote the failure's */
			v = 0;
		}
		if (v == 1) {
			failed++;
			json_array_append(res->evidence, ev);
			if (first > 0 && (res->first_cycle < 0 || first < res->first_cycle)) {
				res->first_cycle = first;
				res->first_at_ms = obs->cycles[first - 1].t_end_ms;
			}
		}
		json_decref(ev);
		judged += v >= 0;
		short_runs += v < 0;
	}
	if (failed) {
		res->verdict = V_FAIL;
	} else if (uncovered) {
		/* What the probes did not see may be what grows. */
		res->verdict = V_INCONCLUSIVE;
		inv_heap_uncovered(obs, uncovered - 1, res);
	} else if (!judged || lost) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary), "%s",
			 lost ? "the probe lost events: a trend cannot be ruled out"
			      : short_runs ? "too few cycles after warm-up to judge a trend"
					   : "no workload has the probe this needs");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary), "%s stable over %zu cycles%s",
			 field == INV_S_OBJECTS ? p->object : field == INV_S_COUNTER ? p->counter :
			 series_names[field], obs->n_cycles,
			 suppressed ? ", but for suppressed growth (see evidence)" : "");
	}
	suppress_free(s);
	return 0;
}

int inv_fds_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		   struct inv_result *res)
{
	return inv_trend(obs, inv, INV_S_FDS, res);
}

int inv_sockets_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		       struct inv_result *res)
{
	return inv_trend(obs, inv, INV_S_SOCKETS, res);
}

int inv_counter_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		       struct inv_result *res)
{
	return inv_trend(obs, inv, INV_S_COUNTER, res);
}

int inv_heap_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		    struct inv_result *res)
{
	return inv_trend(obs, inv, INV_S_HEAP_BYTES, res);
}
