/* What faultd serves: the queue of runs (started in turn, at most
 * max_concurrent at once, the finished ones kept briefly, their watchers
 * streamed every cycle) and the control socket's requests that feed it.
 * faultd.c owns the loop and the lifecycle; this file, the work. */
#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include "caps.h"
#include "log.h"
#include "metrics.h"
#include "report.h"
#include "serve.h"
#include "util.h"

#define FAULTD_KEEP_JOBS 2		/* finished runs kept in memory; older ones are read from
					 * the runs directory, so a soak does not grow faultd */
#define FAULTD_LIST_MAX 500		/* runs a list request reads from disk */

static void job_broadcast(struct job *j, const json_t *msg)
{
	for (size_t i = 0; i < j->n_watchers; i++)
		ctl_conn_send(j->watchers[i], msg);
}

static struct job *job_find(struct faultd *d, const char *id)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (strcmp(run__id(j->run), id) == 0)
			return j;
	return NULL;
}

void serve_job_free(struct job *j)
{
	for (size_t i = 0; i < j->n_watchers; i++)
		ctl_conn_set_data(j->watchers[i], NULL);
	free(j->watchers);
	run__free(j->run);
	free(j);
}

/* Forget the oldest finished runs beyond the limit: their reports are on
 * disk. */
static void jobs_trim(struct faultd *d)
{
	size_t n = 0;

	for (struct job **pp = &d->jobs; *pp;) {
		struct job *j = *pp;

		if (++n > FAULTD_KEEP_JOBS && run__state(j->run) == RUN_DONE) {
			*pp = j->next;
			d->n_jobs--;
			serve_job_free(j);
			continue;
		}
		pp = &j->next;
	}
}

static void start_next(struct faultd *d);

static void on_run_cycle(struct run *r, const json_t *cycle, void *arg)
{
	struct job *j = job_find(arg, run__id(r));
	json_t *msg;

	if (!j || !j->n_watchers)
		return;
	msg = json_deep_copy(cycle);
	if (!msg)
		return;
	json_object_set_new(msg, "event", json_string("cycle"));
	job_broadcast(j, msg);
	json_decref(msg);
}

static void on_run_done(struct run *r, const json_t *report, void *arg)
{
	struct faultd *d = arg;
	struct job *j = job_find(d, run__id(r));
	json_t *msg, *st;

	d->running--;
	st = run__status(r);
	metrics_count_run(d->totals, st, report);
	json_decref(st);
	/* A run frees megabytes (debug info, samples) in pieces: give the
	 * pages back, so faultd's RSS is what it holds, not what it held. */
	malloc_trim(0);
	if (j) {
		msg = json_pack("{sssssssO}", "event", "done", "run_id", run__id(r),
				"verdict", report ? json_string_value(json_object_get(report, "verdict"))
						  : "ERROR",
				"report", report ? (json_t *)report : json_null());
		if (msg)
			job_broadcast(j, msg);
		json_decref(msg);
		for (size_t i = 0; i < j->n_watchers; i++) {
			ctl_conn_set_data(j->watchers[i], NULL);
			ctl_conn_close_after_flush(j->watchers[i]);
		}
		free(j->watchers);
		j->watchers = NULL;
		j->n_watchers = 0;
	}
	jobs_trim(d);
	if (d->running == 0) {
		util_rss_read(0, &d->rss_idle, &d->rss_anon_idle);
		d->heap_idle = util_heap_in_use_bytes();
	}
	if (d->stopping && d->running == 0) {
		log_info("%s: last run finished; exiting", __func__);
		event_base_loopexit(d->base, NULL);
		return;
	}
	start_next(d);
}

static void start_next(struct faultd *d)
{
	struct job *oldest = NULL;

	if (d->stopping)
		return;
	while (d->running < d->max_concurrent) {
		oldest = NULL;
		for (struct job *j = d->jobs; j; j = j->next)
			if (run__state(j->run) == RUN_QUEUED && !j->announced)
				oldest = j;
		if (!oldest)
			return;
		oldest->announced = true;
		d->running++;
		json_t *msg = json_pack("{ssss}", "event", "started", "run_id",
					run__id(oldest->run));
		if (msg)
			job_broadcast(oldest, msg);
		json_decref(msg);
		run__start(oldest->run);
	}
}

