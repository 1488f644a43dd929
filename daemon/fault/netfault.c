/* User side of bpf/netfault.bpf.c: load the object, attach one of its tc
 * programs to one direction of one link end, change its rates, read its
 * counters.
 *
 * Two ways to attach, chosen by trying, never by kernel version:
 * - a tcx link (bpf_link_create with attach types 46/47, Linux 6.6), which
 *   detaches when its last fd closes, even after kill -9;
 * - where the kernel refuses tcx, a clsact qdisc with a cls_bpf filter made
 *   over netlink (libbpf's bpf_tc_* API). Such a filter outlives faultd's
 *   kill -9: it is not faultd's to hold. It is tolerable only because every
 *   interface faultd attaches to lives in a namespace faultd made and wrote
 *   to its undo journal; the next faultd (or `faultctl cleanup`) unmounts
 *   that namespace, the workloads inside it died with faultd (PDEATHSIG),
 *   and the namespace's end takes its interfaces, their qdiscs, the filter
 *   and its program with it.
 * Once tcx is found missing it stays missing for the process: later
 * attaches go straight to tc. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "caps.h"
#include "log.h"
#include "netfault.skel.h"
#include "netfault_user.h"
#include "probe_util.h"
#include "util.h"

#define NF_TCX_INGRESS 46	/* BPF_TCX_INGRESS; libbpf 1.1 has no name for it */
#define NF_TCX_EGRESS 47	/* BPF_TCX_EGRESS */
#define NF_TC_HANDLE 0xfd	/* our cls_bpf filter's handle ... */
#define NF_TC_PRIO 0xfd		/* ... and priority: "fd" as faultd's names */
#define NF_WHY_MAX 160

/* A clsact qdisc our filters hang on. The ingress and egress instances of
 * one link end share it; the last of them to go removes it, if faultd made
 * it (a qdisc someone else made stays theirs). */
struct nf_hook {
	struct nf_hook *next;
	unsigned refs;			/* instances with a filter on it */
	bool created;			/* we made the qdisc */
	char netns_path[PATH_MAX];
	char ifname[IFNAMSIZ];
};

struct netfault {
	struct netfault_bpf *skel;
	struct netfault_conf conf;	/* what the map holds */
	__u32 reset_gens;		/* tcp_reset generations begun */
	int link_fd;			/* the tcx link, or -1 */
	struct nf_hook *hook;		/* attached as a cls_bpf filter on it instead */
	int dir;			/* NETFAULT_INGRESS or NETFAULT_EGRESS */
	char netns_path[PATH_MAX];	/* reopened to detach the filter */
	char ifname[IFNAMSIZ];
};

/* Runs attach from threads of their own (run_loop.c): the list, and the
 * tcx state below, are under nf_lock. A hook is one namespace's interface,
 * so only the run that owns it counts its refs. */
static struct nf_hook *nf_hooks;
static pthread_mutex_t nf_lock = PTHREAD_MUTEX_INITIALIZER;

PROBE_SKEL_OPS_DEFINE(netfault);

/* Both programs serve packet faults; a refusal of either is the feature's. */
static const struct probe_prog_cap nf_progs[] = {
	{"netfault_in", CAPS_PACKET},
	{"netfault_out", CAPS_PACKET},
};

/* Whether tcx was found missing in this process, and why. */
static bool nf_tcx_missing;
static char nf_tcx_why[NF_WHY_MAX];

struct nf_attach {
	struct netfault *nf;
	int prog_fd;
};

/* The kernel's way of saying it does not know tcx (an attach type it
 * cannot name, a link type it lacks), as opposed to a missing interface.
 * 524 is the kernel's own ENOTSUPP, which has no name in user space. */
static bool nf_tcx_refused(int err)
{
	return err == -EINVAL || err == -EOPNOTSUPP || err == -524 || err == -E2BIG ||
	       err == -ENOSYS;
}

/* From now on, for this process, packet faults go through tc. */
static void nf_tcx_set_missing(const char *why)
{
	pthread_mutex_lock(&nf_lock);
	nf_tcx_missing = true;
	snprintf(nf_tcx_why, sizeof(nf_tcx_why), "%s", why);
	pthread_mutex_unlock(&nf_lock);
	log_info("%s: no tcx (%s): packet faults go through tc clsact", __func__, why);
}

