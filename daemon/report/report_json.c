/* The JSON report, schema docs/report.schema.json. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"
#include "probe_fds.h"
#include "report.h"
#include "util.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *iso(uint64_t ms)
{
	char buf[32];

	util_iso8601(ms, buf);
	return json_string(buf);
}

static json_t *build_workloads(const struct report_in *in)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < in->sc->n_wl; i++) {
		const struct obs_workload *w = &in->obs->wl[i];
		const struct report_wl_out *o = &in->wl_out[i];
		json_t *cmd = json_array(), *j;

		for (size_t k = 0; cmd && o->argv && o->argv[k]; k++)
			json_array_append_new(cmd, json_string(o->argv[k]));
		j = json_pack("{sssssosbsisbsIso}",
			      "name", w->sc->name, "kind", scenario_kind_name(w->sc->kind),
			      "cmd", cmd ? cmd : json_array(), "service", w->sc->service,
			      "pid", (int)w->pid, "started", w->started,
			      "started_at_ms", (json_int_t)w->t_start_ms,
			      "ended_at_ms", w->exited ? json_integer((json_int_t)w->t_exit_ms)
						       : json_null());
		if (!j) {
			log_err("%s: cannot encode workload %s", __func__, w->sc->name);
			continue;
		}
		json_object_set_new(j, "exit_code", w->exited && !w->signal
				    ? json_integer(w->exit_status) : json_null());
		json_object_set_new(j, "signal", w->signal
				    ? json_string(util_signame(w->signal)) : json_null());
		json_object_set_new(j, "core_dumped", json_boolean(w->core));
		json_object_set_new(j, "timed_out", json_boolean(w->timed_out));
		json_object_set_new(j, "stopped_by_faultd", json_boolean(w->stopped));
		json_object_set_new(j, "stdout", str_or_null(o->stdout_path));
		json_object_set_new(j, "stderr", str_or_null(o->stderr_path));
		json_object_set_new(j, "output_bytes", json_integer((json_int_t)o->seen));
		json_object_set_new(j, "output_dropped_bytes",
				    json_integer((json_int_t)o->dropped));
		json_array_append_new(arr, j);
	}
	return arr;
}

static json_t *build_processes(const struct report_in *in)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < in->obs->n_procs; i++) {
		const struct obs_proc *p = &in->obs->procs[i];
		json_t *j = json_pack("{sisisssssIsb}", "pid", (int)p->pid,
				      "ppid", (int)p->ppid, "workload",
				      in->sc->wl[p->workload].name, "comm", p->comm,
				      "started_at_ms", (json_int_t)p->t_start_ms,
				      "exited", p->exited);
		if (!j)
			continue;
		if (p->exited) {
			json_object_set_new(j, "ended_at_ms", json_integer((json_int_t)p->t_exit_ms));
			json_object_set_new(j, "exit_code", p->signal ? json_null()
					    : json_integer(p->exit_status));
			json_object_set_new(j, "signal", p->signal
					    ? json_string(util_signame(p->signal)) : json_null());
			json_object_set_new(j, "by_faultd", json_boolean(p->by_faultd));
			if (p->oom_killed)
				json_object_set_new(j, "oom_killed", json_true());
		}
		json_array_append_new(arr, j);
	}
	return arr;
}

json_t *report_cycle_workloads(const struct run_obs *obs, size_t c)
{
	json_t *all = json_object();

	for (size_t w = 0; all && w < obs->sc->n_wl; w++) {
		const struct obs_sample *s = obs_sample_at(obs, c, w);
		json_t *one;

		if (!s->heap && !s->fds && !s->life)
			continue;
		one = json_object();
		if (!one)
			break;
		if (s->fds) {
			json_t *types = json_object();

			json_object_set_new(one, "fds", json_integer(s->fds_total));
			json_object_set_new(one, "sockets", json_integer(s->sockets));
			for (int t = 0; types && t < FD_T__MAX; t++)
				if (s->fd_types[t])
					json_object_set_new(types, probe_fds__type_name(t),
							    json_integer(s->fd_types[t]));
			json_object_set_new(one, "fd_types", types ? types : json_object());
		}
		if (s->heap) {
			json_object_set_new(one, "heap_bytes", json_integer(s->heap_bytes));
			json_object_set_new(one, "heap_blocks", json_integer(s->heap_blocks));
		}
		if (s->life && obs->n_life_kinds) {
			json_t *live = json_object();

			for (size_t k = 0; live && k < obs->n_life_kinds; k++)
				json_object_set_new(live, obs->life_kinds[k], json_integer(s->live[k]));
			json_object_set_new(one, "objects", live ? live : json_object());
		}
		if (s->life && obs->n_life_counters) {
			json_t *ctr = json_object();

			for (size_t k = 0; ctr && k < obs->n_life_counters; k++)
				json_object_set_new(ctr, obs->life_counters[k],
						    json_integer(s->counters[k]));
			json_object_set_new(one, "counters", ctr ? ctr : json_object());
		}
		json_object_set_new(all, obs->sc->wl[w].name, one);
	}
	return all;
}

static json_t *build_cycles(const struct report_in *in)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < in->obs->n_cycles; i++) {
		const struct obs_cycle *c = &in->obs->cycles[i];

		json_array_append_new(arr, json_pack("{sIsIsIsIsIso}",
			"cycle", (json_int_t)c->n, "t_start_ms", (json_int_t)c->t_start_ms,
			"t_end_ms", (json_int_t)c->t_end_ms, "procs", (json_int_t)c->procs,
			"rss_kb", (json_int_t)c->rss_kb,
			"workloads", report_cycle_workloads(in->obs, i)));
	}
	return arr;
}

/* What each workload's probes saw beyond the cycles. */
static json_t *build_workload_probes(const struct report_in *in)
{
	json_t *all = json_object();

	for (size_t w = 0; all && w < in->sc->n_wl; w++) {
		const struct obs_probes *op = &in->obs->probes[w];
		json_t *one = json_object();

		if (!one)
			break;
		if (op->heap)
			json_object_set_new(one, "heap", json_pack("{sbsssIsIsIsIsOsO}",
				"attached", 1, "placement", op->heap_placement,
				"allocs", (json_int_t)op->heap_allocs, "frees", (json_int_t)op->heap_frees,
				"libc_internal_frees", (json_int_t)op->heap_internal_frees,
				"lost", (json_int_t)op->heap_lost,
				"losses", op->heap_losses ? op->heap_losses : json_object(),
				"top_sites", op->heap_sites ? op->heap_sites : json_array()));
		if (op->heap && op->heap_coverage)
			json_object_set(json_object_get(one, "heap"), "coverage", op->heap_coverage);
		if (op->heap && op->heap_coverage)
			json_object_set(json_object_get(one, "heap"), "coverage", op->heap_coverage);
		if (op->fds)
			json_object_set_new(one, "fds", json_pack("{sbsIsO}", "attached", 1,
				"lost", (json_int_t)op->fds_lost,
				"calls", op->fd_calls ? op->fd_calls : json_object()));
		if (in->sc->wl[w].probes)
			for (size_t k = 0; in->sc->wl[w].probes[k]; k++)
				if (!strcmp(in->sc->wl[w].probes[k], "lifecycle"))
					json_object_set_new(one, "lifecycle", json_pack("{sbsI}",
						"attached", op->life,
						"lost", (json_int_t)op->life_lost));
		json_object_set_new(all, in->sc->wl[w].name, one);
	}
	return all;
}

