/* hc: shared pieces of the bundled workloads; see hc.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hc.h"

int hc_parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = (unsigned int)v;
	return 0;
}

int hc_parse_ip4(const char *s, in_addr_t *out)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	*out = in.s_addr;
	return 0;
}

int hc_parse_cidr(const char *s, in_addr_t *addr, in_addr_t *mask)
{
	char buf[INET_ADDRSTRLEN + 4];
	unsigned int len;
	char *slash;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (hc_parse_ip4(buf, addr) || hc_parse_uint(slash + 1, 1, 30, &len))
		return -EINVAL;
	*mask = htonl(~0u << (32 - len));
	return 0;
}

int hc_parse_ip4_port(const char *s, struct sockaddr_in *sin)
{
	char buf[INET_ADDRSTRLEN + 6];
	unsigned int port;
	char *colon;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	*sin = (struct sockaddr_in){.sin_family = AF_INET};
	if (hc_parse_ip4(buf, &sin->sin_addr.s_addr) || hc_parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	sin->sin_port = htons((uint16_t)port);
	return 0;
}

long long hc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *hc_errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "EUNKNOWN";
}

int hc_addr_parse(const char *host, unsigned int port, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	const struct addrinfo hints = {
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *ai;
	char serv[8];
	int err;

	snprintf(serv, sizeof(serv), "%u", port);
	if (getaddrinfo(host, serv, &hints, &ai) != 0) {
		err = -EINVAL;
		goto out;
	}
	if (ai->ai_addrlen > sizeof(*ss)) {
		err = -EINVAL;
		goto err_free_ai;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	err = 0;
err_free_ai:
	freeaddrinfo(ai);
out:
	return err;
}

unsigned int hc_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

void hc_addr_format(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char host[NI_MAXHOST];
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	snprintf(buf, size, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		 hc_addr_port(ss));
}
