/* Between log.c, which formats a line, and log_writer.c, which may write
 * it on a thread of its own. */
#ifndef FAULTD_LOG_PRIV_H
#define FAULTD_LOG_PRIV_H

#include <stdbool.h>

#include "log.h"

/* @text: the whole line for stderr, the message alone for the journal. */
void log_write(enum log_level level, const char *text);
/* Queued for the writer thread (true), or false when it is not running:
 * the caller writes the line itself. A line the queue has no room for is
 * counted as dropped, and taken. */
bool log_writer_take(enum log_level level, const char *text);

#endif
