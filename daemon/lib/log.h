/* Leveled logging to stderr, or to the journal with fields when systemd
 * connected stderr to it. Every line names its function or module:
 * log_warn("%s: socket: %s", __func__, strerror(-err)). */
#ifndef FAULTD_LOG_H
#define FAULTD_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
int log_parse_level(const char *name);	/* level, or -EINVAL */
enum log_level log_get_level(void);
void log_set_prefix(const char *prefix);	/* program name, e.g. "faultd" */
void log_route_libbpf(void);	/* libbpf's messages go through this log */
/* Under systemd (JOURNAL_STREAM names stderr), send each line to the
 * journal as an entry with PRIORITY, SYSLOG_IDENTIFIER, CODE_FUNC and
 * RUN_ID (when it names a run); otherwise keep stderr. True if the
 * journal. */
bool log_use_journal(void);

/* What libbpf said while an object was loading: the first program it named
 * as failed, that failure's line, and the last lines of the verifier's log.
 * While a capture is set (per thread), libbpf's warnings go into it and to
 * the debug log only, so a refused optional program is logged once, by its
 * caller, and not as a page of verifier output. */
struct log_bpf_capture {
	char prog[64];			/* "" if libbpf named none */
	char failure[256];		/* "prog 'x': failed to load: -13" */
	char tail[512];			/* the verifier's last lines, ' | ' between */
};
void log_capture_libbpf(struct log_bpf_capture *cap);	/* NULL ends it */

/* From log_writer_start on, lines are written by a thread of their own, so
 * a slow reader of the log holds no other thread; past 1 MiB waiting they
 * are dropped and counted. log_writer_stop writes what waits, and lines
 * are written where they are logged again. */
int log_writer_start(void);	/* 0 or -errno */
void log_writer_stop(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
