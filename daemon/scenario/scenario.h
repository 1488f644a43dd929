/* A scenario file, parsed and validated. Parsing is strict: unknown keys,
 * wrong types and values out of range are errors that name the file, line,
 * column and key path, and nothing starts on a bad file. Keys are declared
 * in tables (struct sc_key), one per object kind, as Redis declares config. */
#ifndef FAULTD_SCENARIO_H
#define FAULTD_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jpos.h"

struct sc_ctx;
struct inv_def;

enum sc_type {
	SC_STR,		/* const char *, non-empty */
	SC_INT,		/* long long */
	SC_NUM,		/* double; integers accepted */
	SC_BOOL,	/* bool */
	SC_STRV,	/* const char **, NULL-terminated */
	SC_ENUM,	/* int: index into choices */
	SC_CUSTOM,	/* parse() does it all */
};

#define SC_REQ 0x1	/* the key must be present */

struct sc_key {
	const char *name;
	enum sc_type type;
	unsigned flags;
	size_t off;			/* offset of the field in the target struct */
	double min, max;		/* SC_INT, SC_NUM: inclusive bounds */
	const char *const *choices;	/* SC_ENUM: NULL-terminated */
	int (*parse)(struct sc_ctx *ctx, json_t *val, void *target);
	const char *def;		/* default as JSON text, NULL for none */
	const char *doc;		/* one line for docs and errors */
};

enum wl_kind { WL_EXEC, WL_ECHO_SERVER, WL_LWIP_CLIENT, WL_MSGQ, WL_QPAIR, WL_WS_SERVER,
	       WL_DPDK_CLIENT };

#define SC_MAX_CPUS 16		/* CPUs listed in one "cpus" */

/* A user's own allocator function ("allocators" of a workload): tracked
 * like malloc or free by the heap probe. */
struct sc_allocator {
	const char *alloc;		/* a function that allocates, or */
	const char *free;		/* one that releases */
	const char *lib;		/* the file that has it; NULL: the program */
	long long size_arg;		/* alloc: 1-based argument holding the size, 0: none */
	long long ptr_arg;		/* free: the pointer's argument; alloc: an
					 * out-pointer argument, 0: returned */
};

struct sc_workload {
	const char *name;
	int kind;			/* enum wl_kind */
	const char *netns;
	const char *link;		/* lwip-client: the tap link its stack owns */
	int link_idx;
	const char **cmd;		/* exec: argv */
	const char **args;		/* bundled kinds: extra arguments */
	const char **env;		/* "KEY=VALUE" */
	const char **probes;
	const char *cwd;
	bool asan;			/* run the bundled kind's ASan+UBSan build */
	int cpus[SC_MAX_CPUS];		/* pinned to these CPUs; n_cpus 0: not pinned */
	size_t n_cpus;
	bool service;			/* runs until the others end */
	bool service_set;		/* "service" was given explicitly */
	double timeout_s;		/* 0: no timeout */
	long long stop_grace_ms;	/* SIGTERM to SIGKILL when stopping */
	long long output_max_kb;	/* per stream, head and tail kept */
	struct sc_allocator *allocators;	/* the program's own allocators */
	size_t n_allocators;
};

struct sc_invariant {
	const char *name;
	const char *workload;		/* NULL: every workload */
	int workload_idx;		/* -1: every workload */
	const struct inv_def *def;
	void *params;			/* the invariant's own parameter struct */
};

enum sc_expect { SC_EXPECT_PASS, SC_EXPECT_FAIL, SC_EXPECT_INCONCLUSIVE };

enum sc_link_type { SC_LINK_VETH, SC_LINK_TAP };
/* Segmentation and receive offloads of a veth's ends. A kernel sender with
 * TSO/GSO hands its peer frames of up to 64 KB; a user-space port (DPDK's
 * af_packet) takes at most an mbuf and loses the rest, as a NIC on a wire
 * never sees them. "auto": off on a link a dpdk-client uses, else on. */
enum sc_offloads { SC_OFFLOADS_AUTO, SC_OFFLOADS_ON, SC_OFFLOADS_OFF };

struct sc_link {
	const char *name;
	int type;			/* enum sc_link_type */
	const char *a, *b;		/* namespace names; a tap has no b */
	const char *a_addr, *b_addr;	/* address/prefix; NULL: from the pool.
					 * A tap's b_addr is its user-space
					 * stack's, passed to the workload. */
	int a_ns, b_ns;			/* indexes into namespaces; b_ns -1 for a tap */
	int offloads;			/* enum sc_offloads; AUTO left after parsing is on */
};

#define SC_MAX_PORTS 16

struct sc_bridge {
	const char *name;
	const char *ns;			/* the namespace it lives in */
	const char **ports;		/* link names; their end in ns joins */
	const char *addr;		/* address/prefix on the bridge, or NULL */
	int ns_idx;
	int port_link[SC_MAX_PORTS];	/* link index of each port */
	bool port_b[SC_MAX_PORTS];	/* the port is the link's b end */
	size_t n_ports;
};

