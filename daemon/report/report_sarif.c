/* SARIF 2.1.0 from JSON reports, for code scanning (GitHub and others put a
 * result at its file and line on the pull request). One SARIF run per
 * faultd run; the rules are the invariants, by name; one result per failing
 * finding:
 * - a double free or an invalid free at the first frame of its stack
 *   outside the C library, with the first free and the allocation as
 *   related locations and every stack as a SARIF stack;
 * - a growing heap, one result per growing allocation site;
 * - a crash at its backtrace's first frame of the program, a sanitizer's
 *   report at its stack's;
 * - any other failed invariant (fd or socket growth, exit codes, lifecycle,
 *   messages, recovery, residue) once, at the scenario file, since what it
 *   saw has no source line.
 * Frames come as the symbolizer wrote them: "func+0x1a (file.c:42) [mod]",
 * or a sanitizer's "func /src/file.c:42:7". */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

#define SARIF_MAX_RESULTS 100	/* per invariant: a storm of frees is one bug */
#define SARIF_SCHEMA \
	"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

struct sarif_in {
	json_t *const *reports;
	size_t n;
};

struct frame {
	char func[128];
	char file[512];
	int line;
};

/* Frames of the C library, the loader and the sanitizers' runtimes: a
 * finding is placed at the program's code that called them. */
static bool runtime_frame(const char *f)
{
	static const char *const libs[] = {"libc.so", "ld-linux", "libasan", "libubsan",
					   "liblsan", "libtsan", "libsanitizer", "sanitizer_common",
					   "compiler-rt", "libstdc++", "libgcc_s"};

	for (size_t i = 0; i < ARRAY_SIZE(libs); i++)
		if (strstr(f, libs[i]))
			return true;
	return false;
}

/* @s: "FILE:LINE" or "FILE:LINE:COL"; false without a line. */
static bool file_line(const char *s, size_t len, struct frame *fr)
{
	size_t end = len, colon;

	/* Drop a trailing ":COL". */
	for (int pass = 0; pass < 2; pass++) {
		colon = end;
		while (colon > 0 && isdigit((unsigned char)s[colon - 1]))
			colon--;
		if (colon == end || colon == 0 || s[colon - 1] != ':')
			return false;
		fr->line = atoi(s + colon);
		if (pass == 0 && colon >= 2) {
			size_t c2 = colon - 1;

			while (c2 > 0 && isdigit((unsigned char)s[c2 - 1]))
				c2--;
			if (c2 < colon - 1 && c2 > 0 && s[c2 - 1] == ':') {
				end = colon - 1;
				continue;
			}
		}
		snprintf(fr->file, sizeof(fr->file), "%.*s", (int)(colon - 1), s);
		return fr->line > 0 && fr->file[0];
	}
	return false;
}

static bool frame_parse(const char *f, struct frame *fr)
{
	const char *open, *close, *sp;

	memset(fr, 0, sizeof(*fr));
	if (!f)
		return false;
	snprintf(fr->func, sizeof(fr->func), "%.*s", (int)strcspn(f, "+ "), f);
	open = strstr(f, " (");
	close = open ? strchr(open, ')') : NULL;
	if (open && close)
		return file_line(open + 2, (size_t)(close - open - 2), fr);
	sp = strchr(f, ' ');
	return sp && file_line(sp + 1, strcspn(sp + 1, " "), fr);
}

/* The first frame of @stack (an array of frame strings) in the program. */
static const char *program_frame(const json_t *stack, struct frame *fr)
{
	const json_t *el;
	size_t i;

	json_array_foreach(stack, i, el) {
		const char *f = json_string_value(el);

		if (f && !runtime_frame(f) && frame_parse(f, fr))
			return f;
	}
	return NULL;
}

/* A file name as a URI reference: relative stays relative (code scanning
 * resolves it against the checkout), absolute becomes file://. */
static json_t *artifact(const char *path)
{
	json_t *loc = json_object();
	char *uri = NULL;

	if (path[0] == '/' && asprintf(&uri, "file://%s", path) >= 0) {
		json_object_set_new(loc, "uri", json_string(uri));
		free(uri);
	} else {
		json_object_set_new(loc, "uri", json_string(path));
	}
	return loc;
}

static json_t *frame_location(const struct frame *fr, const char *msg)
{
	json_t *loc = json_pack("{s{sos{si}}}", "physicalLocation",
				"artifactLocation", artifact(fr->file),
				"region", "startLine", fr->line);

	if (loc && fr->func[0])
		json_object_set_new(loc, "logicalLocations",
				    json_pack("[{ssss}]", "name", fr->func, "kind", "function"));
	if (loc && msg)
		json_object_set_new(loc, "message", json_pack("{ss}", "text", msg));
	return loc;
}

