/* faultctl shrink's candidates: a schedule cut into units, a candidate
 * (the units it keeps, the fault definitions, its tail) written as a
 * scenario, and the steps of the parameter phase. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shrink_priv.h"
#include "util.h"

/* --- units ------------------------------------------------------------------ */

static bool opens(const char *a)
{
	return !strcmp(a, "link_down") || !strcmp(a, "pause") || strstr(a, "_on");
}

static bool closes(const char *a)
{
	return !strcmp(a, "link_up") || !strcmp(a, "resume") || !strcmp(a, "cycle_end") ||
	       strstr(a, "_off");
}

/* Group a schedule into units, in time order of their first action: a
 * cycle's actions (down, up, cycle end) by fault and cycle; otherwise an
 * opening action starts a unit of its fault and the closing one joins it;
 * anything else stands alone. */
json_t *shrink_make_units(const json_t *sched)
{
	json_t *units = json_array(), *open = json_object(), *e;
	size_t i;

	json_array_foreach(sched, i, e) {
		char key[48];
		const char *a = jstr(e, "action") ?: "";
		json_t *entry = json_deep_copy(e), *u;
		json_int_t cycle = jint(e, "cycle");

		if (cycle)
			snprintf(key, sizeof(key), "%lld:%lld", (long long)jint(e, "fault"),
				 (long long)cycle);
		else
			snprintf(key, sizeof(key), "%lld", (long long)jint(e, "fault"));
		json_object_set_new(entry, "seq", json_integer((json_int_t)i));
		u = json_object_get(open, key);
		if (u && (cycle || closes(a))) {
			json_array_append_new(json_object_get(u, "entries"), entry);
			if (!cycle)
				json_object_del(open, key);
			continue;
		}
		u = json_pack("{sIsIs[o]}", "fault", jint(e, "fault"), "t0", jint(e, "at_ms"),
			      "entries", entry);
		json_array_append_new(units, u);
		if (cycle || opens(a))
			json_object_set(open, key, u);
	}
	json_decref(open);
	return units;
}

/* Kind of a unit for the summary: "link_flap outage", "pause", ... */
const char *shrink_unit_kind(const struct shrink *s, const json_t *u)
{
	return jstr(json_array_get(s->faults, (size_t)jint(u, "fault")), "type") ?: "?";
}

/* --- candidates -------------------------------------------------------------- */

/* A candidate: the units it keeps (copies, times may have moved), the fault
 * definitions (parameters may have changed) and its tail. */
json_t *shrink_cand_new(const json_t *units, const json_t *faults, json_int_t tail)
{
	return json_pack("{sOsOsI}", "units", units, "faults", faults, "tail_ms", tail);
}

json_t *shrink_cand_with_units(const json_t *cand, json_t *units)
{
	json_t *c = json_deep_copy(cand);

	json_object_set_new(c, "units", units);
	return c;
}

static int cmp_entry(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t ta = jint(x, "at_ms"), tb = jint(y, "at_ms");

	if (ta != tb)
		return ta < tb ? -1 : 1;
	return jint(x, "seq") < jint(y, "seq") ? -1 : jint(x, "seq") > jint(y, "seq");
}

static bool is_window_type(const char *t)
{
	return !strcmp(t, "packet") || !strcmp(t, "rate") || !strcmp(t, "delay") ||
	       !strcmp(t, "cpu_hog") || !strcmp(t, "syscall_error");
}

/* syscall_error other than socket(): a seccomp filter fixed at exec, no
 * window to move and no rate to change. */
bool shrink_is_fixed(const json_t *f)
{
	const char *call = jstr(f, "syscall");

	return !strcmp(jstr(f, "type") ?: "", "syscall_error") && call && strcmp(call, "socket");
}

json_int_t shrink_cand_last_at(const json_t *cand)
{
	const json_t *u, *e;
	json_int_t last = 0;
	size_t i, k;

	json_array_foreach(json_object_get(cand, "units"), i, u)
		json_array_foreach(json_object_get(u, "entries"), k, e)
			if (jint(e, "at_ms") > last)
				last = jint(e, "at_ms");
	return last;
}

