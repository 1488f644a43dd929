/* A run's network: named namespaces, veth pairs and taps with addresses, made
 * through libnl-route-3 and recorded in the undo journal before each change.
 * Every name carries "fd" and the run id; kernel names are short (IFNAMSIZ)
 * and the report maps them back to the scenario's names. */
#ifndef FAULTD_TOPO_H
#define FAULTD_TOPO_H

#include <stdbool.h>

#include <jansson.h>

#include "scenario.h"

#define TOPO_POOL "198.18"		/* RFC 2544 benchmarking range */

struct topo;
struct journal;
struct nl_sock;

/* Make the namespaces and links of @sc for run @run_id. NULL with errno;
 * whatever was made is journaled, so the caller's replay removes it. */
struct topo *topo__create(const struct scenario *sc, const char *run_id,
			  struct journal *j);
/* /run/netns/NAME of namespace @idx. */
const char *topo__ns_path(const struct topo *t, int idx);
/* Both ends of link @idx down or up. 0 or -errno. */
int topo__link_set(struct topo *t, int idx, bool up);
/* The ends' kernel names: {"l0": {"a": "fd3f9a1cl0a", "a_addr": ...}}. */
json_t *topo__names(const struct topo *t);
const char *topo__link_kernel_name(const struct topo *t, int idx);
/* The namespace path of link @idx's a end. */
const char *topo__link_a_ns(const struct topo *t, int idx);
/* Link @idx's b end and its namespace; NULL for a tap, which has none. */
const char *topo__link_b_name(const struct topo *t, int idx);
const char *topo__link_b_ns(const struct topo *t, int idx);
/* The a or b end's address/prefix (a tap's b is its user-space stack's). */
const char *topo__link_addr(const struct topo *t, int idx, bool b);
void topo__free(struct topo *t);	/* closes sockets; removal is the journal's */

/* A NETLINK_ROUTE socket (libnl) bound to the namespace at @netns_path, for
 * modules that change links there. NULL with errno. */
struct nl_sock *topo_nl_socket(const char *netns_path);

#endif
