/* dp_port: EAL, one net_af_packet port, and an lwIP netif over it.
 *
 * Threads. The main thread is EAL's only lcore and runs the application
 * (TLS, WebSocket) through lwIP's socket API. lwIP's tcpip thread runs the
 * stack; linkoutput runs there (or in the main thread under the core lock),
 * so TX queue 0 has exactly one user at a time: the core lock. A poll
 * thread of ours owns RX queue 0: it copies each received frame into a
 * pbuf, frees the mbuf at once and hands the pbuf to tcpip_input; an empty
 * burst makes it sleep DP_IDLE_NS, so an idle client costs next to no CPU
 * on a 2-core box. The same thread watches the veth's flags and exports
 * mbuf_in_use.
 *
 * MAC. net_af_packet takes its MAC from the interface, so the port's MAC
 * (rte_eth_macaddr_get) *is* the veth's, which the kernel on the same end
 * also uses. lwIP gets a MAC of its own instead (locally administered
 * 02:dc plus its IPv4 address) and the port is put in promiscuous mode,
 * which sets IFF_PROMISC on the veth: frames for lwIP's MAC then reach
 * the packet socket, while the kernel sees them as PACKET_OTHERHOST and
 * drops them before IP. With the shared MAC the kernel would take every
 * lwIP frame through ip_rcv as well, and the two stacks' ARP answers would
 * name the same address; it works, but neither stack then owns its L2
 * identity, and a capture cannot tell them apart.
 *
 * Mempool. No per-lcore cache: the poll thread and the tcpip thread are
 * not EAL threads and could not use one anyway, and without caches
 * rte_mempool_in_use_count() is exact, which is what an mbuf leak check
 * wants. Every mbuf is freed within the burst that took it (RX) or by
 * the PMD once copied into its ring (TX), so in use returns to 0 at rest. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* DPDK 22.11's inline headers trip -Wextra (unused parameters, sign
 * comparisons in rte_mbuf and rte_ring); keep every warning for our code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#pragma GCC diagnostic pop
/* rte_ip.h pulls in <netinet/ip.h>, whose fragment flags lwIP's
 * prot/ip4.h defines again with the same values and a U suffix; a macro
 * redefinition has no warning flag to silence, so drop glibc's. */
#undef IP_RF
#undef IP_DF
#undef IP_MF
#undef IP_OFFMASK

#include "lwip/etharp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcpip.h"

#include "faultd/usdt.h"

#include "dp_port.h"

#define DP_VDEV_NAME	"net_af_packet0"
#define DP_MTU		1500
#define DP_BURST	32
#define DP_NB_MBUF	2047		/* 2^n - 1, as the mempool wants */
#define DP_NB_RXD	512
#define DP_NB_TXD	512
#define DP_IDLE_NS	150000		/* sleep after an empty burst */
#define DP_LINK_CHECK_NS 20000000	/* how often the veth's flags are read */
#define DP_COUNTER_BURSTS 100		/* mbuf_in_use at least this often */

struct dp_port {
	struct netif netif;		/* lwIP's; netif.state points back here */
	uint16_t port_id;
	struct rte_mempool *pool;
	char iface[IFNAMSIZ];
	char runtime_dir[256];		/* EAL's, removed after rte_eal_cleanup */
	char mac_str[18];
	unsigned char hwaddr[ETH_HWADDR_LEN];
	int ioctl_fd;			/* a kernel socket to read the veth's flags */
	pthread_t poller;
	int poller_started, port_started, eal_up, netif_added;
	atomic_int stop;		/* asks the poll thread to return */
	atomic_int link_up;		/* IFF_UP and IFF_RUNNING, last seen */
	atomic_uint link_downs;
	/* Counted by the poll thread (rx) or under the core lock (tx). */
	unsigned long long rx_frames, rx_dropped, tx_frames, tx_dropped;
};

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runs in the tcpip thread or under the core lock: one TX user at a time. */
static err_t dp_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct dp_port *dp = netif->state;
	struct rte_mbuf *m;
	char *data;

	/* A frame sent while the veth is down would sit in the af_packet TX
	 * ring, and a full ring makes the PMD wait in poll() with no
	 * timeout: drop it here, as a dead link would. TCP retransmits. */
	if (!atomic_load(&dp->link_up))
		goto drop;
	m = rte_pktmbuf_alloc(dp->pool);
	if (!m)
		goto drop;
	data = rte_pktmbuf_append(m, p->tot_len);
	if (!data) {
		rte_pktmbuf_free(m);
		goto drop;
	}
	pbuf_copy_partial(p, data, p->tot_len, 0);
	if (rte_eth_tx_burst(dp->port_id, 0, &m, 1) != 1) {
		/* Not taken: still ours to free. */
		rte_pktmbuf_free(m);
		goto drop;
	}
	dp->tx_frames++;
	return ERR_OK;

