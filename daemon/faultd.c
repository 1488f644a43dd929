/* faultd: the daemon. Accepts scenarios on a Unix socket, queues runs, runs
 * them on one libevent loop, streams progress to clients that watch. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "caps.h"
#include "cgroup.h"
#include "check.h"
#include "journal.h"
#include "ctl.h"
#include "faultd.h"
#include "log.h"
#include "report.h"
#include "run.h"
#include "util.h"

#define FAULTD_KEEP_JOBS 2		/* finished runs kept in memory; older ones are read from
					 * the runs directory, so a soak does not grow faultd */
#define FAULTD_LIST_MAX 500		/* runs a list request reads from disk */

static struct faultd fd_state;

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

static void job_free(struct job *j)
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
			job_free(j);
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
	json_t *msg;

	d->running--;
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
	if (d->running == 0)
		d->rss_idle = util_rss_bytes(0);
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

static void on_conn_close(struct ctl_conn *c, void *arg)
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
		.runs_dir = d->runs_dir, .cgroup_root = d->cgroup_root,
		.harness_dir = d->harness_dir, .journal_dir = d->journal_dir,
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
	snprintf(path, sizeof(path), "%s/%s/report.json", d->runs_dir, id);
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
	return json_pack("{s{sssisfsisosssssIsIso}}", "daemon", "version", FAULTD_VERSION,
			 "pid", (int)getpid(),
			 "uptime_s", (double)(util_now_ns() - d->started_ns) / 1e9,
			 "queued", queued, "running", running ? running : json_array(),
			 "runs_dir", d->runs_dir, "socket", d->sock_path,
			 "rss_bytes", (json_int_t)util_rss_bytes(0),
			 "rss_idle_bytes", (json_int_t)d->rss_idle,
			 "capabilities", caps_json(false) ?: json_object());
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
	dir = opendir(d->runs_dir);
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

static void on_request(struct ctl_conn *c, const json_t *req, void *arg)
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

/* --- lifecycle ------------------------------------------------------------------ */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct faultd *d = arg;
	char reason[64];

	(void)what;
	if (sig == SIGHUP) {
		log_info("%s: SIGHUP ignored", __func__);
		return;
	}
	if (d->stopping) {
		log_warn("%s: %s again; still tearing down", __func__, util_signame((int)sig));
		return;
	}
	d->stopping = true;
	log_info("%s: %s: stopping runs and exiting", __func__, util_signame((int)sig));
	snprintf(reason, sizeof(reason), "faultd received %s", util_signame((int)sig));
	for (struct job *j = d->jobs; j; j = j->next) {
		if (run__state(j->run) == RUN_DONE)
			continue;
		if (run__state(j->run) == RUN_QUEUED && !j->announced) {
			j->announced = true;
			d->running++;
		}
		run__stop(j->run, reason);
	}
	if (d->running == 0)
		event_base_loopexit(d->base, NULL);
}

static json_t *http_status(void *arg)
{
	return daemon_status(arg);
}

static json_t *http_runs(void *arg)
{
	return runs_json(arg);
}

static json_t *http_report(void *arg, const char *id)
{
	struct faultd *d = arg;
	struct job *j = job_find(d, id);

	if (j && run__report(j->run))
		return json_incref((json_t *)run__report(j->run));
	return j ? NULL : disk_report(d, id);
}

/* "9464" or "127.0.0.1:9464": loopback only, as nothing here is for
 * other machines. */
static int parse_http(struct faultd *d, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	struct in_addr a;
	char *end;
	long port;

	snprintf(d->http_addr, sizeof(d->http_addr), "%.*s",
		 colon ? (int)(colon - arg) : (int)strlen("127.0.0.1"), colon ? arg : "127.0.0.1");
	port = strtol(colon ? colon + 1 : arg, &end, 10);
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, d->http_addr, &a) != 1 ||
	    (ntohl(a.s_addr) >> 24) != 127) {
		d->http_addr[0] = '\0';
		return -EINVAL;
	}
	d->http_port = (unsigned)port;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faultd [options]\n"
		"       faultd --once FILE\n"
		"       faultd --check\n"
		"Runs workloads under scripted faults, watches them with eBPF and\n"
		"decides PASS / FAIL / INCONCLUSIVE. Control it with faultctl.\n\n"
		"  -s, --socket PATH      control socket (default %s)\n"
		"  -r, --runs-dir DIR     reports and logs (default %s)\n"
		"      --cgroup-root DIR  cgroup v2 parent for runs (default: MOUNT/faultd,\n"
		"                         MOUNT the cgroup2 mount in /proc/self/mountinfo)\n"
		"      --cgroup-delegated started by systemd with Delegate=yes: move into\n"
		"                         OWN/daemon, runs below OWN/runs (OWN: its cgroup)\n"
		"      --harness-dir DIR  bundled workloads (default: harness/ next to faultd)\n"
		"      --journal-dir DIR  undo journals (default " JOURNAL_DEFAULT_DIR ")\n"
		"  -j, --max-concurrent N runs at once (default 1)\n"
		"      --once FILE        run one scenario without a socket, print the\n"
		"                         report, exit with its verdict's code\n"
		"      --check            try every probe and fault mechanism once and print\n"
		"                         what works here (exit 0: every core feature does)\n"
		"  -l, --log-level LEVEL  error, warn, info (default), debug\n"
		"      --http [ADDR:]PORT serve /metrics, /runs, /runs/ID and a dashboard on a\n"
		"                         loopback address (default 127.0.0.1; PORT 0: any)\n"
		"  -h, --help\n",
		CTL_DEFAULT_SOCK, RUN_DEFAULT_DIR);
}

