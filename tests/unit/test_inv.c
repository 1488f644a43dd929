/* Unit tests of the invariants as pure functions of what a run observed, and
 * of the key-path locator: no kernel, no processes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv.h"
#include "jpos.h"
#include "probe_alloc.h"
#include "probe_heap.h"
#include "scenario.h"
#include "trend.h"
#include "unit_check.h"

static struct scenario *parse(const char *text)
{
	struct scenario *sc = NULL;
	char *errors = NULL;

	if (scenario_parse("unit.json", text, strlen(text), &sc, &errors)) {
		fprintf(stderr, "parse failed:\n%s", errors ? errors : "?");
		exit(1);
	}
	free(errors);
	return sc;
}

static const char *two_wl =
	"{\"name\":\"u\",\"workloads\":["
	"{\"name\":\"a\",\"kind\":\"exec\",\"cmd\":[\"x\"]},"
	"{\"name\":\"b\",\"kind\":\"exec\",\"cmd\":[\"y\"]}],"
	"\"invariants\":[{\"name\":\"no_crash\"},{\"name\":\"exit_ok\"},"
	"{\"name\":\"no_crash\",\"workload\":\"b\",\"ignore_signals\":[],"
	"\"signals\":[\"SIGPIPE\",\"SIGTERM\"]}]}";

static void obs_init(struct run_obs *obs, struct scenario *sc, struct obs_workload *wl,
		     struct obs_proc *procs, size_t n_procs, struct obs_cycle *cycles,
		     size_t n_cycles)
{
	memset(obs, 0, sizeof(*obs));
	obs->sc = sc;
	obs->wl = wl;
	obs->procs = procs;
	obs->n_procs = n_procs;
	obs->cycles = cycles;
	obs->n_cycles = n_cycles;
	obs->proc_probe = true;
	for (size_t i = 0; i < sc->n_wl; i++)
		wl[i].sc = &sc->wl[i];
}

static void test_no_crash(void)
{
	struct scenario *sc = parse(two_wl);
	struct obs_workload wl[2] = {{.pid = 10, .started = true}, {.pid = 20, .started = true}};
	struct obs_cycle cycles[3] = {{1, 0, 1000, 0, 0}, {2, 1000, 2000, 0, 0}, {3, 2000, 3000, 0, 0}};
	struct obs_proc procs[3] = {
		{.pid = 10, .workload = 0, .comm = "a", .exited = true},
		{.pid = 21, .ppid = 20, .workload = 1, .comm = "child", .exited = true,
		 .signal = SIGSEGV, .t_exit_ms = 1500},
		{.pid = 22, .ppid = 20, .workload = 1, .comm = "piped", .exited = true,
		 .signal = SIGPIPE, .t_exit_ms = 500},
	};
	struct run_obs obs;
	struct inv_result res;

	obs_init(&obs, sc, wl, procs, 3, cycles, 3);
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_FAIL);
	CHECK(res.first_cycle == 2);
	CHECK(res.first_at_ms == 1500);
	CHECK(json_array_size(res.evidence) == 1);	/* SIGPIPE ignored by default */
	CHECK(strstr(res.summary, "SIGSEGV") && strstr(res.summary, "'b'"));
	json_decref(res.evidence);

	/* With ignore_signals empty and SIGPIPE named in signals, the SIGPIPE
	 * death counts too, first. */
	CHECK(inv_eval(&obs, &sc->inv[2], &res) == 0);
	CHECK(res.verdict == V_FAIL && json_array_size(res.evidence) == 2);
	CHECK(res.first_cycle == 1);
	json_decref(res.evidence);

	/* Killed by faultd while stopping: not a crash. */
	procs[1].by_faultd = true;
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_PASS);
	json_decref(res.evidence);

	/* SIGTERM from another process (timeout(1)) is a termination: listed,
	 * not counted, unless the scenario names it. */
	procs[1].by_faultd = false;
	procs[1].signal = SIGTERM;
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_PASS);
	CHECK(json_array_size(res.evidence) == 1);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(res.evidence, 0), "kind")),
		      "termination"));
	json_decref(res.evidence);
	CHECK(inv_eval(&obs, &sc->inv[2], &res) == 0);
	CHECK(res.verdict == V_FAIL && json_array_size(res.evidence) == 2);
	json_decref(res.evidence);

	/* An OOM kill is a crash, named as one. */
	procs[1].signal = SIGKILL;
	procs[1].oom_killed = true;
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_FAIL && strstr(res.summary, "OOM"));
	json_decref(res.evidence);
	procs[1].oom_killed = false;
	procs[1].signal = SIGSEGV;
	procs[1].by_faultd = true;

	/* Lost probe events: no PASS without seeing everything. */
	obs.proc_lost = 3;
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_INCONCLUSIVE);
	json_decref(res.evidence);
	scenario_free(sc);
}

