/* hc: what every bundled workload (harness/NAME) needs the same way:
 * strict number parsing for its options, a monotonic clock in ms, errno
 * names for its log lines, and numeric socket addresses. Linked into each
 * workload; not a workload itself. */
#ifndef FAULTD_HC_H
#define FAULTD_HC_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Decimal only, the whole string, no sign: 0, -EINVAL or -ERANGE. */
int hc_parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out);
/* CLOCK_MONOTONIC in milliseconds. */
long long hc_now_ms(void);
/* "ETIMEDOUT", not "Connection timed out": what faultd's evidence quotes. */
const char *hc_errname(int err);
/* A numeric host (IPv4 or IPv6) and port into @ss: 0 or -EINVAL. */
int hc_addr_parse(const char *host, unsigned int port, struct sockaddr_storage *ss,
		  socklen_t *len);
/* "A.B.C.D" into @out (network order): 0 or -EINVAL. */
int hc_parse_ip4(const char *s, in_addr_t *out);
/* "A.B.C.D/LEN", LEN 1-30 (a host needs a network to share with its peer):
 * address and mask in network order. 0 or -EINVAL. */
int hc_parse_cidr(const char *s, in_addr_t *addr, in_addr_t *mask);
/* "A.B.C.D:PORT" into @sin. 0 or -EINVAL. */
int hc_parse_ip4_port(const char *s, struct sockaddr_in *sin);
unsigned int hc_addr_port(const struct sockaddr_storage *ss);
/* "ADDR:PORT", with IPv6 addresses in brackets so the port stays apart. */
void hc_addr_format(const struct sockaddr_storage *ss, char *buf, size_t size);

#endif
