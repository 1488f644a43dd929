#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "util.h"

const struct sc_key inv_common_keys[] = {INV_COMMON_KEYS, {NULL}};

static const struct sc_key no_crash_keys[] = {
	INV_COMMON_KEYS,
	{"ignore_signals", SC_CUSTOM, 0, 0, .parse = inv_parse_signals,
	 .def = "[\"SIGPIPE\"]", .doc = "signals whose deaths are not crashes"},
	{"signals", SC_CUSTOM, 0, 0, .parse = inv_parse_counted_signals,
	 .doc = "deaths by these count as crashes too (by default only the core-dumping "
		"signals SEGV ABRT BUS FPE ILL TRAP SYS and OOM kills do; SIGTERM, SIGINT, "
		"SIGHUP, SIGKILL from another process are terminations, listed)"},
	{NULL},
};

static const struct sc_key exit_ok_keys[] = {
	INV_COMMON_KEYS,
	{"codes", SC_CUSTOM, 0, 0, .parse = inv_parse_codes, .def = "[0]",
	 .doc = "exit codes that count as success"},
	{NULL},
};

static const struct sc_key fds_keys[] = {INV_COMMON_KEYS, INV_TREND_KEYS("0.5", "1024"),
					 INV_SUPPRESS_KEY, {NULL}};
static const struct sc_key sockets_keys[] = {INV_COMMON_KEYS, INV_TREND_KEYS("0.5", "0"),
					     INV_SUPPRESS_KEY, {NULL}};
static const struct sc_key heap_keys[] = {INV_COMMON_KEYS, INV_TREND_KEYS("256", "0"),
					  INV_SUPPRESS_KEY, {NULL}};
static const struct sc_key invalid_free_keys[] = {INV_COMMON_KEYS, INV_SUPPRESS_KEY, {NULL}};
static const struct sc_key no_leak_keys[] = {
	INV_COMMON_KEYS, INV_SUPPRESS_KEY,
	{"min_bytes", SC_INT, 0, offsetof(struct inv_no_leak_params, min_bytes), 0, 1e15,
	 .def = "1", .doc = "an allocation stack's direct leaks below this many bytes pass"},
	{NULL},
};
static const struct sc_key counter_keys[] = {
	INV_COMMON_KEYS, INV_TREND_KEYS("0.5", "0"),
	{"counter", SC_STR, SC_REQ, offsetof(struct inv_trend_params, counter),
	 .doc = "the FAULTD_COUNTER whose value must not trend upward (an mbuf pool's in-use count)"},
	{NULL},
};
static const struct sc_key lifecycle_keys[] = {
	INV_COMMON_KEYS,
	{"alive_at_end", SC_BOOL, 0, offsetof(struct inv_lifecycle_params, alive_at_end),
	 .def = "false", .doc = "objects alive when the workload exits by itself are fine"},
	{NULL},
};
static const struct sc_key msg_keys[] = {
	INV_COMMON_KEYS,
	{"lost", SC_BOOL, 0, offsetof(struct inv_msg_params, lost), .def = "true",
	 .doc = "messages never received count, when the workload exits by itself"},
	{NULL},
};

static const struct sc_key recovers_keys[] = {
	INV_COMMON_KEYS,
	{"within_ms", SC_INT, 0, offsetof(struct inv_recovers_params, within_ms), 1, 3600000,
	 .def = "5000", .doc = "progress after a link comes back, at the latest"},
	{"counter", SC_STR, 0, offsetof(struct inv_recovers_params, counter),
	 .doc = "progress is this FAULTD_COUNTER rising (needs the lifecycle probe); "
		"default: a line of output"},
	{NULL},
};

/* Counting objects reads the lifecycle probe, not the fds probe. */
static const char *trend_probe(const void *params)
{
	return ((const struct inv_trend_params *)params)->object ? "lifecycle" : NULL;
}

static const char *recovers_probe(const void *params)
{
	return ((const struct inv_recovers_params *)params)->counter ? "lifecycle" : NULL;
}

/* The scenario vocabulary. Entries not yet available are listed so a
 * scenario naming them gets "not supported by this build yet", not
 * "unknown". */
static const struct inv_def inv_defs[] = {
	{"no_crash", "no workload process dies by a core-dumping signal or an OOM kill", true, NULL, NULL, no_crash_keys,
	 sizeof(struct inv_no_crash_params), inv_no_crash, .needs_feature = "proc"},
	{"exit_ok", "every workload that ends by itself exits with an allowed code",
	 true, NULL, NULL, exit_ok_keys, sizeof(struct inv_exit_ok_params), inv_exit_ok, NULL},
	{"fds_stable", "fd count does not trend upward across cycles", true, "fds",
	 trend_probe, fds_keys, sizeof(struct inv_trend_params), inv_fds_stable, NULL},
	{"sockets_stable", "socket count does not trend upward across cycles", true, "fds",
	 trend_probe, sockets_keys, sizeof(struct inv_trend_params), inv_sockets_stable, NULL},
	{"heap_stable", "live heap does not trend upward across cycles", true, "heap", NULL,
	 heap_keys, sizeof(struct inv_trend_params), inv_heap_stable, NULL},
	{"counter_stable", "a FAULTD_COUNTER's value does not trend upward across cycles", true,
	 "lifecycle", NULL, counter_keys, sizeof(struct inv_trend_params), inv_counter_stable, NULL},
	{"no_invalid_free", "no double free or free of a never-allocated pointer", true,
	 "heap", NULL, invalid_free_keys, sizeof(struct inv_no_invalid_free_params),
	 inv_no_invalid_free, NULL},
	{"no_leak", "no heap block is unreachable when a process exits (LeakSanitizer's check)",
	 true, "heap", NULL, no_leak_keys, sizeof(struct inv_no_leak_params), inv_no_leak, NULL},
	{"lifecycle", "no event on a destroyed object; none alive at the end", true,
	 "lifecycle", NULL, lifecycle_keys, sizeof(struct inv_lifecycle_params), inv_lifecycle, NULL},
	{"msg_integrity", "no message duplicated, stale, out of order or lost", true,
	 "lifecycle", NULL, msg_keys, sizeof(struct inv_msg_params), inv_msg_integrity, NULL},
	{"recovers", "after a link comes back the workload makes progress", true, NULL,
	 recovers_probe, recovers_keys, sizeof(struct inv_recovers_params), inv_recovers, NULL},
	{"no_residue", "nothing of the run is left on the machine after teardown", true, NULL,
	 NULL, inv_common_keys, sizeof(struct inv_no_residue_params), inv_no_residue, NULL},
};

