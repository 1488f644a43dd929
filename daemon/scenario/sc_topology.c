/* The "topology" section: namespaces, links (veth, tap), addresses,
 * bridges and routes. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "sc_priv.h"
#include "scenario.h"
#include "secfault.h"
#include "util.h"

static const char *const link_types[] = {"veth", "tap", NULL};
static const char *const offload_modes[] = {"auto", "on", "off", NULL};

#define LK(f) offsetof(struct sc_link, f)

static const struct sc_key link_keys[] = {
	{"name", SC_STR, SC_REQ, LK(name), .doc = "link name"},
	{"type", SC_ENUM, SC_REQ, LK(type), .choices = link_types, .doc = "veth or tap"},
	{"a", SC_STR, SC_REQ, LK(a), .doc = "namespace of end a (a tap's kernel side)"},
	{"b", SC_STR, 0, LK(b), .doc = "namespace of end b (veth only)"},
	{"a_addr", SC_STR, 0, LK(a_addr), .doc = "address/prefix of end a"},
	{"b_addr", SC_STR, 0, LK(b_addr), .doc = "address/prefix of end b"},
	{"offloads", SC_ENUM, 0, LK(offloads), .choices = offload_modes, .def = "\"auto\"",
	 .doc = "TSO/GSO/GRO of a veth's ends: auto is off where a dpdk-client "
		"attaches (it takes no frame over the MTU), else on"},
	{NULL},
};

static bool valid_cidr(const char *s)
{
	unsigned a, b, c, d, len;
	char extra;

	return sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &extra) == 5 &&
	       a < 256 && b < 256 && c < 256 && d < 256 && len >= 1 && len <= 30;
}

static int parse_topo_links(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	json_t *item;
	size_t i;
	int err = 0;

	if (!json_is_array(val)) {
		sc_error(ctx, false, "expected an array of links, got %s", sc_json_type_name(val));
		return -EINVAL;
	}
	if (json_array_size(val) > SC_MAX_LINKS) {
		sc_error(ctx, false, "at most %d links", SC_MAX_LINKS);
		return -EINVAL;
	}
	sc->n_links = json_array_size(val);
	sc->links = sc_track(ctx, calloc(sc->n_links + 1, sizeof(*sc->links)));
	if (!sc->links)
		return -ENOMEM;
	json_array_foreach(val, i, item) {
		struct sc_link *l = &sc->links[i];
		int e;

		jpath_push_idx(&ctx->path, i);
		l->b_ns = -1;
		e = sc_parse_object(ctx, item, link_keys, l);
		if (!e && l->type == SC_LINK_VETH && !l->b) {
			sc_error(ctx, false, "missing required key \"b\" (a veth joins two "
				 "namespaces)");
			e = -EINVAL;
		}
		if (!e && l->type == SC_LINK_TAP && l->b) {
			jpath_push_key(&ctx->path, "b");
			sc_error(ctx, true, "a tap has one end in a namespace; its other end is "
				 "the workload's own stack (give its address as b_addr)");
			jpath_pop(&ctx->path);
			e = -EINVAL;
		}
		for (int end = 0; !e && end < 2; end++) {
			const char *ns = end ? l->b : l->a, *addr = end ? l->b_addr : l->a_addr;
			int idx = ns ? scenario_ns_idx(sc, ns) : -1;

			if (ns && idx < 0) {
				jpath_push_key(&ctx->path, end ? "b" : "a");
				sc_error(ctx, false, "namespace '%s' is not declared in "
					 "topology.namespaces", ns);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			if (addr && !valid_cidr(addr)) {
				jpath_push_key(&ctx->path, end ? "b_addr" : "a_addr");
				sc_error(ctx, false, "'%s' is not an IPv4 address/prefix "
					 "(e.g. 198.18.0.1/24)", addr);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
			*(end ? &l->b_ns : &l->a_ns) = idx;
		}
		if (!e && l->type == SC_LINK_VETH && l->a_ns == l->b_ns) {
			sc_error(ctx, false, "a link joins two different namespaces");
			e = -EINVAL;
		}
		for (size_t j = 0; !e && j < i; j++) {
			/* A link whose name was rejected has none to compare. */
			if (sc->links[j].name && l->name && !strcmp(sc->links[j].name, l->name)) {
				jpath_push_key(&ctx->path, "name");
				sc_error(ctx, false, "duplicate link name '%s'", l->name);
				jpath_pop(&ctx->path);
				e = -EINVAL;
			}
		}
		jpath_pop(&ctx->path);
		if (e && !err)
			err = e;
	}
	return err;
}

static int parse_namespaces(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	int err = sc_parse_strv(ctx, val, &sc->namespaces);

	if (err)
		return err;
	while (sc->namespaces[sc->n_ns])
		sc->n_ns++;
	for (size_t i = 0; i < sc->n_ns; i++) {
		jpath_push_idx(&ctx->path, i);
		if (!sc_valid_name(sc->namespaces[i])) {
			sc_error(ctx, false, "'%s' is not a valid name", sc->namespaces[i]);
			err = -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(sc->namespaces[i], sc->namespaces[j])) {
				sc_error(ctx, false, "duplicate namespace '%s'", sc->namespaces[i]);
				err = -EINVAL;
			}
		jpath_pop(&ctx->path);
	}
	return err;
}

static bool valid_ip(const char *s)
{
	unsigned a, b, c, d;
	char extra;

	return sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a < 256 && b < 256 &&
	       c < 256 && d < 256;
}

