#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "log.h"
#include "probe_util.h"

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
