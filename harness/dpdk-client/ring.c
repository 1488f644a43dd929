/* ring: see ring.h. Kept in its own translation unit and out of line so a
 * fault in ring_pop_front is named by the backtrace, not folded into its
 * caller (the incident's trace read "read_pop_front(data=0x0, size=143)"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int ring_init(struct ring *r, size_t cap)
{
	size_t c = 1;

	while (c < cap)
		c <<= 1;
	r->buf = malloc(c);
	if (!r->buf)
		return -ENOMEM;
	r->cap = c;
	r->head = r->tail = 0;
	return 0;
}

void ring_fini(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->head = r->tail = 0;
}

int ring_push(struct ring *r, const void *src, size_t n)
{
	size_t at, first;

	if (n > ring_room(r))
		return -ENOSPC;
	at = r->tail & (r->cap - 1);
	first = r->cap - at < n ? r->cap - at : n;
	memcpy(r->buf + at, src, first);
	memcpy(r->buf, (const unsigned char *)src + first, n - first);
	r->tail += n;
	return 0;
}

int ring_peek(const struct ring *r, void *dst, size_t off, size_t n)
{
	size_t at, first;

	if (off + n > ring_len(r))
		return -ENODATA;
	at = (r->head + off) & (r->cap - 1);
	first = r->cap - at < n ? r->cap - at : n;
	memcpy(dst, r->buf + at, first);
	memcpy((unsigned char *)dst + first, r->buf, n - first);
	return 0;
}

/* noinline and noclone: gcc would otherwise specialise a call with a
 * constant NULL dst (ring_pop_front.constprop) or, seeing the NULL, turn
 * the copy into a trap; the bug has to be an ordinary memcpy to address 0
 * from a frame called ring_pop_front. */
__attribute__((noinline, noclone)) int ring_pop_front(struct ring *r, void *dst, size_t n)
{
	size_t at, first;

	if (n > ring_len(r))
		return -ENODATA;
	at = r->head & (r->cap - 1);
	first = r->cap - at < n ? r->cap - at : n;
	memcpy(dst, r->buf + at, first);
	memcpy((unsigned char *)dst + first, r->buf, n - first);
	r->head += n;
	return 0;
}

int ring_discard(struct ring *r, size_t n)
{
	if (n > ring_len(r))
		return -ENODATA;
	r->head += n;
	return 0;
}
