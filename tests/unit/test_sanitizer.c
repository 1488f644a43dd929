/* sanitizer.c: ASan and UBSan reports in a workload's stderr become
 * structured evidence (kind, address, access, threads, the three stacks). */
#include <stdio.h>
#include <string.h>

#include "sanitizer.h"
#include "unit_check.h"

static const char asan[] =
	"qpair: started\n"
	"=================================================================\n"
	"==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x60b000000148 at pc 0x55d0c0 bp 0x7f sp 0x7e\n"
	"WRITE of size 4 at 0x60b000000148 thread T3\n"
	"    #0 0x55d0c0 in qp_last_wqe_event /work/harness/qpair/qpair.c:120:5\n"
	"    #1 0x55d1c0 in event_thread /work/harness/qpair/qpair.c:300:3\n"
	"\n"
	"0x60b000000148 is located 8 bytes inside of 328-byte region [0x60b000000140,0x60b000000288)\n"
	"freed by thread T2 here:\n"
	"    #0 0x7f00 in __interceptor_free ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52\n"
	"    #1 0x55d2c0 in qp_destroy /work/harness/qpair/qpair.c:90:2\n"
	"\n"
	"previously allocated by thread T1 here:\n"
	"    #0 0x7f01 in __interceptor_calloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:77\n"
	"    #1 0x55d3c0 in qp_connect /work/harness/qpair/qpair.c:60:9\n"
	"\n"
	"SUMMARY: AddressSanitizer: heap-use-after-free /work/harness/qpair/qpair.c:120:5 in qp_last_wqe_event\n"
	"==4242==ABORTING\n"
	"msgq.c:77:12: runtime error: signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'\n";

int main(void)
{
	json_t *reps = sanitizer_parse(asan), *r, *u;

	CHECK(reps && json_array_size(reps) == 2);
	r = json_array_get(reps, 0);
	CHECK(!strcmp(json_string_value(json_object_get(r, "tool")), "AddressSanitizer"));
	CHECK(!strcmp(json_string_value(json_object_get(r, "kind")), "heap-use-after-free"));
	CHECK(!strcmp(json_string_value(json_object_get(r, "address")), "0x60b000000148"));
	CHECK(!strcmp(json_string_value(json_object_get(r, "access")), "WRITE"));
	CHECK(json_integer_value(json_object_get(r, "size")) == 4);
	CHECK(!strcmp(json_string_value(json_object_get(r, "thread")), "T3"));
	CHECK(json_array_size(json_object_get(r, "stack")) == 2);
	CHECK(strstr(json_string_value(json_array_get(json_object_get(r, "stack"), 0)),
		     "qp_last_wqe_event qpair.c") ||
	      strstr(json_string_value(json_array_get(json_object_get(r, "stack"), 0)),
		     "qp_last_wqe_event"));
	CHECK(!strcmp(json_string_value(json_object_get(json_object_get(r, "freed_by"), "thread")),
		      "T2"));
	CHECK(json_array_size(json_object_get(json_object_get(r, "freed_by"), "stack")) == 2);
	CHECK(!strcmp(json_string_value(json_object_get(json_object_get(r, "allocated_by"),
							  "thread")), "T1"));
	CHECK(strstr(json_string_value(json_object_get(r, "summary")), "qp_last_wqe_event") != NULL);
	u = json_array_get(reps, 1);
	CHECK(!strcmp(json_string_value(json_object_get(u, "kind")), "runtime-error"));
	CHECK(!strcmp(json_string_value(json_object_get(u, "where")), "msgq.c:77:12"));
	CHECK(!strncmp(json_string_value(json_object_get(u, "message")), "signed integer", 14));
	json_decref(reps);
	CHECK(sanitizer_parse("nothing to see\n") == NULL);
	if (failures)
		fprintf(stderr, "test_sanitizer: %d checks failed\n", failures);
	else
		printf("test_sanitizer: ok\n");
	return failures ? 1 : 0;
}