drop:
	dp->tx_dropped++;
	return ERR_OK;
}

static err_t dp_netif_init(struct netif *netif)
{
	struct dp_port *dp = netif->state;

	netif->name[0] = 'd';
	netif->name[1] = 'p';
	netif->mtu = DP_MTU;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, dp->hwaddr, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	netif->output = etharp_output;
	netif->linkoutput = dp_linkoutput;
	return ERR_OK;
}

/* IFF_UP of the veth: "ip link set down/up" on this end. IFF_RUNNING
 * (carrier) would also catch the peer going away, but the kernel's
 * linkwatch reports it up to a second after the link is back under
 * repeated flaps, while frames already flow (af_packet sends bypass the
 * qdisc): waiting for it missed whole 0.7 s up windows. A dead peer is
 * caught by the echo and pong timeouts instead. */
static int dp_read_link(struct dp_port *dp)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dp->iface);
	if (ioctl(dp->ioctl_fd, SIOCGIFFLAGS, &ifr) < 0)
		return 0;
	return (ifr.ifr_flags & IFF_UP) != 0;
}

static void dp_check_link(struct dp_port *dp)
{
	int up = dp_read_link(dp), was = atomic_load(&dp->link_up);

	if (up == was)
		return;
	atomic_store(&dp->link_up, up);
	if (!up)
		atomic_fetch_add(&dp->link_downs, 1);
	LOCK_TCPIP_CORE();
	if (up)
		netif_set_link_up(&dp->netif);
	else
		netif_set_link_down(&dp->netif);
	UNLOCK_TCPIP_CORE();
	printf("dpdk-client: link %s iface=%s t_ms=%lld\n", up ? "up" : "down", dp->iface,
	       mono_ns() / 1000000);
}

static uint32_t csum_add(uint32_t sum, const unsigned char *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (n)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* A veth passes the sender's skb as it is, and a kernel sender leaves TCP
 * and UDP checksums to "hardware" (CHECKSUM_PARTIAL): the field holds only
 * the pseudo-header sum. The kernel's receive path knows; a packet socket
 * reader does not, and DPDK 22.11's af_packet drops the TP_STATUS_CSUM*
 * hint. lwIP then rejects every segment from the kernel peer. Finish such
 * checksums here, as a virtio driver does for NEEDS_CSUM; a checksum that
 * is merely wrong (corruption) is left for lwIP to reject. */
static void dp_fix_partial_csum(unsigned char *f, uint32_t len)
{
	unsigned char *ip = f + 14, *l4;
	uint32_t ihl, tot, l4len, sum;
	uint16_t *field;
	int proto;

	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || (ip[0] >> 4) != 4)
		return;
	ihl = (ip[0] & 0x0f) * 4u;
	tot = (uint32_t)ip[2] << 8 | ip[3];
	proto = ip[9];
	if (ihl < 20 || tot < ihl || 14 + tot > len || (ip[6] & 0x3f) || ip[7])
		return;		/* fragments: nothing to finish */
	l4 = ip + ihl;
	l4len = tot - ihl;
	if (proto == 6 && l4len >= 20)
		field = (uint16_t *)(l4 + 16);
	else if (proto == 17 && l4len >= 8)
		field = (uint16_t *)(l4 + 6);
	else
		return;
	sum = csum_add(0, ip + 12, 8) + (uint32_t)proto + l4len;
	if (ntohs(*field) != csum_fold(sum))
		return;
	*field = 0;
	sum = csum_add(sum, l4, l4len);
	*field = htons((uint16_t)~csum_fold(sum));
	if (proto == 17 && *field == 0)
		*field = 0xffff;
}

