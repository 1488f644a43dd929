/* echo-server: TCP and UDP echo on kernel sockets, a real peer for
 * scenarios. libevent; SIGTERM/SIGINT end it cleanly with a summary line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define ECHO_HIGH_WATER (256 * 1024)	/* stop reading while this much is unsent */
#define ECHO_UDP_MAX 65536

struct echo {
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *udp_ev;
	struct event *sig_ev[2];
	int udp_fd;
	int conns, max_conns;
	unsigned long long conns_total, tcp_bytes, udp_datagrams;
	struct conn *all;
};

struct conn {
	struct echo *e;
	struct bufferevent *bev;
	struct conn *prev, *next;
};

static void conn_free(struct conn *c)
{
	struct echo *e = c->e;

	if (c->prev)
		c->prev->next = c->next;
	else
		e->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bufferevent_free(c->bev);
	e->conns--;
	free(c);
}

static void on_tcp_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);

	c->e->tcp_bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	/* A peer that does not read must not make us buffer without bound. */
	if (evbuffer_get_length(out) >= ECHO_HIGH_WATER)
		bufferevent_disable(bev, EV_READ);
}

static void on_tcp_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_enable(bev, EV_READ);
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct echo *e = arg;
	struct conn *c;

	(void)lev;
	(void)sa;
	(void)salen;
	if (e->conns >= e->max_conns) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->e = e;
	c->bev = bufferevent_socket_new(e->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	/* The write callback fires once output drains below the low mark. */
	bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_HIGH_WATER / 4, 0);
	bufferevent_setcb(c->bev, on_tcp_read, on_tcp_write, on_tcp_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = e->all;
	if (e->all)
		e->all->prev = c;
	e->all = c;
	e->conns++;
	e->conns_total++;
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct echo *e = arg;
	struct sockaddr_storage from;
	socklen_t flen;
	char buf[ECHO_UDP_MAX];
	ssize_t n;

	(void)what;
	for (;;) {
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		e->udp_datagrams++;
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) < 0 &&
		    errno != EAGAIN)
			fprintf(stderr, "%s: sendto: %s\n", __func__, strerror(errno));
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(((struct echo *)arg)->base, NULL);
}

static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int open_udp(struct echo *e, const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;

	e->udp_fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e->udp_fd < 0)
		return -errno;
	setsockopt(e->udp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(e->udp_fd, (const struct sockaddr *)ss, len) < 0)
		return -errno;
	e->udp_ev = event_new(e->base, e->udp_fd, EV_READ | EV_PERSIST, on_udp, e);
	if (!e->udp_ev || event_add(e->udp_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-server [--port N] [--bind ADDR] [--no-tcp] [--no-udp]\n"
		   "                   [--max-conns N] [--ready-file PATH]\n"
		   "TCP and UDP echo on kernel sockets. --port 0 picks a free port.\n"
		   "SIGTERM or SIGINT: print a summary and exit 0.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"bind", required_argument, NULL, 'b'},
		{"no-tcp", no_argument, NULL, 'T'},
		{"no-udp", no_argument, NULL, 'U'},
		{"max-conns", required_argument, NULL, 'm'},
		{"ready-file", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct echo e = {.udp_fd = -1, .max_conns = 1024};
	const char *bind_addr = "0.0.0.0", *ready = NULL;
	int port = 7000, tcp = 1, udp = 1, opt, code = 1, err;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char *end;

	while ((opt = getopt_long(argc, argv, "p:b:m:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = (int)strtol(optarg, &end, 10);
			if (*end || port < 0 || port > 65535) {
				fprintf(stderr, "echo-server: --port: '%s' is not a port\n", optarg);
				return 2;
			}
			break;
		case 'b': bind_addr = optarg; break;
		case 'T': tcp = 0; break;
		case 'U': udp = 0; break;
		case 'm':
			e.max_conns = (int)strtol(optarg, &end, 10);
			if (*end || e.max_conns < 1) {
				fprintf(stderr, "echo-server: --max-conns: '%s' is not a count\n", optarg);
				return 2;
			}
			break;
		case 'r': ready = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (!tcp && !udp)) {
		fprintf(stderr, "echo-server: %s\n", optind != argc ? "unexpected argument"
				: "--no-tcp and --no-udp leave nothing to serve");
		return 2;
	}
	if (parse_addr(bind_addr, port, &ss, &sslen)) {
		fprintf(stderr, "echo-server: --bind: '%s' is not an IPv4 or IPv6 address\n", bind_addr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	e.base = event_base_new();
	if (!e.base)
		return 1;
	if (tcp) {
		e.lev = evconnlistener_new_bind(e.base, on_accept, &e,
						LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
						LEV_OPT_CLOSE_ON_EXEC, 128,
						(struct sockaddr *)&ss, (int)sslen);
		if (!e.lev) {
			fprintf(stderr, "echo-server: tcp bind %s:%d: %s\n", bind_addr, port,
				strerror(errno));
			goto out;
		}
		/* With --port 0, UDP takes the port TCP was given. */
		port = bound_port(evconnlistener_get_fd(e.lev));
		parse_addr(bind_addr, port, &ss, &sslen);
	}
	if (udp) {
		err = open_udp(&e, &ss, sslen);
		if (err) {
			fprintf(stderr, "echo-server: udp bind %s:%d: %s\n", bind_addr, port,
				strerror(-err));
			goto out;
		}
		port = bound_port(e.udp_fd);
	}
	e.sig_ev[0] = evsignal_new(e.base, SIGTERM, on_signal, &e);
	e.sig_ev[1] = evsignal_new(e.base, SIGINT, on_signal, &e);
	if (!e.sig_ev[0] || !e.sig_ev[1] || evsignal_add(e.sig_ev[0], NULL) ||
	    evsignal_add(e.sig_ev[1], NULL))
		goto out;
	printf("echo-server: listening tcp=%s:%d udp=%s:%d\n", tcp ? bind_addr : "-",
	       tcp ? port : 0, udp ? bind_addr : "-", udp ? port : 0);
	fflush(stdout);
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "echo-server: --ready-file %s: %s\n", ready, strerror(errno));
			goto out;
		}
	}
	event_base_dispatch(e.base);
	printf("echo-server: stopping: conns=%llu tcp_bytes=%llu udp_datagrams=%llu\n",
	       e.conns_total, e.tcp_bytes, e.udp_datagrams);
	code = 0;
out:
	while (e.all)
		conn_free(e.all);
	if (e.lev)
		evconnlistener_free(e.lev);
	if (e.udp_ev)
		event_free(e.udp_ev);
	if (e.udp_fd >= 0)
		close(e.udp_fd);
	for (int i = 0; i < 2; i++)
		if (e.sig_ev[i])
			event_free(e.sig_ev[i]);
	event_base_free(e.base);
	libevent_global_shutdown();
	return code;
}
