/* msgq: incident 4 as a workload. N producer threads hand heap-allocated
 * messages to one consumer thread through a bounded lock-free pointer ring,
 * the shape of the incident's `fifo[in] = p; in = in + 1;`. Each producer
 * mallocs a message, the consumer checks its checksum and frees it; when the
 * ring is full the producer frees its own message and counts a drop.
 *
 * By default the slot store is published with a C11 release store of the
 * index and the consumer loads the index with acquire: the consumer never
 * sees an index before the slot it covers. --bug=publish-early publishes the
 * index first and stores the slot afterwards, as a weakly ordered CPU may
 * make the incident's code behave: the consumer then takes the slot's
 * previous pointer, already freed, and frees it a second time. x86 keeps
 * stores in order, so the producer holds the gap open on purpose
 * (--window-us, on --window-pct of the messages); with the defaults glibc
 * aborts on the double free within about 10 ms of the start.
 *
 * Every enqueue and dequeue is a faultd USDT probe (msg_send, msg_recv).
 * SIGTERM or SIGINT, or the end of --duration-s, stop the producers; the
 * consumer drains the ring, everything is freed and one summary line goes
 * to stdout. Nothing is printed per message. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faultd/usdt.h"
#include "hc.h"

#define MSGQ_MAGIC		0x67736d5f7167736dULL	/* "msgq_msg" in memory (little-endian) */
#define MSGQ_MAX_PRODUCERS	256
#define MSGQ_MAX_SLOTS		(1U << 20)
#define MSGQ_MAX_PAYLOAD	(1U << 20)
#define MSGQ_MAX_RATE		100000000U
#define MSGQ_MAX_WINDOW_US	1000000U
#define MSGQ_SLICE_NS		50000000LL	/* longest sleep before looking at the stop flag */
#define MSGQ_IDLE_NS		50000L	/* consumer's nap when the ring is empty */
#define MSGQ_IDLE_SPINS		64	/* empty polls before the consumer naps */
#define MSGQ_COUNTER_EVERY	4096	/* received messages between counter probes */
#define MSGQ_CATCHUP_NS		100000000LL /* a producer this far behind its schedule
					     * gives up on catching up */

enum msgq_bug {
	MSGQ_BUG_NONE,
	MSGQ_BUG_PUBLISH_EARLY,
};

struct msgq_opts {
	unsigned int producers;
	unsigned int slots;
	unsigned int rate;		/* messages/s over all producers; 0: flat out */
	unsigned int duration_s;	/* 0: until a signal */
	unsigned int payload;		/* bytes per message */
	unsigned int window_us;		/* --bug=publish-early: index-to-slot gap */
	unsigned int window_pct;	/* share of messages that get the gap */
	enum msgq_bug bug;
	int help;
};

/* The checksum and a magic number lead the message on purpose: glibc's free
 * lists reuse the first 16 bytes of a freed chunk, so a message read after
 * its free fails the check while its producer and sequence, further in, keep
 * their old values. A stale dequeue then shows up in faultd as the same
 * (queue, seq) received twice, which is exactly what happened. */
struct msg {
	uint64_t magic;			/* MSGQ_MAGIC */
	uint32_t csum;			/* msg_csum() of everything after this field */
	uint32_t len;			/* payload bytes */
	uint32_t producer;		/* queue id in the probes */
	uint32_t pad;			/* zero; keeps seq aligned and the sum defined */
	uint64_t seq;			/* per producer, from 0 */
	unsigned char payload[];
};

/* Single consumer, producers serialized by a mutex. in and out count
 * messages since start and never wrap in practice (2^64); the slot of count
 * c is slots[c % nslots]. Slots are relaxed atomics: every ordering this
 * ring needs is carried by the two indexes, which is the point of it, and a
 * plain pointer read racing a plain write would make the bug mode undefined
 * behaviour in C rather than a weak-CPU stand-in. */
struct ring {
	_Atomic(struct msg *) *slots;
	unsigned int nslots;
	pthread_mutex_t lock;		/* producers only; the consumer takes no lock */
	_Atomic uint64_t in;		/* published: slots below it may be read */
	_Atomic uint64_t out;		/* consumed: slots below it may be rewritten */
};

struct producer {
	struct msgq *q;
	pthread_t thread;
	unsigned int id;
	uint64_t seed;			/* xorshift state for --window-pct */
	unsigned long long made;	/* malloced and filled */
	unsigned long long dropped_full; /* freed here because the ring was full */
	unsigned long long nomem;	/* malloc failed; nothing made */
};

