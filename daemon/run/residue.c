#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "residue.h"
#include "topo_del.h"

static void add(json_t *list, const char *kind, const char *path)
{
	json_array_append_new(list, json_pack("{ssss}", "kind", kind, "path", path));
}

/* Entries of @dir whose names start with @prefix. */
static void scan_dir(json_t *list, const char *kind, const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		add(list, kind, path);
	}
	if (d)
		closedir(d);
}

json_t *residue_scan(const char *run_id, const char *cgroup, const char *journal_dir)
{
	json_t *list = json_array();
	struct if_nameindex *ifs, *i;
	char prefix[32], path[PATH_MAX];

	if (!list)
		return NULL;
	snprintf(prefix, sizeof(prefix), "fd%s-", run_id);
	scan_dir(list, "netns", TOPO_NETNS_DIR, prefix);
	scan_dir(list, "dpdk", JOURNAL_DPDK_DIR, prefix);
	/* Link ends are born in the run's namespaces; one in faultd's own
	 * namespace would have escaped them. */
	snprintf(prefix, sizeof(prefix), "fd%.6s", run_id);
	ifs = if_nameindex();
	for (i = ifs; i && i->if_index; i++)
		if (!strncmp(i->if_name, prefix, strlen(prefix)) &&
		    (i->if_name[8] == 'l' || i->if_name[8] == 'b'))
			add(list, "link", i->if_name);
	if (ifs)
		if_freenameindex(ifs);
	if (cgroup && access(cgroup, F_OK) == 0)
		add(list, "cgroup", cgroup);
	snprintf(path, sizeof(path), "%s/%s.journal", journal_dir, run_id);
	if (access(path, F_OK) == 0)
		add(list, "journal", path);
	return list;
}
