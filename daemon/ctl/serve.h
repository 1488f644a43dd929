/* What faultd serves (serve.c): the run queue and the control requests. */
#ifndef FAULTD_SERVE_H
#define FAULTD_SERVE_H

#include <jansson.h>

#include "ctl.h"
#include "faultd.h"

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
