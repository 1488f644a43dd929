#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

#include "journal.h"
#include "log.h"
#include "topo.h"
#include "topo_del.h"
#include "util.h"

struct topo_ns {
	char path[PATH_MAX];
	const char *name;		/* the scenario's */
	int fd;				/* open /run/netns/NAME */
	struct nl_sock *sk;		/* NETLINK_ROUTE bound to that namespace */
};

struct topo_link {
	char a[IFNAMSIZ], b[IFNAMSIZ];	/* kernel names */
	char a_addr[24], b_addr[24];
	int a_ns, b_ns;			/* b_ns -1: a tap */
	const char *name;		/* the scenario's */
	bool offloads_off;		/* TSO, GSO and GRO off on both ends */
};

struct topo {
	struct topo_ns *ns;
	size_t n_ns;
	struct topo_link *links;
	size_t n_links;
	char (*bridges)[IFNAMSIZ];	/* kernel names, one per sc->bridges */
	size_t n_bridges;
	const struct scenario *sc;
};

/* libnl's -NLE_* code as -errno: this module returns -errno only, so its
 * callers and its messages never mistake one code space for the other. */
static int nl_errno(int nlerr)
{
	static const struct { int nle, err; } map[] = {
		{NLE_INTR, EINTR}, {NLE_BAD_SOCK, EBADF}, {NLE_AGAIN, EAGAIN},
		{NLE_NOMEM, ENOMEM}, {NLE_EXIST, EEXIST}, {NLE_INVAL, EINVAL},
		{NLE_RANGE, ERANGE}, {NLE_MSGSIZE, EMSGSIZE}, {NLE_OPNOTSUPP, EOPNOTSUPP},
		{NLE_AF_NOSUPPORT, EAFNOSUPPORT}, {NLE_OBJ_NOTFOUND, ENOENT},
		{NLE_NOADDR, EADDRNOTAVAIL}, {NLE_BUSY, EBUSY}, {NLE_NOACCESS, EACCES},
		{NLE_PERM, EPERM}, {NLE_NODEV, ENODEV}, {NLE_PARSE_ERR, EINVAL},
	};
	int code = nlerr < 0 ? -nlerr : nlerr;

	if (!nlerr)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].nle == code)
			return -map[i].err;
	log_debug("%s: libnl: %s", __func__, nl_geterror(nlerr));
	return -EIO;
}

/* /run/netns must be a shared mount, so a namespace bind-mounted there is
 * seen in every mount namespace (what iproute2 does). */
