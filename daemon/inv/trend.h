/* Does a per-cycle count trend upward? The rule behind fds_stable,
 * sockets_stable and heap_stable; docs/invariants.md explains it and why it
 * does not fire on warm-up. A pure function of the series. */
#ifndef FAULTD_TREND_H
#define FAULTD_TREND_H

#include <stdbool.h>

struct trend_params {
	int warmup;		/* leading cycles ignored (caches, pools filling) */
	int window;		/* the last this many samples are judged */
	int min_samples;	/* fewer samples after warm-up: no verdict yet */
	double min_slope;	/* per cycle, Theil-Sen */
	double min_rising;	/* fraction of deltas > 0 in the window */
	double tolerance;	/* above baseline by more than this: not returned */
	double limit;		/* > 0: project the cycle at which it is reached */
};

struct trend_result {
	bool fail;
	bool enough;		/* there were min_samples after warm-up */
	double slope;		/* over the final window */
	double rising;		/* fraction of rising deltas in it */
	double baseline;	/* first sample after warm-up */
	double first, last;	/* of the final window */
	int first_fail;		/* index of the sample at which the rule first held, or -1 */
	int window_start;	/* index of the final window's first sample */
	double projected;	/* index at which limit is reached, or -1 */
	int exhausted;		/* index at which the series reached limit after
				 * growing, or -1: a table that filled up and
				 * stays full is a leak, not a plateau */
	double first_slope;	/* slope when the rule first held */
};

void trend_defaults(struct trend_params *p);
void trend_eval(const double *xs, int n, const struct trend_params *p,
		struct trend_result *r);
double trend_theil_sen(const double *xs, int n);

#endif
