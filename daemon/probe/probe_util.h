/* What every probe's user side does the same way: a BPF ring buffer read
 * from the event loop, per-CPU counters summed, uprobe links made and
 * released without holding up the loop. */
#ifndef FAULTD_PROBE_UTIL_H
#define FAULTD_PROBE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <bpf/libbpf.h>
#include <event2/event.h>

#include "caps.h"

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

/* --- loading one object so that a refused program costs only its feature --- */

/* A program of an object and the feature it serves. */
struct probe_prog_cap {
	const char *prog;		/* its name in the object */
	enum caps_id cap;
};

/* A skeleton's open, load and destroy, without its type: PROBE_SKEL_OPS. */
struct probe_skel_ops {
	const char *name;		/* "proc", for the log */
	void *(*open)(void);
	struct bpf_object_skeleton *(*skeleton)(void *skel);
	int (*load)(void *skel);
	void (*destroy)(void *skel);
};

#define PROBE_SKEL_OPS_DEFINE(N)						\
	static void *N##_ops_open(void) { return N##_bpf__open(); }		\
	static struct bpf_object_skeleton *N##_ops_skeleton(void *s)		\
	{ return ((struct N##_bpf *)s)->skeleton; }				\
	static int N##_ops_load(void *s) { return N##_bpf__load(s); }		\
	static void N##_ops_destroy(void *s) { N##_bpf__destroy(s); }		\
	static const struct probe_skel_ops N##_ops = {				\
		#N, N##_ops_open, N##_ops_skeleton, N##_ops_load, N##_ops_destroy, \
	}

/* Open and load an object. Programs whose feature is already missing are
 * not loaded; a program the kernel refuses marks its feature missing (with
 * the verifier's last lines) and the object is loaded again without it.
 * @prepare, if any, runs on every fresh open before the load (rodata,
 * choosing between alternative programs); 0 or -errno. If a program of
 * @main is refused, or @main is missing already, the object fails with
 * -ENOTSUP. Programs not in @progs load as the object has them. The loaded
 * skeleton, or NULL with errno set. */
void *probe_load(const struct probe_skel_ops *ops, const struct probe_prog_cap *progs,
		 size_t n_progs, enum caps_id main,
		 int (*prepare)(void *skel, void *arg), void *arg);

/* Attach every loaded program that libbpf can attach by itself (tp_btf,
 * raw_tp...) into the skeleton's links. A failure costs the program's
 * feature as a refused load does; -ENOTSUP if it is @main's. 0 or -errno. */
int probe_attach_auto(void *skel, const struct probe_skel_ops *ops,
		      const struct probe_prog_cap *progs, size_t n_progs, enum caps_id main);

/* Is @prog of a loaded object loaded? */
bool probe_prog_loaded(const struct bpf_program *prog);

/* --- uprobe links ------------------------------------------------------------------ */

/* Can this kernel attach uprobes as uprobe_multi links (Linux 6.6)? Asked
 * once. Such a link's release waits for its grace periods without the
 * kernel's global trace-event lock, so releases on parallel threads
 * overlap; a perf-event uprobe's do not (about 50 ms each, one after the
 * other). Asked only with FAULTD_UPROBE_MULTI=1: such a link does not see
 * a vfork child's calls on its parent's heap (probe_util.c). */
bool probe_uprobe_multi(void);
/* What a program loaded for probe_uprobe_multi_attach must expect. */
#define PROBE_ATTACH_UPROBE_MULTI 48	/* BPF_TRACE_UPROBE_MULTI (Linux 6.6 uapi) */
/* Attach @prog_fd to @path at file offset @off in process @pid as a
 * uprobe_multi link (a return probe with @ret). The link's fd, or -errno. */
int probe_uprobe_multi_attach(int prog_fd, pid_t pid, const char *path, size_t off,
			      __u64 cookie, bool ret);

/* Release a uprobe link (a libbpf @link, or a bare link @fd when @link is
 * NULL) off the event loop: closing one waits for the kernel's grace
 * periods, 50 to 100 ms here. A few threads close them side by side; the
 * link keeps its program loaded until then. */
void probe_link_release(struct bpf_link *link, int fd);
/* Wait up to @max_ms for the released links to be closed (before the
 * process exits: an exiting process closes what is left one by one).
 * true if none is left. */
bool probe_links_settle(int max_ms);
#define PROBE_SETTLE_MS 10000	/* at exit: 20 perf-event links take 1 to 2 s */

#endif
