/* The log's writer thread. A log line is formatted where it is logged and
 * handed here; this thread alone writes to stderr or the journal. A slow
 * reader (a terminal paused with Ctrl-S, a pipe read late, journald under
 * load) then holds no run's thread, and so no fault timer: beyond
 * LOG_QUEUE_MAX bytes waiting, lines are dropped and counted, and the count
 * is logged once the reader has caught up. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fifo.h"
#include "log.h"
#include "log_priv.h"

#define LOG_QUEUE_MAX (1u << 20)	/* bytes of text waiting */

struct log_item {
	struct fifo_node node;
	enum log_level level;
	size_t len;			/* of text, with its NUL */
	char text[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	pthread_t thread;
	bool running;			/* lines are queued, not written */
	bool stopping;
	struct fifo queue;
	size_t queued;			/* bytes of text in the queue */
	size_t max;			/* LOG_QUEUE_MAX, or less for a test */
	unsigned long long dropped;	/* since the last report of it */
} lw = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.more = PTHREAD_COND_INITIALIZER,
};

bool log_writer_take(enum log_level level, const char *text)
{
	size_t len = strlen(text) + 1;
	struct log_item *it = NULL;
	bool taken;

	pthread_mutex_lock(&lw.lock);
	taken = lw.running;
	if (taken && lw.queued + len <= lw.max && (it = malloc(sizeof(*it) + len))) {
		it->level = level;
		it->len = len;
		memcpy(it->text, text, len);
		fifo_push(&lw.queue, &it->node);
		lw.queued += len;
		pthread_cond_signal(&lw.more);
	} else if (taken) {
		lw.dropped++;	/* no room, or no memory */
	}
	pthread_mutex_unlock(&lw.lock);
	return taken;
}

static void *writer(void *arg)
{
	unsigned long long dropped;
	struct log_item *it;

	(void)arg;
	pthread_mutex_lock(&lw.lock);
	for (;;) {
		while (fifo_empty(&lw.queue) && !lw.dropped && !lw.stopping)
			pthread_cond_wait(&lw.more, &lw.lock);
		if ((it = fifo_pop(&lw.queue))) {
			lw.queued -= it->len;
			pthread_mutex_unlock(&lw.lock);
			log_write(it->level, it->text);
			free(it);
		} else if ((dropped = lw.dropped)) {
			/* The reader has caught up: say what it missed (a
			 * line queued like any other). */
			lw.dropped = 0;
			pthread_mutex_unlock(&lw.lock);
			log_warn("%s: %llu log lines were dropped: the log's reader fell "
				 "%zu KiB behind", __func__, dropped, lw.max >> 10);
		} else
			break;		/* stopping, and nothing is left */
		pthread_mutex_lock(&lw.lock);
	}
	pthread_mutex_unlock(&lw.lock);
	return NULL;
}

/* A child forked while the writer held the lock would wait for it for
 * ever; it has no writer thread either, so it writes its lines itself. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lw.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lw.lock);
}

static void fork_child(void)
{
	lw.running = false;
	pthread_mutex_unlock(&lw.lock);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int log_writer_start(void)
{
	static pthread_once_t atfork = PTHREAD_ONCE_INIT;
	const char *kb = getenv("FAULTD_LOG_QUEUE_KB");	/* tests: smaller only */
	sigset_t all, old;
	int err;

	pthread_once(&atfork, register_atfork);
	pthread_mutex_lock(&lw.lock);
	err = lw.running ? -EALREADY : 0;
	if (!err) {
		lw.max = LOG_QUEUE_MAX;
		if (kb && strtoul(kb, NULL, 10) && strtoul(kb, NULL, 10) < LOG_QUEUE_MAX >> 10)
			lw.max = strtoul(kb, NULL, 10) << 10;
		/* Signals are the main loop's to hear. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = -pthread_create(&lw.thread, NULL, writer, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		lw.running = !err;
		lw.stopping = false;
	}
	pthread_mutex_unlock(&lw.lock);
	return err;
}

void log_writer_stop(void)
{
	bool running;

	/* Lines logged from now on are written where they are logged; the
	 * thread writes what is queued, then ends. */
	pthread_mutex_lock(&lw.lock);
	running = lw.running;
	lw.running = false;
	lw.stopping = true;
	pthread_cond_signal(&lw.more);
	pthread_mutex_unlock(&lw.lock);
	if (running)
		pthread_join(lw.thread, NULL);
}
