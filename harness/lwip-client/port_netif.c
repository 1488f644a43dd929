/* port_netif: lwIP's Ethernet netif on a Linux tap.
 *
 * Debian's liblwip ships tapif, but it calls exit(1) on any tap error and
 * runs ifconfig when PRECONFIGURED_TAPIF is unset; a workload that has to
 * outlive link flaps cannot sit on top of that. This driver is the few
 * dozen lines tapif would have been: a reader thread feeds frames from the
 * tap into tcpip_input(), and linkoutput writes frames to the tap. A frame
 * the kernel refuses (EIO while the tap is down, EAGAIN when its queue is
 * full) is dropped as a radio would drop it; TCP retransmits or the
 * application's keepalive notices. lwIP is not told about the link state:
 * the device in the incident found out only through its own timeouts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <net/if.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcpip.h"

#include "port_netif.h"

#define PN_MTU		1500
#define PN_FRAME_MAX	65536		/* more than a pbuf's u16_t tot_len */
#define PN_POLL_MS	100		/* how soon the reader notices a stop */
#define PN_RETRY_MS	100		/* pause after a read error, not to spin */

struct port_netif {
	struct netif netif;		/* lwIP's; netif.state points back here */
	int fd;				/* the tap, non-blocking */
	char ifname[IFNAMSIZ];
	unsigned char hwaddr[ETH_HWADDR_LEN];
	pthread_t reader;
	int reader_started;
	atomic_int stop;		/* asks the reader to return */
	int rx_err, tx_err;		/* last errno logged, so each kind is said once */
	unsigned long long rx_frames, rx_dropped, tx_frames, tx_dropped;
	unsigned char rx_buf[PN_FRAME_MAX];
	unsigned char tx_buf[PN_FRAME_MAX];	/* used under the core lock only */
};

/* Runs in the tcpip thread or under the core lock. */
static err_t pn_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct port_netif *pn = netif->state;
	ssize_t n;
	u16_t len;

	/* tot_len is 16 bits: every frame fits tx_buf. */
	len = pbuf_copy_partial(p, pn->tx_buf, p->tot_len, 0);
	n = write(pn->fd, pn->tx_buf, len);
	if (n < 0) {
		/* EIO is the kernel side being down: the frame is lost, as
		 * on a dead radio link. Returning an error instead would not
		 * help lwIP, which retransmits on its own timers anyway. */
		if (errno != pn->tx_err) {
			pn->tx_err = errno;
			fprintf(stderr, "%s: %s: write: %s (dropping frames until it recovers)\n",
				__func__, pn->ifname, strerror(errno));
		}
		pn->tx_dropped++;
		return ERR_OK;
	}
	if (pn->tx_err) {
		fprintf(stderr, "%s: %s: writes recovered\n", __func__, pn->ifname);
		pn->tx_err = 0;
	}
	pn->tx_frames++;
	return ERR_OK;
}

static err_t pn_init(struct netif *netif)
{
	struct port_netif *pn = netif->state;

	netif->name[0] = 't';
	netif->name[1] = 'p';
	netif->mtu = PN_MTU;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, pn->hwaddr, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET |
		       NETIF_FLAG_IGMP;
	netif->output = etharp_output;
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = pn_linkoutput;
	return ERR_OK;
}

static void pn_rx_error(struct port_netif *pn, int err)
{
	if (err != pn->rx_err) {
		pn->rx_err = err;
		fprintf(stderr, "%s: %s: read: %s (retrying)\n", __func__, pn->ifname,
			strerror(err));
	}
	usleep(PN_RETRY_MS * 1000);
}

/* Every error here is survivable: EIO or EAGAIN while the kernel side is
 * down, EBADFD if someone deletes the tap (the stack then just hears
 * nothing). The thread returns only when asked to. */
static void *pn_reader(void *arg)
{
	struct port_netif *pn = arg;
	struct pollfd pfd = {.fd = pn->fd, .events = POLLIN};
	struct pbuf *p;
	ssize_t n;
	int r;

	while (!atomic_load(&pn->stop)) {
		r = poll(&pfd, 1, PN_POLL_MS);
		if (r < 0 && errno != EINTR) {
			pn_rx_error(pn, errno);
			continue;
		}
		if (r <= 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL) && !(pfd.revents & POLLIN)) {
			pn_rx_error(pn, EIO);
			continue;
		}
		n = read(pn->fd, pn->rx_buf, sizeof(pn->rx_buf));
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN)
				pn_rx_error(pn, errno);
			continue;
		}
		if (n == 0)
			continue;
		pn->rx_err = 0;
		p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
		if (!p) {
			pn->rx_dropped++;
			continue;
		}
		pbuf_take(p, pn->rx_buf, (u16_t)n);
		/* tcpip_input queues the frame for the tcpip thread; it keeps
		 * the pbuf only on success. */
		if (pn->netif.input(p, &pn->netif) != ERR_OK) {
			pbuf_free(p);
			pn->rx_dropped++;
			continue;
		}
		pn->rx_frames++;
	}
	return NULL;
}

/* The kernel would create a new tap for a name it does not know; the tap is
 * faultd's to create, so a missing one is an error, not a reason to make
 * one. */
