/* User side of bpf/lifecycle.bpf.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lifecycle.skel.h"
#include "log.h"
#include "probe_lifecycle.h"
#include "probe_util.h"
#include "util.h"

#define LIFE_MAX_LINKS 16

struct probe_lifecycle {
	struct lifecycle_bpf *skel;
	struct probe_ring ring;
	struct bpf_link *links[LIFE_MAX_LINKS];
	int n_links;
	unsigned n_ukinds;		/* entries of the ukinds map in use */
	probe_life_cb cb;
	void *arg;
};

static int on_sample(void *ctx, void *data, size_t len)
{
	struct probe_lifecycle *p = ctx;
	struct life_event ev;

	if (len < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	ev.kind[LIFE_NAME_LEN - 1] = '\0';
	ev.event[LIFE_NAME_LEN - 1] = '\0';
	p->cb(&ev, p->arg);
	return 0;
}

PROBE_SKEL_OPS_DEFINE(lifecycle);

/* Every program serves the one feature: USDT probes are uprobes. */
static const struct probe_prog_cap life_progs[] = {
	{"obj_create", CAPS_LIFECYCLE}, {"obj_event", CAPS_LIFECYCLE},
	{"obj_destroy", CAPS_LIFECYCLE}, {"uobj_create", CAPS_LIFECYCLE},
	{"uobj_destroy", CAPS_LIFECYCLE}, {"msg_send", CAPS_LIFECYCLE},
	{"msg_recv", CAPS_LIFECYCLE}, {"counter", CAPS_LIFECYCLE},
};

struct probe_lifecycle *probe_lifecycle__open(struct event_base *base, probe_life_cb cb, void *arg)
{
	struct probe_lifecycle *p;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	p->skel = probe_load(&lifecycle_ops, life_progs, ARRAY_SIZE(life_progs), CAPS_LIFECYCLE,
			     NULL, NULL);
	if (!p->skel) {
		err = -errno;
		log_warn("%s: load: %s", __func__, strerror(-err));
		goto err_free;
	}
	err = probe_ring_open(&p->ring, base, bpf_map__fd(p->skel->maps.events), on_sample, p);
	if (err)
		goto err_destroy;
	return p;
err_destroy:
	lifecycle_bpf__destroy(p->skel);
err_free:
	free(p);
	errno = -err;
	return NULL;
}

int probe_lifecycle__attach(struct probe_lifecycle *p, pid_t pid, const char *exe)
{
	struct {
		struct bpf_program *prog;
		const char *name;
	} probes[] = {
		{p->skel->progs.obj_create, "obj_create"},
		{p->skel->progs.obj_event, "obj_event"},
		{p->skel->progs.obj_destroy, "obj_destroy"},
		{p->skel->progs.msg_send, "msg_send"},
		{p->skel->progs.msg_recv, "msg_recv"},
		{p->skel->progs.counter, "counter"},
	};
	int found = 0;

	for (size_t i = 0; i < ARRAY_SIZE(probes) && p->n_links < LIFE_MAX_LINKS; i++) {
		struct bpf_link *l = bpf_program__attach_usdt(probes[i].prog, pid, exe,
							      "faultd", probes[i].name, NULL);

		if (!l) {
			log_debug("%s: %s: faultd:%s: %s", __func__, exe, probes[i].name,
				  strerror(errno));
			continue;
		}
		p->links[p->n_links++] = l;
		found++;
	}
	return found;
}

int probe_lifecycle__track_calls(struct probe_lifecycle *p, pid_t pid, const char *lib,
			    const char *create_fn, const char *destroy_fn, const char *kind)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	char name[LIFE_NAME_LEN] = {0};
	__u32 idx = p->n_ukinds;
	struct bpf_link *l;
	int err = 0;

	if (idx >= LIFE_MAX_UKINDS || p->n_links + 2 > LIFE_MAX_LINKS)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s", kind);
	if (bpf_map__update_elem(p->skel->maps.ukinds, &idx, sizeof(idx), name, sizeof(name), 0))
		return -errno;
	opts.bpf_cookie = idx;
	opts.func_name = create_fn;
	opts.retprobe = true;
	l = bpf_program__attach_uprobe_opts(p->skel->progs.uobj_create, pid, lib, 0, &opts);
	if (!l) {
		err = -errno;
		log_warn("%s: %s:%s: %s", __func__, lib, create_fn, strerror(-err));
		return err;
	}
	p->links[p->n_links++] = l;
	opts.func_name = destroy_fn;
	opts.retprobe = false;
	l = bpf_program__attach_uprobe_opts(p->skel->progs.uobj_destroy, pid, lib, 0, &opts);
	if (!l) {
		err = -errno;
		log_warn("%s: %s:%s: %s", __func__, lib, destroy_fn, strerror(-err));
		return err;
	}
	p->links[p->n_links++] = l;
	p->n_ukinds++;
	return 0;
}