/* Try tcx? Not once it failed, nor under FAULTD_NO_TCX=1, with which a
 * test makes this kernel behave as one without tcx does. */
static bool nf_tcx_usable(void)
{
	const char *v = getenv("FAULTD_NO_TCX");
	bool missing;

	pthread_mutex_lock(&nf_lock);
	missing = nf_tcx_missing;
	pthread_mutex_unlock(&nf_lock);
	if (!missing && v && *v && strcmp(v, "0")) {
		nf_tcx_set_missing("FAULTD_NO_TCX is set");
		missing = true;
	}
	return !missing;
}

static int nf_tcx_attach(struct nf_attach *at, int ifindex)
{
	int type = at->nf->dir == NETFAULT_INGRESS ? NF_TCX_INGRESS : NF_TCX_EGRESS;

	at->nf->link_fd = bpf_link_create(at->prog_fd, ifindex, (enum bpf_attach_type)type,
					  NULL);
	return at->nf->link_fd < 0 ? -errno : 0;
}

static void nf_tc_hook(struct bpf_tc_hook *hook, int ifindex, enum bpf_tc_attach_point where)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = where;
}

static void nf_tc_opts(struct bpf_tc_opts *opts, int prog_fd)
{
	memset(opts, 0, sizeof(*opts));
	opts->sz = sizeof(*opts);
	opts->handle = NF_TC_HANDLE;
	opts->priority = NF_TC_PRIO;
	opts->prog_fd = prog_fd;
}

static enum bpf_tc_attach_point nf_tc_point(int dir)
{
	return dir == NETFAULT_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

static struct nf_hook *nf_hook_get(const struct netfault *nf)
{
	struct nf_hook *h;

