#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>

#include "fifo.h"
#include "log.h"
#include "probe_util.h"
#include "util.h"

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	probe_ring_drain(arg);
}

int probe_ring_open(struct probe_ring *ring, struct event_base *base, int map_fd,
		    ring_buffer_sample_fn fn, void *ctx)
{
	ring->rb = ring_buffer__new(map_fd, fn, ctx, NULL);
	if (!ring->rb)
		return -errno;
	ring->ev = event_new(base, ring_buffer__epoll_fd(ring->rb), EV_READ | EV_PERSIST,
			     on_readable, ring);
	if (!ring->ev || event_add(ring->ev, NULL) < 0) {
		probe_ring_close(ring);
		return -ENOMEM;
	}
	return 0;
}

int probe_ring_drain(struct probe_ring *ring)
{
	int n;

	if (!ring || !ring->rb)
		return 0;
	n = ring_buffer__consume(ring->rb);
	return n < 0 ? n : 0;
}

void probe_ring_close(struct probe_ring *ring)
{
	if (ring->ev)
		event_free(ring->ev);
	ring_buffer__free(ring->rb);
	ring->ev = NULL;
	ring->rb = NULL;
}

unsigned long long probe_percpu_sum(const struct bpf_map *map, __u32 key)
{
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long sum = 0;
	__u64 *vals;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (vals && bpf_map__lookup_elem(map, &key, sizeof(key), vals,
					 sizeof(*vals) * (size_t)ncpu, 0) == 0)
		for (int c = 0; c < ncpu; c++)
			sum += vals[c];
	free(vals);
	return sum;
}

void probe_percpu_zero(const struct bpf_map *map, __u32 key)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*vals)) : NULL;

	if (vals)
		bpf_map__update_elem(map, &key, sizeof(key), vals, sizeof(*vals) * (size_t)ncpu, 0);
	free(vals);
}

/* --- loading -------------------------------------------------------------------- */

static const struct probe_prog_cap *prog_cap(const struct probe_prog_cap *progs, size_t n,
					     const char *name)
{
	const struct probe_prog_cap *found = NULL;

	for (size_t i = 0; i < n && !found; i++)
		if (!strcmp(progs[i].prog, name))
			found = &progs[i];
	return found;
}

/* FAULTD_REFUSE_PROGS=a,b (tests): load these programs as socket filters,
 * which the verifier refuses for the tracing helpers they call, so a
 * refused program can be shown to cost only its feature. */
static bool refused_for_test(const char *name)
{
	const char *list = getenv("FAULTD_REFUSE_PROGS"), *p;
	size_t len = strlen(name);

	for (p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0))
		if (strcspn(p, ",") == len && !strncmp(p, name, len))
			return true;
	return false;
}

/* Programs of a missing feature stay unloaded; the rest load as asked. */
static void choose_programs(struct bpf_object *obj, const struct probe_prog_cap *progs,
			    size_t n)
{
	const struct probe_prog_cap *pc;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		pc = prog_cap(progs, n, bpf_program__name(prog));
		if (pc && caps_state(pc->cap) == CAPS_MISSING)
			bpf_program__set_autoload(prog, false);
		if (bpf_program__autoload(prog) && refused_for_test(bpf_program__name(prog)))
			bpf_program__set_type(prog, BPF_PROG_TYPE_SOCKET_FILTER);
	}
}

/* After a load: what loaded works. */
static void mark_loaded(struct bpf_object *obj, const struct probe_prog_cap *progs, size_t n)
{
	const struct probe_prog_cap *pc;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		pc = prog_cap(progs, n, bpf_program__name(prog));
		if (pc && bpf_program__autoload(prog))
			caps_set_ok(pc->cap, caps_has_via(pc->cap) ? NULL :
					     bpf_program__section_name(prog));
	}
}

/* A whole-object failure no program was named for is the kernel's answer
 * (a map type it lacks) when it is one of these; anything else (no
 * memory) may pass. */
static bool kernel_refusal(int err)
{
	return err == -EINVAL || err == -EPERM || err == -EACCES || err == -ENOTSUP ||
	       err == -EOPNOTSUPP || err == -ENOENT || err == -ESRCH || err == -E2BIG ||
	       err == -ENOSYS;
}

