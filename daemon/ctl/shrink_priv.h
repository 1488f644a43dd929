/* What faultctl shrink's two files share: the search's state (shrink.c)
 * and the candidates it tries (shrink_cand.c: units, the candidate as a
 * scenario, the parameter steps). */
#ifndef FAULTD_SHRINK_PRIV_H
#define FAULTD_SHRINK_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "replay.h"

#define MIN_SPAN_MS 20		/* an outage, pause or window is not halved below this */

struct shrink {
	const struct ctl_runner *rn;
	volatile int *stop;
	struct replay_src src;
	json_t *units;			/* every unit of the original: {fault, entries[]} */
	json_t *faults;			/* the original's fault definitions */
	json_t *cache;			/* candidate sha256 -> [run outcome] */
	json_t *last_runs;		/* the outcomes of the last candidate judged */
	json_t *best_runs;		/* ... of the smallest failing one */
	json_t *params_log;		/* what the parameter phase changed */
	json_int_t tail_ms, seed;
	double duration_s;
	int runs, need;			/* K of N */
	int target;			/* invariant index; -1: any, until known */
	const char *want_name;		/* --invariant */
	uint64_t t0_ms, budget_ms;
	int runs_spent, runs_logged, candidates;
	bool tty, out_of_budget, stopped;
	const char *phase;
	char dir[PATH_MAX], log_path[PATH_MAX + 16], cand_path[PATH_MAX + 32];
	FILE *log;
};

static inline const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static inline json_int_t jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* shrink_cand.c: a schedule cut into units; a candidate {units, faults,
 * tail_ms}; it as a scenario named @name (NULL: the original's) and the
 * sha256 of that. */
json_t *shrink_make_units(const json_t *sched);
const char *shrink_unit_kind(const struct shrink *s, const json_t *u);
json_t *shrink_cand_new(const json_t *units, const json_t *faults, json_int_t tail);
json_t *shrink_cand_with_units(const json_t *cand, json_t *units);
json_int_t shrink_cand_last_at(const json_t *cand);
bool shrink_is_fixed(const json_t *f);
json_t *shrink_materialize(const struct shrink *s, const json_t *cand, const char *name);
void shrink_cand_key(const json_t *doc, char key[65]);

/* One parameter step on a candidate (a copy): true when it changed
 * something of fault @fault. */
typedef bool (*param_fn)(json_t *cand, json_int_t fault);
bool shrink_p_shorter_outage(json_t *cand, json_int_t fault);
bool shrink_p_shorter_window(json_t *cand, json_int_t fault);
bool shrink_p_later_start(json_t *cand, json_int_t fault);
bool shrink_p_smaller_rate(json_t *cand, json_int_t fault);

#endif