#define BR(f) offsetof(struct sc_bridge, f)
static const struct sc_key bridge_keys[] = {
	{"name", SC_STR, SC_REQ, BR(name), .doc = "bridge name"},
	{"ns", SC_STR, SC_REQ, BR(ns), .doc = "the namespace it lives in"},
	{"ports", SC_STRV, SC_REQ, BR(ports), .doc = "links whose end in ns joins it"},
	{"addr", SC_STR, 0, BR(addr), .doc = "address/prefix on the bridge"},
	{NULL},
};

static int check_bridge(struct sc_ctx *ctx, struct scenario *sc, struct sc_bridge *br)
{
	int err = 0;

	br->ns_idx = scenario_ns_idx(sc, br->ns);
	if (br->ns_idx < 0) {
		jpath_push_key(&ctx->path, "ns");
		sc_error(ctx, false, "namespace '%s' is not declared in topology.namespaces",
			 br->ns);
		jpath_pop(&ctx->path);
		return -EINVAL;
	}
	if (br->addr && !valid_cidr(br->addr)) {
		jpath_push_key(&ctx->path, "addr");
		sc_error(ctx, false, "'%s' is not an IPv4 address/prefix", br->addr);
		jpath_pop(&ctx->path);
		err = -EINVAL;
	}
	jpath_push_key(&ctx->path, "ports");
	for (size_t p = 0; br->ports[p]; p++) {
		int l = scenario_link_idx(sc, br->ports[p]);

		jpath_push_idx(&ctx->path, p);
		if (p >= SC_MAX_PORTS) {
			sc_error(ctx, false, "at most %d ports", SC_MAX_PORTS);
			err = -EINVAL;
		} else if (l < 0) {
			sc_error(ctx, false, "no link named '%s' in topology.links", br->ports[p]);
			err = -EINVAL;
		} else if (sc->links[l].a_ns != br->ns_idx && sc->links[l].b_ns != br->ns_idx) {
			sc_error(ctx, false, "link '%s' has no end in namespace '%s'", br->ports[p],
				 br->ns);
			err = -EINVAL;
		} else {
			br->port_link[p] = l;
			br->port_b[p] = sc->links[l].a_ns != br->ns_idx;
			br->n_ports = p + 1;
		}
		jpath_pop(&ctx->path);
	}
	jpath_pop(&ctx->path);
	return err;
}

static int check_bridge_at(struct sc_ctx *ctx, void *elem, size_t i, void *sc)
{
	(void)i;
	return check_bridge(ctx, sc, elem);
}

static int parse_bridges(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	int err;

	sc->bridges = sc_parse_array(ctx, val, "bridges", bridge_keys, sizeof(*sc->bridges),
				     &sc->n_bridges, check_bridge_at, sc, &err);
	return err;
}

#define RT(f) offsetof(struct sc_route, f)
static const struct sc_key route_keys[] = {
	{"ns", SC_STR, SC_REQ, RT(ns), .doc = "the namespace whose table gets it"},
	{"dst", SC_STR, SC_REQ, RT(dst), .doc = "A.B.C.D/LEN or default"},
	{"via", SC_STR, SC_REQ, RT(via), .doc = "the gateway"},
	{NULL},
};

/* A route's namespace is declared, its destination and gateway are
 * addresses. */
static int check_route(struct sc_ctx *ctx, void *elem, size_t i, void *arg)
{
	const struct scenario *sc = arg;
	struct sc_route *rt = elem;
	int e = 0;

	(void)i;
	if ((rt->ns_idx = scenario_ns_idx(sc, rt->ns)) < 0) {
		jpath_push_key(&ctx->path, "ns");
		sc_error(ctx, false, "namespace '%s' is not declared in "
			 "topology.namespaces", rt->ns);
		jpath_pop(&ctx->path);
		e = -EINVAL;
	}
	if (!e && strcmp(rt->dst, "default") && !valid_cidr(rt->dst)) {
		jpath_push_key(&ctx->path, "dst");
		sc_error(ctx, false, "'%s' is not A.B.C.D/LEN or \"default\"", rt->dst);
		jpath_pop(&ctx->path);
		e = -EINVAL;
	}
	if (!e && !valid_ip(rt->via)) {
		jpath_push_key(&ctx->path, "via");
		sc_error(ctx, false, "'%s' is not an IPv4 address", rt->via);
		jpath_pop(&ctx->path);
		e = -EINVAL;
	}
	return e;
}

static int parse_routes(struct sc_ctx *ctx, json_t *val, void *target)
{
	struct scenario *sc = target;
	int err;

	sc->routes = sc_parse_array(ctx, val, "routes", route_keys, sizeof(*sc->routes),
				    &sc->n_routes, check_route, sc, &err);
	return err;
}

int sc_parse_topology(struct sc_ctx *ctx, json_t *val, void *target)
{
	static const struct sc_key topo_keys[] = {
		{"namespaces", SC_CUSTOM, 0, 0, .parse = parse_namespaces,
		 .doc = "namespace names"},
		{"links", SC_CUSTOM, 0, 0, .parse = parse_topo_links,
		 .doc = "veth pairs and taps"},
		{"bridges", SC_CUSTOM, 0, 0, .parse = parse_bridges,
		 .doc = "bridges joining link ends in a namespace"},
		{"routes", SC_CUSTOM, 0, 0, .parse = parse_routes,
		 .doc = "routes inside the namespaces"},
		{NULL},
	};

	/* Keys are parsed in table order, so namespaces are known before
	 * the links that refer to them, whatever the order in the file. */
	return sc_parse_object(ctx, val, topo_keys, target);
}
