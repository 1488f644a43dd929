/* faultctl shrink: the smallest fault schedule that still makes the same
 * invariant FAIL. The schedule (a report's fired actions, or a scenario's
 * planned ones) is cut into units (an outage: down, up and its cycle end; a
 * window: on and off; a pause and its resume; a kill), then:
 *   1. no unit at all: a failure without faults is a finding of its own;
 *   2. the units before the target's first violation only;
 *   3. ddmin over the units (Zeller's, with complements);
 *   4. each remaining fault's parameters (shorter outages, pauses and
 *      windows, later starts, smaller rates) and the run's tail.
 * A candidate fails when the target FAILs in K of N runs (flaky bugs); it
 * runs until its last action plus the original's time after its last
 * action. Every run's outcome goes to DIR/log.jsonl under the candidate's
 * sha256: the search is deterministic, so running the same command again
 * after Ctrl-C replays the log and goes on where it stopped. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "replay.h"
#include "soak.h"
#include "util.h"

#define EXIT_USAGE 3
#define EXIT_STOPPED 130
#define MIN_SPAN_MS 20		/* an outage, pause or window is not halved below this */
#define MIN_TAIL_MS 500
#define PARAM_STEPS 3		/* halvings tried per parameter */

struct shrink {
	const struct ctl_runner *rn;
	volatile int *stop;
	struct replay_src src;
	json_t *units;			/* every unit of the original: {fault, entries[]} */
	json_t *faults;			/* the original's fault definitions */
	json_t *cache;			/* candidate sha256 -> [run outcome] */
	json_t *last_runs;		/* the outcomes of the last candidate judged */
	json_t *best_runs;		/* ... of the smallest failing one */
	json_t *params_log;		/* what the parameter phase changed */
	json_int_t tail_ms, seed;
	double duration_s;
	int runs, need;			/* K of N */
	int target;			/* invariant index; -1: any, until known */
	const char *want_name;		/* --invariant */
	uint64_t t0_ms, budget_ms;
	int runs_spent, runs_logged, candidates;
	bool tty, out_of_budget, stopped;
	const char *phase;
	char dir[PATH_MAX], log_path[PATH_MAX + 16], cand_path[PATH_MAX + 32];
	FILE *log;
};

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static uint64_t now_ms(void)
{
	return util_now_ns() / 1000000;
}

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
static json_t *make_units(const json_t *sched)
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
static const char *unit_kind(const struct shrink *s, const json_t *u)
{
	return jstr(json_array_get(s->faults, (size_t)jint(u, "fault")), "type") ?: "?";
}

/* --- candidates -------------------------------------------------------------- */

/* A candidate: the units it keeps (copies, times may have moved), the fault
 * definitions (parameters may have changed) and its tail. */
static json_t *cand_new(const json_t *units, const json_t *faults, json_int_t tail)
{
	return json_pack("{sOsOsI}", "units", units, "faults", faults, "tail_ms", tail);
}

static json_t *cand_with_units(const json_t *cand, json_t *units)
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
static bool is_fixed(const json_t *f)
{
	const char *call = jstr(f, "syscall");

	return !strcmp(jstr(f, "type") ?: "", "syscall_error") && call && strcmp(call, "socket");
}

static json_int_t cand_last_at(const json_t *cand)
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
	json_int_t end = cand_last_at(cand) - cand_shift(s, cand) + jint(cand, "tail_ms");
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
static json_t *materialize(const struct shrink *s, const json_t *cand, const char *name)
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
		if (on >= 0 && is_window_type(jstr(f, "type")) && !is_fixed(f)) {
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

static void cand_key(const json_t *doc, char key[65])
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	util_sha256_hex(text ? text : "", text ? strlen(text) : 0, key);
	free(text);
}

/* --- running and judging ----------------------------------------------------- */

static void fmt_ms(uint64_t ms, char *buf, size_t len)
{
	snprintf(buf, len, "%llum%02llus", (unsigned long long)(ms / 60000),
		 (unsigned long long)(ms / 1000 % 60));
}

static void progress(const struct shrink *s, const char *what)
{
	char took[32], budget[32];

	if (!s->tty)
		return;
	fmt_ms(now_ms() - s->t0_ms, took, sizeof(took));
	fmt_ms(s->budget_ms, budget, sizeof(budget));
	fprintf(stderr, "\r\033[K%s: %s | runs %d (+%d from the log) | %s of %s", s->phase,
		what, s->runs_spent, s->runs_logged, took, budget);
	fflush(stderr);
}

