/* What every probe's user side does the same way: a BPF ring buffer read
 * from the event loop, and per-CPU counters summed. */
#ifndef FAULTD_PROBE_UTIL_H
#define FAULTD_PROBE_UTIL_H

#include <bpf/libbpf.h>
#include <event2/event.h>

struct probe_ring {
	struct ring_buffer *rb;
	struct event *ev;
};

/* Read @map_fd's ring buffer with @fn whenever it has data. 0 or -errno. */
int probe_ring_open(struct probe_ring *ring, struct event_base *base, int map_fd,
		    ring_buffer_sample_fn fn, void *ctx);
/* Deliver what is in the ring now. 0 or -errno. */
int probe_ring_drain(struct probe_ring *ring);
void probe_ring_close(struct probe_ring *ring);

/* The sum over CPUs of a per-CPU array's @key (0 if unreadable). */
unsigned long long probe_percpu_sum(const struct bpf_map *map, __u32 key);
/* Set a per-CPU array's @key to zero on every CPU. */
void probe_percpu_zero(const struct bpf_map *map, __u32 key);

#endif