struct msgq {
	const struct msgq_opts *o;
	struct ring ring;
	struct producer *prod;
	unsigned int nprod;		/* threads started */
	pthread_t consumer;
	int consumer_started;
	atomic_int stop;		/* producers: finish now */
	atomic_int producers_done;	/* consumer: drain and finish */
	unsigned long long received;	/* consumer's, read after join */
	unsigned long long bad_checksum;
	unsigned long long null_slots;	/* a never-written slot read as a message */
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(long long t)
{
	struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* --- messages ------------------------------------------------------------ */

/* FNV-1a over the fields after csum and the payload. Reads len bytes of
 * payload, so callers check len first. */
static uint32_t msg_csum(const struct msg *m)
{
	const unsigned char *p = (const unsigned char *)&m->len;
	const unsigned char *end = m->payload + m->len;
	uint32_t h = 2166136261U;

	for (; p < end; p++) {
		h ^= *p;
		h *= 16777619U;
	}
	return h;
}

static struct msg *msg_new(unsigned int producer, uint64_t seq, unsigned int len)
{
	struct msg *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	m->magic = MSGQ_MAGIC;
	m->len = len;
	m->producer = producer;
	m->pad = 0;
	m->seq = seq;
	for (unsigned int i = 0; i < len; i++)
		m->payload[i] = (unsigned char)(seq * 31 + i);
	m->csum = msg_csum(m);
	return m;
}

/* A message is good if it still is what its producer made. A length other
 * than --payload means the header was overwritten: do not sum past it. */
static int msg_ok(const struct msg *m, unsigned int len)
{
	return m->magic == MSGQ_MAGIC && m->len == len && m->csum == msg_csum(m);
}

/* --- the ring -------------------------------------------------------------- */

static int ring_init(struct ring *r, unsigned int nslots)
{
	int err;

	r->slots = calloc(nslots, sizeof(*r->slots));
	if (!r->slots) {
		err = -errno;
		goto out;
	}
	err = -pthread_mutex_init(&r->lock, NULL);
	if (err)
		goto err_free_slots;
	r->nslots = nslots;
	atomic_init(&r->in, 0);
	atomic_init(&r->out, 0);
	return 0;

err_free_slots:
	free(r->slots);
	r->slots = NULL;
out:
	return err;
}

/* The slots still hold pointers the consumer has freed (it never clears
 * them, like the incident's queue): only the array goes. */
static void ring_fini(struct ring *r)
{
	pthread_mutex_destroy(&r->lock);
	free(r->slots);
}

/* Busy-waits, without sleeping, so the producer stays on its CPU and keeps
 * the gap between its two stores open the whole time. */
static void spin_us(unsigned int us)
{
	long long end = now_ns() + (long long)us * 1000;

	while (now_ns() < end)
		;
}

/* Returns 0 with m enqueued (the consumer owns it now), or -ENOSPC with m
 * untouched when the ring is full. */
static int ring_put(struct producer *p, struct msg *m)
{
	const struct msgq_opts *o = p->q->o;
	struct ring *r = &p->q->ring;
	uint64_t in;
	int err;

	pthread_mutex_lock(&r->lock);
	in = atomic_load_explicit(&r->in, memory_order_relaxed);
	/* Acquire pairs with the consumer's release of out: its read of the
	 * slot we are about to reuse is over. */
	if (in - atomic_load_explicit(&r->out, memory_order_acquire) >= r->nslots) {
		err = -ENOSPC;
		goto out_unlock;
	}
	/* Fired before the publish, so faultd always sees a message's send
	 * before its receive. */
	FAULTD_MSG_SEND(m->producer, m->seq, m);
	if (o->bug == MSGQ_BUG_PUBLISH_EARLY) {
		/* The bug: the index goes out before the slot. x86 is TSO and
		 * never lets another CPU see these two stores in the other
		 * order by itself, and it would anyway be over in nanoseconds.
		 * So on a share of the messages the producer holds a window
		 * open on purpose between them: it stands in for a weakly
		 * ordered CPU (the incident's) that lets the index reach the
		 * reader before the slot. The consumer reads the slot in the
		 * window and gets last round's pointer, already freed.
		 * Only a share (--window-pct), as a weak CPU reorders only
		 * now and then, so that chance and not the consumer's wakeup
		 * timing decides which reads come too early: a consumer that
		 * caught every window would run one whole round behind and
		 * free each pointer just once. The double free needs a slot
		 * read in time in one round and too early in the next. */
		atomic_store_explicit(&r->in, in + 1, memory_order_release);
		if (o->window_us && xorshift64(&p->seed) % 100 < o->window_pct)
			spin_us(o->window_us);
		/* Keep the compiler from moving the slot store up, which it
		 * may do with a relaxed store after a release. */
		atomic_signal_fence(memory_order_seq_cst);
		atomic_store_explicit(&r->slots[in % r->nslots], m, memory_order_relaxed);
	} else {
		atomic_store_explicit(&r->slots[in % r->nslots], m, memory_order_relaxed);
		/* Release: whoever sees in + 1 sees the slot store above. */
		atomic_store_explicit(&r->in, in + 1, memory_order_release);
	}
	err = 0;
out_unlock:
	pthread_mutex_unlock(&r->lock);
	return err;
}

/* --- threads ------------------------------------------------------------- */

/* Sleeps until t, in slices, unless told to stop. Returns 1 if told. */
static int producer_wait(struct producer *p, long long t)
{
	long long now;

	while ((now = now_ns()) < t) {
		if (atomic_load_explicit(&p->q->stop, memory_order_relaxed))
			return 1;
		sleep_until_ns(t - now > MSGQ_SLICE_NS ? now + MSGQ_SLICE_NS : t);
	}
	return atomic_load_explicit(&p->q->stop, memory_order_relaxed);
}

static void *producer_run(void *arg)
{
	struct producer *p = arg;
	const struct msgq_opts *o = p->q->o;
	/* Each producer keeps its share of --rate on its own schedule of
	 * absolute deadlines, so oversleeping one message is made up on the
	 * next ones instead of lowering the rate. */
	long long period = o->rate ? 1000000000LL * o->producers / o->rate : 0;
	long long next = now_ns() + period * p->id / o->producers;
	uint64_t seq = 0;
	struct msg *m;

	while (!producer_wait(p, next)) {
		next += period;
		if (period && now_ns() - next > MSGQ_CATCHUP_NS)
			next = now_ns();	/* after a SIGSTOP, say: no burst */
		m = msg_new(p->id, seq, o->payload);
		if (!m) {
			p->nomem++;
			continue;
		}
		seq++;
		p->made++;
		if (ring_put(p, m) == -ENOSPC) {
			/* The incident's "queue full" path. */
			free(m);
			p->dropped_full++;
		}
	}
	return NULL;
}

static void *consumer_run(void *arg)
{
	struct msgq *q = arg;
	struct ring *r = &q->ring;
	uint64_t out = 0, in;
	unsigned int idle = 0;
	struct msg *m;
	int done;

	for (;;) {
		/* Read done before in: once producers_done is seen, the
		 * joined producers' last publish is visible too. */
		done = atomic_load_explicit(&q->producers_done, memory_order_acquire);
		/* Acquire pairs with the producer's release of in: the slots
		 * below it are written. (With --bug=publish-early the producer
		 * published before writing, and nothing here can save it.) */
		in = atomic_load_explicit(&r->in, memory_order_acquire);
		if (out == in) {
			if (done)
				break;
			if (++idle < MSGQ_IDLE_SPINS)
				continue;
			idle = 0;
			nanosleep(&(struct timespec){0, MSGQ_IDLE_NS}, NULL);
			continue;
		}
		for (; out != in; out++) {
			/* Not cleared after reading, as in the incident: the
			 * slot keeps the pointer until next round's store. */
			m = atomic_load_explicit(&r->slots[out % r->nslots], memory_order_relaxed);
			if (!m) {
				/* Only the first round has never-written slots;
				 * count it and go on to where the incident went,
				 * the next round's stale pointer. */
				q->null_slots++;
				continue;
			}
			FAULTD_MSG_RECV(m->producer, m->seq, m);
			if (!msg_ok(m, q->o->payload))
				q->bad_checksum++;
			free(m);
			if (++q->received % MSGQ_COUNTER_EVERY == 0)
				FAULTD_COUNTER("received", q->received);
		}
		/* Release: our reads of these slots are over before a
		 * producer may reuse them. */
		atomic_store_explicit(&r->out, out, memory_order_release);
	}
	return NULL;
}

/* --- the queue ----------------------------------------------------------- */

/* Stops the producers, lets the consumer drain the ring and joins them
 * all. Safe on a partly started queue. */
static void msgq_stop(struct msgq *q)
{
	atomic_store_explicit(&q->stop, 1, memory_order_relaxed);
	for (unsigned int i = 0; i < q->nprod; i++)
		pthread_join(q->prod[i].thread, NULL);
	/* Release pairs with the consumer's acquire: after the joins every
	 * publish is done and visible with this flag. */
	atomic_store_explicit(&q->producers_done, 1, memory_order_release);
	if (q->consumer_started)
		pthread_join(q->consumer, NULL);
	q->consumer_started = 0;
	q->nprod = 0;
}

static void msgq_free(struct msgq *q)
{
	msgq_stop(q);
	ring_fini(&q->ring);
	free(q->prod);
	free(q);
}

/* Returns the queue with all threads running, or NULL with errno set after
 * saying why on stderr. */
static struct msgq *msgq_new(const struct msgq_opts *o)
{
	uint64_t seed = (uint64_t)now_ns();
	struct msgq *q;
	int err;

	q = calloc(1, sizeof(*q));
	if (!q) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto out;
	}
	q->o = o;
	err = ring_init(&q->ring, o->slots);
	if (err) {
		fprintf(stderr, "%s: ring of %u slots: %s\n", __func__, o->slots, strerror(-err));
		goto err_free_q;
	}
	q->prod = calloc(o->producers, sizeof(*q->prod));
	if (!q->prod) {
		err = -errno;
		fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(-err));
		goto err_fini_ring;
	}
	err = -pthread_create(&q->consumer, NULL, consumer_run, q);
	if (err) {
		fprintf(stderr, "%s: consumer thread: %s\n", __func__, strerror(-err));
		goto err_free_prod;
	}
	q->consumer_started = 1;
	for (unsigned int i = 0; i < o->producers; i++) {
		struct producer *p = &q->prod[i];

		p->q = q;
		p->id = i;
		p->seed = (seed + i) * 0x9e3779b97f4a7c15ULL | 1;	/* never 0 */
		err = -pthread_create(&p->thread, NULL, producer_run, p);
		if (err) {
			fprintf(stderr, "%s: producer thread %u: %s\n", __func__, i,
				strerror(-err));
			goto err_stop;
		}
		q->nprod++;
	}
	return q;

err_stop:
	msgq_stop(q);	/* joins the producers started and the consumer */
err_free_prod:
	free(q->prod);
err_fini_ring:
	ring_fini(&q->ring);
err_free_q:
	free(q);
out:
	errno = -err;
	return NULL;
}

