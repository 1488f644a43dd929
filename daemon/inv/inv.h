/* The invariant engine's vocabulary. Each invariant is a pure function of
 * what a run observed (struct run_obs) and its parameters, so it can be
 * tested without a kernel; one invariant per file (inv_NAME.c). */
#ifndef FAULTD_INV_H
#define FAULTD_INV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "scenario.h"

enum verdict { V_PASS = 0, V_FAIL, V_INCONCLUSIVE, V_ERROR };

const char *verdict_name(enum verdict v);
int verdict_exit_code(enum verdict v);	/* 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR */
enum verdict verdict_parse(const char *name);	/* unknown or NULL: V_ERROR */
/* The run's verdict from its invariants': any FAIL, else any INCONCLUSIVE. */
enum verdict verdict_combine(enum verdict a, enum verdict b);

struct obs_proc {			/* one process of a workload's tree */
	pid_t pid;
	pid_t ppid;
	int workload;			/* index into the scenario's workloads */
	char comm[16];
	uint64_t t_start_ms;		/* since run start */
	uint64_t t_exit_ms;
	bool exited;
	int exit_status;		/* exit(N): N */
	int signal;			/* killed by: 0 if it exited */
	bool core;
	bool by_faultd;			/* ended by a signal faultd sent */
	bool oom_killed;		/* the kernel's OOM killer chose it */
};

struct obs_workload {
	const struct sc_workload *sc;
	pid_t pid;
	bool started;
	bool exited;			/* reaped */
	bool timed_out;			/* killed because timeout_s passed */
	bool stopped;			/* faultd stopped it (run over or stop) */
	int exit_status;
	int signal;
	bool core;
	uint64_t t_start_ms;
	uint64_t t_exit_ms;
	uint64_t *out_times;		/* when output came, 100 ms apart at most */
	size_t n_out_times, cap_out_times;
	json_t *last_output;		/* its last lines of stdout, or NULL */
	json_t *sanitizer;		/* ASan/UBSan reports in its stderr, or NULL */
	struct obs_counter *counters;	/* changes of watched USDT counters, in order */
	size_t n_counters, cap_counters;
};

struct obs_counter {			/* a FAULTD_COUNTER changed */
	uint64_t t_ms;
	long long value;
	char name[16];
};

struct obs_cycle {
	unsigned n;			/* 1-based */
	uint64_t t_start_ms;
	uint64_t t_end_ms;
	unsigned procs;			/* live processes of all workloads */
	unsigned long long rss_kb;	/* summed over live workload roots */
};

/* One workload's probe readings at the end of one cycle. */
#define INV_MAX_KINDS 8		/* object kinds counted per cycle */

struct obs_sample {
	bool life;			/* live[] and counters[] are valid */
	long long live[INV_MAX_KINDS];	/* objects alive, per run_obs.life_kinds */
	long long counters[INV_MAX_KINDS];	/* FAULTD_COUNTER values, per life_counters */
	bool heap;			/* heap_* are valid */
	long long heap_bytes;		/* live */
	long long heap_blocks;
	bool fds;			/* fds, sockets are valid */
	long long fds_total;		/* over the workload's live processes */
	long long sockets;
	long long fd_types[16];		/* enum fd_type, see include/fds.h */
};

/* What each workload's probes saw over the whole run. */
struct obs_probes {
	bool heap, fds, life;		/* attached */
	unsigned long long heap_lost;	/* events or blocks not tracked */
	unsigned long long fds_lost;
	unsigned long long life_lost;
	unsigned long long heap_allocs, heap_frees;
	unsigned long long heap_internal_frees;	/* glibc freeing its own data */
	json_t *heap_losses;		/* {"ringbuf": n, "live_map_full": n, ...} */
	char heap_placement[512];	/* where each probe sits: "malloc+0 push: emulated, ..." */
	json_t *heap_sites;		/* [{caller, stack, bytes, blocks, growth_bytes}] */
	json_t *heap_coverage;		/* {"programs": [{exe, allocator, ...}], growth ...} */
	/* Why the heap probe saw too little of this workload to judge it
	 * (an allocator faultd does not know, no allocation seen, growth the
	 * probed calls do not explain); "" when it saw enough. */
	char heap_uncovered[640];
	json_t *fd_calls;		/* {"socket": n, "close": n, ...} */
};