static json_t *build_invariants(const struct report_in *in)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < in->n_res; i++) {
		const struct sc_invariant *inv = &in->sc->inv[i];
		const struct inv_result *r = &in->res[i];
		json_t *j = json_pack("{sssosssssO}", "name", inv->name,
				      "workload", str_or_null(inv->workload),
				      "verdict", verdict_name(r->verdict),
				      "summary", r->summary,
				      "evidence", r->evidence ? r->evidence : json_array());

		if (!j) {
			log_err("%s: cannot encode invariant %s", __func__, inv->name);
			continue;
		}
		if (r->verdict == V_FAIL) {
			json_object_set_new(j, "first_violation_cycle",
					    json_integer(r->first_cycle));
			json_object_set_new(j, "first_violation_ms",
					    json_integer((json_int_t)r->first_at_ms));
			json_object_set_new(j, "first_violation_at",
					    iso(in->started_at_ms + r->first_at_ms));
		}
		json_array_append_new(arr, j);
	}
	return arr;
}

json_t *report_json_build(const struct report_in *in)
{
	const struct scenario *sc = in->sc;
	struct utsname uts;
	char host[256] = "";
	json_t *rep;

	uname(&uts);
	gethostname(host, sizeof(host) - 1);
	rep = json_pack("{sisssss{sssssssssIsb}sososfsssossss}",
		"schema_version", REPORT_SCHEMA_VERSION,
		"faultd_version", FAULTD_VERSION,
		"run_id", in->run_id,
		"scenario",
			"name", sc->name, "file", sc->path, "sha256", sc->sha256,
			"expect", scenario_expect_name(sc->expect),
			"seed", (json_int_t)in->seed, "seed_given", sc->seed_set,
		"started_at", iso(in->started_at_ms),
		"ended_at", iso(in->ended_at_ms),
		"duration_s", (double)(in->ended_at_ms - in->started_at_ms) / 1000.0,
		"verdict", verdict_name(in->verdict),
		"error", str_or_null(in->error),
		"stop_reason", in->stop_reason ? in->stop_reason : "",
		"run_dir", in->run_dir);
	if (!rep)
		return NULL;
	json_object_set_new(rep, "expected_verdict_matched", json_boolean(
		strcmp(verdict_name(in->verdict), scenario_expect_name(sc->expect)) == 0));
	json_object_set_new(rep, "host", json_pack("{ssssss}", "hostname", host,
				"kernel", uts.release, "machine", uts.machine));
	json_object_set_new(rep, "workloads", build_workloads(in));
	json_object_set_new(rep, "processes", build_processes(in));
	json_object_set_new(rep, "processes_seen", json_integer((json_int_t)in->procs_seen));
	/* The fault timeline: actions actually fired, planned and actual time. */
	json_object_set_new(rep, "faults", json_incref(in->obs->faults));
	if (in->obs->topology)
		json_object_set_new(rep, "topology", json_incref(in->obs->topology));
	if (in->obs->packet_stats)
		json_object_set_new(rep, "packet_stats", json_incref(in->obs->packet_stats));
	if (in->obs->syscall_stats)
		json_object_set_new(rep, "syscall_stats", json_incref(in->obs->syscall_stats));
	/* Each feature tried: ok (and how) or missing (why, what gives it). */
	json_object_set_new(rep, "capabilities", in->obs->capabilities ?
			    json_incref(in->obs->capabilities) : json_object());
	if (in->obs->not_applied)
		json_object_set_new(rep, "faults_not_applied", json_incref(in->obs->not_applied));
	json_object_set_new(rep, "cycles", build_cycles(in));
	json_object_set_new(rep, "invariants", build_invariants(in));
	json_object_set_new(rep, "probes", json_pack("{s{sbsI}so}", "proc",
				"attached", in->obs->proc_probe,
				"lost_events", (json_int_t)in->obs->proc_lost,
				"workloads", build_workload_probes(in)));
	return rep;
}

int report_json_write(const json_t *report, const char *path)
{
	char *text;
	int err;

	text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return -ENOMEM;
	err = util_write_atomic(path, text, strlen(text));
	free(text);
	return err;
}
