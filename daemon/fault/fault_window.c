/* The link-window families' shared lifecycle: one mechanism instance per
 * link and direction, opened before the workloads, switched by the
 * timeline, closed before the topology goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_window.h"
#include "log.h"

bool fault_window_covers(const struct sc_fault *f, int dir)
{
	return f->direction == SC_DIR_BOTH ||
	       (f->direction == SC_DIR_INGRESS) == (dir == FAULT_DIR_IN);
}

const char *fault_window_dir_name(int dir)
{
	return dir == FAULT_DIR_IN ? "ingress" : "egress";
}

void *fault_window_get(struct fault_env *env, const struct fault_family *fam, size_t link,
		       int dir)
{
	struct fault_window *w = *fault_state(env, fam);
	size_t i = link * 2 + (size_t)dir;

	return w && i < w->n ? w->slot[i] : NULL;
}

/* The host lacks the mechanism: the fault is listed as not applied and
 * the run goes on. Any other error fails the run. */
static int not_applied(struct fault_env *env, const struct fault_window_ops *ops,
		       const struct sc_fault *f, int dir, int err)
{
	char what[128];

	if (caps_state(ops->cap) != CAPS_MISSING)
		return err;
	snprintf(what, sizeof(what), "%s on %s %s", f->type->name, f->link,
		 fault_window_dir_name(dir));
	env->not_applied(env->arg, what, ops->cap);
	return 0;
}

static void count_now(const struct fault_window *w, const struct fault_window_ops *ops,
		      size_t slot, unsigned long long v[FC__MAX])
{
	memset(v, 0, FC__MAX * sizeof(*v));
	if (ops->count && w->slot[slot])
		ops->count(w->slot[slot], v);
}

/* Fault @i's window opens (its counters from now) or closes (what they
 * moved added to its sum). */
static void track(struct fault_window *w, const struct fault_window_ops *ops,
		  const struct sc_fault *f, size_t i, bool on)
{
	struct fault_window_track *t = w->track ? &w->track[i] : NULL;

	if (!t || t->open == on)
		return;
	for (int dir = FAULT_DIR_IN; dir <= FAULT_DIR_OUT; dir++) {
		unsigned long long now[FC__MAX];

		if (!fault_window_covers(f, dir))
			continue;
		count_now(w, ops, (size_t)f->link_idx * 2 + (size_t)dir, now);
		for (int c = 0; c < FC__MAX; c++)
			if (on)
				t->at_on[dir][c] = now[c];
			else
				t->sum[dir][c] += now[c] - t->at_on[dir][c];
	}
	t->open = on;
}

static int set_fault(struct fault_window *w, const struct fault_window_ops *ops,
		     const struct sc_fault *f, size_t i, bool on)
{
	int err = 0;

	/* A fault not applied (its mechanism is missing here) stays off: the
	 * timeline shows ENOTSUP for it. */
	if (caps_state(ops->cap) == CAPS_MISSING)
		return -ENOTSUP;
	/* Counted from before the change on, to after it off. */
	if (on)
		track(w, ops, f, i, true);
	for (int dir = FAULT_DIR_IN; dir <= FAULT_DIR_OUT && !err; dir++) {
		void *inst = w->slot[(size_t)f->link_idx * 2 + (size_t)dir];

		if (fault_window_covers(f, dir))
			err = inst ? ops->set(f, inst, on) : -ENODEV;
	}
	if (!on)
		track(w, ops, f, i, false);
	return err;
}

int fault_window_attach(struct fault_env *env, const struct fault_family *fam,
			const struct fault_window_ops *ops)
{
	void **state = fault_state(env, fam);
	struct fault_window *w;
	int err = 0;

	if (*state || !env->topo)
		return 0;
	w = calloc(1, sizeof(*w));
	if (w) {
		w->slot = calloc(env->sc->n_links * 2 + 1, sizeof(*w->slot));
		w->track = calloc(env->sc->n_faults + 1, sizeof(*w->track));
	}
	if (!w || !w->slot || !w->track) {
		if (w) {
			free(w->slot);
			free(w->track);
		}
		free(w);
		return -ENOMEM;
	}
	w->n = env->sc->n_links * 2;
	*state = w;
	for (size_t i = 0; i < env->sc->n_faults && !err; i++) {
		const struct sc_fault *f = env->sc->faults[i];

		for (int dir = FAULT_DIR_IN; fault_is(f, fam) && dir <= FAULT_DIR_OUT && !err;
		     dir++) {
			void **inst = &w->slot[(size_t)f->link_idx * 2 + (size_t)dir];

			if (!fault_window_covers(f, dir) || *inst)
				continue;
			err = ops->open(env, f, dir, inst);
			if (!err)
				continue;
			log_warn("%s: run %s: %s on %s %s: %s", __func__, env->run_id,
				 f->type->name, f->link, fault_window_dir_name(dir),
				 strerror(-err));
			err = not_applied(env, ops, f, dir, err);
		}
	}
	/* A fault planned for time 0 holds from the moment the link exists,
	 * not from when its timer first fires. */
	for (size_t i = 0; i < env->sc->n_faults && !err; i++) {
		const struct sc_fault *f = env->sc->faults[i];

		if (fault_is(f, fam) && !f->at_ms && caps_state(ops->cap) != CAPS_MISSING)
			err = set_fault(w, ops, f, i, true);
	}
	return err;
}