/* --- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: msgq [--producers N] [--slots N] [--rate N] [--duration-s S]\n"
		"            [--payload N] [--bug=publish-early] [--window-us N]\n"
		"            [--window-pct P] [--help]\n"
		"N producer threads send malloced messages to one consumer thread over a\n"
		"bounded lock-free pointer ring; the consumer checks and frees them.\n"
		"  --producers N     producer threads (default 3, 1-%u)\n"
		"  --slots N         ring slots (default 64, 2-%u)\n"
		"  --rate N          messages/s over all producers (default 20000; 0: flat out)\n"
		"  --duration-s S    stop after S seconds (default 0: at SIGTERM/SIGINT)\n"
		"  --payload N       payload bytes per message (default 64, 0-%u)\n"
		"  --bug=none        publish the slot with release/acquire (default)\n"
		"  --bug=publish-early  publish the index before storing the slot, as a\n"
		"                    weakly ordered CPU may: the consumer takes a stale,\n"
		"                    already freed pointer and frees it again\n"
		"  --window-us N     publish-early: busy-wait between the two stores\n"
		"                    (default 200, 0-%u)\n"
		"  --window-pct P    publish-early: share of messages that get the wait\n"
		"                    (default 50, 0-100)\n"
		"At the end prints 'msgq: sent=N received=N dropped_full=N bad_checksum=N\n"
		"msgs_per_s=N' and exits 0; sent = received + dropped_full when correct.\n",
		MSGQ_MAX_PRODUCERS, MSGQ_MAX_SLOTS, MSGQ_MAX_PAYLOAD, MSGQ_MAX_WINDOW_US);
}

/* The numeric options, as a table: name, where it goes, default, range.
 * getopt_long hands back MSGQ_OPT_UINT + the row for these. */
