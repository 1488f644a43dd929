/* faultctl replay: run a report's scenario again with the fault actions the
 * run fired, at the times it fired them, and the same seed, N times, and
 * say whether the same invariants FAIL each time. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fault.h"
#include "fault_sched.h"
#include "fault_family.h"
#include "replay.h"
#include "scenario.h"
#include "util.h"

#define EXIT_USAGE 3

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The scenario a report ran: the copy in its run directory, else the file
 * it names; either only if its sha256 is the report's. */
static int load_report_scenario(struct replay_src *src)
{
	const json_t *scn = json_object_get(src->report, "scenario");
	const char *want = jstr(scn, "sha256");
	char cands[2][PATH_MAX + 32];
	int err = -ENOENT;

	snprintf(cands[0], sizeof(cands[0]), "%s/scenario.json",
		 jstr(src->report, "run_dir") ?: ".");
	snprintf(cands[1], sizeof(cands[1]), "%s", jstr(scn, "file") ?: "");
	for (int i = 0; i < 2 && err; i++) {
		char *text = NULL, *errors = NULL, sha[65];
		size_t len = 0;

		if (!cands[i][0] || util_read_file(cands[i], 1u << 20, &text, &len))
			continue;
		util_sha256_hex(text, len, sha);
		if (want && strcmp(sha, want)) {
			fprintf(stderr, "faultctl: %s is not the scenario the report ran (sha256 "
				"differs)\n", cands[i]);
		} else if (scenario_parse(cands[i], text, len, &src->sc, &errors)) {
			fputs(errors ? errors : "invalid scenario\n", stderr);
			err = -EINVAL;
		} else {
			src->doc = json_loadb(text, len, 0, NULL);
			err = src->doc ? 0 : -ENOMEM;
		}
		free(errors);
		free(text);
		if (err == -EINVAL)
			break;
	}
	if (err == -ENOENT)
		fprintf(stderr, "faultctl: %s: cannot find the scenario the report ran (neither %s "
			"nor %s, with sha256 %s)\n", src->path, cands[0], cands[1], want ?: "?");
	return err;
}

int replay_src_load(const char *arg, const char *runs_dir, bool scenario_ok,
		    struct replay_src *src)
{
	struct stat st;
	json_error_t jerr;
	json_t *j;
	char *errors = NULL;

	memset(src, 0, sizeof(*src));
	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(src->path, sizeof(src->path), "%s/report.json", arg);
	else if (stat(arg, &st) != 0 && util_valid_run_id(arg))
		snprintf(src->path, sizeof(src->path), "%s/%s/report.json", runs_dir, arg);
	else
		snprintf(src->path, sizeof(src->path), "%s", arg);
	j = json_load_file(src->path, 0, &jerr);
	if (!j) {
		fprintf(stderr, "faultctl: %s:%d:%d: %s\n", src->path, jerr.line > 0 ? jerr.line : 1,
			jerr.column > 0 ? jerr.column : 1, jerr.text);
		return -EINVAL;
	}
	if (json_object_get(j, "schema_version") && json_object_get(j, "run_id")) {
		src->report = j;
		return load_report_scenario(src);
	}
	json_decref(j);
	if (!scenario_ok) {
		fprintf(stderr, "faultctl: %s is not a report (no schema_version and run_id)\n",
			src->path);
		return -EINVAL;
	}
	if (scenario_load(src->path, &src->sc, &errors)) {
		fputs(errors ? errors : "invalid scenario\n", stderr);
		free(errors);
		return -EINVAL;
	}
	src->doc = json_loadb(src->sc->text, src->sc->text_len, 0, NULL);
	return src->doc ? 0 : -ENOMEM;
}

void replay_src_free(struct replay_src *src)
{
	json_decref(src->report);
	json_decref(src->doc);
	scenario_free(src->sc);
	memset(src, 0, sizeof(*src));
}

struct sched_row {
	json_int_t at;
	size_t order;			/* the planned action's index: ties keep it */
	json_t *entry;
};

