/* qpair: incident 3 as a workload. An NVMe-oF-target-like program keeps
 * --qpairs queue pairs connected and churns them: a connection-manager
 * thread makes each qpair (calloc, as SPDK's nvmf_rdma_connect does) and
 * hands it to one of --io-threads I/O threads, which read and write 4 KiB
 * blocks of a backing file for it through their own io_uring and reap the
 * completions asynchronously. A disconnect drains the qpair: no new I/O, and
 * when its last outstanding completion arrives the I/O thread raises a "last
 * WQE reached" event that an event thread processes, touching the qpair.
 *
 * Correct (default): the event holds a reference, so the qpair is destroyed
 * only after the event thread has processed it. With --bug=event-after-destroy
 * the I/O thread destroys the qpair on drain, as SPDK's
 * nvmf_rdma_destroy_drained_qpair did, and the event thread then writes to
 * the freed 328-byte qpair, as nvmf_rdma_qpair_process_last_wqe_event did.
 *
 * Lifecycle goes out as faultd USDT probes: obj_create, obj_event (io_done,
 * disconnect, last_wqe) and obj_destroy of kind "qpair". SIGUSR1 disconnects
 * and reconnects every qpair at once; SIGTERM, SIGINT or the end of
 * --duration-s drain and destroy everything and print a summary line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <liburing.h>

#include "faultd/usdt.h"
#include "hc.h"

#define QP_BLOCK		4096	/* bytes per I/O */
#define QP_DEPTH		8	/* outstanding I/Os per qpair */
#define QP_IO_REQS		64	/* I/O slots (and buffers) per I/O thread */
#define QP_RING_MIN		256	/* io_uring SQ entries, at least */
#define QP_BURST_S		0.01	/* after a stall, up to 10 ms of I/O may go at once */
#define QP_DRAIN_WAIT_S		10	/* past this a shutdown drain has hung: exit 1 */
#define QP_MAX_QPAIRS		4096
#define QP_MAX_IO_THREADS	64
#define QP_MAX_IOPS		10000000
#define QP_MAX_SIZE_MB		65536

/* user_data of the I/O thread's eventfd read; every other user_data is a
 * pointer: a struct qp_req, or a struct qpair with QP_UD_DRAIN set. Both are
 * at least 8-byte aligned, so the low bit is free for the tag. */
#define QP_UD_WAKE		0
#define QP_UD_DRAIN		1

enum qp_bug {
	QP_BUG_NONE,
	QP_BUG_EVENT_AFTER_DESTROY,	/* incident 3: destroy on drain, event afterwards */
};

enum qp_state {
	QP_ACTIVE,			/* takes new I/O */
	QP_DRAINING,			/* disconnected: waits for its outstanding I/O */
	QP_DRAINED,			/* last completion seen; the last_wqe event is out */
};

/* Bits of qpair.pending: what the connection manager asked of the I/O thread. */
#define QP_OP_CONNECT		1u
#define QP_OP_DISCONNECT	2u

struct qp_event;

/* 328 bytes like SPDK's struct spdk_nvmf_rdma_qpair, and the field the last
 * WQE handler writes sits 0x138 bytes in, where SPDK's ASan report found the
 * write, so a report from this program reads like the original. */
struct qpair {
	struct qpair *prev, *next;	/* owner I/O thread's list; glibc's tcache reuses these */
	struct qpair *inbox_next;	/* owner's inbox, while pending != 0 */
	uint64_t id;			/* monotonic, never reused */
	struct qp_event *ev;		/* the last_wqe event, made with the qpair so raising it cannot fail */
	unsigned int refs;		/* atomic: the connection's, plus one per event in flight */
	unsigned int pending;		/* QP_OP_*, under the owner's lock */
	enum qp_state state;		/* owner I/O thread only */
	unsigned int outstanding;	/* I/Os (and the drain nop) in the ring */
	unsigned int io_idx;		/* owner I/O thread */
	uint32_t rsvd0;
	uint64_t connect_ns, disconnect_ns;
	uint64_t reads, writes;		/* completed */
	uint64_t errors;		/* completions with an error or a short count */
	char subnqn[208];		/* what a host would have asked to connect to */
	uint64_t last_wqe_ns;		/* written by the event thread: the use after free */
	uint64_t last_wqe_seen;
};
_Static_assert(sizeof(struct qpair) == 328, "qpair is as large as SPDK's rdma qpair");
_Static_assert(offsetof(struct qpair, last_wqe_ns) == 0x138,
	       "the last WQE handler writes where SPDK's did");

/* Allocated apart from the qpair so that, in the buggy ordering, the event
 * survives the qpair it names. */
struct qp_event {
	struct qp_event *next;
	uint64_t id;			/* copied while the qpair was alive */
	struct qpair *qp;
};

struct qp_req {
	struct qp_req *next_free;
	struct qpair *qp;
	void *buf;			/* QP_BLOCK bytes of io_thread.bufs */
	int write;
};

struct qp_opts {
	const char *file;		/* NULL: $FAULTD_RUN_DIR/qpair.data or a temp file */
	unsigned int qpairs;
	unsigned int churn_ms;		/* 0: no churn */
	unsigned int io_threads;
	unsigned int iops;		/* 0: as fast as possible */
	unsigned int duration_s;	/* 0: until a signal */
	unsigned int size_mb;
	enum qp_bug bug;
	int help;
};

struct target;

