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
struct fault_type;

enum sc_type {
	SC_STR,		/* const char *, non-empty */
	SC_INT,		/* long long */
	SC_NUM,		/* double; integers accepted */
	SC_BOOL,	/* bool */
	SC_STRV,	/* const char **, NULL-terminated */
	SC_ENUM,	/* int: index into choices */
	SC_CPUS,	/* struct sc_cpus: CPU numbers, each in [0, CPU_SETSIZE) */
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

struct sc_cpus {
	int cpu[SC_MAX_CPUS];
	size_t n;			/* 0: none given */
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
	struct sc_cpus cpus;		/* pinned to these CPUs; none: not pinned */
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

enum sc_direction { SC_DIR_BOTH, SC_DIR_INGRESS, SC_DIR_EGRESS };

/* A fault as the scenario states it: what every fault has. Each fault
 * type's struct begins with this one and adds its parameters; its family
 * (daemon/fault/fault_family.h) declares the keys, checks and plays it. */
struct sc_fault {
	const struct fault_type *type;
	const char *type_name;		/* as written */
	const char *link;		/* link faults */
	int link_idx;
	const char *workload;		/* process and syscall faults */
	int wl_idx;
	long long at_ms;		/* one-shot faults, windows: when */
	long long for_ms;		/* windows: how long; 0 to the end */
	long long start_ms;		/* repeating faults: the first */
	int direction;			/* link windows: enum sc_direction, at the a end */
};

/* One action of an explicit fault schedule (the top-level "schedule"): the
 * planner plays these, as written, instead of planning the faults' own
 * timing. faultctl replay and shrink write them (docs/replay.md). */
struct sc_sched {
	long long at_ms;		/* from the run's start */
	long long fault;		/* index into faults: what the action acts on */
	const char *action;		/* a timeline action name: "link_down", ... */
	long long cycle;		/* the fault cycle it belongs to; 0: none */
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
	const char *suppressions;	/* a suppression file, resolved; NULL: none */

	const char **namespaces;	/* topology */
	size_t n_ns;
	struct sc_link *links;
	size_t n_links;
	struct sc_bridge *bridges;
	size_t n_bridges;
	struct sc_route *routes;
	size_t n_routes;
	struct sc_fault **faults;	/* each its type's struct */
	size_t n_faults;
	struct sc_sched *schedule;	/* sorted by at_ms, file order kept on ties */
	size_t n_schedule;
	bool has_schedule;		/* "schedule" given, even empty: nothing else fires */

	struct sc_workload *wl;
	size_t n_wl;
	struct sc_invariant *inv;
	size_t n_inv;

	void **allocs;			/* arrays made while parsing, freed with it */
	size_t n_allocs, cap_allocs;
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
/* A flap makes the fault cycles; without one, each sample_ms window does. */
bool scenario_has_cyclic_fault(const struct scenario *sc);
const char *scenario_kind_name(int kind);
const char *scenario_expect_name(int expect);

/* Used by tables of other modules (invariant parameters). */
int sc_parse_object(struct sc_ctx *ctx, json_t *obj, const struct sc_key *keys,
		    void *target);
/* A suppression file's path (@val), checked and resolved against the
 * scenario's folder, into *@out (kept with the scenario). 0 or -errno. */
int sc_suppress_file(struct sc_ctx *ctx, json_t *val, const char **out);
/* The key path being parsed; push before an element's error, pop after. */
struct jpath *sc_path(struct sc_ctx *ctx);
void sc_error(struct sc_ctx *ctx, bool at_key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