/* The scenario file: where a finding without a source line is put. */
static json_t *scenario_location(const json_t *rep)
{
	const char *file = report_str(json_object_get(rep, "scenario"), "file", "scenario.json");

	return json_pack("{s{sos{si}}}", "physicalLocation", "artifactLocation", artifact(file),
			 "region", "startLine", 1);
}

/* A SARIF stack: every frame, with file and line where the frame has them. */
static json_t *sarif_stack(const json_t *frames, const char *msg)
{
	json_t *out = json_array(), *el;
	size_t i;

	json_array_foreach(frames, i, el) {
		const char *f = json_string_value(el);
		struct frame fr;
		json_t *loc;

		if (!f)
			continue;
		loc = frame_parse(f, &fr) ? frame_location(&fr, f)
					  : json_pack("{s{ss}}", "message", "text", f);
		json_array_append_new(out, json_pack("{so}", "location", loc ? loc : json_object()));
	}
	return json_pack("{s{ss}so}", "message", "text", msg, "frames", out ? out : json_array());
}

struct finding {
	const json_t *rep, *inv;
	size_t rule;
	json_t *results;
};

/* One result at @primary (a frame) or the scenario file, with the run's
 * identity and a fingerprint that stays the same from run to run (rule,
 * workload and the place, not the pid or address). */
static json_t *result(const struct finding *fi, const char *text, const struct frame *primary,
		      const char *place)
{
	const char *wl = json_string_value(json_object_get(fi->inv, "workload"));
	const json_t *cyc = json_object_get(fi->inv, "first_violation_cycle");
	char print[768];
	json_t *res;

	snprintf(print, sizeof(print), "%s|%s|%s", report_str(fi->inv, "name", "?"), wl ? wl : "",
		 place ? place : "");
	res = json_pack("{sssis{ss}sss[o]s{ss}}", "ruleId", report_str(fi->inv, "name", "?"),
			"ruleIndex", (int)fi->rule, "message", "text", text, "level", "error",
			"locations", primary ? frame_location(primary, NULL)
					     : scenario_location(fi->rep),
			"partialFingerprints", "faultdFinding/v1", print);
	if (!res)
		return NULL;
	json_object_set_new(res, "properties", json_pack("{ssss?ss}",
		"run_id", report_str(fi->rep, "run_id", "?"), "workload", wl,
		"report", report_str(fi->rep, "run_dir", "?")));
	if (json_is_integer(cyc))
		json_object_set_new(json_object_get(res, "properties"), "first_violation_cycle",
				    json_integer(json_integer_value(cyc)));
	return res;
}

static void add_related(json_t *res, const json_t *stack, const char *msg, json_t *stacks)
{
	json_t *rel = json_object_get(res, "relatedLocations"), *loc;
	struct frame fr;

	if (!stack)
		return;
	if (!rel) {
		rel = json_array();
		json_object_set_new(res, "relatedLocations", rel);
	}
	loc = program_frame(stack, &fr) ? frame_location(&fr, msg) : NULL;
	if (loc) {
		json_object_set_new(loc, "id", json_integer((json_int_t)json_array_size(rel) + 1));
		json_array_append_new(rel, loc);
	}
	json_array_append_new(stacks, sarif_stack(stack, msg));
}

static void bad_free(struct finding *fi, const json_t *ev)
{
	const json_t *first = json_object_get(ev, "first_free");
	const json_t *src = json_object_get(ev, "read_from_freed");
	const char *kind = report_str(ev, "kind", "");
	json_t *stacks = json_array(), *res;
	struct frame fr;
	const char *at = program_frame(json_object_get(ev, "stack"), &fr);
	char text[1024], place[700];

	snprintf(text, sizeof(text), "%s of %s (%lld-byte block) in pid %lld (%s) of '%s'%s",
		 !strcmp(kind, "double_free") ? "double free" : "free of a pointer never allocated",
		 report_str(ev, "address", "?"), (long long)json_integer_value(json_object_get(ev, "size")),
		 (long long)json_integer_value(json_object_get(ev, "pid")), report_str(ev, "comm", "?"),
		 report_str(ev, "workload", "?"), src ? ", read from a freed block" : "");
	snprintf(place, sizeof(place), "%s|%s", kind, at ? fr.func : "");
	res = result(fi, text, at ? &fr : NULL, place);
	if (!res || !stacks)
		goto out;
	json_array_append_new(stacks, sarif_stack(json_object_get(ev, "stack"),
						  !strcmp(kind, "double_free") ? "second free" : "free"));
	add_related(res, json_object_get(first, "stack"), "first free", stacks);
	add_related(res, json_object_get(ev, "allocated_at"), "allocated here", stacks);
	add_related(res, json_object_get(src, "stack"), "freed the block the pointer was read from",
		    stacks);
	json_object_set(res, "stacks", stacks);
	json_array_append(fi->results, res);
out:
	json_decref(res);
	json_decref(stacks);
}

