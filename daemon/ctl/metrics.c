/* /metrics: Prometheus text exposition (format 0.0.4) from the daemon's
 * status and its list of runs, named as Prometheus asks: counters end in
 * _total and count since faultd started, with no run id in their labels;
 * series with a run id are gauges, there only while that run runs; the
 * process_* names are the standard ones every client library exports. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "metrics.h"
#include "report.h"
#include "util.h"

static const char *const verdicts[] = {"PASS", "FAIL", "INCONCLUSIVE", "ERROR"};

static json_int_t total_of(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

void metrics_count_run(json_t *totals, const json_t *status, const json_t *report)
{
	const char *sc = json_string_value(json_object_get(json_object_get(report, "scenario"),
							   "name"));
	const char *v = json_string_value(json_object_get(report, "verdict"));
	json_t *runs, *by_sc;

	if (!totals)
		return;
	sc = sc ? sc : json_string_value(json_object_get(status, "scenario"));
	v = v ? v : "ERROR";
	runs = json_object_get(totals, "runs_completed");
	if (!runs) {
		runs = json_object();
		json_object_set_new(totals, "runs_completed", runs);
	}
	by_sc = json_object_get(runs, sc ? sc : "?");
	if (!by_sc) {
		by_sc = json_object();
		json_object_set_new(runs, sc ? sc : "?", by_sc);
	}
	json_object_set_new(by_sc, v, json_integer(total_of(by_sc, v) + 1));
	json_object_set_new(totals, "faults_fired", json_integer(total_of(totals, "faults_fired") +
		total_of(status, "faults_fired")));
	json_object_set_new(totals, "probe_lost_events",
			    json_integer(total_of(totals, "probe_lost_events") +
					 total_of(status, "probe_lost")));
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(struct evbuffer *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
}

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"} from NULL-terminated key/value pairs. */
static void series(struct evbuffer *b, const char *name, const char *const *kv)
{
	evbuffer_add_printf(b, "%s", name);
	for (size_t i = 0; kv && kv[i]; i += 2) {
		evbuffer_add_printf(b, "%s%s=\"", i ? "," : "{", kv[i]);
		label(b, kv[i + 1]);
		evbuffer_add(b, "\"", 1);
	}
	if (kv && kv[0])
		evbuffer_add(b, "}", 1);
}

struct proc_stat {
	double cpu_s;			/* user + system */
	double start_time_s;		/* since the epoch */
	unsigned long long vsize;
};

/* /proc/self/stat fields 14, 15 (utime, stime), 22 (starttime) and 23
 * (vsize), after the command name, which may hold spaces; /proc/stat's
 * btime turns starttime into wall-clock time. */
static int proc_stat_read(struct proc_stat *ps)
{
	unsigned long long utime, stime, start, btime = 0;
	char *text = NULL, *p, *line;
	double tck = (double)sysconf(_SC_CLK_TCK);
	int err = -EINVAL;

	if (util_read_file("/proc/self/stat", 4096, &text, NULL))
		goto out;
	p = strrchr(text, ')');
	/* After ")": state is field 3, so utime is the 12th value from here. */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
			 "%*d %*d %*d %*d %*d %*d %llu %llu", &utime, &stime, &start,
			 &ps->vsize) != 4)
		goto out;
	free(text);
	text = NULL;
	if (util_read_file("/proc/stat", 1u << 20, &text, NULL))
		goto out;
	line = strstr(text, "\nbtime ");
	if (!line || sscanf(line, "\nbtime %llu", &btime) != 1)
		goto out;
	ps->cpu_s = (double)(utime + stime) / tck;
	ps->start_time_s = (double)btime + (double)start / tck;
	err = 0;
