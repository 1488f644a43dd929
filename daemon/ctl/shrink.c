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
#include "fault_sched.h"
#include "shrink_priv.h"
#include "soak.h"
#include "util.h"

#define EXIT_USAGE 3
#define EXIT_STOPPED 130
#define MIN_TAIL_MS 500
#define PARAM_STEPS 3		/* halvings tried per parameter */


static uint64_t now_ms(void)
{
	return util_now_ns() / 1000000;
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
	json_t *doc = shrink_materialize(s, cand, NULL), *list, *o;
	char key[65];
	int f = 0, r = 0, err = 0;
	size_t i;

	shrink_cand_key(doc, key);
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

/* Judge candidate @c (its reference is taken): if it still fails, it
 * becomes *@cur. */
static int try_candidate(struct shrink *s, json_t **cur, json_t *c, const char *what,
			 bool *fails)
{
	int err = judge(s, c, fails, what);

	if (!err && *fails) {
		json_decref(*cur);
		*cur = c;
	} else {
		json_decref(c);
	}
	return err;
}

static int try_units(struct shrink *s, json_t **cur, json_t *units, const char *what,
		     bool *fails)
{
	return try_candidate(s, cur, shrink_cand_with_units(*cur, units), what, fails);
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

static int param_phase(struct shrink *s, json_t **cur)
{
	static const struct { const char *name; param_fn fn; } params[] = {
		{"shorter outages or pauses", shrink_p_shorter_outage},
		{"shorter windows", shrink_p_shorter_window},
		{"later starts", shrink_p_later_start},
		{"smaller rates", shrink_p_smaller_rate},
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
		if (shrink_is_fixed(json_array_get(s->faults, f)))
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
					 params[p].fn != shrink_p_shorter_outage ? params[p].name :
					 strstr(type, "pause") ? "shorter pauses" : "shorter outages");
				err = try_candidate(s, cur, c, what, &fails);
				if (err || !fails)
					break;
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
		err = try_candidate(s, cur, c, what, &fails);
		if (err || !fails)
			break;
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
		const char *k = shrink_unit_kind(s, u);

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
	doc = shrink_materialize(s, cur, name);
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
		if (!fault_sched_timeline(s.src.sc, (uint64_t)s.seed,
					  (uint64_t)(s.duration_s * 1000.0), &plan, &n))
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
	s.units = shrink_make_units(sched);
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
	cur = shrink_cand_new(s.units, s.faults, s.tail_ms);

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
