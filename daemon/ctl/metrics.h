/* /metrics as Prometheus text, from what the daemon's status and run list
 * say, and the totals that outlive runs (see metrics.c for the naming). */
#ifndef FAULTD_METRICS_H
#define FAULTD_METRICS_H

#include <event2/buffer.h>
#include <jansson.h>

/* Add a finished run to @totals (the daemon's "totals" status object):
 * @status is the run's last status, @report its report or NULL. */
void metrics_count_run(json_t *totals, const json_t *status, const json_t *report);
/* @status: {"daemon": {running, queued, totals, capabilities, ...}};
 * @runs: the run list /runs serves. */
void metrics_render(struct evbuffer *b, const json_t *status, const json_t *runs);

#endif
