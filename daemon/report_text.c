/* Human-readable rendering of a JSON report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static const char *s_or(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : dflt;
}

void report_text_line(FILE *f, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *invs = json_object_get(rep, "invariants"), *inv;
	const char *first = NULL;
	size_t i;

	json_array_foreach(invs, i, inv) {
		if (strcmp(s_or(inv, "verdict", ""), "PASS") != 0) {
			first = s_or(inv, "name", "?");
			break;
		}
	}
	fprintf(f, "%-12s %-32s %-7s %6.1fs  %s%s%s\n", s_or(rep, "verdict", "?"),
		s_or(sc, "name", "?"), s_or(rep, "run_id", "?"),
		json_number_value(json_object_get(rep, "duration_s")),
		first ? first : "", first ? ": " : "",
		first ? s_or(json_array_get(invs, i), "summary", "")
		      : s_or(rep, "error", ""));
}

void report_text(FILE *f, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *arr, *item;
	size_t i;

	fprintf(f, "run %s  scenario %s (%s)\n", s_or(rep, "run_id", "?"),
		s_or(sc, "name", "?"), s_or(sc, "file", "?"));
	fprintf(f, "verdict: %s   (expected %s)\n", s_or(rep, "verdict", "?"),
		s_or(sc, "expect", "PASS"));
	fprintf(f, "time: %s .. %s (%.1fs), stop: %s\n", s_or(rep, "started_at", "?"),
		s_or(rep, "ended_at", "?"),
		json_number_value(json_object_get(rep, "duration_s")),
		s_or(rep, "stop_reason", ""));
	if (json_is_string(json_object_get(rep, "error")))
		fprintf(f, "error: %s\n", s_or(rep, "error", ""));
	fprintf(f, "\nworkloads:\n");
	arr = json_object_get(rep, "workloads");
	json_array_foreach(arr, i, item) {
		const json_t *code = json_object_get(item, "exit_code");
		char how[64];

		if (json_is_true(json_object_get(item, "timed_out")))
			snprintf(how, sizeof(how), "timed out");
		else if (json_is_string(json_object_get(item, "signal")))
			snprintf(how, sizeof(how), "killed by %s", s_or(item, "signal", "?"));
		else if (json_is_integer(code))
			snprintf(how, sizeof(how), "exit %lld%s", json_integer_value(code),
				 json_is_true(json_object_get(item, "stopped_by_faultd"))
				 ? " (stopped)" : "");
		else
			snprintf(how, sizeof(how), "not ended");
		fprintf(f, "  %-16s pid %-7lld %s\n", s_or(item, "name", "?"),
			json_integer_value(json_object_get(item, "pid")), how);
	}
	fprintf(f, "\ninvariants:\n");
	arr = json_object_get(rep, "invariants");
	json_array_foreach(arr, i, item) {
		const json_t *ev, *e;
		size_t k;

		fprintf(f, "  %-12s %-16s %s\n", s_or(item, "verdict", "?"),
			s_or(item, "name", "?"), s_or(item, "summary", ""));
		if (json_is_integer(json_object_get(item, "first_violation_cycle")))
			fprintf(f, "               first violation: cycle %lld at %s\n",
				json_integer_value(json_object_get(item, "first_violation_cycle")),
				s_or(item, "first_violation_at", "?"));
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
	fprintf(f, "\nreport: %s/report.json\n", s_or(rep, "run_dir", "?"));
}
