/* The cpu family: busy processes on chosen CPUs for a window (cpu_hog),
 * in a cgroup of the run so they go with it whatever happens (cpuhog.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpuhog.h"
#include "fault_family.h"

struct cpu_fault {
	struct sc_fault f;
	struct sc_cpus cpus;		/* the CPUs it keeps busy */
	long long threads;		/* busy processes per CPU */
};

#define CP(field) offsetof(struct cpu_fault, field)
static const struct sc_key cpu_hog_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEYS_WINDOW,
	{"cpus", SC_CPUS, 0, CP(cpus), .def = "[0]", .doc = "the CPUs kept busy"},
	{"threads", SC_INT, 0, CP(threads), 1, 64, .def = "1", .doc = "busy processes per CPU"},
	{NULL},
};

enum { HOG_ON, HOG_OFF };
static const struct fault_act_def cpu_acts[] = {
	[HOG_ON] = {"cpu_hog_on", false, FAULT_ON_CPUS},
	[HOG_OFF] = {"cpu_hog_off", true, FAULT_ON_CPUS},
};

const struct fault_family fault_cpu;
static const struct fault_type cpu_types[] = {
	{"cpu_hog", &fault_cpu, 0, cpu_hog_keys, sizeof(struct cpu_fault), false},
	{NULL},
};

static void cpu_span(const struct sc_fault *f, long long *from, long long *to)
{
	*from = f->at_ms;
	*to = f->at_ms + 1;
}

static int cpu_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_cpu, HOG_ON, p->fault);
}

/* The hogs, one slot per fault of the scenario. */
static int cpu_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	const struct cpu_fault *c = (const void *)env->sc->faults[a->fault];
	struct cpuhog ***state = (struct cpuhog ***)fault_state(env, &fault_cpu);
	char cg[PATH_MAX];

	(void)now_ms;
	if (!*state) {
		*state = calloc(env->sc->n_faults, sizeof(**state));
		if (!*state)
			return -ENOMEM;
	}
	cpuhog__stop((*state)[a->fault]);
	(*state)[a->fault] = NULL;
	if (fault_act_is_off(a))
		return 0;
	snprintf(cg, sizeof(cg), "%s/hog%d", env->cgroup, a->fault);
	(*state)[a->fault] = cpuhog__start(cg, c->cpus.cpu, c->cpus.n, (unsigned)c->threads);
	return (*state)[a->fault] ? 0 : -errno;
}

static void cpu_end(struct fault_env *env)
{
	struct cpuhog ***state = (struct cpuhog ***)fault_state(env, &fault_cpu);

	for (size_t i = 0; *state && i < env->sc->n_faults; i++)
		cpuhog__stop((*state)[i]);
	free(*state);
	*state = NULL;
}

const struct fault_family fault_cpu = {
	.name = "cpu",
	.types = cpu_types,
	.acts = cpu_acts,
	.n_acts = 2,
	.span = cpu_span,
	.plan = cpu_plan,
	.fire = cpu_fire,
	.end = cpu_end,
	.detach = cpu_end,
};
