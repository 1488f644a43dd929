/* Symbolization of user addresses with libdw, from a snapshot of the
 * process's /proc/PID/maps, so frames of a process that has since died can
 * still be named. A struct sym is not shared between threads: each user
 * has its own. */
#ifndef FAULTD_SYM_H
#define FAULTD_SYM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct sym;

struct sym *sym__new(void);
/* Take (or refresh) the maps of @pid; 0 or -errno (-ESRCH if gone). */
int sym__snapshot(struct sym *s, pid_t pid);
/* A copy of the maps of @pid kept by @s (malloc'ed, into *text), for
 * another thread's struct sym: 0, -ESRCH if none is kept, or -ENOMEM. */
int sym__maps(struct sym *s, pid_t pid, char **text, size_t *len);
/* Keep @text (owned, freed on error), maps that sym__maps copied, as
 * @pid's: its frames are then named from them, whether @pid lives or not.
 * No text: @pid has no maps here any more (its frames are addresses). */
int sym__adopt(struct sym *s, pid_t pid, char *text, size_t len);
/* One string per frame: "func+0x1a (file.c:42) [module]", or the address.
 * @first_is_ip: frame 0 is an instruction pointer, not a return address
 * (return addresses are looked up at addr-1, inside the call). */
json_t *sym__frames(struct sym *s, pid_t pid, const uint64_t *ips, int n,
		    bool first_is_ip);
/* One frame, for a single address (a caller). */
json_t *sym__frame(struct sym *s, pid_t pid, uint64_t ip, bool is_return);
/* Let @pid's snapshot go (its frames are named, and it is gone). */
void sym__forget(struct sym *s, pid_t pid);
void sym__free(struct sym *s);

#endif
