/* One self-contained HTML page from a JSON report: verdict, invariants with
 * their evidence, the fault timeline, and an inline SVG plot per per-cycle
 * series with the fault windows shaded and the first violation marked. No
 * script and no external asset, so it opens from a CI artifact as is.
 *
 * Plot elements carry stable names for tests and tools:
 *   <svg class="plot" data-workload="W" data-series="fds">  (procs and
 *   rss_kb: data-workload=""), <rect class="fault-window" data-action=...>,
 *   <line class="violation" data-invariant=...>, <polyline class="series">. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define MAX_PLOTS	64	/* series plotted; more are listed as not shown */
#define MAX_WINDOWS	512	/* fault windows shaded per plot */
#define MAX_FAULT_ROWS	1000	/* rows of the fault timeline table */
#define MAX_CELL	2000	/* bytes of any one string printed */
#define EV_CAP		(32 * 1024)	/* bytes of evidence per invariant */
#define DOTS_UP_TO	120	/* points drawn as dots up to this many cycles */

/* Plot geometry, in SVG user units. */
#define PW	880
#define PH	250
#define ML	78
#define MR	18
#define MT	28
#define MB	44

/* The plots' small arithmetic (min, max, abs, floor). libm would serve as
 * well (trend.c links it for ceil); these predate that. */
static double d_min(double a, double b) { return a < b ? a : b; }
static double d_max(double a, double b) { return a > b ? a : b; }
static double d_abs(double a) { return a < 0 ? -a : a; }

static double d_floor(double x)
{
	double t;

	if (x >= 9e15 || x <= -9e15)
		return x;
	t = (double)(long long)x;
	return t > x ? t - 1 : t;
}

static double d_ceil(double x)
{
	return -d_floor(-x);
}

