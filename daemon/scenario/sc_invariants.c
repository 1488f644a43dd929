/* The "invariants" section: each name looked up in the invariant table,
 * its parameters parsed by its own keys, its probe checked against the
 * workloads; the defaults when a scenario names none. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

/* An invariant that reads a probe needs a workload that has it. */
static int check_probe(struct sc_ctx *ctx, struct scenario *sc, struct sc_invariant *inv)
{
	const char *probe = inv->def->probe_for ? inv->def->probe_for(inv->params) : NULL;
	int idx = inv->workload_idx;

	if (!probe)
		probe = inv->def->needs_probe;
	if (!probe)
		return 0;

	if (idx >= 0 && !scenario_wl_has_probe(&sc->wl[idx], probe)) {
		jpath_push_key(&ctx->path, "workload");
		sc_error(ctx, false, "%s needs \"%s\" in workloads[%d].probes", inv->name,
			 probe, idx);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	for (size_t w = 0; idx < 0 && w < sc->n_wl; w++)
		if (sc->wl[w].name && scenario_wl_has_probe(&sc->wl[w], probe))
			return 0;
	if (idx < 0) {
		jpath_push_key(&ctx->path, "name");
		sc_error(ctx, false, "%s needs a workload with \"%s\" in its probes",
			 inv->name, probe);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	return 0;
}

int sc_parse_invariants(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of invariants, got %s",
			 sc_json_type_name(val));
		return -EINVAL;
	}
	sc->n_inv = json_array_size(val);
	sc->inv = sc_track(ctx, calloc(sc->n_inv + 1, sizeof(*sc->inv)));
	if (!sc->inv)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_invariant *inv = &sc->inv[i];
		const struct inv_def *def;
		char known[256];
		json_t *jname;
		int e = 0;

		jpath_push_idx(&ctx->path, i);
		inv->workload_idx = -1;
		jname = json_is_object(item) ? json_object_get(item, "name") : NULL;
		if (!json_is_object(item)) {
			sc_error(ctx, false, "expected an object, got %s", sc_json_type_name(item));
			e = -EINVAL;
			goto next;
		}
		if (!jname) {
			sc_error(ctx, false, "missing required key \"name\"");
			e = -EINVAL;
			goto next;
		}
		jpath_push_key(&ctx->path, "name");
		def = json_is_string(jname) ? inv_lookup(json_string_value(jname)) : NULL;
		inv_names(known, sizeof(known), true);
		if (!json_is_string(jname)) {
			sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(jname));
			e = -EINVAL;
		} else if (!def) {
			sc_error(ctx, false, "unknown invariant '%s' (known: %s)",
				 json_string_value(jname), known);
			e = -EINVAL;
		} else if (!def->available) {
			sc_error(ctx, false, "invariant '%s' is not supported by this build yet "
				 "(supported: %s)", def->name, known);
			e = -EINVAL;
		}
		jpath_pop(&ctx->path);
		if (e)
			goto next;
		inv->def = def;
		inv->params = sc_track(ctx, calloc(1, def->params_size ? def->params_size : 1));
		if (!inv->params) {
			e = -ENOMEM;
			goto next;
		}
		e = sc_parse_object(ctx, item, def->keys, inv->params);
		if (e)
			goto next;
		inv->name = def->name;
		inv->workload = ((const struct inv_common *)inv->params)->workload;
		if (inv->workload) {
			inv->workload_idx = scenario_workload_idx(sc, inv->workload);
			if (inv->workload_idx < 0) {
				jpath_push_key(&ctx->path, "workload");
				sc_error(ctx, false, "no workload named '%s'", inv->workload);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
		}
		if (!e)
			e = check_probe(ctx, sc, inv);
next:
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

int sc_default_invariants(struct sc_ctx *ctx, struct scenario *sc)
{
	static const char *const names[] = {"no_crash", "exit_ok"};

	sc->inv = sc_track(ctx, calloc(ARRAY_SIZE(names), sizeof(*sc->inv)));
	if (!sc->inv)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct sc_invariant *inv = &sc->inv[i];
		json_t *obj = json_pack("{ss}", "name", names[i]);
		int err;

		inv->def = inv_lookup(names[i]);
		inv->name = inv->def->name;
		inv->workload_idx = -1;
		inv->params = sc_track(ctx, calloc(1, inv->def->params_size));
		if (!obj || !inv->params) {
			json_decref(obj);
			return -ENOMEM;
		}
		json_array_append_new(json_object_get(sc->root, "defaults"), obj);
		err = sc_parse_object(ctx, obj, inv->def->keys, inv->params);
		if (err)
			return err;
	}
	sc->n_inv = ARRAY_SIZE(names);
	return 0;
}
