#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>

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
