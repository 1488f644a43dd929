/* The syscall family: a workload's calls fail with an errno. socket()
 * fails at run time through a cgroup/sock_create program on the workload's
 * cgroup (sysfault.c, with rates and windows); the other calls through a
 * seccomp filter fixed at exec (secfault.c), so for the whole run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_family.h"
#include "log.h"
#include "secfault.h"
#include "sysfault_user.h"
#include "util.h"

struct syscall_fault {
	struct sc_fault f;
	int syscall;			/* index into secfault_calls */
	const char *errno_name;		/* "ENFILE" */
	int err;			/* its value */
	double pct;			/* share of calls that fail */
};

#define SY(field) offsetof(struct syscall_fault, field)
static const struct sc_key syscall_keys[] = {
	FAULT_KEY_TYPE, FAULT_KEY_WL,
	{"syscall", SC_ENUM, 0, SY(syscall), .choices = secfault_calls, .def = "\"socket\"",
	 .doc = "the call that fails"},
	{"errno", SC_STR, 0, SY(errno_name), .def = "\"ENFILE\"", .doc = "how it fails"},
	{"pct", SC_NUM, 0, SY(pct), 0, 100, .def = "100", .doc = "share of calls that fail"},
	FAULT_KEYS_WINDOW,
	{NULL},
};

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{"ENFILE", ENFILE}, {"EMFILE", EMFILE}, {"ENOBUFS", ENOBUFS}, {"ENOMEM", ENOMEM},
	{"EACCES", EACCES}, {"EPERM", EPERM}, {"EAFNOSUPPORT", EAFNOSUPPORT},
	{"ECONNREFUSED", ECONNREFUSED}, {"ECONNRESET", ECONNRESET}, {"ETIMEDOUT", ETIMEDOUT},
	{"ENETUNREACH", ENETUNREACH}, {"EHOSTUNREACH", EHOSTUNREACH},
	{"EADDRINUSE", EADDRINUSE}, {"EAGAIN", EAGAIN}, {"EINTR", EINTR}, {"EIO", EIO},
	{"ENOSPC", ENOSPC},
};

enum { SYSERR_ON, SYSERR_OFF };
static const struct fault_act_def syscall_acts[] = {
	[SYSERR_ON] = {"syscall_error_on", false, FAULT_ON_WORKLOAD},
	[SYSERR_OFF] = {"syscall_error_off", true, FAULT_ON_WORKLOAD},
};

const struct fault_family fault_syscall;
static const struct fault_type syscall_types[] = {
	{"syscall_error", &fault_syscall, 0, syscall_keys, sizeof(struct syscall_fault), false},
	{NULL},
};

static int syscall_check(const struct scenario *sc, struct sc_fault *f, struct fault_err *e)
{
	struct syscall_fault *s = (struct syscall_fault *)f;
	size_t i;

	(void)sc;
	for (i = 0; i < ARRAY_SIZE(errnos) && strcmp(errnos[i].name, s->errno_name); i++)
		;
	if (i == ARRAY_SIZE(errnos)) {
		size_t off = (size_t)snprintf(e->msg, sizeof(e->msg), "'%s' is not one of ",
					      s->errno_name);

		for (size_t k = 0; k < ARRAY_SIZE(errnos) && off < sizeof(e->msg); k++)
			off += (size_t)snprintf(e->msg + off, sizeof(e->msg) - off, "%s%s",
						k ? ", " : "", errnos[k].name);
		e->key = "errno";
		return -EINVAL;
	}
	s->err = errnos[i].value;
	if (s->syscall != SECFAULT_SOCKET && (s->pct != 100 || f->at_ms || f->for_ms)) {
		e->key = "syscall";
		snprintf(e->msg, sizeof(e->msg), "'%s' fails through a seccomp filter fixed at "
			 "exec: it takes pct 100, at_ms 0 and for_ms 0 (only 'socket' has rates "
			 "and windows)", secfault_calls[s->syscall]);
		return -EINVAL;
	}
	return 0;
}

static void syscall_span(const struct sc_fault *f, long long *from, long long *to)
{
	*from = f->at_ms;
	*to = f->for_ms ? f->at_ms + f->for_ms : -1;
}

static bool syscall_conflict(const struct sc_fault *f, const struct sc_fault *g, char *why,
			     size_t len)
{
	const struct syscall_fault *a = (const void *)f, *b = (const void *)g;
	bool same = f->wl_idx == g->wl_idx && a->syscall == b->syscall;

	if (same)
		snprintf(why, len, ": both make %s() of '%s' fail at the same time",
			 secfault_calls[a->syscall], f->workload);
	return same;
}

