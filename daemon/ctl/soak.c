#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "soak.h"
#include "util.h"

#define SOAK_SUMMARY_KEEP 10000	/* run lines kept in the summary */
#define SOAK_JUNIT_RERUNS 50	/* missed runs listed per testcase in JUnit */

uint64_t soak_parse_duration(const char *s)
{
	uint64_t total = 0;

	while (s && *s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		uint64_t unit = 1000;

		if (end == s)
			return 0;
		switch (*end) {
		case 'h': unit = 3600000; end++; break;
		case 'm': unit = 60000; end++; break;
		case 's': end++; break;
		case '\0': break;
		default: return 0;
		}
		total += v * unit;
		s = end;
	}
	return total;
}

struct soak_sc {
	const char *file;
	json_t *stats;			/* {name, file, expect, runs, pass, ...} */
};

static const char *verdict_key(const char *v)
{
	return !v ? "errors" : !strcmp(v, "PASS") ? "passes" : !strcmp(v, "FAIL") ? "fails" :
	       !strcmp(v, "INCONCLUSIVE") ? "inconclusives" : "errors";
}

static void bump(json_t *obj, const char *key)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + 1));
}

/* One run into its scenario's line: counts, and the first run that did not
 * give the expected verdict, with its first failure. */
static void account(struct soak_sc *sc, const json_t *rep, uint64_t t_ms)
{
	const char *v = rep ? json_string_value(json_object_get(rep, "verdict")) : NULL;
	const char *expect = rep ? json_string_value(json_object_get(
				json_object_get(rep, "scenario"), "expect")) : NULL;
	const char *name = rep ? json_string_value(json_object_get(
				json_object_get(rep, "scenario"), "name")) : NULL;

	if (name && !json_object_get(sc->stats, "name"))
		json_object_set_new(sc->stats, "name", json_string(name));
	if (expect)
		json_object_set_new(sc->stats, "expect", json_string(expect));
	bump(sc->stats, "runs");
	bump(sc->stats, verdict_key(v));
	if (v && expect && !strcmp(v, expect)) {
		bump(sc->stats, "as_expected");
		return;
	}
	bump(sc->stats, "not_as_expected");
	if (!json_object_get(sc->stats, "first_miss")) {
		const json_t *inv;
		const char *why = v ? v : "could not run";
		size_t i;

		json_array_foreach(json_object_get(rep, "invariants"), i, inv)
			if (!strcmp(json_string_value(json_object_get(inv, "verdict")) ?: "", "FAIL")) {
				why = json_string_value(json_object_get(inv, "summary"));
				break;
			}
		json_object_set_new(sc->stats, "first_miss", json_pack("{sIssssss?}",
			"soak_ms", (json_int_t)t_ms, "verdict", v ? v : "ERROR", "why", why ? why : "",
			"run_id", rep ? json_string_value(json_object_get(rep, "run_id")) : NULL));
	}
}

/* The summary's line for one run. */
static json_t *run_row(int iteration, const char *file, const json_t *rep, uint64_t soak_ms)
{
	const char *v = rep ? json_string_value(json_object_get(rep, "verdict")) : NULL;
	const char *expect = rep ? json_string_value(json_object_get(
				json_object_get(rep, "scenario"), "expect")) : NULL;

	return json_pack("{sissssss?sIsfsb}", "iteration", iteration, "file", file,
			 "verdict", v ? v : "ERROR",
			 "run_id", rep ? json_string_value(json_object_get(rep, "run_id")) : NULL,
			 "soak_ms", (json_int_t)soak_ms,
			 "duration_s", rep ? json_number_value(json_object_get(rep, "duration_s")) : 0.0,
			 "as_expected", v && expect && !strcmp(v, expect));
}

static bool flaky(const json_t *st)
{
	return json_integer_value(json_object_get(st, "as_expected")) > 0 &&
	       json_integer_value(json_object_get(st, "not_as_expected")) > 0;
}

static json_t *summary(const struct soak_opts *o, struct soak_sc *scs, json_t *runs,
		       uint64_t t0, uint64_t now, int iterations)
{
	json_t *all = json_array();

	for (int i = 0; all && i < o->n_files; i++) {
		json_object_set_new(scs[i].stats, "flaky", json_boolean(flaky(scs[i].stats)));
		json_array_append(all, scs[i].stats);
	}
	return json_pack("{sIsIsisosO}", "started_at_ms", (json_int_t)t0,
			 "elapsed_ms", (json_int_t)(now - t0), "iterations", iterations,
			 "scenarios", all ? all : json_array(), "runs", runs);
}

/* Older run directories go; their summary line stays. */
static void bound_disk(json_t *kept, unsigned keep)
{
	while (json_array_size(kept) > keep) {
		const char *dir = json_string_value(json_array_get(kept, 0));

		/* Gone from disk; the summary still has its line. */
		if (dir && strstr(dir, "/") && util_rm_tree(dir) < 0)
			fprintf(stderr, "faultctl: soak: cannot remove %s\n", dir);
		json_array_remove(kept, 0);
	}
}