struct run_obs {
	const struct scenario *sc;
	struct obs_workload *wl;	/* sc->n_wl of them */
	struct obs_proc *procs;
	size_t n_procs;
	struct obs_cycle *cycles;
	size_t n_cycles;
	struct obs_sample *samples;	/* n_cycles rows of sc->n_wl */
	struct obs_probes *probes;	/* sc->n_wl */
	const char *life_kinds[INV_MAX_KINDS];	/* object kinds the invariants count */
	size_t n_life_kinds;
	const char *life_counters[INV_MAX_KINDS];	/* counters the invariants follow */
	size_t n_life_counters;
	json_t *faults;			/* the timeline: actions fired, planned and actual */
	json_t *topology;		/* scenario names -> kernel names, or NULL */
	json_t *packet_stats;		/* per link and direction: seen, dropped, corrupted */
	json_t *syscall_stats;		/* per workload: calls, failed */
	json_t *heap_events;		/* bad frees, symbolized, in order */
	json_t *leaks;			/* no_leak: one scan per process held at exit */
	/* Suppression files for every heap and fd invariant: the scenario's
	 * and the command line's (faultctl run --suppressions); NULL: none. */
	const char *suppressions[2];
	json_t *life_events;		/* lifecycle violations, in order */
	json_t *crashes;		/* [{pid, tid, signal, fault_address, backtrace}] */
	json_t *residue;		/* what teardown left; NULL: not scanned */
	json_t *life_alive;		/* objects alive at the end */
	json_t *msg_events;		/* message integrity violations */
	json_t *msg_lost;		/* sent, never received */
	/* What this host could do, as caps_json() had it when the run ended:
	 * {"heap": {"state": "missing", "why": ...}, ...}. NULL: all there. */
	json_t *capabilities;
	json_t *not_applied;		/* faults the host could not apply, or NULL */
	bool proc_probe;		/* the process probe was attached */
	unsigned long long proc_lost;	/* events the process probe lost */
	uint64_t t_end_ms;
};

/* Workload @wl's sample at the end of cycle index @c (0-based). */
static inline const struct obs_sample *obs_sample_at(const struct run_obs *obs,
						     size_t c, size_t wl)
{
	return &obs->samples[c * obs->sc->n_wl + wl];
}

/* Index of @name in @names[0..n), or -1 (also for a NULL name): the kinds
 * and counters of run_obs are looked up by name. */
static inline int obs_name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t k = 0; name && k < n; k++)
		if (!strcmp(names[k], name))
			return (int)k;
	return -1;
}

/* The cycle (1-based) whose window holds @t_ms; the last one if none. */
unsigned obs_cycle_at(const struct run_obs *obs, uint64_t t_ms);

/* Did workload @w end by its own exit(), whatever the status: not killed by
 * a signal (a crash), stopped by faultd or ended by its timeout_s? Only then
 * is what it left in flight its own doing and not cut off. */
bool obs_wl_exited_by_itself(const struct run_obs *obs, int w);

struct inv_result {
	enum verdict verdict;
	char summary[256];		/* one line a person reads first */
	json_t *evidence;		/* array of objects, owned */
	long first_cycle;		/* FAIL: first violating cycle, else -1 */
	uint64_t first_at_ms;		/* FAIL: since run start */
};

struct inv_def {
	const char *name;
	const char *doc;
	bool available;			/* false: a later part of faultd brings it */
	const char *needs_probe;	/* the workload must have this probe */
	/* The probe these parameters need, if they change it; NULL: needs_probe. */
	const char *(*probe_for)(const void *params);
	const struct sc_key *keys;	/* parameter keys beyond name/workload */
	size_t params_size;
	int (*eval)(const struct run_obs *obs, const struct sc_invariant *inv,
		    struct inv_result *res);
	const char *needs_feature;	/* a host feature beyond the probe (caps.h) */
};

const struct inv_def *inv_lookup(const char *name);
void inv_names(char *buf, size_t len, bool available_only);
/* Why the host feature @name is missing, or NULL if the run had it. */
const char *obs_missing(const struct run_obs *obs, const char *name);

/* Evaluate one invariant into @res (res->evidence is a new array). An
 * invariant whose probe or feature the host lacks is INCONCLUSIVE and says
 * which; a PASS of a run whose faults were not all applied is too. */
int inv_eval(const struct run_obs *obs, const struct sc_invariant *inv,
	     struct inv_result *res);

/* The heap invariants' INCONCLUSIVE when the probe saw too little of
 * workload @w: the summary and an evidence row say why. */
void inv_heap_uncovered(const struct run_obs *obs, size_t w, struct inv_result *res);

/* Invariants without parameters still accept the common keys. */
extern const struct sc_key inv_common_keys[];

#endif