out:
	free(text);
	return err;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = -1;	/* less the one listing them */

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void process_metrics(struct evbuffer *b)
{
	struct proc_stat ps = {0};
	struct rlimit rl;
	long fds = open_fds();

	if (proc_stat_read(&ps) == 0) {
		head(b, "process_cpu_seconds_total", "counter",
		     "Total user and system CPU time spent in seconds.");
		evbuffer_add_printf(b, "process_cpu_seconds_total %.2f\n", ps.cpu_s);
		head(b, "process_start_time_seconds", "gauge",
		     "Start time of the process since unix epoch in seconds.");
		evbuffer_add_printf(b, "process_start_time_seconds %.2f\n", ps.start_time_s);
		head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
		evbuffer_add_printf(b, "process_virtual_memory_bytes %llu\n", ps.vsize);
	}
	head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	evbuffer_add_printf(b, "process_resident_memory_bytes %llu\n", util_rss_bytes(0));
	if (fds >= 0) {
		head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
		evbuffer_add_printf(b, "process_open_fds %ld\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		evbuffer_add_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

static void build_info(struct evbuffer *b)
{
	char jansson[16];

	snprintf(jansson, sizeof(jansson), "%s", JANSSON_VERSION);
	head(b, "faultd_build_info", "gauge",
	     "Always 1; the labels say which faultd and which libraries it runs with.");
	series(b, "faultd_build_info", (const char *const[]){
		"version", FAULTD_VERSION, "libbpf", libbpf_version_string(),
		"libevent", event_get_version(), "jansson", jansson, NULL});
	evbuffer_add(b, " 1\n", 3);
}

/* Runs finished since faultd started, by scenario and verdict: every
 * verdict of a scenario seen once is listed, 0 where it has none yet. */
static void totals(struct evbuffer *b, const json_t *t)
{
	const json_t *by_sc;
	const char *sc;

	head(b, "faultd_runs_completed_total", "counter",
	     "Runs finished since faultd started, by scenario and verdict.");
	json_object_foreach((json_t *)json_object_get(t, "runs_completed"), sc, by_sc) {
		for (size_t v = 0; v < ARRAY_SIZE(verdicts); v++) {
			series(b, "faultd_runs_completed_total", (const char *const[]){
				"scenario", sc, "verdict", verdicts[v], NULL});
			evbuffer_add_printf(b, " %lld\n", (long long)total_of(by_sc, verdicts[v]));
		}
	}
}

/* What the running runs add to the finished runs' totals: a counter that
 * covers both moves on during a run and keeps its value when it ends. */
static json_int_t with_running(const json_t *t, const char *key, const json_t *running,
			       const char *run_key)
{
	json_int_t n = total_of(t, key);
	const json_t *run;
	size_t i;

	json_array_foreach(running, i, run)
		n += total_of(run, run_key);
	return n;
}

static void run_gauge(struct evbuffer *b, const json_t *running, const char *name,
		      const char *key, const char *help)
{
	const json_t *run;
	size_t i;

	head(b, name, "gauge", help);
	json_array_foreach(running, i, run) {
		series(b, name, (const char *const[]){
			"run_id", json_string_value(json_object_get(run, "run_id")),
			"scenario", json_string_value(json_object_get(run, "scenario")), NULL});
		evbuffer_add_printf(b, " %g\n", json_number_value(json_object_get(run, key)));
	}
}

static void workload_counters(struct evbuffer *b, const json_t *running)
{
	const json_t *run, *wl, *val;
	const char *name;
	size_t i, k;

	head(b, "faultd_workload_value", "gauge",
	     "FAULTD_COUNTER values the running runs' workloads reported.");
	json_array_foreach(running, i, run) {
		json_array_foreach(json_object_get(run, "workloads"), k, wl) {
			json_object_foreach((json_t *)json_object_get(wl, "counters"), name, val) {
				series(b, "faultd_workload_value", (const char *const[]){
					"run_id", json_string_value(json_object_get(run, "run_id")),
					"scenario", json_string_value(json_object_get(run, "scenario")),
					"workload", json_string_value(json_object_get(wl, "name")),
					"name", name, NULL});
				evbuffer_add_printf(b, " %lld\n", (long long)json_integer_value(val));
			}
		}
	}
}

void metrics_render(struct evbuffer *b, const json_t *status, const json_t *runs)
{
	const json_t *daemon = json_object_get(status, "daemon");
	const json_t *running = json_object_get(daemon, "running");
	const json_t *t = json_object_get(daemon, "totals"), *caps, *row;
	const char *name;
	size_t i;
	/* What faultd keeps between runs, from the status taken when its last
	 * run had finished and none was running. */
	static const struct {
		const char *metric, *key, *help;
	} idle[] = {
		{"faultd_resident_memory_idle_bytes", "rss_idle_bytes",
		 "faultd's RSS when its last run had finished and none was running: what it "
		 "keeps between runs (0 until a run has finished)."},
		{"faultd_resident_anon_memory_idle_bytes", "rss_anon_idle_bytes",
		 "The anonymous part of that RSS (heap, stacks), without the pages of the "
		 "libraries faultd maps: what its own allocations keep between runs."},
		{"faultd_heap_in_use_idle_bytes", "heap_in_use_idle_bytes",
		 "At the same moment, the bytes faultd's malloc had handed out and not had "
		 "back: its live heap. Growth here is a leak; growth of the RSS alone is "
		 "memory the allocator keeps."},
	};

	head(b, "faultd_up", "gauge", "1 while faultd serves.");
	evbuffer_add_printf(b, "faultd_up 1\n");
	build_info(b);
	process_metrics(b);
	for (i = 0; i < ARRAY_SIZE(idle); i++) {
		head(b, idle[i].metric, "gauge", idle[i].help);
		evbuffer_add_printf(b, "%s %lld\n", idle[i].metric,
				    (long long)total_of(daemon, idle[i].key));
	}
	head(b, "faultd_feature_available", "gauge",
	     "1 if a probe or fault mechanism works on this host, 0 if it was found missing "
	     "(features not tried yet are not listed).");
	caps = json_object_get(daemon, "capabilities");
	json_object_foreach((json_t *)caps, name, row) {
		series(b, "faultd_feature_available", (const char *const[]){"feature", name, NULL});
		evbuffer_add_printf(b, " %d\n",
			!strcmp(json_string_value(json_object_get(row, "state")) ?: "", "ok"));
	}
	totals(b, t);
	head(b, "faultd_faults_fired_total", "counter",
	     "Fault actions fired since faultd started, by every run.");
	evbuffer_add_printf(b, "faultd_faults_fired_total %lld\n",
			    (long long)with_running(t, "faults_fired", running, "faults_fired"));
	head(b, "faultd_probe_lost_events_total", "counter",
	     "Events the runs' probes could not record since faultd started.");
	evbuffer_add_printf(b, "faultd_probe_lost_events_total %lld\n",
			    (long long)with_running(t, "probe_lost_events", running, "probe_lost"));
	head(b, "faultd_runs_kept", "gauge",
	     "Runs in the runs directory, by verdict (falls when old runs are pruned).");
	for (size_t v = 0; v < ARRAY_SIZE(verdicts); v++) {
		long n = 0;

		json_array_foreach(runs, i, row)
			n += !strcmp(json_string_value(json_object_get(row, "verdict")) ?: "",
				     verdicts[v]);
		series(b, "faultd_runs_kept", (const char *const[]){"verdict", verdicts[v], NULL});
		evbuffer_add_printf(b, " %ld\n", n);
	}
	head(b, "faultd_runs_active", "gauge", "Runs started and not yet done.");
	evbuffer_add_printf(b, "faultd_runs_active %zu\n", json_array_size(running));
	head(b, "faultd_runs_queued", "gauge", "Runs waiting for a slot.");
	evbuffer_add_printf(b, "faultd_runs_queued %lld\n", (long long)total_of(daemon, "queued"));
	run_gauge(b, running, "faultd_run_cycle", "cycle", "The running run's current cycle.");
	run_gauge(b, running, "faultd_run_elapsed_seconds", "elapsed_s",
		  "Seconds since the running run started its workloads.");
	run_gauge(b, running, "faultd_run_faults_fired", "faults_fired",
		  "Fault actions the running run has fired.");
	run_gauge(b, running, "faultd_run_probe_lost_events", "probe_lost",
		  "Events the running run's probes could not record.");
	workload_counters(b, running);
}
