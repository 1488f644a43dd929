/* Unit tests of suppression files (parse, LSan's pattern match) and of the
 * reachability scan on a real process: a child of this test builds known
 * blocks, stops itself, and the scan must tell reachable, direct and
 * indirect apart. No BPF: the blocks are listed by the child itself. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inv.h"
#include "leakscan.h"
#include "scenario.h"
#include "suppress.h"
#include "unit_check.h"

static void test_patterns(void)
{
	CHECK(suppress_pattern_match("foo", "foo"));
	CHECK(suppress_pattern_match("foo", "a_foo_b"));
	CHECK(!suppress_pattern_match("^foo", "a_foo"));
	CHECK(suppress_pattern_match("^foo", "foo_b"));
	CHECK(!suppress_pattern_match("foo$", "foo_b"));
	CHECK(suppress_pattern_match("foo$", "a_foo"));
	CHECK(suppress_pattern_match("^foo$", "foo"));
	CHECK(!suppress_pattern_match("^foo$", "foox"));
	CHECK(suppress_pattern_match("f*o", "fxyzo"));
	CHECK(suppress_pattern_match("^lib*.so$", "libvendor.so"));
	CHECK(!suppress_pattern_match("^lib*.so$", "libvendor.so.1"));
	CHECK(suppress_pattern_match("*", ""));
}

static void test_file(void)
{
	char path[] = "/tmp/faultd-supp-XXXXXX", err[512];
	struct suppress *s = NULL;
	json_t *stack;
	FILE *f;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# comment\n\n  leak:parse_config  \ninvalid_free:^legacy_\nheap:libvendor\n"
	      "fd:^log-shipper$\n", f);
	fclose(f);
	CHECK(suppress_load(&s, path, err, sizeof(err)) == 0);
	CHECK(suppress_count(s) == 4);
	stack = json_pack("[sss]", "malloc+0x1 [libc.so.6]",
			  "parse_config+0x1a (config.c:42) [prog]", "main+0x9 (main.c:3) [prog]");
	CHECK(suppress_match_stack(s, "leak", stack) != NULL);
	CHECK(strstr(suppress_match_stack(s, "leak", stack), ":3)") != NULL);
	CHECK(suppress_match_stack(s, "invalid_free", stack) == NULL);
	json_decref(stack);
	/* A file name or a module matches too; an address alone does not. */
	stack = json_pack("[ss]", "0x7f00123 [libvendor.so.2]", "legacy_free+0x3 (x.c:1) [p]");
	CHECK(suppress_match_stack(s, "heap", stack) != NULL);
	CHECK(suppress_match_stack(s, "invalid_free", stack) != NULL);
	json_decref(stack);
	CHECK(suppress_match_names(s, "fd", (const char *const[]){"w", "log-shipper", NULL}));
	CHECK(!suppress_match_names(s, "fd", (const char *const[]){"log-shipper2", NULL}));
	suppress_free(s);
	s = NULL;
	f = fopen(path, "w");
	fputs("leak:ok\n  bogus:x\n", f);
	fclose(f);
	CHECK(suppress_load(&s, path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, ":2:3: unknown type 'bogus'") != NULL);
	suppress_free(s);
	s = NULL;
	f = fopen(path, "w");
	fputs("leak\n", f);
	fclose(f);
	CHECK(suppress_load(&s, path, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, ":1:1: expected TYPE:PATTERN") != NULL);
	suppress_free(s);
	unlink(path);
}

#ifndef __SANITIZE_ADDRESS__
/* The child's blocks: 0 kept by a global, 1 kept only through block 0,
 * 2 lost, 3 and 4 lost in a cycle (3 -> 4 -> 3), 5 kept by an interior
 * pointer, 6 lost at the head of 7 -> 8. */
enum { N_BLOCKS = 9 };
static const size_t sizes[N_BLOCKS] = {64, 32, 200, 48, 48, 100, 40, 40, 40};
/* volatile: stores the compiler must keep, though nothing reads them. */
static void **volatile g_keep;
static char *volatile g_inner;

