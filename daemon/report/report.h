/* Reporters. The JSON report is the source: text, JUnit and HTML render it.
 * Data flows one way into here: the run hands over what it observed and
 * the invariants' results; nothing here reaches back. */
#ifndef FAULTD_REPORT_H
#define FAULTD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "inv.h"
#include "version.h"

#define REPORT_SCHEMA_VERSION 1

/* A report's string at @key, or @dflt: the renderers read optional fields. */
static inline const char *report_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : dflt;
}

struct report_wl_out {
	const char *stdout_path;
	const char *stderr_path;
	unsigned long long seen;	/* bytes the workload wrote */
	unsigned long long dropped;	/* bytes not kept (middle of the log) */
	const char *const *argv;
};

struct report_in {
	const char *run_id;
	const char *run_dir;
	const struct scenario *sc;
	const struct run_obs *obs;
	const struct inv_result *res;	/* one per scenario invariant */
	size_t n_res;
	const struct report_wl_out *wl_out;	/* one per workload */
	enum verdict verdict;
	const char *error;		/* why the run could not run, or NULL */
	const char *stop_reason;
	uint64_t started_at_ms;		/* realtime */
	uint64_t ended_at_ms;
	long long seed;
	unsigned long long procs_seen;
};

json_t *report_json_build(const struct report_in *in);	/* new reference */
/* {"NAME": {"fds": n, "sockets": n, "heap_bytes": n, ...}} for one cycle:
 * only the values the workload's probes measure. */
json_t *report_cycle_workloads(const struct run_obs *obs, size_t c);
int report_json_write(const json_t *report, const char *path);	/* atomic */

/* Human-readable report from the JSON (so a client can render what the
 * daemon sent). */
void report_text(FILE *f, const json_t *report);
/* One line: "PASS  exec-demo  r3f9a1c  12.0s  no_crash: ..." */
void report_text_line(FILE *f, const json_t *report);

/* JUnit XML of one or more run reports, valid against tests/schemas/
 * junit-faultd.xsd and Jenkins' junit-10.xsd:
 * one <testsuite> per run (time, timestamp, hostname), one <testcase> per
 * invariant with the run's duration as its time and its own <system-out>
 * naming the report (FAIL -> <failure>, INCONCLUSIVE -> <skipped>,
 * ERROR or a run that could not start -> <error>). Crashed processes are
 * listed in the no_crash testcase's failure, not as testcases of their own.
 * @path "-" is stdout; a regular file is replaced atomically. 0 or -errno. */
int report_junit_write(json_t *const *reports, size_t n, const char *path);
void report_junit(FILE *f, json_t *const *reports, size_t n);
/* SARIF 2.1.0 of one or more run reports: one SARIF run per report, the
 * invariants as rules, one result per failing finding at its file:line
 * (report_sarif.c says which). @path "-" is stdout. 0 or -errno. */
int report_sarif_write(json_t *const *reports, size_t n, const char *path);
void report_sarif(FILE *f, json_t *const *reports, size_t n);
/* One self-contained HTML page (inline CSS and SVG plots, no script). */
int report_html_write(const json_t *report, const char *path);
void report_html(FILE *f, const json_t *report);

/* report_common.c, shared by the reporters and http.c. Text for XML or HTML,
 * content or attribute: markup escaped, forbidden controls and bytes that
 * are not UTF-8 replaced by U+FFFD. */
void report_escape(FILE *f, const char *s);
void report_escape_n(FILE *f, const char *s, size_t len);
/* An invariant's evidence array as indented "key: value" text, at most
 * @cap bytes (0: no cap) plus a note when cut. malloc'd; NULL on ENOMEM. */
char *report_evidence_text(const json_t *evidence, size_t cap);
/* Render into memory, then write @path ("-" or NULL: stdout) atomically. */
int report_write_with(const char *path, void (*render)(FILE *, const void *),
		      const void *arg);
/* @report as json, text, html, junit or sarif to @path ("-" or NULL: stdout);
 * -EINVAL for another format. */
int report_write_format(const json_t *report, const char *format, const char *path);
bool report_format_known(const char *format);

#endif