static int job_watch(struct job *j, struct ctl_conn *c)
{
	struct ctl_conn **grown = realloc(j->watchers, (j->n_watchers + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	j->watchers = grown;
	j->watchers[j->n_watchers++] = c;
	ctl_conn_set_data(c, j);
	return 0;
}

void serve_conn_close(struct ctl_conn *c, void *arg)
{
	struct job *j = ctl_conn_data(c);

	(void)arg;
	if (!j)
		return;
	for (size_t i = 0; i < j->n_watchers; i++) {
		if (j->watchers[i] == c) {
			j->watchers[i] = j->watchers[--j->n_watchers];
			break;
		}
	}
}

/* --- requests ----------------------------------------------------------------- */

static void reply(struct ctl_conn *c, json_t *msg)
{
	if (!msg) {
		ctl_conn_error(c, "out of memory");
		return;
	}
	json_object_set_new(msg, "ok", json_true());
	ctl_conn_send(c, msg);
	json_decref(msg);
}

static void reply_scenario_errors(struct ctl_conn *c, const char *errors)
{
	json_t *arr = json_array(), *msg;
	const char *p = errors ? errors : "";

	while (arr && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		json_array_append_new(arr, json_stringn(p, n));
		p += n + (nl ? 1 : 0);
	}
	msg = json_pack("{sbsssO}", "ok", 0, "error", "invalid scenario",
			"errors", arr ? arr : json_array());
	if (msg)
		ctl_conn_send(c, msg);
	json_decref(msg);
	json_decref(arr);
}

/* A scenario comes as text with the path it was read from (errors name that
 * path), or as a path only, read here. */
static int load_request_scenario(struct ctl_conn *c, const json_t *req,
				 struct scenario **out)
{
	const char *file = json_string_value(json_object_get(req, "file"));
	const json_t *text = json_object_get(req, "scenario");
	char *errors = NULL;
	int err;

	if (!file && !text) {
		ctl_conn_error(c, "bad request: needs \"file\" or \"scenario\"");
		return -EINVAL;
	}
	if (text && !json_is_string(text)) {
		ctl_conn_error(c, "bad request: \"scenario\" must be a string");
		return -EINVAL;
	}
	if (text)
		err = scenario_parse(file ? file : "(request)", json_string_value(text),
				     json_string_length(text), out, &errors);
	else
		err = scenario_load(file, out, &errors);
	if (err)
		reply_scenario_errors(c, errors);
	free(errors);
	return err;
}

static void req_version(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	(void)d;
	(void)req;
	reply(c, json_pack("{sssi}", "version", FAULTD_VERSION, "schema_version",
			   REPORT_SCHEMA_VERSION));
}

static void req_validate(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	struct scenario *sc = NULL;

	(void)d;
	if (load_request_scenario(c, req, &sc))
		return;
	reply(c, json_pack("{sssisi}", "name", sc->name, "workloads", (int)sc->n_wl,
			   "invariants", (int)sc->n_inv));
	scenario_free(sc);
}

static void req_run(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	struct run_opts opts = {
		.paths = &d->paths,
		.on_cycle = on_run_cycle, .on_done = on_run_done, .arg = d,
	};
	struct scenario *sc = NULL;
	struct job *j;
	int queued = 0;

	if (d->stopping) {
		ctl_conn_error(c, "faultd is shutting down");
		return;
	}
	if (load_request_scenario(c, req, &sc))
		return;
	/* faultctl run --suppressions: an absolute path the client checked;
	 * run__new keeps its own copy. */
	opts.suppressions = json_string_value(json_object_get(req, "suppressions"));
	j = calloc(1, sizeof(*j));
	if (!j) {
		scenario_free(sc);
		ctl_conn_error(c, "out of memory");
		return;
	}
	j->run = run__new(d->base, sc, &opts);
	if (!j->run) {
		ctl_conn_error(c, "cannot create run: %s", strerror(errno));
		free(j);
		return;
	}
	j->next = d->jobs;
	d->jobs = j;
	d->n_jobs++;
	for (struct job *o = d->jobs; o; o = o->next)
		queued += run__state(o->run) == RUN_QUEUED && !o->announced;
	log_info("%s: run %s queued: %s (%s)", __func__, run__id(j->run),
		 run__scenario(j->run)->name, run__scenario(j->run)->path);
	reply(c, json_pack("{sssssssi}", "run_id", run__id(j->run), "state", "queued",
			   "dir", run__dir(j->run), "position", queued));
	if (json_is_true(json_object_get(req, "watch")) && job_watch(j, c))
		ctl_conn_error(c, "out of memory");
	start_next(d);
}

static json_t *disk_report(struct faultd *d, const char *id)
{
	char path[PATH_MAX + 64];

	if (!util_valid_run_id(id))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s/report.json", d->paths.runs_dir, id);
	return json_load_file(path, 0, NULL);
}

static const char *req_run_id(struct ctl_conn *c, const json_t *req, bool required)
{
	const char *id = json_string_value(json_object_get(req, "run_id"));

	if (!id && required)
		ctl_conn_error(c, "bad request: needs \"run_id\"");
	else if (id && !util_valid_run_id(id)) {
		ctl_conn_error(c, "bad request: \"%s\" is not a run id", id);
		id = NULL;
	}
	return id;
}

static json_t *daemon_status(struct faultd *d)
{
	json_t *running = json_array();
	int queued = 0;

	for (struct job *j = d->jobs; j && running; j = j->next) {
		enum run_state st = run__state(j->run);

		if (st == RUN_QUEUED && !j->announced)
			queued++;
		else if (st != RUN_DONE)
			json_array_append_new(running, run__status(j->run));
	}
	/* What the runs so far found this host can and cannot do. */
	return json_pack("{s{sssisfsisosssssIsIsIsIsosO}}", "daemon", "version", FAULTD_VERSION,
			 "pid", (int)getpid(),
			 "uptime_s", (double)(util_now_ns() - d->started_ns) / 1e9,
			 "queued", queued, "running", running ? running : json_array(),
			 "runs_dir", d->paths.runs_dir, "socket", d->sock_path,
			 "rss_bytes", (json_int_t)util_rss_bytes(0),
			 "rss_idle_bytes", (json_int_t)d->rss_idle,
			 "rss_anon_idle_bytes", (json_int_t)d->rss_anon_idle,
			 "heap_in_use_idle_bytes", (json_int_t)d->heap_idle,
			 "capabilities", caps_json(false) ?: json_object(),
			 "totals", d->totals);
}

static void req_status(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	const json_t *given = json_object_get(req, "run_id");
	const char *id = req_run_id(c, req, false);
	struct job *j;
	json_t *rep;

	if (given && !id)
		return;
	if (id) {
		j = job_find(d, id);
		if (j) {
			reply(c, json_pack("{so}", "status", run__status(j->run)));
			return;
		}
		rep = disk_report(d, id);
		if (!rep) {
			ctl_conn_error(c, "no run %s", id);
			return;
		}
		reply(c, json_pack("{s{sssssO}}", "status", "run_id", id, "state", "done",
				   "verdict", json_object_get(rep, "verdict")));
		json_decref(rep);
		return;
	}
	reply(c, daemon_status(d));
}

/* The first failing invariant's "name: summary", for lists. */
static json_t *first_failure(const json_t *rep)
{
	const json_t *inv;
	size_t i;

	json_array_foreach(json_object_get(rep, "invariants"), i, inv) {
		if (strcmp(json_string_value(json_object_get(inv, "verdict")) ?: "", "FAIL"))
			continue;
		return json_sprintf("%s: %s", json_string_value(json_object_get(inv, "name")),
				    json_string_value(json_object_get(inv, "summary")));
	}
	return json_null();
}

/* A finished run's list row, from its report. */
static json_t *disk_row(const char *id, const json_t *rep)
{
	return json_pack("{sssssOsOsOsosO}", "run_id", id, "state", "done",
			 "scenario", json_object_get(json_object_get(rep, "scenario"), "name"),
			 "verdict", json_object_get(rep, "verdict"),
			 "started_at", json_object_get(rep, "started_at"),
			 "first_failure", first_failure(rep),
			 "duration_s", json_object_get(rep, "duration_s"));
}

/* ISO 8601 times sort as text: newest first. */
static int newer_first(const void *a, const void *b)
{
	const char *ta = json_string_value(json_object_get(*(json_t *const *)a, "started_at"));
	const char *tb = json_string_value(json_object_get(*(json_t *const *)b, "started_at"));

	return strcmp(tb ?: "", ta ?: "");
}

/* Runs in memory, then the runs directory's, newest first. A report on
 * disk is parsed once: its row is kept (d->disk_rows) for as long as its
 * directory is there, since /metrics and the dashboard list on every
 * request. */
static json_t *runs_json(struct faultd *d)
{
	json_t *runs = json_array(), *row, *rows = json_object();
	json_t **sorted = NULL;
	struct dirent *de;
	const char *id;
	size_t n = 0, k = 0;
	DIR *dir;

	for (struct job *j = d->jobs; j && runs; j = j->next) {
		const json_t *rep = run__report(j->run);

		row = run__status(j->run);
		if (row && rep) {
			json_object_set(row, "started_at", json_object_get(rep, "started_at"));
			json_object_set_new(row, "first_failure", first_failure(rep));
		}
		if (row)
			json_array_append_new(runs, row);
	}
	dir = opendir(d->paths.runs_dir);
	while (dir && runs && rows && (de = readdir(dir)) && n < FAULTD_LIST_MAX) {
		json_t *rep;

		if (!util_valid_run_id(de->d_name) || job_find(d, de->d_name))
			continue;
		n++;
		row = json_incref(json_object_get(d->disk_rows, de->d_name));
		if (!row && (rep = disk_report(d, de->d_name))) {
			row = disk_row(de->d_name, rep);
			json_decref(rep);
		}
		if (row)
			json_object_set_new(rows, de->d_name, row);
	}
	if (dir)
		closedir(dir);
	/* Rows of directories that are gone (cleanup, soak --keep) go too. */
	json_decref(d->disk_rows);
	d->disk_rows = rows;
	if (rows)
		sorted = calloc(json_object_size(rows) + 1, sizeof(*sorted));
	json_object_foreach(sorted ? rows : NULL, id, row)
		sorted[k++] = row;
	if (sorted)
		qsort(sorted, k, sizeof(*sorted), newer_first);
	for (size_t i = 0; runs && i < k; i++)
		json_array_append(runs, sorted[i]);
	free(sorted);
	return runs ? runs : json_array();
}

static void req_list(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	(void)req;
	reply(c, json_pack("{so}", "runs", runs_json(d)));
}

static void req_stop(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	const char *id = req_run_id(c, req, true);
	struct job *j;

	if (!id)
		return;
	j = job_find(d, id);
	if (!j || run__state(j->run) == RUN_DONE) {
		ctl_conn_error(c, "no active run %s", id);
		return;
	}
	if (run__state(j->run) == RUN_QUEUED && !j->announced) {
		j->announced = true;	/* never started: it ends here */
		d->running++;
	}
	run__stop(j->run, "stopped by request");
	reply(c, json_pack("{ssss}", "run_id", id, "state", run__state_name(run__state(j->run))));
}

static void req_report(struct faultd *d, struct ctl_conn *c, const json_t *req)
{
	const char *id = req_run_id(c, req, true);
	struct job *j;
	json_t *rep;

	if (!id)
		return;
	j = job_find(d, id);
	if (j && run__report(j->run)) {
		reply(c, json_pack("{sO}", "report", run__report(j->run)));
		return;
	}
	if (j) {
		ctl_conn_error(c, "run %s is %s; no report yet", id,
			       run__state_name(run__state(j->run)));
		return;
	}
	rep = disk_report(d, id);
	if (!rep) {
		ctl_conn_error(c, "no report for run %s", id);
		return;
	}
	reply(c, json_pack("{so}", "report", rep));
}

static const struct {
	const char *name;
	void (*fn)(struct faultd *d, struct ctl_conn *c, const json_t *req);
} requests[] = {
	{"version", req_version}, {"validate", req_validate}, {"run", req_run},
	{"status", req_status}, {"list", req_list}, {"stop", req_stop},
	{"report", req_report},
};

void serve_request(struct ctl_conn *c, const json_t *req, void *arg)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!cmd) {
		ctl_conn_error(c, "bad request: needs \"cmd\"");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++) {
		if (strcmp(requests[i].name, cmd) == 0) {
			log_debug("%s: %s", __func__, cmd);
			requests[i].fn(arg, c, req);
			return;
		}
	}
	ctl_conn_error(c, "unknown command '%s' (known: version, validate, run, status, "
		       "list, stop, report)", cmd);
}


json_t *serve_status(void *arg)
{
	return daemon_status(arg);
}

json_t *serve_runs(void *arg)
{
	return runs_json(arg);
}

json_t *serve_report(void *arg, const char *id)
{
	struct faultd *d = arg;
	struct job *j = job_find(d, id);

	if (j && run__report(j->run))
		return json_incref((json_t *)run__report(j->run));
	return j ? NULL : disk_report(d, id);
}
