/* Parameter structs of the invariants, shared by the table in inv.c and the
 * invariant files. Each starts with the common keys, in this order. */
#ifndef FAULTD_INV_PARAMS_H
#define FAULTD_INV_PARAMS_H

#include "scenario.h"

#define INV_COMMON_FIELDS \
	const char *name;	/* the invariant's name */ \
	const char *workload;	/* only this workload; NULL: all */

#define INV_COMMON_KEYS \
	{"name", SC_STR, SC_REQ, 0, .doc = "the invariant"}, \
	{"workload", SC_STR, 0, sizeof(const char *), .doc = "only this workload"}

struct inv_no_crash_params {
	INV_COMMON_FIELDS
	const char **ignore_signals;	/* deaths by these are not crashes */
	int ignore_mask[65];		/* ignore_signals as a lookup, built at parse */
};

struct inv_exit_ok_params {
	INV_COMMON_FIELDS
	long long codes[16];		/* exit codes that count as success */
	size_t n_codes;
};

int inv_no_crash(const struct run_obs *obs, const struct sc_invariant *inv,
		 struct inv_result *res);
int inv_exit_ok(const struct run_obs *obs, const struct sc_invariant *inv,
		struct inv_result *res);
int inv_parse_signals(struct sc_ctx *ctx, json_t *val, void *target);
int inv_parse_codes(struct sc_ctx *ctx, json_t *val, void *target);

#endif
