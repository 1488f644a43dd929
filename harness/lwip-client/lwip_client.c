/* lwip-client: incident 2 as a workload. An embedded device's MQTT-like
 * client runs on lwIP over a tap and keeps a session with an echo server:
 * connect, a CONNECT line, then a PING every --keepalive-ms, each echoed
 * back within --timeout-ms. Any error or timeout tears the connection down
 * the way the device's MQTT/mbedTLS layer did, shutdown(SHUT_RDWR) then
 * close(), through the vendor port layer (port_sock.c), and reconnects with
 * exponential backoff. With --bug=shutdown-close that port layer leaks one
 * slot per teardown, and once the table is full every attempt prints
 * "create socket failed", as the device did.
 *
 * Counters (attempts, connects, failures, slots_used) go out as faultd USDT
 * probes whenever they change, and as a line on stdout at every connect and
 * every failure. SIGTERM or SIGINT, or the end of --duration-s, end it
 * cleanly with a summary line. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "hc.h"
#include "lwip/sockets.h"
#include "lwip/tcpip.h"

#include "faultd/usdt.h"

#include "port_netif.h"
#include "port_sock.h"

#define LC_SLICE_MS		50	/* longest wait before looking at the stop flag */
#define LC_BACKOFF_START_MS	50
#define LC_LINE_MAX		128	/* "CONNECT <id> <seq>\n" and "PING <seq>\n" */

struct lc_opts {
	const char *tap;
	const char *addr_arg;		/* as given, for the banner */
	const char *server_arg;
	in_addr_t addr, mask, gw;	/* network byte order; gw 0: none */
	struct sockaddr_in server;
	unsigned int slots;
	unsigned int duration_s;	/* 0: until a signal */
	unsigned int timeout_ms;	/* connect and reply timeout */
	unsigned int keepalive_ms;
	unsigned int max_backoff_ms;
	enum port_sock_bug bug;
	int help;
};

struct lc {
	const struct lc_opts *o;
	char id[INET_ADDRSTRLEN];	/* the client's address names it to the server */
	long long start_ms;		/* for the t= field of each line */
	long long deadline_ms;		/* 0: none */
	unsigned long long attempts, connects, failures, seq;
};

static volatile sig_atomic_t lc_stop_signal;

static void lc_on_signal(int sig)
{
	lc_stop_signal = sig;
}

/* Seconds since start, on every line, so a log shows how soon after a
 * flap the client noticed and came back. */
static double lc_elapsed(const struct lc *c)
{
	return (hc_now_ms() - c->start_ms) / 1000.0;
}

static int lc_stopping(const struct lc *c)
{
	return lc_stop_signal || (c->deadline_ms && hc_now_ms() >= c->deadline_ms);
}

/* --- waiting on lwIP ------------------------------------------------------ */

/* Waits for events on slot idx until deadline. lwIP's waits do not return
 * on signals, so they are cut into slices. Returns revents, -ETIMEDOUT, or
 * -EINTR once the client is stopping. */
static int lc_wait(const struct lc *c, int idx, short events, long long deadline)
{
	long long left;
	int r;

	for (;;) {
		if (lc_stopping(c))
			return -EINTR;
		left = deadline - hc_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = port_poll(idx, events, left < LC_SLICE_MS ? (int)left : LC_SLICE_MS);
		if (r != 0)
			return r;
	}
}

/* Sleeps ms, or less if the client is told to stop. */
static void lc_sleep(const struct lc *c, unsigned int ms)
{
	long long deadline = hc_now_ms() + ms, left;

	while (!lc_stopping(c) && (left = deadline - hc_now_ms()) > 0)
		usleep((useconds_t)(left < LC_SLICE_MS ? left : LC_SLICE_MS) * 1000);
}

static int lc_connect(const struct lc *c, int idx)
{
	int err;

	err = port_connect(idx, &c->o->server);
	if (err != -EINPROGRESS)
		goto out;
	err = lc_wait(c, idx, POLLOUT, hc_now_ms() + c->o->timeout_ms);
	if (err < 0)
		goto out;
	err = port_connect_result(idx);
out:
	return err;
}

/* Sends line and reads its echo back within --timeout-ms. Returns 0,
 * -ETIMEDOUT, -ECONNRESET for an EOF, -EPROTO for a wrong echo, -EINTR when
 * stopping, or what lwIP said. */