static void dp_rx_one(struct dp_port *dp, struct rte_mbuf *m)
{
	struct pbuf *p = NULL;
	uint32_t len = rte_pktmbuf_pkt_len(m);

	/* Single-segment frames only: the port is configured without
	 * scatter and every frame fits an mbuf's data room. */
	if (len > 0 && len <= 0xffff && rte_pktmbuf_is_contiguous(m))
		/* PBUF_RAM, one piece: Debian's liblwip chains PBUF_POOL
		 * pbufs of a size its headers disagree with (pbuf_take
		 * overruns the first one for frames over ~600 bytes). */
		p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (p) {
		dp_fix_partial_csum(rte_pktmbuf_mtod(m, unsigned char *), len);
		pbuf_take(p, rte_pktmbuf_mtod(m, void *), (u16_t)len);
	}
	rte_pktmbuf_free(m);
	if (!p) {
		dp->rx_dropped++;
		return;
	}
	/* tcpip_input queues the frame for the tcpip thread and keeps the
	 * pbuf only on success. */
	if (dp->netif.input(p, &dp->netif) != ERR_OK) {
		pbuf_free(p);
		dp->rx_dropped++;
		return;
	}
	dp->rx_frames++;
}

static void *dp_poll(void *arg)
{
	struct dp_port *dp = arg;
	struct rte_mbuf *pkts[DP_BURST];
	const struct timespec idle = {.tv_nsec = DP_IDLE_NS};
	long long next_link = 0, now;
	unsigned int bursts = 0, in_use, last_in_use = ~0u;
	uint16_t n;

	while (!atomic_load(&dp->stop)) {
		now = mono_ns();
		if (now >= next_link) {
			dp_check_link(dp);
			next_link = now + DP_LINK_CHECK_NS;
		}
		n = rte_eth_rx_burst(dp->port_id, 0, pkts, DP_BURST);
		for (uint16_t i = 0; i < n; i++)
			dp_rx_one(dp, pkts[i]);
		in_use = rte_mempool_in_use_count(dp->pool);
		if (in_use != last_in_use || ++bursts >= DP_COUNTER_BURSTS) {
			FAULTD_COUNTER("mbuf_in_use", in_use);
			last_in_use = in_use;
			bursts = 0;
		}
		if (n == 0)
			nanosleep(&idle, NULL);
	}
	return NULL;
}

/* EAL pins the calling thread to its lcore; the threads started after it
 * (tcpip, poll) would all share that one CPU. Give the process back the
 * CPUs it had: EAL's lcore bookkeeping does not depend on the mask. */
static int dp_eal_init(struct dp_port *dp, const char *prefix, const char *iface)
{
	char prefix_arg[128], vdev_arg[128], lcore_arg[16];
	char *argv[16];
	cpu_set_t cpus;
	int argc = 0, have_cpus, cpu = 0, err;

	have_cpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
	if (have_cpus)
		while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus))
			cpu++;
	snprintf(lcore_arg, sizeof(lcore_arg), "%d", cpu);
	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", prefix);
	snprintf(vdev_arg, sizeof(vdev_arg), "--vdev=" DP_VDEV_NAME ",iface=%s", iface);
	argv[argc++] = "dpdk-client";
	argv[argc++] = "--no-huge";
	argv[argc++] = "-m";
	argv[argc++] = "256";
	argv[argc++] = "--no-pci";
	argv[argc++] = prefix_arg;
	argv[argc++] = "--no-shconf";
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "-l";
	argv[argc++] = lcore_arg;
	argv[argc++] = vdev_arg;
	argv[argc++] = "--log-level=lib.eal:warning";
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		err = -rte_errno;
		fprintf(stderr, "%s: rte_eal_init: %s\n", __func__, rte_strerror(rte_errno));
		return err ? err : -EIO;
	}
	dp->eal_up = 1;
	snprintf(dp->runtime_dir, sizeof(dp->runtime_dir), "%s", rte_eal_get_runtime_dir());
	if (have_cpus)
		sched_setaffinity(0, sizeof(cpus), &cpus);
	return 0;
}

