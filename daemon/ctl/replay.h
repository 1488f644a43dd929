/* faultctl replay and faultctl shrink (docs/replay.md). replay runs a
 * report's scenario with the fault actions the run fired, at the times it
 * fired them (a top-level "schedule"), and the same seed; shrink looks for
 * the smallest schedule that still makes the same invariant FAIL. Both run
 * scenarios through faultctl's own runner (in-process or through faultd),
 * as soak does. */
#ifndef FAULTD_REPLAY_H
#define FAULTD_REPLAY_H

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

#include "scenario.h"

struct ctl_runner {
	/* Run one scenario file; *report is a new reference (NULL, and a
	 * negative return, when it could not run). */
	int (*run_one)(void *arg, const char *file, json_t **report);
	/* Before the first run: in this process (--local) or through faultd.
	 * Returns the flag a SIGINT/SIGTERM sets. */
	volatile int *(*begin)(void *arg, bool local);
	void (*end)(void *arg);
	void *arg;
	const char *runs_dir;		/* where a bare run id's report is */
};

int replay_main(int argc, char **argv, const struct ctl_runner *rn);
int shrink_main(int argc, char **argv, const struct ctl_runner *rn);

/* What replay and shrink start from: a report (with the scenario it ran,
 * checked against the report's sha256), or a scenario file. */
struct replay_src {
	json_t *report;			/* NULL: started from a scenario file */
	json_t *doc;			/* the scenario as JSON */
	struct scenario *sc;		/* and parsed */
	char path[PATH_MAX];		/* the report or scenario read */
};

/* @arg: a report.json, a run directory, a run id (in @runs_dir), or with
 * @scenario_ok a scenario file. 0, or -errno after printing why. */
int replay_src_load(const char *arg, const char *runs_dir, bool scenario_ok,
		    struct replay_src *src);
void replay_src_free(struct replay_src *src);
/* The report's fired actions (and the cycle ends its cycles closed) as
 * "schedule" entries at their actual times; NULL after printing why. */
json_t *replay_schedule(const struct replay_src *src);
/* Indexes of the invariants a report FAILed, as a JSON array. */
json_t *replay_failing(const json_t *report);
/* @doc written as a scenario file (indented, atomically). 0 or -errno. */
int replay_write_doc(const char *path, const json_t *doc);
/* The largest |actual - actual| between two reports' fault timelines,
 * matched in order; *n_matched of them compared. */
long long replay_timeline_dev(const json_t *a, const json_t *b, size_t *n_matched);

#endif