/* Kept units move earlier together, so that the first starts where the
 * original's first did: the time between them (their overlaps) stays, the
 * idle time before them goes. */
static json_int_t cand_shift(const struct shrink *s, const json_t *cand)
{
	const json_t *u;
	json_int_t first = -1, orig = jint(json_array_get(s->units, 0), "t0");
	size_t i;

	json_array_foreach(json_object_get(cand, "units"), i, u)
		if (first < 0 || jint(u, "t0") < first)
			first = jint(u, "t0");
	return first > orig ? first - orig : 0;
}

static json_int_t cand_end_ms(const struct shrink *s, const json_t *cand)
{
	json_int_t end = shrink_cand_last_at(cand) - cand_shift(s, cand) + jint(cand, "tail_ms");
	json_int_t orig = (json_int_t)(s->duration_s * 1000.0 + 0.5);

	return end < orig ? (end > 1 ? end : 1) : orig;
}

/* A kept flap's or pause_flap's own keys say what its schedule does, for
 * the reader: how many cycles or pauses, and their length when all are
 * alike. The schedule is what runs either way. */
static void describe_faults(json_t *faults, json_t *const *all, size_t n)
{
	json_t *f;
	size_t i;

	json_array_foreach(faults, i, f) {
		const char *type = jstr(f, "type");
		bool flap = !strcmp(type, "link_flap"), pauses = !strcmp(type, "pause_flap");
		json_int_t count = 0, len = -1, t_open = -1;
		bool alike = true;

		if (!flap && !pauses && strcmp(type, "random"))
			continue;
		for (size_t k = 0; k < n; k++) {
			const char *a = jstr(all[k], "action");

			if ((size_t)jint(all[k], "fault") != i)
				continue;
			if (!strcmp(a, "link_down") || !strcmp(a, "pause")) {
				count++;
				t_open = jint(all[k], "at_ms");
			} else if (t_open >= 0 && (!strcmp(a, "link_up") || !strcmp(a, "resume"))) {
				alike &= len < 0 || len == jint(all[k], "at_ms") - t_open;
				len = jint(all[k], "at_ms") - t_open;
				t_open = -1;
			}
		}
		json_object_set_new(f, flap ? "cycles" : "count", json_integer(count));
		if (alike && len > 0 && (flap || pauses))
			json_object_set_new(f, flap ? "down_ms" : "pause_ms", json_integer(len));
	}
}

/* The candidate as a scenario: the original with only the faults its units
 * use (renumbered), each window's at_ms/for_ms from its unit, the schedule,
 * cycles renumbered, and the duration cut to the last action plus the tail. */