struct io_thread {
	struct target *t;
	unsigned int idx;
	pthread_t thr;
	int started;
	struct io_uring ring;
	int ring_ok;
	int wake_fd;			/* eventfd: the connection manager posted to the inbox */
	uint64_t wake_val;		/* the kernel reads the eventfd into it */
	pthread_mutex_t lock;		/* guards inbox and stopping */
	struct qpair *inbox, *inbox_tail;
	int stopping;
	struct qpair *qpairs;		/* owned; list through prev/next */
	struct qpair *rr;		/* where the next fill starts, for fairness */
	unsigned int nqpairs;
	struct qp_req *reqs, *free_reqs;
	void *bufs;
	unsigned int inflight;		/* CQEs to come, besides the wake read */
	uint64_t rng;			/* xorshift64 state for offsets and read/write */
	uint64_t ios;			/* completed reads and writes */
	uint64_t errors;
	int err;			/* fatal ring error: the thread has stopped */
};

struct target {
	const struct qp_opts *o;
	int fd;				/* backing file */
	char *path;			/* to unlink at exit; NULL: keep the file */
	uint64_t nblocks;
	struct io_thread *io;
	pthread_t cm_thr, ev_thr;
	int cm_started, ev_started;
	int sig_fd;

	/* Connection manager (its thread only). */
	struct qpair **conn;		/* connected, oldest first */
	unsigned int nconn;
	unsigned int next_io;
	uint64_t next_id;
	uint64_t created;
	uint64_t storms;
	uint64_t start_ns, stop_ns;
	int cm_err;

	/* Event thread. */
	pthread_mutex_t ev_lock;	/* guards ev_head, ev_tail, ev_stopping */
	struct qp_event *ev_head, *ev_tail;
	int ev_stopping;
	int ev_fd;			/* eventfd: an event was queued */
	uint64_t last_events;		/* processed; event thread only */

	/* Rate limit, shared by the I/O threads. */
	pthread_mutex_t rate_lock;	/* guards tokens and refill_ns */
	double rate;			/* I/Os per ns; 0: unlimited */
	double tokens, burst;
	uint64_t refill_ns;

	/* Liveness, for the shutdown drain. */
	pthread_mutex_t live_lock;
	pthread_cond_t live_cond;	/* live dropped to 0 */
	uint64_t live, destroyed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* prctl rather than pthread_setname_np: ASan intercepts prctl only, and
 * then names the thread in its reports ("thread T1 (qp-event)"). */
static void thread_name(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

/* eventfd writes fail only on counter overflow, after 2^64-2 posts. */
static void wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "%s: eventfd write: %s\n", __func__, strerror(errno));
}

/* --- qpair lifetime ------------------------------------------------------- */

/* Called from whichever thread drops the last reference. With the fix that
 * is the event thread, or the I/O thread if the event was processed before
 * it let go of its own; either way after the event. With the bug it is the
 * I/O thread that saw the last completion, before the event. */
static void qpair_destroy(struct target *t, struct qpair *qp)
{
	FAULTD_OBJ_DESTROY("qpair", qp->id);
	free(qp->ev);
	free(qp);
	pthread_mutex_lock(&t->live_lock);
	t->destroyed++;
	if (--t->live == 0)
		pthread_cond_broadcast(&t->live_cond);
	pthread_mutex_unlock(&t->live_lock);
}

static void qpair_get(struct qpair *qp)
{
	__atomic_add_fetch(&qp->refs, 1, __ATOMIC_RELAXED);
}

static void qpair_put(struct target *t, struct qpair *qp)
{
	if (__atomic_sub_fetch(&qp->refs, 1, __ATOMIC_ACQ_REL) == 0)
		qpair_destroy(t, qp);
}

/* In the connection manager's thread, as nvmf_rdma_connect: the allocation
 * stack of the ASan report. */
static struct qpair *qpair_new(struct target *t)
{
	struct qpair *qp;
	int err;

	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		err = -errno;
		goto out;
	}
	qp->ev = calloc(1, sizeof(*qp->ev));
	if (!qp->ev) {
		err = -errno;
		goto err_free_qp;
	}
	qp->id = t->next_id++;
	qp->refs = 1;
	qp->state = QP_ACTIVE;
	qp->connect_ns = now_ns();
	snprintf(qp->subnqn, sizeof(qp->subnqn), "nqn.2016-06.io.spdk:cnode%llu",
		 (unsigned long long)qp->id);
	return qp;

err_free_qp:
	free(qp);
out:
	errno = -err;
	return NULL;
}

/* --- event thread --------------------------------------------------------- */

static void event_post(struct target *t, struct qp_event *ev)
{
	pthread_mutex_lock(&t->ev_lock);
	ev->next = NULL;
	if (t->ev_tail)
		t->ev_tail->next = ev;
	else
		t->ev_head = ev;
	t->ev_tail = ev;
	pthread_mutex_unlock(&t->ev_lock);
	wake(t->ev_fd);
}

/* As nvmf_rdma_qpair_process_last_wqe_event: record that the last WQE was
 * reached, then let go of the qpair. With the bug the qpair is already
 * freed, and the write below is the one ASan reports. */
static void event_last_wqe(struct target *t, struct qp_event *ev)
{
	struct qpair *qp = ev->qp;

	FAULTD_OBJ_EVENT("qpair", ev->id, "last_wqe");
	qp->last_wqe_ns = now_ns();
	qp->last_wqe_seen++;
	t->last_events++;
	if (t->o->bug == QP_BUG_NONE) {
		/* The event owned a reference; the connection's is gone, so
		 * this is where the qpair dies. */
		qp->ev = NULL;
		qpair_put(t, qp);
	}
	free(ev);
}