void *probe_load(const struct probe_skel_ops *ops, const struct probe_prog_cap *progs,
		 size_t n_progs, enum caps_id main,
		 int (*prepare)(void *skel, void *arg), void *arg)
{
	const struct probe_prog_cap *pc;
	struct log_bpf_capture cap;
	void *skel = NULL;
	int err = -ENOTSUP;

	/* Each refused program is dropped once: at most n_progs + 1 loads. */
	for (size_t tries = 0; tries <= n_progs && caps_state(main) != CAPS_MISSING; tries++) {
		skel = ops->open();
		if (!skel) {
			err = -errno;
			log_warn("%s: %s: open: %s", __func__, ops->name, strerror(-err));
			break;
		}
		err = prepare ? prepare(skel, arg) : 0;
		if (err) {
			log_warn("%s: %s: prepare: %s", __func__, ops->name, strerror(-err));
			break;
		}
		choose_programs(ops->skeleton(skel)->obj[0], progs, n_progs);
		log_capture_libbpf(&cap);
		err = ops->load(skel);
		log_capture_libbpf(NULL);
		if (!err) {
			mark_loaded(ops->skeleton(skel)->obj[0], progs, n_progs);
			return skel;
		}
		pc = cap.prog[0] ? prog_cap(progs, n_progs, cap.prog) : NULL;
		if (pc)
			caps_set_missing(pc->cap, "the kernel refused program %s (%s)%s%s",
					 cap.prog, cap.failure, cap.tail[0] ? ": " : "", cap.tail);
		else if (kernel_refusal(err))
			caps_set_missing(main, "%s did not load (%s)", ops->name,
					 cap.failure[0] ? cap.failure : strerror(-err));
		else
			log_warn("%s: %s: load: %s%s%s", __func__, ops->name, strerror(-err),
				 cap.failure[0] ? ": " : "", cap.failure);
		ops->destroy(skel);
		skel = NULL;
		if (!pc && !kernel_refusal(err))
			break;
		err = -ENOTSUP;
	}
	if (skel)
		ops->destroy(skel);
	errno = -err;
	return NULL;
}

bool probe_prog_loaded(const struct bpf_program *prog)
{
	return bpf_program__fd(prog) >= 0;
}

int probe_attach_auto(void *skel, const struct probe_skel_ops *ops,
		      const struct probe_prog_cap *progs, size_t n_progs, enum caps_id main)
{
	struct bpf_object_skeleton *s = ops->skeleton(skel);
	const struct probe_prog_cap *pc;
	struct bpf_program *prog;
	struct bpf_link *link;
	int err = 0;

	for (int i = 0; i < s->prog_cnt && !err; i++) {
		prog = *s->progs[i].prog;
		if (!probe_prog_loaded(prog) || *s->progs[i].link)
			continue;
		link = bpf_program__attach(prog);
		if (link) {
			*s->progs[i].link = link;
			continue;
		}
		err = -errno;
		pc = prog_cap(progs, n_progs, bpf_program__name(prog));
		if (pc)
			caps_set_missing(pc->cap, "program %s (%s) did not attach: %s",
					 bpf_program__name(prog), bpf_program__section_name(prog),
					 strerror(-err));
		if (!pc || pc->cap == main)
			err = pc ? -ENOTSUP : err;
		else
			err = 0;
	}
	return err;
}

/* --- uprobe links ------------------------------------------------------------------ */

/* BPF_LINK_CREATE's uprobe_multi arguments (Linux 6.6), which the uapi
 * headers of Debian 12 do not have yet. */
struct uprobe_multi_create {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__aligned_u64 path;
	__aligned_u64 offsets;
	__aligned_u64 ref_ctr_offsets;
	__aligned_u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
};

#define UPROBE_MULTI_RETURN 1u	/* BPF_F_UPROBE_MULTI_RETURN */

static int link_create_multi(int prog_fd, pid_t pid, const char *path, __u64 off,
			     __u64 cookie, bool ret)
{
	union {
		union bpf_attr attr;
		struct uprobe_multi_create um;
	} a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.um.prog_fd = (__u32)prog_fd;
	a.um.attach_type = PROBE_ATTACH_UPROBE_MULTI;
	a.um.path = (__u64)(uintptr_t)path;
	a.um.offsets = (__u64)(uintptr_t)&off;
	a.um.cookies = (__u64)(uintptr_t)&cookie;
	a.um.cnt = 1;
	a.um.multi_flags = ret ? UPROBE_MULTI_RETURN : 0;
	a.um.pid = (__u32)pid;
	fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a.attr));
	return fd < 0 ? -errno : fd;
}

int probe_uprobe_multi_attach(int prog_fd, pid_t pid, const char *path, size_t off,
			      __u64 cookie, bool ret)
{
	return link_create_multi(prog_fd, pid, path, (__u64)off, cookie, ret);
}

