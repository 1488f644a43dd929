/* The process family: pause and resume a workload (its cgroup frozen and
 * thawed), pause it over and over (pause_flap), send it a signal (kill).
 * A pause ends with the run, so a frozen workload hears its SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "fault_family.h"
#include "sup.h"
#include "util.h"

struct process_fault {
	struct sc_fault f;
	const char *signal;		/* kill */
	int signo;
	long long every_ms;		/* kill: again this often; 0: once */
	long long count;		/* kill with every_ms, pause_flap: 0 to the end */
	long long pause_ms, run_ms;	/* pause_flap */
};

#define PR(field) offsetof(struct process_fault, field)
static const struct sc_key at_keys[] = {FAULT_KEY_TYPE, FAULT_KEY_WL, FAULT_KEY_AT, {NULL}};
static const struct sc_key kill_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_WL, FAULT_KEY_AT,
	{"signal", SC_STR, 0, PR(signal), .def = "\"SIGKILL\"", .doc = "the signal"},
	{"every_ms", SC_INT, 0, PR(every_ms), 0, FAULT_MS_MAX, .def = "0",
	 .doc = "send it again this often; 0: once"},
	{"count", SC_INT, 0, PR(count), 0, 1e6, .def = "0",
	 .doc = "with every_ms: how many in all; 0: until the run ends"},
	{NULL},
};
static const struct sc_key pause_flap_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_WL, FAULT_KEY_START,
	{"pause_ms", SC_INT, SC_REQ, PR(pause_ms), 1, FAULT_MS_MAX, .doc = "frozen this long"},
	{"run_ms", SC_INT, SC_REQ, PR(run_ms), 1, FAULT_MS_MAX, .doc = "then running this long"},
	{"count", SC_INT, 0, PR(count), 0, 1e6, .def = "0", .doc = "pauses; 0: until the run ends"},
	{NULL},
};

enum { T_PAUSE, T_RESUME, T_KILL, T_PAUSE_FLAP };
enum { ACT_PAUSE, ACT_RESUME, ACT_KILL };
static const struct fault_act_def process_acts[] = {
	[ACT_PAUSE] = {"pause", false, FAULT_ON_WORKLOAD},
	[ACT_RESUME] = {"resume", false, FAULT_ON_WORKLOAD},
	[ACT_KILL] = {"kill", false, FAULT_ON_WORKLOAD},
};

const struct fault_family fault_process;
#define PROCESS_TYPE(name, code, keys) \
	{name, &fault_process, code, keys, sizeof(struct process_fault), false}
static const struct fault_type process_types[] = {
	PROCESS_TYPE("pause", T_PAUSE, at_keys),
	PROCESS_TYPE("resume", T_RESUME, at_keys),
	PROCESS_TYPE("kill", T_KILL, kill_keys),
	PROCESS_TYPE("pause_flap", T_PAUSE_FLAP, pause_flap_keys),
	{NULL},
};

static int process_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	struct process_fault *p = (struct process_fault *)f;

	(void)sc;
	if (!p->signal)
		return 0;
	p->signo = util_parse_signame(p->signal);
	if (p->signo > 0)
		return 0;
	e->key = "signal";
	snprintf(e->msg, sizeof(e->msg), "'%s' is not a signal name", p->signal);
	return -EINVAL;
}

static void process_span(const struct sc_fault *f, long long *from, long long *to)
{
	*from = f->at_ms;
	*to = f->at_ms + 1;
}

static int process_plan(struct fault_plan *p, const struct sc_fault *f)
{
	const struct process_fault *pf = (const struct process_fault *)f;
	int err = 0, wl = f->wl_idx;

	switch (f->type->code) {
	case T_PAUSE:
	case T_RESUME:
		err = fault_plan_add(p, (uint64_t)f->at_ms, &fault_process,
				     f->type->code == T_PAUSE ? ACT_PAUSE : ACT_RESUME, wl, 0, 0);
		break;
	case T_KILL:
		for (long long k = 0, at = f->at_ms; !err && (uint64_t)at < p->horizon_ms &&
		     (!pf->count || k < pf->count); k++, at += pf->every_ms) {
			err = fault_plan_add(p, (uint64_t)at, &fault_process, ACT_KILL, wl, 0,
					     pf->signo);
			if (!pf->every_ms)
				break;
		}
		break;
	case T_PAUSE_FLAP:
		for (long long k = 0, at = f->start_ms; !err && (uint64_t)at < p->horizon_ms &&
		     (!pf->count || k < pf->count); k++, at += pf->pause_ms + pf->run_ms) {
			err = fault_plan_add(p, (uint64_t)at, &fault_process, ACT_PAUSE, wl, 0, 0);
			if (!err)
				err = fault_plan_add(p, (uint64_t)(at + pf->pause_ms), &fault_process,
						     ACT_RESUME, wl, 0, 0);
		}
		break;
	}
	return err;
}

/* Freeze or thaw workload @wl's cgroup. 0 or -errno. */
static int freeze(struct fault_env *env, int wl, bool on)
{
	char path[PATH_MAX + 16];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/cgroup.freeze", env->wl[wl].cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

static int process_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	struct fault_wl *w = &env->wl[a->target];

	if (a->act != ACT_KILL)
		return freeze(env, a->target, a->act == ACT_PAUSE);
	if (a->signo == SIGKILL || a->signo == SIGTERM)
		w->kill_sent_ms = now_ms;	/* faultd's doing */
	return w->child ? sup__kill(w->child, a->signo) : -ESRCH;
}

static void process_end(struct fault_env *env)
{
	for (size_t i = 0; env->wl && i < env->sc->n_wl; i++)
		if (env->wl[i].started && env->wl[i].cgroup && env->wl[i].cgroup[0])
			freeze(env, (int)i, false);
}

const struct fault_family fault_process = {
	.name = "process",
	.types = process_types,
	.acts = process_acts,
	.n_acts = 3,
	.check = process_check,
	.span = process_span,
	.plan = process_plan,
	.fire = process_fire,
	.end = process_end,
};