struct uint_opt {
	const char *name;
	size_t off;			/* in struct msgq_opts */
	unsigned int def, min, max;
};

#define UINT_OPT(n, field, d, lo, hi) {n, offsetof(struct msgq_opts, field), d, lo, hi}
static const struct uint_opt uint_opts[] = {
	UINT_OPT("producers", producers, 3, 1, MSGQ_MAX_PRODUCERS),
	UINT_OPT("slots", slots, 64, 2, MSGQ_MAX_SLOTS),
	UINT_OPT("rate", rate, 20000, 0, MSGQ_MAX_RATE),
	UINT_OPT("duration-s", duration_s, 0, 0, 86400 * 365),
	UINT_OPT("payload", payload, 64, 0, MSGQ_MAX_PAYLOAD),
	UINT_OPT("window-us", window_us, 200, 0, MSGQ_MAX_WINDOW_US),
	UINT_OPT("window-pct", window_pct, 50, 0, 100),
};
#define N_UINT_OPTS	(sizeof(uint_opts) / sizeof(uint_opts[0]))
#define MSGQ_OPT_UINT	0x100	/* above any short option character */

static unsigned int *uint_opt_field(struct msgq_opts *o, const struct uint_opt *u)
{
	return (unsigned int *)((char *)o + u->off);
}