static void test_exit_ok(void)
{
	struct scenario *sc = parse(two_wl);
	struct obs_workload wl[2] = {
		{.pid = 10, .started = true, .exited = true, .exit_status = 0, .t_exit_ms = 100},
		{.pid = 20, .started = true, .exited = true, .stopped = true, .signal = SIGTERM},
	};
	struct obs_cycle cycles[1] = {{1, 0, 1000, 0, 0}};
	struct run_obs obs;
	struct inv_result res;

	obs_init(&obs, sc, wl, NULL, 0, cycles, 1);
	CHECK(inv_eval(&obs, &sc->inv[1], &res) == 0);
	CHECK(res.verdict == V_PASS);
	json_decref(res.evidence);

	wl[0].exit_status = 2;
	CHECK(inv_eval(&obs, &sc->inv[1], &res) == 0);
	CHECK(res.verdict == V_FAIL && strstr(res.summary, "exited with code 2"));
	json_decref(res.evidence);

	wl[0].exit_status = 0;
	wl[1].stopped = false;
	wl[1].timed_out = true;
	CHECK(inv_eval(&obs, &sc->inv[1], &res) == 0);
	CHECK(res.verdict == V_FAIL && strstr(res.summary, "timeout_s"));
	json_decref(res.evidence);
	scenario_free(sc);
}

static void test_verdicts(void)
{
	CHECK(verdict_combine(V_PASS, V_INCONCLUSIVE) == V_INCONCLUSIVE);
	CHECK(verdict_combine(V_INCONCLUSIVE, V_FAIL) == V_FAIL);
	CHECK(verdict_combine(V_FAIL, V_PASS) == V_FAIL);
	CHECK(verdict_combine(V_FAIL, V_ERROR) == V_ERROR);
	CHECK(verdict_exit_code(V_PASS) == 0 && verdict_exit_code(V_FAIL) == 1 &&
	      verdict_exit_code(V_INCONCLUSIVE) == 2 && verdict_exit_code(V_ERROR) == 3);
	CHECK(verdict_parse("FAIL") == V_FAIL && verdict_parse("nope") == V_ERROR);
}

static void test_jpos(void)
{
	const char *text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"c\": {\"d\": [true, null]}\n}\n";
	struct jpath p = {0};
	char buf[64];
	int line, col;

	jpath_push_key(&p, "a");
	jpath_push_idx(&p, 1);
	jpath_push_key(&p, "b");
	jpath_format(&p, buf, sizeof(buf));
	CHECK(strcmp(buf, "a[1].b") == 0);
	jpos_find(text, strlen(text), &p, false, &line, &col);
	CHECK(line == 2 && col == 18);
	jpos_find(text, strlen(text), &p, true, &line, &col);
	CHECK(line == 2 && col == 13);
	p.depth = 0;
	jpath_push_key(&p, "c");
	jpath_push_key(&p, "d");
	jpath_push_idx(&p, 1);
	jpos_find(text, strlen(text), &p, false, &line, &col);
	CHECK(line == 3 && col == 21);
	/* A path that is not there falls back to the deepest match. */
	p.depth = 0;
	jpath_push_key(&p, "c");
	jpath_push_key(&p, "zz");
	jpos_find(text, strlen(text), &p, false, &line, &col);
	CHECK(line == 3 && col == 8);
	p.depth = 0;
	jpath_format(&p, buf, sizeof(buf));
	CHECK(strcmp(buf, "(root)") == 0);
}

static void test_trend(void)
{
	struct trend_params p;
	struct trend_result r;
	double leak[12], pool[20], noise[20], flap[20];

	trend_defaults(&p);
	/* +1 per cycle: found within 5 cycles (warm-up 1, then 3 samples). */
	for (int i = 0; i < 12; i++)
		leak[i] = 10 + i;
	trend_eval(leak, 12, &p, &r);
	CHECK(r.fail && r.first_fail >= 0 && r.first_fail + 1 <= 5);
	CHECK(r.slope > 0.99 && r.slope < 1.01);
	p.limit = 38;
	trend_eval(leak, 12, &p, &r);
	CHECK(r.projected == 11 + 17);	/* 21 now, 17 cycles to 38 */
	trend_defaults(&p);
	/* A pool that fills over 4 cycles and then holds: not a leak. */
	for (int i = 0; i < 20; i++)
		pool[i] = i < 4 ? 16.0 * (i + 1) : 64;
	trend_eval(pool, 20, &p, &r);
	CHECK(!r.fail);
	/* Noise around a level. */
	for (int i = 0; i < 20; i++)
		noise[i] = 100 + (i * 7919 % 5) - 2;
	trend_eval(noise, 20, &p, &r);
	CHECK(!r.fail);
	/* Sockets that pile up during a flap and drop back once timeouts fire. */
	for (int i = 0; i < 20; i++)
		flap[i] = 5 + (i % 5);
	trend_eval(flap, 20, &p, &r);
	CHECK(!r.fail);
	/* Too few samples: no verdict either way. */
	trend_eval(leak, 3, &p, &r);
	CHECK(!r.enough && !r.fail);
	/* A 38-slot table that leaks one a cycle, then stays full: the final
	 * window is flat, but it is exhaustion, found at cycle 4 and full at 38. */
	{
		double table[46];

		for (int i = 0; i < 46; i++)
			table[i] = i < 37 ? i + 1 : 38;
		trend_eval(table, 46, &p, &r);
		CHECK(!r.fail);		/* without a limit: a plateau */
		p.limit = 38;
		trend_eval(table, 46, &p, &r);
		CHECK(r.fail && r.exhausted == 37 && r.first_fail == 3);
		CHECK(r.first_slope > 0.99 && r.first_slope < 1.01);
		/* The pool again: far from a limit it is a plateau; filling the
		 * limit exactly is running out, whatever the shape. */
		p.limit = 1024;
		trend_eval(pool, 20, &p, &r);
		CHECK(!r.fail && r.exhausted < 0);
		p.limit = 64;
		trend_eval(pool, 20, &p, &r);
		CHECK(r.fail && r.exhausted == 3);
	}
}

