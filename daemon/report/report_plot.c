/* The HTML report's plots: an inline SVG plot per per-cycle series, with the
 * fault windows shaded and the first violation marked (report_html.c renders
 * the rest of the page).
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
#include "report_plot.h"

#define MAX_PLOTS	64	/* series plotted; more are listed as not shown */
#define MAX_WINDOWS	512	/* fault windows shaded per plot */
#define DOTS_UP_TO	120	/* points drawn as dots up to this many cycles */
#define MAX_TICKS	100	/* grid lines per axis, whatever the values */

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

	if (t <= report_html_int_or(json_array_get(ps->cycles, 0), "t_start_ms", 0))
		return ps->x0;
	json_array_foreach(ps->cycles, i, c) {
		double ts = (double)report_html_int_or(c, "t_start_ms", 0), te = (double)report_html_int_or(c, "t_end_ms", 0);
		double k = (double)report_html_int_or(c, "cycle", (long long)i + 1);

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
	double end = (double)report_html_int_or(json_array_get(ps->cycles, ps->n - 1), "t_end_ms", 0);
	const json_t *e;
	size_t i, open = 0;	/* windows [open, nw) have no end yet */

	json_array_foreach(faults, i, e) {
		const char *action = report_str(e, "action", ""), *target = report_str(e, "target", "");
		double t = (double)report_html_int_or(e, "t_actual_ms", report_html_int_or(e, "t_planned_ms", -1));
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
	double lo = INFINITY, hi = -INFINITY, step, v, nticks;
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
	/* At 2^53 and above, lo + 1 is lo: widen by a fraction instead. */
	if (!(hi > lo)) {
		double pad = d_abs(lo) * 1e-9;

		hi = lo + pad;
		lo -= pad;
	}
	step = nice_step(hi - lo, 5);
	lo = d_floor(lo / step) * step;
	hi = d_ceil(hi / step) * step;
#define PX(x) (ML + ((x) - ps->x0) / (ps->x1 - ps->x0) * aw)
#define PY(y) (MT + (1 - ((y) - lo) / (hi - lo)) * ah)

	fputs("<figure class=\"plot-box\"><figcaption>", f);
	if (p->wl) {
		report_html_esc(f, p->wl);
		fputs(": ", f);
	}
	if (p->kind == PK_OBJECT)
		fputs("objects ", f);
	else if (p->kind == PK_COUNTER)
		fputs("counter ", f);
	report_html_esc(f, p->series);
	fprintf(f, "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" "
		"id=\"plot-%zu\" data-workload=\"", idx);
	report_html_esc(f, p->wl ? p->wl : "");
	fputs("\" data-series=\"", f);
	report_html_esc(f, p->series);
	fprintf(f, "\" data-group=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"role=\"img\">\n", p->kind == PK_OBJECT ? "objects" : p->kind == PK_RUN ? "run"
		: p->kind == PK_COUNTER ? "counters" : "workload", PW, PH, PW, PH);
	fprintf(f, "<rect class=\"plot-area\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\"/>\n",
		ML, MT, aw, ah);

	for (size_t w = 0; w < ps->nw; w++) {
		double x0 = PX(t_to_x(ps, ps->w[w].t0)), x1 = PX(t_to_x(ps, ps->w[w].t1));

		fprintf(f, "<rect class=\"fault-window k-%s\" data-action=\"", ps->w[w].kind);
		report_html_esc(f, ps->w[w].action);
		fputs("\" data-target=\"", f);
		report_html_esc(f, ps->w[w].target);
		fprintf(f, "\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\"><title>", x0, MT,
			d_max(x1 - x0, 1.5), ah);
		report_html_esc(f, ps->w[w].kind);
		fputs(" ", f);
		report_html_esc(f, ps->w[w].target);
		fprintf(f, ": %.0f..%.0f ms</title></rect>\n", ps->w[w].t0, ps->w[w].t1);
	}

	/* Grid and ticks, counted rather than summed: near 2^52 and above a
	 * step can be smaller than a double's spacing, and y += step would
	 * never reach hi. */
	nticks = (hi - lo) / step;
	nticks = isfinite(nticks) && nticks >= 0 ? d_min(d_floor(nticks + 0.5), MAX_TICKS) : 0;
	for (double k = 0; k <= nticks; k++) {
		double y = lo + k * step;

		fmt_num(buf, sizeof(buf), d_abs(y) < step / 1e6 ? 0 : y);
		fprintf(f, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<text class=\"tick y-tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			ML, ML + aw, PY(y), PY(y), ML - 6, PY(y) + 4, buf);
	}
	xstep = d_max(1, nice_step(ps->x1 - ps->x0, 10));
	nticks = d_min(d_floor((ps->x1 - d_ceil(ps->x0 / xstep) * xstep) / xstep + 1e-9), MAX_TICKS);
	for (double k = 0; k <= nticks; k++) {
		double x = d_ceil(ps->x0 / xstep) * xstep + k * xstep;

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
		double x = (double)report_html_int_or(c, "cycle", (long long)i + 1);

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
			double x = (double)report_html_int_or(c, "cycle", (long long)i + 1);

			if (value_at(c, p, &v))
				fprintf(f, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">"
					"<title>cycle %g: %g</title></circle>\n", PX(x), PY(v), x, v);
		}

	nmk = find_markers(rep, p, mk, sizeof(mk) / sizeof(mk[0]));
	for (size_t m = 0; m < nmk; m++) {
		double x = PX(d_min(d_max(mk[m].cycle, ps->x0), ps->x1));

		fputs("<line class=\"violation\" data-invariant=\"", f);
		report_html_esc(f, mk[m].inv);
		fprintf(f, "\" data-cycle=\"%g\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\"/>\n",
			mk[m].cycle, x, x, MT - 4, MT + ah);
		/* Later marks' labels go inside the plot, one line each. */
		fprintf(f, "<text class=\"violation-label\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">",
			x, m ? MT + 12 * (int)m : MT - 8, x > ML + aw * 0.7 ? "end" : "start");
		report_html_esc(f, mk[m].inv);
		fprintf(f, ": first violation, cycle %g</text>\n", mk[m].cycle);
	}
	fputs("</svg></figure>\n", f);
#undef PX
#undef PY
}

void report_plot_all(FILE *f, const json_t *rep)
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
	ps->x0 = (double)report_html_int_or(json_array_get(ps->cycles, 0), "cycle", 1) - 1;
	ps->x1 = (double)report_html_int_or(json_array_get(ps->cycles, ps->n - 1), "cycle", (long long)ps->n);
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
