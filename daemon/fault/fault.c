#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fault.h"

struct plan {
	struct fault_action *a;
	size_t n, cap;
};

/* splitmix64: small, good enough for jitter, and the same everywhere. */
static uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t uniform(uint64_t *state, long long lo, long long hi)
{
	return (uint64_t)lo + (hi > lo ? next_rand(state) % (uint64_t)(hi - lo + 1) : 0);
}

static int add(struct plan *p, uint64_t t, int act, int target, unsigned cycle, int fault,
	       int signo)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct fault_action *grown = realloc(p->a, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		p->a = grown;
		p->cap = cap;
	}
	p->a[p->n++] = (struct fault_action){.t_ms = t, .act = act, .target = target,
					     .signo = signo, .cycle = cycle, .fault = fault};
	return 0;
}

/* One outage: down, up, and the cycle's sample after the settle window. */
static int outage(struct plan *p, uint64_t t, uint64_t down, uint64_t settle, int link,
		  unsigned cycle, int fault)
{
	int err = add(p, t, FA_LINK_DOWN, link, cycle, fault, 0);

	if (!err)
		err = add(p, t + down, FA_LINK_UP, link, cycle, fault, 0);
	if (!err)
		err = add(p, t + down + settle, FA_CYCLE_END, link, cycle, fault, 0);
	return err;
}

bool fault_act_is_off(int act)
{
	return act == FA_PACKET_OFF || act == FA_SYSERR_OFF || act == FA_RATE_OFF ||
	       act == FA_DELAY_OFF || act == FA_HOG_OFF || act == FA_TCP_RESET_OFF ||
	       act == FA_HALF_OPEN_OFF;
}

/* A window: on at at_ms, off after for_ms (0: held to the end). */
static int window(struct plan *p, const struct sc_fault *f, int on, int target, int fault)
{
	int err = add(p, (uint64_t)f->at_ms, on, target, 0, fault, 0);

	if (!err && f->for_ms)
		err = add(p, (uint64_t)(f->at_ms + f->for_ms), on + 1, target, 0, fault, 0);
	return err;
}

static int cmp_action(const void *a, const void *b)
{
	const struct fault_action *x = a, *y = b;

	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	/* Same instant: an off before the next window's on, otherwise
	 * planning order (a down before its up). */
	bool x_off = fault_act_is_off(x->act), y_off = fault_act_is_off(y->act);

	if (x_off != y_off)
		return x_off ? -1 : 1;
	return x->fault != y->fault ? x->fault - y->fault : x->act - y->act;
}

int fault_plan(const struct scenario *sc, uint64_t seed, uint64_t horizon_ms,
	       struct fault_action **out, size_t *n)
{
	struct plan p = {0};
	uint64_t state = seed;
	int err = 0;

