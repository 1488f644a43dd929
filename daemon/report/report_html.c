/* One self-contained HTML page from a JSON report: verdict, invariants with
 * their evidence, the fault timeline, and an inline SVG plot per per-cycle
 * series with the fault windows shaded and the first violation marked
 * (report_plot.c draws the plots). No script and no external asset, so it
 * opens from a CI artifact as is. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_plot.h"

#define MAX_FAULT_ROWS	1000	/* rows of the fault timeline table */
#define MAX_CELL	2000	/* bytes of any one string printed */
#define EV_CAP		(32 * 1024)	/* bytes of evidence per invariant */

/* Escaped, and cut (on a character boundary) at MAX_CELL bytes. */
void report_html_esc(FILE *f, const char *s)
{
	size_t len;

	if (!s)
		return;
	len = strlen(s);
	if (len <= MAX_CELL) {
		report_escape_n(f, s, len);
		return;
	}
	len = MAX_CELL;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	report_escape_n(f, s, len);
	fputs("\xe2\x80\xa6", f);
}

static const char *verdict_class(const char *v)
{
	if (!strcmp(v, "PASS") || !strcmp(v, "FAIL") || !strcmp(v, "INCONCLUSIVE") ||
	    !strcmp(v, "ERROR"))
		return v;
	return "UNKNOWN";
}

static void verdict_badge(FILE *f, const char *v, const char *id)
{
	fprintf(f, "<span class=\"verdict v-%s\"%s%s%s>", verdict_class(v), id ? " id=\"" : "",
		id ? id : "", id ? "\"" : "");
	report_html_esc(f, v);
	fputs("</span>", f);
}

static const char css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
	"max-width:1200px;padding:16px 24px;color:#1f2328;background:#fff}"
	"h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;"
	"border-bottom:1px solid #d0d7de;padding-bottom:4px}"
	".verdict{display:inline-block;padding:2px 10px;border-radius:6px;color:#fff;"
	"font-weight:700;letter-spacing:.5px}"
	".v-PASS{background:#1a7f37}.v-FAIL{background:#cf222e}"
	".v-INCONCLUSIVE{background:#9a6700}.v-ERROR{background:#8250df}"
	".v-UNKNOWN{background:#6e7781}"
	"dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}"
	"dl.meta dt{color:#57606a}dl.meta dd{margin:0}"
	"table{border-collapse:collapse;width:100%;margin:4px 0}"
	"th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}"
	"th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}"
	"tr.late td.late{color:#cf222e}td.err{color:#cf222e}"
	"pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:8px;"
	"margin:4px 0;max-height:480px;overflow:auto;font-size:12px}"
	"details summary{cursor:pointer;color:#0969da}"
	".error{color:#cf222e;font-weight:600}.muted{color:#57606a}"
	"figure{margin:10px 0 18px}figcaption{font-weight:600;margin-bottom:2px}"
	"svg.plot{display:block;background:#fff;max-width:100%;height:auto}"
	"svg.plot .plot-area{fill:#fff;stroke:#8c959f}"
	"svg.plot .grid{stroke:#eaeef2;stroke-width:1}"
	"svg.plot .tick{font-size:11px;fill:#57606a}"
	"svg.plot .axis-label{font-size:12px;fill:#1f2328}"
	"svg.plot .series{fill:none;stroke:#0969da;stroke-width:2}"
	"svg.plot .dot{fill:#0969da}"
	"svg.plot .fault-window{fill:#fb8f44;fill-opacity:.22}"
	"svg.plot .fault-window.k-packet,svg.plot .fault-window.k-delay,"
	"svg.plot .fault-window.k-rate{fill:#8250df;fill-opacity:.16}"
	"svg.plot .fault-window.k-syscall_error,svg.plot .fault-window.k-pause"
	"{fill:#bf8700;fill-opacity:.18}"
	"svg.plot .violation{stroke:#cf222e;stroke-width:2;stroke-dasharray:6 3}"
	"svg.plot .violation-label{font-size:11px;fill:#cf222e;font-weight:600}"
	".legend span{display:inline-block;margin-right:16px}"
	".sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}";

