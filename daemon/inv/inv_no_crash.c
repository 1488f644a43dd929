/* no_crash: FAIL when a workload process, or any process it started, dies
 * by a signal whose default action dumps core (SEGV, ABRT, BUS, FPE, ILL,
 * TRAP, SYS) or is killed by the kernel's OOM killer, or when a sanitizer
 * build of a workload reported an error (ASan exits rather than dies: its
 * report is the crash). A death by SIGTERM, SIGINT, SIGHUP or SIGKILL sent
 * by another process (timeout(1) ending its child) is a termination: listed
 * in the evidence, counted only when the scenario names the signal in
 * "signals". Deaths by signals faultd sent are neither. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "inv.h"
#include "inv_params.h"
#include "util.h"

/* A list of signal names into @mask. */
static int parse_signal_list(struct sc_ctx *ctx, json_t *val, int *mask, size_t n_mask)
{
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of signal names");
		return -EINVAL;
	}
	json_array_foreach(val, i, item) {
		int sig = json_is_string(item) ? util_parse_signame(json_string_value(item))
					       : -EINVAL;
		if (sig <= 0 || sig >= (int)n_mask) {
			jpath_push_idx(sc_path(ctx), i);
			sc_error(ctx, false, "not a signal name (e.g. \"SIGPIPE\")");
			jpath_pop(sc_path(ctx));
			err = -EINVAL;
			continue;
		}
		mask[sig] = 1;
	}
	return err;
}

int inv_parse_signals(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct inv_no_crash_params *p = target;

	return parse_signal_list(ctx, val, p->ignore_mask, ARRAY_SIZE(p->ignore_mask));
}

int inv_parse_counted_signals(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct inv_no_crash_params *p = target;

	return parse_signal_list(ctx, val, p->count_mask, ARRAY_SIZE(p->count_mask));
}

/* The signals whose default action dumps core: a program's own fault. */
static bool core_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS || sig == SIGFPE ||
	       sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

/* "sh[812] <- segv_parent[811] <- ..." from the crashed process up to the
 * workload's root, as far as the observations reach. */
static json_t *ancestry(const struct run_obs *obs, const struct obs_proc *pr)
{
	json_t *chain = json_array();
	pid_t want = pr->ppid;

	for (int depth = 0; chain && depth < 16; depth++) {
		const struct obs_proc *parent = NULL;

		for (size_t i = 0; i < obs->n_procs && !parent; i++)
			if (obs->procs[i].pid == want && obs->procs[i].workload == pr->workload)
				parent = &obs->procs[i];
		if (!parent)
			break;
		json_array_append_new(chain, json_pack("{siss}", "pid", (int)parent->pid,
						       "comm", parent->comm));
		if (parent->pid == obs->wl[pr->workload].pid)
			break;
		want = parent->ppid;
	}
	return chain;
}

/* The stack the crashing thread had when the signal came (proc probe). */
static void attach_backtrace(const struct run_obs *obs, const struct obs_proc *pr, json_t *ev)
{
	const json_t *c;
	size_t i;

	json_array_foreach(obs->crashes, i, c) {
		if (json_integer_value(json_object_get(c, "pid")) != pr->pid ||
		    strcmp(json_string_value(json_object_get(c, "signal")) ?: "",
			   util_signame(pr->signal)))
			continue;
		json_object_set(ev, "tid", json_object_get(c, "tid"));
		json_object_set(ev, "backtrace", json_object_get(c, "backtrace"));
		if (json_object_get(c, "fault_address"))
			json_object_set(ev, "fault_address", json_object_get(c, "fault_address"));
		return;
	}
}

int inv_no_crash(const struct run_obs *obs, const struct sc_invariant *inv,
		 struct inv_result *res)
{
	const struct inv_no_crash_params *p = inv->params;
	const struct obs_proc *first = NULL;
	const json_t *san_first = NULL;
	size_t crashes = 0, san_wl = 0, terminations = 0;

