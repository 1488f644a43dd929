/* What the link-window families (packet, rate, delay) share: a fault on
 * one or both directions of a link, with one mechanism instance per link
 * and direction ("slot" link * 2 + direction, direction at the link's a
 * end: ingress arrives at a, egress leaves it), opened before the
 * workloads start and switched by the timeline. */
#ifndef FAULTD_FAULT_WINDOW_H
#define FAULTD_FAULT_WINDOW_H

#include <stdbool.h>

#include "fault_family.h"

#define FAULT_DIR_IN 0
#define FAULT_DIR_OUT 1

/* A family's instances, in its fault_state() slot. */
struct fault_window {
	void **slot;			/* [n_links * 2] */
	size_t n;
};

/* open: the mechanism for @f's link and direction @dir into *@inst; 0 or
 * -errno. set: it on with @f's parameters, or off. close: NULL is fine. */
struct fault_window_ops {
	enum caps_id cap;		/* the host feature it needs */
	int (*open)(struct fault_env *env, const struct sc_fault *f, int dir, void **inst);
	int (*set)(const struct sc_fault *f, void *inst, bool on);
	void (*close)(void *inst);
};

bool fault_window_covers(const struct sc_fault *f, int dir);
const char *fault_window_dir_name(int dir);	/* "ingress", "egress" */
/* The family's instance for @link and @dir, or NULL. */
void *fault_window_get(struct fault_env *env, const struct fault_family *fam, size_t link,
		       int dir);

/* The family ops a window family builds on: attach opens an instance for
 * each link and direction its faults cover (a host that lacks @ops->cap
 * lists the fault as not applied) and turns on the faults planned for time
 * 0; fire switches one; detach closes all. */
int fault_window_attach(struct fault_env *env, const struct fault_family *fam,
			const struct fault_window_ops *ops);
int fault_window_fire(struct fault_env *env, const struct fault_family *fam,
		      const struct fault_window_ops *ops, const struct fault_action *a);
void fault_window_detach(struct fault_env *env, const struct fault_family *fam,
			 const struct fault_window_ops *ops);

/* The scenario checks of a window: it holds [at, at + for), and two of one
 * family compete when they share a link and a direction. */
void fault_window_span(const struct sc_fault *f, long long *from, long long *to);
bool fault_window_conflict(const struct sc_fault *f, const struct sc_fault *g, char *why,
			   size_t len);

#endif
