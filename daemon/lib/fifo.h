/* A first-in, first-out queue of items whose first member is a struct
 * fifo_node. A zeroed struct fifo is an empty queue. No lock of its own:
 * the caller holds whatever guards it. */
#ifndef FAULTD_FIFO_H
#define FAULTD_FIFO_H

#include <stdbool.h>
#include <stddef.h>

struct fifo_node {
	struct fifo_node *next;
};

struct fifo {
	struct fifo_node *head, **tail;
};

static inline bool fifo_empty(const struct fifo *q)
{
	return !q->head;
}

static inline void fifo_push(struct fifo *q, struct fifo_node *n)
{
	n->next = NULL;
	if (!q->tail)
		q->tail = &q->head;
	*q->tail = n;
	q->tail = &n->next;
}

/* The oldest item, taken off the queue; NULL when it is empty. */
static inline void *fifo_pop(struct fifo *q)
{
	struct fifo_node *n = q->head;

	if (n) {
		q->head = n->next;
		if (!q->head)
			q->tail = &q->head;
	}
	return n;
}

#endif
