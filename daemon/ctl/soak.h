/* Soak mode: run a set of scenarios over and over until a duration ends,
 * as a nightly job does, and judge the whole: per scenario, runs, passes,
 * fails, inconclusives and errors against what it expects; a scenario that
 * both matched and missed its expectation is flaky, not hidden. Disk stays
 * bounded: the last keep_runs run directories stay whole, older ones are
 * removed and live on as a line of the summary. */
#ifndef FAULTD_SOAK_H
#define FAULTD_SOAK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct soak_opts {
	char *const *files;		/* scenario files, run in this order */
	int n_files;
	uint64_t duration_ms;		/* no new iteration starts after this */
	unsigned keep_runs;		/* full run directories kept */
	const char *summary_path;	/* rewritten after every run */
	const char *junit_path;		/* NULL: none */
	bool quiet;
	/* Run one scenario; *report is a new reference (NULL if it could not
	 * run, with a negative return). */
	int (*run_one)(void *arg, const char *file, json_t **report);
	void *arg;
	volatile int *stop;		/* set by a signal: finish the current run, stop */
};

/* Returns the exit code: 0 every run as expected, 1 a failure or a flaky
 * scenario, 3 a scenario that could not run at all. */
int soak_run(const struct soak_opts *o);
/* "8h", "30m", "90s", "1h30m", "45": milliseconds, or 0 if malformed. */
uint64_t soak_parse_duration(const char *s);

#endif