static void *event_run(void *arg)
{
	struct target *t = arg;
	struct qp_event *ev, *next;
	uint64_t n;
	int stop;

	thread_name("qp-event");
	for (;;) {
		pthread_mutex_lock(&t->ev_lock);
		ev = t->ev_head;
		t->ev_head = t->ev_tail = NULL;
		stop = t->ev_stopping;
		pthread_mutex_unlock(&t->ev_lock);
		if (!ev) {
			if (stop)
				break;
			/* Blocks until event_post or the stop request writes. */
			if (read(t->ev_fd, &n, sizeof(n)) < 0 && errno != EINTR) {
				fprintf(stderr, "%s: eventfd read: %s\n", __func__,
					strerror(errno));
				break;
			}
			continue;
		}
		for (; ev; ev = next) {
			next = ev->next;
			event_last_wqe(t, ev);
		}
	}
	return NULL;
}

/* --- I/O threads ---------------------------------------------------------- */

/* A full SQ is flushed to the kernel once; NULL if that did not make room. */
static struct io_uring_sqe *io_sqe(struct io_thread *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe && io_uring_submit(&io->ring) >= 0)
		sqe = io_uring_get_sqe(&io->ring);
	return sqe;
}

static int io_arm_wake(struct io_thread *io)
{
	struct io_uring_sqe *sqe = io_sqe(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, io->wake_fd, &io->wake_val, sizeof(io->wake_val), 0);
	io_uring_sqe_set_data64(sqe, QP_UD_WAKE);
	return 0;
}

static void io_list_del(struct io_thread *io, struct qpair *qp)
{
	if (io->rr == qp)
		io->rr = qp->next;
	if (qp->prev)
		qp->prev->next = qp->next;
	else
		io->qpairs = qp->next;
	if (qp->next)
		qp->next->prev = qp->prev;
	qp->prev = qp->next = NULL;
	io->nqpairs--;
}

/* The qpair's last completion is in: raise "last WQE reached" for the event
 * thread, as nvmf_rdma_handle_last_wqe_reached does. */
static void qpair_drained(struct io_thread *io, struct qpair *qp)
{
	struct target *t = io->t;
	struct qp_event *ev = qp->ev;

	io_list_del(io, qp);
	qp->state = QP_DRAINED;
	/* The event carries its own copy of the id: with the bug the qpair is
	 * gone before the event is processed, and the probe must still name it. */
	ev->id = qp->id;
	ev->qp = qp;
	if (t->o->bug == QP_BUG_EVENT_AFTER_DESTROY) {
		/* The bug, as nvmf_rdma_destroy_drained_qpair: nothing is left
		 * in the ring, so the qpair is thought unused and destroyed,
		 * although the event about it has not been processed. */
		qp->ev = NULL;
		qpair_destroy(t, qp);
		event_post(t, ev);
	} else {
		/* The fix: the event holds a reference, so the qpair
		 * outlives it. */
		qpair_get(qp);
		event_post(t, ev);
		qpair_put(t, qp);
	}
}

static void io_connect(struct io_thread *io, struct qpair *qp)
{
	qp->prev = NULL;
	qp->next = io->qpairs;
	if (io->qpairs)
		io->qpairs->prev = qp;
	io->qpairs = qp;
	io->nqpairs++;
	FAULTD_OBJ_EVENT("qpair", qp->id, "connect");
}

/* No new I/O from here on. An idle qpair still gets its last event through
 * the ring: a nop stands in for the flush of an RDMA queue pair that moved
 * to the error state, so the event always follows a completion. */
static void io_disconnect(struct io_thread *io, struct qpair *qp)
{
	struct io_uring_sqe *sqe;

	FAULTD_OBJ_EVENT("qpair", qp->id, "disconnect");
	qp->state = QP_DRAINING;
	qp->disconnect_ns = now_ns();
	if (qp->outstanding)
		goto out;	/* the last of them raises the event */
	sqe = io_sqe(io);
	if (!sqe) {
		/* No room in the ring: raise it here rather than never. */
		qpair_drained(io, qp);
		goto out;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)qp | QP_UD_DRAIN);
	qp->outstanding++;
	io->inflight++;
out:
	return;
}

/* Returns nonzero once asked to stop. */
static int io_take_inbox(struct io_thread *io)
{
	struct qpair *qp, *next;
	unsigned int ops;
	int stop;

	pthread_mutex_lock(&io->lock);
	qp = io->inbox;
	io->inbox = io->inbox_tail = NULL;
	stop = io->stopping;
	for (; qp; qp = next) {
		next = qp->inbox_next;
		ops = qp->pending;
		qp->pending = 0;
		qp->inbox_next = NULL;
		/* Both bits may be set when a storm follows a connect at once. */
		if (ops & QP_OP_CONNECT)
			io_connect(io, qp);
		if (ops & QP_OP_DISCONNECT)
			io_disconnect(io, qp);
	}
	pthread_mutex_unlock(&io->lock);
	return stop;
}

/* One token bucket for all I/O threads, so that --iops is the total
 * however the qpairs happen to be spread over the threads. Returns 0 and
 * takes a token, or returns the ns until the next one is due. */
