/* faultd's version: `git describe` when it was built, or the VERSION file
 * outside git (scripts/version.sh). The Makefile writes it into
 * build/version.c, so a new commit relinks rather than recompiles. */
#ifndef FAULTD_VERSION_H
#define FAULTD_VERSION_H

extern const char faultd_version[];
#define FAULTD_VERSION faultd_version

#endif