/* --- header, workloads, invariants ------------------------------------------ */

static void meta_row(FILE *f, const char *k, const char *v)
{
	fputs("<dt>", f);
	report_html_esc(f, k);
	fputs("</dt><dd>", f);
	report_html_esc(f, v);
	fputs("</dd>\n", f);
}

static void header(FILE *f, const json_t *rep)
{
	const json_t *sc = json_object_get(rep, "scenario");
	const json_t *host = json_object_get(rep, "host");
	char buf[256];

	fputs("<header>\n<h1>", f);
	verdict_badge(f, report_str(rep, "verdict", "?"), "verdict");
	fputs(" ", f);
	report_html_esc(f, report_str(sc, "name", "?"));
	fputs("</h1>\n<dl class=\"meta\">\n", f);
	meta_row(f, "run id", report_str(rep, "run_id", "?"));
	snprintf(buf, sizeof(buf), "%s (%s)", report_str(sc, "expect", "PASS"),
		 json_is_true(json_object_get(rep, "expected_verdict_matched")) ? "matched"
										 : "not matched");
	meta_row(f, "expected", buf);
	snprintf(buf, sizeof(buf), "%lld%s", (long long)json_integer_value(json_object_get(sc, "seed")),
		 json_is_true(json_object_get(sc, "seed_given")) ? "" : " (drawn at random)");
	meta_row(f, "seed", buf);
	snprintf(buf, sizeof(buf), "%.1f s", json_number_value(json_object_get(rep, "duration_s")));
	meta_row(f, "duration", buf);
	meta_row(f, "stop reason", report_str(rep, "stop_reason", ""));
	meta_row(f, "started", report_str(rep, "started_at", "?"));
	meta_row(f, "ended", report_str(rep, "ended_at", "?"));
	meta_row(f, "scenario file", report_str(sc, "file", "?"));
	snprintf(buf, sizeof(buf), "%s, Linux %s %s, faultd %s", report_str(host, "hostname", "?"),
		 report_str(host, "kernel", "?"), report_str(host, "machine", "?"),
		 report_str(rep, "faultd_version", "?"));
	meta_row(f, "host", buf);
	meta_row(f, "run directory", report_str(rep, "run_dir", "?"));
	fputs("</dl>\n", f);
	if (json_is_string(json_object_get(rep, "error"))) {
		fputs("<p class=\"error\" id=\"run-error\">error: ", f);
		report_html_esc(f, report_str(rep, "error", ""));
		fputs("</p>\n", f);
	}
	fputs("</header>\n", f);
}