/* Escaped, and cut (on a character boundary) at MAX_CELL bytes. */
static void esc(FILE *f, const char *s)
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
	esc(f, v);
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
	esc(f, k);
	fputs("</dt><dd>", f);
	esc(f, v);
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
	esc(f, report_str(sc, "name", "?"));
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
		esc(f, report_str(rep, "error", ""));
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
		esc(f, report_str(w, "name", "?"));
		fputs("</td><td>", f);
		esc(f, report_str(w, "kind", "?"));
		fprintf(f, "</td><td class=\"num\">%lld</td><td>",
			(long long)json_integer_value(json_object_get(w, "pid")));
		esc(f, how);
		fprintf(f, "</td><td>%lld bytes", (long long)json_integer_value(
				json_object_get(w, "output_bytes")));
		if (json_is_string(json_object_get(w, "stdout"))) {
			fputs(" <span class=\"muted\">", f);
			esc(f, report_str(w, "stdout", ""));
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
		esc(f, report_str(inv, "name", "?"));
		fputs("</td><td>", f);
		esc(f, report_str(inv, "workload", "all"));
		fputs("</td><td>", f);
		esc(f, report_str(inv, "summary", ""));
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
			esc(f, report_str(inv, "first_violation_at", ""));
			fputs("</span>", f);
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* --- fault timeline ------------------------------------------------------------- */

static long long int_or(const json_t *obj, const char *key, long long dflt)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_number(v) ? (long long)json_number_value(v) : dflt;
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
		long long planned = int_or(e, "t_planned_ms", -1), actual = int_or(e, "t_actual_ms", -1);
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
		esc(f, report_str(e, "action", ""));
		fputs("</td><td>", f);
		esc(f, report_str(e, "fault", ""));
		fputs("</td><td>", f);
		esc(f, report_str(e, "target", ""));
		fputs("</td><td class=\"num\">", f);
		if (json_is_integer(json_object_get(e, "cycle")))
			fprintf(f, "%lld", (long long)json_integer_value(json_object_get(e, "cycle")));
		fputs("</td><td class=\"err\">", f);
		esc(f, report_str(e, "error", ""));
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
			esc(f, k);
			fputs("=", f);
			text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			esc(f, json_is_string(v) ? json_string_value(v) : text ? text : "?");
			free(text);
			first = false;
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* --- plots ------------------------------------------------------------------------ */

enum plot_kind { PK_WORKLOAD, PK_OBJECT, PK_RUN, PK_COUNTER };

struct plot {
	const char *wl;		/* workload name; NULL for run-wide rows */
	const char *series;	/* "fds", an object kind, "procs" */
	enum plot_kind kind;
};

struct window {
	double t0, t1;		/* ms since the run started */
	const char *action;	/* the opening action: link_down, packet_on */
	const char *target;
	char kind[32];		/* link, packet, pause: the CSS class suffix */
};

struct marker {
	double cycle;
	const char *inv;
};

struct plots {
	const json_t *cycles;
	size_t n;
	double x0, x1;		/* the x axis, in cycles: cycle k ends at x = k */
	struct plot p[MAX_PLOTS];
	size_t np, dropped;
	struct window w[MAX_WINDOWS];
	size_t nw;
};

static void add_plot(struct plots *ps, const char *wl, const char *series, enum plot_kind kind)
{
	for (size_t i = 0; i < ps->np; i++)
		if (ps->p[i].kind == kind && !strcmp(ps->p[i].series, series) &&
		    (wl ? ps->p[i].wl && !strcmp(ps->p[i].wl, wl) : !ps->p[i].wl))
			return;
	if (ps->np == MAX_PLOTS) {
		ps->dropped++;
		return;
	}
	ps->p[ps->np++] = (struct plot){wl, series, kind};
}

static void find_plots(struct plots *ps)
{
	static const char *const wl_series[] = {"fds", "sockets", "heap_bytes"};
	const json_t *c, *ws, *one, *v;
	const char *wl, *k;
	size_t i;

	json_array_foreach(ps->cycles, i, c) {
		ws = json_object_get(c, "workloads");
		json_object_foreach((json_t *)ws, wl, one) {
			for (size_t s = 0; s < sizeof(wl_series) / sizeof(wl_series[0]); s++)
				if (json_is_number(json_object_get(one, wl_series[s])))
					add_plot(ps, wl, wl_series[s], PK_WORKLOAD);
			json_object_foreach(json_object_get(one, "objects"), k, v)
				if (json_is_number(v))
					add_plot(ps, wl, k, PK_OBJECT);
			json_object_foreach(json_object_get(one, "counters"), k, v)
				if (json_is_number(v))
					add_plot(ps, wl, k, PK_COUNTER);
		}
	}
	json_array_foreach(ps->cycles, i, c) {
		if (json_is_number(json_object_get(c, "procs")))
			add_plot(ps, NULL, "procs", PK_RUN);
		if (json_is_number(json_object_get(c, "rss_kb")))
			add_plot(ps, NULL, "rss_kb", PK_RUN);
	}
}

static bool value_at(const json_t *c, const struct plot *p, double *out)
{
	const json_t *one, *v;

	if (p->kind == PK_RUN) {
		v = json_object_get(c, p->series);
	} else {
		one = json_object_get(json_object_get(c, "workloads"), p->wl);
		if (p->kind == PK_OBJECT)
			one = json_object_get(one, "objects");
		else if (p->kind == PK_COUNTER)
			one = json_object_get(one, "counters");
		v = json_object_get(one, p->series);
	}
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

/* A time (ms since the start) on the cycle axis: cycle k spans (k-1, k]. */
static double t_to_x(const struct plots *ps, double t)
{
	const json_t *c;
	size_t i;

	if (t <= int_or(json_array_get(ps->cycles, 0), "t_start_ms", 0))
		return ps->x0;
	json_array_foreach(ps->cycles, i, c) {
		double ts = (double)int_or(c, "t_start_ms", 0), te = (double)int_or(c, "t_end_ms", 0);
		double k = (double)int_or(c, "cycle", (long long)i + 1);

		if (t <= te)
			return te > ts ? k - 1 + (t - ts) / (te - ts) : k;
	}
	return ps->x1;
}

/* "link_down" opens a link window, "packet_on" a packet one, "pause" a
 * pause; the matching "link_up", "packet_off", "resume" on the same target
 * closes it. False when @action is neither. */
static bool window_action(const char *action, char kind[32], bool *opens)
{
	size_t len = strlen(action);

	if (!strcmp(action, "link_down") || !strcmp(action, "link_up")) {
		snprintf(kind, 32, "link");
		*opens = !strcmp(action, "link_down");
	} else if (!strcmp(action, "pause") || !strcmp(action, "resume")) {
		snprintf(kind, 32, "pause");
		*opens = !strcmp(action, "pause");
	} else if (len > 3 && len < 32 && !strcmp(action + len - 3, "_on")) {
		snprintf(kind, 32, "%.*s", (int)(len - 3), action);
		*opens = true;
	} else if (len > 4 && len < 32 && !strcmp(action + len - 4, "_off")) {
		snprintf(kind, 32, "%.*s", (int)(len - 4), action);
		*opens = false;
	} else {
		return false;
	}
	return true;
}

static void find_windows(struct plots *ps, const json_t *faults)
{
	double end = (double)int_or(json_array_get(ps->cycles, ps->n - 1), "t_end_ms", 0);
	const json_t *e;
	size_t i, open = 0;	/* windows [open, nw) have no end yet */

	json_array_foreach(faults, i, e) {
		const char *action = report_str(e, "action", ""), *target = report_str(e, "target", "");
		double t = (double)int_or(e, "t_actual_ms", int_or(e, "t_planned_ms", -1));
		char kind[32];
		bool opens, found = false;

		if (t < 0 || !window_action(action, kind, &opens))
			continue;
		for (size_t w = 0; w < ps->nw; w++) {
			struct window *win = &ps->w[w];

			if (win->t1 >= 0 || strcmp(win->kind, kind) || strcmp(win->target, target))
				continue;
			found = true;
			if (!opens)
				win->t1 = t;
		}
		/* A fault that failed to act opened nothing; a second "on" while
		 * on (a rate changed mid-run) continues the same window. */
		if (!opens || found || json_is_string(json_object_get(e, "error")) ||
		    ps->nw == MAX_WINDOWS)
			continue;
		ps->w[ps->nw] = (struct window){.t0 = t, .t1 = -1, .action = action,
						.target = target};
		snprintf(ps->w[ps->nw].kind, sizeof(ps->w[ps->nw].kind), "%s", kind);
		ps->nw++;
	}
	/* Still down at the end: shade to the end of the run. */
	for (; open < ps->nw; open++)
		if (ps->w[open].t1 < 0)
			ps->w[open].t1 = end;
}

static double nice_step(double range, int ticks)
{
	double raw = range / ticks, mag = 1, r;

	if (!(raw > 0) || !isfinite(raw))
		return 1;
	for (int i = 0; i < 400 && raw >= mag * 10; i++)
		mag *= 10;
	for (int i = 0; i < 400 && raw < mag; i++)
		mag /= 10;
	r = raw / mag;

	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

static void fmt_num(char *buf, size_t len, double v)
{
	double a = d_abs(v);

	if (a < 1e-12)
		v = 0;	/* never "-0" */

	if (a >= 1e9)
		snprintf(buf, len, "%gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(buf, len, "%gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, len, "%gk", v / 1e3);
	else
		snprintf(buf, len, "%g", v);
}

static const char *y_label(const struct plot *p)
{
	if (p->kind == PK_OBJECT)
		return "live objects";
	if (p->kind == PK_COUNTER)
		return "counter value";
	if (!strcmp(p->series, "heap_bytes"))
		return "live heap bytes";
	if (!strcmp(p->series, "fds"))
		return "open fds";
	if (!strcmp(p->series, "sockets"))
		return "open sockets";
	if (!strcmp(p->series, "procs"))
		return "processes";
	if (!strcmp(p->series, "rss_kb"))
		return "RSS kB";
	return p->series;
}

/* Violations to mark on plot @p: each FAIL invariant's evidence names the
 * workload and series it judged; evidence without a series (a crash) marks
 * every plot of its workload, and an invariant with neither the run-wide
 * plots. */
static size_t find_markers(const json_t *rep, const struct plot *p, struct marker *m, size_t max)
{
	const json_t *inv, *ev;
	size_t i, k, n = 0;

	json_array_foreach(json_object_get(rep, "invariants"), i, inv) {
		const json_t *cyc = json_object_get(inv, "first_violation_cycle");
		bool marked = false, judged_some = false;

		if (strcmp(report_str(inv, "verdict", ""), "FAIL") || !json_is_integer(cyc))
			continue;
		json_array_foreach(json_object_get(inv, "evidence"), k, ev) {
			const char *wl = json_string_value(json_object_get(ev, "workload"));
			const char *series = json_string_value(json_object_get(ev, "series"));
			const json_t *c = json_object_get(ev, "first_violation_cycle");

			if (!wl)
				continue;
			judged_some = true;
			if (!p->wl || strcmp(wl, p->wl) || (series && strcmp(series, p->series)))
				continue;
			if (!json_is_integer(c))
				c = series ? cyc : json_object_get(ev, "cycle");
			if (!json_is_integer(c) || marked || n == max)
				continue;
			m[n++] = (struct marker){(double)json_integer_value(c),
						 report_str(inv, "name", "?")};
			marked = true;
		}
		if (!judged_some && n < max) {
			const char *iwl = json_string_value(json_object_get(inv, "workload"));

			if (iwl ? p->wl && !strcmp(iwl, p->wl) : p->kind == PK_RUN)
				m[n++] = (struct marker){(double)json_integer_value(cyc),
							 report_str(inv, "name", "?")};
		}
	}
	return n;
}

static void plot(FILE *f, const json_t *rep, const struct plots *ps, size_t idx)
{
	const struct plot *p = &ps->p[idx];
	double lo = INFINITY, hi = -INFINITY, step, v;
	double aw = PW - ML - MR, ah = PH - MT - MB, xstep;
	struct marker mk[16];
	size_t nmk, have = 0, i;
	const json_t *c;
	bool drawing = false;
	char buf[48];

	json_array_foreach(ps->cycles, i, c) {
		if (value_at(c, p, &v)) {
			lo = d_min(lo, v);
			hi = d_max(hi, v);
			have++;
		}
	}
	if (!have)
		return;
	if (lo > 0 && lo < hi * 0.5)
		lo = 0;
	if (hi - lo < 1e-9) {
		hi = lo + 1;
		lo = lo >= 1 ? lo - 1 : lo;
	}
	step = nice_step(hi - lo, 5);
	lo = d_floor(lo / step) * step;
	hi = d_ceil(hi / step) * step;
#define PX(x) (ML + ((x) - ps->x0) / (ps->x1 - ps->x0) * aw)
#define PY(y) (MT + (1 - ((y) - lo) / (hi - lo)) * ah)

	fputs("<figure class=\"plot-box\"><figcaption>", f);
	if (p->wl) {
		esc(f, p->wl);
		fputs(": ", f);
	}
	if (p->kind == PK_OBJECT)
		fputs("objects ", f);
	else if (p->kind == PK_COUNTER)
		fputs("counter ", f);
	esc(f, p->series);
	fprintf(f, "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" "
		"id=\"plot-%zu\" data-workload=\"", idx);
	esc(f, p->wl ? p->wl : "");
	fputs("\" data-series=\"", f);
	esc(f, p->series);
	fprintf(f, "\" data-group=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"role=\"img\">\n", p->kind == PK_OBJECT ? "objects" : p->kind == PK_RUN ? "run"
		: p->kind == PK_COUNTER ? "counters" : "workload", PW, PH, PW, PH);
	fprintf(f, "<rect class=\"plot-area\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\"/>\n",
		ML, MT, aw, ah);

	for (size_t w = 0; w < ps->nw; w++) {
		double x0 = PX(t_to_x(ps, ps->w[w].t0)), x1 = PX(t_to_x(ps, ps->w[w].t1));

		fprintf(f, "<rect class=\"fault-window k-%s\" data-action=\"", ps->w[w].kind);
		esc(f, ps->w[w].action);
		fputs("\" data-target=\"", f);
		esc(f, ps->w[w].target);
		fprintf(f, "\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\"><title>", x0, MT,
			d_max(x1 - x0, 1.5), ah);
		esc(f, ps->w[w].kind);
		fputs(" ", f);
		esc(f, ps->w[w].target);
		fprintf(f, ": %.0f..%.0f ms</title></rect>\n", ps->w[w].t0, ps->w[w].t1);
	}

	/* Grid and ticks. */
	for (double y = lo; y <= hi + step / 2; y += step) {
		fmt_num(buf, sizeof(buf), d_abs(y) < step / 1e6 ? 0 : y);
		fprintf(f, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<text class=\"tick y-tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			ML, ML + aw, PY(y), PY(y), ML - 6, PY(y) + 4, buf);
	}
	xstep = d_max(1, nice_step(ps->x1 - ps->x0, 10));
	for (double x = d_ceil(ps->x0 / xstep) * xstep; x <= ps->x1 + 1e-9; x += xstep) {
		fmt_num(buf, sizeof(buf), x);
		fprintf(f, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\"/>"
			"<text class=\"tick x-tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
			"</text>\n", PX(x), PX(x), MT, MT + ah, PX(x), MT + ah + 16, buf);
	}
	fprintf(f, "<text class=\"axis-label x-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
		"cycle (sampled at its end)</text>\n", ML + aw / 2, PH - 6);
	fprintf(f, "<text class=\"axis-label y-label\" transform=\"translate(16 %.1f) rotate(-90)\" "
		"text-anchor=\"middle\">%s</text>\n", MT + ah / 2, y_label(p));

	/* The series: one polyline per run of consecutive samples. */
	json_array_foreach(ps->cycles, i, c) {
		double x = (double)int_or(c, "cycle", (long long)i + 1);

		if (!value_at(c, p, &v)) {
			if (drawing)
				fputs("\"/>\n", f);
			drawing = false;
			continue;
		}
		fprintf(f, "%s%.1f,%.1f", drawing ? " " : "<polyline class=\"series\" points=\"",
			PX(x), PY(v));
		drawing = true;
	}
	if (drawing)
		fputs("\"/>\n", f);
	if (have <= DOTS_UP_TO)
		json_array_foreach(ps->cycles, i, c) {
			double x = (double)int_or(c, "cycle", (long long)i + 1);

			if (value_at(c, p, &v))
				fprintf(f, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">"
					"<title>cycle %g: %g</title></circle>\n", PX(x), PY(v), x, v);
		}

	nmk = find_markers(rep, p, mk, sizeof(mk) / sizeof(mk[0]));
	for (size_t m = 0; m < nmk; m++) {
		double x = PX(d_min(d_max(mk[m].cycle, ps->x0), ps->x1));

		fputs("<line class=\"violation\" data-invariant=\"", f);
		esc(f, mk[m].inv);
		fprintf(f, "\" data-cycle=\"%g\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\"/>\n",
			mk[m].cycle, x, x, MT - 4, MT + ah);
		/* Later marks' labels go inside the plot, one line each. */
		fprintf(f, "<text class=\"violation-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">",
			x, m ? MT + 12 * (int)m : MT - 8, x > ML + aw * 0.7 ? "end" : "start");
		esc(f, mk[m].inv);
		fprintf(f, ": first violation, cycle %g</text>\n", mk[m].cycle);
	}
	fputs("</svg></figure>\n", f);
#undef PX
#undef PY
}

static void plots(FILE *f, const json_t *rep)
{
	struct plots *ps = calloc(1, sizeof(*ps));

	fputs("<h2>Per-cycle series</h2>\n", f);
	if (!ps) {
		fputs("<p class=\"error\">out of memory for the plots</p>\n", f);
		return;
	}
	ps->cycles = json_object_get(rep, "cycles");
	ps->n = json_array_size(ps->cycles);
	if (!ps->n) {
		fputs("<p class=\"muted\" id=\"no-cycles\">No cycle was sampled.</p>\n", f);
		goto out;
	}
	ps->x0 = (double)int_or(json_array_get(ps->cycles, 0), "cycle", 1) - 1;
	ps->x1 = (double)int_or(json_array_get(ps->cycles, ps->n - 1), "cycle", (long long)ps->n);
	if (ps->x1 <= ps->x0)
		ps->x1 = ps->x0 + 1;
	find_plots(ps);
	find_windows(ps, json_object_get(rep, "faults"));
	fprintf(f, "<p class=\"legend\"><span><span class=\"sw\" style=\"background:#0969da\">"
		"</span>value at the end of each cycle</span>%s"
		"<span><span class=\"sw\" style=\"background:#cf222e\"></span>first violation"
		"</span></p>\n", ps->nw ? "<span><span class=\"sw\" style=\"background:#fb8f44;"
		"opacity:.5\"></span>fault window (link down, packet/delay/rate/syscall faults "
		"on, paused)</span>" : "");
	for (size_t i = 0; i < ps->np; i++)
		plot(f, rep, ps, i);
	if (ps->dropped)
		fprintf(f, "<p class=\"muted\">%zu more series not plotted; see report.json.</p>\n",
			ps->dropped);
out:
	free(ps);
}

static void render_html(FILE *f, const void *arg)
{
	const json_t *rep = arg;
	const json_t *sc = json_object_get(rep, "scenario");

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
	esc(f, report_str(rep, "verdict", "?"));
	fputs(" ", f);
	esc(f, report_str(sc, "name", "?"));
	fputs(" ", f);
	esc(f, report_str(rep, "run_id", "?"));
	fputs(" - faultd</title>\n<style>", f);
	fputs(css, f);
	fputs("</style>\n</head>\n<body>\n", f);
	header(f, rep);
	invariants(f, rep);
	plots(f, rep);
	fault_table(f, rep);
	workloads(f, rep);
	fputs("<p class=\"muted\">faultd ", f);
	esc(f, report_str(rep, "faultd_version", "?"));
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
