/* The "faults" section: each fault's type found in its family's table
 * (daemon/fault/fault_family.h), its keys read into the type's struct, its
 * targets resolved, the family's checks, and the checks between faults
 * (only one defines the cycles; two of a family do not compete for one
 * target at once). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_family.h"
#include "sc_priv.h"
#include "scenario.h"

bool scenario_has_cyclic_fault(const struct scenario *sc)
{
	if (sc->has_schedule)	/* sc_schedule.c: its cycle_end entries */
		return scenario_sched_cyclic(sc);
	for (size_t i = 0; i < sc->n_faults; i++)
		if (sc->faults[i]->type->cyclic)
			return true;
	return false;
}

int scenario_ns_idx(const struct scenario *sc, const char *name)
{
	/* A name the parser rejected (missing, wrong type) is NULL here. */
	for (size_t i = 0; i < sc->n_ns; i++)
		if (sc->namespaces[i] && name && !strcmp(sc->namespaces[i], name))
			return (int)i;
	return -1;
}

int scenario_link_idx(const struct scenario *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_links; i++)
		if (sc->links[i].name && name && !strcmp(sc->links[i].name, name))
			return (int)i;
	return -1;
}

/* @f against the faults before it. */
static int check_between(struct sc_ctx *ctx, struct scenario *sc, struct sc_fault *f, size_t i)
{
	const struct fault_family *fam = f->type->family;
	int err = 0;

	for (size_t j = 0; j < i; j++) {
		const struct sc_fault *g = sc->faults[j];
		long long f0, f1, g0, g1;
		char why[160];

		if (!g || !g->type)
			continue;	/* its own error is reported */
		if (f->type->cyclic && g->type->cyclic) {
			sc_error(ctx, false, "a second cyclic fault (faults[%zu] is one): only "
				 "one fault may define the cycles", j);
			return -EINVAL;
		}
		if (g->type->family != fam || !fam->conflict || !fam->span)
			continue;
		fam->span(f, &f0, &f1);
		fam->span(g, &g0, &g1);
		if ((f1 < 0 || g0 < f1) && (g1 < 0 || f0 < g1) &&
		    fam->conflict(f, g, why, sizeof(why))) {
			sc_error(ctx, false, "conflicts with faults[%zu]%s", j, why);
			err = -EINVAL;
		}
	}
	return err;
}

/* Resolve what @f names, then its family's checks. */
static int check_fault(struct sc_ctx *ctx, struct scenario *sc, struct sc_fault *f, size_t i)
{
	struct fault_err e = {0};
	int err;

	f->link_idx = f->wl_idx = -1;
	if (f->link) {
		f->link_idx = scenario_link_idx(sc, f->link);
		if (f->link_idx < 0) {
			jpath_push_key(&ctx->path, "link");
			sc_error(ctx, false, "no link named '%s' in topology.links", f->link);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
	}
	if (f->workload) {
		f->wl_idx = scenario_workload_idx(sc, f->workload);
		if (f->wl_idx < 0) {
			jpath_push_key(&ctx->path, "workload");
			sc_error(ctx, false, "no workload named '%s'", f->workload);
			jpath_pop(&ctx->path);
			return -EINVAL;
		}
	}
	err = f->type->family->check ? f->type->family->check(sc, f, &e) : 0;
	if (err) {
		if (e.key)
			jpath_push_key(&ctx->path, e.key);
		sc_error(ctx, false, "%s", e.msg);
		if (e.key)
			jpath_pop(&ctx->path);
		return err;
	}
	return check_between(ctx, sc, f, i);
}

int sc_parse_faults(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of faults, got %s", sc_json_type_name(val));
		return -EINVAL;
	}
	sc->n_faults = json_array_size(val);
	sc->faults = sc_track(ctx, calloc(sc->n_faults + 1, sizeof(*sc->faults)));
	if (!sc->faults)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		json_t *type = json_is_object(item) ? json_object_get(item, "type") : NULL;
		const char *name = json_string_value(type);
		const struct fault_type *t = fault_type_lookup(name);
		struct sc_fault *f;
		int e = -EINVAL;

		jpath_push_idx(&ctx->path, i);
		if (!json_is_object(item)) {
			sc_error(ctx, false, "expected an object, got %s", sc_json_type_name(item));
		} else if (!type) {
			sc_error(ctx, false, "missing required key \"type\"");
		} else if (!name) {
			jpath_push_key(&ctx->path, "type");
			sc_error(ctx, false, "expected a string, got %s", sc_json_type_name(type));
			jpath_pop(&ctx->path);
		} else if (!t) {
			char known[512];

			fault_type_names(known, sizeof(known));
			jpath_push_key(&ctx->path, "type");
			sc_error(ctx, false, "unknown fault type '%s' (known: %s)", name, known);
			jpath_pop(&ctx->path);
		} else {
			f = sc_track(ctx, calloc(1, t->size));
			e = f ? 0 : -ENOMEM;
			if (f) {
				sc->faults[i] = f;
				f->type = t;
				e = sc_parse_object(ctx, item, t->keys, f);
			}
			if (!e)
				e = check_fault(ctx, sc, f, i);
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}