static int netns_dir_ready(void)
{
	if (mkdir(TOPO_NETNS_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount("", TOPO_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (mount(TOPO_NETNS_DIR, TOPO_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return mount("", TOPO_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0 ? -errno : 0;
}

/* A named namespace: a child unshares and bind-mounts its namespace on
 * @path; it outlives the child (and faultd) until deleted. */
static int netns_create(const char *path)
{
	int fd, status, err;
	pid_t pid;

	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		unlink(path);
		return err;
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0 ||
		    mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
			_exit(errno & 0xff);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		err = WIFEXITED(status) && WEXITSTATUS(status) ? -WEXITSTATUS(status) : -EIO;
		unlink(path);
		return err;
	}
	return 0;
}

static int nl_open(void *arg)
{
	struct nl_sock **sk = arg;

	*sk = nl_socket_alloc();
	if (*sk && nl_connect(*sk, NETLINK_ROUTE)) {
		nl_socket_free(*sk);
		*sk = NULL;
	}
	return *sk ? 0 : -EIO;
}

/* A netlink socket bound to the namespace @fd. */
static struct nl_sock *nl_in(int fd)
{
	struct nl_sock *sk = NULL;
	int err = util_in_netns(fd, nl_open, &sk);

	if (!sk)
		errno = err ? -err : EIO;
	return sk;
}

struct nl_sock *topo_nl_socket(const char *netns_path)
{
	struct nl_sock *sk;
	int fd = open(netns_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	sk = nl_in(fd);
	close(fd);
	return sk;
}

static int set_up(struct nl_sock *sk, const char *name, bool up)
{
	struct rtnl_link *link = NULL, *change;
	int err;

	err = rtnl_link_get_kernel(sk, 0, name, &link);
	if (err)
		return nl_errno(err);
	change = rtnl_link_alloc();
	if (!change) {
		rtnl_link_put(link);
		return -ENOMEM;
	}
	if (up)
		rtnl_link_set_flags(change, IFF_UP);
	else
		rtnl_link_unset_flags(change, IFF_UP);
	err = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(link);
	return nl_errno(err);
}

static int add_addr(struct nl_sock *sk, const char *name, const char *cidr)
{
	struct rtnl_link *link = NULL;
	struct rtnl_addr *addr;
	struct nl_addr *local = NULL;
	int err;

	err = rtnl_link_get_kernel(sk, 0, name, &link);
	if (err)
		return nl_errno(err);
	err = nl_addr_parse(cidr, AF_INET, &local);
	addr = rtnl_addr_alloc();
	if (!err && addr) {
		rtnl_addr_set_ifindex(addr, rtnl_link_get_ifindex(link));
		err = rtnl_addr_set_local(addr, local);
		if (!err)
			err = rtnl_addr_add(sk, addr, 0);
	}
	if (!err && !addr)
		err = -NLE_NOMEM;
	rtnl_addr_put(addr);
	nl_addr_put(local);
	rtnl_link_put(link);
	return nl_errno(err);
}

static int make_veth(struct topo *t, struct topo_link *l)
{
	struct rtnl_link *veth, *peer;
	struct nl_sock *sk;
	int err;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	veth = rtnl_link_veth_alloc();
	if (!err && veth) {
		peer = rtnl_link_veth_get_peer(veth);
		rtnl_link_set_name(veth, l->a);
		rtnl_link_set_name(peer, l->b);
		/* Each end is born in its namespace: nothing lands in
		 * faultd's own, even for a moment. */
		rtnl_link_set_ns_fd(veth, t->ns[l->a_ns].fd);
		rtnl_link_set_ns_fd(peer, t->ns[l->b_ns].fd);
		err = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(peer);
	} else if (!err) {
		err = -NLE_NOMEM;
	}
	rtnl_link_put(veth);
	nl_socket_free(sk);
	return nl_errno(err);
}

/* A persistent tap, made inside its namespace: a user-space stack (lwIP,
 * DPDK) opens it by name later. Persistent taps are deleted with their
 * namespace, so the namespace's journal entry covers them. */
static int tap_open(void *arg)
{
	const char *name = arg;
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	int fd, err = 0;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

static int make_tap(const struct topo *t, const struct topo_link *l)
{
	return util_in_netns(t->ns[l->a_ns].fd, tap_open, (void *)l->a);
}

/* TSO, GSO and GRO off on interface @name in namespace @ns_fd, so the
 * kernel segments in software and the peer sees frames no larger than the
 * MTU. 0 or -errno. */
static int inet_socket(void *arg)
{
	int *sock = arg;

	*sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return *sock < 0 ? -errno : 0;
}

static int offloads_off(int ns_fd, const char *name)
{
	static const __u32 cmds[] = {ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO};
	int sock = -1, err;

	err = util_in_netns(ns_fd, inet_socket, &sock);
	for (size_t i = 0; !err && i < ARRAY_SIZE(cmds); i++) {
		struct ethtool_value ev = {.cmd = cmds[i], .data = 0};
		struct ifreq ifr = {.ifr_data = (void *)&ev};

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		if (ioctl(sock, SIOCETHTOOL, &ifr) < 0)
			err = -errno;
	}
	if (sock >= 0)
		close(sock);
	return err;
}

/* A bridge in its namespace, the named link ends enslaved to it, up, with
 * its address. The ends lose nothing: a port with an address still works. */
static int make_bridge(struct topo *t, const struct sc_bridge *b, const char *name)
{
	struct nl_sock *sk = t->ns[b->ns_idx].sk;
	struct rtnl_link *br = rtnl_link_bridge_alloc(), *master = NULL, *port = NULL;
	int err;

	if (!br)
		return -ENOMEM;
	rtnl_link_set_name(br, name);
	err = nl_errno(rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL));
	if (!err)
		err = nl_errno(rtnl_link_get_kernel(sk, 0, name, &master));
	for (size_t p = 0; !err && p < b->n_ports; p++) {
		const struct topo_link *l = &t->links[b->port_link[p]];

		err = nl_errno(rtnl_link_get_kernel(sk, 0, b->port_b[p] ? l->b : l->a, &port));
		if (!err)
			err = nl_errno(rtnl_link_enslave(sk, master, port));
		rtnl_link_put(port);
		port = NULL;
	}
	if (!err)
		err = set_up(sk, name, true);
	if (!err && b->addr)
		err = add_addr(sk, name, b->addr);
	rtnl_link_put(master);
	rtnl_link_put(br);
	return err;
}

/* A route in a namespace's main table: dst (or default) via a gateway that
 * one of its links reaches. Nothing here leads out of faultd's namespaces. */
static int make_route(struct topo *t, const struct sc_route *rt)
{
	struct nl_sock *sk = t->ns[rt->ns_idx].sk;
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst = NULL, *gw = NULL;
	int err;

	if (!route || !nh) {
		err = -NLE_NOMEM;	/* nl_errno() below makes it -ENOMEM */
		goto out;
	}
	err = nl_addr_parse(strcmp(rt->dst, "default") ? rt->dst : "0.0.0.0/0", AF_INET, &dst);
	if (!err)
		err = nl_addr_parse(rt->via, AF_INET, &gw);
	if (err)
		goto out;
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_dst(route, dst);
	rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(route, nh);
	nh = NULL;	/* the route owns it now */
	err = rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_EXCL);
out:
	if (nh)
		rtnl_route_nh_free(nh);
	rtnl_route_put(route);
	nl_addr_put(dst);
	nl_addr_put(gw);
	return nl_errno(err);
}

struct topo *topo__create(const struct scenario *sc, const char *run_id,
			  struct journal *j)
{
	struct topo *t;
	int err = 0;

	t = calloc(1, sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	t->ns = calloc(sc->n_ns + 1, sizeof(*t->ns));
	t->links = calloc(sc->n_links + 1, sizeof(*t->links));
	if (!t->ns || !t->links) {
		err = -ENOMEM;
		goto err_free;
	}
	for (size_t i = 0; i < sc->n_ns; i++)
		t->ns[i].fd = -1;
	err = netns_dir_ready();
	if (err) {
		log_err("%s: %s: %s", __func__, TOPO_NETNS_DIR, strerror(-err));
		goto err_free;
	}
	for (size_t i = 0; i < sc->n_ns; i++, t->n_ns++) {
		struct topo_ns *ns = &t->ns[i];

		ns->name = sc->namespaces[i];
		snprintf(ns->path, sizeof(ns->path), "%s/fd%s-%s", TOPO_NETNS_DIR, run_id,
			 sc->namespaces[i]);
		err = journal__add(j, "netns", ns->path);
		if (!err)
			err = netns_create(ns->path);
		if (!err) {
			ns->fd = open(ns->path, O_RDONLY | O_CLOEXEC);
			err = ns->fd < 0 ? -errno : 0;
		}
		if (!err) {
			ns->sk = nl_in(ns->fd);
			err = ns->sk ? set_up(ns->sk, "lo", true) : -errno;
		}
		if (err) {
			log_err("%s: namespace %s: %s", __func__, ns->path,
				strerror(-err));
			err = -EIO;
			goto err_free;
		}
	}
	for (size_t i = 0; i < sc->n_links; i++, t->n_links++) {
		const struct sc_link *sl = &sc->links[i];
		struct topo_link *l = &t->links[i];

		l->name = sl->name;
		l->a_ns = sl->a_ns;
		l->b_ns = sl->type == SC_LINK_TAP ? -1 : sl->b_ns;
		/* fd + 6-digit run id + l + index (< 100) + end: 12 bytes; a
		 * tap's one end ends in t. */
		snprintf(l->a, sizeof(l->a), "fd%.6sl%u%c", run_id, (unsigned)(i % 100),
			 l->b_ns < 0 ? 't' : 'a');
		if (l->b_ns >= 0)
			snprintf(l->b, sizeof(l->b), "fd%.6sl%ub", run_id, (unsigned)(i % 100));
		if (sl->a_addr)
			snprintf(l->a_addr, sizeof(l->a_addr), "%s", sl->a_addr);
		else
			snprintf(l->a_addr, sizeof(l->a_addr), TOPO_POOL ".%u.1/24",
				 (unsigned)(i % 256));
		if (sl->b_addr)
			snprintf(l->b_addr, sizeof(l->b_addr), "%s", sl->b_addr);
		else
			snprintf(l->b_addr, sizeof(l->b_addr), TOPO_POOL ".%u.2/24",
				 (unsigned)(i % 256));
		err = journal__add(j, "link", l->a);
		if (!err)
			err = l->b_ns < 0 ? make_tap(t, l) : make_veth(t, l);
		if (!err)
			err = add_addr(t->ns[l->a_ns].sk, l->a, l->a_addr);
		if (!err && l->b_ns >= 0)
			err = add_addr(t->ns[l->b_ns].sk, l->b, l->b_addr);
		l->offloads_off = l->b_ns >= 0 && sl->offloads == SC_OFFLOADS_OFF;
		if (!err && l->offloads_off) {
			err = offloads_off(t->ns[l->a_ns].fd, l->a);
			if (!err)
				err = offloads_off(t->ns[l->b_ns].fd, l->b);
		}
		if (!err)
			err = topo__link_set(t, (int)i, true);
		if (err) {
			log_err("%s: link %s (%s/%s): %s", __func__, sl->name, l->a, l->b,
				strerror(-err));
			err = -EIO;
			goto err_free;
		}
	}
	t->sc = sc;
	t->bridges = calloc(sc->n_bridges + 1, sizeof(*t->bridges));
	if (!t->bridges) {
		err = -ENOMEM;
		goto err_free;
	}
	for (size_t i = 0; i < sc->n_bridges; i++, t->n_bridges++) {
		snprintf(t->bridges[i], IFNAMSIZ, "fd%.6sb%u", run_id, (unsigned)(i % 100));
		err = journal__add(j, "link", t->bridges[i]);
		if (!err)
			err = make_bridge(t, &sc->bridges[i], t->bridges[i]);
		if (err) {
			log_err("%s: bridge %s (%s): %s", __func__, sc->bridges[i].name,
				t->bridges[i], strerror(-err));
			err = -EIO;
			goto err_free;
		}
	}
	for (size_t i = 0; i < sc->n_routes; i++) {
		err = make_route(t, &sc->routes[i]);
		if (err) {
			log_err("%s: route %s via %s in %s: %s", __func__, sc->routes[i].dst,
				sc->routes[i].via, sc->routes[i].ns, strerror(-err));
			err = -EIO;
			goto err_free;
		}
	}
	log_info("%s: run %s: %zu namespaces, %zu links, %zu bridges, %zu routes", __func__,
		 run_id, t->n_ns, t->n_links, t->n_bridges, sc->n_routes);
	return t;
err_free:
	topo__free(t);
	errno = -err;
	return NULL;
}

const char *topo__ns_path(const struct topo *t, int idx)
{
	return idx >= 0 && (size_t)idx < t->n_ns ? t->ns[idx].path : NULL;
}

const char *topo__link_kernel_name(const struct topo *t, int idx)
{
	return idx >= 0 && (size_t)idx < t->n_links ? t->links[idx].a : "?";
}

const char *topo__link_a_ns(const struct topo *t, int idx)
{
	return t->ns[t->links[idx].a_ns].path;
}

const char *topo__link_b_name(const struct topo *t, int idx)
{
	return t->links[idx].b_ns >= 0 ? t->links[idx].b : NULL;
}

const char *topo__link_b_ns(const struct topo *t, int idx)
{
	return t->links[idx].b_ns >= 0 ? t->ns[t->links[idx].b_ns].path : NULL;
}

const char *topo__link_addr(const struct topo *t, int idx, bool b)
{
	return b ? t->links[idx].b_addr : t->links[idx].a_addr;
}

int topo__link_set(struct topo *t, int idx, bool up)
{
	struct topo_link *l = &t->links[idx];
	int err;

	err = set_up(t->ns[l->a_ns].sk, l->a, up);
	if (!err && l->b_ns >= 0)
		err = set_up(t->ns[l->b_ns].sk, l->b, up);
	if (err)
		log_warn("%s: %s %s: %s", __func__, l->name, up ? "up" : "down", strerror(-err));
	return err ? -EIO : 0;
}

json_t *topo__names(const struct topo *t)
{
	json_t *obj = json_object(), *ns = json_object(), *links = json_object();

	for (size_t i = 0; ns && i < t->n_ns; i++)
		json_object_set_new(ns, t->ns[i].name, json_string(t->ns[i].path));
	for (size_t i = 0; links && i < t->n_links; i++) {
		const struct topo_link *l = &t->links[i];

		json_object_set_new(links, l->name, json_pack("{ssssssssss*sb}",
			"type", l->b_ns < 0 ? "tap" : "veth", "a", l->a, "a_addr", l->a_addr,
			"b_addr", l->b_addr, "b", l->b_ns < 0 ? NULL : l->b,
			"offloads", !l->offloads_off));
	}
	json_object_set_new(obj, "namespaces", ns ? ns : json_object());
	json_object_set_new(obj, "links", links ? links : json_object());
	if (t->n_bridges) {
		json_t *brs = json_object();

		for (size_t i = 0; brs && i < t->n_bridges; i++)
			json_object_set_new(brs, t->sc->bridges[i].name, json_string(t->bridges[i]));
		json_object_set_new(obj, "bridges", brs ? brs : json_object());
	}
	return obj;
}

void topo__free(struct topo *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->ns && i < t->n_ns + 1; i++) {
		if (t->ns[i].sk)
			nl_socket_free(t->ns[i].sk);
		if (t->ns[i].fd > 0)
			close(t->ns[i].fd);
	}
	free(t->ns);
	free(t->links);
	free(t->bridges);
	free(t);
}