static uint64_t rate_take(struct target *t)
{
	uint64_t now, wait_ns = 0;

	if (!t->rate)
		goto out;
	pthread_mutex_lock(&t->rate_lock);
	now = now_ns();
	t->tokens += (double)(now - t->refill_ns) * t->rate;
	if (t->tokens > t->burst)
		t->tokens = t->burst;
	t->refill_ns = now;
	if (t->tokens >= 1.0)
		t->tokens -= 1.0;
	else
		wait_ns = (uint64_t)((1.0 - t->tokens) / t->rate) + 1;
	pthread_mutex_unlock(&t->rate_lock);
out:
	return wait_ns;
}

static int io_submit_one(struct io_thread *io, struct qpair *qp)
{
	struct target *t = io->t;
	struct qp_req *req = io->free_reqs;
	struct io_uring_sqe *sqe;
	uint64_t r = xorshift64(&io->rng);
	off_t off = (off_t)((r >> 1) % t->nblocks) * QP_BLOCK;

	sqe = io_sqe(io);
	if (!sqe)
		return -EBUSY;
	io->free_reqs = req->next_free;
	req->qp = qp;
	req->write = (int)(r & 1);
	if (req->write) {
		/* A header that says who wrote the block, as a host would. */
		memcpy(req->buf, &qp->id, sizeof(qp->id));
		io_uring_prep_write(sqe, t->fd, req->buf, QP_BLOCK, (uint64_t)off);
	} else {
		io_uring_prep_read(sqe, t->fd, req->buf, QP_BLOCK, (uint64_t)off);
	}
	io_uring_sqe_set_data(sqe, req);
	qp->outstanding++;
	io->inflight++;
	return 0;
}

/* One I/O per eligible qpair per pass, starting where the last fill left
 * off, so a rate limit shares out evenly. Returns how long to wait for the
 * next token in ns if a qpair has room but the budget is spent, else 0. */
static uint64_t io_fill(struct io_thread *io)
{
	struct qpair *start = io->rr ? io->rr : io->qpairs, *qp;
	uint64_t wait_ns = 0;
	unsigned int k;
	int progress = 1;

	if (!start)
		return 0;
	while (progress) {
		progress = 0;
		qp = start;
		for (k = 0; k < io->nqpairs; k++, qp = qp->next ? qp->next : io->qpairs) {
			if (qp->state != QP_ACTIVE || qp->outstanding >= QP_DEPTH)
				continue;
			/* Whoever was refused goes first next time. */
			io->rr = qp;
			if (!io->free_reqs)
				goto out;
			/* A token taken and then not used for want of an
			 * SQE is lost: rare, and only ever under the rate. */
			wait_ns = rate_take(io->t);
			if (wait_ns || io_submit_one(io, qp))
				goto out;
			progress = 1;
		}
	}
	io->rr = start->next;
out:
	return wait_ns;
}

static void io_complete(struct io_thread *io, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct qp_req *req;
	struct qpair *qp;

	if (ud == QP_UD_WAKE) {
		if (cqe->res < 0)
			fprintf(stderr, "%s: io%u: eventfd read: %s\n", __func__, io->idx,
				strerror(-cqe->res));
		if (io_arm_wake(io))
			fprintf(stderr, "%s: io%u: cannot re-arm the wake read\n", __func__,
				io->idx);
		return;
	}
	io->inflight--;
	if (ud & QP_UD_DRAIN) {
		qp = (struct qpair *)(uintptr_t)(ud & ~(uint64_t)QP_UD_DRAIN);
	} else {
		req = (struct qp_req *)(uintptr_t)ud;
		qp = req->qp;
		if (cqe->res != QP_BLOCK) {
			/* Counted, and the first one shown: a full disk or a
			 * truncated file should not pass unnoticed. */
			if (!io->errors++)
				fprintf(stderr, "%s: io%u: qpair %llu %s: %s\n", __func__,
					io->idx, (unsigned long long)qp->id,
					req->write ? "write" : "read",
					cqe->res < 0 ? strerror(-cqe->res) : "short count");
			qp->errors++;
		} else if (req->write) {
			qp->writes++;
		} else {
			qp->reads++;
		}
		io->ios++;
		FAULTD_OBJ_EVENT("qpair", qp->id, "io_done");
		req->qp = NULL;
		req->next_free = io->free_reqs;
		io->free_reqs = req;
	}
	if (--qp->outstanding == 0 && qp->state == QP_DRAINING)
		qpair_drained(io, qp);
}

/* Submits, then sleeps until a completion is in or wait_ns (0: no limit)
 * have passed. The sleep is a ppoll on the ring's fd rather than a wait in
 * io_uring_enter: valgrind (3.19) holds its big lock across io_uring_enter,
 * so a thread waiting there would stop every other thread, and the one that
 * was to wake it. A completion arriving between the check and the ppoll
 * still wakes it: ppoll looks at the ring when it starts. */
static int io_wait(struct io_thread *io, uint64_t wait_ns)
{
	struct pollfd pfd = {.fd = io->ring.ring_fd, .events = POLLIN};
	struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
			      .tv_nsec = (long)(wait_ns % 1000000000ull)};
	int err;

	/* With I/O in flight and no deadline the kernel will complete
	 * something on its own, so waiting in io_uring_enter cannot hang, and
	 * saves a syscall per batch. */
	if (io->inflight && !wait_ns)
		err = io_uring_submit_and_wait(&io->ring, 1);
	else
		err = io_uring_submit(&io->ring);
	/* EBUSY, EAGAIN: the kernel wants completions reaped first. */
	if (err < 0 && err != -EBUSY && err != -EAGAIN && err != -EINTR)
		goto out;
	err = 0;
	if (io_uring_cq_ready(&io->ring))
		goto out;
	if (ppoll(&pfd, 1, wait_ns ? &ts : NULL, NULL) < 0 && errno != EINTR)
		err = -errno;