static void test_probe_offset(void)
{
	/* glibc 2.36 free: test %rdi,%rdi; je rel32; push %rbp */
	const unsigned char free_code[] = {0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0, 0, 0, 0x55};
	/* malloc: push %r12 */
	const unsigned char malloc_code[] = {0x41, 0x54, 0x55};
	/* cmpb $0,x(%rip): must stay at the entry, and say it is slow */
	const unsigned char cmp_code[] = {0x80, 0x3d, 0x01, 0x02, 0x14, 0, 0};
	const unsigned char endbr_push[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55};
	char why[96];

	CHECK(probe_alloc_offset(free_code, sizeof(free_code), true, why, sizeof(why)) == 9);
	CHECK(strstr(why, "push"));
	CHECK(probe_alloc_offset(malloc_code, sizeof(malloc_code), false, why, sizeof(why)) == 0);
	CHECK(strstr(why, "emulated"));
	CHECK(probe_alloc_offset(cmp_code, sizeof(cmp_code), true, why, sizeof(why)) == 0);
	CHECK(strstr(why, "single-stepped"));
	CHECK(probe_alloc_offset(endbr_push, sizeof(endbr_push), true, why, sizeof(why)) == 4);
	/* Without leave to skip, a null check is not stepped over. */
	CHECK(probe_alloc_offset(free_code, sizeof(free_code), false, why, sizeof(why)) == 0);
}

/* A heap probe that saw too little: INCONCLUSIVE with the reason, never
 * PASS; a bad free it did see still FAILs. */
static void test_heap_uncovered(void)
{
	static const char *text =
		"{\"name\":\"u\",\"workloads\":["
		"{\"name\":\"a\",\"kind\":\"exec\",\"cmd\":[\"x\"],\"probes\":[\"heap\"]}],"
		"\"invariants\":[{\"name\":\"no_invalid_free\"},{\"name\":\"heap_stable\"}]}";
	struct scenario *sc = parse(text);
	struct obs_workload wl[1] = {{.pid = 10, .started = true}};
	struct obs_cycle cycles[1] = {{1, 0, 1000, 0, 0}};
	struct obs_probes probes[1] = {{.heap = true}};
	struct obs_sample samples[1] = {{.heap = true}};
	struct run_obs obs;
	struct inv_result res;

	obs_init(&obs, sc, wl, NULL, 0, cycles, 1);
	obs.probes = probes;
	obs.samples = samples;
	obs.heap_events = json_array();
	snprintf(probes[0].heap_uncovered, sizeof(probes[0].heap_uncovered),
		 "its allocator is unknown");
	for (size_t i = 0; i < 2; i++) {
		CHECK(inv_eval(&obs, &sc->inv[i], &res) == 0);
		CHECK(res.verdict == V_INCONCLUSIVE);
		CHECK(strstr(res.summary, "allocator is unknown") != NULL);
		CHECK(json_array_size(res.evidence) == 1);
		json_decref(res.evidence);
	}
	json_array_append_new(obs.heap_events, json_pack("{sssssisissssss}", "kind", "double_free",
		"workload", "a", "pid", 10, "at_ms", 5, "comm", "a", "address", "0x10",
		"function", "free"));
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_FAIL);
	json_decref(res.evidence);
	json_decref(obs.heap_events);
	scenario_free(sc);
}

int main(void)
{
	test_heap_uncovered();
	test_trend();
	test_probe_offset();
	test_no_crash();
	test_exit_ok();
	test_verdicts();
	test_jpos();
	if (failures) {
		fprintf(stderr, "test_inv: %d checks failed\n", failures);
		return 1;
	}
	printf("test_inv: ok\n");
	return 0;
}