static void progress_clear(const struct shrink *s)
{
	if (s->tty)
		fputs("\r\033[K", stderr);
}

/* One run's outcome: its verdict and the invariants it FAILed, each with
 * the time of its first violation. */
static json_t *outcome(const json_t *report, const char *key)
{
	json_t *failing = json_array(), *inv;
	size_t i;

	json_array_foreach(json_object_get(report, "invariants"), i, inv)
		if (!strcmp(jstr(inv, "verdict") ?: "", "FAIL"))
			json_array_append_new(failing, json_pack("[II]", (json_int_t)i,
						jint(inv, "first_violation_ms")));
	return json_pack("{ssssssso}", "key", key, "run_id", jstr(report, "run_id") ?: "",
			 "verdict", jstr(report, "verdict") ?: "ERROR", "failing", failing);
}

static bool run_fails(const struct shrink *s, const json_t *o)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(o, "failing"), i, f)
		if (s->target < 0 || json_integer_value(json_array_get(f, 0)) == s->target)
			return true;
	return false;
}

static void log_outcome(struct shrink *s, const char *key, json_t *o)
{
	json_t *list = json_object_get(s->cache, key);

	if (!list) {
		list = json_array();
		json_object_set_new(s->cache, key, list);
	}
	json_array_append(list, o);
	if (s->log) {
		json_dumpf(o, s->log, JSON_COMPACT);
		fputc('\n', s->log);
		fflush(s->log);
	}
}

/* Does @cand fail (the target FAILs in need of runs runs)? Logged runs are
 * counted first; runs stop as soon as the answer is known. 0, or -EINTR
 * (Ctrl-C) / -ETIME (budget) with no answer. */
static int judge(struct shrink *s, const json_t *cand, bool *fails, const char *what)
{
	json_t *doc = materialize(s, cand, NULL), *list, *o;
	char key[65];
	int f = 0, r = 0, err = 0;
	size_t i;

	cand_key(doc, key);
	s->candidates++;
	json_decref(s->last_runs);
	s->last_runs = json_array();
	list = json_object_get(s->cache, key);
	json_array_foreach(list, i, o) {
		if (r >= s->runs)
			break;
		f += run_fails(s, o);
		r++;
		json_array_append(s->last_runs, o);
	}
	while (r < s->runs && f < s->need && f + (s->runs - r) >= s->need) {
		json_t *report = NULL;
		char note[160];

		if (*s->stop) {
			err = -EINTR;
			break;
		}
		if (now_ms() - s->t0_ms >= s->budget_ms) {
			s->out_of_budget = true;
			err = -ETIME;
			break;
		}
		if (replay_write_doc(s->cand_path, doc)) {
			fprintf(stderr, "faultctl: shrink: cannot write %s\n", s->cand_path);
			err = -EIO;
			break;
		}
		snprintf(note, sizeof(note), "%s, run %d of %d", what, r + 1, s->runs);
		progress(s, note);
		s->rn->run_one(s->rn->arg, s->cand_path, &report);
		if (*s->stop) {		/* a stopped run says nothing */
			json_decref(report);
			err = -EINTR;
			break;
		}
		o = report ? outcome(report, key)
			   : json_pack("{sssssss[]}", "key", key, "run_id", "", "verdict", "ERROR",
				       "failing");
		json_decref(report);
		s->runs_spent++;
		log_outcome(s, key, o);
		f += run_fails(s, o);
		r++;
		json_array_append_new(s->last_runs, o);
	}
	progress_clear(s);
	json_decref(doc);
	if (err)
		return err;
	*fails = f >= s->need;
	printf("  %-7s %-44s %s (%d of %d runs)\n", s->phase, what, *fails ? "FAILS" : "passes",
	       f, r);
	fflush(stdout);
	if (*fails) {
		json_decref(s->best_runs);
		s->best_runs = json_incref(s->last_runs);
	}
	return 0;
}

/* --- the search -------------------------------------------------------------- */

static json_t *pick(const json_t *units, const size_t *idx, size_t n)
{
	json_t *out = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append(out, json_array_get(units, idx[i]));
	return out;
}

static int try_units(struct shrink *s, json_t **cur, json_t *units, const char *what,
		     bool *fails)
{
	json_t *c = cand_with_units(*cur, units);
	int err = judge(s, c, fails, what);

	if (!err && *fails) {
		json_decref(*cur);
		*cur = c;
	} else {
		json_decref(c);
	}
	return err;
}

