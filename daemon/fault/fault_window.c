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

static int set_fault(const struct fault_window *w, const struct fault_window_ops *ops,
		     const struct sc_fault *f, bool on)
{
	int err = 0;

	/* A fault not applied (its mechanism is missing here) stays off: the
	 * timeline shows ENOTSUP for it. */
	if (caps_state(ops->cap) == CAPS_MISSING)
		return -ENOTSUP;
	for (int dir = FAULT_DIR_IN; dir <= FAULT_DIR_OUT && !err; dir++) {
		void *inst = w->slot[(size_t)f->link_idx * 2 + (size_t)dir];

		if (fault_window_covers(f, dir))
			err = inst ? ops->set(f, inst, on) : -ENODEV;
	}
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
	if (w)
		w->slot = calloc(env->sc->n_links * 2 + 1, sizeof(*w->slot));
	if (!w || !w->slot) {
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
			err = set_fault(w, ops, f, true);
	}
	return err;
}

int fault_window_fire(struct fault_env *env, const struct fault_family *fam,
		      const struct fault_window_ops *ops, const struct fault_action *a)
{
	struct fault_window *w = *fault_state(env, fam);

	return w ? set_fault(w, ops, env->sc->faults[a->fault], !fault_act_is_off(a)) : -ENODEV;
}

void fault_window_detach(struct fault_env *env, const struct fault_family *fam,
			 const struct fault_window_ops *ops)
{
	void **state = fault_state(env, fam);
	struct fault_window *w = *state;

	for (size_t i = 0; w && i < w->n; i++)
		ops->close(w->slot[i]);
	if (w)
		free(w->slot);
	free(w);
	*state = NULL;
}

void fault_window_span(const struct sc_fault *f, long long *from, long long *to)
{
	*from = f->at_ms;
	*to = f->for_ms ? f->at_ms + f->for_ms : -1;
}

bool fault_window_conflict(const struct sc_fault *f, const struct sc_fault *g, char *why,
			   size_t len)
{
	bool shared = f->link_idx == g->link_idx &&
		      (f->direction == SC_DIR_BOTH || g->direction == SC_DIR_BOTH ||
		       f->direction == g->direction);

	if (shared)
		snprintf(why, len, " on link '%s' (their windows overlap)", f->link);
	return shared;
}