static int syscall_plan(struct fault_plan *p, const struct sc_fault *f)
{
	return fault_plan_window(p, f, &fault_syscall, SYSERR_ON, f->wl_idx);
}

/* The sysfault of each workload with socket() errors, [n_wl]. */
static struct sysfault **sysfaults(struct fault_env *env, bool make)
{
	void **state = fault_state(env, &fault_syscall);

	if (!*state && make)
		*state = calloc(env->sc->n_wl + 1, sizeof(struct sysfault *));
	return *state;
}

static int syscall_set(struct fault_env *env, const struct syscall_fault *s, bool on)
{
	struct sysfault_conf c = {
		.ppm = on ? (__u32)(s->pct * (SYSFAULT_PPM / 100)) : 0,
		.err = s->err,
	};
	struct sysfault **sf = sysfaults(env, false);

	if (s->syscall != SECFAULT_SOCKET)
		return 0;	/* seccomp's, fixed since exec */
	if ((!sf || !sf[s->f.wl_idx]) && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING)
		return -ENOTSUP;	/* listed as not applied at start */
	return sf && sf[s->f.wl_idx] ? sysfault__set(sf[s->f.wl_idx], &c) : -ENODEV;
}

/* socket() errors: a program on the workload's cgroup, on from the first
 * instruction if planned for time 0. */
static int attach_socket(struct fault_env *env, size_t wl, const struct syscall_fault *s)
{
	struct sysfault **sf = sysfaults(env, true);
	char what[96];

	if (!sf)
		return -ENOMEM;
	if (sf[wl])
		return 0;	/* the scenario allows one socket() fault per window */
	sf[wl] = sysfault__attach(env->wl[wl].cgroup);
	if (!sf[wl] && caps_state(CAPS_SYSCALL_SOCKET) == CAPS_MISSING) {
		snprintf(what, sizeof(what), "syscall_error socket of %s", env->sc->wl[wl].name);
		env->not_applied(env->arg, what, CAPS_SYSCALL_SOCKET);
		return 0;
	}
	if (!sf[wl]) {
		int err = -errno;

		log_err("%s: run %s: workload '%s': cannot attach syscall errors: %s", __func__,
			env->run_id, env->sc->wl[wl].name, strerror(-err));
		return err;
	}
	return s->f.at_ms ? 0 : syscall_set(env, s, true);
}

static int syscall_workload(struct fault_env *env, size_t wl, struct sock_fprog *seccomp)
{
	struct secfault_rule rules[64];
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < env->sc->n_faults && !err; i++) {
		const struct syscall_fault *s = (const void *)env->sc->faults[i];

		if (!fault_is(&s->f, &fault_syscall) || s->f.wl_idx != (int)wl)
			continue;
		if (s->syscall == SECFAULT_SOCKET)
			err = attach_socket(env, wl, s);
		else if (n < ARRAY_SIZE(rules))	/* one fault per call and workload */
			rules[n++] = (struct secfault_rule){.call = s->syscall, .err = s->err};
	}
	return !err && n ? secfault_build(rules, n, seccomp) : err;
}

static int syscall_fire(struct fault_env *env, const struct fault_action *a, uint64_t now_ms)
{
	(void)now_ms;
	return syscall_set(env, (const void *)env->sc->faults[a->fault], !fault_act_is_off(a));
}

static void syscall_stats(struct fault_env *env, struct fault_stats *out)
{
	struct sysfault **sf = sysfaults(env, false);

	for (size_t i = 0; sf && i < env->sc->n_wl; i++) {
		struct sysfault_stats st;
		json_t *w;

		if (!sf[i])
			continue;
		sysfault__stats(sf[i], &st);
		w = fault_stats_workload(out, env->sc->wl[i].name);
		json_object_set_new(w, "socket_calls", json_integer((json_int_t)st.calls));
		json_object_set_new(w, "socket_failed", json_integer((json_int_t)st.failed));
	}
}

static void syscall_detach(struct fault_env *env)
{
	void **state = fault_state(env, &fault_syscall);
	struct sysfault **sf = *state;

	for (size_t i = 0; sf && i < env->sc->n_wl; i++)
		sysfault__destroy(sf[i]);
	free(sf);
	*state = NULL;
}

const struct fault_family fault_syscall = {
	.name = "syscall",
	.types = syscall_types,
	.acts = syscall_acts,
	.n_acts = 2,
	.check = syscall_check,
	.span = syscall_span,
	.conflict = syscall_conflict,
	.plan = syscall_plan,
	.workload = syscall_workload,
	.fire = syscall_fire,
	.stats = syscall_stats,
	.detach = syscall_detach,
};