/* ddmin over the candidate's units: a failing chunk replaces the set, then
 * a failing complement; otherwise finer chunks, until each unit alone
 * matters. */
static int ddmin(struct shrink *s, json_t **cur)
{
	size_t n = 2;
	int err = 0;

	s->phase = "ddmin";
	while (!err && json_array_size(json_object_get(*cur, "units")) >= 2) {
		const json_t *units = json_object_get(*cur, "units");
		size_t len = json_array_size(units), *idx = calloc(len, sizeof(*idx));
		bool reduced = false, fails = false;

		if (!idx)
			return -ENOMEM;
		for (int pass = 0; pass < 2 && !reduced && !err; pass++) {
			for (size_t c = 0; c < n && !reduced && !err; c++) {
				size_t lo = len * c / n, hi = len * (c + 1) / n, m = 0;
				char what[128];

				for (size_t i = 0; i < len; i++)
					if ((i >= lo && i < hi) == (pass == 0))
						idx[m++] = i;
				if (!m || m == len)
					continue;
				if (pass && n == 2)	/* the complements are the halves */
					break;
				snprintf(what, sizeof(what), "%zu of %zu units (%s %zu/%zu)", m, len,
					 pass ? "without chunk" : "chunk", c + 1, n);
				err = try_units(s, cur, pick(units, idx, m), what, &fails);
				if (!err && fails) {
					reduced = true;
					n = pass ? (n > 2 ? n - 1 : 2) : 2;
				}
			}
		}
		free(idx);
		if (!reduced && !err) {
			if (n >= len)
				break;
			n = n * 2 < len ? n * 2 : len;
		}
	}
	return err;
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

/* Outages and pauses of @fault half as long (their cycle end keeps its
 * settle time after the up). */
static bool p_shorter_outage(json_t *cand, json_int_t fault)
{
	json_t *u;
	size_t i;
	bool changed = false;

	json_array_foreach(json_object_get(cand, "units"), i, u) {
		json_t *ents = json_object_get(u, "entries");
		json_t *a = find_entry(ents, "link_down") ?: find_entry(ents, "pause");
		json_t *b = find_entry(ents, "link_up") ?: find_entry(ents, "resume");
		json_int_t len;

		if (jint(u, "fault") != fault || !a || !b)
			continue;
		len = jint(b, "at_ms") - jint(a, "at_ms");
		if (len / 2 < MIN_SPAN_MS)
			continue;
		shift_after(ents, jstr(b, "action"), len - len / 2);
		changed = true;
	}
	return changed;
}

/* Windows of @fault: end half-way (one held to the end gets an end). */
static bool p_shorter_window(json_t *cand, json_int_t fault)
{
	json_t *u;
	size_t i;
	bool changed = false;
	json_int_t end = cand_last_at(cand) + jint(cand, "tail_ms");

	json_array_foreach(json_object_get(cand, "units"), i, u) {
		json_t *ents = json_object_get(u, "entries");
		json_t *on = find_entry(ents, "_on"), *off = find_entry(ents, "_off");
		json_int_t stop = off ? jint(off, "at_ms") : end, len;
		char name[40];

		if (jint(u, "fault") != fault || !on)
			continue;
		len = stop - jint(on, "at_ms");
		if (len / 2 < MIN_SPAN_MS)
			continue;
		if (off) {
			json_object_set_new(off, "at_ms", json_integer(jint(on, "at_ms") + len / 2));
		} else {
			snprintf(name, sizeof(name), "%.*s_off",
				 (int)(strlen(jstr(on, "action")) - 3), jstr(on, "action"));
			json_array_append_new(ents, json_pack("{sIsIsssI}", "at_ms",
				jint(on, "at_ms") + len / 2, "fault", fault, "action", name,
				"seq", jint(on, "seq")));
		}
		changed = true;
	}
	return changed;
}

/* Windows of @fault start half-way through. */
static bool p_later_start(json_t *cand, json_int_t fault)
{
	json_t *u;
	size_t i;
	bool changed = false;

	json_array_foreach(json_object_get(cand, "units"), i, u) {
		json_t *ents = json_object_get(u, "entries");
		json_t *on = find_entry(ents, "_on"), *off = find_entry(ents, "_off");
		json_int_t len;

		if (jint(u, "fault") != fault || !on || !off)
			continue;
		len = jint(off, "at_ms") - jint(on, "at_ms");
		if (len / 2 < MIN_SPAN_MS)
			continue;
		json_object_set_new(on, "at_ms", json_integer(jint(on, "at_ms") + len / 2));
		changed = true;
	}
	return changed;
}

/* Rates of @fault: halved (a bandwidth limit doubled). */
static bool p_smaller_rate(json_t *cand, json_int_t fault)
{
	static const struct { const char *type, *key; double factor, floor; } rates[] = {
		{"packet", "drop_pct", 0.5, 0.5}, {"packet", "corrupt_pct", 0.5, 0.5},
		{"packet", "duplicate_pct", 0.5, 0.5}, {"syscall_error", "pct", 0.5, 1},
		{"delay", "delay_ms", 0.5, 2}, {"delay", "jitter_ms", 0.5, 2},
		{"rate", "rate_kbit", 2, 0}, {"cpu_hog", "threads", 0.5, 1},
	};
	json_t *f = json_array_get(json_object_get(cand, "faults"), (size_t)fault);
	bool changed = false;

	if (!f || is_fixed(f))
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

static int param_phase(struct shrink *s, json_t **cur)
{
	static const struct { const char *name; param_fn fn; } params[] = {
		{"shorter outages or pauses", p_shorter_outage},
		{"shorter windows", p_shorter_window},
		{"later starts", p_later_start},
		{"smaller rates", p_smaller_rate},
	};
	size_t nf = json_array_size(s->faults);
	int err = 0;

	s->phase = "params";
	for (size_t f = 0; f < nf && !err; f++) {
		bool used = false;
		const json_t *u;
		size_t i;

		json_array_foreach(json_object_get(*cur, "units"), i, u)
			used |= jint(u, "fault") == (json_int_t)f;
		if (is_fixed(json_array_get(s->faults, f)))
			used = false;	/* fixed at exec: nothing to move or lower */
		for (size_t p = 0; used && p < ARRAY_SIZE(params) && !err; p++) {
			for (int step = 0; step < PARAM_STEPS && !err; step++) {
				const char *type = jstr(json_array_get(s->faults, f), "type");
				json_t *c = json_deep_copy(*cur);
				char what[96];
				bool fails = false;

				if (!params[p].fn(c, (json_int_t)f)) {
					json_decref(c);
					break;
				}
				snprintf(what, sizeof(what), "faults[%zu] (%s): %s", f, type,
					 params[p].fn != p_shorter_outage ? params[p].name :
					 strstr(type, "pause") ? "shorter pauses" : "shorter outages");
				err = judge(s, c, &fails, what);
				if (err || !fails) {
					json_decref(c);
					break;
				}
				json_decref(*cur);
				*cur = c;
				json_array_append_new(s->params_log, json_string(what));
			}
		}
	}
	/* The run's tail after its last action. */
	for (int step = 0; step < PARAM_STEPS && !err; step++) {
		json_int_t tail = jint(*cur, "tail_ms") / 2;
		json_t *c;
		char what[96];
		bool fails = false;

		if (tail < MIN_TAIL_MS)
			break;
		c = json_deep_copy(*cur);
		json_object_set_new(c, "tail_ms", json_integer(tail));
		snprintf(what, sizeof(what), "run ends %lld ms after the last action",
			 (long long)tail);
		err = judge(s, c, &fails, what);
		if (err || !fails) {
			json_decref(c);
			break;
		}
		json_decref(*cur);
		*cur = c;
		json_array_append_new(s->params_log, json_string(what));
	}
	return err;
}

/* Did the last candidate's runs FAIL the target often enough? */
static bool enough(const struct shrink *s)
{
	const json_t *o;
	size_t i;
	int f = 0;

	json_array_foreach(s->last_runs, i, o)
		f += run_fails(s, o);
	return f >= s->need;
}

/* The first violation of the target in what is known of the original. */
static json_int_t first_violation(const struct shrink *s)
{
	const json_t *inv = json_array_get(json_object_get(s->src.report, "invariants"),
					   (size_t)s->target);
	const json_t *o, *f;
	size_t i, k;

	if (inv && !strcmp(jstr(inv, "verdict") ?: "", "FAIL"))
		return jint(inv, "first_violation_ms");
	json_array_foreach(s->best_runs, i, o)
		json_array_foreach(json_object_get(o, "failing"), k, f)
			if (json_integer_value(json_array_get(f, 0)) == s->target)
				return json_integer_value(json_array_get(f, 1));
	return -1;
}

/* The target: --invariant's name, or the invariant that FAILed first in the
 * report (or most often in the baseline runs). */
static int pick_target(struct shrink *s, const json_t *runs)
{
	const json_t *invs = json_object_get(s->src.doc, "invariants"), *o, *f;
	int counts[256] = {0}, best = -1;
	size_t i, k;

	if (s->src.report) {
		json_t *failing = replay_failing(s->src.report);

		json_array_foreach(failing, i, o)
			counts[json_integer_value(o) & 255] += 1;
		json_decref(failing);
	}
	json_array_foreach(runs, i, o)
		json_array_foreach(json_object_get(o, "failing"), k, f)
			counts[json_integer_value(json_array_get(f, 0)) & 255] += 1;
	for (int n = 0; n < 256; n++) {
		const char *name = jstr(json_array_get(invs, (size_t)n), "name");

		if (s->want_name && (!name || strcmp(name, s->want_name)))
			continue;
		if (counts[n] && (best < 0 || counts[n] > counts[best]))
			best = n;
	}
	s->target = best;
	return best;
}

/* --- reading and writing ----------------------------------------------------- */

static void load_log(struct shrink *s)
{
	FILE *f = fopen(s->log_path, "r");
	char *line = NULL;
	size_t cap = 0;

	while (f && getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		const char *key = jstr(o, "key");

		if (key) {
			json_t *list = json_object_get(s->cache, key);

			if (!list)
				json_object_set_new(s->cache, key, list = json_array());
			json_array_append(list, o);
			s->runs_logged++;
		}
		json_decref(o);
	}
	free(line);
	if (f)
		fclose(f);
}

static json_t *count_kinds(const struct shrink *s, const json_t *units)
{
	json_t *counts = json_object(), *u;
	size_t i;

	json_array_foreach(units, i, u) {
		const char *k = unit_kind(s, u);

		json_object_set_new(counts, k, json_integer(jint(counts, k) + 1));
	}
	return counts;
}


/* The smallest scenario found and the summary: what was removed, what
 * changed, runs spent, how often the result reproduced. */
static int write_result(struct shrink *s, const json_t *cur, const char *out_path)
{
	const json_t *invs = json_object_get(s->src.doc, "invariants");
	const char *tname = jstr(json_array_get(invs, (size_t)s->target), "name") ?: "?";
	json_t *before = count_kinds(s, s->units), *after = count_kinds(s, json_object_get(cur, "units"));
	json_t *removed = json_array(), *doc, *summary, *v;
	char name[160], desc[PATH_MAX + 512], took[32], path[PATH_MAX + 64];
	const char *kind;
	int repro = 0, nruns = (int)json_array_size(s->best_runs), err;
	size_t i, n_after = json_array_size(json_object_get(cur, "units"));
	bool no_faults = n_after == 0;

	json_array_foreach(s->best_runs, i, v)
		repro += run_fails(s, v);
	json_object_foreach(before, kind, v) {
		json_int_t b = json_integer_value(v), a = jint(after, kind);
		char line[96];

		if (a < b) {
			snprintf(line, sizeof(line), "%lld of %lld %s", (long long)(b - a),
				 (long long)b, kind);
			json_array_append_new(removed, json_string(line));
		}
	}
	snprintf(name, sizeof(name), "%s-shrunk", jstr(s->src.doc, "name"));
	doc = materialize(s, cur, name);
	fmt_ms(now_ms() - s->t0_ms, took, sizeof(took));
	snprintf(desc, sizeof(desc), "faultctl shrink of %s: %s FAILs (invariants[%d]) %s; %d of "
		 "%d runs of this scenario failed.", s->src.path, tname, s->target,
		 no_faults ? "without any fault" : "with this schedule", repro, nruns);
	json_object_set_new(doc, "description", json_string(desc));
	err = replay_write_doc(out_path, doc);
	if (err)
		fprintf(stderr, "faultctl: shrink: cannot write %s: %s\n", out_path, strerror(-err));
	summary = json_pack("{sssssisssbsOsOsOsOsisisisisisbsbsf}",
		"input", s->src.path, "output", out_path, "invariant", s->target,
		"invariant_name", tname, "fails_without_faults", no_faults,
		"units_before", before, "units_after", after, "removed", removed,
		"parameters", s->params_log, "runs_spent", s->runs_spent,
		"runs_from_log", s->runs_logged, "candidates", s->candidates,
		"reproduced", repro, "reproduce_runs", nruns,
		"out_of_budget", s->out_of_budget, "interrupted", s->stopped,
		"duration_s", json_real_value(json_object_get(doc, "duration_s")));
	snprintf(path, sizeof(path), "%s/summary.json", s->dir);
	if (summary)
		replay_write_doc(path, summary);

	printf("\n%s: %s (invariants[%d]) ", jstr(s->src.doc, "name"), tname, s->target);
	if (no_faults)
		printf("FAILS WITHOUT FAULTS: it fails with no fault at all; the bug does not "
		       "need the faults to show.\n");
	else
		printf("still FAILs with %zu of %zu fault units.\n", n_after,
		       json_array_size(s->units));
	printf("  removed:     ");
	json_array_foreach(removed, i, v)
		printf("%s%s", i ? ", " : "", json_string_value(v));
	printf("%s\n", json_array_size(removed) ? "" : "nothing");
	printf("  kept:        ");
	i = 0;
	json_object_foreach(after, kind, v)
		printf("%s%lld %s", i++ ? ", " : "", (long long)json_integer_value(v), kind);
	printf("%s\n", i ? "" : "no faults");
	json_array_foreach(s->params_log, i, v)
		printf("  changed:     %s\n", json_string_value(v));
	printf("  duration:    %.1f s (was %.1f s)\n",
	       json_real_value(json_object_get(doc, "duration_s")), s->duration_s);
	printf("  runs spent:  %d (+%d from the log), %d candidates, %s\n", s->runs_spent,
	       s->runs_logged, s->candidates, took);
	printf("  reproduces:  %d of %d runs\n", repro, nruns);
	if (s->out_of_budget)
		printf("  the budget ran out: this is the smallest found so far, not a minimum\n");
	if (s->stopped)
		printf("  interrupted: run the same command again to go on from %s\n", s->log_path);
	printf("  written:     %s (summary: %s)\n", out_path, path);
	json_decref(summary);
	json_decref(doc);
	json_decref(removed);
	json_decref(before);
	json_decref(after);
	return err;
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "faultctl: shrink: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\nTry 'faultctl shrink --help'.\n");
	return EXIT_USAGE;
}

static void help(void)
{
	printf("usage: faultctl shrink REPORT|SCENARIO [--budget 30m] [--runs N] [--fails K]\n"
	       "                       [--invariant NAME] [--dir DIR] [--output PATH] [--local]\n"
	       "Find the smallest fault schedule that still makes the same invariant FAIL:\n"
	       "no faults at all first, then delta debugging (ddmin) over the fault actions,\n"
	       "then each remaining fault's parameters and the run's length. A candidate\n"
	       "fails when the invariant FAILs in K of N runs. The result is a normal\n"
	       "scenario with the original's invariants and an explicit \"schedule\".\n"
	       "  REPORT          a report.json, run directory or run id: its fired actions\n"
	       "  SCENARIO        a scenario file: its planned actions (run first N times)\n"
	       "  --budget D      stop searching after D (default 30m; 1h30m, 90s)\n"
	       "  --runs N        runs per candidate (default 3)\n"
	       "  --fails K       FAILs out of N that make a candidate fail (default 2,\n"
	       "                  1 when N is 1)\n"
	       "  --invariant NAME  the invariant to keep failing (default: the one that\n"
	       "                  FAILed first in the report, or most often)\n"
	       "  --dir DIR       work directory: log.jsonl, candidate.json, summary.json\n"
	       "                  (default shrink-NAME); the log makes the search resumable\n"
	       "  --output PATH   the result (default DIR/NAME.shrunk.json)\n"
	       "  --local         run the engine in this process (no daemon needed)\n"
	       "Exit: 0 written, 2 the input does not fail, 3 usage or setup error,\n"
	       "130 interrupted (what was found so far is written; run again to resume).\n");
}

int shrink_main(int argc, char **argv, const struct ctl_runner *rn)
{
	static const struct option longopts[] = {
		{"budget", required_argument, NULL, 'b'}, {"runs", required_argument, NULL, 'n'},
		{"fails", required_argument, NULL, 'k'}, {"invariant", required_argument, NULL, 'i'},
		{"dir", required_argument, NULL, 'd'}, {"output", required_argument, NULL, 'o'},
		{"local", no_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shrink s = {.rn = rn, .runs = 3, .need = 0, .target = -1,
			   .budget_ms = 30 * 60000};
	const char *dir = NULL, *out_path = NULL;
	char def_out[PATH_MAX + 64], budget[32];
	json_t *sched = NULL, *cur = NULL, *c;
	bool local = false, fails = false;
	int opt, code = EXIT_USAGE, err = 0;
	char *end;

	optind = 0;	/* glibc starts over, and lets options follow the REPORT */
	while ((opt = getopt_long(argc, argv, "b:n:k:i:d:o:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			s.budget_ms = soak_parse_duration(optarg);
			if (!s.budget_ms)
				return usage_error("--budget: expected e.g. 30m, 1h30m, 90s, not '%s'",
						   optarg);
			break;
		case 'n':
			s.runs = (int)strtol(optarg, &end, 10);
			if (*end || s.runs < 1 || s.runs > 100)
				return usage_error("--runs: expected 1 to 100, not '%s'", optarg);
			break;
		case 'k':
			s.need = (int)strtol(optarg, &end, 10);
			if (*end || s.need < 1)
				return usage_error("--fails: expected a count of at least 1, not '%s'",
						   optarg);
			break;
		case 'i': s.want_name = optarg; break;
		case 'd': dir = optarg; break;
		case 'o': out_path = optarg; break;
		case 'L': local = true; break;
		case 'h': help(); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (!s.need)
		s.need = s.runs == 1 ? 1 : 2;
	if (s.need > s.runs)
		return usage_error("--fails must not exceed --runs%s", "");
	if (optind + 1 != argc)
		return usage_error("needs one REPORT or SCENARIO%s", "");
	if (replay_src_load(argv[optind], rn->runs_dir, true, &s.src))
		return EXIT_USAGE;
	s.t0_ms = now_ms();
	s.tty = isatty(STDERR_FILENO);
	s.cache = json_object();
	s.params_log = json_array();
	s.faults = json_deep_copy(json_object_get(s.src.doc, "faults") ?: json_array());
	s.duration_s = s.src.sc->duration_s;
	if (s.src.report) {
		s.seed = jint(json_object_get(s.src.report, "scenario"), "seed");
		sched = replay_schedule(&s.src);
	} else {
		struct fault_action *plan = NULL;
		size_t n = 0;

		s.seed = s.src.sc->seed_set ? s.src.sc->seed : 1;
		sched = json_array();
		if (!fault_plan(s.src.sc, (uint64_t)s.seed, (uint64_t)(s.duration_s * 1000.0),
				&plan, &n))
			for (size_t i = 0; i < n; i++) {
				json_t *e = json_pack("{sIsiss}", "at_ms", (json_int_t)plan[i].t_ms,
						      "fault", plan[i].fault, "action",
						      fault_act_name(&plan[i]));

				if (plan[i].cycle)
					json_object_set_new(e, "cycle", json_integer(plan[i].cycle));
				json_array_append_new(sched, e);
			}
		free(plan);
	}
	if (!sched)
		goto out;
	s.units = make_units(sched);
	s.tail_ms = (json_int_t)(s.duration_s * 1000.0 + 0.5) -
		    (json_array_size(sched) ? jint(json_array_get(sched, json_array_size(sched) - 1),
						   "at_ms") : 0);
	if (s.tail_ms < MIN_TAIL_MS)
		s.tail_ms = MIN_TAIL_MS;
	if (dir)
		snprintf(s.dir, sizeof(s.dir), "%s", dir);
	else
		snprintf(s.dir, sizeof(s.dir), "shrink-%s", s.src.sc->name);
	if (util_mkdir_p(s.dir, 0755)) {
		fprintf(stderr, "faultctl: shrink: cannot make %s: %s\n", s.dir, strerror(errno));
		goto out;
	}
	snprintf(s.log_path, sizeof(s.log_path), "%s/log.jsonl", s.dir);
	snprintf(s.cand_path, sizeof(s.cand_path), "%s/candidate.json", s.dir);
	if (!out_path) {
		snprintf(def_out, sizeof(def_out), "%s/%s.shrunk.json", s.dir, s.src.sc->name);
		out_path = def_out;
	}
	load_log(&s);
	s.log = fopen(s.log_path, "a");
	if (!s.log) {
		fprintf(stderr, "faultctl: shrink: cannot open %s: %s\n", s.log_path, strerror(errno));
		goto out;
	}
	fmt_ms(s.budget_ms, budget, sizeof(budget));
	printf("shrink %s: %zu fault actions in %zu units, %d run%s per candidate (FAILs in %d "
	       "make it fail), budget %s%s\n", s.src.path, json_array_size(sched),
	       json_array_size(s.units), s.runs, s.runs == 1 ? "" : "s", s.need, budget,
	       s.runs_logged ? " (resuming from the log)" : "");
	fflush(stdout);
	s.stop = rn->begin(rn->arg, local);
	cur = cand_new(s.units, s.faults, s.tail_ms);

	/* The target, and whether the original fails at all. */
	if (!s.src.report || s.want_name) {
		s.phase = "start";
		if (!s.src.report)
			err = judge(&s, cur, &fails, "the original");
		if (!err && pick_target(&s, s.src.report ? NULL : s.last_runs) < 0) {
			fprintf(stderr, "faultctl: shrink: %s: %s FAILs in none of %zu runs: "
				"nothing to shrink\n", s.src.path, s.want_name ?: "no invariant",
				json_array_size(s.last_runs));
			code = err ? EXIT_USAGE : 2;
			goto end;
		}
		if (!err && !s.src.report && !enough(&s)) {	/* more runs for the target */
			err = judge(&s, cur, &fails, "the original");
			if (!err && !fails) {
				fprintf(stderr, "faultctl: shrink: %s FAILs in too few runs of the "
					"original to shrink it (need %d of %d)\n",
					jstr(json_array_get(json_object_get(s.src.doc, "invariants"),
							    (size_t)s.target), "name"), s.need, s.runs);
				code = 2;
				goto end;
			}
		}
	} else {
		pick_target(&s, NULL);
	}
	if (err == -EINTR || err == -ETIME) {
		fprintf(stderr, "faultctl: shrink: %s before the original was judged: nothing "
			"written\n", err == -EINTR ? "interrupted" : "the budget ran out");
		code = err == -EINTR ? EXIT_STOPPED : EXIT_USAGE;
		goto end;
	}
	if (s.target < 0) {
		fprintf(stderr, "faultctl: shrink: %s: no invariant FAILed: nothing to shrink\n",
			s.src.path);
		code = 2;
		goto end;
	}
	printf("  target: %s (invariants[%d])\n",
	       jstr(json_array_get(json_object_get(s.src.doc, "invariants"), (size_t)s.target),
		    "name"), s.target);

	/* 1. No fault at all. */
	s.phase = "empty";
	if (!err && json_array_size(json_object_get(cur, "units"))) {
		err = try_units(&s, &cur, json_array(), "no faults at all", &fails);
		if (!err && fails)
			goto done;
	}
	/* 2. Only what came before the first violation. */
	s.phase = "prefix";
	if (!err && first_violation(&s) >= 0) {
		json_int_t fv = first_violation(&s);
		json_t *units = json_object_get(cur, "units"), *keep = json_array(), *u;
		size_t i;

		json_array_foreach(units, i, u)
			if (jint(json_array_get(json_object_get(u, "entries"), 0), "at_ms") <= fv)
				json_array_append(keep, u);
		if (json_array_size(keep) && json_array_size(keep) < json_array_size(units)) {
			char what[80];

			snprintf(what, sizeof(what), "%zu units before the first violation (%lld ms)",
				 json_array_size(keep), (long long)fv);
			err = try_units(&s, &cur, keep, what, &fails);
		} else {
			json_decref(keep);
		}
	}
	/* 3. ddmin; 4. parameters. */
	if (!err)
		err = ddmin(&s, &cur);
	if (!err)
		err = param_phase(&s, &cur);
done:
	if (err && err != -EINTR && err != -ETIME) {
		fprintf(stderr, "faultctl: shrink: %s\n", strerror(-err));
		goto end;
	}
	s.stopped = err == -EINTR;
	if (!s.best_runs) {	/* from a report, nothing judged yet: the report's run */
		c = json_pack("{s[]}", "failing");
		json_array_append_new(json_object_get(c, "failing"),
				      json_pack("[iI]", s.target, (json_int_t)0));
		s.best_runs = json_pack("[o]", c);
	}
	code = write_result(&s, cur, out_path) ? EXIT_USAGE : s.stopped ? EXIT_STOPPED : 0;
end:
	rn->end(rn->arg);
out:
	if (s.log)
		fclose(s.log);
	json_decref(cur);
	json_decref(sched);
	json_decref(s.units);
	json_decref(s.faults);
	json_decref(s.cache);
	json_decref(s.last_runs);
	json_decref(s.best_runs);
	json_decref(s.params_log);
	replay_src_free(&s.src);
	return code;
}