static int cmp_row(const void *a, const void *b)
{
	const struct sched_row *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Does the report's @target name what planned action @p acts on? A link,
 * a workload, or "cpus" (the names are unique within each list). */
static bool same_target(const struct scenario *sc, const struct fault_action *p,
			const char *target)
{
	if (!target)
		return true;
	return (p->target >= 0 && (size_t)p->target < sc->n_links &&
		!strcmp(sc->links[p->target].name, target)) ||
	       (p->target >= 0 && (size_t)p->target < sc->n_wl &&
		!strcmp(sc->wl[p->target].name, target)) ||
	       !strcmp(target, "cpus");
}

static json_t *sched_entry(json_int_t at, const struct fault_action *p)
{
	json_t *e = json_pack("{sIsiss}", "at_ms", at, "fault", p->fault,
			      "action", fault_act_name(p));

	if (e && p->cycle)
		json_object_set_new(e, "cycle", json_integer(p->cycle));
	return e;
}

/* Planning again from the scenario and the report's seed gives each fired
 * action its fault (the report names only the fault's type) and cycle. */
json_t *replay_schedule(const struct replay_src *src)
{
	const struct scenario *sc = src->sc;
	const json_t *fired = json_object_get(src->report, "faults");
	const json_t *cycles = json_object_get(src->report, "cycles"), *e;
	uint64_t seed = (uint64_t)jint(json_object_get(src->report, "scenario"), "seed");
	struct fault_action *plan = NULL;
	struct sched_row *rows = NULL;
	size_t n_plan = 0, n_rows = 0, i, k_cycle = 0, unmatched = 0;
	json_t *out = NULL;
	bool *used = NULL;

	if (fault_sched_timeline(sc, seed, (uint64_t)(sc->duration_s * 1000.0), &plan, &n_plan))
		goto out;
	used = calloc(n_plan + 1, sizeof(*used));
	rows = calloc(n_plan + 1, sizeof(*rows));
	if (!used || !rows)
		goto out;
	json_array_foreach(fired, i, e) {
		size_t p;

		for (p = 0; p < n_plan; p++)
			if (!used[p] && plan[p].t_ms == (uint64_t)jint(e, "t_planned_ms") &&
			    !strcmp(fault_act_name(&plan[p]), jstr(e, "action") ?: "") &&
			    !strcmp(sc->faults[plan[p].fault]->type->name, jstr(e, "fault") ?: "") &&
			    same_target(sc, &plan[p], jstr(e, "target")))
				break;
		if (p == n_plan) {
			unmatched++;
			continue;
		}
		used[p] = true;
		rows[n_rows++] = (struct sched_row){jint(e, "t_actual_ms"), p,
						    sched_entry(jint(e, "t_actual_ms"), &plan[p])};
	}
	/* A cycle end is not in the timeline; the report's k-th cycle closed
	 * at the k-th planned one if it closed at or after its planned time
	 * (else the run ended first). */
	for (size_t p = 0; p < n_plan; p++) {
		const json_t *c = json_array_get(cycles, k_cycle);

		if (plan[p].act != FAULT_CYCLE_END)
			continue;
		k_cycle++;
		if (!c || jint(c, "t_end_ms") + 1 < (json_int_t)plan[p].t_ms)
			continue;
		rows[n_rows++] = (struct sched_row){jint(c, "t_end_ms"), p,
						    sched_entry(jint(c, "t_end_ms"), &plan[p])};
	}
	if (unmatched)
		fprintf(stderr, "faultctl: %s: %zu fired actions match no planned action of the "
			"scenario and seed; they are left out\n", src->path, unmatched);
	qsort(rows, n_rows, sizeof(*rows), cmp_row);
	out = json_array();
	for (i = 0; i < n_rows; i++)
		if (out && rows[i].entry)
			json_array_append(out, rows[i].entry);
	for (i = 0; i < n_rows; i++)
		json_decref(rows[i].entry);
out:
	if (!out)
		fprintf(stderr, "faultctl: %s: cannot rebuild the fault schedule\n", src->path);
	free(rows);
	free(used);
	free(plan);
	return out;
}

json_t *replay_failing(const json_t *report)
{
	const json_t *inv;
	json_t *out = json_array();
	size_t i;

	json_array_foreach(json_object_get(report, "invariants"), i, inv)
		if (out && !strcmp(jstr(inv, "verdict") ?: "", "FAIL"))
			json_array_append_new(out, json_integer((json_int_t)i));
	return out;
}

int replay_write_doc(const char *path, const json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t len;
	int err;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n';	/* over the NUL: the length is passed */
	err = util_write_atomic(path, text, len + 1);
	free(text);
	return err;
}

long long replay_timeline_dev(const json_t *a, const json_t *b, size_t *n_matched)
{
	const json_t *ta = json_object_get(a, "faults"), *tb = json_object_get(b, "faults");
	long long worst = 0;
	size_t n = json_array_size(ta) < json_array_size(tb) ? json_array_size(ta)
							       : json_array_size(tb);

	*n_matched = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(ta, i), *y = json_array_get(tb, i);
		long long d = (long long)(jint(x, "t_actual_ms") - jint(y, "t_actual_ms"));

		if (strcmp(jstr(x, "action") ?: "", jstr(y, "action") ?: "") ||
		    strcmp(jstr(x, "target") ?: "", jstr(y, "target") ?: ""))
			break;
		d = d < 0 ? -d : d;
		worst = d > worst ? d : worst;
		(*n_matched)++;
	}
	return worst;
}

