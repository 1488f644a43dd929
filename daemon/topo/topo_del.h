/* Removing what faultd made on the machine: a named namespace, a link in
 * faultd's own namespace. A leaf: the undo journal (journal.c) replays its
 * records through these, and the topology (topo.c), which journals what it
 * makes, needs neither the journal's replay nor the other way round. */
#ifndef FAULTD_TOPO_DEL_H
#define FAULTD_TOPO_DEL_H

#define TOPO_NETNS_DIR "/run/netns"

/* Remove a named namespace by its /run/netns path; only faultd's ("fd"
 * names), -EPERM for others. Gone already is 0. */
int topo_del_netns(const char *path);
/* Remove a link of faultd's (an "fd" name) in faultd's own namespace.
 * Gone already (its namespace took it) is 0. */
int topo_del_link(const char *name);

#endif
