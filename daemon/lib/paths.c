#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "paths.h"
#include "util.h"

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int paths_harness_dir(char *buf, size_t len)
{
	const char *env = getenv("FAULTD_HARNESS_DIR");
	char self[PATH_MAX], cand[PATH_MAX + 32], real[PATH_MAX];
	int err = 0, n;

	if (env && *env) {
		n = snprintf(buf, len, "%s", env);
		goto out_len;
	}
	err = util_self_dir(self, sizeof(self));
	if (err)
		goto out;
	snprintf(cand, sizeof(cand), "%s/harness", self);
	if (!is_dir(cand)) {
		snprintf(cand, sizeof(cand), "%s/../lib/faultd/harness", self);
		/* Said as PREFIX/lib/faultd/harness, not PREFIX/bin/../lib/... */
		if (realpath(cand, real))
			snprintf(cand, sizeof(cand), "%s", real);
	}
	n = snprintf(buf, len, "%s", cand);
out_len:
	if (n < 0 || (size_t)n >= len)
		err = -ENAMETOOLONG;
out:
	return err;
}
