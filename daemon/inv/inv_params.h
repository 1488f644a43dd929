/* Parameter structs of the invariants, shared by the table in inv.c and the
 * invariant files. Each starts with struct inv_common. */
#ifndef FAULTD_INV_PARAMS_H
#define FAULTD_INV_PARAMS_H

#include <stddef.h>

#include "inv.h"
#include "scenario.h"

/* The keys every invariant takes. Each parameter struct begins with this
 * one (INV_COMMON_FIELDS), so the scenario reads them from any of them. */
struct inv_common {
	const char *name;	/* the invariant's name */
	const char *workload;	/* only this workload; NULL: all */
	const char *suppressions;	/* its own suppression file, resolved; NULL: none */
};

#define INV_COMMON_FIELDS struct inv_common common;

#define INV_COMMON_KEYS \
	{"name", SC_STR, SC_REQ, offsetof(struct inv_common, name), .doc = "the invariant"}, \
	{"workload", SC_STR, 0, offsetof(struct inv_common, workload), \
	 .doc = "only this workload"}

/* "suppressions" of the heap and fd invariants (inv_suppress.c). */
#define INV_SUPPRESS_KEY \
	{"suppressions", SC_CUSTOM, 0, 0, .parse = inv_parse_suppressions, \
	 .doc = "suppression file (leak:, invalid_free:, double_free:, heap:, fd:)"}

struct inv_no_leak_params {
	INV_COMMON_FIELDS
	long long min_bytes;		/* a direct leak's stack below this many bytes: not one */
};

struct inv_no_crash_params {
	INV_COMMON_FIELDS
	const char **ignore_signals;	/* deaths by these are not crashes */
	int ignore_mask[65];		/* ignore_signals as a lookup, built at parse */
	/* Deaths by these count too, beyond the core-dumping signals and OOM
	 * kills: a termination (SIGTERM from a timeout(1)) is not a crash
	 * unless the scenario names it here. */
	int count_mask[65];
};

struct inv_exit_ok_params {
	INV_COMMON_FIELDS
	long long codes[16];		/* exit codes that count as success */
	size_t n_codes;
};

/* fds_stable, sockets_stable, heap_stable: the trend rule's knobs. */
struct inv_trend_params {
	INV_COMMON_FIELDS
	long long warmup_cycles;
	long long window;
	double min_slope;		/* per cycle: fds, sockets, or bytes */
	double min_rising;
	double tolerance;
	double limit;			/* project when it is reached; 0: no limit */
	const char *object;		/* count live objects of this kind instead */
	const char *counter;		/* counter_stable: the FAULTD_COUNTER judged */
};

#define INV_TREND_KEYS(slope_def, limit_def) \
	{"warmup_cycles", SC_INT, 0, offsetof(struct inv_trend_params, warmup_cycles), 0, 1000, \
	 .def = "1", .doc = "leading cycles ignored"}, \
	{"window", SC_INT, 0, offsetof(struct inv_trend_params, window), 2, 64, .def = "10", \
	 .doc = "the last this many cycles are judged"}, \
	{"min_slope", SC_NUM, 0, offsetof(struct inv_trend_params, min_slope), 0, 1e15, \
	 .def = slope_def, .doc = "growth per cycle that counts"}, \
	{"min_rising", SC_NUM, 0, offsetof(struct inv_trend_params, min_rising), 0, 1, \
	 .def = "0.6", .doc = "fraction of rising cycles in the window"}, \
	{"tolerance", SC_NUM, 0, offsetof(struct inv_trend_params, tolerance), 0, 1e15, \
	 .def = "0", .doc = "above the baseline by more than this"}, \
	{"limit", SC_NUM, 0, offsetof(struct inv_trend_params, limit), 0, 1e15, \
	 .def = limit_def, .doc = "projected exhaustion at this count"}, \
	{"object", SC_STR, 0, offsetof(struct inv_trend_params, object), \
	 .doc = "judge the live objects of this lifecycle kind (USDT or library calls)"}

struct inv_no_invalid_free_params {
	INV_COMMON_FIELDS
};

struct inv_no_residue_params {
	INV_COMMON_FIELDS
};

struct inv_lifecycle_params {
	INV_COMMON_FIELDS
	bool alive_at_end;		/* objects alive when it exits by itself: allowed */
};

struct inv_msg_params {
	INV_COMMON_FIELDS
	bool lost;			/* check for lost messages at a clean exit */
};

struct inv_recovers_params {
	INV_COMMON_FIELDS
	long long within_ms;		/* progress after the link is back, at the latest */
	const char *counter;		/* progress is this USDT counter rising; NULL: output */
};

/* Which sample a trend invariant reads. */
enum inv_series { INV_S_FDS, INV_S_SOCKETS, INV_S_HEAP_BYTES, INV_S_OBJECTS, INV_S_COUNTER };

/* Shared by the trend invariants: judge @field of every selected workload
 * with the probe it needs. */
int inv_trend(const struct run_obs *obs, const struct sc_invariant *inv,
	      enum inv_series field, struct inv_result *res);

int inv_no_crash(const struct run_obs *obs, const struct sc_invariant *inv,
		 struct inv_result *res);
int inv_exit_ok(const struct run_obs *obs, const struct sc_invariant *inv,
		struct inv_result *res);
int inv_fds_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		   struct inv_result *res);
int inv_sockets_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		       struct inv_result *res);
int inv_heap_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		    struct inv_result *res);
int inv_no_invalid_free(const struct run_obs *obs, const struct sc_invariant *inv,
			struct inv_result *res);
int inv_lifecycle(const struct run_obs *obs, const struct sc_invariant *inv,
		  struct inv_result *res);
int inv_msg_integrity(const struct run_obs *obs, const struct sc_invariant *inv,
		      struct inv_result *res);
int inv_recovers(const struct run_obs *obs, const struct sc_invariant *inv,
		 struct inv_result *res);
int inv_no_residue(const struct run_obs *obs, const struct sc_invariant *inv,
		   struct inv_result *res);
int inv_counter_stable(const struct run_obs *obs, const struct sc_invariant *inv,
		       struct inv_result *res);
int inv_no_leak(const struct run_obs *obs, const struct sc_invariant *inv,
		struct inv_result *res);
int inv_parse_signals(struct sc_ctx *ctx, json_t *val, void *target);
int inv_parse_counted_signals(struct sc_ctx *ctx, json_t *val, void *target);
int inv_parse_suppressions(struct sc_ctx *ctx, json_t *val, void *target);

/* inv_suppress.c: the rules that apply to @inv (the run's files, then its
 * own), or NULL if none; on a file that cannot be read (it changed since
 * the scenario was checked) NULL with the reason in @err. Caller frees
 * with suppress_free. */
struct suppress;
struct suppress *inv_suppressions(const struct run_obs *obs, const struct sc_invariant *inv,
				  char *err, size_t err_len);
/* Mark an evidence item as suppressed by @rule ("leak:foo (file:3)"). */
void inv_mark_suppressed(json_t *item, const char *rule);
int inv_parse_codes(struct sc_ctx *ctx, json_t *val, void *target);

#endif
