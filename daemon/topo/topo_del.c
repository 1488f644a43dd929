/* The deletes the undo journal replays: see topo_del.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "topo_del.h"

int topo_del_netns(const char *path)
{
	if (strncmp(path, TOPO_NETNS_DIR "/fd", strlen(TOPO_NETNS_DIR "/fd")))
		return -EPERM;	/* only namespaces faultd named */
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int topo_del_link(const char *name)
{
	struct rtnl_link *link;
	struct nl_sock *sk;
	int err;

	if (strncmp(name, "fd", 2))
		return -EPERM;
	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err) {
		link = rtnl_link_alloc();
		rtnl_link_set_name(link, name);
		err = rtnl_link_delete(sk, link);
		rtnl_link_put(link);
	}
	nl_socket_free(sk);
	/* Already gone (its namespace took it) is what we want. */
	return err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND || err == 0 ? 0 : -EIO;
}