out:
	return err;
}

static void *io_run(void *arg)
{
	struct io_thread *io = arg;
	struct io_uring_cqe *cqe;
	uint64_t wait_ns;
	unsigned int head, n;
	char name[16];
	int stop, err;

	snprintf(name, sizeof(name), "qp-io%u", io->idx);
	thread_name(name);
	err = io_arm_wake(io);
	if (err)
		goto out;
	for (;;) {
		stop = io_take_inbox(io);
		if (stop && !io->nqpairs && !io->inflight)
			break;
		wait_ns = io_fill(io);
		err = io_wait(io, wait_ns);
		if (err)
			goto out;
		n = 0;
		io_uring_for_each_cqe(&io->ring, head, cqe) {
			io_complete(io, cqe);
			n++;
		}
		io_uring_cq_advance(&io->ring, n);
	}
	err = 0;
out:
	if (err) {
		fprintf(stderr, "%s: io%u: io_uring: %s\n", __func__, io->idx, strerror(-err));
		io->err = err;
	}
	return NULL;
}

static void io_post(struct io_thread *io, struct qpair *qp, unsigned int op)
{
	pthread_mutex_lock(&io->lock);
	if (!qp->pending) {
		qp->inbox_next = NULL;
		if (io->inbox_tail)
			io->inbox_tail->inbox_next = qp;
		else
			io->inbox = qp;
		io->inbox_tail = qp;
	}
	qp->pending |= op;
	pthread_mutex_unlock(&io->lock);
	wake(io->wake_fd);
}

static void io_stop(struct io_thread *io)
{
	pthread_mutex_lock(&io->lock);
	io->stopping = 1;
	pthread_mutex_unlock(&io->lock);
	wake(io->wake_fd);
}

/* Ring entries: the I/O slots, one drain nop per qpair it may hold during a
 * storm (twice its share), and the wake read. */
static int io_init(struct target *t, struct io_thread *io, unsigned int idx)
{
	const struct qp_opts *o = t->o;
	unsigned int share = (o->qpairs + o->io_threads - 1) / o->io_threads;
	unsigned int entries = QP_RING_MIN, i;
	int err;

	io->t = t;
	io->idx = idx;
	io->wake_fd = -1;
	io->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(idx + 1) << 32) ^ now_ns();
	pthread_mutex_init(&io->lock, NULL);
	while (entries < QP_IO_REQS + 2 * share + 1 && entries < 32768)
		entries *= 2;
	err = io_uring_queue_init(entries, &io->ring, 0);
	if (err) {
		fprintf(stderr, "%s: io_uring_queue_init(%u): %s (errno %d)\n", __func__,
			entries, strerror(-err), -err);
		goto out;
	}
	io->ring_ok = 1;
	io->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (io->wake_fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: eventfd: %s\n", __func__, strerror(-err));
		goto out;
	}
	io->bufs = aligned_alloc(QP_BLOCK, (size_t)QP_IO_REQS * QP_BLOCK);
	io->reqs = calloc(QP_IO_REQS, sizeof(*io->reqs));
	if (!io->bufs || !io->reqs) {
		err = -ENOMEM;
		fprintf(stderr, "%s: out of memory\n", __func__);
		goto out;
	}
	/* Written blocks carry this pattern behind their header; reads
	 * overwrite it, so it is never read uninitialised either way. */
	memset(io->bufs, 0xa5, (size_t)QP_IO_REQS * QP_BLOCK);
	for (i = 0; i < QP_IO_REQS; i++) {
		io->reqs[i].buf = (char *)io->bufs + (size_t)i * QP_BLOCK;
		io->reqs[i].next_free = io->free_reqs;
		io->free_reqs = &io->reqs[i];
	}
	err = 0;
out:
	return err;
}

/* Safe on a partly initialised io_thread; the thread has been joined. */
static void io_fini(struct io_thread *io)
{
	if (!io->t)
		return;		/* io_init never ran */
	if (io->ring_ok)
		io_uring_queue_exit(&io->ring);
	if (io->wake_fd >= 0)
		close(io->wake_fd);
	free(io->reqs);
	free(io->bufs);
	pthread_mutex_destroy(&io->lock);
}

/* --- connection manager ---------------------------------------------------- */

static int cm_connect(struct target *t)
{
	struct qpair *qp;
	struct io_thread *io;
	int err;

	qp = qpair_new(t);
	if (!qp) {
		err = -errno;
		fprintf(stderr, "%s: qpair: %s\n", __func__, strerror(-err));
		goto out;
	}
	FAULTD_OBJ_CREATE("qpair", qp->id);
	t->created++;
	FAULTD_COUNTER("connects", t->created);
	pthread_mutex_lock(&t->live_lock);
	t->live++;
	pthread_mutex_unlock(&t->live_lock);
	qp->io_idx = t->next_io;
	t->next_io = (t->next_io + 1) % t->o->io_threads;
	io = &t->io[qp->io_idx];
	t->conn[t->nconn++] = qp;
	io_post(io, qp, QP_OP_CONNECT);
	err = 0;
out:
	return err;
}

/* The qpair stays valid until its I/O thread has drained it, which cannot
 * start before this request reaches it. */