static void dump_json(FILE *f, const void *arg)
{
	json_dumpf(arg, f, JSON_INDENT(2));
	fputc('\n', f);
}

/* One run that missed its expectation, as Surefire writes a rerun:
 * <flakyFailure> when the scenario also met it (a flaky test, which CI
 * plugins show as flaky), <rerunFailure> after the <failure> otherwise. */
static void junit_miss(FILE *f, const char *tag, const json_t *row, const char *expect)
{
	fprintf(f, "      <%s type=\"", tag);
	report_escape(f, json_string_value(json_object_get(row, "verdict")) ?: "ERROR");
	fprintf(f, "\" message=\"");
	report_escape(f, json_string_value(json_object_get(row, "verdict")) ?: "ERROR");
	fprintf(f, ", expected ");
	report_escape(f, expect);
	fprintf(f, "\">\n        <system-out>run ");
	report_escape(f, json_string_value(json_object_get(row, "run_id")) ?: "-");
	fprintf(f, ", iteration %lld, %.1f s into the soak</system-out>\n      </%s>\n",
		json_integer_value(json_object_get(row, "iteration")),
		(double)json_integer_value(json_object_get(row, "soak_ms")) / 1000.0, tag);
}

/* A scenario's testcase: its time is the sum of its runs' durations. */
static void junit_soak_case(FILE *f, const json_t *sum, const json_t *st)
{
	const json_t *miss = json_object_get(st, "first_miss"), *row;
	const char *file = json_string_value(json_object_get(st, "file"));
	const char *expect = json_string_value(json_object_get(st, "expect")) ?: "PASS";
	bool is_flaky = flaky(st), first = true;
	double secs = 0;
	size_t i, listed = 0;

	json_array_foreach(json_object_get(sum, "runs"), i, row)
		if (!strcmp(json_string_value(json_object_get(row, "file")) ?: "", file ?: ""))
			secs += json_number_value(json_object_get(row, "duration_s"));
	fprintf(f, "    <testcase classname=\"faultd.soak\" name=\"");
	report_escape(f, json_string_value(json_object_get(st, "name")) ?: file);
	fprintf(f, "\" time=\"%.3f\">\n", secs);
	if (miss && !is_flaky) {
		fprintf(f, "      <failure type=\"failed\" message=\"%lld of %lld runs not ",
			json_integer_value(json_object_get(st, "not_as_expected")),
			json_integer_value(json_object_get(st, "runs")));
		report_escape(f, expect);
		fprintf(f, "\">first at %.1f s into the soak, run ",
			(double)json_integer_value(json_object_get(miss, "soak_ms")) / 1000.0);
		report_escape(f, json_string_value(json_object_get(miss, "run_id")) ?: "-");
		fprintf(f, ": ");
		report_escape(f, json_string_value(json_object_get(miss, "why")));
		fprintf(f, "</failure>\n");
	}
	json_array_foreach(json_object_get(sum, "runs"), i, row) {
		if (strcmp(json_string_value(json_object_get(row, "file")) ?: "", file ?: "") ||
		    json_is_true(json_object_get(row, "as_expected")))
			continue;
		/* The <failure> stands for the first miss of a scenario that never passed. */
		if (first && !is_flaky) {
			first = false;
			continue;
		}
		if (listed++ == SOAK_JUNIT_RERUNS)
			break;
		junit_miss(f, is_flaky ? "flakyFailure" : "rerunFailure", row, expect);
	}
	fprintf(f, "      <system-out>runs %lld, passes %lld, fails %lld, inconclusive "
		"%lld, errors %lld%s\n", json_integer_value(json_object_get(st, "runs")),
		json_integer_value(json_object_get(st, "passes")),
		json_integer_value(json_object_get(st, "fails")),
		json_integer_value(json_object_get(st, "inconclusives")),
		json_integer_value(json_object_get(st, "errors")), is_flaky ? " (FLAKY)" : "");
	if (miss && is_flaky) {
		fprintf(f, "first miss at %.1f s into the soak, run ",
			(double)json_integer_value(json_object_get(miss, "soak_ms")) / 1000.0);
		report_escape(f, json_string_value(json_object_get(miss, "run_id")) ?: "-");
		fprintf(f, ": ");
		report_escape(f, json_string_value(json_object_get(miss, "why")));
		fputc('\n', f);
	}
	fprintf(f, "</system-out>\n    </testcase>\n");
}

/* JUnit for the soak: one testcase per scenario. A flaky scenario is a
 * passing testcase with one <flakyFailure> per missed run (how Surefire and
 * Gradle mark a test that passed on a rerun, and what Jenkins' and GitHub's
 * JUnit readers show as flaky); the soak still exits 1 for it. */