static void growing_site(struct finding *fi, const json_t *ev, const json_t *site)
{
	json_t *res, *stacks;
	struct frame fr;
	const char *at = program_frame(json_object_get(site, "stack"), &fr);
	char text[1024];

	if (!at && frame_parse(report_str(site, "caller", NULL), &fr))
		at = report_str(site, "caller", NULL);
	snprintf(text, sizeof(text), "%s of '%s' grows %+.1f/cycle; this allocation site holds "
		 "%lld bytes in %lld live blocks, %+lld bytes since cycle %lld",
		 report_str(ev, "series", "heap_bytes"), report_str(ev, "workload", "?"),
		 json_number_value(json_object_get(ev, "slope_per_cycle")),
		 (long long)json_integer_value(json_object_get(site, "live_bytes")),
		 (long long)json_integer_value(json_object_get(site, "live_blocks")),
		 (long long)json_integer_value(json_object_get(site, "growth_bytes")),
		 (long long)json_integer_value(json_object_get(site, "first_seen_cycle")));
	res = result(fi, text, at ? &fr : NULL, at ? fr.func : report_str(site, "caller", ""));
	stacks = json_array();
	if (res && stacks && json_object_get(site, "stack")) {
		json_array_append_new(stacks, sarif_stack(json_object_get(site, "stack"),
							  "allocated here"));
		json_object_set(res, "stacks", stacks);
	}
	if (res)
		json_array_append(fi->results, res);
	json_decref(stacks);
	json_decref(res);
}

/* A crash with a backtrace, or a sanitizer's report with a stack. */
static void crash(struct finding *fi, const json_t *ev)
{
	const json_t *san = json_object_get(ev, "report");
	const json_t *stack = san ? json_object_get(san, "stack") : json_object_get(ev, "backtrace");
	json_t *res, *stacks;
	struct frame fr;
	const char *at = program_frame(stack, &fr);
	char text[1024];

	if (san && json_object_get(san, "summary"))
		snprintf(text, sizeof(text), "%s (workload '%s'; %s of size %lld at %s)",
			 report_str(san, "summary", ""), report_str(ev, "workload", "?"),
			 report_str(san, "access", "access"),
			 (long long)json_integer_value(json_object_get(san, "size")),
			 report_str(san, "address", "?"));
	else if (san)
		snprintf(text, sizeof(text), "%s: %s in workload '%s'",
			 report_str(san, "tool", "sanitizer"), report_str(san, "kind", "?"),
			 report_str(ev, "workload", "?"));
	else
		snprintf(text, sizeof(text), "pid %lld (%s) of '%s' killed by %s at cycle %lld",
			 (long long)json_integer_value(json_object_get(ev, "pid")),
			 report_str(ev, "comm", "?"), report_str(ev, "workload", "?"),
			 report_str(ev, "signal", "?"),
			 (long long)json_integer_value(json_object_get(ev, "cycle")));
	if (!json_object_get(ev, "signal") && !san)
		return;
	res = result(fi, text, at ? &fr : NULL, at ? fr.func : report_str(ev, "signal", ""));
	stacks = json_array();
	if (res && stacks && stack) {
		json_array_append_new(stacks, sarif_stack(stack, san ? "sanitizer report" : "backtrace"));
		if (san) {
			add_related(res, json_object_get(json_object_get(san, "freed_by"), "stack"),
				    "freed here", stacks);
			add_related(res, json_object_get(json_object_get(san, "allocated_by"), "stack"),
				    "allocated here", stacks);
		}
		json_object_set(res, "stacks", stacks);
	}
	if (res)
		json_array_append(fi->results, res);
	json_decref(stacks);
	json_decref(res);
}