static void cm_disconnect_oldest(struct target *t)
{
	struct qpair *qp = t->conn[0];

	if (!t->nconn)
		return;
	t->nconn--;
	memmove(&t->conn[0], &t->conn[1], t->nconn * sizeof(t->conn[0]));
	io_post(&t->io[qp->io_idx], qp, QP_OP_DISCONNECT);
}

static int cm_fill(struct target *t)
{
	int err = 0;

	while (t->nconn < t->o->qpairs && !err)
		err = cm_connect(t);
	return err;
}

/* SIGUSR1: every qpair goes at once and as many come back, the connect /
 * disconnect storm faultd's scenario asks for. */
static int cm_storm(struct target *t)
{
	t->storms++;
	FAULTD_COUNTER("storms", t->storms);
	while (t->nconn)
		cm_disconnect_oldest(t);
	return cm_fill(t);
}

/* Disconnects everything and waits, bounded, until every qpair is destroyed. */
static int cm_drain_all(struct target *t)
{
	struct timespec deadline;
	int err = 0;

	while (t->nconn)
		cm_disconnect_oldest(t);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += QP_DRAIN_WAIT_S;
	pthread_mutex_lock(&t->live_lock);
	while (t->live && !err)
		err = -pthread_cond_timedwait(&t->live_cond, &t->live_lock, &deadline);
	if (err)
		fprintf(stderr, "%s: %llu qpairs not destroyed after %d s\n", __func__,
			(unsigned long long)t->live, QP_DRAIN_WAIT_S);
	pthread_mutex_unlock(&t->live_lock);
	return err;
}

static void *cm_run(void *arg)
{
	struct target *t = arg;
	const struct qp_opts *o = t->o;
	struct itimerspec its = {0};
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	uint64_t deadline = 0, now, ticks;
	int timeout, tfd, err;

	thread_name("qp-cm");
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0) {
		err = -errno;
		fprintf(stderr, "%s: timerfd_create: %s\n", __func__, strerror(-err));
		goto out;
	}
	if (o->churn_ms) {
		its.it_value.tv_sec = o->churn_ms / 1000;
		its.it_value.tv_nsec = (long)(o->churn_ms % 1000) * 1000000;
		its.it_interval = its.it_value;
		if (timerfd_settime(tfd, 0, &its, NULL) < 0) {
			err = -errno;
			fprintf(stderr, "%s: timerfd_settime: %s\n", __func__, strerror(-err));
			goto err_close_tfd;
		}
	}
	if (o->duration_s)
		deadline = t->start_ns + (uint64_t)o->duration_s * 1000000000ull;
	err = cm_fill(t);
	if (err)
		goto err_drain;
	pfd[0] = (struct pollfd){.fd = t->sig_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = tfd, .events = POLLIN};
	for (;;) {
		timeout = -1;
		if (deadline) {
			now = now_ns();
			if (now >= deadline)
				break;
			timeout = (int)((deadline - now + 999999) / 1000000);
		}
		if (poll(pfd, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "%s: poll: %s\n", __func__, strerror(-err));
			goto err_drain;
		}
		if (pfd[0].revents & POLLIN) {
			if (read(t->sig_fd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo != SIGUSR1)
				break;
			err = cm_storm(t);
			if (err)
				goto err_drain;
		}
		if ((pfd[1].revents & POLLIN) && read(tfd, &ticks, sizeof(ticks)) > 0) {
			/* Ticks missed while busy are not made up: one churn per wakeup. */
			cm_disconnect_oldest(t);
			err = cm_connect(t);
			if (err)
				goto err_drain;
		}
	}
	err = 0;
err_drain:
	t->stop_ns = now_ns();
	if (cm_drain_all(t) && !err)
		err = -ETIMEDOUT;
err_close_tfd:
	close(tfd);
out:
	t->cm_err = err;
	return NULL;
}

/* --- backing file ---------------------------------------------------------- */

