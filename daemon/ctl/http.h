/* faultd over HTTP, on a localhost port: /metrics (Prometheus text), /runs
 * (JSON), /runs/ID (a report), /runs/ID/report.html, and / (a dashboard of
 * recent runs). Read-only; what it shows comes from the callbacks, so this
 * file knows nothing of the daemon's insides. */
#ifndef FAULTD_HTTP_H
#define FAULTD_HTTP_H

#include <event2/event.h>
#include <jansson.h>

struct http_server;

struct http_source {
	/* {"daemon": {uptime_s, queued, running: [run status...]}}; new ref. */
	json_t *(*status)(void *arg);
	/* [{run_id, state, scenario, verdict, started_at, ...}], newest
	 * first; new ref. */
	json_t *(*runs)(void *arg);
	/* A finished run's report, or NULL; new ref. */
	json_t *(*report)(void *arg, const char *run_id);
	const char *runs_dir;		/* for report.html */
	void *arg;
};

/* Listen on @addr:@port (a loopback address). NULL with errno. */
struct http_server *http__start(struct event_base *base, const char *addr, unsigned port,
				const struct http_source *src);
unsigned http__port(const struct http_server *h);	/* the bound port (0 asked) */
void http__free(struct http_server *h);

#endif
