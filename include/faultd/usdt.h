/* faultd lifecycle probes for any C program: include this header and mark
 * where objects are made, used and destroyed, and where messages are sent
 * and received. faultd attaches to them by USDT (provider "faultd") and
 * checks that no event reaches a destroyed object and no message is
 * duplicated, stale or lost. Without faultd attached each probe is a 5-byte
 * nop: about nothing.
 *
 *   FAULTD_OBJ_CREATE("qpair", id);
 *   FAULTD_OBJ_EVENT("qpair", id, "last_wqe");
 *   FAULTD_OBJ_DESTROY("qpair", id);
 *   FAULTD_MSG_SEND(queue, seq, ptr);   FAULTD_MSG_RECV(queue, seq, ptr);
 *   FAULTD_COUNTER("reconnects", n);
 *
 * kind and event are string literals (at most 15 characters); ids, queues
 * and sequence numbers are integers; ptr is a pointer. */
#ifndef FAULTD_USDT_H
#define FAULTD_USDT_H

#include <stdint.h>

/* libbpf 1.1 cannot parse every operand gcc -O2 picks ("-4@(%rax,%rsi,4)"):
 * ask for registers and constants only. */
#define STAP_SDT_ARG_CONSTRAINT nr
/* A 5-byte nop can be patched into a cheaper probe than the 1-byte one. */
#include <sys/sdt.h>
#undef _SDT_NOP
#define _SDT_NOP .nops 5

#define FAULTD_OBJ_CREATE(kind, id) \
	STAP_PROBE2(faultd, obj_create, (const char *)(kind), (uint64_t)(id))
#define FAULTD_OBJ_DESTROY(kind, id) \
	STAP_PROBE2(faultd, obj_destroy, (const char *)(kind), (uint64_t)(id))
#define FAULTD_OBJ_EVENT(kind, id, event) \
	STAP_PROBE3(faultd, obj_event, (const char *)(kind), (uint64_t)(id), \
		    (const char *)(event))
#define FAULTD_MSG_SEND(queue, seq, ptr) \
	STAP_PROBE3(faultd, msg_send, (uint64_t)(queue), (uint64_t)(seq), \
		    (uint64_t)(uintptr_t)(ptr))
#define FAULTD_MSG_RECV(queue, seq, ptr) \
	STAP_PROBE3(faultd, msg_recv, (uint64_t)(queue), (uint64_t)(seq), \
		    (uint64_t)(uintptr_t)(ptr))
#define FAULTD_COUNTER(name, value) \
	STAP_PROBE2(faultd, counter, (const char *)(name), (int64_t)(value))

#endif
