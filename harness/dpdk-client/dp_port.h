/* dp_port: DPDK's EAL and one net_af_packet port on a veth end, with an
 * lwIP netif on top (the F-Stack pattern: the stack's frames go through
 * rte_eth_rx_burst/rte_eth_tx_burst, never through the kernel's sockets). */
#ifndef DPDK_CLIENT_DP_PORT_H
#define DPDK_CLIENT_DP_PORT_H

#include <netinet/in.h>

struct dp_port;

/* Starts EAL (--no-huge -m 256 --no-pci --no-shconf --no-telemetry,
 * --file-prefix=prefix, one lcore) with a net_af_packet vdev on iface,
 * starts the port promiscuous, starts lwIP (tcpip_init) and adds a netif
 * for addr/mask over the port, plus the poll thread that feeds it. Stop
 * signals must be blocked by the caller: every thread started here
 * inherits the mask. Returns NULL with errno set after saying why. */
struct dp_port *dp_port_open(const char *prefix, const char *iface, in_addr_t addr,
			     in_addr_t mask);

/* Asks for ip's hardware address (ARP): 1 once known, 0 if not yet. */
int dp_port_neighbor_ready(struct dp_port *dp, in_addr_t ip);

/* The veth's link as last seen by the poll thread (IFF_UP), and how many
 * times it has gone down so far. */
int dp_port_link_up(const struct dp_port *dp);
unsigned int dp_port_link_downs(const struct dp_port *dp);

/* mbufs currently taken from the port's pool. */
unsigned int dp_port_mbuf_in_use(const struct dp_port *dp);

/* The MAC lwIP uses, "xx:xx:xx:xx:xx:xx". */
const char *dp_port_mac(const struct dp_port *dp);

/* Stops the poll thread, removes the netif, stops and closes the port,
 * frees the pool, rte_eal_cleanup(), and removes the EAL runtime directory
 * it leaves (/var/run/dpdk/PREFIX). */
void dp_port_close(struct dp_port *dp);

#endif