	for (size_t i = 0; !err && i < sc->n_faults; i++) {
		const struct sc_fault *f = &sc->faults[i];
		uint64_t t = (uint64_t)f->start_ms;

		switch (f->type) {
		case SC_F_LINK_FLAP:
			for (unsigned c = 0; !err && (!f->cycles || c < f->cycles); c++) {
				uint64_t at = t + c * (uint64_t)(f->down_ms + f->up_ms) +
					      (f->jitter_ms ? uniform(&state, 0, f->jitter_ms) : 0);

				if (at >= horizon_ms)
					break;
				err = outage(&p, at, (uint64_t)f->down_ms, (uint64_t)f->settle_ms,
					     f->link_idx, c + 1, (int)i);
			}
			break;
		case SC_F_RANDOM:
			for (unsigned c = 0; !err && c < f->cycles && t < horizon_ms; c++) {
				uint64_t down = uniform(&state, f->min_down_ms, f->max_down_ms);
				uint64_t up = uniform(&state, f->min_up_ms, f->max_up_ms);

				err = outage(&p, t, down, (uint64_t)f->settle_ms, f->link_idx,
					     c + 1, (int)i);
				t += down + up;
			}
			break;
		case SC_F_LINK_DOWN:
		case SC_F_LINK_UP:
			err = add(&p, (uint64_t)f->at_ms, f->type == SC_F_LINK_DOWN ? FA_LINK_DOWN
						: FA_LINK_UP, f->link_idx, 0, (int)i, 0);
			break;
		case SC_F_PAUSE:
		case SC_F_RESUME:
			err = add(&p, (uint64_t)f->at_ms, f->type == SC_F_PAUSE ? FA_PAUSE : FA_RESUME,
				  f->wl_idx, 0, (int)i, 0);
			break;
		case SC_F_KILL:
			for (long long k = 0, at = f->at_ms; !err && (uint64_t)at < horizon_ms &&
			     (!f->count || k < f->count); k++, at += f->every_ms) {
				err = add(&p, (uint64_t)at, FA_KILL, f->wl_idx, 0, (int)i, f->signo);
				if (!f->every_ms)
					break;
			}
			break;
		case SC_F_PAUSE_FLAP:
			for (long long k = 0, at = f->start_ms; !err && (uint64_t)at < horizon_ms &&
			     (!f->count || k < f->count); k++, at += f->pause_ms + f->run_ms) {
				err = add(&p, (uint64_t)at, FA_PAUSE, f->wl_idx, 0, (int)i, 0);
				if (!err)
					err = add(&p, (uint64_t)(at + f->pause_ms), FA_RESUME, f->wl_idx,
						  0, (int)i, 0);
			}
			break;
		case SC_F_CPU_HOG:
			err = window(&p, f, FA_HOG_ON, (int)i, (int)i);
			break;
		case SC_F_SYSCALL_ERROR:
			err = window(&p, f, FA_SYSERR_ON, f->wl_idx, (int)i);
			break;
		case SC_F_PACKET:
			err = window(&p, f, FA_PACKET_ON, f->link_idx, (int)i);
			break;
		case SC_F_RATE:
			err = window(&p, f, FA_RATE_ON, f->link_idx, (int)i);
			break;
		case SC_F_DELAY:
			err = window(&p, f, FA_DELAY_ON, f->link_idx, (int)i);
			break;
		case SC_F_TCP_RESET:
			err = window(&p, f, FA_TCP_RESET_ON, f->link_idx, (int)i);
			break;
		case SC_F_HALF_OPEN:
			err = window(&p, f, FA_HALF_OPEN_ON, f->link_idx, (int)i);
			break;
		}
	}
	if (err) {
		free(p.a);
		return err;
	}
	if (p.n)	/* qsort must not be given NULL, even for nothing */
		qsort(p.a, p.n, sizeof(*p.a), cmp_action);
	*out = p.a;
	*n = p.n;
	return 0;
}

const char *fault_act_name(int act)
{
	static const char *const names[] = {
		[FA_LINK_DOWN] = "link_down", [FA_LINK_UP] = "link_up",
		[FA_CYCLE_END] = "cycle_end", [FA_PAUSE] = "pause",
		[FA_RESUME] = "resume", [FA_KILL] = "kill",
		[FA_PACKET_ON] = "packet_on", [FA_PACKET_OFF] = "packet_off",
		[FA_SYSERR_ON] = "syscall_error_on", [FA_SYSERR_OFF] = "syscall_error_off",
		[FA_RATE_ON] = "rate_on", [FA_RATE_OFF] = "rate_off",
		[FA_DELAY_ON] = "delay_on", [FA_DELAY_OFF] = "delay_off",
		[FA_HOG_ON] = "cpu_hog_on", [FA_HOG_OFF] = "cpu_hog_off",
		[FA_TCP_RESET_ON] = "tcp_reset_on", [FA_TCP_RESET_OFF] = "tcp_reset_off",
		[FA_HALF_OPEN_ON] = "half_open_on", [FA_HALF_OPEN_OFF] = "half_open_off",
	};

	return act >= 0 && act < FA_COUNT ? names[act] : "?";
}
