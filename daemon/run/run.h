/* One run's lifecycle: plan, start workloads held, attach probes, release,
 * sample per cycle, stop, evaluate invariants, write the report, tear down.
 * Everything happens on the caller's event loop; the daemon and
 * `faultctl --local` drive the same code. */
#ifndef FAULTD_RUN_H
#define FAULTD_RUN_H

#include <limits.h>

#include <jansson.h>
#include <event2/event.h>

#include "inv.h"
#include "scenario.h"

#define RUN_DEFAULT_DIR "/var/lib/faultd/runs"

enum run_state { RUN_QUEUED, RUN_STARTING, RUN_RUNNING, RUN_STOPPING, RUN_DONE };

struct run;

/* Where runs keep what they make and find what they need. faultd and
 * faultctl each fill one (run_paths_default, then their options). */
struct run_paths {
	char runs_dir[PATH_MAX];	/* reports and logs go to runs_dir/RUN_ID */
	char cgroup_root[PATH_MAX];	/* cgroup v2 parent of run cgroups */
	char harness_dir[PATH_MAX];	/* bundled workload binaries */
	char journal_dir[PATH_MAX];	/* undo journals of runs that change the machine */
};

/* RUN_DEFAULT_DIR, JOURNAL_DEFAULT_DIR, the bundled workloads found from
 * the running program (paths_harness_dir); no cgroup root yet. */
void run_paths_default(struct run_paths *p);

struct run_opts {
	const struct run_paths *paths;	/* copied by run__new */
	const char *suppressions;	/* faultctl run --suppressions: absolute path, or NULL */
	/* A cycle ended: @cycle is {"cycle", "t_ms", ...}; borrowed. */
	void (*on_cycle)(struct run *r, const json_t *cycle, void *arg);
	/* The run is over and its report written; the report is borrowed. */
	void (*on_done)(struct run *r, const json_t *report, void *arg);
	void *arg;
};

/* Takes ownership of @sc. NULL with errno on failure. */
struct run *run__new(struct event_base *base, struct scenario *sc,
		     const struct run_opts *opts);
/* Start asynchronously. Setup errors do not return here: the run then ends
 * with verdict ERROR and on_done is called from the loop as usual. */
void run__start(struct run *r);
/* Stop early (a user's stop or SIGTERM): stop workloads, tear down, report. */
void run__stop(struct run *r, const char *reason);
void run__free(struct run *r);

const char *run__id(const struct run *r);
enum run_state run__state(const struct run *r);
const char *run__state_name(enum run_state s);
const struct scenario *run__scenario(const struct run *r);
json_t *run__status(const struct run *r);	/* new reference */
const json_t *run__report(const struct run *r);	/* NULL until done */
const char *run__dir(const struct run *r);

#endif