int probe_lifecycle__watch(struct probe_lifecycle *p, const char *counter)
{
	char name[LIFE_NAME_LEN] = {0};
	__u8 one = 1;

	snprintf(name, sizeof(name), "%s", counter);
	return bpf_map__update_elem(p->skel->maps.watched, name, sizeof(name), &one,
				    sizeof(one), 0) ? -errno : 0;
}

void probe_lifecycle__count_alive(struct probe_lifecycle *p, const char *const *kinds, size_t n,
			     long long *out)
{
	struct life_obj_key key, next;
	int fd = bpf_map__fd(p->skel->maps.alive);
	void *prev = NULL;

	for (size_t i = 0; i < n; i++)
		out[i] = 0;
	while (n && bpf_map_get_next_key(fd, prev, &next) == 0) {
		next.kind[LIFE_NAME_LEN - 1] = '\0';
		for (size_t i = 0; i < n; i++)
			if (!strcmp(next.kind, kinds[i]))
				out[i]++;
		key = next;
		prev = &key;
	}
}

int probe_lifecycle__drain(struct probe_lifecycle *p)
{
	return p ? probe_ring_drain(&p->ring) : 0;
}

json_t *probe_lifecycle__alive(struct probe_lifecycle *p, int max)
{
	struct life_obj_key key, next;
	struct life_obj o;
	int fd = bpf_map__fd(p->skel->maps.alive), n = 0;
	json_t *arr = json_array();
	void *prev = NULL;

	while (arr && bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (n++ < max && bpf_map_lookup_elem(fd, &next, &o) == 0) {
			next.kind[LIFE_NAME_LEN - 1] = '\0';
			o.last_event[LIFE_NAME_LEN - 1] = '\0';
			json_array_append_new(arr, json_pack("{sssIsisIss}",
				"object_kind", next.kind, "id", (json_int_t)next.id,
				"created_tid", (int)o.create_tid, "events", (json_int_t)o.events,
				"last_event", o.last_event));
		}
		key = next;
		prev = &key;
	}
	return arr;
}

json_t *probe_lifecycle__inflight(struct probe_lifecycle *p, int max, unsigned long long *total)
{
	struct life_msg_key key, next;
	struct life_msg m;
	int fd = bpf_map__fd(p->skel->maps.inflight);
	json_t *arr = json_array();
	void *prev = NULL;

	*total = 0;
	while (arr && bpf_map_get_next_key(fd, prev, &next) == 0) {
		if ((*total)++ < (unsigned long long)max &&
		    bpf_map_lookup_elem(fd, &next, &m) == 0) {
			char ptr[32];

			snprintf(ptr, sizeof(ptr), "0x%llx", (unsigned long long)m.ptr);
			json_array_append_new(arr, json_pack("{sIsIsssi}",
				"queue", (json_int_t)next.queue, "seq", (json_int_t)next.seq,
				"ptr", ptr, "sent_tid", (int)m.tid));
		}
		key = next;
		prev = &key;
	}
	return arr;
}

json_t *probe_lifecycle__counters(struct probe_lifecycle *p)
{
	char key[LIFE_NAME_LEN], next[LIFE_NAME_LEN];
	struct life_counter c;
	int fd = bpf_map__fd(p->skel->maps.counters);
	json_t *obj = json_object();
	void *prev = NULL;

	while (obj && bpf_map_get_next_key(fd, prev, next) == 0) {
		if (bpf_map_lookup_elem(fd, next, &c) == 0) {
			next[LIFE_NAME_LEN - 1] = '\0';
			json_object_set_new(obj, next, json_integer((json_int_t)c.value));
		}
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return obj;
}

unsigned long long probe_lifecycle__lost(const struct probe_lifecycle *p)
{
	unsigned long long sum = 0;

	for (__u32 k = 0; p && k < LIFE_LOSS__MAX; k++)
		sum += probe_percpu_sum(p->skel->maps.losses, k);
	return sum;
}

void probe_lifecycle__destroy(struct probe_lifecycle *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_links; i++)
		bpf_link__destroy(p->links[i]);
	probe_ring_close(&p->ring);
	lifecycle_bpf__destroy(p->skel);
	free(p);
}