static void workloads(FILE *f, const json_t *rep)
{
	const json_t *arr = json_object_get(rep, "workloads"), *w;
	size_t i;

	if (!json_array_size(arr))
		return;
	fputs("<h2>Workloads</h2>\n<table id=\"workloads\"><tr><th>name</th><th>kind</th>"
	      "<th>pid</th><th>end</th><th>output</th></tr>\n", f);
	json_array_foreach(arr, i, w) {
		const json_t *code = json_object_get(w, "exit_code");
		char how[96];

		if (json_is_true(json_object_get(w, "timed_out")))
			snprintf(how, sizeof(how), "timed out");
		else if (json_is_string(json_object_get(w, "signal")))
			snprintf(how, sizeof(how), "killed by %.40s%s", report_str(w, "signal", "?"),
				 json_is_true(json_object_get(w, "core_dumped")) ? " (core dumped)" : "");
		else if (json_is_integer(code))
			snprintf(how, sizeof(how), "exit %lld%s", (long long)json_integer_value(code),
				 json_is_true(json_object_get(w, "stopped_by_faultd")) ? " (stopped)" : "");
		else if (!json_is_true(json_object_get(w, "started")))
			snprintf(how, sizeof(how), "not started");
		else
			snprintf(how, sizeof(how), "not ended");
		fputs("<tr><td>", f);
		report_html_esc(f, report_str(w, "name", "?"));
		fputs("</td><td>", f);
		report_html_esc(f, report_str(w, "kind", "?"));
		fprintf(f, "</td><td class=\"num\">%lld</td><td>",
			(long long)json_integer_value(json_object_get(w, "pid")));
		report_html_esc(f, how);
		fprintf(f, "</td><td>%lld bytes", (long long)json_integer_value(
				json_object_get(w, "output_bytes")));
		if (json_is_string(json_object_get(w, "stdout"))) {
			fputs(" <span class=\"muted\">", f);
			report_html_esc(f, report_str(w, "stdout", ""));
			fputs("</span>", f);
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

static void invariants(FILE *f, const json_t *rep)
{
	const json_t *arr = json_object_get(rep, "invariants"), *inv;
	size_t i;

	fputs("<h2>Invariants</h2>\n", f);
	if (!json_array_size(arr)) {
		fputs("<p class=\"muted\">No invariant was judged.</p>\n", f);
		return;
	}
	fputs("<table id=\"invariants\"><tr><th>verdict</th><th>invariant</th><th>workload</th>"
	      "<th>summary and evidence</th><th>first violation</th></tr>\n", f);
	json_array_foreach(arr, i, inv) {
		const json_t *ev = json_object_get(inv, "evidence");
		const json_t *cyc = json_object_get(inv, "first_violation_cycle");

		fprintf(f, "<tr class=\"invariant\" id=\"inv-%zu\"><td>", i);
		verdict_badge(f, report_str(inv, "verdict", "?"), NULL);
		fputs("</td><td>", f);
		report_html_esc(f, report_str(inv, "name", "?"));
		fputs("</td><td>", f);
		report_html_esc(f, report_str(inv, "workload", "all"));
		fputs("</td><td>", f);
		report_html_esc(f, report_str(inv, "summary", ""));
		if (json_array_size(ev)) {
			char *text = report_evidence_text(ev, EV_CAP);

			/* Open what explains a failure; the rest stays folded. */
			fprintf(f, "<details class=\"evidence\"%s><summary>evidence (%zu item%s)"
				"</summary><pre>", !strcmp(report_str(inv, "verdict", ""), "FAIL") &&
				text && strlen(text) < 2048 ? " open" : "", json_array_size(ev),
				json_array_size(ev) == 1 ? "" : "s");
			if (text)
				report_escape(f, text);
			else
				fputs("(out of memory)", f);
			fputs("</pre></details>", f);
			free(text);
		}
		fputs("</td><td>", f);
		if (json_is_integer(cyc)) {
			fprintf(f, "cycle %lld", (long long)json_integer_value(cyc));
			if (json_is_integer(json_object_get(inv, "first_violation_ms")))
				fprintf(f, ", %.1f s", (double)json_integer_value(
					json_object_get(inv, "first_violation_ms")) / 1000.0);
			fputs("<br><span class=\"muted\">", f);
			report_html_esc(f, report_str(inv, "first_violation_at", ""));
			fputs("</span>", f);
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* --- fault timeline ------------------------------------------------------------- */

long long report_html_int_or(const json_t *obj, const char *key, long long dflt)
{
	const json_t *v = json_object_get(obj, key);
	double d = json_number_value(v);

	if (json_is_integer(v))
		return json_integer_value(v);
	/* A damaged report's 2e90 (or NaN) is no integer: the default. */
	return json_is_real(v) && d > -9.2e18 && d < 9.2e18 ? (long long)d : dflt;
}

static void fault_table(FILE *f, const json_t *rep)
{
	static const char *const shown[] = {"t_planned_ms", "t_actual_ms", "action", "target",
					    "fault", "cycle", "error"};
	const json_t *arr = json_object_get(rep, "faults"), *e;
	size_t i;

	fputs("<h2>Fault timeline</h2>\n", f);
	if (!json_array_size(arr)) {
		fputs("<p class=\"muted\" id=\"no-faults\">No fault was injected.</p>\n", f);
		return;
	}
	fputs("<table id=\"faults\"><tr><th>#</th><th>planned ms</th><th>actual ms</th>"
	      "<th>late ms</th><th>action</th><th>fault</th><th>target</th><th>cycle</th>"
	      "<th>error</th><th>details</th></tr>\n", f);
	json_array_foreach(arr, i, e) {
		long long planned = report_html_int_or(e, "t_planned_ms", -1), actual = report_html_int_or(e, "t_actual_ms", -1);
		const char *k;
		const json_t *v;
		bool first = true;

		if (i == MAX_FAULT_ROWS) {
			fprintf(f, "<tr><td colspan=\"10\" class=\"muted\">... %zu more in "
				"report.json</td></tr>\n", json_array_size(arr) - i);
			break;
		}
		fprintf(f, "<tr class=\"fault%s\"><td class=\"num\">%zu</td>",
			planned >= 0 && actual - planned > 100 ? " late" : "", i + 1);
		if (planned >= 0)
			fprintf(f, "<td class=\"num\">%lld</td>", planned);
		else
			fputs("<td></td>", f);
		if (actual >= 0)
			fprintf(f, "<td class=\"num\">%lld</td>", actual);
		else
			fputs("<td></td>", f);
		if (planned >= 0 && actual >= 0)
			fprintf(f, "<td class=\"num late\">%+lld</td>", actual - planned);
		else
			fputs("<td></td>", f);
		fputs("<td>", f);
		report_html_esc(f, report_str(e, "action", ""));
		fputs("</td><td>", f);
		report_html_esc(f, report_str(e, "fault", ""));
		fputs("</td><td>", f);
		report_html_esc(f, report_str(e, "target", ""));
		fputs("</td><td class=\"num\">", f);
		if (json_is_integer(json_object_get(e, "cycle")))
			fprintf(f, "%lld", (long long)json_integer_value(json_object_get(e, "cycle")));
		fputs("</td><td class=\"err\">", f);
		report_html_esc(f, report_str(e, "error", ""));
		fputs("</td><td class=\"muted\">", f);
		/* Whatever else the action recorded (kernel name, rates). */
		json_object_foreach((json_t *)e, k, v) {
			char *text;
			size_t s;

			for (s = 0; s < sizeof(shown) / sizeof(shown[0]); s++)
				if (!strcmp(k, shown[s]))
					break;
			if (s < sizeof(shown) / sizeof(shown[0]))
				continue;
			fputs(first ? "" : ", ", f);
			report_html_esc(f, k);
			fputs("=", f);
			text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			report_html_esc(f, json_is_string(v) ? json_string_value(v) : text ? text : "?");
			free(text);
			first = false;
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

static void render_html(FILE *f, const void *arg)
{
	const json_t *rep = arg;
	const json_t *sc = json_object_get(rep, "scenario");

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
	report_html_esc(f, report_str(rep, "verdict", "?"));
	fputs(" ", f);
	report_html_esc(f, report_str(sc, "name", "?"));
	fputs(" ", f);
	report_html_esc(f, report_str(rep, "run_id", "?"));
	fputs(" - faultd</title>\n<style>", f);
	fputs(css, f);
	fputs("</style>\n</head>\n<body>\n", f);
	header(f, rep);
	invariants(f, rep);
	report_plot_all(f, rep);
	fault_table(f, rep);
	workloads(f, rep);
	fputs("<p class=\"muted\">faultd ", f);
	report_html_esc(f, report_str(rep, "faultd_version", "?"));
	fputs(", report schema ", f);
	fprintf(f, "%lld", (long long)json_integer_value(json_object_get(rep, "schema_version")));
	fputs("</p>\n</body>\n</html>\n", f);
}

void report_html(FILE *f, const json_t *report)
{
	render_html(f, report);
}

int report_html_write(const json_t *report, const char *path)
{
	return report_write_with(path, render_html, report);
}