static void on_once_done(struct run *r, const json_t *report, void *arg)
{
	(void)r;
	(void)arg;
	if (report)
		report_text(stdout, report);
	event_base_loopbreak(fd_state.base);
}

/* --once: Ctrl-C or SIGTERM stops the run; its teardown undoes what it set
 * up and its report is still written. */
static void on_once_signal(evutil_socket_t sig, short what, void *arg)
{
	char reason[64];

	(void)what;
	snprintf(reason, sizeof(reason), "faultd received %s", util_signame((int)sig));
	log_info("%s: %s: stopping the run", __func__, util_signame((int)sig));
	run__stop(arg, reason);
}

static int run_once(struct faultd *d, const char *file)
{
	struct run_opts opts = {
		.runs_dir = d->runs_dir, .cgroup_root = d->cgroup_root,
		.harness_dir = d->harness_dir, .journal_dir = d->journal_dir,
		.on_done = on_once_done,
	};
	struct event *sig[2] = {NULL, NULL};
	struct scenario *sc = NULL;
	char *errors = NULL;
	struct run *r;
	int code = 3;

	if (scenario_load(file, &sc, &errors)) {
		fputs(errors ? errors : "invalid scenario\n", stderr);
		free(errors);
		return 3;
	}
	r = run__new(d->base, sc, &opts);
	if (!r) {
		log_err("%s: cannot create run: %s", __func__, strerror(errno));
		return 3;
	}
	sig[0] = evsignal_new(d->base, SIGINT, on_once_signal, r);
	sig[1] = evsignal_new(d->base, SIGTERM, on_once_signal, r);
	if (!sig[0] || !sig[1] || evsignal_add(sig[0], NULL) || evsignal_add(sig[1], NULL)) {
		log_err("%s: cannot install signal events", __func__);
		goto out;
	}
	run__start(r);
	event_base_dispatch(d->base);
	if (run__report(r))
		code = verdict_exit_code(verdict_parse(json_string_value(
			json_object_get(run__report(r), "verdict"))));
out:
	for (size_t i = 0; i < 2; i++)
		if (sig[i])
			event_free(sig[i]);
	run__free(r);
	return code;
}

