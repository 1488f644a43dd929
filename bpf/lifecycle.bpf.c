// SPDX-License-Identifier: GPL-2.0
/* Lifecycle state machines from the faultd USDT probes: objects are alive
 * from create to destroy, and a message is in flight from send to receive.
 * Any transition outside that is reported with both threads involved.
 * Objects can also be made by a library's own calls: a uretprobe on the
 * call that returns an id creates, a uprobe on the call that takes it as
 * its first argument destroys (lwIP's lwip_socket/lwip_close), the kind
 * named by the link's cookie. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "lifecycle.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LIFE_MAX_ALIVE);
	__type(key, struct life_obj_key);
	__type(value, struct life_obj);
} alive SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LIFE_MAX_DEAD);
	__type(key, struct life_obj_key);
	__type(value, struct life_obj);
} dead SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LIFE_MAX_INFLIGHT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct life_msg_key);
	__type(value, struct life_msg);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LIFE_MAX_RECEIVED);
	__type(key, struct life_msg_key);
	__type(value, struct life_msg);
} received SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LIFE_MAX_COUNTERS);
	__type(key, __u64);		/* queue */
	__type(value, __u64);		/* newest seq received */
} newest SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LIFE_MAX_COUNTERS);
	__type(key, char[LIFE_NAME_LEN]);
	__type(value, struct life_counter);
} counters SEC(".maps");

/* Kind names of the uprobe-made objects, by attach cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LIFE_MAX_UKINDS);
	__type(key, __u32);
	__type(value, char[LIFE_NAME_LEN]);
} ukinds SEC(".maps");

/* Counters the daemon follows over time (recovers' progress). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LIFE_MAX_WATCHED);
	__type(key, char[LIFE_NAME_LEN]);
	__type(value, __u8);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LIFE_LOSS__MAX);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

static __always_inline void lose(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &what);

	if (n)
		(*n)++;
}

static __always_inline struct life_event *report(__u32 type)
{
	struct life_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	__u64 id = bpf_get_current_pid_tgid();

	if (!ev) {
		lose(LIFE_LOSS_RINGBUF);
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->tgid = id >> 32;
	ev->tid = (__u32)id;
	ev->ts = bpf_ktime_get_ns();
	return ev;
}

static __always_inline void read_name(char *dst, const char *user)
{
	if (bpf_probe_read_user_str(dst, LIFE_NAME_LEN, user) < 0)
		dst[0] = '\0';
}

static __always_inline void create(struct life_obj_key *k)
{
	struct life_obj o = {}, *old;
	struct life_event *ev;

	old = bpf_map_lookup_elem(&alive, k);
	if (old) {
		ev = report(LIFE_EV_CREATE_ALIVE);
		if (ev) {
			__builtin_memcpy(ev->kind, k->kind, LIFE_NAME_LEN);
			ev->id = k->id;
			ev->other_tid = old->create_tid;
			ev->other_ts = old->create_ts;
			bpf_ringbuf_submit(ev, 0);
		}
	}
	o.create_ts = bpf_ktime_get_ns();
	o.create_tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&alive, k, &o, BPF_ANY))
		lose(LIFE_LOSS_MAP);
	bpf_map_delete_elem(&dead, k);
}

SEC("usdt")
int BPF_USDT(obj_create, const char *kind, __u64 id)
{
	struct life_obj_key k = {.id = id};

	read_name(k.kind, kind);
	create(&k);
	return 0;
}

/* An event or a destroy on an object that is not alive. */
static __always_inline void not_alive(struct life_obj_key *k, const char *event_user,
				      bool is_destroy)
{
	struct life_obj *d = bpf_map_lookup_elem(&dead, k);
	struct life_event *ev;

	ev = report(!d ? LIFE_EV_UNKNOWN_OBJECT : is_destroy ? LIFE_EV_DESTROY_AFTER_DESTROY
							     : LIFE_EV_EVENT_AFTER_DESTROY);
	if (!ev)
		return;
	__builtin_memcpy(ev->kind, k->kind, LIFE_NAME_LEN);
	ev->id = k->id;
	if (is_destroy)
		__builtin_memcpy(ev->event, "destroy", 8);
	else
		read_name(ev->event, event_user);
	if (d) {
		ev->other_tid = d->destroy_tid;
		ev->other_ts = d->destroy_ts;
	}
	bpf_ringbuf_submit(ev, 0);
}

SEC("usdt")
int BPF_USDT(obj_event, const char *kind, __u64 id, const char *event)
{
	struct life_obj_key k = {.id = id};
	struct life_obj *o;

	read_name(k.kind, kind);
	o = bpf_map_lookup_elem(&alive, &k);
	if (!o) {
		not_alive(&k, event, false);
		return 0;
	}
	__sync_fetch_and_add(&o->events, 1);
	read_name(o->last_event, event);
	return 0;
}