	pthread_mutex_lock(&nf_lock);
	for (h = nf_hooks; h; h = h->next)
		if (!strcmp(h->netns_path, nf->netns_path) && !strcmp(h->ifname, nf->ifname))
			goto out;
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out;
	snprintf(h->netns_path, sizeof(h->netns_path), "%s", nf->netns_path);
	snprintf(h->ifname, sizeof(h->ifname), "%s", nf->ifname);
	h->next = nf_hooks;
	nf_hooks = h;
out:
	pthread_mutex_unlock(&nf_lock);
	return h;
}

/* Forget @h if no filter holds it; true if it was forgotten. */
static bool nf_hook_release(struct nf_hook *h)
{
	struct nf_hook **pp;

	if (h->refs)
		return false;
	pthread_mutex_lock(&nf_lock);
	for (pp = &nf_hooks; *pp && *pp != h; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = h->next;
	pthread_mutex_unlock(&nf_lock);
	free(h);
	return true;
}

/* Drop one filter's hold; true if it was the last. */
static bool nf_hook_put(struct nf_hook *h)
{
	h->refs--;
	return nf_hook_release(h);
}

/* A clsact qdisc (made unless one is there) and our filter on its hook.
 * Inside the link's namespace: libbpf's netlink socket is made per call. */
static int nf_tc_attach(struct nf_attach *at, int ifindex)
{
	struct nf_hook *h = nf_hook_get(at->nf);
	struct bpf_tc_hook hook;
	struct bpf_tc_opts opts;
	bool made;
	int err;

	if (!h)
		return -ENOMEM;
	nf_tc_hook(&hook, ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		goto err_put;
	made = !err;
	h->created |= made;
	nf_tc_hook(&hook, ifindex, nf_tc_point(at->nf->dir));
	nf_tc_opts(&opts, at->prog_fd);
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		goto err_destroy_hook;
	h->refs++;
	at->nf->hook = h;
	return 0;
err_destroy_hook:
	if (made) {
		nf_tc_hook(&hook, ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS);
		bpf_tc_hook_destroy(&hook);
		h->created = false;
	}
err_put:
	nf_hook_release(h);
	return err;
}

/* Inside the link's namespace: the interface index, the tcx link and the
 * netlink requests all belong to it. tcx first unless it is known missing. */
static int nf_attach_in_ns(void *arg)
{
	struct nf_attach *at = arg;
	int ifindex = (int)if_nametoindex(at->nf->ifname), err;
	char why[NF_WHY_MAX];

	if (!ifindex)
		return -ENODEV;
	if (nf_tcx_usable()) {
		err = nf_tcx_attach(at, ifindex);
		if (!err || !nf_tcx_refused(err))
			return err;
		snprintf(why, sizeof(why), "bpf_link_create(tcx): %s", strerror(-err));
		nf_tcx_set_missing(why);
	}
	return nf_tc_attach(at, ifindex);
}

/* Record how the attach went: the mechanism, or why neither works. Only
 * the kernel's refusals make the feature missing; a vanished interface or
 * namespace is this run's problem. */
static void nf_record(const struct netfault *nf, int err)
{
	char why[NF_WHY_MAX];
	bool missing;

	if (!err) {
		caps_set_ok(CAPS_PACKET, nf->hook ? "tc clsact" : "tcx");
		return;
	}
	pthread_mutex_lock(&nf_lock);
	missing = nf_tcx_missing;
	snprintf(why, sizeof(why), "%s", nf_tcx_why);
	pthread_mutex_unlock(&nf_lock);
	if (missing && (nf_tcx_refused(err) || err == -ENOENT || err == -EPERM))
		caps_set_missing(CAPS_PACKET, "%s; clsact qdisc with cls_bpf: %s", why,
				 strerror(-err));
}

static int nf_attach(struct netfault *nf)
{
	struct nf_attach at = {.nf = nf};
	int ns, err;

	at.prog_fd = bpf_program__fd(nf->dir == NETFAULT_INGRESS ? nf->skel->progs.netfault_in :
				     nf->skel->progs.netfault_out);
	ns = open(nf->netns_path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return -errno;
	err = util_in_netns(ns, nf_attach_in_ns, &at);
	close(ns);
	nf_record(nf, err);
	if (!err)
		log_debug("%s: %s %s: via %s", __func__, nf->ifname,
			  nf->dir == NETFAULT_INGRESS ? "ingress" : "egress",
			  nf->hook ? "tc clsact" : "tcx");
	return err;
}

/* Each CPU's generator from @seed (splitmix64, never 0): the same seed,
 * the same draws for the same packets on the same CPUs. */
static int nf_seed(struct netfault *nf, unsigned long long seed)
{
	int ncpu = libbpf_num_possible_cpus(), err = 0;
	__u64 *vals;
	__u32 key = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (int i = 0; i < ncpu; i++) {
		__u64 z = seed + 0x9e3779b97f4a7c15ull * (__u64)(i + 1);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		vals[i] = z ? z : 1;
	}
	if (bpf_map__update_elem(nf->skel->maps.rng, &key, sizeof(key), vals,
				 sizeof(*vals) * (size_t)ncpu, 0))
		err = -errno;
	free(vals);
	return err;
}

static int nf_write(struct netfault *nf)
{
	__u32 key = 0;

	return bpf_map__update_elem(nf->skel->maps.conf, &key, sizeof(key), &nf->conf,
				    sizeof(nf->conf), 0) ? -errno : 0;
}

struct netfault *netfault__attach(const char *netns_path, const char *ifname, int dir,
				  const struct netfault_conf *initial, unsigned long long seed)
{
	struct netfault *nf;
	int err = 0;

	nf = calloc(1, sizeof(*nf));
	if (!nf) {
		err = -ENOMEM;
		goto err_log;
	}
	nf->link_fd = -1;
	nf->dir = dir;
	snprintf(nf->netns_path, sizeof(nf->netns_path), "%s", netns_path);
	snprintf(nf->ifname, sizeof(nf->ifname), "%s", ifname);
	nf->skel = probe_load(&netfault_ops, nf_progs, ARRAY_SIZE(nf_progs), CAPS_PACKET,
			      NULL, NULL);
	if (!nf->skel) {
		err = -errno;
		goto err_free;
	}
	err = nf_seed(nf, seed);
	if (!err && initial)
		err = netfault__set_packet(nf, initial);
	if (err)
		goto err_destroy;
	err = nf_attach(nf);
	if (err)
		goto err_destroy;
	return nf;
err_destroy:
	netfault_bpf__destroy(nf->skel);
err_free:
	free(nf);
err_log:
	log_warn("%s: %s %s: %s", __func__, ifname, dir ? "egress" : "ingress", strerror(-err));
	errno = -err;
	return NULL;
}

int netfault__set_packet(struct netfault *nf, const struct netfault_conf *c)
{
	struct netfault_conf *k = &nf->conf;
	__u32 key = 0, good = 0;

	/* A burst model (re)starts in its good state. */
	if (c->burst != k->burst &&
	    bpf_map__update_elem(nf->skel->maps.ge_bad, &key, sizeof(key), &good, sizeof(good), 0))
		return -errno;
	k->drop_ppm = c->drop_ppm;
	k->corrupt_ppm = c->corrupt_ppm;
	k->duplicate_ppm = c->duplicate_ppm;
	k->blackhole = c->blackhole;
	k->burst = c->burst;
	k->ge_p_ppm = c->ge_p_ppm;
	k->ge_r_ppm = c->ge_r_ppm;
	k->ge_bad_ppm = c->ge_bad_ppm;
	k->ge_good_ppm = c->ge_good_ppm;
	return nf_write(nf);
}

int netfault__set_reset(struct netfault *nf, bool on, unsigned every_ms)
{
	struct netfault_conf *k = &nf->conf;

	/* A new generation: every flow gets its reset again. */
	if (on && !k->tcp_reset_gen)
		k->tcp_reset_gen = ++nf->reset_gens;
	else if (!on)
		k->tcp_reset_gen = 0;
	k->tcp_reset_every_ms = on ? every_ms : 0;
	return nf_write(nf);
}

int netfault__set_half_open(struct netfault *nf, bool on)
{
	nf->conf.tcp_blackhole = on;
	return nf_write(nf);
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
			out->burst_dropped += vals[i].burst_dropped;
			out->bursts += vals[i].bursts;
			out->reset += vals[i].reset;
		}
	}
	free(vals);
}

struct nf_detach {
	struct netfault *nf;
	bool last;			/* remove the qdisc too */
};

/* Inside the link's namespace: our filter off its hook, then the clsact
 * qdisc if it is ours and no filter of ours is left on it. Gone already is
 * fine: the interface may have gone with its peer. */
static int nf_detach_in_ns(void *arg)
{
	struct nf_detach *dt = arg;
	int ifindex = (int)if_nametoindex(dt->nf->ifname), err;
	struct bpf_tc_hook hook;
	struct bpf_tc_opts opts;

	if (!ifindex)
		return 0;
	nf_tc_hook(&hook, ifindex, nf_tc_point(dt->nf->dir));
	nf_tc_opts(&opts, 0);
	err = bpf_tc_detach(&hook, &opts);
	if (err == -ENOENT || err == -EINVAL)
		err = 0;
	if (err || !dt->last)
		goto out;
	nf_tc_hook(&hook, ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS);
	err = bpf_tc_hook_destroy(&hook);
	if (err == -ENOENT || err == -EINVAL)
		err = 0;
	if (!err)
		log_debug("%s: %s: clsact qdisc removed", __func__, dt->nf->ifname);
out:
	return err;
}

static void nf_tc_detach(struct netfault *nf)
{
	struct nf_detach dt = {.nf = nf, .last = nf->hook->created};
	int ns, err = 0;

	dt.last &= nf_hook_put(nf->hook);
	nf->hook = NULL;
	ns = open(nf->netns_path, O_RDONLY | O_CLOEXEC);
	/* No namespace: it took the interface and the filter with it. */
	if (ns < 0) {
		log_debug("%s: %s: namespace %s is gone, and the filter with it", __func__,
			  nf->ifname, nf->netns_path);
		return;
	}
	err = util_in_netns(ns, nf_detach_in_ns, &dt);
	close(ns);
	if (err)
		log_warn("%s: %s %s: %s", __func__, nf->ifname,
			 nf->dir == NETFAULT_INGRESS ? "ingress" : "egress", strerror(-err));
}

void netfault__destroy(struct netfault *nf)
{
	if (!nf)
		return;
	if (nf->hook)
		nf_tc_detach(nf);
	if (nf->link_fd >= 0)
		close(nf->link_fd);
	netfault_bpf__destroy(nf->skel);
	free(nf);
}
