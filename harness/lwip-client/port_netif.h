/* port_netif: an lwIP netif on an existing Linux tap, written for this
 * harness instead of Debian's tapif, which calls exit(1) on tap errors. */
#ifndef LWIP_CLIENT_PORT_NETIF_H
#define LWIP_CLIENT_PORT_NETIF_H

#include <netinet/in.h>

struct port_netif;

/* Opens the tap IFNAME (it must already exist in the calling thread's
 * network namespace), adds it to the running lwIP stack (tcpip_init must
 * have completed) as the default, up, link-up netif and starts its reader
 * thread. addr, mask and gw are IPv4 addresses in network byte order; gw may
 * be 0. Returns NULL with errno set after saying why on stderr. */
struct port_netif *port_netif_open(const char *ifname, in_addr_t addr, in_addr_t mask,
				   in_addr_t gw);

/* Asks for @ip's hardware address (ARP) until it is known: 1 once it is, 0
 * if not yet. Call it every ~100 ms while it returns 0. */
int port_netif_neighbor_ready(struct port_netif *pn, in_addr_t ip);

/* Stops the reader thread, removes the netif from lwIP and closes the tap. */
void port_netif_close(struct port_netif *pn);

#endif
