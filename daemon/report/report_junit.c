/* JUnit XML from JSON reports, for CI (Jenkins, GitLab): one <testsuite>
 * per run, one <testcase> per invariant.
 *
 * Crashed processes get no testcase of their own: a pid changes from run to
 * run, and CI tracks a testcase by name, so each crash would be a new test
 * that never passes again. The no_crash testcase's <failure> carries every
 * crash the report's evidence lists (pid, comm, signal, ancestry, cycle). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

/* --- JUnit --------------------------------------------------------------------- */

struct junit_in {
	json_t *const *reports;
	size_t n;
};

struct counts {
	size_t tests, failures, errors, skipped;
};

static bool run_error(const json_t *rep)
{
	return json_is_string(json_object_get(rep, "error")) ||
	       !strcmp(report_str(rep, "verdict", ""), "ERROR");
}

static void count(const json_t *rep, struct counts *c)
{
	const json_t *inv;
	size_t i;

	json_array_foreach(json_object_get(rep, "invariants"), i, inv) {
		const char *v = report_str(inv, "verdict", "");

		c->tests++;
		if (!strcmp(v, "FAIL"))
			c->failures++;
		else if (!strcmp(v, "INCONCLUSIVE"))
			c->skipped++;
		else if (strcmp(v, "PASS"))
			c->errors++;
	}
	if (run_error(rep)) {
		c->tests++;
		c->errors++;
	}
}

static void attr(FILE *f, const char *name, const char *value)
{
	fprintf(f, " %s=\"", name);
	report_escape(f, value);
	fputc('"', f);
}

static void property(FILE *f, const char *name, const char *value)
{
	fputs("      <property", f);
	attr(f, "name", name);
	attr(f, "value", value);
	fputs("/>\n", f);
}

/* "fds_stable[w]", with " #INDEX" when another invariant has the same. */
static void testcase_name(const json_t *invs, size_t idx, char *buf, size_t len)
{
	const json_t *me = json_array_get(invs, idx), *o;
	const char *wl = json_string_value(json_object_get(me, "workload"));
	size_t i;

	if (wl)
		snprintf(buf, len, "%s[%s]", report_str(me, "name", "?"), wl);
	else
		snprintf(buf, len, "%s", report_str(me, "name", "?"));
	json_array_foreach(invs, i, o) {
		const char *owl = json_string_value(json_object_get(o, "workload"));

		if (i == idx || strcmp(report_str(o, "name", ""), report_str(me, "name", "")) ||
		    (wl ? !owl || strcmp(wl, owl) : owl != NULL))
			continue;
		snprintf(buf + strlen(buf), len - strlen(buf), " #%zu", idx);
		break;
	}
}

static void testcase_body(FILE *f, const char *tag, const json_t *inv, const char *type)
{
	char *text = report_evidence_text(json_object_get(inv, "evidence"), 64 * 1024);
	const json_t *cyc = json_object_get(inv, "first_violation_cycle");

	fprintf(f, "      <%s", tag);
	attr(f, "message", report_str(inv, "summary", ""));
	attr(f, "type", type);
	fputs(">", f);
	report_escape(f, report_str(inv, "summary", ""));
	fputc('\n', f);
	if (json_is_integer(cyc)) {
		fprintf(f, "first violation: cycle %lld at ", (long long)json_integer_value(cyc));
		report_escape(f, report_str(inv, "first_violation_at", "?"));
		fputc('\n', f);
	}
	if (text && *text) {
		fputs("\nevidence:\n", f);
		report_escape(f, text);
	}
	fprintf(f, "</%s>\n", tag);
	free(text);
}

/* A testcase's own <system-out>: GitLab shows a testcase's output but not
 * the suite's, so each names the run and where its report is. */
static void testcase_out(FILE *f, const json_t *rep, const json_t *inv)
{
	const char *dir = report_str(rep, "run_dir", "?");

	fputs("      <system-out>run ", f);
	report_escape(f, report_str(rep, "run_id", "?"));
	if (inv) {
		fputs(": ", f);
		report_escape(f, report_str(inv, "verdict", "?"));
		fputs(" ", f);
		report_escape(f, report_str(inv, "summary", ""));
	}
	fputs("\nreport: ", f);
	report_escape(f, dir);
	fputs("/report.json\nhtml: ", f);
	report_escape(f, dir);
	fputs("/report.html\n</system-out>\n", f);
}

