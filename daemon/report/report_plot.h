/* Private to the HTML reporter: report_html.c renders the page, report_plot.c
 * its per-cycle plots; both print through the same escaping. */
#ifndef FAULTD_REPORT_PLOT_H
#define FAULTD_REPORT_PLOT_H

#include <stdio.h>

#include <jansson.h>

/* @s escaped for HTML, and cut (on a character boundary) at 2,000 bytes. */
void report_html_esc(FILE *f, const char *s);
/* @obj's number at @key as an integer, or @dflt. */
long long report_html_int_or(const json_t *obj, const char *key, long long dflt);
/* The "Per-cycle series" section: one SVG plot per series of the cycles. */
void report_plot_all(FILE *f, const json_t *rep);

#endif
