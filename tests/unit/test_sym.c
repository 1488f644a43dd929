/* Unit tests of the symbolizer's snapshots crossing threads (sym.h): the
 * maps one struct sym took are copied (sym__maps) into another
 * (sym__adopt), which names the frames of a process that is gone by then,
 * as a run's naming worker does with what its loop read. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sym.h"
#include "unit_check.h"

/* A function of this program, at the same address in a forked child. */
__attribute__((noinline)) int sym_unit_marker(int x)
{
	return x * 3 + 1;
}

static const char *frame(json_t *frames, size_t i)
{
	const char *s = json_string_value(json_array_get(frames, i));

	return s ? s : "";
}

static void test_named_after_the_process_is_gone(void)
{
	struct sym *loop = sym__new(), *worker = sym__new();
	uint64_t ips[2] = {(uint64_t)(uintptr_t)sym_unit_marker, (uint64_t)(uintptr_t)getpid};
	char *maps = NULL;
	size_t len = 0;
	json_t *names;
	pid_t child = fork();

	if (child == 0) {
		raise(SIGSTOP);
		_exit(sym_unit_marker(1) == 4 ? 0 : 1);
	}
	CHECK(child > 0 && loop && worker);
	waitpid(child, NULL, WUNTRACED);
	CHECK(sym__snapshot(loop, child) == 0);
	CHECK(sym__maps(loop, child, &maps, &len) == 0 && maps && len > 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* Gone: only the copy knows its maps. */
	CHECK(sym__snapshot(worker, child) == -ESRCH);
	CHECK(sym__adopt(worker, child, maps, len) == 0);
	names = sym__frames(worker, child, ips, 2, true);
	CHECK(!strncmp(frame(names, 0), "sym_unit_marker+0x0 (test_sym.c:", 32));
	CHECK(strstr(frame(names, 1), "[libc.so.6]") != NULL);
	json_decref(names);
	/* The same maps again keep what was parsed; none at all: addresses. */
	CHECK(sym__maps(loop, child, &maps, &len) == 0);
	CHECK(sym__adopt(worker, child, maps, len) == 0);
	names = sym__frames(worker, child, ips, 1, true);
	CHECK(!strncmp(frame(names, 0), "sym_unit_marker+0x0", 19));
	json_decref(names);
	CHECK(sym__adopt(worker, child, NULL, 0) == -ESRCH);
	names = sym__frames(worker, child, ips, 1, true);
	CHECK(!strncmp(frame(names, 0), "0x", 2));
	json_decref(names);
	CHECK(sym__maps(worker, child, &maps, &len) == -ESRCH && !maps && !len);
	sym__free(loop);
	sym__free(worker);
}

int main(void)
{
	test_named_after_the_process_is_gone();
	if (failures)
		fprintf(stderr, "test_sym: %d failed\n", failures);
	return failures ? 1 : 0;
}