static void suite(FILE *f, const json_t *rep, size_t id)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *invs = json_object_get(rep, "invariants"), *inv;
	const char *scname = report_str(sc, "name", "?");
	char classname[256], name[512], ts[20] = "", num[32];
	struct counts c = {0};
	double secs;
	size_t i;

	count(rep, &c);
	secs = json_number_value(json_object_get(rep, "duration_s"));
	snprintf(classname, sizeof(classname), "faultd.%s", scname);
	/* JUnit schemas want a timestamp without zone or fraction; ours is UTC. */
	snprintf(ts, sizeof(ts), "%.19s", report_str(rep, "started_at", "1970-01-01T00:00:00"));
	fputs("  <testsuite", f);
	attr(f, "name", scname);
	fprintf(f, " id=\"%zu\" package=\"faultd\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		"skipped=\"%zu\" time=\"%.3f\"", id, c.tests, c.failures, c.errors, c.skipped,
		secs);
	attr(f, "timestamp", ts);
	attr(f, "hostname", report_str(json_object_get(rep, "host"), "hostname", "localhost"));
	fputs(">\n    <properties>\n", f);
	property(f, "run_id", report_str(rep, "run_id", "?"));
	property(f, "verdict", report_str(rep, "verdict", "?"));
	property(f, "expected_verdict", report_str(sc, "expect", "PASS"));
	property(f, "expected_verdict_matched",
		 json_is_true(json_object_get(rep, "expected_verdict_matched")) ? "true" : "false");
	snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(json_object_get(sc, "seed")));
	property(f, "seed", num);
	property(f, "scenario_file", report_str(sc, "file", ""));
	property(f, "stop_reason", report_str(rep, "stop_reason", ""));
	property(f, "started_at", report_str(rep, "started_at", ""));
	property(f, "run_dir", report_str(rep, "run_dir", ""));
	property(f, "faultd_version", report_str(rep, "faultd_version", ""));
	fputs("    </properties>\n", f);

	if (run_error(rep)) {
		fputs("    <testcase name=\"run\"", f);
		attr(f, "classname", classname);
		fprintf(f, " time=\"%.3f\">\n      <error", secs);
		attr(f, "message", report_str(rep, "error", "the run ended in ERROR"));
		fputs(" type=\"run_error\">", f);
		report_escape(f, report_str(rep, "error", "the run ended in ERROR"));
		fputs("\nstop: ", f);
		report_escape(f, report_str(rep, "stop_reason", ""));
		fputs("</error>\n", f);
		testcase_out(f, rep, NULL);
		fputs("    </testcase>\n", f);
	}
	json_array_foreach(invs, i, inv) {
		const char *v = report_str(inv, "verdict", "");
		const char *iname = report_str(inv, "name", "?");

		testcase_name(invs, i, name, sizeof(name));
		fputs("    <testcase", f);
		attr(f, "name", name);
		attr(f, "classname", classname);
		fprintf(f, " time=\"%.3f\">\n", secs);
		if (!strcmp(v, "PASS")) {
			/* nothing but the output below */
		} else if (!strcmp(v, "FAIL")) {
			testcase_body(f, "failure", inv, iname);
		} else if (!strcmp(v, "INCONCLUSIVE")) {
			fputs("      <skipped", f);
			attr(f, "message", report_str(inv, "summary", "inconclusive"));
			fputs("/>\n", f);
		} else {
			testcase_body(f, "error", inv, iname);
		}
		testcase_out(f, rep, inv);
		fputs("    </testcase>\n", f);
	}
	fputs("    <system-out>verdict ", f);
	report_escape(f, report_str(rep, "verdict", "?"));
	fputs(" (expected ", f);
	report_escape(f, report_str(sc, "expect", "PASS"));
	fputs("), stop: ", f);
	report_escape(f, report_str(rep, "stop_reason", ""));
	fputs("\nreport: ", f);
	report_escape(f, report_str(rep, "run_dir", "?"));
	fputs("/report.json\n</system-out>\n  </testsuite>\n", f);
}

static void render_junit(FILE *f, const void *arg)
{
	const struct junit_in *in = arg;
	struct counts all = {0};
	double time = 0;

	for (size_t i = 0; i < in->n; i++) {
		count(in->reports[i], &all);
		time += json_number_value(json_object_get(in->reports[i], "duration_s"));
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuites name=\"faultd\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		"time=\"%.3f\">\n", all.tests, all.failures, all.errors, time);
	for (size_t i = 0; i < in->n; i++)
		suite(f, in->reports[i], i);
	fputs("</testsuites>\n", f);
}

void report_junit(FILE *f, json_t *const *reports, size_t n)
{
	struct junit_in in = {reports, n};

	render_junit(f, &in);
}

int report_junit_write(json_t *const *reports, size_t n, const char *path)
{
	struct junit_in in = {reports, n};

	return report_write_with(path, render_junit, &in);
}