static int lc_exchange(const struct lc *c, int idx, const char *line)
{
	long long deadline = hc_now_ms() + c->o->timeout_ms;
	size_t len = strlen(line), done = 0;
	char buf[LC_LINE_MAX];
	ssize_t n;
	int err;

	while (done < len) {
		n = port_send(idx, line + done, len - done);
		if (n == -EAGAIN) {
			err = lc_wait(c, idx, POLLOUT, deadline);
			if (err < 0)
				goto out;
			continue;
		}
		if (n < 0) {
			err = (int)n;
			goto out;
		}
		done += (size_t)n;
	}
	done = 0;
	while (done < len) {
		n = port_recv(idx, buf + done, len - done);
		if (n == -EAGAIN) {
			err = lc_wait(c, idx, POLLIN, deadline);
			if (err < 0)
				goto out;
			continue;
		}
		if (n < 0) {
			err = (int)n;
			goto out;
		}
		if (n == 0) {
			err = -ECONNRESET;
			goto out;
		}
		done += (size_t)n;
	}
	err = memcmp(buf, line, len) ? -EPROTO : 0;
out:
	return err;
}

/* Between keepalives the server has nothing to say; anything it does say,
 * an EOF included, ends the session. Returns 0 when the next keepalive is
 * due. */
static int lc_idle(const struct lc *c, int idx, long long until)
{
	char buf[LC_LINE_MAX];
	ssize_t n;
	int err;

	err = lc_wait(c, idx, POLLIN, until);
	if (err == -ETIMEDOUT) {
		err = 0;
		goto out;
	}
	if (err < 0)
		goto out;
	n = port_recv(idx, buf, sizeof(buf));
	if (n == -EAGAIN)
		err = 0;
	else if (n < 0)
		err = (int)n;
	else
		err = n == 0 ? -ECONNRESET : -EPROTO;
out:
	return err;
}

/* --- the session ---------------------------------------------------------- */

/* The device's message, word for word, so a log grep finds it. */
static void lc_report_create_failed(const struct lc *c, int err)
{
	if (err == -ENFILE)
		printf("lwip-client: create socket failed (slots %u/%u in use) "
		       "attempt=%llu failures=%llu t=%.3f\n", port_sock_used(),
		       port_sock_slots(), c->attempts, c->failures, lc_elapsed(c));
	else
		printf("lwip-client: create socket failed (%s) attempt=%llu "
		       "failures=%llu t=%.3f\n", hc_errname(-err), c->attempts, c->failures,
		       lc_elapsed(c));
}

/* One attempt: a slot, a connection, keepalives until something fails.
 * Returns 1 if it connected (the backoff starts over), 0 if not, -EINTR if
 * it ended because the client is stopping. */
static int lc_session(struct lc *c)
{
	const struct lc_opts *o = c->o;
	char line[LC_LINE_MAX];
	long long start = hc_now_ms(), up_at = 0;
	int idx, err, r = 0;

	FAULTD_COUNTER("attempts", ++c->attempts);
	idx = port_socket();
	if (idx < 0) {
		FAULTD_COUNTER("failures", ++c->failures);
		lc_report_create_failed(c, idx);
		goto out;
	}
	err = lc_connect(c, idx);
	if (err)
		goto teardown;
	snprintf(line, sizeof(line), "CONNECT %s %llu\n", c->id, ++c->seq);
	err = lc_exchange(c, idx, line);
	if (err)
		goto teardown;
	up_at = hc_now_ms();
	FAULTD_COUNTER("connects", ++c->connects);
	printf("lwip-client: connected attempt=%llu connects=%llu failures=%llu "
	       "slots_used=%u slot=%d t=%.3f\n", c->attempts, c->connects, c->failures,
	       port_sock_used(), idx, lc_elapsed(c));
	do {
		err = lc_idle(c, idx, hc_now_ms() + o->keepalive_ms);
		if (err)
			break;
		snprintf(line, sizeof(line), "PING %llu\n", ++c->seq);
		err = lc_exchange(c, idx, line);
	} while (!err);

teardown:
	/* As the device's MQTT/mbedTLS layer did, and as the defect needs:
	 * shutdown first, then close. A close that fails is not retried;
	 * the device did not either. A session that failed is reset, not
	 * closed gracefully: lwIP would keep its unacknowledged PING and the
	 * connection's TIME_WAIT for minutes, memory a fixed client must not
	 * be seen to grow. */
	if (err != -EINTR)
		port_abortive(idx);
	port_shutdown(idx, SHUT_RDWR);
	port_close(idx);
	if (err == -EINTR) {
		r = -EINTR;
		goto out;
	}
	FAULTD_COUNTER("failures", ++c->failures);
	/* Printed after the close, so slots_used shows whether it freed. */
	printf("lwip-client: %s after %.1f s (%s) attempt=%llu connects=%llu "
	       "failures=%llu slots_used=%u slot=%d t=%.3f\n",
	       up_at ? "connection lost" : "connect failed",
	       (hc_now_ms() - (up_at ? up_at : start)) / 1000.0, hc_errname(-err), c->attempts,
	       c->connects, c->failures, port_sock_used(), idx, lc_elapsed(c));
	r = up_at != 0;
out:
	return r;
}