static int dp_port_start(struct dp_port *dp)
{
	struct rte_eth_conf conf = {0};
	struct rte_ether_addr mac;
	int err;

	err = rte_eth_dev_get_port_by_name(DP_VDEV_NAME, &dp->port_id);
	if (err) {
		fprintf(stderr, "%s: no port %s (is %s a veth in this namespace?)\n", __func__,
			DP_VDEV_NAME, dp->iface);
		return -ENODEV;
	}
	dp->pool = rte_pktmbuf_pool_create("dpdk_client_mbufs", DP_NB_MBUF, 0, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!dp->pool) {
		err = -rte_errno;
		fprintf(stderr, "%s: rte_pktmbuf_pool_create: %s\n", __func__,
			rte_strerror(rte_errno));
		return err ? err : -ENOMEM;
	}
	err = rte_eth_dev_configure(dp->port_id, 1, 1, &conf);
	if (!err)
		err = rte_eth_rx_queue_setup(dp->port_id, 0, DP_NB_RXD, rte_socket_id(), NULL,
					     dp->pool);
	if (!err)
		err = rte_eth_tx_queue_setup(dp->port_id, 0, DP_NB_TXD, rte_socket_id(), NULL);
	if (!err)
		err = rte_eth_dev_start(dp->port_id);
	if (err) {
		fprintf(stderr, "%s: port %u setup: %s\n", __func__, dp->port_id,
			rte_strerror(-err));
		return err;
	}
	dp->port_started = 1;
	err = rte_eth_promiscuous_enable(dp->port_id);
	if (err) {
		fprintf(stderr, "%s: promiscuous mode: %s\n", __func__, rte_strerror(-err));
		return err;
	}
	if (rte_eth_macaddr_get(dp->port_id, &mac) == 0)
		fprintf(stderr, "%s: %s: port MAC " RTE_ETHER_ADDR_PRT_FMT
			" (the veth's, left to the kernel)\n", __func__, dp->iface,
			RTE_ETHER_ADDR_BYTES(&mac));
	return 0;
}

static void dp_tcpip_ready(void *arg)
{
	sem_post(arg);
}

struct dp_call {
	struct dp_port *dp;
	sem_t done;
};

/* Queued behind every frame already handed to tcpip_input, so none of
 * them reaches the netif after it is removed. */
static void dp_remove_cb(void *arg)
{
	struct dp_call *c = arg;

	netif_set_down(&c->dp->netif);
	netif_remove(&c->dp->netif);
	sem_post(&c->done);
}

static void dp_netif_remove(struct dp_port *dp)
{
	struct dp_call c = {.dp = dp};
	int queued = 0;

	if (sem_init(&c.done, 0, 0) == 0) {
		queued = tcpip_callback(dp_remove_cb, &c) == ERR_OK;
		while (queued && sem_wait(&c.done) < 0 && errno == EINTR)
			;
		sem_destroy(&c.done);
	}
	if (!queued) {
		LOCK_TCPIP_CORE();
		netif_set_down(&dp->netif);
		netif_remove(&dp->netif);
		UNLOCK_TCPIP_CORE();
	}
	dp->netif_added = 0;
}

