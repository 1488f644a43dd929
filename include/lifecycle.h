/* Object lifecycles and message delivery from the faultd USDT probes
 * (include/faultd/usdt.h), shared by bpf/lifecycle.bpf.c and
 * daemon/probe_life.c. BPF keeps a state machine per (kind, id) and per
 * (queue, seq) and reports every transition that should not happen. */
#ifndef FAULTD_LIFECYCLE_H
#define FAULTD_LIFECYCLE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LIFE_NAME_LEN 16
#define LIFE_MAX_ALIVE 65536		/* live objects */
#define LIFE_MAX_DEAD 65536		/* destroyed objects remembered */
#define LIFE_MAX_INFLIGHT 262144	/* messages sent, not yet received */
#define LIFE_MAX_RECEIVED 262144	/* received messages remembered */
#define LIFE_MAX_COUNTERS 256
#define LIFE_MAX_UKINDS 8		/* kinds made by uprobes on a library's calls */
#define LIFE_MAX_WATCHED 16		/* counters whose every change is reported */

struct life_obj_key {
	char kind[LIFE_NAME_LEN];
	__u64 id;
};

struct life_obj {
	__u64 create_ts;
	__u64 destroy_ts;
	__u32 create_tid;
	__u32 destroy_tid;
	__u64 events;			/* events while alive */
	char last_event[LIFE_NAME_LEN];
};

struct life_msg_key {
	__u64 queue;
	__u64 seq;
};

struct life_msg {
	__u64 ptr;
	__u64 ts;			/* sent (in flight) or received */
	__u32 tid;
	__u32 pad;
};

struct life_counter {
	__s64 value;
	__u64 ts;
	__u64 updates;
};

enum life_event_type {
	LIFE_EV_EVENT_AFTER_DESTROY = 1,	/* an event on a destroyed object */
	LIFE_EV_DESTROY_AFTER_DESTROY,		/* destroyed twice */
	LIFE_EV_CREATE_ALIVE,			/* created while alive */
	LIFE_EV_UNKNOWN_OBJECT,			/* event or destroy, never created */
	LIFE_EV_MSG_DUPLICATE,			/* received again */
	LIFE_EV_MSG_NEVER_SENT,			/* received, never sent */
	LIFE_EV_MSG_OUT_OF_ORDER,		/* after a newer one of its queue */
	LIFE_EV_COUNTER,			/* a watched counter changed: kind is
						 * its name, id its value */
};

struct life_event {
	__u32 type;
	__u32 tgid;
	__u32 tid;			/* the thread that did it */
	__u32 other_tid;		/* who destroyed it / received it first */
	__u64 ts;
	__u64 other_ts;			/* when that happened */
	char kind[LIFE_NAME_LEN];
	char event[LIFE_NAME_LEN];	/* the event's name, or "destroy" */
	__u64 id;			/* object id, or message seq */
	__u64 queue;
	__u64 ptr;			/* message pointer now */
	__u64 other_ptr;		/* message pointer the first time */
	__u64 newest_seq;		/* out of order: the newer one seen */
};

enum life_loss {
	LIFE_LOSS_RINGBUF = 0, LIFE_LOSS_MAP, LIFE_LOSS__MAX,
};

#endif