static void failed_invariant(struct finding *fi)
{
	const char *name = report_str(fi->inv, "name", "");
	const json_t *ev, *site;
	size_t i, k, before = json_array_size(fi->results);

	json_array_foreach(json_object_get(fi->inv, "evidence"), i, ev) {
		if (json_array_size(fi->results) - before >= SARIF_MAX_RESULTS)
			break;
		if (!strcmp(name, "no_invalid_free") && json_object_get(ev, "kind"))
			bad_free(fi, ev);
		else if (!strcmp(name, "no_crash"))
			crash(fi, ev);
		else if (json_is_array(json_object_get(ev, "top_growing_sites")))
			json_array_foreach(json_object_get(ev, "top_growing_sites"), k, site)
				growing_site(fi, ev, site);
		else if (json_is_array(json_object_get(json_object_get(ev, "heap"),
						       "top_growing_sites")))
			json_array_foreach(json_object_get(json_object_get(ev, "heap"),
							   "top_growing_sites"), k, site)
				growing_site(fi, ev, site);
	}
	/* Nothing with a source line: the invariant's own summary, once, with
	 * the fd calls that made the count grow when the fds probe saw them. */
	if (json_array_size(fi->results) == before) {
		const json_t *calls = json_object_get(json_array_get(json_object_get(fi->inv,
							"evidence"), 0), "calls"), *v;
		char text[1024];
		size_t off, n_calls = 0;
		const char *call;
		json_t *res;

		off = (size_t)snprintf(text, sizeof(text), "%s", report_str(fi->inv, "summary", name));
		json_object_foreach((json_t *)calls, call, v)
			if (off < sizeof(text))
				off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s %lld",
							n_calls++ ? ", " : "; calls: ", call, (long long)json_integer_value(v));
		res = result(fi, text, NULL, "");
		if (res)
			json_array_append_new(fi->results, res);
	}
}

static json_t *rules(const json_t *invs)
{
	json_t *out = json_array(), *inv;
	size_t i;

	json_array_foreach(invs, i, inv) {
		const char *name = report_str(inv, "name", "?");
		const struct inv_def *def = inv_lookup(name);
		bool seen = false;
		json_t *r;
		size_t k;

		json_array_foreach(out, k, r)
			seen |= !strcmp(report_str(r, "id", ""), name);
		if (seen)
			continue;
		json_array_append_new(out, json_pack("{sss{ss}s{ss}}", "id", name,
			"shortDescription", "text", def ? def->doc : name,
			"defaultConfiguration", "level", "error"));
	}
	return out;
}

static size_t rule_index(const json_t *rules, const char *name)
{
	const json_t *r;
	size_t i;

	json_array_foreach(rules, i, r)
		if (!strcmp(report_str(r, "id", ""), name))
			return i;
	return 0;
}

static json_t *sarif_run(const json_t *rep)
{
	const json_t *invs = json_object_get(rep, "invariants"), *inv;
	const char *error = json_string_value(json_object_get(rep, "error"));
	json_t *rl = rules(invs), *results = json_array(), *run, *invocation;
	char id[256];
	size_t i;

	json_array_foreach(invs, i, inv) {
		struct finding fi = {rep, inv, 0, results};

		if (strcmp(report_str(inv, "verdict", ""), "FAIL"))
			continue;
		fi.rule = rule_index(rl, report_str(inv, "name", ""));
		failed_invariant(&fi);
	}
	/* "faultd/SCENARIO/" is the category code scanning groups runs by. */
	snprintf(id, sizeof(id), "faultd/%s/%s",
		 report_str(json_object_get(rep, "scenario"), "name", "?"),
		 report_str(rep, "run_id", "?"));
	invocation = json_pack("{sbsssssi}", "executionSuccessful", error == NULL,
			       "startTimeUtc", report_str(rep, "started_at", "1970-01-01T00:00:00Z"),
			       "endTimeUtc", report_str(rep, "ended_at", "1970-01-01T00:00:00Z"),
			       "exitCode", verdict_exit_code(verdict_parse(report_str(rep, "verdict",
										    "ERROR"))));
	if (invocation && error)
		json_object_set_new(invocation, "toolExecutionNotifications",
				    json_pack("[{s{ss}ss}]", "message", "text", error, "level", "error"));
	run = json_pack("{s{s{ssssssso}}sos{ss}s[o]s{ssssss}}",
			"tool", "driver", "name", "faultd", "version", FAULTD_VERSION,
			"semanticVersion", FAULTD_VERSION, "rules", rl,
			"results", results, "automationDetails", "id", id,
			"invocations", invocation ? invocation : json_object(),
			"properties", "run_id", report_str(rep, "run_id", "?"),
			"verdict", report_str(rep, "verdict", "?"),
			"report", report_str(rep, "run_dir", "?"));
	return run;
}

static void render_sarif(FILE *f, const void *arg)
{
	const struct sarif_in *in = arg;
	json_t *runs = json_array(), *log;

	for (size_t i = 0; runs && i < in->n; i++)
		json_array_append_new(runs, sarif_run(in->reports[i]));
	log = json_pack("{sssssO}", "version", "2.1.0", "$schema", SARIF_SCHEMA, "runs", runs);
	if (log)
		json_dumpf(log, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(log);
	json_decref(runs);
}

void report_sarif(FILE *f, json_t *const *reports, size_t n)
{
	struct sarif_in in = {reports, n};

	render_sarif(f, &in);
}

int report_sarif_write(json_t *const *reports, size_t n, const char *path)
{
	struct sarif_in in = {reports, n};

	return report_write_with(path, render_sarif, &in);
}