static __always_inline void destroy(struct life_obj_key *k)
{
	struct life_obj *o, gone;

	o = bpf_map_lookup_elem(&alive, k);
	if (!o) {
		not_alive(k, NULL, true);
		return;
	}
	gone = *o;
	gone.destroy_ts = bpf_ktime_get_ns();
	gone.destroy_tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&dead, k, &gone, BPF_ANY);
	bpf_map_delete_elem(&alive, k);
}

SEC("usdt")
int BPF_USDT(obj_destroy, const char *kind, __u64 id)
{
	struct life_obj_key k = {.id = id};

	read_name(k.kind, kind);
	destroy(&k);
	return 0;
}

/* The uprobe-made kind this link stands for; false if none. */
static __always_inline bool ukind(void *ctx, struct life_obj_key *k)
{
	__u32 idx = (__u32)bpf_get_attach_cookie(ctx);
	char *name = bpf_map_lookup_elem(&ukinds, &idx);

	if (!name)
		return false;
	__builtin_memcpy(k->kind, name, LIFE_NAME_LEN);
	return true;
}

SEC("uretprobe")
int BPF_KRETPROBE(uobj_create, long ret)
{
	struct life_obj_key k = {.id = (__u64)ret};

	if (ret >= 0 && ukind(ctx, &k))
		create(&k);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(uobj_destroy, long id)
{
	struct life_obj_key k = {.id = (__u64)id};

	/* A call on an id that was never valid is the library's to refuse. */
	if (id >= 0 && ukind(ctx, &k))
		destroy(&k);
	return 0;
}

SEC("usdt")
int BPF_USDT(msg_send, __u64 queue, __u64 seq, __u64 ptr)
{
	struct life_msg_key k = {.queue = queue, .seq = seq};
	struct life_msg m = {
		.ptr = ptr, .ts = bpf_ktime_get_ns(),
		.tid = (__u32)bpf_get_current_pid_tgid(),
	};

	if (bpf_map_update_elem(&inflight, &k, &m, BPF_ANY))
		lose(LIFE_LOSS_MAP);
	return 0;
}

SEC("usdt")
int BPF_USDT(msg_recv, __u64 queue, __u64 seq, __u64 ptr)
{
	struct life_msg_key k = {.queue = queue, .seq = seq};
	struct life_msg *m, got;
	struct life_event *ev;
	__u64 *top, seq_now = seq;

	m = bpf_map_lookup_elem(&inflight, &k);
	if (!m) {
		struct life_msg *first = bpf_map_lookup_elem(&received, &k);

		ev = report(first ? LIFE_EV_MSG_DUPLICATE : LIFE_EV_MSG_NEVER_SENT);
		if (!ev)
			return 0;
		ev->queue = queue;
		ev->id = seq;
		ev->ptr = ptr;
		if (first) {
			ev->other_tid = first->tid;
			ev->other_ts = first->ts;
			ev->other_ptr = first->ptr;
		}
		bpf_ringbuf_submit(ev, 0);
		return 0;
	}
	got = *m;
	got.ts = bpf_ktime_get_ns();
	got.tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&received, &k, &got, BPF_ANY);
	bpf_map_delete_elem(&inflight, &k);
	/* FIFO per queue: a sequence number below the newest one received
	 * means this message was overtaken. */
	top = bpf_map_lookup_elem(&newest, &queue);
	if (top && seq < *top) {
		ev = report(LIFE_EV_MSG_OUT_OF_ORDER);
		if (ev) {
			ev->queue = queue;
			ev->id = seq;
			ev->ptr = ptr;
			ev->newest_seq = *top;
			bpf_ringbuf_submit(ev, 0);
		}
		return 0;
	}
	bpf_map_update_elem(&newest, &queue, &seq_now, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(counter, const char *name, __s64 value)
{
	char key[LIFE_NAME_LEN] = {};
	struct life_counter c = {}, *old;

	read_name(key, name);
	old = bpf_map_lookup_elem(&counters, key);
	c.value = value;
	c.ts = bpf_ktime_get_ns();
	c.updates = old ? old->updates + 1 : 1;
	bpf_map_update_elem(&counters, key, &c, BPF_ANY);
	if (bpf_map_lookup_elem(&watched, key) && (!old || old->value != value)) {
		struct life_event *ev = report(LIFE_EV_COUNTER);

		if (ev) {
			__builtin_memcpy(ev->kind, key, LIFE_NAME_LEN);
			ev->id = (__u64)value;
			bpf_ringbuf_submit(ev, 0);
		}
	}
	return 0;
}
