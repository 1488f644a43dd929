#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>
/* sd-journal.h brings syslog.h, whose LOG_ERR, LOG_INFO and LOG_DEBUG
 * macros would rename our levels; the journal is given numbers below. Its
 * CODE_FUNC would be log.c's own: each line's function is sent instead. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#undef LOG_ERR
#undef LOG_INFO
#undef LOG_DEBUG

#include "log.h"
#include "log_priv.h"

static enum log_level log_level = LOG_INFO;
static const char *log_prefix = "faultd";
static enum {
	LOG_TO_STDERR,			/* timestamped lines */
	LOG_TO_JOURNAL,			/* entries with fields through the journal's socket */
	LOG_TO_STREAM,			/* "<N>" lines: a journal stream, its socket missing */
} log_to;

/* syslog(3) priorities, which the journal's PRIORITY= and a stream's "<N>"
 * prefix take. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"	/* libsystemd's own */

static const int level_prio[] = {
	[LOG_ERR] = 3, [LOG_WARN] = 4, [LOG_INFO] = 6, [LOG_DEBUG] = 7,
};

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

/* systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected a service's stderr to; the variable alone may be inherited by
 * a child whose stderr went elsewhere (systemd.exec(5)). */
bool log_use_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	log_to = LOG_TO_STDERR;
	if (env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		/* libsystemd drops an entry silently when the socket is not
		 * there: then the stream, which journald reads too, carries it. */
		log_to = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode) ?
			 LOG_TO_JOURNAL : LOG_TO_STREAM;
	return log_to != LOG_TO_STDERR;
}

/* "run_judge: run 1a2b3c: FAIL (...)": the run a line is about, by the
 * convention every run's log line follows. */
static bool find_run_id(const char *msg, char id[7])
{
	for (const char *p = strstr(msg, "run "); p; p = strstr(p + 1, "run ")) {
		size_t n = strspn(p + 4, "0123456789abcdef");

		if ((p == msg || p[-1] == ' ') && n == 6 &&
		    (p[10] == ':' || p[10] == ' ' || p[10] == '\0')) {
			memcpy(id, p + 4, 6);
			id[6] = '\0';
			return true;
		}
	}
	return false;
}

/* One entry with fields: PRIORITY, SYSLOG_IDENTIFIER, CODE_FUNC (the line's
 * leading "function:"), RUN_ID when it names a run. If the journal's socket
 * refuses, the line goes to the stream with a "<N>" prefix, which journald
 * reads as its priority. */
static void journal_msg(enum log_level level, const char *msg)
{
	char prio[16], ident[64], func[80], run[16], id[7];
	size_t n = 0, flen = strcspn(msg, ": ");
	struct iovec iov[5];
	char *text = NULL;

	snprintf(prio, sizeof(prio), "PRIORITY=%d", level_prio[level]);
	snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_prefix);
	iov[n++] = (struct iovec){.iov_base = prio, .iov_len = strlen(prio)};
	iov[n++] = (struct iovec){.iov_base = ident, .iov_len = strlen(ident)};
	if (flen && flen < 64 && msg[flen] == ':') {
		snprintf(func, sizeof(func), "CODE_FUNC=%.*s", (int)flen, msg);
		iov[n++] = (struct iovec){.iov_base = func, .iov_len = strlen(func)};
	}
	if (find_run_id(msg, id)) {
		snprintf(run, sizeof(run), "RUN_ID=%s", id);
		iov[n++] = (struct iovec){.iov_base = run, .iov_len = strlen(run)};
	}
	if (log_to == LOG_TO_JOURNAL && asprintf(&text, "MESSAGE=%s", msg) >= 0) {
		iov[n++] = (struct iovec){.iov_base = text, .iov_len = strlen(text)};
		if (sd_journal_sendv(iov, (int)n) >= 0)
			goto out;
	}
	fprintf(stderr, "<%d>%s[%s] %s\n", level_prio[level], log_prefix, level_names[level],
		msg);
out:
	free(text);
}

void log_write(enum log_level level, const char *text)
{
	if (log_to != LOG_TO_STDERR) {
		journal_msg(level, text);
	} else {
		/* One line at a time: runs log from threads of their own. */
		flockfile(stderr);
		fputs(text, stderr);
		fputc('\n', stderr);
		funlockfile(stderr);
	}
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char stamp[32], *msg = NULL, *line = NULL;
	struct timespec ts;
	struct tm tm;
	size_t len;

	if (level > log_level || vasprintf(&msg, fmt, ap) < 0)
		return;
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	if (log_to == LOG_TO_STDERR) {
		/* Stamped now, whenever the writer gets to it. */
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		if (asprintf(&line, "%s.%03ld %s[%s] %s", stamp, ts.tv_nsec / 1000000,
			     log_prefix, level_names[level], msg) < 0)
			line = NULL;
	}
	if (log_to != LOG_TO_STDERR || line) {
		if (!log_writer_take(level, line ? line : msg))
			log_write(level, line ? line : msg);
	}
	free(line);
	free(msg);
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