static __attribute__((noinline)) void build(int wfd)
{
	uint64_t out[N_BLOCKS];
	void **b[N_BLOCKS];

	for (int i = 0; i < N_BLOCKS; i++) {
		b[i] = calloc(1, sizes[i]);
		out[i] = (uint64_t)(uintptr_t)b[i];
	}
	g_keep = b[0];
	b[0][2] = b[1];
	b[3][0] = b[4];
	b[4][0] = b[3];
	g_inner = (char *)b[5] + 50;
	b[6][1] = b[7];
	b[7][0] = b[8];
	if (write(wfd, out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(1);
	explicit_bzero(out, sizeof(out));
	explicit_bzero(b, sizeof(b));
}

/* What the builder left on the stack below main's frame goes. */
static void __attribute__((noinline)) scrub_stack(void)
{
	volatile char pad[16384];

	memset((char *)pad, 0, sizeof(pad));
}

/* A child that runs @build (which writes the @len bytes of its blocks'
 * addresses into @addr through a pipe) and stops itself: its pid, stopped. */
static pid_t stopped_child(void (*build)(int wfd), uint64_t *addr, size_t len)
{
	int p[2], status;
	pid_t pid;

	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		build(p[1]);
		scrub_stack();
		raise(SIGSTOP);
		_exit(0);
	}
	close(p[1]);
	CHECK(read(p[0], addr, len) == (ssize_t)len);
	close(p[0]);
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
	return pid;
}

static void test_scan(void)
{
	struct leak_block blocks[N_BLOCKS];
	uint64_t addr[N_BLOCKS];
	struct leakscan_stats st;
	int status;
	pid_t pid;

	pid = stopped_child(build, addr, sizeof(addr));
	for (int i = 0; i < N_BLOCKS; i++)
		blocks[i] = (struct leak_block){.addr = addr[i], .size = sizes[i], .stack_id = i};
	CHECK(leakscan_run(pid, blocks, N_BLOCKS, NULL, 0, false, &st) == 0);
	for (int i = 0; i < N_BLOCKS; i++) {
		static const uint8_t want[N_BLOCKS] = {
			LEAK_REACHABLE, LEAK_REACHABLE, LEAK_DIRECT, LEAK_DIRECT, LEAK_INDIRECT,
			LEAK_REACHABLE, LEAK_DIRECT, LEAK_INDIRECT, LEAK_INDIRECT,
		};
		int k = blocks[i].stack_id;

		/* A cycle has one direct block: whichever the walk met first. */
		if (k == 3 || k == 4) {
			CHECK(blocks[i].state == LEAK_DIRECT || blocks[i].state == LEAK_INDIRECT);
			continue;
		}
		if (blocks[i].state != want[k])
			fprintf(stderr, "block %d: state %d, want %d\n", k, blocks[i].state, want[k]);
		CHECK(blocks[i].state == want[k]);
	}
	CHECK(st.reachable == 3 && st.direct == 3 && st.indirect == 3);
	CHECK(st.direct_bytes == 200 + 48 + 40);
	CHECK(st.threads == 1 && st.threads_no_sp == 0 && st.stale == 0);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* A process followed from after its first allocations: an array faultd
 * never saw holds the blocks it did see. Judged as fully followed, they
 * are leaked; as partial, the heap outside the known blocks is a root and
 * every block the array holds is reachable. */
#define N_GAP 5
static void **volatile g_unknown;

static void build_gap(int wfd)
{
	void **array = calloc(64, sizeof(void *));	/* before the probes */
	uint64_t out[N_GAP];
	void *b[N_GAP];

	for (int i = 0; i < N_GAP; i++) {
		b[i] = calloc(1, 48);
		out[i] = (uint64_t)(uintptr_t)b[i];
	}
	for (int i = 0; i < N_GAP - 1; i++)
		array[i] = b[i];
	g_unknown = array;
	if (write(wfd, out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(1);
	explicit_bzero(out, sizeof(out));
	explicit_bzero(b, sizeof(b));
}

static void test_scan_partial(void)
{
	struct leak_block blocks[N_GAP];
	uint64_t addr[N_GAP];
	struct leakscan_stats st;
	int status, held_direct;
	pid_t pid;

	pid = stopped_child(build_gap, addr, sizeof(addr));
	for (int i = 0; i < N_GAP; i++)
		blocks[i] = (struct leak_block){.addr = addr[i], .size = 48, .stack_id = i};
	/* The C library's own pointers (the arena's top, the last chunk
	 * used) may reach a block or two: what is asserted is what the
	 * unknown array holds, blocks 0 to N_GAP - 2. */
	CHECK(leakscan_run(pid, blocks, N_GAP, NULL, 0, false, &st) == 0);
	held_direct = 0;
	for (int i = 0; i < N_GAP; i++)
		held_direct += blocks[i].stack_id < N_GAP - 1 && blocks[i].state == LEAK_DIRECT;
	CHECK(held_direct > 0 && st.gap_root_bytes == 0);
	CHECK(leakscan_run(pid, blocks, N_GAP, NULL, 0, true, &st) == 0);
	CHECK(st.gap_root_bytes > 0);
	for (int i = 0; i < N_GAP; i++)
		CHECK(blocks[i].stack_id == N_GAP - 1 || blocks[i].state == LEAK_REACHABLE);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}
#endif

/* no_leak as a pure function of the scans a run recorded. */
static void test_no_leak(void)
{
	static const char *text =
		"{\"name\":\"u\",\"workloads\":[{\"name\":\"w\",\"kind\":\"exec\","
		"\"cmd\":[\"x\"],\"probes\":[\"heap\"]}],"
		"\"invariants\":[{\"name\":\"no_leak\"},{\"name\":\"no_leak\",\"min_bytes\":100}]}";
	struct scenario *sc = NULL;
	char *errors = NULL;
	struct obs_workload wl[1] = {{.pid = 10, .started = true, .exited = true}};
	struct obs_probes probes[1] = {{.heap = true}};
	struct obs_cycle cycles[1] = {{1, 0, 1000, 0, 0}};
	struct run_obs obs = {0};
	struct inv_result res;

	CHECK(scenario_parse("unit.json", text, strlen(text), &sc, &errors) == 0);
	free(errors);
	if (!sc)
		return;
	wl[0].sc = &sc->wl[0];
	obs.sc = sc;
	obs.wl = wl;
	obs.probes = probes;
	obs.cycles = cycles;
	obs.n_cycles = 1;
	obs.proc_probe = true;
	/* No process exited by itself: nothing to judge. */
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_INCONCLUSIVE && strstr(res.summary, "no exit to check at"));
	json_decref(res.evidence);
	obs.leaks = json_pack("[{sssisIsIsIs{sI}s[{sIsIs[s]}]s[]}]", "workload", "w", "pid", 10,
			      "at_ms", (json_int_t)500, "direct_bytes", (json_int_t)64,
			      "indirect_bytes", (json_int_t)0, "scan", "blocks", (json_int_t)3,
			      "direct", "bytes", (json_int_t)64, "blocks", (json_int_t)2, "stack",
			      "lose_it+0x12 (x.c:24) [x]", "indirect");
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_FAIL && strstr(res.summary, "64 bytes leaked in 2 blocks") &&
	      strstr(res.summary, "lose_it+0x12 (x.c:24)") && strstr(res.summary, "pid 10"));
	CHECK(res.first_at_ms == 500 && res.first_cycle == 1);
	json_decref(res.evidence);
	/* Below min_bytes: listed, passes. */
	CHECK(inv_eval(&obs, &sc->inv[1], &res) == 0);
	CHECK(res.verdict == V_PASS && strstr(res.summary, "1 below min_bytes"));
	json_decref(res.evidence);
	/* Lost tracking never gives a verdict on a leak. */
	probes[0].heap_lost = 3;
	CHECK(inv_eval(&obs, &sc->inv[0], &res) == 0);
	CHECK(res.verdict == V_INCONCLUSIVE);
	json_decref(res.evidence);
	json_decref(obs.leaks);
	scenario_free(sc);
}

int main(void)
{
	test_no_leak();
	test_patterns();
	test_file();
#ifndef __SANITIZE_ADDRESS__
	test_scan();
	test_scan_partial();
#endif
	printf("test_leakscan: %d failures\n", failures);
	return failures ? 1 : 0;
}
