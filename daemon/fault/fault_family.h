/* A fault family: the fault types it owns (their keys), the checks between
 * them, how it plans its actions, and how it plays them in a run. Every
 * family is one file (fault_<family>.c) behind one ops table, and one row
 * of fault_families[] (fault_families.c). A new fault type of an existing
 * family is one row of that family's types[]; a new family is one file and
 * one row.
 *
 * The scenario stage reads the types (keys, check, span, conflict), the
 * planner reads plan, and run/ calls the rest through struct fault_env:
 * what a run lends its faults, so no family sees the run's insides. */
#ifndef FAULTD_FAULT_FAMILY_H
#define FAULTD_FAULT_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "caps.h"
#include "fault.h"
#include "scenario.h"

struct event_base;
struct sock_fprog;
struct sup_child;
struct topo;

#define FAULT_MS_MAX 604800000.0	/* a week: the longest time a key takes */

/* The keys most types share; every type's struct begins with struct
 * sc_fault, so these offsets hold in each of them. */
#define FAULT_OFF(field) offsetof(struct sc_fault, field)
#define FAULT_KEY_TYPE {"type", SC_STR, SC_REQ, FAULT_OFF(type_name), .doc = "the fault"}
#define FAULT_KEY_LINK {"link", SC_STR, SC_REQ, FAULT_OFF(link), .doc = "a link of topology.links"}
#define FAULT_KEY_WL {"workload", SC_STR, SC_REQ, FAULT_OFF(workload), .doc = "a workload"}
#define FAULT_KEY_AT {"at_ms", SC_INT, SC_REQ, FAULT_OFF(at_ms), 0, FAULT_MS_MAX, \
		      .doc = "when, from the run's start"}
#define FAULT_KEY_START {"start_ms", SC_INT, 0, FAULT_OFF(start_ms), 0, FAULT_MS_MAX, \
			 .def = "0", .doc = "the first one"}
#define FAULT_KEYS_WINDOW \
	{"at_ms", SC_INT, 0, FAULT_OFF(at_ms), 0, FAULT_MS_MAX, .def = "0", .doc = "window start"}, \
	{"for_ms", SC_INT, 0, FAULT_OFF(for_ms), 0, FAULT_MS_MAX, .def = "0", \
	 .doc = "window length; 0: to the end"}
extern const char *const fault_directions[];	/* enum sc_direction */
#define FAULT_KEY_DIR \
	{"direction", SC_ENUM, 0, FAULT_OFF(direction), .choices = fault_directions, \
	 .def = "\"both\"", .doc = "at the link's a end: egress leaves a, ingress arrives at a"}

struct fault_type {
	const char *name;		/* as the scenario writes it: "link_flap" */
	const struct fault_family *family;
	int code;			/* the family's own */
	const struct sc_key *keys;	/* all of them, "type" included */
	size_t size;			/* its struct, which begins with struct sc_fault */
	bool cyclic;			/* it defines the run's cycles */
};

/* What a family's action acts on: the report names it by this. */
enum fault_target { FAULT_ON_LINK, FAULT_ON_WORKLOAD, FAULT_ON_CPUS };

struct fault_act_def {
	const char *name;		/* in the report's timeline: "packet_on" */
	bool off;			/* the end of a window */
	enum fault_target target;
};

/* A check's complaint: the key it is about (NULL: the fault) and why. */
struct fault_err {
	const char *key;
	char msg[256];
};

/* What a run lends its workload's faults. */
struct fault_wl {
	const char *cgroup;		/* "" before it is made */
	struct sup_child *child;	/* NULL before it starts */
	bool started;
	uint64_t kill_sent_ms;		/* UINT64_MAX: faultd sent nothing */
};

#define FAULT_MAX_FAMILIES 16

/* What a run lends its faults. The run fills it; each family keeps its
 * own state in state[], by its row in fault_families[]. */
struct fault_env {
	const char *run_id;
	const struct scenario *sc;
	struct event_base *base;
	struct topo *topo;		/* NULL: the scenario has no topology */
	unsigned long long seed;
	const char *cgroup;		/* the run's */
	struct fault_wl *wl;		/* [sc->n_wl] */
	void *state[FAULT_MAX_FAMILIES];
	/* A fault (@what: "delay on l0 egress") whose mechanism @cap this
	 * host lacks: listed as not applied, not a failed run. */
	void (*not_applied)(void *arg, const char *what, enum caps_id cap);
	void *arg;
};

/* What the mechanisms did, for the report: links[link][direction] and
 * workloads[name], each an object a family adds its fields to. */
struct fault_stats {
	json_t *links;
	json_t *workloads;
};

struct fault_family {
	const char *name;
	const struct fault_type *types;		/* {NULL}-terminated */
	const struct fault_act_def *acts;	/* by the family's action codes */
	int n_acts;

	/* scenario/: after the keys are read, targets resolved. 0, or
	 * -EINVAL with @e filled. */
	int (*check)(const struct scenario *sc, struct sc_fault *f, struct fault_err *e);
	/* [from, to) the fault holds its target; to < 0: to the end. */
	void (*span)(const struct sc_fault *f, long long *from, long long *to);
	/* Faults @f and @g of this family with overlapping spans: do they
	 * compete for one target? If so, @why says for what. */
	bool (*conflict)(const struct sc_fault *f, const struct sc_fault *g, char *why,
			 size_t len);

	/* fault.c: add the fault's actions before p->horizon_ms. 0 or -errno. */
	int (*plan)(struct fault_plan *p, const struct sc_fault *f);

	/* run/, every one optional. attach: the topology is up, no workload
	 * has started; set up what the faults need and turn on those planned
	 * for time 0. workload: workload @wl's cgroup exists, it is about to
	 * exec; @seccomp may get a filter. fire: one action of the timeline.
	 * end: the run is stopping, its faults end with it. stats: into @out.
	 * detach: free everything, safe to call twice. */
	int (*attach)(struct fault_env *env);
	int (*workload)(struct fault_env *env, size_t wl, struct sock_fprog *seccomp);
	int (*fire)(struct fault_env *env, const struct fault_action *a, uint64_t now_ms);
	void (*end)(struct fault_env *env);
	void (*stats)(struct fault_env *env, struct fault_stats *out);
	void (*detach)(struct fault_env *env);
};

/* fault_families.c: the table, and the run's calls over all of it. */
extern const struct fault_family *const fault_families[];
const struct fault_type *fault_type_lookup(const char *name);
void fault_type_names(char *buf, size_t len);	/* "link_flap, link_down, ..." */
void **fault_state(struct fault_env *env, const struct fault_family *fam);
int fault_families_attach(struct fault_env *env);
int fault_families_workload(struct fault_env *env, size_t wl, struct sock_fprog *seccomp);
int fault_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms);
void fault_families_end(struct fault_env *env);
void fault_families_stats(struct fault_env *env, struct fault_stats *out);
void fault_families_detach(struct fault_env *env);

static inline bool fault_is(const struct sc_fault *f, const struct fault_family *fam)
{
	return f->type->family == fam;
}

/* fault_families.c: the object a family adds its stats to; NULL on ENOMEM. */
json_t *fault_stats_link(struct fault_stats *out, const char *link, const char *dir);
json_t *fault_stats_workload(struct fault_stats *out, const char *wl);

#endif
