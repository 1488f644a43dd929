/* Uprobes attached to a process by pid, off the event loop. A perf-event
 * uprobe's attach waits for the kernel's trace-event lock, which every
 * uprobe release holds through its grace periods: 0.2 s and more per
 * process on a busy host. The loop posts a process's probes; a worker
 * thread (worker.h) attaches them; the loop gets the links back, in the
 * order posted, and keeps or releases them.
 *
 * A process that exits before or during its attach is never attached to
 * by number once its pid can have been given to another: the post opens a
 * pidfd, and the thread attaches only while it says the process lives.
 * The loop also cancels the jobs of a pid whose exit it has read. */
#ifndef FAULTD_PROBE_ATTACH_H
#define FAULTD_PROBE_ATTACH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include <bpf/libbpf.h>

#include "fifo.h"

/* One uprobe of a job: what to attach, then what came of it. */
struct probe_uprobe {
	struct bpf_program *prog;
	const char *path;		/* outlives the job */
	const char *func;		/* libbpf finds it in @path; else @off */
	size_t off;			/* file offset */
	__u64 cookie;
	bool ret;			/* a uretprobe */
	bool after_prev;		/* only if the one before was attached */
	const void *tag;		/* the caller's */
	struct bpf_link *link;		/* out: a perf-event uprobe's, or NULL */
	int fd;				/* out: else a uprobe_multi link's, or -1 */
	int err;			/* out: 0 or -errno */
};

/* One process's uprobes. A caller's job struct begins with this one. */
struct probe_attach_job {
	struct fifo_node node;
	struct probe_attach_job *next;	/* the attacher's: posted, not delivered */
	pid_t pid;
	int pidfd;
	bool multi;			/* uprobe_multi links */
	struct probe_uprobe *u;
	size_t n;
	bool cancelled;			/* atomic: the loop read the exit */
	bool gone;			/* out: exited; nothing of it is kept */
	uint64_t post_ns, start_ns, done_ns;	/* posted; begun, over on the thread */
};

struct probe_attacher;

/* @done (on the loop, in order) owns the job: it keeps the links it wants
 * and gives the job to probe_attach_job_free, which releases the rest.
 * @drop is for jobs never delivered (probe_attacher_free); the links are
 * released already. NULL with errno set. */
struct probe_attacher *probe_attacher_new(struct event_base *base,
					  void (*done)(struct probe_attach_job *j, void *arg),
					  void (*drop)(struct probe_attach_job *j, void *arg),
					  void *arg);
/* @j->u[..] filled in, @j->pid set: hand it to the thread. 0; -ESRCH when
 * the process is gone already (nothing to attach); or -errno when there is
 * no thread: the caller attaches on its own thread (probe_attach_run). */
int probe_attacher_post(struct probe_attacher *a, struct probe_attach_job *j);
/* The loop read @pid's exit: its jobs not yet done attach no more. */
void probe_attacher_cancel(struct probe_attacher *a, pid_t pid);
/* The thread ends after its current probe; the jobs not delivered are
 * dropped with their links released. */
void probe_attacher_free(struct probe_attacher *a);

/* The attach itself, on the calling thread (a held process, or no worker). */
void probe_attach_run(struct probe_attach_job *j, bool (*stopping)(void *), void *arg);
/* Release the links the caller did not take (set to NULL / -1 when taken),
 * close the pidfd; the job's memory stays the caller's. */
void probe_attach_job_release(struct probe_attach_job *j);
/* Empty a job for @pid with room for @n probes (fd -1). 0 or -ENOMEM. */
int probe_attach_job_init(struct probe_attach_job *j, pid_t pid, bool multi, size_t n);

#endif
