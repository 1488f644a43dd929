/* The undo journal: before faultd changes the machine (a namespace, a
 * link), it appends what undoes it to the run's journal file and fsyncs.
 * Teardown replays it in reverse; a faultd (or `faultctl cleanup`) that
 * finds the journal of a dead owner replays it too, so nothing outlives a
 * run even after kill -9. */
#ifndef FAULTD_JOURNAL_H
#define FAULTD_JOURNAL_H

#define JOURNAL_DEFAULT_DIR "/var/lib/faultd/journal"
#define JOURNAL_DPDK_DIR "/var/run/dpdk"	/* EAL's runtime dirs, fd<run id>-NAME */

struct journal;

/* Create DIR/RUN_ID.journal owned by this process. NULL with errno. */
struct journal *journal__open(const char *dir, const char *run_id);
/* Record "KIND VALUE" (netns PATH, link NAME) before making it. 0 or -errno. */
int journal__add(struct journal *j, const char *kind, const char *value);
/* Undo everything recorded, newest first, then remove the file. Returns how
 * many entries were undone; each is logged. */
int journal__replay(struct journal *j);
void journal__free(struct journal *j);

/* Replay and remove every journal in @dir whose owner is gone. @say, if
 * not NULL, is called with each thing removed. Returns the count. */
/* Undo of a "dpdkdir" entry: remove faultd's DPDK runtime directory @path
 * (JOURNAL_DPDK_DIR/fd...). Gone already is 0; a path not of ours -EPERM. */
int journal_dpdk_dir_delete(const char *path);
/* Split a journal's @text (changed in place) into its owner line ("owner
 * PID", NULL if none) and its entries "KIND VALUE", oldest first, in a
 * malloc'd array of pointers into @text. 0 or -ENOMEM. */
int journal_parse(char *text, char **owner, char ***lines, size_t *n);
int journal_sweep(const char *dir, void (*say)(const char *what, void *arg), void *arg);

#endif