json_t *shrink_materialize(const struct shrink *s, const json_t *cand, const char *name)
{
	json_t *doc = json_deep_copy(s->src.doc), *faults = json_array(), *sched = json_array();
	const json_t *cf = json_object_get(cand, "faults"), *u, *e;
	size_t nf = json_array_size(cf), i, k, n_entries = 0;
	json_int_t shift = cand_shift(s, cand);
	int *map = calloc(nf + 1, sizeof(*map)), *cycles = calloc(nf + 1, sizeof(*cycles));
	json_t **all = NULL;

	if (!doc || !faults || !sched || !map || !cycles)
		goto out;
	for (i = 0; i < nf; i++)
		map[i] = -1;
	json_array_foreach(json_object_get(cand, "units"), i, u) {
		n_entries += json_array_size(json_object_get(u, "entries"));
		map[jint(u, "fault")] = 0;
	}
	for (i = 0; i < nf; i++)
		if (map[i] == 0) {
			map[i] = (int)json_array_size(faults);
			json_array_append_new(faults, json_deep_copy(json_array_get(cf, i)));
		}
	all = calloc(n_entries + 1, sizeof(*all));
	if (!all)
		goto out;
	n_entries = 0;
	json_array_foreach(json_object_get(cand, "units"), i, u) {
		int fi = (int)jint(u, "fault");
		json_t *f = json_array_get(faults, (size_t)map[fi]);
		json_int_t on = -1, off = -1;
		bool cyclic = false;

		json_array_foreach(json_object_get(u, "entries"), k, e) {
			const char *a = jstr(e, "action");

			if (strstr(a, "_on"))
				on = jint(e, "at_ms");
			if (strstr(a, "_off"))
				off = jint(e, "at_ms");
			cyclic |= jint(e, "cycle") != 0;
		}
		if (cyclic)
			cycles[fi]++;
		if (on >= 0 && is_window_type(jstr(f, "type")) && !shrink_is_fixed(f)) {
			json_object_set_new(f, "at_ms", json_integer(on - shift));
			json_object_set_new(f, "for_ms", json_integer(off > on ? off - on : 0));
		}
		json_array_foreach(json_object_get(u, "entries"), k, e) {
			json_t *x = json_deep_copy(e);

			json_object_set_new(x, "fault", json_integer(map[fi]));
			json_object_set_new(x, "at_ms", json_integer(jint(e, "at_ms") - shift));
			if (jint(e, "cycle"))
				json_object_set_new(x, "cycle", json_integer(cycles[fi]));
			all[n_entries++] = x;
		}
	}
	describe_faults(faults, all, n_entries);
	qsort(all, n_entries, sizeof(*all), cmp_entry);
	for (i = 0; i < n_entries; i++) {
		json_object_del(all[i], "seq");
		json_array_append_new(sched, all[i]);
	}
	json_object_set_new(doc, "name", json_string(name ? name : jstr(s->src.doc, "name")));
	json_object_set_new(doc, "seed", json_integer(s->seed));
	json_object_set_new(doc, "duration_s",
			    json_real((double)cand_end_ms(s, cand) / 1000.0));
	json_object_set_new(doc, "expect", json_string("FAIL"));
	json_object_set(doc, "faults", faults);
	json_object_set(doc, "schedule", sched);
out:
	json_decref(faults);
	json_decref(sched);
	free(all);
	free(cycles);
	free(map);
	return doc;
}

void shrink_cand_key(const json_t *doc, char key[65])
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	util_sha256_hex(text ? text : "", text ? strlen(text) : 0, key);
	free(text);
}

/* One parameter step on a copy of @cur: true when it changed something. */
typedef bool (*param_fn)(json_t *cand, json_int_t fault);

static void shift_after(json_t *entries, const char *from_action, json_int_t delta)
{
	json_t *e;
	size_t i;
	bool after = false;

	json_array_foreach(entries, i, e) {
		if (!strcmp(jstr(e, "action"), from_action))
			after = true;
		if (after)
			json_object_set_new(e, "at_ms", json_integer(jint(e, "at_ms") - delta));
	}
}

static json_t *find_entry(json_t *entries, const char *suffix)
{
	json_t *e;
	size_t i;

	json_array_foreach(entries, i, e) {
		const char *a = jstr(e, "action");
		size_t la = strlen(a), ls = strlen(suffix);

		if (la >= ls && !strcmp(a + la - ls, suffix))
			return e;
	}
	return NULL;
}

/* One step on a unit's span, from its opening entry @a to its closing
 * one @b (NULL: held to the end), @len long. */
typedef void (*span_step)(json_t *ents, json_t *a, json_t *b, json_int_t len, json_int_t fault);

/* @step on every unit of @fault that opens with @open (or @open2) and
 * closes with @close (or @close2; without one, at @end unless that is
 * negative), and whose span is worth halving. */