/* --file is the caller's and stays; a file we pick is unlinked once open. */
static int file_open(struct target *t)
{
	const struct qp_opts *o = t->o;
	const char *run_dir = getenv("FAULTD_RUN_DIR");
	const char *tmp = getenv("TMPDIR");
	off_t size = (off_t)o->size_mb << 20;
	int err;

	if (o->file) {
		t->fd = open(o->file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	} else if (run_dir && *run_dir) {
		if (asprintf(&t->path, "%s/qpair.data", run_dir) < 0) {
			t->path = NULL;
			err = -ENOMEM;
			goto out;
		}
		t->fd = open(t->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	} else {
		if (asprintf(&t->path, "%s/qpair.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
			t->path = NULL;
			err = -ENOMEM;
			goto out;
		}
		t->fd = mkostemp(t->path, O_CLOEXEC);
	}
	if (t->fd < 0) {
		err = -errno;
		goto err_free_path;
	}
	/* Reads of never-written blocks must find the file's end beyond them. */
	err = -posix_fallocate(t->fd, 0, size);
	if (err)
		goto err_close;
	/* A file we picked goes at once, so that even a run ASan aborts
	 * leaves no 16 MiB behind; the descriptor keeps it until exit. */
	if (t->path && unlink(t->path) < 0) {
		err = -errno;
		goto err_close;
	}
	t->nblocks = (uint64_t)size / QP_BLOCK;
	return 0;

err_close:
	close(t->fd);
	t->fd = -1;
	if (t->path)
		unlink(t->path);
err_free_path:
	fprintf(stderr, "%s: %s: %s\n", __func__, o->file ? o->file : t->path ? t->path : "?",
		strerror(-err));
	free(t->path);
	t->path = NULL;
out:
	return err;
}

/* --- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qpair [--qpairs N] [--churn-ms MS] [--io-threads N] [--iops N]\n"
		"             [--file PATH] [--size-mb N] [--duration-s S]\n"
		"             [--bug=event-after-destroy] [--help]\n"
		"An NVMe-oF-target-like workload: queue pairs connect, do 4 KiB io_uring\n"
		"reads and writes to a file, disconnect, drain and are destroyed.\n"
		"  --qpairs N          qpairs kept connected (default 8)\n"
		"  --churn-ms MS       disconnect one and connect one this often (default 200;\n"
		"                      0: never)\n"
		"  --io-threads N      I/O threads, each with its own io_uring (default 2)\n"
		"  --iops N            total I/O rate (default 5000; 0: as fast as possible)\n"
		"  --file PATH         backing file, kept (default $FAULTD_RUN_DIR/qpair.data,\n"
		"                      else a temp file; either is unlinked once open)\n"
		"  --size-mb N         backing file size (default 16)\n"
		"  --duration-s S      run S seconds (default 0: until SIGTERM)\n"
		"  --bug=event-after-destroy\n"
		"                      destroy a qpair on drain, before its last_wqe event is\n"
		"                      processed (incident 3: a use after free)\n"
		"USDT (provider faultd): obj_create, obj_event (connect, io_done, disconnect,\n"
		"last_wqe), obj_destroy of kind qpair; counters connects, storms.\n"
		"SIGUSR1: disconnect and reconnect every qpair at once.\n"
		"SIGTERM or SIGINT: drain, destroy, print a summary line, exit 0.\n");
}

/* The numeric options, by getopt value: where each goes and its range. */
struct qp_uint_opt {
	int val;
	const char *name;
	size_t field;
	unsigned int min, max;
};

static const struct qp_uint_opt qp_uint_opts[] = {
	{'q', "qpairs", offsetof(struct qp_opts, qpairs), 1, QP_MAX_QPAIRS},
	{'c', "churn-ms", offsetof(struct qp_opts, churn_ms), 0, 3600000},
	{'t', "io-threads", offsetof(struct qp_opts, io_threads), 1, QP_MAX_IO_THREADS},
	{'i', "iops", offsetof(struct qp_opts, iops), 0, QP_MAX_IOPS},
	{'s', "size-mb", offsetof(struct qp_opts, size_mb), 1, QP_MAX_SIZE_MB},
	{'d', "duration-s", offsetof(struct qp_opts, duration_s), 0, 604800},
};

/* Returns 0 or -EINVAL after naming the bad option on stderr. */
static int opts_parse(int argc, char **argv, struct qp_opts *o)
{
	static const struct option longopts[] = {
		{"qpairs", required_argument, NULL, 'q'},
		{"churn-ms", required_argument, NULL, 'c'},
		{"io-threads", required_argument, NULL, 't'},
		{"iops", required_argument, NULL, 'i'},
		{"file", required_argument, NULL, 'f'},
		{"size-mb", required_argument, NULL, 's'},
		{"duration-s", required_argument, NULL, 'd'},
		{"bug", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const struct qp_uint_opt *u;
	size_t i;
	int opt, err = 0;

	*o = (struct qp_opts){.qpairs = 8, .churn_ms = 200, .io_threads = 2, .iops = 5000,
			      .size_mb = 16};
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		for (i = 0, u = NULL; i < sizeof(qp_uint_opts) / sizeof(qp_uint_opts[0]); i++)
			if (qp_uint_opts[i].val == opt)
				u = &qp_uint_opts[i];
		if (u) {
			if (hc_parse_uint(optarg, u->min, u->max,
				       (unsigned int *)((char *)o + u->field))) {
				fprintf(stderr, "%s: --%s: '%s' is not a number in %u-%u\n",
					__func__, u->name, optarg, u->min, u->max);
				err = -EINVAL;
				goto out;
			}
			continue;
		}
		switch (opt) {
		case 'f':
			if (!*optarg) {
				fprintf(stderr, "%s: --file: empty path\n", __func__);
				err = -EINVAL;
				goto out;
			}
			o->file = optarg;
			break;
		case 'B':
			if (strcmp(optarg, "event-after-destroy") == 0) {
				o->bug = QP_BUG_EVENT_AFTER_DESTROY;
			} else if (strcmp(optarg, "none") == 0) {
				o->bug = QP_BUG_NONE;
			} else {
				fprintf(stderr, "%s: --bug: unknown bug '%s' (known: "
					"event-after-destroy, none)\n", __func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'h':
			o->help = 1;
			goto out;
		default:
			/* getopt has named the option already. */
			fprintf(stderr, "%s: try --help\n", __func__);
			err = -EINVAL;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", __func__, argv[optind]);
		err = -EINVAL;
		goto out;
	}
out:
	return err;
}

/* --- main ------------------------------------------------------------------ */

static int target_init(struct target *t, const struct qp_opts *o)
{
	unsigned int i;
	int err;

	t->o = o;
	t->fd = t->sig_fd = t->ev_fd = -1;
	t->next_id = 1;
	pthread_mutex_init(&t->ev_lock, NULL);
	pthread_mutex_init(&t->rate_lock, NULL);
	pthread_mutex_init(&t->live_lock, NULL);
	pthread_cond_init(&t->live_cond, NULL);
	/* Room for every qpair of a storm is not needed: the table holds the
	 * connected ones only, and a storm empties it before refilling. */
	t->conn = calloc(o->qpairs, sizeof(*t->conn));
	t->io = calloc(o->io_threads, sizeof(*t->io));
	if (!t->conn || !t->io) {
		err = -ENOMEM;
		fprintf(stderr, "%s: out of memory\n", __func__);
		goto out;
	}
	for (i = 0; i < o->io_threads; i++)
		t->io[i].wake_fd = -1;
	for (i = 0; i < o->io_threads; i++) {
		err = io_init(t, &t->io[i], i);
		if (err)
			goto out;
	}
	t->ev_fd = eventfd(0, EFD_CLOEXEC);
	if (t->ev_fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: eventfd: %s\n", __func__, strerror(-err));
		goto out;
	}
	err = file_open(t);
out:
	return err;
}

/* Every thread has been joined. */
static void target_fini(struct target *t)
{
	struct qp_event *ev, *next;
	unsigned int i;

	for (ev = t->ev_head; ev; ev = next) {
		next = ev->next;
		free(ev);
	}
	if (t->io)
		for (i = 0; i < t->o->io_threads; i++)
			io_fini(&t->io[i]);
	free(t->io);
	free(t->conn);
	if (t->ev_fd >= 0)
		close(t->ev_fd);
	if (t->fd >= 0)
		close(t->fd);
	free(t->path);
	pthread_cond_destroy(&t->live_cond);
	pthread_mutex_destroy(&t->live_lock);
	pthread_mutex_destroy(&t->rate_lock);
	pthread_mutex_destroy(&t->ev_lock);
}

/* Threads start with the three signals blocked (the mask is inherited), so
 * only the connection manager's signalfd ever sees them. */
static int target_start(struct target *t)
{
	unsigned int i;
	int err;

	t->start_ns = t->refill_ns = now_ns();
	if (t->o->iops) {
		t->rate = (double)t->o->iops / 1e9;
		t->burst = (double)t->o->iops * QP_BURST_S;
		if (t->burst < 1.0)
			t->burst = 1.0;
		t->tokens = 1.0;
	}
	err = -pthread_create(&t->ev_thr, NULL, event_run, t);
	if (err)
		goto out;
	t->ev_started = 1;
	for (i = 0; i < t->o->io_threads; i++) {
		err = -pthread_create(&t->io[i].thr, NULL, io_run, &t->io[i]);
		if (err)
			goto out;
		t->io[i].started = 1;
	}
	err = -pthread_create(&t->cm_thr, NULL, cm_run, t);
	if (err)
		goto out;
	t->cm_started = 1;
out:
	if (err)
		fprintf(stderr, "%s: pthread_create: %s\n", __func__, strerror(-err));
	return err;
}

/* The connection manager goes first: it drains every qpair, which needs the
 * I/O threads and the event thread still running. */
static int target_stop(struct target *t)
{
	unsigned int i;
	int err = 0;

	if (t->cm_started) {
		pthread_join(t->cm_thr, NULL);
		err = t->cm_err;
	} else {
		t->stop_ns = now_ns();
	}
	for (i = 0; i < t->o->io_threads; i++) {
		if (!t->io[i].started)
			continue;
		io_stop(&t->io[i]);
		pthread_join(t->io[i].thr, NULL);
		if (t->io[i].err && !err)
			err = t->io[i].err;
	}
	if (t->ev_started) {
		pthread_mutex_lock(&t->ev_lock);
		t->ev_stopping = 1;
		pthread_mutex_unlock(&t->ev_lock);
		wake(t->ev_fd);
		pthread_join(t->ev_thr, NULL);
	}
	return err;
}

int main(int argc, char **argv)
{
	struct qp_opts o;
	struct target t = {0};
	sigset_t sigs;
	uint64_t ios = 0, errors = 0;
	double secs;
	unsigned int i;
	int code = 2, err;

	if (opts_parse(argc, argv, &o))
		goto out;
	code = 0;
	if (o.help) {
		usage(stdout);
		goto out;
	}
	code = 1;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	err = -pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (err) {
		fprintf(stderr, "%s: pthread_sigmask: %s\n", __func__, strerror(-err));
		goto out;
	}
	if (target_init(&t, &o))
		goto err_fini;
	t.sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (t.sig_fd < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", __func__, strerror(errno));
		goto err_fini;
	}
	printf("qpair: started pid=%d qpairs=%u io_threads=%u iops=%u churn_ms=%u "
	       "file=%s bug=%s\n", (int)getpid(), o.qpairs, o.io_threads, o.iops, o.churn_ms,
	       o.file ? o.file : t.path,
	       o.bug == QP_BUG_EVENT_AFTER_DESTROY ? "event-after-destroy" : "none");
	fflush(stdout);
	err = target_start(&t);
	if (target_stop(&t) || err)
		goto err_close_sig;
	for (i = 0; i < o.io_threads; i++) {
		ios += t.io[i].ios;
		errors += t.io[i].errors;
	}
	secs = (double)(t.stop_ns - t.start_ns) / 1e9;
	if (errors)
		fprintf(stderr, "%s: %llu I/O errors\n", __func__, (unsigned long long)errors);
	printf("qpair: created=%llu destroyed=%llu ios=%llu iops=%.0f last_events=%llu\n",
	       (unsigned long long)t.created, (unsigned long long)t.destroyed,
	       (unsigned long long)ios, secs > 0 ? (double)ios / secs : 0.0,
	       (unsigned long long)t.last_events);
	fflush(stdout);
	code = 0;
err_close_sig:
	close(t.sig_fd);
err_fini:
	target_fini(&t);
out:
	return code;
}