struct dp_port *dp_port_open(const char *prefix, const char *iface, in_addr_t addr,
			     in_addr_t mask)
{
	const ip4_addr_t ip = {.addr = addr}, nm = {.addr = mask}, gw = {.addr = 0};
	const unsigned char *a = (const unsigned char *)&addr;
	struct dp_port *dp;
	struct netif *nif;
	sem_t ready;
	int err;

	if (strlen(iface) >= IFNAMSIZ || if_nametoindex(iface) == 0) {
		fprintf(stderr, "%s: %s: no such interface in this namespace\n", __func__, iface);
		errno = ENODEV;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->ioctl_fd = -1;
	snprintf(dp->iface, sizeof(dp->iface), "%s", iface);
	dp->hwaddr[0] = 0x02;
	dp->hwaddr[1] = 0xdc;
	memcpy(&dp->hwaddr[2], a, 4);
	snprintf(dp->mac_str, sizeof(dp->mac_str), "%02x:%02x:%02x:%02x:%02x:%02x",
		 dp->hwaddr[0], dp->hwaddr[1], dp->hwaddr[2], dp->hwaddr[3], dp->hwaddr[4],
		 dp->hwaddr[5]);
	dp->ioctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (dp->ioctl_fd < 0) {
		err = -errno;
		goto err_close;
	}
	err = dp_eal_init(dp, prefix, iface);
	if (err)
		goto err_close;
	err = dp_port_start(dp);
	if (err)
		goto err_close;
	if (sem_init(&ready, 0, 0) < 0) {
		err = -errno;
		goto err_close;
	}
	tcpip_init(dp_tcpip_ready, &ready);
	while (sem_wait(&ready) < 0 && errno == EINTR)
		;
	sem_destroy(&ready);
	atomic_store(&dp->link_up, dp_read_link(dp));
	LOCK_TCPIP_CORE();
	nif = netif_add(&dp->netif, &ip, &nm, &gw, dp, dp_netif_init, tcpip_input);
	if (nif) {
		netif_set_default(nif);
		netif_set_up(nif);
		if (atomic_load(&dp->link_up))
			netif_set_link_up(nif);
	}
	UNLOCK_TCPIP_CORE();
	if (!nif) {
		err = -EIO;
		fprintf(stderr, "%s: netif_add failed\n", __func__);
		goto err_close;
	}
	dp->netif_added = 1;
	err = -pthread_create(&dp->poller, NULL, dp_poll, dp);
	if (err) {
		fprintf(stderr, "%s: pthread_create: %s\n", __func__, strerror(-err));
		goto err_close;
	}
	dp->poller_started = 1;
	return dp;

err_close:
	dp_port_close(dp);
	errno = -err;
	return NULL;
}

int dp_port_neighbor_ready(struct dp_port *dp, in_addr_t ip)
{
	ip4_addr_t want = {.addr = ip};
	struct eth_addr *eth = NULL;
	const ip4_addr_t *found = NULL;
	int ready;

	LOCK_TCPIP_CORE();
	ready = etharp_find_addr(&dp->netif, &want, &eth, &found) >= 0;
	if (!ready)
		etharp_request(&dp->netif, &want);
	UNLOCK_TCPIP_CORE();
	return ready;
}

int dp_port_link_up(const struct dp_port *dp)
{
	return atomic_load(&dp->link_up);
}

unsigned int dp_port_link_downs(const struct dp_port *dp)
{
	return atomic_load(&dp->link_downs);
}

unsigned int dp_port_mbuf_in_use(const struct dp_port *dp)
{
	return dp->pool ? rte_mempool_in_use_count(dp->pool) : 0;
}

const char *dp_port_mac(const struct dp_port *dp)
{
	return dp->mac_str;
}

void dp_port_close(struct dp_port *dp)
{
	if (!dp)
		return;
	if (dp->poller_started) {
		atomic_store(&dp->stop, 1);
		pthread_join(dp->poller, NULL);
	}
	/* After this no linkoutput can reach the port: lwIP's tcpip thread
	 * cannot be stopped, but without a netif it has nowhere to send. */
	if (dp->netif_added)
		dp_netif_remove(dp);
	if (dp->poller_started)
		fprintf(stderr, "%s: %s: rx_frames=%llu rx_dropped=%llu tx_frames=%llu "
			"tx_dropped=%llu mbuf_in_use=%u\n", __func__, dp->iface, dp->rx_frames,
			dp->rx_dropped, dp->tx_frames, dp->tx_dropped, dp_port_mbuf_in_use(dp));
	if (dp->port_started) {
		rte_eth_dev_stop(dp->port_id);
		rte_eth_dev_close(dp->port_id);
	}
	if (dp->pool)
		rte_mempool_free(dp->pool);
	if (dp->eal_up) {
		rte_eal_cleanup();
		/* --no-shconf --no-telemetry leave only this directory, empty. */
		if (dp->runtime_dir[0] && rmdir(dp->runtime_dir) < 0 && errno != ENOENT)
			fprintf(stderr, "%s: rmdir %s: %s\n", __func__, dp->runtime_dir,
				strerror(errno));
	}
	if (dp->ioctl_fd >= 0)
		close(dp->ioctl_fd);
	free(dp);
}
