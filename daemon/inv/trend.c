#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trend.h"

#define TREND_MAX_WINDOW 64	/* Theil-Sen is quadratic in the window */

void trend_defaults(struct trend_params *p)
{
	p->warmup = 1;
	p->window = 10;
	p->min_samples = 3;
	p->min_slope = 0.5;
	p->min_rising = 0.6;
	p->tolerance = 0;
	p->limit = 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of the slopes between every pair of samples: robust to a few
 * outliers, unlike least squares. */
double trend_theil_sen(const double *xs, int n)
{
	double slopes[TREND_MAX_WINDOW * (TREND_MAX_WINDOW - 1) / 2];
	int k = 0;

	if (n > TREND_MAX_WINDOW) {
		xs += n - TREND_MAX_WINDOW;
		n = TREND_MAX_WINDOW;
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			slopes[k++] = (xs[j] - xs[i]) / (double)(j - i);
	if (k == 0)
		return 0;
	qsort(slopes, (size_t)k, sizeof(slopes[0]), cmp_double);
	return k % 2 ? slopes[k / 2] : (slopes[k / 2 - 1] + slopes[k / 2]) / 2;
}

/* The rule on the first @m samples. */
static bool rule_holds(const double *xs, int m, const struct trend_params *p,
		       struct trend_result *r)
{
	int start, len, rising = 0, half;
	double baseline, lowest;

	if (m - p->warmup < p->min_samples)
		return false;
	len = m - p->warmup < p->window ? m - p->warmup : p->window;
	start = m - len;
	baseline = xs[p->warmup];
	r->enough = true;
	r->window_start = start;
	r->slope = trend_theil_sen(xs + start, len);
	for (int i = start + 1; i < m; i++)
		rising += xs[i] > xs[i - 1];
	r->rising = len > 1 ? (double)rising / (double)(len - 1) : 0;
	r->baseline = baseline;
	r->first = xs[start];
	r->last = xs[m - 1];
	/* "Never returned": the later half of the window stays above the
	 * baseline. A server whose peers vanished keeps their sockets until
	 * its timeouts fire, then drops back: that is a return. */
	half = start + len / 2;
	lowest = xs[half];
	for (int i = half; i < m; i++)
		lowest = xs[i] < lowest ? xs[i] : lowest;
	return r->slope >= p->min_slope && r->rising >= p->min_rising &&
	       lowest > baseline + p->tolerance;
}

void trend_eval(const double *xs, int n, const struct trend_params *p,
		struct trend_result *r)
{
	struct trend_result scratch;

	memset(r, 0, sizeof(*r));
	r->first_fail = -1;
	r->projected = -1;
	r->exhausted = -1;
	r->fail = rule_holds(xs, n, p, r);
	/* At the limit the count cannot grow any more: the final window is
	 * flat, and only the way it got there tells a leak from a pool. */
	if (!r->fail && r->enough && p->limit > 0 && r->last >= p->limit &&
	    r->baseline < p->limit) {
		for (int i = p->warmup; i < n && r->exhausted < 0; i++)
			if (xs[i] >= p->limit)
				r->exhausted = i;
	}
	if (!r->fail && r->exhausted < 0)
		return;
	for (int m = p->warmup + p->min_samples; m <= n; m++) {
		memset(&scratch, 0, sizeof(scratch));
		if (rule_holds(xs, m, p, &scratch)) {
			r->first_fail = m - 1;
			r->first_slope = scratch.slope;
			break;
		}
	}
	if (!r->fail) {
		/* It filled up, but never grew like a leak on the way. */
		r->fail = r->first_fail >= 0;
		if (!r->fail)
			r->exhausted = -1;
		return;
	}
	if (p->limit > 0 && r->slope > 0)
		r->projected = (double)(n - 1) + ceil((p->limit - r->last) / r->slope);
}