const struct inv_def *inv_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(inv_defs); i++)
		if (strcmp(inv_defs[i].name, name) == 0)
			return &inv_defs[i];
	return NULL;
}

void inv_names(char *buf, size_t len, bool available_only)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(inv_defs) && off < len; i++) {
		if (available_only && !inv_defs[i].available)
			continue;
		int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
				 inv_defs[i].name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

const char *obs_missing(const struct run_obs *obs, const char *name)
{
	json_t *row = name ? json_object_get(obs->capabilities, name) : NULL;
	const char *state = json_string_value(json_object_get(row, "state"));

	if (!state || strcmp(state, "missing"))
		return NULL;
	return json_string_value(json_object_get(row, "why")) ?: "unknown";
}

/* The host feature an invariant stands on: its probe's, or its own. */
static const char *inv_feature(const struct sc_invariant *inv)
{
	const char *probe = inv->def->probe_for && inv->params ?
			    inv->def->probe_for(inv->params) : NULL;

	return probe ? probe : inv->def->needs_probe ? inv->def->needs_probe :
	       inv->def->needs_feature;
}

int inv_eval(const struct run_obs *obs, const struct sc_invariant *inv,
	     struct inv_result *res)
{
	const char *feature, *why;
	int err = 0;

	memset(res, 0, sizeof(*res));
	res->first_cycle = -1;
	res->evidence = json_array();
	if (!res->evidence)
		return -ENOMEM;
	if (!inv->def || !inv->def->eval) {
		res->verdict = V_ERROR;
		snprintf(res->summary, sizeof(res->summary), "not available");
		return 0;
	}
	feature = inv_feature(inv);
	why = obs_missing(obs, feature);
	if (why) {
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary),
			 "needs %s, which this host lacks: %s", feature, why);
		json_array_append_new(res->evidence, json_pack("{ssss}", "missing_feature",
							       feature, "why", why));
		return 0;
	}
	err = inv->def->eval(obs, inv, res);
	/* A fault the host could not apply makes a PASS unproven; a FAIL
	 * stands: what was seen went wrong under the faults that were. */
	if (!err && res->verdict == V_PASS && json_array_size(obs->not_applied)) {
		json_t *first = json_array_get(obs->not_applied, 0);

		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary),
			 "fault %s was not applied: %s", json_string_value(json_object_get(first,
			 "fault")) ?: "?", json_string_value(json_object_get(first, "why")) ?: "?");
		json_array_append_new(res->evidence, json_pack("{sO}", "faults_not_applied",
							       obs->not_applied));
	}
	return err;
}

const char *verdict_name(enum verdict v)
{
	static const char *const names[] = {"PASS", "FAIL", "INCONCLUSIVE", "ERROR"};

	return v <= V_ERROR ? names[v] : "ERROR";
}

enum verdict verdict_parse(const char *name)
{
	for (int v = V_PASS; name && v <= V_ERROR; v++)
		if (strcmp(name, verdict_name((enum verdict)v)) == 0)
			return (enum verdict)v;
	return V_ERROR;
}

int verdict_exit_code(enum verdict v)
{
	return v <= V_ERROR ? (int)v : 3;
}

enum verdict verdict_combine(enum verdict a, enum verdict b)
{
	/* ERROR outranks FAIL outranks INCONCLUSIVE outranks PASS. */
	static const int rank[] = {[V_PASS] = 0, [V_INCONCLUSIVE] = 1,
				   [V_FAIL] = 2, [V_ERROR] = 3};

	return rank[a] >= rank[b] ? a : b;
}

unsigned obs_cycle_at(const struct run_obs *obs, uint64_t t_ms)
{
	for (size_t i = 0; i < obs->n_cycles; i++)
		if (t_ms < obs->cycles[i].t_end_ms)
			return obs->cycles[i].n;
	return obs->n_cycles ? obs->cycles[obs->n_cycles - 1].n : 1;
}

bool obs_wl_exited_by_itself(const struct run_obs *obs, int w)
{
	const struct obs_workload *wl;

	if (w < 0 || (size_t)w >= obs->sc->n_wl)
		return false;
	wl = &obs->wl[w];
	return wl->exited && !wl->signal && !wl->stopped && !wl->timed_out;
}