/* As libbpf 1.3 asks: a program that expects uprobe_multi, linked to a
 * directory. A kernel with uprobe_multi refuses the path (EBADF); one
 * without it refuses the attach type (EINVAL). */
static bool uprobe_multi_probe(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, lo, .expected_attach_type = PROBE_ATTACH_UPROBE_MULTI);
	int prog, link, err;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "faultd_probe", "GPL", insns,
			     ARRAY_SIZE(insns), &lo);
	if (prog < 0)
		return false;
	link = link_create_multi(prog, 0, "/", 0, 0, false);
	err = link;
	if (link >= 0)
		close(link);
	close(prog);
	return err == -EBADF;
}

static bool uprobe_multi_ok;

static void uprobe_multi_read(void)
{
	uprobe_multi_ok = uprobe_multi_probe();
}

/* Runs load from threads of their own: asked once, by whichever is first.
 * Only when FAULTD_UPROBE_MULTI=1 asks: since Linux 6.10 a uprobe_multi
 * link's pid filter drops the calls of a vfork child, which runs on its
 * parent's heap until its exec (dash spawns every command so), and the
 * parent's later free of what the child allocated would read as a pointer
 * never allocated. A perf-event uprobe filters by memory and sees them. */
bool probe_uprobe_multi(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *on = getenv("FAULTD_UPROBE_MULTI");

	if (!on || !*on || !strcmp(on, "0"))
		return false;
	pthread_once(&once, uprobe_multi_read);
	return uprobe_multi_ok;
}

/* Links waiting to be closed, and the threads that close them. */
#define PROBE_CLOSERS 8

struct closing {
	struct fifo_node node;
	struct bpf_link *link;
	int fd;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work;		/* a link queued */
	pthread_cond_t idle;		/* the queue emptied and no close runs */
	struct fifo queue;		/* struct closing */
	unsigned busy;			/* closes running */
	unsigned threads;
} closers = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
};

static void close_one(struct closing *c)
{
	if (c->link)
		bpf_link__destroy(c->link);
	else if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* These threads never log: a fork of the daemon while one held the log's
 * lock would leave the child (before its exec) waiting on it. */
static void *closer_main(void *arg)
{
	struct closing *c;

	(void)arg;
	pthread_mutex_lock(&closers.mu);
	for (;;) {
		while (!(c = fifo_pop(&closers.queue)))
			pthread_cond_wait(&closers.work, &closers.mu);
		closers.busy++;
		pthread_mutex_unlock(&closers.mu);
		close_one(c);
		pthread_mutex_lock(&closers.mu);
		closers.busy--;
		if (fifo_empty(&closers.queue) && !closers.busy)
			pthread_cond_broadcast(&closers.idle);
	}
	return NULL;
}

/* Start one more closer if fewer than PROBE_CLOSERS run and every one is
 * busy. Called with the lock held. false if none can run at all. */
static bool closer_grow(void)
{
	sigset_t all, old;
	pthread_attr_t at;
	pthread_t th;
	bool ok;

	if (closers.threads >= PROBE_CLOSERS || closers.busy < closers.threads)
		return true;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);	/* signals stay the loop's */
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024);
	ok = pthread_create(&th, &at, closer_main, NULL) == 0;
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ok)
		closers.threads++;
	return ok || closers.threads > 0;
}

void probe_link_release(struct bpf_link *link, int fd)
{
	struct closing *c = calloc(1, sizeof(*c));
	bool queued = false;

	if (!link && fd < 0) {
		free(c);
		return;
	}
	if (c) {
		c->link = link;
		c->fd = fd;
		pthread_mutex_lock(&closers.mu);
		queued = closer_grow();
		if (queued) {
			fifo_push(&closers.queue, &c->node);
			pthread_cond_signal(&closers.work);
		}
		pthread_mutex_unlock(&closers.mu);
	}
	if (!queued) {
		/* No memory or no thread: close it here, slowly. */
		free(c);
		if (link)
			bpf_link__destroy(link);
		else
			close(fd);
	}
}

bool probe_links_settle(int max_ms)
{
	struct timespec until;
	bool idle;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += max_ms / 1000;
	until.tv_nsec += (long)(max_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&closers.mu);
	while ((!fifo_empty(&closers.queue) || closers.busy) &&
	       pthread_cond_timedwait(&closers.idle, &closers.mu, &until) == 0)
		;
	idle = fifo_empty(&closers.queue) && !closers.busy;
	pthread_mutex_unlock(&closers.mu);
	return idle;
}
