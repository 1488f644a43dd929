/* The end of a run: what the probes and the supervisor hold is gathered
 * into the observations, the invariants judge them, and the report is built
 * and written (JSON and HTML) into the run's directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "inv.h"
#include "log.h"
#include "probe_proc.h"
#include "report.h"
#include "residue.h"
#include "run_priv.h"
#include "sanitizer.h"
#include "sup.h"
#include "fault_family.h"
#include "util.h"

static enum verdict decide(struct run *r, struct inv_result *res)
{
	enum verdict v = V_PASS;

	for (size_t i = 0; i < r->sc->n_inv; i++) {
		int err = inv_eval(&r->obs, &r->sc->inv[i], &res[i]);

		if (err) {
			res[i].verdict = V_ERROR;
			snprintf(res[i].summary, sizeof(res[i].summary),
				 "evaluation failed: %s", strerror(-err));
		}
		v = verdict_combine(v, res[i].verdict);
	}
	if (r->error[0])
		return V_ERROR;
	/* A run cut short proves nothing beyond what already failed. */
	if (r->stop_requested && v == V_PASS)
		return V_INCONCLUSIVE;
	return v;
}

#define RUN_TAIL_LINES 5
#define RUN_TAIL_BYTES 2048

/* The last @n lines of the file at @path, for evidence; NULL if none. */
static json_t *tail_lines(const char *path, int n)
{
	char buf[RUN_TAIL_BYTES + 1], *end, *start;
	json_t *lines = NULL;
	ssize_t got;
	off_t size;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	got = size < 0 ? -1 : pread(fd, buf, RUN_TAIL_BYTES, size > RUN_TAIL_BYTES ?
							     size - RUN_TAIL_BYTES : 0);
	close(fd);
	if (got <= 0)
		return NULL;
	buf[got] = '\0';
	lines = json_array();
	end = buf + got;
	while (lines && n > 0 && end > buf) {
		if (end[-1] == '\n')
			*--end = '\0';
		start = end;
		while (start > buf && start[-1] != '\n')
			start--;
		/* A line cut by the window is dropped, not shown half. */
		if (start == buf && size > RUN_TAIL_BYTES)
			break;
		json_array_insert_new(lines, 0, json_string(start));
		end = start;
		n--;
	}
	return lines;
}

void run_judge_collect(struct run *r)
{
	struct fault_stats st = {0};

	probe_proc__drain(r->proc);
	run_probes_finish(r);
	if (r->proc) {
		unsigned long long lost[PROC_LOSS__MAX];

		probe_proc__losses(r->proc, lost);
		for (int i = 0; i < PROC_LOSS__MAX; i++)
			r->obs.proc_lost += lost[i];
	}
	r->obs.t_end_ms = run_ms(r);
	r->ended_at_ms = util_realtime_ms();
	/* What the host could do, as the invariants and the report see it. */
	r->obs.capabilities = caps_json(false);
	fault_families_stats(&r->fenv, &st);
	if (r->topo && !r->obs.packet_stats)
		r->obs.packet_stats = st.links ? st.links : json_object();
	else
		json_decref(st.links);
	if (!r->obs.syscall_stats)
		r->obs.syscall_stats = st.workloads;
	else
		json_decref(st.workloads);
	/* Flush captured output before the report counts it. */
	for (size_t i = 0; i < r->sc->n_wl; i++) {
		struct run_wl *rw = &r->rw[i];

		if (!rw->child)
			continue;
		sup__output_stats(rw->child, &rw->out_seen, &rw->out_dropped);
		sup__free(rw->child);
		rw->child = NULL;
		rw->fw->child = NULL;
		r->obs.wl[i].last_output = tail_lines(rw->out_path, RUN_TAIL_LINES);
		r->obs.wl[i].sanitizer = sanitizer_parse_file(rw->err_path);
	}
}

enum verdict run_judge_report(struct run *r)
{
	struct report_wl_out *outs;
	struct inv_result *res;
	struct report_in in = {0};
	char path[PATH_MAX + 32];
	enum verdict v;
	int err;

	r->obs.residue = residue_scan(r->id, r->cgroup, r->paths.journal_dir);
	res = calloc(r->sc->n_inv ? r->sc->n_inv : 1, sizeof(*res));
	if (!res)
		run_error(r, "out of memory evaluating invariants");
	v = res ? decide(r, res) : V_ERROR;

	in.run_id = r->id;
	in.run_dir = r->dir;
	in.sc = r->sc;
	in.obs = &r->obs;
	in.res = res;
	in.n_res = res ? r->sc->n_inv : 0;
	in.verdict = v;
	in.error = r->error[0] ? r->error : NULL;
	in.stop_reason = r->stop_reason;
	in.started_at_ms = r->started_at_ms;
	in.ended_at_ms = r->ended_at_ms;
	in.seed = r->seed;
	in.procs_seen = r->procs_seen;
	outs = calloc(r->sc->n_wl, sizeof(*outs));
	for (size_t i = 0; outs && i < r->sc->n_wl; i++) {
		outs[i].stdout_path = r->rw[i].out_path;
		outs[i].stderr_path = r->rw[i].err_path;
		outs[i].seen = r->rw[i].out_seen;
		outs[i].dropped = r->rw[i].out_dropped;
		outs[i].argv = r->rw[i].argv;
	}
	in.wl_out = outs;
	r->report = outs ? report_json_build(&in) : NULL;
	free(outs);
	for (size_t i = 0; res && i < r->sc->n_inv; i++)
		json_decref(res[i].evidence);
	free(res);
	if (r->report) {
		snprintf(path, sizeof(path), "%s/report.json", r->dir);
		err = report_json_write(r->report, path);
		if (err)
			log_err("%s: run %s: cannot write %s: %s", __func__, r->id, path,
				strerror(-err));
		/* The page people open the next morning, beside the JSON. */
		snprintf(path, sizeof(path), "%s/report.html", r->dir);
		err = report_html_write(r->report, path);
		if (err)
			log_err("%s: run %s: cannot write %s: %s", __func__, r->id, path,
				strerror(-err));
	}
	return v;
}