/* Returns 0 or -EINVAL after naming the bad option on stderr. */
static int opts_parse(int argc, char **argv, struct msgq_opts *o)
{
	struct option longopts[N_UINT_OPTS + 3] = {
		[N_UINT_OPTS] = {"bug", required_argument, NULL, 'b'},
		[N_UINT_OPTS + 1] = {"help", no_argument, NULL, 'h'},
	};
	const struct uint_opt *u;
	int opt, err = 0;

	*o = (struct msgq_opts){.bug = MSGQ_BUG_NONE};
	for (size_t i = 0; i < N_UINT_OPTS; i++) {
		u = &uint_opts[i];
		*uint_opt_field(o, u) = u->def;
		longopts[i] = (struct option){u->name, required_argument, NULL,
					      MSGQ_OPT_UINT + (int)i};
	}
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt >= MSGQ_OPT_UINT && opt < MSGQ_OPT_UINT + (int)N_UINT_OPTS) {
			u = &uint_opts[opt - MSGQ_OPT_UINT];
			if (hc_parse_uint(optarg, u->min, u->max, uint_opt_field(o, u))) {
				fprintf(stderr, "%s: --%s: '%s' is not a number in %u-%u\n",
					__func__, u->name, optarg, u->min, u->max);
				err = -EINVAL;
				goto out;
			}
			continue;
		}
		switch (opt) {
		case 'b':
			if (!strcmp(optarg, "none")) {
				o->bug = MSGQ_BUG_NONE;
			} else if (!strcmp(optarg, "publish-early")) {
				o->bug = MSGQ_BUG_PUBLISH_EARLY;
			} else {
				fprintf(stderr, "%s: --bug: '%s' is not none or publish-early\n",
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
out:
	return err;
}

/* --- main ----------------------------------------------------------------- */

/* Waits for SIGTERM or SIGINT, which every thread has blocked, or for the
 * end of the run. */
static void wait_for_end(const sigset_t *set, unsigned int duration_s)
{
	long long end = now_ns() + (long long)duration_s * 1000000000LL, left;
	struct timespec ts;

	for (;;) {
		if (!duration_s) {
			if (sigwaitinfo(set, NULL) >= 0)
				return;
			continue;	/* EINTR: a stop and continue, say */
		}
		left = end - now_ns();
		if (left <= 0)
			return;
		ts = (struct timespec){left / 1000000000LL, left % 1000000000LL};
		if (sigtimedwait(set, NULL, &ts) >= 0 || errno == EAGAIN)
			return;
	}
}

int main(int argc, char **argv)
{
	struct msgq_opts o;
	unsigned long long made = 0, dropped = 0, nomem = 0;
	long long start, stop;
	struct msgq *q;
	sigset_t set;
	int code = 2;

	if (opts_parse(argc, argv, &o))
		goto out;
	code = 0;
	if (o.help) {
		usage(stdout);
		goto out;
	}
	code = 1;
	/* Blocked before any thread starts, so all of them inherit the mask
	 * and only wait_for_end takes the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (o.bug == MSGQ_BUG_PUBLISH_EARLY)
		fprintf(stderr, "msgq: bug publish-early: index before slot, %u us window on "
			"%u%% of messages\n", o.window_us, o.window_pct);
	start = now_ns();
	q = msgq_new(&o);
	if (!q)
		goto out;
	wait_for_end(&set, o.duration_s);
	msgq_stop(q);
	stop = now_ns();
	for (unsigned int i = 0; i < o.producers; i++) {
		made += q->prod[i].made;
		dropped += q->prod[i].dropped_full;
		nomem += q->prod[i].nomem;
	}
	if (nomem)
		fprintf(stderr, "%s: %llu messages not made: out of memory\n", __func__, nomem);
	if (q->null_slots)
		fprintf(stderr, "%s: %llu never-written slots read as messages\n", __func__,
			q->null_slots);
	printf("msgq: sent=%llu received=%llu dropped_full=%llu bad_checksum=%llu "
	       "msgs_per_s=%.0f\n", made, q->received, dropped, q->bad_checksum,
	       (double)q->received * 1e9 / (double)(stop - start > 0 ? stop - start : 1));
	fflush(stdout);
	code = 0;
	msgq_free(q);
out:
	return code;
}