/* "sockets_stable, recovers" for the invariant indexes in @idx. */
static void names_of(const json_t *report, const json_t *idx, char *buf, size_t len)
{
	const json_t *v;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(idx, i, v) {
		const json_t *inv = json_array_get(json_object_get(report, "invariants"),
						   (size_t)json_integer_value(v));
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", jstr(inv, "name") ?: "?");

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

static bool contains(const json_t *arr, const json_t *v)
{
	const json_t *x;
	size_t i;

	json_array_foreach(arr, i, x)
		if (json_equal(x, v))
			return true;
	return false;
}

/* One replay run against the report: did every invariant that FAILed FAIL
 * again (and, for a report without one, did none)? */
static json_t *judge_run(const json_t *orig, const json_t *rep, bool *reproduced)
{
	json_t *want = replay_failing(orig), *got = replay_failing(rep), *v;
	json_t *missing = json_array(), *extra = json_array(), *row;
	size_t i, n_tl;
	long long dev = replay_timeline_dev(orig, rep, &n_tl);

	json_array_foreach(want, i, v)
		if (!contains(got, v))
			json_array_append(missing, v);
	json_array_foreach(got, i, v)
		if (!contains(want, v))
			json_array_append(extra, v);
	*reproduced = json_array_size(missing) == 0 &&
		      (json_array_size(want) || !json_array_size(got));
	row = json_pack("{sssssOsOsOsbsIsIsI}", "run_id", jstr(rep, "run_id") ?: "",
			"verdict", jstr(rep, "verdict") ?: "ERROR", "failing", got,
			"missing", missing, "extra", extra, "reproduced", *reproduced,
			"timeline_actions", (json_int_t)json_array_size(json_object_get(rep, "faults")),
			"timeline_matched", (json_int_t)n_tl, "timeline_max_dev_ms", (json_int_t)dev);
	json_decref(want);
	json_decref(got);
	json_decref(missing);
	json_decref(extra);
	return row;
}

static void print_run(const json_t *orig, const json_t *rep, const json_t *row, int i, int n)
{
	char got[256], miss[256], extra[256];

	names_of(rep, json_object_get(row, "failing"), got, sizeof(got));
	names_of(orig, json_object_get(row, "missing"), miss, sizeof(miss));
	names_of(rep, json_object_get(row, "extra"), extra, sizeof(extra));
	printf("replay %d/%d: run %s %s, failing: %s — %s", i, n, jstr(row, "run_id"),
	       jstr(row, "verdict"), got,
	       json_is_true(json_object_get(row, "reproduced")) ? "reproduced" : "NOT reproduced");
	if (json_array_size(json_object_get(row, "missing")))
		printf(" (missing: %s)", miss);
	if (json_array_size(json_object_get(row, "extra")))
		printf(" (also: %s)", extra);
	printf("; timeline %lld of %lld actions as before, within %lld ms\n",
	       (long long)jint(row, "timeline_matched"), (long long)jint(row, "timeline_actions"),
	       (long long)jint(row, "timeline_max_dev_ms"));
	fflush(stdout);
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "faultctl: replay: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\nTry 'faultctl replay --help'.\n");
	return EXIT_USAGE;
}

int replay_main(int argc, char **argv, const struct ctl_runner *rn)
{
	static const struct option longopts[] = {
		{"runs", required_argument, NULL, 'n'}, {"local", no_argument, NULL, 'L'},
		{"output", required_argument, NULL, 'o'}, {"json", required_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *out_path = NULL, *json_path = NULL;
	char def_out[64];
	struct replay_src src;
	json_t *doc = NULL, *sched, *rows = NULL, *summary;
	volatile int *stop;
	bool local = false;
	int opt, runs = 1, done = 0, reproduced = 0, code = EXIT_USAGE;
	char *end;

	optind = 0;	/* glibc starts over, and lets options follow the REPORT */
	while ((opt = getopt_long(argc, argv, "n:o:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			runs = (int)strtol(optarg, &end, 10);
			if (*end || runs < 1 || runs > 1000)
				return usage_error("--runs: expected 1 to 1000, not '%s'", optarg);
			break;
		case 'L': local = true; break;
		case 'o': out_path = optarg; break;
		case 'J': json_path = optarg; break;
		case 'h':
			printf("usage: faultctl replay REPORT [--runs N] [--local] [--output PATH]\n"
			       "                       [--json PATH]\n"
			       "Run a report's scenario again with the fault actions its run fired, at\n"
			       "the times they fired (not planned again), and the same seed; say for\n"
			       "each of N runs whether the invariants that FAILed FAIL again, and how\n"
			       "close the fault timeline came to the report's.\n"
			       "  REPORT        a report.json, a run directory or a run id\n"
			       "  --runs N      how many runs (default 1)\n"
			       "  --local       run the engine in this process (no daemon needed)\n"
			       "  --output PATH the replay scenario (default replay-RUN.json here);\n"
			       "                'faultctl run PATH' replays it again\n"
			       "  --json PATH   the outcome of every run as JSON\n"
			       "Exit: 0 reproduced in every run, 1 in some, 2 in none, 3 usage or setup\n"
			       "error.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return usage_error("needs one REPORT (a report.json, run directory or run id)%s", "");
	if (replay_src_load(argv[optind], rn->runs_dir, false, &src))
		return EXIT_USAGE;
	sched = replay_schedule(&src);
	if (!sched)
		goto out;
	doc = json_deep_copy(src.doc);
	json_object_set_new(doc, "seed", json_integer(jint(json_object_get(src.report, "scenario"),
							    "seed")));
	json_object_set_new(doc, "schedule", sched);
	if (!out_path) {
		snprintf(def_out, sizeof(def_out), "replay-%s.json", jstr(src.report, "run_id"));
		out_path = def_out;
	}
	if (replay_write_doc(out_path, doc)) {
		fprintf(stderr, "faultctl: replay: cannot write %s: %s\n", out_path, strerror(errno));
		goto out;
	}
	printf("replay of run %s (%s): %zu fault actions at their fired times, seed %lld -> %s\n",
	       jstr(src.report, "run_id"), src.sc->name, json_array_size(sched),
	       (long long)jint(json_object_get(src.report, "scenario"), "seed"), out_path);
	fflush(stdout);
	rows = json_array();
	stop = rn->begin(rn->arg, local);
	for (int i = 0; i < runs && !*stop; i++) {
		json_t *rep = NULL, *row;
		bool same;

		if (rn->run_one(rn->arg, out_path, &rep) || !rep) {
			printf("replay %d/%d: could not run\n", i + 1, runs);
			json_array_append_new(rows, json_pack("{ssso}", "verdict", "ERROR",
							      "reproduced", json_false()));
			done++;
			continue;
		}
		row = judge_run(src.report, rep, &same);
		print_run(src.report, rep, row, i + 1, runs);
		json_array_append_new(rows, row);
		reproduced += same;
		done++;
		json_decref(rep);
	}
	rn->end(rn->arg);
	printf("reproduced in %d of %d runs\n", reproduced, done);
	summary = json_pack("{sssssisisO}", "report", src.path, "replay_scenario", out_path,
			    "runs", done, "reproduced", reproduced, "results", rows);
	if (json_path && summary && replay_write_doc(json_path, summary))
		fprintf(stderr, "faultctl: replay: cannot write %s\n", json_path);
	json_decref(summary);
	code = done && reproduced == done ? 0 : reproduced ? 1 : 2;
out:
	json_decref(rows);
	json_decref(doc);
	replay_src_free(&src);
	return code;
}
