/* A report in the format a user names ("json", "text", "html", "junit",
 * "sarif"):
 * the one place that knows every reporter, above them all. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "util.h"

static void render_json(FILE *f, const void *arg)
{
	json_dumpf(arg, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
}

static void render_text(FILE *f, const void *arg)
{
	report_text(f, arg);
}

static void render_junit_one(FILE *f, const void *arg)
{
	json_t *rep = (json_t *)arg;

	report_junit(f, &rep, 1);
}

static void render_sarif_one(FILE *f, const void *arg)
{
	json_t *rep = (json_t *)arg;

	report_sarif(f, &rep, 1);
}

static const struct {
	const char *name;
	void (*render)(FILE *, const void *);
} formats[] = {
	{"json", render_json}, {"text", render_text}, {"html", NULL},
	{"junit", render_junit_one}, {"sarif", render_sarif_one},
};

bool report_format_known(const char *format)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (!strcmp(format, formats[i].name))
			return true;
	return false;
}

int report_write_format(const json_t *report, const char *format, const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (!strcmp(format, formats[i].name))
			return formats[i].render ? report_write_with(path, formats[i].render, report)
						 : report_html_write(report, path);
	return -EINVAL;
}