static bool each_span(json_t *cand, json_int_t fault, const char *open, const char *open2,
		      const char *close, const char *close2, json_int_t end, span_step step)
{
	json_t *u;
	size_t i;
	bool changed = false;

	json_array_foreach(json_object_get(cand, "units"), i, u) {
		json_t *ents = json_object_get(u, "entries");
		json_t *a = find_entry(ents, open) ?: open2 ? find_entry(ents, open2) : NULL;
		json_t *b = find_entry(ents, close) ?: close2 ? find_entry(ents, close2) : NULL;
		json_int_t len;

		if (jint(u, "fault") != fault || !a || (!b && end < 0))
			continue;
		len = (b ? jint(b, "at_ms") : end) - jint(a, "at_ms");
		if (len / 2 < MIN_SPAN_MS)
			continue;
		step(ents, a, b, len, fault);
		changed = true;
	}
	return changed;
}

/* The up (or resume) earlier; a cycle end keeps its settle time after it. */
static void step_outage(json_t *ents, json_t *a, json_t *b, json_int_t len, json_int_t fault)
{
	(void)a;
	(void)fault;
	shift_after(ents, jstr(b, "action"), len - len / 2);
}

/* The off half-way; a window held to the end gets one. */
static void step_window(json_t *ents, json_t *on, json_t *off, json_int_t len, json_int_t fault)
{
	char name[40];

	if (off) {
		json_object_set_new(off, "at_ms", json_integer(jint(on, "at_ms") + len / 2));
		return;
	}
	snprintf(name, sizeof(name), "%.*s_off", (int)(strlen(jstr(on, "action")) - 3),
		 jstr(on, "action"));
	json_array_append_new(ents, json_pack("{sIsIsssI}", "at_ms", jint(on, "at_ms") + len / 2,
					      "fault", fault, "action", name, "seq",
					      jint(on, "seq")));
}

/* The on half-way. */
static void step_later(json_t *ents, json_t *on, json_t *off, json_int_t len, json_int_t fault)
{
	(void)ents;
	(void)off;
	(void)fault;
	json_object_set_new(on, "at_ms", json_integer(jint(on, "at_ms") + len / 2));
}

/* Outages and pauses of @fault half as long. */
bool shrink_p_shorter_outage(json_t *cand, json_int_t fault)
{
	return each_span(cand, fault, "link_down", "pause", "link_up", "resume", -1, step_outage);
}

/* Windows of @fault end half-way. */
bool shrink_p_shorter_window(json_t *cand, json_int_t fault)
{
	return each_span(cand, fault, "_on", NULL, "_off", NULL,
			 shrink_cand_last_at(cand) + jint(cand, "tail_ms"), step_window);
}

/* Windows of @fault start half-way through. */
bool shrink_p_later_start(json_t *cand, json_int_t fault)
{
	return each_span(cand, fault, "_on", NULL, "_off", NULL, -1, step_later);
}

/* Rates of @fault: halved (a bandwidth limit doubled). */
bool shrink_p_smaller_rate(json_t *cand, json_int_t fault)
{
	static const struct { const char *type, *key; double factor, floor; } rates[] = {
		{"packet", "drop_pct", 0.5, 0.5}, {"packet", "corrupt_pct", 0.5, 0.5},
		{"packet", "duplicate_pct", 0.5, 0.5}, {"syscall_error", "pct", 0.5, 1},
		{"delay", "delay_ms", 0.5, 2}, {"delay", "jitter_ms", 0.5, 2},
		{"rate", "rate_kbit", 2, 0}, {"cpu_hog", "threads", 0.5, 1},
	};
	json_t *f = json_array_get(json_object_get(cand, "faults"), (size_t)fault);
	bool changed = false;

	if (!f || shrink_is_fixed(f))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(rates); i++) {
		json_t *v = json_object_get(f, rates[i].key);
		double x = json_number_value(v), y = x * rates[i].factor;

		if (strcmp(jstr(f, "type") ?: "", rates[i].type) || !json_is_number(v))
			continue;
		if (rates[i].factor < 1 && (y < rates[i].floor || x <= rates[i].floor))
			continue;
		if (rates[i].factor > 1 && y > 10000000)
			continue;
		json_object_set_new(f, rates[i].key, json_is_integer(v) ?
				    json_integer((json_int_t)y) : json_real(y));
		changed = true;
	}
	return changed;
}
