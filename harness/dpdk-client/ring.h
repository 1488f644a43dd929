/* ring: a byte ring of power-of-two capacity. The client pushes decrypted
 * TLS bytes at the tail and takes WebSocket frames off the head, as the
 * incident's frb::ByteRingBuffer did. Not thread-safe: one loop owns it. */
#ifndef DPDK_CLIENT_RING_H
#define DPDK_CLIENT_RING_H

#include <stddef.h>

struct ring {
	unsigned char *buf;
	size_t cap;			/* a power of two */
	size_t head, tail;		/* free-running; tail - head bytes held */
};

/* cap is rounded up to a power of two. Returns 0 or -ENOMEM. */
int ring_init(struct ring *r, size_t cap);
void ring_fini(struct ring *r);

static inline size_t ring_len(const struct ring *r)
{
	return r->tail - r->head;
}

static inline size_t ring_room(const struct ring *r)
{
	return r->cap - ring_len(r);
}

/* Appends n bytes. Returns 0, or -ENOSPC (nothing appended). */
int ring_push(struct ring *r, const void *src, size_t n);

/* Copies n bytes starting off bytes past the head into dst without
 * consuming them. Returns 0, or -ENODATA if fewer are held. */
int ring_peek(const struct ring *r, void *dst, size_t off, size_t n);

/* Copies the first n bytes into dst and consumes them. dst must be valid:
 * like the incident's read_pop_front it copies unconditionally, and a NULL
 * dst faults inside it. Returns 0, or -ENODATA if fewer are held. */
int ring_pop_front(struct ring *r, void *dst, size_t n);

/* Consumes n bytes without copying them. */
int ring_discard(struct ring *r, size_t n);

#endif