	for (size_t i = 0; i < obs->n_procs; i++) {
		const struct obs_proc *pr = &obs->procs[i];
		const char *wname;
		bool counted;
		json_t *ev;

		if (!pr->exited || !pr->signal || pr->by_faultd)
			continue;
		if (inv->workload_idx >= 0 && pr->workload != inv->workload_idx)
			continue;
		if (pr->signal < (int)ARRAY_SIZE(p->ignore_mask) && p->ignore_mask[pr->signal])
			continue;
		counted = pr->oom_killed || core_signal(pr->signal) ||
			  (pr->signal < (int)ARRAY_SIZE(p->count_mask) && p->count_mask[pr->signal]);
		wname = obs->sc->wl[pr->workload].name;
		ev = json_pack("{sssisisssssssbsIsIsbsb}",
			       "kind", pr->oom_killed ? "oom_kill" : counted ? "crash" : "termination",
			       "pid", (int)pr->pid, "ppid", (int)pr->ppid,
			       "comm", pr->comm, "workload", wname,
			       "signal", util_signame(pr->signal), "core_dumped", pr->core,
			       "at_ms", (json_int_t)pr->t_exit_ms,
			       "cycle", (json_int_t)obs_cycle_at(obs, pr->t_exit_ms),
			       "workload_root", pr->pid == obs->wl[pr->workload].pid,
			       "counted", counted);
		if (!ev)
			return -ENOMEM;
		json_object_set_new(ev, "ancestry", ancestry(obs, pr));
		attach_backtrace(obs, pr, ev);
		/* Crashes first: evidence[0] is what the summary names. */
		if (counted)
			json_array_insert_new(res->evidence, crashes, ev);
		else
			json_array_append_new(res->evidence, ev);
		if (!counted) {
			terminations++;
			continue;
		}
		crashes++;
		if (!first || pr->t_exit_ms < first->t_exit_ms)
			first = pr;
	}
	for (size_t w = 0; w < obs->sc->n_wl; w++) {
		const json_t *reps = obs->wl[w].sanitizer, *rep;
		size_t k;

		if (!reps || (inv->workload_idx >= 0 && (size_t)inv->workload_idx != w))
			continue;
		json_array_foreach(reps, k, rep) {
			const char *kind = json_string_value(json_object_get(rep, "kind"));
			const char *tool = json_string_value(json_object_get(rep, "tool"));
			json_t *ev;

			/* Leaks at exit are heap_stable's business, not a crash. */
			if (!kind || !tool || !strcmp(tool, "LeakSanitizer") ||
			    !strcmp(kind, "detected"))
				continue;
			ev = json_pack("{sssssssO}", "kind", "sanitizer", "workload",
				       obs->sc->wl[w].name, "sanitizer", tool, "report", rep);
			if (!ev)
				return -ENOMEM;
			json_array_insert_new(res->evidence, crashes, ev);
			if (!san_first)
				san_first = rep, san_wl = w;
			crashes++;
		}
	}
	if (san_first && !first) {
		const json_t *st = json_object_get(san_first, "stack");
		const char *top = json_string_value(json_array_get(st, 0));
		const char *addr = json_string_value(json_object_get(san_first, "address"));
		const char *access = json_string_value(json_object_get(san_first, "access"));
		const char *thread = json_string_value(json_object_get(san_first, "thread"));

		res->verdict = V_FAIL;
		res->first_at_ms = obs->wl[san_wl].exited ? obs->wl[san_wl].t_exit_ms : obs->t_end_ms;
		res->first_cycle = obs_cycle_at(obs, res->first_at_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "workload '%s': %s %s%s%s%s%s%s%s%s", obs->sc->wl[san_wl].name,
			 json_string_value(json_object_get(san_first, "tool")),
			 json_string_value(json_object_get(san_first, "kind")),
			 addr ? " on " : "", addr ? addr : "", access ? " (" : "",
			 access ? access : "", thread ? " by thread " : "", thread ? thread : "",
			 access ? ")" : "");
		if (top) {
			size_t len = strlen(res->summary);

			snprintf(res->summary + len, sizeof(res->summary) - len, " in %s", top);
		}
	} else if (first) {
		res->verdict = V_FAIL;
		res->first_at_ms = first->t_exit_ms;
		res->first_cycle = obs_cycle_at(obs, first->t_exit_ms);
		snprintf(res->summary, sizeof(res->summary),
			 "pid %d (%s) of workload '%s' %s %s%s%s",
			 (int)first->pid, first->comm, obs->sc->wl[first->workload].name,
			 first->oom_killed ? "killed by the OOM killer:" : "killed by",
			 util_signame(first->signal), first->core ? " (core dumped)" : "",
			 crashes > 1 ? "; more in evidence" : "");
	} else if (!obs->proc_probe || obs->proc_lost) {
		/* Without every exit seen, "no crash" cannot be claimed. */
		res->verdict = V_INCONCLUSIVE;
		snprintf(res->summary, sizeof(res->summary),
			 "process probe %s; exits of child processes may be missing",
			 obs->proc_probe ? "lost events" : "not attached");
	} else {
		res->verdict = V_PASS;
		snprintf(res->summary, sizeof(res->summary),
			 "%zu processes watched, none crashed%s", obs->n_procs,
			 terminations ? "; terminations by other processes' signals in evidence"
				      : "");
	}
	return 0;
}