/* --check: the capability table, exit 0 when every core feature works. */
static int run_check(struct faultd *d)
{
	struct run_opts opts = {
		.cgroup_root = d->cgroup_root, .harness_dir = d->harness_dir,
		.journal_dir = d->journal_dir,
	};
	json_t *caps = NULL;
	int err;

	err = check__run(d->base, &opts, &caps);
	if (caps)
		check_print(stdout, caps);
	json_decref(caps);
	if (err && err != -ENOTSUP)
		log_err("%s: the check could not run: %s", __func__, strerror(-err));
	return !err ? 0 : err == -ENOTSUP ? 1 : 3;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"runs-dir", required_argument, NULL, 'r'},
		{"cgroup-root", required_argument, NULL, 'C'},
		{"cgroup-delegated", no_argument, NULL, 'D'},
		{"harness-dir", required_argument, NULL, 'H'},
		{"journal-dir", required_argument, NULL, 'J'},
		{"max-concurrent", required_argument, NULL, 'j'},
		{"once", required_argument, NULL, 'o'},
		{"check", no_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"http", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct faultd *d = &fd_state;
	const char *once = NULL;
	bool check = false, level_given = false, cg_delegated = false;
	int opt, code = 0, lvl;

	log_set_prefix("faultd");
	d->max_concurrent = 1;
	snprintf(d->sock_path, sizeof(d->sock_path), "%s", CTL_DEFAULT_SOCK);
	snprintf(d->runs_dir, sizeof(d->runs_dir), "%s", RUN_DEFAULT_DIR);
	snprintf(d->journal_dir, sizeof(d->journal_dir), "%s", JOURNAL_DEFAULT_DIR);
	if (util_self_dir(d->harness_dir, sizeof(d->harness_dir) - 16) == 0)
		strcat(d->harness_dir, "/harness");
	/* The bundled workloads may come from another build than faultd's own
	 * (a sanitized faultd driving the plain workloads, as the tests do). */
	if (getenv("FAULTD_HARNESS_DIR"))
		snprintf(d->harness_dir, sizeof(d->harness_dir), "%s", getenv("FAULTD_HARNESS_DIR"));
	while ((opt = getopt_long(argc, argv, "s:r:j:l:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (strlen(optarg) >= sizeof(d->sock_path)) {
				fprintf(stderr, "faultd: --socket: path too long\n");
				return 3;
			}
			snprintf(d->sock_path, sizeof(d->sock_path), "%s", optarg);
			break;
		case 'r':
			snprintf(d->runs_dir, sizeof(d->runs_dir), "%s", optarg);
			break;
		case 'C':
			snprintf(d->cgroup_root, sizeof(d->cgroup_root), "%s", optarg);
			break;
		case 'D':
			cg_delegated = true;
			break;
		case 'H':
			snprintf(d->harness_dir, sizeof(d->harness_dir), "%s", optarg);
			break;
		case 'J':
			snprintf(d->journal_dir, sizeof(d->journal_dir), "%s", optarg);
			break;
		case 'j':
			d->max_concurrent = atoi(optarg);
			if (d->max_concurrent < 1 || d->max_concurrent > 64) {
				fprintf(stderr, "faultd: --max-concurrent: expected 1..64\n");
				return 3;
			}
			break;
		case 'o':
			once = optarg;
			break;
		case 'c':
			check = true;
			break;
		case 'P':
			if (parse_http(d, optarg)) {
				fprintf(stderr, "faultd: --http: expected PORT or ADDR:PORT on a "
					"loopback address, not '%s'\n", optarg);
				return 3;
			}
			break;
		case 'l':
			lvl = log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "faultd: --log-level: expected error, warn, info or debug\n");
				return 3;
			}
			log_set_level((enum log_level)lvl);
			level_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (cg_delegated && d->cgroup_root[0]) {
		fprintf(stderr, "faultd: --cgroup-root and --cgroup-delegated exclude each other\n");
		return 3;
	}
	if (optind != argc) {
		fprintf(stderr, "faultd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 3;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "faultd: must run as root (BPF, namespaces, cgroups)\n");
		return 3;
	}
	log_route_libbpf();
	signal(SIGPIPE, SIG_IGN);
	d->started_ns = util_now_ns();
	d->base = util_event_base();
	if (!d->base) {
		log_err("%s: event_base_new failed", __func__);
		return 3;
	}
	/* Without a usable cgroup root faultd still serves status and reports;
	 * the caps table says why, and every run fails at setup saying so. */
	cg_root_init(d->cgroup_root, sizeof(d->cgroup_root), cg_delegated);
	/* Runs of a killed predecessor left cgroups (and maybe processes),
	 * namespaces and links: its journals say what. */
	cg_sweep(d->cgroup_root);
	journal__sweep(d->journal_dir, NULL, NULL);
	if (once) {
		code = run_once(d, once);
		goto out_base;
	}
	if (check) {
		/* The table says what is missing; the log would say it twice. */
		if (!level_given)
			log_set_level(LOG_ERR);
		code = run_check(d);
		goto out_base;
	}
	d->ctl = ctl_server_open(d->base, d->sock_path, on_request, on_conn_close, d);
	if (!d->ctl) {
		log_err("%s: cannot serve %s: %s", __func__, d->sock_path, strerror(errno));
		code = 3;
		goto out_base;
	}
	d->sigterm_ev = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigint_ev = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sighup_ev = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (!d->sigterm_ev || !d->sigint_ev || !d->sighup_ev ||
	    evsignal_add(d->sigterm_ev, NULL) || evsignal_add(d->sigint_ev, NULL) ||
	    evsignal_add(d->sighup_ev, NULL)) {
		log_err("%s: cannot install signal events", __func__);
		code = 3;
		goto out_ctl;
	}
	if (d->http_addr[0]) {
		struct http_source src = {.status = http_status, .runs = http_runs,
					  .report = http_report, .runs_dir = d->runs_dir, .arg = d};

		d->http = http__start(d->base, d->http_addr, d->http_port, &src);
		if (!d->http) {
			code = 3;
			goto out_ctl;
		}
	}
	log_info("%s: faultd %s ready (pid %d)", __func__, FAULTD_VERSION, (int)getpid());
	event_base_dispatch(d->base);
	log_info("%s: exiting", __func__);
out_ctl:
	http__free(d->http);
	ctl_server_close(d->ctl);
	while (d->jobs) {
		struct job *j = d->jobs;

		d->jobs = j->next;
		job_free(j);
	}
	json_decref(d->disk_rows);
	if (d->sigterm_ev)
		event_free(d->sigterm_ev);
	if (d->sigint_ev)
		event_free(d->sigint_ev);
	if (d->sighup_ev)
		event_free(d->sighup_ev);
out_base:
	event_base_free(d->base);
	libevent_global_shutdown();
	return code;
}
