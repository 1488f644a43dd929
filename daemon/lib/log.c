#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

static enum log_level log_level = LOG_INFO;
static const char *log_prefix = "faultd";

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_parse_level(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s[%s] ", stamp, ts.tv_nsec / 1000000,
		log_prefix, level_names[level]);
	vfprintf(stderr, fmt, ap);
	if (fmt[0] && fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static __thread struct log_bpf_capture *log_capture;

void log_capture_libbpf(struct log_bpf_capture *cap)
{
	if (cap)
		memset(cap, 0, sizeof(*cap));
	log_capture = cap;
}

/* Keep the last @want non-empty lines of the verifier log in @text (which
 * runs from "-- BEGIN PROG LOAD LOG --" to "-- END PROG LOAD LOG --"). */
static void capture_tail(struct log_bpf_capture *cap, char *text, int want)
{
	char *begin = strstr(text, "-- BEGIN PROG LOAD LOG --");
	char *end = strstr(text, "-- END PROG LOAD LOG --");
	char *p, *lines[8];
	int n = 0;

	if (!begin || !end || end < begin)
		return;
	*end = '\0';
	begin = strchr(begin, '\n');
	for (p = begin ? strtok(begin, "\n") : NULL; p; p = strtok(NULL, "\n")) {
		while (*p == ' ' || *p == '\t')
			p++;
		/* The verifier's closing statistics say nothing of why. */
		if (!*p || !strncmp(p, "processed ", 10) || !strncmp(p, "verification time", 17))
			continue;
		if (n == want) {
			memmove(lines, lines + 1, sizeof(lines[0]) * (size_t)(want - 1));
			n--;
		}
		lines[n++] = p;
	}
	cap->tail[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t len = strlen(cap->tail);

		snprintf(cap->tail + len, sizeof(cap->tail) - len, "%s%s", i ? " | " : "",
			 lines[i]);
	}
}

/* "libbpf: prog 'proc_signal': failed to load: -13": the first program
 * named as failed is the one the kernel (or libbpf) refused. */
static void capture_line(struct log_bpf_capture *cap, char *line)
{
	char *name = strstr(line, "prog '"), *quote;
	size_t n;

	if (strstr(line, "-- BEGIN PROG LOAD LOG --")) {
		capture_tail(cap, line, 3);
		return;
	}
	if (cap->prog[0] || !strstr(line, "failed"))
		return;
	quote = name ? strchr(name + 6, '\'') : NULL;
	if (!cap->failure[0] || quote)
		snprintf(cap->failure, sizeof(cap->failure), "%s",
			 strncmp(line, "libbpf: ", 8) ? line : line + 8);
	if (quote)
		snprintf(cap->prog, sizeof(cap->prog), "%.*s", (int)(quote - name - 6), name + 6);
	n = strlen(cap->failure);
	while (n && cap->failure[n - 1] == '\n')
		cap->failure[--n] = '\0';
}

static int log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level mine = level == LIBBPF_WARN ? LOG_WARN :
			      level == LIBBPF_INFO ? LOG_DEBUG : LOG_DEBUG;
	char line[1024], *text = NULL;
	size_t n;
	va_list copy;

	if (log_capture && level == LIBBPF_WARN) {
		va_copy(copy, ap);
		if (vasprintf(&text, fmt, copy) >= 0)
			capture_line(log_capture, text);
		va_end(copy);
		free(text);
		mine = LOG_DEBUG;
	}
	if (mine > log_level)
		return 0;
	/* libbpf's lines start with "libbpf: " and end with a newline. */
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_msg(mine, "%s%s", strncmp(line, "libbpf: ", 8) ? "libbpf: " : "", line);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(log_libbpf);
}
