/* Human-readable rendering of a JSON report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

void report_text_line(FILE *f, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *invs = json_object_get(rep, "invariants"), *inv;
	const char *first = NULL;
	size_t i;

	json_array_foreach(invs, i, inv) {
		if (strcmp(report_str(inv, "verdict", ""), "PASS") != 0) {
			first = report_str(inv, "name", "?");
			break;
		}
	}
	fprintf(f, "%-12s %-32s %-7s %6.1fs  %s%s%s\n", report_str(rep, "verdict", "?"),
		report_str(sc, "name", "?"), report_str(rep, "run_id", "?"),
		json_number_value(json_object_get(rep, "duration_s")),
		first ? first : "", first ? ": " : "",
		first ? report_str(json_array_get(invs, i), "summary", "")
		      : report_str(rep, "error", ""));
}

void report_text(FILE *f, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *arr, *item;
	size_t i;

	fprintf(f, "run %s  scenario %s (%s)\n", report_str(rep, "run_id", "?"),
		report_str(sc, "name", "?"), report_str(sc, "file", "?"));
	fprintf(f, "verdict: %s   (expected %s)\n", report_str(rep, "verdict", "?"),
		report_str(sc, "expect", "PASS"));
	fprintf(f, "time: %s .. %s (%.1fs), stop: %s\n", report_str(rep, "started_at", "?"),
		report_str(rep, "ended_at", "?"),
		json_number_value(json_object_get(rep, "duration_s")),
		report_str(rep, "stop_reason", ""));
	if (json_is_string(json_object_get(rep, "error")))
		fprintf(f, "error: %s\n", report_str(rep, "error", ""));
	fprintf(f, "\nworkloads:\n");
	arr = json_object_get(rep, "workloads");
	json_array_foreach(arr, i, item) {
		const json_t *code = json_object_get(item, "exit_code");
		char how[64];

		if (json_is_true(json_object_get(item, "timed_out")))
			snprintf(how, sizeof(how), "timed out");
		else if (json_is_string(json_object_get(item, "signal")))
			snprintf(how, sizeof(how), "killed by %s", report_str(item, "signal", "?"));
		else if (json_is_integer(code))
			snprintf(how, sizeof(how), "exit %lld%s", json_integer_value(code),
				 json_is_true(json_object_get(item, "stopped_by_faultd"))
				 ? " (stopped)" : "");
		else
			snprintf(how, sizeof(how), "not ended");
		fprintf(f, "  %-16s pid %-7lld %s\n", report_str(item, "name", "?"),
			json_integer_value(json_object_get(item, "pid")), how);
	}
	fprintf(f, "\ninvariants:\n");
	arr = json_object_get(rep, "invariants");
	json_array_foreach(arr, i, item) {
		const json_t *ev, *e;
		size_t k;

		fprintf(f, "  %-12s %-16s %s\n", report_str(item, "verdict", "?"),
			report_str(item, "name", "?"), report_str(item, "summary", ""));
		if (json_is_integer(json_object_get(item, "first_violation_cycle")))
			fprintf(f, "               first violation: cycle %lld at %s\n",
				json_integer_value(json_object_get(item, "first_violation_cycle")),
				report_str(item, "first_violation_at", "?"));
		ev = json_object_get(item, "evidence");
		json_array_foreach(ev, k, e) {
			char *line;

			if (k == 5) {
				fprintf(f, "               ... %zu more\n", json_array_size(ev) - 5);
				break;
			}
			line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fprintf(f, "               %s\n", line ? line : "?");
			free(line);
		}
	}
	fprintf(f, "\nreport: %s/report.json\n", report_str(rep, "run_dir", "?"));
}
