/* What a run left on the machine after its teardown: namespaces, links,
 * DPDK runtime directories, its cgroup, its undo journal. Everything faultd
 * makes for a run carries the run id, so this is a scan by name. */
#ifndef FAULTD_RESIDUE_H
#define FAULTD_RESIDUE_H

#include <jansson.h>

/* [{"kind": "netns"|"link"|"dpdk"|"cgroup"|"journal", "path": ...}], empty
 * when nothing is left; NULL on allocation failure. */
json_t *residue_scan(const char *run_id, const char *cgroup, const char *journal_dir);

#endif