int fault_window_fire(struct fault_env *env, const struct fault_family *fam,
		      const struct fault_window_ops *ops, const struct fault_action *a)
{
	struct fault_window *w = *fault_state(env, fam);

	return w ? set_fault(w, ops, env->sc->faults[a->fault], (size_t)a->fault,
			     !fault_act_is_off(a)) : -ENODEV;
}

void fault_window_detach(struct fault_env *env, const struct fault_family *fam,
			 const struct fault_window_ops *ops)
{
	void **state = fault_state(env, fam);
	struct fault_window *w = *state;

	for (size_t i = 0; w && i < w->n; i++)
		ops->close(w->slot[i]);
	if (w) {
		free(w->slot);
		free(w->track);
	}
	free(w);
	*state = NULL;
}

static const char *const count_names[FC__MAX] = {
	[FC_SEEN] = "seen", [FC_DROPPED] = "dropped", [FC_CORRUPTED] = "corrupted",
	[FC_DUPLICATED] = "duplicated", [FC_BURST_DROPPED] = "burst_dropped",
	[FC_BURSTS] = "bursts", [FC_RESET] = "reset", [FC_DELAYED] = "delayed",
	[FC_REORDERED] = "reordered",
};

static json_t *window_json(const struct fault_window *w, const struct fault_window_ops *ops,
			   const struct sc_fault *f, size_t i, int dir)
{
	const struct fault_window_track *t = &w->track[i];
	unsigned long long sum[FC__MAX], now[FC__MAX];
	json_t *o = json_pack("{sisssIsI}", "fault", (int)i, "type", f->type->name,
			      "at_ms", (json_int_t)f->at_ms, "for_ms", (json_int_t)f->for_ms);

	memcpy(sum, t->sum[dir], sizeof(sum));
	if (t->open) {
		count_now(w, ops, (size_t)f->link_idx * 2 + (size_t)dir, now);
		for (int c = 0; c < FC__MAX; c++)
			sum[c] += now[c] - t->at_on[dir][c];
	}
	for (int c = 0; o && c < FC__MAX; c++)
		if (ops->counts & (1u << c))
			json_object_set_new(o, count_names[c], json_integer((json_int_t)sum[c]));
	return o;
}

void fault_window_stats(struct fault_env *env, const struct fault_family *fam,
			const struct fault_window_ops *ops, struct fault_stats *out)
{
	struct fault_window *w = *fault_state(env, fam);

	for (size_t i = 0; w && ops->counts && i < env->sc->n_faults; i++) {
		const struct sc_fault *f = env->sc->faults[i];

		for (int dir = FAULT_DIR_IN; fault_is(f, fam) && dir <= FAULT_DIR_OUT; dir++) {
			json_t *d, *arr;

			if (!fault_window_covers(f, dir) ||
			    !w->slot[(size_t)f->link_idx * 2 + (size_t)dir])
				continue;
			d = fault_stats_link(out, f->link, fault_window_dir_name(dir));
			arr = d ? json_object_get(d, "windows") : NULL;
			if (d && !arr) {
				arr = json_array();
				if (json_object_set_new(d, "windows", arr))
					arr = NULL;
			}
			json_array_append_new(arr, window_json(w, ops, f, i, dir));
		}
	}
}

void fault_window_span(const struct sc_fault *f, long long *from, long long *to)
{
	*from = f->at_ms;
	*to = f->for_ms ? f->at_ms + f->for_ms : -1;
}

bool fault_window_conflict(const struct sc_fault *f, const struct sc_fault *g, char *why,
			   size_t len)
{
	bool shared = f->type == g->type && f->link_idx == g->link_idx &&
		      (f->direction == SC_DIR_BOTH || g->direction == SC_DIR_BOTH ||
		       f->direction == g->direction);

	if (shared)
		snprintf(why, len, " on link '%s' (their windows overlap)", f->link);
	return shared;
}