struct sc_route {
	const char *ns;
	const char *dst;		/* "A.B.C.D/LEN" or "default" */
	const char *via;		/* gateway address */
	int ns_idx;
};

enum sc_fault_type {
	SC_F_LINK_FLAP, SC_F_LINK_DOWN, SC_F_LINK_UP, SC_F_RANDOM,
	SC_F_PAUSE, SC_F_RESUME, SC_F_KILL, SC_F_PACKET, SC_F_SYSCALL_ERROR,
	SC_F_RATE, SC_F_DELAY, SC_F_CPU_HOG, SC_F_PAUSE_FLAP,
};

enum sc_direction { SC_DIR_BOTH, SC_DIR_INGRESS, SC_DIR_EGRESS };

struct sc_fault {
	int type;			/* enum sc_fault_type */
	const char *type_name;		/* as written */
	const char *link;		/* link faults */
	int link_idx;
	const char *workload;		/* process faults */
	int wl_idx;
	long long at_ms;		/* one-shot faults */
	long long start_ms;		/* flaps */
	long long down_ms, up_ms;
	long long cycles;		/* 0: until the run ends */
	long long jitter_ms;
	long long settle_ms;		/* after up, before the cycle's sample */
	long long min_down_ms, max_down_ms, min_up_ms, max_up_ms;	/* random */
	const char *signal;		/* kill */
	int signo;
	long long for_ms;		/* packet: window length; 0 to the end */
	double drop_pct, corrupt_pct, duplicate_pct;	/* packet */
	bool blackhole;
	int direction;			/* enum sc_direction, at the link's a end */
	int syscall;			/* syscall_error: index into sysfault's call table */
	const char *errno_name;		/* syscall_error: "ENFILE" */
	int err;			/* its value */
	double pct;			/* syscall_error: share of calls that fail */
	long long rate_kbit;		/* rate */
	long long burst_kb;		/* rate: 0 picks one from the rate */
	long long latency_ms;		/* rate: longest a packet may queue */
	long long delay_ms, delay_jitter_ms;	/* delay */
	int cpus[SC_MAX_CPUS];		/* cpu_hog: the CPUs it keeps busy */
	size_t n_cpus;
	long long threads;		/* cpu_hog: busy processes per CPU */
	long long every_ms;		/* kill: repeat this often; 0: once */
	long long count;		/* kill with every_ms, pause_flap: 0 to the end */
	long long pause_ms, run_ms;	/* pause_flap */
};

struct scenario {
	char *path;			/* as given; used in every error */
	char *text;			/* the file's bytes */
	size_t text_len;
	char sha256[65];
	json_t *root;			/* owns every string below */

	long long version;
	const char *name;
	const char *description;
	long long seed;
	bool seed_set;
	double duration_s;
	long long sample_ms;
	int expect;			/* enum sc_expect */

	const char **namespaces;	/* topology */
	size_t n_ns;
	struct sc_link *links;
	size_t n_links;
	struct sc_bridge *bridges;
	size_t n_bridges;
	struct sc_route *routes;
	size_t n_routes;
	struct sc_fault *faults;
	size_t n_faults;

	struct sc_workload *wl;
	size_t n_wl;
	struct sc_invariant *inv;
	size_t n_inv;

	void **allocs;			/* arrays made while parsing, freed with it */
	size_t n_allocs;
};

/* Parse @len bytes of @text read from @path. On error returns -EINVAL and
 * *errors holds one "FILE:LINE:COL: key.path: message" per line (caller
 * frees). Other -errno for allocation failures. */
int scenario_parse(const char *path, const char *text, size_t len,
		   struct scenario **out, char **errors);
/* Read @path and parse it; a read error is reported in *errors as well. */
int scenario_load(const char *path, struct scenario **out, char **errors);
void scenario_free(struct scenario *sc);

int scenario_workload_idx(const struct scenario *sc, const char *name);
/* Does workload @w ask for the probe named @probe ("heap", "fds", ...)? */
bool scenario_wl_has_probe(const struct sc_workload *w, const char *probe);
int scenario_ns_idx(const struct scenario *sc, const char *name);
/* The index of the link named @name, or -1. */
int scenario_link_idx(const struct scenario *sc, const char *name);
const char *scenario_fault_name(int type);
/* A flap makes the fault cycles; without one, each sample_ms window does. */
bool scenario_has_cyclic_fault(const struct scenario *sc);
const char *scenario_kind_name(int kind);
const char *scenario_expect_name(int expect);

/* Used by tables of other modules (invariant parameters). */
int sc_parse_object(struct sc_ctx *ctx, json_t *obj, const struct sc_key *keys,
		    void *target);
/* The key path being parsed; push before an element's error, pop after. */
struct jpath *sc_path(struct sc_ctx *ctx);
void sc_error(struct sc_ctx *ctx, bool at_key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
