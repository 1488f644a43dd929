/* The heap probe's bad frees, looked into off the event loop: a worker
 * thread waits for the process to stop at the bad free and searches the
 * recently freed blocks for where the bad pointer came from; the loop takes
 * back what it found, in the order the frees happened (worker.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe_exit.h"
#include "probe_heap_priv.h"
#include "util.h"

/* --- where a bad pointer came from ------------------------------------------------ */

#define HEAP_SOURCE_BATCH 4096
#define HEAP_SOURCE_MAX_BLOCK (64u * 1024)	/* bytes scanned per freed block */

/* Does @tgid's memory at [addr, addr + size) hold the word @value? Its
 * offset, or -1 (also when the memory is gone: a freed mapping). */
static long block_holds(pid_t tgid, __u64 addr, __u64 size, __u64 value, __u64 *buf)
{
	struct iovec local = {.iov_base = buf, .iov_len = (size_t)size};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)size};
	ssize_t got = process_vm_readv(tgid, &local, 1, &remote, 1, 0);
	long found = -1;

	for (ssize_t i = 0; got > 0 && found < 0 && i < got / 8; i++)
		if (buf[i] == value)
			found = (long)i * 8;
	return found;
}

/* Search the recently freed blocks of @tgid (held stopped at the bad free)
 * for the word @value; the most recently freed holder wins. 0, -ENOENT if
 * none holds it, -ECANCELED if the probe is going, or -errno. The worker's:
 * up to 65,536 reads of 64 KiB. */
static int pointer_source(struct probe_heap *p, pid_t tgid, __u64 value,
			  struct heap_source *out)
{
	int fd = bpf_map__fd(p->skel->maps.recent);
	struct heap_key *keys = calloc(HEAP_SOURCE_BATCH, sizeof(*keys)), k;
	struct heap_freed *vals = calloc(HEAP_SOURCE_BATCH, sizeof(*vals));
	__u64 *buf = malloc(HEAP_SOURCE_MAX_BLOCK), batch = 0;
	bool first = true, more = true, found = false;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!keys || !vals || !buf) {
		err = -ENOMEM;
		goto out;
	}
	while (more && !err) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 n = HEAP_SOURCE_BATCH;

		if (bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, vals, &n, &bo)) {
			if (errno != ENOENT) {
				err = -errno;
				goto out;
			}
			more = false;
		}
		first = false;
		for (__u32 i = 0; i < n && !err; i++) {
			__u64 size = vals[i].size;
			long off;

			if (i % 256 == 0 && worker_stopping(p->worker)) {
				err = -ECANCELED;
				break;
			}
			if (keys[i].tgid != (__u32)tgid || size < 8)
				continue;
			if (size > HEAP_SOURCE_MAX_BLOCK)
				size = HEAP_SOURCE_MAX_BLOCK;
			off = block_holds(tgid, keys[i].addr, size, value, buf);
			if (off < 0)
				continue;
			if (found && vals[i].ts_ns <= out->freed.ts_ns) {
				out->others++;
				continue;
			}
			if (found)
				out->others++;
			found = true;
			out->block = keys[i].addr;
			out->offset = (__u64)off;
			out->freed = vals[i];
		}
	}
	if (!err && !found)
		err = -ENOENT;
	if (err)
		goto out;
	k = (struct heap_key){.tgid = (__u32)tgid, .addr = out->block};
	out->reused = bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.live), &k, &out->now) == 0;
out:
	free(buf);
	free(vals);
	free(keys);
	return err;
}

/* --- bad frees, looked into off the loop ------------------------------------------ */

/* The worker's part of a bad free (the callback logs what it found). */
static void look_into(struct probe_heap *p, struct heap_job *j)
{
	pid_t pid = (pid_t)j->ev.tgid;

	/* The SIGSTOP lands on the way back to user space, maybe after the
	 * event was read; a SIGCONT sent before would be lost. */
	j->found.stopped = !p->stop_on_bad_free ||
			   probe_wait_stopped(pid, HEAP_STOP_WAIT_MS, p->worker);
	j->found.source_err = j->search ? pointer_source(p, pid, j->ev.addr, &j->found.source)
					: -EAGAIN;
}

static void job_work(struct fifo_node *n, void *arg)
{
	look_into(arg, (struct heap_job *)n);
}

/* What the worker found, to the callback, in the order seen. */
static void job_done(struct fifo_node *n, void *arg)
{
	struct probe_heap *p = arg;
	struct heap_job *j = (struct heap_job *)n;

	p->cb(&j->ev, &j->found, p->arg);
	free(j);
}

/* Not delivered when the probe goes: a process held at it goes on. */
static void job_drop(struct fifo_node *n, void *arg)
{
	struct probe_heap *p = arg;
	struct heap_job *j = (struct heap_job *)n;

	if (p->stop_on_bad_free)
		kill((pid_t)j->ev.tgid, SIGCONT);
	free(j);
}

static const struct worker_ops heap_worker_ops = {job_work, job_done, job_drop};

int heap_worker_init(struct probe_heap *p, struct event_base *base)
{
	p->worker = worker_new(base, &heap_worker_ops, p);
	return p->worker ? 0 : -errno;
}

/* A bad free from the ring: to the worker when the process must be waited
 * for or the pointer searched; straight to the callback when neither is
 * needed and nothing earlier is still being looked into. */
void heap_bad_free(struct probe_heap *p, const struct heap_event *ev)
{
	bool search = ev->type != HEAP_EV_DOUBLE_FREE && p->searches_left > 0;
	struct heap_job *j;
	int err = 0;

	if (search)
		p->searches_left--;
	if (!search && !p->stop_on_bad_free && !worker_pending(p->worker)) {
		struct heap_finding f = {.stopped = true, .source_err = -EAGAIN};

		p->cb(ev, &f, p->arg);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		err = -ENOMEM;
	if (j) {
		j->ev = *ev;
		j->search = search;
		err = worker_post(p->worker, &j->node);
	}
	if (!err)
		return;
	/* Looked into here, as before the worker: the loop waits. */
	log_warn("%s: no worker (%s): looking into pid %u's bad free on the loop", __func__,
		 strerror(-err), ev->tgid);
	if (j) {
		look_into(p, j);
		p->cb(ev, &j->found, p->arg);
	} else {
		struct heap_finding f = {.stopped = false, .source_err = -ENOMEM};

		p->cb(ev, &f, p->arg);
	}
	free(j);
}

void probe_heap__settle(struct probe_heap *p)
{
	if (!p)
		return;
	probe_ring_drain(&p->ring);
	worker_settle(p->worker);
}