#define LC_ARP_WAIT_MS 5000	/* then try anyway: connects will tell */
#define LC_ARP_RETRY_MS 100

/* Wait until the next hop (the server, or the gateway) answers ARP. */
static void lc_wait_network(struct lc *c, struct port_netif *pn)
{
	in_addr_t hop = c->o->gw ? c->o->gw : c->o->server.sin_addr.s_addr;
	long long deadline = hc_now_ms() + LC_ARP_WAIT_MS;

	while (!lc_stopping(c) && hc_now_ms() < deadline && !port_netif_neighbor_ready(pn, hop))
		lc_sleep(c, LC_ARP_RETRY_MS);
	printf("lwip-client: network %s after %.3f s\n",
	       port_netif_neighbor_ready(pn, hop) ? "up" : "not answering", lc_elapsed(c));
}

static void lc_run(struct lc *c)
{
	unsigned int backoff = LC_BACKOFF_START_MS;
	int r;

	while (!lc_stopping(c)) {
		r = lc_session(c);
		if (r < 0)
			break;
		if (r > 0)
			backoff = LC_BACKOFF_START_MS;
		lc_sleep(c, backoff);
		backoff = backoff * 2 > c->o->max_backoff_ms ? c->o->max_backoff_ms : backoff * 2;
	}
}

/* --- the stack ------------------------------------------------------------ */

static void lc_tcpip_ready(void *arg)
{
	sem_post(arg);
}

/* lwIP's threads (tcpip, the netif reader) inherit a mask that blocks the
 * stop signals, so only the main thread sees them. */
static struct port_netif *lc_stack_start(const struct lc_opts *o)
{
	sigset_t stopsigs, old;
	struct port_netif *pn = NULL;
	sem_t ready;
	int err;

	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stopsigs, &old);
	if (sem_init(&ready, 0, 0) < 0) {
		err = -errno;
		fprintf(stderr, "%s: sem_init: %s\n", __func__, strerror(-err));
		goto out;
	}
	/* LWIP_RAND() is rand(): unseeded, every run would start from the
	 * same local port, and a new first SYN would meet the last run's
	 * connection still in LAST_ACK on the server and stall for lwIP's
	 * 3 s SYN retransmit. */
	srand((unsigned int)getpid() ^ (unsigned int)hc_now_ms());
	tcpip_init(lc_tcpip_ready, &ready);
	while (sem_wait(&ready) < 0 && errno == EINTR)
		;
	sem_destroy(&ready);
	pn = port_netif_open(o->tap, o->addr, o->mask, o->gw);
	err = pn ? 0 : -errno;
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = -err;
	return pn;
}

