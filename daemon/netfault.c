#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "netfault.skel.h"
#include "netfault_user.h"
#include "util.h"

struct netfault {
	struct netfault_bpf *skel;
	int link_fd;
};

/* tcx attach types; libbpf 1.1 has no wrapper for them. */
static const int tcx_type[] = {[NETFAULT_INGRESS] = 46, [NETFAULT_EGRESS] = 47};

struct nf_attach {
	struct netfault *nf;
	const char *ifname;
	int dir;
};

/* Inside the link's namespace: the interface index, and the link, belong
 * to it. */
static int nf_link(void *arg)
{
	struct nf_attach *at = arg;
	int ifindex = (int)if_nametoindex(at->ifname);

	if (ifindex)
		at->nf->link_fd = bpf_link_create(bpf_program__fd(at->dir == NETFAULT_INGRESS ?
							at->nf->skel->progs.netfault_in :
							at->nf->skel->progs.netfault_out),
						  ifindex, (enum bpf_attach_type)tcx_type[at->dir],
						  NULL);
	return !ifindex ? -ENODEV : at->nf->link_fd < 0 ? -errno : 0;
}

struct netfault *netfault__attach(const char *netns_path, const char *ifname, int dir,
				  const struct netfault_conf *initial)
{
	struct nf_attach at = {.ifname = ifname, .dir = dir};
	struct netfault *nf;
	int ns = -1, err = 0;

	nf = calloc(1, sizeof(*nf));
	if (!nf) {
		errno = ENOMEM;
		return NULL;
	}
	nf->link_fd = -1;
	nf->skel = netfault_bpf__open_and_load();
	if (!nf->skel) {
		err = -errno;
		goto err_free;
	}
	if (initial) {
		err = netfault__set(nf, initial);
		if (err)
			goto err_destroy;
	}
	ns = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (ns < 0) {
		err = -errno;
		goto err_close;
	}
	at.nf = nf;
	err = util_in_netns(ns, nf_link, &at);
	if (err)
		goto err_close;
	close(ns);
	return nf;
err_close:
	if (ns >= 0)
		close(ns);
err_destroy:
	netfault_bpf__destroy(nf->skel);
err_free:
	log_warn("%s: %s %s: %s", __func__, ifname, dir ? "egress" : "ingress", strerror(-err));
	free(nf);
	errno = -err;
	return NULL;
}

int netfault__set(struct netfault *nf, const struct netfault_conf *c)
{
	__u32 key = 0;

	return bpf_map__update_elem(nf->skel->maps.conf, &key, sizeof(key), c, sizeof(*c), 0)
	       ? -errno : 0;
}

void netfault__stats(const struct netfault *nf, struct netfault_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct netfault_stats *vals;
	__u32 key = 0;

	memset(out, 0, sizeof(*out));
	vals = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*vals)) : NULL;
	if (vals && bpf_map__lookup_elem(nf->skel->maps.stats, &key, sizeof(key), vals,
					 sizeof(*vals) * (size_t)ncpu, 0) == 0) {
		for (int i = 0; i < ncpu; i++) {
			out->seen += vals[i].seen;
			out->dropped += vals[i].dropped;
			out->corrupted += vals[i].corrupted;
			out->duplicated += vals[i].duplicated;
		}
	}
	free(vals);
}

void netfault__destroy(struct netfault *nf)
{
	if (!nf)
		return;
	if (nf->link_fd >= 0)
		close(nf->link_fd);
	netfault_bpf__destroy(nf->skel);
	free(nf);
}