static int pn_tap_open(const char *ifname)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	int fd, err;

	if (if_nametoindex(ifname) == 0) {
		err = -ENODEV;
		fprintf(stderr, "%s: %s: no such interface in this namespace\n", __func__,
			ifname);
		goto out;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "%s: /dev/net/tun: %s\n", __func__, strerror(-err));
		goto out;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		fprintf(stderr, "%s: %s: TUNSETIFF: %s\n", __func__, ifname, strerror(-err));
		goto err_close_fd;
	}
	return fd;

err_close_fd:
	close(fd);
out:
	return err;
}

struct pn_call {
	struct port_netif *pn;
	sem_t done;
};

/* Queued behind every frame the reader has handed to tcpip_input, so none
 * of them can reach the netif after it is removed and freed. */
static void pn_remove_cb(void *arg)
{
	struct pn_call *c = arg;

	netif_set_down(&c->pn->netif);
	netif_remove(&c->pn->netif);
	sem_post(&c->done);
}

struct port_netif *port_netif_open(const char *ifname, in_addr_t addr, in_addr_t mask,
				   in_addr_t gw)
{
	const ip4_addr_t ip = {.addr = addr}, nm = {.addr = mask}, gwa = {.addr = gw};
	const unsigned char *a = (const unsigned char *)&addr;
	struct port_netif *pn;
	struct netif *nif;
	int err;

	if (strlen(ifname) >= IFNAMSIZ) {
		err = -ENAMETOOLONG;
		fprintf(stderr, "%s: %s: name too long\n", __func__, ifname);
		goto out;
	}
	pn = calloc(1, sizeof(*pn));
	if (!pn) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto out;
	}
	snprintf(pn->ifname, sizeof(pn->ifname), "%s", ifname);
	/* Every stack built from the same lwIP gets the same default MAC;
	 * two of them on one bridge would fight over it. Locally
	 * administered 02:4c ("L") plus the IPv4 address is unique wherever
	 * the addresses are. */
	pn->hwaddr[0] = 0x02;
	pn->hwaddr[1] = 0x4c;
	memcpy(&pn->hwaddr[2], a, 4);
	pn->fd = pn_tap_open(ifname);
	if (pn->fd < 0) {
		err = pn->fd;
		goto err_free;
	}
	LOCK_TCPIP_CORE();
	nif = netif_add(&pn->netif, &ip, &nm, &gwa, pn, pn_init, tcpip_input);
	if (nif) {
		netif_set_default(nif);
		netif_set_up(nif);
		netif_set_link_up(nif);
	}
	UNLOCK_TCPIP_CORE();
	if (!nif) {
		err = -EIO;
		fprintf(stderr, "%s: %s: netif_add failed\n", __func__, ifname);
		goto err_close_fd;
	}
	err = -pthread_create(&pn->reader, NULL, pn_reader, pn);
	if (err) {
		fprintf(stderr, "%s: pthread_create: %s\n", __func__, strerror(-err));
		goto err_remove;
	}
	pn->reader_started = 1;
	return pn;

err_remove:
	LOCK_TCPIP_CORE();
	netif_set_down(&pn->netif);
	netif_remove(&pn->netif);
	UNLOCK_TCPIP_CORE();
err_close_fd:
	close(pn->fd);
err_free:
	free(pn);
out:
	errno = -err;
	return NULL;
}

void port_netif_close(struct port_netif *pn)
{
	struct pn_call c = {.pn = pn};
	int queued = 0;

	if (!pn)
		return;
	if (pn->reader_started) {
		atomic_store(&pn->stop, 1);
		pthread_join(pn->reader, NULL);
	}
	if (sem_init(&c.done, 0, 0) == 0) {
		queued = tcpip_callback(pn_remove_cb, &c) == ERR_OK;
		while (queued && sem_wait(&c.done) < 0 && errno == EINTR)
			;
		sem_destroy(&c.done);
	}
	if (!queued) {
		/* Nothing could be queued: the tcpip thread is not taking
		 * messages, so none are pending for this netif either. */
		LOCK_TCPIP_CORE();
		netif_set_down(&pn->netif);
		netif_remove(&pn->netif);
		UNLOCK_TCPIP_CORE();
	}
	fprintf(stderr, "%s: %s: rx_frames=%llu rx_dropped=%llu tx_frames=%llu "
		"tx_dropped=%llu\n", __func__, pn->ifname, pn->rx_frames, pn->rx_dropped,
		pn->tx_frames, pn->tx_dropped);
	close(pn->fd);
	free(pn);
}

/* A tap gets its carrier when we open it, and the kernel turns that into a
 * running link only when its link watcher gets round to it, up to a second
 * later: until then its answers are dropped. lwIP asks for a neighbour once
 * and retries only after seconds, and its first SYN waits behind that ARP,
 * so ask until the answer comes, as a device waits for its access point. */
int port_netif_neighbor_ready(struct port_netif *pn, in_addr_t ip)
{
	ip4_addr_t want = {.addr = ip};
	struct eth_addr *eth = NULL;
	const ip4_addr_t *found = NULL;
	int ready;

	LOCK_TCPIP_CORE();
	ready = etharp_find_addr(&pn->netif, &want, &eth, &found) >= 0;
	if (!ready)
		etharp_request(&pn->netif, &want);
	UNLOCK_TCPIP_CORE();
	return ready;
}
