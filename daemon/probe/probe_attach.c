/* Uprobes attached by pid on a worker thread (probe_attach.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/pidfd.h>

#include "probe_attach.h"
#include "probe_util.h"
#include "util.h"
#include "worker.h"

struct probe_attacher {
	struct worker *w;
	void (*done)(struct probe_attach_job *j, void *arg);
	void (*drop)(struct probe_attach_job *j, void *arg);
	void *arg;
	struct probe_attach_job *head, **tail;	/* the loop's: posted, not delivered */
};

int probe_attach_job_init(struct probe_attach_job *j, pid_t pid, bool multi, size_t n)
{
	memset(j, 0, sizeof(*j));
	j->pid = pid;
	j->pidfd = -1;
	j->multi = multi;
	j->post_ns = util_now_ns();
	j->u = calloc(n ? n : 1, sizeof(*j->u));
	if (!j->u)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		j->u[i].fd = -1;
	return 0;
}

/* Has the process exited (or been cancelled by the loop)? Without a pidfd
 * (a held process, attached on the loop) it is alive. */
static bool exited(const struct probe_attach_job *j)
{
	struct pollfd pf = {.fd = j->pidfd, .events = POLLIN};

	if (__atomic_load_n(&j->cancelled, __ATOMIC_RELAXED))
		return true;
	return j->pidfd >= 0 && poll(&pf, 1, 0) != 0;
}

static int attach_one(const struct probe_attach_job *j, struct probe_uprobe *u)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = u->ret, .bpf_cookie = u->cookie,
		    .func_name = u->func);
	int fd;

	if (j->multi) {
		fd = probe_uprobe_multi_attach(bpf_program__fd(u->prog), j->pid, u->path, u->off,
					       u->cookie, u->ret);
		if (fd < 0)
			return fd;
		u->fd = fd;
		return 0;
	}
	u->link = bpf_program__attach_uprobe_opts(u->prog, j->pid, u->path, u->off, &uo);
	return u->link ? 0 : -errno;
}

static void release(struct probe_uprobe *u)
{
	probe_link_release(u->link, u->fd);
	u->link = NULL;
	u->fd = -1;
}

/* The process is alive before each attach and after the last one, so the
 * pid attached to was its own all along; else nothing is kept. */
void probe_attach_run(struct probe_attach_job *j, bool (*stopping)(void *), void *arg)
{
	j->start_ns = util_now_ns();
	for (size_t i = 0; i < j->n && !j->gone; i++) {
		struct probe_uprobe *u = &j->u[i];

		j->gone = exited(j) || (stopping && stopping(arg));
		if (j->gone)
			break;
		if (u->after_prev && i > 0 && j->u[i - 1].err) {
			u->err = -ECANCELED;
			continue;
		}
		u->err = attach_one(j, u);
	}
	if (!j->gone)
		j->gone = exited(j);
	for (size_t i = 0; j->gone && i < j->n; i++)
		release(&j->u[i]);
	j->done_ns = util_now_ns();
}

void probe_attach_job_release(struct probe_attach_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		release(&j->u[i]);
	free(j->u);
	j->u = NULL;
	j->n = 0;
	if (j->pidfd >= 0)
		close(j->pidfd);
	j->pidfd = -1;
}

static bool worker_going(void *arg)
{
	return worker_stopping(((struct probe_attacher *)arg)->w);
}

static void job_work(struct fifo_node *n, void *arg)
{
	probe_attach_run((struct probe_attach_job *)n, worker_going, arg);
}

/* Off the list of jobs posted: the head when delivered (in the order
 * posted), any one when dropped. */
static struct probe_attach_job *unlink_job(struct probe_attacher *a, struct probe_attach_job *j)
{
	struct probe_attach_job **at = &a->head;

	while (*at && *at != j)
		at = &(*at)->next;
	if (*at)
		*at = j->next;
	if (a->tail == &j->next)
		a->tail = at;
	return j;
}

static void job_done(struct fifo_node *n, void *arg)
{
	struct probe_attacher *a = arg;

	a->done(unlink_job(a, (struct probe_attach_job *)n), a->arg);
}

static void job_drop(struct fifo_node *n, void *arg)
{
	struct probe_attacher *a = arg;
	struct probe_attach_job *j = unlink_job(a, (struct probe_attach_job *)n);

	probe_attach_job_release(j);
	a->drop(j, a->arg);
}

static const struct worker_ops attach_ops = {job_work, job_done, job_drop};

struct probe_attacher *probe_attacher_new(struct event_base *base,
					  void (*done)(struct probe_attach_job *j, void *arg),
					  void (*drop)(struct probe_attach_job *j, void *arg),
					  void *arg)
{
	struct probe_attacher *a = calloc(1, sizeof(*a));

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	a->done = done;
	a->drop = drop;
	a->arg = arg;
	a->tail = &a->head;
	a->w = worker_new(base, &attach_ops, a);
	if (!a->w) {
		free(a);
		return NULL;
	}
	return a;
}

int probe_attacher_post(struct probe_attacher *a, struct probe_attach_job *j)
{
	int err;

	j->post_ns = util_now_ns();
	if (j->pidfd < 0)
		j->pidfd = pidfd_open(j->pid, 0);
	if (j->pidfd < 0)
		return -errno;
	j->next = NULL;
	*a->tail = j;
	a->tail = &j->next;
	err = worker_post(a->w, &j->node);
	if (err)
		unlink_job(a, j);	/* not taken */
	return err;
}

void probe_attacher_cancel(struct probe_attacher *a, pid_t pid)
{
	for (struct probe_attach_job *j = a ? a->head : NULL; j; j = j->next)
		if (j->pid == pid)
			__atomic_store_n(&j->cancelled, true, __ATOMIC_RELAXED);
}

void probe_attacher_free(struct probe_attacher *a)
{
	if (!a)
		return;
	worker_free(a->w);
	free(a);
}