/* --- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lwip-client --tap IFNAME --addr A.B.C.D/PREFIX --server IP:PORT\n"
		"                   [--gw A.B.C.D] [--slots N] [--bug=shutdown-close]\n"
		"                   [--timeout-ms MS] [--keepalive-ms MS] [--max-backoff-ms MS]\n"
		"                   [--duration-s S] [--help]\n"
		"An MQTT-like client on lwIP over an existing tap, reconnecting forever.\n"
		"  --tap IFNAME         tap in this namespace (persistent, IFF_TAP|IFF_NO_PI)\n"
		"  --addr A.B.C.D/LEN   lwIP's own address and prefix length\n"
		"  --gw A.B.C.D         default gateway (default: none)\n"
		"  --server IP:PORT     TCP echo server to keep a session with\n"
		"  --slots N            port-layer socket table size (default 38)\n"
		"  --bug=shutdown-close close() after shutdown() leaks the slot (incident 2)\n"
		"  --timeout-ms MS      connect and reply timeout (default 2000)\n"
		"  --keepalive-ms MS    PING interval (default 200)\n"
		"  --max-backoff-ms MS  reconnect backoff cap; it starts at 50 (default 1000)\n"
		"  --duration-s S       run S seconds (default 0: until SIGTERM)\n"
		"Prints a line at every connect and failure; USDT counters attempts,\n"
		"connects, failures, slots_used. SIGTERM or SIGINT: summary line, exit 0.\n");
}

/* Returns 0 or -EINVAL after naming the bad option on stderr. */
static int opts_parse(int argc, char **argv, struct lc_opts *o)
{
	static const struct option longopts[] = {
		{"tap", required_argument, NULL, 't'},
		{"addr", required_argument, NULL, 'a'},
		{"gw", required_argument, NULL, 'g'},
		{"server", required_argument, NULL, 's'},
		{"slots", required_argument, NULL, 'n'},
		{"bug", required_argument, NULL, 'B'},
		{"timeout-ms", required_argument, NULL, 'T'},
		{"keepalive-ms", required_argument, NULL, 'k'},
		{"max-backoff-ms", required_argument, NULL, 'm'},
		{"duration-s", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt, err = 0;

	*o = (struct lc_opts){.slots = 38, .timeout_ms = 2000, .keepalive_ms = 200,
			      .max_backoff_ms = 1000};
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (!*optarg || strlen(optarg) >= 16) {
				fprintf(stderr, "%s: --tap: '%s' is not an interface name\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			o->tap = optarg;
			break;
		case 'a':
			if (hc_parse_cidr(optarg, &o->addr, &o->mask)) {
				fprintf(stderr, "%s: --addr: '%s' is not A.B.C.D/LEN (LEN 1-30)\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			o->addr_arg = optarg;
			break;
		case 'g':
			if (hc_parse_ip4(optarg, &o->gw)) {
				fprintf(stderr, "%s: --gw: '%s' is not an IPv4 address\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 's':
			if (hc_parse_ip4_port(optarg, &o->server)) {
				fprintf(stderr, "%s: --server: '%s' is not IPv4:PORT\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			o->server_arg = optarg;
			break;
		case 'n':
			if (hc_parse_uint(optarg, 1, 4096, &o->slots)) {
				fprintf(stderr, "%s: --slots: '%s' is not a count (1-4096)\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'B':
			if (strcmp(optarg, "shutdown-close")) {
				fprintf(stderr, "%s: --bug: unknown bug '%s' (known: shutdown-close)\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			o->bug = PORT_SOCK_BUG_SHUTDOWN_CLOSE;
			break;
		case 'T':
		case 'k':
		case 'm':
			if (hc_parse_uint(optarg, 1, 3600 * 1000,
				       opt == 'T' ? &o->timeout_ms :
				       opt == 'k' ? &o->keepalive_ms : &o->max_backoff_ms)) {
				fprintf(stderr, "%s: --%s: '%s' is not milliseconds (1-3600000)\n",
					__func__, opt == 'T' ? "timeout-ms" :
					opt == 'k' ? "keepalive-ms" : "max-backoff-ms", optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'd':
			if (hc_parse_uint(optarg, 0, 365 * 86400, &o->duration_s)) {
				fprintf(stderr, "%s: --duration-s: '%s' is not seconds\n",
					__func__, optarg);
				err = -EINVAL;
				goto out;
			}
			break;
		case 'h':
			o->help = 1;
			goto out;
		default:
			/* getopt has named the option already. */
			fprintf(stderr, "%s: try --help\n", __func__);
			err = -EINVAL;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", __func__, argv[optind]);
		err = -EINVAL;
		goto out;
	}
	if (!o->tap || !o->addr_arg || !o->server_arg) {
		fprintf(stderr, "%s: %s is required\n", __func__,
			!o->tap ? "--tap" : !o->addr_arg ? "--addr" : "--server");
		err = -EINVAL;
		goto out;
	}
	if (o->max_backoff_ms < LC_BACKOFF_START_MS)
		o->max_backoff_ms = LC_BACKOFF_START_MS;
out:
	return err;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = lc_on_signal};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	struct port_netif *pn;
	struct lc_opts o;
	struct lc c = {.o = &o};
	int code = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (opts_parse(argc, argv, &o))
		goto out;
	code = 0;
	if (o.help) {
		usage(stdout);
		goto out;
	}
	code = 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	inet_ntop(AF_INET, &o.addr, c.id, sizeof(c.id));
	c.start_ms = hc_now_ms();
	if (o.duration_s)
		c.deadline_ms = c.start_ms + (long long)o.duration_s * 1000;
	if (port_sock_init(o.slots, o.bug))
		goto out;
	pn = lc_stack_start(&o);
	if (!pn)
		goto err_fini_sock;
	printf("lwip-client: started tap=%s addr=%s server=%s slots=%u bug=%s\n", o.tap,
	       o.addr_arg, o.server_arg, o.slots,
	       o.bug == PORT_SOCK_BUG_SHUTDOWN_CLOSE ? "shutdown-close" : "none");
	lc_wait_network(&c, pn);
	lc_run(&c);
	printf("lwip-client: stopping: attempts=%llu connects=%llu failures=%llu "
	       "slots_used=%u\n", c.attempts, c.connects, c.failures, port_sock_used());
	code = 0;
	port_netif_close(pn);
err_fini_sock:
	port_sock_fini();
out:
	return code;
}