static void junit_soak(FILE *f, const void *arg)
{
	const json_t *sum = arg, *st;
	char host[256] = "localhost", ts[32] = "1970-01-01T00:00:00";
	time_t t0 = (time_t)(json_integer_value(json_object_get(sum, "started_at_ms")) / 1000);
	struct tm tm;
	size_t i, fails = 0, flakies = 0;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	if (gmtime_r(&t0, &tm))
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	json_array_foreach(json_object_get(sum, "scenarios"), i, st) {
		fails += json_integer_value(json_object_get(st, "not_as_expected")) > 0 && !flaky(st);
		flakies += flaky(st);
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
		"  <testsuite name=\"faultd soak\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
		"skipped=\"0\" time=\"%.3f\" timestamp=\"%s\" hostname=\"",
		json_array_size(json_object_get(sum, "scenarios")), fails,
		(double)json_integer_value(json_object_get(sum, "elapsed_ms")) / 1000.0, ts);
	report_escape(f, host);
	fprintf(f, "\">\n    <properties>\n      <property name=\"iterations\" value=\"%d\"/>\n"
		"      <property name=\"flaky_scenarios\" value=\"%zu\"/>\n    </properties>\n",
		(int)json_integer_value(json_object_get(sum, "iterations")), flakies);
	json_array_foreach(json_object_get(sum, "scenarios"), i, st)
		junit_soak_case(f, sum, st);
	fprintf(f, "  </testsuite>\n</testsuites>\n");
}

int soak_run(const struct soak_opts *o)
{
	struct soak_sc *scs = calloc((size_t)o->n_files, sizeof(*scs));
	json_t *runs = json_array(), *kept = json_array(), *sum = NULL;
	uint64_t t0 = util_realtime_ms(), now = t0;
	int iterations = 0, code = 0;

	if (!scs || !runs || !kept) {
		code = 3;
		goto out;
	}
	for (int i = 0; i < o->n_files; i++) {
		scs[i].file = o->files[i];
		scs[i].stats = json_pack("{sssIsIsIsIsIsIsI}", "file", o->files[i], "runs",
					 (json_int_t)0, "passes", (json_int_t)0, "fails", (json_int_t)0,
					 "inconclusives", (json_int_t)0, "errors", (json_int_t)0,
					 "as_expected", (json_int_t)0, "not_as_expected", (json_int_t)0);
	}
	while (!*o->stop && now - t0 < o->duration_ms) {
		iterations++;
		for (int i = 0; i < o->n_files && !*o->stop; i++) {
			json_t *rep = NULL;
			const char *dir;

			o->run_one(o->arg, o->files[i], &rep);
			now = util_realtime_ms();
			account(&scs[i], rep, now - t0);
			if (json_array_size(runs) < SOAK_SUMMARY_KEEP)
				json_array_append_new(runs, run_row(iterations, o->files[i], rep,
								    now - t0));
			dir = rep ? json_string_value(json_object_get(rep, "run_dir")) : NULL;
			if (dir)
				json_array_append_new(kept, json_string(dir));
			bound_disk(kept, o->keep_runs);
			json_decref(sum);
			sum = summary(o, scs, runs, t0, now, iterations);
			if (sum && o->summary_path)
				report_write_with(o->summary_path, dump_json, sum);
			if (!o->quiet && rep)
				report_text_line(stdout, rep);
			fflush(stdout);
			json_decref(rep);
			if (now - t0 >= o->duration_ms)
				break;
		}
	}
	json_decref(sum);
	sum = summary(o, scs, runs, t0, util_realtime_ms(), iterations);
	if (sum && o->summary_path)
		report_write_with(o->summary_path, dump_json, sum);
	if (sum && o->junit_path)
		report_write_with(o->junit_path, junit_soak, sum);
	printf("\n%-32s %6s %6s %6s %6s %6s  %s\n", "SCENARIO", "RUNS", "PASS", "FAIL", "INCONC",
	       "ERROR", "FIRST MISS");
	for (int i = 0; i < o->n_files; i++) {
		const json_t *st = scs[i].stats, *miss = json_object_get(st, "first_miss");

		printf("%-32s %6lld %6lld %6lld %6lld %6lld  %s%s\n",
		       json_string_value(json_object_get(st, "name")) ?: scs[i].file,
		       json_integer_value(json_object_get(st, "runs")),
		       json_integer_value(json_object_get(st, "passes")),
		       json_integer_value(json_object_get(st, "fails")),
		       json_integer_value(json_object_get(st, "inconclusives")),
		       json_integer_value(json_object_get(st, "errors")),
		       flaky(st) ? "FLAKY: " : "",
		       miss ? json_string_value(json_object_get(miss, "why")) : "");
		if (json_integer_value(json_object_get(st, "not_as_expected")))
			code = 1;
		/* Not one run of it ran: a setup problem, not a verdict. */
		if (json_integer_value(json_object_get(st, "errors")) ==
		    json_integer_value(json_object_get(st, "runs")))
			code = 3;
	}
out:
	for (int i = 0; scs && i < o->n_files; i++)
		json_decref(scs[i].stats);
	free(scs);
	json_decref(sum);
	json_decref(runs);
	json_decref(kept);
	return code;
}
