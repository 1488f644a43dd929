/* What faultd serves (serve.c): the run queue and the control requests,
 * and the daemon's state they work on (one instance, in faultd.c;
 * everything else is passed in). */
#ifndef FAULTD_SERVE_H
#define FAULTD_SERVE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "ctl.h"
#include "http.h"
#include "run.h"

struct job {
	struct run *run;
	struct job *next;
	struct ctl_conn **watchers;	/* connections streaming this run */
	size_t n_watchers;
	bool announced;			/* "started" sent */
};

struct faultd {
	struct event_base *base;
	struct ctl_server *ctl;
	struct event *sigterm_ev, *sigint_ev, *sighup_ev;
	struct event *watchdog_ev;	/* WATCHDOG=1 to systemd; NULL without WatchdogSec= */
	struct job *jobs;		/* newest first */
	size_t n_jobs;
	int running;
	int max_concurrent;
	bool stopping;
	uint64_t started_ns;
	unsigned long long rss_idle;	/* RSS when the last run finished with none left */
	unsigned long long rss_anon_idle; /* its anonymous part (util_rss_read) */
	unsigned long long heap_idle;	/* then, bytes malloc had handed out and not back */
	json_t *disk_rows;		/* run id -> list row of a run read from disk */
	json_t *totals;			/* runs since start: metrics_count_run() */
	char sock_path[108];
	struct run_paths paths;
	char http_addr[64];		/* empty: no HTTP */
	unsigned http_port;
	struct http_server *http;
};


/* The control socket's callbacks (ctl_server_open). */
void serve_request(struct ctl_conn *c, const json_t *req, void *arg);
void serve_conn_close(struct ctl_conn *c, void *arg);
/* For HTTP (struct http_source): status, the runs list, a run's report
 * (new references, NULL if unknown). */
json_t *serve_status(void *arg);
json_t *serve_runs(void *arg);
json_t *serve_report(void *arg, const char *id);
/* A job and its run, its watchers told nothing more. */
void serve_job_free(struct job *j);

#endif
