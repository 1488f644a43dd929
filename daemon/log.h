/* Leveled logging to stderr. Every line names its function or module:
 * log_warn("%s: socket: %s", __func__, strerror(-err)). */
#ifndef FAULTD_LOG_H
#define FAULTD_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
int log_parse_level(const char *name);	/* level, or -EINVAL */
enum log_level log_get_level(void);
void log_set_prefix(const char *prefix);	/* program name, e.g. "faultd" */
void log_route_libbpf(void);	/* libbpf's messages go through this log */

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
